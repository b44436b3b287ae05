"""End to end on the built-in demo county: every output exists, carries its meaning, and the planted
gaps come out as failed standards or gap areas. Also: a failed run leaves no half-written outputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Point

from coverage.config import load_config
from coverage.demo import EXPECTED_FAILURES, PLANTED_GAPS, build_demo
from coverage.pipeline import run

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    layers = tmp_path_factory.mktemp("layers") / "demo"
    build_demo(layers)
    shutil.copy(REPO / "layers" / "demo" / "coverage.toml", layers / "coverage.toml")
    build_root = tmp_path_factory.mktemp("build")
    out = run(load_config(layers / "coverage.toml"), build_root=build_root)
    return layers, out


def test_outputs_exist_and_state_the_snapping_rule(demo_run: tuple[Path, Path]) -> None:
    _, out = demo_run
    for name in ("network.gpkg", "facilities.gpkg", "facilities.csv", "rejects.csv", "isochrones.gpkg",
                 "cells.parquet", "indicators.gpkg", "indicators.csv", "indicators.xlsx", "standards.csv",
                 "gaps.gpkg", "data_dictionary.csv", "run_info.json"):
        assert (out / name).is_file(), name
    info = json.loads((out / "run_info.json").read_text(encoding="utf-8"))
    assert "nearest road edge" in info["snapping_rule"] and "500 m" in info["snapping_rule"]
    assert info["conservation"]["rel_error"] < 1e-3
    ind = pd.read_csv(out / "indicators.csv", encoding="utf-8-sig")
    assert ind["snap_rule"].str.contains("nearest edge").all()
    assert {"pop_beyond_snap_walk", "n_failed_standards"} <= set(ind.columns)
    assert not list(out.parent.glob("*.tmp-*"))


def test_cells_contract(demo_run: tuple[Path, Path]) -> None:
    _, out = demo_run
    cells = gpd.read_parquet(out / "cells.parquet")
    need = {"cell_id", "unit_code", "pop_total", "pop_60plus", "pop_0to3", "tt_elderly_s", "tt_childcare_s",
            "tt_meal_s", "tt_health_s", "nearest_elderly_id", "covered_elderly_5min", "covered_elderly_15min",
            "covered_childcare_15min", "covered_meal"}
    assert need <= set(cells.columns)
    assert cells.crs.to_epsg() == 4326
    # covered <=> travel time <= threshold (inclusive)
    np.testing.assert_array_equal(cells["covered_elderly_15min"], cells["tt_elderly_s"] <= 900.0)
    # coverage is monotone in the threshold
    assert (cells["covered_elderly_5min"] <= cells["covered_elderly_10min"]).all()
    assert (cells["covered_elderly_10min"] <= cells["covered_elderly_15min"]).all()
    # unit totals in the indicators equal the cells' sums
    ind = gpd.read_file(out / "indicators.gpkg", layer="units")
    by_unit = cells.groupby("unit_code")["pop_total"].sum()
    np.testing.assert_allclose(ind.set_index("unit_code")["pop_total"].loc[by_unit.index], by_unit, rtol=1e-6)


def test_facility_accounting(demo_run: tuple[Path, Path]) -> None:
    _, out = demo_run
    fac = pd.read_csv(out / "facilities.csv", encoding="utf-8-sig")
    assert {"fac_id", "kind", "snap_edge_walk", "snap_frac_walk", "snap_dist_walk_m", "status"} <= set(
        fac.columns)
    assert fac["fac_id"].is_unique
    info = json.loads((out / "run_info.json").read_text(encoding="utf-8"))
    assert info["facilities"]["accepted"] == len(fac)


def test_planted_gaps_are_found(demo_run: tuple[Path, Path]) -> None:
    _, out = demo_run
    std = pd.read_csv(out / "standards.csv", encoding="utf-8-sig", dtype={"unit_code": str})
    failed = std[std["passed"].astype(str) == "False"]

    street = PLANTED_GAPS["street_without_complex"]
    f = failed[(failed["standard_id"] == "street_complex")]
    assert set(f["unit_code"]) == {street["unit_code"]}

    small = PLANTED_GAPS["small_daycare"]
    f = failed[failed["standard_id"] == "community_daycare"]
    assert set(f["unit_code"]) == {small["community_code"]}

    town = PLANTED_GAPS["town_beyond_meal_radius"]
    ind = pd.read_csv(out / "indicators.csv", encoding="utf-8-sig", dtype={"unit_code": str})
    units = ind[ind.get("level", "unit") == "unit"].set_index("unit_code")
    meal_share = units.filter(like="meal").filter(like="share")
    assert meal_share.loc[town["unit_code"]].iloc[0] < 0.1
    assert town["unit_code"] in set(failed[failed["standard_id"] == "meal_radius"]["unit_code"])

    river = PLANTED_GAPS["river_cluster"]
    cells = gpd.read_parquet(out / "cells.parquet")
    centre = gpd.GeoSeries([Point(river["center_lonlat"])], crs="EPSG:4326").to_crs(cells.estimate_utm_crs())
    c = cells.to_crs(centre.crs)
    near = c[c.geometry.centroid.distance(centre.iloc[0]) < river["radius_m"]]
    assert len(near) > 0 and near["pop_60plus"].sum() > 0
    assert not near["covered_elderly_15min"].any()
    gaps = gpd.read_file(out / "gaps.gpkg", layer="gaps")
    eg = gaps[gaps["service"] == "elderly"].to_crs(centre.crs)
    assert eg.intersects(centre.iloc[0].buffer(river["radius_m"])).any()


def test_failed_run_leaves_previous_results(demo_run: tuple[Path, Path], tmp_path: Path) -> None:
    layers, out = demo_run
    bad_dir = tmp_path / "bad"
    shutil.copytree(layers, bad_dir)
    (bad_dir / "pop_total.tif").write_bytes(b"not a tiff")
    build_root = out.parent
    before = sorted(p.name for p in out.iterdir())
    with pytest.raises(Exception, match="pop_total.tif"):
        run(load_config(bad_dir / "coverage.toml"), build_root=build_root)
    assert sorted(p.name for p in out.iterdir()) == before
    assert not list(build_root.glob("*.tmp-*"))


def test_nothing_else_fails(demo_run: tuple[Path, Path]) -> None:
    """The failed checks are exactly the planted gaps and their direct consequences, at every level."""
    _, out = demo_run
    std = pd.read_csv(out / "standards.csv", encoding="utf-8-sig", dtype={"unit_code": str})
    failed = std[std["passed"].astype(str) == "False"]
    got = set(zip(failed["level"], failed["unit_code"], failed["standard_id"], strict=True))
    assert got == set(EXPECTED_FAILURES), (sorted(got - EXPECTED_FAILURES), sorted(EXPECTED_FAILURES - got))
    gaps = gpd.read_file(out / "gaps.gpkg", layer="gaps")
    for name, g in PLANTED_GAPS.items():
        code = g.get("community_code", g["unit_code"])
        as_failure = any(sid == g["standard_id"] and c in (g["unit_code"], code)
                         for _, c, sid in EXPECTED_FAILURES)
        service = g.get("service")
        as_gap = service is not None and (
            gaps[(gaps["service"] == service)]["unit_code"] == g["unit_code"]).any()
        assert as_failure or as_gap, name
    # the river cluster is both a failed check and a gap area; the 乡's meal gap is a gap area too
    assert (gaps[gaps["service"] == "meal"]["unit_code"]
            == PLANTED_GAPS["town_beyond_meal_radius"]["unit_code"]).any()
    # no gap area anywhere else for a service with a coverage standard (health has none: its gap areas
    # are reported for every service of the registry, but none was planted)
    assert set(gaps[gaps["service"] != "health"]["unit_code"]) <= {PLANTED_GAPS["river_cluster"]["unit_code"],
                                      PLANTED_GAPS["town_beyond_meal_radius"]["unit_code"]}


def test_facilities_beyond_the_snap_limit_are_reported_not_dropped(demo_run: tuple[Path, Path],
                                                                  tmp_path: Path) -> None:
    layers, _ = demo_run
    strict = tmp_path / "strict"
    shutil.copytree(layers, strict)
    toml = (strict / "coverage.toml").read_text(encoding="utf-8")
    (strict / "coverage.toml").write_text(
        toml.replace("facility_max_snap_m = 300", "facility_max_snap_m = 25"), encoding="utf-8")
    out = run(load_config(strict / "coverage.toml"), build_root=tmp_path / "build")
    fac = pd.read_csv(out / "facilities.csv", encoding="utf-8-sig")
    info = json.loads((out / "run_info.json").read_text(encoding="utf-8"))
    walk_kinds = {k for s in load_config(strict / "coverage.toml").services.values() if s.mode == "walk"
                  for k in s.kinds}
    far = fac[(fac["snap_dist_walk_m"] > 25) & fac["kind"].isin(walk_kinds)]
    assert len(far) > 0
    assert far["status"].str.match(r"not snapped on walk network: \d+ m from the nearest road > 25 m").all()
    meal = fac[fac["kind"].isin(["meal_point", "central_kitchen"]) & (fac["snap_dist_delivery_m"] > 25)]
    assert meal["status"].str.startswith("not snapped on delivery network").all()
    assert (fac.loc[fac["snap_dist_walk_m"] <= 25, "snap_edge_walk"] >= 0).all()
    assert (far["snap_edge_walk"] == -1).all()
    assert info["facilities"]["accepted"] == len(fac) and info["facilities"]["not_snapped"] == len(
        fac[fac["status"] != "ok"])
