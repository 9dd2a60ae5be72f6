"""Which columns say what kind of outcome a table reports (continuous means, incidence rates,
single-group proportions, correlations, single-group means) and which measures fit it.

========================  ===================================================================
continuous                ``treat_mean, treat_sd, treat_n, control_mean, control_sd,
                          control_n`` / metafor ``m1i, sd1i, n1i, m2i, sd2i, n2i`` / meta
                          ``mean.e, sd.e, n.e, mean.c, sd.c, n.c`` / RevMan ``Experimental
                          Mean, Experimental SD, Experimental Total, Control Mean, ...``
                          (also ``Intervention ...`` and ``Mean 1``, ``SD 1``, ``Total 1``)
incidence rates           ``treat_events, treat_time, control_events, control_time`` /
                          metafor ``x1i, t1i, x2i, t2i`` / meta ``event.e, time.e, event.c,
                          time.c``
proportions               ``events, total`` / metafor ``xi, ni`` / meta ``event, n``
pre-post changes          ``mean_post, mean_pre, sd_post, sd_pre, n, r`` / metafor ``m1i, m2i,
                          sd1i, sd2i, ni, ri`` (one group measured twice; m1i the post-test)
correlations              ``cor, n`` (meta's ``metacor`` names too) / metafor ``ri, ni``
one group's means         ``mean, sd, n`` (meta's ``metamean`` names too) / metafor ``mi,
                          sdi, ni``
one group's rates         ``events, time`` / metafor ``xi, ti`` / meta ``event, time``
partial correlations      ``t, n, predictors, r2`` / metafor ``ti, ni, mi, r2i`` (the t
  with R²                 statistic of a regression coefficient, the sample size, the other
                          predictors, the model's R²)
partial correlations      ``t, n, predictors`` / metafor ``ti, ni, mi``
========================  ===================================================================

Names match case-insensitively; RevMan names also ignore spaces and punctuation. The first
kind whose columns are all present decides the outcome type (2x2 counts and given effects are
recognised by :mod:`ivigmeta.io.columns`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from ivigmeta.io.columns import (  # noqa: F401 - the role tuples are this module's too
    CHANGE_ROLES,
    CONTINUOUS_ROLES,
    CORRELATION_ROLES,
    INCIDENCE_ROLES,
    MEAN_ROLES,
    PARTIAL_R2_ROLES,
    PARTIAL_ROLES,
    PROPORTION_ROLES,
    RATE_ROLES,
    Convention,
)

#: outcome type -> the measures that fit it; the first is the default (names only: io reads,
#: core.measures computes; tests check the two agree)
KIND_MEASURES: dict[str, tuple[str, ...]] = {
    "continuous": (
        "MD",
        "SMD",
        "SMDH",
        "ROM",
        "CVR",
        "VR",
        "RPB",
        "RBIS",
        "D2ORL",
        "D2ORN",
        "D2OR",
    ),
    "incidence": ("IRR", "IRD", "IRSD"),
    "proportion": ("PLO", "PR", "PAS", "PFT", "PLN"),
    "change": ("MC", "SMCC", "SMCR", "SMCRH", "ROMC"),
    "correlation": ("ZCOR", "COR", "UCOR"),
    "mean": ("MN", "MNLN", "CVLN", "SDLN"),
    "rate": ("IRLN", "IR", "IRS", "IRFT"),
    "partial_r2": ("ZPCOR", "PCOR", "SPCOR"),
    "partial": ("ZPCOR", "PCOR"),
    "counts": (
        *("RR", "OR", "RD", "AS", "PHI", "YUQ", "YUY", "OR2DN", "OR2DL"),
        *("MPRD", "MPRR", "MPOR", "MPORC", "MPPETO", "PBIT", "RTET"),
    ),  # fmt: skip
}


def _revman(prefixes: Sequence[str], suffix: str) -> dict[str, str]:
    return dict(zip(CONTINUOUS_ROLES, [f"{p} {w}" for p in prefixes for w in suffix.split()]))


OUTCOME_CONVENTIONS: dict[str, tuple[Convention, ...]] = {
    "continuous": (
        Convention("ivigmeta's", dict(zip(CONTINUOUS_ROLES, CONTINUOUS_ROLES))),
        Convention(
            "metafor's", dict(zip(CONTINUOUS_ROLES, ("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i")))
        ),
        Convention(
            "meta's",
            dict(zip(CONTINUOUS_ROLES, ("mean.e", "sd.e", "n.e", "mean.c", "sd.c", "n.c"))),
        ),
        Convention("RevMan", _revman(("Experimental", "Control"), "Mean SD Total"), fuzzy=True),
        Convention("RevMan", _revman(("Intervention", "Control"), "Mean SD Total"), fuzzy=True),
        Convention(
            "RevMan",
            dict(zip(CONTINUOUS_ROLES, ("Mean 1", "SD 1", "Total 1", "Mean 2", "SD 2", "Total 2"))),
            fuzzy=True,
        ),
    ),
    "incidence": (
        Convention("ivigmeta's", dict(zip(INCIDENCE_ROLES, INCIDENCE_ROLES))),
        Convention("metafor's", dict(zip(INCIDENCE_ROLES, ("x1i", "t1i", "x2i", "t2i")))),
        Convention(
            "meta's", dict(zip(INCIDENCE_ROLES, ("event.e", "time.e", "event.c", "time.c")))
        ),
    ),
    "proportion": (
        Convention("ivigmeta's", dict(zip(PROPORTION_ROLES, PROPORTION_ROLES))),
        Convention("metafor's", dict(zip(PROPORTION_ROLES, ("xi", "ni")))),
        Convention("meta's", dict(zip(PROPORTION_ROLES, ("event", "n")))),
    ),
    # One group measured twice. Before correlations, whose metafor names (ri, ni) it contains:
    # a table with all six of these columns is a pre-post table. After the kinds above: a
    # two-group table (m1i, sd1i, n1i, ...) stays continuous whatever else it has.
    "change": (
        Convention("ivigmeta's", dict(zip(CHANGE_ROLES, CHANGE_ROLES))),
        Convention(
            "metafor's", dict(zip(CHANGE_ROLES, ("m1i", "m2i", "sd1i", "sd2i", "ni", "ri")))
        ),
    ),
    # After the kinds above: a table that has their columns is read as before. meta's
    # metacor (cor, n) and metamean (mean, sd, n) use ivigmeta's own names.
    "correlation": (
        Convention("ivigmeta's", dict(zip(CORRELATION_ROLES, CORRELATION_ROLES))),
        Convention("metafor's", dict(zip(CORRELATION_ROLES, ("ri", "ni")))),
    ),
    "mean": (
        Convention("ivigmeta's", dict(zip(MEAN_ROLES, MEAN_ROLES))),
        Convention("metafor's", dict(zip(MEAN_ROLES, ("mi", "sdi", "ni")))),
    ),
    # Last: a table with the columns of any kind above (events and a total, say) reads as before.
    "rate": (
        Convention("ivigmeta's", dict(zip(RATE_ROLES, RATE_ROLES))),
        Convention("metafor's", dict(zip(RATE_ROLES, ("xi", "ti")))),
        Convention("meta's", dict(zip(RATE_ROLES, ("event", "time")))),
    ),
    # After all of the above: a table with a kind's columns above reads as before (metafor's
    # ti, ni, mi share ti with one group's rates and mi, ni with one group's means). With the
    # model's R² first: such a table takes SPCOR as well.
    "partial_r2": (
        Convention("ivigmeta's", dict(zip(PARTIAL_R2_ROLES, PARTIAL_R2_ROLES))),
        Convention("metafor's", dict(zip(PARTIAL_R2_ROLES, ("ti", "ni", "mi", "r2i")))),
    ),
    "partial": (
        Convention("ivigmeta's", dict(zip(PARTIAL_ROLES, PARTIAL_ROLES))),
        Convention("metafor's", dict(zip(PARTIAL_ROLES, ("ti", "ni", "mi")))),
    ),
}


def squash(name: str) -> str:
    """A header name without case, spaces and punctuation (RevMan's exports vary in both)."""
    return re.sub(r"[^0-9a-z]", "", name.lower())


def match(conv: Convention, header: Sequence[str]) -> dict[str, str] | None:
    """role -> the header's own column name when every column of ``conv`` is present."""
    key = squash if conv.fuzzy else str.lower
    found = {key(h.strip()): h for h in header}
    out = {}
    for role, name in conv.columns.items():
        h = found.get(key(name))
        if h is None:
            return None
        out[role] = h
    return out


def detect_outcome(header: Sequence[str]) -> tuple[str, Convention, dict[str, str]] | None:
    """``(kind, convention, role -> column)`` of the first complete outcome convention, if any."""
    for kind, conventions in OUTCOME_CONVENTIONS.items():
        for conv in conventions:
            roles = match(conv, header)
            if roles is not None:
                return kind, conv, roles
    return None


def explicit_kind(explicit: dict[str, str] | None, header: Sequence[str] = ()) -> str | None:
    """The outcome kind ``--columns`` names roles of (``treat_time`` for rates, ``treat_mean``
    and the like for means, ``events``/``total`` for proportions, ``cor`` for correlations,
    ``mean``/``sd`` for one group's means, ``mean_post`` and the like for pre-post changes,
    ``time`` for one group's rates (``events`` alone too when the header has a time and no
    total), ``t``/``predictors`` for partial correlations (``partial_r2`` with ``r2``, named or
    in the header), or None. ``n`` alone (correlations, one group's means and changes share it) is a change when
    the header has a change's columns, a correlation when it has ``cor`` or ``ri``, else a
    mean."""
    given = set(explicit or ())
    if given & {"t", "predictors", "r2"}:
        names = {h.strip().lower() for h in header if h}
        return "partial_r2" if "r2" in given or names & {"r2", "r2i"} else "partial"
    if "time" in given:
        return "rate"
    if given & (set(CHANGE_ROLES) - {"n"}):
        return "change"
    if given & {"treat_time", "control_time"}:
        return "incidence"
    if given & set(CONTINUOUS_ROLES):
        return "continuous"
    if given & set(PROPORTION_ROLES):
        names = {h.strip().lower() for h in header if h}
        if "total" not in given and names & {"time", "ti"} and not names & {"total", "ni", "n"}:
            return "rate"
        return "proportion"
    if "cor" in given:
        return "correlation"
    if given & {"mean", "sd"}:
        return "mean"
    if "n" in given:
        names = {h.strip().lower() for h in header if h}
        if any(match(conv, header) for conv in OUTCOME_CONVENTIONS["change"]):
            return "change"
        if not names & {"cor", "ri", "mean", "sd", "mi", "sdi"}:
            for kind in ("partial_r2", "partial"):
                if any(match(conv, header) for conv in OUTCOME_CONVENTIONS[kind]):
                    return kind
        return "correlation" if names & {"cor", "ri"} else "mean"
    return None


def explicit_outcome(
    kind: str, header: Sequence[str], explicit: dict[str, str]
) -> tuple[Convention, dict[str, str]]:
    """``(convention, role -> column)`` for a table of ``kind`` whose columns ``--columns``
    names: roles it does not name are found by a convention's names (``m1i``, ``mean.e``, ...);
    a role neither names is a DataError listing what to give."""
    from ivigmeta.errors import DataError

    wanted = OUTCOME_ROLES[kind]
    roles = {r: explicit[r] for r in wanted if r in explicit}
    lower = {h.strip().lower(): h for h in header if h}
    for role in wanted:
        if role in roles:
            continue
        for conv in OUTCOME_CONVENTIONS[kind]:
            h = lower.get(conv.columns[role].lower())
            if h is not None and h not in roles.values():
                roles[role] = h
                break
    missing = [r for r in wanted if r not in roles]
    if missing:
        raise DataError(
            f"--columns: {', '.join(missing)} not given (a table of {kind} data needs "
            f"{', '.join(wanted)})"
        )
    roles = {r: roles[r] for r in wanted}
    return Convention("--columns", roles), roles


def default_measure(kind: str) -> str:
    """MD for continuous, IRR for incidence, PLO for proportions, MC for pre-post changes, ZCOR
    for correlations, MN for one group's means, IRLN for one group's rates, ZPCOR for partial
    correlations, RR for 2x2 counts."""
    return KIND_MEASURES[kind][0]


def measure_for(kind: str, measure: str | None, described: str = "") -> str:
    """The analysis measure for a table of ``kind``: ``measure`` upper-cased, or the default;
    a measure that does not fit the columns is a :class:`~ivigmeta.errors.DataError` naming both."""
    from ivigmeta.errors import DataError

    if measure is None:
        return default_measure(kind)
    m = measure.upper()
    fits = KIND_MEASURES[kind]
    if m not in fits:
        cols = f" ({described})" if described else ""
        raise DataError(
            f"--measure {m} does not fit the columns: they give {kind} data{cols}, "
            f"which takes {', '.join(fits)}"
        )
    return m


#: role -> (lowest allowed value, whether the bound itself is allowed, what the value is)
_BOUNDS: dict[str, tuple[float, bool, str]] = {
    "treat_sd": (0.0, False, "a standard deviation must be > 0"),
    "control_sd": (0.0, False, "a standard deviation must be > 0"),
    "treat_n": (2.0, True, "a group needs at least 2 participants for an SD"),
    "control_n": (2.0, True, "a group needs at least 2 participants for an SD"),
    "treat_time": (0.0, False, "person-time must be > 0"),
    "control_time": (0.0, False, "person-time must be > 0"),
    "treat_events": (0.0, True, "events cannot be negative"),
    "control_events": (0.0, True, "events cannot be negative"),
    "events": (0.0, True, "events cannot be negative"),
    "total": (1.0, True, "a total must be at least 1"),
    "sd": (0.0, False, "a standard deviation must be > 0"),
    "n": (2.0, True, "a group needs at least 2 participants for an SD"),
    "sd_post": (0.0, False, "a standard deviation must be > 0"),
    "sd_pre": (0.0, False, "a standard deviation must be > 0"),
    "time": (0.0, False, "person-time must be > 0"),
}

#: bounds of a kind's roles that differ from :data:`_BOUNDS` (``n`` of a correlation: escalc
#: gives no sampling variance for n <= 3, whatever the measure)
_KIND_BOUNDS: dict[str, dict[str, tuple[float, bool, str]]] = {
    "partial": {
        "n": (0.0, False, "a sample size must be > 0"),
        "predictors": (0.0, True, "the number of other predictors cannot be negative"),
    },
    "partial_r2": {
        "n": (0.0, False, "a sample size must be > 0"),
        "predictors": (0.0, True, "the number of other predictors cannot be negative"),
        "r2": (0.0, True, "an R² cannot be negative"),
    },
    "correlation": {
        "n": (3.0, False, "a correlation's sampling variance needs a sample size n > 3"),
    },
}


#: outcome kind -> its roles
OUTCOME_ROLES: dict[str, tuple[str, ...]] = {
    "continuous": CONTINUOUS_ROLES,
    "incidence": INCIDENCE_ROLES,
    "proportion": PROPORTION_ROLES,
    "correlation": CORRELATION_ROLES,
    "mean": MEAN_ROLES,
    "change": CHANGE_ROLES,
    "rate": RATE_ROLES,
    "partial_r2": PARTIAL_R2_ROLES,
    "partial": PARTIAL_ROLES,
}


def parse_outcome_row(
    values: dict[str, str],
    roles: dict[str, str],
    source: str,
    row: int,
    number: Callable[[str], float | None] | None = None,
    kind: str | None = None,
) -> dict[str, float]:
    """role -> number for one row of an outcome table of ``kind`` (None: told by the roles); a
    missing, non-numeric or impossible value (SD <= 0, n < 2, time <= 0, events > total, a
    correlation beyond [-1, 1] or with n <= 3, a pre-post correlation r beyond [-1, 1], a partial
    correlation's n <= predictors + 1) is a one-line :class:`~ivigmeta.errors.DataError`
    naming the row and the column."""
    import math

    from ivigmeta.errors import DataError, MissingValueError

    if kind is None:
        kind = "correlation" if "cor" in roles else None
    bounds = {**_BOUNDS, **_KIND_BOUNDS.get(kind or "", {})}
    out: dict[str, float] = {}
    for role, col in roles.items():
        where = f"{source}, row {row}, column '{col}'"
        text = (values.get(col) or "").strip()
        if not text:
            raise MissingValueError(f"{where}: missing value (expected a number for {role})", col)
        if number is not None:
            parsed = number(text)
            if parsed is None:
                if text.lstrip("+-").lower() in ("inf", "infinity"):
                    raise DataError(f"{where}: '{text}' is not a finite number")
                raise DataError(f"{where}: '{text}' is not a number (expected a number for {role})")
            x = parsed
        else:
            try:
                x = float(text)
            except ValueError:
                raise DataError(f"{where}: '{text}' is not a number") from None
        if not math.isfinite(x):
            raise DataError(f"{where}: '{text}' is not a finite number")
        bound = bounds.get(role)
        if bound is not None:
            low, inclusive, why = bound
            if x < low or (x == low and not inclusive):
                raise DataError(f"{where}: '{text}' is not allowed ({why})")
        if role == "r2" and x > 1:
            raise DataError(f"{where}: '{text}' is not an R² (expected a value between 0 and 1)")
        if role in ("cor", "r") and abs(x) > 1:
            raise DataError(
                f"{where}: '{text}' is not a correlation (expected a value between -1 and 1)"
            )
        out[role] = x
    if kind in ("partial", "partial_r2") and "n" in out and "predictors" in out:
        if out["n"] - out["predictors"] - 1 <= 0:
            raise DataError(
                f"{source}, row {row}, column '{roles['n']}': '{values[roles['n']].strip()}' is "
                f"not allowed (a partial correlation needs n - predictors - 1 > 0, with "
                f"{values[roles['predictors']].strip()} other predictors)"
            )
    if "events" in out and "total" in out and out["events"] > out["total"]:
        raise DataError(
            f"{source}, row {row}, column '{roles['events']}': {values[roles['events']].strip()} "
            f"events among {values[roles['total']].strip()} (events cannot exceed the total)"
        )
    return out
