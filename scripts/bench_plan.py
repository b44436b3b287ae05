"""Benchmark of the site-planning solver (issue 12) on a generated street network.

Run: ``python scripts/bench_plan.py [--quick] [--no-spopt]`` (``make bench-plan``). One process:

The instance: a perturbed street grid (``scripts/bench.py``'s ``grid_network``: 300 x 300 nodes, 100 m
spacing jittered by +-25 %, so edges of about 50-150 m, a few streets removed), every street walked at
1 m/s; 100,000 demand cells at random positions with a skewed population (persons aged 60+ per cell:
a smooth density of 12 "towns", Gaussian bumps 1-4 km wide and 1-8x the background, times lognormal
noise; about 4.9 persons per cell on average, up to a few hundred); 5,000 candidate sites and 200
existing facilities at random positions; coverage = the pairs within 900 s taken SPARSE
from the multi-source engine (:func:`coverage.traveltime.coverage_matrix`), never a dense matrix;
p = 50 new sites.

(a) Uncapacitated, existing facilities kept (cells they reach are served): the lazy greedy, then the
    exact MILP (:func:`coverage.planning.solve_max_coverage`, warm-started by the greedy).
(b) Capacitated: capacities of 200-2,000 persons per site (candidates and existing). The existing
    facilities' capacity is consumed first by a documented rule, NEAREST-FIRST: all (existing facility,
    cell) pairs within reach, shortest travel time first, each moves min(the cell's unserved persons,
    the facility's capacity left) onto that facility. What is left of each cell (its residual weight)
    is the demand the new sites compete for. The MILP stops at a proven relative gap of 1 % or at 60 s;
    the demand the existing facilities serve is passed as ``served_by_existing``, so HiGHS's gap (and the
    stop at 1 %) is on TOTAL covered demand (served by existing + new sites):
    ``(bound_new - value_new) / (existing_served + bound_new)``; the gap on what the new sites add alone
    (``(bound_new - value_new) / bound_new``) is printed too, and is larger.
    (b') The same with every cell's population halved (a STRESS case, not a target): capacities then
    exceed the demand within reach more often, sites compete for the same people, and the LP bound is
    weaker (PLANNING.md: the capacitated problem gets harder as sites and demand become comparable).
(c) Peak memory of each step: the process's resident-set high-water mark (Linux ``VmHWM``) reset before
    the step through ``/proc/self/clear_refs`` and read after it, printed with its increase over the RSS
    at the start of the step (the instance is already in memory then). Where that reset is unavailable,
    the process's lifetime ``ru_maxrss`` is printed instead, and said so.
(d) Side by side in the same run: pysal/spopt's ``MCLP.from_cost_matrix`` (PuLP; HiGHS when PuLP finds
    it, else CBC), uncapacitated, on the 20,000 cells and the 1,000 candidates nearest the grid's origin
    corner in the max(x, y) sense (a square window, so the coverage is as dense as in the full instance;
    p = 10, no existing facility), its dense cost matrix built from the same sparse pairs (within reach -> the
    travel time, else a large value; ``service_radius`` = 900 s); timed end to end (dense matrix, model,
    solve) against ours on the same sparse coverage: the objective values must agree, and
    ``RATIO spopt_mclp_20k_1k <spopt s / ours s>`` is printed.

Targets (issue 12): capacitated <= 1 % proven gap on total covered demand in under 60 s on 2 cores;
uncapacitated optimal. ``--quick`` runs a small instance (a smoke test).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import scipy.sparse as sp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

# the repo on sys.path first (a script run from anywhere), so these imports must follow it
from bench import grid_network  # noqa: E402

from coverage.graph import Network  # noqa: E402
from coverage.planning import (  # noqa: E402
    CoverageProblem,
    PlanResult,
    greedy_max_coverage,
    solve_max_coverage,
)
from coverage.traveltime import coverage_matrix, snap_points  # noqa: E402

SPEED_MPS = 1.0
LIMIT_S = 900.0  # 15 minutes at 1 m/s
SPACING_M = 100.0
CAPACITY_PERSONS = (200, 2000)
CAP_GAP = 0.01  # the capacitated model's requested proven gap (on total covered demand)
CAP_TIME_LIMIT_S = 60.0
UNCAP_TIME_LIMIT_S = 600.0  # the uncapacitated model runs to optimality (this is only a safety net)
NOT_COVERED_S = 1e9  # spopt's dense matrix: the cost of a pair beyond reach

T = TypeVar("T")
_PEAKS_MB: list[float] = []  # every step's peak RSS, for the run's PEAK_MEMORY_MB


@dataclasses.dataclass(frozen=True)
class Sizes:
    """One benchmark configuration."""

    n_side: int
    n_cells: int
    n_cand: int
    n_exist: int
    p: int
    spopt_cells: int
    spopt_cand: int
    spopt_p: int
    cap_time_limit_s: float = CAP_TIME_LIMIT_S


FULL = Sizes(n_side=300, n_cells=100_000, n_cand=5_000, n_exist=200, p=50, spopt_cells=20_000,
             spopt_cand=1_000, spopt_p=10)
QUICK = Sizes(n_side=50, n_cells=3_000, n_cand=300, n_exist=20, p=10, spopt_cells=1_000, spopt_cand=100,
              spopt_p=5, cap_time_limit_s=2.0)  # a smoke run: its capacitated target is not the issue's


@dataclasses.dataclass(frozen=True)
class Instance:
    """The generated instance: cells x candidates and cells x existing travel times (s, within the
    limit only), persons per cell, capacities (persons) of candidates and existing facilities."""

    cand_time_s: sp.csr_matrix
    exist_time_s: sp.csr_matrix
    weight: np.ndarray
    cand_capacity: np.ndarray
    exist_capacity: np.ndarray
    cell_xy: np.ndarray  # metres, for (d)'s window
    cand_xy: np.ndarray


@dataclasses.dataclass(frozen=True)
class Measured:
    """Wall time (s) and memory (MB) of one step."""

    seconds: float
    peak_rss_mb: float
    delta_mb: float
    how: str


# --------------------------------------------------------------------------------------------------
# Memory and time
# --------------------------------------------------------------------------------------------------


def _status_kb(key: str) -> float:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(key + ":"):
                return float(line.split()[1])
    raise KeyError(key)


def _reset_peak_rss() -> bool:
    """Reset the process's RSS high-water mark (Linux >= 4.0); False when that is unavailable."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
        _status_kb("VmHWM")
        return True
    except OSError:
        return False
    except KeyError:
        return False


def measure(fn: Callable[[], T]) -> tuple[T, Measured]:
    """Run ``fn``; its wall time and the peak RSS during it (see the module docstring, (c))."""
    if _reset_peak_rss():
        rss0_mb = _status_kb("VmRSS") / 1024
        t0 = time.perf_counter()
        out = fn()
        sec = time.perf_counter() - t0
        peak_mb = _status_kb("VmHWM") / 1024
        _PEAKS_MB.append(peak_mb)
        return out, Measured(sec, peak_mb, peak_mb - rss0_mb, "VmHWM reset before the step")
    t0 = time.perf_counter()
    out = fn()
    sec = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out, Measured(sec, peak_mb, float("nan"), "process lifetime ru_maxrss (no per-step reset)")


def _mem(m: Measured) -> str:
    return f"peak RSS {m.peak_rss_mb:,.0f} MB (+{m.delta_mb:,.0f} MB during the step; {m.how})"


# --------------------------------------------------------------------------------------------------
# The instance
# --------------------------------------------------------------------------------------------------


def street_grid(n_side: int, *, seed: int) -> Network:
    """``grid_network`` with 100 m spacing (edges about 50-150 m), every street walked at 1 m/s."""
    net = grid_network(n_side, spacing_m=SPACING_M, seed=seed)
    return dataclasses.replace(net, edge_time_s=net.edge_length_m / SPEED_MPS)


def build_instance(net: Network, sizes: Sizes, *, seed: int) -> Instance:
    """Random cells, candidates and existing facilities on ``net``; coverage within ``LIMIT_S``."""
    rng = np.random.default_rng(seed)
    lo = np.array([net.node_x.min(), net.node_y.min()])
    hi = np.array([net.node_x.max(), net.node_y.max()])

    cell_xy, cand_xy, exist_xy = (rng.uniform(lo, hi, (n, 2)) for n in (sizes.n_cells, sizes.n_cand,
                                                                        sizes.n_exist))
    cells, cand, exist = (snap_points(net, xy, max_snap_m=500.0) for xy in (cell_xy, cand_xy, exist_xy))
    weight = population(cell_xy, lo, hi, rng)
    cand_capacity = rng.integers(*CAPACITY_PERSONS, sizes.n_cand, endpoint=True).astype(float)
    exist_capacity = rng.integers(*CAPACITY_PERSONS, sizes.n_exist, endpoint=True).astype(float)
    cand_t = coverage_matrix(net, cand, cells, access_speed_mps=SPEED_MPS, limit_s=LIMIT_S)
    exist_t = coverage_matrix(net, exist, cells, access_speed_mps=SPEED_MPS, limit_s=LIMIT_S)
    return Instance(sp.csr_matrix(cand_t.T), sp.csr_matrix(exist_t.T), weight, cand_capacity, exist_capacity,
                    cell_xy, cand_xy)


def population(cell_xy: np.ndarray, lo: np.ndarray, hi: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Persons per cell (0.1 resolution): 12 towns (Gaussian bumps, sd 1-4 km, 1-8x a 0.2 background)
    times lognormal noise, scaled to about 4.9 persons per cell on average."""
    n_towns = 12
    centre = rng.uniform(lo, hi, (n_towns, 2))
    sd_m = rng.uniform(1000.0, 4000.0, n_towns)
    amp = rng.uniform(1.0, 8.0, n_towns)
    density = np.full(len(cell_xy), 0.2)
    for c, s, a in zip(centre, sd_m, amp, strict=True):
        density += a * np.exp(-((cell_xy - c) ** 2).sum(axis=1) / (2 * s * s))
    noise = rng.lognormal(2.0, 1.0, len(cell_xy))
    return np.round(0.4 * noise * density / density.mean(), 1)


def existing_nearest_first(exist_time_s: sp.csr_matrix, weight: np.ndarray, capacity: np.ndarray
                           ) -> np.ndarray:
    """Persons of each cell served by the existing facilities, capacity consumed NEAREST-FIRST: all
    (cell, facility) pairs within reach in increasing travel time (ties: cell, then facility index),
    each serving min(the cell's persons left, the facility's capacity left)."""
    coo = sp.coo_matrix(exist_time_s)
    order = np.lexsort((coo.col, coo.row, coo.data))
    left_cell = np.asarray(weight, dtype=float).copy()
    left_cap = np.asarray(capacity, dtype=float).copy()
    for i, f in zip(coo.row[order].tolist(), coo.col[order].tolist(), strict=True):
        t = min(left_cell[i], left_cap[f])
        if t > 0:
            left_cell[i] -= t
            left_cap[f] -= t
    return np.asarray(weight, dtype=float) - left_cell


# --------------------------------------------------------------------------------------------------
# The steps
# --------------------------------------------------------------------------------------------------


def _gap_total(res: PlanResult, existing_persons: float) -> float:
    """Proven relative gap on total covered demand (existing + new)."""
    bound_total = existing_persons + res.bound
    return max(0.0, (bound_total - existing_persons - res.new_covered_weight) / bound_total)


def run_uncapacitated(inst: Instance, p: int) -> dict[str, Any]:
    """(a): existing facilities serve every cell they reach; greedy, then the exact MILP."""
    covered = inst.exist_time_s.getnnz(axis=1) > 0
    existing = float(inst.weight[covered].sum())
    prob = CoverageProblem(sp.csr_matrix(inst.cand_time_s, dtype=bool), inst.weight, covered)
    greedy, m_g = measure(lambda: greedy_max_coverage(prob, p))
    exact, m_x = measure(lambda: solve_max_coverage(prob, p, time_limit_s=UNCAP_TIME_LIMIT_S))
    print(f"\n== (a) uncapacitated, p = {p}: {int(covered.sum()):,} cells ({existing:,.0f} persons) already "
          f"served by the existing facilities; {exact.merged_rows:,} demand rows after merging identical "
          f"candidate sets")
    print(f"  greedy      new {greedy.new_covered_weight:13,.1f} persons  {m_g.seconds:7.2f} s  {_mem(m_g)}")
    print(f"  MILP        new {exact.new_covered_weight:13,.1f} persons  {m_x.seconds:7.2f} s  {_mem(m_x)}")
    print(f"              method {exact.method!r}, optimal {exact.optimal}, bound {exact.bound:,.1f}, "
          f"gap {exact.gap:.4%} (on the new sites' demand), "
          f"greedy below the optimum by {1 - greedy.new_covered_weight / exact.new_covered_weight:.3%}")
    print(f"  total covered (existing + new): {existing + exact.new_covered_weight:,.1f} of "
          f"{inst.weight.sum():,.1f} persons")
    return {"optimal": exact.optimal, "seconds": m_x.seconds, "greedy_s": m_g.seconds,
            "value": exact.new_covered_weight, "greedy": greedy.new_covered_weight,
            "peak_mb": m_x.peak_rss_mb}


def run_capacitated(inst: Instance, p: int, *, label: str = "(b)", time_limit_s: float = CAP_TIME_LIMIT_S
                    ) -> dict[str, Any]:
    """(b): existing capacity consumed nearest-first, then the new sites on the residual demand."""
    served_existing = existing_nearest_first(inst.exist_time_s, inst.weight, inst.exist_capacity)
    residual = inst.weight - served_existing
    existing = float(served_existing.sum())
    covered = residual <= 1e-9
    prob = CoverageProblem(sp.csr_matrix(inst.cand_time_s, dtype=bool), np.where(covered, 0.0, residual),
                           covered, capacity=inst.cand_capacity)
    greedy, m_g = measure(lambda: greedy_max_coverage(prob, p))
    res, m_x = measure(lambda: solve_max_coverage(prob, p, time_limit_s=time_limit_s,
                                                  mip_rel_gap=CAP_GAP, served_by_existing=existing))
    gap_total = _gap_total(res, existing)
    assert abs(gap_total - res.gap) <= 1e-12, (gap_total, res.gap)  # PlanResult.gap is on the total here
    lo_cap, hi_cap = CAPACITY_PERSONS
    print(f"\n== {label} capacitated ({lo_cap}-{hi_cap} persons per site), p = {p}: "
          f"the existing facilities serve {existing:,.0f} persons "
          f"(capacity {inst.exist_capacity.sum():,.0f}, "
          f"consumed nearest-first); {res.merged_rows:,} demand rows after merging")
    print(f"  greedy      new {greedy.new_covered_weight:13,.1f} persons  {m_g.seconds:7.2f} s  {_mem(m_g)}")
    print(f"  MILP        new {res.new_covered_weight:13,.1f} persons  {m_x.seconds:7.2f} s  {_mem(m_x)}")
    print(f"              method {res.method!r}, bound on new {res.bound:,.1f}")
    print(f"  proven gap on TOTAL covered demand (existing + new): {gap_total:.3%}; on the demand the new "
          f"sites add alone: {res.gap_new:.3%}")
    ok = gap_total <= CAP_GAP + 1e-9 and m_x.seconds < time_limit_s
    tag = "TARGET capacitated" if label == "(b)" else "STRESS capacitated_half_population"
    print(f"{tag}_gap_total_le_1pct_under_{time_limit_s:g}s {'MET' if ok else 'MISSED'}  "
          f"(gap {gap_total:.3%} on total, {res.gap_new:.3%} on new alone, in {m_x.seconds:.1f} s)")
    return {"gap_total": gap_total, "gap_new": res.gap_new, "seconds": m_x.seconds,
            "value": res.new_covered_weight, "greedy": greedy.new_covered_weight,
            "peak_mb": m_x.peak_rss_mb, "met": ok}


def _pulp_solver() -> tuple[Any, str]:
    import pulp

    available = pulp.listSolvers(onlyAvailable=True)
    if "HiGHS" in available:
        return pulp.HiGHS(msg=False), "HiGHS via PuLP"
    return pulp.PULP_CBC_CMD(msg=False), "CBC via PuLP"


def run_spopt(inst: Instance, sizes: Sizes) -> dict[str, Any]:
    """(d): spopt's MCLP against ours on the same coverage (a sub-instance, no existing facility)."""
    import warnings

    import pulp
    from spopt.locate import MCLP

    cells = np.argsort(inst.cell_xy.max(axis=1), kind="stable")[: sizes.spopt_cells]
    cands = np.argsort(inst.cand_xy.max(axis=1), kind="stable")[: sizes.spopt_cand]
    times = inst.cand_time_s[cells][:, cands].tocsr()
    weight = inst.weight[cells]
    p = sizes.spopt_p
    prob = CoverageProblem(sp.csr_matrix(times, dtype=bool), weight, np.zeros(len(weight), dtype=bool))
    ours, m_o = measure(lambda: solve_max_coverage(prob, p, time_limit_s=UNCAP_TIME_LIMIT_S))
    solver, solver_name = _pulp_solver()

    def spopt_end_to_end() -> float:
        dense = np.full(times.shape, NOT_COVERED_S)
        r, c = times.nonzero()
        dense[r, c] = np.asarray(times[r, c]).ravel()
        with warnings.catch_warnings():  # PuLP 3.x announces its 4.0 API on every variable
            warnings.simplefilter("ignore", DeprecationWarning)
            mclp = MCLP.from_cost_matrix(dense, weight, service_radius=LIMIT_S, p_facilities=p)
            mclp = mclp.solve(solver, results=False)
        return float(pulp.value(mclp.problem.objective))

    theirs, m_s = measure(spopt_end_to_end)
    same = abs(theirs - ours.new_covered_weight) <= 1e-6 * max(1.0, abs(theirs))
    print(f"\n== (d) spopt MCLP vs ours, {times.shape[0]:,} cells x {times.shape[1]:,} candidates "
          f"({times.nnz:,} pairs within {LIMIT_S:.0f} s), p = {p}, uncapacitated")
    print(f"  spopt ({solver_name}; dense matrix + model + solve) {theirs:13,.1f} persons "
          f"{m_s.seconds:8.2f} s  {_mem(m_s)}")
    print(f"  ours (sparse, solve_max_coverage)                  {ours.new_covered_weight:13,.1f} persons "
          f"{m_o.seconds:8.2f} s  {_mem(m_o)}  optimal {ours.optimal}")
    print(f"  same objective value: {same}")
    if not same:
        raise SystemExit(f"spopt's MCLP optimum {theirs} differs from ours {ours.new_covered_weight}")
    ratio = m_s.seconds / m_o.seconds
    print(f"RATIO spopt_mclp_{sizes.spopt_cells // 1000}k_{sizes.spopt_cand / 1000:g}k {ratio:.1f}   "
          f"(spopt {m_s.seconds:.1f} s / ours {m_o.seconds:.2f} s, same optimum)")
    return {"ratio": ratio, "spopt_s": m_s.seconds, "ours_s": m_o.seconds, "value": theirs}


def main(argv: list[str] | None = None) -> int:
    """Build the instance, run (a), (b) and (d), print the figures; 0 when every check passed."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small instance (a smoke run)")
    ap.add_argument("--no-spopt", action="store_true", help="skip (d), the side-by-side with spopt")
    ap.add_argument("--seed", type=int, default=12)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    sizes = QUICK if args.quick else FULL
    t0 = time.perf_counter()
    net, m_net = measure(lambda: street_grid(sizes.n_side, seed=args.seed))
    inst, m_cov = measure(lambda: build_instance(net, sizes, seed=args.seed))
    lengths = net.edge_length_m
    print(f"== instance: grid {sizes.n_side}x{sizes.n_side} ({net.n_nodes:,} nodes, {net.n_edges:,} directed "
          f"edges, {np.percentile(lengths, 1):.0f}-{np.percentile(lengths, 99):.0f} m (1st-99th pct), "
          f"{SPEED_MPS:g} m/s) in {m_net.seconds:.1f} s")
    print(f"   {sizes.n_cells:,} cells ({inst.weight.sum():,.0f} persons, max {inst.weight.max():,.0f} per "
          f"cell), {sizes.n_cand:,} candidates, {sizes.n_exist} existing, limit {LIMIT_S:.0f} s")
    print(f"   coverage (sparse, multi-source engine): {inst.cand_time_s.nnz:,} cell-candidate pairs, "
          f"{inst.exist_time_s.nnz:,} cell-existing pairs, in {m_cov.seconds:.1f} s  {_mem(m_cov)}")
    uncap = run_uncapacitated(inst, sizes.p)
    cap = run_capacitated(inst, sizes.p, time_limit_s=sizes.cap_time_limit_s)
    if not args.quick:
        half = dataclasses.replace(inst, weight=np.round(inst.weight / 2, 1))
        run_capacitated(half, sizes.p, label="(b') STRESS, every cell's population halved:")
    if not args.no_spopt:
        run_spopt(inst, sizes)
    print(f"\nTARGET uncapacitated_optimal {'MET' if uncap['optimal'] else 'MISSED'}  "
          f"({uncap['seconds']:.1f} s)")
    peak_mb = max([resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, *_PEAKS_MB])
    print(f"PEAK_MEMORY_MB {peak_mb:.0f}   (the largest step peak)\nTOTAL_S {time.perf_counter() - t0:.1f}")
    return 0 if uncap["optimal"] and cap["met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
