"""Population overlay: hand-computable rasters, census spreading, properties, real Comoros raster."""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from conftest import shared_file
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from rasterio.transform import from_origin

from coverage import population
from coverage.config import PopulationConfig
from coverage.errors import InputError
from coverage.population import (
    CELL_COLUMNS,
    METHOD_CENSUS,
    PopulationError,
    build_cells,
    cell_polygons,
)

LON0, LAT0 = 104.0, 30.6
D = 1.0 / 1200.0  # 3 arc-seconds
METRIC = "EPSG:32648"
NODATA = -99999.0


def write_raster(path: Path, arr: np.ndarray, *, lon0: float = LON0, lat0: float = LAT0, d: float = D,
                 tiled: bool = False) -> Path:
    prof = {"driver": "GTiff", "height": arr.shape[0], "width": arr.shape[1], "count": 1, "dtype": "float32",
            "crs": "EPSG:4326", "transform": from_origin(lon0, lat0, d, d), "nodata": NODATA}
    if tiled:
        prof.update(tiled=True, blockxsize=256, blockysize=256, compress="deflate")
    with rasterio.open(path, "w", **prof) as dst:
        dst.write(arr.astype("float32"), 1)
    return path


def box(c0: float, r0: float, c1: float, r1: float) -> shapely.Polygon:
    """A box in cell units of the test grid (col, row from the top-left corner)."""
    return shapely.box(LON0 + c0 * D, LAT0 - r1 * D, LON0 + c1 * D, LAT0 - r0 * D)


# row0: cell (0,1) NaN -> 0; row1: cell (1,1) nodata -> 0; row 2 and col 4 untouched (1000s)
GRID = np.array([[1, np.nan, 4, 8, 1000],
                 [16, NODATA, 64, 128, 1000],
                 [1000, 1000, 1000, 1000, 1000]], dtype=float)


@pytest.fixture()
def hand(tmp_path: Path) -> dict:
    total = write_raster(tmp_path / "total.tif", GRID)
    clean = np.where((GRID < 0), 0, GRID)
    a60 = write_raster(tmp_path / "a60.tif", np.where(GRID == NODATA, NODATA, clean * 0.2))
    a03 = write_raster(tmp_path / "a03.tif", np.where(GRID == NODATA, NODATA, clean * 0.05))
    # A: cols 0..2.5 (col 2 split 50/50 with B); B: cols 2.5..3.25 (col 3: centre outside B, 1/4 overlap)
    units = gpd.GeoDataFrame({"unit_code": ["A", "B"], "unit_name": ["甲街道", "乙镇"]},
                             geometry=[box(0, 0, 2.5, 2), box(2.5, 0, 3.25, 2)], crs="EPSG:4326")
    return {"dir": tmp_path, "total": total, "a60": a60, "a03": a03, "units": units}


def by_unit(cells: gpd.GeoDataFrame, col: str = "pop_total") -> dict[str, float]:
    return cells.groupby("unit_code")[col].sum().to_dict()


def test_hand_grid_assignment(hand: dict) -> None:
    cfg = PopulationConfig(total=hand["total"], age_60plus=hand["a60"], age_0to3=hand["a03"])
    res = build_cells(cfg, units=hand["units"], metric_crs=METRIC)
    c = res.cells
    assert list(c.columns) == list(CELL_COLUMNS)
    assert res.shape == (2, 4)  # window rounded out to whole cells, rows 0-1 and cols 0-3 only
    assert res.method == "raster" and res.age_source == "age rasters"
    assert str(c.crs) == METRIC
    tot = by_unit(c)
    assert tot["A"] == pytest.approx(1 + 16 + 0.5 * (4 + 64))  # 51
    assert tot["B"] == pytest.approx(0.5 * (4 + 64) + 8 + 128)  # 170
    assert res.conservation["raster_total_touching"] == pytest.approx(221)
    assert res.conservation["units_total"] == pytest.approx(221)
    # the split cell: two pieces of weight 0.5
    split = c[(c["row"] == 0) & (c["col"] == 2)].set_index("unit_code")
    assert split["weight"].to_dict() == pytest.approx({"A": 0.5, "B": 0.5})
    assert split["cell_id"].tolist() == [2, 2]
    # the edge cell: centre outside B, only 1/4 of it overlaps, but it counts in full
    edge = c[(c["row"] == 0) & (c["col"] == 3)]
    assert len(edge) == 1 and edge["unit_code"].item() == "B" and edge["weight"].item() == pytest.approx(1)
    assert not shapely.contains_xy(box(2.5, 0, 3.25, 2), LON0 + 3.5 * D, LAT0 - 0.5 * D)
    # nodata / negative cells and untouched cells are absent
    assert set(zip(c["row"], c["col"], strict=True)) == {(0, 0), (1, 0), (0, 2), (1, 2), (0, 3), (1, 3)}
    assert by_unit(c, "pop_60plus") == pytest.approx({"A": 51 * 0.2, "B": 170 * 0.2})
    assert by_unit(c, "pop_0to3") == pytest.approx({"A": 51 * 0.05, "B": 170 * 0.05})
    assert (c["community_code"] == "").all()
    # centres: lon/lat of the cell centre, x/y the same point in metres
    first = c.iloc[0]
    assert (first["lon"], first["lat"]) == pytest.approx((LON0 + 0.5 * D, LAT0 - 0.5 * D))
    back = gpd.GeoSeries(c.geometry.iloc[:1], crs=METRIC).to_crs(4326).iloc[0]
    assert (back.x, back.y) == pytest.approx((first["lon"], first["lat"]))


def test_metric_units_give_same_totals(hand: dict) -> None:
    cfg = PopulationConfig(total=hand["total"], age_60plus=hand["a60"], age_0to3=hand["a03"])
    res = build_cells(cfg, units=hand["units"].to_crs(METRIC), metric_crs=METRIC)
    assert by_unit(res.cells) == pytest.approx({"A": 51, "B": 170}, rel=1e-4)


def test_inputs_not_mutated(hand: dict) -> None:
    units = hand["units"]
    before = units.copy()
    build_cells(PopulationConfig(total=hand["total"], age_60plus=hand["a60"], age_0to3=hand["a03"]),
                units=units, metric_crs=METRIC)
    pd.testing.assert_frame_equal(units, before)


def test_communities_split_within_units(hand: dict) -> None:
    coms = gpd.GeoDataFrame({"community_code": ["A1", "A2"], "unit_code": ["A", "A"]},
                            geometry=[box(0, 0, 1, 2), box(1, 0, 2.5, 2)], crs="EPSG:4326")
    cfg = PopulationConfig(total=hand["total"], age_60plus=hand["a60"], age_0to3=hand["a03"])
    c = build_cells(cfg, units=hand["units"], communities=coms, metric_crs=METRIC).cells
    per = c.groupby(["unit_code", "community_code"])["pop_total"].sum().to_dict()
    assert per == pytest.approx({("A", "A1"): 17, ("A", "A2"): 34, ("B", ""): 170})


def test_ratios_path(hand: dict) -> None:
    ratios = hand["dir"] / "ratios.csv"
    ratios.write_text("unit_code,share_60plus,share_0to3\nA,0.3,0.02\nB,0.1,0.04\n", encoding="utf-8")
    res = build_cells(PopulationConfig(total=hand["total"], ratios_csv=ratios), units=hand["units"],
                      metric_crs=METRIC)
    assert res.age_source == "census ratios"
    assert by_unit(res.cells, "pop_60plus") == pytest.approx({"A": 51 * 0.3, "B": 170 * 0.1})
    assert by_unit(res.cells, "pop_0to3") == pytest.approx({"A": 51 * 0.02, "B": 170 * 0.04})
    # mixed: 60+ from the raster, 0-3 from ratios
    res = build_cells(PopulationConfig(total=hand["total"], age_60plus=hand["a60"], ratios_csv=ratios),
                      units=hand["units"], metric_crs=METRIC)
    assert "age rasters (60plus)" in res.age_source and "census ratios (0to3)" in res.age_source
    assert by_unit(res.cells, "pop_60plus") == pytest.approx({"A": 51 * 0.2, "B": 170 * 0.2})


def test_ratios_csv_problems_listed_once(hand: dict) -> None:
    ratios = hand["dir"] / "ratios.csv"
    ratios.write_text("unit_code,share_60plus,share_0to3\nA,1.3,0.02\nZ,0.1,0.04\n", encoding="utf-8")
    with pytest.raises(PopulationError, match=r"(?s)3 problem.*share_60plus.*A.*not in the units layer: Z"
                                              r".*missing from the CSV: B"):
        build_cells(PopulationConfig(total=hand["total"], ratios_csv=ratios), units=hand["units"],
                    metric_crs=METRIC)


def test_no_age_source_is_an_error(hand: dict) -> None:
    with pytest.raises(PopulationError, match=r"population\.age_60plus and population\.age_0to3.*ratios_csv"):
        build_cells(PopulationConfig(total=hand["total"]), units=hand["units"], metric_crs=METRIC)


def test_grid_mismatch_names_files(hand: dict) -> None:
    other = write_raster(hand["dir"] / "shifted60.tif", np.ones((3, 5)), lon0=LON0 + D / 2)
    cfg = PopulationConfig(total=hand["total"], age_60plus=other, age_0to3=hand["a03"])
    with pytest.raises(PopulationError, match=r"do not share one grid: .*total\.tif.*shifted60\.tif"):
        build_cells(cfg, units=hand["units"], metric_crs=METRIC)


def test_bad_inputs_listed(hand: dict) -> None:
    units = hand["units"].rename(columns={"unit_code": "code"})
    with pytest.raises(PopulationError, match="missing column"):
        build_cells(PopulationConfig(total=hand["total"]), units=units, metric_crs=METRIC)
    with pytest.raises(InputError, match="population metric_crs: CRS 'EPSG:4326' is geographic"):
        build_cells(PopulationConfig(total=hand["total"]), units=hand["units"], metric_crs="EPSG:4326")
    with pytest.raises(PopulationError, match=r"not found: population\.total"):
        build_cells(PopulationConfig(total=hand["dir"] / "nope.tif"), units=hand["units"], metric_crs=METRIC)


def test_conservation_failure_raises(hand: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    # a broken split (no renormalisation) loses 3/4 of the edge cell
    monkeypatch.setattr(population, "_renormalise", lambda flat, frac: frac)
    cfg = PopulationConfig(total=hand["total"], age_60plus=hand["a60"], age_0to3=hand["a03"])
    with pytest.raises(PopulationError,
                       match=r"not conserved: the units hold 119\.0 persons .* holds 221\.0"):
        build_cells(cfg, units=hand["units"], metric_crs=METRIC)


def test_windowed_read_of_big_raster(tmp_path: Path) -> None:
    n = 2000
    big = write_raster(tmp_path / "big.tif", np.ones((n, n)), tiled=True)
    units = gpd.GeoDataFrame({"unit_code": ["U"]}, geometry=[box(1000.2, 700.5, 1002.9, 702.1)], crs=4326)
    ratios = tmp_path / "r.csv"
    ratios.write_text("unit_code,share_60plus,share_0to3\nU,0.2,0.05\n", encoding="utf-8")
    res = build_cells(PopulationConfig(total=big, ratios_csv=ratios), units=units, metric_crs=METRIC)
    assert res.shape == (3, 3)  # not (2000, 2000)
    assert (res.transform.c == pytest.approx(LON0 + 1000 * D)
            and res.transform.f == pytest.approx(LAT0 - 700 * D))
    assert res.cells["pop_total"].sum() == pytest.approx(9.0)  # 3 x 3 touched cells, each counted in full
    far = gpd.GeoDataFrame({"unit_code": ["U"]}, geometry=[shapely.box(10, 10, 11, 11)], crs=4326)
    with pytest.raises(PopulationError, match="the population raster does not overlap the study area"):
        build_cells(PopulationConfig(total=big, ratios_csv=ratios), units=far, metric_crs=METRIC)


def test_cell_polygons(hand: dict) -> None:
    cfg = PopulationConfig(total=hand["total"], age_60plus=hand["a60"], age_0to3=hand["a03"])
    res = build_cells(cfg, units=hand["units"], metric_crs=METRIC)
    polys = cell_polygons(res.cells, res.transform, res.raster_crs)
    assert polys.index.equals(res.cells.index)
    first = polys.iloc[0]
    assert first.bounds == pytest.approx((LON0, LAT0 - D, LON0 + D, LAT0))
    assert polys.to_crs(METRIC).contains(res.cells.geometry).all()


# ---------------------------------------------------------------------------------------------
# Census spreading
# ---------------------------------------------------------------------------------------------

X0, Y0 = 500000.0, 3400000.0


@pytest.fixture()
def census_setup(tmp_path: Path) -> dict:
    units = gpd.GeoDataFrame({"unit_code": ["A", "B"]},
                             geometry=[shapely.box(X0, Y0, X0 + 300, Y0 + 100),
                                       shapely.box(X0 + 300, Y0, X0 + 500, Y0 + 100)], crs=METRIC)
    roads = gpd.GeoDataFrame({"highway": ["residential", "primary"]},
                             geometry=[shapely.LineString([(X0, Y0 + 50), (X0 + 250, Y0 + 50)]),
                                       shapely.LineString([(X0 + 300, Y0 + 20), (X0 + 500, Y0 + 20)])],
                             crs=METRIC)
    csv = tmp_path / "census.csv"
    csv.write_text("unit_code,pop_total,pop_60plus,pop_0to3\nA,1000,200,30\nB,500,150,10\n", encoding="utf-8")
    return {"units": units, "roads": roads, "csv": csv, "dir": tmp_path}


def test_census_spread_follows_road_length(census_setup: dict, caplog: pytest.LogCaptureFixture) -> None:
    cfg = PopulationConfig(census_csv=census_setup["csv"], census_cell_m=100.0)
    with caplog.at_level(logging.WARNING, logger="coverage.population"):
        res = build_cells(cfg, units=census_setup["units"], metric_crs=METRIC,
                          roads=census_setup["roads"].to_crs(4326))
    assert res.method == METHOD_CENSUS and "ESTIMATE" in res.method
    assert res.age_source == "census counts"
    assert res.shape == (1, 5)
    c = res.cells.set_index(["unit_code", "col"])
    # A: road of 250 m -> 100/100/50 m in its three cells
    assert c.loc["A", "pop_total"].tolist() == pytest.approx([400, 400, 200], rel=1e-6)
    assert c.loc["A", "pop_60plus"].tolist() == pytest.approx([80, 80, 40], rel=1e-6)
    # B: only a primary road -> uniform by area, with a warning naming it
    assert c.loc["B", "pop_total"].tolist() == pytest.approx([250, 250])
    assert "uniformly by area: B" in caplog.text
    assert by_unit(res.cells) == pytest.approx({"A": 1000, "B": 500})
    assert res.conservation["rel_error"] == pytest.approx(0, abs=1e-12)


def test_census_with_ratios_and_communities(census_setup: dict) -> None:
    csv = census_setup["dir"] / "c2.csv"
    csv.write_text("unit_code,pop_total\nA,1000\nB,500\n", encoding="utf-8")
    ratios = census_setup["dir"] / "r.csv"
    ratios.write_text("unit_code,share_60plus,share_0to3\nA,0.25,0.03\nB,0.1,0.02\n", encoding="utf-8")
    coms = gpd.GeoDataFrame({"community_code": ["A1", "A2"], "unit_code": ["A", "A"]},
                            geometry=[shapely.box(X0, Y0, X0 + 150, Y0 + 100),
                                      shapely.box(X0 + 150, Y0, X0 + 300, Y0 + 100)], crs=METRIC)
    res = build_cells(PopulationConfig(census_csv=csv, ratios_csv=ratios), units=census_setup["units"],
                      communities=coms, metric_crs=METRIC, roads=census_setup["roads"])
    assert res.age_source == "census ratios"
    per = res.cells.groupby("community_code")["pop_total"].sum().to_dict()
    assert per == pytest.approx({"A1": 600, "A2": 400, "": 500})  # 400 + half of the middle cell's 400
    assert by_unit(res.cells, "pop_60plus") == pytest.approx({"A": 250, "B": 50})


def test_census_unit_mismatch_listed(census_setup: dict) -> None:
    csv = census_setup["dir"] / "bad.csv"
    csv.write_text("unit_code,pop_total\nA,1000\nC,10\nD,-3\n", encoding="utf-8")
    with pytest.raises(PopulationError, match=r"(?s)pop_total: bad value for unit\(s\) D.*not in the units "
                                              r"layer: C, D.*missing from the CSV: B"):
        build_cells(PopulationConfig(census_csv=csv), units=census_setup["units"], metric_crs=METRIC)


def test_census_without_ages_names_keys(census_setup: dict) -> None:
    csv = census_setup["dir"] / "tot.csv"
    csv.write_text("unit_code,pop_total\nA,1000\nB,500\n", encoding="utf-8")
    with pytest.raises(PopulationError, match=r"pop_60plus, pop_0to3 and no population\.ratios_csv"):
        build_cells(PopulationConfig(census_csv=csv), units=census_setup["units"], metric_crs=METRIC)


# ---------------------------------------------------------------------------------------------
# Property: conservation against a brute-force overlay
# ---------------------------------------------------------------------------------------------

coord = st.floats(min_value=-0.5, max_value=6.5, allow_nan=False)


# found by hypothesis in CI: the units enter a populated cell by 1e-5 of its width (GDAL's all_touched
# missed it, so the cell was counted both in a unit and outside every unit)
_SLIVER = {"xs": (0.0, 2.00001), "ys": (0.0, 2.0), "cut": (0.0, 0.0, 0.0, 1.0)}


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(vals=st.lists(st.sampled_from([0.0, 0.0, 1.0, 2.5, 7.0, NODATA]), min_size=36, max_size=36),
       xs=st.tuples(coord, coord), ys=st.tuples(coord, coord), cut=st.tuples(coord, coord, coord, coord))
@example(vals=[1.0 if i in (7, 8) else 0.0 for i in range(36)], **_SLIVER)
@example(vals=[1.0 if i == 8 else 0.0 for i in range(36)], **_SLIVER)
def test_property_conservation(vals: list[float], xs: tuple[float, float], ys: tuple[float, float],
                               cut: tuple[float, float, float, float]) -> None:
    c0, c1 = sorted(xs)
    r0, r1 = sorted(ys)
    if c1 - c0 < 0.05 or r1 - r0 < 0.05 or min(c1, 6) - max(c0, 0) < 0.05 or min(r1, 6) - max(r0, 0) < 0.05:
        return  # degenerate, or outside the raster (an error tested elsewhere)
    rect = box(c0, r0, c1, r1)
    # cut the rectangle by a random line into two units (a half-plane and its complement)
    p, q = np.array(cut[:2]), np.array(cut[2:])
    if np.allclose(p, q):
        return
    dvec = (q - p) / np.linalg.norm(q - p) * 100
    half = shapely.Polygon([(LON0 + (p - dvec)[0] * D, LAT0 - (p - dvec)[1] * D),
                            (LON0 + (p + dvec)[0] * D, LAT0 - (p + dvec)[1] * D),
                            (LON0 + (p + dvec + [-dvec[1], dvec[0]])[0] * D,
                             LAT0 - (p + dvec + [-dvec[1], dvec[0]])[1] * D),
                            (LON0 + (p - dvec + [-dvec[1], dvec[0]])[0] * D,
                             LAT0 - (p - dvec + [-dvec[1], dvec[0]])[1] * D)])
    parts = [g for g in (rect.intersection(half), rect.difference(half)) if g.area > 0]
    units = gpd.GeoDataFrame({"unit_code": [f"U{i}" for i in range(len(parts))]}, geometry=parts, crs=4326)
    arr = np.array(vals).reshape(6, 6)
    with tempfile.TemporaryDirectory() as td:
        path = write_raster(Path(td) / "t.tif", arr)
        ratios = Path(td) / "r.csv"
        ratios.write_text("unit_code,share_60plus,share_0to3\n"
                          + "".join(f"U{i},0.2,0.05\n" for i in range(len(parts))), encoding="utf-8")
        cfg = PopulationConfig(total=path, ratios_csv=ratios)
        if not any(rect.intersection(box(c, r, c + 1, r + 1)).area > 1e-9 * D * D
                   for r, c in zip(*np.nonzero(arr > 0), strict=True)):
            with pytest.raises(PopulationError, match="no population in the study area"):
                build_cells(cfg, units=units, metric_crs=METRIC)
            return
        res = build_cells(cfg, units=units, metric_crs=METRIC)
    clean = np.where(arr < 0, 0, arr)
    # brute force: every cell's overlap with every unit
    expect = {code: 0.0 for code in units["unit_code"]}
    touched = 0.0
    for r in range(6):
        for c in range(6):
            cell = box(c, r, c + 1, r + 1)
            areas = {u: cell.intersection(g).area / cell.area
                     for u, g in zip(units["unit_code"], parts, strict=True)}
            areas = {u: a for u, a in areas.items() if a > 1e-9}
            if not areas or clean[r, c] == 0:
                continue
            touched += clean[r, c]
            s = sum(areas.values())
            for u, a in areas.items():
                expect[u] += clean[r, c] * a / s
    got = by_unit(res.cells)
    for u, v in expect.items():
        assert got.get(u, 0.0) == pytest.approx(v, rel=1e-6, abs=1e-6)
    assert res.conservation["units_total"] == pytest.approx(touched, rel=1e-9, abs=1e-9)
    w = res.cells.groupby("cell_id")["weight"].sum()
    assert np.allclose(w, 1.0)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tot=st.tuples(st.integers(0, 10_000), st.integers(1, 10_000)),
       segs=st.lists(st.tuples(st.floats(0, 500), st.floats(0, 100), st.floats(0, 500), st.floats(0, 100),
                               st.sampled_from(["residential", "tertiary", "primary", "footway"])),
                     max_size=6),
       split=st.floats(20, 480))
def test_property_census_conserves_each_unit(tot: tuple[int, int], segs: list, split: float) -> None:
    units = gpd.GeoDataFrame({"unit_code": ["A", "B"]},
                             geometry=[shapely.box(X0, Y0, X0 + split, Y0 + 100),
                                       shapely.box(X0 + split, Y0, X0 + 500, Y0 + 100)], crs=METRIC)
    lines = [shapely.LineString([(X0 + a, Y0 + b), (X0 + c, Y0 + d)]) for a, b, c, d, _ in segs]
    roads = gpd.GeoDataFrame({"highway": [h for *_, h in segs]}, geometry=lines, crs=METRIC)
    with tempfile.TemporaryDirectory() as td:
        csv = Path(td) / "c.csv"
        csv.write_text(f"unit_code,pop_total,pop_60plus,pop_0to3\nA,{tot[0]},{tot[0] / 5},{tot[0] / 50}\n"
                       f"B,{tot[1]},{tot[1] / 4},{tot[1] / 40}\n", encoding="utf-8")
        res = build_cells(PopulationConfig(census_csv=csv, census_cell_m=50.0), units=units,
                          metric_crs=METRIC, roads=roads)
    got = by_unit(res.cells)
    assert got.get("A", 0.0) == pytest.approx(tot[0], rel=1e-9)
    assert got.get("B", 0.0) == pytest.approx(tot[1], rel=1e-9)
    assert by_unit(res.cells, "pop_60plus").get("B", 0.0) == pytest.approx(tot[1] / 4, rel=1e-9)
    assert (res.cells["pop_total"] > 0).all()


# ---------------------------------------------------------------------------------------------
# Real data: Comoros WorldPop 2020 raster with OSM admin_level 4 islands / admin_level 8 communes
# ---------------------------------------------------------------------------------------------


def _osm_admin(pbf: Path) -> gpd.GeoDataFrame:
    import osmium
    import shapely.wkb

    rows = []
    fab = osmium.geom.WKBFactory()

    class H(osmium.SimpleHandler):  # type: ignore[misc]
        def area(self, a: osmium.osm.Area) -> None:
            if (not a.from_way() and a.tags.get("boundary") == "administrative"
                    and a.tags.get("admin_level") in ("4", "8")):
                rows.append({"admin_level": a.tags.get("admin_level"), "name": a.tags.get("name"),
                             "osm_id": str(a.orig_id()),
                             "geometry": shapely.wkb.loads(fab.create_multipolygon(a), hex=True)})

    H().apply_file(str(pbf), locations=True)
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=4326)


@pytest.mark.slow
def test_comoros_real_raster() -> None:
    tif = shared_file("comoros", "population", "com_ppp_2020_UNadj.tif")
    pbf = shared_file("comoros", "osm", "comores-latest-2021-04-08.osm.pbf")
    adm = _osm_admin(pbf)
    isl = adm[adm["admin_level"] == "4"]
    assert len(isl) == 3
    units = gpd.GeoDataFrame({"unit_code": isl["osm_id"].to_numpy(), "unit_name": isl["name"].to_numpy()},
                             geometry=isl.geometry.to_numpy(), crs=4326)
    mwali = units.loc[units["unit_name"].str.contains("Mwali"), "unit_code"].item()
    com = adm[adm["admin_level"] == "8"]
    coms = gpd.GeoDataFrame({"community_code": com["osm_id"].to_numpy(), "unit_code": mwali},
                            geometry=com.geometry.to_numpy(), crs=4326)
    cfg = PopulationConfig(total=tif, age_60plus=tif, age_0to3=tif)
    t = time.perf_counter()
    res = build_cells(cfg, units=units, communities=coms, metric_crs="EPSG:32738")
    elapsed = time.perf_counter() - t
    from rasterio.features import rasterize

    with rasterio.open(tif) as src:
        arr = src.read(1, masked=True).filled(0)
        full, tr = arr.sum(), src.transform
    tot = res.cells.groupby("unit_code")["pop_total"].sum()
    names = dict(zip(units["unit_code"], units["unit_name"], strict=True))
    logging.getLogger(__name__).info("Comoros: %.2f s, %d pieces, totals %s, conservation %s, raster %.0f",
                                     elapsed, len(res.cells), {names[k]: round(v) for k, v in tot.items()},
                                     res.conservation, full)
    assert res.conservation["rel_error"] < 1e-9
    # the people in cells wholly outside every island are measured, not lost (2,553 cells, 23,397 persons)
    assert 2500 < res.outside.cells < 2600 and res.outside.people == pytest.approx(23_397, rel=1e-3)
    assert res.conservation["units_total"] + res.outside.people == pytest.approx(
        res.conservation["window_total"], rel=1e-9)
    assert elapsed < 20
    assert 0.95 * full < res.conservation["units_total"] <= full * (1 + 1e-9)
    # independent zonal sums of the whole raster: PROVENANCE's centre-rule sums (Ngazidja 437,143, Mwali
    # 321,351, Nzwani 63,385) are a lower bound (coastal cells whose centre is at sea are missing there);
    # GDAL's all_touched sums equal ours up to cells that only touch at a corner
    centre = {"Ngazidja": 437_143, "Mwali": 321_351, "Nzwani": 63_385}
    for code, geom in zip(units["unit_code"], units.geometry, strict=True):
        key = next(k for k in centre if k in names[code])
        touched = arr[rasterize([(geom, 1)], out_shape=arr.shape, transform=tr, all_touched=True) == 1].sum()
        assert centre[key] < tot[code] <= touched * (1 + 1e-6)
        assert tot[code] == pytest.approx(touched, rel=1e-3)
    by_name = {names[k]: v for k, v in tot.items()}
    # Mohéli's communes take Mohéli's persons (pieces outside every commune keep community "")
    mw = res.cells[res.cells["unit_code"] == mwali]
    assert mw["pop_total"].sum() == pytest.approx(by_name[next(n for n in by_name if "Mwali" in n)])
    assert mw.loc[mw["community_code"] != "", "pop_total"].sum() > 0.9 * mw["pop_total"].sum()
    assert (res.cells.loc[res.cells["unit_code"] != mwali, "community_code"] == "").all()


# ---------------------------------------------------------------------------------------------
# Rasters and CSVs that would silently change the population: one PopulationError each
# ---------------------------------------------------------------------------------------------


def test_negative_cells_are_an_error_not_zero(hand: dict) -> None:
    grid = GRID.copy()
    grid[0, 1], grid[1, 3] = -5.0, -3.4e38  # an undeclared nodata value and a broken cell
    bad = write_raster(hand["dir"] / "neg.tif", grid)
    cfg = PopulationConfig(total=bad, age_60plus=hand["a60"], age_0to3=hand["a03"])
    with pytest.raises(PopulationError,
                       match=r"neg\.tif \(population\.total\): 2 cell\(s\) in the study area hold negative "
                             r"values \(sum -3\.4e\+38, most negative -3\.4e\+38;"):
        build_cells(cfg, units=hand["units"], metric_crs=METRIC)
    grid[1, 3] = 128.0
    bad = write_raster(hand["dir"] / "neg.tif", grid)
    with pytest.raises(PopulationError,
                       match=r"neg\.tif \(population\.total\): 1 cell\(s\) in the study area hold negative "
                             r"values \(sum -5\.0, most negative -5; the raster's nodata value is "
                             r"-99999\.0\)\. .*Fix: if -5 marks missing data, set it as the raster's "
                             r"nodata value \(gdal_edit\.py -a_nodata -5 neg\.tif\); otherwise fix the "
                             r"raster\."):
        build_cells(cfg, units=hand["units"], metric_crs=METRIC)
    # the same value declared as nodata is "no people"
    bad = write_raster(hand["dir"] / "neg.tif", np.where(grid == NODATA, -5.0, grid))
    with rasterio.open(bad, "r+") as dst:
        dst.nodata = -5.0
    res = build_cells(cfg, units=hand["units"], metric_crs=METRIC)
    assert res.conservation["units_total"] == pytest.approx(221)
    # negatives in an age raster are named too
    a60 = write_raster(hand["dir"] / "a60neg.tif", np.where(GRID == NODATA, NODATA, -1.0))
    cfg = PopulationConfig(total=hand["total"], age_60plus=a60, age_0to3=hand["a03"])
    with pytest.raises(PopulationError, match=r"a60neg\.tif \(population\.age_60plus\): 7 cell\(s\)"):
        build_cells(cfg, units=hand["units"], metric_crs=METRIC)


def test_negative_cells_outside_the_study_area_are_ignored(hand: dict) -> None:
    grid = GRID.copy()
    grid[2, 4] = -7.0  # row 2 / col 4 are outside both units
    path = write_raster(hand["dir"] / "far_neg.tif", grid)
    res = build_cells(PopulationConfig(total=path, age_60plus=hand["a60"], age_0to3=hand["a03"]),
                      units=hand["units"], metric_crs=METRIC)
    assert res.conservation["units_total"] == pytest.approx(221)


def test_all_nodata_or_zero_study_area_is_an_error(hand: dict) -> None:
    ratios = hand["dir"] / "r.csv"
    ratios.write_text("unit_code,share_60plus,share_0to3\nA,0.2,0.05\nB,0.1,0.04\n", encoding="utf-8")
    grid = np.full_like(GRID, NODATA)
    grid[:2, :2] = 0.0
    grid[2, :] = 1000.0  # people outside the study area only
    path = write_raster(hand["dir"] / "empty.tif", grid)
    with pytest.raises(PopulationError,
                       match=r"empty\.tif \(population\.total\): no population in the study area: all "
                             r"8 cells are nodata \(4\) or 0 \(4\)\. Fix: check that the raster covers "
                             r"the region"):
        build_cells(PopulationConfig(total=path, ratios_csv=ratios), units=hand["units"], metric_crs=METRIC)
    # an age raster without anyone while the total has people
    a03 = write_raster(hand["dir"] / "a03_empty.tif", np.zeros_like(GRID))
    cfg = PopulationConfig(total=hand["total"], age_60plus=hand["a60"], age_0to3=a03)
    with pytest.raises(PopulationError,
                       match=r"a03_empty\.tif \(population\.age_0to3\): no population in the study area: "
                             r"all 8 cells are nodata \(0\) or 0 \(8\), while population\.total holds "
                             r"221\.0 persons"):
        build_cells(cfg, units=hand["units"], metric_crs=METRIC)


def test_age_raster_above_total_is_an_error(hand: dict) -> None:
    a60 = write_raster(hand["dir"] / "a60_big.tif", np.where(GRID == NODATA, NODATA, np.nan_to_num(GRID) * 2))
    cfg = PopulationConfig(total=hand["total"], age_60plus=a60, age_0to3=hand["a03"])
    with pytest.raises(PopulationError,
                       match=r"a60_big\.tif \(population\.age_60plus\): holds 442\.0 persons in the study "
                             r"area, more than the total raster total\.tif \(221\.0, 200\.0% of "
                             r"it\).*Fix: .*ratios_csv"):
        build_cells(cfg, units=hand["units"], metric_crs=METRIC)


def test_raster_crs_that_cannot_be_right(hand: dict, tmp_path: Path) -> None:
    # degrees labelled as UTM metres
    prof = {"driver": "GTiff", "height": 3, "width": 5, "count": 1, "dtype": "float32", "crs": METRIC,
            "transform": from_origin(LON0, LAT0, D, D), "nodata": NODATA}
    deg = tmp_path / "deg_as_utm.tif"
    with rasterio.open(deg, "w", **prof) as dst:
        dst.write(np.ones((3, 5), "float32"), 1)
    ratios = tmp_path / "r.csv"
    ratios.write_text("unit_code,share_60plus,share_0to3\nA,0.2,0.05\nB,0.1,0.04\n", encoding="utf-8")
    with pytest.raises(PopulationError,
                       match=r"deg_as_utm\.tif \(population\.total\): the raster is labelled EPSG:32648 "
                             r"\(metres\) but its bounds .* look like degrees.*gdal_edit\.py -a_srs "
                             r"EPSG:4326"):
        build_cells(PopulationConfig(total=deg, ratios_csv=ratios), units=hand["units"], metric_crs=METRIC)
    # metres labelled as degrees
    prof.update(crs="EPSG:4326", transform=from_origin(404000.0, 3386000.0, 100.0, 100.0))
    m = tmp_path / "utm_as_deg.tif"
    with rasterio.open(m, "w", **prof) as dst:
        dst.write(np.ones((3, 5), "float32"), 1)
    with pytest.raises(PopulationError,
                       match=r"utm_as_deg\.tif \(population\.total\): the raster is labelled EPSG:4326 "
                             r"\(degrees\) but its bounds .* look projected"):
        build_cells(PopulationConfig(total=m, ratios_csv=ratios), units=hand["units"], metric_crs=METRIC)
    # no CRS at all
    prof.pop("crs")
    prof.update(transform=from_origin(LON0, LAT0, D, D))
    nocrs = tmp_path / "nocrs.tif"
    with rasterio.open(nocrs, "w", **prof) as dst:
        dst.write(np.ones((3, 5), "float32"), 1)
    with pytest.raises(PopulationError, match=r"nocrs\.tif: the raster has no CRS.*gdal_edit\.py -a_srs"):
        build_cells(PopulationConfig(total=nocrs, ratios_csv=ratios), units=hand["units"], metric_crs=METRIC)


def test_no_overlap_names_both_bounds_in_both_crs(hand: dict) -> None:
    ratios = hand["dir"] / "r.csv"
    ratios.write_text("unit_code,share_60plus,share_0to3\nA,0.2,0.05\nB,0.1,0.04\n", encoding="utf-8")
    far = write_raster(hand["dir"] / "comoros.tif", np.ones((3, 5)), lon0=43.2, lat0=-11.4)
    with pytest.raises(PopulationError,
                       match=r"comoros\.tif: the population raster does not overlap the study area: raster "
                             r"bounds \(43\.2, .*\) in EPSG:4326 = lon 43\.2000\.\.43\.2042, lat "
                             r"-11\.4025\.\.-11\.4000; units' bounds \(104, .*\) in EPSG:4326 = lon "
                             r"104\.0000\.\.104\.0027, lat 30\.5983\.\.30\.6000\. Fix: point "
                             r"population\.total at the raster of this region"):
        build_cells(PopulationConfig(total=far, ratios_csv=ratios), units=hand["units"], metric_crs=METRIC)
    # a projected raster: bounds in metres and in lon/lat
    prof = {"driver": "GTiff", "height": 3, "width": 5, "count": 1, "dtype": "float32", "crs": "EPSG:32738",
            "transform": from_origin(350000.0, 8740000.0, 100.0, 100.0), "nodata": NODATA}
    utm = hand["dir"] / "utm38s.tif"
    with rasterio.open(utm, "w", **prof) as dst:
        dst.write(np.ones((3, 5), "float32"), 1)
    with pytest.raises(PopulationError,
                       match=r"utm38s\.tif: .*raster bounds \(350000, 8\.7397e\+06, 350500, 8\.74e\+06\) "
                             r"in EPSG:32738 = lon 43\.6.*; units' bounds .* in EPSG:32738 = lon "
                             r"10[34]\.\d+\.\.104\.\d+, lat 30\.5"):
        build_cells(PopulationConfig(total=utm, ratios_csv=ratios), units=hand["units"], metric_crs=METRIC)


def test_census_csv_columns_and_codes(census_setup: dict) -> None:
    d, units = census_setup["dir"], census_setup["units"]
    cols = d / "cols.csv"
    cols.write_text("code,population\nA,1000\nB,500\n", encoding="utf-8")
    with pytest.raises(PopulationError,
                       match=r"cols\.csv: census totals lacks column\(s\) unit_code, pop_total \(needs "
                             r"unit_code, pop_total; has code, population\)\. Fix: rename the CSV's "
                             r"columns"):
        build_cells(PopulationConfig(census_csv=cols), units=units, metric_crs=METRIC)
    other = d / "other.csv"
    other.write_text("unit_code,pop_total,pop_60plus,pop_0to3\n510104001,1000,200,30\n510104002,500,150,10\n",
                     encoding="utf-8")
    with pytest.raises(PopulationError,
                       match=r"other\.csv: none of the 2 unit_code\(s\) of the census totals matches a "
                             r"unit of the units layer \(CSV: 510104001, 510104002; units layer: A, B\)\. "
                             r"Fix: .*population\.census_csv"):
        build_cells(PopulationConfig(census_csv=other), units=units, metric_crs=METRIC)
    gbk = d / "gbk.csv"
    gbk.write_bytes("unit_code,pop_total\n甲,1000\n".encode("gbk"))
    with pytest.raises(PopulationError, match=r"gbk\.csv: cannot read census totals as a UTF-8 CSV"):
        build_cells(PopulationConfig(census_csv=gbk), units=units, metric_crs=METRIC)


def test_ratios_csv_columns_and_codes(hand: dict) -> None:
    ratios = hand["dir"] / "ratios.csv"
    ratios.write_text("unit_code,p60\nA,0.3\nB,0.1\n", encoding="utf-8")
    with pytest.raises(PopulationError, match=r"ratios\.csv: census ratios lacks column\(s\) share_60plus, "
                                              r"share_0to3 .*Fix"):
        build_cells(PopulationConfig(total=hand["total"], ratios_csv=ratios), units=hand["units"],
                    metric_crs=METRIC)
    ratios.write_text("unit_code,share_60plus,share_0to3\nX,0.3,0.02\n", encoding="utf-8")
    with pytest.raises(PopulationError,
                       match=r"ratios\.csv: none of the 1 unit_code\(s\) of the census ratios matches "
                             r".*population\.ratios_csv"):
        build_cells(PopulationConfig(total=hand["total"], ratios_csv=ratios), units=hand["units"],
                    metric_crs=METRIC)


# ---------------------------------------------------------------------------------------------
# Population outside every unit: measured, reported by nearest unit, attached within a distance
# ---------------------------------------------------------------------------------------------
# A metric raster (EPSG:32648, 100 m cells) of 7 x 10 cells; the CORE is rows 1..5, cols 1..8 (core row r,
# col c holds 10 r + c + 1 persons: 980 in all). Units in core cell units (x = col, y = row, downwards):
# A = x 0..2.8, y 0..5; B = x 4.4..8, y 0..2. Their bounding box is exactly the core. Outside every unit:
# core col 3 (5 cells, 120 persons, 70 m from A) and core rows 2..4 x cols 4..7 (12 cells, 438 persons):
# 17 cells, 558 persons. Two cells of the ring around the core hold people: core (2, -1) = 1000 persons
# (50 m west of A) and core (5, 5) = 2000 persons (nearest A at sqrt(270^2 + 50^2) = 274.6 m).
MX0, MY0 = 400_000.0, 3_390_000.0  # top-left corner of the RASTER (the core starts one cell in)


def mbox(c0: float, r0: float, c1: float, r1: float) -> shapely.Polygon:
    """A box in core cell units of the metric test raster."""
    return shapely.box(MX0 + (c0 + 1) * 100, MY0 - (r1 + 1) * 100, MX0 + (c1 + 1) * 100, MY0 - (r0 + 1) * 100)


@pytest.fixture()
def shore(tmp_path: Path) -> dict:
    arr = np.zeros((7, 10))
    r, c = np.mgrid[0:5, 0:8]
    arr[1:6, 1:9] = 10 * r + c + 1
    arr[1 + 2, 0] = 1000.0
    arr[1 + 5, 1 + 5] = 2000.0
    path = tmp_path / "shore.tif"
    prof = {"driver": "GTiff", "height": 7, "width": 10, "count": 1, "dtype": "float32", "crs": METRIC,
            "transform": from_origin(MX0, MY0, 100.0, 100.0), "nodata": NODATA}
    with rasterio.open(path, "w", **prof) as dst:
        dst.write(arr.astype("float32"), 1)
    units = gpd.GeoDataFrame({"unit_code": ["A", "B"]}, geometry=[mbox(0, 0, 2.8, 5), mbox(4.4, 0, 8, 2)],
                             crs=METRIC)
    ratios = tmp_path / "ratios.csv"
    ratios.write_text("unit_code,share_60plus,share_0to3\nA,0.2,0.05\nB,0.1,0.04\n", encoding="utf-8")
    return {"total": path, "units": units, "ratios": ratios}


def test_outside_population_reported_by_nearest_unit(shore: dict) -> None:
    cfg = PopulationConfig(total=shore["total"], ratios_csv=shore["ratios"])
    res = build_cells(cfg, units=shore["units"], metric_crs=METRIC)
    assert res.shape == (5, 8)  # the units' bounding box: the ring is not read
    assert by_unit(res.cells) == pytest.approx({"A": 330, "B": 92})
    out = res.outside
    assert (out.people, out.cells) == (pytest.approx(558), 17)
    assert out.window_people == pytest.approx(980)
    assert out.share_of_raster_window == pytest.approx(558 / 980)
    assert (out.attach_m, out.attached_cells, out.attached_people) == (0, 0, 0)
    by = out.by_nearest_unit.set_index("unit_code")
    assert list(out.by_nearest_unit.columns) == list(population.OUTSIDE_COLUMNS)
    assert list(by.index) == ["B", "A"]  # most people first
    # A: core col 3 (70 m) and core (4, 4) (170 m, nearer A than B's 250 m); B: the 11 others, 50..250 m
    assert by.loc["A", ["cells", "people", "distance_min_m", "distance_max_m"]].tolist() == pytest.approx(
        [6, 120 + 45, 70, 170])
    assert by.loc["B", ["cells", "people", "distance_min_m", "distance_max_m"]].tolist() == pytest.approx(
        [11, 393, 50, 250])
    assert (by[["attached_cells", "attached_people"]] == 0).all().all()
    # the identity: units + outside == window, nothing vanishes
    cons = res.conservation
    assert cons["units_total"] + cons["outside_total"] == pytest.approx(cons["window_total"], abs=1e-9)
    assert (cons["window_total"], cons["outside_total"], cons["raster_total_touching"]) == pytest.approx(
        (980, 558, 422))
    assert out.text() == ("outside every unit: 558 persons in 17 cells (56.9% of the raster window's 980); "
                          "nearest unit B 393 in 11 cells at 50-250 m, A 165 in 6 cells at 70-170 m")
    d = out.to_dict()
    assert d["cells"] == 17 and d["by_nearest_unit"][0]["unit_code"] == "B"
    import json
    json.dumps(d)  # JSON-ready for run_info.json


def test_attach_outside_m_attaches_exactly_the_cells_within_the_distance(shore: dict) -> None:
    coms = gpd.GeoDataFrame({"community_code": ["A1", "A2"], "unit_code": ["A", "A"]},
                            geometry=[mbox(0, 0, 1.4, 5), mbox(1.4, 0, 2.8, 5)], crs=METRIC)
    cfg = PopulationConfig(total=shore["total"], ratios_csv=shore["ratios"], attach_outside_m=100.0)
    res = build_cells(cfg, units=shore["units"], communities=coms, metric_crs=METRIC)
    assert res.shape == (7, 10)  # window widened by 100 m = one cell on each side
    out = res.outside
    # attached (<= 100 m): core col 3 (70 m, A: 120), core row 2 cols 4..7 (50 m, B: 106), the ring cell
    # west of A (50 m, A: 1000); the 274.6 m ring cell and the rest stay outside
    assert (out.attached_cells, out.attached_people) == (10, pytest.approx(1226))
    assert (out.cells, out.people) == (9, pytest.approx(332 + 2000))
    assert by_unit(res.cells) == pytest.approx({"A": 330 + 120 + 1000, "B": 92 + 106})
    assert by_unit(res.cells, "pop_60plus") == pytest.approx({"A": 1450 * 0.2, "B": 198 * 0.1})
    by = out.by_nearest_unit.set_index("unit_code")
    assert by.loc["A", ["cells", "people", "distance_min_m", "distance_max_m", "attached_cells",
                        "attached_people"]].tolist() == pytest.approx(
        [2, 2045, 170, float(np.hypot(270, 50)), 6, 1120])
    assert by.loc["B", ["cells", "people", "distance_min_m", "distance_max_m", "attached_cells",
                        "attached_people"]].tolist() == pytest.approx([7, 287, 150, 250, 4, 106])
    cons = res.conservation
    assert cons["window_total"] == pytest.approx(3980)
    assert cons["units_total"] + cons["outside_total"] == pytest.approx(3980, abs=1e-9)
    assert cons["attached_total"] == pytest.approx(1226)
    # attached cells: weight 1, the nearest community of their unit ("" for a unit without communities)
    c = res.cells
    att = c[(c["col"] == 4) | ((c["row"] == 3) & (c["col"] >= 5)) | ((c["row"] == 3) & (c["col"] == 0))]
    assert len(att) == 10 and (att["weight"] == 1).all()
    assert dict(zip(zip(att["row"], att["col"], strict=True), att["community_code"], strict=True)) == {
        (3, 0): "A1", **{(r, 4): "A2" for r in range(1, 6)}, **{(3, k): "" for k in range(5, 9)}}
    assert out.text().endswith("attached within 100 m: 1,226 persons in 10 cells")
    # 160 m also attaches core row 3, cols 4..7 (150 m from B: 146 persons), not core (4, 4) (170 m from A)
    cfg = PopulationConfig(total=shore["total"], ratios_csv=shore["ratios"], attach_outside_m=160)
    res2 = build_cells(cfg, units=shore["units"], metric_crs=METRIC)
    assert (res2.outside.attached_cells, res2.outside.attached_people) == (14, pytest.approx(1226 + 146))
    assert by_unit(res2.cells)["B"] == pytest.approx(198 + 146)
    assert res2.outside.people == pytest.approx(3980 - res2.conservation["units_total"])


def test_outside_population_cannot_vanish(shore: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    # a broken outside measurement (cells dropped) breaks the identity units + outside == window
    real = population._outside_cells
    monkeypatch.setattr(population, "_outside_cells", lambda flat, *a, **k: real(flat[:0], *a, **k))
    with pytest.raises(PopulationError, match=r"not conserved: the units hold 422\.0 persons and 0\.0 lie in "
                                              r"cells outside every unit .* holds 980\.0"):
        build_cells(PopulationConfig(total=shore["total"], ratios_csv=shore["ratios"]), units=shore["units"],
                    metric_crs=METRIC)


def test_census_has_no_outside_population(census_setup: dict) -> None:
    res = build_cells(PopulationConfig(census_csv=census_setup["csv"], census_cell_m=100.0),
                      units=census_setup["units"], metric_crs=METRIC, roads=census_setup["roads"])
    assert (res.outside.people, res.outside.cells, res.outside.attached_cells) == (0, 0, 0)
    assert "by construction" in res.outside.note and "by construction" in res.outside.text()
    assert res.conservation["outside_total"] == 0
    assert res.conservation["units_total"] == pytest.approx(res.conservation["window_total"])


def test_attach_outside_m_range_in_config(tmp_path: Path) -> None:
    from coverage.config import ConfigError, load_config

    p = tmp_path / "coverage.toml"
    base = '[region]\nname = "t"\n[units]\npath = "u.geojson"\n[network]\npath = "r.osm"\n[population]\n'
    p.write_text(base + 'total = "pop.tif"\nattach_outside_m = 5000\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"population\.attach_outside_m = 5000: expected a distance between "
                                          r"0 and 2000 m"):
        load_config(p)
    p.write_text(base + 'total = "pop.tif"\nattach_outside_m = 500\n', encoding="utf-8")
    assert load_config(p).population.attach_outside_m == 500
    assert PopulationConfig().attach_outside_m == 0
