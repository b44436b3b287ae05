"""The highway ways of an OSM file: read once with pyosmium, kept on disk in lon/lat tiles.

:func:`read_osm_ways` parses every ``highway=*`` way of a ``.osm`` / ``.osm.bz2`` / ``.osm.pbf`` file
(mode independent, WGS84) into :class:`OsmWays`, flat arrays; :func:`clip_ways` keeps the ways with a
node inside a polygon. Parsing is a Python loop over every node ref: minutes for a province extract.

The tile cache (issue 13, "province scale")
-------------------------------------------
:func:`read_osm_ways_cached` parses the file ONCE into ``<cache_root>/<key>/`` and then reads only
the tiles a bounding box meets:

* ``key`` = sha1 of the file's resolved path, size, ``mtime_ns``, :data:`CACHE_FORMAT` and the tile
  size: a changed file (touched, appended, replaced) gets a new folder; the folders of its older
  versions are removed when the new one is written.
* Tiles are squares of :data:`TILE_DEG` degrees, indexed ``(floor(lon / d), floor(lat / d))``. A way
  is stored in the tile of each of its nodes (once per tile), with its position in the file
  (``way_pos``); a read concatenates the tiles meeting the bbox, keeps each ``way_pos`` once and sorts
  by it. So a read with a bbox returns exactly the ways of :func:`read_osm_ways` having a node in
  one of those tiles, in the file's order, with bit-identical arrays (float64 lon/lat, int64 ids);
  without a bbox it returns :func:`read_osm_ways` exactly. Every node inside a polygon lies in a tile
  meeting the polygon's bounds, so ``clip_ways(read(bbox=polygon.bounds), polygon)`` equals
  ``clip_ways(read_osm_ways(path), polygon)``.
* ``n_missing_locations`` of any read is the WHOLE file's count (as :meth:`OsmWays.subset` keeps it);
  the manifest also keeps the whole file's way count and lon/lat bounds (:class:`WaysExtent`), which
  the "no way near the study area" message needs.
* Files: ``tile_<ix>_<iy>.parquet`` (one row per way: ``way_pos``, ``way_id``, the :data:`WAY_TAGS`,
  list columns ``node_ref``, ``lon``, ``lat``) and ``manifest.json`` (source, size, mtime, counts,
  tile size, tiles with their way counts, bytes and lon/lat bounds), written into
  ``<key>.tmp-<pid>/`` and renamed into place: a killed build never leaves a folder that is trusted.
  A folder whose manifest is unreadable or does not match, or whose tiles are missing, truncated or
  unreadable, is ignored with a WARNING and rebuilt; ``.tmp-<pid>`` folders of dead processes are
  removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
import shapely

from coverage.errors import NetworkInputError

log = logging.getLogger(__name__)

__all__ = [
    "CACHE_FORMAT",
    "TILE_DEG",
    "WAY_TAGS",
    "OsmWays",
    "WaysExtent",
    "cache_folder",
    "clip_ways",
    "osm_cache_extent",
    "read_osm_ways",
    "read_osm_ways_cached",
    "ways_extent",
]

#: OSM way tags read from the file (every other tag is ignored).
WAY_TAGS = ("highway", "name", "oneway", "junction", "foot", "bicycle", "access", "area", "maxspeed",
            "oneway:bicycle")

#: Side of a cache tile, degrees of lon and of lat (0.25 deg: about 28 x 24 km at 30 deg N; a county
#: study area with its halo meets a handful of tiles, a province extract makes a few hundred).
TILE_DEG = 0.25
#: Version of the on-disk layout; part of the cache key, so a new layout never reads an old cache.
CACHE_FORMAT = 1
MANIFEST = "manifest.json"


# --------------------------------------------------------------------------------------------
# OSM reading (mode independent, done once)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class OsmWays:
    """Highway ways of an OSM file as flat arrays (mode independent, WGS84).

    Attributes
    ----------
    way_id : ndarray[int64], shape (n_ways,)
    tags : DataFrame
        One row per way, columns :data:`WAY_TAGS` (str, ``""`` when absent).
    way_ptr : ndarray[int64], shape (n_ways + 1,)
        Way ``i`` holds node refs ``node_ref[way_ptr[i]:way_ptr[i+1]]``.
    node_ref : ndarray[int64]
        OSM node ids, in way order.
    lon, lat : ndarray[float64]
        Location of each ref (degrees, WGS84).
    source : str
    n_missing_locations : int
        Refs dropped because the file has no location for them (ways cut by the extract border): the
        WHOLE file's count, also in a :meth:`subset`, a clip or a tile-cache read.
    """

    way_id: np.ndarray
    tags: pd.DataFrame
    way_ptr: np.ndarray
    node_ref: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    source: str = ""
    n_missing_locations: int = 0

    @property
    def n_ways(self) -> int:
        return int(self.way_id.shape[0])

    def subset(self, keep: np.ndarray) -> OsmWays:
        """The ways where ``keep`` (bool, n_ways) is true, as a new object."""
        keep = np.asarray(keep, dtype=bool)
        counts = np.diff(self.way_ptr)
        ref_keep = np.repeat(keep, counts)
        ptr = np.concatenate([[0], np.cumsum(counts[keep])]).astype(np.int64)
        return OsmWays(self.way_id[keep], self.tags[keep].reset_index(drop=True), ptr,
                       self.node_ref[ref_keep], self.lon[ref_keep], self.lat[ref_keep], self.source,
                       self.n_missing_locations)


def _check_osm_file(path: Path) -> os.stat_result:
    """The file's stat, or the error for a missing or empty OSM file (the one rule for both readers)."""
    if not path.is_file():
        raise NetworkInputError(f"{path}: OSM file not found. Check `network.path` in the region config "
                                f"(a .osm, .osm.bz2 or .osm.pbf file).")
    st = path.stat()
    if st.st_size == 0:
        raise NetworkInputError(f"{path}: the OSM file is empty (0 bytes). Fix: download the extract again "
                                f"(e.g. from download.geofabrik.de) or correct `network.path`.")
    return st


def read_osm_ways(path: str | Path) -> OsmWays:
    """Read every ``highway=*`` way of an OSM file with node locations.

    Parameters
    ----------
    path : .osm, .osm.bz2 or .osm.pbf file.

    Returns
    -------
    OsmWays
        Ways with at least two located nodes. Refs without a location (outside the extract) are
        dropped from their way and counted in ``n_missing_locations``.
    """
    import osmium

    path = Path(path)
    _check_osm_file(path)
    t0 = time.perf_counter()
    way_ids: list[int] = []
    tag_rows: list[tuple[str, ...]] = []
    ptr: list[int] = [0]
    refs: list[int] = []
    lons: list[float] = []
    lats: list[float] = []
    missing = 0
    try:
        fp = (osmium.FileProcessor(str(path), osmium.osm.NODE | osmium.osm.WAY)
              .with_locations()
              .with_filter(osmium.filter.EntityFilter(osmium.osm.WAY))
              .with_filter(osmium.filter.KeyFilter("highway")))
        for w in cast(Iterable["osmium.osm.Way"], fp):  # the EntityFilter passes ways only
            n0 = len(refs)
            for nd in w.nodes:
                loc = nd.location
                if loc.valid():
                    refs.append(nd.ref)
                    lons.append(loc.lon)
                    lats.append(loc.lat)
                else:
                    missing += 1
            if len(refs) - n0 < 2:
                del refs[n0:], lons[n0:], lats[n0:]
                continue
            tags = w.tags
            way_ids.append(w.id)
            tag_rows.append(tuple(tags.get(k) or "" for k in WAY_TAGS))
            ptr.append(len(refs))
    except RuntimeError as exc:
        raise NetworkInputError(f"{path}: cannot read as OSM data ({exc}). Give a .osm, .osm.bz2 or "
                                f".osm.pbf file in `network.path`.") from None
    ways = OsmWays(
        way_id=np.asarray(way_ids, dtype=np.int64),
        tags=pd.DataFrame(tag_rows, columns=list(WAY_TAGS), dtype=object) if tag_rows
        else pd.DataFrame({k: pd.Series(dtype=object) for k in WAY_TAGS}),
        way_ptr=np.asarray(ptr, dtype=np.int64),
        node_ref=np.asarray(refs, dtype=np.int64),
        lon=np.asarray(lons, dtype=np.float64),
        lat=np.asarray(lats, dtype=np.float64),
        source=str(path),
        n_missing_locations=missing,
    )
    log.info("Read %d highway ways (%d node refs, %d refs without location) from %s in %.1f s",
             ways.n_ways, len(refs), missing, path, time.perf_counter() - t0)
    return ways


def clip_ways(ways: OsmWays, polygon_wgs84: Any) -> OsmWays:
    """Ways with at least one node inside ``polygon_wgs84`` (shapely geometry, lon/lat)."""
    shapely.prepare(polygon_wgs84)
    inside = shapely.contains_xy(polygon_wgs84, ways.lon, ways.lat)
    counts = np.diff(ways.way_ptr)
    way_of = np.repeat(np.arange(ways.n_ways), counts)
    keep = np.bincount(way_of, weights=inside, minlength=ways.n_ways) > 0
    log.info("Clipped ways to the study area: kept %d of %d", int(keep.sum()), ways.n_ways)
    return ways.subset(keep)



# --------------------------------------------------------------------------------------------
# The tile cache
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WaysExtent:
    """The whole file's highway ways: how many, and the lon/lat bounds of their located nodes
    (``(lon_min, lat_min, lon_max, lat_max)``, None when there is no way)."""

    n_ways: int
    bounds_wgs84: tuple[float, float, float, float] | None


def ways_extent(ways: OsmWays) -> WaysExtent:
    """:class:`WaysExtent` of ``ways``."""
    if ways.n_ways == 0:
        return WaysExtent(0, None)
    return WaysExtent(ways.n_ways, (float(ways.lon.min()), float(ways.lat.min()), float(ways.lon.max()),
                                    float(ways.lat.max())))


def _file_identity(path: Path, st: os.stat_result, tile_deg: float) -> dict[str, Any]:
    return {"source": str(path.resolve()), "size": int(st.st_size), "mtime_ns": int(st.st_mtime_ns),
            "format": CACHE_FORMAT, "tile_deg": float(tile_deg)}


def _folder_of(ident: dict[str, Any], cache_root: Path) -> Path:
    return cache_root / hashlib.sha1(json.dumps(ident, sort_keys=True).encode()).hexdigest()


def cache_folder(path: str | Path, *, cache_root: str | Path, tile_deg: float = TILE_DEG) -> Path:
    """``<cache_root>/<sha1 of the file's resolved path, size, mtime_ns, format and tile size>``."""
    path = Path(path)
    return _folder_of(_file_identity(path, _check_osm_file(path), tile_deg), Path(cache_root))


def _tile_xy(lon: np.ndarray, lat: np.ndarray, tile_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Tile column and row of lon/lat points (the one tiling rule: half-open squares)."""
    return (np.floor(np.asarray(lon) / tile_deg).astype(np.int64),
            np.floor(np.asarray(lat) / tile_deg).astype(np.int64))


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + n)`` for each start s and length n (vectorised)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    ends = np.cumsum(lengths)
    shift = np.asarray(starts, dtype=np.int64) - (ends - lengths)
    return np.repeat(shift, lengths) + np.arange(int(ends[-1]) if len(ends) else 0, dtype=np.int64)


def _tile_table(ways: OsmWays, tags: dict[str, np.ndarray], way_idx: np.ndarray) -> Any:
    """One tile as a pyarrow table: the ways ``way_idx`` (positions in the file, ascending); ``tags``:
    the tag columns of ``ways`` as object arrays."""
    import pyarrow as pa

    counts = np.diff(ways.way_ptr)[way_idx]
    refs = _ranges(ways.way_ptr[way_idx], counts)
    offsets = pa.array(np.concatenate([[0], np.cumsum(counts)]).astype(np.int32))
    cols: dict[str, Any] = {"way_pos": pa.array(way_idx.astype(np.int64)),
                            "way_id": pa.array(ways.way_id[way_idx])}
    for k in WAY_TAGS:
        cols[k] = pa.array(tags[k][way_idx], type=pa.string())
    for name, values in (("node_ref", ways.node_ref), ("lon", ways.lon), ("lat", ways.lat)):
        cols[name] = pa.ListArray.from_arrays(offsets, pa.array(values[refs]))
    return pa.table(cols)


def _write_cache(ways: OsmWays, folder: Path, ident: dict[str, Any]) -> None:
    """Write ``ways`` as tiles + manifest into ``folder.tmp-<pid>/`` and rename it to ``folder``."""
    import pyarrow.parquet as pq

    from coverage.transaction import tmp_folder

    tile_deg = float(ident["tile_deg"])
    tmp = tmp_folder(folder)
    try:
        tiles: list[dict[str, Any]] = []
        if ways.n_ways:
            way_of_ref = np.repeat(np.arange(ways.n_ways, dtype=np.int64), np.diff(ways.way_ptr))
            tx, ty = _tile_xy(ways.lon, ways.lat, tile_deg)
            x0, y0 = int(tx.min()), int(ty.min())
            ny = int(ty.max()) - y0 + 1
            # one (tile, way) pair per way and tile it has a node in, sorted by tile then file order
            pair = np.unique(((tx - x0) * ny + (ty - y0)) * ways.n_ways + way_of_ref)
            tile_code, way_idx = np.divmod(pair, ways.n_ways)
            tags = {k: ways.tags[k].to_numpy(dtype=object) for k in WAY_TAGS}
            cuts = np.flatnonzero(np.diff(tile_code)) + 1
            for code, idx in zip(tile_code[np.r_[0, cuts]], np.split(way_idx, cuts), strict=True):
                ix, iy = divmod(int(code), ny)
                ix, iy = ix + x0, iy + y0
                name = f"tile_{ix}_{iy}.parquet"
                pq.write_table(_tile_table(ways, tags, idx), tmp / name)
                tiles.append({"file": name, "ix": ix, "iy": iy, "n_ways": int(idx.shape[0]),
                              "bytes": (tmp / name).stat().st_size,
                              "bounds_wgs84": [ix * tile_deg, iy * tile_deg, (ix + 1) * tile_deg,
                                               (iy + 1) * tile_deg]})
        ext = ways_extent(ways)
        manifest = {**ident, "n_ways": ways.n_ways, "n_refs": int(ways.node_ref.shape[0]),
                    "n_missing_locations": int(ways.n_missing_locations),
                    "bounds_wgs84": list(ext.bounds_wgs84) if ext.bounds_wgs84 else None, "tiles": tiles}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        try:
            os.rename(tmp, folder)
        except OSError:  # another process wrote the same cache meanwhile: keep theirs if it is sound
            if _cache_problem(folder, ident):
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _cache_problem(folder: Path, ident: dict[str, Any]) -> str:
    """Why the cache in ``folder`` cannot be trusted ("" when it can)."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return f"manifest unreadable ({type(exc).__name__}: {exc})"
    if not isinstance(manifest, dict) or any(manifest.get(k) != v for k, v in ident.items()):
        return "manifest of another file, version or layout"
    try:
        for t in manifest["tiles"]:
            p = folder / t["file"]
            if not p.is_file() or p.stat().st_size != t["bytes"]:
                return f"tile {t['file']} missing or truncated"
        int(manifest["n_ways"]), int(manifest["n_missing_locations"])
    except (KeyError, TypeError, ValueError) as exc:
        return f"manifest incomplete ({type(exc).__name__}: {exc})"
    return ""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_leftovers(folder: Path, source: str) -> None:
    """``.tmp-<pid>`` folders of dead processes, and the caches of older versions of ``source``."""
    root = folder.parent
    for tmp in root.glob("*.tmp-*"):
        pid = tmp.name.rsplit(".tmp-", 1)[1]
        if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            shutil.rmtree(tmp, ignore_errors=True)
            log.info("Removed %s left by a stopped cache build", tmp)
    for other in root.iterdir():
        if other == folder or not (other / MANIFEST).is_file():
            continue
        with contextlib.suppress(OSError, ValueError):
            if json.loads((other / MANIFEST).read_text(encoding="utf-8")).get("source") == source:
                shutil.rmtree(other, ignore_errors=True)
                log.info("Removed %s: the OSM ways cache of another version (or tile size) of %s", other,
                         source)


def _open_cache(path: Path, cache_root: Path, tile_deg: float, *, rebuild: bool = False
                ) -> tuple[Path, dict[str, Any], bool]:
    """(folder, manifest, hit): the cache of ``path``, built (with ``read_osm_ways``) when missing,
    stale or unsound."""
    ident = _file_identity(path, _check_osm_file(path), tile_deg)
    folder = _folder_of(ident, cache_root)
    hit = folder.is_dir() and not rebuild
    if hit:
        problem = _cache_problem(folder, ident)
        if problem:
            log.warning("%s: ignoring the OSM ways cache of %s (%s); rebuilding it", folder, path, problem)
            hit = False
    if not hit:
        if folder.exists():
            shutil.rmtree(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        _write_cache(read_osm_ways(path), folder, ident)
        _remove_leftovers(folder, ident["source"])
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    return folder, manifest, hit


def osm_cache_extent(path: str | Path, *, cache_root: str | Path, tile_deg: float = TILE_DEG) -> WaysExtent:
    """The whole file's :class:`WaysExtent`, from the cache's manifest (built when missing)."""
    _, manifest, _ = _open_cache(Path(path), Path(cache_root), tile_deg)
    b = manifest["bounds_wgs84"]
    return WaysExtent(int(manifest["n_ways"]), (b[0], b[1], b[2], b[3]) if b else None)


def _empty_ways(source: str, n_missing: int) -> OsmWays:
    return OsmWays(np.zeros(0, np.int64), pd.DataFrame({k: pd.Series(dtype=object) for k in WAY_TAGS}),
                   np.zeros(1, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64),
                   np.zeros(0, np.float64), source, n_missing)


def _read_tiles(folder: Path, tiles: list[dict[str, Any]], *, source: str, n_missing: int) -> OsmWays:
    """The ways of ``tiles``, each once, in file order."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not tiles:
        return _empty_ways(source, n_missing)
    table = pa.concat_tables([pq.read_table(folder / t["file"]) for t in tiles]).combine_chunks()
    way_pos = table["way_pos"].to_numpy()
    _, first = np.unique(way_pos, return_index=True)  # each way once, in file order

    def lists(col: str) -> tuple[np.ndarray, np.ndarray]:
        """(counts, values) of the kept ways in the list column ``col``."""
        arr = table[col].chunk(0)
        off = arr.offsets.to_numpy().astype(np.int64)  # indexes into arr.values
        counts = np.diff(off)[first]
        return counts, arr.values.to_numpy()[_ranges(off[:-1][first], counts)]

    counts, node_ref = lists("node_ref")
    tags = pd.DataFrame({k: table[k].to_numpy()[first].astype(object) for k in WAY_TAGS},
                        columns=list(WAY_TAGS), dtype=object)
    return OsmWays(way_id=table["way_id"].to_numpy()[first].astype(np.int64), tags=tags,
                   way_ptr=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
                   node_ref=node_ref.astype(np.int64), lon=lists("lon")[1].astype(np.float64),
                   lat=lists("lat")[1].astype(np.float64), source=source, n_missing_locations=n_missing)


def read_osm_ways_cached(path: str | Path, *, bbox_wgs84: tuple[float, float, float, float] | None = None,
                         cache_root: str | Path, tile_deg: float = TILE_DEG) -> OsmWays:
    """:func:`read_osm_ways` through the tile cache under ``cache_root`` (see the module docstring).

    Parameters
    ----------
    path : .osm, .osm.bz2 or .osm.pbf file
    bbox_wgs84 : ``(lon_min, lat_min, lon_max, lat_max)``; only the ways with a node in a tile meeting
        it are read (None: every way)
    cache_root : folder of the caches (``build/.cache/osm`` in a run)
    tile_deg : side of a tile, degrees

    Returns
    -------
    OsmWays
        ``read_osm_ways(path)`` restricted to the ways with a node in the tiles meeting ``bbox_wgs84``,
        in file order, bit-identical; ``n_missing_locations`` is the whole file's count.

    Raises
    ------
    NetworkInputError
        As :func:`read_osm_ways`: a missing, empty or unreadable file.
    """
    import pyarrow as pa

    path, t0 = Path(path), time.perf_counter()
    folder, manifest, hit = _open_cache(path, Path(cache_root), tile_deg)
    for attempt in (1, 2):
        tiles = manifest["tiles"]
        if bbox_wgs84 is not None:
            (x0, x1), (y0, y1) = _tile_xy(np.asarray(bbox_wgs84)[[0, 2]], np.asarray(bbox_wgs84)[[1, 3]],
                                          tile_deg)
            tiles = [t for t in tiles if x0 <= t["ix"] <= x1 and y0 <= t["iy"] <= y1]
        try:
            ways = _read_tiles(folder, tiles, source=str(path),
                               n_missing=int(manifest["n_missing_locations"]))
            break
        except (OSError, pa.ArrowException) as exc:
            if attempt == 2:
                raise
            log.warning("%s: ignoring the OSM ways cache of %s (a tile is unreadable: %s); rebuilding it",
                        folder, path, exc)
            folder, manifest, hit = _open_cache(path, Path(cache_root), tile_deg, rebuild=True)
    log.info("OSM ways cache %s (%s): read %d of %d tiles, %d of %d ways, in %.1f s",
             "hit" if hit else "miss", folder, len(tiles), len(manifest["tiles"]), ways.n_ways,
             int(manifest["n_ways"]), time.perf_counter() - t0)
    return ways
