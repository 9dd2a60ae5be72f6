"""Duval & Tweedie's (2000) trim-and-fill method, as metafor's ``trimfill()`` (metafor 3.8).

1. Side: the side of the funnel plot where studies are presumed missing. Unless given, it is
   chosen as metafor does: the slope of a meta-regression of y on sqrt(v) (the fit's tau²
   estimator); a negative slope puts the missing studies on the right, otherwise on the left.
2. Work on y (left) or -y (right), sorted ascending. Iterate from k0 = 0: fit the model (the fit's
   own options) to the k - k0 smallest values, centre all values on that estimate, rank their
   absolute values (ties by position) and sign the ranks;
   * L0 = (4 S_r - k (k + 1)) / (2k - 1), S_r the sum of the positive signed ranks,
     Var(S_r) = (k(k + 1)(2k + 1) + 10 L0³ + 27 L0² + 17 L0 - 18 k L0² - 18 k L0 + 6 k² L0) / 24,
     SE(L0) = 4 sqrt(Var(S_r)) / (2k - 1);
   * R0 = k - (the largest rank among the negative centred values) - 1, SE = sqrt(2 max(0, R0) + 2),
     p(R0) = 0.5^(R0 + 1);
   k0 = max(0, round(estimator)), until k0 no longer changes (at most 100 iterations).
3. Fill: each of the k0 largest values is mirrored about the last estimate, 2 theta - y_i (on the
   original scale), with the same variance; the model is refitted to observed plus filled studies.

Duval S, Tweedie R. Biometrics 2000;56:455-63; J Am Stat Assoc 2000;95:89-98.
"""

from __future__ import annotations

import math
from dataclasses import replace

from ivigmeta.core.pooling import fit
from ivigmeta.errors import ModelError
from ivigmeta.io.studies import Study
from ivigmeta.results import EffectSizes, MetaAnalysis, NotApplicable, TrimFill

ESTIMATORS = ("L0", "R0")
SIDES = ("left", "right")
MAXITER = 100  # metafor's default


def choose_side(ma: MetaAnalysis) -> str:
    """metafor's rule: regress y on sqrt(v) with the fit's tau² estimator; slope < 0 -> right."""
    import numpy as np

    from ivigmeta.methods.metareg import meta_regression

    es = ma.effects
    if es.k < 3:
        raise ModelError(
            f"the side cannot be chosen from {es.k} studies (the regression on sqrt(v) needs 3); give --side"
        )
    X = np.column_stack([np.ones(es.k), np.sqrt(np.asarray(es.vi, dtype=float))])
    try:
        reg = meta_regression(
            es.yi, es.vi, X, ["intercept", "sqrt_vi"], ma.options.tau2_method, "z", ma.options.level
        )
    except ModelError as exc:
        raise ModelError(
            f"the side cannot be chosen: the regression of y on sqrt(v) failed ({exc}); give --side"
        ) from None
    slope = reg.coefficients[1].estimate
    return "right" if slope < 0 else "left"


def _estimate(ma: MetaAnalysis) -> float:
    return (ma.random or ma.study_estimates[0]).theta


def trim_and_fill(
    ma: MetaAnalysis, side: str | None = None, estimator: str = "L0", maxiter: int = MAXITER
) -> TrimFill | NotApplicable:
    """Trim-and-fill analysis of ``ma``; not applicable (with the reason) when it cannot be done."""
    estimator = estimator.upper()
    if estimator not in ESTIMATORS:
        raise ModelError(
            f"unknown trim-and-fill estimator '{estimator}' (choose one of {', '.join(ESTIMATORS)})"
        )
    es = ma.effects
    k = es.k
    if k < 2:
        return NotApplicable("trimfill", f"trim-and-fill needs at least 2 studies (have {k})")
    # The imputed studies have no counts: refits use inverse-variance pooling whatever --common is.
    options = replace(ma.options, common_method="IV")
    if side is None:
        try:
            side = choose_side(ma)
        except ModelError as exc:
            return NotApplicable("trimfill", str(exc))
        chosen = "regression"
    else:
        side = side.lower()
        if side not in SIDES:
            raise ModelError(f"unknown side '{side}' (choose left or right)")
        chosen = "given"
    sign = -1.0 if side == "right" else 1.0
    flipped = [sign * y for y in es.yi]
    order = sorted(range(k), key=lambda i: flipped[i])  # stable, as R's sort(index.return = TRUE)
    ys = [flipped[i] for i in order]
    k0 = 0
    previous = -1
    iterations = 0
    beta = math.nan
    se_k0: float | None = None
    while k0 != previous:
        previous = k0
        iterations += 1
        if iterations > maxiter:
            return NotApplicable(
                "trimfill", f"trim-and-fill did not converge in {maxiter} iterations"
            )
        if k - k0 < 1:
            return NotApplicable("trimfill", f"trim-and-fill would trim all {k} studies")
        trimmed = es.subset(order[: k - k0])
        try:
            beta = sign * _estimate(fit(trimmed, options))
        except ModelError as exc:
            return NotApplicable("trimfill", f"the fit of the trimmed studies failed: {exc}")
        centred = [y - beta for y in ys]
        by_size = sorted(range(k), key=lambda i: abs(centred[i]))  # ties.method = "first"
        rank = [0] * k
        for r, i in enumerate(by_size, start=1):
            rank[i] = r
        signed = [math.copysign(rank[i], centred[i]) if centred[i] != 0 else 0.0 for i in range(k)]
        if estimator == "R0":
            negatives = [-s for s in signed if s < 0]
            if not negatives:
                return NotApplicable(
                    "trimfill", "R0 is undefined: no study lies below the trimmed estimate"
                )
            raw = k - max(negatives) - 1
            se_k0 = math.sqrt(2 * max(0.0, raw) + 2)
        else:
            sr = math.fsum(s for s in signed if s > 0)
            raw = (4 * sr - k * (k + 1)) / (2 * k - 1)
            var_sr = (
                k * (k + 1) * (2 * k + 1)
                + 10 * raw**3
                + 27 * raw**2
                + 17 * raw
                - 18 * k * raw**2
                - 18 * k * raw
                + 6 * k**2 * raw
            ) / 24
            se_k0 = max(0.0, 4 * math.sqrt(var_sr) / (2 * k - 1)) if var_sr >= 0 else None
        k0 = max(0, round(raw))
    p_k0 = 0.5 ** (k0 + 1) if estimator == "R0" else None
    mirrored = order[k - k0 :]
    filled_yi = tuple(sign * (2 * beta - ys[k - k0 + j]) for j in range(k0))
    filled_vi = tuple(es.vi[i] for i in mirrored)
    filled_from = tuple(es.studies[i].study for i in mirrored)
    if k0 == 0:
        analysis = ma
    else:
        filled_studies = tuple(
            Study(
                row=0,
                study=f"Filled {j + 1}",
                year=None,
                treat_events=None,
                treat_total=None,
                control_events=None,
                control_total=None,
                fields={"filled": "yes", "mirror_of": src},
            )
            for j, src in enumerate(filled_from)
        )
        augmented = EffectSizes(
            measure=es.measure,
            studies=es.studies + filled_studies,
            yi=es.yi + filled_yi,
            vi=es.vi + filled_vi,
            cc_added=es.cc_added + (0.0,) * k0,
            cc=es.cc,
            cc_policy=es.cc_policy,
            excluded=es.excluded,
        )
        try:
            analysis = fit(augmented, options)
        except ModelError as exc:
            return NotApplicable(
                "trimfill", f"the fit of observed and imputed studies failed: {exc}"
            )
    return TrimFill(
        estimator=estimator,
        side=side,
        side_chosen=chosen,
        k0=k0,
        se_k0=se_k0,
        p_k0=p_k0,
        filled_yi=filled_yi,
        filled_vi=filled_vi,
        filled_from=filled_from,
        analysis=analysis,
        iterations=iterations,
    )
