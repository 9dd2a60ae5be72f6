"""yi/vi of the outcome measures of issue 16 (and of correlations and one group's means)
against metafor's escalc (metafor_outcomes.json)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ivigmeta.core import measures
from tests.tolerances import CLOSED_FORM

REF = json.loads((Path(__file__).parent / "reference" / "metafor_outcomes.json").read_text())
RECORDS = REF["records"]


def _yv(rec: dict) -> tuple[np.ndarray, np.ndarray]:
    d, m = rec["data"], rec["measure"]
    if m in measures.CONTINUOUS:
        yi, vi = measures.continuous_effects(
            d["m1i"], d["sd1i"], d["n1i"], d["m2i"], d["sd2i"], d["n2i"], m
        )
    elif m in measures.INCIDENCE:
        yi, vi, _ = measures.incidence_effects(d["x1i"], d["t1i"], d["x2i"], d["t2i"], m)
    elif m in measures.PROPORTION:
        yi, vi, _ = measures.proportion_effects(d["xi"], d["ni"], m)
    elif m in measures.CORRELATION:
        yi, vi = measures.correlation_effects(d["ri"], d["ni"], m)
    elif m in measures.MEAN:
        yi, vi = measures.mean_effects(d["mi"], d["sdi"], d["ni"], m)
    elif m in measures.RATE:
        yi, vi, _ = measures.rate_effects(d["xi"], d["ti"], m)
    elif m in measures.PARTIAL_R2:
        yi, vi = measures.partial_effects(d["ti"], d["ni"], d["mi"], m, d.get("r2i"))
    elif m in measures.CHANGE:
        cols = (d[k] for k in ("m1i", "m2i", "sd1i", "sd2i", "ni", "ri"))
        yi, vi = measures.change_effects(*cols, m)
    else:
        a, b, c, dd = (np.asarray(d[k], float) for k in ("ai", "bi", "ci", "di"))
        if m == "AS":
            yi, vi = measures.arcsine_difference(a, a + b, c, c + dd)
        else:  # PHI, YUQ, YUY, OR2DN, OR2DL: escalc's correction rules, as pool's
            from ivigmeta.core.effects import count_effects

            fx = count_effects(a, a + b, c, c + dd, m)
            yi, vi = fx.yi, fx.vi
    return yi, vi


@pytest.mark.parametrize("rec", RECORDS, ids=[f"{r['name']}-{r['measure']}" for r in RECORDS])
def test_yi_vi_match_escalc(rec: dict) -> None:
    yi, vi = _yv(rec)
    np.testing.assert_allclose(yi, np.asarray(rec["yi"], float), rtol=CLOSED_FORM, atol=1e-15)
    np.testing.assert_allclose(vi, np.asarray(rec["vi"], float), rtol=CLOSED_FORM, atol=1e-15)


def test_hedges_correction_undefined_below_two_df() -> None:
    c = measures.hedges_correction(np.array([1.0, 2.0, 1e6]))
    assert np.isnan(c[0]) and 0 < c[1] < 1 and c[2] == pytest.approx(1.0, abs=1e-6)


FITS = [(r, f) for r in RECORDS for f in r["fits"]]

#: the column names of each naming convention (docs/input.md), by metafor's names
NAMINGS = {
    "ivigmeta": {
        "m1i": "treat_mean", "sd1i": "treat_sd", "n1i": "treat_n",
        "m2i": "control_mean", "sd2i": "control_sd", "n2i": "control_n",
        "x1i": "treat_events", "t1i": "treat_time", "x2i": "control_events", "t2i": "control_time",
        "xi": "events", "ni": "total", "ti": "time",
    },
    "metafor": {},
    "meta": {
        "m1i": "mean.e", "sd1i": "sd.e", "n1i": "n.e", "m2i": "mean.c", "sd2i": "sd.c", "n2i": "n.c",
        "x1i": "event.e", "t1i": "time.e", "x2i": "event.c", "t2i": "time.c",
        "xi": "event", "ni": "n", "ti": "time",
    },
    "RevMan": {
        "m1i": "Experimental Mean", "sd1i": "Experimental SD", "n1i": "Experimental Total",
        "m2i": "Control Mean", "sd2i": "Control SD", "n2i": "Control Total",
    },
}  # fmt: skip


#: correlations (ri, ni) and one group's means (mi, sdi, ni): ivigmeta's names are meta's
#: (metacor's cor, n; metamean's mean, sd, n)
ONE_GROUP_NAMINGS = {"ri": "cor", "ni": "n", "mi": "mean", "sdi": "sd"}
#: pre-post changes (m1i the post-test, sd1i its SD): ivigmeta's names
CHANGE_NAMINGS = {
    "m1i": "mean_post", "m2i": "mean_pre", "sd1i": "sd_post", "sd2i": "sd_pre", "ni": "n", "ri": "r",
}  # fmt: skip


#: partial correlations (ti, ni, mi): ivigmeta's names
PARTIAL_NAMINGS = {"ti": "t", "ni": "n", "mi": "predictors", "r2i": "r2"}


def _is_partial(rec: dict) -> bool:
    return "ti" in rec["data"] and "mi" in rec["data"]


def _is_change(rec: dict) -> bool:
    return "m2i" in rec["data"] and "ri" in rec["data"]


def _csv(rec: dict, naming: str) -> str:
    names = NAMINGS[naming]
    if _is_partial(rec) and naming != "metafor":
        names = PARTIAL_NAMINGS
    elif _is_change(rec) and naming != "metafor":
        names = CHANGE_NAMINGS
    elif ("ri" in rec["data"] or "mi" in rec["data"]) and naming != "metafor":
        names = ONE_GROUP_NAMINGS
    cols = list(rec["data"])
    k = len(rec["data"][cols[0]])
    lines = [",".join(["study"] + [names.get(c, c) for c in cols])]
    for i in range(k):
        lines.append(",".join([f"s{i + 1}"] + [repr(float(rec["data"][c][i])) for c in cols]))
    return "\n".join(lines) + "\n"


def _naming(rec: dict, index: int) -> str:
    """Rotate through the conventions the record's kind has (RevMan only for means)."""
    if _is_change(rec) or _is_partial(rec):
        return ["ivigmeta", "metafor"][index % 2]
    kinds = ["ivigmeta", "metafor", "meta"] + (["RevMan"] if "m1i" in rec["data"] else [])
    return "metafor" if "ai" in rec["data"] else kinds[index % len(kinds)]


@pytest.mark.parametrize(
    ("index", "rec", "ref"),
    [(i, r, f) for i, (r, f) in enumerate(FITS)],
    ids=[f"{r['name']}-{r['measure']}-{f['method']}-{f['test']}" for r, f in FITS],
)
def test_pooled_from_a_table_match_rma(tmp_path, index: int, rec: dict, ref: dict) -> None:
    """The whole path (reader, column conventions, effects, fit) against metafor's rma."""
    from ivigmeta.api import pool
    from tests.tolerances import ITERATIVE, METAFOR_STOP_TAU2_ABS

    path = tmp_path / "t.csv"
    path.write_text(_csv(rec, _naming(rec, index)))
    ci = "hk" if ref["test"] == "knha" else "z"
    fitted = pool(str(path), measure=rec["measure"], tau2=ref["method"], ci=ci)
    r, het = fitted.random, fitted.heterogeneity
    tol = CLOSED_FORM if ref["method"] == "DL" else ITERATIVE
    assert fitted.k == ref["k"]
    got = {
        "estimate": r.theta,
        "se": r.se,
        "ci_lb": r.ci_low_theta,
        "ci_ub": r.ci_high_theta,
        "pval": r.p_value,
        "tau2": het.tau2,
        "QE": het.q,
        "I2": het.i2,
    }
    # metafor's REML stops when the tau² step is below 1e-10; ours converges fully, so at a
    # tau² of ~1e-12 (zeros-IRR) the two differ in the absolute, not the relative, digits.
    floor = 1e-12 if ref["method"] == "DL" else METAFOR_STOP_TAU2_ABS
    if ref["method"] != "DL" and ref["tau2"] < 1e-6:
        # I² = tau²/(tau² + s²) magnifies that gap by 1/s²: compared only away from tau² = 0.
        assert got.pop("I2") < 1e-3
    for key, value in got.items():
        assert value == pytest.approx(ref[key], rel=tol, abs=floor), key


@pytest.mark.parametrize("ref", REF["backtransformed"], ids=lambda r: r["measure"])
def test_back_transformed_proportions_match_predict(tmp_path, ref: dict) -> None:
    """The reported scale of pool's JSON (estimate, CI, prediction interval) is metafor's
    predict(transf=...): PFT with the harmonic mean of the studies' sizes, ZCOR with
    transf.ztor, MNLN, ROMC and IRLN with exp, IRS with transf.isqrt."""
    from ivigmeta.api import pool
    from tests.tolerances import ITERATIVE

    rec = next(r for r in RECORDS if r["measure"] == ref["measure"])
    path = tmp_path / "p.csv"
    path.write_text(_csv(rec, "ivigmeta"))
    random = pool(str(path), measure=ref["measure"], tau2="REML").to_dict()["random"]
    for key, value in {
        "pred": random["estimate"],
        "ci_lb": random["ci_low"],
        "ci_ub": random["ci_high"],
        "pi_lb": random["pi_low"],
        "pi_ub": random["pi_high"],
    }.items():
        assert value == pytest.approx(ref[key], rel=ITERATIVE, abs=1e-12), key
