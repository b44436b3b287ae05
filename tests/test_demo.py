"""The demo county generator: determinism, real readers, and that the planted gaps really hold.

Travel times are checked on an independent graph built here from ``roads.osm`` (nodes every
<= 50 m; points attach to their nearest node with a straight access leg at 1.0 m/s), so the demo
does not rely on the pipeline it is meant to test.
"""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

from coverage import demo
from coverage.config import DEFAULT_DELIVERY_SPEEDS_KPH, load_config
from coverage.coords import wgs84_to_gcj02

REPO = Path(__file__).resolve().parents[1]
DEMO_TOML = REPO / "layers" / "demo" / "coverage.toml"
WALK_MPS = 1.0
ELDERLY_TYPES = {"社区养老服务综合体", "嵌入式社区养老院", "日间照料中心", "日间照料站",
                 "乡镇区域性养老服务中心", "村级互助养老服务点",
                 "养老院", "养老机构", "敬老院", "老幼复合型社区综合体"}
NOT_WALKABLE = {"motorway", "motorway_link"}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    out = tmp_path_factory.mktemp("demo")
    shutil.copy(DEMO_TOML, out / "coverage.toml")
    return out, demo.build_demo(out)


# --------------------------------------------------------------------------------------------
# an independent router
# --------------------------------------------------------------------------------------------


@dataclass
class Graph:
    node_xy: np.ndarray  # metres, EPSG:32649
    walk: sp.csr_matrix  # seconds, symmetric
    delivery: sp.csr_matrix  # seconds, directed (one-way respected)
    ways: list[tuple[list[int], dict[str, str]]]
    node_index: dict[int, int]


def _utm(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    from pyproj import Transformer

    t = Transformer.from_crs("EPSG:4326", "EPSG:32649", always_xy=True)
    x, y = t.transform(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
    return np.column_stack([x, y])


def _graph(osm: Path) -> Graph:
    root = ET.parse(osm).getroot()
    ids, lon, lat = [], [], []
    for n in root.iter("node"):
        ids.append(int(n.get("id")))
        lon.append(float(n.get("lon")))
        lat.append(float(n.get("lat")))
    index = {i: k for k, i in enumerate(ids)}
    xy = _utm(np.array(lon), np.array(lat))
    ways = []
    rows = {"walk": ([], [], []), "delivery": ([], [], [])}
    for w in root.iter("way"):
        refs = [int(nd.get("ref")) for nd in w.iter("nd")]
        tags = {t.get("k"): t.get("v") for t in w.iter("tag")}
        ways.append((refs, tags))
        hw = tags.get("highway")
        if hw is None:
            continue
        u = np.array([index[r] for r in refs[:-1]])
        v = np.array([index[r] for r in refs[1:]])
        length = np.hypot(*(xy[u] - xy[v]).T)
        if hw not in NOT_WALKABLE:
            for a, b in ((u, v), (v, u)):
                rows["walk"][0].extend(a)
                rows["walk"][1].extend(b)
                rows["walk"][2].extend(length / WALK_MPS)
        if hw in DEFAULT_DELIVERY_SPEEDS_KPH:
            t = length / (DEFAULT_DELIVERY_SPEEDS_KPH[hw] / 3.6)
            pairs = [(u, v)] if tags.get("oneway") == "yes" else [(u, v), (v, u)]
            for a, b in pairs:
                rows["delivery"][0].extend(a)
                rows["delivery"][1].extend(b)
                rows["delivery"][2].extend(t)
    n = len(ids)

    def mat(mode: str) -> sp.csr_matrix:
        r, c, w = rows[mode]
        m = sp.coo_matrix((w, (r, c)), shape=(n, n)).tocsr()
        m.sum_duplicates()
        return m

    return Graph(xy, mat("walk"), mat("delivery"), ways, index)


def _times_from(g: Graph, mode: str, sources_xy: np.ndarray, targets_xy: np.ndarray,
                access_mps: float = WALK_MPS) -> np.ndarray:
    """Min travel time (s) from any source to each target: access leg + network + access leg."""
    m = g.walk if mode == "walk" else g.delivery
    used = np.unique(np.concatenate(m.nonzero()))
    tree = cKDTree(g.node_xy[used])
    ds, si = tree.query(sources_xy)
    dt, ti = tree.query(targets_xy)
    src_nodes, tgt_nodes = used[si], used[ti]
    dist = dijkstra(m, directed=True, indices=src_nodes, min_only=False)
    total = dist[:, tgt_nodes] + ds[:, None] / access_mps + dt[None, :] / access_mps
    return total.min(axis=0)


@pytest.fixture(scope="module")
def graph(built: tuple[Path, list[Path]]) -> Graph:
    return _graph(built[0] / "roads.osm")


def _facilities(out: Path):
    import pyogrio

    return pyogrio.read_dataframe(out / "facilities" / "elderly_childcare.shp", encoding="gbk")


def _meal_wgs84(out: Path) -> tuple[list[str], np.ndarray]:
    import pandas as pd

    df = pd.read_csv(out / "facilities" / "meal_points.csv", encoding="gbk")
    glon, glat = df["经度"].to_numpy(float), df["纬度"].to_numpy(float)
    lon, lat = glon.copy(), glat.copy()
    for _ in range(30):  # invert GCJ-02 by fixed-point iteration
        flon, flat = wgs84_to_gcj02(lon, lat)
        lon, lat = lon - (flon - glon), lat - (flat - glat)
    return list(df["名称"]), np.column_stack([lon, lat])


def _cells(out: Path) -> dict[str, np.ndarray]:
    """Populated cell centres: lon, lat, x/y (UTM), pop arrays, unit key."""
    import rasterio

    arrs = {}
    for name in ("total", "60plus", "0to3"):
        with rasterio.open(out / f"pop_{name}.tif") as r:
            arrs[name] = r.read(1)
            transform = r.transform
    rows, cols = np.nonzero(arrs["total"] > 0)
    lon = transform.c + (cols + 0.5) * transform.a
    lat = transform.f + (rows + 0.5) * transform.e
    kx, ky = demo._local_km(lon, lat)
    return {"lon": lon, "lat": lat, "xy": _utm(lon, lat), "kx": kx, "ky": ky,
            "unit": demo.unit_key_at(kx, ky), **{k: v[rows, cols] for k, v in arrs.items()}}


# --------------------------------------------------------------------------------------------
# files, determinism, readers
# --------------------------------------------------------------------------------------------


def test_writes_exactly_what_the_demo_config_expects(built: tuple[Path, list[Path]]) -> None:
    out, files = built
    cfg = load_config(out / "coverage.toml")
    expected = {cfg.units.path, cfg.units.communities_path, cfg.network.path, cfg.population.total,
                cfg.population.age_60plus, cfg.population.age_0to3, *(f.path for f in cfg.facilities)}
    assert all(p.is_file() for p in expected)
    shp_parts = {out / "facilities" / f"elderly_childcare.{e}" for e in ("shx", "dbf", "prj")}
    assert set(files) == expected | shp_parts
    assert files == sorted(files)
    assert not (out / "facilities" / "elderly_childcare.cpg").exists()
    assert (out / "coverage.toml").read_bytes() == DEMO_TOML.read_bytes()
    assert (out / "roads.osm").stat().st_size < 2_000_000


def test_build_is_byte_identical(built: tuple[Path, list[Path]], tmp_path: Path) -> None:
    out, files = built
    again = demo.build_demo(tmp_path)
    assert [p.relative_to(tmp_path) for p in again] == [p.relative_to(out) for p in files]
    for a, b in zip(files, again, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name


def test_build_is_fast(tmp_path: Path) -> None:
    import time

    t0 = time.perf_counter()
    demo.build_demo(tmp_path)
    assert time.perf_counter() - t0 < 5.0


def test_shapefile_is_gbk_cgcs2000_without_cpg(built: tuple[Path, list[Path]]) -> None:
    import pyogrio

    out, _ = built
    shp = out / "facilities" / "elderly_childcare.shp"
    df = pyogrio.read_dataframe(shp, encoding="gbk")
    assert list(df.columns) == ["名称", "类型", "地址", "床位数", "护理型床位", "托位数", "建筑面积",
                                "占地面积", "geometry"]
    assert df.crs.to_epsg() == 4490
    assert "南门社区日间照料中心" in set(df["名称"])
    assert set(df["类型"]) >= {"养老院", "养老机构", "社区养老服务综合体", "嵌入式社区养老院", "日间照料中心",
                               "乡镇区域性养老服务中心", "村级互助养老服务点", "敬老院", "托育机构", "托育点",
                               "幼儿园托班", "老幼复合型社区综合体"}
    assert {"120张", "1,800"} <= set(df["床位数"]) | set(df["建筑面积"])  # dirty text a reader must parse
    with pytest.raises(UnicodeDecodeError, match="utf-8"):
        pyogrio.read_dataframe(shp, encoding="utf-8")
    default = pyogrio.read_dataframe(shp)  # no .cpg, no LDID: GDAL assumes ISO-8859-1 -> mojibake
    assert "名称" not in default.columns


def test_meal_csv_is_gbk_gcj02(built: tuple[Path, list[Path]]) -> None:
    out, _ = built
    raw = (out / "facilities" / "meal_points.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    text = raw.decode("gbk")
    assert text.splitlines()[0] == "名称,类型,地址,经度,纬度"
    assert {"长寿食堂", "老年餐桌", "助餐点", "中央厨房"} <= {
        ln.split(",")[1] for ln in text.splitlines()[1:]}
    _names, wgs = _meal_wgs84(out)
    first = demo._MEAL_POINTS[0]
    true = np.array(demo._lonlat(first.x, first.y))
    gcj = np.array([float(v) for v in text.splitlines()[1].split(",")[3:5]])
    shift_m = np.hypot(*((gcj - true) * [demo.M_PER_DEG_LON, demo.M_PER_DEG_LAT]))
    assert 200 < shift_m < 800  # the GCJ-02 offset is real
    assert np.abs(wgs[0] - true).max() < 1e-6  # and inverts back to the true WGS84 position


def test_health_xlsx(built: tuple[Path, list[Path]]) -> None:
    from openpyxl import load_workbook

    out, _ = built
    ws = load_workbook(out / "facilities" / "health.xlsx").active
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0] == ("名称", "类型", "地址", "经度", "纬度")
    assert {r[1] for r in rows[1:]} == {"社区卫生服务中心", "社区卫生服务站", "乡镇卫生院"}
    assert all(107.9 < r[3] < 108.1 and 31.9 < r[4] < 32.1 for r in rows[1:])


def test_rasters_worldpop_like(built: tuple[Path, list[Path]]) -> None:
    import rasterio

    out, _ = built
    arrs = {}
    for name in ("total", "60plus", "0to3"):
        with rasterio.open(out / f"pop_{name}.tif") as r:
            assert r.crs.to_epsg() == 4326
            assert r.res == pytest.approx((0.000833333333, 0.000833333333), abs=1e-12)
            assert r.nodata == -99999 and r.dtypes == ("float32",)
            arrs[name] = r.read(1)
            lon_w, lat_s, lon_e, lat_n = r.bounds
    t = arrs["total"]
    assert (t[0] == -99999).all() and (t[:, -1] == -99999).all()
    county_w, county_s = demo._lonlat(0.0, 0.0)
    county_e, county_n = demo._lonlat(15.0, 15.0)
    assert lon_w < county_w and lat_s < county_s and lon_e > county_e and lat_n > county_n
    valid = t != -99999
    assert (t[valid] >= 0).all()
    total = t[valid].sum()
    assert 150_000 < total < 300_000
    assert 0.18 < arrs["60plus"][valid].sum() / total < 0.25
    assert 0.025 < arrs["0to3"][valid].sum() / total < 0.035
    assert (arrs["60plus"][valid] + arrs["0to3"][valid] <= t[valid]).all()


def test_cells_straddling_the_border_have_people(built: tuple[Path, list[Path]]) -> None:
    out, _ = built
    c = _cells(out)
    half_x = demo.CELL_DEG / 2 * demo.M_PER_DEG_LON / 1000
    half_y = demo.CELL_DEG / 2 * demo.M_PER_DEG_LAT / 1000
    straddle = np.zeros(len(c["kx"]), dtype=bool)
    for v, half in ((c["kx"], half_x), (c["ky"], half_y)):
        for edge in (0.0, 15.0):
            straddle |= (v - half < edge) & (v + half > edge)
    assert straddle.sum() >= 3  # people live only in settlements: 高桥村 is the one on the border
    assert c["total"][straddle].max() > 5  # a village on the southern border spills over it
    outside = (c["kx"] + half_x < 0) | (c["kx"] - half_x > 15)
    assert not outside.any()  # cells wholly outside the county are 0 or nodata


def test_units_and_communities_tile_the_county(built: tuple[Path, list[Path]]) -> None:
    import geopandas as gpd

    out, _ = built
    units = gpd.read_file(out / "units.geojson").to_crs(32649)
    comms = gpd.read_file(out / "communities.geojson").to_crs(32649)
    assert list(units.columns) == ["code", "name", "type", "class", "area_type", "geometry"]
    assert sorted(units["type"]) == ["乡", "街道", "街道", "街道", "镇", "镇"]
    streets = units[units["type"] == "街道"]
    assert set(streets["class"]) == {"城区"} and sorted(streets["area_type"]) == ["mixed", "new", "old"]
    assert set(units.loc[units["type"] != "街道", "class"]) == {"郊区"}
    assert units["code"].str.fullmatch(r"\d{12}").all() and comms["code"].str.fullmatch(r"\d{12}").all()
    assert units.estimate_utm_crs().to_epsg() == 32649  # the brief: auto metric CRS = UTM 49N
    area = units.union_all().area
    assert 200e6 < area < 250e6
    assert units.area.sum() == pytest.approx(area, abs=1.0)  # no overlaps
    assert units.union_all().convex_hull.area == pytest.approx(area, rel=1e-3)  # no holes
    for _, u in units.iterrows():
        sub = comms[comms["parent_code"] == u["code"]]
        assert len(sub) >= 3
        assert sub.area.sum() == pytest.approx(u.geometry.area, abs=1.0)
        assert u.geometry.symmetric_difference(sub.union_all()).area < 1.0
    assert set(comms["parent_code"]) == set(units["code"])


# --------------------------------------------------------------------------------------------
# the road network
# --------------------------------------------------------------------------------------------


def test_osm_loads_in_osmnx_with_shared_intersections(built: tuple[Path, list[Path]]) -> None:
    import networkx as nx
    import osmnx as ox

    out, _ = built
    g = ox.graph_from_xml(out / "roads.osm", simplify=False, retain_all=True)
    hw = {d.get("highway") for _, _, d in g.edges(data=True)}
    assert {"motorway", "motorway_link", "primary", "secondary", "tertiary", "residential", "service",
            "footway", "path", "steps", "track", "unclassified"} <= hw
    roads = g.edge_subgraph([(u, v, k) for u, v, k, d in g.edges(keys=True, data=True) if "highway" in d])
    sizes = sorted((len(c) for c in nx.weakly_connected_components(roads)), reverse=True)
    assert sizes[0] > 5000  # one routable county network ...
    assert len(sizes) == 2 and sizes[1] > 5  # ... and the cut-off ferry village 渡口村
    root = ET.parse(out / "roads.osm").getroot()
    node_ids = [int(n.get("id")) for n in root.iter("node")]
    way_ids = [int(w.get("id")) for w in root.iter("way")]
    assert node_ids == sorted(node_ids) and node_ids[0] > 0 and way_ids == sorted(way_ids)
    assert root.get("version") == "0.6"


def test_roads_cross_only_at_shared_nodes_and_the_river_only_on_bridges(graph: Graph) -> None:
    from shapely import STRtree
    from shapely.geometry import LineString, Point

    lines, tags, nodesets = [], [], []
    river = None
    for refs, t in graph.ways:
        geom = LineString(graph.node_xy[[graph.node_index[r] for r in refs]])
        if t.get("waterway") == "river":
            river = geom
            continue
        lines.append(geom)
        tags.append(t)
        nodesets.append({tuple(np.round(graph.node_xy[graph.node_index[r]], 3)) for r in refs})
    assert river is not None
    over_river = [t for g_, t in zip(lines, tags, strict=True) if g_.intersects(river)]
    assert over_river and all(t.get("bridge") == "yes" for t in over_river)
    assert {t["highway"] for t in over_river} >= {"motorway", "secondary", "tertiary"}
    tree = STRtree(lines)
    bad = []
    for i, j in zip(*tree.query(lines, predicate="intersects"), strict=True):
        if i >= j or "layer" in tags[i] or "layer" in tags[j]:
            continue  # bridges pass over
        inter = lines[i].intersection(lines[j])
        pts = [inter] if isinstance(inter, Point) else list(getattr(inter, "geoms", []))
        for p in pts:
            if isinstance(p, Point) and not any(np.hypot(p.x - a, p.y - b) < 0.01 for a, b in nodesets[i]):
                bad.append((tags[i].get("name"), tags[j].get("name"), p.wkt))
    assert not bad, bad[:5]


def test_motorway_is_not_walkable_and_has_oneway_links(graph: Graph) -> None:
    kinds = {t.get("highway"): t for _, t in graph.ways}
    assert kinds["motorway"]["oneway"] == "yes" and kinds["motorway_link"]["oneway"] == "yes"
    oneway_res = [t for _, t in graph.ways if t.get("highway") == "residential" and t.get("oneway") == "yes"]
    assert len(oneway_res) >= 2
    assert all("name" in t for _, t in graph.ways if t.get("highway") in ("primary", "secondary", "tertiary"))


# --------------------------------------------------------------------------------------------
# planted gaps
# --------------------------------------------------------------------------------------------


def test_planted_gaps_are_described() -> None:
    gaps = demo.PLANTED_GAPS
    assert set(gaps) == {"street_without_complex", "town_beyond_meal_radius", "small_daycare",
                         "river_cluster"}
    codes = {u.code for u in demo._UNITS}
    assert all(g["unit_code"] in codes for g in gaps.values())


def test_gap_street_without_complex(built: tuple[Path, list[Path]]) -> None:
    out, _ = built
    fac = _facilities(out)
    kx, ky = demo._local_km(fac.geometry.x.to_numpy(), fac.geometry.y.to_numpy())
    unit = demo.unit_key_at(kx, ky)
    complexes = fac["类型"].isin(["社区养老服务综合体", "老幼复合型社区综合体"]).to_numpy()
    gap = demo.PLANTED_GAPS["street_without_complex"]["unit_code"]
    for u in demo._UNITS:
        if u.type == "街道":
            assert complexes[unit == u.key].any() == (u.code != gap), u.name


def _area(v: str) -> float:
    return float(str(v).replace(",", "").replace("张", "")) if str(v).strip() else float("nan")


def test_gap_small_daycare_and_other_standards(built: tuple[Path, list[Path]]) -> None:
    import geopandas as gpd

    out, _ = built
    fac = _facilities(out)
    comms = gpd.read_file(out / "communities.geojson")
    units = gpd.read_file(out / "units.geojson")
    fac = fac.set_crs(4326, allow_override=True)
    joined = gpd.sjoin(fac, comms[["code", "parent_code", "geometry"]], predicate="within")
    assert len(joined) == len(fac)  # every facility lies in a community
    daycare = joined[joined["类型"] == "日间照料中心"]
    gap = demo.PLANTED_GAPS["small_daycare"]["community_code"]
    street_codes = set(units.loc[units["type"] == "街道", "code"])
    for code in comms.loc[comms["parent_code"].isin(street_codes), "code"]:
        best = daycare.loc[daycare["code"] == code, "建筑面积"].map(_area).max()
        assert (best >= 750) == (code != gap), code
    # each old/new street: an institution of >= 1500 / >= 3000 m2; each town: a regional centre
    inst = joined[joined["类型"].isin(["养老院", "养老机构", "社区养老服务综合体", "嵌入式社区养老院"])]
    for _, u in units.iterrows():
        areas = inst.loc[inst["parent_code"] == u["code"], "建筑面积"].map(_area)
        if u["area_type"] == "old" and u["type"] == "街道":
            assert areas.max() >= 1500
        if u["area_type"] == "new" and u["type"] == "街道":
            assert areas.max() >= 3000
        if u["type"] != "街道":
            n = (joined.loc[joined["parent_code"] == u["code"], "类型"] == "乡镇区域性养老服务中心").sum()
            assert n == 1


def test_colocation_some_and_not_all(built: tuple[Path, list[Path]]) -> None:
    import pandas as pd

    out, _ = built
    fac = _facilities(out)
    health = pd.read_excel(out / "facilities" / "health.xlsx")
    elderly = fac[fac["类型"].isin(ELDERLY_TYPES - {"村级互助养老服务点"})]
    exy = _utm(elderly.geometry.x, elderly.geometry.y)
    hxy = _utm(health["经度"], health["纬度"])
    d = cKDTree(hxy).query(exy)[0]
    assert 3 <= (d <= 100).sum() < len(d)


def test_gap_river_cluster_walk(built: tuple[Path, list[Path]], graph: Graph) -> None:
    out, _ = built
    gap = demo.PLANTED_GAPS["river_cluster"]
    fac = _facilities(out)
    eld = fac[fac["类型"].isin(ELDERLY_TYPES)]
    fxy = _utm(eld.geometry.x, eld.geometry.y)
    c = _cells(out)
    centre = _utm(*gap["center_lonlat"])[0]
    near = np.hypot(*(c["xy"] - centre).T) <= gap["radius_m"]
    assert c["60plus"][near].sum() > 400  # a real cluster of elderly residents ...
    straight = np.hypot(*(fxy - centre).T)
    nearest = eld["名称"].to_numpy()[straight.argmin()]
    assert nearest == gap["nearest_facility"] and straight.min() < 900  # ... < 900 m from a facility
    t = _times_from(graph, "walk", fxy, c["xy"][near])
    assert t.min() > 15 * 60  # ... but > 15 min on foot from every elderly facility
    # elsewhere in the urban core most elderly are within 15 min
    core = np.isin(c["unit"], ["S1", "S2", "S3"]) & ~near
    tc = _times_from(graph, "walk", fxy, c["xy"][core])
    share = c["60plus"][core][tc <= 900].sum() / c["60plus"][core].sum()
    assert share > 0.75


def test_gap_town_beyond_meal_radius(built: tuple[Path, list[Path]], graph: Graph) -> None:
    out, _ = built
    _, mxy_ll = _meal_wgs84(out)
    mxy = _utm(mxy_ll[:, 0], mxy_ll[:, 1])
    c = _cells(out)
    pop = c["total"] > 1.0
    t = _times_from(graph, "delivery", mxy, c["xy"][pop])
    unit = c["unit"][pop]
    w = c["60plus"][pop]
    gap_key = next(u.key for u in demo._UNITS
                   if u.code == demo.PLANTED_GAPS["town_beyond_meal_radius"]["unit_code"])
    shares = {}
    for u in demo._UNITS:
        limit = 15 * 60 if u.cls == "城区" else 30 * 60
        m = unit == u.key
        shares[u.key] = w[m][t[m] <= limit].sum() / w[m].sum()
    assert shares[gap_key] < 0.05, shares
    assert all(s > 0.85 for k, s in shares.items() if k != gap_key), shares
    # every village of the gap town is beyond 30 min
    for vx, vy, *_ in demo._VILLAGES:
        if demo.unit_key_at(np.array([vx]), np.array([vy]))[0] == gap_key:
            tv = _times_from(graph, "delivery", mxy, _utm(*demo._lonlat(vx, vy)))
            assert tv.min() > 40 * 60
