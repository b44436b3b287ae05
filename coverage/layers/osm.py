"""Layers from OpenStreetMap files (.osm, .osm.pbf) read with osmium: facility candidates by tag,
administrative boundaries as units, and highway lines for the coordinate-shift check.

The tag rules themselves (:data:`~coverage.layers.vocabulary.OSM_KIND_RULES`) are vocabulary; this
module only walks the file and builds geometries (EPSG:4326, or the metric CRS for the road lines).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import shapely
from shapely.geometry.base import BaseGeometry

from coverage.config import UNIT_CLASSES, UNIT_TYPES
from coverage.errors import LayerError
from coverage.layers.vocabulary import OSM_CANDIDATE, OsmRules, is_osm_candidate, osm_match, osm_rules

log = logging.getLogger(__name__)

__all__ = ["facilities_from_osm", "osm_road_lines", "units_from_osm"]

_OSM_FACILITY_COLUMNS = ["osm_id", "kind", "source_type", "name", "beds", "nursing_beds", "childcare_slots",
                         "address", "operator", "tags", "geometry"]
#: tags that say what an unmapped candidate is (its ``source_type``)
_OSM_KEY_TAGS = ("amenity", "social_facility", "social_facility:for", "healthcare")


def _osm_facility_row(osm_id: str, tags: Mapping[str, str], geom: BaseGeometry | None,
                      rules: OsmRules) -> dict[str, Any]:
    """One row of :func:`facilities_from_osm`: kind by rule, ``capacity`` read as childcare slots for
    childcare kinds and as beds (when ``beds`` is not tagged) for residential elderly-care kinds.
    ``source_type`` is the rule that decided ("amenity=clinic"), or the object's key tags when none did."""
    kind, rule = osm_match(tags, rules)
    source = rule or ";".join(f"{k}={tags[k]}" for k in _OSM_KEY_TAGS if k in tags)
    cap = tags.get("capacity")
    addr = " ".join(tags[k] for k in ("addr:street", "addr:housenumber", "addr:city") if k in tags)
    beds = tags.get("beds")
    slots = None
    if kind in ("childcare", "kindergarten", "old_young_complex"):
        slots = cap
    elif beds is None and kind in ("elderly_institution", "welfare_home", "embedded_nursing_home"):
        beds = cap
    return {"osm_id": osm_id, "kind": kind, "source_type": source,
            "name": tags.get("name") or tags.get("name:zh"),
            "beds": beds, "nursing_beds": None, "childcare_slots": slots,
            "address": addr or None, "operator": tags.get("operator"),
            "tags": json.dumps(dict(tags), ensure_ascii=False), "geometry": geom}


def _way_geometry(coords: list[tuple[float, float]]) -> BaseGeometry | None:
    """Closed ways as polygons, open ones as lines (rejected later), fewer than 2 nodes as None."""
    if len(coords) >= 4 and coords[0] == coords[-1]:
        return shapely.Polygon(coords)
    if len(coords) >= 2:
        return shapely.LineString(coords)
    return None


def facilities_from_osm(path: str | Path, *, kinds: Mapping[str, str] | None = None) -> gpd.GeoDataFrame:
    """Facility candidates of an OSM file (.osm, .osm.pbf), mapped to kinds with :data:`OSM_KIND_RULES`.

    Returns
    -------
    GeoDataFrame (EPSG:4326) with ``osm_id`` ("n123"/"w45"/"r6"), ``kind`` (canonical or missing when
    the tags match no rule: None, or NaN under pandas 3's string dtype), ``source_type`` (the matching
    rule, "amenity=clinic", or the key tags of an unmapped object), ``name``, ``beds``, ``nursing_beds``,
    ``childcare_slots`` (text as tagged), ``address``, ``operator``, ``tags`` (JSON) and the geometry:
    nodes as points, closed ways and multipolygon relations as polygons, open ways as lines (rejected
    later).
    """
    import osmium

    path = Path(path)
    rules = osm_rules(kinds)
    rows: list[dict[str, Any]] = []
    wkb = osmium.geom.WKBFactory()
    keys = tuple(sorted({*OSM_CANDIDATE, *(k for cond, _ in rules for k in cond)}))

    def wanted(t: Any) -> bool:  # cheap test on the osmium TagList before building a dict
        return any(k in t for k in keys)

    class _H(osmium.SimpleHandler):
        def node(self, n: Any) -> None:
            if not n.tags or not wanted(n.tags):
                return
            tags = dict(n.tags)
            if is_osm_candidate(tags, rules):
                geom = shapely.Point(n.location.lon, n.location.lat) if n.location.valid() else None
                rows.append(_osm_facility_row(f"n{n.id}", tags, geom, rules))

        def way(self, w: Any) -> None:
            if not w.tags or not wanted(w.tags):
                return
            tags = dict(w.tags)
            if not is_osm_candidate(tags, rules):
                return
            try:
                coords = [(nd.lon, nd.lat) for nd in w.nodes]
            except osmium.InvalidLocationError:
                rows.append(_osm_facility_row(f"w{w.id}", tags, None, rules))
                return
            rows.append(_osm_facility_row(f"w{w.id}", tags, _way_geometry(coords), rules))

        def area(self, a: Any) -> None:
            if a.from_way() or not wanted(a.tags):
                return  # closed ways are handled in way()
            tags = dict(a.tags)
            if is_osm_candidate(tags, rules):
                try:
                    geom = shapely.from_wkb(bytes.fromhex(wkb.create_multipolygon(a)))
                except RuntimeError:
                    geom = None
                rows.append(_osm_facility_row(f"r{a.orig_id()}", tags, geom, rules))

    try:
        _H().apply_file(str(path), locations=True)
    except RuntimeError as exc:
        raise LayerError(f"{path}: cannot be read as an OSM file ({exc})") from None
    gdf = gpd.GeoDataFrame(rows or None, columns=_OSM_FACILITY_COLUMNS, geometry="geometry", crs="EPSG:4326")
    log.info("Read %d facility candidates from OSM file %s (%d mapped to a kind)", len(gdf), path,
             int(gdf["kind"].notna().sum()))
    return gdf


def units_from_osm(path: str | Path, *, admin_level: int | str, unit_type: str = "街道",
                   unit_class: str = "", area_type: str = "mixed", code_tag: str = "",
                   tags: Mapping[str, str] | None = None) -> gpd.GeoDataFrame:
    """Administrative boundary relations of an OSM file as units (EPSG:4326).

    Parameters
    ----------
    path
        .osm / .osm.pbf file (complete relations are needed; incomplete ones are skipped by osmium).
    admin_level
        OSM ``admin_level`` to read (8: Liechtenstein's 11 Gemeinden; 4: Comoros' 3 islands).
    unit_type, unit_class, area_type
        Values given to every unit; ``unit_class`` defaults from the type (街道 -> 城区, 镇/乡 -> 郊区).
    code_tag
        Tag giving ``unit_code`` (e.g. ``"ref"`` or ``"ISO3166-2"``); empty or missing: the relation id.
    tags
        Extra tag filters that must all match (e.g. ``{"ISO3166-2": "*"}``).

    Returns
    -------
    GeoDataFrame with unit_code, unit_name, unit_type, unit_class, area_type, osm_id, geometry.
    """
    import osmium

    if unit_type not in UNIT_TYPES:
        raise LayerError(f"unit_type {unit_type!r}: expected one of {', '.join(UNIT_TYPES)}")
    cls = unit_class or ("城区" if unit_type == "街道" else "郊区")
    if cls not in UNIT_CLASSES:
        raise LayerError(f"unit_class {unit_class!r}: expected one of {', '.join(UNIT_CLASSES)}")
    level = str(admin_level)
    wkb = osmium.geom.WKBFactory()
    rows: list[dict[str, Any]] = []

    class _H(osmium.SimpleHandler):
        def area(self, a: Any) -> None:
            t = a.tags
            if a.from_way() or t.get("boundary") != "administrative" or t.get("admin_level") != level:
                return
            if tags and not all(k in t and (v == "*" or t.get(k) == v) for k, v in tags.items()):
                return
            try:
                geom = shapely.from_wkb(bytes.fromhex(wkb.create_multipolygon(a)))
            except RuntimeError:
                return
            rid = str(a.orig_id())
            rows.append({"unit_code": (t.get(code_tag) if code_tag else None) or rid,
                         "unit_name": t.get("name") or rid, "unit_type": unit_type, "unit_class": cls,
                         "area_type": area_type, "osm_id": rid, "geometry": shapely.make_valid(geom)})

    path = Path(path)
    if not path.exists():
        raise LayerError(f"{path}: OSM file not found")
    _H().apply_file(str(path), locations=True)
    if not rows:
        raise LayerError(f"{path}: no complete boundary=administrative relation with admin_level={level}")
    gdf = gpd.GeoDataFrame(rows, geometry="geometry", crs="EPSG:4326").sort_values("unit_code")
    log.info("Read %d admin_level=%s units from %s", len(gdf), level, path)
    return gdf.reset_index(drop=True)


def osm_road_lines(path: Path, metric_crs: str, bbox: tuple[float, float, float, float]) -> gpd.GeoSeries:
    """highway=* ways of an OSM file touching ``bbox`` (lon/lat) as lines in the metric CRS (for the
    shift warning of :func:`~coverage.layers.check.check_layers` only; routing uses
    :mod:`coverage.network`)."""
    import osmium

    lines: list[BaseGeometry] = []
    x0, y0, x1, y1 = bbox

    class _H(osmium.SimpleHandler):
        def way(self, w: Any) -> None:
            if "highway" not in w.tags:
                return
            try:
                xy = [(n.lon, n.lat) for n in w.nodes]
            except osmium.InvalidLocationError:
                return
            if len(xy) >= 2 and any(x0 <= x <= x1 and y0 <= y <= y1 for x, y in xy):
                lines.append(shapely.LineString(xy))

    _H().apply_file(str(path), locations=True)
    return gpd.GeoSeries(lines, crs="EPSG:4326").to_crs(metric_crs)


#: OSM tags of water drawn as context on the maps (areas, then waterway lines)
WATER_AREA_TAGS = (("natural", "water"), ("waterway", "riverbank"), ("landuse", "reservoir"),
                   ("landuse", "basin"), ("water", None))
WATER_LINE_TAGS = ("river", "canal", "stream")


def water_from_osm(path: str | Path, bbox: tuple[float, float, float, float]) -> gpd.GeoSeries:
    """Water of an OSM file touching ``bbox`` (lon/lat): lakes, reservoirs and riverbanks as polygons,
    rivers, canals and streams as lines, in EPSG:4326 (the maps' context layer; nothing is routed on
    it). Empty when the file maps none."""
    import osmium

    x0, y0, x1, y1 = bbox
    wkb = osmium.geom.WKBFactory()
    geoms: list[BaseGeometry] = []

    def inside(g: BaseGeometry) -> bool:
        gx0, gy0, gx1, gy1 = g.bounds
        return not (gx1 < x0 or gx0 > x1 or gy1 < y0 or gy0 > y1)

    class _H(osmium.SimpleHandler):
        def area(self, a: Any) -> None:
            tags = a.tags
            if not any(k in tags and (v is None or tags[k] == v) for k, v in WATER_AREA_TAGS):
                return
            try:
                g = shapely.from_wkb(bytes.fromhex(wkb.create_multipolygon(a)))
            except (RuntimeError, osmium.InvalidLocationError, ValueError):
                return
            if g is not None and not g.is_empty and inside(g):
                geoms.append(g)

        def way(self, w: Any) -> None:
            if w.tags.get("waterway") not in WATER_LINE_TAGS:
                return
            try:
                xy = [(n.lon, n.lat) for n in w.nodes]
            except osmium.InvalidLocationError:
                return
            if len(xy) >= 2:
                g = shapely.LineString(xy)
                if inside(g):
                    geoms.append(g)

    _H().apply_file(str(path), locations=True)
    return gpd.GeoSeries(geoms, crs="EPSG:4326")
