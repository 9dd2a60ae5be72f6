"""Sensitivity analyses that refit a meta-analysis on subsets of its studies.

* Leave-one-out: the model refitted k times, each time without one study (metafor's
  ``leave1out``), with the fit's own options (estimator, interval method, level).
"""

from __future__ import annotations

from ivigmeta.errors import ModelError
from ivigmeta.pooling import fit
from ivigmeta.results import LeaveOneOut, LeaveOneOutRow, MetaAnalysis


def leave_one_out(ma: MetaAnalysis) -> LeaveOneOut:
    """Refit ``ma`` once per study with that study omitted."""
    es = ma.effects
    if es.k < 2:
        raise ModelError(f"leave-one-out needs at least 2 studies (have {es.k})")
    rows = []
    for i, study in enumerate(es.studies):
        others = [j for j in range(es.k) if j != i]
        rows.append(LeaveOneOutRow(omitted=study, analysis=fit(es.subset(others), ma.options)))
    return LeaveOneOut(full=ma, rows=tuple(rows))
