"""The standards engine: every written standard of DOMAIN.md checked per 街道/乡镇, 社区/村 and region.

Output rows (one per checked unit and standard): ``unit_code`` (the code of the row's subject: a
街道/乡镇 code for ``level="unit"``, a 社区/村 code for ``level="community"``, the region name for
``level="region"``), ``parent_code`` (the 街道/乡镇 of a community row, else ""), ``level``,
``standard_id``, ``title_zh``, ``passed`` (True / False / NA = the data do not allow the check),
``value``, ``required`` (numbers in the standard's unit, see ``STANDARDS[...].unit``), ``shortfall``
(text in the standard's own terms) and ``source`` (policy document and clause, ``seeds/<file>``).

Rules decided here:

* Coverage circles (elderly_circle, childcare_circle, meal_radius): the texts promise the service to
  every resident, so the default rule is 100 %: a unit passes when its uncovered people round to 0
  (fractional people come from splitting raster cells). ``circle_required_share`` relaxes it.
  Units without the target population get NA ("no persons 60+ in the cells").
* Standards that do not apply to a unit (street_institution_* on a 镇, rural_network on a 街道) emit
  no row; standards that apply but lack data emit ``passed = NA`` and say what is missing.
* community_daycare and daycare_coverage apply to the 社区 of 街道 units only. 003 (六)4 sets the
  750 m² day-care centre "每个社区" under "加强建设新旧城区服务设施" (city areas), and 003 表1 #6 counts
  "社区日间照料机构覆盖率"; the rural tier is a different facility, the 村级互助养老服务点 of the
  three-tier rural network (000 task 3; 002 (二)), checked by rural_network. Villages (村, the
  communities of 镇/乡 units) are therefore neither rows nor in the denominators, and 镇/乡 units get
  no daycare_coverage row.
* childcare_slots (8 / 10 per 1000) is written per residential area ("新建居住区 ... 老城区和已建成居住区",
  000 task 2; 002 (二); 003 (六)4), a planning standard for urban residential areas: it is checked per
  街道/乡镇 and, at community level, per urban 社区 only, never per village (a 村 is not a 居住区;
  villages are served through the 乡镇 and their 托育点).
* Thresholds come from ``cfg.standards`` (``circle_required_share``, ``old_young_complex_min``,
  ``complex_childcare_share``); keyword arguments of :func:`check_standards` override them.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd

from coverage.config import Config
from coverage.services import tlabel
from coverage.study import assign_to_units
from coverage.targets import target_source

log = logging.getLogger(__name__)

__all__ = ["STANDARDS", "STANDARDS_COLUMNS", "Standard", "check_standards", "standards_flipped"]


@dataclass(frozen=True)
class Standard:
    """One written standard: what it requires, at which level, and where it is written."""

    id: str
    title_zh: str
    level: Literal["unit", "community", "region"]
    unit: str  # unit of `value` / `required`
    source: str


_S003 = "成都市一老一小整体解决方案"
STANDARDS: dict[str, Standard] = {s.id: s for s in [
    Standard("elderly_circle", "15分钟养老服务圈(老年人步行可达)", "unit", "share 0-1",
             "川办发〔2021〕57号附件 任务8 [seeds/000]; 万源市实施方案 (五) [seeds/002]; "
             f"{_S003} 发展目标 15分钟养老托育服务圈 [seeds/003]"),
    Standard("childcare_circle", "15分钟托育服务圈(0-3岁步行可达)", "unit", "share 0-1",
             f"{_S003} 发展目标 15分钟养老托育服务圈 [seeds/003]"),
    Standard("meal_radius", "配餐半径 城区15分钟、郊区30分钟", "unit", "share 0-1",
             f"{_S003} (九)14 [seeds/003]"),
    Standard("elderly_land", "养老服务设施人均用地不少于0.1平方米", "unit", "m²/resident",
             "川办发〔2021〕57号附件 任务2 [seeds/000]; 万源市实施方案 (二) [seeds/002]"),
    Standard("childcare_slots", "每千人口托位数 新建居住区≥10、老城区和已建成居住区≥8", "unit",
             "slots/1000",
             "川办发〔2021〕57号附件 任务2 [seeds/000]; 万源市实施方案 (二) [seeds/002]; "
             f"{_S003} (六)4 [seeds/003]"),
    Standard("childcare_slots_target", "全市每千人口托位数2025年目标", "region", "slots/1000",
             f"万源市实施方案 总体要求 4.5 [seeds/002]; {_S003} 表1、表2 4.74 [seeds/003]"),
    Standard("street_institution_old", "旧城区每个街道至少1处建筑面积≥1500平方米的社区养老机构", "unit", "m²",
             f"{_S003} (六)4 [seeds/003]"),
    Standard("street_institution_new", "新建城区每个街道至少1处建筑面积≥3000平方米的社区养老机构",
             "unit", "m²", f"{_S003} (六)4 [seeds/003]"),
    Standard("community_daycare", "每个社区至少1处建筑面积≥750平方米的日间照料中心", "community", "m²",
             f"{_S003} (六)4 新旧城区服务设施 [seeds/003] (城市社区, 不含村)"),
    Standard("street_complex", "每个街道至少建有1个社区养老服务综合体", "unit", "count",
             f"{_S003} (九)13 [seeds/003]; 万源市实施方案 附件2 #3 [seeds/002]"),
    Standard("daycare_coverage", "社区日间照料机构覆盖率≥95%(城市社区; 农村为村级互助养老服务点)",
             "unit", "share 0-1",
             f"{_S003} 表1 #6 [seeds/003] (街道的社区; "
             "村的一级是村级互助养老服务点: 川办发〔2021〕57号附件 任务3 "
             "[seeds/000], 万源市实施方案 (二) [seeds/002])"),
    Standard("nursing_bed_share", "养老机构护理型床位占比", "unit", "share 0-1",
             f"万源市实施方案 总体要求 55% [seeds/002]; {_S003} 表1 #12 60% [seeds/003]"),
    Standard("complex_childcare", "社区综合体托育服务设施配置率 中心城区80%、其他中心镇50%", "region",
             "share 0-1", f"{_S003} (九)13 [seeds/003]"),
    Standard("old_young_complex", "每区老幼复合型社区综合体 中心城区≥5、其他≥2", "region", "count",
             f"{_S003} (九)13 [seeds/003]"),
    Standard("colocation", "社区养老服务设施与社区卫生服务设施同址或邻近设置", "unit", "count",
             f"万源市实施方案 (十) [seeds/002]; {_S003} (十)16 [seeds/003]"),
    Standard("rural_network", "农村养老服务三级网络: 每个乡镇至少1个区域性养老服务中心", "unit", "count",
             "川办发〔2021〕57号附件 任务3 [seeds/000]; 万源市实施方案 (二) [seeds/002]"),
    Standard("beds_per_1000_elderly", "每千名老年人养老床位数(报告)", "unit", "beds/1000 60+",
             f"{_S003} 发展基础 (成都现状39.9张) [seeds/003]"),
]}

STANDARDS_COLUMNS = ["unit_code", "parent_code", "level", "standard_id", "title_zh", "passed", "value",
                     "required", "shortfall", "source"]
#: kinds whose floor area counts for the 街道 institution standard (003 (六)4 社区养老机构)
STREET_INSTITUTION_KINDS = ("elderly_institution", "embedded_nursing_home", "community_complex")
#: kinds counting as a 街道's 社区养老服务综合体 (street_complex) and a 镇/乡's regional centre
#: (rural_network)
STREET_COMPLEX_KINDS = ("community_complex", "old_young_complex")
TOWN_CENTER_KINDS = ("town_regional_center",)
COMMUNITY_FACILITY_KINDS = ("community_complex", "embedded_nursing_home", "daycare_center",
                            "old_young_complex")


def _n(x: float) -> str:
    """Thousands-separated whole number."""
    return f"{x:,.0f}"


def _m2(x: float) -> str:
    return f"{x:,.0f} m²"


#: standards whose required value comes from a target set (coverage.targets)
TARGET_STANDARDS = ("childcare_slots_target", "nursing_bed_share")


class _Rows:
    def __init__(self, targets: str = "") -> None:
        self.rows: list[dict[str, Any]] = []
        self.targets = targets  # the [standards] targets set: named in the source of TARGET_STANDARDS rows

    def add(self, code: str, level: str, sid: str, passed: Any, value: Any, required: Any, shortfall: str,
            parent: str = "") -> None:
        st = STANDARDS[sid]
        self.rows.append({"unit_code": str(code), "parent_code": parent, "level": level, "standard_id": sid,
                          "title_zh": st.title_zh, "passed": passed,
                          "value": float(value) if value is not None and not pd.isna(value) else np.nan,
                          "required": float(required) if required is not None else np.nan,
                          "shortfall": shortfall,
                          "source": target_source(self.targets, st.source) if sid in TARGET_STANDARDS
                          else st.source})

    def frame(self) -> pd.DataFrame:
        df = pd.DataFrame(self.rows, columns=STANDARDS_COLUMNS)
        df["passed"] = df["passed"].astype("boolean")
        return df


def _circle(rows: _Rows, ind: pd.DataFrame, level: str, key: str, sid: str, pop_col: str, cov_col: str,
            who: str, beyond: Any, share: float) -> None:
    for _, r in ind.iterrows():
        pop = float(r[pop_col])
        parent = str(r["unit_code"]) if level == "community" else ""
        beyond_txt = beyond(r) if callable(beyond) else beyond
        if pop <= 0:
            rows.add(r[key], level, sid, pd.NA, None, share, f"no {who} in the cells", parent)
            continue
        unc = max(0.0, pop - float(r[cov_col]))
        allowed = math.floor((1.0 - share) * pop + 1e-9)
        passed = round(unc) <= allowed
        short = "" if passed else f"{_n(round(unc) - allowed)} {who} beyond {beyond_txt}"
        rows.add(r[key], level, sid, passed, float(r[cov_col]) / pop, share, short, parent)


def _facilities_with_area(fac: pd.DataFrame, kinds: tuple[str, ...], min_m2: float) -> tuple[Any, float]:
    """(passed, best area) for "at least one facility of `kinds` with floor area >= min_m2"."""
    f = fac[fac["kind"].isin(kinds)]
    area = f["floor_area_m2"].astype(float)
    if (area >= min_m2).any():
        return True, float(area.max())
    n_unknown = int(area.isna().sum())
    best = float(area.max()) if area.notna().any() else np.nan
    if n_unknown:
        return pd.NA, best
    return False, best


@dataclass(frozen=True)
class _Ctx:
    """What every group of checks reads, and the rows they add to."""

    rows: _Rows
    fac: gpd.GeoDataFrame  # facilities with unit_code / community_code
    cfg: Config
    std: Any  # StandardsConfig
    region: str
    utype: dict[str, str]  # unit_code -> 街道 / 镇 / 乡
    uarea: dict[str, str]  # unit_code -> old / new / mixed
    mixed_as: str
    circle_required_share: float
    old_young_complex_min: int
    complex_childcare_share: float


def _coverage_rows(ctx: _Ctx, unit_ind: pd.DataFrame, community_ind: pd.DataFrame | None) -> None:
    """Coverage circles (elderly, childcare, meal radius) and childcare slots per 1000, per unit and
    community."""
    rows = ctx.rows
    std = ctx.std
    utype = ctx.utype
    cfg = ctx.cfg
    circle_required_share = ctx.circle_required_share
    # --- coverage circles -------------------------------------------------------------------
    el, ch, meal = cfg.services["elderly"], cfg.services["childcare"], cfg.services["meal"]
    e = tlabel(std.elderly_circle_min)
    c = tlabel(std.childcare_circle_min)
    for level, ind, key in (("unit", unit_ind, "unit_code"), ("community", community_ind, "community_code")):
        if ind is None:
            continue
        _circle(rows, ind, level, key, "elderly_circle", el.demand_col,
                el.column("covered", std.elderly_circle_min), "elderly", f"{e} minutes",
                circle_required_share)
        _circle(rows, ind, level, key, "childcare_circle", ch.demand_col,
                ch.column("covered", std.childcare_circle_min), "children 0-3", f"{c} minutes",
                circle_required_share)
        _circle(rows, ind, level, key, "meal_radius", meal.demand_col, meal.column("covered"), "elderly",
                lambda r: f"the {r[meal.threshold_col]:g}-minute meal radius", circle_required_share)
        # childcare slots per 1000 (new / old): per 居住区, so per unit and per urban 社区, never per 村
        for _, r in ind.iterrows():
            parent = str(r["unit_code"]) if level == "community" else ""
            if level == "community" and utype.get(parent) != "街道":
                continue
            if r["pop_total"] <= 0:
                rows.add(r[key], level, "childcare_slots", pd.NA, None, r["slots_standard_per_1000"],
                         "no residents in the cells", parent)
                continue
            short = r["slots_shortfall"]
            n_unk = int(r.get("n_childcare_slots_unknown", 0) or 0)
            if pd.isna(short):  # every childcare facility of the row lacks a 托位数: unknown, not 0
                rows.add(r[key], level, "childcare_slots", pd.NA, None, r["slots_standard_per_1000"],
                         f"托位数 (capacity) unknown for all {n_unk} childcare facilities", parent)
                continue
            if short > 0 and n_unk:
                rows.add(r[key], level, "childcare_slots", pd.NA, r["slots_per_1000"],
                         r["slots_standard_per_1000"],
                         f"{n_unk} childcare facilities have no 托位数 (capacity); "
                         "the known slots fall short by "
                         f"{_n(short)}", parent)
                continue
            rows.add(r[key], level, "childcare_slots", bool(short <= 0), r["slots_per_1000"],
                     r["slots_standard_per_1000"],
                     "" if short <= 0 else f"short {_n(short)} childcare slots "
                     f"({r['slots_standard_basis']} area standard "
                     f"{r['slots_standard_per_1000']:g} per 1000)", parent)


def _unit_rows(ctx: _Ctx, unit_ind: pd.DataFrame) -> None:
    """Per 街道/乡镇: elderly land, street institution and complex or rural network, nursing beds, beds."""
    rows = ctx.rows
    fac = ctx.fac
    std = ctx.std
    utype = ctx.utype
    uarea = ctx.uarea
    mixed_as = ctx.mixed_as
    for _, r in unit_ind.iterrows():
        code = str(r["unit_code"])
        ufac = fac[fac["unit_code"] == code]
        # elderly land per resident
        req = std.elderly_land_m2_per_resident
        pop = float(r["pop_total"])
        if pop <= 0:
            rows.add(code, "unit", "elderly_land", pd.NA, None, req, "no residents in the cells")
        else:
            need = req * pop
            have = float(r["elderly_area_m2"])
            n_unk = int(r["n_elderly_area_unknown"])
            field = r["elderly_area_field"] or "area"
            if have >= need:
                rows.add(code, "unit", "elderly_land", True, have / pop, req, "")
            elif n_unk:
                rows.add(code, "unit", "elderly_land", pd.NA, have / pop, req,
                         f"{n_unk} elderly facilities have no land/floor area; "
                         f"known {_m2(have)} of {_m2(need)}")
            else:
                rows.add(code, "unit", "elderly_land", False, have / pop, req,
                         f"short {_m2(need - have)} of elderly-service {field.replace('_m2', '')} "
                         f"({_m2(have)} for {_n(pop)} residents, needs {_m2(need)})")
        # street institution (街道 only)
        if utype.get(code) == "街道":
            at = uarea.get(code, "old")
            at = mixed_as if at == "mixed" else at
            sid = "street_institution_new" if at == "new" else "street_institution_old"
            need_m2 = std.street_institution_new_m2 if at == "new" else std.street_institution_old_m2
            passed, best = _facilities_with_area(ufac, STREET_INSTITUTION_KINDS, need_m2)
            short = "" if passed is True else f"needs 1 institution of >= {_m2(need_m2)}" + (
                " (some candidates have no floor area)" if passed is pd.NA else "")
            rows.add(code, "unit", sid, passed, best, need_m2, short)
            n_cx = int(ufac["kind"].isin(STREET_COMPLEX_KINDS).sum())
            k = std.street_complex_min
            rows.add(code, "unit", "street_complex", n_cx >= k, n_cx, k,
                     "" if n_cx >= k else f"needs {k - n_cx} 社区养老服务综合体")
        elif utype.get(code) in ("镇", "乡"):
            n_tc = int(ufac["kind"].isin(TOWN_CENTER_KINDS).sum())
            k = std.town_regional_center_min
            rows.add(code, "unit", "rural_network", n_tc >= k, n_tc, k,
                     "" if n_tc >= k else f"needs {k - n_tc} 乡镇区域性养老服务中心")
        # nursing bed share
        beds, share = float(r["beds"]), r["nursing_bed_share"]
        if beds <= 0:
            rows.add(code, "unit", "nursing_bed_share", pd.NA, None, std.nursing_bed_share, "no elderly beds")
        elif pd.isna(share):
            rows.add(code, "unit", "nursing_bed_share", pd.NA, None, std.nursing_bed_share,
                     "nursing-bed counts unknown")
        else:
            known = float(r["nursing_beds"]) / share if share > 0 else beds
            need = math.ceil(std.nursing_bed_share * known - 1e-9)
            ok = share >= std.nursing_bed_share - 1e-12
            rows.add(code, "unit", "nursing_bed_share", ok, share, std.nursing_bed_share,
                     "" if ok else f"short {_n(need - r['nursing_beds'])} nursing-type beds "
                     f"({_n(r['nursing_beds'])} of {_n(known)})")
        rows.add(code, "unit", "beds_per_1000_elderly", pd.NA, r["beds_per_1000_60plus"], None,
                 f"{_n(beds)} beds for {_n(r['pop_60plus'])} persons 60+ (reported, no standard)")


def _colocation_rows(ctx: _Ctx, unit_ind: pd.DataFrame) -> None:
    """Community elderly facilities next to a community health facility, per unit."""
    rows = ctx.rows
    fac = ctx.fac
    std = ctx.std
    cfg = ctx.cfg
    # --- colocation -------------------------------------------------------------------------------
    hk = cfg.services["health"].kinds if "health" in cfg.services else ()
    health = fac[fac["kind"].isin(hk)]
    cel = fac[fac["kind"].isin(COMMUNITY_FACILITY_KINDS)]
    if len(cel):
        if len(health):
            d = np.array([health.distance(g).min() for g in cel.geometry])
        else:
            d = np.full(len(cel), np.inf)
        cel = cel.assign(_d=d)
    for code in unit_ind["unit_code"].astype(str):
        uc = cel[cel["unit_code"] == code] if len(cel) else cel
        if len(uc) == 0:
            rows.add(code, "unit", "colocation", pd.NA, None, 0, "no community elderly facilities")
            continue
        far = uc[uc["_d"] > std.colocation_max_m]
        rows.add(code, "unit", "colocation", len(far) == 0, len(far), 0,
                 "" if len(far) == 0 else f"{len(far)} of {len(uc)} community elderly facilities are more "
                 f"than {std.colocation_max_m:g} m from a community health facility")


def _community_rows(ctx: _Ctx, unit_ind: pd.DataFrame, communities: gpd.GeoDataFrame | None) -> None:
    """Day-care centre per urban 社区 and the day-care coverage per 街道 and region."""
    rows = ctx.rows
    fac = ctx.fac
    std = ctx.std
    utype = ctx.utype
    region = ctx.region
    # --- communities: daycare ----------------------------------------------------------------------
    day = fac[fac["kind"] == "daycare_center"]
    if communities is None:
        rows.add(region, "region", "community_daycare", pd.NA, None, std.community_daycare_m2,
                 "no 社区/村 polygons configured (units.communities_path)")
        rows.add(region, "region", "daycare_coverage", pd.NA, None, std.daycare_coverage_share,
                 "no 社区/村 polygons configured (units.communities_path)")
    else:
        comm = communities[["community_code", "unit_code"]].astype(str)
        # 社区 of 街道 only: a village's tier is the 村级互助养老服务点 (rural_network), not a day-care centre
        comm = comm[comm["unit_code"].map(utype) == "街道"]
        has_day = comm["community_code"].isin(set(day["community_code"]))
        for cc, uc in comm.itertuples(index=False):
            passed, best = _facilities_with_area(day[day["community_code"] == cc], ("daycare_center",),
                                                 std.community_daycare_m2)
            rows.add(cc, "community", "community_daycare", passed, best, std.community_daycare_m2,
                     "" if passed is True
                     else f"needs 1 day-care centre of >= {_m2(std.community_daycare_m2)}"
                     + (" (floor area unknown)" if passed is pd.NA else ""), uc)
        req = std.daycare_coverage_share
        groups = [(str(u), has_day[comm["unit_code"] == u], "unit") for u in unit_ind["unit_code"].astype(str)
                  if utype.get(str(u)) == "街道"]
        groups.append((region, has_day, "region"))
        for code, hd, level in groups:
            if len(hd) == 0:
                continue
            sh = float(hd.mean())
            need = math.ceil(req * len(hd) - 1e-9) - int(hd.sum())
            rows.add(code, level, "daycare_coverage", sh >= req - 1e-12, sh, req,
                     "" if sh >= req - 1e-12 else f"{need} more communities need a day-care centre "
                     f"({int(hd.sum())} of {len(hd)} have one)")


def _region_rows(ctx: _Ctx, unit_ind: pd.DataFrame) -> None:
    """Region-level standards (slots target, beds, nursing share, old-young and complex childcare)."""
    rows = ctx.rows
    fac = ctx.fac
    std = ctx.std
    region = ctx.region
    old_young_complex_min = ctx.old_young_complex_min
    complex_childcare_share = ctx.complex_childcare_share
    # --- region level ---------------------------------------------------------------------------
    pop = float(unit_ind["pop_total"].sum())
    slots = float(unit_ind["childcare_slots"].sum())
    tgt = std.childcare_slots_target_per_1000
    if pop > 0:
        need = math.ceil(tgt * pop / 1000 - 1e-9) - slots
        n_unk = (int(unit_ind["n_childcare_slots_unknown"].sum())
                 if "n_childcare_slots_unknown" in unit_ind else 0)
        if need > 0 and n_unk:
            rows.add(region, "region", "childcare_slots_target", pd.NA, slots / pop * 1000, tgt,
                     f"{n_unk} childcare facilities have no 托位数 (capacity); "
                     "the known slots fall short by "
                     f"{_n(need)}")
        else:
            rows.add(region, "region", "childcare_slots_target", need <= 0, slots / pop * 1000, tgt,
                     "" if need <= 0 else f"short {_n(need)} childcare slots for {tgt:g} per 1000")
    beds, p60 = float(unit_ind["beds"].sum()), float(unit_ind["pop_60plus"].sum())
    rows.add(region, "region", "beds_per_1000_elderly", pd.NA, beds / p60 * 1000 if p60 > 0 else None, None,
             f"{_n(beds)} beds for {_n(p60)} persons 60+ (reported, no standard)")
    nshare = std.nursing_bed_share
    known_beds = fac[fac["beds"].notna() & fac["nursing_beds"].notna() & (fac["unit_code"] != "")]
    known, nb = float(known_beds["beds"].sum()), float(known_beds["nursing_beds"].sum())
    if known > 0:
        sh = nb / known
        ok = sh >= nshare - 1e-12
        rows.add(region, "region", "nursing_bed_share", ok, sh, nshare,
                 "" if ok else f"short {_n(math.ceil(nshare * known - 1e-9) - nb)} nursing-type beds")
    n_oy = int((fac["kind"] == "old_young_complex").sum())
    rows.add(region, "region", "old_young_complex", n_oy >= old_young_complex_min, n_oy,
             old_young_complex_min,
             "" if n_oy >= old_young_complex_min
             else f"needs {old_young_complex_min - n_oy} 老幼复合型社区综合体")
    cx = fac[fac["kind"].isin(("community_complex", "old_young_complex"))]
    if len(cx):
        with_cc = pd.Series(ctx.cfg.services["childcare"].provided_by(cx), index=cx.index)  # the one rule
        sh = float(with_cc.mean())
        need = math.ceil(complex_childcare_share * len(cx) - 1e-9) - int(with_cc.sum())
        rows.add(region, "region", "complex_childcare", need <= 0, sh, complex_childcare_share,
                 "" if need <= 0 else f"{need} more community complexes need childcare slots")
    else:
        rows.add(region, "region", "complex_childcare", pd.NA, None, complex_childcare_share,
                 "no community complexes")


def check_standards(
    unit_ind: pd.DataFrame,
    facilities: gpd.GeoDataFrame,
    cfg: Config,
    *,
    units: gpd.GeoDataFrame,
    communities: gpd.GeoDataFrame | None = None,
    community_ind: pd.DataFrame | None = None,
    mixed_as: Literal["old", "new"] = "old",
    circle_required_share: float | None = None,
    old_young_complex_min: int | None = None,
    complex_childcare_share: float | None = None,
    region_code: str | None = None,
) -> pd.DataFrame:
    """Check every standard the data allow.

    Parameters
    ----------
    unit_ind
        ``unit_indicators(..., level="unit")`` output (without the standards columns is fine).
    facilities, units, communities
        Tables of docs/ARCHITECTURE.md in the metric CRS.
    community_ind
        ``unit_indicators(..., level="community")``; when given, the coverage circles and childcare
        slots are also checked per 社区/村.
    mixed_as
        Which of the old/new standards a ``mixed`` 街道 must meet (default the old, lower one).
    circle_required_share
        Share of the target population that must be within the circle (default
        ``cfg.standards.circle_required_share``, 1.0 = everyone).
    old_young_complex_min, complex_childcare_share
        Region-level requirements (default ``cfg.standards``: 2 and 50 % for districts outside the
        central city, 003 (九)13; the central city uses 5 and 80 %).
    region_code
        Code of the region-level rows (default ``cfg.region.name``).

    Returns
    -------
    DataFrame with :data:`STANDARDS_COLUMNS`; ``passed`` is a nullable boolean.
    """
    std = cfg.standards
    if circle_required_share is None:
        circle_required_share = std.circle_required_share
    if old_young_complex_min is None:
        old_young_complex_min = std.old_young_complex_min
    if complex_childcare_share is None:
        complex_childcare_share = std.complex_childcare_share
    # facilities carry the unit/community they lie in (assigned once per run by the pipeline)
    fac = (facilities if {"unit_code", "community_code"} <= set(facilities.columns)
           else assign_to_units(facilities, units, communities))
    codes = units["unit_code"].astype(str)
    ctx = _Ctx(rows=_Rows(cfg.standards.targets), fac=fac, cfg=cfg, std=std,
               region=region_code or cfg.region.name,
               utype=dict(zip(codes, units["unit_type"].astype(str), strict=True)),
               uarea=dict(zip(codes, units["area_type"].astype(str), strict=True)), mixed_as=mixed_as,
               circle_required_share=circle_required_share, old_young_complex_min=old_young_complex_min,
               complex_childcare_share=complex_childcare_share)
    _coverage_rows(ctx, unit_ind, community_ind)
    _unit_rows(ctx, unit_ind)
    _colocation_rows(ctx, unit_ind)
    _community_rows(ctx, unit_ind, communities)
    _region_rows(ctx, unit_ind)
    out = ctx.rows.frame()
    log.info("Checked %d standard rows: %d passed, %d failed, %d not checkable", len(out),
             int(out["passed"].eq(True).sum()), int(out["passed"].eq(False).sum()),
             int(out["passed"].isna().sum()))
    return out


def standards_flipped(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """The rows of two standards tables (``level``, ``unit_code``, ``standard_id``) whose ``passed``
    changed: ``now`` True = failed -> 达标, False = 达标 -> failed. A row not checkable on either side (or
    missing from one) is no flip."""
    key = ["level", "unit_code", "standard_id"]
    b = before.set_index(key)["passed"].astype("boolean").rename("before")
    a = after.set_index(key)["passed"].astype("boolean").rename("after")
    both = pd.concat([b, a], axis=1, join="inner")
    both = both[both.notna().all(axis=1)]
    both = both[both["before"] != both["after"]]
    return pd.DataFrame({"level": both.index.get_level_values("level").astype(str),
                         "unit_code": both.index.get_level_values("unit_code").astype(str),
                         "standard_id": both.index.get_level_values("standard_id").astype(str),
                         "now": both["after"].astype(bool).to_numpy()})
