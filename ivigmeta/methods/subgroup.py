"""Subgroup analysis: one meta-analysis per label, and a test of the difference between them.

Each level is pooled on its own, with its own tau² (the fit's estimator and interval method).
The difference between subgroups is tested in one of two ways (``between``):

* ``metareg`` (default, the paper's method: CMA's random-effects meta-regression): a
  mixed-effects meta-regression on indicators of the levels (the first level, in file order, is
  the reference) with one residual tau² from the fit's estimator; the omnibus QM on
  (levels - 1) df, or F on (levels - 1, k - levels) df under ``--ci hk``;
* ``separate`` (meta's ``subgroup`` and CMA's "separate tau²"): Cochran's Q between the subgroup
  estimates, each from its own random-effects fit, weighted by 1 / se², on (levels - 1) df
  (a subgroup with one study contributes that study's estimate).

Studies with an empty label are left out of that comparison and listed as excluded.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ivigmeta.core.distributions import chi2_sf
from ivigmeta.core.pooling import fit
from ivigmeta.errors import ModelError
from ivigmeta.methods.metareg import SingularFit, dummy_design, meta_regression
from ivigmeta.results import (
    BetweenTest,
    Exclusion,
    MetaAnalysis,
    SubgroupAnalysis,
    SubgroupLevel,
    SubgroupResult,
)

BETWEEN_METHODS = ("metareg", "separate")


def subgroup_by(ma: MetaAnalysis, column: str, between: str = "metareg") -> SubgroupResult:
    """Subgroup analysis of ``ma`` by the text column ``column``."""
    if between not in BETWEEN_METHODS:
        raise ModelError(
            f"unknown between-subgroup test '{between}' (choose one of {', '.join(BETWEEN_METHODS)})"
        )
    es = ma.effects
    labels = [s.fields.get(column, "").strip() for s in es.studies]
    keep = [i for i, lab in enumerate(labels) if lab]
    excluded = tuple(
        Exclusion(es.studies[i].study, f"no '{column}' label", es.studies[i].row)
        for i, lab in enumerate(labels)
        if not lab
    )
    levels: list[str] = []
    for i in keep:
        if labels[i] not in levels:
            levels.append(labels[i])
    if not levels:
        raise ModelError(f"column '{column}' has no labels: nothing to compare")
    groups = []
    for level in levels:
        idx = [i for i in keep if labels[i] == level]
        groups.append(SubgroupLevel(level=level, analysis=fit(es.subset(idx), ma.options)))
    if between == "separate":
        test = _between_separate(ma, groups)
    else:
        test = _between_metareg(ma, keep, [labels[i] for i in keep], levels)
    return SubgroupResult(
        column=column, levels=tuple(groups), test=test, excluded=excluded + es.excluded
    )


def _between_metareg(
    ma: MetaAnalysis, keep: Sequence[int], labels: Sequence[str], levels: Sequence[str]
) -> BetweenTest:
    method = f"metareg-{ma.options.tau2_method}"
    if len(levels) < 2:
        return BetweenTest(method, None, 0, None, note="only one subgroup: nothing to compare")
    es = ma.effects
    if len(keep) <= len(levels):
        return BetweenTest(
            method,
            None,
            len(levels) - 1,
            None,
            note=f"{len(keep)} studies in {len(levels)} subgroups: too few for a meta-regression",
        )
    X, names = dummy_design(labels, levels)
    unavailable = {
        "hc": "the Henmi-Copas interval (--ci hc) has no meta-regression (metafor's hc() has "
        "none): no test between the subgroups",
    }.get(ma.options.ci_method) or (
        "the GENQ estimator's weights are not passed to the meta-regression: no test between "
        "the subgroups"
        if ma.options.tau2_method == "GENQ"
        else None
    )
    if unavailable:
        return BetweenTest(method, None, len(levels) - 1, None, note=unavailable)
    try:
        reg = meta_regression(
            [es.yi[i] for i in keep],
            [es.vi[i] for i in keep],
            X,
            names,
            tau2_method=ma.options.tau2_method,
            ci_method=ma.options.ci_method,
            level=ma.options.level,
        )
    except SingularFit as exc:
        # The subgroups are still reported; only the comparison between them is not.
        return BetweenTest(method, None, len(levels) - 1, None, note=str(exc))
    return BetweenTest(method, reg.qm, reg.qm_df, reg.qm_p_value, tau2=reg.tau2, df2=reg.qm_df2)


def _between_separate(ma: MetaAnalysis, groups: Sequence[SubgroupLevel]) -> BetweenTest:
    model = f"GLMM {ma.options.glmm}" if ma.options.glmm else ma.options.tau2_method
    method = f"separate-{model}"
    if len(groups) < 2:
        return BetweenTest(method, None, 0, None, note="only one subgroup: nothing to compare")
    thetas, weights = [], []
    for g in groups:
        est = g.analysis.random or g.analysis.study_estimates[0]
        if not est.se > 0:
            return BetweenTest(
                method,
                None,
                len(groups) - 1,
                None,
                note=f"subgroup '{g.level}' has a zero standard error: Q-between is undefined",
            )
        thetas.append(est.theta)
        weights.append(1.0 / (est.se * est.se))
    sw = math.fsum(weights)
    mean = math.fsum(w * t for w, t in zip(weights, thetas)) / sw
    q = math.fsum(w * (t - mean) ** 2 for w, t in zip(weights, thetas))
    df = len(groups) - 1
    return BetweenTest(method, q, df, chi2_sf(q, df))


def subgroup_analysis(
    ma: MetaAnalysis, columns: Sequence[str], between: str = "metareg"
) -> SubgroupAnalysis:
    """Subgroup analyses of ``ma`` by each of ``columns``."""
    return SubgroupAnalysis(full=ma, by=tuple(subgroup_by(ma, c, between) for c in columns))
