"""Assemble the whole analysis as one document: what ``ivigmeta report`` writes.

The report runs the analysis commands in-process (through the :class:`~ivigmeta.audit.runner.Runner`
the CLI provides) with the options the user gave, so every table is exactly what that command
prints; a section is included when its command exists in this version (influence and
cumulative analyses, figures through ``--plot``), and listed as not available otherwise. This
module collects the material: the commands' Markdown tables, figure files, the methods
paragraph generated from the options actually used, the reproduce result, and provenance.
:mod:`ivigmeta.render.report` turns it into Markdown and HTML with Jinja2.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import platform
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ivigmeta import __version__
from ivigmeta.core.measures import MEASURE_TITLES
from ivigmeta.errors import DataError
from ivigmeta.io.studies import StudyTable, load_table

DEPENDENCIES = ("click", "numpy", "scipy", "pandas", "rich", "Jinja2", "matplotlib", "tomli")


@dataclass(frozen=True)
class PartSpec:
    """A section of the report: the command that prints it, and the figure its ``--plot`` draws."""

    key: str
    title: str
    command: str
    figure: str = ""  # figure title when the command draws one with --plot
    needs_by: bool = False


PARTS = (
    PartSpec("pool", "Study outcomes and pooled estimates", "pool", figure="Forest plot"),
    PartSpec("heterogeneity", "Heterogeneity", "heterogeneity", figure="Radial (Galbraith) plot"),
    PartSpec(
        "subgroup",
        "Subgroup analysis",
        "subgroup",
        figure="Subgroup forest plot",
        needs_by=True,
    ),
    PartSpec("loo", "Leave-one-out sensitivity analysis", "loo", figure="Leave-one-out plot"),
    PartSpec("influence", "Influence diagnostics", "influence", figure="Baujat plot"),
    PartSpec("cumulative", "Cumulative meta-analysis", "cumulative"),
    PartSpec("bias", "Small-study effects", "bias", figure="Funnel plot"),
    PartSpec("sof", "Summary of findings", "sof"),
)


@dataclass
class Part:
    """One section as run: its command line, the command's Markdown output, or why it is missing."""

    key: str
    title: str
    command_line: str
    markdown: str = ""
    unavailable: str = ""
    error: str = ""
    figure_title: str = ""
    figures: list[tuple[str, str]] = field(default_factory=list)  # (caption, PNG path)
    figure_error: str = ""


@dataclass
class ReportContent:
    """Everything the templates need, as plain data."""

    title: str
    source: str
    table: StudyTable
    parts: list[Part]
    methods: str
    references: list[str]
    provenance: dict[str, Any]
    reproduce: Any = None  # a ReproduceResult when --published was given
    not_available: list[str] = field(default_factory=list)
    figures_note: str = ""


def label_columns(table: StudyTable) -> list[str]:
    """Columns worth a subgroup analysis: text labels with 2 or more levels, one shared by 2+ studies.

    Numeric descriptive columns (e.g. durations per arm) and free text (one value per study) are not.
    """
    found = []
    for col in table.label_columns():
        values = [s.fields.get(col, "").strip() for s in table.studies]
        values = [v for v in values if v]
        if not values:
            continue
        if all(_is_number(v) for v in values):
            continue
        levels = set(values)
        if 2 <= len(levels) < len(values):
            found.append(col)
    return found


def written_figures(fig_dir: str, stem: str, title: str) -> list[tuple[str, str]]:
    """The figures a ``--plot DIR/STEM.png`` run wrote: STEM.png, or one STEM_<name>.png per panel
    (a subgroup analysis by several columns draws one figure per column)."""
    found = []
    single = os.path.join(fig_dir, f"{stem}.png")
    if os.path.exists(single):
        found.append((title, single))
    prefix = f"{stem}_"
    for name in sorted(os.listdir(fig_dir)):
        if name.startswith(prefix) and name.endswith(".png"):
            found.append((f"{title} ({name[len(prefix) : -4]})", os.path.join(fig_dir, name)))
    return found


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()


def versions() -> dict[str, str]:
    """ivigmeta, Python and the installed versions of the dependencies (``not installed`` if not)."""
    from importlib import metadata

    out = {"ivigmeta": __version__, "Python": platform.python_version()}
    for name in DEPENDENCIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


# ---------------------------------------------------------------------------------------------
# The methods paragraph, generated from the options the pooled fit actually used

CITATIONS = {
    "RR": "Deeks & Higgins 2010",
    "revman": "Deeks & Higgins 2010",
    "glmm": "Stijnen et al. 2010; Jackson et al. 2018",
    "measure:SMD": "Hedges 1981",
    "measure:SMDH": "Bonett 2009",
    "measure:ROM": "Hedges et al. 1999",
    "measure:PFT": "Freeman & Tukey 1950; Miller 1978",
    "Q": "Cochran 1954",
    "I2": "Higgins & Thompson 2002",
    "IV": "Fleiss 1993",
    "MH": "Mantel & Haenszel 1959; Greenland & Robins 1985",
    "PETO": "Yusuf et al. 1985",
    "DL": "DerSimonian & Laird 1986",
    "REML": "Viechtbauer 2005",
    "ML": "Viechtbauer 2005",
    "PM": "Paule & Mandel 1982",
    "EB": "Morris 1983",
    "HS": "Hunter & Schmidt 2004",
    "SJ": "Sidik & Jonkman 2005",
    "HE": "Hedges & Olkin 1985",
    "hk": "Hartung & Knapp 2001; Sidik & Jonkman 2002",
    "PI": "Riley et al. 2011",
    "metareg": "Raudenbush 2009",
    "egger": "Egger et al. 1997",
    "loo": "Viechtbauer 2010",
    "begg": "Begg & Mazumdar 1994",
    "peters": "Peters et al. 2006",
    "harbord": "Harbord et al. 2006",
    "trimfill": "Duval & Tweedie 2000",
    "failsafe": "Rosenthal 1979",
    "failsafe-orwin": "Orwin 1983",
    "failsafe-rosenberg": "Rosenberg 2005",
    "influence": "Viechtbauer & Cheung 2010",
    "cumulative": "Lau et al. 1992",
    "sof": "Schünemann et al. 2013; Altman 1998",
    "qprofile": "Viechtbauer 2007",
}

BIAS_TEST_NAMES = {
    "egger": "Egger's regression test",
    "begg": "Begg's rank correlation test",
    "peters": "Peters' test",
    "harbord": "Harbord's test",
    "trimfill": "trim-and-fill",
    "failsafe": "the fail-safe N",
}

REFERENCES = {
    "Stijnen et al. 2010": "Stijnen T, Hamza TH, Ozdemir P (2010). Random effects meta-analysis of event outcome in the framework of the generalized linear mixed model with applications in sparse data. Stat Med 29:3046-3067.",
    "Jackson et al. 2018": "Jackson D, Law M, Stijnen T, Viechtbauer W, White IR (2018). A comparison of seven random-effects models for meta-analyses that estimate the summary odds ratio. Stat Med 37:1059-1085.",
    "Hedges 1981": "Hedges LV (1981). Distribution theory for Glass's estimator of effect size and related estimators. J Educ Stat 6:107-128.",
    "Bonett 2009": "Bonett DG (2009). Meta-analytic interval estimation for standardized and unstandardized mean differences. Psychol Methods 14:225-238.",
    "Hedges et al. 1999": "Hedges LV, Gurevitch J, Curtis PS (1999). The meta-analysis of response ratios in experimental ecology. Ecology 80:1150-1156.",
    "Freeman & Tukey 1950": "Freeman MF, Tukey JW (1950). Transformations related to the angular and the square root. Ann Math Stat 21:607-611.",
    "Miller 1978": "Miller JJ (1978). The inverse of the Freeman-Tukey double arcsine transformation. Am Stat 32:138.",
    "Begg & Mazumdar 1994": "Begg CB, Mazumdar M (1994). Operating characteristics of a rank correlation test for publication bias. Biometrics 50:1088-1101.",
    "Duval & Tweedie 2000": "Duval S, Tweedie R (2000). Trim and fill: a simple funnel-plot-based method of testing and adjusting for publication bias in meta-analysis. Biometrics 56:455-463.",
    "Harbord et al. 2006": "Harbord RM, Egger M, Sterne JAC (2006). A modified test for small-study effects in meta-analyses of controlled trials with binary endpoints. Stat Med 25:3443-3457.",
    "Schünemann et al. 2013": "Schünemann H, Brożek J, Guyatt G, Oxman A, editors (2013). GRADE handbook for grading quality of evidence and strength of recommendations. The GRADE Working Group.",
    "Altman 1998": "Altman DG (1998). Confidence intervals for the number needed to treat. BMJ 317:1309-1312.",
    "Lau et al. 1992": "Lau J, Antman EM, Jimenez-Silva J, Kupelnick B, Mosteller F, Chalmers TC (1992). Cumulative meta-analysis of therapeutic trials for myocardial infarction. N Engl J Med 327:248-254.",
    "Peters et al. 2006": "Peters JL, Sutton AJ, Jones DR, Abrams KR, Rushton L (2006). Comparison of two methods to detect publication bias in meta-analysis. JAMA 295:676-680.",
    "Orwin 1983": "Orwin RG (1983). A fail-safe N for effect size in meta-analysis. J Educ Stat 8:157-159.",
    "Rosenberg 2005": "Rosenberg MS (2005). The file-drawer problem revisited: a general weighted method for calculating fail-safe numbers in meta-analysis. Evolution 59:464-468.",
    "Rosenthal 1979": "Rosenthal R (1979). The file drawer problem and tolerance for null results. Psychol Bull 86:638-641.",
    "Viechtbauer 2007": "Viechtbauer W (2007). Confidence intervals for the amount of heterogeneity in meta-analysis. Stat Med 26:37-52.",
    "Viechtbauer & Cheung 2010": "Viechtbauer W, Cheung MWL (2010). Outlier and influence diagnostics for meta-analysis. Res Synth Methods 1:112-125.",
    "Cochran 1954": "Cochran WG (1954). The combination of estimates from different experiments. Biometrics 10:101-129.",
    "Deeks & Higgins 2010": "Deeks JJ, Higgins JPT (2010). Statistical algorithms in Review Manager 5. The Cochrane Collaboration.",
    "DerSimonian & Laird 1986": "DerSimonian R, Laird N (1986). Meta-analysis in clinical trials. Control Clin Trials 7:177-188.",
    "Egger et al. 1997": "Egger M, Davey Smith G, Schneider M, Minder C (1997). Bias in meta-analysis detected by a simple, graphical test. BMJ 315:629-634.",
    "Fleiss 1993": "Fleiss JL (1993). The statistical basis of meta-analysis. Stat Methods Med Res 2:121-145.",
    "Greenland & Robins 1985": "Greenland S, Robins JM (1985). Estimation of a common effect parameter from sparse follow-up data. Biometrics 41:55-68.",
    "Hartung & Knapp 2001": "Hartung J, Knapp G (2001). A refined method for the meta-analysis of controlled clinical trials with binary outcome. Stat Med 20:3875-3889.",
    "Hedges & Olkin 1985": "Hedges LV, Olkin I (1985). Statistical methods for meta-analysis. Academic Press.",
    "Higgins & Thompson 2002": "Higgins JPT, Thompson SG (2002). Quantifying heterogeneity in a meta-analysis. Stat Med 21:1539-1558.",
    "Hunter & Schmidt 2004": "Hunter JE, Schmidt FL (2004). Methods of meta-analysis, 2nd ed. Sage.",
    "Mantel & Haenszel 1959": "Mantel N, Haenszel W (1959). Statistical aspects of the analysis of data from retrospective studies of disease. J Natl Cancer Inst 22:719-748.",
    "Morris 1983": "Morris CN (1983). Parametric empirical Bayes inference: theory and applications. J Am Stat Assoc 78:47-55.",
    "Paule & Mandel 1982": "Paule RC, Mandel J (1982). Consensus values and weighting factors. J Res Natl Bur Stand 87:377-385.",
    "Raudenbush 2009": "Raudenbush SW (2009). Analyzing effect sizes: random-effects models. In Cooper, Hedges & Valentine (eds), The Handbook of Research Synthesis and Meta-Analysis, 2nd ed.",
    "Riley et al. 2011": "Riley RD, Higgins JPT, Deeks JJ (2011). Interpretation of random effects meta-analyses. BMJ 342:d549.",
    "Sidik & Jonkman 2002": "Sidik K, Jonkman JN (2002). A simple confidence interval for meta-analysis. Stat Med 21:3153-3159.",
    "Sidik & Jonkman 2005": "Sidik K, Jonkman JN (2005). Simple heterogeneity variance estimation for meta-analysis. J R Stat Soc C 54:367-384.",
    "Viechtbauer 2005": "Viechtbauer W (2005). Bias and efficiency of meta-analytic variance estimators in the random-effects model. J Educ Behav Stat 30:261-293.",
    "Viechtbauer 2010": "Viechtbauer W (2010). Conducting meta-analyses in R with the metafor package. J Stat Softw 36(3):1-48.",
    "Yusuf et al. 1985": "Yusuf S, Peto R, Lewis J, Collins R, Sleight P (1985). Beta blockade during and after myocardial infarction. Prog Cardiovasc Dis 27:335-371.",
}

MEASURE_NAMES = {k: v[0].lower() + v[1:] for k, v in MEASURE_TITLES.items()}
MEASURE_NAMES.update(
    PR="raw proportion",
    PLO="logit-transformed proportion",
    PLN="log-transformed proportion",
    PAS="arcsine-transformed proportion",
    PFT="Freeman-Tukey double-arcsine-transformed proportion",
    ZCOR="Fisher's z-transformed correlation",
    COR="raw correlation coefficient",
    UCOR="unbiased (Olkin-Pratt) correlation coefficient",
    PCOR="partial correlation coefficient",
    ZPCOR="Fisher's z-transformed partial correlation",
    SPCOR="semi-partial correlation coefficient",
    MN="raw mean",
    MNLN="log-transformed mean",
    CVR="log coefficient of variation ratio",
    VR="log variability ratio (ratio of SDs)",
    RPB="point-biserial correlation",
    RBIS="biserial correlation",
    D2ORL="log odds ratio converted from the standardized mean difference (logistic)",
    D2ORN="log odds ratio converted from the standardized mean difference (normal)",
    D2OR="log odds ratio converted from the standardized mean difference (logistic)",
    CVLN="log-transformed coefficient of variation",
    SDLN="log-transformed standard deviation",
    PHI="phi coefficient",
    YUQ="Yule's Q",
    YUY="Yule's Y",
    OR2DN="standardized mean difference converted from the log odds ratio (normal)",
    OR2DL="standardized mean difference converted from the log odds ratio (logistic)",
    PBIT="probit difference",
    RTET="tetrachoric correlation",
    MPRD="risk difference of matched pairs",
    MPRR="log risk ratio of matched pairs",
    MPOR="marginal log odds ratio of matched pairs",
    MPORC="conditional log odds ratio of matched pairs",
    MPPETO="conditional (Peto) log odds ratio of matched pairs",
    IR="raw incidence rate",
    IRLN="log-transformed incidence rate",
    IRS="square-root-transformed incidence rate",
    IRFT="Freeman-Tukey-transformed incidence rate",
    MC="raw mean change",
    SMCC="standardized mean change (change-score standardization)",
    SMCR="standardized mean change (raw-score standardization by the pre-test SD)",
    SMCRH="standardized mean change (raw-score standardization, heteroscedastic)",
    ROMC="log-transformed ratio of means (post-test to pre-test)",
)
TAU2_NAMES = {
    "DL": "DerSimonian-Laird",
    "REML": "restricted maximum-likelihood",
    "ML": "maximum-likelihood",
    "PM": "Paule-Mandel",
    "EB": "empirical Bayes",
    "HS": "Hunter-Schmidt",
    "SJ": "Sidik-Jonkman",
    "HE": "Hedges",
}
COMMON_NAMES = {"IV": "inverse-variance", "MH": "Mantel-Haenszel", "PETO": "Peto"}


#: where each measure's continuity correction goes (metafor's escalc defaults); measures not
#: listed need none
CORRECTION_CELLS = {
    **dict.fromkeys(
        ("RR", "OR", "RD", "MPRD", "MPRR", "MPOR", "MPORC", "MPPETO"),
        "all four cells of each study with a zero cell",
    ),
    **dict.fromkeys(("IRR", "IRD"), "both event counts of each study with a zero count"),
    **dict.fromkeys(
        ("PR", "PLN", "PLO"), "the events and non-events of each study with no or only events"
    ),
}
#: how pooled proportions were brought back to the proportion scale
BACK_TRANSFORMS = {
    "PLO": "Pooled logits were back-transformed to proportions.",
    "PLN": "Pooled log proportions were back-transformed to proportions.",
    "PAS": "Pooled arcsine values were back-transformed to proportions.",
    "PFT": "Pooled values were back-transformed to proportions with Miller's inverse at the "
    "harmonic mean of the sample sizes.",
    "ZCOR": "Pooled Fisher's z values were back-transformed to correlations.",
    "MNLN": "Pooled log means were back-transformed to means.",
    "ZPCOR": "Pooled Fisher's z values were back-transformed to partial correlations.",
    "CVR": "Pooled log coefficient of variation ratios were back-transformed to ratios.",
    "VR": "Pooled log variability ratios were back-transformed to ratios of SDs.",
    "CVLN": "Pooled log coefficients of variation were back-transformed to coefficients of "
    "variation.",
    "SDLN": "Pooled log SDs were back-transformed to SDs.",
    "ROMC": "Pooled log ratios of means were back-transformed to ratios.",
    "IRLN": "Pooled log incidence rates were back-transformed to rates.",
    "IRS": "Pooled square-root incidence rates were back-transformed to rates (squared).",
}


def methods_paragraph(
    pool: dict[str, Any],
    options: dict[str, Any],
    by: Sequence[str],
    parts: Sequence[str],
    heterogeneity: dict[str, Any] | None = None,
    bias: dict[str, Any] | None = None,
) -> tuple[str, list[str]]:
    """The methods paragraph for the options used, and the references it cites (formatted).

    ``pool``, ``heterogeneity`` and ``bias`` are those commands' JSON (what was actually
    computed), ``options`` the options given, ``parts`` the keys of the sections included.
    """
    cited: list[str] = []

    def cite(key: str) -> str:
        keys = CITATIONS.get(key, "")
        for k in keys.split("; "):
            if k and k not in cited:
                cited.append(k)
        return f" ({keys})" if keys else ""

    measure = pool.get("measure") or options.get("measure") or "RR"
    level = float(pool.get("level") or 0.95) * 100
    common = (pool.get("common") or {}).get("method", options.get("common_method", "IV"))
    random = pool.get("random") or {}
    tau2 = random.get("tau2_method", options.get("tau2_method", "DL"))
    ci = random.get("ci_method", options.get("ci_method", "z"))
    cc, policy = options.get("cc", 0.5), options.get("cc_policy", "only0")
    corrected = [s["study"] for s in pool.get("studies", []) if s.get("cc_added")]
    s = []
    s.append(
        f"Each study's effect was computed as the {MEASURE_NAMES.get(measure, measure)}"
        f"{cite(measure) if measure == 'RR' else cite('measure:' + measure)} with a {level:g}% "
        "Wald confidence interval."
    )
    if measure in BACK_TRANSFORMS:
        s.append(BACK_TRANSFORMS[measure])
    if pool.get("software") == "revman":
        s.append(
            "The analysis followed RevMan 5's statistical methods" + cite("revman") + ": "
            "Mantel-Haenszel estimates from the continuity-corrected counts, heterogeneity "
            "Chi² about the common-effect estimate, and the DerSimonian-Laird tau² from that Chi²."
        )
    where = CORRECTION_CELLS.get(measure)
    if where is None:
        pass  # means, IRSD, PAS, PFT and AS need no continuity correction
    elif policy == "none" or not cc:
        s.append(
            "No continuity correction was applied; studies whose effect was undefined were excluded."
        )
    else:
        which = "every study" if policy == "all" else where
        done = f" (applied to: {', '.join(corrected)})" if corrected else " (no study needed it)"
        glmm_rows = " for the study rows; the GLMM uses the raw counts" if pool.get("model") else ""
        s.append(f"A continuity correction of {cc:g} was added to {which}{done}{glmm_rows}.")
    model = pool.get("model") or {}
    common_name = COMMON_NAMES.get(common, common)
    article = "an" if common_name[:1].lower() in "aeiou" else "a"
    if model.get("type") == "glmm":
        s.append(
            f"Studies were pooled with the generalized linear mixed model {model.get('glmm')} "
            f"({model.get('title', '')}; metafor's rma.glmm, maximum likelihood, raw counts)"
            f"{cite('glmm')}, with Wald "
            + ("intervals on the t distribution (k - 1 df)" if ci == "t" else "z intervals")
            + f" and a prediction interval{cite('PI')}; its "
            "common-effect counterpart fixes tau² at 0. Leave-one-out, cumulative and subgroup "
            "analyses refit the same model; heterogeneity statistics, influence diagnostics and "
            "small-study tests use the inverse-variance random-effects model."
        )
    else:
        s.append(
            f"Studies were pooled with {article} {common_name} common-effect model{cite(common)} "
            f"and a random-effects model with the {TAU2_NAMES.get(tau2, tau2)} estimator of the "
            f"between-study variance tau²{cite(tau2)}"
            + {
                "hk": f", with Hartung-Knapp-Sidik-Jonkman intervals{cite('hk')}",
                "adhoc": (
                    f", with Hartung-Knapp-Sidik-Jonkman intervals{cite('hk')} whose variance "
                    "factor was not allowed below 1"
                ),
                "t": ", with Wald standard errors and intervals on the t distribution (k - 1 df)",
                "hc": ", with Henmi-Copas intervals around the common-effect estimate",
            }.get(ci, ", with Wald z intervals")
            + f" and a prediction interval{cite('PI')}."
        )
    het_ci = ""
    if heterogeneity and heterogeneity.get("i2_ci") is not None:
        het_ci = f", with Q-profile confidence intervals for tau² and I²{cite('qprofile')}"
    s.append(f"Heterogeneity was assessed with Cochran's Q{cite('Q')} and I²{cite('I2')}{het_ci}.")
    if "subgroup" in parts and by and model.get("type") == "glmm":
        s.append(
            f"Subgroups ({', '.join(by)}) were pooled separately and compared by Q between "
            "their estimates."
        )
    elif "subgroup" in parts and by:
        s.append(
            f"Subgroups ({', '.join(by)}) were pooled separately and compared by a mixed-effects "
            f"meta-regression on the subgroup labels with a method-of-moments residual tau²{cite('metareg')}."
        )
    if "loo" in parts:
        s.append(f"Sensitivity was assessed by omitting one study at a time{cite('loo')}.")
    if "influence" in parts:
        s.append(
            f"Influential studies were identified with case-deletion diagnostics{cite('influence')}."
        )
    if "sof" in parts:
        s.append(
            "The summary of findings applied the pooled relative effect to the assumed control "
            "risk (the pooled control-arm risk unless given) per 1,000, with the absolute "
            "difference and the number needed to treat" + cite("sof") + "."
        )
    if "cumulative" in parts:
        s.append(f"A cumulative meta-analysis added the studies one at a time{cite('cumulative')}.")
    if "bias" in parts:
        bias = bias or {}
        tests = [t for t in bias.get("tests", ["egger"]) if t in BIAS_TEST_NAMES] or ["egger"]
        names = []
        for t in tests:
            key = t
            if t == "failsafe":
                method = str((bias.get("failsafe") or {}).get("method", "")).lower()
                key = f"failsafe-{method}" if f"failsafe-{method}" in CITATIONS else t
                name = f"{method.capitalize()}'s fail-safe N" if method else BIAS_TEST_NAMES[t]
            else:
                name = BIAS_TEST_NAMES[t]
            names.append(f"{name}{cite(key)}")
        listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        s.append(f"Small-study effects were assessed with {listed}.")
    s.append(f"All computations used ivigmeta {__version__}.")
    refs = [REFERENCES[k] for k in sorted(cited) if k in REFERENCES]
    return " ".join(s), refs


# ---------------------------------------------------------------------------------------------
# Running the sections


def _command_line(command: str, args: Sequence[str]) -> str:
    return " ".join(["ivigmeta", command, *(shlex.quote(a) for a in args)])


#: the commands that fit a GLMM with --glmm (the others use the normal-normal model)
GLMM_COMMANDS = ("pool", "loo", "cumulative", "subgroup")


def build_report(
    file: str,
    runner: Any,
    option_args: Sequence[str],
    options: dict[str, Any],
    by: Sequence[str],
    out_dir: str,
    command_line: str,
    plot_commands: Sequence[str] = (),
    published: str | None = None,
    figures_off: bool = False,
    table_options: dict[str, Any] | None = None,
    title: str | None = None,
    labels: Sequence[str] | None = None,
    glmm: str | None = None,
) -> ReportContent:
    """Run every section's command on ``file`` with ``option_args`` and collect the report.

    ``runner.markdown(command, args)`` returns a command's Markdown output (raising
    :class:`~ivigmeta.audit.runner.RunError`); ``plot_commands`` are the commands that accept
    ``--plot FILE``. Figures are written under ``out_dir/figures``; ``labels`` are the forest
    plots' captions, ``title`` the report's (default "Meta-analysis report: FILE").
    """
    from ivigmeta.audit.runner import RunError

    table = load_table(file, **(table_options or {}))
    columns = list(by) or label_columns(table)
    for col in columns:
        table.require_label_column(col)
    parts: list[Part] = []
    not_available: list[str] = []
    fig_dir = os.path.join(out_dir, "figures")
    for spec in PARTS:
        args = [file, *option_args]
        if glmm and spec.command in GLMM_COMMANDS:
            args += ["--glmm", glmm]
        if spec.needs_by:
            if not columns:
                not_available.append(f"{spec.title}: the table has no label column to subgroup by")
                continue
            for col in columns:
                args += ["--by", col]
        if spec.command not in runner.commands:
            not_available.append(
                f"{spec.title}: no `{spec.command}` command in ivigmeta {__version__}"
            )
            continue
        part = Part(spec.key, spec.title, _command_line(spec.command, args))
        if spec.figure:
            part.figure_title = spec.figure
            if spec.command in plot_commands:
                path = os.path.join(fig_dir, f"{spec.key}.png")
                try:
                    os.makedirs(fig_dir, exist_ok=True)
                    plot_args = [*args, "--plot", path]
                    if labels and spec.command in ("pool", "subgroup"):
                        plot_args += ["--labels", ",".join(labels)]
                    part.markdown = runner.markdown(spec.command, plot_args)
                    part.figures = written_figures(fig_dir, spec.key, spec.figure)
                    if not part.figures:
                        part.figure_error = "the command wrote no figure"
                except RunError as exc:
                    part.figure_error = str(exc)
                except OSError as exc:
                    raise DataError(f"{fig_dir}: {exc.strerror or exc}") from None
            elif figures_off:
                part.figure_error = "--no-figures was given"
            else:
                part.figure_error = f"`{spec.command}` cannot draw figures in ivigmeta {__version__} (no --plot option)"
        if not part.markdown:
            try:
                part.markdown = runner.markdown(spec.command, args)
            except RunError as exc:
                part.error = str(exc)
        parts.append(part)
    included = [p.key for p in parts if not p.error]

    def json_of(command: str) -> dict[str, Any]:
        if command not in runner.commands:
            return {}
        extra = ["--glmm", glmm] if glmm and command in GLMM_COMMANDS else []
        try:
            return runner.run(command, [file, *option_args, *extra])
        except RunError:
            return {}

    methods, refs = methods_paragraph(
        json_of("pool"),
        options,
        columns,
        included,
        heterogeneity=json_of("heterogeneity"),
        bias=json_of("bias") if "bias" in included else None,
    )
    figures_note = ""
    if figures_off:
        figures_note = "Figures were left out (--no-figures)."
    elif not plot_commands:
        figures_note = (
            f"Figures are not available in ivigmeta {__version__}: no command can draw them "
            "(the --plot option and the plots package are not installed)."
        )
    reproduce = None
    if published:
        from ivigmeta.audit.published import load_published
        from ivigmeta.audit.reproduce import reproduce as run_reproduce

        pub = load_published(published, runner.commands)
        reproduce = run_reproduce(pub, runner, file)
    prov = {
        "versions": versions(),
        "command_line": command_line,
        "input": os.path.abspath(file),
        "sha256": sha256_of(file),
        "published": os.path.abspath(published) if published else "",
        "published_sha256": sha256_of(published) if published else "",
        "date": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "platform": platform.platform(),
    }
    title = title or "Meta-analysis report: " + os.path.basename(file)
    return ReportContent(
        title=title,
        source=file,
        table=table,
        parts=parts,
        methods=methods,
        references=refs,
        provenance=prov,
        reproduce=reproduce,
        not_available=not_available,
        figures_note=figures_note,
    )
