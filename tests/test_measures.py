"""yi/vi of the outcome measures of issue 16 against metafor's escalc (metafor_outcomes.json)."""

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
    else:
        a, b, c, dd = (np.asarray(d[k], float) for k in ("ai", "bi", "ci", "di"))
        yi, vi = measures.arcsine_difference(a, a + b, c, c + dd)
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


@pytest.mark.parametrize(
    ("rec", "ref"),
    FITS,
    ids=[f"{r['name']}-{r['measure']}-{f['method']}-{f['test']}" for r, f in FITS],
)
def test_pooled_through_the_engine_match_rma(rec: dict, ref: dict) -> None:
    from ivigmeta.core.groups import Groups
    from ivigmeta.core.pooling import pool_groups
    from tests.tolerances import ITERATIVE

    yi, vi = _yv(rec)
    keep = np.isfinite(yi) & np.isfinite(vi)
    yi, vi = yi[keep], vi[keep]
    ci = "hk" if ref["test"] == "knha" else "z"
    gf = pool_groups(yi, vi, Groups.single(len(yi)), ref["method"], ci, 0.95, "IV", rec["measure"])
    tol = CLOSED_FORM if ref["method"] == "DL" else ITERATIVE
    got = {
        "estimate": gf.random.theta[0],
        "se": gf.random.se[0],
        "ci_lb": gf.random.ci_low[0],
        "ci_ub": gf.random.ci_high[0],
        "tau2": gf.tau2.tau2[0],
    }
    for key, value in got.items():
        assert value == pytest.approx(ref[key], rel=tol, abs=1e-12), key


@pytest.mark.parametrize("ref", REF["backtransformed"], ids=lambda r: r["measure"])
def test_back_transformed_proportions_match_predict(ref: dict) -> None:
    from ivigmeta.core.groups import Groups
    from ivigmeta.core.pooling import pool_groups
    from tests.tolerances import ITERATIVE

    rec = next(r for r in RECORDS if r["measure"] == ref["measure"])
    yi, vi = _yv(rec)
    gf = pool_groups(yi, vi, Groups.single(len(yi)), "REML", "z", 0.95, "IV", ref["measure"])
    r = gf.random
    n = np.asarray(rec["data"]["ni"], float)
    for key, value in {
        "pred": r.theta,
        "ci_lb": r.ci_low,
        "ci_ub": r.ci_high,
        "pi_lb": r.pi_low,
        "pi_ub": r.pi_high,
    }.items():
        got = float(measures.to_reported(value, ref["measure"], n)[0])
        assert got == pytest.approx(ref[key], rel=ITERATIVE, abs=1e-12), key
