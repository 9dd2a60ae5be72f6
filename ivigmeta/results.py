"""Frozen result objects of every analysis, each with ``to_dict()`` at full precision.

``theta``/``se`` are on the analysis scale (log for RR and OR); ``estimate``/``ci_low``/``ci_high``
on the reported scale; ``i2`` and weights in percent. ``None`` means "not applicable" (for example
heterogeneity with a single study) and becomes JSON ``null``. Nothing here rounds or prints.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ivigmeta.io.studies import Study

RATIO_MEASURES = ("RR", "OR")


def back_transform(theta: float | None, measure: str) -> float | None:
    """Analysis scale -> reported scale (exp for ratio measures, identity otherwise)."""
    if theta is None:
        return None
    if measure in RATIO_MEASURES:
        try:
            return math.exp(theta)
        except OverflowError:
            return math.inf
    return theta


@dataclass(frozen=True)
class Exclusion:
    """A study left out of an analysis, and why."""

    study: str
    reason: str
    row: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"study": self.study, "reason": self.reason, "row": self.row}


@dataclass(frozen=True)
class FitOptions:
    """How a model is fitted; every method that refits (leave-one-out, subgroups) reuses them."""

    tau2_method: str = "DL"
    ci_method: str = "z"
    level: float = 0.95
    common_method: str = "IV"


@dataclass(frozen=True)
class EffectSizes:
    """Per-study effect sizes ``yi`` and sampling variances ``vi`` (metafor's ``escalc``)."""

    measure: str
    studies: tuple[Study, ...]
    yi: tuple[float, ...]
    vi: tuple[float, ...]
    cc_added: tuple[float, ...]
    cc: float = 0.5
    cc_policy: str = "only0"
    excluded: tuple[Exclusion, ...] = ()

    @property
    def k(self) -> int:
        return len(self.yi)

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(s.study for s in self.studies)

    @property
    def sources(self) -> tuple[str, ...]:
        """Where each study's yi/vi came from: ``counts``, ``ci``, ``se`` or ``vi``."""
        return tuple(s.effect_source for s in self.studies)

    @property
    def has_counts(self) -> bool:
        """True when every study has 2x2 counts (Mantel-Haenszel and Peto need them)."""
        return all(s.has_counts for s in self.studies)

    def require_counts(self, method: str) -> None:
        """Raise a ModelError naming the rows that give only an effect, for a method needing counts."""
        rows = [s for s in self.studies if not s.has_counts]
        if rows:
            from ivigmeta.errors import ModelError

            listed = ", ".join(f"{s.study} (row {s.row})" for s in rows)
            raise ModelError(
                f"{method} needs event counts, but {listed} give(s) only an effect "
                "(use --common IV, or give the counts)"
            )

    def counts_only(self, method: str) -> EffectSizes:
        """The studies with counts; the others are excluded, naming ``method`` in the reason."""
        keep = [i for i, s in enumerate(self.studies) if s.has_counts]
        dropped = [
            Exclusion(s.study, f"{method} needs event counts; this row gives only an effect", s.row)
            for s in self.studies
            if not s.has_counts
        ]
        return self.subset(keep, dropped)

    def subset(self, indices: Sequence[int], excluded: Sequence[Exclusion] = ()) -> EffectSizes:
        """The studies at ``indices`` (in that order); ``excluded`` is added to the exclusions."""
        return replace(
            self,
            studies=tuple(self.studies[i] for i in indices),
            yi=tuple(self.yi[i] for i in indices),
            vi=tuple(self.vi[i] for i in indices),
            cc_added=tuple(self.cc_added[i] for i in indices),
            excluded=self.excluded + tuple(excluded),
        )


@dataclass(frozen=True)
class Estimate:
    """A (pooled or single-study) estimate with its Wald-type or t-based test and interval."""

    measure: str
    theta: float
    se: float
    statistic: float
    p_value: float
    ci_low_theta: float
    ci_high_theta: float

    @property
    def estimate(self) -> float:
        return back_transform(self.theta, self.measure)  # type: ignore[return-value]

    @property
    def ci_low(self) -> float:
        return back_transform(self.ci_low_theta, self.measure)  # type: ignore[return-value]

    @property
    def ci_high(self) -> float:
        return back_transform(self.ci_high_theta, self.measure)  # type: ignore[return-value]

    def to_dict(self) -> dict[str, Any]:
        return {
            "theta": self.theta,
            "se": self.se,
            "statistic": self.statistic,
            "estimate": self.estimate,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "p_value": self.p_value,
        }


@dataclass(frozen=True)
class CommonFit(Estimate):
    """Common-effect (fixed-effect) pooled estimate."""

    method: str = "IV"
    weights: tuple[float, ...] = ()
    # Mantel-Haenszel and Peto fits carry their own heterogeneity test (metafor's rma.mh and
    # rma.peto): Q about the pooled estimate on k_yi - 1 df, with I² = (Q - df) / Q and H² = Q / df.
    q: float | None = None
    q_df: int | None = None
    q_p_value: float | None = None
    i2: float | None = None
    h2: float | None = None
    k_yi: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {"method": self.method, **super().to_dict()}
        if self.method != "IV":
            out.update(
                {
                    "q": self.q,
                    "q_df": self.q_df,
                    "q_p_value": self.q_p_value,
                    "i2": self.i2,
                    "h2": self.h2,
                    "k_yi": self.k_yi,
                }
            )
        return out


@dataclass(frozen=True)
class RandomFit(Estimate):
    """Random-effects pooled estimate with its tau² and prediction interval."""

    tau2_method: str = "DL"
    ci_method: str = "z"
    tau2: float = 0.0
    df: float | None = None
    pi_low_theta: float | None = None
    pi_high_theta: float | None = None
    weights: tuple[float, ...] = ()
    #: whether the tau² estimator converged, and how it got there ("closed form", "Fisher
    #: scoring", "grid search" when scoring failed and the likelihood search found the maximum,
    #: "safeguarded Newton")
    converged: bool = True
    tau2_algorithm: str = ""

    @property
    def pi_low(self) -> float | None:
        return back_transform(self.pi_low_theta, self.measure)

    @property
    def pi_high(self) -> float | None:
        return back_transform(self.pi_high_theta, self.measure)

    def to_dict(self) -> dict[str, Any]:
        out = {"tau2_method": self.tau2_method, "ci_method": self.ci_method, **super().to_dict()}
        out["tau2"] = self.tau2
        out["df"] = self.df
        out["pi_low"] = self.pi_low
        out["pi_high"] = self.pi_high
        out["converged"] = self.converged
        out["tau2_algorithm"] = self.tau2_algorithm
        return out


@dataclass(frozen=True)
class Heterogeneity:
    """Cochran's Q with its test, I² (percent), H², tau² and tau.

    ``i2`` and ``h2`` follow metafor (from tau² and the typical within-study variance); ``i2_q``
    is the Q-based (Q - df) / Q of meta and RevMan. They are equal under DerSimonian-Laird.
    ``None`` where not applicable (k = 1).
    """

    q: float | None
    df: int
    p_value: float | None
    i2: float | None
    h2: float | None
    tau2: float | None
    tau: float | None
    i2_q: float | None
    tau2_method: str = "DL"
    ci: HeterogeneityCI | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {
            "q": self.q,
            "df": self.df,
            "p_value": self.p_value,
            "i2": self.i2,
            "h2": self.h2,
            "tau2": self.tau2,
            "tau": self.tau,
            "i2_q": self.i2_q,
            "tau2_method": self.tau2_method,
        }
        if self.ci is not None:
            out.update(self.ci.to_dict())
        else:
            out.update({"tau2_ci": None, "tau_ci": None, "i2_ci": None, "h2_ci": None})
        return out


@dataclass(frozen=True)
class MetaAnalysis:
    """One fitted meta-analysis: the inputs, the per-study estimates and both pooled models.

    With a single study ``common``, ``random`` and ``heterogeneity`` are ``None``: nothing is pooled.
    """

    effects: EffectSizes
    options: FitOptions
    study_estimates: tuple[Estimate, ...]
    common: CommonFit | None
    random: RandomFit | None
    heterogeneity: Heterogeneity | None

    @property
    def k(self) -> int:
        return self.effects.k

    @property
    def measure(self) -> str:
        return self.effects.measure

    @property
    def pooled(self) -> bool:
        return self.random is not None

    def to_dict(self) -> dict[str, Any]:
        studies = []
        for i, (study, est) in enumerate(zip(self.effects.studies, self.study_estimates)):
            studies.append(
                {
                    "study": study.study,
                    "year": study.year,
                    "row": study.row,
                    "treat_events": study.treat_events,
                    "treat_total": study.treat_total,
                    "control_events": study.control_events,
                    "control_total": study.control_total,
                    "yi": self.effects.yi[i],
                    "vi": self.effects.vi[i],
                    "cc_added": self.effects.cc_added[i],
                    "source": study.effect_source,
                    **est.to_dict(),
                    "weight_common": self.common.weights[i] if self.common else None,
                    "weight_random": self.random.weights[i] if self.random else None,
                }
            )
        return {
            "measure": self.measure,
            "k": self.k,
            "level": self.options.level,
            "studies": studies,
            "common": self.common.to_dict() if self.common else None,
            "random": self.random.to_dict() if self.random else None,
            "heterogeneity": self.heterogeneity.to_dict() if self.heterogeneity else None,
            "excluded": [e.to_dict() for e in self.effects.excluded],
        }


@dataclass(frozen=True)
class LeaveOneOutRow:
    """The random-effects fit with one study omitted."""

    omitted: Study
    analysis: MetaAnalysis

    def to_dict(self) -> dict[str, Any]:
        fit, het = self.analysis.random, self.analysis.heterogeneity
        out: dict[str, Any] = {"study": self.omitted.study, "k": self.analysis.k}
        if fit is None:  # only one study left: nothing is pooled
            est = self.analysis.study_estimates[0]
            out.update(est.to_dict())
            out.update({"q": None, "q_p_value": None, "i2": None, "tau2": None})
            return out
        out.update(fit.to_dict())
        out.update(
            {
                "q": het.q if het else None,
                "q_p_value": het.p_value if het else None,
                "i2": het.i2 if het else None,
                "h2": het.h2 if het else None,
                "tau2": het.tau2 if het else None,
            }
        )
        return out


@dataclass(frozen=True)
class LeaveOneOut:
    """Leave-one-out sensitivity analysis of a fitted meta-analysis."""

    full: MetaAnalysis
    rows: tuple[LeaveOneOutRow, ...]

    def _pooled(self) -> list[tuple[float, LeaveOneOutRow]]:
        out = []
        for row in self.rows:
            fit = row.analysis.random or row.analysis.study_estimates[0]
            out.append((fit.theta, row))
        return out

    @property
    def smallest(self) -> LeaveOneOutRow:
        return min(self._pooled(), key=lambda item: item[0])[1]

    @property
    def largest(self) -> LeaveOneOutRow:
        return max(self._pooled(), key=lambda item: item[0])[1]

    def to_dict(self) -> dict[str, Any]:
        return {
            "measure": self.full.measure,
            "k": self.full.k,
            "tau2_method": self.full.options.tau2_method,
            "ci_method": self.full.options.ci_method,
            "omitted": [row.to_dict() for row in self.rows],
            "range": {
                "smallest": self.smallest.to_dict(),
                "largest": self.largest.to_dict(),
            },
            "excluded": [e.to_dict() for e in self.full.effects.excluded],
        }


@dataclass(frozen=True)
class BetweenTest:
    """Test of a difference between subgroups (meta-regression QM or Q-between)."""

    method: str
    statistic: float | None
    df: int
    p_value: float | None
    tau2: float | None = None
    note: str = ""
    df2: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "qm": self.statistic,
            "statistic": self.statistic,
            "df": self.df,
            "df2": self.df2,
            "p_value": self.p_value,
            "tau2": self.tau2,
            "note": self.note,
        }


@dataclass(frozen=True)
class SubgroupLevel:
    """The meta-analysis of the studies sharing one label."""

    level: str
    analysis: MetaAnalysis

    def to_dict(self) -> dict[str, Any]:
        a = self.analysis
        fit = a.random or a.study_estimates[0]
        het = a.heterogeneity
        return {
            "level": self.level,
            "k": a.k,
            "studies": list(a.effects.labels),
            "theta": fit.theta,
            "se": fit.se,
            "estimate": fit.estimate,
            "ci_low": fit.ci_low,
            "ci_high": fit.ci_high,
            "p_value": fit.p_value,
            "q": het.q if het else None,
            "df": het.df if het else 0,
            "q_p_value": het.p_value if het else None,
            "i2": het.i2 if het else None,
            "tau2": het.tau2 if het else None,
        }


@dataclass(frozen=True)
class SubgroupResult:
    """Subgroup analysis by one label column."""

    column: str
    levels: tuple[SubgroupLevel, ...]
    test: BetweenTest
    excluded: tuple[Exclusion, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "levels": [lv.to_dict() for lv in self.levels],
            "test": self.test.to_dict(),
            "excluded": [e.to_dict() for e in self.excluded],
        }


@dataclass(frozen=True)
class SubgroupAnalysis:
    """Subgroup analyses by one or more columns, with the overall fit they came from."""

    full: MetaAnalysis
    by: tuple[SubgroupResult, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "measure": self.full.measure,
            "tau2_method": self.full.options.tau2_method,
            "by": [b.to_dict() for b in self.by],
            "excluded": [e.to_dict() for e in self.full.effects.excluded],
        }


@dataclass(frozen=True)
class Coefficient:
    """One meta-regression coefficient with its test and interval (analysis scale)."""

    name: str
    estimate: float
    se: float
    statistic: float
    p_value: float
    ci_low: float
    ci_high: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "estimate": self.estimate,
            "se": self.se,
            "statistic": self.statistic,
            "p_value": self.p_value,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
        }


@dataclass(frozen=True)
class MetaRegression:
    """A mixed-effects meta-regression (metafor's ``rma(yi, vi, mods = ...)``)."""

    coefficients: tuple[Coefficient, ...]
    qm: float | None
    qm_df: int
    qm_p_value: float | None
    qe: float
    qe_df: int
    qe_p_value: float | None
    tau2: float
    i2: float | None
    h2: float | None
    r2: float | None
    k: int
    tau2_method: str = "DL"
    ci_method: str = "z"
    qm_df2: int | None = None
    excluded: tuple[Exclusion, ...] = field(default_factory=tuple)
    level: float = 0.95
    measure: str = ""
    references: tuple[tuple[str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "measure": self.measure,
            "level": self.level,
            "references": dict(self.references),
            "k": self.k,
            "tau2_method": self.tau2_method,
            "ci_method": self.ci_method,
            "coefficients": [c.to_dict() for c in self.coefficients],
            "qm": self.qm,
            "qm_df": self.qm_df,
            "qm_df2": self.qm_df2,
            "qm_p_value": self.qm_p_value,
            "qe": self.qe,
            "qe_df": self.qe_df,
            "qe_p_value": self.qe_p_value,
            "tau2": self.tau2,
            "i2": self.i2,
            "h2": self.h2,
            "r2": self.r2,
            "excluded": [e.to_dict() for e in self.excluded],
        }


@dataclass(frozen=True)
class EggerTest:
    """Egger's regression test: standardized effect regressed on precision (Egger et al. 1997)."""

    intercept: float
    se: float
    t: float
    df: int
    p_value: float
    slope: float
    slope_se: float
    k: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "intercept": self.intercept,
            "se": self.se,
            "t": self.t,
            "df": self.df,
            "p_value": self.p_value,
            "slope": self.slope,
            "slope_se": self.slope_se,
            "k": self.k,
        }


@dataclass(frozen=True)
class NotApplicable:
    """A method that does not apply to these data, with the reason (reported, not an error)."""

    method: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"applicable": False, "reason": self.reason}


@dataclass(frozen=True)
class BiasAnalysis:
    """Small-study-effect tests of one set of effect sizes.

    Each test is its result, a :class:`NotApplicable` with the reason, or ``None`` when it was
    not requested (and then absent from the JSON).
    """

    full: MetaAnalysis
    egger: EggerTest | NotApplicable | None
    begg: BeggTest | NotApplicable | None = None
    peters: RegressionTest | NotApplicable | None = None
    harbord: RegressionTest | NotApplicable | None = None
    trimfill: TrimFill | NotApplicable | None = None
    failsafe: FailSafeN | NotApplicable | None = None

    TESTS = ("egger", "begg", "peters", "harbord", "trimfill", "failsafe")

    def results(self) -> list[tuple[str, Any]]:
        """(name, result) of every requested test, in the fixed order of ``TESTS``."""
        return [
            (name, getattr(self, name)) for name in self.TESTS if getattr(self, name) is not None
        ]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"measure": self.full.measure, "k": self.full.k}
        out["tests"] = [name for name, _ in self.results()]
        for name, res in self.results():
            out[name] = res.to_dict()
        out["excluded"] = [e.to_dict() for e in self.full.effects.excluded]
        return out


@dataclass(frozen=True)
class HeterogeneityCI:
    """Q-profile confidence intervals for tau², tau, I² (percent) and H² (Viechtbauer 2007).

    ``lb_sign``/``ub_sign`` are "" or, as metafor prints them, "<" / ">" when a bound is at the
    limit of the search interval; ``ci_null`` when even tau² = 0 is rejected as too large a value
    (the interval is the single point 0).
    """

    level: float
    tau2_low: float
    tau2_high: float
    i2_low: float
    i2_high: float
    h2_low: float
    h2_high: float
    lb_sign: str = ""
    ub_sign: str = ""
    ci_null: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "tau2_ci": [self.tau2_low, self.tau2_high],
            "tau_ci": [math.sqrt(self.tau2_low), math.sqrt(self.tau2_high)],
            "i2_ci": [self.i2_low, self.i2_high],
            "h2_ci": [self.h2_low, self.h2_high],
            "ci_level": self.level,
            "ci_method": "Q-profile",
            "ci_lb_sign": self.lb_sign,
            "ci_ub_sign": self.ub_sign,
            "ci_null": self.ci_null,
        }


# ---------------------------------------------------------------------------------------------
# Sensitivity, influence and small-study effects (cumulative meta-analysis, Viechtbauer & Cheung
# diagnostics, Begg, Peters, Harbord, trim-and-fill, fail-safe N).


def _pooled_fields(analysis: MetaAnalysis) -> dict[str, Any]:
    """Random-effects estimate and heterogeneity of ``analysis`` (a single study: its own estimate,
    heterogeneity not applicable)."""
    fit = analysis.random or analysis.study_estimates[0]
    het = analysis.heterogeneity
    return {
        "k": analysis.k,
        "theta": fit.theta,
        "se": fit.se,
        "statistic": fit.statistic,
        "estimate": fit.estimate,
        "ci_low": fit.ci_low,
        "ci_high": fit.ci_high,
        "p_value": fit.p_value,
        "q": het.q if het else None,
        "q_p_value": het.p_value if het else None,
        "i2": het.i2 if het else None,
        "h2": het.h2 if het else None,
        "tau2": het.tau2 if het else None,
    }


@dataclass(frozen=True)
class CumulativeStep:
    """The random-effects fit of the studies up to and including ``added`` (metafor's ``cumul``)."""

    added: Study
    order_value: str | float | None
    analysis: MetaAnalysis | None
    k: int = 0
    # Why the step has no fit (an iterative tau² estimator that did not converge); metafor's
    # cumul() likewise reports NA for a step whose fit fails.
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "study": self.added.study,
            "row": self.added.row,
            "year": self.added.year,
            "order_value": self.order_value,
        }
        if self.analysis is None:
            keys = (
                "theta",
                "se",
                "statistic",
                "estimate",
                "ci_low",
                "ci_high",
                "p_value",
                "q",
                "q_p_value",
                "i2",
                "h2",
                "tau2",
            )
            out.update({"k": self.k, **dict.fromkeys(keys)})
        else:
            out.update(_pooled_fields(self.analysis))
        out["note"] = self.note
        return out


@dataclass(frozen=True)
class Cumulative:
    """Cumulative meta-analysis: studies added one at a time in the order of ``order_by``."""

    full: MetaAnalysis
    order_by: str
    descending: bool
    steps: tuple[CumulativeStep, ...]
    missing_order: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "measure": self.full.measure,
            "k": self.full.k,
            "order_by": self.order_by,
            "descending": self.descending,
            "tau2_method": self.full.options.tau2_method,
            "ci_method": self.full.options.ci_method,
            "level": self.full.options.level,
            "steps": [s.to_dict() for s in self.steps],
            "missing_order": list(self.missing_order),
            "excluded": [e.to_dict() for e in self.full.effects.excluded],
        }


@dataclass(frozen=True)
class InfluenceRow:
    """Case-deletion diagnostics of one study (Viechtbauer & Cheung 2010; metafor's ``influence``).

    ``hat`` is a fraction, ``weight`` a percentage; ``dfbetas`` is the DFBETAS of the pooled
    estimate; ``baujat_x`` is the study's squared Pearson residual under the fitted model (its
    contribution to Q for a common-effect model) and ``baujat_y`` its influence on the pooled
    estimate, (theta - theta_(-i))² / Var(theta_(-i)).
    """

    study: Study
    rstudent: float | None
    dffits: float | None
    cook_d: float | None
    cov_r: float | None
    tau2_del: float | None
    qe_del: float | None
    hat: float
    weight: float
    dfbetas: float | None
    influential: bool
    reasons: tuple[str, ...]
    baujat_x: float
    baujat_y: float | None
    # Why the case-deletion values are missing (the refit without the study did not converge;
    # metafor reports NA there too).
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "study": self.study.study,
            "row": self.study.row,
            "rstudent": self.rstudent,
            "dffits": self.dffits,
            "cook_d": self.cook_d,
            "cov_r": self.cov_r,
            "tau2_del": self.tau2_del,
            "qe_del": self.qe_del,
            "hat": self.hat,
            "weight": self.weight,
            "dfbetas": self.dfbetas,
            "influential": self.influential,
            "influential_by": list(self.reasons),
            "baujat_x": self.baujat_x,
            "baujat_y": self.baujat_y,
            "note": self.note,
        }


@dataclass(frozen=True)
class Influence:
    """Influence diagnostics of every study of a fitted random-effects model, with the cut-offs
    metafor uses to flag a study as influential."""

    full: MetaAnalysis
    rows: tuple[InfluenceRow, ...]
    dffits_cutoff: float
    cook_d_cutoff: float
    hat_cutoff: float
    dfbetas_cutoff: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "measure": self.full.measure,
            "k": self.full.k,
            "tau2_method": self.full.options.tau2_method,
            "ci_method": self.full.options.ci_method,
            "cutoffs": {
                "dffits": self.dffits_cutoff,
                "cook_d": self.cook_d_cutoff,
                "hat": self.hat_cutoff,
                "dfbetas": self.dfbetas_cutoff,
            },
            "studies": [r.to_dict() for r in self.rows],
            "excluded": [e.to_dict() for e in self.full.effects.excluded],
        }


@dataclass(frozen=True)
class BeggTest:
    """Begg & Mazumdar's rank correlation test (Kendall's tau between standardized effects and
    variances), exact p-value without ties as metafor's ``ranktest`` (R's ``cor.test(exact = TRUE)``)."""

    tau: float
    p_value: float
    exact: bool
    statistic: float
    k: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "tau": self.tau,
            "p_value": self.p_value,
            "exact": self.exact,
            "statistic": self.statistic,
            "k": self.k,
        }


@dataclass(frozen=True)
class RegressionTest:
    """A weighted regression test for small-study effects (Peters, Harbord): the slope of the
    effect on a measure of study size, t test on k - 2 df; ``intercept`` is the limit effect."""

    method: str
    predictor: str
    bias: float
    se: float
    t: float
    df: int
    p_value: float
    intercept: float
    intercept_se: float
    k: int
    excluded: tuple[Exclusion, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "predictor": self.predictor,
            "bias": self.bias,
            "se": self.se,
            "t": self.t,
            "df": self.df,
            "p_value": self.p_value,
            "intercept": self.intercept,
            "intercept_se": self.intercept_se,
            "k": self.k,
            "excluded": [e.to_dict() for e in self.excluded],
        }


@dataclass(frozen=True)
class TrimFill:
    """Duval & Tweedie's trim-and-fill: k0 imputed studies on ``side``, and the model refitted on
    the observed plus imputed studies (``analysis``; its random-effects fit is the adjusted estimate).

    ``filled_yi``/``filled_vi`` are the imputed studies (analysis scale), ``filled_from`` the label
    of the observed study each one mirrors.
    """

    estimator: str
    side: str
    side_chosen: str  # "given" or "regression"
    k0: int
    se_k0: float | None
    p_k0: float | None
    filled_yi: tuple[float, ...]
    filled_vi: tuple[float, ...]
    filled_from: tuple[str, ...]
    analysis: MetaAnalysis
    iterations: int

    @property
    def fit(self) -> Estimate:
        return self.analysis.random or self.analysis.study_estimates[0]

    @property
    def theta(self) -> float:
        return self.fit.theta

    @property
    def se(self) -> float:
        return self.fit.se

    @property
    def estimate(self) -> float:
        return self.fit.estimate

    @property
    def ci_low(self) -> float:
        return self.fit.ci_low

    @property
    def ci_high(self) -> float:
        return self.fit.ci_high

    @property
    def p_value(self) -> float:
        return self.fit.p_value

    def to_dict(self) -> dict[str, Any]:
        measure = self.analysis.measure
        pooled = _pooled_fields(self.analysis)
        return {
            "estimator": self.estimator,
            "side": self.side,
            "side_chosen": self.side_chosen,
            "k0": self.k0,
            "se_k0": self.se_k0,
            "p_k0": self.p_k0,
            "iterations": self.iterations,
            "k_total": self.analysis.k,
            "theta": pooled["theta"],
            "se": pooled["se"],
            "estimate": pooled["estimate"],
            "ci_low": pooled["ci_low"],
            "ci_high": pooled["ci_high"],
            "p_value": pooled["p_value"],
            "q": pooled["q"],
            "i2": pooled["i2"],
            "tau2": pooled["tau2"],
            "filled": [
                {
                    "study": f"Filled {j + 1}",
                    "mirror_of": src,
                    "yi": y,
                    "vi": v,
                    "estimate": back_transform(y, measure),
                }
                for j, (y, v, src) in enumerate(
                    zip(self.filled_yi, self.filled_vi, self.filled_from)
                )
            ],
        }


@dataclass(frozen=True)
class FailSafeN:
    """Fail-safe N (Rosenthal 1979, Orwin 1983, Rosenberg 2005) as metafor's ``fsn``.

    ``n`` is rounded up as metafor does; ``n_exact`` is the unrounded value. ``mean_theta`` and
    ``target_theta`` are on the analysis scale (Orwin: unweighted mean, Rosenberg: common-effect
    estimate); ``p_value`` is the observed significance the method starts from (Rosenthal:
    one-sided Stouffer; Rosenberg: two-sided common-effect z; Orwin: none).
    """

    method: str
    n: float
    n_exact: float
    alpha: float
    p_value: float | None
    mean_theta: float | None
    target_theta: float | None
    k: int
    measure: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "n": self.n,
            "n_exact": self.n_exact,
            "alpha": self.alpha,
            "p_value": self.p_value,
            "mean_theta": self.mean_theta,
            "mean_estimate": back_transform(self.mean_theta, self.measure),
            "target_theta": self.target_theta,
            "target": back_transform(self.target_theta, self.measure),
            "k": self.k,
        }


# ---------------------------------------------------------------------------------------------
# Risk of bias (ROBINS-I): judgements per study and domain, the overall judgement and a summary.


@dataclass(frozen=True)
class RobStudy:
    """One study's ROBINS-I judgements: one level per domain, the overall judgement by the rules
    and, when the table gives one, the overall judgement given (``None`` otherwise)."""

    study: str
    row: int
    judgements: tuple[str, ...]
    overall_rule: str
    overall_given: str | None = None
    weight: float | None = None

    @property
    def overall(self) -> str:
        """The overall judgement shown: the one given, else the one the rules give."""
        return self.overall_given or self.overall_rule

    @property
    def contradicts_rules(self) -> bool:
        return self.overall_given is not None and self.overall_given != self.overall_rule

    def to_dict(self, domains: Sequence[str] = ()) -> dict[str, Any]:
        out: dict[str, Any] = {"study": self.study, "row": self.row}
        if domains:
            out.update(dict(zip(domains, self.judgements)))
        else:
            out["judgements"] = list(self.judgements)
        out.update(
            {
                "overall": self.overall,
                "overall_rule": self.overall_rule,
                "overall_given": self.overall_given,
                "contradicts_rules": self.contradicts_rules,
                "weight": self.weight,
            }
        )
        return out


@dataclass(frozen=True)
class RobDomainSummary:
    """Share (percent, weighted when the table has weights) of studies at each level in a domain."""

    domain: str
    label: str
    percent: tuple[float, ...]  # aligned with RobAssessment.levels

    def to_dict(self, levels: Sequence[str] = ()) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "label": self.label,
            "percent": dict(zip(levels, self.percent)),
        }


@dataclass(frozen=True)
class RobAssessment:
    """A ROBINS-I risk-of-bias table: domains, levels, the studies and the per-domain summary.

    ``summary`` has one entry per domain and a last one for the overall judgement.
    """

    source: str
    tool: str
    domains: tuple[str, ...]
    domain_labels: tuple[str, ...]
    levels: tuple[str, ...]
    studies: tuple[RobStudy, ...]
    summary: tuple[RobDomainSummary, ...]
    weighted: bool
    weight_source: str = ""  # what the weights are ("" when unweighted)

    @property
    def contradictions(self) -> tuple[RobStudy, ...]:
        return tuple(s for s in self.studies if s.contradicts_rules)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "source": self.source,
            "domains": [
                {"key": k, "label": lab} for k, lab in zip(self.domains, self.domain_labels)
            ],
            "levels": list(self.levels),
            "weighted": self.weighted,
            "weight_source": self.weight_source or None,
            "studies": [s.to_dict(self.domains) for s in self.studies],
            "summary": [d.to_dict(self.levels) for d in self.summary],
            "contradictions": [
                {"study": s.study, "row": s.row, "given": s.overall_given, "rule": s.overall_rule}
                for s in self.contradictions
            ],
        }


# ---------------------------------------------------------------------------------------------
# reproduce: a paper's printed numbers checked against what the commands recompute


@dataclass(frozen=True)
class AlternativeCheck:
    """One alternative convention tried on a number that differs, and what it gives.

    ``status`` is ``gives_printed``, ``differs``, ``unchanged`` (the convention gives exactly the
    value the number already has), ``not_available`` (the option does not exist in
    this version, or the run failed) or ``not_applicable`` (the convention cannot change this
    number).
    """

    name: str
    how: str
    status: str
    value: Any = None
    rounded: str = ""
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "how": self.how,
            "status": self.status,
            "value": self.value,
            "rounded": self.rounded,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class NumberCheck:
    """A printed number, what the command recomputes for it, and the verdict.

    ``verdict`` is ``reproduced``, ``differs``, ``differs_expected`` or ``error``. ``ok`` says
    whether the number behaved as its ``expect`` says (``match`` or ``differs``).
    """

    label: str
    printed: str
    expect: str
    note: str
    command: str
    args: tuple[str, ...]
    path: str
    verdict: str
    where: str = ""
    recomputed: Any = None
    rounded: str = ""
    error: str = ""
    explanation: str = ""
    alternatives: tuple[AlternativeCheck, ...] = ()

    @property
    def ok(self) -> bool:
        if self.verdict == "reproduced":
            return self.expect == "match"
        return self.verdict == "differs_expected"

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "printed": self.printed,
            "recomputed": self.recomputed,
            "rounded": self.rounded,
            "verdict": self.verdict,
            "expect": self.expect,
            "ok": self.ok,
            "note": self.note,
            "explanation": self.explanation or (self.error if self.verdict == "error" else ""),
            "error": self.error,
            "where": self.where,
            "command": self.command,
            "args": list(self.args),
            "path": self.path,
            "alternatives": [a.to_dict() for a in self.alternatives],
        }


@dataclass(frozen=True)
class ReproduceSummary:
    """Counts of the verdicts; ``unexpected`` counts numbers that did not behave as expected."""

    total: int
    reproduced: int
    differs: int
    differs_expected: int
    errors: int
    unexpected: int

    @classmethod
    def of(cls, checks: Sequence[NumberCheck]) -> ReproduceSummary:
        count = lambda v: sum(1 for c in checks if c.verdict == v)  # noqa: E731
        return cls(
            total=len(checks),
            reproduced=count("reproduced"),
            differs=count("differs"),
            differs_expected=count("differs_expected"),
            errors=count("error"),
            unexpected=sum(1 for c in checks if not c.ok),
        )

    @property
    def ok(self) -> bool:
        return self.unexpected == 0

    @property
    def line(self) -> str:
        """``69 of 72 reproduce; 3 differ as expected`` (with differences and errors when any)."""
        verb = "reproduces" if self.reproduced == 1 else "reproduce"
        parts = [f"{self.reproduced} of {self.total} {verb}"]
        if self.differs_expected:
            parts.append(
                f"{self.differs_expected} differ{'s' if self.differs_expected == 1 else ''} as expected"
            )
        if self.differs:
            parts.append(f"{self.differs} differ{'s' if self.differs == 1 else ''} unexpectedly")
        if self.errors:
            parts.append(f"{self.errors} error{'s' if self.errors != 1 else ''}")
        surprising = self.unexpected - self.differs - self.errors
        if surprising:
            parts.append(
                f"{surprising} reproduce{'s' if surprising == 1 else ''} but {'was' if surprising == 1 else 'were'} expected to differ"
            )
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "reproduced": self.reproduced,
            "differs": self.differs,
            "differs_expected": self.differs_expected,
            "errors": self.errors,
            "unexpected": self.unexpected,
            "ok": self.ok,
            "line": self.line,
        }


@dataclass(frozen=True)
class ReproduceResult:
    """Every printed number of a published-numbers file checked against the data."""

    source: str
    paper: dict[str, Any]
    data: str
    numbers: tuple[NumberCheck, ...]
    summary: ReproduceSummary
    runs: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "published": self.source,
            "paper": self.paper,
            "data": self.data,
            "numbers": [n.to_dict() for n in self.numbers],
            "summary": self.summary.to_dict(),
            "runs": self.runs,
        }
