"""Real regions end to end, read in place from ../shared/data (skipped with a reason when absent).

- Comoros: OSM roads, the WorldPop 2020 raster, the 3 islands (admin_level 4) and health facilities
  and kindergartens from the OSM file; population conserved against the raster.
- Liechtenstein: no raster; the 11 municipalities' totals (census.csv, cited there) spread by
  residential road length, labelled as an estimate; kindergartens and nursing homes from OSM.
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from conftest import shared_file

from coverage.config import load_config
from coverage.pipeline import run

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def comoros(tmp_path_factory: pytest.TempPathFactory) -> Path:
    shared_file("comoros", "osm", "comores-latest-2021-04-08.osm.pbf")
    shared_file("comoros", "population", "com_ppp_2020_UNadj.tif")
    return run(load_config(REPO / "layers" / "comoros" / "coverage.toml"),
               build_root=tmp_path_factory.mktemp("build"))


@pytest.fixture(scope="module")
def liechtenstein(tmp_path_factory: pytest.TempPathFactory) -> Path:
    shared_file("liechtenstein", "osm", "liechtenstein-latest-2024-03-04.osm.pbf")
    return run(load_config(REPO / "layers" / "liechtenstein" / "coverage.toml"),
               build_root=tmp_path_factory.mktemp("build"))


def test_comoros_population_conserved_against_raster(comoros: Path) -> None:
    info = json.loads((comoros / "run_info.json").read_text(encoding="utf-8"))
    assert info["conservation"]["rel_error"] < 1e-3
    ind = gpd.read_file(comoros / "indicators.gpkg", layer="units")
    assert sorted(ind["unit_code"]) == ["KM-A", "KM-G", "KM-M"]
    # the units hold every person of the raster except those in cells touching no island (sea, Mayotte)
    with rasterio.open(shared_file("comoros", "population", "com_ppp_2020_UNadj.tif")) as src:
        a = src.read(1, masked=True)
    raster_total = float(a.filled(0).clip(min=0).sum())
    assert 0.95 * raster_total < ind["pop_total"].sum() <= raster_total
    assert ind["pop_total"].sum() == pytest.approx(info["conservation"]["raster_total_touching"], rel=1e-3)
    # every component kept, fragments reported
    assert info["networks"]["walk"]["n_components_kept"] >= 3  # three islands, never only the largest


def test_comoros_snapping_and_coverage_are_stated(comoros: Path) -> None:
    ind = gpd.read_file(comoros / "indicators.gpkg", layer="units")
    # rural raster cells lie far from roads: the population beyond the snap limit is reported per unit
    assert (ind["pop_beyond_snap_walk"] > 0).all()
    assert ind["snap_rule"].str.contains("500 m").all()
    fac = pd.read_csv(comoros / "facilities.csv", encoding="utf-8-sig")
    assert (fac["kind"].isin(["health_center", "hospital"])).sum() >= 30
    assert (fac["kind"] == "kindergarten").sum() == 5
    cells = gpd.read_parquet(comoros / "cells.parquet")
    hc = cells["tt_health_s"].to_numpy()
    assert np.isfinite(hc).any() and (~np.isfinite(hc)).any()


def test_liechtenstein_census_spread_is_an_estimate_with_cited_totals(liechtenstein: Path) -> None:
    info = json.loads((liechtenstein / "run_info.json").read_text(encoding="utf-8"))
    assert "ESTIMATE" in info["population_method"]
    ind = gpd.read_file(liechtenstein / "indicators.gpkg", layer="units").set_index("unit_code")
    census = pd.read_csv(REPO / "layers" / "liechtenstein" / "census.csv").set_index("unit_code")
    assert len(ind) == 11
    np.testing.assert_allclose(ind.loc[census.index, "pop_total"], census["pop_total"], rtol=1e-6)
    assert ind["pop_total"].sum() == pytest.approx(38749)


def test_liechtenstein_facilities_from_osm(liechtenstein: Path) -> None:
    fac = pd.read_csv(liechtenstein / "facilities.csv", encoding="utf-8-sig")
    kinds = fac["kind"].value_counts()
    assert kinds.get("kindergarten", 0) >= 15
    assert kinds.get("elderly_institution", 0) >= 2
    cells = gpd.read_parquet(liechtenstein / "cells.parquet")
    share = (cells["pop_0to3"] * cells["covered_childcare_15min"]).sum() / cells["pop_0to3"].sum()
    assert 0.2 < share < 1.0


def test_comoros_population_outside_every_island_is_measured() -> None:
    """WorldPop puts people in 2,553 cells wholly outside the OSM island polygons (46-480 m offshore):
    they are reported (people, cells, nearest island, distance range), units + outside == the window's
    total, and attach_outside_m = 500 m / 1000 m attaches them to their island."""
    import dataclasses

    from coverage.layers import read_units
    from coverage.population import build_cells

    tif = shared_file("comoros", "population", "com_ppp_2020_UNadj.tif")
    shared_file("comoros", "osm", "comores-latest-2021-04-08.osm.pbf")
    cfg = load_config(REPO / "layers" / "comoros" / "coverage.toml")
    units = read_units(cfg).units
    with rasterio.open(tif) as src:
        raster_total = float(src.read(1, masked=True).filled(0).clip(min=0).sum())
    figures = {}
    for attach_m in (0.0, 500.0, 1000.0):
        pop = dataclasses.replace(cfg.population, attach_outside_m=attach_m)
        res = build_cells(pop, units=units, metric_crs=cfg.region.metric_crs)
        cons, out = res.conservation, res.outside
        # the identity: nothing vanishes between the raster window and the units
        assert cons["units_total"] + cons["outside_total"] == pytest.approx(cons["window_total"], rel=1e-9)
        assert res.cells["pop_total"].sum() == pytest.approx(cons["units_total"], rel=1e-9)
        assert out.people == pytest.approx(cons["outside_total"])
        figures[attach_m] = out
        print(f"\nComoros, attach_outside_m = {attach_m:g}: window {cons['window_total']:,.0f} persons "
              f"({res.shape[0]}x{res.shape[1]} cells), units {cons['units_total']:,.0f}; {out.text()}")
        print(out.by_nearest_unit.to_string(index=False))
    off = figures[0.0]
    # the units' bounding box misses the raster's top row (7 populated cells, 40 persons, off Ngazidja's
    # northern tip): the window is the bounding box, so 2,553 cells / 23,397 persons (the 2,560 /
    # 23,437 counted the whole raster)
    assert off.cells == 2553 and off.people == pytest.approx(23_397, abs=1)
    assert off.share_of_raster_window == pytest.approx(0.0269, abs=5e-4)
    by = off.by_nearest_unit.set_index("unit_code")
    assert sorted(by.index) == ["KM-A", "KM-G", "KM-M"]
    assert by["cells"].sum() == off.cells and by["people"].sum() == pytest.approx(off.people)
    assert by["distance_min_m"].min() > 40 and by["distance_max_m"].max() < 500
    # every offshore person lies within 500 m of an island: 500 m (and 1000 m, a wider window) attach all
    # of them, and the window becomes the whole raster
    for attach_m in (500.0, 1000.0):
        att = figures[attach_m]
        assert att.people == 0 and att.cells == 0
        assert att.attached_cells == 2560 and att.attached_people == pytest.approx(23_437, abs=1)
        assert att.window_people == pytest.approx(raster_total, rel=1e-6)


def test_comoros_outside_population_reaches_run_info_and_the_overview(comoros: Path) -> None:
    info = json.loads((comoros / "run_info.json").read_text(encoding="utf-8"))
    out = info["population_outside"]
    assert out["people"] > 20000 and out["cells"] > 2000
    assert out["text"].startswith("outside every unit: ") and "KM-M" in out["text"]
    assert sorted(info["not_assessed"]) == ["elderly", "meal"]  # OSM maps no elderly care, no meal points
