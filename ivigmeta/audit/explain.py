"""Explain a printed number that differs: try the usual alternative conventions and say which, if
any, gives the printed value.

Alternatives are of three kinds:

* **options** of the command itself (``--cc 0``, ``--cc-policy all``, ``--tau2 REML``, ``--ci hk``,
  ``--common MH`` ...), run through the same in-process runner and cache as the number itself.
  An option or value this version does not offer makes the run fail; the alternative is then
  reported as *not available* with the command's own message, and starts working as soon as
  the option exists;
* **conventions computed here** that no option offers:

  - meta's risk-ratio continuity correction (``metabin(..., RR.Cochrane = FALSE)``, its default):
    the increment is added to the events and to the totals of each arm of a study with a zero
    cell, log RR = log((a + cc) / (n1 + cc)) - log((c + cc) / (n2 + cc)), variance
    1/(a + cc) - 1/(n1 + cc) + 1/(c + cc) - 1/(n2 + cc) (the events' increment is dropped from
    the variance when both arms have all events), instead of adding ``cc`` to all four cells;
  - Cochran's Q centred on the Mantel-Haenszel estimate instead of the inverse-variance one, as
    RevMan 5 and meta (``Q.Cochrane = TRUE``) compute it for Mantel-Haenszel analyses, with the
    DerSimonian-Laird tau², I² = (Q - df) / Q and the random-effects fit that follow from it
    (Mantel & Haenszel 1959; Greenland & Robins 1985; Deeks & Higgins 2010);

* **reading conventions**: the common-effect estimate where the random-effects one was expected
  (the same path with ``random`` replaced by ``common``), and truncation instead of rounding to
  the printed decimals.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, is_dataclass, replace
from typing import TYPE_CHECKING, Any

from ivigmeta.audit.compare import compare, parse_printed
from ivigmeta.audit.paths import PathError, format_path, parse_path, resolve
from ivigmeta.audit.runner import CommandCache, RunError
from ivigmeta.errors import IvigmetaError, ModelError
from ivigmeta.results import AlternativeCheck, EffectSizes, FitOptions, Heterogeneity, MetaAnalysis

if TYPE_CHECKING:
    from ivigmeta.audit.published import PublishedNumber
    from ivigmeta.results import NumberCheck

TAU2_ALTERNATIVES = ("REML", "ML", "PM", "EB", "HS", "SJ", "HE")


# ---------------------------------------------------------------------------------------------
# Conventions computed in the core


def meta_rr_effects(es: EffectSizes) -> EffectSizes:
    """The same studies with meta's default risk-ratio correction (events and totals only).

    Studies that received ``cc`` under ivigmeta's rule (all four cells) get it on their events
    and their totals instead (:func:`ivigmeta.core.effects.rr_events_totals`); the others are
    unchanged. Only for the risk ratio.
    """
    import numpy as np

    from ivigmeta.core.effects import rr_events_totals

    if es.measure != "RR":
        raise ModelError("meta's events-and-totals rule concerns the risk ratio only")
    if not any(es.cc_added):
        raise ModelError("no study has a continuity correction: the rule changes nothing")
    corrected = [i for i, add in enumerate(es.cc_added) if add]
    a, n1, c, n2 = np.array([es.studies[i].counts for i in corrected], dtype=float).T
    y, v = rr_events_totals(a, n1, c, n2, np.array([es.cc_added[i] for i in corrected]))
    yi, vi = list(es.yi), list(es.vi)
    for j, i in enumerate(corrected):
        yi[i], vi[i] = float(y[j]), float(v[j])
    return replace(es, yi=tuple(yi), vi=tuple(vi))


def mantel_haenszel_theta(es: EffectSizes, exact: bool = False) -> float:
    """Mantel-Haenszel pooled estimate on the analysis scale (log RR, log OR or RD).

    Cells are corrected as the effect sizes were (``cc_added`` on all four cells), as meta does
    with ``MH.exact = FALSE`` and RevMan 5; ``exact=True`` uses the raw counts, as metafor's
    ``rma.mh`` does. The estimate is the engine's (:func:`ivigmeta.core.mantel_haenszel.pool_mh`)
    on those counts.
    """
    import numpy as np

    from ivigmeta.core.groups import Groups
    from ivigmeta.core.mantel_haenszel import pool_mh

    counts = np.array([s.counts for s in es.studies], dtype=float)
    add = np.zeros(es.k) if exact else np.asarray(es.cc_added, dtype=float)
    a, n1, c, n2 = counts.T
    fitted = pool_mh(
        a + add, n1 + 2 * add, c + add, n2 + 2 * add, Groups.single(es.k), es.measure, 0.0, "none"
    )
    theta = float(fitted.theta[0])
    if es.measure != "RD" and not math.isfinite(theta):
        raise ModelError("the Mantel-Haenszel estimate is undefined (no events in one arm)")
    return theta


def fit_q_mh(es: EffectSizes, options: FitOptions, exact: bool = False) -> MetaAnalysis:
    """The fit with Cochran's Q centred on the Mantel-Haenszel estimate (RevMan 5's Q).

    ``exact`` centres Q on the MH estimate of the uncorrected counts (metafor's ``rma.mh``).

    Q = sum w_i (y_i - theta_MH)², w_i = 1 / v_i; tau² from that Q by DerSimonian-Laird;
    I² = 100 max(0, (Q - df) / Q); the random-effects fit uses that tau². Every piece is the
    engine's (:mod:`ivigmeta.core`): only the centre of Q differs.
    """
    import numpy as np

    from ivigmeta.core.distributions import chi2_sf
    from ivigmeta.core.groups import Groups, trace_p
    from ivigmeta.core.heterogeneity import i2_from_q, q_about
    from ivigmeta.core.pooling import fit, random_effects
    from ivigmeta.core.tau2 import dl_from_q

    ma = fit(es, options)
    if not ma.pooled:
        return ma
    theta = mantel_haenszel_theta(es, exact=exact)
    g = Groups.single(es.k)
    y, v = np.asarray(es.yi, dtype=float), np.asarray(es.vi, dtype=float)
    q = float(q_about(y, v, g, np.array([theta]))[0])
    df = es.k - 1
    tau2 = float(dl_from_q(np.array([q]), np.array([df]), trace_p(1.0 / v, g))[0])
    i2 = i2_from_q(q, df)
    het = Heterogeneity(
        q=q,
        df=df,
        p_value=chi2_sf(q, df),
        i2=i2,
        h2=q / df if df > 0 else None,
        tau2=tau2,
        tau=math.sqrt(tau2),
        i2_q=i2,
        tau2_method="DL",
    )
    random = random_effects(es.yi, es.vi, es.measure, tau2, "DL", options.ci_method, options.level)
    return replace(ma, random=random, heterogeneity=het)


def _fit_q_mh_exact(es: EffectSizes, options: FitOptions) -> MetaAnalysis:
    return fit_q_mh(es, options, exact=True)


def refit_all(obj: Any, fitter: Callable[[MetaAnalysis], MetaAnalysis]) -> Any:
    """Replace every :class:`MetaAnalysis` inside a result object by ``fitter(ma)``.

    Subgroup levels and leave-one-out rows hold their own fits; this refits them all with the
    alternative convention, leaving everything else (such as the between-subgroup test) as is.
    """
    if isinstance(obj, MetaAnalysis):
        return fitter(obj)
    if isinstance(obj, tuple):
        return tuple(refit_all(x, fitter) for x in obj)
    if isinstance(obj, list):
        return [refit_all(x, fitter) for x in obj]
    if is_dataclass(obj) and not isinstance(obj, type):
        changes = {}
        for f in fields(obj):
            value = getattr(obj, f.name)
            new = refit_all(value, fitter)
            if new is not value:
                changes[f.name] = new
        return replace(obj, **changes) if changes else obj
    return obj


def _method(command: str, params: dict[str, Any]) -> Callable[[MetaAnalysis], Any]:
    """The core method behind each analysis command: fit -> result, as the command computes it."""
    if command in ("pool", "heterogeneity"):
        return lambda ma: ma
    if command == "loo":
        from ivigmeta.methods.sensitivity import leave_one_out

        return leave_one_out
    if command == "subgroup":
        from ivigmeta.methods.subgroup import subgroup_analysis

        columns = list(params.get("columns") or ())
        return lambda ma: subgroup_analysis(ma, columns)
    if command == "bias":
        from ivigmeta.methods.bias import bias_analysis

        return bias_analysis
    raise ModelError(f"not computed for the '{command}' command")


def run_core_alternative(
    command: str,
    args: Sequence[str],
    cache: CommandCache,
    effects: Callable[[EffectSizes], EffectSizes] | None = None,
    fitter: Callable[[EffectSizes, FitOptions], MetaAnalysis] | None = None,
) -> Any:
    """Recompute ``command`` with the alternative ``effects`` and/or ``fitter``; its JSON payload.

    The command's own fit (data, effect sizes and options exactly as the command builds them)
    comes from the runner; the alternative is applied to it and the command's method rerun.
    """
    from ivigmeta.core.pooling import fit

    params = cache.runner.params(command, [cache.data, *args])
    method = _method(command, params)
    ma = cache.runner.fit(command, [cache.data, *args])
    es = effects(ma.effects) if effects is not None else ma.effects
    fitter = fitter or fit
    result = method(fitter(es, ma.options))
    if fitter is not fit:
        result = refit_all(result, lambda m: fitter(m.effects, m.options))
    return cache.runner.payload(result, command)


# ---------------------------------------------------------------------------------------------
# Trying the alternatives on one number


@dataclass(frozen=True)
class Alternative:
    """One convention to try: extra command options, a core computation, or a reading rule."""

    name: str
    how: str
    args: tuple[str, ...] = ()
    path_map: Callable[[str], str | None] | None = None
    core: dict[str, Any] | None = None
    truncate: bool = False
    #: the analysis measures the convention concerns (None: any)
    measures: tuple[str, ...] | None = None


#: measures computed from 2x2 counts with a continuity correction (Mantel-Haenszel, Peto and
#: meta's rules concern them alone)
_COUNT_MEASURES = ("RR", "OR", "RD")
#: measures whose effect sizes take a continuity correction at all (metafor's escalc defaults)
_CORRECTED = _COUNT_MEASURES + ("IRR", "IRD", "PR", "PLN", "PLO")


def random_to_common(path: str) -> str | None:
    """``path`` with its ``random`` key read as ``common`` (the common-effect estimate where the
    random-effects one was expected); None when the path has no ``random`` key."""
    parsed = parse_path(path)
    if not any(s.kind == "key" and s.key == "random" for s in parsed.steps):
        return None
    steps = tuple(
        replace(s, key="common") if s.kind == "key" and s.key == "random" else s
        for s in parsed.steps
    )
    return format_path(replace(parsed, steps=steps))


def tau2_alternatives() -> list[str]:
    """The usual tau² estimators, plus any other this version offers (its ``--tau2`` registry)."""
    from ivigmeta.core.tau2 import TAU2_METHODS

    names = list(TAU2_ALTERNATIVES)
    names += [m for m in TAU2_METHODS if m not in names and m != "DL"]
    return names


def alternatives() -> list[Alternative]:
    """The conventions tried, in the order they are reported."""
    alts = [
        Alternative("no continuity correction", "--cc 0", ("--cc", "0"), measures=_CORRECTED),
        Alternative(
            "continuity correction for every study",
            "--cc-policy all",
            ("--cc-policy", "all"),
            measures=_CORRECTED,
        ),
        Alternative(
            "correction to events and totals only (meta's RR rule)",
            "cc added to events and totals of zero-cell studies (meta metabin default)",
            core={"effects": meta_rr_effects},
            measures=("RR",),
        ),
        Alternative(
            "Q centred on the Mantel-Haenszel estimate",
            "Q about the MH estimate, DL tau² and I² from it (RevMan 5, meta Q.Cochrane)",
            core={"fitter": fit_q_mh},
            measures=_COUNT_MEASURES,
        ),
        Alternative(
            "Q centred on the exact Mantel-Haenszel estimate",
            "Q about the MH estimate of the uncorrected counts (metafor rma.mh)",
            core={"fitter": _fit_q_mh_exact},
            measures=_COUNT_MEASURES,
        ),
        Alternative(
            "common-effect instead of random-effects",
            "the common (IV) fit",
            path_map=random_to_common,
        ),
        Alternative(
            "Mantel-Haenszel common effect",
            "--common MH",
            ("--common", "MH"),
            path_map=random_to_common,
            measures=_COUNT_MEASURES,
        ),
        Alternative(
            "Peto common effect",
            "--common PETO",
            ("--common", "PETO"),
            path_map=random_to_common,
            measures=("OR",),
        ),
    ]
    alts += [
        Alternative(f"tau² estimator {m}", f"--tau2 {m}", ("--tau2", m))
        for m in tau2_alternatives()
    ]
    alts += [
        Alternative("Hartung-Knapp intervals", "--ci hk", ("--ci", "hk")),
        Alternative("truncation instead of rounding", "printed decimals truncated", truncate=True),
    ]
    return alts


@dataclass(frozen=True)
class Explanation:
    text: str
    alternatives: tuple[AlternativeCheck, ...]


def try_alternative(
    alt: Alternative, number: PublishedNumber, original: Any, cache: CommandCache
) -> AlternativeCheck:
    """Recompute ``number`` under the alternative ``alt`` and compare it with the printed value;
    ``original`` is the value ivigmeta's own convention gave."""
    printed = parse_printed(number.printed)
    path = number.path
    if alt.measures is not None:
        measure = _measure_of(number, cache)
        if measure is not None and measure not in alt.measures:
            return AlternativeCheck(
                alt.name, alt.how, "not_applicable", detail=f"does not concern {measure}"
            )
    if alt.path_map is not None:
        mapped = alt.path_map(path)
        if mapped is None:
            return AlternativeCheck(
                alt.name,
                alt.how,
                "not_applicable",
                detail="the number is not a random-effects estimate",
            )
        path = mapped
    if alt.truncate and printed.kind != "number":
        return AlternativeCheck(
            alt.name, alt.how, "not_applicable", detail="the printed value is not a rounded number"
        )
    try:
        if alt.core is not None:
            data = run_core_alternative(number.command, number.args, cache, **alt.core)
        else:
            data = cache.get(number.command, [*number.args, *alt.args])
    except RunError as exc:
        return AlternativeCheck(alt.name, alt.how, "not_available", detail=str(exc))
    except IvigmetaError as exc:
        return AlternativeCheck(alt.name, alt.how, "not_applicable", detail=str(exc))
    except Exception as exc:  # noqa: BLE001 - a failing alternative must not stop the audit
        return AlternativeCheck(
            alt.name,
            alt.how,
            "not_available",
            detail=f"internal error ({type(exc).__name__}: {exc})",
        )
    try:
        value = resolve(data, path)
        cmp = compare(printed, value, number.scale, truncate=alt.truncate)
    except (PathError, ValueError) as exc:
        return AlternativeCheck(alt.name, alt.how, "not_applicable", detail=str(exc))
    if cmp.matches:
        status = "gives_printed"
    elif value == original and not alt.truncate:
        status = "unchanged"
    else:
        status = "differs"
    return AlternativeCheck(alt.name, alt.how, status, value=value, rounded=cmp.rounded)


def _measure_of(number: PublishedNumber, cache: CommandCache) -> str | None:
    """The analysis measure of the number's own command (its JSON ``measure``), if it has one."""
    try:
        data = cache.get(number.command, list(number.args))
    except Exception:  # noqa: BLE001 - the number's own run failing is reported elsewhere
        return None
    measure = data.get("measure") if isinstance(data, dict) else None
    return str(measure) if measure is not None else None


def explain_number(number: PublishedNumber, check: NumberCheck, cache: CommandCache) -> Explanation:
    """Try every alternative on a number that differs; say which give the printed value."""
    tried = tuple(try_alternative(alt, number, check.recomputed, cache) for alt in alternatives())
    return Explanation(describe(number.printed, check.rounded, tried), tried)


def describe(printed: str, rounded: str, tried: Sequence[AlternativeCheck]) -> str:
    """One paragraph: which conventions give the printed value, which do not, which were not tried."""
    gives = [a for a in tried if a.status == "gives_printed"]
    differs = [a for a in tried if a.status == "differs"]
    missing = [a for a in tried if a.status == "not_available"]
    unchanged = [a for a in tried if a.status == "unchanged"]
    parts = []
    if gives:
        parts.append(
            f"Printed {printed} (data give {rounded}) is reproduced by: "
            + "; ".join(f"{a.name} ({a.rounded})" for a in gives)
            + "."
        )
        if differs:
            parts.append("Not by: " + "; ".join(f"{a.name} ({a.rounded})" for a in differs) + ".")
    else:
        parts.append(
            f"No standard convention gives the printed {printed} (data give {rounded}): "
            "not reproduced by any of: "
            + ("; ".join(f"{a.name} ({a.rounded})" for a in differs) or "none could be tried")
            + "."
        )
    if unchanged:
        parts.append("Unchanged by: " + ", ".join(a.name for a in unchanged) + ".")
    if missing:
        parts.append("Not available in this version: " + ", ".join(a.how for a in missing) + ".")
    return " ".join(parts)
