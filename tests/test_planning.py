"""The planning solver core on small instances: the MILP optimum equals brute force, the greedy never
beats it, existing coverage is not counted again, and adding a site never lowers coverage."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from coverage.planning import CoverageProblem, greedy_max_coverage, merge_identical_rows, solve_max_coverage


def random_problem(seed: int, m: int = 30, n: int = 8, density: float = 0.2) -> CoverageProblem:
    rng = np.random.default_rng(seed)
    a = sp.random(m, n, density=density, random_state=rng, format="csr").astype(bool)
    return CoverageProblem(sp.csr_matrix(a), rng.integers(0, 100, m).astype(float), rng.random(m) < 0.2)


def brute_force(problem: CoverageProblem, p: int) -> float:
    a = problem.pairs.toarray()
    w = np.where(problem.covered, 0.0, problem.weight)
    best = 0.0
    for k in range(0, p + 1):
        for combo in itertools.combinations(range(a.shape[1]), k):
            covered = a[:, list(combo)].any(axis=1) if combo else np.zeros(a.shape[0], dtype=bool)
            best = max(best, float(w[covered].sum()))
    return best


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("p", [1, 2, 3])
def test_milp_equals_brute_force_and_greedy_never_beats_it(seed: int, p: int) -> None:
    prob = random_problem(seed)
    exact = solve_max_coverage(prob, p)
    assert exact.optimal and exact.gap == 0.0
    assert exact.new_covered_weight == pytest.approx(brute_force(prob, p))
    assert len(exact.chosen) <= p
    assert greedy_max_coverage(prob, p).new_covered_weight <= exact.new_covered_weight + 1e-9


def test_existing_coverage_is_not_counted_again() -> None:
    a = sp.csr_matrix(np.array([[1, 0], [1, 0], [0, 1]], dtype=bool))
    prob = CoverageProblem(a, np.array([100.0, 100.0, 10.0]), np.array([True, True, False]))
    res = solve_max_coverage(prob, 1)
    assert list(res.chosen) == [1] and res.new_covered_weight == 10.0  # site 0 would add nothing


def test_identical_candidate_sets_are_merged() -> None:
    a = sp.csr_matrix(np.array([[1, 1, 0], [1, 1, 0], [0, 0, 1], [0, 0, 0]], dtype=bool))
    merged, w = merge_identical_rows(a, np.array([1.0, 2.0, 4.0, 8.0]))
    assert merged.shape == (2, 3) and sorted(w.tolist()) == [3.0, 4.0]  # the empty row dropped


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), p=st.integers(1, 4))
def test_one_more_site_never_lowers_coverage(seed: int, p: int) -> None:
    prob = random_problem(seed, m=25, n=7)
    more, fewer = solve_max_coverage(prob, p + 1), solve_max_coverage(prob, p)
    assert more.new_covered_weight >= fewer.new_covered_weight


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="3 demand rows but 2 weights"):
        CoverageProblem(sp.csr_matrix((3, 2), dtype=bool), np.zeros(2), np.zeros(3, dtype=bool))


# ---------------------------------------------------------------------------------------------
# Capacities, budgets, one type per site, per-unit rules: brute force with networkx max flow as oracle
# ---------------------------------------------------------------------------------------------


def max_flow_served(a: np.ndarray, w: np.ndarray, cap: np.ndarray | None, combo: tuple[int, ...]) -> float:
    """Demand served by the options ``combo`` (networkx maximum flow: source -> rows -> options -> sink)."""
    import networkx as nx

    if not combo:
        return 0.0
    if cap is None:
        return float(w[a[:, list(combo)].any(axis=1)].sum())
    g = nx.DiGraph()
    for i in range(a.shape[0]):
        g.add_edge("s", ("r", i), capacity=float(w[i]))
        for j in combo:
            if a[i, j]:
                g.add_edge(("r", i), ("o", j), capacity=float("inf"))
    for j in combo:
        g.add_edge(("o", j), "t", capacity=float(cap[j]))
    if "t" not in g:
        return 0.0
    return float(nx.maximum_flow_value(g, "s", "t"))


def brute_force_general(prob: CoverageProblem, p: int | None, budget: float | None) -> float | None:
    a = prob.pairs.toarray().astype(bool)
    w = np.where(prob.covered, 0.0, prob.weight)
    cap = prob.capacity
    cost, site = prob.costs(), prob.sites()
    best: float | None = None
    n = a.shape[1]
    for k in range(0, n + 1):
        if p is not None and k > p:
            break
        for combo in itertools.combinations(range(n), k):
            if len(set(site[list(combo)])) < k or (
                budget is not None and cost[list(combo)].sum() > budget + 1e-9
            ):
                continue
            ok = True
            for r in prob.rules:
                inside = [j for j in combo if j in set(r.options.tolist())]
                if len(inside) < r.min_sites or (
                    cap is not None and cap[inside].sum() < r.min_capacity - 1e-9
                ):
                    ok = False
            if ok:
                v = max_flow_served(a, w, cap, combo)
                best = v if best is None else max(best, v)
    return best


def general_problem(
    seed: int, *, capacitated: bool, sites_shared: bool, rules: bool, costs: bool
) -> CoverageProblem:
    rng = np.random.default_rng(seed)
    m, n = 14, 7
    a = sp.csr_matrix(sp.random(m, n, density=0.3, random_state=rng, format="csr").astype(bool))
    from coverage.planning import Rule

    rl = (Rule("unit A >= 1 of options 0-2", np.array([0, 1, 2]), min_sites=1),) if rules else ()
    return CoverageProblem(
        a,
        rng.integers(1, 40, m).astype(float),
        rng.random(m) < 0.1,
        capacity=rng.integers(10, 60, n).astype(float) if capacitated else None,
        cost=rng.integers(1, 5, n).astype(float) if costs else None,
        site=np.array([0, 0, 1, 2, 2, 3, 4]) if sites_shared else None,
        rules=rl,
    )


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("capacitated", [False, True])
@pytest.mark.parametrize("variant", ["p", "budget", "sites+rules"])
def test_general_milp_equals_brute_force(seed: int, capacitated: bool, variant: str) -> None:
    prob = general_problem(
        seed,
        capacitated=capacitated,
        sites_shared=variant == "sites+rules",
        rules=variant == "sites+rules",
        costs=variant == "budget",
    )
    p, budget = (None, 6.0) if variant == "budget" else (2, None)
    expect = brute_force_general(prob, p, budget)
    res = solve_max_coverage(prob, p, budget=budget)
    if expect is None:
        assert res.status == "infeasible"
        return
    assert res.status == "ok" and res.optimal
    assert res.new_covered_weight == pytest.approx(expect, abs=1e-6)
    greedy = greedy_max_coverage(prob, p, budget=budget)
    assert greedy.new_covered_weight <= res.new_covered_weight + 1e-6
    if budget is not None:
        assert prob.costs()[res.chosen].sum() <= budget + 1e-9
    assert len(set(prob.sites()[res.chosen])) == len(res.chosen)


def test_capacity_limits_what_a_site_serves() -> None:
    a = sp.csr_matrix(np.array([[1, 0], [1, 0], [0, 1]], dtype=bool))
    prob = CoverageProblem(
        a, np.array([50.0, 50.0, 30.0]), np.zeros(3, dtype=bool), capacity=np.array([20.0, 100.0])
    )
    res = solve_max_coverage(prob, 1)
    assert list(res.chosen) == [1] and res.new_covered_weight == 30.0  # 30 reachable beats 20 slots
    both = solve_max_coverage(prob, 2)
    assert both.new_covered_weight == 50.0


def test_infeasible_rule_is_reported_not_solved_around() -> None:
    from coverage.planning import Rule

    a = sp.csr_matrix(np.eye(3, dtype=bool))
    rules = (Rule("unit X", np.array([0]), min_sites=1), Rule("unit Y", np.array([1]), min_sites=1))
    prob = CoverageProblem(a, np.ones(3), np.zeros(3, dtype=bool), rules=rules)
    assert solve_max_coverage(prob, 1).status == "infeasible"
    assert solve_max_coverage(prob, 2).status == "ok"
