"""Open the written maps in headless Debian chromium from file://, with no network.

The pages are folium maps (map div ``.folium-map``). Checks: no console error, no failed request and
no http(s) request at all, layer control and popups
in the DOM, the facility named ``<img src=x onerror=alert(1)>`` shows as text and runs nothing, and
the screenshot of the map area is not blank. Driven by Python playwright against /usr/bin/chromium
(no ``playwright install``); screenshots go to tests/_artifacts/ (git-ignored).
"""

from __future__ import annotations

import html
import io
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_maps import XSS, make_fake_build

from coverage import maps

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "_artifacts"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Any:
    if not CHROMIUM.exists():
        pytest.skip("headless chromium not installed at /usr/bin/chromium (apt-get install chromium)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="python playwright not installed (pip install playwright)"
    )
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    build = make_fake_build(tmp_path_factory.mktemp("build") / "fake")
    out = tmp_path_factory.mktemp("maps") / "fake"
    maps.write_maps(build, out, basemap="none")
    return out


class _Watch:
    def __init__(self, page: Any) -> None:
        self.errors: list[str] = []
        self.failed: list[str] = []
        self.remote: list[str] = []
        self.dialogs: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("requestfailed", lambda r: self.failed.append(r.url))
        page.on(
            "request", lambda r: self.remote.append(r.url) if r.url.startswith(("http:", "https:")) else None
        )

        def on_dialog(d: Any) -> None:
            self.dialogs.append(d.message)
            d.dismiss()

        page.on("dialog", on_dialog)

    def assert_clean(self) -> None:
        assert not self.errors, self.errors
        assert not self.failed, self.failed
        assert not self.remote, self.remote
        assert not self.dialogs, self.dialogs


def _open(browser: Any, url: str, *, width: int = 1280, height: int = 900) -> tuple[Any, Any, _Watch]:
    ctx = browser.new_context(viewport={"width": width, "height": height})
    page = ctx.new_page()
    # belt and braces: any http(s) request is recorded by _Watch and aborted here
    page.route("http*://**", lambda route: route.abort())
    watch = _Watch(page)
    page.goto(url)
    page.wait_for_selector(".leaflet-control-layers")
    page.wait_for_timeout(300)
    return ctx, page, watch


def _map_variance(page: Any, name: str, selector: str = ".folium-map") -> float:
    from PIL import Image

    ARTIFACTS.mkdir(exist_ok=True)
    png = page.locator(selector).screenshot()
    (ARTIFACTS / name).write_bytes(png)
    img = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=float)
    return float(img.var())


def test_overview_page(browser: Any, site: Path) -> None:
    ctx, page, watch = _open(browser, (site / "index.html").as_uri())
    try:
        assert page.locator(".leaflet-control-layers-base input[type=radio]").count() == 6  # 4 services + 2
        assert page.locator("path.leaflet-interactive").count() == 3
        assert page.locator(".cov-legend-block").count() == 2  # the choropleth's and the roads'
        # switching choropleth swaps the legend
        page.locator(".leaflet-control-layers-base label").nth(5).click()
        page.wait_for_timeout(200)
        assert page.locator(".cov-legend-block").count() == 2
        assert "未达标标准数" in page.locator(".cov-legend-title").first.inner_text()
        # sortable table: click the uncovered-elderly header twice -> ascending then descending
        rows = page.locator("#units-table tbody tr")
        assert rows.count() == 3
        first_before = rows.nth(0).locator("td").nth(0).inner_text()
        header = page.locator("#units-table thead th").nth(5)
        header.click()
        assert header.get_attribute("data-dir") == "asc"
        assert rows.nth(2).locator("td").nth(0).inner_text() == first_before
        # a unit popup links to its page
        page.locator("path.leaflet-interactive").first.click(force=True)
        page.wait_for_selector(".leaflet-popup-content a.cov-link")
        href = page.locator(".leaflet-popup-content a.cov-link").get_attribute("href")
        assert href and href.endswith(".html") and (site / href).is_file()
        assert _map_variance(page, "overview.png") > 50
        watch.assert_clean()
    finally:
        ctx.close()


def test_unit_page_xss_popup_and_render(browser: Any, site: Path) -> None:
    ctx, page, watch = _open(browser, (site / "610101001.html").as_uri())
    try:
        overlays = page.locator(".leaflet-control-layers-overlays label").all_inner_texts()
        assert any("设施" in t for t in overlays) and any("缺口" in t for t in overlays)
        assert page.locator(".leaflet-control-scale").count() == 1
        assert page.locator(".folium-map.leaflet-container").count() == 1
        box = page.locator(".folium-map").bounding_box()
        assert box and box["width"] > 500 and box["height"] > 400  # the grid layout gives the map room
        assert page.locator("#side-panel").is_visible()
        assert page.locator("#standards-checklist tr").count() >= 3
        assert "设施吸附到最近路段上的最近点" in page.locator("#snapping-rule").inner_text()
        # open the popup of the facility with the hostile name through Leaflet's own API
        # (folium's popups insert property values as HTML, so the data holds the escaped name)
        opened = page.evaluate(
            """(name) => {
            let hit = null;
            window.coverageMap.eachLayer(l => {
                const p = l.feature && l.feature.properties;
                if (p && p.name === name && l.getLatLng) hit = l;
            });
            if (!hit) return false;
            // folium binds the GeoJsonPopup on the layer group: a click on the feature propagates to it
            hit.fire("click", {latlng: hit.getLatLng()}, true);
            return true;
        }""",
            html.escape(XSS),
        )
        assert opened
        popup = page.locator(".leaflet-popup-content")
        popup.wait_for()
        assert XSS in popup.inner_text()  # visible as text
        assert page.locator(".leaflet-popup-content img").count() == 0
        assert page.locator("img[src=x]").count() == 0
        assert "社区养老服务综合体" in popup.inner_text() and "落点距离" in popup.inner_text()
        page.wait_for_timeout(300)
        assert _map_variance(page, "unit_610101001.png") > 50
        watch.assert_clean()
    finally:
        ctx.close()


def test_blank_page_is_detected(browser: Any, tmp_path: Path) -> None:
    """The blank-screenshot threshold really fails on an empty map area."""
    (tmp_path / "blank.html").write_text(
        '<html><body><div id="map" style="width:800px;height:600px;background:#e8ecef"></div></body></html>'
    )
    ctx = browser.new_context(viewport={"width": 1000, "height": 800})
    try:
        page = ctx.new_page()
        page.goto((tmp_path / "blank.html").as_uri())
        assert _map_variance(page, "blank.png", "#map") < 50
    finally:
        ctx.close()
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_unit_page_legend_communities_and_gap_zoom(browser: Any, site: Path) -> None:
    ctx, page, watch = _open(browser, (site / "610101001.html").as_uri())
    try:
        # compact legend in the bottom-left corner, at most ~40% of the map height, scrollable
        mbox = page.locator(".folium-map").bounding_box()
        legend = page.locator(".cov-legend")
        lbox = legend.bounding_box()
        assert mbox and lbox
        assert lbox["x"] - mbox["x"] < 30 and (mbox["y"] + mbox["height"]) - (lbox["y"] + lbox["height"]) < 60
        assert lbox["height"] <= 0.42 * page.viewport_size["height"] and lbox["width"] <= 260
        assert page.locator(".leaflet-bottom.leaflet-left .cov-legend").count() == 1
        # sections collapse: clicking a <summary> hides its rows
        blocks = page.locator(".cov-legend details.cov-legend-block")
        assert blocks.count() == 7
        rows_before = page.locator(".cov-legend .cov-legend-row:visible").count()
        blocks.nth(0).locator("summary").click()
        assert page.locator(".cov-legend .cov-legend-row:visible").count() < rows_before
        # 社区/村 boundaries: a polygon per community; the hostile name shows as text in the tooltip
        overlays = page.locator(".leaflet-control-layers-overlays label").all_inner_texts()
        assert any("社区/村" in t for t in overlays)
        shown = page.evaluate(
            """(code) => {
            let hit = null;
            window.coverageMap.eachLayer(l => {
                const p = l.feature && l.feature.properties;
                if (p && p.community_code === code) hit = l;
            });
            if (!hit) return null;
            hit.fire("click", {latlng: hit.getBounds().getCenter()}, true);
            return true;
        }""",
            "610101001002",
        )
        assert shown
        popup = page.locator(".leaflet-popup-content")
        popup.wait_for()
        assert "100.0%" in popup.inner_text() and "987" in popup.inner_text()
        assert page.locator("img[src=x]").count() == 0
        # gap table: clicking a row zooms the map to that gap
        row = page.locator("#gap-table tr[data-zoom]").first
        (s, w), (n, e) = json.loads(row.get_attribute("data-zoom"))
        page.evaluate("() => window.coverageMap.setView([0, 0], 3, {animate: false})")
        row.click()
        page.wait_for_timeout(600)
        c = page.evaluate(
            "() => { const m = window.coverageMap, c = m.getCenter(); return [c.lat, c.lng, m.getZoom()]; }"
        )
        assert abs(c[0] - (s + n) / 2) < 0.003 and abs(c[1] - (w + e) / 2) < 0.003 and c[2] > 12, c
        assert "active" in (row.get_attribute("class") or "")
        assert _map_variance(page, "unit_610101001_gap.png") > 50
        watch.assert_clean()
    finally:
        ctx.close()


MEAL_REASON = "not assessed: no facility data for 助餐服务 (meals)"
LOW_CODE, LOW_REASON = "610101101", "46% of the people live beyond 500 m of the walking network (> 20%)"


@pytest.fixture(scope="module")
def flagged(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A fake build with the meal service not assessed and unit 610101101 of low confidence."""
    build = make_fake_build(tmp_path_factory.mktemp("build") / "flagged", not_assessed={"meal": MEAL_REASON},
                            low_confidence={LOW_CODE: LOW_REASON})
    out = tmp_path_factory.mktemp("maps") / "flagged"
    maps.write_maps(build, out, basemap="none")
    return build, out


def _open_small(browser: Any, url: str) -> tuple[Any, Any, _Watch]:
    """A page at 1366x768 (a common office laptop screen)."""
    return _open(browser, url, width=1366, height=768)


def _legend_fits(page: Any) -> None:
    """The legend panel lies within the 1366x768 viewport (its content may scroll inside it)."""
    box = page.evaluate("""() => {
        const l = document.querySelector('.cov-legend'), r = l.getBoundingClientRect();
        return {top: r.top, left: r.left, right: r.right, bottom: r.bottom, client: l.clientHeight,
                scroll: l.scrollHeight, overflow: getComputedStyle(l).overflowY}; }""")
    assert box["top"] >= 0 and box["left"] >= 0 and box["right"] <= 1366, box
    assert box["top"] + box["client"] <= 768 and box["bottom"] <= 768, box
    assert box["overflow"] in ("auto", "scroll"), box


def _roads_drawn(page: Any) -> int:
    """Road paths drawn in the context pane (non-interactive, under the data)."""
    return int(page.evaluate("""() => Array.from(document.querySelectorAll('.leaflet-cov-context-pane path'))
        .filter(p => (p.getAttribute('d') || '').length > 10 && !p.classList.contains('leaflet-interactive'))
        .length"""))


def test_flagged_overview_services_not_assessed_low_confidence_roads(
    browser: Any, flagged: tuple[Path, Path]
) -> None:
    build, site = flagged
    b = maps.read_build(build)
    ctx, page, watch = _open_small(browser, (site / "index.html").as_uri())
    try:
        base = page.locator(".leaflet-control-layers-base label").all_inner_texts()
        for s in b.services.values():  # every service of the registry has its choropleth
            assert any(b.share_label(s) in t for t in base), (s.id, base)
        meal = next(i for i, t in enumerate(base) if b.share_label(b.services["meal"]) in t)
        assert "未评估 / not assessed" in base[meal]
        overlays = page.locator(".leaflet-control-layers-overlays label").all_inner_texts()
        assert any("道路" in t for t in overlays)
        assert any("低可信 / low confidence (1)" in t for t in overlays)
        assert _roads_drawn(page) >= 1
        _legend_fits(page)
        legend = page.locator(".cov-legend").inner_text()
        assert "低可信 / low confidence" in legend and f"青山镇 ({LOW_CODE})" in legend
        assert LOW_REASON in legend
        # the low-confidence unit is outlined (dashed, thick, no fill) with its reasons in the tooltip
        low = page.evaluate("""() => { const out = [];
            window.coverageMap.eachLayer(l => { const p = l.feature && l.feature.properties;
                if (p && p.reasons !== undefined && l.options)
                    out.push([p.unit, p.reasons, l.options.dashArray, l.options.weight, l.options.fill]); });
            return out; }""")
        # (the data carries the escaped reasons, as every municipal string)
        assert low == [[f"青山镇 ({LOW_CODE})", html.escape(LOW_REASON), "10 7", 5, False]], low
        # the not-assessed service's choropleth: grey legend saying so, and why
        page.locator(".leaflet-control-layers-base label").nth(meal).click()
        page.wait_for_timeout(200)
        legend = page.locator(".cov-legend").inner_text()
        assert "未评估 / not assessed" in legend and MEAL_REASON in legend
        _legend_fits(page)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "flagged_overview_1366x768.png"))
        watch.assert_clean()
    finally:
        ctx.close()


def test_flagged_unit_page_banner_roads_and_legend_fit(browser: Any, flagged: tuple[Path, Path]) -> None:
    _build, site = flagged
    ctx, page, watch = _open_small(browser, (site / f"{LOW_CODE}.html").as_uri())
    try:
        banner = page.locator("#low-confidence")
        assert banner.is_visible() and "低可信" in banner.inner_text() and LOW_REASON in banner.inner_text()
        bb = banner.bounding_box()
        assert bb and bb["y"] + bb["height"] <= 200  # in the title bar, at the top
        overlays = page.locator(".leaflet-control-layers-overlays label").all_inner_texts()
        assert any("道路" in t for t in overlays)
        assert _roads_drawn(page) >= 3  # primary, tertiary, residential/service around the unit
        legend = page.locator(".cov-legend").inner_text()
        assert "主干路" in legend and "支路" in legend
        _legend_fits(page)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "flagged_unit_1366x768.png"))
        # units that are not of low confidence have no banner
        page.goto((site / "610101001.html").as_uri())
        page.wait_for_selector(".leaflet-control-layers")
        assert page.locator("#low-confidence").count() == 0
        _legend_fits(page)
        watch.assert_clean()
    finally:
        ctx.close()


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory, demo_layers: Path) -> Path:
    """maps/demo of a demo run with an elderly plan (menu label hostile HTML) and a scenario."""
    from coverage.config import load_config
    from coverage.pipeline import run_plan, run_scenario
    from coverage.plan import PlanRequest

    root = tmp_path_factory.mktemp("planned")
    shutil.copytree(demo_layers, root / "layers" / "demo")
    cfg_path = root / "layers" / "demo" / "coverage.toml"
    text = cfg_path.read_text(encoding="utf-8")
    label = 'label = "社区养老服务综合体 (1000 m²)"'
    assert label in text
    cfg_path.write_text(text.replace(label, "label = " + json.dumps(XSS)), encoding="utf-8")
    cfg = load_config(cfg_path)
    run_plan(cfg, PlanRequest("elderly", sites=1), build_root=root / "build", maps_root=root / "maps")
    run_scenario(cfg, "elderly_plan_2030", build_root=root / "build", maps_root=root / "maps")
    return root / "maps" / "demo"


def test_plan_and_scenario_pages(browser: Any, planned: Path) -> None:
    """The plan page (sites, newly covered cells, remaining gaps, the sites table with a hostile menu
    label shown as text) and the scenario diff page open offline, clean and drawn; the overview links
    to both."""
    index = (planned / "index.html").read_text(encoding="utf-8")
    assert 'href="plan_elderly.html"' in index and 'href="scenarios/elderly_plan_2030/diff.html"' in index
    ctx, page, watch = _open(browser, (planned / "plan_elderly.html").as_uri())
    try:
        assert page.locator("#plan-sites tbody tr").count() == 1
        assert XSS in page.locator("#plan-sites").inner_text()  # the label is text, not markup
        assert page.locator("#plan-summary").inner_text().count("optimal") == 1
        assert _map_variance(page, "plan.png") > 50
        watch.assert_clean()
    finally:
        ctx.close()
    ctx, page, watch = _open(browser, (planned / "scenarios" / "elderly_plan_2030" / "diff.html").as_uri())
    try:
        assert page.locator(".leaflet-control-layers-base input[type=radio]").count() == 4  # one per service
        assert "elderly_circle" in page.locator("#scenario-diff").inner_text()
        assert _map_variance(page, "diff.png") > 50
        watch.assert_clean()
    finally:
        ctx.close()
