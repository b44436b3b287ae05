"""2SFCA: closed-form invariants on n x n grids and agreement with pysal/access."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from coverage.access2sfca import gaussian_weight, two_step_fca


def grid_cost(n: int, sites: list[tuple[int, int]], *, step_s: float, catchment_s: float) -> sp.csr_matrix:
    """Manhattan travel times on an n x n grid from each site to each cell, stored within catchment."""
    rr, cc = np.divmod(np.arange(n * n), n)
    rows, cols, vals = [], [], []
    for j, (r, c) in enumerate(sites):
        t = (np.abs(rr - r) + np.abs(cc - c)) * step_s
        m = t <= catchment_s
        rows += [j] * int(m.sum())
        cols += list(np.flatnonzero(m))
        vals += list(t[m])
    return sp.csr_matrix((vals, (rows, cols)), shape=(len(sites), n * n))


def test_single_site_gives_supply_over_reachable_demand() -> None:
    cost = grid_cost(3, [(1, 1)], step_s=60, catchment_s=60)  # centre + 4 neighbours
    demand = np.full(9, 10.0)
    score = two_step_fca(np.array([50.0]), demand, cost, catchment_s=60)
    expected = np.zeros(9)
    expected[[1, 3, 4, 5, 7]] = 50 / 50
    np.testing.assert_allclose(score, expected)


def test_explicit_zero_cost_counts_as_inside() -> None:
    cost = sp.csr_matrix((np.array([0.0, 100.0]), (np.array([0, 0]), np.array([0, 1]))), shape=(1, 3))
    assert cost.nnz == 2
    score = two_step_fca(np.array([6.0]), np.array([1.0, 2.0, 5.0]), cost, catchment_s=100)
    np.testing.assert_allclose(score, [2.0, 2.0, 0.0])


def test_catchment_is_inclusive_and_entries_beyond_are_ignored() -> None:
    cost = sp.csr_matrix(np.array([[900.0, 901.0]]))
    score = two_step_fca(np.array([10.0]), np.array([5.0, 5.0]), cost, catchment_s=900)
    np.testing.assert_allclose(score, [2.0, 0.0])


def test_uniform_grid_gives_uniform_score() -> None:
    # every cell is a site reaching only its own cell (explicit 0 s entries)
    n = 4
    cost = sp.csr_matrix((np.zeros(n * n), (np.arange(n * n), np.arange(n * n))), shape=(n * n, n * n))
    score = two_step_fca(np.full(n * n, 3.0), np.full(n * n, 6.0), cost, catchment_s=1)
    np.testing.assert_allclose(score, 0.5)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(3, 6),
    sites=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), min_size=1, max_size=4, unique=True),
    supply=st.lists(st.floats(0, 500), min_size=4, max_size=4),
    decay=st.sampled_from([None, "gaussian"]),
    seed=st.integers(0, 1000),
)
def test_invariants(n: int, sites: list[tuple[int, int]], supply: list[float], decay: str | None,
                    seed: int) -> None:
    sites = [(r % n, c % n) for r, c in sites]
    sites = list(dict.fromkeys(sites))
    rng = np.random.default_rng(seed)
    demand = rng.uniform(1, 100, n * n)  # every cell populated: every site has demand in its catchment
    cost = grid_cost(n, sites, step_s=60, catchment_s=180)
    s = np.array(supply[: len(sites)])
    score = two_step_fca(s, demand, cost, catchment_s=180, decay=decay)
    # conservation: all supply is distributed over the demand that can reach it
    assert np.isclose((demand * score).sum(), s.sum(), rtol=1e-9, atol=1e-9)
    # doubling supply doubles the score; doubling demand halves it
    np.testing.assert_allclose(two_step_fca(2 * s, demand, cost, catchment_s=180, decay=decay), 2 * score)
    np.testing.assert_allclose(two_step_fca(s, 2 * demand, cost, catchment_s=180, decay=decay), score / 2)
    assert np.all(score >= 0)


@pytest.mark.parametrize("decay", [None, "gaussian"])
def test_matches_pysal_access(decay: str | None) -> None:
    from access import Access

    n, catch = 5, 180.0
    sites = [(0, 0), (2, 3), (4, 1)]
    supply = np.array([30.0, 80.0, 20.0])
    rng = np.random.default_rng(7)
    demand = rng.integers(1, 50, n * n).astype(float)
    cost = grid_cost(n, sites, step_s=60, catchment_s=catch).tocoo()
    ours = two_step_fca(supply, demand, cost, catchment_s=catch, decay=decay)

    demand_df = pd.DataFrame({"pop": demand}, index=pd.Index(range(n * n), name="cell"))
    supply_df = pd.DataFrame({"cap": supply}, index=pd.Index(range(len(sites)), name="site"))
    cost_df = pd.DataFrame({"origin": cost.col, "dest": cost.row, "cost": cost.data})
    acc = Access(demand_df=demand_df, demand_index=True, demand_value="pop", supply_df=supply_df,
                 supply_index=True, supply_value="cap", cost_df=cost_df, cost_origin="origin",
                 cost_dest="dest", cost_name="cost")
    wfn = None if decay is None else (lambda t: float(gaussian_weight(np.array([t]), catchment_s=catch)[0]))
    res = acc.two_stage_fca(name="x", max_cost=catch, weight_fn=wfn, normalize=False)
    theirs = res.iloc[:, 0].reindex(range(n * n)).fillna(0).to_numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-9)


def test_gaussian_weight_endpoints() -> None:
    np.testing.assert_allclose(gaussian_weight(np.array([0.0, 900.0, 1000.0]), catchment_s=900), [1, 0, 0])
    w = gaussian_weight(np.linspace(0, 900, 10), catchment_s=900)
    assert np.all(np.diff(w) < 0)


def test_bad_inputs_raise_once() -> None:
    cost = sp.csr_matrix((2, 3))
    with pytest.raises(ValueError,
                       match=r"cost matrix shape \(2, 3\) must be .*\(1, 3\).*supply has negative"):
        two_step_fca(np.array([-1.0]), np.ones(3), cost, catchment_s=10)
    with pytest.raises(ValueError, match="catchment_s = 0: must be a positive"):
        two_step_fca(np.ones(2), np.ones(3), cost, catchment_s=0)
