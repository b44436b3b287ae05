"""Gap maps: folium pages, offline HTML (no remote URLs), escaping, one page per unit, legends, basemaps, PNG.

``make_fake_build(dir)`` writes a small synthetic ``build/<region>/`` with exactly the files and
columns of docs/ARCHITECTURE.md (three 2 km units in EPSG:32649 around 108E 32N).
"""

from __future__ import annotations

import html
import json
import re
import warnings
from pathlib import Path

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Transformer

from coverage import maps
from coverage.indicators import DATA_DICTIONARY, data_dictionary_frame
from coverage.maps import build as mbuild
from coverage.maps import overview, page, png, style, unit_page

METRIC = "EPSG:32649"
XSS = "<img src=x onerror=alert(1)>"
_T = Transformer.from_crs("EPSG:4326", METRIC, always_xy=True)
X0, Y0 = _T.transform(108.0, 32.0)  # south-west corner of unit A
UNITS = [  # code, name, type, class, area_type, x offset (km)
    ("610101001", "东城街道", "街道", "城区", "old", 0),
    ("610101002", "西城街道", "街道", "城区", "new", 2),
    ("610101101", "青山镇", "镇", "郊区", "mixed", 4),
]
FACILITIES = [  # name, kind, x, y (metres from X0, Y0), beds, nursing, slots, floor
    ("东城日间照料中心", "daycare_center", 500, 1000, 20, 10, np.nan, 800.0),
    (XSS, "community_complex", 1500, 1500, 40, 30, np.nan, 2000.0),
    ("西城托育园", "childcare", 2600, 600, np.nan, np.nan, 60, 500.0),
    ("长寿食堂", "meal_point", 1000, 500, np.nan, np.nan, np.nan, 200.0),
    ("青山敬老院", "welfare_home", 5000, 1000, 30, 5, np.nan, 1200.0),
]


def _xy(dx: float, dy: float) -> tuple[float, float]:
    return X0 + dx, Y0 + dy


def _unit_indicators(cells: gpd.GeoDataFrame, fac: gpd.GeoDataFrame, units: gpd.GeoDataFrame) -> dict:
    """The fake build's layer ``units`` indicator columns (real names), computed by hand from the cells.

    Beds and slots: facilities by x position (unit A 0-2 km, B 2-4 km, C 4-6 km). Failed standards:
    the unit rows of standards.csv below with passed = False (A 0, B 1, C 2).
    """
    out: dict[str, list] = {}
    by_x = np.array([UNITS[int((g.x - X0) // 2000)][0] for g in fac.geometry])
    for u in UNITS:
        c = cells[cells["unit_code"] == u[0]]
        p60, p03, ptot = c["pop_60plus"].sum(), c["pop_0to3"].sum(), c["pop_total"].sum()
        row = {"pop_total": ptot, "pop_60plus": p60, "pop_0to3": p03}
        for t in (5, 10, 15):
            cov = (c["pop_60plus"] * c[f"covered_elderly_{t}min"]).sum()
            row[f"elderly_covered_{t}min"] = cov
            row[f"elderly_share_{t}min"] = cov / p60
            row[f"elderly_uncovered_{t}min"] = p60 - cov
        meal = (c["pop_60plus"] * c["covered_meal"]).sum()
        row |= {"meal_threshold_min": 15.0 if u[3] == "城区" else 30.0, "meal_covered_60plus": meal,
                "meal_share_60plus": meal / p60, "meal_uncovered_60plus": p60 - meal}
        cc = (c["pop_0to3"] * c["covered_childcare_15min"]).sum()
        row |= {"childcare_covered_0to3_15min": cc, "childcare_share_0to3_15min": cc / p03,
                "childcare_uncovered_0to3_15min": p03 - cc}
        hc = (c["pop_60plus"] * c["covered_health_15min"]).sum()
        row |= {"health_covered_60plus_15min": hc, "health_share_60plus_15min": hc / p60,
                "health_uncovered_60plus_15min": p60 - hc}
        f = fac[by_x == u[0]]
        row |= {"beds": f["beds"].sum(), "beds_per_1000_60plus": f["beds"].sum() / p60 * 1000,
                "childcare_slots": f["childcare_slots"].sum(),
                "slots_per_1000": f["childcare_slots"].sum() / ptot * 1000,
                "slots_standard_per_1000": 8.0 if u[4] != "new" else 10.0,
                "n_failed_standards": {"610101001": 0, "610101002": 1, "610101101": 2}[u[0]]}
        for k, v in row.items():
            out.setdefault(k, []).append(float(v))
    return out


#: the fake build's roads (network.gpkg): highway, (x, y) points in metres from X0, Y0
ROADS = [
    ("primary", [(-1500, 1000), (7500, 1000)]),
    ("tertiary", [(3000, -1500), (3000, 3500)]),
    ("residential", [(500, 0), (500, 2000)]),
    ("['residential', 'service']", [(4500, 200), (5500, 200)]),
    ("footway", [(1200, 300), (1800, 300)]),
]


def _write_network(d: Path) -> None:
    """network.gpkg: walk_edges (every road, each edge in both directions) and delivery_edges (no footway)."""
    lines = [shapely.LineString([_xy(x, y) for x, y in pts]) for _hw, pts in ROADS]
    hw = [h for h, _pts in ROADS]
    walk = gpd.GeoDataFrame({"u": list(range(len(lines))) * 2, "v": list(range(1, len(lines) + 1)) * 2,
                             "highway": hw * 2},
                            geometry=lines + [shapely.reverse(g) for g in lines], crs=METRIC)
    walk.to_file(d / "network.gpkg", layer="walk_edges")
    walk[walk["highway"] != "footway"].to_file(d / "network.gpkg", layer="delivery_edges")


def make_fake_build(d: Path, *, not_assessed: dict[str, str] | None = None,
                    low_confidence: dict[str, str] | None = None) -> Path:
    """Write a synthetic build/<region>/ (all files of ARCHITECTURE.md) into ``d``; return ``d``.

    ``not_assessed`` (service id -> reason) and ``low_confidence`` (unit code -> reasons) are written to
    run_info.json (and the units' ``low_confidence``/``confidence_reasons`` columns) as the pipeline does.
    """
    d.mkdir(parents=True, exist_ok=True)
    low = low_confidence or {}
    _write_network(d)
    units = gpd.GeoDataFrame(
        {
            "unit_code": [u[0] for u in UNITS],
            "unit_name": [u[1] for u in UNITS],
            "unit_type": [u[2] for u in UNITS],
            "unit_class": [u[3] for u in UNITS],
            "area_type": [u[4] for u in UNITS],
        },
        geometry=[shapely.box(*_xy(u[5] * 1000, 0), *_xy(u[5] * 1000 + 2000, 2000)) for u in UNITS],
        crs=METRIC,
    )
    fac = gpd.GeoDataFrame(
        {
            "fac_id": [f"fac:{i + 1}" for i in range(len(FACILITIES))],
            "name": [f[0] for f in FACILITIES],
            "kind": [f[1] for f in FACILITIES],
            "beds": [f[4] for f in FACILITIES],
            "nursing_beds": [f[5] for f in FACILITIES],
            "childcare_slots": [f[6] for f in FACILITIES],
            "floor_area_m2": [f[7] for f in FACILITIES],
            "land_area_m2": np.nan,
            "address": "某路1号",
            "operator": "",
            "layer": "fac",
            "source_file": "fac.csv",
            "source_row": range(1, len(FACILITIES) + 1),
            "snap_edge_walk": range(len(FACILITIES)),
            "snap_dist_walk_m": [12.5, 40.0, 8.0, 3.0, 150.0],
            "snap_edge_delivery": range(len(FACILITIES)),
            "snap_dist_delivery_m": [12.5, 40.0, 8.0, 3.0, 150.0],
            "status": "ok",
        },
        geometry=[shapely.Point(_xy(f[2], f[3])) for f in FACILITIES],
        crs=METRIC,
    )
    fac.to_file(d / "facilities.gpkg", layer="facilities")
    fac.drop(columns="geometry").to_csv(d / "facilities.csv", index=False)

    # cells: 200 m grid over the three units
    xs, ys = np.meshgrid(np.arange(100, 6000, 200), np.arange(100, 2000, 200))
    cx, cy = X0 + xs.ravel(), Y0 + ys.ravel()
    n_cols = xs.shape[1]
    pts = shapely.points(cx, cy)
    code = np.array([UNITS[int((x - X0) // 2000)][0] for x in cx])
    uclass = np.array([UNITS[int((x - X0) // 2000)][3] for x in cx])
    elderly = fac[fac["kind"] != "meal_point"]
    d_eld = np.min([shapely.distance(pts, g) for g in elderly.geometry], axis=0)
    d_meal = shapely.distance(pts, fac.geometry.iloc[3])
    rng = np.random.default_rng(1)
    pop = rng.integers(20, 200, len(cx)).astype(float)
    cells = gpd.GeoDataFrame(
        {
            "cell_id": np.arange(len(cx), dtype=np.int64),
            "row": (ys.ravel() // 200).astype(int),
            "col": (xs.ravel() // 200).astype(int),
            "unit_code": code,
            "community_code": "",
            "weight": 1.0,
            "pop_total": pop,
            "pop_60plus": np.round(pop * 0.2, 1),
            "pop_0to3": np.round(pop * 0.03, 1),
            "x": cx,
            "y": cy,
            "tt_elderly_s": d_eld / 1.0,
            "nearest_elderly_id": "fac:1",
            "covered_elderly_5min": d_eld <= 300,
            "covered_elderly_10min": d_eld <= 600,
            "covered_elderly_15min": d_eld <= 900,
            "covered_childcare_15min": d_eld <= 900,
            "covered_meal": np.where(uclass == "城区", d_meal <= 1500, d_meal <= 3000),
            "covered_health_15min": False,
        },
        geometry=shapely.box(cx - 100, cy - 100, cx + 100, cy + 100),
        crs=METRIC,
    ).to_crs("EPSG:4326")
    assert n_cols > 0
    cells.to_parquet(d / "cells.parquet")

    iso_path = d / "isochrones.gpkg"
    for service, th_min, src in [
        ("elderly", 5, elderly),
        ("elderly", 10, elderly),
        ("elderly", 15, elderly),
        ("meal", 15, fac.iloc[[3]]),
        ("meal", 30, fac.iloc[[3]]),
    ]:
        radius = th_min * 60.0 if service == "elderly" else th_min * 100.0
        per = gpd.GeoDataFrame(
            {"fac_id": src["fac_id"].to_numpy(), "service": service, "threshold_min": th_min},
            geometry=src.geometry.buffer(radius).to_numpy(),
            crs=METRIC,
        )
        per.to_file(iso_path, layer=f"{service}_{th_min}min_facility")
        gpd.GeoDataFrame(
            {"service": [service], "threshold_min": [th_min]}, geometry=[per.union_all()], crs=METRIC
        ).to_file(iso_path, layer=f"{service}_{th_min}min_dissolved")

    ind = units.assign(**_unit_indicators(cells, fac, units),
                       low_confidence=[u[0] in low for u in UNITS],
                       confidence_reasons=[low.get(u[0], "") for u in UNITS])
    ind.to_file(d / "indicators.gpkg", layer="units")
    # 社区 of unit A only (west/east halves), one with an XSS name; units B and C have none
    comm = gpd.GeoDataFrame(
        {
            "community_code": ["610101001001", "610101001002"],
            "community_name": ["东门社区", XSS],
            "unit_code": "610101001",
            "pop_total": [5234.4, 4120.0],
            "pop_60plus": [1234.56, 987.0],
            "pop_0to3": [40.2, 31.0],
            "elderly_share_15min": [0.7275659699831076, 1.0],
            "elderly_uncovered_15min": [336.35, 0.0],
            "meal_share_60plus": [0.5, 0.25],
            "n_failed_standards": [1, 0],
        },
        geometry=[shapely.box(*_xy(0, 0), *_xy(1000, 2000)), shapely.box(*_xy(1000, 0), *_xy(2000, 2000))],
        crs=METRIC,
    )
    comm.to_file(d / "indicators.gpkg", layer="communities")
    ind.drop(columns="geometry").to_csv(d / "indicators.csv", index=False)

    std_rows = []
    for u in UNITS:
        std_rows.append(
            (
                u[0],
                "unit",
                "elderly_circle",
                "15分钟养老服务圈",
                u[0] != "610101101",
                "0.8",
                "1.0",
                "缺 20% 老年人" if u[0] == "610101101" else "",
                "000 task 8",
            )
        )
        std_rows.append(
            (
                u[0],
                "unit",
                "street_complex",
                "社区养老服务综合体",
                u[0] == "610101001",
                "1",
                "1",
                "" if u[0] == "610101001" else "缺 1 个",
                "003 (九)13",
            )
        )
        std_rows.append(
            (u[0], "unit", "nursing_bed_share", "护理型床位占比", "", "", "0.55", "", "002 总体要求")
        )
        std_rows.append(
            (u[0], "unit", "elderly_land", "人均用地", True, "0.3094671638146635", "0.1", "", "003 (六)")
        )
    std_rows += [
        (
            "610101001001",
            "community",
            "community_daycare",
            "社区日间照料中心≥750平方米",
            False,
            "600.0",
            "750.0",
            "needs 1 day-care centre",
            "003 (六)4",
        ),
        (
            "fake",
            "region",
            "childcare_slots_target",
            "全市每千人口托位数2025年目标",
            True,
            "14.293431634161625",
            "4.5",
            "",
            "002 总体要求",
        ),
        (
            "fake",
            "region",
            "nursing_bed_share",
            "养老机构护理型床位占比",
            False,
            "0.4275659699831076",
            "0.55",
            "缺 12.2 个百分点",
            "002 总体要求 55%",
        ),
    ]
    pd.DataFrame(
        std_rows,
        columns=[
            "unit_code",
            "level",
            "standard_id",
            "title_zh",
            "passed",
            "value",
            "required",
            "shortfall",
            "source",
        ],
    ).to_csv(d / "standards.csv", index=False)

    unc = cells[~cells["covered_elderly_15min"]].to_crs(METRIC)
    gap_rows, gap_geoms = [], []
    for i, (ucode, grp) in enumerate(unc.groupby("unit_code")):
        gap_rows.append(
            {
                "gap_id": f"elderly:{i + 1}",
                "service": "elderly",
                "unit_code": ucode,
                "rank": i + 1,
                "n_cells": len(grp),
                "pop_total": grp["pop_total"].sum(),
                "pop_60plus": grp["pop_60plus"].sum(),
                "pop_0to3": grp["pop_0to3"].sum(),
                "nearest_fac_id": "fac:1",
                "nearest_tt_min": 17.5,
            }
        )
        gap_geoms.append(grp.union_all())
    gpd.GeoDataFrame(gap_rows, geometry=gap_geoms, crs=METRIC).to_file(d / "gaps.gpkg", layer="gaps")

    # the pipeline's dictionary (no rows for gaps/facilities/standards columns: maps takes those from
    # coverage.indicators.DATA_DICTIONARY)
    data_dictionary_frame().to_csv(d / "data_dictionary.csv", index=False, encoding="utf-8-sig")
    (d / "run_info.json").write_text(
        json.dumps(
            {
                "region": "fake",
                "region_title": "测试市",
                "metric_crs": METRIC,
                "snapping_rule": "设施吸附到最近路段上的最近点，最大 300 m；人口格网中心最大 500 m",
                "speeds": {"walk_mps": 1.0},
                "thresholds": {"elderly": [5, 10, 15]},
                "counts": {"facilities": 5},
                "not_assessed": dict(not_assessed or {}),
                "low_confidence": dict(low),
            },
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    return d


@pytest.fixture(scope="module")
def fake_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_fake_build(tmp_path_factory.mktemp("build") / "fake")


@pytest.fixture(scope="module")
def written(fake_build: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    out = tmp_path_factory.mktemp("maps") / "fake"
    return out, maps.write_maps(fake_build, out, basemap="none")


REMOTE = re.compile(
    r"""<(script|link|img|iframe)\b[^>]*\b(src|href)\s*=\s*["']?\s*(https?:)?//""", re.IGNORECASE
)


def _page_data(m: folium.Map) -> dict:
    """What a folium page shows, from its object model: tiles, base layers, overlays (+ legend), bounds."""
    legends = {}
    for child in m._children.values():
        if isinstance(child, page.PageScript):
            legends = {id(layer): lg for _lid, lg, layer in child.specs}
    layers = [
        {"name": c.layer_name, "geojson": c.data, "legend": legends.get(id(c)), "show": c.show}
        for c in m._children.values()
        if isinstance(c, folium.GeoJson)
    ]
    bounds = [c.bounds for c in m._children.values() if isinstance(c, folium.map.FitBounds)]
    tiles = [{"url": c.tiles} for c in m._children.values() if isinstance(c, folium.TileLayer)]
    return {
        "tiles": tiles,
        "bounds": bounds,
        "legends": list(legends.values()),
        "base_layers": [x for c, x in zip(_geojsons(m), layers, strict=True) if not c.overlay],
        "overlays": [x for c, x in zip(_geojsons(m), layers, strict=True) if c.overlay],
    }


def _geojsons(m: folium.Map) -> list[folium.GeoJson]:
    return [c for c in m._children.values() if isinstance(c, folium.GeoJson)]


def _unit_data(build: Path, code: str, basemap: str = "none", key: str = "") -> dict:
    return _page_data(unit_page.unit_map(maps.read_build(build), code, basemap=basemap, tianditu_key=key))


def _overview_data(build: Path) -> dict:
    return _page_data(
        overview.overview_map(maps.read_build(build), basemap="none", tianditu_key="", region_title="")
    )


def test_one_page_per_unit_and_index(written: tuple[Path, list[Path]]) -> None:
    out, pages = written
    assert pages[0] == out / "index.html"
    assert sorted(p.name for p in pages[1:]) == sorted(f"{u[0]}.html" for u in UNITS)
    for p in pages:
        assert p.is_file() and p.stat().st_size > 1000
    for rel in maps.ASSET_FILES:
        assert (out / "assets" / rel).is_file()


def test_no_remote_script_or_stylesheet(written: tuple[Path, list[Path]]) -> None:
    _out, pages = written
    for p in pages:
        text = p.read_text(encoding="utf-8")
        assert not REMOTE.search(text), p
        assert "http://" not in text and "https://" not in text, p  # basemap none: not even a tile URL
        for ref in re.findall(r'<(?:script|link)\b[^>]*(?:src|href)="([^"]+)"', text):
            assert not ref.startswith(("/", "http", "//")) and (p.parent / ref).is_file(), ref
    css = (_out / "assets/leaflet/leaflet.css").read_text()
    for url in re.findall(r"url\(([^)]+)\)", css):
        assert not url.strip("'\"").startswith(("http", "//")), url


def test_pages_are_folium_with_local_assets_only(written: tuple[Path, list[Path]]) -> None:
    _out, pages = written
    for p in pages:
        text = p.read_text(encoding="utf-8")
        m = re.search(r"var (map_[0-9a-f]{32}) = L\.map\(", text)  # folium's map variable
        assert m, p
        name = m.group(1)
        assert f'<div class="folium-map" id="{name}" ></div>' in text
        assert "L.control.layers(" in text and f").addTo({name});" in text  # folium.LayerControl
        assert "L.control.scale().addTo(" in text  # control_scale=True
        assert re.search(r"var geo_json_[0-9a-f]{32} = L\.geoJson\(", text)  # folium.GeoJson layers
        assert ".bindPopup(" in text  # GeoJsonPopup
        assert f"coverageMapPage.init({name}, [" in text  # legends + window.coverageMap
        refs = re.findall(r'<(?:script|link)\b[^>]*\b(?:src|href)="([^"]+)"', text)
        assert sorted(refs) == sorted(u for _n, u in (*maps.PAGE_JS, *maps.PAGE_CSS))
        for ref in refs:
            assert not re.match(r"[a-z]+:|/", ref) and (p.parent / ref).is_file(), ref
        for cdn in ("jquery", "bootstrap", "awesome", "font-awesome", "fontawesome", "cdn."):
            assert cdn not in text.lower(), (p, cdn)
    # the per-instance override left folium's class defaults alone
    assert folium.Map.default_js[0][1].startswith("https://")


def test_check_offline_rejects_remote_urls() -> None:
    cdn = folium.Map(tiles=None).get_root().render()  # folium's defaults: CDN scripts and stylesheets
    with pytest.raises(maps.MapsError, match=r"remote resources(.|\n)*https://cdn.jsdelivr.net/npm/leaflet"):
        maps.check_offline(cdn)
    for bad in (
        '<link rel="stylesheet" href="//cdn.example/x.css">',
        "<script src='/abs/x.js'></script>",
        '<img src="http://example.org/a.png">',
    ):
        with pytest.raises(maps.MapsError, match="not a relative local file"):
            maps.check_offline(bad)
    tile = 'L.tileLayer(\n "https://tile.openstreetmap.org/{z}/{x}/{y}.png", {});'
    with pytest.raises(maps.MapsError, match="not the configured basemap"):
        maps.check_offline(tile)
    maps.check_offline(tile, allowed_tile_urls=["https://tile.openstreetmap.org/{z}/{x}/{y}.png"])
    maps.check_offline('<script src="assets/leaflet/leaflet.js"></script><a href="https://x.org">x</a>')


def test_write_maps_without_unit_pages(fake_build: Path, tmp_path: Path) -> None:
    pages = maps.write_maps(fake_build, tmp_path, unit_pages=False)
    assert pages == [tmp_path / "index.html"]
    assert sorted(p.name for p in tmp_path.glob("*.html")) == ["index.html"]
    assert (tmp_path / "assets/coverage-map.js").is_file()


def test_xss_name_is_escaped_everywhere(written: tuple[Path, list[Path]], fake_build: Path) -> None:
    _out, pages = written
    for p in pages:
        text = p.read_text(encoding="utf-8")
        assert XSS not in text, p
        assert "<img" not in text, p  # the name appears only escaped (\u003c in data, &lt; in HTML)
    unit_a = (_out / "610101001.html").read_text(encoding="utf-8")
    # folium's GeoJsonPopup/Tooltip insert values as HTML: the data carries the escaped name
    # (&lt;img ...&gt;, itself JSON-escaped as \u0026lt; in the page script), so it renders as text
    assert "\\u0026lt;img src=x onerror=alert(1)\\u0026gt;" in unit_a
    data = _unit_data(fake_build, "610101001")
    props = [f["properties"] for o in data["overlays"] for f in o["geojson"]["features"]]
    names = [
        p["name"]
        for o in data["overlays"]
        if o["name"].startswith("设施")
        for p in (f["properties"] for f in o["geojson"]["features"])
    ]
    assert html.escape(XSS) in names and XSS not in names
    assert not any(
        isinstance(v, str) and "<" in v for p in props for k, v in p.items() if not k.endswith("_html")
    )
    js = (_out / "assets/coverage-map.js").read_text()
    assert "innerHTML" not in js and "insertAdjacentHTML" not in js


def test_html_escape_in_side_panel_and_table(fake_build: Path, tmp_path: Path) -> None:
    std = pd.read_csv(fake_build / "standards.csv", dtype=str, keep_default_na=False)
    std.loc[0, "shortfall"] = "<script>alert(2)</script>"
    b = tmp_path / "b"
    import shutil

    shutil.copytree(fake_build, b)
    std.to_csv(b / "standards.csv", index=False)
    u = gpd.read_file(b / "indicators.gpkg", layer="units")
    u.loc[0, "unit_name"] = "<b>坏</b>名"
    u.to_file(b / "indicators.gpkg", layer="units")
    dd = pd.read_csv(b / "data_dictionary.csv", dtype=str, keep_default_na=False)
    dd.loc[dd["column"] == "elderly_share_15min", "label_zh"] = "<i>覆盖</i>率"  # layer name, alias, legend
    dd.loc[dd["column"] == "pop_60plus", "label_zh"] = "<u>60+</u>"  # popup alias on unit pages
    dd.to_csv(b / "data_dictionary.csv", index=False)
    pages = maps.write_maps(b, tmp_path / "m")
    idx = pages[0].read_text(encoding="utf-8")
    assert "&lt;b&gt;坏&lt;/b&gt;名" in idx and "<b>坏</b>" not in idx
    assert "<i>" not in idx and "&lt;i&gt;覆盖&lt;/i&gt;率" in idx  # legend block and table header
    assert "\\u0026lt;i\\u0026gt;" in idx  # layer-control name / popup alias, escaped then JSON-encoded
    for p in pages:
        assert "<u>" not in p.read_text(encoding="utf-8")
    unit = (tmp_path / "m" / "610101001.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in unit and "<script>alert(2)" not in unit


def test_overview_choropleths_legends_and_sorted_table(
    written: tuple[Path, list[Path]], fake_build: Path
) -> None:
    out, _ = written
    text = (out / "index.html").read_text(encoding="utf-8")
    data = _overview_data(fake_build)
    # one choropleth per service of the build (its headline share), then slots and failed standards
    # the roads (context) are the only overlay: no unit of this build is of low confidence
    assert len(data["base_layers"]) == 6 and [o["name"] for o in data["overlays"]] == ["道路 (roads, OSM)"]
    assert [layer["show"] for layer in data["base_layers"]] == [True] + [False] * 5  # radio: one shown
    for layer in data["base_layers"]:
        assert layer["legend"]["title"] and len(layer["legend"]["items"]) >= 4
        assert len(layer["geojson"]["features"]) == 3
        assert "cov-link" in layer["geojson"]["features"][0]["properties"]["_link_html"]
    assert text.count('class="cov-legend-block"') == 7  # rendered (hidden) for the page script to switch
    names = [layer["name"] for layer in data["base_layers"]]
    # titles and legend titles are the label_zh of data_dictionary.csv (descriptions here are formulas)
    assert names == [
        "15分钟养老服务覆盖率",
        "15分钟托育服务覆盖率",
        "助餐服务覆盖率",
        "15分钟卫生服务覆盖率",
        "每千人口托位数",
        "未达标标准数",
    ]
    assert [layer["legend"]["title"] for layer in data["base_layers"]] == names
    # table headers from the dictionary, short English descriptions in parentheses
    head = re.findall(r"<th>(.*?)</th>", text.split('id="units-table"')[1].split("</thead>")[0])
    assert head[:6] == [
        "街道/乡镇名称",
        "街道/乡镇代码",
        "单元类型",
        "城区/郊区",
        "60岁及以上人口 (residents aged 60+)",
        "15分钟养老服务未覆盖老年人口 (persons 60+ beyond 15 min on foot)",
    ]
    assert "未达标标准数 (standards failed (see standards.csv))" not in head and "未达标标准数" in head
    # table worst first by elderly_uncovered_15min of layer units
    ind = gpd.read_file(fake_build / "indicators.gpkg", layer="units")
    order = [c for c in re.findall(r'href="(\d+)\.html"', text.split('id="units-table"')[1])]
    assert order == list(ind.sort_values("elderly_uncovered_15min", ascending=False)["unit_code"])
    assert 'class="cov-table cov-sortable"' in text
    assert "设施吸附到最近路段上的最近点" in text  # snapping rule on every page


def test_indicator_values(fake_build: Path) -> None:
    b = maps.read_build(fake_build)
    u = b.units.set_index("unit_code")
    assert list(b.services) == ["elderly", "childcare", "meal", "health"]  # old build: built-in registry
    assert b.headline(b.lead) == ("covered_elderly_15min", "elderly_share_15min", "elderly_uncovered_15min")
    cells = pd.read_parquet(fake_build / "cells.parquet")
    c = cells[cells["unit_code"] == "610101001"]
    want = (c["pop_60plus"] * c["covered_elderly_15min"]).sum() / c["pop_60plus"].sum()
    assert 0.3 < want < 0.9 and u.loc["610101001", "elderly_share_15min"] == pytest.approx(want)
    # childcare: 60 slots in unit B; beds 20 + 40 in unit A
    popb = cells.loc[cells["unit_code"] == "610101002", "pop_total"].sum()
    assert u.loc["610101002", "slots_per_1000"] == pytest.approx(60 / popb * 1000)
    assert u.loc["610101001", "slots_per_1000"] == 0
    assert u.loc["610101001", "beds_per_1000_60plus"] == pytest.approx(60 / c["pop_60plus"].sum() * 1000)
    assert list(u["n_failed_standards"]) == [0, 1, 2]


def test_values_are_read_not_recomputed(fake_build: Path, tmp_path: Path) -> None:
    import shutil

    b = tmp_path / "b"
    shutil.copytree(fake_build, b)
    u = gpd.read_file(b / "indicators.gpkg", layer="units")
    u.loc[u["unit_code"] == "610101002", ["elderly_share_15min", "slots_per_1000", "n_failed_standards"]] = [
        0.123,
        7.77,
        4.0,
    ]
    u.to_file(b / "indicators.gpkg", layer="units")
    layers = _overview_data(b)["base_layers"]
    p = next(
        f["properties"] for f in layers[0]["geojson"]["features"] if "610101002" in f["properties"]["_title"]
    )
    assert (
        p["elderly_share_15min"] == "12.3%"
        and p["slots_per_1000"] == "7.8"
        and p["n_failed_standards"] == "4"
    )
    colors = {
        f["properties"]["_title"][-10:-1]: f["properties"]["_color"] for f in layers[0]["geojson"]["features"]
    }
    assert colors["610101002"] == style.SHARE_COLORS[0]  # 12.3% < 50%: the choropleth uses the file's value
    page = maps.write_unit_page(b, tmp_path / "m", "610101002").read_text(encoding="utf-8")
    panel = page.split('id="side-panel"')[1].split("</table>")[0]
    assert "<th>15分钟养老服务覆盖率</th><td>12.3%</td>" in panel and "<td>7.8</td>" in panel


def test_missing_indicator_column(fake_build: Path, tmp_path: Path) -> None:
    import shutil

    b = tmp_path / "b"
    shutil.copytree(fake_build, b)
    u = gpd.read_file(b / "indicators.gpkg", layer="units")
    u.drop(columns=["meal_share_60plus", "slots_per_1000"]).to_file(b / "indicators.gpkg", layer="units")
    with pytest.raises(
        maps.MapsError,
        match=r"indicators\.gpkg layer 'units': missing column\(s\) "
        r"slots_per_1000, meal_share_60plus .*re-run `make run REGION=<region>`",
    ):
        maps.write_maps(b, tmp_path / "m")


def test_labels_from_dictionary(fake_build: Path) -> None:
    labels = maps.dictionary_labels(
        pd.DataFrame(
            {
                "column": ["pop_60plus", "zz_unknown"],
                "label_zh": ["老人", ""],
                "description": ["residents aged 60+", "no label"],
            }
        )
    )
    assert labels["pop_60plus"] == "老人 (residents aged 60+)"  # the build's csv wins
    assert "zz_unknown" not in labels
    assert labels["elderly_share_15min"] == "15分钟养老服务覆盖率"  # formula description: Chinese only
    assert (
        labels["nearest_tt_min"] == "到最近设施时间 (travel time to the nearest facility)"
    )  # DATA_DICTIONARY
    assert mbuild.display_label("设施类型", "facility kind") == "设施类型 (facility kind)"
    assert mbuild.display_label("面积", "x" * 41) == "面积"
    # every column the pages label has a Chinese label in the package dictionary
    zh = {r[0]: r[1] for r in DATA_DICTIONARY}
    b = maps.read_build(fake_build)
    cols = [c for c, _lab, _kw in overview.table_columns(b)] + [
        c for c, _kw in unit_page._community_columns(b)
    ]
    cols += [c for c, *_ in overview.choropleths(b)]
    cols += [
        "service",
        "rank",
        "nearest_tt_min",
        "name",
        "kind",
        "status",
        "fac_id",
        "floor_area_m2",
        "title_zh",
        "passed",
        "meal_threshold_min",
    ]
    own = {c for c, lab, _kw in overview.table_columns(b) if lab != b.label(c)}  # labelled by the table
    assert own <= {"confidence_reasons"}
    assert all(zh.get(c) for c in cols if c not in own), [c for c in cols if not zh.get(c)]


def test_unit_page_layers_and_checklist(written: tuple[Path, list[Path]], fake_build: Path) -> None:
    out, _ = written
    text = (out / "610101101.html").read_text(encoding="utf-8")
    data = _unit_data(fake_build, "610101101")
    names = [o["name"] for o in data["overlays"]]
    for t in (5, 10, 15):
        assert any(f"步行 {t} 分钟" in n for n in names)
    assert any("助餐服务配送 30 分钟" in n for n in names)  # 郊区 unit: 30-minute meal radius
    for n in names:
        assert json.dumps(n)[1:-1] in text or n in text  # layer control lists every overlay
    urban = _unit_data(fake_build, "610101001")
    assert any("助餐服务配送 15 分钟" in o["name"] for o in urban["overlays"])
    assert all(o.get("legend") is None or o["legend"]["items"] for o in data["overlays"])
    assert len(data["legends"]) == 6 and text.count('class="cov-legend-block"') == 6  # + roads
    assert 'id="standards-checklist"' in text and "✗ 未达标" in text and "缺 20% 老年人" in text
    assert "— 无法检查" in text and "002 总体要求" in text
    fac = next(o for o in data["overlays"] if o["name"].startswith("设施"))
    props = {f["properties"]["name"]: f["properties"] for f in fac["geojson"]["features"]}
    assert props["青山敬老院"]["kind"] == "敬老院/特困供养服务设施"
    assert "床位 30" in props["青山敬老院"]["capacity"] and "150 m" in props["青山敬老院"]["snap"]
    assert props["青山敬老院"]["floor_area"] == "1,200 m²"
    cells = next(o for o in data["overlays"] if o["name"].startswith("15分钟养老服务未覆盖老年人口"))
    assert (
        cells["geojson"]["features"]
        and len({f["properties"]["_color"] for f in cells["geojson"]["features"]}) > 1
    )


def test_unit_page_written_alone(fake_build: Path, tmp_path: Path) -> None:
    p = maps.write_unit_page(fake_build, tmp_path, "610101002")
    assert p == tmp_path / "610101002.html" and p.is_file()
    assert not (tmp_path / "index.html").exists() and (tmp_path / "assets/leaflet/leaflet.js").is_file()
    with pytest.raises(maps.MapsError, match=r"unit_code '999' is not in .*indicators.gpkg"):
        maps.write_unit_page(fake_build, tmp_path, "999")


def test_unit_without_gaps_or_cells_renders(fake_build: Path, tmp_path: Path) -> None:
    import shutil

    b = tmp_path / "b"
    shutil.copytree(fake_build, b)
    gaps = gpd.read_file(b / "gaps.gpkg", layer="gaps")
    gaps[gaps["unit_code"] != "610101001"].to_file(b / "gaps.gpkg", layer="gaps")
    page = maps.write_unit_page(b, tmp_path / "m", "610101001").read_text(encoding="utf-8")
    data = _unit_data(b, "610101001")
    gap = next(o for o in data["overlays"] if "缺口区域" in o["name"])
    assert gap["geojson"]["features"] == []  # empty layer kept in the layer control, no popup bound
    assert "缺口区域 (gap areas)" in page and "L.control.layers(" in page


def test_missing_build_files_listed(tmp_path: Path) -> None:
    (tmp_path / "run_info.json").write_text("{}")
    with pytest.raises(maps.MapsError, match=r"7 build file\(s\) missing:(.|\n)*cells.parquet: missing"):
        maps.write_maps(tmp_path, tmp_path / "m")


def test_basemaps(fake_build: Path, tmp_path: Path) -> None:
    osm = maps.write_unit_page(fake_build, tmp_path / "osm", "610101001", basemap="osm").read_text(
        encoding="utf-8"
    )
    assert _unit_data(fake_build, "610101001", "osm")["tiles"][0]["url"].startswith(
        "https://tile.openstreetmap.org/"
    )
    assert 'L.tileLayer(\n                "https://tile.openstreetmap.org/{z}/{x}/{y}.png"' in osm
    assert not REMOTE.search(osm)
    with pytest.raises(maps.MapsError, match="tianditu_key"):
        maps.write_maps(fake_build, tmp_path / "t", basemap="tianditu")
    with pytest.raises(
        maps.MapsError, match=r"basemap = 'google': expected one of none, osm, amap, tianditu"
    ):
        maps.write_maps(fake_build, tmp_path / "g", basemap="google")
    tdt = maps.write_unit_page(
        fake_build, tmp_path / "tdt", "610101001", basemap="tianditu", tianditu_key="KEY123"
    )
    assert "tk=KEY123" in tdt.read_text(encoding="utf-8")
    tiles = _unit_data(fake_build, "610101001", "tianditu", "KEY123")["tiles"]
    assert len(tiles) == 2 and all(t["url"].endswith("tk=KEY123") for t in tiles)


def _gcj_reference(lon: float, lat: float) -> tuple[float, float]:
    """Textbook GCJ-02 forward transform (Krasovsky ellipsoid), written out independently of
    coverage.coords."""
    a, ee = 6378245.0, 0.00669342162296594323
    x, y = lon - 105.0, lat - 35.0
    dlat = (
        -100.0
        + 2.0 * x
        + 3.0 * y
        + 0.2 * y * y
        + 0.1 * x * y
        + 0.2 * np.sqrt(abs(x))
        + (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
        + (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
        + (160.0 * np.sin(y / 12.0 * np.pi) + 320 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    )
    dlon = (
        300.0
        + x
        + 2.0 * y
        + 0.1 * x * x
        + 0.1 * x * y
        + 0.1 * np.sqrt(abs(x))
        + (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
        + (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
        + (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    )
    rad = lat / 180.0 * np.pi
    magic = 1 - ee * np.sin(rad) ** 2
    sq = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((a * (1 - ee)) / (magic * sq) * np.pi)
    dlon = (dlon * 180.0) / (a / sq * np.cos(rad) * np.pi)
    return lon + dlon, lat + dlat


def test_amap_shifts_overlays_into_gcj02(fake_build: Path, tmp_path: Path) -> None:
    pytest.importorskip(
        "coverage.coords", reason="coverage/coords.py (another engineer's module) not present yet"
    )
    none = _unit_data(fake_build, "610101101")
    amap = _unit_data(fake_build, "610101101", "amap")
    assert "autonavi" in maps.write_unit_page(
        fake_build, tmp_path / "a", "610101101", basemap="amap"
    ).read_text(encoding="utf-8")
    assert "autonavi" in amap["tiles"][0]["url"]

    def welfare(data: dict) -> list[float]:
        fac = next(o for o in data["overlays"] if o["name"].startswith("设施"))
        return next(
            f["geometry"]["coordinates"]
            for f in fac["geojson"]["features"]
            if f["properties"]["name"] == "青山敬老院"
        )

    lon, lat = welfare(none)
    glon, glat = welfare(amap)
    want = _gcj_reference(lon, lat)
    assert glon == pytest.approx(want[0], abs=2e-6) and glat == pytest.approx(want[1], abs=2e-6)
    shift_m = np.hypot((glon - lon) * 111320 * np.cos(np.radians(lat)), (glat - lat) * 110540)
    assert 100 < shift_m < 1000  # GCJ-02 offsets are a few hundred metres
    assert amap["bounds"] != none["bounds"]


def test_overview_png(fake_build: Path, tmp_path: Path) -> None:
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no missing-glyph warnings, with or without a CJK font
        out = maps.write_overview_png(fake_build, tmp_path / "ov.png")
    img = np.asarray(Image.open(out).convert("L"), dtype=float)
    assert img.shape[0] > 300 and img.shape[1] > 300
    assert img.std() > 20  # not blank
    assert (img < 250).mean() > 0.1


def test_png_without_cjk_font_uses_codes(
    fake_build: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(png, "find_cjk_font", lambda: None)
    texts: list[str] = []
    import matplotlib.axes

    orig = matplotlib.axes.Axes.annotate

    def spy(self, text, *a, **k):  # type: ignore[no-untyped-def]
        texts.append(text)
        return orig(self, text, *a, **k)

    monkeypatch.setattr(matplotlib.axes.Axes, "annotate", spy)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        maps.write_overview_png(fake_build, tmp_path / "ov.png")
    assert sorted(t.split("\n")[0] for t in texts) == sorted(u[0] for u in UNITS)


LONG_FLOAT = re.compile(r"\d+\.\d{4,}")


def _visible_text(page: str) -> str:
    """Page body text outside scripts (what the officer reads), plus the popup/tooltip properties."""
    body = re.sub(r"<script\b.*?</script>", " ", page, flags=re.DOTALL)
    return html.unescape(re.sub(r"<[^>]+>", " ", body))


def test_number_formats(written: tuple[Path, list[Path]], fake_build: Path) -> None:
    assert style.fmt(0.7275659699831076, pct=True) == "72.8%"
    assert style.fmt(12345.67, digits=0) == "12,346"
    assert style.fmt_standard("0.7275659699831076", "share 0-1") == "72.8%"
    assert style.fmt_standard("0.3094671638146635", "m²/resident") == "0.31 m²/人"
    assert style.fmt_standard("14.293431634161625", "slots/1000") == "14.3 托位/千人"
    assert style.fmt_standard("2600.0", "m²") == "2,600 m²"
    assert style.fmt_standard("", "m²") == "—" and style.fmt_standard("需核实", "count") == "需核实"
    assert style.tidy_text("short by 12.345678 m²") == "short by 12.35 m²"
    out, _ = written
    for name in ("index.html", "610101001.html", "610101101.html"):
        text = _visible_text((out / name).read_text(encoding="utf-8"))
        assert not LONG_FLOAT.search(text), (name, LONG_FLOAT.search(text))
    unit = (out / "610101101.html").read_text(encoding="utf-8")
    checklist = unit.split('id="standards-checklist"')[1].split("</table>")[0]
    assert "80.0%" in checklist and "100.0%" in checklist and "0.31 m²/人" in checklist
    assert 'class="cov-source" title="000 task 8"' in checklist  # source on hover and in small text
    # popups: shares with 1 decimal, people as integers with separators
    data = _unit_data(fake_build, "610101001")
    comm = next(o for o in data["overlays"] if o["name"].startswith("社区/村"))
    p = {f["properties"]["community_code"]: f["properties"] for f in comm["geojson"]["features"]}
    assert p["610101001001"]["elderly_share_15min"] == "72.8%"
    assert p["610101001001"]["pop_60plus"] == "1,235" and p["610101001001"]["pop_total"] == "5,234"
    ov = _overview_data(fake_build)["base_layers"][0]["geojson"]["features"]
    assert all(re.fullmatch(r"\d{1,3}\.\d%", f["properties"]["elderly_share_15min"]) for f in ov)
    assert all(re.fullmatch(r"[\d,]+", f["properties"]["pop_60plus"]) for f in ov)
    index = (out / "index.html").read_text(encoding="utf-8")
    row = re.search(r'<tr><td data-sort="[^"]*"><a href="610101001.html">.*?</tr>', index).group(0)
    assert re.search(r">\d{1,3}\.\d%</td>", row)


def test_overview_region_standards_and_files(written: tuple[Path, list[Path]]) -> None:
    out, _ = written
    text = (out / "index.html").read_text(encoding="utf-8")
    line = text.split('id="region-standards"')[1].split("</p>")[0]
    assert "✓ 达标" in line and "全市每千人口托位数2025年目标: 14.3 托位/千人 (要求 4.5 托位/千人)" in line
    assert "✗ 未达标" in line and "42.8% (要求 55.0%)，缺口: 缺 12.2 个百分点" in line
    assert 'title="002 总体要求 55%"' in line
    files = text.split('id="data-files"')[1].split("</p>")[0]
    assert "build/fake/" in files and "standards.csv" in files and "gaps.gpkg" in files
    assert "indicators.xlsx" not in files  # only files that exist are named; no links into ../../build
    assert "../../build" not in text


def test_communities_layer(written: tuple[Path, list[Path]], fake_build: Path, tmp_path: Path) -> None:
    out, _ = written
    data = _unit_data(fake_build, "610101001")
    comm = next(o for o in data["overlays"] if o["name"].startswith("社区/村"))
    feats = comm["geojson"]["features"]
    assert len(feats) == 2 and comm["legend"]["title"] == "社区/村 (communities)"
    by = {f["properties"]["community_code"]: f["properties"] for f in feats}
    assert by["610101001001"]["_title"] == "东门社区 (610101001001)"
    assert (
        by["610101001001"]["failed"] == "社区日间照料中心≥750平方米" and by["610101001002"]["failed"] == "—"
    )
    assert by["610101001002"]["_title"] == html.escape(f"{XSS} (610101001002)")  # escaped for the tooltip
    page = (out / "610101001.html").read_text(encoding="utf-8")
    name = "社区/村边界 (communities)"
    assert (name in page or json.dumps(name)[1:-1] in page) and XSS not in page and "<img" not in page
    assert 'class="cov-legend-block"' in page and page.count('class="cov-legend-block"') == 7
    # units without 社区 rows, and builds without the layer, render without it
    assert not any(o["name"].startswith("社区/村") for o in _unit_data(fake_build, "610101002")["overlays"])
    import shutil

    b = tmp_path / "b"
    shutil.copytree(fake_build, b)
    units = gpd.read_file(b / "indicators.gpkg", layer="units")
    (b / "indicators.gpkg").unlink()
    units.to_file(b / "indicators.gpkg", layer="units")
    assert not any(o["name"].startswith("社区/村") for o in _unit_data(b, "610101001")["overlays"])


def test_gap_table_zoom_rows(written: tuple[Path, list[Path]], fake_build: Path) -> None:
    out, _ = written
    page = (out / "610101101.html").read_text(encoding="utf-8")
    table = page.split('id="gap-table"')[1].split("</table>")[0]
    gaps = gpd.read_file(fake_build / "gaps.gpkg", layer="gaps")
    g = gaps[gaps["unit_code"] == "610101101"].iloc[0]
    assert (
        f"{g['pop_60plus']:,.0f}" in table and "东城日间照料中心" in table and "17.5" in table
    )  # fac:1 name
    zoom = json.loads(html.unescape(re.search(r'data-zoom="([^"]+)"', table).group(1)))
    (s, w), (n, e) = zoom
    assert 107.9 < w < e < 108.2 and 31.9 < s < n < 32.1
    assert "本单元无缺口区域" not in table


def test_many_uncovered_cells_merge_per_colour_class(
    fake_build: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above MAX_CELL_FEATURES, a unit page draws one exact polygon per colour class, not each cell."""
    cells = gpd.read_parquet(fake_build / "cells.parquet")
    code = str(UNITS[0][0])
    unc = cells[
        (cells["unit_code"].astype(str) == code)
        & ~cells["covered_elderly_15min"].astype(bool)
        & (cells["pop_60plus"] > 0)
    ]
    assert len(unc) >= 2
    breaks = style.count_breaks(unc["pop_60plus"].to_numpy(float))
    merged = unit_page.cells_by_class(unc.to_crs(32649), breaks)
    assert len(merged) <= len(breaks)
    # exact: same area as the squares, nothing lost or added
    assert merged.area.sum() == pytest.approx(unc.to_crs(32649).area.sum(), rel=1e-9)
    assert merged.union_all().symmetric_difference(unc.to_crs(32649).union_all()).area < 1e-6
    monkeypatch.setattr(unit_page, "MAX_CELL_FEATURES", 0)
    page = maps.write_unit_page(fake_build, tmp_path / "m", code).read_text(encoding="utf-8")
    assert "per cell" in page


# --------------------------------------------------------------------------------------------
# Registry-driven pages: a service and a kind added in a region config draw with no maps change
# --------------------------------------------------------------------------------------------

PHARMACY = {
    "id": "pharmacy",
    "label_zh": "药店服务",
    "label_en": "pharmacy",
    "kinds": ["pharmacy"],
    "mode": "walk",
    "thresholds_min": [10.0, 20.0],
    "demand_col": "pop_60plus",
    "demand_tag": "60plus",
    "color": "#00897b",
    "gap_color": "#ff00aa",
}
PHARMACY_KIND = {"id": "pharmacy", "label_zh": "社区药店", "label_en": "pharmacy", "color": "#00bcd4"}


def _registry_build(src: Path, dst: Path, *, pharmacy: bool = True, meal_classes: dict | None = None) -> Path:
    """A copy of ``src`` as the NEW pipeline writes it: run_info.json with ``services``, ``kinds`` and
    ``standards``; with ``pharmacy``, a service and kind the maps have never heard of (its indicator
    and cell columns, isochrones at 10/20 min, a facility and a gap area in unit A)."""
    import dataclasses
    import shutil

    from coverage.config import StandardsConfig
    from coverage.services import (
        BUILTIN_KINDS,
        BUILTIN_SERVICES,
        kinds_from_json,
        registry_json,
        services_from_json,
    )

    shutil.copytree(src, dst)
    services, kinds = dict(BUILTIN_SERVICES), dict(BUILTIN_KINDS)
    if meal_classes is not None:
        services["meal"] = dataclasses.replace(services["meal"], class_thresholds_min=meal_classes)
    if pharmacy:
        services |= services_from_json({"pharmacy": PHARMACY})
        kinds |= kinds_from_json({"pharmacy": PHARMACY_KIND})
    info = json.loads((dst / "run_info.json").read_text(encoding="utf-8"))
    info |= registry_json(services, kinds) | {"standards": dataclasses.asdict(StandardsConfig())}
    (dst / "run_info.json").write_text(json.dumps(info, ensure_ascii=False), encoding="utf-8")
    if not pharmacy:
        return dst
    fac = gpd.read_file(dst / "facilities.gpkg")
    new = fac.iloc[[0]].assign(
        fac_id="fac:rx", name="东城大药房", kind="pharmacy", geometry=[shapely.Point(_xy(300, 300))]
    )
    pd.concat([fac, new], ignore_index=True).pipe(gpd.GeoDataFrame, crs=fac.crs).to_file(
        dst / "facilities.gpkg", layer="facilities"
    )
    cells = gpd.read_parquet(dst / "cells.parquet")
    d = shapely.distance(shapely.points(cells["x"], cells["y"]), new.geometry.iloc[0])
    cells = cells.assign(
        tt_pharmacy_s=d,
        nearest_pharmacy_id="fac:rx",
        covered_pharmacy_10min=d <= 600,
        covered_pharmacy_20min=d <= 1200,
    )
    cells.to_parquet(dst / "cells.parquet")
    units = gpd.read_file(dst / "indicators.gpkg", layer="units")
    comm = gpd.read_file(dst / "indicators.gpkg", layer="communities")
    for t in (10, 20):
        cov = (
            cells.assign(v=cells["pop_60plus"] * cells[f"covered_pharmacy_{t}min"])
            .groupby("unit_code")["v"]
            .sum()
        )
        units[f"pharmacy_covered_60plus_{t}min"] = units["unit_code"].map(cov).astype(float)
        units[f"pharmacy_share_60plus_{t}min"] = (
            units[f"pharmacy_covered_60plus_{t}min"] / units["pop_60plus"]
        )
        units[f"pharmacy_uncovered_60plus_{t}min"] = (
            units["pop_60plus"] - units[f"pharmacy_covered_60plus_{t}min"]
        )
    units["n_pharmacy_facilities"] = [1, 0, 0]
    (dst / "indicators.gpkg").unlink()
    units.to_file(dst / "indicators.gpkg", layer="units")
    comm.to_file(dst / "indicators.gpkg", layer="communities")
    for t in (10, 20):
        per = gpd.GeoDataFrame(
            {"fac_id": ["fac:rx"], "service": "pharmacy", "threshold_min": t},
            geometry=new.geometry.buffer(t * 60.0).to_numpy(),
            crs=METRIC,
        )
        per.to_file(dst / "isochrones.gpkg", layer=f"pharmacy_{t}min_facility")
        per.drop(columns="fac_id").to_file(dst / "isochrones.gpkg", layer=f"pharmacy_{t}min_dissolved")
    gaps = gpd.read_file(dst / "gaps.gpkg", layer="gaps")
    rx = gpd.GeoDataFrame(
        [
            {
                "gap_id": "pharmacy:1",
                "service": "pharmacy",
                "unit_code": "610101001",
                "rank": 1,
                "n_cells": 3,
                "pop_total": 300.0,
                "pop_60plus": 60.0,
                "pop_0to3": 9.0,
                "nearest_fac_id": "fac:rx",
                "nearest_tt_min": 25.0,
            }
        ],
        geometry=[shapely.box(*_xy(1400, 1400), *_xy(2000, 2000))],
        crs=METRIC,
    )
    pd.concat([gaps, rx], ignore_index=True).pipe(gpd.GeoDataFrame, crs=METRIC).to_file(
        dst / "gaps.gpkg", layer="gaps"
    )
    return dst


def test_new_service_and_kind_draw_on_both_pages(fake_build: Path, tmp_path: Path) -> None:
    b = _registry_build(fake_build, tmp_path / "b")
    build = maps.read_build(b)
    assert list(build.services)[-1] == "pharmacy" and build.kinds["pharmacy"].label_zh == "社区药店"
    pages = maps.write_maps(b, tmp_path / "m")
    # overview: a choropleth of the new service's headline share (largest threshold) with its legend
    ov = _overview_data(b)["base_layers"]
    rx = next(layer for layer in ov if "药店服务" in layer["name"])
    assert rx["name"] == "药店服务覆盖率 (pharmacy coverage)" and rx["legend"]["title"] == rx["name"]
    feats = {f["properties"]["_title"][-10:-1]: f["properties"] for f in rx["geojson"]["features"]}
    assert feats["610101001"]["pharmacy_share_60plus_20min"].endswith("%")
    index = pages[0].read_text(encoding="utf-8")
    assert "药店服务覆盖率 (pharmacy coverage)" in index  # legend block and table header
    # unit page: the new service's bands (its thresholds, shades of its colour), its gaps in its
    # gap_color, the new kind in the facility legend with its colour
    data = _unit_data(b, "610101001")
    names = [o["name"] for o in data["overlays"]]
    assert (
        "药店服务步行 20 分钟 (pharmacy 20 min walk)" in names
        and "药店服务步行 10 分钟 (pharmacy 10 min walk)" in names
    )
    bands = next(o for o in data["overlays"] if o["name"].startswith("药店服务步行 20"))
    assert bands["legend"]["title"].startswith("药店服务步行圈")
    assert [i["label"] for i in bands["legend"]["items"]] == ["10 分钟", "20 分钟"]
    assert bands["legend"]["items"][0]["color"] == "#00897b"  # nearest band: the service colour itself
    gap = next(o for o in data["overlays"] if o["name"] == "药店服务缺口区域 (pharmacy gap areas)")
    assert len(gap["geojson"]["features"]) == 1 and gap["legend"]["items"][0]["color"] == "#ff00aa"
    fac = next(o for o in data["overlays"] if o["name"].startswith("设施"))
    assert {"color": "#00bcd4", "label": "社区药店", "shape": "circle"} in fac["legend"]["items"]
    rx_fac = next(
        f["properties"] for f in fac["geojson"]["features"] if f["properties"]["name"] == "东城大药房"
    )
    assert rx_fac["kind"] == "社区药店" and rx_fac["_color"] == "#00bcd4"
    unit = (tmp_path / "m" / "610101001.html").read_text(encoding="utf-8")
    assert "社区药店" in unit and "#ff00aa" in unit and "药店服务" in unit.split('id="gap-table"')[1]


def test_class_rule_threshold_comes_from_the_build_registry(fake_build: Path, tmp_path: Path) -> None:
    """The meal radius of a unit is the build's class rule (here reversed: 城区 30, 郊区 15)."""
    b = _registry_build(fake_build, tmp_path / "b", pharmacy=False, meal_classes={"城区": 30.0, "郊区": 15.0})
    urban = [o["name"] for o in _unit_data(b, "610101001")["overlays"]]
    suburban = [o["name"] for o in _unit_data(b, "610101101")["overlays"]]
    assert "助餐服务配送 30 分钟 (城区)" in urban and "助餐服务配送 15 分钟 (郊区)" in suburban
    panel = maps.write_unit_page(b, tmp_path / "m", "610101001").read_text(encoding="utf-8")
    assert "助餐服务时间标准：城区 30 分钟 (城区30分钟、郊区15分钟)" in panel


def test_old_build_falls_back_to_builtin_registry(fake_build: Path) -> None:
    info = json.loads((fake_build / "run_info.json").read_text(encoding="utf-8"))
    assert "kinds" not in info  # the fake build is an old one
    b = maps.read_build(fake_build)
    from coverage.services import BUILTIN_KINDS, BUILTIN_SERVICES

    assert b.services == BUILTIN_SERVICES and b.kinds == BUILTIN_KINDS
    old = {"kinds": None, "services": {"elderly": {"kinds": ["x"], "urban_threshold_min": 15.0}}}
    assert mbuild.registry(old)[0] == BUILTIN_SERVICES  # the old "services" form is not read


# --------------------------------------------------------------------------------------------
# Unit codes never become shell words or paths
# --------------------------------------------------------------------------------------------

HOSTILE_CODES = [
    "a;touch /tmp/pwned_{pid}",
    "`touch /tmp/pwned_{pid}_bt`",
    "$(touch /tmp/pwned_{pid}_d)",
    "../../etc/x",
    "-rf",
    ".hidden",
    "a b",
    "a;touch_b",
    "a_touch_b",
]


def test_unit_page_name_is_safe_and_unique() -> None:
    assert maps.unit_page_name("610101001") == "610101001.html"
    assert maps.unit_page_name("A-b_9") == "A-b_9.html"
    codes = [c.format(pid=1) for c in HOSTILE_CODES] + ["a;touch_b", "a,touch_b", "a touch b"]
    names = [maps.unit_page_name(c) for c in codes]
    for n in names:
        assert re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_\-.]*\.html", n), n
        assert not n.startswith((".", "-")) and "/" not in n and ".." not in n
    assert len(set(names)) == len(set(codes))  # different codes never share a page
    assert maps.unit_page_name("a_touch_b") == "a_touch_b.html" != maps.unit_page_name("a;touch_b")


def test_makefile_passes_no_unit_code_to_the_shell() -> None:
    text = (Path(__file__).resolve().parents[1] / "Makefile").read_text(encoding="utf-8")
    assert "$*" not in text and "unit_codes.txt" not in text and "map-unit" not in text
    assert "%.html" not in text and "$(shell find" not in text and "INPUTS" not in text


def test_make_pages_with_hostile_unit_codes_runs_nothing(fake_build: Path, tmp_path: Path) -> None:
    """`make pages` end to end on a build whose unit codes are shell commands: one Python call writes
    every page under a safe name, and no command in a code runs (nor one in unit_codes.txt)."""
    import os
    import shutil
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    if shutil.which("make") is None:
        pytest.skip("make not installed")
    pid = os.getpid()
    codes = [c.format(pid=pid) for c in HOSTILE_CODES[:3]]
    pwned = [Path(f"/tmp/pwned_{pid}{s}") for s in ("", "_bt", "_d")]
    for p in pwned:
        p.unlink(missing_ok=True)
    layers = tmp_path / "layers" / "demo"
    layers.mkdir(parents=True)
    (layers / "coverage.toml").write_text(
        '[region]\nname = "demo"\nmetric_crs = "EPSG:32649"\n[units]\npath = "units.geojson"\n'
        'code_field = "code"\n'
        'name_field = "name"\n[network]\nsource = "osm_file"\npath = "roads.osm"\n[population]\n'
        'total = "pop_total.tif"\n[maps]\nbasemap = "none"\n',
        encoding="utf-8",
    )
    build = tmp_path / "build" / "demo"
    shutil.copytree(fake_build, build)
    units = gpd.read_file(build / "indicators.gpkg", layer="units")
    units["unit_code"] = codes
    (build / "indicators.gpkg").unlink()
    units.to_file(build / "indicators.gpkg", layer="units")
    (build / "unit_codes.txt").write_text("\n".join(codes) + "\n", encoding="utf-8")
    os.utime(build / "indicators.gpkg")  # newer than the config: make runs no pipeline step
    import coverage

    pkg_root = Path(coverage.__file__).parent.parent  # the `coverage` package these tests import
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(pkg_root), os.environ.get("PYTHONPATH", "")])}
    res = subprocess.run(
        ["make", "-f", str(repo / "Makefile"), "pages", "REGION=demo", f"PY={sys.executable}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert not [p for p in pwned if p.exists()]
    out = tmp_path / "maps" / "demo"
    assert (out / "index.html").is_file() and (out / "overview.png").is_file()
    for c in codes:
        page = out / maps.unit_page_name(c)
        assert page.is_file(), sorted(p.name for p in out.iterdir())
        assert html.escape(c, quote=True) in page.read_text(encoding="utf-8") or c.startswith("`")
    assert sorted(p.name for p in out.glob("*.html")) == sorted(
        ["index.html", *map(maps.unit_page_name, codes)]
    )
    stamps = {p.name: p.stat().st_mtime for p in out.glob("*.html")}
    again = subprocess.run(
        ["make", "-f", str(repo / "Makefile"), "pages", "REGION=demo", f"PY={sys.executable}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert {p.name: p.stat().st_mtime for p in out.glob("*.html")} == stamps  # up to date: nothing rewritten


def test_changed_only_skips_fresh_unit_pages(fake_build: Path, tmp_path: Path) -> None:
    first = maps.write_maps(fake_build, tmp_path, changed_only=True)
    assert len(first) == 4
    again = maps.write_maps(fake_build, tmp_path, changed_only=True)
    assert again == [tmp_path / "index.html"]  # unit pages newer than every input are skipped
    assert len(maps.write_maps(fake_build, tmp_path)) == 4  # default: every page


def test_context_roads_by_class_from_network(fake_build: Path, tmp_path: Path) -> None:
    from coverage.maps import context

    assert context.road_class("primary") == "major" and context.road_class("tertiary_link") == "medium"
    assert context.road_class("['residential', 'service']") == "minor"
    assert context.road_class("footway") == "path" and context.road_class("construction") is None
    b = maps.read_build(fake_build)
    every = context.read_roads(b.path, b.crs)
    assert list(every["road_class"]) == ["path", "minor", "medium", "major"]  # bottom to top, each once
    # both networks and both directions of an edge: each road drawn once
    major = every.set_index("road_class").geometry["major"]
    assert major.length == pytest.approx(9000.0, rel=1e-6)
    main = context.read_roads(b.path, b.crs, classes=context.OVERVIEW_CLASSES)
    assert list(main["road_class"]) == ["medium", "major"]
    box = shapely.box(*_xy(4000, 0), *_xy(6000, 2000))
    near = context.read_roads(b.path, b.crs, box=box)
    assert set(near["road_class"]) == {"minor", "major"} and near.geometry.within(box.buffer(1e-6)).all()
    lyr = context.roads_layer(near, "none")
    assert lyr is not None and lyr.options.get("interactive") is False
    assert lyr.options["pane"] == context.ROADS_PANE
    # no network.gpkg (older build): no roads layer, no error
    assert not len(context.read_roads(tmp_path, b.crs)) and context.roads_layer(
        context.read_roads(tmp_path, b.crs), "none") is None


def test_context_water_from_the_build_drawn_under_the_roads(fake_build: Path, tmp_path: Path) -> None:
    """A ``water`` layer in network.gpkg (written by the pipeline from the region's OSM file) is drawn
    light blue in the context layer and named in its legend; without one, the legend says so."""
    import shutil as sh

    from coverage.maps import context

    b = maps.read_build(fake_build)
    assert not len(context.read_water(b.path, b.crs))
    assert "no water" in context.roads_legend(context.read_roads(b.path, b.crs))["note"]
    wet = tmp_path / "wet"
    sh.copytree(fake_build, wet)
    lake = shapely.box(*_xy(1000, 500), *_xy(1500, 900))
    gpd.GeoDataFrame({"kind": ["MultiPolygon"]}, geometry=[lake], crs=b.crs).to_file(
        wet / "network.gpkg", layer="water", driver="GPKG")
    water = context.read_water(wet, b.crs)
    assert list(water["road_class"]) == ["water"] and water.geometry.iloc[0].area == pytest.approx(lake.area)
    both = pd.concat([water, context.read_roads(wet, b.crs)], ignore_index=True)
    legend = context.roads_legend(both)
    assert legend["items"][-1]["label"] == "水系 (water)" and "no water" not in legend["note"]
    layer = context.roads_layer(both, "none")
    assert layer is not None and any(f["properties"]["c"] == "water" for f in layer.data["features"])


def test_low_confidence_overlay_and_banner(tmp_path: Path) -> None:
    build = make_fake_build(tmp_path / "flagged", not_assessed={"meal": "no meal data"},
                            low_confidence={"610101002": "drive-only walking network"})
    b = maps.read_build(build)
    assert b.low_confidence == {"610101002": "drive-only walking network"}
    data = _overview_data(build)
    low = [o for o in data["overlays"] if o["name"].startswith("低可信")]
    assert len(low) == 1 and low[0]["show"]
    (feat,) = low[0]["geojson"]["features"]
    assert feat["properties"]["unit"] == "西城街道 (610101002)"
    assert "drive-only walking network" in feat["properties"]["_title"]
    assert "西城街道 (610101002): drive-only walking network" in low[0]["legend"]["note"]
    text = page.render(unit_page.unit_map(b, "610101002", basemap="none", tianditu_key=""), basemap="none",
                       tianditu_key="")
    assert 'id="low-confidence"' in text and "drive-only walking network" in text
    other = page.render(unit_page.unit_map(b, "610101001", basemap="none", tianditu_key=""), basemap="none",
                        tianditu_key="")
    assert 'id="low-confidence"' not in other
    # run_info alone (a build without the units' flag columns) also marks the unit
    ri = {"low_confidence": {"610101001": ["few roads near", "census density"]}}
    bare = b.units.drop(columns=["low_confidence", "confidence_reasons"])
    assert mbuild.low_confidence_units(bare, ri) == {"610101001": "few roads near; census density"}
