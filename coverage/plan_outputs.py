"""Writing a plan (``build/<region>/plan/<service>/``) and a scenario diff table.

Plan files: ``sites.gpkg`` (layers ``sites``, ``newly_covered``, ``remaining_gaps``, ``candidates``),
``sites.csv`` and ``sites.xlsx`` (one row per recommended site: type, capacity, unit, people newly
covered, capacity used, standards that flip to 达标), ``curve.csv`` and ``curve.png`` (coverage vs number
of sites), ``candidate_rejects.csv`` (every candidate row not used, with the reason) and ``plan.json``
(the request, the method, the solver's status, bound, gap and time). Tables go through
:mod:`coverage.tables` (formula-safe).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from coverage.plan import Plan
from coverage.tables import write_csv, write_xlsx

__all__ = ["SITE_COLUMNS", "write_curve_png", "write_plan"]

#: columns of sites.csv, in order
SITE_COLUMNS = (
    "order",
    "site_id",
    "name",
    "type_label",
    "kind",
    "capacity",
    "floor_area_m2",
    "cost",
    "unit_code",
    "unit_name",
    "community_code",
    "newly_covered_persons",
    "capacity_used",
    "standards_flipped",
    "origin",
    "candidate_id",
    "x",
    "y",
)


def _json_value(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def write_curve_png(curve: pd.DataFrame, path: Path, *, title: str) -> Path:
    """Coverage share (existing + new) against the number of new sites, with the proven bounds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    ok = curve[curve["status"] == "ok"]
    if len(ok):
        ax.plot(ok["sites"], 100 * ok["covered_share"], marker="o", color="#1a9850", label="covered (plan)")
        ax.set_xticks(list(ok["sites"]))
    ax.set_xlabel("new sites")
    ax.set_ylabel("demand covered (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)
    return path


def write_plan(folder: Path, plan: Plan) -> Path:
    """Every file of one plan into ``folder`` (module docstring)."""
    folder.mkdir(parents=True, exist_ok=True)
    sites = plan.sites.copy()
    sites["x"] = sites.geometry.x.round(2)
    sites["y"] = sites.geometry.y.round(2)
    table = pd.DataFrame(sites[[c for c in SITE_COLUMNS if c in sites.columns]])
    write_csv(table, folder / "sites.csv")
    write_xlsx({"sites": table, "curve": plan.curve}, folder / "sites.xlsx")
    gpkg = folder / "sites.gpkg"
    sites.drop(columns=["x", "y"]).to_file(gpkg, layer="sites", driver="GPKG")
    for name, layer in (("newly_covered", plan.newly_covered), ("remaining_gaps", plan.remaining_gaps)):
        if len(layer):
            layer.to_file(gpkg, layer=name, driver="GPKG")
    cands = plan.candidates.sites
    if len(cands):
        keep = [
            c for c in ("fac_id", "name", "kind", "origin", "unit_code", "geometry") if c in cands.columns
        ]
        cands[keep].to_file(gpkg, layer="candidates", driver="GPKG")
    write_csv(plan.curve, folder / "curve.csv")
    write_curve_png(
        plan.curve,
        folder / "curve.png",
        title=f"{plan.service.label_en or plan.service.id}: coverage vs new sites",
    )
    write_csv(plan.candidates.rejects, folder / "candidate_rejects.csv")
    info = {k: _json_value(v) for k, v in plan.info.items()}
    info["sites"] = len(plan.sites)
    info["curve"] = json.loads(plan.curve.to_json(orient="records"))  # NaN -> null
    (folder / "plan.json").write_text(
        json.dumps(info, ensure_ascii=False, indent=2, default=str), encoding="utf-8"
    )
    return folder
