"""POI exports (Amap/高德, Baidu, Tencent) as facility layers: the type vocabularies and their explicit
exclusions, ``include`` / ``exclude`` filters, the source-type table of the check, ``source_type`` in
facilities.csv, the ``location`` = "lon,lat" column, and OSM objects whose tags map to no kind.

The Amap fixture is made here: a city-wide export (extent larger than the study area, GCJ-02 like
every Amap export) with the type strings that went wrong on real data (pet clinics, private 诊所,
"综合医院;卫生院" for urban 社区卫生服务中心, dental, cosmetic, 三甲 hospitals).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import shapely

from coverage.config import (
    Config,
    FacilityLayerConfig,
    NetworkConfig,
    PopulationConfig,
    RegionConfig,
    UnitsConfig,
)
from coverage.coords import wgs84_to_gcj02
from coverage.layers import LayerError, check_layers, read_facilities
from coverage.layers.vocabulary import AMAP_TYPECODES, classify_type
from coverage.outputs import write_facilities
from coverage.services import BUILTIN_KINDS, Kind

METRIC = "EPSG:32648"
#: the study area: two units in a 0.1 x 0.1 degree box of Chengdu; the export covers the whole city
BOX = shapely.box(104.0, 30.6, 104.1, 30.7)
H = "医疗保健服务;"

# (name, type, typecode, WGS84 lon, lat, expected kind or the start of the reject reason)
AMAP = [
    ("玉林街道社区卫生服务中心", H + "综合医院;卫生院", "090102", 104.01, 30.61, "health_center"),
    ("芳草社区卫生服务站", H + "综合医院;卫生院", "090102", 104.02, 30.62, "health_center"),
    ("簇桥街道卫生院", H + "综合医院;卫生院", "090102", 104.03, 30.63, "township_hospital"),
    ("金花镇卫生院", H + "综合医院;卫生院", "090102", 104.08, 30.64, "township_hospital"),
    ("四川大学华西医院", H + "综合医院;三级甲等医院", "090101", 104.04, 30.64, "hospital"),
    ("武侯区人民医院", H + "综合医院;综合医院", "090100", 104.05, 30.65, "hospital"),
    ("爱宠动物医院", H + "动物医疗场所;宠物诊所", "090701", 104.06, 30.66, "excluded type"),
    ("萌宠之家", H + "动物医疗场所;动物医疗场所", "090700", 104.07, 30.67, "excluded type"),
    ("博爱口腔", H + "专科医院;口腔医院", "090202", 104.02, 30.68, "excluded type"),
    ("美立方医疗美容", H + "专科医院;整形美容", "090201", 104.03, 30.69, "excluded type"),
    ("张氏诊所", H + "诊所;诊所", "090300", 104.04, 30.61, "excluded type"),
    ("仁和门诊部", H + "诊所;诊所", "090300", 104.05, 30.62, "excluded type"),
    ("华美口腔诊所", H + "诊所;诊所", "090300", 104.06, 30.63, "excluded type"),
    ("双楠社区卫生服务站", H + "诊所;诊所", "090300", 104.07, 30.64, "health_center"),
    ("阳光幼儿园", "科教文化服务;学校;幼儿园", "141204", 104.08, 30.65, "kindergarten"),
    ("老百姓大药房", H + "医药保健销售店;药房", "090601", 104.09, 30.66, "excluded type"),
    ("红旗超市", "购物服务;超市;超市", "060401", 104.01, 30.67, "unknown type"),
    ("望江社区卫生服务中心", "", "090102", 104.02, 30.66, "health_center"),  # typecode only
    # city-wide: outside the study area (a pet clinic outside is reported as a pet clinic)
    ("龙泉驿区人民医院", H + "综合医院;综合医院", "090100", 104.27, 30.56, "outside"),
    ("青白江社区卫生服务中心", H + "综合医院;卫生院", "090102", 104.25, 30.88, "outside"),
    ("郫都宠物诊所", H + "动物医疗场所;宠物诊所", "090701", 103.89, 30.80, "excluded type"),
]

WHY = {"爱宠动物医院": "pet clinic", "萌宠之家": "pet clinic", "博爱口腔": "dental",
       "美立方医疗美容": "cosmetic", "张氏诊所": "private clinic", "仁和门诊部": "private clinic",
       "华美口腔诊所": "dental (by name)", "老百姓大药房": "pharmacy", "郫都宠物诊所": "pet clinic"}


def _units_file(tmp: Path) -> Path:
    import geopandas as gpd

    gdf = gpd.GeoDataFrame([{"code": "510107001", "name": "甲街道", "type": "街道"},
                            {"code": "510107100", "name": "乙镇", "type": "镇"}],
                           geometry=[shapely.box(104.0, 30.6, 104.05, 30.7),
                                     shapely.box(104.05, 30.6, 104.1, 30.7)], crs="EPSG:4326")
    p = tmp / "units.geojson"
    gdf.to_file(p, driver="GeoJSON")
    return p


def _cfg(tmp: Path, *layers: FacilityLayerConfig) -> Config:
    return Config(path=tmp / "coverage.toml", region=RegionConfig(name="t", metric_crs=METRIC),
                  units=UnitsConfig(path=_units_file(tmp)), network=NetworkConfig(path=tmp / "x.osm"),
                  population=PopulationConfig(total=tmp / "p.tif"), facilities=tuple(layers), services={})


def amap_export(tmp: Path, *, location: str = "location", rows: list[tuple] | None = None) -> Path:
    """An Amap web-API export as a CSV: id, name, type, typecode, address, pname, cityname, adname and
    the GCJ-02 coordinates as one ``location`` = "lon,lat" column (``location="lonlat"``: separate
    lon/lat columns; ``"经纬度"``: the Chinese header)."""
    recs = []
    for i, (name, typ, code, lon, lat, _) in enumerate(rows or AMAP):
        glon, glat = wgs84_to_gcj02(lon, lat)
        rec = {"id": f"B0FF{i:06d}", "name": name, "type": typ, "typecode": code,
               "address": f"武侯区{i + 1}号", "pname": "四川省", "cityname": "成都市", "adname": "武侯区"}
        if location == "lonlat":
            rec |= {"lon": round(float(glon), 6), "lat": round(float(glat), 6)}
        else:
            rec[location] = f"{float(glon):.6f},{float(glat):.6f}"
        recs.append(rec)
    p = tmp / "amap_health.csv"
    pd.DataFrame(recs).to_csv(p, index=False, encoding="utf-8")
    return p


def _layer(path: Path, **kw) -> FacilityLayerConfig:
    return FacilityLayerConfig(name="amap", path=path, coords="gcj02", **kw)


def _read(tmp: Path, layer: FacilityLayerConfig):
    return read_facilities(_cfg(tmp, layer), study_area_wgs84=BOX, metric_crs=METRIC)


def _by_name(res) -> dict[str, str]:
    """name -> kind (accepted) or reason (rejected)."""
    out = dict(zip(res.facilities["name"], res.facilities["kind"], strict=True))
    for _, r in res.rejects.iterrows():
        out[json.loads(r["values"])["name"]] = r["reason"]
    return out


def _balanced(res) -> None:
    for s in res.reports:
        assert s.accepted + sum(s.rejected.values()) == s.rows_read


# ------------------------------------------------------------------------------------------------
# the vocabulary
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("typ,name,kind,why", [
    (H + "综合医院;卫生院", "北苑街道幸福社区卫生计生服务站", "health_center", ""),
    (H + "综合医院;卫生院", "南山区高新社康服务站", "health_center", ""),
    (H + "综合医院;卫生院", "叫安镇卫生院", "township_hospital", ""),
    (H + "综合医院;卫生院", "簇桥街道卫生院", "township_hospital", ""),
    (H + "综合医院;三级甲等医院", "北京协和医院", "hospital", ""),
    (H + "综合医院;综合医院", "城厢街道社区卫生服务中心", "health_center", ""),
    (H + "专科医院;妇科医院", "某妇科医院", "hospital", ""),
    (H + "动物医疗场所;宠物诊所", "瑞鹏宠物医院", None, "pet clinic"),
    (H + "动物医疗场所;兽医站", "畜牧兽医站", None, "pet clinic"),
    (H + "专科医院;口腔医院", "某口腔医院", None, "dental"),
    (H + "专科医院;整形美容", "某医美", None, "cosmetic"),
    (H + "诊所;诊所", "王氏诊所", None, "private clinic (诊所/门诊部)"),
    (H + "诊所;诊所", "某社区卫生服务站", "health_center", ""),
    (H + "诊所;诊所", "石门村卫生室", "health_center", ""),
    (H + "综合医院;综合医院", "某门诊部", None, "private clinic (诊所/门诊部)"),
    (H + "医药保健销售店;药房", "大药房", None, "pharmacy or medical shop"),
    ("医疗;诊所", "李氏诊所", None, "private clinic (诊所/门诊部)"),           # Baidu tag
    ("医疗;综合医院", "玉林社区卫生服务中心", "health_center", ""),
    ("医疗;综合医院", "成都市第三人民医院", "hospital", ""),
    ("医疗;药店", "药店", None, "pharmacy or medical shop"),
    ("教育培训;幼儿园", "阳光幼儿园", "kindergarten", ""),
    ("医疗保健:诊所", "赵氏诊所", None, "private clinic (诊所/门诊部)"),       # Tencent category
    ("医疗保健:综合医院", "人民医院", "hospital", ""),
    ("教育学校:幼儿园", "小天使幼儿园", "kindergarten", ""),
    ("科教文化服务;学校;幼儿园", "x", "kindergarten", ""),
    ("社区卫生服务站", "东街社区卫生服务站", "health_center", ""),              # municipal lists unchanged
    ("乡镇卫生院", "白水镇卫生院", "township_hospital", ""),
    ("养老院", "幸福养老院", "elderly_institution", ""),
    ("诊所", "", None, "private clinic (诊所/门诊部)"),
])
def test_poi_type_vocabulary(typ: str, name: str, kind: str | None, why: str) -> None:
    m = classify_type(typ, name=name)
    assert (m.kind, m.excluded) == (kind, why)
    assert m.source == typ


def test_amap_typecodes_and_config_kinds_first() -> None:
    m = classify_type("", typecode="090102", name="望江社区卫生服务中心")
    assert m.kind == "health_center" and m.source == "090102 医疗保健服务;综合医院;卫生院"
    assert classify_type(None, typecode=90701.0).excluded == "pet clinic"  # read as a number by Excel
    assert classify_type("", typecode="090299").kind == "hospital"  # unknown small class: its middle class
    assert classify_type(H + "诊所;诊所|" + H + "口腔医院", name="x").excluded.startswith("private clinic")
    assert all(len(c) == 6 and v.count(";") == 2 for c, v in AMAP_TYPECODES.items())
    # a kind the region adds wins over the exclusions ([kinds.pharmacy] label_zh = "药店")
    kinds = {**BUILTIN_KINDS, "pharmacy": Kind("pharmacy", "药店", "pharmacy", "#000000")}
    assert classify_type("医疗;药店", kinds=kinds).kind == "pharmacy"
    assert classify_type("医疗;药店").excluded == "pharmacy or medical shop"
    # a region that wants private clinics maps the exact type text
    assert classify_type(H + "诊所;诊所", extra={H + "诊所;诊所": "health_center"}).kind == "health_center"


# ------------------------------------------------------------------------------------------------
# an Amap export read as a layer
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("location", ["location", "lonlat", "经纬度"])
def test_amap_export_kinds_and_reasons(tmp_path: Path, location: str) -> None:
    res = _read(tmp_path, _layer(amap_export(tmp_path, location=location)))
    got = _by_name(res)
    for name, _, _, _, _, expected in AMAP:
        if expected == "outside":
            assert got[name].startswith("outside the study area"), name
        elif expected in ("excluded type", "unknown type"):
            assert got[name].startswith(expected), (name, got[name])
        else:
            assert got[name] == expected, name
    for name, why in WHY.items():
        assert got[name].endswith(f": {why}") or f": {why} " in got[name] or why in got[name], got[name]
    assert got["爱宠动物医院"] == f"excluded type '{H}动物医疗场所;宠物诊所': pet clinic"
    assert got["红旗超市"] == "unknown type '购物服务;超市;超市'"
    assert len(res.facilities) == 9 and len(res.rejects) == len(AMAP) - 9
    _balanced(res)
    # the GCJ-02 location column was back-shifted: points sit within metres of the WGS84 truth
    fac = res.facilities.set_index("name").to_crs("EPSG:4326")
    p = fac.geometry["芳草社区卫生服务站"]
    assert abs(p.x - 104.02) < 2e-5 and abs(p.y - 30.62) < 2e-5


def test_excluded_rows_do_not_count_towards_the_rejected_share(tmp_path: Path) -> None:
    # 9 of 21 rows excluded by type: a city-wide medical export is mostly pharmacies and clinics; only
    # the unknown type and the two points outside count (3 of 21 < 20 %), so the layer reads
    _read(tmp_path, _layer(amap_export(tmp_path)))
    # three more points outside the area are a sign of a wrong file: 6 of 24 > 20 % is an error
    far = [(f"远郊卫生院{i}", H + "综合医院;卫生院", "090102", 103.5, 30.2 + i / 10, "outside")
           for i in range(3)]
    with pytest.raises(LayerError, match=r"6 of 24 rows \(25%\) rejected, more than facilities\[0\]\."
                                         r"max_rejected_share = 0\.2, besides 9 excluded on purpose"):
        _read(tmp_path, _layer(amap_export(tmp_path, rows=AMAP + far)))


# ------------------------------------------------------------------------------------------------
# include / exclude filters
# ------------------------------------------------------------------------------------------------

def test_exclude_and_include_filters(tmp_path: Path) -> None:
    path = amap_export(tmp_path)
    res = _read(tmp_path, _layer(path, exclude={"type": "宠物|口腔|整形"}))
    got = _by_name(res)
    reason = "excluded by facilities[0].exclude.type = '宠物|口腔|整形'"
    for name in ("爱宠动物医院", "博爱口腔", "美立方医疗美容", "郫都宠物诊所"):
        assert got[name] == reason, name  # the filter is the first reason, before the vocabulary's
    assert got["萌宠之家"].startswith("excluded type")  # 动物医疗场所 without 宠物: the vocabulary's
    _balanced(res)
    assert res.reports[0].rejected[reason] == 4

    res = _read(tmp_path, _layer(path, include={"name": "社区"}))  # 16 of 21 rejected: filters do not count
    got = _by_name(res)
    assert set(res.facilities["name"]) == {"玉林街道社区卫生服务中心", "芳草社区卫生服务站",
                                           "双楠社区卫生服务站", "望江社区卫生服务中心"}
    assert got["四川大学华西医院"] == "excluded by facilities[0].include.name = '社区' (not matched)"
    assert got["青白江社区卫生服务中心"].startswith("outside the study area")
    _balanced(res)

    # by the kind the vocabulary gave (source_type) and by the typecode column
    res = _read(tmp_path, _layer(path, exclude={"typecode": "^0901", "source_type": "幼儿园"}))
    assert set(res.facilities["kind"]) == {"health_center"}
    _balanced(res)


def test_a_filter_on_no_column_is_a_layer_error(tmp_path: Path) -> None:
    with pytest.raises(LayerError, match=r"facilities\[0\]\.exclude\.category: no such column or field "
                                         r"\(columns: id, name, type, typecode"):
        _read(tmp_path, _layer(amap_export(tmp_path), exclude={"category": "x"}))


# ------------------------------------------------------------------------------------------------
# what the check prints and what facilities.csv keeps
# ------------------------------------------------------------------------------------------------

def test_check_prints_the_source_type_table(tmp_path: Path) -> None:
    rep = check_layers(_cfg(tmp_path, _layer(amap_export(tmp_path))))
    assert rep.ok, rep.text()
    text = rep.text()
    line = next(ln for ln in text.splitlines() if ln.startswith("  source type -> kind: "))
    entries = line.removeprefix("  source type -> kind: ").split("; ")
    # rows read, largest first; a type that became two things is listed twice
    assert entries[0] == f"{H}综合医院;卫生院 -> health_center 3"
    assert f"{H}综合医院;卫生院 -> township_hospital 2" in entries
    assert f"{H}动物医疗场所;宠物诊所 -> (excluded: pet clinic) 2" in entries
    assert f"{H}诊所;诊所 -> (excluded: private clinic (诊所/门诊部)) 2" in entries
    assert f"{H}诊所;诊所 -> (excluded: dental (by name)) 1" in entries
    assert f"{H}综合医院;三级甲等医院 -> hospital 1" in entries
    assert "090102 医疗保健服务;综合医院;卫生院 -> health_center 1" in entries
    assert "购物服务;超市;超市 -> (unknown) 1" in entries
    assert sum(int(e.rsplit(" ", 1)[1]) for e in entries) == len(AMAP)
    assert "rejected     1: unknown type '购物服务;超市;超市'" in text


def test_source_type_in_facilities_csv(tmp_path: Path) -> None:
    res = _read(tmp_path, _layer(amap_export(tmp_path)))
    out = tmp_path / "build"
    out.mkdir()
    write_facilities(out, res.facilities, res.rejects)
    fac = pd.read_csv(out / "facilities.csv", encoding="utf-8-sig", dtype=str).set_index("name")
    assert fac.loc["玉林街道社区卫生服务中心", "source_type"] == f"{H}综合医院;卫生院"
    assert fac.loc["望江社区卫生服务中心", "source_type"] == "090102 医疗保健服务;综合医院;卫生院"
    assert fac.loc["四川大学华西医院", "kind"] == "hospital"


# ------------------------------------------------------------------------------------------------
# OSM: objects whose tags map to no kind are rejected (pandas 3 made their kind NaN, not None)
# ------------------------------------------------------------------------------------------------

def _osm_file(tmp: Path) -> Path:
    nodes = [(1, 104.01, 30.61, {"amenity": "clinic", "name": "Clinic A"}),
             (2, 104.02, 30.62, {"amenity": "kindergarten", "name": "KG"}),
             (3, 104.03, 30.63, {"amenity": "social_facility", "name": "SF no subtag"}),
             (4, 104.04, 30.64, {"social_facility": "group_home", "name": "Group home"}),
             (5, 104.05, 30.65, {"healthcare": "doctor", "name": "Dr"})]
    body = "".join(
        f'  <node id="{i}" version="1" lat="{lat}" lon="{lon}">'
        + "".join(f'<tag k="{k}" v="{v}"/>' for k, v in tags.items()) + "</node>\n"
        for i, lon, lat, tags in nodes)
    p = tmp / "f.osm"
    p.write_text(f'<?xml version="1.0" encoding="UTF-8"?>\n<osm version="0.6">\n{body}</osm>\n',
                 encoding="utf-8")
    return p


def test_osm_objects_of_no_kind_are_rejected(tmp_path: Path) -> None:
    layer = FacilityLayerConfig(name="osm", path=_osm_file(tmp_path), from_osm=True, max_rejected_share=1.0)
    res = read_facilities(_cfg(tmp_path, layer), study_area_wgs84=BOX, metric_crs=METRIC)
    s = res.reports[0]
    assert (s.rows_read, s.accepted, sum(s.rejected.values())) == (5, 3, 2)
    assert res.facilities["kind"].tolist() == ["health_center", "kindergarten", "health_center"]
    assert res.facilities["kind"].map(lambda k: isinstance(k, str) and k != "").all()
    assert sorted(_by_name(res)[n] for n in ("SF no subtag", "Group home")) == [
        "OSM tags not mapped to a kind: amenity=social_facility",
        "OSM tags not mapped to a kind: social_facility=group_home"]
    assert res.facilities["source_type"].tolist() == ["amenity=clinic", "amenity=kindergarten",
                                                      "healthcare=doctor"]
    assert s.source_types["amenity=social_facility"] == {"(unknown)": 1}
    # filters see the OSM rule as the type
    res = read_facilities(_cfg(tmp_path, FacilityLayerConfig(
        name="osm", path=layer.path, from_osm=True, max_rejected_share=1.0, exclude={"type": "doctor"})),
        study_area_wgs84=BOX, metric_crs=METRIC)
    assert "Dr" not in set(res.facilities["name"])
    _balanced(res)
