"""A run is a transaction over ``build/<region>/`` and ``maps/<region>/`` together.

* **One run per region at a time**: :func:`region_lock` takes an exclusive ``flock`` on
  ``build/<region>.lock`` (released by the kernel when the process ends, however it ends); a second
  run of the same region fails at once with "another run of region X is in progress (pid N)".
* **Nothing half-written is ever in place**: every file is written into ``<folder>.tmp-<pid>/`` and
  :func:`swap_in` renames it over the final folder (the old one is renamed aside first and removed
  after). The build is swapped first and the maps right after; a kill between the two leaves maps
  older than their build, which ``make run`` / ``make pages`` redraw (their target depends on the
  build), and never a folder of mixed old and new pages.
* **Leftovers of killed runs are removed** by the next run of the region (under the lock):
  ``<folder>.tmp-*`` and ``<folder>.old-*``. When a kill fell between the two renames of
  :func:`swap_in`, the final folder is missing and ``.old-*`` holds the last good results: they are
  put back first.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from coverage.errors import InputError

log = logging.getLogger(__name__)

__all__ = ["RunInProgress", "aside", "clean_stale", "region_lock", "swap_in", "tmp_folder"]


class RunInProgress(InputError):
    """Another run of the same region holds the lock."""


def tmp_folder(final: Path) -> Path:
    """``<final>.tmp-<pid>`` next to ``final`` (created empty)."""
    tmp = final.with_name(f"{final.name}.tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    return tmp


@contextlib.contextmanager
def region_lock(build_root: Path, region: str) -> Iterator[None]:
    """Hold ``build/<region>.lock`` exclusively for the duration, or raise :class:`RunInProgress`."""
    build_root.mkdir(parents=True, exist_ok=True)
    path = build_root / f"{region}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "unknown pid"
            raise RunInProgress(f"another run of region {region!r} is in progress ({holder}); wait for it to "
                                f"finish or stop it, then run again ({path} is its lock)") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the flock


def _restore_or_remove_old(final: Path) -> None:
    olds = sorted(final.parent.glob(f"{final.name}.old-*"), key=lambda p: p.stat().st_mtime)
    if olds and not final.exists():
        olds[-1].rename(final)  # a kill between the two renames: the last good results go back
        log.warning("Restored %s from %s (a previous run was stopped while swapping)", final, olds[-1].name)
        olds = olds[:-1]
    for old in olds:
        shutil.rmtree(old, ignore_errors=True)


def clean_stale(*finals: Path) -> None:
    """Remove ``<final>.tmp-*`` of runs that were killed, and settle ``<final>.old-*`` (call under the
    region lock: no other run of the region can own them)."""
    for final in finals:
        if not final.parent.is_dir():
            continue
        for tmp in final.parent.glob(f"{final.name}.tmp-*"):
            shutil.rmtree(tmp, ignore_errors=True)
            log.info("Removed %s left by a stopped run", tmp)
        _restore_or_remove_old(final)


def swap_in(tmp: Path, final: Path) -> None:
    """Rename ``tmp`` over ``final`` (the previous ``final`` is renamed aside, then removed)."""
    if final.exists():
        old = final.with_name(f"{final.name}.old-{os.getpid()}")
        final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(final)


@contextlib.contextmanager
def aside(*finals: Path | None) -> Iterator[list[Path | None]]:
    """Write ``finals`` aside, all or nothing (call under :func:`region_lock`): leftovers of killed runs
    are settled, a temporary folder per final (None stays None) is yielded, removed if the body raises,
    and swapped in, in order, when it returns."""
    real = [f for f in finals if f is not None]
    clean_stale(*real)
    tmps: list[Path | None] = [tmp_folder(f) if f is not None else None for f in finals]
    try:
        yield tmps
    except BaseException:
        for t in tmps:
            if t is not None:
                shutil.rmtree(t, ignore_errors=True)
        raise
    for t, f in zip(tmps, finals, strict=True):
        if t is not None and f is not None:
            swap_in(t, f)
