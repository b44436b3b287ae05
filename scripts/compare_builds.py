"""Compare the results of two builds of a region (before / after a change that must not change them).

    python scripts/compare_builds.py BEFORE_DIR AFTER_DIR

Compares ``indicators.csv``, ``standards.csv``, the attributes of ``gaps.gpkg`` and the contents of
``cells.parquet`` (geometry as WKB), not timings. Rows are aligned by their key and columns by name:
for each table it prints IDENTICAL, or the columns only one side has, the rows only one side has, and
the columns whose values differ (NaN equals NaN; floats compared exactly). A table is identical when
every shared column is equal on every shared row and no row or column is missing on the AFTER side;
columns or rows only AFTER has are listed as ADDED. Exit status 0 when nothing was lost or changed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

KEYS = {
    "indicators.csv": ["level", "unit_code", "community_code"],
    "standards.csv": ["level", "unit_code", "standard_id"],
    "gaps.gpkg": ["gap_id"],
    "cells.parquet": ["cell_id", "unit_code", "community_code"],
}


def _read(folder: Path, name: str) -> pd.DataFrame:
    path = folder / name
    if name.endswith(".csv"):
        return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    if name.endswith(".gpkg"):
        g = gpd.read_file(path, layer="gaps")
        return pd.DataFrame(g.drop(columns="geometry"))
    g = gpd.read_parquet(path)
    df = pd.DataFrame(g.drop(columns="geometry"))
    df["geometry_wkb"] = g.geometry.to_wkb(hex=True)
    return df


def _aligned(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    keys = [k for k in keys if k in df.columns]
    return df.set_index(keys).sort_index() if keys else df


def _equal(a: pd.Series, b: pd.Series) -> bool:
    if a.dtype.kind in "fc" and b.dtype.kind in "fc":
        av, bv = a.to_numpy(float), b.to_numpy(float)
        return bool(np.array_equal(av, bv, equal_nan=True))
    def text(x: pd.Series) -> np.ndarray:  # missing -> one marker (pandas 3 keeps NaN through astype(str))
        return np.array(["<NA>" if pd.isna(v) else str(v) for v in x.to_numpy(dtype=object)], dtype=object)

    return bool((text(a) == text(b)).all())


def compare(before: Path, after: Path) -> bool:
    """Print the comparison of every table; True when nothing was lost or changed."""
    ok = True
    for name, keys in KEYS.items():
        a, b = _aligned(_read(before, name), keys), _aligned(_read(after, name), keys)
        lost_cols = [c for c in a.columns if c not in b.columns]
        added_cols = [c for c in b.columns if c not in a.columns]
        lost_rows = a.index.difference(b.index)
        added_rows = b.index.difference(a.index)
        rows = a.index.intersection(b.index)
        changed = [c for c in a.columns if c in b.columns and not _equal(a.loc[rows, c], b.loc[rows, c])]
        same = not (lost_cols or lost_rows.size or changed)
        ok &= same
        print(f"{name}: {'IDENTICAL' if same else 'DIFFERENT'} ({len(rows)} rows x "
              f"{len(a.columns) - len(lost_cols)} columns compared)")
        for label, items in (("lost columns", lost_cols), ("changed columns", changed),
                             ("lost rows", list(lost_rows[:10])), ("ADDED columns", added_cols),
                             ("ADDED rows", list(added_rows[:10]))):
            if len(items):
                print(f"  {label}: {items}" + (f" ... ({len(added_rows)} in all)" if label == "ADDED rows"
                                                and len(added_rows) > 10 else ""))
    return ok


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__)
        return 2
    return 0 if compare(Path(argv[0]), Path(argv[1])) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
