"""folium page plumbing: the page shell, local assets, basemap tiles, GeoJSON layers, legends, the
offline check and writing files.

Pages are folium maps (``folium.Map`` in a Figure): overlays are ``folium.GeoJson`` layers with style
functions, ``GeoJsonPopup``/``GeoJsonTooltip``, ``LayerControl`` and the scale bar; header, legends,
side panel and table are escaped HTML elements of the Figure. folium's CDN scripts and stylesheets are
replaced per map by the local files of ``assets/`` and every rendered page is checked
(:func:`check_offline`).

Every municipal string reaches the pages escaped: server-side HTML goes through :func:`html.escape`,
and GeoJSON properties are escaped by :func:`features` before folium (whose popups/tooltips insert
them as HTML) sees them.
"""

from __future__ import annotations

import hashlib
import html
import json
import math
import re
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import shapely
from branca.element import MacroElement
from jinja2 import Template

from coverage.config import BASEMAPS
from coverage.errors import MapsError
from coverage.maps.style import NODATA, safe_color

__all__ = ["ASSETS_DIR", "ASSET_FILES", "PAGE_CSS", "PAGE_JS", "HtmlBlock", "Legend", "PageFigure",
           "PageScript", "check_offline", "copy_assets", "features", "geojson", "new_map", "render",
           "snapping_rule_text", "tiles", "to_page", "unit_page_name", "write_text"]

ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"
#: files copied to maps/<region>/assets/ (relative to coverage/assets/)
ASSET_FILES = ("leaflet/leaflet.js", "leaflet/leaflet.css", "leaflet/images/layers.png",
               "leaflet/images/layers-2x.png", "leaflet/LICENSE", "coverage-map.js", "coverage-map.css")
#: what every page loads, relative to the page (folium's CDN defaults are replaced per map)
PAGE_JS: tuple[tuple[str, str], ...] = (("leaflet", "assets/leaflet/leaflet.js"),
                                        ("coverage_map", "assets/coverage-map.js"))
PAGE_CSS: tuple[tuple[str, str], ...] = (("leaflet_css", "assets/leaflet/leaflet.css"),
                                         ("coverage_map_css", "assets/coverage-map.css"))

#: a legend {"title", "items": [{"color", "label", "shape"?}]} and the layer it belongs to
Legend = tuple[dict[str, Any], folium.GeoJson]


def unit_page_name(unit_code: str) -> str:
    """File name of a unit's page, safe whatever the code holds.

    A code of ``[A-Za-z0-9_-]`` only (not starting with "-") is kept as it is (``610101001.html``);
    anything else becomes its safe characters, a dot and 12 hex digits of its SHA-256
    (``a_touch_tmp_x.3f2a...html``). Kept codes hold no dot, so a slugged name never equals a kept one,
    and two slugged codes differ by their hash; no name starts with "-" or ".", and no shell or path
    character survives.
    """
    code = str(unit_code)
    if re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_\-]{0,99}", code):
        return f"{code}.html"
    slug = re.sub(r"[^A-Za-z0-9_\-]+", "_", code).strip("_-")[:60]
    digest = hashlib.sha256(code.encode("utf-8")).hexdigest()[:12]
    return f"{slug or 'unit'}.{digest}.html"


def tiles(basemap: str, tianditu_key: str) -> list[dict[str, Any]]:
    """Tile layers of a basemap (validated: a :class:`MapsError` names the fix)."""
    if basemap not in BASEMAPS:
        raise MapsError(f"basemap = {basemap!r}: expected one of {', '.join(BASEMAPS)} "
                        "([maps] basemap in coverage.toml)")
    if basemap == "none":
        return []
    if basemap == "osm":
        return [{"url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png", "subdomains": "abc", "max_zoom": 19,
                 "attribution": "© OpenStreetMap contributors", "name": "OpenStreetMap"}]
    if basemap == "amap":
        return [{"url": "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8"
                        "&x={x}&y={y}&z={z}",
                 "subdomains": "1234", "max_zoom": 18, "attribution": "© 高德地图 (GCJ-02)",
                 "name": "高德地图"}]
    if not tianditu_key:
        raise MapsError("basemap = 'tianditu' needs a key: set [maps] tianditu_key in coverage.toml "
                        "(or use basemap = 'none' offline)")
    tmpl = ("https://t{s}.tianditu.gov.cn/%s_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER=%s"
            "&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}&tk=")
    return [{"url": tmpl % (lyr, lyr) + tianditu_key, "subdomains": "01234567", "max_zoom": 18,
             "attribution": "© 天地图", "name": f"天地图 {lyr}"} for lyr in ("vec", "cva")]


def snapping_rule_text(run_info: dict[str, Any]) -> str:
    """The snapping rule sentence of run_info.json (key ``snapping_rule``, else any ``*snap*`` text)."""
    for key in ("snapping_rule", "snap_rule", "snapping"):
        v = run_info.get(key)
        if isinstance(v, str) and v:
            return v
        if isinstance(v, dict):
            for k in ("rule", "text", "rule_text"):
                if isinstance(v.get(k), str) and v[k]:
                    return v[k]
    for k, v in run_info.items():
        if "snap" in k.lower() and isinstance(v, str) and v:
            return v
    return "snapping rule not recorded in run_info.json"


# --------------------------------------------------------------------------------------------
# Geometry to page coordinates, GeoJSON
# --------------------------------------------------------------------------------------------


def _shift_fn(basemap: str) -> Callable[[np.ndarray], np.ndarray] | None:
    if basemap != "amap":
        return None
    from coverage.coords import wgs84_to_gcj02  # AMap tiles are drawn in GCJ-02

    def shift(xy: np.ndarray) -> np.ndarray:
        lon, lat = wgs84_to_gcj02(xy[:, 0], xy[:, 1])
        return np.column_stack([lon, lat])

    return shift


def to_page(gdf: gpd.GeoDataFrame, basemap: str, *, simplify_m: float = 0.0) -> gpd.GeoDataFrame:
    """Reproject to WGS84 (and shift into GCJ-02 for the amap basemap), rounding to ~0.1 m."""
    if gdf.crs is None:
        raise MapsError("a build layer has no CRS; re-run the pipeline: make run REGION=<region>")
    g = gdf
    if simplify_m > 0 and g.crs.is_projected and len(g):
        g = g.set_geometry(g.geometry.simplify(simplify_m, preserve_topology=True))
    g = g.to_crs("EPSG:4326")
    shift = _shift_fn(basemap)
    geoms = g.geometry.values
    if shift is not None and len(g):
        geoms = shapely.transform(geoms, shift)
    geoms = shapely.transform(geoms, lambda xy: np.round(xy, 6))
    return g.set_geometry(gpd.GeoSeries(geoms, index=g.index, crs="EPSG:4326"))


def features(gdf: gpd.GeoDataFrame, props: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    """GeoJSON FeatureCollection with string ids; every ``str`` property is HTML-escaped.

    folium's GeoJsonPopup/GeoJsonTooltip insert property values into the page as HTML, so the
    escaping happens here, once, for every municipal string. Keys ending in ``_html`` carry markup
    built from already escaped parts and are passed through.
    """
    feats: list[dict[str, Any]] = []
    for row, geom in zip(gdf.itertuples(index=False), gdf.geometry.values, strict=True):
        if geom is None or geom.is_empty:
            continue
        p = {k: (html.escape(v) if isinstance(v, str) and not k.endswith("_html") else v)
             for k, v in props(row).items()}
        feats.append({"type": "Feature", "id": str(len(feats)), "properties": p,
                      "geometry": json.loads(shapely.to_geojson(geom))})
    return {"type": "FeatureCollection", "features": feats}


def geojson(fc: dict[str, Any], name: str, style: dict[str, Any], *, overlay: bool = True, show: bool = True,
            popup_fields: Sequence[tuple[str, str]] = (), tooltip_key: str = "",
            marker: folium.CircleMarker | None = None) -> folium.GeoJson:
    """A folium GeoJson layer: ``style`` plus each feature's ``_color`` as fill; popup and tooltip from
    properties.

    ``popup_fields`` = (property, label); labels are escaped here, values were escaped by :func:`features`.
    """
    base = dict(style)

    def style_function(feature: dict[str, Any]) -> dict[str, Any]:
        s = dict(base)
        color = (feature.get("properties") or {}).get("_color")
        if color:
            s["fillColor"] = color
        return s

    has = bool(fc["features"])
    popup = (folium.GeoJsonPopup(fields=[k for k, _ in popup_fields],
                                 aliases=[html.escape(lab) for _, lab in popup_fields], max_width=360,
                                 class_name="cov-popup") if popup_fields and has else None)
    tooltip = (folium.GeoJsonTooltip(fields=[tooltip_key], labels=False, sticky=True)
               if tooltip_key and has else None)
    return folium.GeoJson(fc, name=html.escape(name), style_function=style_function, overlay=overlay,
                          show=show, popup=popup, tooltip=tooltip, marker=marker)


# --------------------------------------------------------------------------------------------
# The page shell
# --------------------------------------------------------------------------------------------


class PageFigure(folium.Figure):
    """folium's root Figure with ``lang="zh-CN"`` and a UTF-8 charset (``title`` must be escaped)."""

    _template = Template(
        "<!DOCTYPE html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<title>{{ this.title }}</title>\n{{ this.header.render(**kwargs) }}\n</head>\n"
        "<body>\n{{ this.html.render(**kwargs) }}\n</body>\n"
        "<script>\n{{ this.script.render(**kwargs) }}\n</script>\n</html>\n")


class HtmlBlock(MacroElement):
    """Server-built HTML (already escaped) placed in the page body, in the order of the Figure's children."""

    _template = Template("{% macro html(this, kwargs) %}{{ this.markup }}{% endmacro %}")

    def __init__(self, markup: str) -> None:
        super().__init__()
        self._name = "HtmlBlock"
        self.markup = markup


def table_html(table_id: str, labels: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain table under the map (``cov-table-wrap``): every label and cell text is escaped here."""
    e = html.escape
    head = "".join(f"<th>{e(lab)}</th>" for lab in labels)
    body = "".join("<tr>" + "".join(f"<td>{e(str(v))}</td>" for v in r) + "</tr>" for r in rows)
    return (f'<div class="cov-table-wrap" id="{e(table_id, quote=True)}"><table class="cov-table">'
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>")


def legend_html(legend_id: str, lg: dict[str, Any]) -> str:
    e = html.escape
    rows = []
    for it in lg["items"]:
        color = safe_color(it["color"], NODATA)
        shape = it.get("shape")
        if shape == "line":  # a road: a grey line of the class's width
            width = max(0.5, min(6.0, float(it.get("width", 1.0))))
            style = f"border-top:{width:g}px solid {color}"
            swatch = f'<span class="cov-swatch cov-swatch-line" style="{style}"></span>'
        elif shape == "dash":  # an outline drawn dashed (low confidence)
            swatch = f'<span class="cov-swatch cov-swatch-dash" style="border-color:{color}"></span>'
        else:
            circle = " cov-swatch-circle" if shape == "circle" else ""
            swatch = f'<span class="cov-swatch{circle}" style="background:{color}"></span>'
        rows.append(f'<div class="cov-legend-row">{swatch}<span>{e(str(it["label"]))}</span></div>')
    if lg.get("note"):
        rows.append(f'<div class="cov-legend-note">{e(str(lg["note"]))}</div>')
    return (f'<details class="cov-legend-block" id="{e(legend_id)}" open>'
            f'<summary class="cov-legend-title">{e(lg["title"])}</summary>' + "".join(rows) + "</details>")


class PageScript(MacroElement):
    """Legends (hidden HTML blocks, shown for the layers on the map) and ``window.coverageMap``.

    Added to the map after the LayerControl, so its script runs last; the switching itself is in
    ``assets/coverage-map.js`` (DOM nodes only, no HTML strings).
    """

    _template = Template(
        "{% macro html(this, kwargs) %}"
        "<div id=\"cov-legend-store\" hidden>{{ this.markup }}</div>"
        "{% endmacro %}"
        "{% macro script(this, kwargs) %}\n"
        "coverageMapPage.init({{ this._parent.get_name() }}, ["
        "{% for lid, layer in this.legends %}[{{ lid|tojson }}, {{ layer.get_name() }}],{% endfor %}]);\n"
        "{% endmacro %}")

    def __init__(self, legends: Sequence[Legend]) -> None:
        super().__init__()
        self._name = "PageScript"
        #: (block id, legend, layer it belongs to)
        self.specs = [(f"cov-legend-{i}", lg, layer) for i, (lg, layer) in enumerate(legends)]
        self.legends = [(lid, layer) for lid, _lg, layer in self.specs]
        self.markup = "".join(legend_html(lid, lg) for lid, lg, _layer in self.specs)


def new_map(basemap: str, tianditu_key: str, bounds: np.ndarray, *, title: str, rule: str,
            extra_html: str = "") -> folium.Map:
    """A folium Map in a :class:`PageFigure` with the header bar, local assets and the basemap tiles.

    ``bounds`` = (minx, miny, maxx, maxy) in page coordinates (lon/lat, GCJ-02 for amap);
    ``extra_html`` (already escaped) goes into the header under the title.
    """
    layers = tiles(basemap, tianditu_key)
    fig = PageFigure(title=html.escape(title))
    fig.add_child(HtmlBlock(
        f'<header class="cov-header"><h1>{html.escape(title)}</h1>\n{extra_html}'
        f'<p class="cov-rule" id="snapping-rule">设施与人口落点规则 (snapping rule): '
        f"{html.escape(rule)}</p></header>"), name="cov_header")
    minx, miny, maxx, maxy = (float(v) for v in bounds)
    ok = all(math.isfinite(v) for v in (minx, miny, maxx, maxy))
    m = folium.Map(location=[(miny + maxy) / 2, (minx + maxx) / 2] if ok else None, zoom_start=13, tiles=None,
                   control_scale=True, zoom_snap=0.25)
    m.default_js = list(PAGE_JS)  # instance override: no CDN script (jquery, bootstrap, awesome-markers)
    m.default_css = list(PAGE_CSS)
    fig.add_child(m, name="map")
    for t in layers:
        folium.TileLayer(tiles=t["url"], attr=html.escape(t["attribution"]), name=t["name"],
                         subdomains=t["subdomains"], max_zoom=t["max_zoom"], overlay=True,
                         control=False).add_to(m)
    if ok:
        m.fit_bounds([[miny, minx], [maxy, maxx]], padding=(10, 10))
    return m


# --------------------------------------------------------------------------------------------
# Offline check, files
# --------------------------------------------------------------------------------------------

_ASSET_REF = re.compile(r"""<(script|link|img|iframe)\b[^>]*?\b(src|href)\s*=\s*["']?([^"'\s>]+)""",
                        re.IGNORECASE)
_TILE_URL = re.compile(r"""L\.tileLayer\(\s*("(?:[^"\\]|\\.)*")""")


def check_offline(page_html: str, *, allowed_tile_urls: Sequence[str] = ()) -> None:
    """Raise :class:`MapsError` unless every script/stylesheet/image URL of the page is a relative file.

    Tile layers must be exactly ``allowed_tile_urls`` (none for basemap "none", where the page then
    contains no ``http://``/``https://`` URL in any script, link or tile layer).
    """
    problems = [f"  <{tag} {attr}={url!r}>: not a relative local file"
                for tag, attr, url in _ASSET_REF.findall(page_html)
                if re.match(r"([a-z][a-z0-9+.\-]*:|/)", url, re.IGNORECASE) and not url.startswith("data:")]
    for lit in _TILE_URL.findall(page_html):
        url = json.loads(lit)
        if url not in allowed_tile_urls:
            problems.append(f"  tile layer {url!r}: not the configured basemap")
    if problems:
        raise MapsError("map page would load remote resources (pages must open offline):\n"
                        + "\n".join(problems)
                        + "\nOverride default_js/default_css of the folium element with files under assets/.")


def render(m: folium.Map, *, basemap: str, tianditu_key: str) -> str:
    """The folium page as HTML, checked offline (:func:`check_offline`)."""
    text = m.get_root().render()
    check_offline(text, allowed_tile_urls=[t["url"] for t in tiles(basemap, tianditu_key)])
    return text


def write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (a temporary file renamed into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def copy_assets(maps_dir: str | Path) -> Path:
    """Copy the vendored assets to ``<maps_dir>/assets/`` (unchanged files are left untouched)."""
    out = Path(maps_dir) / "assets"
    for rel in ASSET_FILES:
        src, dst = ASSETS_DIR / rel, out / rel
        if not src.is_file():
            raise MapsError(f"{src}: vendored asset missing; run python scripts/vendor_assets.py")
        if dst.is_file() and dst.read_bytes() == src.read_bytes():
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
    return out
