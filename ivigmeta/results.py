"""Frozen result objects of every analysis, each with ``to_dict()`` at full precision.

``theta``/``se`` are on the analysis scale (log for RR and OR); ``estimate``/``ci_low``/``ci_high``
on the reported scale; ``i2`` and weights in percent. ``None`` means "not applicable" (for example
heterogeneity with a single study) and becomes JSON ``null``. Nothing here rounds or prints.

The JSON of every class is declared once, in its ``__json__`` layout, and written by the one
serializer :func:`ivigmeta.serialize.to_json_dict` (``to_dict()`` calls it); derived values the
JSON or the tables show (back-transformed estimates, the tau interval, totals) are properties
here, so a change to the output touches this file alone. docs/json.md documents the keys.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar

from ivigmeta.core.measures import LOG_SCALE, reported_scalar
from ivigmeta.io.studies import Study
from ivigmeta.serialize import Flatten, Group, Key, Layout, keys_of, null_keys, to_json_dict

if TYPE_CHECKING:
    from ivigmeta.core.glmm import GlmmRegressionResult, GlmmResult

#: measures analysed on the log scale and reported as ratios (core.measures.LOG_SCALE)
RATIO_MEASURES = LOG_SCALE


def back_transform(theta: float | None, measure: str) -> float | None:
    """Analysis scale -> reported scale: exp for log measures, the proportion for PLO, PAS and
    PFT (``core.measures.to_reported``), identity otherwise."""
    if theta is None:
        return None
    return reported_scalar(theta, str(measure), getattr(measure, "n_harmonic", None))


@dataclass(frozen=True)
class Exclusion:
    """A study left out of an analysis, and why."""

    study: str
    reason: str
    row: int | None = None
    #: the study row itself, when the table gave one (forest plots show it as "Not estimable")
    source: Study | None = field(default=None, compare=False, repr=False)

    __json__: ClassVar[Layout] = ("study", "reason", "row")

    @property
    def double_zero(self) -> bool:
        """No events (or only events) in both arms: RevMan's and meta's "Not estimable" row."""
        return "double-zero" in self.reason or "either arm" in self.reason

    def to_dict(self) -> dict[str, Any]:
        return to_json_dict(self)


@dataclass(frozen=True)
class FitOptions:
    """How a model is fitted; every method that refits (leave-one-out, subgroups) reuses them."""

    tau2_method: str = "DL"
    ci_method: str = "z"
    level: float = 0.95
    common_method: str = "IV"
    #: a GLMM of metafor's rma.glmm instead of the normal-normal model (UM.FS, UM.RS, CM.EL,
    #: CM.AL), and whether its double-zero studies are kept (metafor's drop00 = FALSE)
    glmm: str | None = None
    keep_double_zero: bool = False
    #: whose conventions: "metafor" (the default) or "revman" (RevMan 5's methods:
    #: :mod:`ivigmeta.core.revman`; the default for RevMan files)
    software: str = "metafor"
    #: prediction interval: "z" (metafor's predict(); t on k - 1 df under --ci hk / adhoc) or
    #: "t" (t on k - 2 df, Higgins et al. 2009)
    pi_method: str = "z"
    #: the common-effect model's interval: "z" or "hk" (Hartung-Knapp, t on k - 1 df)
    common_ci: str = "z"
    #: the column holding the GENQ estimator's weights (--tau2-weights), or None
    tau2_weights: str | None = None
    #: the column of user weights for the pooled estimates (--weights; metafor's weights=), or
    #: None for inverse-variance weights
    weights: str | None = None
    #: Mantel-Haenszel's CMH test (OR) and MH test (IRR) with the continuity correction 1/2
    #: (metafor's ``correct = TRUE``, the default; --no-mh-correct)
    mh_correct: bool = True
    #: every study weighs the same (--unweighted; metafor's weighted = FALSE): the pooled
    #: estimates by unweighted least squares, their variances by the sandwich
    unweighted: bool = False

    @property
    def user_weighted(self) -> bool:
        """True when the pooled estimates are not inverse-variance weighted (--weights or
        --unweighted)."""
        return self.weights is not None or self.unweighted

    @property
    def weights_option(self) -> str:
        """The option that set the weights: "--weights" or "--unweighted"."""
        return "--unweighted" if self.unweighted else "--weights"

    @property
    def level_percent(self) -> float:
        """The confidence level in percent (95.0)."""
        return self.level * 100


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

            raise ModelError(counts_needed(method, [(s.study, s.row) for s in rows]))

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

    __json__: ClassVar[Layout] = (
        "theta",
        "se",
        "statistic",
        "estimate",
        "ci_low",
        "ci_high",
        "p_value",
    )

    def to_dict(self) -> dict[str, Any]:
        return to_json_dict(self)


@dataclass(frozen=True)
class ChiSquareTest:
    """A chi-square test: statistic, degrees of freedom and upper-tail p-value (``None`` where
    metafor reports NA: no events, or fewer than 2 informative tables)."""

    statistic: float | None
    df: int
    p_value: float | None

    def to_dict(self) -> dict[str, Any]:
        return to_json_dict(self)


#: CommonFit's Mantel-Haenszel odds-ratio statistics, in JSON order (metafor's MH, CO, BD, TA)
MH_OR_TESTS = ("cmh", "cochran", "breslow_day", "tarone")


@dataclass(frozen=True)
class FitStatistics:
    """Log-likelihood, deviance, AIC, BIC and AICc of a normal-normal model under ML and REML
    (metafor's ``fitstats()``); ``reported`` is the set metafor prints for the fit (REML for a
    REML fit, ML otherwise)."""

    ml: tuple[float, ...]
    reml: tuple[float, ...]
    reported: str = "ML"

    NAMES: ClassVar[tuple[str, ...]] = ("loglik", "deviance", "aic", "bic", "aicc")

    @property
    def ml_dict(self) -> dict[str, float]:
        return dict(zip(self.NAMES, self.ml))

    @property
    def reml_dict(self) -> dict[str, float]:
        return dict(zip(self.NAMES, self.reml))

    @property
    def values(self) -> dict[str, float]:
        """The reported set."""
        return self.reml_dict if self.reported == "REML" else self.ml_dict

    __json__: ClassVar[Layout] = (
        "reported",
        Key("ml", "ml_dict"),
        Key("reml", "reml_dict"),
    )

    def to_dict(self) -> dict[str, Any]:
        return to_json_dict(self)


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
    # Mantel-Haenszel odds ratios (metafor's rma.mh fields MH, CO, BD, TA): the
    # Cochran-Mantel-Haenszel test of OR = 1 with the continuity correction, Cochran's version,
    # and the Breslow-Day and Tarone tests of equal odds ratios; None for other fits.
    cmh: ChiSquareTest | None = None
    cochran: ChiSquareTest | None = None
    breslow_day: ChiSquareTest | None = None
    tarone: ChiSquareTest | None = None
    #: whether ``cmh`` (and the rate ratio's MH test) has the continuity correction (metafor's
    #: ``correct``; --no-mh-correct); None for fits without these tests
    cmh_correct: bool | None = None
    #: the interval: "z" (Wald) or "hk" (Hartung-Knapp, t on ``df`` = k - 1)
    ci_method: str = "z"
    df: int | None = None
    #: log-likelihood and information criteria (for MH and Peto fits, of the per-study effects
    #: about the pooled one, as metafor's rma.mh / rma.peto; None for a GLMM)
    fit_statistics: FitStatistics | None = None

    @property
    def has_own_heterogeneity(self) -> bool:
        """True for Mantel-Haenszel and Peto fits, whose heterogeneity test is in their JSON."""
        return self.method in ("MH", "PETO")

    __json__: ClassVar[Layout] = (
        "method",
        "ci_method",
        *Estimate.__json__,
        "df",
        "fit_statistics",
        *(
            Key(name, when="has_own_heterogeneity")
            for name in ("q", "q_df", "q_p_value", "i2", "h2", "k_yi")
        ),
        *(Key(name, omit_none=True) for name in MH_OR_TESTS),
        Key("cmh_correct", omit_none=True),
    )


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
    #: standard error of tau² (metafor's se.tau2), None where metafor gives none
    tau2_se: float | None = None
    pi_method: str = "z"
    #: log-likelihood and information criteria at the fitted tau² (metafor's fitstats())
    fit_statistics: FitStatistics | None = None

    @property
    def pi_low(self) -> float | None:
        return back_transform(self.pi_low_theta, self.measure)

    @property
    def pi_high(self) -> float | None:
        return back_transform(self.pi_high_theta, self.measure)

    __json__: ClassVar[Layout] = (
        "tau2_method",
        "ci_method",
        *Estimate.__json__,
        "tau2",
        "tau2_se",
        "df",
        "pi_low",
        "pi_high",
        "pi_method",
        "converged",
        "tau2_algorithm",
        "fit_statistics",
    )


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
    #: the heterogeneity of a GLMM (Q is its Wald-type test): no Q-profile interval, but every
    #: key of one, as null
    glmm: bool = False
    #: standard error of tau² (metafor's se.tau2), None where metafor gives none
    tau2_se: float | None = None

    __json__: ClassVar[Layout] = (
        "q",
        "df",
        "p_value",
        "i2",
        "h2",
        "tau2",
        "tau2_se",
        "tau",
        "i2_q",
        "tau2_method",
        # Without the Q-profile intervals the interval keys are still there, as null.
        Flatten("ci", when_none=dict.fromkeys(("tau2_ci", "tau_ci", "i2_ci", "h2_ci"))),
        *(
            Key(name, "ci", when="glmm")
            for name in ("ci_level", "ci_method", "ci_lb_sign", "ci_ub_sign", "ci_null", "ci_type")
        ),
    )

    def to_dict(self) -> dict[str, Any]:
        return to_json_dict(self)


@dataclass(frozen=True)
class StudyRow:
    """One analysed study as ``pool`` reports it: its data, effect size, estimate and weights."""

    study: Study
    yi: float
    vi: float
    cc_added: float
    estimate: Estimate
    weight_common: float | None = None
    weight_random: float | None = None

    __json__: ClassVar[Layout] = (
        *keys_of(
            "study",
            "study",
            "year",
            "row",
            "treat_events",
            "treat_total",
            "control_events",
            "control_total",
        ),
        # a row of means, rates or proportions: its own numbers (treat_mean, treat_sd, ...)
        Flatten("study.outcome"),
        "yi",
        "vi",
        "cc_added",
        Key("source", "study.effect_source"),
        Flatten("estimate"),
        "weight_common",
        "weight_random",
    )

    def to_dict(self) -> dict[str, Any]:
        return to_json_dict(self)


@dataclass(frozen=True)
class CountTotals:
    """Participants and events summed over the studies of an analysis (every one with counts)."""

    n: int
    treat_events: int
    treat_total: int
    control_events: int
    control_total: int


@dataclass(frozen=True)
class GlmmModel:
    """The GLMM behind a fit (``pool --glmm``): :class:`ivigmeta.core.glmm.GlmmResult` with the
    labels of the studies whose likelihood does not depend on the effect (double zeros under
    UM.FS, CM.EL, CM.AL)."""

    fit: GlmmResult
    uninformative: tuple[str, ...] = ()
    double_zero: str = "excluded"

    @property
    def kind(self) -> str:
        return "glmm"

    @property
    def k_informative(self) -> int:
        return sum(self.fit.contributes)

    @property
    def method(self) -> str:
        """Maximum likelihood, the one method of the GLMMs here (metafor's method = "ML")."""
        return "ML"

    __json__: ClassVar[Layout] = (
        Key("type", "kind"),
        Key("glmm", "fit.model"),
        Key("title", "fit.title"),
        Key("measure", "fit.measure"),
        "method",
        Key("k", "fit.k"),
        "k_informative",
        "uninformative",
        "double_zero",
        *keys_of(
            "fit",
            "theta",
            "se",
            "tau2",
            "se_tau2",
            "sigma2",
            "loglik",
            "loglik_fe",
            "loglik_saturated",
            "qe_df",
            "qe_wald",
            "qe_wald_p",
            "qe_lrt",
            "qe_lrt_p",
            "boundary",
        ),
        Key("common_theta", "fit.common.theta"),
        Key("common_se", "fit.common.se"),
        Key("common_loglik", "fit.common.loglik"),
        Key("common_sigma2", "fit.common.sigma2"),
        *keys_of(
            "fit.convergence",
            "converged",
            "iterations",
            "algorithm",
            "integration",
            "nodes",
            "max_gradient",
        ),
        Key("notes", "fit.notes"),
    )

    def to_dict(self) -> dict[str, Any]:
        return to_json_dict(self)


@dataclass(frozen=True)
class GlmmRegressionModel:
    """The GLMM behind a meta-regression (``metareg --glmm``):
    :class:`ivigmeta.core.glmm.GlmmRegressionResult` with the labels of the studies whose
    likelihood does not depend on the coefficients (double zeros under UM.FS, CM.EL, CM.AL)."""

    fit: GlmmRegressionResult
    uninformative: tuple[str, ...] = ()
    double_zero: str = "excluded"

    @property
    def kind(self) -> str:
        return "glmm"

    @property
    def k_informative(self) -> int:
        return sum(self.fit.contributes)

    @property
    def method(self) -> str:
        """Maximum likelihood, the one method of the GLMMs here (metafor's method = "ML")."""
        return "ML"

    @property
    def common_coefficients(self) -> list[dict[str, float | str]]:
        """The fixed-effects counterpart's coefficients (tau² = 0; metafor's method = "EE")."""
        fit = self.fit
        return [
            {"name": n, "estimate": b, "se": se}
            for n, b, se in zip(fit.names, fit.common_beta, fit.common_se)
        ]

    __json__: ClassVar[Layout] = (
        Key("type", "kind"),
        Key("glmm", "fit.model"),
        Key("title", "fit.title"),
        "method",
        Key("test", "fit.test"),
        Key("k", "fit.k"),
        "k_informative",
        "uninformative",
        "double_zero",
        *keys_of(
            "fit",
            "sigma2",
            "loglik",
            "loglik_fe",
            "loglik_saturated",
            "qe_df",
            "qe_wald",
            "qe_wald_p",
            "qe_lrt",
            "qe_lrt_p",
            "boundary",
        ),
        Key("parms", "fit.parameters"),
        Key("k_eff", "fit.observations"),
        "common_coefficients",
        Key("common_loglik", "fit.common_loglik"),
        Key("common_sigma2", "fit.common_sigma2"),
        *keys_of(
            "fit.convergence",
            "converged",
            "iterations",
            "algorithm",
            "integration",
            "nodes",
            "max_gradient",
        ),
        Key("notes", "fit.notes"),
    )

    def to_dict(self) -> dict[str, Any]:
        return to_json_dict(self)


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
    glmm: GlmmModel | None = None
    #: cluster-robust inference (``pool --cluster``), None when not asked
    robust: RobustPooled | None = None
    #: the permutation test of the random-effects estimate (``pool --permutations``)
    permutation: PermutationTest | None = None
    #: the integral back-transform of the random-effects estimate (``pool --transf-int``)
    transf_int: IntegralMean | None = None

    @property
    def k(self) -> int:
        return self.effects.k

    @property
    def measure(self) -> str:
        return self.effects.measure

    @property
    def pooled(self) -> bool:
        return self.random is not None

    @property
    def fit(self) -> Estimate:
        """The random-effects fit, or with a single study that study's own estimate."""
        return self.random or self.study_estimates[0]

    @property
    def common_or_single(self) -> Estimate:
        """The common-effect fit, or with a single study that study's own estimate."""
        return self.common or self.study_estimates[0]

    def _common_het(self) -> tuple[float | None, float | None, float | None, float | None]:
        """(Q, p, I², H²) of the common-effect model as metafor reports them for it: the MH and
        Peto fits' own test, else Cochran's Q with I² = max(0, (Q - df) / Q), H² = Q / df (an
        ``rma(method = "FE")`` fit); ``None`` with a single study."""
        c, het = self.common, self.heterogeneity
        if c is None:
            return None, None, None, None
        if c.has_own_heterogeneity:
            return c.q, c.q_p_value, c.i2, c.h2
        if het is None or het.q is None:
            return None, None, None, None
        q, df = het.q, het.df
        i2 = max(0.0, 100.0 * (q - df) / q) if q > 0 else 0.0
        return q, het.p_value, i2, (q / df if df > 0 else None)

    @property
    def common_q(self) -> float | None:
        return self._common_het()[0]

    @property
    def common_q_p_value(self) -> float | None:
        return self._common_het()[1]

    @property
    def common_i2(self) -> float | None:
        return self._common_het()[2]

    @property
    def common_h2(self) -> float | None:
        return self._common_het()[3]

    @property
    def study_rows(self) -> tuple[StudyRow, ...]:
        """Every analysed study with its effect size, estimate and weights (``None`` if k = 1)."""
        es, common, random = self.effects, self.common, self.random
        return tuple(
            StudyRow(
                study=study,
                yi=es.yi[i],
                vi=es.vi[i],
                cc_added=es.cc_added[i],
                estimate=est,
                weight_common=common.weights[i] if common and common.weights else None,
                weight_random=random.weights[i] if random and random.weights else None,
            )
            for i, (study, est) in enumerate(zip(es.studies, self.study_estimates))
        )

    @property
    def totals(self) -> CountTotals | None:
        """Participants and events over all studies; ``None`` unless every study gives counts."""
        studies = self.effects.studies
        if not all(s.has_counts for s in studies):
            return None
        cells = [s.counts for s in studies]
        te, tt, ce, ct = (sum(c[j] for c in cells) for j in range(4))
        return CountTotals(
            n=tt + ct, treat_events=te, treat_total=tt, control_events=ce, control_total=ct
        )

    __json__: ClassVar[Layout] = (
        "measure",
        "k",
        Key("level", "options.level"),
        Key("studies", "study_rows"),
        "common",
        "random",
        "heterogeneity",
        Key("model", "glmm", omit_none=True),
        Key("software", "software_used", omit_none=True),
        "robust",
        "permutation",
        Key("transf_int", omit_none=True),
        Key("excluded", "effects.excluded"),
    )

    @property
    def software_used(self) -> str | None:
        """ "revman" when RevMan 5's methods were used (``--software revman``), else None."""
        return None if self.options.software == "metafor" else self.options.software

    # ``ivigmeta heterogeneity``: the heterogeneity object at the top level. With a single study
    # it has df 0 and no tau2_method (the JSON this command has always written).
    HETEROGENEITY_JSON: ClassVar[Layout] = (
        Flatten(
            "heterogeneity",
            when_none={
                "q": None,
                "df": 0,
                **dict.fromkeys(("p_value", "i2", "h2", "tau2", "tau", "i2_q")),
                **dict.fromkeys(("tau2_ci", "tau_ci", "i2_ci", "h2_ci")),
            },
        ),
        "k",
        "measure",
        Key("excluded", "effects.excluded"),
    )

    def to_dict(self) -> dict[str, Any]:
        return to_json_dict(self)

    def heterogeneity_dict(self) -> dict[str, Any]:
        """The JSON of ``ivigmeta heterogeneity``: :attr:`heterogeneity` with k, measure, excluded."""
        return to_json_dict(self, self.HETEROGENEITY_JSON)


# A MetaAnalysis as one row of a cumulative analysis: the random-effects estimate and the
# heterogeneity (a single study: its own estimate, heterogeneity null).
POOLED_JSON: Layout = (
    "k",
    *keys_of("fit", "theta", "se", "statistic", "estimate", "ci_low", "ci_high", "p_value"),
    Key("q", "heterogeneity.q"),
    Key("q_p_value", "heterogeneity.p_value"),
    *keys_of("heterogeneity", "i2", "h2", "tau2"),
)

#: ... and of its common-effect fit (``--model common``): the estimate of the --common method
#: (IV, MH or PETO) with that fit's heterogeneity as metafor's leave1out / cumul report it for
#: rma(method = "FE"), rma.mh and rma.peto objects; no tau².
COMMON_POOLED_JSON: Layout = (
    "k",
    *keys_of(
        "common_or_single", "theta", "se", "statistic", "estimate", "ci_low", "ci_high", "p_value"
    ),
    Key("q", "common_q"),
    Key("q_p_value", "common_q_p_value"),
    Key("i2", "common_i2"),
    Key("h2", "common_h2"),
)


@dataclass(frozen=True)
class LeaveOneOutRow:
    """The random-effects fit with one study omitted."""

    omitted: Study
    analysis: MetaAnalysis
    #: which refitted model the row reports: ``random`` or ``common`` (the --common method)
    model: str = "random"

    @property
    def common_model(self) -> bool:
        return self.model == "common"

    @property
    def shown(self) -> Estimate:
        """The reported refit: the random-effects (or common-effect) fit, or with one study left
        that study's own estimate."""
        return self.analysis.common_or_single if self.common_model else self.analysis.fit

    # With one study left nothing is pooled: the row is that study's estimate, heterogeneity null
    # (and no h2). ``tau2`` keeps the random fit's place but is the heterogeneity's value. A
    # common-effect row has the keys of a cumulative step's common fit (COMMON_POOLED_JSON).
    __json__: ClassVar[Layout] = (
        Key("study", "omitted.study"),
        Key("k", "analysis.k"),
        Flatten("analysis", layout=COMMON_POOLED_JSON[1:], when="common_model"),
        Flatten("analysis.fit", unless="common_model"),
        Key("q", "analysis.heterogeneity.q", unless="common_model"),
        Key("q_p_value", "analysis.heterogeneity.p_value", unless="common_model"),
        Key("i2", "analysis.heterogeneity.i2", unless="common_model"),
        Key("h2", "analysis.heterogeneity.h2", when="analysis.pooled", unless="common_model"),
        Key("tau2", "analysis.heterogeneity.tau2", unless="common_model"),
    )

    def to_dict(self) -> dict[str, Any]:
        return to_json_dict(self)


@dataclass(frozen=True)
class LeaveOneOut:
    """Leave-one-out sensitivity analysis of a fitted meta-analysis."""

    full: MetaAnalysis
    rows: tuple[LeaveOneOutRow, ...]
    #: ``random`` (default) or ``common``: which refitted model the rows report
    model: str = "random"

    @property
    def common_model(self) -> bool:
        return self.model == "common"

    @property
    def smallest(self) -> LeaveOneOutRow:
        return min(self.rows, key=lambda row: row.shown.theta)

    @property
    def largest(self) -> LeaveOneOutRow:
        return max(self.rows, key=lambda row: row.shown.theta)

    __json__: ClassVar[Layout] = (
        *keys_of("full", "measure", "k"),
        *keys_of("full.options", "tau2_method", "ci_method"),
        Key("model", when="common_model"),
        Key("common_method", "full.options.common_method", when="common_model"),
        Key("omitted", "rows"),
        Group("range", ("smallest", "largest")),
        Key("excluded", "full.effects.excluded"),
    )

    def to_dict(self) -> dict[str, Any]:
        return to_json_dict(self)


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

    @property
    def i2(self) -> float | None:
        """I² of the test (Higgins & Thompson 2002, as RevMan prints it for subgroup
        differences): 100 max(0, (Q - df) / Q); None for an F test or no test."""
        if self.statistic is None or self.df2 is not None or self.df < 1:
            return None
        q = self.statistic
        return 100.0 * max(0.0, (q - self.df) / q) if q > 0 else 0.0

    __json__: ClassVar[Layout] = (
        "method",
        Key("qm", "statistic"),
        "statistic",
        "df",
        "df2",
        "p_value",
        "i2",
        "tau2",
        "note",
    )

    def to_dict(self) -> dict[str, Any]:
        return to_json_dict(self)


@dataclass(frozen=True)
class SubgroupLevel:
    """The meta-analysis of the studies sharing one label."""

    level: str
    analysis: MetaAnalysis

    # A level with one study: its own estimate, heterogeneity null on df 0.
    __json__: ClassVar[Layout] = (
        "level",
        Key("k", "analysis.k"),
        Key("studies", "analysis.effects.labels"),
        *keys_of("analysis.fit", "theta", "se", "estimate", "ci_low", "ci_high", "p_value"),
        Key("q", "analysis.heterogeneity.q"),
        Key("df", "analysis.heterogeneity.df", default=0),
        Key("q_p_value", "analysis.heterogeneity.p_value"),
        *keys_of("analysis.heterogeneity", "i2", "tau2"),
    )

    def to_dict(self) -> dict[str, Any]:
        return to_json_dict(self)


@dataclass(frozen=True)
class SubgroupResult:
    """Subgroup analysis by one label column."""

    column: str
    levels: tuple[SubgroupLevel, ...]
    test: BetweenTest
    excluded: tuple[Exclusion, ...]

    def to_dict(self) -> dict[str, Any]:
        return to_json_dict(self)


@dataclass(frozen=True)
class SubgroupAnalysis:
    """Subgroup analyses by one or more columns, with the overall fit they came from."""

    full: MetaAnalysis
    by: tuple[SubgroupResult, ...]

    __json__: ClassVar[Layout] = (
        Key("measure", "full.measure"),
        Key("tau2_method", "full.options.tau2_method"),
        "by",
        Key("excluded", "full.effects.excluded"),
    )

    def to_dict(self) -> dict[str, Any]:
        return to_json_dict(self)


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
        return to_json_dict(self)


@dataclass(frozen=True)
class Prediction:
    """The meta-regression's prediction at given moderator values (metafor's
    ``predict(fit, newmods = ...)``), analysis scale: estimate, se, confidence interval and
    prediction interval (the CI for a common-effect model, as metafor)."""

    at: tuple[tuple[str, str], ...]
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    pi_low: float
    pi_high: float
    # estimate, ci_low, ci_high, pi_low, pi_high on the reported scale (RR, not log RR; the
    # analysis-scale values for a measure reported as analysed).
    reported: tuple[float, float, float, float, float] = (math.nan,) * 5
    #: the t df of a cluster-robust prediction (n - p; CR2: its Satterthwaite df); None
    #: for the model-based predictions
    df: float | None = None

    @property
    def reported_dict(self) -> dict[str, float]:
        return dict(zip(("estimate", "ci_low", "ci_high", "pi_low", "pi_high"), self.reported))

    @property
    def label(self) -> str:
        """'ablat=10, alloc=random': the values as given."""
        return ", ".join(f"{col}={value}" for col, value in self.at)

    @property
    def at_dict(self) -> dict[str, str]:
        return dict(self.at)

    __json__: ClassVar[Layout] = (
        "label",
        Key("at", "at_dict"),
        "estimate",
        "se",
        "ci_low",
        "ci_high",
        "pi_low",
        "pi_high",
        Key("reported", "reported_dict"),
        Key("df", omit_none=True),
    )

    def to_dict(self) -> dict[str, Any]:
        return to_json_dict(self)


@dataclass(frozen=True)
class CoefficientTest:
    """A Wald-type test that a subset of a meta-regression's coefficients are all zero
    (metafor's ``anova(fit, btt = ...)``): QM on m df, or F = QM / m on (m, k - p) df under
    hk/adhoc; ``spec`` is the --btt value as given."""

    spec: str
    coefficients: tuple[str, ...]
    statistic: float
    df: int
    df2: int | None
    p_value: float

    __json__: ClassVar[Layout] = ("spec", "coefficients", "statistic", "df", "df2", "p_value")

    def to_dict(self) -> dict[str, Any]:
        return to_json_dict(self)


@dataclass(frozen=True)
class Contrast:
    """A linear combination L b of a meta-regression's coefficients (metafor's ``anova(fit,
    L = ...)``): its estimate, se = sqrt(L Var(b) L'), z (t on ``df`` = k - p under hk/adhoc/t)
    test of L b = 0 and CI; ``spec`` is the --contrast value as given, ``weights`` the
    coefficients' weights in L (the others 0)."""

    spec: str
    weights: tuple[tuple[str, float], ...]
    estimate: float
    se: float
    statistic: float
    p_value: float
    ci_low: float
    ci_high: float
    df: int | None = None

    @property
    def weights_list(self) -> list[dict[str, Any]]:
        return [{"coefficient": name, "weight": w} for name, w in self.weights]

    __json__: ClassVar[Layout] = (
        "spec",
        Key("weights", "weights_list"),
        "estimate",
        "se",
        "statistic",
        "df",
        "p_value",
        "ci_low",
        "ci_high",
    )

    def to_dict(self) -> dict[str, Any]:
        return to_json_dict(self)


@dataclass(frozen=True)
class ModelFit:
    """One side of a likelihood-ratio comparison: parameters, fit criteria (the reported set),
    residual QE and tau²."""

    parms: int
    loglik: float
    aic: float
    bic: float
    aicc: float
    qe: float
    tau2: float

    def to_dict(self) -> dict[str, Any]:
        return to_json_dict(self)


@dataclass(frozen=True)
class ModelComparison:
    """The likelihood-ratio test of a meta-regression against the model without the moderators
    ``dropped`` (metafor's ``anova(full, reduced)``): LRT = 2 (ll_full - ll_reduced) on the
    difference in parameters, with both fits' criteria and the pseudo-R² (the share of the
    reduced model's tau² that the dropped moderators account for; for common-effect models the
    share of its residual variance QE / (k - p), as metafor). ``likelihood`` is "ML" or "REML"; ``note`` says when metafor would warn."""

    dropped: tuple[str, ...]
    likelihood: str
    full: ModelFit
    reduced: ModelFit
    lrt: float
    df: int
    p_value: float
    r2: float | None
    note: str = ""

    __json__: ClassVar[Layout] = (
        "dropped",
        "likelihood",
        "full",
        "reduced",
        "lrt",
        "df",
        "p_value",
        "r2",
        "note",
    )

    def to_dict(self) -> dict[str, Any]:
        return to_json_dict(self)


@dataclass(frozen=True)
class VarianceInflation:
    """The (generalized) variance inflation factor of a set of meta-regression coefficients
    (metafor's ``vif()``; Fox & Monette 1992): ``vif`` and the standardized
    ``sif`` = vif^(1 / (2 m)), m the number of coefficients."""

    name: str
    coefficients: tuple[str, ...]
    m: int
    vif: float
    sif: float

    __json__: ClassVar[Layout] = ("name", "coefficients", "m", "vif", "sif")

    def to_dict(self) -> dict[str, Any]:
        return to_json_dict(self)


@dataclass(frozen=True)
class PermutationTest:
    """A permutation test of a meta-regression (metafor's ``permutest``): the rows of the design
    are permuted (the signs of the effects flipped for an intercept-only model) and the model
    refitted; each p-value is the share of permutations whose |statistic| is at least the
    observed one (QM: at least the observed QM). ``exact``: every distinct permutation was used
    (``iterations`` of them); otherwise ``iterations`` random ones from ``seed``, the first being
    the observed data. ``failed`` refits (an estimator not converging) are left out."""

    iterations: int
    exact: bool
    seed: int | None
    coefficients: tuple[str, ...]
    p_values: tuple[float, ...]
    qm_p_value: float | None
    failed: int = 0

    @property
    def by_coefficient(self) -> list[dict[str, Any]]:
        return [{"name": n, "p_value": p} for n, p in zip(self.coefficients, self.p_values)]

    __json__: ClassVar[Layout] = (
        "iterations",
        "exact",
        "seed",
        Key("coefficients", "by_coefficient"),
        "qm_p_value",
        "failed",
    )

    def to_dict(self) -> dict[str, Any]:
        return to_json_dict(self)


@dataclass(frozen=True)
class RobustInference:
    """Cluster-robust inference for the fixed effects of one model (metafor's
    ``robust(fit, cluster, adjust)`` on an rma.uni fit, its default sandwich): the model's
    beta and tau², with Var(beta) the sandwich (X' W X)^-1 [sum_c X_c' W_c e_c e_c' W_c X_c]
    (X' W X)^-1 (times n / (n - p) when ``adjust``: "CR1", else "CR0"), t tests and intervals on
    n - p df (n clusters), and F = QM / m on (m, n - p) df over the non-intercept coefficients
    (the intercept when it is the only one). ``coefficients`` and ``vcov`` are on the analysis
    scale; for an intercept-only model the pooled estimate is also on the reported scale, with
    the prediction interval of metafor's ``predict()`` of the robust fit (robust SE, t on n - p
    df; none for a common-effect model).

    With ``cr2`` (metafor's ``robust(fit, cluster, clubSandwich = TRUE)``): Var(beta) is
    clubSandwich's CR2 sandwich, each coefficient's t test and interval on its Satterthwaite df
    (``coefficient_df``), the moderators' F the HTZ test on (m, ``qm_df_denom``) df (t² on
    (1, df) for an intercept-only model) and a prediction's t on its own Satterthwaite df;
    ``adjust`` is then False (no n / (n - p) factor)."""

    cluster: str
    adjust: bool
    clusters: int
    k: int
    #: each cluster's label and number of studies, clusters in order of first appearance
    cluster_sizes: tuple[tuple[str, int], ...]
    #: "random" (the model's tau²) or "common" (tau² = 0, metafor's method = "FE")
    model: str
    tau2_method: str
    tau2: float
    level: float
    measure: str
    coefficients: tuple[Coefficient, ...]
    vcov: tuple[tuple[float, ...], ...]
    qm: float | None
    qm_df: int
    qm_p_value: float | None
    pi_low_theta: float | None = None
    pi_high_theta: float | None = None
    #: a meta-regression's --predict rows with the robust Var(beta) and t on n - p df
    predictions: tuple[Prediction, ...] = ()
    #: the CR2 sandwich with Satterthwaite df and the HTZ test (clubSandwich)
    cr2: bool = False
    #: CR2: each coefficient's Satterthwaite df (empty otherwise)
    coefficient_df: tuple[float, ...] = ()
    #: CR2: the HTZ test's denominator df (None otherwise)
    qm_df_denom: float | None = None

    @property
    def df(self) -> int:
        """n - p: the clusters less the coefficients."""
        return self.clusters - len(self.coefficients)

    @property
    def test_dfs(self) -> tuple[float, ...]:
        """The t df of each coefficient: n - p, or under CR2 its Satterthwaite df."""
        if self.cr2:
            return self.coefficient_df
        return (self.df,) * len(self.coefficients)

    @property
    def test_df(self) -> float:
        """The t df of the first coefficient (the pooled estimate of an intercept-only model)."""
        return self.test_dfs[0]

    @property
    def qm_df2(self) -> float:
        """The F test's denominator df: n - p, or the HTZ test's under CR2."""
        if self.cr2 and self.qm_df_denom is not None:
            return self.qm_df_denom
        return self.df

    @property
    def vcov_type(self) -> str:
        """metafor's vbest: "CR1" with the small-sample factor n / (n - p), "CR0" without,
        "CR2" for clubSandwich's bias-reduced sandwich."""
        if self.cr2:
            return "CR2"
        return "CR1" if self.adjust else "CR0"

    @property
    def coefficient_rows(self) -> tuple[dict[str, Any], ...]:
        """Each coefficient's JSON object with its t df."""
        return tuple(c.to_dict() | {"df": df} for c, df in zip(self.coefficients, self.test_dfs))

    @property
    def intercept_only(self) -> bool:
        return len(self.coefficients) == 1

    @property
    def cluster_size_dict(self) -> dict[str, int]:
        return dict(self.cluster_sizes)

    @property
    def theta(self) -> float:
        return self.coefficients[0].estimate

    @property
    def se(self) -> float:
        return self.coefficients[0].se

    @property
    def statistic(self) -> float:
        return self.coefficients[0].statistic

    @property
    def p_value(self) -> float:
        return self.coefficients[0].p_value

    @property
    def ci_low_theta(self) -> float:
        return self.coefficients[0].ci_low

    @property
    def ci_high_theta(self) -> float:
        return self.coefficients[0].ci_high

    @property
    def estimate(self) -> float | None:
        """The intercept on the reported scale (exp for ratio measures)."""
        return back_transform(self.theta, self.measure)

    @property
    def ci_low(self) -> float | None:
        return back_transform(self.ci_low_theta, self.measure)

    @property
    def ci_high(self) -> float | None:
        return back_transform(self.ci_high_theta, self.measure)

    @property
    def pi_low(self) -> float | None:
        return back_transform(self.pi_low_theta, self.measure)

    @property
    def pi_high(self) -> float | None:
        return back_transform(self.pi_high_theta, self.measure)

    #: what the cluster-robust fits share (the top of pool's ``robust`` object)
    CLUSTER_JSON: ClassVar[Layout] = (
        "cluster",
        "adjust",
        "vcov_type",
        "clusters",
        Key("cluster_sizes", "cluster_size_dict"),
        "k",
        "df",
    )
    #: one pooled model (intercept only) inside pool's ``robust`` object
    POOLED_JSON: ClassVar[Layout] = (
        "model",
        "tau2_method",
        "tau2",
        "theta",
        "se",
        "statistic",
        Key("df", "test_df"),
        "p_value",
        "estimate",
        "ci_low",
        "ci_high",
        "pi_low",
        "pi_high",
    )
    __json__: ClassVar[Layout] = (
        *CLUSTER_JSON,
        "model",
        "tau2_method",
        "tau2",
        Key("coefficients", "coefficient_rows"),
        "vcov",
        "predictions",
        "qm",
        "qm_df",
        "qm_df2",
        "qm_p_value",
    )

    def to_dict(self) -> dict[str, Any]:
        return to_json_dict(self)


@dataclass(frozen=True)
class RobustPooled:
    """Cluster-robust inference for ``pool``'s two models: the random-effects model (with its
    tau²) and the common-effect inverse-variance model (tau² = 0; ``None`` for a Mantel-Haenszel
    or Peto common effect, which metafor's robust() does not take: ``common_note`` says so)."""

    random: RobustInference
    common: RobustInference | None
    common_note: str | None = None

    @property
    def cluster(self) -> str:
        return self.random.cluster

    @property
    def common_dict(self) -> dict[str, Any] | None:
        if self.common is None:
            return None
        return to_json_dict(self.common, RobustInference.POOLED_JSON)

    __json__: ClassVar[Layout] = (
        Flatten("random", layout=RobustInference.CLUSTER_JSON),
        Key("random", layout=RobustInference.POOLED_JSON),
        Key("common", "common_dict"),
        Key("common_note", omit_none=True),
    )

    def to_dict(self) -> dict[str, Any]:
        return to_json_dict(self)


@dataclass(frozen=True)
class Bubble:
    """What the bubble plot of a meta-regression draws (metafor's ``regplot``): each study's
    moderator value, effect and weight, and the regression line with its confidence band over
    the moderator's range (the other moderators held at their means, as regplot does)."""

    measure: str
    moderator: str
    x: tuple[float, ...]
    y: tuple[float, ...]
    weights: tuple[float, ...]
    labels: tuple[str, ...]
    grid: tuple[float, ...]
    line: tuple[float, ...]
    ci_low: tuple[float, ...]
    ci_high: tuple[float, ...]
    pi_low: tuple[float, ...]
    pi_high: tuple[float, ...]
    level: float
    model: str
    tau2_method: str
    held: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return to_json_dict(self)


@dataclass(frozen=True)
class ScalePrediction:
    """The scale model's prediction at given scale-moderator values (metafor's
    ``predict(fit, newscale = ...)``): the linear predictor z' alpha with its SE and CI, and
    the tau² it implies (``transf = exp`` under the log link; under the identity link the
    predictor itself, with values below 0 set to 0 as metafor does)."""

    at: tuple[tuple[str, str], ...]
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    tau2: float
    tau2_ci_low: float
    tau2_ci_high: float

    @property
    def label(self) -> str:
        """'grade=3, meta=1': the values as given."""
        return ", ".join(f"{col}={value}" for col, value in self.at)

    @property
    def at_dict(self) -> dict[str, str]:
        return dict(self.at)

    __json__: ClassVar[Layout] = (
        "label",
        Key("at", "at_dict"),
        "estimate",
        "se",
        "ci_low",
        "ci_high",
        "tau2",
        "tau2_ci_low",
        "tau2_ci_high",
    )

    def to_dict(self) -> dict[str, Any]:
        return to_json_dict(self)


@dataclass(frozen=True)
class ProfileInterval:
    """The profile-likelihood interval of one scale coefficient (metafor's
    ``confint(fit, alpha = j)``); a bound is NaN where the profile never drops far enough."""

    name: str
    estimate: float
    ci_low: float
    ci_high: float

    __json__: ClassVar[Layout] = ("name", "estimate", "ci_low", "ci_high")

    def to_dict(self) -> dict[str, Any]:
        return to_json_dict(self)


@dataclass(frozen=True)
class ScaleModel:
    """The scale part of a location-scale meta-regression (metafor's ``rma(..., scale = ~ Z,
    link = ...)``): log tau²_i = z_i' alpha (``link = "log"``) or tau²_i = z_i' alpha
    (``"identity"``), with Wald z tests of alpha from the Hessian of the (RE)ML log-likelihood,
    QS = the Wald test that the scale coefficients beyond the intercept are zero (None with an
    intercept-only scale model), and each study's fitted tau²_i."""

    link: str
    coefficients: tuple[Coefficient, ...]
    vcov: tuple[tuple[float, ...], ...]
    qs: float | None
    qs_df: int
    qs_p_value: float | None
    tau2: tuple[float, ...]
    references: tuple[tuple[str, str], ...] = ()
    # --att: Wald tests of subsets of the scale coefficients (metafor's anova(fit, att = ...))
    coefficient_tests: tuple[CoefficientTest, ...] = ()
    # --predict-scale
    predictions: tuple[ScalePrediction, ...] = ()
    # --scale-profile: profile-likelihood intervals of every scale coefficient
    profile: tuple[ProfileInterval, ...] = ()
    # --scale-lrt: the likelihood-ratio test against the same location model with scale ~ 1
    comparison: ModelComparison | None = None
    # variance inflation of the scale coefficients (metafor's vif() of the scale model)
    vif: tuple[VarianceInflation, ...] = ()
    # said when some fitted tau²_i is (about) 0: a boundary optimum ("" otherwise)
    note: str = ""
    # The scale moderators' design and coding (not in the JSON): rows of Z, and each column's
    # (column, "continuous" or "categorical", levels with the reference first).
    design: tuple[tuple[float, ...], ...] = ()
    terms: tuple[tuple[str, str, tuple[str, ...]], ...] = ()

    @property
    def tau2_min(self) -> float:
        return min(self.tau2)

    @property
    def tau2_max(self) -> float:
        return max(self.tau2)

    @property
    def reference_levels(self) -> dict[str, str]:
        return dict(self.references)

    __json__: ClassVar[Layout] = (
        "link",
        Key("references", "reference_levels"),
        "coefficients",
        "vcov",
        "qs",
        "qs_df",
        "qs_p_value",
        "tau2_min",
        "tau2_max",
        "tau2",
        "coefficient_tests",
        "predictions",
        "profile",
        Key("lrt", "comparison"),
        "vif",
        "note",
    )

    def to_dict(self) -> dict[str, Any]:
        return to_json_dict(self)


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
    # "random" (mixed-effects) or "common" (fixed-effects meta-regression, tau² = 0, metafor's
    # method = "FE"; tau2_method is then "FE").
    model: str = "random"
    # Var(beta), rows and columns in the order of ``coefficients``.
    vcov: tuple[tuple[float, ...], ...] = ()
    # The data the model was fitted to, for predictions and the bubble plot (not in the JSON):
    # the studies' effects, variances, design rows and labels, and each moderator's coding
    # (column, "continuous" or "categorical", levels with the reference first).
    yi: tuple[float, ...] = ()
    vi: tuple[float, ...] = ()
    design: tuple[tuple[float, ...], ...] = ()
    study_labels: tuple[str, ...] = ()
    terms: tuple[tuple[str, str, tuple[str, ...]], ...] = ()
    predictions: tuple[Prediction, ...] = ()
    permutation: PermutationTest | None = None
    fit_statistics: FitStatistics | None = None
    # The interval for the residual tau² (and I², H²) by --tau2-ci (Q-profile by default);
    # None for a common-effect model.
    tau2_interval: HeterogeneityCI | None = None
    tau2_se: float | None = None
    # --btt: Wald tests of subsets of the coefficients
    coefficient_tests: tuple[CoefficientTest, ...] = ()
    # --contrast: linear combinations of the coefficients, and with more than one their joint
    # Wald test (metafor's anova(fit, L = ...))
    contrasts: tuple[Contrast, ...] = ()
    contrast_test: CoefficientTest | None = None
    # --lrt: the likelihood-ratio test against the model without some moderators
    comparison: ModelComparison | None = None
    # variance inflation: per non-intercept coefficient (metafor's vif() default), and per
    # moderator column (a categorical moderator's indicators together: generalized VIF)
    vif: tuple[VarianceInflation, ...] = ()
    gvif: tuple[VarianceInflation, ...] = ()
    #: cluster-robust inference (``--cluster``), None when not asked
    robust: RobustInference | None = None
    #: the scale model of a location-scale meta-regression (``--scale``); ``tau2`` is then NaN
    #: (each study has its own, ``scale.tau2``) and ``i2``, ``h2``, ``r2`` are None
    scale: ScaleModel | None = None
    #: the GLMM fitted instead of the normal-normal model (``metareg --glmm``), else None
    glmm: GlmmRegressionModel | None = None

    @property
    def level_percent(self) -> float:
        """The confidence level in percent (95.0)."""
        return self.level * 100

    @property
    def reference_levels(self) -> dict[str, str]:
        """Reference level of each categorical moderator, by column."""
        return dict(self.references)

    __json__: ClassVar[Layout] = (
        "measure",
        "level",
        Key("references", "reference_levels"),
        "k",
        "model",
        "tau2_method",
        "ci_method",
        "coefficients",
        "vcov",
        "predictions",
        "permutation",
        "fit_statistics",
        "tau2_se",
        "tau2_interval",
        "coefficient_tests",
        "contrasts",
        "contrast_test",
        Key("lrt", "comparison"),
        "vif",
        "gvif",
        "qm",
        "qm_df",
        "qm_df2",
        "qm_p_value",
        "qe",
        "qe_df",
        "qe_p_value",
        "tau2",
        "i2",
        "h2",
        "r2",
        "scale",
        "robust",
        Key("glmm", omit_none=True),
        "excluded",
    )

    def to_dict(self) -> dict[str, Any]:
        return to_json_dict(self)


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
        return to_json_dict(self)


@dataclass(frozen=True)
class RegTest:
    """metafor's ``regtest``: the effect regressed on a measure of study size (``predictor``)
    in a mixed-effects meta-regression (``model = "rma"``) or a weighted least-squares
    regression with multiplicative dispersion (``"lm"``, Egger's classical test); the slope's
    test, and the limit estimate (the intercept: the effect of a study with ``predictor`` 0, for
    sei, vi, ninv and sqrtninv) with its confidence interval."""

    model: str
    predictor: str
    #: the test's reference distribution: ``z`` (rma with z), ``t`` (lm, and rma with
    #: Hartung-Knapp)
    distribution: str
    statistic: float
    df: int | None
    p_value: float
    slope: float
    slope_se: float
    limit_theta: float | None
    limit_ci_low_theta: float | None
    limit_ci_high_theta: float | None
    tau2_method: str | None
    tau2: float | None
    level: float
    k: int
    measure: str

    @property
    def limit_estimate(self) -> float | None:
        return back_transform(self.limit_theta, self.measure)

    @property
    def limit_ci_low(self) -> float | None:
        return back_transform(self.limit_ci_low_theta, self.measure)

    @property
    def limit_ci_high(self) -> float | None:
        return back_transform(self.limit_ci_high_theta, self.measure)

    __json__: ClassVar[Layout] = (
        "model",
        "predictor",
        "distribution",
        "statistic",
        "df",
        "p_value",
        "slope",
        "slope_se",
        "limit_theta",
        "limit_ci_low_theta",
        "limit_ci_high_theta",
        "limit_estimate",
        "limit_ci_low",
        "limit_ci_high",
        "tau2_method",
        "tau2",
        "level",
        "k",
    )

    def to_dict(self) -> dict[str, Any]:
        return to_json_dict(self)


@dataclass(frozen=True)
class NotApplicable:
    """A method that does not apply to these data, with the reason (reported, not an error)."""

    method: str
    reason: str

    applicable: ClassVar[bool] = False

    __json__: ClassVar[Layout] = ("applicable", "reason")

    def to_dict(self) -> dict[str, Any]:
        return to_json_dict(self)


@dataclass(frozen=True)
class ExcessSignificance:
    """The test of excess significance (Ioannidis & Trikalinos 2007; metafor's ``tes()``):
    ``observed`` significant studies against the ``expected`` number (the sum of the studies'
    powers at ``theta``, the common-effect estimate), with the chi-square (``x2``, ``p_chi2``),
    binomial and exact one-sided p-values; ``p_value`` is the one metafor chooses (``test``);
    ``theta_lim`` the limit estimate (analysis scale)."""

    k: int
    observed: int
    expected: float
    ratio: float
    test: str
    p_value: float
    x2: float
    p_chi2: float
    p_binom: float
    p_exact: float
    theta: float
    theta_lim: float | None
    powers: tuple[float, ...]
    measure: str = ""

    @property
    def limit_estimate(self) -> float | None:
        """``theta_lim`` on the reported scale (exp for ratio measures)."""
        return back_transform(self.theta_lim, self.measure)

    __json__: ClassVar[Layout] = (
        "k",
        "observed",
        "expected",
        "ratio",
        "test",
        "p_value",
        "x2",
        "p_chi2",
        "p_binom",
        "p_exact",
        "theta",
        "theta_lim",
        "limit_estimate",
        "powers",
    )

    def to_dict(self) -> dict[str, Any]:
        return to_json_dict(self)


@dataclass(frozen=True)
class BiasAnalysis:
    """Small-study-effect tests of one set of effect sizes.

    Each test is its result, a :class:`NotApplicable` with the reason, or ``None`` when it was
    not requested (and then absent from the JSON).
    """

    full: MetaAnalysis
    egger: EggerTest | NotApplicable | None
    regtest: RegTest | NotApplicable | None = None
    begg: BeggTest | NotApplicable | None = None
    peters: RegressionTest | NotApplicable | None = None
    harbord: RegressionTest | NotApplicable | None = None
    trimfill: TrimFill | NotApplicable | None = None
    failsafe: FailSafeN | NotApplicable | None = None
    tes: ExcessSignificance | NotApplicable | None = None

    TESTS = ("egger", "regtest", "begg", "peters", "harbord", "trimfill", "failsafe", "tes")

    def results(self) -> list[tuple[str, Any]]:
        """(name, result) of every requested test, in the fixed order of ``TESTS``."""
        return [
            (name, getattr(self, name)) for name in self.TESTS if getattr(self, name) is not None
        ]

    @property
    def requested(self) -> tuple[str, ...]:
        """Names of the requested tests, in the order of ``TESTS``."""
        return tuple(name for name, _ in self.results())

    # A test not requested is absent from the JSON.
    __json__: ClassVar[Layout] = (
        *keys_of("full", "measure", "k"),
        Key("tests", "requested"),
        *(Key(name, omit_none=True) for name in TESTS),
        Key("excluded", "full.effects.excluded"),
    )

    def to_dict(self) -> dict[str, Any]:
        return to_json_dict(self)


@dataclass(frozen=True)
class HeterogeneityCI:
    """Confidence intervals for tau², tau, I² (percent) and H²: by default the Q-profile
    (Viechtbauer 2007); ``code`` names the type (:data:`ivigmeta.core.confint.TAU2_CI_METHODS`:
    "qp", "pl", "wald") and ``method`` its name.

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
    method: str = "Q-profile"
    code: str = "qp"

    @property
    def tau_low(self) -> float:
        return math.sqrt(self.tau2_low)

    @property
    def tau_high(self) -> float:
        return math.sqrt(self.tau2_high)

    @property
    def tau2_ci(self) -> tuple[float, float]:
        return (self.tau2_low, self.tau2_high)

    @property
    def tau_ci(self) -> tuple[float, float]:
        return (self.tau_low, self.tau_high)

    @property
    def i2_ci(self) -> tuple[float, float]:
        return (self.i2_low, self.i2_high)

    @property
    def h2_ci(self) -> tuple[float, float]:
        return (self.h2_low, self.h2_high)

    __json__: ClassVar[Layout] = (
        "tau2_ci",
        "tau_ci",
        "i2_ci",
        "h2_ci",
        Key("ci_level", "level"),
        Key("ci_method", "method"),
        Key("ci_lb_sign", "lb_sign"),
        Key("ci_ub_sign", "ub_sign"),
        "ci_null",
        Key("ci_type", "code"),
    )

    def to_dict(self) -> dict[str, Any]:
        return to_json_dict(self)


# ---------------------------------------------------------------------------------------------
# Sensitivity, influence and small-study effects (cumulative meta-analysis, Viechtbauer & Cheung
# diagnostics, Begg, Peters, Harbord, trim-and-fill, fail-safe N).


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
    #: which fit the step reports: ``random`` or ``common`` (the --common method)
    model: str = "random"

    @property
    def common_model(self) -> bool:
        return self.model == "common"

    # A step without a fit keeps its k, every fitted value null.
    __json__: ClassVar[Layout] = (
        *keys_of("added", "study", "row", "year"),
        "order_value",
        "k",
        Flatten(
            "analysis",
            layout=POOLED_JSON,
            when_none=null_keys(POOLED_JSON[1:]),
            unless="common_model",
        ),
        Flatten(
            "analysis",
            layout=COMMON_POOLED_JSON,
            when_none=null_keys(COMMON_POOLED_JSON[1:]),
            when="common_model",
        ),
        "note",
    )

    def to_dict(self) -> dict[str, Any]:
        return to_json_dict(self)


@dataclass(frozen=True)
class Cumulative:
    """Cumulative meta-analysis: studies added one at a time in the order of ``order_by``."""

    full: MetaAnalysis
    order_by: str
    descending: bool
    steps: tuple[CumulativeStep, ...]
    missing_order: tuple[str, ...] = ()
    #: ``random`` (default) or ``common``: which fit the steps report
    model: str = "random"

    @property
    def common_model(self) -> bool:
        return self.model == "common"

    __json__: ClassVar[Layout] = (
        *keys_of("full", "measure", "k"),
        "order_by",
        "descending",
        *keys_of("full.options", "tau2_method", "ci_method", "level"),
        Key("model", when="common_model"),
        Key("common_method", "full.options.common_method", when="common_model"),
        "steps",
        "missing_order",
        Key("excluded", "full.effects.excluded"),
    )

    def to_dict(self) -> dict[str, Any]:
        return to_json_dict(self)


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
    # Models with moderators (:class:`ModeratorInfluence`): the coefficient names, the DFBETAS of
    # each coefficient and the coefficients of the model refitted without the study (None when
    # that refit failed). ``dfbetas`` is then the DFBETAS largest in absolute value.
    coefficient_names: tuple[str, ...] = ()
    dfbetas_all: tuple[float, ...] | None = None
    beta_del: tuple[float, ...] | None = None

    @property
    def dfbetas_by_coefficient(self) -> dict[str, float | None] | None:
        """{coefficient: DFBETAS} for a model with moderators, else None."""
        if not self.coefficient_names:
            return None
        values = self.dfbetas_all or (None,) * len(self.coefficient_names)
        return dict(zip(self.coefficient_names, values))

    @property
    def coefficients_del(self) -> dict[str, float | None] | None:
        """{coefficient: estimate without the study} for a model with moderators, else None."""
        if not self.coefficient_names:
            return None
        values = self.beta_del or (None,) * len(self.coefficient_names)
        return dict(zip(self.coefficient_names, values))

    __json__: ClassVar[Layout] = (
        *keys_of("study", "study", "row"),
        "rstudent",
        "dffits",
        "cook_d",
        "cov_r",
        "tau2_del",
        "qe_del",
        "hat",
        "weight",
        "dfbetas",
        Key("dfbetas_by_coefficient", omit_none=True),
        Key("coefficients_del", omit_none=True),
        "influential",
        Key("influential_by", "reasons"),
        "baujat_x",
        "baujat_y",
        "note",
    )

    def to_dict(self) -> dict[str, Any]:
        return to_json_dict(self)


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

    __json__: ClassVar[Layout] = (
        *keys_of("full", "measure", "k"),
        *keys_of("full.options", "tau2_method", "ci_method"),
        Group(
            "cutoffs",
            tuple(Key(name, f"{name}_cutoff") for name in ("dffits", "cook_d", "hat", "dfbetas")),
        ),
        Key("studies", "rows"),
        Key("excluded", "full.effects.excluded"),
    )

    def to_dict(self) -> dict[str, Any]:
        return to_json_dict(self)


@dataclass(frozen=True)
class ModeratorInfluence:
    """Influence diagnostics of every study of a meta-regression (or common-effect) model,
    metafor's ``influence(rma(yi, vi, mods = ...))``, with its cut-offs (on p coefficients).

    ``tau2_method`` is ``"FE"`` for the common-effect model; ``coefficients`` are the full
    model's (name, estimate) pairs; ``excluded`` lists the studies left out (no effect size, or
    an empty moderator).
    """

    measure: str
    k: int
    tau2_method: str
    ci_method: str
    tau2: float
    coefficients: tuple[tuple[str, float], ...]
    rows: tuple[InfluenceRow, ...]
    dffits_cutoff: float
    cook_d_cutoff: float
    hat_cutoff: float
    excluded: tuple[Exclusion, ...] = ()
    references: tuple[tuple[str, str], ...] = ()
    dfbetas_cutoff: float = 1.0

    @property
    def model(self) -> str:
        """``metareg`` with moderators; ``common`` or ``random`` for an intercept-only model."""
        if len(self.coefficients) > 1:
            return "metareg"
        return "common" if self.tau2_method == "FE" else "random"

    @property
    def moderators(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.coefficients[1:])

    @property
    def coefficient_dict(self) -> dict[str, float]:
        return dict(self.coefficients)

    @property
    def reference_levels(self) -> dict[str, str]:
        return dict(self.references)

    __json__: ClassVar[Layout] = (
        "measure",
        "k",
        "model",
        "moderators",
        Key("reference_levels", when="references"),
        "tau2_method",
        "ci_method",
        "tau2",
        Key("coefficients", "coefficient_dict"),
        Group(
            "cutoffs",
            tuple(Key(name, f"{name}_cutoff") for name in ("dffits", "cook_d", "hat", "dfbetas")),
        ),
        Key("studies", "rows"),
        "excluded",
    )

    def to_dict(self) -> dict[str, Any]:
        return to_json_dict(self)


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
        return to_json_dict(self)


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
        return to_json_dict(self)


@dataclass(frozen=True)
class FilledStudy:
    """A study imputed by trim-and-fill: ``yi``/``vi`` on the analysis scale, mirroring the
    observed study ``mirror_of``."""

    study: str
    mirror_of: str
    yi: float
    vi: float
    measure: str

    @property
    def estimate(self) -> float:
        """``yi`` on the reported scale."""
        return back_transform(self.yi, self.measure)  # type: ignore[return-value]

    @property
    def se(self) -> float:
        """Standard error on the analysis scale."""
        return math.sqrt(self.vi)

    __json__: ClassVar[Layout] = ("study", "mirror_of", "yi", "vi", "estimate")


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

    @property
    def filled(self) -> tuple[FilledStudy, ...]:
        """The imputed studies, labelled ``Filled 1``, ``Filled 2``, ..."""
        return tuple(
            FilledStudy(f"Filled {j + 1}", src, y, v, self.analysis.measure)
            for j, (y, v, src) in enumerate(zip(self.filled_yi, self.filled_vi, self.filled_from))
        )

    __json__: ClassVar[Layout] = (
        "estimator",
        "side",
        "side_chosen",
        "k0",
        "se_k0",
        "p_k0",
        "iterations",
        Key("k_total", "analysis.k"),
        "theta",
        "se",
        "estimate",
        "ci_low",
        "ci_high",
        "p_value",
        *keys_of("analysis.heterogeneity", "q", "i2", "tau2"),
        "filled",
    )

    def to_dict(self) -> dict[str, Any]:
        return to_json_dict(self)


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
    #: Orwin's method on the inverse-variance weighted mean (metafor's ``weighted = TRUE``)
    weighted: bool = False

    @property
    def mean_estimate(self) -> float | None:
        """``mean_theta`` on the reported scale."""
        return back_transform(self.mean_theta, self.measure)

    @property
    def target(self) -> float | None:
        """``target_theta`` on the reported scale."""
        return back_transform(self.target_theta, self.measure)

    __json__: ClassVar[Layout] = (
        "method",
        Key("weighted", when="weighted"),
        "n",
        "n_exact",
        "alpha",
        "p_value",
        "mean_theta",
        "mean_estimate",
        "target_theta",
        "target",
        "k",
    )

    def to_dict(self) -> dict[str, Any]:
        return to_json_dict(self)


# ---------------------------------------------------------------------------------------------
# GOSH (ivigmeta.methods.gosh)


@dataclass(frozen=True)
class Gosh:
    """The model fitted to subsets of the studies (metafor's ``gosh()``): per subset its size,
    members (bit i set: study i of ``labels`` is in), pooled estimate and I²."""

    k: int
    measure: str
    model: str  # "common" | "random"
    sampled: bool  # False: every non-empty subset (k <= 15)
    seed: int | None
    labels: tuple[str, ...]
    sizes: tuple[int, ...]
    estimates: tuple[float, ...]  # reported scale
    thetas: tuple[float, ...]  # analysis scale
    i2: tuple[float, ...]
    members: tuple[int, ...]
    excluded: tuple[Exclusion, ...] = ()
    #: minimum, quartiles and maximum of the estimates (reported scale) and of I², for display
    estimate_quartiles: tuple[float, ...] = ()
    i2_quartiles: tuple[float, ...] = ()

    @property
    def n_subsets(self) -> int:
        return len(self.sizes)

    def members_of(self, j: int) -> list[str]:
        """The studies of subset ``j``."""
        bits = self.members[j]
        return [lab for i, lab in enumerate(self.labels) if bits >> i & 1]

    __json__: ClassVar[Layout] = (
        "measure",
        "k",
        "model",
        "sampled",
        "seed",
        "n_subsets",
        "labels",
        Group(
            "subsets",
            (
                Key("k", "sizes"),
                "members",
                Key("estimate", "estimates"),
                Key("theta", "thetas"),
                "i2",
            ),
        ),
        "excluded",
    )

    def to_dict(self) -> dict[str, Any]:
        return to_json_dict(self)


# ---------------------------------------------------------------------------------------------
# Summary of findings (GRADE style): ivigmeta.methods.sof


@dataclass(frozen=True)
class SofRow:
    """One assumed control risk and what the pooled effect makes of it (risks, not per 1,000)."""

    assumed_risk: float
    assumed_source: str  # "pooled control arms" | "given"
    corresponding_risk: float
    corresponding_ci_low: float
    corresponding_ci_high: float
    difference: float
    difference_ci_low: float
    difference_ci_high: float
    nnt: float | None  # 1 / |difference| (unrounded); None when the difference is 0
    nnt_kind: str  # "benefit" | "harm" | ""
    nnt_ci: str  # e.g. "NNTB 4 to 19", or through infinity
    label: str = ""

    __json__: ClassVar[Layout] = (
        "label",
        "assumed_risk",
        "assumed_source",
        "corresponding_risk",
        "corresponding_ci_low",
        "corresponding_ci_high",
        "difference",
        "difference_ci_low",
        "difference_ci_high",
        "nnt",
        "nnt_kind",
        "nnt_ci",
    )


@dataclass(frozen=True)
class SummaryOfFindings:
    """A GRADE-style summary of findings of one outcome (``ivigmeta sof``)."""

    outcome: str
    measure: str
    model: str
    effect: float  # reported scale
    ci_low: float
    ci_high: float
    level: float
    k: int
    participants: int | None
    certainty: str | None  # the user's GRADE rating, never computed
    comment: str
    event_desirable: bool | None  # None: not said (NNT without benefit / harm)
    rows: tuple[SofRow, ...]
    excluded: tuple[Exclusion, ...] = ()

    __json__: ClassVar[Layout] = (
        "outcome",
        "measure",
        "model",
        "effect",
        "ci_low",
        "ci_high",
        "level",
        "k",
        "participants",
        "certainty",
        "comment",
        "event_desirable",
        Key("risks", "rows"),
        "excluded",
    )

    def to_dict(self) -> dict[str, Any]:
        return to_json_dict(self)


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
        """The study's JSON; with ``domains``, one key per domain, else a ``judgements`` list."""
        return to_json_dict(RobStudyRow(self, tuple(domains)))


@dataclass(frozen=True)
class RobStudyRow:
    """A study's judgements keyed by the assessment's domains (the JSON of ``rob``'s studies)."""

    study: RobStudy
    domains: tuple[str, ...] = ()

    @property
    def by_domain(self) -> dict[str, str]:
        return dict(zip(self.domains, self.study.judgements))

    __json__: ClassVar[Layout] = (
        *keys_of("study", "study", "row"),
        Flatten("by_domain", when="domains"),
        Key("judgements", "study.judgements", unless="domains"),
        *keys_of(
            "study", "overall", "overall_rule", "overall_given", "contradicts_rules", "weight"
        ),
    )


@dataclass(frozen=True)
class RobDomainSummary:
    """Share (percent, weighted when the table has weights) of studies at each level in a domain."""

    domain: str
    label: str
    percent: tuple[float, ...]  # aligned with RobAssessment.levels

    def to_dict(self, levels: Sequence[str] = ()) -> dict[str, Any]:
        """The domain's JSON, ``percent`` keyed by ``levels``."""
        return to_json_dict(RobSummaryRow(self, tuple(levels)))


@dataclass(frozen=True)
class RobSummaryRow:
    """A domain's shares keyed by the assessment's levels (the JSON of ``rob``'s summary)."""

    summary: RobDomainSummary
    levels: tuple[str, ...] = ()

    @property
    def percent_by_level(self) -> dict[str, float]:
        return dict(zip(self.levels, self.summary.percent))

    __json__: ClassVar[Layout] = (
        *keys_of("summary", "domain", "label"),
        Key("percent", "percent_by_level"),
    )


@dataclass(frozen=True)
class RobDomain:
    """A ROBINS-I domain: its key (the column) and its label."""

    key: str
    label: str


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

    @property
    def domain_list(self) -> tuple[RobDomain, ...]:
        return tuple(RobDomain(k, lab) for k, lab in zip(self.domains, self.domain_labels))

    @property
    def weights_from(self) -> str | None:
        """What the weights are, ``None`` when unweighted."""
        return self.weight_source or None

    @property
    def study_rows(self) -> tuple[RobStudyRow, ...]:
        return tuple(RobStudyRow(s, self.domains) for s in self.studies)

    @property
    def summary_rows(self) -> tuple[RobSummaryRow, ...]:
        return tuple(RobSummaryRow(d, self.levels) for d in self.summary)

    __json__: ClassVar[Layout] = (
        "tool",
        "source",
        Key("domains", "domain_list"),
        "levels",
        "weighted",
        Key("weight_source", "weights_from"),
        Key("studies", "study_rows"),
        Key("summary", "summary_rows"),
        Key(
            "contradictions",
            layout=("study", "row", Key("given", "overall_given"), Key("rule", "overall_rule")),
        ),
    )

    def to_dict(self) -> dict[str, Any]:
        return to_json_dict(self)


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
        return to_json_dict(self)


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

    @property
    def explanation_shown(self) -> str:
        """The explanation, or for an error the error message."""
        return self.explanation or (self.error if self.verdict == "error" else "")

    __json__: ClassVar[Layout] = (
        "label",
        "printed",
        "recomputed",
        "rounded",
        "verdict",
        "expect",
        "ok",
        "note",
        Key("explanation", "explanation_shown"),
        "error",
        "where",
        "command",
        "args",
        "path",
        "alternatives",
    )

    def to_dict(self) -> dict[str, Any]:
        return to_json_dict(self)


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

    __json__: ClassVar[Layout] = (
        "total",
        "reproduced",
        "differs",
        "differs_expected",
        "errors",
        "unexpected",
        "ok",
        "line",
    )

    def to_dict(self) -> dict[str, Any]:
        return to_json_dict(self)


@dataclass(frozen=True)
class ReproduceResult:
    """Every printed number of a published-numbers file checked against the data."""

    source: str
    paper: dict[str, Any]
    data: str
    numbers: tuple[NumberCheck, ...]
    summary: ReproduceSummary
    runs: int = 0

    __json__: ClassVar[Layout] = (
        Key("published", "source"),
        "paper",
        "data",
        "numbers",
        "summary",
        "runs",
    )

    def to_dict(self) -> dict[str, Any]:
        return to_json_dict(self)


def counts_needed(method: str, rows: Sequence[tuple[str, int]]) -> str:
    """Why ``method`` (Mantel-Haenszel, Peto) cannot pool the studies ``rows`` (label, row),
    which report only an effect (pool's message, and batch's for such a group)."""
    listed = ", ".join(f"{label} (row {row})" for label, row in rows)
    return (
        f"{method} needs event counts, but {listed} give(s) only an effect "
        "(use --common IV, or give the counts)"
    )


@dataclass(frozen=True)
class Interval:
    """A residual with its standard error and the standardized value (metafor's resid, se, z)."""

    resid: float
    se: float
    z: float

    __json__: ClassVar[Layout] = ("resid", "se", "z")

    def to_dict(self) -> dict[str, Any]:
        return to_json_dict(self)


@dataclass(frozen=True)
class StudyLevelRow:
    """One study's BLUP, random effect, fitted value and residuals (analysis scale).

    ``blup_pi`` and ``ranef_pi`` are metafor's pi.lb / pi.ub; ``rstudent`` is None (with a
    ``note``) when the refit without the study failed.
    """

    study: Study
    blup: float
    blup_se: float
    blup_pi: tuple[float, float]
    ranef: float
    ranef_se: float
    ranef_pi: tuple[float, float]
    fitted: float
    residual: float
    rstandard: Interval
    rstudent: Interval | None
    note: str = ""

    @property
    def blup_dict(self) -> dict[str, float]:
        return {
            "pred": self.blup,
            "se": self.blup_se,
            "pi_lb": self.blup_pi[0],
            "pi_ub": self.blup_pi[1],
        }

    @property
    def ranef_dict(self) -> dict[str, float]:
        return {
            "pred": self.ranef,
            "se": self.ranef_se,
            "pi_lb": self.ranef_pi[0],
            "pi_ub": self.ranef_pi[1],
        }

    __json__: ClassVar[Layout] = (
        *keys_of("study", "study", "row"),
        Key("blup", "blup_dict"),
        Key("ranef", "ranef_dict"),
        "fitted",
        "residual",
        "rstandard",
        "rstudent",
        "note",
    )

    def to_dict(self) -> dict[str, Any]:
        return to_json_dict(self)


@dataclass(frozen=True)
class StudyLevel:
    """Study-level quantities of a random-effects model, with or without moderators (metafor's
    blup, ranef, fitted, residuals, rstandard, rstudent)."""

    measure: str
    k: int
    tau2: float
    tau2_method: str
    ci_method: str
    level: float
    coefficients: tuple[str, ...]
    rows: tuple[StudyLevelRow, ...]
    excluded: tuple[Exclusion, ...] = ()
    #: the common-effect method (IV, MH, PETO) of a common-effect model (--model common), else
    #: None
    common_method: str | None = None

    @property
    def model(self) -> str:
        """``random`` (or ``common``) for the intercept-only model, else ``metareg``."""
        if len(self.coefficients) > 1:
            return "metareg"
        return "common" if self.common_method else "random"

    @property
    def moderators(self) -> tuple[str, ...]:
        return self.coefficients[1:]

    __json__: ClassVar[Layout] = (
        "measure",
        "level",
        "k",
        "model",
        "moderators",
        "tau2_method",
        "ci_method",
        "tau2",
        Key("studies", "rows"),
        "excluded",
    )

    def to_dict(self) -> dict[str, Any]:
        return to_json_dict(self)


@dataclass(frozen=True)
class RVECoefficient:
    """One coefficient of a robust variance estimation model: its robust SE, t test on ``df``
    (N - p, or the Satterthwaite df of the small-sample correction) and interval."""

    name: str
    estimate: float
    se: float
    statistic: float
    df: float
    p_value: float
    ci_low: float
    ci_high: float

    __json__: ClassVar[Layout] = (
        "name",
        "estimate",
        "se",
        "statistic",
        "df",
        "p_value",
        "ci_low",
        "ci_high",
    )

    def to_dict(self) -> dict[str, Any]:
        return to_json_dict(self)


@dataclass(frozen=True)
class RobustVarianceModel:
    """Robust variance estimation for dependent effects (robumeta's ``robu()``;
    :mod:`ivigmeta.core.rve`): the correlated (``rho``) or hierarchical effects model of the
    effects clustered by ``cluster``, on the moderator columns ``moderators`` (none: the
    intercept alone). ``tau2`` is the between-study (CORR) or between-cluster (HIER) variance,
    ``omega2`` HIER's within-cluster one; ``qe`` the first-stage fit's Q with the working
    weights, ``i2`` (CORR) robumeta's I² against ``qe_df``. ``small``: Tipton's (2015)
    small-sample correction with Satterthwaite df; else the Hedges, Tipton & Johnson (2010)
    sandwich on N - p df. ``coefficients`` and ``vcov`` are on the analysis scale."""

    measure: str
    cluster: str
    model: str
    rho: float | None
    small: bool
    level: float
    moderators: tuple[str, ...]
    #: each cluster's label and number of effects, clusters in order of first appearance
    cluster_sizes: tuple[tuple[str, int], ...]
    coefficients: tuple[RVECoefficient, ...]
    vcov: tuple[tuple[float, ...], ...]
    tau2: float
    omega2: float | None
    i2: float | None
    qe: float
    qe_df: float | None
    excluded: tuple[Exclusion, ...] = ()

    @property
    def k(self) -> int:
        """The effects analysed."""
        return sum(n for _, n in self.cluster_sizes)

    @property
    def n_clusters(self) -> int:
        return len(self.cluster_sizes)

    @property
    def sizes(self) -> dict[str, float]:
        """min, mean, median and max of the effects per cluster (robumeta's print)."""
        import statistics

        ks = [n for _, n in self.cluster_sizes]
        return {
            "min": min(ks),
            "mean": statistics.fmean(ks),
            "median": statistics.median(ks),
            "max": max(ks),
        }

    __json__: ClassVar[Layout] = (
        "measure",
        "cluster",
        "model",
        "rho",
        "small",
        "level",
        "moderators",
        "k",
        "n_clusters",
        Key("effects_per_cluster", "sizes"),
        "tau2",
        "omega2",
        "i2",
        "qe",
        "qe_df",
        "coefficients",
        "vcov",
        "excluded",
    )

    def to_dict(self) -> dict[str, Any]:
        return to_json_dict(self)


@dataclass(frozen=True)
class CombinationStudy:
    """One study's z = y / sqrt(v) and its one-sided p-value 1 - Phi(z) in a combination test,
    with its Stouffer weight (None: unweighted or Fisher)."""

    study: Study
    z: float
    p_one_sided: float
    weight: float | None = None

    __json__: ClassVar[Layout] = (
        *keys_of("study", "study", "row"),
        "z",
        "p_one_sided",
        "weight",
    )

    def to_dict(self) -> dict[str, Any]:
        return to_json_dict(self)


@dataclass(frozen=True)
class CombinationTest:
    """Stouffer's or Fisher's combination of the studies' one-sided evidence
    (:mod:`ivigmeta.core.combination`): ``statistic`` is Stouffer's Z or Fisher's X² (on
    ``df`` = 2k), ``z`` the combined p-value as a normal deviate."""

    measure: str
    method: str
    mode: str
    k: int
    statistic: float
    df: int | None
    p_value: float
    z: float
    weights_column: str | None
    rows: tuple[CombinationStudy, ...]
    excluded: tuple[Exclusion, ...] = ()

    __json__: ClassVar[Layout] = (
        "measure",
        "method",
        "mode",
        "k",
        "statistic",
        "df",
        "p_value",
        "z",
        "weights_column",
        Key("studies", "rows"),
        "excluded",
    )

    def to_dict(self) -> dict[str, Any]:
        return to_json_dict(self)


@dataclass(frozen=True)
class ModelMatrix:
    """One matrix of a fitted model (metafor's ``vcov(fit, type = ...)``, ``hatvalues(fit,
    type = "matrix")``, ``weights(fit, type = "matrix")``; :mod:`ivigmeta.methods.matrices`),
    on the analysis scale: ``type`` ``coef`` is p x p over ``coefficients``, the others k x k
    over ``row_studies`` (in table order)."""

    measure: str
    type: str
    k: int
    tau2: float
    tau2_method: str
    ci_method: str
    coefficients: tuple[str, ...]
    row_studies: tuple[Study, ...]
    values: tuple[tuple[float, ...], ...]
    excluded: tuple[Exclusion, ...] = ()
    #: the common-effect method (MH, PETO) of a Mantel-Haenszel / Peto fit, else None
    common_method: str | None = None
    #: True when the fit has user weights (--weights)
    user_weights: bool = False

    @property
    def model(self) -> str:
        """``random`` or ``common`` for the intercept-only model, else ``metareg``."""
        if len(self.coefficients) > 1:
            return "metareg"
        return "common" if self.tau2_method == "FE" else "random"

    @property
    def moderators(self) -> tuple[str, ...]:
        return self.coefficients[1:]

    @property
    def labels(self) -> tuple[str, ...]:
        """The rows' (and columns') names: the coefficients of ``coef``, else the studies."""
        if self.type == "coef":
            return self.coefficients
        return tuple(s.label() for s in self.row_studies)

    @property
    def rows(self) -> tuple[int | None, ...]:
        """The input rows of the studies (empty for ``coef``)."""
        return tuple(s.row for s in self.row_studies)

    __json__: ClassVar[Layout] = (
        "measure",
        "type",
        "k",
        "model",
        "moderators",
        "common_method",
        "tau2_method",
        "ci_method",
        "tau2",
        "user_weights",
        "labels",
        "rows",
        Key("matrix", "values"),
        "excluded",
    )

    def to_dict(self) -> dict[str, Any]:
        return to_json_dict(self)


@dataclass(frozen=True)
class AggregatedCluster:
    """One cluster's aggregated effect (metafor's ``aggregate.escalc``): the GLS combination of
    its ``k`` effects (the mean, unweighted), on the analysis scale.

    ``rows`` and ``labels`` are the input rows and study labels of the effects; ``fields`` the
    other columns aggregated (a number: the mean of the non-empty values; text: the most
    frequent value; ``None`` when every value is empty); ``rho`` and ``phi`` the correlations
    used in this cluster (``None`` where the structure has none).
    """

    cluster: str
    k: int
    yi: float
    vi: float
    rows: tuple[int, ...]
    labels: tuple[str, ...]
    fields: tuple[tuple[str, float | int | str | None], ...] = ()
    rho: float | None = None
    phi: float | None = None

    @property
    def se(self) -> float:
        return math.sqrt(self.vi)

    @property
    def fields_dict(self) -> dict[str, float | int | str | None]:
        return dict(self.fields)

    __json__: ClassVar[Layout] = (
        "cluster",
        "k",
        "yi",
        "vi",
        "rho",
        "phi",
        "rows",
        "labels",
        Key("fields", "fields_dict"),
    )

    def to_dict(self) -> dict[str, Any]:
        return to_json_dict(self)


@dataclass(frozen=True)
class Aggregation:
    """Dependent effect sizes collapsed into one per cluster (metafor's ``aggregate.escalc``).

    ``struct`` is the assumed correlation structure within a cluster (``ID``, ``CS``, ``CAR``
    or ``CS+CAR``); ``rho`` / ``phi`` the scalar correlations, or ``rho_column`` /
    ``phi_column`` the columns giving them per cluster; ``time`` the time column of CAR.
    ``measure_known`` is False when the effects were given (yi, vi ...) without a measure column
    and no ``--measure`` (metafor's ``GEN``): the CSV then carries no ``measure`` column.
    ``k`` counts the effects aggregated; ``excluded`` those left out before aggregation.
    """

    measure: str
    cluster: str
    struct: str
    weighted: bool
    clusters: tuple[AggregatedCluster, ...]
    columns: tuple[str, ...] = ()
    rho: float | None = None
    rho_column: str | None = None
    phi: float | None = None
    phi_column: str | None = None
    time: str | None = None
    measure_known: bool = True
    excluded: tuple[Exclusion, ...] = ()

    @property
    def k(self) -> int:
        return sum(c.k for c in self.clusters)

    @property
    def n_clusters(self) -> int:
        return len(self.clusters)

    __json__: ClassVar[Layout] = (
        "measure",
        "measure_known",
        "cluster",
        "struct",
        "rho",
        "rho_column",
        "phi",
        "phi_column",
        "time",
        "weighted",
        "k",
        "n_clusters",
        "columns",
        "clusters",
        "excluded",
    )

    def to_dict(self) -> dict[str, Any]:
        return to_json_dict(self)


@dataclass(frozen=True)
class Transformed:
    """Values through one of metafor's ``transf.*`` functions (``ivigmeta transf``,
    :mod:`ivigmeta.core.transforms`): ``function`` in metafor's spelling without ``transf.``,
    the inputs ``x`` and the results ``value`` in order, and the arguments given (None: not
    given; a tuple holds one value for every x, or one per x)."""

    function: str
    description: str
    x: tuple[float, ...]
    value: tuple[float, ...]
    n: tuple[float, ...] | None = None
    time: tuple[float, ...] | None = None
    sd: float | None = None
    pc: tuple[float, ...] | None = None
    n1: tuple[float, ...] | None = None
    n2: tuple[float, ...] | None = None
    tau2: float | None = None
    lower: float | None = None
    upper: float | None = None
    #: the harmonic mean of ``n`` (``ipft.hm``), else None
    n_harmonic: float | None = None

    @property
    def metafor(self) -> str:
        return f"transf.{self.function}"

    @property
    def arguments(self) -> dict[str, Any]:
        """The arguments given, by name, in the order of the fields."""
        names = ("n", "time", "sd", "pc", "n1", "n2", "tau2", "lower", "upper", "n_harmonic")
        return {k: getattr(self, k) for k in names if getattr(self, k) is not None}

    def per_value(self, name: str, i: int) -> float | None:
        """Argument ``name`` as the ``i``-th value used it (its one value, or its ``i``-th)."""
        v = getattr(self, name)
        if v is None or not isinstance(v, tuple):
            return v
        return v[0] if len(v) == 1 else v[i] if len(v) == len(self.x) else None

    @property
    def values(self) -> tuple[dict[str, float], ...]:
        return tuple({"x": a, "value": b} for a, b in zip(self.x, self.value))

    __json__: ClassVar[Layout] = (
        "function",
        "metafor",
        "description",
        "arguments",
        "values",
    )

    def to_dict(self) -> dict[str, Any]:
        return to_json_dict(self)


@dataclass(frozen=True)
class IntegralMean:
    """The integral back-transform of a random-effects estimate (``pool --transf-int``):
    metafor's ``predict(fit, transf = transf.NAME.int, targs = list(tau2 = fit$tau2))``, the
    mean E[h(theta + u)], u ~ N(0, tau²), of the true effects on the reported scale at the
    estimate and at its CI bounds (:mod:`ivigmeta.core.transforms`)."""

    function: str
    tau2: float
    estimate: float
    ci_low: float
    ci_high: float

    @property
    def metafor(self) -> str:
        return f"transf.{self.function}"

    __json__: ClassVar[Layout] = ("function", "metafor", "tau2", "estimate", "ci_low", "ci_high")

    def to_dict(self) -> dict[str, Any]:
        return to_json_dict(self)


# ---------------------------------------------------------------------------------------------
# Selection models for publication bias: ivigmeta.methods.selmodel


@dataclass(frozen=True)
class SelectionDelta:
    """One parameter of the weight function: its estimate (or the value given), standard error,
    Wald test against its null value (1 for step functions and beta, 0 otherwise) and interval;
    for step functions its p-value interval ``lower < p <= upper`` and the studies in it."""

    name: str  # "delta1", "delta2", ...
    estimate: float
    se: float | None  # None: fixed, or no standard errors (Hessian not positive definite)
    z: float | None
    p_value: float | None
    ci_low: float | None
    ci_high: float | None
    fixed: bool  # given (delta 1 of a step function, or --delta), not estimated
    null: float
    lower: float | None = None  # stepfun: the interval of p-values the weight applies to
    upper: float | None = None
    k: int | None = None  # stepfun: studies whose p-value is in the interval
    #: the profile-likelihood interval (on request: metafor's confint()); None otherwise
    pl_ci_low: float | None = None
    pl_ci_high: float | None = None

    __json__: ClassVar[Layout] = (
        "name",
        "estimate",
        "se",
        "z",
        "p_value",
        "ci_low",
        "ci_high",
        "fixed",
        "null",
        Key("lower", omit_none=True),
        Key("upper", omit_none=True),
        Key("k", omit_none=True),
        "pl_ci_low",
        "pl_ci_high",
    )


@dataclass(frozen=True)
class SelectionModel:
    """A selection model for publication bias (metafor's ``selmodel()``): the maximum-likelihood
    fit of the random- (``model = "random"``) or common-effect model with a weight function of
    the studies' one-sided p-values (``type``), the estimates adjusted for selection, and the
    likelihood-ratio test of the weight function against the unadjusted ML model."""

    measure: str
    k: int
    type: str
    alternative: str
    model: str  # "random" | "common"
    level: float  # fraction
    steps: tuple[float, ...]  # stepfun: the cut-offs ending at 1; else () or (step,)
    prec: str | None
    scaleprec: bool
    theta: float
    se: float | None  # None: no standard errors (the Hessian is not positive definite)
    z: float | None
    p_value: float | None
    ci_low_theta: float | None
    ci_high_theta: float | None
    tau2: float
    tau2_se: float | None  # None under the common-effect model (and without standard errors)
    tau2_ci_low: float | None
    tau2_ci_high: float | None
    deltas: tuple[SelectionDelta, ...]
    ll: float
    ll_unadjusted: float
    lrt: float
    lrt_df: int
    lrt_p: float | None  # None when every delta is given
    lrt_tau2: float | None  # the test of tau² = 0 within the selection model (random only)
    lrt_tau2_p: float | None
    aic: float
    bic: float
    aicc: float
    parameters: int
    theta_unadjusted: float
    se_unadjusted: float
    tau2_unadjusted: float
    labels: tuple[str, ...]
    pvalues: tuple[float, ...]  # each study's one-sided p-value (clamped as in the model)
    notes: tuple[str, ...] = ()
    excluded: tuple[Exclusion, ...] = ()
    #: tau²'s profile-likelihood interval (on request: metafor's confint()); None otherwise
    tau2_pl_ci_low: float | None = None
    tau2_pl_ci_high: float | None = None

    @property
    def estimate(self) -> float | None:
        return back_transform(self.theta, self.measure)

    @property
    def ci_low(self) -> float | None:
        return back_transform(self.ci_low_theta, self.measure)

    @property
    def ci_high(self) -> float | None:
        return back_transform(self.ci_high_theta, self.measure)

    @property
    def estimate_unadjusted(self) -> float | None:
        return back_transform(self.theta_unadjusted, self.measure)

    @property
    def level_percent(self) -> float:
        return self.level * 100

    @property
    def intervals(self) -> tuple[tuple[float, float, int], ...]:
        """stepfun: (lower, upper, studies) of each p-value interval; () otherwise."""
        return tuple(
            (d.lower, d.upper, d.k)
            for d in self.deltas
            if d.lower is not None and d.upper is not None and d.k is not None
        )

    __json__: ClassVar[Layout] = (
        "measure",
        "k",
        Group(
            "selmodel",
            (
                "type",
                "alternative",
                "model",
                "steps",
                "prec",
                "scaleprec",
                Key("level", "level_percent"),
                "theta",
                "se",
                "z",
                "p_value",
                "ci_low_theta",
                "ci_high_theta",
                "estimate",
                "ci_low",
                "ci_high",
                "tau2",
                "tau2_se",
                "tau2_ci_low",
                "tau2_ci_high",
                "tau2_pl_ci_low",
                "tau2_pl_ci_high",
                "deltas",
                "ll",
                "ll_unadjusted",
                "lrt",
                "lrt_df",
                "lrt_p",
                "lrt_tau2",
                "lrt_tau2_p",
                "aic",
                "bic",
                "aicc",
                "parameters",
                "theta_unadjusted",
                "se_unadjusted",
                "estimate_unadjusted",
                "tau2_unadjusted",
                Group("studies", (Key("study", "labels"), Key("p_value", "pvalues"))),
                "notes",
            ),
        ),
        "excluded",
    )

    def to_dict(self) -> dict[str, Any]:
        return to_json_dict(self)
