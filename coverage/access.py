"""Who reaches what: the travel-time engine applied to every service of the registry.

Three stages, each re-runnable on its own:

* :func:`snap_cells` snaps the unique cell centres ONCE per mode (a scenario with other facilities
  re-uses it);
* :func:`snap_facilities` snaps the facilities once per mode and states, per facility, whether it
  is usable (``status``);
* :func:`travel_times` runs one multi-source pass per service from its usable facilities to every
  cell, on the service's network (its mode, at its own walking speed when the registry gives one)
  with its access speed (:func:`coverage.services.access_speed_mps`).

:func:`isochrone_layers` and :func:`fca_costs` apply the same per-service choices to isochrones and
to the 2SFCA cost matrices. Direction is facility -> home everywhere.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp

from coverage.config import Config
from coverage.graph import Network
from coverage.isochrones import check_isochrones, isochrone_polygons
from coverage.services import Service, access_speed_mps, tlabel, walk_speed_mps
from coverage.traveltime import Snap, coverage_matrix, nearest_facility_times, snap_points
from coverage.unit_sums import TileSums

log = logging.getLogger(__name__)

__all__ = [
    "CellSnaps",
    "FacilitySnaps",
    "ServiceTimes",
    "TravelTimes",
    "TravelTimesFn",
    "unique_cells",
    "usable_facilities",
    "facility_snap_columns",
    "fca_costs",
    "require_usable",
    "usable_counts",
    "isochrone_layers",
    "service_network",
    "snap_cells",
    "snap_facilities",
    "travel_times",
]


@dataclass(frozen=True)
class CellSnaps:
    """Unique cell centres snapped per mode. ``cell_ids`` sorted; ``piece_to_cell[i]`` = position in
    ``cell_ids`` of cell piece ``i`` of the cells table."""

    cell_ids: np.ndarray
    piece_to_cell: np.ndarray
    by_mode: dict[str, Snap]

    def add_to_cells(self, cells: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        """A copy of ``cells`` with ``snap_dist_<mode>_m`` and ``snapped_<mode>`` per mode."""
        cols: dict[str, np.ndarray] = {}
        for mode, cs in self.by_mode.items():
            cols[f"snap_dist_{mode}_m"] = np.round(cs.dist_m[self.piece_to_cell], 2)
            cols[f"snapped_{mode}"] = cs.snapped[self.piece_to_cell]
        return cells.assign(**cols)


@dataclass(frozen=True)
class FacilitySnaps:
    """Facilities snapped per mode (aligned with the facilities table rows)."""

    by_mode: dict[str, Snap]
    #: "ok" or why a facility is not usable on a mode one of its services is routed on
    status: np.ndarray


@dataclass(frozen=True)
class ServiceTimes:
    """Travel time (s, inf = unreachable / not snapped) to the nearest facility of one service and its
    fac_id ("" = none), per unique cell (aligned with :attr:`CellSnaps.cell_ids`)."""

    time_s: np.ndarray
    nearest_id: np.ndarray
    n_facilities: int


@dataclass(frozen=True)
class TravelTimes:
    by_service: dict[str, ServiceTimes]
    #: per routed service, the cap its times were computed under (s; none = every time reported), and
    #: the number of tiles (0 = one process): recorded in run_info.json
    time_cap_s: dict[str, float] = dataclasses.field(default_factory=dict)
    tiles: int = 0
    #: what the tiles summed per unit and community with these times (coverage.unit_sums); None: the
    #: indicators sum the cells table (a run in one process, or times computed again, e.g. a scenario's)
    unit_sums: TileSums | None = None

    def add_to_cells(self, cells: gpd.GeoDataFrame, snaps: CellSnaps, services: Mapping[str, Service]
                     ) -> gpd.GeoDataFrame:
        """A copy of ``cells`` with ``tt_<id>_s`` and ``nearest_<id>_id`` of every service."""
        cols: dict[str, np.ndarray] = {}
        for sid, st in self.by_service.items():
            s = services[sid]
            cols[s.tt_col] = st.time_s[snaps.piece_to_cell]
            cols[s.nearest_col] = np.asarray(st.nearest_id, dtype=object)[snaps.piece_to_cell]
        return cells.assign(**cols)


class TravelTimesFn(Protocol):
    """The cell snapping and travel-time stage in place of :func:`snap_cells` + :func:`travel_times` (a
    tiled run: coverage.cluster.TiledTravelTimes, whose tiles snap their own cells); ``cells`` is the cells
    table (centres ``x``, ``y``), ``work_dir`` the run's tmp build folder (scratch and the tiles' results go
    under it), ``unit_class`` the units' classes (unit_code -> 城区/郊区: tiles that sum their pieces per
    unit apply the per-class thresholds). Returns what those two return."""

    def __call__(self, cfg: Config, networks: dict[str, Network], cells: pd.DataFrame,
                 facilities: pd.DataFrame, fsnaps: FacilitySnaps, *, skip: Collection[str] = (),
                 work_dir: Path | None = None, unit_class: Mapping[str, str] | None = None
                 ) -> tuple[CellSnaps, TravelTimes]: ...


def service_network(service: Service, networks: Mapping[str, Network], cfg: Config) -> Network:
    """The network ``service`` is routed on: its mode's, with edge times at the service's own walking
    speed when it differs from the walk profile's (walking edges have one speed: length / speed)."""
    net = networks[service.mode]
    speed = walk_speed_mps(service, cfg.walk)
    if speed is None or speed == cfg.walk.speed_mps:
        return net
    return dataclasses.replace(net, edge_time_s=net.edge_length_m / speed)


def usable_facilities(service: Service, facilities: pd.DataFrame, fsnaps: FacilitySnaps) -> np.ndarray:
    """Facilities providing the service (:meth:`Service.provided_by`) that snapped on its network."""
    return service.provided_by(facilities) & fsnaps.by_mode[service.mode].snapped


def unique_cells(cells: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sorted unique ``cell_id`` values, per piece the position of its cell among them, the cells'
    centres ``(n, 2)`` in metres from their first piece): what :class:`CellSnaps` is aligned with."""
    ids = cells["cell_id"].to_numpy()
    cell_ids, first = np.unique(ids, return_index=True)
    return cell_ids, np.searchsorted(cell_ids, ids), cells[["x", "y"]].to_numpy(float)[first]


def snap_cells(cfg: Config, networks: Mapping[str, Network], cells: pd.DataFrame) -> CellSnaps:
    """Snap every unique cell centre once per mode (``snapping.cell_max_snap_m``)."""
    cell_ids, piece_to_cell, xy = unique_cells(cells)
    by_mode = {mode: snap_points(net, xy, max_snap_m=cfg.snapping.cell_max_snap_m)
               for mode, net in networks.items()}
    for mode, cs in by_mode.items():
        log.info("Snapped on %s: %d/%d cells within the limit", mode, int(cs.snapped.sum()), len(cs.snapped))
    return CellSnaps(cell_ids=cell_ids, piece_to_cell=piece_to_cell, by_mode=by_mode)


def snap_facilities(cfg: Config, networks: Mapping[str, Network], facilities: gpd.GeoDataFrame
                    ) -> FacilitySnaps:
    """Snap every facility once per mode (``snapping.facility_max_snap_m``); a facility beyond the
    limit on a mode one of its services uses gets a status saying so."""
    xy = np.column_stack([facilities.geometry.x.to_numpy(), facilities.geometry.y.to_numpy()])
    status = np.full(len(facilities), "ok", dtype=object)
    by_mode: dict[str, Snap] = {}
    limit = cfg.snapping.facility_max_snap_m
    for mode, net in networks.items():
        fs = snap_points(net, xy, max_snap_m=limit)
        by_mode[mode] = fs
        on_mode = np.zeros(len(facilities), dtype=bool)
        for s in cfg.services.values():
            if s.mode == mode:
                on_mode |= s.provided_by(facilities)
        for i in np.flatnonzero(~fs.snapped & on_mode):
            status[i] = (f"not snapped on {mode} network: {fs.dist_m[i]:.0f} m from the nearest road "
                         f"> {limit:g} m (snapping.facility_max_snap_m)")
        log.info("Snapped on %s: %d/%d facilities within the limit", mode, int(fs.snapped.sum()),
                 len(fs.snapped))
    return FacilitySnaps(by_mode=by_mode, status=status)


def usable_counts(cfg: Config, facilities: pd.DataFrame, fsnaps: FacilitySnaps) -> dict[str, tuple[int, int]]:
    """Per service: (facilities providing it, of which snapped on its mode's network)."""
    return {sid: (int(s.provided_by(facilities).sum()), int(usable_facilities(s, facilities, fsnaps).sum()))
            for sid, s in cfg.services.items()}


def require_usable(cfg: Config, facilities: gpd.GeoDataFrame, fsnaps: FacilitySnaps, *,
                   skip: Collection[str] = ()) -> None:
    """Raise when a service HAS facilities of its kinds but none is usable (all beyond the snap limit
    of its network): its coverage would read 0 % for a reason that is the data's, not the service's.

    A service with no facility of its kinds at all is left to run (its coverage is what the supplied
    layers say)."""
    from coverage.errors import InputError

    problems = []
    limit = cfg.snapping.facility_max_snap_m
    for sid, (n_kind, n_ok) in usable_counts(cfg, facilities, fsnaps).items():
        s = cfg.services[sid]
        if n_kind == 0 or n_ok > 0 or sid in skip:
            continue
        mask = s.provided_by(facilities)
        d = fsnaps.by_mode[s.mode].dist_m[mask]
        i = int(np.argmin(d))
        ids = facilities["fac_id"].to_numpy()[mask]
        problems.append(
            f"service {sid} ({s.label_zh}): none of its {n_kind} facilities lies within {limit:g} m of the "
            f"{s.mode} network (nearest: {ids[i]} at {d[i]:,.0f} m). Check that network.path covers the "
            f"facilities (an extract of a smaller area, or their island dropped as a fragment below "
            f"network.min_component_nodes), that the layer's coords/crs are right, or raise "
            f"snapping.facility_max_snap_m")
    if problems:
        raise InputError("no usable facility:\n  " + "\n  ".join(problems))


def facility_snap_columns(facilities: gpd.GeoDataFrame, fsnaps: FacilitySnaps) -> gpd.GeoDataFrame:
    """A copy of ``facilities`` with ``snap_edge_<mode>``, ``snap_frac_<mode>``, ``snap_dist_<mode>_m``
    and ``status`` (the columns of facilities.csv)."""
    cols: dict[str, np.ndarray] = {}
    for mode, fs in fsnaps.by_mode.items():
        cols[f"snap_edge_{mode}"] = np.where(fs.snapped, fs.edge, -1)
        cols[f"snap_frac_{mode}"] = np.round(fs.frac, 6)
        cols[f"snap_dist_{mode}_m"] = np.round(fs.dist_m, 2)
    cols["status"] = fsnaps.status
    return facilities.assign(**cols)


def travel_times(cfg: Config, networks: Mapping[str, Network], csnaps: CellSnaps,
                 facilities: gpd.GeoDataFrame, fsnaps: FacilitySnaps, *, skip: Collection[str] = ()
                 ) -> TravelTimes:
    """One multi-source pass per service from its usable facilities to every unique cell; a service
    in ``skip`` (not assessed) gets NaN times: unknown, not unreachable. ``[tiles] time_cap_min`` (when
    > 0) caps every time: slower is inf, as in a tiled run (coverage.tiling)."""
    out: dict[str, ServiceTimes] = {}
    limit_s = cfg.tiles.time_cap_min * 60.0 if cfg.tiles.time_cap_min > 0 else np.inf
    n_cells = len(csnaps.cell_ids)
    ids_all = facilities["fac_id"].to_numpy()
    for sid, s in cfg.services.items():
        if sid in skip:
            out[sid] = ServiceTimes(time_s=np.full(n_cells, np.nan),
                                    nearest_id=np.full(n_cells, "", dtype=object), n_facilities=0)
            continue
        mask = usable_facilities(s, facilities, fsnaps)
        ids = ids_all[mask]
        if mask.any():
            res = nearest_facility_times(service_network(s, networks, cfg), fsnaps.by_mode[s.mode].take(mask),
                                         csnaps.by_mode[s.mode],
                                         access_speed_mps=access_speed_mps(s, cfg.walk, cfg.delivery),
                                         limit_s=limit_s)
            tt = res.target_time_s
            src = res.target_source
            nid = np.where(src >= 0, ids[np.clip(src, 0, None)], "")
        else:
            tt = np.full(n_cells, np.inf)
            nid = np.full(n_cells, "", dtype=object)
        finite = np.isfinite(tt)
        log.info("Service %s (%s): %d facilities; median time to nearest %.1f min", sid, s.mode,
                 int(mask.sum()), float(np.median(tt[finite]) / 60) if finite.any() else float("nan"))
        out[sid] = ServiceTimes(time_s=tt, nearest_id=np.asarray(nid, dtype=object),
                                n_facilities=int(mask.sum()))
    caps = {sid: limit_s for sid in out if sid not in skip} if np.isfinite(limit_s) else {}
    return TravelTimes(by_service=out, time_cap_s=caps)


def isochrone_layers(cfg: Config, networks: Mapping[str, Network], facilities: gpd.GeoDataFrame,
                     fsnaps: FacilitySnaps, *, qa_facilities: int = 3, qa_sample_m: float = 20.0,
                     skip: Collection[str] = ()) -> tuple[dict[str, gpd.GeoDataFrame], pd.DataFrame]:
    """Per-facility and dissolved isochrones per service and threshold
    (:meth:`Service.isochrone_thresholds_min`), as layers ``<id>_<T>min_facility`` / ``_dissolved``,
    plus the built-in QA on ``qa_facilities`` facilities per service (every reachable road point,
    sampled every ``qa_sample_m``, inside its polygon; no polygon part farther than the frontage +
    ``qa_sample_m`` from a reached road sample). tests/test_isochrones.py runs the same QA at 10 m."""
    layers: dict[str, gpd.GeoDataFrame] = {}
    qa: list[pd.DataFrame] = []
    for sid, s in cfg.services.items():
        mask = usable_facilities(s, facilities, fsnaps)
        if sid in skip or not mask.any():
            continue
        net = service_network(s, networks, cfg)
        sources = fsnaps.by_mode[s.mode].take(mask)
        ids = list(facilities["fac_id"].to_numpy()[mask])
        access = access_speed_mps(s, cfg.walk, cfg.delivery)
        thresholds = s.isochrone_thresholds_min()
        per_fac, dissolved = isochrone_polygons(
            net, sources, source_ids=ids, thresholds_s=[t * 60.0 for t in thresholds],
            access_speed_mps=access, frontage_m=cfg.isochrones.frontage_m, service=sid)
        for t in thresholds:
            tag = f"{sid}_{tlabel(t)}min"
            layers[f"{tag}_facility"] = (
                per_fac[np.isclose(per_fac["threshold_min"], t)].reset_index(drop=True))
            layers[f"{tag}_dissolved"] = (
                dissolved[np.isclose(dissolved["threshold_min"], t)].reset_index(drop=True))
        q = check_isochrones(net, sources, per_fac, source_ids=ids, access_speed_mps=access,
                             frontage_m=cfg.isochrones.frontage_m, max_facilities=qa_facilities,
                             sample_m=qa_sample_m)
        qa.append(q.assign(service=sid))
    return layers, (pd.concat(qa, ignore_index=True) if qa else pd.DataFrame({"ok": []}))


def fca_costs(cfg: Config, networks: Mapping[str, Network], facilities: gpd.GeoDataFrame,
              csnaps: CellSnaps, fsnaps: FacilitySnaps, *, skip: Collection[str] = ()
              ) -> dict[str, tuple[list[str], sp.csr_matrix]]:
    """Network site x cell-piece travel-time matrices within the 2SFCA catchment, for every service
    with a capacity column (beds, childcare slots).

    The matrix is computed once per unique cell centre and its columns repeated for each piece of a
    cell split between units.
    """
    catch_s = cfg.standards.fca_catchment_min * 60.0
    out: dict[str, tuple[list[str], sp.csr_matrix]] = {}
    for sid, s in cfg.services.items():
        if not s.capacity_col or sid in skip:
            continue
        mask = usable_facilities(s, facilities, fsnaps)
        if not mask.any():
            continue
        m = coverage_matrix(service_network(s, networks, cfg), fsnaps.by_mode[s.mode].take(mask),
                            csnaps.by_mode[s.mode],
                            access_speed_mps=access_speed_mps(s, cfg.walk, cfg.delivery),
                            limit_s=catch_s)
        out[sid] = (list(facilities["fac_id"].to_numpy()[mask]), m.tocsc()[:, csnaps.piece_to_cell].tocsr())
    return out
