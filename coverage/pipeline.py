"""The whole analysis of one region, stage by stage, written atomically to ``build/<region>/``.

config -> layers -> network -> travel times / isochrones -> population -> indicators, standards,
gaps -> files. Every output is first written into ``build/<region>.tmp-<pid>/`` and the folder is
renamed over ``build/<region>/`` only when every stage succeeded, so a failed run leaves the previous
results (or nothing) and never a half-written set.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from coverage.config import Config

log = logging.getLogger(__name__)


class PipelineError(RuntimeError):
    """A stage could not produce its result from the given inputs."""


@contextmanager
def _stage(name: str, timings: dict[str, float]) -> Iterator[None]:
    t0 = time.perf_counter()
    log.info("[%s] ...", name)
    yield
    timings[name] = round(time.perf_counter() - t0, 3)
    log.info("[%s] done in %.1f s", name, timings[name])


def snapping_rule_text(cfg: Config) -> str:
    """The snapping rule, stated in every output (results depend strongly on it)."""
    return (f"Points snap to the nearest point on the nearest road edge; the off-road leg is walked at "
            f"{cfg.walk.access_speed_mps:g} m/s and counted in the travel time. Facilities farther than "
            f"{cfg.snapping.facility_max_snap_m:g} m and population cell centres farther than "
            f"{cfg.snapping.cell_max_snap_m:g} m from any road are not snapped: they are reported, and such "
            f"cells count as not covered (population beyond the limit is given per unit).")


def snapping_rule_text_zh(cfg: Config) -> str:
    return (f"吸附规则：点吸附到最近道路边上的最近点，离路段按 {cfg.walk.access_speed_mps:g} 米/秒 步行计入出行时间；"
            f"设施距道路超过 {cfg.snapping.facility_max_snap_m:g} 米、人口格网中心距道路超过 "
            f"{cfg.snapping.cell_max_snap_m:g} 米者不吸附，单独报告并计为未覆盖。")


def run(cfg: Config, *, build_root: Path = Path("build")) -> Path:
    """Run every stage for the region of ``cfg`` and return ``build/<region>/``."""
    from coverage import gaps as gapmod
    from coverage import indicators, layers, network, population
    from coverage.isochrones import isochrone_polygons
    from coverage.traveltime import coverage_matrix, nearest_facility_times, snap_points

    timings: dict[str, float] = {}
    name = cfg.region.name
    final = Path(build_root) / name
    tmp = Path(build_root) / f"{name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    t_start = time.perf_counter()
    try:
        with _stage("units", timings):
            units_in = layers.read_units(cfg)
            metric_crs = layers.resolve_metric_crs(cfg, units_in.units)
            study_area = units_in.units.geometry.union_all()
            units = units_in.units.to_crs(metric_crs)
            communities = (units_in.communities.to_crs(metric_crs)
                           if units_in.communities is not None and len(units_in.communities) else None)
            log.info("Read %d units (%s) and %d communities; metric CRS %s", len(units),
                     ", ".join(f"{k} {v}" for k, v in units["unit_type"].value_counts().items()),
                     0 if communities is None else len(communities), metric_crs)

        with _stage("network", timings):
            nets = network.build_networks(cfg, metric_crs=metric_crs, study_area_wgs84=study_area)
            network.export_network_gpkg(nets, tmp / "network.gpkg")

        with _stage("facilities", timings):
            roads = _road_frame(nets)  # built once: shift check here, census weights below
            fac_layers = layers.read_facilities(cfg, study_area_wgs84=study_area, metric_crs=metric_crs,
                                                roads=roads.geometry)
            facilities = fac_layers.facilities.reset_index(drop=True)
            layers.write_rejects(fac_layers.rejects, tmp / "rejects.csv")
            facilities = _assign_units(facilities, units, communities)

        with _stage("population", timings):
            cells_res = population.build_cells(cfg.population, units=units, communities=communities,
                                               metric_crs=metric_crs, roads=roads)
            cells = cells_res.cells.reset_index(drop=True)
            log.info("Population: %d cell pieces, %.0f people (%s; ages from %s)", len(cells),
                     cells["pop_total"].sum(), cells_res.method, cells_res.age_source)

        with _stage("travel times", timings):
            cells, facilities, snaps = _travel_times(cfg, nets, cells, facilities, snap_points,
                                                     nearest_facility_times)

        with _stage("isochrones", timings):
            iso_layers, iso_qa = _isochrones(cfg, nets, facilities, snaps, isochrone_polygons)
            _write_isochrones(iso_layers, tmp / "isochrones.gpkg")
            iso_qa.to_csv(tmp / "isochrone_qa.csv", index=False)
            bad = iso_qa[~iso_qa["ok"].astype(bool)] if len(iso_qa) else iso_qa
            if len(bad):
                raise PipelineError(f"isochrone QA failed for {len(bad)} polygon(s) (a bug, not bad input): "
                                    + bad.head(5).to_string(index=False))

        with _stage("indicators", timings):
            cells = indicators.add_covered_flags(cells, units, cfg.services)
            costs = _fca_costs(cfg, nets, facilities, cells, snaps, coverage_matrix)
            unit_ind, comm_ind, std = indicators.indicators_and_standards(
                cells, units, facilities, cfg, communities=communities, fca_costs=costs)
            unit_ind = _add_snap_columns(unit_ind, cells, "unit_code", cfg)
            if comm_ind is not None:
                comm_ind = _add_snap_columns(comm_ind, cells, "community_code", cfg)

        with _stage("gaps", timings):
            gap_frames = []
            for service, covered_col, pop_col in _gap_specs(cfg, cells):
                g = gapmod.gap_areas(cells, service=service, covered_col=covered_col, pop_col=pop_col,
                                     nearest_col=f"nearest_{service}_id", tt_col=f"tt_{service}_s",
                                     transform=cells_res.transform, crs=cells_res.raster_crs)
                gap_frames.append(g)
            gaps = pd.concat(gap_frames, ignore_index=True) if gap_frames else None

        with _stage("write", timings):
            _write_outputs(tmp, cfg, metric_crs=metric_crs, cells=cells, cells_res=cells_res,
                           facilities=facilities, unit_ind=unit_ind, comm_ind=comm_ind, std=std, gaps=gaps,
                           nets=nets, fac_layers=fac_layers, timings=timings,
                           total_s=time.perf_counter() - t_start, indicators_mod=indicators)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if final.exists():
        old = Path(build_root) / f"{name}.old-{os.getpid()}"
        final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(final)
    log.info("Wrote results to %s in %.1f s", final, time.perf_counter() - t_start)
    return final


# ------------------------------------------------------------------------------------------------
# helpers of the stages
# ------------------------------------------------------------------------------------------------


def _road_frame(nets: dict[str, Any]) -> gpd.GeoDataFrame:
    """Physical road lines (walk network, else delivery) with `highway`, in the metric CRS."""
    net = nets.get("walk") or next(iter(nets.values()))
    idx = net.physical_edges()
    return gpd.GeoDataFrame({"highway": net.edge_attrs["highway"].to_numpy()[idx]},
                            geometry=list(net.edge_geometry[idx]), crs=net.crs)


def _assign_units(facilities: gpd.GeoDataFrame, units: gpd.GeoDataFrame,
                  communities: gpd.GeoDataFrame | None) -> gpd.GeoDataFrame:
    """Add `unit_code` (and `community_code`) of the polygon each facility lies in ("" outside all)."""
    out = facilities.copy()
    j = gpd.sjoin(out[["geometry"]], units[["unit_code", "geometry"]], how="left", predicate="within")
    out["unit_code"] = j.groupby(level=0)["unit_code"].first().reindex(out.index).fillna("").astype(str)
    if communities is not None:
        j = gpd.sjoin(out[["geometry"]], communities[["community_code", "geometry"]], how="left",
                      predicate="within")
        out["community_code"] = (j.groupby(level=0)["community_code"].first().reindex(out.index)
                                 .fillna("").astype(str))
    else:
        out["community_code"] = ""
    return out


def _service_mask(facilities: gpd.GeoDataFrame, kinds: tuple[str, ...]) -> np.ndarray:
    return facilities["kind"].isin(kinds).to_numpy()


def _travel_times(cfg: Config, nets: dict[str, Any], cells: gpd.GeoDataFrame,
                  facilities: gpd.GeoDataFrame, snap_points: Any, nearest: Any
                  ) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, dict[str, Any]]:
    """Snap facilities and unique cell centres ONCE per mode, then one multi-source pass per service."""
    cells = cells.copy()
    facilities = facilities.copy()
    fac_xy = np.column_stack([facilities.geometry.x.to_numpy(), facilities.geometry.y.to_numpy()])
    cell_ids, first = np.unique(cells["cell_id"].to_numpy(), return_index=True)
    cell_xy = cells[["x", "y"]].to_numpy()[first]
    piece_to_cell = np.searchsorted(cell_ids, cells["cell_id"].to_numpy())
    snaps: dict[str, Any] = {"cell_ids": cell_ids}
    status = np.full(len(facilities), "ok", dtype=object)
    for mode, net in nets.items():
        fs = snap_points(net, fac_xy, max_snap_m=cfg.snapping.facility_max_snap_m)
        cs = snap_points(net, cell_xy, max_snap_m=cfg.snapping.cell_max_snap_m)
        snaps[f"fac_{mode}"], snaps[f"cell_{mode}"] = fs, cs
        facilities[f"snap_edge_{mode}"] = np.where(fs.snapped, fs.edge, -1)
        facilities[f"snap_frac_{mode}"] = np.round(fs.frac, 6)
        facilities[f"snap_dist_{mode}_m"] = np.round(fs.dist_m, 2)
        cells[f"snap_dist_{mode}_m"] = np.round(cs.dist_m[piece_to_cell], 2)
        cells[f"snapped_{mode}"] = cs.snapped[piece_to_cell]
        # a facility far from the network of a mode one of its services is routed on is reported
        kinds_on_mode = {k for sv in cfg.services.values() if sv.mode == mode for k in sv.kinds}
        for i in np.flatnonzero(~fs.snapped & facilities["kind"].isin(kinds_on_mode).to_numpy()):
            status[i] = (f"not snapped on {mode} network: {fs.dist_m[i]:.0f} m from the nearest road "
                         f"> {cfg.snapping.facility_max_snap_m:g} m (snapping.facility_max_snap_m)")
        log.info("Snapped on %s: %d/%d facilities, %d/%d cells within the limit", mode,
                 int(fs.snapped.sum()), len(fs.snapped), int(cs.snapped.sum()), len(cs.snapped))
    facilities["status"] = status
    for service, scfg in cfg.services.items():
        net = nets[scfg.mode]
        fs = snaps[f"fac_{scfg.mode}"]
        mask = _service_mask(facilities, scfg.kinds) & fs.snapped
        ids = facilities["fac_id"].to_numpy()[mask]
        access = cfg.walk.access_speed_mps if scfg.mode == "walk" else cfg.delivery.access_speed_mps
        if mask.any():
            res = nearest(net, fs.take(mask), snaps[f"cell_{scfg.mode}"], access_speed_mps=access)
            tt = res.target_time_s
            src = res.target_source
            nid = np.where(src >= 0, ids[np.clip(src, 0, None)], "")
        else:
            tt = np.full(len(cell_ids), np.inf)
            nid = np.full(len(cell_ids), "", dtype=object)
        cells[f"tt_{service}_s"] = tt[piece_to_cell]
        cells[f"nearest_{service}_id"] = np.asarray(nid, dtype=object)[piece_to_cell]
        log.info("Service %s (%s): %d facilities; median time to nearest %.1f min", service, scfg.mode,
                 int(mask.sum()), float(np.nanmedian(np.where(np.isfinite(tt), tt, np.nan)) / 60)
                 if np.isfinite(tt).any() else float("nan"))
    return cells, facilities, snaps


def _isochrones(cfg: Config, nets: dict[str, Any], facilities: gpd.GeoDataFrame, snaps: dict[str, Any],
                isochrone_polygons: Any, *, qa_facilities: int = 3, qa_sample_m: float = 20.0
                ) -> tuple[dict[str, gpd.GeoDataFrame], pd.DataFrame]:
    """Per-facility and dissolved isochrones per service and threshold, plus the built-in QA on a
    sample of ``qa_facilities`` facilities per service (every reachable road point, sampled every
    ``qa_sample_m``, inside its polygon; no polygon part farther than the frontage + ``qa_sample_m`` from a
    reached road sample). tests/test_isochrones.py runs the same QA at 10 m."""
    from coverage.isochrones import check_isochrones

    out: dict[str, gpd.GeoDataFrame] = {}
    qa: list[pd.DataFrame] = []
    for service, scfg in cfg.services.items():
        fs = snaps[f"fac_{scfg.mode}"]
        mask = _service_mask(facilities, scfg.kinds) & fs.snapped
        if not mask.any():
            continue
        access = cfg.walk.access_speed_mps if scfg.mode == "walk" else cfg.delivery.access_speed_mps
        thresholds = sorted({*scfg.thresholds_min} | ({scfg.urban_threshold_min, scfg.suburban_threshold_min}
                                                       if service == "meal" else set()))
        per_fac, dissolved = isochrone_polygons(
            nets[scfg.mode], fs.take(mask), source_ids=list(facilities["fac_id"].to_numpy()[mask]),
            thresholds_s=[t * 60.0 for t in thresholds], access_speed_mps=access,
            frontage_m=cfg.isochrones.frontage_m, service=service)
        for t in thresholds:
            tag = f"{service}_{t:g}min"
            out[f"{tag}_facility"] = per_fac[np.isclose(per_fac["threshold_min"], t)].reset_index(drop=True)
            out[f"{tag}_dissolved"] = dissolved[np.isclose(dissolved["threshold_min"], t)].reset_index(drop=True)
        q = check_isochrones(nets[scfg.mode], fs.take(mask), per_fac,
                             source_ids=list(facilities["fac_id"].to_numpy()[mask]), access_speed_mps=access,
                             frontage_m=cfg.isochrones.frontage_m, max_facilities=qa_facilities,
                             sample_m=qa_sample_m)
        qa.append(q.assign(service=service))
    return out, (pd.concat(qa, ignore_index=True) if qa else pd.DataFrame({"ok": []}))


def _write_isochrones(iso: dict[str, gpd.GeoDataFrame], path: Path) -> None:
    for name, gdf in iso.items():
        gdf.to_file(path, layer=name, driver="GPKG")


def _fca_costs(cfg: Config, nets: dict[str, Any], facilities: gpd.GeoDataFrame, cells: gpd.GeoDataFrame,
               snaps: dict[str, Any], coverage_matrix: Any) -> dict[str, tuple[list[str], Any]]:
    """Network site x cell-piece travel-time matrices within the 2SFCA catchment (beds, childcare slots).

    The matrix is computed once per unique cell centre and its columns repeated for each piece of a
    cell split between units.
    """
    catch_s = cfg.standards.fca_catchment_min * 60.0
    piece_to_cell = np.searchsorted(snaps["cell_ids"], cells["cell_id"].to_numpy())
    out: dict[str, tuple[list[str], Any]] = {}
    for service in ("elderly", "childcare"):
        scfg = cfg.services[service]
        fs = snaps[f"fac_{scfg.mode}"]
        mask = _service_mask(facilities, scfg.kinds) & fs.snapped
        if not mask.any():
            continue
        access = cfg.walk.access_speed_mps if scfg.mode == "walk" else cfg.delivery.access_speed_mps
        m = coverage_matrix(nets[scfg.mode], fs.take(mask), snaps[f"cell_{scfg.mode}"],
                            access_speed_mps=access, limit_s=catch_s)
        out[service] = (list(facilities["fac_id"].to_numpy()[mask]), m.tocsc()[:, piece_to_cell].tocsr())
    return out


def _add_snap_columns(ind: gpd.GeoDataFrame, cells: gpd.GeoDataFrame, key: str, cfg: Config) -> gpd.GeoDataFrame:
    """Population whose cell centre lies beyond the snap limit, per unit, and the rule itself."""
    ind = ind.copy()
    for mode in ("walk", "delivery"):
        col = f"snapped_{mode}"
        if col in cells:
            beyond = cells.loc[~cells[col].astype(bool)].groupby(key)["pop_total"].sum()
            ind[f"pop_beyond_snap_{mode}"] = ind[key].map(beyond).fillna(0.0).round(1)
    ind["snap_rule"] = (f"nearest edge; cells <= {cfg.snapping.cell_max_snap_m:g} m, facilities <= "
                        f"{cfg.snapping.facility_max_snap_m:g} m; access leg at {cfg.walk.access_speed_mps:g} m/s")
    return ind


def _gap_specs(cfg: Config, cells: gpd.GeoDataFrame) -> list[tuple[str, str, str]]:
    specs = []
    el = max(cfg.services["elderly"].thresholds_min)
    specs.append(("elderly", f"covered_elderly_{el:g}min", "pop_60plus"))
    specs.append(("meal", "covered_meal", "pop_60plus"))
    cc = max(cfg.services["childcare"].thresholds_min)
    specs.append(("childcare", f"covered_childcare_{cc:g}min", "pop_0to3"))
    return [s for s in specs if s[1] in cells.columns]


def _write_outputs(tmp: Path, cfg: Config, *, metric_crs: str, cells: gpd.GeoDataFrame, cells_res: Any,
                   facilities: gpd.GeoDataFrame, unit_ind: gpd.GeoDataFrame, comm_ind: gpd.GeoDataFrame | None,
                   std: pd.DataFrame, gaps: gpd.GeoDataFrame | None, nets: dict[str, Any], fac_layers: Any,
                   timings: dict[str, float], total_s: float, indicators_mod: Any) -> None:
    from coverage.population import cell_polygons

    rule = snapping_rule_text(cfg)
    # cells: GeoParquet, geometry = the cell square in EPSG:4326
    squares = cell_polygons(cells, cells_res.transform, cells_res.raster_crs)
    cells_out = gpd.GeoDataFrame(cells.drop(columns="geometry"), geometry=squares.to_crs("EPSG:4326").values,
                                 crs="EPSG:4326")
    cells_out.to_parquet(tmp / "cells.parquet")
    # facilities
    fac_out = facilities.copy()
    fac_out.to_file(tmp / "facilities.gpkg", layer="facilities", driver="GPKG")
    csv_cols = [c for c in ("fac_id", "name", "kind", "layer", "source_row", "unit_code", "community_code",
                            "snap_edge_walk", "snap_frac_walk", "snap_dist_walk_m", "snap_edge_delivery",
                            "snap_frac_delivery", "snap_dist_delivery_m", "duplicate_of", "status") if c in fac_out.columns]
    fac_csv = pd.DataFrame(fac_out[csv_cols])
    fac_csv.to_csv(tmp / "facilities.csv", index=False, encoding="utf-8-sig")
    # indicators
    unit_ind.to_file(tmp / "indicators.gpkg", layer="units", driver="GPKG")
    if comm_ind is not None:
        comm_ind.to_file(tmp / "indicators.gpkg", layer="communities", driver="GPKG")
    dd = indicators_mod.data_dictionary_frame(cfg)
    dd.to_csv(tmp / "data_dictionary.csv", index=False, encoding="utf-8-sig")
    tab = pd.DataFrame(unit_ind.drop(columns="geometry"))
    if comm_ind is not None:
        tab = pd.concat([tab.assign(level="unit"),
                         pd.DataFrame(comm_ind.drop(columns="geometry")).assign(level="community")],
                        ignore_index=True)
    tab.to_csv(tmp / "indicators.csv", index=False, encoding="utf-8-sig")
    labels = dict(zip(dd["column"], dd["label_zh"], strict=False))
    with pd.ExcelWriter(tmp / "indicators.xlsx", engine="openpyxl") as xw:
        pd.DataFrame(unit_ind.drop(columns="geometry")).rename(columns=labels).to_excel(
            xw, sheet_name="街道乡镇", index=False)
        if comm_ind is not None:
            pd.DataFrame(comm_ind.drop(columns="geometry")).rename(columns=labels).to_excel(
                xw, sheet_name="社区村", index=False)
        std.to_excel(xw, sheet_name="标准核查", index=False)
        dd.to_excel(xw, sheet_name="数据字典", index=False)
        pd.DataFrame({"说明": [snapping_rule_text_zh(cfg), rule]}).to_excel(xw, sheet_name="吸附规则", index=False)
    std.to_csv(tmp / "standards.csv", index=False, encoding="utf-8-sig")
    if gaps is not None and len(gaps):
        gaps.to_file(tmp / "gaps.gpkg", layer="gaps", driver="GPKG")
    else:
        gpd.GeoDataFrame({"gap_id": pd.Series([], dtype=int)}, geometry=[], crs=metric_crs).to_file(
            tmp / "gaps.gpkg", layer="gaps", driver="GPKG")
    (tmp / "unit_codes.txt").write_text("\n".join(unit_ind["unit_code"].astype(str)) + "\n", encoding="utf-8")
    info = {
        "region": cfg.region.name, "title": cfg.region.title, "metric_crs": metric_crs,
        "snapping_rule": rule, "snapping_rule_zh": snapping_rule_text_zh(cfg),
        "facility_max_snap_m": cfg.snapping.facility_max_snap_m, "cell_max_snap_m": cfg.snapping.cell_max_snap_m,
        "walk_speed_mps": cfg.walk.speed_mps, "delivery_speeds_kph": cfg.delivery.speeds_kph,
        "services": {k: {"kinds": list(v.kinds), "mode": v.mode, "thresholds_min": list(v.thresholds_min),
                         "urban_threshold_min": v.urban_threshold_min,
                         "suburban_threshold_min": v.suburban_threshold_min} for k, v in cfg.services.items()},
        "population_method": cells_res.method, "age_source": cells_res.age_source,
        "conservation": cells_res.conservation,
        "networks": {m: {"nodes": n.n_nodes, "edges": n.n_edges, **{k: v for k, v in n.report.items()
                                                                   if isinstance(v, (int, float, str))}}
                     for m, n in nets.items()},
        "facilities": {"accepted": len(facilities), "rejected": len(fac_layers.rejects),
                       "not_snapped": int((facilities["status"] != "ok").sum())},
        "isochrone_qa": "isochrone_qa.csv: every reachable road point inside its polygon and no polygon part "
                         f"farther than {cfg.isochrones.frontage_m:g} m (frontage) from a reached road piece",
        "cells": int(cells["cell_id"].nunique()), "cell_pieces": len(cells),
        "timings_s": timings, "total_s": round(total_s, 2),
    }
    (tmp / "run_info.json").write_text(json.dumps(info, ensure_ascii=False, indent=2, default=str),
                                       encoding="utf-8")
