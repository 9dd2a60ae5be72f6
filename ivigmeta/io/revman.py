"""Reading RevMan 5 review files (``.rm5``, XML) and RevMan 5's CSV export of analyses.

A RevMan file holds, per comparison and outcome (and per subgroup of an outcome), the study data
and the numbers RevMan computed from them. :func:`read_review` returns a :class:`Review` of
:class:`Analysis` objects, numbered as RevMan numbers them (``1.2`` for outcome 2 of comparison
1, ``1.2.3`` for its third subgroup); :func:`analysis_table` turns one analysis into the same
rows of text cells a CSV file gives, so that every command reads it like any other table.

Safety: the XML is parsed with ``defusedxml`` (no entity expansion, no external entities, no
DTD fetching), after a size check; a hostile file fails with one ``DataError`` line.

What is read (RevMan 5 schema): ``DICH_OUTCOME`` / ``DICH_SUBGROUP`` / ``DICH_DATA`` (events and
totals), ``CONT_OUTCOME`` / ``CONT_SUBGROUP`` / ``CONT_DATA`` (means, SDs, totals), ``IV_OUTCOME``
/ ``IV_SUBGROUP`` / ``IV_DATA`` (generic inverse variance: estimate and SE, on the log scale
when the outcome says ``LOG_DATA="YES"``) and ``OE_OUTCOME`` / ``OE_SUBGROUP`` / ``OE_DATA``
(O - E and its variance). Other outcome types (IPD) are listed in :attr:`Review.unsupported`.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ivigmeta.errors import DataError
from ivigmeta.io.readers import RawTable

#: Larger files are refused before parsing (the largest Cochrane reviews are a few MB).
MAX_BYTES = 256 * 1024 * 1024

DATA_TYPES = {
    "DICH": "dichotomous",
    "CONT": "continuous",
    "IV": "generic",
    "OE": "oe",
}
UNSUPPORTED_TYPES = ("IPD",)

#: RevMan's EFFECT_MEASURE codes -> ivigmeta's measures (Peto's OR is an OR pooled by Peto).
MEASURES = {
    "RR": "RR",
    "OR": "OR",
    "RD": "RD",
    "PETO_OR": "OR",
    "MD": "MD",
    "SMD": "SMD",
}
#: Generic inverse-variance measure names RevMan users type, by what they mean.
_GENERIC_NAMES = (
    (re.compile(r"hazard|\bhr\b", re.I), "HR"),
    (re.compile(r"peto", re.I), "OR"),
    (re.compile(r"odds|\bor\b", re.I), "OR"),
    (re.compile(r"risk ratio|relative risk|rate ratio|\brr\b", re.I), "RR"),
    (re.compile(r"risk diff|\brd\b", re.I), "RD"),
    (re.compile(r"std\.? ?mean|standardi[sz]ed mean|\bsmd\b", re.I), "SMD"),
    (re.compile(r"mean diff|\bmd\b", re.I), "MD"),
)

#: Stored numbers of an outcome or subgroup, by RevMan's attribute name.
POOLED_NUMBERS = (
    "EFFECT_SIZE",
    "CI_START",
    "CI_END",
    "Z",
    "P_Z",
    "CHI2",
    "DF",
    "P_CHI2",
    "I2",
    "TAU2",
    "Q",
    "P_Q",
    "I2_Q",
    "WEIGHT",
)
#: Stored numbers of a study row.
STUDY_NUMBERS = ("EFFECT_SIZE", "CI_START", "CI_END", "SE", "VAR", "WEIGHT")
#: Data attributes of a study row, per data type.
DATA_FIELDS = {
    "dichotomous": ("EVENTS_1", "TOTAL_1", "EVENTS_2", "TOTAL_2"),
    "continuous": ("MEAN_1", "SD_1", "TOTAL_1", "MEAN_2", "SD_2", "TOTAL_2"),
    "generic": ("EFFECT_SIZE", "SE", "TOTAL_1", "TOTAL_2"),
    "oe": ("O_E", "VAR", "TOTAL_1", "TOTAL_2"),
}


@dataclass(frozen=True)
class Row:
    """One study row of an analysis: its data as RevMan stored them and RevMan's results."""

    study_id: str
    study: str
    year: str
    data: Mapping[str, str]
    stored: Mapping[str, float | None]
    estimable: bool
    subgroup: str = ""  # the subgroup's number ("1.2.3"), empty without subgroups
    subgroup_name: str = ""
    order: str = ""


@dataclass(frozen=True)
class Subgroup:
    number: str
    name: str
    stored: Mapping[str, float | None]
    studies: int | None


@dataclass(frozen=True)
class Analysis:
    """One RevMan outcome (or one subgroup of it) with its settings and stored results."""

    number: str
    name: str
    comparison: str
    data_type: str  # dichotomous | continuous | generic | oe
    revman_measure: str  # as RevMan wrote it ("OR", "PETO_OR", "Hazard Ratio" ...)
    measure: str  # ivigmeta's measure (RR, OR, RD, MD, SMD; HR for hazard ratios)
    method: str  # MH | IV | PETO
    model: str  # random | fixed
    ci_study: float  # percent
    ci_total: float
    swap_events: bool
    totals: str  # YES | NO | SUB
    subgroup_test: bool
    log_data: bool
    labels: Mapping[str, str]
    stored: Mapping[str, float | None]
    studies: int | None
    rows: tuple[Row, ...]
    subgroups: tuple[Subgroup, ...] = ()
    parent: str = ""  # for a subgroup analysis, the outcome's number

    @property
    def k(self) -> int:
        """The rows with data RevMan could estimate."""
        return sum(r.estimable for r in self.rows)

    @property
    def log_scale(self) -> bool:
        """Whether the analysis is pooled on the log scale (ratio measures)."""
        return self.measure in ("RR", "OR", "HR")

    @property
    def has_results(self) -> bool:
        """Whether RevMan stored its pooled numbers (a file saved without them has none)."""
        return self.stored.get("EFFECT_SIZE") is not None


@dataclass(frozen=True)
class Review:
    source: str
    id: str
    doi: str
    title: str
    analyses: tuple[Analysis, ...]
    #: outcomes that could not be read: (number, reason)
    unsupported: tuple[tuple[str, str], ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)
    #: read from RevMan's CSV export (numbers rounded to 8 decimals) rather than a .rm5 file
    from_csv: bool = False

    def numbers(self) -> list[str]:
        return [a.number for a in self.analyses]

    def analysis(self, number: str) -> Analysis:
        """The analysis numbered ``number``; an unknown one lists the valid numbers."""
        key = number.strip()
        for a in self.analyses:
            if a.number == key:
                return a
        for num, reason in self.unsupported:
            if num == key:
                raise DataError(f"{self.source}: analysis {key} cannot be read: {reason}")
        raise DataError(
            f"{self.source}: no analysis {key!r} (analyses: {', '.join(self.numbers()) or 'none'})"
        )


# ---------------------------------------------------------------------------------------------
# Recognising a RevMan file.


def is_rm5(path: str, head: bytes) -> bool:
    """A RevMan 5 file: by its extension, or by the ``COCHRANE_REVIEW`` root in its first bytes."""
    if path.lower().endswith(".rm5"):
        return True
    start = head[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    return start.startswith(b"<") and b"<COCHRANE_REVIEW" in head[:4096]


_CSV_HEAD = re.compile(
    rb'^(\xef\xbb\xbf)?"?comparison number"?[,;\t]"?outcome number"?[,;\t]"?subgroup number', re.I
)


def is_revman_csv_head(head: bytes) -> bool:
    """Whether a file's first bytes are the header of RevMan 5's CSV export of analyses."""
    return _CSV_HEAD.match(head) is not None


def is_revman_csv(rows: Sequence[Sequence[str]]) -> bool:
    """RevMan 5's CSV export: its header starts with Comparison / Outcome / Subgroup Number."""
    if not rows:
        return False
    head = [c.strip().lower() for c in rows[0][:3]]
    return head == ["comparison number", "outcome number", "subgroup number"]


# ---------------------------------------------------------------------------------------------
# The .rm5 reader.


def cell_number(text: str | None) -> float | None:
    if text is None:
        return None
    t = text.strip()
    if not t:
        return None
    try:
        x = float(t)
    except ValueError:
        return None
    return x if math.isfinite(x) else None


def _text(el: Any, tag: str) -> str:
    child = el.find(tag)
    return (child.text or "").strip() if child is not None else ""


def read_review(data: bytes, source: str) -> Review:
    """Parse a RevMan 5 file's bytes into a :class:`Review` (``DataError`` if it is not one)."""
    if len(data) > MAX_BYTES:
        raise DataError(f"{source}: {len(data)} bytes is too large for a RevMan file")
    import xml.etree.ElementTree as ET

    import defusedxml
    import defusedxml.ElementTree as DET

    try:
        # a DTD declaration alone is harmless; entities and external references are refused
        root = DET.fromstring(data, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except defusedxml.DefusedXmlException as exc:
        raise DataError(
            f"{source}: refused: the XML declares {type(exc).__name__.replace('Forbidden', '')}"
            " (entities, DTDs and external references are not read)"
        ) from None
    except ET.ParseError as exc:
        line, col = getattr(exc, "position", (None, None))
        where = f" (line {line}, column {col})" if line else ""
        raise DataError(
            f"{source}: not a readable RevMan file: the XML is malformed or truncated{where}"
        ) from None
    except (ValueError, UnicodeError) as exc:
        raise DataError(f"{source}: not a readable RevMan file ({exc})") from None
    if root.tag != "COCHRANE_REVIEW":
        raise DataError(
            f"{source}: not a RevMan 5 review: the XML root is <{root.tag}>, not <COCHRANE_REVIEW>"
        )
    studies: dict[str, tuple[str, str]] = {}
    for st in root.iter("STUDY"):
        sid = st.get("ID", "")
        if sid:
            studies[sid] = (st.get("NAME", "") or sid, st.get("YEAR", "") or "")
    title = ""
    cover = root.find("COVER_SHEET")
    if cover is not None:
        title = _text(cover, "TITLE")
    analyses: list[Analysis] = []
    unsupported: list[tuple[str, str]] = []
    notes: list[str] = []
    data_root = root.find("ANALYSES_AND_DATA")
    for comp in data_root.findall("COMPARISON") if data_root is not None else ():
        cno = comp.get("NO", "").strip() or str(len(analyses) + 1)
        cname = _text(comp, "NAME")
        for out in comp:
            tag = out.tag
            if not tag.endswith("_OUTCOME"):
                continue
            prefix = tag[: -len("_OUTCOME")]
            number = f"{cno}.{out.get('NO', '').strip()}"
            if prefix not in DATA_TYPES:
                reason = f"{prefix} outcomes ({_text(out, 'NAME') or 'unnamed'}) are not supported"
                unsupported.append((number, reason))
                notes.append(f"{source}: analysis {number}: {reason}; the others are read")
                continue
            analyses.extend(_outcome(out, prefix, number, cname, studies, source))
    rid = root.get("ID", "")
    doi = root.get("DOI", "")
    return Review(source, rid, doi, title, tuple(analyses), tuple(unsupported), tuple(notes))


def _settings(out: Any, prefix: str, source: str, number: str) -> dict[str, Any]:
    data_type = DATA_TYPES[prefix]
    raw_measure = (out.get("EFFECT_MEASURE") or "").strip()
    method = (out.get("METHOD") or "").strip().upper() or ("MH" if prefix == "DICH" else "IV")
    log_data = (out.get("LOG_DATA") or "").strip().upper() == "YES"
    if raw_measure.upper() in MEASURES:
        measure = MEASURES[raw_measure.upper()]
        if raw_measure.upper() == "PETO_OR":
            method = "PETO"
    else:
        measure = ""
        for pattern, name in _GENERIC_NAMES:
            if pattern.search(raw_measure):
                measure = name
                break
        if not measure:
            measure = "ratio" if log_data else "difference"
    if data_type == "oe":
        measure = "OR" if measure not in ("HR",) else measure
        log_data = True
        if method not in ("PETO", "IV"):
            method = "PETO"
    if data_type == "generic" and measure in ("RR", "OR", "HR", "ratio"):
        log_data = True
    if method not in ("MH", "IV", "PETO"):
        raise DataError(f"{source}: analysis {number}: unknown statistical method {method!r}")
    return dict(
        data_type=data_type,
        revman_measure=raw_measure,
        measure=measure,
        method=method,
        model="random" if (out.get("RANDOM") or "").strip().upper() == "YES" else "fixed",
        ci_study=cell_number(out.get("CI_STUDY")) or 95.0,
        ci_total=cell_number(out.get("CI_TOTAL")) or 95.0,
        swap_events=(out.get("SWAP_EVENTS") or "").strip().upper() == "YES",
        totals=(out.get("TOTALS") or "YES").strip().upper(),
        subgroup_test=(out.get("SUBGROUP_TEST") or "YES").strip().upper() == "YES",
        log_data=log_data,
    )


def _stored(el: Any, names: Iterable[str]) -> dict[str, float | None]:
    return {n: cell_number(el.get(n)) for n in names}


def _rows(
    parent: Any, prefix: str, studies: Mapping[str, tuple[str, str]], sub: str, sub_name: str
) -> list[Row]:
    data_type = DATA_TYPES[prefix]
    tags = {f"{prefix}_DATA"} | ({"O_E_DATA"} if prefix == "OE" else set())
    rows = []
    for el in parent:
        if el.tag not in tags:
            continue
        sid = el.get("STUDY_ID", "")
        name, year = studies.get(sid, (sid.removeprefix("STD-"), ""))
        data = {f: (el.get(f) or "").strip() for f in DATA_FIELDS[data_type]}
        rows.append(
            Row(
                study_id=sid,
                study=name,
                year=year,
                data=data,
                stored=_stored(el, STUDY_NUMBERS),
                estimable=(el.get("ESTIMABLE") or "YES").strip().upper() != "NO",
                subgroup=sub,
                subgroup_name=sub_name,
                order=(el.get("ORDER") or "").strip(),
            )
        )
    return rows


def _labels(out: Any) -> dict[str, str]:
    return {
        "group_1": _text(out, "GROUP_LABEL_1"),
        "group_2": _text(out, "GROUP_LABEL_2"),
        "graph_1": _text(out, "GRAPH_LABEL_1"),
        "graph_2": _text(out, "GRAPH_LABEL_2"),
    }


def _int(x: float | None) -> int | None:
    return None if x is None else int(x)


def _outcome(
    out: Any,
    prefix: str,
    number: str,
    comparison: str,
    studies: Mapping[str, tuple[str, str]],
    source: str,
) -> list[Analysis]:
    settings = _settings(out, prefix, source, number)
    name = _text(out, "NAME")
    labels = _labels(out)
    rows = _rows(out, prefix, studies, "", "")
    subgroups: list[Subgroup] = []
    sub_analyses: list[Analysis] = []
    for sub in out.findall(f"{prefix}_SUBGROUP"):
        snum = f"{number}.{(sub.get('NO') or '').strip() or len(subgroups) + 1}"
        sname = _text(sub, "NAME")
        srows = _rows(sub, prefix, studies, snum, sname)
        stored = _stored(sub, POOLED_NUMBERS)
        count = _int(cell_number(sub.get("STUDIES")))
        subgroups.append(Subgroup(snum, sname, stored, count))
        rows.extend(srows)
        sub_analyses.append(
            Analysis(
                number=snum,
                name=f"{name}: {sname}" if sname else name,
                comparison=comparison,
                labels=labels,
                stored=stored,
                studies=count,
                rows=tuple(srows),
                parent=number,
                **settings,
            )
        )
    outcome = Analysis(
        number=number,
        name=name,
        comparison=comparison,
        labels=labels,
        stored=_stored(out, POOLED_NUMBERS),
        studies=_int(cell_number(out.get("STUDIES"))),
        rows=tuple(rows),
        subgroups=tuple(subgroups),
        **settings,
    )
    return [outcome, *sub_analyses]


# ---------------------------------------------------------------------------------------------
# RevMan 5's CSV export ("Data and analyses").

_CSV_TYPES = {"DIC": "DICH", "CON": "CONT", "IV": "IV", "GIV": "IV", "OE": "OE", "O-E": "OE"}
_CSV_MODEL = {"fixed": "NO", "random": "YES"}


def read_review_csv(rows: Sequence[Sequence[str]], source: str) -> Review:
    """RevMan 5's CSV export of analyses (as meta's ``read.rm5`` documents it) as a Review.

    Rows with an empty Data Type under an outcome's row are its studies; an outcome row's
    Q, P(Q), I²(Q), Tau², Z, P(Z), Qint, P(Qint), I²(Qint), df are RevMan's stored results.
    """
    header = [c.strip() for c in rows[0]]
    col = {h.lower(): i for i, h in enumerate(header)}

    def get(r: Sequence[str], name: str) -> str:
        i = col.get(name.lower())
        return r[i].strip() if i is not None and i < len(r) else ""

    analyses: list[Analysis] = []
    current: dict[str, Any] | None = None
    done: list[dict[str, Any]] = []
    comp_names: dict[str, str] = {}
    for rownum, r in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in r):
            continue
        cno, ono, sno = (
            get(r, "Comparison Number"),
            get(r, "Outcome Number"),
            get(r, "Subgroup Number"),
        )
        if ono in ("", "0"):
            comp_names[cno] = get(r, "Name")
            continue
        dtype = get(r, "Data Type").upper()
        if dtype:
            prefix = _CSV_TYPES.get(dtype)
            number = f"{cno}.{ono}" + (f".{sno}" if sno not in ("", "0") else "")
            if prefix is None:
                raise DataError(
                    f"{source}, row {rownum}, column 'Data Type': {dtype!r} is not a RevMan "
                    "data type (DIC, CON, IV, OE)"
                )
            current = {"prefix": prefix, "number": number, "row": r, "studies": []}
            done.append(current)
            continue
        if current is None:
            raise DataError(f"{source}, row {rownum}: a study row before any outcome row")
        current["studies"].append(r)
    for item in done:
        r = item["row"]
        prefix = item["prefix"]
        attrs = {
            "EFFECT_MEASURE": get(r, "Effect Measure"),
            "METHOD": {"inverse variance": "IV"}.get(
                get(r, "Statistical Method").lower(), get(r, "Statistical Method")
            ),
            "RANDOM": _CSV_MODEL.get(get(r, "Analysis Model").lower(), "NO"),
        }
        fake = _Attrs(attrs)
        number = item["number"]
        settings = _settings(fake, prefix, source, number)
        stored = {
            "EFFECT_SIZE": cell_number(get(r, "Effect Estimate")),
            "CI_START": cell_number(get(r, "CI Start")),
            "CI_END": cell_number(get(r, "CI End")),
            "Z": cell_number(get(r, "Z")),
            "P_Z": cell_number(get(r, "P(Z)")),
            "CHI2": cell_number(get(r, "Q")),
            "DF": cell_number(get(r, "df")),
            "P_CHI2": cell_number(get(r, "P(Q)")),
            "I2": cell_number(get(r, "I²(Q)") or get(r, "I2(Q)")),
            "TAU2": cell_number(get(r, "Tau²") or get(r, "Tau2")),
            "Q": cell_number(get(r, "Qint")),
            "P_Q": cell_number(get(r, "P(Qint)")),
            "I2_Q": cell_number(get(r, "I²(Qint)") or get(r, "I2(Qint)")),
            "WEIGHT": cell_number(get(r, "Weight")),
        }
        data_type = DATA_TYPES[prefix]
        study_rows = []
        for s in item["studies"]:
            data = {
                "EVENTS_1": get(s, "Events 1"),
                "TOTAL_1": get(s, "Total 1"),
                "EVENTS_2": get(s, "Events 2"),
                "TOTAL_2": get(s, "Total 2"),
                "MEAN_1": get(s, "Mean 1"),
                "SD_1": get(s, "SD 1"),
                "MEAN_2": get(s, "Mean 2"),
                "SD_2": get(s, "SD 2"),
                "EFFECT_SIZE": get(s, "Effect Estimate"),
                "SE": get(s, "SE"),
                "O_E": get(s, "O-E"),
                "VAR": get(s, "Variance"),
            }
            data = {f: data.get(f, "") for f in DATA_FIELDS[data_type]}
            study_rows.append(
                Row(
                    study_id=get(s, "Name"),
                    study=get(s, "Name"),
                    year=get(s, "Year of study"),
                    data=data,
                    stored={
                        "EFFECT_SIZE": cell_number(get(s, "Effect Estimate")),
                        "CI_START": cell_number(get(s, "CI Start")),
                        "CI_END": cell_number(get(s, "CI End")),
                        "SE": cell_number(get(s, "SE")),
                        "VAR": None,
                        "WEIGHT": cell_number(get(s, "Weight")),
                    },
                    estimable=cell_number(get(s, "Effect Estimate")) is not None
                    or data_type == "dichotomous",
                    order=get(s, "User defined order"),
                )
            )
        labels = {
            "group_1": get(r, "Group Label 1"),
            "group_2": get(r, "Group Label 2"),
            "graph_1": get(r, "Left Graph Label"),
            "graph_2": get(r, "Right Graph Label"),
        }
        cno = number.split(".")[0]
        analyses.append(
            Analysis(
                number=number,
                name=get(r, "Name"),
                comparison=comp_names.get(cno, ""),
                labels=labels,
                stored=stored,
                studies=len(study_rows),
                rows=tuple(study_rows),
                **settings,
            )
        )
    return Review(source, "", "", "", tuple(analyses), (), (), from_csv=True)


class _Attrs:
    """The ``get`` of an XML element over a dict (CSV outcome rows read as attributes)."""

    def __init__(self, attrs: Mapping[str, str]) -> None:
        self.attrs = attrs

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.attrs.get(name, default)


def load_review(data: bytes, source: str, path: str) -> Review:
    """A Review from a ``.rm5`` file's bytes or from RevMan's CSV export."""
    if is_rm5(path, data[:4096]):
        return read_review(data, source)
    from ivigmeta.io.readers import decode

    text, _ = decode(data, source)
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise DataError(f"{source}: not a RevMan file (unreadable as CSV: {exc})") from None
    if not is_revman_csv(rows):
        raise DataError(
            f"{source}: not a RevMan file (neither RevMan 5 XML nor its CSV export of analyses)"
        )
    return read_review_csv(rows, source)


# ---------------------------------------------------------------------------------------------
# One analysis as a table every command reads.

TABLE_COLUMNS = {
    "dichotomous": ("treat_events", "treat_total", "control_events", "control_total"),
    "continuous": (
        "treat_mean",
        "treat_sd",
        "treat_n",
        "control_mean",
        "control_sd",
        "control_n",
    ),
    "generic": ("theta", "se"),
    "oe": ("theta", "se"),
}


def _generic_cells(a: Analysis, r: Row) -> list[str]:
    if a.data_type == "oe":
        oe, var = cell_number(r.data.get("O_E")), cell_number(r.data.get("VAR"))
        if oe is None or var is None or var <= 0:
            return ["", ""]
        return [repr(oe / var), repr(1.0 / math.sqrt(var))]
    return [r.data.get("EFFECT_SIZE", ""), r.data.get("SE", "")]


def _cells(a: Analysis, r: Row) -> list[str]:
    d = r.data
    if a.data_type == "dichotomous":
        e1, n1, e2, n2 = (d.get(f, "") for f in DATA_FIELDS["dichotomous"])
        if a.swap_events:
            e1, e2 = _swap(e1, n1), _swap(e2, n2)
        return [e1, n1, e2, n2]
    if a.data_type == "continuous":
        return [d.get(f, "") for f in DATA_FIELDS["continuous"]]
    return _generic_cells(a, r)


def _swap(events: str, total: str) -> str:
    e, n = cell_number(events), cell_number(total)
    if e is None or n is None:
        return events
    return str(int(n - e)) if float(n - e).is_integer() else repr(n - e)


def analysis_table(review: Review, number: str) -> tuple[RawTable, Analysis]:
    """One analysis as rows of cells (study, year, data columns, subgroup), and the analysis.

    Rows RevMan marked not estimable are left out with a note each naming the study and
    RevMan's reason.
    """
    a = review.analysis(number)
    source = f"{review.source} analysis {a.number}"
    header = ["study", "year", *TABLE_COLUMNS[a.data_type]]
    if a.data_type in ("generic", "oe") and a.measure in ("RR", "OR", "RD", "MD", "SMD"):
        header.append("measure")
    if a.subgroups:
        header.append("subgroup")
    body: list[list[str]] = []
    notes: list[str] = []
    for r in a.rows:
        if not r.estimable:
            notes.append(
                f"{source}: study '{r.study}' excluded: RevMan marked it not estimable "
                f"({_not_estimable_reason(a, r)})"
            )
            continue
        cells = [r.study, r.year, *_cells(a, r)]
        if "measure" in header:
            cells.append(a.measure)
        if a.subgroups:
            cells.append(r.subgroup_name or r.subgroup)
        body.append(cells)
    if a.swap_events:
        notes.append(f"{source}: SWAP_EVENTS: non-events analysed as the events, as RevMan")
    if not body:
        raise DataError(f"{source}: no estimable study rows")
    return RawTable(source, [header, *body], ".", tuple(notes)), a


def _not_estimable_reason(a: Analysis, r: Row) -> str:
    d = r.data
    if a.data_type == "dichotomous":
        e1, e2 = cell_number(d.get("EVENTS_1")), cell_number(d.get("EVENTS_2"))
        n1, n2 = cell_number(d.get("TOTAL_1")), cell_number(d.get("TOTAL_2"))
        if e1 == 0 and e2 == 0:
            return "no events in either arm"
        if n1 is not None and n2 is not None and e1 == n1 and e2 == n2:
            return "all participants had the event in both arms"
        if not n1 or not n2:
            return "an arm has no participants"
    if any(not v for v in d.values() if v is not None):
        return "data missing"
    return "as stored in the file"


def review_summary(review: Review) -> dict[str, Any]:
    """The JSON of ``ivigmeta revman``: the review and its analyses with RevMan's numbers."""
    keys = {
        "estimate": "EFFECT_SIZE",
        "ci_low": "CI_START",
        "ci_high": "CI_END",
        "z": "Z",
        "p_value": "P_Z",
        "chi2": "CHI2",
        "df": "DF",
        "p_chi2": "P_CHI2",
        "i2": "I2",
        "tau2": "TAU2",
    }
    return {
        "review": {"id": review.id, "doi": review.doi, "title": review.title},
        "analyses": [
            {
                "number": a.number,
                "name": a.name,
                "comparison": a.comparison,
                "data_type": a.data_type,
                "measure": a.measure,
                "revman_measure": a.revman_measure,
                "method": a.method,
                "model": a.model,
                "k": a.k,
                "studies": a.studies,
                "subgroups": [s.number for s in a.subgroups],
                "revman": {
                    k: (_int(a.stored.get(v)) if k == "df" else a.stored.get(v))
                    for k, v in keys.items()
                },
            }
            for a in review.analyses
        ],
        "unsupported": [{"number": n, "reason": why} for n, why in review.unsupported],
    }


def revman_raw(
    data: bytes, source: str, path: str, number: str | None
) -> tuple[RawTable, Analysis]:
    """The table of analysis ``number`` of a RevMan file (the only one when ``number`` is None)."""
    review = load_review(data, source, path)
    if number is None:
        if len(review.analyses) != 1:
            raise DataError(
                f"{source}: a RevMan file with {len(review.analyses)} analyses: choose one with "
                f"--analysis (analyses: {', '.join(review.numbers()) or 'none'}; "
                "'ivigmeta revman FILE' lists them)"
            )
        number = review.analyses[0].number
    return analysis_table(review, number)


def table_settings(a: Analysis) -> dict[str, Any]:
    """The analysis's own settings, as the commands' option values they stand for."""
    # O - E data enter as (O - E) / V with variance 1 / V: Peto's estimate is then the IV one
    common = (
        {"MH": "MH", "PETO": "PETO"}.get(a.method, "IV") if a.data_type == "dichotomous" else "IV"
    )
    return {
        "software": "revman",
        "analysis": a.number,
        "name": a.name,
        "measure": a.measure,
        "common_method": common,
        "model": a.model,
        "level": a.ci_total,
        "labels": dict(a.labels),
        "subgroups": "subgroup" if a.subgroups else None,
    }
