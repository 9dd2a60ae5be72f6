"""Estimators of the between-study variance tau², written once for many models at once.

Each estimator takes a set of models (:mod:`ivigmeta.core.models`: many intercept-only models,
one per group of rows, or models with a moderator matrix X) and returns a :class:`Tau2Fit` with
one tau² per model. ``pool`` fits one model, ``batch`` a million; both call these functions.
``ESTIMATORS`` is the registry the CLI offers as ``--tau2``.

Notation: k studies, p columns of X, P(w) = W - W X (X' W X)^-1 X' W, so that y' P y is the
(residual) weighted sum of squares; P0 uses w = 1 / v, P(tau²) uses w = 1 / (v + tau²). Without
moderators X is a column of ones and y' P0 y is Cochran's Q.

* DL, DerSimonian & Laird (1986); Raudenbush (2009) with moderators:
  tau² = max(0, (y' P0 y - (k - p)) / tr P0).
* HE, Hedges (1983) / Hedges & Olkin (1985), unweighted method of moments: with the ordinary
  least-squares residual maker P_ols = I - X (X'X)^-1 X', tau² = max(0, (y' P_ols y - tr(P_ols V))
  / (k - p)).
* SJ, Sidik & Jonkman (2005), as metafor 3.8-1 computes it: one step from
  tau²_0 = sum (y - ybar)² / k, tau² = tau²_0 y' P(tau²_0) y / (k - p).
* PM, Paule & Mandel (1982) (DerSimonian & Kacker 2007): the root of y' P(tau²) y = k - p, or 0
  when y' P0 y < k - p; safeguarded Newton steps inside a shrinking bracket, to double precision.
* ML and REML (Viechtbauer 2005): Fisher scoring, as metafor, from the HE value, with the
  updates (y' P P y - sum w) / sum w² (ML) and (y' P P y - tr P) / tr(P P) (REML), halving a step
  that would make tau² negative; a boundary optimum (score at 0 not positive) gives tau² = 0.
  Convergence: relative change below ``REL_TOL``; then the log-likelihood at tau² = 0 is compared
  with the optimum, as metafor's ``ll0check``. When scoring does not converge, or stops at
  tau² = 0, the likelihood is also searched over a grid of 16 decades and the global maximum is
  taken (metafor would report non-convergence, or 0, on such multimodal likelihoods); the fit then
  records ``algorithm = "grid search"`` and the CLI says so (docs/methods.md).

* HS, Hunter & Schmidt (2004), as metafor: tau² = max(0, (y' P0 y - k) / sum w), w = 1 / v;
  HSk, with the small-sample correction k / (k - p): max(0, (k / (k - p) y' P0 y - k) / sum w)
  (Viechtbauer et al. 2015's naming, metafor's "HSk").
* GENQ, the generalized Q estimator with user weights a (DerSimonian & Kacker 2007; Jackson
  2013): with P_a = A - A X (X' A X)^-1 X' A, tau² = max(0, (y' P_a y - tr(P_a V)) / tr P_a).
  The weights enter the estimator only: the pooled estimate keeps w = 1 / (v + tau²)
  (metafor's ``rma(yi, vi, tau2 = <GENQ tau²>)``; ``rma(method = "GENQ", weights = a)`` would
  also weight the estimate by a).
* PMM, the median-unbiased Paule-Mandel estimator (Viechtbauer et al. 2015): the root of
  y' P(tau²) y = the median of chi²_{k - p}, 0 when y' P0 y is below it.
* EB, empirical Bayes (Morris 1983; Berkey et al. 1995), and SJIT, the iterated Sidik-Jonkman
  estimator: metafor iterates tau² += (k / (k - p) y' P y - k) / sum w (EB) and
  tau² <- tau² y' P y / (k - p) (SJIT); both fixed points are the root of y' P(tau²) y = k - p
  (0 when y' P0 y <= k - p), which is solved directly as for PM, so EB = SJIT = PM to double
  precision (metafor's own iterations stop at its threshold, 1e-5 by default).
* DLIT, the iterated DerSimonian-Laird estimator (DerSimonian & Kacker 2007), as metafor: from
  tau² = 0, tau² <- max(0, (y' P y - (k - p)) / tr P) with P = P(tau²) until the change is below
  ``REL_TOL`` relative (at most ``DLIT_MAX_ITER`` iterations); the iteration oscillates, slowly
  damped or not at all (dat.li2007 in metafor too): such a fit is not converged, a ModelError.

Standard errors of tau² (``Tau2Fit.se``), metafor 3.8-1's ``se.tau2`` for each estimator, with
t = tau², the traces of :class:`ivigmeta.core.models.PVTerms`:

* DL: sqrt(2 (k - p) + 4 t tr P0 + 2 t² tr(P0 P0)) / tr P0; DLIT the same with P = P(t);
* HS: sqrt(2 (k - p) + 4 t tr P0 + 2 t² tr(P0 P0)) / sum w0; HSk: k / (k - p) times that;
* HE: sqrt(2 tr(PVPV) + 4 t tr(PV) + 2 t² (k - p)) / (k - p) with the least-squares P;
* GENQ: sqrt(2 tr(PVPV) + 4 t tr(PVP) + 2 t² tr(PP)) / tr P with P = P_a;
* SJ: t0 / (k - p) sqrt(2 tr(PVPV) + 4 t tr(PVP) + 2 t² tr(PP)) with P = P(t0);
* ML: sqrt(2 / sum w²); REML: sqrt(2 / tr(PP)), w and P at t;
* PM, PMM, EB, SJIT: sqrt(2 k² / (k - p)) / sum w, w = 1 / (v + t).

Every iterative estimator iterates all models at once, each until its own convergence; finished
models leave the working set.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ivigmeta.core.groups import Groups
from ivigmeta.core.groups import trace_p as _grouped_trace_p
from ivigmeta.core.groups import trace_pp as _grouped_trace_pp
from ivigmeta.core.models import InterceptModels, Models, RegressionModels
from ivigmeta.errors import ModelError

#: Iterative estimators stop when |change| <= REL_TOL * tau²: tighter than 1e-10.
REL_TOL = 1e-12
#: ... or, when tau² heads for the boundary, when |change| falls below this absolute value.
ABS_TOL = 1e-300
#: A fit is reported as converged if its last relative change was below this.
CONVERGED_TOL = 1e-10
MAX_ITER = 1000
#: The iterated DerSimonian-Laird estimator converges slowly when it oscillates (dat.bcg takes
#: 947 iterations to 1e-12): it gets more.
DLIT_MAX_ITER = 5_000
#: metafor's ``ll0check`` tolerance (the reference fits use tol = 1e-12).
LL0_TOL = 1e-12
#: Root finders stop when the bracket or the step is this small relative to the root.
ROOT_TOL = 4e-16

SCORING = "Fisher scoring"
GRID = "grid search"
CLOSED_FORM = "closed form"
NEWTON = "safeguarded Newton"
FIXED_POINT = "fixed-point iteration"

TAU2_NAMES: dict[str, str] = {
    "DL": "DerSimonian-Laird",
    "REML": "restricted maximum likelihood",
    "ML": "maximum likelihood",
    "PM": "Paule-Mandel",
    "HE": "Hedges (unweighted method of moments)",
    "SJ": "Sidik-Jonkman",
    "EB": "empirical Bayes (Morris)",
    "HS": "Hunter-Schmidt",
    "HSk": "Hunter-Schmidt with small-sample correction",
    "GENQ": "generalized Q with user weights",
    "PMM": "median-unbiased Paule-Mandel",
    "SJIT": "iterated Sidik-Jonkman",
    "DLIT": "iterated DerSimonian-Laird",
}


def not_converged_message(method: str, iterations: int) -> str:
    """The one message for an iterative estimator that did not converge (pool and batch)."""
    return (
        f"the {method} estimator of tau² did not converge in {iterations} iterations "
        "(try --tau2 DL or PM)"
    )


@dataclass(frozen=True)
class Tau2Fit:
    """tau² for every model, with how it was reached."""

    method: str
    tau2: np.ndarray
    converged: np.ndarray
    iterations: np.ndarray
    #: per model: "closed form", "Fisher scoring", "grid search", "safeguarded Newton" or
    #: "fixed-point iteration"
    algorithm: np.ndarray
    #: per model, the standard error of tau² (metafor's se.tau2; filled by :func:`fit_tau2`)
    se: np.ndarray | None = None


@dataclass(frozen=True)
class Tau2Estimate:
    """tau² of one model and how it was reached (iterations, convergence, algorithm)."""

    tau2: float
    method: str
    converged: bool = True
    iterations: int = 0
    algorithm: str = CLOSED_FORM
    se: float = math.nan


def _result(method: str, tau2: np.ndarray, default_algorithm: str, **kw: Any) -> Tau2Fit:
    n = len(tau2)
    return Tau2Fit(
        method,
        tau2,
        kw.get("converged", np.ones(n, bool)),
        kw.get("iterations", np.zeros(n, np.int64)),
        kw.get("algorithm", np.full(n, default_algorithm, dtype=object)),
    )


# ---------------------------------------------------------------------------------------------
# The estimators.


def dl_from_q(q: np.ndarray, df: np.ndarray, tr: np.ndarray) -> np.ndarray:
    """DerSimonian-Laird's moment estimate from a Q on ``df`` degrees of freedom and tr P0:
    max(0, (Q - df) / tr P0), 0 where tr P0 is not positive."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.maximum(0.0, (q - df) / tr)
    return np.where(tr > 0, t, 0.0)


def tau2_dl(m: Models) -> Tau2Fit:
    q0, _ = m.q(np.zeros(len(m)))
    tr = m.trace_p(np.zeros(len(m)))
    return _result("DL", dl_from_q(q0, m.k - m.p, tr), CLOSED_FORM)


def tau2_he(m: Models) -> Tau2Fit:
    return _result("HE", np.maximum(0.0, m.he_raw()), CLOSED_FORM)


def tau2_sj(m: Models) -> Tau2Fit:
    t0 = m.sj_start()
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.maximum(0.0, t0 * m.q(t0)[0] / (m.k - m.p))
    return _result("SJ", np.where(t0 > 0, t, 0.0), CLOSED_FORM)


def solve_q(m: Models, target: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per model, the tau² in [0, hi] with y' P(tau²) y = target (Q decreases in tau²).

    Requires Q(0) >= target >= Q(hi). Newton steps kept inside the shrinking bracket, bisection
    otherwise, to double precision; finished models leave the working set. Returns the roots
    and the iterations each took.
    """
    n = len(m)
    x = np.zeros(n)
    lo = np.zeros(n)
    hi = np.array(hi, dtype=float)
    its = np.zeros(n, np.int64)
    active = np.arange(n)
    work = m
    for it in range(1, 10 * MAX_ITER + 1):
        if not len(active):
            break
        xa, la, ha = x[active], lo[active], hi[active]
        q, slope = work.q(xa)
        fx = q - target[active]
        la = np.where(fx > 0, xa, la)
        ha = np.where(fx < 0, xa, ha)
        with np.errstate(divide="ignore", invalid="ignore"):
            new = np.where((slope < 0) & np.isfinite(slope), xa - fx / slope, np.nan)
        inside = (la < new) & (new < ha)
        new = np.where(inside, new, 0.5 * (la + ha))
        done = (
            (fx == 0)
            | (np.abs(new - xa) <= ROOT_TOL * np.abs(new))
            | (ha - la <= ROOT_TOL * np.abs(ha))
        )
        x[active] = np.where(fx == 0, xa, new)
        lo[active], hi[active] = la, ha
        its[active] = it
        if done.all():
            break
        keep = ~done
        work = work.take(keep)
        active = active[keep]
    return x, its


def upper_bracket(m: Models, target: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Per model, an upper search limit where y' P y is at or below ``target`` (doubling)."""
    hi = np.array(start, dtype=float)
    for _ in range(200):
        low = m.q(hi)[0] > target
        if not low.any():
            return hi
        hi = np.where(low, hi * 2.0, hi)
    raise ModelError("the tau² search did not find an upper bound (the data are degenerate)")


def tau2_pm(m: Models) -> Tau2Fit:
    n = len(m)
    tau2 = np.zeros(n)
    its = np.zeros(n, np.int64)
    target = m.k - m.p
    pos = m.q(np.zeros(n))[0] > target
    if pos.any():
        sub = m.take(pos)
        hi = upper_bracket(sub, target[pos], np.maximum(100.0, 10.0 * sub.mad2()))
        tau2[pos], its[pos] = solve_q(sub, target[pos], hi)
    algorithm = np.where(pos, NEWTON, CLOSED_FORM).astype(object)
    return _result("PM", tau2, NEWTON, iterations=its, algorithm=algorithm)


def _fisher(m: Models, method: str) -> Tau2Fit:
    reml = method == "REML"
    n = len(m)
    tau2 = tau2_he(m).tau2.copy()
    num0, _ = m.score(np.zeros(n), reml)
    converged = np.zeros(n, bool)
    last_rel = np.full(n, np.inf)
    its = np.zeros(n, np.int64)
    active = np.arange(n)
    work = m
    for it in range(1, MAX_ITER + 1):
        t = tau2[active]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            num, info = work.score(t, reml)
            adj = num / info
        # Extreme variances (weights under- or overflow): stop scoring, search the range below.
        broken = ~np.isfinite(adj)
        adj = np.where(broken, 0.0, adj)
        leave = t + adj < 0
        # A step out of the parameter space: a boundary optimum if the score at 0 is not
        # positive (metafor halves the step and creeps towards 0 until its absolute threshold).
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
        its[active] = it
        converged[active[done]] = True
        done |= broken
        if done.all():
            break
        keep = ~done
        work = work.take(keep)
        active = active[keep]
    converged |= last_rel <= CONVERGED_TOL
    # metafor's ll0check: a local maximum below the likelihood at tau² = 0.
    check = converged & (tau2 > 0)
    if check.any():
        with np.errstate(all="ignore"):
            ll0 = m.loglik(np.zeros(n), reml)
            ll = m.loglik(tau2, reml)
        tau2 = np.where(check & (ll0 - ll > LL0_TOL), 0.0, tau2)
    algorithm = np.full(n, SCORING, dtype=object)
    # Scoring that oscillates, or stops at 0 while a positive tau² has the larger likelihood (a
    # multimodal likelihood): search the whole range.
    search = ~converged | (tau2 == 0.0)
    if search.any():
        best, ok = global_maximum(m.take(search), reml)
        found = np.zeros(n, bool)
        found[search] = ok
        full = np.zeros(n)
        full[search] = best
        take = found & (~converged | (full > 0.0))
        tau2 = np.where(take, full, tau2)
        algorithm[take] = GRID
        converged = converged | take
    return _result(method, tau2, SCORING, converged=converged, iterations=its, algorithm=algorithm)


def tau2_ml(m: Models) -> Tau2Fit:
    return _fisher(m, "ML")


def tau2_reml(m: Models) -> Tau2Fit:
    return _fisher(m, "REML")


def global_maximum(m: Models, reml: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per model, the tau² maximizing the (restricted) likelihood over 16 decades.

    The score on the grid upper 10^(-j/6), j = 96..0, with upper = 10 max(1, mad(y)², max v);
    every change of sign from positive to non-positive between neighbours (starting from
    tau² = 0) is a local maximum, refined by bisection to double precision; the first candidate
    (0, then in increasing tau²) with the largest likelihood wins. Returns the maxima and a mask
    of the models whose likelihood could be evaluated.
    """
    n = len(m)
    with np.errstate(all="ignore"):
        upper = 10.0 * np.maximum(np.maximum(1.0, m.mad2()), m.vmax())
        cand_model, cand_lo, cand_hi = [], [], []
        prev_t = np.zeros(n)
        prev_f = m.score(prev_t, reml)[0]
        for j in range(96, -1, -1):
            t = upper * 10.0 ** (-j / 6.0)
            f = m.score(t, reml)[0]
            hit = np.flatnonzero((prev_f > 0.0) & (f <= 0.0))
            if hit.size:
                cand_model.append(hit)
                cand_lo.append(prev_t[hit])
                cand_hi.append(t[hit])
            prev_t, prev_f = t, f
        best_t = np.zeros(n)
        best_ll = m.loglik(np.zeros(n), reml)
    ok = np.isfinite(best_ll)
    if cand_model:
        cm = np.concatenate(cand_model)
        lo = np.concatenate(cand_lo)
        hi = np.concatenate(cand_hi)
        order = np.lexsort((lo, cm))  # by model, then in increasing tau²
        cm, lo, hi = cm[order], lo[order], hi[order]
        copies = m.repeat(cm)
        done = np.zeros(len(cm), bool)
        with np.errstate(all="ignore"):
            for _ in range(200):
                mid = 0.5 * (lo + hi)
                up = copies.score(mid, reml)[0] > 0.0
                lo = np.where(~done & up, mid, lo)
                hi = np.where(~done & ~up, mid, hi)
                done |= hi - lo <= ROOT_TOL * hi
                if done.all():
                    break
            root = 0.5 * (lo + hi)
            ll = copies.loglik(root, reml)
        ok[cm[~np.isfinite(ll)]] = False
        rank = np.arange(len(cm)) - np.searchsorted(cm, cm, side="left")
        for r in range(int(rank.max()) + 1):
            at = rank == r
            grp = cm[at]
            better = ll[at] > best_ll[grp]
            best_t[grp[better]] = root[at][better]
            best_ll[grp[better]] = ll[at][better]
    return best_t, ok


def tau2_hs(m: Models) -> Tau2Fit:
    t = m.pv_terms("iv")
    with np.errstate(divide="ignore", invalid="ignore"):
        return _result("HS", np.maximum(0.0, (t.q - m.k) / t.sum_a), CLOSED_FORM)


def tau2_hsk(m: Models) -> Tau2Fit:
    t = m.pv_terms("iv")
    with np.errstate(divide="ignore", invalid="ignore"):
        raw = (m.k / (m.k - m.p) * t.q - m.k) / t.sum_a
    return _result("HSk", np.maximum(0.0, raw), CLOSED_FORM)


def tau2_genq(m: Models) -> Tau2Fit:
    if not m.has_weights():
        raise ModelError(GENQ_NEEDS_WEIGHTS)
    t = m.pv_terms("user")
    with np.errstate(divide="ignore", invalid="ignore"):
        raw = (t.q - t.tr_pv) / t.tr_p
    return _result("GENQ", np.where(t.tr_p > 0, np.maximum(0.0, raw), 0.0), CLOSED_FORM)


GENQ_NEEDS_WEIGHTS = (
    "the GENQ estimator of tau² needs weights for the studies (--tau2-weights COLUMN; "
    "tau2_weights= in the API)"
)


def _q_root(m: Models, method: str, target: np.ndarray) -> Tau2Fit:
    """The tau² with y' P(tau²) y = ``target`` per model, 0 where y' P0 y <= target."""
    n = len(m)
    tau2 = np.zeros(n)
    its = np.zeros(n, np.int64)
    pos = m.q(np.zeros(n))[0] > target
    if pos.any():
        sub = m.take(pos)
        hi = upper_bracket(sub, target[pos], np.maximum(100.0, 10.0 * sub.mad2()))
        tau2[pos], its[pos] = solve_q(sub, target[pos], hi)
    algorithm = np.where(pos, NEWTON, CLOSED_FORM).astype(object)
    return _result(method, tau2, NEWTON, iterations=its, algorithm=algorithm)


def chi2_median(df: np.ndarray) -> np.ndarray:
    """The median of chi² on each ``df`` (one quantile per distinct df)."""
    from ivigmeta.core.distributions import chi2_ppf

    out = np.empty(len(df))
    for d in np.unique(df):
        out[df == d] = chi2_ppf(0.5, float(d))
    return out


def tau2_pmm(m: Models) -> Tau2Fit:
    return _q_root(m, "PMM", chi2_median(m.k - m.p))


def tau2_eb(m: Models) -> Tau2Fit:
    return _q_root(m, "EB", m.k - m.p)


def tau2_sjit(m: Models) -> Tau2Fit:
    return _q_root(m, "SJIT", m.k - m.p)


def tau2_dlit(m: Models) -> Tau2Fit:
    n = len(m)
    tau2 = np.zeros(n)
    converged = np.zeros(n, bool)
    its = np.zeros(n, np.int64)
    active = np.arange(n)
    work = m
    df = m.k - m.p
    for it in range(1, DLIT_MAX_ITER + 1):
        t = tau2[active]
        with np.errstate(divide="ignore", invalid="ignore"):
            q = work.q(t)[0]
            tr = work.trace_p(t)
            new = np.where(tr > 0, np.maximum(0.0, (q - df[active]) / tr), 0.0)
        new = np.where(np.isfinite(new), new, t)
        change = np.abs(new - t)
        done = (change <= REL_TOL * new) | (change <= ABS_TOL)
        tau2[active] = new
        its[active] = it
        converged[active[done]] = True
        if done.all():
            break
        keep = ~done
        work = work.take(keep)
        active = active[keep]
    return _result("DLIT", tau2, FIXED_POINT, converged=converged, iterations=its)


def tau2_se(m: Models, fitted: Tau2Fit) -> np.ndarray:
    """metafor 3.8-1's standard error of tau² (``se.tau2``) for the estimator of ``fitted``
    (module docstring); NaN where metafor reports none."""
    method = fitted.method
    t = fitted.tau2
    kp = m.k - m.p
    with np.errstate(all="ignore"):
        if method in ("DL", "HS", "HSk", "DLIT"):
            tm = m.pv_terms("iv", t if method == "DLIT" else None)
            root = np.sqrt(2.0 * kp + 4.0 * t * tm.tr_p + 2.0 * t * t * tm.tr_pp)
            if method in ("DL", "DLIT"):
                return root / tm.tr_p
            se = root / tm.sum_a
            return m.k / kp * se if method == "HSk" else se
        if method == "HE":
            tm = m.pv_terms("ols")
            return np.sqrt(2.0 * tm.tr_pvpv + 4.0 * t * tm.tr_pv + 2.0 * t * t * kp) / kp
        if method in ("GENQ", "SJ"):
            if method == "GENQ":
                tm = m.pv_terms("user")
                scale = 1.0 / tm.tr_p
            else:
                t0 = m.sj_start()
                tm = m.pv_terms("iv", t0)
                scale = t0 / kp
            return scale * np.sqrt(2.0 * tm.tr_pvpv + 4.0 * t * tm.sum_pvp + 2.0 * t * t * tm.tr_pp)
        tm = m.pv_terms("iv", t)
        if method == "ML":
            return np.sqrt(2.0 / m.score(t, False)[1])
        if method == "REML":
            return np.sqrt(2.0 / tm.tr_pp)
        if method in ("PM", "PMM", "EB", "SJIT"):
            return np.sqrt(2.0 * m.k * m.k / kp) / tm.sum_a
    return np.full(len(m), np.nan)


#: ``--tau2`` choices, each a function of a set of models.
ESTIMATORS: dict[str, Callable[[Models], Tau2Fit]] = {
    "DL": tau2_dl,
    "REML": tau2_reml,
    "ML": tau2_ml,
    "PM": tau2_pm,
    "HE": tau2_he,
    "SJ": tau2_sj,
    "EB": tau2_eb,
    "HS": tau2_hs,
    "HSk": tau2_hsk,
    "GENQ": tau2_genq,
    "PMM": tau2_pmm,
    "SJIT": tau2_sjit,
    "DLIT": tau2_dlit,
}

#: Keys are metafor's spellings (``method = "HSk"``); any case is accepted.
_BY_UPPER = {key.upper(): key for key in ESTIMATORS}


#: ``Tau2Fit.algorithm`` of a tau² fixed by the user (``--tau2 VALUE``).
FIXED = "fixed by the user"


def fixed_tau2(method: str) -> float | None:
    """The value of a fixed tau² (``method`` a non-negative number, metafor's
    ``rma(tau2 = value)``), None for an estimator's name."""
    try:
        value = float(method)
    except (TypeError, ValueError):
        return None
    return value


def likelihood_of(method: str) -> str:
    """The log-likelihood ("ML" or "REML") the fit statistics of a tau² method use: REML for
    REML and for a fixed tau² (metafor's default method when ``tau2 =`` is given), ML else."""
    return "REML" if method == "REML" or fixed_tau2(method) is not None else "ML"


def check_tau2_method(method: str) -> str:
    """Upper-case ``method`` and check it is a key of ``ESTIMATORS``; a non-negative finite
    number is a fixed tau², returned as the shortest text that reads back as that number."""
    value = fixed_tau2(method)
    if value is not None:
        if not math.isfinite(value) or value < 0:
            raise ModelError(f"a fixed tau² must be a non-negative number (not '{method}')")
        return repr(value)
    key = _BY_UPPER.get(method.upper(), "")
    if not key:
        raise ModelError(
            f"unknown tau² estimator '{method}' (choose one of {', '.join(ESTIMATORS)}, "
            "or a number to fix tau² at)"
        )
    return key


def fit_tau2(m: Models, method: str) -> Tau2Fit:
    """tau² of every model in ``m`` with the named estimator (or fixed at a number: its
    standard error then is REML's at that value, as metafor's default method); models need
    k > p."""
    key = check_tau2_method(method)
    if len(m) and np.any(m.k <= m.p):
        k = int(np.min(m.k))
        raise ModelError(
            f"estimating tau² needs more studies than coefficients (k = {k}, p = {m.p})"
        )
    value = fixed_tau2(key)
    if value is not None:
        fitted = _result(key, np.full(len(m), value), FIXED)
        return replace(fitted, se=tau2_se(m, replace(fitted, method="REML")))
    fitted = ESTIMATORS[key](m)
    return replace(fitted, se=tau2_se(m, fitted))


# ---------------------------------------------------------------------------------------------
# One model at a time (meta-regression, the library's scalar door).


def check_weights(weights: Sequence[float] | None, k: int) -> np.ndarray | None:
    """User weights of the GENQ estimator: k finite non-negative numbers, not all 0."""
    if weights is None:
        return None
    a = np.asarray(weights, dtype=float)
    if a.shape != (k,):
        raise ModelError(f"tau² weights: {a.size} given for {k} studies")
    if not np.all(np.isfinite(a)) or np.any(a < 0) or not np.any(a > 0):
        raise ModelError("tau² weights must be finite, non-negative and not all 0")
    return a


def make_design(
    yi: Sequence[float], vi: Sequence[float], X: Any = None, weights: Sequence[float] | None = None
) -> Models:
    """One model: intercept-only when ``X`` is None, else with the moderator matrix ``X``;
    ``weights`` are the GENQ estimator's user weights."""
    if len(yi) != len(vi):
        raise ModelError("effect sizes and variances differ in length")
    a = check_weights(weights, len(yi))
    if X is None:
        return InterceptModels.single(yi, vi, a)
    return RegressionModels.single(yi, vi, X, a)


def tau2_one(
    yi: Sequence[float],
    vi: Sequence[float],
    method: str,
    X: Any = None,
    weights: Sequence[float] | None = None,
) -> Tau2Estimate:
    """tau² of one model, not-converged fits included (``estimate_tau2`` raises on those)."""
    key = check_tau2_method(method)
    model = make_design(yi, vi, X, weights)
    if X is None and len(yi) < 2:
        return Tau2Estimate(0.0, key)
    fitted = fit_tau2(model, key)
    return Tau2Estimate(
        float(fitted.tau2[0]),
        key,
        bool(fitted.converged[0]),
        int(fitted.iterations[0]),
        str(fitted.algorithm[0]),
        float(fitted.se[0]) if fitted.se is not None else math.nan,
    )


def estimate_tau2(
    yi: Sequence[float],
    vi: Sequence[float],
    method: str = "DL",
    X: Any = None,
    weights: Sequence[float] | None = None,
) -> Tau2Estimate:
    """Estimate tau² of one model with the named method, with moderators ``X`` (and the user
    ``weights`` of GENQ).

    Raises :class:`ModelError` if an iterative estimator does not converge.
    """
    est = tau2_one(yi, vi, method, X, weights)
    if not est.converged:
        raise ModelError(not_converged_message(est.method, est.iterations))
    return est


def _registry_entry(key: str) -> Callable[..., Tau2Estimate]:
    def estimator(
        yi: Sequence[float],
        vi: Sequence[float],
        X: Any = None,
        weights: Sequence[float] | None = None,
    ) -> Tau2Estimate:
        return tau2_one(yi, vi, key, X, weights)

    estimator.__name__ = f"tau2_{key.lower()}_one"
    estimator.__doc__ = f"{TAU2_NAMES[key]} estimator of tau² for one model (module docstring)."
    return estimator


#: One model at a time: each entry takes (yi, vi) and optionally a moderator matrix X.
TAU2_METHODS: dict[str, Callable[..., Tau2Estimate]] = {
    key: _registry_entry(key) for key in ESTIMATORS
}


def sum_w_minus_sum_w2_over_sum_w(w: Sequence[float]) -> float:
    """tr(P) = sum w - sum w² / sum w of one intercept-only model, without cancellation."""
    arr = np.asarray(w, dtype=float)
    return float(_grouped_trace_p(arr, Groups.single(len(arr)))[0])


def trace_pp(w: Sequence[float]) -> float:
    """tr(P P) of one intercept-only model, a sum of positive terms (no cancellation)."""
    arr = np.asarray(w, dtype=float)
    return float(_grouped_trace_pp(arr, Groups.single(len(arr)))[0])
