"""Cold start: what `ivigmeta --help` and `ivigmeta pool studies.csv` import.

Each command runs in a fresh interpreter through a small wrapper that calls the console-script
entry point and then writes the names in sys.modules to a file, so the test sees exactly what the
command imported (stdout stays the command's own).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import ROOT

WRAPPER = """
import json, sys
out = sys.argv[1]
sys.argv = ["ivigmeta", *sys.argv[2:]]
try:
    from ivigmeta.cli import main
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
with open(out, "w") as fh:
    json.dump({"code": code, "modules": sorted(sys.modules)}, fh)
"""


def imported(tmp_path, *args: str) -> set[str]:
    out = tmp_path / "modules.json"
    proc = subprocess.run(
        [sys.executable, "-c", WRAPPER, str(out), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    data = json.loads(out.read_text())
    assert data["code"] in (0, None), proc.stderr
    assert proc.stdout.strip(), "the command printed nothing"
    return set(data["modules"])


def loaded(modules: set[str], package: str) -> bool:
    return any(m == package or m.startswith(package + ".") for m in modules)


@pytest.mark.parametrize(
    "args", [["--help"], ["batch", "--help"], ["pool", "--help"], ["transf", "--help"]]
)
def test_help_imports_no_numeric_stack(tmp_path, args):
    modules = imported(tmp_path, *args)
    heavy = [p for p in ("numpy", "pandas", "scipy", "matplotlib") if loaded(modules, p)]
    assert heavy == []


def test_pool_with_defaults_imports_no_pandas_scipy_stats_or_matplotlib(tmp_path):
    modules = imported(tmp_path, "pool", "studies.csv")
    assert "ivigmeta.core.pooling" in modules  # the command really ran
    for package in ("pandas", "scipy.stats", "matplotlib"):
        assert not loaded(modules, package), package


def test_pool_runs_on_the_engine_without_scipy(tmp_path):
    """pool is the vectorized engine on one group: numpy, but no scipy on the default path."""
    modules = imported(tmp_path, "pool", "studies.csv", "--format", "json")
    assert "ivigmeta.core.groups" in modules
    assert not loaded(modules, "scipy")


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_batch_with_defaults_imports_no_pandas_or_scipy(tmp_path, fmt):
    """The default batch path (DL, z) needs numpy alone: no pandas or scipy import time (pandas
    stays the door for DataFrames: batch_pool, the Dask recipe, Parquet output)."""
    table = tmp_path / "long.csv"
    table.write_text(
        "meta,treat_events,treat_total,control_events,control_total\n"
        "A,3,10,1,12\nA,5,20,4,19\nB,2,15,6,14\nB,7,30,9,31\nB,1,8,2,9\n"
    )
    modules = imported(tmp_path, "batch", str(table), "-g", "meta", "-f", fmt)
    assert "ivigmeta.batching.run" in modules
    for package in ("pandas", "scipy", "matplotlib"):
        assert not loaded(modules, package), package


def test_commands_are_imported_on_first_use(tmp_path):
    """A command imports its own module only (ivigmeta.cli.COMMAND_MODULES): batch pays for
    neither pool's result classes nor the report's templates, pool not for the report."""
    table = tmp_path / "long.csv"
    table.write_text(
        "meta,treat_events,treat_total,control_events,control_total\nA,3,10,1,12\nA,5,20,4,19\n"
    )
    batch = imported(tmp_path, "batch", str(table), "-g", "meta")
    for module in ("ivigmeta.cli.commands", "ivigmeta.results", "ivigmeta.cli.report", "jinja2"):
        assert module not in batch, module
    pool = imported(tmp_path, "pool", "studies.csv")
    for module in ("ivigmeta.cli.batch", "ivigmeta.cli.report", "ivigmeta.cli.reproduce", "jinja2"):
        assert not loaded(pool, module), module


def test_every_lazy_command_resolves_to_its_name():
    from ivigmeta.cli import COMMAND_MODULES, cli

    assert sorted(cli.commands) == sorted(COMMAND_MODULES)
    assert all(cmd.name == name for name, cmd in cli.commands.items())
