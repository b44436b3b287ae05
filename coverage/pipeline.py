"""The whole analysis of one region: typed stages chained in data-flow order, written atomically.

study area -> networks -> facilities -> population -> snapping -> travel times -> (isochrones,
indicators + standards, gaps) -> files. Each stage is a plain function of the modules named below
with typed inputs and outputs; this module only chains them. :class:`Analysis` keeps what later
work re-uses (networks, snaps per mode, facilities, cells, travel times): a scenario re-runs
:func:`evaluate` from it with other facilities (:func:`with_facilities` re-snaps only those and
re-runs the travel-time passes, never the networks or the population), and a tiled run calls the
same stages per tile.

:func:`run` is a transaction over ``build/<region>/`` and ``maps/<region>/`` (:mod:`coverage.transaction`):
one run per region at a time, everything written aside and swapped in only when every stage
succeeded, so a failed or killed run leaves the previous results (or nothing), never a half-written
or mixed set.
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
import shutil
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import geopandas as gpd
import pandas as pd

from coverage import (
    access,
    assessment,
    confidence,
    gaps,
    indicators,
    layers,
    network,
    outputs,
    plan,
    population,
    transaction,
)
from coverage.config import Config
from coverage.errors import PipelineError
from coverage.graph import Network
from coverage.layers.units import units_shift_warnings
from coverage.study import StudyArea, assign_to_units, read_study_area

log = logging.getLogger(__name__)

__all__ = ["Analysis", "PipelineError", "Results", "analyse", "baseline", "config_digest",
           "data_confidence", "evaluate", "evaluated_cells", "input_paths", "is_current", "load_baseline",
           "osm_cache_root", "plan_on", "redraw_maps", "run", "run_plan", "run_scenario", "save_baseline",
           "with_facilities"]


@contextmanager
def _stage(name: str, timings: dict[str, float]) -> Iterator[None]:
    t0 = time.perf_counter()
    log.info("[%s] ...", name)
    yield
    timings[name] = round(time.perf_counter() - t0, 3)
    log.info("[%s] done in %.1f s", name, timings[name])


@dataclass(frozen=True)
class Analysis:
    """Everything up to the travel times, re-usable by scenarios and tiles."""

    cfg: Config
    study: StudyArea
    networks: dict[str, Network]
    roads: gpd.GeoDataFrame  # physical road lines with `highway` (shift check, census weights)
    fac_layers: layers.FacilityLayers  # as read: accepted rows, rejects, per-layer summaries
    facilities: gpd.GeoDataFrame  # accepted facilities + unit/community codes + snap columns + status
    cells_in: population.Cells  # population cell pieces as built (before travel times)
    cell_snaps: access.CellSnaps
    fac_snaps: access.FacilitySnaps
    times: access.TravelTimes
    #: services the data do not allow assessing, with the reason (coverage.assessment)
    not_assessed: dict[str, str] = field(default_factory=dict)
    #: warnings about the inputs found after reading them (e.g. GCJ-02-shifted unit outlines)
    warnings: tuple[str, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Results:
    """What the outputs are written from."""

    cells: gpd.GeoDataFrame  # cells with travel times, snap columns and covered flags
    unit_ind: gpd.GeoDataFrame
    comm_ind: gpd.GeoDataFrame | None
    standards: pd.DataFrame
    gaps: gpd.GeoDataFrame | None
    isochrones: dict[str, gpd.GeoDataFrame]
    isochrone_qa: pd.DataFrame
    confidence: pd.DataFrame  # per unit_code: data-coverage measures, low_confidence, confidence_reasons


def osm_cache_root(build_root: Path) -> Path:
    """``<build_root>/.cache/osm``: the tiled OSM ways caches, shared by every region and run."""
    return Path(build_root) / ".cache" / "osm"


def analyse(cfg: Config, *, timings: dict[str, float] | None = None,
            travel: access.TravelTimesFn | None = None, work_dir: Path | None = None,
            build_root: Path | None = None) -> Analysis:
    """Read every input and compute the travel times of every service (with ``travel`` when given).
    With ``build_root`` (``run`` and ``make check`` pass theirs), an OSM network file is read through its
    tile cache under ``<build_root>/.cache/osm``, outside every region's build folder (which a run swaps
    in whole); None (the default: a library call writes nothing): the file is parsed."""
    timings = {} if timings is None else timings
    with _stage("units", timings):
        study = read_study_area(cfg)
    with _stage("network", timings):
        nets = network.build_networks(cfg, metric_crs=study.metric_crs, study_area_wgs84=study.outline_wgs84,
                                      osm_cache_root=osm_cache_root(build_root) if build_root else None)
        roads = network.road_frame(nets)  # built once: shift checks here, census weights below
        shift = units_shift_warnings(cfg.units, study.units, study.communities, roads=roads.geometry,
                                     metric_crs=study.metric_crs)
    with _stage("facilities", timings):
        fac_layers = layers.read_facilities(cfg, study_area_wgs84=study.outline_wgs84,
                                            metric_crs=study.metric_crs, roads=roads.geometry)
        placed = assign_to_units(fac_layers.facilities.reset_index(drop=True), study.units, study.communities)
        skip = assessment.not_assessed(cfg, placed)
        for sid, reason in skip.items():
            log.warning("Service %s: %s", sid, reason)
    with _stage("population", timings):
        cells_in = population.build_cells(cfg.population, units=study.units, communities=study.communities,
                                          metric_crs=study.metric_crs, roads=roads)
        log.info("Population: %d cell pieces, %.0f people (%s; ages from %s)", len(cells_in.cells),
                 cells_in.cells["pop_total"].sum(), cells_in.method, cells_in.age_source)
    with _stage("travel times", timings):
        fac_snaps = access.snap_facilities(cfg, nets, placed)
        access.require_usable(cfg, placed, fac_snaps, skip=skip)
        if travel is None:
            cell_snaps = access.snap_cells(cfg, nets, cells_in.cells.reset_index(drop=True))
            times = access.travel_times(cfg, nets, cell_snaps, placed, fac_snaps, skip=skip)
        else:
            cell_snaps, times = travel(cfg, nets, cells_in.cells.reset_index(drop=True), placed, fac_snaps,
                                       skip=skip, work_dir=work_dir, unit_class=study.unit_class)
    return Analysis(cfg=cfg, study=study, networks=nets, roads=roads, fac_layers=fac_layers,
                    facilities=access.facility_snap_columns(placed, fac_snaps), cells_in=cells_in,
                    cell_snaps=cell_snaps, fac_snaps=fac_snaps, times=times, not_assessed=skip,
                    warnings=tuple(shift), timings=timings)


def with_facilities(a: Analysis, facilities: gpd.GeoDataFrame) -> Analysis:
    """``a`` with other facilities (a scenario): they are placed in units, snapped and routed; the
    networks, the population and the cell snaps are re-used as they are."""
    placed = assign_to_units(facilities.reset_index(drop=True), a.study.units, a.study.communities)
    skip = assessment.not_assessed(a.cfg, placed)
    fac_snaps = access.snap_facilities(a.cfg, a.networks, placed)
    times = access.travel_times(a.cfg, a.networks, a.cell_snaps, placed, fac_snaps, skip=skip)
    return replace(a, facilities=access.facility_snap_columns(placed, fac_snaps), fac_snaps=fac_snaps,
                   times=times, not_assessed=skip)


def data_confidence(a: Analysis, cells: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per unit: the data-coverage measures and the 低可信 / low-confidence flag (coverage.confidence);
    ``cells`` with the snap columns when the caller has them already."""
    if cells is None:
        cells = a.cell_snaps.add_to_cells(a.cells_in.cells.reset_index(drop=True))
    census = a.cells_in.method == population.METHOD_CENSUS
    return confidence.unit_confidence(a.cfg, a.study.units, a.networks, cells, a.facilities, census=census,
                                      cell_area_ha=(a.cfg.population.census_cell_m / 100.0) ** 2)


def evaluated_cells(a: Analysis) -> gpd.GeoDataFrame:
    """The cells with their snaps, travel times and covered flags (blank for a service not assessed)."""
    cells = a.cell_snaps.add_to_cells(a.cells_in.cells.reset_index(drop=True))
    cells = a.times.add_to_cells(cells, a.cell_snaps, a.cfg.services)
    cells = indicators.add_covered_flags(cells, a.study.units, a.cfg.services)
    return assessment.blank_cells(cells, a.cfg.services, a.not_assessed)


def evaluate(a: Analysis, *, timings: dict[str, float] | None = None, isochrones: bool = True) -> Results:
    """Isochrones, covered flags, indicators and standards, and gap areas from an :class:`Analysis`;
    ``isochrones=False`` skips the polygons (a plan's check of its standards needs none)."""
    timings = {} if timings is None else timings
    cfg = a.cfg
    skip = a.not_assessed
    iso: dict[str, gpd.GeoDataFrame] = {}
    qa = pd.DataFrame({"ok": pd.Series([], dtype=bool)})
    if isochrones:
        with _stage("isochrones", timings):
            iso, qa = access.isochrone_layers(cfg, a.networks, a.facilities, a.fac_snaps, skip=skip)
    with _stage("indicators", timings):
        cells = evaluated_cells(a)
        tiled = a.times.unit_sums
        costs = access.fca_costs(cfg, a.networks, a.facilities, a.cell_snaps, a.fac_snaps,
                                 skip={*skip, *(tiled.fca_services if tiled else ())})
        unit_ind, comm_ind, std = indicators.indicators_and_standards(
            cells, a.study.units, a.facilities, cfg, communities=a.study.communities, fca_costs=costs,
            not_assessed=skip, tiles=tiled)
        unit_ind = indicators.add_snap_columns(unit_ind, cells, "unit_code", cfg)
        if comm_ind is not None:
            comm_ind = indicators.add_snap_columns(comm_ind, cells, "community_code", cfg)
    with _stage("data confidence", timings):
        conf = data_confidence(a, cells)
        unit_ind = unit_ind.join(conf, on="unit_code")
        if comm_ind is not None:  # a community shares its unit's flag (its data come from the same files)
            comm_ind = comm_ind.join(conf[["low_confidence", "confidence_reasons"]], on="unit_code")
        std = confidence.mark_standards(std, conf)
    with _stage("gaps", timings):
        gap_table = gaps.service_gaps(cells, cfg.services, cfg.standards, transform=a.cells_in.transform,
                                      crs=a.cells_in.raster_crs, skip=skip)
    return Results(cells=cells, unit_ind=unit_ind, comm_ind=comm_ind, standards=std, gaps=gap_table,
                   isochrones=iso, isochrone_qa=qa, confidence=conf)


def input_paths(cfg: Config) -> list[Path]:
    """Every file a run reads: the region folder's files (dot-files aside), the files the config names
    outside it (shared rasters, OSM extracts), and the package's pipeline modules (not the maps)."""
    folder = cfg.path.parent
    paths = [p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")]
    named = [cfg.units.path, cfg.units.communities_path, cfg.network.path, cfg.population.total,
             cfg.population.age_60plus, cfg.population.age_0to3, cfg.population.ratios_csv,
             cfg.population.census_csv, *(f.path for f in cfg.facilities)]
    for p in named:
        if p is not None and p.exists():
            paths += [p] if p.is_file() else [q for q in p.parent.glob(p.stem + ".*")]
    pkg = Path(__file__).resolve().parent
    paths += [p for p in pkg.rglob("*.py") if "maps" not in p.relative_to(pkg).parts]
    return paths


#: config sections that do not change the baseline run (plans and scenarios read them afterwards)
AFTER_RUN_SECTIONS = ("planning", "scenarios")
#: the baseline's stages, kept for plans and scenarios (written by :func:`run`)
BASELINE_FILE = Path("stages") / "baseline.pickle"


def config_digest(cfg: Config) -> str:
    """SHA-256 of the region config's values without :data:`AFTER_RUN_SECTIONS`: editing a plan's menu
    or a scenario does not make the baseline stale."""
    raw = tomllib.loads(cfg.path.read_text(encoding="utf-8"))
    for k in AFTER_RUN_SECTIONS:
        raw.pop(k, None)
    return hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()


def is_current(cfg: Config, *, build_root: Path = Path("build")) -> bool:
    """True when ``build/<region>/run_info.json`` is newer than every input (:func:`input_paths`) but the
    config, and the config's digest (:func:`config_digest`) is the one the run recorded: the test
    ``make run`` uses, in Python, so that no file name of the region reaches make or a shell."""
    stamp = Path(build_root) / cfg.region.name / "run_info.json"
    if not stamp.is_file():
        return False
    try:
        recorded = json.loads(stamp.read_text(encoding="utf-8")).get("config_digest")
    except (ValueError, OSError):
        return False
    if recorded != config_digest(cfg):
        return False
    skip = _after_run_files(cfg)
    newest = max((p.stat().st_mtime for p in input_paths(cfg) if p not in skip and p.suffix != ".toml"),
                 default=0.0)  # region configs: the digest above
    return stamp.stat().st_mtime >= newest


def _after_run_files(cfg: Config) -> set[Path]:
    """Files only plans and scenarios read (candidate layers, added layers, target-year population), with
    their sidecar files: editing them does not make the baseline stale."""
    named = [f.path for f in cfg.planning.candidates]
    for sc in cfg.scenarios.values():
        named += [f.path for f in sc.add] + ([sc.population_csv] if sc.population_csv is not None else [])
    out: set[Path] = set()
    for p in named:
        out |= {p, *p.parent.glob(p.stem + ".*")} if p.parent.is_dir() else {p}
    return out


def save_baseline(folder: Path, a: Analysis, res: Results) -> Path:
    """Keep the baseline's stages (``stages/baseline.pickle``) for plans and scenarios: they re-use its
    networks, snaps and travel times instead of re-reading and rebuilding them. The file is this
    package's own output, read back only by :func:`load_baseline` from the region's build folder. The
    evaluated cells are not kept (:func:`evaluated_cells` re-makes them from the stages in a moment),
    nor the isochrone polygons (in ``isochrones.gpkg``)."""
    path = Path(folder) / BASELINE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    lean = replace(res, cells=res.cells.iloc[:0], isochrones={})  # both re-made or not needed on load
    with open(path, "wb") as f:
        pickle.dump({"format": 2, "analysis": a, "results": lean}, f, protocol=pickle.HIGHEST_PROTOCOL)
    return path


def load_baseline(cfg: Config, *, build_root: Path = Path("build")) -> tuple[Analysis, Results] | None:
    """The baseline's stages when they are current (:func:`is_current`), with the current config's
    plan and scenario sections; None when missing or stale."""
    path = Path(build_root) / cfg.region.name / BASELINE_FILE
    if not path.is_file() or not is_current(cfg, build_root=build_root):
        return None
    with open(path, "rb") as f:
        data = pickle.load(f)  # noqa: S301 - our own build output (see save_baseline)
    if not isinstance(data, dict) or data.get("format") != 2:
        return None
    a, res = data["analysis"], data["results"]
    a = replace(a, cfg=replace(a.cfg, planning=cfg.planning, scenarios=cfg.scenarios))
    return a, replace(res, cells=evaluated_cells(a))


def baseline(cfg: Config, *, build_root: Path = Path("build"), maps_root: Path | None = Path("maps")
             ) -> tuple[Analysis, Results]:
    """The current baseline's stages: kept from the last run, or a run now (with its maps)."""
    kept = load_baseline(cfg, build_root=build_root)
    if kept is not None:
        log.info("Re-using the baseline of %s (%s)", cfg.region.name, Path(build_root) / cfg.region.name)
        return kept
    log.info("The baseline of %s is missing or older than its inputs: running it first", cfg.region.name)
    run(cfg, build_root=build_root, maps_root=maps_root)
    kept = load_baseline(cfg, build_root=build_root)
    if kept is None:  # a run just wrote it
        raise PipelineError(f"{Path(build_root) / cfg.region.name / BASELINE_FILE}: not readable after a run")
    return kept


def _check_qa(qa: pd.DataFrame) -> None:
    bad = qa[~qa["ok"].astype(bool)] if len(qa) else qa
    if len(bad):
        raise PipelineError(f"isochrone QA failed for {len(bad)} polygon(s) (a bug, not bad input): "
                            + bad.head(5).to_string(index=False))


def _write_maps(cfg: Config, build_dir: Path, maps_dir: Path, *, changed_only: bool = False,
                extra_inputs: tuple[Path, ...] = ()) -> None:
    """Every page of a build: the overview PNG, the unit pages and index.html, the plan pages."""
    from coverage.maps import write_maps, write_overview_png
    from coverage.maps.plan_page import write_plan_page

    write_overview_png(build_dir, maps_dir / "overview.png", region_title=cfg.region.title)
    write_maps(build_dir, maps_dir, basemap=cfg.maps.basemap, region_title=cfg.region.title,
               tianditu_key=cfg.maps.tianditu_key, changed_only=changed_only, extra_inputs=extra_inputs)
    for info in sorted((build_dir / "plan").glob("*/plan.json")):
        write_plan_page(build_dir, info.parent, maps_dir, basemap=cfg.maps.basemap,
                        tianditu_key=cfg.maps.tianditu_key)


def redraw_maps(cfg: Config, *, build_root: Path = Path("build"), maps_root: Path = Path("maps"),
                changed_only: bool = False) -> Path:
    """Draw ``maps/<region>/`` again from ``build/<region>/``, as a transaction of its own (under the
    region lock, into a folder swapped in at the end). ``changed_only`` starts from a copy of the
    current pages and rewrites only the unit pages older than their inputs."""
    from coverage.maps import inputs_mtime

    name = cfg.region.name
    final = Path(maps_root) / name
    index = final / "index.html"
    if changed_only and index.is_file() and index.stat().st_mtime >= inputs_mtime(Path(build_root) / name,
                                                                                  (cfg.path,)):
        log.info("Maps of %s are up to date", name)
        return index
    with transaction.region_lock(Path(build_root), name):
        transaction.clean_stale(Path(build_root) / name)
        with transaction.aside(final) as (tmp,):
            assert tmp is not None
            if changed_only and final.is_dir():
                shutil.copytree(final, tmp, dirs_exist_ok=True)
            elif (final / "scenarios").is_dir():  # drawn from their own builds: kept as they are
                shutil.copytree(final / "scenarios", tmp / "scenarios")
            _write_maps(cfg, Path(build_root) / name, tmp, changed_only=changed_only,
                        extra_inputs=(cfg.path,))
    return final / "index.html"


def run(cfg: Config, *, build_root: Path = Path("build"), maps_root: Path | None = None,
        travel: access.TravelTimesFn | None = None) -> Path:
    """Run every stage for the region of ``cfg`` and return ``build/<region>/``; with ``maps_root``
    also draw ``maps/<region>/`` in the same transaction (:mod:`coverage.transaction`: one run per
    region at a time, everything written aside and swapped in only when all of it succeeded).
    ``travel``: the travel-time stage of a tiled run (its scratch files go under the tmp build)."""
    timings: dict[str, float] = {}
    name = cfg.region.name
    final = Path(build_root) / name
    final_maps = Path(maps_root) / name if maps_root is not None else None
    t_start = time.perf_counter()
    lock = transaction.region_lock(Path(build_root), name)
    with lock, transaction.aside(final, final_maps) as (tmp, tmp_maps):
        assert tmp is not None
        a = analyse(cfg, timings=timings, travel=travel, work_dir=tmp, build_root=Path(build_root))
        res = evaluate(a, timings=timings)
        _check_qa(res.isochrone_qa)
        with _stage("write", timings):
            outputs.write_build(tmp, a, res, timings=timings, total_s=time.perf_counter() - t_start,
                                config_digest=config_digest(cfg))
            save_baseline(tmp, a, res)
        if tmp_maps is not None:
            with _stage("maps", timings):
                _write_maps(cfg, tmp, tmp_maps)
    log.info("Wrote results to %s in %.1f s", final, time.perf_counter() - t_start)
    return final


def plan_on(a: Analysis, res: Results, req: plan.PlanRequest) -> plan.Plan:
    """:func:`coverage.plan.make_plan` on the baseline ``a`` / ``res``; its check of the standards re-routes
    only the facilities (:func:`with_facilities`) and skips the isochrones."""
    return plan.make_plan(a, res, req, lambda fac: evaluate(with_facilities(a, fac), isochrones=False))


def run_plan(cfg: Config, req: plan.PlanRequest, *, build_root: Path = Path("build"),
             maps_root: Path | None = Path("maps")) -> Path:
    """Plan new sites (coverage.plan) on the current baseline (kept, or run now) and write
    ``build/<region>/plan/<service>/`` as a transaction, then its page and the overview's link."""
    from coverage.plan_outputs import write_plan

    a, res = baseline(cfg, build_root=build_root, maps_root=maps_root)
    p = plan_on(a, res, req)
    name = cfg.region.name
    build_dir = Path(build_root) / name
    final = build_dir / "plan" / p.service.id
    with transaction.region_lock(Path(build_root), name):
        with transaction.aside(final) as (tmp,):
            assert tmp is not None
            write_plan(tmp, p)
        if maps_root is not None:
            _write_after_run_pages(cfg, build_dir, Path(maps_root) / name, plan_dir=final)
    log.info("Plan of %s: %d sites, %.0f persons newly covered -> %s", p.service.id, len(p.sites),
             float(p.info["newly_covered_persons"]), final)  # type: ignore[arg-type]
    return final


def _write_after_run_pages(cfg: Config, build_dir: Path, maps_dir: Path, *,
                           plan_dir: Path | None = None) -> None:
    """A plan's page (when given) and the overview again (its links to plans and scenarios)."""
    from coverage.maps import write_maps
    from coverage.maps.plan_page import write_plan_page

    if plan_dir is not None:
        write_plan_page(build_dir, plan_dir, maps_dir, basemap=cfg.maps.basemap,
                        tianditu_key=cfg.maps.tianditu_key)
    write_maps(build_dir, maps_dir, basemap=cfg.maps.basemap, region_title=cfg.region.title,
               tianditu_key=cfg.maps.tianditu_key, unit_pages=False)


def run_scenario(cfg: Config, name: str, *, build_root: Path = Path("build"),
                 maps_root: Path | None = Path("maps")) -> Path:
    """A what-if (coverage.scenario) on the current baseline's stages: its full results under
    ``build/<region>/scenarios/<name>/`` (with ``diff.csv`` and ``scenario.json``) and its pages under
    ``maps/<region>/scenarios/<name>/`` (with ``diff.html``), both written aside and swapped in."""
    from coverage.maps.diff_page import write_diff_page
    from coverage.scenario import scenario_diff, scenario_inputs, targets_met

    a, res = baseline(cfg, build_root=build_root, maps_root=maps_root)
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    build_dir = Path(build_root) / cfg.region.name
    fac, cells_in, rejects, record = scenario_inputs(a, cfg, name, build_dir)
    a2 = with_facilities(replace(a, cells_in=cells_in), fac)
    a2 = replace(a2, fac_layers=replace(a2.fac_layers, rejects=pd.concat([a2.fac_layers.rejects, rejects],
                                                                         ignore_index=True)))
    res2 = evaluate(a2, timings=timings)
    _check_qa(res2.isochrone_qa)
    diff = scenario_diff(cfg, res, res2)
    record["targets"] = targets_met(res2)
    record["target_set"] = cfg.standards.targets or "(values given in [standards])"
    final = build_dir / "scenarios" / name
    final_maps = Path(maps_root) / cfg.region.name / "scenarios" / name if maps_root is not None else None
    with transaction.region_lock(Path(build_root), cfg.region.name):
        with transaction.aside(final, final_maps) as (tmp, tmp_maps):
            assert tmp is not None
            outputs.write_build(tmp, a2, res2, timings=timings, total_s=time.perf_counter() - t0,
                                config_digest=config_digest(cfg))
            outputs.write_scenario_record(tmp, diff, record)
            if tmp_maps is not None:
                _write_maps(cfg, tmp, tmp_maps)
                write_diff_page(tmp, tmp_maps, basemap=cfg.maps.basemap, tianditu_key=cfg.maps.tianditu_key)
        if maps_root is not None:
            _write_after_run_pages(cfg, build_dir, Path(maps_root) / cfg.region.name)
    log.info("Scenario %s written to %s", name, final)
    return final
