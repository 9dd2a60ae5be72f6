"""Effect sizes and sampling variances from 2x2 counts (metafor's ``escalc``).

For study i with a events among n1 treated and c events among n2 controls (b = n1 - a,
d = n2 - c non-events), after the continuity correction described below:

* RR (log risk ratio): yi = log(a / n1) - log(c / n2), vi = 1/a - 1/n1 + 1/c - 1/n2
* OR (log odds ratio): yi = log(a d / (b c)),        vi = 1/a + 1/b + 1/c + 1/d
* RD (risk difference): yi = a / n1 - c / n2,          vi = p1 (1 - p1) / n1 + p2 (1 - p2) / n2
* PHI, YUQ, YUY, OR2DN, OR2DL: :mod:`ivigmeta.core.measures` (the last four corrected as OR;
  PHI, as escalc, not corrected under ``only0``)
* MPRD, MPRR, MPOR, MPORC, MPPETO (matched pairs): the four cells read as the table of pairs
  (a = ai, b = n1 - a = bi, c = ci, d = n2 - c = di), corrected as OR, never a double zero
* PBIT (probit difference): :mod:`ivigmeta.core.measures`, corrected and double-zero-dropped as OR
* RTET (tetrachoric correlation): :mod:`ivigmeta.core.measures`, as PHI (not corrected under
  ``only0``, never a double zero: a table without events in either arm has an empty margin)

Continuity correction (``cc``, default 0.5) with ``cc_policy``:

* ``only0`` (default; metafor ``to="only0"``, CMA): add ``cc`` to all four cells of any study with
  a zero cell, events or non-events (so n1 and n2 grow by 2 cc);
* ``all``: add it to every study; ``none``: never (a study whose effect or variance is then
  undefined is excluded, with the reason).

Double-zero studies (no events in either arm; for OR also events in every participant of both
arms) carry no information on a ratio scale. With ``keep_double_zero=False`` (the CLI default, as
meta's ``metabin``, metan and metafor's ``rma.mh``) they are excluded from RR and OR analyses and
listed with the reason; the library default ``True`` keeps them with the continuity correction, as
metafor's ``escalc`` (``drop00 = FALSE``). RD always keeps them.

Rows that report an effect instead of counts (:class:`~ivigmeta.io.studies.GivenEffect`) enter on the
analysis scale: from a 95% CI on the reported scale, yi = log(estimate) and
se = (log(ci_high) - log(ci_low)) / (2 z_0.975) for RR and OR (identity scale for RD); from
``theta, se``: vi = se²; from ``yi, vi`` as given. They must use the analysis' measure.

References: Deeks & Higgins, Statistical algorithms in Review Manager 5 (2010); Viechtbauer (2010),
metafor's ``escalc`` documentation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ivigmeta.core.distributions import z_crit
from ivigmeta.core.measures import ALL_MEASURES, LOG_SCALE, ODDS_FAMILY, PAIRED, kind_of
from ivigmeta.errors import DataError

if TYPE_CHECKING:  # imported where used: ``--help`` needs neither numpy nor the result classes
    import numpy as np

    from ivigmeta.io.studies import Study
    from ivigmeta.results import EffectSizes, Exclusion

MEASURES = ALL_MEASURES
CC_POLICIES = ("only0", "all", "none")


def normalize_measure(measure: str) -> str:
    """Upper-case a measure name and check it is known."""
    m = measure.upper()
    if m not in MEASURES:
        raise DataError(f"unknown measure '{measure}' (choose one of {', '.join(MEASURES)})")
    return m


GIVEN_CI_LEVEL = 0.95


@dataclass(frozen=True)
class CountEffects:
    """Effect sizes of many 2x2 tables at once (one value per row)."""

    yi: np.ndarray
    vi: np.ndarray
    #: the study enters the analysis (finite effect, positive variance, not a dropped double zero)
    ok: np.ndarray
    has_zero: np.ndarray
    added: np.ndarray
    #: left out as a double zero (only when double zeros are not kept)
    double_zero: np.ndarray


def count_effects(
    a: np.ndarray,
    n1: np.ndarray,
    c: np.ndarray,
    n2: np.ndarray,
    measure: str,
    cc: float = 0.5,
    cc_policy: str = "only0",
    keep_double_zero: bool = True,
) -> CountEffects:
    """``yi``, ``vi`` of every row of counts (the module docstring gives the formulas).

    Without ``keep_double_zero`` a ratio analysis leaves out studies with no events in either arm
    (and, for OR and the measures computed from it, YUQ, YUY, OR2DN, OR2DL, events in every
    participant of both arms). PHI and RTET, as escalc, are not corrected under ``only0``. The
    matched-pairs measures read the cells as the table of pairs and keep every table (escalc's
    ``drop00 = FALSE``).
    """
    import numpy as np

    from ivigmeta.core import measures as m

    a, n1, c, n2 = (np.asarray(x, dtype=float) for x in (a, n1, c, n2))
    if keep_double_zero or measure in ("RD", "PHI", "RTET") + PAIRED:
        double_zero = np.zeros(a.shape, bool)
    else:
        double_zero = (a == 0) & (c == 0)
        if measure in ODDS_FAMILY + ("PBIT",):
            double_zero |= (a == n1) & (c == n2)
    b, d = n1 - a, n2 - c
    has_zero = (a == 0) | (b == 0) | (c == 0) | (d == 0)
    if cc_policy == "all":
        add = np.full(a.shape, float(cc))
    elif cc_policy == "only0" and measure not in ("PHI", "RTET"):
        add = np.where(has_zero, float(cc), 0.0)
    else:
        add = np.zeros(a.shape)
    a, b, c, d = a + add, b + add, c + add, d + add
    n1, n2 = a + b, c + d
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if measure == "RR":
            yi = np.log(a / n1) - np.log(c / n2)
            # b / (a n1) = 1/a - 1/n1 without the cancellation that loses it when a is near n1.
            vi = b / (a * n1) + d / (c * n2)
        elif measure == "OR":
            yi = np.log(a) + np.log(d) - np.log(b) - np.log(c)
            vi = 1 / a + 1 / b + 1 / c + 1 / d
        elif measure in ODDS_FAMILY:
            yi, vi = m.odds_family(a, b, c, d, measure)
        elif measure == "PHI":
            yi, vi = m.phi_coefficient(a, b, c, d)
        elif measure in PAIRED:
            yi, vi = m.matched_pairs(a, b, c, d, measure)
        elif measure == "PBIT":
            yi, vi = m.probit_difference(a, n1, c, n2)
        elif measure == "RTET":
            yi, vi = m.tetrachoric(a, b, c, d)
        else:
            p1, p2 = a / n1, c / n2
            yi = p1 - p2
            vi = p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2
        # A variance so small that its weight 1 / v overflows (a continuity correction of 1e-320)
        # counts as zero: no analysis can use it.
        usable_v = np.isfinite(vi) & (vi > 0) & np.isfinite(1.0 / vi)
    ok = np.isfinite(yi) & usable_v & ~double_zero
    return CountEffects(yi, vi, ok, has_zero, add, double_zero)


def rr_events_totals(
    a: np.ndarray,
    n1: np.ndarray,
    c: np.ndarray,
    n2: np.ndarray,
    added: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """log RR and its variance with meta's default correction (``metabin``, ``RR.Cochrane =
    FALSE``): the increment goes to the events and the totals of each arm, not to all four cells.

    yi = log((a + cc) / (n1 + cc)) - log((c + cc) / (n2 + cc)); vi = 1/(a + cc) - 1/(n1 + cc) +
    1/(c + cc) - 1/(n2 + cc), with the events' increment dropped from the variance when both arms
    have all events. Rows with ``added`` 0 get the plain log RR.
    """
    import numpy as np

    a, n1, c, n2, add = (np.asarray(x, dtype=float) for x in (a, n1, c, n2, added))
    ev = np.where((a == n1) & (c == n2), 0.0, add)
    with np.errstate(divide="ignore", invalid="ignore"):
        yi = np.log((a + add) / (n1 + add)) - np.log((c + add) / (n2 + add))
        vi = 1 / (a + ev) - 1 / (n1 + add) + 1 / (c + ev) - 1 / (n2 + add)
    return yi, vi


#: the data columns of each kind of table, in the order :func:`data_effects` takes them
DATA_ROLES: dict[str, tuple[str, ...]] = {
    "counts": ("treat_events", "treat_total", "control_events", "control_total"),
    "continuous": ("treat_mean", "treat_sd", "treat_n", "control_mean", "control_sd", "control_n"),
    "incidence": ("treat_events", "treat_time", "control_events", "control_time"),
    "proportion": ("events", "total"),
    "change": ("mean_post", "mean_pre", "sd_post", "sd_pre", "n", "r"),
    "correlation": ("cor", "n"),
    "mean": ("mean", "sd", "n"),
    "rate": ("events", "time"),
    "partial_r2": ("t", "n", "predictors", "r2"),
    "partial": ("t", "n", "predictors"),
}


def data_effects(
    kind: str,
    cols: np.ndarray,
    measure: str,
    cc: float = 0.5,
    cc_policy: str = "only0",
    keep_double_zero: bool = True,
) -> CountEffects:
    """``yi``, ``vi`` of every row of a table of ``kind`` (``cols``: one row per study, the
    columns of :data:`DATA_ROLES` [kind]): the one place that picks the formula for a measure,
    for ``pool`` (one table) and ``batch`` (every group at once)."""
    import numpy as np

    from ivigmeta.core import measures as m

    cols = np.asarray(cols, dtype=float).reshape(-1, len(DATA_ROLES[kind]))
    n = len(cols)
    none = np.zeros(n, bool)
    if kind == "counts" and measure != "AS":
        a, n1, c, n2 = cols.T
        return count_effects(a, n1, c, n2, measure, cc, cc_policy, keep_double_zero)
    added = np.zeros(n)
    if kind == "counts":
        yi, vi = m.arcsine_difference(*cols.T)
    elif kind == "continuous":
        m1, s1, n1, m2, s2, n2 = cols.T
        yi, vi = m.continuous_effects(m1, s1, n1, m2, s2, n2, measure)
    elif kind == "incidence":
        x1, t1, x2, t2 = cols.T
        yi, vi, added = m.incidence_effects(x1, t1, x2, t2, measure, cc, cc_policy)
    elif kind == "correlation":
        yi, vi = m.correlation_effects(cols[:, 0], cols[:, 1], measure)
    elif kind == "mean":
        yi, vi = m.mean_effects(cols[:, 0], cols[:, 1], cols[:, 2], measure)
    elif kind == "rate":
        yi, vi, added = m.rate_effects(cols[:, 0], cols[:, 1], measure, cc, cc_policy)
    elif kind in ("partial", "partial_r2"):
        r2 = cols[:, 3] if kind == "partial_r2" else None
        yi, vi = m.partial_effects(cols[:, 0], cols[:, 1], cols[:, 2], measure, r2)
    elif kind == "change":
        m1, m2, s1, s2, nn, r = cols.T
        yi, vi = m.change_effects(m1, m2, s1, s2, nn, r, measure)
    else:
        yi, vi, added = m.proportion_effects(cols[:, 0], cols[:, 1], measure, cc, cc_policy)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ok = np.isfinite(yi) & np.isfinite(vi) & (vi > 0) & np.isfinite(1.0 / vi)
    return CountEffects(yi, vi, ok, none, added, none.copy())


def pft_sizes(kind: str, cols: np.ndarray) -> np.ndarray:
    """The sample sizes PFT's back-transformation averages (harmonic mean): the totals."""
    return cols[:, DATA_ROLES[kind].index("total")]


def undefined_reason(
    measure: str, has_zero: bool, added: float, cells: Sequence[float] | None = None
) -> str:
    """Why a study's effect is undefined (the same words for pool and batch); ``cells`` are the
    (corrected) a, b, c, d of a 2x2 table, which RTET's reasons name."""
    if measure == "RTET" and cells is not None:
        return tetrachoric_reason(*cells)
    if has_zero:
        return f"{measure} undefined: zero cell(s) with continuity correction {added:g}"
    return f"{measure} has zero sampling variance"


def tetrachoric_reason(a: float, b: float, c: float, d: float) -> str:
    """Why RTET leaves out a table (:func:`ivigmeta.core.measures.tetrachoric`'s edge cases)."""
    margins = {"a + b": a + b, "c + d": c + d, "a + c": a + c, "b + d": b + d}
    empty = [name for name, total in margins.items() if total == 0]
    if empty:
        return (
            f"RTET undefined: an empty margin ({empty[0]} = 0) leaves the tetrachoric correlation "
            "unidentified (metafor: yi = 0, vi = Inf)"
        )
    if b == 0 and c == 0:
        return "RTET is 1 with zero sampling variance (b = c = 0: perfect association)"
    if a == 0 and d == 0:
        return "RTET is -1 with zero sampling variance (a = d = 0: perfect inverse association)"
    zero = next((name for name, cell in zip("abcd", (a, b, c, d)) if cell == 0), None)
    if zero is None:  # every cell positive: a variance beyond double precision (|rho| ~ 1)
        return "RTET has no usable sampling variance for this table (|rho| within rounding of 1)"
    sign = "1" if zero in "bc" else "-1"
    return (
        f"RTET is {sign} with no finite sampling variance ({zero} = 0: the likelihood is "
        f"maximised on the boundary rho = {sign})"
    )


def check_effect_options(measure: str, cc: float, cc_policy: str) -> str:
    """Validate the effect-size options; returns the normalized measure."""
    measure = normalize_measure(measure)
    if cc_policy not in CC_POLICIES:
        raise DataError(
            f"unknown continuity-correction policy '{cc_policy}' "
            f"(choose one of {', '.join(CC_POLICIES)})"
        )
    if not (cc >= 0 and math.isfinite(cc)):
        raise DataError(f"the continuity correction must be a non-negative number, not {cc}")
    return measure


def table_measure(studies: Sequence[Study], measure: str | None) -> str:
    """The analysis measure for ``studies``: ``measure`` (checked against the kind of data the
    rows give), or the default for that kind (RR for 2x2 counts and effects, MD for means, IRR
    for rates, PLO for proportions, MC for pre-post changes, ZCOR for correlations, MN for one
    group's means, IRLN for one group's rates)."""
    kinds = {s.outcome_kind or "counts" for s in studies}
    kind = kinds.pop() if len(kinds) == 1 else "counts"
    return kind_measure(kind, measure, next((s.file for s in studies if s.file), ""))


def kind_measure(kind: str, measure: str | None, where: str = "") -> str:
    """The analysis measure for a table of ``kind`` (``where`` names it in the error): pool's
    rule, and batch's for a whole file."""
    from ivigmeta.core.measures import DEFAULT_MEASURE, KINDS

    if measure is None:
        return DEFAULT_MEASURE[kind]
    m = normalize_measure(measure)
    if m == "SPCOR" and kind == "partial":
        raise DataError(
            f"{where + ': ' if where else ''}--measure SPCOR needs each study's model R²: the "
            "table of partial correlations has no r2 column (metafor: r2i)"
        )
    if m not in KINDS[kind]:
        what = {
            "counts": "2x2 event counts (or given effects)",
            "partial_r2": "partial data (with the model's R²)",
        }.get(kind, f"{kind} data")
        raise DataError(
            f"{where + ': ' if where else ''}--measure {m} does not fit the columns: they give "
            f"{what}, which take {', '.join(KINDS[kind])}"
        )
    return m


def compute_effects(
    studies: Sequence[Study],
    measure: str | None = "RR",
    cc: float = 0.5,
    cc_policy: str = "only0",
    keep_double_zero: bool = True,
) -> EffectSizes:
    """Compute ``yi`` and ``vi`` for every study; studies whose effect is undefined are excluded.

    Parameters
    ----------
    studies : the validated study rows.
    measure : ``RR``, ``OR`` or ``RD``.
    cc : continuity correction added to each cell.
    cc_policy : ``only0`` (studies with a zero cell), ``all`` or ``none``.
    keep_double_zero : keep double-zero studies in RR and OR analyses (with the correction);
        ``False`` excludes them with the reason.
    """
    import numpy as np

    from ivigmeta.results import EffectSizes, Exclusion

    measure = check_effect_options(table_measure(studies, measure), cc, cc_policy)
    if any(s.outcome is not None for s in studies):
        return _outcome_effects(studies, measure, cc, cc_policy)
    counted = [s for s in studies if s.has_counts]
    if counted:
        fx = data_effects(
            "counts",
            np.array([s.counts for s in counted], dtype=float),
            measure,
            cc,
            cc_policy,
            keep_double_zero,
        )
    by_id = {id(s): i for i, s in enumerate(counted)}
    kept: list[Study] = []
    yi: list[float] = []
    vi: list[float] = []
    added: list[float] = []
    excluded: list[Exclusion] = []
    for study in studies:
        if not study.has_counts:
            y, v = given_effect(study, measure)
            kept.append(study)
            yi.append(y)
            vi.append(v)
            added.append(0.0)
            continue
        i = by_id[id(study)]
        if fx.double_zero[i]:
            excluded.append(
                Exclusion(study.study, double_zero_reason(study, measure) or "", study.row, study)
            )
            continue
        if not fx.ok[i]:
            a, n1, c, n2, add = (*study.counts, float(fx.added[i]))
            cells = (a + add, n1 - a + add, c + add, n2 - c + add)
            reason = undefined_reason(measure, bool(fx.has_zero[i]), float(fx.added[i]), cells)
            excluded.append(Exclusion(study.study, reason, study.row, study))
            continue
        kept.append(study)
        yi.append(float(fx.yi[i]))
        vi.append(float(fx.vi[i]))
        added.append(float(fx.added[i]))
    return EffectSizes(
        measure=measure,
        studies=tuple(kept),
        yi=tuple(yi),
        vi=tuple(vi),
        cc_added=tuple(added),
        cc=cc,
        cc_policy=cc_policy,
        excluded=tuple(excluded),
    )


def _outcome_effects(
    studies: Sequence[Study], measure: str, cc: float, cc_policy: str
) -> EffectSizes:
    """Effect sizes of rows of means, rates, proportions or correlations
    (:mod:`ivigmeta.core.measures`);
    a row whose effect or variance is undefined (ROM with means of opposite signs, say) is
    excluded with the reason."""
    import numpy as np

    from ivigmeta.core import measures as m
    from ivigmeta.results import EffectSizes, Exclusion

    kinds = {s.outcome_kind or "" for s in studies}
    kind = kinds.pop() if len(kinds) == 1 and "" not in kinds else kind_of(measure)
    cols = np.asarray(
        [[s.outcome[r] for r in DATA_ROLES[kind]] for s in studies],  # type: ignore[index]
        dtype=np.float64,
    ).reshape(-1, len(DATA_ROLES[kind]))
    fx = data_effects(kind, cols, measure, cc, cc_policy)
    yi, vi, added = fx.yi, fx.vi, fx.added
    kept, excluded = [], []
    for i, study in enumerate(studies):
        if fx.ok[i]:
            kept.append(i)
        else:
            excluded.append(Exclusion(study.study, _outcome_reason(study, measure), study.row))
    name: str = measure
    if measure == "PFT" and kept:
        # metafor's transf.ipft.hm: the harmonic mean of the (analysed) studies' sizes
        name = m.ScaledMeasure("PFT", float(1 / np.mean(1 / pft_sizes(kind, cols)[kept])))
    return EffectSizes(
        measure=name,
        studies=tuple(studies[i] for i in kept),
        yi=tuple(float(yi[i]) for i in kept),
        vi=tuple(float(vi[i]) for i in kept),
        cc_added=tuple(float(added[i]) for i in kept),
        cc=cc,
        cc_policy=cc_policy,
        excluded=tuple(excluded),
    )


def _outcome_reason(study: Study, measure: str) -> str:
    o = study.outcome or {}
    if measure == "ROM" and not o.get("treat_mean", 0) * o.get("control_mean", 0) > 0:
        return "ROM undefined: the log ratio of means needs two means of the same sign, not zero"
    if measure in ("IRR", "PLN", "PLO", "IRD", "IR", "IRLN"):
        return f"{measure} undefined: zero events with continuity correction 0"
    if measure == "PR":
        return "PR has zero sampling variance (a proportion of 0 or 1 with continuity correction 0)"
    if measure in ("ZCOR", "COR", "UCOR") and abs(o.get("cor", 0.0)) == 1:
        what = "is infinite" if measure == "ZCOR" else "has zero sampling variance"
        return f"{measure} {what} for a correlation of {o['cor']:g}"
    if measure == "UCOR" and o.get("n", 5) <= 4:
        return "UCOR undefined: the unbiased correlation needs a sample size n > 4"
    if measure == "MNLN" and not o.get("mean", 0) > 0:
        return "MNLN undefined: the log of a mean needs a positive mean"
    if measure == "CVLN" and not o.get("mean", 0) > 0:
        return "CVLN undefined: the log coefficient of variation needs a positive mean"
    if measure == "CVR" and not (o.get("treat_mean", 0) > 0 and o.get("control_mean", 0) > 0):
        return "CVR undefined: the log coefficient of variation ratio needs two positive means"
    if measure == "ROMC" and not o.get("mean_post", 0) * o.get("mean_pre", 0) > 0:
        return "ROMC undefined: the log ratio of means needs two means of the same sign, not zero"
    if measure in ("SMCC", "SMCR", "SMCRH") and o.get("n", 3) <= 2:
        return f"{measure} undefined: the small-sample correction needs n > 2"
    if measure in ("MC", "SMCC") and study.outcome_kind == "change":
        return (
            f"{measure} undefined: the change scores have zero SD (r = {o.get('r', 0):g} "
            "with equal SDs)"
        )
    return f"{measure} is undefined or has zero sampling variance for this row"


def double_zero_reason(study: Study, measure: str) -> str | None:
    """Why a double-zero study is left out of a ratio analysis; ``None`` if it is not one."""
    if measure in ("RD", "AS", "PHI", "RTET") + PAIRED or not study.has_counts:
        return None
    a, n1, c, n2 = study.counts
    if a == 0 and c == 0:
        return (
            f"no events in either arm (double zero): {measure} is not estimable "
            "(--keep-double-zero keeps it with the continuity correction)"
        )
    if measure in ODDS_FAMILY + ("PBIT",) and a == n1 and c == n2:
        return (
            f"events in every participant of both arms: {measure} is not estimable "
            "(--keep-double-zero keeps it with the continuity correction)"
        )
    return None


def _raw(study: Study, column: str, value: float) -> str:
    """The cell as written in the file (messages quote what the user typed)."""
    return study.fields.get(column) or f"{value:g}"


def given_effect(study: Study, measure: str) -> tuple[float, float]:
    """``(yi, vi)`` on the analysis scale from the effect a row reports instead of counts."""
    g = study.given
    if g is None:
        raise DataError(f"{study.file or 'input'}, row {study.row}: no counts and no effect given")
    if g.measure is not None and g.measure != measure:
        raise DataError(
            f"{study.where(g.measure_column or 'measure')}: '{g.measure}' but the analysis measure is "
            f"{measure} (expected {measure}: an effect reported as {g.measure} cannot be "
            f"converted to {measure}; use --measure {g.measure} or give counts)"
        )
    if g.kind == "ci":
        est, lo, hi = g.values
        if measure in LOG_SCALE:
            for value, col in zip(g.values, g.columns):
                if not value > 0:
                    raise DataError(
                        f"{study.where(col)}: '{_raw(study, col, value)}' is not positive (expected a ratio {measure} "
                        f"and its CI bounds > 0; is this effect on the {measure} scale?)"
                    )
            y, low, high = math.log(est), math.log(lo), math.log(hi)
        elif measure == "RD":
            for value, col in zip(g.values, g.columns):
                if not -1 <= value <= 1:
                    raise DataError(
                        f"{study.where(col)}: '{_raw(study, col, value)}' is not a risk difference "
                        "(expected a value between -1 and 1)"
                    )
            y, low, high = est, lo, hi
        else:
            y, low, high = est, lo, hi
        se = (high - low) / (2 * z_crit(GIVEN_CI_LEVEL))
        v = se * se
        if not v > 0:
            raise DataError(
                f"{study.where(g.columns[2])}: the CI is too narrow to derive a variance "
                "(expected ci_low < ci_high)"
            )
        return y, v
    if g.kind == "se":
        return g.values[0], g.values[1] ** 2
    return g.values[0], g.values[1]
