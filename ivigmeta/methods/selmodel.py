"""Selection models for publication bias on a fit, as metafor's ``selmodel(fit, type, ...)``
(the likelihood, weight functions and optimizer: :mod:`ivigmeta.core.selection`).

The fit's effects are refitted by maximum likelihood: the random-effects model (tau²
estimated; metafor refits any estimator by ML) or, with ``model = "common"``, the
common-effect model (tau² = 0). Decisions, as metafor where it decides:

* ``steps`` are sorted, duplicates dropped, and 1 appended when missing. The step function needs
  them; every other type takes at most one value below 1 (the p-value up to which w = 1), and
  ``beta`` none. ``prec`` applies to the continuous types other than ``beta`` (for the step
  function it would cancel from the likelihood: refused, where metafor warns).
* ``delta`` fixes weights a priori (Vevea & Woods 2005): one value per delta (one value is
  repeated, as metafor), NaN for a delta to estimate; the step function's first delta is 1
  unless given.
* A p-value interval of the step function (or the continuous model's two regions with
  ``steps``) without any study, whose delta is estimated, is an error naming the interval, as
  metafor's.
* The likelihood-ratio test compares the selection model with the unadjusted ML model on the
  number of estimated deltas; ``lrt_tau2`` tests tau² = 0 within the selection model (random
  effects only).
* A delta within 1e-4 of a bound of the optimizer (0 and 100; 1e-5 for beta) and a Hessian that
  is not positive definite (standard errors NaN) are reported as notes, where metafor warns.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from ivigmeta.core.selection import ALTERNATIVES, PRECISIONS, TYPES
from ivigmeta.errors import DataError, ModelError

if TYPE_CHECKING:
    import numpy as np

    from ivigmeta.results import MetaAnalysis, SelectionDelta, SelectionModel

MODELS = ("random", "common")


def normalise_alternative(alternative: str) -> str:
    alt = alternative.lower().replace("-", ".").replace("_", ".")
    if alt not in ALTERNATIVES:
        raise ModelError(
            f"unknown alternative '{alternative}' (choose one of greater, less, two-sided)"
        )
    return alt


def _precisions(ma: MetaAnalysis, prec: str, scaleprec: bool) -> list[float]:
    es = ma.effects
    if prec == "sei":
        values = [math.sqrt(v) for v in es.vi]
    elif prec == "vi":
        values = list(es.vi)
    else:
        missing = [s for s in es.studies if s.n is None]
        if missing:
            s = missing[0]
            more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
            raise DataError(
                f"--prec {prec} needs each study's sample size (n1 + n2 from counts or means): "
                f"{s.study} (row {s.row}){more} {'give' if more else 'gives'} only an effect"
            )
        n = [float(s.n) for s in es.studies]  # type: ignore[arg-type]
        values = [1.0 / m for m in n] if prec == "ninv" else [1.0 / math.sqrt(m) for m in n]
    if scaleprec:
        top = max(values)
        values = [x / top for x in values]
    return values


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _fmt_step(a: float) -> str:
    return f"{a:g}"


def _check_delta(delta: Sequence[float] | None, n_delta: int, kind: str) -> list[float]:
    if delta is None or len(delta) == 0:
        given = [math.nan] * n_delta
    else:
        given = [float(d) for d in delta]
        if len(given) == 1:
            given = given * n_delta
        if len(given) != n_delta:
            raise ModelError(
                f"--delta needs {n_delta} value{'s' if n_delta != 1 else ''} for this "
                f"{kind} model (got {len(given)})"
            )
        for j, d in enumerate(given):
            if math.isnan(d):
                continue
            if not math.isfinite(d):
                raise ModelError(f"delta {j + 1} must be finite (got {d:g})")
            bad = d <= 0 if kind == "beta" else d < 0
            if bad:
                sign = ">" if kind == "beta" else ">="
                raise ModelError(f"delta {j + 1} must be {sign} 0 for --type {kind} (got {d:g})")
    if kind == "stepfun" and math.isnan(given[0]):
        given[0] = 1.0
    return given


def selection_model(
    ma: MetaAnalysis,
    type: str,
    steps: Sequence[float] | None = None,
    alternative: str = "greater",
    prec: str | None = None,
    scaleprec: bool = True,
    delta: Sequence[float] | None = None,
    model: str = "random",
    profile: bool = False,
) -> SelectionModel:
    """metafor's ``selmodel(fit, type, alternative, prec, delta, steps)`` on the effects of
    ``ma`` refitted by ML (module docstring); ``profile`` adds the profile-likelihood intervals
    of tau² and each estimated delta (metafor's ``confint(sel)``). Raises ModelError /
    DataError on bad input and when the optimizer fails."""
    import numpy as np

    from ivigmeta.core.distributions import chi2_sf, norm_p_two_sided, z_crit
    from ivigmeta.core.fitstats import model_fit_statistics
    from ivigmeta.core.regression import regression_fit
    from ivigmeta.core.selection import (
        SelectionData,
        check_steps,
        fit_selection,
        interval_of,
        one_sided_pvalues,
        weight_spec,
    )
    from ivigmeta.results import SelectionModel

    kind = type.lower()
    if kind not in TYPES:
        raise ModelError(
            f"unknown selection model type '{type}' (choose one of {', '.join(TYPES)})"
        )
    model = model.lower()
    if model not in MODELS:
        raise ModelError(f"unknown model '{model}' (choose random or common)")
    alt = normalise_alternative(alternative)
    es = ma.effects
    k = es.k
    if ma.options.weights is not None:
        raise ModelError("selection models assume inverse-variance weights: not with --weights")
    if not all(v > 0 and math.isfinite(v) for v in es.vi):
        raise ModelError("selection models need positive sampling variances")
    if prec is not None:
        prec = prec.lower()
        if prec not in PRECISIONS:
            raise ModelError(f"unknown precision '{prec}' (choose one of {', '.join(PRECISIONS)})")
        if kind in ("stepfun", "beta"):
            raise ModelError(f"--prec does not apply to --type {kind}")
    cuts: tuple[float, ...] = ()
    if steps is not None and len(steps) > 0:
        if kind == "beta":
            raise ModelError("--steps does not apply to --type beta")
        cuts = check_steps(steps)
        if kind != "stepfun" and len(cuts) != 2:
            raise ModelError(
                f"--type {kind} takes a single --steps value below 1 (the p-value up to which "
                "the weight is 1)"
            )
    elif kind == "stepfun":
        raise ModelError("--type stepfun needs --steps (the p-value cut-offs)")
    spec = weight_spec(kind, len(cuts))
    given = _check_delta(delta, spec.n_delta, kind)
    n_free = sum(math.isnan(d) for d in given)
    random = model == "random"
    if k < 1 + int(random) + n_free:
        raise ModelError(
            f"{k} studies are too few to fit this selection model ({1 + int(random) + n_free} "
            "parameters)"
        )

    y = np.asarray(es.yi, dtype=float)
    v = np.asarray(es.vi, dtype=float)
    X = np.ones((k, 1))
    preci = np.asarray(_precisions(ma, prec, scaleprec) if prec else [1.0] * k)
    pv = np.clip(one_sided_pvalues(y, v, alt), spec.pval_min, 1.0 - spec.pval_min)
    groups = interval_of(pv, cuts) if cuts else np.zeros(k, dtype=int)
    counts = np.bincount(groups, minlength=len(cuts)) if cuts else np.zeros(0, dtype=int)
    if cuts:
        lows = (0.0, *cuts[:-1])
        empty = [
            f"{_fmt_step(lows[j])} < p <= {_fmt_step(cuts[j])}"
            for j in range(len(cuts))
            if counts[j] == 0 and (kind != "stepfun" or math.isnan(given[j]))
        ]
        if empty:
            raise ModelError(
                "no study's p-value falls in "
                + ("the interval " if len(empty) == 1 else "the intervals ")
                + ", ".join(empty)
                + ": change --steps"
            )
    data = SelectionData(
        y, v, X, kind, alt, cuts if kind == "stepfun" else cuts[:1], preci, pv, groups,
        spec.pval_min,
    )  # fmt: skip

    try:
        with np.errstate(all="ignore"):
            unadj = regression_fit(y, v, X, "ML", model=model)
            ll0 = float(
                model_fit_statistics(y, v, X, unadj.tau2, unadj.beta, 1 + int(random)).ll_ml[0]
            )
            est = fit_selection(data, unadj.beta, unadj.tau2, random, given, spec)
            zero = (
                fit_selection(data, unadj.beta, unadj.tau2, False, given, spec, hessian=False)
                if random
                else None
            )
    except (ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:
        raise ModelError(f"the selection model could not be fitted ({exc})") from None

    crit = z_crit(ma.options.level)
    n_est = 1 + int(random) + n_free
    se_all = (
        np.sqrt(np.clip(np.diag(est.vcov), 0.0, None)) if est.vcov is not None else
        np.full(n_est, np.nan)
    )  # fmt: skip
    notes: list[str] = []
    if est.vcov is None:
        notes.append("the Hessian is not positive definite: no standard errors")
    theta = float(est.beta[0])
    se = float(se_all[0])
    z = theta / se if se > 0 else math.nan
    tau2_se = float(se_all[1]) if random else math.nan
    tau2_lo = max(0.0, est.tau2 - crit * tau2_se) if random else math.nan
    tau2_hi = est.tau2 + crit * tau2_se if random else math.nan

    deltas: list[SelectionDelta] = []
    pos = 1 + int(random)
    for j in range(spec.n_delta):
        deltas.append(_delta_row(j, est, given, se_all, pos, spec, crit, cuts, counts, kind, notes))
        if math.isnan(given[j]):
            pos += 1

    if profile:
        tau2_pl, delta_pl = _profile_intervals(data, est, given, spec, random, ma.options.level)
        deltas = [
            replace(dl, pl_ci_low=delta_pl[j][0], pl_ci_high=delta_pl[j][1])
            if j in delta_pl
            else dl
            for j, dl in enumerate(deltas)
        ]
    else:
        tau2_pl = None
    lrt_tau2 = lrt_tau2_p = None
    if zero is not None:
        lrt_tau2 = max(0.0, -2.0 * (zero.ll - est.ll))
        lrt_tau2_p = chi2_sf(lrt_tau2, 1)
    lrt = max(0.0, -2.0 * (ll0 - est.ll))
    lrt_p = chi2_sf(lrt, n_free) if n_free > 0 else math.nan
    parms = n_est
    n_eff = max(k, parms + 2)
    return SelectionModel(
        measure=ma.measure,
        k=k,
        type=kind,
        alternative=alt,
        model=model,
        level=ma.options.level,
        steps=cuts,
        prec=prec,
        scaleprec=scaleprec if prec else True,
        theta=theta,
        se=_finite(se),
        z=_finite(z),
        p_value=norm_p_two_sided(z) if math.isfinite(z) else None,
        ci_low_theta=_finite(theta - crit * se),
        ci_high_theta=_finite(theta + crit * se),
        tau2=est.tau2,
        tau2_se=_finite(tau2_se),
        tau2_ci_low=_finite(tau2_lo),
        tau2_ci_high=_finite(tau2_hi),
        tau2_pl_ci_low=tau2_pl[0] if tau2_pl else None,
        tau2_pl_ci_high=tau2_pl[1] if tau2_pl else None,
        deltas=tuple(deltas),
        ll=est.ll,
        ll_unadjusted=ll0,
        lrt=lrt,
        lrt_df=n_free,
        lrt_p=_finite(lrt_p),
        lrt_tau2=lrt_tau2,
        lrt_tau2_p=lrt_tau2_p,
        aic=-2.0 * est.ll + 2.0 * parms,
        bic=-2.0 * est.ll + parms * math.log(k),
        aicc=-2.0 * est.ll + 2.0 * parms * n_eff / (n_eff - parms - 1),
        parameters=parms,
        theta_unadjusted=float(unadj.beta[0]),
        se_unadjusted=float(unadj.se[0]),
        tau2_unadjusted=unadj.tau2,
        labels=es.labels,
        pvalues=tuple(float(p) for p in pv),
        notes=tuple(notes),
        excluded=es.excluded,
    )


def _profile_intervals(data, est, given, spec, random: bool, level: float):
    """Profile-likelihood intervals of tau² (random effects) and of each estimated delta, over
    metafor's search ranges: tau² in [0, max(10, 100 tau²)], delta in [its lower bound,
    min(max(10, 10 delta), its upper bound)]."""
    from ivigmeta.core.distributions import chi2_ppf
    from ivigmeta.core.selection import fit_selection, profile_interval

    objective = chi2_ppf(level, 1)

    def refit(delta_given, tau2_value: float | None) -> float:
        fixed_tau2 = tau2_value is not None
        again = fit_selection(
            data, est.beta, est.tau2, random and not fixed_tau2, delta_given, spec,
            hessian=False, tau2_value=tau2_value or 0.0,
        )  # fmt: skip
        return max(0.0, 2.0 * (est.ll - again.ll))

    tau2_pl = None
    if random:
        top = 10.0 if est.tau2 <= 1.4901161193847656e-08 else max(10.0, 100.0 * est.tau2)
        tau2_pl = profile_interval(lambda t: refit(given, t), est.tau2, 0.0, top, objective)
    delta_pl = {}
    for j, g in enumerate(given):
        if not math.isnan(g):
            continue
        d = float(est.delta[j])
        top = min(max(10.0, 10.0 * d), spec.upper[j])

        def lrt(x: float, j: int = j) -> float:
            fixed = list(given)
            fixed[j] = x
            return refit(fixed, None)

        delta_pl[j] = profile_interval(lrt, d, max(0.0, spec.lower[j]), top, objective)
    return tau2_pl, delta_pl


def _delta_row(
    j: int,
    est,
    given: Sequence[float],
    se_all: np.ndarray,
    pos: int,
    spec,
    crit: float,
    cuts: Sequence[float],
    counts: np.ndarray,
    kind: str,
    notes: list[str],
) -> SelectionDelta:
    from ivigmeta.core.distributions import norm_p_two_sided
    from ivigmeta.results import SelectionDelta

    d = float(est.delta[j])
    fixed = not math.isnan(given[j])
    se = math.nan if fixed else float(se_all[pos])
    null = spec.null[j]
    z = (d - null) / se if se > 0 else math.nan
    if not fixed and (d <= spec.lower[j] + 1e-4 or d >= spec.upper[j] - 1e-4):
        notes.append(
            f"delta {j + 1} is at the bound {spec.lower[j] if d < 1 else spec.upper[j]:g} of "
            "its range: treat the results with caution"
        )
    lower = upper = None
    n_in = None
    if kind == "stepfun":
        lower = 0.0 if j == 0 else float(cuts[j - 1])
        upper = float(cuts[j])
        n_in = int(counts[j])
    return SelectionDelta(
        name=f"delta{j + 1}",
        estimate=d,
        se=_finite(se),
        z=_finite(z),
        p_value=norm_p_two_sided(z) if math.isfinite(z) else None,
        ci_low=_finite(max(0.0, d - crit * se)) if math.isfinite(se) else None,
        ci_high=_finite(d + crit * se),
        fixed=fixed,
        null=null,
        lower=lower,
        upper=upper,
        k=n_in,
    )


__all__ = ["MODELS", "normalise_alternative", "selection_model"]
