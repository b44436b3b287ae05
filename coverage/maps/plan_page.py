"""The plan page (``maps/<region>/plan_<service>.html``): recommended sites, the cells they newly cover,
the gaps that remain, the existing facilities of the service, and a table of the sites with what each
adds and which standards it flips. Every value read from the files is escaped (:func:`features` for the
layers, ``html.escape`` for the header and the table)."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import folium
import geopandas as gpd
import pyogrio

from coverage.errors import MapsError
from coverage.maps.build import Build, read_build
from coverage.maps.context import add_pane
from coverage.maps.page import (
    HtmlBlock,
    PageScript,
    features,
    geojson,
    new_map,
    render,
    snapping_rule_text,
    table_html,
    to_page,
    write_text,
)
from coverage.maps.style import fmt

__all__ = ["plan_map", "plan_page_name", "write_plan_page"]


def plan_page_name(service_id: str) -> str:
    """File name of a plan page (service ids are ``[a-z][a-z0-9_]*``, checked by the config)."""
    return f"plan_{service_id}.html"


def _layer(path: Path, name: str, crs: Any) -> gpd.GeoDataFrame:
    if name not in {n for n, _ in pyogrio.list_layers(path)}:
        return gpd.GeoDataFrame(geometry=gpd.GeoSeries([], crs=crs))
    return gpd.read_file(path, layer=name)


def _header_html(info: dict[str, Any]) -> str:
    e = html.escape
    gap = info.get("gap")
    solver = (
        f"{e(str(info.get('method', '')))}; "
        + (
            "optimal"
            if info.get("optimal")
            else f"proven gap {fmt(gap, pct=True, digits=2) if gap is not None else 'unknown'} "
            f"on {e(str(info.get('gap_basis', '')))}"
        )
        + f"; {fmt(info.get('solve_s'), digits=1)} s"
    )
    req = []
    if info.get("sites_requested") is not None:
        req.append(f"sites ≤ {int(info['sites_requested'])}")
    if info.get("budget") is not None:
        req.append(f"budget ≤ {fmt(info['budget'])} {e(str(info.get('cost_unit', '')))}")
    rules = info.get("rules") or []
    return (
        f'<p class="cov-plan" id="plan-summary"><b>规划 (plan):</b> {int(info.get("sites", 0))} new sites '
        f"({e(' · '.join(req))}); {e('capacitated' if info.get('capacitated') else 'uncapacitated')}; "
        f"new sites cover {fmt(info.get('newly_covered_persons'))} more persons "
        f"(of {fmt(info.get('demand_total_persons'))}; "
        f"covered before {fmt(info.get('covered_before_persons'))})"
        f"; solver: {solver}</p>"
        f'<p class="cov-plan-rules" id="plan-rules"><b>规则 (rules):</b> '
        f"{e('; '.join(map(str, rules)) or 'none')}</p>"
        f'<p class="cov-plan-method" id="plan-method"><b>方法 (method):</b> '
        f"{e(str(info.get('method_note', '')))}; existing capacity: "
        f"{e(str(info.get('existing_capacity_rule', '')))}</p>"
        '<p><a class="cov-link" href="index.html">← 总览 (overview)</a></p>'
    )


def _table_html(sites: gpd.GeoDataFrame) -> str:
    cols = [("order", "#"), ("name", "名称"), ("type_label", "类型"), ("capacity", "容量"),
            ("unit_name", "街道/乡镇"), ("newly_covered_persons", "新增覆盖人数"),
            ("capacity_used", "已用容量"),
            ("standards_flipped", "转为达标的标准")]

    def text(v: Any) -> str:
        return fmt(v) if isinstance(v, (int, float)) else str(v if v is not None else "")

    rows = [[text(r.get(c)) for c, _lab in cols] for _, r in sites.iterrows()]
    return table_html("plan-sites", [lab for _c, lab in cols], rows)


def plan_map(b: Build, plan_dir: Path, *, basemap: str, tianditu_key: str) -> folium.Map:
    """The plan page of the plan in ``plan_dir`` (``build/<region>/plan/<service>/``)."""
    info_path = plan_dir / "plan.json"
    gpkg = plan_dir / "sites.gpkg"
    if not info_path.is_file() or not gpkg.is_file():
        raise MapsError(f"{plan_dir}: no plan there (plan.json, sites.gpkg); make one with make plan")
    info = json.loads(info_path.read_text(encoding="utf-8"))
    sid = str(info.get("service", ""))
    sites = _layer(gpkg, "sites", b.crs)
    newly = _layer(gpkg, "newly_covered", b.crs)
    remaining = _layer(gpkg, "remaining_gaps", b.crs)
    units = to_page(b.units, basemap, simplify_m=5.0)
    s = b.services.get(sid)
    title = f"{b.region_title()} {s.label_zh if s else sid} 选址规划 (site plan)"
    m = new_map(
        basemap,
        tianditu_key,
        units.total_bounds,
        title=title,
        rule=snapping_rule_text(b.run_info),
        extra_html=_header_html(info),
    )
    add_pane(m)
    legends = []
    ufc = features(units, lambda r: {"name": f"{r.unit_name} ({r.unit_code})"})
    geojson(
        ufc, "街道/乡镇 (units)", {"color": "#333", "weight": 1.5, "fill": False}, tooltip_key="name"
    ).add_to(m)
    for layer, name, color, label in (
        (remaining, "仍未覆盖 (remaining gaps)", "#d73027", "persons"),
        (newly, "新增覆盖 (newly covered)", "#1a9850", "persons_served"),
    ):
        def props(r: Any, col: str = label) -> dict[str, Any]:
            return {"persons": fmt(getattr(r, col, None))}

        fc = features(to_page(layer, basemap), props)
        lyr = geojson(
            fc,
            name,
            {"color": color, "weight": 0.5, "fillColor": color, "fillOpacity": 0.7},
            tooltip_key="persons",  # cell centres: circles (a plain point would be an image marker)
            marker=folium.CircleMarker(radius=4, color=color, weight=0.5, fill=True, fill_opacity=0.7),
        )
        lyr.add_to(m)
        legends.append(({"title": name, "items": [{"color": color, "label": name, "shape": "square"}]}, lyr))
    fac = b.facilities
    if s is not None and len(fac):
        fac = fac[fac["kind"].isin(s.kinds)]
    efc = features(to_page(fac, basemap), lambda r: {"name": str(r.name), "_color": "#555"})
    elyr = geojson(
        efc,
        "现有设施 (existing)",
        {"color": "#222", "weight": 1, "fillOpacity": 0.8},
        tooltip_key="name",
        marker=folium.CircleMarker(radius=5, color="#222", weight=1, fill=True),
    )
    elyr.add_to(m)
    legends.append(
        (
            {
                "title": "现有设施 (existing)",
                "items": [{"color": "#555", "label": "existing", "shape": "circle"}],
            },
            elyr,
        )
    )
    fields = [
        ("name", "名称"),
        ("type_label", "类型"),
        ("capacity", "容量"),
        ("unit_name", "街道/乡镇"),
        ("newly", "新增覆盖人数"),
        ("flips", "转为达标"),
    ]
    sfc = features(
        to_page(sites, basemap),
        lambda r: {
            "name": str(r.name),
            "type_label": str(r.type_label),
            "capacity": fmt(r.capacity),
            "unit_name": str(r.unit_name),
            "newly": fmt(r.newly_covered_persons),
            "flips": str(r.standards_flipped or "—"),
            "_color": "#ff7f00",
        },
    )
    slyr = geojson(
        sfc,
        "建议新址 (recommended sites)",
        {"color": "#000", "weight": 2, "fillOpacity": 1.0},
        popup_fields=fields,
        tooltip_key="name",
        marker=folium.CircleMarker(radius=9, color="#000", weight=2, fill=True, fill_opacity=1.0),
    )
    slyr.add_to(m)
    legends.append(
        (
            {
                "title": "建议新址 (recommended sites)",
                "items": [{"color": "#ff7f00", "label": "recommended", "shape": "circle"}],
            },
            slyr,
        )
    )
    folium.LayerControl(position="topright", collapsed=False).add_to(m)
    m.add_child(PageScript(legends))
    m.get_root().add_child(HtmlBlock(_table_html(sites)), name="cov_table")
    return m


def write_plan_page(
    build_dir: Path, plan_dir: Path, maps_dir: Path, *, basemap: str = "none", tianditu_key: str = ""
) -> Path:
    """Write ``<maps_dir>/plan_<service>.html`` from ``plan_dir``."""
    b = read_build(build_dir)
    m = plan_map(b, plan_dir, basemap=basemap, tianditu_key=tianditu_key)
    sid = json.loads((plan_dir / "plan.json").read_text(encoding="utf-8"))["service"]
    return write_text(
        maps_dir / plan_page_name(str(sid)), render(m, basemap=basemap, tianditu_key=tianditu_key)
    )
