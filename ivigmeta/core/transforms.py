"""metafor's transformation functions (``transf.*`` of metafor 3.8-1), vectorized over numpy
arrays: the one place each back-transformation formula lives. :func:`ivigmeta.core.measures.
to_reported` (the pooled estimates' reported scale) calls these, so ``ivigmeta transf`` and
every command agree to the last bit.

Correlations and proportions (metafor's names; x the input):

* rtoz: atanh x (Fisher 1921); ztor: tanh x.
* logit: log(x / (1 - x)); ilogit: 1 / (1 + exp(-x)).
* arcsin: arcsin sqrt x; iarcsin: sin² x, 0 below 0 and 1 above pi/2.
* pft (Freeman & Tukey 1950) of a proportion x among n: with e = x n,
  (arcsin sqrt(e/(n + 1)) + arcsin sqrt((e + 1)/(n + 1)))/2.
* ipft (Miller 1978): 1/2 (1 - sgn(cos 2x) sqrt(1 - (sin 2x + (sin 2x - 1/sin 2x)/n)²)), 0 below
  pft(0, n) and 1 above pft(1, n); ipft.hm: ipft at the harmonic mean of the sizes n.
* isqrt: x², 0 below 0.
* irft (the Freeman-Tukey transform of a rate x over person-time t): (sqrt x + sqrt(x + 1/t))/2;
  iirft, its inverse: (1/t - 8 x² + 16 t x⁴) / (16 x² t), 0 below irft(0, t) and at or below
  the machine epsilon.
* ahw (Anderson-Hauck-Wilson, cube root, for Cronbach's alpha, Hakstian & Whalen 1976):
  1 - (1 - x)^(1/3); iahw: 1 - (1 - x)³, clamped to [0, 1].
* abt (Bonett 2002): -log(1 - x); iabt: 1 - exp(-x), 0 below 0.

Standardized mean differences d:

* dtobesd (binomial effect size display, Rosenthal & Rubin 1982): 1/2 + r/2 with r = d /
  sqrt(d² + 4).
* dtocles (common language effect size, McGraw & Wong 1992): Φ(d / sqrt 2).
* dtou1, dtou2, dtou3 (Cohen's U1, U2, U3, Cohen 1988): with u2 = Φ(|d|/2), (2 u2 - 1)/u2;
  Φ(d/2); Φ(d).
* dtomd: d sd (the raw mean difference at the standard deviation sd).
* dtorpb (point-biserial correlation, Jacobs & Viechtbauer 2017): d / sqrt(d² + h), h = m/n1 +
  m/n2 with m = n1 + n2 - 2, h = 4 without the group sizes.

Log odds ratios x at the control group risk pc (metafor's transf.logortord, transf.logortorr):

* logortord: e^x pc / (1 - pc + pc e^x) - pc (risk difference);
  logortorr: e^x / (pc (e^x - 1) + 1) (risk ratio).

Integral back-transforms (metafor's transf.ztor.int, transf.exp.int, transf.ilogit.int): the mean
E[h(x + u)], u ~ N(0, tau²), of the back-transformed true effects around the pooled estimate x,
h = tanh, exp or the inverse logit: the integral of h(z) φ(z; x, tau) over [lower, upper], by
default [x - 10 tau, x + 10 tau] as metafor's; h(x) itself when tau² = 0. metafor integrates with
R's integrate() at its default rel.tol (eps^0.25, about 1.2e-4); here scipy's QUADPACK ``quad``
runs with rel. tolerance 1e-13 (docs/methods.md, "Transformations").
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy as np

    ArrayLike = np.ndarray | float | Sequence[float]

#: the integral transforms' tolerances: scipy.integrate.quad's relative and absolute error
INT_REL_TOL = 1e-13
INT_ABS_TOL = 1e-15
#: metafor's integration range: the pooled estimate -+ this many tau
INT_HALF_WIDTH = 10.0


def _array(x: ArrayLike) -> np.ndarray:
    import numpy as np

    return np.asarray(x, dtype=float)


def rtoz(x: ArrayLike) -> np.ndarray:
    """Fisher's r-to-z, atanh r (metafor's ``transf.rtoz``; ZCOR's yi); ±inf at r = ±1."""
    import numpy as np

    with np.errstate(divide="ignore", invalid="ignore"):
        return np.arctanh(_array(x))


def ztor(x: ArrayLike) -> np.ndarray:
    """Fisher's z back to r, tanh z (metafor's ``transf.ztor``)."""
    import numpy as np

    return np.tanh(_array(x))


def logit(x: ArrayLike) -> np.ndarray:
    """log(p / (1 - p)) (metafor's ``transf.logit``, R's ``qlogis``; PLO's yi)."""
    import numpy as np

    p = _array(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(p / (1 - p))


def ilogit(x: ArrayLike) -> np.ndarray:
    """The inverse logit 1 / (1 + exp(-x)) (metafor's ``transf.ilogit``, R's ``plogis``)."""
    import numpy as np

    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-_array(x)))


def arcsin(x: ArrayLike) -> np.ndarray:
    """The arcsine square root arcsin sqrt(p) (metafor's ``transf.arcsin``; PAS's yi)."""
    import numpy as np

    with np.errstate(invalid="ignore"):
        return np.arcsin(np.sqrt(_array(x)))


def iarcsin(x: ArrayLike) -> np.ndarray:
    """sin² x, 0 below 0 and 1 above pi/2 (metafor's ``transf.iarcsin``)."""
    import numpy as np

    t = _array(x)
    return np.where(t < 0, 0.0, np.where(t > np.arcsin(1.0), 1.0, np.sin(t) ** 2))


def freeman_tukey(x: ArrayLike, n: ArrayLike) -> np.ndarray:
    """The Freeman-Tukey (1950) double arcsine of x events among n (PFT's yi)."""
    import numpy as np

    x, n = _array(x), _array(n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (np.arcsin(np.sqrt(x / (n + 1))) + np.arcsin(np.sqrt((x + 1) / (n + 1)))) / 2


def pft(x: ArrayLike, n: ArrayLike) -> np.ndarray:
    """The Freeman-Tukey transform of a proportion ``x`` among ``n`` (metafor's
    ``transf.pft``: the double arcsine of x n events)."""
    x, n = _array(x), _array(n)
    return freeman_tukey(x * n, n)


def ipft(x: ArrayLike, n: ArrayLike) -> np.ndarray:
    """Miller's (1978) inverse of the Freeman-Tukey transform at size ``n`` (broadcast against
    ``x``: one size per value, or one for all); 0 below the transform of the proportion 0 and 1
    above that of 1 (metafor's ``transf.ipft``)."""
    import numpy as np

    t, n = _array(x), _array(n)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        s = np.sin(2 * t)
        z = 0.5 * (1 - np.sign(np.cos(2 * t)) * np.sqrt(1 - (s + (s - 1 / s) / n) ** 2))
        z = np.where(t > freeman_tukey(n, n), 1.0, z)
        return np.where(t < freeman_tukey(0.0, n), 0.0, z)


def harmonic_mean(n: ArrayLike) -> float:
    """1 / mean(1/n) over the sizes that are not NaN (metafor's ``transf.ipft.hm``)."""
    import numpy as np

    inv = 1 / _array(n).ravel()
    return float(1 / np.mean(inv[~np.isnan(inv)]))


def ipft_hm(x: ArrayLike, n: ArrayLike) -> np.ndarray:
    """:func:`ipft` at the harmonic mean of the studies' sizes ``n`` (metafor's
    ``transf.ipft.hm``, the back-transform of a pooled PFT estimate)."""
    return ipft(x, harmonic_mean(n))


def isqrt(x: ArrayLike) -> np.ndarray:
    """x², 0 below 0 (metafor's ``transf.isqrt``)."""
    import numpy as np

    t = _array(x)
    return np.where(t < 0, 0.0, t * t)


def irft(x: ArrayLike, t: ArrayLike) -> np.ndarray:
    """The Freeman-Tukey transform of a rate ``x`` over person-time ``t`` (metafor's
    ``transf.irft``): (sqrt x + sqrt(x + 1/t))/2."""
    import numpy as np

    x, t = _array(x), _array(t)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (np.sqrt(x) + np.sqrt(x + 1 / t)) / 2


def iirft(x: ArrayLike, t: ArrayLike) -> np.ndarray:
    """The inverse of :func:`irft` (metafor's ``transf.iirft``): 0 below irft(0, t) and where
    the formula gives the machine epsilon or less."""
    import numpy as np

    x, t = _array(x), _array(t)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        z = (1 / t - 8 * x**2 + 16 * t * x**4) / (16 * x**2 * t)
        z = np.where(x < irft(0.0, t), 0.0, z)
        return np.where(z <= np.finfo(float).eps, 0.0, z)


def ahw(x: ArrayLike) -> np.ndarray:
    """1 - (1 - x)^(1/3) (metafor's ``transf.ahw``, for Cronbach's alpha)."""
    import numpy as np

    with np.errstate(invalid="ignore"):
        return 1 - (1 - _array(x)) ** (1 / 3)


def iahw(x: ArrayLike) -> np.ndarray:
    """1 - (1 - x)³, 0 below 0 and 1 above 1 (metafor's ``transf.iahw``)."""
    import numpy as np

    t = _array(x)
    with np.errstate(over="ignore", invalid="ignore"):
        z = 1 - (1 - t) ** 3
    return np.where(t > 1, 1.0, np.where(t < 0, 0.0, z))


def abt(x: ArrayLike) -> np.ndarray:
    """-log(1 - x) (metafor's ``transf.abt``, Bonett's transform of Cronbach's alpha)."""
    import numpy as np

    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.log(1 - _array(x))


def iabt(x: ArrayLike) -> np.ndarray:
    """1 - exp(-x), 0 below 0 (metafor's ``transf.iabt``)."""
    import numpy as np

    t = _array(x)
    with np.errstate(over="ignore"):
        return np.where(t < 0, 0.0, 1 - np.exp(-t))


def dtobesd(x: ArrayLike) -> np.ndarray:
    """The binomial effect size display of d: 1/2 + r/2, r = d / sqrt(d² + 4)."""
    import numpy as np

    d = _array(x)
    return 0.5 + d / np.sqrt(d**2 + 4) / 2


def dtocles(x: ArrayLike) -> np.ndarray:
    """The common language effect size of d: Φ(d / sqrt 2)."""
    import math

    from scipy.special import ndtr

    return ndtr(_array(x) / math.sqrt(2))


def dtou1(x: ArrayLike) -> np.ndarray:
    """Cohen's U1 of d: (2 u2 - 1) / u2 with u2 = Φ(|d|/2)."""
    import numpy as np
    from scipy.special import ndtr

    u2 = ndtr(np.abs(_array(x)) / 2)
    return (2 * u2 - 1) / u2


def dtou2(x: ArrayLike) -> np.ndarray:
    """Cohen's U2 of d: Φ(d/2)."""
    from scipy.special import ndtr

    return ndtr(_array(x) / 2)


def dtou3(x: ArrayLike) -> np.ndarray:
    """Cohen's U3 of d: Φ(d)."""
    from scipy.special import ndtr

    return ndtr(_array(x))


def dtomd(x: ArrayLike, sd: ArrayLike) -> np.ndarray:
    """The raw mean difference d sd."""
    return _array(x) * _array(sd)


def dtorpb(x: ArrayLike, n1: ArrayLike | None = None, n2: ArrayLike | None = None) -> np.ndarray:
    """The point-biserial correlation of d: d / sqrt(d² + h), h = m/n1 + m/n2 with m = n1 + n2
    - 2 (RPB's yi from the uncorrected d), or h = 4 (equal groups) without sizes."""
    import numpy as np

    d = _array(x)
    if n1 is None or n2 is None:
        h: ArrayLike = 4.0
    else:
        a, b = _array(n1), _array(n2)
        h = (a + b - 2) / a + (a + b - 2) / b
    with np.errstate(invalid="ignore", divide="ignore"):
        return d / np.sqrt(d**2 + h)


def logortord(x: ArrayLike, pc: ArrayLike) -> np.ndarray:
    """The risk difference of a log odds ratio at control risk ``pc``."""
    import numpy as np

    x, pc = _array(x), _array(pc)
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(x)
        return e * pc / (1 - pc + pc * e) - pc


def logortorr(x: ArrayLike, pc: ArrayLike) -> np.ndarray:
    """The risk ratio of a log odds ratio at control risk ``pc``."""
    import numpy as np

    x, pc = _array(x), _array(pc)
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(x)
        return e / (pc * (e - 1) + 1)


def exp(x: ArrayLike) -> np.ndarray:
    """exp x: the reported scale of the log measures (metafor's ``predict(transf = exp)``)."""
    import numpy as np

    with np.errstate(over="ignore"):
        return np.exp(_array(x))


def integral_mean(
    h: Callable[[ArrayLike], np.ndarray],
    x: ArrayLike,
    tau2: ArrayLike | None = 0.0,
    lower: ArrayLike | None = None,
    upper: ArrayLike | None = None,
) -> np.ndarray:
    """E[h(x + u)], u ~ N(0, tau²): the integral of h(z) φ(z; x, sqrt tau²) over [lower, upper]
    (default x -+ 10 sqrt tau², metafor's), by scipy's ``quad`` (QUADPACK QAGS, or QAGP with x
    as a break point when it lies inside) at relative tolerance :data:`INT_REL_TOL`; h(x) where tau² = 0 (the bounds are then not used), NaN where
    x, tau² or a bound is NaN or tau² < 0. Every argument broadcasts against ``x``."""
    import numpy as np

    nan = float("nan")
    arrays = np.broadcast_arrays(
        _array(x),
        _array(0.0 if tau2 is None else tau2),
        _array(nan if lower is None else lower),
        _array(nan if upper is None else upper),
    )
    xs, t2, lo, hi = (a.ravel() for a in arrays)
    out = np.empty(xs.shape, dtype=float)
    for i in range(xs.size):
        out[i] = _one_integral(
            h, xs[i], t2[i], None if lower is None else lo[i], None if upper is None else hi[i]
        )
    return out.reshape(arrays[0].shape)


def _one_integral(
    h: Callable[[ArrayLike], np.ndarray],
    x: float,
    tau2: float,
    lower: float | None,
    upper: float | None,
) -> float:
    import warnings

    from scipy.integrate import IntegrationWarning, quad

    if math.isnan(x) or math.isnan(tau2) or tau2 < 0:
        return math.nan
    if tau2 == 0:
        return float(h(x))
    tau = math.sqrt(tau2)
    lo = x - INT_HALF_WIDTH * tau if lower is None else lower
    hi = x + INT_HALF_WIDTH * tau if upper is None else upper
    if math.isnan(lo) or math.isnan(hi):
        return math.nan
    norm = 1 / (tau * math.sqrt(2 * math.pi))

    def density(z: float) -> float:
        return float(h(z)) * norm * math.exp(-0.5 * ((z - x) / tau) ** 2)

    # the bulk of the normal lies within x -+ a few tau: a break point at x tells QUADPACK where
    points = [x] if lo < x < hi else None
    with warnings.catch_warnings():
        # An integral of 0 (tanh around x = 0) cannot meet a relative tolerance: QUADPACK says
        # so, and its value is within the absolute tolerance all the same.
        warnings.simplefilter("ignore", IntegrationWarning)
        value, _ = quad(
            density, lo, hi, epsabs=INT_ABS_TOL, epsrel=INT_REL_TOL, limit=500, points=points
        )
    return float(value)


def ztor_int(
    x: ArrayLike,
    tau2: ArrayLike | None = 0.0,
    lower: ArrayLike | None = None,
    upper: ArrayLike | None = None,
) -> np.ndarray:
    """E[tanh(x + u)], u ~ N(0, tau²) (metafor's ``transf.ztor.int``): the mean correlation of
    the true effects around a pooled Fisher's z."""
    return integral_mean(ztor, x, tau2, lower, upper)


def exp_int(
    x: ArrayLike,
    tau2: ArrayLike | None = 0.0,
    lower: ArrayLike | None = None,
    upper: ArrayLike | None = None,
) -> np.ndarray:
    """E[exp(x + u)], u ~ N(0, tau²) (metafor's ``transf.exp.int``; exp(x + tau²/2) over the
    whole line)."""
    return integral_mean(exp, x, tau2, lower, upper)


def ilogit_int(
    x: ArrayLike,
    tau2: ArrayLike | None = 0.0,
    lower: ArrayLike | None = None,
    upper: ArrayLike | None = None,
) -> np.ndarray:
    """E[ilogit(x + u)], u ~ N(0, tau²) (metafor's ``transf.ilogit.int``): the mean
    proportion of the true effects around a pooled logit."""
    return integral_mean(ilogit, x, tau2, lower, upper)


@dataclass(frozen=True)
class Transform:
    """One of metafor's ``transf.*`` functions as ``ivigmeta transf`` offers it: ``name`` in
    metafor's spelling without ``transf.``, the function, what it computes, the closed interval
    of inputs it is defined on (``domain``; the clamping inverses take every number), the
    function's arguments after x in order (``params``: ``n`` sizes, ``time`` person-times,
    ``sd``, ``pc`` control risks, ``n1``/``n2`` group sizes, ``tau2`` with the integration
    bounds ``lower``/``upper``) and those of them it cannot do without (``needs``)."""

    name: str
    func: Callable[..., np.ndarray]
    summary: str
    domain: tuple[float, float] = (-math.inf, math.inf)
    params: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()

    @property
    def metafor(self) -> str:
        return f"transf.{self.name}"

    def __call__(self, x: ArrayLike, **args: object) -> np.ndarray:
        """The function at ``x`` with ``args`` by the names of ``params`` (None: not given)."""
        return self.func(x, *(args.get(p) for p in self.params))


def _fn(
    name: str,
    func: Callable[..., np.ndarray],
    summary: str,
    *params: str,
    domain: tuple[float, float] = (-math.inf, math.inf),
    optional: bool = False,
) -> Transform:
    return Transform(name, func, summary, domain, params, () if optional else params)


_INF = math.inf
_INT = ("tau2", "lower", "upper")
#: every transf.* function of metafor 3.8-1, by its name without "transf."
TRANSFORMS: dict[str, Transform] = {
    t.name: t
    for t in (
        _fn("rtoz", rtoz, "Fisher's r-to-z: atanh(r)", domain=(-1.0, 1.0)),
        _fn("ztor", ztor, "Fisher's z-to-r: tanh(z)"),
        _fn("logit", logit, "logit: log(p/(1-p))", domain=(0.0, 1.0)),
        _fn("ilogit", ilogit, "inverse logit: 1/(1+exp(-x))"),
        _fn("arcsin", arcsin, "arcsine square root: asin(sqrt(p))", domain=(0.0, 1.0)),
        _fn("iarcsin", iarcsin, "inverse arcsine: sin(x)^2, clamped to [0, 1]"),
        _fn("pft", pft, "Freeman-Tukey double arcsine of a proportion among n", "n",
            domain=(0.0, 1.0)),
        _fn("ipft", ipft, "inverse Freeman-Tukey (Miller 1978) at size n", "n"),
        _fn("ipft.hm", ipft_hm, "inverse Freeman-Tukey at the harmonic mean of the sizes n", "n"),
        _fn("isqrt", isqrt, "square: x^2, 0 below 0"),
        _fn("irft", irft, "Freeman-Tukey transform of a rate over person-time", "time",
            domain=(0.0, _INF)),
        _fn("iirft", iirft, "inverse Freeman-Tukey transform of a rate", "time"),
        _fn("ahw", ahw, "alpha, cube root: 1-(1-x)^(1/3)", domain=(-_INF, 1.0)),
        _fn("iahw", iahw, "inverse of ahw: 1-(1-x)^3, clamped to [0, 1]"),
        _fn("abt", abt, "alpha, Bonett: -log(1-x)", domain=(-_INF, 1.0)),
        _fn("iabt", iabt, "inverse of abt: 1-exp(-x), 0 below 0"),
        _fn("dtobesd", dtobesd, "d to the binomial effect size display"),
        _fn("dtocles", dtocles, "d to the common language effect size"),
        _fn("dtou1", dtou1, "d to Cohen's U1"),
        _fn("dtou2", dtou2, "d to Cohen's U2"),
        _fn("dtou3", dtou3, "d to Cohen's U3"),
        _fn("dtomd", dtomd, "d to the mean difference at standard deviation sd", "sd"),
        _fn("dtorpb", dtorpb, "d to the point-biserial correlation", "n1", "n2", optional=True),
        _fn("logortord", logortord, "log odds ratio to the risk difference at control risk pc",
            "pc"),
        _fn("logortorr", logortorr, "log odds ratio to the risk ratio at control risk pc", "pc"),
        _fn("ztor.int", ztor_int, "mean of tanh(z + u), u ~ N(0, tau2)", *_INT, optional=True),
        _fn("exp.int", exp_int, "mean of exp(x + u), u ~ N(0, tau2)", *_INT, optional=True),
        _fn("ilogit.int", ilogit_int, "mean of ilogit(x + u), u ~ N(0, tau2)", *_INT,
            optional=True),
    )
}  # fmt: skip
