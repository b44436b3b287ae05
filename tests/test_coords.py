"""WGS84 / GCJ-02 / BD-09 conversions against published reference pairs, plus round trips."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coverage.coords import (
    bd09_to_gcj02,
    bd09_to_wgs84,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    out_of_china,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)

# Reference pairs published with the widely used coordtransform implementations (Tiananmen point).
LON, LAT = 116.404, 39.915


def _metres(dlon: np.ndarray, dlat: np.ndarray, lat: float) -> np.ndarray:
    return np.hypot(np.asarray(dlon) * 111_320 * np.cos(np.radians(lat)), np.asarray(dlat) * 110_574)


def test_wgs84_to_gcj02_reference_pair() -> None:
    x, y = wgs84_to_gcj02(LON, LAT)
    assert float(x) == pytest.approx(116.41024449916938, abs=1e-12)
    assert float(y) == pytest.approx(39.91640428150164, abs=1e-12)


def test_bd09_reference_pairs() -> None:
    x, y = bd09_to_gcj02(LON, LAT)
    assert (float(x), float(y)) == pytest.approx((116.39762729119315, 39.90865673957631), abs=1e-12)
    x, y = gcj02_to_bd09(LON, LAT)
    assert (float(x), float(y)) == pytest.approx((116.41036949371029, 39.92133699351021), abs=1e-12)
    x, y = wgs84_to_bd09(LON, LAT)
    assert (float(x), float(y)) == pytest.approx((116.41662724378733, 39.922699552216216), abs=1e-12)
    # the published one-step bd09->wgs84 value is within ~2 m of our iterative answer
    x, y = bd09_to_wgs84(LON, LAT)
    assert _metres(x - 116.3913836995125, y - 39.907253214522164, LAT) < 2.0


def test_gcj02_inverse_one_step_matches_published_and_iteration_is_better() -> None:
    x1, y1 = gcj02_to_wgs84(LON, LAT, iterations=1)
    assert (float(x1), float(y1)) == pytest.approx((116.39775550083061, 39.91359571849836), abs=1e-12)
    # forward of the iterated inverse lands back on the GCJ-02 input to < 1 mm
    xw, yw = gcj02_to_wgs84(LON, LAT)
    gx, gy = wgs84_to_gcj02(xw, yw)
    assert _metres(gx - LON, gy - LAT, LAT) < 1e-3


def test_inverse_accuracy_across_china() -> None:
    rng = np.random.default_rng(0)
    lon = rng.uniform(75, 134, 2000)
    lat = rng.uniform(18, 53, 2000)
    gx, gy = wgs84_to_gcj02(lon, lat)
    shift = _metres(gx - lon, gy - lat, 35.0)
    assert shift.min() > 1.0 and shift.max() < 1500.0  # it really shifts, by up to ~hundreds of m
    e1 = _metres(*(np.subtract(gcj02_to_wgs84(gx, gy, iterations=1), (lon, lat))), 35.0)
    e3 = _metres(*(np.subtract(gcj02_to_wgs84(gx, gy, iterations=3), (lon, lat))), 35.0)
    e6 = _metres(*(np.subtract(gcj02_to_wgs84(gx, gy), (lon, lat))), 35.0)
    assert e1.max() > 0.5  # the one-step inverse is metre-level somewhere
    assert e1.max() < 6.0  # measured: median ~0.5 m, max ~4.8 m over China
    assert e3.max() < 0.5
    assert e6.max() < 0.001


def test_out_of_china_unshifted_and_vectorised() -> None:
    lon = np.array([9.52, 116.404, -0.12, np.nan])
    lat = np.array([47.14, 39.915, 51.5, 30.0])
    assert out_of_china(lon, lat).tolist() == [True, False, True, True]
    x, y = wgs84_to_gcj02(lon, lat)
    assert x[0] == 9.52 and y[0] == 47.14 and x[2] == -0.12
    assert x[1] != 116.404
    x, y = gcj02_to_wgs84(lon, lat)
    assert x[0] == 9.52 and np.isnan(x[3])
    assert x.shape == (4,)


def test_inputs_not_mutated() -> None:
    lon = np.array([116.4, 104.06])
    lat = np.array([39.9, 30.66])
    wgs84_to_gcj02(lon, lat)
    gcj02_to_wgs84(lon, lat)
    assert lon.tolist() == [116.4, 104.06] and lat.tolist() == [39.9, 30.66]


@settings(max_examples=200, deadline=None)
@given(st.floats(73.0, 135.0), st.floats(4.0, 53.0))
def test_round_trips(lon: float, lat: float) -> None:
    x, y = gcj02_to_wgs84(*wgs84_to_gcj02(lon, lat))
    assert _metres(x - lon, y - lat, lat) < 0.01
    x, y = bd09_to_wgs84(*wgs84_to_bd09(lon, lat))
    assert _metres(x - lon, y - lat, lat) < 0.5


def test_utm_crs_for() -> None:
    from coverage.coords import utm_crs_for

    assert utm_crs_for(108.01, 32.0) == "EPSG:32649"
    assert utm_crs_for(107.99, 32.0) == "EPSG:32648"
    assert utm_crs_for(43.3, -11.7) == "EPSG:32738"  # Comoros
    assert utm_crs_for(180.0, 0.0) == "EPSG:32660"
    with pytest.raises(ValueError, match=r"not lon/lat in degrees"):
        utm_crs_for(500000.0, 3500000.0)
