"""Summary of findings (GRADE style, as RevMan and GRADEpro print it) from a fitted analysis.

For a ratio or difference of risks, the pooled relative effect is applied to an assumed control
risk (ACR; by default the pooled control-arm risk, sum of control events / sum of control
totals, as GRADEpro's "study population"), giving the corresponding intervention risk per 1,000
(Schünemann et al. 2013; Cochrane Handbook chapter 14):

* RR: ACR x RR; OR: ACR x OR / (1 - ACR + ACR x OR); RD: ACR + RD (kept within 0 and 1);
* the CI of the corresponding risk applies the same to the CI bounds of the pooled effect;
* absolute difference = corresponding - assumed risk (per 1,000), with that CI;
* number needed to treat NNT = 1 / |difference| (Cook & Sackett 1995), benefit (NNTB) or harm
  (NNTH) by whether the event is desirable (when that is not said, "more / fewer events"); when the CI of the difference includes 0 the CI of
  the NNT runs through infinity (Altman 1998).

Continuous outcomes (MD, SMD) give the pooled difference with its CI. Certainty of the evidence
is the user's judgement (``certainty``), never computed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ivigmeta.errors import ModelError

if TYPE_CHECKING:
    from ivigmeta.results import MetaAnalysis, SummaryOfFindings

RISK_MEASURES = ("RR", "OR", "RD")
DIFFERENCE_MEASURES = ("MD", "SMD", "SMDH")
CERTAINTY = ("high", "moderate", "low", "very low")


def corresponding_risk(acr: float, effect: float, measure: str) -> float:
    """The intervention risk for control risk ``acr`` and pooled ``effect`` (reported scale)."""
    if measure == "RR":
        risk = acr * effect
    elif measure == "OR":
        risk = acr * effect / (1.0 - acr + acr * effect)
    else:
        risk = acr + effect
    return min(1.0, max(0.0, risk))


def pooled_control_risk(ma: MetaAnalysis) -> float:
    """Sum of control events / sum of control totals over the analysed studies with counts."""
    counts = [s.counts for s in ma.effects.studies if s.has_counts]
    if not counts:
        raise ModelError(
            "the assumed control risk comes from the studies' control arms, but no study gives "
            "counts: give --control-risk"
        )
    events = sum(c[2] for c in counts)
    total = sum(c[3] for c in counts)
    return events / total


def summary_of_findings(
    ma: MetaAnalysis,
    control_risks: Sequence[float] = (),
    certainty: str | None = None,
    outcome: str = "",
    model: str = "random",
    event_desirable: bool | None = None,
    comment: str = "",
) -> SummaryOfFindings:
    """The summary-of-findings rows of ``ma`` (module docstring)."""
    from ivigmeta.results import SofRow, SummaryOfFindings

    measure = ma.measure
    if measure not in RISK_MEASURES + DIFFERENCE_MEASURES:
        raise ModelError(
            f"a summary of findings is for RR, OR, RD, MD and SMD analyses, not {measure}"
        )
    if certainty is not None and certainty.lower().replace("-", " ") not in CERTAINTY:
        raise ModelError(
            f"--certainty {certainty!r}: choose high, moderate, low or very-low (GRADE)"
        )
    for r in control_risks:
        if not (0.0 < r < 1.0):
            raise ModelError(
                f"--control-risk {r:g}: a risk strictly between 0 and 1 (0.25 for 250 per 1,000)"
            )
    pooled = ma.common if model == "common" else (ma.random or ma.common)
    if pooled is None:
        est = ma.study_estimates[0]
        effect, low, high = est.estimate, est.ci_low, est.ci_high
    else:
        effect, low, high = pooled.estimate, pooled.ci_low, pooled.ci_high
    participants = sum(s.n for s in ma.effects.studies if s.n is not None) or None
    rows = []
    if measure in RISK_MEASURES:
        assumed = list(control_risks) or [pooled_control_risk(ma)]
        for i, acr in enumerate(assumed):
            cr = corresponding_risk(acr, effect, measure)
            bounds = sorted(
                (corresponding_risk(acr, low, measure), corresponding_risk(acr, high, measure))
            )
            diff = cr - acr
            d_lo, d_hi = bounds[0] - acr, bounds[1] - acr
            rows.append(
                SofRow(
                    assumed_risk=acr,
                    assumed_source="given" if control_risks else "pooled control arms",
                    corresponding_risk=cr,
                    corresponding_ci_low=bounds[0],
                    corresponding_ci_high=bounds[1],
                    difference=diff,
                    difference_ci_low=d_lo,
                    difference_ci_high=d_hi,
                    nnt=_nnt(diff),
                    nnt_kind=_kind(diff, event_desirable),
                    nnt_ci=_nnt_ci(d_lo, d_hi, event_desirable),
                    label=f"risk {i + 1}" if len(assumed) > 1 else "",
                )
            )
    return SummaryOfFindings(
        outcome=outcome or "Outcome",
        measure=measure,
        model="common" if pooled is ma.common and pooled is not None else "random",
        effect=effect,
        ci_low=low,
        ci_high=high,
        level=ma.options.level,
        k=ma.k,
        participants=participants,
        certainty=certainty.lower().replace("-", " ") if certainty else None,
        comment=comment,
        event_desirable=event_desirable,
        rows=tuple(rows),
        excluded=tuple(ma.effects.excluded),
    )


def _nnt(diff: float) -> float | None:
    return 1.0 / abs(diff) if diff != 0 else None


def _kind(diff: float, desirable: bool | None) -> str:
    if diff == 0 or desirable is None:
        return ""
    more = diff > 0
    return "benefit" if more == desirable else "harm"


def _nnt_ci(lo: float, hi: float, desirable: bool | None) -> str:
    """The CI of the NNT as text: "4 to 19" when the difference's CI keeps one side of 0; else
    through infinity (Altman 1998): "NNTH 20 to ∞ to NNTB 8" (or with "fewer events" / "more
    events" when the event's direction is not said)."""

    def n(d: float) -> str:
        return f"{math.ceil(1.0 / abs(d))}"

    def label(d: float) -> str:
        if desirable is None:
            return f"{n(d)} ({'more' if d > 0 else 'fewer'} events)"
        return f"{'NNTB' if (d > 0) == desirable else 'NNTH'} {n(d)}"

    if lo > 0 or hi < 0:
        near, far = (hi, lo) if lo > 0 else (lo, hi)
        return f"{n(near)} to {n(far)}"
    if lo == 0 and hi == 0:
        return ""
    parts = []
    if lo < 0:
        parts.append(label(lo))
    parts.append("∞")
    if hi > 0:
        parts.append(label(hi))
    return " to ".join(parts)
