"""Data confidence per unit: a road extract covering part of the region, a drive-only walking network
and census totals spread onto too few roads are flagged 低可信, and the flag travels to the outputs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from shapely.geometry import box

from coverage import confidence, network
from coverage.config import load_config
from coverage.pipeline import Analysis, analyse, data_confidence


@pytest.fixture(scope="module")
def analysis(demo_layers: Path) -> Analysis:
    return analyse(load_config(demo_layers / "coverage.toml"))


def test_the_demo_is_well_covered(analysis: Analysis) -> None:
    conf = data_confidence(analysis)
    assert not conf["low_confidence"].any(), conf["confidence_reasons"].to_dict()
    assert (conf["network_extent_share"] > 0.95).all()


def test_a_road_extract_of_a_quarter_of_the_county_is_flagged(analysis: Analysis) -> None:
    a = analysis
    minx, miny, maxx, maxy = a.study.outline_wgs84.bounds
    quarter = box(minx, (miny + maxy) / 2, (minx + maxx) / 2, maxy)  # the north-west quarter
    cfg = a.cfg
    nets = {mode: network.network_from_osm(cfg.network.path, mode=mode, metric_crs=a.study.metric_crs,
                                           walk=cfg.walk, delivery=cfg.delivery, min_component_nodes=5,
                                           clip_polygon_wgs84=quarter) for mode in ("walk", "delivery")}
    from coverage import access

    snaps = access.snap_cells(cfg, nets, a.cells_in.cells.reset_index(drop=True))
    cut = dataclasses.replace(a, networks=nets, cell_snaps=snaps)
    conf = data_confidence(cut)
    assert conf["low_confidence"].sum() >= 3
    far = conf[conf["network_extent_share"] < 0.5]
    assert len(far) and far["confidence_reasons"].str.contains("does not cover the unit").all()


def test_a_drive_only_walking_network_is_flagged_everywhere(analysis: Analysis) -> None:
    a = analysis
    walk = a.networks["walk"]
    attrs = walk.edge_attrs.assign(highway=walk.edge_attrs["highway"].replace(
        {"footway": "residential", "path": "residential", "pedestrian": "residential", "steps": "service"}))
    drive_only = dataclasses.replace(walk, edge_attrs=attrs)
    assert confidence.drive_only_walk_network(drive_only) and not confidence.drive_only_walk_network(walk)
    conf = data_confidence(dataclasses.replace(a, networks={**a.networks, "walk": drive_only}))
    assert conf["low_confidence"].all()
    assert conf["confidence_reasons"].str.contains("walking times are upper bounds").all()


def test_census_spread_onto_too_few_roads_is_flagged(analysis: Analysis) -> None:
    a = analysis
    cells = a.cell_snaps.add_to_cells(a.cells_in.cells.reset_index(drop=True))
    dense = cells.assign(pop_total=np.where(cells.index == 0, 5000.0, cells["pop_total"]))
    conf = confidence.unit_confidence(a.cfg, a.study.units, a.networks, dense, a.facilities, census=True,
                                      cell_area_ha=1.0)
    code = str(dense.loc[0, "unit_code"])
    assert conf.loc[code, "low_confidence"] and "per ha" in conf.loc[code, "confidence_reasons"]


def test_the_flag_reaches_the_standards_rows_of_the_unit_and_its_communities() -> None:
    conf = pd.DataFrame({"low_confidence": [True, False], "confidence_reasons": ["roads missing", ""]},
                        index=pd.Index(["A", "B"], name="unit_code"))
    std = pd.DataFrame({"unit_code": ["A", "B", "A1", "r"], "parent_code": ["", "", "A", ""],
                        "standard_id": ["x"] * 4})
    out = confidence.mark_standards(std, conf)
    assert out["confidence"].tolist() == ["低可信 low confidence: roads missing", "",
                                          "低可信 low confidence: roads missing", ""]
