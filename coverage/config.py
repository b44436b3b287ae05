"""Typed, closed region configuration loaded from ``layers/<region>/coverage.toml``.

Every concern is one frozen dataclass. The loader rejects unknown keys, wrong types and
out-of-range values, collecting every problem in the file and raising ONE :class:`ConfigError`
whose message names the file, each bad key, its value and what is allowed.

Paths in the file are relative to the folder holding the TOML file; the loader resolves them.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from coverage.errors import ConfigError
from coverage.services import BUILTIN_KINDS, BUILTIN_SERVICES, Kind, Service

# --------------------------------------------------------------------------------------------
# Canonical vocabularies
# --------------------------------------------------------------------------------------------

COORD_HINTS = ("wgs84", "cgcs2000", "gcj02", "bd09")
#: unit types: 街道 / 镇 / 乡 (the street-and-town level), and 区县 for a district or county analysed as
#: ONE unit when no 街道/乡镇 polygons exist (it gets the district-level checks only; its class must be
#: given: see :mod:`coverage.layers.units`)
UNIT_TYPES = ("街道", "镇", "乡", "区县")
UNIT_CLASSES = ("城区", "郊区")
#: the unit class a unit gets when neither its class field nor ``units.default_class`` gives one
#: (none for 区县: a district's urban core or a county, the meal radius differs, so it must be said)
UNIT_DEFAULT_CLASS = {"街道": "城区", "镇": "郊区", "乡": "郊区"}
BASEMAPS = ("none", "osm", "amap", "tianditu")
#: population columns a service can demand, and facility columns that can be its capacity
DEMAND_COLUMNS = ("pop_total", "pop_60plus", "pop_0to3")
CAPACITY_COLUMNS = ("beds", "nursing_beds", "childcare_slots")
_HEX_COLOR = re.compile(r"#[0-9a-fA-F]{6}")

# Default e-bike / tricycle delivery speeds by OSM highway class (km/h).
DEFAULT_DELIVERY_SPEEDS_KPH: dict[str, float] = {
    "trunk": 25.0, "trunk_link": 20.0, "primary": 22.0, "primary_link": 20.0,
    "secondary": 20.0, "secondary_link": 18.0, "tertiary": 18.0, "tertiary_link": 16.0,
    "unclassified": 15.0, "residential": 15.0, "living_street": 10.0, "service": 10.0,
    "road": 15.0, "track": 10.0,
}




# --------------------------------------------------------------------------------------------
# Dataclasses (one per concern)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegionConfig:
    """Identity of the region and its metric CRS."""

    name: str
    title: str = ""
    #: "auto" = UTM zone of the study area's centroid, else any projected CRS ("EPSG:4545").
    metric_crs: str = "auto"


@dataclass(frozen=True)
class UnitsConfig:
    """街道/乡镇 polygons (and optionally 社区/村 polygons) with their attribute fields."""

    path: Path
    #: "file": a polygon layer; "osm": administrative boundaries of `admin_level` from an OSM file
    source: Literal["file", "osm"] = "file"
    admin_level: int = 8
    #: OSM tag giving the unit code (e.g. "ISO3166-2", "ref"); boundaries without it are skipped and
    #: reported (extracts carry neighbouring countries' boundaries too). "" = the relation id.
    osm_code_tag: str = ""
    #: unit type (街道/镇/乡/区县) given to every unit whose type field is absent from the file (or
    #: ``type_field = ""``) or empty in a row; OSM units: every unit (default 街道)
    default_type: str = ""
    #: unit class (城区/郊区) given where the class field is absent or empty (default from the type:
    #: 街道 -> 城区, 镇/乡 -> 郊区; a 区县 unit needs one)
    default_class: str = ""
    layer: str = ""
    crs: str = ""  # override when the file has no CRS ("EPSG:4490")
    encoding: str = "auto"
    #: coordinates of the polygons' vertices: "wgs84"/"cgcs2000" as they are; "gcj02" (AMap/Tencent,
    #: e.g. DataV outlines) and "bd09" (Baidu) are converted to WGS84 (coverage.coords)
    coords: Literal["wgs84", "cgcs2000", "gcj02", "bd09"] = "wgs84"
    #: the same for the communities layer; "" = as ``coords``
    communities_coords: Literal["", "wgs84", "cgcs2000", "gcj02", "bd09"] = ""
    code_field: str = "code"
    name_field: str = "name"
    type_field: str = "type"  # 街道 / 镇 / 乡 / 区县 ("" = none: units.default_type)
    class_field: str = "class"  # 城区 / 郊区 (default from type when empty)
    area_type_field: str = "area_type"  # "old" / "new" / "mixed"
    communities_path: Path | None = None
    communities_layer: str = ""
    community_code_field: str = "code"
    community_name_field: str = "name"
    community_parent_field: str = "parent_code"

    @property
    def community_coords(self) -> str:
        """The coordinates of the communities layer (``communities_coords``, else ``coords``)."""
        return self.communities_coords or self.coords


@dataclass(frozen=True)
class NetworkConfig:
    """Where the road network comes from."""

    source: Literal["osm_file", "road_layer", "osmnx"] = "osm_file"
    path: Path | None = None  # .osm, .osm.bz2, .osm.pbf, or the road-line layer
    place: str = ""  # for source = "osmnx" (needs internet)
    #: components with fewer nodes than this are dropped and reported (never "keep only the largest")
    min_component_nodes: int = 5
    # road_layer field mapping
    class_field: str = "highway"
    speed_field: str = ""  # km/h; empty: the delivery profile's speed per class
    oneway_field: str = ""
    name_field: str = "name"
    #: (from_field, to_field) node ids of each line, for layers not noded at shared coordinates
    #: (e.g. SUMO exports leave gaps at junctions); empty = topology from shared coordinates
    endpoint_fields: tuple[str, ...] = ()
    #: extra road-class value -> OSM highway value mapping (e.g. {"城市主干道" = "primary"})
    class_map: dict[str, str] = field(default_factory=dict)
    crs: str = ""
    encoding: str = "auto"


@dataclass(frozen=True)
class WalkProfile:
    """Walking (elderly) profile. 1.0 m/s = 900 m in 15 min; 0.8 m/s is the documented alternative."""

    speed_mps: float = 1.0
    access_speed_mps: float = 1.0  # off-network leg from a point to its snapped road position


@dataclass(frozen=True)
class DeliveryProfile:
    """E-bike / tricycle meal-delivery profile: speed per OSM highway class."""

    speeds_kph: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_DELIVERY_SPEEDS_KPH))
    default_speed_kph: float = 15.0
    access_speed_mps: float = 1.0  # last leg on foot from the road to the door
    respect_oneway: bool = True


@dataclass(frozen=True)
class SnappingConfig:
    """Snapping rule: nearest point on the nearest network edge, within a maximum distance."""

    facility_max_snap_m: float = 300.0
    cell_max_snap_m: float = 500.0


@dataclass(frozen=True)
class PopulationConfig:
    """Population rasters (persons per cell) or census totals per unit."""

    total: Path | None = None
    age_60plus: Path | None = None
    age_0to3: Path | None = None
    #: CSV with unit_code and share_60plus / share_0to3 columns, used when an age raster is missing
    ratios_csv: Path | None = None
    #: CSV of unit totals (unit_code, pop_total[, pop_60plus, pop_0to3]) when there is no raster
    census_csv: Path | None = None
    census_weight: Literal["residential_road_length", "building_footprint"] = "residential_road_length"
    census_cell_m: float = 100.0
    conservation_tolerance: float = 0.001  # 0.1 %
    #: raster cells wholly outside every unit whose centre lies within this distance (metres, metric CRS)
    #: of a unit polygon join the nearest unit (near-shore cells of a coastline drawn inland); 0 = off:
    #: such cells stay reported as population outside every unit (:attr:`Cells.outside`)
    attach_outside_m: float = 0.0
    #: raster rows read at a time (a band of the whole window's width): memory grows with the band, not the
    #: window; the results do not depend on it (the demo and test regions fit in one band of 4096 rows)
    read_block_rows: int = 4096


@dataclass(frozen=True)
class FacilityLayerConfig:
    """One facility input layer as a municipality sends it."""

    name: str
    path: Path
    layer: str = ""
    crs: str = ""  # override for files without a .prj / CRS
    encoding: str = "auto"
    coords: Literal["wgs84", "cgcs2000", "gcj02", "bd09"] = "wgs84"
    x_field: str = ""  # coordinate columns for CSV/XLSX (auto-detected when empty)
    y_field: str = ""
    header_rows: int = 1
    default_kind: str = ""  # kind for rows without a type column (e.g. a list of meal points)
    #: kinds this layer is COMPLETE for: the region has no facility of these kinds beyond the layer's
    #: rows, so a service with none of them is a real shortfall; without such a declaration (or a
    #: facility), a service has no data and reads "not assessed" (未评估), never "failed"
    complete_for: tuple[str, ...] = ()
    #: explicit canonical-field -> source-column mapping, e.g. {name = "机构名称"}
    fields: dict[str, str] = field(default_factory=dict)
    #: extra free-text type -> canonical kind mapping
    kinds: dict[str, str] = field(default_factory=dict)
    #: for OSM sources: read facilities from the network's OSM file by tag
    from_osm: bool = False
    #: two facilities of the same kind with the same name within this distance are duplicates
    duplicate_max_m: float = 50.0
    #: false (default): a duplicate row is rejected ("duplicate of <fac_id> ...", in rejects.csv, never
    #: counted in capacity sums); true: kept and flagged in ``duplicate_of`` (the old behaviour)
    keep_duplicates: bool = False
    #: XLSX sheet to read; "" = automatic: every sheet whose header equals the first data sheet's
    #: (the first sheet with coordinate columns), notes sheets without coordinate columns skipped
    sheet: str = ""
    #: a layer with a larger share of rejected rows is an error (a truncated file, a wrong CRS);
    #: 0.2 = one row in five; 1.0 disables the share check (a layer with EVERY row rejected stays an error)
    max_rejected_share: float = 0.2
    #: per-field plausibility range overrides, e.g. {beds = [1, 8000]}; a value outside its range
    #: rejects the row. Fields and defaults: :attr:`PLAUSIBLE_RANGES`
    ranges: dict[str, tuple[float, ...]] = field(default_factory=dict)
    #: row filters by field value (Python regular expressions, searched anywhere in the text), e.g.
    #: ``exclude = { type = "宠物|口腔|整形" }`` and ``include = { name = "社区" }``. A key is a column of
    #: the file (``type``, ``name``, ``typecode`` of an Amap export), a canonical field (``name``,
    #: ``address``, ``kind`` = the type column, ...), ``type`` (the type column, or for OSM layers the
    #: tag rule), or ``source_type`` (the type text / OSM rule that decided the kind). A row whose field
    #: matches an ``exclude`` pattern, or misses an ``include`` pattern, is REJECTED with the reason
    #: "excluded by facilities[i].exclude.type = '...'" (counted, in rejects.csv; it does not count
    #: towards ``max_rejected_share``). Empty (default): no filter.
    exclude: dict[str, str] = field(default_factory=dict)
    include: dict[str, str] = field(default_factory=dict)

    #: Default plausible ranges (inclusive) of the numeric fields. Why these numbers:
    #: - beds 0..5000: 0 is how mixed tables write "no beds" (a 托育 or 助餐点 row); the largest
    #:   Chinese care campuses have a few thousand beds, 5000 is above them and far below typing
    #:   errors (1e12, a phone number, an area in the beds column).
    #: - nursing_beds 0..5000 (and <= beds when both are known, checked separately).
    #: - childcare_slots 0..2000: a 托育机构 has tens to a few hundred 托位, the largest 幼儿园 about
    #:   1500 children; 0 = none (mixed tables).
    #: - floor_area_m2 10..200000: a 助餐点 counter or 互助点 room is >= 10 m²; 200000 m² (20 ha of
    #:   floor) is above any single care building; areas entered in 万㎡ or hectares fall outside.
    #: - land_area_m2 10..500000: up to 50 ha for a care campus with its grounds.
    PLAUSIBLE_RANGES: ClassVar[dict[str, tuple[float, float]]] = {
        "beds": (0.0, 5000.0),
        "nursing_beds": (0.0, 5000.0),
        "childcare_slots": (0.0, 2000.0),
        "floor_area_m2": (10.0, 200000.0),
        "land_area_m2": (10.0, 500000.0),
    }

    def plausible_range(self, field_name: str) -> tuple[float, float]:
        """The inclusive (low, high) range of a numeric field: ``ranges`` override, else the default."""
        low, high = self.ranges.get(field_name, self.PLAUSIBLE_RANGES[field_name])
        return float(low), float(high)


@dataclass(frozen=True)
class StandardsConfig:
    """Values of the DOMAIN.md standards (sources are fixed in :mod:`coverage.standards`)."""

    elderly_circle_min: float = 15.0
    #: share of the target population that must be inside a circle for the unit to pass
    #: (1.0 = the policy's letter: every elderly resident / every child)
    circle_required_share: float = 1.0
    #: 老幼复合型社区综合体 per district (central city 5, others 2) and share of community complexes
    #: offering childcare (central city 80 %, other central towns 50 %) — 成都 003 (九)13
    old_young_complex_min: int = 2
    complex_childcare_share: float = 0.5
    childcare_circle_min: float = 15.0
    elderly_land_m2_per_resident: float = 0.1
    childcare_slots_new_per_1000: float = 10.0
    childcare_slots_old_per_1000: float = 8.0
    #: a target set of coverage.targets (e.g. "chengdu_2025"): sets childcare_slots_target_per_1000 and
    #: nursing_bed_share from that plan and names it, with its year, in standards.csv ("" = the two
    #: values below, cited by the standards' own sources)
    targets: str = ""
    childcare_slots_target_per_1000: float = 4.5
    street_institution_old_m2: float = 1500.0
    street_institution_new_m2: float = 3000.0
    community_daycare_m2: float = 750.0
    street_complex_min: int = 1
    daycare_coverage_share: float = 0.95
    nursing_bed_share: float = 0.55
    colocation_max_m: float = 100.0
    town_regional_center_min: int = 1
    #: 2SFCA catchment (minutes) and Gaussian decay on/off
    fca_catchment_min: float = 15.0


@dataclass(frozen=True)
class ConfidenceConfig:
    """Data-coverage thresholds below which a unit's results are flagged 低可信 / low confidence
    (coverage.confidence). Defaults: a road extract must span 90 % of a unit (the network's convex
    hull: a sparse rural network still spans its 乡, a truncated extract does not); 300 m is a
    5-minute walk at 1 m/s, a fair "near a road", and under 10 % of a unit near roads means roads are
    missing (mountain 乡 of the demo and the Comoros islands have about 30 %); more than 20 % of the
    people beyond the snap limit, or of the facilities, means the roads miss a sizeable part; 1,000
    persons per hectare is above the densest Chinese high-rise blocks, so census totals spread that
    densely sit on too few roads."""

    min_network_extent_share: float = 0.9
    road_buffer_m: float = 300.0
    min_road_area_share: float = 0.1
    max_pop_beyond_snap_share: float = 0.2
    max_fac_unsnapped_share: float = 0.2
    max_census_density_per_ha: float = 1000.0


@dataclass(frozen=True)
class IsochroneConfig:
    frontage_m: float = 50.0  # buffer around reachable segments


@dataclass(frozen=True)
class TilesConfig:
    """Tiled runs (coverage.tiling, coverage.cluster): tile size, when a run is tiled, the time cap."""

    tile_size_m: float = 20000.0  # side of a tile's core, metres
    #: `coverage run` tiles a region with at least this many populated cells (--tiled/--untiled force)
    min_cells: int = 2_000_000
    #: travel times above this are "not reached" (inf) in tiled AND untiled runs; 0 = untiled runs keep
    #: every time and a tiled run caps each service at its largest threshold (coverage.tiling)
    time_cap_min: float = 0.0


@dataclass(frozen=True)
class MapsConfig:
    basemap: Literal["none", "osm", "amap", "tianditu"] = "none"
    tianditu_key: str = ""


@dataclass(frozen=True)
class MenuEntry:
    """One facility type a planned site can take (``[[planning.menu]]``): the service it serves, its
    kind, its capacity in the service's capacity unit (beds for elderly care, 托位 for childcare, meals
    per day for meals: the unit of ``planning.demand_share``), its floor area and its cost (in
    ``planning.cost_unit``; 1 = each site costs the same)."""

    service: str
    kind: str
    capacity: float
    label: str = ""
    floor_area_m2: float = 0.0
    cost: float = 1.0


@dataclass(frozen=True)
class PlanningConfig:
    """Site planning (``make plan``; coverage.plan). Candidates are the ``[[planning.candidates]]``
    layers (read like facility layers: same validation, rejects reported) and/or sites generated on the
    walking network in and around the service's gap areas: the network's nodes thinned to one per
    ``generate_spacing_m`` square, within ``generate_buffer_m`` of a gap cell (0 = none generated)."""

    candidates: tuple[FacilityLayerConfig, ...] = ()
    menu: tuple[MenuEntry, ...] = ()
    generate_spacing_m: float = 250.0
    generate_buffer_m: float = 600.0
    #: capacitated (demand assigned only to sites within reach, only up to capacity) or not
    capacitated: bool = True
    #: capacity units needed per person of the service's demand population (capacitated plans): beds per
    #: elderly resident (0.04 = 40 per 1000, Chengdu has 39.9 today, DOMAIN.md); 托位 per child aged 0-3
    #: (0.15: 4.5 托位 per 1000 residents with ~30 children aged 0-3 per 1000 residents); a service not
    #: listed (meals) needs a value for a capacitated plan
    demand_share: dict[str, float] = field(default_factory=lambda: {"elderly": 0.04, "childcare": 0.15})
    #: an existing facility with unknown capacity: "unlimited" (serves all demand within reach; the plan
    #: then never targets that demand) or "zero" (serves nobody)
    unknown_capacity: Literal["unlimited", "zero"] = "unlimited"
    #: per-unit rules the plan must meet (also: --rule): street_complex (each 街道 >= standards.
    #: street_complex_min 社区养老服务综合体), town_center (each 镇/乡 >= standards.town_regional_center_min
    #: 乡镇区域性养老服务中心), childcare_slots (each unit's 托位 >= the target per 1000 residents)
    rules: tuple[str, ...] = ()
    time_limit_s: float = 60.0
    #: capacitated plans stop at this proven gap on the objective (uncapacitated plans are solved exactly)
    mip_rel_gap: float = 0.01
    #: the coverage-vs-number-of-sites curve is solved for 1..N sites, N at most this
    curve_max_sites: int = 20
    cost_unit: str = "万元"


@dataclass(frozen=True)
class ScenarioConfig:
    """A what-if (``[scenarios.<name>]``; coverage.scenario): the baseline plus ``add`` layers (facility
    layers) and the sites of the plans of ``plans`` (services), minus the facilities ``remove`` (fac_id
    values), optionally with the population of ``year``: every cell scaled by ``population_scale``, or
    per unit to the totals of ``population_csv`` (columns unit_code, pop_total)."""

    name: str
    description: str = ""
    add: tuple[FacilityLayerConfig, ...] = ()
    plans: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    year: int = 0
    population_scale: float = 1.0
    population_csv: Path | None = None


@dataclass(frozen=True)
class Config:
    """The whole region config."""

    path: Path
    region: RegionConfig
    units: UnitsConfig
    network: NetworkConfig
    population: PopulationConfig
    facilities: tuple[FacilityLayerConfig, ...]
    #: the service registry (coverage.services) with this region's overrides and additions
    services: dict[str, Service]
    #: canonical facility kinds (coverage.services) with this region's additions
    kinds: dict[str, Kind] = field(default_factory=lambda: dict(BUILTIN_KINDS))
    walk: WalkProfile = WalkProfile()
    delivery: DeliveryProfile = DeliveryProfile()
    snapping: SnappingConfig = SnappingConfig()
    standards: StandardsConfig = StandardsConfig()
    isochrones: IsochroneConfig = IsochroneConfig()
    tiles: TilesConfig = TilesConfig()
    confidence: ConfidenceConfig = ConfidenceConfig()
    maps: MapsConfig = MapsConfig()
    planning: PlanningConfig = PlanningConfig()
    scenarios: dict[str, ScenarioConfig] = field(default_factory=dict)

    @property
    def base_dir(self) -> Path:
        return self.path.parent


# --------------------------------------------------------------------------------------------
# Range rules: (key -> (predicate, description of what is allowed))
# --------------------------------------------------------------------------------------------

_RANGES: dict[str, tuple[typing.Callable[[Any], bool], str]] = {
    "walk.speed_mps": (lambda v: 0.3 <= v <= 3.0,
                       "a walking speed between 0.3 and 3.0 m/s (elderly default 1.0)"),
    "walk.access_speed_mps": (lambda v: 0.3 <= v <= 3.0, "a speed between 0.3 and 3.0 m/s"),
    "delivery.default_speed_kph": (lambda v: 3 <= v <= 60, "a speed between 3 and 60 km/h"),
    "delivery.access_speed_mps": (lambda v: 0.3 <= v <= 3.0, "a speed between 0.3 and 3.0 m/s"),
    "snapping.facility_max_snap_m": (lambda v: 0 < v <= 5000, "a distance in metres, 0 < d <= 5000"),
    "snapping.cell_max_snap_m": (lambda v: 0 < v <= 5000, "a distance in metres, 0 < d <= 5000"),
    "network.min_component_nodes": (lambda v: 1 <= v <= 100000, "an integer >= 1"),
    "population.conservation_tolerance": (lambda v: 0 < v <= 0.05, "a fraction in (0, 0.05]"),
    "population.census_cell_m": (lambda v: 10 <= v <= 1000, "a cell size between 10 and 1000 m"),
    "population.attach_outside_m": (lambda v: 0 <= v <= 2000,
                                    "a distance between 0 and 2000 m (default 0 = off)"),
    "population.read_block_rows": (lambda v: v >= 1, "a number of raster rows >= 1 (default 4096)"),
    "isochrones.frontage_m": (lambda v: 0 <= v <= 500, "a distance between 0 and 500 m"),
    "facilities.duplicate_max_m": (lambda v: 0 <= v <= 5000, "a distance between 0 and 5000 m"),
    "facilities.max_rejected_share": (lambda v: 0 <= v <= 1,
                                      "a share between 0 and 1 (default 0.2; 1.0 disables the check)"),
    "units.admin_level": (lambda v: 2 <= v <= 11, "an OSM admin_level between 2 and 11"),
    "standards.daycare_coverage_share": (lambda v: 0 <= v <= 1, "a share between 0 and 1"),
    "confidence.road_buffer_m": (lambda v: 10 <= v <= 5000, "a distance between 10 and 5000 m"),
    "confidence.min_road_area_share": (lambda v: 0 <= v <= 1, "a share between 0 and 1"),
    "confidence.min_network_extent_share": (lambda v: 0 <= v <= 1, "a share between 0 and 1"),
    "confidence.max_pop_beyond_snap_share": (lambda v: 0 <= v <= 1, "a share between 0 and 1"),
    "confidence.max_fac_unsnapped_share": (lambda v: 0 <= v <= 1, "a share between 0 and 1"),
    "confidence.max_census_density_per_ha": (lambda v: v > 0, "persons per hectare > 0"),
    "standards.nursing_bed_share": (lambda v: 0 <= v <= 1, "a share between 0 and 1"),
    "standards.circle_required_share": (lambda v: 0 < v <= 1, "a share in (0, 1]"),
    "standards.complex_childcare_share": (lambda v: 0 <= v <= 1, "a share between 0 and 1"),
    "tiles.tile_size_m": (lambda v: 500 <= v <= 1_000_000, "a tile side between 500 m and 1000 km"),
    "tiles.min_cells": (lambda v: v >= 0, "a number of cells >= 0"),
    "tiles.time_cap_min": (lambda v: v == 0 or 1 <= v <= 1440, "0 (no cap) or minutes between 1 and 1440"),
}
_POSITIVE_PREFIXES = ("standards.",)


def _type_name(tp: Any) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
             Path: "a path string"}
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp) if a is not type(None))
    if origin is tuple:
        return f"a list of {_type_name(typing.get_args(tp)[0])}s".replace("a list of a ", "a list of ")
    if origin is dict:
        k, v = typing.get_args(tp)
        return f"a table of {_type_name(k)} -> {_type_name(v)}"
    return names.get(tp, getattr(tp, "__name__", str(tp)))


class _Loader:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.problems: list[str] = []

    def bad(self, key: str, value: Any, allowed: str) -> None:
        self.problems.append(f"  {key} = {value!r}: expected {allowed}")

    def convert(self, key: str, value: Any, tp: Any) -> Any:
        origin = typing.get_origin(tp)
        if origin is Literal:
            if value not in typing.get_args(tp):
                self.bad(key, value, _type_name(tp))
            return value
        if origin in (typing.Union, types.UnionType):
            if value is None and type(None) in typing.get_args(tp):
                return None  # an optional default carried over from a registry entry
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            return self.convert(key, value, args[0])
        if origin is tuple:
            inner = typing.get_args(tp)[0]
            if not isinstance(value, list):
                self.bad(key, value, _type_name(tp))
                return ()
            return tuple(self.convert(f"{key}[{i}]", v, inner) for i, v in enumerate(value))
        if origin is dict:
            _kt, vt = typing.get_args(tp)
            if not isinstance(value, dict):
                self.bad(key, value, _type_name(tp))
                return {}
            return {str(k): self.convert(f"{key}.{k}", v, vt) for k, v in value.items()}
        if tp is Path:
            if not isinstance(value, str) or not value:
                self.bad(key, value, "a non-empty path string (relative to the config's folder)")
                return Path(".")
            p = Path(value)
            return p if p.is_absolute() else (self.path.parent / p)
        if tp is bool:
            if not isinstance(value, bool):
                self.bad(key, value, "true or false")
            return value
        if tp is int:
            if isinstance(value, bool) or not isinstance(value, int):
                self.bad(key, value, "an integer")
                return 0
            return value
        if tp is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                self.bad(key, value, "a number")
                return 0.0
            return float(value)
        if tp is str:
            if not isinstance(value, str):
                self.bad(key, value, "a string")
            return value
        raise TypeError(f"unsupported config type {tp!r}")

    def build(self, cls: type, prefix: str, table: Any, extra: dict[str, Any] | None = None) -> Any:
        if not isinstance(table, dict):
            self.bad(prefix, table, "a table")
            table = {}
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = dict(extra or {})
        for k, v in table.items():
            key = f"{prefix}.{k}" if prefix else k
            if k not in fields or k in (extra or {}):
                allowed = ", ".join(n for n in fields
                                    if n not in (extra or {}) and n != "path" or cls is not Config)
                self.problems.append(f"  {key}: unknown key (allowed keys: {allowed})")
                continue
            before = len(self.problems)
            val = self.convert(key, v, hints[k])
            rng = _RANGES.get(re.sub(r"\[\d+\]", "", key))
            if len(self.problems) > before:
                pass  # wrong type already reported; no range message on a placeholder
            elif rng and isinstance(val, (int, float)) and not rng[0](val):
                self.bad(key, v, rng[1])
            elif (key.startswith(_POSITIVE_PREFIXES) and isinstance(val, (int, float))
                  and not isinstance(val, bool) and val < 0):
                self.bad(key, v, "a value >= 0")
            kwargs[k] = val
        missing = [n for n, f in fields.items()
                   if n not in kwargs and f.default is dataclasses.MISSING
                   and f.default_factory is dataclasses.MISSING]
        for n in missing:
            self.problems.append(f"  {prefix + '.' if prefix else ''}{n}: missing (required)")
        if missing:
            return None
        return cls(**kwargs)


def load_config(path: str | Path) -> Config:
    """Load and validate ``coverage.toml``.

    Raises
    ------
    ConfigError
        Listing every unknown key, wrong type, out-of-range value and missing required key, each
        with the value found and what is allowed.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: region config not found. Create it (see layers/demo/coverage.toml "
                          f"for a complete example) or pass REGION=<folder under layers/>.")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid UTF-8 TOML: {exc}. Fix the file at that line (sections in "
                          f"[brackets] once each, key = value, text in quotes; save as UTF-8)") from None
    ld = _Loader(path)
    sections = {"region", "units", "network", "population", "facilities", "services", "kinds", "walk",
                "delivery", "snapping", "standards", "isochrones", "confidence", "maps", "planning",
                "scenarios"}
    for k in raw:
        if k not in sections | {"tiles"}:  # [tiles]: coverage.tiling
            ld.problems.append(f"  {k}: unknown section (allowed: {', '.join(sorted(sections | {'tiles'}))})")
    region = ld.build(RegionConfig, "region", raw.get("region", {}))
    units = ld.build(UnitsConfig, "units", raw.get("units", {}))
    network = ld.build(NetworkConfig, "network", raw.get("network", {}))
    population = ld.build(PopulationConfig, "population", raw.get("population", {}))
    kw: dict[str, Any] = {}
    for sec, cls in (("walk", WalkProfile), ("delivery", DeliveryProfile), ("snapping", SnappingConfig),
                     ("standards", StandardsConfig), ("isochrones", IsochroneConfig),
                     ("confidence", ConfidenceConfig), ("maps", MapsConfig), ("tiles", TilesConfig)):
        if sec in raw:
            kw[sec] = ld.build(cls, sec, raw[sec])
    if kw.get("standards") is not None and kw["standards"].targets:
        kw["standards"] = _apply_targets(ld, kw["standards"], raw.get("standards", {}))
    if "delivery" in kw and kw["delivery"] is not None:
        for cls_name, sp in kw["delivery"].speeds_kph.items():
            if not 3 <= sp <= 60:
                ld.bad(f"delivery.speeds_kph.{cls_name}", sp, "a speed between 3 and 60 km/h")

    kinds = _load_kinds(ld, raw.get("kinds", {}))
    facilities = _load_facility_layers(ld, raw.get("facilities", []), kinds)
    services = _load_services(ld, raw.get("services", {}), kinds)
    if "planning" in raw:
        kw["planning"] = _load_planning(ld, raw["planning"], kinds, services)
    if "scenarios" in raw:
        kw["scenarios"] = _load_scenarios(ld, raw["scenarios"], kinds, services)

    if region is not None and region.metric_crs != "auto":
        from coverage.coords import require_projected
        from coverage.errors import InputError

        try:
            require_projected(region.metric_crs, what="region.metric_crs")
        except InputError:
            ld.bad("region.metric_crs", region.metric_crs,
                   "a PROJECTED CRS in metres pyproj understands "
                   "(e.g. 'EPSG:4545' CGCS2000 GK 108E) or 'auto'")
    if units is not None:
        if units.default_type and units.default_type not in UNIT_TYPES:
            ld.bad("units.default_type", units.default_type,
                   "one of " + ", ".join(UNIT_TYPES) + " (区县: a district or county as one unit)")
        if units.default_class and units.default_class not in UNIT_CLASSES:
            ld.bad("units.default_class", units.default_class, "one of " + ", ".join(UNIT_CLASSES))
        osm_units = units.source == "osm" or units.path.suffix.lower() in (".pbf", ".osm", ".o5m") \
            or units.path.name.lower().endswith(".osm.bz2")
        if osm_units and units.coords in ("gcj02", "bd09"):
            ld.bad("units.coords", units.coords, "'wgs84' for OSM boundaries (OSM is WGS84; GCJ-02/BD-09 "
                   "apply to outlines copied from AMap/DataV/Tencent or Baidu files)")
    if region is not None and not _FOLDER_NAME.fullmatch(region.name or ""):
        ld.bad("region.name", region.name, "letters, digits, '_' or '-' (it names build/ and maps/ folders)")
    if network is not None and network.source in ("osm_file", "road_layer") and network.path is None:
        ld.problems.append(f"  network.path: missing (required when network.source = {network.source!r})")
    if network is not None and network.source == "osmnx" and not network.place:
        ld.problems.append("  network.place: missing (required when network.source = 'osmnx')")
    if network is not None and len(network.endpoint_fields) not in (0, 2):
        ld.bad("network.endpoint_fields", list(network.endpoint_fields), "two field names [from, to] or []")
    if population is not None and population.total is None and population.census_csv is None:
        ld.problems.append("  population: give `total` (a raster of persons per cell) or `census_csv`")

    if ld.problems:
        raise ConfigError(f"{path}: {len(ld.problems)} problem(s) in the region config:\n"
                          + "\n".join(ld.problems) + "\nFix each key above (every option, its default "
                          "and its range: coverage/config.py; a complete example: "
                          "layers/demo/coverage.toml).")
    return Config(path=path, region=region, units=units, network=network, population=population,
                  facilities=tuple(facilities), services=services, kinds=kinds, **kw)


#: a name that becomes a folder of build/ and maps/ (a region, a scenario): never a path or a shell word
_FOLDER_NAME = re.compile(r"[A-Za-z0-9_\-]+")

#: the per-unit rules a plan can be held to (coverage.plan), by name
PLAN_RULES = ("street_complex", "town_center", "childcare_slots")


def _load_planning(ld: _Loader, raw: Any, kinds: dict[str, Kind], services: dict[str, Service]
                   ) -> PlanningConfig:
    if not isinstance(raw, dict):
        ld.bad("planning", raw, "a table [planning] with [[planning.menu]] and [[planning.candidates]]")
        return PlanningConfig()
    rest = {k: v for k, v in raw.items() if k not in ("candidates", "menu")}
    plan = ld.build(PlanningConfig, "planning", rest) or PlanningConfig()
    cands = _load_facility_layers(ld, raw.get("candidates", []), kinds, key="planning.candidates")
    menu: list[MenuEntry] = []
    raw_menu = raw.get("menu", [])
    if not isinstance(raw_menu, list):
        ld.bad("planning.menu", raw_menu, "an array of tables: [[planning.menu]] service = ... kind = ...")
        raw_menu = []
    for i, t in enumerate(raw_menu):
        key = f"planning.menu[{i}]"
        if isinstance(t, dict) and "capacity" not in t:
            ld.problems.append(f"  {key}.capacity: missing: a planned site needs a capacity (beds, 托位 or "
                               "meals per day) for the plan to know how many people it serves")
            continue
        e = ld.build(MenuEntry, key, t)
        if e is None:
            continue
        if e.service not in services:
            ld.bad(f"{key}.service", e.service, "one of the services: " + ", ".join(services))
        elif e.kind not in services[e.service].kinds:
            ld.bad(f"{key}.kind", e.kind, f"a kind that provides {e.service}: "
                   + ", ".join(services[e.service].kinds))
        if not e.capacity > 0:
            ld.bad(f"{key}.capacity", e.capacity, "a capacity > 0")
        if e.cost < 0:
            ld.bad(f"{key}.cost", e.cost, "a cost >= 0")
        menu.append(e)
    for r in plan.rules:
        if r not in PLAN_RULES:
            ld.bad("planning.rules", r, "one of " + ", ".join(PLAN_RULES))
    for sid, v in plan.demand_share.items():
        if sid not in services:
            ld.bad(f"planning.demand_share.{sid}", v, "a service id: " + ", ".join(services))
        elif not 0 < v <= 1:
            ld.bad(f"planning.demand_share.{sid}", v, "a share in (0, 1]")
    if not 0 <= plan.mip_rel_gap < 1:
        ld.bad("planning.mip_rel_gap", plan.mip_rel_gap, "a relative gap in [0, 1), e.g. 0.01")
    return dataclasses.replace(plan, candidates=tuple(cands), menu=tuple(menu))


def _load_scenarios(ld: _Loader, raw: Any, kinds: dict[str, Kind], services: dict[str, Service]
                    ) -> dict[str, ScenarioConfig]:
    if not isinstance(raw, dict):
        ld.bad("scenarios", raw, "tables [scenarios.<name>] (add = [...], plans = [...], remove = [...])")
        return {}
    out: dict[str, ScenarioConfig] = {}
    for name, t in raw.items():
        key = f"scenarios.{name}"
        if not _FOLDER_NAME.fullmatch(name):
            ld.bad(key, name, "a scenario name of letters, digits, '_' or '-' (it names a folder)")
            continue
        if not isinstance(t, dict):
            ld.bad(key, t, "a table")
            continue
        adds = _load_facility_layers(ld, t.get("add", []), kinds, key=f"{key}.add")
        sc = ld.build(ScenarioConfig, key, {k: v for k, v in t.items() if k != "add"}, extra={"name": name})
        if sc is None:
            continue
        for sid in sc.plans:
            if sid not in services:
                ld.bad(f"{key}.plans", sid, "service ids whose plan sites to add: " + ", ".join(services))
        if not sc.population_scale > 0:
            ld.bad(f"{key}.population_scale", sc.population_scale, "a factor > 0 (1.05 = 5 % more people)")
        out[name] = dataclasses.replace(sc, add=tuple(adds))
    return out


def _apply_targets(ld: _Loader, std: StandardsConfig, raw: Any) -> StandardsConfig:
    """``std`` with the values of its target set (coverage.targets); a value also given by hand is a
    conflict (one number, one source)."""
    from coverage.targets import TARGET_SETS

    t = TARGET_SETS.get(std.targets)
    if t is None:
        ld.bad("standards.targets", std.targets, "one of " + ", ".join(TARGET_SETS) + " (or \"\")")
        return std
    for key in ("childcare_slots_target_per_1000", "nursing_bed_share"):
        if isinstance(raw, dict) and key in raw:
            ld.problems.append(f"  standards.{key}: given together with standards.targets = {std.targets!r}; "
                               f"keep one (the target set gives {key})")
    return dataclasses.replace(std, childcare_slots_target_per_1000=t.childcare_slots_per_1000,
                               nursing_bed_share=t.nursing_bed_share)


def _load_kinds(ld: _Loader, raw: Any) -> dict[str, Kind]:
    """The built-in facility kinds plus ``[kinds.<id>]`` tables (label_zh required, label_en, color)."""
    kinds = dict(BUILTIN_KINDS)
    if not isinstance(raw, dict):
        ld.bad("kinds", raw, "a table of [kinds.<id>] tables (label_zh = ..., color = ...)")
        return kinds
    for kid, t in raw.items():
        if not re.fullmatch(r"[a-z][a-z0-9_]*", kid):
            ld.bad(f"kinds.{kid}", kid, "an id of lower-case letters, digits and '_'")
            continue
        base = dataclasses.asdict(kinds[kid]) if kid in kinds else {}
        base.pop("id", None)
        k = ld.build(Kind, f"kinds.{kid}", {**base, **(t if isinstance(t, dict) else {})}, extra={"id": kid})
        if k is None:
            continue
        if not _HEX_COLOR.fullmatch(k.color):
            ld.bad(f"kinds.{kid}.color", k.color, "a colour '#rrggbb'")
        kinds[kid] = k
    return kinds


def _kind_list(kinds: dict[str, Kind]) -> str:
    return "one of the canonical kinds: " + ", ".join(kinds) + " (or add one in a [kinds.<id>] table)"


def _load_facility_layers(ld: _Loader, raw: Any, kinds: dict[str, Kind], *, key: str = "facilities"
                          ) -> list[FacilityLayerConfig]:
    if not isinstance(raw, list):
        ld.bad(key, raw, f"an array of tables: [[{key}]] name = ... path = ...")
        return []
    out: list[FacilityLayerConfig] = []
    names: set[str] = set()
    for i, t in enumerate(raw):
        f = ld.build(FacilityLayerConfig, f"{key}[{i}]", t)
        if f is None:
            continue
        if f.name in names:
            ld.bad(f"{key}[{i}].name", f.name, "a name not used by another layer")
        names.add(f.name)
        if f.default_kind and f.default_kind not in kinds:
            ld.bad(f"{key}[{i}].default_kind", f.default_kind, _kind_list(kinds))
        for txt, kind in f.kinds.items():
            if kind not in kinds:
                ld.bad(f"{key}[{i}].kinds.{txt}", kind, _kind_list(kinds))
        for kind in f.complete_for:
            if kind not in kinds:
                ld.bad(f"{key}[{i}].complete_for", kind, _kind_list(kinds))
        for fname, rng in f.ranges.items():
            rkey = f"{key}[{i}].ranges.{fname}"
            if fname not in FacilityLayerConfig.PLAUSIBLE_RANGES:
                ld.bad(rkey, list(rng), "a range of one of the numeric fields: "
                       + ", ".join(FacilityLayerConfig.PLAUSIBLE_RANGES) + " (e.g. beds = [1, 8000])")
            elif len(rng) != 2 or not all(isinstance(v, float) for v in rng):
                ld.bad(rkey, list(rng), "two numbers [low, high] (e.g. beds = [1, 8000])")
            elif rng[0] > rng[1]:
                ld.bad(rkey, list(rng), "[low, high] with low <= high")
        for which, filters in (("exclude", f.exclude), ("include", f.include)):
            for fname, pattern in filters.items():
                if not isinstance(pattern, str):
                    continue  # already reported: expected a string
                try:
                    re.compile(pattern)
                except re.error as exc:
                    ld.bad(f"{key}[{i}].{which}.{fname}", pattern,
                           f"a regular expression ({exc}); e.g. \"宠物|口腔|整形\"")
        out.append(f)
    return out


#: keys of the earlier [services.meal] table, now one per-class table
_RENAMED_SERVICE_KEYS = {"urban_threshold_min": "class_thresholds_min = { \"城区\" = 15, \"郊区\" = 30 }",
                         "suburban_threshold_min": "class_thresholds_min = { \"城区\" = 15, \"郊区\" = 30 }"}


def _load_services(ld: _Loader, raw: Any, kinds: dict[str, Kind]) -> dict[str, Service]:
    """The service registry with ``[services.<id>]`` overrides (any field of a built-in entry) and
    additions (a new id with at least label_zh, label_en and kinds)."""
    services = dict(BUILTIN_SERVICES)
    if not isinstance(raw, dict):
        ld.bad("services", raw, "a table of [services.<id>] tables")
        return services
    for sid, t in raw.items():
        key = f"services.{sid}"
        if not re.fullmatch(r"[a-z][a-z0-9]*", sid):
            ld.bad(key, sid, "an id of lower-case letters and digits (it names columns: tt_<id>_s)")
            continue
        if not isinstance(t, dict):
            ld.bad(key, t, "a table")
            continue
        for old, new in _RENAMED_SERVICE_KEYS.items():
            if old in t:
                ld.problems.append(f"  {key}.{old}: renamed; write {new}")
        t = {k: v for k, v in t.items() if k not in _RENAMED_SERVICE_KEYS}
        base: dict[str, Any] = {}
        if sid in services:
            base = {k: list(v) if isinstance(v, tuple) else v
                    for k, v in dataclasses.asdict(services[sid]).items() if k != "id"}
        s = ld.build(Service, key, {**base, **t}, extra={"id": sid})
        if s is None:
            continue
        for k in s.kinds:
            if k not in kinds:
                ld.bad(f"{key}.kinds", k, _kind_list(kinds))
        for th in (*s.thresholds_min, *s.class_thresholds_min.values()):
            if not 0 < th <= 120:
                ld.bad(f"{key}.thresholds_min", th, "minutes in (0, 120]")
        if not s.thresholds_min:
            ld.bad(f"{key}.thresholds_min", [], "at least one threshold in minutes")
        for cls_name in s.class_thresholds_min:
            if cls_name not in UNIT_CLASSES:
                ld.bad(f"{key}.class_thresholds_min.{cls_name}", cls_name,
                       "a unit class: " + ", ".join(UNIT_CLASSES))
        if s.speed_mps is not None and s.mode != "walk":
            ld.bad(f"{key}.speed_mps", s.speed_mps,
                   "no value: delivery speeds are per road class ([delivery])")
        for sp_key in ("speed_mps", "access_speed_mps"):
            v = getattr(s, sp_key)
            if v is not None and not 0.3 <= v <= 3.0:
                ld.bad(f"{key}.{sp_key}", v, "a speed between 0.3 and 3.0 m/s")
        if s.demand_col not in DEMAND_COLUMNS:
            ld.bad(f"{key}.demand_col", s.demand_col, "one of " + ", ".join(DEMAND_COLUMNS))
        if s.capacity_col not in ("", *CAPACITY_COLUMNS):
            ld.bad(f"{key}.capacity_col", s.capacity_col, "'' or one of " + ", ".join(CAPACITY_COLUMNS))
        for c in ("color", "gap_color"):
            if not _HEX_COLOR.fullmatch(getattr(s, c)):
                ld.bad(f"{key}.{c}", getattr(s, c), "a colour '#rrggbb'")
        if s.circle_min_key and s.circle_min_key not in {f.name for f in dataclasses.fields(StandardsConfig)}:
            ld.bad(f"{key}.circle_min_key", s.circle_min_key, "a key of [standards] ('' for none)")
        services[sid] = s
    return services

