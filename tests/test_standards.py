"""Standards engine: pass/fail and shortfall texts pinned on the hand-computed region."""

from __future__ import annotations

import pandas as pd
import pytest
from test_indicators import make_region

from coverage.indicators import unit_indicators
from coverage.standards import STANDARDS, STANDARDS_COLUMNS, check_standards


@pytest.fixture(scope="module")
def res() -> pd.DataFrame:
    r = make_region()
    uind = unit_indicators(r["cells"], r["units"], r["facilities"], r["cfg"], communities=r["communities"])
    cind = unit_indicators(r["cells"], r["units"], r["facilities"], r["cfg"], level="community",
                           communities=r["communities"])
    return check_standards(uind, r["facilities"], r["cfg"], units=r["units"], communities=r["communities"],
                           community_ind=cind)


def row(res: pd.DataFrame, code: str, sid: str, level: str = "unit") -> pd.Series:
    m = res[(res["unit_code"] == code) & (res["standard_id"] == sid) & (res["level"] == level)]
    assert len(m) == 1, (code, sid, level)
    return m.iloc[0]


@pytest.mark.parametrize("code,sid,level,passed,shortfall", [
    ("A", "elderly_circle", "unit", False, "100 elderly beyond 15 minutes"),
    ("B", "elderly_circle", "unit", True, ""),
    ("C", "elderly_circle", "unit", False, "300 elderly beyond 15 minutes"),
    ("A", "childcare_circle", "unit", False, "20 children 0-3 beyond 15 minutes"),
    ("A", "meal_radius", "unit", False, "100 elderly beyond the 15-minute meal radius"),
    ("C", "meal_radius", "unit", False, "100 elderly beyond the 30-minute meal radius"),
    ("A", "childcare_slots", "unit", False, "short 4 childcare slots (old area standard 8 per 1000)"),
    ("B", "childcare_slots", "unit", True, ""),
    ("C", "childcare_slots", "unit", False, "short 8 childcare slots (old area standard 8 per 1000)"),
    ("A", "elderly_land", "unit", True, ""),
    ("C", "elderly_land", "unit", pd.NA,
     "1 elderly facilities have no land/floor area; known 0 m² of 100 m²"),
    ("A", "street_institution_old", "unit", False, "needs 1 institution of >= 1,500 m²"),
    ("B", "street_institution_new", "unit", True, ""),
    ("A", "street_complex", "unit", False, "needs 1 社区养老服务综合体"),
    ("B", "street_complex", "unit", True, ""),
    ("C", "rural_network", "unit", True, ""),
    ("A", "nursing_bed_share", "unit", False, "short 1 nursing-type beds (10 of 20)"),
    ("C", "nursing_bed_share", "unit", pd.NA, "nursing-bed counts unknown"),
    ("A", "colocation", "unit", True, ""),
    ("B", "colocation", "unit", False,
     "1 of 1 community elderly facilities are more than 100 m from a community health facility"),
    ("C", "colocation", "unit", pd.NA, "no community elderly facilities"),
    ("A", "daycare_coverage", "unit", False, "1 more communities need a day-care centre (1 of 2 have one)"),
    # 社区 of 街道 only: village C1 (of the 镇 C) is not in the denominator
    ("t", "daycare_coverage", "region", False, "2 more communities need a day-care centre (1 of 3 have one)"),
    ("A1", "community_daycare", "community", True, ""),
    ("A2", "community_daycare", "community", False, "needs 1 day-care centre of >= 750 m²"),
    ("B1", "community_daycare", "community", False, "needs 1 day-care centre of >= 750 m²"),
    ("A1", "elderly_circle", "community", False, "50 elderly beyond 15 minutes"),
    ("t", "childcare_slots_target", "region", True, ""),
    ("t", "nursing_bed_share", "region", True, ""),
    ("t", "old_young_complex", "region", False, "needs 2 老幼复合型社区综合体"),
    ("t", "complex_childcare", "region", False, "1 more community complexes need childcare slots"),
    ("C", "beds_per_1000_elderly", "unit", pd.NA, "30 beds for 350 persons 60+ (reported, no standard)"),
])
def test_pass_fail_and_shortfall(res: pd.DataFrame, code: str, sid: str, level: str, passed: object,
                                 shortfall: str) -> None:
    r = row(res, code, sid, level)
    if passed is pd.NA:
        assert pd.isna(r["passed"])
    else:
        assert bool(r["passed"]) is passed
    assert r["shortfall"] == shortfall
    assert r["source"] == STANDARDS[sid].source and "[seeds/" in r["source"]


def test_values_and_shape(res: pd.DataFrame) -> None:
    assert list(res.columns) == STANDARDS_COLUMNS
    assert row(res, "A", "elderly_circle")["value"] == pytest.approx(0.75)
    assert row(res, "t", "childcare_slots_target", "region")["value"] == pytest.approx(8.0)
    assert row(res, "A2", "community_daycare", "community")["parent_code"] == "A"
    # not applicable: no street standards on the 镇, no rural network on 街道, no daycare rows for 村 of a 镇
    assert not ((res["unit_code"] == "C") & res["standard_id"].str.startswith("street_")).any()
    assert not ((res["unit_code"] == "A") & (res["standard_id"] == "rural_network")).any()
    assert not (res["unit_code"] == "C1").loc[res["standard_id"] == "community_daycare"].any()
    checked = set(res["standard_id"])
    assert checked == set(STANDARDS)


def test_relaxed_circle_share_and_no_communities() -> None:
    r = make_region()
    uind = unit_indicators(r["cells"], r["units"], r["facilities"], r["cfg"])
    res = check_standards(uind, r["facilities"], r["cfg"], units=r["units"], circle_required_share=0.75)
    assert bool(row(res, "A", "elderly_circle")["passed"]) is True  # 300 of 400 = 75 %
    assert row(res, "C", "elderly_circle")["shortfall"] == (
        "213 elderly beyond 15 minutes")  # 300 - floor(87.5)
    nd = row(res, "t", "community_daycare", "region")
    assert pd.isna(nd["passed"]) and "units.communities_path" in nd["shortfall"]


def test_village_rules_not_applied_to_villages(res: pd.DataFrame) -> None:
    """Day-care rules and the per-居住区 slots standard concern urban 社区, never a 村 or a 镇's rate."""
    village = res[res["unit_code"] == "C1"]
    assert set(village["standard_id"]) == {"elderly_circle", "childcare_circle", "meal_radius"}
    assert not ((res["unit_code"] == "C") & (res["standard_id"] == "daycare_coverage")).any()
    assert set(res.loc[(res["standard_id"] == "childcare_slots") & (res["level"] == "community"),
                       "unit_code"]) == {"A1", "A2", "B1"}
    assert "村级互助养老服务点" in STANDARDS["daycare_coverage"].title_zh
    assert row(res, "C", "childcare_slots")["shortfall"] == (
        "short 8 childcare slots (old area standard 8 per 1000)")


def test_thresholds_come_from_the_config() -> None:
    import dataclasses

    r = make_region()
    cfg = r["cfg"]
    cfg = dataclasses.replace(cfg, standards=dataclasses.replace(
        cfg.standards, circle_required_share=0.75, old_young_complex_min=0, complex_childcare_share=0.0))
    uind = unit_indicators(r["cells"], r["units"], r["facilities"], cfg)
    res = check_standards(uind, r["facilities"], cfg, units=r["units"])
    assert bool(row(res, "A", "elderly_circle")["passed"]) is True  # 75 % from cfg.standards
    assert row(res, "A", "elderly_circle")["required"] == 0.75
    assert bool(row(res, "t", "old_young_complex", "region")["passed"]) is True
    assert bool(row(res, "t", "complex_childcare", "region")["passed"]) is True
    # an explicit keyword still overrides the config
    res = check_standards(uind, r["facilities"], cfg, units=r["units"], circle_required_share=1.0)
    assert bool(row(res, "A", "elderly_circle")["passed"]) is False


def test_unknown_childcare_capacity_is_not_checkable_rather_than_failed() -> None:
    """A childcare facility without 托位数 (e.g. an OSM kindergarten) makes a shortfall uncertain."""
    import numpy as np

    r = make_region()
    fac = r["facilities"].copy()
    cc = fac["kind"].isin(r["cfg"].services["childcare"].kinds)
    fac.loc[cc, "childcare_slots"] = np.nan
    uind = unit_indicators(r["cells"], r["units"], fac, r["cfg"], communities=r["communities"])
    res = check_standards(uind, fac, r["cfg"], units=r["units"], communities=r["communities"])
    s = row(res, "A", "childcare_slots")
    assert s["passed"] is pd.NA
    # every childcare facility of A lacks a 托位数: the slots are unknown, not 0 (and not a shortfall)
    assert s["shortfall"] == "托位数 (capacity) unknown for all 1 childcare facilities"
    assert np.isnan(uind.set_index("unit_code").loc["A", "slots_per_1000"])
    t = row(res, "t", "childcare_slots_target", "region")
    assert t["passed"] is pd.NA and "no 托位数" in t["shortfall"]


def test_a_target_set_names_its_plan_and_year(tmp_path) -> None:
    """[standards] targets = "chengdu_2025" sets 4.74 slots per 1000 and 60 % nursing beds, and the
    standards rows that check them name the plan and the year; giving a value by hand as well is refused."""
    import dataclasses
    from pathlib import Path

    from coverage.config import ConfigError, load_config

    base = ('[region]\nname = "t"\n[units]\npath = "u.geojson"\n[network]\npath = "r.osm"\n'
            '[population]\ntotal = "p.tif"\n')
    p = Path(tmp_path) / "coverage.toml"
    p.write_text(base + '[standards]\ntargets = "chengdu_2025"\n', encoding="utf-8")
    cfg = load_config(p)
    assert (cfg.standards.childcare_slots_target_per_1000, cfg.standards.nursing_bed_share) == (4.74, 0.60)
    p.write_text(base + '[standards]\ntargets = "chengdu_2025"\nnursing_bed_share = 0.5\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"standards\.nursing_bed_share: given together with "
                                          r"standards\.targets"):
        load_config(p)
    p.write_text(base + '[standards]\ntargets = "mars_2030"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"standards\.targets = 'mars_2030': expected one of wanyuan_2025"):
        load_config(p)
    r = make_region()
    r_cfg = dataclasses.replace(r["cfg"], standards=cfg.standards)
    uind = unit_indicators(r["cells"], r["units"], r["facilities"], r_cfg)
    res = check_standards(uind, r["facilities"], r_cfg, units=r["units"])
    t = row(res, "t", "childcare_slots_target", "region")
    assert t["required"] == 4.74 and "成都市一老一小整体解决方案 (2025年目标" in t["source"]
    assert res[res["standard_id"] == "nursing_bed_share"]["source"].str.contains("2025年目标").all()
    assert not res[res["standard_id"] == "elderly_land"]["source"].str.contains("年目标").any()
