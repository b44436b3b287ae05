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

from coverage import assessment, exact_sums, unit_sums
from coverage.access2sfca import two_step_fca
from coverage.config import Config
from coverage.coords import require_projected
from coverage.services import Service, covered, tlabel, walk_speed_mps
from coverage.standards import check_standards
from coverage.study import assign_to_units, unit_classes

log = logging.getLogger(__name__)

__all__ = [
    "DATA_DICTIONARY",
    "add_covered_flags",
    "add_snap_columns",
    "cell_access_scores",
    "data_dictionary_frame",
    "indicators_and_standards",
    "placed_facilities",
    "slots_per_1000",
    "unit_indicators",
]


# --------------------------------------------------------------------------------------------
# Covered flags on cells
# --------------------------------------------------------------------------------------------


def add_covered_flags(cells: gpd.GeoDataFrame, units: pd.DataFrame,
                      services: Mapping[str, Service]) -> gpd.GeoDataFrame:
    """Return a copy of ``cells`` with the covered flags of docs/ARCHITECTURE.md.

    Columns added, per service of the registry (:func:`coverage.services.covered`, inclusive)
    ---------------------------------------------------------------------------------------
    ``covered_<id>_<T>min`` (bool) for every threshold ``T``; for a service with a per-class rule
    (meal: 城区 15 / 郊区 30) instead ``<id>_threshold_min`` (min, the rule of the cell's unit) and
    ``covered_<id>`` (bool).

    Raises
    ------
    ValueError
        Listing every missing travel-time column and every cell unit_code absent from ``units``.
    """
    problems: list[str] = []
    for s in services.values():
        if s.tt_col not in cells.columns:
            problems.append(f"cells: column {s.tt_col} missing (run the travel-time stage first)")
    cls = unit_classes(units)
    unknown = sorted(set(cells["unit_code"].astype(str)) - set(cls))
    if unknown:
        problems.append(f"cells: unit_code {unknown[:10]} not in the units table (check units.code_field)")
    if problems:
        raise ValueError("add_covered_flags: " + "; ".join(problems))
    new: dict[str, Any] = {}
    unit_class = cells["unit_code"].astype(str).map(cls)
    for s in services.values():
        tt = cells[s.tt_col].to_numpy(dtype=float)
        if s.has_class_rule:
            thr = unit_class.map(s.threshold_min_for_class).to_numpy(dtype=float)
            new[s.threshold_col] = thr
            new[s.covered_flag()] = covered(tt, thr)
        else:
            for t in s.thresholds_min:
                new[s.covered_flag(t)] = covered(tt, t)
    return cells.assign(**new)


# --------------------------------------------------------------------------------------------
# Facilities -> units / communities
# --------------------------------------------------------------------------------------------


def placed_facilities(facilities: gpd.GeoDataFrame, units: gpd.GeoDataFrame,
                      communities: gpd.GeoDataFrame | None) -> gpd.GeoDataFrame:
    """``facilities`` with ``unit_code`` / ``community_code``: as given (the pipeline assigns them once,
    :func:`coverage.study.assign_to_units`), else assigned here once for a direct caller."""
    if "unit_code" in facilities.columns and "community_code" in facilities.columns:
        return facilities
    return assign_to_units(facilities, units, communities)


def slots_per_1000(slots: Any, pop_total: Any) -> Any:
    """Childcare slots per 1000 residents (NaN where the population is 0)."""
    s = np.asarray(slots, dtype=float)
    p = np.asarray(pop_total, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(p > 0, s / p * 1000.0, np.nan)


# --------------------------------------------------------------------------------------------
# 2SFCA per cell
# --------------------------------------------------------------------------------------------

def _capacity_services(cfg: Config) -> list[Service]:
    return [s for s in cfg.services.values() if s.capacity_col]


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
    services: Sequence[Service] | None = None,
) -> pd.DataFrame:
    """2SFCA scores per cell piece (same index as ``cells``) of ``services`` (default: every service
    with a capacity).

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
    for s in _capacity_services(cfg) if services is None else services:
        svc, supply_col = s.id, s.capacity_col
        fac = facilities[s.provided_by(facilities)] if len(facilities) else facilities
        demand = cells[s.demand_col].to_numpy(float)
        if fca_costs is not None and svc in fca_costs:
            ids, cost = fca_costs[svc]
            supply = unit_sums.site_supply(fac, supply_col, ids)
            basis = "network"
        else:
            supply = fac[supply_col].fillna(0.0).to_numpy(float) if len(fac) else np.zeros(0)
            speed = walk_speed_mps(s, cfg.walk) or cfg.walk.speed_mps
            radius = catch_s * speed
            if len(fac):
                fxy = np.column_stack([fac.geometry.x.to_numpy(), fac.geometry.y.to_numpy()])
                pairs = cKDTree(fxy).sparse_distance_matrix(cKDTree(xy), radius, output_type="ndarray")
                cost = sp.csr_matrix((pairs["v"] / speed, (pairs["i"], pairs["j"])),
                                     shape=(len(fac), len(cells)))
            else:
                cost = sp.csr_matrix((0, len(cells)))
            basis = "straight-line"
        for decay in (None, "gaussian"):
            score = two_step_fca(supply, demand, cost, catchment_s=catch_s, decay=decay)
            out[s.fca_column(gaussian=decay is not None)] = score * unit_sums.FCA_PER_PERSONS
        out[s.fca_basis_col] = basis
    return out


# --------------------------------------------------------------------------------------------
# Unit / community indicators
# --------------------------------------------------------------------------------------------

_REQ_CELLS = ("unit_code", "pop_total", "pop_60plus", "pop_0to3")
_REQ_UNITS = ("unit_code", "unit_name", "unit_type", "unit_class", "area_type", "geometry")
_REQ_FAC = ("fac_id", "kind", "beds", "nursing_beds", "childcare_slots", "floor_area_m2", "land_area_m2",
            "geometry")


def _validate(cells: pd.DataFrame, units: pd.DataFrame, facilities: pd.DataFrame,
              communities: pd.DataFrame | None, level: str, services: Mapping[str, Service]) -> None:
    problems: list[str] = []
    req_cells = (*_REQ_CELLS, *(s.tt_col for s in services.values()))
    for name, df, req in (("cells", cells, req_cells), ("units", units, _REQ_UNITS),
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
        if frame is not None and crs is not None:
            try:
                require_projected(crs, what=name)
            except ValueError as exc:
                problems.append(str(exc))
    if "unit_code" in cells.columns and "unit_code" in units.columns:
        unknown = sorted(set(cells["unit_code"].astype(str)) - set(units["unit_code"].astype(str)))
        if unknown:
            problems.append(f"cells: unit_code {unknown[:10]} not in the units table")
    if problems:
        raise ValueError("unit_indicators: " + "; ".join(problems))


def _base_table(units: gpd.GeoDataFrame, communities: gpd.GeoDataFrame | None,
                level: str) -> gpd.GeoDataFrame:
    """One row per unit (or community, with its unit's attributes) and its area."""
    uattr = units[["unit_code", "unit_name", "unit_type", "unit_class", "area_type"]].copy()
    uattr["unit_code"] = uattr["unit_code"].astype(str)
    if level == "unit":
        base = units[["unit_code", "unit_name", "unit_type", "unit_class", "area_type", "geometry"]].copy()
        base["unit_code"] = base["unit_code"].astype(str)
    else:
        if communities is None:
            raise ValueError("level='community' needs the communities table")
        base = communities[["community_code", "community_name", "unit_code", "geometry"]].copy()
        base["community_code"] = base["community_code"].astype(str)
        base["unit_code"] = base["unit_code"].astype(str)
        base = base.merge(uattr, on="unit_code", how="left")
        base = gpd.GeoDataFrame(base, geometry="geometry", crs=communities.crs)
    base = base.reset_index(drop=True)
    base["area_km2"] = base.geometry.area / 1e6
    return base


def _capacity_columns(t: pd.DataFrame, fac: pd.DataFrame, key: str, cfg: Config, mixed_as: str) -> None:
    """Facility counts per service, beds, nursing beds, childcare slots (and the slots standard), and
    elderly-service area, added to ``t`` in place (``t`` is this function's own new table)."""
    std = cfg.standards
    g = t[key]
    for s in cfg.services.values():
        t[s.count_col] = g.map(fac[s.provided_by(fac)].groupby(key).size()).fillna(0).astype(int)
    ef = fac[cfg.services["elderly"].provided_by(fac)]
    cf = fac[cfg.services["childcare"].provided_by(fac)]
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
    # unknown is not 0: where every childcare provider of the row lacks a 托位数, the slots are unknown
    n_cf = g.map(cf.groupby(key).size()).fillna(0).astype(int)
    all_unknown = (n_cf > 0) & (t["n_childcare_slots_unknown"] == n_cf)
    t["childcare_slots"] = t["childcare_slots"].where(~all_unknown)
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
    used = ea[ea["f"] != ""].groupby(key)["f"].agg(lambda v: "+".join(sorted(set(v))))
    ef_field = g.map(used).astype(object)
    t["elderly_area_field"] = ef_field.where(ef_field.notna(), "")
    t["elderly_area_m2_per_resident"] = t["elderly_area_m2"] / t["pop_total"].where(t["pop_total"] > 0)
    t["elderly_area_standard_m2"] = std.elderly_land_m2_per_resident


def cell_partial(cells: pd.DataFrame, units: pd.DataFrame, facilities: gpd.GeoDataFrame, cfg: Config, *,
                 fca_costs: Any = None, tiles: unit_sums.TileSums | None = None
                 ) -> tuple[pd.DataFrame, dict[str, str]]:
    """The exact partial sums (:mod:`coverage.exact_sums`) of every cell-derived indicator, per unit and
    community, and the 2SFCA cost basis per service.

    ``tiles``: what the tiles of a tiled run summed (the population and coverage terms, and the 2SFCA
    terms of ``tiles.fca_services``); everything else is summed here from ``cells`` (``tt_<service>_s``
    columns) and the 2SFCA scores of :func:`cell_access_scores`.
    """
    cls = unit_classes(units)
    if tiles is None:
        terms = unit_sums.cover_terms(cfg.services, cfg.standards, cls.values())
        tiles = unit_sums.TileSums(partial=unit_sums.cells_partial(cells, terms, unit_class=cls))
    here = [s for s in _capacity_services(cfg) if s.id not in tiles.fca_services]
    fca = cell_access_scores(cells, facilities, cfg, fca_costs=fca_costs, services=here)
    weighted: dict[str, np.ndarray] = {}
    for s in here:
        cols = unit_sums.score_columns(s)
        weighted.update(unit_sums.fca_terms(cols, {g: fca[c].to_numpy(float) for g, c in cols.items()},
                                            cells[s.demand_col].to_numpy(float)))
    by = unit_sums.grouping_keys(cells)
    basis = {s.fca_basis_col: "network" if s.id in tiles.fca_services
             else str(fca[s.fca_basis_col].iloc[0]) if len(fca) else "" for s in _capacity_services(cfg)}
    return exact_sums.merge([tiles.partial, exact_sums.partial_sums(by, weighted)]), basis


def _indicator_table(units: gpd.GeoDataFrame, facilities: gpd.GeoDataFrame, cfg: Config, *, level: str,
                     communities: gpd.GeoDataFrame | None, partial: pd.DataFrame,
                     fca_basis: Mapping[str, str], mixed_as: str) -> gpd.GeoDataFrame:
    """The indicator rows of ``level`` from the cells' partial sums (:func:`cell_partial`) and the
    facilities."""
    key = "unit_code" if level == "unit" else "community_code"
    base = _base_table(units, communities, level)
    done = [(s, t) for s in cfg.services.values() for t in s.indicator_minutes(cfg.standards)]
    cov = [s.column("covered", t) for s, t in done]
    fca_cols = [(s, s.fca_column(gaussian=g)) for s in _capacity_services(cfg) for g in (False, True)]
    tot = exact_sums.totals(partial, key).reindex(
        columns=[*unit_sums.POP_COLS, *cov, *(unit_sums.fca_sum_col(k) for _, k in fca_cols)]).fillna(0.0)
    cols = tot[[*unit_sums.POP_COLS, *cov]].copy()
    for s, k in fca_cols:  # 2SFCA, population-weighted per unit
        den = tot[s.demand_col]
        cols[k] = tot[unit_sums.fca_sum_col(k)] / den.where(den > 0)

    t = base.join(cols, on=key)
    for k in [*unit_sums.POP_COLS, *cov]:
        t[k] = t[k].fillna(0.0)
    for s, minutes in done:
        pop = t[s.demand_col]
        cov_t = t[s.column("covered", minutes)]
        if minutes is None:
            t[s.threshold_col] = t["unit_class"].map(lambda k, s=s: s.threshold_min_for_class(str(k)))
        t[s.column("share", minutes)] = cov_t / pop.where(pop > 0)
        t[s.column("uncovered", minutes)] = (pop - cov_t).clip(lower=0)

    fac = facilities[facilities[key] != ""]
    _capacity_columns(t, fac, key, cfg, mixed_as)
    for s in _capacity_services(cfg):
        t[s.fca_basis_col] = fca_basis[s.fca_basis_col]
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
    _validate(cells, units, facilities, communities, level, cfg.services)
    facilities = placed_facilities(facilities, units, communities)
    partial, basis = cell_partial(cells, units, facilities, cfg, fca_costs=fca_costs)
    kw: dict[str, Any] = {"partial": partial, "fca_basis": basis, "mixed_as": mixed_as}
    unit_t = _indicator_table(units, facilities, cfg, level="unit", communities=communities, **kw)
    if level == "unit":
        res = check_standards(unit_t, facilities, cfg, units=units, communities=communities,
                              mixed_as=mixed_as)
        table, key = unit_t, "unit_code"
    else:
        table = _indicator_table(units, facilities, cfg, level="community", communities=communities, **kw)
        res = check_standards(unit_t, facilities, cfg, units=units, communities=communities,
                              community_ind=table, mixed_as=mixed_as)
        key = "community_code"
    return _with_standard_counts(table, res, level=level, key=key)


def _with_standard_counts(table: gpd.GeoDataFrame, std: pd.DataFrame, *, level: str,
                          key: str) -> gpd.GeoDataFrame:
    """Add ``n_checked_standards`` / ``n_failed_standards`` of ``level`` rows of the standards table."""
    lvl = std[std["level"] == level]
    table = table.copy()
    table["n_checked_standards"] = table[key].map(lvl[lvl["passed"].notna()].groupby("unit_code").size())
    table["n_failed_standards"] = table[key].map(lvl[lvl["passed"].eq(False)].groupby("unit_code").size())
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
    not_assessed: Mapping[str, str] | None = None,
    tiles: unit_sums.TileSums | None = None,
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame | None, pd.DataFrame]:
    """Unit indicators, community indicators (when ``communities`` is given) and the standards table,
    each computed once (the same results as :func:`unit_indicators` at both levels plus
    :func:`coverage.standards.check_standards`). The services in ``not_assessed`` (service id ->
    reason, :func:`coverage.assessment.not_assessed`) get empty columns and their standards read "not
    assessed" with the reason, never "failed". ``tiles``: what the tiles of a tiled run summed per unit
    (:func:`cell_partial`).

    Returns
    -------
    (unit_ind, community_ind or None, standards DataFrame)
    """
    _validate(cells, units, facilities, communities, "unit", cfg.services)
    facilities = placed_facilities(facilities, units, communities)
    comm_t = None
    if communities is not None:
        _validate(cells, units, facilities, communities, "community", cfg.services)
    partial, basis = cell_partial(cells, units, facilities, cfg, fca_costs=fca_costs, tiles=tiles)
    kw: dict[str, Any] = {"partial": partial, "fca_basis": basis, "mixed_as": mixed_as}
    unit_t = _indicator_table(units, facilities, cfg, level="unit", communities=communities, **kw)
    if communities is not None:
        comm_t = _indicator_table(units, facilities, cfg, level="community", communities=communities, **kw)
    std = check_standards(unit_t, facilities, cfg, units=units, communities=communities, community_ind=comm_t,
                          mixed_as=mixed_as)
    if not_assessed:
        std = assessment.mark_standards(std, cfg.services, not_assessed)
        unit_t = assessment.blank_indicators(unit_t, cfg.services, not_assessed, cfg.standards)
        if comm_t is not None:
            comm_t = assessment.blank_indicators(comm_t, cfg.services, not_assessed, cfg.standards)
    unit_ind = _with_standard_counts(unit_t, std, level="unit", key="unit_code")
    comm_ind = None if comm_t is None else _with_standard_counts(comm_t, std, level="community",
                                                                 key="community_code")
    return unit_ind, comm_ind, std


def add_snap_columns(ind: gpd.GeoDataFrame, cells: gpd.GeoDataFrame, key: str,
                     cfg: Config) -> gpd.GeoDataFrame:
    """A copy of ``ind`` with the population whose cell centre lies beyond the snap limit per mode
    (``pop_beyond_snap_<mode>``) and the snapping rule itself (``snap_rule``)."""
    ind = ind.copy()
    beyond = {f"pop_beyond_snap_{mode}": np.where(cells[f"snapped_{mode}"].astype(bool), 0.0,
                                                  cells["pop_total"].to_numpy(float))
              for mode in ("walk", "delivery") if f"snapped_{mode}" in cells}
    tot = exact_sums.totals(exact_sums.partial_sums({key: cells[key].astype(str).to_numpy()}, beyond), key)
    for col in beyond:
        ind[col] = ind[key].map(tot[col] if col in tot else pd.Series(dtype=float)).fillna(0.0).round(1)
    ind["snap_rule"] = (f"nearest edge; cells <= {cfg.snapping.cell_max_snap_m:g} m, facilities <= "
                        f"{cfg.snapping.facility_max_snap_m:g} m; "
                        f"access leg at {cfg.walk.access_speed_mps:g} m/s")
    return ind


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
    ("community_code", "社区/村代码", "", "code of the 社区/村 (\"\" = in no community polygon)",
     "communities layer"),
    ("community_name", "社区/村名称", "", "name of the 社区/村", "communities layer"),
    ("area_km2", "面积", "km²", "polygon area in the metric CRS", _SRC_UNITS),
    ("geometry", "几何", "", "polygon (units/communities) or cell centre point (cells), metric CRS",
     _SRC_UNITS),
    # population
    ("pop_total", "常住人口", "人", "residents (sum of cell pieces)", _SRC_CELLS),
    ("pop_60plus", "60岁及以上人口", "人", "residents aged 60+", _SRC_CELLS),
    ("pop_0to3", "0-3岁人口", "人", "children aged 0-3", _SRC_CELLS),
    # facilities
    ("beds", "养老床位数", "张", "beds of elderly facilities inside (unknown counted as 0)", _SRC_FAC),
    ("nursing_beds", "护理型床位数", "张", "nursing-type beds (facilities with both counts known)", _SRC_FAC),
    ("nursing_bed_share", "护理型床位占比", "0-1", "nursing_beds / beds of facilities with both counts known",
     _SRC_FAC),
    ("beds_per_1000_60plus", "每千名老年人床位数", "张/千人", "beds / pop_60plus * 1000", _SRC_FAC),
    ("childcare_slots", "托位数", "个",
     "slots of the childcare providers inside (empty when all lack a 托位数)", _SRC_FAC),
    ("slots_per_1000", "每千人口托位数", "个/千人", "childcare_slots / pop_total * 1000", _SRC_FAC),
    ("slots_standard_per_1000", "托位配置标准", "个/千人", "10 new areas, 8 old areas (mixed: see basis)",
     "003 (六)4; 000 task 2"),
    ("slots_standard_basis", "托位标准依据", "", "old / new / 'mixed as old|new'", "this tool"),
    ("slots_required", "应配托位数", "个", "ceil(standard * pop_total / 1000)", "003 (六)4"),
    ("slots_shortfall", "托位缺口", "个", "max(0, slots_required - childcare_slots)", "003 (六)4"),
    ("slots_target_per_1000", "全市托位目标", "个/千人", "city-wide 2025 target (config)",
     "003 表1/表2; 002"),
    ("elderly_area_m2", "养老服务设施面积", "m²",
     "sum over elderly facilities of land_area_m2 when known else floor_area_m2", _SRC_FAC),
    ("n_elderly_area_unknown", "面积未知的养老设施数", "个", "elderly facilities with neither area",
     _SRC_FAC),
    ("n_childcare_slots_unknown", "托位数未知的托育设施数", "个", "childcare facilities without a 托位数",
     _SRC_FAC),
    ("elderly_area_field", "面积字段", "",
     "which field(s) elderly_area_m2 used: land_area_m2 / floor_area_m2", "this tool"),
    ("elderly_area_m2_per_resident", "人均养老服务设施面积", "m²/人", "elderly_area_m2 / pop_total",
     _SRC_FAC),
    ("elderly_area_standard_m2", "人均用地标准", "m²/人", "0.1 m² per resident (config)",
     "000 task 2; 002 (二)"),
    ("n_checked_standards", "可检查标准数", "项", "standards with a pass/fail result for this row",
     "coverage.standards"),
    ("n_failed_standards", "未达标标准数", "项", "standards failed (see standards.csv)",
     "coverage.standards"),
    # cells
    ("cell_id", "格网编号", "", "raster row * n_cols + col of the study window", "population raster"),
    ("row", "行号", "", "raster row", "population raster"),
    ("col", "列号", "", "raster column", "population raster"),
    ("weight", "面积权重", "0-1", "area fraction of the cell in this unit", "population stage"),
    ("x", "中心X", "m", "cell centre, metric CRS", "population stage"),
    ("y", "中心Y", "m", "cell centre, metric CRS", "population stage"),
]
#: demand column -> (Chinese, English) name of the group, for the per-service dictionary rows
_DEMAND_NAMES = {"pop_total": ("人口", "residents"), "pop_60plus": ("老年人口", "persons 60+"),
                 "pop_0to3": ("0-3岁人口", "children 0-3")}


def _service_rows(s: Service, std: Any) -> list[tuple[str, str, str, str, str]]:
    """Dictionary rows of every column a service gives units and cells (from the registry)."""
    dzh, den = _DEMAND_NAMES.get(s.demand_col, (s.demand_col, s.demand_col))
    zh, en = s.label_zh, s.label_en
    rows: list[tuple[str, str, str, str, str]] = []
    mode = "on foot" if s.mode == "walk" else "by delivery"
    if s.has_class_rule:
        thr = s.threshold_label_zh or f"{zh}时限"
        rule = " / ".join(f"{k} {v:g}" for k, v in s.class_thresholds_min.items())
        rows += [
            (s.threshold_col, thr, "min", f"{rule} min, per the unit's class", "config (service registry)"),
            (s.column("covered"), f"{thr}内{dzh}", "人", f"{den} within the unit's {en} time {mode}",
             _SRC_CELLS),
            (s.column("share"), f"{zh}覆盖率", "0-1", f"{s.column('covered')} / {s.demand_col}", _SRC_CELLS),
            (s.column("uncovered"), f"{thr}外{dzh}", "人", f"{den} beyond the unit's {en} time", _SRC_CELLS),
            (s.covered_flag(), f"{thr}覆盖", "bool", f"{s.tt_col} <= {s.threshold_col} * 60", "this tool"),
        ]
    for t in s.indicator_thresholds_min(std):
        lab = tlabel(t)
        rows += [
            (s.column("covered", t), f"{lab}分钟{zh}覆盖{dzh}", "人",
             f"{den} whose trip to the nearest {en} facility is <= {lab} min {mode}", _SRC_CELLS),
            (s.column("share", t), f"{lab}分钟{zh}覆盖率", "0-1",
             f"{s.column('covered', t)} / {s.demand_col} (empty when 0)", _SRC_CELLS),
            (s.column("uncovered", t), f"{lab}分钟{zh}未覆盖{dzh}", "人", f"{den} beyond {lab} min {mode}",
             _SRC_CELLS),
        ]
    rows += [(s.covered_flag(t), f"{tlabel(t)}分钟{zh}覆盖", "bool", f"{s.tt_col} <= {tlabel(t)} * 60",
              "this tool")
             for t in s.thresholds_min if not s.has_class_rule]
    rows += [
        (s.count_col, f"{zh}设施数", "个", f"facilities of the {en} kinds inside", _SRC_FAC),
        (s.tt_col, f"{zh}最近设施时间", "s", f"travel time to the nearest {en} facility (inf = unreachable)",
         "travel-time stage"),
        (s.nearest_col, f"{zh}最近设施", "", f"fac_id of the nearest {en} facility (\"\" = none)",
         "travel-time stage"),
    ]
    if s.capacity_col:
        per = f"per 1000 {den}"
        rows += [
            (s.fca_column(), f"{zh}容量可达性(2SFCA)", f"{s.capacity_short}/千人",
             f"2SFCA {s.capacity_col} {per}, binary catchment; population-weighted mean for units",
             "this tool"),
            (s.fca_column(gaussian=True), f"{zh}容量可达性(高斯2SFCA)", f"{s.capacity_short}/千人",
             "same with Gaussian distance decay (Dai 2010)", "this tool"),
            (s.fca_basis_col, f"{zh}可达性距离依据", "", "network (travel times) or straight-line",
             "this tool"),
        ]
    return rows


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
    ("source_type", "原始类型", "", "the type text (or OSM tag, typecode) that decided the kind",
     "facility layers"),
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
    ("snap_rule", "吸附规则", "", "the snapping rule used (nearest edge, limits, access speed)",
     "snapping rule"),
]


def data_dictionary_frame(cfg: Config | None = None) -> pd.DataFrame:
    """The data dictionary as a DataFrame (``column``, ``label_zh``, ``unit``, ``description``,
    ``source``): the fixed rows, then every service's columns for ``cfg``'s registry and thresholds
    (the built-in registry when None)."""
    from coverage.config import StandardsConfig
    from coverage.services import BUILTIN_SERVICES

    services = cfg.services if cfg is not None else BUILTIN_SERVICES
    std = cfg.standards if cfg is not None else StandardsConfig()
    rows = list(_TEMPLATE)
    for s in services.values():
        rows.extend(_service_rows(s, std))
    rows.extend(_OUTPUT_ROWS)
    df = pd.DataFrame(rows, columns=["column", "label_zh", "unit", "description", "source"])
    return df.drop_duplicates("column").reset_index(drop=True)


#: (column, 中文名, unit, description, source) for every indicator and cell column (default thresholds)
DATA_DICTIONARY: list[tuple[str, str, str, str, str]] = [
    tuple(r) for r in data_dictionary_frame().itertuples(index=False, name=None)
]

