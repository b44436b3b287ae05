"""Gap maps a GIS officer opens offline: an overview page, one page per 街道/乡镇, and a PNG.

Reads only the files of ``build/<region>/`` (docs/ARCHITECTURE.md, "Files in build/<region>/") and
writes ``maps/<region>/``:

- ``index.html``: every unit with switchable choropleths (``elderly_share_<T>min`` at the largest
  elderly threshold T, ``meal_share_60plus`` under the 城区15/郊区30 rule, ``slots_per_1000``,
  ``n_failed_standards``), a legend for each, and a sortable table of units (worst first by
  ``elderly_uncovered_<T>min``) linking to the unit pages;
- ``<unit_code>.html``: unit boundary, 5/10/15-minute elderly isochrone bands and the unit's meal
  radius clipped to the unit's surroundings, facilities by kind with popups, uncovered elderly cells
  coloured by count, gap areas, and a side panel with the unit's standards checklist;
- ``assets/``: Leaflet and the page script/style, copied from ``coverage/assets/`` and referenced by
  relative URLs, so the pages need no network at all.

Pages are folium maps (``folium.Map`` in a Figure): overlays are ``folium.GeoJson`` layers with style
functions, ``GeoJsonPopup``/``GeoJsonTooltip``, ``LayerControl`` and the scale bar; header, legends,
side panel and table are escaped HTML elements of the Figure. folium's CDN scripts and stylesheets
(leaflet, jquery, bootstrap, awesome-markers, font-awesome) are replaced per map by the local files of
``assets/`` and every rendered page is checked (:func:`check_offline`): no remote script, stylesheet or
image, and tile URLs only for a configured basemap.

Indicator values are read as written in ``indicators.gpkg`` (layers ``units`` and ``communities``,
the columns of :data:`coverage.indicators.DATA_DICTIONARY`), never recomputed here; a missing column
is a :class:`MapsError` asking to re-run ``make run``. Every table header, choropleth/legend title and
popup label is the ``label_zh`` of ``data_dictionary.csv`` (else of ``DATA_DICTIONARY``), with the
English description in parentheses only where it is short plain text.

Every municipal string reaches the pages escaped: server-side HTML goes through :func:`html.escape`,
and GeoJSON properties are escaped before folium (whose popups/tooltips insert them as HTML) sees them.
The snapping rule text of ``run_info.json`` is shown on every page (results depend on it).
"""

from __future__ import annotations

import html
import json
import logging
import math
import re
import shutil
import subprocess
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from branca.element import MacroElement
from jinja2 import Template

from coverage.config import BASEMAPS, DEFAULT_SERVICES, FACILITY_KINDS
from coverage.standards import STANDARDS

log = logging.getLogger(__name__)

ASSETS_DIR = Path(__file__).resolve().parent / "assets"
#: files copied to maps/<region>/assets/ (relative to coverage/assets/)
ASSET_FILES = ("leaflet/leaflet.js", "leaflet/leaflet.css", "leaflet/images/layers.png",
               "leaflet/images/layers-2x.png", "leaflet/LICENSE", "coverage-map.js", "coverage-map.css")

#: metres added around a unit's bounding box for the "surroundings" clip of isochrones/facilities
SURROUNDINGS_M = 1500.0
ELDERLY_BANDS_MIN = (5, 10, 15)

# Colours: coverage shares red (low) -> green (high); counts light -> dark.
_SHARE_COLORS = ("#d73027", "#fc8d59", "#fee08b", "#d9ef8b", "#91cf60", "#1a9850")
_SHARE_BREAKS = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95)
_SLOT_COLORS = ("#f7fbff", "#c6dbef", "#6baed6", "#2171b5", "#08306b")
_SLOT_BREAKS = (0.0, 2.0, 4.5, 8.0, 10.0)
_FAIL_COLORS = ("#1a9850", "#fee08b", "#fc8d59", "#d73027", "#7f0000")
_FAIL_BREAKS = (0.0, 1.0, 2.0, 3.0, 5.0)
_COUNT_COLORS = ("#fee5d9", "#fcae91", "#fb6a4a", "#de2d26", "#a50f15")
_BAND_COLORS = {5: "#1a9850", 10: "#91cf60", 15: "#d9ef8b"}
_NODATA = "#bdbdbd"
_KIND_COLORS = ("#e41a1c", "#377eb8", "#4daf4a", "#984ea3", "#ff7f00", "#ffff33", "#a65628", "#f781bf",
                "#999999", "#66c2a5", "#fc8d62", "#8da0cb", "#e78ac3", "#a6d854", "#ffd92f")
KIND_COLORS: dict[str, str] = dict(zip(FACILITY_KINDS, _KIND_COLORS, strict=True))


class MapsError(ValueError):
    """The build directory cannot be mapped; the message lists every problem and the fix."""


# --------------------------------------------------------------------------------------------
# Reading build/<region>/
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Build:
    """What the pages read from ``build/<region>/`` (units and facilities in the metric CRS)."""

    path: Path
    units: gpd.GeoDataFrame  # indicators.gpkg layer ``units`` as written (columns of DATA_DICTIONARY)
    facilities: gpd.GeoDataFrame
    standards: pd.DataFrame
    labels: dict[str, str]  # column -> display label (label_zh + short English description)
    run_info: dict[str, Any]
    iso_layers: dict[tuple[str, float], str]  # (service, threshold_min) -> dissolved layer name
    elderly_t: str = "15"  # the largest elderly threshold, as in column names (``tlabel``)

    def label(self, column: str, english: str = "") -> str:
        """Display label of ``column``: label_zh of data_dictionary.csv (else of
        :data:`coverage.indicators.DATA_DICTIONARY`), then the English fallback, then the column name."""
        return self.labels.get(column) or english or column

    @property
    def crs(self) -> Any:
        return self.units.crs

    @property
    def elderly_share(self) -> str:
        """Column of the elderly coverage share at the largest threshold (``elderly_share_15min``)."""
        return f"elderly_share_{self.elderly_t}min"

    @property
    def elderly_uncovered(self) -> str:
        """Column of persons 60+ beyond the largest threshold (``elderly_uncovered_15min``)."""
        return f"elderly_uncovered_{self.elderly_t}min"


#: longest data-dictionary description appended in parentheses to a Chinese label
SHORT_DESCRIPTION = 40


def _display_label(label_zh: str, description: str) -> str:
    """``label_zh`` plus ``(description)`` when the description is short plain English (no formula)."""
    zh, desc = label_zh.strip(), description.strip()
    plain = desc.isascii() and not re.search(r"[_*/=<>()]", desc)
    if zh and desc and plain and len(desc) <= SHORT_DESCRIPTION:
        return f"{zh} ({desc})"
    return zh


def dictionary_labels(dictionary: pd.DataFrame | None = None) -> dict[str, str]:
    """column -> display label from a data dictionary (``column``, ``label_zh``, ``description``).

    Rows of :data:`coverage.indicators.DATA_DICTIONARY` fill in columns the given dictionary (the
    build's data_dictionary.csv) lacks or leaves without a Chinese label. Labels are Chinese first,
    with the English description in parentheses only when it is short plain text (see
    :func:`_display_label`).
    """
    from coverage.indicators import DATA_DICTIONARY

    labels = {col: _display_label(zh, desc) for col, zh, _unit, desc, _src in DATA_DICTIONARY if zh}
    if dictionary is not None and len(dictionary):
        for _, r in dictionary.iterrows():
            zh = str(r.get("label_zh", "") or "")
            if zh.strip():
                labels[str(r["column"])] = _display_label(zh, str(r.get("description", "") or ""))
    return labels


def _elderly_threshold(run_info: dict[str, Any], units: pd.DataFrame) -> str:
    """The largest elderly threshold (run_info ``services.elderly.thresholds_min``, else the
    ``elderly_share_<t>min`` columns), as written in column names."""
    from coverage.indicators import tlabel

    svc = (run_info.get("services") or {}).get("elderly") if isinstance(run_info.get("services"), dict) else None
    ts = [float(t) for t in (svc or {}).get("thresholds_min", [])] if isinstance(svc, dict) else []
    if not ts:
        ts = [float(m.group(1)) for c in units.columns if (m := re.fullmatch(r"elderly_share_(\d+(?:\.\d+)?)min", c))]
    return tlabel(max(ts)) if ts else tlabel(max(ELDERLY_BANDS_MIN))


#: columns of indicators.gpkg layer ``units`` the pages need ({T} = the largest elderly threshold)
UNIT_COLUMNS: tuple[str, ...] = ("unit_code", "unit_name", "unit_class", "pop_60plus", "elderly_share_{T}min",
                                 "elderly_uncovered_{T}min", "meal_share_60plus", "meal_threshold_min",
                                 "slots_per_1000", "n_failed_standards")


def _required(build_dir: Path) -> list[str]:
    names = ("indicators.gpkg", "standards.csv", "isochrones.gpkg", "facilities.gpkg", "cells.parquet",
             "gaps.gpkg", "data_dictionary.csv", "run_info.json")
    return [f"  {build_dir / n}: missing" for n in names if not (build_dir / n).is_file()]


def _parse_passed(v: Any) -> bool | None:
    s = str(v).strip().lower()
    if s in ("true", "1", "1.0", "yes", "pass"):
        return True
    if s in ("false", "0", "0.0", "no", "fail"):
        return False
    return None


def _read_build(build_dir: str | Path) -> _Build:
    """Read what the pages show from ``build/<region>/``; indicator values are taken as written
    (indicators.gpkg layer ``units``, see :data:`UNIT_COLUMNS`), never recomputed here."""
    build_dir = Path(build_dir)
    problems = _required(build_dir)
    if problems:
        raise MapsError(f"{build_dir}: cannot write maps, {len(problems)} build file(s) missing:\n"
                        + "\n".join(problems) + "\nRun the pipeline first (make build REGION=<region>).")
    units = gpd.read_file(build_dir / "indicators.gpkg", layer="units")
    run_info = json.loads((build_dir / "run_info.json").read_text(encoding="utf-8"))
    elderly_t = _elderly_threshold(run_info, units)
    missing = [c.replace("{T}", elderly_t) for c in UNIT_COLUMNS if c.replace("{T}", elderly_t) not in units.columns]
    if missing:
        raise MapsError(f"{build_dir / 'indicators.gpkg'} layer 'units': missing column(s) {', '.join(missing)} "
                        "(written by the indicators stage); re-run `make run` to rebuild build/<region>/.")
    if units.crs is None or not units.crs.is_projected:
        raise MapsError(f"{build_dir / 'indicators.gpkg'} layer 'units': needs a projected metric CRS "
                        f"(found {units.crs}); re-run `make run`.")
    units = units.assign(unit_code=units["unit_code"].astype(str))
    fac = gpd.read_file(build_dir / "facilities.gpkg")
    if fac.crs is not None and fac.crs != units.crs:
        fac = fac.to_crs(units.crs)
    std = pd.read_csv(build_dir / "standards.csv", dtype={"unit_code": str}, keep_default_na=False)
    if len(std):
        std = std.assign(passed=pd.Series([_parse_passed(v) for v in std["passed"]], index=std.index, dtype=object))
    dd = pd.read_csv(build_dir / "data_dictionary.csv", keep_default_na=False, dtype=str, encoding="utf-8-sig")
    iso: dict[tuple[str, float], str] = {}
    for name, _geom in pyogrio.list_layers(build_dir / "isochrones.gpkg"):
        m = re.fullmatch(r"([a-z]+)_(\d+(?:\.\d+)?)min_dissolved", str(name))
        if m:
            iso[(m.group(1), float(m.group(2)))] = str(name)
    return _Build(build_dir, units, fac, std, dictionary_labels(dd), run_info, iso, elderly_t)


def _read_cells(build_dir: Path, *, columns: Sequence[str] | None = None,
                unit_code: str | None = None) -> pd.DataFrame:
    """cells.parquet (all units, or one unit's rows via a parquet filter)."""
    filters = [("unit_code", "=", unit_code)] if unit_code is not None else None
    path = build_dir / "cells.parquet"
    if columns is not None:
        return pd.read_parquet(path, columns=list(columns), filters=filters)
    return gpd.read_parquet(path, filters=filters)


# --------------------------------------------------------------------------------------------
# Geometry to page coordinates
# --------------------------------------------------------------------------------------------


def _shift_fn(basemap: str) -> Callable[[np.ndarray], np.ndarray] | None:
    if basemap != "amap":
        return None
    from coverage.coords import wgs84_to_gcj02  # AMap tiles are drawn in GCJ-02

    def shift(xy: np.ndarray) -> np.ndarray:
        lon, lat = wgs84_to_gcj02(xy[:, 0], xy[:, 1])
        return np.column_stack([lon, lat])

    return shift


def _to_page(gdf: gpd.GeoDataFrame, basemap: str, *, simplify_m: float = 0.0) -> gpd.GeoDataFrame:
    """Reproject to WGS84 (and shift into GCJ-02 for the amap basemap), rounding to ~0.1 m."""
    if gdf.crs is None:
        raise MapsError("a build layer has no CRS; re-run the pipeline")
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


def _fmt(v: Any, *, digits: int | None = None, unit: str = "", pct: bool = False) -> str:
    """Display text of a value: shares as percent (1 decimal), numbers with thousands separators.

    ``digits`` defaults to 1 for ``pct`` and 0 otherwise; missing/non-finite values show as "—".
    """
    if v is None or (isinstance(v, float) and not math.isfinite(v)) or v is pd.NA:
        return "—"
    if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
        d = (1 if pct else 0) if digits is None else digits
        x = float(v) * (100.0 if pct else 1.0)
        s = f"{x:,.{d}f}"
        return s + ("%" if pct else (f" {unit}" if unit else ""))
    return str(v)


def _num(v: Any) -> float | None:
    """A finite float from a CSV cell ("", "nan" and text give None)."""
    if isinstance(v, bool):
        return None
    try:
        x = float(str(v).replace(",", "").strip()) if isinstance(v, str) else float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


#: standards.csv value/required display per ``STANDARDS[...].unit`` (format keywords of :func:`_fmt`)
_STD_UNIT_FMT: dict[str, dict[str, Any]] = {
    "share 0-1": {"pct": True},
    "m²/resident": {"digits": 2, "unit": "m²/人"},
    "slots/1000": {"digits": 1, "unit": "托位/千人"},
    "beds/1000 60+": {"digits": 1, "unit": "床/千名老人"},
    "m²": {"digits": 0, "unit": "m²"},
    "count": {"digits": 0, "unit": "个"},
}
_LONG_FLOAT = re.compile(r"\d+\.\d{3,}")


def _fmt_standard(v: Any, std_unit: str) -> str:
    """A standards.csv ``value``/``required`` cell in the standard's unit (``STANDARDS[id].unit``).

    Shares show as "72.8%", areas and counts with thousands separators, rates with 1-2 decimals;
    unknown units get 0 decimals for whole numbers, else 2. Non-numeric text is kept.
    """
    x = _num(v)
    if x is None:
        t = str(v).strip() if v is not None else ""
        return "—" if t.lower() in ("", "nan", "none", "<na>") else t
    kw = _STD_UNIT_FMT.get(std_unit)
    if kw is None:
        kw = {"digits": 0 if float(x).is_integer() else 2}
    return _fmt(x, **kw)


def _tidy_text(s: Any) -> str:
    """Free text (e.g. ``shortfall``) with long raw floats rounded to 2 decimals."""
    t = "" if s is None else str(s)
    if t.lower() in ("nan", "none", "<na>"):
        return ""
    return _LONG_FLOAT.sub(lambda m: f"{float(m.group(0)):,.2f}", t)


def _features(gdf: gpd.GeoDataFrame, props: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    """GeoJSON FeatureCollection with string ids; every ``str`` property is HTML-escaped.

    folium's GeoJsonPopup/GeoJsonTooltip insert property values into the page as HTML, so the
    escaping happens here, once, for every municipal string. Keys ending in ``_html`` carry markup
    this module built from already escaped parts and are passed through.
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


def _bin_color(v: float, breaks: Sequence[float], colors: Sequence[str]) -> str:
    if v is None or not math.isfinite(v):
        return _NODATA
    i = int(np.searchsorted(np.asarray(breaks), v, side="right")) - 1
    return colors[max(0, min(i, len(colors) - 1))]


def _legend(title: str, breaks: Sequence[float], colors: Sequence[str], *, pct: bool = False,
            nodata: bool = True, digits: int = 0) -> dict[str, Any]:
    items = []
    for i, c in enumerate(colors):
        lo = breaks[i]
        hi = breaks[i + 1] if i + 1 < len(breaks) else None
        f = (lambda x: _fmt(x, pct=True, digits=0)) if pct else (lambda x: _fmt(x, digits=digits))
        items.append({"color": c, "label": f"≥ {f(lo)}" + (f" – < {f(hi)}" if hi is not None else "")})
    if nodata:
        items.append({"color": _NODATA, "label": "无数据 / no data"})
    return {"title": title, "items": items}


#: above this many uncovered cells a unit page draws one polygon per colour class instead of each cell
MAX_CELL_FEATURES = 3000


def _cells_by_class(cells: gpd.GeoDataFrame, breaks: Sequence[float]) -> gpd.GeoDataFrame:
    """Cell squares merged per colour class (``k``: class index, ``label``: its range in persons 60+
    per cell) with a coverage union: exact, since the squares tile without overlapping."""
    import shapely

    v = cells["pop_60plus"].to_numpy(float)
    k = np.clip(np.searchsorted(np.asarray(breaks), v, side="right") - 1, 0, len(breaks) - 1)
    rows = []
    for i in np.unique(k):
        hi = f" – < {_fmt(breaks[i + 1], digits=1)}" if i + 1 < len(breaks) else ""
        geoms = cells.geometry.to_numpy()[k == i]
        rows.append({"k": int(i), "label": f"≥ {_fmt(breaks[i], digits=1)}{hi} (每格 per cell; {int((k == i).sum())} 格)",
                     "geometry": shapely.coverage_union_all(geoms)})
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=cells.crs)


def _count_breaks(values: np.ndarray) -> list[float]:
    v = values[np.isfinite(values) & (values > 0)]
    if not len(v):
        return [0.0, 1.0, 2.0, 3.0, 4.0]
    qs = np.quantile(v, [0, 0.2, 0.4, 0.6, 0.8])
    out: list[float] = []
    for q in qs:
        r = float(np.floor(q)) if q >= 1 else round(float(q), 2)
        if not out or r > out[-1]:
            out.append(r)
    return out


# --------------------------------------------------------------------------------------------
# Basemap tiles, folium page shell
# --------------------------------------------------------------------------------------------


def _tiles(basemap: str, tianditu_key: str) -> list[dict[str, Any]]:
    if basemap not in BASEMAPS:
        raise MapsError(f"basemap = {basemap!r}: expected one of {', '.join(BASEMAPS)} ([maps] basemap in coverage.toml)")
    if basemap == "none":
        return []
    if basemap == "osm":
        return [{"url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png", "subdomains": "abc", "max_zoom": 19,
                 "attribution": "© OpenStreetMap contributors", "name": "OpenStreetMap"}]
    if basemap == "amap":
        return [{"url": "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8&x={x}&y={y}&z={z}",
                 "subdomains": "1234", "max_zoom": 18, "attribution": "© 高德地图 (GCJ-02)", "name": "高德地图"}]
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


#: what every page loads, relative to the page (folium's CDN defaults are replaced per map)
PAGE_JS: tuple[tuple[str, str], ...] = (("leaflet", "assets/leaflet/leaflet.js"),
                                        ("coverage_map", "assets/coverage-map.js"))
PAGE_CSS: tuple[tuple[str, str], ...] = (("leaflet_css", "assets/leaflet/leaflet.css"),
                                         ("coverage_map_css", "assets/coverage-map.css"))


class _PageFigure(folium.Figure):
    """folium's root Figure with ``lang="zh-CN"`` and a UTF-8 charset (``title`` must be escaped)."""

    _template = Template(
        "<!DOCTYPE html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<title>{{ this.title }}</title>\n{{ this.header.render(**kwargs) }}\n</head>\n"
        "<body>\n{{ this.html.render(**kwargs) }}\n</body>\n"
        "<script>\n{{ this.script.render(**kwargs) }}\n</script>\n</html>\n")


class _HtmlBlock(MacroElement):
    """Server-built HTML (already escaped) placed in the page body, in the order of the Figure's children."""

    _template = Template("{% macro html(this, kwargs) %}{{ this.markup }}{% endmacro %}")

    def __init__(self, markup: str) -> None:
        super().__init__()
        self._name = "HtmlBlock"
        self.markup = markup


class _PageScript(MacroElement):
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

    def __init__(self, legends: Sequence[tuple[dict[str, Any], folium.GeoJson]]) -> None:
        super().__init__()
        self._name = "PageScript"
        #: (block id, legend {"title", "items": [{"color", "label", "shape"?}]}, layer it belongs to)
        self.specs = [(f"cov-legend-{i}", lg, layer) for i, (lg, layer) in enumerate(legends)]
        self.legends = [(lid, layer) for lid, _lg, layer in self.specs]
        self.markup = "".join(_legend_html(lid, lg) for lid, lg, _layer in self.specs)


_COLOR = re.compile(r"#[0-9a-fA-F]{3,8}")


def _legend_html(legend_id: str, lg: dict[str, Any]) -> str:
    e = html.escape
    rows = []
    for it in lg["items"]:
        color = it["color"] if _COLOR.fullmatch(str(it["color"])) else _NODATA
        shape = " cov-swatch-circle" if it.get("shape") == "circle" else ""
        rows.append(f'<div class="cov-legend-row"><span class="cov-swatch{shape}" style="background:{color}"></span>'
                    f"<span>{e(str(it['label']))}</span></div>")
    return (f'<details class="cov-legend-block" id="{e(legend_id)}" open>'
            f'<summary class="cov-legend-title">{e(lg["title"])}</summary>' + "".join(rows) + "</details>")


def _new_map(basemap: str, tianditu_key: str, bounds: np.ndarray, *, title: str, rule: str,
             extra_html: str = "") -> folium.Map:
    """A folium Map in a :class:`_PageFigure` with the header bar, local assets and the basemap tiles.

    ``bounds`` = (minx, miny, maxx, maxy) in page coordinates (lon/lat, GCJ-02 for amap);
    ``extra_html`` (already escaped) goes into the header under the title.
    """
    tiles = _tiles(basemap, tianditu_key)
    fig = _PageFigure(title=html.escape(title))
    fig.add_child(_HtmlBlock(
        f'<header class="cov-header"><h1>{html.escape(title)}</h1>\n{extra_html}<p class="cov-rule" id="snapping-rule">'
        f"设施与人口落点规则 (snapping rule): {html.escape(rule)}</p></header>"), name="cov_header")
    minx, miny, maxx, maxy = (float(v) for v in bounds)
    ok = all(math.isfinite(v) for v in (minx, miny, maxx, maxy))
    m = folium.Map(location=[(miny + maxy) / 2, (minx + maxx) / 2] if ok else None, zoom_start=13, tiles=None,
                   control_scale=True, zoom_snap=0.25)
    m.default_js = list(PAGE_JS)  # instance override: no CDN script (jquery, bootstrap, awesome-markers)
    m.default_css = list(PAGE_CSS)
    fig.add_child(m, name="map")
    for t in tiles:
        folium.TileLayer(tiles=t["url"], attr=html.escape(t["attribution"]), name=t["name"],
                         subdomains=t["subdomains"], max_zoom=t["max_zoom"], overlay=True, control=False).add_to(m)
    if ok:
        m.fit_bounds([[miny, minx], [maxy, maxx]], padding=(10, 10))
    return m


def _geojson(fc: dict[str, Any], name: str, style: dict[str, Any], *, overlay: bool = True, show: bool = True,
             popup_fields: Sequence[tuple[str, str]] = (), tooltip_key: str = "",
             marker: folium.CircleMarker | None = None) -> folium.GeoJson:
    """A folium GeoJson layer: ``style`` plus each feature's ``_color`` as fill; popup/tooltip from properties.

    ``popup_fields`` = (property, label); labels are escaped here, values were escaped by :func:`_features`.
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
    return folium.GeoJson(fc, name=html.escape(name), style_function=style_function, overlay=overlay, show=show,
                          popup=popup, tooltip=tooltip, marker=marker)


_ASSET_REF = re.compile(r"""<(script|link|img|iframe)\b[^>]*?\b(src|href)\s*=\s*["']?([^"'\s>]+)""", re.IGNORECASE)
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
        raise MapsError("map page would load remote resources (pages must open offline):\n" + "\n".join(problems)
                        + "\nOverride default_js/default_css of the folium element with files under assets/.")


def _render(m: folium.Map, *, basemap: str, tianditu_key: str) -> str:
    """The folium page as HTML, checked offline (:func:`check_offline`)."""
    text = m.get_root().render()
    check_offline(text, allowed_tile_urls=[t["url"] for t in _tiles(basemap, tianditu_key)])
    return text


def _write_text(path: Path, text: str) -> Path:
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


def unit_page_name(unit_code: str) -> str:
    """File name of a unit's page: the code when it is filename-safe, else a sanitised form."""
    safe = re.sub(r"[^A-Za-z0-9_\-]", "_", str(unit_code))
    return f"{safe or 'unit'}.html"


# --------------------------------------------------------------------------------------------
# Overview page
# --------------------------------------------------------------------------------------------

#: overview table columns of layer ``units`` ({T} = the largest elderly threshold) and their formats;
#: headers are the data-dictionary labels; columns after ``unit_class`` are shown only when present
_TABLE_COLS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("unit_name", {}),
    ("unit_code", {}),
    ("unit_type", {}),
    ("unit_class", {}),
    ("pop_60plus", {"digits": 0}),
    ("elderly_uncovered_{T}min", {"digits": 0}),
    ("elderly_share_{T}min", {"pct": True}),
    ("meal_share_60plus", {"pct": True}),
    ("childcare_share_0to3_15min", {"pct": True}),
    ("slots_per_1000", {"digits": 1}),
    ("beds_per_1000_60plus", {"digits": 1}),
    ("n_failed_standards", {"digits": 0}),
)

#: overview choropleths (one radio base layer each): column, breaks, colours, legend format
_CHOROPLETHS: tuple[tuple[str, Sequence[float], Sequence[str], dict[str, Any]], ...] = (
    ("elderly_share_{T}min", _SHARE_BREAKS, _SHARE_COLORS, {"pct": True}),
    ("meal_share_60plus", _SHARE_BREAKS, _SHARE_COLORS, {"pct": True}),
    ("slots_per_1000", _SLOT_BREAKS, _SLOT_COLORS, {"digits": 1}),
    ("n_failed_standards", _FAIL_BREAKS, _FAIL_COLORS, {"digits": 0}),
)


#: files of build/<region>/ named on the overview (name, what it holds)
DATA_FILES: tuple[tuple[str, str], ...] = (
    ("indicators.xlsx", "指标表 (中文表头)"), ("indicators.csv", "指标表"), ("standards.csv", "标准核查"),
    ("gaps.gpkg", "缺口区域"), ("facilities.csv", "设施"), ("rejects.csv", "未采用记录"),
    ("indicators.gpkg", "街道/社区边界与指标"), ("isochrones.gpkg", "等时圈"), ("run_info.json", "运行参数"),
)


def _region_summary_html(b: _Build) -> str:
    """Header lines of the overview: region-level standards (pass/fail, value, shortfall) and the data
    files of ``build/<region>/`` by name (links to ../../build are not reliable when pages are copied)."""
    e = html.escape
    std = b.standards
    items = []
    if len(std) and "level" in std.columns:
        for _, r in std[std["level"].astype(str) == "region"].iterrows():
            unit = _std_unit(r.get("standard_id", ""))
            title = str(r.get("title_zh", "") or r.get("standard_id", ""))
            txt = f"{_fmt_standard(r.get('value', ''), unit)}"
            req = _fmt_standard(r.get("required", ""), unit)
            if req != "—":
                txt += f" (要求 {req})"
            short = _tidy_text(r.get("shortfall", ""))
            if short:
                txt += f"，{'缺口' if r['passed'] is False else '说明'}: {short}"
            src = _tidy_text(r.get("source", ""))
            items.append(f'<span class="cov-region-std" title="{e(src, quote=True)}">{_std_mark(r["passed"])} '
                         f"{e(title)}: {e(txt)}</span>")
    std_line = ('<p class="cov-region" id="region-standards"><b>全域标准 (region standards):</b> '
                + " · ".join(items) + "</p>") if items else ""
    region = str(b.run_info.get("region") or b.path.name)
    files = [f"<code>{e(n)}</code> {e(what)}" for n, what in DATA_FILES if (b.path / n).is_file()]
    files_line = (f'<p class="cov-files" id="data-files"><b>数据文件 (data files) in <code>build/{e(region)}/</code>:</b> '
                  + "，".join(files) + "</p>") if files else ""
    return std_line + files_line


def _overview_map(b: _Build, *, basemap: str, tianditu_key: str, region_title: str) -> folium.Map:
    """The overview page: one base layer (radio) per choropleth, legend, sortable units table."""
    e = html.escape
    t = b.elderly_t
    u = b.units.sort_values(b.elderly_uncovered, ascending=False, na_position="last")
    page = _to_page(u, basemap, simplify_m=5.0)
    table = [(c.replace("{T}", t), kw) for c, kw in _TABLE_COLS]
    fields = [(c, b.label(c)) for c, _kw in table if c in u.columns]
    fmt = dict(table)
    title = region_title or str(b.run_info.get("region_title") or b.run_info.get("region") or "")
    m = _new_map(basemap, tianditu_key, page.total_bounds, title=f"{title} 一老一小服务覆盖 — 总览".strip(),
                 rule=snapping_rule_text(b.run_info), extra_html=_region_summary_html(b))

    legends = []
    for i, (col_t, breaks, colors, kw) in enumerate(_CHOROPLETHS):
        col = col_t.replace("{T}", t)
        name = b.label(col)

        def props(row: Any, col: str = col, breaks: Sequence[float] = breaks,
                  colors: Sequence[str] = colors) -> dict[str, Any]:
            d = row._asdict()
            p: dict[str, Any] = {k: _fmt(d.get(k), **fmt.get(k, {})) for k, _lab in fields}
            p["_color"] = _bin_color(float(d.get(col, np.nan)), breaks, colors)
            p["_title"] = f"{d['unit_name']} ({d['unit_code']})"
            href = html.escape(unit_page_name(d["unit_code"]), quote=True)
            p["_link_html"] = f'<a class="cov-link" href="{href}">打开街道/乡镇页面 →</a>'
            return p

        layer = _geojson(_features(page, props), name, {"color": "#333", "weight": 1, "fillOpacity": 0.75},
                         overlay=False, show=i == 0, popup_fields=[*fields, ("_link_html", "")],
                         tooltip_key="_title")
        layer.add_to(m)
        legends.append((_legend(name, breaks, colors, pct=kw.get("pct", False), digits=kw.get("digits", 0)), layer))
    folium.LayerControl(position="topright", collapsed=False).add_to(m)
    m.add_child(_PageScript(legends))

    head = "".join(f"<th>{e(lab)}</th>" for _c, lab in fields)
    rows = []
    for _, r in u.iterrows():
        cells = []
        for c, _lab in fields:
            v = r.get(c)
            txt = e(_fmt(v, **fmt.get(c, {})))
            if c == "unit_name":
                txt = f'<a href="{e(unit_page_name(r["unit_code"]))}">{txt}</a>'
            num = isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
            sort = (f"{float(v):.6g}" if math.isfinite(float(v)) else "") if num else str(v)
            cls = ' class="num"' if num else ""
            cells.append(f'<td{cls} data-sort="{e(sort)}">{txt}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    m.get_root().add_child(_HtmlBlock(
        f'<div class="cov-table-wrap"><table class="cov-table cov-sortable" id="units-table">'
        f"<thead><tr>{head}</tr></thead><tbody>\n" + "\n".join(rows) + "\n</tbody></table></div>"), name="cov_table")
    return m


# --------------------------------------------------------------------------------------------
# Unit page
# --------------------------------------------------------------------------------------------


def _meal_threshold(b: _Build, unit_class: str) -> float:
    ri = b.run_info
    meal = DEFAULT_SERVICES["meal"]
    urban = ri.get("meal_urban_threshold_min", meal.urban_threshold_min)
    suburban = ri.get("meal_suburban_threshold_min", meal.suburban_threshold_min)
    return float(urban if unit_class == "城区" else suburban)


def _iso_clip(b: _Build, layer: str, box: Any) -> gpd.GeoDataFrame:
    g = gpd.read_file(b.path / "isochrones.gpkg", layer=layer, bbox=tuple(box.bounds))
    if g.crs is not None and g.crs != b.crs:
        g = g.to_crs(b.crs)
    g = g.set_geometry(g.geometry.intersection(box))
    return g[~g.geometry.is_empty]


def _facility_props(row: Any) -> dict[str, Any]:
    d = row._asdict()
    kind = str(d.get("kind", ""))
    cap = []
    for col, lab in (("beds", "床位"), ("nursing_beds", "护理型床位"), ("childcare_slots", "托位")):
        v = d.get(col)
        if v is not None and isinstance(v, (int, float)) and math.isfinite(float(v)):
            cap.append(f"{lab} {float(v):,.0f}")
    snaps = []
    for mode, lab in (("walk", "步行路网"), ("delivery", "配送路网")):
        v = d.get(f"snap_dist_{mode}_m")
        if v is not None and isinstance(v, (int, float)):
            snaps.append(f"{lab} {_fmt(float(v), unit='m')}")
    return {
        "name": str(d.get("name", "")), "kind": FACILITY_KINDS.get(kind, kind), "capacity": "; ".join(cap) or "—",
        "floor_area": _fmt(d.get("floor_area_m2"), unit="m²"), "snap": "; ".join(snaps) or "—",
        "status": str(d.get("status", "") or "—"), "fac_id": str(d.get("fac_id", "")),
        "_color": KIND_COLORS.get(kind, "#777777"),
    }


def _std_unit(standard_id: Any) -> str:
    st = STANDARDS.get(str(standard_id))
    return st.unit if st is not None else ""


def _std_mark(passed: Any) -> str:
    return ('<span class="pass">✓ 达标</span>' if passed is True else
            '<span class="fail">✗ 未达标</span>' if passed is False else '<span class="na">— 无法检查</span>')


def _checklist_html(b: _Build, unit_code: str) -> str:
    """The unit's standards as a 3-column table: standard (+ source in small text, full text on hover),
    result, and value / required / shortfall stacked in one cell, all formatted by the standard's unit."""
    e = html.escape
    std = b.standards
    if not len(std):
        return "<p>standards.csv 无记录 / no standards rows</p>"
    rows = std[std["unit_code"].astype(str) == unit_code]
    if "level" in rows.columns:
        rows = rows[rows["level"].astype(str) == "unit"]
    if not len(rows):
        return "<p>本单元无标准检查记录 / no standards rows for this unit</p>"
    th = (f"<th>{e(b.label('title_zh'))}</th><th>{e(b.label('passed'))}</th>"
          "<th>实际 / 要求 / 缺口</th>")
    out = []
    for _, r in rows.iterrows():
        p = r["passed"]
        title = str(r.get("title_zh", "") or r.get("standard_id", ""))
        source = _tidy_text(r.get("source", ""))
        unit = _std_unit(r.get("standard_id", ""))
        src = (f'<div class="cov-source" title="{e(source, quote=True)}">来源: {e(source)}</div>'
               if source else "")
        vals = [f'<div><span class="cov-k">实际</span> {e(_fmt_standard(r.get("value", ""), unit))}</div>',
                f'<div><span class="cov-k">要求</span> {e(_fmt_standard(r.get("required", ""), unit))}</div>']
        short = _tidy_text(r.get("shortfall", ""))
        if short:
            k = "缺口" if p is False else "说明"
            vals.append(f'<div class="cov-short"><span class="cov-k">{k}</span> {e(short)}</div>')
        out.append(f'<tr class="{"fail-row" if p is False else ""}"><td>{e(title)}{src}</td>'
                   f'<td class="cov-mark">{_std_mark(p)}</td><td class="cov-vals">{"".join(vals)}</td></tr>')
    return (f'<table class="cov-table cov-checklist" id="standards-checklist"><thead><tr>{th}</tr></thead><tbody>'
            + "".join(out) + "</tbody></table>")


#: per-community indicators in the 社区/村 popups (indicators.gpkg layer ``communities``)
_COMMUNITY_COLS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("community_code", {}),
    ("pop_total", {"digits": 0}),
    ("pop_60plus", {"digits": 0}),
    ("pop_0to3", {"digits": 0}),
    ("elderly_share_{T}min", {"pct": True}),
    ("elderly_uncovered_{T}min", {"digits": 0}),
    ("meal_share_60plus", {"pct": True}),
    ("childcare_share_0to3_15min", {"pct": True}),
    ("slots_per_1000", {"digits": 1}),
    ("beds_per_1000_60plus", {"digits": 1}),
    ("n_failed_standards", {"digits": 0}),
)


def _read_communities(b: _Build, unit_code: str) -> gpd.GeoDataFrame | None:
    """The unit's 社区/村 of indicators.gpkg layer ``communities`` (None when the layer is absent)."""
    path = b.path / "indicators.gpkg"
    if "communities" not in {str(n) for n, _g in pyogrio.list_layers(path)}:
        return None
    c = gpd.read_file(path, layer="communities")
    if "unit_code" not in c.columns or not len(c):
        return None
    if c.crs is not None and c.crs != b.crs:
        c = c.to_crs(b.crs)
    c = c[c["unit_code"].astype(str) == unit_code]
    if not len(c):
        return None
    for col in ("community_code", "community_name"):
        c[col] = c[col].astype(str) if col in c.columns else ""
    return c


def _community_failures(b: _Build, comm: gpd.GeoDataFrame) -> dict[str, list[str]]:
    """community_code -> titles of its failed community-level standards (standards.csv)."""
    std = b.standards
    if not len(std) or "level" not in std.columns:
        return {}
    rows = std[(std["level"].astype(str) == "community") & std["unit_code"].astype(str).isin(comm["community_code"])]
    out: dict[str, list[str]] = {}
    for _, r in rows[rows["passed"].map(lambda v: v is False)].iterrows():
        out.setdefault(str(r["unit_code"]), []).append(str(r.get("title_zh", "") or r.get("standard_id", "")))
    return out


def _gap_table_html(b: _Build, gaps: gpd.GeoDataFrame, basemap: str) -> str:
    """Side-panel table of the unit's gap areas: rank, service, people 60+/0-3, nearest facility and
    minutes; each row carries ``data-zoom`` (page-coordinate bounds) so a click zooms the map to it."""
    e = html.escape
    if not len(gaps):
        return '<p id="gap-table">本单元无缺口区域 / no gap areas in this unit</p>'
    names = (dict(zip(b.facilities["fac_id"].astype(str), b.facilities["name"].astype(str), strict=True))
             if len(b.facilities) and {"fac_id", "name"} <= set(b.facilities.columns) else {})
    page = _to_page(gaps, basemap)
    order = page.assign(_svc=page["service"].astype(str), _rank=pd.to_numeric(page["rank"], errors="coerce"))
    order = order.sort_values(["_svc", "_rank"])
    svc_zh = {"elderly": "养老", "meal": "助餐", "childcare": "托育", "health": "卫生"}
    rows = []
    for _, r in order.iterrows():
        g = r.geometry
        zoom = ""
        if g is not None and not g.is_empty:
            x0, y0, x1, y1 = (round(float(v), 6) for v in g.bounds)
            zoom = f' data-zoom="{e(json.dumps([[y0, x0], [y1, x1]]), quote=True)}" tabindex="0"'
        fid = str(r.get("nearest_fac_id", "") or "")
        fac = names.get(fid, fid) or "—"
        svc = str(r.get("service", ""))
        rows.append(f'<tr class="cov-zoom"{zoom} title="点击缩放到缺口 (click to zoom)">'
                    f"<td>{e(svc_zh.get(svc, svc))} #{e(_fmt(_num(r.get('rank'))))}</td>"
                    f'<td class="num">{e(_fmt(_num(r.get("pop_60plus"))))}</td>'
                    f'<td class="num">{e(_fmt(_num(r.get("pop_0to3"))))}</td>'
                    f"<td>{e(fac)}</td>"
                    f'<td class="num">{e(_fmt(_num(r.get("nearest_tt_min")), digits=1))}</td></tr>')
    return ('<table class="cov-table cov-gaps" id="gap-table"><thead><tr><th>缺口</th><th>60岁+</th><th>0-3岁</th>'
            "<th>最近设施</th><th>分钟</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")


def _unit_map(b: _Build, unit_code: str, *, basemap: str, tianditu_key: str) -> folium.Map:
    """One 街道/乡镇: walk bands, meal radius, uncovered cells, gaps, facilities, boundary; side panel."""
    e = html.escape
    sel = b.units[b.units["unit_code"] == str(unit_code)]
    if not len(sel):
        known = ", ".join(b.units["unit_code"].head(10))
        raise MapsError(f"unit_code {unit_code!r} is not in {b.path / 'indicators.gpkg'} (known: {known}, ...)")
    unit = sel.iloc[0]
    geom = unit.geometry
    minx, miny, maxx, maxy = geom.bounds
    box = shapely.box(minx - SURROUNDINGS_M, miny - SURROUNDINGS_M, maxx + SURROUNDINGS_M, maxy + SURROUNDINGS_M)
    unit_class = str(unit.get("unit_class", ""))
    bx = _to_page(gpd.GeoDataFrame(geometry=[geom], crs=b.crs), basemap).total_bounds
    m = _new_map(basemap, tianditu_key, bx, title=f"{unit['unit_name']} ({unit_code}) — 一老一小服务覆盖",
                 rule=snapping_rule_text(b.run_info))
    legends: list[tuple[dict[str, Any], folium.GeoJson]] = []

    # elderly isochrone bands, widest first so the 5-min band draws on top
    band_items, last_band = [], None
    for t in sorted(ELDERLY_BANDS_MIN, reverse=True):
        layer = b.iso_layers.get(("elderly", float(t)))
        if layer is None:
            continue
        g = _to_page(_iso_clip(b, layer, box), basemap, simplify_m=2.0)
        col = _BAND_COLORS[t]
        band_items.append({"color": col, "label": f"{t} 分钟"})
        band = f"{t} 分钟"

        def band_props(_r: Any, band: str = band) -> dict[str, Any]:
            return {"band": band}

        last_band = _geojson(_features(g, band_props),
                             f"养老服务步行 {t} 分钟 (elderly {t} min walk)",
                             {"color": col, "weight": 1, "fillColor": col, "fillOpacity": 0.35},
                             tooltip_key="band")
        last_band.add_to(m)
    if last_band is not None:
        legends.append(({"title": "养老服务步行圈 (elderly walk bands)", "items": band_items[::-1]}, last_band))

    meal_t = _num(unit.get("meal_threshold_min"))
    meal_t = float(meal_t) if meal_t is not None else _meal_threshold(b, unit_class)
    meal_layer = b.iso_layers.get(("meal", meal_t))
    if meal_layer is not None:
        g = _to_page(_iso_clip(b, meal_layer, box), basemap, simplify_m=2.0)
        lab = f"助餐配送 {meal_t:g} 分钟 ({unit_class})"
        lyr = _geojson(_features(g, lambda r: {"band": lab}), lab,
                       {"color": "#6a3d9a", "weight": 2, "dashArray": "6 4", "fill": False},
                       tooltip_key="band")
        lyr.add_to(m)
        legends.append(({"title": b.label("meal_threshold_min"), "items": [{"color": "#6a3d9a", "label": lab}]}, lyr))

    comm = _read_communities(b, str(unit_code))
    if comm is not None:
        ccols = [(c.replace("{T}", b.elderly_t), kw) for c, kw in _COMMUNITY_COLS]
        cfields = [(c, b.label(c)) for c, _kw in ccols if c in comm.columns]
        ckw = dict(ccols)
        failed = _community_failures(b, comm)

        def cprops(r: Any) -> dict[str, Any]:
            d = r._asdict()
            p = {c: _fmt(d.get(c), **ckw[c]) for c, _lab in cfields}
            p["_title"] = f"{d.get('community_name', '')} ({d.get('community_code', '')})"
            p["failed"] = "; ".join(failed.get(str(d.get("community_code", "")), [])) or "—"
            return p

        lyr = _geojson(_features(_to_page(comm, basemap, simplify_m=1.0), cprops), "社区/村边界 (communities)",
                       {"color": "#1f4e9c", "weight": 2.5, "opacity": 0.9, "fill": True, "fillOpacity": 0.0},
                       popup_fields=[*cfields, ("failed", "未达标标准 (failed standards)")],
                       tooltip_key="_title")
        lyr.add_to(m)
        legends.append(({"title": "社区/村 (communities)",
                         "items": [{"color": "#1f4e9c", "label": f"社区/村边界 ({len(comm)})"}]}, lyr))

    # uncovered elderly cells of this unit, coloured by count
    cells = _read_cells(b.path, unit_code=str(unit_code))
    if len(cells):
        flag = f"covered_elderly_{b.elderly_t}min"
        unc = cells[~cells[flag].astype(bool) & (cells["pop_60plus"].astype(float) > 0)]
        breaks = _count_breaks(unc["pop_60plus"].to_numpy(float))
        colors = _COUNT_COLORS[: len(breaks)]
        if unc.crs is None:
            unc = unc.set_crs("EPSG:4326")
        title = b.label(b.elderly_uncovered)
        if len(unc) > MAX_CELL_FEATURES:
            # large rural units: one multipolygon per colour class (a coverage union of the cell squares,
            # exact, no simplification) instead of tens of thousands of squares the browser cannot draw
            g = _to_page(_cells_by_class(unc, breaks), basemap)
            feats = _features(g, lambda r: {"pop": str(r.label), "_color": colors[int(r.k)]})
        else:
            g = _to_page(unc, basemap)
            feats = _features(g, lambda r: {"pop": _fmt(float(r.pop_60plus), digits=0 if r.pop_60plus >= 10 else 1),
                                            "_color": _bin_color(float(r.pop_60plus), breaks, colors)})
        lyr = _geojson(feats, title, {"stroke": False, "fillOpacity": 0.7},
                       popup_fields=[("pop", b.label("pop_60plus"))])
        lyr.add_to(m)
        whole = all(float(x).is_integer() for x in breaks)
        legends.append((_legend(title, breaks, colors, nodata=False, digits=0 if whole else 2), lyr))

    gaps = gpd.read_file(b.path / "gaps.gpkg", layer="gaps")
    if gaps.crs is not None and gaps.crs != b.crs:
        gaps = gaps.to_crs(b.crs)
    gaps = gaps[gaps["unit_code"].astype(str) == str(unit_code)]
    gap_cols: list[tuple[str, dict[str, Any]]] = [
        ("service", {}), ("rank", {}), ("pop_60plus", {"digits": 0}), ("pop_0to3", {"digits": 0}),
        ("nearest_tt_min", {"digits": 1})]
    lyr = _geojson(_features(_to_page(gaps, basemap),
                             lambda r: {c: _fmt(getattr(r, c, None), **kw) for c, kw in gap_cols}),
                   "缺口区域 (gap areas)", {"color": "#b10026", "weight": 2.5, "fillColor": "#b10026",
                                            "fillOpacity": 0.12},
                   popup_fields=[(c, b.label(c)) for c, _kw in gap_cols])
    lyr.add_to(m)
    legends.append(({"title": "缺口区域 (gap areas)", "items": [{"color": "#b10026", "label": "缺口 gap"}]}, lyr))

    fac = b.facilities
    fac = fac[fac.geometry.within(box)] if len(fac) else fac
    fac_fields = [("name", b.label("name")), ("kind", b.label("kind")), ("capacity", "容量 (capacity)"),
                  ("floor_area", b.label("floor_area_m2")), ("snap", "落点距离 (snap distance)"),
                  ("status", b.label("status")), ("fac_id", b.label("fac_id"))]
    kinds = [k for k in FACILITY_KINDS if len(fac) and (fac["kind"] == k).any()]
    lyr = _geojson(_features(_to_page(fac, basemap), _facility_props), "设施 (facilities)",
                   {"color": "#222", "weight": 1.5, "fillOpacity": 0.95}, popup_fields=fac_fields,
                   tooltip_key="name",
                   marker=folium.CircleMarker(radius=7, color="#222", weight=1.5, fill=True,
                                              fill_opacity=0.95))
    lyr.add_to(m)
    legends.append(({"title": "设施类型 (facility kinds)",
                     "items": [{"color": KIND_COLORS[k], "label": FACILITY_KINDS[k], "shape": "circle"}
                               for k in kinds]}, lyr))

    _geojson(_features(_to_page(sel, basemap), lambda r: {"name": f"{r.unit_name} ({r.unit_code})"}),
             "单元边界 (unit boundary)", {"color": "#000", "weight": 3, "fill": False}, tooltip_key="name").add_to(m)
    folium.LayerControl(position="topright", collapsed=False).add_to(m)
    m.add_child(_PageScript(legends))

    def val(col: str, **kw: Any) -> str:
        if col not in unit.index:
            return ""
        return f"<tr><th>{e(b.label(col))}</th><td>{e(_fmt(unit.get(col), **kw))}</td></tr>"

    facts = "".join([
        val("unit_code"), val("unit_type"), val("unit_class"), val("area_type"), val("pop_60plus", digits=0),
        val(b.elderly_uncovered, digits=0), val(b.elderly_share, pct=True),
        val("meal_share_60plus", pct=True), val("meal_uncovered_60plus", digits=0),
        val("childcare_share_0to3_15min", pct=True), val("slots_per_1000", digits=1),
        val("slots_standard_per_1000", digits=1), val("beds_per_1000_60plus", digits=1),
        val("n_failed_standards", digits=0),
    ])
    m.get_root().add_child(_HtmlBlock(
        f'<aside class="cov-panel" id="side-panel"><p><a href="index.html">← 总览 (overview)</a></p>'
        f'<h2>{e(str(unit["unit_name"]))}</h2><table class="cov-table">{facts}</table>'
        f"<p>助餐配送半径：{e(unit_class)} {meal_t:g} 分钟 (城区15分钟、郊区30分钟)</p>"
        f"<h2>标准核查 (standards checklist)</h2>{_checklist_html(b, str(unit_code))}"
        f"<h2>缺口区域 (gap areas)</h2>{_gap_table_html(b, gaps, basemap)}</aside>"), name="cov_panel")
    return m


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def write_unit_page(build_dir: str | Path, maps_dir: str | Path, unit_code: str, *, basemap: str = "none",
                    tianditu_key: str = "", _build: _Build | None = None) -> Path:
    """Write ``<maps_dir>/<unit_code>.html`` (one 街道/乡镇, a folium page) and the assets it needs.

    Parameters
    ----------
    build_dir : the region's ``build/<region>/`` folder.
    maps_dir : the region's ``maps/<region>/`` folder (created).
    unit_code : a ``unit_code`` of ``indicators.gpkg`` layer ``units``.
    basemap : "none" (offline, no tile URL at all), "osm", "amap" (overlays shifted into GCJ-02) or
        "tianditu" (needs ``tianditu_key``).

    Returns
    -------
    Path of the page. Reads only what the unit needs, so pages can be rebuilt one at a time.
    Raises :class:`MapsError` if the rendered page would load any remote script or stylesheet.
    """
    _tiles(basemap, tianditu_key)  # validate the basemap before any work
    b = _build if _build is not None else _read_build(build_dir)
    maps_dir = Path(maps_dir)
    copy_assets(maps_dir)
    m = _unit_map(b, str(unit_code), basemap=basemap, tianditu_key=tianditu_key)
    out = _write_text(maps_dir / unit_page_name(unit_code), _render(m, basemap=basemap, tianditu_key=tianditu_key))
    log.debug("Wrote unit page %s", out)
    return out


def write_maps(build_dir: str | Path, maps_dir: str | Path, *, basemap: str = "none", region_title: str = "",
               tianditu_key: str = "", unit_codes: Iterable[str] | None = None,
               unit_pages: bool = True) -> list[Path]:
    """Write the overview ``index.html`` and one page per unit into ``maps_dir`` (``maps/<region>/``).

    Parameters
    ----------
    build_dir : ``build/<region>/``.
    maps_dir : ``maps/<region>/``; ``assets/`` (Leaflet, page script and style) is copied inside.
    basemap : see :func:`write_unit_page`.
    region_title : page title; default ``run_info.json`` ``region_title`` or ``region``.
    unit_codes : only these unit pages (default: every unit).
    unit_pages : False writes only ``index.html`` (its table links then point to pages not written).

    Returns
    -------
    The written pages: ``index.html`` first, then the unit pages in table order.
    """
    from tqdm import tqdm

    _tiles(basemap, tianditu_key)  # validate the basemap before any work
    b = _read_build(build_dir)
    maps_dir = Path(maps_dir)
    copy_assets(maps_dir)
    m = _overview_map(b, basemap=basemap, tianditu_key=tianditu_key, region_title=region_title)
    written = [_write_text(maps_dir / "index.html", _render(m, basemap=basemap, tianditu_key=tianditu_key))]
    codes = (list(unit_codes) if unit_codes is not None else list(b.units["unit_code"])) if unit_pages else []
    for code in tqdm(codes, desc="unit pages", unit="unit", disable=len(codes) < 2, leave=False):
        written.append(write_unit_page(build_dir, maps_dir, code, basemap=basemap, tianditu_key=tianditu_key,
                                       _build=b))
    log.info("Wrote %d map pages (%s basemap) to %s", len(written), basemap, maps_dir)
    return written


# --------------------------------------------------------------------------------------------
# Static PNG
# --------------------------------------------------------------------------------------------

CJK_FONT_NAMES = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Micro Hei",
                  "WenQuanYi Zen Hei", "Droid Sans Fallback", "AR PL UMing CN", "SimHei", "Microsoft YaHei",
                  "PingFang SC")


def find_cjk_font() -> str | None:
    """Name of an installed font that renders Chinese (matplotlib's list, then ``fc-list :lang=zh``)."""
    from matplotlib import font_manager

    names = {f.name for f in font_manager.fontManager.ttflist}
    for n in CJK_FONT_NAMES:
        if n in names:
            return n
    try:
        out = subprocess.run(["fc-list", ":lang=zh", "file"], check=False, capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.splitlines():
        path = line.split(":")[0].strip()
        if not path:
            continue
        try:
            font_manager.fontManager.addfont(path)
            return font_manager.FontProperties(fname=path).get_name()
        except (OSError, RuntimeError, ValueError):
            continue
    return None


def write_overview_png(build_dir: str | Path, out_png: str | Path, *, region_title: str = "",
                       dpi: int = 120) -> Path:
    """Static overview: units coloured by elderly 15-minute coverage share, labelled.

    Labels are unit names when a CJK font is installed (``fc-list :lang=zh``), else unit codes
    (no missing-glyph warnings). Returns ``out_png``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import BoundaryNorm, ListedColormap

    b = _read_build(build_dir)
    font = find_cjk_font()
    u = b.units
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    rc: dict[str, Any] = {"font.family": "sans-serif", "font.sans-serif": [font, "DejaVu Sans"]} if font else {}
    with plt.rc_context(rc):  # type: ignore[arg-type]  # stubs want Literal rc keys
        fig, ax = plt.subplots(figsize=(9, 8))
        cmap = ListedColormap(list(_SHARE_COLORS))
        norm = BoundaryNorm([*_SHARE_BREAKS, 1.0 + 1e-9], cmap.N)
        col = b.elderly_share
        vals = u[col].astype(float)
        has = vals.notna()
        if has.any():
            u[has].plot(ax=ax, column=col, cmap=cmap, norm=norm, edgecolor="#333", linewidth=0.8)
        if (~has).any():
            u[~has].plot(ax=ax, color=_NODATA, edgecolor="#333", linewidth=0.8)
        for _, r in u.iterrows():
            p = r.geometry.representative_point()
            name = f"{r['unit_name'] if font else r['unit_code']}\n{_fmt(r[col], pct=True)}"
            ax.annotate(name, (p.x, p.y), ha="center", va="center", fontsize=8,
                        bbox={"boxstyle": "round,pad=0.2", "fc": "white", "alpha": 0.7, "lw": 0})
        sm = plt.cm.ScalarMappable(cmap=cmap, norm=norm)
        cb = fig.colorbar(sm, ax=ax, shrink=0.7)
        cb.set_ticks(list(_SHARE_BREAKS) + [1.0])
        cb.set_ticklabels([f"{x:.0%}" for x in (*_SHARE_BREAKS, 1.0)])
        title = region_title or str(b.run_info.get("region_title") or b.run_info.get("region") or "")
        if not font and not title.isascii():
            title = str(b.run_info.get("region", ""))
        zh = b.label(col)
        cb.set_label(zh if font else f"Elderly {b.elderly_t}-min walk coverage (share of 60+)")
        ax.set_title((f"{title} — {zh}" if font else f"{title} - elderly {b.elderly_t}-minute coverage").strip(" -—"))
        ax.set_axis_off()
        fig.savefig(out_png, dpi=dpi, bbox_inches="tight", facecolor="white")
        plt.close(fig)
    log.info("Wrote overview PNG %s (CJK font: %s)", out_png, font or "none, labels are unit codes")
    return out_png
