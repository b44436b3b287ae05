"""Isochrone polygons: hand-computed reach on a grid, honesty QA, dissolved vs per facility."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from test_traveltime import grid3, make_net

from coverage.isochrones import QUAD_SEGS, check_isochrones, isochrone_polygons
from coverage.traveltime import snap_points


def test_grid_isochrone_matches_hand_computed_reach():
    net = grid3()
    # facility 10 m below the middle of edge 0-1 (access 10 s); budget 100 s:
    # the whole edge 0-1 (nodes 0 and 1 at 60 s), then 40 m up 0-3, along 1-2 and up 1-4.
    src = snap_points(net, np.array([[50.0, -10.0]]), max_snap_m=300)
    per, diss = isochrone_polygons(net, src, source_ids=["f1"], thresholds_s=[100.0], access_speed_mps=1.0,
                                   frontage_m=5.0, service="elderly")
    expected = shapely.buffer(shapely.MultiLineString([[(0, 0), (100, 0)], [(0, 0), (0, 40)],
                                                       [(100, 0), (140, 0)], [(100, 0), (100, 40)]]),
                              5.0, quad_segs=QUAD_SEGS)
    assert list(per.columns) == ["fac_id", "service", "threshold_min", "geometry"]
    assert per["fac_id"].tolist() == ["f1"] and per["threshold_min"].tolist() == [100 / 60]
    g = per.geometry.iloc[0]
    assert g.symmetric_difference(expected).area < 1e-6
    assert diss.geometry.iloc[0].symmetric_difference(expected).area < 1e-6
    assert str(per.crs) == str(diss.crs) == "EPSG:3857"
    # not a hull: the grid centre block (50, 50) is not covered
    assert not g.contains(shapely.Point(50, 50))


def test_one_way_cut_and_budget_from_both_ends():
    # A -> B one-way (100 m), B <-> C; facility at C(200,0): B at 100 s, A unreachable
    net = make_net([(0, 0), (100, 0), (200, 0)], [(0, 1, False), (1, 2, True)])
    src = snap_points(net, np.array([[200.0, 0.0]]), max_snap_m=10)
    per, _ = isochrone_polygons(net, src, source_ids=["c"], thresholds_s=[150.0], access_speed_mps=1.0,
                                frontage_m=1.0)
    g = per.geometry.iloc[0]
    assert g.contains(shapely.Point(101, 0)) and not g.contains(shapely.Point(95, 0))
    rep = check_isochrones(net, src, per, source_ids=["c"], access_speed_mps=1.0, frontage_m=1.0,
                           sample_m=2.0)
    assert rep["ok"].all() and rep["n_missing"].sum() == 0


def test_dissolved_equals_union_of_facilities_and_qa_passes():
    rng = np.random.default_rng(3)
    xy = rng.uniform(0, 200, size=(6, 2))
    net = grid3()
    src = snap_points(net, xy, max_snap_m=300)
    ids = [f"f{i}" for i in range(6)]
    per, diss = isochrone_polygons(net, src, source_ids=ids, thresholds_s=[60.0, 120.0], access_speed_mps=1.0,
                                   frontage_m=8.0)
    for th in (1.0, 2.0):
        u = shapely.union_all(per.loc[per.threshold_min == th].geometry.values)
        d = diss.loc[diss.threshold_min == th].geometry.iloc[0]
        assert u.symmetric_difference(d).area < 1e-3 * d.area
    rep = check_isochrones(net, src, per, source_ids=ids, access_speed_mps=1.0, frontage_m=8.0, sample_m=2.0)
    assert len(rep) == 12 and rep["ok"].all(), rep


def test_qa_catches_a_hull():
    net = grid3()
    src = snap_points(net, np.array([[50.0, -10.0]]), max_snap_m=300)
    per, _ = isochrone_polygons(net, src, source_ids=["f1"], thresholds_s=[100.0], access_speed_mps=1.0,
                                frontage_m=5.0)
    hull = per.copy()
    hull.geometry = hull.geometry.convex_hull
    rep = check_isochrones(net, src, hull, source_ids=["f1"], access_speed_mps=1.0, frontage_m=5.0,
                           sample_m=2.0)
    assert not rep["ok"].iloc[0] and rep["max_dist_m"].iloc[0] > 10
    shrunk = per.copy()
    shrunk.geometry = shrunk.geometry.difference(shapely.box(-10, 30, 10, 50))  # cut the tip of 0-3
    rep2 = check_isochrones(net, src, shrunk, source_ids=["f1"], access_speed_mps=1.0, frontage_m=5.0,
                            sample_m=2.0)
    assert rep2["n_missing"].iloc[0] > 0


def test_bad_inputs_listed_once():
    net = grid3()
    src = snap_points(net, np.array([[50.0, -10.0]]), max_snap_m=300)
    with pytest.raises(ValueError, match=r"source_ids has 2 ids.*thresholds_s=\[0\].*frontage_m=0"):
        isochrone_polygons(net, src, source_ids=["a", "b"], thresholds_s=[0], access_speed_mps=1.0,
                           frontage_m=0)


def _grid(n: int, spacing: float = 50.0):
    xy = [(spacing * c, spacing * r) for r in range(n) for c in range(n)]
    edges = [(r * n + c, r * n + c + 1, (r + c) % 7 != 3) for r in range(n) for c in range(n - 1)]
    edges += [(r * n + c, (r + 1) * n + c, True) for r in range(n - 1) for c in range(n)]
    return make_net(xy, edges)


def test_tile_reuse_equals_plain_union_of_buffered_pieces():
    from coverage.isochrones import _out_edges, reached_segments
    from coverage.traveltime import _canonical, nearest_facility_times

    net = _grid(14)
    rng = np.random.default_rng(5)
    src = snap_points(net, rng.uniform(0, 650, size=(12, 2)), max_snap_m=100)
    ids = [f"f{i}" for i in range(12)]
    ths = [200.0, 400.0]
    per, diss = isochrone_polygons(net, src, source_ids=ids, thresholds_s=ths, access_speed_mps=1.0,
                                   frontage_m=12.0)
    assert len(per) == 24
    _, se, sf = _canonical(net, src)
    sa = src.dist_m / 1.0
    for i in range(12):
        one = src.take(np.array([i]))
        res = nearest_facility_times(net, one, one.take(np.zeros(0, dtype=int)), access_speed_mps=1.0)
        nodes = np.flatnonzero(np.isfinite(res.node_time_s))
        for L in ths:
            _, pieces = reached_segments(net, np.zeros(nodes.size, dtype=np.int64), nodes,
                                         res.node_time_s[nodes], np.array([L]), se[[i]], sf[[i]], sa[[i]],
                                         _out_edges(net))
            expect = shapely.union_all(shapely.buffer(pieces, 12.0, quad_segs=QUAD_SEGS))
            got = per.loc[(per.fac_id == ids[i]) & (per.threshold_min == L / 60)].geometry.iloc[0]
            assert got.symmetric_difference(expect).area < 1e-6 * expect.area
    for L in ths:
        u = shapely.union_all(per.loc[per.threshold_min == L / 60].geometry.values)
        d = diss.loc[diss.threshold_min == L / 60].geometry.iloc[0]
        assert u.symmetric_difference(d).area < 1e-6 * d.area
    rep = check_isochrones(net, src, per, source_ids=ids, access_speed_mps=1.0, frontage_m=12.0, sample_m=3.0,
                           max_facilities=4)
    assert rep["ok"].all(), rep
