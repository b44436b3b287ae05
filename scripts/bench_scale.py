"""Scale benchmark of tiled runs on a local dask cluster (``make bench-scale``).

Run: ``python scripts/bench_scale.py [--sizes 75,150,300] [--workers 2] [--untiled-max-km 300]``.

A generated province-like region of ``side x side`` km per size (fixed seed): a 100 m lattice of
streets inside towns (a few large cities and many small towns, lognormal radii: dense networks and
every cell populated) and a 1 km grid of rural roads elsewhere (sparse: 55 % of the rural 100 m cells
populated, some beyond the 500 m snap limit as in real villages), two-way walking edges at 0.8-1.3 m/s,
facilities of the three walking services (elderly, childcare, health; 80 % in towns). Each size runs in
a fresh subprocess (its peak memory is its own) and times:

* generation and the facilities' snapping (one process, shared by both paths);
* the tiled stage (:func:`coverage.cluster.tiled_stage`, what a tiled run calls) on a LocalCluster
  (``--workers`` processes, one thread each): partition to tile files, the tiles on the workers
  snapping and routing their cells (``as_completed``) and summing their cell pieces per unit and
  community, 2SFCA step 1 included; the reduction; 2SFCA step 2 on the workers (``fca_s``); peak RSS per
  worker and of this process after it;
* the single-process stage (``coverage.access.snap_cells`` + ``travel_times``, then the per-unit sums
  as an untiled run takes them: ``access.fca_costs`` + ``indicators.cell_partial``) in the same process,
  up to ``--untiled-max-km``, and the equality of both (snaps bit for bit, times to 1e-9 s, nearest
  facility, per-unit partial sums identical).

The cells carry populations and belong to 10 km units (城区 and 郊区 alternately) split into 2.5 km
communities; elderly facilities have beds and childcare ones slots (the 2SFCA supply). Both paths use the
same cap (``[tiles] time_cap_min`` = 15 min, the largest threshold). Prints a table and ``RATIO
tiled_vs_untiled_<side>km <untiled / tiled seconds>`` lines (> 1: tiled is faster).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# the repo on sys.path first (a script run from anywhere), so these imports must follow it
from coverage import access, cluster, indicators  # noqa: E402
from coverage.config import Config, load_config  # noqa: E402
from coverage.graph import Network  # noqa: E402
from coverage.traveltime import snap_points  # noqa: E402

SPACING_M = 100.0
RURAL_EVERY = 10  # rural roads every 10 lattice steps (1 km)


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited from the parent of a
    spawned worker), MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return float(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def province(side_km: float, *, seed: int = 7) -> tuple[Network, np.ndarray, np.ndarray]:
    """(walking network, populated cell centres (n, 2), facility points (n, 2)) of a generated region."""
    import shapely

    rng = np.random.default_rng(seed)
    n = int(side_km * 1000 / SPACING_M)
    town = np.zeros((n, n), dtype=bool)
    area_km2 = side_km**2
    n_towns = max(3, int(area_km2 / 120))
    centres = rng.uniform(0, n, size=(n_towns, 2))
    radii = np.clip(rng.lognormal(mean=np.log(12), sigma=0.7, size=n_towns), 5, 120)  # lattice steps
    radii[: max(1, n_towns // 60)] *= 4  # a few cities
    for (ci, cj), r in zip(centres, radii, strict=True):
        i0, i1 = max(0, int(ci - r)), min(n, int(ci + r) + 1)
        j0, j1 = max(0, int(cj - r)), min(n, int(cj + r) + 1)
        ii, jj = np.mgrid[i0:i1, j0:j1]
        town[i0:i1, j0:j1] |= (ii - ci) ** 2 + (jj - cj) ** 2 <= r * r
    idx = np.arange(n * n).reshape(n, n)
    # horizontal edges (i, j)-(i, j+1), vertical (i, j)-(i+1, j)
    keep_h = (town[:, :-1] & town[:, 1:]) | (np.arange(n)[:, None] % RURAL_EVERY == 0)
    keep_v = (town[:-1, :] & town[1:, :]) | (np.arange(n)[None, :] % RURAL_EVERY == 0)
    a = np.concatenate([idx[:, :-1][keep_h], idx[:-1, :][keep_v]])
    b = np.concatenate([idx[:, 1:][keep_h], idx[1:, :][keep_v]])
    used = np.unique(np.concatenate([a, b]))
    a, b = np.searchsorted(used, a), np.searchsorted(used, b)
    gi, gj = np.divmod(used, n)
    xy = np.column_stack([gj * SPACING_M, gi * SPACING_M]) + rng.uniform(-10, 10, size=(used.size, 2))
    m = a.size
    eu = np.empty(2 * m, dtype=np.int32)
    ev = np.empty(2 * m, dtype=np.int32)
    eu[0::2], eu[1::2], ev[0::2], ev[1::2] = a, b, b, a
    rev = np.arange(2 * m, dtype=np.int64) ^ 1
    geom = shapely.linestrings(np.stack([xy[eu], xy[ev]], axis=1))
    length = shapely.length(geom)
    speed = np.repeat(rng.uniform(0.8, 1.3, size=m), 2)
    net = Network(mode="walk", crs="EPSG:32648", node_id=np.arange(used.size, dtype=np.int64),
                  node_x=xy[:, 0], node_y=xy[:, 1], node_component=np.zeros(used.size, dtype=np.int32),
                  edge_u=eu, edge_v=ev,
                  edge_length_m=length, edge_time_s=length / speed, edge_reverse=rev, edge_geometry=geom,
                  edge_attrs=pd.DataFrame(index=pd.RangeIndex(2 * m)), source=f"generated {side_km:g} km")
    # populated cells: every town cell, half of the rural ones
    populated = town | (rng.random((n, n)) < 0.55)
    ci, cj = np.nonzero(populated)
    cells = np.column_stack([cj * SPACING_M + SPACING_M / 2, ci * SPACING_M + SPACING_M / 2])
    # facilities: ~ 12,000 at 300 km (area-proportional), 80 % at town nodes
    n_fac = max(300, int(12_000 * area_km2 / 90_000))
    ti, tj = np.nonzero(town)
    pick = rng.integers(0, ti.size, size=int(0.8 * n_fac))
    jitter = rng.uniform(-40, 40, (pick.size, 2))
    fac_t = np.column_stack([tj[pick] * SPACING_M, ti[pick] * SPACING_M]) + jitter
    fac_r = rng.uniform(0, n * SPACING_M, size=(n_fac - pick.size, 2))
    return net, cells, np.vstack([fac_t, fac_r])


def bench_cells(cxy: np.ndarray, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The cells table (one piece per cell: populations, a 10 km unit and a 2.5 km community) and the
    units (城区 / 郊区 alternately)."""
    block = np.floor(cxy / 10_000.0).astype(np.int64)
    sub_block = np.floor(cxy / 2_500.0).astype(np.int64)
    unit = np.char.add("U", (block[:, 0] * 1000 + block[:, 1]).astype(str))
    comm = np.char.add("C", (sub_block[:, 0] * 10_000 + sub_block[:, 1]).astype(str))
    pop = rng.gamma(2.0, 20.0, len(cxy))
    cells = pd.DataFrame({"cell_id": np.arange(len(cxy)), "x": cxy[:, 0], "y": cxy[:, 1],
                          "unit_code": unit, "community_code": comm, "pop_total": pop,
                          "pop_60plus": pop * rng.uniform(0.1, 0.3, len(pop)),
                          "pop_0to3": pop * rng.uniform(0.01, 0.04, len(pop))})
    codes = np.unique(unit)
    classes = np.where(np.arange(codes.size) % 2, "郊区", "城区")
    units = pd.DataFrame({"unit_code": codes, "unit_class": classes})
    return cells, units


def _mismatches(a: np.ndarray, b: np.ndarray) -> int:
    """Positions where ``a`` and ``b`` differ (NaN equals NaN)."""
    same = a == b
    if a.dtype.kind == "f":
        same |= np.isnan(a) & np.isnan(b)
    return int((~same).sum())


def bench_config(cap_min: float) -> Config:
    cfg = load_config(REPO / "layers" / "demo" / "coverage.toml")
    services = {sid: s for sid, s in cfg.services.items() if s.mode == "walk"}
    return dataclasses.replace(cfg, services=services,
                               tiles=dataclasses.replace(cfg.tiles, time_cap_min=cap_min))


def one_size(side_km: float, *, workers: int, tile_size_m: float, untiled: bool) -> dict[str, float]:
    """Everything for one size, in this process; returns the figures."""
    out: dict[str, float] = {"side_km": side_km}
    cfg = bench_config(15.0)
    t = time.perf_counter()
    net, cxy, fxy = province(side_km)
    out["generate_s"] = time.perf_counter() - t
    out["generate_peak_mb"] = peak_rss_mb()
    out["directed_edges"], out["cells"], out["facilities"] = net.n_edges, len(cxy), len(fxy)
    kinds = [s.kinds[0] for s in cfg.services.values()]
    rng = np.random.default_rng(11)
    fac = pd.DataFrame({"fac_id": [f"f{k}" for k in range(len(fxy))],
                        "kind": [kinds[k % len(kinds)] for k in range(len(fxy))],
                        "beds": rng.integers(10, 200, len(fxy)).astype(float),
                        "childcare_slots": rng.integers(20, 150, len(fxy)).astype(float),
                        "x": fxy[:, 0], "y": fxy[:, 1]})
    t = time.perf_counter()
    fs = snap_points(net, fxy, max_snap_m=cfg.snapping.facility_max_snap_m)
    out["facility_snap_s"] = time.perf_counter() - t
    fsnaps = access.FacilitySnaps(by_mode={"walk": fs}, status=np.full(len(fxy), "ok", dtype=object))
    cells, units = bench_cells(cxy, rng)
    unit_class = dict(zip(units["unit_code"], units["unit_class"], strict=True))
    nets = {"walk": net}
    opts = cluster.ClusterOptions(workers=workers, mode="tiled", tile_size_m=tile_size_m)
    # the tiled stage exactly as a run calls it (cells snapped and routed in the tiles), on a cluster
    # started beforehand (its start-up is not part of the stage)
    with cluster.open_client(opts) as client:
        t0 = time.perf_counter()
        tiled_snaps, tiled, steps = cluster.tiled_stage(client, cfg, nets, cells, fac, fsnaps,
                                                        tile_size_m=tile_size_m, unit_class=unit_class)
        out["tiled_s"] = time.perf_counter() - t0
        rss = client.run(peak_rss_mb)
    out.update(steps, tiled_cells_per_s=len(cxy) / out["tiled_s"], worker_peak_mb=max(rss.values()),
               tiled_main_peak_mb=peak_rss_mb(),
               cells_snapped=int(tiled_snaps.by_mode["walk"].snapped.sum()))
    if untiled:
        t = time.perf_counter()
        ref_snaps = access.snap_cells(cfg, nets, cells)
        out["untiled_snap_s"] = time.perf_counter() - t
        ref = access.travel_times(cfg, nets, ref_snaps, fac, fsnaps)
        out["untiled_route_s"] = time.perf_counter() - t - out["untiled_snap_s"]
        t1 = time.perf_counter()
        costs = access.fca_costs(cfg, nets, fac, ref_snaps, fsnaps)
        with_tt = ref.add_to_cells(cells, ref_snaps, cfg.services)
        partial, _ = indicators.cell_partial(with_tt, units, fac, cfg, fca_costs=costs)
        out["untiled_sums_s"] = time.perf_counter() - t1
        out["untiled_s"] = time.perf_counter() - t
        out["untiled_cells_per_s"] = len(cxy) / out["untiled_s"]
        assert tiled.unit_sums is not None
        out["unit_sums_identical"] = bool(partial.equals(tiled.unit_sums.partial))
        out["unit_sum_buckets"] = len(partial)
        rs, ts = ref_snaps.by_mode["walk"], tiled_snaps.by_mode["walk"]
        snaps_off = sum(_mismatches(getattr(rs, f), getattr(ts, f))
                        for f in ("edge", "frac", "dist_m", "snapped", "x", "y"))
        worst, ids_off = 0.0, 0
        for sid, st in ref.by_service.items():
            a, b = st.time_s, tiled.by_service[sid].time_s
            assert np.array_equal(np.isfinite(a), np.isfinite(b)), sid
            fin = np.isfinite(a)
            worst = max(worst, float(np.abs(a[fin] - b[fin]).max()) if fin.any() else 0.0)
            ids_off += int((st.nearest_id != tiled.by_service[sid].nearest_id).sum())
        out.update(snap_mismatches=snaps_off, max_abs_diff_s=worst, nearest_id_mismatches=ids_off)
    out["main_peak_mb"] = peak_rss_mb()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="75,150,300", help="region sides in km, comma-separated")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--tile-size-m", type=float, default=25_000.0)
    p.add_argument("--untiled-max-km", type=float, default=300.0, help="largest side run untiled too")
    p.add_argument("--one-size", type=float, help=argparse.SUPPRESS)  # a child process: one size, JSON out
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("coverage.cluster").setLevel(logging.INFO)
    if args.one_size is not None:
        res = one_size(args.one_size, workers=args.workers, tile_size_m=args.tile_size_m,
                       untiled=args.one_size <= args.untiled_max_km)
        print("RESULT " + json.dumps(res))
        return 0
    rows = []
    for side in (float(s) for s in args.sizes.split(",")):
        # each size in a fresh process (its own peak memory); arguments are numbers parsed above
        cmd = [sys.executable, str(Path(__file__).resolve()), "--one-size", repr(side), "--workers",
               str(args.workers), "--tile-size-m", repr(args.tile_size_m), "--untiled-max-km",
               repr(args.untiled_max_km)]
        t = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        sys.stderr.write(proc.stderr)
        line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
        if proc.returncode or not line:
            print(f"size {side:g} km failed (exit {proc.returncode})")
            return 1
        row = json.loads(line[0][len("RESULT "):])
        row["wall_s"] = time.perf_counter() - t
        rows.append(row)
        print(json.dumps(row), flush=True)
    table = pd.DataFrame(rows).set_index("side_km")
    with pd.option_context("display.width", 250, "display.max_columns", 40,
                           "display.float_format", "{:,.2f}".format):
        print(table.T.to_string())
    for r in rows:
        if "untiled_s" in r:
            print(f"RATIO tiled_vs_untiled_{r['side_km']:g}km {r['untiled_s'] / r['tiled_s']:.3f}")
    ok = all(r.get("unit_sums_identical", True) for r in rows)
    print("per-unit sums of both paths identical: " + ("yes" if ok else "NO"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
