"""metafor's transformation functions (transf.*) against metafor 3.8-1
(tests/reference/metafor_transf.json, written by tests/reference/make_reference_transf.R): the
engine (ivigmeta.core.transforms), the API (ivigmeta.api.transf) and `ivigmeta transf`."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from tolerances import (
    TRANSF_CLOSED,
    TRANSF_INT_ABS,
    TRANSF_INT_METAFOR,
    TRANSF_INT_TIGHT,
)

from ivigmeta.api import transf, transform_names
from ivigmeta.cli.transf import NAMES
from ivigmeta.core import measures, transforms
from ivigmeta.core.transforms import TRANSFORMS
from ivigmeta.errors import DataError

REF = json.loads((Path(__file__).parent / "reference" / "metafor_transf.json").read_text())
RECORDS = REF["records"]
SPECIAL = {"Inf": math.inf, "-Inf": -math.inf, "NaN": math.nan, "NA": math.nan}
ARG_NAMES = {"n": "n", "time": "time", "pc": "pc", "n1": "n1", "n2": "n2"}


def _num(v):
    return SPECIAL[v] if isinstance(v, str) else float(v)


def _nums(vs):
    return np.array([_num(v) for v in vs])


def _args(rec):
    args = rec["args"] or {}
    return {k: (np.array(v, float) if isinstance(v, list) else v) for k, v in args.items()}


def _agree(ours, ref, rel, abs_floor=0.0):
    ours, ref = np.asarray(ours, float), np.asarray(ref, float)
    assert ours.shape == ref.shape
    same = (ours == ref) | (np.isnan(ours) & np.isnan(ref))
    with np.errstate(invalid="ignore"):
        near = np.abs(ours - ref) <= np.maximum(rel * np.abs(ref), abs_floor)
    return bool(np.all(same | near)), ours, ref


def _ids(records):
    return [f"{i}-{r['fun']}-{r['source']}" for i, r in enumerate(records)]


def test_every_metafor_function_is_here():
    """The reference lists metafor 3.8-1's transf.* functions (ls("package:metafor")): each is
    one of ivigmeta's, and the CLI's list (kept literal so --help imports no numpy) is the
    engine's."""
    assert REF["metafor_version"] == "3.8.1"
    assert {f"transf.{n}" for n in TRANSFORMS} == set(REF["functions"])
    assert NAMES == transform_names() == tuple(TRANSFORMS)
    assert {r["fun"] for r in RECORDS} == set(TRANSFORMS)


@pytest.mark.parametrize("rec", RECORDS, ids=_ids(RECORDS))
def test_engine_matches_metafor(rec):
    spec = TRANSFORMS[rec["fun"]]
    ours = spec(_nums(rec["x"]), **_args(rec))
    if "value_tight" in rec:
        ok, o, r = _agree(ours, _nums(rec["value_tight"]), TRANSF_INT_TIGHT, TRANSF_INT_ABS)
        assert ok, (o, r)
        ok, o, r = _agree(ours, _nums(rec["value"]), TRANSF_INT_METAFOR, TRANSF_INT_ABS)
    else:
        ok, o, r = _agree(ours, _nums(rec["value"]), TRANSF_CLOSED)
    assert ok, (o, r)


def test_metafor_own_pins():
    """The values tests/testthat/test_misc_transf.r pins (6 digits) hold, and its round trips."""
    assert transforms.rtoz(0.5) == pytest.approx(0.549306, abs=1e-6)
    assert transforms.ztor(transforms.rtoz(0.5)) == pytest.approx(0.5, rel=1e-15)
    assert transforms.pft(0.1, 10) == pytest.approx(0.373394, abs=1e-6)
    assert transforms.ipft(transforms.pft(0.1, 10), 10) == pytest.approx(0.1, rel=1e-12)
    assert transforms.ipft_hm(transforms.pft(0.1, 10), [10]) == pytest.approx(0.1, rel=1e-12)
    assert transforms.irft(0.1, 10) == pytest.approx(0.381721, abs=1e-6)
    assert transforms.iirft(transforms.irft(0.1, 10), 10) == pytest.approx(0.1, rel=1e-12)
    assert transforms.ztor_int(transforms.rtoz(0.5), 0.1) == pytest.approx(0.46663, abs=1e-5)
    assert transforms.exp_int(math.log(0.5), 0.1) == pytest.approx(0.525635, abs=1e-6)
    # over [-10, 10] the mean of a lognormal is exp(mu + tau²/2) to the last digits
    assert transforms.exp_int(math.log(0.5), 0.1, -10, 10) == pytest.approx(
        math.exp(math.log(0.5) + 0.05), rel=1e-13
    )
    assert transforms.ilogit_int(transforms.logit(0.1), 0.1) == pytest.approx(0.103591, abs=1e-6)


def test_integral_transforms_vectorize_and_handle_degenerate_inputs():
    x = np.array([[-1.0, 0.0], [0.5, 2.0]])
    out = transforms.exp_int(x, 0.2)
    assert out.shape == (2, 2)
    assert out == pytest.approx(np.exp(x + 0.1), rel=1e-12)  # exp(x + tau²/2), bounds +-10 tau
    assert transforms.ilogit_int(1.5, 0.0) == transforms.ilogit(1.5)  # tau² = 0: h(x) itself
    assert transforms.ztor_int(0.3, 0.0, -5, 5) == transforms.ztor(0.3)  # bounds unused then
    assert math.isnan(transforms.ztor_int(math.nan, 0.1))
    assert math.isnan(transforms.ztor_int(0.2, -0.1))
    assert transforms.ztor_int(0.0, 1.0) == pytest.approx(0.0, abs=1e-15)  # odd: exactly 0


def test_measures_back_transform_with_these_functions():
    """to_reported is the transf.* functions, bit for bit (the engine owns each formula once)."""
    t = np.linspace(-3, 3, 13)
    n = np.array([12.0, 40.0, 7.0])
    assert np.array_equal(measures.to_reported(t, "ZCOR"), transforms.ztor(t))
    assert np.array_equal(measures.to_reported(t, "PLO"), transforms.ilogit(t))
    assert np.array_equal(measures.to_reported(t, "PAS"), transforms.iarcsin(t))
    assert np.array_equal(measures.to_reported(t, "IRS"), transforms.isqrt(t))
    assert np.array_equal(measures.to_reported(t, "RR"), np.exp(t))
    assert np.array_equal(measures.to_reported(t, "PFT", n), transforms.ipft_hm(t, n))
    assert transforms.harmonic_mean(n) == pytest.approx(3 / (1 / 12 + 1 / 40 + 1 / 7), rel=1e-15)
    assert measures.reported_scalar(0.4, "PLO") == float(transforms.ilogit(0.4))
    for name in measures.REPORTED_BY.values():
        assert name in TRANSFORMS
    # escalc's forward transforms are these too
    r = np.array([-0.9, 0.0, 0.45])
    yi, _ = measures.correlation_effects(r, np.array([20.0, 30, 40]), "ZCOR")
    assert np.array_equal(yi, transforms.rtoz(r))
    x, size = np.array([3.0, 10, 1]), np.array([20.0, 25, 9])
    for m, fn in (("PLO", transforms.logit), ("PAS", transforms.arcsin)):
        yi, _, _ = measures.proportion_effects(x, size, m)
        assert np.array_equal(yi, fn(x / size))
    yi, _, _ = measures.proportion_effects(x, size, "PFT")
    assert np.array_equal(yi, transforms.freeman_tukey(x, size))


# ---------------------------------------------------------------------------------------------
# The API


def test_api_result_and_arguments():
    res = transf("transf.ipft.hm", [0.3, 0.5], n=[10, 20, 50])
    assert res.function == "ipft.hm" and res.metafor == "transf.ipft.hm"
    assert res.n == (10.0, 20.0, 50.0) and res.n_harmonic == pytest.approx(1 / (0.17 / 3))
    assert res.value == tuple(transforms.ipft_hm(np.array([0.3, 0.5]), [10, 20, 50]))
    d = res.to_dict()
    assert list(d) == ["function", "metafor", "description", "arguments", "values"]
    assert d["arguments"] == {"n": [10.0, 20.0, 50.0], "n_harmonic": res.n_harmonic}
    assert d["values"][1] == {"x": 0.5, "value": res.value[1]}
    one = transf("pft", 0.1, n=10)
    assert one.value == (float(transforms.pft(0.1, 10)),)
    per = transf("ipft", [0.3, 0.6], n=[5, 50])
    assert per.value == tuple(transforms.ipft(np.array([0.3, 0.6]), np.array([5.0, 50.0])))


@pytest.mark.parametrize(
    ("name", "values", "kwargs", "message"),
    [
        ("nope", [1], {}, "unknown transformation 'nope'"),
        ("rtoz", [0.2, 1.5], {}, r"transf\.rtoz: 1\.5 is outside its domain \[-1, 1\]"),
        ("logit", [-0.1], {}, r"outside its domain \[0, 1\]"),
        ("abt", [1.2], {}, r"outside its domain \[-inf, 1\]"),
        ("irft", [-1], {"time": 3}, r"outside its domain \[0, inf\]"),
        ("ztor", [math.nan], {}, "NaN is not a number"),
        ("ipft", [0.3], {}, r"transf\.ipft needs n"),
        ("ztor", [0.3], {"n": 4}, r"does not take n \(it takes no arguments\)"),
        ("pft", [0.1, 0.2, 0.3], {"n": [4, 5]}, "2 values for 3 to transform"),
        ("pft", [0.1], {"n": 0}, "0 is not positive"),
        ("ipft.hm", [0.1], {"n": [10, -2]}, "-2 is not positive"),
        ("dtorpb", [0.1], {"n1": 10}, "give both n1 and n2"),
        ("logortord", [0.1], {"pc": 1.5}, "between 0 and 1"),
        ("dtomd", [0.1], {"sd": math.inf}, "not a finite number"),
        ("exp.int", [0.0], {"tau2": -0.1}, "tau2 -0.1 is negative"),
        ("exp.int", [0.0], {"tau2": 1, "lower": 20}, r"range \[20, 10\] at 0 is empty"),
        ("ztor.int", [math.inf], {"tau2": 1}, "inf is not a finite number"),
    ],
)
def test_api_errors(name, values, kwargs, message):
    with pytest.raises(DataError, match=message):
        transf(name, values, **kwargs)


# ---------------------------------------------------------------------------------------------
# The command line


def test_cli_json_csv_and_table(run):
    out = run("transf", "ztor.int", "0.5493061443340548", "-1", "--tau2", "0.1", "-f", "json")
    assert out.exit_code == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["function"] == "ztor.int" and data["arguments"] == {"tau2": 0.1}
    rec = next(
        r for r in RECORDS if r["fun"] == "ztor.int" and r["args"] == {"tau2": 0.1}
    )  # x = ..., 0.549..., at tau² = 0.1
    want = dict(zip(rec["x"], rec["value_tight"]))
    assert data["values"][0]["value"] == pytest.approx(want[0.5493061443340548], rel=1e-12)
    assert data["values"][1]["value"] == pytest.approx(want[-1], rel=1e-12)

    out = run("transf", "logortorr", "-0.5", "0.4", "--pc", "0.2", "--pc", "0.3", "-f", "csv")
    assert out.exit_code == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "function,x,value,pc"
    assert lines[2].startswith("logortorr,0.4,") and lines[2].endswith(",0.3")
    assert float(lines[2].split(",")[2]) == float(transforms.logortorr(0.4, 0.3))

    out = run("transf", "ipft.hm", "0.3", "--n", "10", "--n", "20", "-f", "csv")
    assert out.stdout.splitlines()[0] == "function,x,value,n_harmonic"

    out = run("transf", "ilogit", "-2.197224577336219", "--ascii")
    assert out.exit_code == 0
    assert "transf.ilogit(x)" in out.stdout and "0.1" in out.stdout
    assert "Numbers to 7 significant digits" in out.stdout

    out = run("transf", "rtoz", "-1", "1", "-f", "json")
    assert [v["value"] for v in json.loads(out.stdout)["values"]] == [None, None]  # -inf, inf


def test_cli_negative_values_need_no_separator(run):
    out = run("transf", "ztor", "-0.5", "-3", "-1e-3", "-f", "csv")
    assert out.exit_code == 0, out.stderr
    xs = [float(line.split(",")[1]) for line in out.stdout.splitlines()[1:]]
    assert xs == [-0.5, -3.0, -1e-3]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["nope", "1"], 2, "'nope' is not one of"),
        (["ztor", "abc"], 2, "'abc' is not a valid float"),
        (["ztor"], 2, "Missing argument"),
        (["ipft", "0.3"], 2, "ipft needs --n"),
        (
            ["ztor", "0.3", "--tau2", "0.1"],
            2,
            r"--tau2 is not used by ztor \(it takes no options\)",
        ),
        (["pft", "0.3", "--time", "2"], 2, r"--time is not used by pft \(it takes --n\)"),
        (["rtoz", "1.5"], 1, r"Error: transf\.rtoz: 1\.5 is outside its domain \[-1, 1\]"),
        (["ztor", "nan"], 1, "NaN is not a number"),
        (["exp.int", "0", "--tau2", "-1"], 1, "tau2 -1 is negative"),
        (["pft", "0.1", "0.2", "0.3", "--n", "4", "--n", "5"], 1, "2 values for 3"),
    ],
)
def test_cli_errors(run, args, code, message):
    import re

    out = run("transf", *args)
    assert out.exit_code == code
    assert "Traceback" not in out.stderr
    errors = [x for x in out.stderr.splitlines() if x.startswith("Error:")]
    assert len(errors) == 1 and re.search(message, errors[0]), out.stderr


def test_cli_ignores_settings(run, tmp_path, monkeypatch):
    """A settings file's tau2 = "REML" (an estimator, for the analyses) and IVIGMETA_* are not
    transf's defaults; a [transf] table is an error naming the file."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ivigmeta.toml").write_text('tau2 = "REML"\n')
    monkeypatch.setenv("IVIGMETA_N", "7")
    out = run("transf", "exp.int", "0", "-f", "csv")
    assert out.exit_code == 0, out.stderr
    assert out.stdout.splitlines() == ["function,x,value", "exp.int,0.0,1.0"]
    (tmp_path / "ivigmeta.toml").write_text("[transf]\nn = 3\n")
    out = run("transf", "ztor", "0.5")
    assert out.exit_code == 1
    assert "ivigmeta.toml: [transf]: 'ivigmeta transf' takes no settings" in out.stderr


def test_config_says_transf_takes_no_settings(run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("IVIGMETA_TAU2", "REML")
    out = run("config", "transf")
    assert out.exit_code == 0
    assert out.stdout == (
        "'ivigmeta transf' takes no settings: its options come from the command line\n"
    )
    assert json.loads(run("config", "transf", "-f", "json").stdout)["settings"] == []


# ---------------------------------------------------------------------------------------------
# pool --transf-int: metafor's predict(fit, transf = transf.*.int, targs = list(tau2 = fit$tau2))

PREDICTIONS = REF["predictions"]


def _table(tmp_path, rec):
    cols = list(rec["data"])
    k = len(rec["data"][cols[0]])
    lines = ["study," + ",".join(cols)]
    lines += [f"s{i + 1}," + ",".join(str(rec["data"][c][i]) for c in cols) for i in range(k)]
    path = tmp_path / f"{rec['dataset']}.csv"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.mark.parametrize(
    "rec", PREDICTIONS, ids=[f"{r['dataset']}-{r['method']}" for r in PREDICTIONS]
)
def test_pool_transf_int_matches_metafor_predict(run, tmp_path, rec):
    out = run("pool", _table(tmp_path, rec), "--tau2", rec["method"], "--transf-int", "-f", "json")
    assert out.exit_code == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["measure"] == rec["measure"]
    got = data["transf_int"]
    fn = {"PLO": "ilogit.int", "ZCOR": "ztor.int", "RR": "exp.int"}[rec["measure"]]
    assert got["function"] == fn and got["metafor"] == f"transf.{fn}"
    # DL: closed-form tau², the integrals as tight as R's at rel.tol 1e-13; REML: tau² by Fisher
    # scoring on both sides (metafor at threshold 1e-13), which moves the integrals by ~1e-10
    rel = TRANSF_INT_TIGHT if rec["method"] == "DL" else 1e-8
    assert got["tau2"] == pytest.approx(rec["tau2"], rel=1e-12 if rec["method"] == "DL" else 1e-8)
    for key, ref in (("estimate", "pred"), ("ci_low", "ci_lb"), ("ci_high", "ci_ub")):
        assert got[key] == pytest.approx(rec[f"{ref}_tight"], rel=rel)
        assert got[key] == pytest.approx(rec[ref], rel=TRANSF_INT_METAFOR)


def test_pool_transf_int_table_line_and_default_json(run, studies_path):
    out = run("pool", str(studies_path), "--transf-int", "--ascii")
    assert out.exit_code == 0, out.stderr
    assert "Mean of the true effects (random effects, integral back-transform transf.exp.int" in (
        out.stdout
    )
    plain = json.loads(run("pool", str(studies_path), "-f", "json").stdout)
    assert "transf_int" not in plain  # only with the option: the default JSON is unchanged


def test_transf_int_is_the_engine_at_the_fit(studies_path):
    import ivigmeta

    fit = ivigmeta.pool(str(studies_path))
    mean = fit.transf_int()
    r = fit.analysis.random
    assert mean.tau2 == r.tau2
    assert mean.estimate == float(transforms.exp_int(r.theta, r.tau2))
    assert (mean.ci_low, mean.ci_high) == tuple(
        float(v) for v in transforms.exp_int([r.ci_low_theta, r.ci_high_theta], r.tau2)
    )
    assert fit.with_transf_int().analysis.transf_int == mean


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ({"cor": [0.2], "n": [40]}, "needs at least 2 usable studies"),
        (
            {"treat_mean": [1, 2], "treat_sd": [1, 1], "treat_n": [10, 12],
             "control_mean": [0, 1], "control_sd": [1, 1], "control_n": [10, 12]},
            "--transf-int: MD has no integral back-transform",
        ),
    ],
)  # fmt: skip
def test_pool_transf_int_errors(run, tmp_path, columns, message):
    from conftest import write_columns

    out = run("pool", write_columns(tmp_path, "t.csv", columns), "--transf-int")
    assert out.exit_code == 1
    errors = [x for x in out.stderr.splitlines() if x.startswith("Error:")]
    assert len(errors) == 1 and message in errors[0], out.stderr
