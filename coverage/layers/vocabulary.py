"""What the words in a municipal layer mean: column aliases, facility-type aliases, the POI type
vocabularies (Amap/高德 type strings and typecodes, Baidu tags, Tencent categories) with their explicit
exclusions, OSM tag rules and the parsers of single cells (numbers such as ``"120张"``, codes, labels).

Everything here is a pure function of a value or a table of words; no file is read. The kind aliases
are built from the facility kinds a config knows (:data:`Config.kinds`), so a kind added with
``[kinds.<id>] label_zh = ...`` is accepted by its id and its Chinese label.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from coverage.services import BUILTIN_KINDS, Kind

__all__ = [
    "FACILITY_COLUMNS",
    "AMAP_TYPECODES",
    "FIELD_ALIASES",
    "KIND_ALIASES",
    "LOCATION_ALIASES",
    "NUMERIC_FIELDS",
    "OSM_CANDIDATE",
    "OSM_KIND_RULES",
    "POI_EXCLUDED_TYPES",
    "REJECT_COLUMNS",
    "TEXT_FIELDS",
    "X_ALIASES",
    "Y_ALIASES",
    "TypeMatch",
    "classify_type",
    "clean_cell",
    "code_str",
    "find_column",
    "is_osm_candidate",
    "kind_aliases",
    "map_kind",
    "norm_label",
    "osm_kind",
    "osm_match",
    "osm_rules",
    "parse_number",
]

#: Canonical facility columns in order (ARCHITECTURE.md), plus ``source_type`` (the raw type text, typecode
#: or OSM tag rule that decided the kind), ``duplicate_of`` and ``note``.
FACILITY_COLUMNS = ("fac_id", "name", "kind", "source_type", "beds", "nursing_beds", "childcare_slots",
                    "floor_area_m2", "land_area_m2", "address", "operator", "layer", "source_file",
                    "source_row", "duplicate_of", "note", "geometry")
NUMERIC_FIELDS = ("beds", "nursing_beds", "childcare_slots", "floor_area_m2", "land_area_m2")
TEXT_FIELDS = ("name", "address", "operator")
#: Columns of the rejects table, in order.
REJECT_COLUMNS = ("source_file", "layer", "row", "reason", "values")

#: canonical field -> accepted column names (compared after :func:`norm_label`).
FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "fac_id": ("id", "fac_id", "编号", "序号id", "机构编号", "设施编号", "代码", "code"),
    "name": ("name", "名称", "机构名称", "设施名称", "单位名称", "机构", "名字"),
    "kind": ("kind", "type", "类型", "类别", "设施类型", "机构类型", "设施类别", "category", "tag", "标签",
             "poi类型"),
    #: Amap POI typecode ("090102"); used when the type text is empty or there is no type column
    "typecode": ("typecode", "类型编码", "分类编码", "poi类型编码", "type_code"),
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
#: one column holding "lon,lat" (Amap web-API exports: ``location`` = "108.0123,31.9876", GCJ-02)
LOCATION_ALIASES = ("location", "经纬度", "坐标", "lnglat", "lonlat", "经纬度坐标", "gcj_location")

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
    "卫生室": "health_center", "社区医院": "health_center",
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


# --------------------------------------------------------------------------------------------
# POI exports: Amap (高德) type strings and typecodes, Baidu tags, Tencent categories
# --------------------------------------------------------------------------------------------
#
# Sources. The Amap type strings ("大类;中类;小类") and the order of the 医疗保健服务 small classes follow
# Amap's published POI classification table (the strings appear verbatim in Amap web-API results:
# "医疗保健服务;综合医院;卫生院" is how Amap types most urban 社区卫生服务中心/站). The six-digit typecodes
# below are written from memory of that table (090100 综合医院, 090102 卫生院, 090300 诊所, 0907xx 动物医疗,
# 141204 幼儿园): a typecode is only read when the row has no type text, and the source-type table of
# ``make check`` shows what each one became. Baidu tags ("医疗;诊所", "教育培训;幼儿园") and Tencent
# categories ("医疗保健:诊所") use the same words and go through the same rules.

#: Amap typecode -> type string (used when a row has a typecode and no type text).
AMAP_TYPECODES: dict[str, str] = {
    "090000": "医疗保健服务;医疗保健服务场所;医疗保健服务场所",
    "090100": "医疗保健服务;综合医院;综合医院",
    "090101": "医疗保健服务;综合医院;三级甲等医院",
    "090102": "医疗保健服务;综合医院;卫生院",
    "090200": "医疗保健服务;专科医院;专科医院",
    "090201": "医疗保健服务;专科医院;整形美容",
    "090202": "医疗保健服务;专科医院;口腔医院",
    "090203": "医疗保健服务;专科医院;眼科医院",
    "090204": "医疗保健服务;专科医院;耳鼻喉医院",
    "090205": "医疗保健服务;专科医院;胸科医院",
    "090206": "医疗保健服务;专科医院;骨科医院",
    "090207": "医疗保健服务;专科医院;肿瘤医院",
    "090208": "医疗保健服务;专科医院;脑科医院",
    "090209": "医疗保健服务;专科医院;妇科医院",
    "090210": "医疗保健服务;专科医院;精神病医院",
    "090211": "医疗保健服务;专科医院;传染病医院",
    "090300": "医疗保健服务;诊所;诊所",
    "090400": "医疗保健服务;急救中心;急救中心",
    "090500": "医疗保健服务;疾病预防机构;疾病预防",
    "090600": "医疗保健服务;医药保健销售店;医药保健相关",
    "090601": "医疗保健服务;医药保健销售店;药房",
    "090602": "医疗保健服务;医药保健销售店;医疗保健用品",
    "090700": "医疗保健服务;动物医疗场所;动物医疗场所",
    "090701": "医疗保健服务;动物医疗场所;宠物诊所",
    "090702": "医疗保健服务;动物医疗场所;兽医站",
    "141200": "科教文化服务;学校;学校",
    "141204": "科教文化服务;学校;幼儿园",
}

#: (regex searched in the type text, why): types that are NEVER a facility kind of the analysis, whatever
#: the name says. Rows of these types are rejected "excluded type '<type>': <why>". A region that wants
#: one maps the exact type text with its layer's ``kinds`` (tried first).
POI_EXCLUDED_TYPES: tuple[tuple[str, str], ...] = (
    (r"动物医疗|宠物|兽医", "pet clinic"),
    (r"口腔|牙科|齿科", "dental"),
    (r"整形|美容|医美", "cosmetic"),
    (r"药房|药店|医药保健|医疗保健用品|医疗器械", "pharmacy or medical shop"),
    (r"疾病预防|疾控", "disease control, not a care facility"),
    (r"急救中心", "emergency centre, not a care facility"),
    (r"体检", "check-up centre"),
)
#: a type of the medical family: the name-based rules below only apply to these
_MEDICAL_TYPE = r"医疗|医院|卫生|诊所|门诊"
#: names that are community primary care whatever the POI type: 社区卫生服务中心/站, 社区卫生计生服务站,
#: 社区医院 (an upgraded 社区卫生服务中心), 社康 (Shenzhen's 社区健康服务中心), 村卫生室
_COMMUNITY_HEALTH_NAME = r"社区卫生|卫生服务(中心|站)|社区医院|社区健康服务|社康|卫生室"


@dataclass(frozen=True)
class _PoiRule:
    """One POI type rule: when ``type_re`` and ``name_re`` are found (``""`` = any; ``not_name_re`` not
    found) the row is ``kind``, or excluded with ``excluded`` as the reason."""

    type_re: str
    name_re: str
    kind: str | None
    excluded: str = ""
    not_name_re: str = ""


#: Ordered rules for the medical family of POI types (first match wins), after
#: :data:`POI_EXCLUDED_TYPES`. Documented choices:
#:
#: - A pet, dental or cosmetic NAME (宠物医院, 口腔诊所, 医疗美容) under a medical type is excluded like
#:   the type would be, unless the name is community health (a 社区卫生服务中心 is never excluded by name).
#: - A community-health name (:data:`_COMMUNITY_HEALTH_NAME`) under any medical type is ``health_center``:
#:   Amap types urban 社区卫生服务中心/站 as "综合医院;卫生院", some as "诊所" or "综合医院;综合医院".
#: - 三级甲等医院 / 三甲 / 三级 are ``hospital``, never community health.
#: - Any other 卫生院 is ``township_hospital``, including a "XX街道卫生院" (a hospital of a 街道 that
#:   kept the township-hospital form; it is primary care with beds, as a 乡镇卫生院 is).
#: - 诊所 and 门诊部 (private clinics and outpatient departments) are excluded: they are not the public
#:   community health network the standards speak of; a 诊所 named 卫生院 is ``township_hospital``.
#:   A hospital's own "XX医院门诊部" POI is excluded too (it duplicates the hospital's POI).
#: - Other hospitals (综合医院, 专科医院, 人民医院, 中医院) are ``hospital``.
#: - A generic medical type (医疗保健服务场所, 医疗;其他) is decided by the name (卫生院, 医院), else unknown.
POI_TYPE_RULES: tuple[_PoiRule, ...] = (
    _PoiRule(_MEDICAL_TYPE, r"宠物|动物医院|兽医", None, "pet clinic (by name)", _COMMUNITY_HEALTH_NAME),
    _PoiRule(_MEDICAL_TYPE, r"口腔|牙科|齿科", None, "dental (by name)", _COMMUNITY_HEALTH_NAME + "|卫生院"),
    _PoiRule(_MEDICAL_TYPE, r"整形|医疗美容|医美|美容", None, "cosmetic (by name)",
             _COMMUNITY_HEALTH_NAME + "|卫生院"),
    _PoiRule(_MEDICAL_TYPE, _COMMUNITY_HEALTH_NAME, "health_center"),
    _PoiRule(r"社区卫生服务|卫生服务(中心|站)|卫生室|社区医院", "", "health_center"),
    _PoiRule(r"三级甲等|三甲|三级", "", "hospital"),
    _PoiRule(r"卫生院", "", "township_hospital"),
    _PoiRule(r"诊所|门诊", r"卫生院", "township_hospital"),
    _PoiRule(r"诊所|门诊", "", None, "private clinic (诊所/门诊部)"),
    _PoiRule(_MEDICAL_TYPE, r"门诊部|诊所", None, "private clinic (诊所/门诊部)"),
    _PoiRule(r"医院", "", "hospital"),
    _PoiRule(_MEDICAL_TYPE, r"卫生院", "township_hospital"),
    _PoiRule(_MEDICAL_TYPE, r"医院", "hospital"),
)


@dataclass(frozen=True)
class TypeMatch:
    """What a row's type text means: ``kind`` (canonical, or None), ``excluded`` (why the type is not a
    facility of the analysis, e.g. "pet clinic"; ``""`` when it is not excluded) and ``source`` (the type
    text that decided: the raw text, or "<typecode> <Amap type>" for a typecode)."""

    kind: str | None
    excluded: str = ""
    source: str = ""

    @property
    def outcome(self) -> str:
        """The kind, "(excluded: <why>)" or "(unknown)": one entry of the source-type table."""
        return self.kind if self.kind else f"(excluded: {self.excluded})" if self.excluded else "(unknown)"


def amap_type_of_code(code: str) -> str:
    """The Amap type string of a typecode (``"090102"`` -> "医疗保健服务;综合医院;卫生院"); an unknown small
    class falls back to its middle class (``"0902xx"`` -> 专科医院); ``""`` when unknown."""
    c = code.strip().split("|")[0].strip()
    if not re.fullmatch(r"\d{6}", c):
        return ""
    return AMAP_TYPECODES.get(c) or AMAP_TYPECODES.get(c[:4] + "00", "")


def _own_kinds(kinds: Mapping[str, Kind]) -> dict[str, str]:
    """Normalised id and ``label_zh`` -> kind of the kinds a region adds or relabels (not built in)."""
    out: dict[str, str] = {}
    for k, v in kinds.items():
        if BUILTIN_KINDS.get(k) != v:
            out[norm_label(k)] = k
            out[norm_label(v.label_zh)] = k
    return out


def _word_kind(text: str, kinds: Mapping[str, Kind]) -> str | None:
    """The kind of a type word: exact alias, else the longest (non-ASCII) alias contained in it."""
    t = norm_label(text)
    if not t:
        return None
    table, by_length = _alias_table(tuple(kinds.items()))
    if t in table:
        return table[t]
    for alias in by_length:
        if alias in t:
            return table[alias]
    return None


@functools.lru_cache(maxsize=16)
def _alias_table(kinds: tuple[tuple[str, Kind], ...]) -> tuple[dict[str, str], tuple[str, ...]]:
    """(normalised alias -> kind, the non-ASCII aliases of >= 2 characters, longest first)."""
    table = {norm_label(k): v for k, v in kind_aliases(dict(kinds)).items()}
    return table, tuple(a for a in sorted(table, key=len, reverse=True) if len(a) >= 2 and not a.isascii())


def classify_type(value: Any, *, name: Any = "", typecode: Any = "", extra: Mapping[str, str] | None = None,
                  kinds: Mapping[str, Kind] = BUILTIN_KINDS) -> TypeMatch:
    """Decide the kind of one row from its type text (and name, and Amap typecode).

    Order: the layer's ``extra`` kinds (exact text, then normalised); the type text (first of
    "A|B" multi-types; a six-digit Amap typecode, or the ``typecode`` when the text is empty, read through
    :data:`AMAP_TYPECODES`) or one of its ";"/":" segments naming a kind the region adds or relabels
    (``[kinds.pharmacy] label_zh = "药店"`` wins over the pharmacy exclusion); :data:`POI_EXCLUDED_TYPES`;
    :data:`POI_TYPE_RULES` (medical family, name used); then the type words (:func:`kind_aliases`) on
    each ";"/":" segment from the most specific (last) to the first, then on the whole text.
    Unknown: ``TypeMatch(None)``.
    """
    raw = "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value).strip()
    code = "" if typecode is None or (isinstance(typecode, float) and math.isnan(typecode)) else \
        str(typecode).strip()
    if code.endswith(".0"):
        code = code[:-2]
    if not raw and code:
        code = code.zfill(6) if code.isdigit() else code
        text = amap_type_of_code(code)
        source = f"{code} {text}".strip() if text else code
        if not text:
            return TypeMatch(None, source=source)
        raw_for_extra = code
    else:
        text, source, raw_for_extra = raw, raw, raw
    if not source:
        return TypeMatch(None)
    if extra:
        if raw_for_extra in extra:
            return TypeMatch(extra[raw_for_extra], source=source)
        ne = {norm_label(k): v for k, v in extra.items()}
        if norm_label(raw_for_extra) in ne:
            return TypeMatch(ne[norm_label(raw_for_extra)], source=source)
    first = text.split("|")[0].strip()
    if re.fullmatch(r"\d{6}", first):
        first = amap_type_of_code(first) or first
    segments = [p for p in re.split(r"[;；:：>]", first) if p.strip()]
    own = _own_kinds(kinds)  # a region's own kinds win over the exclusions ([kinds.pharmacy] 药店)
    for seg in [first, *reversed(segments)] if own else []:
        if norm_label(seg) in own:
            return TypeMatch(own[norm_label(seg)], source=source)
    nm = "" if name is None or (isinstance(name, float) and math.isnan(name)) else str(name)
    for pattern, why in POI_EXCLUDED_TYPES:
        if re.search(pattern, first):
            return TypeMatch(None, excluded=why, source=source)
    for r in POI_TYPE_RULES:
        if re.search(r.type_re, first) and (not r.name_re or re.search(r.name_re, nm)) and \
                not (r.not_name_re and re.search(r.not_name_re, nm)):
            return TypeMatch(r.kind, excluded=r.excluded, source=source)
    for seg in [*reversed(segments), first] if len(segments) > 1 else [first]:
        k = _word_kind(seg, kinds)
        if k is not None:
            return TypeMatch(k, source=source)
    return TypeMatch(None, source=source)

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
             kinds: Mapping[str, Kind] = BUILTIN_KINDS, name: Any = "") -> str | None:
    """Map a free-text facility type to a canonical kind of ``kinds`` (``None`` when unknown or excluded).

    ``extra`` (a layer's config ``kinds``: type text -> kind) is tried first, then the POI vocabularies
    and the type words (:func:`classify_type`, which also says WHY a type is excluded).
    """
    return classify_type(value, name=name, extra=extra, kinds=kinds).kind


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


def osm_match(tags: Mapping[str, str], rules: OsmRules) -> tuple[str | None, str]:
    """(kind, rule as "key=value;key=value") of the first rule the tags match, or (None, "")."""
    for cond, kind in rules:
        if all(k in tags and (v == "*" or tags[k] == v) for k, v in cond.items()):
            return kind, ";".join(f"{k}={v}" for k, v in cond.items())
    return None, ""


def osm_kind(tags: Mapping[str, str], rules: OsmRules) -> str | None:
    """The kind of the first rule the tags match, or None."""
    return osm_match(tags, rules)[0]


def is_osm_candidate(tags: Mapping[str, str], rules: OsmRules) -> bool:
    """Whether an OSM object is a row of a facility layer (:data:`OSM_CANDIDATE` or a matching rule)."""
    for k, vals in OSM_CANDIDATE.items():
        if k in tags and ("*" in vals or tags[k] in vals):
            return True
    return osm_kind(tags, rules) is not None
