"""The population raster read in bands of ``population.read_block_rows`` rows: the cells table, the outside
summary and every error message are those of one band (the whole window), whatever the band height."""

from __future__ import annotations

import dataclasses
import logging
import random
import tempfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
import shapely.ops
from conftest import REPO, shared_file
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_population import LAT0, LON0, METRIC, NODATA, D, _osm_admin, box, write_raster

from coverage.config import ConfigError, PopulationConfig, load_config
from coverage.population import Cells, PopulationError, build_cells

KEYS = ["cell_id", "unit_code", "community_code"]


def assert_same_cells(one: Cells, banded: Cells) -> None:
    """Every column of the cells table exactly equal (sorted by cell, unit, community); the window figures
    equal; float sums of the conservation within 1e-9 relative (summed per band, in another order)."""
    a = one.cells.sort_values(KEYS, kind="stable").reset_index(drop=True)
    b = banded.cells.sort_values(KEYS, kind="stable").reset_index(drop=True)
    assert list(a.columns) == list(b.columns) and len(a) == len(b)
    for c in a.columns:
        if c == "geometry":
            assert bool(np.all(shapely.equals_exact(a.geometry.values, b.geometry.values, tolerance=0))), c
        else:
            assert a[c].equals(b[c]), c
    assert (one.shape, tuple(one.transform), one.raster_crs, one.method, one.age_source) == (
        banded.shape, tuple(banded.transform), banded.raster_crs, banded.method, banded.age_source)
    assert one.conservation.keys() == banded.conservation.keys()
    for k, v in one.conservation.items():
        if k != "rel_error":
            assert banded.conservation[k] == pytest.approx(v, rel=1e-9, abs=1e-12), k
    oa, ob = one.outside, banded.outside
    assert (oa.people, oa.cells, oa.attach_m, oa.attached_cells, oa.attached_people, oa.note) == (
        ob.people, ob.cells, ob.attach_m, ob.attached_cells, ob.attached_people, ob.note)
    assert ob.window_people == pytest.approx(oa.window_people, rel=1e-9)
    assert ob.share_of_raster_window == pytest.approx(oa.share_of_raster_window, rel=1e-9)
    assert oa.by_nearest_unit.equals(ob.by_nearest_unit)


def blocks(cfg: PopulationConfig, rows: int) -> PopulationConfig:
    return dataclasses.replace(cfg, read_block_rows=rows)


# ---------------------------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------------------------


def test_read_block_rows_default_and_range(tmp_path: Path) -> None:
    assert PopulationConfig().read_block_rows == 4096
    base = (REPO / "layers" / "demo" / "coverage.toml").read_text(encoding="utf-8")
    p = tmp_path / "coverage.toml"
    p.write_text(base.replace("[population]\n", "[population]\nread_block_rows = 0\n"), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"population\.read_block_rows = 0: expected a number of raster "
                                          r"rows >= 1 \(default 4096\)"):
        load_config(p)
    p.write_text(base.replace("[population]\n", "[population]\nread_block_rows = 256\n"), encoding="utf-8")
    assert load_config(p).population.read_block_rows == 256


# ---------------------------------------------------------------------------------------------
# Demo county and the real Comoros raster: one band == many bands
# ---------------------------------------------------------------------------------------------


def _demo_inputs(demo_layers: Path) -> tuple[PopulationConfig, dict]:
    from coverage.study import read_study_area

    cfg = load_config(demo_layers / "coverage.toml")
    study = read_study_area(cfg)
    return cfg.population, {"units": study.units, "communities": study.communities,
                            "metric_crs": study.metric_crs}


def test_demo_cells_do_not_depend_on_block_rows(demo_layers: Path, caplog: pytest.LogCaptureFixture) -> None:
    pop, kw = _demo_inputs(demo_layers)
    assert kw["communities"] is not None and len(kw["communities"])
    for attach_m in (0.0, 500.0):
        cfg = dataclasses.replace(pop, attach_outside_m=attach_m)
        with caplog.at_level(logging.INFO, logger="coverage.population"):
            caplog.clear()
            one = build_cells(cfg, **kw)  # the default 4096 rows: the demo window in one band
        lines = [r.getMessage() for r in caplog.records if "Reading population window" in r.getMessage()]
        assert len(lines) == 1 and f"in 1 band(s) of up to {one.shape[0]} rows" in lines[0]
        sizes = [1, 7, 64, random.Random(attach_m).randint(2, one.shape[0] - 1)]
        for rows in sizes if attach_m == 0 else sizes[1:]:
            with caplog.at_level(logging.INFO, logger="coverage.population"):
                caplog.clear()
                banded = build_cells(blocks(cfg, rows), **kw)
            n = -(-one.shape[0] // rows)
            assert any(f"in {n} band(s) of up to {rows} rows" in r.getMessage() for r in caplog.records)
            assert_same_cells(one, banded)


@pytest.mark.slow
def test_comoros_cells_do_not_depend_on_block_rows() -> None:
    """The WorldPop raster (1270 x 1576 cells) with the 3 islands, Mohéli's communes and attached
    offshore cells: 64-row and random bands give the single band's table."""
    from coverage.layers import read_units

    shared_file("comoros", "population", "com_ppp_2020_UNadj.tif")
    pbf = shared_file("comoros", "osm", "comores-latest-2021-04-08.osm.pbf")
    cfg = load_config(REPO / "layers" / "comoros" / "coverage.toml")
    units = read_units(cfg).units
    adm = _osm_admin(pbf)
    com = adm[adm["admin_level"] == "8"]
    mwali = units.loc[units["unit_name"].astype(str).str.contains("Mwali|Mohéli|Moheli"), "unit_code"]
    coms = gpd.GeoDataFrame({"community_code": com["osm_id"].to_numpy(),
                             "unit_code": mwali.iloc[0] if len(mwali) else units["unit_code"].iloc[0]},
                            geometry=com.geometry.to_numpy(), crs=4326)
    rows = random.Random(13).randint(65, 700)
    for attach_m, sizes in ((0.0, (64, rows)), (500.0, (rows,))):
        pop = dataclasses.replace(cfg.population, attach_outside_m=attach_m)
        kw = {"units": units, "communities": coms, "metric_crs": cfg.region.metric_crs}
        one = build_cells(pop, **kw)
        assert one.shape[0] < pop.read_block_rows  # one band by default
        assert (one.cells["community_code"] != "").any()
        for r in sizes:
            assert_same_cells(one, build_cells(blocks(pop, r), **kw))


# ---------------------------------------------------------------------------------------------
# Property: any band height gives the single band's table (random rasters, units, communities)
# ---------------------------------------------------------------------------------------------

coord = st.floats(min_value=-0.5, max_value=8.5, allow_nan=False)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(vals=st.lists(st.sampled_from([0.0, 0.0, 1.0, 2.5, 7.0, NODATA]), min_size=48, max_size=48),
       xs=st.tuples(coord, coord), ys=st.tuples(coord, coord), cut=st.tuples(coord, coord, coord, coord),
       split=st.floats(0.0, 1.0), rows=st.integers(1, 9), attach=st.sampled_from([0.0, 150.0]))
def test_property_bands_equal_one_block(vals: list[float], xs: tuple[float, float], ys: tuple[float, float],
                                        cut: tuple[float, float, float, float], split: float, rows: int,
                                        attach: float) -> None:
    c0, c1 = sorted(xs)
    r0, r1 = sorted(ys)
    if c1 - c0 < 0.05 or r1 - r0 < 0.05 or min(c1, 6) - max(c0, 0) < 0.05 or min(r1, 8) - max(r0, 0) < 0.05:
        return  # degenerate, or outside the raster (an error tested elsewhere)
    rect = box(c0, r0, c1, r1)
    p, q = np.array(cut[:2]), np.array(cut[2:])
    if np.allclose(p, q):
        return
    ends = (p - 100 * (q - p), p + 100 * (q - p))
    line = shapely.LineString([(LON0 + x * D, LAT0 - y * D) for x, y in ends])
    halves = shapely.get_parts(shapely.ops.split(rect, line)) if line.intersects(rect) else [rect]
    parts = [g for g in halves if g.area > 0]
    units = gpd.GeoDataFrame({"unit_code": [f"U{i}" for i in range(len(parts))]}, geometry=parts, crs=4326)
    # communities: unit U0 cut in two at a random height (the lower part may stay without a community)
    u0 = parts[0]
    y_cut = u0.bounds[1] + split * (u0.bounds[3] - u0.bounds[1])
    top = u0.intersection(shapely.box(u0.bounds[0], y_cut, u0.bounds[2], u0.bounds[3]))
    coms = gpd.GeoDataFrame({"community_code": ["C0", "C1"], "unit_code": ["U0", "U0"]},
                            geometry=[top, u0.difference(top).buffer(-D / 10)], crs=4326)
    coms = coms[shapely.area(coms.geometry.values) > 0]
    arr = np.array(vals).reshape(8, 6)
    with tempfile.TemporaryDirectory() as td:
        path = write_raster(Path(td) / "t.tif", arr)
        ratios = Path(td) / "r.csv"
        ratios.write_text("unit_code,share_60plus,share_0to3\n"
                          + "".join(f"U{i},0.2,0.05\n" for i in range(len(parts))), encoding="utf-8")
        cfg = PopulationConfig(total=path, ratios_csv=ratios, attach_outside_m=attach)
        kw = {"units": units, "communities": coms, "metric_crs": METRIC}
        try:
            one = build_cells(cfg, **kw)
        except PopulationError as exc:
            with pytest.raises(PopulationError) as banded_exc:
                build_cells(blocks(cfg, rows), **kw)
            assert str(banded_exc.value) == str(exc)
            return
        assert_same_cells(one, build_cells(blocks(cfg, rows), **kw))


# ---------------------------------------------------------------------------------------------
# Problems found in a late band, and whole-area checks that no single band can make
# ---------------------------------------------------------------------------------------------


@pytest.fixture()
def tall(tmp_path: Path) -> dict:
    """A 12 x 5 raster (cell (r, c) holds 5 r + c + 1; (0, 4) is nodata); unit A covers cols 0..2.5 of
    every row, unit B cols 3.5..5 of rows 0..5.5: 48 cells touch the units, cols 3-4 of rows 6-11 overlap
    none."""
    grid = np.arange(1.0, 61.0).reshape(12, 5)
    grid[0, 4] = NODATA
    units = gpd.GeoDataFrame({"unit_code": ["A", "B"]}, geometry=[box(0, 0, 2.5, 12), box(3.5, 0, 5, 5.5)],
                             crs=4326)
    ratios = tmp_path / "r.csv"
    ratios.write_text("unit_code,share_60plus,share_0to3\nA,0.2,0.05\nB,0.1,0.04\n", encoding="utf-8")
    return {"dir": tmp_path, "grid": grid, "units": units, "ratios": ratios}


def _message(cfg: PopulationConfig, units: gpd.GeoDataFrame) -> str:
    with pytest.raises(PopulationError) as err:
        build_cells(cfg, units=units, metric_crs=METRIC)
    return str(err.value)


def test_negative_cells_in_the_last_band_same_message(tall: dict) -> None:
    grid = tall["grid"].copy()
    grid[11, 1], grid[11, 2], grid[10, 0] = -5.0, -3.5, -2.0  # the last two rows
    grid[0, 2] = -1.0  # and one in the first band
    path = write_raster(tall["dir"] / "neg_late.tif", grid)
    cfg = PopulationConfig(total=path, ratios_csv=tall["ratios"])
    one = _message(cfg, tall["units"])
    assert "neg_late.tif (population.total): 4 cell(s) in the study area hold negative values (sum -11.5, " \
           "most negative -5;" in one
    for rows in (1, 2, 5, 11):
        assert _message(blocks(cfg, rows), tall["units"]) == one
    # negative cells outside every unit, in the last band only: a warning, counted as 0 (any band height)
    grid = tall["grid"].copy()
    grid[11, 4] = -7.0  # outside both units
    path = write_raster(tall["dir"] / "neg_outside.tif", grid)
    cfg = PopulationConfig(total=path, ratios_csv=tall["ratios"])
    one_cells = build_cells(cfg, units=tall["units"], metric_crs=METRIC)
    assert_same_cells(one_cells, build_cells(blocks(cfg, 3), units=tall["units"], metric_crs=METRIC))


def test_age_raster_checked_over_the_whole_area_not_per_band(tall: dict) -> None:
    total = write_raster(tall["dir"] / "total.tif", tall["grid"])
    # 60+ above the total in the last rows only, far below it elsewhere: the whole area holds fewer 60+
    # than persons, so this is NOT an error with one band, and must not become one with bands
    a60 = np.where(tall["grid"] == NODATA, NODATA, 0.0)
    a60[10:, :] = tall["grid"][10:, :] * 3
    ok = write_raster(tall["dir"] / "a60_late.tif", a60)
    cfg = PopulationConfig(total=total, age_60plus=ok, ratios_csv=tall["ratios"])
    one = build_cells(cfg, units=tall["units"], metric_crs=METRIC)
    for rows in (1, 2, 4):
        assert_same_cells(one, build_cells(blocks(cfg, rows), units=tall["units"], metric_crs=METRIC))
    # above the total over the whole area though every band but the last is fine (below the total):
    # caught from the summed figures, with the one-band message
    a60[10:, :] = tall["grid"][10:, :] * 20
    big = write_raster(tall["dir"] / "a60_big.tif", a60)
    cfg = PopulationConfig(total=total, age_60plus=big, ratios_csv=tall["ratios"])
    msg = _message(cfg, tall["units"])
    assert "a60_big.tif (population.age_60plus): holds 6,540.0 persons in the study area, more than the " \
           "total raster total.tif (1,261.0" in msg
    for rows in (1, 2, 4, 7):
        assert _message(blocks(cfg, rows), tall["units"]) == msg
    # an age raster empty in every band but one is not empty: no error; empty everywhere: the same message
    a60 = np.where(tall["grid"] == NODATA, NODATA, 0.0)
    a60[11, 0] = 1.0
    late = write_raster(tall["dir"] / "a60_one.tif", a60)
    cfg = PopulationConfig(total=total, age_60plus=late, ratios_csv=tall["ratios"])
    one = build_cells(cfg, units=tall["units"], metric_crs=METRIC)
    assert_same_cells(one, build_cells(blocks(cfg, 1), units=tall["units"], metric_crs=METRIC))
    a60[11, 0] = 0.0
    empty = write_raster(tall["dir"] / "a60_empty.tif", a60)
    cfg = PopulationConfig(total=total, age_60plus=empty, ratios_csv=tall["ratios"])
    msg = _message(cfg, tall["units"])
    assert "no population in the study area: all 48 cells are nodata (1) or 0 (47)" in msg
    for rows in (1, 5):
        assert _message(blocks(cfg, rows), tall["units"]) == msg


def test_no_person_in_any_band_same_message(tall: dict) -> None:
    grid = np.full_like(tall["grid"], NODATA)
    grid[:, :4] = 0.0
    grid[:6, :2] = NODATA
    grid[6:, 3:] = 9.0  # people outside the study area only
    path = write_raster(tall["dir"] / "empty.tif", grid)
    cfg = PopulationConfig(total=path, ratios_csv=tall["ratios"])
    msg = _message(cfg, tall["units"])
    assert "empty.tif (population.total): no population in the study area: all 48 cells are nodata (18) " \
           "or 0 (30)" in msg
    for rows in (1, 4, 7):
        assert _message(blocks(cfg, rows), tall["units"]) == msg
