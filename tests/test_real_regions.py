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
