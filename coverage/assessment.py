"""Which services the supplied data allow assessing: "not assessed" (未评估) is not "failed".

A service is **not assessed** when the region config says so (``[services.<id>] assess = false``) or
when the facility layers supply no facility providing it and no layer declares itself complete for
its kinds (``[[facilities]] complete_for = [...]``): with no data about, say, elderly-care facilities,
"0 % covered" would state a shortfall the data do not show. A layer declared complete for a kind turns
"none in the data" into a real shortfall: the service is assessed and fails where it should.

For a service that is not assessed, every output says so instead of showing 0: its travel times are
NaN (unknown, not unreachable), its indicator columns are empty, the standards that read it have
``passed`` empty and the reason, gap areas are not drawn, and the maps paint it grey, labelled 未评估.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from coverage.config import Config
from coverage.services import Service

__all__ = ["NOT_ASSESSED_ZH", "blank_cells", "blank_indicators", "mark_standards", "not_assessed",
           "service_columns"]

NOT_ASSESSED_ZH = "未评估"


def not_assessed(cfg: Config, facilities: pd.DataFrame) -> dict[str, str]:
    """``{service id: reason}`` of the services the data do not allow assessing (see the module)."""
    complete = {k for f in cfg.facilities for k in f.complete_for}
    out: dict[str, str] = {}
    for sid, s in cfg.services.items():
        if not s.assess:
            out[sid] = f"not assessed: services.{sid}.assess = false in the region config"
        elif not s.provided_by(facilities).any() and not complete & set(s.kinds):
            out[sid] = (f"not assessed: no facility data for {s.label_zh} ({s.label_en}): no layer supplies "
                        f"its kinds ({', '.join(s.kinds)}); add a [[facilities]] layer with them, or, if the "
                        f"region truly has none, declare a layer complete for them (complete_for = [...])")
    return out


def mark_standards(std: pd.DataFrame, services: Mapping[str, Service], reasons: Mapping[str, str]
                   ) -> pd.DataFrame:
    """``std`` with every row of a standard that reads a not-assessed service set to not checkable:
    ``passed`` empty, ``value`` empty, ``shortfall`` the reason (a standard reading several services is
    not assessed when any of them is not)."""
    if not reasons:
        return std
    why: dict[str, str] = {}
    for sid, reason in reasons.items():
        for st in services[sid].standards:
            why.setdefault(st, f"{NOT_ASSESSED_ZH} ({sid}) {reason}")
    hit = std["standard_id"].isin(list(why))
    out = std.copy()
    out.loc[hit, "passed"] = pd.NA
    out.loc[hit, "value"] = float("nan")
    out.loc[hit, "shortfall"] = out.loc[hit, "standard_id"].map(why)
    return out


#: indicator columns computed from one service's facilities' capacities (beyond its registry columns)
_CAPACITY_COLUMNS = {
    "beds": ("beds", "nursing_beds", "nursing_bed_share", "beds_per_1000_60plus", "elderly_area_m2",
             "n_elderly_area_unknown", "elderly_area_field", "elderly_area_m2_per_resident"),
    "childcare_slots": ("childcare_slots", "n_childcare_slots_unknown", "slots_per_1000", "slots_required",
                        "slots_shortfall"),
}


def service_columns(s: Service, standards: Any) -> list[str]:
    """Every indicator column that states something about service ``s`` (its coverage, facility count,
    2SFCA and capacity columns)."""
    cols = [s.count_col, s.fca_basis_col]
    for t in s.indicator_minutes(standards):
        cols += [s.column(w, t) for w in ("covered", "share", "uncovered")]
    if s.capacity_col:
        cols += [s.fca_column(), s.fca_column(gaussian=True)]
        cols += list(_CAPACITY_COLUMNS.get(s.capacity_col, ()))
    return cols


def blank_indicators(table: pd.DataFrame, services: Mapping[str, Service], reasons: Mapping[str, str],
                     standards: Any) -> pd.DataFrame:
    """``table`` with the columns of every not-assessed service empty (NaN / ""), never 0."""
    if not reasons:
        return table
    out = table.copy()
    for sid in reasons:
        for c in service_columns(services[sid], standards):
            if c in out.columns:
                text = out[c].dtype == object or pd.api.types.is_string_dtype(out[c].dtype)
                out[c] = "" if text else np.nan
    return out


def blank_cells(cells: pd.DataFrame, services: Mapping[str, Service], reasons: Mapping[str, str]
                ) -> pd.DataFrame:
    """``cells`` with the covered flags of every not-assessed service empty (nullable boolean NA)."""
    if not reasons:
        return cells
    out = cells.copy()
    for sid in reasons:
        s = services[sid]
        for c in s.cell_flags():
            if c in out.columns:
                out[c] = pd.array([pd.NA] * len(out), dtype="boolean")
    return out
