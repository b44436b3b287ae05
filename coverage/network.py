"""Routable road networks, one :class:`coverage.graph.Network` per travel mode.

Sources
-------
* an OSM file (``.osm``, ``.osm.bz2``, ``.osm.pbf``) read with pyosmium: :func:`read_osm_ways`
  (:mod:`coverage.osm_ways`) parses the highway ways ONCE, :func:`network_from_osm_ways` turns them into
  a network for one mode; with a cache root, :func:`build_networks` reads them from the tiled on-disk
  cache of :mod:`coverage.osm_ways` (the file parsed once for every later run, check, plan and
  scenario, and only the tiles near the study area read);
* a municipal road-line layer (shapefile / GeoPackage, often GBK attributes and Chinese road
  classes): :func:`network_from_road_layer`;
* an osmnx download (needs internet), saved as OSM XML and read like an OSM file:
  :func:`fetch_osmnx_network`.

Topology: graph nodes are way (line) endpoints and vertices shared by two or more kept ways;
edges are the way pieces between them, carrying the full polyline geometry in the metric CRS.
Every traversable direction is its own directed edge; two-way twins point at each other through
``edge_reverse``. Weakly-connected components smaller than ``min_component_nodes`` are dropped and
reported; every larger component is kept (an island or a river bank without a bridge stays routable).

Mode rules
----------
walk
    excludes ``highway`` in :data:`WALK_EXCLUDED_HIGHWAYS` (motorways, construction, proposed, ...),
    ``foot=no``, ``area=yes``, and ``access=no/private`` unless ``foot=yes/designated/permissive``.
    Trunk roads are kept unless ``foot=no``. One-way tags are ignored (pedestrians walk both ways)
    but kept in ``edge_attrs["oneway"]``. Speed: ``WalkProfile.speed_mps``.
delivery (e-bike / tricycle)
    excludes ``highway`` in :data:`DELIVERY_EXCLUDED_HIGHWAYS` (motorways and foot-only ways:
    footway, path, steps, pedestrian, corridor, bridleway, ... unless ``bicycle=yes/designated``),
    ``access=no/private`` unless ``bicycle=yes/designated/permissive``. Respects one-way
    (``oneway=yes/true/1``, ``oneway=-1``, ``junction=roundabout/circular``; ``oneway:bicycle=no``
    makes a road two-way for e-bikes) when ``DeliveryProfile.respect_oneway``. Speed: per highway
    class from ``DeliveryProfile.speeds_kph`` else ``default_speed_kph``, capped by a lower numeric
    ``maxspeed``.
"""

from __future__ import annotations

import logging
import math
import os
import re
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import shapely
from pyproj import CRS, Transformer
from scipy.sparse.csgraph import connected_components

from coverage.config import DeliveryProfile, WalkProfile
from coverage.coords import require_projected
from coverage.errors import NetworkInputError
from coverage.graph import MODES, Network
from coverage.osm_ways import (
    WAY_TAGS,
    OsmWays,
    WaysExtent,
    clip_ways,
    osm_cache_extent,
    read_osm_ways,
    read_osm_ways_cached,
    ways_extent,
)

if TYPE_CHECKING:
    from coverage.config import Config

log = logging.getLogger(__name__)

__all__ = [
    "CHINESE_ROAD_CLASSES",
    "DELIVERY_EXCLUDED_HIGHWAYS",
    "WALK_EXCLUDED_HIGHWAYS",
    "WAY_TAGS",
    "NetworkInputError",
    "OsmWays",
    "clip_ways",
    "build_networks",
    "estimate_utm_crs",
    "export_network_gpkg",
    "fetch_osmnx_network",
    "network_from_osm",
    "network_from_osm_ways",
    "network_from_road_layer",
    "read_osm_ways",
]

#: Highway values that are not usable ways at all (planned, demolished, non-ways).
_NOT_A_WAY = frozenset({"construction", "proposed", "planned", "abandoned", "disused", "razed", "raceway",
                        "bus_guideway", "escape", "no", "emergency_bay", "rest_area", "services",
                        "elevator", "bus_stop", "via_ferrata"})
#: Walk mode: highway values pedestrians may not use.
WALK_EXCLUDED_HIGHWAYS = frozenset({"motorway", "motorway_link"}) | _NOT_A_WAY
#: Delivery mode (e-bike / tricycle): motorways and foot-only ways.
DELIVERY_EXCLUDED_HIGHWAYS = frozenset({"motorway", "motorway_link", "footway", "path", "steps",
                                        "pedestrian", "corridor", "bridleway", "platform"}) | _NOT_A_WAY
#: foot-only ways that e-bikes may use when explicitly tagged bicycle=yes/designated
_SHARED_IF_BICYCLE = frozenset({"footway", "path", "pedestrian", "bridleway"})

_YES = frozenset({"yes", "true", "1"})
_ALLOWED = frozenset({"yes", "designated", "permissive"})
_NO_ACCESS = frozenset({"no", "private"})

#: Default road-class table for road-line layers: source class (Chinese or OSM) -> OSM highway.
#: OSM highway values map to themselves (see :data:`_OSM_HIGHWAYS`).
CHINESE_ROAD_CLASSES: dict[str, str] = {
    # 公路 (highway administrative classes)
    "高速公路": "motorway", "高速": "motorway", "高速公路匝道": "motorway_link",
    "国道": "trunk", "省道": "primary", "县道": "secondary", "乡道": "tertiary", "村道": "unclassified",
    "专用公路": "service", "乡村道路": "unclassified", "农村公路": "unclassified",
    # 公路 (technical grades)
    "一级公路": "primary", "二级公路": "secondary", "三级公路": "tertiary", "四级公路": "unclassified",
    "等外公路": "track", "机耕路": "track", "机耕道": "track", "田间道路": "track",
    # 城市道路 (GB 50220 / CJJ 37 urban road classes)
    "城市快速路": "trunk", "快速路": "trunk", "主干路": "primary", "主干道": "primary",
    "城市主干路": "primary", "次干路": "secondary", "次干道": "secondary", "城市次干路": "secondary",
    "支路": "tertiary", "城市支路": "tertiary", "匝道": "primary_link", "街巷": "residential",
    "巷道": "residential", "小巷": "residential", "胡同": "residential", "街坊路": "residential",
    "小区道路": "service", "小区路": "service", "内部道路": "service", "居住区道路": "residential",
    # 慢行 (non-motorised)
    "步行道": "footway", "人行道": "footway", "步道": "footway", "绿道": "cycleway", "步行街": "pedestrian",
    "非机动车道": "cycleway", "自行车道": "cycleway", "台阶": "steps", "梯道": "steps",
}
_OSM_HIGHWAYS = frozenset({
    "motorway", "motorway_link", "trunk", "trunk_link", "primary", "primary_link", "secondary",
    "secondary_link", "tertiary", "tertiary_link", "unclassified", "residential", "living_street",
    "service", "road", "track", "footway", "path", "steps", "pedestrian", "corridor", "bridleway",
    "cycleway", "platform"})

_ONEWAY_FWD = frozenset({"yes", "true", "1", "t", "y", "是", "单向", "正向", "ft"})
_ONEWAY_BWD = frozenset({"-1", "reverse", "反向", "tf"})


# --------------------------------------------------------------------------------------------
# Mode rules
# --------------------------------------------------------------------------------------------


def _parse_maxspeed_kph(value: str) -> float:
    m = re.match(r"^\s*(\d+(?:\.\d+)?)\s*(mph|km/h|kmh|kph)?\s*$", value or "")
    if not m:
        return math.nan
    v = float(m.group(1)) * (1.609344 if m.group(2) == "mph" else 1.0)
    return v if v > 0 else math.nan


def _source_oneway(t: dict[str, str]) -> int:
    """+1 one-way forward, -1 one-way against the drawing direction, 0 two-way (tags only)."""
    ow = t.get("oneway", "").strip().lower()
    if ow in _YES:
        return 1
    if ow in ("-1", "reverse"):
        return -1
    if ow == "no":
        return 0
    if t.get("junction", "") in ("roundabout", "circular") or t.get("highway", "") in ("motorway",):
        return 1
    return 0


def _mode_rules(
    tags: pd.DataFrame, *, mode: str, walk: WalkProfile, delivery: DeliveryProfile
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, int]]:
    """Per way: (keep, direction, source_oneway, speed_mps, excluded-by-reason counts).

    direction: 0 both ways, 1 forward only, -1 backward only (for this mode).
    """
    n = len(tags)
    keep = np.zeros(n, dtype=bool)
    direction = np.zeros(n, dtype=np.int8)
    src_oneway = np.zeros(n, dtype=bool)
    speed = np.zeros(n, dtype=np.float64)
    reasons: dict[str, int] = {}
    records = tags.to_dict("records")
    for i, rec in enumerate(records):
        t = {str(k): (v if isinstance(v, str) else "") for k, v in rec.items()}
        hw = t.get("highway", "")
        ow = _source_oneway(t)
        src_oneway[i] = ow != 0
        access, foot, bicycle = t.get("access", ""), t.get("foot", ""), t.get("bicycle", "")
        reason = ""
        if mode == "walk":
            if hw in WALK_EXCLUDED_HIGHWAYS:
                reason = f"highway={hw}"
            elif foot in ("no", "private", "use_sidepath"):
                reason = f"foot={foot}"
            elif t.get("area", "") == "yes":
                reason = "area=yes"
            elif access in _NO_ACCESS and foot not in _ALLOWED:
                reason = f"access={access}"
            speed[i] = walk.speed_mps
        else:
            shared = hw in _SHARED_IF_BICYCLE and bicycle in ("yes", "designated")
            if hw in DELIVERY_EXCLUDED_HIGHWAYS and not shared:
                reason = f"highway={hw}"
            elif bicycle in ("no", "use_sidepath") and hw != "cycleway":
                reason = f"bicycle={bicycle}"
            elif t.get("area", "") == "yes":
                reason = "area=yes"
            elif access in _NO_ACCESS and bicycle not in _ALLOWED:
                reason = f"access={access}"
            if delivery.respect_oneway and t.get("oneway:bicycle", "") != "no":
                direction[i] = ow
            kph = float(delivery.speeds_kph.get(hw, delivery.default_speed_kph))
            cap = _parse_maxspeed_kph(t.get("maxspeed", ""))
            if not math.isnan(cap) and cap < kph:
                kph = cap
            speed[i] = kph / 3.6
        if reason:
            reasons[reason] = reasons.get(reason, 0) + 1
        else:
            keep[i] = True
    return keep, direction, src_oneway, speed, dict(sorted(reasons.items(), key=lambda kv: -kv[1]))


_MODE_WORDS = {"walk": ("walkable", "no walk network"),
               "delivery": ("drivable for delivery e-bikes", "no delivery network")}
_MODE_FIX = {
    "walk": "use an extract with local streets and footways (a full region extract from "
            "download.geofabrik.de, not a motorway/trunk-only filter) in `network.path`",
    "delivery": "use an extract with roads open to e-bikes (residential, tertiary, service ...; footways "
                "and motorways are not) in `network.path`, or tag shared paths bicycle=yes",
}


def _counts_text(values: Iterable[str], *, prefix: str = "highway=", top: int = 8) -> str:
    """``"highway=motorway 400, highway=trunk 12"`` (most frequent first, the rest summed)."""
    counts = pd.Series(list(values), dtype=object).replace("", "(none)").value_counts()
    parts = [f"{prefix}{k} {int(n)}" for k, n in counts.iloc[:top].items()]
    if len(counts) > top:
        parts.append(f"{len(counts) - top} other values {int(counts.iloc[top:].sum())}")
    return ", ".join(parts)


def _check_usable(highway: np.ndarray, keep: np.ndarray, reasons: dict[str, int], *, mode: str,
                  source: str, what: str = "highway ways") -> str:
    """The problem when no way of ``mode`` survives the mode rules ("" when some do)."""
    if keep.any():
        return ""
    able, none = _MODE_WORDS[mode]
    n = int(highway.shape[0])
    if n == 0:
        return f"{source}: 0 {what}: {none} can be built. Fix: {_MODE_FIX[mode]}"
    excluded = ", ".join(f"{k} {v}" for k, v in reasons.items())
    return (f"{source}: {n} {what} ({_counts_text(highway.astype(str))}), all excluded for {mode} "
            f"({excluded}): nothing {able}, {none}. Fix: {_MODE_FIX[mode]}")


# --------------------------------------------------------------------------------------------
# Topology (shared by OSM and road layers)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class WayEdges:
    """The kept ways of one mode as flat arrays in the metric CRS: the input of the topology step.

    Attributes
    ----------
    way_ptr : ndarray[int64], shape (n_ways + 1,)
        Way ``i`` holds points ``way_ptr[i]:way_ptr[i+1]`` of ``key``, ``x``, ``y``.
    key : ndarray[int64]
        Vertex key of each point; points with one key are one place (a shared vertex joins ways).
    x, y : ndarray[float64]
        Point coordinates (metres, metric CRS).
    osmid, highway, name : ndarray, shape (n_ways,)
        Per way: source id (OSM way id or 1-based row), OSM highway value, street name.
    src_oneway : ndarray[bool], shape (n_ways,)
        The way is one-way by its tags (reported in ``edge_attrs["oneway"]``, whatever the mode).
    direction : ndarray[int8], shape (n_ways,)
        For this mode: 0 both ways, 1 forward only, -1 backward only.
    speed_mps : ndarray[float64], shape (n_ways,)
        Travel speed of this mode (m/s).
    """

    way_ptr: np.ndarray
    key: np.ndarray
    x: np.ndarray
    y: np.ndarray
    osmid: np.ndarray
    highway: np.ndarray
    name: np.ndarray
    src_oneway: np.ndarray
    direction: np.ndarray
    speed_mps: np.ndarray


@dataclass(frozen=True, eq=False)
class _Pieces:
    """Undirected way pieces between graph nodes, and those nodes (internal to :func:`_assemble`)."""

    iu: np.ndarray  # node index of each piece's first point
    iv: np.ndarray  # ... and of its last point
    length: np.ndarray  # metres (>= 0.01)
    geoms: np.ndarray  # LineStrings, drawing direction
    pway: np.ndarray  # way index of each piece
    node_keys: np.ndarray
    node_x: np.ndarray
    node_y: np.ndarray


def _pieces(ways: WayEdges) -> tuple[_Pieces, dict[str, int]]:
    """Split ways at graph nodes (ends and shared vertices); counts of odd pieces as a report."""
    way_ptr, key, x, y = ways.way_ptr, ways.key, ways.x, ways.y
    n_ways = len(way_ptr) - 1
    counts = np.diff(way_ptr)
    way_of = np.repeat(np.arange(n_ways), counts)
    m = key.shape[0]
    is_end = np.zeros(m, dtype=bool)
    if n_ways:
        is_end[way_ptr[:-1]] = True
        is_end[way_ptr[1:] - 1] = True
    uniq, inv, cnt = np.unique(key, return_inverse=True, return_counts=True)
    is_node = is_end | (cnt[inv] >= 2)
    pos = np.flatnonzero(is_node)
    same = way_of[pos[:-1]] == way_of[pos[1:]] if pos.size else np.zeros(0, dtype=bool)
    s, e = pos[:-1][same], pos[1:][same]
    d = np.hypot(np.diff(x), np.diff(y)) if m else np.zeros(0)
    cum = np.concatenate([[0.0], np.cumsum(d)])
    length = cum[e] - cum[s]
    pu, pv = key[s], key[e]
    zero = length <= 1e-6
    degenerate = zero & (pu == pv)
    stats = {"n_self_loops": int(((pu == pv) & ~zero).sum()),
             "n_zero_length_pieces": int((zero & (pu != pv)).sum()),
             "n_degenerate_pieces_dropped": int(degenerate.sum())}
    # distinct nodes at the same spot stay connected with a 1 cm edge (time must be > 0)
    length = np.where(zero, 0.01, length)
    ok = ~degenerate
    s, e, length, pu, pv = s[ok], e[ok], length[ok], pu[ok], pv[ok]
    npts = e - s + 1
    offs = np.concatenate([[0], np.cumsum(npts)[:-1]])
    idx = np.repeat(s - offs, npts) + np.arange(int(npts.sum()))
    geoms = (shapely.linestrings(x[idx], y[idx], indices=np.repeat(np.arange(len(s)), npts))
             if len(s) else np.empty(0, dtype=object))
    # nodes, placed at the first point carrying their key
    node_keys = np.unique(np.concatenate([pu, pv]))
    first_pos = np.full(uniq.shape[0], -1, dtype=np.int64)
    first_pos[inv[::-1]] = np.arange(m)[::-1]
    kpos = first_pos[np.searchsorted(uniq, node_keys)]
    pieces = _Pieces(iu=np.searchsorted(node_keys, pu).astype(np.int32),
                     iv=np.searchsorted(node_keys, pv).astype(np.int32), length=length, geoms=geoms,
                     pway=way_of[s], node_keys=node_keys, node_x=x[kpos], node_y=y[kpos])
    return pieces, stats


@dataclass(frozen=True, eq=False)
class _Components:
    """Weakly-connected components of the pieces (internal to :func:`_assemble`)."""

    n_components: int
    sizes: np.ndarray  # nodes per component (original labels)
    big: np.ndarray  # component is kept (>= min_component_nodes)
    order: np.ndarray  # kept components, largest first
    node_lab: np.ndarray  # per KEPT node: new component label (0 = largest)
    total_length_m: float
    dropped_length_m: float


def _drop_fragments(p: _Pieces, min_component_nodes: int) -> tuple[_Pieces, _Components]:
    """Drop weakly-connected components with fewer than ``min_component_nodes`` nodes."""
    nn = p.node_keys.shape[0]
    adj = sp.csr_matrix((np.ones(len(p.iu)), (p.iu, p.iv)), shape=(nn, nn))
    ncomp, labels = connected_components(adj, directed=True, connection="weak")
    sizes = np.bincount(labels, minlength=ncomp)
    big = sizes >= min_component_nodes
    # relabel kept components by size, largest first
    order = np.argsort(-sizes, kind="stable")
    order = order[big[order]]
    newlab = np.full(ncomp, -1, dtype=np.int32)
    newlab[order] = np.arange(order.shape[0], dtype=np.int32)
    node_lab = newlab[labels]
    piece_keep = node_lab[p.iu] >= 0
    total_len = float(p.length.sum())
    dropped_len = float(p.length[~piece_keep].sum())
    node_keep = node_lab >= 0
    remap = np.cumsum(node_keep) - 1
    kept = _Pieces(iu=remap[p.iu[piece_keep]].astype(np.int32), iv=remap[p.iv[piece_keep]].astype(np.int32),
                   length=p.length[piece_keep], geoms=p.geoms[piece_keep], pway=p.pway[piece_keep],
                   node_keys=p.node_keys[node_keep], node_x=p.node_x[node_keep],
                   node_y=p.node_y[node_keep])
    comps = _Components(n_components=int(ncomp), sizes=sizes, big=big, order=order,
                        node_lab=node_lab[node_keep], total_length_m=total_len, dropped_length_m=dropped_len)
    return kept, comps


def _directed_edges(p: _Pieces, direction: np.ndarray) -> tuple[np.ndarray, ...]:
    """Directed rows: each piece's forward row then its backward twin, piece by piece.

    Returns ``(edge_u, edge_v, length_m, geometry, reverse, way)`` per directed edge.
    """
    pdir = direction[p.pway]
    fw, bw = np.flatnonzero(pdir >= 0), np.flatnonzero(pdir <= 0)
    piece = np.concatenate([fw, bw])
    back = np.concatenate([np.zeros(fw.shape[0], np.int8), np.ones(bw.shape[0], np.int8)])
    o = np.lexsort((back, piece))
    piece, back = piece[o], back[o].astype(bool)
    both = pdir[piece] == 0
    rows = np.arange(piece.shape[0], dtype=np.int64)
    reverse = np.full(piece.shape[0], -1, dtype=np.int64)
    reverse[both & ~back] = rows[both & ~back] + 1
    reverse[both & back] = rows[both & back] - 1
    eu = np.where(back, p.iv[piece], p.iu[piece]).astype(np.int32)
    ev = np.where(back, p.iu[piece], p.iv[piece]).astype(np.int32)
    egeom = p.geoms[piece].copy()
    if back.any():
        egeom[back] = shapely.reverse(egeom[back])
    return eu, ev, p.length[piece], egeom, reverse, p.pway[piece]


def _assemble(ways: WayEdges, *, mode: str, crs: str, source: str, min_component_nodes: int,
              report: dict[str, Any]) -> Network:
    """Split ways at graph nodes, build directed edges, drop small fragments."""
    pieces, piece_stats = _pieces(ways)
    kept, comps = _drop_fragments(pieces, min_component_nodes)
    if kept.length.shape[0] == 0:
        largest = int(comps.sizes.max(initial=0))
        raise NetworkInputError(
            f"{source}: the {mode} network is empty: its {report.get('n_ways_kept', '?')} usable ways form "
            f"{comps.n_components} component(s), the largest with {largest} node(s), all smaller than "
            f"network.min_component_nodes = {min_component_nodes}. Fix: lower network.min_component_nodes "
            f"or use an extract that covers the whole region (`network.path`).")
    eu, ev, elen, egeom, reverse, ew = _directed_edges(kept, ways.direction)
    etime = elen / ways.speed_mps[ew]
    attrs = pd.DataFrame({
        "highway": ways.highway[ew].astype(str), "name": ways.name[ew].astype(str),
        "osmid": ways.osmid[ew].astype(np.int64), "oneway": ways.src_oneway[ew].astype(bool),
        "speed_kph": ways.speed_mps[ew] * 3.6,
    })
    sizes, big, order = comps.sizes, comps.big, comps.order
    n_frag = int((~big).sum())
    total_len, dropped_len = comps.total_length_m, comps.dropped_length_m
    report = {
        **report,
        "n_nodes": int(kept.node_keys.shape[0]), "n_edges": int(eu.shape[0]),
        "n_components_kept": int(order.shape[0]), "n_fragments_dropped": n_frag,
        "dropped_nodes": int((sizes[~big]).sum()), "dropped_length_m": dropped_len,
        "total_length_m": total_len, "kept_length_m": total_len - dropped_len,
        "n_self_loops": piece_stats["n_self_loops"],
        "n_zero_length_pieces": piece_stats["n_zero_length_pieces"],
        "n_degenerate_pieces_dropped": piece_stats["n_degenerate_pieces_dropped"],
        "component_sizes": [int(v) for v in sizes[order][:20]],
    }
    log.info("%s network: %d pieces between %d graph nodes; %d components (%d kept with >= %d nodes, "
             "%d fragments dropped, %.0f m of %.0f m)", mode, pieces.length.shape[0],
             pieces.node_keys.shape[0], comps.n_components, order.shape[0], min_component_nodes, n_frag,
             dropped_len, total_len)
    net = Network(mode=mode, crs=crs, node_id=kept.node_keys.astype(np.int64),
                  node_x=kept.node_x.astype(np.float64), node_y=kept.node_y.astype(np.float64),
                  node_component=comps.node_lab.astype(np.int32), edge_u=eu, edge_v=ev,
                  edge_length_m=elen.astype(np.float64), edge_time_s=etime.astype(np.float64),
                  edge_reverse=reverse, edge_geometry=np.asarray(egeom, dtype=object), edge_attrs=attrs,
                  source=source, report=report)
    net.validate()
    log.info("Built %s network with %d nodes and %d directed edges (%.1f km) from %s", mode, net.n_nodes,
             net.n_edges, report["kept_length_m"] / 1000.0, source)
    return net


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"mode={mode!r}: expected one of {', '.join(MODES)}")


def _check_metric_crs(metric_crs: str) -> CRS:
    return require_projected(metric_crs, what="network metric_crs",
                             fix="region.metric_crs (or use estimate_utm_crs)")


def network_from_osm_ways(ways: OsmWays, *, mode: str, metric_crs: str, walk: WalkProfile,
                          delivery: DeliveryProfile, min_component_nodes: int = 5) -> Network:
    """Build the ``mode`` network from ways already read by :func:`read_osm_ways`.

    Returns
    -------
    Network
        In ``metric_crs``; ``edge_attrs`` columns ``highway``, ``name``, ``osmid`` (way id),
        ``oneway`` (bool, the way is one-way by its tags), ``speed_kph`` (speed used for this mode).
        ``report`` holds ``n_nodes``, ``n_edges``, ``n_components_kept``, ``n_fragments_dropped``,
        ``dropped_length_m``, ``total_length_m``, ``excluded_ways`` (reason -> count) and more.

    Raises
    ------
    NetworkInputError
        No highway way at all, none usable for ``mode`` (the message counts the ways by highway tag
        and by exclusion reason), or only fragments smaller than ``min_component_nodes``.
    """
    _check_mode(mode)
    crs = _check_metric_crs(metric_crs)
    way_edges, report, problem = _osm_way_edges(ways, mode=mode, crs=crs, walk=walk, delivery=delivery)
    if problem:
        raise NetworkInputError(problem)
    return _assemble(way_edges, mode=mode, crs=crs.to_string(), source=ways.source,
                     min_component_nodes=min_component_nodes, report=report)


def _no_ways_problem(ways: OsmWays) -> str:
    return (f"{ways.source}: no highway=* way with two or more located nodes in the file "
            f"({ways.n_missing_locations} node refs without a location): no network can be built. Fix: "
            f"give an OSM extract of the region with its roads (e.g. from download.geofabrik.de) in "
            f"`network.path`; an extract of boundaries or POIs only has no roads.")


def _osm_way_edges(ways: OsmWays, *, mode: str, crs: CRS, walk: WalkProfile,
                   delivery: DeliveryProfile) -> tuple[WayEdges, dict[str, Any], str]:
    """The kept ways of ``mode`` as :class:`WayEdges`, the report, and the problem ("" if none)."""
    keep, direction, src_oneway, speed, reasons = _mode_rules(ways.tags, mode=mode, walk=walk,
                                                              delivery=delivery)
    log.info("%s: kept %d of %d highway ways; excluded %s", mode, int(keep.sum()), ways.n_ways,
             reasons or "none")
    problem = (_no_ways_problem(ways) if ways.n_ways == 0 else
               _check_usable(ways.tags["highway"].to_numpy(dtype=object), keep, reasons, mode=mode,
                             source=ways.source))
    sub = ways.subset(keep)
    tr = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    x, y = tr.transform(sub.lon, sub.lat)
    report = {"source": ways.source, "n_ways_read": ways.n_ways, "n_ways_kept": int(keep.sum()),
              "excluded_ways": reasons, "n_missing_locations": ways.n_missing_locations}
    way_edges = WayEdges(way_ptr=sub.way_ptr, key=sub.node_ref, x=np.asarray(x), y=np.asarray(y),
                         osmid=sub.way_id, highway=sub.tags["highway"].to_numpy(dtype=object),
                         name=sub.tags["name"].to_numpy(dtype=object), src_oneway=src_oneway[keep],
                         direction=direction[keep], speed_mps=speed[keep])
    return way_edges, report, problem


def network_from_osm(path: str | Path, *, mode: str, metric_crs: str, walk: WalkProfile,
                     delivery: DeliveryProfile, min_component_nodes: int = 5,
                     clip_polygon_wgs84: Any = None) -> Network:
    """Read an OSM file and build the routable network of one mode.

    Parameters
    ----------
    path : .osm, .osm.bz2 or .osm.pbf
    mode : "walk" or "delivery"
    metric_crs : projected CRS of the output (metres)
    walk, delivery : mode profiles (speeds, one-way handling)
    min_component_nodes : weakly-connected components with fewer nodes are dropped and reported
    clip_polygon_wgs84 : keep only ways with a node inside this lon/lat polygon (None: all)

    Returns
    -------
    Network
        See :func:`network_from_osm_ways`.
    """
    _check_mode(mode)
    _check_metric_crs(metric_crs)
    ways = read_osm_ways(path)
    if clip_polygon_wgs84 is not None:
        ways = clip_ways(ways, clip_polygon_wgs84)
    return network_from_osm_ways(ways, mode=mode, metric_crs=metric_crs, walk=walk, delivery=delivery,
                                 min_component_nodes=min_component_nodes)


# --------------------------------------------------------------------------------------------
# Road-line layers
# --------------------------------------------------------------------------------------------


def _read_layer(path: Path, encoding: str) -> Any:
    import pyogrio

    if encoding != "auto":
        return pyogrio.read_dataframe(path, encoding=encoding)
    if path.suffix.lower() == ".shp" and not path.with_suffix(".cpg").exists():
        # municipal shapefiles without .cpg: UTF-8 if it decodes, else GBK/GB18030
        try:
            return pyogrio.read_dataframe(path, encoding="utf-8")
        except UnicodeDecodeError:
            log.info("%s: no .cpg and not UTF-8; reading attributes as GB18030 (GBK)", path)
            return pyogrio.read_dataframe(path, encoding="gb18030")
    return pyogrio.read_dataframe(path)


def _norm_class(v: Any) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v).strip()


def network_from_road_layer(path: str | Path, *, mode: str, metric_crs: str, walk: WalkProfile,
                            delivery: DeliveryProfile, class_field: str, speed_field: str = "",
                            oneway_field: str = "", name_field: str = "name", crs: str = "",
                            encoding: str = "auto", min_component_nodes: int = 5,
                            class_map: dict[str, str] | None = None,
                            endpoint_fields: tuple[str, str] | None = None) -> Network:
    """Build the ``mode`` network from a municipal road-line layer (shapefile, GeoPackage, GeoJSON).

    Road classes in ``class_field`` are mapped to OSM highway values through
    :data:`CHINESE_ROAD_CLASSES` (高速公路, 国道, 省道, ..., 主干路, 次干路, 支路, 街巷, 步行道 ...),
    OSM highway values, and ``class_map`` (extra source class -> OSM highway) and then filtered
    with the same mode rules as OSM ways. Lines meet where they share an endpoint OR an interior
    vertex (coordinates rounded to 1 cm in ``metric_crs``).

    Parameters
    ----------
    speed_field : km/h per line; when > 0 it replaces the delivery class speed (walk ignores it)
    oneway_field : yes/true/1/是/单向 = one-way along the line, -1/反向 = against it, else two-way
    crs : CRS to assume when the file has none (config key ``network.crs``)
    endpoint_fields : ``(from_field, to_field)`` node ids of each line's ends (FNODE/TNODE, SUMO
        from/to): lines meet where these ids match, even when their end coordinates do not (junction
        gaps); each such node sits at the mean of its end coordinates, and line ends move there
    encoding : attribute encoding, ``"auto"`` = the .cpg, else UTF-8, else GB18030

    Returns
    -------
    Network
        ``edge_attrs``: ``highway`` (mapped), ``name``, ``osmid`` (1-based source row), ``oneway``,
        ``speed_kph``; ``node_id`` are generated (1..n).

    Raises
    ------
    NetworkInputError
        Listing every problem: missing file, no CRS, missing fields, unmapped road classes; no
        features or no line geometry; no line usable for ``mode`` (counts by highway value).
    """
    _check_mode(mode)
    mcrs = _check_metric_crs(metric_crs)
    path = Path(path)
    if not path.exists():
        raise NetworkInputError(f"{path}: road layer not found. Check `network.path` in the region config.")
    gdf = _read_layer(path, encoding)
    problems: list[str] = []
    if len(gdf) == 0:
        raise NetworkInputError(f"{path}: the road layer has no features (0 lines): no network can be "
                                f"built. Fix: give a layer of road lines in `network.path` (check the file "
                                f"and, for a GeoPackage, the layer).")
    gtype = pd.Series(shapely.get_type_id(gdf.geometry.to_numpy()))
    if not gtype.isin([1, 5]).any():
        names = pd.Series(gdf.geometry.geom_type).fillna("no geometry")
        problems.append(f"no line geometry among its {len(gdf)} features ({_counts_text(names, prefix='')}): "
                        f"give a layer of road LINES (LineString/MultiLineString) in `network.path`")
    if gdf.crs is None and not crs:
        problems.append("the layer has no CRS (no .prj): set `network.crs` in the region config "
                        "(e.g. 'EPSG:4490' for CGCS2000 lon/lat or 'EPSG:4545' for a Gauss-Kruger zone)")
    fields = {"network.class_field": class_field, "network.speed_field": speed_field,
              "network.oneway_field": oneway_field, "network.name_field": name_field}
    for i, f in enumerate(endpoint_fields or ()):
        fields[f"endpoint_fields[{i}]"] = f
    for key, f in fields.items():
        if f and f not in gdf.columns:
            if key == "network.name_field" and f == "name":
                continue  # default name field is optional
            problems.append(f"{key} = {f!r}: no such field (fields: {', '.join(map(str, gdf.columns[:-1]))})")
    hw, n_missing_class, class_problems = _road_classes(gdf, class_field, class_map)
    problems += class_problems
    if problems:
        raise NetworkInputError(f"{path}: {len(problems)} problem(s) in the road layer:\n  "
                                + "\n  ".join(problems))
    if n_missing_class:
        log.warning("%s: %d lines have an empty %r; treated as highway=road", path, n_missing_class,
                    class_field)
    if crs:
        gdf = gdf.set_crs(crs, allow_override=True)
    n_rows = len(gdf)
    tags = pd.DataFrame({k: [""] * n_rows for k in WAY_TAGS}, dtype=object)
    tags["highway"] = hw
    if name_field in gdf.columns:
        tags["name"] = [_norm_class(v) for v in gdf[name_field]]
    if oneway_field:
        ow = [_norm_class(v).lower() for v in gdf[oneway_field]]
        tags["oneway"] = ["yes" if v in _ONEWAY_FWD else "-1" if v in _ONEWAY_BWD else "no" for v in ow]
    keep, direction, src_oneway, speed, reasons = _mode_rules(tags, mode=mode, walk=walk, delivery=delivery)
    if speed_field and mode == "delivery":
        sp_kph = pd.to_numeric(gdf[speed_field], errors="coerce").to_numpy(dtype=float)
        good = np.isfinite(sp_kph) & (sp_kph > 0)
        speed = np.where(good, sp_kph / 3.6, speed)
    geom = gdf.geometry.to_crs(mcrs).to_numpy()
    empty = shapely.is_missing(geom) | shapely.is_empty(geom)
    lines_ok = np.isin(shapely.get_type_id(geom), (1, 5))  # LineString, MultiLineString
    n_bad = int((~empty & ~lines_ok).sum())
    keep &= ~empty & lines_ok
    log.info("%s: kept %d of %d road lines from %s; excluded %s; %d empty, %d not lines", mode,
             int(keep.sum()), n_rows, path, reasons or "none", int(empty.sum()), n_bad)
    lines = ~empty & lines_ok
    problem = _check_usable(hw[lines], keep[lines], reasons, mode=mode, source=str(path),
                            what=f"road lines (classes from {class_field!r} as OSM highway values)")
    if problem:
        raise NetworkInputError(problem)
    rows = np.flatnonzero(keep)
    way_ptr, vkey, xr, yr, src_rows = _line_points(geom, rows)
    if endpoint_fields:
        vkey, xr, yr = _endpoint_keys(gdf, endpoint_fields, src_rows=src_rows, way_ptr=way_ptr, vkey=vkey,
                                      x=xr, y=yr)
    report = {"source": str(path), "n_ways_read": n_rows, "n_ways_kept": int(keep.sum()),
              "excluded_ways": reasons, "n_missing_class": n_missing_class,
              "n_empty_geometries": int(empty.sum()), "n_not_lines": n_bad}
    way_edges = WayEdges(way_ptr=way_ptr, key=vkey, x=xr, y=yr, osmid=(src_rows + 1).astype(np.int64),
                         highway=hw[src_rows], name=tags["name"].to_numpy(dtype=object)[src_rows],
                         src_oneway=src_oneway[src_rows], direction=direction[src_rows],
                         speed_mps=speed[src_rows])
    return _assemble(way_edges, mode=mode, crs=mcrs.to_string(), source=str(path),
                     min_component_nodes=min_component_nodes, report=report)


def _road_classes(gdf: Any, class_field: str,
                  class_map: dict[str, str] | None) -> tuple[np.ndarray, int, list[str]]:
    """OSM highway value of each line from ``class_field``: (highway, n lines without a class, problems).

    Lines without a class become ``highway=road`` (OSM's "road of unknown type"); unknown classes are
    one problem listing each class and its line count.
    """
    table = {**CHINESE_ROAD_CLASSES, **{k: k for k in _OSM_HIGHWAYS}, **(class_map or {})}
    table_lower = {k.lower(): v for k, v in table.items()}
    hw = np.full(len(gdf), "", dtype=object)
    n_missing_class = 0
    problems: list[str] = []
    if class_field in gdf.columns:
        raw = [_norm_class(v) for v in gdf[class_field]]
        unknown: dict[str, int] = {}
        for i, v in enumerate(raw):
            if not v:  # no class at all: OSM's "road of unknown type", counted in the report
                n_missing_class += 1
                hw[i] = "road"
                continue
            mapped = table.get(v) or table_lower.get(v.lower())
            if mapped is None:
                unknown[v] = unknown.get(v, 0) + 1
            else:
                hw[i] = mapped
        if unknown:
            listing = ", ".join(f"{k!r} ({n} lines)"
                                for k, n in sorted(unknown.items(), key=lambda kv: -kv[1]))
            problems.append(f"unknown road classes in field {class_field!r}: {listing}. Fix: recode them "
                            f"to a known class (OSM highway values or 高速公路, 国道, 省道, 县道, 乡道, "
                            f"村道, 城市快速路, 主干路, 次干路, 支路, 街巷, 步行道, 人行道 ...) or pass "
                            f"class_map")
    return hw, n_missing_class, problems


def _line_points(geom: np.ndarray,
                 rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The (multi)lines ``geom[rows]`` as ways of points: (way_ptr, vertex key, x, y, source row per way).

    Each line part is a way; parts with fewer than two points are dropped. Vertices are rounded to
    1 cm and share a key where they coincide.
    """
    parts, part_row = shapely.get_parts(geom[rows], return_index=True)
    coords, ci = shapely.get_coordinates(parts, return_index=True)
    npart = parts.shape[0]
    cnt = np.bincount(ci, minlength=npart)
    good = cnt >= 2
    if not good.all():
        sel = np.repeat(good, cnt)
        coords, cnt, part_row = coords[sel], cnt[good], part_row[good]
    way_ptr = np.concatenate([[0], np.cumsum(cnt)]).astype(np.int64)
    grid = np.round(coords * 100.0).astype(np.int64)  # 1 cm
    _, vkey = np.unique(grid, axis=0, return_inverse=True)
    vkey = vkey.reshape(-1).astype(np.int64) + 1
    return way_ptr, vkey, grid[:, 0] / 100.0, grid[:, 1] / 100.0, rows[part_row]


def _endpoint_keys(
    gdf: Any, endpoint_fields: tuple[str, str], *, src_rows: np.ndarray, way_ptr: np.ndarray,
    vkey: np.ndarray, x: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Replace the first/last vertex key of every line by a key from its from/to id fields."""
    n_parts = way_ptr.shape[0] - 1
    first_part = np.ones(n_parts, dtype=bool)
    first_part[1:] = src_rows[1:] != src_rows[:-1]
    last_part = np.ones(n_parts, dtype=bool)
    last_part[:-1] = src_rows[:-1] != src_rows[1:]
    ids_from = gdf[endpoint_fields[0]].astype(str).to_numpy()[src_rows]
    ids_to = gdf[endpoint_fields[1]].astype(str).to_numpy()[src_rows]
    pos = np.concatenate([way_ptr[:-1][first_part], way_ptr[1:][last_part] - 1])
    ids = np.concatenate([ids_from[first_part], ids_to[last_part]])
    uniq, inv = np.unique(ids, return_inverse=True)
    key = vkey.copy()
    key[pos] = int(vkey.max(initial=0)) + 1 + inv
    cnt = np.bincount(inv, minlength=uniq.shape[0])
    mx = np.bincount(inv, weights=x[pos], minlength=uniq.shape[0]) / cnt
    my = np.bincount(inv, weights=y[pos], minlength=uniq.shape[0]) / cnt
    x, y = x.copy(), y.copy()
    x[pos], y[pos] = mx[inv], my[inv]
    log.info("Joined line ends through %s/%s: %d end nodes", *endpoint_fields, uniq.shape[0])
    return key, x, y


# --------------------------------------------------------------------------------------------
# osmnx download
# --------------------------------------------------------------------------------------------


def fetch_osmnx_network(place_or_polygon: Any, out_path: str | Path) -> Path:
    """Download all ways of a place (name) or lon/lat polygon with osmnx and save them as OSM XML.

    The saved file is read by :func:`network_from_osm` like any OSM extract. Needs internet.

    Returns
    -------
    Path
        ``out_path`` (written atomically).

    Raises
    ------
    RuntimeError
        When the download fails (offline, unknown place, Overpass error), with the fix.
    """
    import osmnx as ox

    out_path = Path(out_path)
    saved = {k: getattr(ox.settings, k) for k in ("all_oneway", "useful_tags_way")}
    try:
        ox.settings.all_oneway = True  # save_graph_xml needs the unsimplified, all-oneway graph
        ox.settings.useful_tags_way = sorted(set(saved["useful_tags_way"]) | set(WAY_TAGS))
        try:
            if isinstance(place_or_polygon, str):
                G = ox.graph_from_place(place_or_polygon, network_type="all", simplify=False,
                                        retain_all=True)
            else:
                G = ox.graph_from_polygon(place_or_polygon, network_type="all", simplify=False,
                                          retain_all=True)
        except Exception as exc:
            raise RuntimeError(
                f"osmnx download of {place_or_polygon!r} failed ({type(exc).__name__}: {exc}). This needs "
                f"internet access to Overpass/Nominatim. Fix: run where the network is reachable, or "
                f"download an extract (e.g. from download.geofabrik.de) and set network.source = "
                f"'osm_file' with network.path") from exc
        # osmnx already reversed the node order of oneway=-1 ways: write them as plain one-way ways,
        # or the reader would reverse them a second time
        for _, _, data in G.edges(data=True):
            if str(data.get("oneway", "")).strip().lower() in ("-1", "reverse"):
                data["oneway"] = "yes"
        out_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = out_path.with_name(out_path.name + f".tmp-{os.getpid()}")
        ox.io.save_graph_xml(G, filepath=tmp)
        os.replace(tmp, out_path)
    finally:
        for k, v in saved.items():
            setattr(ox.settings, k, v)
    log.info("Saved osmnx network of %r (%d nodes, %d edges) to %s", place_or_polygon, len(G.nodes),
             len(G.edges), out_path)
    return out_path


# --------------------------------------------------------------------------------------------
# Both modes from a config
# --------------------------------------------------------------------------------------------


def _halo_wgs84(study_area_wgs84: Any, *, metric_crs: str, halo_m: float) -> Any:
    import geopandas as gpd

    s = gpd.GeoSeries([study_area_wgs84], crs="EPSG:4326").to_crs(metric_crs).buffer(halo_m)
    return s.to_crs("EPSG:4326").iloc[0]


def _outside_problem(source: str, extent: WaysExtent, clip_wgs84: Any, *, halo_m: float) -> str:
    """No way within the halo: ``extent`` is the WHOLE file's (not the tiles read)."""
    assert extent.bounds_wgs84 is not None  # a file without ways fails earlier (_no_ways_problem)
    b = extent.bounds_wgs84
    sb = tuple(float(v) for v in shapely.bounds(clip_wgs84))

    def fmt(v: tuple[float, ...]) -> str:
        return f"lon {v[0]:.4f}..{v[2]:.4f}, lat {v[1]:.4f}..{v[3]:.4f}"

    return (f"{source}: none of its {extent.n_ways} highway ways lies within {halo_m:.0f} m of the study "
            f"area: the ways span {fmt(b)}, the study area (with the halo) {fmt(sb)}. Fix: give the OSM "
            f"extract of this region in `network.path` (or check the units layer's CRS).")


def build_networks(cfg: Config, *, metric_crs: str, study_area_wgs84: Any = None, halo_m: float = 3000.0,
                   cache_dir: str | Path | None = None,
                   osm_cache_root: str | Path | None = None) -> dict[str, Network]:
    """Build the ``walk`` and ``delivery`` networks of a region, reading the source once.

    Parameters
    ----------
    cfg : region config (``network``, ``walk``, ``delivery`` sections)
    metric_crs : projected CRS of the networks
    study_area_wgs84 : lon/lat (multi)polygon; when given, OSM ways are clipped to it buffered by
        ``halo_m`` (metres) so routes may leave and re-enter the area
    cache_dir : where ``network.source = "osmnx"`` saves its download (default
        ``<config folder>/cache``); an existing download is reused
    osm_cache_root : folder of the tiled OSM ways caches (:func:`coverage.osm_ways.read_osm_ways_cached`;
        the pipeline passes ``<build root>/.cache/osm``): the file is parsed once and only the tiles
        meeting the clip polygon's bounds are read. None: parse the file every time. The networks
        are the same either way.

    Returns
    -------
    dict[str, Network]
        ``{"walk": ..., "delivery": ...}``.

    Raises
    ------
    NetworkInputError
        Before any network is built: a missing or empty file, no highway way, no way within
        ``halo_m`` of the study area (the ways' and the study area's lon/lat bounds), or a mode with
        nothing usable (every mode's problem in one message); road layers: no features, no lines,
        nothing usable for a mode.
    """
    nc = cfg.network
    t0 = time.perf_counter()
    clip = (_halo_wgs84(study_area_wgs84, metric_crs=metric_crs, halo_m=halo_m)
            if study_area_wgs84 is not None else None)
    nets: dict[str, Network] = {}
    if nc.source in ("osm_file", "osmnx"):
        if nc.source == "osmnx":
            cdir = Path(cache_dir) if cache_dir is not None else cfg.base_dir / "cache"
            slug = re.sub(r"[^\w\-]+", "_", nc.place).strip("_") or "place"
            path = cdir / f"osmnx_{slug}.osm"
            if not path.is_file():
                fetch_osmnx_network(nc.place, path)
        else:
            if nc.path is None:
                raise NetworkInputError(f"{cfg.path}: network.path is missing (required when "
                                        f"network.source = 'osm_file')")
            path = nc.path
        if osm_cache_root is None:
            ways = read_osm_ways(path)
            extent = ways_extent(ways)
        else:  # only the tiles near the clip polygon; the whole file's extent from the manifest
            bbox: tuple[float, float, float, float] | None = None
            if clip is not None:
                x0, y0, x1, y1 = (float(v) for v in shapely.bounds(clip))
                bbox = (x0, y0, x1, y1)
            ways = read_osm_ways_cached(path, bbox_wgs84=bbox, cache_root=osm_cache_root)
            extent = osm_cache_extent(path, cache_root=osm_cache_root)
        if extent.n_ways == 0:
            raise NetworkInputError(_no_ways_problem(ways))
        if clip is not None:
            ways = clip_ways(ways, clip)
            if ways.n_ways == 0:
                raise NetworkInputError(_outside_problem(ways.source, extent, clip, halo_m=halo_m))
        crs = _check_metric_crs(metric_crs)
        built = {mode: _osm_way_edges(ways, mode=mode, crs=crs, walk=cfg.walk, delivery=cfg.delivery)
                 for mode in MODES}
        problems = [b[2] for b in built.values() if b[2]]
        if problems:  # every mode checked before any is built: one error, as early as possible
            raise NetworkInputError("\n".join(problems))
        for mode, (way_edges, report, _) in built.items():
            nets[mode] = _assemble(way_edges, mode=mode, crs=crs.to_string(), source=ways.source,
                                   min_component_nodes=nc.min_component_nodes, report=report)
    else:
        if nc.path is None:
            raise NetworkInputError(f"{cfg.path}: network.path is missing (required when "
                                    f"network.source = 'road_layer')")
        for mode in MODES:
            nets[mode] = network_from_road_layer(
                nc.path, mode=mode, metric_crs=metric_crs, walk=cfg.walk, delivery=cfg.delivery,
                class_field=nc.class_field, speed_field=nc.speed_field, oneway_field=nc.oneway_field,
                name_field=nc.name_field, crs=nc.crs, encoding=nc.encoding,
                min_component_nodes=nc.min_component_nodes, class_map=dict(nc.class_map) or None,
                endpoint_fields=((nc.endpoint_fields[0], nc.endpoint_fields[1]) if nc.endpoint_fields
                                 else None))
    for net in nets.values():
        net.report["build_s"] = round(time.perf_counter() - t0, 3)
    log.info("Built networks %s in %.1f s", {m: (n.n_nodes, n.n_edges) for m, n in nets.items()},
             time.perf_counter() - t0)
    return nets


# --------------------------------------------------------------------------------------------
# Export and helpers
# --------------------------------------------------------------------------------------------


def network_frames(net: Network) -> tuple[Any, Any]:
    """(nodes, edges) GeoDataFrames in ``net.crs``.

    nodes: ``node_id``, ``component``, ``x``, ``y`` (metres), Point geometry.
    edges: ``u``, ``v`` (node ids), ``osmid``, ``highway``, ``name``, ``oneway``, ``length_m``,
    ``travel_time_s``, ``component``, LineString geometry (one row per DIRECTED edge).
    """
    import geopandas as gpd

    nodes = gpd.GeoDataFrame(
        {"node_id": net.node_id, "component": net.node_component, "x": net.node_x, "y": net.node_y},
        geometry=shapely.points(net.node_x, net.node_y), crs=net.crs)
    a = net.edge_attrs
    edges = gpd.GeoDataFrame({
        "u": net.node_id[net.edge_u], "v": net.node_id[net.edge_v],
        "osmid": a["osmid"].to_numpy(dtype=np.int64), "highway": a["highway"].astype(str).to_numpy(),
        "name": a["name"].astype(str).to_numpy(), "oneway": a["oneway"].to_numpy(dtype=bool),
        "length_m": net.edge_length_m, "travel_time_s": net.edge_time_s,
        "component": net.node_component[net.edge_u],
    }, geometry=list(net.edge_geometry), crs=net.crs)
    return nodes, edges


def export_network_gpkg(networks: dict[str, Network], path: str | Path) -> None:
    """Write layers ``<mode>_nodes`` and ``<mode>_edges`` (see :func:`network_frames`) atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp.gpkg", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()
    try:
        for mode, net in networks.items():
            nodes, edges = network_frames(net)
            nodes.to_file(tmp, layer=f"{mode}_nodes", driver="GPKG", engine="pyogrio")
            edges.to_file(tmp, layer=f"{mode}_edges", driver="GPKG", engine="pyogrio")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    log.info("Wrote %s to %s",
             ", ".join(f"{m} ({n.n_nodes} nodes, {n.n_edges} edges)" for m, n in networks.items()), path)


def estimate_utm_crs(geom_wgs84: Any) -> str:
    """UTM zone CRS (``EPSG:326xx`` north, ``EPSG:327xx`` south) of a lon/lat geometry's centre."""
    from coverage.coords import utm_crs_for

    c = shapely.centroid(geom_wgs84)
    try:
        return utm_crs_for(float(c.x), float(c.y))
    except ValueError:
        raise ValueError(f"estimate_utm_crs: centre ({c.x}, {c.y}) is not lon/lat in degrees") from None


def road_frame(networks: dict[str, Network]) -> Any:
    """Physical road lines (walk network, else the first) with ``highway``, in the metric CRS
    (a GeoDataFrame)."""
    import geopandas as gpd

    net = networks.get("walk") or next(iter(networks.values()))
    idx = net.physical_edges()
    return gpd.GeoDataFrame({"highway": net.edge_attrs["highway"].to_numpy()[idx]},
                            geometry=list(net.edge_geometry[idx]), crs=net.crs)
