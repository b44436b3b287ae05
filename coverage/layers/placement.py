"""Where each facility row is: one point per row, to WGS84 lon/lat (GCJ-02 / BD-09 back-shifted when
configured), swapped latitude/longitude put back, projected to the metric CRS and tested against the
study area; plus the warning that points sit closer to the roads once back-shifted (copied from AMap,
Tencent or Baidu without saying so).

All functions are pure over arrays: they return new arrays and per-row reasons, never change their
inputs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from pyproj import CRS, Transformer
from shapely.geometry.base import BaseGeometry

from coverage.coords import bd09_to_wgs84, gcj02_to_wgs84, out_of_china
from coverage.layers.readers import GEOGRAPHIC_AS_WGS84

__all__ = ["STUDY_BUFFER_M", "Placement", "place_points", "points_of_geometries", "shift_warning",
           "study_area"]

#: points farther than this outside the units are rejected
STUDY_BUFFER_M = 1000.0


@dataclass(frozen=True)
class Placement:
    """Where the rows are: WGS84 lon/lat as read (swap undone, before the GCJ-02/BD-09 back-shift),
    metric x/y (NaN when unusable), rows swapped back, and the new per-row reasons."""

    lon: np.ndarray
    lat: np.ndarray
    x_m: np.ndarray
    y_m: np.ndarray
    swapped: np.ndarray
    reason: list[str | None]


def study_area(study_area_wgs84: Any, metric_crs: str) -> BaseGeometry | None:
    """The union of the units in the metric CRS, buffered by :data:`STUDY_BUFFER_M` (None for None)."""
    if study_area_wgs84 is None:
        return None
    if isinstance(study_area_wgs84, (gpd.GeoDataFrame, gpd.GeoSeries)):
        gs = gpd.GeoSeries(study_area_wgs84.geometry.values, crs=study_area_wgs84.crs or "EPSG:4326")
    else:
        gs = gpd.GeoSeries([study_area_wgs84], crs="EPSG:4326")
    if gs.crs is not None and gs.crs.to_epsg() not in GEOGRAPHIC_AS_WGS84:
        gs = gs.to_crs("EPSG:4326")
    area = shapely.union_all(gs.set_crs("EPSG:4326", allow_override=True).to_crs(metric_crs).values)
    return shapely.buffer(area, STUDY_BUFFER_M)


def points_of_geometries(geoms: Sequence[Any], reason: Sequence[str | None]
                         ) -> tuple[np.ndarray, np.ndarray, list[str], list[str | None]]:
    """(x, y, notes, reasons): one point per row in the layer CRS. Polygons and multi-points give their
    centroid (a representative point when the centroid falls outside the polygon), noted; null, empty,
    line and other geometries are rejected. Rows that already have a reason are left as they are."""
    n = len(geoms)
    reason = list(reason)
    notes = [""] * n
    px = np.full(n, np.nan)
    py = np.full(n, np.nan)
    for i, g in enumerate(geoms):
        if reason[i]:
            continue
        if g is None or (isinstance(g, float) and math.isnan(g)):
            reason[i] = "null geometry"
            continue
        if g.is_empty:
            reason[i] = "empty geometry"
            continue
        gt = g.geom_type
        if gt == "Point":
            pass
        elif gt in ("Polygon", "MultiPolygon", "MultiPoint"):
            notes[i] = f"{gt.lower()}: centroid used"
            g = g.centroid if gt == "MultiPoint" else g.representative_point() if not g.centroid.within(g) \
                else g.centroid
        elif gt in ("LineString", "MultiLineString", "LinearRing"):
            reason[i] = "line geometry (expected a point)"
            continue
        else:
            reason[i] = f"unsupported geometry type {gt}"
            continue
        px[i], py[i] = g.x, g.y
    return px, py, notes, reason


def _to_wgs84(x: np.ndarray, y: np.ndarray, crs: CRS) -> tuple[np.ndarray, np.ndarray]:
    if crs.to_epsg() in GEOGRAPHIC_AS_WGS84:
        return x.copy(), y.copy()
    tr = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    lon, lat = tr.transform(x, y)
    return np.asarray(lon, float), np.asarray(lat, float)


def _unshift(lon: np.ndarray, lat: np.ndarray, coords: str) -> tuple[np.ndarray, np.ndarray]:
    if coords == "gcj02":
        return gcj02_to_wgs84(lon, lat)
    if coords == "bd09":
        return bd09_to_wgs84(lon, lat)
    return lon, lat


def _metric_and_inside(lon: np.ndarray, lat: np.ndarray, *, coords: str, tr: Transformer,
                       area: BaseGeometry | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x_m, y_m, inside): back-shifted and projected points (NaN where lon/lat are not valid degrees)
    and whether each lies in ``area`` (every valid point when there is no area)."""
    valid = np.isfinite(lon) & np.isfinite(lat) & (np.abs(lat) <= 90) & (np.abs(lon) <= 180)
    ux, uy = _unshift(np.where(valid, lon, 0.0), np.where(valid, lat, 0.0), coords)
    mx, my = tr.transform(ux, uy)
    mx, my = np.asarray(mx, float), np.asarray(my, float)
    inside = valid & np.isfinite(mx) & np.isfinite(my)
    if area is not None:
        inside &= shapely.contains_xy(area, np.where(inside, mx, 0.0), np.where(inside, my, 0.0))
    return np.where(valid, mx, np.nan), np.where(valid, my, np.nan), inside


def place_points(px: np.ndarray, py: np.ndarray, reason: Sequence[str | None], *, crs: CRS, coords: str,
                 area: BaseGeometry | None, metric_crs: str) -> Placement:
    """Project the rows' points (layer CRS ``crs``) to ``metric_crs`` and test them against ``area``.

    In a geographic layer a point outside the area as (x, y) but inside it as (y, x) is swapped back
    (with no area: |lat| > 90 and |lon| <= 90). Usable rows (no reason yet, finite point) that end
    up without metric coordinates or outside the area get a reason.
    """
    n = len(px)
    reason = list(reason)
    ok = np.array([r is None for r in reason], dtype=bool) & np.isfinite(px) & np.isfinite(py)
    lon = np.full(n, np.nan)
    lat = np.full(n, np.nan)
    geographic = crs.is_geographic
    if ok.any():
        if geographic:
            lon[ok], lat[ok] = px[ok], py[ok]
        else:
            lon[ok], lat[ok] = _to_wgs84(px[ok], py[ok], crs)
    tr = Transformer.from_crs("EPSG:4326", metric_crs, always_xy=True)
    mx, my, inside = _metric_and_inside(lon, lat, coords=coords, tr=tr, area=area)
    swap = np.zeros(n, dtype=bool)
    if geographic:
        sx, sy, s_inside = _metric_and_inside(lat, lon, coords=coords, tr=tr, area=area)
        swap = ok & ((np.abs(lat) > 90) & (np.abs(lon) <= 90)) if area is None else ok & ~inside & s_inside
        if swap.any():
            lon[swap], lat[swap] = lat[swap].copy(), lon[swap].copy()
            mx[swap], my[swap], inside[swap] = sx[swap], sy[swap], True
    for i in np.flatnonzero(ok).tolist():
        if not (np.isfinite(mx[i]) and np.isfinite(my[i])):
            reason[i] = "coordinates out of range"
        elif not inside[i]:
            reason[i] = "outside the study area (more than 1 km beyond the units)"
    return Placement(lon=lon, lat=lat, x_m=mx, y_m=my, swapped=swap, reason=reason)


def shift_warning(xm: np.ndarray, ym: np.ndarray, lon: np.ndarray, lat: np.ndarray, roads: gpd.GeoSeries,
                  metric_crs: str, key: str, *, against: str = "road") -> str | None:
    """Warn when the points sit markedly closer to the roads (or to any other reference geometries,
    named by ``against``: the other layers' facilities) once back-shifted from GCJ-02 / BD-09.

    The statistic is the mean distance to the nearest road with each distance capped at 300 m (the
    median alone does not separate the cases on a dense street grid, where a ~500 m shift still lands
    most points near some road: the shift shows in the tail). "Markedly" means the back-shifted mean is
    below 60 % of the as-read mean and at least 15 m smaller.
    """
    if len(xm) < 3 or roads is None or len(roads) == 0 or out_of_china(lon, lat).mean() > 0.5:
        return None
    tree = shapely.STRtree(np.asarray(roads.values))

    def dist(px: np.ndarray, py: np.ndarray) -> np.ndarray:
        _, d = tree.query_nearest(shapely.points(px, py), return_distance=True, all_matches=False)
        return np.minimum(np.asarray(d, float), 300.0)

    tr = Transformer.from_crs("EPSG:4326", metric_crs, always_xy=True)
    d0 = dist(xm, ym)
    best: tuple[str, np.ndarray] | None = None
    for hint, fn in (("gcj02", gcj02_to_wgs84), ("bd09", bd09_to_wgs84)):
        bx, by = tr.transform(*fn(lon, lat))
        d1 = dist(np.asarray(bx), np.asarray(by))
        if d1.mean() < 0.6 * d0.mean() and d0.mean() - d1.mean() > 15.0 and (
                best is None or d1.mean() < best[1].mean()):
            best = (hint, d1)
    if best is None:
        return None
    name = {"gcj02": "GCJ-02 (AMap/Tencent)", "bd09": "BD-09 (Baidu)"}[best[0]]
    d1 = best[1]
    return (f"points look shifted: distance to the nearest {against} is {d0.mean():.0f} m on average (median "
            f"{np.median(d0):.0f} m) as read but {d1.mean():.0f} m (median {np.median(d1):.0f} m) if they "
            f"are {name} coordinates; if they were copied from that map set {key}.coords = \"{best[0]}\"")
