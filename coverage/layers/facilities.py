"""Facility layers as municipalities send them, read into one table of facility points.

Each ``[[facilities]]`` layer (shapefile, GeoPackage, GeoJSON, CSV/XLSX with coordinate columns, or
OSM by tag) goes through the same stages: raw rows -> field mapping -> type of every row ->
``exclude``/``include`` filters and excluded types -> one point per row -> WGS84, back-shift, swap check,
metric CRS, study area -> unknown types -> numbers -> row checks -> ids -> accepted table and rejects.
Whole-file problems (missing file, empty file, no CRS, unknown columns) are collected over all layers
and raised ONCE as :class:`~coverage.errors.LayerError`; row problems never raise: each row is either
accepted or written to the rejects table with a reason, and ``accepted + rejected == rows read`` is
checked for every layer.

Conventions (documented choices)
--------------------------------
- CGCS2000 (EPSG:4490) and WGS84 (EPSG:4326) differ by centimetres to decimetres; both are treated as
  WGS84 lon/lat without transformation. Other CRSs are transformed with pyproj.
- ``coords = "gcj02"`` / ``"bd09"`` (points copied from AMap/Tencent or Baidu) are converted to WGS84
  with :mod:`coverage.coords` before anything else.
- Latitude/longitude swapped: in a geographic layer, a point that falls outside the study area as
  (x, y) but inside it as (y, x) is swapped back and counted in a warning that lists the rows; it is
  NOT rejected (the swap is unambiguous). Points outside either way are rejected.
- Polygons and multi-points are reduced to their centroid (noted in the ``note`` column and warned);
  lines, collections, null and empty geometries are rejected.
- Points more than 1 km outside the study area (the union of the units) are rejected.
- Numbers outside their plausible range (``FacilityLayerConfig.PLAUSIBLE_RANGES``, overridden per
  layer with ``ranges = {beds = [1, 8000]}``) reject the row, naming the field, value, range and key.
- Duplicate ids are rejected (the first occurrence is kept).
- Duplicate facilities: a later row is a duplicate of an earlier one (in the same layer or an earlier
  layer) when both have the SAME KIND and either the same normalised name within ``duplicate_max_m``
  (default 50 m; "same coordinates" when under 0.5 m apart) or the same coordinates and no name to tell
  them apart (one or both names empty). Two facilities of different kinds in one building (a 日间照料中心
  and a 社区卫生服务站) are never duplicates; neither are two of the same kind at the same coordinates
  with DIFFERENT names (two 助餐点 geocoded to one address, or one building's two operators: the names
  say they are two). By default (``keep_duplicates = false``) the later row is rejected with
  ``duplicate of <fac_id> (same name within N m / same coordinates)``, so it is in rejects.csv and never
  in a capacity sum; ``keep_duplicates = true`` keeps it, flagged in ``duplicate_of``.
- A layer whose rows are ALL rejected is an error, and so is one whose rejected share exceeds
  ``max_rejected_share`` (default 0.2; 1.0 disables it) once at least 3 rows are rejected (below that
  a single bad row of a tiny layer is a row problem, not a broken file): a truncated file, a wrong
  ``.prj``/``crs`` or a wrong ``coords`` empties a layer, and must not end in "OK". The message names
  the top reasons with counts and the likely fix (for points outside the study area: where they lie).
- POI exports (Amap ``type``/``typecode``, Baidu ``tag``, Tencent ``category``; coordinates in
  ``lon``/``lat`` columns or one ``location`` = "lon,lat" column) are typed by
  :func:`~coverage.layers.vocabulary.classify_type`: pet clinics, dental, cosmetic, pharmacies and
  private 诊所/门诊部 are rejected "excluded type '<type>': <why>"; an Amap "综合医院;卫生院" named
  社区卫生服务... is ``health_center``, else ``township_hospital``; 三甲 and other hospitals ``hospital``.
  A type that matches nothing is rejected "unknown type '<type>'". The type text (or OSM rule) that
  decided is kept in ``source_type``, and the check prints the source-type -> kind table.
- Deliberate exclusions come first: a row a filter (``exclude = { type = "宠物" }``,
  ``include = { name = "社区" }``) or the vocabulary excludes gets that reason even when it also lies
  outside the study area, and such rows do not count towards ``max_rejected_share`` (a city-wide POI
  export is mostly pharmacies and private clinics).
- The GCJ-02/BD-09 shift check runs for every reader (shapefile, GeoPackage, CSV, XLSX, ...): against
  the roads, and, when the roads do not tell, against the other layers' facilities (a 卫生服务站 next to
  a 日间照料中心 in one building lands ~500 m away when one of the two layers is shifted).
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import geopandas as gpd
import numpy as np
import pandas as pd
from pyproj import CRS
from pyproj.exceptions import CRSError
from shapely.geometry.base import BaseGeometry

from coverage.config import Config, FacilityLayerConfig
from coverage.errors import LayerError
from coverage.layers.osm import facilities_from_osm
from coverage.layers.placement import (
    Placement,
    as_written,
    place_points,
    points_of_geometries,
    shift_warning,
    study_area,
)
from coverage.layers.readers import RawLayer, crs_label, read_table, read_vector, table_points
from coverage.layers.report import LayerSummary
from coverage.layers.vocabulary import (
    FACILITY_COLUMNS,
    FIELD_ALIASES,
    NUMERIC_FIELDS,
    REJECT_COLUMNS,
    TEXT_FIELDS,
    classify_type,
    clean_cell,
    code_str,
    find_column,
    norm_label,
    parse_number,
)
from coverage.services import BUILTIN_KINDS, Kind

log = logging.getLogger(__name__)

__all__ = ["FacilityLayers", "read_facilities", "read_layer", "shift_against_other_layers"]

_DUP_NAME_M = 50.0
#: two points closer than this are "the same coordinates"
_SAME_POINT_M = 0.5
#: the rejected-share limit applies once at least this many rows are rejected
_MIN_REJECTED_FOR_SHARE = 3
_OSM_SUFFIXES = (".pbf", ".osm", ".bz2", ".o5m")
_TABLE_SUFFIXES = (".csv", ".txt", ".xlsx", ".xls", ".xlsm")
_COUNT_FIELDS = ("beds", "nursing_beds", "childcare_slots")
_AREA_FIELDS = ("floor_area_m2", "land_area_m2")
_OSM_KEY_TAGS = ("amenity", "social_facility", "social_facility:for", "healthcare")


@dataclass(frozen=True)
class FacilityLayers:
    """Accepted facilities (metric CRS, columns :data:`FACILITY_COLUMNS`), rejects and per-layer reports."""

    facilities: gpd.GeoDataFrame
    rejects: pd.DataFrame
    reports: list[LayerSummary]


# --------------------------------------------------------------------------------------------
# Raw rows of one layer
# --------------------------------------------------------------------------------------------


def _check_file(fc: FacilityLayerConfig, key: str) -> None:
    path = fc.path
    if not path.exists():
        raise LayerError(f"{path}: file not found; fix {key}.path")
    if path.is_file() and path.stat().st_size == 0:
        raise LayerError(f"{path}: the file is empty (0 bytes); re-export it or remove the [[facilities]] "
                         f"entry {fc.name!r}")


def _osm_rows(fc: FacilityLayerConfig) -> RawLayer:
    """The facility candidates of an OSM file as raw rows (kinds and ids by tag, EPSG:4326)."""
    og = facilities_from_osm(fc.path, kinds=fc.kinds)
    attrs = pd.DataFrame(og.drop(columns=["geometry", "kind", "osm_id"])).astype(object)
    # an unmapped object's kind is None in the rows but NaN once pandas 3 gives the column its string
    # dtype: "is None" alone let such objects through with an empty kind (Comoros: 48 accepted, 45 mapped)
    kinds = [k if isinstance(k, str) and k else None for k in og["kind"]]
    return RawLayer(attrs=attrs, geoms=list(og.geometry.values), row_reason=[None] * len(og),
                    crs=CRS.from_epsg(4326), encoding="utf-8 (OSM)",
                    labels={c: [c] for c in attrs.columns if c not in ("tags", "source_type")},
                    osm_kinds=kinds, osm_ids=list(og["osm_id"]))


def _vector_crs(raw: RawLayer, fc: FacilityLayerConfig, key: str) -> tuple[CRS, list[str]]:
    """(CRS, warnings) of a vector layer: ``fc.crs`` overrides the file's (warned when they differ);
    no CRS at all is an error."""
    warnings: list[str] = []
    crs = raw.crs
    if fc.crs:
        try:
            cfg_crs = CRS.from_user_input(fc.crs)
        except CRSError:
            raise LayerError(f"{key}.crs = {fc.crs!r} is not a CRS pyproj understands") from None
        if crs is not None and not crs.equals(cfg_crs):
            warnings.append(f"{key}.crs = {fc.crs} overrides the file's CRS {crs_label(crs)}")
        crs = cfg_crs
    if crs is None:
        raise LayerError(f"{fc.path}: no CRS (no .prj file); set {key}.crs (e.g. \"EPSG:4490\" for CGCS2000 "
                         f"lon/lat, \"EPSG:4545\" for CGCS2000 3-degree Gauss-Kruger 108E)")
    return crs, warnings


def _read_rows(fc: FacilityLayerConfig, key: str, lon_hint: float | None) -> tuple[RawLayer, CRS, list[str]]:
    """(raw rows, their CRS, warnings) of a layer file of any supported format."""
    suffix = fc.path.suffix.lower()
    if fc.from_osm or suffix in _OSM_SUFFIXES:
        raw = _osm_rows(fc)
        return raw, cast(CRS, raw.crs), list(raw.warnings)
    if suffix in _TABLE_SUFFIXES:
        raw = table_points(read_table(fc.path, fc, key), fc, key, fc.path, lon_hint)
        return raw, cast(CRS, raw.crs), list(raw.warnings)
    raw = read_vector(fc.path, layer=fc.layer, encoding=fc.encoding, key=key)
    crs, warnings = _vector_crs(raw, fc, key)
    return raw, crs, warnings + raw.warnings


def _map_fields(fc: FacilityLayerConfig, raw: RawLayer, key: str) -> dict[str, str]:
    """Canonical field -> column: the configured ``fields``, then exact aliases, then truncated
    (shapefile) prefixes. A layer needs a type column unless it is OSM or has a ``default_kind``."""
    path = fc.path
    mapping: dict[str, str] = {}
    bad_fields = []
    for canon, col in fc.fields.items():
        if canon not in FIELD_ALIASES:
            bad_fields.append(f"{key}.fields.{canon}: unknown field (allowed: {', '.join(FIELD_ALIASES)})")
        elif col not in raw.attrs.columns:
            bad_fields.append(f"{key}.fields.{canon} = {col!r}: no such column")
        else:
            mapping[canon] = col
    if bad_fields:
        raise LayerError(f"{path}: " + "; ".join(bad_fields)
                         + f" (columns: {', '.join(map(str, raw.attrs.columns))})")
    for prefix in (False, True):
        for canon, aliases in FIELD_ALIASES.items():
            if canon not in mapping:
                found = find_column(raw.labels, aliases, prefix=prefix, taken=set(mapping.values()))
                if found is not None:
                    mapping[canon] = found
    if raw.osm_kinds is None and "kind" not in mapping and "typecode" not in mapping and not fc.default_kind:
        raise LayerError(f"{path}: no facility type column (类型/类别/设施类型/kind/type) and no "
                         f"{key}.default_kind; add the column, map it with {key}.fields.kind = \"<column>\", "
                         f"or set {key}.default_kind (columns: {', '.join(map(str, raw.attrs.columns))})")
    log.debug("%s: field mapping %s", fc.name, mapping)
    return mapping


# --------------------------------------------------------------------------------------------
# Per-row stages: each returns its values and the reasons with its own added (first reason wins)
# --------------------------------------------------------------------------------------------


def _with_swap_notes(notes: Sequence[str], swapped: np.ndarray) -> list[str]:
    out = list(notes)
    for i in np.flatnonzero(swapped).tolist():
        out[i] = (out[i] + "; " if out[i] else "") + "latitude/longitude swapped back"
    return out


def _swap_warning(swapped: np.ndarray) -> str:
    rows = (np.flatnonzero(swapped) + 1).tolist()
    return (f"{len(rows)} row(s) had latitude and longitude swapped and were swapped back "
            f"(rows {', '.join(map(str, rows[:20]))}{' ...' if len(rows) > 20 else ''})")


@dataclass(frozen=True)
class _Types:
    """What each row's type says (computed for every row, whatever else is wrong with it)."""

    kinds: list[str | None]
    #: the raw type text, "<typecode> <Amap type>", or the OSM rule / key tags ("" without a type)
    sources: list[str]
    #: the row's entry of the source-type table: its kind, "(excluded: <why>)", "(unknown)", ...
    outcomes: list[str]
    #: "excluded type '<type>': <why>" for the types the vocabulary excludes (pet clinics, dental, ...)
    excluded: list[str | None]
    #: "unknown type '<type>'", "missing kind", "OSM tags not mapped to a kind: ..."
    unknown: list[str | None]


def _cell_text(attrs: pd.DataFrame, i: int, col: str | None) -> str:
    v = clean_cell(attrs.at[i, col]) if col is not None else None
    return "" if v is None else str(v).strip()


def _row_types(raw: RawLayer, mapping: Mapping[str, str], fc: FacilityLayerConfig,
               known_kinds: Mapping[str, Kind]) -> _Types:
    """The kind of every row: OSM kinds by tag; else the type column (and name, and Amap typecode)
    through :func:`~coverage.layers.vocabulary.classify_type` with the layer's ``kinds`` first,
    ``default_kind`` for rows without a type."""
    n = len(raw.attrs)
    kinds: list[str | None] = [None] * n
    sources, outcomes = [""] * n, [""] * n
    excluded: list[str | None] = [None] * n
    unknown: list[str | None] = [None] * n
    col_kind, col_code, col_name = mapping.get("kind"), mapping.get("typecode"), mapping.get("name")
    for i in range(n):
        if raw.osm_kinds is not None:
            kinds[i] = raw.osm_kinds[i]
            sources[i] = _cell_text(raw.attrs, i, "source_type" if "source_type" in raw.attrs else None)
            outcomes[i] = kinds[i] or "(unknown)"
            if kinds[i] is None:
                tags = json.loads(cast(str, raw.attrs.at[i, "tags"]))
                key_tags = ", ".join(f"{k}={tags[k]}" for k in _OSM_KEY_TAGS if k in tags)
                unknown[i] = f"OSM tags not mapped to a kind: {key_tags}"
            continue
        v, code = _cell_text(raw.attrs, i, col_kind), _cell_text(raw.attrs, i, col_code)
        if not v and not code:
            if fc.default_kind:
                kinds[i], outcomes[i] = fc.default_kind, f"{fc.default_kind} (default_kind)"
            else:
                unknown[i], outcomes[i] = "missing kind", "(missing)"
            continue
        m = classify_type(v, name=_cell_text(raw.attrs, i, col_name), typecode=code, extra=fc.kinds,
                          kinds=known_kinds)
        kinds[i], sources[i], outcomes[i] = m.kind, m.source, m.outcome
        if m.excluded:
            excluded[i] = f"excluded type {m.source!r}: {m.excluded}"
        elif m.kind is None:
            unknown[i] = f"unknown type {m.source!r}"
    return _Types(kinds=kinds, sources=sources, outcomes=outcomes, excluded=excluded, unknown=unknown)


def _filter_values(raw: RawLayer, mapping: Mapping[str, str], name: str, sources: Sequence[str]
                   ) -> list[str] | None:
    """The text per row a filter key names: a column of the file; ``source_type``; ``type``/``kind``
    (the type column, else the source type: the OSM rule); a canonical field (``name``, ``address``,
    ...) by its mapped column. None when the key names nothing."""
    if name in raw.attrs.columns:
        col: str | None = name
    elif name == "source_type":
        return list(sources)
    elif name in ("type", "kind"):
        col = mapping.get("kind")
        if col is None:
            return list(sources)
    else:
        col = mapping.get(name)
        if col is None:
            return None
    return [_cell_text(raw.attrs, i, col) for i in range(len(raw.attrs))]


def _row_filters(raw: RawLayer, mapping: Mapping[str, str], fc: FacilityLayerConfig, key: str,
                 sources: Sequence[str]) -> list[str | None]:
    """The reason of each row a layer's ``exclude`` / ``include`` filters reject (else None): a row is
    excluded when an ``exclude`` pattern is found in its field, or an ``include`` pattern is not."""
    n = len(raw.attrs)
    reason: list[str | None] = [None] * n
    bad = []
    for which, filters in (("exclude", fc.exclude), ("include", fc.include)):
        for fname, pattern in filters.items():
            values = _filter_values(raw, mapping, fname, sources)
            if values is None:
                bad.append(f"{key}.{which}.{fname}: no such column or field")
                continue
            rx = re.compile(pattern)
            for i, v in enumerate(values):
                hit = rx.search(v) is not None
                if reason[i] is None and hit == (which == "exclude"):
                    reason[i] = f"excluded by {key}.{which}.{fname} = {pattern!r}" + (
                        "" if which == "exclude" else " (not matched)")
    if bad:
        cols = ", ".join(map(str, raw.attrs.columns))
        raise LayerError(f"{fc.path}: " + "; ".join(bad) + f" (columns: {cols}; fields: type, source_type, "
                         f"{', '.join(mapping)}); fix the key or remove it")
    return reason


def _row_numbers(attrs: pd.DataFrame, mapping: Mapping[str, str], reason: Sequence[str | None]
                 ) -> tuple[dict[str, np.ndarray], list[str | None]]:
    """(values of each :data:`NUMERIC_FIELDS` (NaN = unknown), reasons): text that is not a number
    rejects the row."""
    n = len(attrs)
    reason = list(reason)
    values: dict[str, np.ndarray] = {}
    for f in NUMERIC_FIELDS:
        arr = np.full(n, np.nan)
        col = mapping.get(f)
        if col is not None:
            for i in range(n):
                v = parse_number(attrs.at[i, col])
                if v is None:
                    if reason[i] is None:
                        reason[i] = f"non-numeric {f} {str(attrs.at[i, col])!r}"
                else:
                    arr[i] = v
        values[f] = arr
    return values, reason


def _value_problem(values: Mapping[str, np.ndarray], i: int) -> str | None:
    """Why row ``i``'s numbers are impossible (negative counts, non-positive areas, more nursing beds
    than beds), or None."""
    for f in _COUNT_FIELDS:
        if values[f][i] < 0:
            return f"negative {f} ({values[f][i]:g})"
    for f in _AREA_FIELDS:
        if values[f][i] <= 0:
            return f"non-positive {f} ({values[f][i]:g})"
    if values["nursing_beds"][i] > values["beds"][i]:
        return f"nursing_beds ({values['nursing_beds'][i]:g}) > beds ({values['beds'][i]:g})"
    return None


def _range_problem(values: Mapping[str, np.ndarray], i: int, fc: FacilityLayerConfig, key: str) -> str | None:
    """Why row ``i`` has an implausible number (outside its range, see ``PLAUSIBLE_RANGES``), or None."""
    for f in NUMERIC_FIELDS:
        v = values[f][i]
        low, high = fc.plausible_range(f)
        if np.isfinite(v) and not low <= v <= high:
            return (f"{f} = {v:g} outside the plausible range {low:g}..{high:g} (a typing or unit error? "
                    f"if the value is right set {key}.ranges.{f} = [{low:g}, <higher>])")
    return None


def _row_texts(attrs: pd.DataFrame, mapping: Mapping[str, str]) -> dict[str, list[str]]:
    """Each :data:`TEXT_FIELDS` as text per row (``""`` when empty or unmapped)."""
    def text(i: int, col: str) -> str:
        v = clean_cell(attrs.at[i, col])
        return "" if v is None else str(v)

    n = len(attrs)
    return {f: [text(i, mapping[f]) if f in mapping else "" for i in range(n)] for f in TEXT_FIELDS}


def _row_ids(raw: RawLayer, mapping: Mapping[str, str], layer: str, reason: Sequence[str | None]
             ) -> tuple[list[str], list[str | None]]:
    """(fac_id per row, reasons): ``osm:<id>``, the id column, else ``<layer>:<row>``; a repeated id
    among the rows accepted so far is rejected (the first is kept)."""
    reason = list(reason)
    fac_ids: list[str] = []
    seen: dict[str, int] = {}
    for i in range(len(raw.attrs)):
        if raw.osm_ids is not None:
            fid = f"osm:{raw.osm_ids[i]}"
        elif "fac_id" in mapping and code_str(raw.attrs.at[i, mapping["fac_id"]]):
            fid = code_str(raw.attrs.at[i, mapping["fac_id"]])
        else:
            fid = f"{layer}:{i + 1}"
        fac_ids.append(fid)
        if reason[i] is None:
            if fid in seen:
                reason[i] = f"duplicate id {fid!r} (first at row {seen[fid]})"
            else:
                seen[fid] = i + 1
    return fac_ids, reason


# --------------------------------------------------------------------------------------------
# Accepted rows and rejects
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Rows:
    """Everything known about the rows of one layer after the per-row stages."""

    fac_ids: list[str]
    kinds: list[str | None]
    sources: list[str]
    values: dict[str, np.ndarray]
    texts: dict[str, list[str]]
    notes: list[str]
    place: Placement
    reason: list[str | None]
    px: np.ndarray  # the point as read, in the layer CRS
    py: np.ndarray
    dup_of: list[str] | None = None  # kept duplicates (keep_duplicates = true): fac_id of the first


def _accepted(rows: _Rows, fc: FacilityLayerConfig, metric_crs: str) -> gpd.GeoDataFrame:
    """The accepted rows with :data:`FACILITY_COLUMNS` (metric CRS points)."""
    acc = np.array([r is None for r in rows.reason], dtype=bool)
    idx = np.flatnonzero(acc)
    return gpd.GeoDataFrame({
        "fac_id": [rows.fac_ids[i] for i in idx],
        "name": [rows.texts["name"][i] for i in idx],
        "kind": [rows.kinds[i] for i in idx],
        "source_type": [rows.sources[i] for i in idx],
        **{f: rows.values[f][acc] for f in NUMERIC_FIELDS},
        "address": [rows.texts["address"][i] for i in idx],
        "operator": [rows.texts["operator"][i] for i in idx],
        "layer": fc.name, "source_file": str(fc.path),
        "source_row": (idx + 1).astype(np.int64),
        "duplicate_of": [rows.dup_of[i] if rows.dup_of else "" for i in idx],
        "note": [rows.notes[i] for i in idx],
    }, geometry=gpd.points_from_xy(rows.place.x_m[acc], rows.place.y_m[acc]), crs=metric_crs)


def _rejects(raw: RawLayer, reason: Sequence[str | None], fc: FacilityLayerConfig) -> pd.DataFrame:
    """One row per rejected row: source_file, layer, row (1-based), reason, values (the row as JSON,
    with its geometry as WKT for vector layers unless the coordinates were the problem)."""
    src = str(fc.path)
    suffix = fc.path.suffix.lower()
    rej_rows = []
    for i, r in enumerate(reason):
        if r is None:
            continue
        rec = {str(k): clean_cell(v) for k, v in raw.attrs.iloc[i].items()}
        if raw.row_labels is not None:
            rec["_sheet_row"] = raw.row_labels[i]
        g = raw.geoms[i]
        if g is not None and not (isinstance(g, float)) and raw.osm_kinds is None and not g.is_empty and \
                raw.crs is not None and "coordinates" not in r and suffix not in (".csv", ".xlsx"):
            rec["geometry"] = g.wkt[:200]
        rej_rows.append({"source_file": src, "layer": fc.name, "row": i + 1, "reason": r,
                         "values": json.dumps(rec, ensure_ascii=False, default=str)})
    return pd.DataFrame(rej_rows, columns=list(REJECT_COLUMNS))


def _layer_rows(raw: RawLayer, crs: CRS, mapping: Mapping[str, str], fc: FacilityLayerConfig, key: str, *,
                known_kinds: Mapping[str, Kind], area: BaseGeometry | None, metric_crs: str,
                summary: LayerSummary) -> _Rows:
    """Run the per-row stages in order (the first reason a row gets is its reason); add the
    centroid and swap warnings to ``summary``."""
    types = _row_types(raw, mapping, fc, known_kinds)
    summary.source_types = _source_type_counts(types)
    # deliberate exclusions first (filters, then excluded types): a pet clinic outside the study area
    # is reported as a pet clinic and does not count towards max_rejected_share
    filtered = _row_filters(raw, mapping, fc, key, types.sources)
    first = [f or e or r for f, e, r in zip(filtered, types.excluded, raw.row_reason, strict=True)]
    px, py, notes, reason = points_of_geometries(raw.geoms, first)
    if any(notes):
        summary.warnings.append(f"{sum(1 for t in notes if t)} polygon/multi-point feature(s) reduced to a "
                                f"point (see the note column)")
    place = place_points(px, py, reason, crs=crs, coords=fc.coords, area=area, metric_crs=metric_crs)
    if place.swapped.any():
        summary.warnings.append(_swap_warning(place.swapped))
        notes = _with_swap_notes(notes, place.swapped)
    kinds = types.kinds
    reason = [r or u for r, u in zip(place.reason, types.unknown, strict=True)]
    values, reason = _row_numbers(raw.attrs, mapping, reason)
    reason = [r if r is not None else _value_problem(values, i) for i, r in enumerate(reason)]
    reason = [r if r is not None else _range_problem(values, i, fc, key) for i, r in enumerate(reason)]
    texts = _row_texts(raw.attrs, mapping)
    fac_ids, reason = _row_ids(raw, mapping, fc.name, reason)
    if len(raw.sheets) > 1 and raw.row_labels is not None:
        notes = [(t + "; " if t else "") + f"sheet row {lab}" for t, lab in zip(notes, raw.row_labels,
                                                                              strict=True)]
    live = [i for i, r in enumerate(reason) if r is None]
    found = _duplicates([texts["name"][i] for i in live], [kinds[i] for i in live], place.x_m[live],
                        place.y_m[live], [fc.duplicate_max_m] * len(live))
    dup_of: list[str] = [""] * len(reason)
    for b, a, basis in found:
        if fc.keep_duplicates:
            dup_of[live[b]] = fac_ids[live[a]]
        else:
            reason[live[b]] = f"duplicate of {fac_ids[live[a]]} ({basis})"
    if fc.keep_duplicates and found:
        summary.warnings.append(f"{len(found)} facility(ies) duplicate another of the same kind (same name "
                                f"within {fc.duplicate_max_m:g} m or same coordinates): kept, flagged in "
                                f"duplicate_of ({key}.keep_duplicates = true)")
    return _Rows(fac_ids=fac_ids, kinds=kinds, sources=types.sources, values=values, texts=texts, notes=notes,
                 place=place, reason=reason, px=px, py=py, dup_of=dup_of)


def _source_type_counts(types: _Types) -> dict[str, dict[str, int]]:
    """source type -> {outcome -> rows} over every row read (``"(no type)"`` for rows without one)."""
    out: dict[str, dict[str, int]] = {}
    for src, outcome in zip(types.sources, types.outcomes, strict=True):
        d = out.setdefault(src or "(no type)", {})
        d[outcome] = d.get(outcome, 0) + 1
    return out


def _duplicates(names: Sequence[str], kinds: Sequence[str | None], xs: np.ndarray, ys: np.ndarray,
                max_m: Sequence[float]) -> list[tuple[int, int, str]]:
    """(later row, earlier row, basis) of each duplicate, in row order (see the module docstring):
    same kind and same normalised name within ``max_m[later]`` metres, or same kind and the same
    coordinates when a name is missing. A row already found a duplicate is not the first of another."""
    norm = [norm_label(n) if n else "" for n in names]
    out: list[tuple[int, int, str]] = []
    is_dup = [False] * len(norm)
    by_kind: dict[str | None, list[int]] = {}
    for b in range(len(norm)):
        if kinds[b] is None or not (np.isfinite(xs[b]) and np.isfinite(ys[b])):
            continue
        for a in by_kind.get(kinds[b], []):
            d = math.hypot(xs[a] - xs[b], ys[a] - ys[b])
            if norm[a] and norm[a] == norm[b] and d <= max_m[b]:
                basis = ("same name, same coordinates" if d <= _SAME_POINT_M
                         else f"same name within {max_m[b]:g} m: {d:.0f} m apart")
            elif (not norm[a] or not norm[b]) and d <= _SAME_POINT_M:
                basis = "same coordinates, no name to tell them apart"
            else:
                continue
            out.append((b, a, basis))
            is_dup[b] = True
            break
        if not is_dup[b]:
            by_kind.setdefault(kinds[b], []).append(b)
    return out


def _reason_family(reason: str) -> str:
    """A reason without its row-specific values (ids, quoted text, numbers) for counting."""
    t = re.sub(r"duplicate of \S+", "duplicate of <fac_id>", reason)
    t = re.sub(r"duplicate id '[^']*' \((first at row|also in layer) [^)]*\)", r"duplicate id (\1 ...)", t)
    t = re.sub(r"'[^']*'", "'...'", t)
    t = re.sub(r"(?<![\w.\[])-?\d[\d.e+]*(?![\w.\]])", "#", t) if not t.startswith("outside") else t
    return t


def _where_points_lie(rows: _Rows, mask: np.ndarray, crs: CRS, area: BaseGeometry | None, metric_crs: str,
                      fc: FacilityLayerConfig, key: str) -> str:
    """Where the rejected points lie against the study area, and the likely fix."""
    px, py = rows.px[mask], rows.py[mask]
    ok = np.isfinite(px) & np.isfinite(py)
    if not ok.any():
        return f"check {key}.crs and {key}.coords"
    mx, my = float(np.median(px[ok])), float(np.median(py[ok]))
    lon, lat = rows.place.lon[mask], rows.place.lat[mask]
    good = np.isfinite(lon) & np.isfinite(lat)
    where = (f"as read they lie around ({mx:.6g}, {my:.6g}) in {crs_label(crs) or 'the layer CRS'}"
             + (f" = {np.median(lon[good]):.4f}E {np.median(lat[good]):.4f}N" if good.any() else ""))
    if area is not None:
        b = gpd.GeoSeries([area], crs=metric_crs).to_crs("EPSG:4326").total_bounds
        where += f", but the study area spans {b[0]:.3f}-{b[2]:.3f}E {b[1]:.3f}-{b[3]:.3f}N"
    if crs.is_projected and abs(mx) <= 180 and abs(my) <= 90:
        return (f"{where}: the numbers are degrees but the layer CRS {crs_label(crs)} is projected (a wrong "
                f".prj or {key}.crs); set {key}.crs = \"EPSG:4490\" (CGCS2000) or \"EPSG:4326\" (WGS84)")
    if crs.is_geographic and (abs(mx) > 180 or abs(my) > 90):
        return f"{where}: the numbers are not degrees; set {key}.crs to the file's projected CRS"
    return (f"{where}; check {key}.crs (the file's CRS{', from its .prj' if not fc.crs else ''}) and "
            f"{key}.coords = {fc.coords!r}, or that the layer belongs to this region")


def _reject_fix(family: str, fc: FacilityLayerConfig, key: str) -> str:
    """The likely fix for a layer whose rows mostly failed for ``family``."""
    if family.startswith(("null geometry", "empty geometry")):
        return ("the rows have no geometry: the .shp is probably truncated or does not belong to the .dbf; "
                "re-export the shapefile and send all its parts (.shp .shx .dbf .prj)")
    if "coordinates" in family and not family.startswith("duplicate"):
        return (f"check the coordinate columns ({key}.x_field / {key}.y_field), {key}.header_rows and "
                f"{key}.crs")
    if family.startswith("unknown type"):
        return f"map the type values with {key}.kinds = {{\"<value>\" = \"<kind>\"}} or {key}.fields.kind"
    if family.startswith("excluded"):
        return (f"rows excluded by type or by {key}.exclude / {key}.include; map a wanted type with "
                f"{key}.kinds = {{\"<type>\" = \"<kind>\"}} or loosen the filters")
    if family.startswith("missing kind"):
        return f"set {key}.default_kind or map the type column with {key}.fields.kind"
    if family.startswith("duplicate of"):
        return (f"the file repeats its rows (appended twice?); remove the copies, or set "
                f"{key}.keep_duplicates = true to keep them flagged")
    if family.startswith("duplicate id"):
        return f"the id column repeats; map {key}.fields.fac_id to a unique column"
    m = re.match(r"(?:non-numeric |negative |non-positive )?(\w+)", family)
    if m and m.group(1) in NUMERIC_FIELDS:
        f = m.group(1)
        return (f"check which column is read as {f} ({key}.fields.{f}) and its unit"
                + (f", or widen {key}.ranges.{f}" if "plausible range" in family else ""))
    return "fix the file or the config as the reasons say"


def _layer_problem(rows: _Rows, n: int, crs: CRS, area: BaseGeometry | None, metric_crs: str,
                   fc: FacilityLayerConfig, key: str) -> str | None:
    """The whole-layer error when every row, or more than ``max_rejected_share`` of them, was rejected."""
    rejected = [r for r in rows.reason if r is not None]
    k = len(rejected)
    if n == 0 or k == 0:
        return None
    # OSM objects with tags no rule maps are candidates by design, and rows excluded by type or by the
    # layer's filters are excluded on purpose (a city-wide POI export): neither is a sign of a broken file
    counted = sum(1 for r in rejected if not r.startswith(("OSM tags not mapped", "excluded ")))
    if k < n and (counted / n <= fc.max_rejected_share or counted < _MIN_REJECTED_FOR_SHARE):
        return None
    on_purpose = k - counted if k < n else 0
    if on_purpose:  # name what counted; the excluded rows are only mentioned
        rejected = [r for r in rejected if not r.startswith(("OSM tags not mapped", "excluded "))]
        k = counted
    share = k / n
    families = Counter(_reason_family(r) for r in rejected).most_common()
    texts: dict[str, set[str]] = {}
    for r in rejected:
        texts.setdefault(_reason_family(r), set()).add(r)
    shown = {fam: next(iter(texts[fam])) if len(texts[fam]) == 1 else fam for fam, _ in families}
    top = "; ".join(f"{c} x {shown[fam]}" for fam, c in families[:3]) + (
        f"; {sum(c for _, c in families[3:])} x other reasons" if len(families) > 3 else "")
    fam = families[0][0]
    if fam.startswith("outside the study area"):
        mask = np.array([r is not None and r.startswith("outside") for r in rows.reason], dtype=bool)
        fix = _where_points_lie(rows, mask, crs, area, metric_crs, fc, key)
    else:
        fix = _reject_fix(fam, fc, key)
    head = (f"all {n} rows rejected" if k == n else
            f"{k} of {n} rows ({share:.0%}) rejected, more than {key}.max_rejected_share = "
            f"{fc.max_rejected_share:g}"
            + (f", besides {on_purpose} excluded on purpose or unmapped OSM objects" if on_purpose else ""))
    tail = "" if k == n else f" (if these rejects are expected raise {key}.max_rejected_share; 1.0 disables)"
    return f"{fc.path}: {head} ({top}); {fix}{tail}"


def read_layer(fc: FacilityLayerConfig, idx: int, *, known_kinds: Mapping[str, Kind] = BUILTIN_KINDS,
               config_key: str = "facilities",
               area: BaseGeometry | None, metric_crs: str, roads: gpd.GeoSeries | None,
               lon_hint: float | None) -> tuple[gpd.GeoDataFrame, pd.DataFrame, LayerSummary]:
    """Read and check one facility layer (``cfg.facilities[idx]``; messages name it
    ``<config_key>[idx]``, e.g. ``planning.candidates[0]`` for a candidate layer).

    Returns (accepted facilities in ``metric_crs``, rejects, summary); raises :class:`LayerError`
    for a whole-layer problem. ``area`` is the buffered study area (metric CRS) or None, ``roads``
    the lines for the shift warning, ``lon_hint`` the study area's longitude (for CRS hints).
    """
    key = f"{config_key}[{idx}]"  # how messages name the layer's table in the config
    path = fc.path
    summary = LayerSummary(name=fc.name, source_file=str(path))
    _check_file(fc, key)
    raw, crs, warnings = _read_rows(fc, key, lon_hint)
    n = len(raw.attrs)
    summary.rows_read = n
    summary.encoding = raw.encoding
    summary.crs = crs_label(crs) + (f" + coords {fc.coords}" if fc.coords in ("gcj02", "bd09") else "")
    summary.warnings.extend(warnings)
    mapping = _map_fields(fc, raw, key)
    rows = _layer_rows(raw, crs, mapping, fc, key, known_kinds=known_kinds, area=area, metric_crs=metric_crs,
                       summary=summary)
    fac = _accepted(rows, fc, metric_crs)
    rejects = _rejects(raw, rows.reason, fc)
    summary.accepted = len(fac)
    summary.rejected = dict(Counter(r for r in rows.reason if r is not None))
    summary.kinds = dict(Counter(fac["kind"]))
    if summary.accepted + len(rejects) != summary.rows_read:  # invariant, not an input check
        raise RuntimeError(f"{path}: accepted {summary.accepted} + rejected {len(rejects)} != rows {n}")
    problem = _layer_problem(rows, n, crs, area, metric_crs, fc, key)
    if problem:
        raise LayerError(problem)
    if any(r.startswith("unknown type") for r in summary.rejected):
        unknown = sorted({r for r in summary.rejected if r.startswith("unknown type")})
        summary.warnings.append(f"{len(unknown)} unknown type value(s): map them with {key}.kinds = "
                                f"{{\"<value>\" = \"<kind>\"}} (kinds: {', '.join(known_kinds)})")
    if roads is not None and summary.accepted >= 3:  # every declared coords: a double shift is caught too
        acc = np.array([r is None for r in rows.reason], dtype=bool)
        w = shift_warning(fac.geometry.x.to_numpy(), fac.geometry.y.to_numpy(), rows.place.lon[acc],
                          rows.place.lat[acc], roads, metric_crs, key, coords=fc.coords)
        if w:
            summary.warnings.append(w)
    if summary.rows_read == 0 and fc.from_osm:
        summary.warnings.append("the layer has no data rows")  # an OSM extract may map none: not an error
    elif summary.rows_read == 0:
        raise LayerError(f"{path}: the layer has no data rows (only a header, or an empty sheet/table). Fix: "
                         f"export the facility list again with its rows, or remove this [[facilities]] table "
                         f"({key}) from the config if the region really has no such facility")
    for w in summary.warnings:
        log.warning("%s (%s): %s", fc.name, path, w)
    log.info("Read facility layer %s: %d rows, %d accepted, %d rejected", fc.name, n, summary.accepted,
             len(rejects))
    return fac, rejects, summary


# --------------------------------------------------------------------------------------------
# All layers
# --------------------------------------------------------------------------------------------


def _duplicates_across_layers(fac: gpd.GeoDataFrame, rej: pd.DataFrame, reports: list[LayerSummary],
                              cfg: Config) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """Duplicates of a facility of an EARLIER layer (the rule of :func:`_duplicates`, with the later
    row's layer's ``duplicate_max_m``): rejected, or kept and flagged when that layer has
    ``keep_duplicates = true``. The layers' summaries are updated (they were made by this read)."""
    if fac.empty:
        return fac, rej
    by_name = {f.name: (i, f) for i, f in enumerate(cfg.facilities)}
    layer_no = fac["layer"].map(lambda n: by_name[n][0]).to_numpy()
    max_m = [by_name[n][1].duplicate_max_m for n in fac["layer"]]
    found = _duplicates(fac["name"].tolist(), fac["kind"].tolist(), fac.geometry.x.to_numpy(),
                        fac.geometry.y.to_numpy(), max_m)
    found = [(b, a, basis) for b, a, basis in found if layer_no[a] != layer_no[b]]
    if not found:
        return fac, rej
    fac = fac.copy()
    drop, extra = [], []
    for b, a, basis in found:
        fc = by_name[fac.at[b, "layer"]][1]
        first = f"{fac.at[a, 'fac_id']} of layer {fac.at[a, 'layer']}"
        s = next(s for s in reports if s.name == fc.name)
        if fc.keep_duplicates:
            fac.at[b, "duplicate_of"] = fac.at[a, "fac_id"]
            s.warnings.append(f"row {fac.at[b, 'source_row']} duplicates {first} ({basis}): kept, flagged "
                              f"in duplicate_of")
            continue
        reason = f"duplicate of {first} ({basis})"
        drop.append(b)
        extra.append({"source_file": fac.at[b, "source_file"], "layer": fc.name,
                      "row": int(fac.at[b, "source_row"]), "reason": reason,
                      "values": json.dumps({k: clean_cell(fac.at[b, k]) for k in ("fac_id", "name", "kind")},
                                           ensure_ascii=False)})
        s.accepted -= 1
        s.rejected[reason] = s.rejected.get(reason, 0) + 1
        s.kinds[fac.at[b, "kind"]] -= 1
        if not s.kinds[fac.at[b, "kind"]]:
            del s.kinds[fac.at[b, "kind"]]
    keep = np.ones(len(fac), dtype=bool)
    keep[drop] = False
    return (fac[keep].reset_index(drop=True),
            pd.concat([rej, pd.DataFrame(extra, columns=list(REJECT_COLUMNS))], ignore_index=True))


def shift_against_other_layers(facs: Sequence[gpd.GeoDataFrame], summaries: Sequence[LayerSummary],
                               cfg: Config, metric_crs: str, *, config_key: str = "facilities") -> None:
    """Add the GCJ-02/BD-09 shift warning to the summary of each WGS84/CGCS2000 layer whose points sit
    markedly closer to the OTHER layers' facilities once back-shifted (when the roads gave no warning):
    co-located facilities (a 卫生服务站 beside a 日间照料中心) tell a shifted layer whatever its reader."""
    for i, (f, s) in enumerate(zip(facs, summaries, strict=True)):
        fc = next((c for c in cfg.facilities if c.name == s.name), None)
        if fc is None or len(f) < 3 or any(w.startswith("points look shifted") for w in s.warnings):
            continue
        others = [g for j, g in enumerate(facs) if j != i and len(g)]
        if not others:
            continue
        pts = gpd.GeoSeries(pd.concat([g.geometry for g in others], ignore_index=True), crs=metric_crs)
        ll = f.geometry.to_crs("EPSG:4326")
        lon, lat = as_written(ll.x.to_numpy(), ll.y.to_numpy(), fc.coords)  # as the file wrote them
        key = f"{config_key}[{cfg.facilities.index(fc)}]"
        w = shift_warning(f.geometry.x.to_numpy(), f.geometry.y.to_numpy(), lon, lat,
                          pts, metric_crs, key, against="facility of the other layers", coords=fc.coords)
        if w:
            s.warnings.append(w)
            log.warning("%s (%s): %s", fc.name, fc.path, w)


def _empty_facilities(metric_crs: str) -> gpd.GeoDataFrame:
    cols = {c: pd.Series(dtype=float if c in NUMERIC_FIELDS else "int64" if c == "source_row" else object)
            for c in FACILITY_COLUMNS if c != "geometry"}
    return gpd.GeoDataFrame(cols, geometry=gpd.GeoSeries([], crs=metric_crs), crs=metric_crs)


def _reject_ids_across_layers(fac: gpd.GeoDataFrame, rej: pd.DataFrame, reports: list[LayerSummary]
                              ) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """Reject a fac_id already used by an earlier layer (the first is kept); the layers' summaries
    are updated (they were made by this read)."""
    dup_ids = fac["fac_id"].duplicated(keep="first")
    if not dup_ids.any():
        return fac, rej
    extra = []
    first: dict[str, str] = {}
    for fid, lyr in zip(fac["fac_id"], fac["layer"], strict=True):
        first.setdefault(fid, lyr)
    for _, r in fac[dup_ids].iterrows():
        extra.append({"source_file": r["source_file"], "layer": r["layer"], "row": int(r["source_row"]),
                      "reason": f"duplicate id {r['fac_id']!r} (also in layer {first[r['fac_id']]})",
                      "values": json.dumps({k: clean_cell(r[k]) for k in ("fac_id", "name", "kind")},
                                           ensure_ascii=False)})
        s = next(s for s in reports if s.name == r["layer"])
        s.accepted -= 1
        s.rejected[extra[-1]["reason"]] = s.rejected.get(extra[-1]["reason"], 0) + 1
    return fac[~dup_ids].reset_index(drop=True), pd.concat([rej, pd.DataFrame(extra)], ignore_index=True)


def read_facilities(cfg: Config, *, study_area_wgs84: Any, metric_crs: str, config_key: str = "facilities",
                    roads: gpd.GeoSeries | None = None) -> FacilityLayers:
    """Read, check and project every ``[[facilities]]`` layer of the config.

    Parameters
    ----------
    cfg
        Region config (its ``kinds`` are the facility kinds a type column may name).
    study_area_wgs84
        Shapely geometry or GeoDataFrame/GeoSeries (EPSG:4326) of the units; points more than 1 km
        outside it are rejected. ``None`` skips that check (and the swap check needs |lat| > 90).
    metric_crs
        Projected CRS of the output.
    roads
        Optional road lines (metric CRS) for the GCJ-02 / BD-09 shift warning.

    Returns
    -------
    FacilityLayers
        ``facilities``: GeoDataFrame (metric CRS, Point) with :data:`FACILITY_COLUMNS` (beds,
        nursing_beds, childcare_slots in counts; floor_area_m2, land_area_m2 in m²; NaN = unknown);
        ``rejects``: source_file, layer, row, reason, values; ``reports``: one :class:`LayerSummary` each.

    Raises
    ------
    LayerError
        Once, listing every whole-layer problem of every layer (file missing or empty, no CRS, no
        coordinate or type column, unknown configured field, undecodable text).
    """
    area = study_area(study_area_wgs84, metric_crs)
    lon_hint = None
    if study_area_wgs84 is not None:
        c = (gpd.GeoSeries([area], crs=metric_crs).to_crs("EPSG:4326").iloc[0].centroid
             if area is not None else None)
        lon_hint = c.x if c is not None else None
    facs, rejs, reports, problems = [], [], [], []
    for i, fc in enumerate(cfg.facilities):
        try:
            f, r, s = read_layer(fc, i, known_kinds=cfg.kinds, config_key=config_key, area=area,
                                 metric_crs=metric_crs, roads=roads,
                                 lon_hint=lon_hint)
        except LayerError as exc:
            problems.append(str(exc))
            continue
        facs.append(f)
        rejs.append(r)
        reports.append(s)
    if problems:
        raise LayerError(f"{len(problems)} facility layer problem(s):\n"
                         + "\n".join("  " + p for p in problems))
    fac = pd.concat([f for f in facs if len(f)], ignore_index=True) if any(len(f) for f in facs) else \
        _empty_facilities(metric_crs)
    fac = gpd.GeoDataFrame(fac, geometry="geometry", crs=metric_crs)
    rej = pd.concat(rejs, ignore_index=True) if rejs else pd.DataFrame(columns=list(REJECT_COLUMNS))
    fac, rej = _reject_ids_across_layers(fac, rej, reports)
    fac, rej = _duplicates_across_layers(fac, rej, reports, cfg)
    shift_against_other_layers([fac[fac["layer"] == s.name] for s in reports], reports, cfg, metric_crs,
                               config_key=config_key)
    for s in reports:
        if s.accepted + sum(s.rejected.values()) != s.rows_read:
            raise RuntimeError(f"layer {s.name}: accepted + rejected != rows read")
    log.info("Read %d facilities from %d layers (%d rejected)", len(fac), len(reports), len(rej))
    return FacilityLayers(facilities=fac.reset_index(drop=True), rejects=rej.reset_index(drop=True),
                          reports=reports)
