"""What the words in a municipal layer mean: column aliases, facility-type aliases, OSM tag rules and
the parsers of single cells (numbers such as ``"120张"``, codes, labels).

Everything here is a pure function of a value or a table of words; no file is read. The kind aliases
are built from the facility kinds a config knows (:data:`Config.kinds`), so a kind added with
``[kinds.<id>] label_zh = ...`` is accepted by its id and its Chinese label.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from coverage.services import BUILTIN_KINDS, Kind

__all__ = [
    "FACILITY_COLUMNS",
    "FIELD_ALIASES",
    "KIND_ALIASES",
    "NUMERIC_FIELDS",
    "OSM_CANDIDATE",
    "OSM_KIND_RULES",
    "REJECT_COLUMNS",
    "TEXT_FIELDS",
    "X_ALIASES",
    "Y_ALIASES",
    "clean_cell",
    "code_str",
    "find_column",
    "is_osm_candidate",
    "kind_aliases",
    "map_kind",
    "norm_label",
    "osm_kind",
    "osm_rules",
    "parse_number",
]

#: Canonical facility columns in order (ARCHITECTURE.md), plus ``duplicate_of`` and ``note``.
FACILITY_COLUMNS = ("fac_id", "name", "kind", "beds", "nursing_beds", "childcare_slots", "floor_area_m2",
                    "land_area_m2", "address", "operator", "layer", "source_file", "source_row",
                    "duplicate_of", "note", "geometry")
NUMERIC_FIELDS = ("beds", "nursing_beds", "childcare_slots", "floor_area_m2", "land_area_m2")
TEXT_FIELDS = ("name", "address", "operator")
#: Columns of the rejects table, in order.
REJECT_COLUMNS = ("source_file", "layer", "row", "reason", "values")

#: canonical field -> accepted column names (compared after :func:`norm_label`).
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
X_ALIASES = ("经度", "lon", "lng", "long", "longitude", "x", "东坐标", "x坐标", "横坐标", "point_x",
             "gcj_lng", "经度坐标")
Y_ALIASES = ("纬度", "lat", "latitude", "y", "北坐标", "y坐标", "纵坐标", "point_y", "gcj_lat", "纬度坐标")

#: free-text facility type -> canonical kind, besides the kinds' own ids and Chinese labels.
_TYPE_WORDS: dict[str, str] = {
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


def kind_aliases(kinds: Mapping[str, Kind] = BUILTIN_KINDS) -> dict[str, str]:
    """Free-text facility type -> canonical kind: each kind's id and ``label_zh``, then the usual type
    words ("养老院", "长寿食堂", ...). Matched exactly (after normalising), then by the longest alias
    contained in the value ("公办养老院" -> elderly_institution); a layer's config ``kinds`` is tried first.

    The id and label of a kind a config adds or relabels win over a type word they repeat (a region's
    own kind is accepted by its own name); the built-in ones agree with the type words.
    """
    table = {**{k: k for k in kinds}, **{v.label_zh: k for k, v in kinds.items()}, **_TYPE_WORDS}
    for k, v in kinds.items():
        if BUILTIN_KINDS.get(k) != v:
            table[k] = k
            table[v.label_zh] = k
    return table


#: :func:`kind_aliases` of the built-in kinds.
KIND_ALIASES: dict[str, str] = kind_aliases(BUILTIN_KINDS)

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
OSM_CANDIDATE: dict[str, set[str]] = {
    "amenity": {"nursing_home", "social_facility", "kindergarten", "childcare", "hospital", "clinic",
                "doctors"},
    "social_facility": {"*"},
    "healthcare": {"hospital", "clinic", "doctor", "centre"},
}

OsmRules = Sequence[tuple[dict[str, str], str]]


# --------------------------------------------------------------------------------------------
# Labels and cells
# --------------------------------------------------------------------------------------------

_BRACKETS = re.compile(r"[\(（\[【].*?[\)）\]】]")
_UNIT_WORDS = ("平方米", "平米", "㎡", "m²", "m2", "张", "个", "床", "人", "座", "间")


def norm_label(s: Any) -> str:
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


def map_kind(value: Any, *, extra: Mapping[str, str] | None = None,
             kinds: Mapping[str, Kind] = BUILTIN_KINDS) -> str | None:
    """Map a free-text facility type to a canonical kind of ``kinds`` (``None`` when unknown).

    ``extra`` (a layer's config ``kinds``: type text -> kind) is tried first, then
    :func:`kind_aliases` of ``kinds``.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    raw = str(value).strip()
    if extra:
        if raw in extra:
            return extra[raw]
        ne = {norm_label(k): v for k, v in extra.items()}
        if norm_label(raw) in ne:
            return ne[norm_label(raw)]
    t = norm_label(raw)
    if not t:
        return None
    table = {norm_label(k): v for k, v in kind_aliases(kinds).items()}
    if t in table:
        return table[t]
    for alias in sorted(table, key=len, reverse=True):
        if len(alias) >= 2 and not alias.isascii() and alias in t:
            return table[alias]
    return None


def clean_cell(v: Any) -> Any:
    """A cell as a plain JSON value: None for empty/NaN, numpy scalars as Python numbers, timestamps
    as ISO text, anything else unusual as its text."""
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


def code_str(v: Any) -> str:
    """A code cell as text: ``""`` when empty, ``510107001.0`` -> ``"510107001"``."""
    v = clean_cell(v)
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


def find_column(labels: Mapping[str, list[str]], aliases: Iterable[str], *, prefix: bool = False,
                taken: Iterable[str] = ()) -> str | None:
    """The column whose label matches an alias (exactly, or as a truncated prefix when ``prefix``).

    ``labels`` maps each column to the labels it is known by (its header cells for a table).
    """
    taken = set(taken)
    norm_aliases = [norm_label(a) for a in aliases]
    for col, labs in labels.items():
        if col in taken:
            continue
        if any(norm_label(lab) in norm_aliases for lab in labs):
            return col
    if prefix:  # shapefile field names truncated to 10 bytes: "护理型床位" for "护理型床位数"
        for col, labs in labels.items():
            lab = norm_label(labs[0])
            if col not in taken and len(lab) >= 2 and not lab.isascii() and any(
                    a.startswith(lab) for a in norm_aliases):
                return col
    return None


# --------------------------------------------------------------------------------------------
# OSM tag rules
# --------------------------------------------------------------------------------------------


def osm_rules(extra: Mapping[str, str] | None) -> list[tuple[dict[str, str], str]]:
    """The OSM tag rules of a layer: its ``"key=value[;key=value]"`` config kinds, then
    :data:`OSM_KIND_RULES`."""
    rules: list[tuple[dict[str, str], str]] = []
    for k, kind in (extra or {}).items():
        if "=" in k:
            conds = dict(part.split("=", 1) for part in k.split(";") if "=" in part)
            rules.append(({a.strip(): b.strip() for a, b in conds.items()}, kind))
    return rules + list(OSM_KIND_RULES)


def osm_kind(tags: Mapping[str, str], rules: OsmRules) -> str | None:
    """The kind of the first rule the tags match, or None."""
    for cond, kind in rules:
        if all(k in tags and (v == "*" or tags[k] == v) for k, v in cond.items()):
            return kind
    return None


def is_osm_candidate(tags: Mapping[str, str], rules: OsmRules) -> bool:
    """Whether an OSM object is a row of a facility layer (:data:`OSM_CANDIDATE` or a matching rule)."""
    for k, vals in OSM_CANDIDATE.items():
        if k in tags and ("*" in vals or tags[k] in vals):
            return True
    return osm_kind(tags, rules) is not None
