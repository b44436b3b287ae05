"""The scenario diff page (``maps/<region>/scenarios/<name>/diff.html``): per unit and service the change
of the headline coverage share (one base layer per service), with the shares, the uncovered people and
the standards that flip in each unit's popup. Values from the files are escaped by :func:`features`."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import folium
import numpy as np
import pandas as pd

from coverage.maps.build import read_build
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
from coverage.maps.style import fmt, legend

__all__ = ["write_diff_page"]

#: change of the covered share (percentage points / 100) and its colours: loss red, no change grey, gain green
CHANGE_BREAKS = (-1.0, -0.05, -0.005, 0.005, 0.05, 1.0001)
CHANGE_COLORS = ("#d73027", "#fc8d59", "#dddddd", "#91cf60", "#1a9850")


def _color(v: float) -> str:
    if not np.isfinite(v):
        return "#ffffff"
    k = int(np.searchsorted(CHANGE_BREAKS, v, side="right")) - 1
    return CHANGE_COLORS[min(max(k, 0), len(CHANGE_COLORS) - 1)]


def write_diff_page(
    build_dir: Path, maps_dir: Path, *, basemap: str = "none", tianditu_key: str = ""
) -> Path:
    """Write ``<maps_dir>/diff.html`` from the scenario build ``build_dir`` (its ``diff.csv``)."""
    b = read_build(build_dir)
    diff = pd.read_csv(
        build_dir / "diff.csv", dtype={"unit_code": str}, encoding="utf-8-sig", keep_default_na=True
    )
    record = json.loads((build_dir / "scenario.json").read_text(encoding="utf-8"))
    units = to_page(b.units[["unit_code", "unit_name", "geometry"]], basemap, simplify_m=5.0)
    name = str(record.get("scenario", ""))
    e = html.escape
    pop = record.get("population") or {}
    head = (
        f'<p class="cov-scenario" id="scenario-summary"><b>情景 (scenario) {e(name)}:</b> '
        f"{e(str(record.get('description', '')))} — facilities {fmt(record.get('facilities_before'))} → "
        f"{fmt(record.get('facilities_after'))}; population {fmt(pop.get('pop_total_before'))} → "
        f"{fmt(pop.get('pop_total_after'))}"
        + (f" ({e(str(pop.get('year')))})" if pop.get("year") else "")
        + "</p>"
        + _targets_html(record)
        + '<p><a class="cov-link" href="index.html">情景总览 (scenario overview)</a> · '
        '<a class="cov-link" href="../../index.html">基线总览 (baseline overview)</a></p>'
    )
    m = new_map(
        basemap,
        tianditu_key,
        units.total_bounds,
        title=f"{b.region_title()} 情景对比 {name} (diff)",
        rule=snapping_rule_text(b.run_info),
        extra_html=head,
    )
    legends = []
    fields = [
        ("before", "之前 (before)"),
        ("after", "之后 (after)"),
        ("uncovered", "未覆盖 before → after"),
        ("passed", "转为达标 (now passed)"),
        ("failed", "转为不达标 (now failed)"),
    ]
    for i, (sid, d) in enumerate(diff.groupby("service", sort=False)):
        s = b.services.get(str(sid))
        by = d.set_index("unit_code")
        page = units.join(by.drop(columns=["unit_name"]), on="unit_code")

        def props(r: Any) -> dict[str, Any]:
            return {
                "_title": f"{r.unit_name} ({r.unit_code})",
                "before": fmt(r.covered_share_before, pct=True),
                "after": fmt(r.covered_share_after, pct=True),
                "uncovered": f"{fmt(r.uncovered_before)} → {fmt(r.uncovered_after)}",
                "passed": str(r.standards_now_passed if isinstance(r.standards_now_passed, str) else "—"),
                "failed": str(r.standards_now_failed if isinstance(r.standards_now_failed, str) else "—"),
                "_color": _color(float(r.covered_share_change)),
            }

        label = f"{s.label_zh if s else str(sid)} 覆盖率变化 (coverage change)"
        lyr = geojson(
            features(page, props),
            label,
            {"color": "#333", "weight": 1, "fillOpacity": 0.75},
            overlay=False,
            show=i == 0,
            popup_fields=fields,
            tooltip_key="_title",
        )
        lyr.add_to(m)
        legends.append((legend(label, list(CHANGE_BREAKS), list(CHANGE_COLORS), pct=True, digits=1), lyr))
    folium.LayerControl(position="topright", collapsed=False).add_to(m)
    m.add_child(PageScript(legends))
    m.get_root().add_child(HtmlBlock(_diff_table_html(diff, b.services)), name="cov_table")
    return write_text(Path(maps_dir) / "diff.html", render(m, basemap=basemap, tianditu_key=tianditu_key))


def _targets_html(record: dict[str, Any]) -> str:
    """The scenario's target checks (region level), each with the rule and year it names."""
    e = html.escape
    items = []
    for t in record.get("targets") or []:
        if t.get("level") != "region":
            continue
        passed = t.get("passed")
        mark = "达标 met" if passed is True else "未达标 not met" if passed is False else "—"
        src = e(str(t.get("source", "")), quote=True)
        items.append(f'<span title="{src}">{e(str(t.get("standard_id")))}: {e(mark)} '
                     f"({fmt(t.get('value'), digits=2)} / {fmt(t.get('required'), digits=2)})</span>")
    if not items:
        return ""
    return ('<p class="cov-scenario-targets" id="scenario-targets"><b>目标 (targets, '
            f"{e(str(record.get('target_set', '')))}):</b> " + " · ".join(items) + "</p>")


def _diff_table_html(diff: pd.DataFrame, services: dict[str, Any]) -> str:
    cols = [("unit_name", "街道/乡镇"), ("service", "服务"), ("covered_share_before", "之前"),
            ("covered_share_after", "之后"), ("uncovered_before", "未覆盖之前"),
            ("uncovered_after", "未覆盖之后"),
            ("standards_now_passed", "转为达标"), ("standards_now_failed", "转为不达标")]

    def text(c: str, v: Any) -> str:
        if c.startswith("covered_share"):
            return fmt(v, pct=True)
        if c == "service":
            s = services.get(str(v))
            return s.label_zh if s else str(v)
        return v if isinstance(v, str) else fmt(v)

    rows = [[text(c, r[c]) for c, _lab in cols] for _, r in diff.iterrows()]
    return table_html("scenario-diff", [lab for _c, lab in cols], rows)
