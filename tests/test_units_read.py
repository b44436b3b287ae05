"""Reading 街道/乡镇 units: GCJ-02/BD-09 outlines (``[units] coords``) and the shift check against the
roads, files without type/class fields (``default_type`` / ``default_class``), field-name suggestions,
and a district or county analysed as one 区县 unit."""

from __future__ import annotations

import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from pyproj import Transformer

from coverage.config import Config, NetworkConfig, PopulationConfig, RegionConfig, UnitsConfig
from coverage.coords import wgs84_to_gcj02
from coverage.errors import LayerError
from coverage.layers import check_layers, read_units
from coverage.layers.placement import shift_warning
from coverage.layers.units import units_shift_warning, units_shift_warnings

METRIC = "EPSG:32648"
X0, Y0 = 404_000.0, 3_386_000.0  # near Chengdu (104.0 E, 30.6 N), UTM 48N
TO_LL = Transformer.from_crs(METRIC, "EPSG:4326", always_xy=True)
TO_M = Transformer.from_crs("EPSG:4326", METRIC, always_xy=True)
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "chengdu-central"


def _ll(g: shapely.Geometry) -> shapely.Geometry:
    """A geometry given in metres from (X0, Y0) as lon/lat."""
    return shapely.transform(shapely.affinity.translate(g, X0, Y0),
                             lambda xy: np.c_[TO_LL.transform(xy[:, 0], xy[:, 1])])


def _gcj(g: shapely.Geometry) -> shapely.Geometry:
    """Every vertex of a lon/lat geometry shifted to GCJ-02 (what a DataV/AMap outline holds)."""
    return shapely.transform(g, lambda xy: np.c_[wgs84_to_gcj02(xy[:, 0], xy[:, 1])])


# Two 街道 whose borders run along streets (a 100 m vertex spacing, as a digitised outline has), and
# the streets: the borders themselves plus a few inner streets, in metres from (X0, Y0).
_A = shapely.Polygon([(0, 0), (1500, 0), (1500, 700), (1100, 700), (1100, 1600), (0, 1600)])
_B = shapely.Polygon([(1500, 0), (2600, 0), (2600, 1600), (1100, 1600), (1100, 700), (1500, 700)])
UNITS_M = [shapely.segmentize(_A, 100), shapely.segmentize(_B, 100)]
STREETS_M = [shapely.LineString([(0, 400), (2600, 400)]), shapely.LineString([(0, 1200), (2600, 1200)]),
             shapely.LineString([(600, 0), (600, 1600)]), shapely.LineString([(2100, 0), (2100, 1600)])]


def _roads() -> gpd.GeoSeries:
    lines = [shapely.LineString(p.exterior.coords) for p in UNITS_M] + STREETS_M
    return gpd.GeoSeries([shapely.affinity.translate(g, X0, Y0) for g in lines], crs=METRIC)


def _cfg(tmp: Path, units: UnitsConfig, metric_crs: str = METRIC) -> Config:
    return Config(path=tmp / "coverage.toml", region=RegionConfig(name="t", metric_crs=metric_crs),
                  units=units, network=NetworkConfig(path=tmp / "x.osm"),
                  population=PopulationConfig(total=tmp / "p.tif"), facilities=(), services={})


def _write(tmp: Path, geoms: list[shapely.Geometry], fname: str = "units.geojson", **cols: list) -> Path:
    n = len(geoms)
    cols = cols or {"code": [f"U{i}" for i in range(n)], "name": [f"街道{i}" for i in range(n)],
                    "type": ["街道"] * n}
    p = tmp / fname
    gpd.GeoDataFrame(cols, geometry=geoms, crs="EPSG:4326").to_file(p, driver="GeoJSON")
    return p


# --------------------------------------------------------------------------------------------
# Item 4: GCJ-02 / BD-09 outlines and the shift check
# --------------------------------------------------------------------------------------------


def test_datav_like_gcj02_outline_declared_wgs84_is_warned(tmp_path: Path) -> None:
    p = _write(tmp_path, [_gcj(_ll(g)) for g in UNITS_M])
    cfg = _cfg(tmp_path, UnitsConfig(path=p))
    u = read_units(cfg)
    w = units_shift_warning(u.units, _roads(), METRIC, cfg.units.coords)
    assert w is not None and w.startswith("unit boundaries look shifted: "), w
    assert "if they are GCJ-02 (AMap/Tencent) coordinates" in w
    assert 'set units.coords = "gcj02"' in w
    # check-layers reports it with the units (a warning: the check stays OK)
    rep = check_layers(cfg, roads=_roads())
    assert any("unit boundaries look shifted" in x for x in rep.units.warnings), rep.units.warnings
    assert rep.ok


def test_gcj02_outline_declared_gcj02_is_converted_back_without_warning(tmp_path: Path) -> None:
    truth = [_ll(g) for g in UNITS_M]
    p = _write(tmp_path, [_gcj(g) for g in truth])
    cfg = _cfg(tmp_path, UnitsConfig(path=p, coords="gcj02"))
    u = read_units(cfg)
    for got, want in zip(u.units.geometry, truth, strict=True):
        a = shapely.get_coordinates(got)
        b = shapely.get_coordinates(want)
        ax, ay = TO_M.transform(a[:, 0], a[:, 1])
        bx, by = TO_M.transform(b[:, 0], b[:, 1])
        assert len(a) == len(b) and np.hypot(ax - bx, ay - by).max() < 0.5
    assert units_shift_warning(u.units, _roads(), METRIC, "gcj02") is None
    assert units_shift_warnings(cfg.units, u.units, u.communities, roads=_roads(), metric_crs=METRIC) == []


def test_wgs84_outline_declared_gcj02_is_warned_as_shifted_twice(tmp_path: Path) -> None:
    p = _write(tmp_path, [_ll(g) for g in UNITS_M])
    u = read_units(_cfg(tmp_path, UnitsConfig(path=p, coords="gcj02")))
    w = units_shift_warning(u.units, _roads(), METRIC, "gcj02")
    assert w is not None and 'as declared (units.coords = "gcj02", back-shifted)' in w
    assert 'set units.coords = "wgs84"' in w
    # declared right, the WGS84 outline is quiet
    u = read_units(_cfg(tmp_path, UnitsConfig(path=p)))
    assert units_shift_warning(u.units, _roads(), METRIC, "wgs84") is None


def test_communities_coords_apply_to_the_communities_only(tmp_path: Path) -> None:
    truth = [_ll(g) for g in UNITS_M]
    pu = _write(tmp_path, truth)
    pc = _write(tmp_path, [_gcj(g) for g in truth], fname="c.geojson", code=["C1", "C2"],
                name=["社区1", "社区2"], parent_code=["U0", "U1"])
    uc = UnitsConfig(path=pu, communities_path=pc, communities_coords="gcj02")
    u = read_units(_cfg(tmp_path, uc))
    assert u.communities.geometry.iloc[0].hausdorff_distance(truth[0]) < 1e-5  # ~1 m in degrees
    assert u.units.geometry.iloc[0].equals_exact(truth[0], 1e-9)
    assert units_shift_warnings(uc, u.units, u.communities, roads=_roads(), metric_crs=METRIC) == []
    wrong = UnitsConfig(path=pu, communities_path=pc)
    u = read_units(_cfg(tmp_path, wrong))
    w = units_shift_warnings(wrong, u.units, u.communities, roads=_roads(), metric_crs=METRIC)
    assert len(w) == 1 and w[0].startswith(f"{pc}: community boundaries look shifted")
    assert 'set units.communities_coords = "gcj02"' in w[0]


def test_unit_outline_mostly_outside_the_roads_cannot_be_checked(tmp_path: Path) -> None:
    p = _write(tmp_path, [_gcj(_ll(g)) for g in UNITS_M])
    u = read_units(_cfg(tmp_path, UnitsConfig(path=p)))
    # a small road extract in the middle of unit A: no border vertex lies within it
    roads = gpd.GeoSeries([shapely.LineString([(X0 + 200, Y0 + 300), (X0 + 900, Y0 + 300)]),
                           shapely.LineString([(X0 + 300, Y0 + 200), (X0 + 300, Y0 + 1000)])], crs=METRIC)
    w = units_shift_warning(u.units, roads, METRIC, "wgs84")
    assert w is not None
    assert re.match(r"cannot check: only [0-9] points lie within the road network \(unit boundary "
                    r"vertices, of \d+; 20 are needed\)", w), w


def test_points_mostly_outside_the_road_extent_cannot_be_checked() -> None:
    # 10 points on a line of 5 km; roads cover only its first 600 m: 2 points inside their extent
    x = X0 + np.arange(10) * 500.0 + 50
    y = np.full(10, Y0 + 100.0)
    lon, lat = TO_LL.transform(x, y)
    roads = gpd.GeoSeries([shapely.box(X0, Y0, X0 + 600, Y0 + 200).exterior], crs=METRIC)
    w = shift_warning(x, y, np.asarray(lon), np.asarray(lat), roads, METRIC, "facilities[0]")
    assert w is not None and w.startswith("cannot check: only 2 points lie within the road network (of 10;")
    assert "facilities[0].coords" in w


def test_points_declared_gcj02_but_already_wgs84_are_warned() -> None:
    # points ON a street grid, written in WGS84, declared GCJ-02: back-shifted they leave the streets
    xs = np.arange(0, 4001, 250.0)
    lines = [shapely.LineString([(X0 + v, Y0), (X0 + v, Y0 + 4000)]) for v in xs]
    lines += [shapely.LineString([(X0, Y0 + v), (X0 + 4000, Y0 + v)]) for v in xs]
    roads = gpd.GeoSeries(lines, crs=METRIC)
    rng = np.random.default_rng(1)
    px = X0 + rng.choice(xs[1:-1], 12) + rng.uniform(-5, 5, 12)
    py = Y0 + rng.uniform(300, 3700, 12)
    lon, lat = (np.asarray(v) for v in TO_LL.transform(px, py))
    from coverage.coords import gcj02_to_wgs84

    bx, by = (np.asarray(v) for v in TO_M.transform(*gcj02_to_wgs84(lon, lat)))  # placed as declared
    w = shift_warning(bx, by, lon, lat, roads, METRIC, "facilities[0]", coords="gcj02")
    assert w is not None and w.startswith("points look shifted"), w
    assert 'as declared (facilities[0].coords = "gcj02", back-shifted)' in w
    assert 'set facilities[0].coords = "wgs84"' in w
    # declared right (wgs84), no warning
    assert shift_warning(px, py, lon, lat, roads, METRIC, "facilities[0]") is None


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/chengdu-central is absent")
def test_real_datav_districts_over_the_real_road_extract_say_cannot_check() -> None:
    # the DataV outlines are generalised: only a handful of their vertices fall in the 3.7 km x 3.4 km
    # road extract, too few to tell: the check says so instead of staying silent
    roads = gpd.read_file(SHARED / "roads" / "chengdu_central_edges_wgs84.geojson").to_crs(METRIC).geometry
    gcj = gpd.read_file(SHARED / "boundaries" / "datav_510100_chengdu_districts.json")
    w = units_shift_warning(gcj, roads, METRIC, "wgs84")
    assert w is not None and w.startswith("cannot check: only ")
    assert "points lie within the road network (unit boundary vertices" in w


# --------------------------------------------------------------------------------------------
# Item 5: files without type/class fields, field suggestions, 区县 units
# --------------------------------------------------------------------------------------------


def test_default_type_and_class_for_a_file_without_the_fields(tmp_path: Path) -> None:
    p = _write(tmp_path, [_ll(g) for g in UNITS_M], code=["T1", "T2"], name=["白水镇", "金河镇"])
    with pytest.raises(LayerError, match=r"units\.type_field = 'type' not found; the file has code, name: "
                                         r"set units\.type_field to the field that holds the types \(or, for "
                                         r"a file without types, units\.default_type = "):
        read_units(_cfg(tmp_path, UnitsConfig(path=p)))
    u = read_units(_cfg(tmp_path, UnitsConfig(path=p, default_type="镇")))
    assert u.units["unit_type"].tolist() == ["镇", "镇"]
    assert u.units["unit_class"].tolist() == ["郊区", "郊区"]
    uc = UnitsConfig(path=p, type_field="", default_type="镇", default_class="城区")
    u = read_units(_cfg(tmp_path, uc))
    assert u.units["unit_class"].tolist() == ["城区", "城区"]


def test_default_type_fills_empty_type_cells_and_the_field_wins(tmp_path: Path) -> None:
    p = _write(tmp_path, [_ll(g) for g in UNITS_M], code=["S1", "T1"], name=["老城街道", "白水镇"],
               type=["街道", ""], **{"class": ["", ""]})
    with pytest.raises(LayerError, match=r"unit 'T1': type = '', expected 街道, 镇 or 乡 \(or 区县 .*\); "
                                         r"or set units\.default_type for empty ones"):
        read_units(_cfg(tmp_path, UnitsConfig(path=p)))
    u = read_units(_cfg(tmp_path, UnitsConfig(path=p, default_type="镇")))
    assert u.units["unit_type"].tolist() == ["街道", "镇"]
    assert u.units["unit_class"].tolist() == ["城区", "郊区"]


def test_field_suggestions_case_insensitive_chinese_and_english(tmp_path: Path) -> None:
    geoms = [_ll(g) for g in UNITS_M]
    p = _write(tmp_path, geoms, ADCODE=["510107001", "510107002"], NAME=["a", "b"], TYPE=["街道", "街道"])
    with pytest.raises(LayerError) as ei:
        read_units(_cfg(tmp_path, UnitsConfig(path=p)))
    msg = str(ei.value)
    assert "units.code_field = 'code' not found; the file has ADCODE, NAME, TYPE: set units.code_field = " \
           "\"ADCODE\"" in msg
    assert 'set units.name_field = "NAME"' in msg and 'set units.type_field = "TYPE"' in msg
    u = read_units(_cfg(tmp_path, UnitsConfig(path=p, code_field="ADCODE", name_field="NAME",
                                              type_field="TYPE")))
    assert u.units["unit_code"].tolist() == ["510107001", "510107002"]
    p = _write(tmp_path, geoms, fname="zh.geojson", 区划代码=["1", "2"], 名称=["a", "b"], 级别=["镇", "乡"])
    with pytest.raises(LayerError) as ei:
        read_units(_cfg(tmp_path, UnitsConfig(path=p)))
    msg = str(ei.value)
    for want in ('set units.code_field = "区划代码"', 'set units.name_field = "名称"',
                 'set units.type_field = "级别"'):
        assert want in msg, msg


def test_community_field_suggestions(tmp_path: Path) -> None:
    geoms = [_ll(g) for g in UNITS_M]
    pu = _write(tmp_path, geoms)
    pc = _write(tmp_path, geoms[:1], fname="c.geojson", 社区代码=["C1"], name=["社区1"], 上级代码=["U0"])
    with pytest.raises(LayerError) as ei:
        read_units(_cfg(tmp_path, UnitsConfig(path=pu, communities_path=pc)))
    assert ("units.community_parent_field = 'parent_code' not found; the file has 社区代码, name, "
            '上级代码: set units.community_parent_field = "上级代码"') in str(ei.value)
    assert "units.community_code_field = 'code' not found" in str(ei.value)


def test_a_district_as_one_unit(tmp_path: Path) -> None:
    outline = _ll(shapely.union_all(UNITS_M))
    p = _write(tmp_path, [outline], adcode=["510107"], name=["武侯区"])
    uc = UnitsConfig(path=p, code_field="adcode", default_type="区县")
    with pytest.raises(LayerError, match=r"1 区县 unit\(s\) without a class \('510107'\): set "
                                         r"units\.default_class = \"城区\" .* or \"郊区\""):
        read_units(_cfg(tmp_path, uc))
    u = read_units(_cfg(tmp_path, UnitsConfig(path=p, code_field="adcode", default_type="区县",
                                              default_class="城区")))
    assert u.units[["unit_code", "unit_name", "unit_type", "unit_class", "area_type"]].values.tolist() == [
        ["510107", "武侯区", "区县", "城区", "mixed"]]


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/chengdu-central is absent")
def test_real_datav_county_outline_as_one_gcj02_unit(tmp_path: Path) -> None:
    # 武侯区 from DataV (GCJ-02, fields adcode/name/level, no type): one 区县 unit, back to WGS84
    p = SHARED / "boundaries" / "datav_county_510107.json"
    with pytest.raises(LayerError, match=r"units\.code_field = 'code' not found; the file has adcode, name, "
                                         r".*: set units\.code_field = \"adcode\""):
        read_units(_cfg(tmp_path, UnitsConfig(path=p, default_type="区县", default_class="城区")))
    uc = UnitsConfig(path=p, code_field="adcode", default_type="区县", default_class="城区", coords="gcj02")
    u = read_units(_cfg(tmp_path, uc, metric_crs="auto"))
    assert u.units[["unit_code", "unit_name", "unit_type", "unit_class"]].values.tolist() == [
        ["510107", "武侯区", "区县", "城区"]]
    # the 20 districts of the city file as 区县 units: back-shifted, they match the scout's WGS84
    # conversion (an independent implementation) to within a metre
    city = SHARED / "boundaries" / "datav_510100_chengdu_districts.json"
    uc = UnitsConfig(path=city, code_field="adcode", default_type="区县", default_class="郊区",
                     coords="gcj02")
    u = read_units(_cfg(tmp_path, uc))
    assert len(u.units) == 20 and set(u.units["unit_type"]) == {"区县"}
    ref = gpd.read_file(SHARED / "boundaries" / "chengdu_districts_wgs84_derived.geojson")
    want = ref.loc[ref["name"] == "武侯区"].to_crs(METRIC).geometry.iloc[0]
    got = u.units.loc[u.units["unit_name"] == "武侯区"].to_crs(METRIC).geometry.iloc[0]
    assert got.hausdorff_distance(want) < 1.0  # metres
    raw = gpd.read_file(city)
    raw = raw.loc[raw["name"] == "武侯区"].to_crs(METRIC).geometry.iloc[0]
    assert raw.hausdorff_distance(want) > 200  # the GCJ-02 offset in Chengdu is ~250-300 m
