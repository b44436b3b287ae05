"""Travel times on a :class:`~coverage.graph.Network`: snapping, multi-source nearest facility,
and the sparse facility x target coverage matrix.

Everything here is a pure function of ``(network, sources, targets, limit)``: no global state, no
caching, inputs never mutated, so a caller can run it county by county on any executor.

Model
-----
A point is *snapped* to the nearest point on the nearest physical road edge (not the nearest node).
Its position is ``(edge, frac)``: a directed edge index and the fraction ``0..1`` along that edge's
geometry from its tail ``u``. Time is uniform along an edge, so the part of the edge from ``u`` to the
snapped point takes ``frac * edge_time_s``. The off-network leg from the point to its snapped position
takes ``dist_m / access_speed_mps`` and is added at BOTH ends (facility and home).

Travel direction is facility -> home (meal delivery); on a one-way edge a facility can only move
towards the edge's head and a home can only be entered from the edge's tail side. Walking networks
are symmetric, so the direction does not matter there.

The shortest paths are ONE pass of scipy's compiled Dijkstra (``min_only=True``) over the network's
CSR augmented with one virtual node per snapped source: the virtual node's out-edges carry the access
time plus the along-edge offset to the edge's head (and to its tail when the twin direction exists).
Targets are then finished exactly in numpy: the best of entering their edge from the tail, from the
head (via the twin) and, when source and target share a physical edge, the direct along-edge time.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra

from coverage.graph import Network

log = logging.getLogger(__name__)

#: points snapped per chunk of :func:`snap_points` (peak memory ~ 1 KB per point of a chunk)
SNAP_CHUNK_POINTS = 131_072

__all__ = [
    "ZERO_TIME_S",
    "NearestResult",
    "Snap",
    "coverage_matrix",
    "nearest_facility_times",
    "snap_points",
]

#: Travel times of exactly 0 s are stored as this value in :func:`coverage_matrix`, because a sparse
#: matrix cannot tell an explicit 0 from "not covered". It is far below any meaningful time.
ZERO_TIME_S = 1e-9


@dataclass(frozen=True, eq=False)
class Snap:
    """Points snapped onto a network (one row per input point, in input order; none dropped).

    Attributes
    ----------
    edge : ndarray[int64]
        Directed edge index the point snapped to, -1 when it is not snapped (beyond ``max_snap_m``
        or no network).
    frac : ndarray[float64]
        Position along ``edge`` from its tail ``u`` (0..1); NaN when not snapped.
    dist_m : ndarray[float64]
        Distance from the point to the nearest road, metres (also for points that were not snapped;
        inf when the network has no edges).
    snapped : ndarray[bool]
        ``dist_m <= max_snap_m``.
    x, y : ndarray[float64]
        The nearest position on the road, metres (also reported for points that were not snapped).
    """

    edge: np.ndarray
    frac: np.ndarray
    dist_m: np.ndarray
    snapped: np.ndarray
    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return int(self.edge.shape[0])

    def take(self, idx: np.ndarray) -> Snap:
        """A new Snap with the rows ``idx`` (any integer or boolean index)."""
        fields = ("edge", "frac", "dist_m", "snapped", "x", "y")
        return Snap(*(np.asarray(getattr(self, f))[idx] for f in fields))


@dataclass(frozen=True, eq=False)
class NearestResult:
    """Result of :func:`nearest_facility_times`.

    Attributes
    ----------
    node_time_s : ndarray[float64], shape (n_nodes,)
        Travel time from the nearest source to each network node, seconds (inf beyond ``limit_s``
        or unreachable).
    node_source : ndarray[int64], shape (n_nodes,)
        Index (into ``sources``) of that nearest source, -1 when unreached.
    target_time_s : ndarray[float64], shape (n_targets,)
        Travel time from the nearest source to each target including both access legs, seconds;
        inf when unreachable, beyond ``limit_s`` or the target is not snapped.
    target_source : ndarray[int64], shape (n_targets,)
        Index into ``sources`` of the nearest source, -1 when none.
    """

    node_time_s: np.ndarray
    node_source: np.ndarray
    target_time_s: np.ndarray
    target_source: np.ndarray


# --------------------------------------------------------------------------------------------------
# Snapping
# --------------------------------------------------------------------------------------------------


def snap_points(net: Network, xy: np.ndarray, *, max_snap_m: float, workers: int = 2) -> Snap:
    """Snap points to the nearest position on the nearest road edge.

    Exact nearest-segment search without an R-tree: every straight segment of every physical edge
    is sampled at spacing ``<= s``, so every point of a segment lies within ``s/2`` of one of its
    samples. If the nearest sample to a point is at distance ``d``, the nearest segment (at some
    distance ``D <= d``) has a sample within ``D + s/2 <= d + s/2``; so the segments owning the
    samples within ``d + s/2`` (a scipy cKDTree k-nearest query, with a radius query for the rare
    points whose k neighbours do not cover that radius) always contain the true nearest one, and
    the exact point-segment distance is then taken in numpy. Ties go to the lowest edge index
    (then the first segment along it).

    Parameters
    ----------
    net : Network
        The network (metric CRS); ``xy`` must be in the same CRS.
    xy : ndarray, shape (n, 2)
        Point coordinates in metres.
    max_snap_m : float
        Points farther than this from every road are kept but marked ``snapped=False`` (edge -1).
    workers : int
        Threads for the cKDTree queries (scipy convention: -1 = all cores).

    Returns
    -------
    Snap
        One row per input point, in input order. ``edge`` is the representative directed edge of
        the physical road (:meth:`Network.physical_edges`); ``frac`` is measured along it (0..1,
        by length of its geometry); ``dist_m`` and ``x``/``y`` (metres) are the exact distance to
        and the nearest point on that road.
    """
    # One piece (~90 lines of code besides the docstring): the candidate search, the exact re-check and
    # the tie rule share the sample buffers; split, they would pass half a dozen arrays back and forth.
    import shapely
    from scipy.spatial import cKDTree

    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    n = xy.shape[0]
    if not np.isfinite(max_snap_m) and max_snap_m != np.inf or max_snap_m < 0:
        raise ValueError(f"max_snap_m={max_snap_m!r}: expected a distance >= 0 in metres")
    edge = np.full(n, -1, dtype=np.int64)
    frac = np.full(n, np.nan)
    dist = np.full(n, np.inf)
    sx = np.full(n, np.nan)
    sy = np.full(n, np.nan)
    phys = net.physical_edges()
    ok = np.isfinite(xy).all(axis=1)
    coords, idx = (shapely.get_coordinates(net.edge_geometry[phys], return_index=True) if phys.size
                   else (np.zeros((0, 2)), np.zeros(0, dtype=np.int64)))
    same = idx[1:] == idx[:-1]
    if n == 0 or not same.any() or not ok.any():
        return Snap(edge, frac, dist, np.zeros(n, dtype=bool), sx, sy)
    # straight segments a -> a + ab, owning physical edge position seg_e, offset along it seg_c
    a = coords[:-1][same]
    ab = coords[1:][same] - a  # a + ab may differ from the end point in the last bit: ends use b
    seg_e = idx[:-1][same]
    seg_len = np.hypot(ab[:, 0], ab[:, 1])
    b = coords[1:][same]
    # canonical orientation (from the lexicographically lower end) for the exact distances below
    flip = (b[:, 0] < a[:, 0]) | ((b[:, 0] == a[:, 0]) & (b[:, 1] < a[:, 1]))
    ca = np.where(flip[:, None], b, a)
    cb = np.where(flip[:, None], a, b)
    cd = cb - ca
    cl2 = np.einsum("ij,ij->i", cd, cd)
    cl2[cl2 == 0] = 1.0  # zero-length segment: t = 0
    seg_c = _offsets_along_edges(seg_e, seg_len)
    edge_len = np.bincount(seg_e, weights=seg_len, minlength=phys.size)
    # ~4 samples per segment on average (memory ~ 5 x segments), never finer than 1 mm
    s = max(float(seg_len.sum()) / (4.0 * seg_len.size), 1e-3)
    n_s = np.ceil(seg_len / s).astype(np.int64) + 1
    seg = np.repeat(np.arange(seg_len.size), n_s)
    t = (np.arange(seg.size) - np.repeat(np.cumsum(n_s) - n_s, n_s)) / np.repeat(n_s - 1, n_s).clip(1)
    samples = a[seg] + t[:, None] * ab[seg]
    tree = cKDTree(samples, balanced_tree=False, compact_nodes=False)
    # the points in chunks: every point's search is independent of the others (bit-identical results),
    # and the candidate arrays (k per point, several floats each) stay ~100 MB however many points
    okrows = np.flatnonzero(ok)
    for c0 in range(0, okrows.size, SNAP_CHUNK_POINTS):
        rows_c = okrows[c0:c0 + SNAP_CHUNK_POINTS]
        p = xy[rows_c]
        k = int(min(12, samples.shape[0]))
        dk, ik = tree.query(p, k=k, workers=workers)
        dk, ik = dk.reshape(p.shape[0], k), ik.reshape(p.shape[0], k)
        radius = dk[:, 0] + s / 2 + 1e-9 * (1.0 + dk[:, 0])  # relative slack for rounding of the samples
        short = (dk[:, -1] <= radius) & (k < samples.shape[0])  # k neighbours may not cover the radius
        m = (dk <= radius[:, None]) & ~short[:, None]
        q, cand = np.nonzero(m)[0], ik[m]
        del dk, ik, m
        if short.any():
            rs = np.flatnonzero(short)
            lists = tree.query_ball_point(p[rs], radius[rs], return_sorted=False, workers=workers)
            cnt = np.fromiter(map(len, lists), np.int64, len(lists))
            q = np.concatenate([q, np.repeat(rs, cnt)])
            cand = np.concatenate([cand, np.concatenate([np.asarray(x, dtype=np.int64) for x in lists])])
            o = np.argsort(q, kind="stable")
            q, cand = q[o], cand[o]
        cs = seg[cand]
        # exact point-segment distance, computed from the canonical end so that a segment and its reverse
        # (duplicate roads) give bit-identical distances; the segment ends are returned exactly
        A, B, D, l2 = ca[cs], cb[cs], cd[cs], cl2[cs]
        tc = np.clip(np.einsum("ij,ij->i", p[q] - A, D) / l2, 0.0, 1.0)
        proj = np.where((tc >= 1.0)[:, None], B, A + tc[:, None] * D)
        tq = np.where(flip[cs], 1.0 - tc, tc)
        dq = np.hypot(p[q, 0] - proj[:, 0], p[q, 1] - proj[:, 1])
        # per point (q is sorted): minimum distance, ties to the lowest segment (= lowest edge index)
        start = np.flatnonzero(np.concatenate([[True], q[1:] != q[:-1]]))
        dmin = np.minimum.reduceat(dq, start)
        tie = np.where(dq == np.repeat(dmin, np.diff(np.append(start, q.size))), cs, np.iinfo(np.int64).max)
        best_seg = np.minimum.reduceat(tie, start)
        # position of each winning candidate: first row with the winning segment in its group
        win = np.flatnonzero(tie == np.repeat(best_seg, np.diff(np.append(start, q.size))))
        win = win[np.concatenate([[True], q[win][1:] != q[win][:-1]])]
        rows = rows_c[q[win]]
        e_pos = seg_e[cs[win]]
        total = edge_len[e_pos]
        f = np.where(total > 0,
                     (seg_c[cs[win]] + tq[win] * seg_len[cs[win]]) / np.where(total > 0, total, 1.0), 0.0)
        dist[rows] = dq[win]
        sx[rows] = proj[win, 0]
        sy[rows] = proj[win, 1]
        near = dq[win] <= max_snap_m
        edge[rows[near]] = phys[e_pos[near]]
        frac[rows[near]] = np.clip(f[near], 0.0, 1.0)
    snapped = dist <= max_snap_m
    log.info("Snapped %d of %d points to %s network edges (max %.0f m)", int(snapped.sum()), n,
             net.mode, max_snap_m)
    return Snap(edge, frac, dist, snapped, sx, sy)


def _offsets_along_edges(seg_e: np.ndarray, seg_len: np.ndarray) -> np.ndarray:
    """Per segment (grouped by edge, ``seg_e`` ascending), the length of the segments before it on its
    edge, summed edge by edge from the edge's start: the same bits whatever other edges the network
    holds (a tile's clipped network snaps a point exactly as the whole network does; a cumulative sum
    over every segment would carry the rounding of the edges before it)."""
    n = seg_e.size
    seg_c = np.zeros(n)
    if n == 0:
        return seg_c
    pos = np.arange(n) - np.searchsorted(seg_e, seg_e, side="left")  # position of a segment on its edge
    order = np.argsort(pos, kind="stable")
    bounds = np.searchsorted(pos[order], np.arange(int(pos.max()) + 2))
    for j in range(1, int(pos.max()) + 1):  # one step per vertex of the longest edge
        i = order[bounds[j]:bounds[j + 1]]
        seg_c[i] = seg_c[i - 1] + seg_len[i - 1]
    return seg_c


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------


def _canonical(net: Network, snap: Snap) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of usable rows and their (representative edge, frac along it)."""
    e = np.asarray(snap.edge, dtype=np.int64)
    usable = (e >= 0) & np.asarray(snap.snapped, dtype=bool)
    f = np.asarray(snap.frac, dtype=float)
    if usable.all():
        use = np.arange(e.shape[0])
    else:
        use = np.flatnonzero(usable)
        e, f = e[use], f[use]
    rev = net.edge_reverse
    non_rep = (rev >= 0) & (rev < np.arange(rev.shape[0]))  # per edge (cheaper than per point)
    flip = non_rep[e]
    if flip.any():  # snap_points already gives representative edges; other Snaps may not
        e = np.where(flip, rev[e], e)
        f = np.where(flip, 1.0 - f, f)
    f = np.maximum(f, 0.0)
    return use, e, np.minimum(f, 1.0, out=f)


def _source_arcs(net: Network, e: np.ndarray, f: np.ndarray, a: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Arcs (source row, node, time) from snapped sources to the ends of their edges."""
    k = np.arange(e.shape[0])
    w = net.edge_time_s[e]
    rev = net.edge_reverse[e]
    has = rev >= 0
    # a source exactly at the tail of a one-way edge IS that node (offset 0)
    tail = has | (f <= 0.0)
    wr = np.where(has, net.edge_time_s[np.where(has, rev, 0)], 0.0)
    rows = np.concatenate([k, k[tail]])
    nodes = np.concatenate([net.edge_v[e], net.edge_u[e][tail]])
    times = np.concatenate([a + (1.0 - f) * w, a[tail] + f[tail] * wr[tail]])
    return rows, nodes, times


def _stable_argsort_nodes(a: np.ndarray, n: int) -> np.ndarray:
    """``np.argsort(a, kind="stable")`` for node indices ``0 <= a < n``, as 16-bit radix sorts.

    numpy's stable sort is a radix sort for 16-bit keys (linear time) but a timsort for wider ones:
    one pass for n <= 65536, else a least-significant-digit pass on the low 16 bits then a stable
    one on the high bits (for 19,000 edges ~20x faster, for 560,000 ~4x).
    """
    if n <= 1 << 16:
        return np.argsort(a.astype(np.uint16), kind="stable")
    if n > 1 << 32:
        return np.argsort(a, kind="stable")
    order = np.argsort((a & 0xFFFF).astype(np.uint16), kind="stable")
    return order[np.argsort((a[order] >> 16).astype(np.uint16), kind="stable")]


def _augmented_csr(net: Network, rows: np.ndarray, nodes: np.ndarray, times: np.ndarray,
                   k: int) -> sp.csr_matrix:
    """The network CSR plus ``k`` virtual source rows (no in-edges), built in one pass from raw arrays.

    Parallel arcs are kept as they are: scipy's csgraph Dijkstra relaxes every stored entry (it only
    SUMS duplicates when a matrix is converted from COO), so the minimum wins, and explicit 0-time
    arcs survive because the matrix is never canonicalised.
    """
    n = net.n_nodes
    eu = net.edge_u
    order = _stable_argsort_nodes(eu, n)
    o2 = np.argsort(rows, kind="stable")
    counts = np.concatenate([np.bincount(eu, minlength=n), np.bincount(rows, minlength=k)])
    indptr = np.zeros(n + k + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    indices = np.concatenate([net.edge_v[order], nodes[o2]]).astype(np.int32, copy=False)
    data = np.concatenate([net.edge_time_s[order], times[o2]]).astype(np.float64, copy=False)
    return sp.csr_matrix((data, indices, indptr), shape=(n + k, n + k))


def _finish_targets(net: Network, node_time: np.ndarray, te: np.ndarray, tf: np.ndarray,
                    tb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Best time to each target from node times (rows of node_time = sources or 1 row).

    Returns (time, which_end) where which_end is 0 (via tail u) or 1 (via head v through the twin).
    """
    rev = net.edge_reverse
    # per EDGE (cheaper than per target): time of the twin direction, 0 for one-way edges
    twin_time = np.where(rev >= 0, net.edge_time_s[np.maximum(rev, 0)], 0.0)
    via_u = node_time[..., net.edge_u[te]] + (tf * net.edge_time_s[te] + tb)
    via_v = node_time[..., net.edge_v[te]] + ((1.0 - tf) * twin_time[te] + tb)
    # a target exactly at the head of a one-way edge IS that node (offset 0); otherwise no entry from v
    blocked = (rev[te] < 0) & (tf < 1.0)
    if blocked.any():
        via_v = np.where(blocked, np.inf, via_v)
    return np.minimum(via_u, via_v), (via_v < via_u).astype(np.int8)


def _same_edge_pairs(net: Network, se: np.ndarray, sf: np.ndarray, sa: np.ndarray,
                     te: np.ndarray, tf: np.ndarray, tb: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Direct along-edge times for (source, target) pairs on the same physical edge."""
    per_edge = np.bincount(se, minlength=net.n_edges)  # sources per edge
    cand = np.flatnonzero(per_edge[te] > 0)  # only targets on an edge that holds a source
    if cand.size == 0:
        z = np.zeros(0, dtype=np.int64)
        return z, z, np.zeros(0)
    order = np.argsort(se, kind="stable")  # sources by edge, then row
    tc = te[cand]
    cnt = per_edge[tc]
    lo = np.cumsum(per_edge, dtype=np.int32)[tc] - cnt  # first position of the edge's sources in order
    if cnt.min() == 1 and cnt.max() == 1:  # usual: one source per edge, one pair per candidate
        ti, si = cand, order[lo]
    else:
        ti = np.repeat(cand, cnt)
        start = np.repeat(lo - np.cumsum(cnt) + cnt, cnt)
        si = order[np.arange(ti.shape[0]) + start]
    e = te[ti]
    s, t = sf[si], tf[ti]
    w = net.edge_time_s
    tbi = tb[ti]
    fwd = np.where(s <= t, sa[si] + (t - s) * w[e] + tbi, np.inf)
    rev = net.edge_reverse[e]
    has = (rev >= 0) & (s >= t)
    bwd = np.full(e.shape[0], np.inf)
    bwd[has] = sa[si][has] + (s[has] - t[has]) * w[rev[has]] + tbi[has]
    return si, ti, np.minimum(fwd, bwd)


#: Stand-in for the twin-direction time of a one-way edge when finishing targets: a target inside a
#: one-way edge cannot be entered from its head, and ``(1 - frac) * _NO_TWIN_S`` is then at least
#: ~1e284 s (frac < 1 is at most 1 - 2**-53), far beyond :data:`_MAX_TIME_S`; a target exactly at the
#: head (frac == 1) gets exactly 0 s, as the head node itself.
_NO_TWIN_S = 1e300
#: No real travel time comes near this; anything above it is "not reached" even with limit_s=inf.
_MAX_TIME_S = 1e280


def _complete_targets(net: Network, node_time: np.ndarray, node_src: np.ndarray, targets: Snap,
                      s_use: np.ndarray, se: np.ndarray, sf: np.ndarray, sa: np.ndarray, *,
                      access_speed_mps: float, limit_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Finish every target from the node times: (time s, source index or -1) per target row.

    Same result as :func:`_finish_targets` plus the same-edge direct pairs, organised for the
    100,000-target scale where every pass over the targets and every fresh target-sized array
    (page faults) counts: all per-edge quantities are looked up in tables of ``n_edges + 1``
    entries (the last one a sentinel for unusable rows: edge -1, never reached), so each target
    costs a handful of ``np.take`` gathers and in-place arithmetic on four target-sized buffers.
    A target on a non-representative edge is finished on that edge directly (both directions are
    symmetric), so no canonicalisation pass is needed; only the few targets on an edge that holds
    a source are canonicalised, for the direct along-edge times.
    """
    # One piece: the hot path of every travel-time call (see the benchmark); its three target-sized
    # buffers are filled in place, and splitting it would copy them between functions.
    nt = len(targets)
    m = net.n_edges
    e = np.asarray(targets.edge, dtype=np.int64)
    f = np.asarray(targets.frac, dtype=np.float64)
    snapped = np.asarray(targets.snapped, dtype=bool)
    if not (snapped.all() and (m == 0 or e.min() >= -1)):
        e = np.where(snapped & (e >= 0), e, -1)  # -1 -> the sentinel row of every table
    if not (np.fmin.reduce(f) >= 0.0 and np.fmax.reduce(f) <= 1.0):
        f = np.clip(f, 0.0, 1.0)  # NaN stays NaN (only on unusable rows)
    d = np.asarray(targets.dist_m, dtype=np.float64)
    # per-edge tables (n_edges + 1), cheap next to the per-target work
    w = net.edge_time_s
    rev = net.edge_reverse
    has = rev >= 0
    eu = net.edge_u.astype(np.intp)  # gathers with int32 indices take a slow casting path
    ev = net.edge_v.astype(np.intp)
    # (built with out= into one buffer each: fresh arrays of this size cost page faults)
    t_wr = np.take(w, rev, mode="wrap")  # twin time; -1 wraps to a garbage entry, replaced:
    np.copyto(t_wr, _NO_TWIN_S, where=~has)
    t_nu = np.empty(m + 1)
    np.take(node_time, eu, out=t_nu[:m], mode="wrap")
    t_nu[m] = np.inf  # the sentinel: rows with edge -1 are never reached (also via the head)
    t_nv = np.empty(m + 1)
    np.take(node_time, ev, out=t_nv[:m], mode="wrap")
    t_nv[m] = np.inf
    src_uv = np.empty(2 * m + 2, dtype=np.int64)
    np.take(node_src, eu, out=src_uv[:m], mode="wrap")
    np.take(node_src, ev, out=src_uv[m + 1:-1], mode="wrap")
    src_uv[m] = src_uv[-1] = -1
    # per target: A = (f * w + tb) + node_time[u] (via the tail), B = ((1 - f) * w_twin + tb) +
    # node_time[v] (via the head), in three target-sized buffers (t_time, t_src and one scratch;
    # t_src is float scratch until the source ids go in). mode="wrap": take() with out= and the
    # default mode="raise" copies through a fresh buffer; every index is in -1..n_edges-1 here and
    # -1 wraps to the sentinel.
    t_time = np.divide(d, access_speed_mps)  # tb, the home-side access time
    t_src = np.empty(nt, dtype=np.int64)
    a = t_src.view(np.float64)
    b = np.take(t_wr, e, mode="wrap")  # w and t_wr have no sentinel: t_nu/t_nv make those rows inf
    np.subtract(1.0, f, out=a)
    b *= a
    b += t_time
    np.take(w, e, out=a, mode="wrap")
    a *= f
    a += t_time
    np.take(t_nu, e, out=t_time, mode="wrap")
    a += t_time
    np.take(t_nv, e, out=t_time, mode="wrap")
    b += t_time
    from_v = np.less(b, a)
    np.minimum(a, b, out=t_time)
    # source of the winning side: one gather at e + from_v * (n_edges + 1)
    idx = b.view(np.int64)
    np.multiply(from_v, m + 1, out=idx)
    idx += e
    np.take(src_uv, idx, out=t_src, mode="wrap")
    # same physical edge as a source: the direct along-edge time (few targets)
    on = np.zeros(m + 1, dtype=bool)
    on[se] = True
    on[rev[se][rev[se] >= 0]] = True
    cand = np.flatnonzero(np.take(on, e))
    if cand.size:
        ce, cf = e[cand], f[cand]
        flip = has[ce] & (rev[ce] < ce)
        ce = np.where(flip, rev[ce], ce)
        cf = np.where(flip, 1.0 - cf, cf)
        si, ti, direct = _same_edge_pairs(net, se, sf, sa, ce, cf, d[cand] / access_speed_mps)
        if ti.size:
            # best direct pair per target (ti is sorted; ties to the first = lowest source row),
            # then compare with the via-node time
            first = np.ones(ti.shape[0], dtype=bool)
            first[1:] = ti[1:] != ti[:-1]
            if not first.all():
                start = np.flatnonzero(first)
                size = np.diff(np.append(start, ti.shape[0]))
                best = np.minimum.reduceat(direct, start)
                is_best = direct == np.repeat(best, size)
                pos = np.flatnonzero(is_best)
                first = np.zeros(ti.shape[0], dtype=bool)
                first[pos[np.searchsorted(pos, start)]] = True
            rows = cand[ti[first]]
            dbest = direct[first]
            better = dbest < t_time[rows]
            t_time[rows[better]] = dbest[better]
            t_src[rows[better]] = s_use[si[first][better]]
    bad = np.less_equal(t_time, min(limit_s, _MAX_TIME_S))
    np.logical_not(bad, out=bad)  # also NaN (unusable rows)
    bad = np.flatnonzero(bad)
    t_time[bad] = np.inf
    t_src[bad] = -1
    return t_time, t_src


def _check_speed(access_speed_mps: float) -> None:
    if not access_speed_mps > 0:
        raise ValueError(f"access_speed_mps={access_speed_mps!r}: expected a speed > 0 in m/s "
                         f"(walk.access_speed_mps / delivery.access_speed_mps in coverage.toml)")


# --------------------------------------------------------------------------------------------------
# Multi-source nearest facility
# --------------------------------------------------------------------------------------------------


def nearest_facility_times(net: Network, sources: Snap, targets: Snap, *, access_speed_mps: float,
                           limit_s: float = np.inf) -> NearestResult:
    """Travel time from the nearest source (facility) to every node and every target (home/cell).

    Parameters
    ----------
    net : Network
    sources, targets : Snap
        Snapped facilities and targets; rows that are not snapped are ignored (targets get inf).
    access_speed_mps : float
        Speed of the off-network legs (point to its snapped road position), m/s.
    limit_s : float
        Search radius in seconds; anything slower is inf.

    Returns
    -------
    NearestResult
        ``node_time_s``/``node_source`` per node, ``target_time_s``/``target_source`` per target
        (indices into ``sources``, -1 when none). Times are seconds.
    """
    _check_speed(access_speed_mps)
    n = net.n_nodes
    nt = len(targets)
    node_time = np.full(n, np.inf)
    node_src = np.full(n, -1, dtype=np.int64)
    s_use, se, sf = _canonical(net, sources)
    k = s_use.shape[0]
    if k == 0:
        return NearestResult(node_time, node_src, np.full(nt, np.inf), np.full(nt, -1, dtype=np.int64))
    sa = np.asarray(sources.dist_m, dtype=float)[s_use] / access_speed_mps
    rows, nodes, times = _source_arcs(net, se, sf, sa)
    g = _augmented_csr(net, rows, nodes, times, k)
    dist, _pred, srcs = dijkstra(g, directed=True, indices=np.arange(n, n + k), min_only=True,
                                 limit=limit_s, return_predecessors=True)
    node_time = dist[:n].copy()
    reached = np.isfinite(node_time) & (srcs[:n] >= n)
    node_src[reached] = s_use[srcs[:n][reached] - n]
    node_time[~reached] = np.inf
    if nt:
        t_time, t_src = _complete_targets(net, node_time, node_src, targets, s_use, se, sf, sa,
                                          access_speed_mps=access_speed_mps, limit_s=limit_s)
    else:
        t_time, t_src = np.full(0, np.inf), np.full(0, -1, dtype=np.int64)
    if log.isEnabledFor(logging.INFO):  # the counts are passes over every node and target
        log.info("Multi-source travel times from %d sources: %d of %d nodes and %d of %d targets reached "
                 "(limit %s s)", k, int(np.isfinite(node_time).sum()), n, int(np.isfinite(t_time).sum()),
                 nt, limit_s)
    return NearestResult(node_time, node_src, t_time, t_src)


# --------------------------------------------------------------------------------------------------
# Per-source limited searches
# --------------------------------------------------------------------------------------------------


def _per_source_chunks(
    net: Network, sources: Snap, *, access_speed_mps: float, limit_s: float, max_cells: int = 20_000_000,
    extra_cols: int = 0
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Yield (source rows, s_use, se, sf, sa, dist matrix (chunk, n_nodes)) of limited single-source searches.

    Shared by :func:`coverage_matrix` and :mod:`coverage.isochrones`. Chunked so the dense
    (chunk x (n_nodes + extra_cols)) working arrays stay under ``max_cells`` floats.
    """
    s_use, se, sf = _canonical(net, sources)
    k = s_use.shape[0]
    if k == 0:
        return
    n = net.n_nodes
    sa = np.asarray(sources.dist_m, dtype=float)[s_use] / access_speed_mps
    rows, nodes, times = _source_arcs(net, se, sf, sa)
    g = _augmented_csr(net, rows, nodes, times, k)
    chunk = max(1, min(k, max_cells // max(n + k + extra_cols, 1)))
    for a in range(0, k, chunk):
        b = min(k, a + chunk)
        d = dijkstra(g, directed=True, indices=np.arange(n + a, n + b), limit=limit_s)
        yield np.arange(a, b), s_use, se, sf, sa, d[:, :n]


#: :func:`coverage_matrix` searches groups of nearby sources on the part of the network within their
#: reach when the network has at least this many nodes (``local=None``)
LOCAL_MIN_NODES = 100_000


def coverage_matrix(net: Network, sources: Snap, targets: Snap, *, access_speed_mps: float,
                    limit_s: float, local: bool | None = None) -> sp.csr_matrix:
    """Sparse source x target travel-time matrix, entries only where time <= ``limit_s``.

    Parameters
    ----------
    net, sources, targets, access_speed_mps
        As in :func:`nearest_facility_times`.
    limit_s : float
        Coverage radius in seconds (finite); covered means time <= limit_s (inclusive).
    local : bool or None
        Search each group of nearby sources on the subnetwork within their reach (:func:`_local_pairs`:
        the same matrix, bit for bit; scipy's Dijkstra returns dense sources x nodes arrays, so searches
        on the whole network cost sources x nodes). None: when ``net`` has at least
        :data:`LOCAL_MIN_NODES` nodes and its nodes have coordinates. ``False`` for a network without
        node coordinates.

    Returns
    -------
    scipy.sparse.csr_matrix, shape (len(sources), len(targets))
        Travel time in seconds for every (source, target) pair within ``limit_s``. A time of
        exactly 0 s (target at the facility's own snapped position, no access legs) is stored as
        :data:`ZERO_TIME_S` so that it is not confused with "not covered". Rows of sources that are
        not snapped are empty.
    """
    _check_speed(access_speed_mps)
    if not np.isfinite(limit_s) or limit_s < 0:
        raise ValueError(f"limit_s={limit_s!r}: coverage_matrix needs a finite radius >= 0 in seconds")
    ns, nt = len(sources), len(targets)
    if local is None:
        local = net.n_nodes >= LOCAL_MIN_NODES and bool(np.any(net.node_x != 0) or np.any(net.node_y != 0))
    r, c, v = (_local_pairs if local else _pairs)(net, sources, targets, access_speed_mps=access_speed_mps,
                                                  limit_s=limit_s)
    o = np.lexsort((c, r))
    m = sp.csr_matrix((v[o], (r[o], c[o])), shape=(ns, nt))
    log.info("Coverage matrix %d x %d within %.0f s: %d pairs%s", ns, nt, limit_s, m.nnz,
             " (local searches)" if local else "")
    return m


def _pairs(net: Network, sources: Snap, targets: Snap, *, access_speed_mps: float, limit_s: float
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(source row, target row, time) of every pair within ``limit_s``, one entry per pair: searches on
    the whole of ``net``."""
    t_use, te, tf = _canonical(net, targets)
    tb = np.asarray(targets.dist_m, dtype=float)[t_use] / access_speed_mps
    out_r: list[np.ndarray] = []
    out_c: list[np.ndarray] = []
    out_v: list[np.ndarray] = []
    for chunk_rows, s_use, _se, _sf, _sa, d in _per_source_chunks(
            net, sources, access_speed_mps=access_speed_mps, limit_s=limit_s, extra_cols=2 * t_use.size):
        if t_use.size == 0:
            break
        # only the targets on an edge with a reached end (the others are beyond the limit for every
        # source of the chunk): the dense finish is (chunk, near targets), not (chunk, all targets)
        reached = np.isfinite(d).any(axis=0)
        near = np.flatnonzero(reached[net.edge_u[te]] | reached[net.edge_v[te]])
        if near.size == 0:
            continue
        tt, _ = _finish_targets(net, d, te[near], tf[near], tb[near])  # (chunk, near)
        r, c = np.nonzero(tt <= limit_s)
        out_r.append(s_use[chunk_rows[r]])
        out_c.append(t_use[near[c]])
        out_v.append(tt[r, c])
    # same-edge direct pairs (all sources at once)
    s_use, se, sf = _canonical(net, sources)
    if s_use.size and t_use.size:
        sa = np.asarray(sources.dist_m, dtype=float)[s_use] / access_speed_mps
        si, ti, direct = _same_edge_pairs(net, se, sf, sa, te, tf, tb)
        ok = direct <= limit_s
        out_r.append(s_use[si[ok]])
        out_c.append(t_use[ti[ok]])
        out_v.append(direct[ok])
    if not out_r:
        z = np.zeros(0, dtype=np.int64)
        return z, z.copy(), np.zeros(0)
    r = np.concatenate(out_r)
    c = np.concatenate(out_c)
    v = np.maximum(np.concatenate(out_v), ZERO_TIME_S)
    # keep the minimum per (source, target) pair (direct vs via-node duplicates)
    o = np.lexsort((v, c, r))
    r, c, v = r[o], c[o], v[o]
    keep = np.ones(r.shape[0], dtype=bool)
    keep[1:] = (r[1:] != r[:-1]) | (c[1:] != c[:-1])
    return r[keep], c[keep], v[keep]


def _ranges(starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """The concatenated ``arange(start, stop)`` of every pair."""
    n = stops - starts
    if n.sum() == 0:
        return np.zeros(0, dtype=np.int64)
    offs = np.repeat(stops - n.cumsum(), n)
    return np.arange(int(n.sum()), dtype=np.int64) + offs


def _local_pairs(net: Network, sources: Snap, targets: Snap, *, access_speed_mps: float, limit_s: float
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_pairs` with each group of nearby sources searched on a subnetwork.

    Why it is exact: a node reached within ``limit_s`` lies within ``reach = limit_s * v_max`` (v_max:
    the fastest edge, length / time) of its source's snapped point, as a road is never shorter than the
    straight line (a margin of 1 % + 10 m covers lengths measured otherwise). Sources are grouped by
    square cells of ``2 * reach``; a group's subnetwork holds every edge with an end within ``reach`` of
    the group's box (with that edge's other end), and the sources' own edges. Every node reached within
    the limit and every edge into it is there, so each such node's time is the same minimum over the
    same candidates as on the whole network (bit for bit); nothing is reached more cheaply in a
    subnetwork. A target is searched in a group when its edge is in the subnetwork (an edge without an
    end within reach is not reached). The subnetwork keeps the edges' order, so representative edges
    and ties are the same.
    """
    z = np.zeros(0, dtype=np.int64)
    s_ok = np.flatnonzero((np.asarray(sources.edge) >= 0) & np.asarray(sources.snapped, dtype=bool))
    t_use, te, tf = _canonical(net, targets)
    if s_ok.size == 0 or t_use.size == 0 or net.n_edges == 0:
        return z, z.copy(), np.zeros(0)
    v_max = float(np.max(net.edge_length_m / net.edge_time_s))
    reach = limit_s * v_max * 1.01 + 10.0
    cell = max(2.0 * reach, 100.0)
    sx, sy = np.asarray(sources.x, float)[s_ok], np.asarray(sources.y, float)[s_ok]
    gkey = np.floor(sx / cell).astype(np.int64) * (1 << 32) + np.floor(sy / cell).astype(np.int64)
    _, group = np.unique(gkey, return_inverse=True)
    group = group.reshape(-1)
    # nodes by bucket (columns of cells, then rows), edges by tail and by head, targets by edge
    bx = np.floor(net.node_x / cell).astype(np.int64)
    by = np.floor(net.node_y / cell).astype(np.int64)
    nkey = bx * (1 << 32) + by
    n_order = np.argsort(nkey, kind="stable")
    n_sorted = nkey[n_order]
    # int64 like the queries: searchsorted would otherwise cast the whole array at every call
    out_order = np.argsort(net.edge_u, kind="stable")
    out_sorted = net.edge_u[out_order].astype(np.int64)
    in_order = np.argsort(net.edge_v, kind="stable")
    in_sorted = net.edge_v[in_order].astype(np.int64)
    t_order = np.argsort(te, kind="stable")
    te_sorted = te[t_order]
    tb_all = np.asarray(targets.dist_m, dtype=float)
    rs: list[np.ndarray] = []
    cs: list[np.ndarray] = []
    vs: list[np.ndarray] = []
    for g in range(int(group.max()) + 1):
        sel = group == g
        rows, gx, gy = s_ok[sel], sx[sel], sy[sel]
        x0, x1, y0, y1 = gx.min() - reach, gx.max() + reach, gy.min() - reach, gy.max() + reach
        cols = np.arange(int(np.floor(x0 / cell)), int(np.floor(x1 / cell)) + 1, dtype=np.int64)
        lo = np.searchsorted(n_sorted, cols * (1 << 32) + int(np.floor(y0 / cell)), "left")
        hi = np.searchsorted(n_sorted, cols * (1 << 32) + int(np.floor(y1 / cell)), "right")
        cand = n_order[_ranges(lo, hi)]
        core = np.sort(cand[(net.node_x[cand] >= x0) & (net.node_x[cand] <= x1) & (net.node_y[cand] >= y0)
                            & (net.node_y[cand] <= y1)])  # sorted queries: searchsorted walks forward
        own = np.asarray(sources.edge, dtype=np.int64)[rows]
        out_e = _ranges(np.searchsorted(out_sorted, core, "left"), np.searchsorted(out_sorted, core, "right"))
        in_e = _ranges(np.searchsorted(in_sorted, core, "left"), np.searchsorted(in_sorted, core, "right"))
        e = np.unique(np.concatenate([out_order[out_e], in_order[in_e], own,
                                      net.edge_reverse[own][net.edge_reverse[own] >= 0]]))
        nodes = np.unique(np.concatenate([net.edge_u[e], net.edge_v[e]]))
        rev = net.edge_reverse[e]
        pos = np.searchsorted(e, np.maximum(rev, 0)).clip(0, e.size - 1)
        sub = Network(mode=net.mode, crs=net.crs, node_id=nodes, node_x=net.node_x[nodes],
                      node_y=net.node_y[nodes], node_component=np.zeros(nodes.size, dtype=np.int32),
                      edge_u=np.searchsorted(nodes, net.edge_u[e]).astype(np.int32),
                      edge_v=np.searchsorted(nodes, net.edge_v[e]).astype(np.int32),
                      edge_length_m=net.edge_length_m[e], edge_time_s=net.edge_time_s[e],
                      edge_reverse=np.where((rev >= 0) & (e[pos] == rev), pos, -1).astype(np.int64),
                      edge_geometry=np.empty(e.size, dtype=object),
                      edge_attrs=pd.DataFrame(index=pd.RangeIndex(e.size)), source="local")
        src = Snap(edge=np.searchsorted(e, own), frac=np.asarray(sources.frac, float)[rows],
                   dist_m=np.asarray(sources.dist_m, float)[rows], snapped=np.ones(rows.size, dtype=bool),
                   x=gx, y=gy)
        tk = t_order[_ranges(np.searchsorted(te_sorted, e, "left"), np.searchsorted(te_sorted, e, "right"))]
        if tk.size == 0:
            continue
        tk.sort()
        tgt = Snap(edge=np.searchsorted(e, te[tk]), frac=tf[tk], dist_m=tb_all[t_use[tk]],
                   snapped=np.ones(tk.size, dtype=bool), x=np.zeros(tk.size), y=np.zeros(tk.size))
        r, c, v = _pairs(sub, src, tgt, access_speed_mps=access_speed_mps, limit_s=limit_s)
        rs.append(rows[r])
        cs.append(t_use[tk[c]])
        vs.append(v)
    if not rs:
        return z, z.copy(), np.zeros(0)
    return np.concatenate(rs), np.concatenate(cs), np.concatenate(vs)
