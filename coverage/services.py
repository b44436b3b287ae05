"""The service registry: what a service and a facility kind ARE, in one table every stage reads.

A **facility kind** is a canonical type of facility (社区养老服务综合体, 托育机构, ...): its Chinese and
English labels and its map colour. A **service** is what the tool measures coverage of: which kinds
provide it, on which travel mode, at which speed, within which thresholds (a fixed list, and for meal
delivery a threshold per unit class, 城区 15 / 郊区 30 min, as data), which population demands it,
which capacity column supplies it, its labels and colours, and which standards read it.

Region configs override any field of a built-in entry (``[services.elderly] thresholds_min = [...]``)
and can add entries (``[services.<new>]`` with every field, ``[kinds.<new>]``); config.py merges them
with :func:`merge_service` / :func:`merge_kind`, and :data:`Config.services` / :data:`Config.kinds`
hold the result. Indicators, gaps, the pipeline, the maps, the outputs and the data dictionary read
those, never a literal service name (the standards, which are written for particular services, name
them through :data:`Service.standards`).

The one "covered" rule lives here too: :func:`covered`, ``travel time <= threshold`` (inclusive, the
spopt convention).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

__all__ = [
    "BUILTIN_KINDS",
    "BUILTIN_SERVICES",
    "Kind",
    "Service",
    "access_speed_mps",
    "covered",
    "kinds_from_json",
    "registry_json",
    "services_from_json",
    "services_of_kind",
    "tlabel",
    "walk_speed_mps",
]

Mode = Literal["walk", "delivery"]


def tlabel(minutes: float) -> str:
    """Threshold label used in column and layer names: 15.0 -> "15", 7.5 -> "7.5"."""
    return f"{minutes:g}"


def covered(tt_s: Any, threshold_min: Any) -> np.ndarray:
    """THE covered rule: travel time (s) <= threshold (min) * 60, inclusive. ``inf`` (unreachable or
    not snapped) is never covered. Works element-wise on arrays (per-cell thresholds included)."""
    with np.errstate(invalid="ignore"):
        return np.asarray(tt_s, dtype=float) <= np.asarray(threshold_min, dtype=float) * 60.0


@dataclass(frozen=True)
class Kind:
    """A canonical facility kind."""

    id: str
    label_zh: str
    label_en: str = ""
    color: str = "#999999"


@dataclass(frozen=True)
class Service:
    """One service measured by the tool (a registry entry).

    Column names derive from ``id`` and ``demand_tag``: ``<id>_covered[_<tag>]_<T>min``,
    ``<id>_share...``, ``<id>_uncovered...`` per unit; ``tt_<id>_s``, ``nearest_<id>_id``,
    ``covered_<id>_<T>min`` per cell; with a per-class rule ``<id>_threshold_min`` and
    ``covered_<id>`` / ``<id>_covered_<tag>`` instead.
    """

    id: str
    label_zh: str
    label_en: str
    #: canonical facility kinds that provide the service (a kind may serve several services)
    kinds: tuple[str, ...]
    mode: Mode = "walk"
    #: isochrone / band thresholds (minutes)
    thresholds_min: tuple[float, ...] = (15.0,)
    #: threshold per unit class (城区 / 郊区), the policy's "城区15分钟、郊区30分钟"; empty = no such rule
    class_thresholds_min: dict[str, float] = field(default_factory=dict)
    #: walking speed on the network (m/s; walk mode only); None = ``walk.speed_mps``
    speed_mps: float | None = None
    #: off-network leg speed (m/s); None = the mode's ``access_speed_mps``
    access_speed_mps: float | None = None
    #: population column that demands the service
    demand_col: str = "pop_60plus"
    #: tag of the demand group in indicator column names ("" = none: ``elderly_covered_15min``)
    demand_tag: str = "60plus"
    #: facility column that measures capacity ("" = no capacity), and its short name in 2SFCA columns
    capacity_col: str = ""
    capacity_short: str = ""
    #: a facility of ANY kind that lists this service's capacity (> 0) provides the service too (a
    #: 社区养老服务综合体 with 托位数 is a childcare provider); off for beds, which hospitals list for
    #: patients, not for elderly care
    capacity_implies_service: bool = False
    #: False: the region does not assess this service (its indicators and standards read "not assessed")
    assess: bool = True
    #: map colour of the service (bands are shades of it), and the colour of its gap areas
    color: str = "#3182bd"
    gap_color: str = "#de2d26"
    #: what the per-class threshold is called ("" = "<label_zh>时限"), e.g. 配餐半径
    threshold_label_zh: str = ""
    #: StandardsConfig key holding the minutes of this service's coverage-circle standard ("" = none);
    #: those minutes are always among the indicator thresholds
    circle_min_key: str = ""
    #: ids of the standards (coverage.standards.STANDARDS) that read this service
    standards: tuple[str, ...] = ()

    def provided_by(self, facilities: Any) -> np.ndarray:
        """THE rule for which facilities provide this service (a boolean mask over ``facilities``):
        its kinds, and, with :attr:`capacity_implies_service`, any facility listing its capacity."""
        mask = facilities["kind"].isin(self.kinds).to_numpy()
        if self.capacity_implies_service and self.capacity_col and self.capacity_col in facilities.columns:
            cap = facilities[self.capacity_col].to_numpy(dtype=float)
            with np.errstate(invalid="ignore"):
                mask = mask | (cap > 0)
        return np.asarray(mask, dtype=bool)

    # -- derived names (one place) -------------------------------------------------------------
    @property
    def has_class_rule(self) -> bool:
        return bool(self.class_thresholds_min)

    def threshold_min_for_class(self, unit_class: str) -> float:
        """Threshold of a unit of class ``unit_class``: the class rule when there is one (an unknown
        class takes the largest, most lenient value), else the largest threshold."""
        if self.class_thresholds_min:
            return float(self.class_thresholds_min.get(unit_class, max(self.class_thresholds_min.values())))
        return float(max(self.thresholds_min))

    def isochrone_thresholds_min(self) -> list[float]:
        """Thresholds drawn as isochrones: the list plus every per-class value."""
        return sorted({*self.thresholds_min, *self.class_thresholds_min.values()})

    def indicator_thresholds_min(self, standards: Any = None) -> list[float]:
        """Thresholds with an indicator column: the list plus the circle standard's minutes."""
        ts = set(self.thresholds_min)
        if self.circle_min_key and standards is not None:
            ts.add(float(getattr(standards, self.circle_min_key)))
        return sorted(ts)

    def circle_min(self, standards: Any) -> float | None:
        return float(getattr(standards, self.circle_min_key)) if self.circle_min_key else None

    def column(self, what: str, minutes: float | None = None) -> str:
        """Indicator column: ``column("covered", 15)`` -> ``childcare_covered_0to3_15min``."""
        parts = [self.id, what, self.demand_tag, f"{tlabel(minutes)}min" if minutes is not None else ""]
        return "_".join(p for p in parts if p)

    def covered_flag(self, minutes: float | None = None) -> str:
        """Cell column: ``covered_<id>_<T>min``, or ``covered_<id>`` for the per-class rule."""
        return f"covered_{self.id}_{tlabel(minutes)}min" if minutes is not None else f"covered_{self.id}"

    def cell_flags(self) -> list[str]:
        """Every covered flag this service gives the cells (per threshold, or the per-class one)."""
        if self.has_class_rule:
            return [self.covered_flag()]
        return [self.covered_flag(t) for t in self.thresholds_min]

    def indicator_minutes(self, standards: Any = None) -> list[float | None]:
        """The thresholds with covered/share/uncovered indicator columns (None = the per-class rule)."""
        return [None] if self.has_class_rule else list(self.indicator_thresholds_min(standards))

    def fca_column(self, *, gaussian: bool = False) -> str:
        """2SFCA score column (a service with a capacity): ``fca_beds_per_1000_60plus``,
        ``fca_slots_gauss_per_1000_0to3``."""
        return f"fca_{self.capacity_short}{'_gauss' if gaussian else ''}_per_1000_{self.demand_col[4:]}"

    @property
    def fca_basis_col(self) -> str:
        return f"fca_cost_basis_{self.id}"

    @property
    def tt_col(self) -> str:
        return f"tt_{self.id}_s"

    @property
    def nearest_col(self) -> str:
        return f"nearest_{self.id}_id"

    @property
    def threshold_col(self) -> str:
        return f"{self.id}_threshold_min"

    @property
    def count_col(self) -> str:
        return f"n_{self.id}_facilities"

    def headline_minutes(self, standards: Any, unit_class: str) -> float:
        """Minutes of the headline coverage (:meth:`headline`) in a unit of class ``unit_class``."""
        if self.has_class_rule:
            return self.threshold_min_for_class(unit_class)
        t = self.circle_min(standards) if standards is not None and self.circle_min_key else None
        return float(max(self.thresholds_min) if t is None else t)

    def headline(self, standards: Any = None) -> tuple[str, str, str]:
        """(covered flag on cells, share column, uncovered column) of the headline coverage: the
        per-class rule, else the circle standard's minutes, else the largest threshold."""
        if self.has_class_rule:
            return self.covered_flag(), self.column("share"), self.column("uncovered")
        t = self.circle_min(standards) if standards is not None and self.circle_min_key else None
        t = max(self.thresholds_min) if t is None else t
        return self.covered_flag(t), self.column("share", t), self.column("uncovered", t)


def walk_speed_mps(service: Service, walk: Any) -> float | None:
    """Network speed of ``service`` when it differs per service (walk mode), else None (the network's
    own edge times: the walk profile's speed, or the delivery speeds per road class)."""
    if service.mode != "walk":
        return None
    return service.speed_mps if service.speed_mps is not None else float(walk.speed_mps)


def access_speed_mps(service: Service, walk: Any, delivery: Any) -> float:
    """Speed of the off-network legs of ``service``: its own, else its mode's."""
    if service.access_speed_mps is not None:
        return float(service.access_speed_mps)
    return float(walk.access_speed_mps if service.mode == "walk" else delivery.access_speed_mps)


def services_of_kind(services: Mapping[str, Service], kind: str) -> list[str]:
    """Ids of the services a facility kind provides."""
    return [sid for sid, s in services.items() if kind in s.kinds]


# --------------------------------------------------------------------------------------------
# The built-in entries
# --------------------------------------------------------------------------------------------

BUILTIN_KINDS: dict[str, Kind] = {k.id: k for k in [
    Kind("elderly_institution", "养老机构", "elderly care institution", "#e41a1c"),
    Kind("community_complex", "社区养老服务综合体", "community elderly-care complex", "#377eb8"),
    Kind("embedded_nursing_home", "嵌入式社区养老院", "embedded community nursing home", "#4daf4a"),
    Kind("daycare_center", "日间照料中心", "elderly day-care centre", "#984ea3"),
    Kind("meal_point", "助餐点/长寿食堂/老年餐桌", "meal point", "#ff7f00"),
    Kind("central_kitchen", "中央厨房", "central kitchen", "#ffff33"),
    Kind("town_regional_center", "乡镇区域性养老服务中心", "township regional elderly-care centre",
         "#a65628"),
    Kind("village_mutual_aid", "村级互助养老服务点", "village mutual-aid point", "#f781bf"),
    Kind("welfare_home", "敬老院/特困供养服务设施", "welfare home", "#999999"),
    Kind("childcare", "托育机构/托育点", "childcare centre", "#66c2a5"),
    Kind("kindergarten", "幼儿园(托班)", "kindergarten (nursery class)", "#fc8d62"),
    Kind("old_young_complex", "老幼复合型社区综合体", "old-and-young community complex", "#8da0cb"),
    Kind("health_center", "社区卫生服务中心/站", "community health centre", "#e78ac3"),
    Kind("township_hospital", "乡镇卫生院", "township hospital", "#a6d854"),
    Kind("hospital", "医院", "hospital", "#ffd92f"),
]}

_ELDERLY_KINDS = ("community_complex", "embedded_nursing_home", "daycare_center", "town_regional_center",
                  "village_mutual_aid", "elderly_institution", "welfare_home", "old_young_complex")

BUILTIN_SERVICES: dict[str, Service] = {s.id: s for s in [
    Service("elderly", "养老服务", "elderly care", _ELDERLY_KINDS, "walk", (5.0, 10.0, 15.0),
            demand_col="pop_60plus", demand_tag="", capacity_col="beds", capacity_short="beds",
            color="#1a9850", gap_color="#d73027", circle_min_key="elderly_circle_min",
            standards=("elderly_circle", "elderly_land", "street_institution_old", "street_institution_new",
                       "community_daycare", "street_complex", "daycare_coverage", "nursing_bed_share",
                       "colocation", "rural_network", "beds_per_1000_elderly", "old_young_complex",
                       "complex_childcare")),
    Service("childcare", "托育服务", "childcare", ("childcare", "kindergarten", "old_young_complex"), "walk",
            (15.0,), demand_col="pop_0to3", demand_tag="0to3", capacity_col="childcare_slots",
            capacity_short="slots", capacity_implies_service=True, color="#2171b5", gap_color="#6a51a3",
            circle_min_key="childcare_circle_min",
            standards=("childcare_circle", "childcare_slots", "childcare_slots_target", "complex_childcare",
                       "old_young_complex")),
    Service("meal", "助餐服务", "meals", ("meal_point", "central_kitchen"), "delivery", (15.0, 30.0),
            class_thresholds_min={"城区": 15.0, "郊区": 30.0}, demand_col="pop_60plus", demand_tag="60plus",
            threshold_label_zh="配餐半径",
            color="#e6550d", gap_color="#a63603", standards=("meal_radius",)),
    # community health: 社区卫生服务中心/站 and 乡镇卫生院, not hospitals (a 三甲 hospital is not the
    # community service the standards pair elderly care with); a region whose primary care is mapped as
    # hospitals (OSM in the Comoros) adds the kind in its config
    Service("health", "卫生服务", "community health", ("health_center", "township_hospital"),
            "walk", (15.0,), demand_col="pop_60plus", demand_tag="60plus", color="#c51b8a",
            gap_color="#7a0177", standards=("colocation",)),
]}


# --------------------------------------------------------------------------------------------
# (De)serialisation: run_info.json carries the registry the build used, so the maps draw exactly it
# --------------------------------------------------------------------------------------------


def registry_json(services: Mapping[str, Service], kinds: Mapping[str, Kind]) -> dict[str, Any]:
    """``{"services": {...}, "kinds": {...}}`` as plain JSON values."""
    return {"services": {k: dataclasses.asdict(v) for k, v in services.items()},
            "kinds": {k: dataclasses.asdict(v) for k, v in kinds.items()}}


def _from_dict(cls: type, d: Mapping[str, Any]) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items() if k in names}
    return cls(**kw)


def services_from_json(d: Mapping[str, Any] | None) -> dict[str, Service]:
    """Services of a ``run_info.json`` (the built-in registry when the build predates it)."""
    if not d:
        return dict(BUILTIN_SERVICES)
    return {k: _from_dict(Service, v) for k, v in d.items()}


def kinds_from_json(d: Mapping[str, Any] | None) -> dict[str, Kind]:
    """Facility kinds of a ``run_info.json`` (the built-in registry when the build predates it)."""
    if not d:
        return dict(BUILTIN_KINDS)
    return {k: _from_dict(Kind, v) for k, v in d.items()}
