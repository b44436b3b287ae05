"""Exact grouped sums (coverage.exact_sums): the correctly rounded sum (math.fsum, the oracle) per key,
the same bit for bit however the rows are split into partials and in whatever order they are merged."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from coverage import exact_sums

FINITE = st.floats(allow_nan=False, allow_infinity=False, width=64, min_value=-1e300, max_value=1e300)
VALUES = st.one_of(FINITE, st.sampled_from([0.0, -0.0, 5e-324, 2.0**-1030, 1e-300, 0.1, 1e16, 1.0]))


def fsum_by_key(keys: np.ndarray, values: np.ndarray) -> dict[str, float]:
    out: dict[str, list[float]] = {}
    for k, v in zip(keys.tolist(), values.tolist(), strict=True):
        out.setdefault(str(k), []).append(0.0 if math.isnan(v) else v)
    return {k: math.fsum(v) for k, v in out.items()}


@settings(max_examples=80, deadline=None)
@given(data=st.data(), n=st.integers(1, 60))
def test_totals_are_math_fsum_per_key_for_any_split_and_order(data: st.DataFrameLike, n: int) -> None:
    values = np.array(data.draw(st.lists(VALUES, min_size=n, max_size=n)), dtype=float)
    keys = np.array(data.draw(st.lists(st.sampled_from(["a", "b", "社区3", ""]), min_size=n, max_size=n)))
    whole = exact_sums.totals(exact_sums.partial_sums({"k": keys}, {"v": values}), "k")
    ref = fsum_by_key(keys, values)
    for k, v in ref.items():
        got = whole["v"].get(k, np.nan) if "v" in whole else np.nan
        # a key whose values are all 0 has no bucket
        assert (v == 0.0 and np.isnan(got)) or got == v, (k, got, v)
    # any split into parts, merged in any order, gives the same partial sums and totals
    cuts = sorted(data.draw(st.lists(st.integers(0, n), max_size=5)))
    perm = np.array(data.draw(st.permutations(range(n))))
    parts = [exact_sums.partial_sums({"k": keys[perm[a:b]]}, {"v": values[perm[a:b]]})
             for a, b in zip([0, *cuts], [*cuts, n], strict=True)]
    order = data.draw(st.permutations(range(len(parts))))
    merged = exact_sums.merge([parts[i] for i in order])
    pd.testing.assert_frame_equal(merged, exact_sums.partial_sums({"k": keys}, {"v": values}))
    pd.testing.assert_frame_equal(exact_sums.totals(merged, "k"), whole)


@settings(max_examples=30, deadline=None)
@given(values=hnp.arrays(np.float64, st.integers(1, 300),
                         elements=st.floats(0, 1e4, allow_nan=False, allow_subnormal=False)),
       n_keys=st.integers(1, 7))
def test_population_like_sums_match_fsum_and_are_at_least_as_close_as_pandas(values: np.ndarray,
                                                                            n_keys: int) -> None:
    keys = (np.arange(values.size) % n_keys).astype(str)
    got = exact_sums.totals(exact_sums.partial_sums({"unit": keys}, {"pop": values}), "unit")
    ref = fsum_by_key(keys, values)
    pandas_sum = pd.Series(values).groupby(keys).sum()
    for k, v in ref.items():
        if v == 0.0:
            continue
        assert got.loc[k, "pop"] == v
        assert abs(got.loc[k, "pop"] - v) <= abs(pandas_sum[k] - v)


def test_several_groupings_and_columns_at_once_and_nan_counts_as_zero() -> None:
    keys_u = np.array(["u1", "u1", "u2", "u2"])
    keys_c = np.array(["c1", "c2", "c2", ""])
    p = exact_sums.partial_sums({"unit": keys_u, "comm": keys_c},
                                {"a": np.array([0.1, 0.2, np.nan, 3.0]),
                                 "b": np.array([1e20, 1.0, -1e20, 0.0])})
    u = exact_sums.totals(p, "unit")
    c = exact_sums.totals(p, "comm")
    assert u.loc["u1", "a"] == math.fsum([0.1, 0.2])
    assert u.loc["u2", "a"] == 3.0 and u.loc["u1", "b"] == 1e20 + 1.0 and u.loc["u2", "b"] == -1e20
    assert c.loc["c2", "b"] == math.fsum([1.0, -1e20]) and c.loc["", "a"] == 3.0
    assert np.isnan(c.loc["", "b"])  # only zeros: no bucket (the caller fills 0)
    # cancellation: a running float sum loses the 1.0, the exact sum keeps it
    one = exact_sums.partial_sums({"k": np.array(["x"] * 3)}, {"v": np.array([1e20, 1.0, -1e20])})
    assert exact_sums.totals(one, "k").loc["x", "v"] == 1.0 != (1e20 + 1.0) - 1e20


def test_large_row_counts_stay_exact_across_bincount_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(exact_sums, "_CHUNK_ROWS", 7)
    rng = np.random.default_rng(3)
    values = rng.lognormal(0, 4, 1000) * rng.choice([-1.0, 1.0], 1000)
    keys = rng.integers(0, 5, 1000).astype(str)
    got = exact_sums.totals(exact_sums.partial_sums({"k": keys}, {"v": values}), "k")
    for k, v in fsum_by_key(keys, values).items():
        assert got.loc[k, "v"] == v


def test_an_infinite_value_or_a_short_column_is_refused() -> None:
    with pytest.raises(ValueError, match="column 'v' holds an infinite value"):
        exact_sums.partial_sums({"k": np.array(["a"])}, {"v": np.array([np.inf])})
    with pytest.raises(ValueError, match="column 'v' has 1 values for 2 keys"):
        exact_sums.partial_sums({"k": np.array(["a", "b"])}, {"v": np.array([1.0])})
    assert exact_sums.totals(exact_sums.merge([]), "k").empty
