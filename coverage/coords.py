"""Chinese map-coordinate shifts: WGS84 <-> GCJ-02 (AMap/Tencent) <-> BD-09 (Baidu), vectorised.

GCJ-02 is WGS84 plus a secret, smooth, position-dependent offset (a few hundred metres in China);
BD-09 is GCJ-02 with a further rotation/offset. Coordinates copied from AMap or Tencent maps are GCJ-02,
from Baidu maps BD-09. Neither carries a CRS tag, so a layer's config says ``coords = "gcj02"`` /
``"bd09"`` and :mod:`coverage.layers` converts the points to WGS84 with the functions below.

All functions take scalars or array-likes of longitudes and latitudes (degrees) and return a pair of
float64 numpy arrays ``(lon, lat)``. Points outside China (:func:`out_of_china`) are returned
unshifted, as the AMap/Baidu formulas themselves do.

Accuracy of the inverse :func:`gcj02_to_wgs84`: the forward offset is smooth, so the inverse is found
by fixed-point iteration ``wgs <- wgs - (gcj(wgs) - gcj_target)``. The widely copied one-step inverse
(``2 * gcj - gcj(gcj)``) leaves an error of ~0.5 m median and up to ~5 m; after 3 iterations it is below
0.5 m, and the default 6 iterations reach ~1e-9 degrees (millimetres); see ``tests/test_coords.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from pyproj import CRS

__all__ = [
    "bd09_to_gcj02",
    "bd09_to_wgs84",
    "gcj02_to_bd09",
    "gcj02_to_wgs84",
    "out_of_china",
    "require_projected",
    "utm_crs_for",
    "wgs84_to_bd09",
    "wgs84_to_gcj02",
]

ArrayLike = npt.ArrayLike
Pair = tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]

_A = 6378245.0  # Krasovsky 1940 semi-major axis used by the GCJ-02 formula (m)
_EE = 0.00669342162296594323  # its first eccentricity squared
_X_PI = np.pi * 3000.0 / 180.0


def _arrays(lon: ArrayLike, lat: ArrayLike) -> Pair:
    x = np.asarray(lon, dtype=np.float64)
    y = np.asarray(lat, dtype=np.float64)
    x, y = np.broadcast_arrays(x, y)
    return x.astype(np.float64, copy=True), y.astype(np.float64, copy=True)


def out_of_china(lon: ArrayLike, lat: ArrayLike) -> npt.NDArray[np.bool_]:
    """True where a point lies outside the rough China bounding box used by the GCJ-02 formula.

    The box is 72.004-137.8347 E, 0.8293-55.8271 N (the public coordtransform convention). Outside it
    no shift is applied. Non-finite coordinates count as outside (they are returned unchanged).
    """
    x, y = _arrays(lon, lat)
    with np.errstate(invalid="ignore"):
        inside = (x >= 72.004) & (x <= 137.8347) & (y >= 0.8293) & (y <= 55.8271)
    return ~inside


def _delta(lon: npt.NDArray[np.float64], lat: npt.NDArray[np.float64]) -> Pair:
    """GCJ-02 minus WGS84 offset (degrees) at WGS84 position (lon, lat)."""
    x = lon - 105.0
    y = lat - 35.0
    sx = np.sqrt(np.abs(x))
    common = (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sx + common
    dlat += (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    dlat += (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sx + common
    dlon += (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    dlon += (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    radlat = lat / 180.0 * np.pi
    magic = 1.0 - _EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrtmagic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * np.cos(radlat) * np.pi)
    return dlon, dlat


def wgs84_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> Pair:
    """WGS84 -> GCJ-02 (the forward AMap/Tencent offset). Points outside China are unchanged."""
    x, y = _arrays(lon, lat)
    inside = ~out_of_china(x, y)
    if inside.any():
        dlon, dlat = _delta(x[inside], y[inside])
        x[inside] += dlon
        y[inside] += dlat
    return x, y


def gcj02_to_wgs84(lon: ArrayLike, lat: ArrayLike, *, iterations: int = 6) -> Pair:
    """GCJ-02 -> WGS84 by fixed-point iteration of the forward formula.

    Parameters
    ----------
    lon, lat
        GCJ-02 coordinates (degrees).
    iterations
        Number of refinements. 1 equals the common one-step inverse (up to ~5 m error); 3 gives < 0.5 m;
        the default 6 gives millimetres.
    """
    gx, gy = _arrays(lon, lat)
    inside = ~out_of_china(gx, gy)
    x, y = gx.copy(), gy.copy()
    if inside.any():
        tx, ty = gx[inside], gy[inside]
        wx, wy = tx.copy(), ty.copy()
        for _ in range(max(1, int(iterations))):
            dlon, dlat = _delta(wx, wy)
            wx = wx - ((wx + dlon) - tx)
            wy = wy - ((wy + dlat) - ty)
        x[inside] = wx
        y[inside] = wy
    return x, y


def gcj02_to_bd09(lon: ArrayLike, lat: ArrayLike) -> Pair:
    """GCJ-02 -> BD-09 (Baidu). Applied everywhere (Baidu's own formula has no China test)."""
    x, y = _arrays(lon, lat)
    z = np.sqrt(x * x + y * y) + 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def bd09_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> Pair:
    """BD-09 (Baidu) -> GCJ-02 (the usual closed-form inverse, error ~1e-6 degrees)."""
    x, y = _arrays(lon, lat)
    x = x - 0.0065
    y = y - 0.006
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta), z * np.sin(theta)


def bd09_to_wgs84(lon: ArrayLike, lat: ArrayLike, *, iterations: int = 6) -> Pair:
    """BD-09 -> WGS84 (via GCJ-02 with the iterative inverse). Outside China only BD->GCJ applies."""
    gx, gy = bd09_to_gcj02(lon, lat)
    return gcj02_to_wgs84(gx, gy, iterations=iterations)


def wgs84_to_bd09(lon: ArrayLike, lat: ArrayLike) -> Pair:
    """WGS84 -> BD-09 (via GCJ-02); used to build test data and Baidu basemap overlays."""
    gx, gy = wgs84_to_gcj02(lon, lat)
    return gcj02_to_bd09(gx, gy)


def utm_crs_for(lon: float, lat: float) -> str:
    """The UTM zone CRS of a lon/lat point: ``EPSG:326xx`` (north) or ``EPSG:327xx`` (south)."""
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise ValueError(f"utm_crs_for: ({lon}, {lat}) is not lon/lat in degrees")
    zone = min(int((lon + 180) // 6) + 1, 60)
    return f"EPSG:{(32600 if lat >= 0 else 32700) + zone}"


def require_projected(crs: Any, *, what: str, fix: str = "region.metric_crs") -> CRS:
    """THE projected-CRS check: ``crs`` (anything pyproj reads) as a :class:`pyproj.CRS`, or one
    :class:`~coverage.errors.InputError` naming ``what`` carried it, the value and the fix.

    Every stage that measures in metres (network, population, indicators, gaps, maps) calls this
    instead of testing ``is_projected`` itself.
    """
    from pyproj.exceptions import CRSError

    from coverage.errors import InputError

    try:
        out = CRS.from_user_input(crs)
    except CRSError as exc:
        raise InputError(f"{what}: CRS {crs!r} is not a CRS pyproj understands ({exc}); set {fix} "
                         f"to a projected CRS in metres, e.g. 'EPSG:4545' or 'auto'") from None
    if not out.is_projected:
        raise InputError(f"{what}: CRS {out.to_string()!r} is geographic (degrees); a projected CRS in "
                         f"metres is needed. Set {fix} (e.g. 'EPSG:4545' CGCS2000 GK 108E, or 'auto' for the "
                         f"UTM zone) or project the data first.")
    return out
