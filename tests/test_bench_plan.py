"""The site-planning benchmark's smoke run, and the gap on total covered demand it reports (issue 12)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import load_script

from coverage.planning import GAP_BASIS, GAP_BASIS_TOTAL, CoverageProblem, PlanResult, solve_max_coverage


@pytest.mark.slow
def test_bench_plan_quick_runs_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("spopt")
    # its return code says whether the (full-size) targets were met: not asserted in quick mode
    load_script("bench_plan").main(["--quick"])
    out = capsys.readouterr().out
    assert "TARGET uncapacitated_optimal MET" in out
    assert "proven gap on TOTAL covered demand (existing + new)" in out
    assert "same objective value: True" in out and "RATIO spopt_mclp_" in out
    assert "PEAK_MEMORY_MB" in out


def test_gap_is_on_total_demand_when_existing_service_is_given() -> None:
    res = PlanResult(np.array([0]), 90.0, 100.0, False, "milp", 0.1, served_by_existing=900.0)
    assert res.gap == pytest.approx(10 / 1000) and res.gap_new == pytest.approx(10 / 100)
    plain = PlanResult(np.array([0]), 90.0, 100.0, False, "milp", 0.1)
    assert plain.gap == plain.gap_new == pytest.approx(0.1)


def test_existing_service_changes_the_gap_basis_not_the_answer() -> None:
    rng = np.random.default_rng(3)
    a = sp.csr_matrix(sp.random(40, 9, density=0.25, random_state=rng, format="csr").astype(bool))
    prob = CoverageProblem(a, rng.integers(1, 30, 40).astype(float), rng.random(40) < 0.2,
                           capacity=rng.integers(20, 80, 9).astype(float))
    base = solve_max_coverage(prob, 3)
    total = solve_max_coverage(prob, 3, served_by_existing=500.0)
    assert base.gap_basis == GAP_BASIS and total.gap_basis == GAP_BASIS_TOTAL
    assert total.optimal and total.new_covered_weight == pytest.approx(base.new_covered_weight)
    assert total.bound == pytest.approx(base.bound)  # the bound stays the objective's (offset removed)
    with pytest.raises(ValueError, match="served_by_existing=-1.0 must be finite and >= 0"):
        solve_max_coverage(prob, 3, served_by_existing=-1.0)
