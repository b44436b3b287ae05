"""How far each unit's results can be trusted, from its data coverage: 低可信 / low confidence.

A road extract that covers a quarter of a district, a raster spread onto 2 km² of roads, facilities
beyond the snap limit: the engine still gives exact travel times on the data it has, and the numbers
look precise. Each unit is therefore measured against documented thresholds
(:class:`coverage.config.ConfidenceConfig`):

* ``network_extent_share``: share of the unit's people (with a raster; of its area with census
  totals, which are spread onto the roads and so always lie inside) within the walking network's
  extent (the convex hull of its nodes): an extract that stops short of the unit leaves them outside,
  while a sparse rural network still spans its unit (and roadless mountain corners hold few people);
* ``road_area_share_<mode>``: share of the unit's area within ``road_buffer_m`` of a road of the mode
  (reported for every unit; flagged only when very low, since mountain 乡 are legitimately sparse);
* ``pop_beyond_snap_share``: share of the unit's people whose cell centre lies beyond
  ``snapping.cell_max_snap_m`` of the walking network (they count as not covered);
* ``fac_unsnapped_share``: share of the facilities inside the unit that are beyond the snap limit of
  a network one of their services uses;
* ``census_density_max_per_ha``: with census totals spread by road length (no raster), the densest
  cell's persons per hectare (everyone put on the few roads of a partial extract shows as thousands);
* a walking network built from a drive-only extract (no footway, path, pedestrian or steps way at all:
  an OSMnx "drive" export): walking times on it are upper bounds, said for every unit.

A unit beyond any threshold is ``low_confidence`` with the reasons in ``confidence_reasons``; the
flag travels to the indicator tables, the standards rows of the unit and the maps, and ``make check``
warns before a run.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from coverage.config import Config
from coverage.graph import Network

log = logging.getLogger(__name__)

__all__ = ["CONFIDENCE_COLUMNS", "LOW_ZH", "drive_only_walk_network", "mark_standards", "unit_confidence"]

LOW_ZH = "低可信"
CONFIDENCE_COLUMNS = ("network_extent_share", "road_area_share_walk", "road_area_share_delivery",
                      "pop_beyond_snap_share", "fac_unsnapped_share", "census_density_max_per_ha",
                      "low_confidence", "confidence_reasons")
#: highway values a walking network has when its extract includes ways for people on foot
FOOT_HIGHWAYS = frozenset({"footway", "path", "pedestrian", "steps"})


def drive_only_walk_network(net: Network) -> bool:
    """True when the walking network has no footway, path, pedestrian or steps way at all."""
    hw = net.edge_attrs["highway"].astype(str)
    return bool(len(hw)) and not hw.isin(FOOT_HIGHWAYS).any()


def _road_area_share(units: gpd.GeoDataFrame, net: Network, buffer_m: float) -> pd.Series:
    """Share of each unit's area within ``buffer_m`` of the network's roads (metric CRS)."""
    idx = net.physical_edges()
    lines = np.asarray(net.edge_geometry[idx])
    tree = shapely.STRtree(lines)
    out = {}
    for code, geom in zip(units["unit_code"].astype(str), units.geometry, strict=True):
        area = geom.area
        if area <= 0:
            out[code] = np.nan
            continue
        near = tree.query(geom, predicate="dwithin", distance=buffer_m)
        if not len(near):
            out[code] = 0.0
            continue
        cover = shapely.union_all(shapely.buffer(lines[near], buffer_m, quad_segs=4))
        out[code] = float(shapely.intersection(cover, geom).area / area)
    return pd.Series(out)


def _extent_share(units: gpd.GeoDataFrame, net: Network, cells: pd.DataFrame, *, by_people: bool
                  ) -> pd.Series:
    hull = shapely.convex_hull(shapely.multipoints(np.column_stack([net.node_x, net.node_y])))
    if by_people:
        inside = shapely.contains_xy(hull, cells["x"].to_numpy(float), cells["y"].to_numpy(float))
        pop = cells["pop_total"].astype(float)
        key = cells["unit_code"].astype(str)
        total = pop.groupby(key).sum()
        return pop.where(inside, 0.0).groupby(key).sum() / total.where(total > 0)
    return pd.Series({code: (float(shapely.intersection(g, hull).area / g.area) if g.area > 0 else np.nan)
                      for code, g in zip(units["unit_code"].astype(str), units.geometry, strict=True)})


def unit_confidence(cfg: Config, units: gpd.GeoDataFrame, networks: Mapping[str, Network],
                    cells: pd.DataFrame, facilities: pd.DataFrame, *, census: bool,
                    cell_area_ha: float | None = None) -> pd.DataFrame:
    """One row per unit (index ``unit_code``) with :data:`CONFIDENCE_COLUMNS`."""
    c = cfg.confidence
    codes = units["unit_code"].astype(str)
    out = pd.DataFrame(index=pd.Index(codes, name="unit_code"))
    walk = networks.get("walk") or next(iter(networks.values()))
    out["network_extent_share"] = _extent_share(units, walk, cells, by_people=not census).reindex(out.index)
    for mode in ("walk", "delivery"):
        out[f"road_area_share_{mode}"] = (_road_area_share(units, networks[mode], c.road_buffer_m)
                                          if mode in networks else np.nan)
    key = cells["unit_code"].astype(str)
    pop = cells["pop_total"].astype(float)
    total = pop.groupby(key).sum()
    if "snapped_walk" in cells.columns:
        beyond = pop.where(~cells["snapped_walk"].astype(bool), 0.0).groupby(key).sum()
        out["pop_beyond_snap_share"] = (beyond / total.where(total > 0)).reindex(out.index)
    else:
        out["pop_beyond_snap_share"] = np.nan
    fac = facilities[facilities["unit_code"].astype(str) != ""]
    if len(fac) and "status" in fac.columns:
        bad = (fac["status"] != "ok").groupby(fac["unit_code"].astype(str)).mean()
        out["fac_unsnapped_share"] = bad.reindex(out.index)
    else:
        out["fac_unsnapped_share"] = np.nan
    if census and cell_area_ha:
        dens = (pop / (cells["weight"].astype(float).clip(lower=1e-9) * cell_area_ha)).groupby(key).max()
        out["census_density_max_per_ha"] = dens.reindex(out.index)
    else:
        out["census_density_max_per_ha"] = np.nan
    drive_only = "walk" in networks and drive_only_walk_network(networks["walk"])
    reasons: list[str] = []
    for code, r in out.iterrows():
        why = []
        v = r["network_extent_share"]
        if pd.notna(v) and v < c.min_network_extent_share:
            what = "area" if census else "people"
            why.append(f"only {v:.0%} of the {what} lies within the road network's extent (< "
                       f"{c.min_network_extent_share:.0%}: the road extract does not cover the unit)")
        for mode in ("walk", "delivery"):
            v = r[f"road_area_share_{mode}"]
            if pd.notna(v) and v < c.min_road_area_share:
                why.append(f"only {v:.0%} of the area lies within {c.road_buffer_m:g} m of a {mode} road "
                           f"(< {c.min_road_area_share:.0%}: roads may be missing from the data)")
        v = r["pop_beyond_snap_share"]
        if pd.notna(v) and v > c.max_pop_beyond_snap_share:
            why.append(f"{v:.0%} of the people live beyond {cfg.snapping.cell_max_snap_m:g} m of the walking "
                       f"network (> {c.max_pop_beyond_snap_share:.0%})")
        v = r["fac_unsnapped_share"]
        if pd.notna(v) and v > c.max_fac_unsnapped_share:
            why.append(f"{v:.0%} of its facilities lie beyond the snap limit "
                       f"(> {c.max_fac_unsnapped_share:.0%})")
        v = r["census_density_max_per_ha"]
        if pd.notna(v) and v > c.max_census_density_per_ha:
            why.append(f"census people spread up to {v:,.0f} per ha on its roads (> "
                       f"{c.max_census_density_per_ha:,.0f}: the roads may cover only part of the unit)")
        if drive_only:
            why.append("the walking network has no footway/path/pedestrian/steps way (a drive-only extract): "
                       "walking times are upper bounds")
        reasons.append("; ".join(why))
        if why:
            log.warning("Unit %s: %s: %s", code, LOW_ZH, "; ".join(why))
    out["confidence_reasons"] = reasons
    out["low_confidence"] = out["confidence_reasons"] != ""
    return out


def mark_standards(std: pd.DataFrame, conf: pd.DataFrame) -> pd.DataFrame:
    """``std`` with a ``confidence`` column: "低可信 low confidence: <reasons>" on the rows of a
    low-confidence unit (and of its communities), else ""."""
    low = conf.loc[conf["low_confidence"].astype(bool), "confidence_reasons"]
    text = {code: f"{LOW_ZH} low confidence: {why}" for code, why in low.items()}
    own = std["unit_code"].astype(str).map(text).astype(object)  # all-NaN maps are float: keep text dtype
    parent = std["parent_code"].astype(str).map(text).astype(object) if "parent_code" in std.columns else own
    return std.assign(confidence=own.fillna(parent).fillna(""))
