"""ivigmeta.core.distributions against scipy.special, on a grid that reaches the far tails.

The normal and chi-square functions are ivigmeta's own (math.erfc, statistics.NormalDist, series
and continued fraction for the incomplete gamma, a safeguarded Newton quantile); the t and F
functions call scipy.special's stdtr / stdtrit / fdtrc and are checked here through another
route, the regularized incomplete beta function (scipy.special.betainc), so that an argument in
the wrong order or a one-sided p-value for a two-sided one cannot pass.

Grid: df from 0.5 to 1e6; probabilities from 0.5 down to 1e-300 in each tail (the points x are
scipy's quantiles at those probabilities); z from -38 to 38 (the normal tail reaches 1e-300 at
z = 37). Tolerances are relative, stated where they are defined.
"""

from __future__ import annotations

import math

import pytest

sp = pytest.importorskip("scipy.special")

from ivigmeta.core.distributions import (  # noqa: E402
    chi2_cdf,
    chi2_ppf,
    chi2_sf,
    f_sf,
    gammainc,
    gammaincc,
    norm_p_two_sided,
    norm_ppf,
    norm_sf,
    t_crit,
    t_p_two_sided,
    z_crit,
)

#: Normal tails: math.erfc and scipy's ndtr are each within ~1.2e-13 relative of the exact tail
#: at z = 30..37.5 (checked with 40-digit mpmath when these tests were written), in opposite
#: directions, so they can differ by twice that. Below 1e-305 doubles are subnormal: absolute.
NORM_TAIL_REL = 3e-13
SUBNORMAL = 1e-305
#: Normal quantile (AS241 in both): a few ulps.
NORM_PPF_REL = 2e-15
#: Incomplete gamma: the prefactor exp(a log x - x - lgamma(a)) is computed from terms of size
#: about a = df / 2, whose rounding (eps * a) becomes a relative error of the result; scipy uses
#: Temme's uniform expansion there and stays at ~1e-15. Measured: 3e-14 at df 100, 3e-13 at
#: df 1e3, 1e-11 at df 1e4, 9e-10 at df 1e6.
GAMMA_REL_BASE = 1e-13
GAMMA_REL_PER_DF = 4e-15
#: Quantiles found by Newton steps to |dx| <= 1e-15 x on a tail computed as above.
PPF_REL = 1e-12
#: t and F through scipy's cephes routines vs the incomplete beta: both ~1e-15 for moderate
#: parameters; 1e-12 leaves margin for the far tails. betainc itself loses accuracy as a
#: parameter grows (against 40-digit mpmath: 1.8e-11 at b = 5e5, F with df2 = 1e6, where fdtrc
#: is exact), hence the allowance per unit of the larger df.
BETA_REL = 1e-12
BETA_REL_PER_DF = 5e-17
#: cephes stdtr near t = 0 with df = 1: 2 stdtr(1, -1e-8) = 0.99999999051 where the exact
#: 1 - 2 atan(t) / pi is 0.99999999363 (an error of 3e-9 in a p-value that close to 1, which no
#: inference uses): absolute tolerance for p > 1 - 1e-6.
T_NEAR_ONE_ABS = 5e-9

EPS = 2.220446049250313e-16
DFS = [0.5, 1, 1.5, 2, 3, 5, 7, 10, 17, 30, 100, 1_000, 10_000, 100_000, 1_000_000]
TAILS = [1e-300, 1e-200, 1e-100, 1e-50, 1e-20, 1e-10, 1e-5, 1e-3, 0.025, 0.1, 0.5]


def rel_err(ours: float, ref: float) -> float:
    if ours == ref:
        return 0.0
    return abs(ours - ref) / abs(ref) if ref else math.inf


def round_trip_rel(level: float) -> float:
    """A quantile at 1 - (1 - level) / 2 maps back to its tail to within the rounding of that
    sum (eps / 2 absolute), which is eps / (1 - level) relative in the tail."""
    return 1e-13 + 4 * EPS / (1.0 - level)


def gamma_rel(df: float) -> float:
    return GAMMA_REL_BASE + GAMMA_REL_PER_DF * df


# ------------------------------------------------------------------------------------------
# normal

Z_GRID = [i / 4 for i in range(-152, 153)] + [1e-300, -1e-300, 1e-8, 37.5, -37.5]


@pytest.mark.parametrize("z", Z_GRID)
def test_normal_tails(z):
    ref = float(sp.ndtr(-z))
    assert abs(norm_sf(z) - ref) <= max(NORM_TAIL_REL * ref, SUBNORMAL), (z, norm_sf(z), ref)
    ref2 = 2.0 * float(sp.ndtr(-abs(z)))
    p2 = norm_p_two_sided(z)
    assert abs(p2 - ref2) <= max(NORM_TAIL_REL * ref2, SUBNORMAL), (z, p2, ref2)
    assert 0.0 <= p2 <= 1.0


def test_normal_tail_edges():
    assert norm_sf(math.inf) == 0.0 and norm_sf(-math.inf) == 1.0
    assert norm_p_two_sided(0.0) == 1.0
    assert norm_p_two_sided(math.inf) == 0.0 and norm_p_two_sided(-math.inf) == 0.0
    assert 0.0 < norm_sf(38.0) < 1e-300  # subnormal, not 0: math.erfc keeps it


NORM_PPF_P = sorted({*TAILS, *(1.0 - p for p in TAILS if p >= 1e-10), 0.5 + 1e-12, 0.975})


@pytest.mark.parametrize("p", NORM_PPF_P)
def test_normal_quantile(p):
    ref = float(sp.ndtri(p))
    assert rel_err(norm_ppf(p), ref) <= NORM_PPF_REL or abs(norm_ppf(p) - ref) <= 1e-300, (p, ref)


@pytest.mark.parametrize("level", [0.5, 0.8, 0.9, 0.95, 0.99, 0.999, 0.999999])
def test_z_crit(level):
    ref = float(sp.ndtri(1.0 - (1.0 - level) / 2.0))
    assert rel_err(z_crit(level), ref) <= NORM_PPF_REL
    # and it is the two-sided critical value: P(|Z| > z) = 1 - level
    assert rel_err(norm_p_two_sided(z_crit(level)), 1.0 - level) <= round_trip_rel(level)


# ------------------------------------------------------------------------------------------
# chi-square and the incomplete gamma function


def _points(df: float) -> list[float]:
    """x at upper- and lower-tail probabilities TAILS (scipy's quantiles), plus easy points."""
    a = df / 2.0
    xs = [df, df / 2, 2 * df, df + 1e-9 * df]
    for p in TAILS:
        xs.append(2.0 * float(sp.gammainccinv(a, p)))
        xs.append(2.0 * float(sp.gammaincinv(a, p)))
    return sorted(x for x in xs if 0.0 < x < math.inf)


@pytest.mark.parametrize("df", DFS)
def test_chi_square_tails(df):
    a = df / 2.0
    rel = gamma_rel(df)
    bad = []
    for x in _points(df):
        for name, ours, ref in (
            ("sf", chi2_sf(x, df), float(sp.gammaincc(a, x / 2.0))),
            ("cdf", chi2_cdf(x, df), float(sp.gammainc(a, x / 2.0))),
            ("gammaincc", gammaincc(a, x / 2.0), float(sp.chdtrc(df, x))),
            ("gammainc", gammainc(a, x / 2.0), float(sp.chdtr(df, x))),
        ):
            if not (rel_err(ours, ref) <= rel or (ref < 1e-300 and abs(ours - ref) <= 1e-300)):
                bad.append(f"{name}({x!r}): ours {ours!r} scipy {ref!r}")
    assert not bad, "\n".join(bad)


def test_chi_square_edges():
    assert chi2_sf(0.0, 3) == 1.0 and chi2_cdf(0.0, 3) == 0.0
    assert chi2_sf(math.inf, 3) == 0.0 and chi2_cdf(math.inf, 3) == 1.0
    for bad in (0, -1):
        with pytest.raises(ValueError, match="degrees of freedom"):
            chi2_sf(1.0, bad)
        with pytest.raises(ValueError, match="degrees of freedom"):
            chi2_cdf(1.0, bad)
        with pytest.raises(ValueError, match="degrees of freedom"):
            chi2_ppf(0.5, bad)
    for p in (0.0, 1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="strictly between 0 and 1"):
            chi2_ppf(p, 3)


def _ppf_cases():
    # small df with tiny p is where the lower-tail quantile once failed to converge (df = 1,
    # p = 1e-300 gave 3e-160; the answer, 1.6e-600, underflows to 0)
    for df in DFS:
        for p in TAILS:
            yield pytest.param(df, p, id=f"df{df:g}-p{p:g}")


@pytest.mark.parametrize("df, p", list(_ppf_cases()))
def test_chi_square_lower_quantile(df, p):
    ref = 2.0 * float(sp.gammaincinv(df / 2.0, p))
    x = chi2_ppf(p, df)
    assert rel_err(x, ref) <= PPF_REL or abs(x - ref) <= 1e-300, (x, ref)


@pytest.mark.parametrize("df", DFS)
def test_chi_square_upper_quantile(df):
    """p close to 1 (1 - p exact in binary for p >= 0.5): the upper tail's quantile."""
    bad = []
    for tail in TAILS:
        if tail < 1e-16:
            continue  # 1 - tail rounds to 1
        p = 1.0 - tail
        ref = 2.0 * float(sp.gammainccinv(df / 2.0, 1.0 - p))
        x = chi2_ppf(p, df)
        if not rel_err(x, ref) <= PPF_REL:
            bad.append(f"p = 1 - {tail:g}: ours {x!r} scipy {ref!r}")
    assert not bad, "\n".join(bad)


# ------------------------------------------------------------------------------------------
# t and F (scipy's cephes routines, checked through the incomplete beta function)


def beta_tail(a: float, b: float, num: float, den: float) -> float:
    """I_x(a, b) at x = num / (num + den), from whichever side keeps x away from 1 (where the
    division would round the small complement away): 1 - I_x(a, b) = I_{1-x}(b, a)."""
    if num <= den:
        return float(sp.betainc(a, b, num / (num + den)))
    return float(sp.betaincc(b, a, den / (num + den)))


def t_tail(t: float, df: float) -> float:
    """P(|T| > t) = I_{df/(df+t²)}(df/2, 1/2)."""
    return beta_tail(df / 2.0, 0.5, df, t * t)


T_DFS = [1, 2, 3, 5, 7, 10, 30, 100, 1_000, 10_000, 1_000_000]
T_STATS = [0.0, 1e-8, 0.5, 1.0, 2.0, 2.5, 5.0, 12.706, 50.0, 1e3, 1e8]


@pytest.mark.parametrize("df", T_DFS)
def test_t_two_sided_p(df):
    """P(|T| > t) = I_{df/(df+t²)}(df/2, 1/2)."""
    bad = []
    for t in T_STATS:
        ref = t_tail(t, df)
        floor = T_NEAR_ONE_ABS if ref > 1 - 1e-6 else 1e-300
        for sign in (1, -1):
            ours = t_p_two_sided(sign * t, df)
            if not (
                rel_err(ours, ref) <= BETA_REL + BETA_REL_PER_DF * df or abs(ours - ref) <= floor
            ):
                bad.append(f"t = {sign * t}: ours {ours!r} betainc {ref!r}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("df", T_DFS)
@pytest.mark.parametrize("level", [0.5, 0.9, 0.95, 0.99, 0.999999])
def test_t_crit_is_the_two_sided_quantile(df, level):
    t = t_crit(level, df)
    assert t > 0
    # the two-sided tail beyond it is 1 - level
    tail = t_tail(t, df)
    assert rel_err(tail, 1.0 - level) <= round_trip_rel(level), (t, tail)


def test_t_crit_closed_forms():
    """df = 1 (Cauchy): tan(pi level / 2); df = 2: q sqrt(2 / (1 - q²)) with q = level."""
    for level in (0.5, 0.9, 0.95, 0.99):
        assert rel_err(t_crit(level, 1), math.tan(math.pi * level / 2)) <= 1e-13
        assert rel_err(t_crit(level, 2), level * math.sqrt(2 / (1 - level * level))) <= 1e-13
    # a large df tends to the normal
    assert rel_err(t_crit(0.95, 1e9), z_crit(0.95)) <= 1e-8


@pytest.mark.parametrize("df1", [1, 2, 3, 10])
@pytest.mark.parametrize("df2", [1, 2, 5, 30, 1_000, 1_000_000])
def test_f_upper_tail(df1, df2):
    """P(F > x) = I_{df2/(df2+df1 x)}(df2/2, df1/2)."""
    bad = []
    for x in (1e-6, 0.1, 0.5, 1.0, 2.0, 4.0, 10.0, 100.0, 1e4, 1e8):
        ref = beta_tail(df2 / 2.0, df1 / 2.0, df2, df1 * x)
        ours = f_sf(x, df1, df2)
        rel = BETA_REL + BETA_REL_PER_DF * max(df1, df2)
        if not (rel_err(ours, ref) <= rel or abs(ours - ref) <= 1e-300):
            bad.append(f"x = {x}: ours {ours!r} betainc {ref!r}")
    assert not bad, "\n".join(bad)
