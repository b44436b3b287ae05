"""Tiled snapping and travel times on dask.distributed: partition to files, tiles on workers, reduce.

The run's cell-snapping and travel-time stage, distributed (:class:`TiledTravelTimes` is what
:func:`coverage.pipeline.run` calls instead of :func:`coverage.access.snap_cells` +
:func:`coverage.access.travel_times`; :func:`tiled_stage` is its body on a given client):

1. **partition** (this process): :func:`coverage.tiling.partition` cuts the work into tiles and each
   tile's inputs (clipped network arrays with their road geometry, its cells' centres, the facilities in
   its halo) are written to ``<tmp build>/.tiles/in/<tile>.npz``;
2. **map** (workers): each task gets only a file path, reads its own tile, snaps its cells on its clipped
   roads and routes them (:func:`coverage.tiling.solve_tile`) and writes ``tiles/<tile>.parquet`` (per
   cell: its snap per mode, time and nearest facility row per service) and ``tiles_unit_sums/<tile>.parquet``
   (its cell pieces' population and coverage summed per unit and community, exactly, and 2SFCA step 1:
   the weighted demand per site), returning the path and the number of cells. Nothing larger than a path
   travels through the scheduler. A task that raises is retried once (``retries=1``), then the run fails
   naming the tile;
3. **reduce** (this process): the per-tile tables become one :class:`~coverage.access.CellSnaps` and one
   :class:`~coverage.access.TravelTimes`, the same tables the single-process path gives (bit-identical
   snaps; times under the cap, :mod:`coverage.tiling`); the tiles' partial sums are added up
   (:mod:`coverage.exact_sums`: bit for bit the whole table's sums);
4. **2SFCA step 2** (workers): the sites' ratios of the whole region go to a file, and each tile turns its
   kept cost matrices into its pieces' scores and sums them per unit (a second map over the tiles).

The per-unit population, coverage and 2SFCA columns of the indicators are that reduction
(``TravelTimes.unit_sums``); the later stages (isochrones, covered flags, standards, gaps, outputs, maps)
run unchanged on the reduced tables, and every output table equals the untiled run's.

Still in one process: reading the inputs (networks, facilities, population), snapping the facilities
(on the whole network), the cells table, and isochrones, gaps and the data-confidence measures. A region
below ``[tiles] min_cells`` keeps the single-process path (logged); ``mode`` forces either. With
``scheduler`` the tile files must be on a file system the workers share.

Progress (tiles done / total, cells per second) is logged as tiles complete (``as_completed``).
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from coverage import access, tiling
from coverage.config import Config
from coverage.errors import ClusterError, TileError
from coverage.graph import Network

if TYPE_CHECKING:
    from distributed import Client

log = logging.getLogger(__name__)

__all__ = ["ClusterOptions", "TiledTravelTimes", "check_workers", "connect", "open_client", "run_tiles",
           "tiled_stage", "use_tiles", "warm_up"]

Mode = Literal["auto", "tiled", "untiled"]


@dataclass(frozen=True)
class ClusterOptions:
    """How a run computes its travel times.

    Attributes
    ----------
    workers : int or None
        Worker processes of the LocalCluster (one thread each); None = the machine's cores.
    scheduler : str or None
        Address of an existing dask scheduler (``tcp://host:port``); no LocalCluster is started.
    mode : "auto", "tiled" or "untiled"
        ``auto`` tiles a region with at least ``[tiles] min_cells`` populated cells.
    tile_size_m : float or None
        Tile side, metres; None = ``[tiles] tile_size_m``.
    """

    workers: int | None = None
    scheduler: str | None = None
    mode: Mode = "auto"
    tile_size_m: float | None = None


def check_workers(workers: int, *, cores: int | None = None) -> None:
    """Refuse a LocalCluster with more worker processes than cores (each holds a tile's network and
    cells: oversubscribing multiplies memory without any speed-up)."""
    cores = cores or os.cpu_count() or 1
    if workers < 1:
        raise ClusterError(f"--workers {workers}: expected at least 1 worker process")
    if workers > cores:
        raise ClusterError(f"--workers {workers} is more than the {cores} cores of this machine: each worker "
                           f"is a process holding one tile, so extra workers only add memory. Use WORKERS="
                           f"{cores} or fewer, or SCHEDULER=tcp://host:port for a larger cluster")


def connect(address: str, *, timeout_s: float = 10.0) -> Client:
    """A client of the scheduler at ``address``; a :class:`ClusterError` (one line) when it cannot be
    reached within ``timeout_s``."""
    from distributed import Client

    try:
        return Client(address, timeout=f"{timeout_s}s", set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ClusterError(f"cannot reach the dask scheduler at {address} within {timeout_s:g} s "
                           f"({reason[:200]}). Start it (`dask scheduler`, then `dask worker {address}` on "
                           f"each machine), check the address, or leave SCHEDULER empty for a local "
                           f"cluster") from None


@contextmanager
def open_client(opts: ClusterOptions) -> Iterator[Client]:
    """A client of ``opts.scheduler``, or of a LocalCluster of ``opts.workers`` processes (one thread
    each) closed on exit."""
    if opts.scheduler:
        client = connect(opts.scheduler)
        try:
            yield client
        finally:
            client.close()
        return
    from distributed import Client, LocalCluster

    n = opts.workers or os.cpu_count() or 1
    check_workers(n)
    # the scheduler and nannies of a LocalCluster log every connection at INFO in this process
    for name in [k for k in logging.root.manager.loggerDict if k.startswith("distributed")]:
        logging.getLogger(name).setLevel(max(logging.getLogger(name).getEffectiveLevel(), logging.WARNING))
    log.info("Starting a LocalCluster of %d worker processes (1 thread each)", n)
    with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
                      silence_logs=logging.WARNING) as lc, Client(lc, set_as_default=False) as client:
        yield client


def _import_engine() -> None:
    """Worker side: import the routing modules and the GeoParquet writer (a few seconds of imports,
    overlapped with the partition)."""
    import geopandas  # noqa: F401

    import coverage.tiling  # noqa: F401


def warm_up(client: Client) -> list[Any]:
    """Start importing the engine on every worker without waiting (it runs while the partition writes
    the tile files); keep the returned futures until the tiles are submitted."""
    return [client.submit(_import_engine, pure=False, workers=[w], allow_other_workers=False,
                          key=f"warm-up-{uuid.uuid4().hex[:8]}")
            for w in client.scheduler_info().get("workers", {})]


def _tile_task(in_path: str, out_path: str) -> tuple[str, int]:
    """Worker side: read one tile, route it, write its result (and its 2SFCA work for step 2, beside its
    input); returns (result path, cells)."""
    inp = tiling.TileInput.load(Path(in_path))
    res = tiling.solve_tile(inp)
    res.save(Path(out_path))
    if res.fca is not None:
        res.fca.save(tiling.fca_path(Path(in_path)))
    return out_path, int(inp.cells.shape[0])


def _fca_task(in_path: str, out_path: str, *, ratios_path: str) -> tuple[str, int]:
    """Worker side, 2SFCA step 2: one tile's :class:`~coverage.tiling.FcaTile` and the run's site ratios
    in, the tile's exact partial sums per unit and community out; returns (path, pieces)."""
    fca = tiling.FcaTile.load(Path(in_path))
    ratios = load_ratios(Path(ratios_path))
    tiling.fca_tile_sums(fca, ratios).to_parquet(out_path, index=False)
    return out_path, int(next(iter(fca.keys.values())).shape[0]) if fca.keys else 0


def save_ratios(ratios: Mapping[str, Mapping[bool, Any]], path: Path) -> Path:
    """The run's 2SFCA site ratios (:func:`coverage.tiling.fca_ratios`) as one ``.npz``."""
    with open(path, "wb") as fh:
        np.savez(fh, **{f"{sid}/{int(g)}": r for sid, by in ratios.items() for g, r in by.items()})
    return path


def load_ratios(path: Path) -> dict[str, dict[bool, Any]]:
    out: dict[str, dict[bool, Any]] = {}
    with np.load(path, allow_pickle=False) as z:
        for k in z.files:
            sid, g = k.rsplit("/", 1)
            out.setdefault(sid, {})[bool(int(g))] = z[k]
    return out


def run_tiles(client: Client, tiles: Sequence[tuple[str, Path]], out_dir: Path, *, retries: int = 1,
              task: Callable[[str, str], tuple[str, int]] = _tile_task, what: str = "Tiles",
              unit: str = "cells") -> list[Path]:
    """Route every ``(name, input path)`` on the cluster; the result paths, in input order.

    Each task (``task(input path, output path) -> (output path, cells)``, importable by the workers) is
    retried ``retries`` times; a tile that still fails cancels the others and raises a
    :class:`TileError` naming it. Progress is logged as tiles complete.
    """
    from distributed import as_completed

    out_dir.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex[:8]
    futures = {client.submit(task, str(p), str(out_dir / f"{name}.parquet"), key=f"{name}-{token}",
                             retries=retries, pure=False): k for k, (name, p) in enumerate(tiles)}
    done: dict[int, Path] = {}
    t0 = last = time.perf_counter()
    n_cells = 0
    for fut in as_completed(list(futures), loop=client.loop):
        k = futures[fut]
        if fut.status != "finished":
            exc = fut.exception()
            for other in futures:
                other.cancel()
            raise TileError(f"tile {tiles[k][0]} failed after {retries + 1} attempt(s): "
                            f"{type(exc).__name__}: {exc} (input {tiles[k][1]}); no outputs were written")
        path, cells = fut.result()
        done[k] = Path(path)
        n_cells += cells
        now = time.perf_counter()
        if now - last >= 1.0 or len(done) == len(tiles) or len(done) <= 3:
            last = now
            log.info("%s %d/%d done, %d %s, %.0f %s/s", what, len(done), len(tiles), n_cells, unit,
                     n_cells / max(now - t0, 1e-9), unit)
    return [done[k] for k in range(len(tiles))]


def use_tiles(mode: Mode, n_cells: int, min_cells: int) -> bool:
    """Whether a run is tiled: forced by ``mode``, else when it has at least ``min_cells`` cells."""
    return mode == "tiled" or (mode == "auto" and n_cells >= min_cells)


class TiledTravelTimes:
    """The travel-time stage of a run: tiled on dask.distributed, or the single-process
    :func:`coverage.access.travel_times` for a small region (see the module docstring)."""

    def __init__(self, opts: ClusterOptions) -> None:
        self.opts = opts

    def __call__(self, cfg: Config, networks: Mapping[str, Network], cells: pd.DataFrame,
                 facilities: pd.DataFrame, fsnaps: access.FacilitySnaps, *, skip: Collection[str] = (),
                 work_dir: Path | None = None, unit_class: Mapping[str, str] | None = None
                 ) -> tuple[access.CellSnaps, access.TravelTimes]:
        n = int(cells["cell_id"].nunique())
        if not use_tiles(self.opts.mode, n, cfg.tiles.min_cells):
            if self.opts.mode == "untiled":
                log.info("Travel times in one process (--untiled)")
            else:
                log.info("Travel times in one process: %d cells < [tiles] min_cells = %d (--tiled forces "
                         "tiles)", n, cfg.tiles.min_cells)
            csnaps = access.snap_cells(cfg, networks, cells)
            return csnaps, access.travel_times(cfg, networks, csnaps, facilities, fsnaps, skip=skip)
        size = self.opts.tile_size_m or cfg.tiles.tile_size_m
        log.info("Snapping and travel times in tiles of %.0f m on dask.distributed (%d cells; %s)", size, n,
                 "forced by --tiled" if self.opts.mode == "tiled" else f">= [tiles] min_cells = "
                 f"{cfg.tiles.min_cells}")
        with open_client(self.opts) as client:
            csnaps, times, _ = tiled_stage(client, cfg, networks, cells, facilities, fsnaps, tile_size_m=size,
                                           skip=skip, work_dir=work_dir, unit_class=unit_class)
        return csnaps, times


def tiled_stage(client: Client, cfg: Config, networks: Mapping[str, Network], cells: pd.DataFrame,
                facilities: pd.DataFrame, fsnaps: access.FacilitySnaps, *, tile_size_m: float,
                skip: Collection[str] = (), work_dir: Path | None = None,
                unit_class: Mapping[str, str] | None = None
                ) -> tuple[access.CellSnaps, access.TravelTimes, dict[str, float]]:
    """Partition, map and reduce on ``client``: the cells' snaps, the travel times and the seconds of
    each step (``partition_s``, ``map_s``, ``reduce_s``, and ``fca_s`` for the 2SFCA step 2).

    ``work_dir`` is the run's tmp build folder: the tile inputs are scratch in ``<work_dir>/.tiles/``
    (removed), and the tiles' results stay as ``<work_dir>/tiles/<tile>.parquet``, one GeoParquet file
    per tile (the partitioned travel times of the run). Without it everything goes to a temporary
    folder that is removed. With ``unit_class`` (unit_code -> 城区/郊区) each tile also sums its cell
    pieces per unit and community (``<work_dir>/tiles_unit_sums/<tile>.parquet``), and the reduction adds
    them up (``TravelTimes.unit_sums``: the per-unit population and coverage indicators)."""
    cell_ids, piece_to_cell, centres = access.unique_cells(cells)
    pieces = (None if unit_class is None
              else tiling.pieces_of(cells, cfg, unit_class, piece_to_cell=piece_to_cell))
    scratch = (Path(tempfile.mkdtemp(prefix="coverage-tiles-")) if work_dir is None
               else Path(work_dir) / ".tiles")
    out_dir = scratch / "out" if work_dir is None else Path(work_dir) / "tiles"
    try:
        warm = warm_up(client)
        t0 = time.perf_counter()
        (scratch / "in").mkdir(parents=True, exist_ok=True)
        inputs = [(t.tile.name, t.save(scratch / "in" / f"{t.tile.name}.npz"))
                  for t in tiling.partition(cfg, networks, centres, None, facilities, fsnaps,
                                            tile_size_m=tile_size_m, skip=skip, cell_ids=cell_ids,
                                            pieces=pieces)]
        t1 = time.perf_counter()
        log.info("Partition: %d tile files written in %.1f s", len(inputs), t1 - t0)
        paths = run_tiles(client, inputs, out_dir)
        del warm  # the warm-up futures, done by now
        t2 = time.perf_counter()
        results = [tiling.TileResult.load(p) for p in paths]
        csnaps, times = tiling.reduce_tiles(cfg, results, networks, cells, facilities, fsnaps, skip=skip)
        t3 = time.perf_counter()
        steps = {"partition_s": t1 - t0, "map_s": t2 - t1, "reduce_s": t3 - t2}
        if times.unit_sums is not None:  # 2SFCA step 2 on the workers, with the whole region's site ratios

            def step2(ratios: dict[str, dict[bool, Any]]) -> list[pd.DataFrame]:
                path = save_ratios(ratios, scratch / "fca_ratios.npz")
                work = [(name, tiling.fca_path(p)) for name, p in inputs if tiling.fca_path(p).is_file()]
                parts = run_tiles(client, work, scratch / "fca_out", what="2SFCA tiles", unit="cell pieces",
                                  task=functools.partial(_fca_task, ratios_path=str(path)))
                return [pd.read_parquet(p) for p in parts]

            times = tiling.finish_fca(cfg, times, facilities, fsnaps, step2, skip=skip)
            steps["fca_s"] = time.perf_counter() - t3
        return csnaps, times, steps
    finally:
        shutil.rmtree(scratch, ignore_errors=True)  # the tile inputs are scratch, never outputs
