"""``make check``: the same validation as ``make run``, before a run, reported in full.

:func:`check_region` reads every facility layer into a per-layer report (never stopping at the first
bad layer, so all of them are listed), then runs :func:`coverage.pipeline.analyse`, the very code a
run starts with: units, networks, facility layers, population, snapping and the travel-time passes.
Whatever would stop a run stops the check with the same message; what a run would accept, the check
accepts. The inputs only plans and scenarios read (candidate layers, scenario layers, removed ids,
target-year population) are checked with the same readers ``make plan`` and ``make scenario`` use.
Nothing is written but the OSM file's tile cache (``build/.cache/osm``, :mod:`coverage.osm_ways`),
which the run then re-uses.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from coverage.config import Config
from coverage.errors import PlanningError, user_error_types
from coverage.layers import LayerReport, check_layers

if TYPE_CHECKING:
    from coverage.pipeline import Analysis

log = logging.getLogger(__name__)

__all__ = ["RegionCheck", "check_region"]


@dataclass
class RegionCheck:
    """The layer report, what the analysis found, and every error (empty = ``make run`` accepts)."""

    layers: LayerReport
    errors: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)  # networks, population, services

    @property
    def ok(self) -> bool:
        return self.layers.ok and not self.errors

    def text(self) -> str:
        parts = [self.layers.text(), *self.lines]
        parts += [f"ERROR: {e}" for e in self.errors]
        parts.append("Check: OK (make run accepts these inputs)" if self.ok
                     else "Check: PROBLEMS FOUND (make run would stop; fix the errors above)")
        return "\n".join(parts)


def check_region(cfg: Config, *, build_root: Path | None = None) -> RegionCheck:
    """Validate every input of ``cfg`` exactly as a run would (see the module docstring); ``build_root``:
    where the OSM tile cache lives (``pipeline.analyse``; None: no cache)."""
    from coverage import access
    from coverage.confidence import LOW_ZH
    from coverage.pipeline import analyse, data_confidence

    res = RegionCheck(layers=check_layers(cfg))
    if not res.layers.ok:
        return res  # the run would stop at the same layer errors
    try:
        a = analyse(cfg, build_root=build_root)
    except user_error_types() as exc:
        res.errors.append(str(exc))
        return res
    for mode, net in a.networks.items():
        dropped = int(net.report.get("n_fragments_dropped", 0))
        res.lines.append(f"[network {mode}] {net.n_nodes:,} nodes, {net.n_edges:,} directed edges, "
                         f"{int(net.report.get('n_components_kept', 1))} component(s)"
                         + (f"; {dropped} small fragments dropped" if dropped else "") + f" ({net.source})")
    cells = a.cells_in.cells
    res.lines.append(f"[population] {cells['pop_total'].sum():,.0f} people in {cells['cell_id'].nunique():,} "
                     f"cells ({a.cells_in.method}; ages from {a.cells_in.age_source})")
    res.lines.append(f"[population] {a.cells_in.outside.text()}")
    reported = res.layers.text()  # check_layers already lists the units' shift warnings
    res.lines += [f"WARNING: {w}" for w in a.warnings if w not in reported]
    counts = access.usable_counts(cfg, a.facilities, a.fac_snaps)
    for sid, (n_kind, n_ok) in counts.items():
        s = cfg.services[sid]
        if sid in a.not_assessed:
            res.lines.append(f"[service {sid}] {s.label_zh}: NOT ASSESSED (未评估): {a.not_assessed[sid]}")
            continue
        note = "" if n_kind else " (no facility of its kinds in the layers)"
        res.lines.append(f"[service {sid}] {s.label_zh}: {n_kind} facilities of its kinds, {n_ok} within "
                         f"{cfg.snapping.facility_max_snap_m:g} m of the {s.mode} network{note}")
    conf = data_confidence(a)
    for code, why in conf.loc[conf["low_confidence"].astype(bool), "confidence_reasons"].items():
        res.lines.append(f"WARNING: unit {code}: {LOW_ZH} (low confidence): {why}")
    _check_plans_and_scenarios(cfg, a, res)
    return res


def _check_plans_and_scenarios(cfg: Config, a: Analysis, res: RegionCheck) -> None:
    """The inputs only ``make plan`` / ``make scenario`` read, with the same readers: candidate layers,
    the menu, scenario layers, removed ids and target-year population."""
    import dataclasses

    from coverage.candidates import read_candidates
    from coverage.layers import read_facilities
    from coverage.scenario import scenario_population

    unit = cfg.planning.cost_unit
    for m in cfg.planning.menu:
        res.lines.append(f"[planning menu] {m.service}: {m.label or m.kind} ({m.kind}), capacity "
                         f"{m.capacity:g}, cost {m.cost:g} {unit}")
    if cfg.planning.candidates:
        try:
            cands = read_candidates(cfg, a.study, roads=a.roads.geometry)
        except user_error_types() as exc:
            res.errors.append(str(exc))
        else:
            for r in cands.reports:
                top = sorted(r.rejected.items(), key=lambda t: -t[1])[:3]
                why = "; ".join(f"{k} ({n})" for k, n in top)
                res.lines.append(f"[planning candidates] {r.name} ({r.source_file}): {r.rows_read} rows, "
                                 f"{r.accepted} used, {sum(r.rejected.values())} rejected"
                                 + (f": {why}" if why else ""))
    for name, sc in cfg.scenarios.items():
        try:
            if sc.add:
                read_facilities(dataclasses.replace(cfg, facilities=sc.add),
                                config_key=f"scenarios.{name}.add",
                                study_area_wgs84=a.study.outline_wgs84, metric_crs=a.study.metric_crs,
                                roads=a.roads.geometry)
            unknown = sorted(set(sc.remove) - set(a.facilities["fac_id"].astype(str)))
            if unknown:
                raise PlanningError(f"scenarios.{name}.remove: no facility with fac_id {', '.join(unknown)}")
            _cells, pop = scenario_population(a, sc)
        except user_error_types() as exc:
            res.errors.append(f"scenario {name}: {exc}")
            continue
        plans = ", ".join(sc.plans) or "none"
        res.lines.append(f"[scenario {name}] +{len(sc.add)} layer(s), +plans of {plans}"
                         f", -{len(sc.remove)} facilities; population {pop['pop_total_before']:,.0f} -> "
                         f"{pop['pop_total_after']:,.0f}")
