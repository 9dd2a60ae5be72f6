"""Property: `batch` pools every kind of table as `pool` pools each of its groups alone.

The one-engine property of tests/test_batch_equals_pool.py, for the tables beyond 2x2 counts:
means and SDs (MD, SMD, SMDH, ROM, CVR, VR, RPB, RBIS), events over person-time (IRR, IRD, IRSD), single-group
events and totals (PR, PLO, PAS, PFT, PLN), correlations (ZCOR, COR, UCOR), one group's means
(MN, MNLN, CVLN, SDLN), one group's pre-post changes (MC, SMCC, SMCR, SMCRH, ROMC), one group's rates (IRLN, IR,
IRS, IRFT), 2x2 counts with AS, PHI, YUQ, YUY, OR2DN, OR2DL and the matched-pairs measures (MPRD,
MPRR, MPOR, MPORC, MPPETO), tables of given effects
(yi/vi, theta/se, estimate with CI) and count tables where some rows give an effect instead.
Each is written as a CSV file in ivigmeta's, metafor's or meta's column names, with some bad
rows (SD 0, n 1, time 0, events above the total, NA, a word); batch reads the whole file in
chunks (ivigmeta.io.chunks.ChunkReader, the CLI's reader) and pools it with
ivigmeta.batching.run.stream_batch; pool reads each group's own file (parse_table,
compute_effects, fit). They agree to relative 1e-12 (the tolerance and comparison of
test_batch_equals_pool.differences), bad rows with pool's message.
"""

from __future__ import annotations

import csv
import io

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_batch_equals_pool import differences

from ivigmeta.batching import run as core
from ivigmeta.core.effects import compute_effects
from ivigmeta.core.measures import KINDS, PAIRED
from ivigmeta.core.pooling import fit
from ivigmeta.errors import DataError, IvigmetaError
from ivigmeta.io.studies import parse_table
from ivigmeta.results import FitOptions

GROUP = "meta"

#: kind -> naming convention -> data column names
NAMES = {
    "continuous": {
        "ivigmeta": ("treat_mean", "treat_sd", "treat_n", "control_mean", "control_sd", "control_n"),
        "metafor": ("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i"),
        "meta": ("mean.e", "sd.e", "n.e", "mean.c", "sd.c", "n.c"),
    },
    "incidence": {
        "ivigmeta": ("treat_events", "treat_time", "control_events", "control_time"),
        "metafor": ("x1i", "t1i", "x2i", "t2i"),
        "meta": ("event.e", "time.e", "event.c", "time.c"),
    },
    "proportion": {
        "ivigmeta": ("events", "total"),
        "metafor": ("xi", "ni"),
        "meta": ("event", "n"),
    },
    # meta's metacor (cor, n) and metamean (mean, sd, n) names are ivigmeta's
    "correlation": {"ivigmeta": ("cor", "n"), "metafor": ("ri", "ni")},
    "mean": {"ivigmeta": ("mean", "sd", "n"), "metafor": ("mi", "sdi", "ni")},
    "change": {
        "ivigmeta": ("mean_post", "mean_pre", "sd_post", "sd_pre", "n", "r"),
        "metafor": ("m1i", "m2i", "sd1i", "sd2i", "ni", "ri"),
    },
    "rate": {
        "ivigmeta": ("events", "time"),
        "metafor": ("xi", "ti"),
        "meta": ("event", "time"),
    },
    "partial": {"ivigmeta": ("t", "n", "predictors"), "metafor": ("ti", "ni", "mi")},
    "partial_r2": {
        "ivigmeta": ("t", "n", "predictors", "r2"),
        "metafor": ("ti", "ni", "mi", "r2i"),
    },
    "counts": {
        "ivigmeta": ("treat_events", "treat_total", "control_events", "control_total"),
        "metafor": ("ai", "n1i", "ci", "n2i"),
    },
    "vi": {"ivigmeta": ("yi", "vi")},
    "se": {"ivigmeta": ("theta", "se")},
    "ci": {"ivigmeta": ("estimate", "ci_low", "ci_high")},
    "mixed": {"ivigmeta": ("treat_events", "treat_total", "control_events", "control_total", "yi", "vi")},
}  # fmt: skip

#: kind -> the measures that fit it
MEASURES = {
    "continuous": KINDS["continuous"],
    "incidence": KINDS["incidence"],
    "proportion": KINDS["proportion"],
    "correlation": KINDS["correlation"],
    "mean": KINDS["mean"],
    "change": KINDS["change"],
    "rate": KINDS["rate"],
    "partial": KINDS["partial"],
    "partial_r2": KINDS["partial_r2"],
    "counts": ("AS", "RR", "PHI", "YUQ", "YUY", "OR2DN", "OR2DL", *PAIRED, "PBIT", "RTET"),
    "vi": ("RR", "OR", "RD"),
    "se": ("RR", "OR", "RD"),
    "ci": ("RR", "OR", "RD"),
    "mixed": ("RR", "OR", "RD"),
}

#: a bad cell now and then: pool's message must come back for its group
BAD = st.sampled_from(["", "NA", "abc", "0", "-1", "1e400", "8_2"])


def _num(draw, low: float, high: float, places: int = 3) -> str:
    return f"{draw(st.floats(low, high, allow_nan=False)):.{places}f}"


@st.composite
def cells(draw, kind: str, measure: str) -> list[str]:
    """One study row's data cells (mostly valid)."""
    if kind == "continuous":
        row = []
        for _ in range(2):
            row += [
                _num(draw, -50, 50) if draw(st.booleans()) else _num(draw, 1, 50),
                _num(draw, 0.1, 30),
                str(draw(st.integers(2, 200))),
            ]
    elif kind == "incidence":
        row = [str(draw(st.integers(0, 40))), _num(draw, 1, 900, 1)]
        row += [str(draw(st.integers(0, 40))), _num(draw, 1, 900, 1)]
    elif kind == "proportion":
        n = draw(st.integers(1, 300))
        row = [str(draw(st.integers(0, n))), str(n)]
    elif kind == "correlation":
        # r = -1 or 1 now and then (ZCOR infinite, COR and UCOR with zero variance: excluded);
        # n from 4 (UCOR undefined below 5)
        r = draw(st.sampled_from(["-1", "1", "0"])) if draw(st.integers(0, 9)) == 0 else None
        row = [r or _num(draw, -0.99, 0.99), str(draw(st.integers(4, 300)))]
        if draw(st.integers(0, 15)) == 0:  # beyond [-1, 1], or n <= 3: pool's error
            row[draw(st.integers(0, 1))] = draw(st.sampled_from(["1.5", "-1.01", "3"]))
    elif kind == "mean":
        mean = _num(draw, -50, 50) if draw(st.integers(0, 4)) == 0 else _num(draw, 0.5, 80)
        row = [mean, _num(draw, 0.1, 30), str(draw(st.integers(2, 200)))]
    elif kind == "rate":
        row = [str(draw(st.integers(0, 40))), _num(draw, 1, 900, 1)]
    elif kind == "change":
        # means of either sign now and then (ROMC undefined), n = 2 (no SMCC/SMCR correction),
        # r = 1 (MC and SMCC undefined with equal SDs)
        row = [
            _num(draw, -20, 60) if draw(st.integers(0, 4)) == 0 else _num(draw, 0.5, 60),
            _num(draw, 0.5, 60),
            _num(draw, 0.1, 20),
            _num(draw, 0.1, 20),
            str(draw(st.integers(2, 200))),
            draw(st.sampled_from(["1", "0"]))
            if draw(st.integers(0, 9)) == 0
            else _num(draw, -0.95, 0.95),
        ]
        if draw(st.integers(0, 15)) == 0:  # r beyond [-1, 1]: pool's error
            row[5] = draw(st.sampled_from(["1.5", "-1.01"]))
    elif kind in ("partial", "partial_r2"):
        # now and then n <= predictors + 1 (no degrees of freedom: pool's error)
        m = draw(st.integers(0, 20))
        n = (
            draw(st.integers(1, m + 2))
            if draw(st.integers(0, 15)) == 0
            else m + 2 + draw(st.integers(0, 300))
        )
        row = [_num(draw, -8, 8, 2), str(n), str(m)]
        if kind == "partial_r2":  # now and then an R² beyond [0, 1]: pool's error
            bad = draw(st.integers(0, 15)) == 0
            row.append(draw(st.sampled_from(["1.2", "-0.1"])) if bad else _num(draw, 0, 1))
    elif kind in ("counts", "mixed"):
        n1, n2 = draw(st.integers(1, 200)), draw(st.integers(1, 200))
        row = [str(draw(st.integers(0, n1))), str(n1), str(draw(st.integers(0, n2))), str(n2)]
        if kind == "mixed":
            row += ["", ""]
            if draw(st.integers(0, 3)) == 0:  # a row that gives its effect instead
                row = ["", "", "", "", _num(draw, -2, 2), _num(draw, 0.001, 1, 4)]
    elif kind in ("vi", "se"):
        row = [_num(draw, -2, 2), _num(draw, 0.001, 1, 4)]
    elif measure == "RD":  # an estimate with its 95% CI
        est = draw(st.floats(-0.5, 0.5))
        low, high = est - draw(st.floats(0.01, 0.4)), est + draw(st.floats(0.01, 0.4))
        row = [f"{est:.4f}", f"{low:.4f}", f"{high:.4f}"]
    else:  # on the ratio scale
        est = draw(st.floats(0.2, 5))
        low, high = est / draw(st.floats(1.05, 4)), est * draw(st.floats(1.05, 4))
        row = [f"{est:.4f}", f"{low:.4f}", f"{high:.4f}"]
    if draw(st.integers(0, 15)) == 0:
        row[draw(st.integers(0, len(row) - 1))] = draw(BAD)
    return row


#: every (kind of table, measure) pair the property runs on
CASES = [(kind, m) for kind in NAMES for m in MEASURES[kind]]


@st.composite
def tables(draw, kind: str, measure: str):
    convention = draw(st.sampled_from(sorted(NAMES[kind])))
    ngroups = draw(st.integers(1, 4))
    groups = [
        [draw(cells(kind, measure)) for _ in range(draw(st.integers(1, 7)))] for _ in range(ngroups)
    ]
    opts = core.BatchOptions(
        measure=measure,
        tau2_method=draw(st.sampled_from(["DL", "REML", "PM", "HE", "SJ"])),
        ci_method=draw(st.sampled_from(["z", "hk"])),
        level=draw(st.sampled_from([0.95, 0.9])),
    )
    return NAMES[kind][convention], groups, opts, draw(st.integers(1, 6))


def _csv(header: list[str], rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([header, *rows])
    return out.getvalue()


def pool_group(text: str, name: str, opts: core.BatchOptions):
    es = None
    try:
        table = parse_table(text, name)
        es = compute_effects(table.studies, measure=opts.measure, cc=opts.cc)
        return es, fit(
            es, FitOptions(tau2_method=opts.tau2_method, ci_method=opts.ci_method, level=opts.level)
        )
    except IvigmetaError as exc:
        return es, exc


def batch_file(path, opts: core.BatchOptions, chunk_rows: int) -> dict[str, dict]:
    reader = core.ChunkReader(str(path), [GROUP], chunk_rows)
    results = list(core.stream_batch(reader, [GROUP], opts, source=str(path)))
    frame = pd.concat([r.to_frame() for r in results], ignore_index=True)
    return frame.set_index(GROUP).to_dict("index")


@pytest.mark.parametrize("kind, measure", CASES)
def test_batch_pools_every_kind_of_table_as_pool(tmp_path, kind, measure):
    @settings(
        max_examples=12,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(case=tables(kind, measure))
    def check(case):
        names, groups, opts, chunk_rows = case
        header = [GROUP, "study", *names]
        rows = [
            [f"g{i}", f"g{i}s{j}", *cells_]
            for i, group in enumerate(groups)
            for j, cells_ in enumerate(group)
        ]
        path = tmp_path / "long.csv"
        path.write_text(_csv(header, rows))
        got = batch_file(path, opts, chunk_rows)
        assert list(got) == [f"g{i}" for i in range(len(groups))]
        for i in range(len(groups)):
            own = [r for r in rows if r[0] == f"g{i}"]
            es, ma = pool_group(_csv(header, own), f"g{i}.csv", opts)
            diff = differences(got[f"g{i}"], es, ma)
            assert not diff, f"{opts} g{i} {own}: " + "; ".join(map(str, diff))

    check()


# ------------------------------------------------------------------------------------------
# whole-table checks


def _write(tmp_path, text: str):
    path = tmp_path / "long.csv"
    path.write_text(text)
    return str(path)


CONTINUOUS = (
    f"{GROUP},study,m1i,sd1i,n1i,m2i,sd2i,n2i\n"
    "A,s1,10,2,20,9,2.5,22\nA,s2,11,3,30,9.5,2,28\nB,s3,5,1,15,5.5,1.2,14\nB,s4,6,1.5,40,5,1,41\n"
)


def test_a_measure_that_does_not_fit_the_columns_names_both(run, tmp_path):
    result = run("batch", _write(tmp_path, CONTINUOUS), "-g", GROUP, "--measure", "OR")
    assert result.exit_code == 1
    assert "--measure OR does not fit the columns" in result.stderr
    assert "continuous data" in result.stderr and "MD, SMD, SMDH, ROM" in result.stderr


def test_mantel_haenszel_needs_counts(run, tmp_path):
    result = run("batch", _write(tmp_path, CONTINUOUS), "-g", GROUP, "--common", "MH")
    assert result.exit_code == 1
    assert "Mantel-Haenszel needs event counts" in result.stderr
    assert "continuous data" in result.stderr


def test_the_default_measure_follows_the_columns(run, tmp_path):
    out = run("batch", _write(tmp_path, CONTINUOUS), "-g", GROUP, "--format", "csv")
    assert out.exit_code == 0, out.stderr
    frame = pd.read_csv(io.StringIO(out.stdout))
    # MD is reported as is: the estimate is theta (a log measure would be exp(theta))
    assert list(frame["random_estimate"]) == list(frame["random_theta"])
    es, ma = pool_group(
        "study,m1i,sd1i,n1i,m2i,sd2i,n2i\ns1,10,2,20,9,2.5,22\ns2,11,3,30,9.5,2,28\n",
        "a.csv",
        core.BatchOptions(),
    )
    assert es.measure == "MD"
    assert frame["random_theta"][0] == pytest.approx(ma.random.theta, rel=1e-12)


def test_a_row_that_gives_another_measure_fails_its_group_with_pools_message(tmp_path):
    text = f"{GROUP},study,yi,vi,measure\nA,s1,0.1,0.02,OR\nA,s2,0.2,0.03,RR\nB,s3,0.1,0.02,RR\nB,s4,0.3,0.04,RR\n"
    got = batch_file(_write(tmp_path, text), core.BatchOptions(measure="RR"), 10)
    assert got["A"]["status"] == "error"
    assert "'OR' but the analysis measure is RR" in got["A"]["reason"]
    assert got["B"]["status"] == "ok" and got["B"]["k"] == 2
    with pytest.raises(DataError, match="'OR' but the analysis measure is RR"):
        table = parse_table(text, "t.csv")
        compute_effects(table.studies, measure="RR")


def test_peto_and_mh_fail_a_group_with_effect_rows_as_pool(tmp_path):
    text = (
        f"{GROUP},study,treat_events,treat_total,control_events,control_total,yi,vi\n"
        "A,s1,3,20,5,21,,\nA,s2,,,,,0.2,0.05\nA,s3,4,30,8,29,,\n"
        "B,s4,3,20,5,21,,\nB,s5,6,40,9,41,,\n"
    )
    got = batch_file(_write(tmp_path, text), core.BatchOptions(measure="OR", common_method="MH"), 2)
    own = (
        "study,treat_events,treat_total,control_events,control_total,yi,vi\n"
        "s1,3,20,5,21,,\ns2,,,,,0.2,0.05\ns3,4,30,8,29,,\n"
    )
    es = compute_effects(parse_table(own, "a.csv").studies, measure="OR")
    with pytest.raises(IvigmetaError) as pool_error:
        fit(es, FitOptions(common_method="MH"))
    assert got["A"]["status"] == "error"
    assert got["A"]["reason"] == str(pool_error.value)
    assert got["B"]["status"] == "ok"
