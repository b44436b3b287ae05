"""Candidate sites for planning: the user's layers and sites generated on the walking network.

User layers (``[[planning.candidates]]``: vacant plots, 规划用地, premises for lease) go through the
facility reader (:func:`coverage.layers.facilities.read_layer`): the same formats, coordinate systems,
validation and rejects accounting as facility layers. A row without a type column value becomes kind
``candidate_site`` (it can take every menu type of the planned service); a row whose type names a
facility kind takes only the menu types of that kind. A candidate outside every unit is rejected
("outside every unit": the plan reports per unit).

Generated candidates: the walking network's nodes within ``generate_buffer_m`` of a cell the service
does not cover, thinned to one node per ``generate_spacing_m`` square (the node nearest the square's
centre), so a plan can choose among sites spread every few hundred metres over and around each gap.
"""

from __future__ import annotations

import dataclasses
import logging

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from coverage.config import Config
from coverage.graph import Network
from coverage.layers.facilities import read_layer
from coverage.layers.placement import study_area
from coverage.layers.report import LayerSummary
from coverage.layers.vocabulary import FACILITY_COLUMNS, REJECT_COLUMNS
from coverage.services import Kind
from coverage.study import StudyArea, assign_to_units

log = logging.getLogger(__name__)

__all__ = ["CANDIDATE_KIND", "Candidates", "generate_candidates", "read_candidates"]

#: the kind of a candidate row that names no facility type (it takes every menu type)
CANDIDATE_KIND = Kind("candidate_site", "候选地块", "candidate site", "#ff7f00")


@dataclasses.dataclass(frozen=True)
class Candidates:
    """Candidate sites (metric CRS, facility columns + unit_code, community_code, origin) and the
    rejected rows of the user's candidate layers with their reasons."""

    sites: gpd.GeoDataFrame
    rejects: pd.DataFrame
    reports: list[LayerSummary]


def read_candidates(cfg: Config, study: StudyArea, *, roads: gpd.GeoSeries | None = None) -> Candidates:
    """Read every ``[[planning.candidates]]`` layer (module docstring); candidates outside every unit
    are moved to the rejects."""
    kinds = {**cfg.kinds, CANDIDATE_KIND.id: CANDIDATE_KIND}
    area = study_area(study.outline_wgs84, study.metric_crs)
    lon = float(gpd.GeoSeries([study.outline_wgs84], crs="EPSG:4326").iloc[0].centroid.x)
    frames, rejects, reports = [], [], []
    for i, fc in enumerate(cfg.planning.candidates):
        fc = dataclasses.replace(fc, default_kind=fc.default_kind or CANDIDATE_KIND.id)
        fac, rej, summary = read_layer(
            fc, i, known_kinds=kinds, config_key="planning.candidates", area=area,
            metric_crs=study.metric_crs, roads=roads, lon_hint=lon
        )
        fac = assign_to_units(fac.reset_index(drop=True), study.units, study.communities)
        outside = (fac["unit_code"] == "").to_numpy()
        if outside.any():
            extra = pd.DataFrame(
                {
                    "source_file": str(fc.path),
                    "layer": fc.name,
                    "row": fac.loc[outside, "source_row"].to_numpy(),
                    "reason": "outside every unit (the plan reports per 街道/乡镇; move the point "
                    "or add its unit to the units layer)",
                    "values": fac.loc[outside, "name"].astype(str).to_numpy(),
                },
                columns=list(REJECT_COLUMNS),
            )
            rej = pd.concat([rej, extra], ignore_index=True)
            summary.accepted -= int(outside.sum())
            summary.rejected["outside every unit"] = int(outside.sum())
        frames.append(fac[~outside].assign(origin=f"layer {fc.name}"))
        rejects.append(rej)
        reports.append(summary)
    sites = (
        pd.concat(frames, ignore_index=True)
        if frames
        else gpd.GeoDataFrame(
            {c: [] for c in FACILITY_COLUMNS if c != "geometry"},
            geometry=gpd.GeoSeries([], crs=study.metric_crs),
        )
    )
    rej_all = pd.concat(rejects, ignore_index=True) if rejects else pd.DataFrame(columns=list(REJECT_COLUMNS))
    return Candidates(gpd.GeoDataFrame(sites, geometry="geometry", crs=study.metric_crs), rej_all, reports)


def generate_candidates(
    net: Network,
    gap_xy: np.ndarray,
    study: StudyArea,
    *,
    spacing_m: float,
    buffer_m: float,
    prefix: str = "gen",
) -> gpd.GeoDataFrame:
    """Network nodes within ``buffer_m`` of a gap point (``gap_xy``: uncovered cell centres, metric CRS),
    one per ``spacing_m`` square (the node nearest its centre), inside a unit; ids ``<prefix>-<n>``."""
    empty = gpd.GeoDataFrame(
        {"fac_id": [], "name": [], "kind": [], "origin": []}, geometry=gpd.GeoSeries([], crs=study.metric_crs)
    )
    if spacing_m <= 0 or not len(gap_xy) or not net.n_nodes:
        return empty
    nodes = np.column_stack([net.node_x, net.node_y])
    near = cKDTree(gap_xy).query(nodes, k=1, distance_upper_bound=buffer_m)[0] <= buffer_m
    idx = np.flatnonzero(near)
    if not len(idx):
        return empty
    sq = np.floor(nodes[idx] / spacing_m).astype(np.int64)
    centre = (sq + 0.5) * spacing_m
    d = np.hypot(*(nodes[idx] - centre).T)
    order = np.lexsort((idx, d, sq[:, 1], sq[:, 0]))  # per square: nearest the centre first
    first = np.ones(len(order), dtype=bool)
    s = sq[order]
    first[1:] = (s[1:] != s[:-1]).any(axis=1)
    pick = np.sort(idx[order[first]])
    pts = gpd.GeoDataFrame(
        {
            "fac_id": [f"{prefix}-{k + 1}" for k in range(len(pick))],
            "name": [f"候选点 {k + 1} (generated)" for k in range(len(pick))],
            "kind": CANDIDATE_KIND.id,
            "origin": "generated on the walking network",
        },
        geometry=gpd.points_from_xy(net.node_x[pick], net.node_y[pick]),
        crs=study.metric_crs,
    )
    pts = assign_to_units(pts, study.units, study.communities)
    pts = pts[pts["unit_code"] != ""].reset_index(drop=True)
    log.info(
        "Generated %d candidate sites (one per %g m square within %g m of a gap)",
        len(pts),
        spacing_m,
        buffer_m,
    )
    return pts
