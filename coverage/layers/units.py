"""The 街道/乡镇 units and 社区/村 communities of a region, and the metric CRS they decide.

Reads the unit polygons (vector file, or OSM administrative boundaries), checks codes, types, classes
and area types as a whole layer (every problem collected, one :class:`~coverage.errors.LayerError`),
repairs invalid polygons (warned) and returns them in EPSG:4326. :func:`resolve_metric_crs` gives
the projected CRS every later stage measures in.

Coordinates (``[units] coords``, ``communities_coords``)
    Outlines copied from AMap/DataV/Tencent are GCJ-02, from Baidu BD-09: ``coords = "gcj02"`` /
    ``"bd09"`` converts every vertex to WGS84 (:mod:`coverage.coords`); "wgs84" (default) and
    "cgcs2000" are taken as they are. ``communities_coords`` ("" = as ``coords``) is the same for the
    社区/村 layer. The roads are read after the units, so the check that the outlines are not shifted
    is :func:`units_shift_warnings`, called once the road network exists (``check-layers`` and the
    pipeline): it compares the boundary vertices inside the road network's extent with the roads as
    declared and under the other readings (:func:`~coverage.layers.placement.boundary_shift_warning`).

Files without a type or class field
    ``default_type`` / ``default_class`` give every unit whose field is absent (or configured as "")
    or empty in a row its type / class; a configured field that is missing is an error that names
    the field the file probably means (case-insensitive; 名称/NAME -> name, ADCODE/行政代码/区划代码 ->
    code, 类型/级别 -> type, ...).

A district or county as one unit (unit_type 区县)
    Where no 街道/乡镇 polygons exist, the district (区) or county (县, 县级市) outline can be analysed as
    ONE unit: ``default_type = "区县"`` with ``default_class = "城区"`` (a district's built-up city:
    15-minute meal radius) or ``"郊区"`` (a county: 30 minutes); the class must be given, there is no
    default. A 区县 unit gets the district-level checks: the coverage circles (elderly, childcare,
    meal radius), elderly-service land per resident, childcare slots per 1000, nursing-bed share,
    beds per 1000 elderly and co-location, plus the region rows. The street-level standards
    (street_institution_old/new, street_complex: "每个街道") apply to 街道 units only, and
    rural_network ("每个乡镇") to 镇/乡 only: a 区县 unit gets no row for them, and its communities
    get no community_daycare / daycare_coverage rows (those are for the 社区 of 街道). Results for one
    district-wide unit average over very different places: use them to start, not to rank streets.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from coverage.config import UNIT_CLASSES, UNIT_DEFAULT_CLASS, UNIT_TYPES, Config, UnitsConfig
from coverage.coords import bd09_to_wgs84, gcj02_to_wgs84, utm_crs_for
from coverage.errors import LayerError
from coverage.layers.osm import units_from_osm
from coverage.layers.placement import as_written, boundary_shift_warning
from coverage.layers.readers import GEOGRAPHIC_AS_WGS84, read_vector
from coverage.layers.vocabulary import code_str

log = logging.getLogger(__name__)

__all__ = ["FIELD_SUGGESTIONS", "Units", "read_units", "resolve_metric_crs", "units_shift_warning",
           "units_shift_warnings"]

#: field names a unit / community file may use for each configured field (compared case-insensitively
#: with the file's columns when the configured one is missing; the first match is suggested)
FIELD_SUGGESTIONS: dict[str, tuple[str, ...]] = {
    "code": ("code", "adcode", "admincode", "admin_code", "行政代码", "区划代码", "行政区划代码", "代码",
             "编码", "xzqdm", "xzqhdm", "qhdm", "xzdm", "pac", "unit_code"),
    "name": ("name", "名称", "名字", "行政区名称", "xzqmc", "xzmc", "qhmc", "mc", "name_zh", "name_cn",
             "unit_name"),
    "type": ("type", "类型", "级别", "行政级别", "层级", "unit_type"),
    "class": ("class", "城乡类型", "城乡属性", "城乡", "unit_class"),
    "area_type": ("area_type", "区域类型", "新旧城区", "新老城区"),
    "parent_code": ("parent_code", "parent", "parent_adcode", "pcode", "上级代码", "上级区划代码",
                    "所属街道代码", "街道代码", "乡镇代码", "unit_code"),
}
_FIELD_KIND = {"code_field": "code", "name_field": "name", "type_field": "type", "class_field": "class",
               "area_type_field": "area_type", "community_code_field": "code",
               "community_name_field": "name", "community_parent_field": "parent_code"}

_AREA_TYPES = {"old": "old", "new": "new", "mixed": "mixed", "老城区": "old", "已建成": "old", "老城": "old",
               "已建成居住区": "old", "新建": "new", "新城区": "new", "新建城区": "new", "新区": "new",
               "新建居住区": "new", "混合": "mixed"}


#: Two polygons of one layer OVERLAP when their common area exceeds the smaller of
#: ``OVERLAP_MAX_FRAC`` of the smaller polygon's area and ``OVERLAP_MAX_M2``, and is not a sliver
#: (mean width ``2 * area / perimeter`` of at most ``SLIVER_MAX_WIDTH_M``): shared borders (no area),
#: and thin strips where two digitisations of one border disagree by a few metres, are tolerated.
OVERLAP_MAX_FRAC = 0.01
OVERLAP_MAX_M2 = 10_000.0
SLIVER_MAX_WIDTH_M = 5.0
_MAX_LISTED = 20


def _overlap_crs(cfg: Config, gdf: gpd.GeoDataFrame) -> str:
    """The metric CRS areas are measured in (as :func:`resolve_metric_crs`, without logging)."""
    if cfg.region.metric_crs != "auto":
        return cfg.region.metric_crs
    minx, miny, maxx, maxy = gdf.total_bounds
    return utm_crs_for((minx + maxx) / 2, (miny + maxy) / 2)


def _overlap_problems(gdf: gpd.GeoDataFrame, *, code_col: str, what: str, path: Path,
                     metric_crs: str) -> list[str]:
    """One problem listing every overlapping pair of polygons of ``gdf`` (EPSG:4326), or [].

    Candidate pairs come from a spatial index (STRtree), never from all pairs; the tolerance is
    :data:`OVERLAP_MAX_FRAC` / :data:`OVERLAP_MAX_M2` / :data:`SLIVER_MAX_WIDTH_M`.
    """
    geoms = gdf.to_crs(metric_crs).geometry.to_numpy()
    ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms)) & shapely.is_valid(geoms)
    idx = np.flatnonzero(ok)
    if len(idx) < 2:
        return []
    g = geoms[idx]
    left, right = shapely.STRtree(g).query(g, predicate="intersects")
    keep = left < right
    left, right = left[keep], right[keep]
    if not len(left):
        return []
    inter = shapely.intersection(g[left], g[right])
    area = shapely.area(inter)
    perim = shapely.length(inter)
    own = shapely.area(g)
    smaller = np.minimum(own[left], own[right])
    tol = np.minimum(OVERLAP_MAX_FRAC * smaller, OVERLAP_MAX_M2)
    width = np.where(perim > 0, 2.0 * area / np.where(perim > 0, perim, 1.0), 0.0)
    bad = np.flatnonzero((area > tol) & (width > SLIVER_MAX_WIDTH_M))
    if not len(bad):
        return []
    codes = gdf[code_col].astype(str).to_numpy()[idx]
    bad = bad[np.argsort(-area[bad], kind="stable")]
    pairs = []
    for k in bad[:_MAX_LISTED]:
        a, b = left[k], right[k]
        small = a if own[a] <= own[b] else b
        pairs.append(f"{codes[a]!r} and {codes[b]!r}: {area[k]:,.0f} m² ({100 * area[k] / smaller[k]:.1f} % "
                     f"of {codes[small]!r})")
    more = f"; and {len(bad) - _MAX_LISTED} more pair(s)" if len(bad) > _MAX_LISTED else ""
    return [f"{path}: {len(bad)} pair(s) of overlapping {what} polygons (measured in {metric_crs}): "
            + "; ".join(pairs) + more
            + f". Each place must belong to one {what}, or its people are counted twice. Fix: correct the "
              f"polygons so that neighbours only share borders (e.g. QGIS Topology Checker, or clip one by "
              f"the other); overlaps up to {OVERLAP_MAX_FRAC:.0%} of the smaller polygon or "
              f"{OVERLAP_MAX_M2:,.0f} m² (whichever is smaller) and slivers narrower than "
              f"{SLIVER_MAX_WIDTH_M:g} m are tolerated."]


@dataclass(frozen=True)
class Units:
    """Units (街道/乡镇) and communities (社区/村), both GeoDataFrames in EPSG:4326.

    ``units``: unit_code, unit_name, unit_type (街道/镇/乡), unit_class (城区/郊区), area_type
    (old/new/mixed), geometry. ``communities``: community_code, community_name, unit_code, geometry
    (empty when the config gives none). ``warnings``: repairs made (e.g. invalid geometries).
    """

    units: gpd.GeoDataFrame
    communities: gpd.GeoDataFrame
    warnings: tuple[str, ...] = ()


def _unshift_geometries(gs: gpd.GeoSeries, coords: str) -> gpd.GeoSeries:
    """``gs`` (EPSG:4326) with every vertex converted from GCJ-02 / BD-09 to WGS84 (vectorised over
    all vertices at once); unchanged for wgs84 / cgcs2000."""
    fn = {"gcj02": gcj02_to_wgs84, "bd09": bd09_to_wgs84}.get(coords)
    if fn is None:
        return gs
    geoms = np.asarray(gs.values)
    xy = shapely.get_coordinates(geoms)
    if not len(xy):
        return gs
    lon, lat = fn(xy[:, 0], xy[:, 1])
    return gpd.GeoSeries(shapely.set_coordinates(geoms.copy(), np.c_[lon, lat]), index=gs.index, crs=gs.crs)


def _read_polygons(path: Path, *, layer: str, crs: str, encoding: str, key: str, problems: list[str],
                   warnings: list[str], coords: str = "wgs84") -> gpd.GeoDataFrame | None:
    """A polygon layer in EPSG:4326 (vertices back-shifted from ``coords`` GCJ-02 / BD-09), or None
    with the reason appended to ``problems``."""
    if not path.exists():
        problems.append(f"{path}: file not found; fix {key}.path")
        return None
    if path.stat().st_size == 0:
        problems.append(f"{path}: the file is empty (0 bytes); export the layer again or correct the path "
                        f"in [units]")
        return None
    try:
        raw = read_vector(path, layer=layer, encoding=encoding, key=key)
    except LayerError as exc:
        problems.append(str(exc))
        return None
    gdf = gpd.GeoDataFrame(raw.attrs, geometry=gpd.GeoSeries(raw.geoms), crs=raw.crs)
    if raw.crs is None and not crs:
        problems.append(f"{path}: no CRS (no .prj file); set {key}.crs (e.g. \"EPSG:4490\" for CGCS2000 "
                        f"lon/lat or \"EPSG:4545\" for a Gauss-Kruger zone)")
        return None
    if crs:
        gdf = gdf.set_crs(crs, allow_override=True)
    if gdf.crs.to_epsg() in GEOGRAPHIC_AS_WGS84:
        gdf = gdf.set_crs("EPSG:4326", allow_override=True)
    else:
        gdf = gdf.to_crs("EPSG:4326")
    if coords in ("gcj02", "bd09"):
        gdf = gdf.set_geometry(_unshift_geometries(gdf.geometry, coords))
        log.info("%s: %d polygons converted from %s to WGS84 (%s coords)", path, len(gdf), coords, key)
    return gdf


def _find_field(key: str, value: str, cols: Sequence[str]) -> tuple[str | None, str | None]:
    """(column, problem) for the configured field ``key = value``: the column when the file has it
    (exactly), else None and a problem naming the columns and the field the file probably means."""
    if value in cols:
        return value, None
    have = [c for c in cols if c != "geometry"]
    lower = {c.lower(): c for c in have}
    guess = lower.get(value.lower())
    for alias in FIELD_SUGGESTIONS[_FIELD_KIND[key]]:
        if guess is None:
            guess = lower.get(alias.lower())
    more = len(have) - _MAX_LISTED
    listed = ", ".join(have[:_MAX_LISTED]) + (f" and {more} more" if more > 0 else "")
    head = f"units.{key} = {value!r} not found; the file has {listed or 'no attribute fields'}"
    if guess is not None:
        fix = f"set units.{key} = \"{guess}\""
    else:
        fix = f"set units.{key} to the field that holds the {_FIELD_KIND[key].replace('_', ' ')}s"
    if key == "type_field":
        fix += (" (or, for a file without types, units.default_type = \"街道\", \"镇\", \"乡\" or \"区县\": "
                "one type for every unit; 区县 = a district or county analysed as one unit)")
    return None, f"{head}: {fix}"


def _fix_polygons(gdf: gpd.GeoDataFrame, ids: Sequence[str], path: Path, what: str, problems: list[str],
                  warnings: list[str]) -> gpd.GeoSeries:
    """The geometries with invalid polygons repaired (warned); empty or non-polygon ones are problems."""
    out = []
    for code, g in zip(ids, gdf.geometry.values, strict=True):
        if g is None or g.is_empty:
            problems.append(f"{path}: {what} {code!r} has no geometry")
            out.append(g)
            continue
        if not g.is_valid:
            reason = shapely.is_valid_reason(g)
            g = shapely.make_valid(g)
            if g.geom_type == "GeometryCollection":
                g = shapely.unary_union([p for p in g.geoms if p.geom_type in ("Polygon", "MultiPolygon")])
            warnings.append(f"{path}: {what} {code!r}: invalid geometry repaired ({reason})")
        if g.geom_type not in ("Polygon", "MultiPolygon") or g.is_empty:
            problems.append(f"{path}: {what} {code!r} is a {g.geom_type}, expected a polygon")
        out.append(g)
    return gpd.GeoSeries(out, crs=gdf.crs)


def _empty_communities() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"community_code": [], "community_name": [], "unit_code": []},
                            geometry=gpd.GeoSeries([], crs="EPSG:4326"), crs="EPSG:4326")


def _classes_and_areas(uc: UnitsConfig, codes: list[str], types: list[str], classes: list[str],
                       areas: list[str], problems: list[str]) -> tuple[list[str], list[str]]:
    """(unit_class, area_type) per unit, defaults applied; bad types, classes, area types are problems."""
    out_cls, out_area = [], []
    no_class: list[str] = []
    tf = uc.type_field or "units.default_type"
    for code, t, c, a in zip(codes, types, classes, areas, strict=True):
        if t not in UNIT_TYPES:
            problems.append(f"{uc.path}: unit {code!r}: {tf} = {t!r}, expected 街道, 镇 or 乡 (or 区县 for a "
                            f"district or county analysed as one unit)"
                            + ("" if t or uc.default_type else "; or set units.default_type for empty ones"))
        if not c:
            c = uc.default_class or UNIT_DEFAULT_CLASS.get(t, "")
            if not c and t in UNIT_TYPES:
                no_class.append(code)
        elif c not in UNIT_CLASSES:
            problems.append(f"{uc.path}: unit {code!r}: {uc.class_field} = {c!r}, expected 城区 or 郊区 "
                            f"(or empty for the default from the type)")
        out_cls.append(c)
        an = _AREA_TYPES.get(a.lower() if a.isascii() else a) if a else "mixed"
        if an is None:
            problems.append(f"{uc.path}: unit {code!r}: {uc.area_type_field} = {a!r}, expected old, "
                            f"new or mixed")
        out_area.append(an or "mixed")
    if no_class:
        problems.append(f"{uc.path}: {len(no_class)} 区县 unit(s) without a class "
                        f"({', '.join(map(repr, no_class))}): "
                        f"set units.default_class = \"城区\" (a district's built-up city: the 15-minute meal "
                        f"radius) or \"郊区\" (a county or rural district: 30 minutes), or fill in "
                        f"{uc.class_field or 'a class field'}")
    return out_cls, out_area


def _unit_table(uc: UnitsConfig, gdf: gpd.GeoDataFrame, problems: list[str],
                warnings: list[str]) -> gpd.GeoDataFrame | None:
    """The units of a polygon layer with the canonical columns, or None when configured fields are missing."""
    cols = list(gdf.columns)
    found: dict[str, str | None] = {}
    missing = False
    for k in ("code_field", "name_field", "type_field"):
        value = getattr(uc, k)
        if k == "type_field" and uc.default_type and (not value or value not in cols):
            found[k] = None  # no type field: every unit takes units.default_type
            continue
        col, problem = _find_field(k, value, cols)
        found[k] = col
        if problem:
            problems.append(f"{uc.path}: {problem}")
            missing = True
    if missing:
        return None
    codes = [code_str(v) for v in gdf[uc.code_field]]
    tcol = found["type_field"]
    types = [code_str(v) or uc.default_type for v in gdf[tcol]] if tcol else [uc.default_type] * len(gdf)
    classes = ([code_str(v) for v in gdf[uc.class_field]] if uc.class_field and uc.class_field in cols
               else [""] * len(gdf))
    acol = uc.area_type_field
    areas = [code_str(v) for v in gdf[acol]] if acol and acol in cols else [""] * len(gdf)
    out_cls, out_area = _classes_and_areas(uc, codes, types, classes, areas, problems)
    dup = [c for c, n in Counter(codes).items() if n > 1]
    if dup:
        problems.append(f"{uc.path}: duplicate unit codes in {uc.code_field}: {', '.join(map(repr, dup))}; "
                        f"every unit needs its own code: correct them in the file or set units.code_field to "
                        f"the field that holds unique codes")
    if "" in codes:
        problems.append(f"{uc.path}: {codes.count('')} unit(s) with an empty {uc.code_field}; fill in their "
                        f"codes or set units.code_field to the field that holds the codes")
    geom = _fix_polygons(gdf, codes, uc.path, "unit", problems, warnings)
    return gpd.GeoDataFrame({
        "unit_code": codes, "unit_name": [code_str(v) for v in gdf[uc.name_field]],
        "unit_type": types, "unit_class": out_cls, "area_type": out_area}, geometry=geom, crs="EPSG:4326")


def _community_table(uc: UnitsConfig, path: Path, cg: gpd.GeoDataFrame, units: gpd.GeoDataFrame | None,
                     problems: list[str], warnings: list[str]) -> gpd.GeoDataFrame | None:
    """The communities of ``path`` with the canonical columns (parents checked against ``units`` when
    read), or None when configured fields are missing."""
    keys = ("community_code_field", "community_name_field", "community_parent_field")
    missing = [p for p in (_find_field(k, getattr(uc, k), list(cg.columns))[1] for k in keys) if p]
    if missing:
        problems.extend(f"{path}: {p}" for p in missing)
        return None
    ccodes = [code_str(v) for v in cg[uc.community_code_field]]
    parents = [code_str(v) for v in cg[uc.community_parent_field]]
    dup = [c for c, n in Counter(ccodes).items() if n > 1]
    if dup:
        problems.append(f"{path}: duplicate community codes: {', '.join(map(repr, dup))}; correct them or "
                        f"set units.community_code_field to the field that holds unique codes")
    if units is not None:
        known = set(units["unit_code"])
        bad = sorted({p for p in parents if p not in known})
        if bad:
            problems.append(f"{path}: parent codes not among the units: "
                            f"{', '.join(map(repr, bad))} (field {uc.community_parent_field}); correct "
                            f"them in the file, or set units.community_parent_field to the field holding "
                            f"each 社区/村's 街道/乡镇 code")
    geom = _fix_polygons(cg, ccodes, path, "community", problems, warnings)
    return gpd.GeoDataFrame({"community_code": ccodes,
                             "community_name": [code_str(v) for v in cg[uc.community_name_field]],
                             "unit_code": parents}, geometry=geom, crs="EPSG:4326")


def read_units(cfg: Config) -> Units:
    """Read the 街道/乡镇 units (and 社区/村 communities) of the config, in EPSG:4326.

    Checks (all collected, raised once as :class:`LayerError`): file and CRS present, configured fields
    present, unit_type in 街道/镇/乡, unit_class in 城区/郊区 (default from the type when the class field
    is missing or empty: 街道 -> 城区, 镇/乡 -> 郊区), area_type in old/new/mixed (Chinese 老城区/新建
    accepted, default mixed), codes non-empty and unique, communities' parent codes known, no two
    units (nor two communities) overlapping beyond the tolerance of :func:`_overlap_problems`. Invalid
    polygons are repaired with ``shapely.make_valid`` (warned); empty or non-polygon ones are errors.
    """
    uc = cfg.units
    if uc.source == "osm" or uc.path.suffix.lower() in (".pbf", ".osm", ".o5m") \
            or uc.path.name.lower().endswith(".osm.bz2"):
        return _units_from_osm_config(cfg)
    problems: list[str] = []
    warnings: list[str] = []
    gdf = _read_polygons(uc.path, layer=uc.layer, crs=uc.crs, encoding=uc.encoding, key="units",
                         problems=problems, warnings=warnings, coords=uc.coords)
    units = _unit_table(uc, gdf, problems, warnings) if gdf is not None else None
    comm = _empty_communities()
    if uc.communities_path is not None:
        cg = _read_polygons(uc.communities_path, layer=uc.communities_layer, crs=uc.crs, encoding=uc.encoding,
                            key="units.communities_path", problems=problems, warnings=warnings,
                            coords=uc.community_coords)
        if cg is not None:
            cm = _community_table(uc, uc.communities_path, cg, units, problems, warnings)
            comm = cm if cm is not None else comm
    if units is not None and len(units):
        mcrs = _overlap_crs(cfg, units)
        problems += _overlap_problems(units, code_col="unit_code", what="unit", path=uc.path, metric_crs=mcrs)
        if len(comm) and uc.communities_path is not None:
            problems += _overlap_problems(comm, code_col="community_code", what="community",
                                         path=uc.communities_path, metric_crs=mcrs)
    if problems:
        raise LayerError(f"{len(problems)} problem(s) in the units layers:\n"
                         + "\n".join("  " + p for p in problems))
    assert units is not None
    for w in warnings:
        log.warning(w)
    log.info("Read %d units and %d communities from %s", len(units), len(comm), uc.path)
    return Units(units=units, communities=comm, warnings=tuple(warnings))


def _units_from_osm_config(cfg: Config) -> Units:
    """Units from the administrative boundaries of an OSM file (``units.source = "osm"``, or a
    ``units.path`` ending in .osm/.pbf): ``units.admin_level`` picks the level, ``units.osm_code_tag``
    the tag used as code ("ISO3166-2", "ref"; boundaries without it are skipped and logged: extracts
    carry their neighbours' boundaries too; "" = relation id), ``units.default_type`` /
    ``units.default_class`` the type and class given to every unit (default 街道 / from the type)."""
    uc = cfg.units
    utype = uc.default_type or "街道"
    code_tag = uc.osm_code_tag
    uclass = uc.default_class or UNIT_DEFAULT_CLASS.get(utype, "")
    if not uclass:
        raise LayerError(f"{uc.path}: units.default_type = {utype!r} needs a class: set "
                         f"units.default_class = \"城区\" (a district's built-up city: the 15-minute meal "
                         f"radius) or \"郊区\" (a county or rural district: 30 minutes)")
    gdf = units_from_osm(uc.path, admin_level=uc.admin_level, unit_type=utype, unit_class=uclass,
                         code_tag=code_tag, tags={code_tag: "*"} if code_tag else None)
    if gdf.empty:
        raise LayerError(f"{uc.path}: no administrative boundary of admin_level={uc.admin_level}"
                         + (f" with a {code_tag!r} tag" if code_tag else "")
                         + " builds a polygon; check units.admin_level / units.osm_code_tag")
    dup = [c for c, n in Counter(gdf["unit_code"]).items() if n > 1]
    if dup:
        raise LayerError(f"{uc.path}: duplicate unit codes from tag {code_tag!r}: "
                         f"{', '.join(map(repr, dup))}; set units.osm_code_tag = \"\" to use relation ids")
    units = gdf[["unit_code", "unit_name", "unit_type", "unit_class", "area_type", "geometry"]].copy()
    overlaps = _overlap_problems(units, code_col="unit_code", what="unit", path=uc.path,
                                metric_crs=_overlap_crs(cfg, units))
    if overlaps:
        raise LayerError(overlaps[0])
    return Units(units=gpd.GeoDataFrame(units, geometry="geometry", crs="EPSG:4326").reset_index(drop=True),
                 communities=_empty_communities())


def resolve_metric_crs(cfg: Config, units_wgs84: gpd.GeoDataFrame) -> str:
    """The metric CRS: ``cfg.region.metric_crs`` or, when "auto", the UTM zone (EPSG:326xx north /
    327xx south) of the centroid of the units' bounding box."""
    if cfg.region.metric_crs != "auto":
        log.info("Metric CRS %s (from region.metric_crs)", cfg.region.metric_crs)
        return cfg.region.metric_crs
    minx, miny, maxx, maxy = units_wgs84.to_crs("EPSG:4326").total_bounds
    crs = utm_crs_for((minx + maxx) / 2, (miny + maxy) / 2)
    log.info("Metric CRS %s (UTM zone of the study area's centre %.4f, %.4f; region.metric_crs = \"auto\")",
             crs, (minx + maxx) / 2, (miny + maxy) / 2)
    return crs


def _vertices_as_written(polygons: gpd.GeoDataFrame | gpd.GeoSeries, coords: str
                         ) -> tuple[np.ndarray, np.ndarray]:
    """The distinct vertices of ``polygons`` (any CRS) as the file wrote them: lon/lat in WGS84, or
    shifted forward to GCJ-02 / BD-09 when ``coords`` says the file was (the reader back-shifted them)."""
    gs = polygons.geometry if isinstance(polygons, gpd.GeoDataFrame) else polygons
    if gs.crs is not None and gs.crs.to_epsg() not in GEOGRAPHIC_AS_WGS84:
        gs = gs.to_crs("EPSG:4326")
    xy = shapely.get_coordinates(np.asarray(gs.values))
    if not len(xy):
        return np.zeros(0), np.zeros(0)
    xy = np.unique(np.round(xy, 9), axis=0)  # shared borders and closing vertices once
    return as_written(xy[:, 0], xy[:, 1], coords)


def units_shift_warning(units: gpd.GeoDataFrame | gpd.GeoSeries, roads: gpd.GeoSeries | None,
                        metric_crs: str, coords: str = "wgs84", *, key: str = "units.coords",
                        what: str = "unit") -> str | None:
    """THE shift check of unit (or community) polygons against the road network, once it exists.

    Parameters
    ----------
    units
        The polygons as read (:func:`read_units`: EPSG:4326, already back-shifted when ``coords`` is
        gcj02/bd09; any other CRS is converted).
    roads
        Road lines in ``metric_crs`` (the network's road frame, or ``osm_road_lines``).
    coords
        The ``coords`` the layer was declared with (``cfg.units.coords`` / ``community_coords``).
    key
        The config key of that ``coords``, named in the fix.

    Returns
    -------
    The warning of :func:`~coverage.layers.placement.boundary_shift_warning` ("unit boundaries look
    shifted: ... set units.coords = "gcj02"", or "cannot check: only N points lie within the road
    network ..."), or None when the outlines fit the roads as declared (or there are no roads).
    """
    if roads is None:
        return None
    lon, lat = _vertices_as_written(units, coords)
    return boundary_shift_warning(lon, lat, roads, metric_crs, key, coords=coords, what=what)


def units_shift_warnings(uc: UnitsConfig, units: gpd.GeoDataFrame, communities: gpd.GeoDataFrame | None,
                         *, roads: gpd.GeoSeries | None, metric_crs: str) -> list[str]:
    """The shift warnings of the units and (when given) the communities (:func:`units_shift_warning`
    with their declared coords), each logged; [] when both fit the roads or there are no roads."""
    out = []
    w = units_shift_warning(units, roads, metric_crs, uc.coords, key="units.coords", what="unit")
    if w:
        out.append(f"{uc.path}: {w}")
    if communities is not None and len(communities) and uc.communities_path is not None:
        w = units_shift_warning(communities, roads, metric_crs, uc.community_coords,
                                key="units.communities_coords", what="community")
        if w:
            out.append(f"{uc.communities_path}: {w}")
    for w in out:
        log.warning(w)
    return out
