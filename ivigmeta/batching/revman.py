"""``ivigmeta batch`` over RevMan files: every analysis of every review re-analysed, one output
row each, RevMan's stored result beside ivigmeta's.

Each analysis is read as ``--analysis`` reads it (:func:`ivigmeta.io.revman.analysis_table`) and
fitted by the one engine (:func:`ivigmeta.api.fit_table`), with the analysis's own measure,
method and level and the batch's options: RevMan's methods unless another estimator or interval
is asked for (``--tau2`` other than DL or ``--ci`` other than z), which then use metafor's
conventions. Reviews are small (tens of analyses); a folder of thousands takes seconds.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ivigmeta.errors import DataError, IvigmetaError

#: The output columns, in order.
COLUMNS = (
    "file",
    "review_id",
    "doi",
    "analysis",
    "name",
    "data_type",
    "measure",
    "method",
    "model",
    "software",
    "k",
    "revman_estimate",
    "revman_ci_low",
    "revman_ci_high",
    "revman_p_value",
    "revman_i2",
    "revman_tau2",
    "estimate",
    "ci_low",
    "ci_high",
    "p_value",
    "i2",
    "tau2",
    "revman_significant",
    "significant",
    "conclusion_changed",
    "status",
    "reason",
)
MODELS = ("analysis", "random", "common")


@dataclass(frozen=True)
class RevManBatchOptions:
    tau2_method: str = "DL"
    ci_method: str = "z"
    level: float | None = None  # percent; None: each analysis's own CI_TOTAL
    software: str | None = None  # None: revman, or metafor when tau2/ci ask for it
    model: str = "analysis"  # which pooled row is compared: the analysis's own, random, common


def revman_files(path: str) -> list[str]:
    """The RevMan files of ``path``: the file itself, or every .rm5 file of a folder (sorted)."""
    if os.path.isdir(path):
        found = sorted(
            os.path.join(path, n) for n in os.listdir(path) if n.lower().endswith(".rm5")
        )
        if not found:
            raise DataError(f"{path}: a folder with no .rm5 files")
        return found
    return [path]


def is_revman_input(path: str) -> bool:
    """Whether ``batch`` reads ``path`` as RevMan input (a folder, an .rm5 file, the CSV export)."""
    from ivigmeta.io.revman import is_revman_csv_head, is_rm5

    if os.path.isdir(path):
        return True
    if path.lower().endswith(".rm5"):
        return True
    try:
        with open(path, "rb") as handle:
            head = handle.read(4096)
    except OSError:
        return False
    return is_rm5(path, head) or is_revman_csv_head(head)


def _excludes_null(low: float | None, high: float | None, log: bool) -> bool | None:
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return None
    null = 1.0 if log else 0.0
    return bool(low > null or high < null)


def analysis_rows(
    paths: Sequence[str], options: RevManBatchOptions, note: Callable[[str], None]
) -> Iterator[dict[str, Any]]:
    """One row per analysis (outcomes and subgroups) of every file in ``paths``."""
    from ivigmeta.api import fit_table
    from ivigmeta.io.readers import read_bytes
    from ivigmeta.io.revman import analysis_table, load_review, table_settings
    from ivigmeta.io.studies import parse_rows

    software = options.software
    if software is None:
        plain = options.tau2_method.upper() == "DL" and options.ci_method.lower() == "z"
        software = "revman" if plain else "metafor"
    for path in paths:
        source, data = read_bytes(path)
        try:
            review = load_review(data, source, path)
        except DataError as exc:
            failed: dict[str, Any] = dict.fromkeys(COLUMNS)
            failed.update(file=path, status="error", reason=str(exc))
            yield failed  # the file's one row: nothing is left out silently
            continue
        for message in review.notes:
            note(message)
        for a in review.analyses:
            log = a.log_scale or a.measure == "ratio"
            stored = a.stored
            row: dict[str, Any] = dict.fromkeys(COLUMNS)
            row.update(
                file=path,
                review_id=review.id,
                doi=review.doi,
                analysis=a.number,
                name=a.name,
                data_type=a.data_type,
                measure=a.measure,
                method=a.method,
                model=a.model,
                software=software,
                k=a.k,
                revman_estimate=stored.get("EFFECT_SIZE"),
                revman_ci_low=stored.get("CI_START"),
                revman_ci_high=stored.get("CI_END"),
                revman_p_value=stored.get("P_Z"),
                revman_i2=stored.get("I2"),
                revman_tau2=stored.get("TAU2"),
                revman_significant=_excludes_null(
                    stored.get("CI_START"), stored.get("CI_END"), log
                ),
            )
            try:
                raw, _ = analysis_table(review, a.number)
                from dataclasses import replace

                table = replace(parse_rows(raw), settings=table_settings(a))
                fitted = fit_table(
                    table,
                    tau2=options.tau2_method,
                    ci=options.ci_method,
                    level=options.level if options.level is not None else a.ci_total,
                    software=software,
                )
            except IvigmetaError as exc:
                row.update(status="error", reason=str(exc))
                yield row
                continue
            ma = fitted.analysis
            which = a.model if options.model == "analysis" else options.model
            pooled = ma.random if which == "random" else ma.common
            if pooled is None:
                row.update(status="single", reason="a single study: nothing pooled")
                yield row
                continue
            het = ma.heterogeneity
            row.update(
                estimate=pooled.estimate,
                ci_low=pooled.ci_low,
                ci_high=pooled.ci_high,
                p_value=pooled.p_value,
                i2=None if het is None else het.i2_q,
                tau2=None if het is None else het.tau2,
                significant=_excludes_null(pooled.ci_low, pooled.ci_high, log),
                status="ok",
                reason="",
            )
            if row["revman_significant"] is not None and row["significant"] is not None:
                row["conclusion_changed"] = row["revman_significant"] != row["significant"]
            yield row
