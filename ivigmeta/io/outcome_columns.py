"""Which columns say what kind of outcome a table reports (continuous means, incidence rates,
single-group proportions) and which measures fit it.

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
========================  ===================================================================

Names match case-insensitively; RevMan names also ignore spaces and punctuation. The first
kind whose columns are all present decides the outcome type (2x2 counts and given effects are
recognised by :mod:`ivigmeta.io.columns`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ivigmeta.io.columns import Convention

CONTINUOUS_ROLES = ("treat_mean", "treat_sd", "treat_n", "control_mean", "control_sd", "control_n")
INCIDENCE_ROLES = ("treat_events", "treat_time", "control_events", "control_time")
PROPORTION_ROLES = ("events", "total")

#: outcome type -> the measures that fit it; the first is the default (names only: io reads,
#: core.measures computes; tests check the two agree)
KIND_MEASURES: dict[str, tuple[str, ...]] = {
    "continuous": ("MD", "SMD", "SMDH", "ROM"),
    "incidence": ("IRR", "IRD", "IRSD"),
    "proportion": ("PLO", "PR", "PAS", "PFT", "PLN"),
    "counts": ("RR", "OR", "RD", "AS"),
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


def default_measure(kind: str) -> str:
    """MD for continuous, IRR for incidence, PLO for proportions, RR for 2x2 counts."""
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
