"""A run is a transaction over build/<r>/ and maps/<r>/: kills, two runs at once, a copied region,
spreadsheet formulas from input names, and a service whose facilities are all unusable."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import geopandas as gpd
import openpyxl
import pandas as pd
import pytest

import coverage
from coverage import transaction
from coverage.config import load_config
from coverage.errors import InputError
from coverage.pipeline import run
from coverage.tables import neutralise, write_csv, write_xlsx

REPO = Path(__file__).resolve().parents[1]
PKG_ROOT = Path(coverage.__file__).resolve().parents[1]
REQUIRED = ("indicators.gpkg", "indicators.csv", "standards.csv", "cells.parquet", "gaps.gpkg",
            "isochrones.gpkg", "facilities.csv", "run_info.json", "data_dictionary.csv")


def _workdir(demo_layers: Path, root: Path, name: str = "demo") -> Path:
    """A project folder with layers/<name>/ (the demo) for the CLI, which works from the cwd."""
    shutil.copytree(demo_layers, root / "layers" / name)
    return root


def _cli(cwd: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(PKG_ROOT)}
    return subprocess.Popen([sys.executable, "-m", "coverage", *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _complete(build: Path, maps: Path) -> bool:
    units = gpd.read_file(build / "indicators.gpkg", layer="units")["unit_code"]
    from coverage.maps import unit_page_name

    return (all((build / f).is_file() for f in REQUIRED) and (maps / "index.html").is_file()
            and all((maps / unit_page_name(c)).is_file() for c in units))


def _leftovers(root: Path) -> list[str]:
    return sorted(p.name for d in ("build", "maps") if (root / d).is_dir() for p in (root / d).iterdir()
                  if ".tmp-" in p.name or ".old-" in p.name)


def test_kills_never_leave_a_half_build_and_the_next_run_cleans_up(demo_layers: Path, tmp_path: Path) -> None:
    root = _workdir(demo_layers, tmp_path)
    first = _cli(root, "run", "--region", "demo")
    out, err = first.communicate(timeout=600)
    assert first.returncode == 0, err
    build, maps = root / "build" / "demo", root / "maps" / "demo"
    (build / "marker_old.txt").write_text("old", encoding="utf-8")
    states = []
    for delay in (0.2, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.5):
        p = _cli(root, "run", "--region", "demo")
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=60)
        # whatever the moment of the kill: a complete build and complete maps are in place
        assert build.is_dir() or any(x.startswith("demo.old-") for x in _leftovers(root))
        transaction.clean_stale(build, maps)  # what the next run does first (restores a swapped-out build)
        assert _complete(build, maps), delay
        states.append("old" if (build / "marker_old.txt").exists() else "new")
        (build / "marker_old.txt").write_text("old", encoding="utf-8")
    assert "old" in states  # early kills kept the previous results
    p = _cli(root, "run", "--region", "demo")
    _, err = p.communicate(timeout=600)
    assert p.returncode == 0, err
    assert _leftovers(root) == [] and _complete(build, maps)
    assert not (build / "marker_old.txt").exists()


def test_a_kill_between_the_two_renames_restores_the_last_good_build(tmp_path: Path) -> None:
    final = tmp_path / "build" / "demo"
    old = final.with_name("demo.old-12345")
    old.mkdir(parents=True)
    (old / "run_info.json").write_text("{}", encoding="utf-8")
    tmp = final.with_name("demo.tmp-12345")
    tmp.mkdir()
    transaction.clean_stale(final)
    assert (final / "run_info.json").is_file() and not old.exists() and not tmp.exists()


def test_two_runs_at_once_one_is_refused_with_the_holder(demo_layers: Path, tmp_path: Path) -> None:
    root = _workdir(demo_layers, tmp_path)
    a = _cli(root, "run", "--region", "demo")
    time.sleep(1.0)
    b = _cli(root, "run", "--region", "demo")
    _, err_b = b.communicate(timeout=600)
    _, err_a = a.communicate(timeout=600)
    assert a.returncode == 0, err_a
    assert b.returncode == 2
    assert f"another run of region 'demo' is in progress (pid {a.pid}" in err_b and "Traceback" not in err_b
    assert _leftovers(root) == [] and _complete(root / "build" / "demo", root / "maps" / "demo")


def test_region_lock_in_process(tmp_path: Path) -> None:
    # flock is per open file description: a second open in the same process conflicts too
    with (transaction.region_lock(tmp_path, "x"),
          pytest.raises(transaction.RunInProgress, match=f"pid {os.getpid()}"),
          transaction.region_lock(tmp_path, "x")):
        pass
    with transaction.region_lock(tmp_path, "x"):  # released
        pass


def test_a_copied_region_that_keeps_another_name_is_refused(demo_layers: Path, tmp_path: Path) -> None:
    root = _workdir(demo_layers, tmp_path, name="copycat")
    p = _cli(root, "run", "--region", "copycat")
    _, err = p.communicate(timeout=600)
    assert p.returncode == 2 and "Traceback" not in err
    assert "region.name = 'demo' but the folder is layers/copycat/; set name = 'copycat'" in err
    assert not (root / "build" / "demo").exists() and not (root / "maps" / "demo").exists()
    p = _cli(root, "check-layers", "--region", "copycat")
    _, err = p.communicate(timeout=600)
    assert p.returncode == 2 and "set name = 'copycat'" in err  # check refuses what run refuses


# ---------------------------------------------------------------------------------------------
# Spreadsheet formulas from municipal names (OWASP CSV injection)
# ---------------------------------------------------------------------------------------------

HOSTILE = ["=HYPERLINK(\"http://evil.example/\",\"点击\")", "=3+3", "+3+3", "-2+3", "@SUM(1+1)",
           "\t=cmd|' /C calc'!A0", "\r=1+1"]


def test_neutralise_and_writers(tmp_path: Path) -> None:
    assert [neutralise(v) for v in HOSTILE] == ["'" + v for v in HOSTILE]
    assert neutralise("老城街道") == "老城街道" and neutralise(-3.5) == -3.5 and neutralise(None) is None
    df = pd.DataFrame({"name": HOSTILE, "n": range(len(HOSTILE))})
    write_csv(df, tmp_path / "t.csv")
    back = pd.read_csv(tmp_path / "t.csv", encoding="utf-8-sig", keep_default_na=False)
    assert all(v.startswith("'") for v in back["name"]) and back["n"].tolist() == list(range(len(HOSTILE)))
    write_xlsx({"s": df}, tmp_path / "t.xlsx")
    ws = openpyxl.load_workbook(tmp_path / "t.xlsx")["s"]
    cells = [c for row in ws.iter_rows(min_row=2) for c in row]
    assert not [c.coordinate for c in cells if c.data_type == "f"]
    # (XML reads a carriage return back as a newline)
    want = ["'" + v.replace("\r", "\n") for v in HOSTILE]
    assert [c.value for c in cells if isinstance(c.value, str)] == want


def test_hostile_names_reach_no_spreadsheet_as_formulas(demo_layers: Path, tmp_path: Path) -> None:
    layers = tmp_path / "demo"
    shutil.copytree(demo_layers, layers)
    units = gpd.read_file(layers / "units.geojson")
    units.loc[0, "name"] = HOSTILE[0]
    units.loc[1, "name"] = HOSTILE[1]
    units.to_file(layers / "units.geojson", driver="GeoJSON")
    meals = pd.read_csv(layers / "facilities" / "meal_points.csv", encoding="gbk")
    meals.iloc[0, 0] = HOSTILE[5]
    meals.iloc[1, 0] = HOSTILE[4]
    meals.to_csv(layers / "facilities" / "meal_points.csv", index=False, encoding="gbk")
    out = run(load_config(layers / "coverage.toml"), build_root=tmp_path / "build")
    for name in ("indicators.csv", "facilities.csv", "standards.csv"):
        text = (out / name).read_text(encoding="utf-8-sig")
        for line in text.splitlines():
            for cell in line.split(","):
                assert not cell.strip('"').startswith(("=", "+", "@", "\t", "\r")), (name, cell)
    wb = openpyxl.load_workbook(out / "indicators.xlsx")
    formulas = [(ws.title, c.coordinate) for ws in wb for row in ws.iter_rows() for c in row
                if c.data_type == "f"]
    assert formulas == []
    names = pd.read_csv(out / "indicators.csv", encoding="utf-8-sig")["unit_name"].tolist()
    assert "'" + HOSTILE[0] in names and "'=3+3" in names
    fac = pd.read_csv(out / "facilities.csv", encoding="utf-8-sig")["name"].tolist()
    assert "'@SUM(1+1)" in fac


# ---------------------------------------------------------------------------------------------
# A service whose facilities are all unusable stops the run before anything is swapped in
# ---------------------------------------------------------------------------------------------


def test_a_service_with_no_usable_facility_stops_before_the_swap(demo_layers: Path, tmp_path: Path) -> None:
    layers = tmp_path / "demo"
    shutil.copytree(demo_layers, layers)
    good = run(load_config(layers / "coverage.toml"), build_root=tmp_path / "build")
    before = json.loads((good / "run_info.json").read_text(encoding="utf-8"))["total_s"]
    # a snap limit no facility meets (a facility 0.01 m from its road is as rare as one on it)
    toml = (layers / "coverage.toml").read_text(encoding="utf-8")
    toml = toml.replace("facility_max_snap_m = 300", "facility_max_snap_m = 0.01")
    (layers / "coverage.toml").write_text(toml, encoding="utf-8")
    cfg = load_config(layers / "coverage.toml")
    with pytest.raises(InputError, match=r"service meal \(助餐服务\): none of its 14 facilities lies within "
                                         r"0.01 m of the delivery network .*snapping\.facility_max_snap_m"):
        run(cfg, build_root=tmp_path / "build")
    after = json.loads((good / "run_info.json").read_text(encoding="utf-8"))["total_s"]
    assert after == before and _leftovers(tmp_path) == []


def _make(root: Path, *targets: str) -> subprocess.Popen[str]:
    """`make` of the repo's Makefile in ``root`` (a project folder), with this interpreter and no setup."""
    env = {**os.environ, "PYTHONPATH": str(PKG_ROOT)}
    cmd = ["make", "-f", str(REPO / "Makefile"), "-o", "setup", *targets, "REGION=demo",
           f"PY={sys.executable}"]
    return subprocess.Popen(cmd, cwd=root, env=env, start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_interrupting_make_never_deletes_a_good_result(demo_layers: Path, tmp_path: Path) -> None:
    """Ctrl-C (SIGINT to the process group) at several moments of `make run`: make has no file target
    of a region to delete, and the run's transaction keeps the previous results whole."""
    if shutil.which("make") is None:
        pytest.skip("make not installed")
    root = _workdir(demo_layers, tmp_path)
    p = _cli(root, "run", "--region", "demo")
    _, err = p.communicate(timeout=600)
    assert p.returncode == 0, err
    build, maps = root / "build" / "demo", root / "maps" / "demo"
    for delay in (0.5, 3.0, 6.0, 7.0):
        os.utime(root / "layers" / "demo" / "coverage.toml")  # an input newer than the build: make runs
        mk = _make(root, "run")
        time.sleep(delay)
        if mk.poll() is None:
            os.killpg(mk.pid, signal.SIGINT)
        _, err = mk.communicate(timeout=120)
        assert "Deleting file" not in err and "Traceback" not in err, err
        transaction.clean_stale(build, maps)
        assert _complete(build, maps), (delay, err)
    assert _leftovers(root) == []


def test_make_run_is_skipped_when_nothing_changed_and_reruns_when_an_input_did(demo_layers: Path,
                                                                               tmp_path: Path) -> None:
    if shutil.which("make") is None:
        pytest.skip("make not installed")
    root = _workdir(demo_layers, tmp_path)
    out, err = _make(root, "run").communicate(timeout=600)
    assert "results: build/demo\n" in out, out + err
    stamp = (root / "build" / "demo" / "run_info.json").stat().st_mtime
    out, err = _make(root, "run").communicate(timeout=600)
    assert "up to date: no input changed" in out, out + err
    assert (root / "build" / "demo" / "run_info.json").stat().st_mtime == stamp
    time.sleep(0.05)
    (root / "layers" / "demo" / "facilities" / "meal_points.csv").touch()
    out, err = _make(root, "run").communicate(timeout=600)
    assert "results: build/demo\n" in out
    assert (root / "build" / "demo" / "run_info.json").stat().st_mtime > stamp


def test_file_names_in_the_region_never_reach_a_shell(demo_layers: Path, tmp_path: Path) -> None:
    """A municipal file named `x;touch PWNED` (next to a file `x`) in the region folder: make must not
    run `touch PWNED` (it did when the Makefile listed the region's files as prerequisites)."""
    if shutil.which("make") is None:
        pytest.skip("make not installed")
    root = _workdir(demo_layers, tmp_path)
    folder = root / "layers" / "demo"
    for name in ("x", "x;touch PWNED", "y`touch PWNED2`", "z$(touch PWNED3)", "养老 机构 名单.xlsx"):
        (folder / name).write_text("not a layer", encoding="utf-8")
    out, err = _make(root, "run").communicate(timeout=600)
    assert "results: build/demo" in out, out + err
    assert not [p.name for p in root.rglob("PWNED*")]
