"""``ivigmeta transf``: numbers through one of metafor's transformation functions (transf.*)."""

from __future__ import annotations

import click

from ivigmeta.cli.common import handle_errors, output_options, show_result

#: metafor 3.8-1's transf.* functions without "transf." (ivigmeta.api.transform_names(), listed
#: here so that --help imports no numeric code; tests/test_transf.py holds them equal)
NAMES = (
    "rtoz", "ztor", "logit", "ilogit", "arcsin", "iarcsin", "pft", "ipft", "ipft.hm", "isqrt",
    "irft", "iirft", "ahw", "iahw", "abt", "iabt", "dtobesd", "dtocles", "dtou1", "dtou2",
    "dtou3", "dtomd", "dtorpb", "logortord", "logortorr", "ztor.int", "exp.int", "ilogit.int",
)  # fmt: skip
#: each argument's option
OPTIONS = {
    "n": "--n",
    "time": "--time",
    "sd": "--sd",
    "pc": "--pc",
    "n1": "--n1",
    "n2": "--n2",
    "tau2": "--tau2",
    "lower": "--lower",
    "upper": "--upper",
}


class TransformName(click.Choice):
    """A transformation's name, with or without metafor's "transf." prefix."""

    def convert(self, value, param, ctx):  # type: ignore[no-untyped-def]
        if isinstance(value, str) and value.startswith("transf."):
            value = value[len("transf.") :]
        return super().convert(value, param, ctx)


def _many(name: str, help_text: str):  # type: ignore[no-untyped-def]
    return click.option(
        f"--{name}", name, multiple=True, type=float, metavar=name.upper(), help=help_text
    )


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("name", type=TransformName(NAMES), metavar="NAME")
@click.argument("values", nargs=-1, required=True, type=float, metavar="VALUE [VALUE ...]")
@_many(
    "n",
    "Sample size of pft/ipft (one for all values, or one per value; repeat the option), "
    "or each study's size for ipft.hm (their harmonic mean is used).",
)
@_many("time", "Person-time of irft/iirft (one, or one per value).")
@click.option("--sd", type=float, default=None, metavar="SD", help="Standard deviation of dtomd.")
@_many("pc", "Control group risk of logortord/logortorr, in [0, 1] (one, or one per value).")
@_many("n1", "Group 1 size of dtorpb (one, or one per value; with --n2; default: equal groups).")
@_many("n2", "Group 2 size of dtorpb (one, or one per value; with --n1).")
@click.option(
    "--tau2",
    type=float,
    default=None,
    metavar="T",
    help="tau² of ztor.int, exp.int and ilogit.int (default 0: the plain back-transform).",
)
@click.option(
    "--lower",
    type=float,
    default=None,
    metavar="L",
    help="Lower integration bound of the .int functions [default: x - 10 sqrt(tau²)].",
)
@click.option(
    "--upper",
    type=float,
    default=None,
    metavar="U",
    help="Upper integration bound of the .int functions [default: x + 10 sqrt(tau²)].",
)
@output_options
@handle_errors
def transf(name, values, n, time, sd, pc, n1, n2, tau2, lower, upper, fmt, ascii_only):
    """Numbers through one of metafor's transformation functions, transf.NAME.

    NAME is metafor's name without "transf.": rtoz, ztor, logit, ilogit, arcsin, iarcsin, pft,
    ipft, ipft.hm, isqrt, irft, iirft, ahw, iahw, abt, iabt, dtobesd, dtocles, dtou1, dtou2,
    dtou3, dtomd, dtorpb, logortord, logortorr, ztor.int, exp.int, ilogit.int. Among them the
    back-transformations the pooled estimates are reported with (ztor, ilogit, iarcsin,
    ipft.hm, isqrt), and the integral back-transforms of a random-effects estimate (ztor.int,
    exp.int, ilogit.int: the mean of h(x + u), u ~ N(0, tau²), over x -+ 10 sqrt(tau²) unless
    --lower / --upper are given). Negative VALUEs need no "--". Settings files and IVIGMETA_*
    variables do not apply here.
    """
    from ivigmeta.api import transf as run
    from ivigmeta.api import transform_arguments

    given = {
        "n": n or None, "time": time or None, "sd": sd, "pc": pc or None, "n1": n1 or None,
        "n2": n2 or None, "tau2": tau2, "lower": lower, "upper": upper,
    }  # fmt: skip
    takes, needs = transform_arguments(name)
    for arg, value in given.items():
        if value is not None and arg not in takes:
            used = ", ".join(OPTIONS[a] for a in takes) or "no options"
            raise click.UsageError(f"{OPTIONS[arg]} is not used by {name} (it takes {used})")
    for arg in needs:
        if given[arg] is None:
            raise click.UsageError(f"{name} needs {OPTIONS[arg]}")
    result = run(name, values, **{k: v for k, v in given.items() if v is not None})
    show_result(result, "transf", fmt, ascii_only)
