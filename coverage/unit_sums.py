"""Who is covered, summed per 街道/乡镇 and per 社区/村: one rule for the whole table and for each tile.

The per-unit population and coverage indicators are sums over cell pieces (docs/ARCHITECTURE.md) of
*cell terms*: the piece's residents, persons 60+ and children 0-3, and per service and threshold its
demand population when it is covered (:func:`coverage.services.covered`, inclusive; the per-class rule,
城区 15 / 郊区 30 min, by the class of the piece's unit). :func:`cell_terms` computes them from arrays;
:func:`cells_partial` applies it to a cells table, and a tile applies it to its own pieces
(:func:`coverage.tiling.solve_tile`), so the rule lives here once.

The 2SFCA indicators are population-weighted means: per service and kernel the sum of each piece's
score times its demand population (:func:`fca_terms`), divided by the demand.

The sums are exact (:mod:`coverage.exact_sums`): a tiled run adds its tiles' partial sums and gets the
same totals, bit for bit, as a run that sums the whole cells table in one process.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from coverage import exact_sums
from coverage.services import Service, covered

__all__ = ["FCA_PER_PERSONS", "GROUPINGS", "POP_COLS", "CoverTerm", "TileSums", "cell_terms", "cells_partial",
           "cover_terms", "fca_sum_col", "fca_terms", "grouping_keys", "score_columns", "site_supply",
           "terms_from_json", "terms_to_json"]

#: the population columns of a cells table, each summed per unit and community
POP_COLS = ("pop_total", "pop_60plus", "pop_0to3")
#: the keys the sums are grouped by (indicators per 街道/乡镇 and per 社区/村)
GROUPINGS = ("unit_code", "community_code")
#: 2SFCA scores are given per this many persons of demand (beds per 1000 persons 60+)
FCA_PER_PERSONS = 1000.0


@dataclass(frozen=True)
class CoverTerm:
    """One covered-population indicator: ``column`` sums ``demand_col`` over the pieces whose
    ``tt_<service>_s`` is within ``minutes``, or, for the per-class rule (``minutes`` None), within the
    minutes of their unit's class (``minutes_by_class``)."""

    column: str
    service: str
    demand_col: str
    minutes: float | None
    minutes_by_class: tuple[tuple[str, float], ...] = ()
    #: the service's travel-time column in a cells table (:attr:`Service.tt_col`)
    tt_col: str = ""

    def threshold_min(self, unit_class: np.ndarray) -> np.ndarray | float:
        """The threshold of each piece (minutes; NaN, never covered, for a class without a rule)."""
        if self.minutes is not None:
            return self.minutes
        cls = np.asarray(unit_class).astype(str)
        out = np.full(cls.shape, np.nan)
        for c, minutes in self.minutes_by_class:
            out[cls == c] = minutes
        return out


@dataclass(frozen=True)
class TileSums:
    """What the tiles of a run summed per unit and community, added up: ``partial`` (exact partial sums of
    the population and coverage terms, and of the 2SFCA terms of ``fca_services``, the services whose
    scores the tiles computed on network costs)."""

    partial: pd.DataFrame
    fca_services: tuple[str, ...] = ()


def fca_sum_col(score_col: str) -> str:
    """The summed column of a 2SFCA score times its demand population (``_sum_<score column>``)."""
    return f"_sum_{score_col}"


def fca_terms(score_cols: Mapping[bool, str], scores: Mapping[bool, np.ndarray], demand: np.ndarray
              ) -> dict[str, np.ndarray]:
    """Per piece and kernel (``gaussian`` False / True: the score column ``score_cols[gaussian]`` and the
    piece's score per 1000, ``scores[gaussian]``), the score times the piece's demand population."""
    d = np.asarray(demand, dtype=float)
    return {fca_sum_col(score_cols[g]): np.asarray(scores[g], dtype=float) * d for g in (False, True)}


def score_columns(service: Service) -> dict[bool, str]:
    """The 2SFCA score columns of ``service``, by kernel (``gaussian`` False / True)."""
    return {g: service.fca_column(gaussian=g) for g in (False, True)}


def site_supply(providers: pd.DataFrame, supply_col: str, ids: Sequence[str]) -> np.ndarray:
    """The capacity (``supply_col``) of each site in ``ids`` (fac_id of ``providers``; unknown: 0)."""
    by_id = providers.set_index("fac_id")[supply_col] if len(providers) else pd.Series(dtype=float)
    return pd.Series(list(ids), dtype=object).map(by_id).fillna(0.0).to_numpy(float)


def cover_terms(services: Mapping[str, Service], standards: Any, classes: Iterable[str]
                ) -> tuple[CoverTerm, ...]:
    """The covered-population indicators of every service (:meth:`Service.indicator_minutes`), with the
    per-class thresholds of the unit classes in ``classes``."""
    cls = sorted({str(c) for c in classes})
    out: list[CoverTerm] = []
    for s in services.values():
        for t in s.indicator_minutes(standards):
            by_class = tuple((c, float(s.threshold_min_for_class(c))) for c in cls) if t is None else ()
            out.append(CoverTerm(column=s.column("covered", t), service=s.id, demand_col=s.demand_col,
                                 minutes=None if t is None else float(t), minutes_by_class=by_class,
                                 tt_col=s.tt_col))
    return tuple(out)


def terms_to_json(terms: Iterable[CoverTerm]) -> str:
    """The terms as JSON (a tile file's header carries them)."""
    return json.dumps([[t.column, t.service, t.demand_col, t.minutes, [list(p) for p in t.minutes_by_class],
                        t.tt_col] for t in terms])


def terms_from_json(text: str) -> tuple[CoverTerm, ...]:
    """The terms written by :func:`terms_to_json`."""
    return tuple(CoverTerm(column=c, service=s, demand_col=d, minutes=None if m is None else float(m),
                           minutes_by_class=tuple((str(k), float(v)) for k, v in by), tt_col=tt)
                 for c, s, d, m, by, tt in json.loads(text))


def cell_terms(terms: Iterable[CoverTerm], *, tt_s: Mapping[str, np.ndarray], unit_class: np.ndarray,
               pops: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per piece: its population columns (:data:`POP_COLS`) and, per term, its demand population where
    covered, else 0. A service absent from ``tt_s`` (not routed) covers nobody."""
    out = {p: np.asarray(pops[p], dtype=float) for p in POP_COLS}
    n = len(out[POP_COLS[0]])
    for t in terms:
        tt = tt_s.get(t.service)
        if tt is None:
            out[t.column] = np.zeros(n)
            continue
        out[t.column] = np.where(covered(tt, t.threshold_min(unit_class)), out[t.demand_col], 0.0)
    return out


def cells_partial(cells: pd.DataFrame, terms: Iterable[CoverTerm], *, unit_class: Mapping[str, str]
                  ) -> pd.DataFrame:
    """The exact partial sums (:func:`coverage.exact_sums.partial_sums`) of the cell terms of a cells
    table with its ``tt_<service>_s`` columns, per :data:`GROUPINGS`; ``unit_class`` maps unit_code to
    城区/郊区."""
    terms = tuple(terms)
    codes = cells["unit_code"].astype(str)
    tt = {t.service: cells[t.tt_col].to_numpy(float) for t in terms if t.tt_col in cells.columns}
    cols = cell_terms(terms, tt_s=tt, unit_class=codes.map(unit_class).to_numpy(dtype=object),
                      pops={p: cells[p].to_numpy(float) for p in POP_COLS})
    return exact_sums.partial_sums(grouping_keys(cells), cols)


def grouping_keys(cells: pd.DataFrame) -> dict[str, np.ndarray]:
    """The keys of each piece of a cells table per :data:`GROUPINGS` (as strings; a table without
    communities is grouped by unit only)."""
    return {g: cells[g].astype(str).to_numpy() for g in GROUPINGS if g in cells.columns}
