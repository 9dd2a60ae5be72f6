"""Column conventions: which header names mean event counts, effects, study labels and years.

A table names its columns in one of these conventions, recognised automatically (first complete
match wins, in this order):

========================  ===================================================================
ivigmeta                  ``treat_events, treat_total, control_events, control_total``
metafor ai/n1i/ci/n2i     ``ai, n1i, ci, n2i`` (events and totals)
metafor ai/bi/ci/di       ``ai, bi, ci, di`` (events and non-events)
meta                      ``event.e, n.e, event.c, n.c`` (``metabin``)
RevMan                    ``Experimental events, Experimental total, Control events,
                          Control total`` (also ``Intervention ...``, ``Events 1``/``Total 1``)
========================  ===================================================================

Rows may instead give an effect: ``estimate, ci_low, ci_high`` on the reported scale (also
``lower/upper``, metafor's ``ci.lb/ci.ub``), ``theta, se`` (meta's ``TE, seTE``) or ``yi, vi``
on the analysis scale, with an optional ``measure`` column (meta's ``sm``). The study label is
the first of ``study, author, slab, studlab, study id`` present, else the first text column;
``year`` is used when present. ``--columns ROLE=COLUMN,...`` overrides any of this.

Names match case-insensitively; RevMan names also ignore spaces and punctuation.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ivigmeta.errors import DataError

COUNT_ROLES = ("treat_events", "treat_total", "control_events", "control_total")
NONEVENT_ROLES = ("treat_nonevents", "control_nonevents")
EFFECT_SETS: dict[str, tuple[str, ...]] = {
    "ci": ("estimate", "ci_low", "ci_high"),
    "se": ("theta", "se"),
    "vi": ("yi", "vi"),
}
EFFECT_ROLES = tuple(r for roles in EFFECT_SETS.values() for r in roles)
LABEL_ROLES = ("study", "year", "measure")
ROLES = COUNT_ROLES + NONEVENT_ROLES + EFFECT_ROLES + LABEL_ROLES


@dataclass(frozen=True)
class Convention:
    """A set of count column names and the roles they play."""

    name: str
    columns: Mapping[str, str]  # role -> header name (as written in that convention)
    fuzzy: bool = False  # RevMan exports: compare names without spaces and punctuation

    def describe(self) -> str:
        return f"{self.name} {'/'.join(self.columns.values())}" if not self.fuzzy else self.name


CONVENTIONS = (
    Convention("ivigmeta's", dict(zip(COUNT_ROLES, COUNT_ROLES))),
    Convention(
        "metafor's",
        {
            "treat_events": "ai",
            "treat_total": "n1i",
            "control_events": "ci",
            "control_total": "n2i",
        },
    ),
    Convention(
        "metafor's",
        {
            "treat_events": "ai",
            "treat_nonevents": "bi",
            "control_events": "ci",
            "control_nonevents": "di",
        },
    ),
    Convention(
        "metafor's dat.bcg",
        {
            "treat_events": "tpos",
            "treat_nonevents": "tneg",
            "control_events": "cpos",
            "control_nonevents": "cneg",
        },
    ),
    Convention(
        "meta's",
        {
            "treat_events": "event.e",
            "treat_total": "n.e",
            "control_events": "event.c",
            "control_total": "n.c",
        },
    ),
    Convention(
        "RevMan-style names (experimental/control events and total)",
        {
            "treat_events": "Experimental events",
            "treat_total": "Experimental total",
            "control_events": "Control events",
            "control_total": "Control total",
        },
        fuzzy=True,
    ),
)

# RevMan and spreadsheet spellings, compared after removing everything but letters and digits.
_REVMAN_ALIASES: dict[str, tuple[str, ...]] = {
    "treat_events": (
        "experimentalevents",
        "interventionevents",
        "eventsexperimental",
        "eventsintervention",
        "events1",
        "experimentalcases",
        "treatmentevents",
    ),
    "treat_total": (
        "experimentaltotal",
        "interventiontotal",
        "totalexperimental",
        "totalintervention",
        "total1",
        "experimentaln",
        "interventionn",
        "treatmenttotal",
    ),
    "control_events": ("controlevents", "eventscontrol", "events2", "controlcases"),
    "control_total": ("controltotal", "totalcontrol", "total2", "controln"),
}

_EFFECT_ALIASES: dict[str, tuple[str, ...]] = {
    "estimate": ("estimate", "est"),
    "ci_low": ("ci_low", "ci_lower", "lower", "ci.lb", "lcl", "lower_ci"),
    "ci_high": ("ci_high", "ci_upper", "upper", "ci.ub", "ucl", "upper_ci"),
    "theta": ("theta", "te"),
    "se": ("se", "sete", "se_theta"),
    "yi": ("yi",),
    "vi": ("vi",),
    "measure": ("measure", "sm"),
}
_LABEL_ALIASES = (
    "study",
    "author",
    "authors",
    "slab",
    "studlab",
    "study id",
    "study_id",
    "studyid",
    "study or subgroup",
    "trial",
)


def did_you_mean(name: str, columns: Sequence[str]) -> str:
    """``" (did you mean 'x'?)"`` for the column closest to a misspelt ``name``, else ``""``."""
    import difflib

    names = [c for c in columns if c]
    folded = {c.casefold(): c for c in names}
    hit = difflib.get_close_matches(name.casefold(), list(folded), n=1, cutoff=0.75)
    if not hit and len(name) >= 3:
        # A truncated name ('nk_crit' for 'nk_criterion') when only one column begins with it.
        hit = [c for c in folded if c.startswith(name.casefold())][:2]
        hit = hit if len(hit) == 1 else []
    return f" (did you mean '{folded[hit[0]]}'?)" if hit else ""


def _squash(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


@dataclass(frozen=True)
class ColumnMap:
    """Where each role is found in a header: role -> header name (as written in the file)."""

    roles: Mapping[str, str]
    convention: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    #: ``continuous``, ``incidence``, ``proportion``, ``change``, ``correlation``, ``mean`` or
    #: ``rate`` for a table of means, rates, proportions, pre-post changes, correlations, one
    #: group's means or one group's rates
    #: (:mod:`ivigmeta.io.outcome_columns`), ``None`` for 2x2 counts and effects
    outcome: str | None = None

    def get(self, role: str) -> str | None:
        return self.roles.get(role)

    @property
    def has_counts(self) -> bool:
        return self.outcome is None and "treat_events" in self.roles

    def count_columns(self) -> tuple[str, ...]:
        """The header names that hold 2x2 counts (events and totals or non-events)."""
        if self.outcome is not None:
            return ()
        keys = COUNT_ROLES + NONEVENT_ROLES
        return tuple(self.roles[r] for r in keys if r in self.roles)

    def effect_sets(self) -> list[str]:
        """The effect kinds (``ci``, ``se``, ``vi``) whose columns are all present."""
        return [k for k, roles in EFFECT_SETS.items() if all(r in self.roles for r in roles)]

    def used(self) -> set[str]:
        return set(self.roles.values())


#: the columns of tables of means, rates and proportions (ivigmeta.io.outcome_columns)
CONTINUOUS_ROLES = ("treat_mean", "treat_sd", "treat_n", "control_mean", "control_sd", "control_n")
INCIDENCE_ROLES = ("treat_events", "treat_time", "control_events", "control_time")
PROPORTION_ROLES = ("events", "total")
CORRELATION_ROLES = ("cor", "n")
MEAN_ROLES = ("mean", "sd", "n")
CHANGE_ROLES = ("mean_post", "mean_pre", "sd_post", "sd_pre", "n", "r")
RATE_ROLES = ("events", "time")
PARTIAL_ROLES = ("t", "n", "predictors")
PARTIAL_R2_ROLES = PARTIAL_ROLES + ("r2",)


def all_roles() -> tuple[str, ...]:
    """Every role ``--columns`` takes: the count, effect and label roles, and the columns of
    means, rates, proportions, correlations, one group's means, pre-post changes, one group's
    rates and partial correlations."""
    kinds = (
        CONTINUOUS_ROLES,
        INCIDENCE_ROLES,
        PROPORTION_ROLES,
        CORRELATION_ROLES,
        MEAN_ROLES,
        CHANGE_ROLES,
        RATE_ROLES,
        PARTIAL_R2_ROLES,
    )
    extra = [r for rs in kinds for r in rs]
    return ROLES + tuple(r for r in dict.fromkeys(extra) if r not in ROLES)


def check_explicit(header: Sequence[str], explicit: Mapping[str, str], source: str) -> None:
    """``--columns``: one role per column, and every column named is in the header."""
    found_list = ", ".join(h for h in header if h) or "none"
    claimed: dict[str, str] = {}
    for role, column in explicit.items():
        if column in claimed:
            raise DataError(
                f"--columns: column '{column}' is given for both {claimed[column]} and {role} "
                "(expected one role per column)"
            )
        claimed[column] = role
    for role, column in explicit.items():
        if column not in header:
            raise DataError(
                f"{source}, row 1: --columns {role}={column}: no column '{column}'"
                f"{did_you_mean(column, header)} "
                f"(columns found: {found_list})"
            )


def parse_columns_option(spec: str | None) -> dict[str, str]:
    """``treat_events=EvT,treat_total=NT`` -> ``{"treat_events": "EvT", ...}``."""
    if not spec:
        return {}
    out: dict[str, str] = {}
    for part in spec.split(","):
        if not part.strip():
            continue
        if "=" not in part:
            raise DataError(
                f"--columns: '{part.strip()}' is not ROLE=COLUMN (for example treat_events=EvT)"
            )
        role, column = (x.strip() for x in part.split("=", 1))
        if role not in all_roles():
            raise DataError(f"--columns: unknown role '{role}' (roles: {', '.join(all_roles())})")
        if not column:
            raise DataError(f"--columns: no column name given for '{role}'")
        out[role] = column
    return out


def _find(header: Sequence[str], names: Sequence[str], fuzzy: bool = False) -> str | None:
    """The first header name matching one of ``names`` (case-insensitive, or squashed)."""
    if fuzzy:
        wanted = {_squash(n) for n in names}
        return next((h for h in header if h and _squash(h) in wanted), None)
    wanted = {n.lower() for n in names}
    return next((h for h in header if h and h.strip().lower() in wanted), None)


def _match(conv: Convention, header: Sequence[str]) -> dict[str, str]:
    found = {}
    for role, name in conv.columns.items():
        names = _REVMAN_ALIASES[role] if conv.fuzzy else (name,)
        hit = _find(header, names, fuzzy=conv.fuzzy)
        if hit is not None:
            found[role] = hit
    return found


def _is_number(text: str, decimal: str) -> bool:
    t = text.strip()
    if decimal == ",":
        t = t.replace(",", ".")
    try:
        float(t)
    except ValueError:
        return False
    return True


def resolve(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    source: str,
    explicit: Mapping[str, str] | None = None,
    decimal: str = ".",
    keys: Sequence[str] = (),
) -> ColumnMap:
    """Decide which column plays which role, from ``explicit`` (``--columns``) and the names.

    ``keys`` are columns that name groups of studies (batch's ``--group`` columns): never taken
    as the study label for want of a named one.

    Raises a :class:`DataError` (row 1) when a needed column is missing, listing the columns found.
    """
    explicit = dict(explicit or {})
    found_list = ", ".join(h for h in header if h) or "none"
    check_explicit(header, explicit, source)
    roles: dict[str, str] = {}
    notes: list[str] = []
    convention = None
    count_given = [r for r in COUNT_ROLES + NONEVENT_ROLES if r in explicit]
    if count_given:
        need_a = COUNT_ROLES
        need_b = ("treat_events", "treat_nonevents", "control_events", "control_nonevents")
        if not (all(r in explicit for r in need_a) or all(r in explicit for r in need_b)):
            missing = [r for r in need_a if r not in explicit]
            raise DataError(
                f"--columns: {', '.join(missing)} not given (name all of {', '.join(need_a)}, "
                "or treat_events, treat_nonevents, control_events, control_nonevents)"
            )
        roles.update({r: explicit[r] for r in count_given})
        convention = "--columns"
    else:
        best: tuple[Convention, dict[str, str]] | None = None
        for conv in CONVENTIONS:
            hit = _match(conv, header)
            if len(hit) == len(conv.columns):
                roles.update(hit)
                convention = conv.describe()
                break
            if best is None or len(hit) > len(best[1]):
                best = (conv, hit)
        else:
            roles_effect = _effect_roles(header, explicit)
            if not any(all(r in roles_effect for r in rs) for rs in EFFECT_SETS.values()):
                _drop_partial_effects(roles_effect, False, explicit, source, found_list)
                conv, hit = best  # type: ignore[misc]
                if len(hit) >= 2:
                    missing = [n for r, n in conv.columns.items() if r not in hit]
                    raise DataError(
                        f"{source}, row 1: required column(s) missing: {', '.join(missing)} "
                        f"(expected {conv.describe()}; columns found: {found_list}; or name "
                        "yours with --columns ROLE=COLUMN)"
                    )
                raise DataError(
                    f"{source}, row 1: required columns missing: expected event counts "
                    f"({', '.join(COUNT_ROLES)}, or metafor's ai/n1i/ci/n2i, ai/bi/ci/di, tpos/tneg/cpos/cneg, meta's "
                    "event.e/n.e/event.c/n.c, RevMan's Experimental/Control events and total) or "
                    "effects (estimate, ci_low, ci_high; theta, se; or yi, vi); "
                    f"columns found: {found_list}; name yours with --columns, e.g. "
                    "--columns treat_events=COL,treat_total=COL,control_events=COL,"
                    "control_total=COL)"
                )
    if convention and convention != "ivigmeta's " + "/".join(COUNT_ROLES):
        notes.append(f"columns recognised as {convention}")
    effect = _effect_roles(header, explicit)
    _drop_partial_effects(effect, "treat_events" in roles, explicit, source, found_list)
    roles.update(effect)
    if roles.get("treat_events") is None and any(r in roles for r in EFFECT_ROLES):
        notes.append("no event-count columns: every row gives its effect")
    label_roles(header, rows, roles, explicit, decimal, keys, notes)
    return ColumnMap(roles=roles, convention=convention, notes=tuple(notes))


def label_roles(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    roles: dict[str, str],
    explicit: Mapping[str, str],
    decimal: str,
    keys: Sequence[str],
    notes: list[str],
) -> None:
    """Add the year and study-label columns to ``roles`` (and say in ``notes`` where the labels
    came from): a ``year`` column, a named label column, else the first text column."""
    taken = set(roles.values())
    year = explicit.get("year") or _find([h for h in header if h not in taken], ("year",))
    if year:
        roles["year"] = year
        taken.add(year)
    label = explicit.get("study") or _named_label(header, rows, taken | set(keys), decimal)
    if label is None:
        label = _first_text_column(header, rows, taken | set(keys), decimal)
        if label is not None:
            notes.append(f"study labels taken from column '{label}' (the first text column)")
        else:
            notes.append("no study-label column: studies are named by their row")
    elif label != "study" and "study" not in explicit:
        notes.append(f"study labels taken from column '{label}'")
    if label is not None:
        roles["study"] = label


def _drop_partial_effects(
    effect: dict[str, str], has_counts: bool, explicit: Mapping[str, str], source: str, found: str
) -> None:
    """Incomplete effect column sets: an error without counts, else plain text columns."""
    for rs in EFFECT_SETS.values():
        present = [r for r in rs if r in effect]
        if present and len(present) < len(rs):
            # With counts, a lone 'se' or 'lower' column is just another text column.
            if not has_counts or any(r in explicit for r in present):
                missing = [r for r in rs if r not in effect]
                raise DataError(
                    f"{source}, row 1: column '{effect[present[0]]}' is read as {present[0]} but "
                    f"no column for {', '.join(missing)} was found (an effect is given as "
                    f"{', '.join(rs)}; columns found: {found})"
                )
            for r in present:
                del effect[r]


def _effect_roles(header: Sequence[str], explicit: Mapping[str, str]) -> dict[str, str]:
    out = {}
    for role in EFFECT_ROLES + ("measure",):
        if role in explicit:
            out[role] = explicit[role]
            continue
        hit = _find(header, _EFFECT_ALIASES[role])
        if hit is not None:
            out[role] = hit
    return out


def _named_label(
    header: Sequence[str], rows: Sequence[Sequence[str]], taken: set[str], decimal: str
) -> str | None:
    """The label column among those named as one (study, author, ..., trial): the first in
    that order whose values are not all numbers (an author beats a numeric trial id), else the
    first of them."""
    wanted = {n.lower(): rank for rank, n in enumerate(_LABEL_ALIASES)}
    named = sorted(
        (wanted[h.strip().lower()], i, h)
        for i, h in enumerate(header)
        if h and h not in taken and h.strip().lower() in wanted
    )
    for _, i, name in named:
        values = [r[i].strip() for r in rows if i < len(r) and r[i].strip()]
        if values and not all(_is_number(v, decimal) for v in values):
            return name
    return named[0][2] if named else None


def _first_text_column(
    header: Sequence[str], rows: Sequence[Sequence[str]], taken: set[str], decimal: str
) -> str | None:
    for i, name in enumerate(header):
        if not name or name in taken:
            continue
        values = [r[i].strip() for r in rows if i < len(r) and r[i].strip()]
        if values and not all(_is_number(v, decimal) for v in values):
            return name
    return None
