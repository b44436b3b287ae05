"""Grouped sums that are exact and merge: the same totals, bit for bit, however the rows are split.

Why: a per-unit indicator of a tiled run is a reduction over tiles (each tile sums its own cells, the
run adds the tiles' partial sums). Floating-point addition is not associative, so a sum over tiles
would differ in its last bits from the sum over the whole table, and the tiled and untiled tables
would differ. Here every sum is exact until one final rounding:

* a finite float64 is ``M * 2**(e - 53)`` with an integer ``|M| < 2**53`` (``np.frexp``); split
  ``M = H * 2**26 + L`` (``0 <= L < 2**26``, ``|H| <= 2**27``);
* the *partial sums* of a set of rows are, per (grouping, key, column, exponent ``e``), the integer
  sums of the ``H`` and of the ``L`` (:func:`partial_sums`). Adding integers is exact and
  associative, so partials of disjoint row sets merge in any order into the partials of their union
  (:func:`merge`);
* the *total* of a key is ``sum((H_e * 2**26 + L_e) * 2**(e - 53))`` in Python integers, rounded ONCE
  to the nearest float64, ties to even (:func:`totals`): the correctly rounded sum, which is what
  :func:`math.fsum` returns (the test oracle).

NaN counts as 0 (pandas' ``groupby().sum()`` skips it); an infinite value is refused. Integer sums
are taken with ``np.bincount`` on chunks of ``2**25`` rows: every running sum of a chunk is an
integer below ``2**52``, so the float64 accumulation of ``bincount`` is exact.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = ["PARTIAL_COLUMNS", "empty_partial", "merge", "partial_sums", "totals"]

#: the columns of a partial-sums table (one row per bucket)
PARTIAL_COLUMNS = ("by", "key", "column", "exp", "hi", "lo")

_HALF_BITS = 26
_LOW_MASK = (1 << _HALF_BITS) - 1
_CHUNK_ROWS = 1 << 25


def empty_partial() -> pd.DataFrame:
    """A partial-sums table without rows."""
    return pd.DataFrame({"by": pd.Series([], dtype=object), "key": pd.Series([], dtype=object),
                         "column": pd.Series([], dtype=object), "exp": pd.Series([], dtype=np.int64),
                         "hi": pd.Series([], dtype=np.int64), "lo": pd.Series([], dtype=np.int64)})


def _bucket_sums(code: np.ndarray, values: np.ndarray, n_codes: int) -> np.ndarray:
    """Exact integer sums of ``values`` (``|v| <= 2**27``) per ``code`` (chunked ``bincount``)."""
    out = np.zeros(n_codes, dtype=np.int64)
    for start in range(0, code.shape[0], _CHUNK_ROWS):
        part = np.bincount(code[start:start + _CHUNK_ROWS], weights=values[start:start + _CHUNK_ROWS],
                           minlength=n_codes)
        out += part.astype(np.int64)
    return out


def partial_sums(by: Mapping[str, np.ndarray], columns: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """The partial sums of every column in ``columns`` per key of every grouping in ``by``.

    Parameters
    ----------
    by
        Grouping name -> key per row (integers, or anything else as strings; e.g.
        ``{"unit_code": ..., "community_code": ...}``).
    columns
        Column name -> float value per row (same length as the keys). NaN counts as 0.

    Returns
    -------
    DataFrame with :data:`PARTIAL_COLUMNS`: ``by``, ``key``, ``column``, ``exp`` (binary exponent) and the
    exact integer sums ``hi`` and ``lo`` of that bucket; buckets whose values are all 0 are left out.

    Raises
    ------
    ValueError
        When a column is not as long as the keys or holds an infinite value.
    """
    frames: list[pd.DataFrame] = []
    for name, keys in by.items():
        k = np.asarray(keys)
        k = k if k.dtype.kind in "iu" else k.astype(str)
        gi, uk = pd.factorize(k, sort=False)  # hashing: faster than sorting strings
        gi = np.asarray(gi, dtype=np.int64)
        uk = np.asarray(uk, dtype=object)
        for col, values in columns.items():
            x = np.asarray(values, dtype=float)
            if x.shape != k.shape:
                raise ValueError(f"partial_sums: column {col!r} has {x.shape[0]} values for "
                                 f"{k.shape[0]} keys")
            if np.isinf(x).any():
                raise ValueError(f"partial_sums: column {col!r} holds an infinite value")
            nz = np.flatnonzero(np.nan_to_num(x, nan=0.0) != 0.0)
            if nz.size == 0:
                continue
            mant, exp = np.frexp(x[nz])
            m = (mant * float(1 << 53)).astype(np.int64)  # exact: the mantissa has 53 bits
            hi, lo = m >> _HALF_BITS, m & _LOW_MASK
            e_min = int(exp.min())
            n_e = int(exp.max()) - e_min + 1  # at most 2,100 exponents: no sort needed
            code = gi[nz] * n_e + (exp.astype(np.int64) - e_min)
            ci, uc = pd.factorize(code, sort=False)
            ci, uc = np.asarray(ci, dtype=np.int64), np.asarray(uc, dtype=np.int64)
            frames.append(pd.DataFrame({
                "by": name, "key": uk[uc // n_e], "column": col, "exp": uc % n_e + e_min,
                "hi": _bucket_sums(ci, hi.astype(float), uc.shape[0]),
                "lo": _bucket_sums(ci, lo.astype(float), uc.shape[0])}))
    return merge(frames)


def merge(partials: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """The partial sums of the union of the (disjoint) row sets behind ``partials`` (exact: integer
    additions), sorted by grouping, key, column and exponent."""
    parts = [p for p in partials if len(p)]
    if not parts:
        return empty_partial()
    df = pd.concat(parts, ignore_index=True)
    out = df.groupby(["by", "key", "column", "exp"], sort=True, as_index=False)[["hi", "lo"]].sum()
    return out[list(PARTIAL_COLUMNS)].astype({"hi": np.int64, "lo": np.int64, "exp": np.int64})


def totals(partial: pd.DataFrame, by: str) -> pd.DataFrame:
    """The correctly rounded sums of grouping ``by``: one row per key (the index, named ``by``), one
    float column per summed column (NaN where a key has no bucket of that column: the caller decides
    whether that means 0)."""
    p = merge([partial[partial["by"] == by]])
    if not len(p):
        return pd.DataFrame(index=pd.Index([], name=by, dtype=object))
    keys = p["key"].to_numpy()
    cols = p["column"].to_numpy()
    exps = p["exp"].to_numpy().tolist()
    mags = ((p["hi"].to_numpy().astype(object) << _HALF_BITS) + p["lo"].to_numpy().astype(object)).tolist()
    start = np.flatnonzero(np.r_[True, (keys[1:] != keys[:-1]) | (cols[1:] != cols[:-1])])
    stop = np.r_[start[1:], len(p)]
    values: list[float] = []
    for a, b in zip(start.tolist(), stop.tolist(), strict=True):
        e0 = exps[a]  # the smallest exponent of the group (sorted)
        n = sum(mags[i] << (exps[i] - e0) for i in range(a, b))
        shift = e0 - 53
        values.append(float(n << shift) if shift >= 0 else n / (1 << -shift))  # both correctly rounded
    long = pd.DataFrame({by: keys[start], "column": cols[start], "value": values})
    wide = long.pivot(index=by, columns="column", values="value")
    wide.columns.name = None
    return wide
