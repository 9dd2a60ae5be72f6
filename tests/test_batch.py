"""The vectorized batch core (ivigmeta.batching.run) against metafor and against `pool` group by group.

* metafor: tests/reference/metafor.json (`rma` for every measure x estimator x z/knha, `rma_mh`,
  `rma_peto`), all seven reference datasets pooled in one batch call per option combination.
* pool: every option combination the scalar core offers (its own registries, so the comparison
  grows as estimators land), on the reference datasets plus groups with k = 1, zero cells, double
  zeros, all studies excluded and bad rows.

Tolerances: closed-form quantities rel 1e-10; iterative estimators (REML, ML, PM) rel 1e-8, with an
absolute floor for tau² at the zero boundary, where both programs stop at a few 1e-11.
"""

from __future__ import annotations

import inspect
import io
import json
import math
import re

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT

from ivigmeta.batching import run as core
from ivigmeta.batching.run import BatchOptions, batch_pool
from ivigmeta.core.effects import compute_effects
from ivigmeta.core.pooling import CI_METHODS, COMMON_METHODS, fit
from ivigmeta.core.tau2 import TAU2_METHODS
from ivigmeta.errors import DataError, IvigmetaError, ModelError
from ivigmeta.io.studies import parse_table
from ivigmeta.results import FitOptions

# batch pools 2x2 counts with these (the other measures are pool's, tests/test_measures.py)
MEASURES = ("RR", "OR", "RD")

REFERENCE = json.loads((ROOT / "tests" / "reference" / "metafor.json").read_text())
ITERATIVE = {"REML", "ML", "PM"}
CLOSED_REL = 1e-10
ITER_REL = 1e-8
TAU2_ABS = 1e-12


def reference_frame() -> pd.DataFrame:
    rows = []
    for name, ds in REFERENCE["datasets"].items():
        for r in ds["rows"]:
            rows.append(
                {
                    "dataset": name,
                    "study": r["slab"],
                    "treat_events": r["ai"],
                    "treat_total": r["n1i"],
                    "control_events": r["ci"],
                    "control_total": r["n2i"],
                }
            )
    return pd.DataFrame(rows)


REF_DF = reference_frame()


def close(actual, expected, rel, abs_=0.0) -> bool:
    """|actual - expected| <= max(rel |expected|, abs_); None (metafor NA) matches only NaN."""
    if expected is None:
        return actual is None or (isinstance(actual, float) and math.isnan(actual))
    if math.isnan(expected):  # e.g. no test under --ci hc
        return isinstance(actual, float) and math.isnan(actual)
    if math.isinf(expected):
        return actual == expected
    return abs(actual - expected) <= max(rel * abs(expected), abs_)


def theta_scale(value: float, measure: str) -> float:
    return math.log(value) if measure in ("RR", "OR") else value


# ------------------------------------------------------------------------------------------
# metafor


# metafor stops Fisher scoring when the step in tau² is below `threshold` = 1e-10 (absolute), so
# near the boundary its ML/REML values can be ~3e-10 from the optimum (up to ~1e-5 relative in the
# estimates: nielweise2007 RD, lau1992). ivigmeta converges to double precision and is compared
# with the `rma_tight` block (threshold 1e-15) when the fixture has it, else with `rma` at 1e-4.
FISHER = {"ML", "REML"}
HAS_TIGHT = "rma_tight" in REFERENCE
LOOSE_REL = 1e-4  # p-values amplify the difference (lau1992 RD REML: 4e-5)


def _rma_records(measure, method, test):
    block = "rma_tight" if method in FISHER and HAS_TIGHT else "rma"
    return [
        r
        for r in REFERENCE[block]
        if r["measure"] == measure and r["method"] == method and r["test"] == test
    ]


@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize("method", ["DL", "REML", "ML", "PM", "HE", "SJ"])  # metafor.json's
@pytest.mark.parametrize("test", ["z", "knha"])
def test_random_effects_match_metafor_rma(measure, method, test):
    """metafor: rma(yi, vi, method, test) + predict(), every reference dataset in one batch."""
    out = batch_pool(
        REF_DF,
        ["dataset"],
        BatchOptions(
            measure=measure, tau2_method=method, ci_method="hk" if test == "knha" else "z"
        ),
    ).set_index("dataset")
    rel = ITER_REL if method in ITERATIVE else CLOSED_REL
    if method in FISHER and not HAS_TIGHT:
        rel = LOOSE_REL
    records = _rma_records(measure, method, test)
    assert len(records) == len(REFERENCE["datasets"])
    for rec in records:
        row = out.loc[rec["dataset"]]
        assert row["status"] == "ok" and row["k"] == rec["k"]
        tau2_abs = TAU2_ABS if method not in FISHER or HAS_TIGHT else 1e-9
        assert close(row["tau2"], rec["tau2"], rel, tau2_abs), (rec["dataset"], "tau2")
        assert close(row["random_theta"], rec["beta"], rel, 1e-13), rec["dataset"]
        assert close(row["random_se"], rec["se"], rel), rec["dataset"]
        assert close(row["random_p_value"], rec["pval"], rel), rec["dataset"]
        for ours, theirs in (
            ("random_ci_low", "ci_lb"),
            ("random_ci_high", "ci_ub"),
            ("random_pi_low", "pi_lb"),
            ("random_pi_high", "pi_ub"),
        ):
            assert close(theta_scale(row[ours], measure), rec[theirs], rel, 1e-13), (
                rec["dataset"],
                ours,
            )
        assert close(row["q"], rec["QE"], CLOSED_REL)
        assert close(row["q_p_value"], rec["QEp"], CLOSED_REL)
        i2_abs = 1e-4 if rel == LOOSE_REL else 1e-9  # percent; metafor stops at tau2 ~ 4e-11
        assert close(row["i2"], rec["I2"], rel, i2_abs), (rec["dataset"], "I2")
        assert row["df"] == rec["k"] - 1


@pytest.mark.parametrize("measure", MEASURES)
def test_common_effect_matches_metafor_fe(measure):
    """metafor: rma(yi, vi, method = "FE")."""
    out = batch_pool(REF_DF, ["dataset"], BatchOptions(measure=measure)).set_index("dataset")
    for rec in _rma_records(measure, "FE", "z"):
        row = out.loc[rec["dataset"]]
        assert close(row["common_theta"], rec["beta"], CLOSED_REL)
        assert close(row["common_se"], rec["se"], CLOSED_REL)
        assert close(row["common_p_value"], rec["pval"], CLOSED_REL)
        assert close(theta_scale(row["common_ci_low"], measure), rec["ci_lb"], CLOSED_REL)
        assert close(theta_scale(row["common_ci_high"], measure), rec["ci_ub"], CLOSED_REL)


@pytest.mark.parametrize("measure", MEASURES)
def test_mantel_haenszel_matches_metafor_rma_mh(measure):
    """metafor: rma.mh(measure, ai, n1i, ci, n2i) (raw counts; double zeros in, weight 0 for RR/OR)."""
    out = batch_pool(
        REF_DF, ["dataset"], BatchOptions(measure=measure, common_method="MH")
    ).set_index("dataset")
    records = [r for r in REFERENCE["rma_mh"] if r["measure"] == measure]
    assert records
    for rec in records:
        row = out.loc[rec["dataset"]]
        assert close(row["common_theta"], rec["beta"], CLOSED_REL), rec["dataset"]
        assert close(row["common_se"], rec["se"], CLOSED_REL), rec["dataset"]
        assert close(row["common_p_value"], rec["pval"], CLOSED_REL), rec["dataset"]
        assert close(theta_scale(row["common_ci_low"], measure), rec["ci_lb"], CLOSED_REL)
        assert close(theta_scale(row["common_ci_high"], measure), rec["ci_ub"], CLOSED_REL)


def test_peto_matches_metafor_rma_peto():
    """metafor: rma.peto(ai, n1i, ci, n2i)."""
    out = batch_pool(
        REF_DF, ["dataset"], BatchOptions(measure="OR", common_method="PETO")
    ).set_index("dataset")
    for rec in REFERENCE["rma_peto"]:
        row = out.loc[rec["dataset"]]
        assert close(row["common_theta"], rec["beta"], CLOSED_REL), rec["dataset"]
        assert close(row["common_se"], rec["se"], CLOSED_REL), rec["dataset"]
        assert close(row["common_p_value"], rec["pval"], CLOSED_REL), rec["dataset"]
        assert close(math.log(row["common_ci_low"]), rec["ci_lb"], CLOSED_REL)


def test_peto_needs_odds_ratios():
    with pytest.raises(ModelError, match="odds ratio"):
        batch_pool(REF_DF, ["dataset"], BatchOptions(measure="RR", common_method="PETO"))


# ------------------------------------------------------------------------------------------
# batch == pool on each group


EDGE_ROWS = [
    # group, study, a, n1, c, n2
    ("single", "only", 3, 10, 1, 12),
    ("zero_cells", "z1", 0, 20, 4, 21),
    ("zero_cells", "z2", 5, 5, 3, 9),
    ("zero_cells", "z3", 7, 30, 2, 28),
    ("double_zero", "d1", 0, 40, 0, 38),
    ("double_zero", "d2", 4, 33, 9, 35),
    ("double_zero", "d3", 2, 25, 6, 27),
    ("double_zero", "d4", 1, 50, 5, 52),
    ("identical", "i1", 5, 20, 5, 20),
    ("identical", "i2", 10, 40, 10, 40),
    ("identical", "i3", 15, 60, 15, 60),
    ("hetero", "h1", 2, 100, 30, 100),
    ("hetero", "h2", 40, 100, 5, 100),
    ("hetero", "h3", 20, 100, 20, 100),
    ("hetero", "h4", 9, 50, 1, 60),
    ("hetero", "h5", 33, 70, 12, 75),
    ("all_zero_one_arm", "q1", 0, 10, 3, 10),
    ("all_zero_one_arm", "q2", 0, 12, 5, 14),
    ("two", "t1", 12, 40, 6, 41),
    ("two", "t2", 15, 44, 20, 43),
    ("bad_text", "b1", 3, 10, 1, 12),
    ("bad_text", "b2", "x", 10, 1, 12),
    ("bad_text", "b3", 4, 11, 2, 13),
    ("bad_excess", "e1", 12, 10, 1, 12),
    ("bad_excess", "e2", 2, 10, 1, 12),
    ("bad_missing", "m1", 2, 10, 1, 12),
    ("bad_missing", "m2", 2, "", 1, 12),
    ("bad_fraction", "f1", 2.5, 10, 1, 12),
    ("bad_fraction", "f2", 2, 10, 1, 12),
    ("bad_zero_total", "zt1", 0, 0, 1, 12),
    ("bad_zero_total", "zt2", 1, 10, 1, 12),
    ("bad_negative", "n1", -1, 10, 1, 12),
    ("bad_negative", "n2", 1, 10, 1, 12),
]

HEADER = "group,study,treat_events,treat_total,control_events,control_total"


def edge_csv() -> str:
    lines = [HEADER]
    for name, ds in REFERENCE["datasets"].items():
        for r in ds["rows"]:
            lines.append(f"{name},{r['slab']},{r['ai']},{r['n1i']},{r['ci']},{r['n2i']}")
    for row in EDGE_ROWS:
        lines.append(",".join(str(x) for x in row))
    return "\n".join(lines) + "\n"


EDGE_CSV = edge_csv()


def edge_frame() -> pd.DataFrame:
    """The table as the batch reader gives it (row numbers and text kept)."""
    chunks = core.ChunkReader("-", ["group"], name="batch.csv")._chunks(
        io.BytesIO(EDGE_CSV.encode())
    )
    return core.Rows.concat(list(chunks)).to_frame()


def groups_as_tables() -> dict[str, str]:
    """Each group as its own CSV text, as someone running `pool` on it would write it."""
    out: dict[str, list[str]] = {}
    for line in EDGE_CSV.splitlines()[1:]:
        group, rest = line.split(",", 1)
        out.setdefault(group, [HEADER.split(",", 1)[1]]).append(rest)
    return {g: "\n".join(lines) + "\n" for g, lines in out.items()}


GROUP_TABLES = groups_as_tables()
EDGE_DF = edge_frame()


POOL_HAS_DOUBLE_ZERO_OPTION = "keep_double_zero" in inspect.signature(compute_effects).parameters


def pool_group(text: str, measure, cc_policy, tau2, ci, common, keep_double_zero=True):
    """`pool` on one group: a fit, or the error it raises."""
    try:
        table = parse_table(text, "group.csv")
        extra = {"keep_double_zero": keep_double_zero} if POOL_HAS_DOUBLE_ZERO_OPTION else {}
        es = compute_effects(table.studies, measure=measure, cc_policy=cc_policy, **extra)
        return fit(es, FitOptions(tau2_method=tau2, ci_method=ci, common_method=common))
    except IvigmetaError as exc:
        return exc


def _after_location(message: str) -> str:
    """'file, row N, column 'x': what' -> 'column 'x': what' (row numbers differ by file)."""
    return message.split(", ", 2)[-1] if ", row " in message else message


def assert_matches_pool(row: dict, ma, rel: float) -> None:
    if isinstance(ma, DataError):
        assert row["status"] == "error"
        assert _after_location(row["reason"]) == _after_location(str(ma))
        return
    if isinstance(ma, ModelError):
        assert row["status"] == "error"
        # Rows are the batch file's in batch and the group's own file's in pool.
        assert re.sub(r"row \d+", "row N", row["reason"]) == re.sub(r"row \d+", "row N", str(ma))
        return
    assert row["k"] == ma.k
    assert row["n_excluded"] == len(ma.effects.excluded)
    if not ma.pooled:
        assert row["status"] == "single"
        assert all(math.isnan(row[c]) for c in core.FLOAT_COLUMNS)
        assert pd.isna(row["df"])
        return
    assert row["status"] == "ok"
    c, r, h = ma.common, ma.random, ma.heterogeneity
    pairs = [
        ("common_theta", c.theta),
        ("common_se", c.se),
        ("common_estimate", c.estimate),
        ("common_ci_low", c.ci_low),
        ("common_ci_high", c.ci_high),
        ("common_p_value", c.p_value),
        ("random_theta", r.theta),
        ("random_se", r.se),
        ("random_estimate", r.estimate),
        ("random_ci_low", r.ci_low),
        ("random_ci_high", r.ci_high),
        ("random_p_value", r.p_value),
        ("random_pi_low", r.pi_low),
        ("random_pi_high", r.pi_high),
        ("q", h.q),
        ("q_p_value", h.p_value),
        ("i2", h.i2),
    ]
    for name, expected in pairs:
        assert close(row[name], expected, rel, 1e-14), (name, row[name], expected)
    assert close(row["tau2"], h.tau2, rel, TAU2_ABS)
    assert row["df"] == h.df


#: hc's interval integrates numerically per group and does not depend on --tau2: two suffice
_TAU2_CI = [
    (t, c) for t in sorted(TAU2_METHODS) for c in CI_METHODS if c != "hc" or t in ("DL", "REML")
]


@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize(("tau2", "ci"), _TAU2_CI)
@pytest.mark.parametrize("common", sorted(COMMON_METHODS))
def test_batch_equals_pool_on_each_group(measure, tau2, ci, common):
    options = BatchOptions(measure=measure, tau2_method=tau2, ci_method=ci, common_method=common)
    probe = pool_group(GROUP_TABLES["two"], measure, "only0", tau2, ci, common)
    # an option combination pool refuses: so does batch (a group whose estimator does not
    # converge is that group's error, below)
    if isinstance(probe, ModelError) and "did not converge" not in str(probe):
        with pytest.raises(ModelError):
            batch_pool(EDGE_DF, ["group"], options, source="batch.csv")
        return
    out = batch_pool(EDGE_DF, ["group"], options, source="batch.csv")
    assert list(out["group"]) == list(GROUP_TABLES)  # one row per group, first-appearance order
    rows = out.set_index("group").to_dict("index")
    rel = ITER_REL if tau2 in ITERATIVE else CLOSED_REL
    for group, text in GROUP_TABLES.items():
        assert_matches_pool(rows[group], pool_group(text, measure, "only0", tau2, ci, common), rel)


@pytest.mark.parametrize("cc_policy", ["all", "none"])
@pytest.mark.parametrize("measure", MEASURES)
def test_batch_equals_pool_with_other_continuity_policies(cc_policy, measure):
    options = BatchOptions(measure=measure, cc_policy=cc_policy)
    out = batch_pool(EDGE_DF, ["group"], options, source="batch.csv").set_index("group")
    rows = out.to_dict("index")
    for group, text in GROUP_TABLES.items():
        ma = pool_group(text, measure, cc_policy, "DL", "z", "IV")
        assert_matches_pool(rows[group], ma, CLOSED_REL)
    if cc_policy == "none" and measure != "RD":
        # zero cells excluded: the group whose every study has a zero cell has no usable study
        row = rows["all_zero_one_arm"]
        assert row["status"] == "error" and row["reason"].startswith("no usable studies")


@pytest.mark.skipif(not POOL_HAS_DOUBLE_ZERO_OPTION, reason="compute_effects keeps double zeros")
@pytest.mark.parametrize("measure", MEASURES)
def test_batch_equals_pool_excluding_double_zeros(measure):
    options = BatchOptions(measure=measure, keep_double_zero=False)
    rows = (
        batch_pool(EDGE_DF, ["group"], options, source="batch.csv")
        .set_index("group")
        .to_dict("index")
    )
    for group, text in GROUP_TABLES.items():
        ma = pool_group(text, measure, "only0", "DL", "z", "IV", keep_double_zero=False)
        assert_matches_pool(rows[group], ma, CLOSED_REL)


@pytest.mark.parametrize("measure", MEASURES)
def test_excluding_double_zeros_equals_leaving_them_out(measure):
    """keep_double_zero=False: as if the double-zero rows were not there, and counted (RR/OR)."""
    events = EDGE_DF[["treat_events", "control_events"]].apply(pd.to_numeric, errors="coerce")
    dz = (events["treat_events"] == 0) & (events["control_events"] == 0)
    assert dz.sum() == 2  # nielweise2007's Yucel 2004 and the double_zero group's d1
    dropped = batch_pool(EDGE_DF, ["group"], BatchOptions(measure=measure, keep_double_zero=False))
    without = batch_pool(EDGE_DF[~dz], ["group"], BatchOptions(measure=measure))
    kept = batch_pool(EDGE_DF, ["group"], BatchOptions(measure=measure))
    if measure == "RD":  # a risk difference of 0 is estimable: nothing changes
        pd.testing.assert_frame_equal(dropped, kept)
        return
    cols = [c for c in core.RESULT_COLUMNS if c != "n_excluded"]
    pd.testing.assert_frame_equal(dropped[cols], without[cols])
    assert (dropped["n_excluded"] - without["n_excluded"]).sum() == 2
    assert not kept[cols].equals(dropped[cols])


def test_bad_rows_are_reported_per_group_with_file_row_numbers():
    out = batch_pool(EDGE_DF, ["group"], source="batch.csv").set_index("group")
    bad = out[out["status"] == "error"]
    assert set(bad.index) == {g for g in GROUP_TABLES if g.startswith("bad_")}
    # The reason names the batch file's own row: header = row 1.
    line = next(i for i, ln in enumerate(EDGE_CSV.splitlines(), start=1) if ",b2," in ln)
    assert bad.loc["bad_text", "reason"] == (
        f"batch.csv, row {line}, column 'treat_events': 'x' is not a number (expected a whole number)"
    )
    assert (out.loc[[g for g in out.index if g not in bad.index], "status"] != "error").all()


def test_undefined_mantel_haenszel_is_a_group_error_as_in_pool():
    """No events in the treated arm of any study: pool raises, batch reports that group only."""
    out = batch_pool(EDGE_DF, ["group"], BatchOptions(common_method="MH")).set_index("group")
    row = out.loc["all_zero_one_arm"]
    assert row["status"] == "error"
    assert (
        row["reason"]
        == "the Mantel-Haenszel risk ratio is undefined: an arm has no events in any study"
    )
    assert math.isnan(row["random_theta"]) and math.isnan(row["common_theta"])
    assert out.loc["hetero", "status"] == "ok"


def test_groups_converge_each_on_its_own():
    """REML iterates all groups together; each result equals the group fitted alone."""
    together = batch_pool(REF_DF, ["dataset"], BatchOptions(tau2_method="REML")).set_index(
        "dataset"
    )
    for name in REFERENCE["datasets"]:
        alone = batch_pool(
            REF_DF[REF_DF["dataset"] == name], ["dataset"], BatchOptions(tau2_method="REML")
        )
        for col in ("tau2", "random_theta", "random_se"):
            assert together.loc[name, col] == alone[col].iloc[0]


def test_composite_group_key_and_column_order():
    df = REF_DF.assign(part=np.where(REF_DF.index % 2 == 0, "even", "odd"))
    out = batch_pool(df, ["dataset", "part"])
    assert list(out.columns) == ["dataset", "part", *core.RESULT_COLUMNS]
    assert len(out) == df.groupby(["dataset", "part"]).ngroups
    assert out["k"].sum() + out["n_excluded"].sum() == len(df)


def test_result_columns_are_the_public_contract():
    assert core.RESULT_COLUMNS == (
        "k", "common_theta", "common_se", "common_estimate", "common_ci_low", "common_ci_high",
        "common_p_value", "random_theta", "random_se", "random_estimate", "random_ci_low",
        "random_ci_high", "random_p_value", "random_pi_low", "random_pi_high", "q", "df",
        "q_p_value", "i2", "tau2", "n_excluded", "status", "reason",
    )  # fmt: skip


def test_unknown_options_and_missing_columns_are_errors():
    with pytest.raises(ModelError, match="tau² estimator"):
        batch_pool(REF_DF, ["dataset"], BatchOptions(tau2_method="XX"))
    with pytest.raises(DataError, match="no group column 'nope'"):
        batch_pool(REF_DF, ["nope"])
    with pytest.raises(DataError, match="required column"):
        batch_pool(REF_DF.drop(columns=["treat_total"]), ["dataset"])


# ------------------------------------------------------------------------------------------
# streaming


def frames(results) -> pd.DataFrame:
    """Streamed results (one BatchResult per chunk) as one DataFrame."""
    return pd.concat([r.to_frame() for r in results], ignore_index=True)


def _sorted(df: pd.DataFrame, keys) -> pd.DataFrame:
    return df.sort_values(keys, kind="stable", ignore_index=True)


@pytest.mark.parametrize("chunk_rows", [7, 41, 1000])
def test_streaming_grouped_input_in_chunks_equals_one_pass(chunk_rows):
    """A group split across chunks is joined with the next chunk."""
    whole = batch_pool(EDGE_DF, ["group"], source="batch.csv")
    reader = core.ChunkReader("-", ["group"], chunk_rows, name="batch.csv")
    chunks = reader._chunks(io.BytesIO(EDGE_CSV.encode()))
    streamed = frames(core.stream_batch(chunks, ["group"], source="batch.csv"))
    pd.testing.assert_frame_equal(streamed, whole)


def test_streaming_detects_groups_that_come_back():
    shuffled = EDGE_DF.sample(frac=1.0, random_state=3).reset_index(drop=True)
    chunks = [shuffled.iloc[i : i + 10] for i in range(0, len(shuffled), 10)]
    with pytest.raises(core.NotGrouped, match="not grouped"):
        list(core.stream_batch(chunks, ["group"]))


@pytest.mark.parametrize("partitions", [1, 3, 16])
def test_unsorted_input_through_spill_files_equals_one_pass(tmp_path, partitions):
    shuffled = EDGE_DF.sample(frac=1.0, random_state=5).reset_index(drop=True)
    chunks = [shuffled.iloc[i : i + 7] for i in range(0, len(shuffled), 7)]
    parts = core.partition_batch(
        chunks, ["group"], None, "batch.csv", 20, partitions, str(tmp_path)
    )
    got = _sorted(frames(parts), ["group"])
    want = _sorted(batch_pool(EDGE_DF, ["group"], source="batch.csv"), ["group"])
    pd.testing.assert_frame_equal(got, want)
    assert list(tmp_path.iterdir()) == []  # spill files removed


def test_reader_numbers_rows_like_load_table_and_flags_extra_fields():
    text = HEADER + "\nA,s1,1,10,2,10\n\nA,s2,x,10,2,10\nB,s3,1,10,2,10,surplus\nB,s4,1,10,2,10\n"
    reader = core.ChunkReader("-", ["group"], 2, name="t.csv")
    frame = core.Rows.concat(list(reader._chunks(io.BytesIO(text.encode())))).to_frame()
    assert frame[core.ROW_COLUMN].tolist() == [2, 4, 5, 6]  # the blank row 3 is skipped
    out = batch_pool(frame, ["group"], source="t.csv").set_index("group")
    assert out.loc["A", "reason"].startswith("t.csv, row 4, column 'treat_events': 'x'")
    assert (
        out.loc["B", "reason"]
        == "t.csv, row 5: 7 fields but the header has 6 (value 'surplus' has no column)"
    )


def test_chi_square_tail_matches_the_scalar_one():
    """The vectorized closed form for whole-number df against distributions.chi2_sf."""
    from ivigmeta.core.distributions import chi2_sf, chi2_sf_array

    xs, dfs = [], []
    for df in [*range(1, 40), 99, 100, 501, 2000]:
        for x in (1e-9, 0.3, df / 2, df, df + 3, 3 * df + 40, 700.0, 1500.0, 4000.0):
            xs.append(x)
            dfs.append(float(df))
    got = chi2_sf_array(np.array(xs), np.array(dfs))
    for x, df, p in zip(xs, dfs, got):
        assert close(p, chi2_sf(x, df), 1e-11, 1e-300), (x, df)
    edge = chi2_sf_array(np.array([0.0, np.inf]), np.array([4.0, 4.0]))
    assert edge.tolist() == [1.0, 0.0]


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_fisher_scoring_with_global_search_matches_the_scalar_estimator(method):
    """Random small groups (boundary optima, oscillating scoring, multimodal likelihoods): fitted
    all at once, every group gets the value it gets when fitted on its own (finished groups
    leave the working set without disturbing the others)."""
    from ivigmeta.core.groups import Groups
    from ivigmeta.core.models import InterceptModels
    from ivigmeta.core.tau2 import TAU2_METHODS, fit_tau2

    rng = np.random.default_rng(3)
    sizes = rng.integers(2, 8, 300)
    n = int(sizes.sum())
    y = np.round(rng.normal(0, 1, n) * rng.choice([0.1, 1, 5], n), 2)
    v = rng.choice([0.01, 0.1, 1, 0.125, 3], n) * rng.uniform(0.5, 2, n)
    # The fuzz tests' case where REML scoring oscillates for 1000 iterations.
    sizes = np.append(sizes, 5)
    y = np.append(y, [0.0, 0.0, 0.0, 0.0, 1.0])
    v = np.append(v, [1.0, 1.0, 1.0, 1.0, 0.125])
    g = Groups(sizes)
    fitted = fit_tau2(InterceptModels(y, v, g), method)
    tau2 = fitted.tau2
    assert fitted.converged.all()
    for i, (start, size) in enumerate(zip(g.starts, sizes)):
        est = TAU2_METHODS[method](
            list(y[start : start + size]), list(v[start : start + size]), None
        )
        assert est.converged
        assert close(tau2[i], est.tau2, ITER_REL, TAU2_ABS), (i, tau2[i], est.tau2)
