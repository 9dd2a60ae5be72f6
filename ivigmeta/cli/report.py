"""``ivigmeta report``: the whole analysis as one Markdown and one self-contained HTML document."""

from __future__ import annotations

import os
import shlex
import sys
from typing import Any

import click
from click.core import ParameterSource

from ivigmeta.cli.common import (
    INPUT_KEY,
    MODEL_KEY,
    check_not_input,
    effect_options,
    file_argument,
    glmm_option,
    handle_errors,
    input_options,
    input_settings,
    model_options,
    note,
    parse_labels,
)
from ivigmeta.errors import DataError

OWN_PARAMS = ("file", "out_dir", "published", "columns", "no_figures", "title", "labels", "glmm")


def option_args(ctx: click.Context) -> list[str]:
    """The analysis options of this invocation as command-line arguments for the other commands."""
    args: list[str] = []
    stored = ctx.meta.get(INPUT_KEY, {})  # input options keep their values on the context
    model = ctx.meta.get(MODEL_KEY, {})  # and so do --pi, --common-ci, --tau2-weights
    for param in ctx.command.params:
        if not isinstance(param, click.Option) or param.name in OWN_PARAMS:
            continue
        if param.name in ctx.params:
            if ctx.get_parameter_source(param.name) == ParameterSource.DEFAULT:
                # left at its default: each command's own default applies (for a RevMan
                # analysis, the file's measure, method and level)
                continue
            value = ctx.params[param.name]
        else:
            if ctx.get_parameter_source(param.name or "") == ParameterSource.DEFAULT:
                continue  # --missing error: each command's own default
            name = param.name or ""
            if name.startswith("model_"):
                value = model.get(name.removeprefix("model_"))
            else:
                value = stored.get(name.removeprefix("input_"))
        flag = next((o for o in param.opts if o.startswith("--")), param.opts[0])
        if param.is_flag:
            if value:
                args.append(flag)
        elif param.multiple:
            for v in value or ():
                args += [flag, str(v)]
        elif value is not None:
            args += [flag, str(value)]
    return args


def invoked_command_line(ctx: click.Context) -> str:
    """The exact command line when run as a program; otherwise rebuilt from the parameters."""
    if os.path.basename(sys.argv[0]) in ("ivigmeta", "__main__.py") and "report" in sys.argv[1:]:
        return shlex.join(["ivigmeta", *sys.argv[1:]])
    p = ctx.params
    args = ["ivigmeta", "report", p["file"], "-o", p["out_dir"]]
    if p.get("published"):
        args += ["--published", p["published"]]
    for col in p.get("columns") or ():
        args += ["--by", col]
    if p.get("no_figures"):
        args.append("--no-figures")
    if p.get("title"):
        args += ["--title", p["title"]]
    if p.get("labels"):
        args += ["--labels", ",".join(p["labels"])]
    if p.get("glmm"):
        args += ["--glmm", p["glmm"]]
    return shlex.join(args + option_args(ctx))


def check_report_targets(out_dir: str, inputs: list[str | None], figures: bool) -> None:
    """Before any work: DIR can be made, its figures/ is a directory, and no file the report
    writes is one of the ``inputs``."""
    fig_dir = os.path.join(out_dir, "figures")
    targets = [os.path.join(out_dir, "report.md"), os.path.join(out_dir, "report.html")]
    if figures:
        if os.path.exists(fig_dir) and not os.path.isdir(fig_dir):
            raise DataError(
                f"{fig_dir}: exists and is not a directory (the report's figures go there)"
            )
        if os.path.isdir(fig_dir):
            targets += [os.path.join(fig_dir, name) for name in sorted(os.listdir(fig_dir))]
    for target in targets:
        check_not_input(target, inputs, "-o")
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as exc:
        raise DataError(f"{exc.filename or out_dir}: {exc.strerror or exc}") from None


@click.command()
@file_argument
@click.option(
    "-o",
    "--output",
    "out_dir",
    required=True,
    metavar="DIR",
    help="Directory to write report.md, report.html and figures/ into.",
)
@click.option(
    "--published",
    metavar="PUBLISHED",
    help="A published-numbers TOML file: add the reproduce table (checked against FILE).",
)
@click.option(
    "--by",
    "columns",
    multiple=True,
    metavar="COL",
    help="Label column for the subgroup analyses (repeatable; default: every label column found).",
)
@click.option("--no-figures", is_flag=True, help="Leave the figures out (faster; tables only).")
@click.option(
    "--title",
    default=None,
    metavar="TEXT",
    help='The report\'s title [default: "Meta-analysis report: FILE"].',
)
@click.option(
    "--labels",
    "labels",
    default=None,
    metavar='"LEFT,RIGHT"',
    callback=parse_labels,
    help="Captions under the forest plots' axis either side of no effect (as pool --labels).",
)
@glmm_option
@input_options
@effect_options
@model_options
@handle_errors
def report(file, out_dir, published, columns, no_figures, title, labels, glmm, **options: Any):
    """Write the whole analysis as DIR/report.md and a self-contained DIR/report.html.

    The report holds the data, the study outcomes with the pooled rows, heterogeneity, the
    subgroup analyses, leave-one-out, the small-study tests and, where this version has them,
    influence diagnostics and figures; a methods paragraph generated from the options used, with
    citations; the reproduce table when --published is given; and provenance (versions, the
    command line, the SHA-256 of FILE, the date). Sections this version cannot produce are listed
    as not available.
    """
    from ivigmeta.audit.report import build_report
    from ivigmeta.cli.reproduce import InProcessRunner
    from ivigmeta.render.report import write_report

    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise DataError(f"{out_dir}: exists and is not a directory")
    if file == "-":
        file = _save_stdin(out_dir)
    runner = InProcessRunner()
    if published:
        from ivigmeta.audit.published import load_published

        load_published(published, runner.commands)  # its errors before any work
    from ivigmeta.cli.common import model_settings

    if model_settings()["unweighted"]:
        raise click.UsageError(
            "report does not take --unweighted (its influence, bias and subgroup sections assume "
            "inverse-variance weights): run pool or metareg with --unweighted"
        )
    if model_settings()["weights"] is not None:
        raise click.UsageError(
            "report does not take --weights (its influence, bias and subgroup sections assume "
            "inverse-variance weights): run pool or metareg with --weights"
        )
    check_report_targets(out_dir, [file, published], figures=not no_figures)
    ctx = click.get_current_context()
    content = build_report(
        file,
        runner,
        option_args(ctx),
        dict(options),
        columns,
        out_dir,
        invoked_command_line(ctx),
        plot_commands=() if no_figures else runner.plot_commands(),
        table_options={
            k: v
            for k, v in input_settings().items()
            if k in ("sep", "sheet", "columns", "analysis", "missing")
        },
        figures_off=no_figures,
        published=published,
        title=title,
        labels=labels,
        glmm=glmm,
    )
    try:
        md_path, html_path = write_report(content, out_dir)
    except OSError as exc:
        raise DataError(f"{out_dir}: cannot write the report ({exc.strerror or exc})") from None
    for item in content.not_available:
        note(f"not available: {item}")
    if content.figures_note:
        note(content.figures_note)
    for part in content.parts:
        if part.error:
            note(f"{part.title}: {part.error}")
    if content.reproduce is not None and not content.reproduce.summary.ok:
        note(f"published numbers: {content.reproduce.summary.line}")
    click.echo(md_path)
    click.echo(html_path)


def _save_stdin(out_dir: str) -> str:
    """Standard input saved as DIR/input.csv (DIR/input.xlsx for a workbook, DIR/input.rm5 for
    a RevMan file): every section's command reads the same bytes, and the report's folder keeps
    the data it was made from."""
    from ivigmeta.io.readers import read_bytes
    from ivigmeta.io.revman import is_rm5

    _, data = read_bytes("-")
    if not data.strip():
        raise DataError("<stdin>: no data on standard input")
    suffix = ".xlsx" if data[:4] == b"PK\x03\x04" else ".rm5" if is_rm5("", data[:4096]) else ".csv"
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "input" + suffix)
    with open(path, "wb") as handle:
        handle.write(data)
    note(f"standard input saved as {path}; the report is made from it")
    return path
