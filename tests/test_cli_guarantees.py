"""User-facing guarantees of the command line: option values are checked before any work, an
output never replaces an input, and a failed write is a one-line error that leaves nothing behind."""

from __future__ import annotations

import errno
import json
import math
import os
import shutil
import sys

import pytest

from ivigmeta.cli import main

# Every command taking --level and the model options, with what else it needs to run.
LEVEL_COMMANDS = {
    "pool": [],
    "heterogeneity": [],
    "loo": [],
    "subgroup": ["--by", "nk_criterion"],
    "cumulative": [],
    "influence": [],
    "bias": [],
    "metareg": ["--mod", "year"],
    "batch": ["-g", "nk_criterion"],
    "report": ["-o", "{tmp}/report"],
}
COMMON_COMMANDS = [c for c in LEVEL_COMMANDS if c != "metareg"]  # metareg has no --common


def command_args(command: str, studies_path, tmp_path, *extra: str) -> list[str]:
    rest = [a.format(tmp=tmp_path) for a in LEVEL_COMMANDS[command]]
    return [command, str(studies_path), *rest, *extra]


def run_main(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """``ivigmeta ARGS`` through the console-script entry point (which turns crashes into the
    'internal error' line): (exit status, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["ivigmeta", *args])
    monkeypatch.delenv("IVIGMETA_DEBUG", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        main()
    out, err = capsys.readouterr()
    code = exit_info.value.code
    return (code if isinstance(code, int) else 1), out, err


def assert_one_line_error(err: str, prefix: str) -> str:
    lines = [line for line in err.strip().splitlines() if not line.startswith("note: ")]
    assert len(lines) == 1, err
    assert lines[0].startswith(f"Error: {prefix}"), lines[0]
    assert "internal error" not in lines[0]
    return lines[0]


# ---------------------------------------------------------------------------------------------
# --level: a percentage strictly between 0 and 100; a fraction is a usage error naming the percent


@pytest.mark.parametrize("command", sorted(LEVEL_COMMANDS))
@pytest.mark.parametrize("value, meant", [("0.9", "90"), ("0.95", "95"), ("0.999", "99.9")])
def test_fraction_level_is_usage_error_naming_the_percent(
    run, studies_path, tmp_path, command, value, meant
):
    result = run(*command_args(command, studies_path, tmp_path, "--level", value))
    assert result.exit_code == 2, result.output
    assert f"did you mean --level {meant}?" in result.stderr
    assert not (tmp_path / "report").exists()


@pytest.mark.parametrize("command", sorted(LEVEL_COMMANDS))
@pytest.mark.parametrize("value", ["0", "-5", "100", "150", "nan", "inf", "abc"])
def test_level_outside_0_100_is_usage_error(run, studies_path, tmp_path, command, value):
    result = run(*command_args(command, studies_path, tmp_path, "--level", value))
    assert result.exit_code == 2, result.output
    assert "Invalid value for '--level'" in result.stderr


@pytest.mark.parametrize(
    "value, z", [("1", 0.01253346951), ("50", 0.6744897502), ("99.99", 3.890591886)]
)
def test_levels_in_range_are_accepted(run, studies_path, value, z):
    result = run("pool", str(studies_path), "--level", value, "-f", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    random = data["random"]
    # the interval is theta -/+ z se on the log scale: z is qnorm(1/2 + level/200) (R's value)
    half = (math.log(random["ci_high"]) - math.log(random["ci_low"])) / 2
    assert half == pytest.approx(z * random["se"], rel=1e-6)


# ---------------------------------------------------------------------------------------------
# Unknown option values are usage errors: click's message, exit status 2


BAD_VALUES = [
    (
        "--tau2",
        "FOO",
        "'FOO' is not one of 'DL', 'REML', 'ML', 'PM', 'HE', 'SJ', 'EB', 'HS', 'HSk', 'GENQ', "
        "'PMM', 'SJIT', 'DLIT'.",
    ),
    ("--measure", "HR", "'HR' is not one of 'RR', 'OR', 'RD', 'AS', 'MD'"),
    ("--ci", "x", "'x' is not one of 'z', 'hk', 'adhoc', 'hc', 't'."),
    ("--pi", "x", "'x' is not one of 'z', 't'."),
    ("--common-ci", "x", "'x' is not one of 'z', 'hk'."),
    ("--cc-policy", "x", "'x' is not one of 'only0', 'all', 'none'."),
]


@pytest.mark.parametrize(
    ("command", "option", "value", "message"),
    [
        (command, *bad)
        for command in sorted(LEVEL_COMMANDS)
        for bad in BAD_VALUES
        # metareg has no prediction interval or common-effect model
        if not (command == "metareg" and bad[0] in ("--pi", "--common-ci"))
    ],
)
def test_unknown_option_value_is_usage_error(
    run, studies_path, tmp_path, command, option, value, message
):
    result = run(*command_args(command, studies_path, tmp_path, option, value))
    assert result.exit_code == 2, result.output
    assert f"Error: Invalid value for '{option}': {message}" in result.stderr
    assert not (tmp_path / "report").exists()


@pytest.mark.parametrize("command", sorted(COMMON_COMMANDS))
def test_unknown_common_method_is_usage_error(run, studies_path, tmp_path, command):
    result = run(*command_args(command, studies_path, tmp_path, "--common", "x"))
    assert result.exit_code == 2, result.output
    assert "Invalid value for '--common': 'x' is not one of 'IV', 'MH', 'PETO'." in result.stderr


@pytest.mark.parametrize(
    "given, canonical",
    [
        (["--tau2", "reml"], ["--tau2", "REML"]),
        (["--measure", "or"], ["--measure", "OR"]),
        (["--ci", "HK"], ["--ci", "hk"]),
        (["--measure", "OR", "--common", "peto"], ["--measure", "OR", "--common", "PETO"]),
        (["--common", "Mh"], ["--common", "MH"]),
    ],
)
def test_option_values_in_either_case_still_work(run, studies_path, given, canonical):
    got = run("pool", str(studies_path), *given, "-f", "json")
    want = run("pool", str(studies_path), *canonical, "-f", "json")
    assert got.exit_code == 0, got.output
    assert got.stdout == want.stdout


def test_batch_accepts_lower_case_tau2(run, studies_path):
    got = run("batch", str(studies_path), "-g", "nk_criterion", "--tau2", "reml")
    want = run("batch", str(studies_path), "-g", "nk_criterion", "--tau2", "REML")
    assert got.exit_code == 0, got.output
    assert got.stdout == want.stdout


def test_reference_keeps_the_documented_metavars(run):
    text = run("pool", "--help").stdout
    for shown in ("--measure RR|OR|RD", "--cc-policy only0|all|none", "--tau2 DL|REML|ML|PM|HE|SJ",
                  "--ci z|hk", "--common IV|MH|PETO", "--level FLOAT"):  # fmt: skip
        assert shown in text


# ---------------------------------------------------------------------------------------------
# Outputs never destroy inputs


@pytest.fixture
def data(tmp_path, studies_path):
    """A private copy of the study table (tests may try to overwrite it)."""
    path = tmp_path / "in.csv"
    shutil.copyfile(studies_path, path)
    return path


def link(source, name) -> str:
    """Another name for ``source``: a hard link (the same inode)."""
    os.link(source, name)
    return str(name)


def test_batch_output_onto_its_input_is_refused(run, data):
    before = data.read_bytes()
    result = run("batch", str(data), "-g", "nk_criterion", "-o", str(data))
    assert result.exit_code == 1
    line = assert_one_line_error(result.stderr, f"-o {data} is the input {data}")
    assert "destroy" in line
    assert data.read_bytes() == before
    assert not result.stdout


@pytest.mark.parametrize("kind", ["hard link", "symbolic link", "another spelling"])
def test_batch_output_onto_another_name_of_its_input_is_refused(run, data, tmp_path, kind):
    before = data.read_bytes()
    if kind == "hard link":
        out = link(data, tmp_path / "out.csv")
    elif kind == "symbolic link":
        out = str(tmp_path / "out.csv")
        os.symlink(data, out)
    else:
        out = str(tmp_path / "." / "sub" / ".." / "in.csv")
        (tmp_path / "sub").mkdir()
    result = run("batch", str(data), "-g", "nk_criterion", "-o", out)
    assert result.exit_code == 1
    assert_one_line_error(result.stderr, f"-o {out} is ")
    assert f"the input {data}" in result.stderr
    assert data.read_bytes() == before


def test_batch_output_to_a_directory_is_an_error(run, data, tmp_path):
    out = tmp_path / "results"
    out.mkdir()
    result = run("batch", str(data), "-g", "nk_criterion", "-o", str(out))
    assert result.exit_code == 1
    assert_one_line_error(result.stderr, f"{out}: is a directory")
    assert list(out.iterdir()) == []


@pytest.mark.parametrize(
    "command, extra",
    [
        ("pool", []),
        ("heterogeneity", []),
        ("loo", []),
        ("subgroup", ["--by", "nk_criterion"]),
        ("bias", []),
        ("influence", []),
    ],
)
def test_plot_onto_its_input_is_refused(run, data, tmp_path, command, extra):
    before = data.read_bytes()
    fig = link(data, tmp_path / "fig.png")
    result = run(command, str(data), *extra, "--plot", fig)
    assert result.exit_code == 1
    assert_one_line_error(result.stderr, f"--plot {fig} is the same file as the input {data}")
    assert data.read_bytes() == before
    assert not result.stdout  # refused before any work


def test_rob_plot_onto_its_input_is_refused(run, tmp_path):
    rob = tmp_path / "rob.csv"
    rob.write_text("study,D1,D2,D3,D4,D5,D6,D7\nA,low,low,low,low,low,low,low\n", encoding="utf-8")
    fig = link(rob, tmp_path / "rob.svg")
    result = run("rob", str(rob), "--plot", fig)
    assert result.exit_code == 1
    assert_one_line_error(result.stderr, f"--plot {fig} is the same file as the input {rob}")
    assert rob.read_text(encoding="utf-8").startswith("study,")


@pytest.mark.parametrize("name", ["report.md", "report.html", "figures/pool.png"])
def test_report_onto_its_input_is_refused(run, data, tmp_path, name):
    before = data.read_bytes()
    out = tmp_path / "rep"
    (out / "figures").mkdir(parents=True)
    target = link(data, out / name)
    result = run("report", str(data), "-o", str(out))
    assert result.exit_code == 1
    assert_one_line_error(result.stderr, f"-o {target} is the same file as the input {data}")
    assert data.read_bytes() == before


PUBLISHED = """[paper]
data = "in.csv"

[[number]]
label = "Table 2, random RR"
command = "pool"
args = {args}
path = "random.estimate"
printed = "1.98"
"""


@pytest.mark.parametrize(
    "args, option",
    [
        ('["--plot", "in.csv"]', "--plot"),
        ('["--plot=fig.png"]', "--plot"),
        ('["-o", "in.csv"]', "-o"),
        ('["--by", "nk_criterion", "--tmpdir", "x"]', "--tmpdir"),
    ],
)
@pytest.mark.parametrize("command", ["reproduce", "report"])
def test_published_args_may_not_write_files(run, data, tmp_path, args, option, command):
    before = data.read_bytes()
    toml = tmp_path / "published.toml"
    toml.write_text(PUBLISHED.format(args=args), encoding="utf-8")
    if command == "reproduce":
        result = run("reproduce", str(toml))
    else:
        result = run("report", str(data), "-o", str(tmp_path / "rep"), "--published", str(toml))
    assert result.exit_code == 1
    line = assert_one_line_error(result.stderr, f"{toml}, number 1 ('Table 2, random RR'): ")
    assert f"'{option}' is not allowed in 'args'" in line
    assert data.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "published.toml"]


def test_published_args_keep_analysis_options(run, data, tmp_path):
    toml = tmp_path / "published.toml"
    args = '["--tau2", "DL", "--level", "95", "--cc=0.5"]'
    toml.write_text(PUBLISHED.format(args=args), encoding="utf-8")
    result = run("reproduce", str(toml), "-f", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["numbers"][0]["verdict"] == "reproduced"


def test_published_args_take_negative_numbers_as_values():
    from ivigmeta.audit.published import PublishedError, parse_published

    text = PUBLISHED.replace('command = "pool"', 'command = "bias"')
    ok = parse_published(text.format(args='["--measure", "RD", "--target", "-0.05"]'), "p.toml")
    assert ok.numbers[0].args == ("--measure", "RD", "--target", "-0.05")
    with pytest.raises(PublishedError, match=r"p.toml, number 1 .*'--plot' is not allowed"):
        parse_published(text.format(args='["--target", "-0.05", "--plot", "f.png"]'), "p.toml")


# ---------------------------------------------------------------------------------------------
# A failed write is a user error, one line naming the path, and leaves no partial output


def no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_plot_under_a_file_is_a_user_error(monkeypatch, capsys, data):
    fig = f"{data}/fig.png"
    code, out, err = run_main(monkeypatch, capsys, "pool", str(data), "--plot", fig)
    assert code == 1
    assert_one_line_error(err, f"{fig}: {os.strerror(errno.ENOTDIR)}")
    assert not out


def test_unwritable_plot_directory_is_a_user_error(monkeypatch, capsys, data, tmp_path):
    import tempfile

    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    # The tests may run as root, which chmod cannot keep out: refuse the temporary file instead.
    monkeypatch.setattr(tempfile, "mkstemp", denied)
    fig = str(tmp_path / "fig.png")
    code, _, err = run_main(monkeypatch, capsys, "pool", str(data), "--plot", fig)
    assert code == 1
    assert_one_line_error(err, f"{fig}: ")
    assert os.strerror(errno.EACCES) in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_full_disk_writing_a_plot_leaves_nothing(monkeypatch, capsys, data, tmp_path):
    monkeypatch.setattr(os, "replace", no_space)
    fig = str(tmp_path / "fig.png")
    code, _, err = run_main(monkeypatch, capsys, "pool", str(data), "--plot", fig)
    assert code == 1
    assert_one_line_error(err, f"{fig}: ")
    assert os.strerror(errno.ENOSPC) in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_full_disk_writing_batch_output_leaves_nothing(monkeypatch, capsys, data, tmp_path):
    monkeypatch.setattr(os, "replace", no_space)
    out = str(tmp_path / "out.csv")
    code, stdout, err = run_main(
        monkeypatch, capsys, "batch", str(data), "-g", "nk_criterion", "-o", out, "-j", "1"
    )
    assert code == 1
    assert_one_line_error(err, f"{out}: ")
    assert os.strerror(errno.ENOSPC) in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_batch_output_across_file_systems_is_renamed_into_place(run, data, tmp_path, monkeypatch):
    """--tmpdir on another file system: os.replace fails with EXDEV and the output is copied
    beside the target, then renamed; the result is the same as without --tmpdir."""
    want = run("batch", str(data), "-g", "nk_criterion").stdout
    real = os.replace
    staged = []

    def cross_device(src, dst):
        if not staged:
            staged.append(src)
            raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))
        return real(src, dst)

    monkeypatch.setattr(os, "replace", cross_device)
    out = tmp_path / "out.csv"
    result = run("batch", str(data), "-g", "nk_criterion", "-o", str(out), "-j", "1")
    assert result.exit_code == 0, result.output
    assert staged and out.read_text() == want
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.csv"]


def test_batch_output_under_a_file_is_refused_before_any_work(run, data):
    out = f"{data}/out.csv"
    result = run("batch", str(data), "-g", "nk_criterion", "-o", out)
    assert result.exit_code == 1
    assert_one_line_error(result.stderr, f"{out}: {os.strerror(errno.ENOTDIR)}")
    assert "pooled" not in result.stderr


def test_report_figures_path_taken_by_a_file_is_a_user_error(monkeypatch, capsys, data, tmp_path):
    out = tmp_path / "rep"
    out.mkdir()
    (out / "figures").write_text("not a directory")
    code, _, err = run_main(monkeypatch, capsys, "report", str(data), "-o", str(out))
    assert code == 1
    assert_one_line_error(err, f"{out / 'figures'}: exists and is not a directory")
    assert sorted(p.name for p in out.iterdir()) == ["figures"]


def test_report_under_a_file_is_a_user_error(monkeypatch, capsys, data):
    out = f"{data}/rep"
    code, _, err = run_main(monkeypatch, capsys, "report", str(data), "-o", out)
    assert code == 1
    assert_one_line_error(err, f"{out}: {os.strerror(errno.ENOTDIR)}")


def test_full_disk_writing_the_report_leaves_no_partial_file(monkeypatch, capsys, data, tmp_path):
    monkeypatch.setattr(os, "replace", no_space)
    out = tmp_path / "rep"
    code, _, err = run_main(
        monkeypatch, capsys, "report", str(data), "-o", str(out), "--no-figures"
    )
    assert code == 1
    assert_one_line_error(err, f"{out}: ")
    assert os.strerror(errno.ENOSPC) in err
    assert list(out.iterdir()) == []
