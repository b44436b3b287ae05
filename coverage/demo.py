"""The built-in demo region: a fictional ~15 x 15 km county (示范县) around 108.0E, 32.0N.

:func:`build_demo` writes every input that ``layers/demo/coverage.toml`` expects, byte-identical on
every run: 街道/乡镇 and 社区/村 polygons, an OSM XML road network with a river crossed only on a
few bridges, three WorldPop-like population rasters, and three facility files in the formats
municipalities actually send (a GBK shapefile without ``.cpg`` in CGCS2000, a GBK CSV with GCJ-02
coordinates copied from AMap, an XLSX in WGS84).

Every file is written by hand (or repacked) so that no timestamp, library version or compression
library leaks into the bytes: the .dbf header date is fixed, the GeoTIFFs are uncompressed and
written by a tiny TIFF writer, the XLSX zip entries are stored with a fixed time and fixed core
properties. The only randomness is a fixed-seed :class:`numpy.random.Generator`.

The layout (local kilometres, origin at the county's south-west corner; the river 清江 flows
west to east at y ~ 8 km)::

    y=15 +---------------------+---------+
         |  白水镇 (T1, north)  | 云岭乡  |   云岭乡: mountain 乡, reached only over the
    y=11 |      +------+-------+  (T3)   |   东渡桥 (x=14.3) and an 11 km 盘山公路
         |  T1  | 滨河 | 新城  |         |
    ~8   |~~~~~~|~~~~~~|~~~~~~~|~~~~~~~~~|   river (清江)
         |      |  老城街道    | 金河镇  |
    y=4  |      +--------------+  (T2)   |
         |      |    金河镇 (T2)          |
    y=0  +------+------------------------+
         x=0    x=5   x=7.5   x=10      x=15

:data:`PLANTED_GAPS` describes the deliberate service gaps that later stages must find, and
:data:`EXPECTED_FAILURES` the exact set of failed standards a pipeline run reports: nothing else fails.
People live only in settlements (hard-edged urban blocks, compact town seats and village clusters along
their roads); every populated cell is within a 15-minute walk (1.0 m/s, access leg included) of an
elderly facility and of a childcare facility, except the planted river cluster's elderly.
"""

from __future__ import annotations

import io
import itertools
import json
import logging
import math
import re
import struct
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon, box
from shapely.geometry.polygon import orient

from coverage.coords import wgs84_to_gcj02

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# Frame: local kilometres <-> lon/lat (an exact affine map, so results do not depend on pyproj)
# --------------------------------------------------------------------------------------------

LON0 = 107.935  #: longitude of the county's west edge (x = 0 km); centre ~108.014E -> UTM 49N
LAT0 = 31.932  #: latitude of the county's south edge (y = 0 km)
M_PER_DEG_LON = 94_493.0  #: metres per degree of longitude at 32N (GRS80/WGS84 ellipsoid)
M_PER_DEG_LAT = 110_887.0  #: metres per degree of latitude at 32N
SIZE_KM = 15.0  #: the county is SIZE_KM x SIZE_KM

#: WorldPop's 3 arc-second grid (persons per cell), as its GeoTIFFs state it
CELL_DEG = 0.000833333333
NODATA = -99999.0
MARGIN_CELLS = 4  #: raster cells around the county; the outermost ring is nodata, the rest 0
SEED = 20240101
_FIXED_DATE = (2024, 1, 1, 0, 0, 0)

UNIT_PREFIX = "519901"  # fictional county code (not a real 行政区划代码)


def _lonlat(x_km: np.ndarray | float, y_km: np.ndarray | float) -> tuple:
    """Local kilometres -> (lon, lat) degrees (WGS84 / CGCS2000)."""
    return LON0 + np.asarray(x_km) * 1000.0 / M_PER_DEG_LON, LAT0 + np.asarray(y_km) * 1000.0 / M_PER_DEG_LAT


def _local_km(lon: np.ndarray | float, lat: np.ndarray | float) -> tuple:
    """(lon, lat) degrees -> local kilometres."""
    return ((np.asarray(lon) - LON0) * M_PER_DEG_LON / 1000.0,
            (np.asarray(lat) - LAT0) * M_PER_DEG_LAT / 1000.0)


def river_y_km(x_km: np.ndarray | float) -> np.ndarray | float:
    """Centre line of the river 清江 (local km): a gentle meander around y = 8 km."""
    return 8.0 + 0.35 * np.sin(2.0 * np.pi * np.asarray(x_km) / 6.0)


def _r(x: float) -> float:
    return float(river_y_km(round(x, 6)))


# --------------------------------------------------------------------------------------------
# Administrative units and communities
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Unit:
    code: str
    name: str
    type: str
    cls: str
    area_type: str
    key: str  # S1 / S2 / S3 / T1 / T2 / T3


_UNITS: tuple[_Unit, ...] = (
    _Unit(UNIT_PREFIX + "001000", "老城街道", "街道", "城区", "old", "S1"),
    _Unit(UNIT_PREFIX + "002000", "滨河街道", "街道", "城区", "mixed", "S3"),
    _Unit(UNIT_PREFIX + "003000", "新城街道", "街道", "城区", "new", "S2"),
    _Unit(UNIT_PREFIX + "101000", "白水镇", "镇", "郊区", "old", "T1"),
    _Unit(UNIT_PREFIX + "102000", "金河镇", "镇", "郊区", "new", "T2"),
    _Unit(UNIT_PREFIX + "201000", "云岭乡", "乡", "郊区", "old", "T3"),
)
_UNIT_BY_KEY = {u.key: u for u in _UNITS}

_RIVER = -1.0  # a community box edge that follows the river

#: communities: (unit key, local number, name, box x0, y0, x1, y1 in km). Boxes tile each unit's
#: bounding box, so intersecting them with the unit tiles the unit.
_COMMUNITIES: tuple[tuple[str, int, str, float, float, float, float], ...] = (
    ("S1", 1, "文庙社区", 5.0, 4.0, 7.5, 6.0),
    ("S1", 2, "南门社区", 7.5, 4.0, 10.0, 6.0),
    ("S1", 3, "府前社区", 5.0, 6.0, 7.5, 9.0),
    ("S1", 4, "东街社区", 7.5, 6.0, 10.0, 9.0),
    ("S3", 1, "滨河社区", 5.0, 7.0, 7.5, 9.3),
    ("S3", 2, "北苑社区", 5.0, 9.3, 6.25, 11.0),
    ("S3", 3, "锦华社区", 6.25, 9.3, 7.5, 11.0),
    ("S2", 1, "滨江社区", 7.5, 7.0, 10.0, 9.4),
    ("S2", 2, "科创社区", 7.5, 9.4, 8.75, 11.0),
    ("S2", 3, "云锦社区", 8.75, 9.4, 10.0, 11.0),
    ("T1", 201, "石桥村", 0.0, 0.0, 5.0, 4.0),
    ("T1", 202, "白水村", 0.0, 4.0, 5.0, _RIVER),
    ("T1", 203, "渡口村", 0.0, _RIVER, 1.6, 11.5),
    ("T1", 204, "河北村", 1.6, _RIVER, 5.0, 11.5),
    ("T1", 205, "松林村", 0.0, 11.5, 5.0, 15.0),
    ("T1", 206, "柏树村", 5.0, 11.0, 7.5, 15.0),
    ("T1", 207, "桃园村", 7.5, 11.0, 10.0, 15.0),
    ("T2", 201, "新田村", 5.0, 0.0, 7.5, 4.0),
    ("T2", 202, "杨柳村", 7.5, 0.0, 10.0, 4.0),
    ("T2", 203, "高桥村", 10.0, 0.0, 12.5, 3.0),
    ("T2", 204, "龙泉村", 12.5, 0.0, 15.0, 3.0),
    ("T2", 205, "金河村", 10.0, 3.0, 15.0, 5.0),
    ("T2", 206, "河湾村", 10.0, 5.0, 12.5, 9.0),
    ("T2", 207, "渡桥村", 12.5, 5.0, 15.0, 9.0),
    ("T3", 201, "云峰村", 10.0, 7.0, 12.5, 11.5),
    ("T3", 202, "盘龙村", 12.5, 7.0, 15.0, 11.5),
    ("T3", 203, "石门村", 10.0, 11.5, 12.5, 15.0),
    ("T3", 204, "高山村", 12.5, 11.5, 15.0, 15.0),
)


def _community_code(unit_key: str, num: int) -> str:
    return _UNIT_BY_KEY[unit_key].code[:9] + f"{num:03d}"


def _river_pts(x0: float, x1: float) -> list[tuple[float, float]]:
    """River boundary vertices from x0 to x1 (either direction) every 0.1 km."""
    n = round(abs(x1 - x0) / 0.1)
    xs = [round(x0 + (x1 - x0) * k / n, 6) for k in range(n + 1)]
    return [(x, _r(x)) for x in xs]


def _unit_polygons_km() -> dict[str, Polygon]:
    """Unit polygons in local km, sharing exact vertices along every common edge."""
    r5, r75, r10, r15 = _r(5.0), _r(7.5), _r(10.0), _r(15.0)
    s1 = Polygon([(5.0, 4.0), (10.0, 4.0), (10.0, r10), *_river_pts(10.0, 5.0)[1:]])
    s3 = Polygon([*_river_pts(5.0, 7.5), (7.5, 11.0), (5.0, 11.0)])
    s2 = Polygon([*_river_pts(7.5, 10.0), (10.0, 11.0), (7.5, 11.0)])
    t3 = Polygon([*_river_pts(10.0, 15.0), (15.0, 15.0), (10.0, 15.0), (10.0, 11.0)])
    t2 = Polygon([(5.0, 0.0), (15.0, 0.0), (15.0, r15), *_river_pts(15.0, 10.0)[1:], (10.0, 4.0), (5.0, 4.0)])
    t1 = Polygon([(0.0, 0.0), (5.0, 0.0), (5.0, 4.0), (5.0, r5), (5.0, 11.0), (7.5, 11.0), (10.0, 11.0),
                  (10.0, 15.0), (0.0, 15.0)])
    del r75
    return {"S1": s1, "S2": s2, "S3": s3, "T1": t1, "T2": t2, "T3": t3}


def unit_key_at(x_km: np.ndarray, y_km: np.ndarray) -> np.ndarray:
    """Unit key (S1..T3) of local-km points (vectorised; points outside the county get the nearest)."""
    x = np.clip(np.asarray(x_km, dtype=float), 0.0, SIZE_KM)
    y = np.clip(np.asarray(y_km, dtype=float), 0.0, SIZE_KM)
    r = river_y_km(x)
    out = np.full(x.shape, "T1", dtype="<U2")
    core_x = (x >= 5.0) & (x < 10.0)
    out[core_x & (y < 4.0)] = "T2"
    out[core_x & (y >= 4.0) & (y < r)] = "S1"
    out[core_x & (y >= r) & (y < 11.0) & (x < 7.5)] = "S3"
    out[core_x & (y >= r) & (y < 11.0) & (x >= 7.5)] = "S2"
    east = x >= 10.0
    out[east & (y < r)] = "T2"
    out[east & (y >= r)] = "T3"
    return out


# --------------------------------------------------------------------------------------------
# Road network (OSM ways in local km; nodes are shared by identical rounded coordinates)
# --------------------------------------------------------------------------------------------


def _key(p: tuple[float, float]) -> tuple[int, int]:
    """Node identity: coordinates rounded to 0.1 m."""
    return (round(p[0] * 10000.0), round(p[1] * 10000.0))


def _seg(p0: tuple[float, float], p1: tuple[float, float], step: float = 0.05) -> list[tuple[float, float]]:
    n = max(1, math.ceil(math.hypot(p1[0] - p0[0], p1[1] - p0[1]) / step - 1e-9))
    return [(p0[0] + (p1[0] - p0[0]) * k / n, p0[1] + (p1[1] - p0[1]) * k / n) for k in range(n + 1)]


def _path(points: Sequence[tuple[float, float]], step: float = 0.05) -> list[tuple[float, float]]:
    """Polyline through ``points`` with a vertex at least every ``step`` km."""
    out: list[tuple[float, float]] = [points[0]]
    for a, b in itertools.pairwise(points):
        out.extend(_seg(a, b, step)[1:])
    return out


@dataclass
class _Ways:
    ways: list[tuple[list[tuple[float, float]], dict[str, str]]] = field(default_factory=list)

    def add(self, pts: Sequence[tuple[float, float]], **tags: str) -> None:
        pts = [(round(x, 6), round(y, 6)) for x, y in pts]
        dedup = [pts[0]]
        for p in pts[1:]:
            if _key(p) != _key(dedup[-1]):
                dedup.append(p)
        if len(dedup) >= 2:
            self.ways.append((dedup, {k: v for k, v in tags.items() if v != ""}))

    def line(self, pts: Sequence[tuple[float, float]], **tags: str) -> None:
        self.add(_path(pts), **tags)


def _lattice(a: float, b: float, step: float = 0.05) -> list[float]:
    """Multiples of ``step`` from a to b inclusive (a, b themselves multiples of step)."""
    n = round((b - a) / step)
    return [round(a + step * k, 6) for k in range(n + 1)]


_NS_CORE = {5.0: ("secondary", "西环路"), 5.75: ("tertiary", "文化路"), 7.5: ("secondary", "中山路"),
            8.75: ("tertiary", "新华路"), 10.0: ("secondary", "东环路")}
_EW_CORE = {4.0: ("secondary", "南环路"), 5.5: ("primary", "人民大道"), 7.0: ("secondary", "解放路"),
            9.5: ("tertiary", "锦华路"), 11.0: ("secondary", "北环路")}
_CORE_BRIDGES = {5.75: "文化桥", 8.75: "新华桥"}
_ONEWAY_NS = {6.5: "north", 6.75: "south"}  # old-town one-way pair (south bank only)
_CN_NUM = "一二三四五六七八九十"


def _cn(n: int) -> str:
    if n <= 10:
        return _CN_NUM[n - 1]
    return ("" if n < 20 else _CN_NUM[n // 10 - 1]) + "十" + (_CN_NUM[n % 10 - 1] if n % 10 else "")


def _core_roads(w: _Ways) -> None:
    """Urban core: a 250 m street grid cut by the river, riverside roads, two bridges, footways."""
    xs = [round(5.0 + 0.25 * i, 6) for i in range(21)]
    ys = [round(4.0 + 0.25 * j, 6) for j in range(29)]
    for i, x in enumerate(xs):
        hw, name = _NS_CORE.get(x, ("residential", f"经{_cn(i + 1)}街"))
        r = _r(x)
        south = [(x, y) for y in _lattice(4.0, 11.0) if y <= r - 0.11] + [(x, r - 0.08)]
        north = [(x, r + 0.08)] + [(x, y) for y in _lattice(4.0, 11.0) if y >= r + 0.11]
        tags = {"highway": hw, "name": name}
        if x in _ONEWAY_NS:
            w.add(south if _ONEWAY_NS[x] == "north" else south[::-1], oneway="yes", **tags)
        else:
            w.add(south, **tags)
        if x in _CORE_BRIDGES:
            w.add(_seg((x, r - 0.08), (x, r + 0.08), 0.05), bridge="yes", layer="1", highway=hw,
                  name=_CORE_BRIDGES[x])
        w.add(north, **tags)
    for j, y in enumerate(ys):
        hw, name = _EW_CORE.get(y, ("residential", f"纬{_cn(j + 1)}街"))
        pts = [x for x in _lattice(5.0, 10.0) if abs(y - _r(x)) >= 0.15]
        run: list[tuple[float, float]] = []
        for x in pts:
            if run and (abs(x - run[-1][0] - 0.05) > 1e-6 or (y > _r(x)) != (y > _r(run[-1][0]))):
                w.add(run, highway=hw, name=name)
                run = []
            run.append((x, y))
        if len(run) >= 2:
            w.add(run, highway=hw, name=name)
    for side, name in ((-0.08, "滨河南路"), (0.08, "滨河北路")):
        w.add([(x, _r(x) + side) for x in _lattice(5.0, 10.0)], highway="tertiary", name=name)
    # footways, steps, a hill path and service roads inside blocks (corners are grid nodes)
    w.line([(6.5, 6.0), (6.625, 6.125), (6.75, 6.25)], highway="footway", name="人民公园步道")
    w.line([(6.5, 6.25), (6.625, 6.125), (6.75, 6.0)], highway="footway", name="人民公园步道")
    w.line([(6.625, 6.125), (6.6, 6.0)], highway="steps")
    w.line([(5.25, 10.5), (5.35, 10.6), (5.5, 10.75)], highway="path", name="凤凰山步道")
    w.line([(9.0, 10.25), (9.125, 10.375), (9.25, 10.5)], highway="footway", name="市民广场")
    w.line([(9.0, 10.5), (9.125, 10.375), (9.25, 10.25)], highway="footway", name="市民广场")
    w.line([(6.0, 4.5), (6.06, 4.56), (6.12, 4.56)], highway="footway")
    w.line([(8.0, 5.25), (8.08, 5.33)], highway="service")
    w.line([(8.0, 10.75), (8.07, 10.82)], highway="service")
    w.line([(9.5, 4.5), (9.56, 4.56)], highway="service", service="parking_aisle")


def _cross(w: _Ways, cx: float, cy: float, *, ew: tuple[float, float] | None = None,
           ns: tuple[float, float] | None = None, name: str, hw: str = "residential") -> None:
    """A village: an east-west and a north-south lane through its centre (lattice points)."""
    if ew is not None:
        w.line([(ew[0], cy), (ew[1], cy)], highway=hw, name=name)
    if ns is not None:
        w.line([(cx, ns[0]), (cx, ns[1])], highway=hw, name=name)


def _town_grid(w: _Ways, xs: Iterable[float], ys: Iterable[float], *, skip_x: float, skip_y: float | None,
               name: str) -> None:
    xs, ys = list(xs), list(ys)
    for x in xs:
        if abs(x - skip_x) > 1e-9:
            w.line([(x, ys[0]), (x, ys[-1])], highway="residential",
                   name=f"{name}{'东' if x > skip_x else '西'}街")
    for y in ys:
        if skip_y is None or abs(y - skip_y) > 1e-9:
            w.line([(xs[0], y), (xs[-1], y)], highway="residential",
                   name=f"{name}{'北' if y > ys[2] else '南'}街")


def _town_roads(w: _Ways) -> None:
    """Town and village roads, the motorway with its interchange, the T3 mountain road."""
    # --- S201 through the county (primary), the T1 county road with its bridge -------------
    w.line([(0.0, 5.5), (5.0, 5.5)], highway="primary", name="S201省道", ref="S201")
    w.line([(10.0, 5.5), (15.0, 5.5)], highway="primary", name="S201省道", ref="S201")
    w.line([(3.0, 0.3), (3.0, 7.85)], highway="secondary", name="X101县道", ref="X101")
    w.line([(3.0, 7.85), (3.0, 8.15)], highway="secondary", name="白水大桥", ref="X101", bridge="yes",
           layer="1")
    w.line([(3.0, 8.15), (3.0, 14.5)], highway="secondary", name="X101县道", ref="X101")
    # --- motorway: two one-way carriageways, bridges over the river and over S201 -----------
    for x, north in ((1.815, True), (1.785, False)):
        cuts = [0.0, 5.4, 5.6, 8.15, 8.5, 15.0]
        for a, b in itertools.pairwise(cuts):
            pts = [(x, y) for y in _lattice(a, b)]
            bridge = {"bridge": "yes", "layer": "1"} if (a, b) in ((5.4, 5.6), (8.15, 8.5)) else {}
            w.add(pts if north else pts[::-1], highway="motorway", name="示范高速", ref="G99", oneway="yes",
                  foot="no", maxspeed="120", **bridge)
    link = {"highway": "motorway_link", "oneway": "yes", "name": "白水互通"}
    w.line([(1.815, 4.8), (2.0, 5.0), (2.2, 5.5)], **link)  # north-bound exit
    w.line([(2.2, 5.5), (2.0, 6.0), (1.815, 6.2)], **link)  # north-bound entry
    w.line([(1.785, 6.2), (1.6, 6.0), (1.4, 5.5)], **link)  # south-bound exit
    w.line([(1.4, 5.5), (1.6, 5.0), (1.785, 4.8)], **link)  # south-bound entry
    # --- T1 白水镇 --------------------------------------------------------------------------
    _town_grid(w, _lattice(2.6, 3.4, 0.2), _lattice(5.1, 5.9, 0.2), skip_x=3.0, skip_y=5.5, name="白水")
    _cross(w, 2.5, 2.0, ew=(2.15, 3.0), ns=(1.65, 2.35), name="石桥村")
    w.line([(2.5, 1.65), (2.5, 0.8)], highway="track", tracktype="grade2")
    _cross(w, 0.75, 9.2, ew=(0.3, 1.2), ns=(8.75, 9.65), name="渡口村")  # cut off: motorway + river
    w.line([(0.3, 9.2), (0.3, 9.6), (0.6, 9.6)], highway="track")
    _cross(w, 2.65, 10.2, ew=(2.3, 3.0), ns=(9.85, 10.55), name="河北村")
    _cross(w, 3.2, 13.0, ew=(2.85, 3.55), ns=(12.65, 13.35), name="松林村")
    w.line([(3.2, 13.35), (3.2, 14.6)], highway="track")
    w.line([(3.0, 14.0), (8.75, 14.0)], highway="unclassified", name="北山乡道")
    w.line([(6.25, 11.0), (6.25, 14.0)], highway="tertiary", name="柏树路")
    w.line([(8.75, 11.0), (8.75, 14.0)], highway="tertiary", name="桃园路")
    _cross(w, 6.25, 13.0, ew=(5.9, 6.6), name="柏树村")
    _cross(w, 8.75, 13.5, ew=(8.4, 9.1), name="桃园村")
    w.line([(9.1, 13.5), (9.4, 13.5), (9.4, 14.4)], highway="track")
    # --- T2 金河镇 --------------------------------------------------------------------------
    w.line([(7.5, 0.3), (7.5, 4.0)], highway="secondary", name="X102县道", ref="X102")
    w.line([(6.0, 1.5), (14.5, 1.5)], highway="tertiary", name="金河路")
    w.line([(12.3, 0.5), (12.3, 5.5)], highway="secondary", name="X103县道", ref="X103")
    _town_grid(w, _lattice(11.9, 12.7, 0.2), _lattice(3.6, 4.4, 0.2), skip_x=12.3, skip_y=None, name="金河")
    _cross(w, 6.5, 1.5, ns=(1.15, 1.85), name="新田村")
    _cross(w, 8.8, 1.5, ns=(1.15, 1.85), name="杨柳村")
    _cross(w, 11.2, 0.5, ew=(10.85, 11.55), ns=(0.15, 1.5), name="高桥村")
    _cross(w, 13.9, 1.5, ns=(1.15, 1.85), name="龙泉村")
    _cross(w, 11.3, 6.6, ew=(10.95, 11.65), ns=(5.5, 6.95), name="河湾村")
    _cross(w, 13.8, 6.6, ew=(13.45, 14.3), ns=(6.25, 6.95), name="渡桥村")
    w.line([(13.9, 1.15), (13.9, 0.6)], highway="track")
    # --- the only way into T3: 东渡桥 then the 11 km 盘山公路 -----------------------------------
    w.line([(14.3, 5.5), (14.3, 8.05)], highway="tertiary", name="X012县道", ref="X012")
    w.line([(14.3, 8.05), (14.3, 8.45)], highway="tertiary", name="东渡桥", ref="X012", bridge="yes",
           layer="1")
    w.line([(14.3, 8.45), (14.3, 8.6), (13.3, 8.85), (14.5, 9.15), (13.3, 9.45), (14.5, 9.75), (13.3, 10.05),
            (14.5, 10.35), (14.0, 10.8), (13.0, 11.2), (12.3, 11.6), (11.8, 12.2), (11.8, 12.8)],
           highway="tertiary", name="云岭盘山公路", ref="X012")
    # --- T3 云岭乡 --------------------------------------------------------------------------
    _cross(w, 14.0, 10.8, ew=(13.65, 14.35), ns=(10.45, 11.15), name="盘龙村")
    _town_grid(w, [11.4, 11.6, 11.8, 12.0, 12.2], _lattice(12.4, 13.2, 0.2), skip_x=11.8, skip_y=None,
               name="石门")
    w.line([(11.8, 12.8), (11.8, 13.2)], highway="residential", name="石门街")
    w.line([(11.6, 12.4), (11.6, 10.75)], highway="track", name="云峰机耕道")
    _cross(w, 11.6, 10.4, ew=(11.25, 11.95), ns=(10.05, 10.75), name="云峰村", hw="unclassified")
    w.line([(12.2, 12.8), (13.6, 12.8), (13.6, 13.45)], highway="track", name="高山机耕道")
    _cross(w, 13.6, 13.8, ew=(13.25, 13.95), ns=(13.45, 14.15), name="高山村", hw="unclassified")


def _river_way() -> list[tuple[float, float]]:
    """River centre line, sampled off the 50 m road lattice so it never shares a road node."""
    return [(round(-0.167 + 0.1 * k, 6), _r(-0.167 + 0.1 * k)) for k in range(155)]


def _network_km() -> list[tuple[list[tuple[float, float]], dict[str, str]]]:
    w = _Ways()
    _core_roads(w)
    _town_roads(w)
    w.add(_river_way(), waterway="river", name="清江")
    return w.ways


# --------------------------------------------------------------------------------------------
# Facilities (local km positions, placed 30 m off a street)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Fac:
    name: str
    type: str
    x: float
    y: float
    address: str
    beds: str = ""  # text field: dirty values such as "120张"
    nursing_beds: int | None = None
    slots: int | None = None
    floor_area: str = ""  # text field: "1,800"
    land_area: float | None = None


_NAMED_ELDERLY_CHILDCARE: tuple[_Fac, ...] = (
    # 老城街道 (old): complex >= 1500 m2, an institution, one day-care per community
    _Fac("老城街道社区养老服务综合体", "社区养老服务综合体", 6.28, 5.03, "老城街道文庙社区人民大道南侧", "30",
         18, 40, "1,800", 2200.0),
    _Fac("示范县社会福利院", "养老院", 8.03, 5.28, "老城街道南门社区福利巷8号", "120张", 70, None, "2600",
         5200.0),
    _Fac("文庙社区日间照料中心", "日间照料中心", 5.53, 4.78, "老城街道文庙社区纬四街12号", "", None, None,
         "820"),
    _Fac("南门社区日间照料中心", "日间照料中心", 9.03, 4.78, "老城街道南门社区纬四街66号", "", None, None,
         "600"),
    _Fac("府前社区日间照料中心", "日间照料中心", 7.03, 7.78, "老城街道府前社区滨河南路21号", "", None, None,
         "900"),
    _Fac("东街社区日间照料中心", "日间照料中心", 8.28, 7.03, "老城街道东街社区解放路88号", "", None, None,
         "780"),
    _Fac("府前嵌入式社区养老院", "嵌入式社区养老院", 5.78, 6.53, "老城街道府前社区文化路35号", "40", 28, None,
         "1200"),
    _Fac("东环嵌入式社区养老院", "嵌入式社区养老院", 9.28, 6.28, "老城街道东街社区纬十街101号", "30", 20,
         None, "900"),
    _Fac("府前街嵌入式社区养老院", "嵌入式社区养老院", 6.78, 7.03, "老城街道府前社区解放路47号", "36", 24,
         None, "1,050"),
    _Fac("西城嵌入式社区养老院", "嵌入式社区养老院", 5.28, 7.53, "老城街道府前社区纬十五街2号", "25", 15,
         None, "800"),
    _Fac("南门嵌入式社区养老院", "嵌入式社区养老院", 9.78, 4.28, "老城街道南门社区东环路9号", "20", 12, None,
         "700"),
    _Fac("文庙颐养院", "养老院", 6.78, 4.53, "老城街道文庙社区纬三街30号", "80张", 50, None, "1,300"),
    _Fac("人民路嵌入式社区养老院", "嵌入式社区养老院", 7.03, 5.78, "老城街道文庙社区经九街21号", "30", 18,
         None, "950"),
    _Fac("康宁养老院", "养老机构", 5.28, 5.78, "老城街道文庙社区经二街77号", "100张", 45, None, "2,100"),
    _Fac("东街社区老年日间照料站", "日间照料中心", 9.28, 7.53, "老城街道东街社区纬十五街96号", "", None, None,
         "450"),
    _Fac("南门福寿养老院", "养老院", 7.78, 4.28, "老城街道南门社区纬二街5号", "60", 30, None, "1,000"),
    # 滨河街道 (mixed): NO 社区养老服务综合体 (planted gap 1)
    _Fac("滨河社区日间照料中心", "日间照料中心", 5.28, 9.03, "滨河街道滨河社区经二街5号", "", None, None,
         "760"),
    _Fac("北苑社区日间照料中心", "日间照料中心", 5.78, 10.28, "滨河街道北苑社区经三街18号", "", None, None,
         "850"),
    _Fac("锦华社区日间照料中心", "日间照料中心", 7.03, 10.53, "滨河街道锦华社区纬二十七街9号", "", None, None,
         "800"),
    _Fac("滨河嵌入式社区养老院", "嵌入式社区养老院", 5.53, 8.53, "滨河街道滨河社区经三街8号", "20", 10, None,
         "680"),
    _Fac("锦华嵌入式社区养老院", "嵌入式社区养老院", 6.53, 9.78, "滨河街道锦华社区经七街31号", "30", 16, None,
         "900"),
    _Fac("北苑嵌入式社区养老院", "嵌入式社区养老院", 6.03, 10.78, "滨河街道北苑社区北环路16号", "50", 32,
         None, "1,600"),
    # 新城街道 (new): complex and institution >= 3000 m2, an old-young complex
    _Fac("新城街道社区养老服务综合体", "社区养老服务综合体", 9.28, 10.03, "新城街道云锦社区锦华路与新华路口",
         "60", 40, None, "3,200", 4000.0),
    _Fac("新城康养中心", "养老机构", 8.03, 10.78, "新城街道科创社区北环路200号", "200", 130, None, "3500",
         6000.0),
    _Fac("滨江嵌入式社区养老院", "嵌入式社区养老院", 9.28, 8.53, "新城街道滨江社区纬十九街12号", "30", 20,
         None, "1,100"),
    _Fac("滨江社区日间照料中心", "日间照料中心", 9.28, 9.03, "新城街道滨江社区经十八街3号", "", None, None,
         "900"),
    _Fac("科创社区日间照料中心", "日间照料中心", 8.03, 10.28, "新城街道科创社区经十三街27号", "", None, None,
         "780"),
    _Fac("云锦社区日间照料中心", "日间照料中心", 9.53, 10.53, "新城街道云锦社区纬二十七街50号", "", None,
         None, "760"),
    _Fac("新城老幼复合型社区综合体", "老幼复合型社区综合体", 8.28, 9.78, "新城街道科创社区锦华路120号", "20",
         10, 80, "1500"),
    _Fac("东街老幼复合型社区综合体", "老幼复合型社区综合体", 8.03, 6.53, "老城街道东街社区纬十一街18号", "20",
         12, 60, "1,800"),
    # the one 托育点 on the north bank by the river cluster (its elderly have no facility within 15 min)
    _Fac("滨河托育点", "托育点", 7.03, 8.53, "滨河街道滨河社区滨河北路18号", "", None, 20, "260"),
    # 白水镇
    _Fac("白水镇区域性养老服务中心", "乡镇区域性养老服务中心", 3.03, 5.78, "白水镇白水村白水北街1号", "80",
         48, None, "2000", 3000.0),
    _Fac("白水镇敬老院", "敬老院", 3.28, 5.28, "白水镇白水村白水南街7号", "60张", 33, None, "1500"),
    _Fac("白水镇社区养老服务综合体", "社区养老服务综合体", 2.78, 5.53, "白水镇白水村S201省道旁", "20", 12,
         None, "1000"),
    _Fac("石桥村互助养老服务点", "村级互助养老服务点", 2.53, 2.03, "白水镇石桥村", "", None, None, "120"),
    _Fac("渡口村互助养老服务点", "村级互助养老服务点", 0.78, 9.23, "白水镇渡口村", "", None, None, "80"),
    _Fac("河北村互助养老服务点", "村级互助养老服务点", 2.68, 10.23, "白水镇河北村", "", None, None, "100"),
    _Fac("松林村互助养老服务点", "村级互助养老服务点", 3.23, 13.03, "白水镇松林村", "", None, None, "90"),
    _Fac("柏树村互助养老服务点", "村级互助养老服务点", 6.28, 13.03, "白水镇柏树村", "", None, None, "110"),
    _Fac("桃园村互助养老服务点", "村级互助养老服务点", 8.78, 13.53, "白水镇桃园村", "", None, None, "100"),
    # 金河镇
    _Fac("金河镇区域性养老服务中心", "乡镇区域性养老服务中心", 12.33, 4.03, "金河镇金河村X103县道旁", "60",
         36, None, "1800", 2800.0),
    _Fac("金河镇敬老院", "敬老院", 12.53, 4.23, "金河镇金河村金河东街9号", "40", 22, None, "1,100"),
    _Fac("新田村互助养老服务点", "村级互助养老服务点", 6.53, 1.53, "金河镇新田村", "", None, None, "100"),
    _Fac("高桥村互助养老服务点", "村级互助养老服务点", 11.23, 0.53, "金河镇高桥村", "", None, None, "90"),
    _Fac("河湾村互助养老服务点", "村级互助养老服务点", 11.33, 6.63, "金河镇河湾村", "", None, None, "120"),
    _Fac("渡桥村互助养老服务点", "村级互助养老服务点", 13.83, 6.63, "金河镇渡桥村", "", None, None, "80"),
    # 云岭乡
    _Fac("云岭乡区域性养老服务中心", "乡镇区域性养老服务中心", 11.83, 12.83, "云岭乡石门村石门街2号", "40",
         24, None, "1200", 1800.0),
    _Fac("盘龙村互助养老服务点", "村级互助养老服务点", 14.03, 10.83, "云岭乡盘龙村", "", None, None, "80"),
    _Fac("高山村互助养老服务点", "村级互助养老服务点", 13.63, 13.83, "云岭乡高山村", "", None, None, "60"),
    _Fac("云峰村互助养老服务点", "村级互助养老服务点", 11.63, 10.43, "云岭乡云峰村", "", None, None, "70"),
    _Fac("杨柳村互助养老服务点", "村级互助养老服务点", 8.83, 1.53, "金河镇杨柳村", "", None, None, "90"),
    _Fac("龙泉村互助养老服务点", "村级互助养老服务点", 13.93, 1.53, "金河镇龙泉村", "", None, None, "80"),
    # village childcare: a 托育点 (or the village kindergarten's 托班) across the lane from the
    # mutual-aid point, so every infant of the village is within a 15-minute walk
    _Fac("石桥村托育点", "托育点", 2.47, 2.03, "白水镇石桥村", "", None, 15, "120"),
    _Fac("渡口村托育点", "托育点", 0.72, 9.23, "白水镇渡口村", "", None, 10, "80"),
    _Fac("河北村幼儿园托班", "幼儿园托班", 2.62, 10.23, "白水镇河北村", "", None, 15, "400"),
    _Fac("松林村托育点", "托育点", 3.17, 13.03, "白水镇松林村", "", None, 15, "100"),
    _Fac("柏树村托育点", "托育点", 6.22, 13.03, "白水镇柏树村", "", None, 15, "100"),
    _Fac("桃园村托育点", "托育点", 8.72, 13.53, "白水镇桃园村", "", None, 15, "100"),
    _Fac("新田村托育点", "托育点", 6.47, 1.53, "金河镇新田村", "", None, 25, "150"),
    _Fac("杨柳村幼儿园托班", "幼儿园托班", 8.77, 1.53, "金河镇杨柳村", "", None, 25, "500"),
    _Fac("高桥村托育点", "托育点", 11.17, 0.53, "金河镇高桥村", "", None, 25, "150"),
    _Fac("龙泉村托育点", "托育点", 13.87, 1.53, "金河镇龙泉村", "", None, 25, "150"),
    _Fac("河湾村托育点", "托育点", 11.27, 6.63, "金河镇河湾村", "", None, 25, "150"),
    _Fac("渡桥村托育点", "托育点", 13.77, 6.63, "金河镇渡桥村", "", None, 25, "150"),
    _Fac("云峰村托育点", "托育点", 11.57, 10.43, "云岭乡云峰村", "", None, 15, "90"),
    _Fac("盘龙村托育点", "托育点", 13.97, 10.83, "云岭乡盘龙村", "", None, 15, "90"),
    _Fac("高山村托育点", "托育点", 13.57, 13.83, "云岭乡高山村", "", None, 15, "90"),
    _Fac("云岭乡中心幼儿园托班", "幼儿园托班", 11.73, 12.83, "云岭乡石门村石门街8号", "", None, 30, "900"),
    # childcare
    _Fac("小太阳托育中心", "托育机构", 6.53, 5.53, "老城街道文庙社区人民大道58号", "", None, 200, "1,400"),
    _Fac("实验幼儿园托班", "幼儿园托班", 8.53, 6.28, "老城街道东街社区纬十街3号", "", None, 90, "2,400"),
    _Fac("府前托育点", "托育点", 5.53, 7.28, "老城街道府前社区经二街40号", "", None, 60, "420"),
    _Fac("北苑托育点", "托育点", 6.03, 10.03, "滨河街道北苑社区府前街北段", "", None, 80, "500"),
    _Fac("新城托育中心", "托育机构", 9.03, 9.78, "新城街道滨江社区锦华路66号", "", None, 200, "1,500"),
    _Fac("白水镇中心幼儿园托班", "幼儿园托班", 3.28, 5.78, "白水镇白水村白水北街6号", "", None, 60, "1800"),
    _Fac("白水镇托育点", "托育点", 2.78, 5.28, "白水镇白水村白水南街15号", "", None, 40, "300"),
    _Fac("金河镇托育点", "托育点", 12.08, 3.78, "金河镇金河村金河西街2号", "", None, 50, "320"),
    _Fac("金河镇中心幼儿园托班", "幼儿园托班", 12.53, 3.58, "金河镇金河村金河东街31号", "", None, 40, "1600"),
    _Fac("南门托育中心", "托育机构", 8.28, 4.53, "老城街道南门社区纬三街19号", "", None, 150, "1,100"),
    _Fac("锦华托育中心", "托育机构", 7.03, 10.28, "滨河街道锦华社区经九街44号", "", None, 100, "800"),
)

_MEAL_POINTS: tuple[_Fac, ...] = (
    _Fac("老城长寿食堂", "长寿食堂", 6.28, 5.28, "老城街道文庙社区人民大道32号"),
    _Fac("东街老年餐桌", "老年餐桌", 8.78, 6.78, "老城街道东街社区新华路15号"),
    _Fac("府前助餐点", "助餐点", 5.78, 7.53, "老城街道府前社区文化路60号"),
    _Fac("示范县中央厨房", "中央厨房", 9.53, 4.53, "老城街道南门社区东环路2号"),
    _Fac("北苑助餐点", "助餐点", 6.03, 9.78, "滨河街道北苑社区经五街11号"),
    _Fac("新城长寿食堂", "长寿食堂", 9.03, 10.28, "新城街道云锦社区新华路99号"),
    _Fac("滨江老年餐桌", "老年餐桌", 8.28, 8.78, "新城街道滨江社区经十四街6号"),
    _Fac("白水镇助餐点", "助餐点", 3.03, 5.58, "白水镇白水村X101县道旁"),
    _Fac("河北村老年餐桌", "老年餐桌", 2.73, 10.23, "白水镇河北村"),
    _Fac("柏树村助餐点", "助餐点", 6.28, 12.98, "白水镇柏树村"),
    _Fac("石桥村老年餐桌", "老年餐桌", 2.53, 1.98, "白水镇石桥村"),
    _Fac("金河镇长寿食堂", "长寿食堂", 12.33, 3.78, "金河镇金河村X103县道旁"),
    _Fac("杨柳村老年餐桌", "老年餐桌", 8.83, 1.53, "金河镇杨柳村"),
    _Fac("渡口村老年餐桌", "老年餐桌", 0.78, 9.18, "白水镇渡口村"),  # the cut-off village cooks for itself
)

_NAMED_HEALTH: tuple[_Fac, ...] = (
    _Fac("老城街道社区卫生服务中心", "社区卫生服务中心", 6.33, 5.08,
         "老城街道文庙社区人民大道30号"),  # 70 m: co-located
    _Fac("东街社区卫生服务站", "社区卫生服务站", 8.53, 7.03, "老城街道东街社区解放路120号"),
    _Fac("北苑社区卫生服务站", "社区卫生服务站", 5.78, 9.78, "滨河街道北苑社区文化路北段"),
    _Fac("新城街道社区卫生服务中心", "社区卫生服务中心", 9.35, 10.08, "新城街道云锦社区锦华路1号"),  # 86 m
    _Fac("白水镇卫生院", "乡镇卫生院", 3.08, 5.82, "白水镇白水村白水北街3号"),  # 64 m from the centre
    _Fac("金河镇卫生院", "乡镇卫生院", 12.6, 3.9, "金河镇金河村金河东街20号"),  # 300 m: not co-located
    _Fac("云岭乡卫生院", "乡镇卫生院", 11.88, 12.86, "云岭乡石门村石门街5号"),  # 58 m
)

#: Planned service sites filling the 15-minute circles (local km, 30 m off two streets), chosen by a
#: set cover of the populated cells on the walk network (900 m at 1.0 m/s with a 60 m margin) so that
#: every resident is served, except the planted river cluster. Elderly sites are small 日间照料站 in a
#: 社区 (< 750 m2, so they never satisfy community_daycare) and 村级互助养老服务点 in a village.
_ELDERLY_SITES: tuple[tuple[float, float], ...] = (
    (5.78, 4.28), (8.53, 4.78), (7.28, 5.28), (6.03, 5.53), (9.53, 5.53), (8.78, 5.78), (6.78, 6.28),
    (7.78, 6.53), (9.28, 6.78), (9.28, 7.03), (5.78, 7.28), (7.78, 7.53), (6.28, 7.78), (8.28, 7.78),
    (9.78, 8.28), (8.28, 9.03), (9.78, 9.28), (7.53, 9.53), (9.28, 9.53), (9.03, 10.53), (5.53, 8.28),
    (6.03, 9.53), (6.78, 9.78), (5.28, 10.28), (12.13, 4.03), (12.23, 12.83),
)
#: 托育点 sites (same set cover for infants 0-3, the river cluster included)
_CHILDCARE_SITES: tuple[tuple[float, float], ...] = (
    (7.28, 4.28), (6.03, 4.53), (9.28, 4.53), (5.28, 4.78), (7.03, 4.78), (8.03, 5.28), (9.03, 5.28),
    (5.78, 5.53), (9.78, 5.53), (7.28, 5.78), (5.28, 6.03), (9.03, 6.03), (6.03, 6.53), (6.78, 6.53),
    (9.53, 6.78), (8.53, 7.03), (7.28, 7.28), (6.28, 7.53), (9.28, 7.53), (8.28, 7.78), (7.03, 8.03),
    (9.28, 8.28), (8.53, 9.03), (7.53, 9.28), (9.78, 9.28), (9.78, 10.03), (8.78, 10.28), (7.78, 10.78),
    (9.53, 10.78), (5.53, 8.28), (5.53, 9.28), (6.53, 9.53), (5.28, 10.28), (6.28, 10.78), (3.23, 5.93),
    (12.73, 4.43), (12.23, 12.83),
)
_SITE_SLOTS = {"S1": 30, "S2": 30, "S3": 30, "T1": 30, "T2": 30, "T3": 20}
#: community elderly facility types that must have a community health facility next door (colocation)
_COMMUNITY_ELDERLY_TYPES = ("社区养老服务综合体", "嵌入式社区养老院", "日间照料中心", "日间照料站",
                            "老幼复合型社区综合体")


def _community_at(x: float, y: float) -> tuple[str, str]:
    """(unit key, community name) of a local-km point."""
    key = str(unit_key_at(np.array([x]), np.array([y]))[0])
    r = _r(x)
    for k, _num, name, x0, y0, x1, y1 in _COMMUNITIES:
        lo_ok = y >= r if y0 == _RIVER else y >= y0
        hi_ok = y < r if y1 == _RIVER else y < y1
        if k == key and x0 <= x < x1 and lo_ok and hi_ok:
            return key, name
    raise ValueError(f"no community at ({x}, {y})")


def _site_facilities() -> tuple[_Fac, ...]:
    out: list[_Fac] = []
    count: dict[str, int] = {}
    for kind, sites in (("elderly", _ELDERLY_SITES), ("childcare", _CHILDCARE_SITES)):
        for x, y in sites:
            key, comm = _community_at(x, y)
            unit = _UNIT_BY_KEY[key]
            n = count[comm + kind] = count.get(comm + kind, 0) + 1
            addr = f"{unit.name}{comm}"
            if kind == "childcare":
                out.append(_Fac(f"{comm}{n}号托育点", "托育点", x, y, addr, "", None, _SITE_SLOTS[key],
                                "240"))
            elif unit.type == "街道":
                out.append(_Fac(f"{comm}{n}号日间照料站", "日间照料站", x, y, addr, "", None, None, "320"))
            else:
                out.append(_Fac(f"{comm}{n}号互助养老服务点", "村级互助养老服务点", x, y, addr, "", None,
                                None, "100"))
    return tuple(out)


_ELDERLY_CHILDCARE: tuple[_Fac, ...] = _NAMED_ELDERLY_CHILDCARE + _site_facilities()


def _colocated_health() -> tuple[_Fac, ...]:
    """A 社区卫生服务站 40 m east of every community elderly facility without a health facility
    within 100 m."""
    out: list[_Fac] = []
    count: dict[str, int] = {}
    for f in _ELDERLY_CHILDCARE:
        if f.type not in _COMMUNITY_ELDERLY_TYPES:
            continue
        if any(math.hypot(f.x - h.x, f.y - h.y) <= 0.1 for h in (*_NAMED_HEALTH, *out)):
            continue
        key, comm = _community_at(f.x, f.y)
        n = count[comm] = count.get(comm, 0) + 1
        out.append(_Fac(f"{comm}卫生服务站({n})", "社区卫生服务站", round(f.x + 0.04, 6), f.y,
                        f"{_UNIT_BY_KEY[key].name}{comm}({f.name}旁)"))
    return tuple(out)


_HEALTH: tuple[_Fac, ...] = _NAMED_HEALTH + _colocated_health()

# --------------------------------------------------------------------------------------------
# Population
# --------------------------------------------------------------------------------------------

#: built-up urban blocks: (x0, y0, x1, y1, persons per km2). Hard-edged: people live in the blocks,
#: not in the fields around them. The south-bank block stops 150 m short of the river (``_RIVER_GAP_KM``).
_BUILT_UP = ((5.2, 4.2, 9.8, 8.1, 4200.0), (5.1, 9.2, 7.4, 10.9, 4800.0), (7.6, 8.8, 9.9, 10.9, 5200.0))
#: old-town peak inside the blocks: (x, y, sigma_km, persons per km2 at the peak)
_PEAKS = ((7.0, 6.0, 0.9, 3500.0),)
#: town seats and village clusters along their roads: (x, y, radius_km, persons). Each settlement is a
#: compact bump ``(1 - (r/R)^2)^2`` that is exactly 0 beyond R: mountains and fields are empty.
_VILLAGES = (
    (3.0, 5.5, 0.6, 9000.0), (2.5, 2.0, 0.35, 2600.0), (0.75, 9.2, 0.3, 700.0), (2.65, 10.2, 0.35, 2400.0),
    (3.2, 13.0, 0.35, 2200.0), (6.25, 13.0, 0.35, 2300.0), (8.75, 13.5, 0.35, 2100.0),
    (12.3, 4.0, 0.6, 8500.0), (6.5, 1.5, 0.35, 2500.0), (8.8, 1.5, 0.35, 2600.0), (11.2, 0.3, 0.35, 2400.0),
    (13.9, 1.5, 0.35, 2300.0), (11.3, 6.6, 0.35, 2500.0), (13.8, 6.6, 0.35, 2200.0),
    (11.8, 12.8, 0.45, 3200.0), (14.0, 10.8, 0.35, 1600.0), (13.6, 13.8, 0.35, 1400.0),
    (11.6, 10.4, 0.35, 1500.0),
)
#: the planted across-river cluster of elderly residents (x, y, radius_km, persons)
RIVER_CLUSTER_KM = (7.0, 8.62, 0.25, 1800.0)
_RIVER_GAP_KM = 0.15  #: nobody lives within 150 m of the river's centre line (banks, riverside roads)
_SHARE_60 = {"S1": 0.24, "S3": 0.21, "S2": 0.15, "T1": 0.26, "T2": 0.25, "T3": 0.30}
_SHARE_0TO3 = {"S1": 0.026, "S3": 0.030, "S2": 0.038, "T1": 0.028, "T2": 0.029, "T3": 0.024}
_CLUSTER_SHARE_60 = 0.42


def _bump(x: np.ndarray, y: np.ndarray, cx: float, cy: float, radius: float, persons: float) -> np.ndarray:
    """Persons per km2 of a compact settlement: ``persons * 3 / (pi R^2) * (1 - r^2/R^2)^2``, 0 beyond R."""
    q = np.clip(1.0 - ((x - cx) ** 2 + (y - cy) ** 2) / (radius * radius), 0.0, None)
    return persons * 3.0 / (np.pi * radius * radius) * q * q


def _density_per_km2(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Residential density (persons/km2) at local-km points; 0 outside the settlements and by the river."""
    d = np.zeros_like(x)
    in_blocks = np.zeros(x.shape, dtype=bool)
    for x0, y0, x1, y1, dens in _BUILT_UP:
        inside = (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)
        in_blocks |= inside
        d += np.where(inside, dens, 0.0)
    for px, py, s, peak in _PEAKS:
        d += np.where(in_blocks, peak * np.exp(-((x - px) ** 2 + (y - py) ** 2) / (2 * s * s)), 0.0)
    for vx, vy, radius, persons in (*_VILLAGES, RIVER_CLUSTER_KM):
        d += _bump(x, y, vx, vy, radius, persons)
    return np.where(np.abs(y - river_y_km(x)) < _RIVER_GAP_KM, 0.0, d)


@dataclass(frozen=True)
class _Grid:
    west: float
    north: float
    n_cols: int
    n_rows: int

    def centres_km(self) -> tuple[np.ndarray, np.ndarray]:
        lon = self.west + (np.arange(self.n_cols) + 0.5) * CELL_DEG
        lat = self.north - (np.arange(self.n_rows) + 0.5) * CELL_DEG
        lon2, lat2 = np.meshgrid(lon, lat)
        return _local_km(lon2, lat2)


def _grid() -> _Grid:
    lon1, lat1 = _lonlat(SIZE_KM, SIZE_KM)
    west = (math.floor(LON0 / CELL_DEG) - MARGIN_CELLS) * CELL_DEG
    south = (math.floor(LAT0 / CELL_DEG) - MARGIN_CELLS) * CELL_DEG
    n_cols = math.ceil((float(lon1) - west) / CELL_DEG) + MARGIN_CELLS
    n_rows = math.ceil((float(lat1) - south) / CELL_DEG) + MARGIN_CELLS
    return _Grid(west=round(west, 9), north=round(south + n_rows * CELL_DEG, 9), n_cols=n_cols, n_rows=n_rows)


def _population(grid: _Grid) -> dict[str, np.ndarray]:
    """Persons per cell (float32): total, 60+ and 0-3; nodata on the outer ring, 0 outside the county."""
    x, y = grid.centres_km()
    half_x = CELL_DEG / 2 * M_PER_DEG_LON / 1000.0
    half_y = CELL_DEG / 2 * M_PER_DEG_LAT / 1000.0
    cell_km2 = (2 * half_x) * (2 * half_y)
    touches = (x + half_x > 0) & (x - half_x < SIZE_KM) & (y + half_y > 0) & (y - half_y < SIZE_KM)
    total = np.where(touches, _density_per_km2(x, y) * cell_km2, 0.0)
    keys = unit_key_at(x, y)
    s60 = np.vectorize(_SHARE_60.get)(keys).astype(float)
    s03 = np.vectorize(_SHARE_0TO3.get)(keys).astype(float)
    cx, cy, cr, _ = RIVER_CLUSTER_KM
    near_cluster = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * (0.8 * cr) ** 2))
    s60 = s60 + (_CLUSTER_SHARE_60 - s60) * near_cluster
    rng = np.random.Generator(np.random.PCG64(SEED))
    s60 = np.clip(s60 * rng.lognormal(0.0, 0.08, size=s60.shape), 0.0, 0.6)
    s03 = np.clip(s03 * rng.lognormal(0.0, 0.15, size=s03.shape), 0.0, 0.08)
    out = {"total": total, "60plus": total * s60, "0to3": total * s03}
    ring = np.zeros(total.shape, dtype=bool)
    ring[0, :] = ring[-1, :] = ring[:, 0] = ring[:, -1] = True
    return {k: np.where(ring, NODATA, v).astype(np.float32) for k, v in out.items()}


# --------------------------------------------------------------------------------------------
# Writers (byte-deterministic)
# --------------------------------------------------------------------------------------------


def _write_bytes(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _fmt(v: float) -> float:
    return round(float(v), 7)


def _densify_ring(coords: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Insert a vertex at every 50 m lattice value along axis-parallel edges.

    Neighbouring polygons then share every vertex of their common edges, so no sliver appears
    when the lon/lat polygons are projected to a metric CRS (straight lon/lat edges are not
    straight in UTM).
    """
    out: list[tuple[float, float]] = []
    for (ax, ay), (bx, by) in itertools.pairwise(coords):
        out.append((ax, ay))
        for axis, (a, b) in ((0, (ax, bx)), (1, (ay, by))):
            other = (ay, by) if axis == 0 else (ax, bx)
            if abs(other[0] - other[1]) > 1e-9 or abs(a - b) < 1e-9:
                continue
            lo, hi = sorted((a, b))
            vals = [v / 20.0 for v in range(math.floor(lo * 20) + 1, math.ceil(hi * 20))]
            vals = [v for v in vals if lo + 1e-9 < v < hi - 1e-9]
            for v in (vals if a < b else vals[::-1]):
                out.append((v, ay) if axis == 0 else (ax, v))
    out.append(coords[-1])
    return out


def _polygon_lonlat(poly: Polygon) -> list:
    poly = Polygon(_densify_ring(list(poly.exterior.coords)),
                   [_densify_ring(list(r.coords)) for r in poly.interiors])
    poly = orient(shapely.normalize(poly), sign=1.0)  # RFC 7946: exterior counter-clockwise
    rings = [poly.exterior, *poly.interiors]
    out = []
    for ring in rings:
        xy = np.asarray(ring.coords)
        lon, lat = _lonlat(xy[:, 0], xy[:, 1])
        out.append([[_fmt(a), _fmt(b)] for a, b in zip(lon, lat, strict=True)])
    return out


def _geojson(name: str, features: list[tuple[dict, Polygon]]) -> bytes:
    feats = []
    for props, geom in features:
        parts = list(geom.geoms) if isinstance(geom, MultiPolygon) else [geom]
        if len(parts) == 1:
            g = {"type": "Polygon", "coordinates": _polygon_lonlat(parts[0])}
        else:
            g = {"type": "MultiPolygon", "coordinates": [_polygon_lonlat(p) for p in parts]}
        feats.append({"type": "Feature", "properties": props, "geometry": g})
    doc = {"type": "FeatureCollection", "name": name, "features": feats}
    return (json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def _box_km(x0: float, y0: float, x1: float, y1: float) -> Polygon:
    """A box whose bottom or top edge may be the river (``_RIVER``)."""
    if y1 == _RIVER:
        return Polygon([(x0, y0), (x1, y0), *_river_pts(x1, x0)])
    if y0 == _RIVER:
        return Polygon([*_river_pts(x0, x1), (x1, y1), (x0, y1)])
    return box(x0, y0, x1, y1)


def _units_and_communities() -> tuple[bytes, bytes]:
    polys = _unit_polygons_km()
    units = [({"code": u.code, "name": u.name, "type": u.type, "class": u.cls, "area_type": u.area_type},
              polys[u.key]) for u in _UNITS]
    comms = []
    for key, num, name, x0, y0, x1, y1 in _COMMUNITIES:
        geom = polys[key].intersection(_box_km(x0, y0, x1, y1))
        geom = shapely.make_valid(geom)
        if not isinstance(geom, (Polygon, MultiPolygon)):  # drop slivers of lower dimension
            geom = MultiPolygon([g for g in geom.geoms if isinstance(g, Polygon)])
        comms.append(({"code": _community_code(key, num), "name": name,
                       "parent_code": _UNIT_BY_KEY[key].code}, geom))
    return _geojson("units", units), _geojson("communities", comms)


def _osm_xml() -> bytes:
    ways = _network_km()
    keys = sorted({_key(p) for pts, _ in ways for p in pts}, key=lambda k: (k[1], k[0]))
    node_id = {k: i + 1 for i, k in enumerate(keys)}
    lon0, lat0 = _lonlat(-0.5, -0.5)
    lon1, lat1 = _lonlat(SIZE_KM + 0.5, SIZE_KM + 0.5)
    lines = ["<?xml version='1.0' encoding='UTF-8'?>",
             '<osm version="0.6" generator="coverage.demo" copyright="fictional demo data, CC0">',
             f'  <bounds minlat="{lat0:.7f}" minlon="{lon0:.7f}" maxlat="{lat1:.7f}" maxlon="{lon1:.7f}"/>']
    for k in keys:
        lon, lat = _lonlat(k[0] / 10000.0, k[1] / 10000.0)
        lines.append(f'  <node id="{node_id[k]}" version="1" lat="{lat:.7f}" lon="{lon:.7f}"/>')
    for i, (pts, tags) in enumerate(ways):
        lines.append(f'  <way id="{i + 1}" version="1">')
        lines.extend(f'    <nd ref="{node_id[_key(p)]}"/>' for p in pts)
        lines.extend(f"    <tag k={quoteattr(k)} v={quoteattr(v)}/>" for k, v in sorted(tags.items()))
        lines.append("  </way>")
    lines.append("</osm>")
    return ("\n".join(lines) + "\n").encode("utf-8")


def _tiff(values: np.ndarray, grid: _Grid) -> bytes:
    """A minimal uncompressed single-strip float32 GeoTIFF in EPSG:4326 with GDAL_NODATA."""
    h, w = values.shape
    data = values.astype("<f4").tobytes()
    geokeys = [1, 1, 0, 4, 1024, 0, 1, 2, 1025, 0, 1, 1, 2048, 0, 1, 4326, 2054, 0, 1, 9102]
    nodata = b"-99999\x00"
    # (tag, type, count, payload bytes); types: 3 SHORT, 4 LONG, 12 DOUBLE, 2 ASCII
    entries: list[tuple[int, int, int, bytes]] = [
        (256, 4, 1, struct.pack("<I", w)), (257, 4, 1, struct.pack("<I", h)),
        (258, 3, 1, struct.pack("<H", 32)), (259, 3, 1, struct.pack("<H", 1)),
        (262, 3, 1, struct.pack("<H", 1)), (273, 4, 1, b""),  # strip offset patched below
        (277, 3, 1, struct.pack("<H", 1)), (278, 4, 1, struct.pack("<I", h)),
        (279, 4, 1, struct.pack("<I", len(data))), (284, 3, 1, struct.pack("<H", 1)),
        (339, 3, 1, struct.pack("<H", 3)),
        (33550, 12, 3, struct.pack("<3d", CELL_DEG, CELL_DEG, 0.0)),
        (33922, 12, 6, struct.pack("<6d", 0.0, 0.0, 0.0, grid.west, grid.north, 0.0)),
        (34735, 3, len(geokeys), struct.pack(f"<{len(geokeys)}H", *geokeys)),
        (42113, 2, len(nodata), nodata),
    ]
    ifd_size = 2 + 12 * len(entries) + 4
    extra_off = 8 + ifd_size
    extra = b""
    offsets: dict[int, int] = {}
    for tag, _typ, _cnt, payload in entries:
        if len(payload) > 4:
            offsets[tag] = extra_off + len(extra)
            extra += payload + (b"\x00" if len(payload) % 2 else b"")
    strip_off = extra_off + len(extra)
    ifd = struct.pack("<H", len(entries))
    for tag, typ, cnt, payload in entries:
        if tag == 273:
            payload = struct.pack("<I", strip_off)
        if len(payload) > 4:
            ifd += struct.pack("<HHII", tag, typ, cnt, offsets[tag])
        else:
            ifd += struct.pack("<HHI", tag, typ, cnt) + payload.ljust(4, b"\x00")
    ifd += struct.pack("<I", 0)
    return b"II*\x00" + struct.pack("<I", 8) + ifd + extra + data


#: .dbf fields: (name, type, length, decimals). 护理型床位数 is 12 bytes in GBK; shapefile field names
#: hold 10 bytes, so it is truncated to 护理型床位 as ArcGIS/QGIS users end up with.
SHAPEFILE_FIELDS: tuple[tuple[str, str, int, int], ...] = (
    ("名称", "C", 80, 0), ("类型", "C", 40, 0), ("地址", "C", 120, 0), ("床位数", "C", 16, 0),
    ("护理型床位", "N", 10, 0), ("托位数", "N", 10, 0), ("建筑面积", "C", 16, 0), ("占地面积", "N", 12, 1),
)
_CGCS2000_PRJ = ('GEOGCS["GCS_China_Geodetic_Coordinate_System_2000",DATUM["D_China_2000",'
                 'SPHEROID["CGCS2000",6378137.0,298.257222101]],PRIMEM["Greenwich",0.0],'
                 'UNIT["Degree",0.0174532925199433]]')


def _dbf(records: Sequence[Sequence[str | float | None]]) -> bytes:
    n_fields = len(SHAPEFILE_FIELDS)
    rec_len = 1 + sum(f[2] for f in SHAPEFILE_FIELDS)
    header_len = 32 + 32 * n_fields + 1
    y, m, d = _FIXED_DATE[:3]
    out = struct.pack("<BBBBIHH20x", 0x03, y - 1900, m, d, len(records), header_len, rec_len)
    for name, typ, length, dec in SHAPEFILE_FIELDS:
        nb = name.encode("gbk")
        if len(nb) > 10:
            raise ValueError(f"dbf field name {name!r} is {len(nb)} bytes in GBK; the limit is 10")
        out += nb.ljust(11, b"\x00") + typ.encode("ascii") + b"\x00" * 4 + bytes([length, dec]) + b"\x00" * 14
    out += b"\r"
    for rec in records:
        row = b" "
        for (_name, typ, length, dec), val in zip(SHAPEFILE_FIELDS, rec, strict=True):
            if typ == "C":
                vb = str(val).encode("gbk")[:length]
                row += vb.ljust(length, b" ")
            elif val is None or val == "":
                row += b" " * length
            else:
                row += f"{float(val):{length}.{dec}f}".encode("ascii")
        out += row
    return out + b"\x1a"


def _shp_shx(xy: np.ndarray) -> tuple[bytes, bytes]:
    n = len(xy)
    bbox = (xy[:, 0].min(), xy[:, 1].min(), xy[:, 0].max(), xy[:, 1].max())

    def header(length_bytes: int) -> bytes:
        return (struct.pack(">7i", 9994, 0, 0, 0, 0, 0, length_bytes // 2) + struct.pack("<2i", 1000, 1)
                + struct.pack("<4d", *bbox) + struct.pack("<4d", 0.0, 0.0, 0.0, 0.0))

    rec_bytes = 8 + 20
    shp = header(100 + n * rec_bytes)
    shx = header(100 + n * 8)
    for i, (x, y) in enumerate(xy):
        offset = 100 + i * rec_bytes
        shp += struct.pack(">2i", i + 1, 10) + struct.pack("<i2d", 1, x, y)
        shx += struct.pack(">2i", offset // 2, 10)
    return shp, shx


def _fac_lonlat(facs: Sequence[_Fac]) -> np.ndarray:
    lon, lat = _lonlat(np.array([f.x for f in facs]), np.array([f.y for f in facs]))
    return np.round(np.column_stack([lon, lat]), 7)


def _shapefile(out_dir: Path) -> list[Path]:
    xy = _fac_lonlat(_ELDERLY_CHILDCARE)
    records = [[f.name, f.type, f.address, f.beds, f.nursing_beds, f.slots, f.floor_area, f.land_area]
               for f in _ELDERLY_CHILDCARE]
    shp, shx = _shp_shx(xy)
    base = out_dir / "facilities" / "elderly_childcare"
    return [_write_bytes(base.with_suffix(".shp"), shp), _write_bytes(base.with_suffix(".shx"), shx),
            _write_bytes(base.with_suffix(".dbf"), _dbf(records)),
            _write_bytes(base.with_suffix(".prj"), _CGCS2000_PRJ.encode("ascii"))]


def _meal_csv() -> bytes:
    xy = _fac_lonlat(_MEAL_POINTS)
    glon, glat = wgs84_to_gcj02(xy[:, 0], xy[:, 1])
    rows = ["名称,类型,地址,经度,纬度"]
    for f, lo, la in zip(_MEAL_POINTS, glon, glat, strict=True):
        rows.append(f"{f.name},{f.type},{f.address},{lo:.6f},{la:.6f}")
    return ("\r\n".join(rows) + "\r\n").encode("gbk")


def _health_xlsx() -> bytes:
    import datetime

    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "卫生机构"
    ws.append(["名称", "类型", "地址", "经度", "纬度"])
    xy = _fac_lonlat(_HEALTH)
    for f, (lo, la) in zip(_HEALTH, xy, strict=True):
        ws.append([f.name, f.type, f.address, float(lo), float(la)])
    fixed = datetime.datetime(*_FIXED_DATE)
    wb.properties.creator = "coverage.demo"
    wb.properties.created = fixed
    raw = io.BytesIO()
    wb.save(raw)
    return _repack_zip(raw.getvalue())


def _repack_zip(data: bytes) -> bytes:
    """Rewrite a zip with fixed entry times, stored entries and fixed docProps timestamps."""
    y, mo, d, h, mi, se = _FIXED_DATE
    stamp = f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{se:02d}Z"
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as zin, zipfile.ZipFile(out, "w") as zout:
        for name in zin.namelist():
            payload = zin.read(name)
            if name == "docProps/core.xml":
                text = payload.decode("utf-8")
                text = re.sub(r"(<dcterms:(created|modified)[^>]*>)[^<]*(</dcterms:)", rf"\g<1>{stamp}\g<3>",
                              text)
                payload = text.encode("utf-8")
            info = zipfile.ZipInfo(name, date_time=_FIXED_DATE)
            info.compress_type = zipfile.ZIP_STORED
            info.create_system = 3
            info.external_attr = 0o644 << 16
            zout.writestr(info, payload)
    return out.getvalue()


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def _community(name: str) -> str:
    for key, num, cname, *_ in _COMMUNITIES:
        if cname == name:
            return _community_code(key, num)
    raise KeyError(name)


def _straight_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    return round(1000.0 * math.hypot(a[0] - b[0], a[1] - b[1]), 1)


_CLUSTER_LONLAT = tuple(round(float(v), 7) for v in _lonlat(RIVER_CLUSTER_KM[0], RIVER_CLUSTER_KM[1]))

#: The deliberate gaps of the demo county that later stages must find. Keys name the gap; each
#: value gives the standard or service concerned, the unit/community codes and what must fail.
PLANTED_GAPS: dict[str, dict] = {
    "street_without_complex": {
        "standard_id": "street_complex",
        "level": "unit",
        "unit_code": _UNIT_BY_KEY["S3"].code,
        "unit_name": "滨河街道",
        "expect": "fails: the 街道 has no 社区养老服务综合体 (nor 老幼复合型社区综合体); "
                  "the other two 街道 (老城, 新城) pass",
    },
    "town_beyond_meal_radius": {
        "standard_id": "meal_radius",
        "service": "meal",
        "unit_code": _UNIT_BY_KEY["T3"].code,
        "unit_name": "云岭乡",
        "community_codes": [_community_code("T3", n) for n in (201, 202, 203, 204)],
        "expect": "every village of the 乡 is > 30 min by e-bike from any meal point (its only road in "
                  "is the 东渡桥 + 11 km 盘山公路); covered_meal share ~0 there, while every other unit "
                  "is mostly covered under its own rule (城区 15 min, 郊区 30 min)",
    },
    "small_daycare": {
        "standard_id": "community_daycare",
        "level": "community",
        "unit_code": _UNIT_BY_KEY["S1"].code,
        "community_code": _community("南门社区"),
        "community_name": "南门社区",
        "facility": "南门社区日间照料中心",
        "floor_area_m2": 600.0,
        "expect": "fails: the community's 日间照料中心 has 600 m2 < 750 m2 (its small 日间照料站 are "
                  "< 750 m2 too); every other 社区 has one of >= 750 m2",
    },
    "river_cluster": {
        "standard_id": "elderly_circle",
        "service": "elderly",
        "unit_code": _UNIT_BY_KEY["S3"].code,
        "community_code": _community("滨河社区"),
        "community_name": "滨河社区",
        "center_lonlat": _CLUSTER_LONLAT,
        "radius_m": 250.0,
        "nearest_facility": "府前社区日间照料中心",
        "straight_line_m": _straight_m(RIVER_CLUSTER_KM[:2], (7.03, 7.78)),
        "expect": "elderly residents on the north bank are < 900 m in a straight line from the day-care "
                  "centre on the south bank, but the walk over the nearest bridge (文化桥 or 新华桥) takes "
                  "> 15 min at 1.0 m/s, and every north-bank elderly facility is > 15 min away too: "
                  "elderly_circle fails for 滨河街道 and 滨河社区 (their infants have the 滨河托育点)",
    },
}


_S1, _S3, _T3 = (_UNIT_BY_KEY[k].code for k in ("S1", "S3", "T3"))

#: Every (level, code, standard_id) that fails (``passed == False`` in standards.csv) after a full
#: pipeline run on the demo county with ``layers/demo/coverage.toml``: the planted gaps and their direct
#: consequences, NOTHING ELSE. Everyone else is within the 15-minute circles, every unit has its
#: 托位, nursing-type beds >= 55 %, health stations next to community elderly facilities, and the
#: region has 2 老幼复合型社区综合体 and childcare in 3 of its 5 community complexes.
EXPECTED_FAILURES: frozenset[tuple[str, str, str]] = frozenset({
    # street_without_complex
    ("unit", _S3, "street_complex"),
    # small_daycare
    ("community", _community("南门社区"), "community_daycare"),
    # river_cluster: the 街道 and its 滨河社区 miss the 100 % elderly circle
    ("unit", _S3, "elderly_circle"),
    ("community", _community("滨河社区"), "elderly_circle"),
    # town_beyond_meal_radius: the 乡 and each of its four villages
    ("unit", _T3, "meal_radius"),
    *(("community", _community_code("T3", n), "meal_radius") for n in (201, 202, 203, 204)),
})


def build_demo(out_dir: str | Path) -> list[Path]:
    """Write the demo county's input files into ``out_dir`` (deterministically).

    Parameters
    ----------
    out_dir : path
        Folder of the demo region (``layers/demo``). Created if missing; ``coverage.toml`` in it
        is never touched.

    Returns
    -------
    list of Path
        The files written, sorted: ``units.geojson``, ``communities.geojson``, ``roads.osm``,
        ``pop_total.tif``, ``pop_60plus.tif``, ``pop_0to3.tif`` (float32 persons per 3-arcsecond
        cell, EPSG:4326, nodata -99999), ``facilities/elderly_childcare.{shp,shx,dbf,prj}``
        (EPSG:4490, GBK attributes, no .cpg; fields :data:`SHAPEFILE_FIELDS`),
        ``facilities/meal_points.csv`` (GBK, 经度/纬度 in GCJ-02) and ``facilities/health.xlsx``
        (WGS84).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    units, comms = _units_and_communities()
    written.append(_write_bytes(out / "units.geojson", units))
    written.append(_write_bytes(out / "communities.geojson", comms))
    written.append(_write_bytes(out / "roads.osm", _osm_xml()))
    grid = _grid()
    pops = _population(grid)
    for name, arr in pops.items():
        written.append(_write_bytes(out / f"pop_{name}.tif", _tiff(arr, grid)))
    stale_cpg = out / "facilities" / "elderly_childcare.cpg"
    if stale_cpg.exists():
        stale_cpg.unlink()
    written.extend(_shapefile(out))
    written.append(_write_bytes(out / "facilities" / "meal_points.csv", _meal_csv()))
    written.append(_write_bytes(out / "facilities" / "health.xlsx", _health_xlsx()))
    total = float(pops["total"][pops["total"] > 0].sum())
    logger.info("Wrote demo county (%d files, %.0f persons, %d facilities) to %s", len(written), total,
                len(_ELDERLY_CHILDCARE) + len(_MEAL_POINTS) + len(_HEALTH), out)
    return sorted(written)


__all__ = ["EXPECTED_FAILURES", "PLANTED_GAPS", "SHAPEFILE_FIELDS", "build_demo", "river_y_km", "unit_key_at"]
