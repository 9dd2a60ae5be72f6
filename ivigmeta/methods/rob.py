"""ROBINS-I risk-of-bias tables: reading, validation and the overall judgement.

A risk-of-bias table is a CSV with a ``study`` column (and optionally ``year``), one column per
ROBINS-I domain (Sterne et al. 2016, BMJ 355:i4919), and optionally ``overall`` and ``weight``:

=================== ====================================== ===============================
column              domain                                 also accepted as
=================== ====================================== ===============================
confounding         D1 bias due to confounding             d1
selection           D2 selection of participants           d2, selection_of_participants
classification      D3 classification of interventions     d3, classification_of_interventions
deviations          D4 deviations from intended            d4, deviations_from_intended_interventions
                    interventions
missing_data        D5 missing data                        d5, missing
measurement         D6 measurement of outcomes             d6, measurement_of_outcomes
reported_result     D7 selection of the reported result    d7, reporting, selection_of_the_reported_result
=================== ====================================== ===============================

Headers are matched ignoring case, spaces, hyphens and a leading "bias due to"/"bias in".
Judgements are ``low``, ``moderate``, ``serious``, ``critical`` or ``no information`` (also
``NI``, ``no info``; a trailing "risk" is ignored).

Overall judgement (the paper's Methods, "Assessment of risk of bias", which are the ROBINS-I
rules): low if low in all domains; moderate if moderate in at least one domain but serious or
critical in none; serious if serious in at least one domain but critical in none; critical if
critical in at least one domain; no information when nothing indicates serious or critical risk
and information is lacking in one or more key domains. The paper does not say which domains are
key; every domain is treated as key, so "no information" in any domain (with no serious or
critical one) gives "no information", ahead of "moderate".

A given ``overall`` is kept (it is the assessors' judgement) and a contradiction with the rules is
reported. Nothing here prints or draws.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Sequence
from dataclasses import replace

from ivigmeta.errors import DataError
from ivigmeta.io.studies import read_text
from ivigmeta.results import MetaAnalysis, RobAssessment, RobDomainSummary, RobStudy

TOOL = "ROBINS-I"
DOMAINS = (
    ("confounding", "Bias due to confounding"),
    ("selection", "Bias in selection of participants"),
    ("classification", "Bias in classification of interventions"),
    ("deviations", "Bias due to deviations from intended interventions"),
    ("missing_data", "Bias due to missing data"),
    ("measurement", "Bias in measurement of outcomes"),
    ("reported_result", "Bias in selection of the reported result"),
)
LEVELS = ("low", "moderate", "serious", "critical", "no information")
OVERALL_LABEL = "Overall risk of bias"

_ALIASES = {
    "confounding": ("d1",),
    "selection": ("d2", "selection_of_participants", "participant_selection"),
    "classification": ("d3", "classification_of_interventions", "intervention_classification"),
    "deviations": (
        "d4",
        "deviations_from_intended_interventions",
        "deviation_from_intended_interventions",
    ),
    "missing_data": ("d5", "missing", "missing_outcome_data"),
    "measurement": (
        "d6",
        "measurement_of_outcomes",
        "measurement_of_the_outcome",
        "outcome_measurement",
    ),
    "reported_result": (
        "d7",
        "reporting",
        "selection_of_the_reported_result",
        "selection_of_reported_result",
    ),
    "overall": ("overall_risk_of_bias", "overall_judgement", "overall_judgment"),
    "weight": ("weights",),
    "study": ("author", "study_id"),
    "year": (),
}
_HEADER_MAP = {alias: key for key, aliases in _ALIASES.items() for alias in (key, *aliases)}
_LEVEL_MAP = {
    "low": "low",
    "moderate": "moderate",
    "serious": "serious",
    "critical": "critical",
    "no information": "no information",
    "no info": "no information",
    "ni": "no information",
    "no_information": "no information",
}


def _header_key(name: str) -> str:
    text = re.sub(r"[\s\-]+", "_", name.strip().lower())
    text = re.sub(r"^(bias_due_to_|bias_in_|bias_)", "", text)
    return _HEADER_MAP.get(text, text)


def parse_level(value: str) -> str | None:
    """The canonical level for a cell (``None`` if it is not a ROBINS-I judgement)."""
    text = re.sub(r"\s+", " ", value.strip().lower().replace("_", " "))
    text = re.sub(r" (risk|risk of bias)$", "", text)
    return _LEVEL_MAP.get(text)


def overall_judgement(judgements: Sequence[str]) -> str:
    """The ROBINS-I overall judgement from the domain judgements (see the module docstring)."""
    levels = set(judgements)
    if "critical" in levels:
        return "critical"
    if "serious" in levels:
        return "serious"
    if "no information" in levels:
        return "no information"
    if "moderate" in levels:
        return "moderate"
    return "low"


def load_rob(path: str) -> RobAssessment:
    """Read and validate the risk-of-bias table at ``path`` (``-`` for standard input)."""
    name, text = read_text(path)
    return parse_rob(text, name)


def parse_rob(text: str, source: str) -> RobAssessment:
    """Parse a ROBINS-I CSV ``text``; ``source`` names it in messages (file, row, column)."""
    if not text.strip():
        raise DataError(
            f"{source}: the file is empty (expected a header row and one row per study)"
        )
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise DataError(f"{source}: not a readable CSV file ({exc})") from None
    header = [h.strip() for h in rows[0]]
    keys = [_header_key(h) for h in header]
    seen: dict[str, str] = {}
    for raw, key in zip(header, keys):
        if key in seen:
            raise DataError(f"{source}, row 1: columns '{seen[key]}' and '{raw}' both give '{key}'")
        seen[key] = raw
    required = ["study", *(k for k, _ in DOMAINS)]
    missing = [k for k in required if k not in seen]
    if missing:
        raise DataError(
            f"{source}, row 1: required column(s) missing: {', '.join(missing)} "
            f"(columns found: {', '.join(h for h in header if h) or 'none'})"
        )
    studies: list[RobStudy] = []
    for offset, cells in enumerate(rows[1:]):
        row_number = offset + 2
        if not cells or all(not cell.strip() for cell in cells):
            continue
        if len(cells) > len(header):
            raise DataError(
                f"{source}, row {row_number}: {len(cells)} fields but the header has {len(header)}"
            )
        values = {k: (cells[i].strip() if i < len(cells) else "") for i, k in enumerate(keys)}
        studies.append(_parse_row(values, seen, row_number, source))
    if not studies:
        raise DataError(f"{source}: the file has a header but no study rows")
    weights = [s.weight for s in studies]
    weighted = any(w is not None for w in weights)
    if weighted and any(w is None for w in weights):
        row = next(s.row for s in studies if s.weight is None)
        raise DataError(
            f"{source}, row {row}, column '{seen['weight']}': missing weight (give every study one)"
        )
    if weighted and not math.fsum(w for w in weights if w is not None) > 0:
        raise DataError(f"{source}, column '{seen['weight']}': the weights add up to 0")
    return RobAssessment(
        source=source,
        tool=TOOL,
        domains=tuple(k for k, _ in DOMAINS),
        domain_labels=tuple(lab for _, lab in DOMAINS),
        levels=LEVELS,
        studies=tuple(studies),
        summary=summarize(studies, weighted),
        weighted=weighted,
        weight_source=f"the '{seen['weight']}' column" if weighted else "",
    )


def _parse_row(
    values: dict[str, str], raw_names: dict[str, str], row: int, source: str
) -> RobStudy:
    judgements = []
    for key, _ in DOMAINS:
        judgements.append(_level(values[key], source, row, raw_names[key]))
    given = None
    if values.get("overall"):
        given = _level(values["overall"], source, row, raw_names["overall"])
    weight = None
    if values.get("weight"):
        where = f"{source}, row {row}, column '{raw_names['weight']}'"
        try:
            weight = float(values["weight"].rstrip("%"))
        except ValueError:
            raise DataError(f"{where}: '{values['weight']}' is not a number") from None
        if not (math.isfinite(weight) and weight >= 0):
            raise DataError(f"{where}: '{values['weight']}' is not a non-negative number")
    study = values.get("study") or f"row {row}"
    year = values.get("year")
    label = f"{study} ({year})" if year else study
    return RobStudy(
        study=label,
        row=row,
        judgements=tuple(judgements),
        overall_rule=overall_judgement(judgements),
        overall_given=given,
        weight=weight,
    )


def _level(value: str, source: str, row: int, column: str) -> str:
    where = f"{source}, row {row}, column '{column}'"
    if not value:
        raise DataError(
            f"{where}: missing judgement (write 'no information' when none was possible)"
        )
    level = parse_level(value)
    if level is None:
        raise DataError(
            f"{where}: '{value}' is not a ROBINS-I judgement (expected {', '.join(LEVELS)})"
        )
    return level


def summarize(studies: Sequence[RobStudy], weighted: bool) -> tuple[RobDomainSummary, ...]:
    """Percentage of studies (by weight when ``weighted``) at each level, per domain and overall."""
    w = [(s.weight or 0.0) if weighted else 1.0 for s in studies]
    total = math.fsum(w)
    out = []
    columns = [
        (key, label, [s.judgements[j] for s in studies]) for j, (key, label) in enumerate(DOMAINS)
    ]
    columns.append(("overall", OVERALL_LABEL, [s.overall for s in studies]))
    for key, label, judged in columns:
        percent = tuple(
            100.0 * math.fsum(wi for wi, lev in zip(w, judged) if lev == level) / total
            for level in LEVELS
        )
        out.append(RobDomainSummary(domain=key, label=label, percent=percent))
    return tuple(out)


def weight_by_fit(rob: RobAssessment, ma: MetaAnalysis, source: str) -> RobAssessment:
    """``rob`` with each study weighted by its random-effects weight (percent) in ``ma``.

    Studies are matched on the label (``study (year)``) or, failing that, the study name;
    ``source`` names the study table in messages. Every study of the risk-of-bias table must be
    found exactly once; studies of the meta-analysis without a judgement are ignored.
    """
    if ma.random is not None:
        weights = ma.random.weights
    else:
        weights = (100.0,) * ma.k
    by_label: dict[str, list[float]] = {}
    by_name: dict[str, list[float]] = {}
    for study, w in zip(ma.effects.studies, weights):
        by_label.setdefault(study.label(), []).append(w)
        by_name.setdefault(study.study, []).append(w)
    studies: list[RobStudy] = []
    for s in rob.studies:
        found = by_label.get(s.study) or by_name.get(s.study)
        if not found:
            raise DataError(
                f"{rob.source}, row {s.row}: study '{s.study}' is not in {source} "
                "(names must match its study column, or 'study (year)')"
            )
        if len(found) > 1:
            raise DataError(
                f"{rob.source}, row {s.row}: study '{s.study}' matches {len(found)} studies in {source}"
            )
        studies.append(replace(s, weight=found[0]))
    return replace(
        rob,
        studies=tuple(studies),
        summary=summarize(studies, True),
        weighted=True,
        weight_source=f"random-effects weights in {source}",
    )
