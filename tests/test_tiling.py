"""Tiles with a halo (coverage.tiling): tiled travel times equal the whole network's, under the cap.

Three tiers: generated grids with random tile sizes (Hypothesis; facilities just outside a tile, cells
exactly on tile borders), the demo county, and Comoros (real data, skipped when ../shared is absent).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely
from conftest import REPO, shared_file
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coverage import access, tiling
from coverage.access import CellSnaps, FacilitySnaps, TravelTimes
from coverage.config import Config, load_config
from coverage.graph import Network
from coverage.traveltime import snap_points


def with_cap(cfg: Config, cap_min: float) -> Config:
    return dataclasses.replace(cfg, tiles=dataclasses.replace(cfg.tiles, time_cap_min=cap_min))


def assert_same_times(untiled: TravelTimes, tiled: TravelTimes, *, caps_s: dict[str, float] | None = None
                      ) -> int:
    """Tiled == untiled (times to 1e-9 s, same nearest facility, same covered set); with ``caps_s`` the
    untiled times are uncapped and are capped here. Returns the number of finite times compared."""
    n = 0
    assert set(untiled.by_service) == set(tiled.by_service)
    for sid, u in untiled.by_service.items():
        t = tiled.by_service[sid]
        ut = u.time_s
        uid = u.nearest_id
        if caps_s is not None and sid in caps_s:
            beyond = ut > caps_s[sid]
            ut = np.where(beyond, np.inf, ut)
            uid = np.where(beyond, "", uid)
        np.testing.assert_array_equal(np.isnan(ut), np.isnan(t.time_s), err_msg=sid)
        np.testing.assert_array_equal(np.isinf(ut), np.isinf(t.time_s), err_msg=sid)
        fin = np.isfinite(ut)
        np.testing.assert_allclose(t.time_s[fin], ut[fin], rtol=0, atol=1e-9, err_msg=sid)
        assert list(t.nearest_id) == list(uid), sid
        assert t.n_facilities == u.n_facilities
        n += int(fin.sum())
    return n


# --------------------------------------------------------------------------------------------------
# Pieces
# --------------------------------------------------------------------------------------------------


def test_tiles_are_half_open_and_cover_every_point() -> None:
    xy = np.array([[0.0, 0.0], [999.999, 0.0], [1000.0, 0.0], [1000.0, 1000.0], [-0.001, 5.0],
                   [np.nan, 1.0]])
    tiles, owner = tiling.assign_tiles(xy, tile_size_m=1000.0)
    names = [tiles[k].name if k >= 0 else None for k in owner]
    assert names == ["tile_0_0", "tile_0_0", "tile_1_0", "tile_1_1", "tile_-1_0", None]
    for k, (x, y) in zip(owner, xy, strict=True):
        if k >= 0:
            x0, y0, x1, y1 = tiles[k].box()
            assert x0 <= x < x1 and y0 <= y < y1


def test_halo_is_cap_times_fastest_speed_plus_snap_distances() -> None:
    assert tiling.halo_m(cap_s=900.0, max_speed_mps=1.2, cell_max_snap_m=500.0,
                         facility_max_snap_m=300.0) == pytest.approx(900 * 1.2 + 800)


def test_cap_defaults_to_the_largest_threshold() -> None:
    cfg = load_config(REPO / "layers" / "demo" / "coverage.toml")
    assert tiling.service_cap_s(cfg, cfg.services["elderly"]) == 900.0
    assert tiling.service_cap_s(cfg, cfg.services["meal"]) == 1800.0  # 郊区 30 min
    assert tiling.service_cap_s(with_cap(cfg, 45), cfg.services["meal"]) == 2700.0


# --------------------------------------------------------------------------------------------------
# Generated grids
# --------------------------------------------------------------------------------------------------


def grid_network(rng: np.random.Generator, n: int, spacing_m: float, *, jitter: float = 0.2) -> Network:
    """A jittered n x n two-way grid with a few edges missing and random speeds (0.6-1.6 m/s)."""
    ij = np.array([(i, j) for j in range(n) for i in range(n)], dtype=float)
    xy = ij * spacing_m + rng.uniform(-jitter, jitter, size=ij.shape) * spacing_m
    pairs = [(j * n + i, j * n + i + 1) for j in range(n) for i in range(n - 1)]
    pairs += [(j * n + i, (j + 1) * n + i) for j in range(n - 1) for i in range(n)]
    pairs = [p for p in pairs if rng.random() > 0.1]
    eu, ev, rev = [], [], []
    for a, b in pairs:
        k = len(eu)
        eu += [a, b]
        ev += [b, a]
        rev += [k + 1, k]
    eu_a, ev_a = np.array(eu, dtype=np.int32), np.array(ev, dtype=np.int32)
    geom = shapely.linestrings(np.stack([xy[eu_a], xy[ev_a]], axis=1))
    length = shapely.length(geom)
    speed = np.repeat(rng.uniform(0.6, 1.6, size=len(pairs)), 2)
    return Network(mode="walk", crs="EPSG:3857", node_id=np.arange(len(xy), dtype=np.int64),
                   node_x=xy[:, 0], node_y=xy[:, 1], node_component=np.zeros(len(xy), dtype=np.int32),
                   edge_u=eu_a, edge_v=ev_a, edge_length_m=length, edge_time_s=length / speed,
                   edge_reverse=np.array(rev, dtype=np.int64), edge_geometry=geom,
                   edge_attrs=pd.DataFrame({"highway": "footway", "name": "", "osmid": np.arange(len(eu)),
                                            "oneway": False}))


def walk_only_config(cap_min: float) -> Config:
    cfg = load_config(REPO / "layers" / "demo" / "coverage.toml")
    services = {sid: s for sid, s in cfg.services.items() if s.mode == "walk"}
    return with_cap(dataclasses.replace(cfg, services=services), cap_min)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), tile_size_m=st.floats(500.0, 4000.0),
       cap_min=st.sampled_from([0, 15, 20]), n_fac=st.integers(1, 12))
def test_generated_grid_tiled_equals_untiled(seed: int, tile_size_m: float, cap_min: float, n_fac: int
                                             ) -> None:
    rng = np.random.default_rng(seed)
    spacing = 150.0
    net = grid_network(rng, 16, spacing)
    extent = 15 * spacing
    cfg = walk_only_config(cap_min)
    # cells: a lattice including points exactly on tile borders, plus random points
    border = np.arange(0.0, extent, tile_size_m)
    lattice = np.array([(x, y) for x in np.linspace(0, extent, 12) for y in np.linspace(0, extent, 12)])
    on_border = np.array([(b, y) for b in border for y in np.linspace(0, extent, 5)]
                         + [(x, b) for b in border for x in np.linspace(0, extent, 5)])
    far = rng.uniform(extent + 3000, extent + 6000, size=(3, 2))  # no road within any tile's halo
    cxy = np.vstack([lattice, on_border, rng.uniform(-300, extent + 300, size=(60, 2)), far])
    # facilities: random, and just outside a tile border (1 mm to 1 m beyond it)
    just_out = np.array([(b - rng.uniform(1e-3, 1.0), rng.uniform(0, extent)) for b in border[1:]]
                        + [(rng.uniform(0, extent), b - rng.uniform(1e-3, 1.0)) for b in border[1:]]
                        ).reshape(-1, 2)
    fxy = np.vstack([rng.uniform(0, extent, size=(n_fac, 2)), just_out])
    kinds = [s.kinds[0] for s in cfg.services.values()]  # facilities of every walking service in turn
    fac = pd.DataFrame({"fac_id": [f"f{k}" for k in range(len(fxy))],
                        "kind": [kinds[k % len(kinds)] for k in range(len(fxy))],
                        "childcare_slots": np.nan, "x": fxy[:, 0], "y": fxy[:, 1]})
    fsnap = snap_points(net, fxy, max_snap_m=cfg.snapping.facility_max_snap_m)
    csnap = snap_points(net, cxy, max_snap_m=cfg.snapping.cell_max_snap_m)
    fsnaps = FacilitySnaps(by_mode={"walk": fsnap}, status=np.full(len(fxy), "ok", dtype=object))
    csnaps = CellSnaps(cell_ids=np.arange(len(cxy)), piece_to_cell=np.arange(len(cxy)),
                       by_mode={"walk": csnap})
    cells = pd.DataFrame({"cell_id": np.arange(len(cxy)), "x": cxy[:, 0], "y": cxy[:, 1]})
    nets = {"walk": net}
    untiled = access.travel_times(cfg, nets, csnaps, fac, fsnaps)
    tiled = tiling.tiled_travel_times(cfg, nets, cells, csnaps, fac, fsnaps, tile_size_m=tile_size_m)
    caps = None if cap_min else {sid: tiling.service_cap_s(cfg, s) for sid, s in cfg.services.items()}
    assert_same_times(untiled, tiled, caps_s=caps)
    # the tiles snapping their own cells: the same snaps, bit for bit, and the same times
    own_snaps, own = tiling.tiled_snaps_and_times(cfg, nets, cells, fac, fsnaps, tile_size_m=tile_size_m)
    assert_same_snaps(csnaps, own_snaps)
    assert_same_times(untiled, own, caps_s=caps)


def assert_same_snaps(whole: CellSnaps, tiled: CellSnaps) -> None:
    """Every field of every mode's snaps identical (NaN where NaN), cells in the same order."""
    np.testing.assert_array_equal(whole.cell_ids, tiled.cell_ids)
    np.testing.assert_array_equal(whole.piece_to_cell, tiled.piece_to_cell)
    assert set(whole.by_mode) == set(tiled.by_mode)
    for mode, w in whole.by_mode.items():
        t = tiled.by_mode[mode]
        for f in ("edge", "frac", "dist_m", "snapped", "x", "y"):
            np.testing.assert_array_equal(getattr(w, f), getattr(t, f), err_msg=f"{mode} {f}")


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), tile_size_m=st.sampled_from([300.0, 450.0, 600.0, 1000.0]))
def test_tiles_snap_exact_ties_like_the_whole_network(seed: int, tile_size_m: float) -> None:
    """A regular grid (no jitter): square centres are equidistant from four roads, nodes from four
    edges, and tile borders fall on roads. Ties go to the lowest edge in a tile as on the whole network."""
    rng = np.random.default_rng(seed)
    net = grid_network(rng, 12, 150.0, jitter=0.0)
    cfg = walk_only_config(15)
    centres = np.array([(75.0 + 150 * i, 75.0 + 150 * j) for i in range(11) for j in range(11)])
    nodes = np.array([(150.0 * i, 150.0 * j) for i in range(12) for j in range(12)])
    cxy = np.vstack([centres, nodes, rng.uniform(-100, 1750, size=(40, 2))])
    cells = pd.DataFrame({"cell_id": np.arange(len(cxy)), "x": cxy[:, 0], "y": cxy[:, 1]})
    fxy = rng.uniform(0, 1650, size=(4, 2))
    kinds = [s.kinds[0] for s in cfg.services.values()]
    fac = pd.DataFrame({"fac_id": [f"f{k}" for k in range(4)],
                        "kind": [kinds[k % len(kinds)] for k in range(4)], "childcare_slots": np.nan})
    fsnap = snap_points(net, fxy, max_snap_m=cfg.snapping.facility_max_snap_m)
    fsnaps = FacilitySnaps(by_mode={"walk": fsnap}, status=np.full(4, "ok", dtype=object))
    nets = {"walk": net}
    whole = access.snap_cells(cfg, nets, cells)
    own_snaps, own = tiling.tiled_snaps_and_times(cfg, nets, cells, fac, fsnaps, tile_size_m=tile_size_m)
    assert_same_snaps(whole, own_snaps)
    assert_same_times(access.travel_times(cfg, nets, whole, fac, fsnaps), own)


# --------------------------------------------------------------------------------------------------
# Demo county and Comoros
# --------------------------------------------------------------------------------------------------


def _analysis(config: Path, cap_min: float = 0.0):  # noqa: ANN202 -- a pipeline.Analysis
    from coverage import pipeline

    return pipeline.analyse(with_cap(load_config(config), cap_min))


@pytest.fixture(scope="module")
def demo_analysis(demo_layers: Path):  # noqa: ANN201
    return _analysis(demo_layers / "coverage.toml")


@pytest.mark.parametrize("tile_size_m", [1000.0, 2345.6, 6000.0])
def test_demo_tiled_equals_untiled_under_the_threshold_cap(demo_analysis, tile_size_m: float) -> None:
    a = demo_analysis
    cells = a.cells_in.cells.reset_index(drop=True)
    tiled = tiling.tiled_travel_times(a.cfg, a.networks, cells, a.cell_snaps, a.facilities, a.fac_snaps,
                                      tile_size_m=tile_size_m, skip=a.not_assessed)
    caps = {sid: tiling.service_cap_s(a.cfg, s) for sid, s in a.cfg.services.items()}
    n = assert_same_times(a.times, tiled, caps_s=caps)
    assert n > 10_000
    # every covered flag is identical (the cap is the largest threshold)
    for sid, s in a.cfg.services.items():
        for t in s.isochrone_thresholds_min():
            np.testing.assert_array_equal(a.times.by_service[sid].time_s <= t * 60,
                                          tiled.by_service[sid].time_s <= t * 60)


@pytest.mark.parametrize("tile_size_m", [1000.0, 3777.0])
def test_demo_tiles_snap_their_own_cells_exactly(demo_analysis, tile_size_m: float) -> None:
    """Tiles snapping their cells on their clipped roads (real polylines): bit-identical snaps."""
    a = demo_analysis
    cells = a.cells_in.cells.reset_index(drop=True)
    own_snaps, own = tiling.tiled_snaps_and_times(a.cfg, a.networks, cells, a.facilities, a.fac_snaps,
                                                  tile_size_m=tile_size_m, skip=a.not_assessed)
    assert_same_snaps(a.cell_snaps, own_snaps)
    caps = {sid: tiling.service_cap_s(a.cfg, s) for sid, s in a.cfg.services.items()}
    assert assert_same_times(a.times, own, caps_s=caps) > 10_000


def assert_tiles_sum_like_the_whole_table(a, *, tile_size_m: float  # noqa: ANN001
                                          ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The tiles' partial sums of their pieces, added up, equal the whole cells table's bit for bit, and
    the indicator and standards tables built from them equal those built from the cells."""
    from coverage import indicators, pipeline

    cells = a.cells_in.cells.reset_index(drop=True)
    _, own = tiling.tiled_snaps_and_times(a.cfg, a.networks, cells, a.facilities, a.fac_snaps,
                                          tile_size_m=tile_size_m, skip=a.not_assessed,
                                          unit_class=a.study.unit_class)
    whole = pipeline.evaluated_cells(a)
    costs = access.fca_costs(a.cfg, a.networks, a.facilities, a.cell_snaps, a.fac_snaps, skip=a.not_assessed)
    ref, _ = indicators.cell_partial(whole, a.study.units, a.facilities, a.cfg, fca_costs=costs)
    assert own.unit_sums is not None and len(ref) > 50
    assert set(own.unit_sums.fca_services) == {"elderly", "childcare"} - set(a.not_assessed)
    pd.testing.assert_frame_equal(own.unit_sums.partial, ref)
    kw = {"communities": a.study.communities, "not_assessed": a.not_assessed}
    from_cells = indicators.indicators_and_standards(whole, a.study.units, a.facilities, a.cfg, **kw,
                                                     fca_costs=costs)
    from_tiles = indicators.indicators_and_standards(whole, a.study.units, a.facilities, a.cfg, **kw,
                                                     tiles=own.unit_sums)
    for x, y in zip(from_cells, from_tiles, strict=True):
        if x is None:  # no communities
            assert y is None
            continue
        pd.testing.assert_frame_equal(x, y, check_exact=True)
    return from_tiles[0], ref


@pytest.mark.parametrize("tile_size_m", [1000.0, 3777.0])
def test_demo_unit_indicators_are_a_reduction_over_tiles(demo_analysis, tile_size_m: float) -> None:
    ind, partial = assert_tiles_sum_like_the_whole_table(demo_analysis, tile_size_m=tile_size_m)
    assert (ind["pop_total"] > 0).all() and (ind["elderly_covered_15min"] > 0).any()
    # the 2SFCA scores were summed too (the demo's facilities have beds and slots)
    assert partial["column"].str.startswith("_sum_fca_beds").any()
    assert partial["column"].str.startswith("_sum_fca_slots").any()
    assert (ind["fca_beds_per_1000_60plus"] > 0).any()


def test_a_wrong_tile_sum_would_show(demo_analysis) -> None:
    """The comparison can fail: one tile's sums dropped changes the totals."""
    from coverage import exact_sums

    a = demo_analysis
    cells = a.cells_in.cells.reset_index(drop=True)
    centres = tiling.cell_centres(cells, a.cell_snaps)
    pieces = tiling.pieces_of(cells, a.cfg, a.study.unit_class)
    results = [tiling.solve_tile(t) for t in tiling.partition(
        a.cfg, a.networks, centres, None, a.facilities, a.fac_snaps, tile_size_m=3000.0, skip=a.not_assessed,
        cell_ids=a.cell_snaps.cell_ids, pieces=pieces)]
    assert len(results) > 2 and sum(len(r.cells) for r in results) == len(centres)
    full = exact_sums.totals(exact_sums.merge([r.sums for r in results]), "unit_code")
    short = exact_sums.totals(exact_sums.merge([r.sums for r in results[1:]]), "unit_code")
    assert full["pop_total"].sum() == pytest.approx(cells["pop_total"].sum(), rel=1e-12)
    assert not full.reindex(short.index).equals(short)


def test_demo_tiled_equals_untiled_with_a_configured_cap(demo_analysis) -> None:
    a = demo_analysis
    cfg = with_cap(a.cfg, 60)
    untiled = access.travel_times(cfg, a.networks, a.cell_snaps, a.facilities, a.fac_snaps,
                                  skip=a.not_assessed)
    cells = a.cells_in.cells.reset_index(drop=True)
    tiled = tiling.tiled_travel_times(cfg, a.networks, cells, a.cell_snaps, a.facilities, a.fac_snaps,
                                      tile_size_m=1500.0, skip=a.not_assessed)
    assert assert_same_times(untiled, tiled) > 10_000


def test_tile_input_and_result_round_trip_through_files(demo_analysis, tmp_path: Path) -> None:
    a = demo_analysis
    cells = a.cells_in.cells.reset_index(drop=True)
    centres = tiling.cell_centres(cells, a.cell_snaps)
    tiles = list(tiling.partition(a.cfg, a.networks, centres, a.cell_snaps, a.facilities, a.fac_snaps,
                                  tile_size_m=4000.0, skip=a.not_assessed))
    t0 = tiles[1]
    back = tiling.TileInput.load(t0.save(tmp_path / "t.npz"))
    r1, r2 = tiling.solve_tile(t0), tiling.solve_tile(back)
    r3 = tiling.TileResult.load(r2.save(tmp_path / "t.parquet"))
    for s in r1.time_s:
        np.testing.assert_array_equal(r1.time_s[s], r3.time_s[s])
        np.testing.assert_array_equal(r1.source_row[s], r3.source_row[s])
    np.testing.assert_array_equal(r1.cells, r3.cells)
    # a tile that snaps its own cells carries its roads' geometry through the file, and its snaps back
    own = list(tiling.partition(a.cfg, a.networks, centres, None, a.facilities, a.fac_snaps,
                                tile_size_m=4000.0, skip=a.not_assessed))[1]
    s1 = tiling.solve_tile(own)
    s3 = tiling.TileResult.load(tiling.solve_tile(tiling.TileInput.load(own.save(tmp_path / "o.npz")))
                                .save(tmp_path / "o.parquet"))
    assert set(s1.snaps) == set(a.networks) == set(s3.snaps)
    for mode in s1.snaps:
        for f in tiling.SNAP_FIELDS:
            np.testing.assert_array_equal(s1.snaps[mode][f], s3.snaps[mode][f])
        np.testing.assert_array_equal(s1.snaps[mode]["edge"], a.cell_snaps.by_mode[mode].edge[own.cells])
    for s in s1.time_s:
        np.testing.assert_array_equal(s1.time_s[s], r1.time_s[s])
    # with its cell pieces, a tile's partial sums per unit go through the files unchanged
    pieces = tiling.pieces_of(cells, a.cfg, a.study.unit_class)
    pt = list(tiling.partition(a.cfg, a.networks, centres, None, a.facilities, a.fac_snaps,
                               tile_size_m=4000.0, skip=a.not_assessed, pieces=pieces))[1]
    direct = tiling.solve_tile(pt).sums
    out = tmp_path / "tiles" / "p.parquet"
    out.parent.mkdir()
    back_sums = tiling.TileResult.load(tiling.solve_tile(tiling.TileInput.load(pt.save(tmp_path / "p.npz")))
                                       .save(out)).sums
    assert direct is not None and len(direct) > 10 and tiling.sums_path(out).is_file()
    assert tiling.sums_path(out) == tmp_path / "tiles_unit_sums" / "p.parquet"
    pd.testing.assert_frame_equal(direct, back_sums)


@pytest.mark.slow
def test_comoros_tiled_equals_untiled() -> None:
    shared_file("comoros", "osm", "comores-latest-2021-04-08.osm.pbf")
    shared_file("comoros", "population", "com_ppp_2020_UNadj.tif")
    a = _analysis(REPO / "layers" / "comoros" / "coverage.toml")
    cells = a.cells_in.cells.reset_index(drop=True)
    tiled = tiling.tiled_travel_times(a.cfg, a.networks, cells, a.cell_snaps, a.facilities, a.fac_snaps,
                                      tile_size_m=7500.0, skip=a.not_assessed)
    caps = {sid: tiling.service_cap_s(a.cfg, s) for sid, s in a.cfg.services.items()}
    assert assert_same_times(a.times, tiled, caps_s=caps) > 1000
    # the tiles snapping their own cells: bit-identical snaps (real coastlines: cells with no road within
    # a tile's halo are snapped again on the whole island network)
    centres = tiling.cell_centres(cells, a.cell_snaps)
    results = [tiling.solve_tile(t) for t in tiling.partition(a.cfg, a.networks, centres, None, a.facilities,
                                                              a.fac_snaps, tile_size_m=7500.0,
                                                              skip=a.not_assessed)]
    own_snaps = tiling.reduce_snaps(results, cell_ids=a.cell_snaps.cell_ids,
                                    piece_to_cell=a.cell_snaps.piece_to_cell, centres=centres,
                                    networks=a.networks, cell_max_snap_m=a.cfg.snapping.cell_max_snap_m)
    assert_same_snaps(a.cell_snaps, own_snaps)
    assert sum(int(r.snaps["walk"]["uncertain"].sum()) for r in results) > 0
    # per-unit indicators as a reduction over the tiles' sums: identical tables
    assert_tiles_sum_like_the_whole_table(a, tile_size_m=7500.0)


def _straight_road(cfg: Config, fac_x: float, cell_x: float):  # noqa: ANN202
    """A straight two-way road along y = 0 (1 m/s, nodes every 100 m), one facility and one cell on it."""
    xy = np.column_stack([np.arange(0.0, 5001.0, 100.0), np.zeros(51)])
    rng = np.random.default_rng(0)
    net = grid_network(rng, 2, 1.0)  # for the attribute layout only
    eu = np.array([k for i in range(50) for k in (i, i + 1)], dtype=np.int32)
    ev = np.array([k for i in range(50) for k in (i + 1, i)], dtype=np.int32)
    geom = shapely.linestrings(np.stack([xy[eu], xy[ev]], axis=1))
    length = shapely.length(geom)
    net = dataclasses.replace(
        net, node_id=np.arange(51, dtype=np.int64), node_x=xy[:, 0], node_y=xy[:, 1],
        node_component=np.zeros(51, dtype=np.int32), edge_u=eu, edge_v=ev, edge_length_m=length,
        edge_time_s=length / 1.0, edge_reverse=np.arange(100, dtype=np.int64) ^ 1, edge_geometry=geom,
        edge_attrs=pd.DataFrame({"highway": "footway", "name": "", "osmid": np.arange(100), "oneway": False}))
    kind = cfg.services["elderly"].kinds[0]
    fac = pd.DataFrame({"fac_id": ["f0"], "kind": [kind], "childcare_slots": np.nan})
    fs = snap_points(net, np.array([[fac_x, 0.0]]), max_snap_m=1.0)
    cs = snap_points(net, np.array([[cell_x, 0.0]]), max_snap_m=1.0)
    return ({"walk": net}, pd.DataFrame({"cell_id": [0], "x": [cell_x], "y": [0.0]}),
            CellSnaps(cell_ids=np.arange(1), piece_to_cell=np.arange(1), by_mode={"walk": cs}), fac,
            FacilitySnaps(by_mode={"walk": fs}, status=np.array(["ok"], dtype=object)))


def test_a_facility_a_whole_halo_away_counts_and_a_smaller_halo_would_lose_it(monkeypatch) -> None:
    """The halo is tight: a path of 899 s at the fastest speed along a straight road, from a facility
    1.3 km outside the tile's core, is found; with a halo 10 % short it is not (the test can fail)."""
    cfg = walk_only_config(15)
    cfg = dataclasses.replace(cfg, services={"elderly": cfg.services["elderly"]},
                              snapping=dataclasses.replace(cfg.snapping, cell_max_snap_m=1.0,
                                                           facility_max_snap_m=1.0))
    nets, cells, csnaps, fac, fsnaps = _straight_road(cfg, 101.0, 1000.0)  # 899 m at 1 m/s
    untiled = access.travel_times(cfg, nets, csnaps, fac, fsnaps)
    assert untiled.by_service["elderly"].time_s[0] == pytest.approx(899.0)
    tiled = tiling.tiled_travel_times(cfg, nets, cells, csnaps, fac, fsnaps, tile_size_m=500.0)
    assert_same_times(untiled, tiled)  # the cell's tile core starts at 1000 m; the facility is at 101 m
    real = tiling.halo_m
    monkeypatch.setattr(tiling, "halo_m", lambda **kw: 0.9 * real(**kw))
    short = tiling.tiled_travel_times(cfg, nets, cells, csnaps, fac, fsnaps, tile_size_m=500.0)
    assert np.isinf(short.by_service["elderly"].time_s[0])
