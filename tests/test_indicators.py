"""Indicators on a hand-computable 3-unit region, properties, and Chengdu's table 2."""

from __future__ import annotations

import csv
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import Point, box

from coverage.config import (
    Config,
    NetworkConfig,
    PopulationConfig,
    RegionConfig,
    UnitsConfig,
)
from coverage.indicators import add_covered_flags, data_dictionary_frame, slots_per_1000, unit_indicators
from coverage.services import BUILTIN_SERVICES

CRS = "EPSG:32649"
INF = np.inf
FIXTURES = Path(__file__).parent / "fixtures"


def make_cfg() -> Config:
    return Config(path=Path("coverage.toml"), region=RegionConfig(name="t"),
                  units=UnitsConfig(path=Path("u")), network=NetworkConfig(),
                  population=PopulationConfig(total=Path("p")), facilities=(),
                  services=dict(BUILTIN_SERVICES))


# (row, col, pop_total, pop_60plus, pop_0to3, tt_elderly_s, tt_childcare_s, tt_meal_s, tt_health_s)
CELLS = [
    (0, 0, 1000, 200, 30, 200, 600, 800, 300),  # unit A (街道 城区 old)
    (0, 1, 1000, 100, 20, 700, 1000, 900, 300),
    (1, 0, 500, 50, 10, 950, 800, 1000, INF),
    (1, 1, 500, 50, 0, INF, INF, INF, INF),
    (0, 2, 2000, 300, 40, 100, 100, 100, 100),  # unit B (街道 城区 new)
    (0, 3, 2000, 100, 40, 300, 300, 300, 300),
    (1, 2, 1000, 100, 20, 500, 500, 500, 500),
    (1, 3, 1000, 0, 0, INF, INF, INF, INF),
    (0, 4, 400, 200, 5, 1200, 2000, 1700, INF),  # unit C (镇 郊区 old)
    (0, 5, 400, 100, 5, INF, INF, 1900, INF),
    (1, 4, 100, 0, 0, INF, INF, INF, INF),
    (1, 5, 100, 50, 0, 300, INF, 1800, INF),
]


def make_region() -> dict:
    units = gpd.GeoDataFrame({
        "unit_code": ["A", "B", "C"], "unit_name": ["甲街道", "乙街道", "丙镇"],
        "unit_type": ["街道", "街道", "镇"],
        "unit_class": ["城区", "城区", "郊区"], "area_type": ["old", "new", "old"],
        "geometry": [box(0, 0, 200, 200), box(200, 0, 400, 200), box(400, 0, 600, 200)]}, crs=CRS)
    communities = gpd.GeoDataFrame({
        "community_code": ["A1", "A2", "B1", "C1"], "community_name": ["a1", "a2", "b1", "c1"],
        "unit_code": ["A", "A", "B", "C"],
        "geometry": [box(0, 0, 100, 200), box(100, 0, 200, 200), box(200, 0, 400, 200),
                     box(400, 0, 600, 200)]},
        crs=CRS)
    df = pd.DataFrame(CELLS, columns=["row", "col", "pop_total", "pop_60plus", "pop_0to3", "tt_elderly_s",
                                      "tt_childcare_s", "tt_meal_s", "tt_health_s"])
    df["cell_id"] = df["row"] * 6 + df["col"]
    df["unit_code"] = np.array(["A", "B", "C"])[df["col"] // 2]
    df["community_code"] = np.array(["A1", "A2", "B1", "B1", "C1", "C1"])[df["col"]]
    df["weight"] = 1.0
    df["x"] = df["col"] * 100.0 + 50
    df["y"] = 200.0 - (df["row"] * 100.0 + 50)
    cells = gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(df["x"], df["y"]), crs=CRS)
    nan = np.nan
    fac = pd.DataFrame([
        # fac_id, kind, beds, nursing, slots, floor, land, x, y
        ("f1", "daycare_center", 20, 10, nan, 800, nan, 50, 150),
        ("f2", "childcare", nan, nan, 20, nan, nan, 150, 50),
        ("f3", "health_center", nan, nan, nan, nan, nan, 100, 150),
        ("f4", "community_complex", 100, 70, nan, 3500, 2000, 300, 100),
        ("f5", "childcare", nan, nan, 60, nan, nan, 250, 150),
        ("f6", "meal_point", nan, nan, nan, nan, nan, 350, 50),
        ("f7", "town_regional_center", 30, nan, nan, nan, nan, 500, 100),
    ], columns=["fac_id", "kind", "beds", "nursing_beds", "childcare_slots", "floor_area_m2", "land_area_m2",
                "x", "y"])
    fac["name"] = fac["fac_id"]
    facilities = gpd.GeoDataFrame(fac.drop(columns=["x", "y"]),
                                  geometry=gpd.points_from_xy(fac["x"], fac["y"]), crs=CRS)
    return {"cells": cells, "units": units, "communities": communities, "facilities": facilities,
            "cfg": make_cfg()}


@pytest.fixture(scope="module")
def region() -> dict:
    return make_region()


@pytest.fixture(scope="module")
def ind(region: dict) -> pd.DataFrame:
    r = region
    return unit_indicators(r["cells"], r["units"], r["facilities"], r["cfg"],
                           communities=r["communities"]).set_index("unit_code")


def test_population_and_elderly_circle(ind: pd.DataFrame) -> None:
    assert ind["pop_total"].to_dict() == {"A": 3000, "B": 6000, "C": 1000}
    assert ind["pop_60plus"].to_dict() == {"A": 400, "B": 500, "C": 350}
    assert ind["pop_0to3"].to_dict() == {"A": 60, "B": 100, "C": 10}
    assert ind["elderly_covered_5min"].to_dict() == {"A": 200, "B": 400, "C": 50}
    assert ind["elderly_covered_10min"].to_dict() == {"A": 200, "B": 500, "C": 50}
    assert ind["elderly_covered_15min"].to_dict() == {"A": 300, "B": 500, "C": 50}
    assert ind["elderly_uncovered_15min"].to_dict() == {"A": 100, "B": 0, "C": 300}
    assert ind.loc["A", "elderly_share_15min"] == pytest.approx(0.75)


def test_meal_uses_the_units_own_rule_inclusive(ind: pd.DataFrame) -> None:
    assert ind["meal_threshold_min"].to_dict() == {"A": 15, "B": 15, "C": 30}
    # A: 800 s and 900 s (= 15 min, inclusive) covered; C: 1700 s and 1800 s covered, 1900 s not
    assert ind["meal_covered_60plus"].to_dict() == {"A": 300, "B": 500, "C": 250}
    assert ind.loc["C", "meal_share_60plus"] == pytest.approx(250 / 350)


def test_childcare_coverage_and_slots(ind: pd.DataFrame) -> None:
    assert ind["childcare_covered_0to3_15min"].to_dict() == {"A": 40, "B": 100, "C": 0}
    assert ind["childcare_slots"].to_dict() == {"A": 20, "B": 60, "C": 0}
    assert ind.loc["A", "slots_per_1000"] == pytest.approx(20 / 3)
    assert ind["slots_standard_per_1000"].to_dict() == {"A": 8, "B": 10, "C": 8}
    assert ind["slots_shortfall"].to_dict() == {"A": 4, "B": 0, "C": 8}
    assert (ind["slots_target_per_1000"] == 4.5).all()


def test_beds_area_and_2sfca(ind: pd.DataFrame) -> None:
    assert ind["beds"].to_dict() == {"A": 20, "B": 100, "C": 30}
    assert ind.loc["A", "nursing_bed_share"] == pytest.approx(0.5)
    assert ind.loc["B", "nursing_bed_share"] == pytest.approx(0.7)
    assert np.isnan(ind.loc["C", "nursing_bed_share"])
    assert ind.loc["C", "beds_per_1000_60plus"] == pytest.approx(30 / 350 * 1000)
    assert ind["elderly_area_field"].to_dict() == {"A": "floor_area_m2", "B": "land_area_m2", "C": ""}
    assert ind.loc["B", "elderly_area_m2_per_resident"] == pytest.approx(2000 / 6000)
    assert ind.loc["C", "n_elderly_area_unknown"] == 1
    # every cell reaches every site within 900 m straight-line: 150 beds / 1250 elderly, 80 slots / 170
    np.testing.assert_allclose(ind["fca_beds_per_1000_60plus"], 150 / 1250 * 1000)
    np.testing.assert_allclose(ind["fca_slots_per_1000_0to3"], 80 / 170 * 1000)
    assert (ind["fca_beds_gauss_per_1000_60plus"] > 0).all()
    assert (ind["fca_cost_basis_elderly"] == "straight-line").all()


def test_failed_standard_counts(ind: pd.DataFrame) -> None:
    # A: elderly/childcare/meal circles, slots, street institution, street complex, daycare coverage,
    # nursing-bed share 50 % < 55 %; B: colocation, daycare coverage; C: 3 circles, slots (day-care
    # coverage concerns urban 社区 only and does not apply to a 镇)
    assert ind["n_failed_standards"].to_dict() == {"A": 8, "B": 2, "C": 4}


def test_community_level(region: dict) -> None:
    r = region
    com = unit_indicators(r["cells"], r["units"], r["facilities"], r["cfg"], level="community",
                          communities=r["communities"]).set_index("community_code")
    assert com["pop_60plus"].to_dict() == {"A1": 250, "A2": 150, "B1": 500, "C1": 350}
    assert com["elderly_covered_15min"].to_dict() == {"A1": 200, "A2": 100, "B1": 500, "C1": 50}
    assert com.loc["A1", "unit_code"] == "A" and com.loc["C1", "unit_class"] == "郊区"
    assert com["childcare_slots"].to_dict() == {"A1": 0, "A2": 20, "B1": 60, "C1": 0}
    # A1: elderly circle, meal radius, slots fail; childcare circle and its 800 m² day-care centre pass
    assert com.loc["A1", "n_failed_standards"] == 3


def test_covered_flags(region: dict) -> None:
    out = add_covered_flags(region["cells"], region["units"], BUILTIN_SERVICES)
    assert out["covered_elderly_15min"].tolist()[:4] == [True, True, False, False]
    assert out["covered_meal"].tolist()[8:] == [True, False, False, True]
    assert out["meal_threshold_min"].tolist()[::4] == [15, 15, 30]
    assert "covered_meal" not in region["cells"].columns  # input not mutated
    bad = region["cells"].drop(columns=["tt_meal_s"]).assign(unit_code="Z")
    with pytest.raises(ValueError, match=r"tt_meal_s missing.*unit_code \['Z'\] not in the units table"):
        add_covered_flags(bad, region["units"], BUILTIN_SERVICES)


def test_input_problems_raised_once(region: dict) -> None:
    r = region
    with pytest.raises(ValueError,
                       match=r"facilities: missing column\(s\) \['beds'\].*needs the communities"):
        unit_indicators(r["cells"], r["units"], r["facilities"].drop(columns=["beds"]), r["cfg"],
                        level="community")


def test_data_dictionary_covers_every_column(ind: pd.DataFrame, region: dict) -> None:
    dd = data_dictionary_frame(region["cfg"])
    cols = set(ind.reset_index().columns) | set(
        add_covered_flags(region["cells"], region["units"], BUILTIN_SERVICES).columns)
    missing = cols - set(dd["column"])
    assert not missing
    assert list(dd.columns) == ["column", "label_zh", "unit", "description", "source"]


@settings(max_examples=25, deadline=None)
@given(scale=st.lists(st.floats(0.1, 1.0), min_size=12, max_size=12), extra=st.floats(0, 20))
def test_faster_times_and_longer_thresholds_never_lower_coverage(scale: list[float], extra: float) -> None:
    r = make_region()
    base = unit_indicators(r["cells"], r["units"], r["facilities"], r["cfg"]).set_index("unit_code")
    faster = r["cells"].copy()
    for c in ("tt_elderly_s", "tt_childcare_s", "tt_meal_s"):
        faster[c] = faster[c] * np.array(scale)
    more = unit_indicators(faster, r["units"], r["facilities"], r["cfg"]).set_index("unit_code")
    for c in ("elderly_covered_15min", "meal_covered_60plus", "childcare_covered_0to3_15min"):
        assert (more[c] >= base[c]).all()
    cfg = make_cfg()
    from dataclasses import replace
    svc = dict(cfg.services)
    svc["elderly"] = replace(svc["elderly"], thresholds_min=(15.0, 15.0 + extra))
    longer = unit_indicators(r["cells"], r["units"], r["facilities"], replace(cfg, services=svc))
    assert (longer[f"elderly_covered_{15 + extra:g}min"].to_numpy()
            >= longer["elderly_covered_15min"].to_numpy()).all()


def test_more_facilities_never_lower_2sfca_reach_or_slots() -> None:
    r = make_region()
    base = unit_indicators(r["cells"], r["units"], r["facilities"], r["cfg"]).set_index("unit_code")
    extra = gpd.GeoDataFrame({"fac_id": ["g"], "kind": ["childcare"], "beds": [np.nan],
                              "nursing_beds": [np.nan], "childcare_slots": [40.0], "floor_area_m2": [np.nan],
                              "land_area_m2": [np.nan], "name": ["g"]}, geometry=[Point(550, 50)], crs=CRS)
    more = unit_indicators(r["cells"], r["units"], pd.concat([r["facilities"], extra]),
                           r["cfg"]).set_index("unit_code")
    assert (more["childcare_slots"] >= base["childcare_slots"]).all()
    assert (more["fca_slots_per_1000_0to3"] >= base["fca_slots_per_1000_0to3"] - 1e-9).all()


# ---------------------------------------------------------------------------------------------
# Chengdu table 2 (seeds/003): slots per 1000 residents per district
# ---------------------------------------------------------------------------------------------

def _table2() -> list[dict[str, str]]:
    with open(FIXTURES / "chengdu_table2.csv", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_chengdu_table2_fixture_is_consistent() -> None:
    rows = _table2()
    assert len(rows) == 24  # 23 districts + 合计
    body, total = rows[:-1], rows[-1]
    assert total["district"] == "合计"
    assert round(sum(float(r["pop_2025_10k"]) for r in body), 2) == float(total["pop_2025_10k"])
    assert sum(int(r["childcare_slots_2025"]) for r in body) == int(total["childcare_slots_2025"])


def test_chengdu_table2_slots_per_1000_reproduced_through_unit_indicators() -> None:
    rows = _table2()
    n = len(rows)
    units = gpd.GeoDataFrame({
        "unit_code": [f"d{i}" for i in range(n)], "unit_name": [r["district"] for r in rows],
        "unit_type": ["街道"] * n, "unit_class": ["城区"] * n, "area_type": ["old"] * n,
        "geometry": [box(i * 1000, 0, i * 1000 + 1000, 1000) for i in range(n)]}, crs=CRS)
    pop = np.array([float(r["pop_2025_10k"]) * 1e4 for r in rows])
    cells = gpd.GeoDataFrame({"cell_id": np.arange(n), "row": 0, "col": np.arange(n),
                              "unit_code": units["unit_code"],
                              "community_code": "", "pop_total": pop, "pop_60plus": 0.0, "pop_0to3": 0.0,
                              "tt_elderly_s": INF, "tt_childcare_s": INF, "tt_meal_s": INF,
                              "tt_health_s": INF, "x": np.arange(n) * 1000.0 + 500, "y": 500.0},
                             geometry=[Point(i * 1000 + 500, 500) for i in range(n)], crs=CRS)
    fac = gpd.GeoDataFrame({"fac_id": [f"c{i}" for i in range(n)], "kind": "childcare", "beds": np.nan,
                            "nursing_beds": np.nan,
                            "childcare_slots": [float(r["childcare_slots_2025"]) for r in rows],
                            "floor_area_m2": np.nan, "land_area_m2": np.nan, "name": "x"},
                           geometry=[Point(i * 1000 + 300, 300) for i in range(n)], crs=CRS)
    out = unit_indicators(cells, units, fac, make_cfg())
    got = {name: f"{v:.2f}" for name, v in zip(out["unit_name"], out["slots_per_1000"], strict=True)}
    printed = {r["district"]: r["slots_per_1000_printed"] for r in rows}
    mismatches = {k: (got[k], printed[k]) for k in printed if got[k] != printed[k]}
    # 温江区: 5550 / 1,237,300 * 1000 = 4.4856 -> 4.49 (round) or 4.48 (truncate); printed 4.50. Its
    # population and slots agree with the 合计 sums, so the printed ratio is not derivable from its
    # own row (it looks like the 4.5 floor typed in); every other row, and 合计 4.74, reproduce.
    assert mismatches == {"温江区": ("4.49", "4.50")}
    assert slots_per_1000(5550, 1237300) == pytest.approx(4.4856, abs=1e-4)


def test_indicators_and_standards_in_one_pass_equal_the_separate_calls(region: dict) -> None:
    from coverage.indicators import indicators_and_standards
    from coverage.standards import check_standards

    r = region
    unit_ind, comm_ind, std = indicators_and_standards(r["cells"], r["units"], r["facilities"], r["cfg"],
                                                       communities=r["communities"])
    sep_unit = unit_indicators(r["cells"], r["units"], r["facilities"], r["cfg"],
                               communities=r["communities"])
    sep_comm = unit_indicators(r["cells"], r["units"], r["facilities"], r["cfg"], level="community",
                               communities=r["communities"])
    pd.testing.assert_frame_equal(pd.DataFrame(unit_ind.drop(columns="geometry")),
                                  pd.DataFrame(sep_unit.drop(columns="geometry")))
    assert comm_ind is not None
    pd.testing.assert_frame_equal(pd.DataFrame(comm_ind.drop(columns="geometry")),
                                  pd.DataFrame(sep_comm.drop(columns="geometry")))
    sep_std = check_standards(sep_unit, r["facilities"], r["cfg"], units=r["units"],
                              communities=r["communities"], community_ind=sep_comm)
    pd.testing.assert_frame_equal(std.reset_index(drop=True), sep_std.reset_index(drop=True))
