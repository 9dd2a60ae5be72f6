"""Tables in a real terminal: the CLI run in a pseudo-terminal of 60, 80, 100 and 120 columns.

Every line fits the terminal; every cell of every column shown appears whole on the screen (a
number is never cut; a label may wrap between words); the columns left out are named in a note
on stderr; the pooled estimates of the JSON output are on the screen as rounded. A pipe gets
the natural width and no styles; a terminal gets bold summary rows unless NO_COLOR is set.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios

import pytest
from conftest import ROOT

import ivigmeta
from ivigmeta.render.table import fit_columns, wrapping_columns
from ivigmeta.render.views import VIEWS

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
WIDTHS = (60, 80, 100, 120)
STUDIES = str(ROOT / "studies.csv")
BCG = str(ROOT / "docs" / "examples" / "bcg.csv")


def in_terminal(args: list[str], columns: int, env: dict | None = None) -> tuple[str, str]:
    """``(screen text, stderr)`` of ``ivigmeta ARGS`` with stdout on a pseudo-terminal."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    environ = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
    environ.update(TERM="xterm", **(env or {}))
    proc = subprocess.Popen(
        [sys.executable, "-m", "ivigmeta", *args],
        stdin=slave,
        stdout=slave,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=environ,
        close_fds=True,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    assert proc.wait(timeout=60) == 0, stderr
    return b"".join(chunks).decode().replace("\r\n", "\n"), stderr


def _fit():
    return ivigmeta.pool(STUDIES)


CASES = {
    "pool": (["pool", STUDIES], "pool", lambda fit: fit.analysis),
    "subgroup": (
        ["subgroup", STUDIES, "--by", "nk_criterion"],
        "subgroup",
        lambda fit: fit.subgroup("nk_criterion"),
    ),
    "influence": (["influence", STUDIES], "influence", lambda fit: fit.influence()),
    "loo": (["loo", STUDIES], "loo", lambda fit: fit.loo()),
    "bias": (["bias", STUDIES], "bias", lambda fit: fit.bias()),
    # Four-decimal coefficients and intervals: even at 60 columns no number is squeezed.
    "metareg": (
        [
            "metareg",
            BCG,
            "--mod",
            "ablat",
            "--mod",
            "alloc",
            "--permutations",
            "20",
            "--seed",
            "1",
            "--predict",
            "ablat=20,alloc=random",
        ],
        "metareg",
        lambda fit: ivigmeta.pool(BCG).metareg(
            ["ablat", "alloc"], predict="ablat=20,alloc=random", permutations=20, seed=1
        ),
    ),  # fmt: skip
}


@pytest.mark.parametrize("columns", WIDTHS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_no_cell_is_cut_in_a_terminal(case, columns):
    args, view, result_of = CASES[case]
    screen, stderr = in_terminal(args, columns)
    plain = ANSI.sub("", screen)
    lines = plain.splitlines()
    assert lines, stderr
    assert max(len(line.rstrip()) for line in lines) <= columns
    flat = " ".join(plain.split())
    for sec in VIEWS[view].sections(result_of(_fit())):
        keep, _ = fit_columns(sec, columns)
        assert 0 in keep
        wraps = wrapping_columns(sec)
        for row in sec.rows:
            for i in keep:
                cell = row[i]
                if i in wraps:
                    # labels and prose wrap between words: each word whole
                    assert all(w in flat for w in cell.split()), (sec.columns[i], cell)
                else:
                    assert cell in plain, (sec.columns[i], cell)  # whole, on one line
        gone = [c for i, c in enumerate(sec.columns) if i not in keep]
        if gone:
            said = " ".join(stderr.split())
            assert "left out to fit" in said and ", ".join(gone) in said


@pytest.mark.parametrize("columns", WIDTHS)
def test_the_json_estimates_are_on_the_screen(columns):
    screen, _ = in_terminal(["pool", STUDIES], columns)
    out = subprocess.run(
        [sys.executable, "-m", "ivigmeta", "pool", STUDIES, "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    data = json.loads(out.stdout)
    plain = ANSI.sub("", screen)
    for s in data["studies"]:
        assert f"{s['estimate']:.2f} [{s['ci_low']:.2f}, {s['ci_high']:.2f}]" in plain
    r = data["random"]
    assert f"{r['estimate']:.2f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}]" in plain


def test_summary_rows_are_bold_in_a_terminal_and_plain_with_no_color():
    screen, _ = in_terminal(["pool", STUDIES], 120)
    assert "\x1b[1m" in screen
    quiet, _ = in_terminal(["pool", STUDIES], 120, env={"NO_COLOR": "1"})
    assert "\x1b[" not in quiet


def test_a_pipe_gets_the_natural_width_and_no_styles():
    out = subprocess.run(
        [sys.executable, "-m", "ivigmeta", "pool", STUDIES],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "40"},
    )
    assert "\x1b[" not in out.stdout
    assert "left out" not in out.stderr
    header = next(line for line in out.stdout.splitlines() if line.startswith("Study"))
    for column in ("Duration, intervention", "Events, control", "Weight (random)"):
        assert column in header


def test_wide_shows_every_column_in_a_terminal():
    screen, stderr = in_terminal(["pool", STUDIES, "--wide"], 60)
    assert "Weight (random)" in ANSI.sub("", screen)
    assert "left out" not in stderr
