"""Writing ``build/<region>/``: every table, layer and the run record, from the typed stage results.

One function per file family; :func:`write_build` writes them all into a folder (the pipeline's
temporary folder, swapped in only when everything succeeded). Files and their columns are listed in
docs/ARCHITECTURE.md; every column is in ``data_dictionary.csv``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import pandas as pd

from coverage.config import Config
from coverage.indicators import data_dictionary_frame
from coverage.population import cell_polygons
from coverage.services import registry_json
from coverage.tables import write_csv, write_xlsx

if TYPE_CHECKING:
    from coverage.pipeline import Analysis, Results

__all__ = ["FACILITY_CSV_COLUMNS", "snapping_rule_text", "snapping_rule_text_zh", "write_build"]

#: columns of facilities.csv (those present)
FACILITY_CSV_COLUMNS = ("fac_id", "name", "kind", "layer", "source_row", "unit_code", "community_code",
                        "snap_edge_walk", "snap_frac_walk", "snap_dist_walk_m", "snap_edge_delivery",
                        "snap_frac_delivery", "snap_dist_delivery_m", "duplicate_of", "status", "source_type")


def snapping_rule_text(cfg: Config) -> str:
    """The snapping rule, stated in every output (results depend strongly on it)."""
    return (f"Points snap to the nearest point on the nearest road edge; the off-road leg is walked at "
            f"{cfg.walk.access_speed_mps:g} m/s and counted in the travel time. Facilities farther than "
            f"{cfg.snapping.facility_max_snap_m:g} m and population cell centres farther than "
            f"{cfg.snapping.cell_max_snap_m:g} m from any road are not snapped: they are reported, and such "
            f"cells count as not covered (population beyond the limit is given per unit).")


def snapping_rule_text_zh(cfg: Config) -> str:
    return (f"吸附规则：点吸附到最近道路边上的最近点，离路段按 {cfg.walk.access_speed_mps:g} 米/秒 "
            "步行计入出行时间；"
            f"设施距道路超过 {cfg.snapping.facility_max_snap_m:g} 米、人口格网中心距道路超过 "
            f"{cfg.snapping.cell_max_snap_m:g} 米者不吸附，单独报告并计为未覆盖。")


def write_cells(path: Path, cells: gpd.GeoDataFrame, *, transform: Any, raster_crs: Any) -> None:
    """GeoParquet of the cells table; geometry = the cell square in EPSG:4326."""
    squares = cell_polygons(cells, transform, raster_crs)
    out = gpd.GeoDataFrame(cells.drop(columns="geometry"), geometry=squares.to_crs("EPSG:4326").values,
                           crs="EPSG:4326")
    out.to_parquet(path)


def write_facilities(folder: Path, facilities: gpd.GeoDataFrame, rejects: pd.DataFrame) -> None:
    """``facilities.gpkg`` (every column), ``facilities.csv`` (:data:`FACILITY_CSV_COLUMNS`) and
    ``rejects.csv``."""
    from coverage.layers import write_rejects

    facilities.to_file(folder / "facilities.gpkg", layer="facilities", driver="GPKG")
    cols = [c for c in FACILITY_CSV_COLUMNS if c in facilities.columns]
    write_csv(pd.DataFrame(facilities[cols]), folder / "facilities.csv")
    write_rejects(rejects, folder / "rejects.csv")


def write_indicators(folder: Path, cfg: Config, unit_ind: gpd.GeoDataFrame, comm_ind: gpd.GeoDataFrame | None,
                     std: pd.DataFrame) -> None:
    """``indicators.gpkg`` (layers units, communities), ``indicators.csv`` (both levels, column
    ``level``), ``indicators.xlsx`` (Chinese headers, standards, dictionary, snapping rule),
    ``standards.csv`` and ``data_dictionary.csv``."""
    unit_ind.to_file(folder / "indicators.gpkg", layer="units", driver="GPKG")
    if comm_ind is not None:
        comm_ind.to_file(folder / "indicators.gpkg", layer="communities", driver="GPKG")
    dd = data_dictionary_frame(cfg)
    write_csv(dd, folder / "data_dictionary.csv")
    units_tab = pd.DataFrame(unit_ind.drop(columns="geometry"))
    comm_tab = None if comm_ind is None else pd.DataFrame(comm_ind.drop(columns="geometry"))
    tab = units_tab
    if comm_tab is not None:
        tab = pd.concat([units_tab.assign(level="unit"), comm_tab.assign(level="community")],
                        ignore_index=True)
    write_csv(tab, folder / "indicators.csv")
    labels = dict(zip(dd["column"], dd["label_zh"], strict=True))
    sheets = {"街道乡镇": units_tab.rename(columns=labels)}
    if comm_tab is not None:
        sheets["社区村"] = comm_tab.rename(columns=labels)
    sheets |= {"标准核查": std, "数据字典": dd,
               "吸附规则": pd.DataFrame({"说明": [snapping_rule_text_zh(cfg), snapping_rule_text(cfg)]})}
    write_xlsx(sheets, folder / "indicators.xlsx")
    write_csv(std, folder / "standards.csv")


def write_gaps(path: Path, gaps: gpd.GeoDataFrame | None, metric_crs: str) -> None:
    if gaps is not None and len(gaps):
        gaps.to_file(path, layer="gaps", driver="GPKG")
    else:
        from coverage.gaps import GAP_COLUMNS

        empty = {c: pd.Series([], dtype=float if c.startswith(("pop_", "n_", "nearest_tt", "rank")) else str)
                 for c in GAP_COLUMNS if c != "geometry"}
        gpd.GeoDataFrame(empty, geometry=[], crs=metric_crs).to_file(path, layer="gaps", driver="GPKG")


def write_isochrones(path: Path, layers: dict[str, gpd.GeoDataFrame], qa: pd.DataFrame, *, crs: str) -> None:
    """``isochrones.gpkg`` (one layer per service, threshold and per-facility / dissolved; an empty
    layer ``none`` when no service has a usable facility, so the file, which the maps read, always
    exists) and ``isochrone_qa.csv`` (next to it)."""
    for name, gdf in layers.items():
        gdf.to_file(path, layer=name, driver="GPKG")
    if not layers:
        gpd.GeoDataFrame({"fac_id": pd.Series([], dtype=str), "service": pd.Series([], dtype=str),
                          "threshold_min": pd.Series([], dtype=float)}, geometry=[], crs=crs).to_file(
            path, layer="none", driver="GPKG")
    write_csv(qa, path.parent / "isochrone_qa.csv")


def run_info(a: Analysis, res: Results, *, timings: dict[str, float], total_s: float) -> dict[str, Any]:
    """The run record: region, CRS, snapping rule, speeds, the service registry used, counts, timings."""
    cfg = a.cfg
    cells, facilities = res.cells, a.facilities
    return {
        "region": cfg.region.name, "title": cfg.region.title, "metric_crs": a.study.metric_crs,
        "snapping_rule": snapping_rule_text(cfg), "snapping_rule_zh": snapping_rule_text_zh(cfg),
        "facility_max_snap_m": cfg.snapping.facility_max_snap_m,
        "cell_max_snap_m": cfg.snapping.cell_max_snap_m,
        "walk_speed_mps": cfg.walk.speed_mps, "delivery_speeds_kph": cfg.delivery.speeds_kph,
        **registry_json(cfg.services, cfg.kinds),
        "standards": dataclasses.asdict(cfg.standards),
        "not_assessed": a.not_assessed,
        "input_warnings": list(a.warnings),
        "low_confidence": {str(k): v for k, v in res.confidence.loc[
            res.confidence["low_confidence"].astype(bool), "confidence_reasons"].items()},
        "population_method": a.cells_in.method, "age_source": a.cells_in.age_source,
        "conservation": a.cells_in.conservation,
        "population_outside": {**a.cells_in.outside.to_dict(), "text": a.cells_in.outside.text()},
        "networks": {m: {"nodes": n.n_nodes, "edges": n.n_edges,
                         **{k: v for k, v in n.report.items() if isinstance(v, (int, float, str))}}
                     for m, n in a.networks.items()},
        "facilities": {"accepted": len(facilities), "rejected": len(a.fac_layers.rejects),
                       "not_snapped": int((facilities["status"] != "ok").sum())},
        "isochrone_qa": "isochrone_qa.csv: every reachable road point inside its polygon and no polygon part "
                        f"farther than {cfg.isochrones.frontage_m:g} m (frontage) from a reached road piece",
        "cells": int(cells["cell_id"].nunique()), "cell_pieces": len(cells),
        "time_cap_s": a.times.time_cap_s, "tiles": a.times.tiles,  # coverage.tiling: the cap of each service
        # coverage.unit_sums: who summed the per-unit population, coverage and 2SFCA columns (exact sums)
        "unit_sums": ({"by": "tiles", "fca_services": list(a.times.unit_sums.fca_services)}
                      if a.times.unit_sums is not None else {"by": "cells table", "fca_services": []}),
        "timings_s": timings, "total_s": round(total_s, 2),
    }


def write_water(path: Path, a: Analysis, *, margin_deg: float = 0.02) -> int:
    """Layer ``water`` of ``network.gpkg``: the water of the region's OSM file around the study area, in
    the metric CRS, for the maps' context layer (nothing is routed on it); 0 rows without an OSM file."""
    from coverage.layers.osm import water_from_osm

    net = a.cfg.network
    if net.source != "osm_file" or net.path is None or not net.path.is_file():
        return 0
    x0, y0, x1, y1 = a.study.outline_wgs84.bounds
    water = water_from_osm(net.path, (x0 - margin_deg, y0 - margin_deg, x1 + margin_deg, y1 + margin_deg))
    if len(water):
        metric = water.to_crs(a.study.metric_crs)
        gpd.GeoDataFrame({"kind": water.geom_type.to_numpy()}, geometry=metric.values,
                         crs=a.study.metric_crs).to_file(path, layer="water", driver="GPKG")
    return len(water)


def write_scenario_record(folder: Path, diff: pd.DataFrame, record: dict[str, Any]) -> None:
    """A scenario's ``diff.csv`` / ``diff.xlsx`` (coverage.scenario.DIFF_COLUMNS) and ``scenario.json``."""
    write_csv(diff, folder / "diff.csv")
    write_xlsx({"diff": diff}, folder / "diff.xlsx")
    (folder / "scenario.json").write_text(json.dumps(record, ensure_ascii=False, indent=2, default=str),
                                          encoding="utf-8")


def write_build(folder: Path, a: Analysis, res: Results, *, timings: dict[str, float],
                total_s: float, config_digest: str = "") -> None:
    """Every file of ``build/<region>/`` into ``folder``."""
    from coverage.network import export_network_gpkg

    export_network_gpkg(a.networks, folder / "network.gpkg")
    write_water(folder / "network.gpkg", a)
    write_facilities(folder, a.facilities, a.fac_layers.rejects)
    write_isochrones(folder / "isochrones.gpkg", res.isochrones, res.isochrone_qa, crs=a.study.metric_crs)
    write_cells(folder / "cells.parquet", res.cells, transform=a.cells_in.transform,
                raster_crs=a.cells_in.raster_crs)
    write_indicators(folder, a.cfg, res.unit_ind, res.comm_ind, res.standards)
    write_gaps(folder / "gaps.gpkg", res.gaps, a.study.metric_crs)
    info = run_info(a, res, timings=timings, total_s=total_s)
    info["config_digest"] = config_digest  # what `run --if-changed` and plans compare (pipeline.is_current)
    (folder / "run_info.json").write_text(json.dumps(info, ensure_ascii=False, indent=2, default=str),
                                          encoding="utf-8")
