"""Gap maps a GIS officer opens offline: an overview page, one page per 街道/乡镇, and a PNG.

Reads only the files of ``build/<region>/`` (docs/ARCHITECTURE.md, "Files in build/<region>/") and
writes ``maps/<region>/``: ``index.html`` (one switchable choropleth per service of the build, places
per 1000, failed standards, the low-confidence units outlined dashed, the main roads, a sortable units
table), one ``<unit_page_name(code)>`` per unit (the roads around it, each service's bands and gaps,
the lead service's uncovered cells, facilities by kind, 社区/村, the standards checklist, a banner
when the unit is of low confidence) and ``assets/`` (Leaflet and the page script/style, so no network
is needed).
What is drawn follows the registry the build used (``run_info.json`` ``services``/``kinds``, the
built-in one for older builds), never a literal list of services or kinds.

Modules, one job each:

- :mod:`~coverage.maps.build`: reading ``build/<region>/`` into a typed :class:`Build`;
- :mod:`~coverage.maps.style`: colours, class breaks, legends, number formatting;
- :mod:`~coverage.maps.page`: folium page plumbing, local assets, offline check, page names, files;
- :mod:`~coverage.maps.context`: the offline context layer (roads by class from ``network.gpkg``);
- :mod:`~coverage.maps.overview`: the overview page;
- :mod:`~coverage.maps.unit_page`: the unit page, assembled from a list of layer builders;
- :mod:`~coverage.maps.png`: the matplotlib overview PNG;
- :mod:`~coverage.maps.write`: writing all pages of a region (optionally only the stale ones).
"""

from __future__ import annotations

from coverage.errors import MapsError
from coverage.maps.build import Build, dictionary_labels, read_build
from coverage.maps.page import (
                                ASSET_FILES,
                                PAGE_CSS,
                                PAGE_JS,
                                check_offline,
                                copy_assets,
                                snapping_rule_text,
                                unit_page_name,
)
from coverage.maps.png import find_cjk_font, write_overview_png
from coverage.maps.unit_page import LAYER_BUILDERS
from coverage.maps.write import inputs_mtime, write_maps, write_unit_page

__all__ = [
    "ASSET_FILES",
    "LAYER_BUILDERS",
    "PAGE_CSS",
    "PAGE_JS",
    "Build",
    "MapsError",
    "check_offline",
    "copy_assets",
    "dictionary_labels",
    "find_cjk_font",
    "inputs_mtime",
    "read_build",
    "snapping_rule_text",
    "unit_page_name",
    "write_maps",
    "write_overview_png",
    "write_unit_page",
]
