"""Travel-time engine: hand-computed grids, inclusive boundary, properties, networkx oracle."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from coverage.graph import Network
from coverage.traveltime import (
    ZERO_TIME_S,
    Snap,
    coverage_matrix,
    covered,
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
                   edge_length_m=length, edge_time_s=length / speed_mps, edge_reverse=np.array(rev, dtype=np.int64),
                   edge_geometry=geom,
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
    ends = Snap(np.array([0, 0]), np.array([1.0, 0.0]), np.zeros(2), np.ones(2, bool), np.zeros(2), np.zeros(2))
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
    assert np.isinf(nearest_facility_times(net, src, tg, access_speed_mps=1.0, limit_s=209.999).target_time_s[0])
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
