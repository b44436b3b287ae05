"""Input layers: a corpus of malformed municipal files generated here, each with its message pinned.

Every generated layer lies in a 0.1 x 0.1 degree box in Chengdu (104.0-104.1 E, 30.6-30.7 N, UTM 48N).
"""

from __future__ import annotations

import dataclasses
import json
import math
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from conftest import shared_file
from pyproj import Transformer

from coverage.config import (
    Config,
    FacilityLayerConfig,
    NetworkConfig,
    PopulationConfig,
    RegionConfig,
    UnitsConfig,
)
from coverage.coords import wgs84_to_bd09, wgs84_to_gcj02
from coverage.layers import (
    LayerError,
    check_layers,
    facilities_from_osm,
    map_kind,
    parse_number,
    read_facilities,
    read_units,
    resolve_metric_crs,
    units_from_osm,
    write_rejects,
)
from coverage.services import BUILTIN_KINDS, Kind

# writing the generated shapefiles makes GDAL launder/truncate long Chinese field names: expected
pytestmark = [pytest.mark.filterwarnings("ignore:Could not decode error message:RuntimeWarning"),
              pytest.mark.filterwarnings("ignore:'crs' was not provided:UserWarning")]

METRIC = "EPSG:32648"
BOX = shapely.box(104.0, 30.6, 104.1, 30.7)
TO_M = Transformer.from_crs("EPSG:4326", METRIC, always_xy=True)

# (lon, lat, name, type, beds) of three facilities well inside the box
ROWS = [(104.03, 30.65, "幸福养老院", "养老院", "120张"),
        (104.07, 30.66, "阳光托育中心", "托育机构", ""),
        (104.05, 30.62, "长寿食堂一号", "长寿食堂", "")]


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------

def _units_file(tmp: Path, *, with_class: bool = True) -> Path:
    props = [{"code": "510107001", "name": "甲街道", "type": "街道", "area_type": "old"},
             {"code": "510107100", "name": "乙镇", "type": "镇", "area_type": "new"}]
    if with_class:
        props[0]["class"] = ""  # empty: default from type
        props[1]["class"] = "郊区"
    gdf = gpd.GeoDataFrame(props, geometry=[shapely.box(104.0, 30.6, 104.05, 30.7),
                                            shapely.box(104.05, 30.6, 104.1, 30.7)], crs="EPSG:4326")
    p = tmp / "units.geojson"
    gdf.to_file(p, driver="GeoJSON")
    return p


def _cfg(tmp: Path, *layers: FacilityLayerConfig, units: UnitsConfig | None = None,
         metric_crs: str = "auto") -> Config:
    return Config(path=tmp / "coverage.toml", region=RegionConfig(name="t", metric_crs=metric_crs),
                  units=units or UnitsConfig(path=_units_file(tmp)),
                  network=NetworkConfig(path=tmp / "x.osm"),
                  population=PopulationConfig(total=tmp / "p.tif"), facilities=tuple(layers), services={})


def _read(tmp: Path, *layers: FacilityLayerConfig, roads: gpd.GeoSeries | None = None):
    return read_facilities(_cfg(tmp, *layers), study_area_wgs84=BOX, metric_crs=METRIC, roads=roads)


def _csv(tmp: Path, rows: list[dict], name: str = "f.csv", encoding: str = "utf-8") -> Path:
    p = tmp / name
    pd.DataFrame(rows).to_csv(p, index=False, encoding=encoding)
    return p


def _std_rows(**extra) -> list[dict]:
    return [{"名称": n, "类型": t, "经度": x, "纬度": y, "床位数": b, **extra} for x, y, n, t, b in ROWS]


def _shp(tmp: Path, *, encoding: str = "gbk", keep_cpg: bool = False, keep_prj: bool = True,
         crs: str = "EPSG:4490", name: str = "fac") -> Path:
    d = tmp / name
    d.mkdir(exist_ok=True)
    gdf = gpd.GeoDataFrame({"名称": [r[2] for r in ROWS], "类型": [r[3] for r in ROWS],
                            "护理型床位数": [50, 0, 0], "床位数": [120, 0, 0],
                            "地址": ["武侯区一路1号", "", ""]},
                           geometry=gpd.points_from_xy([r[0] for r in ROWS], [r[1] for r in ROWS]), crs=crs)
    p = d / f"{name}.shp"
    gdf.to_file(p, encoding=encoding)
    if not keep_cpg:
        p.with_suffix(".cpg").unlink(missing_ok=True)
    if not keep_prj:
        p.with_suffix(".prj").unlink()
    return p


def _reasons(res) -> list[str]:
    return res.rejects.sort_values("row")["reason"].tolist()


def _check_balance(res) -> None:
    for s in res.reports:
        assert s.accepted + sum(s.rejected.values()) == s.rows_read


def _wgs_m(lon: float, lat: float) -> tuple[float, float]:
    x, y = TO_M.transform(lon, lat)
    return float(x), float(y)


# ------------------------------------------------------------------------------------------------
# small parsers
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text,value", [("120张", 120), ("1,500", 1500), ("1500㎡", 1500),
                                        ("1500平方米", 1500), ("约80", 80), ("80左右", 80), (" 35 ", 35),
                                        ("1.2万", 12000), (7, 7)])
def test_parse_number(text, value) -> None:
    assert parse_number(text) == value


def test_parse_number_empty_and_bad() -> None:
    assert math.isnan(parse_number("")) and math.isnan(parse_number(None)) and math.isnan(parse_number("无"))
    assert parse_number("很多") is None and parse_number("80-100") is None


@pytest.mark.parametrize("text,kind", [
    ("养老院", "elderly_institution"), ("福利院", "elderly_institution"),
    ("社区养老服务综合体", "community_complex"), ("嵌入式社区养老院", "embedded_nursing_home"),
    ("日间照料站", "daycare_center"), ("老年餐桌", "meal_point"), ("助餐点", "meal_point"),
    ("中央厨房", "central_kitchen"), ("乡镇区域性养老服务中心", "town_regional_center"),
    ("互助养老点", "village_mutual_aid"), ("敬老院", "welfare_home"), ("特困供养服务设施", "welfare_home"),
    ("托育点", "childcare"), ("幼儿园托班", "kindergarten"), ("老幼复合型社区综合体", "old_young_complex"),
    ("社区卫生服务站", "health_center"), ("乡镇卫生院", "township_hospital"), ("医院", "hospital"),
    ("公办养老院", "elderly_institution"), ("kindergarten", "kindergarten"),
    (" 日间照料中心 ", "daycare_center"),
])
def test_map_kind(text, kind) -> None:
    assert map_kind(text) == kind


def test_map_kind_unknown_and_config() -> None:
    assert map_kind("超市") is None
    assert map_kind("超市", extra={"超市": "meal_point"}) == "meal_point"


# ------------------------------------------------------------------------------------------------
# the malformed corpus
# ------------------------------------------------------------------------------------------------

def test_01_shapefile_without_prj(tmp_path) -> None:
    p = _shp(tmp_path, keep_prj=False)
    with pytest.raises(LayerError, match=r"fac\.shp: no CRS \(no \.prj file\); set facilities\[0\]\.crs"):
        _read(tmp_path, FacilityLayerConfig(name="a", path=p))
    res = _read(tmp_path, FacilityLayerConfig(name="a", path=p, crs="EPSG:4490"))
    assert len(res.facilities) == 3


def test_02_gbk_shapefile_without_cpg(tmp_path) -> None:
    p = _shp(tmp_path, encoding="gbk")
    assert not p.with_suffix(".cpg").exists()
    res = _read(tmp_path, FacilityLayerConfig(name="a", path=p))
    f = res.facilities.sort_values("source_row")
    assert f["name"].tolist() == ["幸福养老院", "阳光托育中心", "长寿食堂一号"]
    assert f["kind"].tolist() == ["elderly_institution", "childcare", "meal_point"]
    # 护理型床位数 is truncated to 护理型床位 (10 bytes in GBK) and still recognised
    assert f["nursing_beds"].tolist()[0] == 50 and f["beds"].tolist()[0] == 120
    assert f["address"].iloc[0] == "武侯区一路1号"
    assert res.reports[0].encoding == "gb18030"
    assert res.reports[0].crs == "EPSG:4490"
    assert res.facilities.crs.to_epsg() == 32648
    x, y = _wgs_m(104.03, 30.65)
    assert f.geometry.iloc[0].distance(shapely.Point(x, y)) < 0.01


def test_03_utf8_shapefile_with_cpg(tmp_path) -> None:
    p = _shp(tmp_path, encoding="utf-8", keep_cpg=True)
    assert p.with_suffix(".cpg").exists()
    res = _read(tmp_path, FacilityLayerConfig(name="a", path=p))
    assert res.facilities["name"].tolist()[0] == "幸福养老院"
    assert res.reports[0].encoding.lower().replace("-", "") == "utf8"
    # UTF-8 cuts 护理型床位数 to 护理型 + half a character: still recognised as nursing_beds
    assert res.facilities["nursing_beds"].tolist()[0] == 50


def test_04_utf8_shapefile_without_cpg_detected(tmp_path) -> None:
    p = _shp(tmp_path, encoding="utf-8", keep_cpg=False)
    res = _read(tmp_path, FacilityLayerConfig(name="a", path=p))
    assert res.facilities["name"].tolist()[0] == "幸福养老院"
    assert res.reports[0].encoding == "utf-8"


def test_05_empty_file(tmp_path) -> None:
    p = tmp_path / "empty.csv"
    p.write_bytes(b"")
    with pytest.raises(LayerError, match=r"empty\.csv: the file is empty \(0 bytes\)"):
        _read(tmp_path, FacilityLayerConfig(name="a", path=p, default_kind="meal_point"))


def test_06_zero_byte_dbf(tmp_path) -> None:
    p = _shp(tmp_path)
    p.with_suffix(".dbf").write_bytes(b"")
    with pytest.raises(LayerError, match=r"the attribute table fac\.dbf is empty \(0 bytes\)"):
        _read(tmp_path, FacilityLayerConfig(name="a", path=p))


def test_07_mixed_geometry_types(tmp_path) -> None:
    gdf = gpd.GeoDataFrame({"name": ["点", "面", "线", "多点"], "kind": ["养老院"] * 4}, geometry=[
        shapely.Point(104.03, 30.65), shapely.box(104.06, 30.66, 104.062, 30.662),
        shapely.LineString([(104.01, 30.61), (104.02, 30.62)]),
        shapely.MultiPoint([(104.08, 30.68), (104.0802, 30.6802)])], crs="EPSG:4326")
    p = tmp_path / "mixed.gpkg"
    gdf.to_file(p, layer="fac")
    res = _read(tmp_path, FacilityLayerConfig(name="a", path=p))
    assert _reasons(res) == ["line geometry (expected a point)"]
    notes = dict(zip(res.facilities["name"], res.facilities["note"], strict=True))
    assert notes == {"点": "", "面": "polygon: centroid used", "多点": "multipoint: centroid used"}
    x, y = _wgs_m(104.061, 30.661)
    assert res.facilities.set_index("name").geometry["面"].distance(shapely.Point(x, y)) < 1.0
    _check_balance(res)


def test_08_null_and_empty_geometries(tmp_path) -> None:
    p = tmp_path / "nulls.geojson"
    feats = [{"type": "Feature", "properties": {"name": "a", "kind": "医院"},
              "geometry": {"type": "Point", "coordinates": [104.03, 30.65]}},
             {"type": "Feature", "properties": {"name": "b", "kind": "医院"}, "geometry": None}]
    p.write_text(json.dumps({"type": "FeatureCollection", "features": feats}), encoding="utf-8")
    res = _read(tmp_path, FacilityLayerConfig(name="a", path=p))
    assert _reasons(res) == ["null geometry"]
    assert res.rejects["row"].tolist() == [2]
    assert json.loads(res.rejects["values"].iloc[0]) == {"name": "b", "kind": "医院"}


def test_09_lat_lon_swapped_fixed_with_warning(tmp_path) -> None:
    rows = _std_rows()
    rows[1]["经度"], rows[1]["纬度"] = rows[1]["纬度"], rows[1]["经度"]
    res = _read(tmp_path, FacilityLayerConfig(name="a", path=_csv(tmp_path, rows)))
    assert len(res.facilities) == 3 and res.rejects.empty
    assert any("1 row(s) had latitude and longitude swapped and were swapped back (rows 2)" in w
               for w in res.reports[0].warnings)
    f = res.facilities.set_index("source_row")
    assert f.loc[2, "note"] == "latitude/longitude swapped back"
    assert f.geometry[2].distance(shapely.Point(*_wgs_m(104.07, 30.66))) < 0.01


def test_10_gcj02_points_converted(tmp_path) -> None:
    rows = _std_rows()
    for r in rows:
        r["经度"], r["纬度"] = (float(v) for v in wgs84_to_gcj02(r["经度"], r["纬度"]))
    res = _read(tmp_path, FacilityLayerConfig(name="a", path=_csv(tmp_path, rows), coords="gcj02"))
    f = res.facilities.sort_values("source_row")
    for (lon, lat, *_), g in zip(ROWS, f.geometry, strict=True):
        assert g.distance(shapely.Point(*_wgs_m(lon, lat))) < 0.05
    assert res.reports[0].crs == "EPSG:4326 + coords gcj02"


def test_11_bd09_points_converted(tmp_path) -> None:
    rows = _std_rows()
    for r in rows:
        r["lng"], r["lat"] = (float(v) for v in wgs84_to_bd09(r.pop("经度"), r.pop("纬度")))
    res = _read(tmp_path, FacilityLayerConfig(name="a", path=_csv(tmp_path, rows), coords="bd09"))
    for (lon, lat, *_), g in zip(ROWS, res.facilities.sort_values("source_row").geometry, strict=True):
        assert g.distance(shapely.Point(*_wgs_m(lon, lat))) < 0.5


def test_12_shift_warning_against_roads(tmp_path) -> None:
    # a road grid every 200 m in WGS84; facilities on the roads but written in GCJ-02 without saying so
    x0, y0 = _wgs_m(104.0, 30.6)
    x1, y1 = _wgs_m(104.1, 30.7)
    lines = [shapely.LineString([(x, y0), (x, y1)]) for x in np.arange(x0, x1, 200)]
    lines += [shapely.LineString([(x0, y), (x1, y)]) for y in np.arange(y0, y1, 200)]
    roads = gpd.GeoSeries(lines, crs=METRIC)
    inv = Transformer.from_crs(METRIC, "EPSG:4326", always_xy=True)
    rows = []
    for i, (x, y) in enumerate([(x0 + 200 * 5 + 3, y0 + 200 * 7 + 60),
                                (x0 + 200 * 20 + 90, y0 + 200 * 30 + 2),
                                (x0 + 200 * 11 + 1, y0 + 200 * 15 + 120),
                                (x0 + 200 * 30 + 150, y0 + 200 * 9 + 1)]):
        lon, lat = inv.transform(x, y)
        glon, glat = wgs84_to_gcj02(lon, lat)
        rows.append({"名称": f"点{i}", "类型": "助餐点", "经度": float(glon), "纬度": float(glat)})
    p = _csv(tmp_path, rows)
    res = _read(tmp_path, FacilityLayerConfig(name="a", path=p), roads=roads)
    w = [w for w in res.reports[0].warnings if w.startswith("points look shifted")]
    assert len(w) == 1
    assert "GCJ-02 (AMap/Tencent)" in w[0] and 'set facilities[0].coords = "gcj02"' in w[0]
    res = _read(tmp_path, FacilityLayerConfig(name="a", path=p, coords="gcj02"), roads=roads)
    assert not any(w.startswith("points look shifted") for w in res.reports[0].warnings)


def test_13_duplicate_ids(tmp_path) -> None:
    rows = _std_rows()
    for r, i in zip(rows, ["A1", "A2", "A1"], strict=True):
        r["编号"] = i
    res = _read(tmp_path, FacilityLayerConfig(name="a", path=_csv(tmp_path, rows)))
    assert _reasons(res) == ["duplicate id 'A1' (first at row 1)"]
    assert sorted(res.facilities["fac_id"]) == ["A1", "A2"]


def test_14_non_numeric_capacity(tmp_path) -> None:
    rows = _std_rows()
    rows[0]["床位数"] = "很多"
    res = _read(tmp_path, FacilityLayerConfig(name="a", path=_csv(tmp_path, rows)))
    assert _reasons(res) == ["non-numeric beds '很多'"]


def test_15_xlsx_two_row_header(tmp_path) -> None:
    head1 = ["基本信息", None, None, "位置", None, "床位情况", None, "面积"]
    head2 = ["机构名称", "设施类型", "地址", "经度", "纬度", "床位数(张)", "护理型床位数", "建筑面积㎡"]
    data = [["幸福养老院", "养老机构", "一路1号", 104.03, 30.65, "120张", 70, "1,500"],
            ["乙镇敬老院", "敬老院", "二路2号", 104.07, 30.66, 40, 20, "800平方米"]]
    p = tmp_path / "two.xlsx"
    pd.DataFrame([head1, head2, *data]).to_excel(p, header=False, index=False)
    res = _read(tmp_path, FacilityLayerConfig(name="a", path=p, header_rows=2))
    f = res.facilities.sort_values("source_row")
    assert f["name"].tolist() == ["幸福养老院", "乙镇敬老院"]
    assert f["kind"].tolist() == ["elderly_institution", "welfare_home"]
    assert f["beds"].tolist() == [120, 40] and f["nursing_beds"].tolist() == [70, 20]
    assert f["floor_area_m2"].tolist() == [1500, 800]
    assert f["source_row"].tolist() == [1, 2]
    assert res.reports[0].encoding == "xlsx (unicode)"


def test_16_zip_containing_shapefile(tmp_path) -> None:
    p = _shp(tmp_path, encoding="gbk")
    z = tmp_path / "fac.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for part in p.parent.iterdir():
            zf.write(part, f"data/{part.name}")
    res = _read(tmp_path, FacilityLayerConfig(name="a", path=z))
    assert sorted(res.facilities["name"]) == sorted(r[2] for r in ROWS)
    assert res.reports[0].encoding == "gb18030"


def test_17_unknown_kind(tmp_path) -> None:
    rows = _std_rows()
    rows[2]["类型"] = "超市"
    res = _read(tmp_path, FacilityLayerConfig(name="a", path=_csv(tmp_path, rows)))
    assert _reasons(res) == ["unknown type '超市'"]
    assert any("facilities[0].kinds" in w for w in res.reports[0].warnings)
    res = _read(tmp_path, FacilityLayerConfig(name="a", path=_csv(tmp_path, rows),
                                              kinds={"超市": "meal_point"}))
    assert res.rejects.empty


def test_18_negative_beds_zero_area_and_nursing_over_beds(tmp_path) -> None:
    rows = _std_rows(建筑面积="", 护理型床位数="")
    rows[0]["床位数"] = "-5"
    rows[1]["建筑面积"] = "0"
    rows[2]["床位数"], rows[2]["护理型床位数"] = "60", "80"
    # every row rejected: an error now (a layer emptied must not end in "OK"), naming each reason
    pattern = (r"f\.csv: all 3 rows rejected \(1 x negative beds .*1 x non-positive floor_area_m2 .*1 x nurs"
               r"ing_beds")
    with pytest.raises(LayerError, match=pattern):
        _read(tmp_path, FacilityLayerConfig(name="a", path=_csv(tmp_path, rows)))
    rows.append({**_std_rows(建筑面积="", 护理型床位数="")[0], "名称": "好养老院", "经度": 104.02})
    res = _read(tmp_path, FacilityLayerConfig(name="a", path=_csv(tmp_path, rows), max_rejected_share=1.0))
    assert _reasons(res) == ["negative beds (-5)", "non-positive floor_area_m2 (0)",
                             "nursing_beds (80) > beds (60)"]
    assert res.facilities["name"].tolist() == ["好养老院"]
    _check_balance(res)


def test_19_point_outside_study_area(tmp_path) -> None:
    rows = _std_rows()
    rows[0]["经度"] = 104.2  # ~9 km east of the box
    rows[1]["经度"] = 104.1 + 0.005  # ~480 m east: inside the 1 km tolerance
    res = _read(tmp_path, FacilityLayerConfig(name="a", path=_csv(tmp_path, rows)))
    assert _reasons(res) == ["outside the study area (more than 1 km beyond the units)"]
    assert len(res.facilities) == 2


def test_20_missing_coordinate_columns(tmp_path) -> None:
    rows = [{"名称": "a", "类型": "医院", "地点": "x"}]
    with pytest.raises(LayerError, match=r"no coordinate columns found .*set facilities\[0\]\.x_field and "
                                         r"facilities\[0\]\.y_field \(columns: 名称, 类型, 地点\)"):
        _read(tmp_path, FacilityLayerConfig(name="a", path=_csv(tmp_path, rows)))


def test_21_projected_gk_coordinates_in_csv(tmp_path) -> None:
    to_gk = Transformer.from_crs("EPSG:4326", "EPSG:4523", always_xy=True)  # CGCS2000 3-degree zone 35
    rows = []
    for lon, lat, n, t, _ in ROWS:
        x, y = to_gk.transform(lon, lat)
        rows.append({"名称": n, "类型": t, "东坐标": round(x, 3), "北坐标": round(y, 3)})
    p = _csv(tmp_path, rows)
    with pytest.raises(LayerError, match=r"look projected .*set facilities\[0\]\.crs = EPSG:4523 "
                                         r"\(CGCS2000 3-degree GK zone 35"):
        _read(tmp_path, FacilityLayerConfig(name="a", path=p))
    res = _read(tmp_path, FacilityLayerConfig(name="a", path=p, crs="EPSG:4523"))
    for (lon, lat, *_), g in zip(ROWS, res.facilities.sort_values("source_row").geometry, strict=True):
        assert g.distance(shapely.Point(*_wgs_m(lon, lat))) < 0.05
    assert res.reports[0].crs == "EPSG:4523"


def test_21b_gk_shapefile_with_prj(tmp_path) -> None:
    p = _shp(tmp_path, crs="EPSG:4490")
    gpd.read_file(p, encoding="gbk").to_crs("EPSG:4544").to_file(tmp_path / "gk.shp", encoding="gbk")
    res = _read(tmp_path, FacilityLayerConfig(name="a", path=tmp_path / "gk.shp"))
    assert res.reports[0].crs == "EPSG:4544"
    for (lon, lat, *_), g in zip(ROWS, res.facilities.sort_values("source_row").geometry, strict=True):
        assert g.distance(shapely.Point(*_wgs_m(lon, lat))) < 0.05


def test_22_csv_gbk_and_utf8_bom(tmp_path) -> None:
    res = _read(tmp_path, FacilityLayerConfig(name="a", path=_csv(tmp_path, _std_rows(), encoding="gbk")))
    assert res.reports[0].encoding == "gb18030" and res.facilities["name"].iloc[0] == "幸福养老院"
    res = _read(tmp_path, FacilityLayerConfig(name="a",
                                              path=_csv(tmp_path, _std_rows(), encoding="utf-8-sig")))
    assert res.reports[0].encoding == "utf-8-sig" and res.facilities["beds"].iloc[0] == 120


def test_23_no_kind_column_and_default_kind(tmp_path) -> None:
    rows = [{"名称": n, "lon": x, "lat": y} for x, y, n, *_ in ROWS]
    p = _csv(tmp_path, rows)
    with pytest.raises(LayerError, match=r"no facility type column .* and no facilities\[0\]\.default_kind"):
        _read(tmp_path, FacilityLayerConfig(name="a", path=p))
    res = _read(tmp_path, FacilityLayerConfig(name="a", path=p, default_kind="meal_point"))
    assert set(res.facilities["kind"]) == {"meal_point"}
    assert res.facilities["fac_id"].tolist() == ["a:1", "a:2", "a:3"]


def test_24_bad_fields_mapping(tmp_path) -> None:
    p = _csv(tmp_path, _std_rows())
    with pytest.raises(LayerError, match=r"facilities\[0\]\.fields\.name = '机构名称': no such column"):
        _read(tmp_path, FacilityLayerConfig(name="a", path=p, fields={"name": "机构名称"}))
    res = _read(tmp_path, FacilityLayerConfig(name="a", path=p, fields={"address": "名称"}))
    assert res.facilities["address"].iloc[0] == "幸福养老院"


def test_25_same_name_within_50m_flagged_not_dropped(tmp_path) -> None:
    rows = _std_rows()
    rows.append({**rows[0], "纬度": rows[0]["纬度"] + 0.0002})  # ~22 m north, same name
    rows.append({**rows[0], "纬度": rows[0]["纬度"] + 0.002})  # ~220 m: not a duplicate
    # keep_duplicates = true: the old behaviour (kept, flagged in duplicate_of)
    res = _read(tmp_path, FacilityLayerConfig(name="a", path=_csv(tmp_path, rows), keep_duplicates=True))
    f = res.facilities.set_index("source_row")
    assert f.loc[4, "duplicate_of"] == "a:1" and f.loc[5, "duplicate_of"] == "" and len(f) == 5
    assert any("1 facility(ies) duplicate another of the same kind" in w for w in res.reports[0].warnings)
    # the distance is a config value (facilities[i].duplicate_max_m): at 300 m both are flagged
    res = _read(tmp_path, FacilityLayerConfig(name="a", path=_csv(tmp_path, rows), duplicate_max_m=300,
                                              keep_duplicates=True))
    f = res.facilities.set_index("source_row")
    assert f.loc[4, "duplicate_of"] == "a:1" and f.loc[5, "duplicate_of"] == "a:1"
    assert any("2 facility(ies) duplicate another of the same kind (same name within 300 m"
               in w for w in res.reports[0].warnings)
    # the default (keep_duplicates = false): the later row is rejected, never counted
    res = _read(tmp_path, FacilityLayerConfig(name="a", path=_csv(tmp_path, rows)))
    assert _reasons(res) == ["duplicate of a:1 (same name within 50 m: 22 m apart)"]
    assert len(res.facilities) == 4 and res.facilities["beds"].sum() == 240  # rows 1 and 5 (220 m)
    _check_balance(res)


def test_26_missing_and_non_numeric_coordinates(tmp_path) -> None:
    rows = _std_rows()
    rows[0]["经度"] = ""
    rows[1]["纬度"] = "三十"
    res = _read(tmp_path, FacilityLayerConfig(name="a", path=_csv(tmp_path, rows)))
    assert _reasons(res) == ["missing coordinates", "non-numeric coordinates"]


def test_27_missing_file_and_several_errors_raised_once(tmp_path) -> None:
    p = _shp(tmp_path, keep_prj=False)
    with pytest.raises(LayerError, match=r"(?s)2 facility layer problem\(s\):.*nope\.csv: file not found; "
                                         r"fix facilities\[0\]\.path.*no CRS.*facilities\[1\]\.crs"):
        _read(tmp_path, FacilityLayerConfig(name="a", path=tmp_path / "nope.csv"),
              FacilityLayerConfig(name="b", path=p))


def test_28_gpkg_with_two_layers_needs_layer(tmp_path) -> None:
    p = tmp_path / "two.gpkg"
    g = gpd.GeoDataFrame({"name": ["x"], "kind": ["医院"]}, geometry=[shapely.Point(104.03, 30.65)], crs=4326)
    g.to_file(p, layer="one")
    g.to_file(p, layer="two")
    with pytest.raises(LayerError,
                       match=r"holds 2 layers \(one, two\); choose one with facilities\[0\]\.layer"):
        _read(tmp_path, FacilityLayerConfig(name="a", path=p))
    assert len(_read(tmp_path, FacilityLayerConfig(name="a", path=p, layer="two")).facilities) == 1


def test_29_duplicate_ids_across_layers(tmp_path) -> None:
    rows = _std_rows()
    for r, i in zip(rows, ["A1", "A2", "A3"], strict=True):
        r["id"] = i
    p1 = _csv(tmp_path, rows, name="one.csv")
    p2 = _csv(tmp_path, rows[:1], name="two.csv")
    res = _read(tmp_path, FacilityLayerConfig(name="one", path=p1), FacilityLayerConfig(name="two", path=p2))
    assert _reasons(res) == ["duplicate id 'A1' (also in layer one)"]
    assert res.reports[1].accepted == 0
    _check_balance(res)


# ------------------------------------------------------------------------------------------------
# units, CRS, report, rejects
# ------------------------------------------------------------------------------------------------

def test_units_default_class_and_columns(tmp_path) -> None:
    u = read_units(_cfg(tmp_path))
    assert u.units.columns.tolist() == ["unit_code", "unit_name", "unit_type", "unit_class", "area_type",
                                        "geometry"]
    assert u.units["unit_class"].tolist() == ["城区", "郊区"]
    assert u.units["area_type"].tolist() == ["old", "new"]
    assert u.units.crs.to_epsg() == 4326 and u.communities.empty
    assert resolve_metric_crs(_cfg(tmp_path), u.units) == "EPSG:32648"
    assert resolve_metric_crs(_cfg(tmp_path, metric_crs="EPSG:4545"), u.units) == "EPSG:4545"


def test_units_problems_collected(tmp_path) -> None:
    gdf = gpd.GeoDataFrame({"code": ["1", "1", "3"], "name": ["a", "b", "c"], "type": ["街道", "区", "乡"],
                            "class": ["城区", "", "农村"]},
                           geometry=[shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1), None])
    p = tmp_path / "u.shp"
    gdf.to_file(p)
    cfg = _cfg(tmp_path, units=UnitsConfig(path=p))
    with pytest.raises(LayerError, match=r"u\.shp: no CRS \(no \.prj file\); set units\.crs"):
        read_units(cfg)
    cfg = _cfg(tmp_path, units=UnitsConfig(path=p, crs="EPSG:4490"))
    with pytest.raises(LayerError) as ei:
        read_units(cfg)
    msg = str(ei.value)
    assert "type = '区', expected 街道, 镇 or 乡" in msg
    assert "class = '农村', expected 城区 or 郊区" in msg
    assert "duplicate unit codes in code: '1'" in msg
    assert "unit '3' has no geometry" in msg


def test_units_invalid_geometry_repaired_and_communities(tmp_path) -> None:
    bowtie = shapely.Polygon([(104.0, 30.6), (104.1, 30.7), (104.1, 30.6), (104.0, 30.7)])
    gpd.GeoDataFrame({"code": ["U1"], "name": ["a"], "type": ["镇"]}, geometry=[bowtie], crs=4326).to_file(
        tmp_path / "u.geojson")
    gpd.GeoDataFrame({"code": ["C1", "C2"], "name": ["村1", "村2"], "parent_code": ["U1", "U9"]},
                     geometry=[shapely.box(104.0, 30.6, 104.01, 30.61)] * 2, crs=4326).to_file(
        tmp_path / "c.geojson")
    cfg = _cfg(tmp_path, units=UnitsConfig(path=tmp_path / "u.geojson",
                                           communities_path=tmp_path / "c.geojson"))
    with pytest.raises(LayerError, match=r"parent codes not among the units: 'U9'"):
        read_units(cfg)
    gpd.GeoDataFrame({"code": ["C1"], "name": ["村1"], "parent_code": ["U1"]},
                     geometry=[shapely.box(104.0, 30.6, 104.01, 30.61)], crs=4326).to_file(
        tmp_path / "c.geojson")
    u = read_units(cfg)
    assert u.units.geometry.iloc[0].is_valid and u.units.geometry.iloc[0].geom_type == "MultiPolygon"
    assert any("invalid geometry repaired" in w for w in u.warnings)
    assert u.communities.columns.tolist() == ["community_code", "community_name", "unit_code", "geometry"]


def test_check_layers_report_and_write_rejects(tmp_path) -> None:
    rows = _std_rows()
    rows[2]["类型"] = "超市"
    good = FacilityLayerConfig(name="good", path=_csv(tmp_path, rows))
    bad = FacilityLayerConfig(name="bad", path=_shp(tmp_path, keep_prj=False))
    rep = check_layers(_cfg(tmp_path, good, bad))
    assert not rep.ok
    text = rep.text()
    assert "PROBLEMS FOUND (metric CRS EPSG:32648)" in text
    assert "[good]" in text and "rows read 3, accepted 2, rejected 1" in text
    assert "rejected     1: unknown type '超市'" in text
    assert "ERROR:" in text and "facilities[1].crs" in text
    assert check_layers(_cfg(tmp_path, good)).ok
    res = _read(tmp_path, good)
    out = write_rejects(res.rejects, tmp_path / "out" / "rejects.csv")
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and "超市".encode() in raw
    back = pd.read_csv(out, encoding="utf-8-sig")
    assert back.columns.tolist() == ["source_file", "layer", "row", "reason", "values"]


# ------------------------------------------------------------------------------------------------
# real OSM files
# ------------------------------------------------------------------------------------------------

def test_liechtenstein_units_and_facilities(tmp_path) -> None:
    pbf = shared_file("liechtenstein", "osm", "liechtenstein-latest-2024-03-04.osm.pbf")
    u = units_from_osm(pbf, admin_level=8, unit_type="镇")
    assert len(u) == 11 and "Vaduz" in set(u["unit_name"]) and set(u["unit_class"]) == {"郊区"}
    area_km2 = u.set_index("unit_name").to_crs("EPSG:32632").area / 1e6
    assert area_km2["Triesenberg"] == pytest.approx(29.7, abs=0.3)
    assert resolve_metric_crs(_cfg(tmp_path), u) == "EPSG:32632"
    # the same through the config: units.source = "osm", admin_level, default_type
    ru = read_units(_cfg(tmp_path, units=UnitsConfig(path=pbf, source="osm", admin_level=8,
                                                     default_type="镇")))
    assert ru.units["unit_code"].tolist() == u["unit_code"].tolist()
    assert set(ru.units["unit_class"]) == {"郊区"}
    cfg = _cfg(tmp_path, FacilityLayerConfig(name="osm", path=pbf, from_osm=True))
    res = read_facilities(cfg, study_area_wgs84=u, metric_crs="EPSG:32632")
    kinds = res.reports[0].kinds
    assert kinds.get("kindergarten", 0) >= 15 and kinds.get("elderly_institution", 0) == 2
    assert kinds.get("health_center", 0) >= 8 and kinds.get("childcare", 0) >= 2
    assert res.facilities["fac_id"].str.match(r"osm:[nwr]\d+").all()
    _check_balance(res)


def test_comoros_units_and_facilities() -> None:
    pbf = shared_file("comoros", "osm", "comores-latest-2021-04-08.osm.pbf")
    u = units_from_osm(pbf, admin_level=4, unit_type="镇", code_tag="ISO3166-2")
    assert sorted(u["unit_code"]) == ["KM-A", "KM-G", "KM-M"]
    g = facilities_from_osm(pbf)
    assert (g["kind"] == "kindergarten").sum() == 5
    assert (g["kind"] == "hospital").sum() >= 28
    # amenity=social_facility without a subtag is a row but maps to no kind (rejected with its tags)
    assert (g["kind"].isna()).sum() >= 3


# ------------------------------------------------------------------------------------------------
# the demo county (coverage.demo, generated): every layer reads with zero rejects
# ------------------------------------------------------------------------------------------------

def _osm_road_lines(path: Path, metric_crs: str) -> gpd.GeoSeries:
    import osmium

    lines = []

    class H(osmium.SimpleHandler):
        def way(self, w):
            if "highway" in w.tags:
                lines.append(shapely.LineString([(n.lon, n.lat) for n in w.nodes]))

    H().apply_file(str(path), locations=True)
    return gpd.GeoSeries(lines, crs="EPSG:4326").to_crs(metric_crs)


def test_demo_layers_read_without_rejects(tmp_path) -> None:
    demo = pytest.importorskip("coverage.demo")
    import dataclasses
    import shutil

    from coverage.config import load_config

    shutil.copy(Path(__file__).resolve().parents[1] / "layers" / "demo" / "coverage.toml", tmp_path)
    demo.build_demo(tmp_path)
    cfg = load_config(tmp_path / "coverage.toml")
    rep = check_layers(cfg)
    assert rep.ok, rep.text()
    assert rep.metric_crs == "EPSG:32649" or rep.metric_crs.startswith("EPSG:326")
    u = read_units(cfg)
    metric = resolve_metric_crs(cfg, u.units)
    roads = _osm_road_lines(cfg.network.path, metric)
    res = read_facilities(cfg, study_area_wgs84=u.units, metric_crs=metric, roads=roads)
    assert res.rejects.empty, res.rejects
    for s in res.reports:
        assert s.rows_read > 0 and s.accepted == s.rows_read
        assert not any(w.startswith("points look shifted") for w in s.warnings), s.warnings
    by_layer = {s.name: s for s in res.reports}
    assert by_layer["elderly_childcare"].encoding == "gb18030"  # GBK shapefile without .cpg
    assert res.facilities["name"].str.contains(r"[\u4e00-\u9fff]").all()
    assert res.facilities["fac_id"].is_unique
    # check-layers reads the roads of the network's OSM file itself: the shift check ran, quietly
    assert "points look shifted" not in rep.text()
    # the GCJ-02 meal points read as if they were WGS84: the shift warning fires, naming the fix
    i = next(i for i, f in enumerate(cfg.facilities) if f.coords == "gcj02")
    wrong = dataclasses.replace(cfg, facilities=(dataclasses.replace(cfg.facilities[i], coords="wgs84"),))
    res = read_facilities(wrong, study_area_wgs84=u.units, metric_crs=metric, roads=roads)
    w = [w for w in res.reports[0].warnings if w.startswith("points look shifted")]
    assert w and 'set facilities[0].coords = "gcj02"' in w[0], res.reports[0].warnings
    rep = check_layers(wrong)
    assert "points look shifted" in rep.text() and rep.ok  # a warning, not an error


def test_configured_kind_by_id_and_label(tmp_path) -> None:
    # a region's own kind ([kinds.<id>] label_zh = ...) is a word of the type vocabulary
    kinds = {**BUILTIN_KINDS, "elder_school": Kind("elder_school", "老年大学")}
    assert map_kind("老年大学", kinds=kinds) == "elder_school" and map_kind("老年大学") is None
    rows = _std_rows()
    rows[0]["类型"], rows[1]["类型"] = "老年大学", "elder_school"
    cfg = dataclasses.replace(_cfg(tmp_path, FacilityLayerConfig(name="a", path=_csv(tmp_path, rows))),
                              kinds=kinds)
    res = read_facilities(cfg, study_area_wgs84=BOX, metric_crs=METRIC)
    assert res.rejects.empty
    assert res.facilities.sort_values("source_row")["kind"].tolist()[:2] == ["elder_school", "elder_school"]
    rows[2]["类型"] = "超市"
    res = read_facilities(dataclasses.replace(cfg, facilities=(FacilityLayerConfig(
        name="a", path=_csv(tmp_path, rows)),)), study_area_wgs84=BOX, metric_crs=METRIC)
    assert any("elder_school" in w for w in res.reports[0].warnings)  # the kinds the config knows


def test_header_only_table_is_an_error_naming_the_fix(tmp_path) -> None:
    p = tmp_path / "h.csv"
    p.write_text("名称,类型,经度,纬度\n", encoding="utf-8")
    with pytest.raises(LayerError, match=r"h\.csv: the layer has no data rows .*remove this "
                                         r"\[\[facilities\]\] table \(facilities\[0\]\)"):
        _read(tmp_path, FacilityLayerConfig(name="a", path=p))


# ------------------------------------------------------------------------------------------------
# layers emptied, garbled or misread (issue: "OK" on an emptied layer, mojibake, misleading messages)
# ------------------------------------------------------------------------------------------------

def _grid_rows(n: int, *, kind: str = "助餐点") -> list[dict]:
    """``n`` distinct facilities spread over the box (names and points differ)."""
    return [{"名称": f"第{i + 1}助餐点", "类型": kind, "经度": 104.005 + 0.009 * (i % 10),
             "纬度": 30.605 + 0.009 * (i // 10), "床位数": ""} for i in range(n)]


def test_shp_cut_to_120_bytes_or_in_half_is_an_error(tmp_path) -> None:
    p = _shp(tmp_path)
    data = p.read_bytes()
    p.write_bytes(data[:120])
    pattern = (r"fac\.shp: fac\.shp is truncated: its header says \d+ bytes but the file has 120 bytes .*re-"
               r"export the shapefile")
    with pytest.raises(LayerError, match=pattern):
        _read(tmp_path, FacilityLayerConfig(name="a", path=p))
    p.write_bytes(data[: len(data) // 2])
    rep = check_layers(_cfg(tmp_path, FacilityLayerConfig(name="a", path=p)))
    assert not rep.ok and "is truncated" in rep.text()


def test_every_row_without_geometry_is_an_error(tmp_path) -> None:
    p = tmp_path / "nulls.geojson"
    feats = [{"type": "Feature", "properties": {"name": f"n{i}", "kind": "医院"}, "geometry": None}
             for i in range(4)]
    p.write_text(json.dumps({"type": "FeatureCollection", "features": feats}), encoding="utf-8")
    pattern = (r"nulls\.geojson: all 4 rows rejected \(4 x null geometry\); the rows have no geometry: the "
               r"\.shp is probably truncated")
    with pytest.raises(LayerError, match=pattern):
        _read(tmp_path, FacilityLayerConfig(name="a", path=p))


def test_prj_3857_on_degree_coordinates_names_crs_and_where_points_lie(tmp_path) -> None:
    p = _shp(tmp_path)
    p.with_suffix(".prj").write_text(shapely_free_prj_3857(), encoding="ascii")
    with pytest.raises(LayerError) as ei:
        _read(tmp_path, FacilityLayerConfig(name="a", path=p))
    msg = str(ei.value)
    assert "fac.shp: all 3 rows rejected (3 x outside the study area" in msg
    assert "as read they lie around (104.05, 30.65) in EPSG:3857" in msg
    assert "the study area spans 103.99" in msg and "30.59" in msg
    assert "the numbers are degrees but the layer CRS EPSG:3857 is projected" in msg
    assert 'set facilities[0].crs = "EPSG:4490"' in msg
    rep = check_layers(_cfg(tmp_path, FacilityLayerConfig(name="a", path=p)))
    assert not rep.ok and "all 3 rows rejected" in rep.text()
    res = _read(tmp_path, FacilityLayerConfig(name="a", path=p, crs="EPSG:4490"))
    assert len(res.facilities) == 3


def shapely_free_prj_3857() -> str:
    from pyproj import CRS

    return CRS.from_epsg(3857).to_wkt("WKT1_ESRI")


def test_rejected_share_above_the_limit_is_an_error(tmp_path) -> None:
    rows = _grid_rows(10)
    for r in rows[:3]:
        r["经度"] = 105.5  # far east of the box
    p = _csv(tmp_path, rows)
    pattern = (r"f\.csv: 3 of 10 rows \(30%\) rejected, more than facilities\[0\]\.max_rejected_share = 0\.2"
               r" \(3 x outside the study area .*105\.5000E.*raise facilities\[0\]\.max_rejected_share")
    with pytest.raises(LayerError, match=pattern):
        _read(tmp_path, FacilityLayerConfig(name="a", path=p))
    res = _read(tmp_path, FacilityLayerConfig(name="a", path=p, max_rejected_share=0.5))
    assert len(res.facilities) == 7 and len(res.rejects) == 3
    _check_balance(res)
    rows[0]["经度"] = 104.01  # 2 of 10: below the limit
    res = _read(tmp_path, FacilityLayerConfig(name="a", path=_csv(tmp_path, rows)))
    assert len(res.rejects) == 2
    _check_balance(res)


def _xlsx(path: Path, sheets: dict[str, list[list]]) -> Path:
    with pd.ExcelWriter(path) as xw:
        for name, rows in sheets.items():
            pd.DataFrame(rows).to_excel(xw, sheet_name=name, header=False, index=False)
    return path


HEAD = ["名称", "类型", "经度", "纬度", "床位数"]


def _sheet_rows(start: int, n: int) -> list[list]:
    return [[r["名称"], r["类型"], r["经度"], r["纬度"], r["床位数"]] for r in _grid_rows(start + n)[start:]]


def test_xlsx_rows_continued_on_a_second_sheet_are_all_read(tmp_path) -> None:
    s2 = _sheet_rows(30, 25)
    s2[2][2] = "东经"  # one bad row on the second sheet: its reject names the sheet and Excel row
    p = _xlsx(tmp_path / "two.xlsx", {"Sheet1": [HEAD, *_sheet_rows(0, 30)], "Sheet2": [HEAD, *s2]})
    res = _read(tmp_path, FacilityLayerConfig(name="a", path=p))
    s = res.reports[0]
    assert s.rows_read == 55 and s.accepted == 54
    assert any("read 2 sheets with the same header: 'Sheet1' (30 rows), 'Sheet2' (25 rows)" in w
               for w in s.warnings)
    rej = res.rejects.iloc[0]
    assert rej["row"] == 33 and json.loads(rej["values"])["_sheet_row"] == "Sheet2:4"
    assert res.facilities.set_index("source_row").loc[31, "note"] == "sheet row Sheet2:2"
    _check_balance(res)
    # the `sheet` key reads one sheet only
    res = _read(tmp_path, FacilityLayerConfig(name="a", path=p, sheet="Sheet1"))
    assert res.reports[0].rows_read == 30
    with pytest.raises(LayerError, match=r"no sheet 'Sheet3' in the workbook \(sheets: 'Sheet1', 'Sheet2'\); "
                                         r"fix facilities\[0\]\.sheet"):
        _read(tmp_path, FacilityLayerConfig(name="a", path=p, sheet="Sheet3"))


def test_xlsx_second_sheet_without_header_or_with_another_header_is_an_error(tmp_path) -> None:
    p = _xlsx(tmp_path / "cont.xlsx", {"Sheet1": [HEAD, *_sheet_rows(0, 30)], "Sheet2": _sheet_rows(30, 25)})
    pattern = (r"sheet 'Sheet2' has no header row but numbers where sheet 'Sheet1' has its coordinates \(经"
               r"度/纬度\).*set facilities\[0\]\.sheet = 'Sheet1'.*\(sheets: 'Sheet1', 'Sheet2'\)")
    with pytest.raises(LayerError, match=pattern):
        _read(tmp_path, FacilityLayerConfig(name="a", path=p))
    other = ["机构名称", "设施类型", "lon", "lat", "床位数"]
    p = _xlsx(tmp_path / "diff.xlsx", {"养老": [HEAD, *_sheet_rows(0, 3)],
                                       "托育": [other, *_sheet_rows(3, 3)]})
    pattern = (r"sheets '养老', '托育' all have coordinate columns but different header rows \(sheets: '养老"
               r"', '托育'\); .*facilities\[0\]\.sheet")
    with pytest.raises(LayerError, match=pattern):
        _read(tmp_path, FacilityLayerConfig(name="a", path=p))


def test_xlsx_notes_sheet_first_is_skipped_and_named(tmp_path) -> None:
    notes = [["填表说明"], ["1. 坐标请使用高德地图拾取"], ["2. 床位数填整数"]]
    p = _xlsx(tmp_path / "notes.xlsx", {"说明": notes, "数据": [HEAD, *_sheet_rows(0, 5)]})
    res = _read(tmp_path, FacilityLayerConfig(name="a", path=p))
    assert res.reports[0].rows_read == 5 and len(res.facilities) == 5
    assert any("sheet '说明' skipped: no coordinate columns (a notes sheet?); read sheet(s) '数据'" in w
               for w in res.reports[0].warnings)


def test_merged_title_row_names_header_rows_and_sheet(tmp_path) -> None:
    title = ["某区养老服务设施名录（2024年）", None, None, None, None]
    p = _xlsx(tmp_path / "title.xlsx", {"名录": [title, HEAD, *_sheet_rows(0, 4)]})
    pattern = (r"no coordinate columns found .* of sheet '名录' with facilities\[0\]\.header_rows = 1; the c"
               r"olumn headers \(名称, 类型, 经度, 纬度, 床位数\) are on row 2 of sheet '名录', below 1 titl"
               r"e/merged row\(s\): set facilities\[0\]\.header_rows = 2")
    with pytest.raises(LayerError, match=pattern):
        _read(tmp_path, FacilityLayerConfig(name="a", path=p))
    assert len(_read(tmp_path, FacilityLayerConfig(name="a", path=p, header_rows=2)).facilities) == 4
    # a notes sheet first and a title row on the data sheet: every sheet is named, with header_rows
    p = _xlsx(tmp_path / "both.xlsx", {"说明": [["填表说明"], ["坐标用高德"]], "名录": [title, HEAD,
                                                                               *_sheet_rows(0, 4)]})
    pattern = (r"no sheet has coordinate columns .* with facilities\[0\]\.header_rows = 1 \(sheet '说明': .*"
               r"sheet '名录': .*\); the column headers .* on row 2 of sheet '名录'.*set facilities\[0\]\.he"
               r"ader_rows = 2; choose the sheet with facilities\[0\]\.sheet")
    with pytest.raises(LayerError, match=pattern):
        _read(tmp_path, FacilityLayerConfig(name="a", path=p))
    res = _read(tmp_path, FacilityLayerConfig(name="a", path=p, header_rows=2))
    assert res.reports[0].rows_read == 4


def test_garbage_xlsx_and_dbf_say_what_the_file_is_not(tmp_path) -> None:
    p = tmp_path / "junk.xlsx"
    p.write_bytes(b"<html>404 not found</html>")
    pattern = (r"junk\.xlsx: not a valid XLSX workbook \(an \.xlsx is a zip archive; this file starts with b"
               r"'<html>40'\); open it in Excel/WPS and save")
    with pytest.raises(LayerError, match=pattern):
        _read(tmp_path, FacilityLayerConfig(name="a", path=p))
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("hello.txt", "not a workbook")
    with pytest.raises(LayerError, match=r"junk\.xlsx: not a valid XLSX workbook \(.*\); open it in Excel"):
        _read(tmp_path, FacilityLayerConfig(name="a", path=p))
    s = _shp(tmp_path)
    s.with_suffix(".dbf").write_bytes(bytes(range(256)) * 4)
    with pytest.raises(LayerError, match=r"fac\.shp: fac\.dbf is not a valid dBASE file .*re-export the "
                                         r"shapefile"):
        _read(tmp_path, FacilityLayerConfig(name="a", path=s))
    s = _shp(tmp_path, name="cut")
    dbf = s.with_suffix(".dbf").read_bytes()
    s.with_suffix(".dbf").write_bytes(dbf[: len(dbf) - 40])
    with pytest.raises(LayerError, match=r"cut\.dbf is truncated: its header promises 3 records"):
        _read(tmp_path, FacilityLayerConfig(name="a", path=s))


def test_cpg_saying_utf8_on_a_gbk_dbf(tmp_path) -> None:
    p = _shp(tmp_path, encoding="gbk")
    p.with_suffix(".cpg").write_text("UTF-8", encoding="ascii")
    pattern = (r"fac\.shp: the \.cpg file says 'UTF-8' but the attribute table is not UTF-8 text .*reads as "
               r"GBK/GB18030 \(e\.g\. '幸福养老院'\): the \.cpg is wrong; delete fac\.cpg or set facilities"
               r"\[0\]\.encoding = \"gbk\"")
    with pytest.raises(LayerError, match=pattern):
        _read(tmp_path, FacilityLayerConfig(name="a", path=p))
    res = _read(tmp_path, FacilityLayerConfig(name="a", path=p, encoding="gbk"))
    assert res.facilities["name"].iloc[0] == "幸福养老院"


def test_utf8_bom_with_gbk_rows_is_mojibake(tmp_path) -> None:
    p = tmp_path / "bom.csv"
    body = pd.DataFrame(_std_rows()).to_csv(index=False)
    p.write_bytes(b"\xef\xbb\xbf" + body.encode("gbk"))
    pattern = (r"bom\.csv: the text looks garbled \(mojibake\) when read as utf-8-sig \(encoding from the UT"
               r"F-8 BOM\): \d+ undecodable byte\(s\) shown as U\+FFFD .*set facilities\[0\]\.encoding to th"
               r"e file's encoding \(try \"gbk\", \"gb18030\"\)")
    with pytest.raises(LayerError, match=pattern):
        _read(tmp_path, FacilityLayerConfig(name="a", path=p))
    res = _read(tmp_path, FacilityLayerConfig(name="a", path=p, encoding="gbk"))
    assert res.facilities["name"].tolist()[0] == "幸福养老院" and res.rejects.empty


def test_latin1_soup_and_implausible_cjk_are_mojibake(tmp_path) -> None:
    p = _csv(tmp_path, _std_rows())  # UTF-8
    with pytest.raises(LayerError, match=r"read as latin1 \(encoding from the config\): UTF-8 text read as "
                                         r"Latin-1 .*try \"gbk\", \"gb18030\", \"utf-8\""):
        _read(tmp_path, FacilityLayerConfig(name="a", path=p, encoding="latin1"))
    from coverage.layers.readers import mojibake_problem

    good = ["幸福养老院", "郫都区犍为县邛崃市社区卫生服务站（一号）", "建筑面积㎡",
            "Altersheim St. Florin Vaduz"]
    assert mojibake_problem(good) is None
    garbled = [t.encode("utf-8").decode("gbk", errors="ignore") for t in good[:3]]
    assert mojibake_problem(garbled).startswith("implausible Chinese: only ")
    assert mojibake_problem(["Ã©tÃ©"]).startswith("UTF-8 text read as Latin-1")


def test_implausible_numbers_reject_the_row_naming_field_value_range_key(tmp_path) -> None:
    rows = _grid_rows(10, kind="养老院")
    rows[0]["床位数"] = "1e12"
    rows[1]["床位数"] = "6000"
    p = _csv(tmp_path, rows)
    res = _read(tmp_path, FacilityLayerConfig(name="a", path=p))
    assert _reasons(res) == [
        "beds = 1e+12 outside the plausible range 0..5000 (a typing or unit error? if the value is right set "
        "facilities[0].ranges.beds = [0, <higher>])",
        "beds = 6000 outside the plausible range 0..5000 (a typing or unit error? if the value is right set "
        "facilities[0].ranges.beds = [0, <higher>])"]
    assert res.facilities["beds"].isna().all()
    _check_balance(res)
    res = _read(tmp_path, FacilityLayerConfig(name="a", path=p, ranges={"beds": (0.0, 8000.0)}))
    assert _reasons(res) == ["beds = 1e+12 outside the plausible range 0..8000 (a typing or unit error? "
                             "if the value is right set facilities[0].ranges.beds = [0, <higher>])"]
    assert res.facilities["beds"].sum() == 6000


def test_duplicated_rows_are_rejected_not_counted(tmp_path) -> None:
    rows = _grid_rows(10, kind="养老院")
    for r in rows:
        r["床位数"] = 50
    p = _csv(tmp_path, rows + rows[:2])  # two rows pasted twice
    res = _read(tmp_path, FacilityLayerConfig(name="a", path=p))
    assert _reasons(res) == ["duplicate of a:1 (same name, same coordinates)",
                             "duplicate of a:2 (same name, same coordinates)"]
    assert res.facilities["beds"].sum() == 500 and res.rejects["row"].tolist() == [11, 12]
    _check_balance(res)
    # the whole file pasted twice: half the rows are duplicates, an error with the fix
    pattern = (r"10 of 20 rows \(50%\) rejected.*10 x duplicate of <fac_id> \(same name, same coordinates\)."
               r"*appended twice\?.*keep_duplicates = true")
    with pytest.raises(LayerError, match=pattern):
        _read(tmp_path, FacilityLayerConfig(name="a", path=_csv(tmp_path, rows + rows)))
    res = _read(tmp_path, FacilityLayerConfig(name="a", path=_csv(tmp_path, rows + rows),
                                              keep_duplicates=True))
    assert res.facilities["beds"].sum() == 1000 and (res.facilities["duplicate_of"] != "").sum() == 10


def test_same_building_different_kinds_or_names_are_not_duplicates(tmp_path) -> None:
    x, y = 104.03, 30.65
    rows = [{"名称": "文庙社区日间照料中心", "类型": "日间照料中心", "经度": x, "纬度": y},
            {"名称": "文庙社区卫生服务站", "类型": "社区卫生服务站", "经度": x, "纬度": y},  # other kind
            {"名称": "文庙社区助餐点", "类型": "助餐点", "经度": x, "纬度": y},
            {"名称": "文庙社区老年食堂", "类型": "助餐点", "经度": x, "纬度": y},  # same kind, other name
            {"名称": "", "类型": "助餐点", "经度": x, "纬度": y},  # same kind, no name: a duplicate
            {"名称": "文庙社区日间照料中心", "类型": "社区卫生服务站", "经度": 104.0301, "纬度": y}]
    res = _read(tmp_path, FacilityLayerConfig(name="a", path=_csv(tmp_path, rows), max_rejected_share=1.0))
    assert _reasons(res) == ["duplicate of a:3 (same coordinates, no name to tell them apart)"]
    assert len(res.facilities) == 5
    _check_balance(res)


def test_duplicate_across_layers_rejected_in_the_later_layer(tmp_path) -> None:
    rows = _grid_rows(10)
    p1 = _csv(tmp_path, rows, name="one.csv")
    p2 = _csv(tmp_path, [{**rows[3], "纬度": rows[3]["纬度"] + 0.0001}, *_grid_rows(15)[10:]], name="two.csv")
    res = _read(tmp_path, FacilityLayerConfig(name="one", path=p1), FacilityLayerConfig(name="two", path=p2))
    assert _reasons(res) == ["duplicate of one:4 of layer one (same name within 50 m: 11 m apart)"]
    assert res.reports[1].accepted == 5 and res.reports[1].kinds == {"meal_point": 5}
    _check_balance(res)
    res = _read(tmp_path, FacilityLayerConfig(name="one", path=p1),
                FacilityLayerConfig(name="two", path=p2, keep_duplicates=True))
    assert res.rejects.empty and res.facilities.set_index("fac_id").loc["two:1", "duplicate_of"] == "one:4"


def test_gcj02_xlsx_declared_wgs84_warned_against_the_other_layers(tmp_path) -> None:
    # elderly centres (CSV, WGS84) and a health station 40 m east of each (XLSX, GCJ-02 but declared WGS84)
    rows = _grid_rows(12, kind="日间照料中心")
    health = []
    for r in rows:
        glon, glat = wgs84_to_gcj02(r["经度"] + 40 / 96000, r["纬度"])
        health.append([r["名称"] + "卫生服务站", "社区卫生服务站", float(glon), float(glat), None])
    p = _xlsx(tmp_path / "health.xlsx", {"卫生": [HEAD, *health]})
    layers = (FacilityLayerConfig(name="elderly", path=_csv(tmp_path, rows)),
              FacilityLayerConfig(name="health", path=p))
    res = _read(tmp_path, *layers)
    w = [w for w in res.reports[1].warnings if w.startswith("points look shifted")]
    assert len(w) == 1 and "nearest facility of the other layers" in w[0]
    assert 'set facilities[1].coords = "gcj02"' in w[0]
    assert not any(w.startswith("points look shifted") for w in res.reports[0].warnings)
    assert any(w.startswith("points look shifted") for w in check_layers(_cfg(tmp_path, *layers)).layers[1]
               .warnings)
    fixed = (layers[0], dataclasses.replace(layers[1], coords="gcj02"))
    res = _read(tmp_path, *fixed)
    assert not any(w.startswith("points look shifted") for s in res.reports for w in s.warnings)


def test_csv_title_line_names_header_rows(tmp_path) -> None:
    p = tmp_path / "t.csv"
    body = pd.DataFrame(_std_rows()).to_csv(index=False)
    p.write_text("某区养老服务设施名录,,,,\n" + body, encoding="utf-8")
    pattern = (r"t\.csv: no coordinate columns found .* with facilities\[0\]\.header_rows = 1; the column "
               r"headers \(名称, 类型, 经度, 纬度, 床位数\) are on row 2, below 1 title/merged row\(s\): set "
               r"facilities\[0\]\.header_rows = 2; or set facilities\[0\]\.x_field")
    with pytest.raises(LayerError, match=pattern):
        _read(tmp_path, FacilityLayerConfig(name="a", path=p))
    assert len(_read(tmp_path, FacilityLayerConfig(name="a", path=p, header_rows=2)).facilities) == 3
