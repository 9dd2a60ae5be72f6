"""Making text from the user's file safe to print: terminal, Markdown and CSV.

Labels, subgroup levels, moderator names and notes come from the input table, which anyone may
have written. Every writer passes its text cells through one function here, so a label is shown
as the literal text it is: never as a colour code on the terminal, as a link or raw HTML in a
Markdown viewer, or as a formula in a spreadsheet. Numbers are never touched.
"""

from __future__ import annotations

import re

# ANSI/VT escape sequences (CSI ... final byte, OSC ... BEL or ST, and two-byte ESC forms),
# removed whole so no "[31m" residue is left once the ESC itself is gone.
_ANSI = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC (hyperlinks, window titles)
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"  # DCS, SOS, PM, APC strings
    r"|\x1b[ -/]*[0-~]?"  # other ESC sequences, or a lone ESC
    r"|\x9b[0-?]*[ -/]*[@-~]"  # 8-bit CSI
)
# Line and tab breaks become a space (a newline would split a table row); every other C0/C1
# control, DEL, and the bidirectional overrides that make text display in another order than
# it reads are dropped. Printable Unicode (accents, CJK, emoji with joiners) is kept.
_BREAKS = re.compile(r"\r\n|[\t\n\v\f\r\x85\u2028\u2029]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def plain(text: str) -> str:
    """``text`` without escape sequences or control characters, on one line.

    Parameters
    ----------
    text : str
        Any text from the input (a label, a level, a column name, a message).

    Returns
    -------
    str
        The printable text; breaks (newline, tab, carriage return) become one space each.
    """
    if text.isprintable():  # the common case: nothing to do
        return text
    return _CONTROL.sub("", _BREAKS.sub(" ", _ANSI.sub("", text)))


# Markdown (CommonMark with GitHub's tables, strikethrough and autolinks). Characters that open
# or close an inline construct anywhere are always escaped; those that matter only where a block
# starts (a list marker, a heading, a quote) are escaped there. A backslash before any ASCII
# punctuation is a valid escape, so the escaped text reads back exactly (md_unescape).
_MD_ALWAYS = re.compile(
    r"[\\`*|~]"  # escapes, code spans, emphasis, table cells, strikethrough
    r"|<(?=[A-Za-z/!?])"  # raw HTML or an autolink ("< 0.001" is neither)
    r"|_(?![^\W_])|(?<![^\W_])_"  # "_" except inside a word, where it is never emphasis
    r"|&(?=#?\w+;)"  # an entity (&lt;) would be decoded
    r"|\](?=[(\[:])"  # closes a link, image, reference or definition ("[a](x)", "[a]: x")
)
_MD_BLOCK_START = re.compile(r"^(\s*)(>|\[(?=[ xX]\])|(?:[-+=#]|\d{1,9}[.)])(?=\s|$|[-+=#]*\s*$))")
_MD_CLOSING_HASHES = re.compile(r"(\s)(#+\s*)$")
_MD_ESCAPED = re.compile(r"\\([!-/:-@\[-`{-~])")


def md_escape(text: str) -> str:
    """``text`` as literal Markdown text, for a table cell, a heading or a list item.

    Control characters and escape sequences are removed first (:func:`plain`); then every
    Markdown and HTML metacharacter that could change the text's meaning is backslash-escaped:
    ``<b>`` stays ``<b>``, ``[a](x)`` is no link, ``*x*`` no emphasis, ``|`` no cell boundary.

    Parameters
    ----------
    text : str
        Text to show as is.

    Returns
    -------
    str
        Markdown source that renders as ``plain(text)``.
    """
    out = _MD_ALWAYS.sub(lambda m: "\\" + m.group(0), plain(text))
    block = _MD_BLOCK_START.match(out)
    if block:
        marker = block.group(2)
        escaped = marker[:-1] + "\\" + marker[-1] if marker[0].isdigit() else "\\" + marker
        out = block.group(1) + escaped + out[block.end() :]
    return _MD_CLOSING_HASHES.sub(lambda m: m.group(1) + "\\" + m.group(2), out)


def md_unescape(text: str) -> str:
    """The inverse of :func:`md_escape` (for text that went through ``plain`` already)."""
    return _MD_ESCAPED.sub(r"\1", text)


def md_code(text: str, in_table: bool = False) -> str:
    """``text`` as a Markdown code span (a path, a command line), whatever backticks it holds.

    ``in_table``: the span is in a table cell, where GitHub's tables split at ``|`` even inside
    code, so pipes are written ``\\|`` (the table removes the backslash).
    """
    body = plain(text)
    runs = [len(r) for r in re.findall(r"`+", body)]
    fence = "`" * (max(runs) + 1 if runs else 1)
    if body.startswith("`") or body.endswith("`"):
        body = f" {body} "
    if in_table:
        body = body.replace("|", "\\|")
    return f"{fence}{body}{fence}"


# CSV: a cell a spreadsheet would read as a formula starts with one of these (OWASP, "CSV
# Injection"). A number written as text ("-0.25", "-inf", "1e-5") is data, not a formula.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf|infinity|nan)", re.I)


def csv_guard(text: str) -> str:
    """``text`` with a ``'`` in front when a spreadsheet would run it as a formula.

    Only text cells starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return are
    changed; numbers (``-0.25``, ``-inf``) are returned as they are.
    """
    if text.startswith(FORMULA_START) and not _NUMBER.fullmatch(text):
        return "'" + text
    return text
