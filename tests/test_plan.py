"""Site planning and scenarios on the demo county (issue 12): the plan closes the planted gaps with the
number of sites the README states, what a plan claims equals what a scenario run with its sites finds,
rules and budgets are met, candidate layers are read and accounted like facility layers, bad requests
end in a message before any solve, and `make plan` / `make scenario` work end to end."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest

import coverage
from coverage.config import load_config
from coverage.demo import PLANTED_GAPS
from coverage.errors import ConfigError, PlanningError
from coverage.pipeline import load_baseline, plan_on, run, run_plan, run_scenario
from coverage.plan import PlanRequest

REPO = Path(__file__).resolve().parents[1]
PKG_ROOT = Path(coverage.__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def region(demo_layers: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project folder with layers/demo and its baseline run (build/demo, no maps)."""
    root = tmp_path_factory.mktemp("plan")
    shutil.copytree(demo_layers, root / "layers" / "demo")
    run(load_config(root / "layers" / "demo" / "coverage.toml"), build_root=root / "build", maps_root=None)
    return root


def _cfg(root: Path, extra: str = "", swap: tuple[str, str] = ("", "")) -> object:
    """The demo config, with ``extra`` appended and ``swap[0]`` replaced by ``swap[1]`` (a copy)."""
    path = root / "layers" / "demo" / "coverage.toml"
    if extra or swap[0]:
        text = path.read_text(encoding="utf-8")
        if swap[0]:
            assert swap[0] in text
            text = text.replace(*swap)
        path = root / "layers" / "demo" / "plan-test.toml"
        path.write_text(text + "\n" + extra, encoding="utf-8")
    return load_config(path)


def _plan(root: Path, req: PlanRequest, extra: str = "", swap: tuple[str, str] = ("", "")) -> object:
    cfg = _cfg(root, extra, swap)
    kept = load_baseline(cfg, build_root=root / "build")  # type: ignore[arg-type]
    assert kept is not None, "the baseline must be re-used (the test config differs only in [planning])"
    return plan_on(kept[0], kept[1], req)


def test_elderly_plan_closes_the_river_cluster_and_the_street_without_complex(region: Path) -> None:
    """README: `make plan REGION=demo SERVICE=elderly SITES=1` closes both planted elderly gaps."""
    p = _plan(region, PlanRequest("elderly", sites=1))
    sites = p.sites  # type: ignore[attr-defined]
    assert len(sites) == 1
    s3 = PLANTED_GAPS["river_cluster"]["unit_code"]
    assert sites.iloc[0]["unit_code"] == s3 and sites.iloc[0]["kind"] == "community_complex"
    flips = sites.iloc[0]["standards_flipped"]
    assert f"elderly_circle ({s3})" in flips and f"street_complex ({s3})" in flips
    std = p.standards_after  # type: ignore[attr-defined]
    failed = set(std.loc[std["passed"].astype("boolean") == False, "standard_id"])  # noqa: E712
    assert "elderly_circle" not in failed and "street_complex" not in failed
    assert p.info["optimal"] and p.info["newly_covered_persons"] > 600  # type: ignore[attr-defined]


@pytest.mark.parametrize(("capacitated", "sites"), [(False, 1), (True, 2)])
def test_meal_plan_closes_the_town_beyond_the_radius(region: Path, capacitated: bool, sites: int) -> None:
    """README: one 助餐点 reaches every village of 云岭乡 within 30 min; with its 200 meals a day two are
    needed to serve them all (demand_share meal = 0.1)."""
    p = _plan(region, PlanRequest("meal", sites=sites, capacitated=capacitated))
    info = p.info  # type: ignore[attr-defined]
    assert len(p.sites) == sites  # type: ignore[attr-defined]
    unserved = info["demand_total_persons"] - info["covered_before_persons"] - info["newly_covered_persons"]
    assert unserved == pytest.approx(0.0, abs=1e-6)
    t3 = PLANTED_GAPS["town_beyond_meal_radius"]["unit_code"]
    assert set(p.sites["unit_code"]) == {t3}  # type: ignore[attr-defined]


def test_plan_claim_equals_a_scenario_run_with_its_sites(region: Path) -> None:
    """The people an uncapacitated plan newly covers equal what a scenario with its sites added finds
    (within 0.1 %), through the files: `plan` then `scenario` with plans = [service]."""
    extra = '[scenarios.with_plan]\nplans = ["elderly"]\n'
    cfg = _cfg(region, extra)
    out = run_plan(
        cfg,
        PlanRequest("elderly", sites=2, capacitated=False),  # type: ignore[arg-type]
        build_root=region / "build",
        maps_root=region / "maps",
    )
    info = json.loads((out / "plan.json").read_text(encoding="utf-8"))
    sc = run_scenario(cfg, "with_plan", build_root=region / "build", maps_root=region / "maps")  # type: ignore[arg-type]
    diff = pd.read_csv(sc / "diff.csv", encoding="utf-8-sig", dtype={"unit_code": str})
    d = diff[diff["service"] == "elderly"]
    gained = float((d["uncovered_before"] - d["uncovered_after"]).sum())
    assert gained == pytest.approx(info["newly_covered_persons"], rel=1e-3)
    assert info["newly_covered_persons"] == pytest.approx(info["scenario_newly_covered_persons"], rel=1e-3)
    assert (d["covered_share_change"] >= -1e-12).all()  # adding sites never lowers coverage
    # the outputs: files, the plan and diff pages, the overview's links
    for f in ("sites.csv", "sites.gpkg", "curve.csv", "curve.png", "plan.json", "candidate_rejects.csv"):
        assert (out / f).is_file(), f
    curve = pd.read_csv(out / "curve.csv", encoding="utf-8-sig")
    assert list(curve["sites"]) == [1, 2] and curve["covered_share"].is_monotonic_increasing
    maps = region / "maps" / "demo"
    index = (maps / "index.html").read_text(encoding="utf-8")
    assert 'href="plan_elderly.html"' in index and 'href="scenarios/with_plan/diff.html"' in index
    assert (maps / "plan_elderly.html").is_file() and (
        maps / "scenarios" / "with_plan" / "diff.html"
    ).is_file()
    assert (maps / "scenarios" / "with_plan" / "index.html").is_file()


def test_rule_places_a_complex_in_each_street_that_lacks_one(region: Path) -> None:
    """street_complex: every 街道 without a 社区养老服务综合体 gets one, even where coverage would not
    choose it; the standard flips there."""
    p = _plan(region, PlanRequest("elderly", sites=2, capacitated=False, rules=("street_complex",)))
    s3 = PLANTED_GAPS["street_without_complex"]["unit_code"]
    in_s3 = p.sites[p.sites["unit_code"] == s3]  # type: ignore[attr-defined]
    assert (in_s3["kind"] == "community_complex").any()
    assert any(s3 in r for r in p.info["rules"])  # type: ignore[attr-defined]


def test_budget_is_respected(region: Path) -> None:
    p = _plan(region, PlanRequest("elderly", budget=600.0, capacitated=False))
    assert float(p.sites["cost"].sum()) <= 600.0  # type: ignore[attr-defined]
    assert len(p.sites) >= 1  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("req", "swap", "match"),
    [
        (
            PlanRequest("elderly", sites=1, rules=("street_complex", "childcare_slots")),
            ("", ""),
            "rule 'childcare_slots' is about the childcare service",
        ),
        (PlanRequest("elderly", sites=0), ("", ""), "SITES=0: give at least 1 site"),
        (PlanRequest("elderly"), ("", ""), "give a number of sites"),
        (PlanRequest("elderly", budget=100.0), ("", ""), "BUDGET=100 万元 is below the cheapest menu option"),
        (PlanRequest("health", sites=1), ("", ""), "no \\[\\[planning.menu\\]\\] entry for service 'health'"),
        (PlanRequest("nosuch", sites=1), ("", ""), "SERVICE='nosuch' is not a service"),
        (PlanRequest("childcare", sites=1), ("", ""), "nothing to plan for childcare"),
        (
            PlanRequest("meal", sites=1),
            ("generate_spacing_m = 250", "generate_spacing_m = 0"),
            "no candidate site for meal",
        ),
    ],
)
def test_bad_requests_end_in_a_message_before_any_solve(
    region: Path, req: PlanRequest, swap: tuple[str, str], match: str
) -> None:
    with pytest.raises(PlanningError, match=match):
        _plan(region, req, swap=swap)


def test_infeasible_rules_name_the_unit(region: Path) -> None:
    """Fewer sites than the streets the rule needs: refused, naming the conflict and the fix."""
    cfg_text = (region / "layers" / "demo" / "coverage.toml").read_text(encoding="utf-8")
    path = region / "layers" / "demo" / "rules-test.toml"
    path.write_text(
        cfg_text.replace("colocation_max_m = 100", "colocation_max_m = 100\nstreet_complex_min = 2"),
        encoding="utf-8",
    )
    cfg = load_config(path)
    run(cfg, build_root=region / "build-rules", maps_root=None)
    kept = load_baseline(cfg, build_root=region / "build-rules")
    assert kept is not None
    with pytest.raises(
        PlanningError, match=r"the rules need at least \d+ new sites .* SITES=1: give SITES >="
    ):
        plan_on(kept[0], kept[1], PlanRequest("elderly", sites=1, rules=("street_complex",)))


def test_childcare_slots_rule_meets_the_target_in_every_unit(region: Path) -> None:
    """With a target of 15 托位 per 1000 residents (the demo units have 10-21), every unit short of it
    gets new childcare sites with enough capacity, though no child is beyond the 15-minute circle."""
    text = (region / "layers" / "demo" / "coverage.toml").read_text(encoding="utf-8")
    path = region / "layers" / "demo" / "slots-test.toml"
    target = ("childcare_slots_target_per_1000 = 4.5", "childcare_slots_target_per_1000 = 15")
    path.write_text(text.replace(*target), encoding="utf-8")
    cfg = load_config(path)
    run(cfg, build_root=region / "build-slots", maps_root=None)
    kept = load_baseline(cfg, build_root=region / "build-slots")
    assert kept is not None
    a, res = kept
    p = plan_on(a, res, PlanRequest("childcare", sites=20, rules=("childcare_slots",)))
    rules = p.rules
    assert rules, "the target must leave some unit short"
    pop = a.cells_in.cells.groupby("unit_code")["pop_total"].sum()
    fac = a.facilities[a.facilities["unit_code"].astype(str) != ""]
    have = fac.groupby(fac["unit_code"].astype(str))["childcare_slots"].sum()
    new = p.sites.groupby("unit_code")["capacity"].sum()
    for code in pop.index.astype(str):
        total = float(have.get(code, 0.0)) + float(new.get(code, 0.0))
        assert total >= 15.0 * float(pop[code]) / 1000.0 - 1e-6, code
    short = {r.name.split("(")[1].split(")")[0] for r in rules}
    assert short <= set(p.sites["unit_code"])


def test_menu_entry_without_capacity_is_a_config_error(region: Path) -> None:
    with pytest.raises(ConfigError, match=r"planning.menu\[4\].capacity: missing"):
        _cfg(region, '[[planning.menu]]\nservice = "elderly"\nkind = "daycare_center"\ncost = 1\n')


def test_candidate_layer_rows_are_used_or_reported(region: Path) -> None:
    """A CSV of candidate plots as a municipality sends it (GCJ-02 not needed here: WGS84): a plot
    inside a unit is used, one outside every unit and one with broken coordinates are rejected with
    their reasons; accepted + rejected = rows read. A row typed 日间照料中心 takes only that menu type."""
    from coverage.demo import RIVER_CLUSTER_KM, _lonlat  # the demo's km grid -> lon/lat

    lon_s3, lat_s3 = _lonlat(RIVER_CLUSTER_KM[0], RIVER_CLUSTER_KM[1])  # the river cluster, 滨河街道
    lon_out, lat_out = _lonlat(-0.5, 7.0)  # 500 m west of the county (inside the 1 km study buffer)
    csv = _extra_dir(region) / "plots.csv"
    csv.write_text(
        "名称,类型,建筑面积,经度,纬度\n"
        f"滨河北岸闲置用房,日间照料中心,800,{lon_s3:.6f},{lat_s3:.6f}\n"
        f"县界外地块,,,{lon_out:.6f},{lat_out:.6f}\n"
        "坐标缺失地块,,,,\n",
        encoding="utf-8",
    )
    extra = f'[[planning.candidates]]\nname = "plots"\npath = "{csv}"\nmax_rejected_share = 1.0\n'
    p = _plan(region, PlanRequest("elderly", sites=1, capacitated=False), extra)
    cands = p.candidates  # type: ignore[attr-defined]
    layer = cands.sites[cands.sites["origin"] == "layer plots"]
    assert list(layer["name"]) == ["滨河北岸闲置用房"]
    reasons = " | ".join(cands.rejects["reason"].astype(str))
    assert "outside every unit" in reasons and "coordinates" in reasons
    rep = cands.reports[0]
    assert rep.rows_read == 3 and rep.accepted + sum(rep.rejected.values()) == 3


def test_a_candidate_takes_the_menu_types_of_its_kind_that_fit_its_floor_area() -> None:
    from coverage.config import MenuEntry
    from coverage.plan import _options

    menu = [MenuEntry("elderly", "community_complex", 40, floor_area_m2=1000),
            MenuEntry("elderly", "daycare_center", 20, floor_area_m2=750)]
    sites = pd.DataFrame({"kind": ["candidate_site", "daycare_center", "candidate_site", "candidate_site"],
                          "floor_area_m2": [float("nan"), 800.0, 800.0, 120.0]})
    cand, entry = _options(sites, menu)
    assert list(zip(cand.tolist(), entry.tolist(), strict=True)) == [(0, 0), (0, 1), (1, 1), (2, 1)]


def test_make_plan_and_scenario_end_to_end(demo_layers: Path, tmp_path: Path) -> None:
    """`make plan` and `make scenario` through the Makefile (the baseline is run first when missing)."""
    if shutil.which("make") is None:
        pytest.skip("make not installed")
    shutil.copytree(demo_layers, tmp_path / "layers" / "demo")
    env = {**os.environ, "PYTHONPATH": str(PKG_ROOT)}

    def make(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                "make",
                "-f",
                str(REPO / "Makefile"),
                "-o",
                "setup",
                *args,
                "REGION=demo",
                f"PY={sys.executable}",
            ],
            cwd=tmp_path,
            env=env,
            text=True,
            capture_output=True,
            timeout=900,
        )

    r = make("plan", "SERVICE=elderly", "SITES=1")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "plan: build/demo/plan/elderly (1 sites" in r.stdout
    r = make("scenario", "SCENARIO=elderly_plan_2030")
    assert r.returncode == 0, r.stderr[-2000:]
    rec = json.loads((tmp_path / "build/demo/scenarios/elderly_plan_2030/scenario.json").read_text("utf-8"))
    assert rec["population"]["pop_total_after"] == pytest.approx(1.08 * rec["population"]["pop_total_before"])
    assert any(t["standard_id"] == "childcare_slots_target" for t in rec["targets"])
    r = make("plan", "SERVICE=elderly", "BUDGET=1")
    assert r.returncode == 2 and "below the cheapest menu option" in r.stderr and "Traceback" not in r.stderr
    r = make("scenario", "SCENARIO=nosuch")
    assert r.returncode == 2 and "SCENARIO='nosuch' is not in" in r.stderr
    sites = gpd.read_file(tmp_path / "build/demo/plan/elderly/sites.gpkg", layer="sites")
    assert len(sites) == 1


def test_check_refuses_what_plan_and_scenario_would(region: Path) -> None:
    """One validation path: a candidate layer that is missing, and a scenario removing an unknown id,
    stop `check-layers` with the message `plan` / `scenario` give."""
    from coverage.errors import LayerError
    from coverage.validate import check_region

    extra = ('[[planning.candidates]]\nname = "plots"\npath = "no-such-plots.csv"\n\n'
             '[scenarios.bad]\nremove = ["no-such-id"]\n')
    cfg = _cfg(region, extra)
    report = check_region(cfg)  # type: ignore[arg-type]
    text = report.text()
    assert not report.ok and "no-such-plots.csv" in text and "no facility with fac_id no-such-id" in text
    assert "planning.candidates[0]" in text  # the message names the config table it comes from
    with pytest.raises(LayerError, match="no-such-plots.csv"):
        _plan(region, PlanRequest("elderly", sites=1), extra)
    with pytest.raises(PlanningError, match="no facility with fac_id 'no-such-id'"):
        run_scenario(cfg, "bad", build_root=region / "build", maps_root=None)  # type: ignore[arg-type]


def test_scenario_inputs_add_remove_and_target_year_population(region: Path) -> None:
    """A scenario's facilities (an added layer read like a facility layer, a removed id) and its
    population (per-unit totals of a target year; the units not listed scaled by population_scale)."""
    from coverage.scenario import scenario_inputs

    d = _extra_dir(region)
    (d / "new_meals.csv").write_text("名称,经度,纬度\n新建长寿食堂,{:.6f},{:.6f}\n".format(
        *_demo_lonlat(13.0, 2.0)), encoding="utf-8")
    units = gpd.read_file(region / "layers" / "demo" / "units.geojson")
    first = str(units["code"].iloc[0])
    (d / "pop2030.csv").write_text(f"unit_code,pop_total\n{first},50000\n", encoding="utf-8")
    cfg = _cfg(region, '[scenarios.t]\nremove = ["elderly_childcare:1"]\nyear = 2030\n'
                       f'population_scale = 1.1\npopulation_csv = "{d / "pop2030.csv"}"\n'
                       f'[[scenarios.t.add]]\nname = "new_meals"\npath = "{d / "new_meals.csv"}"\n'
                       'default_kind = "meal_point"\n')
    kept = load_baseline(cfg, build_root=region / "build")  # type: ignore[arg-type]
    assert kept is not None
    a = kept[0]
    if "elderly_childcare:1" not in set(a.facilities["fac_id"]):
        pytest.skip("the demo's fac_id scheme changed")
    fac, cells_in, rejects, record = scenario_inputs(a, cfg, "t", region / "build" / "demo")  # type: ignore[arg-type]
    assert len(fac) == len(a.facilities) and "elderly_childcare:1" not in set(fac["fac_id"])
    assert "新建长寿食堂" in set(fac["name"]) and len(rejects) == 0
    by_unit = cells_in.cells.groupby("unit_code")["pop_total"].sum()
    base = a.cells_in.cells.groupby("unit_code")["pop_total"].sum()
    assert by_unit[first] == pytest.approx(50000.0)
    others = [u for u in base.index if u != first]
    assert (by_unit[others] / base[others]).to_numpy() == pytest.approx(1.1)
    assert record["population"]["units_scaled_by_population_scale"] == sorted(others)  # type: ignore[index]


def _extra_dir(root: Path) -> Path:
    """Files a test adds live outside the region folder: a new file there is a new input of the
    baseline (it would be re-run), unless the config names it as a plan or scenario input."""
    d = root / "extra"
    d.mkdir(exist_ok=True)
    return d


def _demo_lonlat(x_km: float, y_km: float) -> tuple[float, float]:
    from coverage.demo import _lonlat

    lon, lat = _lonlat(x_km, y_km)
    return float(lon), float(lat)
