"""Where to build next: a plan of new sites for one service, from the baseline's stages (issue 12).

From an :class:`~coverage.pipeline.Analysis` and its :class:`~coverage.pipeline.Results`:

1. **Demand**: every population cell piece with the service's demand (60+ for elderly care and meals,
   0-3 for childcare) and the service's headline minutes in its unit (the circle standard's, or the
   per-class 城区 15 / 郊区 30 min for meals).
2. **Existing facilities are kept.** Uncapacitated: a piece they already cover cannot gain. Capacitated:
   their capacity is consumed first, NEAREST FIRST: every (facility, cell) pair within the minutes,
   in order of travel time, takes min(the cell's remaining demand, the facility's remaining capacity).
   Demand is in capacity units: persons x ``planning.demand_share`` (beds or 托位 per person). A
   facility with unknown capacity serves all demand within reach (``unknown_capacity = "unlimited"``,
   the default) or none (``"zero"``); how many there were is reported.
3. **Candidates** (:mod:`coverage.candidates`) x the region's menu = options; a candidate that does not
   snap to the service's network is rejected with its distance.
4. **Coverage pairs** from the multi-source engine (:func:`coverage.traveltime.coverage_matrix`, the
   same snapping and access legs as the run), sparse, within each piece's minutes.
5. **Rules** (per unit, ``planning.rules`` / ``--rule``) become constraints; a request that cannot be
   met (fewer sites than the rules need, a budget below the cheapest option, a unit without a
   candidate, no menu entry of the kind a rule needs, no demand) is refused before any solve.
6. **Solve** (:mod:`coverage.planning`), then the coverage-vs-sites curve, and a scenario run with the
   chosen sites added (:func:`coverage.pipeline.with_facilities`: same networks, same cell snaps) to
   say which standards each site's unit flips to 达标 and to cross-check the people newly covered.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp

from coverage import access
from coverage.candidates import CANDIDATE_KIND, Candidates, generate_candidates, read_candidates
from coverage.config import PLAN_RULES, Config, MenuEntry
from coverage.errors import PlanningError
from coverage.planning import CoverageProblem, PlanResult, Rule, assign_capacity, solve_max_coverage
from coverage.services import Service, access_speed_mps
from coverage.standards import STREET_COMPLEX_KINDS, TOWN_CENTER_KINDS, standards_flipped
from coverage.traveltime import coverage_matrix

if TYPE_CHECKING:
    from coverage.pipeline import Analysis, Results

log = logging.getLogger(__name__)

__all__ = ["Plan", "PlanRequest", "facilities_with_sites", "make_plan", "plan_sites_as_facilities"]

#: the rule -> (service, kinds a site must have to count, unit types it applies to)
_RULE_KINDS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "street_complex": ("elderly", STREET_COMPLEX_KINDS, ("街道",)),
    "town_center": ("elderly", TOWN_CENTER_KINDS, ("镇", "乡")),
    "childcare_slots": ("childcare", (), ()),
}


@dataclass(frozen=True)
class PlanRequest:
    """What the user asked: a service, a number of sites and/or a budget, capacitated or not, rules."""

    service: str = "elderly"
    sites: int | None = None
    budget: float | None = None
    capacitated: bool | None = None  # None = planning.capacitated
    rules: tuple[str, ...] | None = None  # None = planning.rules


@dataclass(frozen=True)
class Plan:
    """A solved plan and everything the outputs are written from."""

    service: Service
    request: PlanRequest
    capacitated: bool
    sites: gpd.GeoDataFrame  # the chosen options, in the order of their marginal gain
    curve: pd.DataFrame
    newly_covered: gpd.GeoDataFrame  # cell pieces newly served, with the persons served
    remaining_gaps: gpd.GeoDataFrame  # cell pieces with demand still unserved within the minutes
    result: PlanResult
    candidates: Candidates
    n_generated: int
    n_options: int
    rules: tuple[Rule, ...]
    standards_after: pd.DataFrame  # the standards of a run with the sites added (scenario)
    info: dict[str, object]


def _demand(
    cfg: Config, s: Service, cells: gpd.GeoDataFrame, unit_class: dict[str, str]
) -> tuple[np.ndarray, np.ndarray]:
    """Persons of the demand population and headline minutes per cell piece."""
    persons = cells[s.demand_col].to_numpy(dtype=float)
    minutes = np.array(
        [
            s.headline_minutes(cfg.standards, unit_class.get(str(u), ""))
            for u in cells["unit_code"].astype(str)
        ],
        dtype=float,
    )
    return np.nan_to_num(persons), minutes


def _piece_pairs(times: sp.csr_matrix, piece_to_cell: np.ndarray, minutes: np.ndarray) -> sp.csr_matrix:
    """(pieces x sources) travel times within each piece's minutes, from (sources x unique cells)."""
    per_piece = sp.csr_matrix(times.T.tocsr()[piece_to_cell])
    coo = per_piece.tocoo()
    ok = coo.data <= minutes[coo.row] * 60.0
    return sp.csr_matrix((coo.data[ok], (coo.row[ok], coo.col[ok])), shape=per_piece.shape)


def _existing_use(pairs: sp.csr_matrix, demand: np.ndarray, capacity: np.ndarray) -> np.ndarray:
    """Demand left per piece after existing facilities serve it nearest first (module docstring 2):
    ``pairs`` = (pieces x facilities) travel times, ``capacity`` per facility (inf = unlimited)."""
    coo = pairs.tocoo()
    order = np.lexsort((coo.col, coo.row, coo.data))
    left = demand.astype(float).copy()
    room = capacity.astype(float).copy()
    for i, j in zip(coo.row[order].tolist(), coo.col[order].tolist(), strict=True):
        if left[i] <= 0 or room[j] <= 0:
            continue
        t = min(left[i], room[j])
        left[i] -= t
        room[j] -= t
    return left


def plan_sites_as_facilities(sites: pd.DataFrame, s: Service, metric_crs: str) -> gpd.GeoDataFrame:
    """Chosen sites as facility rows (the facility table's columns): kind, capacity in the service's
    capacity column, floor area; ``layer = "plan:<service>"``."""
    rows = pd.DataFrame(
        {
            "fac_id": sites["site_id"].astype(str).to_numpy(),
            "name": sites["name"].astype(str).to_numpy(),
            "kind": sites["kind"].to_numpy(),
            "source_type": "planned site",
            "beds": np.nan,
            "nursing_beds": np.nan,
            "childcare_slots": np.nan,
            "floor_area_m2": sites["floor_area_m2"].to_numpy(dtype=float),
            "land_area_m2": np.nan,
            "address": "",
            "operator": "",
            "layer": f"plan:{s.id}",
            "source_file": "",
            "source_row": 0,
            "duplicate_of": "",
            "note": "planned site",
        }
    )
    if s.capacity_col:
        rows[s.capacity_col] = sites["capacity"].to_numpy(dtype=float)
    rows.loc[rows["floor_area_m2"] <= 0, "floor_area_m2"] = np.nan
    return gpd.GeoDataFrame(rows, geometry=gpd.GeoSeries(sites.geometry.values, crs=metric_crs))


def facilities_with_sites(facilities: gpd.GeoDataFrame, added: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The facility table plus ``added`` rows (facility columns only; the stages add the rest)."""
    from coverage.layers.vocabulary import FACILITY_COLUMNS

    cols = [c for c in FACILITY_COLUMNS if c in facilities.columns]
    both = pd.concat([facilities[cols], added[[c for c in cols if c in added.columns]]], ignore_index=True)
    return gpd.GeoDataFrame(both, geometry="geometry", crs=facilities.crs)


def _candidates(cfg: Config, a: Analysis, s: Service, gap_xy: np.ndarray) -> tuple[Candidates, int]:
    cands = read_candidates(cfg, a.study, roads=a.roads.geometry)
    gen = generate_candidates(
        a.networks[s.mode],
        gap_xy,
        a.study,
        spacing_m=cfg.planning.generate_spacing_m,
        buffer_m=cfg.planning.generate_buffer_m,
        prefix=f"gen-{s.id}",
    )
    sites = pd.concat([cands.sites, gen], ignore_index=True) if len(gen) else cands.sites
    return dataclasses.replace(
        cands, sites=gpd.GeoDataFrame(sites, geometry="geometry", crs=a.study.metric_crs)
    ), len(gen)


def _options(sites: pd.DataFrame, menu: list[MenuEntry]) -> tuple[np.ndarray, np.ndarray]:
    """(candidate index, menu index) per option: a ``candidate_site`` row takes every menu entry, a
    row naming a kind only the entries of that kind; a candidate with a known floor area (a plot or
    premises of ``floor_area_m2``) only the entries whose floor area fits in it."""
    cand, entry = [], []
    kinds = sites["kind"].astype(str).to_numpy()
    area = (
        pd.to_numeric(sites["floor_area_m2"], errors="coerce").to_numpy(dtype=float)
        if "floor_area_m2" in sites.columns
        else np.full(len(sites), np.nan)
    )
    for j, k in enumerate(kinds):
        for e, m in enumerate(menu):
            fits = not np.isfinite(area[j]) or m.floor_area_m2 <= area[j]
            if (k == CANDIDATE_KIND.id or k == m.kind) and fits:
                cand.append(j)
                entry.append(e)
    return np.asarray(cand, dtype=np.int64), np.asarray(entry, dtype=np.int64)


def _rules(
    cfg: Config,
    s: Service,
    names: tuple[str, ...],
    units: pd.DataFrame,
    facilities: pd.DataFrame,
    cells: pd.DataFrame,
    opt_unit: np.ndarray,
    opt_kind: np.ndarray,
    opt_cap: np.ndarray,
    menu: list[MenuEntry],
) -> tuple[Rule, ...]:
    """The per-unit rules as constraints, each checked for feasibility first (PlanningError)."""
    out: list[Rule] = []
    std = cfg.standards
    ufac = facilities[facilities["unit_code"].astype(str) != ""]
    for name in names:
        if name not in PLAN_RULES:
            raise PlanningError(f"unknown rule {name!r}: one of {', '.join(PLAN_RULES)}")
        rule_service, kinds, unit_types = _RULE_KINDS[name]
        if rule_service != s.id:
            raise PlanningError(
                f"rule {name!r} is about the {rule_service} service, not {s.id}: plan "
                f"SERVICE={rule_service} with it, or drop it from planning.rules / --rule"
            )
        if kinds and not any(m.kind in kinds for m in menu):
            raise PlanningError(
                f"rule {name!r} needs sites of kind {' or '.join(kinds)}, and no "
                f"[[planning.menu]] entry of service {s.id!r} has that kind: add one "
                f'(kind = "{kinds[0]}", capacity = ..., cost = ...)'
            )
        for _, u in units.iterrows():
            code, uname = str(u["unit_code"]), str(u["unit_name"])
            in_unit = opt_unit == code
            if name == "childcare_slots":
                pop = float(cells.loc[cells["unit_code"].astype(str) == code, "pop_total"].sum())
                have = float(
                    np.nansum(
                        ufac.loc[ufac["unit_code"].astype(str) == code, s.capacity_col].to_numpy(dtype=float)
                    )
                )
                need = std.childcare_slots_target_per_1000 * pop / 1000.0 - have
                if need <= 1e-9:
                    continue
                if opt_cap[in_unit].sum() < need:  # even every option in the unit falls short
                    raise PlanningError(
                        f"rule childcare_slots: {uname} ({code}) needs {need:.0f} more 托位 "
                        f"({std.childcare_slots_target_per_1000:g} per 1000 of {pop:.0f} residents, "
                        f"{have:.0f} today) and its candidates offer at most {opt_cap[in_unit].sum():.0f}: "
                        "add candidate sites in the unit, or a larger menu entry"
                    )
                out.append(
                    Rule(
                        f"{uname} ({code}): childcare_slots >= {need:.0f} more 托位",
                        np.flatnonzero(in_unit),
                        min_capacity=need,
                    )
                )
                continue
            if str(u["unit_type"]) not in unit_types:
                continue
            k = std.street_complex_min if name == "street_complex" else std.town_regional_center_min
            have_n = int(ufac.loc[ufac["unit_code"].astype(str) == code, "kind"].isin(kinds).sum())
            need_n = k - have_n
            if need_n <= 0:
                continue
            ok = in_unit & np.isin(opt_kind, kinds)
            if not ok.any():
                raise PlanningError(
                    f"rule {name}: {uname} ({code}) needs {need_n} more {' / '.join(kinds)} and has no "
                    "candidate site: add a candidate in the unit ([[planning.candidates]]), or lower "
                    "planning.generate_spacing_m so generated candidates reach it"
                )
            out.append(
                Rule(f"{uname} ({code}): {name} needs {need_n} more", np.flatnonzero(ok), min_sites=need_n)
            )
    return tuple(out)


def _check_request(req: PlanRequest, rules: tuple[Rule, ...], cost: np.ndarray, cost_unit: str) -> None:
    need_sites = sum(r.min_sites for r in rules) + sum(1 for r in rules if r.min_capacity and not r.min_sites)
    if req.sites is not None and need_sites > req.sites:
        raise PlanningError(
            f"the rules need at least {need_sites} new sites ("
            + "; ".join(r.name for r in rules)
            + f") and SITES={req.sites}: give SITES >= "
            f"{need_sites}, or drop a rule"
        )
    if req.budget is not None:
        if len(cost) and req.budget < cost.min():
            raise PlanningError(
                f"BUDGET={req.budget:g} {cost_unit} is below the cheapest menu option "
                f"({cost.min():g} {cost_unit}): raise the budget or add a cheaper entry"
            )
        floor = sum(float(np.sort(cost[r.options])[: max(r.min_sites, 1)].sum()) for r in rules)
        if floor > req.budget + 1e-9:
            raise PlanningError(
                f"the rules need at least {floor:g} {cost_unit} (the cheapest options "
                f"that meet them) and BUDGET={req.budget:g}: raise the budget or drop a rule"
            )


@dataclass(frozen=True)
class _Demand:
    """Per cell piece: persons of the demand population, headline minutes, covered now (the run's
    flag), the weight left for new sites (persons, or capacity units after existing use) and whether
    existing facilities already serve it whole."""

    persons: np.ndarray
    minutes: np.ndarray
    covered_now: np.ndarray
    weight: np.ndarray
    served_rows: np.ndarray
    share: float  # capacity units per person (1 when uncapacitated)
    existing_weight: float  # what the existing facilities serve, in weight units
    n_unknown_capacity: int

    @property
    def gap(self) -> np.ndarray:
        return (~self.served_rows) & (self.weight > 0)

    @property
    def open_weight(self) -> np.ndarray:
        return np.where(self.served_rows, 0.0, self.weight)


@dataclass(frozen=True)
class _Options:
    """The snapped candidates and their options (candidate x menu entry) with coverage pairs."""

    candidates: Candidates
    n_generated: int
    cand: np.ndarray  # candidate index per option
    entry: np.ndarray  # menu index per option
    pairs: sp.csr_matrix  # pieces x options within each piece's minutes
    capacity: np.ndarray
    cost: np.ndarray
    unit: np.ndarray
    kind: np.ndarray


def _demand_stage(a: Analysis, res: Results, s: Service, capacitated: bool, share: float) -> _Demand:
    """Module docstring 1-2: demand per piece and what the existing facilities leave of it."""
    cfg = a.cfg
    cells = res.cells
    persons, minutes = _demand(cfg, s, cells, a.study.unit_class)
    if persons.sum() <= 0:
        raise PlanningError(f"service {s.id}: no demand ({s.demand_col} is 0 everywhere): nothing to plan")
    covered_now = cells[s.headline(cfg.standards)[0]].fillna(False).to_numpy(dtype=bool)
    if not capacitated:
        return _Demand(
            persons, minutes, covered_now, persons, covered_now, 1.0, float(persons[covered_now].sum()), 0
        )
    use = s.provided_by(a.facilities) & a.fac_snaps.by_mode[s.mode].snapped
    ex_cap = (
        a.facilities.loc[use, s.capacity_col].to_numpy(dtype=float)
        if s.capacity_col
        else np.full(int(use.sum()), np.nan)
    )
    n_unknown = int(np.isnan(ex_cap).sum())
    ex_cap = np.where(
        np.isnan(ex_cap), np.inf if cfg.planning.unknown_capacity == "unlimited" else 0.0, ex_cap
    )
    times = coverage_matrix(
        access.service_network(s, a.networks, cfg),
        a.fac_snaps.by_mode[s.mode].take(np.flatnonzero(use)),
        a.cell_snaps.by_mode[s.mode],
        access_speed_mps=access_speed_mps(s, cfg.walk, cfg.delivery),
        limit_s=float(minutes.max()) * 60.0,
    )
    demand = persons * share
    left = _existing_use(_piece_pairs(times, a.cell_snaps.piece_to_cell, minutes), demand, ex_cap)
    return _Demand(
        persons, minutes, covered_now, left, left <= 1e-12, share, float((demand - left).sum()), n_unknown
    )


def _options_stage(
    a: Analysis, s: Service, menu: list[MenuEntry], near_xy: np.ndarray, minutes: np.ndarray
) -> _Options:
    """Module docstring 3-4: candidates (rejects accounted), their menu options and coverage pairs."""
    cfg = a.cfg
    cands, n_gen = _candidates(cfg, a, s, near_xy)
    if not len(cands.sites):
        raise PlanningError(
            f"no candidate site for {s.id}: add a [[planning.candidates]] layer, or set "
            "planning.generate_spacing_m > 0 (generated candidates need a gap to be near)"
        )
    snaps = access.snap_facilities(cfg, a.networks, cands.sites).by_mode[s.mode]
    ok = snaps.snapped
    limit = cfg.snapping.facility_max_snap_m
    if not ok.any():
        raise PlanningError(
            f"none of the {len(cands.sites)} candidate sites lies within {limit:g} m of the "
            f"{s.mode} network (snapping.facility_max_snap_m): check their coordinates"
        )
    out = cands.sites.loc[~ok]
    unsnapped = pd.DataFrame(
        {
            "source_file": "",
            "layer": out["origin"].astype(str),
            "row": out["fac_id"].astype(str),
            "reason": [
                f"candidate not snapped: {d:.0f} m from the nearest road > {limit:g} m"
                for d in snaps.dist_m[~ok]
            ],
            "values": out["name"].astype(str),
        }
    )
    sites = cands.sites[ok].reset_index(drop=True)
    cands = dataclasses.replace(
        cands, sites=sites, rejects=pd.concat([cands.rejects, unsnapped], ignore_index=True)
    )
    cand, entry = _options(sites, menu)
    if not len(cand):
        raise PlanningError(
            f"no candidate can take a menu type of {s.id}: candidate rows name kinds ("
            + ", ".join(sorted(set(sites["kind"].astype(str))))
            + ") that no menu entry has, or floor areas (floor_area_m2) smaller than every "
            "menu entry's"
        )
    times = coverage_matrix(
        access.service_network(s, a.networks, cfg),
        snaps.take(np.flatnonzero(ok)),
        a.cell_snaps.by_mode[s.mode],
        access_speed_mps=access_speed_mps(s, cfg.walk, cfg.delivery),
        limit_s=float(minutes.max()) * 60.0,
    )
    pairs = sp.csr_matrix(_piece_pairs(times, a.cell_snaps.piece_to_cell, minutes)[:, cand])
    return _Options(
        cands,
        n_gen,
        cand,
        entry,
        pairs,
        capacity=np.array([menu[e].capacity for e in entry], dtype=float),
        cost=np.array([menu[e].cost for e in entry], dtype=float),
        unit=sites["unit_code"].astype(str).to_numpy()[cand],
        kind=np.array([menu[e].kind for e in entry], dtype=object),
    )


def _site_table(
    a: Analysis,
    s: Service,
    menu: list[MenuEntry],
    opts: _Options,
    chosen: np.ndarray,
    persons_new: np.ndarray,
    cap_used: np.ndarray,
) -> gpd.GeoDataFrame:
    """The chosen options as the rows of sites.csv (in the solver's order)."""
    cfg = a.cfg
    ents = [menu[e] for e in opts.entry[chosen]]
    cs = opts.candidates.sites.iloc[opts.cand[chosen]].reset_index(drop=True)
    unit_name = dict(
        zip(a.study.units["unit_code"].astype(str), a.study.units["unit_name"].astype(str), strict=True)
    )
    label = [e.label or cfg.kinds[e.kind].label_zh for e in ents]
    return gpd.GeoDataFrame(
        {
            "order": np.arange(1, len(chosen) + 1),
            "site_id": [f"plan-{s.id}-{k + 1}" for k in range(len(chosen))],
            "candidate_id": cs["fac_id"].astype(str).to_numpy(),
            "origin": cs["origin"].astype(str).to_numpy(),
            "name": [f"规划{lab} {k + 1}" for k, lab in enumerate(label)],
            "kind": [e.kind for e in ents],
            "type_label": label,
            "capacity": [e.capacity for e in ents],
            "floor_area_m2": [e.floor_area_m2 for e in ents],
            "cost": [e.cost for e in ents],
            "unit_code": cs["unit_code"].astype(str).to_numpy(),
            "unit_name": [unit_name.get(str(u), "") for u in cs["unit_code"]],
            "community_code": cs["community_code"].astype(str).to_numpy(),
            "newly_covered_persons": np.round(persons_new, 3),
            "capacity_used": np.round(np.asarray(cap_used, dtype=float), 3),
        },
        geometry=gpd.GeoSeries(cs.geometry.values, crs=a.study.metric_crs),
    )


def make_plan(
    a: Analysis, res: Results, req: PlanRequest, results_with: Callable[[gpd.GeoDataFrame], Results]
) -> Plan:
    """Plan new sites for ``req.service`` on the baseline ``a`` / ``res`` (the module docstring's
    steps); ``results_with(facilities)`` gives the results of the baseline with other facilities
    (coverage.pipeline.plan_on passes :func:`~coverage.pipeline.with_facilities` +
    :func:`~coverage.pipeline.evaluate`)."""
    cfg, pc = a.cfg, a.cfg.planning
    s, menu = _check_service(a, req)
    capacitated = pc.capacitated if req.capacitated is None else req.capacitated
    conf_share = pc.demand_share.get(s.id)
    if capacitated and conf_share is None:
        raise PlanningError(
            f"a capacitated plan of {s.id} needs planning.demand_share.{s.id} (capacity "
            f"units per person of {s.demand_col}), or plan it uncapacitated (--uncapacitated)"
        )
    d = _demand_stage(a, res, s, capacitated, float(conf_share) if capacitated and conf_share else 1.0)
    rule_names = tuple(pc.rules if req.rules is None else req.rules)
    if not d.gap.any() and not rule_names:
        what = (
            "serve all demand within their capacity"
            if capacitated
            else f"cover every person of {s.demand_col}"
        )
        raise PlanningError(
            f"nothing to plan for {s.id}: existing facilities already {what} within the "
            "service's minutes (ask for a per-unit rule with --rule to plan for a standard "
            "instead)"
        )
    # generated candidates go around the gaps; a plan held to per-unit rules also needs them wherever
    # people live (a unit short of 托位 or of a complex may have no coverage gap at all)
    near = (d.persons > 0) if rule_names else d.gap
    opts = _options_stage(a, s, menu, res.cells.loc[near, ["x", "y"]].to_numpy(dtype=float), d.minutes)
    rules = _rules(
        cfg, s, rule_names, a.study.units, a.facilities, res.cells, opts.unit, opts.kind, opts.capacity, menu
    )
    _check_request(req, rules, opts.cost, pc.cost_unit)
    problem = CoverageProblem(
        opts.pairs,
        d.weight,
        d.served_rows,
        capacity=opts.capacity if capacitated else None,
        cost=opts.cost,
        site=opts.cand,
        rules=rules,
    )
    gap_target = pc.mip_rel_gap if capacitated else 0.0
    # the gap is on TOTAL covered demand: what the existing facilities serve enters as a constant
    result = solve_max_coverage(
        problem,
        req.sites,
        budget=req.budget,
        time_limit_s=pc.time_limit_s,
        mip_rel_gap=gap_target,
        served_by_existing=d.existing_weight,
    )
    if result.status == "infeasible":
        raise PlanningError(
            "the request cannot be met: "
            + "; ".join(result.notes)
            + " (rules: "
            + "; ".join(r.name for r in rules)
            + "). Give more sites or budget, more "
            "candidates, or fewer rules"
        )
    log.info(
        "Plan %s: %d sites, %.0f newly served (%s, gap %.3g, %.1f s)",
        s.id,
        len(result.chosen),
        result.new_covered_weight,
        result.method,
        result.gap,
        result.solve_s,
    )

    # per site: the demand it serves (in the solver's order) and the capacity it uses; uncapacitated,
    # the persons are exact and the capacity they would use is persons x share (unknown without one)
    chosen = result.chosen
    served, used = assign_capacity(opts.pairs, d.open_weight, opts.capacity if capacitated else None, chosen)
    persons_new = used / d.share
    cap_used = (
        used
        if capacitated
        else (
            np.minimum(opts.capacity[chosen], used * conf_share)
            if conf_share is not None
            else np.full(len(chosen), np.nan)
        )
    )
    site_rows = _site_table(a, s, menu, opts, chosen, persons_new, cap_used)

    # a run with the sites added: the standards they flip, and the cross-check of the people covered
    res2 = results_with(
        facilities_with_sites(a.facilities, plan_sites_as_facilities(site_rows, s, a.study.metric_crs))
    )
    site_rows["standards_flipped"] = _flips(res.standards, res2.standards, site_rows)
    covered_after = res2.cells[s.headline(cfg.standards)[0]].fillna(False).to_numpy(dtype=bool)
    cells = res.cells
    newly = served > 1e-12
    newly_cells = cells.loc[newly, ["cell_id", "unit_code", "geometry"]].assign(
        persons_served=np.round(served[newly] / d.share, 3)
    )
    left = (d.open_weight - served > 1e-9 if capacitated else ~covered_after) & (d.persons > 0)
    remaining = cells.loc[left, ["cell_id", "unit_code", "geometry"]].assign(persons=d.persons[left])
    total = float(d.persons.sum())
    served_before = d.existing_weight / d.share
    curve = _curve(
        problem, req, result, pc.curve_max_sites, pc.time_limit_s, gap_target, d.share, total, served_before
    )
    info = _plan_info(a, s, req, result, rules, rule_names, opts, d, capacitated)
    info.update(
        newly_covered_persons=float(persons_new.sum()),
        scenario_newly_covered_persons=float(d.persons[covered_after & ~d.covered_now].sum()),
        demand_total_persons=total,
        covered_before_persons=float(d.persons[d.covered_now].sum()),
    )
    return Plan(
        service=s,
        request=req,
        capacitated=capacitated,
        sites=site_rows,
        curve=curve,
        newly_covered=gpd.GeoDataFrame(newly_cells, geometry="geometry", crs=cells.crs),
        remaining_gaps=gpd.GeoDataFrame(remaining, geometry="geometry", crs=cells.crs),
        result=result,
        candidates=opts.candidates,
        n_generated=opts.n_generated,
        n_options=len(opts.cand),
        rules=rules,
        standards_after=res2.standards,
        info=info,
    )


def _check_service(a: Analysis, req: PlanRequest) -> tuple[Service, list[MenuEntry]]:
    """The service and its menu, or the PlanningError of a request that names none (before any work)."""
    cfg, pc = a.cfg, a.cfg.planning
    if req.service not in cfg.services:
        raise PlanningError(
            f"SERVICE={req.service!r} is not a service of this region: one of " + ", ".join(cfg.services)
        )
    s = cfg.services[req.service]
    if s.id in a.not_assessed:
        raise PlanningError(
            f"service {s.id} is not assessed ({a.not_assessed[s.id]}): a plan needs the "
            "existing facilities first"
        )
    if req.sites is None and req.budget is None:
        raise PlanningError("give a number of sites (SITES=N) or a budget (BUDGET=x), or both")
    if req.sites is not None and req.sites < 1:
        raise PlanningError(f"SITES={req.sites}: give at least 1 site")
    if req.budget is not None and not req.budget > 0:
        raise PlanningError(f"BUDGET={req.budget}: give a budget > 0 (in {pc.cost_unit})")
    menu = [m for m in pc.menu if m.service == s.id]
    if not menu:
        raise PlanningError(
            f"no [[planning.menu]] entry for service {s.id!r} in {cfg.path}: add one, e.g. "
            f'[[planning.menu]] service = "{s.id}" kind = "{s.kinds[0]}" capacity = 100 '
            "cost = 300"
        )
    return s, menu


def _plan_info(
    a: Analysis,
    s: Service,
    req: PlanRequest,
    result: PlanResult,
    rules: tuple[Rule, ...],
    rule_names: tuple[str, ...],
    opts: _Options,
    d: _Demand,
    capacitated: bool,
) -> dict[str, object]:
    """plan.json: the request, the method and what the solver proved."""
    pc = a.cfg.planning

    def finite(v: float) -> float | None:
        return v if np.isfinite(v) else None

    return {
        "service": s.id,
        "service_label": s.label_zh,
        "capacitated": capacitated,
        "sites_requested": req.sites,
        "budget": req.budget,
        "cost_unit": pc.cost_unit,
        "rules": [r.name for r in rules],
        "rule_names": list(rule_names),
        "method": result.method,
        "optimal": bool(result.optimal),
        "gap": finite(result.gap),
        "gap_basis": result.gap_basis,
        "gap_on_new_sites": finite(result.gap_new),
        "bound": finite(result.bound),
        "objective": result.new_covered_weight,
        "objective_unit": (
            f"{s.capacity_short or 'capacity'} units (persons x {d.share:g})"
            if capacitated
            else f"persons ({s.demand_col})"
        ),
        "greedy_objective": result.greedy_value,
        "solve_s": round(result.solve_s, 3),
        "merged_demand_rows": result.merged_rows,
        "demand_pieces": len(d.persons),
        "options": len(opts.cand),
        "candidates": len(opts.candidates.sites),
        "generated_candidates": opts.n_generated,
        "candidate_rejects": len(opts.candidates.rejects),
        "existing_capacity_rule": (
            "nearest first: each (facility, cell) pair within the minutes in order of "
            "travel time takes min(remaining demand, remaining capacity)"
            if capacitated
            else "uncapacitated: cells an existing facility covers cannot gain"
        ),
        "existing_unknown_capacity": d.n_unknown_capacity,
        "unknown_capacity_rule": pc.unknown_capacity,
        "demand_share": d.share if capacitated else None,
        "method_note": _method_note(a.cfg, s, capacitated, d.share),
    }


def _method_note(cfg: Config, s: Service, capacitated: bool, share: float) -> str:
    speed = access_speed_mps(s, cfg.walk, cfg.delivery)
    mins = (
        ", ".join(f"{k} {v:g} min" for k, v in s.class_thresholds_min.items())
        if s.has_class_rule
        else f"{s.headline_minutes(cfg.standards, ''):g} min"
    )
    how = (
        f"capacitated: demand = {s.demand_col} x {share:g} {s.capacity_short or 'capacity units'} per "
        "person, existing capacity used nearest first"
        if capacitated
        else "uncapacitated"
    )
    return (
        f"{s.label_zh}: {s.mode} network, {mins}, access legs at {speed:g} m/s, sites snapped within "
        f"{cfg.snapping.facility_max_snap_m:g} m and cells within {cfg.snapping.cell_max_snap_m:g} m; "
        f"{how}; population from {cfg.population.total.name if cfg.population.total else 'census'}"
    )


def _flips(before: pd.DataFrame, after: pd.DataFrame, sites: pd.DataFrame) -> list[str]:
    """Per site: the standards of its unit and of the unit's communities that go from failed to 达标 with
    the whole plan (two sites in one unit list the same flips)."""
    flips = standards_flipped(before, after)
    flipped = flips[flips["now"]]
    parent = (
        dict(zip(after["unit_code"].astype(str), after["parent_code"].astype(str), strict=False))
        if "parent_code" in after.columns
        else {}
    )
    out = []
    for _, r in sites.iterrows():
        unit = str(r["unit_code"])
        codes = {unit, str(r["community_code"])} | {c for c, p in parent.items() if p == unit}
        hit = flipped[flipped["unit_code"].isin(codes)]
        out.append("; ".join(f"{sid} ({code})" for code, sid in zip(hit["unit_code"], hit["standard_id"],
                                                                      strict=True)))
    return out


def _curve(
    problem: CoverageProblem,
    req: PlanRequest,
    result: PlanResult,
    max_sites: int,
    time_limit_s: float,
    gap: float,
    share: float,
    total: float,
    before: float,
) -> pd.DataFrame:
    """Coverage vs number of sites: the plan re-solved for 1..N sites (N = the plan's sites, at most
    ``max_sites``), each with its bound; a k the rules cannot be met with reads "infeasible"."""
    n = min(req.sites if req.sites is not None else len(result.chosen), max_sites)
    rows = []
    per = max(1.0, time_limit_s / max(n, 1))
    for k in range(1, n + 1):
        r = (
            result
            if k == req.sites
            else solve_max_coverage(
                problem,
                k,
                budget=req.budget,
                time_limit_s=per,
                mip_rel_gap=gap,
                served_by_existing=result.served_by_existing,
            )
        )
        ok = r.status == "ok"
        rows.append(
            {
                "sites": k,
                "status": r.status,
                "newly_covered_persons": round(r.new_covered_weight / share, 3) if ok else np.nan,
                "bound_persons": round(r.bound / share, 3) if ok and np.isfinite(r.bound) else np.nan,
                "covered_share": round((before + r.new_covered_weight / share) / total, 6)
                if ok and total > 0
                else np.nan,
                "optimal": bool(r.optimal) if ok else False,
                "method": r.method,
            }
        )
    return pd.DataFrame(rows)
