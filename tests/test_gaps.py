"""Gap areas: grouping on a small grid, ranking, geometry, errors."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st

from coverage.gaps import gap_areas

CRS = "EPSG:32649"

# 5 x 5 grid; U = uncovered populated, . = covered, 0 = uncovered but no elderly
LAYOUT = [
    "UU...",
    "U...U",
    "....U",
    ".U...",
    "..U0.",
]


def grid_cells() -> gpd.GeoDataFrame:
    recs = []
    for r, line in enumerate(LAYOUT):
        for c, ch in enumerate(line):
            recs.append({"row": r, "col": c, "unit_code": "A" if c < 3 else "B", "pop_total": 10.0,
                         "pop_60plus": 0.0 if ch == "0" else 2.0 + r, "pop_0to3": 1.0,
                         "covered_elderly_15min": ch == ".",
                         "tt_elderly_s": 900.0 if ch == "." else 1000.0 + 10 * c,
                         "nearest_elderly_id": f"f{c}", "x": c * 100.0 + 50, "y": 500 - (r * 100.0 + 50)})
    df = pd.DataFrame(recs)
    return gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(df["x"], df["y"]), crs=CRS)


def test_eight_neighbour_grouping_and_ranking() -> None:
    g = gap_areas(grid_cells(), service="elderly", covered_col="covered_elderly_15min")
    # groups: {(0,0),(0,1),(1,0)} 60+ = 2+2+3 = 7; {(1,4),(2,4)} 3+4 = 7; {(3,1),(4,2)} diagonal 5+6 = 11
    assert g["n_cells"].tolist() == [2, 3, 2]
    assert g["pop_60plus"].tolist() == [11.0, 7.0, 7.0]
    assert g["rank"].tolist() == [1, 2, 3]
    assert g["gap_id"].tolist() == ["elderly-001", "elderly-002", "elderly-003"]
    assert g.loc[1, "pop_total"] == 30.0 and g.loc[1, "unit_code"] == "A"  # tie on 60+ broken by pop_total
    assert g.loc[2, "unit_code"] == "B"
    assert g.loc[0, "nearest_fac_id"] == "f1" and g.loc[0, "nearest_tt_min"] == pytest.approx(1010 / 60)
    assert g.loc[0, "geometry"].area == pytest.approx(2 * 100 * 100)
    assert g.crs == CRS


def test_four_neighbour_splits_diagonals() -> None:
    g = gap_areas(grid_cells(), service="elderly", covered_col="covered_elderly_15min", connectivity=4)
    assert sorted(g["n_cells"].tolist()) == [1, 1, 2, 3]


def test_transform_squares_and_split_pieces() -> None:
    cells = grid_cells()
    piece = cells.iloc[[0]].assign(unit_code="B", pop_60plus=1.0)  # cell (0,0) split across two units
    cells = pd.concat([cells, piece], ignore_index=True)
    tr = Affine(100, 0, 0, 0, -100, 500)
    g = gap_areas(cells, service="elderly", covered_col="covered_elderly_15min", transform=tr, crs=CRS)
    top = g[g["n_cells"] == 3].iloc[0]
    assert top["pop_60plus"] == 8.0 and top["unit_code"] == "A"
    assert top.geometry.area == pytest.approx(3 * 100 * 100)
    assert top.geometry.bounds == pytest.approx((0, 300, 200, 500))


def test_no_gaps_and_errors() -> None:
    cells = grid_cells().assign(covered_elderly_15min=True)
    assert len(gap_areas(cells, service="elderly", covered_col="covered_elderly_15min")) == 0
    with pytest.raises(ValueError, match=r"column 'covered_meal' missing.*connectivity = 6"):
        gap_areas(cells, service="elderly", covered_col="covered_meal", connectivity=6)


def _reference_rows(cand: pd.DataFrame, pop_col: str) -> pd.DataFrame:
    """The per-gap loop the vectorised :func:`coverage.gaps._gap_rows` replaced (the oracle)."""
    import numpy as np

    rows = []
    for g, grp in cand.groupby("_gap"):
        by_unit = grp.groupby("unit_code")[list(dict.fromkeys([pop_col, "pop_total"]))].sum().sort_values(
            list(dict.fromkeys([pop_col, "pop_total"])), ascending=False, kind="mergesort")
        tt = grp["tt_elderly_s"].to_numpy(float)
        best = int(np.argmin(tt))
        finite = np.isfinite(tt[best])
        rows.append({"_gap": g, "unit_code": str(by_unit.index[0]),
                     "n_cells": len(grp.drop_duplicates(["row", "col"])),
                     "pop_total": float(grp["pop_total"].sum()), "pop_60plus": float(grp["pop_60plus"].sum()),
                     "_rank_pop": float(grp[pop_col].sum()),
                     "nearest_fac_id": str(grp["nearest_elderly_id"].iloc[best]) if finite else "",
                     "nearest_tt_min": tt[best] / 60.0 if finite else np.nan})
    return pd.DataFrame(rows)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), pop_col=st.sampled_from(["pop_60plus", "pop_total"]))
def test_all_gaps_at_once_equal_the_per_gap_loop(seed: int, pop_col: str) -> None:
    """Units tied on people (ties go to the lowest code), split pieces of one cell, unreachable pieces and
    tied travel times: every gap's row equals the old loop's."""
    import numpy as np

    from coverage.gaps import _gap_rows

    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 300))
    cand = pd.DataFrame({"_gap": rng.integers(1, 25, n), "row": rng.integers(0, 6, n),
                         "col": rng.integers(0, 6, n), "unit_code": rng.choice(["A", "B", "C"], n),
                         "pop_total": rng.choice([1.0, 2.0, 0.5], n),
                         "pop_60plus": rng.choice([0.0, 1.0, 0.25], n), "pop_0to3": rng.random(n),
                         "tt_elderly_s": rng.choice([60.0, 120.0, np.inf], n),
                         "nearest_elderly_id": rng.choice(["f1", "f2", "f3"], n)})
    got = _gap_rows(cand, service="elderly", pop_col=pop_col, nearest_col="nearest_elderly_id",
                    tt_col="tt_elderly_s")
    ref = _reference_rows(cand, pop_col)
    for c in ("_gap", "unit_code", "n_cells", "nearest_fac_id"):
        assert list(got[c]) == list(ref[c]), c
    for c in ("pop_total", "pop_60plus", "_rank_pop", "nearest_tt_min"):
        np.testing.assert_allclose(got[c].to_numpy(float), ref[c].to_numpy(float), rtol=1e-12, err_msg=c)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), density=st.floats(0.2, 0.8))
def test_label_polygons_equal_the_union_of_their_squares(seed: int, density: float) -> None:
    """Each label's shape (its 4-connected pieces as one MultiPolygon) is valid and covers exactly the
    union of its cells' squares, holes and corner-touching pieces included."""
    import numpy as np
    import shapely
    from scipy import ndimage

    from coverage.gaps import _label_polygons

    rng = np.random.default_rng(seed)
    grid = rng.random((14, 11)) < density
    labels, n = ndimage.label(grid, structure=np.ones((3, 3), bool))
    t = Affine(100.0, 0, 5000.0, 0, -100.0, 9000.0)
    got = _label_polygons(labels, t, 0, 0)
    assert sorted(got) == list(range(1, n + 1))
    for k, geom in got.items():
        r, c = np.nonzero(labels == k)
        squares = shapely.union_all([shapely.box(5000 + 100 * j, 9000 - 100 * (i + 1), 5000 + 100 * (j + 1),
                                                 9000 - 100 * i) for i, j in zip(r, c, strict=True)])
        assert geom.is_valid and geom.equals(squares) and geom.area == pytest.approx(1e4 * len(r))
