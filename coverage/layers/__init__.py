"""Input layers as municipalities send them: 街道/乡镇 units and facility points.

Reads shapefiles (plain or zipped, with or without ``.cpg``), GeoPackage, GeoJSON, CSV and XLSX with
coordinate columns, and OSM files (administrative boundaries as units, facilities by tag). Every layer
is checked as a whole: whole-file problems are collected and raised ONCE as :class:`LayerError`; row
problems never raise: each row is either accepted or written to the rejects table with a reason.

Modules, in import order:

- :mod:`~coverage.layers.vocabulary`: column, type and OSM-tag vocabularies; cell parsers.
- :mod:`~coverage.layers.readers`: vector files and CSV/XLSX tables into raw rows.
- :mod:`~coverage.layers.osm`: OSM facility candidates, admin units and road lines.
- :mod:`~coverage.layers.report`: per-layer summaries, the check report, the rejects CSV.
- :mod:`~coverage.layers.units`: units and communities; the metric CRS.
- :mod:`~coverage.layers.placement`: points to WGS84 / metric, swap and study-area checks, shift warning.
- :mod:`~coverage.layers.facilities`: every facility layer into one table plus rejects.
- :mod:`~coverage.layers.check`: the check-layers report.
"""

from __future__ import annotations

from coverage.errors import LayerError
from coverage.layers.check import check_layers
from coverage.layers.facilities import FacilityLayers, read_facilities
from coverage.layers.osm import facilities_from_osm, units_from_osm
from coverage.layers.readers import detect_encoding
from coverage.layers.report import LayerReport, LayerSummary, write_rejects
from coverage.layers.units import Units, read_units, resolve_metric_crs
from coverage.layers.vocabulary import (
    FACILITY_COLUMNS,
    FIELD_ALIASES,
    KIND_ALIASES,
    NUMERIC_FIELDS,
    OSM_KIND_RULES,
    TEXT_FIELDS,
    kind_aliases,
    map_kind,
    parse_number,
)

__all__ = [
    "FACILITY_COLUMNS",
    "FIELD_ALIASES",
    "KIND_ALIASES",
    "NUMERIC_FIELDS",
    "OSM_KIND_RULES",
    "TEXT_FIELDS",
    "FacilityLayers",
    "LayerError",
    "LayerReport",
    "LayerSummary",
    "Units",
    "check_layers",
    "detect_encoding",
    "facilities_from_osm",
    "kind_aliases",
    "map_kind",
    "parse_number",
    "read_facilities",
    "read_units",
    "resolve_metric_crs",
    "units_from_osm",
    "write_rejects",
]
