"""Cancellation-free forms used for numerical safety equal the textbook formulas on ordinary data
and stay positive where the textbook forms cancel to zero (docs/input.md, "Numerical limits")."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivigmeta.core.effects import count_effects
from ivigmeta.core.heterogeneity import typical_variance
from ivigmeta.core.tau2 import estimate_tau2, sum_w_minus_sum_w2_over_sum_w, trace_pp

weights = st.lists(st.floats(min_value=1e-3, max_value=1e3), min_size=2, max_size=20)


@settings(max_examples=100, deadline=None)
@given(w=weights)
def test_trace_forms_equal_the_textbook(w):
    """Compared with the textbook formulas in exact rational arithmetic."""
    tr_p, tr_pp = exact_traces(w)
    assert sum_w_minus_sum_w2_over_sum_w(w) == pytest.approx(tr_p, rel=1e-12)
    assert trace_pp(w) == pytest.approx(tr_pp, rel=1e-12)


def exact_traces(w):
    f = [Fraction(x) for x in w]
    sw, sw2, sw3 = sum(f), sum(x * x for x in f), sum(x**3 for x in f)
    return float(sw - sw2 / sw), float(sw2 - 2 * sw3 / sw + sw2 * sw2 / (sw * sw))


def test_one_dominant_weight():
    """w = (1, 1, 1e40): exactly tr P = 4 and tr PP = 10; the textbook forms in floating point
    are off by orders of magnitude (or 0), which made DL/REML divide by zero."""
    w = [1.0, 1.0, 1e40]
    tr_p, tr_pp = exact_traces(w)
    assert (tr_p, tr_pp) == (pytest.approx(4.0), pytest.approx(10.0))
    sw, sw2, sw3 = math.fsum(w), math.fsum(x * x for x in w), math.fsum(x**3 for x in w)
    assert (
        abs((sw - sw2 / sw) - tr_p) > 1.0
        and abs((sw2 - 2 * sw3 / sw + sw2 * sw2 / sw**2) - tr_pp) > 1.0
    )
    assert sum_w_minus_sum_w2_over_sum_w(w) == pytest.approx(tr_p, rel=1e-12)
    assert trace_pp(w) == pytest.approx(tr_pp, rel=1e-12)
    assert typical_variance([1.0, 1.0, 1e-40]) == pytest.approx(2 / tr_p, rel=1e-12)
    for method in ("DL", "REML", "ML", "PM", "HE", "SJ"):
        est = estimate_tau2([0.0, 0.3, 0.0], [1.0, 1.0, 1e-40], method)
        assert math.isfinite(est.tau2) and est.tau2 >= 0, method


def _rr_variance(a: int, b: int, c: int, d: int) -> float:
    """The engine's log RR variance of one 2x2 table (a, b events / non-events treated; c, d)."""
    fx = count_effects([a], [a + b], [c], [c + d], "RR", cc_policy="none")
    return float(fx.vi[0])


@pytest.mark.parametrize("cells", [(5, 5, 3, 7), (1, 999999999, 999999999, 1), (33, 5, 18, 22)])
def test_risk_ratio_variance_form(cells):
    """b / (a n1) + d / (c n2) is metafor's 1/a - 1/n1 + 1/c - 1/n2."""
    a, b, c, d = cells
    v = _rr_variance(a, b, c, d)
    assert v == pytest.approx(1 / a - 1 / (a + b) + 1 / c - 1 / (c + d), rel=1e-6)
    assert v > 0


def test_risk_ratio_variance_near_the_total():
    """Events one short of a billion: the textbook form loses most digits; this one does not."""
    a, b = 999_999_999, 1
    v = _rr_variance(a, b, a, b)
    assert v == pytest.approx(2 * b / (a * (a + b)), rel=1e-15)
