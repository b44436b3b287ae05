"""The overview page ``index.html``: every unit with one switchable choropleth per service of the
build (its headline coverage share), plus places per 1000 and failed standards, a legend for each,
the region-level standards, and a sortable table of units (worst first by the lead service's
uncovered people) linking to the unit pages."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

import folium
import numpy as np
import pandas as pd

from coverage.maps.build import Build
from coverage.maps.context import (
    OVERVIEW_CLASSES,
    add_pane,
    read_roads,
    read_water,
    roads_layer,
    roads_legend,
)
from coverage.maps.page import (
    HtmlBlock,
    Legend,
    PageScript,
    features,
    geojson,
    new_map,
    snapping_rule_text,
    to_page,
    unit_page_name,
)
from coverage.maps.style import (
    FAIL_BREAKS,
    FAIL_COLORS,
    LOW_CONFIDENCE_TITLE,
    NOT_ASSESSED_LABEL,
    SHARE_BREAKS,
    SHARE_COLORS,
    SLOT_BREAKS,
    SLOT_COLORS,
    bin_color,
    fmt,
    fmt_standard,
    legend,
    not_assessed_legend,
    tidy_text,
)

__all__ = ["DATA_FILES", "choropleths", "overview_map", "std_mark", "std_unit", "table_columns"]

#: files of build/<region>/ named on the overview (name, what it holds)
DATA_FILES: tuple[tuple[str, str], ...] = (
    ("indicators.xlsx", "指标表 (中文表头)"), ("indicators.csv", "指标表"), ("standards.csv", "标准核查"),
    ("gaps.gpkg", "缺口区域"), ("facilities.csv", "设施"), ("rejects.csv", "未采用记录"),
    ("indicators.gpkg", "街道/社区边界与指标"), ("isochrones.gpkg", "等时圈"), ("run_info.json", "运行参数"),
)

#: choropleths after the services' shares: column, breaks, colours, legend format
EXTRA_CHOROPLETHS: tuple[tuple[str, Sequence[float], Sequence[str], dict[str, Any]], ...] = (
    ("slots_per_1000", SLOT_BREAKS, SLOT_COLORS, {"digits": 1}),
    ("n_failed_standards", FAIL_BREAKS, FAIL_COLORS, {"digits": 0}),
)


def choropleths(b: Build) -> list[tuple[str, str, Sequence[float], Sequence[str], dict[str, Any]]]:
    """(column, title, breaks, colours, format) of each overview base layer: one per service, then
    :data:`EXTRA_CHOROPLETHS`."""
    out: list[tuple[str, str, Sequence[float], Sequence[str], dict[str, Any]]] = [
        (b.headline(s)[1], b.share_label(s) + ("" if b.assessed(s) else f" — {NOT_ASSESSED_LABEL}"),
         SHARE_BREAKS, SHARE_COLORS, {"pct": True, "service": s.id})
        for s in b.services.values()]
    out += [(c, b.label(c), br, co, kw) for c, br, co, kw in EXTRA_CHOROPLETHS]
    return out


def table_columns(b: Build) -> list[tuple[str, str, dict[str, Any]]]:
    """(column, header, format) of the units table (and the popups): ids, the lead service's demand
    and uncovered people, every service's share, places and beds per 1000, failed standards; columns
    the build lacks are left out."""
    lead = b.lead
    cols: list[tuple[str, str, dict[str, Any]]] = [
        (c, b.label(c), {}) for c in ("unit_name", "unit_code", "unit_type", "unit_class")]
    cols += [(lead.demand_col, b.label(lead.demand_col), {"digits": 0}),
             (b.headline(lead)[2], b.uncovered_label(lead), {"digits": 0})]
    cols += [(b.headline(s)[1], b.share_label(s), {"pct": True}) for s in b.services.values()]
    cols += [("slots_per_1000", b.label("slots_per_1000"), {"digits": 1}),
             ("beds_per_1000_60plus", b.label("beds_per_1000_60plus"), {"digits": 1}),
             ("n_failed_standards", b.label("n_failed_standards"), {"digits": 0}),
             ("confidence_reasons", "低可信原因 (low confidence: why)", {})]
    seen: set[str] = set()
    out = []
    for c, lab, kw in cols:
        if c in b.units.columns and c not in seen:
            seen.add(c)
            out.append((c, lab, kw))
    return out


def std_unit(standard_id: Any) -> str:
    """The unit of a standard (``STANDARDS[id].unit``; "" for an unknown id)."""
    from coverage.standards import STANDARDS

    st = STANDARDS.get(str(standard_id))
    return st.unit if st is not None else ""


def std_mark(passed: Any) -> str:
    return ('<span class="pass">✓ 达标</span>' if passed is True else
            '<span class="fail">✗ 未达标</span>' if passed is False else '<span class="na">— 无法检查</span>')


def _region_summary_html(b: Build) -> str:
    """Header lines of the overview: region-level standards (pass/fail, value, shortfall) and the data
    files of ``build/<region>/`` by name (links to ../../build are not reliable when pages are copied)."""
    e = html.escape
    std = b.standards
    items = []
    if len(std) and "level" in std.columns:
        for _, r in std[std["level"].astype(str) == "region"].iterrows():
            unit = std_unit(r.get("standard_id", ""))
            title = str(r.get("title_zh", "") or r.get("standard_id", ""))
            txt = f"{fmt_standard(r.get('value', ''), unit)}"
            req = fmt_standard(r.get("required", ""), unit)
            if req != "—":
                txt += f" (要求 {req})"
            short = tidy_text(r.get("shortfall", ""))
            if short:
                txt += f"，{'缺口' if r['passed'] is False else '说明'}: {short}"
            src = tidy_text(r.get("source", ""))
            items.append(f'<span class="cov-region-std" title="{e(src, quote=True)}">{std_mark(r["passed"])} '
                         f"{e(title)}: {e(txt)}</span>")
    std_line = ('<p class="cov-region" id="region-standards"><b>全域标准 (region standards):</b> '
                + " · ".join(items) + "</p>") if items else ""
    region = str(b.run_info.get("region") or b.path.name)
    files = [f"<code>{e(n)}</code> {e(what)}" for n, what in DATA_FILES if (b.path / n).is_file()]
    files_line = ('<p class="cov-files" id="data-files"><b>数据文件 (data files) in '
                  f"<code>build/{e(region)}/</code>:</b> " + "，".join(files) + "</p>") if files else ""
    outside = (b.run_info.get("population_outside") or {}).get("text", "")
    outside_line = (f'<p class="cov-outside" id="population-outside"><b>单元外人口 (population outside every '
                    f"unit):</b> {e(str(outside))}</p>") if outside else ""
    return std_line + outside_line + files_line + _after_run_links_html(b)


def _after_run_links_html(b: Build) -> str:
    """Links to the region's plans (``plan_<service>.html``) and scenarios (``scenarios/<name>/``), for
    those whose files exist in the build."""
    e = html.escape
    links = []
    for p in sorted((b.path / "plan").glob("*/plan.json")):
        sid = p.parent.name
        s = b.services.get(sid)
        href = e(f"plan_{sid}.html", quote=True)
        label = e(s.label_zh if s else sid)
        links.append(f'<a class="cov-link" href="{href}">选址规划 {label} (plan: {e(sid)})</a>')
    for p in sorted((b.path / "scenarios").glob("*/scenario.json")):
        name = p.parent.name
        href = e(f"scenarios/{name}/index.html", quote=True)
        diff = e(f"scenarios/{name}/diff.html", quote=True)
        links.append(f'<a class="cov-link" href="{href}">情景 {e(name)} (scenario)</a> '
                     f'<a class="cov-link" href="{diff}">(对比 diff)</a>')
    if not links:
        return ""
    return '<p class="cov-after-run" id="plans-scenarios"><b>规划与情景 (plans, scenarios):</b> ' + \
        " · ".join(links) + "</p>"


def _table_html(b: Build, u: Any, table: list[tuple[str, str, dict[str, Any]]]) -> str:
    e = html.escape
    head = "".join(f"<th>{e(lab)}</th>" for _c, lab, _kw in table)
    rows = []
    for _, r in u.iterrows():
        cells = []
        for c, _lab, kw in table:
            v = r.get(c)
            txt = e(fmt(v, **kw))
            if c == "unit_name":
                txt = f'<a href="{e(unit_page_name(r["unit_code"]))}">{txt}</a>'
            isnum = isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
            sort = (f"{float(v):.6g}" if math.isfinite(float(v)) else "") if isnum else str(v)
            cls = ' class="num"' if isnum else ""
            cells.append(f'<td{cls} data-sort="{e(sort)}">{txt}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<div class="cov-table-wrap"><table class="cov-table cov-sortable" id="units-table">'
            f"<thead><tr>{head}</tr></thead><tbody>\n" + "\n".join(rows) + "\n</tbody></table></div>")


#: colour of the dashed outline of a low-confidence unit
LOW_CONFIDENCE_COLOR = "#6a1b9a"
#: simplification of the overview's roads (metres): trunk .. tertiary only, kept small
OVERVIEW_ROADS_SIMPLIFY_M = 15.0
#: at most this many low-confidence units named in the legend note (all are outlined on the map)
LOW_CONFIDENCE_LISTED = 12


def low_confidence_layer(b: Build, page: Any, basemap: str) -> tuple[folium.GeoJson, dict[str, Any]] | None:
    """The overlay "低可信 / low confidence": a thick dashed outline (no fill: a click inside still
    reaches the choropleth) around each low-confidence unit, its reasons in the tooltip and popup, and
    a legend naming the units; None when no unit is of low confidence."""
    low = b.low_confidence
    sel = page[page["unit_code"].astype(str).isin(list(low))]
    if not len(sel):
        return None

    def props(row: Any) -> dict[str, Any]:
        code = str(row.unit_code)
        href = html.escape(unit_page_name(code), quote=True)
        return {"_title": f"低可信 (low confidence): {row.unit_name} ({code}) — {low[code]}",
                "unit": f"{row.unit_name} ({code})", "reasons": low[code],
                "_link_html": f'<a class="cov-link" href="{href}">打开街道/乡镇页面 →</a>'}

    name = f"{LOW_CONFIDENCE_TITLE} ({len(sel)})"
    layer = geojson(features(sel, props), name,
                    {"color": LOW_CONFIDENCE_COLOR, "weight": 5, "opacity": 0.95, "dashArray": "10 7",
                     "fill": False},
                    popup_fields=[("unit", "单元 (unit)"), ("reasons", "原因 (reasons)"), ("_link_html", "")],
                    tooltip_key="_title")
    listed = [f"{r.unit_name} ({r.unit_code}): {low[str(r.unit_code)]}"
              for r in sel.head(LOW_CONFIDENCE_LISTED).itertuples()]
    more = len(sel) - len(listed)
    note = "; ".join(listed) + (f"; … 另 {more} 个 (and {more} more)" if more > 0 else "")
    lg = {"title": LOW_CONFIDENCE_TITLE,
          "items": [{"color": LOW_CONFIDENCE_COLOR, "shape": "dash",
                     "label": f"虚线粗边框: 数据可信度低 ({len(sel)} 个单元)"}], "note": note}
    return layer, lg


def overview_map(b: Build, *, basemap: str, tianditu_key: str, region_title: str) -> folium.Map:
    """The overview page: one base layer (radio) per choropleth, legend, sortable units table."""
    u = b.units.sort_values(b.headline(b.lead)[2], ascending=False, na_position="last")
    page = to_page(u, basemap, simplify_m=5.0)
    table = table_columns(b)
    fields = [(c, lab) for c, lab, _kw in table]
    fmts = {c: kw for c, _lab, kw in table}
    title = region_title or b.region_title()
    m = new_map(basemap, tianditu_key, page.total_bounds, title=f"{title} 一老一小服务覆盖 — 总览".strip(),
                rule=snapping_rule_text(b.run_info), extra_html=_region_summary_html(b))

    legends: list[Legend] = []
    add_pane(m)
    roads = read_roads(b.path, b.crs, classes=OVERVIEW_CLASSES, simplify_m=OVERVIEW_ROADS_SIMPLIFY_M)
    water = read_water(b.path, b.crs, simplify_m=OVERVIEW_ROADS_SIMPLIFY_M)
    roads = pd.concat([water, roads], ignore_index=True) if len(water) else roads
    roads_lyr = roads_layer(roads, basemap, digits=5)
    for i, (col, name, breaks, colors, kw) in enumerate(choropleths(b)):

        def props(row: Any, col: str = col, breaks: Sequence[float] = breaks,
                  colors: Sequence[str] = colors) -> dict[str, Any]:
            d = row._asdict()
            p: dict[str, Any] = {k: fmt(d.get(k), **fmts.get(k, {})) for k, _lab in fields}
            p["_color"] = bin_color(float(d.get(col, np.nan)), breaks, colors)
            p["_title"] = f"{d['unit_name']} ({d['unit_code']})"
            href = html.escape(unit_page_name(d["unit_code"]), quote=True)
            p["_link_html"] = f'<a class="cov-link" href="{href}">打开街道/乡镇页面 →</a>'
            return p

        layer = geojson(features(page, props), name, {"color": "#333", "weight": 1, "fillOpacity": 0.75},
                        overlay=False, show=i == 0, popup_fields=[*fields, ("_link_html", "")],
                        tooltip_key="_title")
        layer.add_to(m)
        sid = kw.get("service")
        lg = (not_assessed_legend(name, b.not_assessed[sid]) if sid in b.not_assessed
              else legend(name, breaks, colors, pct=kw.get("pct", False), digits=kw.get("digits", 0)))
        legends.append((lg, layer))
    if roads_lyr is not None:
        roads_lyr.add_to(m)
        legends.append((roads_legend(roads), roads_lyr))
    low = low_confidence_layer(b, page, basemap)
    if low is not None:
        low[0].add_to(m)
        legends.append((low[1], low[0]))
    folium.LayerControl(position="topright", collapsed=False).add_to(m)
    m.add_child(PageScript(legends))
    m.get_root().add_child(HtmlBlock(_table_html(b, u, table)), name="cov_table")
    return m
