"""The input-layer check (``python -m coverage check-layers``): read the units and every facility
layer and report what happened to each, without raising for input problems."""

from __future__ import annotations

import logging
from collections import Counter

import geopandas as gpd

from coverage.config import Config
from coverage.errors import LayerError
from coverage.layers.facilities import read_layer, shift_against_other_layers
from coverage.layers.osm import osm_road_lines
from coverage.layers.placement import study_area
from coverage.layers.report import LayerReport, LayerSummary
from coverage.layers.units import Units, read_units, resolve_metric_crs, units_shift_warnings

log = logging.getLogger(__name__)

__all__ = ["check_layers"]


def _units_summary(cfg: Config, report: LayerReport) -> Units | None:
    """Read the units into ``report.units`` (and the metric CRS into the report); None on error."""
    us = report.units
    try:
        units = read_units(cfg)
    except LayerError as exc:
        us.error = str(exc)
        return None
    us.rows_read = us.accepted = len(units.units)
    us.crs = "EPSG:4326 (as read, reprojected)"
    us.kinds = dict(Counter(units.units["unit_type"] + "/" + units.units["unit_class"]))
    us.warnings.extend(units.warnings)
    if len(units.communities):
        us.kinds["communities (社区/村)"] = len(units.communities)
    report.metric_crs = resolve_metric_crs(cfg, units.units)
    return units


def check_layers(cfg: Config, *, roads: gpd.GeoSeries | None = None) -> LayerReport:
    """Read every input layer and report rows, accepted, rejected by reason, CRS, encoding, kinds and
    warnings (``python -m coverage check-layers``). Never raises for input problems: they are in the
    report and ``.ok`` is False.

    ``roads`` (metric CRS lines) feed the GCJ-02/BD-09 shift warning; when not given and the network
    source is an OSM file, its highway ways are read for that purpose."""
    report = LayerReport(units=LayerSummary(name="units", source_file=str(cfg.units.path)), layers=[])
    units = _units_summary(cfg, report)
    area = units.units if units is not None else None
    metric = report.metric_crs or "EPSG:3857"
    net = cfg.network
    if roads is None and area is not None and net.source == "osm_file" and net.path is not None \
            and net.path.exists():
        try:
            roads = osm_road_lines(net.path, metric, tuple(area.total_bounds))
        except Exception as exc:  # noqa: BLE001 - an unreadable network is the network check's business
            log.warning("could not read roads from %s for the shift check: %s", net.path, exc)
    if units is not None and roads is not None:
        report.units.warnings.extend(units_shift_warnings(cfg.units, units.units, units.communities,
                                                          roads=roads, metric_crs=metric))
    lon_hint = None
    area_m = study_area(area, metric) if area is not None else None
    if area is not None:
        lon_hint = float(area.to_crs("EPSG:4326").union_all().centroid.x)
    read: list[tuple[gpd.GeoDataFrame, LayerSummary]] = []
    for i, fc in enumerate(cfg.facilities):
        try:
            f, _, s = read_layer(fc, i, known_kinds=cfg.kinds, area=area_m, metric_crs=metric, roads=roads,
                                 lon_hint=lon_hint)
            read.append((f, s))
        except LayerError as exc:
            s = LayerSummary(name=fc.name, source_file=str(fc.path), error=str(exc))
        report.layers.append(s)
    shift_against_other_layers([f for f, _ in read], [s for _, s in read], cfg, metric)
    return report
