"""Batch pooling: thousands to millions of meta-analyses at once, vectorized across groups.

The input is a long table, one row per study, with one or more *group* columns naming the
meta-analysis each study belongs to. :func:`batch_pool` is a pure function from a pandas DataFrame
(any subset of whole groups) to a results DataFrame with one row per group and the columns
:data:`OUTPUT_COLUMNS`; :func:`stream_batch` drives it over a table read in chunks with bounded
memory. The numbers are the ones :func:`ivigmeta.core.pooling.fit` gives for each group on its own
(tests/test_batch.py checks it, and checks both against metafor), computed with grouped reductions
(``np.add.reduceat`` over rows sorted by group) instead of a Python loop per meta-analysis.

Formulas (k studies in a group, w = 1 / v, intercept-only model; the scalar modules cite sources):

* effects as :mod:`ivigmeta.core.effects` (escalc), Q / I² as :mod:`ivigmeta.core.heterogeneity`;
* tau²: DL (DerSimonian & Laird 1986); HE (Hedges 1983), (RSS - (k - 1)/k sum v) / (k - 1) with
  RSS = sum (y - mean y)²; SJ (Sidik & Jonkman 2005, metafor's single step from
  tau0² = sum (y - mean y)² / k): tau0² sum w0 (y - theta0)² / (k - 1), w0 = 1 / (v + tau0²);
  ML and REML by Fisher scoring from max(0, HE) with metafor's step halving at 0 and its check of
  the likelihood at tau² = 0 (Viechtbauer 2005), and the scalar core's search of the likelihood
  over 16 decades where scoring fails or stops at 0: ML adj = (sum w² r² - sum w) / sum w², REML
  adj = (sum w² r² - tr P) / tr P², tr P = sum w - sum w² / sum w,
  tr P² = sum w² - 2 sum w³ / sum w + (sum w²)² / (sum w)²; PM (Paule & Mandel 1982), the root of
  sum w (y - theta)² = k - 1 by safeguarded Newton steps (d/dtau² = -sum w² r²), 0 when Q < k - 1.
  Every iterative estimator iterates all groups at once, each until its own relative change is
  below 1e-12 (as ivigmeta.core.tau2), at most 1000 iterations.
* random effects, Hartung-Knapp (t on k - 1 df) and prediction interval as :mod:`ivigmeta.core.pooling`;
* Mantel-Haenszel (raw counts, no correction; Robins-Breslow-Greenland variance for OR, Greenland &
  Robins 1985 for RR, Sato-Greenland-Robins 1989 for RD, as metafor's ``rma.mh``) and Peto's
  one-step odds ratio (Yusuf et al. 1985; sum (O - E) / sum V with hypergeometric V).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ivigmeta.core.distributions import z_crit
from ivigmeta.errors import DataError, ModelError
from ivigmeta.io.chunks import (  # noqa: F401 - ChunkReader and the constants are re-exported
    DEFAULT_CHUNK_ROWS,
    ERROR_COLUMN,
    ROW_COLUMN,
    ChunkReader,
    Rows,
    Span,
    _row_error,
    check_columns,
    split_spans,
    suspect_rows,
)
from ivigmeta.io.studies import COUNT_COLUMNS, LABEL_COLUMN, YEAR_COLUMN

if TYPE_CHECKING:  # pandas is imported by the functions that need it
    import pandas as pd

RESULT_COLUMNS = (
    "k",
    "common_theta",
    "common_se",
    "common_estimate",
    "common_ci_low",
    "common_ci_high",
    "common_p_value",
    "random_theta",
    "random_se",
    "random_estimate",
    "random_ci_low",
    "random_ci_high",
    "random_p_value",
    "random_pi_low",
    "random_pi_high",
    "q",
    "df",
    "q_p_value",
    "i2",
    "tau2",
    "n_excluded",
    "status",
    "reason",
)
"""Output columns after the group key columns (a public contract: see docs/batch.md)."""

INT_COLUMNS = ("k", "df", "n_excluded")
TEXT_COLUMNS = ("status", "reason")
FLOAT_COLUMNS = tuple(c for c in RESULT_COLUMNS if c not in INT_COLUMNS + TEXT_COLUMNS)

STATUS_OK = "ok"
STATUS_SINGLE = "single"
STATUS_ERROR = "error"

BATCH_TAU2_METHODS = ("DL", "REML", "ML", "PM", "HE", "SJ")
BATCH_CI_METHODS = ("z", "hk")
BATCH_COMMON_METHODS = ("IV", "MH", "PETO")


# Convergence as the scalar estimators (ivigmeta.core.tau2): relative change below REL_TOL (tighter
# than the 1e-10 the issue asks), an absolute floor for tau² heading to 0, at most MAXITER steps
# (a fit whose last relative change was below CONVERGED_TOL still counts as converged).
REL_TOL = 1e-12
ABS_TOL = 1e-300
CONVERGED_TOL = 1e-10
MAXITER = 1000
LL0_TOL = 1e-12
EPS = 2.220446049250313e-16


@dataclass(frozen=True)
class BatchOptions:
    """How every group is analysed; the same meanings as the ``pool`` options."""

    measure: str = "RR"
    cc: float = 0.5
    cc_policy: str = "only0"
    tau2_method: str = "DL"
    ci_method: str = "z"
    common_method: str = "IV"
    level: float = 0.95
    keep_double_zero: bool = True
    """Keep double-zero studies in RR / OR analyses (with the correction), as the library's
    ``compute_effects``; ``False`` excludes them (the CLI default, ``--keep-double-zero`` keeps)."""

    def checked(self) -> BatchOptions:
        """Normalized options; unknown names are a ModelError/DataError naming the choices."""
        from ivigmeta.core.effects import CC_POLICIES, normalize_measure

        measure = normalize_measure(self.measure)
        if self.cc_policy not in CC_POLICIES:
            raise DataError(
                f"unknown continuity-correction policy '{self.cc_policy}' "
                f"(choose one of {', '.join(CC_POLICIES)})"
            )
        if not (self.cc >= 0 and math.isfinite(self.cc)):
            raise DataError(
                f"the continuity correction must be a non-negative number, not {self.cc}"
            )
        tau2 = self.tau2_method.upper()
        if tau2 not in BATCH_TAU2_METHODS:
            raise ModelError(
                f"unknown tau² estimator '{self.tau2_method}' "
                f"(choose one of {', '.join(BATCH_TAU2_METHODS)})"
            )
        ci = self.ci_method.lower()
        if ci not in BATCH_CI_METHODS:
            raise ModelError(
                f"unknown interval method '{self.ci_method}' "
                f"(choose one of {', '.join(BATCH_CI_METHODS)})"
            )
        common = self.common_method.upper()
        if common not in BATCH_COMMON_METHODS:
            raise ModelError(
                f"unknown common-effect method '{self.common_method}' "
                f"(choose one of {', '.join(BATCH_COMMON_METHODS)})"
            )
        if common == "PETO" and measure != "OR":
            raise ModelError("Peto's method pools odds ratios: use it with --measure OR")
        if not 0 < self.level < 1:
            raise ModelError(
                f"the confidence level must be between 0 and 100 percent, not {self.level * 100:g}"
            )
        return BatchOptions(
            measure,
            float(self.cc),
            self.cc_policy,
            tau2,
            ci,
            common,
            self.level,
            bool(self.keep_double_zero),
        )


# ----------------------------------------------------------------------------------------------
# grouped reductions


def _gsum(x: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Per-group sums of ``x`` (rows sorted by group, every group non-empty)."""
    return np.add.reduceat(x, starts)


_ERFC = np.frompyfunc(math.erfc, 1, 1)


def _erfc(x: np.ndarray) -> np.ndarray:
    """math.erfc element by element: the scalar core's exact normal tails, without scipy."""
    x = np.asarray(x, dtype=float)
    return _ERFC(x).astype(float) if x.size else np.empty(0)


def _norm_p(z: np.ndarray) -> np.ndarray:
    """Two-sided normal p-value 2 P(Z > |z|) = erfc(|z| / sqrt 2)."""
    return _erfc(np.abs(z) / math.sqrt(2.0))


def _chi2_sf(x: np.ndarray, df: np.ndarray) -> np.ndarray:
    """Upper tail of chi-square with whole-number ``df`` (Q's k - 1), closed form, no scipy.

    With h = x / 2 and m = floor(df / 2): for even df, P = exp(-h) sum_{j<m} h^j / j!; for odd df,
    P = erfc(sqrt h) + exp(-h) sum_{j<m} h^(j + 1/2) / Gamma(j + 3/2) (Abramowitz & Stegun
    26.4.4-5). The terms are summed relative to the largest one in log space, so large Q and large
    df neither overflow nor underflow before the end.
    """
    x = np.asarray(x, dtype=float)
    df = np.asarray(df, dtype=float)
    out = np.full(x.shape, np.nan)
    ok = np.isfinite(x) & (df >= 1)
    out[np.isinf(x) & (x > 0)] = 0.0
    zero = ok & (x <= 0)
    out[zero] = 1.0
    ok &= x > 0
    if not ok.any():
        return out
    h = x[ok] / 2.0
    n = df[ok].astype(np.int64)
    m = n // 2
    odd = (n % 2) == 1
    off = np.where(odd, 0.5, 0.0)  # the sum runs over j + off
    top = int(m.max())
    # log Gamma(j + off + 1) for j < top, both parities, from a small table.
    lg_even = np.array([math.lgamma(j + 1.0) for j in range(max(top, 1))])
    lg_odd = np.array([math.lgamma(j + 1.5) for j in range(max(top, 1))])
    logh = np.log(h)
    # Largest term: j + off nearest h - ... ; take j* = clip(floor(h - off), 0, m - 1).
    jstar = np.clip(np.floor(h - off), 0, np.maximum(m - 1, 0)).astype(np.int64)
    lg_star = np.where(
        odd,
        lg_odd[np.minimum(jstar, len(lg_odd) - 1)],
        lg_even[np.minimum(jstar, len(lg_even) - 1)],
    )
    lead = -h + (jstar + off) * logh - lg_star
    # Work on the elements sorted by m, descending: term j only concerns a prefix of them.
    order = np.argsort(-m, kind="stable")
    hs, logs, offs, leads, odds = h[order], logh[order], off[order], lead[order], odd[order]
    live_counts = np.searchsorted(-m[order], -np.arange(top), side="left")  # #{m > j}
    total_s = np.zeros(h.shape)
    with np.errstate(under="ignore"):
        for j in range(top):
            c = int(live_counts[j])
            if c == 0:
                break
            lg = np.where(odds[:c], lg_odd[j], lg_even[j])
            total_s[:c] += np.exp(-hs[:c] + (j + offs[:c]) * logs[:c] - lg - leads[:c])
        total = np.empty_like(total_s)
        total[order] = total_s
        series = np.where(m > 0, np.exp(lead) * total, 0.0)
    tail = np.where(odd, _erfc(np.sqrt(h)), 0.0)
    out[ok] = tail + series
    return out


def _back(theta: np.ndarray, measure: str) -> np.ndarray:
    if measure in ("RR", "OR"):
        with np.errstate(over="ignore"):
            return np.exp(theta)
    return theta


class _Groups:
    """Rows sorted by group: the start of each group, its size and each row's group index."""

    def __init__(self, sizes: np.ndarray) -> None:
        self.sizes = sizes
        self.starts = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.intp)
        self.index = np.repeat(np.arange(len(sizes)), sizes)

    def sum(self, x: np.ndarray) -> np.ndarray:
        return _gsum(x, self.starts)

    def take(self, mask: np.ndarray) -> tuple[_Groups, np.ndarray]:
        """The groups where ``mask`` holds, and the row mask selecting their rows."""
        rows = mask[self.index]
        return _Groups(self.sizes[mask]), rows


# ----------------------------------------------------------------------------------------------
# effect sizes


def _effects(a, n1, c, n2, measure, cc, cc_policy, keep_double_zero=True):
    """yi, vi and a usable-row mask, as :func:`ivigmeta.core.effects.compute_effects` row by row.

    Without ``keep_double_zero`` a ratio analysis leaves out studies with no events in either arm
    (and, for OR, events in every participant of both arms).
    """
    if keep_double_zero or measure == "RD":
        double_zero = np.zeros(a.shape, bool)
    else:
        double_zero = (a == 0) & (c == 0)
        if measure == "OR":
            double_zero |= (a == n1) & (c == n2)
    b, d = n1 - a, n2 - c
    has_zero = (a == 0) | (b == 0) | (c == 0) | (d == 0)
    if cc_policy == "all":
        add = np.full(a.shape, cc)
    elif cc_policy == "only0":
        add = np.where(has_zero, cc, 0.0)
    else:
        add = np.zeros(a.shape)
    a, b, c, d = a + add, b + add, c + add, d + add
    n1, n2 = a + b, c + d
    with np.errstate(divide="ignore", invalid="ignore"):
        if measure == "RR":
            yi = np.log(a / n1) - np.log(c / n2)
            vi = b / (a * n1) + d / (c * n2)  # = 1/a - 1/n1 + 1/c - 1/n2, without cancellation
        elif measure == "OR":
            yi = np.log(a) + np.log(d) - np.log(b) - np.log(c)
            vi = 1 / a + 1 / b + 1 / c + 1 / d
        else:
            p1, p2 = a / n1, c / n2
            yi = p1 - p2
            vi = p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2
    ok = np.isfinite(yi) & np.isfinite(vi) & (vi > 0) & ~double_zero
    return yi, vi, ok, has_zero, add


# ----------------------------------------------------------------------------------------------
# tau² estimators (vectorized over groups)


def _fe_parts(y, v, g: _Groups):
    w = 1.0 / v
    sw = g.sum(w)
    theta = g.sum(w * y) / sw
    r = y - theta[g.index]
    q = g.sum(w * r * r)
    return w, sw, theta, q


def _tau2_dl(y, v, g, k):
    w, sw, _, q = _fe_parts(y, v, g)
    c = sw - g.sum(w * w) / sw
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.maximum(0.0, (q - (k - 1)) / c)
    return np.where(c > 0, t, 0.0), np.ones(len(k), bool)


def _tau2_he(y, v, g, k):
    mean = g.sum(y) / k
    r = y - mean[g.index]
    rss = g.sum(r * r)
    t = (rss - (k - 1) / k * g.sum(v)) / (k - 1)
    return np.maximum(0.0, t), np.ones(len(k), bool)


def _tau2_sj(y, v, g, k):
    mean = g.sum(y) / k
    r = y - mean[g.index]
    t0 = g.sum(r * r) / k
    w = 1.0 / (v + t0[g.index])
    theta = g.sum(w * y) / g.sum(w)
    r = y - theta[g.index]
    return t0 * g.sum(w * r * r) / (k - 1), np.ones(len(k), bool)


def _score_parts(y, v, g: _Groups, tau2: np.ndarray, reml: bool) -> tuple[np.ndarray, np.ndarray]:
    """Fisher scoring numerator and information per group at ``tau2``.

    ML: (sum w² r² - sum w, sum w²); REML: (sum w² r² - tr P, tr P²) with
    tr P = sum w - sum w² / sum w and tr P² = sum w² - 2 sum w³ / sum w + (sum w²)² / (sum w)².
    """
    w = 1.0 / (v + tau2[g.index])
    sw = g.sum(w)
    theta = g.sum(w * y) / sw
    r = y - theta[g.index]
    w2 = w * w
    sw2 = g.sum(w2)
    yppy = g.sum(w2 * r * r)
    if reml:
        tr_p = sw - sw2 / sw
        tr_pp = sw2 - 2.0 * g.sum(w2 * w) / sw + sw2 * sw2 / (sw * sw)
        return yppy - tr_p, tr_pp
    return yppy - sw, sw2


def _loglik(y, v, g, k, tau2, reml):
    w = 1.0 / (v + tau2[g.index])
    sw = g.sum(w)
    theta = g.sum(w * y) / sw
    r = y - theta[g.index]
    rss = g.sum(w * r * r)
    slv = g.sum(np.log(v + tau2[g.index]))
    if reml:
        return -0.5 * (k - 1) * math.log(2 * math.pi) - 0.5 * slv - 0.5 * np.log(sw) - 0.5 * rss
    return -0.5 * k * math.log(2 * math.pi) - 0.5 * slv - 0.5 * rss


def _tau2_fisher(y, v, g, k, reml):
    """ML / REML by Fisher scoring, all groups at once, each until its own convergence.

    As the scalar estimator (ivigmeta.core.tau2): start at max(0, HE); a step that would make tau²
    negative ends at tau² = 0 when the score at 0 is not positive (a boundary optimum), and is
    halved otherwise; stop when |change| <= REL_TOL tau² (or <= ABS_TOL); then metafor's
    ll0check. Converged groups leave the working arrays.
    """
    n = len(k)
    tau2, _ = _tau2_he(y, v, g, k)
    num0, _ = _score_parts(y, v, g, np.zeros(n), reml)
    converged = np.zeros(n, bool)
    last_rel = np.full(n, np.inf)
    active = np.arange(n)
    yy, vv, gg = y, v, g
    for _ in range(MAXITER):
        t = tau2[active]
        num, info = _score_parts(yy, vv, gg, t, reml)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            adj = num / info
        # Extreme variances (weights under- or overflow): stop scoring, search the range below.
        broken = ~np.isfinite(adj)
        adj = np.where(broken, 0.0, adj)
        leave = t + adj < 0
        boundary = leave & (num0[active] <= 0)
        halve = leave & ~boundary
        while halve.any():
            adj[halve] /= 2.0
            halve &= t + adj < 0
        new = np.where(boundary, 0.0, t + adj)
        change = np.abs(new - t)
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.where(new > 0, change / new, np.where(change == 0, 0.0, np.inf))
        done = (boundary | (change <= REL_TOL * new) | (change <= ABS_TOL)) & ~broken
        tau2[active] = np.where(broken, t, new)
        last_rel[active] = np.where(broken, np.inf, rel)
        converged[active[done]] = True
        done |= broken
        if done.all():
            break
        keep = ~done
        gg, rows = gg.take(keep)
        yy, vv = yy[rows], vv[rows]
        active = active[keep]
    converged |= last_rel <= CONVERGED_TOL
    # metafor's ll0check: a local maximum below the likelihood at tau² = 0.
    check = converged & (tau2 > 0)
    if check.any():
        ll0 = _loglik(y, v, g, k, np.zeros(n), reml)
        ll = _loglik(y, v, g, k, tau2, reml)
        tau2 = np.where(check & (ll0 - ll > LL0_TOL), 0.0, tau2)
    # Scoring that oscillates, or stops at 0 while a positive tau² has the larger likelihood (a
    # multimodal likelihood): search the whole range, as the scalar estimator does.
    search = ~converged | (tau2 == 0.0)
    if search.any():
        best = _global_maximum(y, v, g, k, reml, search)
        take = search & (~converged | (best > 0.0))
        tau2 = np.where(take, best, tau2)
        converged = converged | take
    return tau2, converged


def _global_maximum(y, v, g, k, reml, sel):
    """Per selected group, the tau² maximizing the (restricted) likelihood over 16 decades.

    As ivigmeta.core.tau2._global_maximum: the score on the grid upper 10^(-j/6), j = 96..0, with
    upper = 10 max(1, mad(y)², max v); every change of sign from positive to non-positive between
    neighbours (starting from tau² = 0) is a local maximum, refined by bisection to double
    precision; the first candidate (0, then in increasing tau²) with the largest likelihood
    wins. All groups and all their candidates at once. Returns an array over all groups (0 where
    not selected).
    """
    n = len(k)
    out = np.zeros(n)
    gs, rows = g.take(sel)
    ys, vs, ks = y[rows], v[rows], k[sel]
    m = len(ks)
    upper = 10.0 * np.maximum(np.maximum(1.0, _mad2(ys, gs)), np.maximum.reduceat(vs, gs.starts))
    cand_group, cand_lo, cand_hi = [], [], []
    prev_t = np.zeros(m)
    with np.errstate(all="ignore"):
        prev_f = _score_parts(ys, vs, gs, prev_t, reml)[0]
        for j in range(96, -1, -1):
            t = upper * 10.0 ** (-j / 6.0)
            f = _score_parts(ys, vs, gs, t, reml)[0]
            hit = np.flatnonzero((prev_f > 0.0) & (f <= 0.0))
            if hit.size:
                cand_group.append(hit)
                cand_lo.append(prev_t[hit])
                cand_hi.append(t[hit])
            prev_t, prev_f = t, f
    best_t = np.zeros(m)
    with np.errstate(all="ignore"):
        best_ll = _loglik(ys, vs, gs, ks, np.zeros(m), reml)
    if cand_group:
        cg = np.concatenate(cand_group)
        lo = np.concatenate(cand_lo)
        hi = np.concatenate(cand_hi)
        # Candidates in increasing tau² within each group (grid order), then by group.
        order = np.lexsort((lo, cg))
        cg, lo, hi = cg[order], lo[order], hi[order]
        # One virtual group per candidate: the rows of its group, repeated.
        sizes = gs.sizes[cg]
        gc = _Groups(sizes)
        src = np.repeat(gs.starts[cg], sizes) + (
            np.arange(sizes.sum()) - np.repeat(gc.starts, sizes)
        )
        yc, vc = ys[src], vs[src]
        done = np.zeros(len(cg), bool)
        with np.errstate(all="ignore"):
            for _ in range(200):
                mid = 0.5 * (lo + hi)
                up = _score_parts(yc, vc, gc, mid, reml)[0] > 0.0
                lo = np.where(~done & up, mid, lo)
                hi = np.where(~done & ~up, mid, hi)
                done |= hi - lo <= 4e-16 * hi
                if done.all():
                    break
            root = 0.5 * (lo + hi)
            ll = _loglik(yc, vc, gc, ks[cg].astype(float), root, reml)
        rank = np.arange(len(cg)) - np.searchsorted(cg, cg, side="left")
        for r in range(int(rank.max()) + 1):
            at = rank == r
            grp = cg[at]
            better = ll[at] > best_ll[grp]
            best_t[grp[better]] = root[at][better]
            best_ll[grp[better]] = ll[at][better]
    out[sel] = best_t
    return out


def _q_gen(y, v, g, tau2):
    """Generalized Q, sum w (y - theta)², and its slope -sum w² (y - theta)², w = 1/(v + tau²)."""
    w = 1.0 / (v + tau2[g.index])
    theta = g.sum(w * y) / g.sum(w)
    r = y - theta[g.index]
    wr2 = w * r * r
    return g.sum(wr2), -g.sum(w * wr2)


def _mad2(y, g: _Groups) -> np.ndarray:
    """R's mad(y)² per group (1.4826 x median absolute deviation), metafor's search scale."""
    # Sort within groups by (group, y) and take middle elements; all vectorized.
    order = np.lexsort((y, g.index))
    ys = y[order]
    lo = g.starts + (g.sizes - 1) // 2
    hi = g.starts + g.sizes // 2
    med = 0.5 * (ys[lo] + ys[hi])
    dev = np.abs(y - med[g.index])
    ds = dev[np.lexsort((dev, g.index))]
    return (1.4826 * 0.5 * (ds[lo] + ds[hi])) ** 2


def _tau2_pm(y, v, g, k):
    """Paule-Mandel: the root of Q(tau²) = k - 1, or 0 when Q(0) <= k - 1.

    As the scalar estimator: bracket [0, hi] with hi doubled from max(100, 10 mad²) until
    Q(hi) <= k - 1; Newton steps kept inside the shrinking bracket, bisection otherwise, to double
    precision. All groups at once; finished groups leave the working arrays.
    """
    n = len(k)
    tau2 = np.zeros(n)
    conv = np.ones(n, bool)
    q0, _ = _q_gen(y, v, g, tau2)
    pos = q0 > k - 1
    if not pos.any():
        return tau2, conv
    gp, rows = g.take(pos)
    yp, vp, target = y[rows], v[rows], k[pos] - 1
    hi = np.maximum(100.0, 10.0 * _mad2(yp, gp))
    for _ in range(200):
        qh, _ = _q_gen(yp, vp, gp, hi)
        low = qh > target
        if not low.any():
            break
        hi = np.where(low, hi * 2.0, hi)
    m = len(target)
    lo = np.zeros(m)
    x = np.zeros(m)
    active = np.arange(m)
    yy, vv, gg = yp, vp, gp
    for _ in range(MAXITER * 10):
        xa, la, ha = x[active], lo[active], hi[active]
        q, slope = _q_gen(yy, vv, gg, xa)
        fx = q - target[active]
        la = np.where(fx > 0, xa, la)
        ha = np.where(fx < 0, xa, ha)
        with np.errstate(divide="ignore", invalid="ignore"):
            new = np.where(slope < 0, xa - fx / slope, np.nan)
        inside = (la < new) & (new < ha)
        new = np.where(inside, new, 0.5 * (la + ha))
        done = (
            (fx == 0) | (np.abs(new - xa) <= 4e-16 * np.abs(new)) | (ha - la <= 4e-16 * np.abs(ha))
        )
        x[active] = np.where(fx == 0, xa, new)
        lo[active], hi[active] = la, ha
        if done.all():
            break
        keep = ~done
        gg, r = gg.take(keep)
        yy, vv = yy[r], vv[r]
        active = active[keep]
    tau2[pos] = x
    return tau2, conv


def _tau2(method, y, v, g, k):
    if method == "DL":
        return _tau2_dl(y, v, g, k)
    if method == "HE":
        return _tau2_he(y, v, g, k)
    if method == "SJ":
        return _tau2_sj(y, v, g, k)
    if method == "PM":
        return _tau2_pm(y, v, g, k)
    return _tau2_fisher(y, v, g, k, reml=(method == "REML"))


# ----------------------------------------------------------------------------------------------
# common-effect estimators


def _common_iv(y, v, g):
    w = 1.0 / v
    sw = g.sum(w)
    return g.sum(w * y) / sw, np.sqrt(1.0 / sw)


COMMON_ERRORS = (
    "",
    "the Mantel-Haenszel odds ratio is undefined: no study has events in the treated arm and "
    "non-events in the control arm",
    "the Mantel-Haenszel odds ratio is undefined: no study has non-events in the treated arm and "
    "events in the control arm",
    "the Mantel-Haenszel risk ratio is undefined: an arm has no events in any study",
    "the Mantel-Haenszel standard error is zero: no variation to test",
    "Peto's odds ratio is undefined: no study has both events and non-events",
)
"""Why a Mantel-Haenszel or Peto estimate is undefined (the scalar core's ModelError texts)."""


def _common_mh(a, n1, c, n2, g, measure):
    """Mantel-Haenszel on raw counts, as metafor's rma.mh: (theta, se, error code per group)."""
    b, d = n1 - a, n2 - c
    n = n1 + n2
    code = np.zeros(len(g.sizes), np.int8)
    with np.errstate(divide="ignore", invalid="ignore"):
        if measure == "OR":
            p, q = (a + d) / n, (b + c) / n
            ri, si = a * d / n, b * c / n
            r, s = g.sum(ri), g.sum(si)
            theta = np.log(r / s)
            se = np.sqrt(
                0.5
                * (g.sum(p * ri) / r**2 + g.sum(p * si + q * ri) / (r * s) + g.sum(q * si) / s**2)
            )
            code[s == 0] = 2
            code[r == 0] = 1
        elif measure == "RR":
            r, s = g.sum(a * n2 / n), g.sum(c * n1 / n)
            theta = np.log(r / s)
            se = np.sqrt(g.sum(n1 / n * n2 / n * (a + c) - a / n * c) / (r * s))
            code[(g.sum(a) == 0) | (g.sum(c) == 0)] = 3
        else:
            sww = g.sum(n1 * n2 / n)
            theta = g.sum(a * n2 / n - c * n1 / n) / sww
            part1 = g.sum(
                c * (n1 / n) ** 2 - a * (n2 / n) ** 2 + (n1 / n) * (n2 / n) * (n2 - n1) / 2
            )
            part2 = g.sum(a * (n2 - c) / n + c * (n1 - a) / n)
            se = np.sqrt((theta * part1 + part2 / 2) / sww**2)
    code[(code == 0) & ~(se > 0)] = 4
    return theta, se, code


def _common_peto(a, n1, c, n2, g):
    """Peto's one-step odds ratio on raw counts, as metafor's rma.peto: (theta, se, code)."""
    n = n1 + n2
    xt, yt = a + c, n - a - c
    oe = a - xt * n1 / n
    var = xt * yt * (n1 / n) * (n2 / n) / (n - 1)
    sv = g.sum(var)
    with np.errstate(divide="ignore", invalid="ignore"):
        theta = g.sum(oe) / sv
        se = 1.0 / np.sqrt(sv)
    code = np.where(sv <= 0, 5, 0).astype(np.int8)
    return theta, se, code


# ----------------------------------------------------------------------------------------------
# the pure numpy core


def pool_arrays(
    sizes: np.ndarray,
    a: np.ndarray,
    n1: np.ndarray,
    c: np.ndarray,
    n2: np.ndarray,
    options: BatchOptions,
) -> dict[str, np.ndarray]:
    """Pool groups of valid counts (rows sorted by group, ``sizes`` rows per group).

    Returns arrays, one value per group, for every numeric column of :data:`RESULT_COLUMNS`
    plus ``converged``, ``common_error`` (an index into :data:`COMMON_ERRORS`, 0 when defined) and
    ``usable`` (a row mask: which studies entered the analysis).
    Groups with no usable study or a single one get NaN estimates (the caller labels them).
    """
    opts = options
    ngroups = len(sizes)
    out: dict[str, np.ndarray] = {name: np.full(ngroups, np.nan) for name in FLOAT_COLUMNS}
    yi, vi, usable, _, _ = _effects(
        a, n1, c, n2, opts.measure, opts.cc, opts.cc_policy, opts.keep_double_zero
    )
    allg = _Groups(np.asarray(sizes, dtype=np.intp))
    kept = (
        np.bincount(allg.index[usable], minlength=ngroups)
        if len(usable)
        else np.zeros(ngroups, int)
    )
    out["k"] = kept.astype(np.int64)
    out["n_excluded"] = (allg.sizes - kept).astype(np.int64)
    out["converged"] = np.ones(ngroups, bool)
    out["common_error"] = np.zeros(ngroups, np.int8)
    out["usable"] = usable
    pooled = kept >= 2
    out["df"] = np.where(pooled, kept - 1, 0).astype(np.int64)
    if not pooled.any():
        return out
    # Rows of the pooled groups that enter the analysis, still sorted by group.
    row_in = usable & pooled[allg.index]
    g = _Groups(kept[pooled])
    y, v = yi[row_in], vi[row_in]
    k = g.sizes.astype(float)
    idx = np.flatnonzero(pooled)

    crit = z_crit(opts.level)
    # Common effect.
    if opts.common_method == "IV":
        ct, cse = _common_iv(y, v, g)
    elif opts.common_method == "MH":
        ct, cse, code = _common_mh(a[row_in], n1[row_in], c[row_in], n2[row_in], g, opts.measure)
        out["common_error"][idx] = code
    else:
        ct, cse, code = _common_peto(a[row_in], n1[row_in], c[row_in], n2[row_in], g)
        out["common_error"][idx] = code
    out["common_theta"][idx] = ct
    out["common_se"][idx] = cse
    with np.errstate(divide="ignore", invalid="ignore"):  # undefined MH/Peto: flagged above
        out["common_ci_low"][idx] = ct - crit * cse
        out["common_ci_high"][idx] = ct + crit * cse
        out["common_p_value"][idx] = _norm_p(ct / cse)

    # Heterogeneity (inverse variance, about the IV common effect).
    w, sw, _, q = _fe_parts(y, v, g)
    df = k - 1
    out["q"][idx] = q
    out["q_p_value"][idx] = _chi2_sf(q, df)

    tau2, conv = _tau2(opts.tau2_method, y, v, g, k)
    out["tau2"][idx] = tau2
    out["converged"][idx] = conv
    denom = sw * sw - g.sum(w * w)
    with np.errstate(divide="ignore", invalid="ignore"):
        s2 = df * sw / denom
        out["i2"][idx] = np.where(denom > 0, 100.0 * tau2 / (tau2 + s2), np.nan)

    # Random effects.
    ws = 1.0 / (v + tau2[g.index])
    sws = g.sum(ws)
    rt = g.sum(ws * y) / sws
    rse = np.sqrt(1.0 / sws)
    if opts.ci_method == "hk":
        from scipy.special import stdtr, stdtrit

        r = y - rt[g.index]
        rss = g.sum(ws * r * r)
        # As metafor (and the scalar core): a weighted RSS below machine epsilon is exactly 0.
        rse = np.where(rss <= EPS, 0.0, np.sqrt(rss / (df * sws)))
        rcrit = stdtrit(df, 1.0 - (1.0 - opts.level) / 2.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            stat = rt / rse
            p = 2.0 * stdtr(df, -np.abs(stat))
        # A zero Hartung-Knapp variance (all effects equal): p is 0, or 1 when theta is 0 too.
        p = np.where(rse > 0, p, np.where(rt != 0, 0.0, 1.0))
    else:
        rcrit = crit
        with np.errstate(divide="ignore", invalid="ignore"):
            p = _norm_p(rt / rse)
    out["random_theta"][idx] = rt
    out["random_se"][idx] = rse
    out["random_ci_low"][idx] = rt - rcrit * rse
    out["random_ci_high"][idx] = rt + rcrit * rse
    out["random_p_value"][idx] = p
    pi_se = np.sqrt(rse * rse + tau2)
    out["random_pi_low"][idx] = rt - rcrit * pi_se
    out["random_pi_high"][idx] = rt + rcrit * pi_se

    for prefix in ("common", "random"):
        out[f"{prefix}_estimate"] = _back(out[f"{prefix}_theta"], opts.measure)
        for end in ("ci_low", "ci_high"):
            out[f"{prefix}_{end}"] = _back(out[f"{prefix}_{end}"], opts.measure)
    for end in ("pi_low", "pi_high"):
        out[f"random_{end}"] = _back(out[f"random_{end}"], opts.measure)
    return out


# ----------------------------------------------------------------------------------------------
# Rows in, BatchResult out (pandas only at the DataFrame door)


@dataclass
class BatchResult:
    """One row per group, as numpy arrays: the group key columns, then :data:`RESULT_COLUMNS`.

    ``values`` holds float64 arrays for the numeric columns, int64 arrays for ``k``, ``df`` and
    ``n_excluded`` (with ``missing`` marking the empty cells: ``df`` of unpooled groups, every
    count of a group with a bad row) and object arrays for ``status`` and ``reason``. ``first``
    is the position, in the rows given, of each group's first row.
    """

    groups: list[str]
    keys: dict[str, np.ndarray]
    values: dict[str, np.ndarray]
    missing: dict[str, np.ndarray]
    first: np.ndarray

    def __len__(self) -> int:
        return len(self.first)

    @property
    def columns(self) -> list[str]:
        return [*self.groups, *RESULT_COLUMNS]

    def status_count(self, status: str) -> int:
        return int(np.count_nonzero(self.values["status"] == status))

    def key_hashes(self) -> np.ndarray:
        """A 64-bit hash of each group's key (Python's hash of the key tuple, as
        :func:`stream_batch` uses to find a group that comes back)."""
        return _key_hashes(list(zip(*(self.keys[g].tolist() for g in self.groups))))

    @staticmethod
    def empty(groups: Sequence[str]) -> BatchResult:
        values: dict[str, np.ndarray] = {}
        for name in RESULT_COLUMNS:
            dtype = np.int64 if name in INT_COLUMNS else object if name in TEXT_COLUMNS else float
            values[name] = np.empty(0, dtype=dtype)
        return BatchResult(
            groups=list(groups),
            keys={g: np.empty(0, dtype=object) for g in groups},
            values=values,
            missing={name: np.zeros(0, bool) for name in INT_COLUMNS},
            first=np.empty(0, np.intp),
        )

    def to_frame(self, keys: pd.DataFrame | None = None) -> pd.DataFrame:
        """A pandas DataFrame (nullable Int64 for the count columns); ``keys`` replaces the key
        columns (one row per group), e.g. to keep the input's dtypes."""
        import pandas as pd

        data: dict[str, Any] = {}
        for g in self.groups:
            if keys is not None:
                data[g] = keys[g].reset_index(drop=True)
            else:
                data[g] = pd.Series(self.keys[g])
        for name in RESULT_COLUMNS:
            col = self.values[name]
            if name in INT_COLUMNS:
                arr = pd.array(col, dtype="Int64")
                arr[self.missing[name]] = pd.NA
                data[name] = arr
            elif name in TEXT_COLUMNS:
                data[name] = pd.Series(col, dtype=object)
            else:
                data[name] = col
        return pd.DataFrame(data, columns=self.columns)


def _factorize(keys: dict[str, np.ndarray], groups: Sequence[str]) -> np.ndarray:
    """Group codes 0, 1, ... in order of first appearance (keys compared as Python values)."""
    seen: dict[Any, int] = {}
    if len(groups) == 1:
        values: Iterable[Any] = keys[groups[0]].tolist()
    else:
        values = zip(*(keys[g].tolist() for g in groups))
    n = len(keys[groups[0]])
    return np.fromiter((seen.setdefault(v, len(seen)) for v in values), np.int64, n)


def pool_rows(
    rows: Rows,
    groups: Sequence[str],
    options: BatchOptions | None = None,
    source: str = "<data>",
    codes: np.ndarray | None = None,
) -> BatchResult:
    """Pool every group of ``rows`` (each group whole; any row order): one result per group.

    Groups come out in order of first appearance (``codes``, when given, are group numbers in
    that order, e.g. from pandas' grouping). Bad rows never raise: their group gets ``status``
    "error" and the ``reason`` pool gives for the group's first bad row.
    """
    opts = (options or BatchOptions()).checked()
    groups = list(groups)
    n = len(rows)
    if n == 0:
        return BatchResult.empty(groups)
    if codes is None:
        codes = _factorize(rows.keys, groups)
    codes = np.asarray(codes, dtype=np.int64)
    order = np.argsort(codes, kind="stable")
    if not np.array_equal(order, np.arange(n)):
        rows = rows.take(order)
        codes = codes[order]
    else:
        order = None
    ngroups = int(codes[-1]) + 1
    sizes = np.bincount(codes, minlength=ngroups)
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.intp)

    bad = rows.bad
    group_bad = np.zeros(ngroups, bool)
    reason = np.full(ngroups, "", dtype=object)
    if bad.any():
        # pool stops at the first bad row of a table: report that one for each group.
        bad_pos = np.flatnonzero(bad)
        gcodes, first_bad = np.unique(codes[bad_pos], return_index=True)
        group_bad[gcodes] = True
        reason[gcodes] = rows.error[bad_pos[first_bad]]

    good_groups = ~group_bad
    row_good = good_groups[codes]
    counts = rows.counts[row_good]
    res = pool_arrays(
        sizes[good_groups], counts[:, 0], counts[:, 1], counts[:, 2], counts[:, 3], opts
    )

    gi = np.flatnonzero(good_groups)
    values: dict[str, np.ndarray] = {}
    for name in FLOAT_COLUMNS:
        col = np.full(ngroups, np.nan)
        col[gi] = res[name]
        values[name] = col
    missing: dict[str, np.ndarray] = {}
    for name in INT_COLUMNS:
        col = np.zeros(ngroups, np.int64)
        col[gi] = res[name]
        values[name] = col
        missing[name] = group_bad.copy()
    k = values["k"]
    missing["df"] |= k < 2
    status = np.full(ngroups, STATUS_OK, dtype=object)
    status[group_bad] = STATUS_ERROR
    converged = np.ones(ngroups, bool)
    converged[gi] = res["converged"]
    single = good_groups & (k == 1)
    status[single] = STATUS_SINGLE
    reason[single] = "a single study: no pooling was done"
    # An undefined Mantel-Haenszel / Peto estimate makes pool fail for that group: so here.
    # So does an iterative tau² that does not converge (pool raises a ModelError).
    cerr = np.zeros(ngroups, np.int8)
    cerr[gi] = res["common_error"]
    not_conv = good_groups & (k >= 2) & ~converged
    failed = good_groups & (k >= 2) & ((cerr > 0) | not_conv)
    if failed.any():
        status[failed] = STATUS_ERROR
        reason[not_conv] = (
            f"the {opts.tau2_method} estimator of tau² did not converge in {MAXITER} iterations "
            "(try --tau2 DL or PM)"
        )
        common_failed = failed & (cerr > 0)
        reason[common_failed] = np.asarray(COMMON_ERRORS, dtype=object)[cerr[common_failed]]
        for name in FLOAT_COLUMNS:
            values[name][failed] = np.nan
        missing["df"] |= failed
    empty = good_groups & (k == 0)
    if empty.any():
        status[empty] = STATUS_ERROR
        reason[empty] = [
            _no_usable_message(rows, codes, gcode, opts) for gcode in np.flatnonzero(empty)
        ]
    values["status"] = status
    values["reason"] = reason
    first = starts if order is None else order[starts]
    return BatchResult(
        groups=groups,
        keys={g: rows.keys[g][starts] for g in groups},
        values=values,
        missing=missing,
        first=first,
    )


def _no_usable_message(rows: Rows, codes: np.ndarray, gcode: int, opts: BatchOptions) -> str:
    """pool's ModelError for a group whose every study is excluded (rare: built per group)."""
    from ivigmeta.core.effects import compute_effects
    from ivigmeta.io.studies import Study

    studies = []
    for pos in np.flatnonzero(codes == gcode).tolist():
        row = int(rows.row[pos])
        label = str(rows.label[pos]) if rows.label is not None else ""
        a, n1, c, n2 = (int(x) for x in rows.counts[pos])
        studies.append(
            Study(
                row=row,
                study=label or f"row {row}",
                year=None,
                treat_events=a,
                treat_total=n1,
                control_events=c,
                control_total=n2,
            )
        )
    es = compute_effects(
        studies, opts.measure, opts.cc, opts.cc_policy, keep_double_zero=opts.keep_double_zero
    )
    reasons = "; ".join(f"{e.study}: {e.reason}" for e in es.excluded)
    return "no usable studies" + (f" (excluded: {reasons})" if reasons else "")


# ----------------------------------------------------------------------------------------------
# the DataFrame door (the Dask recipe, library users)


def _frame_counts(df: pd.DataFrame, col: str) -> np.ndarray:
    """A count column as float64 (NaN where not a number)."""
    import pandas as pd

    raw = df[col]
    if pd.api.types.is_numeric_dtype(raw.dtype) and not pd.api.types.is_bool_dtype(raw.dtype):
        return raw.to_numpy(dtype=np.float64, na_value=np.nan)
    return pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _cell_text(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    try:
        import pandas as pd

        if v is pd.NA:
            return ""
    except ImportError:  # pragma: no cover - pandas is there when a DataFrame is
        pass
    return str(v).strip()


def rows_from_frame(df: pd.DataFrame, groups: Sequence[str], source: str = "<data>") -> Rows:
    """A DataFrame of study rows as :class:`Rows`, every bad row with pool's message.

    Uses ``__row__`` (file row numbers) and ``__error__`` (known messages) when present; rows are
    otherwise numbered 2, 3, ... (the header is row 1).
    """
    import pandas as pd

    n = len(df)
    counts = (
        np.column_stack([_frame_counts(df, c) for c in COUNT_COLUMNS]) if n else np.empty((0, 4))
    )
    rownums = (
        df[ROW_COLUMN].to_numpy(dtype=np.int64)
        if ROW_COLUMN in df.columns
        else np.arange(n, dtype=np.int64) + 2
    )
    year = None
    if YEAR_COLUMN in df.columns:
        year = np.array([_cell_text(v) for v in df[YEAR_COLUMN].tolist()], dtype=object)
    suspect = suspect_rows(counts, year) if n else np.zeros(0, bool)
    error = np.full(n, None, dtype=object)
    if ERROR_COLUMN in df.columns:
        known = df[ERROR_COLUMN].to_numpy(dtype=object)
        has = pd.notna(known)
        error[has] = known[has]
        suspect &= ~has
    columns = [str(c) for c in df.columns if c not in (ROW_COLUMN, ERROR_COLUMN)]
    for pos in np.flatnonzero(suspect).tolist():
        values = {c: _cell_text(df[c].iat[pos]) for c in columns}
        error[pos] = _row_error(values, int(rownums[pos]), source) or (
            f"{source}, row {int(rownums[pos])}: invalid study row"
        )
    label = None
    if LABEL_COLUMN in df.columns:
        label = np.array([_cell_text(v) for v in df[LABEL_COLUMN].tolist()], dtype=object)
    return Rows(
        keys={g: df[g].to_numpy(dtype=object) for g in groups},
        counts=counts,
        row=rownums,
        error=error,
        label=label,
    )


def batch_pool(
    df: pd.DataFrame,
    groups: Sequence[str],
    options: BatchOptions | None = None,
    source: str = "<data>",
) -> pd.DataFrame:
    """Pool every group of ``df`` (one row per study) and return one row per group.

    ``df`` needs the count columns and the ``groups`` columns; ``__row__`` (file row numbers for
    messages) and ``study`` are used when present. Each group must be whole in ``df``; groups come
    out in order of first appearance. Bad rows never raise: their group gets ``status`` "error"
    and the ``reason`` ``pool`` would give. A pure function of its arguments (the Dask recipe in
    docs/batch.md maps it over partitions).
    """
    opts = (options or BatchOptions()).checked()
    groups = list(groups)
    check_columns(df.columns, groups, source)
    if len(df) == 0:
        return empty_result(groups)
    codes = df.groupby(groups, sort=False, dropna=False).ngroup().to_numpy()
    result = pool_rows(rows_from_frame(df, groups, source), groups, opts, source, codes=codes)
    return result.to_frame(df[groups].iloc[result.first])


def empty_result(groups: Sequence[str]) -> pd.DataFrame:
    """A results frame with no rows and the right columns and dtypes (Dask's ``meta``)."""
    return BatchResult.empty(groups).to_frame()


# ----------------------------------------------------------------------------------------------
# streaming drivers


class NotGrouped(Exception):
    """The input's groups are not contiguous (raised only when streaming grouped input)."""

    def __init__(self, row: int, key: tuple) -> None:
        shown = ", ".join(str(k) for k in key)
        super().__init__(
            f"row {row}: group ({shown}) appears again after other groups: the input is not "
            "grouped (use --input-order unsorted or auto)"
        )
        self.row = row
        self.key = key


def _as_rows(chunk: Rows | pd.DataFrame, groups: Sequence[str], source: str) -> Rows:
    if isinstance(chunk, Rows):
        return chunk
    check_columns(chunk.columns, groups, source)
    return rows_from_frame(chunk, groups, source)


def _run_starts(rows: Rows, groups: Sequence[str]) -> np.ndarray:
    n = len(rows)
    change = np.zeros(max(n - 1, 0), bool)
    for g in groups:
        col = rows.keys[g]
        change |= col[1:] != col[:-1]
    return np.concatenate(([0], np.flatnonzero(change) + 1)).astype(np.intp)


def _key_tuples(rows: Rows, groups: Sequence[str], positions: np.ndarray) -> list[tuple]:
    return list(zip(*(rows.keys[g][positions].tolist() for g in groups)))


def _key_hashes(keys: list[tuple]) -> np.ndarray:
    """64-bit hashes of group keys (Python's hash of each key tuple, this process's seed)."""
    return np.fromiter((hash(k) for k in keys), np.int64, len(keys))


def stream_batch(
    chunks: Iterable[Rows | pd.DataFrame],
    groups: Sequence[str],
    options: BatchOptions | None = None,
    source: str = "<data>",
) -> Iterator[BatchResult]:
    """Pool grouped input (each group's rows contiguous) read in chunks, one result per chunk.

    A group split across chunks is held back and joined with the next chunk. A group that comes
    back after another group raises :class:`NotGrouped` (found by 64-bit hashes of the finished
    keys; a hash collision can only cause a false alarm, never a wrong number).
    """
    opts = (options or BatchOptions()).checked()
    groups = list(groups)
    seen = np.empty(0, np.int64)
    carry: Rows | None = None
    for chunk in chunks:
        rows = _as_rows(chunk, groups, source)
        final = rows.last  # nothing follows: the last group is whole, no need to hold it back
        if carry is not None and len(carry):
            rows = Rows.concat([carry, rows])
        if not len(rows):
            continue
        starts = _run_starts(rows, groups)
        heads = _key_tuples(rows, groups, starts)
        h = _key_hashes(heads)
        uniq, first_index = np.unique(h, return_index=True)
        repeat = np.isin(h, seen)
        dup = np.ones(len(h), bool)
        dup[first_index] = False
        repeat |= dup
        if repeat.any():
            i = int(np.flatnonzero(repeat)[0])
            raise NotGrouped(int(rows.row[starts[i]]), heads[i])
        last = len(rows) if final else int(starts[-1])
        body, carry = rows.take(slice(0, last)), rows.take(slice(last, None))
        if len(body):
            ends = np.append(starts, len(rows)) if final else starts
            codes = np.repeat(np.arange(len(ends) - 1), np.diff(ends))
            yield pool_rows(body, groups, opts, source, codes=codes)
            # No duplicates to drop (a repeat raised above); np.union1d would import numpy.ma.
            seen = np.sort(np.concatenate((seen, h if final else h[:-1])))
    if carry is not None and len(carry):
        yield pool_rows(carry, groups, opts, source, codes=np.zeros(len(carry), np.int64))


def _partition_of(rows: Rows, groups: Sequence[str], partitions: int) -> np.ndarray:
    """A spill file for every row, from a CRC-32 of its group key (the same in every run)."""
    import zlib

    codes = _factorize(rows.keys, groups)
    starts = np.unique(codes, return_index=True)[1]
    keys = _key_tuples(rows, groups, starts)
    part = np.fromiter(
        (
            zlib.crc32("\x1f".join(map(str, k)).encode("utf-8", "surrogatepass")) % partitions
            for k in keys
        ),
        np.int64,
        len(keys),
    )
    return part[codes]


def partition_batch(
    chunks: Iterable[Rows | pd.DataFrame],
    groups: Sequence[str],
    options: BatchOptions | None = None,
    source: str = "<data>",
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    partitions: int = 64,
    tmpdir: str | None = None,
) -> Iterator[BatchResult]:
    """Pool input in any row order with bounded memory: an external hash partition.

    Pass 1 appends each chunk's rows to one of ``partitions`` spill files chosen by a hash of the
    group key, so every group lands whole in one file; pass 2 loads one file at a time (about
    total rows / partitions rows) and pools it. Within a partition groups come out in order of
    first appearance; partitions come out in turn.
    """
    import pickle
    import tempfile

    opts = (options or BatchOptions()).checked()
    groups = list(groups)
    partitions = max(1, int(partitions))
    with tempfile.TemporaryDirectory(prefix="ivigmeta-batch-", dir=tmpdir) as tmp:
        files: dict[int, Any] = {}
        try:
            for chunk in chunks:
                rows = _as_rows(chunk, groups, source)
                if not len(rows):
                    continue
                part = _partition_of(rows, groups, partitions)
                order = np.argsort(part, kind="stable")
                bounds = np.flatnonzero(np.diff(part[order])) + 1
                for piece in np.split(order, bounds):
                    p = int(part[piece[0]])
                    if p not in files:
                        files[p] = open(f"{tmp}/part{p:05d}.pkl", "wb")
                    pickle.dump(rows.take(piece), files[p], protocol=pickle.HIGHEST_PROTOCOL)
        finally:
            for f in files.values():
                f.close()
        pending: list[Rows] = []
        pending_rows = 0
        for p in sorted(files):
            pieces = []
            with open(f"{tmp}/part{p:05d}.pkl", "rb") as f:
                while True:
                    try:
                        pieces.append(pickle.load(f))
                    except EOFError:
                        break
            part_rows = Rows.concat(pieces)
            part_rows = part_rows.take(np.argsort(part_rows.row, kind="stable"))
            pending.append(part_rows)
            pending_rows += len(part_rows)
            if pending_rows >= chunk_rows:
                yield pool_rows(Rows.concat(pending), groups, opts, source)
                pending, pending_rows = [], 0
        if pending:
            yield pool_rows(Rows.concat(pending), groups, opts, source)


def suggested_partitions(total_bytes: int | None, chunk_rows: int) -> int:
    """Spill files for unsorted input: enough that one holds about chunk_rows rows or fewer
    (assuming at least 24 bytes per CSV row), 256 when the size is unknown (standard input)."""
    if total_bytes is None:
        return 256
    return max(1, min(4096, math.ceil(total_bytes / (24 * max(1, chunk_rows)))))
