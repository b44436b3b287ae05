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

from coverage.coords import bd09_to_wgs84, gcj02_to_wgs84, out_of_china, wgs84_to_bd09, wgs84_to_gcj02
from coverage.layers.readers import GEOGRAPHIC_AS_WGS84

__all__ = ["NEAR_ROAD_M", "SHIFT_CAP_M", "SHIFT_MIN_POINTS", "SHIFT_MIN_VERTICES", "STUDY_BUFFER_M",
           "Placement", "as_written", "boundary_shift_warning", "network_extent", "place_points",
           "points_of_geometries", "shift_warning", "study_area"]

#: points farther than this outside the units are rejected
STUDY_BUFFER_M = 1000.0
#: the shift checks: distances to the nearest road are capped at SHIFT_CAP_M (points); they need at
#: least SHIFT_MIN_POINTS points / SHIFT_MIN_VERTICES polygon vertices inside the road network's
#: extent; a boundary vertex within NEAR_ROAD_M of a road counts as "on a road"
SHIFT_CAP_M = 300.0
SHIFT_MIN_POINTS = 3
SHIFT_MIN_VERTICES = 20
NEAR_ROAD_M = 30.0


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


_SHIFT_NAMES = {"wgs84": "WGS84/CGCS2000 (unshifted)", "gcj02": "GCJ-02 (AMap/Tencent)",
                "bd09": "BD-09 (Baidu)"}
_TO_WGS84 = {"gcj02": gcj02_to_wgs84, "bd09": bd09_to_wgs84}
_FROM_WGS84 = {"gcj02": wgs84_to_gcj02, "bd09": wgs84_to_bd09}


def _declared(coords: str) -> str:
    """The shift family of a ``coords`` value: cgcs2000 is wgs84 at metre level."""
    return "wgs84" if coords in ("wgs84", "cgcs2000", "") else coords


def as_written(lon: np.ndarray, lat: np.ndarray, coords: str) -> tuple[np.ndarray, np.ndarray]:
    """The coordinates as the file wrote them, from WGS84 positions converted from ``coords``
    (the forward shift: exact to millimetres against the iterative back-shift)."""
    fwd = _FROM_WGS84.get(_declared(coords))
    if fwd is None:
        return np.asarray(lon, float), np.asarray(lat, float)
    return fwd(lon, lat)


def network_extent(reference: gpd.GeoSeries | None, *, pad_m: float = 0.0) -> BaseGeometry | None:
    """The extent of the reference geometries (metric CRS): the convex hull of their vertices, padded
    by ``pad_m``; None when there are none."""
    if reference is None or len(reference) == 0:
        return None
    xy = shapely.get_coordinates(np.asarray(reference.values))
    if not len(xy):
        return None
    hull = shapely.convex_hull(shapely.multipoints(xy))
    return shapely.buffer(hull, pad_m) if pad_m > 0 else hull


def _candidates(lon: np.ndarray, lat: np.ndarray, tr: Transformer
                ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Metric positions of coordinates AS WRITTEN if they are WGS84, GCJ-02 or BD-09."""
    out = {}
    for hint in ("wgs84", "gcj02", "bd09"):
        fn = _TO_WGS84.get(hint)
        ll = fn(lon, lat) if fn is not None else (lon, lat)
        x, y = tr.transform(*ll)
        out[hint] = (np.asarray(x, float), np.asarray(y, float))
    return out


def _nearest_m(reference: gpd.GeoSeries) -> Any:
    tree = shapely.STRtree(np.asarray(reference.values))

    def dist(px: np.ndarray, py: np.ndarray) -> np.ndarray:
        if not len(px):
            return np.zeros(0)
        _, d = tree.query_nearest(shapely.points(px, py), return_distance=True, all_matches=False)
        return np.asarray(d, float)

    return dist


def _fix_text(key: str, declared: str, best: str) -> str:
    if best == "wgs84":
        return (f"if they are not shifted (WGS84/CGCS2000: converted twice, or never copied from AMap/Baidu) "
                f"set {key}.coords = \"wgs84\"")
    return f"if they were copied from that map set {key}.coords = \"{best}\""


def shift_warning(xm: np.ndarray, ym: np.ndarray, lon: np.ndarray, lat: np.ndarray,
                  roads: gpd.GeoSeries | None, metric_crs: str, key: str, *, against: str = "road",
                  coords: str = "wgs84") -> str | None:
    """Warn when the points sit markedly closer to the roads (or to any other reference geometries,
    named by ``against``: the other layers' facilities) under another reading of their coordinates
    than the declared one: WGS84 points copied from AMap/Tencent (GCJ-02) or Baidu (BD-09) without
    saying so, and points declared GCJ-02/BD-09 that were already WGS84 (back-shifted twice).

    ``xm``/``ym`` are the points as placed (metric, after the back-shift of ``coords``), ``lon``/``lat``
    the coordinates AS WRITTEN in the file (before any back-shift). Only points inside the reference's
    extent (:func:`network_extent`, the convex hull of the roads) are compared: outside it every
    reading hits the cap and nothing can be told (against other facilities every point is compared).
    With fewer than :data:`SHIFT_MIN_POINTS` inside, the answer against roads is "cannot check: only N
    points lie within the road network ..." (never silence); against other facilities, None.

    The statistic is the mean distance to the nearest road with each distance capped at
    :data:`SHIFT_CAP_M` (the median alone does not separate the cases on a dense street grid, where a
    ~500 m shift still lands most points near some road: the shift shows in the tail). "Markedly"
    means the other reading's mean is below 60 % of the declared one and at least 15 m smaller.
    """
    lon, lat = np.asarray(lon, float), np.asarray(lat, float)
    if roads is None or len(lon) == 0 or out_of_china(lon, lat).mean() > 0.5:
        return None
    xm, ym = np.asarray(xm, float), np.asarray(ym, float)
    ok = np.isfinite(xm) & np.isfinite(ym)
    if against == "road":
        extent = network_extent(roads)
        inside = ok & (shapely.contains_xy(extent, np.where(ok, xm, 0.0), np.where(ok, ym, 0.0))
                       if extent is not None else np.zeros(len(xm), dtype=bool))
    else:
        inside = ok
    n_in = int(inside.sum())
    if n_in < SHIFT_MIN_POINTS:
        if against != "road":
            return None
        return (f"cannot check: only {n_in} points lie within the road network (of {len(xm)}; "
                f"{SHIFT_MIN_POINTS} are needed) to tell whether they are GCJ-02/BD-09 shifted: check "
                f"{key}.coords on a map (the layer over OSM tiles)")
    declared = _declared(coords)
    dist = _nearest_m(roads)
    tr = Transformer.from_crs("EPSG:4326", metric_crs, always_xy=True)
    cand = _candidates(lon[inside], lat[inside], tr)
    d0 = np.minimum(dist(xm[inside], ym[inside]), SHIFT_CAP_M)
    best: tuple[str, np.ndarray] | None = None
    for hint, (bx, by) in cand.items():
        if hint == declared:
            continue
        d1 = np.minimum(dist(bx, by), SHIFT_CAP_M)
        if d1.mean() < 0.6 * d0.mean() and d0.mean() - d1.mean() > 15.0 and (
                best is None or d1.mean() < best[1].mean()):
            best = (hint, d1)
    if best is None:
        return None
    d1 = best[1]
    how = "as read" if declared == "wgs84" else f"as declared ({key}.coords = \"{coords}\", back-shifted)"
    subset = "" if n_in == len(xm) else f" (the {n_in} of {len(xm)} points within the road network)"
    return (f"points look shifted: distance to the nearest {against} is {d0.mean():.0f} m on average (median "
            f"{np.median(d0):.0f} m) {how} but {d1.mean():.0f} m (median {np.median(d1):.0f} m) if they "
            f"are {_SHIFT_NAMES[best[0]]} coordinates{subset}; {_fix_text(key, declared, best[0])}")


def boundary_shift_warning(lon: np.ndarray, lat: np.ndarray, roads: gpd.GeoSeries | None, metric_crs: str,
                           key: str, *, coords: str = "wgs84", what: str = "unit") -> str | None:
    """Warn when polygon boundaries sit markedly closer to the roads under another reading of their
    coordinates than the declared one (a DataV/AMap outline in GCJ-02 declared WGS84, or the reverse).

    ``lon``/``lat`` are the boundary vertices AS WRITTEN in the file (before any back-shift); ``key``
    is the config key of their ``coords`` ("units.coords"), named in the fix.
    Administrative boundaries often follow roads (and rivers): a boundary read right has many of its
    vertices (where it turns: corners at junctions) on a road, one shifted by a few hundred metres
    few. The statistic is the share of the vertices inside the road network's extent that lie within
    :data:`NEAR_ROAD_M` of a road; "markedly" means another reading's share is at least 1.5 times the
    declared one's and 20 percentage points higher, and its median distance is smaller. With fewer than
    :data:`SHIFT_MIN_VERTICES` vertices inside the extent: "cannot check: only N vertices lie within
    the road network ...". None without roads or outside China.
    """
    lon, lat = np.asarray(lon, float), np.asarray(lat, float)
    if roads is None or len(lon) == 0 or out_of_china(lon, lat).mean() > 0.5:
        return None
    declared = _declared(coords)
    tr = Transformer.from_crs("EPSG:4326", metric_crs, always_xy=True)
    cand = _candidates(lon, lat, tr)
    x0, y0 = cand[declared]
    ok = np.isfinite(x0) & np.isfinite(y0)
    extent = network_extent(roads)
    inside = ok & (shapely.contains_xy(extent, np.where(ok, x0, 0.0), np.where(ok, y0, 0.0))
                   if extent is not None else np.zeros(len(x0), dtype=bool))
    n_in = int(inside.sum())
    if n_in < SHIFT_MIN_VERTICES:
        return (f"cannot check: only {n_in} points lie within the road network ({what} boundary vertices, "
                f"of {len(x0)}; {SHIFT_MIN_VERTICES} are needed) to tell whether the polygons are "
                f"GCJ-02/BD-09 shifted: check {key} = \"{coords}\" on a map (the polygons over OSM "
                f"tiles; DataV/AMap outlines are GCJ-02)")
    dist = _nearest_m(roads)
    d0 = dist(x0[inside], y0[inside])
    s0 = float((d0 <= NEAR_ROAD_M).mean())
    best: tuple[str, np.ndarray, float] | None = None
    for hint, (bx, by) in cand.items():
        if hint == declared:
            continue
        d1 = dist(bx[inside], by[inside])
        s1 = float((d1 <= NEAR_ROAD_M).mean())
        if s1 >= 1.5 * s0 and s1 - s0 >= 0.2 and np.median(d1) < np.median(d0) and (
                best is None or s1 > best[2]):
            best = (hint, d1, s1)
    if best is None:
        return None
    hint, d1, s1 = best
    how = "as read" if declared == "wgs84" else f"as declared ({key} = \"{coords}\", back-shifted)"
    fix = (f"if they are not shifted set {key} = \"wgs84\"" if hint == "wgs84"
           else f"if the outlines come from that map (DataV/AMap outlines are GCJ-02) set {key} = \"{hint}\"")
    return (f"{what} boundaries look shifted: {s0:.0%} of their {n_in} vertices within the road network lie "
            f"within {NEAR_ROAD_M:g} m of a road (median {np.median(d0):.0f} m) {how} but {s1:.0%} (median "
            f"{np.median(d1):.0f} m) if they are {_SHIFT_NAMES[hint]} coordinates; {fix}")
