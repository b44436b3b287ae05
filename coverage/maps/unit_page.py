"""The page of one 街道/乡镇: a map assembled from :data:`LAYER_BUILDERS` and a side panel.

Each layer builder is a function ``(build, unit, ctx) -> [(layer, legend or None), ...]``; the page
adds the layers in list order (the first drawn lowest) and a legend block for each legend. Adding a
layer to every unit page is adding a function to the list. Every service of the build gets its bands
(its thresholds, shades of its colour; a class-rule service such as meals the unit's own threshold)
and its gap areas (in its ``gap_color``); the lead service (the registry's first) also its uncovered
cells coloured by count.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from coverage.errors import MapsError
from coverage.maps.build import Build, read_cells, read_communities, read_gaps
from coverage.maps.context import add_pane, read_roads, read_water, roads_layer, roads_legend
from coverage.maps.overview import std_mark, std_unit
from coverage.maps.page import HtmlBlock, PageScript, features, geojson, new_map, snapping_rule_text, to_page
from coverage.maps.style import (
    COUNT_COLORS,
    LOW_CONFIDENCE_TITLE,
    NOT_ASSESSED_LABEL,
    band_colors,
    bin_color,
    count_breaks,
    fmt,
    fmt_standard,
    kind_color,
    legend,
    num,
    safe_color,
    tidy_text,
)
from coverage.services import Service

__all__ = ["LAYER_BUILDERS", "MAX_CELL_FEATURES", "SURROUNDINGS_M", "LayerBuilder", "UnitContext", "unit_map"]

#: metres added around a unit's bounding box for the "surroundings" clip of isochrones/facilities
SURROUNDINGS_M = 1500.0
#: simplification of a unit page's roads (metres)
UNIT_ROADS_SIMPLIFY_M = 2.0
#: above this many uncovered cells a unit page draws one polygon per colour class instead of each cell
MAX_CELL_FEATURES = 3000
_MODE = {"walk": ("步行", "walk"), "delivery": ("配送", "delivery")}

#: a layer of the page and its legend (None: no legend block)
Layer = tuple[folium.GeoJson, dict[str, Any] | None]


@dataclass(frozen=True)
class UnitContext:
    """What the layer builders share: the unit's code, its boundary row, the basemap, the surroundings
    box (metric CRS) and the unit's gap areas."""

    code: str
    sel: gpd.GeoDataFrame
    basemap: str
    box: shapely.Polygon
    gaps: gpd.GeoDataFrame
    #: ids of the services with gap areas anywhere in the build (each gets a layer, empty or not)
    gap_services: frozenset[str]


LayerBuilder = Callable[[Build, pd.Series, UnitContext], list[Layer]]


def _iso_clip(b: Build, layer: str, box: Any) -> gpd.GeoDataFrame:
    g = gpd.read_file(b.path / "isochrones.gpkg", layer=layer, bbox=tuple(box.bounds))
    if g.crs is not None and g.crs != b.crs:
        g = g.to_crs(b.crs)
    g = g.set_geometry(g.geometry.intersection(box))
    return g[~g.geometry.is_empty]


# --------------------------------------------------------------------------------------------
# Layer builders
# --------------------------------------------------------------------------------------------


def context_roads(b: Build, unit: pd.Series, ctx: UnitContext) -> list[Layer]:
    """Every road class of the build's network within the surroundings box, grey, under the data
    (:mod:`coverage.maps.context`; the network file has no water, so none is drawn)."""
    roads = read_roads(b.path, b.crs, box=ctx.box, simplify_m=UNIT_ROADS_SIMPLIFY_M)
    water = read_water(b.path, b.crs, box=ctx.box, simplify_m=UNIT_ROADS_SIMPLIFY_M)
    roads = pd.concat([water, roads], ignore_index=True) if len(water) else roads
    lyr = roads_layer(roads, ctx.basemap, digits=6)
    return [] if lyr is None else [(lyr, roads_legend(roads))]


def _class_rule_layer(b: Build, s: Service, unit: pd.Series, ctx: UnitContext) -> list[Layer]:
    unit_class = str(unit.get("unit_class", ""))
    t = s.threshold_min_for_class(unit_class)
    layer = b.iso_layers.get((s.id, t))
    if layer is None:
        return []
    g = to_page(_iso_clip(b, layer, ctx.box), ctx.basemap, simplify_m=2.0)
    lab = f"{s.label_zh}{_MODE.get(s.mode, ('', ''))[0]} {t:g} 分钟 ({unit_class})"
    color = safe_color(s.color)
    lyr = geojson(features(g, lambda r: {"band": lab}), lab,
                  {"color": color, "weight": 2, "dashArray": "6 4", "fill": False}, tooltip_key="band")
    title = b.label(s.threshold_col, f"{s.label_zh}时间标准 ({s.label_en} threshold)")
    return [(lyr, {"title": title, "items": [{"color": color, "label": lab}]})]


def service_bands(b: Build, unit: pd.Series, ctx: UnitContext) -> list[Layer]:
    """Per service: its isochrone bands clipped to the surroundings, widest first so the nearest band
    draws on top, in shades of the service colour (one legend per service, on the widest band); a
    class-rule service draws the unit's own threshold as a dashed outline. The lead service's bands
    and class-rule outlines are shown, the other services' bands are listed in the layer control."""
    out: list[Layer] = []
    for s in b.services.values():
        if s.has_class_rule:
            out += _class_rule_layer(b, s, unit, ctx)
            continue
        colors = band_colors(s.color, s.thresholds_min)
        mode_zh, mode_en = _MODE.get(s.mode, ("", ""))
        layers: list[Layer] = []
        items = []
        for t in sorted(s.thresholds_min, reverse=True):
            name = b.iso_layers.get((s.id, float(t)))
            if name is None:
                continue
            g = to_page(_iso_clip(b, name, ctx.box), ctx.basemap, simplify_m=2.0)
            band, col = f"{t:g} 分钟", colors[float(t)]
            items.append({"color": col, "label": band})
            def band_props(_r: Any, band: str = band) -> dict[str, Any]:
                return {"band": band}

            lyr = geojson(features(g, band_props),
                          f"{s.label_zh}{mode_zh} {t:g} 分钟 ({s.label_en} {t:g} min {mode_en})",
                          {"color": col, "weight": 1, "fillColor": col, "fillOpacity": 0.35},
                          tooltip_key="band", show=s is b.lead)
            layers.append((lyr, None))
        if layers:
            title = f"{s.label_zh}{mode_zh}圈 ({s.label_en} {mode_en} bands)"
            layers[0] = (layers[0][0], {"title": title, "items": items[::-1]})
            out += layers
    return out


def _community_columns(b: Build) -> list[tuple[str, dict[str, Any]]]:
    demand = list(dict.fromkeys(s.demand_col for s in b.services.values()))
    cols: list[tuple[str, dict[str, Any]]] = [("community_code", {}), ("pop_total", {"digits": 0})]
    cols += [(c, {"digits": 0}) for c in demand if c != "pop_total"]
    cols += [(b.headline(s)[1], {"pct": True}) for s in b.services.values()]
    cols += [(b.headline(b.lead)[2], {"digits": 0}), ("slots_per_1000", {"digits": 1}),
             ("beds_per_1000_60plus", {"digits": 1}), ("n_failed_standards", {"digits": 0})]
    return cols


def _community_failures(b: Build, comm: gpd.GeoDataFrame) -> dict[str, list[str]]:
    """community_code -> titles of its failed community-level standards (standards.csv)."""
    std = b.standards
    if not len(std) or "level" not in std.columns:
        return {}
    ours = std["unit_code"].astype(str).isin(comm["community_code"])
    rows = std[(std["level"].astype(str) == "community") & ours]
    out: dict[str, list[str]] = {}
    for _, r in rows[rows["passed"].map(lambda v: v is False)].iterrows():
        out.setdefault(str(r["unit_code"]), []).append(str(r.get("title_zh", "") or r.get("standard_id", "")))
    return out


def communities(b: Build, unit: pd.Series, ctx: UnitContext) -> list[Layer]:
    """The unit's 社区/村 boundaries with their indicators and failed standards in the popup."""
    comm = read_communities(b, ctx.code)
    if comm is None:
        return []
    ckw = dict(_community_columns(b))
    cfields = [(c, b.label(c)) for c in ckw if c in comm.columns]
    failed = _community_failures(b, comm)

    def cprops(r: Any) -> dict[str, Any]:
        d = r._asdict()
        p = {c: fmt(d.get(c), **ckw[c]) for c, _lab in cfields}
        p["_title"] = f"{d.get('community_name', '')} ({d.get('community_code', '')})"
        p["failed"] = "; ".join(failed.get(str(d.get("community_code", "")), [])) or "—"
        return p

    lyr = geojson(features(to_page(comm, ctx.basemap, simplify_m=1.0), cprops), "社区/村边界 (communities)",
                  {"color": "#1f4e9c", "weight": 2.5, "opacity": 0.9, "fill": True, "fillOpacity": 0.0},
                  popup_fields=[*cfields, ("failed", "未达标标准 (failed standards)")], tooltip_key="_title")
    return [(lyr, {"title": "社区/村 (communities)",
                   "items": [{"color": "#1f4e9c", "label": f"社区/村边界 ({len(comm)})"}]})]


def cells_by_class(cells: gpd.GeoDataFrame, breaks: list[float],
                   column: str = "pop_60plus") -> gpd.GeoDataFrame:
    """Cell squares merged per colour class (``k``: class index, ``label``: its range of ``column`` per
    cell) with a coverage union: exact, since the squares tile without overlapping."""
    v = cells[column].to_numpy(float)
    k = np.clip(np.searchsorted(np.asarray(breaks), v, side="right") - 1, 0, len(breaks) - 1)
    rows = []
    for i in np.unique(k):
        hi = f" – < {fmt(breaks[i + 1], digits=1)}" if i + 1 < len(breaks) else ""
        geoms = cells.geometry.to_numpy()[k == i]
        label = f"≥ {fmt(breaks[i], digits=1)}{hi} (每格 per cell; {int((k == i).sum())} 格)"
        rows.append({"k": int(i), "label": label, "geometry": shapely.coverage_union_all(geoms)})
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=cells.crs)


def uncovered_cells(b: Build, unit: pd.Series, ctx: UnitContext) -> list[Layer]:
    """Cells of the unit with people of the lead service's demand not covered (headline rule),
    coloured by count; above :data:`MAX_CELL_FEATURES` one exact polygon per colour class (large rural
    units would otherwise send tens of thousands of squares the browser cannot draw)."""
    s = b.lead
    flag, _share, unc_col = b.headline(s)
    if not b.assessed(s):
        return []  # no service assessed: there is no "uncovered" to draw
    cells = read_cells(b.path, unit_code=ctx.code)
    if not len(cells) or flag not in cells.columns or s.demand_col not in cells.columns:
        return []
    demand = s.demand_col
    unc = cells[~cells[flag].astype(bool) & (cells[demand].astype(float) > 0)]
    breaks = count_breaks(unc[demand].to_numpy(float))
    colors = COUNT_COLORS[: len(breaks)]
    if unc.crs is None:
        unc = unc.set_crs("EPSG:4326")
    title = b.uncovered_label(s)
    if len(unc) > MAX_CELL_FEATURES:
        g = to_page(cells_by_class(unc, breaks, demand), ctx.basemap)
        feats = features(g, lambda r: {"pop": str(r.label), "_color": colors[int(r.k)]})
    else:
        g = to_page(unc, ctx.basemap)

        def props(r: Any) -> dict[str, Any]:
            v = float(getattr(r, demand))
            return {"pop": fmt(v, digits=0 if v >= 10 else 1), "_color": bin_color(v, breaks, colors)}

        feats = features(g, props)
    lyr = geojson(feats, title, {"stroke": False, "fillOpacity": 0.7},
                  popup_fields=[("pop", b.label(demand))])
    whole = all(float(x).is_integer() for x in breaks)
    return [(lyr, legend(title, breaks, colors, nodata=False, digits=0 if whole else 2))]


_GAP_COLS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("service", {}), ("rank", {}), ("pop_60plus", {"digits": 0}), ("pop_0to3", {"digits": 0}),
    ("nearest_tt_min", {"digits": 1}))


def gap_areas(b: Build, unit: pd.Series, ctx: UnitContext) -> list[Layer]:
    """One layer per service with gap areas in the build (empty for a unit without that service's
    gaps), drawn in the service's ``gap_color``."""
    out: list[Layer] = []
    for s in (s for s in b.services.values() if s.id in ctx.gap_services):
        g = ctx.gaps[ctx.gaps["service"] == s.id]
        color = safe_color(s.gap_color)
        cols = [(c, kw) for c, kw in _GAP_COLS if c in g.columns]

        def props(r: Any, cols: list[tuple[str, dict[str, Any]]] = cols, s: Service = s) -> dict[str, Any]:
            p = {c: fmt(getattr(r, c, None), **kw) for c, kw in cols}
            p["service"] = s.label_zh
            return p

        name = f"{s.label_zh}缺口区域 ({s.label_en} gap areas)"
        lyr = geojson(features(to_page(g, ctx.basemap), props), name,
                      {"color": color, "weight": 2.5, "fillColor": color, "fillOpacity": 0.12},
                      popup_fields=[(c, b.label(c)) for c, _kw in cols])
        out.append((lyr, {"title": name, "items": [{"color": color, "label": f"缺口 gap ({len(g)})"}]}))
    return out


def _facility_props(b: Build) -> Callable[[Any], dict[str, Any]]:
    def props(row: Any) -> dict[str, Any]:
        d = row._asdict()
        kind = str(d.get("kind", ""))
        cap = []
        for col, lab in (("beds", "床位"), ("nursing_beds", "护理型床位"), ("childcare_slots", "托位")):
            v = d.get(col)
            if v is not None and isinstance(v, (int, float)) and math.isfinite(float(v)):
                cap.append(f"{lab} {float(v):,.0f}")
        snaps = []
        for mode, (lab, _en) in _MODE.items():
            v = d.get(f"snap_dist_{mode}_m")
            if v is not None and isinstance(v, (int, float)):
                snaps.append(f"{lab}路网 {fmt(float(v), unit='m')}")
        k = b.kinds.get(kind)
        return {
            "name": str(d.get("name", "")), "kind": k.label_zh if k is not None else kind,
            "capacity": "; ".join(cap) or "—", "floor_area": fmt(d.get("floor_area_m2"), unit="m²"),
            "snap": "; ".join(snaps) or "—", "status": str(d.get("status", "") or "—"),
            "fac_id": str(d.get("fac_id", "")), "_color": kind_color(b.kinds, kind),
        }

    return props


def facilities(b: Build, unit: pd.Series, ctx: UnitContext) -> list[Layer]:
    """Facilities in the surroundings, coloured by kind (the build's kinds); legend of the kinds present."""
    fac = b.facilities
    fac = fac[fac.geometry.within(ctx.box)] if len(fac) else fac
    fields = [("name", b.label("name")), ("kind", b.label("kind")), ("capacity", "容量 (capacity)"),
              ("floor_area", b.label("floor_area_m2")), ("snap", "落点距离 (snap distance)"),
              ("status", b.label("status")), ("fac_id", b.label("fac_id"))]
    present = list(dict.fromkeys(fac["kind"].astype(str))) if len(fac) else []
    ordered = [k for k in b.kinds if k in present] + [k for k in present if k not in b.kinds]
    lyr = geojson(features(to_page(fac, ctx.basemap), _facility_props(b)), "设施 (facilities)",
                  {"color": "#222", "weight": 1.5, "fillOpacity": 0.95}, popup_fields=fields,
                  tooltip_key="name",
                  marker=folium.CircleMarker(radius=7, color="#222", weight=1.5, fill=True,
                                             fill_opacity=0.95))
    items = [{"color": kind_color(b.kinds, k), "label": b.kinds[k].label_zh if k in b.kinds else k,
              "shape": "circle"} for k in ordered]
    return [(lyr, {"title": "设施类型 (facility kinds)", "items": items})]


def boundary(b: Build, unit: pd.Series, ctx: UnitContext) -> list[Layer]:
    """The unit's boundary, drawn last (on top), no legend."""
    fc = features(to_page(ctx.sel, ctx.basemap), lambda r: {"name": f"{r.unit_name} ({r.unit_code})"})
    style = {"color": "#000", "weight": 3, "fill": False}
    return [(geojson(fc, "单元边界 (unit boundary)", style, tooltip_key="name"), None)]


#: the layers of every unit page, bottom to top
LAYER_BUILDERS: list[LayerBuilder] = [
    context_roads, service_bands, communities, uncovered_cells, gap_areas, facilities, boundary]


# --------------------------------------------------------------------------------------------
# Side panel
# --------------------------------------------------------------------------------------------


def _checklist_html(b: Build, unit_code: str) -> str:
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
    th = f"<th>{e(b.label('title_zh'))}</th><th>{e(b.label('passed'))}</th><th>实际 / 要求 / 缺口</th>"
    out = []
    for _, r in rows.iterrows():
        p = r["passed"]
        title = str(r.get("title_zh", "") or r.get("standard_id", ""))
        source = tidy_text(r.get("source", ""))
        unit = std_unit(r.get("standard_id", ""))
        src = (f'<div class="cov-source" title="{e(source, quote=True)}">来源: {e(source)}</div>'
               if source else "")
        vals = [f'<div><span class="cov-k">实际</span> {e(fmt_standard(r.get("value", ""), unit))}</div>',
                f'<div><span class="cov-k">要求</span> {e(fmt_standard(r.get("required", ""), unit))}</div>']
        short = tidy_text(r.get("shortfall", ""))
        if short:
            k = "缺口" if p is False else "说明"
            vals.append(f'<div class="cov-short"><span class="cov-k">{k}</span> {e(short)}</div>')
        out.append(f'<tr class="{"fail-row" if p is False else ""}"><td>{e(title)}{src}</td>'
                   f'<td class="cov-mark">{std_mark(p)}</td><td class="cov-vals">{"".join(vals)}</td></tr>')
    return ('<table class="cov-table cov-checklist" id="standards-checklist">'
            f"<thead><tr>{th}</tr></thead><tbody>" + "".join(out) + "</tbody></table>")


def _gap_table_html(b: Build, gaps: gpd.GeoDataFrame, basemap: str) -> str:
    """Side-panel table of the unit's gap areas: service and rank, people of each demand group, nearest
    facility and minutes; each row carries ``data-zoom`` (page-coordinate bounds) so a click zooms."""
    e = html.escape
    if not len(gaps):
        return '<p id="gap-table">本单元无缺口区域 / no gap areas in this unit</p>'
    names = (dict(zip(b.facilities["fac_id"].astype(str), b.facilities["name"].astype(str), strict=True))
             if len(b.facilities) and {"fac_id", "name"} <= set(b.facilities.columns) else {})
    page = to_page(gaps, basemap)
    order = list(b.services)
    page = page.assign(_svc=page["service"].map(lambda v: order.index(v) if v in order else len(order)),
                       _rank=pd.to_numeric(page["rank"], errors="coerce")).sort_values(["_svc", "_rank"])
    rows = []
    for _, r in page.iterrows():
        g = r.geometry
        zoom = ""
        if g is not None and not g.is_empty:
            x0, y0, x1, y1 = (round(float(v), 6) for v in g.bounds)
            zoom = f' data-zoom="{e(json.dumps([[y0, x0], [y1, x1]]), quote=True)}" tabindex="0"'
        fid = str(r.get("nearest_fac_id", "") or "")
        svc = b.services.get(str(r["service"]))
        rows.append(f'<tr class="cov-zoom"{zoom} title="点击缩放到缺口 (click to zoom)">'
                    f"<td>{e(svc.label_zh if svc else str(r['service']))} #{e(fmt(num(r.get('rank'))))}</td>"
                    f'<td class="num">{e(fmt(num(r.get("pop_60plus"))))}</td>'
                    f'<td class="num">{e(fmt(num(r.get("pop_0to3"))))}</td>'
                    f"<td>{e(names.get(fid, fid) or '—')}</td>"
                    f'<td class="num">{e(fmt(num(r.get("nearest_tt_min")), digits=1))}</td></tr>')
    return ('<table class="cov-table cov-gaps" id="gap-table"><thead><tr><th>缺口</th><th>60岁+</th>'
            "<th>0-3岁</th><th>最近设施</th><th>分钟</th></tr></thead><tbody>" + "".join(rows)
            + "</tbody></table>")


def _panel_html(b: Build, unit: pd.Series, ctx: UnitContext) -> str:
    e = html.escape

    def val(col: str, label: str = "", **kw: Any) -> str:
        if col not in unit.index:
            return ""
        return f"<tr><th>{e(label or b.label(col))}</th><td>{e(fmt(unit.get(col), **kw))}</td></tr>"

    facts = [val(c) for c in ("unit_code", "unit_type", "unit_class", "area_type")]
    facts += [val(c, digits=0) for c in dict.fromkeys(s.demand_col for s in b.services.values())]
    for s in b.services.values():
        _flag, share, unc = b.headline(s)
        if not b.assessed(s):
            facts.append(f'<tr class="cov-not-assessed" title="{e(b.not_assessed[s.id], quote=True)}">'
                         f"<th>{e(b.share_label(s))}</th><td>{e(NOT_ASSESSED_LABEL)}</td></tr>")
            continue
        facts += [val(share, b.share_label(s), pct=True), val(unc, b.uncovered_label(s), digits=0)]
    facts += [val("slots_per_1000", digits=1), val("slots_standard_per_1000", digits=1),
              val("beds_per_1000_60plus", digits=1), val("n_failed_standards", digits=0)]
    why = b.low_confidence.get(ctx.code, "")
    if why:
        facts.insert(0, f'<tr class="cov-low-confidence"><th>低可信 (low confidence)</th>'
                        f"<td>{e(why)}</td></tr>")
    unit_class = str(unit.get("unit_class", ""))
    rules = "".join(
        f"<p>{e(s.label_zh)}时间标准：{e(unit_class)} {s.threshold_min_for_class(unit_class):g} 分钟 ("
        + e("、".join(f"{k}{v:g}分钟" for k, v in s.class_thresholds_min.items())) + ")</p>"
        for s in b.services.values() if s.has_class_rule)
    return (f'<aside class="cov-panel" id="side-panel"><p><a href="index.html">← 总览 (overview)</a></p>'
            f'<h2>{e(str(unit["unit_name"]))}</h2><table class="cov-table">{"".join(facts)}</table>{rules}'
            f"<h2>标准核查 (standards checklist)</h2>{_checklist_html(b, ctx.code)}"
            f"<h2>缺口区域 (gap areas)</h2>{_gap_table_html(b, ctx.gaps, ctx.basemap)}</aside>")


def unit_map(b: Build, unit_code: str, *, basemap: str, tianditu_key: str,
             builders: list[LayerBuilder] | None = None) -> folium.Map:
    """One 街道/乡镇: the layers of ``builders`` (default :data:`LAYER_BUILDERS`) and the side panel."""
    code = str(unit_code)
    sel = b.units[b.units["unit_code"] == code]
    if not len(sel):
        known = ", ".join(b.units["unit_code"].head(10))
        raise MapsError(f"unit_code {code!r} is not in {b.path / 'indicators.gpkg'} (known: {known}, ...)")
    unit = sel.iloc[0]
    minx, miny, maxx, maxy = unit.geometry.bounds
    d = SURROUNDINGS_M
    gaps = read_gaps(b)
    ctx = UnitContext(code, sel, basemap, shapely.box(minx - d, miny - d, maxx + d, maxy + d),
                      gaps[gaps["unit_code"] == code], frozenset(gaps["service"]))
    bx = to_page(gpd.GeoDataFrame(geometry=[unit.geometry], crs=b.crs), basemap).total_bounds
    why = b.low_confidence.get(code, "")
    banner = (f'<p class="cov-low-confidence-banner" id="low-confidence">'
              f"<b>{html.escape(LOW_CONFIDENCE_TITLE)}:</b> {html.escape(why)}</p>") if why else ""
    m = new_map(basemap, tianditu_key, bx, title=f"{unit['unit_name']} ({code}) — 一老一小服务覆盖",
                rule=snapping_rule_text(b.run_info), extra_html=banner)
    add_pane(m)
    legends = []
    for build_layers in LAYER_BUILDERS if builders is None else builders:
        for lyr, lg in build_layers(b, unit, ctx):
            lyr.add_to(m)
            if lg is not None:
                legends.append((lg, lyr))
    folium.LayerControl(position="topright", collapsed=False).add_to(m)
    m.add_child(PageScript(legends))
    m.get_root().add_child(HtmlBlock(_panel_html(b, unit, ctx)), name="cov_panel")
    return m
