"""Writing ``maps/<region>/``: the overview, the unit pages (optionally only those older than their
inputs) and the vendored assets, all from one Python call (the Makefile passes no unit code)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

from coverage.maps.build import BUILD_FILES, Build, read_build
from coverage.maps.overview import overview_map
from coverage.maps.page import ASSET_FILES, ASSETS_DIR, copy_assets, render, tiles, unit_page_name, write_text
from coverage.maps.unit_page import unit_map

__all__ = ["inputs_mtime", "write_maps", "write_unit_page"]

log = logging.getLogger(__name__)


def inputs_mtime(build_dir: str | Path, extra: Sequence[str | Path] = ()) -> float:
    """Newest modification time of what a page is made from: the build files, the maps modules, the
    vendored assets and ``extra`` (e.g. the region config holding the basemap); ``network.gpkg`` (the
    context roads) when the build has it."""
    here = Path(__file__).resolve().parent
    paths = [Path(build_dir) / n for n in (*BUILD_FILES, "network.gpkg")] + sorted(here.glob("*.py"))
    paths += [ASSETS_DIR / rel for rel in ASSET_FILES] + [Path(p) for p in extra]
    return max((p.stat().st_mtime for p in paths if p.is_file()), default=0.0)


def write_unit_page(build_dir: str | Path, maps_dir: str | Path, unit_code: str, *, basemap: str = "none",
                    tianditu_key: str = "", _build: Build | None = None) -> Path:
    """Write ``<maps_dir>/<unit_page_name(unit_code)>`` (one 街道/乡镇, a folium page) and the assets.

    Parameters
    ----------
    build_dir : the region's ``build/<region>/`` folder.
    maps_dir : the region's ``maps/<region>/`` folder (created).
    unit_code : a ``unit_code`` of ``indicators.gpkg`` layer ``units``.
    basemap : "none" (offline, no tile URL at all), "osm", "amap" (overlays shifted into GCJ-02) or
        "tianditu" (needs ``tianditu_key``).

    Returns
    -------
    Path of the page. Raises :class:`MapsError` if the page would load any remote script or stylesheet.
    """
    tiles(basemap, tianditu_key)  # validate the basemap before any work
    b = _build if _build is not None else read_build(build_dir)
    maps_dir = Path(maps_dir)
    copy_assets(maps_dir)
    m = unit_map(b, str(unit_code), basemap=basemap, tianditu_key=tianditu_key)
    text = render(m, basemap=basemap, tianditu_key=tianditu_key)
    out = write_text(maps_dir / unit_page_name(unit_code), text)
    log.debug("Wrote unit page %s", out)
    return out


def write_maps(build_dir: str | Path, maps_dir: str | Path, *, basemap: str = "none", region_title: str = "",
               tianditu_key: str = "", unit_codes: Iterable[str] | None = None, unit_pages: bool = True,
               changed_only: bool = False, extra_inputs: Sequence[str | Path] = ()) -> list[Path]:
    """Write one page per unit and the overview ``index.html`` into ``maps_dir`` (``maps/<region>/``).

    Parameters
    ----------
    build_dir : ``build/<region>/``.
    maps_dir : ``maps/<region>/``; ``assets/`` (Leaflet, page script and style) is copied inside.
    basemap : see :func:`write_unit_page`.
    region_title : page title; default ``run_info.json`` ``region_title`` (else ``title``, ``region``).
    unit_codes : only these unit pages (default: every unit).
    unit_pages : False writes only ``index.html`` (its table links then point to pages not written).
    changed_only : skip a unit page newer than all its inputs (:func:`inputs_mtime` of ``build_dir``
        and ``extra_inputs``); the overview is always written.

    Returns
    -------
    The pages written: ``index.html`` first, then the unit pages in table order. ``index.html`` is
    written last, so an interrupted run leaves it older than its inputs (make then runs again).
    """
    from tqdm import tqdm

    tiles(basemap, tianditu_key)  # validate the basemap before any work
    b = read_build(build_dir)
    maps_dir = Path(maps_dir)
    copy_assets(maps_dir)
    codes = (list(unit_codes) if unit_codes is not None else list(b.units["unit_code"])) if unit_pages else []
    newest = inputs_mtime(build_dir, extra_inputs) if changed_only else None
    written: list[Path] = []
    skipped = 0
    for code in tqdm(codes, desc="unit pages", unit="unit", disable=len(codes) < 2, leave=False):
        page = maps_dir / unit_page_name(code)
        if newest is not None and page.is_file() and page.stat().st_mtime >= newest:
            skipped += 1
            continue
        written.append(write_unit_page(build_dir, maps_dir, code, basemap=basemap, tianditu_key=tianditu_key,
                                       _build=b))
    m = overview_map(b, basemap=basemap, tianditu_key=tianditu_key, region_title=region_title)
    index = write_text(maps_dir / "index.html", render(m, basemap=basemap, tianditu_key=tianditu_key))
    log.info("Wrote %d map pages, %d unit pages up to date (%s basemap) to %s", len(written) + 1, skipped,
             basemap, maps_dir)
    return [index, *written]
