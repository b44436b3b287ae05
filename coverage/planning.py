"""Site planning, the solver: maximal coverage on sparse coverage pairs, capacitated or not, with a
site count or a budget and per-unit rules (issue 12).

The problem: choose OPTIONS (a candidate site x a facility type of the region's menu, at most one type
per site) so that the demand served is largest. Coverage is given as SPARSE pairs (demand row x option
within the service's threshold, from the multi-source engine: :func:`coverage.traveltime.coverage_matrix`),
never a dense matrix. Following the measured design notes (``../shared/PLANNING.md``):

1. demand already served by existing facilities is left out, or enters with its residual weight
   (:mod:`coverage.plan` consumes existing capacity first);
2. demand rows with identical option sets are merged (their weights summed): the model shrinks a lot,
   and nothing is lost (an assignment from a merged row splits back freely);
3. a lazy greedy gives a good, feasible solution at once (rules first, then the best gain, per cost
   under a budget) and is the MIP's warm start;
4. the exact model is a MILP on HiGHS (``highspy``, which takes the warm start):

   - uncapacitated: binary ``x_o``, ``0 <= y_i <= 1``; ``max sum w_i y_i`` s.t. ``y_i <= sum_o a_io x_o``;
   - capacitated: ``z_io >= 0`` per pair; ``max sum z_io`` s.t. ``sum_o z_io <= w_i`` (a row is served
     at most once) and ``sum_i z_io <= cap_o x_o`` (only open sites, only up to capacity);
   - both: ``sum_{o at site s} x_o <= 1``; ``sum x_o <= p`` and/or ``sum cost_o x_o <= budget``; per-unit
     rules ``sum_{o in R} x_o >= k`` or ``sum_{o in R} cap_o x_o >= c``.

   The interior-point root suits the uncapacitated model, simplex the capacitated one (PLANNING.md). At a
   time limit the best solution found and HiGHS's proven bound are reported: the gap is on the demand
   the NEW sites serve (the objective), said so by :attr:`PlanResult.gap_basis`.
"""

from __future__ import annotations

import dataclasses
import functools
import heapq
import os
import sys
import time
from dataclasses import dataclass, field

import highspy
import numpy as np
import scipy.sparse as sp

__all__ = [
    "CoverageProblem",
    "PlanResult",
    "Rule",
    "assign_capacity",
    "greedy_max_coverage",
    "merge_identical_rows",
    "solve_max_coverage",
]

GAP_BASIS = "demand newly served by the new sites (the objective)"
GAP_BASIS_TOTAL = "total covered demand (served by the existing facilities + newly served by the new sites)"


@dataclass(frozen=True)
class Rule:
    """A per-unit requirement on the chosen options: at least ``min_sites`` of ``options``, or at least
    ``min_capacity`` of capacity among them. ``name`` says which unit and standard (for messages)."""

    name: str
    options: np.ndarray
    min_sites: int = 0
    min_capacity: float = 0.0


@dataclass(frozen=True)
class CoverageProblem:
    """``pairs``: sparse (demand rows x options), nonzero = within reach; ``weight``: demand per row
    (persons); ``covered``: rows already fully served by existing facilities (they cannot gain).
    ``capacity`` per option (None = uncapacitated: a site serves every row within reach); ``cost`` per
    option (None = 1 each); ``site`` per option (options sharing a site are exclusive; None = each its
    own site); ``rules``: per-unit requirements."""

    pairs: sp.csr_matrix
    weight: np.ndarray
    covered: np.ndarray
    capacity: np.ndarray | None = None
    cost: np.ndarray | None = None
    site: np.ndarray | None = None
    rules: tuple[Rule, ...] = ()

    def __post_init__(self) -> None:
        n_rows, n_opt = self.pairs.shape
        if len(self.weight) != n_rows or len(self.covered) != n_rows:
            raise ValueError(
                f"CoverageProblem: {n_rows} demand rows but {len(self.weight)} weights and "
                f"{len(self.covered)} covered flags"
            )
        if (np.asarray(self.weight) < 0).any():
            raise ValueError("CoverageProblem: negative demand weights")
        for name in ("capacity", "cost", "site"):
            v = getattr(self, name)
            if v is not None and len(v) != n_opt:
                raise ValueError(f"CoverageProblem: {n_opt} options but {len(v)} {name} values")
        if self.capacity is not None and not (np.asarray(self.capacity) >= 0).all():
            raise ValueError("CoverageProblem: capacities must be >= 0 (no NaN)")

    @property
    def n_options(self) -> int:
        return int(self.pairs.shape[1])

    @property
    def capacitated(self) -> bool:
        return self.capacity is not None

    @functools.cached_property
    def open_rows(self) -> tuple[sp.csr_matrix, np.ndarray]:
        """The rows that can gain (not ``covered``), identical option sets merged: made once, then shared
        by the greedy, the MILP and every solve of the coverage curve."""
        keep = ~np.asarray(self.covered, dtype=bool)
        return merge_identical_rows(sp.csr_matrix(self.pairs)[keep], np.asarray(self.weight, float)[keep])

    def costs(self) -> np.ndarray:
        return np.ones(self.n_options) if self.cost is None else np.asarray(self.cost, dtype=float)

    def sites(self) -> np.ndarray:
        return np.arange(self.n_options) if self.site is None else np.asarray(self.site, dtype=np.int64)


@dataclass(frozen=True)
class PlanResult:
    chosen: np.ndarray  # option indices, in the order of their marginal gain (largest first)
    new_covered_weight: float  # demand newly served by the chosen options (the objective)
    bound: float  # proven upper bound on the objective (== value when optimal; inf = none)
    optimal: bool
    method: str  # "greedy", "milp", "milp (time limit)", "milp (gap ...)"
    solve_s: float
    status: str = "ok"  # "ok", "infeasible"
    merged_rows: int = 0  # demand rows after merging identical option sets
    gap_basis: str = GAP_BASIS
    greedy_value: float = float("nan")
    notes: tuple[str, ...] = field(default=())
    served_by_existing: float = 0.0  # demand served outside the model (existing facilities), in weight units

    @property
    def gap(self) -> float:
        """Relative proven gap on :attr:`gap_basis`: (bound - value) / (bound + served_by_existing), i.e.
        on the objective when ``served_by_existing`` is 0, else on total covered demand (0 when optimal)."""
        if self.optimal or self.bound + self.served_by_existing <= 0:
            return 0.0
        if not np.isfinite(self.bound):
            return float("inf")
        return max(0.0, (self.bound - self.new_covered_weight) / (self.bound + self.served_by_existing))

    @property
    def gap_new(self) -> float:
        """Relative proven gap on the objective alone (what the new sites add): (bound - value) / bound."""
        if self.optimal or self.bound <= 0:
            return 0.0
        if not np.isfinite(self.bound):
            return float("inf")
        return max(0.0, (self.bound - self.new_covered_weight) / self.bound)


def merge_identical_rows(pairs: sp.csr_matrix, weight: np.ndarray) -> tuple[sp.csr_matrix, np.ndarray]:
    """Rows with the same option set merged into one (weights summed); empty rows dropped."""
    a = sp.csr_matrix(pairs, dtype=bool)
    a.sum_duplicates()
    a.sort_indices()
    keys: dict[bytes, int] = {}
    rows: list[np.ndarray] = []
    w: list[float] = []
    for i in range(a.shape[0]):
        idx = a.indices[a.indptr[i] : a.indptr[i + 1]]
        if not len(idx) or weight[i] <= 0:
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
    merged = sp.csr_matrix(
        (np.ones(len(indices), dtype=bool), indices, indptr), shape=(len(rows), a.shape[1])
    )
    return merged, np.asarray(w, dtype=float)


def _open_rows(problem: CoverageProblem) -> tuple[sp.csr_matrix, np.ndarray]:
    """The rows that can gain, merged (:attr:`CoverageProblem.open_rows`, computed once per problem)."""
    return problem.open_rows


def assign_capacity(
    pairs: sp.csr_matrix, weight: np.ndarray, capacity: np.ndarray | None, chosen: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The best assignment of demand rows to the ``chosen`` options: (served weight per row, capacity
    used per chosen option). Uncapacitated: a row within reach of any chosen option is served whole,
    and counted at the first chosen option in ``chosen`` order that reaches it. Capacitated: a maximum
    flow (rows -> options, up to weight and capacity) solved as an LP on HiGHS."""
    a = sp.csc_matrix(sp.csr_matrix(pairs, dtype=bool)[:, chosen])
    m, k = a.shape
    w = np.asarray(weight, dtype=float)
    used = np.zeros(k)
    served = np.zeros(m)
    if k == 0 or m == 0:
        return served, used
    if capacity is None:
        for j in range(k):
            rows = a.indices[a.indptr[j] : a.indptr[j + 1]]
            new = rows[served[rows] == 0]
            served[new] = w[new]
            used[j] = w[new].sum()
        return served, used
    coo = sp.coo_matrix(a)
    z = _pair_flows(coo, w, np.asarray(capacity, float)[chosen])
    np.add.at(served, coo.row, z)
    np.add.at(used, coo.col, z)
    return served, used


def _highs() -> highspy.Highs:
    """A silent HiGHS instance. The first construction in a process prints HiGHS's banner on the C-level
    stdout (before any option can be set): it is sent to /dev/null, so the command's output stays ours."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        h = highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)
    h.setOptionValue("output_flag", False)
    return h


def _set_matrix(lp: highspy.HighsLp, mat: sp.csc_matrix) -> None:
    mat = sp.csc_matrix(mat)
    mat.sort_indices()
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = mat.indptr.astype(np.int32)
    lp.a_matrix_.index_ = mat.indices.astype(np.int32)
    lp.a_matrix_.value_ = mat.data.astype(float)


# --------------------------------------------------------------------------------------------
# Greedy (the warm start and the curve's fast path)
# --------------------------------------------------------------------------------------------


class _Greedy:
    """Lazy greedy state over merged rows: residual demand per row, one option per site."""

    def __init__(self, problem: CoverageProblem, a: sp.csr_matrix, w: np.ndarray) -> None:
        self.cols = sp.csc_matrix(a)
        self.resid = w.copy()
        self.cap = None if problem.capacity is None else np.asarray(problem.capacity, float)
        self.cost = problem.costs()
        self.site = problem.sites()
        self.site_used = np.zeros(int(self.site.max()) + 1 if len(self.site) else 0, dtype=bool)
        self.chosen: list[int] = []
        self.total = 0.0

    def gain(self, j: int) -> float:
        rows = self.cols.indices[self.cols.indptr[j] : self.cols.indptr[j + 1]]
        g = float(self.resid[rows].sum())
        return g if self.cap is None else min(g, float(self.cap[j]))

    def take(self, j: int) -> float:
        rows = self.cols.indices[self.cols.indptr[j] : self.cols.indptr[j + 1]]
        if self.cap is None:
            g = float(self.resid[rows].sum())
            self.resid[rows] = 0.0
        else:  # fill up to capacity, rows in index order (the exact assignment is redone afterwards)
            left = float(self.cap[j])
            g = 0.0
            for i in rows:
                if left <= 0:
                    break
                t = min(left, self.resid[i])
                self.resid[i] -= t
                left -= t
                g += t
        self.chosen.append(j)
        self.site_used[self.site[j]] = True
        self.total += g
        return g

    def free(self, j: int) -> bool:
        return not self.site_used[self.site[j]]


def greedy_max_coverage(
    problem: CoverageProblem, p: int | None = None, *, budget: float | None = None
) -> PlanResult:
    """Lazy greedy: the per-unit rules first (each rule's best options until met), then repeatedly the
    option adding the most unserved demand (per unit of cost under a budget; ties: lowest index), within
    ``p`` sites and the budget. Infeasible rules give ``status = "infeasible"``."""
    t0 = time.perf_counter()
    a, w = _open_rows(problem)
    g = _Greedy(problem, a, w)
    p_max = problem.n_options if p is None else int(p)
    money = np.inf if budget is None else float(budget)
    spent = 0.0
    cap = None if problem.capacity is None else np.asarray(problem.capacity, float)
    for rule in problem.rules:
        opts = [int(o) for o in rule.options]
        have = [o for o in g.chosen if o in set(opts)]
        n_have = len(have)
        cap_have = 0.0 if cap is None else float(cap[have].sum()) if have else 0.0
        while n_have < rule.min_sites or cap_have < rule.min_capacity - 1e-9:
            free = [o for o in opts if g.free(o) and spent + g.cost[o] <= money + 1e-9]
            if not free or len(g.chosen) >= p_max:
                return PlanResult(
                    np.asarray(g.chosen, dtype=np.int64),
                    g.total,
                    float("inf"),
                    False,
                    "greedy",
                    time.perf_counter() - t0,
                    status="infeasible",
                    merged_rows=a.shape[0],
                    notes=(f"rule {rule.name} cannot be met",),
                )
            o = max(
                free,
                key=lambda j: ((0.0 if cap is None else cap[j]) if rule.min_capacity else 0.0, g.gain(j), -j),
            )
            spent += g.cost[o]
            g.take(o)
            n_have += 1
            cap_have += 0.0 if cap is None else float(cap[o])
    per_cost = budget is not None
    heap = []
    for j in range(problem.n_options):
        gj = g.gain(j)
        if gj > 0 and g.free(j):
            heap.append((-(gj / max(g.cost[j], 1e-12) if per_cost else gj), j))
    heapq.heapify(heap)
    while heap and len(g.chosen) < p_max:
        neg, j = heapq.heappop(heap)
        if not g.free(j) or spent + g.cost[j] > money + 1e-9:
            continue
        gj = g.gain(j)
        key = gj / max(g.cost[j], 1e-12) if per_cost else gj
        if gj <= 0:
            continue
        if heap and key < -heap[0][0] - 1e-12:  # stale: push back with its true gain
            heapq.heappush(heap, (-key, j))
            continue
        spent += g.cost[j]
        g.take(j)
    chosen = np.asarray(g.chosen, dtype=np.int64)
    value = g.total
    if cap is not None and len(chosen):  # the exact assignment of the chosen options
        served, _ = assign_capacity(a, w, cap, chosen)
        value = float(served.sum())
    return PlanResult(
        chosen,
        value,
        float("inf"),
        False,
        "greedy",
        time.perf_counter() - t0,
        merged_rows=a.shape[0],
        greedy_value=value,
    )


# --------------------------------------------------------------------------------------------
# The exact model
# --------------------------------------------------------------------------------------------


def _model(
    problem: CoverageProblem, a: sp.csr_matrix, w: np.ndarray, p: int | None, budget: float | None
) -> tuple[highspy.HighsLp, int]:
    """The MILP (module docstring) as a HighsLp; returns it and the number of x columns (first)."""
    n = problem.n_options
    m = a.shape[0]
    coo = sp.coo_matrix(a)
    pr, pc = coo.row.astype(np.int64), coo.col.astype(np.int64)
    rows: list[sp.csr_matrix] = []
    lo: list[np.ndarray] = []
    hi: list[np.ndarray] = []
    if problem.capacity is None:
        n_aux = m
        cost_aux = w
        aux_ub = np.ones(m)
        # y_i - sum_o a_io x_o <= 0
        rows.append(sp.hstack([-sp.csr_matrix(a, dtype=float), sp.identity(m, format="csr")], format="csr"))
        lo.append(np.full(m, -np.inf))
        hi.append(np.zeros(m))
    else:
        npair = len(pr)
        n_aux = npair
        cost_aux = np.ones(npair)
        aux_ub = w[pr]
        # sum_o z_io <= w_i
        rows.append(
            sp.hstack(
                [
                    sp.csr_matrix((m, n)),
                    sp.csr_matrix((np.ones(npair), (pr, np.arange(npair))), shape=(m, npair)),
                ],
                format="csr",
            )
        )
        lo.append(np.full(m, -np.inf))
        hi.append(w)
        # sum_i z_io - cap_o x_o <= 0, with cap_o lowered to the demand within o's reach where that is
        # smaller (valid: o never serves more; a tighter LP bound at no cost). The per-pair strong form
        # z_io <= w_i x_o, or the cover rows sum_o z_io <= w_i sum_o a_io x_o, tighten it further but
        # their root LP did not finish in 60 s at 100k x 5k (PLANNING.md sizes), so they are left out.
        reach = np.bincount(pc, weights=w[pr], minlength=n)
        cap_coef = np.minimum(np.asarray(problem.capacity, float), reach)
        rows.append(
            sp.hstack(
                [
                    -sp.diags(cap_coef, format="csr"),
                    sp.csr_matrix((np.ones(npair), (pc, np.arange(npair))), shape=(n, npair)),
                ],
                format="csr",
            )
        )
        lo.append(np.full(n, -np.inf))
        hi.append(np.zeros(n))
    site = problem.sites()
    shared = np.flatnonzero(np.bincount(site) > 1)
    if len(shared):  # one type per site
        sel = np.isin(site, shared)
        ridx = np.searchsorted(shared, site[sel])
        rows.append(
            sp.hstack(
                [
                    sp.csr_matrix((np.ones(sel.sum()), (ridx, np.flatnonzero(sel))), shape=(len(shared), n)),
                    sp.csr_matrix((len(shared), n_aux)),
                ],
                format="csr",
            )
        )
        lo.append(np.full(len(shared), -np.inf))
        hi.append(np.ones(len(shared)))
    zeros_aux = sp.csr_matrix((1, n_aux))
    if p is not None:
        rows.append(sp.hstack([sp.csr_matrix(np.ones((1, n))), zeros_aux], format="csr"))
        lo.append(np.array([-np.inf]))
        hi.append(np.array([float(p)]))
    if budget is not None:
        rows.append(sp.hstack([sp.csr_matrix(problem.costs()[None, :]), zeros_aux], format="csr"))
        lo.append(np.array([-np.inf]))
        hi.append(np.array([float(budget)]))
    cap = None if problem.capacity is None else np.asarray(problem.capacity, float)
    for rule in problem.rules:
        coef = np.zeros(n)
        if rule.min_sites:
            coef[rule.options] = 1.0
            rows.append(sp.hstack([sp.csr_matrix(coef[None, :]), zeros_aux], format="csr"))
            lo.append(np.array([float(rule.min_sites)]))
            hi.append(np.array([np.inf]))
        if rule.min_capacity and cap is not None:
            coef = np.zeros(n)
            coef[rule.options] = cap[rule.options]
            rows.append(sp.hstack([sp.csr_matrix(coef[None, :]), zeros_aux], format="csr"))
            lo.append(np.array([float(rule.min_capacity)]))
            hi.append(np.array([np.inf]))
    mat = sp.vstack(rows, format="csc")
    lp = highspy.HighsLp()
    lp.num_col_ = n + n_aux
    lp.num_row_ = mat.shape[0]
    lp.sense_ = highspy.ObjSense.kMaximize
    lp.col_cost_ = np.concatenate([np.zeros(n), cost_aux])
    lp.col_lower_ = np.zeros(n + n_aux)
    lp.col_upper_ = np.concatenate([np.ones(n), aux_ub])
    inf = highspy.kHighsInf
    lp.row_lower_ = np.where(np.isfinite(np.concatenate(lo)), np.concatenate(lo), -inf)
    lp.row_upper_ = np.where(np.isfinite(np.concatenate(hi)), np.concatenate(hi), inf)
    lp.integrality_ = [highspy.HighsVarType.kInteger] * n + [highspy.HighsVarType.kContinuous] * n_aux
    _set_matrix(lp, mat)
    return lp, n


def _warm_start(problem: CoverageProblem, a: sp.csr_matrix, w: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """The full column vector of the greedy solution (x, then y or z)."""
    n = problem.n_options
    x = np.zeros(n)
    x[chosen] = 1.0
    if problem.capacity is None:
        y = (
            (np.asarray(a[:, chosen].sum(axis=1)).ravel() > 0).astype(float)
            if len(chosen)
            else np.zeros(a.shape[0])
        )
        return np.concatenate([x, y])
    coo = sp.coo_matrix(a)
    z = np.zeros(len(coo.row))
    if len(chosen) and len(coo.row):  # the exact assignment of the chosen options, spread over the pairs
        sub = sp.coo_matrix(sp.csc_matrix(a)[:, chosen])
        flows = _pair_flows(sub, w, np.asarray(problem.capacity, float)[chosen])
        pair_index = sp.csr_matrix((np.arange(1, len(coo.row) + 1), (coo.row, coo.col)), shape=a.shape)
        z[np.asarray(pair_index[sub.row, chosen[sub.col]]).ravel() - 1] = flows
    return np.concatenate([x, z])


def _pair_flows(sub: sp.coo_matrix, w: np.ndarray, cap: np.ndarray) -> np.ndarray:
    """Max-flow values per pair of ``sub`` (rows x chosen options), in the COO order of ``sub``."""
    r, c = sub.row, sub.col
    npair, m, k = len(r), sub.shape[0], sub.shape[1]
    h = _highs()
    lp = highspy.HighsLp()
    lp.num_col_ = npair
    lp.num_row_ = m + k
    lp.sense_ = highspy.ObjSense.kMaximize
    lp.col_cost_ = np.ones(npair)
    lp.col_lower_ = np.zeros(npair)
    lp.col_upper_ = w[r]
    lp.row_lower_ = np.full(m + k, -highspy.kHighsInf)
    lp.row_upper_ = np.concatenate([w, cap])
    _set_matrix(
        lp,
        sp.csc_matrix(
            (np.ones(2 * npair), (np.concatenate([r, m + c]), np.concatenate([np.arange(npair)] * 2))),
            shape=(m + k, npair),
        ),
    )
    h.passModel(lp)
    h.run()
    return np.asarray(h.getSolution().col_value)


def _swap_improve(a: sp.csr_matrix, w: np.ndarray, chosen: np.ndarray, *, max_rounds: int = 200
                  ) -> np.ndarray:
    """Uncapacitated 1-swap local search from ``chosen`` (the MIP's warm start only): while some
    (drop j, add k) raises the covered weight, make the best such swap. Every swap of a round is valued
    at once on sparse products: delta(k, j) = gain(k) - loss(j) + the weight only j covers that k also
    covers. Only for a plain site count (no rules, budget or shared sites: a swap keeps those)."""
    cols = sp.csc_matrix(a, dtype=float)
    at = sp.csr_matrix(cols.T)
    cur = np.asarray(chosen, dtype=np.int64).copy()
    n = a.shape[1]
    for _ in range(max_rounds):
        if not len(cur) or len(cur) >= n:
            break
        count = np.asarray(cols[:, cur].sum(axis=1)).ravel()
        gain = at @ np.where(count == 0, w, 0.0)  # per option: weight nobody covers yet
        uniq = np.flatnonzero(count == 1)
        owner = cols[uniq][:, cur].tocsr().indices  # which chosen option covers each such row
        only = sp.csr_matrix((w[uniq], (uniq, owner)), shape=(a.shape[0], len(cur)))
        loss = np.asarray(only.sum(axis=0)).ravel()
        delta = (at @ only).toarray() + gain[:, None] - loss[None, :]
        delta[cur, :] = -np.inf
        k, j = np.unravel_index(int(np.argmax(delta)), delta.shape)
        if delta[k, j] <= 1e-9 * max(1.0, float(w.sum())):
            break
        cur[j] = k
    return cur


def _order_by_gain(
    problem: CoverageProblem, a: sp.csr_matrix, w: np.ndarray, chosen: np.ndarray
) -> np.ndarray:
    """``chosen`` in the order sites are listed in, and without the options that add nothing and that no
    rule needs (a solver may open them at no loss). Uncapacitated: greedy order of marginal gain among
    themselves. Capacitated: by the demand each serves in an optimal assignment, largest first (an
    option serving nothing there can go: the same flow stays feasible without it)."""
    needed = {int(o) for r in problem.rules for o in r.options.tolist()}
    if problem.capacity is not None:
        _served, used = assign_capacity(a, w, problem.capacity, chosen)
        order = sorted(range(len(chosen)), key=lambda k: (-used[k], int(chosen[k])))
        return np.asarray(
            [int(chosen[k]) for k in order if used[k] > 1e-9 or int(chosen[k]) in needed], dtype=np.int64
        )
    left = [int(j) for j in chosen]
    out: list[int] = []
    resid = w.copy()
    cols = sp.csc_matrix(a)

    def gain(j: int) -> float:
        return float(resid[cols.indices[cols.indptr[j] : cols.indptr[j + 1]]].sum())

    while left:
        best = max(left, key=lambda j: (gain(j), -j))
        if gain(best) <= 0:
            out += [j for j in left if j in needed]  # the rest add nothing: only what a rule needs stays
            break
        resid[cols.indices[cols.indptr[best] : cols.indptr[best + 1]]] = 0.0
        out.append(best)
        left.remove(best)
    return np.asarray(out, dtype=np.int64)


def solve_max_coverage(
    problem: CoverageProblem,
    p: int | None = None,
    *,
    budget: float | None = None,
    time_limit_s: float = 60.0,
    mip_rel_gap: float = 0.0,
    served_by_existing: float = 0.0,
) -> PlanResult:
    """The exact model on HiGHS (module docstring), warm-started by :func:`greedy_max_coverage`; at
    ``time_limit_s`` the best solution found and the proven bound; ``mip_rel_gap`` > 0 stops at that
    proven relative gap. ``p`` and/or ``budget`` must be given.

    ``served_by_existing`` (weight units, e.g. persons): the demand the existing facilities already serve
    (the rows left out or the weight consumed before the model). It enters HiGHS's objective as a
    constant, so ``mip_rel_gap`` and :attr:`PlanResult.gap` are then on TOTAL covered demand (existing +
    new, :data:`GAP_BASIS_TOTAL`); 0 (the default) keeps them on the objective alone (:data:`GAP_BASIS`).
    :attr:`PlanResult.gap_new` is always on the objective alone. Values and bounds stay those of the
    objective (the new sites' demand)."""
    if served_by_existing < 0 or not np.isfinite(served_by_existing):
        raise ValueError(
            f"solve_max_coverage: served_by_existing={served_by_existing!r} must be finite and >= 0"
        )
    if p is None and budget is None:
        raise ValueError("solve_max_coverage: give a number of sites p, a budget, or both")
    t0 = time.perf_counter()
    greedy = greedy_max_coverage(problem, p, budget=budget)
    a, w = _open_rows(problem)
    m = a.shape[0]
    if (m == 0 or problem.n_options == 0 or (p is not None and p <= 0)) and not problem.rules:
        return PlanResult(
            np.zeros(0, dtype=np.int64),
            0.0,
            0.0,
            True,
            "milp",
            time.perf_counter() - t0,
            merged_rows=m,
            greedy_value=0.0,
        )
    lp, n = _model(problem, a, w, p, budget)
    offset = float(served_by_existing)
    lp.offset_ = offset  # a constant in the objective: HiGHS's relative gap is then on the total
    h = _highs()
    h.setOptionValue("time_limit", float(time_limit_s))
    h.setOptionValue("mip_rel_gap", float(mip_rel_gap))
    if problem.capacity is None:
        h.setOptionValue("mip_lp_solver", "ipm")
    h.passModel(lp)
    if greedy.status == "ok":
        sol = highspy.HighsSolution()
        start = greedy.chosen
        if problem.capacity is None and not problem.rules and budget is None and p is not None and (
                len(np.unique(problem.sites())) == problem.n_options):
            start = _swap_improve(a, w, start)  # a better incumbent: HiGHS then proves instead of searching
        sol.col_value = _warm_start(problem, a, w, start).tolist()
        sol.value_valid = True
        h.setSolution(sol)
    h.run()
    status = h.getModelStatus()
    info = h.getInfo()
    if status == highspy.HighsModelStatus.kInfeasible:
        return PlanResult(
            np.zeros(0, dtype=np.int64),
            0.0,
            0.0,
            False,
            "milp",
            time.perf_counter() - t0,
            status="infeasible",
            merged_rows=m,
            greedy_value=greedy.new_covered_weight,
            notes=("the site count, budget and per-unit rules cannot all be met",),
        )
    sol_x = np.asarray(h.getSolution().col_value[:n]) if info.primal_solution_status else None
    # HiGHS's bound includes the constant: the objective's bound is without it
    bound = float(info.mip_dual_bound) - offset if np.isfinite(info.mip_dual_bound) else float("inf")
    basis = GAP_BASIS_TOTAL if offset > 0 else GAP_BASIS
    if sol_x is None:  # no MIP solution (an error or a time limit before any): the greedy, said so
        return dataclasses.replace(
            greedy,
            bound=bound,
            solve_s=time.perf_counter() - t0,
            merged_rows=m,
            gap_basis=basis,
            served_by_existing=offset,
            notes=(
                f"HiGHS ended with '{h.modelStatusToString(status)}' and no "
                "solution: the greedy solution is reported",
            ),
        )
    chosen = np.flatnonzero(sol_x > 0.5)
    served, _ = assign_capacity(a, w, problem.capacity, chosen)
    value = float(served.sum())
    optimal = status == highspy.HighsModelStatus.kOptimal and mip_rel_gap == 0.0
    method = "milp"
    if status == highspy.HighsModelStatus.kTimeLimit:
        method = f"milp (stopped at the {time_limit_s:g} s time limit)"
    elif mip_rel_gap > 0:
        on = " on total covered demand" if offset > 0 else ""
        method = f"milp (stopped at a proven gap <= {mip_rel_gap:.1%}{on})"
    if greedy.status == "ok" and greedy.new_covered_weight > value + 1e-9:
        chosen, value, method = greedy.chosen, greedy.new_covered_weight, "greedy (better than the MILP's)"
        optimal = False
    bound = max(bound, value)
    if bound - value <= 1e-6 * max(1.0, abs(value)):  # the bound met: proven optimal, whatever stopped it
        optimal, method = True, "milp" if method.startswith("milp") else method
    return PlanResult(
        _order_by_gain(problem, a, w, chosen),
        value,
        bound,
        optimal,
        method,
        time.perf_counter() - t0,
        merged_rows=m,
        gap_basis=basis,
        greedy_value=greedy.new_covered_weight,
        served_by_existing=offset,
    )
