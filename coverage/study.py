"""The study area: units (街道/乡镇), communities (社区/村) and the metric CRS, and which unit a
point lies in.

:func:`read_study_area` is the first stage of a run; :func:`assign_to_units` is THE point-in-polygon
rule, applied once per run to the facilities (every later stage reads their ``unit_code`` /
``community_code`` columns): a point on a shared border goes to the first polygon in table order, a
point outside every polygon gets "" (it is listed in ``facilities.csv`` and counted in no unit).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import pandas as pd

from coverage.config import Config
from coverage.coords import require_projected

log = logging.getLogger(__name__)

__all__ = ["StudyArea", "assign_to_units", "read_study_area", "unit_classes"]


@dataclass(frozen=True)
class StudyArea:
    """Units and communities in the metric CRS, and the study area outline in EPSG:4326.

    ``units``: unit_code, unit_name, unit_type, unit_class, area_type, geometry. ``communities``:
    community_code, community_name, unit_code, geometry, or None when the config gives none.
    """

    units: gpd.GeoDataFrame
    communities: gpd.GeoDataFrame | None
    metric_crs: str
    outline_wgs84: Any  # shapely geometry: union of the units in EPSG:4326

    @property
    def unit_class(self) -> dict[str, str]:
        """unit_code -> 城区 / 郊区."""
        return unit_classes(self.units)


def unit_classes(units: pd.DataFrame) -> dict[str, str]:
    """unit_code -> unit_class (城区 / 郊区) of a units table."""
    return dict(zip(units["unit_code"].astype(str), units["unit_class"].astype(str), strict=True))


def read_study_area(cfg: Config) -> StudyArea:
    """Read the units (and communities) of ``cfg``, choose the metric CRS, project once."""
    from coverage import layers

    units_in = layers.read_units(cfg)
    metric_crs = layers.resolve_metric_crs(cfg, units_in.units)
    require_projected(metric_crs, what="the study area's metric CRS")
    units = units_in.units.to_crs(metric_crs)
    communities = (units_in.communities.to_crs(metric_crs)
                   if units_in.communities is not None and len(units_in.communities) else None)
    log.info("Read %d units (%s) and %d communities; metric CRS %s", len(units),
             ", ".join(f"{k} {v}" for k, v in units["unit_type"].value_counts().items()),
             0 if communities is None else len(communities), metric_crs)
    return StudyArea(units=units, communities=communities, metric_crs=metric_crs,
                     outline_wgs84=units_in.units.geometry.union_all())


def _within(points: gpd.GeoDataFrame, polygons: gpd.GeoDataFrame, code: str) -> pd.Series:
    if polygons.crs is not None and points.crs is not None and polygons.crs != points.crs:
        polygons = polygons.to_crs(points.crs)
    j = gpd.sjoin(points[["geometry"]], polygons[[code, "geometry"]], how="left", predicate="within")
    j = j[~j.index.duplicated(keep="first")]
    return j[code].reindex(points.index).fillna("").astype(str)


def assign_to_units(points: gpd.GeoDataFrame, units: gpd.GeoDataFrame,
                    communities: gpd.GeoDataFrame | None = None) -> gpd.GeoDataFrame:
    """A copy of ``points`` with ``unit_code`` and ``community_code`` of the polygon each lies in
    ("" outside every polygon / no communities)."""
    out = points.copy()
    out["unit_code"] = _within(out, units, "unit_code") if len(out) else pd.Series([], dtype=object)
    out["community_code"] = ("" if communities is None or not len(out)
                             else _within(out, communities, "community_code"))
    n_out = int((out["unit_code"] == "").sum())
    if n_out:
        log.info("%d of %d facilities lie outside every unit polygon (not counted in unit totals)",
                 n_out, len(out))
    return out
