"""The command line: user errors end in one clear message and exit code 2, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "coverage", *args], cwd=cwd, capture_output=True,
                          check=False, text=True, timeout=300)


def test_bad_config_is_one_message_without_traceback(tmp_path: Path) -> None:
    cfg = tmp_path / "coverage.toml"
    cfg.write_text('[region]\nname = "x"\n[walk]\nspeed_mps = 9\n', encoding="utf-8")
    res = run_cli("run", "--config", str(cfg), "--build-root", str(tmp_path / "build"))
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    assert "walk.speed_mps = 9" in res.stderr and "units.path: missing (required)" in res.stderr
    assert not (tmp_path / "build" / "x").exists()


def test_missing_region_names_the_fix(tmp_path: Path) -> None:
    res = run_cli("check-layers", "--region", "no_such_region")
    assert res.returncode == 2
    assert "layers/no_such_region/coverage.toml: region config not found" in res.stderr
    assert "Traceback" not in res.stderr


def test_help_lists_commands() -> None:
    res = run_cli("--help")
    assert res.returncode == 0
    for cmd in ("demo-data", "run", "check-layers", "maps", "map-unit", "fetch-network"):
        assert cmd in res.stdout


def test_unreadable_raster_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    import shutil

    from coverage.demo import build_demo

    layers = tmp_path / "demo"
    build_demo(layers)
    shutil.copy(REPO / "layers" / "demo" / "coverage.toml", layers / "coverage.toml")
    (layers / "pop_total.tif").write_bytes(b"not a tiff")
    res = run_cli("run", "--config", str(layers / "coverage.toml"), "--build-root", str(tmp_path / "build"))
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    assert "pop_total.tif" in res.stderr
    assert not (tmp_path / "build" / "demo").exists()
    assert not list((tmp_path / "build").glob("*.tmp-*"))


def test_fetch_network_offline_is_a_clear_message(tmp_path: Path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    """No internet: the osmnx download error reaches the user as one message naming the fix, exit 2.
    (The download itself is mocked: CI has no internet and must not wait on DNS timeouts.)"""
    from coverage import network
    from coverage.cli import main

    def offline(place: str, out: Path) -> Path:
        raise RuntimeError(f"osmnx download of {place!r} failed (ConnectionError). Fix: set "
                           "network.source = 'osm_file' with network.path")

    monkeypatch.setattr(network, "fetch_osmnx_network", offline)
    rc = main(["fetch-network", "--place", "万源市, 四川省, 中国", "--out", str(tmp_path / "roads.osm")])
    err = capsys.readouterr().err
    assert rc == 2
    assert "Traceback" not in err and "unexpected" not in err
    assert "network.source = 'osm_file'" in err
    assert not (tmp_path / "roads.osm").exists()


def test_an_interrupt_landing_in_a_weakref_callback_is_delivered_again(capsys) -> None:
    """Ctrl-C during a weakref callback (seen once in CI as "Exception ignored in ... KeyboardInterrupt"
    with a traceback, the run going on): it reaches ordinary code a moment later, with no traceback."""
    import time
    import weakref

    from coverage import cli

    class Thing:
        pass

    def callback(_: object) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt), cli.interrupts_not_lost():
        thing = Thing()
        ref = weakref.ref(thing, callback)
        del thing  # the callback runs here and its KeyboardInterrupt cannot propagate
        for _ in range(300):  # ordinary code: the interrupt arrives within a few steps
            time.sleep(0.01)
    assert ref() is None
    assert "Traceback" not in capsys.readouterr().err
