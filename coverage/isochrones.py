"""Honest isochrones: the road network actually reachable within each threshold, buffered.

An isochrone polygon here is the union of the network segments a facility reaches within the time
budget, INCLUDING the reachable part of partially reached edges (cut where the budget runs out, from
either end, and from the facility's own snapped position), buffered by ``frontage_m`` (the depth of
the buildings along a street that are served from it). No convex or concave hulls: a polygon never
covers a place that is not within ``frontage_m`` of a reached road.

Times come from :mod:`coverage.traveltime` (same model: access leg at the facility, uniform speed
along edges, one-way rules). Per-facility polygons use per-source limited Dijkstra searches run in
chunks; the dissolved polygon per threshold comes straight from the multi-source nearest times (a
point of the network is reached by SOME facility iff its nearest-facility time is within budget),
which is much cheaper than unioning the per-facility polygons.

Speed: the buffers of whole physical edges and their unions per small spatial tile (~2 median edge
lengths) are computed once per call and shared by every facility, threshold and the dissolved layer:
a facility that reaches every edge of a tile in full gets the tile's union instead of the tile's
edge buffers (the same point set, since union is associative), so each facility's own overlay work
is mostly its frontier. The unions of one chunk of facilities run on a thread pool while the next
chunk is searched (GEOS releases the GIL).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from coverage.graph import Network
from coverage.traveltime import Snap, _canonical, _per_source_chunks, nearest_facility_times

log = logging.getLogger(__name__)

__all__ = ["check_isochrones", "isochrone_polygons", "reached_segments"]

#: Arc approximation of the buffers (segments per quarter circle). The arc vertices lie ON the circle,
#: so the polygon is INSIDE the true buffer: it still contains every reached road point (distance 0)
#: and never reaches farther than frontage_m from a reached piece (the QA bound holds). The chord error
#: is at most frontage_m * (1 - cos(pi / 12)) ~ 3.4 % of frontage_m (1.7 m at 50 m) at rounded ends
#: and outer corners only. 3 instead of 4 cuts the grid benchmark's isochrones by ~12 % (25.2 -> 22.1 s).
QUAD_SEGS = 3


# --------------------------------------------------------------------------------------------------
# Reached intervals (arrays only)
# --------------------------------------------------------------------------------------------------


def _out_edges(net: Network) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(net.edge_u, kind="stable")
    ptr = np.concatenate([[0], np.cumsum(np.bincount(net.edge_u, minlength=net.n_nodes))])
    return order, ptr


def _node_intervals(net: Network, rows: np.ndarray, nodes: np.ndarray, t: np.ndarray, budget: np.ndarray,
                    out: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, directed edge, reached fraction from its tail) for every out-edge of a reached node.

    ``budget`` is per row (seconds). Fractions are in (0, 1]; 1 = whole edge.
    """
    order, ptr = out
    cnt = ptr[nodes + 1] - ptr[nodes]
    r = np.repeat(rows, cnt)
    tt = np.repeat(t, cnt)
    start = np.repeat(ptr[nodes] - (np.cumsum(cnt) - cnt), cnt)
    e = order[np.arange(r.shape[0]) + start]
    f = np.minimum((budget[r] - tt) / net.edge_time_s[e], 1.0)
    keep = f > 0
    return r[keep], e[keep], f[keep]


def _source_intervals(net: Network, se: np.ndarray, sf: np.ndarray, sa: np.ndarray, budget: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(row, representative edge, start frac, end frac) reached along each source's own edge."""
    b = budget - sa
    ok = b >= 0
    rows = np.flatnonzero(ok)
    e, s, b = se[ok], sf[ok], b[ok]
    fwd_end = np.minimum(s + b / net.edge_time_s[e], 1.0)
    rev = net.edge_reverse[e]
    has = rev >= 0
    bwd_start = np.where(has, np.maximum(s - b / net.edge_time_s[np.where(has, rev, 0)], 0.0), s)
    return rows, e, bwd_start, fwd_end


def _substrings(geoms: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Vectorised ``shapely.ops.substring(g, a, b, normalized=True)`` for 0 <= a < b <= 1."""
    if geoms.size == 0:
        return np.empty(0, dtype=object)
    coords, idx = shapely.get_coordinates(geoms, return_index=True)
    seg = np.hypot(*np.diff(coords, axis=0).T)
    seg[idx[1:] != idx[:-1]] = 0.0
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    first = np.searchsorted(idx, np.arange(geoms.size))
    total = cum[np.concatenate([first[1:], [idx.size]]) - 1] - cum[first]
    pos = (cum - cum[first][idx]) / np.where(total > 0, total, 1.0)[idx]
    inner = (pos > a[idx]) & (pos < b[idx])
    p0 = shapely.get_coordinates(shapely.line_interpolate_point(geoms, a, normalized=True))
    p1 = shapely.get_coordinates(shapely.line_interpolate_point(geoms, b, normalized=True))
    k = np.arange(geoms.size)
    all_xy = np.concatenate([p0, coords[inner], p1])
    all_id = np.concatenate([k, idx[inner], k])
    rank = np.concatenate([np.zeros(k.size), 1.0 + np.flatnonzero(inner), np.full(k.size, np.inf)])
    o = np.lexsort((rank, all_id))
    return shapely.linestrings(all_xy[o], indices=all_id[o])


def _reached_parts(net: Network, rows: np.ndarray, nodes: np.ndarray, node_t: np.ndarray, budget: np.ndarray,
                   se: np.ndarray, sf: np.ndarray, sa: np.ndarray, out: tuple[np.ndarray, np.ndarray]
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(group, representative edge) of WHOLE reached edges (unique pairs), then (group, LineString) of the
    partly reached pieces (cut where the budget runs out, and along each source's own edge)."""
    r, e, f = _node_intervals(net, rows, nodes, node_t, budget, out)
    full = f >= 1.0
    # a two-way edge reached in full from both ends: keep one direction
    rep = np.where((net.edge_reverse[e] >= 0) & (net.edge_reverse[e] < e), net.edge_reverse[e], e)
    m = np.int64(max(net.n_edges, 1))
    key = np.unique(r[full].astype(np.int64) * m + rep[full])  # 1-D key: much faster than unique(axis=0)
    pr, pe, pf = r[~full], e[~full], f[~full]
    valid = se >= 0
    sr, sedge, s0, s1 = _source_intervals(net, se[valid], sf[valid], sa[valid], budget[np.flatnonzero(valid)])
    sr = np.flatnonzero(valid)[sr]
    keep = s1 > s0
    sr, sedge, s0, s1 = sr[keep], sedge[keep], s0[keep], s1[keep]
    part = _substrings(np.concatenate([net.edge_geometry[pe], net.edge_geometry[sedge]]),
                       np.concatenate([np.zeros(pe.size), s0]), np.concatenate([pf, s1]))
    return key // m, key % m, np.concatenate([pr, sr]).astype(np.int64), part


def reached_segments(net: Network, rows: np.ndarray, nodes: np.ndarray, node_t: np.ndarray,
                     budget: np.ndarray, se: np.ndarray, sf: np.ndarray, sa: np.ndarray,
                     out: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Line pieces of the network reached within ``budget`` (array helper).

    Parameters
    ----------
    rows, nodes, node_t : arrays
        Reached (group row, node index, time s) triples.
    budget : ndarray
        Time budget per group row, seconds.
    se, sf, sa : arrays
        Per group row: the source's representative edge, frac and access time (s); use -1 edge
        for "no own-edge piece" (dissolved groups pass every source as its own row).

    Returns
    -------
    (group row per piece, LineString per piece)
    """
    out = _out_edges(net) if out is None else out
    fg, fe, pg, part = _reached_parts(net, rows, nodes, node_t, budget, se, sf, sa, out)
    return np.concatenate([fg, pg]), np.concatenate([net.edge_geometry[fe], part])


def _parallel(fn: Callable[[Any], Any], items: list[Any], threads: int) -> list[Any]:
    """``[fn(x) for x in items]`` on ``threads`` threads (shapely releases the GIL inside GEOS)."""
    if threads <= 1 or len(items) <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=threads) as ex:
        return list(ex.map(fn, items))


def _split(n: int, threads: int) -> list[np.ndarray]:
    return [p for p in np.array_split(np.arange(n), max(1, min(threads * 4, n))) if p.size]


class _TileCache:
    """Buffers of whole physical edges and unions of those buffers per spatial tile, built lazily and
    shared by every facility, threshold and the dissolved layer of ONE ``isochrone_polygons`` call.

    A facility whose search reaches EVERY edge of a tile in full gets that tile's precomputed union
    instead of the tile's individual edge buffers: the same point set (union is associative), but
    most of the overlay work is done once per tile instead of once per facility reaching it.
    """

    def __init__(self, net: Network, frontage_m: float, threads: int):
        self.frontage_m, self.threads, self.net = frontage_m, threads, net
        phys = net.physical_edges()
        self.phys = phys
        pos = np.full(net.n_edges, -1, dtype=np.int64)
        k = np.arange(phys.size)
        pos[phys] = k
        rev = net.edge_reverse[phys]
        pos[rev[rev >= 0]] = k[rev >= 0]
        self.pos = pos
        length = net.edge_length_m[phys]
        # ~ a few edges per tile: small against a reach area, large enough to merge work
        self.tile_m = float(np.clip(2.0 * np.median(length), 20.0, 500.0)) if phys.size else 100.0
        mid = np.stack([net.node_x[net.edge_u[phys]] + net.node_x[net.edge_v[phys]],
                        net.node_y[net.edge_u[phys]] + net.node_y[net.edge_v[phys]]], axis=1) / 2.0
        txy, tile = np.unique(np.floor(mid / self.tile_m).astype(np.int64), axis=0, return_inverse=True)
        self.tile = tile.ravel()
        self.txy = txy
        self.n_tiles = txy.shape[0]
        self.size = np.bincount(self.tile, minlength=self.n_tiles)
        self.order = np.argsort(self.tile, kind="stable")
        self.start = np.concatenate([[0], np.cumsum(self.size)])
        self.buf = np.empty(phys.size, dtype=object)
        self.has_buf = np.zeros(phys.size, dtype=bool)
        self.tile_poly = np.empty(self.n_tiles, dtype=object)
        self.has_tile = np.zeros(self.n_tiles, dtype=bool)

    def buffer(self, geoms: np.ndarray) -> np.ndarray:
        parts = _split(geoms.size, self.threads)
        out = _parallel(lambda ix: shapely.buffer(geoms[ix], self.frontage_m, quad_segs=QUAD_SEGS), parts,
                        self.threads)
        return np.concatenate(out) if out else np.empty(0, dtype=object)

    def _need_buffers(self, pos: np.ndarray) -> None:
        pos = np.unique(pos[~self.has_buf[pos]])
        if pos.size:
            self.buf[pos] = self.buffer(self.net.edge_geometry[self.phys[pos]])
            self.has_buf[pos] = True

    def _need_tiles(self, tiles: np.ndarray) -> None:
        tiles = np.unique(tiles[~self.has_tile[tiles]])
        if not tiles.size:
            return
        members = [self.order[self.start[t]:self.start[t + 1]] for t in tiles]
        self._need_buffers(np.concatenate(members))
        polys = _parallel(lambda ix: [shapely.union_all(self.buf[members[i]]) for i in ix],
                          _split(tiles.size, self.threads), self.threads)
        self.tile_poly[tiles] = np.array([p for chunk in polys for p in chunk] + [None], dtype=object)[:-1]
        self.has_tile[tiles] = True

    def items(self, full_group: np.ndarray, full_edge: np.ndarray, part_group: np.ndarray, part: np.ndarray,
              *, with_xy: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(group, buffered polygon, tile xy) whose union per group is the buffered reached network."""
        fp = self.pos[full_edge]
        ft = self.tile[fp]
        key = full_group * self.n_tiles + ft
        uk, cnt = np.unique(key, return_counts=True)
        complete = uk[cnt == self.size[uk % self.n_tiles]]
        whole = np.isin(key, complete)
        ct = complete % self.n_tiles
        self._need_tiles(ct)
        self._need_buffers(fp[~whole])
        group = np.concatenate([complete // self.n_tiles, full_group[~whole], part_group])
        geoms = np.concatenate([self.tile_poly[ct], self.buf[fp[~whole]], self.buffer(part)])
        if not with_xy:
            return group, geoms, None
        if part.size:
            mid = shapely.get_coordinates(shapely.line_interpolate_point(part, 0.5, normalized=True))
            part_xy = np.floor(mid / self.tile_m).astype(np.int64)
        else:
            part_xy = np.zeros((0, 2), np.int64)
        txy = np.concatenate([self.txy[ct], self.txy[ft[~whole]], part_xy])
        return group, geoms, txy


def _union_groups_async(ex: ThreadPoolExecutor | None, group: np.ndarray, geoms: np.ndarray, n_groups: int,
                        *, threads: int = 2) -> Callable[[], np.ndarray]:
    """Start ``union_all`` of ``geoms`` per group on ``ex`` (inline when None); returns a function that
    waits and gives one polygon per group (empty polygon for groups with none)."""
    result = np.full(n_groups, shapely.Polygon(), dtype=object)
    if geoms.size == 0:
        return lambda: result
    o = np.argsort(group, kind="stable")
    g, gm = group[o], geoms[o]
    present, start = np.unique(g, return_index=True)
    stop = np.concatenate([start[1:], [g.size]])
    parts = _split(present.size, threads)

    def work(ix: np.ndarray) -> list:
        return [shapely.union_all(gm[start[i]:stop[i]]) for i in ix]

    futures = [ex.submit(work, ix) for ix in parts] if ex is not None else None
    done = [] if ex is not None else [work(ix) for ix in parts]

    def collect() -> np.ndarray:
        out = [f.result() for f in futures] if futures is not None else done
        result[present] = np.array([p for chunk in out for p in chunk] + [None], dtype=object)[:-1]
        return result

    return collect


def _union_groups(group: np.ndarray, geoms: np.ndarray, n_groups: int, *, threads: int = 2) -> np.ndarray:
    """``union_all`` of ``geoms`` per group (empty polygon for groups with none), on ``threads`` threads."""
    if threads <= 1:
        return _union_groups_async(None, group, geoms, n_groups, threads=1)()
    with ThreadPoolExecutor(max_workers=threads) as ex:
        return _union_groups_async(ex, group, geoms, n_groups, threads=threads)()


def _check_inputs(sources: Snap, source_ids: Sequence[str], thresholds_s: Sequence[float],
                  access_speed_mps: float, frontage_m: float) -> None:
    problems = []
    if len(source_ids) != len(sources):
        problems.append(f"source_ids has {len(source_ids)} ids for {len(sources)} sources "
                        f"(give one id per source)")
    bad = [t for t in thresholds_s if not (np.isfinite(t) and t > 0)]
    if bad or not len(thresholds_s):
        problems.append(f"thresholds_s={list(thresholds_s)!r}: expected finite thresholds > 0 in seconds")
    if not access_speed_mps > 0:
        problems.append(f"access_speed_mps={access_speed_mps!r}: expected a speed > 0 in m/s")
    if not frontage_m > 0:
        problems.append(f"frontage_m={frontage_m!r}: expected a buffer distance > 0 in metres "
                        "(isochrones.frontage_m in coverage.toml)")
    if problems:
        raise ValueError("isochrone_polygons: " + "; ".join(problems))


def isochrone_polygons(net: Network, sources: Snap, *, source_ids: Sequence[str],
                       thresholds_s: Sequence[float], access_speed_mps: float, frontage_m: float,
                       service: str = "", threads: int = 2) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Network-based isochrone polygons per facility and dissolved per threshold.

    Parameters
    ----------
    net : Network
    sources : Snap
        Snapped facilities; rows that are not snapped get no polygon (they are reported by the
        snapping step, not here).
    source_ids : sequence of str
        ``fac_id`` per source row.
    thresholds_s : sequence of float
        Time budgets, seconds (travel time <= budget is covered, inclusive).
    access_speed_mps : float
        Speed of the leg from the facility to its snapped road position, m/s.
    frontage_m : float
        Buffer around reached road pieces, metres (arcs approximated with :data:`QUAD_SEGS`
        segments per quarter circle, vertices ON the circle, so the polygon never reaches farther
        than ``frontage_m`` from a reached piece and always contains every reached piece).
    service : str
        Value of the ``service`` column.
    threads : int
        Threads for the GEOS buffering and unions (shapely releases the GIL).

    Returns
    -------
    per_facility : GeoDataFrame
        Columns ``fac_id``, ``service``, ``threshold_min``, ``geometry`` (Polygon/MultiPolygon in
        ``net.crs``); one row per snapped facility and threshold that reaches any road.
    dissolved : GeoDataFrame
        Columns ``service``, ``threshold_min``, ``geometry``; one row per threshold.
    """
    _check_inputs(sources, source_ids, thresholds_s, access_speed_mps, frontage_m)
    ids = np.asarray(list(source_ids), dtype=object)
    ths = np.asarray(sorted(float(t) for t in thresholds_s))
    lmax = float(ths[-1])
    out = _out_edges(net)
    nth = ths.size
    cache = _TileCache(net, frontage_m, threads)

    # per facility: one limited search per source (chunked), all thresholds from the same search
    fac_rows: list[np.ndarray] = []
    fac_th: list[np.ndarray] = []
    fac_geom: list[np.ndarray] = []
    # the unions of one chunk run on the pool while the next chunk is searched and cut (pipelined)
    with ThreadPoolExecutor(max_workers=max(1, threads)) as ex:
        pending = []
        for cr, s_use, se, sf, sa, d in _per_source_chunks(net, sources, access_speed_mps=access_speed_mps,
                                                           limit_s=lmax, max_cells=5_000_000):
            r, nodes = np.nonzero(np.isfinite(d))
            t = d[r, nodes]
            m = cr.size
            # group = local row * nth + threshold index
            gr = np.repeat(r[None, :] * nth, nth, axis=0) + np.arange(nth)[:, None]
            fg, fe, pg, part = _reached_parts(
                net, gr.ravel(), np.tile(nodes, nth), np.tile(t, nth), np.tile(ths, m),
                np.repeat(se[cr], nth), np.repeat(sf[cr], nth), np.repeat(sa[cr], nth), out)
            group, geoms, _ = cache.items(fg, fe, pg, part, with_xy=False)
            pending.append((cr, s_use, _union_groups_async(ex, group, geoms, m * nth, threads=threads)))
        for cr, s_use, collect in pending:
            polys = collect()
            k = np.flatnonzero(~shapely.is_empty(polys))
            fac_rows.append(s_use[cr[k // nth]])
            fac_th.append(ths[k % nth])
            fac_geom.append(polys[k])
    if fac_rows:
        rows = np.concatenate(fac_rows)
        th = np.concatenate(fac_th)
        geo = np.concatenate(fac_geom)
        o = np.lexsort((rows, th))
        per = gpd.GeoDataFrame({"fac_id": ids[rows[o]].astype(str), "service": service,
                                "threshold_min": th[o] / 60.0}, geometry=geo[o], crs=net.crs)
    else:
        per = gpd.GeoDataFrame({"fac_id": pd.Series([], dtype=str), "service": pd.Series([], dtype=str),
                                "threshold_min": pd.Series([], dtype=float)},
                               geometry=gpd.GeoSeries([], crs=net.crs), crs=net.crs)

    # dissolved: multi-source nearest times (one search), every source's own edge as its own row
    res = nearest_facility_times(net, sources, Snap(*(np.zeros(0),) * 6), access_speed_mps=access_speed_mps,
                                 limit_s=lmax)
    s_use, se, sf = _canonical(net, sources)
    sa = np.asarray(sources.dist_m, dtype=float)[s_use] / access_speed_mps
    nodes = np.flatnonzero(np.isfinite(res.node_time_s))
    t = res.node_time_s[nodes]
    diss = []
    n_src = s_use.size
    for L in ths:
        # group 0 = node-based pieces, groups 1..n_src = each source's own edge (all map to group 0)
        fg, fe, pg, part = _reached_parts(net, np.zeros(nodes.size, dtype=np.int64), nodes, t,
                                          np.full(n_src + 1, L), np.concatenate([[-1], se]),
                                          np.concatenate([[0.0], sf]), np.concatenate([[0.0], sa]), out)
        _, geoms, txy = cache.items(np.zeros(fg.size, dtype=np.int64), fe, np.zeros(pg.size, dtype=np.int64),
                                    part)
        assert txy is not None  # with_xy=True
        diss.append(_dissolve(geoms, txy, cache.tile_m, threads=threads))
    dissolved = gpd.GeoDataFrame({"service": service, "threshold_min": ths / 60.0},
                                 geometry=np.array(diss, dtype=object), crs=net.crs)
    log.info("Isochrones for %d facilities x %d thresholds: %d polygons (%s)", len(sources), nth, len(per),
             service or "no service name")
    return per, dissolved


def _dissolve(geoms: np.ndarray, txy: np.ndarray, tile_m: float, *, threads: int = 2,
              block_m: float = 5000.0) -> shapely.Geometry:
    """Union of many polygons: unioned per spatial block (``txy`` = tile coordinates), then the blocks."""
    if geoms.size == 0:
        return shapely.Polygon()
    _, block = np.unique(txy // max(1, round(block_m / tile_m)), axis=0, return_inverse=True)
    block = block.ravel()
    polys = _union_groups(block, geoms, int(block.max()) + 1, threads=threads)
    return shapely.union_all(polys) if polys.size > 1 else polys[0]


# --------------------------------------------------------------------------------------------------
# QA
# --------------------------------------------------------------------------------------------------


def check_isochrones(
    net: Network, sources: Snap, per_facility: gpd.GeoDataFrame, *, source_ids: Sequence[str],
    access_speed_mps: float, frontage_m: float, sample_m: float = 10.0, tol_m: float = 0.5,
    max_facilities: int | None = 50, seed: int = 0
) -> pd.DataFrame:
    """Check per-facility isochrones against an independent reachability computation.

    For each checked (facility, threshold) polygon P:

    1. The roads within a Euclidean bound of the facility are sampled every ``sample_m`` along each
       edge, and each sample's exact travel time is computed with
       :func:`coverage.traveltime.nearest_facility_times` for this single facility (samples are
       targets with no access leg). Every reached sample (time <= threshold) must lie in P
       (to 1 mm): nothing reachable is missing.
    2. P itself is sampled (its boundary densified to ``sample_m`` plus an interior grid of spacing
       ``sample_m``); each sample's distance to the nearest reached road sample (or the facility's
       snapped position) must be <= ``frontage_m + sample_m + tol_m``. Any point of a reached piece
       lies within ``sample_m`` of a reached sample (samples between a reached node and the cut are
       reached), so a sound polygon passes; a hull or an over-long cut fails by the excess. This is a
       discrete directed-Hausdorff check; its resolution is ``sample_m`` (the distance function is
       1-Lipschitz, so a miss between samples is bounded by ~``sample_m``).

    Returns
    -------
    DataFrame
        ``fac_id``, ``threshold_min``, ``n_reached`` (reached samples), ``n_missing`` (reached
        samples outside P), ``max_dist_m`` (largest distance from P's samples to the reached
        samples), ``ok`` (bool). Empty when nothing was checked.
    """
    from scipy.spatial import cKDTree

    ids = np.asarray(list(source_ids), dtype=object)
    rows = np.flatnonzero(np.asarray(sources.snapped, dtype=bool) & (np.asarray(sources.edge) >= 0))
    if max_facilities is not None and rows.size > max_facilities:
        rows = np.sort(np.random.default_rng(seed).choice(rows, max_facilities, replace=False))
    phys = net.physical_edges()
    tree = shapely.STRtree(net.edge_geometry[phys])
    speed_max = float(np.max(net.edge_length_m / net.edge_time_s)) if net.n_edges else 0.0
    by_fac = {(f, round(t, 9)): g for f, t, g in zip(per_facility["fac_id"], per_facility["threshold_min"],
                                                      per_facility.geometry, strict=True)}
    thresholds = sorted(set(per_facility["threshold_min"])) if len(per_facility) else []
    out = []
    for i in rows:
        src = sources.take(np.array([i]))
        for th_min in thresholds:
            L = th_min * 60.0
            poly = by_fac.get((str(ids[i]), round(th_min, 9)), shapely.Polygon())
            radius = max(L - src.dist_m[0] / access_speed_mps, 0.0) * speed_max + 1.0
            cand = phys[tree.query(shapely.box(src.x[0] - radius, src.y[0] - radius, src.x[0] + radius,
                                               src.y[0] + radius))]
            n_s = np.maximum(np.ceil(net.edge_length_m[cand] / sample_m).astype(np.int64), 1) + 1
            e = np.repeat(cand, n_s)
            frac = (np.arange(e.size) - np.repeat(np.cumsum(n_s) - n_s, n_s)) / np.repeat(n_s - 1, n_s)
            pts_xy = shapely.get_coordinates(shapely.line_interpolate_point(net.edge_geometry[e], frac,
                                                                            normalized=True))
            tg = Snap(e, frac, np.zeros(e.size), np.ones(e.size, dtype=bool), pts_xy[:, 0], pts_xy[:, 1])
            tt = nearest_facility_times(net, src, tg, access_speed_mps=access_speed_mps,
                                        limit_s=L).target_time_s
            reached = pts_xy[tt <= L]
            if src.dist_m[0] / access_speed_mps <= L:
                reached = np.vstack([reached, [[src.x[0], src.y[0]]]])
            if reached.size:
                inside = shapely.dwithin(poly, shapely.points(reached), 1e-3)
                n_missing = int((~inside).sum())
            else:
                n_missing = 0
            if shapely.is_empty(poly):
                max_d = 0.0
            else:
                bnd = shapely.get_coordinates(shapely.segmentize(shapely.boundary(poly), sample_m))
                x0, y0, x1, y1 = shapely.bounds(poly)
                gx, gy = (g.ravel() for g in np.meshgrid(np.arange(x0, x1 + sample_m, sample_m),
                                                         np.arange(y0, y1 + sample_m, sample_m)))
                inn = shapely.contains_xy(poly, gx, gy)
                ps = np.vstack([bnd, np.stack([gx[inn], gy[inn]], axis=1)])
                max_d = float(cKDTree(reached).query(ps)[0].max()) if reached.size else np.inf
            ok = n_missing == 0 and max_d <= frontage_m + sample_m + tol_m
            out.append((str(ids[i]), th_min, len(reached), n_missing, max_d, ok))
    rep = pd.DataFrame(out, columns=["fac_id", "threshold_min", "n_reached", "n_missing", "max_dist_m", "ok"])
    if len(rep) and not rep["ok"].all():
        log.warning("Isochrone QA: %d of %d polygons failed", int((~rep["ok"]).sum()), len(rep))
    return rep
