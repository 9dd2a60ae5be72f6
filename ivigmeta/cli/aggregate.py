"""``ivigmeta aggregate``: dependent effect sizes collapsed into one per cluster (metafor's
``aggregate.escalc``); its CSV is a table of given effects that ``ivigmeta pool`` reads."""

from __future__ import annotations

from typing import Any

import click

from ivigmeta.cli.commands import read_input, show, table_defaults
from ivigmeta.cli.common import (
    AnyCase,
    effect_options,
    file_argument,
    handle_errors,
    input_options,
    input_settings,
    note,
    output_options,
)
from ivigmeta.io.studies import MEASURE_NAMES as POOLABLE  # given effects pool reads

#: ivigmeta.methods.aggregate.STRUCTS, spelled out so that --help imports no engine module
STRUCT_CHOICES = ("CS", "CAR", "CS+CAR", "ID")


def number_or_column(value: str | None) -> float | str | None:
    """``--rho 0.6`` is a number, ``--rho COL`` a column giving one per cluster."""
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return value


def clustered_notes(cluster: str, what: str = "aggregated"):
    """The table's notes, but one line for the rows that share a study label (several effects
    of one study are what aggregate and rve are for) instead of a warning per label; ``what``
    says what --cluster does with them."""
    said: list[str] = []

    def say(message: str) -> None:
        if "have the same study label" in message:
            if not said:
                said.append(message)
                note(
                    "several rows share a study label (expected for dependent effects; "
                    f"they are {what} by --cluster {cluster})"
                )
            return
        note(message)

    return say


@click.command()
@file_argument
@input_options
@effect_options
@click.option(
    "--cluster",
    "cluster",
    required=True,
    metavar="COL",
    help="Column whose values define the clusters (a study with several outcomes or time "
    "points); every analysed row needs a value.",
)
@click.option(
    "--struct",
    "struct",
    type=AnyCase(STRUCT_CHOICES),
    default="CS",
    show_default=True,
    metavar="|".join(STRUCT_CHOICES),
    help="Correlation of the effects within a cluster: compound symmetry (rho), continuous-time "
    "autoregressive (phi^|t_i - t_j|, times in --time), CS+CAR (rho + (1 - rho) "
    "phi^|t_i - t_j|) or independent (metafor's struct).",
)
@click.option(
    "--rho",
    "rho",
    default=None,
    metavar="VALUE|COL",
    help="CS and CS+CAR: the correlation of two effects of a cluster, in [-1, 1], or a column "
    "giving one per cluster (the same in each of its rows).",
)
@click.option(
    "--phi",
    "phi",
    default=None,
    metavar="VALUE|COL",
    help="CAR and CS+CAR: the autocorrelation of effects one time unit apart, in [0, 1], or a "
    "column giving one per cluster.",
)
@click.option(
    "--time",
    "time",
    default=None,
    metavar="COL",
    help="CAR and CS+CAR: the column of each effect's time point (a number).",
)
@click.option(
    "--unweighted",
    is_flag=True,
    help="The mean of each cluster's effects (with its variance under the structure) instead "
    "of the inverse-variance (GLS) combination (metafor's weighted = FALSE).",
)
@output_options
@handle_errors
def aggregate(
    file: str,
    measure: str | None,
    cc: float,
    cc_policy: str,
    cluster: str,
    struct: str,
    rho: str | None,
    phi: str | None,
    time: str | None,
    unweighted: bool,
    fmt: str,
    ascii_only: bool,
) -> None:
    """Collapse dependent effect sizes into one per cluster (metafor's aggregate.escalc).

    Computes each row's effect as pool does, then combines the effects of each cluster by
    generalized least squares under the assumed correlation --struct (Borenstein et al. 2009,
    ch. 24). The CSV (--format csv) is a table of given effects: 'ivigmeta pool' reads it
    (columns study, yi, vi, measure, ki and the other columns aggregated).
    """
    from ivigmeta.api import aggregate_table, effect_sizes

    struct = struct.upper()
    unused: list[tuple[str, Any]] = []
    if struct not in ("CS", "CS+CAR"):
        unused.append(("--rho", rho))
    if struct not in ("CAR", "CS+CAR"):
        unused += [("--phi", phi), ("--time", time)]
    for option, value in unused:
        if value is not None:
            note(f"{option} is not used by --struct {struct}")
    table = read_input(file)
    measure = table_defaults(table, measure=measure)["measure"]
    keep = input_settings()["keep_double_zero"]
    es = effect_sizes(table, measure, cc, cc_policy, keep, on_note=clustered_notes(cluster))
    result = aggregate_table(
        table,
        es,
        cluster,
        rho=number_or_column(rho) if struct in ("CS", "CS+CAR") else None,
        struct=struct,
        phi=number_or_column(phi) if struct in ("CAR", "CS+CAR") else None,
        time=time if struct in ("CAR", "CS+CAR") else None,
        weighted=not unweighted,
        measure_given=measure is not None,
        on_note=note,
    )
    if result.measure_known and result.measure not in POOLABLE:
        note(
            f"ivigmeta pool reads given effects (yi, vi) as {', '.join(POOLABLE)} only: these "
            f"aggregated {result.measure} effects cannot be pooled by it (metafor's "
            "rma(yi, vi) can)"
        )
    show(result, "aggregate", fmt, ascii_only)
