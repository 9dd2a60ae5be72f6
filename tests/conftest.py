"""Shared fixtures: the paper's data, and an in-process CLI runner that lets crashes surface."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import settings

from ivigmeta.cli import cli
from ivigmeta.core.effects import compute_effects
from ivigmeta.core.pooling import fit
from ivigmeta.io.studies import load_table

# Property tests draw the same examples on every run ("repeatable"), so that CI's verdict on a
# commit does not depend on the luck of the draw. To hunt for new failures, draw fresh ones:
# IVIGMETA_HYPOTHESIS=explore python -m pytest tests/test_fuzz.py --hypothesis-seed=N
settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("IVIGMETA_HYPOTHESIS", "repeatable"))

ROOT = Path(__file__).resolve().parent.parent
STUDIES = ROOT / "studies.csv"


@pytest.fixture(scope="session")
def studies_path() -> Path:
    return STUDIES


@pytest.fixture(scope="session")
def paper_fit():
    """DerSimonian-Laird fit of the paper's Table 2 counts with the default options."""
    return fit(compute_effects(load_table(str(STUDIES)).studies))


class Invoker:
    """Run ``ivigmeta ARGS`` in-process; exceptions other than SystemExit propagate."""

    def __init__(self) -> None:
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | None = None):
        return self.runner.invoke(cli, list(args), input=input, catch_exceptions=False)


@pytest.fixture
def run() -> Invoker:
    return Invoker()


def write_columns(tmp_path: Path, name: str, columns: dict[str, list]) -> str:
    """A CSV ``name`` in ``tmp_path`` with a study column s1, s2, ... and ``columns``."""
    import pandas as pd

    k = len(next(iter(columns.values())))
    frame = pd.DataFrame({"study": [f"s{i + 1}" for i in range(k)]})
    for col, values in columns.items():
        frame[col] = values
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return str(path)


def counts_csv(path: Path, rows: list[dict], extra: tuple[str, ...] = ()) -> str:
    """A counts table at ``path`` from reference rows with metafor's names (``slab``, ``ai``,
    ``n1i``, ``ci``, ``n2i``; ``year`` when given) and the ``extra`` columns as they are."""
    has_year = all("year" in r for r in rows)
    header = ["study", *(["year"] if has_year else []), "treat_events", "treat_total"]
    header += ["control_events", "control_total", *extra]
    lines = [",".join(header)]
    for r in rows:
        cells = [r["slab"], *([r["year"]] if has_year else []), r["ai"], r["n1i"], r["ci"]]
        cells += [r["n2i"], *(r[c] for c in extra)]
        lines.append(",".join(str(c) for c in cells))
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def pool_json(run, path: str, *args: str) -> dict:  # type: ignore[no-untyped-def]
    """``ivigmeta pool PATH --format json ARGS``, checked to exit 0, parsed."""
    import json

    out = run("pool", path, "--format", "json", *args)
    assert out.exit_code == 0, out.stderr
    return json.loads(out.stdout)


def assert_row_error(out, path, row: int, message: str) -> None:  # type: ignore[no-untyped-def]
    """``out`` (a CLI result) failed with exit 1 and exactly one ``Error: PATH, row ROW, column
    ...`` line matching the regular expression ``message``, no traceback."""
    import re

    assert out.exit_code == 1
    errors = [x for x in out.stderr.splitlines() if x.startswith("Error:")]
    assert len(errors) == 1 and "Traceback" not in out.stderr
    assert errors[0].startswith(f"Error: {path}, row {row}, column ")
    assert re.search(message, errors[0]), errors[0]
