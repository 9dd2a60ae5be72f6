"""Subgroup analysis: one meta-analysis per label, and a test of the difference between them.

Each level is pooled on its own, with its own tau² (the fit's estimator). The difference between
subgroups is tested as the paper did (random-effects, method-of-moments meta-regression in CMA):
a mixed-effects meta-regression on indicators of the levels (the first level, in file order, is
the reference), reporting the omnibus QM on (levels - 1) df.

Studies with an empty label are left out of that comparison and listed as excluded.
"""

from __future__ import annotations

from typing import Sequence

from ivigmeta.errors import ModelError
from ivigmeta.metareg import dummy_design, meta_regression
from ivigmeta.pooling import fit
from ivigmeta.results import (
    BetweenTest,
    Exclusion,
    MetaAnalysis,
    SubgroupAnalysis,
    SubgroupLevel,
    SubgroupResult,
)


def subgroup_by(ma: MetaAnalysis, column: str) -> SubgroupResult:
    """Subgroup analysis of ``ma`` by the text column ``column``."""
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
    test = _between_metareg(ma, keep, [labels[i] for i in keep], levels)
    return SubgroupResult(column=column, levels=tuple(groups), test=test, excluded=excluded + es.excluded)


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
    reg = meta_regression(
        [es.yi[i] for i in keep],
        [es.vi[i] for i in keep],
        X,
        names,
        tau2_method=ma.options.tau2_method,
        level=ma.options.level,
    )
    return BetweenTest(method, reg.qm, reg.qm_df, reg.qm_p_value, tau2=reg.tau2)


def subgroup_analysis(ma: MetaAnalysis, columns: Sequence[str]) -> SubgroupAnalysis:
    """Subgroup analyses of ``ma`` by each of ``columns``."""
    return SubgroupAnalysis(full=ma, by=tuple(subgroup_by(ma, c) for c in columns))
