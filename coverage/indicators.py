"""Indicators per 街道/乡镇 (``level="unit"``) and per 社区/村 (``level="community"``).

Everything is computed from the cells table (population pieces with travel times, see
docs/ARCHITECTURE.md) and the facilities table; nothing is read from disk here.

Choices made here (also in the data dictionary):

* "covered" means ``tt <= threshold * 60`` seconds, inclusive (spopt convention). Coverage is always
  recomputed from the ``tt_<service>_s`` columns, so stale ``covered_*`` flags cannot leak in.
* Facilities are assigned to units and communities by point-in-polygon (a point on a shared border
  goes to the first polygon in table order); facilities outside every polygon are logged.
* Childcare-slot standard of a ``mixed`` unit (old and new areas, split unknown): the old-area value
  (8 per 1000) by default, the value every part of the unit must at least meet, so a "fail" is
  certain; ``mixed_as="new"`` applies 10 instead. The basis is written in ``slots_standard_basis``.
* Elderly-service area per resident: the standard speaks of LAND (用地); each facility contributes its
  ``land_area_m2`` when known, else its ``floor_area_m2``; ``elderly_area_field`` says which.
* 2SFCA: supply = beds (elderly service kinds) / childcare slots (childcare kinds), demand = persons
  60+ / 0-3 per cell piece, catchment ``standards.fca_catchment_min``. Costs are network travel
  times when the caller passes ``fca_costs``; otherwise straight-line distance at the walking speed
  (``fca_cost_basis`` says which).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp

from coverage.access2sfca import two_step_fca
from coverage.config import Config, ServiceConfig, unit_threshold_min

log = logging.getLogger(__name__)

__all__ = [
    "DATA_DICTIONARY",
    "add_covered_flags",
    "assign_facilities",
    "cell_access_scores",
    "data_dictionary_frame",
    "slots_per_1000",
    "unit_indicators",
]

#: kinds whose floor area counts for the 街道 institution standard (003 (六)4 社区养老机构)
STREET_INSTITUTION_KINDS = ("elderly_institution", "embedded_nursing_home", "community_complex")


def tlabel(minutes: float) -> str:
    """Threshold label used in column names: 15.0 -> "15", 7.5 -> "7.5"."""
    return f"{minutes:g}"


# --------------------------------------------------------------------------------------------
# Covered flags on cells
# --------------------------------------------------------------------------------------------


def add_covered_flags(cells: gpd.GeoDataFrame, units: pd.DataFrame,
                      services: Mapping[str, ServiceConfig]) -> gpd.GeoDataFrame:
    """Return a copy of ``cells`` with the covered flags of docs/ARCHITECTURE.md.

    Columns added
    -------------
    ``covered_<service>_<T>min`` (bool) for every threshold ``T`` of elderly, childcare and health:
    ``tt_<service>_s <= T * 60`` (inclusive). ``meal_threshold_min`` (min): 15 for cells of 城区 units,
    30 for 郊区 (``services["meal"]``), and ``covered_meal`` (bool): ``tt_meal_s`` within it.

    Raises
    ------
    ValueError
        Listing every missing travel-time column and every cell unit_code absent from ``units``.
    """
    problems: list[str] = []
    for svc in ("elderly", "childcare", "meal", "health"):
        if svc in services and f"tt_{svc}_s" not in cells.columns:
            problems.append(f"cells: column tt_{svc}_s missing (run the travel-time stage first)")
    cls = dict(zip(units["unit_code"].astype(str), units["unit_class"].astype(str)))
    unknown = sorted(set(cells["unit_code"].astype(str)) - set(cls))
    if unknown:
        problems.append(f"cells: unit_code {unknown[:10]} not in the units table (check units.code_field)")
    if problems:
        raise ValueError("add_covered_flags: " + "; ".join(problems))
    out = cells.copy()
    for svc in ("elderly", "childcare", "health"):
        if svc not in services:
            continue
        tt = out[f"tt_{svc}_s"].to_numpy(dtype=float)
        for t in services[svc].thresholds_min:
            out[f"covered_{svc}_{tlabel(t)}min"] = tt <= t * 60.0
    if "meal" in services:
        thr = out["unit_code"].astype(str).map(lambda u: unit_threshold_min(services["meal"], cls[u]))
        out["meal_threshold_min"] = thr.to_numpy(dtype=float)
        out["covered_meal"] = out["tt_meal_s"].to_numpy(dtype=float) <= out["meal_threshold_min"] * 60.0
    return out


# --------------------------------------------------------------------------------------------
# Facilities -> units / communities
# --------------------------------------------------------------------------------------------


def assign_facilities(facilities: gpd.GeoDataFrame, units: gpd.GeoDataFrame,
                      communities: gpd.GeoDataFrame | None = None) -> pd.DataFrame:
    """Point-in-polygon assignment of facilities.

    Returns
    -------
    DataFrame aligned with ``facilities`` (same index) with ``unit_code`` and ``community_code``
    ("" when the point lies in no polygon / no communities were given).
    """
    out = pd.DataFrame(index=facilities.index)
    for col, poly, code in (("unit_code", units, "unit_code"), ("community_code", communities, "community_code")):
        out[col] = ""
        if poly is None or len(facilities) == 0:
            continue
        if facilities.crs is not None and poly.crs is not None and facilities.crs != poly.crs:
            poly = poly.to_crs(facilities.crs)
        j = gpd.sjoin(facilities[["geometry"]], poly[[code, "geometry"]], how="left", predicate="within")
        j = j[~j.index.duplicated(keep="first")]
        out[col] = j[code].reindex(facilities.index).fillna("").astype(str)
    n_out = int((out["unit_code"] == "").sum())
    if n_out:
        log.info("%d of %d facilities lie outside every unit polygon (not counted in unit totals)",
                 n_out, len(facilities))
    return out


def slots_per_1000(slots: Any, pop_total: Any) -> Any:
    """Childcare slots per 1000 residents (NaN where the population is 0)."""
    s = np.asarray(slots, dtype=float)
    p = np.asarray(pop_total, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(p > 0, s / p * 1000.0, np.nan)


# --------------------------------------------------------------------------------------------
# 2SFCA per cell
# --------------------------------------------------------------------------------------------

_FCA = {  # service -> (supply column, demand column, short name)
    "elderly": ("beds", "pop_60plus", "beds"),
    "childcare": ("childcare_slots", "pop_0to3", "slots"),
}


def _cell_xy(cells: gpd.GeoDataFrame) -> np.ndarray:
    if "x" in cells.columns and "y" in cells.columns:
        return np.column_stack([cells["x"].to_numpy(float), cells["y"].to_numpy(float)])
    c = cells.geometry.centroid
    return np.column_stack([c.x.to_numpy(), c.y.to_numpy()])


def cell_access_scores(
    cells: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame,
    cfg: Config,
    *,
    fca_costs: Mapping[str, tuple[Sequence[str], sp.spmatrix]] | None = None,
) -> pd.DataFrame:
    """2SFCA scores per cell piece (same index as ``cells``).

    Parameters
    ----------
    fca_costs
        Optional ``{"elderly" | "childcare": (fac_ids, cost)}`` where ``cost`` is a sparse
        ``(len(fac_ids), len(cells))`` matrix of network travel times in seconds (entries only within
        the catchment, e.g. ``traveltime.coverage_matrix``). Missing services use straight-line
        distance divided by ``cfg.walk.speed_mps``.

    Returns
    -------
    DataFrame with ``fca_beds_per_1000_60plus``, ``fca_beds_gauss_per_1000_60plus`` (beds per 1000
    persons 60+ reachable), ``fca_slots_per_1000_0to3``, ``fca_slots_gauss_per_1000_0to3`` (childcare
    slots per 1000 children 0-3), and ``fca_cost_basis_<service>`` ("network" / "straight-line").
    """
    from scipy.spatial import cKDTree

    catch_s = cfg.standards.fca_catchment_min * 60.0
    out = pd.DataFrame(index=cells.index)
    xy = _cell_xy(cells)
    for svc, (supply_col, demand_col, short) in _FCA.items():
        kinds = cfg.services[svc].kinds if svc in cfg.services else ()
        fac = facilities[facilities["kind"].isin(kinds)] if len(facilities) else facilities
        demand = cells[demand_col].to_numpy(float)
        if fca_costs is not None and svc in fca_costs:
            ids, cost = fca_costs[svc]
            sup_by_id = fac.set_index("fac_id")[supply_col] if len(fac) else pd.Series(dtype=float)
            supply = pd.Series(list(ids)).map(sup_by_id).fillna(0.0).to_numpy(float)
            basis = "network"
        else:
            supply = fac[supply_col].fillna(0.0).to_numpy(float) if len(fac) else np.zeros(0)
            radius = catch_s * cfg.walk.speed_mps
            if len(fac):
                fxy = np.column_stack([fac.geometry.x.to_numpy(), fac.geometry.y.to_numpy()])
                pairs = cKDTree(fxy).sparse_distance_matrix(cKDTree(xy), radius, output_type="ndarray")
                cost = sp.csr_matrix((pairs["v"] / cfg.walk.speed_mps, (pairs["i"], pairs["j"])),
                                     shape=(len(fac), len(cells)))
            else:
                cost = sp.csr_matrix((0, len(cells)))
            basis = "straight-line"
        for decay, tag in ((None, ""), ("gaussian", "_gauss")):
            score = two_step_fca(supply, demand, cost, catchment_s=catch_s, decay=decay)  # type: ignore[arg-type]
            out[f"fca_{short}{tag}_per_1000_{demand_col[4:]}"] = score * 1000.0
        out[f"fca_cost_basis_{svc}"] = basis
    return out


# --------------------------------------------------------------------------------------------
# Unit / community indicators
# --------------------------------------------------------------------------------------------

_REQ_CELLS = ("unit_code", "pop_total", "pop_60plus", "pop_0to3", "tt_elderly_s", "tt_childcare_s", "tt_meal_s")
_REQ_UNITS = ("unit_code", "unit_name", "unit_type", "unit_class", "area_type", "geometry")
_REQ_FAC = ("fac_id", "kind", "beds", "nursing_beds", "childcare_slots", "floor_area_m2", "land_area_m2",
            "geometry")


def _validate(cells: pd.DataFrame, units: pd.DataFrame, facilities: pd.DataFrame,
              communities: pd.DataFrame | None, level: str) -> None:
    problems: list[str] = []
    for name, df, req in (("cells", cells, _REQ_CELLS), ("units", units, _REQ_UNITS),
                          ("facilities", facilities, _REQ_FAC)):
        miss = [c for c in req if c not in df.columns]
        if miss:
            problems.append(f"{name}: missing column(s) {miss} (see docs/ARCHITECTURE.md)")
    if level not in ("unit", "community"):
        problems.append(f"level = {level!r}: use 'unit' or 'community'")
    if level == "community":
        if communities is None:
            problems.append("level='community' needs the communities table (units.communities_path)")
        elif "community_code" not in cells.columns:
            problems.append("cells: column community_code missing (needed for level='community')")
    for name, frame in (("units", units), ("facilities", facilities), ("communities", communities)):
        crs = getattr(frame, "crs", None)
        if frame is not None and crs is not None and not crs.is_projected:
            problems.append(f"{name}: CRS {crs.to_string()} is geographic; project to the metric CRS first")
    if "unit_code" in cells.columns and "unit_code" in units.columns:
        unknown = sorted(set(cells["unit_code"].astype(str)) - set(units["unit_code"].astype(str)))
        if unknown:
            problems.append(f"cells: unit_code {unknown[:10]} not in the units table")
    if problems:
        raise ValueError("unit_indicators: " + "; ".join(problems))


def _thresholds(svc: ServiceConfig | None, extra: float) -> list[float]:
    ts = set(svc.thresholds_min) if svc is not None else set()
    return sorted(ts | {extra})


def _indicator_table(cells: gpd.GeoDataFrame, units: gpd.GeoDataFrame, facilities: gpd.GeoDataFrame,
                     cfg: Config, *, level: str, communities: gpd.GeoDataFrame | None,
                     fca_costs: Any, mixed_as: str) -> gpd.GeoDataFrame:
    std = cfg.standards
    key = "unit_code" if level == "unit" else "community_code"
    uattr = units[["unit_code", "unit_name", "unit_type", "unit_class", "area_type"]].copy()
    uattr["unit_code"] = uattr["unit_code"].astype(str)
    if level == "unit":
        base = units[["unit_code", "unit_name", "unit_type", "unit_class", "area_type", "geometry"]].copy()
        base["unit_code"] = base["unit_code"].astype(str)
    else:
        assert communities is not None
        base = communities[["community_code", "community_name", "unit_code", "geometry"]].copy()
        base["community_code"] = base["community_code"].astype(str)
        base["unit_code"] = base["unit_code"].astype(str)
        base = base.merge(uattr, on="unit_code", how="left")
        base = gpd.GeoDataFrame(base, geometry="geometry", crs=communities.crs)
    base = base.reset_index(drop=True)
    base["area_km2"] = base.geometry.area / 1e6

    c = cells.copy()
    c[key] = c[key].astype(str)
    c["_cls"] = c["unit_code"].astype(str).map(dict(zip(uattr["unit_code"], uattr["unit_class"])))
    pops = ["pop_total", "pop_60plus", "pop_0to3"]
    agg: dict[str, pd.Series] = {p: c.groupby(key)[p].sum() for p in pops}

    def covered_sum(mask: np.ndarray, pop: str) -> pd.Series:
        return c[pop].where(mask, 0.0).groupby(c[key]).sum()

    cols: dict[str, pd.Series] = dict(agg)
    e_ts = _thresholds(cfg.services.get("elderly"), std.elderly_circle_min)
    tt_e = c["tt_elderly_s"].to_numpy(float)
    for t in e_ts:
        cols[f"elderly_covered_{tlabel(t)}min"] = covered_sum(tt_e <= t * 60, "pop_60plus")
    meal_svc = cfg.services["meal"]
    meal_thr = c["_cls"].map(lambda k: unit_threshold_min(meal_svc, str(k))).to_numpy(float)
    cols["meal_covered_60plus"] = covered_sum(c["tt_meal_s"].to_numpy(float) <= meal_thr * 60, "pop_60plus")
    c_ts = _thresholds(cfg.services.get("childcare"), std.childcare_circle_min)
    tt_c = c["tt_childcare_s"].to_numpy(float)
    for t in c_ts:
        cols[f"childcare_covered_0to3_{tlabel(t)}min"] = covered_sum(tt_c <= t * 60, "pop_0to3")
    h_ts: list[float] = []
    if "tt_health_s" in c.columns and "health" in cfg.services:
        h_ts = sorted(cfg.services["health"].thresholds_min)
        for t in h_ts:
            cols[f"health_covered_60plus_{tlabel(t)}min"] = covered_sum(
                c["tt_health_s"].to_numpy(float) <= t * 60, "pop_60plus")

    # 2SFCA, population-weighted per unit
    fca = cell_access_scores(cells, facilities, cfg, fca_costs=fca_costs)
    fca_cols = [k for k in fca.columns if k.startswith("fca_") and not k.startswith("fca_cost_basis")]
    for k in fca_cols:
        dem = c["pop_60plus"] if k.endswith("60plus") else c["pop_0to3"]
        num = (fca[k] * dem).groupby(c[key]).sum()
        den = dem.groupby(c[key]).sum()
        cols[k] = num / den.where(den > 0)

    t = base.join(pd.DataFrame(cols), on=key)
    for k in [*pops, *[n for n in cols if "covered" in n]]:
        t[k] = t[k].fillna(0.0)
    for tt in e_ts:
        lab = tlabel(tt)
        cov = t[f"elderly_covered_{lab}min"]
        t[f"elderly_share_{lab}min"] = cov / t["pop_60plus"].where(t["pop_60plus"] > 0)
        t[f"elderly_uncovered_{lab}min"] = (t["pop_60plus"] - cov).clip(lower=0)
    t["meal_threshold_min"] = t["unit_class"].map(lambda k: unit_threshold_min(meal_svc, str(k)))
    t["meal_share_60plus"] = t["meal_covered_60plus"] / t["pop_60plus"].where(t["pop_60plus"] > 0)
    t["meal_uncovered_60plus"] = (t["pop_60plus"] - t["meal_covered_60plus"]).clip(lower=0)
    for tt in c_ts:
        lab = tlabel(tt)
        cov = t[f"childcare_covered_0to3_{lab}min"]
        t[f"childcare_share_0to3_{lab}min"] = cov / t["pop_0to3"].where(t["pop_0to3"] > 0)
        t[f"childcare_uncovered_0to3_{lab}min"] = (t["pop_0to3"] - cov).clip(lower=0)
    for tt in h_ts:
        lab = tlabel(tt)
        t[f"health_share_60plus_{lab}min"] = (t[f"health_covered_60plus_{lab}min"]
                                              / t["pop_60plus"].where(t["pop_60plus"] > 0))

    # facilities
    fac = facilities.copy()
    asg = assign_facilities(facilities, units, communities if level == "community" else None)
    fac[key] = asg[key].to_numpy()
    fac = fac[fac[key] != ""]
    ek = cfg.services["elderly"].kinds
    ck = cfg.services["childcare"].kinds
    ef = fac[fac["kind"].isin(ek)]
    cf = fac[fac["kind"].isin(ck)]
    g = t[key]
    for name, kinds in (("elderly", ek), ("childcare", ck), ("meal", cfg.services["meal"].kinds),
                        ("health", cfg.services["health"].kinds if "health" in cfg.services else ())):
        t[f"n_{name}_facilities"] = g.map(fac[fac["kind"].isin(kinds)].groupby(key).size()).fillna(0).astype(int)
    t["beds"] = g.map(ef.groupby(key)["beds"].sum()).fillna(0.0)
    both = ef[ef["beds"].notna() & ef["nursing_beds"].notna()]
    t["nursing_beds"] = g.map(both.groupby(key)["nursing_beds"].sum()).fillna(0.0)
    beds_known = g.map(both.groupby(key)["beds"].sum())
    t["nursing_bed_share"] = t["nursing_beds"] / beds_known.where(beds_known > 0)
    t["beds_per_1000_60plus"] = t["beds"] / t["pop_60plus"].where(t["pop_60plus"] > 0) * 1000.0
    t["childcare_slots"] = g.map(cf.groupby(key)["childcare_slots"].sum()).fillna(0.0)
    # OSM kindergartens and many municipal lists carry no 托位数: count them, so that a shortfall built on
    # unknown capacities is reported as "not checkable" rather than as a failure
    t["n_childcare_slots_unknown"] = g.map(
        cf[cf["childcare_slots"].isna()].groupby(key).size()).fillna(0).astype(int)
    t["slots_per_1000"] = slots_per_1000(t["childcare_slots"], t["pop_total"])
    at = t["area_type"].astype(str).where(t["area_type"].astype(str) != "mixed", mixed_as)
    t["slots_standard_per_1000"] = np.where(at == "new", std.childcare_slots_new_per_1000,
                                            std.childcare_slots_old_per_1000)
    t["slots_standard_basis"] = np.where(t["area_type"] == "mixed", f"mixed as {mixed_as}", at)
    req = np.ceil(t["slots_standard_per_1000"] * t["pop_total"] / 1000.0 - 1e-9)
    t["slots_required"] = req
    t["slots_shortfall"] = (req - t["childcare_slots"]).clip(lower=0)
    t["slots_target_per_1000"] = std.childcare_slots_target_per_1000

    area = ef["land_area_m2"].where(ef["land_area_m2"].notna(), ef["floor_area_m2"])
    field = np.where(ef["land_area_m2"].notna(), "land_area_m2",
                     np.where(ef["floor_area_m2"].notna(), "floor_area_m2", ""))
    ea = pd.DataFrame({key: ef[key].to_numpy(), "a": area.to_numpy(float), "f": field})
    t["elderly_area_m2"] = g.map(ea.groupby(key)["a"].sum()).fillna(0.0)
    t["n_elderly_area_unknown"] = g.map(ea[ea["f"] == ""].groupby(key).size()).fillna(0).astype(int)
    used = ea[ea["f"] != ""].groupby(key)["f"].agg(lambda s: "+".join(sorted(set(s))))
    ef_field = g.map(used).astype(object)
    t["elderly_area_field"] = ef_field.where(ef_field.notna(), "")
    t["elderly_area_m2_per_resident"] = t["elderly_area_m2"] / t["pop_total"].where(t["pop_total"] > 0)
    t["elderly_area_standard_m2"] = std.elderly_land_m2_per_resident
    for svc in _FCA:
        t[f"fca_cost_basis_{svc}"] = fca[f"fca_cost_basis_{svc}"].iloc[0] if len(fca) else ""
    return gpd.GeoDataFrame(t, geometry="geometry", crs=base.crs)


def unit_indicators(
    cells: gpd.GeoDataFrame,
    units: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame,
    cfg: Config,
    *,
    level: Literal["unit", "community"] = "unit",
    communities: gpd.GeoDataFrame | None = None,
    fca_costs: Mapping[str, tuple[Sequence[str], sp.spmatrix]] | None = None,
    mixed_as: Literal["old", "new"] = "old",
) -> gpd.GeoDataFrame:
    """One row per 街道/乡镇 (or per 社区/村) with population, coverage, capacity and standards.

    Parameters
    ----------
    cells, units, facilities, communities
        Tables of docs/ARCHITECTURE.md, all in the same metric CRS.
    cfg
        Region config: ``cfg.services`` (kinds and thresholds), ``cfg.standards`` (values).
    level
        ``"unit"`` (key ``unit_code``) or ``"community"`` (key ``community_code``, needs ``communities``).
    fca_costs
        Network cost matrices for 2SFCA, see :func:`cell_access_scores`.
    mixed_as
        Childcare-slot standard applied to ``area_type == "mixed"`` units (default the old-area value).

    Returns
    -------
    GeoDataFrame (polygon geometry, metric CRS). Columns: see :data:`DATA_DICTIONARY`
    (persons, shares 0..1, beds, slots, m², 2SFCA scores per 1000, ``n_failed_standards``).
    """
    _validate(cells, units, facilities, communities, level)
    from coverage.standards import check_standards  # standards imports this module

    kw: dict[str, Any] = {"fca_costs": fca_costs, "mixed_as": mixed_as}
    unit_t = _indicator_table(cells, units, facilities, cfg, level="unit", communities=communities, **kw)
    if level == "unit":
        res = check_standards(unit_t, facilities, cfg, units=units, communities=communities, mixed_as=mixed_as)
        table, key = unit_t, "unit_code"
    else:
        table = _indicator_table(cells, units, facilities, cfg, level="community", communities=communities, **kw)
        res = check_standards(unit_t, facilities, cfg, units=units, communities=communities,
                              community_ind=table, mixed_as=mixed_as)
        key = "community_code"
    return _with_standard_counts(table, res, level=level, key=key)


def _with_standard_counts(table: gpd.GeoDataFrame, std: pd.DataFrame, *, level: str, key: str) -> gpd.GeoDataFrame:
    """Add ``n_checked_standards`` / ``n_failed_standards`` of ``level`` rows of the standards table."""
    lvl = std[std["level"] == level]
    table = table.copy()
    table["n_checked_standards"] = table[key].map(lvl[lvl["passed"].notna()].groupby("unit_code").size())
    table["n_failed_standards"] = table[key].map(lvl[lvl["passed"] == False].groupby("unit_code").size())
    for k in ("n_checked_standards", "n_failed_standards"):
        table[k] = table[k].fillna(0).astype(int)
    log.info("Computed %d %s indicator rows (%d with a failed standard)", len(table), level,
             int((table["n_failed_standards"] > 0).sum()))
    return table


def indicators_and_standards(
    cells: gpd.GeoDataFrame,
    units: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame,
    cfg: Config,
    *,
    communities: gpd.GeoDataFrame | None = None,
    fca_costs: Mapping[str, tuple[Sequence[str], sp.spmatrix]] | None = None,
    mixed_as: Literal["old", "new"] = "old",
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame | None, pd.DataFrame]:
    """Unit indicators, community indicators (when ``communities`` is given) and the standards table,
    each computed once (the same results as :func:`unit_indicators` at both levels plus
    :func:`coverage.standards.check_standards`).

    Returns
    -------
    (unit_ind, community_ind or None, standards DataFrame)
    """
    from coverage.standards import check_standards  # standards imports this module

    _validate(cells, units, facilities, communities, "unit")
    kw: dict[str, Any] = {"fca_costs": fca_costs, "mixed_as": mixed_as}
    unit_t = _indicator_table(cells, units, facilities, cfg, level="unit", communities=communities, **kw)
    comm_t = None
    if communities is not None:
        _validate(cells, units, facilities, communities, "community")
        comm_t = _indicator_table(cells, units, facilities, cfg, level="community", communities=communities, **kw)
    std = check_standards(unit_t, facilities, cfg, units=units, communities=communities, community_ind=comm_t,
                          mixed_as=mixed_as)
    unit_ind = _with_standard_counts(unit_t, std, level="unit", key="unit_code")
    comm_ind = None if comm_t is None else _with_standard_counts(comm_t, std, level="community",
                                                                 key="community_code")
    return unit_ind, comm_ind, std


# --------------------------------------------------------------------------------------------
# Data dictionary
# --------------------------------------------------------------------------------------------

_SRC_CELLS = "population raster / census x travel times (this tool)"
_SRC_FAC = "facility layers (point-in-polygon)"
_SRC_UNITS = "units layer"
_TEMPLATE: list[tuple[str, str, str, str, str]] = [
    # identity
    ("unit_code", "街道/乡镇代码", "", "code of the 街道/乡镇 (parent unit for 社区/村 rows)", _SRC_UNITS),
    ("unit_name", "街道/乡镇名称", "", "name of the 街道/乡镇", _SRC_UNITS),
    ("unit_type", "单元类型", "", "街道 / 镇 / 乡", _SRC_UNITS),
    ("unit_class", "城区/郊区", "", "城区 (urban) or 郊区 (suburban); sets the meal radius", _SRC_UNITS),
    ("area_type", "新旧城区", "", "old (老城区/已建成居住区), new (新建城区), mixed", _SRC_UNITS),
    ("community_code", "社区/村代码", "", "code of the 社区/村 (\"\" = in no community polygon)", "communities layer"),
    ("community_name", "社区/村名称", "", "name of the 社区/村", "communities layer"),
    ("area_km2", "面积", "km²", "polygon area in the metric CRS", _SRC_UNITS),
    ("geometry", "几何", "", "polygon (units/communities) or cell centre point (cells), metric CRS", _SRC_UNITS),
    # population
    ("pop_total", "常住人口", "人", "residents (sum of cell pieces)", _SRC_CELLS),
    ("pop_60plus", "60岁及以上人口", "人", "residents aged 60+", _SRC_CELLS),
    ("pop_0to3", "0-3岁人口", "人", "children aged 0-3", _SRC_CELLS),
    # elderly circle
    ("elderly_covered_{E}min", "{E}分钟内老年人口", "人",
     "persons 60+ whose walk to the nearest elderly service is <= {E} min", _SRC_CELLS),
    ("elderly_share_{E}min", "{E}分钟养老服务覆盖率", "0-1",
     "elderly_covered_{E}min / pop_60plus (empty when no elderly)", _SRC_CELLS),
    ("elderly_uncovered_{E}min", "{E}分钟外老年人口", "人", "persons 60+ beyond {E} min on foot", _SRC_CELLS),
    # meal
    ("meal_threshold_min", "配餐半径", "min", "城区 15 / 郊区 30 (003 (九)14), per the unit's class", "config"),
    ("meal_covered_60plus", "配餐半径内老年人口", "人", "persons 60+ within the unit's meal delivery time",
     _SRC_CELLS),
    ("meal_share_60plus", "助餐配送覆盖率", "0-1", "meal_covered_60plus / pop_60plus", _SRC_CELLS),
    ("meal_uncovered_60plus", "配餐半径外老年人口", "人", "persons 60+ beyond the meal delivery time", _SRC_CELLS),
    # childcare
    ("childcare_covered_0to3_{C}min", "{C}分钟内0-3岁人口", "人",
     "children 0-3 whose walk to the nearest childcare is <= {C} min", _SRC_CELLS),
    ("childcare_share_0to3_{C}min", "{C}分钟托育服务覆盖率", "0-1",
     "childcare_covered_0to3_{C}min / pop_0to3", _SRC_CELLS),
    ("childcare_uncovered_0to3_{C}min", "{C}分钟外0-3岁人口", "人", "children 0-3 beyond {C} min", _SRC_CELLS),
    ("health_covered_60plus_{H}min", "{H}分钟内可达卫生服务的老年人口", "人",
     "persons 60+ within {H} min walk of community health", _SRC_CELLS),
    ("health_share_60plus_{H}min", "{H}分钟卫生服务覆盖率(老年)", "0-1",
     "health_covered_60plus_{H}min / pop_60plus", _SRC_CELLS),
    # facilities
    ("n_elderly_facilities", "养老服务设施数", "个", "facilities of the elderly service kinds inside", _SRC_FAC),
    ("n_childcare_facilities", "托育设施数", "个", "facilities of the childcare kinds inside", _SRC_FAC),
    ("n_meal_facilities", "助餐设施数", "个", "meal points / central kitchens inside", _SRC_FAC),
    ("n_health_facilities", "卫生服务设施数", "个", "community health facilities inside", _SRC_FAC),
    ("beds", "养老床位数", "张", "beds of elderly facilities inside (unknown counted as 0)", _SRC_FAC),
    ("nursing_beds", "护理型床位数", "张", "nursing-type beds (facilities with both counts known)", _SRC_FAC),
    ("nursing_bed_share", "护理型床位占比", "0-1", "nursing_beds / beds of facilities with both counts known",
     _SRC_FAC),
    ("beds_per_1000_60plus", "每千名老年人床位数", "张/千人", "beds / pop_60plus * 1000", _SRC_FAC),
    ("childcare_slots", "托位数", "个", "childcare slots of childcare facilities inside", _SRC_FAC),
    ("slots_per_1000", "每千人口托位数", "个/千人", "childcare_slots / pop_total * 1000", _SRC_FAC),
    ("slots_standard_per_1000", "托位配置标准", "个/千人", "10 new areas, 8 old areas (mixed: see basis)",
     "003 (六)4; 000 task 2"),
    ("slots_standard_basis", "托位标准依据", "", "old / new / 'mixed as old|new'", "this tool"),
    ("slots_required", "应配托位数", "个", "ceil(standard * pop_total / 1000)", "003 (六)4"),
    ("slots_shortfall", "托位缺口", "个", "max(0, slots_required - childcare_slots)", "003 (六)4"),
    ("slots_target_per_1000", "全市托位目标", "个/千人", "city-wide 2025 target (config)", "003 表1/表2; 002"),
    ("elderly_area_m2", "养老服务设施面积", "m²",
     "sum over elderly facilities of land_area_m2 when known else floor_area_m2", _SRC_FAC),
    ("n_elderly_area_unknown", "面积未知的养老设施数", "个", "elderly facilities with neither area", _SRC_FAC),
    ("n_childcare_slots_unknown", "托位数未知的托育设施数", "个", "childcare facilities without a 托位数", _SRC_FAC),
    ("elderly_area_field", "面积字段", "", "which field(s) elderly_area_m2 used: land_area_m2 / floor_area_m2",
     "this tool"),
    ("elderly_area_m2_per_resident", "人均养老服务设施面积", "m²/人", "elderly_area_m2 / pop_total", _SRC_FAC),
    ("elderly_area_standard_m2", "人均用地标准", "m²/人", "0.1 m² per resident (config)", "000 task 2; 002 (二)"),
    # 2SFCA
    ("fca_beds_per_1000_60plus", "床位可达性(2SFCA)", "张/千名老人",
     "2SFCA beds per 1000 persons 60+, binary catchment; population-weighted mean for units", "this tool"),
    ("fca_beds_gauss_per_1000_60plus", "床位可达性(高斯2SFCA)", "张/千名老人",
     "same with Gaussian distance decay (Dai 2010)", "this tool"),
    ("fca_slots_per_1000_0to3", "托位可达性(2SFCA)", "个/千名幼儿",
     "2SFCA childcare slots per 1000 children 0-3, binary catchment", "this tool"),
    ("fca_slots_gauss_per_1000_0to3", "托位可达性(高斯2SFCA)", "个/千名幼儿",
     "same with Gaussian distance decay", "this tool"),
    ("fca_cost_basis_elderly", "床位可达性距离依据", "", "network (travel times) or straight-line", "this tool"),
    ("fca_cost_basis_childcare", "托位可达性距离依据", "", "network (travel times) or straight-line", "this tool"),
    ("n_checked_standards", "可检查标准数", "项", "standards with a pass/fail result for this row",
     "coverage.standards"),
    ("n_failed_standards", "未达标标准数", "项", "standards failed (see standards.csv)", "coverage.standards"),
    # cells
    ("cell_id", "格网编号", "", "raster row * n_cols + col of the study window", "population raster"),
    ("row", "行号", "", "raster row", "population raster"),
    ("col", "列号", "", "raster column", "population raster"),
    ("weight", "面积权重", "0-1", "area fraction of the cell in this unit", "population stage"),
    ("x", "中心X", "m", "cell centre, metric CRS", "population stage"),
    ("y", "中心Y", "m", "cell centre, metric CRS", "population stage"),
    ("tt_{S}_s", "{S}最近设施时间", "s", "travel time to the nearest {S} facility (inf = unreachable)",
     "travel-time stage"),
    ("nearest_{S}_id", "{S}最近设施", "", "fac_id of the nearest {S} facility (\"\" = none)", "travel-time stage"),
    ("covered_elderly_{E}min", "{E}分钟养老覆盖", "bool", "tt_elderly_s <= {E} * 60", "this tool"),
    ("covered_childcare_{C}min", "{C}分钟托育覆盖", "bool", "tt_childcare_s <= {C} * 60", "this tool"),
    ("covered_health_{H}min", "{H}分钟卫生覆盖", "bool", "tt_health_s <= {H} * 60", "this tool"),
    ("covered_meal", "配餐半径覆盖", "bool", "tt_meal_s <= meal_threshold_min * 60", "this tool"),
]
_SVC_ZH = {"elderly": "养老", "childcare": "托育", "meal": "助餐", "health": "卫生"}


#: rows for the columns of gaps.gpkg, facilities, standards.csv and the pipeline's snapping columns
#: (coverage.maps takes every header, legend and popup label from this dictionary)
_OUTPUT_ROWS: list[tuple[str, str, str, str, str]] = [
    ("gap_id", "缺口编号", "", "service:rank", "gaps stage"),
    ("service", "服务类型", "", "elderly / meal / childcare / health", "gaps stage"),
    ("rank", "缺口排序", "", "1 = most uncovered people", "gaps stage"),
    ("n_cells", "格网数", "个", "population cells in the gap area", "gaps stage"),
    ("nearest_fac_id", "最近设施", "", "fac_id of the nearest facility of the service", "gaps stage"),
    ("nearest_tt_min", "到最近设施时间", "min", "travel time to the nearest facility", "gaps stage"),
    ("fac_id", "设施编号", "", "facility id", "facility layers"),
    ("name", "设施名称", "", "facility name", "facility layers"),
    ("kind", "设施类型", "", "facility kind", "facility layers"),
    ("floor_area_m2", "建筑面积", "m²", "floor area", "facility layers"),
    ("land_area_m2", "用地面积", "m²", "land area", "facility layers"),
    ("status", "落点状态", "", "snapping status", "snapping rule"),
    ("standard_id", "标准编号", "", "id in coverage.standards.STANDARDS", "coverage.standards"),
    ("title_zh", "标准", "", "standard", "coverage.standards"),
    ("passed", "结果", "", "pass / fail / empty = not checkable", "coverage.standards"),
    ("value", "实际值", "", "value in the standard's unit", "coverage.standards"),
    ("required", "要求值", "", "required value", "coverage.standards"),
    ("shortfall", "缺口", "", "shortfall in the standard's terms", "coverage.standards"),
    ("pop_beyond_snap_walk", "超出吸附距离人口(步行网)", "人",
     "population of cells farther than snapping.cell_max_snap_m from the walking network (not covered)",
     "snapping rule"),
    ("pop_beyond_snap_delivery", "超出吸附距离人口(配送网)", "人", "same for the delivery network",
     "snapping rule"),
    ("snap_rule", "吸附规则", "", "the snapping rule used (nearest edge, limits, access speed)", "snapping rule"),
]


def data_dictionary_frame(cfg: Config | None = None) -> pd.DataFrame:
    """The data dictionary as a DataFrame (``column``, ``label_zh``, ``unit``, ``description``,
    ``source``), with threshold columns expanded for ``cfg``'s thresholds (defaults when None)."""
    from coverage.config import DEFAULT_SERVICES, StandardsConfig

    services = cfg.services if cfg is not None else DEFAULT_SERVICES
    std = cfg.standards if cfg is not None else StandardsConfig()
    expand = {
        "{E}": _thresholds(services.get("elderly"), std.elderly_circle_min),
        "{C}": _thresholds(services.get("childcare"), std.childcare_circle_min),
        "{H}": sorted(services["health"].thresholds_min) if "health" in services else [],
    }
    rows: list[tuple[str, str, str, str, str]] = []
    for col, zh, unit, desc, src in _TEMPLATE:
        if "{S}" in col:
            for s, szh in _SVC_ZH.items():
                rows.append((col.replace("{S}", s), zh.replace("{S}", szh), unit, desc.replace("{S}", s), src))
            continue
        ph = next((p for p in expand if p in col), None)
        if ph is None:
            rows.append((col, zh, unit, desc, src))
            continue
        for t in expand[ph]:
            lab = tlabel(t)
            rows.append((col.replace(ph, lab), zh.replace(ph, lab), unit, desc.replace(ph, lab), src))
    rows.append(("meal_threshold_min", "配餐半径", "min", "per cell: the unit's meal threshold", "config"))
    rows.extend(_OUTPUT_ROWS)
    df = pd.DataFrame(rows, columns=["column", "label_zh", "unit", "description", "source"])
    return df.drop_duplicates("column").reset_index(drop=True)


#: (column, 中文名, unit, description, source) for every indicator and cell column (default thresholds)
DATA_DICTIONARY: list[tuple[str, str, str, str, str]] = [
    tuple(r) for r in data_dictionary_frame().itertuples(index=False, name=None)
]

