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

import logging
import shutil
import time
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
    population,
    transaction,
)
from coverage.config import Config
from coverage.errors import PipelineError
from coverage.graph import Network
from coverage.layers.units import units_shift_warnings
from coverage.study import StudyArea, assign_to_units, read_study_area

log = logging.getLogger(__name__)

__all__ = ["Analysis", "PipelineError", "Results", "analyse", "data_confidence", "evaluate", "input_paths",
           "is_current", "redraw_maps", "run", "with_facilities"]


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


def analyse(cfg: Config, *, timings: dict[str, float] | None = None,
            travel: access.TravelTimesFn | None = None, work_dir: Path | None = None) -> Analysis:
    """Read every input and compute the travel times of every service (with ``travel`` when given)."""
    timings = {} if timings is None else timings
    with _stage("units", timings):
        study = read_study_area(cfg)
    with _stage("network", timings):
        nets = network.build_networks(cfg, metric_crs=study.metric_crs, study_area_wgs84=study.outline_wgs84)
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
        cell_snaps = access.snap_cells(cfg, nets, cells_in.cells.reset_index(drop=True))
        fac_snaps = access.snap_facilities(cfg, nets, placed)
        access.require_usable(cfg, placed, fac_snaps, skip=skip)
        if travel is None:
            times = access.travel_times(cfg, nets, cell_snaps, placed, fac_snaps, skip=skip)
        else:
            times = travel(cfg, nets, cells_in.cells.reset_index(drop=True), cell_snaps, placed, fac_snaps,
                           skip=skip, work_dir=work_dir)
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


def evaluate(a: Analysis, *, timings: dict[str, float] | None = None) -> Results:
    """Isochrones, covered flags, indicators and standards, and gap areas from an :class:`Analysis`."""
    timings = {} if timings is None else timings
    cfg = a.cfg
    cells = a.cell_snaps.add_to_cells(a.cells_in.cells.reset_index(drop=True))
    cells = a.times.add_to_cells(cells, a.cell_snaps, cfg.services)
    skip = a.not_assessed
    with _stage("isochrones", timings):
        iso, qa = access.isochrone_layers(cfg, a.networks, a.facilities, a.fac_snaps, skip=skip)
    with _stage("indicators", timings):
        cells = assessment.blank_cells(indicators.add_covered_flags(cells, a.study.units, cfg.services),
                                       cfg.services, skip)
        costs = access.fca_costs(cfg, a.networks, a.facilities, a.cell_snaps, a.fac_snaps, skip=skip)
        unit_ind, comm_ind, std = indicators.indicators_and_standards(
            cells, a.study.units, a.facilities, cfg, communities=a.study.communities, fca_costs=costs,
            not_assessed=skip)
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


def is_current(cfg: Config, *, build_root: Path = Path("build")) -> bool:
    """True when ``build/<region>/run_info.json`` is newer than every input (:func:`input_paths`): the
    test ``make run`` uses, in Python, so that no file name of the region reaches make or a shell."""
    stamp = Path(build_root) / cfg.region.name / "run_info.json"
    if not stamp.is_file():
        return False
    newest = max((p.stat().st_mtime for p in input_paths(cfg)), default=0.0)
    return stamp.stat().st_mtime >= newest


def _check_qa(qa: pd.DataFrame) -> None:
    bad = qa[~qa["ok"].astype(bool)] if len(qa) else qa
    if len(bad):
        raise PipelineError(f"isochrone QA failed for {len(bad)} polygon(s) (a bug, not bad input): "
                            + bad.head(5).to_string(index=False))


def _write_maps(cfg: Config, build_dir: Path, maps_dir: Path, *, changed_only: bool = False,
                extra_inputs: tuple[Path, ...] = ()) -> None:
    from coverage.maps import write_maps, write_overview_png

    write_overview_png(build_dir, maps_dir / "overview.png", region_title=cfg.region.title)
    write_maps(build_dir, maps_dir, basemap=cfg.maps.basemap, region_title=cfg.region.title,
               tianditu_key=cfg.maps.tianditu_key, changed_only=changed_only, extra_inputs=extra_inputs)


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
        transaction.clean_stale(Path(build_root) / name, final)
        tmp = transaction.tmp_folder(final)
        try:
            if changed_only and final.is_dir():
                shutil.copytree(final, tmp, dirs_exist_ok=True)
            _write_maps(cfg, Path(build_root) / name, tmp, changed_only=changed_only,
                        extra_inputs=(cfg.path,))
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        transaction.swap_in(tmp, final)
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
    with transaction.region_lock(Path(build_root), name):
        transaction.clean_stale(final, *([final_maps] if final_maps is not None else []))
        tmp = transaction.tmp_folder(final)
        tmp_maps = transaction.tmp_folder(final_maps) if final_maps is not None else None
        try:
            a = analyse(cfg, timings=timings, travel=travel, work_dir=tmp / ".tiles")
            res = evaluate(a, timings=timings)
            _check_qa(res.isochrone_qa)
            with _stage("write", timings):
                outputs.write_build(tmp, a, res, timings=timings, total_s=time.perf_counter() - t_start)
            if tmp_maps is not None:
                with _stage("maps", timings):
                    _write_maps(cfg, tmp, tmp_maps)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            if tmp_maps is not None:
                shutil.rmtree(tmp_maps, ignore_errors=True)
            raise
        transaction.swap_in(tmp, final)
        if tmp_maps is not None and final_maps is not None:
            transaction.swap_in(tmp_maps, final_maps)
    log.info("Wrote results to %s in %.1f s", final, time.perf_counter() - t_start)
    return final
