"""Command line: the only place that reads argv and configures logging.

``python -m coverage <command>``; the Makefile calls these. Every user-facing error (bad config,
bad layer, bad population data, ...) ends in a one-paragraph message and exit code 2, never a
traceback; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import _thread
import argparse
import contextlib
import json
import logging
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coverage.errors import ConfigError, user_error_types

if TYPE_CHECKING:
    from coverage.cluster import TiledTravelTimes
    from coverage.config import Config

log = logging.getLogger("coverage")


def _config_path(args: argparse.Namespace) -> Path:
    if getattr(args, "config", None):
        return Path(args.config)
    return Path("layers") / args.region / "coverage.toml"


def _load(args: argparse.Namespace) -> Config:
    """The region config of ``--config`` or ``--region``; with ``--region`` the config's
    ``region.name`` must be the folder's name (it names build/<name>/ and maps/<name>/: a copied folder
    that kept another region's name would overwrite that region's results)."""
    from coverage.config import load_config

    cfg = load_config(_config_path(args))
    if not getattr(args, "config", None) and cfg.region.name != args.region:
        raise ConfigError(f"{_config_path(args)}: region.name = {cfg.region.name!r} but the folder is "
                          f"layers/{args.region}/; set name = {args.region!r} under [region] (the name "
                          f"chooses build/<name>/ and maps/<name>/, so another region's results would be "
                          f"overwritten)")
    return cfg


def cmd_demo_data(args: argparse.Namespace) -> int:
    from coverage.demo import build_demo

    paths = build_demo(Path(args.out_dir))
    log.info("Wrote %d demo layer files to %s", len(paths), args.out_dir)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """The whole analysis and (unless --no-maps) every page, as one transaction; with --if-changed
    only when an input is newer than the build (else the pages are brought up to date)."""
    from coverage.pipeline import is_current, redraw_maps, run

    cfg = _load(args)
    maps_root = None if args.no_maps else Path(args.maps_root)
    if args.if_changed and is_current(cfg, build_root=Path(args.build_root)):
        print(f"results: {Path(args.build_root) / cfg.region.name} (up to date: no input changed)")
        if maps_root is not None:
            index = redraw_maps(cfg, build_root=Path(args.build_root), maps_root=maps_root, changed_only=True)
            print(f"maps: {index}")
        return 0
    out = run(cfg, build_root=Path(args.build_root), maps_root=maps_root, travel=_tiles(args))
    print(f"results: {out}")
    if maps_root is not None:
        print(f"maps: {maps_root / cfg.region.name / 'index.html'}")
    return 0


def _tiles(args: argparse.Namespace) -> TiledTravelTimes:
    """The travel-time stage of ``run`` (coverage.cluster): tiled on dask when the region is large or
    ``--tiled``; a bad ``--workers`` or an unreachable ``--scheduler`` fails before any input is read."""
    from coverage.cluster import ClusterOptions, TiledTravelTimes, check_workers, connect

    if args.scheduler:
        connect(args.scheduler, timeout_s=5.0).close()
    elif args.workers is not None:
        check_workers(args.workers)
    return TiledTravelTimes(ClusterOptions(workers=args.workers, scheduler=args.scheduler or None,
                                           mode=args.tiles, tile_size_m=args.tile_size_m))


def cmd_check_layers(args: argparse.Namespace) -> int:
    """Every input validated as a run would (coverage.validate): exit 0 exactly when run accepts."""
    from coverage.validate import check_region

    report = check_region(_load(args), build_root=Path(args.build_root))
    print(report.text())
    return 0 if report.ok else 1


def cmd_maps(args: argparse.Namespace) -> int:
    """Every page of a region in one call (overview PNG, unit pages, index.html), written aside and
    swapped in; ``--changed-only`` rewrites only unit pages older than their inputs."""
    from coverage.pipeline import redraw_maps

    cfg = _load(args)
    index = redraw_maps(cfg, build_root=Path(args.build_root), maps_root=Path(args.maps_root),
                        changed_only=args.changed_only)
    print(f"maps: {index}")
    return 0


def cmd_map_unit(args: argparse.Namespace) -> int:
    from coverage.maps import write_unit_page

    cfg = _load(args)
    build_dir = Path(args.build_root) / cfg.region.name
    maps_dir = Path(args.maps_root) / cfg.region.name
    for code in args.unit_code:
        out = write_unit_page(build_dir, maps_dir, code, basemap=cfg.maps.basemap,
                              tianditu_key=cfg.maps.tianditu_key)
        print(f"map: {out}")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    """New sites for one service on the current baseline (run first when it is missing or stale)."""
    from coverage.pipeline import run_plan
    from coverage.plan import PlanRequest

    cfg = _load(args)
    req = PlanRequest(service=args.service, sites=args.sites, budget=args.budget,
                      capacitated=False if args.uncapacitated else None,
                      rules=tuple(args.rule) if args.rule else None)
    out = run_plan(cfg, req, build_root=Path(args.build_root), maps_root=Path(args.maps_root))
    info = json.loads((out / "plan.json").read_text(encoding="utf-8"))
    gap = info.get("gap")
    print(f"plan: {out} ({info['sites']} sites, {info['newly_covered_persons']:.0f} persons newly covered; "
          f"{info['method']}, " + ("optimal" if info["optimal"] else
                                   f"proven gap {gap:.2%} on {info['gap_basis']}" if gap is not None
                                   else "no bound") + ")")
    print(f"map: {Path(args.maps_root) / cfg.region.name / ('plan_' + info['service'] + '.html')}")
    return 0


def cmd_scenario(args: argparse.Namespace) -> int:
    """A what-if of ``[scenarios.<name>]`` on the current baseline (run first when missing or stale)."""
    from coverage.pipeline import run_scenario

    cfg = _load(args)
    if not args.scenario:
        raise ConfigError(f"give a scenario: SCENARIO=<name> (scenarios in {cfg.path}: "
                          + (", ".join(cfg.scenarios) or "none: add a [scenarios.<name>] table") + ")")
    out = run_scenario(cfg, args.scenario, build_root=Path(args.build_root), maps_root=Path(args.maps_root))
    print(f"scenario: {out} (diff: {out / 'diff.csv'})")
    print(f"maps: {Path(args.maps_root) / cfg.region.name / 'scenarios' / args.scenario / 'diff.html'}")
    return 0


def _optional_number(kind: type) -> Callable[[str], Any]:
    """argparse type: "" (an unset make variable) -> None, else ``kind(text)``."""
    def parse(text: str) -> Any:
        return None if text.strip() == "" else kind(text)
    parse.__name__ = kind.__name__
    return parse


def cmd_fetch_network(args: argparse.Namespace) -> int:
    from coverage.network import fetch_osmnx_network

    try:
        out = fetch_osmnx_network(args.place, Path(args.out))
    except RuntimeError as exc:  # no internet here / Overpass down: a message, not a bug report
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"network: {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m coverage",
                                description="一老一小 service-coverage analyzer (elderly care and childcare)")
    p.add_argument("--debug", action="store_true", help="show tracebacks and DEBUG logs")
    sub = p.add_subparsers(dest="command", required=True)

    def region_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--region", default="demo", help="folder under layers/ holding coverage.toml")
        sp.add_argument("--config", help="explicit path to a coverage.toml (overrides --region)")
        sp.add_argument("--build-root", default="build")
        sp.add_argument("--maps-root", default="maps")

    sp = sub.add_parser("demo-data", help="generate the built-in demo county's input layers")
    sp.add_argument("out_dir", nargs="?", default="layers/demo")
    sp.set_defaults(func=cmd_demo_data)

    sp = sub.add_parser("run", help="run the whole analysis of a region into build/<region>/ and "
                                    "maps/<region>/")
    region_args(sp)
    sp.add_argument("--no-maps", action="store_true", help="write build/<region>/ only")
    sp.add_argument("--if-changed", action="store_true",
                    help="run only when an input (region folder, files it names, pipeline code) is newer "
                         "than the build; otherwise only bring the pages up to date")
    sp.add_argument("--workers", type=int, help="tiled runs: worker processes of the local dask cluster "
                                                "(default: the cores; at most the cores)")
    sp.add_argument("--scheduler", help="tiled runs: address of an existing dask scheduler (tcp://host:port; "
                                        "the workers must share this file system)")
    tiles = sp.add_mutually_exclusive_group()
    tiles.add_argument("--tiled", dest="tiles", action="store_const", const="tiled", default="auto",
                       help="route in tiles on dask whatever the region's size")
    tiles.add_argument("--untiled", dest="tiles", action="store_const", const="untiled",
                       help="route in this process whatever the region's size")
    tiles.add_argument("--tiles", dest="tiles", choices=("auto", "tiled", "untiled"),
                       help="the same choice as a value (make run TILES=...): auto (by [tiles] min_cells), "
                            "tiled or untiled")
    sp.add_argument("--tile-size-m", type=float, help="side of a tile, metres (default [tiles] tile_size_m)")
    sp.set_defaults(func=cmd_run)

    sp = sub.add_parser("check-layers", help="validate every input as a run would; report every layer "
                                             "(rows, accepted, rejected by reason), networks, population")
    region_args(sp)
    sp.set_defaults(func=cmd_check_layers)

    sp = sub.add_parser("maps", help="write maps/<region>/index.html, unit pages and overview.png")
    region_args(sp)
    sp.add_argument("--changed-only", action="store_true",
                    help="skip unit pages newer than the build, the config and the maps code")
    sp.set_defaults(func=cmd_maps)

    sp = sub.add_parser("map-unit", help="write the pages of the given units (file names: unit_page_name)")
    region_args(sp)
    sp.add_argument("unit_code", nargs="+")
    sp.set_defaults(func=cmd_map_unit)

    sp = sub.add_parser("plan", help="recommend new sites for a service (build/<region>/plan/<service>/ and "
                                     "maps/<region>/plan_<service>.html)")
    region_args(sp)
    sp.add_argument("--service", default="elderly", help="service id (elderly, childcare, meal, ...)")
    sp.add_argument("--sites", type=_optional_number(int), default=None, help="number of new sites")
    sp.add_argument("--budget", type=_optional_number(float), default=None,
                    help="budget in planning.cost_unit (with or instead of --sites)")
    sp.add_argument("--uncapacitated", action="store_true", help="ignore capacities (coverage only)")
    sp.add_argument("--rule", action="append", default=None,
                    help="a per-unit rule the plan must meet (repeatable; default: planning.rules)")
    sp.set_defaults(func=cmd_plan)

    sp = sub.add_parser("scenario", help="a what-if of [scenarios.<name>]: build/<region>/scenarios/<name>/ "
                                         "and maps/<region>/scenarios/<name>/ with a per-unit diff")
    region_args(sp)
    sp.add_argument("--scenario", default="", help="name of a [scenarios.<name>] table of the config")
    sp.set_defaults(func=cmd_scenario)

    sp = sub.add_parser("fetch-network", help="download a road network with osmnx (needs internet)")
    sp.add_argument("--place", required=True, help="place name, e.g. '万源市, 四川省, 中国'")
    sp.add_argument("--out", required=True, help="output .osm file")
    sp.set_defaults(func=cmd_fetch_network)
    return p


INTERRUPTED = "interrupted; no partial outputs were kept (the previous results are untouched)"


@contextlib.contextmanager
def interrupts_not_lost() -> Iterator[None]:
    """Ctrl-C is never swallowed: a KeyboardInterrupt that lands in a weakref callback or a ``__del__``
    (where Python cannot raise it and prints it, traceback and all, as "Exception ignored in ...") is
    delivered again to the main thread 10 ms later, in ordinary code, so the run stops as it would
    anywhere else (one line, the transaction undone) instead of going on and printing a traceback."""
    previous = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        if unraisable.exc_type is not None and issubclass(unraisable.exc_type, KeyboardInterrupt):
            timer = threading.Timer(0.01, _thread.interrupt_main)
            timer.daemon = True
            timer.start()
            return
        previous(unraisable)

    sys.unraisablehook = hook
    try:
        yield
    finally:
        sys.unraisablehook = previous


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for noisy in ("fiona", "rasterio", "pyogrio", "matplotlib", "PIL", "urllib3", "shapely", "distributed"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if args.debug:
        return int(args.func(args))
    user_errors = user_error_types()  # imported before the work: an except clause must not import
    try:
        with interrupts_not_lost():
            return int(args.func(args))
    except KeyboardInterrupt:
        print(INTERRUPTED, file=sys.stderr)
        return 130
    except user_errors as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 -- a bug rather than bad input: no traceback unless --debug
        print(f"error: unexpected {type(exc).__name__}: {exc}\n(run again with --debug for the traceback "
              "and report it; no partial outputs were kept)", file=sys.stderr)
        return 1
