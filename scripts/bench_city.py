"""A whole run on a generated prefecture-sized region (``make bench-city``): every stage's time and the
peak memory of the run, written as a municipality would send its files.

Run: ``python scripts/bench_city.py [--side-km 100] [--workers 0] [--keep DIR]``.

The region is :func:`bench_scale.province` (towns on a 100 m street lattice, a 1 km rural road grid,
half the rural cells populated), written as real input files into a temporary region folder:

* ``roads.osm``: OSM XML, one two-node ``highway=residential`` way per road segment, lon/lat from
  UTM 48N (around Chengdu);
* ``pop_total.tif``: a WorldPop-style raster (EPSG:4326, 0.001 degree cells, persons per cell) and
  ``ratios.csv`` (per-unit shares of 60+ and 0-3);
* ``units.geojson``: 10 km square 街道/乡镇 (城区 where a unit holds a town cell on more than half of
  its area, else 郊区);
* three facility CSVs (elderly, childcare, health: lon/lat, one ``default_kind`` each) and a meal
  point CSV.

It then runs :func:`coverage.pipeline.run` without maps (``--workers n`` > 0: the tiled path on a
LocalCluster of n workers) in a fresh process and prints the stage timings of ``run_info.json``, the
counts and the peak memory (VmHWM) of that process. No RATIO: there is no baseline to compare with;
the figures are for the README's "how large a region fits".
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_scale import SPACING_M, peak_rss_mb, province  # noqa: E402

ORIGIN_M = (350_000.0, 3_350_000.0)  # UTM 48N: west of Chengdu
UNIT_KM = 10.0
PIXEL_DEG = 0.001


def _to_lonlat(xy_m: np.ndarray) -> np.ndarray:
    from pyproj import Transformer

    t = Transformer.from_crs("EPSG:32648", "EPSG:4326", always_xy=True)
    lon, lat = t.transform(xy_m[:, 0] + ORIGIN_M[0], xy_m[:, 1] + ORIGIN_M[1])
    return np.column_stack([lon, lat])


def _write_osm(path: Path, node_lonlat: np.ndarray, edge_u: np.ndarray, edge_v: np.ndarray) -> None:
    """Nodes and one two-node way per physical edge (even edge indices: the generator's pairs)."""
    with open(path, "w", encoding="utf-8") as fh:
        fh.write('<?xml version="1.0" encoding="UTF-8"?>\n<osm version="0.6" generator="bench_city">\n')
        for k in range(0, len(node_lonlat), 200_000):
            part = node_lonlat[k:k + 200_000]
            fh.write("".join(f'<node id="{k + i + 1}" lat="{lat:.7f}" lon="{lon:.7f}"/>\n'
                             for i, (lon, lat) in enumerate(part)))
        a, b = edge_u[0::2].astype(np.int64) + 1, edge_v[0::2].astype(np.int64) + 1
        for k in range(0, len(a), 200_000):
            fh.write("".join(f'<way id="{k + i + 1}"><nd ref="{u}"/><nd ref="{v}"/>'
                             f'<tag k="highway" v="residential"/></way>\n'
                             for i, (u, v) in enumerate(zip(a[k:k + 200_000], b[k:k + 200_000],
                                                             strict=True))))
        fh.write("</osm>\n")


def write_region(folder: Path, side_km: float, *, seed: int = 7) -> dict[str, int]:
    """The region's input files and ``coverage.toml`` in ``folder``; returns its counts."""
    import geopandas as gpd
    import pandas as pd
    import rasterio
    import shapely
    from rasterio.transform import from_origin

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    net, cells, fac = province(side_km, seed=seed)
    _write_osm(folder / "roads.osm", _to_lonlat(np.column_stack([net.node_x, net.node_y])), net.edge_u,
               net.edge_v)
    # population: the populated 100 m cells' centres binned into 0.001 degree pixels
    ll = _to_lonlat(cells)
    west, south = ll.min(axis=0) - 0.002
    east, north = ll.max(axis=0) + 0.002
    width, height = int(np.ceil((east - west) / PIXEL_DEG)), int(np.ceil((north - south) / PIXEL_DEG))
    col = ((ll[:, 0] - west) / PIXEL_DEG).astype(int)
    row = ((north - ll[:, 1]) / PIXEL_DEG).astype(int)
    persons = np.zeros((height, width), dtype="float32")
    np.add.at(persons, (row, col), rng.uniform(2.0, 40.0, size=len(ll)).astype("float32"))
    grid = from_origin(west, north, PIXEL_DEG, PIXEL_DEG)
    with rasterio.open(folder / "pop_total.tif", "w", driver="GTiff", width=width, height=height, count=1,
                       dtype="float32", crs="EPSG:4326", transform=grid, nodata=-99999.0, tiled=True,
                       compress="deflate") as dst:
        dst.write(persons, 1)
    # units: 10 km squares; 城区 where at least half of the unit's 100 m cells are town cells
    n_u = int(np.ceil(side_km / UNIT_KM))
    ij = cells // (UNIT_KM * 1000.0)
    unit_of = (ij[:, 1] * n_u + ij[:, 0]).astype(int)
    dense = np.bincount(unit_of, minlength=n_u * n_u) / (UNIT_KM * 1000.0 / SPACING_M) ** 2
    boxes, rows = [], []
    for k in range(n_u * n_u):
        j, i = divmod(k, n_u)
        boxes.append(shapely.box(i * UNIT_KM * 1000, j * UNIT_KM * 1000, (i + 1) * UNIT_KM * 1000,
                                 (j + 1) * UNIT_KM * 1000))
        city = bool(dense[k] > 0.75)
        rows.append({"code": f"510100{k:06d}", "name": f"单元{k}{'街道' if city else '镇'}",
                     "type": "街道" if city else "镇", "class": "城区" if city else "郊区",
                     "area_type": "old"})
    units = gpd.GeoDataFrame(rows, geometry=gpd.GeoSeries(boxes).translate(*ORIGIN_M).values,
                             crs="EPSG:32648")
    units.to_crs("EPSG:4326").to_file(folder / "units.geojson", driver="GeoJSON")
    pd.DataFrame({"unit_code": [r["code"] for r in rows], "share_60plus": 0.19, "share_0to3": 0.028}).to_csv(
        folder / "ratios.csv", index=False)
    # facilities: a quarter of the generated points per walking service, meal points for the rest
    fll = _to_lonlat(fac)
    kinds = {"elderly": "community_complex", "childcare": "kindergarten", "health": "health_center",
             "meal": "meal_point"}
    layers = []
    for k, (name, kind) in enumerate(kinds.items()):
        part = fll[k::4]
        pd.DataFrame({"名称": [f"{name}{i}" for i in range(len(part))], "经度": part[:, 0].round(7),
                      "纬度": part[:, 1].round(7)}).to_csv(folder / f"{name}.csv", index=False)
        layers.append(f'[[facilities]]\nname = "{name}"\npath = "{name}.csv"\ncoords = "wgs84"\n'
                      f'default_kind = "{kind}"\ncomplete_for = ["{kind}"]\n')
    (folder / "coverage.toml").write_text(
        f'[region]\nname = "city"\ntitle = "generated {side_km:g} km region"\nmetric_crs = "EPSG:32648"\n\n'
        '[units]\npath = "units.geojson"\ncode_field = "code"\nname_field = "name"\ntype_field = "type"\n'
        'class_field = "class"\narea_type_field = "area_type"\n\n'
        '[network]\nsource = "osm_file"\npath = "roads.osm"\nmin_component_nodes = 5\n\n'
        '[population]\ntotal = "pop_total.tif"\nratios_csv = "ratios.csv"\n\n'
        + "\n".join(layers)
        + '\n[snapping]\nfacility_max_snap_m = 300\ncell_max_snap_m = 500\n', encoding="utf-8")
    return {"nodes": int(net.n_nodes), "directed_edges": int(net.n_edges), "generated_cells": int(len(cells)),
            "facilities": int(len(fac)), "units": n_u * n_u, "raster_pixels": width * height}


def _run_one(config: Path, build_root: Path, workers: int) -> dict[str, float]:
    """Child process: the run, then its peak memory."""
    from coverage import cluster
    from coverage.config import load_config
    from coverage.pipeline import run

    t = time.perf_counter()
    travel = (cluster.TiledTravelTimes(cluster.ClusterOptions(workers=workers, mode="tiled"))
              if workers else None)
    out = run(load_config(config), build_root=build_root, maps_root=None, travel=travel)
    info = json.loads((out / "run_info.json").read_text(encoding="utf-8"))
    return {"run_s": time.perf_counter() - t, "peak_mb": peak_rss_mb(), "cells": info["cells"],
            "cell_pieces": info["cell_pieces"], "tiles": info["tiles"], "timings_s": info["timings_s"]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--side-km", type=float, default=100.0)
    p.add_argument("--workers", type=int, default=0, help="0: one process; n: tiled on n local workers")
    p.add_argument("--keep", type=Path, help="write the region and build here and keep them")
    p.add_argument("--child", nargs=2, help=argparse.SUPPRESS)  # the run in a fresh process
    args = p.parse_args(argv)
    if args.child:
        import logging

        logging.basicConfig(level=logging.WARNING)
        print("RESULT " + json.dumps(_run_one(Path(args.child[0]), Path(args.child[1]), args.workers)))
        return 0
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-city-"))
    t = time.perf_counter()
    counts = write_region(root / "city", args.side_km)
    print(json.dumps({"write_s": round(time.perf_counter() - t, 1), **counts}), flush=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(root / "city" / "coverage.toml"),
           str(root / "build"), "--workers", str(args.workers)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    if proc.returncode or not line:
        sys.stderr.write(proc.stderr[-4000:])
        print(f"the run failed (exit {proc.returncode})")
        return 1
    res = json.loads(line[0][len("RESULT "):])
    print(json.dumps(res, indent=1, ensure_ascii=False))
    if args.keep is None:
        import shutil

        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
