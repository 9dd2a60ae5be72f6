"""Effect sizes and sampling variances of the measures beyond 2x2 ratios (metafor's ``escalc``
with its default arguments), vectorized over rows.

Continuous, two groups (means m1, m2, SDs s1, s2, sizes n1, n2):

* MD: yi = m1 - m2, vi = s1²/n1 + s2²/n2.
* SMD (Hedges 1981): sp² = ((n1 - 1) s1² + (n2 - 1) s2²) / (n1 + n2 - 2), the exact correction
  c(m) = Γ(m/2) / (sqrt(m/2) Γ((m - 1)/2)) with m = n1 + n2 - 2, yi = c(m) (m1 - m2) / sp,
  vi = 1/n1 + 1/n2 + yi² / (2 (n1 + n2)) (escalc's large-sample ``vtype = "LS"``).
* SMDH (Bonett 2008, 2009): s = sqrt((s1² + s2²)/2), yi = c(m) (m1 - m2) / s,
  vi = c(m)² [yi² (s1⁴/(n1 - 1) + s2⁴/(n2 - 1)) / (2 (s1² + s2²)²) + (s1²/(n1 - 1) +
  s2²/(n2 - 1)) / s²] (as escalc computes it, yi already corrected).
* ROM (Hedges, Gurevitch & Curtis 1999): yi = log(m1 / m2), vi = s1²/(n1 m1²) + s2²/(n2 m2²).
* CVR (Nakagawa et al. 2015, log coefficient-of-variation ratio): yi = log(s1/m1) + 1/(2 (n1 -
  1)) - log(s2/m2) - 1/(2 (n2 - 1)), vi = 1/(2 (n1 - 1)) + s1²/(n1 m1²) + 1/(2 (n2 - 1)) +
  s2²/(n2 m2²) (positive means only).
* VR (Nakagawa et al. 2015, log variability ratio): yi = log(s1/s2) + 1/(2 (n1 - 1)) - 1/(2 (n2
  - 1)), vi = 1/(2 (n1 - 1)) + 1/(2 (n2 - 1)).
* RPB (point-biserial correlation, Jacobs & Viechtbauer 2017; escalc's ``vtype = "LS"``): with
  d = (m1 - m2)/sp (not corrected), m = n1 + n2 - 2 and h = m/n1 + m/n2: yi = d / sqrt(d² + h),
  vi = h² / (h + d²)³ (1/n1 + 1/n2 + d²/(2 n)), n = n1 + n2.
* RBIS (biserial correlation from the means, Jacobs & Viechtbauer 2017): p1 = n1/n, p2 = n2/n,
  z = Φ⁻¹(1 - p1), f = φ(z): yi = sqrt(p1 p2)/f · RPB's yi, vi = [p1 p2/f² - (3/2 + (1 - p1 z/f)
  (1 + p2 z/f)) y² + y⁴] / (n - 1) with y = yi truncated to [-1, 1].

Incidence rates, two groups (events x1, x2 over person-time t1, t2); IRR and IRD add 1/2 to both
event counts of a study with a zero count (``to = "only0"``), IRSD needs no correction:

* IRR: yi = log(x1/t1) - log(x2/t2), vi = 1/x1 + 1/x2.
* IRD: yi = x1/t1 - x2/t2, vi = x1/t1² + x2/t2².
* IRSD: yi = sqrt(x1/t1) - sqrt(x2/t2), vi = 1/(4 t1) + 1/(4 t2).

Single-group proportions (x events among n, p = x/n); PR, PLN and PLO add 1/2 to the events and
the non-events of a study with x = 0 or x = n (n grows by 1), PAS and PFT need none:

* PR: yi = p, vi = p (1 - p) / n.     * PLN: yi = log p, vi = 1/x - 1/n.
* PLO: yi = log(p / (1 - p)), vi = 1/x + 1/(n - x).
* PAS: yi = arcsin sqrt(p), vi = 1/(4 n).
* PFT (Freeman & Tukey 1950; Miller 1978): yi = (arcsin sqrt(x/(n+1)) + arcsin sqrt((x+1)/(n+1)))/2,
  vi = 1/(4 n + 2).

One group's incidence rate (x events over person-time t); IR and IRLN add 1/2 to the events of a
study with none (``to = "only0"``), IRS and IRFT need no correction:

* IR: yi = x/t, vi = x/t².     * IRLN: yi = log(x/t), vi = 1/x.
* IRS: yi = sqrt(x/t), vi = 1/(4 t).
* IRFT (Freeman & Tukey 1950): yi = (sqrt(x/t) + sqrt((x + 1)/t))/2, vi = 1/(4 t).

Correlations (r among n participants; escalc's ``vtype = "LS"``; no variance for n <= 3):

* ZCOR (Fisher 1921): yi = atanh r = log((1 + r)/(1 - r))/2, vi = 1/(n - 3).
* COR: yi = r, vi = (1 - r²)²/(n - 1).
* UCOR (Olkin & Pratt 1958): yi = r 2F1(1/2, 1/2; (n - 2)/2; 1 - r²) (the Gauss hypergeometric
  function, undefined for n <= 4), vi = (1 - yi²)²/(n - 1).

One group's means (mean m, SD s, n participants):

* MN: yi = m, vi = s²/n.     * MNLN: yi = log m, vi = s²/(n m²).
* CVLN (Nakagawa et al. 2015, log coefficient of variation): yi = log(s/m) + 1/(2 (n - 1)),
  vi = 1/(2 (n - 1)) + s²/(n m²) (a positive mean only).
* SDLN (Nakagawa et al. 2015, log SD): yi = log s + 1/(2 (n - 1)), vi = 1/(2 (n - 1)).

One group measured twice (means m1 after and m2 before, SDs s1 and s2, n participants, r the
correlation of the two measurements; escalc's m1i, m2i, sd1i, sd2i, ni, ri with m1i the post-test
mean; c(m) the correction above with m = n - 1; sd² = s1² + s2² - 2 r s1 s2, the change scores'):

* MC: yi = m1 - m2, vi = sd²/n.
* SMCC (Gibbons et al. 1993; change-score standardization, escalc's default ``vtype = "LS"``):
  yi = c(n - 1) (m1 - m2) / sd, vi = 1/n + yi²/(2 n).
* SMCR (Becker 1988; raw-score standardization by the pre-test SD s2, as metafor's worked
  example of Morris 2008, ``escalc(m1i = post, m2i = pre, sd1i = sd_pre)``):
  yi = c(n - 1) (m1 - m2) / s2, vi = 2 (1 - r)/n + yi²/(2 n).
* SMCRH (Bonett 2008; raw-score standardization by s2, heteroscedastic):
  yi = c(n - 1) (m1 - m2) / s2, vi = c(n - 1)² [sd² / (s2² (n - 1)) + yi² / (2 (n - 1))].
* ROMC (Lajeunesse 2011): yi = log(m1/m2), vi = s1²/(n m1²) + s2²/(n m2²) - 2 r s1 s2/(n m1 m2).

Partial correlations from a regression (Aloe & Becker 2012; Aloe & Thompson 2013): t the t
statistic of the predictor of interest, n the sample size, m the number of the other predictors
(escalc's ti, ni, mi; df = n - m - 1 > 0; escalc's default ``vtype = "LS"``):

* PCOR: yi = t / sqrt(t² + df), vi = (1 - yi²)² / df.
* ZPCOR: yi = atanh(t / sqrt(t² + df)), vi = 1 / df (metafor 3.8-1's formula).
* SPCOR (semi-partial, R² the model's, 0 <= R² <= 1): yi = t sqrt(1 - R²) / sqrt(df),
  vi = (R²² - 2 R² + (R² - yi²) + 1 - (R² - yi²)²) / n.

From 2x2 counts (a, b events and non-events of n1 treated, c, d of n2 controls, after the
correction of :mod:`ivigmeta.core.effects`; YUQ, YUY, OR2DN and OR2DL are corrected as OR, 1/2
added to every cell of a table with a zero, PHI not at all), with OR = a d / (b c) and
S = 1/a + 1/b + 1/c + 1/d:

* PHI (phi coefficient, escalc's ``vtype = "LS"``): yi = (a d - b c) / sqrt(n1 n2 (a + c)
  (b + d)), vi = [1 - yi² + yi (1 + yi²/2) (p1. - p2.)(p.1 - p.2) / sqrt(p1. p2. p.1 p.2)
  - 3/4 yi² ((p1. - p2.)²/(p1. p2.) + (p.1 - p.2)²/(p.1 p.2))] / n with the margins' shares
  p1. = n1/n, p2. = n2/n, p.1 = (a + c)/n, p.2 = (b + d)/n of n = n1 + n2.
* YUQ (Yule 1900, 1912): yi = (OR - 1)/(OR + 1), vi = (1 - yi²)² S / 4.
* YUY (Yule 1912): yi = (sqrt OR - 1)/(sqrt OR + 1), vi = (1 - yi²)² S / 16.
* OR2DL (Hasselblad & Hedges 1995): yi = log OR sqrt(3)/pi, vi = 3 S / pi².
* OR2DN (Cox 1970, as Haddock et al. 1998): yi = log OR / 1.65, vi = S / 1.65².
* PBIT (probit difference, corrected and double-zero-dropped as OR): with p1 = a/n1, p2 = c/n2,
  z1 = Φ⁻¹(p1), z2 = Φ⁻¹(p2): yi = z1 - z2, vi = 2π p1 (1 - p1) exp(z1²)/n1 + 2π p2 (1 - p2)
  exp(z2²)/n2.
* RTET (tetrachoric correlation, Pearson 1900; maximum likelihood as Olsson 1979 and escalc; not
  corrected under ``only0``, as PHI): the ρ of a bivariate standard normal cut at h = Φ⁻¹((a +
  c)/n), k = Φ⁻¹((a + b)/n) with Φ2(h, k; ρ) = a/n (Φ2 the bivariate normal CDF,
  :func:`ivigmeta.core.distributions.bvn_cdf`), vi the [ρ, ρ] element of the inverse Hessian of
  the negative log-likelihood in (ρ, k, h) there, n Σ_j g_j g_jᵀ / p_j over the four cells
  (:func:`tetrachoric` gives the edge cases).

Matched pairs (Zou 2007; Curtin et al. 2002), from the 2x2 table of n *pairs* as escalc's ``ai, bi,
ci, di`` (a pairs with the event in both members, b in the treated member only, c in the control
member only, d in neither; a counts table's four cells read as this table), after the
correction of :mod:`ivigmeta.core.effects` (1/2 added to every cell of a table with a zero), with
p12 = b/n, p21 = c/n, p1. = (a + b)/n and p.1 = (a + c)/n:

* MPRD: yi = p1. - p.1, vi = [p12 (1 - p12) + p21 (1 - p21) + 2 p12 p21] / n.
* MPRR: yi = log p1. - log p.1, vi = (p12 + p21) / (n p1. p.1).
* MPOR (marginal log odds ratio): yi = logit p1. - logit p.1, vi = [p12 (1 - p12) + p21 (1 -
  p21) + 2 p12 p21] / (n p1. (1 - p1.) p.1 (1 - p.1)).
* MPORC (conditional log odds ratio): yi = log b - log c, vi = 1/b + 1/c.
* MPPETO (Peto's conditional log odds ratio): yi = (b - (b + c)/2) / ((b + c)/4), vi = 4/(b + c).

From 2x2 counts, AS (arcsine risk difference, no correction): yi = arcsin sqrt(a/n1) -
arcsin sqrt(c/n2), vi = 1/(4 n1) + 1/(4 n2).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ivigmeta.core import transforms

if TYPE_CHECKING:
    import numpy as np

CONTINUOUS = ("MD", "SMD", "SMDH", "ROM", "CVR", "VR", "RPB", "RBIS", "D2ORL", "D2ORN", "D2OR")
INCIDENCE = ("IRR", "IRD", "IRSD")
PROPORTION = ("PR", "PLO", "PAS", "PFT", "PLN")
CORRELATION = ("ZCOR", "COR", "UCOR")
MEAN = ("MN", "MNLN", "CVLN", "SDLN")
CHANGE = ("MC", "SMCC", "SMCR", "SMCRH", "ROMC")
RATE = ("IRLN", "IR", "IRS", "IRFT")
PARTIAL = ("ZPCOR", "PCOR")
#: partial correlations with the model's R² as well: SPCOR too
PARTIAL_R2 = PARTIAL + ("SPCOR",)
#: measures of matched pairs: a counts table's four cells read as the table of pairs
PAIRED = ("MPRD", "MPRR", "MPOR", "MPORC", "MPPETO")
COUNTS = ("RR", "OR", "RD", "AS", "PHI", "YUQ", "YUY", "OR2DN", "OR2DL") + PAIRED + ("PBIT", "RTET")
#: measures of 2x2 counts computed from the log odds ratio's cells (corrected as OR)
ODDS_FAMILY = ("OR", "YUQ", "YUY", "OR2DN", "OR2DL")
#: every measure ivigmeta pools, by the kind of data it is computed from
KINDS: dict[str, tuple[str, ...]] = {
    "counts": COUNTS,
    "continuous": CONTINUOUS,
    "incidence": INCIDENCE,
    "proportion": PROPORTION,
    "change": CHANGE,
    "correlation": CORRELATION,
    "mean": MEAN,
    "rate": RATE,
    "partial_r2": PARTIAL_R2,
    "partial": PARTIAL,
}
ALL_MEASURES = (
    COUNTS + CONTINUOUS + INCIDENCE + PROPORTION + CORRELATION + MEAN + CHANGE + RATE + PARTIAL_R2
)
#: the measure of each kind of data when --measure is not given
DEFAULT_MEASURE = {
    "counts": "RR",
    "continuous": "MD",
    "incidence": "IRR",
    "proportion": "PLO",
    "change": "MC",
    "correlation": "ZCOR",
    "mean": "MN",
    "rate": "IRLN",
    "partial_r2": "ZPCOR",
    "partial": "ZPCOR",
}


#: what each measure is called in figure axes and reports
MEASURE_TITLES = {
    "RR": "Risk ratio",
    "OR": "Odds ratio",
    "RD": "Risk difference",
    "AS": "Arcsine risk difference",
    "PHI": "Phi coefficient",
    "YUQ": "Yule's Q",
    "YUY": "Yule's Y",
    "OR2DN": "Standardized mean difference (from the OR, normal)",
    "OR2DL": "Standardized mean difference (from the OR, logistic)",
    "PBIT": "Probit difference",
    "RTET": "Tetrachoric correlation",
    "MPRD": "Risk difference (matched pairs)",
    "MPRR": "Risk ratio (matched pairs)",
    "MPOR": "Odds ratio (matched pairs, marginal)",
    "MPORC": "Odds ratio (matched pairs, conditional)",
    "MPPETO": "Peto odds ratio (matched pairs, conditional)",
    "MD": "Mean difference",
    "SMD": "Standardized mean difference (Hedges' g)",
    "SMDH": "Standardized mean difference (heteroscedastic)",
    "ROM": "Ratio of means",
    "CVR": "Coefficient of variation ratio",
    "VR": "Variability ratio",
    "RPB": "Point-biserial correlation",
    "RBIS": "Biserial correlation",
    "D2ORL": "Log odds ratio from the SMD (logistic: pi/sqrt(3) d)",
    "D2ORN": "Log odds ratio from the SMD (normal: 1.65 d)",
    "D2OR": "Log odds ratio from the SMD (logistic, as D2ORL)",
    "IRR": "Incidence rate ratio",
    "IRD": "Incidence rate difference",
    "IRSD": "Square-root incidence rate difference",
    "PR": "Proportion",
    "PLO": "Proportion (logit)",
    "PAS": "Proportion (arcsine)",
    "PFT": "Proportion (Freeman-Tukey)",
    "PLN": "Proportion (log)",
    "ZCOR": "Correlation (Fisher's z)",
    "COR": "Correlation",
    "UCOR": "Correlation (unbiased)",
    "MN": "Mean",
    "MNLN": "Mean (log)",
    "CVLN": "Coefficient of variation",
    "SDLN": "Standard deviation",
    "IR": "Incidence rate",
    "IRLN": "Incidence rate (log)",
    "IRS": "Incidence rate (square root)",
    "IRFT": "Incidence rate (Freeman-Tukey)",
    "MC": "Mean change",
    "SMCC": "Standardized mean change (change-score SD)",
    "SMCR": "Standardized mean change (pre-test SD)",
    "SMCRH": "Standardized mean change (pre-test SD, heteroscedastic)",
    "ROMC": "Ratio of means (post/pre)",
    "PCOR": "Partial correlation",
    "ZPCOR": "Partial correlation (Fisher's z)",
    "SPCOR": "Semi-partial correlation",
}


class ScaledMeasure(str):
    """A measure name carrying what its back-transformation needs: for PFT the harmonic mean
    of the studies' sizes (metafor's ``transf.ipft.hm``). Equal to the plain name ("PFT")."""

    n_harmonic: float | None

    def __new__(cls, name: str, n_harmonic: float | None = None) -> ScaledMeasure:
        obj = super().__new__(cls, name)
        obj.n_harmonic = n_harmonic
        return obj

    def __reduce__(self):  # type: ignore[override]
        return (ScaledMeasure, (str(self), self.n_harmonic))


def kind_of(measure: str) -> str:
    """The kind of data ``measure`` is computed from (``counts`` for RR, OR, RD, AS; for PCOR
    and ZPCOR, which tables with and without R² both take, ``partial_r2``: the kind a table
    of rows with an R² has)."""
    return next(k for k, ms in KINDS.items() if measure in ms)


#: measures whose escalc default adds the correction to studies with a zero (``to="only0"``)
CORRECTED = ("PR", "PLN", "PLO", "IRR", "IRD", "IR", "IRLN")


def hedges_correction(m: np.ndarray) -> np.ndarray:
    """Exact small-sample correction c(m) of Hedges (1981); NaN for m <= 1 (as metafor)."""
    import numpy as np
    from scipy.special import gammaln

    m = np.asarray(m, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.exp(gammaln(m / 2) - np.log(np.sqrt(m / 2)) - gammaln((m - 1) / 2))
    return np.where(m <= 1, np.nan, c)


def continuous_effects(
    m1: np.ndarray,
    s1: np.ndarray,
    n1: np.ndarray,
    m2: np.ndarray,
    s2: np.ndarray,
    n2: np.ndarray,
    measure: str,
) -> tuple[np.ndarray, np.ndarray]:
    """``(yi, vi)`` of two-group means and SDs (formulas in the module docstring)."""
    import numpy as np

    m1, s1, n1, m2, s2, n2 = (np.asarray(x, dtype=float) for x in (m1, s1, n1, m2, s2, n2))
    with np.errstate(divide="ignore", invalid="ignore"):
        if measure == "MD":
            return m1 - m2, s1**2 / n1 + s2**2 / n2
        if measure == "ROM":
            return np.log(m1 / m2), s1**2 / (n1 * m1**2) + s2**2 / (n2 * m2**2)
        if measure in ("CVR", "VR"):
            c1, c2 = 1 / (2 * (n1 - 1)), 1 / (2 * (n2 - 1))
            if measure == "VR":
                return np.log(s1 / s2) + c1 - c2, c1 + c2
            pos = (m1 > 0) & (m2 > 0)
            yi = np.log(s1 / np.where(pos, m1, np.nan)) + c1 - np.log(s2 / m2) - c2
            return yi, c1 + s1**2 / (n1 * m1**2) + c2 + s2**2 / (n2 * m2**2)
        if measure in ("RPB", "RBIS"):
            return biserial_effects(m1, s1, n1, m2, s2, n2, measure)
        if measure in ("D2ORL", "D2ORN", "D2OR"):
            # Chinn 2000 (logistic: pi / sqrt(3)), Cox 1970 (normal: 1.65), as escalc: the
            # uncorrected d = (m1 - m2) / sp scaled to a log odds ratio
            factor = 1.65 if measure == "D2ORN" else math.pi / math.sqrt(3)
            sp = np.sqrt(((n1 - 1) * s1**2 + (n2 - 1) * s2**2) / (n1 + n2 - 2))
            d = (m1 - m2) / sp
            return factor * d, factor**2 * (1 / n1 + 1 / n2 + d**2 / (2 * (n1 + n2)))
        cm = hedges_correction(n1 + n2 - 2)
        if measure == "SMD":
            sp = np.sqrt(((n1 - 1) * s1**2 + (n2 - 1) * s2**2) / (n1 + n2 - 2))
            yi = cm * (m1 - m2) / sp
            return yi, 1 / n1 + 1 / n2 + yi**2 / (2 * (n1 + n2))
        if measure == "SMDH":
            ss = s1**2 + s2**2
            yi = cm * (m1 - m2) / np.sqrt(ss / 2)
            vi = yi**2 * (s1**4 / (n1 - 1) + s2**4 / (n2 - 1)) / (2 * ss**2) + (
                s1**2 / (n1 - 1) + s2**2 / (n2 - 1)
            ) / (ss / 2)
            return yi, cm**2 * vi
    raise ValueError(f"not a continuous measure: {measure}")


def biserial_effects(
    m1: np.ndarray,
    s1: np.ndarray,
    n1: np.ndarray,
    m2: np.ndarray,
    s2: np.ndarray,
    n2: np.ndarray,
    measure: str,
) -> tuple[np.ndarray, np.ndarray]:
    """``(yi, vi)`` of the point-biserial (RPB) or biserial (RBIS) correlation of two groups'
    means and SDs, as escalc (the formulas in the module docstring)."""
    import math

    import numpy as np
    from scipy.special import ndtri

    with np.errstate(divide="ignore", invalid="ignore"):
        n = n1 + n2
        df = n - 2
        d = (m1 - m2) / np.sqrt(((n1 - 1) * s1**2 + (n2 - 1) * s2**2) / df)
        h = df / n1 + df / n2
        yi = d / np.sqrt(d**2 + h)
        if measure == "RPB":
            return yi, h**2 / (h + d**2) ** 3 * (1 / n1 + 1 / n2 + d**2 / (2 * n))
        p1, p2 = n1 / n, n2 / n
        z = -ndtri(p1)  # qnorm(p1, lower.tail = FALSE)
        fz = np.exp(-(z**2) / 2) / math.sqrt(2 * math.pi)
        yi = np.sqrt(p1 * p2) / fz * yi
        yt = np.where(np.abs(yi) > 1, np.sign(yi), yi)
        vi = (p1 * p2 / fz**2 - (1.5 + (1 - p1 * z / fz) * (1 + p2 * z / fz)) * yt**2 + yt**4) / (
            n - 1
        )
    return yi, vi


def zero_added(has_zero: np.ndarray, measure: str, cc: float, cc_policy: str) -> np.ndarray:
    """The increment per row: escalc's default where the measure corrects at all."""
    import numpy as np

    if cc_policy == "all":
        return np.full(has_zero.shape, float(cc))
    if cc_policy == "only0" and measure in CORRECTED + ("RR", "OR", "RD"):
        return np.where(has_zero, float(cc), 0.0)
    return np.zeros(has_zero.shape)


def incidence_effects(
    x1: np.ndarray,
    t1: np.ndarray,
    x2: np.ndarray,
    t2: np.ndarray,
    measure: str,
    cc: float = 0.5,
    cc_policy: str = "only0",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(yi, vi, added)`` of two-group events over person-time."""
    import numpy as np

    x1, t1, x2, t2 = (np.asarray(x, dtype=float) for x in (x1, t1, x2, t2))
    add = zero_added((x1 == 0) | (x2 == 0), measure, cc, cc_policy)
    x1, x2 = x1 + add, x2 + add
    with np.errstate(divide="ignore", invalid="ignore"):
        if measure == "IRR":
            yi, vi = np.log(x1 / t1) - np.log(x2 / t2), 1 / x1 + 1 / x2
        elif measure == "IRD":
            yi, vi = x1 / t1 - x2 / t2, x1 / t1**2 + x2 / t2**2
        elif measure == "IRSD":
            yi, vi = np.sqrt(x1 / t1) - np.sqrt(x2 / t2), 1 / (4 * t1) + 1 / (4 * t2)
        else:
            raise ValueError(f"not an incidence measure: {measure}")
    return yi, vi, add


def proportion_effects(
    x: np.ndarray, n: np.ndarray, measure: str, cc: float = 0.5, cc_policy: str = "only0"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(yi, vi, added)`` of single-group events among totals."""
    import numpy as np

    x, n = (np.asarray(v, dtype=float) for v in (x, n))
    add = zero_added((x == 0) | (x == n), measure, cc, cc_policy)
    x, n = x + add, n + 2 * add
    p = x / n
    with np.errstate(divide="ignore", invalid="ignore"):
        if measure == "PR":
            yi, vi = p, p * (1 - p) / n
        elif measure == "PLN":
            yi, vi = np.log(p), 1 / x - 1 / n
        elif measure == "PLO":
            yi, vi = transforms.logit(p), 1 / x + 1 / (n - x)
        elif measure == "PAS":
            yi, vi = transforms.arcsin(p), 1 / (4 * n)
        elif measure == "PFT":
            yi, vi = transforms.freeman_tukey(x, n), 1 / (4 * n + 2)
        else:
            raise ValueError(f"not a proportion measure: {measure}")
    return yi, vi, add


def rate_effects(
    x: np.ndarray, t: np.ndarray, measure: str, cc: float = 0.5, cc_policy: str = "only0"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(yi, vi, added)`` of one group's events over person-time (escalc's IR, IRLN, IRS,
    IRFT)."""
    import numpy as np

    x, t = (np.asarray(v, dtype=float) for v in (x, t))
    add = zero_added(x == 0, measure, cc, cc_policy)
    x = x + add
    rate = x / t
    with np.errstate(divide="ignore", invalid="ignore"):
        if measure == "IR":
            yi, vi = rate, rate / t
        elif measure == "IRLN":
            yi, vi = np.log(rate), 1 / x
        elif measure == "IRS":
            yi, vi = np.sqrt(rate), 1 / (4 * t)
        elif measure == "IRFT":
            yi, vi = (np.sqrt(rate) + np.sqrt(rate + 1 / t)) / 2, 1 / (4 * t)
        else:
            raise ValueError(f"not a one-group rate measure: {measure}")
    return yi, vi, add


def olkin_pratt(g: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The Gauss hypergeometric function 2F1(1/2, 1/2; g; x) for g > 1 and 0 <= x <= 1 (UCOR's
    correction, with g = (n - 2)/2 and x = 1 - r²). scipy's ``hyp2f1`` for g < 20; above, where
    scipy gives NaN near x = 1, the power series, whose positive terms fall at least as fast as
    k! / (g)_k: 120 terms reach the last digit for every x in [0, 1]."""
    import numpy as np
    from scipy.special import hyp2f1

    g, x = np.broadcast_arrays(np.asarray(g, dtype=float), np.asarray(x, dtype=float))
    out = np.array(hyp2f1(0.5, 0.5, g, x), dtype=float, ndmin=1).reshape(g.shape)
    big = g >= 20
    if big.any():
        gb, xb = g[big], x[big]
        term = np.ones_like(gb)
        total = np.ones_like(gb)
        for k in range(120):
            term = term * (k + 0.5) ** 2 / ((gb + k) * (k + 1)) * xb
            total = total + term
        out[big] = total
    return out


def correlation_effects(
    r: np.ndarray, n: np.ndarray, measure: str
) -> tuple[np.ndarray, np.ndarray]:
    """``(yi, vi)`` of correlations ``r`` among ``n`` (escalc; NaN variance for n <= 3, NaN
    UCOR for n <= 4, as escalc)."""
    import numpy as np

    r, n = (np.asarray(v, dtype=float) for v in (r, n))
    with np.errstate(divide="ignore", invalid="ignore"):
        if measure == "ZCOR":
            yi, vi = transforms.rtoz(r), 1 / (n - 3)
        elif measure in ("COR", "UCOR"):
            if measure == "UCOR":
                g = (n - 2) / 2
                yi = np.where(g > 1, r * olkin_pratt(np.where(g > 1, g, 2.0), 1 - r**2), np.nan)
            else:
                yi = r
            vi = (1 - yi**2) ** 2 / (n - 1)
        else:
            raise ValueError(f"not a correlation measure: {measure}")
    return yi, np.where(n <= 3, np.nan, vi)


def mean_effects(
    mean: np.ndarray, sd: np.ndarray, n: np.ndarray, measure: str
) -> tuple[np.ndarray, np.ndarray]:
    """``(yi, vi)`` of one group's means, SDs and sizes (escalc's MN, MNLN, CVLN and SDLN)."""
    import numpy as np

    m, s, n = (np.asarray(v, dtype=float) for v in (mean, sd, n))
    with np.errstate(divide="ignore", invalid="ignore"):
        if measure == "MN":
            return m, s**2 / n
        if measure == "MNLN":
            return np.log(np.where(m >= 0, m, np.nan)), s**2 / (n * m**2)
        if measure == "CVLN":
            yi = np.log(s / np.where(m > 0, m, np.nan)) + 1 / (2 * (n - 1))
            return yi, 1 / (2 * (n - 1)) + s**2 / (n * m**2)
        if measure == "SDLN":
            return np.log(s) + 1 / (2 * (n - 1)), 1 / (2 * (n - 1))
    raise ValueError(f"not a one-group mean measure: {measure}")


def change_effects(
    m1: np.ndarray,
    m2: np.ndarray,
    s1: np.ndarray,
    s2: np.ndarray,
    n: np.ndarray,
    r: np.ndarray,
    measure: str,
) -> tuple[np.ndarray, np.ndarray]:
    """``(yi, vi)`` of one group's post-test and pre-test means ``m1``, ``m2``, SDs ``s1``,
    ``s2``, size ``n`` and correlation ``r`` (escalc's change measures; SMCR and SMCRH
    standardize by the pre-test SD ``s2``; NaN where escalc gives NaN, n <= 2 for the
    standardized ones)."""
    import numpy as np

    m1, m2, s1, s2, n, r = (np.asarray(v, dtype=float) for v in (m1, m2, s1, s2, n, r))
    with np.errstate(divide="ignore", invalid="ignore"):
        vard = s1**2 + s2**2 - 2 * r * s1 * s2
        if measure == "MC":
            return m1 - m2, vard / n
        if measure == "ROMC":
            yi = np.log(m1 / m2)
            return yi, s1**2 / (n * m1**2) + s2**2 / (n * m2**2) - 2 * r * s1 * s2 / (m1 * m2 * n)
        cm = hedges_correction(n - 1)
        if measure == "SMCC":
            yi = cm * (m1 - m2) / np.sqrt(vard)
            return yi, 1 / n + yi**2 / (2 * n)
        if measure == "SMCR":
            yi = cm * (m1 - m2) / s2
            return yi, 2 * (1 - r) / n + yi**2 / (2 * n)
        if measure == "SMCRH":
            yi = cm * (m1 - m2) / s2
            return yi, cm**2 * (vard / (s2**2 * (n - 1)) + yi**2 / (2 * (n - 1)))
    raise ValueError(f"not a change measure: {measure}")


def odds_family(
    a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray, measure: str
) -> tuple[np.ndarray, np.ndarray]:
    """``(yi, vi)`` of YUQ, YUY, OR2DN or OR2DL from (corrected) cells, as escalc."""
    import math

    import numpy as np

    a, b, c, d = (np.asarray(v, dtype=float) for v in (a, b, c, d))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        s = 1 / a + 1 / b + 1 / c + 1 / d
        if measure in ("YUQ", "YUY"):
            odds = (a / b) / (c / d)
            if measure == "YUQ":
                yi = (odds - 1) / (odds + 1)
                return yi, (1 - yi**2) ** 2 * s / 4
            yi = (np.sqrt(odds) - 1) / (np.sqrt(odds) + 1)
            return yi, (1 - yi**2) ** 2 * s / 16
        p1, p2 = a / (a + b), c / (c + d)
        log_or = np.log(p1 / (1 - p1)) - np.log(p2 / (1 - p2))
        if measure == "OR2DL":
            return math.sqrt(3) / math.pi * log_or, 3 / math.pi**2 * s
        if measure == "OR2DN":
            return log_or / 1.65, s / 1.65**2
    raise ValueError(f"not a measure of the odds ratio: {measure}")


def phi_coefficient(
    a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(yi, vi)`` of the phi coefficient of 2x2 cells (escalc's PHI, ``vtype = "LS"``)."""
    import numpy as np

    a, b, c, d = (np.asarray(v, dtype=float) for v in (a, b, c, d))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        n = a + b + c + d
        yi = (a * d - b * c) / np.sqrt((a + b) * (c + d) * (a + c) * (b + d))
        r1, r2, c1, c2 = (a + b) / n, (c + d) / n, (a + c) / n, (b + d) / n
        vi = (
            1
            - yi**2
            + yi * (1 + yi**2 / 2) * (r1 - r2) * (c1 - c2) / np.sqrt(r1 * r2 * c1 * c2)
            - 0.75 * yi**2 * ((r1 - r2) ** 2 / (r1 * r2) + (c1 - c2) ** 2 / (c1 * c2))
        ) / n
    return yi, vi


def probit_difference(
    a: np.ndarray, n1: np.ndarray, c: np.ndarray, n2: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(yi, vi)`` of escalc's PBIT from (corrected) events and totals."""
    import math

    import numpy as np
    from scipy.special import ndtri

    a, n1, c, n2 = (np.asarray(v, dtype=float) for v in (a, n1, c, n2))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        p1, p2 = a / n1, c / n2
        z1, z2 = ndtri(p1), ndtri(p2)
        vi = 2 * math.pi * (p1 * (1 - p1) * np.exp(z1**2) / n1 + p2 * (1 - p2) * np.exp(z2**2) / n2)
    return z1 - z2, vi


def matched_pairs(
    a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray, measure: str
) -> tuple[np.ndarray, np.ndarray]:
    """``(yi, vi)`` of a (corrected) table of matched pairs, escalc's MPRD, MPRR, MPOR, MPORC
    and MPPETO (formulas in the module docstring)."""
    import numpy as np

    a, b, c, d = (np.asarray(v, dtype=float) for v in (a, b, c, d))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if measure == "MPORC":
            return np.log(b) - np.log(c), 1 / b + 1 / c
        if measure == "MPPETO":
            v = (b + c) / 4
            return (b - (b + c) / 2) / v, 1 / v
        n = a + b + c + d
        p12, p21, p1, q1 = b / n, c / n, (a + b) / n, (a + c) / n
        spread = p12 * (1 - p12) + p21 * (1 - p21) + 2 * p12 * p21
        if measure == "MPRD":
            return p1 - q1, spread / n
        if measure == "MPRR":
            return np.log(p1) - np.log(q1), (p12 + p21) / (n * p1 * q1)
        if measure == "MPOR":
            yi = np.log(p1 / (1 - p1)) - np.log(q1 / (1 - q1))
            return yi, spread / (n * p1 * (1 - p1) * q1 * (1 - q1))
    raise ValueError(f"not a matched-pairs measure: {measure}")


def arcsine_difference(
    a: np.ndarray, n1: np.ndarray, c: np.ndarray, n2: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """AS from 2x2 counts: ``(yi, vi)``, no continuity correction."""
    import numpy as np

    a, n1, c, n2 = (np.asarray(v, dtype=float) for v in (a, n1, c, n2))
    with np.errstate(divide="ignore", invalid="ignore"):
        yi = np.arcsin(np.sqrt(a / n1)) - np.arcsin(np.sqrt(c / n2))
        return yi, 1 / (4 * n1) + 1 / (4 * n2)


#: measures analysed on the log scale (reported as exp)
LOG_SCALE = (
    *("RR", "OR", "ROM", "IRR", "PLN", "MNLN", "ROMC", "IRLN"),
    *("CVR", "VR", "CVLN", "SDLN", "MPRR", "MPOR", "MPORC", "MPPETO", "D2ORL", "D2ORN", "D2OR"),
)  # fmt: skip


def partial_effects(
    t: np.ndarray, n: np.ndarray, m: np.ndarray, measure: str, r2: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(yi, vi)`` of partial correlations from the t statistic ``t`` of a predictor in a
    regression on ``n`` observations with ``m`` other predictors (escalc's PCOR and ZPCOR) and,
    with the model's ``r2``, of semi-partial correlations (SPCOR); NaN where the degrees of
    freedom n - m - 1 are not positive."""
    import numpy as np

    t, n, m = (np.asarray(v, dtype=float) for v in (t, n, m))
    q = np.asarray(np.nan if r2 is None else r2, dtype=float)
    if measure == "SPCOR" and r2 is None:
        raise ValueError("SPCOR needs the model's R²")
    with np.errstate(divide="ignore", invalid="ignore"):
        df = np.where(n - m - 1 > 0, n - m - 1, np.nan)
        r = t / np.sqrt(t**2 + df)
        if measure == "PCOR":
            return r, (1 - r**2) ** 2 / df
        if measure == "ZPCOR":
            return transforms.rtoz(r), 1 / df
        if measure == "SPCOR":
            yi = t * np.sqrt(1 - q) / np.sqrt(df)
            return yi, (q**2 - 2 * q + (q - yi**2) + 1 - (q - yi**2) ** 2) / n
    raise ValueError(f"not a partial correlation measure: {measure}")


def reported_scalar(theta: float, measure: str, n_harmonic: float | None = None) -> float:
    """:func:`to_reported` of one value; for PFT ``n_harmonic`` is the harmonic mean size."""
    import math

    if measure in LOG_SCALE:  # the common case without numpy's per-call cost
        try:
            return math.exp(theta)
        except OverflowError:
            return math.inf
    if measure not in REPORTED_BY or math.isnan(theta):
        return theta
    n = None if n_harmonic is None else [n_harmonic]
    return float(to_reported(theta, measure, n))


#: metafor's transf.* function that takes each measure's values to the reported scale (exp for
#: the log measures, LOG_SCALE); core.transforms holds each formula
REPORTED_BY = {
    "PLO": "ilogit",
    "ZCOR": "ztor",
    "ZPCOR": "ztor",
    "IRS": "isqrt",
    "PAS": "iarcsin",
    "PFT": "ipft.hm",
}


#: metafor's integral back-transform (transf.*.int) of each measure's random-effects estimate:
#: the mean of the back-transformed true effects (``pool --transf-int``)
INTEGRAL_BY = {"ZCOR": "ztor.int", "ZPCOR": "ztor.int", "PLO": "ilogit.int"} | {
    m: "exp.int" for m in LOG_SCALE
}


def to_reported(
    theta: np.ndarray | float, measure: str, n: np.ndarray | list[float] | None = None
) -> np.ndarray:
    """Values on the analysis scale -> the reported scale, as metafor's ``predict(transf=...)``
    (:mod:`ivigmeta.core.transforms`): exp for log measures, tanh for ZCOR and ZPCOR
    (``transf.ztor``), the square (0 below 0, ``transf.isqrt``) for IRS, the inverse logit for
    PLO (``transf.ilogit``), sin² (clamped to [0, 1], ``transf.iarcsin``) for PAS, and for PFT
    Miller's (1978) inverse with the harmonic mean of the studies' sizes ``n``
    (``transf.ipft.hm``), 0 and 1 beyond the transforms of proportions 0 and 1."""
    import numpy as np

    t = np.asarray(theta, dtype=float)
    if measure in LOG_SCALE:
        return transforms.exp(t)
    name = REPORTED_BY.get(measure)
    if name is None:
        return t
    if name == "ipft.hm" and n is None:
        raise ValueError("PFT needs the sample sizes to back-transform")
    return transforms.TRANSFORMS[name](t, n=n)


#: RTET's root search stops when a step (or the bracket) is below this (|ρ| <= 1)
RTET_TOL = 1e-15


def tetrachoric(
    a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(yi, vi)`` of the maximum-likelihood tetrachoric correlation of 2x2 cells (escalc's RTET).

    With every cell positive the bivariate normal model with cut points h = Φ⁻¹((a + c)/n),
    k = Φ⁻¹((a + b)/n) is saturated, so ρ solves Φ2(h, k; ρ) = a/n (found by a bracketed Newton
    iteration, dΦ2/dρ = φ2(h, k; ρ)), and the inverse Hessian of the negative log-likelihood in
    (ρ, k, h) there is the inverse Fisher information n Σ_j g_j g_jᵀ / p_j (g_j the gradient of the
    cell probability p_j = cell/n): vi is its [ρ, ρ] element. The edge cases are escalc's: an empty
    margin gives yi = 0, vi = inf; b = c = 0 gives yi = 1, vi = 0; a = d = 0 gives yi = -1, vi = 0;
    one zero in b or c (a or d) gives yi = 1 (-1) with vi = inf: the likelihood is maximised on
    the boundary |ρ| = 1, and the variance of the root of a table with that cell ε grows without
    bound as ε -> 0 (escalc's optimiser reports an arbitrary finite value or NA there).
    """
    import numpy as np
    from scipy.special import ndtri

    a, b, c, d = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (a, b, c, d)))
    n = a + b + c + d
    yi = np.full(a.shape, np.nan)
    vi = np.full(a.shape, np.nan)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        empty = (a + b == 0) | (c + d == 0) | (a + c == 0) | (b + d == 0)
        perfect = ~empty & (b == 0) & (c == 0)
        inverse = ~empty & (a == 0) & (d == 0)
        plus = ~empty & ~perfect & ~inverse & ((b == 0) | (c == 0))
        minus = ~empty & ~perfect & ~inverse & ((a == 0) | (d == 0))
        inner = ~(empty | perfect | inverse | plus | minus) & np.isfinite(n)
        yi[empty], vi[empty] = 0.0, np.inf
        yi[perfect | plus], yi[inverse | minus] = 1.0, -1.0
        vi[perfect | inverse] = 0.0
        vi[plus | minus] = np.inf
        if inner.any():
            ai, bi, ci, di, ni = a[inner], b[inner], c[inner], d[inner], n[inner]
            h, k = ndtri((ai + ci) / ni), ndtri((ai + bi) / ni)
            rho = _tetrachoric_root(h, k, ai / ni, ai, bi, ci, di)
            yi[inner] = rho
            vi[inner] = _tetrachoric_variance(h, k, rho, ai, bi, ci, di)
    return yi, vi


def _bvn_density(h: np.ndarray, k: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """φ2(h, k; ρ), the exponent's h² - 2ρhk + k² written as (h - k)² + 2hk(1 - ρ)."""
    import numpy as np

    r2 = (1 - rho) * (1 + rho)
    q = ((h - k) ** 2 + 2 * h * k * (1 - rho)) / r2
    return np.exp(-q / 2) / (2 * math.pi * np.sqrt(r2))


def _tetrachoric_root(
    h: np.ndarray,
    k: np.ndarray,
    target: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    c: np.ndarray,
    d: np.ndarray,
) -> np.ndarray:
    """The ρ in (-1, 1) with Φ2(h, k; ρ) = target, every row at once: Newton steps kept inside a
    bracket that each evaluation narrows (bisection when a step leaves it), from the classical
    approximation cos(π / (1 + sqrt(ad/bc)))."""
    import numpy as np

    from ivigmeta.core.distributions import bvn_cdf

    lo, hi = np.full(h.shape, -1.0), np.full(h.shape, 1.0)
    rho = np.clip(np.cos(math.pi / (1 + np.sqrt(a * d / (b * c)))), -0.999, 0.999)
    active = np.ones(h.shape, bool)
    for _ in range(200):
        if not active.any():
            break
        i = np.flatnonzero(active)
        r = rho[i]
        f = bvn_cdf(h[i], k[i], r) - target[i]
        lo[i] = np.where(f < 0, r, lo[i])
        hi[i] = np.where(f > 0, r, hi[i])
        step = f / _bvn_density(h[i], k[i], r)
        new = r - step
        outside = ~((new > lo[i]) & (new < hi[i]))
        new = np.where(outside, (lo[i] + hi[i]) / 2, new)
        done = (f == 0) | (np.abs(new - r) <= RTET_TOL) | (hi[i] - lo[i] <= RTET_TOL)
        rho[i] = np.where(f == 0, r, new)
        active[i[done]] = False
    return rho


def _tetrachoric_variance(
    h: np.ndarray,
    k: np.ndarray,
    rho: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    c: np.ndarray,
    d: np.ndarray,
) -> np.ndarray:
    """[ρ, ρ] element of the inverse of n Σ_j g_j g_jᵀ / p_j over the four cells (the Hessian of
    the negative log-likelihood at the saturated optimum, where p_j = cell_j / n)."""
    import numpy as np
    from scipy.special import ndtr

    n = a + b + c + d
    r = np.sqrt((1 - rho) * (1 + rho))
    dens_h = np.exp(-(h**2) / 2) / math.sqrt(2 * math.pi)
    dens_k = np.exp(-(k**2) / 2) / math.sqrt(2 * math.pi)
    g_rho = _bvn_density(h, k, rho)
    # dΦ2/dh = φ(h) Φ((k - ρh)/r), dΦ2/dk = φ(k) Φ((h - ρk)/r)
    g_h = dens_h * ndtr(((k - h) + h * (1 - rho)) / r)
    g_k = dens_k * ndtr(((h - k) + k * (1 - rho)) / r)
    zero = np.zeros(h.shape)
    # gradients (ρ, k, h) of p_a = Φ2, p_b = Φ(k) - Φ2, p_c = Φ(h) - Φ2, p_d = 1 - Φ(h) - Φ(k) + Φ2
    cells = (
        (a, (g_rho, g_k, g_h)),
        (b, (-g_rho, dens_k - g_k, zero - g_h)),
        (c, (-g_rho, zero - g_k, dens_h - g_h)),
        (d, (g_rho, g_k - dens_k, g_h - dens_h)),
    )
    info = [[np.zeros(h.shape) for _ in range(3)] for _ in range(3)]
    for count, g in cells:
        p = count / n
        for i in range(3):
            for j in range(3):
                info[i][j] = info[i][j] + n * g[i] * g[j] / p
    # Schur complement of the cut points' block: 1 / vi = I_ρρ - I_ρc I_cc⁻¹ I_cρ
    det = info[1][1] * info[2][2] - info[1][2] ** 2
    quad = (
        info[0][1] ** 2 * info[2][2] - 2 * info[0][1] * info[0][2] * info[1][2]
        + info[0][2] ** 2 * info[1][1]
    ) / det  # fmt: skip
    return 1 / (info[0][0] - quad)
