"""The 街道/乡镇 units and 社区/村 communities of a region, and the metric CRS they decide.

Reads the unit polygons (vector file, or OSM administrative boundaries), checks codes, types, classes
and area types as a whole layer (every problem collected, one :class:`~coverage.errors.LayerError`),
repairs invalid polygons (warned) and returns them in EPSG:4326. :func:`resolve_metric_crs` gives
the projected CRS every later stage measures in.
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

from coverage.config import UNIT_CLASSES, UNIT_TYPES, Config, UnitsConfig
from coverage.coords import utm_crs_for
from coverage.errors import LayerError
from coverage.layers.osm import units_from_osm
from coverage.layers.readers import GEOGRAPHIC_AS_WGS84, read_vector
from coverage.layers.vocabulary import code_str

log = logging.getLogger(__name__)

__all__ = ["Units", "read_units", "resolve_metric_crs"]

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


def _read_polygons(path: Path, *, layer: str, crs: str, encoding: str, key: str, problems: list[str],
                   warnings: list[str]) -> gpd.GeoDataFrame | None:
    """A polygon layer in EPSG:4326, or None with the reason appended to ``problems``."""
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
    return gdf


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
    for code, t, c, a in zip(codes, types, classes, areas, strict=True):
        if t not in UNIT_TYPES:
            problems.append(f"{uc.path}: unit {code!r}: {uc.type_field} = {t!r}, expected 街道, 镇 or 乡")
        if not c:
            c = "城区" if t == "街道" else "郊区"
        elif c not in UNIT_CLASSES:
            problems.append(f"{uc.path}: unit {code!r}: {uc.class_field} = {c!r}, expected 城区 or 郊区 "
                            f"(or empty for the default from the type)")
        out_cls.append(c)
        an = _AREA_TYPES.get(a.lower() if a.isascii() else a) if a else "mixed"
        if an is None:
            problems.append(f"{uc.path}: unit {code!r}: {uc.area_type_field} = {a!r}, expected old, "
                            f"new or mixed")
        out_area.append(an or "mixed")
    return out_cls, out_area


def _unit_table(uc: UnitsConfig, gdf: gpd.GeoDataFrame, problems: list[str],
                warnings: list[str]) -> gpd.GeoDataFrame | None:
    """The units of a polygon layer with the canonical columns, or None when configured fields are missing."""
    cols = list(gdf.columns)
    missing = [f"units.{k} = {getattr(uc, k)!r}" for k in ("code_field", "name_field", "type_field")
               if getattr(uc, k) not in cols]
    if missing:
        problems.append(f"{uc.path}: field(s) not found: {', '.join(missing)} (columns: "
                        f"{', '.join(c for c in cols if c != 'geometry')}); fix the config keys")
        return None
    codes = [code_str(v) for v in gdf[uc.code_field]]
    types = [code_str(v) for v in gdf[uc.type_field]]
    classes = [code_str(v) for v in gdf[uc.class_field]] if uc.class_field in cols else [""] * len(gdf)
    areas = [code_str(v) for v in gdf[uc.area_type_field]] if uc.area_type_field in cols else [""] * len(gdf)
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
    missing = [f"units.{k} = {getattr(uc, k)!r}" for k in keys if getattr(uc, k) not in cg.columns]
    if missing:
        problems.append(f"{path}: field(s) not found: {', '.join(missing)} (columns: "
                        f"{', '.join(c for c in cg.columns if c != 'geometry')})")
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
                         problems=problems, warnings=warnings)
    units = _unit_table(uc, gdf, problems, warnings) if gdf is not None else None
    comm = _empty_communities()
    if uc.communities_path is not None:
        cg = _read_polygons(uc.communities_path, layer=uc.communities_layer, crs=uc.crs, encoding=uc.encoding,
                            key="units.communities_path", problems=problems, warnings=warnings)
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
    gdf = units_from_osm(uc.path, admin_level=uc.admin_level, unit_type=utype, unit_class=uc.default_class,
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
