"""Options shared by the subcommands, defined once and stacked as decorators (sqlite-utils style),
and the load -> compute -> render plumbing every command uses."""

from __future__ import annotations

import errno
import functools
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any

import click

from ivigmeta.errors import DataError, IvigmetaError

DEFAULT_FILE = "studies.csv"
FORMATS = ("table", "json", "csv", "markdown")


def file_argument(func: Callable) -> Callable:
    return click.argument("file", required=False, default=DEFAULT_FILE, metavar="[FILE]")(func)


def _set_wide(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    if value:
        ctx.meta["ivigmeta.wide"] = True
    return value


def output_options(func: Callable) -> Callable:
    func = click.option(
        "--wide",
        is_flag=True,
        expose_value=False,
        callback=_set_wide,
        help="Print tables at their full width, every column, even wider than the terminal.",
    )(func)
    func = click.option(
        "--ascii",
        "ascii_only",
        is_flag=True,
        help="Draw tables with plain ASCII characters.",
    )(func)
    func = click.option(
        "-f",
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default="table",
        show_default=True,
        help="Output format; json, csv and markdown carry full precision except markdown (rounded).",
    )(func)
    return func


# Unknown values are usage errors (click's message, exit status 2); upper or lower case is accepted
# where the library accepts it, and the value passed on is the spelling listed here. The metavars
# stay the ones the reference documents.
MEASURE_CHOICES = (
    "RR", "OR", "RD", "AS", "MD", "SMD", "SMDH", "ROM", "IRR", "IRD", "IRSD",
    "PR", "PLO", "PAS", "PFT", "PLN", "ZCOR", "COR", "UCOR", "MN", "MNLN",
    "MC", "SMCC", "SMCR", "SMCRH", "ROMC", "PHI", "YUQ", "YUY", "OR2DN", "OR2DL",
    "IRLN", "IR", "IRS", "IRFT", "CVR", "VR", "RPB", "RBIS", "CVLN", "SDLN",
    "MPRD", "MPRR", "MPOR", "MPORC", "MPPETO", "PBIT", "RTET", "ZPCOR", "PCOR", "SPCOR",
    "D2ORL", "D2ORN", "D2OR",
)  # fmt: skip
CC_POLICY_CHOICES = ("only0", "all", "none")


class AnyCase(click.Choice):
    """A choice in upper or lower case, passed on as listed; the error lists the choices as
    listed too (click's own would list them lower-cased)."""

    def __init__(self, choices: tuple[str, ...]) -> None:
        super().__init__(choices, case_sensitive=False)

    def get_invalid_choice_message(self, value: Any, ctx: click.Context | None) -> str:
        return f"{value!r} is not one of {', '.join(map(repr, self.choices))}."


class Tau2Choice(AnyCase):
    """--tau2: an estimator's name in any case, or a non-negative number (a fixed tau²,
    metafor's ``rma(tau2 = value)``), passed on as the engine's canonical text of it."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            number = float(value)
        except (TypeError, ValueError):
            return super().convert(value, param, ctx)
        if not (number >= 0 and number != float("inf")):
            self.fail(f"a fixed tau² must be a non-negative number (not {value!r}).", param, ctx)
        return repr(number)


def effect_options(func: Callable) -> Callable:
    """--measure, --cc, --cc-policy: how effect sizes are computed from the counts."""
    func = click.option(
        "--cc-policy",
        type=click.Choice(CC_POLICY_CHOICES),
        default="only0",
        show_default=True,
        metavar="only0|all|none",
        help="Which studies get the continuity correction: those with a zero cell, all, or none.",
    )(func)
    func = click.option(
        "--cc",
        type=float,
        default=0.5,
        show_default=True,
        help="Continuity correction added to all four cells.",
    )(func)
    func = click.option(
        "--measure",
        type=AnyCase(MEASURE_CHOICES),
        default=None,
        metavar="|".join(MEASURE_CHOICES),
        help="Effect measure. 2x2 counts: RR (default), OR, RD, AS, PHI, YUQ, YUY, OR2DN, "
        "OR2DL, PBIT, RTET, and for a table of matched pairs (the four cells read as metafor's ai, bi, ci, "
        "di of the pairs) MPRD, MPRR, MPOR, MPORC, MPPETO; means and SDs: MD "
        "(default), SMD, SMDH, ROM, CVR, VR, RPB, RBIS, D2ORL, D2ORN, D2OR; events and person-time: IRR (default), IRD, IRSD; events "
        "and totals of one group: PLO (default), PR, PAS, PFT, PLN; correlations and sizes: "
        "ZCOR (default), COR, UCOR; means, SDs and sizes of one group: MN (default), MNLN, CVLN, SDLN; "
        "one group's post- and pre-test means, SDs, size and correlation: MC (default), SMCC, "
        "SMCR, SMCRH, ROMC; events and person-time of one group: IRLN (default), IR, IRS, "
        "IRFT; a regression coefficient's t statistic, sample size and number of other "
        "predictors: ZPCOR (default), PCOR, and with the model's R² SPCOR.",
    )(func)
    return func


# The engine's registries (ivigmeta.core.tau2.ESTIMATORS, ivigmeta.core.pooling.CI_METHODS):
# spelled out here so that --help does not import numpy; tests/test_univariate_parity.py holds
# them equal.
TAU2_CHOICES = (
    "DL", "REML", "ML", "PM", "HE", "SJ", "EB", "HS", "HSk", "GENQ", "PMM", "SJIT", "DLIT",
)  # fmt: skip
CI_CHOICES = ("z", "hk", "adhoc", "hc", "t")
PI_CHOICES = ("z", "t")
COMMON_CI_CHOICES = ("z", "hk")
COMMON_CHOICES = ("IV", "MH", "PETO")
#: ivigmeta.core.confint.TAU2_CI_METHODS (tests/test_tauci_parity.py holds them equal)
TAU2_CI_CHOICES = ("qp", "pl", "wald", "wald-log", "wald-sqrt")


def tau2_ci_option(func: Callable) -> Callable:
    """--tau2-ci: the type of the confidence interval for tau², I² and H² (``heterogeneity``)."""
    return click.option(
        "--tau2-ci",
        "tau2_ci",
        type=AnyCase(TAU2_CI_CHOICES),
        default="qp",
        show_default=True,
        metavar="|".join(TAU2_CI_CHOICES),
        help=(
            "Confidence interval for tau², tau, I² and H²: qp, the Q-profile (Viechtbauer "
            "2007); pl, the profile likelihood (--tau2 ML or REML only); wald, tau² ± z se(tau²) "
            "truncated at 0; wald-log, wald-sqrt: the same on the log or square-root scale of "
            "tau², back-transformed (tau² > 0 only). metafor's confint type QP, PL, Wald, "
            "Wald.log, Wald.sqrt."
        ),
    )(func)


def tau2_option(func: Callable) -> Callable:
    return click.option(
        "--tau2",
        "tau2_method",
        type=Tau2Choice(TAU2_CHOICES),
        default="DL",
        show_default=True,
        metavar="|".join(TAU2_CHOICES) + "|VALUE",
        help=(
            "Between-study variance estimator: DerSimonian-Laird, restricted or full maximum "
            "likelihood, Paule-Mandel, Hedges, Sidik-Jonkman, empirical Bayes, Hunter-Schmidt "
            "(HSk: with the k/(k-p) correction), generalized Q (GENQ, weights from "
            "--tau2-weights), median-unbiased Paule-Mandel, iterated Sidik-Jonkman and "
            "DerSimonian-Laird (metafor's method=); or a number, tau² fixed at that value "
            "(metafor's tau2=; fit statistics and se(tau²) as REML, no CI for tau²)."
        ),
    )(func)


def ci_option(func: Callable) -> Callable:
    return click.option(
        "--ci",
        "ci_method",
        type=AnyCase(CI_CHOICES),
        default="z",
        show_default=True,
        metavar="|".join(CI_CHOICES),
        help=(
            "Random-effects tests and intervals: Wald z, Hartung-Knapp-Sidik-Jonkman "
            '(t on k - p df; metafor\'s test="knha"), adhoc (the same with the variance '
            'factor at least 1; test="adhoc"), hc: Henmi-Copas around the common-effect '
            "estimate (metafor's hc(); no moderators), or t: the Wald standard error with t on "
            'k - p df (test="t"; also for --glmm).'
        ),
    )(func)


class PercentLevel(click.ParamType):
    """A confidence level in percent, strictly between 0 and 100.

    A value between 0 and 1 is almost always a fraction meant as a percentage (0.95 for 95%): it
    is refused naming the percentage, as :func:`ivigmeta.api.check_percent_level` refuses it.
    """

    name = "float"  # the metavar FLOAT, as for a plain float option

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, float):
            level = value
        else:
            try:
                level = float(value)
            except (TypeError, ValueError):
                self.fail(f"{value!r} is not a valid float.", param, ctx)
        if 0 < level < 1:
            self.fail(
                f"{level:g} is a fraction, but the level is in percent: "
                f"did you mean --level {level * 100:g}?",
                param,
                ctx,
            )
        if not 0 < level < 100:  # NaN fails too
            self.fail(
                f"{level:g} is not a level in percent strictly between 0 and 100.", param, ctx
            )
        return level


def level_option(func: Callable) -> Callable:
    return click.option(
        "--level",
        type=PercentLevel(),
        default=95.0,
        show_default=True,
        help="Confidence level in percent, strictly between 0 and 100 (95, not 0.95).",
    )(func)


GLMM_CHOICES = ("UM.FS", "UM.RS", "CM.EL", "CM.AL")


def glmm_option(func: Callable) -> Callable:
    """--glmm: one of metafor's rma.glmm models instead of the normal-normal model."""
    return click.option(
        "--glmm",
        type=AnyCase(GLMM_CHOICES),
        default=None,
        metavar="|".join(GLMM_CHOICES),
        help=(
            "Fit a generalized linear mixed model to the raw counts (metafor's rma.glmm, ML): "
            "unconditional with fixed (UM.FS) or random (UM.RS) study effects, conditional "
            "with the exact (CM.EL) or approximate (CM.AL) likelihood. For OR (2x2 counts), "
            "IRR (UM.FS, UM.RS, CM.EL), PLO and IRLN (UM.FS). Double-zero studies: see "
            "--keep-double-zero."
        ),
    )(func)


MODEL_KEY = "ivigmeta.model"
MODEL_DEFAULTS: dict[str, Any] = {
    "pi": "z",
    "common_ci": "z",
    "tau2_weights": None,
    "weights": None,
    "unweighted": False,
    "mh_correct": True,
}


def _store_model(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    # Kept on the context as the input options are, so every command gets them without its
    # signature changing.
    key = (param.name or "").removeprefix("model_")
    ctx.meta.setdefault(MODEL_KEY, dict(MODEL_DEFAULTS))[key] = value
    return value


def model_settings() -> dict[str, Any]:
    """The --pi, --common-ci, --tau2-weights and --weights values of the running command."""
    ctx = click.get_current_context(silent=True)
    stored = ctx.meta.get(MODEL_KEY, {}) if ctx is not None else {}
    return {**MODEL_DEFAULTS, **stored}


def extra_model_options(func: Callable) -> Callable:
    """--pi, --common-ci, --tau2-weights, --weights, --unweighted (read back with
    :func:`model_settings`)."""
    stored: dict[str, Any] = {"expose_value": False, "callback": _store_model}
    func = click.option(
        "--mh-correct/--no-mh-correct",
        "model_mh_correct",
        default=True,
        show_default=True,
        help="--common MH: the Cochran-Mantel-Haenszel test of OR = 1 (and the MH test of "
        "IRR = 1) with the continuity correction 1/2 (metafor's rma.mh correct=).",
        **stored,
    )(func)
    func = click.option(
        "--unweighted",
        "model_unweighted",
        is_flag=True,
        default=False,
        help="Every study weighs the same (metafor's weighted=FALSE): the pooled estimates by "
        "unweighted least squares, se² = sum(v + tau²) / k²; tau², Q and I² stay the "
        "inverse-variance ones. --ci z or t.",
        **stored,
    )(func)
    func = click.option(
        "--weights",
        "model_weights",
        metavar="COLUMN",
        default=None,
        help="Column of user weights for the pooled estimates (metafor's weights=): "
        "sum(a y) / sum(a), se² = sum(a² (v + tau²)) / sum(a)²; tau², Q and I² stay the "
        "inverse-variance ones. --ci z or t.",
        **stored,
    )(func)
    func = click.option(
        "--tau2-weights",
        "model_tau2_weights",
        metavar="COLUMN",
        default=None,
        help='Column of study weights for --tau2 GENQ (metafor\'s weights= with method="GENQ"); '
        "they enter the tau² estimator only.",
        **stored,
    )(func)
    func = click.option(
        "--common-ci",
        "model_common_ci",
        type=AnyCase(COMMON_CI_CHOICES),
        default="z",
        show_default=True,
        metavar="|".join(COMMON_CI_CHOICES),
        help="Common-effect tests and intervals: Wald z, or Hartung-Knapp (t on k - 1 df; "
        'metafor\'s rma(method="EE", test="knha")); inverse variance only.',
        **stored,
    )(func)
    func = click.option(
        "--pi",
        "model_pi",
        type=AnyCase(PI_CHOICES),
        default="z",
        show_default=True,
        metavar="|".join(PI_CHOICES),
        help="Prediction interval: z (metafor's predict(): normal, or t on k - 1 df under "
        "--ci hk/adhoc) or t (t on k - 2 df, Higgins et al. 2009; the Cochrane Handbook).",
        **stored,
    )(func)
    return func


def model_options(func: Callable) -> Callable:
    """--tau2, --ci, --common, --level, --pi, --common-ci, --tau2-weights: how the models are
    fitted."""
    func = extra_model_options(func)
    func = level_option(func)
    func = click.option(
        "--common",
        "common_method",
        type=AnyCase(COMMON_CHOICES),
        default="IV",
        show_default=True,
        metavar="|".join(COMMON_CHOICES),
        help=(
            "Common-effect method: inverse variance, Mantel-Haenszel (RR, OR, RD; raw counts) "
            "or Peto's odds ratio (OR only)."
        ),
    )(func)
    func = ci_option(func)
    func = tau2_option(func)
    return func


INPUT_KEY = "ivigmeta.input"
INPUT_DEFAULTS: dict[str, Any] = {
    "sep": None,
    "sheet": None,
    "columns": None,
    "keep_double_zero": False,
    "missing": "error",
    "analysis": None,
    "software": None,
}
SOFTWARE_CHOICES = ("metafor", "revman")
MISSING_CHOICES = ("error", "exclude")  # ivigmeta.io.studies.MISSING_CHOICES


def _store_input(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    # Input options are kept on the context rather than passed to each command, so every
    # command gets them without its signature changing.
    # Their parameter names carry an ``input_`` prefix so that they never collide with a
    # command's own options (subgroup's --by is stored as ``columns``).
    key = (param.name or "").removeprefix("input_")
    ctx.meta.setdefault(INPUT_KEY, dict(INPUT_DEFAULTS))[key] = value
    return value


def input_settings() -> dict[str, Any]:
    """The --sep, --sheet, --columns, --keep-double-zero, --missing ... values of the running
    command."""
    ctx = click.get_current_context(silent=True)
    stored = ctx.meta.get(INPUT_KEY, {}) if ctx is not None else {}
    return {**INPUT_DEFAULTS, **stored}


_STORED: dict[str, Any] = {"expose_value": False, "callback": _store_input, "is_eager": True}


def input_options(func: Callable) -> Callable:
    """--sep, --sheet, --columns, --keep-double-zero, --missing: how the table is read and
    which rows count."""
    func = missing_option(func)
    func = click.option(
        "--software",
        "input_software",
        type=AnyCase(SOFTWARE_CHOICES),
        metavar="|".join(SOFTWARE_CHOICES),
        help="Whose methods: metafor's (the default for tables) or RevMan 5's (the default for "
        "RevMan files: Mantel-Haenszel on continuity-corrected counts, DerSimonian-Laird from "
        "the common method's Chi², RevMan's SMD; docs/revman.md).",
        **_STORED,
    )(func)
    func = click.option(
        "--analysis",
        "input_analysis",
        metavar="NUMBER",
        help="For a RevMan file (.rm5 or RevMan's CSV export): the analysis to read, as RevMan "
        "numbers it (1.2; 1.2.3 for a subgroup; 'ivigmeta revman FILE' lists them). Its measure, "
        "method and CI level are the defaults, and RevMan's methods are used (docs/revman.md).",
        **_STORED,
    )(func)
    func = click.option(
        "--keep-double-zero",
        "input_keep_double_zero",
        is_flag=True,
        help="Keep studies with no events in either arm (for OR also all events in both arms) "
        "in RR/OR analyses, with the continuity correction; by default they are excluded.",
        **_STORED,
    )(func)
    return table_options(func)


def permutation_options(what: str) -> Callable[[Callable], Callable]:
    """--permutations N and --seed S (metafor's permutest); ``what`` completes the help of
    --permutations: what is tested and how the permutations are made."""

    def decorate(func: Callable) -> Callable:
        func = click.option(
            "--seed",
            "seed",
            type=click.IntRange(min=0),
            default=None,
            metavar="S",
            help="Random seed of an approximate permutation test [default: drawn, and reported].",
        )(func)
        return click.option(
            "--permutations",
            "permutations",
            type=click.IntRange(min=2),
            default=None,
            metavar="N",
            help=f"Also a permutation test of {what}.",
        )(func)

    return decorate


def missing_option(func: Callable) -> Callable:
    """--missing error|exclude (``pool`` and ``batch`` alike), read back with
    :func:`input_settings`."""
    return click.option(
        "--missing",
        "input_missing",
        type=AnyCase(MISSING_CHOICES),
        default="error",
        show_default=True,
        metavar="|".join(MISSING_CHOICES),
        help="A missing value (empty, NA, NaN, '.') in a cell a study's effect needs: an error, "
        "or exclude the study, listed with the reason and its row (metafor's na.omit). Other "
        "bad values stay errors.",
        **_STORED,
    )(func)


def table_options(func: Callable) -> Callable:
    """--sep, --sheet, --columns: how the table is read (``pool`` and ``batch`` alike); the
    values are read back with :func:`input_settings`."""
    common = _STORED
    func = click.option(
        "--columns",
        "input_columns",
        metavar="ROLE=COL,...",
        help="Name the columns yourself, as comma-separated ROLE=COLUMN pairs, e.g. "
        "treat_events=EvT,treat_total=NT (roles: treat_events, treat_total, control_events, "
        "control_total, treat_nonevents, control_nonevents, study, year, estimate, ci_low, "
        "ci_high, theta, se, yi, vi, measure).",
        **common,
    )(func)
    func = click.option(
        "--sheet",
        "input_sheet",
        metavar="NAME",
        help="Worksheet of an .xlsx file (default: the first).",
        **common,
    )(func)
    func = click.option(
        "--sep",
        "input_sep",
        metavar="comma|semicolon|tab",
        help="Field delimiter (default: sniffed from the header; semicolon files may use decimal commas).",
        **common,
    )(func)
    return func


def analysis_command(func: Callable) -> Callable:
    """FILE plus every input, effect, model and output option."""
    return file_argument(input_options(effect_options(model_options(output_options(func)))))


def handle_errors(func: Callable) -> Callable:
    """Turn library errors into click's one-line ``Error: ...`` with exit status 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except IvigmetaError as exc:
            raise click.ClickException(one_line(str(exc))) from None

    return wrapper


def one_line(message: str) -> str:
    """Line breaks quoted inside a cell or label must not split a message over lines."""
    return message.replace("\r", "\\r").replace("\n", "\\n")


def note(message: str) -> None:
    """Notes and warnings go to stderr so stdout stays machine-readable; each once per command
    (a command that reads its table for several analyses would otherwise repeat its notes)."""
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        seen = ctx.meta.setdefault("ivigmeta.notes", set())
        if message in seen:
            return
        seen.add(message)
    click.echo(f"note: {one_line(message)}", err=True)


def write_output(text: str) -> None:
    click.echo(text, nl=False)


def table_layout() -> tuple[int | None, bool]:
    """``(width, color)`` for tables on stdout: a terminal's width and styles (none under
    NO_COLOR or TERM=dumb); the natural width and no styles for a pipe, a file or --wide."""
    import shutil

    ctx = click.get_current_context(silent=True)
    wide = bool(ctx is not None and ctx.meta.get("ivigmeta.wide"))
    try:
        terminal = bool(sys.stdout.isatty())
    except (AttributeError, ValueError):  # a closed or odd stream: not a terminal
        terminal = False
    width = None if wide or not terminal else shutil.get_terminal_size((80, 24)).columns
    color = terminal and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"
    return width, color


def show_result(result: Any, view: str, fmt: str, ascii_only: bool) -> None:
    """Render ``result`` for stdout (a table fitted to the terminal) and write it; the columns a
    table leaves out to fit are said on stderr."""
    from ivigmeta.render import render

    width, color = table_layout() if fmt == "table" else (None, False)
    write_output(render(result, view, fmt, ascii_only, width=width, color=color, dropped=note))


def debug_enabled() -> bool:
    return bool(os.environ.get("IVIGMETA_DEBUG"))


def internal_error(exc: BaseException) -> None:
    """A bug, not bad input: one line on stderr (the traceback with IVIGMETA_DEBUG=1), exit 1."""
    click.echo(
        f"Error: internal error ({type(exc).__name__}: {exc}); please report it. "
        "Set IVIGMETA_DEBUG=1 to see the traceback.",
        err=True,
    )
    sys.exit(1)


# ---------------------------------------------------------------------------------------------
# Figures: --plot and the options that only change how a figure looks.


def plot_option(func: Callable) -> Callable:
    """--plot PATH: also write the command's figure (.png, .svg or .pdf, by extension)."""
    return click.option(
        "--plot",
        "plot",
        default=None,
        metavar="PATH",
        help="Also write the figure to PATH (.png at 300 dpi, .svg or .pdf, by extension).",
    )(func)


def parse_labels(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> tuple[str, str] | None:
    if value is None:
        return None
    parts = [p.strip() for p in value.split(",")]
    if len(parts) != 2 or not all(parts):
        raise click.BadParameter(f"expected two captions separated by one comma, got '{value}'")
    return parts[0], parts[1]


def parse_xlim(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> tuple[float, float] | None:
    if value is None:
        return None
    parts = [p.strip() for p in value.split(",")]
    try:
        low, high = (float(p) for p in parts)
    except ValueError:
        raise click.BadParameter(
            f"expected two numbers separated by a comma (LOW,HIGH), got '{value}'"
        ) from None
    return low, high


def refit_model_option(func: Callable) -> Callable:
    """--model for the refitting commands (loo, cumulative): which refit each row reports."""
    return click.option(
        "--model",
        "model",
        type=click.Choice(("random", "common"), case_sensitive=False),
        default="random",
        show_default=True,
        help="Report the random-effects refits, or the common-effect refits by the --common "
        "method (IV, MH or PETO; metafor's leave1out/cumul of rma.mh and rma.peto fits).",
    )(func)


def forest_options(func: Callable) -> Callable:
    """--model, --labels, --sort and --xlim: which pooled estimates the forest plot shows, its
    axis captions, the order of its studies and its axis limits."""
    func = click.option(
        "--xlim",
        default=None,
        metavar="LOW,HIGH",
        callback=parse_xlim,
        help="Forest plot axis limits on the reported scale (intervals beyond end in arrows) "
        "[default: to fit the estimates and pooled intervals].",
    )(func)
    func = click.option(
        "--sort",
        "sort",
        type=click.Choice(("file", "estimate", "weight", "year", "label")),
        default="file",
        show_default=True,
        help="Order of the studies in the forest plot: as in the table, by estimate "
        "(ascending), weight (largest first), year or label.",
    )(func)
    func = click.option(
        "--labels",
        "labels",
        default=None,
        metavar='"LEFT,RIGHT"',
        callback=parse_labels,
        help="Forest plot captions under the axis either side of no effect [default: "
        '"Favours control,Favours treatment", or the arms the table names in treat_label/'
        "control_label (meta: label.e/label.c) columns; none for one group's proportions, "
        "correlations, means, pre-post changes, rates or partial correlations].",
    )(func)
    func = click.option(
        "--model",
        "model",
        type=click.Choice(("random", "common", "both")),
        default="random",
        show_default=True,
        help="Pooled estimate(s) drawn as diamonds in the forest plot.",
    )(func)
    return func


def check_plot_target(path: str | None, *inputs: str | None) -> None:
    """Fail before any work when the figure could not be written (no matplotlib import), or would
    replace one of the ``inputs``."""
    if path:
        from ivigmeta.plots.paths import check_target

        check_not_input(path, inputs, "--plot")
        check_target(path)


# ---------------------------------------------------------------------------------------------
# Outputs never replace inputs.


def same_file(output: str, source: str) -> bool:
    """Whether writing ``output`` would replace the existing file ``source`` (the same path, or
    another name of the same file: a hard or symbolic link)."""
    try:
        return os.path.samefile(output, source)
    except OSError:  # either does not exist (yet): nothing to replace
        return False


def check_not_input(output: str, inputs: Iterable[str | None], option: str) -> None:
    """Refuse, before any work, an ``output`` that is one of the ``inputs`` (``-`` is stdin)."""
    for source in inputs:
        if source and source != "-" and same_file(output, source):
            same = "the input" if output == source else "the same file as the input"
            raise DataError(
                f"{option} {output} is {same} {source}: writing it would destroy the input; "
                "choose another output"
            )


def check_output_file(output: str, inputs: Iterable[str | None], option: str) -> None:
    """An output FILE must not be a directory nor one of the ``inputs``: checked before any work."""
    if os.path.isdir(output):
        raise DataError(f"{output}: is a directory ({option} names the output file)")
    check_not_input(output, inputs, option)
    directory = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(directory):
        reason = errno.ENOTDIR if os.path.exists(directory) else errno.ENOENT
        raise DataError(f"{output}: {os.strerror(reason)}")


def save_plot(path: str | None, kind: str, result: Any, **options: Any) -> None:
    """Draw figure ``kind`` from ``result`` into ``path`` (nothing when ``path`` is None)."""
    if not path:
        return
    from ivigmeta.plots import write_figure

    write_figure(kind, result, path, **{k: v for k, v in options.items() if v is not None})
    note(f"figure written to {path}")


def study_model_options(model_help: str) -> Callable[[Callable], Callable]:
    """--mod (with --ref, --categorical) and --model random|common: which fitted model a
    study-level command (blup, matrix) describes; ``model_help`` ends --model's help."""

    def decorate(func: Callable) -> Callable:
        func = click.option(
            "--model",
            "model",
            type=click.Choice(("random", "common"), case_sensitive=False),
            default="random",
            show_default=True,
            help="The random-effects model, or the common-effect one by --common: " + model_help,
        )(func)
        func = moderator_coding_options(func)
        return click.option(
            "--mod",
            "mods",
            multiple=True,
            metavar="COL",
            help="Moderator column of a meta-regression model (repeat for several; as "
            "metareg). Without it: the intercept-only model.",
        )(func)

    return decorate


def moderator_coding_options(func: Callable) -> Callable:
    """--ref and --categorical: how moderator columns are coded (metareg, blup)."""
    func = click.option(
        "--categorical",
        "categorical",
        multiple=True,
        metavar="COL",
        help="Treat a numeric moderator column as categorical (dummy-coded).",
    )(func)
    return click.option(
        "--ref",
        "refs",
        multiple=True,
        metavar="[COL=]LEVEL",
        help="Reference level of a categorical moderator (default: its first level in file order).",
    )(func)


#: --cluster-type's values: metafor's vbest names
CLUSTER_TYPES = ("CR1", "CR0", "CR2")


def cluster_options(func: Callable) -> Callable:
    """--cluster, --cluster-type and --cluster-adjust: cluster-robust inference (metafor's
    robust()) for pool and metareg."""
    func = click.option(
        "--cluster-type",
        "cluster_type",
        type=click.Choice(CLUSTER_TYPES, case_sensitive=False),
        default=None,
        metavar="|".join(CLUSTER_TYPES),
        help="With --cluster: the sandwich. CR1 (the default: with the factor n / (n - p)) and CR0 "
        "(without; as --no-cluster-adjust) are metafor's robust(fit, cluster, adjust); CR2 is "
        "robust(fit, cluster, clubSandwich = TRUE): clubSandwich's bias-reduced CR2 sandwich, "
        "t tests and intervals on Satterthwaite df, the moderators' HTZ F test.  [default: CR1]",
    )(func)
    func = click.option(
        "--cluster-adjust/--no-cluster-adjust",
        "cluster_adjust",
        default=True,
        show_default=True,
        help="With --cluster: the small-sample factor n / (n - p), n clusters and p coefficients "
        "(metafor's adjust = TRUE, CR1); without it CR0.",
    )(func)
    return click.option(
        "--cluster",
        "cluster",
        default=None,
        metavar="COL",
        help="Also cluster-robust inference, clustering the studies by column COL (metafor's "
        "robust(fit, cluster)): sandwich SEs, t tests and CIs on n - p df (Satterthwaite df "
        "under --cluster-type CR2); every study needs a value.",
    )(func)


def check_cluster_adjust(cluster: str | None) -> None:
    """--no-cluster-adjust without --cluster is a usage error."""
    from click.core import ParameterSource

    ctx = click.get_current_context()
    if (
        cluster is None
        and ctx.get_parameter_source("cluster_adjust") is ParameterSource.COMMANDLINE
    ):
        raise click.UsageError("--cluster-adjust / --no-cluster-adjust go with --cluster COL")


def cluster_estimator(
    cluster: str | None, cluster_adjust: bool, cluster_type: str | None
) -> tuple[bool, bool]:
    """(adjust, cr2) from --cluster-adjust and --cluster-type; either without --cluster, and
    --cluster-type CR2 or a --cluster-type that contradicts an explicit --cluster-adjust /
    --no-cluster-adjust, are usage errors."""
    from click.core import ParameterSource

    check_cluster_adjust(cluster)
    if cluster_type is None:
        return cluster_adjust, False
    if cluster is None:
        raise click.UsageError("--cluster-type goes with --cluster COL")
    kind = cluster_type.upper()
    ctx = click.get_current_context()
    if ctx.get_parameter_source("cluster_adjust") is ParameterSource.COMMANDLINE:
        given = "--cluster-adjust" if cluster_adjust else "--no-cluster-adjust"
        if kind == "CR2":
            raise click.UsageError(
                f"{given} is for CR1 / CR0 (the factor n / (n - p)); CR2 has none: drop it"
            )
        if (kind == "CR1") != cluster_adjust:
            raise click.UsageError(f"--cluster-type {kind} contradicts {given}")
    return kind == "CR1", kind == "CR2"
