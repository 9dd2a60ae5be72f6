"""The Dask recipe of docs/batch.md: shuffle on the group key, then map_partitions(batch_pool).

Runs with dask's synchronous scheduler when the optional extra ivigmeta[dask] is installed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

dd = pytest.importorskip("dask.dataframe")
dask = pytest.importorskip("dask")

from ivigmeta.batching.run import BatchOptions, batch_pool, empty_result  # noqa: E402


def synthetic(n_groups: int = 60, seed: int = 8) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    k = rng.integers(1, 9, n_groups)
    g = np.repeat(np.arange(n_groups), k)
    n1 = rng.integers(5, 80, len(g))
    n2 = rng.integers(5, 80, len(g))
    return pd.DataFrame(
        {
            "review": [f"CD{x // 7:03d}" for x in g],
            "analysis": [f"{x % 7}" for x in g],
            "treat_events": rng.binomial(n1, 0.2),
            "treat_total": n1,
            "control_events": rng.binomial(n2, 0.3),
            "control_total": n2,
        }
    ).sample(frac=1.0, random_state=1)  # rows in no particular order


def test_map_partitions_after_shuffle_equals_one_pass():
    keys = ["review", "analysis"]
    options = BatchOptions(tau2_method="DL", measure="OR")
    df = synthetic()
    with dask.config.set({"dataframe.convert-string": False}):
        ddf = dd.from_pandas(df, npartitions=5)
        result = (
            ddf.shuffle(on=keys)
            .map_partitions(batch_pool, keys, options, meta=empty_result(keys))
            .compute(scheduler="synchronous")
        )
    got = result.sort_values(keys, ignore_index=True)
    want = batch_pool(df, keys, options).sort_values(keys, ignore_index=True)
    assert len(got) == df.groupby(keys).ngroups
    pd.testing.assert_frame_equal(got, want, check_dtype=False, rtol=1e-13)
