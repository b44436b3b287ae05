"""The routable network as compact arrays: the one data type shared by network building,
travel times, isochrones and exports.

A :class:`Network` holds ONE travel mode (``walk`` or ``delivery``) in ONE metric CRS.
Every traversable direction of a road is its own directed edge row: a two-way street is two
rows (``u->v`` and ``v->u``) whose geometries are each other's reverse and which point at each
other through ``edge_reverse``; a one-way street (for a mode that respects one-way tags) is one
row with ``edge_reverse == -1``.

Nothing here reads files; :mod:`coverage.network` builds networks and :mod:`coverage.traveltime`
routes on them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp

if TYPE_CHECKING:
    import networkx as nx

MODES = ("walk", "delivery")


def physical_edge_index(edge_reverse: np.ndarray) -> np.ndarray:
    """The representative directed edge of each physical road given each edge's reverse twin (-1 for
    none): a one-way edge, or the lower index of a two-way pair (:meth:`Network.physical_edges`)."""
    idx = np.arange(edge_reverse.shape[0])
    return idx[(edge_reverse < 0) | (idx < edge_reverse)]


@dataclass(frozen=True, eq=False)
class Network:
    """A directed road network for one travel mode, as arrays.

    Attributes
    ----------
    mode : str
        ``"walk"`` or ``"delivery"``.
    crs : str
        Metric CRS of all coordinates and geometries (e.g. ``"EPSG:32649"``).
    node_id : ndarray[int64], shape (n_nodes,)
        External node ids (OSM node ids, or generated ids for road-line layers).
    node_x, node_y : ndarray[float64], shape (n_nodes,)
        Node coordinates in ``crs`` (metres).
    node_component : ndarray[int32], shape (n_nodes,)
        Weakly-connected component label of each node (0..k-1). Every kept component is routable;
        fragments below the configured minimum size are dropped by the builder, never the
        non-largest components.
    edge_u, edge_v : ndarray[int32], shape (n_edges,)
        Tail and head node INDEX (position in the node arrays, not the external id).
    edge_length_m : ndarray[float64]
        Length of the edge geometry measured in ``crs``.
    edge_time_s : ndarray[float64]
        Travel time of the whole edge for this mode, seconds (> 0).
    edge_reverse : ndarray[int64]
        Index of the twin edge running ``v->u`` over the same geometry, or -1.
    edge_geometry : ndarray[object]
        shapely LineStrings in ``crs``, oriented from ``u`` to ``v``.
    edge_attrs : DataFrame
        One row per edge, same order: at least ``highway`` (str), ``name`` (str, may be ""),
        ``osmid`` (int64 way id or layer row id), ``oneway`` (bool: the source way is one-way).
    source : str
        Human-readable description of where the network came from (file path, layer, place).
    """

    mode: str
    crs: str
    node_id: np.ndarray
    node_x: np.ndarray
    node_y: np.ndarray
    node_component: np.ndarray
    edge_u: np.ndarray
    edge_v: np.ndarray
    edge_length_m: np.ndarray
    edge_time_s: np.ndarray
    edge_reverse: np.ndarray
    edge_geometry: np.ndarray
    edge_attrs: pd.DataFrame
    source: str = ""
    report: dict = field(default_factory=dict)

    @property
    def n_nodes(self) -> int:
        return int(self.node_id.shape[0])

    @property
    def n_edges(self) -> int:
        return int(self.edge_u.shape[0])

    def physical_edges(self) -> np.ndarray:
        """Indices of one representative directed edge per physical road segment.

        For a two-way pair the lower index is the representative. Used for snapping (a point
        snaps to a road, not to a direction) and for exports.
        """
        return physical_edge_index(self.edge_reverse)

    def csr(self, weight: str = "time") -> sp.csr_matrix:
        """Sparse adjacency (n_nodes x n_nodes) weighted by ``time`` (s) or ``length`` (m).

        Parallel edges keep the minimum weight (scipy's csgraph would otherwise SUM duplicates).
        """
        w = self.edge_time_s if weight == "time" else self.edge_length_m
        n = self.n_nodes
        order = np.lexsort((w, self.edge_v, self.edge_u))
        u, v, ww = self.edge_u[order], self.edge_v[order], w[order]
        keep = np.ones(len(u), dtype=bool)
        keep[1:] = (u[1:] != u[:-1]) | (v[1:] != v[:-1])
        return sp.csr_matrix((ww[keep], (u[keep], v[keep])), shape=(n, n))

    def to_networkx(self) -> nx.MultiDiGraph:  # lazy import keeps networkx optional here
        """The network as a ``networkx.MultiDiGraph`` (for oracles, benchmarks and OSMnx interop).

        Nodes are the node INDEX (0..n_nodes-1) with attributes ``x``, ``y`` (metres, ``crs``) and
        ``osmid`` (external id); edges are keyed by their directed edge index with attributes
        ``length_m``, ``travel_time_s`` and ``geometry``. Graph attribute ``crs``.
        """
        import networkx as nx

        g = nx.MultiDiGraph(crs=self.crs, mode=self.mode)
        nodes = zip(self.node_x, self.node_y, self.node_id, strict=True)
        g.add_nodes_from((int(i), {"x": float(x), "y": float(y), "osmid": int(o)})
                         for i, (x, y, o) in enumerate(nodes))
        g.add_edges_from(
            (int(u), int(v), int(k), {"length_m": float(ln), "travel_time_s": float(t), "geometry": geom})
            for k, (u, v, ln, t, geom) in enumerate(zip(
                self.edge_u, self.edge_v, self.edge_length_m, self.edge_time_s, self.edge_geometry,
                strict=True)))
        return g

    def validate(self) -> None:
        """Raise ValueError if the arrays are inconsistent (lengths, indices, positive times)."""
        problems: list[str] = []
        n, m = self.n_nodes, self.n_edges
        for name in ("node_x", "node_y", "node_component"):
            if getattr(self, name).shape[0] != n:
                problems.append(f"{name} has {getattr(self, name).shape[0]} rows, expected {n}")
        for name in ("edge_v", "edge_length_m", "edge_time_s", "edge_reverse", "edge_geometry"):
            if getattr(self, name).shape[0] != m:
                problems.append(f"{name} has {getattr(self, name).shape[0]} rows, expected {m}")
        if len(self.edge_attrs) != m:
            problems.append(f"edge_attrs has {len(self.edge_attrs)} rows, expected {m}")
        if m and (self.edge_u.min() < 0 or self.edge_u.max() >= n or self.edge_v.max() >= n):
            problems.append("edge_u/edge_v hold node indices outside 0..n_nodes-1")
        if m and not np.all(self.edge_time_s > 0):
            problems.append("edge_time_s must be > 0 on every edge")
        if problems:
            raise ValueError(f"invalid {self.mode} network from {self.source}: " + "; ".join(problems))
