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
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
import scipy.sparse as sp

log = logging.getLogger(__name__)

__all__ = ["gaussian_weight", "two_step_fca"]

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

    coo = sp.coo_matrix(cost)
    t = coo.data.astype(float)
    keep = np.isfinite(t) & (t <= catchment_s) & (t >= 0)
    rows, cols, t = coo.row[keep], coo.col[keep], t[keep]
    w = np.ones_like(t) if decay is None else gaussian_weight(t, catchment_s=catchment_s)
    wm = sp.csr_matrix((w, (rows, cols)), shape=cost.shape)  # duplicates summed: caller's problem
    weighted_demand = wm @ d  # per site
    ratio = np.divide(s, weighted_demand, out=np.zeros_like(s), where=weighted_demand > 0)
    score = np.asarray(wm.T @ ratio, dtype=float)
    log.debug("2SFCA: %d sites, %d cells, %d site-cell pairs within %.0f s (decay=%s)",
              s.size, d.size, t.size, catchment_s, decay)
    return score
