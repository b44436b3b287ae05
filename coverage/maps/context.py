"""The offline context layer: the region's own roads, drawn grey under the data so no page is blank
around the units when there is no basemap.

The roads come from the build's ``network.gpkg`` (layers ``walk_edges`` and ``delivery_edges``, each
with the OSM ``highway`` tag of its edge), i.e. from the region's own OSM file: no tile or remote
request. They are merged into one (multi)line per road class, simplified and drawn in a pane below the
overlay pane, non-interactive (no tooltip, no click), widths by class. The overview draws the main
roads only (:data:`OVERVIEW_CLASSES`) to keep the page small; a unit page draws every class within its
surroundings box.

Water: the build writes the water of the same OSM file (lakes, reservoirs, riverbanks, rivers, canals,
streams) as layer ``water`` of ``network.gpkg``; it is drawn light blue under the roads where present
(a road-layer network has none, and then nothing is drawn: nothing is invented).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from coverage.maps.page import to_page

__all__ = ["OVERVIEW_CLASSES", "ROAD_CLASSES", "ROADS_NAME", "ROADS_PANE", "read_roads", "read_water",
           "road_class", "roads_layer", "roads_legend"]

#: road class -> (OSM highway values, line width px, colour, label); bottom to top
ROAD_CLASSES: dict[str, tuple[frozenset[str], float, str, str]] = {
    "path": (frozenset({"footway", "path", "steps", "pedestrian", "cycleway", "bridleway", "corridor",
                        "track"}), 0.6, "#b0b0b0", "步行道/小路 (footways, tracks)"),
    "minor": (frozenset({"residential", "unclassified", "service", "living_street", "road", "busway"}),
              1.2, "#a0a0a0", "支路 (residential, service)"),
    "medium": (frozenset({"secondary", "tertiary", "secondary_link", "tertiary_link"}), 2.2, "#8c8c8c",
               "次干路 (secondary, tertiary)"),
    "major": (frozenset({"motorway", "trunk", "primary", "motorway_link", "trunk_link", "primary_link"}),
              3.4, "#7a7a7a", "主干路 (trunk, primary)"),
}
#: the classes drawn on the overview (trunk .. tertiary)
OVERVIEW_CLASSES = ("medium", "major")
#: Leaflet pane of the roads: above the tiles (200), below the data's overlay pane (400)
ROADS_PANE = "cov-context"
ROADS_NAME = "道路 (roads, OSM)"
NETWORK_LAYERS = ("walk_edges", "delivery_edges")


def road_class(highway: Any) -> str | None:
    """The class of an OSM ``highway`` value (a list written as text takes its highest class)."""
    vals = re.findall(r"[a-z_]+", str(highway).lower())
    found = [c for c, (tags, *_rest) in ROAD_CLASSES.items() if any(v in tags for v in vals)]
    return found[-1] if found else None


def read_roads(build_dir: Path, crs: Any, *, classes: Sequence[str] = tuple(ROAD_CLASSES),
               box: shapely.Polygon | None = None, simplify_m: float = 0.0) -> gpd.GeoDataFrame:
    """One row per road class present (``road_class``, merged (multi)line geometry in ``crs``) from
    ``network.gpkg`` (both networks, each edge once), clipped to ``box``; empty when the file or its
    edge layers are missing."""
    path = build_dir / "network.gpkg"
    empty = gpd.GeoDataFrame({"road_class": pd.Series(dtype=str)}, geometry=[], crs=crs)
    if not path.is_file():
        return empty
    have = {str(n) for n, _g in pyogrio.list_layers(path)}
    parts = []
    for layer in (n for n in NETWORK_LAYERS if n in have):
        info = pyogrio.read_info(path, layer=layer)
        if "highway" not in list(info["fields"]):
            continue
        bbox = None
        if box is not None:
            b = gpd.GeoSeries([box], crs=crs)
            if info["crs"] and gpd.GeoSeries([], crs=info["crs"]).crs != b.crs:
                b = b.to_crs(info["crs"])
            bbox = tuple(b.total_bounds)
        g = gpd.read_file(path, layer=layer, columns=["highway"], bbox=bbox)
        if g.crs is not None and crs is not None and g.crs != crs:
            g = g.to_crs(crs)
        parts.append(g)
    if not parts:
        return empty
    g = pd.concat(parts, ignore_index=True)
    g = gpd.GeoDataFrame(g, geometry="geometry", crs=crs)
    g["road_class"] = [road_class(h) for h in g["highway"]]
    g = g[g["road_class"].isin(list(classes)) & g.geometry.notna()]
    # each edge once: the two networks (and the two directions of an edge) share geometries
    g = g[~pd.Series(shapely.to_wkb(shapely.normalize(g.geometry.values)), index=g.index).duplicated()]
    if box is not None and len(g):
        g = g.set_geometry(g.geometry.intersection(box))
        g = g[~g.geometry.is_empty]
    rows = []
    for c in (c for c in ROAD_CLASSES if c in set(g["road_class"])):
        lines = shapely.line_merge(shapely.union_all(g.geometry[g["road_class"] == c].to_numpy()))
        if simplify_m > 0:
            lines = shapely.simplify(lines, simplify_m, preserve_topology=False)
        rows.append({"road_class": c, "geometry": lines})
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=crs) if rows else empty


WATER_STYLE = {"color": "#6baed6", "weight": 1.0, "fillColor": "#c6dbef", "fillOpacity": 0.8, "opacity": 0.9}


def read_water(build_dir: Path, crs: Any, *, box: shapely.Polygon | None = None,
               simplify_m: float = 0.0) -> gpd.GeoDataFrame:
    """Layer ``water`` of the build's ``network.gpkg`` as rows ``road_class = "water"`` (so it draws in
    the same context layer), clipped to ``box``; empty when the build has none."""
    path = build_dir / "network.gpkg"
    empty = gpd.GeoDataFrame({"road_class": pd.Series(dtype=str)}, geometry=[], crs=crs)
    if not path.is_file() or "water" not in {str(n) for n, _g in pyogrio.list_layers(path)}:
        return empty
    g = gpd.read_file(path, layer="water", bbox=None if box is None else tuple(box.bounds))
    if g.crs is not None and crs is not None and g.crs != crs:
        g = g.to_crs(crs)
    geoms = g.geometry.to_numpy()
    if box is not None:
        geoms = shapely.intersection(geoms, box)
    geoms = geoms[~shapely.is_empty(geoms)]
    if not len(geoms):
        return empty
    merged = shapely.union_all(geoms)
    if simplify_m > 0:
        merged = shapely.simplify(merged, simplify_m, preserve_topology=True)
    return gpd.GeoDataFrame({"road_class": ["water"]}, geometry=[merged], crs=crs)


def roads_layer(roads: gpd.GeoDataFrame, basemap: str, *, digits: int = 5) -> folium.GeoJson | None:
    """The roads (and water rows, ``road_class = "water"``) as one non-interactive GeoJson overlay in
    :data:`ROADS_PANE` (shown by default), coordinates rounded to ``digits`` decimals (5: about 1 m);
    None without roads."""
    if not len(roads):
        return None
    page = to_page(roads, basemap)
    page = page.set_geometry(shapely.transform(page.geometry.values, lambda xy: np.round(xy, digits)))
    feats = []
    for c, geom in zip(page["road_class"], page.geometry.values, strict=True):
        if geom is None or geom.is_empty:
            continue
        feats.append({"type": "Feature", "properties": {"c": str(c)},
                      "geometry": shapely.geometry.mapping(geom)})
    if not feats:
        return None
    styles = {c: {"color": col, "weight": w, "opacity": 0.9, "lineCap": "round", "lineJoin": "round"}
              for c, (_tags, w, col, _lab) in ROAD_CLASSES.items()}
    styles["water"] = WATER_STYLE

    def style(feature: dict[str, Any]) -> dict[str, Any]:
        return styles.get(feature["properties"]["c"], styles["minor"])

    return folium.GeoJson({"type": "FeatureCollection", "features": feats}, name=ROADS_NAME,
                          style_function=style, overlay=True, show=True, pane=ROADS_PANE, interactive=False)


def roads_legend(roads: gpd.GeoDataFrame) -> dict[str, Any]:
    present = set(roads["road_class"])
    items = [{"color": col, "label": lab, "shape": "line", "width": w}
             for c, (_tags, w, col, lab) in reversed(ROAD_CLASSES.items()) if c in present]
    if "water" in present:
        items.append({"color": WATER_STYLE["fillColor"], "label": "水系 (water)"})
    note = ("来自本区域 OSM 文件 (network.gpkg)" if "water" in present
            else "来自本区域路网 (network.gpkg); 无水系数据 (no water in the build)")
    return {"title": ROADS_NAME, "items": items, "note": note}


def add_pane(m: folium.Map) -> None:
    """The roads' pane, between the tiles and the data, ignoring the pointer."""
    folium.map.CustomPane(ROADS_PANE, z_index=350, pointer_events=False).add_to(m)
