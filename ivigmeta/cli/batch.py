"""``ivigmeta batch``: pool every meta-analysis of a long table in one pass (see docs/batch.md)."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import sys
import tempfile

import click

from ivigmeta.cli.common import (
    check_output_file,
    effect_options,
    handle_errors,
    input_settings,
    missing_option,
    model_options,
    model_settings,
    note,
    table_options,
)

INPUT_ORDERS = ("auto", "grouped", "unsorted")


def _gc_paused(func):
    """Run ``func`` with Python's cyclic garbage collector paused: batch makes millions of
    objects (importing numpy alone some 100,000) but no garbage cycles worth collecting, and the
    collections it would trigger cost a few percent of a short run. Reference counting still
    frees everything as usual."""
    import functools

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        import gc

        enabled = gc.isenabled()
        gc.disable()
        try:
            return func(*args, **kwargs)
        finally:
            if enabled:
                gc.enable()

    return wrapper


def _spool_stdin(tmpdir: str) -> str:
    """Copy standard input to a file so that it can be read twice (auto order)."""
    path = os.path.join(tmpdir, "stdin.csv")
    with open(path, "wb") as out:
        shutil.copyfileobj(sys.stdin.buffer, out, 1 << 20)
    return path


def _move_into_place(staged: str, target: str) -> None:
    """Rename ``staged`` to ``target``; from another file system (--tmpdir) through a temporary
    copy beside ``target``, so that a failure (a full disk) leaves no partial output."""
    try:
        os.replace(staged, target)
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    fd, tmp = tempfile.mkstemp(
        prefix=".ivigmeta-", suffix=".part", dir=os.path.dirname(os.path.abspath(target))
    )
    try:
        with os.fdopen(fd, "wb") as out, open(staged, "rb") as src:
            shutil.copyfileobj(src, out, 1 << 20)
        shutil.copymode(staged, tmp)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@click.command()
@click.argument("file", required=False, default="studies.csv", metavar="[FILE]")
@click.option(
    "-g",
    "--group",
    "groups",
    multiple=True,
    metavar="COL",
    help="Column naming the meta-analysis a row belongs to (repeat for a composite key); "
    "required except for RevMan input, whose analyses are the groups.",
)
@table_options
@effect_options
@model_options
@click.option(
    "-f",
    "--format",
    "fmt",
    type=click.Choice(["csv", "jsonl", "parquet"]),
    default="csv",
    show_default=True,
    help="Output format (parquet needs pyarrow: pip install 'ivigmeta[parquet]', and -o FILE).",
)
@click.option(
    "-o",
    "--output",
    "output",
    default=None,
    metavar="FILE",
    help="Write the results to FILE instead of stdout.",
)
@click.option(
    "--chunk-rows",
    type=int,
    default=1_000_000,
    show_default=True,
    help="Input rows read at a time (about 0.5 GB of memory per million rows).",
)
@click.option(
    "--input-order",
    type=click.Choice(INPUT_ORDERS),
    default="auto",
    show_default=True,
    help="grouped: each group's rows are contiguous (streamed; an error otherwise); unsorted: any "
    "order (two passes through spill files); auto: stream, and redo as unsorted if a group "
    "comes back.",
)
@click.option(
    "--keep-double-zero",
    is_flag=True,
    help="Keep studies with no events in either arm in RR and OR analyses (with the continuity "
    "correction); by default they are excluded and counted in n_excluded.",
)
@missing_option
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    metavar="N",
    help="Processes to use (0: one per available core). A grouped file of 1 MB or more is cut "
    "into spans of whole groups pooled side by side; text output is formatted in parallel too. "
    "1: no other process.",
)
@click.option(
    "--tmpdir",
    default=None,
    metavar="DIR",
    help="Directory for spill files (unsorted input) and buffered output; default: the system's.",
)
@click.option(
    "--revman-model",
    type=click.Choice(["analysis", "random", "common"]),
    default="analysis",
    show_default=True,
    help="RevMan input: which pooled row is compared with RevMan's stored result: the "
    "analysis's own model, or random or common effects for every analysis.",
)
@handle_errors
@_gc_paused
def batch(
    file,
    groups,
    measure,
    cc,
    cc_policy,
    tau2_method,
    ci_method,
    common_method,
    level,
    fmt,
    output,
    chunk_rows,
    input_order,
    keep_double_zero,
    jobs,
    tmpdir,
    revman_model,
):
    """Pool every meta-analysis in a long table: one row per study, one output row per group.

    Output columns: the group columns, k, common_* and random_* (theta, se, estimate, ci_low,
    ci_high, p_value), random_pi_low/high, q, df, q_p_value, i2, tau2, n_excluded, status (ok,
    single or error) and reason. A group with a bad row gets status error; the batch goes on.
    The table is read as pool reads it: the same files, --sep, --sheet, --columns and column
    names, every kind of data (2x2 counts, means and SDs, events and person-time, proportions,
    correlations, one group's means, pre-post changes, one group's rates, partial correlations, given effects) with pool's default
    measure for it; the group columns are further columns
    of it.

    FILE may also be a RevMan file (.rm5 or its CSV export) or a folder of .rm5 files: then
    every analysis of every review is one output row (file, review_id, doi, analysis, ...),
    RevMan's stored result (revman_*) beside ivigmeta's (estimate, ci_low, ci_high, p_value,
    i2, tau2) under the options given, and conclusion_changed says whether the CI's exclusion of
    the null differs (docs/revman.md).
    """
    # batch does no linear algebra, but numpy's OpenBLAS starts a thread per core when it is
    # loaded, and those threads spin for a while: on 2 cores that took 0.13 s of CPU from the
    # 0.35 s command, competing with the output formatting. A user's own setting is kept.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from ivigmeta.batching.revman import is_revman_input

    if file != "-" and is_revman_input(file):
        _revman_batch(file, tau2_method, ci_method, level, fmt, output, revman_model)
        return
    if not groups:
        raise click.UsageError("Missing option '-g' / '--group'.")
    if model_settings()["weights"] is not None:
        raise click.UsageError(
            "batch does not take --weights (user weights): pool each analysis with --weights"
        )
    if not model_settings()["mh_correct"]:
        raise click.UsageError(
            "batch does not take --no-mh-correct (its columns have no CMH test): pool each "
            "analysis with --common MH --no-mh-correct"
        )
    if model_settings()["unweighted"]:
        raise click.UsageError(
            "batch does not take --unweighted: pool each analysis with --unweighted"
        )
    from ivigmeta.batching import run as core
    from ivigmeta.batching.job import BatchJob
    from ivigmeta.render.batch import BatchWriter
    from ivigmeta.render.progress import Progress

    options = core.BatchOptions(
        measure=measure,
        cc=cc,
        cc_policy=cc_policy,
        tau2_method=tau2_method,
        ci_method=ci_method,
        common_method=common_method,
        level=level / 100.0,
        keep_double_zero=keep_double_zero,
        pi_method=model_settings()["pi"],
        common_ci=model_settings()["common_ci"],
        tau2_weights=model_settings()["tau2_weights"],
    ).checked()
    if fmt == "parquet" and output is None:
        raise click.UsageError("--format parquet writes a file: give -o FILE")
    if output is not None:
        check_output_file(output, [file], "-o")
    groups = list(dict.fromkeys(groups))
    settings = input_settings()
    table = core.TableOptions(
        settings["sep"], settings["sheet"], settings["columns"], settings["missing"]
    ).check()
    seen: set[str] = set()

    def reader_note(message: str) -> None:
        if message not in seen:  # a run started again (unsorted input) reads the header again
            seen.add(message)
            note(message)

    with tempfile.TemporaryDirectory(prefix="ivigmeta-", dir=tmpdir) as work:
        path = file
        if file == "-" and input_order == "auto":
            path = _spool_stdin(work)
        source = "<stdin>" if file == "-" else file
        job = BatchJob(
            path,
            source,
            groups,
            options,
            fmt,
            chunk_rows,
            jobs,
            work,
            BatchWriter,
            table=table,
            note=reader_note,
        )

        with Progress(f"batch {source}") as progress:
            if input_order == "auto":
                try:
                    job.run("grouped", progress)
                except core.NotGrouped as exc:
                    note(
                        f"{source}, {exc.args[0].split(': ', 1)[0]}: groups are not contiguous; "
                        "pooling again through spill files (--input-order unsorted)"
                    )
                    progress.restart(f"batch {source} (unsorted)")
                    job.run("unsorted", progress)
            else:
                try:
                    job.run(input_order, progress)
                except core.NotGrouped as exc:
                    raise click.ClickException(f"{source}, {exc}") from None

        if output is None:
            with open(job.staged, "rb") as src:
                shutil.copyfileobj(src, sys.stdout.buffer, 1 << 20)
            sys.stdout.buffer.flush()
        else:
            try:
                _move_into_place(job.staged, output)
            except OSError as exc:
                raise click.ClickException(
                    f"{output}: cannot be written ({exc.strerror or exc})"
                ) from None
    stats = job.stats
    pooled = stats["groups"] - stats["single"] - stats["error"]
    note(
        f"{stats['groups']} meta-analys{'i' if stats['groups'] == 1 else 'e'}s: {pooled} pooled"
        + (f", {stats['single']} with a single study" if stats["single"] else "")
        + (f", {stats['error']} failed (status error)" if stats["error"] else "")
    )


def _revman_batch(file, tau2_method, ci_method, level, fmt, output, model) -> None:
    """``batch`` over RevMan files: one row per analysis (ivigmeta.batching.revman)."""
    import csv
    import io
    import json

    from click.core import ParameterSource

    from ivigmeta.batching.revman import COLUMNS, RevManBatchOptions, analysis_rows, revman_files

    ctx = click.get_current_context()
    given_level = ctx.get_parameter_source("level") not in (ParameterSource.DEFAULT, None)
    options = RevManBatchOptions(
        tau2_method=tau2_method,
        ci_method=ci_method,
        level=level if given_level else None,
        model=model,
    )
    paths = revman_files(file)
    if output is not None:
        check_output_file(output, paths, "-o")
    rows = list(analysis_rows(paths, options, note))
    if fmt == "parquet":
        if output is None:
            raise click.UsageError("--format parquet writes a file: give -o FILE")
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise click.ClickException(
                "--format parquet needs pyarrow: pip install 'ivigmeta[parquet]'"
            ) from None
        pq.write_table(pa.Table.from_pylist(rows), output)
    else:
        buf = io.StringIO()
        if fmt == "csv":
            writer = csv.DictWriter(buf, fieldnames=list(COLUMNS), lineterminator="\n")
            writer.writeheader()
            for r in rows:
                writer.writerow({k: _csv_cell(v) for k, v in r.items()})
        else:
            for r in rows:
                buf.write(json.dumps(r, allow_nan=False, default=str) + "\n")
        text = buf.getvalue()
        if output is None:
            sys.stdout.write(text)
        else:
            with open(output, "w", encoding="utf-8", newline="") as handle:
                handle.write(text)
    ok = sum(r["status"] == "ok" for r in rows)
    changed = sum(bool(r["conclusion_changed"]) for r in rows)
    note(
        f"{len(rows)} analyses of {len(paths)} RevMan file{'s' if len(paths) != 1 else ''}: "
        f"{ok} pooled, {changed} with a changed conclusion"
        + (f", {len(rows) - ok} not pooled (status single/error)" if len(rows) > ok else "")
    )


def _csv_cell(value):  # type: ignore[no-untyped-def]
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return value
