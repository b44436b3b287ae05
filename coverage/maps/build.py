"""Reading ``build/<region>/`` into a typed :class:`Build` (what every page draws from).

The registry (services and facility kinds) and the standards values are those the build used, read
from ``run_info.json`` (``services``, ``kinds``, ``standards``); a build that predates them (no
``kinds`` key) falls back to the built-in registry and the default standards. Indicator values are
taken as written in ``indicators.gpkg``, never recomputed; a missing column is a :class:`MapsError`
naming the fix.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio

from coverage.config import StandardsConfig
from coverage.errors import InputError, MapsError
from coverage.services import Kind, Service, kinds_from_json, services_from_json, tlabel

__all__ = ["BUILD_FILES", "Build", "dictionary_labels", "display_label", "read_build", "read_cells",
           "read_communities", "registry", "standards_config"]

#: files of build/<region>/ the pages read
BUILD_FILES = ("indicators.gpkg", "standards.csv", "isochrones.gpkg", "facilities.gpkg", "cells.parquet",
               "gaps.gpkg", "data_dictionary.csv", "run_info.json")
#: columns of indicators.gpkg layer ``units`` every build has (the services add their headline shares)
UNIT_COLUMNS = ("unit_code", "unit_name", "unit_class", "slots_per_1000", "n_failed_standards")
#: longest data-dictionary description appended in parentheses to a Chinese label
SHORT_DESCRIPTION = 40
#: the reason shown for a low-confidence unit whose build recorded none
LOW_CONFIDENCE = "低可信 (low confidence)"
RERUN = "re-run the pipeline: make run REGION=<region>"


def registry(run_info: dict[str, Any]) -> tuple[dict[str, Service], dict[str, Kind]]:
    """Services and kinds the build used (``run_info.json``), the built-in registry for older builds
    (whose ``services`` entries have another form and which have no ``kinds``)."""
    if not isinstance(run_info.get("kinds"), dict):
        return services_from_json(None), kinds_from_json(None)
    return services_from_json(run_info.get("services")), kinds_from_json(run_info["kinds"])


def standards_config(run_info: dict[str, Any]) -> StandardsConfig:
    """The build's :class:`StandardsConfig` (defaults for keys it lacks or builds without it)."""
    raw = run_info.get("standards")
    names = {f.name for f in dataclasses.fields(StandardsConfig)}
    return StandardsConfig(**{k: v for k, v in (raw if isinstance(raw, dict) else {}).items() if k in names})


@dataclass(frozen=True)
class Build:
    """What the pages read from ``build/<region>/`` (units and facilities in the metric CRS)."""

    path: Path
    units: gpd.GeoDataFrame  # indicators.gpkg layer ``units`` as written
    facilities: gpd.GeoDataFrame
    standards: pd.DataFrame  # standards.csv, ``passed`` parsed to True/False/None
    labels: dict[str, str]  # column -> display label (label_zh + short English description)
    run_info: dict[str, Any]
    services: dict[str, Service]  # the build's registry, in its order (the first is the lead service)
    kinds: dict[str, Kind]
    standards_values: StandardsConfig
    iso_layers: dict[tuple[str, float], str]  # (service id, threshold_min) -> dissolved layer name
    #: services the build could not assess (service id -> reason): drawn grey, labelled 未评估
    not_assessed: dict[str, str] = field(default_factory=dict)
    #: units whose figures are of low confidence (unit code -> reasons): outlined dashed, bannered
    low_confidence: dict[str, str] = field(default_factory=dict)

    def label(self, column: str, english: str = "") -> str:
        """Display label of ``column``: label_zh of data_dictionary.csv (else of
        :data:`coverage.indicators.DATA_DICTIONARY`), then the fallback, then the column name."""
        return self.labels.get(column) or english or column

    @property
    def crs(self) -> Any:
        return self.units.crs

    @property
    def lead(self) -> Service:
        """The first ASSESSED service of the registry (else the first): the overview table is sorted by
        its uncovered people and the unit pages draw its uncovered cells."""
        assessed = [s for s in self.services.values() if s.id not in self.not_assessed]
        return (assessed or list(self.services.values()))[0]

    def assessed(self, s: Service) -> bool:
        return s.id not in self.not_assessed

    def headline(self, s: Service) -> tuple[str, str, str]:
        """(cell flag, unit share column, unit uncovered column) of ``s``'s headline coverage."""
        return s.headline(self.standards_values)

    def share_label(self, s: Service) -> str:
        col = self.headline(s)[1]
        return self.label(col, f"{s.label_zh}覆盖率 ({s.label_en} coverage)")

    def uncovered_label(self, s: Service) -> str:
        col = self.headline(s)[2]
        return self.label(col, f"{s.label_zh}未覆盖人口 ({s.label_en}: people not covered)")

    def region_title(self) -> str:
        ri = self.run_info
        return str(ri.get("region_title") or ri.get("title") or ri.get("region") or "")


def display_label(label_zh: str, description: str) -> str:
    """``label_zh`` plus ``(description)`` when the description is short plain English (no formula)."""
    zh, desc = label_zh.strip(), description.strip()
    plain = desc.isascii() and not re.search(r"[_*/=<>()]", desc)
    if zh and desc and plain and len(desc) <= SHORT_DESCRIPTION:
        return f"{zh} ({desc})"
    return zh


def dictionary_labels(dictionary: pd.DataFrame | None = None) -> dict[str, str]:
    """column -> display label from a data dictionary (``column``, ``label_zh``, ``description``).

    Rows of :data:`coverage.indicators.DATA_DICTIONARY` fill in columns the given dictionary (the
    build's data_dictionary.csv) lacks or leaves without a Chinese label.
    """
    from coverage.indicators import DATA_DICTIONARY

    labels = {col: display_label(zh, desc) for col, zh, _unit, desc, _src in DATA_DICTIONARY if zh}
    if dictionary is not None and len(dictionary):
        for _, r in dictionary.iterrows():
            zh = str(r.get("label_zh", "") or "")
            if zh.strip():
                labels[str(r["column"])] = display_label(zh, str(r.get("description", "") or ""))
    return labels


def _parse_passed(v: Any) -> bool | None:
    s = str(v).strip().lower()
    if s in ("true", "1", "1.0", "yes", "pass"):
        return True
    if s in ("false", "0", "0.0", "no", "fail"):
        return False
    return None


def _check_units(build_dir: Path, units: gpd.GeoDataFrame, services: dict[str, Service],
                 std: StandardsConfig) -> None:
    want = [*UNIT_COLUMNS, *(s.headline(std)[1] for s in services.values())]
    lead = next(iter(services.values()), None)
    if lead is not None:
        want.append(lead.headline(std)[2])
    missing = list(dict.fromkeys(c for c in want if c not in units.columns))
    if missing:
        raise MapsError(f"{build_dir / 'indicators.gpkg'} layer 'units': missing column(s) "
                        f"{', '.join(missing)} (written by the indicators stage); "
                        "re-run `make run REGION=<region>`.")
    from coverage.coords import require_projected

    try:
        require_projected(units.crs, what=f"{build_dir / 'indicators.gpkg'} layer 'units'",
                          fix="re-run `make run REGION=<region>`")
    except InputError as exc:
        raise MapsError(str(exc)) from exc


def _iso_layers(path: Path, services: dict[str, Service]) -> dict[tuple[str, float], str]:
    have = {str(n) for n, _g in pyogrio.list_layers(path)}
    return {(sid, t): f"{sid}_{tlabel(t)}min_dissolved" for sid, s in services.items()
            for t in s.isochrone_thresholds_min() if f"{sid}_{tlabel(t)}min_dissolved" in have}


def read_build(build_dir: str | Path) -> Build:
    """Read what the pages show from ``build/<region>/`` (raises :class:`MapsError` naming every
    missing file or column and the fix)."""
    build_dir = Path(build_dir)
    problems = [f"  {build_dir / n}: missing" for n in BUILD_FILES if not (build_dir / n).is_file()]
    if problems:
        raise MapsError(f"{build_dir}: cannot write maps, {len(problems)} build file(s) missing:\n"
                        + "\n".join(problems) + "\nRun the pipeline first: make run REGION=<region>.")
    run_info = json.loads((build_dir / "run_info.json").read_text(encoding="utf-8"))
    services, kinds = registry(run_info)
    std_values = standards_config(run_info)
    units = gpd.read_file(build_dir / "indicators.gpkg", layer="units")
    _check_units(build_dir, units, services, std_values)
    units = units.assign(unit_code=units["unit_code"].astype(str))
    fac = gpd.read_file(build_dir / "facilities.gpkg")
    if fac.crs is not None and fac.crs != units.crs:
        fac = fac.to_crs(units.crs)
    std = pd.read_csv(build_dir / "standards.csv", dtype={"unit_code": str}, keep_default_na=False)
    if len(std):
        passed = [_parse_passed(v) for v in std["passed"]]
        std = std.assign(passed=pd.Series(passed, index=std.index, dtype=object))
    dd = pd.read_csv(build_dir / "data_dictionary.csv", keep_default_na=False, dtype=str,
                     encoding="utf-8-sig")
    return Build(build_dir, units, fac, std, dictionary_labels(dd), run_info, services, kinds, std_values,
                 _iso_layers(build_dir / "isochrones.gpkg", services),
                 {str(k): str(v) for k, v in (run_info.get("not_assessed") or {}).items()},
                 low_confidence_units(units, run_info))


def _reason_text(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return "; ".join(str(x) for x in v if str(x).strip())
    t = "" if v is None else str(v).strip()
    return "" if t.lower() in ("nan", "none", "<na>", "false") else t


def low_confidence_units(units: pd.DataFrame, run_info: dict[str, Any]) -> dict[str, str]:
    """unit code -> reasons of the low-confidence units: the ``low_confidence`` flag of layer ``units``
    (reasons from ``confidence_reasons``), and the units of ``run_info.json`` ``low_confidence``."""
    out: dict[str, str] = {}
    flags = units["low_confidence"] if "low_confidence" in units.columns else None
    why = units["confidence_reasons"] if "confidence_reasons" in units.columns else None
    for i, code in enumerate(units["unit_code"].astype(str)):
        flag = flags.iloc[i] if flags is not None else False
        reason = _reason_text(why.iloc[i]) if why is not None else ""
        if (isinstance(flag, (bool, np.bool_)) and bool(flag)) or str(flag).strip().lower() in ("1", "true"):
            out[code] = reason or LOW_CONFIDENCE
    ri = run_info.get("low_confidence")
    if isinstance(ri, dict):
        known = set(units["unit_code"].astype(str))
        for k, v in ri.items():
            if str(k) in known and out.get(str(k), LOW_CONFIDENCE) == LOW_CONFIDENCE:
                out[str(k)] = _reason_text(v) or LOW_CONFIDENCE
    return out


def read_cells(build_dir: Path, *, columns: Sequence[str] | None = None,
               unit_code: str | None = None) -> pd.DataFrame:
    """cells.parquet (all units, or one unit's rows via a parquet filter)."""
    filters = [("unit_code", "=", unit_code)] if unit_code is not None else None
    path = build_dir / "cells.parquet"
    if columns is not None:
        return pd.read_parquet(path, columns=list(columns), filters=filters)
    return gpd.read_parquet(path, filters=filters)


def read_communities(b: Build, unit_code: str) -> gpd.GeoDataFrame | None:
    """The unit's 社区/村 of indicators.gpkg layer ``communities`` (None when the layer is absent)."""
    path = b.path / "indicators.gpkg"
    if "communities" not in {str(n) for n, _g in pyogrio.list_layers(path)}:
        return None
    c = gpd.read_file(path, layer="communities")
    if "unit_code" not in c.columns or not len(c):
        return None
    if c.crs is not None and c.crs != b.crs:
        c = c.to_crs(b.crs)
    c = c[c["unit_code"].astype(str) == unit_code]
    if not len(c):
        return None
    for col in ("community_code", "community_name"):
        c[col] = c[col].astype(str) if col in c.columns else ""
    return c


def read_gaps(b: Build) -> gpd.GeoDataFrame:
    """gaps.gpkg layer ``gaps`` in the build's CRS (``service`` and ``unit_code`` as text)."""
    gaps = gpd.read_file(b.path / "gaps.gpkg", layer="gaps")
    if gaps.crs is not None and gaps.crs != b.crs:
        gaps = gaps.to_crs(b.crs)
    return gaps.assign(service=gaps["service"].astype(str), unit_code=gaps["unit_code"].astype(str))
