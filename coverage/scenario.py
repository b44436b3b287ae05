"""What-if scenarios: the baseline with facilities added or removed and, optionally, the population of a
target year; and the per-unit difference to the baseline (issue 12).

A scenario (``[scenarios.<name>]`` in the region config) re-uses the baseline's stages (networks, cells
and their snaps): only the changed facilities are placed, snapped and routed
(:func:`coverage.pipeline.with_facilities`), and the population is rescaled in place. Its results are
written like a run's (``build/<r>/scenarios/<name>/``), plus ``diff.csv``: per unit and service the
headline coverage before and after, the people still uncovered, and the standards that flip, with the
targets (set, year, source) the scenario meets.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd

from coverage import layers
from coverage.config import Config, ScenarioConfig
from coverage.errors import PlanningError
from coverage.plan import facilities_with_sites, plan_sites_as_facilities
from coverage.population import Cells, read_unit_csv
from coverage.standards import TARGET_STANDARDS, standards_flipped

if TYPE_CHECKING:
    from coverage.pipeline import Analysis, Results

log = logging.getLogger(__name__)

__all__ = [
    "DIFF_COLUMNS",
    "scenario_diff",
    "scenario_inputs",
    "scenario_facilities",
    "scenario_population",
    "targets_met",
]

#: columns of diff.csv
DIFF_COLUMNS = (
    "unit_code",
    "unit_name",
    "service",
    "covered_share_before",
    "covered_share_after",
    "covered_share_change",
    "uncovered_before",
    "uncovered_after",
    "standards_now_passed",
    "standards_now_failed",
    "low_confidence",
)


def _scenario(cfg: Config, name: str) -> ScenarioConfig:
    if name not in cfg.scenarios:
        known = ", ".join(cfg.scenarios) or "none: add a [scenarios.<name>] table"
        raise PlanningError(f"SCENARIO={name!r} is not in {cfg.path} (scenarios: {known})")
    return cfg.scenarios[name]


def scenario_facilities(
    a: Analysis, sc: ScenarioConfig, build_dir: Path
) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """The baseline's facilities minus ``remove``, plus the ``add`` layers (read like facility layers)
    and the sites of the plans ``plans``; returns them and the rejected rows of the added layers."""
    fac = a.facilities
    ids = set(fac["fac_id"].astype(str))
    unknown = [f for f in sc.remove if f not in ids]
    if unknown:
        raise PlanningError(
            f"scenarios.{sc.name}.remove: no facility with fac_id {', '.join(map(repr, unknown))} "
            f"in the baseline (see {build_dir / 'facilities.csv'} for the ids)"
        )
    fac = fac[~fac["fac_id"].astype(str).isin(sc.remove)]
    added: list[gpd.GeoDataFrame] = []
    rejects = pd.DataFrame()
    if sc.add:
        cfg_add = dataclasses.replace(a.cfg, facilities=sc.add)
        read = layers.read_facilities(
            cfg_add,
            config_key=f"scenarios.{sc.name}.add",
            study_area_wgs84=a.study.outline_wgs84,
            metric_crs=a.study.metric_crs,
            roads=a.roads.geometry,
        )
        clash = set(read.facilities["fac_id"].astype(str)) & set(fac["fac_id"].astype(str))
        if clash:
            raise PlanningError(
                f"scenarios.{sc.name}.add: fac_id {', '.join(sorted(clash)[:5])} already used by "
                "a baseline facility: give the added rows their own ids"
            )
        added.append(read.facilities)
        rejects = read.rejects
    for sid in sc.plans:
        sites_path = build_dir / "plan" / sid / "sites.gpkg"
        if not sites_path.is_file():
            raise PlanningError(
                f"scenarios.{sc.name}.plans: no plan of {sid} in {sites_path.parent}; make one "
                f"first: make plan REGION={a.cfg.region.name} SERVICE={sid} SITES=N"
            )
        sites = gpd.read_file(sites_path, layer="sites")
        added.append(plan_sites_as_facilities(sites, a.cfg.services[sid], a.study.metric_crs))
    out = fac
    for extra in added:
        out = facilities_with_sites(out, extra)
    return gpd.GeoDataFrame(out, geometry="geometry", crs=a.study.metric_crs), rejects


def scenario_population(a: Analysis, sc: ScenarioConfig) -> tuple[Cells, dict[str, object]]:
    """The baseline's cells with the target year's population: every ``pop_*`` column scaled by
    ``population_scale``, or per unit to the ``pop_total`` of ``population_csv`` (age groups scaled by
    the same factor: the age shares stay the baseline's). Returns the Cells and a record of what changed."""
    cells = a.cells_in.cells.copy()
    cols = ["pop_total", "pop_60plus", "pop_0to3"]
    factor = np.full(len(cells), float(sc.population_scale))
    record: dict[str, object] = {"year": sc.year or None, "population_scale": sc.population_scale}
    if sc.population_csv is not None:
        path = sc.population_csv
        now = cells.groupby(cells["unit_code"].astype(str))["pop_total"].sum()
        t = read_unit_csv(path, list(a.study.units["unit_code"].astype(str)), ["pop_total"],
                          what="target-year population", key=f"scenarios.{sc.name}.population_csv",
                          complete=False)
        per_unit = (t["pop_total"] / now.reindex(t.index)).replace([np.inf], np.nan).dropna().to_dict()
        missing = sorted(set(now.index) - set(per_unit))
        factor = cells["unit_code"].astype(str).map(per_unit).fillna(float(sc.population_scale)).to_numpy()
        record.update(
            population_csv=str(path), units_given=len(t), units_scaled_by_population_scale=missing
        )
    for c in cols:
        cells[c] = cells[c].to_numpy(dtype=float) * factor
    before, after = float(a.cells_in.cells["pop_total"].sum()), float(cells["pop_total"].sum())
    record.update(pop_total_before=before, pop_total_after=after)
    return dataclasses.replace(a.cells_in, cells=cells), record


def scenario_inputs(
    a: Analysis, cfg: Config, name: str, build_dir: Path
) -> tuple[gpd.GeoDataFrame, Cells, pd.DataFrame, dict[str, object]]:
    """What scenario ``name`` changes: its facilities, its cells (population), the rejected rows of its
    added layers and a record of the changes (coverage.pipeline.run_scenario routes them)."""
    sc = _scenario(cfg, name)
    fac, rejects = scenario_facilities(a, sc, build_dir)
    cells_in, pop = scenario_population(a, sc)
    record: dict[str, object] = {
        "scenario": name,
        "description": sc.description,
        "removed": list(sc.remove),
        "added_layers": [f.name for f in sc.add],
        "added_plans": list(sc.plans),
        "facilities_before": len(a.facilities),
        "facilities_after": len(fac),
        "added_rejected_rows": len(rejects),
        "population": pop,
    }
    return fac, cells_in, rejects, record


def scenario_diff(cfg: Config, base: Results, new: Results) -> pd.DataFrame:
    """Per unit and assessed service: headline coverage share and uncovered people before and after, and
    the unit's standards that flip (diff.csv)."""
    flips = standards_flipped(base.standards, new.standards)
    flips = flips[flips["level"] == "unit"]
    rows = []
    ub = base.unit_ind.set_index("unit_code")
    ua = new.unit_ind.set_index("unit_code")
    for code in ub.index.astype(str):
        mine = flips[flips["unit_code"] == code]
        up = sorted(set(mine.loc[mine["now"], "standard_id"]))
        down = sorted(set(mine.loc[~mine["now"], "standard_id"]))
        for sid, s in cfg.services.items():
            _flag, share_col, unc_col = s.headline(cfg.standards)
            if share_col not in ub.columns:
                continue
            b_share, a_share = ub.at[code, share_col], ua.at[code, share_col] if code in ua.index else np.nan
            rows.append(
                {
                    "unit_code": code,
                    "unit_name": ub.at[code, "unit_name"],
                    "service": sid,
                    "covered_share_before": b_share,
                    "covered_share_after": a_share,
                    "covered_share_change": (a_share - b_share)
                    if pd.notna(a_share) and pd.notna(b_share)
                    else np.nan,
                    "uncovered_before": ub.at[code, unc_col],
                    "uncovered_after": ua.at[code, unc_col],
                    "standards_now_passed": "; ".join(x for x in up if x in s.standards),
                    "standards_now_failed": "; ".join(x for x in down if x in s.standards),
                    "low_confidence": bool(ua.at[code, "low_confidence"])
                    if "low_confidence" in ua.columns
                    else False,
                }
            )
    return pd.DataFrame(rows, columns=list(DIFF_COLUMNS))


def targets_met(new: Results) -> list[dict[str, object]]:
    """The target-checking standards rows of the scenario (TARGET_STANDARDS): which it meets, with the
    rule and year they name (their ``source``)."""
    std = new.standards
    t = std[std["standard_id"].isin(TARGET_STANDARDS)]
    return [
        {
            "standard_id": r["standard_id"],
            "code": str(r["unit_code"]),
            "level": r["level"],
            "passed": None if pd.isna(r["passed"]) else bool(r["passed"]),
            "value": r["value"],
            "required": r["required"],
            "source": r["source"],
        }
        for _, r in t.iterrows()
    ]
