"""'Not assessed' is not 'failed'; unknown capacity is not 0; a facility providing a service counts for it
everywhere (the demo county, through the pipeline and the maps)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from coverage.config import load_config
from coverage.pipeline import run
from coverage.services import BUILTIN_SERVICES
from coverage.validate import check_region

MEAL_TABLE_START = '[[facilities]]\nname = "meal_points"'


def _region(demo_layers: Path, tmp_path: Path, edit: str = "", drop_meals: bool = False) -> Path:
    layers = tmp_path / "demo"
    shutil.copytree(demo_layers, layers)
    toml = (layers / "coverage.toml").read_text(encoding="utf-8")
    if drop_meals:
        start = toml.index(MEAL_TABLE_START)
        end = toml.index("[[facilities]]", start + 5)
        toml = toml[:start] + toml[end:]
    (layers / "coverage.toml").write_text(toml + "\n" + edit, encoding="utf-8")
    return layers / "coverage.toml"


@pytest.fixture(scope="module")
def no_meal_data(demo_layers: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo without its meal-point layer: meals are not assessed (no data), not failed."""
    tmp = tmp_path_factory.mktemp("nomeal")
    cfg = load_config(_region(demo_layers, tmp, drop_meals=True))
    return run(cfg, build_root=tmp / "build", maps_root=tmp / "maps")


def test_a_service_without_data_is_not_assessed_everywhere(no_meal_data: Path) -> None:
    out = no_meal_data
    info = json.loads((out / "run_info.json").read_text(encoding="utf-8"))
    assert list(info["not_assessed"]) == ["meal"] and "no facility data" in info["not_assessed"]["meal"]
    std = pd.read_csv(out / "standards.csv", encoding="utf-8-sig", dtype={"unit_code": str})
    meal = std[std["standard_id"] == "meal_radius"]
    assert len(meal) and meal["passed"].isna().all() and meal["value"].isna().all()
    assert meal["shortfall"].str.startswith("未评估 (meal) not assessed: no facility data").all()
    ind = pd.read_csv(out / "indicators.csv", encoding="utf-8-sig")
    for c in ("meal_covered_60plus", "meal_share_60plus", "meal_uncovered_60plus", "n_meal_facilities"):
        assert ind[c].isna().all(), c  # empty, never 0
    assert ind["elderly_share_15min"].notna().all()  # the other services are assessed as before
    # no failed standard comes from meals: the count of failures excludes what was not assessed
    failed = std[std["passed"].astype(str) == "False"]
    assert "meal_radius" not in set(failed["standard_id"])
    cells = gpd.read_parquet(out / "cells.parquet")
    assert cells["covered_meal"].isna().all() and cells["tt_meal_s"].isna().all()
    assert "meal" not in set(gpd.read_file(out / "gaps.gpkg")["service"])
    page = (out.parent.parent / "maps" / "demo" / "index.html").read_text(encoding="utf-8")
    assert "未评估 / not assessed" in page and "no facility data for 助餐服务" in page


def test_the_check_says_not_assessed(demo_layers: Path, tmp_path: Path) -> None:
    res = check_region(load_config(_region(demo_layers, tmp_path, drop_meals=True)))
    assert res.ok
    assert "[service meal] 助餐服务: NOT ASSESSED (未评估): not assessed: no facility data" in res.text()


def test_a_layer_complete_for_a_kind_makes_none_a_real_shortfall(demo_layers: Path, tmp_path: Path) -> None:
    toml = _region(demo_layers, tmp_path, drop_meals=True)
    text = toml.read_text(encoding="utf-8").replace(
        'name = "health"', 'name = "health"\ncomplete_for = ["meal_point", "central_kitchen"]')
    toml.write_text(text, encoding="utf-8")
    out = run(load_config(toml), build_root=tmp_path / "build")
    info = json.loads((out / "run_info.json").read_text(encoding="utf-8"))
    assert info["not_assessed"] == {}
    std = pd.read_csv(out / "standards.csv", encoding="utf-8-sig")
    meal = std[std["standard_id"] == "meal_radius"]
    assert (meal["passed"].astype(str) == "False").all()  # the data say there is none: it fails


def test_assess_false_in_the_config(demo_layers: Path, tmp_path: Path) -> None:
    out = run(load_config(_region(demo_layers, tmp_path, "[services.health]\nassess = false\n")),
              build_root=tmp_path / "build")
    info = json.loads((out / "run_info.json").read_text(encoding="utf-8"))
    want = "not assessed: services.health.assess = false in the region config"
    assert info["not_assessed"] == {"health": want}
    std = pd.read_csv(out / "standards.csv", encoding="utf-8-sig")
    assert std.loc[std["standard_id"] == "colocation", "passed"].isna().all()  # reads health


def test_a_complex_listing_slots_provides_childcare_everywhere(demo_layers: Path, tmp_path: Path) -> None:
    """The 社区养老服务综合体 of 老城街道 lists 托位数 40: its slots count in childcare_slots (13.98 per 1000,
    not 13.52), it is a childcare source for travel times, and complex_childcare counts it."""
    out = run(load_config(_region(demo_layers, tmp_path)), build_root=tmp_path / "build")
    ind = pd.read_csv(out / "indicators.csv", encoding="utf-8-sig", dtype={"unit_code": str})
    old_town = ind[(ind["level"] == "unit") & (ind["unit_code"] == "519901001000")].iloc[0]
    assert old_town["slots_per_1000"] == pytest.approx(13.98, abs=0.005)
    fac = gpd.read_file(out / "facilities.gpkg")
    cx = fac[(fac["kind"] == "community_complex") & (fac["childcare_slots"] > 0)]
    assert len(cx) and BUILTIN_SERVICES["childcare"].provided_by(cx).all()
    cells = gpd.read_parquet(out / "cells.parquet")
    assert set(cx["fac_id"]) & set(cells["nearest_childcare_id"])  # a source of childcare travel times


def test_unknown_capacity_is_unknown_not_zero() -> None:
    from coverage.indicators import unit_indicators
    from tests.test_indicators import make_region  # the hand-computable 3-unit region

    r = make_region()
    fac = r["facilities"].copy()
    fac.loc[fac["kind"] == "childcare", "childcare_slots"] = np.nan  # 托位数 missing everywhere
    ind = unit_indicators(r["cells"], r["units"], fac, r["cfg"]).set_index("unit_code")
    assert ind.loc["A", "childcare_slots"] != 0 and np.isnan(ind.loc["A", "slots_per_1000"])
    assert ind.loc["C", "slots_per_1000"] == 0  # no childcare facility at all: the data say 0
