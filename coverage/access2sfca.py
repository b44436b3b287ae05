"""Two-step floating catchment area (2SFCA) access scores on a sparse cost matrix.

The maths works on plain arrays (the ``from_cost_matrix`` style of pysal/spopt and pysal/access):

* step 1, per site ``j``: ``R_j = S_j / sum_k D_k * w(t_kj)`` over the cells ``k`` inside its catchment;
* step 2, per cell ``i``: ``A_i = sum_j R_j * w(t_ij)`` over the sites ``j`` whose catchment holds ``i``.

``w`` is 1 inside the catchment for the classic 2SFCA (Luo & Wang 2003) and the Gaussian kernel of
Dai (2010) for the decay variant::

    w(t) = (exp(-0.5 (t / t0)^2) - exp(-0.5)) / (1 - exp(-0.5))   for t <= t0, else 0

so ``w(0) = 1`` and ``w(t0) = 0``. "Inside the catchment" is inclusive: ``t <= catchment_s``.

The score is supply per unit of demand (e.g. beds per elderly person); multiply by 1000 for
"per 1000". A site with no demand in its catchment has ``R_j = 0`` (its supply reaches nobody).

The steps are separate functions (:func:`catchment_weights`, :func:`site_demand_partial` /
:func:`site_demand`, :func:`site_ratios`, :func:`cell_scores`) so that a tiled run can take step 1 as a
reduction over tiles: each tile sums the weighted demand of its own cells per site, exactly
(:mod:`coverage.exact_sums`), the run adds the tiles' sums, and step 2 runs in each tile again with the
whole region's ratios. The per-site sum is exact in :func:`two_step_fca` too, so both agree bit for bit;
step 2 adds each cell's sites in the order of their rows, which a tile keeps.
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from coverage import exact_sums

log = logging.getLogger(__name__)

__all__ = ["catchment_weights", "cell_scores", "gaussian_weight", "site_demand", "site_demand_partial",
           "site_ratios", "two_step_fca"]

_E = float(np.exp(-0.5))


def gaussian_weight(t_s: np.ndarray, *, catchment_s: float) -> np.ndarray:
    """Dai (2010) Gaussian decay weight for travel times ``t_s`` (seconds), 0 beyond the catchment.

    Returns
    -------
    ndarray of float in [0, 1]: 1 at t = 0, 0 at and beyond ``catchment_s``.
    """
    t = np.asarray(t_s, dtype=float)
    w = (np.exp(-0.5 * (t / catchment_s) ** 2) - _E) / (1.0 - _E)
    return np.where(t <= catchment_s, np.clip(w, 0.0, 1.0), 0.0)


def two_step_fca(
    supply: np.ndarray,
    demand: np.ndarray,
    cost: sp.spmatrix | sp.sparray,
    *,
    catchment_s: float,
    decay: Literal["gaussian"] | None = None,
) -> np.ndarray:
    """2SFCA access score per demand cell.

    Parameters
    ----------
    supply
        Capacity per site, shape ``(n_sites,)`` (beds, childcare slots). NaN is treated as 0.
    demand
        Demand per cell, shape ``(n_cells,)`` (persons 60+, persons 0-3). NaN is treated as 0.
    cost
        Sparse ``(n_sites, n_cells)`` matrix of travel times in seconds. Only STORED entries count,
        including explicit zeros (a cell at the site's door has travel time 0: store it explicitly);
        stored entries above ``catchment_s`` or non-finite are ignored.
    catchment_s
        Catchment size in seconds (inclusive).
    decay
        ``None`` for the classic binary catchment, ``"gaussian"`` for Dai's Gaussian kernel.

    Returns
    -------
    ndarray of float, shape ``(n_cells,)``: supply per unit of demand reachable from each cell
    (e.g. beds per elderly person). 0 where no site is within reach.

    Raises
    ------
    ValueError
        When the shapes do not agree, a value is negative or the catchment is not positive.
    """
    s = np.nan_to_num(np.asarray(supply, dtype=float), nan=0.0)
    d = np.nan_to_num(np.asarray(demand, dtype=float), nan=0.0)
    problems: list[str] = []
    if s.ndim != 1 or d.ndim != 1:
        problems.append(f"supply and demand must be 1-D arrays (got shapes {s.shape}, {d.shape})")
    elif cost.shape != (s.size, d.size):
        problems.append(f"cost matrix shape {cost.shape} must be (n_sites, n_cells) = ({s.size}, {d.size})")
    if s.size and np.any(s < 0):
        problems.append("supply has negative values: capacities must be >= 0")
    if d.size and np.any(d < 0):
        problems.append("demand has negative values: populations must be >= 0")
    if not catchment_s > 0:
        problems.append(f"catchment_s = {catchment_s!r}: must be a positive number of seconds")
    if decay not in (None, "gaussian"):
        problems.append(f"decay = {decay!r}: use None or 'gaussian'")
    if problems:
        raise ValueError("two_step_fca: " + "; ".join(problems))

    wm = catchment_weights(cost, catchment_s=catchment_s, decay=decay)
    score = cell_scores(wm, site_ratios(s, site_demand(wm, d)))
    log.debug("2SFCA: %d sites, %d cells, %d site-cell pairs within %.0f s (decay=%s)",
              s.size, d.size, wm.nnz, catchment_s, decay)
    return score


def catchment_weights(cost: sp.spmatrix | sp.sparray, *, catchment_s: float,
                      decay: Literal["gaussian"] | None = None) -> sp.csr_matrix:
    """The ``(n_sites, n_cells)`` weights ``w(t)`` of the stored entries of ``cost`` within the catchment
    (inclusive; non-finite, negative and larger times dropped): 1, or Dai's Gaussian weight."""
    coo = sp.coo_matrix(cost)
    t = coo.data.astype(float)
    keep = np.isfinite(t) & (t <= catchment_s) & (t >= 0)
    rows, cols, t = coo.row[keep], coo.col[keep], t[keep]
    w = np.ones_like(t) if decay is None else gaussian_weight(t, catchment_s=catchment_s)
    return sp.csr_matrix((w, (rows, cols)), shape=cost.shape)  # duplicates summed: caller's problem


def site_demand_partial(wm: sp.spmatrix, demand: np.ndarray, *, site_keys: np.ndarray,
                        column: str = "demand") -> pd.DataFrame:
    """Step 1 as exact partial sums (:func:`coverage.exact_sums.partial_sums`, grouping ``"site"``): per
    site (named by ``site_keys[row]``), ``sum_k D_k * w(t_kj)`` over the cells of ``wm``'s columns."""
    coo = sp.coo_matrix(wm)
    d = np.nan_to_num(np.asarray(demand, dtype=float), nan=0.0)
    return exact_sums.partial_sums({"site": np.asarray(site_keys)[coo.row]}, {column: coo.data * d[coo.col]})


def site_demand(wm: sp.spmatrix, demand: np.ndarray) -> np.ndarray:
    """Step 1: the weighted demand in each site's catchment (exact sum, rounded once)."""
    n = wm.shape[0]
    tot = exact_sums.totals(site_demand_partial(wm, demand, site_keys=np.arange(n)), "site")
    out = np.zeros(n)
    if len(tot):
        out[tot.index.to_numpy(dtype=np.int64)] = tot["demand"].fillna(0.0).to_numpy(float)
    return out


def site_ratios(supply: np.ndarray, weighted_demand: np.ndarray) -> np.ndarray:
    """``R_j = S_j / weighted demand`` (0 for a site that reaches no demand)."""
    s = np.nan_to_num(np.asarray(supply, dtype=float), nan=0.0)
    return np.divide(s, weighted_demand, out=np.zeros_like(s), where=weighted_demand > 0)


def cell_scores(wm: sp.spmatrix, ratio: np.ndarray) -> np.ndarray:
    """Step 2: ``A_i = sum_j R_j * w(t_ij)`` per cell (each cell's sites added in row order)."""
    return np.asarray(sp.csr_matrix(wm).T @ ratio, dtype=float)
