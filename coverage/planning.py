"""Site planning, the solver core: maximal coverage on sparse coverage pairs (a start on issue 12).

The problem: choose at most ``p`` candidate sites so that the demand within reach of a chosen site (or
of an existing facility, which is kept) is largest. Coverage is given as SPARSE pairs (demand group x
candidate within the service's threshold, from the multi-source engine:
:func:`coverage.traveltime.coverage_matrix`), never a dense matrix. Following the measured design notes
(``../shared/PLANNING.md``):

1. demand already covered by existing facilities is left out (it cannot gain);
2. demand rows with identical candidate sets are merged (their weights summed): the model shrinks a lot;
3. a lazy greedy gives a good solution at once (within a fraction of a percent on street grids);
4. the exact model is a MILP solved by HiGHS (``scipy.optimize.milp``): binary ``x_j`` per candidate,
   ``0 <= y_i <= 1`` per merged demand group, ``max sum w_i y_i`` s.t. ``y_i <= sum_j a_ij x_j`` and
   ``sum_j x_j <= p``; at a time limit the best solution and the proven bound are reported (the gap is
   on the demand the NEW sites cover, said so).

Capacities, budgets, per-unit rules, candidates and outputs are not here yet (issue 12).
"""

from __future__ import annotations

import heapq
import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp

__all__ = ["CoverageProblem", "PlanResult", "greedy_max_coverage", "merge_identical_rows",
           "solve_max_coverage"]


@dataclass(frozen=True)
class CoverageProblem:
    """``pairs``: sparse (demand rows x candidates), nonzero = within reach; ``weight``: demand per row
    (persons); ``covered``: rows already covered by existing facilities (they cannot gain)."""

    pairs: sp.csr_matrix
    weight: np.ndarray
    covered: np.ndarray

    def __post_init__(self) -> None:
        n = self.pairs.shape[0]
        if len(self.weight) != n or len(self.covered) != n:
            raise ValueError(f"CoverageProblem: {n} demand rows but {len(self.weight)} weights and "
                             f"{len(self.covered)} covered flags")
        if (np.asarray(self.weight) < 0).any():
            raise ValueError("CoverageProblem: negative demand weights")


@dataclass(frozen=True)
class PlanResult:
    chosen: np.ndarray  # candidate indices, in the order the solver reports them
    new_covered_weight: float  # demand newly covered by the chosen sites
    bound: float  # proven upper bound on the newly covered demand (== value when optimal)
    optimal: bool
    method: str  # "greedy", "milp"
    solve_s: float

    @property
    def gap(self) -> float:
        """Relative gap on the NEWLY covered demand: (bound - value) / bound (0 when optimal)."""
        return 0.0 if self.bound <= 0 else max(0.0, (self.bound - self.new_covered_weight) / self.bound)


def merge_identical_rows(pairs: sp.csr_matrix, weight: np.ndarray) -> tuple[sp.csr_matrix, np.ndarray]:
    """Rows with the same candidate set merged into one (weights summed); empty rows dropped."""
    a = sp.csr_matrix(pairs, dtype=bool)
    a.sum_duplicates()
    a.sort_indices()
    keys: dict[bytes, int] = {}
    rows: list[np.ndarray] = []
    w: list[float] = []
    for i in range(a.shape[0]):
        idx = a.indices[a.indptr[i]:a.indptr[i + 1]]
        if not len(idx):
            continue
        k = idx.tobytes()
        j = keys.get(k)
        if j is None:
            keys[k] = len(rows)
            rows.append(idx)
            w.append(float(weight[i]))
        else:
            w[j] += float(weight[i])
    indptr = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int64)
    indices = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    merged = sp.csr_matrix((np.ones(len(indices), dtype=bool), indices, indptr),
                           shape=(len(rows), a.shape[1]))
    return merged, np.asarray(w, dtype=float)


def _open_rows(problem: CoverageProblem) -> tuple[sp.csr_matrix, np.ndarray]:
    keep = ~np.asarray(problem.covered, dtype=bool)
    return merge_identical_rows(sp.csr_matrix(problem.pairs)[keep], np.asarray(problem.weight, float)[keep])


def greedy_max_coverage(problem: CoverageProblem, p: int) -> PlanResult:
    """Lazy greedy: repeatedly the candidate adding the most uncovered demand (ties: lowest index)."""
    t0 = time.perf_counter()
    a, w = _open_rows(problem)
    cols = sp.csc_matrix(a)
    gain = np.asarray(cols.T @ w, dtype=float).ravel()
    heap = [(-g, j) for j, g in enumerate(gain) if g > 0]
    heapq.heapify(heap)
    done = np.zeros(a.shape[0], dtype=bool)
    chosen: list[int] = []
    total = 0.0
    while heap and len(chosen) < p:
        neg, j = heapq.heappop(heap)
        rows = cols.indices[cols.indptr[j]:cols.indptr[j + 1]]
        g = float(w[rows][~done[rows]].sum())
        if g <= 0:
            continue
        if heap and g < -heap[0][0] - 1e-12:  # stale: push back with its true gain
            heapq.heappush(heap, (-g, j))
            continue
        chosen.append(j)
        total += g
        done[rows] = True
    return PlanResult(np.asarray(chosen, dtype=np.int64), total, bound=float("inf"), optimal=False,
                      method="greedy", solve_s=time.perf_counter() - t0)


def solve_max_coverage(problem: CoverageProblem, p: int, *, time_limit_s: float = 60.0,
                       mip_rel_gap: float = 0.0) -> PlanResult:
    """The exact model on HiGHS (see the module docstring); at ``time_limit_s`` the best solution found
    and the proven bound. The greedy value is a floor: the better of the two is returned."""
    t0 = time.perf_counter()
    greedy = greedy_max_coverage(problem, p)
    a, w = _open_rows(problem)
    m, n = a.shape
    if m == 0 or n == 0 or p <= 0:
        return PlanResult(np.zeros(0, dtype=np.int64), 0.0, 0.0, True, "milp", time.perf_counter() - t0)
    # variables: x (n candidates, binary), then y (m groups, continuous in [0, 1])
    c = np.concatenate([np.zeros(n), -w])
    # y_i - sum_j a_ij x_j <= 0
    cover = sp.hstack([-a.astype(float), sp.identity(m, format="csr")], format="csr")
    count = sp.csr_matrix(np.concatenate([np.ones(n), np.zeros(m)])[None, :])
    res = milp(c, constraints=[LinearConstraint(cover, -np.inf, 0.0), LinearConstraint(count, 0, p)],
               integrality=np.concatenate([np.ones(n), np.zeros(m)]), bounds=Bounds(0, 1),
               options={"time_limit": time_limit_s, "mip_rel_gap": mip_rel_gap, "disp": False})
    if res.x is None:
        return PlanResult(greedy.chosen, greedy.new_covered_weight, float(w.sum()), False, "greedy",
                          time.perf_counter() - t0)
    chosen = np.flatnonzero(res.x[:n] > 0.5)
    covered_rows = np.asarray(a[:, chosen].sum(axis=1)).ravel() > 0
    value = float(w[covered_rows].sum())
    bound = -float(res.mip_dual_bound) if getattr(res, "mip_dual_bound", None) is not None else value
    optimal = res.status == 0 and mip_rel_gap == 0.0
    if greedy.new_covered_weight > value:  # a time-limited MIP can trail the greedy: keep the better
        return PlanResult(greedy.chosen, greedy.new_covered_weight, max(bound, greedy.new_covered_weight),
                          False, "greedy", time.perf_counter() - t0)
    return PlanResult(chosen, value, max(bound, value), optimal, "milp", time.perf_counter() - t0)
