"""Network building: a hand-made OSM file with answers worked out by hand, real extracts (Helsinki,
Chengdu road layer), a GBK road-line shapefile, the osmnx fetch (mocked), and the GPKG export."""

from __future__ import annotations

import bz2
import dataclasses
import itertools
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely
from conftest import shared_file
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Transformer
from scipy.sparse.csgraph import dijkstra

from coverage.config import (
    Config,
    DeliveryProfile,
    NetworkConfig,
    PopulationConfig,
    RegionConfig,
    UnitsConfig,
    WalkProfile,
)
from coverage.errors import InputError
from coverage.graph import Network
from coverage.network import (
    CHINESE_ROAD_CLASSES,
    NetworkInputError,
    build_networks,
    estimate_utm_crs,
    export_network_gpkg,
    fetch_osmnx_network,
    network_from_osm,
    network_from_road_layer,
    read_osm_ways,
)

CRS = "EPSG:32648"  # UTM 48N (Chengdu)
LON0, LAT0 = 104.0, 30.6
WALK = WalkProfile(speed_mps=1.0)
DELIV = DeliveryProfile()

# node id -> (dlon, dlat) in units of 0.001 degree from (LON0, LAT0)
NODES = {
    # west bank: main street, a one-way street, a footway, a motorway, a cul-de-sac loop
    1: (0, 0), 2: (1, 0), 3: (2, 0), 4: (1, 1), 5: (2, 1), 6: (3, 0), 7: (3, 0.5), 8: (2.5, -0.5),
    9: (1.5, -0.5),
    # a 2-node fragment (dropped)
    20: (0, 3), 21: (0.3, 3),
    # an island of 6 nodes (kept)
    30: (10, 10), 31: (10.5, 10), 32: (11, 10), 33: (11.5, 10), 34: (12, 10), 35: (12.5, 10),
    # east bank beyond a river without a bridge (kept)
    40: (6, 0), 41: (7, 0), 42: (6, 1), 43: (7, 1), 44: (6, -1), 45: (5, -1),
    # river nodes
    50: (4.5, -3), 51: (4.5, 3),
}
# way id -> (node refs, tags)
WAYS = {
    100: ([1, 2, 3], {"highway": "residential", "name": "东街"}),
    101: ([2, 4], {"highway": "residential", "oneway": "yes", "name": "单行街"}),
    102: ([4, 5, 3], {"highway": "residential"}),
    103: ([1, 4], {"highway": "footway"}),
    104: ([3, 6], {"highway": "motorway"}),
    105: ([3, 7], {"highway": "residential", "maxspeed": "10"}),
    140: ([3, 8, 9, 3], {"highway": "service"}),
    110: ([20, 21], {"highway": "service"}),
    120: ([30, 31], {"highway": "track"}),
    121: ([31, 32], {"highway": "track"}),
    122: ([32, 33], {"highway": "track"}),
    123: ([33, 34], {"highway": "track"}),
    124: ([34, 35], {"highway": "track"}),
    130: ([40, 41], {"highway": "tertiary"}),
    131: ([40, 42], {"highway": "tertiary", "oneway": "-1"}),
    134: ([40, 43], {"highway": "tertiary"}),
    135: ([40, 44], {"highway": "tertiary"}),
    132: ([44, 45], {"highway": "service", "access": "private"}),
    133: ([41, 43], {"highway": "trunk", "foot": "no"}),
    150: ([50, 51], {"waterway": "river"}),
}


def osm_xml(nodes: dict[int, tuple[float, float]], ways: dict[int, tuple[list[int], dict[str, str]]]) -> str:
    out = ["<?xml version='1.0' encoding='UTF-8'?>", "<osm version='0.6' generator='test'>"]
    for nid, (dx, dy) in sorted(nodes.items()):
        out.append(f"  <node id='{nid}' version='1' lat='{LAT0 + dy / 1000:.7f}' "
                   f"lon='{LON0 + dx / 1000:.7f}'/>")
    for wid, (refs, tags) in ways.items():  # file order = dict order
        out.append(f"  <way id='{wid}' version='1'>")
        out += [f"    <nd ref='{r}'/>" for r in refs]
        out += [f"    <tag k='{k}' v='{v}'/>" for k, v in tags.items()]
        out.append("  </way>")
    out.append("</osm>")
    return "\n".join(out) + "\n"


@pytest.fixture(scope="module")
def toy_osm(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("osm") / "toy.osm"
    p.write_text(osm_xml(NODES, WAYS), encoding="utf-8")
    return p


_TR = Transformer.from_crs("EPSG:4326", CRS, always_xy=True)


def xy(nid: int) -> np.ndarray:
    dx, dy = NODES[nid]
    return np.array(_TR.transform(LON0 + dx / 1000, LAT0 + dy / 1000))


def path_len(*nids: int) -> float:
    return float(sum(np.hypot(*(xy(a) - xy(b))) for a, b in itertools.pairwise(nids)))


def edge_table(net: Network) -> dict[tuple[int, int, int], tuple[float, float]]:
    """(u id, v id, way id) -> (length_m, time_s)."""
    ids = net.node_id
    return {(int(ids[u]), int(ids[v]), int(w)): (float(ln), float(t)) for u, v, w, ln, t in
            zip(net.edge_u, net.edge_v, net.edge_attrs["osmid"], net.edge_length_m, net.edge_time_s,
                 strict=True)}


def both(u: int, v: int, w: int, length: float, t: float) -> dict:
    return {(u, v, w): (length, t), (v, u, w): (length, t)}


# --------------------------------------------------------------------------------------------
# Hand-made OSM file: exact edges, directions and times
# --------------------------------------------------------------------------------------------


def test_toy_walk_edges_directions_times(toy_osm):
    net = network_from_osm(toy_osm, mode="walk", metric_crs=CRS, walk=WALK, delivery=DELIV)
    loop = path_len(3, 8, 9, 3)
    expected = {
        **both(1, 2, 100, path_len(1, 2), path_len(1, 2)), **both(2, 3, 100, path_len(2, 3), path_len(2, 3)),
        **both(2, 4, 101, path_len(2, 4), path_len(2, 4)),  # one-way street: both ways on foot
        **both(4, 3, 102, path_len(4, 5, 3), path_len(4, 5, 3)),  # node 5 is interior: not a graph node
        **both(1, 4, 103, path_len(1, 4), path_len(1, 4)),  # footway
        **both(3, 7, 105, path_len(3, 7), path_len(3, 7)),
        (3, 3, 140): (loop, loop),  # self-loop: both directions share the key, checked below
        **{k: (path_len(k[0], k[1]), path_len(k[0], k[1])) for a in range(30, 35)
           for k in ((a, a + 1, 90 + a), (a + 1, a, 90 + a))},
        **both(40, 41, 130, path_len(40, 41), path_len(40, 41)),
        **both(40, 42, 131, path_len(40, 42), path_len(40, 42)),
        **both(40, 43, 134, path_len(40, 43), path_len(40, 43)),
        **both(40, 44, 135, path_len(40, 44), path_len(40, 44)),
    }
    got = edge_table(net)
    assert got.keys() == expected.keys()
    for k, (ln, t) in expected.items():
        assert got[k][0] == pytest.approx(ln, abs=1e-6), k
        assert got[k][1] == pytest.approx(t, abs=1e-6), k  # 1.0 m/s
    assert net.n_edges == 32 and net.n_nodes == 16  # self-loop gives 2 rows, one key
    assert set(net.node_id.tolist()) == {1, 2, 3, 4, 7, *range(30, 36), 40, 41, 42, 43, 44}
    # the one-way street keeps its tag for walkers
    ow = net.edge_attrs.groupby("osmid")["oneway"].first()
    assert bool(ow[101]) and bool(ow[131]) and not bool(ow[100])
    assert net.report["excluded_ways"] == {"highway=motorway": 1, "access=private": 1, "foot=no": 1}
    assert net.report["n_self_loops"] == 1


def test_toy_delivery_oneway_speeds(toy_osm):
    net = network_from_osm(toy_osm, mode="delivery", metric_crs=CRS, walk=WALK, delivery=DELIV)
    res, tert, trunk = 15 / 3.6, 18 / 3.6, 25 / 3.6
    svc = 10 / 3.6
    got = edge_table(net)
    expected_keys = {
        (1, 2, 100), (2, 1, 100), (2, 3, 100), (3, 2, 100), (2, 4, 101),  # one-way: only 2->4
        (4, 3, 102), (3, 4, 102), (3, 7, 105), (7, 3, 105), (3, 3, 140),
        *[(a, a + 1, 90 + a) for a in range(30, 35)], *[(a + 1, a, 90 + a) for a in range(30, 35)],
        (40, 41, 130), (41, 40, 130), (42, 40, 131),  # oneway=-1: only against the drawing direction
        (40, 43, 134), (43, 40, 134), (40, 44, 135), (44, 40, 135), (41, 43, 133), (43, 41, 133),
    }
    assert got.keys() == expected_keys
    assert net.n_edges == 30
    assert got[(2, 4, 101)][1] == pytest.approx(path_len(2, 4) / res)
    assert got[(3, 7, 105)][1] == pytest.approx(path_len(3, 7) / (10 / 3.6))  # maxspeed=10 caps 15 km/h
    assert got[(42, 40, 131)][1] == pytest.approx(path_len(40, 42) / tert)
    assert got[(41, 43, 133)][1] == pytest.approx(path_len(41, 43) / trunk)  # trunk foot=no: bikes ok
    assert got[(3, 3, 140)][1] == pytest.approx(path_len(3, 8, 9, 3) / svc)
    assert got[(31, 30, 120)][1] == pytest.approx(path_len(30, 31) / (10 / 3.6))  # track
    assert net.report["excluded_ways"] == {"highway=footway": 1, "highway=motorway": 1, "access=private": 1}
    # geometry of the one-way reversed edge runs from 42 to 40
    i = int(np.flatnonzero(net.edge_attrs["osmid"].to_numpy() == 131)[0])
    assert net.edge_reverse[i] == -1
    assert np.allclose(shapely.get_coordinates(net.edge_geometry[i]), [xy(42), xy(40)])
    # respect_oneway=False: every road two-way
    net2 = network_from_osm(toy_osm, mode="delivery", metric_crs=CRS, walk=WALK,
                            delivery=dataclasses.replace(DELIV, respect_oneway=False))
    assert net2.n_edges == 32 and (net2.edge_reverse >= 0).all()


@pytest.mark.parametrize("mode", ["walk", "delivery"])
def test_toy_components_kept_and_fragment_reported(toy_osm, mode):
    net = network_from_osm(toy_osm, mode=mode, metric_crs=CRS, walk=WALK, delivery=DELIV,
                           min_component_nodes=5)
    r = net.report
    # west bank (5 nodes), island (6), east bank (5): all kept; the 2-node fragment dropped
    assert r["n_components_kept"] == 3 and r["n_fragments_dropped"] == 1
    assert r["dropped_length_m"] == pytest.approx(path_len(20, 21))
    assert r["n_nodes"] == net.n_nodes == 16 and r["n_edges"] == net.n_edges
    comp = dict(zip(net.node_id.tolist(), net.node_component.tolist(), strict=True))
    assert comp[30] == 0  # largest (island, 6 nodes) is component 0
    assert len({comp[1], comp[30], comp[40]}) == 3
    assert r["total_length_m"] == pytest.approx(
        r["dropped_length_m"] + net.edge_length_m[net.physical_edges()].sum())
    # across the river: unreachable, but both banks routable
    d = dijkstra(net.csr("length"), indices=int(np.flatnonzero(net.node_id == 1)[0]))
    assert np.isinf(d[net.node_id == 40]).all() and np.isfinite(d[net.node_id == 7]).all()
    # min 1 keeps the fragment, min 6 keeps only the island
    assert network_from_osm(toy_osm, mode=mode, metric_crs=CRS, walk=WALK, delivery=DELIV,
                            min_component_nodes=1).report["n_components_kept"] == 4
    only = network_from_osm(toy_osm, mode=mode, metric_crs=CRS, walk=WALK, delivery=DELIV,
                            min_component_nodes=6)
    assert set(only.node_id.tolist()) == set(range(30, 36)) and only.report["n_fragments_dropped"] == 3


def test_toy_twins_point_at_each_other_with_reversed_geometry(toy_osm):
    net = network_from_osm(toy_osm, mode="delivery", metric_crs=CRS, walk=WALK, delivery=DELIV)
    rev = net.edge_reverse
    has = np.flatnonzero(rev >= 0)
    assert (rev[rev[has]] == has).all()
    assert (net.edge_u[has] == net.edge_v[rev[has]]).all()
    for i in has:
        a = shapely.get_coordinates(net.edge_geometry[i])
        b = shapely.get_coordinates(net.edge_geometry[rev[i]])
        assert np.allclose(a, b[::-1])
    starts = shapely.get_coordinates(shapely.get_point(net.edge_geometry, 0))
    ends = shapely.get_coordinates(shapely.get_point(net.edge_geometry, -1))
    assert np.allclose(starts, np.c_[net.node_x[net.edge_u], net.node_y[net.edge_u]])
    assert np.allclose(ends, np.c_[net.node_x[net.edge_v], net.node_y[net.edge_v]])
    assert np.allclose(shapely.length(net.edge_geometry), net.edge_length_m)


def test_bz2_and_clip(toy_osm, tmp_path):
    bz = tmp_path / "toy.osm.bz2"
    bz.write_bytes(bz2.compress(toy_osm.read_bytes()))
    a = network_from_osm(toy_osm, mode="walk", metric_crs=CRS, walk=WALK, delivery=DELIV)
    b = network_from_osm(bz, mode="walk", metric_crs=CRS, walk=WALK, delivery=DELIV)
    assert edge_table(a).keys() == edge_table(b).keys()
    west = shapely.box(LON0 - 0.0005, LAT0 - 0.002, LON0 + 0.0035, LAT0 + 0.002)
    c = network_from_osm(toy_osm, mode="walk", metric_crs=CRS, walk=WALK, delivery=DELIV,
                         clip_polygon_wgs84=west)
    assert set(c.node_id.tolist()) == {1, 2, 3, 4, 7}


def test_zero_length_and_duplicate_refs(tmp_path):
    nodes = {1: (0, 0), 2: (1, 0), 3: (1, 0), 4: (2, 0), 5: (3, 0), 6: (3, 1)}
    ways = {1: ([1, 2, 2, 3, 4], {"highway": "residential"}), 2: ([4, 5, 6], {"highway": "residential"}),
            3: ([3, 6], {"highway": "residential"})}
    p = tmp_path / "z.osm"
    p.write_text(osm_xml(nodes, ways), encoding="utf-8")
    net = network_from_osm(p, mode="walk", metric_crs=CRS, walk=WALK, delivery=DELIV, min_component_nodes=1)
    got = edge_table(net)
    # 2->2 (duplicate ref) is dropped; 2->3 (two nodes at one spot) becomes a 1 cm edge
    assert (2, 2, 1) not in got and got[(2, 3, 1)][0] == pytest.approx(0.01)
    assert net.report["n_degenerate_pieces_dropped"] == 1 and net.report["n_zero_length_pieces"] == 1
    assert (net.edge_time_s > 0).all()


def test_missing_file_and_bad_mode(tmp_path):
    with pytest.raises(NetworkInputError, match=r"nope\.osm\.pbf: OSM file not found.*network\.path"):
        read_osm_ways(tmp_path / "nope.osm.pbf")
    with pytest.raises(ValueError, match="mode='bike'"):
        network_from_osm(tmp_path / "x.osm", mode="bike", metric_crs=CRS, walk=WALK, delivery=DELIV)
    with pytest.raises(InputError,
                       match=r"network metric_crs: CRS 'EPSG:4326' is geographic.*region\.metric_crs"):
        network_from_osm(tmp_path / "x.osm", mode="walk", metric_crs="EPSG:4326", walk=WALK, delivery=DELIV)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 5),
       oneway=st.lists(st.sampled_from(["", "yes", "-1", "no"]), min_size=40, max_size=40),
       seed=st.integers(0, 10_000))
def test_property_grid_invariants_and_order_independence(tmp_path_factory, n, oneway, seed):
    """On an n x n grid of random one-way streets: every street kept exactly once per allowed
    direction, twins consistent, and the result does not depend on the order of ways in the file."""
    nodes = {r * n + c + 1: (c, r) for r in range(n) for c in range(n)}
    ways: dict[int, tuple[list[int], dict[str, str]]] = {}
    k = 0
    for r in range(n):
        for c in range(n):
            i = r * n + c + 1
            for j in ((i + 1) if c < n - 1 else None, (i + n) if r < n - 1 else None):
                if j is not None:
                    tags = {"highway": "residential"}
                    if oneway[k % 40]:
                        tags["oneway"] = oneway[k % 40]
                    ways[1000 + k] = ([i, j], tags)
                    k += 1
    d = tmp_path_factory.mktemp("grid")
    rng = np.random.default_rng(seed)
    order = rng.permutation(sorted(ways))
    p1, p2 = d / "a.osm", d / "b.osm"
    p1.write_text(osm_xml(nodes, ways))
    p2.write_text(osm_xml(nodes, {int(w): ways[int(w)] for w in order}))
    nets = [network_from_osm(p, mode="delivery", metric_crs=CRS, walk=WALK, delivery=DELIV,
                             min_component_nodes=1)
            for p in (p1, p2)]
    n_oneway = sum(t.get("oneway") in ("yes", "-1") for _, t in ways.values())
    assert nets[0].n_edges == 2 * len(ways) - n_oneway
    t0, t1 = edge_table(nets[0]), edge_table(nets[1])
    assert t0.keys() == t1.keys()
    assert all(np.allclose(t0[k], t1[k], rtol=1e-12) for k in t0)
    assert nets[0].report["n_components_kept"] == 1
    rev = nets[0].edge_reverse
    assert ((rev < 0) == np.isin(nets[0].edge_attrs["osmid"],
                                 [w for w, (_, t) in ways.items() if t.get("oneway") in ("yes", "-1")])).all()


# --------------------------------------------------------------------------------------------
# Real OSM extracts
# --------------------------------------------------------------------------------------------


def test_helsinki_pbf(helsinki_pbf):
    crs = "EPSG:32635"
    t0 = time.perf_counter()
    walk = network_from_osm(helsinki_pbf, mode="walk", metric_crs=crs, walk=WALK, delivery=DELIV)
    deliv = network_from_osm(helsinki_pbf, mode="delivery", metric_crs=crs, walk=WALK, delivery=DELIV)
    assert time.perf_counter() - t0 < 10
    walk.validate(), deliv.validate()
    # footways make the walk network larger than the delivery network
    assert walk.n_edges > 2 * deliv.n_edges > 2000
    assert 60_000 < walk.report["kept_length_m"] < 200_000
    assert walk.report["excluded_ways"].get("foot=no", 0) > 0
    assert deliv.report["excluded_ways"]["highway=footway"] > 500
    assert (deliv.edge_reverse < 0).sum() > 100  # one-way streets in central Helsinki
    assert (walk.edge_reverse >= 0).all()
    for net in (walk, deliv):
        assert net.report["n_components_kept"] >= 1
        sizes = np.bincount(net.node_component)
        assert sizes.min() >= 5 and sizes[0] == sizes.max()
        assert net.report["dropped_length_m"] < 0.05 * net.report["total_length_m"]
        assert np.allclose(shapely.length(net.edge_geometry), net.edge_length_m)
    # walking 1 m/s: time equals length
    assert np.allclose(walk.edge_time_s, walk.edge_length_m)
    v = deliv.edge_length_m / deliv.edge_time_s * 3.6
    assert v.min() >= 3 and v.max() <= 25 + 1e-9


def test_comoros_pbf_builds_fast():
    p = shared_file("comoros", "osm", "comores-latest-2021-04-08.osm.pbf")
    t0 = time.perf_counter()
    net = network_from_osm(p, mode="delivery", metric_crs="EPSG:32738", walk=WALK, delivery=DELIV)
    assert time.perf_counter() - t0 < 30
    assert net.n_edges > 10_000 and net.report["n_components_kept"] >= 3  # the islands are all kept
    assert net.report["kept_length_m"] > 1_000_000


# --------------------------------------------------------------------------------------------
# Road-line layers
# --------------------------------------------------------------------------------------------


def _gbk_roads(tmp_path: Path, classes: list[str], *, prj: bool = True) -> Path:
    x0, y0 = 400_000.0, 3_390_000.0
    lines = [
        shapely.LineString([(x0, y0), (x0 + 100, y0), (x0 + 200, y0)]),  # 主干路 through the crossing vertex
        shapely.LineString([(x0 + 100, y0 - 100), (x0 + 100.001, y0), (x0 + 100, y0 + 100)]),  # crosses at an
        # interior vertex within 1 cm of the other's interior vertex
        shapely.LineString([(x0 + 200, y0), (x0 + 200, y0 + 100)]),  # shares an endpoint
        shapely.LineString([(x0 + 200, y0 + 100), (x0 + 100, y0 + 100)]),
        shapely.LineString([(x0, y0), (x0 - 100, y0)]),
    ]
    gdf = gpd.GeoDataFrame({"等级": classes, "名称": ["人民路", "建设路", "小巷", "步道", "高速"],
                            "单向": ["", "", "是", "", ""], "速度": [30, 0, 0, 0, 0]},
                           geometry=lines, crs="EPSG:32648")
    p = tmp_path / "roads.shp"
    gdf.to_file(p, encoding="gbk")
    p.with_suffix(".cpg").unlink()
    if not prj:
        p.with_suffix(".prj").unlink()
    return p


def test_road_layer_gbk_chinese_classes(tmp_path):
    p = _gbk_roads(tmp_path, ["主干路", "支路", "街巷", "步行道", "高速公路"])
    kw = {"metric_crs": CRS, "walk": WALK, "delivery": DELIV, "class_field": "等级", "name_field": "名称",
              "oneway_field": "单向", "speed_field": "速度", "min_component_nodes": 1}
    walk = network_from_road_layer(p, mode="walk", **kw)
    deliv = network_from_road_layer(p, mode="delivery", **kw)
    # walk: 高速公路 excluded; lines 1 and 2 split at their shared interior vertex
    # (1 mm apart -> same 1 cm cell)
    # pieces: L1 2 pieces, L2 2 pieces, L3 1, L4 1 = 6 pieces, all two-way on foot
    assert walk.n_edges == 12 and walk.n_nodes == 6
    assert walk.report["excluded_ways"] == {"highway=motorway": 1}
    assert walk.report["n_components_kept"] == 1
    assert set(walk.edge_attrs["name"]) == {"人民路", "建设路", "小巷", "步道"}
    assert set(walk.edge_attrs["highway"]) == {"primary", "tertiary", "residential", "footway"}
    # delivery: footway excluded, 街巷 one-way (是), speed field 30 km/h on 主干路
    assert deliv.n_edges == 2 * 2 + 2 * 2 + 1
    a = deliv.edge_attrs
    assert (deliv.edge_reverse[a["highway"].to_numpy() == "residential"] == -1).all()
    main = a["highway"].to_numpy() == "primary"
    assert np.allclose(deliv.edge_time_s[main], deliv.edge_length_m[main] / (30 / 3.6))
    sec = a["highway"].to_numpy() == "tertiary"
    assert np.allclose(deliv.edge_time_s[sec], deliv.edge_length_m[sec] / (18 / 3.6))
    assert deliv.edge_length_m[main].sum() == pytest.approx(2 * 200.0, abs=0.02)


def test_road_layer_errors_collected(tmp_path):
    p = _gbk_roads(tmp_path, ["主干路", "大路", "街巷", "小路", "小路"], prj=False)
    with pytest.raises(NetworkInputError, match=r"(?s)roads\.shp: 3 problem\(s\).*no CRS.*network\.crs.*"
                                                r"network\.speed_field = 'speed'.*unknown road classes.*"
                                                r"'小路' \(2 lines\).*'大路' \(1 lines\).*class_map"):
        network_from_road_layer(p, mode="walk", metric_crs=CRS, walk=WALK, delivery=DELIV, class_field="等级",
                                speed_field="speed", name_field="名称")
    # the fixes work: crs override and an extra class map
    net = network_from_road_layer(p, mode="walk", metric_crs=CRS, walk=WALK, delivery=DELIV,
                                  class_field="等级", name_field="名称", crs="EPSG:32648",
                                  class_map={"大路": "secondary", "小路": "service"}, min_component_nodes=1)
    assert net.n_edges == 2 * 7 and set(net.edge_attrs["highway"]) == {"primary", "secondary", "residential",
                                                                       "service"}


def test_chinese_class_table_maps_to_known_highways():
    from coverage.network import _OSM_HIGHWAYS

    for k in ("高速公路", "国道", "省道", "县道", "乡道", "村道", "城市快速路", "主干路", "次干路",
              "支路", "街巷", "步行道", "人行道"):
        assert CHINESE_ROAD_CLASSES[k] in _OSM_HIGHWAYS


def test_chengdu_road_layer():
    p = shared_file("chengdu-central", "roads", "chengdu_central_edges_wgs84.geojson")
    net = network_from_road_layer(p, mode="delivery", metric_crs="EPSG:32648", walk=WALK, delivery=DELIV,
                                  class_field="highway", name_field="name")
    net.validate()
    assert net.report["n_ways_read"] == 852 and net.report["n_missing_class"] == 2
    # PROVENANCE: 130.7 km of directed edge length
    assert net.report["total_length_m"] == pytest.approx(130_700, rel=0.1)
    assert {"primary", "secondary", "tertiary"} <= set(net.edge_attrs["highway"])
    assert net.report["n_components_kept"] >= 1
    assert (net.edge_attrs["name"] != "").mean() > 0.5
    # SUMO junction gaps: by coordinates the lines fall apart into hundreds of fragments, and the
    # builder says so; joined through the from/to junction ids they form one network
    assert net.report["n_fragments_dropped"] > 100
    joined = network_from_road_layer(p, mode="delivery", metric_crs="EPSG:32648", walk=WALK, delivery=DELIV,
                                     class_field="highway", endpoint_fields=("from_node", "to_node"))
    assert joined.report["n_components_kept"] == 1 and joined.report["n_fragments_dropped"] == 0
    assert joined.report["total_length_m"] == pytest.approx(130_700, rel=0.1)


def test_road_layer_endpoint_fields_join_gaps(tmp_path):
    lines = [shapely.LineString([(0, 0), (100, 0)]), shapely.LineString([(104, 3), (200, 0)]),
             shapely.LineString([(102, -3), (102, -100)])]
    gdf = gpd.GeoDataFrame({"highway": ["primary"] * 3, "fnode": ["a", "J1", "J1"],
                            "tnode": ["J1", "b", "c"]},
                           geometry=lines, crs=CRS)
    p = tmp_path / "gaps.gpkg"
    gdf.to_file(p)
    kw = {"mode": "walk", "metric_crs": CRS, "walk": WALK, "delivery": DELIV, "class_field": "highway",
          "min_component_nodes": 1}
    assert network_from_road_layer(p, **kw).report["n_components_kept"] == 3
    net = network_from_road_layer(p, endpoint_fields=("fnode", "tnode"), **kw)
    assert net.report["n_components_kept"] == 1 and net.n_nodes == 4
    j = np.flatnonzero(np.isclose(net.node_x, 102) & np.isclose(net.node_y, 0))
    assert j.size == 1  # J1 at the mean of its three line ends
    assert np.allclose(shapely.length(net.edge_geometry), net.edge_length_m)
    with pytest.raises(NetworkInputError, match=r"endpoint_fields\[1\] = 'to'"):
        network_from_road_layer(p, endpoint_fields=("fnode", "to"), **kw)


# --------------------------------------------------------------------------------------------
# osmnx fetch (mocked: no internet here), build_networks, export
# --------------------------------------------------------------------------------------------


def test_fetch_osmnx_mocked(monkeypatch, toy_osm, tmp_path):
    import osmnx as ox

    calls = []

    def fake_place(place, **kw):
        calls.append((place, kw))
        # what graph_from_place returns under the settings fetch_osmnx_network sets (all_oneway)
        return ox.graph_from_xml(toy_osm, simplify=False, retain_all=True)

    monkeypatch.setattr(ox, "graph_from_place", fake_place)
    out = fetch_osmnx_network("示范县, 中国", tmp_path / "dl" / "net.osm")
    assert out.is_file() and calls[0][0] == "示范县, 中国" and calls[0][1]["simplify"] is False
    assert ox.settings.all_oneway is False  # settings restored
    net = network_from_osm(out, mode="walk", metric_crs=CRS, walk=WALK, delivery=DELIV)
    ref = network_from_osm(toy_osm, mode="walk", metric_crs=CRS, walk=WALK, delivery=DELIV)
    # osmnx saves the cul-de-sac loop as two ways, so its middle vertex becomes a node
    assert set(ref.node_id.tolist()) <= set(net.node_id.tolist()) and net.n_nodes == ref.n_nodes + 1
    assert net.report["kept_length_m"] == pytest.approx(ref.report["kept_length_m"], rel=1e-6)
    # one-way directions survive the osmnx round trip (oneway=-1 is not reversed twice)
    d = edge_table(network_from_osm(out, mode="delivery", metric_crs=CRS, walk=WALK, delivery=DELIV))
    assert (42, 40, 131) in d and (40, 42, 131) not in d and (2, 4, 101) in d and (4, 2, 101) not in d
    assert (1, 4, 103) not in d and (41, 43, 133) in d  # footway excluded, trunk tags kept

    def offline(place, **kw):
        raise ConnectionError("no route to host")

    monkeypatch.setattr(ox, "graph_from_place", offline)
    with pytest.raises(RuntimeError, match=r"osmnx download of '示范县' failed \(ConnectionError.*osm_file"):
        fetch_osmnx_network("示范县", tmp_path / "x.osm")
    assert not (tmp_path / "x.osm").exists()


def _cfg(tmp_path: Path, network: NetworkConfig) -> Config:
    return Config(path=tmp_path / "coverage.toml", region=RegionConfig(name="t"),
                  units=UnitsConfig(path=tmp_path / "units.geojson"), network=network,
                  population=PopulationConfig(), facilities=(), services={})


def test_build_networks_reads_once_and_clips(monkeypatch, toy_osm, tmp_path):
    import coverage.network as nw

    reads = []
    real = nw.read_osm_ways
    monkeypatch.setattr(nw, "read_osm_ways", lambda p: reads.append(p) or real(p))
    cfg = _cfg(tmp_path, NetworkConfig(source="osm_file", path=toy_osm, min_component_nodes=5))
    nets = build_networks(cfg, metric_crs=CRS)
    assert len(reads) == 1 and set(nets) == {"walk", "delivery"}
    assert nets["walk"].n_edges == 32 and nets["delivery"].n_edges == 30
    # a study area around the west bank: halo 3 km reaches the east bank (~0.5 km away), 100 m does not
    west = shapely.box(LON0, LAT0, LON0 + 0.002, LAT0 + 0.001)
    assert 40 in build_networks(cfg, metric_crs=CRS, study_area_wgs84=west)["walk"].node_id
    small = build_networks(cfg, metric_crs=CRS, study_area_wgs84=west, halo_m=100)
    assert set(small["walk"].node_id.tolist()) == {1, 2, 3, 4, 7}


def test_build_networks_osmnx_source_uses_cache(monkeypatch, toy_osm, tmp_path):
    import coverage.network as nw

    def fake_fetch(place, out):
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_bytes(toy_osm.read_bytes())
        return Path(out)

    monkeypatch.setattr(nw, "fetch_osmnx_network", fake_fetch)
    cfg = _cfg(tmp_path, NetworkConfig(source="osmnx", place="Demo County"))
    nets = build_networks(cfg, metric_crs=CRS)
    assert (tmp_path / "cache" / "osmnx_Demo_County.osm").is_file() and nets["walk"].n_edges == 32
    monkeypatch.setattr(nw, "fetch_osmnx_network", lambda *a: pytest.fail("cache not reused"))
    assert build_networks(cfg, metric_crs=CRS)["delivery"].n_edges == 30


def test_build_networks_road_layer(tmp_path):
    p = _gbk_roads(tmp_path, ["主干路", "支路", "街巷", "步行道", "高速公路"])
    cfg = _cfg(tmp_path, NetworkConfig(source="road_layer", path=p, class_field="等级", name_field="名称",
                                       oneway_field="单向", min_component_nodes=1))
    nets = build_networks(cfg, metric_crs=CRS)
    assert nets["walk"].n_edges == 12 and nets["delivery"].n_edges == 9


def test_export_roundtrip(toy_osm, tmp_path):
    nets = {m: network_from_osm(toy_osm, mode=m, metric_crs=CRS, walk=WALK, delivery=DELIV)
            for m in ("walk", "delivery")}
    out = tmp_path / "build" / "network.gpkg"
    export_network_gpkg(nets, out)
    assert sorted(name for name, _ in pyogrio.list_layers(out)) == ["delivery_edges", "delivery_nodes",
                                                                     "walk_edges", "walk_nodes"]
    assert [p.name for p in out.parent.iterdir()] == ["network.gpkg"]  # no temp file left
    e = gpd.read_file(out, layer="delivery_edges")
    assert list(e.columns) == ["u", "v", "osmid", "highway", "name", "oneway", "length_m", "travel_time_s",
                               "component", "geometry"]
    assert e.crs.to_epsg() == 32648 and len(e) == 30
    assert np.allclose(e["length_m"], nets["delivery"].edge_length_m)
    assert np.allclose(e.geometry.length, e["length_m"])
    assert "东街" in set(e["name"])
    assert {(int(a), int(b)) for a, b in zip(e["u"], e["v"], strict=True)} >= {(2, 4), (42, 40)}
    assert (42, 40) in {(int(a), int(b)) for a, b in zip(e["u"], e["v"], strict=True)} and \
        (40, 42) not in {(int(a), int(b)) for a, b in zip(e["u"], e["v"], strict=True)}
    nodes = gpd.read_file(out, layer="walk_nodes")
    assert len(nodes) == 16 and set(nodes["component"]) == {0, 1, 2}


@pytest.mark.parametrize(("lon", "lat", "epsg"), [(104.06, 30.66, "EPSG:32648"), (43.3, -11.7, "EPSG:32738"),
                                                  (9.55, 47.15, "EPSG:32632"), (180.0, 0.0, "EPSG:32660")])
def test_estimate_utm_crs(lon, lat, epsg):
    assert estimate_utm_crs(shapely.Point(lon, lat)) == epsg


def test_build_networks_missing_path(tmp_path):
    cfg = _cfg(tmp_path, NetworkConfig(source="road_layer", path=None))
    with pytest.raises(NetworkInputError, match=r"coverage\.toml: network\.path is missing.*road_layer"):
        build_networks(cfg, metric_crs=CRS)


# --------------------------------------------------------------------------------------------
# Demo county (generated by coverage.demo.build_demo): the river forces the bridge
# --------------------------------------------------------------------------------------------


def river_detour(osm: Path) -> tuple[float, float]:
    """(min network/straight ratio, max ratio) over node pairs on opposite banks within 400 m of the
    midpoint of the longest waterway=river line in ``osm`` (walk network). Skips without a river."""
    import osmium

    rivers = []
    fp = osmium.FileProcessor(str(osm)).with_locations().with_filter(osmium.filter.KeyFilter("waterway"))
    for w in fp:
        if w.is_way() and w.tags.get("waterway") in ("river", "stream", "canal"):
            rivers.append([(n.lon, n.lat) for n in w.nodes])
    if not rivers:
        pytest.skip(f"{osm} has no waterway=river line")
    river_ll = max(rivers, key=len)
    crs = estimate_utm_crs(shapely.MultiPoint(river_ll))
    walk = network_from_osm(osm, mode="walk", metric_crs=crs, walk=WALK, delivery=DELIV,
                            min_component_nodes=1)
    tr = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    river = shapely.LineString(np.c_[tr.transform(*np.array(river_ll).T)])
    mid = river.interpolate(0.5, normalized=True)
    a, b = river.interpolate(0.45, normalized=True), river.interpolate(0.55, normalized=True)
    side = np.sign((b.x - a.x) * (walk.node_y - a.y) - (b.y - a.y) * (walk.node_x - a.x))
    near = np.hypot(walk.node_x - mid.x, walk.node_y - mid.y) < 400
    left, right = np.flatnonzero((side > 0) & near), np.flatnonzero((side < 0) & near)
    assert left.size and right.size, "no roads near the river on both banks"
    d = dijkstra(walk.csr("length"), indices=left)[:, right]
    straight = np.hypot(walk.node_x[left][:, None] - walk.node_x[right][None, :],
                        walk.node_y[left][:, None] - walk.node_y[right][None, :])
    ratio = d / straight
    return float(ratio.min()), float(ratio.max())


def test_river_detour_helper_on_a_toy_with_one_bridge(tmp_path):
    # two banks of a 5 x 5 street grid (100 m) on either side of a north-south river at x = 4.5,
    # one bridge at the south end
    nodes, ways, k = {}, {}, 0
    for bank, x0 in ((0, 0), (1, 5)):
        for r in range(5):
            for c in range(4):
                nodes[1000 * bank + 10 * r + c] = (x0 + c, r)
    for bank in (0, 1):
        for r in range(5):
            for c in range(4):
                i = 1000 * bank + 10 * r + c
                if c < 3:
                    ways[k] = ([i, i + 1], {"highway": "residential"})
                    k += 1
                if r < 4:
                    ways[k] = ([i, i + 10], {"highway": "residential"})
                    k += 1
    nodes[9001], nodes[9002] = (4.5, -1), (4.5, 5)
    ways[900] = ([9001, 9002], {"waterway": "river"})
    p = tmp_path / "river.osm"
    p.write_text(osm_xml(nodes, ways))
    with pytest.raises(AssertionError, match="ratio"):  # no bridge: banks unreachable (inf)
        lo, hi = river_detour(p)
        assert np.isfinite(hi), f"ratio {hi}"
    ways[901] = ([3, 1000], {"highway": "residential", "bridge": "yes"})
    p.write_text(osm_xml(nodes, ways))
    lo, hi = river_detour(p)
    assert np.isfinite(hi) and hi > 2 and lo >= 1 - 1e-9


def test_demo_network_river_forces_bridge(tmp_path):
    demo = pytest.importorskip("coverage.demo", reason="coverage.demo (build_demo) not present yet")
    demo.build_demo(tmp_path)
    osm = next(iter(tmp_path.rglob("roads.osm")), None)
    if osm is None:
        pytest.skip("build_demo wrote no roads.osm")
    ways = read_osm_ways(osm)
    crs = estimate_utm_crs(shapely.MultiPoint(np.c_[ways.lon, ways.lat]))
    for mode in ("walk", "delivery"):
        net = network_from_osm(osm, mode=mode, metric_crs=crs, walk=WALK, delivery=DELIV)
        net.validate()
        assert net.n_edges > 100
    _lo, hi = river_detour(osm)
    assert np.isfinite(hi), "the banks are not connected: the demo bridge is missing from the network"
    assert hi > 2  # some neighbours across the river must walk to the bridge and back


# --------------------------------------------------------------------------------------------
# Unusable network inputs: one NetworkInputError naming the file, what was found and the fix
# --------------------------------------------------------------------------------------------

_LINE = {1: (0, 0), 2: (1, 0), 3: (2, 0), 4: (3, 0), 5: (4, 0), 6: (5, 0)}


def _osm(tmp_path: Path, name: str, ways: dict[int, tuple[list[int], dict[str, str]]]) -> Path:
    p = tmp_path / name
    p.write_text(osm_xml(_LINE, ways), encoding="utf-8")
    return p


def test_empty_and_roadless_osm_files(tmp_path):
    empty = tmp_path / "empty.osm.pbf"
    empty.write_bytes(b"")
    with pytest.raises(NetworkInputError, match=r"empty\.osm\.pbf: the OSM file is empty \(0 bytes\)\. Fix"):
        read_osm_ways(empty)
    roadless = _osm(tmp_path, "river.osm", {9: ([1, 2, 3], {"waterway": "river"})})
    with pytest.raises(NetworkInputError, match=r"river\.osm: no highway=\* way .*no network can be built\. "
                                                r"Fix: .*network\.path"):
        network_from_osm(roadless, mode="walk", metric_crs=CRS, walk=WALK, delivery=DELIV)
    cfg = _cfg(tmp_path, NetworkConfig(source="osm_file", path=roadless))
    with pytest.raises(NetworkInputError, match=r"river\.osm: no highway=\* way"):
        build_networks(cfg, metric_crs=CRS)


def test_motorway_only_extract_is_not_walkable(tmp_path):
    ways = {i: ([i, i + 1], {"highway": "motorway"}) for i in range(1, 5)}
    ways[5] = ([5, 6], {"highway": "trunk", "foot": "no"})
    p = _osm(tmp_path, "motorways.osm", ways)
    with pytest.raises(NetworkInputError,
                       match=r"motorways\.osm: 5 highway ways \(highway=motorway 4, highway=trunk 1\), "
                             r"all excluded for walk \(highway=motorway 4, foot=no 1\): nothing walkable, "
                             r"no walk network\. Fix: use an extract with local streets"):
        network_from_osm(p, mode="walk", metric_crs=CRS, walk=WALK, delivery=DELIV)
    # build_networks checks both modes before building either: one error listing both
    cfg = _cfg(tmp_path, NetworkConfig(source="osm_file", path=p, min_component_nodes=1))
    with pytest.raises(NetworkInputError, match=r"nothing walkable") as exc:
        build_networks(cfg, metric_crs=CRS)
    assert "excluded for delivery" not in str(exc.value)  # the trunk is fine for e-bikes


def test_footway_only_extract_is_not_drivable(tmp_path):
    ways = {1: ([1, 2, 3], {"highway": "footway"}), 2: ([3, 4], {"highway": "steps"}),
            3: ([4, 5, 6], {"highway": "path"})}
    p = _osm(tmp_path, "paths.osm", ways)
    cfg = _cfg(tmp_path, NetworkConfig(source="osm_file", path=p, min_component_nodes=1))
    with pytest.raises(NetworkInputError,
                       match=r"paths\.osm: 3 highway ways \(highway=footway 1, highway=steps 1, highway=path "
                             r"1\), all excluded for delivery .*nothing drivable for delivery e-bikes, no "
                             r"delivery network\. Fix: .*bicycle=yes"):
        build_networks(cfg, metric_crs=CRS)
    assert network_from_osm(p, mode="walk", metric_crs=CRS, walk=WALK, delivery=DELIV,
                            min_component_nodes=1).n_edges == 2 * 3  # three pieces, both ways


def test_only_fragments_left_names_min_component_nodes(tmp_path):
    p = _osm(tmp_path, "bits.osm", {1: ([1, 2], {"highway": "residential"}),
                                     2: ([4, 5], {"highway": "residential"})})
    with pytest.raises(NetworkInputError,
                       match=r"bits\.osm: the walk network is empty: its 2 usable ways form 2 "
                             r"component\(s\), the largest with 2 node\(s\), all smaller than "
                             r"network\.min_component_nodes = 5\. Fix: lower"):
        network_from_osm(p, mode="walk", metric_crs=CRS, walk=WALK, delivery=DELIV)


def test_extract_of_another_region(toy_osm, tmp_path):
    cfg = _cfg(tmp_path, NetworkConfig(source="osm_file", path=toy_osm))
    far = shapely.box(43.2, -11.9, 43.5, -11.6)  # Ngazidja, not Chengdu
    with pytest.raises(NetworkInputError,
                       match=r"toy\.osm: none of its 19 highway ways lies within 3000 m of the study "
                             r"area: the ways span lon 104\.0000\.\.104\.0125.*study area .*lon 43\.1.*"
                             r"Fix: give the OSM extract of this region"):
        build_networks(cfg, metric_crs=CRS, study_area_wgs84=far)


def test_road_layer_without_lines(tmp_path):
    x0, y0 = 400_000.0, 3_390_000.0
    none = tmp_path / "none.gpkg"
    gpd.GeoDataFrame({"等级": []}, geometry=gpd.GeoSeries([], crs=CRS), crs=CRS).to_file(none)
    kw = {"metric_crs": CRS, "walk": WALK, "delivery": DELIV, "class_field": "等级"}
    with pytest.raises(NetworkInputError,
                       match=r"none\.gpkg: the road layer has no features \(0 lines\).*Fix"):
        network_from_road_layer(none, mode="walk", **kw)
    pts = tmp_path / "points.gpkg"
    gpd.GeoDataFrame({"等级": ["支路", "支路"]}, geometry=[shapely.Point(x0, y0), shapely.Point(x0 + 1, y0)],
                     crs=CRS).to_file(pts)
    with pytest.raises(NetworkInputError, match=r"(?s)points\.gpkg: 1 problem.*no line geometry among its 2 "
                                                r"features \(Point 2\): give a layer of road LINES"):
        network_from_road_layer(pts, mode="walk", **kw)
    motor = _gbk_roads(tmp_path, ["高速公路"] * 5)
    with pytest.raises(NetworkInputError, match=r"roads\.shp: 5 road lines .*\(highway=motorway 5\), "
                                                r"all excluded for walk \(highway=motorway 5\): nothing "
                                                r"walkable"):
        network_from_road_layer(motor, mode="walk", **kw)
