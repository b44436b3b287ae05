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
