"""Tiles with a halo: the travel times of every cell computed tile by tile, equal to the whole network's.

The study area (metric CRS) is cut into square tiles of ``tile_size_m`` on a grid aligned to multiples
of the size. A tile's *core* is the half-open box ``[x0, x0 + size) x [y0, y0 + size)``; each cell
belongs to the one tile whose core holds its centre (so every cell is in exactly one core, cells on a
border included). A tile routes on the network clipped to its core plus a *halo*, with the facilities
whose snapped road position lies in that box.

Why the halo is enough (the exactness argument)
-----------------------------------------------
Let ``T`` be the time cap of a service (below) and ``v_max`` the fastest edge of its network
(``max(edge_length_m / edge_time_s)``, m/s). The engine (:func:`coverage.traveltime.nearest_facility_times`)
reports, for a cell ``c`` snapped at road point ``p_c``, the time of the best path
facility -> ``p_f`` (its snapped road point) -> along roads -> ``p_c`` -> ``c``, plus two access legs.
Suppose that time is ``<= T``. Then the road part takes ``<= T``, so its length is ``<= T * v_max``
(each edge takes ``length_m / speed`` with ``speed <= v_max``), and since a road's length is at least the
straight-line distance between any two of its points (network distance >= Euclidean distance), EVERY
point of that path, ``p_f`` included, lies within ``T * v_max`` of ``p_c``. ``p_c`` lies within
``cell_max_snap_m`` of the cell centre (else the cell is not snapped and its time is inf in both
runs), which lies in the core. So with

    halo_m = T * v_max + cell_max_snap_m + facility_max_snap_m

the whole path lies inside core + halo: every edge it touches has a point in the box and is kept (we
keep whole edges whose bounding box meets the box: a superset of the needed edges never changes a
shortest path), and its facility is kept (its snapped point is in the box; the facility itself, within
``facility_max_snap_m`` of it, too). A shortest path in a subgraph is never shorter than in the whole
graph, and the best whole-graph path is in the subgraph: the tile's time equals the whole network's
for every cell whose time is ``<= T``; a cell whose whole-network time is ``> T`` gets ``> T`` in the
tile too, and both report inf. The snaps are the whole network's (computed once, then re-indexed
into the clipped edges), so positions along edges are bit-identical; the path sums are the same sums
in the same order, so times agree to rounding (tests: 1e-9 s). A tie between two facilities at
exactly the same time may name either (measure-zero with real coordinates).

The cap
-------
Dijkstra is run with ``limit_s = T``: times above the cap are reported as not reached (inf, nearest
facility ""). ``[tiles] time_cap_min`` sets ``T`` for every service in BOTH tiled and untiled runs
(:func:`coverage.access.travel_times` applies it too), so the two give identical tables. When it is 0
(the default) an untiled run reports every time (no cap), and a tiled run caps each service at its
largest threshold (:func:`service_cap_s`: every covered flag and indicator stays exact; only the
"nearest facility beyond the threshold" figures of the gaps become "beyond the cap"). The cap used is
logged per service.

Per-unit sums and 2SFCA
-----------------------
Given the cells' pieces (:func:`pieces_of`), a tile also sums its own pieces per unit and community
(:mod:`coverage.unit_sums`, exact: the run adds the tiles' partial sums and gets the whole table's sums
bit for bit), and computes the 2SFCA costs of its sites to its pieces: the halo of a service with a
capacity covers ``max(cap, [standards] fca_catchment_min)``, by the same argument, so every site that
reaches a core piece within the catchment is in the tile, with the whole network's time. Step 1 (each
site's weighted demand) is a sum over tiles like the others; step 2 (each piece's score) needs every
site's ratio, so the run computes them (:func:`fca_ratios`) and each tile takes step 2 with its kept cost
matrices (:func:`fca_tile_sums`, a second map). A piece adds its sites in the order of their rows in both
runs, so the scores are bit-identical too.

Everything here is a pure function on arrays: :func:`partition` builds :class:`TileInput` objects
(savable as one ``.npz`` per tile), :func:`solve_tile` routes one tile (no geometry, no config), and
:func:`reduce_results` puts the per-tile results back into one
:class:`~coverage.access.TravelTimes`, the table :func:`coverage.access.travel_times` returns.
:mod:`coverage.cluster` runs the same three steps on dask.distributed.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from coverage import exact_sums, unit_sums
from coverage.access import (
    CellSnaps,
    FacilitySnaps,
    ServiceTimes,
    TravelTimes,
    service_network,
    unique_cells,
    usable_facilities,
)
from coverage.access2sfca import catchment_weights, cell_scores, site_demand_partial, site_ratios
from coverage.config import Config
from coverage.errors import PipelineError
from coverage.graph import Network, physical_edge_index
from coverage.services import Service, access_speed_mps
from coverage.traveltime import Snap, coverage_matrix, nearest_facility_times, snap_points

log = logging.getLogger(__name__)

__all__ = [
    "SNAP_FIELDS",
    "TASK_ARRAYS",
    "Clip",
    "FcaService",
    "FcaTile",
    "Pieces",
    "ServiceTask",
    "Tile",
    "TileInput",
    "TileResult",
    "assign_tiles",
    "clip_network",
    "edge_bounds",
    "fca_path",
    "finish_fca",
    "fca_ratios",
    "fca_services",
    "fca_tile_sums",
    "halo_m",
    "max_speed_mps",
    "partition",
    "pieces_of",
    "reduce_results",
    "reduce_snaps",
    "reduce_tiles",
    "service_cap_s",
    "snap_tile_cells",
    "solve_tile",
    "sums_path",
    "tiled_snaps_and_times",
    "tiled_travel_times",
]


# --------------------------------------------------------------------------------------------------
# Tiles
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tile:
    """One square tile: grid indices ``(i, j)`` and its core ``[x0, x0 + size_m) x [y0, y0 + size_m)``."""

    i: int
    j: int
    x0: float
    y0: float
    size_m: float

    @property
    def name(self) -> str:
        return f"tile_{self.i}_{self.j}"

    def box(self, halo_m: float = 0.0) -> tuple[float, float, float, float]:
        """``(xmin, ymin, xmax, ymax)`` of the core grown by ``halo_m`` metres on every side."""
        return (self.x0 - halo_m, self.y0 - halo_m, self.x0 + self.size_m + halo_m,
                self.y0 + self.size_m + halo_m)


def assign_tiles(xy: np.ndarray, *, tile_size_m: float) -> tuple[list[Tile], np.ndarray]:
    """The tiles that own at least one point, and per point the position of its tile in that list.

    A point belongs to the tile with ``i = floor(x / size)``, ``j = floor(y / size)`` (half-open
    cores: a point on a border belongs to the tile on its upper/right side). Tiles are listed in
    ``(i, j)`` order (column by column). Points with non-finite coordinates get -1.
    """
    if not tile_size_m > 0:
        raise ValueError(f"tile_size_m={tile_size_m!r}: expected a tile size > 0 in metres")
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    ok = np.isfinite(xy).all(axis=1)
    ij = np.full((xy.shape[0], 2), 0, dtype=np.int64)
    ij[ok] = np.floor(xy[ok] / tile_size_m).astype(np.int64)
    owner = np.full(xy.shape[0], -1, dtype=np.int64)
    if not ok.any():
        return [], owner
    lo = ij[ok].min(axis=0)
    span = int(ij[ok, 1].max() - lo[1]) + 1
    key = (ij[ok, 0] - lo[0]) * span + (ij[ok, 1] - lo[1])  # one integer per tile, ordered by (i, j)
    keys, inv = np.unique(key, return_inverse=True)
    owner[ok] = inv.reshape(-1)
    tiles = [Tile(i=int(i), j=int(j), x0=float(i) * tile_size_m, y0=float(j) * tile_size_m,
                  size_m=float(tile_size_m)) for i, j in zip(keys // span + lo[0], keys % span + lo[1],
                                                              strict=True)]
    return tiles, owner


# --------------------------------------------------------------------------------------------------
# Halo
# --------------------------------------------------------------------------------------------------


def max_speed_mps(net: Network) -> float:
    """The fastest edge of ``net``: ``max(edge_length_m / edge_time_s)`` in m/s (0 without edges)."""
    if net.n_edges == 0:
        return 0.0
    return float(np.max(net.edge_length_m / net.edge_time_s))


def service_cap_s(cfg: Config, service: Service) -> float:
    """The time cap of ``service`` in a tiled run, seconds: ``[tiles] time_cap_min`` when set, else the
    service's largest threshold (every isochrone, per-class and indicator threshold)."""
    if cfg.tiles.time_cap_min > 0:
        return cfg.tiles.time_cap_min * 60.0
    ts = [*service.isochrone_thresholds_min(), *service.indicator_thresholds_min(cfg.standards)]
    return float(max(ts)) * 60.0


def halo_m(*, cap_s: float, max_speed_mps: float, cell_max_snap_m: float, facility_max_snap_m: float
           ) -> float:
    """Halo width in metres: ``cap_s * max_speed_mps + cell_max_snap_m + facility_max_snap_m`` (see the
    module docstring for why no path within the cap leaves it)."""
    return cap_s * max_speed_mps + cell_max_snap_m + facility_max_snap_m


# --------------------------------------------------------------------------------------------------
# Clipping
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Clip:
    """A network clipped to a box: the kept edges and nodes (global indices, ascending) and the
    re-indexed routing arrays (``edge_u``/``edge_v`` index the kept nodes, ``edge_reverse`` the kept
    edges, -1 for none)."""

    edge_index: np.ndarray
    node_index: np.ndarray
    edge_u: np.ndarray
    edge_v: np.ndarray
    edge_reverse: np.ndarray

    @property
    def n_nodes(self) -> int:
        return int(self.node_index.shape[0])

    def local_edges(self, edges: np.ndarray) -> np.ndarray:
        """Positions in the clip of global edge indices (-1 for -1 or an edge not kept)."""
        edges = np.asarray(edges, dtype=np.int64)
        if self.edge_index.size == 0:
            return np.full(edges.shape, -1, dtype=np.int64)
        pos = np.searchsorted(self.edge_index, edges).clip(0, self.edge_index.size - 1)
        return np.where((edges >= 0) & (self.edge_index[pos] == edges), pos, -1).astype(np.int64)


def edge_bounds(net: Network) -> np.ndarray:
    """``(n_edges, 4)`` bounding boxes ``(xmin, ymin, xmax, ymax)`` of the edge geometries."""
    import shapely

    if net.n_edges == 0:
        return np.zeros((0, 4))
    return np.asarray(shapely.bounds(net.edge_geometry), dtype=float)


def _meets_x(bounds: np.ndarray, x0: float, x1: float) -> np.ndarray:
    """Indices (ascending) of the boxes that meet the strip ``x0 <= x <= x1``."""
    return np.flatnonzero((bounds[:, 0] <= x1) & (bounds[:, 2] >= x0))


def clip_network(net: Network, box: tuple[float, float, float, float], *,
                 bounds: np.ndarray | None = None, candidates: np.ndarray | None = None) -> Clip:
    """The edges of ``net`` whose bounding box meets ``box`` (whole edges, both directions of a road:
    twins share a geometry), in their original order, with the nodes they use. ``candidates``
    (ascending edge indices, e.g. those meeting the box's x range) limits the search."""
    b = edge_bounds(net) if bounds is None else bounds
    x0, y0, x1, y1 = box
    if candidates is None:
        keep = np.flatnonzero((b[:, 0] <= x1) & (b[:, 2] >= x0) & (b[:, 1] <= y1) & (b[:, 3] >= y0))
    else:
        c = b[candidates]
        keep = candidates[(c[:, 0] <= x1) & (c[:, 2] >= x0) & (c[:, 1] <= y1) & (c[:, 3] >= y0)]
    nodes = np.unique(np.concatenate([net.edge_u[keep], net.edge_v[keep]]).astype(np.int64))
    u = np.searchsorted(nodes, net.edge_u[keep]).astype(np.int32)
    v = np.searchsorted(nodes, net.edge_v[keep]).astype(np.int32)
    clip = Clip(edge_index=keep, node_index=nodes, edge_u=u, edge_v=v,
                edge_reverse=np.zeros(0, dtype=np.int64))
    rev = clip.local_edges(net.edge_reverse[keep])
    return Clip(edge_index=keep, node_index=nodes, edge_u=u, edge_v=v, edge_reverse=rev)


def _routing_network(mode: str, n_nodes: int, edge_u: np.ndarray, edge_v: np.ndarray,
                     edge_time_s: np.ndarray, edge_reverse: np.ndarray) -> Network:
    """A :class:`Network` carrying only what routing reads (no coordinates, geometries or attributes)."""
    m = int(edge_u.shape[0])
    return Network(mode=mode, crs="", node_id=np.arange(n_nodes, dtype=np.int64), node_x=np.zeros(n_nodes),
                   node_y=np.zeros(n_nodes), node_component=np.zeros(n_nodes, dtype=np.int32),
                   edge_u=edge_u, edge_v=edge_v, edge_length_m=np.zeros(m), edge_time_s=edge_time_s,
                   edge_reverse=edge_reverse, edge_geometry=np.empty(m, dtype=object),
                   edge_attrs=pd.DataFrame(index=pd.RangeIndex(m)), source="tile")


# --------------------------------------------------------------------------------------------------
# Tile inputs and results
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ServiceTask:
    """One service inside one tile: its edge times on the tile's clip of its mode, its facilities
    (global facility row, local edge, frac, snap distance) and its access speed and cap."""

    service: str
    mode: str
    edge_time_s: np.ndarray
    access_speed_mps: float
    limit_s: float
    src_row: np.ndarray
    src_edge: np.ndarray
    src_frac: np.ndarray
    src_dist_m: np.ndarray
    #: the facilities' fac_id (a fixed-width unicode array: a tile file holds no Python objects)
    src_id: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, dtype="U1"))
    #: 2SFCA of a service with a capacity, in a tile with pieces: the catchment (s; 0 = none), the demand
    #: column and the two score columns (plain, Gaussian)
    catchment_s: float = 0.0
    demand_col: str = ""
    score_cols: tuple[str, str] = ("", "")


#: the arrays of a :class:`ServiceTask` in a tile file
TASK_ARRAYS = ("edge_time_s", "src_row", "src_edge", "src_frac", "src_dist_m", "src_id")


def _write_npz(path: Path, arrays: Mapping[str, np.ndarray], header: Mapping[str, object]) -> Path:
    """One uncompressed ``.npz`` of ``arrays`` and a JSON ``header`` (no Python objects: read without
    pickle)."""
    with open(path, "wb") as fh:
        np.savez(fh, **arrays, header=np.array(json.dumps(header)))  # type: ignore[arg-type]
    return Path(path)


@dataclass(frozen=True, eq=False)
class TileInput:
    """Everything one tile routes on: per mode the clipped network (``n_nodes``, ``edge_u``, ``edge_v``,
    ``edge_reverse``) and the snaps of the tile's cells (``edge`` local, ``frac``, ``dist_m``,
    ``snapped``); per service a :class:`ServiceTask`. ``cells`` are positions in ``CellSnaps.cell_ids``."""

    tile: Tile
    cells: np.ndarray
    networks: dict[str, dict[str, np.ndarray]]
    targets: dict[str, dict[str, np.ndarray]]
    tasks: tuple[ServiceTask, ...]
    #: the cells' centres (metres) and, per mode, the halo of the clip (m) and the snap limit: a tile
    #: without ``targets`` for a mode snaps its cells on its clip itself (:func:`snap_tile_cells`)
    cell_xy: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 2)))
    halo_m: dict[str, float] = dataclasses.field(default_factory=dict)
    cell_max_snap_m: float = 0.0
    #: the cells' ``cell_id`` and the CRS of ``cell_xy``, for the tile's GeoParquet result
    cell_id: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    crs: str = ""
    #: the cell pieces of the tile's cells (``cell``: local position; :data:`Pieces.COLUMNS`) and the
    #: coverage terms it sums per unit and community (:mod:`coverage.unit_sums`); empty: no sums
    pieces: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    terms: tuple[unit_sums.CoverTerm, ...] = ()

    def save(self, path: Path) -> Path:
        """Write the tile as one uncompressed ``.npz`` (arrays plus a JSON header)."""
        arrays = {"cells": self.cells, "cell_xy": self.cell_xy, "cell_id": self.cell_id}
        arrays.update({f"piece/{k}": v for k, v in self.pieces.items()})
        for mode, d in self.networks.items():
            arrays.update({f"net/{mode}/{k}": v for k, v in d.items()})
        for mode, d in self.targets.items():
            arrays.update({f"tgt/{mode}/{k}": v for k, v in d.items()})
        tasks: list[list[object]] = []
        head = {"tile": [self.tile.i, self.tile.j, self.tile.x0, self.tile.y0, self.tile.size_m],
                "modes": sorted(self.networks), "targets": sorted(self.targets),
                "net_keys": {m: sorted(d) for m, d in self.networks.items()}, "halo_m": self.halo_m,
                "cell_max_snap_m": self.cell_max_snap_m, "crs": self.crs, "tasks": tasks,
                "pieces": sorted(self.pieces), "terms": unit_sums.terms_to_json(self.terms)}
        for k, t in enumerate(self.tasks):
            tasks.append([t.service, t.mode, t.access_speed_mps, t.limit_s, t.catchment_s, t.demand_col,
                          list(t.score_cols)])
            for f in TASK_ARRAYS:
                arrays[f"task/{k}/{f}"] = getattr(t, f)
        return _write_npz(path, arrays, head)

    @staticmethod
    def load(path: Path) -> TileInput:
        """Read a tile written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as z:
            head = json.loads(str(z["header"]))
            i, j, x0, y0, size = head["tile"]
            nets = {m: {k: z[f"net/{m}/{k}"] for k in head["net_keys"][m]} for m in head["modes"]}
            tgts = {m: {k: z[f"tgt/{m}/{k}"] for k in ("edge", "frac", "dist_m", "snapped")}
                    for m in head["targets"]}
            tasks = tuple(ServiceTask(service=s, mode=m, access_speed_mps=float(a), limit_s=float(lim),
                                      catchment_s=float(c), demand_col=d, score_cols=(sc[0], sc[1]),
                                      **{f: z[f"task/{k}/{f}"] for f in TASK_ARRAYS})
                          for k, (s, m, a, lim, c, d, sc) in enumerate(head["tasks"]))
            return TileInput(tile=Tile(int(i), int(j), float(x0), float(y0), float(size)), cells=z["cells"],
                             networks=nets, targets=tgts, tasks=tasks, cell_xy=z["cell_xy"],
                             halo_m={m: float(v) for m, v in head["halo_m"].items()},
                             cell_max_snap_m=float(head["cell_max_snap_m"]), cell_id=z["cell_id"],
                             crs=str(head["crs"]), pieces={k: z[f"piece/{k}"] for k in head["pieces"]},
                             terms=unit_sums.terms_from_json(head["terms"]))


@dataclass(frozen=True, eq=False)
class TileResult:
    """Per cell of one tile (``cells``: positions in ``CellSnaps.cell_ids``) and per service: the time
    to the nearest facility (s, inf beyond the cap), its global facility row (-1 for none) and its fac_id
    ("" for none)."""

    tile: str
    cells: np.ndarray
    time_s: dict[str, np.ndarray]
    source_row: dict[str, np.ndarray]
    #: per mode the tile's own snaps of its cells (:data:`SNAP_FIELDS`, ``edge`` global), when it snapped
    snaps: dict[str, dict[str, np.ndarray]] = dataclasses.field(default_factory=dict)
    nearest_id: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    #: the cells' ``cell_id`` and centres (metres, in ``crs``) from the tile's input
    cell_id: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    cell_xy: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 2)))
    crs: str = ""
    #: the exact partial sums of the tile's cell pieces per unit and community (:mod:`coverage.unit_sums`),
    #: with the 2SFCA step 1 per site (grouping ``"site"``, key the global facility row)
    sums: pd.DataFrame | None = None
    #: the tile's 2SFCA work kept for step 2 (in memory; :func:`fca_path` on disk)
    fca: FcaTile | None = None

    def to_frame(self) -> pd.DataFrame:
        """One row per cell: ``cell_id``, ``tt_<service>_s``, ``nearest_<service>_id`` (the names of
        cells.parquet), then what the reduction reads: ``cell`` (position), ``src_<service>`` (facility
        row), ``snap_<mode>_<field>``."""
        named = len(self.cell_id) == len(self.cells)
        cols: dict[str, np.ndarray] = {"cell_id": self.cell_id} if named else {}
        for s in self.time_s:
            cols[f"tt_{s}_s"] = self.time_s[s]
            if s in self.nearest_id:
                cols[f"nearest_{s}_id"] = self.nearest_id[s]
        cols["cell"] = self.cells
        for s in self.time_s:
            cols[f"src_{s}"] = self.source_row[s]
        for mode, d in self.snaps.items():
            cols.update({f"snap_{mode}_{k}": d[k] for k in SNAP_FIELDS})
        return pd.DataFrame(cols)

    def save(self, path: Path) -> Path:
        """Write the result as GeoParquet (cell centres as points in ``crs``; :meth:`to_frame`'s columns),
        or plain parquet when the tile has no CRS; its partial sums to :func:`sums_path`."""
        if self.sums is not None:
            sums_path(Path(path)).parent.mkdir(parents=True, exist_ok=True)
            self.sums.to_parquet(sums_path(Path(path)), index=False)
        df = self.to_frame()
        df.attrs = {}
        if self.crs and len(self.cell_xy) == len(self.cells):
            import geopandas as gpd

            gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(self.cell_xy[:, 0], self.cell_xy[:, 1]),
                             crs=self.crs).to_parquet(path, index=False)
        else:
            df.to_parquet(path, index=False)
        return Path(path)

    @staticmethod
    def load(path: Path) -> TileResult:
        import pyarrow.parquet as pq

        # the GeoParquet's point geometry is for the user; the reduction needs none of it
        df = pd.read_parquet(path, columns=[c for c in pq.read_schema(path).names if c != "geometry"])
        sums = pd.read_parquet(sums_path(Path(path))) if sums_path(Path(path)).is_file() else None
        sids = [c[len("tt_"):-len("_s")] for c in df.columns if c.startswith("tt_")]
        modes = [c[len("snap_"):-len("_edge")] for c in df.columns
                 if c.startswith("snap_") and c.endswith("_edge")]
        return TileResult(tile=Path(path).stem, cells=df["cell"].to_numpy(np.int64),
                          time_s={s: df[f"tt_{s}_s"].to_numpy(float) for s in sids},
                          source_row={s: df[f"src_{s}"].to_numpy(np.int64) for s in sids},
                          snaps={m: {k: df[f"snap_{m}_{k}"].to_numpy() for k in SNAP_FIELDS} for m in modes},
                          nearest_id={s: df[f"nearest_{s}_id"].to_numpy(dtype=object) for s in sids
                                      if f"nearest_{s}_id" in df.columns},
                          cell_id=df["cell_id"].to_numpy(np.int64) if "cell_id" in df.columns
                          else np.zeros(0, dtype=np.int64), sums=sums)


def sums_path(result_path: Path) -> Path:
    """Where a tile's partial sums go: ``<folder>_unit_sums/<tile>.parquet`` beside its result's folder
    (``build/<r>/tiles/tile_3_4.parquet`` -> ``build/<r>/tiles_unit_sums/tile_3_4.parquet``), so that
    ``tiles/`` stays one GeoParquet dataset."""
    folder = result_path.parent
    return folder.with_name(f"{folder.name}_unit_sums") / result_path.name


@dataclass(frozen=True, eq=False)
class Pieces:
    """The cells table's pieces as the tiles sum them per unit and community (:mod:`coverage.unit_sums`):
    per piece the position of its cell among the unique cells (``cell``) and :data:`COLUMNS` (fixed-width
    strings and floats: a tile file holds no Python objects); and the coverage terms."""

    cell: np.ndarray
    columns: dict[str, np.ndarray]
    terms: tuple[unit_sums.CoverTerm, ...]

    COLUMNS = (*unit_sums.GROUPINGS, "unit_class", *unit_sums.POP_COLS)


def pieces_of(cells: pd.DataFrame, cfg: Config, unit_class: Mapping[str, str], *,
              piece_to_cell: np.ndarray | None = None) -> Pieces:
    """The pieces of a cells table (``unit_class``: unit_code -> 城区/郊区 of the units table;
    ``piece_to_cell``: :func:`coverage.access.unique_cells`' when the caller has it)."""
    if piece_to_cell is None:
        _, piece_to_cell, _ = unique_cells(cells)
    codes = cells["unit_code"].astype(str)
    cols = {g: k.astype(str) for g, k in unit_sums.grouping_keys(cells).items()}
    cols["unit_class"] = codes.map(dict(unit_class)).fillna("").to_numpy().astype(str)
    cols.update({p: cells[p].to_numpy(float) for p in unit_sums.POP_COLS})
    return Pieces(cell=piece_to_cell.astype(np.int64), columns=cols,
                  terms=unit_sums.cover_terms(cfg.services, cfg.standards, unit_class.values()))


def _tile_sums(inp: TileInput, times: Mapping[str, np.ndarray],
               fca_costs: Mapping[str, tuple[ServiceTask, sp.csr_matrix]]
               ) -> tuple[pd.DataFrame | None, FcaTile | None]:
    """The exact partial sums of the tile's pieces (:func:`coverage.unit_sums.cell_terms`) with the
    2SFCA step 1 of its sites, and its 2SFCA work for step 2 (both None without pieces)."""
    if not inp.pieces:
        return None, None
    pc = inp.pieces["cell"]
    terms = unit_sums.cell_terms(inp.terms, tt_s={s: t[pc] for s, t in times.items()},
                                 unit_class=inp.pieces["unit_class"],
                                 pops={p: inp.pieces[p] for p in unit_sums.POP_COLS})
    keys = {g: inp.pieces[g] for g in unit_sums.GROUPINGS}
    parts = [exact_sums.partial_sums(keys, terms)]
    fca = FcaTile(keys=keys, services={})
    for sid, (task, cost) in fca_costs.items():
        demand = inp.pieces[task.demand_col]
        fca.services[sid] = FcaService(cost=cost, rows=task.src_row, catchment_s=task.catchment_s,
                                       demand=demand, score_cols=task.score_cols)
        for g in (False, True):
            wm = catchment_weights(cost, catchment_s=task.catchment_s, decay="gaussian" if g else None)
            parts.append(site_demand_partial(wm, demand, site_keys=task.src_row.astype(str),
                                             column=_site_col(sid, g)))
    return exact_sums.merge(parts), fca


def _site_col(sid: str, gaussian: bool) -> str:
    """The column of a site's weighted demand (2SFCA step 1) in a tile's partial sums."""
    return f"{sid}:{'gauss' if gaussian else 'plain'}"


@dataclass(frozen=True, eq=False)
class FcaService:
    """One service's 2SFCA in one tile: travel times ``cost`` (sites x the tile's pieces, within the
    catchment), the sites' global facility rows, the catchment (s), the pieces' demand and the score
    columns (plain, Gaussian)."""

    cost: sp.csr_matrix
    rows: np.ndarray
    catchment_s: float
    demand: np.ndarray
    score_cols: tuple[str, str]


@dataclass(frozen=True, eq=False)
class FcaTile:
    """A tile's 2SFCA work between step 1 (the run adds up the sites' weighted demand) and step 2
    (:func:`fca_tile_sums`): the pieces' unit and community codes and, per service, :class:`FcaService`."""

    keys: dict[str, np.ndarray]
    services: dict[str, FcaService]

    def save(self, path: Path) -> Path:
        """One uncompressed ``.npz`` (arrays plus a JSON header)."""
        arrays: dict[str, np.ndarray] = {f"key/{g}": v for g, v in self.keys.items()}
        head: dict[str, object] = {"keys": sorted(self.keys), "services": {}}
        for sid, f in self.services.items():
            c = f.cost
            arrays.update({f"{sid}/data": c.data, f"{sid}/indices": c.indices, f"{sid}/indptr": c.indptr,
                           f"{sid}/rows": f.rows, f"{sid}/demand": f.demand})
            head["services"][sid] = [list(c.shape), f.catchment_s, list(f.score_cols)]  # type: ignore[index]
        return _write_npz(path, arrays, head)

    @staticmethod
    def load(path: Path) -> FcaTile:
        with np.load(path, allow_pickle=False) as z:
            head = json.loads(str(z["header"]))
            services = {sid: FcaService(
                cost=sp.csr_matrix((z[f"{sid}/data"], z[f"{sid}/indices"], z[f"{sid}/indptr"]),
                                   shape=tuple(shape)),
                rows=z[f"{sid}/rows"], catchment_s=float(c), demand=z[f"{sid}/demand"],
                score_cols=(sc[0], sc[1])) for sid, (shape, c, sc) in head["services"].items()}
            return FcaTile(keys={g: z[f"key/{g}"] for g in head["keys"]}, services=services)


def fca_path(input_path: Path) -> Path:
    """Where a tile's :class:`FcaTile` is kept between the two 2SFCA steps: beside its input file."""
    return Path(input_path).with_suffix(".fca.npz")


def fca_ratios(cfg: Config, facilities: pd.DataFrame, partial: pd.DataFrame
               ) -> dict[str, dict[bool, np.ndarray]]:
    """2SFCA step 1 reduced: per service in ``partial``'s site sums and kernel, ``R_j = S_j / weighted
    demand`` of every facility row (0 for a row that is no site or reaches no demand)."""
    sites = exact_sums.totals(partial, "site")
    rows = sites.index.to_numpy().astype(np.int64) if len(sites) else np.zeros(0, dtype=np.int64)
    out: dict[str, dict[bool, np.ndarray]] = {}
    for col in sites.columns:
        sid, kernel = str(col).split(":")
        s = cfg.services[sid]
        providers = facilities[s.provided_by(facilities)]
        wd = np.zeros(len(facilities))
        wd[rows] = sites[col].fillna(0.0).to_numpy(float)
        supply = unit_sums.site_supply(providers, str(s.capacity_col), list(facilities["fac_id"]))
        out.setdefault(sid, {})[kernel == "gauss"] = site_ratios(supply, wd)
    return out


def fca_tile_sums(fca: FcaTile, ratios: Mapping[str, Mapping[bool, np.ndarray]]) -> pd.DataFrame:
    """2SFCA step 2 in one tile: each piece's score per 1000 (:func:`coverage.access2sfca.cell_scores`
    with the run's ratios) times its demand, as exact partial sums per unit and community."""
    terms: dict[str, np.ndarray] = {}
    for sid, f in fca.services.items():
        scores = {}
        for g in (False, True):
            wm = catchment_weights(f.cost, catchment_s=f.catchment_s, decay="gaussian" if g else None)
            r = ratios.get(sid, {}).get(g)
            ratio = r[f.rows] if r is not None else np.zeros(f.rows.shape[0])
            scores[g] = cell_scores(wm, ratio) * unit_sums.FCA_PER_PERSONS
        terms.update(unit_sums.fca_terms({False: f.score_cols[0], True: f.score_cols[1]}, scores, f.demand))
    return exact_sums.partial_sums(fca.keys, terms)


def finish_fca(cfg: Config, times: TravelTimes, facilities: pd.DataFrame, fsnaps: FacilitySnaps,
               step2: Callable[[dict[str, dict[bool, np.ndarray]]], Sequence[pd.DataFrame]], *,
               skip: Collection[str] = ()) -> TravelTimes:
    """``times`` whose tile sums have 2SFCA step 1 reduced (:func:`fca_ratios`) and step 2 added:
    ``step2(ratios)`` gives every tile's :func:`fca_tile_sums` (in this process, or on the workers)."""
    if times.unit_sums is None:
        return times
    p = times.unit_sums.partial
    parts = step2(fca_ratios(cfg, facilities, p))
    sums = unit_sums.TileSums(partial=exact_sums.merge([p[p["by"] != "site"], *parts]),
                              fca_services=tuple(fca_services(cfg, facilities, fsnaps, skip=skip)))
    return dataclasses.replace(times, unit_sums=sums)


#: what a tile reports of each cell's snap (:class:`~coverage.traveltime.Snap` plus ``uncertain``)
SNAP_FIELDS = ("edge", "frac", "dist_m", "snapped", "x", "y", "uncertain")


def snap_tile_cells(inp: TileInput, mode: str) -> dict[str, np.ndarray]:
    """The tile's cells snapped on its clip of ``mode`` (``edge`` local), bit-identical to the whole
    network's snap for every cell whose nearest road is within its margin, and ``uncertain`` for the others.

    Why: the clip holds every edge whose bounding box meets the core + halo box. A cell ``c`` of the core
    lies at least ``margin(c)`` (its distance to the box's border, >= the halo) inside the box. If the
    clip's nearest road is at ``d <= margin(c)``, the whole network's nearest point (at ``D <= d``) and
    every road tied with it lie in the disc of radius ``margin(c)`` around ``c``, so inside the box: their
    edges are in the clip, the clip's minimum is ``D``, and ties go to the same lowest edge (the clip keeps
    the edges' order; :func:`coverage.traveltime.snap_points` measures positions along each edge from its
    own start). If ``d > margin(c)``, then ``D > margin(c) >= halo >= cell_max_snap_m``: the cell is not
    snapped in either run, and only its reported distance and nearest point may differ; such cells are
    marked ``uncertain`` and re-snapped on the whole network by :func:`reduce_snaps`.
    """
    import shapely

    nd = inp.networks[mode]
    m = int(nd["edge_u"].shape[0])
    geometry = np.empty(m, dtype=object)
    if nd["geom_edge"].size:
        owners, inverse = np.unique(nd["geom_edge"], return_inverse=True)
        geometry[owners] = shapely.linestrings(nd["geom_xy"], indices=inverse)
    routing = _routing_network(mode, int(nd["n_nodes"]), nd["edge_u"], nd["edge_v"], np.ones(m),
                               nd["edge_reverse"])
    net = dataclasses.replace(routing, edge_geometry=geometry)
    snap = snap_points(net, inp.cell_xy, max_snap_m=inp.cell_max_snap_m, workers=1)
    x0, y0, x1, y1 = inp.tile.box(inp.halo_m[mode])
    xy = inp.cell_xy
    margin = np.minimum.reduce([xy[:, 0] - x0, x1 - xy[:, 0], xy[:, 1] - y0, y1 - xy[:, 1]]) if len(xy) \
        else np.zeros(0)
    return {"edge": snap.edge, "frac": snap.frac, "dist_m": snap.dist_m, "snapped": snap.snapped, "x": snap.x,
            "y": snap.y, "uncertain": ~(snap.dist_m <= margin)}


def solve_tile(inp: TileInput) -> TileResult:
    """Route one tile: one multi-source pass per service on its clipped network (no config, no geometry)."""
    times: dict[str, np.ndarray] = {}
    rows: dict[str, np.ndarray] = {}
    ids: dict[str, np.ndarray] = {}
    targets = dict(inp.targets)
    snaps: dict[str, dict[str, np.ndarray]] = {}
    fca_costs: dict[str, tuple[ServiceTask, sp.csr_matrix]] = {}
    for mode in inp.networks:
        if mode not in targets:  # the tile snaps its own cells: routing takes local edges, the result global
            local = snap_tile_cells(inp, mode)
            targets[mode] = local
            glob = inp.networks[mode]["edge_index"]
            snaps[mode] = {**local, "edge": np.where(local["edge"] >= 0, glob[local["edge"].clip(0)], -1)
                           if glob.size else local["edge"]}
    for t in inp.tasks:
        nd, td = inp.networks[t.mode], targets[t.mode]
        net = _routing_network(t.mode, int(nd["n_nodes"]), nd["edge_u"], nd["edge_v"], t.edge_time_s,
                               nd["edge_reverse"])
        n_t = int(td["edge"].shape[0])
        tgt = Snap(edge=td["edge"], frac=td["frac"], dist_m=td["dist_m"], snapped=td["snapped"],
                   x=np.zeros(n_t), y=np.zeros(n_t))
        k = int(t.src_row.shape[0])
        src = Snap(edge=t.src_edge, frac=t.src_frac, dist_m=t.src_dist_m, snapped=np.ones(k, dtype=bool),
                   x=np.zeros(k), y=np.zeros(k))
        if k == 0:
            if t.catchment_s > 0 and inp.pieces:
                fca_costs[t.service] = (t, sp.csr_matrix((0, len(inp.pieces["cell"]))))
            times[t.service] = np.full(n_t, np.inf)
            rows[t.service] = np.full(n_t, -1, dtype=np.int64)
            ids[t.service] = np.full(n_t, "", dtype=object)
            continue
        if t.catchment_s > 0 and inp.pieces:  # the 2SFCA cost matrix: sites x the tile's pieces
            cost = coverage_matrix(net, src, tgt, access_speed_mps=t.access_speed_mps, limit_s=t.catchment_s,
                                   local=False)  # a routing network has no node coordinates
            fca_costs[t.service] = (t, cost.tocsc()[:, inp.pieces["cell"]].tocsr())
        res = nearest_facility_times(net, src, tgt, access_speed_mps=t.access_speed_mps, limit_s=t.limit_s)
        times[t.service] = res.target_time_s
        rows[t.service] = np.where(res.target_source >= 0, t.src_row[res.target_source.clip(0)], -1)
        if len(t.src_id) == k:
            ids[t.service] = np.where(res.target_source >= 0, t.src_id[res.target_source.clip(0)], "")
    sums, fca = _tile_sums(inp, times, fca_costs)
    return TileResult(tile=inp.tile.name, cells=inp.cells, time_s=times, source_row=rows, snaps=snaps,
                      nearest_id={s: v.astype(object) for s, v in ids.items()}, cell_id=inp.cell_id,
                      cell_xy=inp.cell_xy, crs=inp.crs, sums=sums, fca=fca)


# --------------------------------------------------------------------------------------------------
# Partition and reduction
# --------------------------------------------------------------------------------------------------


def cell_centres(cells: pd.DataFrame, csnaps: CellSnaps) -> np.ndarray:
    """``(n_unique_cells, 2)`` centres aligned with ``csnaps.cell_ids`` (the first piece of each cell:
    :func:`coverage.access.unique_cells`, which :func:`coverage.access.snap_cells` aligns them with)."""
    cell_ids, _, centres = unique_cells(cells)
    if not np.array_equal(cell_ids, csnaps.cell_ids):
        raise PipelineError("cell snaps of another cells table: their cell ids differ")
    return centres


def fca_services(cfg: Config, facilities: pd.DataFrame, fsnaps: FacilitySnaps, *,
                 skip: Collection[str] = ()) -> list[str]:
    """Routed services with a capacity: their 2SFCA is computed on network costs (in a tiled run, by the
    tiles; :func:`coverage.access.fca_costs` in one process)."""
    return [sid for sid in routed_services(cfg, facilities, fsnaps, skip=skip)
            if cfg.services[sid].capacity_col]


def routed_services(cfg: Config, facilities: pd.DataFrame, fsnaps: FacilitySnaps, *,
                    skip: Collection[str] = ()) -> list[str]:
    """Services that are routed (assessed and with at least one usable facility)."""
    return [sid for sid, s in cfg.services.items()
            if sid not in skip and usable_facilities(s, facilities, fsnaps).any()]


def partition(cfg: Config, networks: Mapping[str, Network], centres: np.ndarray, csnaps: CellSnaps | None,
              facilities: pd.DataFrame, fsnaps: FacilitySnaps, *, tile_size_m: float,
              skip: Collection[str] = (), cell_ids: np.ndarray | None = None,
              pieces: Pieces | None = None) -> Iterator[TileInput]:
    """Cut the travel-time work into :class:`TileInput` objects, one per tile that owns a cell.

    ``centres`` are the unique cell centres (metres, in the order of ``csnaps.cell_ids``). With
    ``csnaps`` the cells' snaps are the whole network's, re-indexed into each tile's clipped edges;
    without, each tile carries its clip's road geometry and snaps its own cells on every mode
    (:func:`snap_tile_cells`), so the whole set of cells is never snapped in one process. ``cell_ids``
    (aligned with ``centres``) name the cells in the tiles' results. With ``pieces`` each tile also
    carries its cells' pieces and sums them per unit and community.
    """
    sids = routed_services(cfg, facilities, fsnaps, skip=skip)
    services = {sid: cfg.services[sid] for sid in sids}
    snet = {sid: service_network(s, networks, cfg) for sid, s in services.items()}
    caps = {sid: service_cap_s(cfg, s) for sid, s in services.items()}
    # with pieces, a service with a capacity also computes its 2SFCA costs: its reach is the catchment
    catch_s = cfg.standards.fca_catchment_min * 60.0
    fca = {sid for sid in fca_services(cfg, facilities, fsnaps, skip=skip)} if pieces is not None else set()
    reach = {sid: max(caps[sid], catch_s) if sid in fca else caps[sid] for sid in services}
    routed_modes: set[str] = {s.mode for s in services.values()}
    modes = sorted(routed_modes | (set(networks) if csnaps is None else set()))
    halos: dict[str, float] = {}
    for mode in sorted(routed_modes):
        halos[mode] = max(halo_m(cap_s=reach[sid], max_speed_mps=max_speed_mps(snet[sid]),
                                 cell_max_snap_m=cfg.snapping.cell_max_snap_m,
                                 facility_max_snap_m=cfg.snapping.facility_max_snap_m)
                          for sid, s in services.items() if s.mode == mode)
        log.info("Tiles on %s: halo %.0f m (caps %s)", mode, halos[mode],
                 ", ".join(f"{sid} {caps[sid] / 60:g} min" for sid, s in services.items() if s.mode == mode))
    for mode in set(modes) - routed_modes:  # snapped only: as wide as the routed modes' clips, so that as
        # few cells as with them lack a road within their margin (those are snapped again whole)
        halos[mode] = max([cfg.snapping.cell_max_snap_m, *halos.values()])
    tiles, owner = assign_tiles(centres, tile_size_m=tile_size_m)
    fac_ids = facilities["fac_id"].to_numpy().astype(str) if len(facilities) else np.zeros(0, dtype="U1")
    ids_all = np.arange(len(centres), dtype=np.int64) if cell_ids is None else np.asarray(cell_ids, np.int64)
    crs = next((n.crs for n in networks.values()), "")
    bounds = {mode: edge_bounds(networks[mode]) for mode in modes}
    usable = {sid: np.flatnonzero(usable_facilities(s, facilities, fsnaps)) for sid, s in services.items()}
    order = np.argsort(owner, kind="stable")
    starts = np.searchsorted(owner[order], np.arange(len(tiles) + 1))
    if pieces is not None:
        p_order = np.argsort(owner[pieces.cell], kind="stable")
        p_starts = np.searchsorted(owner[pieces.cell][p_order], np.arange(len(tiles) + 1))
    log.info("Partition: %d cells into %d tiles of %.0f m", len(centres), len(tiles), tile_size_m)
    column: dict[tuple[str, int], np.ndarray] = {}  # edges meeting a column of tiles (one scan per column)
    for k, tile in enumerate(tiles):
        cells = order[starts[k]:starts[k + 1]].astype(np.int64)
        nets: dict[str, dict[str, np.ndarray]] = {}
        tgts: dict[str, dict[str, np.ndarray]] = {}
        clips: dict[str, Clip] = {}
        for mode in modes:
            box = tile.box(halos[mode])
            if (mode, tile.i) not in column:
                column = {key: v for key, v in column.items() if key[0] != mode}  # tiles come column-wise
                column[(mode, tile.i)] = _meets_x(bounds[mode], box[0], box[2])
            clip = clip_network(networks[mode], box, bounds=bounds[mode], candidates=column[(mode, tile.i)])
            clips[mode] = clip
            nets[mode] = {"n_nodes": np.array(clip.n_nodes), "edge_u": clip.edge_u, "edge_v": clip.edge_v,
                          "edge_reverse": clip.edge_reverse}
            if csnaps is None:
                nets[mode].update(_clip_geometry(networks[mode], clip))
                continue
            cs = csnaps.by_mode[mode]
            e = np.asarray(cs.edge, dtype=np.int64)[cells]
            snapped = np.asarray(cs.snapped, dtype=bool)[cells] & (e >= 0)
            le = clip.local_edges(e)
            if (snapped & (le < 0)).any():
                raise PipelineError(f"{tile.name}: a cell's snapped {mode} edge lies outside the clipped "
                                    f"network (halo {halos[mode]:.0f} m): a bug in the tiling")
            tgts[mode] = {"edge": np.where(snapped, le, -1), "frac": np.asarray(cs.frac, float)[cells],
                          "dist_m": np.asarray(cs.dist_m, float)[cells], "snapped": snapped}
        tasks = []
        for sid, s in services.items():
            clip = clips[s.mode]
            fs = fsnaps.by_mode[s.mode]
            rows = usable[sid]
            x0, y0, x1, y1 = tile.box(halos[s.mode])
            fx, fy = np.asarray(fs.x, float)[rows], np.asarray(fs.y, float)[rows]
            le = clip.local_edges(np.asarray(fs.edge, dtype=np.int64)[rows])
            inside = (fx >= x0) & (fx <= x1) & (fy >= y0) & (fy <= y1) & (le >= 0)
            r = rows[inside]
            tasks.append(ServiceTask(
                service=sid, mode=s.mode, edge_time_s=snet[sid].edge_time_s[clip.edge_index],
                access_speed_mps=access_speed_mps(s, cfg.walk, cfg.delivery), limit_s=caps[sid],
                src_row=r.astype(np.int64), src_edge=le[inside], src_frac=np.asarray(fs.frac, float)[r],
                src_dist_m=np.asarray(fs.dist_m, float)[r], src_id=fac_ids[r],
                catchment_s=catch_s if sid in fca else 0.0, demand_col=s.demand_col if sid in fca else "",
                score_cols=(s.fca_column(gaussian=False), s.fca_column(gaussian=True)) if sid in fca
                else ("", "")))
        own: dict[str, np.ndarray] = {}
        if pieces is not None:  # the tile's pieces; cell: a position among the tile's (ascending) cells
            pk = p_order[p_starts[k]:p_starts[k + 1]]
            own = {"cell": np.searchsorted(cells, pieces.cell[pk]).astype(np.int64),
                   **{c: v[pk] for c, v in pieces.columns.items()}}
        yield TileInput(tile=tile, cells=cells, networks=nets, targets=tgts, tasks=tuple(tasks),
                        cell_xy=centres[cells], halo_m=dict(halos),
                        cell_max_snap_m=cfg.snapping.cell_max_snap_m, cell_id=ids_all[cells], crs=crs,
                        pieces=own, terms=() if pieces is None else pieces.terms)


def _clip_geometry(net: Network, clip: Clip) -> dict[str, np.ndarray]:
    """What a tile snaps on: the global index of each clipped edge, and the coordinates of the clip's
    physical edges (``geom_xy``, with ``geom_edge`` the local edge each vertex belongs to)."""
    import shapely

    phys = physical_edge_index(clip.edge_reverse)  # a clip keeps both edges of a pair, in their order
    xy, owner = (shapely.get_coordinates(net.edge_geometry[clip.edge_index[phys]], return_index=True)
                 if phys.size else (np.zeros((0, 2)), np.zeros(0, dtype=np.int64)))
    return {"edge_index": clip.edge_index.astype(np.int64), "geom_xy": xy,
            "geom_edge": phys[owner].astype(np.int64)}


def reduce_results(cfg: Config, results: Sequence[TileResult], *, n_cells: int, facilities: pd.DataFrame,
                   fsnaps: FacilitySnaps, skip: Collection[str] = ()) -> TravelTimes:
    """The per-tile results as one :class:`~coverage.access.TravelTimes` (the table
    :func:`coverage.access.travel_times` returns: NaN for a skipped service, inf and "" for a cell no
    facility reaches within the cap)."""
    ids_all = facilities["fac_id"].to_numpy()
    out: dict[str, ServiceTimes] = {}
    seen = np.zeros(n_cells, dtype=np.int64)
    for r in results:
        seen[r.cells] += 1
    if results and not (seen == 1).all():
        raise PipelineError(f"tiles cover {int((seen == 0).sum())} cells not at all and "
                            f"{int((seen > 1).sum())} more than once: a bug in the tiling")
    for sid, s in cfg.services.items():
        if sid in skip:
            out[sid] = ServiceTimes(time_s=np.full(n_cells, np.nan),
                                    nearest_id=np.full(n_cells, "", dtype=object), n_facilities=0)
            continue
        n_fac = int(usable_facilities(s, facilities, fsnaps).sum())
        tt = np.full(n_cells, np.inf)
        src = np.full(n_cells, -1, dtype=np.int64)
        for r in results:
            if sid in r.time_s:
                tt[r.cells] = r.time_s[sid]
                src[r.cells] = r.source_row[sid]
        nid = np.where(src >= 0, ids_all[src.clip(0)] if len(ids_all) else "", "")
        out[sid] = ServiceTimes(time_s=tt, nearest_id=np.asarray(nid, dtype=object), n_facilities=n_fac)
    caps = {sid: service_cap_s(cfg, s) for sid, s in cfg.services.items() if sid not in skip}
    sums = (unit_sums.TileSums(partial=exact_sums.merge([r.sums for r in results if r.sums is not None]))
            if results and all(r.sums is not None for r in results) else None)
    return TravelTimes(by_service=out, time_cap_s=caps, tiles=len(results), unit_sums=sums)


def reduce_snaps(results: Sequence[TileResult], *, cell_ids: np.ndarray, piece_to_cell: np.ndarray,
                 centres: np.ndarray, networks: Mapping[str, Network], cell_max_snap_m: float) -> CellSnaps:
    """The tiles' own snaps of their cells as one :class:`~coverage.access.CellSnaps`, equal to
    :func:`coverage.access.snap_cells`: the few ``uncertain`` cells (no road within their margin: not
    snapped, but their distance to the nearest road may lie beyond the clip) are snapped again on the
    whole network."""
    n = int(cell_ids.shape[0])
    by_mode: dict[str, Snap] = {}
    for mode, net in networks.items():
        cols = {"edge": np.full(n, -1, dtype=np.int64), "frac": np.full(n, np.nan),
                "dist_m": np.full(n, np.inf), "snapped": np.zeros(n, dtype=bool), "x": np.full(n, np.nan),
                "y": np.full(n, np.nan), "uncertain": np.ones(n, dtype=bool)}
        for r in results:
            for k, v in r.snaps[mode].items():
                cols[k][r.cells] = v
        again = np.flatnonzero(cols["uncertain"])
        if again.size:
            fix = snap_points(net, centres[again], max_snap_m=cell_max_snap_m)
            for k in SNAP_FIELDS[:-1]:  # the Snap fields (not "uncertain")
                cols[k][again] = getattr(fix, k)
        log.info("Snaps on %s from %d tiles; %d cell(s) with no road within the tile's halo snapped again "
                 "on the whole network", mode, len(results), again.size)
        by_mode[mode] = Snap(edge=cols["edge"], frac=cols["frac"], dist_m=cols["dist_m"],
                             snapped=cols["snapped"], x=cols["x"], y=cols["y"])
    return CellSnaps(cell_ids=cell_ids, piece_to_cell=piece_to_cell, by_mode=by_mode)


def reduce_tiles(cfg: Config, results: Sequence[TileResult], networks: Mapping[str, Network],
                 cells: pd.DataFrame, facilities: pd.DataFrame, fsnaps: FacilitySnaps, *,
                 skip: Collection[str] = ()) -> tuple[CellSnaps, TravelTimes]:
    """The results of tiles that snapped their own cells as what :func:`coverage.access.snap_cells` and
    :func:`coverage.access.travel_times` return (:func:`reduce_snaps`, :func:`reduce_results`)."""
    cell_ids, piece_to_cell, centres = unique_cells(cells)
    csnaps = reduce_snaps(results, cell_ids=cell_ids, piece_to_cell=piece_to_cell, centres=centres,
                          networks=networks, cell_max_snap_m=cfg.snapping.cell_max_snap_m)
    return csnaps, reduce_results(cfg, results, n_cells=len(cell_ids), facilities=facilities, fsnaps=fsnaps,
                                  skip=skip)


def tiled_snaps_and_times(cfg: Config, networks: Mapping[str, Network], cells: pd.DataFrame,
                          facilities: pd.DataFrame, fsnaps: FacilitySnaps, *, tile_size_m: float,
                          skip: Collection[str] = (), unit_class: Mapping[str, str] | None = None
                          ) -> tuple[CellSnaps, TravelTimes]:
    """Cells snapped and routed tile by tile, in this process (the reference for :mod:`coverage.cluster`):
    equal to :func:`coverage.access.snap_cells` and :func:`coverage.access.travel_times` under the cap;
    with ``unit_class`` (unit_code -> class) the tiles also sum their pieces per unit, 2SFCA included, in
    two steps (``TravelTimes.unit_sums``)."""
    cell_ids, piece_to_cell, centres = unique_cells(cells)
    pieces = None if unit_class is None else pieces_of(cells, cfg, unit_class, piece_to_cell=piece_to_cell)
    results = [solve_tile(t) for t in partition(cfg, networks, centres, None, facilities, fsnaps,
                                                tile_size_m=tile_size_m, skip=skip, cell_ids=cell_ids,
                                                pieces=pieces)]
    csnaps, times = reduce_tiles(cfg, results, networks, cells, facilities, fsnaps, skip=skip)
    return csnaps, finish_fca(cfg, times, facilities, fsnaps, skip=skip, step2=lambda ratios: [
        fca_tile_sums(r.fca, ratios) for r in results if r.fca is not None])


def tiled_travel_times(cfg: Config, networks: Mapping[str, Network], cells: pd.DataFrame, csnaps: CellSnaps,
                       facilities: pd.DataFrame, fsnaps: FacilitySnaps, *, tile_size_m: float,
                       skip: Collection[str] = ()) -> TravelTimes:
    """:func:`partition`, :func:`solve_tile` per tile and :func:`reduce_results`, in this process (the
    reference for :mod:`coverage.cluster`; equal to :func:`coverage.access.travel_times` under the cap)."""
    centres = cell_centres(cells, csnaps)
    results = [solve_tile(t) for t in partition(cfg, networks, centres, csnaps, facilities, fsnaps,
                                                tile_size_m=tile_size_m, skip=skip)]
    return reduce_results(cfg, results, n_cells=len(csnaps.cell_ids), facilities=facilities, fsnaps=fsnaps,
                          skip=skip)
