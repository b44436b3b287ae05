"""Tiled runs on dask.distributed (coverage.cluster): a real LocalCluster of 2 workers gives every output
table of the untiled run; an unreachable scheduler, too many workers and a failing tile end in one clear
message and leave no partial outputs."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from coverage import cli, cluster, exact_sums, pipeline, tiling
from coverage.config import Config, load_config
from coverage.errors import ClusterError, CoverageError, TileError

TABLES = ("indicators.csv", "standards.csv", "facilities.csv", "isochrone_qa.csv", "data_dictionary.csv",
          "rejects.csv")


@pytest.fixture(scope="module")
def capped_demo(demo_layers: Path, tmp_path_factory: pytest.TempPathFactory) -> Config:
    """The demo region with ``[tiles] time_cap_min = 60`` (both paths report times up to one hour)."""
    layers = tmp_path_factory.mktemp("tiled") / "demo"
    shutil.copytree(demo_layers, layers)
    toml = layers / "coverage.toml"
    toml.write_text(toml.read_text(encoding="utf-8") + "\n[tiles]\ntime_cap_min = 60\n", encoding="utf-8")
    return load_config(toml)


@pytest.fixture(scope="module")
def builds(capped_demo: Config, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("builds")
    untiled = pipeline.run(capped_demo, build_root=root / "untiled")
    opts = cluster.ClusterOptions(workers=2, mode="tiled", tile_size_m=2500.0)
    tiled = pipeline.run(capped_demo, build_root=root / "tiled", travel=cluster.TiledTravelTimes(opts))
    return untiled, tiled


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    """A LocalCluster of 2 worker processes for the fault tests, by address (the --scheduler path)."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as lc:
        yield lc.scheduler_address


def test_tiled_run_on_a_local_cluster_writes_every_table_of_the_untiled_run(builds: tuple[Path, Path]
                                                                           ) -> None:
    untiled, tiled = builds
    for name in TABLES:
        assert (tiled / name).read_bytes() == (untiled / name).read_bytes(), name
    cu, ct = gpd.read_parquet(untiled / "cells.parquet"), gpd.read_parquet(tiled / "cells.parquet")
    pd.testing.assert_frame_equal(pd.DataFrame(cu.drop(columns="geometry")),
                                  pd.DataFrame(ct.drop(columns="geometry")))
    assert cu.geometry.equals(ct.geometry)
    tt = [c for c in cu.columns if c.startswith("tt_")]
    assert len(tt) == 4 and np.isfinite(cu[tt].to_numpy(float)).sum() > 10_000
    for layer in ("gaps",):
        gu = gpd.read_file(untiled / "gaps.gpkg", layer=layer)
        gt = gpd.read_file(tiled / "gaps.gpkg", layer=layer)
        pd.testing.assert_frame_equal(pd.DataFrame(gu.drop(columns="geometry")),
                                      pd.DataFrame(gt.drop(columns="geometry")))
        assert gu.geometry.equals(gt.geometry)
    assert not (tiled / ".tiles").exists()  # the tile inputs are scratch
    # the tiles' results stay as a partitioned GeoParquet dataset: together, the travel-time columns of
    # cells.parquet, each cell once, its centre as a point in the run's metric CRS
    parts = sorted((tiled / "tiles").glob("tile_*.parquet"))
    assert len(parts) == it_tiles(tiled) and not (untiled / "tiles").exists()
    ds = pd.concat([gpd.read_parquet(p) for p in parts], ignore_index=True)
    assert ds.crs is not None and ds.crs.is_projected and ds["cell_id"].is_unique
    per_cell = cu.drop_duplicates("cell_id").set_index("cell_id")
    ds = ds.set_index("cell_id").loc[per_cell.index]
    for c in tt:
        np.testing.assert_array_equal(ds[c].to_numpy(float), per_cell[c].to_numpy(float))
        sid = c[len("tt_"):-len("_s")]
        assert list(ds[f"nearest_{sid}_id"]) == list(per_cell[f"nearest_{sid}_id"].fillna(""))
    # each tile summed its own cell pieces per unit and community; the indicators are their reduction
    sums = sorted((tiled / "tiles_unit_sums").glob("tile_*.parquet"))
    assert [p.name for p in sums] == [p.name for p in parts]
    merged = exact_sums.merge([pd.read_parquet(p) for p in sums])
    ind = pd.read_csv(tiled / "indicators.csv", dtype={"unit_code": str, "community_code": str},
                      encoding="utf-8-sig")
    for level, key in (("unit", "unit_code"), ("community", "community_code")):
        rows = ind[ind["level"] == level].set_index(key)
        tot = exact_sums.totals(merged, key).reindex(rows.index)
        assert len(rows) > 5
        np.testing.assert_allclose(rows["pop_total"], tot["pop_total"].fillna(0.0), rtol=1e-15, atol=0)
    iu = json.loads((untiled / "run_info.json").read_text(encoding="utf-8"))
    it = json.loads((tiled / "run_info.json").read_text(encoding="utf-8"))
    caps = {s: 3600.0 for s in ("elderly", "childcare", "meal", "health")}
    assert iu["time_cap_s"] == it["time_cap_s"] == caps
    assert iu["tiles"] == 0 and it["tiles"] > 4
    assert iu["unit_sums"] == {"by": "cells table", "fca_services": []}
    assert it["unit_sums"] == {"by": "tiles", "fca_services": ["elderly", "childcare"]}


def it_tiles(build: Path) -> int:
    return int(json.loads((build / "run_info.json").read_text(encoding="utf-8"))["tiles"])


def test_small_regions_keep_the_single_process_path() -> None:
    assert not cluster.use_tiles("auto", 1_999_999, 2_000_000)
    assert cluster.use_tiles("auto", 2_000_000, 2_000_000)
    assert cluster.use_tiles("tiled", 10, 2_000_000)
    assert not cluster.use_tiles("untiled", 10**9, 2_000_000)


def test_unreachable_scheduler_is_one_line_and_no_traceback(capped_demo: Config, capsys) -> None:
    with pytest.raises(ClusterError, match=r"cannot reach the dask scheduler at tcp://127.0.0.1:9"):
        cluster.connect("tcp://127.0.0.1:9", timeout_s=2)
    code = cli.main(["run", "--config", str(capped_demo.path), "--build-root", "/nonexistent/never",
                     "--no-maps", "--scheduler", "tcp://127.0.0.1:9"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: cannot reach the dask scheduler at tcp://127.0.0.1:9")
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_more_workers_than_cores_is_refused(capped_demo: Config, capsys) -> None:
    with pytest.raises(ClusterError, match="more than the 2 cores"):
        cluster.check_workers(3, cores=2)
    cluster.check_workers(2, cores=2)
    code = cli.main(["run", "--config", str(capped_demo.path), "--no-maps", "--workers", "100000"])
    assert code == 2 and "--workers 100000 is more than the" in capsys.readouterr().err


def test_make_tiles_values_force_the_choice_and_a_bad_one_is_one_message(capped_demo: Config, capsys,
                                                                       monkeypatch) -> None:
    """`make run TILES=...` passes `--tiles VALUE`: the value sets the mode; anything else is refused by
    the argument parser (exit 2, the allowed values named) before any input is read."""
    seen: list[str] = []
    monkeypatch.setattr(pipeline, "run", lambda cfg, **kw: seen.append(kw["travel"].opts.mode) or Path("x"))
    for value in ("tiled", "untiled", "auto"):
        assert cli.main(["run", "--config", str(capped_demo.path), "--no-maps", "--tiles", value]) == 0
    assert seen == ["tiled", "untiled", "auto"]
    with pytest.raises(SystemExit) as exc:
        cli.main(["run", "--config", str(capped_demo.path), "--tiles", "yes;rm -rf /"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "invalid choice: 'yes;rm -rf /'" in err and "Traceback" not in err


def test_a_failing_tile_is_named_and_the_run_leaves_no_outputs(capped_demo: Config, scheduler: str,
                                                               tmp_path: Path, monkeypatch) -> None:
    real_save = tiling.TileInput.save
    broken: list[str] = []

    def save(self: tiling.TileInput, path: Path) -> Path:  # the second tile's file is unreadable
        out = real_save(self, path)
        if len(broken) < 2:
            broken.append(self.tile.name)
            if len(broken) == 2:
                Path(path).write_bytes(b"not an npz")
        return out

    monkeypatch.setattr(tiling.TileInput, "save", save)
    root = tmp_path / "build"
    (root / "demo").mkdir(parents=True)
    (root / "demo" / "previous.txt").write_text("kept")
    travel = cluster.TiledTravelTimes(cluster.ClusterOptions(scheduler=scheduler, mode="tiled",
                                                             tile_size_m=5000.0))
    with pytest.raises(TileError, match=r"tile tile_\d+_\d+ failed after 2 attempt\(s\)") as info:
        pipeline.run(capped_demo, build_root=root, travel=travel)
    assert f"tile {broken[1]} failed" in str(info.value)
    assert isinstance(info.value, CoverageError)
    # the OSM tile cache (build/.cache) is no output: it stays, keyed by the file it was parsed from
    assert sorted(p.name for p in root.iterdir() if not p.name.endswith(".lock")) == [".cache", "demo"]
    assert [p.name for p in (root / "demo").iterdir()] == ["previous.txt"]  # the previous results


def flaky_tile_task(in_path: str, out_path: str) -> tuple[str, int]:
    """Fails on its first attempt at a tile (a marker file next to the input), then routes it."""
    marker = Path(in_path + ".tried")
    if not marker.exists():
        marker.write_text("1")
        raise RuntimeError("first attempt fails")
    return cluster._tile_task(in_path, out_path)


def _demo_tiles(demo_layers: Path, folder: Path, *, tile_size_m: float
                ) -> tuple[pipeline.Analysis, pd.DataFrame, list[tuple[str, Path]]]:
    """The demo's analysis, its cells and its tile input files (name, path) at ``tile_size_m``."""
    a = pipeline.analyse(load_config(demo_layers / "coverage.toml"))
    cells = a.cells_in.cells.reset_index(drop=True)
    centres = tiling.cell_centres(cells, a.cell_snaps)
    inputs = [(t.tile.name, t.save(folder / f"{t.tile.name}.npz"))
              for t in tiling.partition(a.cfg, a.networks, centres, a.cell_snaps, a.facilities, a.fac_snaps,
                                        tile_size_m=tile_size_m, skip=a.not_assessed)]
    return a, cells, inputs


def test_a_tile_that_fails_once_is_retried(demo_layers: Path, scheduler: str, tmp_path: Path) -> None:
    a, cells, inputs = _demo_tiles(demo_layers, tmp_path, tile_size_m=5000.0)
    with cluster.connect(scheduler) as client:
        paths = cluster.run_tiles(client, inputs, tmp_path / "out", task=flaky_tile_task)
    assert len(paths) == len(inputs) and all(p.is_file() for p in paths)
    assert all(Path(str(p) + ".tried").is_file() for _, p in inputs)  # every tile failed once


def killing_tile_task(in_path: str, out_path: str) -> tuple[str, int]:
    """Kills its worker process on the first tile it sees (one marker for the run), then routes."""
    import os

    marker = Path(in_path).parent / "killed"
    if not marker.exists():
        marker.write_text("1")
        os._exit(1)
    return cluster._tile_task(in_path, out_path)


def test_a_worker_killed_mid_run_has_its_tile_rescheduled(demo_layers: Path, scheduler: str,
                                                          tmp_path: Path) -> None:
    a, cells, inputs = _demo_tiles(demo_layers, tmp_path, tile_size_m=8000.0)
    with cluster.connect(scheduler) as client:
        paths = cluster.run_tiles(client, inputs, tmp_path / "out", task=killing_tile_task)
    assert (tmp_path / "killed").is_file() and all(p.is_file() for p in paths)
    ref = tiling.tiled_travel_times(a.cfg, a.networks, cells, a.cell_snaps, a.facilities, a.fac_snaps,
                                    tile_size_m=8000.0, skip=a.not_assessed)
    got = tiling.reduce_results(a.cfg, [tiling.TileResult.load(p) for p in paths],
                                n_cells=len(a.cell_snaps.cell_ids),
                                facilities=a.facilities, fsnaps=a.fac_snaps, skip=a.not_assessed)
    for sid, st in ref.by_service.items():
        np.testing.assert_array_equal(st.time_s, got.by_service[sid].time_s)
