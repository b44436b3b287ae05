"""Typed stages on the demo county: a service's own speed, a scenario re-run from the travel-time
stage with other facilities, and a service and facility kind added by config alone."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Point

from coverage import access
from coverage.config import load_config
from coverage.pipeline import Analysis, analyse, evaluate, run, with_facilities

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def analysis(demo_layers: Path) -> Analysis:
    return analyse(load_config(demo_layers / "coverage.toml"))


def test_a_service_walks_at_its_own_speed(analysis: Analysis) -> None:
    a = analysis
    cfg = dataclasses.replace(a.cfg, services={**a.cfg.services, "childcare": dataclasses.replace(
        a.cfg.services["childcare"], speed_mps=1.25)})
    net = access.service_network(cfg.services["childcare"], a.networks, cfg)
    walk = a.networks["walk"]
    assert np.allclose(net.edge_time_s, walk.edge_length_m / 1.25)
    assert access.service_network(cfg.services["elderly"], a.networks, cfg) is walk  # the mode's speed
    fast = access.travel_times(cfg, a.networks, a.cell_snaps, a.facilities, a.fac_snaps).by_service
    slow = a.times.by_service
    t1, t0 = fast["childcare"].time_s, slow["childcare"].time_s
    both = np.isfinite(t0)
    assert np.array_equal(np.isfinite(t1), both)
    assert (t1[both] <= t0[both] + 1e-9).all() and (t1[both] < t0[both] - 1.0).mean() > 0.5
    assert np.array_equal(fast["elderly"].time_s, slow["elderly"].time_s)


def test_scenario_reuses_networks_population_and_cell_snaps(analysis: Analysis) -> None:
    a = analysis
    same = with_facilities(a, a.fac_layers.facilities)
    assert same.networks is a.networks and same.cells_in is a.cells_in and same.cell_snaps is a.cell_snaps
    for sid, st in a.times.by_service.items():
        assert np.array_equal(same.times.by_service[sid].time_s, st.time_s)
    # one more day-care centre in the river cluster's street: elderly coverage never falls, and rises
    river = a.facilities[a.facilities["kind"] == "daycare_center"].iloc[[0]].copy()
    cells = a.cells_in.cells
    worst = np.argmax(a.times.by_service["elderly"].time_s[a.cell_snaps.piece_to_cell]
                      * (cells["pop_60plus"].to_numpy() > 0))
    river["geometry"] = [Point(cells["x"].iloc[worst], cells["y"].iloc[worst])]
    river["fac_id"] = "scenario:1"
    more = with_facilities(a, pd.concat([a.fac_layers.facilities, river.drop(
        columns=[c for c in river.columns if c not in a.fac_layers.facilities.columns])], ignore_index=True))
    t_more, t_base = more.times.by_service["elderly"].time_s, a.times.by_service["elderly"].time_s
    assert (t_more <= t_base).all() and (t_more < t_base).any()
    r0, r1 = evaluate(a), evaluate(more)
    col = "elderly_covered_15min"
    assert (r1.unit_ind[col].to_numpy() >= r0.unit_ind[col].to_numpy() - 1e-9).all()
    assert r1.unit_ind[col].sum() > r0.unit_ind[col].sum()


def test_a_kind_and_a_service_added_by_config_alone(demo_layers: Path, tmp_path: Path) -> None:
    """One [kinds.x] and one [services.x] entry plus a facility file: the run computes the service's
    travel times, isochrones, indicators, gaps and dictionary rows, touching no module."""
    layers = tmp_path / "pharm"
    shutil.copytree(demo_layers, layers)
    cells = gpd.read_file(layers / "units.geojson").to_crs(4326).geometry.representative_point()
    pd.DataFrame({"名称": ["中心药房", "乡药店"], "经度": cells.x.to_numpy()[:2],
                  "纬度": cells.y.to_numpy()[:2], "类型": ["药店", "药店"]}).to_csv(
        layers / "pharmacies.csv", index=False, encoding="utf-8")
    toml = (layers / "coverage.toml").read_text(encoding="utf-8")
    toml = toml.replace('name = "demo"', 'name = "pharm"', 1) + """
[kinds.pharmacy]
label_zh = "药店"
label_en = "pharmacy"
color = "#00aa88"

[services.pharmacy]
label_zh = "药店服务"
label_en = "pharmacies"
kinds = ["pharmacy"]
thresholds_min = [10, 20]
demand_col = "pop_60plus"
color = "#006d2c"

[[facilities]]
name = "pharmacies"
path = "pharmacies.csv"
coords = "wgs84"
default_kind = "pharmacy"
"""
    (layers / "coverage.toml").write_text(toml, encoding="utf-8")
    out = run(load_config(layers / "coverage.toml"), build_root=tmp_path / "build")
    ind = pd.read_csv(out / "indicators.csv", encoding="utf-8-sig")
    for c in ("pharmacy_covered_60plus_10min", "pharmacy_share_60plus_20min", "n_pharmacy_facilities"):
        assert c in ind.columns, c
    assert ind.loc[ind["level"] == "unit", "n_pharmacy_facilities"].sum() == 2
    assert ind["pharmacy_covered_60plus_20min"].sum() >= ind["pharmacy_covered_60plus_10min"].sum() > 0
    layers_iso = set(gpd.list_layers(out / "isochrones.gpkg")["name"])
    assert {"pharmacy_10min_dissolved", "pharmacy_20min_facility"} <= layers_iso
    assert "pharmacy" in set(gpd.read_file(out / "gaps.gpkg")["service"])
    dd = pd.read_csv(out / "data_dictionary.csv", encoding="utf-8-sig").set_index("column")
    assert dd.loc["pharmacy_share_60plus_10min", "label_zh"] == "10分钟药店服务覆盖率"
    cells_pq = gpd.read_parquet(out / "cells.parquet")
    assert {"tt_pharmacy_s", "covered_pharmacy_10min"} <= set(cells_pq.columns)
    # ... and the maps draw it, with no maps module knowing it
    from coverage.maps import unit_page_name, write_maps

    maps_dir = tmp_path / "maps" / "pharm"
    write_maps(out, maps_dir)
    index = (maps_dir / "index.html").read_text(encoding="utf-8")
    assert "药店服务" in index  # the service's choropleth
    code = str(ind.loc[ind["level"] == "unit", "unit_code"].iloc[0])
    page = (maps_dir / unit_page_name(code)).read_text(encoding="utf-8")
    assert "药店服务" in page and "#00aa88" in page  # bands of the service, the kind's colour
