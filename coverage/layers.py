"""Input layers as municipalities send them: 街道/乡镇 units and facility points.

Reads shapefiles (plain or zipped, with or without ``.cpg``), GeoPackage, GeoJSON, CSV and XLSX with
coordinate columns, and OSM files (administrative boundaries as units, facilities by tag). Every layer
is checked as a whole: whole-file problems (missing file, empty file, no CRS, unknown columns) are
collected and raised ONCE as :class:`LayerError`; row problems never raise: each row is either
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
- Duplicate ids are rejected (the first occurrence is kept); facilities with the same name within
  50 m of each other are kept but flagged in ``duplicate_of`` (fac_id of the first one) and reported.
"""

from __future__ import annotations

import io
import json
import logging
import math
import re
import zipfile
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError
from shapely.geometry.base import BaseGeometry

from coverage.config import FACILITY_KINDS, UNIT_CLASSES, UNIT_TYPES, Config, FacilityLayerConfig
from coverage.coords import bd09_to_wgs84, gcj02_to_wgs84, out_of_china, utm_crs_for

log = logging.getLogger(__name__)

__all__ = [
    "FACILITY_COLUMNS",
    "FIELD_ALIASES",
    "KIND_ALIASES",
    "OSM_KIND_RULES",
    "FacilityLayers",
    "LayerError",
    "LayerReport",
    "LayerSummary",
    "Units",
    "check_layers",
    "detect_encoding",
    "facilities_from_osm",
    "map_kind",
    "parse_number",
    "read_facilities",
    "read_units",
    "resolve_metric_crs",
    "units_from_osm",
    "write_rejects",
]


class LayerError(ValueError):
    """An input layer that cannot be used; the message names the file, the problem and the fix."""


# --------------------------------------------------------------------------------------------
# Vocabularies
# --------------------------------------------------------------------------------------------

#: Canonical facility columns in order (ARCHITECTURE.md), plus ``duplicate_of`` and ``note``.
FACILITY_COLUMNS = ("fac_id", "name", "kind", "beds", "nursing_beds", "childcare_slots", "floor_area_m2",
                    "land_area_m2", "address", "operator", "layer", "source_file", "source_row",
                    "duplicate_of", "note", "geometry")
NUMERIC_FIELDS = ("beds", "nursing_beds", "childcare_slots", "floor_area_m2", "land_area_m2")
TEXT_FIELDS = ("name", "address", "operator")

#: canonical field -> accepted column names (compared after :func:`_norm_label`).
FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "fac_id": ("id", "fac_id", "编号", "序号id", "机构编号", "设施编号", "代码", "code"),
    "name": ("name", "名称", "机构名称", "设施名称", "单位名称", "机构", "名字"),
    "kind": ("kind", "type", "类型", "类别", "设施类型", "机构类型", "设施类别", "category"),
    "beds": ("beds", "床位数", "床位", "床位总数", "总床位数", "总床位"),
    "nursing_beds": ("nursing_beds", "护理型床位数", "护理型床位", "护理床位", "护理床位数"),
    "childcare_slots": ("childcare_slots", "托位数", "托位", "托位总数", "slots", "capacity"),
    "floor_area_m2": ("floor_area_m2", "建筑面积", "面积", "floor_area"),
    "land_area_m2": ("land_area_m2", "占地面积", "用地面积", "land_area"),
    "address": ("address", "地址", "详细地址", "addr"),
    "operator": ("operator", "运营方", "运营单位", "运营机构", "举办单位", "主办单位"),
}
X_ALIASES = ("经度", "lon", "lng", "long", "longitude", "x", "东坐标", "x坐标", "横坐标", "point_x", "gcj_lng",
             "经度坐标")
Y_ALIASES = ("纬度", "lat", "latitude", "y", "北坐标", "y坐标", "纵坐标", "point_y", "gcj_lat", "纬度坐标")

#: free-text facility type -> canonical kind. Matched exactly (after normalising), then by the longest
#: alias contained in the value ("公办养老院" -> elderly_institution). Config ``kinds`` is tried first.
KIND_ALIASES: dict[str, str] = {
    **{k: k for k in FACILITY_KINDS},
    **{v: k for k, v in FACILITY_KINDS.items()},
    "养老院": "elderly_institution", "养老机构": "elderly_institution", "福利院": "elderly_institution",
    "社会福利院": "elderly_institution", "老年公寓": "elderly_institution", "护理院": "elderly_institution",
    "社区养老服务综合体": "community_complex", "养老服务综合体": "community_complex",
    "嵌入式社区养老院": "embedded_nursing_home", "嵌入式养老院": "embedded_nursing_home",
    "日间照料中心": "daycare_center", "日间照料站": "daycare_center", "日照中心": "daycare_center",
    "社区日间照料中心": "daycare_center",
    "长寿食堂": "meal_point", "老年餐桌": "meal_point", "助餐点": "meal_point", "老年食堂": "meal_point",
    "社区食堂": "meal_point", "助餐服务点": "meal_point",
    "中央厨房": "central_kitchen",
    "乡镇区域性养老服务中心": "town_regional_center", "区域性养老服务中心": "town_regional_center",
    "村级互助养老服务点": "village_mutual_aid", "互助养老点": "village_mutual_aid",
    "互助养老服务点": "village_mutual_aid",
    "敬老院": "welfare_home", "特困供养服务设施": "welfare_home", "特困人员供养服务设施": "welfare_home",
    "托育机构": "childcare", "托育点": "childcare", "托育中心": "childcare", "托育": "childcare",
    "托育服务机构": "childcare",
    "幼儿园": "kindergarten", "幼儿园托班": "kindergarten", "托班": "kindergarten",
    "老幼复合型社区综合体": "old_young_complex", "老幼复合型综合体": "old_young_complex",
    "社区卫生服务中心": "health_center", "社区卫生服务站": "health_center", "卫生服务站": "health_center",
    "卫生室": "health_center", "诊所": "health_center",
    "乡镇卫生院": "township_hospital", "卫生院": "township_hospital", "中心卫生院": "township_hospital",
    "医院": "hospital", "人民医院": "hospital", "中医院": "hospital",
}

#: OSM tags -> canonical kind, first matching rule wins; a value of ``"*"`` matches any value.
#: Extra rules come from a layer's ``kinds`` entries written ``"key=value"`` (e.g.
#: ``kinds = {"amenity=community_centre" = "daycare_center"}``); they are tried first.
OSM_KIND_RULES: tuple[tuple[dict[str, str], str], ...] = (
    ({"amenity": "nursing_home"}, "elderly_institution"),
    ({"social_facility": "nursing_home"}, "elderly_institution"),
    ({"social_facility": "day_care", "social_facility:for": "senior"}, "daycare_center"),
    ({"social_facility": "outreach", "social_facility:for": "senior"}, "daycare_center"),
    ({"amenity": "social_facility", "social_facility:for": "senior"}, "elderly_institution"),
    ({"amenity": "kindergarten"}, "kindergarten"),
    ({"amenity": "childcare"}, "childcare"),
    ({"amenity": "hospital"}, "hospital"),
    ({"healthcare": "hospital"}, "hospital"),
    ({"amenity": "clinic"}, "health_center"),
    ({"amenity": "doctors"}, "health_center"),
    ({"healthcare": "clinic"}, "health_center"),
    ({"healthcare": "doctor"}, "health_center"),
    ({"healthcare": "centre"}, "health_center"),
)
#: OSM objects that are "rows" of an OSM facility layer (mapped or rejected as unmapped).
_OSM_CANDIDATE = {
    "amenity": {"nursing_home", "social_facility", "kindergarten", "childcare", "hospital", "clinic", "doctors"},
    "social_facility": {"*"},
    "healthcare": {"hospital", "clinic", "doctor", "centre"},
}

_STUDY_BUFFER_M = 1000.0
_DUP_NAME_M = 50.0
_GEOGRAPHIC_AS_WGS84 = {4326, 4490}


# --------------------------------------------------------------------------------------------
# Result types
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Units:
    """Units (街道/乡镇) and communities (社区/村), both GeoDataFrames in EPSG:4326.

    ``units``: unit_code, unit_name, unit_type (街道/镇/乡), unit_class (城区/郊区), area_type
    (old/new/mixed), geometry. ``communities``: community_code, community_name, unit_code, geometry
    (empty when the config gives none). ``warnings``: repairs made (e.g. invalid geometries).
    """

    units: gpd.GeoDataFrame
    communities: gpd.GeoDataFrame
    warnings: tuple[str, ...] = ()


@dataclass
class LayerSummary:
    """What happened to one input layer."""

    name: str
    source_file: str
    rows_read: int = 0
    accepted: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    crs: str = ""
    encoding: str = ""
    kinds: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    error: str = ""

    def text(self) -> str:
        lines = [f"[{self.name}] {self.source_file}"]
        if self.error:
            lines.append(f"  ERROR: {self.error}")
            return "\n".join(lines)
        lines.append(f"  rows read {self.rows_read}, accepted {self.accepted}, "
                     f"rejected {sum(self.rejected.values())}; CRS {self.crs or '-'}; encoding {self.encoding or '-'}")
        if self.kinds:
            lines.append("  kinds: " + ", ".join(f"{k} {n}" for k, n in sorted(self.kinds.items())))
        for reason, n in sorted(self.rejected.items(), key=lambda t: -t[1]):
            lines.append(f"  rejected {n:>5}: {reason}")
        for w in self.warnings:
            lines.append(f"  WARNING: {w}")
        return "\n".join(lines)


@dataclass(frozen=True)
class FacilityLayers:
    """Accepted facilities (metric CRS, columns :data:`FACILITY_COLUMNS`), rejects and per-layer reports."""

    facilities: gpd.GeoDataFrame
    rejects: pd.DataFrame
    reports: list[LayerSummary]


@dataclass
class LayerReport:
    """Result of :func:`check_layers`: one summary per input layer plus whole-run errors."""

    units: LayerSummary
    layers: list[LayerSummary]
    metric_crs: str = ""
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors and not self.units.error and not any(s.error for s in self.layers)

    def text(self) -> str:
        head = f"Input layer check: {'OK' if self.ok else 'PROBLEMS FOUND'}"
        if self.metric_crs:
            head += f" (metric CRS {self.metric_crs})"
        parts = [head, self.units.text(), *(s.text() for s in self.layers)]
        parts += [f"ERROR: {e}" for e in self.errors]
        return "\n".join(parts)


# --------------------------------------------------------------------------------------------
# Small parsers
# --------------------------------------------------------------------------------------------

_BRACKETS = re.compile(r"[\(（\[【].*?[\)）\]】]")
_UNIT_WORDS = ("平方米", "平米", "㎡", "m²", "m2", "张", "个", "床", "人", "座", "间")


def _norm_label(s: Any) -> str:
    """Normalise a column label or a free-text value for matching."""
    t = str(s).strip().lower()
    t = _BRACKETS.sub("", t)
    for u in ("㎡", "m²", "(m2)", "平方米"):
        t = t.replace(u, "")
    return re.sub(r"[\s_\-:：/]+", "", t) if t not in ("_",) else t


def parse_number(value: Any) -> float | None:
    """Parse a capacity/area cell: ``"120张"``, ``"1,500"``, ``"1500㎡"``, ``"约80"``, ``"1.2万"``.

    Returns NaN for empty cells, ``None`` when the text is not a number.
    """
    if value is None:
        return math.nan
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return float(value)
    t = str(value).strip()
    if t in ("", "-", "—", "/", "无", "nan", "NaN", "None", "null", "不详", "未知"):
        return math.nan
    t = t.replace(",", "").replace("，", "").replace(" ", "")
    t = re.sub(r"^(约|大约|近|共)", "", t)
    t = re.sub(r"(左右|余|多)$", "", t)
    for u in _UNIT_WORDS:
        if t.endswith(u):
            t = t[: -len(u)]
            break
    t = re.sub(r"(左右|余|多)$", "", t)
    mult = 1.0
    if t.endswith("万"):
        mult, t = 1e4, t[:-1]
    try:
        v = float(t) * mult
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def map_kind(value: Any, *, extra: Mapping[str, str] | None = None) -> str | None:
    """Map a free-text facility type to a canonical kind (``None`` when unknown)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    raw = str(value).strip()
    if extra:
        if raw in extra:
            return extra[raw]
        ne = {_norm_label(k): v for k, v in extra.items()}
        if _norm_label(raw) in ne:
            return ne[_norm_label(raw)]
    t = _norm_label(raw)
    if not t:
        return None
    table = {_norm_label(k): v for k, v in KIND_ALIASES.items()}
    if t in table:
        return table[t]
    for alias in sorted(table, key=len, reverse=True):
        if len(alias) >= 2 and not alias.isascii() and alias in t:
            return table[alias]
    return None


def detect_encoding(data: bytes) -> str:
    """Guess the text encoding of attribute bytes: ``utf-8`` when they decode strictly as UTF-8,
    else ``gb18030`` when they decode as GB18030 into mostly CJK text; raises ``ValueError`` otherwise."""
    try:
        data.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise ValueError(f"neither UTF-8 nor GB18030/GBK ({exc})") from None
    non_ascii = [c for c in text if ord(c) > 127]
    cjk = sum(1 for c in non_ascii if "\u4e00" <= c <= "\u9fff" or "\u3000" <= c <= "\u303f"
              or "\uff00" <= c <= "\uffef" or c in "㎡")
    if non_ascii and cjk / len(non_ascii) < 0.8:
        raise ValueError(f"decodes as GB18030 but only {cjk} of {len(non_ascii)} non-ASCII characters are CJK")
    return "gb18030"


def _dbf_parts(dbf: bytes) -> tuple[bytes, bytes]:
    """(field-name bytes, record bytes) of a .dbf; the binary header parts are left out."""
    if len(dbf) < 32:
        raise ValueError("truncated .dbf header")
    header_len = int.from_bytes(dbf[8:10], "little")
    names = b" ".join(dbf[i:i + 11].split(b"\0")[0] for i in range(32, max(32, header_len - 32), 32)
                      if dbf[i:i + 1] not in (b"\r", b""))
    return names, dbf[header_len:].rstrip(b"\x1a")


def _guess_dbf_encoding(dbf: bytes) -> str:
    names, body = _dbf_parts(dbf)
    if not body.isascii():
        return detect_encoding(body)
    # the records tell nothing; try the field names, which are cut at 10 bytes and may end in half a
    # character: drop the trailing partial character of each name before testing
    for enc in ("utf-8", "gb18030"):
        try:
            text = " ".join(part.decode(enc, errors="strict") if part.isascii() else
                            _decode_truncated(part, enc) for part in names.split(b" "))
        except UnicodeDecodeError:
            continue
        if enc == "utf-8" or all(ord(c) < 128 or "\u4e00" <= c <= "\u9fff" for c in text):
            return enc
    return "utf-8"


def _decode_truncated(b: bytes, enc: str) -> str:
    for cut in range(4):
        try:
            return b[: len(b) - cut].decode(enc)
        except UnicodeDecodeError:
            continue
    return b.decode(enc)  # raises


def _clean(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return None if math.isnan(float(v)) else float(v)
    if isinstance(v, (pd.Timestamp,)):
        return v.isoformat()
    return v if isinstance(v, (int, float, str, bool)) else str(v)


def _code_str(v: Any) -> str:
    v = _clean(v)
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


def _crs_label(crs: CRS | None) -> str:
    if crs is None:
        return ""
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.name


# --------------------------------------------------------------------------------------------
# Raw reading
# --------------------------------------------------------------------------------------------


@dataclass
class _Raw:
    attrs: pd.DataFrame  # original columns, object dtype, RangeIndex
    geoms: list[BaseGeometry | None]
    row_reason: list[str | None]
    crs: CRS | None
    encoding: str
    labels: dict[str, list[str]]
    warnings: list[str] = field(default_factory=list)
    osm_kinds: list[str | None] | None = None
    osm_ids: list[str] | None = None


def _vector_source(path: Path, layer: str, key: str) -> tuple[str, bytes | None, bytes | None, str]:
    """(GDAL path, dbf bytes, cpg bytes, layer) for shapefiles (plain or zipped) and other vector files."""
    suffix = path.suffix.lower()
    if suffix == ".zip":
        with zipfile.ZipFile(path) as zf:
            shps = [n for n in zf.namelist() if n.lower().endswith(".shp") and not n.startswith("__MACOSX")]
            if not shps:
                raise LayerError(f"{path}: the zip holds no .shp file (members: {', '.join(zf.namelist()[:10])})")
            if len(shps) > 1 and not layer:
                raise LayerError(f"{path}: the zip holds {len(shps)} shapefiles ({', '.join(shps)}); "
                                 f"choose one with {key}.layer = \"<name without .shp>\"")
            shp = next((s for s in shps if Path(s).stem == layer), shps[0]) if layer else shps[0]
            if layer and Path(shp).stem != layer:
                raise LayerError(f"{path}: no shapefile named {layer!r} in the zip (found {', '.join(shps)}); "
                                 f"fix {key}.layer")
            base = shp[:-4]
            names = {n.lower(): n for n in zf.namelist()}
            dbf = zf.read(names[(base + ".dbf").lower()]) if (base + ".dbf").lower() in names else None
            cpg = zf.read(names[(base + ".cpg").lower()]) if (base + ".cpg").lower() in names else None
        return f"/vsizip/{path}/{shp}", dbf, cpg, ""
    if suffix == ".shp":
        dbf_p = next((p for p in (path.with_suffix(".dbf"), path.with_suffix(".DBF")) if p.exists()), None)
        cpg_p = next((p for p in (path.with_suffix(".cpg"), path.with_suffix(".CPG")) if p.exists()), None)
        if dbf_p is None:
            raise LayerError(f"{path}: the attribute table {path.with_suffix('.dbf').name} is missing; "
                             f"send all shapefile parts (.shp .shx .dbf .prj)")
        dbf = dbf_p.read_bytes()
        if len(dbf) == 0:
            raise LayerError(f"{path}: the attribute table {dbf_p.name} is empty (0 bytes); "
                             f"re-export the shapefile")
        return str(path), dbf, (cpg_p.read_bytes() if cpg_p else None), ""
    return str(path), None, None, layer


def _read_vector(path: Path, *, layer: str, encoding: str, key: str) -> _Raw:
    import pyogrio

    src, dbf, cpg, lyr = _vector_source(path, layer, key)
    warnings: list[str] = []
    enc = "utf-8"
    if dbf is not None:
        if encoding != "auto":
            enc = encoding
        elif cpg is not None and cpg.strip():
            enc = cpg.decode("ascii", errors="ignore").strip() or "utf-8"
            if enc.isdigit():  # ANSI code page numbers such as 936
                enc = {"936": "gbk", "65001": "utf-8", "1252": "cp1252"}.get(enc, "cp" + enc)
        else:
            try:
                enc = _guess_dbf_encoding(dbf)
            except ValueError as exc:
                raise LayerError(f"{path}: cannot tell the text encoding of the attribute table ({exc}); "
                                 f"set {key}.encoding = \"gbk\" (or the right one)") from None
        try:
            "".encode(enc)
        except LookupError:
            raise LayerError(f"{path}: unknown encoding {enc!r}; fix {key}.encoding (e.g. \"gbk\", \"utf-8\")") from None
    elif not lyr:
        try:
            layers = pyogrio.list_layers(src)
        except Exception as exc:  # noqa: BLE001 - GDAL raises many error types
            raise LayerError(f"{path}: cannot be read as a vector file ({exc})") from None
        if len(layers) > 1:
            raise LayerError(f"{path}: holds {len(layers)} layers ({', '.join(str(r[0]) for r in layers)}); "
                             f"choose one with {key}.layer")
    try:
        kw: dict[str, Any] = {"encoding": "latin1"} if dbf is not None else {}
        if lyr:
            kw["layer"] = lyr
        gdf = pyogrio.read_dataframe(src, **kw)
    except Exception as exc:  # noqa: BLE001
        raise LayerError(f"{path}: cannot be read ({exc})") from None
    if dbf is not None:  # read as latin1 (byte-transparent) and decode ourselves
        def fix(v: Any) -> Any:
            if not isinstance(v, str):
                return v
            try:  # names cut at 10 bytes may end in half a character: drop it
                return v.encode("latin1").decode(enc, errors="replace").strip().rstrip("\ufffd")
            except UnicodeEncodeError:  # already decoded
                return v

        gdf = gdf.rename(columns={c: fix(c) for c in gdf.columns if c != "geometry"})
        for c in gdf.columns:
            if c != "geometry" and not pd.api.types.is_numeric_dtype(gdf[c]) and \
                    not pd.api.types.is_datetime64_any_dtype(gdf[c]):
                gdf[c] = gdf[c].astype(object).map(fix)
    attrs = pd.DataFrame(gdf.drop(columns="geometry")).astype(object).reset_index(drop=True)
    return _Raw(attrs=attrs, geoms=list(gdf.geometry.values), row_reason=[None] * len(gdf), crs=gdf.crs,
                encoding=enc if dbf is not None else "utf-8 (format)", labels={c: [c] for c in attrs.columns},
                warnings=warnings)


def _read_text(path: Path, encoding: str, key: str) -> tuple[str, str]:
    data = path.read_bytes()
    if encoding != "auto":
        try:
            return data.decode(encoding), encoding
        except (UnicodeDecodeError, LookupError) as exc:
            raise LayerError(f"{path}: cannot decode as {encoding!r} ({exc}); fix {key}.encoding") from None
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace"), "utf-8-sig"
    try:
        enc = detect_encoding(data)
    except ValueError as exc:
        raise LayerError(f"{path}: cannot tell the text encoding ({exc}); set {key}.encoding") from None
    return data.decode(enc), enc


def _header(table: pd.DataFrame, header_rows: int) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """Build column names from the first ``header_rows`` rows (merged cells forward-filled).

    The name is the last non-empty header cell of the column ("床位情况 / 护理型床位数" -> "护理型床位数");
    alias matching also tries the joined and the first labels.
    """
    if len(table) < header_rows:
        return pd.DataFrame(), {}
    head = table.iloc[:header_rows].astype(object).where(table.iloc[:header_rows].notna(), None)
    rows = []
    for r in range(header_rows):
        vals = [None if v is None or str(v).strip() == "" else str(v).strip() for v in head.iloc[r]]
        if r < header_rows - 1:  # group headers: forward-fill merged cells
            last = None
            for j, v in enumerate(vals):
                if v is None:
                    vals[j] = last
                else:
                    last = v
        rows.append(vals)
    names: list[str] = []
    labels: dict[str, list[str]] = {}
    for j in range(table.shape[1]):
        parts = [v for v in (rows[r][j] for r in range(header_rows)) if v]
        name = parts[-1] if parts else f"column_{j + 1}"
        if name in names:
            name = "/".join(parts) if len(parts) > 1 and "/".join(parts) not in names else f"{name}_{j + 1}"
        names.append(name)
        labels[name] = [parts[-1] if parts else name, "".join(parts), *parts]
    body = table.iloc[header_rows:].reset_index(drop=True)
    body.columns = names
    return body.astype(object), labels


def _read_table(path: Path, fc: FacilityLayerConfig, key: str) -> _Raw:
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        text, enc = _read_text(path, fc.encoding, key)
        if not text.strip():
            raise LayerError(f"{path}: the file has no header and no rows")
        try:
            first = text.lstrip("\ufeff").splitlines()[0]
            sep = max((",", "\t", ";", "|"), key=first.count)  # the delimiter of the header line
            table = pd.read_csv(io.StringIO(text), header=None, dtype=str, keep_default_na=False, sep=sep)
        except Exception as exc:  # noqa: BLE001 - pandas parser errors
            raise LayerError(f"{path}: not a readable CSV ({exc})") from None
    else:
        try:
            table = pd.read_excel(path, sheet_name=fc.layer or 0, header=None, dtype=object)
        except ValueError as exc:
            raise LayerError(f"{path}: sheet {fc.layer!r} not found ({exc}); fix {key}.layer") from None
        except Exception as exc:  # noqa: BLE001 - openpyxl raises many types
            raise LayerError(f"{path}: not a readable Excel file ({exc})") from None
        table = table.dropna(how="all").reset_index(drop=True)
        enc = "xlsx (unicode)"
    if table.empty:
        raise LayerError(f"{path}: the file has no header and no rows")
    body, labels = _header(table, fc.header_rows)
    body = body.map(lambda v: None if v is None or (isinstance(v, float) and math.isnan(v))
                    or (isinstance(v, str) and not v.strip()) else (v.strip() if isinstance(v, str) else v))
    body = body.dropna(how="all").reset_index(drop=True)
    return _Raw(attrs=body, geoms=[None] * len(body), row_reason=[None] * len(body), crs=None,
                encoding=enc, labels=labels)


def _find_column(labels: Mapping[str, list[str]], aliases: Iterable[str], *, prefix: bool = False,
                 taken: Iterable[str] = ()) -> str | None:
    """The column whose label matches an alias (exactly, or as a truncated prefix when ``prefix``)."""
    taken = set(taken)
    norm_aliases = [_norm_label(a) for a in aliases]
    for col, labs in labels.items():
        if col in taken:
            continue
        if any(_norm_label(lab) in norm_aliases for lab in labs):
            return col
    if prefix:  # shapefile field names truncated to 10 bytes: "护理型床位" for "护理型床位数"
        for col, labs in labels.items():
            lab = _norm_label(labs[0])
            if col not in taken and len(lab) >= 2 and not lab.isascii() and any(
                    a.startswith(lab) for a in norm_aliases):
                return col
    return None


def _gk_hint(x: np.ndarray, lon_hint: float | None) -> str:
    xm = float(np.nanmedian(x))
    zone = int(xm // 1e6)
    if 25 <= zone <= 45:
        return f"EPSG:{4513 + zone - 25} (CGCS2000 3-degree GK zone {zone}, the easting carries the zone number)"
    if lon_hint is not None and 75 <= lon_hint <= 135:
        cm = int(round(lon_hint / 3.0) * 3)
        return f"EPSG:{4534 + (cm - 75) // 3} (CGCS2000 3-degree GK, central meridian {cm}E)"
    return "the file's projected CRS (e.g. EPSG:4545)"


def _table_points(raw: _Raw, fc: FacilityLayerConfig, key: str, path: Path,
                  lon_hint: float | None) -> None:
    """Fill raw.geoms from the coordinate columns of a CSV/XLSX table (in place: raw is private)."""
    cols = list(raw.attrs.columns)
    xc = fc.x_field or _find_column(raw.labels, X_ALIASES)
    yc = fc.y_field or _find_column(raw.labels, Y_ALIASES)
    problems = []
    if fc.x_field and fc.x_field not in cols:
        problems.append(f"{key}.x_field = {fc.x_field!r} is not a column")
    if fc.y_field and fc.y_field not in cols:
        problems.append(f"{key}.y_field = {fc.y_field!r} is not a column")
    if not problems and (xc is None or yc is None):
        problems.append("no coordinate columns found (looked for 经度/纬度, lon/lat, lng, longitude/latitude, "
                        f"x/y, 东坐标/北坐标); set {key}.x_field and {key}.y_field")
    if problems:
        raise LayerError(f"{path}: " + "; ".join(problems) + f" (columns: {', '.join(map(str, cols))})")
    crs = CRS.from_user_input(fc.crs) if fc.crs else CRS.from_epsg(4326)
    raw.crs = crs
    xs = [parse_number(v) for v in raw.attrs[xc]]
    ys = [parse_number(v) for v in raw.attrs[yc]]
    x = np.array([math.nan if v is None else v for v in xs], dtype=float)
    y = np.array([math.nan if v is None else v for v in ys], dtype=float)
    finite = np.isfinite(x) & np.isfinite(y)
    if finite.any():
        looks_projected = np.nanmedian(np.abs(np.where(finite, x, np.nan))) > 360 or \
            np.nanmedian(np.abs(np.where(finite, y, np.nan))) > 360
        if crs.is_geographic and looks_projected:
            raise LayerError(f"{path}: coordinates {xc}/{yc} look projected (median x "
                             f"{np.nanmedian(x[finite]):.0f}), not degrees; set {key}.crs = "
                             f"{_gk_hint(x[finite], lon_hint)}")
        if crs.is_projected and not looks_projected:
            raise LayerError(f"{path}: coordinates {xc}/{yc} look like degrees but {key}.crs = {fc.crs!r} is "
                             f"projected; remove {key}.crs or give the geographic CRS")
    for i in range(len(x)):
        if xs[i] is None or ys[i] is None:
            raw.row_reason[i] = "non-numeric coordinates"
        elif not finite[i]:
            raw.row_reason[i] = "missing coordinates"
        else:
            raw.geoms[i] = shapely.Point(x[i], y[i])


# --------------------------------------------------------------------------------------------
# OSM
# --------------------------------------------------------------------------------------------


def _osm_rules(extra: Mapping[str, str] | None) -> list[tuple[dict[str, str], str]]:
    rules: list[tuple[dict[str, str], str]] = []
    for k, kind in (extra or {}).items():
        if "=" in k:
            conds = dict(part.split("=", 1) for part in k.split(";") if "=" in part)
            rules.append(({a.strip(): b.strip() for a, b in conds.items()}, kind))
    return rules + list(OSM_KIND_RULES)


def _osm_kind(tags: Mapping[str, str], rules: Sequence[tuple[dict[str, str], str]]) -> str | None:
    for cond, kind in rules:
        if all(k in tags and (v == "*" or tags[k] == v) for k, v in cond.items()):
            return kind
    return None


def _is_candidate(tags: Mapping[str, str], rules: Sequence[tuple[dict[str, str], str]]) -> bool:
    for k, vals in _OSM_CANDIDATE.items():
        if k in tags and ("*" in vals or tags[k] in vals):
            return True
    return _osm_kind(tags, rules) is not None


def facilities_from_osm(path: str | Path, *, kinds: Mapping[str, str] | None = None) -> gpd.GeoDataFrame:
    """Facility candidates of an OSM file (.osm, .osm.pbf), mapped to kinds with :data:`OSM_KIND_RULES`.

    Returns
    -------
    GeoDataFrame (EPSG:4326) with ``osm_id`` ("n123"/"w45"/"r6"), ``kind`` (canonical or None when the
    tags match no rule), ``name``, ``beds``, ``nursing_beds``, ``childcare_slots`` (text as tagged),
    ``address``, ``operator``, ``tags`` (JSON) and the geometry: nodes as points, closed ways and
    multipolygon relations as polygons, open ways as lines (rejected later).
    """
    import osmium

    path = Path(path)
    rules = _osm_rules(kinds)
    rows: list[dict[str, Any]] = []
    wkb = osmium.geom.WKBFactory()

    def add(osm_id: str, tags: Mapping[str, str], geom: BaseGeometry | None) -> None:
        kind = _osm_kind(tags, rules)
        cap = tags.get("capacity")
        addr = " ".join(tags[k] for k in ("addr:street", "addr:housenumber", "addr:city") if k in tags)
        beds = tags.get("beds")
        slots = None
        if kind in ("childcare", "kindergarten", "old_young_complex"):
            slots = cap
        elif beds is None and kind in ("elderly_institution", "welfare_home", "embedded_nursing_home"):
            beds = cap
        rows.append({"osm_id": osm_id, "kind": kind, "name": tags.get("name") or tags.get("name:zh"),
                     "beds": beds, "nursing_beds": None, "childcare_slots": slots,
                     "address": addr or None, "operator": tags.get("operator"),
                     "tags": json.dumps(dict(tags), ensure_ascii=False), "geometry": geom})

    keys = tuple(sorted({*_OSM_CANDIDATE, *(k for cond, _ in rules for k in cond)}))

    def wanted(t: Any) -> bool:  # cheap test on the osmium TagList before building a dict
        return any(k in t for k in keys)

    class _H(osmium.SimpleHandler):
        def node(self, n: Any) -> None:
            if not n.tags or not wanted(n.tags):
                return
            tags = dict(n.tags)
            if _is_candidate(tags, rules):
                add(f"n{n.id}", tags, shapely.Point(n.location.lon, n.location.lat) if n.location.valid() else None)

        def way(self, w: Any) -> None:
            if not w.tags or not wanted(w.tags):
                return
            tags = dict(w.tags)
            if not _is_candidate(tags, rules):
                return
            try:
                coords = [(nd.lon, nd.lat) for nd in w.nodes]
            except osmium.InvalidLocationError:
                add(f"w{w.id}", tags, None)
                return
            if len(coords) >= 4 and coords[0] == coords[-1]:
                geom: BaseGeometry | None = shapely.Polygon(coords)
            elif len(coords) >= 2:
                geom = shapely.LineString(coords)
            else:
                geom = None
            add(f"w{w.id}", tags, geom)

        def area(self, a: Any) -> None:
            if a.from_way() or not wanted(a.tags):
                return  # closed ways are handled in way()
            tags = dict(a.tags)
            if _is_candidate(tags, rules):
                try:
                    geom = shapely.from_wkb(bytes.fromhex(wkb.create_multipolygon(a)))
                except RuntimeError:
                    geom = None
                add(f"r{a.orig_id()}", tags, geom)

    try:
        _H().apply_file(str(path), locations=True)
    except RuntimeError as exc:
        raise LayerError(f"{path}: cannot be read as an OSM file ({exc})") from None
    cols = ["osm_id", "kind", "name", "beds", "nursing_beds", "childcare_slots", "address", "operator", "tags",
            "geometry"]
    gdf = gpd.GeoDataFrame(rows or None, columns=cols, geometry="geometry", crs="EPSG:4326")
    log.info("Read %d facility candidates from OSM file %s (%d mapped to a kind)", len(gdf), path,
             int(gdf["kind"].notna().sum()))
    return gdf


def units_from_osm(path: str | Path, *, admin_level: int | str, unit_type: str = "街道",
                   unit_class: str = "", area_type: str = "mixed", code_tag: str = "",
                   tags: Mapping[str, str] | None = None) -> gpd.GeoDataFrame:
    """Administrative boundary relations of an OSM file as units (EPSG:4326).

    Parameters
    ----------
    path
        .osm / .osm.pbf file (complete relations are needed; incomplete ones are skipped by osmium).
    admin_level
        OSM ``admin_level`` to read (8: Liechtenstein's 11 Gemeinden; 4: Comoros' 3 islands).
    unit_type, unit_class, area_type
        Values given to every unit; ``unit_class`` defaults from the type (街道 -> 城区, 镇/乡 -> 郊区).
    code_tag
        Tag giving ``unit_code`` (e.g. ``"ref"`` or ``"ISO3166-2"``); empty or missing: the relation id.
    tags
        Extra tag filters that must all match (e.g. ``{"ISO3166-2": "*"}``).

    Returns
    -------
    GeoDataFrame with unit_code, unit_name, unit_type, unit_class, area_type, osm_id, geometry.
    """
    import osmium

    if unit_type not in UNIT_TYPES:
        raise LayerError(f"unit_type {unit_type!r}: expected one of {', '.join(UNIT_TYPES)}")
    cls = unit_class or ("城区" if unit_type == "街道" else "郊区")
    if cls not in UNIT_CLASSES:
        raise LayerError(f"unit_class {unit_class!r}: expected one of {', '.join(UNIT_CLASSES)}")
    level = str(admin_level)
    wkb = osmium.geom.WKBFactory()
    rows: list[dict[str, Any]] = []

    class _H(osmium.SimpleHandler):
        def area(self, a: Any) -> None:
            t = a.tags
            if a.from_way() or t.get("boundary") != "administrative" or t.get("admin_level") != level:
                return
            if tags and not all(k in t and (v == "*" or t.get(k) == v) for k, v in tags.items()):
                return
            try:
                geom = shapely.from_wkb(bytes.fromhex(wkb.create_multipolygon(a)))
            except RuntimeError:
                return
            rid = str(a.orig_id())
            rows.append({"unit_code": (t.get(code_tag) if code_tag else None) or rid,
                         "unit_name": t.get("name") or rid, "unit_type": unit_type, "unit_class": cls,
                         "area_type": area_type, "osm_id": rid, "geometry": shapely.make_valid(geom)})

    path = Path(path)
    if not path.exists():
        raise LayerError(f"{path}: OSM file not found")
    _H().apply_file(str(path), locations=True)
    if not rows:
        raise LayerError(f"{path}: no complete boundary=administrative relation with admin_level={level}")
    gdf = gpd.GeoDataFrame(rows, geometry="geometry", crs="EPSG:4326").sort_values("unit_code")
    log.info("Read %d admin_level=%s units from %s", len(gdf), level, path)
    return gdf.reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# Units
# --------------------------------------------------------------------------------------------

_AREA_TYPES = {"old": "old", "new": "new", "mixed": "mixed", "老城区": "old", "已建成": "old", "老城": "old",
               "已建成居住区": "old", "新建": "new", "新城区": "new", "新建城区": "new", "新区": "new",
               "新建居住区": "new", "混合": "mixed"}


def _read_polygons(path: Path, *, layer: str, crs: str, encoding: str, key: str, problems: list[str],
                   warnings: list[str]) -> gpd.GeoDataFrame | None:
    if not path.exists():
        problems.append(f"{path}: file not found; fix {key}.path")
        return None
    if path.stat().st_size == 0:
        problems.append(f"{path}: the file is empty (0 bytes)")
        return None
    try:
        raw = _read_vector(path, layer=layer, encoding=encoding, key=key)
    except LayerError as exc:
        problems.append(str(exc))
        return None
    gdf = gpd.GeoDataFrame(raw.attrs, geometry=gpd.GeoSeries(raw.geoms), crs=raw.crs)
    if raw.crs is None and not crs:
        problems.append(f"{path}: no CRS (no .prj file); set {key}.crs (e.g. \"EPSG:4490\" for CGCS2000 "
                        f"lon/lat or \"EPSG:4545\" for a Gauss-Kruger zone)")
        return None
    if crs:
        gdf = gdf.set_crs(crs, allow_override=True)
    if gdf.crs.to_epsg() in _GEOGRAPHIC_AS_WGS84:
        gdf = gdf.set_crs("EPSG:4326", allow_override=True)
    else:
        gdf = gdf.to_crs("EPSG:4326")
    return gdf


def _fix_polygons(gdf: gpd.GeoDataFrame, ids: Sequence[str], path: Path, what: str, problems: list[str],
                  warnings: list[str]) -> gpd.GeoSeries:
    out = []
    for code, g in zip(ids, gdf.geometry.values):
        if g is None or g.is_empty:
            problems.append(f"{path}: {what} {code!r} has no geometry")
            out.append(g)
            continue
        if not g.is_valid:
            reason = shapely.is_valid_reason(g)
            g = shapely.make_valid(g)
            if g.geom_type == "GeometryCollection":
                g = shapely.unary_union([p for p in g.geoms if p.geom_type in ("Polygon", "MultiPolygon")])
            warnings.append(f"{path}: {what} {code!r}: invalid geometry repaired ({reason})")
        if g.geom_type not in ("Polygon", "MultiPolygon") or g.is_empty:
            problems.append(f"{path}: {what} {code!r} is a {g.geom_type}, expected a polygon")
        out.append(g)
    return gpd.GeoSeries(out, crs=gdf.crs)


def read_units(cfg: Config) -> Units:
    """Read the 街道/乡镇 units (and 社区/村 communities) of the config, in EPSG:4326.

    Checks (all collected, raised once as :class:`LayerError`): file and CRS present, configured fields
    present, unit_type in 街道/镇/乡, unit_class in 城区/郊区 (default from the type when the class field
    is missing or empty: 街道 -> 城区, 镇/乡 -> 郊区), area_type in old/new/mixed (Chinese 老城区/新建
    accepted, default mixed), codes non-empty and unique, communities' parent codes known. Invalid
    polygons are repaired with ``shapely.make_valid`` (warned); empty or non-polygon ones are errors.
    """
    uc = cfg.units
    if uc.source == "osm" or uc.path.suffix.lower() in (".pbf", ".osm", ".o5m") \
            or uc.path.name.lower().endswith(".osm.bz2"):
        return _units_from_osm_config(cfg)
    problems: list[str] = []
    warnings: list[str] = []
    gdf = _read_polygons(uc.path, layer=uc.layer, crs=uc.crs, encoding=uc.encoding, key="units",
                         problems=problems, warnings=warnings)
    units = None
    if gdf is not None:
        cols = list(gdf.columns)
        missing = [f"units.{k} = {getattr(uc, k)!r}" for k in ("code_field", "name_field", "type_field")
                   if getattr(uc, k) not in cols]
        if missing:
            problems.append(f"{uc.path}: field(s) not found: {', '.join(missing)} (columns: "
                            f"{', '.join(c for c in cols if c != 'geometry')}); fix the config keys")
        else:
            codes = [_code_str(v) for v in gdf[uc.code_field]]
            types = [_code_str(v) for v in gdf[uc.type_field]]
            classes = [_code_str(v) for v in gdf[uc.class_field]] if uc.class_field in cols else [""] * len(gdf)
            areas = [_code_str(v) for v in gdf[uc.area_type_field]] if uc.area_type_field in cols else [""] * len(gdf)
            out_cls, out_area = [], []
            for code, t, c, a in zip(codes, types, classes, areas):
                if t not in UNIT_TYPES:
                    problems.append(f"{uc.path}: unit {code!r}: {uc.type_field} = {t!r}, expected 街道, 镇 or 乡")
                if not c:
                    c = "城区" if t == "街道" else "郊区"
                elif c not in UNIT_CLASSES:
                    problems.append(f"{uc.path}: unit {code!r}: {uc.class_field} = {c!r}, expected 城区 or 郊区 "
                                    f"(or empty for the default from the type)")
                out_cls.append(c)
                an = _AREA_TYPES.get(a.lower() if a.isascii() else a, None) if a else "mixed"
                if an is None:
                    problems.append(f"{uc.path}: unit {code!r}: {uc.area_type_field} = {a!r}, expected old, "
                                    f"new or mixed")
                out_area.append(an or "mixed")
            dup = [c for c, n in Counter(codes).items() if n > 1]
            if dup:
                problems.append(f"{uc.path}: duplicate unit codes in {uc.code_field}: {', '.join(map(repr, dup))}")
            if "" in codes:
                problems.append(f"{uc.path}: {codes.count('')} unit(s) with an empty {uc.code_field}")
            geom = _fix_polygons(gdf, codes, uc.path, "unit", problems, warnings)
            units = gpd.GeoDataFrame({
                "unit_code": codes, "unit_name": [_code_str(v) for v in gdf[uc.name_field]],
                "unit_type": types, "unit_class": out_cls, "area_type": out_area}, geometry=geom, crs="EPSG:4326")
    comm = gpd.GeoDataFrame({"community_code": [], "community_name": [], "unit_code": []},
                            geometry=gpd.GeoSeries([], crs="EPSG:4326"), crs="EPSG:4326")
    if uc.communities_path is not None:
        cg = _read_polygons(uc.communities_path, layer=uc.communities_layer, crs=uc.crs, encoding=uc.encoding,
                            key="units.communities_path", problems=problems, warnings=warnings)
        if cg is not None:
            keys = ("community_code_field", "community_name_field", "community_parent_field")
            missing = [f"units.{k} = {getattr(uc, k)!r}" for k in keys if getattr(uc, k) not in cg.columns]
            if missing:
                problems.append(f"{uc.communities_path}: field(s) not found: {', '.join(missing)} (columns: "
                                f"{', '.join(c for c in cg.columns if c != 'geometry')})")
            else:
                ccodes = [_code_str(v) for v in cg[uc.community_code_field]]
                parents = [_code_str(v) for v in cg[uc.community_parent_field]]
                dup = [c for c, n in Counter(ccodes).items() if n > 1]
                if dup:
                    problems.append(f"{uc.communities_path}: duplicate community codes: {', '.join(map(repr, dup))}")
                if units is not None:
                    known = set(units["unit_code"])
                    bad = sorted({p for p in parents if p not in known})
                    if bad:
                        problems.append(f"{uc.communities_path}: parent codes not among the units: "
                                        f"{', '.join(map(repr, bad))} (field {uc.community_parent_field})")
                geom = _fix_polygons(cg, ccodes, uc.communities_path, "community", problems, warnings)
                comm = gpd.GeoDataFrame({"community_code": ccodes,
                                         "community_name": [_code_str(v) for v in cg[uc.community_name_field]],
                                         "unit_code": parents}, geometry=geom, crs="EPSG:4326")
    if problems:
        raise LayerError(f"{len(problems)} problem(s) in the units layers:\n" + "\n".join("  " + p for p in problems))
    assert units is not None
    for w in warnings:
        log.warning(w)
    log.info("Read %d units and %d communities from %s", len(units), len(comm), uc.path)
    return Units(units=units, communities=comm, warnings=tuple(warnings))


def _units_from_osm_config(cfg: Config) -> Units:
    """Units from the administrative boundaries of an OSM file (``units.source = "osm"``, or a
    ``units.path`` ending in .osm/.pbf): ``units.admin_level`` picks the level, ``units.osm_code_tag``
    the tag used as code ("ISO3166-2", "ref"; boundaries without it are skipped and logged: extracts
    carry their neighbours' boundaries too; "" = relation id), ``units.default_type`` /
    ``units.default_class`` the type and class given to every unit (default 街道 / from the type)."""
    uc = cfg.units
    utype = uc.default_type or "街道"
    code_tag = uc.osm_code_tag
    gdf = units_from_osm(uc.path, admin_level=uc.admin_level, unit_type=utype, unit_class=uc.default_class,
                         code_tag=code_tag, tags={code_tag: "*"} if code_tag else None)
    if gdf.empty:
        raise LayerError(f"{uc.path}: no administrative boundary of admin_level={uc.admin_level}"
                         + (f" with a {code_tag!r} tag" if code_tag else "")
                         + " builds a polygon; check units.admin_level / units.osm_code_tag")
    dup = [c for c, n in Counter(gdf["unit_code"]).items() if n > 1]
    if dup:
        raise LayerError(f"{uc.path}: duplicate unit codes from tag {code_tag!r}: {', '.join(map(repr, dup))}; "
                         f"set units.osm_code_tag = \"\" to use relation ids")
    units = gdf[["unit_code", "unit_name", "unit_type", "unit_class", "area_type", "geometry"]].copy()
    comm = gpd.GeoDataFrame({"community_code": [], "community_name": [], "unit_code": []},
                            geometry=gpd.GeoSeries([], crs="EPSG:4326"), crs="EPSG:4326")
    return Units(units=gpd.GeoDataFrame(units, geometry="geometry", crs="EPSG:4326").reset_index(drop=True),
                 communities=comm)


def resolve_metric_crs(cfg: Config, units_wgs84: gpd.GeoDataFrame) -> str:
    """The metric CRS: ``cfg.region.metric_crs`` or, when "auto", the UTM zone (EPSG:326xx north /
    327xx south) of the centroid of the units' bounding box."""
    if cfg.region.metric_crs != "auto":
        log.info("Metric CRS %s (from region.metric_crs)", cfg.region.metric_crs)
        return cfg.region.metric_crs
    minx, miny, maxx, maxy = units_wgs84.to_crs("EPSG:4326").total_bounds
    crs = utm_crs_for((minx + maxx) / 2, (miny + maxy) / 2)
    log.info("Metric CRS %s (UTM zone of the study area's centre %.4f, %.4f; region.metric_crs = \"auto\")",
             crs, (minx + maxx) / 2, (miny + maxy) / 2)
    return crs


# --------------------------------------------------------------------------------------------
# Facilities
# --------------------------------------------------------------------------------------------


def _study_area(study_area_wgs84: Any, metric_crs: str) -> BaseGeometry | None:
    if study_area_wgs84 is None:
        return None
    if isinstance(study_area_wgs84, (gpd.GeoDataFrame, gpd.GeoSeries)):
        gs = gpd.GeoSeries(study_area_wgs84.geometry.values, crs=study_area_wgs84.crs or "EPSG:4326")
    else:
        gs = gpd.GeoSeries([study_area_wgs84], crs="EPSG:4326")
    if gs.crs is not None and gs.crs.to_epsg() not in _GEOGRAPHIC_AS_WGS84:
        gs = gs.to_crs("EPSG:4326")
    area = shapely.union_all(gs.set_crs("EPSG:4326", allow_override=True).to_crs(metric_crs).values)
    return shapely.buffer(area, _STUDY_BUFFER_M)


def _to_wgs84(x: np.ndarray, y: np.ndarray, crs: CRS) -> tuple[np.ndarray, np.ndarray]:
    if crs.to_epsg() in _GEOGRAPHIC_AS_WGS84:
        return x.copy(), y.copy()
    tr = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    lon, lat = tr.transform(x, y)
    return np.asarray(lon, float), np.asarray(lat, float)


def _unshift(lon: np.ndarray, lat: np.ndarray, coords: str) -> tuple[np.ndarray, np.ndarray]:
    if coords == "gcj02":
        return gcj02_to_wgs84(lon, lat)
    if coords == "bd09":
        return bd09_to_wgs84(lon, lat)
    return lon, lat


def _shift_warning(xm: np.ndarray, ym: np.ndarray, lon: np.ndarray, lat: np.ndarray, roads: gpd.GeoSeries,
                   metric_crs: str, key: str) -> str | None:
    """Warn when the points sit markedly closer to the roads once back-shifted from GCJ-02 / BD-09.

    The statistic is the mean distance to the nearest road with each distance capped at 300 m (the
    median alone does not separate the cases on a dense street grid, where a ~500 m shift still lands
    most points near some road: the shift shows in the tail). "Markedly" means the back-shifted mean is
    below 60 % of the as-read mean and at least 15 m smaller.
    """
    if len(xm) < 3 or roads is None or len(roads) == 0 or out_of_china(lon, lat).mean() > 0.5:
        return None
    tree = shapely.STRtree(np.asarray(roads.values))

    def dist(px: np.ndarray, py: np.ndarray) -> np.ndarray:
        _, d = tree.query_nearest(shapely.points(px, py), return_distance=True, all_matches=False)
        return np.minimum(np.asarray(d, float), 300.0)

    tr = Transformer.from_crs("EPSG:4326", metric_crs, always_xy=True)
    d0 = dist(xm, ym)
    best: tuple[str, np.ndarray] | None = None
    for hint, fn in (("gcj02", gcj02_to_wgs84), ("bd09", bd09_to_wgs84)):
        bx, by = tr.transform(*fn(lon, lat))
        d1 = dist(np.asarray(bx), np.asarray(by))
        if d1.mean() < 0.6 * d0.mean() and d0.mean() - d1.mean() > 15.0 and (
                best is None or d1.mean() < best[1].mean()):
            best = (hint, d1)
    if best is None:
        return None
    name = {"gcj02": "GCJ-02 (AMap/Tencent)", "bd09": "BD-09 (Baidu)"}[best[0]]
    d1 = best[1]
    return (f"points look shifted: distance to the nearest road is {d0.mean():.0f} m on average (median "
            f"{np.median(d0):.0f} m) as read but {d1.mean():.0f} m (median {np.median(d1):.0f} m) if they are "
            f"{name} coordinates; if they were copied from that map set {key}.coords = \"{best[0]}\"")


def _read_layer(fc: FacilityLayerConfig, idx: int, *, area: BaseGeometry | None, metric_crs: str,
                roads: gpd.GeoSeries | None, lon_hint: float | None
                ) -> tuple[gpd.GeoDataFrame, pd.DataFrame, LayerSummary]:
    key = f"facilities[{idx}]"
    path = fc.path
    summary = LayerSummary(name=fc.name, source_file=str(path))
    if not path.exists():
        raise LayerError(f"{path}: file not found; fix {key}.path")
    if path.is_file() and path.stat().st_size == 0:
        raise LayerError(f"{path}: the file is empty (0 bytes); re-export it or remove the [[facilities]] "
                         f"entry {fc.name!r}")
    suffix = path.suffix.lower()
    if fc.from_osm or suffix in (".pbf", ".osm", ".bz2", ".o5m"):
        og = facilities_from_osm(path, kinds=fc.kinds)
        raw = _Raw(attrs=pd.DataFrame(og.drop(columns=["geometry", "kind", "osm_id"])).astype(object),
                   geoms=list(og.geometry.values), row_reason=[None] * len(og), crs=CRS.from_epsg(4326),
                   encoding="utf-8 (OSM)", labels={}, osm_kinds=list(og["kind"]), osm_ids=list(og["osm_id"]))
        raw.labels = {c: [c] for c in raw.attrs.columns if c != "tags"}
    elif suffix in (".csv", ".txt", ".xlsx", ".xls", ".xlsm"):
        raw = _read_table(path, fc, key)
        _table_points(raw, fc, key, path, lon_hint)
    else:
        raw = _read_vector(path, layer=fc.layer, encoding=fc.encoding, key=key)
        if fc.crs:
            try:
                cfg_crs = CRS.from_user_input(fc.crs)
            except CRSError:
                raise LayerError(f"{key}.crs = {fc.crs!r} is not a CRS pyproj understands") from None
            if raw.crs is not None and not raw.crs.equals(cfg_crs):
                summary.warnings.append(f"{key}.crs = {fc.crs} overrides the file's CRS {_crs_label(raw.crs)}")
            raw.crs = cfg_crs
        if raw.crs is None:
            raise LayerError(f"{path}: no CRS (no .prj file); set {key}.crs (e.g. \"EPSG:4490\" for CGCS2000 "
                             f"lon/lat, \"EPSG:4545\" for CGCS2000 3-degree Gauss-Kruger 108E)")
    n = len(raw.attrs)
    summary.rows_read = n
    summary.encoding = raw.encoding
    summary.crs = _crs_label(raw.crs) + (f" + coords {fc.coords}" if fc.coords in ("gcj02", "bd09") else "")
    summary.warnings.extend(raw.warnings)
    assert raw.crs is not None

    # ---- fields
    mapping: dict[str, str] = {}
    bad_fields = []
    col: str | None
    for canon, col in fc.fields.items():
        if canon not in FIELD_ALIASES:
            bad_fields.append(f"{key}.fields.{canon}: unknown field (allowed: {', '.join(FIELD_ALIASES)})")
        elif col not in raw.attrs.columns:
            bad_fields.append(f"{key}.fields.{canon} = {col!r}: no such column")
        else:
            mapping[canon] = col
    if bad_fields:
        raise LayerError(f"{path}: " + "; ".join(bad_fields) + f" (columns: {', '.join(map(str, raw.attrs.columns))})")
    for canon, aliases in FIELD_ALIASES.items():
        if canon not in mapping:
            col = _find_column(raw.labels, aliases, taken=set(mapping.values()))
            if col is not None:
                mapping[canon] = col
    for canon, aliases in FIELD_ALIASES.items():
        if canon not in mapping:
            col = _find_column(raw.labels, aliases, prefix=True, taken=set(mapping.values()))
            if col is not None:
                mapping[canon] = col
    if raw.osm_kinds is None and "kind" not in mapping and not fc.default_kind:
        raise LayerError(f"{path}: no facility type column (类型/类别/设施类型/kind/type) and no "
                         f"{key}.default_kind; add the column, map it with {key}.fields.kind = \"<column>\", or "
                         f"set {key}.default_kind (columns: {', '.join(map(str, raw.attrs.columns))})")
    log.debug("%s: field mapping %s", fc.name, mapping)

    reason: list[str | None] = list(raw.row_reason)
    notes: list[str] = [""] * n

    # ---- geometry -> one point per row, in the layer CRS
    px = np.full(n, np.nan)
    py = np.full(n, np.nan)
    for i, g in enumerate(raw.geoms):
        if reason[i]:
            continue
        if g is None or (isinstance(g, float) and math.isnan(g)):
            reason[i] = "null geometry"
            continue
        if g.is_empty:
            reason[i] = "empty geometry"
            continue
        gt = g.geom_type
        if gt == "Point":
            pass
        elif gt in ("Polygon", "MultiPolygon", "MultiPoint"):
            notes[i] = f"{gt.lower()}: centroid used"
            g = g.centroid if gt == "MultiPoint" else g.representative_point() if not g.centroid.within(g) else g.centroid
        elif gt in ("LineString", "MultiLineString", "LinearRing"):
            reason[i] = "line geometry (expected a point)"
            continue
        else:
            reason[i] = f"unsupported geometry type {gt}"
            continue
        px[i], py[i] = g.x, g.y
    if any(notes):
        summary.warnings.append(f"{sum(1 for t in notes if t)} polygon/multi-point feature(s) reduced to a point "
                                f"(see the note column)")

    # ---- to WGS84 (+ GCJ-02/BD-09 back-shift), swap check, metric
    ok = np.array([r is None for r in reason]) & np.isfinite(px) & np.isfinite(py)
    lon = np.full(n, np.nan)
    lat = np.full(n, np.nan)
    geographic = raw.crs.is_geographic
    if ok.any():
        if geographic:
            lon[ok], lat[ok] = px[ok], py[ok]
        else:
            lon[ok], lat[ok] = _to_wgs84(px[ok], py[ok], raw.crs)
    tr = Transformer.from_crs("EPSG:4326", metric_crs, always_xy=True)

    def metric_and_inside(lo: np.ndarray, la: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        valid = np.isfinite(lo) & np.isfinite(la) & (np.abs(la) <= 90) & (np.abs(lo) <= 180)
        ux, uy = _unshift(np.where(valid, lo, 0.0), np.where(valid, la, 0.0), fc.coords)
        mx, my = tr.transform(ux, uy)
        mx, my = np.asarray(mx, float), np.asarray(my, float)
        inside = valid & np.isfinite(mx) & np.isfinite(my)
        if area is not None:
            inside &= shapely.contains_xy(area, np.where(inside, mx, 0.0), np.where(inside, my, 0.0))
        return np.where(valid, mx, np.nan), np.where(valid, my, np.nan), inside

    mx, my, inside = metric_and_inside(lon, lat)
    if geographic:
        sx, sy, s_inside = metric_and_inside(lat, lon)
        if area is None:
            swap = ok & ((np.abs(lat) > 90) & (np.abs(lon) <= 90))
            s_inside = swap
        else:
            swap = ok & ~inside & s_inside
        if swap.any():
            rows = (np.flatnonzero(swap) + 1).tolist()
            summary.warnings.append(f"{len(rows)} row(s) had latitude and longitude swapped and were swapped back "
                                    f"(rows {', '.join(map(str, rows[:20]))}{' ...' if len(rows) > 20 else ''})")
            lon[swap], lat[swap] = lat[swap].copy(), lon[swap].copy()
            mx[swap], my[swap], inside[swap] = sx[swap], sy[swap], True
            for i in np.flatnonzero(swap).tolist():
                notes[i] = (notes[i] + "; " if notes[i] else "") + "latitude/longitude swapped back"
    for i in np.flatnonzero(ok).tolist():
        if not (np.isfinite(mx[i]) and np.isfinite(my[i])):
            reason[i] = "coordinates out of range"
        elif not inside[i]:
            reason[i] = "outside the study area (more than 1 km beyond the units)"

    # ---- kinds
    kinds: list[str | None] = [None] * n
    col_kind = mapping.get("kind")
    for i in range(n):
        if raw.osm_kinds is not None:
            kinds[i] = raw.osm_kinds[i]
            if kinds[i] is None and reason[i] is None:
                tags = json.loads(cast(str, raw.attrs.at[i, "tags"]))
                key_tags = ", ".join(f"{k}={tags[k]}" for k in ("amenity", "social_facility", "social_facility:for",
                                                               "healthcare") if k in tags)
                reason[i] = f"OSM tags not mapped to a kind: {key_tags}"
            continue
        v = raw.attrs.at[i, col_kind] if col_kind else None
        v = _clean(v)
        if v is None or str(v).strip() == "":
            if fc.default_kind:
                kinds[i] = fc.default_kind
            elif reason[i] is None:
                reason[i] = "missing kind"
            continue
        k = map_kind(v, extra=fc.kinds)
        if k is None and reason[i] is None:
            reason[i] = f"unknown kind {str(v).strip()!r}"
        kinds[i] = k

    # ---- numbers and text
    values: dict[str, np.ndarray] = {}
    for f in NUMERIC_FIELDS:
        arr = np.full(n, np.nan)
        col = mapping.get(f)
        if col is not None:
            for i in range(n):
                v = parse_number(raw.attrs.at[i, col])
                if v is None:
                    if reason[i] is None:
                        reason[i] = f"non-numeric {f} {str(raw.attrs.at[i, col])!r}"
                else:
                    arr[i] = v
        values[f] = arr
    for i in range(n):
        if reason[i] is not None:
            continue
        for f in ("beds", "nursing_beds", "childcare_slots"):
            if values[f][i] < 0:
                reason[i] = f"negative {f} ({values[f][i]:g})"
                break
        else:
            for f in ("floor_area_m2", "land_area_m2"):
                if values[f][i] <= 0:
                    reason[i] = f"non-positive {f} ({values[f][i]:g})"
                    break
            else:
                if values["nursing_beds"][i] > values["beds"][i]:
                    reason[i] = f"nursing_beds ({values['nursing_beds'][i]:g}) > beds ({values['beds'][i]:g})"
    texts = {f: [("" if _clean(raw.attrs.at[i, mapping[f]]) is None else str(_clean(raw.attrs.at[i, mapping[f]])))
                 if f in mapping else "" for i in range(n)] for f in TEXT_FIELDS}

    # ---- ids
    fac_ids: list[str] = []
    seen: dict[str, int] = {}
    for i in range(n):
        if raw.osm_ids is not None:
            fid = f"osm:{raw.osm_ids[i]}"
        elif "fac_id" in mapping and _code_str(raw.attrs.at[i, mapping["fac_id"]]):
            fid = _code_str(raw.attrs.at[i, mapping["fac_id"]])
        else:
            fid = f"{fc.name}:{i + 1}"
        fac_ids.append(fid)
        if reason[i] is None:
            if fid in seen:
                reason[i] = f"duplicate id {fid!r} (first at row {seen[fid]})"
            else:
                seen[fid] = i + 1

    # ---- assemble
    acc = np.array([r is None for r in reason], dtype=bool)
    src = str(path)
    fac = gpd.GeoDataFrame({
        "fac_id": [fac_ids[i] for i in np.flatnonzero(acc)],
        "name": [texts["name"][i] for i in np.flatnonzero(acc)],
        "kind": [kinds[i] for i in np.flatnonzero(acc)],
        **{f: values[f][acc] for f in NUMERIC_FIELDS},
        "address": [texts["address"][i] for i in np.flatnonzero(acc)],
        "operator": [texts["operator"][i] for i in np.flatnonzero(acc)],
        "layer": fc.name, "source_file": src,
        "source_row": (np.flatnonzero(acc) + 1).astype(np.int64),
        "duplicate_of": "",
        "note": [notes[i] for i in np.flatnonzero(acc)],
    }, geometry=gpd.points_from_xy(mx[acc], my[acc]), crs=metric_crs)
    rej_rows = []
    for i in np.flatnonzero(~acc).tolist():
        rec = {str(k): _clean(v) for k, v in raw.attrs.iloc[i].items()}
        g = raw.geoms[i]
        if g is not None and not (isinstance(g, float)) and raw.osm_kinds is None and not g.is_empty and \
                raw.crs is not None and "coordinates" not in (reason[i] or "") and suffix not in (".csv", ".xlsx"):
            rec["geometry"] = g.wkt[:200]
        rej_rows.append({"source_file": src, "layer": fc.name, "row": i + 1, "reason": reason[i],
                         "values": json.dumps(rec, ensure_ascii=False, default=str)})
    rejects = pd.DataFrame(rej_rows, columns=["source_file", "layer", "row", "reason", "values"])
    summary.accepted = int(acc.sum())
    summary.rejected = dict(Counter(r for r in reason if r is not None))
    summary.kinds = dict(Counter(fac["kind"]))
    if summary.accepted + len(rejects) != summary.rows_read:  # invariant, not an input check
        raise RuntimeError(f"{path}: accepted {summary.accepted} + rejected {len(rejects)} != rows {n}")
    unknown = sorted({r for r in summary.rejected if r.startswith("unknown kind")})
    if unknown:
        summary.warnings.append(f"{len(unknown)} unknown type value(s): map them with {key}.kinds = "
                                f"{{\"<value>\" = \"<kind>\"}} (kinds: {', '.join(FACILITY_KINDS)})")
    if roads is not None and fc.coords in ("wgs84", "cgcs2000") and summary.accepted >= 3:
        w = _shift_warning(fac.geometry.x.to_numpy(), fac.geometry.y.to_numpy(), lon[acc], lat[acc], roads,
                           metric_crs, key)
        if w:
            summary.warnings.append(w)
    if summary.rows_read == 0:
        summary.warnings.append("the layer has no data rows")
    for w in summary.warnings:
        log.warning("%s (%s): %s", fc.name, path, w)
    log.info("Read facility layer %s: %d rows, %d accepted, %d rejected", fc.name, n, summary.accepted,
             len(rejects))
    return fac, rejects, summary


def _flag_duplicates(fac: gpd.GeoDataFrame, max_m: float = _DUP_NAME_M) -> tuple[gpd.GeoDataFrame, int]:
    out = fac.copy()
    dup = [""] * len(out)
    names = out["name"].map(lambda s: _norm_label(s) if s else "").to_numpy()
    xs, ys = out.geometry.x.to_numpy(), out.geometry.y.to_numpy()
    ids = out["fac_id"].to_numpy()
    groups: dict[str, list[int]] = {}
    for i, nm in enumerate(names):
        if nm:
            groups.setdefault(nm, []).append(i)
    for idx in groups.values():
        for a_pos, a in enumerate(idx):
            if dup[a]:
                continue
            for b in idx[a_pos + 1:]:
                if not dup[b] and math.hypot(xs[a] - xs[b], ys[a] - ys[b]) <= max_m:
                    dup[b] = str(ids[a])
    out["duplicate_of"] = dup
    return out, sum(1 for d in dup if d)


def _empty_facilities(metric_crs: str) -> gpd.GeoDataFrame:
    cols = {c: pd.Series(dtype=float if c in NUMERIC_FIELDS else "int64" if c == "source_row" else object)
            for c in FACILITY_COLUMNS if c != "geometry"}
    return gpd.GeoDataFrame(cols, geometry=gpd.GeoSeries([], crs=metric_crs), crs=metric_crs)


def read_facilities(cfg: Config, *, study_area_wgs84: Any, metric_crs: str,
                    roads: gpd.GeoSeries | None = None) -> FacilityLayers:
    """Read, check and project every ``[[facilities]]`` layer of the config.

    Parameters
    ----------
    cfg
        Region config.
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
    area = _study_area(study_area_wgs84, metric_crs)
    lon_hint = None
    if study_area_wgs84 is not None:
        c = (gpd.GeoSeries([area], crs=metric_crs).to_crs("EPSG:4326").iloc[0].centroid if area is not None else None)
        lon_hint = c.x if c is not None else None
    facs, rejs, reports, problems = [], [], [], []
    for i, fc in enumerate(cfg.facilities):
        try:
            f, r, s = _read_layer(fc, i, area=area, metric_crs=metric_crs, roads=roads, lon_hint=lon_hint)
        except LayerError as exc:
            problems.append(str(exc))
            continue
        facs.append(f)
        rejs.append(r)
        reports.append(s)
    if problems:
        raise LayerError(f"{len(problems)} facility layer problem(s):\n" + "\n".join("  " + p for p in problems))
    fac = pd.concat([f for f in facs if len(f)], ignore_index=True) if any(len(f) for f in facs) else \
        _empty_facilities(metric_crs)
    fac = gpd.GeoDataFrame(fac, geometry="geometry", crs=metric_crs)
    rej = pd.concat(rejs, ignore_index=True) if rejs else pd.DataFrame(
        columns=["source_file", "layer", "row", "reason", "values"])
    # ids unique across layers
    dup_ids = fac["fac_id"].duplicated(keep="first")
    if dup_ids.any():
        extra = []
        first: dict[str, str] = {}
        for fid, lyr in zip(fac["fac_id"], fac["layer"]):
            first.setdefault(fid, lyr)
        for _, r in fac[dup_ids].iterrows():
            extra.append({"source_file": r["source_file"], "layer": r["layer"], "row": int(r["source_row"]),
                          "reason": f"duplicate id {r['fac_id']!r} (also in layer {first[r['fac_id']]})",
                          "values": json.dumps({k: _clean(r[k]) for k in ("fac_id", "name", "kind")},
                                               ensure_ascii=False)})
            s = next(s for s in reports if s.name == r["layer"])
            s.accepted -= 1
            s.rejected[extra[-1]["reason"]] = s.rejected.get(extra[-1]["reason"], 0) + 1
        fac = fac[~dup_ids].reset_index(drop=True)
        rej = pd.concat([rej, pd.DataFrame(extra)], ignore_index=True)
    dup_m = max((f.duplicate_max_m for f in cfg.facilities), default=_DUP_NAME_M)
    fac, n_dup = _flag_duplicates(fac, dup_m)
    if n_dup:
        for s in reports:
            k = int(((fac["layer"] == s.name) & (fac["duplicate_of"] != "")).sum())
            if k:
                s.warnings.append(f"{k} facility(ies) share a name with another within {dup_m:.0f} m "
                                  f"(kept, flagged in duplicate_of)")
    for s in reports:
        if s.accepted + sum(s.rejected.values()) != s.rows_read:
            raise RuntimeError(f"layer {s.name}: accepted + rejected != rows read")
    log.info("Read %d facilities from %d layers (%d rejected)", len(fac), len(reports), len(rej))
    return FacilityLayers(facilities=fac.reset_index(drop=True), rejects=rej.reset_index(drop=True), reports=reports)


def _osm_road_lines(path: Path, metric_crs: str, bbox: tuple[float, float, float, float]) -> gpd.GeoSeries:
    """highway=* ways of an OSM file touching ``bbox`` (lon/lat) as lines in the metric CRS (for the
    shift warning of :func:`check_layers` only; routing uses :mod:`coverage.network`)."""
    import osmium

    lines: list[BaseGeometry] = []
    x0, y0, x1, y1 = bbox

    class _H(osmium.SimpleHandler):
        def way(self, w: Any) -> None:
            if "highway" not in w.tags:
                return
            try:
                xy = [(n.lon, n.lat) for n in w.nodes]
            except osmium.InvalidLocationError:
                return
            if len(xy) >= 2 and any(x0 <= x <= x1 and y0 <= y <= y1 for x, y in xy):
                lines.append(shapely.LineString(xy))

    _H().apply_file(str(path), locations=True)
    return gpd.GeoSeries(lines, crs="EPSG:4326").to_crs(metric_crs)


def check_layers(cfg: Config, *, roads: gpd.GeoSeries | None = None) -> LayerReport:
    """Read every input layer and report rows, accepted, rejected by reason, CRS, encoding, kinds and
    warnings (``python -m coverage check-layers``). Never raises for input problems: they are in the
    report and ``.ok`` is False.

    ``roads`` (metric CRS lines) feed the GCJ-02/BD-09 shift warning; when not given and the network
    source is an OSM file, its highway ways are read for that purpose."""
    us = LayerSummary(name="units", source_file=str(cfg.units.path))
    report = LayerReport(units=us, layers=[])
    try:
        units = read_units(cfg)
    except LayerError as exc:
        us.error = str(exc)
        units = None
    area = None
    if units is not None:
        us.rows_read = us.accepted = len(units.units)
        us.crs = "EPSG:4326 (as read, reprojected)"
        us.kinds = dict(Counter(units.units["unit_type"] + "/" + units.units["unit_class"]))
        us.warnings.extend(units.warnings)
        if len(units.communities):
            us.kinds["communities (社区/村)"] = len(units.communities)
        report.metric_crs = resolve_metric_crs(cfg, units.units)
        area = units.units
    metric = report.metric_crs or "EPSG:3857"
    net = cfg.network
    if roads is None and area is not None and net.source == "osm_file" and net.path is not None and net.path.exists():
        try:
            roads = _osm_road_lines(net.path, metric, tuple(area.total_bounds))
        except Exception as exc:  # noqa: BLE001 - an unreadable network is the network check's business
            log.warning("could not read roads from %s for the shift check: %s", net.path, exc)
    lon_hint = None
    area_m = _study_area(area, metric) if area is not None else None
    if area is not None:
        lon_hint = float(area.to_crs("EPSG:4326").union_all().centroid.x)
    for i, fc in enumerate(cfg.facilities):
        try:
            _, _, s = _read_layer(fc, i, area=area_m, metric_crs=metric, roads=roads, lon_hint=lon_hint)
        except LayerError as exc:
            s = LayerSummary(name=fc.name, source_file=str(fc.path), error=str(exc))
        report.layers.append(s)
    return report


def write_rejects(rejects: pd.DataFrame, path: str | Path) -> Path:
    """Write the rejects table as CSV in UTF-8 with BOM (so Excel shows the Chinese text)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cols = ["source_file", "layer", "row", "reason", "values"]
    rejects.reindex(columns=cols).to_csv(path, index=False, encoding="utf-8-sig")
    log.info("Wrote %d rejected rows to %s", len(rejects), path)
    return path
