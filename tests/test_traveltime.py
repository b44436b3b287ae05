"""Travel-time engine: hand-computed grids, inclusive boundary, properties, networkx oracle."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from coverage import traveltime
from coverage.graph import Network
from coverage.services import covered
from coverage.traveltime import (
    ZERO_TIME_S,
    Snap,
    coverage_matrix,
    nearest_facility_times,
    snap_points,
)

REPO = Path(__file__).resolve().parents[1]


def make_net(xy, edges, *, speed_mps: float = 1.0, crs: str = "EPSG:3857") -> Network:
    """Network from node coordinates and ``(u, v, two_way)`` straight segments (time = length / speed)."""
    xy = np.asarray(xy, dtype=float)
    eu, ev, rev = [], [], []
    for u, v, two_way in edges:
        i = len(eu)
        eu.append(u), ev.append(v), rev.append(i + 1 if two_way else -1)
        if two_way:
            eu.append(v), ev.append(u), rev.append(i)
    eu, ev = np.array(eu, dtype=np.int32), np.array(ev, dtype=np.int32)
    geom = shapely.linestrings(np.stack([xy[eu], xy[ev]], axis=1))
    length = shapely.length(geom)
    return Network(mode="walk", crs=crs, node_id=np.arange(len(xy), dtype=np.int64), node_x=xy[:, 0],
                   node_y=xy[:, 1], node_component=np.zeros(len(xy), dtype=np.int32), edge_u=eu, edge_v=ev,
                   edge_length_m=length, edge_time_s=length / speed_mps,
                   edge_reverse=np.array(rev, dtype=np.int64), edge_geometry=geom,
                   edge_attrs=pd.DataFrame({"highway": "footway", "name": "", "osmid": np.arange(len(eu)),
                                            "oneway": np.array(rev) < 0}))


def grid3():
    """3x3 two-way grid, 100 m spacing, 1 m/s; node r*3+c at (100c, 100r); plus an island D-E."""
    xy = [(100 * c, 100 * r) for r in range(3) for c in range(3)] + [(1000, 1000), (1100, 1000)]
    edges = []
    for r in range(3):
        for c in range(3):
            i = r * 3 + c
            if c < 2:
                edges.append((i, i + 1, True))
            if r < 2:
                edges.append((i, i + 3, True))
    edges.append((9, 10, True))
    return make_net(xy, edges)


def test_grid_mid_edge_source_exact_times():
    net = grid3()
    # facility 10 m below the middle of edge 0-1: access 10 s, 50 s to either end
    src = snap_points(net, np.array([[50.0, -10.0]]), max_snap_m=300)
    assert src.snapped[0] and src.dist_m[0] == pytest.approx(10) and src.frac[0] == pytest.approx(0.5)
    tg = snap_points(net, np.array([
        [100, 150],    # mid of 4-7: node4 (60+100=160) + 50 = 210
        [200, 130],    # 5-8 at 0.3: node5 = 260, + 30 = 290 (via 8: 360 + 70)
        [60, 0],       # same edge, 10 m right of the source position: 10 + 10 = 20
        [40, 5],       # same edge at 0.4, 5 m off: 10 + 10 + 5 = 25
        [1050, 1001],  # island: unreachable
        [5000, 5000],  # beyond the snap limit
    ]), max_snap_m=300)
    assert tg.snapped.tolist() == [True, True, True, True, True, False]
    assert tg.edge[5] == -1 and tg.dist_m[5] > 3000  # kept, with its distance
    r = nearest_facility_times(net, src, tg, access_speed_mps=1.0)
    np.testing.assert_allclose(r.node_time_s[:9], [60, 60, 160, 160, 160, 260, 260, 260, 360])
    assert np.isinf(r.node_time_s[9:]).all() and (r.node_source[9:] == -1).all()
    np.testing.assert_allclose(r.target_time_s[:4], [210, 290, 20, 25])
    assert np.isinf(r.target_time_s[4:]).all()
    assert r.target_source.tolist() == [0, 0, 0, 0, -1, -1]


def test_one_way_street_only_head_direction():
    # A(0,0) -> B(100,0) one-way; B <-> C(200,0) two-way; 1 m/s
    net = make_net([(0, 0), (100, 0), (200, 0)], [(0, 1, False), (1, 2, True)])
    src = snap_points(net, np.array([[50.0, 0.0]]), max_snap_m=10)
    tg = snap_points(net, np.array([[20.0, 0.0], [80.0, 0.0], [150.0, 0.0]]), max_snap_m=10)
    r = nearest_facility_times(net, src, tg, access_speed_mps=1.0)
    # A cannot be reached (nothing enters it); B = 50; C = 150
    np.testing.assert_allclose(r.node_time_s, [np.inf, 50, 150])
    # 20 m is behind the facility on a one-way street: inf; 80 m: 30 s direct; 150 m: 50 + 50
    np.testing.assert_allclose(r.target_time_s, [np.inf, 30, 100])
    # from the two-way part, the one-way street cannot be entered backwards
    src2 = snap_points(net, np.array([[150.0, 0.0]]), max_snap_m=10)
    r2 = nearest_facility_times(net, src2, tg, access_speed_mps=1.0)
    np.testing.assert_allclose(r2.target_time_s, [np.inf, np.inf, 0.0])
    # the ends of the one-way edge are its nodes: head B is reached (50 s from C), tail A is not;
    # a facility at the tail A reaches B in 100 s and C in 200 s
    ends = Snap(np.array([0, 0]), np.array([1.0, 0.0]), np.zeros(2), np.ones(2, bool), np.zeros(2),
                np.zeros(2))
    np.testing.assert_allclose(nearest_facility_times(net, src2, ends, access_speed_mps=1.0).target_time_s,
                               [50, np.inf])
    r3 = nearest_facility_times(net, ends.take(np.array([1])), tg, access_speed_mps=1.0)
    np.testing.assert_allclose(r3.node_time_s, [0, 100, 200])
    np.testing.assert_allclose(r3.target_time_s, [20, 80, 150])


def test_limit_and_inclusive_boundary():
    net = grid3()
    src = snap_points(net, np.array([[50.0, -10.0]]), max_snap_m=300)
    tg = snap_points(net, np.array([[100.0, 150.0]]), max_snap_m=300)  # 210 s, worked out above
    assert nearest_facility_times(net, src, tg, access_speed_mps=1.0, limit_s=210.0).target_time_s[0] == 210
    assert np.isinf(nearest_facility_times(net, src, tg, access_speed_mps=1.0,
                                           limit_s=209.999).target_time_s[0])
    assert coverage_matrix(net, src, tg, access_speed_mps=1.0, limit_s=210.0).toarray()[0, 0] == 210
    assert coverage_matrix(net, src, tg, access_speed_mps=1.0, limit_s=209.999).nnz == 0
    assert covered(np.array([900.0, np.nextafter(900.0, 1e9), np.inf, np.nan]), 15).tolist() == \
        [True, False, False, False]


def test_coverage_matrix_zero_time_is_stored():
    net = grid3()
    src = snap_points(net, np.array([[50.0, 0.0], [200.0, 200.0]]), max_snap_m=300)
    tg = snap_points(net, np.array([[50.0, 0.0], [100.0, 0.0], [1050, 1000]]), max_snap_m=300)
    m = coverage_matrix(net, src, tg, access_speed_mps=1.0, limit_s=100)
    dense = m.toarray()
    assert dense[0, 0] == ZERO_TIME_S and dense[0, 1] == pytest.approx(50) and m.nnz == 2


def test_bad_options_rejected():
    net = grid3()
    src = snap_points(net, np.array([[50.0, 0.0]]), max_snap_m=300)
    with pytest.raises(ValueError, match="access_speed_mps=0"):
        nearest_facility_times(net, src, src, access_speed_mps=0)
    with pytest.raises(ValueError, match="finite radius"):
        coverage_matrix(net, src, src, access_speed_mps=1.0, limit_s=np.inf)
    with pytest.raises(ValueError, match="max_snap_m=-1"):
        snap_points(net, np.zeros((1, 2)), max_snap_m=-1)


# --------------------------------------------------------------------------------------------------
# Properties (Hypothesis) on a random grid with random speeds and one-way streets
# --------------------------------------------------------------------------------------------------


def random_grid(seed: int, n: int = 6) -> Network:
    rng = np.random.default_rng(seed)
    xy = [(100 * c + rng.uniform(-20, 20), 100 * r + rng.uniform(-20, 20))
          for r in range(n) for c in range(n)]
    edges = []
    for r in range(n):
        for c in range(n):
            i = r * n + c
            if c < n - 1:
                edges.append((i, i + 1, bool(rng.random() > 0.2)))
            if r < n - 1:
                edges.append((i + n, i, bool(rng.random() > 0.2)))
    net = make_net(xy, edges)
    speed = rng.uniform(0.5, 2.0, net.n_edges)
    rev = net.edge_reverse
    speed = np.where((rev >= 0) & (rev < np.arange(net.n_edges)), speed[np.maximum(rev, 0)], speed)
    return Network(**{**net.__dict__, "edge_time_s": net.edge_length_m / speed})


points = st.lists(st.tuples(st.floats(-50, 550), st.floats(-50, 550)), min_size=1, max_size=6)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 5), src=points, extra=st.tuples(st.floats(-50, 550), st.floats(-50, 550)),
       perm_seed=st.integers(0, 1000))
def test_properties_add_duplicate_permute(seed, src, extra, perm_seed):
    net = random_grid(seed)
    rng = np.random.default_rng(99)
    tg = snap_points(net, rng.uniform(-50, 550, size=(60, 2)), max_snap_m=40)
    s = snap_points(net, np.array(src), max_snap_m=40)
    base = nearest_facility_times(net, s, tg, access_speed_mps=1.2)
    # adding a facility never raises any time
    s2 = snap_points(net, np.array([*src, extra]), max_snap_m=40)
    more = nearest_facility_times(net, s2, tg, access_speed_mps=1.2)
    assert np.all(more.node_time_s <= base.node_time_s + 1e-9)
    assert np.all(more.target_time_s <= base.target_time_s + 1e-9)
    # a duplicate facility changes nothing
    dup = snap_points(net, np.array([*src, src[0]]), max_snap_m=40)
    d = nearest_facility_times(net, dup, tg, access_speed_mps=1.2)
    np.testing.assert_allclose(d.node_time_s, base.node_time_s, rtol=0, atol=1e-9)
    np.testing.assert_allclose(d.target_time_s, base.target_time_s, rtol=0, atol=1e-9)
    # source order does not matter (up to the id of tied sources)
    perm = np.random.default_rng(perm_seed).permutation(len(src))
    p = nearest_facility_times(net, s.take(perm), tg, access_speed_mps=1.2)
    np.testing.assert_allclose(p.target_time_s, base.target_time_s, rtol=0, atol=1e-9)
    np.testing.assert_allclose(p.node_time_s, base.node_time_s, rtol=0, atol=1e-9)
    ok = np.isfinite(p.target_time_s)
    xy_src = np.stack([s.x, s.y], axis=1)
    # the chosen source (mapped back through the permutation) sits where a tied-best source sits
    assert np.all((p.target_source >= 0) == ok)
    # coverage matrix agrees with the nearest time (min over its column)
    m = coverage_matrix(net, s, tg, access_speed_mps=1.2, limit_s=400.0).toarray()
    m[m == 0] = np.inf
    best = m.min(axis=0)
    expect = np.where(base.target_time_s <= 400.0, base.target_time_s, np.inf)
    np.testing.assert_allclose(np.where(best == ZERO_TIME_S, 0, best), expect, rtol=0, atol=1e-7)
    # the nearest source of each target achieves the reported time
    src_ok = base.target_source[ok & (base.target_time_s <= 400)]
    cols = np.flatnonzero(ok & (base.target_time_s <= 400))
    np.testing.assert_allclose(np.where(m[src_ok, cols] == ZERO_TIME_S, 0, m[src_ok, cols]),
                               base.target_time_s[cols], atol=1e-7)
    assert xy_src.shape[0] == len(src)


# --------------------------------------------------------------------------------------------------
# networkx oracle on the real Helsinki network
# --------------------------------------------------------------------------------------------------


def helsinki_network(path: Path, mode: str = "walk") -> Network:
    from coverage.config import DeliveryProfile, WalkProfile
    from coverage.network import network_from_osm

    return network_from_osm(path, mode=mode, metric_crs="EPSG:32635", walk=WalkProfile(),
                            delivery=DeliveryProfile())


def nx_oracle(net: Network, sources: Snap, targets: Snap, access_speed_mps: float):
    """Independent networkx answer: virtual source and target nodes added to the MultiDiGraph."""
    g = net.to_networkx()
    srcs = []
    for i in np.flatnonzero(sources.snapped):
        e, f, a = int(sources.edge[i]), float(sources.frac[i]), sources.dist_m[i] / access_speed_mps
        node = ("s", i)
        srcs.append(node)
        g.add_edge(node, int(net.edge_v[e]), travel_time_s=a + (1 - f) * net.edge_time_s[e])
        r = int(net.edge_reverse[e])
        if r >= 0:
            g.add_edge(node, int(net.edge_u[e]), travel_time_s=a + f * net.edge_time_s[r])
        elif f == 0.0:  # a facility snapped exactly onto the tail node of a one-way edge is at that node
            g.add_edge(node, int(net.edge_u[e]), travel_time_s=a)
        for j in np.flatnonzero(targets.snapped & (targets.edge == e)):  # same edge: direct
            t, b = float(targets.frac[j]), targets.dist_m[j] / access_speed_mps
            if t >= f:
                g.add_edge(node, ("t", j), travel_time_s=a + (t - f) * net.edge_time_s[e] + b)
            elif r >= 0:
                g.add_edge(node, ("t", j), travel_time_s=a + (f - t) * net.edge_time_s[r] + b)
    for j in np.flatnonzero(targets.snapped):
        e, t, b = int(targets.edge[j]), float(targets.frac[j]), targets.dist_m[j] / access_speed_mps
        g.add_edge(int(net.edge_u[e]), ("t", j), travel_time_s=t * net.edge_time_s[e] + b)
        r = int(net.edge_reverse[e])
        if r >= 0:
            g.add_edge(int(net.edge_v[e]), ("t", j), travel_time_s=(1 - t) * net.edge_time_s[r] + b)
        elif t == 1.0:  # exactly at the head node of a one-way edge
            g.add_edge(int(net.edge_v[e]), ("t", j), travel_time_s=b)
    return nx.multi_source_dijkstra_path_length(g, srcs, weight="travel_time_s")


@pytest.mark.parametrize("mode", ["walk", "delivery"])
def test_helsinki_agrees_with_networkx_oracle(helsinki_pbf, mode):
    net = helsinki_network(helsinki_pbf, mode)
    assert net.n_edges > 1000
    rng = np.random.default_rng(7)
    x0, x1, y0, y1 = net.node_x.min(), net.node_x.max(), net.node_y.min(), net.node_y.max()
    src = snap_points(net, np.stack([rng.uniform(x0, x1, 25), rng.uniform(y0, y1, 25)], 1), max_snap_m=200)
    tg = snap_points(net, np.stack([rng.uniform(x0, x1, 3000), rng.uniform(y0, y1, 3000)], 1), max_snap_m=100)
    assert src.snapped.sum() >= 20 and (~tg.snapped).any()
    res = nearest_facility_times(net, src, tg, access_speed_mps=1.0)
    oracle = nx_oracle(net, src, tg, 1.0)
    exp_nodes = np.array([oracle.get(i, np.inf) for i in range(net.n_nodes)])
    np.testing.assert_allclose(res.node_time_s, exp_nodes, rtol=0, atol=1e-6)
    exp_tg = np.array([oracle.get(("t", j), np.inf) for j in range(len(tg))])
    np.testing.assert_allclose(res.target_time_s, exp_tg, rtol=0, atol=1e-6)
    assert np.isfinite(exp_nodes).mean() > 0.5
    if mode == "delivery":
        assert (net.edge_reverse < 0).any()  # one-way streets exercised
    # nearest source really achieves the node time: re-run from that source alone for a few nodes
    for i in rng.choice(np.flatnonzero(np.isfinite(exp_nodes)), 5, replace=False):
        one = nearest_facility_times(net, src.take(np.array([res.node_source[i]])), tg, access_speed_mps=1.0)
        assert one.node_time_s[i] == pytest.approx(res.node_time_s[i], abs=1e-6)


def _polyline_net(seed: int) -> Network:
    """Random multi-vertex polylines (some one-way, some with repeated vertices) over 0..300 m."""
    rng = np.random.default_rng(seed)
    nodes = rng.uniform(0, 300, size=(12, 2)).round(0)  # integer coordinates make exact ties likely
    eu, ev, rev, geoms = [], [], [], []
    for _ in range(14):
        u, v = rng.choice(12, 2, replace=False)
        mid = rng.uniform(0, 300, size=(rng.integers(0, 4), 2)).round(0)
        line = np.vstack([nodes[u], *mid, nodes[u] if rng.random() < 0.1 else nodes[v], nodes[v]])
        two = rng.random() < 0.7
        i = len(eu)
        eu.append(u), ev.append(v), rev.append(i + 1 if two else -1), geoms.append(shapely.LineString(line))
        if two:
            eu.append(v), ev.append(u), rev.append(i), geoms.append(shapely.LineString(line[::-1]))
    geom = np.array(geoms, dtype=object)
    length = shapely.length(geom)
    return Network(mode="walk", crs="EPSG:3857", node_id=np.arange(12, dtype=np.int64), node_x=nodes[:, 0],
                   node_y=nodes[:, 1], node_component=np.zeros(12, dtype=np.int32),
                   edge_u=np.array(eu, dtype=np.int32), edge_v=np.array(ev, dtype=np.int32),
                   edge_length_m=length, edge_time_s=np.maximum(length, 1.0),
                   edge_reverse=np.array(rev, dtype=np.int64),
                   edge_geometry=geom, edge_attrs=pd.DataFrame({"highway": "footway", "name": "",
                                                                "osmid": np.arange(len(eu)),
                                                                "oneway": np.array(rev) < 0}))


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 10_000), pts=st.lists(st.tuples(st.floats(-2000, 2300), st.floats(-100, 400)),
                                                 min_size=1, max_size=40))
def test_snap_matches_brute_force_shapely(seed, pts):
    net = _polyline_net(seed)
    xy = np.vstack([np.array(pts), np.random.default_rng(seed).integers(0, 300, size=(30, 2))])
    s = snap_points(net, xy, max_snap_m=150)
    phys = net.physical_edges()
    d_all = shapely.distance(net.edge_geometry[phys][None, :], shapely.points(xy)[:, None])  # (n, phys)
    best = d_all.min(axis=1)
    np.testing.assert_allclose(s.dist_m, best, rtol=0, atol=1e-7)
    assert (s.snapped == (s.dist_m <= 150)).all()
    ok = s.snapped
    # the chosen edge is at the minimum distance, and it is the LOWEST such edge (deterministic ties)
    pos = np.searchsorted(phys, s.edge[ok])
    np.testing.assert_allclose(d_all[ok, pos], best[ok], rtol=0, atol=1e-7)
    assert (pos == np.argmax(d_all[ok] <= best[ok, None] + 1e-9, axis=1)).all()
    # frac and x/y are the projection onto that edge (shapely's line_locate_point / interpolate)
    g = net.edge_geometry[s.edge[ok]]
    on = shapely.get_coordinates(shapely.line_interpolate_point(g, s.frac[ok], normalized=True))
    np.testing.assert_allclose(on, np.stack([s.x[ok], s.y[ok]], axis=1), atol=1e-6)
    np.testing.assert_allclose(shapely.distance(shapely.points(on), shapely.points(xy[ok])), best[ok],
                               atol=1e-6)
    assert (s.edge[~ok] == -1).all() and np.isnan(s.frac[~ok]).all()


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), chunk=st.integers(1, 50))
def test_snap_in_chunks_is_bit_identical(seed, chunk):
    """Points are snapped in chunks (memory): any chunk size gives exactly the one-chunk answer."""
    net = _polyline_net(seed)
    xy = np.random.default_rng(seed).uniform(-200, 500, size=(97, 2))
    whole = snap_points(net, xy, max_snap_m=150)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(traveltime, "SNAP_CHUNK_POINTS", chunk)
        parts = snap_points(net, xy, max_snap_m=150)
    for f in ("edge", "frac", "dist_m", "snapped", "x", "y"):
        np.testing.assert_array_equal(getattr(parts, f), getattr(whole, f), err_msg=f)


def test_parallel_arcs_take_the_fastest():
    # two roads between the same nodes (0 -> 1): 100 m straight at 1 m/s and a slower detour geometry;
    # the CSR keeps both arcs and Dijkstra must use the faster one (100 s), never their sum
    net = make_net([(0, 0), (100, 0), (200, 0)], [(0, 1, True), (1, 2, True)])
    fast = Network(**{**net.__dict__,
                      "edge_u": np.concatenate([net.edge_u, [0]]).astype(np.int32),
                      "edge_v": np.concatenate([net.edge_v, [1]]).astype(np.int32),
                      "edge_length_m": np.concatenate([net.edge_length_m, [300.0]]),
                      "edge_time_s": np.concatenate([net.edge_time_s, [300.0]]),
                      "edge_reverse": np.concatenate([net.edge_reverse, [-1]]),
                      "edge_geometry": np.concatenate([net.edge_geometry,
                                                       [shapely.LineString([(0, 0), (50, 100), (100, 0)])]]),
                      "edge_attrs": pd.concat([net.edge_attrs, net.edge_attrs.iloc[:1]], ignore_index=True)})
    src = snap_points(fast, np.array([[0.0, 0.0]]), max_snap_m=1)
    tg = snap_points(fast, np.array([[200.0, 0.0]]), max_snap_m=1)
    r = nearest_facility_times(fast, src, tg, access_speed_mps=1.0)
    np.testing.assert_allclose(r.node_time_s, [0, 100, 200])
    np.testing.assert_allclose(r.target_time_s, [200])
    m = coverage_matrix(fast, src, tg, access_speed_mps=1.0, limit_s=500)
    np.testing.assert_allclose(m.toarray(), [[200]])


def test_target_rows_in_any_direction_and_unusable_rows():
    # a target given on the twin (non-representative) edge with 1 - frac is the same position; rows
    # that are not snapped, have edge -1 or a negative edge are never reached; frac is clipped to 0..1
    net = grid3()
    src = snap_points(net, np.array([[50.0, -10.0], [200.0, 120.0]]), max_snap_m=300)
    tg = snap_points(net, np.array([[100, 150], [200, 130], [60, 0], [40, 5], [150, 200]]), max_snap_m=300)
    base = nearest_facility_times(net, src, tg, access_speed_mps=1.5)
    rev = net.edge_reverse
    assert (rev[tg.edge] >= 0).all()
    twin = Snap(rev[tg.edge], 1.0 - tg.frac, tg.dist_m, tg.snapped, tg.x, tg.y)
    r = nearest_facility_times(net, src, twin, access_speed_mps=1.5)
    np.testing.assert_allclose(r.target_time_s, base.target_time_s, rtol=1e-12)
    assert r.target_source.tolist() == base.target_source.tolist()
    e0 = int(tg.edge[2])
    odd = Snap(np.array([e0, -1, -5, e0, e0, e0]), np.array([0.5, np.nan, 0.5, -0.2, 1.3, 0.0]),
               np.array([1.0, np.inf, 1.0, 2.0, 2.0, 2.0]), np.array([False, False, True, True, True, True]),
               np.zeros(6), np.zeros(6))
    r = nearest_facility_times(net, src, odd, access_speed_mps=1.0)
    assert np.isinf(r.target_time_s[:3]).all() and r.target_source[:3].tolist() == [-1, -1, -1]
    ends = nearest_facility_times(net, src, Snap(np.array([e0, e0]), np.array([0.0, 1.0]), np.full(2, 2.0),
                                                 np.ones(2, bool), np.zeros(2), np.zeros(2)),
                                  access_speed_mps=1.0)
    np.testing.assert_array_equal(r.target_time_s[3:5], ends.target_time_s)
    assert r.target_time_s[5] == r.target_time_s[3]


def test_same_edge_sources_nearest_wins_ties_to_the_first():
    # three facilities on edge 0-1 (two at the same spot): a target between them takes the nearest;
    # at equal times the lower source row wins (as for the via-node times)
    net = grid3()
    src = snap_points(net, np.array([[75.0, 0.0], [25.0, 0.0], [25.0, 0.0], [200.0, 200.0]]), max_snap_m=300)
    tg = snap_points(net, np.array([[50.0, 0.0], [70.0, 0.0], [30.0, 0.0], [100.0, 200.0]]), max_snap_m=300)
    r = nearest_facility_times(net, src, tg, access_speed_mps=1.0)
    np.testing.assert_allclose(r.target_time_s, [25, 5, 5, 100])
    assert r.target_source.tolist() == [0, 0, 1, 3]


@settings(max_examples=30, deadline=None)
@given(n=st.sampled_from([1, 7, 300, 1 << 16, (1 << 16) + 1, 5_000_000]), seed=st.integers(0, 1000),
       size=st.integers(0, 400))
def test_radix_argsort_matches_numpy_stable(n, seed, size):
    from coverage.traveltime import _stable_argsort_nodes

    a = np.random.default_rng(seed).integers(0, n, size).astype(np.int32)
    np.testing.assert_array_equal(_stable_argsort_nodes(a, n), np.argsort(a, kind="stable"))


# --------------------------------------------------------------------------------------------------
# coverage matrix searched locally (groups of nearby sources on a subnetwork) == on the whole network
# --------------------------------------------------------------------------------------------------


def assert_same_matrix(a, b) -> None:  # noqa: ANN001
    a, b = a.tocsr(), b.tocsr()
    a.sort_indices()
    b.sort_indices()
    assert a.shape == b.shape
    np.testing.assert_array_equal(a.indptr, b.indptr)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.data, b.data)  # bit for bit


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 20), n=st.integers(3, 14), limit=st.floats(0.0, 900.0),
       n_src=st.integers(1, 12))
def test_local_coverage_matrix_is_bit_identical(seed: int, n: int, limit: float, n_src: int) -> None:
    """Random grids with one-way streets, sources and targets anywhere (on nodes, off the network,
    sharing edges), any limit: the local searches give the whole network's matrix bit for bit."""
    net = random_grid(seed, n)
    rng = np.random.default_rng(seed)
    hi = 100.0 * n
    pts = np.vstack([rng.uniform(-60, hi, size=(n_src, 2)), [[0.0, 0.0]]])
    src = snap_points(net, pts, max_snap_m=40)
    tg_xy = np.vstack([rng.uniform(-60, hi, size=(150, 2)), pts, net.node_x[:3, None].repeat(2, 1)])
    tg = snap_points(net, tg_xy, max_snap_m=40)
    whole = coverage_matrix(net, src, tg, access_speed_mps=1.1, limit_s=limit, local=False)
    local = coverage_matrix(net, src, tg, access_speed_mps=1.1, limit_s=limit, local=True)
    assert_same_matrix(whole, local)


@pytest.mark.parametrize("mode", ["walk", "delivery"])
def test_local_coverage_matrix_on_helsinki(helsinki_pbf, mode) -> None:
    """Real polylines, one-way streets (delivery) and 300 sources in many groups."""
    net = helsinki_network(helsinki_pbf, mode)
    rng = np.random.default_rng(3)
    x0, x1, y0, y1 = net.node_x.min(), net.node_x.max(), net.node_y.min(), net.node_y.max()
    src = snap_points(net, np.stack([rng.uniform(x0, x1, 300), rng.uniform(y0, y1, 300)], 1), max_snap_m=200)
    tg = snap_points(net, np.stack([rng.uniform(x0, x1, 5000), rng.uniform(y0, y1, 5000)], 1),
                     max_snap_m=100)
    limit = 300.0 if mode == "walk" else 120.0
    whole = coverage_matrix(net, src, tg, access_speed_mps=1.0, limit_s=limit, local=False)
    local = coverage_matrix(net, src, tg, access_speed_mps=1.0, limit_s=limit, local=True)
    assert whole.nnz > 1000
    assert_same_matrix(whole, local)
