"""The public Python API: fit once, then ask the fit (the shape of metafor's ``rma()``).

>>> import ivigmeta
>>> fit = ivigmeta.pool("studies.csv")              # doctest: +SKIP
>>> fit.random.estimate, fit.loo().smallest          # doctest: +SKIP

:func:`pool` reads a study table (a path, a pandas DataFrame, a dict of columns or a table
already read by :func:`read`) with the column conventions of the command line (docs/input.md),
computes the effect sizes and fits the common-effect and random-effects models. The
:class:`MetaAnalysisFit` it returns holds the fit and answers the questions the commands answer:
:meth:`~MetaAnalysisFit.loo`, :meth:`~MetaAnalysisFit.cumulative`,
:meth:`~MetaAnalysisFit.influence`, :meth:`~MetaAnalysisFit.subgroup`,
:meth:`~MetaAnalysisFit.metareg`, :meth:`~MetaAnalysisFit.blup`, :meth:`~MetaAnalysisFit.bias` and
:meth:`~MetaAnalysisFit.plot`; each returns the result object the command renders.
:func:`batch` pools many meta-analyses of one long table, :func:`reproduce` audits a paper's
printed numbers.

The command line is a layer over this module: each command parses its options, calls the
function or method here and renders what it returns, so ``fit.to_dict()`` is exactly what
``ivigmeta pool --format json`` prints for the same options.

Confidence levels are in percent everywhere, as ``--level``: ``level=95``. A level below 1 is a
:class:`~ivigmeta.errors.ModelError` naming the percentage meant (``level=0.95`` would otherwise
ask for a 0.95% interval).

Importing this module is cheap (no numpy, pandas, scipy or matplotlib); pandas is imported only
for DataFrames (:meth:`MetaAnalysisFit.to_frame`, :func:`batch`), matplotlib only by
:meth:`MetaAnalysisFit.plot`.
"""

from __future__ import annotations

import html
import math
import numbers
import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Union

from ivigmeta.errors import DataError, ModelError
from ivigmeta.io.readers import RawTable
from ivigmeta.io.studies import StudyTable, check_missing, load_table, parse_rows
from ivigmeta.results import EffectSizes, FitOptions, MetaAnalysis

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from ivigmeta.io.revman import Review
    from ivigmeta.results import (
        Aggregation,
        BiasAnalysis,
        Bubble,
        CombinationTest,
        CommonFit,
        Cumulative,
        Estimate,
        Exclusion,
        GlmmModel,
        Gosh,
        Heterogeneity,
        HeterogeneityCI,
        Influence,
        IntegralMean,
        LeaveOneOut,
        MetaRegression,
        ModelMatrix,
        ModeratorInfluence,
        PermutationTest,
        RandomFit,
        ReproduceResult,
        RobustPooled,
        RobustVarianceModel,
        SelectionModel,
        StudyLevel,
        SubgroupAnalysis,
        SummaryOfFindings,
        Transformed,
    )

__all__ = [
    "Data",
    "MetaAnalysisFit",
    "aggregate",
    "aggregate_table",
    "batch",
    "combine_table",
    "effect_sizes",
    "fit_table",
    "metareg_table",
    "location_scale_table",
    "metareg_bubble",
    "rve_table",
    "pool",
    "audit_revman",
    "read",
    "read_revman",
    "transf",
    "transform_arguments",
    "transform_names",
]

Data = Union[str, "os.PathLike[str]", "pd.DataFrame", Mapping[str, Sequence[Any]], StudyTable]
"""What :func:`pool` and :func:`read` accept as ``data``."""

Notify = Callable[[str], None]

# How in-memory tables are named in messages, where a file would be named.
DATAFRAME_SOURCE = "<DataFrame>"
DICT_SOURCE = "<dict>"

# Figure kinds of MetaAnalysisFit.plot -> (the method giving the figure's result, the figure).
PLOT_KINDS = {
    "forest": (None, "forest"),
    "radial": (None, "radial"),
    "loo": ("loo", "loo"),
    "cumulative": ("cumulative", "cumulative"),
    "labbe": (None, "labbe"),
    "gosh": ("gosh", "gosh"),
    "funnel": ("bias", "funnel"),
    "baujat": ("influence", "baujat"),
    "influence": ("influence", "influence"),
    "subgroup": ("subgroup", "subgroup-forest"),
}


# ---------------------------------------------------------------------------------------------
# Reading


def read(
    data: Data,
    columns: str | Mapping[str, str] | None = None,
    sep: str | None = None,
    sheet: str | None = None,
    analysis: str | None = None,
    missing: str = "error",
) -> StudyTable:
    """Read and validate a study table, as every command reads its FILE.

    Parameters
    ----------
    data : str, os.PathLike, pandas.DataFrame, dict of columns or StudyTable
        A path (CSV, semicolon- or tab-separated text, .xlsx; ``"-"`` is standard input), a
        DataFrame, or a mapping of column name to a sequence of cells (all of one length). Rows
        of a DataFrame or dict are numbered as in the CSV file ``df.to_csv(index=False)`` writes:
        the header is row 1, the first study row 2; the index is ignored. Missing cells (None,
        NaN, pandas.NA) are empty. A :class:`~ivigmeta.io.studies.StudyTable` is returned as is.
    columns : str or mapping, optional
        Roles mapped to column names, as ``--columns`` (``"treat_events=EvT,treat_total=NT"``
        or ``{"treat_events": "EvT", ...}``).
    sep : str, optional
        Field delimiter of a text file (``comma``, ``semicolon``, ``tab``); default sniffed.
    sheet : str, optional
        Worksheet of an .xlsx file (default the first).
    analysis : str, optional
        For a RevMan file (.rm5, or RevMan's CSV export): the analysis to read, numbered as
        RevMan numbers it (``"1.2"``, ``"1.2.3"`` for a subgroup); the table's ``settings``
        then hold that analysis's measure, method, model and level (docs/revman.md).
    missing : {"error", "exclude"}
        As ``--missing``: a missing value in a cell a study's effect needs (a count, a mean,
        ``yi`` ...) is a :class:`~ivigmeta.errors.DataError` naming the cell (``"error"``), or
        the study is left out and listed with the reason (``"exclude"``; in
        :attr:`~ivigmeta.io.studies.StudyTable.omitted`, then among the excluded studies of
        every analysis), as metafor's ``na.action = na.omit``.

    Returns
    -------
    StudyTable
        The validated studies in file order; ``notes`` holds what the command line prints as
        ``note:`` lines (the column convention recognised, duplicate labels ...).

    Raises
    ------
    DataError
        The table cannot be read or fails validation; the message names the file (or
        ``<DataFrame>``/``<dict>``), the row and the column.
    """
    check_missing(missing)
    if isinstance(data, StudyTable):
        if columns is not None or sep is not None or sheet is not None:
            raise DataError(
                f"{data.source}: columns, sep and sheet apply when reading a table, "
                "not to one already read"
            )
        return data
    if isinstance(data, (str, os.PathLike)):
        return load_table(
            os.fspath(data),
            sep=sep,
            sheet=sheet,
            columns=columns,
            analysis=analysis,
            missing=missing,
        )
    if analysis is not None:
        raise DataError("analysis applies to RevMan files only")
    if _is_dataframe(data):
        source = DATAFRAME_SOURCE
        frame: Any = data
        header = [str(c) for c in frame.columns]
        body = [[_cell(v) for v in row] for row in frame.itertuples(index=False, name=None)]
    elif isinstance(data, Mapping):
        source = DICT_SOURCE
        header, body = _dict_rows(data)
    else:
        raise TypeError(
            "data must be a path, a pandas DataFrame, a dict of columns or a StudyTable, "
            f"not {type(data).__name__}"
        )
    for name, value in (("sep", sep), ("sheet", sheet)):
        if value is not None:
            raise DataError(f"{source}: {name} applies to files only")
    return parse_rows(RawTable(source, [header, *body]), columns, missing)


def read_revman(path: str | os.PathLike[str]) -> Review:
    """Read a RevMan 5 review (.rm5, or RevMan's CSV export of analyses): every analysis with
    its settings, study rows and the numbers RevMan stored (:mod:`ivigmeta.io.revman`)."""
    from ivigmeta.io.readers import read_bytes
    from ivigmeta.io.revman import load_review

    source, data = read_bytes(os.fspath(path))
    return load_review(data, source, os.fspath(path))


def audit_revman(path: str | os.PathLike[str]) -> ReproduceResult:
    """Recompute every analysis of a RevMan file with RevMan's methods and check every number
    RevMan stored, as ``ivigmeta reproduce FILE.rm5`` (docs/revman.md)."""
    from ivigmeta.audit.revman import audit_review

    return audit_review(read_revman(path), os.fspath(path))


def _is_dataframe(data: object) -> bool:
    # Checked by name so that reading a path or a dict never imports pandas.
    return any(
        cls.__name__ == "DataFrame" and cls.__module__.startswith("pandas")
        for cls in type(data).__mro__
    )


def _dict_rows(data: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    header = [str(c) for c in data]
    cells = []
    for name, values in data.items():
        if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
            raise DataError(
                f"{DICT_SOURCE}: column '{name}' must be a sequence of cells, "
                f"not {type(values).__name__}"
            )
        cells.append([_cell(v) for v in values])
    lengths = {len(c) for c in cells}
    if len(lengths) > 1:
        sizes = ", ".join(f"'{h}' {len(c)}" for h, c in zip(header, cells))
        raise DataError(f"{DICT_SOURCE}: the columns differ in length ({sizes})")
    return header, [list(row) for row in zip(*cells)]


def _cell(value: Any) -> str:
    """One cell as the text a CSV file would hold, so that every reader validates alike."""
    if value is None or isinstance(value, str):
        return value or ""
    if isinstance(value, bool):
        return str(value).upper()
    try:
        if value != value:  # NaN, NaT
            return ""
    except (TypeError, ValueError):  # pandas.NA: its comparisons have no truth value
        return ""
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        x = float(value)
        if x.is_integer() and abs(x) < 2**53:
            return str(int(x))
        return repr(x)
    return str(value)


# ---------------------------------------------------------------------------------------------
# Fitting


def check_percent_level(level: float) -> None:
    """Refuse a confidence level given as a fraction (``0.95`` for 95%).

    Raises
    ------
    ModelError
        ``level`` lies between 0 and 1, naming the percentage meant.
    """
    if isinstance(level, numbers.Real) and 0 < level < 1:
        raise ModelError(
            f"the confidence level is in percent: level={level:g} asks for a {level:g}% "
            f"interval; for {level * 100:g}% give level={level * 100:g}"
        )


def effect_sizes(
    table: StudyTable,
    measure: str | None = None,
    cc: float = 0.5,
    cc_policy: str = "only0",
    keep_double_zero: bool = False,
    on_note: Notify | None = None,
) -> EffectSizes:
    """Effect sizes of every study of ``table`` (metafor's ``escalc``), as the commands compute
    them; ``on_note`` receives the table's notes and then the effects' own, as they arise.

    Rows the reader left out for a missing value (``missing="exclude"``) are listed among the
    excluded studies, in row order with the others."""
    from ivigmeta.core.effects import compute_effects

    say = on_note or _ignore
    for message in table.notes:
        say(message)
    if not table.studies:
        from ivigmeta.core.pooling import no_usable_studies

        raise ModelError(f"{table.source}: {no_usable_studies(omitted_exclusions(table))}")
    es = compute_effects(
        table.studies,
        measure=measure,
        cc=cc,
        cc_policy=cc_policy,
        keep_double_zero=keep_double_zero,
    )
    unlabelled = [s.row for s in table.studies if s.given is not None and s.given.measure is None]
    if unlabelled:
        say(
            f"{table.source}: the effects given in row(s) {', '.join(map(str, unlabelled))} are "
            f"read as {es.measure} (--measure); a 'measure' column would check it"
        )
    if table.omitted:
        from dataclasses import replace

        listed = [*omitted_exclusions(table), *es.excluded]
        listed.sort(key=lambda e: e.row if e.row is not None else 0)
        es = replace(es, excluded=tuple(listed))
    return es


def omitted_exclusions(table: StudyTable) -> list[Exclusion]:
    """The rows the reader left out for a missing value (``missing="exclude"``) as exclusions."""
    from ivigmeta.results import Exclusion

    return [Exclusion(m.study, m.reason, m.row) for m in table.omitted]


def exclusion_notes(table: StudyTable, es: EffectSizes) -> list[str]:
    """One line per study whose effect is undefined, naming its row."""
    return [f"{table.source}, row {e.row}: {e.study} excluded: {e.reason}" for e in es.excluded]


def fit_table(
    table: StudyTable,
    measure: str | None = None,
    tau2: str = "DL",
    ci: str = "z",
    common: str | None = None,
    level: float = 95.0,
    cc: float = 0.5,
    cc_policy: str = "only0",
    keep_double_zero: bool = False,
    on_note: Notify | None = None,
    glmm: str | None = None,
    software: str | None = None,
    pi: str = "z",
    common_ci: str = "z",
    tau2_weights: str | None = None,
    weights: str | None = None,
    unweighted: bool = False,
    mh_correct: bool = True,
) -> MetaAnalysisFit:
    """Fit the models to a table already read: :func:`pool` after :func:`read`.

    The options are :func:`pool`'s; ``level`` is taken as given (``--level`` semantics, without
    :func:`pool`'s check against a fraction). ``on_note`` receives every note as it arises, so
    that a caller printing them shows those before an error too; they are also kept in
    :attr:`MetaAnalysisFit.notes`.
    """
    from ivigmeta.core.pooling import fit, grid_search_note

    notes: list[str] = []

    def say(message: str) -> None:
        notes.append(message)
        if on_note is not None:
            on_note(message)

    from ivigmeta.core.revman import check_software

    chosen = check_software(software or table.settings.get("software", "metafor"))
    if table.settings and measure is None:
        measure = table.settings.get("measure")
    if common is None:
        common = str(table.settings.get("common_method", "IV"))
    es = effect_sizes(table, measure, cc, cc_policy, keep_double_zero, on_note=say)
    options = FitOptions(
        software=chosen,
        tau2_method=tau2.upper(),
        ci_method=ci.lower(),
        level=level / 100.0,
        common_method=common.upper(),
        glmm=glmm.upper() if glmm else None,
        keep_double_zero=keep_double_zero,
        pi_method=pi.lower(),
        common_ci=common_ci.lower(),
        tau2_weights=tau2_weights,
        weights=weights,
        unweighted=unweighted,
        mh_correct=mh_correct,
    )
    if weights is not None and unweighted:
        raise ModelError("--weights and --unweighted exclude each other")
    if tau2_weights is not None:
        table.require_label_column(tau2_weights)
    if weights is not None:
        table.require_label_column(weights)
    try:
        analysis = fit(es, options)
    except ModelError as exc:
        if es.k == 0 and not str(exc).startswith(table.source):
            raise ModelError(f"{table.source}: {exc}") from None
        raise
    for message in exclusion_notes(table, es):
        say(message)
    searched = grid_search_note(analysis)
    if searched:
        say(searched)
    if analysis.glmm is not None:
        for message in glmm_notes(analysis):
            say(message)
    return MetaAnalysisFit(analysis, table, notes)


def glmm_notes(analysis: MetaAnalysis) -> list[str]:
    """The notes of a GLMM fit: what it did with double-zero studies, the boundary, convergence."""
    model = analysis.glmm
    if model is None:
        return []
    out = []
    if model.uninformative:
        out.append(
            f"{', '.join(model.uninformative)}: no events (or only events) in both groups; "
            f"under {model.fit.model} such a study's likelihood does not depend on the effect, "
            "so it is kept but changes nothing except the heterogeneity tests' df"
        )
    out.extend(model.fit.notes)
    return out


def pool(
    data: Data,
    measure: str | None = None,
    tau2: str = "DL",
    ci: str = "z",
    common: str | None = None,
    level: float = 95,
    cc: float = 0.5,
    cc_policy: str = "only0",
    keep_double_zero: bool = False,
    columns: str | Mapping[str, str] | None = None,
    sep: str | None = None,
    sheet: str | None = None,
    glmm: str | None = None,
    analysis: str | None = None,
    software: str | None = None,
    pi: str = "z",
    common_ci: str = "z",
    tau2_weights: str | None = None,
    weights: str | None = None,
    missing: str = "error",
    unweighted: bool = False,
    mh_correct: bool = True,
) -> MetaAnalysisFit:
    """Pool the studies: per-study effects, common-effect and random-effects models.

    The same analysis as ``ivigmeta pool`` with the same options.

    Parameters
    ----------
    data : str, os.PathLike, pandas.DataFrame, dict of columns or StudyTable
        The study table (see :func:`read`).
    measure : str or None
        RR, OR, RD, AS, PHI, YUQ, YUY, OR2DN, OR2DL, PBIT or RTET for 2x2 counts (MPRD, MPRR, MPOR, MPORC or MPPETO for a table of matched pairs); MD, SMD, SMDH, ROM, CVR, VR, RPB or RBIS for means; IRR, IRD or IRSD for
        rates; PR, PLO, PAS, PFT or PLN for proportions; ZCOR, COR or UCOR for correlations;
        MN, MNLN, CVLN or SDLN for one group's means; MC, SMCC, SMCR, SMCRH or ROMC for one group's
        pre-post changes; IRLN, IR, IRS or IRFT for one group's rates; ZPCOR, PCOR or (with the
        model's R²) SPCOR for partial correlations (docs/methods.md). ``None``: the default for the table's columns
        (RR, MD, IRR, PLO, ZCOR, MN, MC, IRLN or ZPCOR).
    tau2 : {"DL", "REML", "ML", "PM", "HE", "SJ", "EB", "HS", "HSk", "GENQ", "PMM", "SJIT", "DLIT"}
        Between-study variance estimator, metafor's ``method =`` names (docs/methods.md):
        DerSimonian & Laird 1986; Viechtbauer 2005 for the likelihood estimators; Paule &
        Mandel 1982; Hedges 1983; Sidik & Jonkman 2005; empirical Bayes; Hunter-Schmidt (and
        with the k / (k - p) correction); generalized Q with ``tau2_weights``; median-unbiased
        Paule-Mandel; iterated Sidik-Jonkman and DerSimonian-Laird.
    ci : {"z", "hk", "adhoc", "hc"}
        Wald z tests and intervals, Hartung-Knapp-Sidik-Jonkman (t on k - 1 df), its
        truncated form (variance factor at least 1, metafor's ``test = "adhoc"``), or the
        Henmi-Copas interval around the common-effect estimate (metafor's ``hc()``).
    pi : {"z", "t"}
        Prediction interval on the normal (t on k - 1 df under ``ci`` hk / adhoc, as metafor's
        ``predict()``) or on t with k - 2 df (Higgins et al. 2009).
    common_ci : {"z", "hk"}
        The common-effect interval: Wald z or Hartung-Knapp (t on k - 1 df; inverse variance
        only).
    tau2_weights : str or None
        The column holding the GENQ estimator's weights.
    weights : str or None
        A column of user weights for the pooled estimates (metafor's ``weights=``): theta =
        sum a y / sum a with se² = sum a² (v + tau²) / (sum a)²; tau², Q and I² stay the
        inverse-variance ones. Intervals ``z`` or ``t`` only.
    unweighted : bool
        Every study weighs the same (metafor's ``weighted = FALSE``): the estimates as with
        ``weights`` all 1.
    mh_correct : bool
        Mantel-Haenszel's CMH test of OR = 1 and MH test of IRR = 1 with the continuity
        correction 1/2 (metafor's ``correct = TRUE``, the default).
    common : {"IV", "MH", "PETO"} or None
        Common-effect method: inverse variance, Mantel-Haenszel, Peto (OR only); ``None``:
        inverse variance, or a RevMan analysis's own method.
    level : float
        Confidence level in percent (95, not 0.95).
    cc, cc_policy : float, {"only0", "all", "none"}
        Continuity correction and which studies get it.
    keep_double_zero : bool
        Keep studies with no events in either arm in RR/OR analyses (excluded by default;
        with ``glmm``, metafor's ``drop00 = FALSE``).
    columns, sep, sheet, missing
        How the table is read (see :func:`read`); ``missing="exclude"`` leaves out the studies
        whose effect needs a missing value, listed in ``excluded`` (as ``--missing exclude``).
    glmm : {"UM.FS", "UM.RS", "CM.EL", "CM.AL"} or None
        Fit metafor's ``rma.glmm`` model instead of the normal-normal one, for OR (2x2
        counts), IRR (UM.FS, UM.RS, CM.EL), PLO or IRLN (UM.FS): unconditional with fixed or
        random study effects, conditional with the exact or the approximate likelihood
        (docs/methods.md, "Sparse data"). ``random`` is then the GLMM, ``common`` its
        fixed-effects counterpart and ``analysis.glmm`` the model's details.
    analysis : str, optional
        For a RevMan file: the analysis to read (``"1.2"``); its measure and method are the
        defaults for ``measure`` and ``common`` left at theirs (docs/revman.md).
    software : {"metafor", "revman"} or None
        Whose conventions: metafor's (the default for tables) or RevMan 5's methods (the
        default for RevMan files): Mantel-Haenszel on the continuity-corrected counts, random
        effects DerSimonian-Laird from the common method's Chi², SMD as RevMan computes it.

    Returns
    -------
    MetaAnalysisFit

    Raises
    ------
    DataError
        The table cannot be read or fails validation (the message names file, row, column).
    ModelError
        An option does not apply (``level=0.95``, Peto with RR, no usable study ...).
    """
    check_percent_level(level)
    table = read(data, columns=columns, sep=sep, sheet=sheet, analysis=analysis, missing=missing)
    return fit_table(
        table,
        measure=measure,
        tau2=tau2,
        ci=ci,
        common=common,
        level=level,
        cc=cc,
        cc_policy=cc_policy,
        keep_double_zero=keep_double_zero,
        glmm=glmm,
        software=software,
        pi=pi,
        common_ci=common_ci,
        tau2_weights=tau2_weights,
        weights=weights,
        unweighted=unweighted,
        mh_correct=mh_correct,
    )


def _checked_request(
    table: StudyTable, effects: EffectSizes, level: float, on_note: Notify | None
) -> None:
    """A request's shared checks once its columns are known: ``level`` (in percent) strictly
    between 0 and 100, then the table's exclusion notes to ``on_note``."""
    if not 0 < level < 100:
        raise ModelError(f"the confidence level must be between 0 and 100 percent, not {level:g}")
    if on_note is not None:
        for message in exclusion_notes(table, effects):
            on_note(message)


def _measure_known(effects: EffectSizes, measure_given: bool) -> bool:
    """Whether the effects' measure was named (``--measure``, a measure column, or computed
    from data, not only given as effects)."""
    return measure_given or any(
        s.effect_source not in ("ci", "se", "vi") or (s.given is not None and s.given.measure)
        for s in effects.studies
    )


def moderator_coding(
    table: StudyTable,
    effects: EffectSizes,
    mods: str | Sequence[str],
    refs: Sequence[str] | str,
    categorical: Sequence[str] | str,
    options: str = "--mod",
) -> tuple[list[str], dict[str, str], list[str]]:
    """The moderator columns, reference levels and forced-categorical columns of
    ``--mod``/``--ref``/``--categorical``, checked against the table (metareg, blup, influence);
    ``options`` names the options that gave ``mods`` in errors."""
    from ivigmeta.methods.metareg import resolve_refs

    columns = [mods] if isinstance(mods, str) else list(mods)
    categorical = [categorical] if isinstance(categorical, str) else list(categorical)
    refs = [refs] if isinstance(refs, str) else list(refs)
    for col in (*columns, *categorical):
        table.require_label_column(col)
    unknown = [c for c in categorical if c not in columns]
    if unknown:
        raise ModelError(f"--categorical {unknown[0]}: not one of the {options} columns")
    if refs and not columns:
        raise ModelError("--ref applies to moderators (--mod COL)")
    return columns, resolve_refs(effects, columns, refs), categorical


def metareg_table(
    table: StudyTable,
    effects: EffectSizes,
    mods: str | Sequence[str],
    refs: Sequence[str] = (),
    categorical: Sequence[str] = (),
    tau2: str = "DL",
    ci: str = "z",
    level: float = 95.0,
    on_note: Notify | None = None,
    model: str = "random",
    predict: str | Sequence[str] = (),
    permutations: int | None = None,
    seed: int | None = None,
    tau2_ci: str = "qp",
    btt: str | Sequence[str] = (),
    lrt: str | Sequence[str] = (),
    cluster: str | None = None,
    adjust: bool = True,
    weights: str | None = None,
    cr2: bool = False,
    unweighted: bool = False,
    scale: str | Sequence[str] = (),
    scale_link: str = "log",
    att: str | Sequence[str] = (),
    predict_scale: str | Sequence[str] = (),
    scale_profile: bool = False,
    scale_lrt: bool = False,
    glmm: str | None = None,
    keep_double_zero: bool = False,
    contrast: str | Sequence[str] = (),
    tau2_weights: str | None = None,
) -> MetaRegression:
    """Mixed-effects meta-regression of ``effects`` on moderator columns of ``table``, as
    ``ivigmeta metareg`` (:meth:`MetaAnalysisFit.metareg` with the options given).

    ``scale``: scale-moderator columns; given, the model is the location-scale model (metafor's
    ``rma(..., scale = ~ ...)``, :func:`location_scale_table`) and ``mods`` may be empty.

    ``refs`` are ``--ref`` values (``COL=LEVEL`` or ``LEVEL``); ``level`` in percent, taken as
    given. ``on_note`` receives the exclusion notes once the request is checked. ``model``:
    ``"random"`` (mixed effects) or ``"common"`` (fixed-effects meta-regression, tau² = 0).
    ``predict``: moderator values ``"COL=VALUE,..."``, one prediction each (metafor's
    ``predict(newmods = ...)``). ``permutations``: also the permutation test (metafor's
    ``permutest``), exact when there are at most that many distinct permutations, else that
    many random ones from ``seed``. ``tau2_ci``: the type of the residual tau² interval
    (``qp``, ``pl``, ``wald``, ``wald-log``, ``wald-sqrt``). ``btt``: subsets of coefficients
    to test jointly (a moderator column, or comma-separated coefficient names; metafor's
    ``anova(fit, btt = ...)``). ``lrt``: moderator columns whose removal a likelihood-ratio
    test assesses (metafor's ``anova(full, reduced)``). ``cluster``: also the cluster-robust
    inference by that column (metafor's ``robust(fit, cluster, adjust)``; ``adjust``: the
    n / (n - p) factor; ``cr2``: instead clubSandwich's CR2 sandwich with Satterthwaite df and
    the HTZ test, metafor's ``robust(fit, cluster, clubSandwich = TRUE)``) as the result's
    ``robust``; every study in the model needs a cluster value. ``weights``: a column of user
    weights for the coefficients (metafor's ``weights=``; ``ci`` z or t); ``unweighted``: every
    study weighs the same (metafor's ``weighted = FALSE``). ``glmm``: fit metafor's
    ``rma.glmm(..., mods = ...)`` model (UM.FS, UM.RS, CM.EL, CM.AL) to the raw counts instead
    (``ci`` z or t; ``btt`` and ``predict`` apply, the other options of the normal-normal model
    do not); ``keep_double_zero``: its studies without events in either group are kept
    (metafor's ``drop00 = FALSE``).
    """
    from ivigmeta.methods.metareg import glmm_metareg_analysis, metareg_analysis

    scale = [scale] if isinstance(scale, str) else list(scale)
    if scale:
        given = {
            "--model common": model.lower() == "common",
            "--permutations": permutations is not None,
            "--weights": weights is not None,
            "--unweighted": unweighted,
            "--glmm": glmm is not None,
            "--contrast": bool(contrast),
            "--tau2-weights": tau2_weights is not None,
            "--cluster": cluster is not None,
            "--lrt": bool(lrt),
            "--tau2-ci": tau2_ci != "qp",
        }
        for option, used in given.items():
            if used:
                raise ModelError(
                    f"{option} does not apply to location-scale models (--scale); leave it out"
                )
        return location_scale_table(
            table,
            effects,
            mods,
            scale,
            link=scale_link,
            refs=refs,
            categorical=categorical,
            tau2=tau2,
            ci=ci,
            level=level,
            on_note=on_note,
            predict=predict,
            predict_scale=predict_scale,
            btt=btt,
            att=att,
            profile=scale_profile,
            lrt=scale_lrt,
        )
    for option, value in (("--att", att), ("--predict-scale", predict_scale)):
        if value:
            raise ModelError(f"{option} applies to location-scale models: add --scale COL")
    if scale_profile or scale_lrt:
        raise ModelError(
            "--scale-profile and --scale-lrt apply to location-scale models: add --scale COL"
        )
    mods, ref, categorical = moderator_coding(table, effects, mods, refs, categorical)
    if glmm is not None:
        if tau2_weights is not None:
            raise ModelError("--tau2-weights are the GENQ estimator's: not with --glmm")
        check_glmm_metareg(
            tau2=tau2,
            model=model,
            permutations=permutations,
            tau2_ci=tau2_ci,
            lrt=lrt,
            cluster=cluster,
            weights=weights,
            unweighted=unweighted,
        )
        _checked_request(table, effects, level, on_note)
        reg = glmm_metareg_analysis(
            effects,
            mods,
            glmm.upper(),
            ci_method=ci,
            level=level / 100.0,
            ref=ref,
            categorical=categorical,
            keep_double_zero=keep_double_zero,
            btt=[btt] if isinstance(btt, str) else list(btt),
            predict=[predict] if isinstance(predict, str) else list(predict),
        )
        if on_note is not None and reg.glmm is not None:
            model_info = reg.glmm
            for e in reg.excluded:
                if e.reason.startswith("no events in either group"):
                    on_note(f"{e.study} (row {e.row}) left out: {e.reason}")
            if model_info.uninformative:
                on_note(
                    f"{', '.join(model_info.uninformative)}: no events (or only events) in both "
                    f"groups; under {model_info.fit.model} such a study's likelihood does not "
                    "depend on the coefficients, so it is kept but changes nothing except the "
                    "heterogeneity tests' df"
                )
            for message in model_info.fit.notes:
                on_note(message)
        if contrast:
            from dataclasses import replace

            from ivigmeta.methods.metareg import linear_contrasts

            rows, joint = linear_contrasts(
                reg, [contrast] if isinstance(contrast, str) else contrast
            )
            reg = replace(reg, contrasts=rows, contrast_test=joint)
        return reg
    for col in (cluster, weights, tau2_weights):
        if col is not None:
            table.require_label_column(col)
    if weights is not None and unweighted:
        raise ModelError("--weights and --unweighted exclude each other")
    if (weights is not None or unweighted) and cluster is not None:
        option = "--unweighted" if unweighted else "--weights (user weights)"
        raise ModelError(f"{option} is not offered with --cluster")
    _checked_request(table, effects, level, on_note)
    reg = metareg_analysis(
        effects,
        mods,
        tau2_method=tau2,
        ci_method=ci.lower(),
        level=level / 100.0,
        ref=ref,
        categorical=categorical,
        model=model.lower(),
        predict=[predict] if isinstance(predict, str) else list(predict),
        permutations=permutations,
        seed=seed,
        tau2_ci=tau2_ci,
        btt=[btt] if isinstance(btt, str) else list(btt),
        lrt=[lrt] if isinstance(lrt, str) else list(lrt),
        weights=weights,
        unweighted=unweighted,
        contrast=[contrast] if isinstance(contrast, str) else list(contrast),
        tau2_weights=tau2_weights,
    )
    if cluster is not None:
        from dataclasses import replace

        from ivigmeta.methods.robust import robust_metareg

        rob = robust_metareg(effects, reg, cluster, mods, ref, categorical, adjust, cr2)
        reg = replace(reg, robust=rob)
    return reg


def check_glmm_metareg(
    tau2: str = "DL",
    model: str = "random",
    permutations: int | None = None,
    tau2_ci: str = "qp",
    lrt: str | Sequence[str] = (),
    cluster: str | None = None,
    weights: str | None = None,
    unweighted: bool = False,
) -> None:
    """The options of the normal-normal meta-regression that a GLMM meta-regression
    (``metareg --glmm``) does not take: a :class:`ModelError` naming the first one given."""
    given = [
        (tau2.upper() != "DL", f"--tau2 {tau2}", "its tau² is the maximum likelihood one"),
        (
            model.lower() != "random",
            f"--model {model}",
            "its fixed-effects counterpart (tau² = 0) is reported with it",
        ),
        (
            permutations is not None,
            "--permutations",
            "the permutation test refits the normal-normal model",
        ),
        (tau2_ci.lower() != "qp", f"--tau2-ci {tau2_ci}", "tau² intervals are not offered"),
        (bool(lrt), "--lrt", "the likelihood-ratio test refits the normal-normal model"),
        (cluster is not None, "--cluster", "cluster-robust inference is not offered"),
        (weights is not None, "--weights", "a GLMM has no study weights"),
        (unweighted, "--unweighted", "a GLMM has no study weights"),
    ]
    for present, option, why in given:
        if present:
            raise ModelError(f"{option} does not apply to --glmm: {why}")


def combine_table(
    table: StudyTable,
    effects: EffectSizes,
    method: str = "stouffer",
    mode: str = "directed",
    weights: str | None = None,
) -> CombinationTest:
    """Stouffer's or Fisher's combination test of the studies of ``effects`` (z = y / sqrt(v)),
    as ``ivigmeta combine``: ``mode`` directed, undirected or concordant; ``weights`` a column
    of Stouffer weights (e.g. the sample sizes)."""
    from ivigmeta.core.pooling import column_numbers
    from ivigmeta.methods.combination import combination_test

    w = None
    if weights is not None:
        table.require_label_column(weights)
        w = list(column_numbers(effects, weights, "--weights", "a weight"))
    return combination_test(effects, method, mode, w, weights)


def location_scale_table(
    table: StudyTable,
    effects: EffectSizes,
    mods: str | Sequence[str],
    scale: str | Sequence[str],
    link: str = "log",
    refs: Sequence[str] = (),
    categorical: Sequence[str] = (),
    tau2: str = "REML",
    ci: str = "z",
    level: float = 95.0,
    on_note: Notify | None = None,
    predict: str | Sequence[str] = (),
    predict_scale: str | Sequence[str] = (),
    btt: str | Sequence[str] = (),
    att: str | Sequence[str] = (),
    profile: bool = False,
    lrt: bool = False,
) -> MetaRegression:
    """The location-scale meta-regression of ``effects`` (metafor's ``rma(yi, vi, mods = ~ mods,
    scale = ~ scale, link = link)``), as ``ivigmeta metareg --scale``: location moderators
    ``mods`` (none: intercept only), scale moderators ``scale``, ``link`` ``"log"`` or
    ``"identity"``, ``tau2`` ``"REML"`` or ``"ML"``, Wald z tests (``ci`` must be ``"z"``).
    ``refs``/``categorical`` code the columns of both parts. ``predict``/``btt``: location
    predictions and tests as for :func:`metareg_table`; ``predict_scale``: scale-moderator
    values ``"COL=VALUE,..."`` (metafor's ``predict(fit, newscale = ...)``); ``att``: subsets of
    scale coefficients to test (``anova(fit, att = ...)``); ``profile``: profile-likelihood
    intervals of the scale coefficients (``confint(fit, alpha = j)``); ``lrt``: the
    likelihood-ratio test against scale ~ 1. The result is a :class:`MetaRegression` whose
    ``scale`` holds the scale model."""
    from ivigmeta.methods.location_scale import location_scale_analysis

    mods = [mods] if isinstance(mods, str) else list(mods)
    scale = [scale] if isinstance(scale, str) else list(scale)
    if ci.lower() != "z":
        raise ModelError(
            f"--ci {ci} does not apply to location-scale models (--scale): they use Wald z tests"
        )
    columns, ref, categorical = moderator_coding(
        table, effects, list(dict.fromkeys([*mods, *scale])), refs, categorical, "--mod/--scale"
    )
    _checked_request(table, effects, level, on_note)

    def listed(value: str | Sequence[str]) -> list[str]:
        return [value] if isinstance(value, str) else list(value)

    return location_scale_analysis(
        effects,
        mods,
        scale,
        link=link,
        method=tau2,
        level=level / 100.0,
        ref=ref,
        categorical=categorical,
        predict=listed(predict),
        predict_scale=listed(predict_scale),
        btt=listed(btt),
        att=listed(att),
        profile=profile,
        lrt=lrt,
    )


def rve_table(
    table: StudyTable,
    effects: EffectSizes,
    cluster: str,
    mods: str | Sequence[str] = (),
    refs: Sequence[str] | str = (),
    categorical: Sequence[str] | str = (),
    model: str = "correlated",
    rho: float = 0.8,
    small: bool = True,
    level: float = 95.0,
    measure_given: bool = False,
    on_note: Notify | None = None,
) -> RobustVarianceModel:
    """Robust variance estimation for the dependent ``effects`` of ``table`` clustered by the
    column ``cluster`` (robumeta's ``robu()``), as ``ivigmeta rve``: ``model`` ``"correlated"``
    (robumeta's ``CORR``, with ``rho`` the assumed correlation of a study's effects, in [0, 1])
    or ``"hierarchical"`` (``HIER``); ``mods`` moderator columns coded as in
    :func:`metareg_table` (``refs``, ``categorical``); none: the intercept alone. ``small``:
    Tipton's (2015) small-sample correction with Satterthwaite df (robumeta's default); else
    the Hedges, Tipton & Johnson (2010) sandwich on N - p df. ``level`` in percent.
    ``measure_given``: the measure was asked for; effects given as yi/vi with neither it nor a
    ``measure`` column are of no stated measure (``GEN``, as :func:`aggregate_table`).

    Raises
    ------
    DataError
        A row has no cluster value (naming file, row and column), or a variance is not positive.
    ModelError
        rho outside [0, 1], a single cluster, no more clusters than coefficients, or variance
        components the moments do not identify.
    """
    from ivigmeta.methods.rve import rve_analysis

    columns: list[str] = []
    ref: dict[str, str] = {}
    cats: list[str] = []
    if mods:
        columns, ref, cats = moderator_coding(table, effects, mods, refs, categorical)
    elif refs or categorical:
        raise ModelError("--ref and --categorical apply to moderators (--mod COL)")
    table.require_label_column(cluster)
    _checked_request(table, effects, level, on_note)
    known = _measure_known(effects, measure_given)
    return rve_analysis(
        table,
        effects,
        cluster,
        columns,
        ref,
        cats,
        model,
        rho,
        small,
        level / 100.0,
        measure=None if known else "GEN",
    )


def metareg_bubble(reg: MetaRegression, moderator: str | None = None) -> Bubble:
    """What the bubble plot of ``reg`` draws (metafor's ``regplot``): the studies against the
    continuous ``moderator`` (default: the model's first continuous one) and the regression
    line with its confidence band, the other moderators at their means."""
    from ivigmeta.methods.metareg import bubble

    return bubble(reg, moderator)


# ---------------------------------------------------------------------------------------------
# Aggregating dependent effects


def aggregate_table(
    table: StudyTable,
    effects: EffectSizes,
    cluster: str,
    rho: float | str | None = None,
    struct: str = "CS",
    phi: float | str | None = None,
    time: str | None = None,
    weighted: bool = True,
    measure_given: bool = False,
    on_note: Notify | None = None,
) -> Aggregation:
    """Collapse the ``effects`` of ``table`` into one per cluster of column ``cluster``
    (metafor's ``aggregate.escalc``), as ``ivigmeta aggregate``.

    ``struct``: the correlation of the effects within a cluster: ``"ID"`` (independent),
    ``"CS"`` (compound symmetry, ``rho``), ``"CAR"`` (continuous-time autoregressive,
    ``phi`` ** |t_i - t_j| with the times in column ``time``) or ``"CS+CAR"``. ``rho`` and
    ``phi`` are numbers (rho in [-1, 1], phi in [0, 1]) or the name of a column giving one per
    cluster. ``weighted``: the inverse-variance (GLS) combination; ``False``: the mean, with its
    variance under V. ``measure_given``: the measure was asked for (``--measure``); without it,
    effects given as yi/vi with no ``measure`` column are of no stated measure (metafor's
    ``GEN``). ``on_note`` receives the exclusion notes before the aggregation.

    Raises
    ------
    DataError
        A column is missing, a cluster, time or rho cell is empty or not valid (naming the row).
    ModelError
        An option does not apply (CS without rho, CAR without time), or a cluster's V is not
        positive definite.
    """
    from ivigmeta.methods.aggregate import aggregate_table as aggregate_effects

    for column in (cluster, time, rho, phi):
        if isinstance(column, str):
            table.require_label_column(column)
    if on_note is not None:
        for message in exclusion_notes(table, effects):
            on_note(message)
    known = _measure_known(effects, measure_given)
    return aggregate_effects(
        table,
        effects,
        cluster,
        struct=struct,
        rho=rho,
        phi=phi,
        time=time,
        weighted=weighted,
        measure_known=known,
    )


def aggregate(
    data: Data,
    cluster: str,
    rho: float | str | None = None,
    struct: str = "CS",
    phi: float | str | None = None,
    time: str | None = None,
    weighted: bool = True,
    measure: str | None = None,
    cc: float = 0.5,
    cc_policy: str = "only0",
    keep_double_zero: bool = False,
    columns: str | Mapping[str, str] | None = None,
    sep: str | None = None,
    sheet: str | None = None,
    missing: str = "error",
) -> Aggregation:
    """Read the table, compute its effect sizes (as :func:`pool`) and collapse them into one
    per cluster: :func:`aggregate_table` after :func:`read` and :func:`effect_sizes`.

    >>> agg = ivigmeta.aggregate("outcomes.csv", cluster="study", rho=0.6)  # doctest: +SKIP
    >>> [(c.cluster, c.k, c.yi, c.vi) for c in agg.clusters]                 # doctest: +SKIP
    """
    table = read(data, columns=columns, sep=sep, sheet=sheet, missing=missing)
    es = effect_sizes(table, measure, cc, cc_policy, keep_double_zero)
    return aggregate_table(
        table,
        es,
        cluster,
        rho=rho,
        struct=struct,
        phi=phi,
        time=time,
        weighted=weighted,
        measure_given=measure is not None,
    )


# ---------------------------------------------------------------------------------------------
# Transformations (metafor's transf.*)


def transform_names() -> tuple[str, ...]:
    """The names :func:`transf` takes: every ``transf.*`` function of metafor 3.8-1, in
    metafor's spelling without ``transf.``."""
    from ivigmeta.core.transforms import TRANSFORMS

    return tuple(TRANSFORMS)


def transform_arguments(name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(the arguments the function takes, those it needs)`` of :func:`transf` ``name``."""
    spec = _transform(name)
    return spec.params, spec.needs


def _transform(name: str) -> Any:
    from ivigmeta.core.transforms import TRANSFORMS

    key = name.strip()
    key = key[len("transf.") :] if key.startswith("transf.") else key
    if key not in TRANSFORMS:
        raise DataError(f"unknown transformation '{name}' (choose {', '.join(TRANSFORMS)})")
    return TRANSFORMS[key]


def _numbers(
    what: str, values: float | Sequence[float], *, positive: bool = False, each: int | None = None
) -> tuple[float, ...]:
    """``values`` as a tuple of numbers (not NaN; > 0 when ``positive``); with ``each``, one
    number or ``each`` of them (one per value transformed)."""
    seq = [values] if isinstance(values, numbers.Real) else list(values)  # type: ignore[arg-type]
    out = []
    for v in seq:
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise DataError(f"{what}: '{v}' is not a number") from None
        if math.isnan(f):
            raise DataError(f"{what}: NaN is not a number to use")
        if positive and not f > 0:
            raise DataError(f"{what}: {v:g} is not positive")
        out.append(f)
    if not out:
        raise DataError(f"{what}: no values")
    if each is not None and len(out) not in (1, each):
        raise DataError(f"{what}: {len(out)} values for {each} to transform (give 1 or {each})")
    return tuple(out)


def _one_number(what: str, value: float) -> float:
    (v,) = _numbers(what, [value])
    if math.isinf(v):
        raise DataError(f"{what}: {v:g} is not a finite number")
    return v


def transf(
    name: str,
    values: float | Sequence[float],
    *,
    n: float | Sequence[float] | None = None,
    time: float | Sequence[float] | None = None,
    sd: float | None = None,
    pc: float | Sequence[float] | None = None,
    n1: float | Sequence[float] | None = None,
    n2: float | Sequence[float] | None = None,
    tau2: float | None = None,
    lower: float | None = None,
    upper: float | None = None,
) -> Transformed:
    """``values`` through metafor's ``transf.NAME`` (``name`` without ``transf.``: ``"ztor"``,
    ``"ilogit"``, ``"ipft.hm"``, ``"exp.int"`` ...), the same code the measures' back-
    transformations run (:mod:`ivigmeta.core.transforms`, docs/methods.md).

    ``n``: the sizes of ``pft``/``ipft`` (one, or one per value) and the studies' sizes of
    ``ipft.hm``; ``time``: the person-time of ``irft``/``iirft``; ``sd`` of ``dtomd``; ``pc``:
    the control risk of ``logortord``/``logortorr``; ``n1``, ``n2``: the group sizes of
    ``dtorpb`` (optional); ``tau2`` (default 0), ``lower``, ``upper``: the integral transforms'
    variance and integration bounds (default: each value -+ 10 sqrt(tau2), metafor's).

    A value outside the function's domain (r beyond [-1, 1] for ``rtoz``, p beyond [0, 1] ...),
    a missing or unexpected argument, NaN, a size that is not positive, a control risk beyond
    [0, 1], a negative tau² or bounds with lower >= upper raise :class:`DataError`.

    >>> ivigmeta.api.transf("ztor.int", [0.5], tau2=0.1).value  # doctest: +SKIP
    """
    import numpy as np

    from ivigmeta.results import Transformed

    spec = _transform(name)
    label = f"transf.{spec.name}"
    x = _numbers(label, values)
    given = {
        k: v
        for k, v in {
            "n": n, "time": time, "sd": sd, "pc": pc, "n1": n1, "n2": n2,
            "tau2": tau2, "lower": lower, "upper": upper,
        }.items()
        if v is not None
    }  # fmt: skip
    for k in given:
        if k not in spec.params:
            takes = ", ".join(spec.params) or "no arguments"
            raise DataError(f"{label} does not take {k} (it takes {takes})")
    for k in spec.needs:
        if k not in given:
            raise DataError(f"{label} needs {k}")
    if ("n1" in given) != ("n2" in given):
        raise DataError(f"{label}: give both n1 and n2, or neither")
    lo, hi = spec.domain
    for v in x:
        if not lo <= v <= hi:
            raise DataError(f"{label}: {v:g} is outside its domain [{lo:g}, {hi:g}]")
    args: dict[str, Any] = {}
    each = None if spec.name == "ipft.hm" else len(x)
    for k in ("n", "time", "n1", "n2"):
        if k in given:
            args[k] = _numbers(f"{label}: {k}", given[k], positive=True, each=each)
    if "pc" in given:
        args["pc"] = _numbers(f"{label}: pc", given["pc"], each=len(x))
        if any(not 0 <= p <= 1 for p in args["pc"]):
            raise DataError(f"{label}: the control risk pc must be between 0 and 1")
    for k in ("sd", "tau2", "lower", "upper"):
        if k in given:
            args[k] = _one_number(f"{label}: {k}", given[k])  # type: ignore[arg-type]
    if args.get("tau2", 0.0) < 0:
        raise DataError(f"{label}: tau2 {args['tau2']:g} is negative")
    if args.get("tau2", 0.0) > 0:
        half = 10 * math.sqrt(args["tau2"])
        for v in x:
            if math.isinf(v):
                raise DataError(f"{label}: {v:g} is not a finite number (the integral needs one)")
            a, b = args.get("lower", v - half), args.get("upper", v + half)
            if not a < b:
                raise DataError(
                    f"{label}: the integration range [{a:g}, {b:g}] at {v:g} is empty "
                    "(lower must be below upper)"
                )
    call = {k: (np.array(v) if isinstance(v, tuple) else v) for k, v in args.items()}
    out = np.atleast_1d(spec(np.array(x), **call))
    nhm = None
    if spec.name == "ipft.hm":
        from ivigmeta.core.transforms import harmonic_mean

        nhm = harmonic_mean(call["n"])
    return Transformed(
        function=spec.name,
        description=spec.summary,
        x=x,
        value=tuple(float(v) for v in out),
        n_harmonic=nhm,
        **args,
    )


def _ignore(message: str) -> None:
    pass


# ---------------------------------------------------------------------------------------------
# The fit


class MetaAnalysisFit:
    """A fitted meta-analysis and the questions it answers (what ``rma()`` returns in metafor).

    Made by :func:`pool`. The key numbers are attributes: :attr:`random` and :attr:`common`
    (pooled estimates: ``estimate``, ``ci_low``, ``ci_high``, ``p_value``, ``theta``, ``se``),
    :attr:`heterogeneity` (``q``, ``i2``, ``tau2`` ...), :attr:`effects` (``yi``, ``vi`` per
    study) and :attr:`study_estimates`. With a single study nothing is pooled: ``random``,
    ``common`` and ``heterogeneity`` are None.

    Parameters
    ----------
    analysis : MetaAnalysis
        The fitted models (:mod:`ivigmeta.results`).
    table : StudyTable
        The table the effects were computed from (subgroup and moderator columns).
    notes : sequence of str
        What the command line prints as ``note:`` lines for this fit.
    """

    def __init__(
        self, analysis: MetaAnalysis, table: StudyTable, notes: Sequence[str] = ()
    ) -> None:
        self.analysis = analysis
        self.table = table
        self.notes = tuple(notes)

    # -- the numbers --------------------------------------------------------------------------

    @property
    def effects(self) -> EffectSizes:
        """Per-study ``yi`` and ``vi`` on the analysis scale, with the excluded studies."""
        return self.analysis.effects

    @property
    def random(self) -> RandomFit | None:
        """The random-effects estimate (None with a single study)."""
        return self.analysis.random

    @property
    def common(self) -> CommonFit | None:
        """The common-effect estimate (None with a single study)."""
        return self.analysis.common

    @property
    def glmm(self) -> GlmmModel | None:
        """The GLMM behind the fit (``pool(glmm=...)``), or None for the normal-normal model."""
        return self.analysis.glmm

    @property
    def heterogeneity(self) -> Heterogeneity | None:
        """Q, I², H², tau² and tau with their intervals (None with a single study)."""
        return self.analysis.heterogeneity

    @property
    def study_estimates(self) -> tuple[Estimate, ...]:
        """Each study's own estimate and interval, in table order."""
        return self.analysis.study_estimates

    @property
    def options(self) -> FitOptions:
        return self.analysis.options

    @property
    def k(self) -> int:
        """Number of studies in the fit."""
        return self.analysis.k

    @property
    def measure(self) -> str:
        return self.analysis.measure

    @property
    def level(self) -> float:
        """Confidence level in percent."""
        return self.analysis.options.level * 100.0

    @property
    def pooled(self) -> bool:
        """False when a single study was left: nothing was pooled."""
        return self.analysis.pooled

    @property
    def excluded(self) -> tuple[Exclusion, ...]:
        """Studies left out of the fit, each with its row and reason."""
        return self.analysis.effects.excluded

    # -- the questions ------------------------------------------------------------------------

    def require_pooled(self, what: str) -> None:
        """Raise a :class:`DataError` saying why ``what`` cannot run when fewer than 2 studies
        were pooled."""
        if not self.pooled:
            reasons = "; ".join(f"{e.study} (row {e.row}): {e.reason}" for e in self.excluded)
            raise DataError(
                f"{what} needs at least 2 usable studies (have {self.k})"
                + (f"; excluded: {reasons}" if reasons else "")
            )

    def require_iv_weights(self, what: str) -> None:
        """Raise a :class:`ModelError` when the fit has user weights (--weights) and ``what``
        assumes inverse-variance weights."""
        if self.options.user_weighted:
            raise ModelError(
                f"{what} assume inverse-variance weights: not with {self.options.weights_option} (it applies to "
                "pool, loo, cumulative, heterogeneity, sof and metareg)"
            )

    def tau2_ci(self, method: str = "qp") -> HeterogeneityCI | None:
        """The confidence interval for tau², tau, I² and H² of type ``method``: "qp" (the
        Q-profile the fit carries), "pl" (profile likelihood, ML and REML fits) or "wald"
        (tau² ± z se(tau²), truncated at 0); metafor's ``confint(fit, type = "QP" / "PL" /
        "Wald")``. None with a single study."""
        from ivigmeta.methods.heterogeneity_ci import heterogeneity_ci

        return heterogeneity_ci(self.analysis, method)

    def with_tau2_ci(self, method: str = "qp") -> MetaAnalysisFit:
        """This fit with the heterogeneity interval of type ``method`` (see :meth:`tau2_ci`):
        what ``ivigmeta heterogeneity --tau2-ci METHOD`` renders."""
        from ivigmeta.methods.heterogeneity_ci import with_tau2_ci

        return MetaAnalysisFit(with_tau2_ci(self.analysis, method), self.table, self.notes)

    def robust(self, cluster: str, adjust: bool = True, cr2: bool = False) -> RobustPooled:
        """Cluster-robust inference for the pooled estimates (metafor's ``robust(fit,
        cluster, adjust)``): the random-effects model with its tau², and the common-effect
        inverse-variance model, studies clustered by the column ``cluster`` (every study needs
        a value); ``adjust``: the small-sample factor n / (n - 1) (CR1; False: CR0); ``cr2``:
        instead clubSandwich's CR2 sandwich with Satterthwaite df (metafor's ``robust(fit,
        cluster, clubSandwich = TRUE)``)."""
        from ivigmeta.methods.robust import robust_pooled

        self.table.require_label_column(cluster)
        return robust_pooled(self.analysis, cluster, adjust, cr2)

    def with_robust(self, cluster: str, adjust: bool = True, cr2: bool = False) -> MetaAnalysisFit:
        """This fit with :meth:`robust` attached (``analysis.robust``): what ``ivigmeta pool
        --cluster COL`` renders."""
        from dataclasses import replace

        rob = self.robust(cluster, adjust, cr2)
        return MetaAnalysisFit(replace(self.analysis, robust=rob), self.table, self.notes)

    def permutest(self, iterations: int = 1000, seed: int | None = None) -> PermutationTest:
        """The permutation test of the random-effects estimate (metafor's ``permutest()`` of an
        intercept-only ``rma``): the signs of the effects flipped, the model refitted with the
        fit's tau² estimator and interval method; exact over all 2^k sign vectors when
        ``iterations`` is at least that, else that many random ones from ``seed``."""
        from ivigmeta.methods.metareg import pooled_permutation_test

        self.require_pooled("a permutation test")
        return pooled_permutation_test(self.analysis, iterations, seed)

    def with_permutest(self, iterations: int = 1000, seed: int | None = None) -> MetaAnalysisFit:
        """This fit with :meth:`permutest` attached (``analysis.permutation``): what ``ivigmeta
        pool --permutations N`` renders."""
        from dataclasses import replace

        test = self.permutest(iterations, seed)
        return MetaAnalysisFit(replace(self.analysis, permutation=test), self.table, self.notes)

    def transf_int(self) -> IntegralMean:
        """The integral back-transform of the random-effects estimate and its CI bounds
        (metafor's ``predict(fit, transf = transf.exp.int | transf.ztor.int |
        transf.ilogit.int, targs = list(tau2 = fit$tau2))``): the mean of the true effects on
        the reported scale, for ZCOR, ZPCOR, PLO and the log measures."""
        from ivigmeta.methods.transf_int import integral_back_transform

        self.require_pooled("the integral back-transform")
        return integral_back_transform(self.analysis)

    def with_transf_int(self) -> MetaAnalysisFit:
        """This fit with :meth:`transf_int` attached (``analysis.transf_int``): what ``ivigmeta
        pool --transf-int`` renders."""
        from dataclasses import replace

        mean = self.transf_int()
        return MetaAnalysisFit(replace(self.analysis, transf_int=mean), self.table, self.notes)

    def loo(self, model: str = "random") -> LeaveOneOut:
        """Leave-one-out: the fit without each study in turn (metafor's ``leave1out``).

        ``model="common"`` reports the common-effect refits by the fit's common method (IV, MH
        or PETO: ``leave1out`` of an ``rma.mh`` / ``rma.peto`` object) instead of the
        random-effects ones."""
        from ivigmeta.methods.sensitivity import leave_one_out

        self.require_pooled("leave-one-out")
        return leave_one_out(self.analysis, model)

    def cumulative(
        self, order: str = "year", descending: bool = False, model: str = "random"
    ) -> Cumulative:
        """Cumulative meta-analysis: the fit as the studies are added in order of column
        ``order`` (numeric when every value is a number; ties keep table order; studies with no
        value are added last, listed in ``missing_order``). ``model`` as for :meth:`loo`."""
        from ivigmeta.methods.sensitivity import cumulative

        self.table.require_label_column(order)
        self.require_pooled("cumulative meta-analysis")
        return cumulative(self.analysis, order, descending=descending, model=model)

    def influence(
        self,
        mods: str | Sequence[str] = (),
        refs: Sequence[str] = (),
        categorical: Sequence[str] = (),
        model: str = "random",
    ) -> Influence | ModeratorInfluence:
        """Case-deletion diagnostics (Viechtbauer & Cheung 2010, metafor's ``influence``) and
        Baujat coordinates of the random-effects model (an :class:`Influence`).

        With moderator columns ``mods`` (coded as :meth:`metareg` codes them, ``refs`` and
        ``categorical`` as there) the diagnostics are those of the meta-regression, with one
        DFBETAS per coefficient and the leave-one-out coefficients (a
        :class:`ModeratorInfluence`; studies with an empty moderator are excluded). ``model=
        "common"`` diagnoses the common-effect (inverse-variance, metafor's ``method = "FE"``)
        model instead, with or without moderators. The fit's tau² estimator and --ci (z or hk)
        apply."""
        self.require_iv_weights("influence diagnostics")
        from ivigmeta.methods.influence import influence
        from ivigmeta.methods.influence_mods import influence_mods_analysis

        self.require_pooled("influence diagnostics")
        if model not in ("random", "common"):
            raise ModelError(f"unknown model '{model}' (choose random or common)")
        columns, ref, categorical = self._moderator_coding(mods, refs, categorical)
        if not columns and model == "random":
            return influence(self.analysis)
        if self.glmm is not None:
            raise ModelError(
                "influence diagnostics with --mod or --model common are for the normal-normal "
                "model, not --glmm"
            )
        if model == "common" and self.options.common_method != "IV":
            raise ModelError(
                "influence diagnostics of the common-effect model use inverse-variance weights "
                f'(metafor\'s method = "FE"), not --common {self.options.common_method}'
            )
        return influence_mods_analysis(
            self.effects,
            columns,
            tau2_method="FE" if model == "common" else self.options.tau2_method,
            ci_method=self.options.ci_method,
            ref=ref,
            categorical=categorical,
        )

    def gosh(self, subsets: int = 10_000, seed: int | None = None, model: str = "common") -> Gosh:
        """GOSH (metafor's ``gosh()``): the model fitted to every non-empty subset of the
        studies (k <= 15) or to ``subsets`` random ones, each subset's estimate and I²."""
        from ivigmeta.methods.gosh import gosh

        self.require_iv_weights("GOSH refits")
        return gosh(self.analysis, subsets=subsets, seed=seed, model=model)

    def sof(
        self,
        control_risks: Sequence[float] = (),
        certainty: str | None = None,
        outcome: str = "",
        model: str = "random",
        event_desirable: bool = False,
        comment: str = "",
    ) -> SummaryOfFindings:
        """A GRADE-style summary of findings: the pooled effect applied to assumed control risks
        (default: the pooled control-arm risk) per 1,000, the absolute difference and the NNT;
        ``certainty`` is the user's GRADE rating (high, moderate, low, very low)."""
        from ivigmeta.methods.sof import summary_of_findings

        return summary_of_findings(
            self.analysis, control_risks, certainty, outcome, model, event_desirable, comment
        )

    def subgroup(self, by: str | Sequence[str], between: str = "metareg") -> SubgroupAnalysis:
        """Subgroup analyses by one or more label columns, with the test for subgroup
        differences: ``between="metareg"`` (mixed-effects meta-regression, one tau²) or
        ``"separate"`` (Q between subgroup estimates with separate tau²)."""
        from ivigmeta.methods.subgroup import subgroup_analysis

        self.require_iv_weights("subgroup analyses (their test for subgroup differences)")
        columns = [by] if isinstance(by, str) else list(by)
        for col in columns:
            self.table.require_label_column(col)
        return subgroup_analysis(self.analysis, columns, between)

    def metareg(
        self,
        mods: str | Sequence[str],
        refs: Sequence[str] = (),
        categorical: Sequence[str] = (),
        tau2: str | None = None,
        ci: str | None = None,
        level: float | None = None,
        model: str = "random",
        predict: str | Sequence[str] = (),
        permutations: int | None = None,
        seed: int | None = None,
        tau2_ci: str = "qp",
        btt: str | Sequence[str] = (),
        lrt: str | Sequence[str] = (),
        cluster: str | None = None,
        adjust: bool = True,
        weights: str | None = None,
        cr2: bool = False,
    ) -> MetaRegression:
        """Mixed-effects meta-regression on moderator columns (metafor's ``rma(mods = ...)``).

        Numeric columns are continuous unless named in ``categorical``; text columns are
        dummy-coded against the first level in table order, or the one ``refs`` names
        (``"COL=LEVEL"``). ``tau2``, ``ci`` and ``level`` (percent) default to the fit's;
        ``model``, ``predict``, ``permutations``, ``seed``, ``tau2_ci``, ``btt``, ``lrt``,
        ``cluster``, ``adjust``, ``cr2`` and ``weights`` (default: the fit's) as
        :func:`metareg_table`. A GLMM fit (``pool(glmm=...)``) gives the meta-regression of
        that GLMM (``tau2`` then stays unset).
        """
        if level is not None:
            check_percent_level(level)
        glmm = self.options.glmm
        return metareg_table(
            self.table,
            self.effects,
            mods,
            refs=refs,
            categorical=categorical,
            tau2=tau2 or ("DL" if glmm else self.options.tau2_method),
            ci=ci or self.options.ci_method,
            level=self.level if level is None else level,
            model=model,
            predict=predict,
            permutations=permutations,
            seed=seed,
            tau2_ci=tau2_ci,
            btt=btt,
            lrt=lrt,
            cluster=cluster,
            adjust=adjust,
            weights=weights or self.options.weights,
            cr2=cr2,
            unweighted=self.options.unweighted and weights is None,
            glmm=glmm,
            keep_double_zero=self.options.keep_double_zero,
        )

    def location_scale(
        self,
        scale: str | Sequence[str],
        mods: str | Sequence[str] = (),
        link: str = "log",
        refs: Sequence[str] = (),
        categorical: Sequence[str] = (),
        tau2: str = "REML",
        level: float | None = None,
        predict: str | Sequence[str] = (),
        predict_scale: str | Sequence[str] = (),
        btt: str | Sequence[str] = (),
        att: str | Sequence[str] = (),
        profile: bool = False,
        lrt: bool = False,
    ) -> MetaRegression:
        """The location-scale meta-regression (metafor's ``rma(mods = ..., scale = ...)``):
        tau² regressed on the ``scale`` columns (log or identity ``link``), location moderators
        ``mods`` (default: none), by REML (or ``tau2="ML"``); ``level`` (percent) defaults to the
        fit's; the other arguments as :func:`location_scale_table`."""
        if level is not None:
            check_percent_level(level)
        return location_scale_table(
            self.table,
            self.effects,
            mods,
            scale,
            link=link,
            refs=refs,
            categorical=categorical,
            tau2=tau2,
            level=self.level if level is None else level,
            predict=predict,
            predict_scale=predict_scale,
            btt=btt,
            att=att,
            profile=profile,
            lrt=lrt,
        )

    def blup(
        self,
        mods: str | Sequence[str] = (),
        refs: Sequence[str] = (),
        categorical: Sequence[str] = (),
        model: str = "random",
    ) -> StudyLevel:
        """Per-study BLUPs, random effects, fitted values and residuals (metafor's ``blup``,
        ``ranef``, ``fitted``, ``residuals``, ``rstandard``, ``rstudent``) of the random-effects
        model, or with ``mods`` of the meta-regression on those columns (as :meth:`metareg`),
        with the fit's tau² estimator, interval method and level. ``model="common"``: of the
        common-effect model by the fit's common method (inverse variance, metafor's ``method =
        "FE"``, with or without ``mods``; Mantel-Haenszel or Peto: metafor's rma.mh /
        rma.peto residuals, no moderators)."""
        from ivigmeta.methods.blup import counts_study_level, study_level_analysis

        self.require_pooled("study-level quantities")
        if model.lower() not in ("random", "common"):
            raise ModelError(f"unknown model '{model}' (choose random or common)")
        common = model.lower() == "common"
        if common and self.options.common_method != "IV":
            if mods:
                raise ModelError(
                    f"--model common with --common {self.options.common_method} has no "
                    "moderators (use --common IV for a fixed-effects meta-regression)"
                )
            if self.glmm is not None:
                raise ModelError(
                    "study-level quantities are for the normal-normal model, not --glmm"
                )
            return counts_study_level(self.analysis)
        self.require_iv_weights("study-level quantities (BLUPs, residuals)")
        if self.glmm is not None:
            raise ModelError("study-level quantities are for the normal-normal model, not --glmm")
        columns, ref, categorical = self._moderator_coding(mods, refs, categorical)
        return study_level_analysis(
            self.effects,
            columns,
            tau2_method="FE" if common else self.options.tau2_method,
            ci_method=self.options.ci_method,
            level=self.options.level,
            ref=ref,
            categorical=categorical,
        )

    def matrix(
        self,
        kind: str = "coef",
        mods: str | Sequence[str] = (),
        refs: Sequence[str] = (),
        categorical: Sequence[str] = (),
        model: str = "random",
    ) -> ModelMatrix:
        """One matrix of the random-effects model (or with ``mods`` of the meta-regression on
        those columns, as :meth:`metareg`; ``model="common"``: of the common-effect model):
        ``kind`` ``coef`` (Var(beta), metafor's ``vcov(fit)``), ``obs``, ``fitted``, ``resid``
        (``vcov(fit, type = ...)``), ``hat`` (``hatvalues(fit, type = "matrix")``) or
        ``weights`` (``weights(fit, type = "matrix")``), with the fit's tau² estimator,
        interval method and user weights. A Mantel-Haenszel or Peto fit (``model="common"``
        with ``--common MH`` / ``PETO``) has ``coef``, ``fitted`` and ``weights``."""
        from ivigmeta.core.pooling import column_numbers
        from ivigmeta.methods.matrices import check_matrix_type, counts_matrix, fit_matrix

        kind = check_matrix_type(kind)
        self.require_pooled("the model's matrices")
        if model.lower() not in ("random", "common"):
            raise ModelError(f"unknown model '{model}' (choose random or common)")
        common = model.lower() == "common"
        if self.glmm is not None:
            raise ModelError("the model's matrices are for the normal-normal model, not --glmm")
        if common and self.options.common_method != "IV":
            if mods:
                raise ModelError(
                    f"--model common with --common {self.options.common_method} has no "
                    "moderators (use --common IV for a fixed-effects meta-regression)"
                )
            return counts_matrix(self.analysis, kind)
        weights = None
        if self.options.weights is not None:
            weights = column_numbers(self.effects, self.options.weights, "--weights", "a weight")
        columns, ref, categorical = self._moderator_coding(mods, refs, categorical)
        return fit_matrix(
            self.effects,
            kind,
            columns,
            tau2_method="FE" if common else self.options.tau2_method,
            ci_method=self.options.ci_method,
            ref=ref,
            categorical=categorical,
            weights=weights,
            unweighted=self.options.unweighted,
        )

    def combine(
        self, method: str = "stouffer", mode: str = "directed", weights: str | None = None
    ) -> CombinationTest:
        """Stouffer's or Fisher's combination test of the fit's studies (:func:`combine_table`)."""
        return combine_table(self.table, self.effects, method, mode, weights)

    def rve(
        self,
        cluster: str,
        mods: str | Sequence[str] = (),
        refs: Sequence[str] | str = (),
        categorical: Sequence[str] | str = (),
        model: str = "correlated",
        rho: float = 0.8,
        small: bool = True,
        level: float | None = None,
    ) -> RobustVarianceModel:
        """Robust variance estimation of the fit's effects clustered by ``cluster``
        (:func:`rve_table`; ``level`` in percent, default the fit's)."""
        if level is not None:
            check_percent_level(level)
        return rve_table(
            self.table,
            self.effects,
            cluster,
            mods,
            refs,
            categorical,
            model,
            rho,
            small,
            level=self.level if level is None else level,
        )

    def _moderator_coding(
        self,
        mods: str | Sequence[str],
        refs: Sequence[str] | str,
        categorical: Sequence[str] | str,
    ) -> tuple[list[str], dict[str, str], list[str]]:
        """:func:`moderator_coding` of this fit's table and effects."""
        return moderator_coding(self.table, self.effects, mods, refs, categorical)

    def bias(
        self,
        tests: str | Sequence[str] | None = None,
        side: str | None = None,
        estimator: str = "L0",
        failsafe: str = "rosenthal",
        alpha: float = 0.05,
        target: float | None = None,
        predictor: str | None = None,
        regtest_model: str | None = None,
    ) -> BiasAnalysis:
        """Small-study effects: Egger, Begg, Peters, Harbord, trim-and-fill, fail-safe N, and on
        request metafor's ``regtest``.

        ``tests`` default to every test that applies to the measure (``regtest`` only when
        named, or when ``predictor`` (sei, vi, ni, ninv, sqrtni, sqrtninv; default sei) or
        ``regtest_model`` (``rma``, the default, or ``lm``) is given). ``side`` and ``estimator``
        (``L0``/``R0``) go to trim-and-fill (Duval & Tweedie 2000), ``failsafe``
        (``rosenthal``, ``orwin``, ``orwin-weighted``, ``rosenberg``), ``alpha`` and ``target`` (Orwin's trivial
        effect on the reported scale) to the fail-safe N. A test that does not apply is a
        ``NotApplicable`` with its reason, not an error.
        """
        self.require_iv_weights("small-study tests")
        from ivigmeta.methods.bias import bias_analysis, default_tests

        wanted = [t.lower() for t in ([tests] if isinstance(tests, str) else list(tests or ()))]
        if (predictor is not None or regtest_model is not None) and "regtest" not in wanted:
            wanted = [*(wanted or default_tests(self.measure)), "regtest"]
        return bias_analysis(
            self.analysis,
            tests=wanted or None,
            side=side.lower() if side else None,
            estimator=estimator.upper(),
            failsafe_method=failsafe,
            alpha=alpha,
            target=target,
            predictor=predictor or "sei",
            regtest_model=regtest_model or "rma",
        )

    def selmodel(
        self,
        type: str,
        steps: Sequence[float] | None = None,
        alternative: str = "greater",
        prec: str | None = None,
        scaleprec: bool = True,
        delta: Sequence[float] | None = None,
        model: str = "random",
        profile: bool = False,
    ) -> SelectionModel:
        """A selection model for publication bias (metafor's ``selmodel(fit, type, ...)``):
        the random-effects (``model="random"``, tau² by ML) or common-effect model refitted by
        maximum likelihood with a weight function of the studies' one-sided p-values.

        ``type`` is ``stepfun`` (weights constant between the p-value cut-offs ``steps``; 1 is
        appended), ``beta``, ``halfnorm``, ``negexp``, ``logistic``, ``power`` or
        ``negexppow``; ``steps`` for those but beta is one p-value below which the weight is
        1. ``alternative`` ``greater``, ``less`` or ``two-sided``; ``prec`` (``sei``, ``vi``,
        ``ninv``, ``sqrtninv``) scales the continuous functions by the studies' precision
        (divided by its maximum unless ``scaleprec=False``); ``delta`` fixes the weights a
        priori (NaN: estimated). ``profile=True`` adds the profile-likelihood intervals of
        tau² and of each estimated delta (metafor's ``confint()``).
        """
        from ivigmeta.methods.selmodel import selection_model

        self.require_pooled("a selection model")
        self.require_iv_weights("selection models")
        return selection_model(
            self.analysis,
            type,
            steps=steps,
            alternative=alternative,
            prec=prec,
            scaleprec=scaleprec,
            delta=delta,
            model=model,
            profile=profile,
        )

    def plot(
        self, kind: str = "forest", path: str | os.PathLike[str] | None = None, **options: Any
    ) -> Figure:
        """Draw a figure of the fit; returns the matplotlib Figure (also written to ``path``).

        Parameters
        ----------
        kind : {"forest", "radial", "loo", "funnel", "baujat", "influence", "subgroup"}
            The figure the commands draw with ``--plot``: forest (``pool``), radial
            (``heterogeneity``), loo, funnel (``bias``), baujat and influence (``influence``),
            subgroup (a forest plot by subgroup, ``subgroup``).
        path : str or os.PathLike, optional
            Also write the figure there (.png at 300 dpi, .svg or .pdf, by extension).
        **options
            ``model`` (``random``, ``common``, ``both``) and ``labels`` (two captions) for the
            forest plots; ``by`` (required) and ``between`` for subgroup; ``contour`` for the
            funnel plot, whose other options (``tests``, ``side`` ...) go to :meth:`bias`;
            ``dpi`` for a PNG file.
        """
        if kind not in PLOT_KINDS:
            raise ModelError(f"unknown figure '{kind}' (choose one of {', '.join(PLOT_KINDS)})")
        from ivigmeta.plots import check_target, make_figure

        target = os.fspath(path) if path is not None else None
        if target is not None:
            check_target(target)
        dpi = options.pop("dpi", None)
        method, figure = PLOT_KINDS[kind]
        if method == "subgroup":
            if "by" not in options:
                raise ModelError("plot('subgroup') needs by=COLUMN")
            by = options.pop("by")
            column = by if isinstance(by, str) else by[0]
            result: Any = self.subgroup(column, options.pop("between", "metareg"))
            options["column"] = column
        elif method == "bias":
            contour = options.pop("contour", False)
            result = self.bias(**options)
            options = {"contour": contour}
        elif method is not None:
            result = getattr(self, method)()
        else:
            result = self.analysis
        fig = make_figure(figure, result, **{k: v for k, v in options.items() if v is not None})
        if target is not None:
            from ivigmeta.plots.common import save_figure

            save_figure(fig, target, dpi=dpi)
        return fig

    # -- output -------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Exactly what ``ivigmeta pool --format json`` prints (full precision; NaN and
        infinities are None)."""
        import json

        return json.loads(self.to_json())

    def to_json(self) -> str:
        """The text ``ivigmeta pool --format json`` prints."""
        from ivigmeta.render import render

        return render(self.analysis, "pool", "json")

    def to_frame(self) -> pd.DataFrame:
        """The study rows of :meth:`to_dict` as a pandas DataFrame, one row per study."""
        import pandas as pd

        return pd.DataFrame.from_records(self.to_dict()["studies"])

    def summary(self, ascii: bool = False) -> str:
        """The table ``ivigmeta pool`` prints, as plain text."""
        from ivigmeta.render import render

        return render(self.analysis, "pool", "table", ascii_only=ascii)

    def _repr_html_(self) -> str:
        from ivigmeta.render.views import VIEWS

        parts = []
        for sec in VIEWS["pool"].sections(self.analysis):
            head = "".join(f"<th>{html.escape(c)}</th>" for c in sec.columns)
            rows = []
            for i, row in enumerate(sec.rows):
                tag = "th" if sec.summary_from is not None and i >= sec.summary_from else "td"
                cells = "".join(f"<{tag}>{html.escape(c)}</{tag}>" for c in row)
                rows.append(f"<tr>{cells}</tr>")
            notes = "".join(f"<li>{html.escape(n)}</li>" for n in sec.notes)
            parts.append(
                f"<table><caption>{html.escape(sec.title)}</caption>"
                f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
                + (f"<ul>{notes}</ul>" if notes else "")
            )
        return "<div class='ivigmeta'>" + "".join(parts) + "</div>"

    def __repr__(self) -> str:
        if self.random is None:
            return f"<MetaAnalysisFit {self.measure}, k={self.k}: a single study, not pooled>"
        r = self.random
        return (
            f"<MetaAnalysisFit {self.measure}, k={self.k}, random effects "
            f"({r.tau2_method}, {r.ci_method}): {_g(r.estimate)} "
            f"[{_g(r.ci_low)}, {_g(r.ci_high)}]>"
        )


def _g(x: float) -> str:
    return f"{x:.4g}" if math.isfinite(x) else str(x)


# ---------------------------------------------------------------------------------------------
# Many meta-analyses, and audits


def batch(
    df: pd.DataFrame | Mapping[str, Sequence[Any]],
    by: str | Sequence[str],
    measure: str = "RR",
    tau2: str = "DL",
    ci: str = "z",
    common: str = "IV",
    level: float = 95,
    cc: float = 0.5,
    cc_policy: str = "only0",
    keep_double_zero: bool = False,
    pi: str = "z",
    common_ci: str = "z",
    missing: str = "error",
) -> pd.DataFrame:
    """Pool every group of a long table (one row per study) as ``ivigmeta batch`` does
    (``pi`` and ``common_ci`` as :func:`pool`'s; GENQ is not available here).

    Parameters
    ----------
    df : pandas.DataFrame or dict of columns
        The count columns (``treat_events, treat_total, control_events, control_total``) and
        the ``by`` columns; ``study`` is used in messages when present. Each group must be
        whole; groups come out in order of first appearance.
    by : str or sequence of str
        The column(s) naming each meta-analysis.
    measure, tau2, ci, common, level, cc, cc_policy, keep_double_zero, missing
        As :func:`pool` (``level`` in percent); with ``missing="exclude"`` a row with a
        missing value in its data is left out of its group and counted in ``n_excluded``.

    Returns
    -------
    pandas.DataFrame
        One row per group: the ``by`` columns, ``status`` (``ok``, ``single``, ``error``),
        ``reason`` and the pooled numbers; a bad group gets status ``error`` with the reason
        ``pool`` would give, never an exception.
    """
    import pandas as pd

    from ivigmeta.batching.run import BatchOptions, batch_pool

    check_percent_level(level)
    check_missing(missing)
    frame = df if _is_dataframe(df) else pd.DataFrame(dict(df))
    options = BatchOptions(
        measure=measure,
        cc=cc,
        cc_policy=cc_policy,
        tau2_method=tau2,
        ci_method=ci,
        common_method=common,
        level=level / 100.0,
        keep_double_zero=keep_double_zero,
        pi_method=pi,
        common_ci=common_ci,
    )
    groups = [by] if isinstance(by, str) else list(by)
    return batch_pool(frame, groups, options, source=DATAFRAME_SOURCE, missing=missing)
