"""spopt as a test oracle (issue 12): uncapacitated, with existing facilities fixed, our exact maximal
coverage equals pysal/spopt's MCLP on the same coverage.

The coverage is real: pairs within the limit from :func:`coverage.traveltime.coverage_matrix` on a
small generated street grid (the benchmark's ``grid_network``, every street walked at 1 m/s). Ours
takes it sparse (cells x candidates, existing coverage as ``covered`` rows); spopt takes it as a dense
cost matrix built from the same pairs (within reach -> the travel time, else a large value) with
``service_radius`` = the limit, the existing facilities as ``predefined_facilities_arr`` (the array
form of ``from_geodataframe``'s ``predefined_facility_col``) and ``p_facilities`` = existing + new,
since spopt's count includes the fixed sites (``sum x == p``). Objectives compared: spopt's (all
covered demand) = ours (demand the new sites add) + the demand the existing facilities already cover.
spopt is a test-only dependency (the ``dev`` extra); the module is skipped without it.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import load_script

from coverage.graph import Network
from coverage.planning import CoverageProblem, solve_max_coverage
from coverage.traveltime import coverage_matrix, snap_points

spopt_locate = pytest.importorskip("spopt.locate")
pulp = pytest.importorskip("pulp")

SPEED_MPS = 1.0
NOT_COVERED_S = 1e9  # the dense matrix's value for "beyond the limit" (far above any radius)
# PuLP 3.x announces its 4.0 modelling API on every variable spopt creates (not ours to fix)
pytestmark = pytest.mark.filterwarnings("ignore:Constructing LpVariable:DeprecationWarning")


@pytest.fixture(scope="module")
def street_grid() -> Network:
    """A 24 x 24 perturbed street grid, 100 m spacing (edges about 50-150 m), walked at 1 m/s."""
    net = load_script("bench").grid_network(24, spacing_m=100.0, seed=7)
    return dataclasses.replace(net, edge_time_s=net.edge_length_m / SPEED_MPS)


@dataclasses.dataclass(frozen=True)
class Instance:
    cand_s: sp.csr_matrix  # cells x candidates, travel time in s where within the limit
    exist_s: sp.csr_matrix  # cells x existing facilities, same
    weight: np.ndarray  # persons per cell
    limit_s: float


def make_instance(net: Network, *, seed: int, n_cells: int, n_cand: int, n_exist: int, limit_s: float
                  ) -> Instance:
    """Cells, candidates and existing facilities at random positions; skewed (lognormal) population."""
    rng = np.random.default_rng(seed)
    lo = np.array([net.node_x.min(), net.node_y.min()])
    hi = np.array([net.node_x.max(), net.node_y.max()])

    def snapped(n: int) -> object:
        return snap_points(net, rng.uniform(lo, hi, (n, 2)), max_snap_m=500.0)

    cells, cand, exist = snapped(n_cells), snapped(n_cand), snapped(n_exist)
    kw = {"access_speed_mps": SPEED_MPS, "limit_s": limit_s}
    cand_s = sp.csr_matrix(coverage_matrix(net, cand, cells, **kw).T)  # type: ignore[arg-type]
    exist_s = sp.csr_matrix(coverage_matrix(net, exist, cells, **kw).T)  # type: ignore[arg-type]
    weight = np.round(rng.lognormal(2.0, 1.0, n_cells), 1)
    return Instance(cand_s, exist_s, weight, limit_s)


def pulp_solver() -> object:
    """HiGHS through PuLP when PuLP finds it, else CBC (PuLP's bundled default)."""
    available = pulp.listSolvers(onlyAvailable=True)
    if "HiGHS" in available:
        return pulp.HiGHS(msg=False)
    if "PULP_CBC_CMD" in available:
        return pulp.PULP_CBC_CMD(msg=False)
    pytest.skip(f"no MILP solver for PuLP (available: {available})")


def ours_total(inst: Instance, p: int) -> tuple[float, np.ndarray]:
    """Our optimum as total covered demand (existing + new), and the chosen candidates."""
    covered = inst.exist_s.getnnz(axis=1) > 0
    prob = CoverageProblem(sp.csr_matrix(inst.cand_s, dtype=bool), inst.weight, covered)
    res = solve_max_coverage(prob, p)
    assert res.status == "ok" and res.optimal and res.gap == 0.0
    assert len(res.chosen) <= p
    return res.new_covered_weight + float(inst.weight[covered].sum()), res.chosen


def spopt_total(inst: Instance, p: int) -> tuple[float, np.ndarray]:
    """spopt's MCLP optimum (total covered demand) and its chosen candidates (existing left out)."""
    times = sp.hstack([inst.exist_s, inst.cand_s], format="csr")
    dense = np.full(times.shape, NOT_COVERED_S)
    rows, cols = times.nonzero()
    dense[rows, cols] = np.asarray(times[rows, cols]).ravel()
    n_exist = inst.exist_s.shape[1]
    predefined = np.zeros(times.shape[1], dtype=int)
    predefined[:n_exist] = 1
    mclp = spopt_locate.MCLP.from_cost_matrix(dense, inst.weight, service_radius=inst.limit_s,
                                              p_facilities=n_exist + p, predefined_facilities_arr=predefined)
    mclp = mclp.solve(pulp_solver(), results=False)
    x = np.array([v.value() for v in mclp.fac_vars]) > 0.5
    assert x[:n_exist].all()  # the existing facilities stayed open
    return float(pulp.value(mclp.problem.objective)), np.flatnonzero(x[n_exist:])


CASES = [  # (seed, cells, candidates, existing, p, limit_s)
    (1, 300, 30, 4, 3, 900.0),
    (2, 400, 45, 6, 5, 600.0),
    (3, 500, 60, 8, 8, 600.0),
    (4, 350, 40, 0, 4, 700.0),  # no existing facility: plain MCLP
    (5, 450, 50, 10, 6, 500.0),
]


@pytest.mark.parametrize(("seed", "n_cells", "n_cand", "n_exist", "p", "limit_s"), CASES)
def test_our_optimum_equals_spopt_mclp_with_existing_fixed(street_grid: Network, seed: int, n_cells: int,
                                                           n_cand: int, n_exist: int, p: int,
                                                           limit_s: float) -> None:
    inst = make_instance(street_grid, seed=seed, n_cells=n_cells, n_cand=n_cand, n_exist=n_exist,
                         limit_s=limit_s)
    assert inst.cand_s.nnz > 0 and inst.cand_s.nnz < inst.cand_s.shape[0] * inst.cand_s.shape[1] // 2
    ours, _ = ours_total(inst, p)
    theirs, their_sites = spopt_total(inst, p)
    assert ours == pytest.approx(theirs, rel=1e-9, abs=1e-6)
    # spopt's sites, scored on our sparse coverage, give its objective: both read the same coverage
    reach = (inst.exist_s.getnnz(axis=1) > 0) | (inst.cand_s[:, their_sites].getnnz(axis=1) > 0)
    assert float(inst.weight[reach].sum()) == pytest.approx(theirs, rel=1e-9, abs=1e-6)
