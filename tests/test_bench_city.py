"""The city-scale benchmark's region generator writes input a run accepts (issue 13): every file of
``scripts/bench_city.py`` validated by the one validation path, every row used."""

from __future__ import annotations

from pathlib import Path

from conftest import load_script

from coverage.config import load_config
from coverage.pipeline import analyse
from coverage.validate import check_region


def test_generated_city_region_is_valid_input(tmp_path: Path) -> None:
    counts = load_script("bench_city").write_region(tmp_path / "city", 12.0)
    assert counts["directed_edges"] > 10_000 and counts["units"] == 4
    cfg = load_config(tmp_path / "city" / "coverage.toml")
    report = check_region(cfg)
    assert report.ok, report.text()
    a = analyse(cfg)
    assert len(a.fac_layers.rejects) == 0 and len(a.facilities) == counts["facilities"]
    assert not a.not_assessed  # every service has data (each layer is complete for its kind)
    cells = a.cells_in.cells
    assert cells["unit_code"].nunique() == 4 and a.cells_in.conservation["rel_error"] < 1e-6
    assert set(a.study.units["unit_class"]) <= {"城区", "郊区"}
