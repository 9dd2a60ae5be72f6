"""The Dask recipe of docs/batch.md: shuffle on the group key, then map_partitions(batch_pool).

Runs with dask's synchronous scheduler, and on a distributed.LocalCluster of two worker
processes (the test extra installs dask[dataframe] and distributed).
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


CLUSTER_SCRIPT = """
import os
import pickle
import sys

import dask
import dask.dataframe as dd
from distributed import Client, LocalCluster, get_worker

from ivigmeta.batching.run import BatchOptions, batch_pool, empty_result


def pooled_on_a_worker(part, keys, options):
    get_worker()  # ValueError if this partition were pooled anywhere but on a worker
    return batch_pool(part, keys, options)


if __name__ == "__main__":
    source, target = sys.argv[1], sys.argv[2]
    with open(source, "rb") as handle:
        df, keys, options = pickle.load(handle)
    # Workers forked from this fresh process start in a fraction of spawn's time (spawn, the
    # default, imports pandas, dask and ivigmeta again in each); tasks still travel pickled.
    config = {"dataframe.convert-string": False, "distributed.worker.multiprocessing-method": "fork"}
    with dask.config.set(config):
        with LocalCluster(
            n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
        ) as cluster, Client(cluster) as client:
            result = (
                dd.from_pandas(df, npartitions=6)
                .shuffle(on=keys)
                .map_partitions(pooled_on_a_worker, keys, options, meta=empty_result(keys))
                .compute()
            )
            workers = set(client.run(os.getpid).values())
    with open(target, "wb") as handle:
        pickle.dump((result, workers, os.getpid()), handle)
"""


def test_the_recipe_on_a_local_cluster_of_two_processes_equals_batch(tmp_path):
    """docs/batch.md's recipe on a real distributed.LocalCluster (two worker processes, pickled
    tasks, a shuffle between processes), field by field against batch_pool on the whole frame.

    The cluster runs in a child Python: a closed LocalCluster leaves a thread behind in the
    process that started it, and no fork is safe there afterwards (forking.can_fork), which would
    quietly turn the later tests of forked batch runs into one-process runs.
    """
    import pickle
    import subprocess
    import sys

    pytest.importorskip("distributed")
    keys = ["review", "analysis"]
    options = BatchOptions(tau2_method="REML", measure="RR")
    df = synthetic(n_groups=80, seed=3).reset_index(drop=True)
    df.loc[0, "treat_events"] = df.loc[0, "treat_total"] + 1  # a bad row: its group is an error
    df.loc[1, ["treat_events", "control_events"]] = 0  # a double zero
    (tmp_path / "in.pkl").write_bytes(pickle.dumps((df, keys, options)))
    (tmp_path / "recipe.py").write_text(CLUSTER_SCRIPT)
    done = subprocess.run(
        [
            sys.executable,
            str(tmp_path / "recipe.py"),
            str(tmp_path / "in.pkl"),
            str(tmp_path / "out.pkl"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result, workers, client_pid = pickle.loads((tmp_path / "out.pkl").read_bytes())
    assert len(workers) == 2 and client_pid not in workers

    got = result.sort_values(keys, ignore_index=True)
    want = batch_pool(df, keys, options).sort_values(keys, ignore_index=True)
    assert len(want) == df.groupby(keys).ngroups
    assert list(got.columns) == list(want.columns)
    assert set(want["status"]) >= {"error", "ok"}
    for name in want.columns:
        if pd.api.types.is_float_dtype(want[name]):
            np.testing.assert_allclose(got[name], want[name], rtol=1e-12, atol=0, err_msg=name)
        else:
            assert got[name].tolist() == want[name].tolist(), name
