"""Batch pooling: thousands to millions of meta-analyses at once, vectorized across groups.

The input is a long table, one row per study, with one or more *group* columns naming the
meta-analysis each study belongs to. :func:`batch_pool` is a pure function from a pandas DataFrame
(any subset of whole groups) to a results DataFrame with one row per group and the columns
:data:`RESULT_COLUMNS`; :func:`stream_batch` drives it over a table read in chunks with bounded
memory.

No statistics live here: the effect sizes, tau² estimators, pooling, intervals, heterogeneity and
Mantel-Haenszel / Peto estimates are the engine's kernels (:mod:`ivigmeta.core`), the same ones
``pool`` calls with one group, so a group gives the numbers :func:`ivigmeta.core.pooling.fit` gives
for it on its own (tests/test_batch_equals_pool.py holds them equal).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ivigmeta.core.effects import DATA_ROLES, check_effect_options, data_effects
from ivigmeta.core.groups import Groups
from ivigmeta.core.mantel_haenszel import COMMON_ERRORS
from ivigmeta.core.pooling import (
    CI_METHODS,
    COMMON_CI_METHODS,
    COMMON_METHODS,
    PI_METHODS,
    Counts,
    check_ci_method,
    check_common_ci,
    check_common_method,
    check_level,
    check_pi_method,
    pool_groups,
)
from ivigmeta.core.tau2 import ESTIMATORS, GRID, check_tau2_method, not_converged_message
from ivigmeta.errors import DataError, ModelError
from ivigmeta.io.chunks import (  # noqa: F401 - ChunkReader and the constants are re-exported
    DEFAULT_CHUNK_ROWS,
    ERROR_COLUMN,
    ROW_COLUMN,
    ChunkReader,
    Rows,
    Span,
    TableOptions,
    check_columns,
    frame_kind,
    row_check,
    split_spans,
    suspect_rows,
)
from ivigmeta.io.studies import LABEL_COLUMN, YEAR_COLUMN

if TYPE_CHECKING:  # pandas is imported by the functions that need it
    import pandas as pd

RESULT_COLUMNS = (
    "k",
    "common_theta",
    "common_se",
    "common_estimate",
    "common_ci_low",
    "common_ci_high",
    "common_p_value",
    "random_theta",
    "random_se",
    "random_estimate",
    "random_ci_low",
    "random_ci_high",
    "random_p_value",
    "random_pi_low",
    "random_pi_high",
    "q",
    "df",
    "q_p_value",
    "i2",
    "tau2",
    "n_excluded",
    "status",
    "reason",
)
"""Output columns after the group key columns (a public contract: see docs/batch.md)."""

INT_COLUMNS = ("k", "df", "n_excluded")
TEXT_COLUMNS = ("status", "reason")
FLOAT_COLUMNS = tuple(c for c in RESULT_COLUMNS if c not in INT_COLUMNS + TEXT_COLUMNS)

STATUS_OK = "ok"
STATUS_SINGLE = "single"
STATUS_ERROR = "error"

#: The engine's registries (the same choices as ``pool``).
#: every estimator but GENQ, whose per-study weights batch does not read
BATCH_TAU2_METHODS = tuple(key for key in ESTIMATORS if key != "GENQ")
BATCH_CI_METHODS = CI_METHODS
BATCH_COMMON_METHODS = COMMON_METHODS
BATCH_PI_METHODS = PI_METHODS
BATCH_COMMON_CI_METHODS = COMMON_CI_METHODS


@dataclass(frozen=True)
class BatchOptions:
    """How every group is analysed; the same meanings as the ``pool`` options."""

    measure: str | None = None
    """None: the default of the table's kind of data (RR for 2x2 counts, MD for means, IRR for
    rates, PLO for proportions), as ``pool``."""
    cc: float = 0.5
    cc_policy: str = "only0"
    tau2_method: str = "DL"
    ci_method: str = "z"
    common_method: str = "IV"
    level: float = 0.95
    pi_method: str = "z"
    common_ci: str = "z"
    tau2_weights: str | None = None
    """Not available in batch: GENQ's weights column (an error naming the limitation)."""
    keep_double_zero: bool = True
    """Keep double-zero studies in RR / OR analyses (with the correction), as the library's
    ``compute_effects``; ``False`` excludes them (the CLI default, ``--keep-double-zero`` keeps)."""

    def checked(self) -> BatchOptions:
        """Normalized options; unknown names are pool's ModelError/DataError naming the choices."""
        measure = None
        if self.measure is not None:
            measure = check_effect_options(self.measure, self.cc, self.cc_policy)
        else:
            check_effect_options("RR", self.cc, self.cc_policy)
        tau2 = check_tau2_method(self.tau2_method)
        ci = check_ci_method(self.ci_method)
        common = check_common_method(self.common_method, measure or "OR")
        check_level(self.level)
        if tau2 == "GENQ" or self.tau2_weights is not None:
            raise ModelError(
                "--tau2 GENQ and --tau2-weights are not available in batch (use pool, or the "
                "API's pool(tau2='GENQ', tau2_weights=COLUMN))"
            )
        return BatchOptions(
            measure,
            float(self.cc),
            self.cc_policy,
            tau2,
            ci,
            common,
            self.level,
            check_pi_method(self.pi_method),
            check_common_ci(self.common_ci, common),
            None,
            bool(self.keep_double_zero),
        )


def measure_of(kind: str, options: BatchOptions, source: str = "") -> str:
    """The analysis measure for a table of ``kind``: ``--measure`` checked against the data, or
    the kind's default (pool's rule and message: :func:`ivigmeta.core.effects.kind_measure`)."""
    from ivigmeta.core.effects import kind_measure

    measure = kind_measure(kind, options.measure, source)
    if options.common_method != "IV":
        check_common_method(options.common_method, measure)
        rates = kind == "incidence" and options.common_method == "MH" and measure in ("IRR", "IRD")
        if kind != "counts" and not rates:
            method = "Mantel-Haenszel" if options.common_method == "MH" else "Peto's method"
            raise DataError(
                f"{source + ': ' if source else ''}{method} needs event counts, but the table "
                f"gives {kind} data (use --common IV)"
            )
    return measure


# ----------------------------------------------------------------------------------------------
# the pure numpy core


def pool_arrays(
    sizes: np.ndarray,
    fx: Any,
    measure: str,
    options: BatchOptions,
    counts: np.ndarray | None = None,
    pft_n: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Pool groups of rows whose effect sizes are ``fx`` (:func:`ivigmeta.core.effects.data_effects`;
    rows sorted by group, ``sizes`` rows per group) with ``measure``.

    ``counts`` (n, 4) are the rows' 2x2 counts (or events and person-times), which
    Mantel-Haenszel and Peto pool; ``pft_n``
    the rows' sizes, whose harmonic mean per group back-transforms PFT.
    Returns arrays, one value per group, for every numeric column of :data:`RESULT_COLUMNS`
    plus ``converged``, ``common_error`` (an index into :data:`COMMON_ERRORS`, 0 when defined) and
    ``usable`` (a row mask: which studies entered the analysis).
    Groups with no usable study or a single one get NaN estimates (the caller labels them).
    """
    from ivigmeta.core.measures import to_reported
    from ivigmeta.core.transforms import ipft

    opts = options
    ngroups = len(sizes)
    out: dict[str, np.ndarray] = {name: np.full(ngroups, np.nan) for name in FLOAT_COLUMNS}
    usable = fx.ok
    allg = Groups(np.asarray(sizes, dtype=np.intp))
    kept = (
        np.bincount(allg.index[usable], minlength=ngroups)
        if len(usable)
        else np.zeros(ngroups, int)
    )
    out["k"] = kept.astype(np.int64)
    out["n_excluded"] = (allg.sizes - kept).astype(np.int64)
    out["converged"] = np.ones(ngroups, bool)
    out["iterations"] = np.zeros(ngroups, np.int64)
    out["grid_search"] = np.zeros(ngroups, bool)
    out["common_error"] = np.zeros(ngroups, np.int8)
    out["usable"] = usable
    pooled = kept >= 2
    out["df"] = np.where(pooled, kept - 1, 0).astype(np.int64)
    if not pooled.any():
        return out
    # Rows of the pooled groups that enter the analysis, still sorted by group.
    row_in = usable & pooled[allg.index]
    g = Groups(kept[pooled])
    idx = np.flatnonzero(pooled)
    mh = None
    if opts.common_method != "IV" and counts is not None:
        cin = counts[row_in]
        mh = Counts(cin[:, 0], cin[:, 1], cin[:, 2], cin[:, 3], opts.cc, opts.cc_policy)
    gf = pool_groups(
        fx.yi[row_in],
        fx.vi[row_in],
        g,
        opts.tau2_method,
        opts.ci_method,
        opts.level,
        opts.common_method,
        measure,
        mh,
        opts.pi_method,
        opts.common_ci,
    )
    if gf.counts_fit is not None:
        out["common_error"][idx] = gf.counts_fit.error
    for prefix, part in (("common", gf.common), ("random", gf.random)):
        out[f"{prefix}_theta"][idx] = part.theta
        out[f"{prefix}_se"][idx] = part.se
        out[f"{prefix}_ci_low"][idx] = part.ci_low
        out[f"{prefix}_ci_high"][idx] = part.ci_high
        out[f"{prefix}_p_value"][idx] = part.p_value
    out["random_pi_low"][idx] = gf.random.pi_low
    out["random_pi_high"][idx] = gf.random.pi_high
    out["q"][idx] = gf.heterogeneity.q
    out["q_p_value"][idx] = gf.heterogeneity.p_value
    out["tau2"][idx] = gf.tau2.tau2
    out["i2"][idx] = gf.i2
    out["converged"][idx] = gf.tau2.converged
    out["iterations"][idx] = gf.tau2.iterations
    out["grid_search"][idx] = gf.tau2.algorithm == GRID

    if measure == "PFT":
        # metafor's transf.ipft.hm: the harmonic mean of each model's (analysed) sizes
        nhm = np.full(ngroups, np.nan)
        nhm[idx] = kept[pooled] / g.sum(1.0 / np.asarray(pft_n, dtype=float)[row_in])

        def back(theta: np.ndarray) -> np.ndarray:
            return ipft(theta, nhm)

    else:

        def back(theta: np.ndarray) -> np.ndarray:
            return to_reported(theta, measure)

    for prefix in ("common", "random"):
        out[f"{prefix}_estimate"] = back(out[f"{prefix}_theta"])
        for end in ("ci_low", "ci_high"):
            out[f"{prefix}_{end}"] = back(out[f"{prefix}_{end}"])
    for end in ("pi_low", "pi_high"):
        out[f"random_{end}"] = back(out[f"random_{end}"])
    return out


# ----------------------------------------------------------------------------------------------
# Rows in, BatchResult out (pandas only at the DataFrame door)


@dataclass
class BatchResult:
    """One row per group, as numpy arrays: the group key columns, then :data:`RESULT_COLUMNS`.

    ``values`` holds float64 arrays for the numeric columns, int64 arrays for ``k``, ``df`` and
    ``n_excluded`` (with ``missing`` marking the empty cells: ``df`` of unpooled groups, every
    count of a group with a bad row) and object arrays for ``status`` and ``reason``. ``first``
    is the position, in the rows given, of each group's first row.
    """

    groups: list[str]
    keys: dict[str, np.ndarray]
    values: dict[str, np.ndarray]
    missing: dict[str, np.ndarray]
    first: np.ndarray

    def __len__(self) -> int:
        return len(self.first)

    @property
    def columns(self) -> list[str]:
        return [*self.groups, *RESULT_COLUMNS]

    def status_count(self, status: str) -> int:
        return int(np.count_nonzero(self.values["status"] == status))

    def key_hashes(self) -> np.ndarray:
        """A 64-bit hash of each group's key (Python's hash of the key tuple, as
        :func:`stream_batch` uses to find a group that comes back)."""
        return _key_hashes(list(zip(*(self.keys[g].tolist() for g in self.groups))))

    @staticmethod
    def empty(groups: Sequence[str]) -> BatchResult:
        values: dict[str, np.ndarray] = {}
        for name in RESULT_COLUMNS:
            dtype = np.int64 if name in INT_COLUMNS else object if name in TEXT_COLUMNS else float
            values[name] = np.empty(0, dtype=dtype)
        return BatchResult(
            groups=list(groups),
            keys={g: np.empty(0, dtype=object) for g in groups},
            values=values,
            missing={name: np.zeros(0, bool) for name in INT_COLUMNS},
            first=np.empty(0, np.intp),
        )

    def to_frame(self, keys: pd.DataFrame | None = None) -> pd.DataFrame:
        """A pandas DataFrame (nullable Int64 for the count columns); ``keys`` replaces the key
        columns (one row per group), e.g. to keep the input's dtypes."""
        import pandas as pd

        data: dict[str, Any] = {}
        for g in self.groups:
            if keys is not None:
                data[g] = keys[g].reset_index(drop=True)
            else:
                data[g] = pd.Series(self.keys[g])
        for name in RESULT_COLUMNS:
            col = self.values[name]
            if name in INT_COLUMNS:
                arr = pd.array(col, dtype="Int64")
                arr[self.missing[name]] = pd.NA
                data[name] = arr
            elif name in TEXT_COLUMNS:
                data[name] = pd.Series(col, dtype=object)
            else:
                data[name] = col
        return pd.DataFrame(data, columns=self.columns)


def _factorize(keys: dict[str, np.ndarray], groups: Sequence[str]) -> np.ndarray:
    """Group codes 0, 1, ... in order of first appearance (keys compared as Python values)."""
    seen: dict[Any, int] = {}
    if len(groups) == 1:
        values: Iterable[Any] = keys[groups[0]].tolist()
    else:
        values = zip(*(keys[g].tolist() for g in groups))
    n = len(keys[groups[0]])
    return np.fromiter((seen.setdefault(v, len(seen)) for v in values), np.int64, n)


def pool_rows(
    rows: Rows,
    groups: Sequence[str],
    options: BatchOptions | None = None,
    source: str = "<data>",
    codes: np.ndarray | None = None,
) -> BatchResult:
    """Pool every group of ``rows`` (each group whole; any row order): one result per group.

    Groups come out in order of first appearance (``codes``, when given, are group numbers in
    that order, e.g. from pandas' grouping). Bad rows never raise: their group gets ``status``
    "error" and the ``reason`` pool gives for the group's first bad row.
    """
    opts = (options or BatchOptions()).checked()
    groups = list(groups)
    n = len(rows)
    if n == 0:
        return BatchResult.empty(groups)
    if codes is None:
        codes = _factorize(rows.keys, groups)
    codes = np.asarray(codes, dtype=np.int64)
    sort = np.argsort(codes, kind="stable")
    order: np.ndarray | None = None
    if not np.array_equal(sort, np.arange(n)):
        order = sort
        rows = rows.take(sort)
        codes = codes[sort]
    ngroups = int(codes[-1]) + 1
    sizes = np.bincount(codes, minlength=ngroups)
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.intp)

    measure = measure_of(rows.kind, opts, source)
    effect_rows = np.zeros(n, bool)
    if rows.given is not None or rows.effect is not None:
        # may mark rows bad: pool fails the table
        given_yi, given_vi, effect_rows = _given_effects(rows, measure)
    bad = rows.bad
    group_bad = np.zeros(ngroups, bool)
    reason = np.full(ngroups, "", dtype=object)
    if bad.any():
        # pool stops at the first bad row of a table: report that one for each group.
        bad_pos = np.flatnonzero(bad)
        gcodes, first_bad = np.unique(codes[bad_pos], return_index=True)
        group_bad[gcodes] = True
        reason[gcodes] = rows.error[bad_pos[first_bad]]

    good_groups = ~group_bad
    row_good = good_groups[codes]
    data = rows.values[row_good]
    fx = data_effects(rows.kind, data, measure, opts.cc, opts.cc_policy, opts.keep_double_zero)
    if effect_rows.any():
        given = effect_rows[row_good]
        fx.yi[given] = given_yi[row_good][given]
        fx.vi[given] = given_vi[row_good][given]
        fx.ok[given] = True
    if rows.omitted is not None:
        # --missing exclude: rows left out for a missing value are excluded studies
        fx.ok[np.not_equal(rows.omitted, None)[row_good]] = False  # type: ignore[call-overload]
    res = pool_arrays(
        sizes[good_groups],
        fx,
        measure,
        opts,
        counts=data if rows.kind in ("counts", "incidence") else None,
        pft_n=data[:, -1] if measure == "PFT" else None,
    )

    gi = np.flatnonzero(good_groups)
    values: dict[str, np.ndarray] = {}
    for name in FLOAT_COLUMNS:
        col = np.full(ngroups, np.nan)
        col[gi] = res[name]
        values[name] = col
    missing: dict[str, np.ndarray] = {}
    for name in INT_COLUMNS:
        col = np.zeros(ngroups, np.int64)
        col[gi] = res[name]
        values[name] = col
        missing[name] = group_bad.copy()
    k = values["k"]
    missing["df"] |= k < 2
    status = np.full(ngroups, STATUS_OK, dtype=object)
    status[group_bad] = STATUS_ERROR
    converged = np.ones(ngroups, bool)
    converged[gi] = res["converged"]
    single = good_groups & (k == 1)
    status[single] = STATUS_SINGLE
    reason[single] = "a single study: no pooling was done"
    # An undefined Mantel-Haenszel / Peto estimate makes pool fail for that group: so here.
    # So does an iterative tau² that does not converge (pool raises a ModelError).
    cerr = np.zeros(ngroups, np.int8)
    cerr[gi] = res["common_error"]
    not_conv = good_groups & (k >= 2) & ~converged
    failed = good_groups & (k >= 2) & ((cerr > 0) | not_conv)
    if failed.any():
        status[failed] = STATUS_ERROR
        iterations = np.zeros(ngroups, np.int64)
        iterations[gi] = res["iterations"]
        reason[not_conv] = [
            not_converged_message(opts.tau2_method, int(n)) for n in iterations[not_conv]
        ]
        common_failed = failed & (cerr > 0)
        reason[common_failed] = np.asarray(COMMON_ERRORS, dtype=object)[cerr[common_failed]]
        for name in FLOAT_COLUMNS:
            values[name][failed] = np.nan
        missing["df"] |= failed
    if opts.common_method != "IV" and effect_rows.any():
        needs = np.zeros(ngroups, bool)
        needs[codes[effect_rows & row_good]] = True
        needs &= good_groups & (k >= 2)
        if needs.any():
            status[needs] = STATUS_ERROR
            reason[needs] = _needs_counts(
                rows, codes, effect_rows, np.flatnonzero(needs), opts.common_method
            )
            for name in FLOAT_COLUMNS:
                values[name][needs] = np.nan
            missing["df"] |= needs
    empty = good_groups & (k == 0)
    if empty.any():
        status[empty] = STATUS_ERROR
        reason[empty] = [
            _no_usable_message(rows, codes, int(gcode), opts, measure)
            for gcode in np.flatnonzero(empty)
        ]
    values["status"] = status
    values["reason"] = reason
    first = starts if order is None else order[starts]
    return BatchResult(
        groups=groups,
        keys={g: rows.keys[g][starts] for g in groups},
        values=values,
        missing=missing,
        first=first,
    )


def _given_effects(rows: Rows, measure: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(yi, vi, mask)`` of the rows that report an effect instead of data (``mask``): the
    plain ``yi, vi`` / ``theta, se`` numbers read as a column (``rows.effect``), and the rows
    read by pool's parser through pool's own function
    (:func:`ivigmeta.core.effects.given_effect`); a row pool refuses (an effect reported as
    another measure, a ratio that is not positive) gets pool's message in ``rows.error``."""
    from ivigmeta.core.effects import given_effect

    n = len(rows)
    yi, vi = np.full(n, np.nan), np.full(n, np.nan)
    mask = np.zeros(n, bool)
    if rows.effect is not None:
        read = np.isfinite(rows.effect[:, 0])
        yi[read] = rows.effect[read, 0]
        spread = rows.effect[read, 1]
        vi[read] = spread * spread if rows.effect_form == "se" else spread
        mask |= read
    if rows.given is not None:
        for i in np.flatnonzero(np.not_equal(rows.given, None)).tolist():  # type: ignore[call-overload]
            if rows.error[i] is not None:
                continue
            try:
                yi[i], vi[i] = given_effect(rows.given[i], measure)
                mask[i] = True
            except DataError as exc:
                rows.error[i] = str(exc)
    return yi, vi, mask


def _needs_counts(
    rows: Rows, codes: np.ndarray, effect_rows: np.ndarray, groups: np.ndarray, common: str
) -> list[str]:
    """pool's ModelError for each of ``groups`` (codes), which have rows that report only an
    effect (``effect_rows``), under Mantel-Haenszel or Peto
    (:func:`ivigmeta.results.counts_needed`)."""
    from ivigmeta.results import counts_needed

    method = "Mantel-Haenszel" if common == "MH" else "Peto's method"
    out = []
    for gcode in groups.tolist():
        listed = []
        for i in np.flatnonzero((codes == gcode) & effect_rows).tolist():
            row = int(rows.row[i])
            label = str(rows.label[i]) if rows.label is not None else ""
            listed.append((label or f"row {row}", row))
        out.append(counts_needed(method, listed))
    return out


def _no_usable_message(
    rows: Rows, codes: np.ndarray, gcode: int, opts: BatchOptions, measure: str
) -> str:
    """pool's ModelError for a group whose every study is excluded (rare: built per group)."""
    from ivigmeta.core.effects import compute_effects
    from ivigmeta.core.pooling import no_usable_studies
    from ivigmeta.io.studies import Study
    from ivigmeta.results import Exclusion

    roles = DATA_ROLES[rows.kind]
    studies = []
    omitted = []
    for pos in np.flatnonzero(codes == gcode).tolist():
        row = int(rows.row[pos])
        label = str(rows.label[pos]) if rows.label is not None else ""
        if rows.omitted is not None and rows.omitted[pos] is not None:
            omitted.append(Exclusion(label or f"row {row}", str(rows.omitted[pos]), row))
            continue
        cells = rows.values[pos]
        if rows.kind == "counts":
            a, n1, c, n2 = (int(x) for x in cells)
            study = Study(
                row=row, study=label or f"row {row}", year=None, treat_events=a, treat_total=n1,
                control_events=c, control_total=n2,
            )  # fmt: skip
        else:
            study = Study(
                row=row, study=label or f"row {row}", year=None, treat_events=None,
                treat_total=None, control_events=None, control_total=None,
                outcome_kind=rows.kind, outcome=dict(zip(roles, cells.tolist())),
            )  # fmt: skip
        studies.append(study)
    excluded: list[Exclusion] = omitted
    if studies:
        es = compute_effects(
            studies, measure, opts.cc, opts.cc_policy, keep_double_zero=opts.keep_double_zero
        )
        excluded += es.excluded
    excluded.sort(key=lambda e: e.row if e.row is not None else 0)
    return no_usable_studies(excluded)


# ----------------------------------------------------------------------------------------------
# the DataFrame door (the Dask recipe, library users)


def _frame_counts(df: pd.DataFrame, col: str) -> np.ndarray:
    """A count column as float64 (NaN where not a number)."""
    import pandas as pd

    raw = df[col]
    if pd.api.types.is_numeric_dtype(raw.dtype) and not pd.api.types.is_bool_dtype(raw.dtype):
        return raw.to_numpy(dtype=np.float64, na_value=np.nan)
    return pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _cell_text(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    try:
        import pandas as pd

        if v is pd.NA:
            return ""
    except ImportError:  # pragma: no cover - pandas is there when a DataFrame is
        pass
    return str(v).strip()


def rows_from_frame(
    df: pd.DataFrame, groups: Sequence[str], source: str = "<data>", missing: str = "error"
) -> Rows:
    """A DataFrame of study rows as :class:`Rows`, every bad row with pool's message.

    Uses ``__row__`` (file row numbers) and ``__error__`` (known messages) when present; rows are
    otherwise numbered 2, 3, ... (the header is row 1). ``missing="exclude"`` (``--missing``):
    a row whose data has a missing value is left out (:attr:`Rows.omitted`), not an error.
    """
    from ivigmeta.io.studies import check_missing

    exclude = check_missing(missing) == "exclude"
    import pandas as pd

    n = len(df)
    kind = frame_kind(df.columns) or "counts"
    roles = DATA_ROLES[kind]
    counts = (
        np.column_stack([_frame_counts(df, c) for c in roles]) if n else np.empty((0, len(roles)))
    )
    rownums = (
        df[ROW_COLUMN].to_numpy(dtype=np.int64)
        if ROW_COLUMN in df.columns
        else np.arange(n, dtype=np.int64) + 2
    )
    year = None
    if YEAR_COLUMN in df.columns:
        year = np.array([_cell_text(v) for v in df[YEAR_COLUMN].tolist()], dtype=object)
    suspect = suspect_rows(counts, year, kind) if n else np.zeros(0, bool)
    error = np.full(n, None, dtype=object)
    if ERROR_COLUMN in df.columns:
        known = df[ERROR_COLUMN].to_numpy(dtype=object)
        has = pd.notna(known)
        error[has] = known[has]
        suspect &= ~has
    columns = [str(c) for c in df.columns if c not in (ROW_COLUMN, ERROR_COLUMN)]
    omitted = None
    for pos in np.flatnonzero(suspect).tolist():
        values = {c: _cell_text(df[c].iat[pos]) for c in columns}
        message, reason = row_check(values, int(rownums[pos]), source, kind, exclude)
        if reason is not None:
            if omitted is None:
                omitted = np.full(n, None, dtype=object)
            omitted[pos] = reason
            continue
        error[pos] = message or f"{source}, row {int(rownums[pos])}: invalid study row"
    label = None
    if LABEL_COLUMN in df.columns:
        label = np.array([_cell_text(v) for v in df[LABEL_COLUMN].tolist()], dtype=object)
    return Rows(
        keys={g: df[g].to_numpy(dtype=object) for g in groups},
        values=counts,
        row=rownums,
        error=error,
        label=label,
        kind=kind,
        omitted=omitted,
    )


def batch_pool(
    df: pd.DataFrame,
    groups: Sequence[str],
    options: BatchOptions | None = None,
    source: str = "<data>",
    missing: str = "error",
) -> pd.DataFrame:
    """Pool every group of ``df`` (one row per study) and return one row per group.

    ``df`` needs the count columns and the ``groups`` columns; ``__row__`` (file row numbers for
    messages) and ``study`` are used when present. Each group must be whole in ``df``; groups come
    out in order of first appearance. Bad rows never raise: their group gets ``status`` "error"
    and the ``reason`` ``pool`` would give. A pure function of its arguments (the Dask recipe in
    docs/batch.md maps it over partitions). ``missing="exclude"`` (``--missing``) leaves out
    a row with a missing value in its data, counted in ``n_excluded``, instead of failing its
    group.
    """
    opts = (options or BatchOptions()).checked()
    groups = list(groups)
    check_columns(df.columns, groups, source)
    if len(df) == 0:
        return empty_result(groups)
    codes = df.groupby(groups, sort=False, dropna=False).ngroup().to_numpy()
    rows = rows_from_frame(df, groups, source, missing)
    result = pool_rows(rows, groups, opts, source, codes=codes)
    return result.to_frame(df[groups].iloc[result.first])


def empty_result(groups: Sequence[str]) -> pd.DataFrame:
    """A results frame with no rows and the right columns and dtypes (Dask's ``meta``)."""
    return BatchResult.empty(groups).to_frame()


# ----------------------------------------------------------------------------------------------
# streaming drivers


class NotGrouped(Exception):
    """The input's groups are not contiguous (raised only when streaming grouped input)."""

    def __init__(self, row: int, key: tuple) -> None:
        shown = ", ".join(str(k) for k in key)
        super().__init__(
            f"row {row}: group ({shown}) appears again after other groups: the input is not "
            "grouped (use --input-order unsorted or auto)"
        )
        self.row = row
        self.key = key


def _as_rows(chunk: Rows | pd.DataFrame, groups: Sequence[str], source: str) -> Rows:
    if isinstance(chunk, Rows):
        return chunk
    check_columns(chunk.columns, groups, source)
    return rows_from_frame(chunk, groups, source)


def _run_starts(rows: Rows, groups: Sequence[str]) -> np.ndarray:
    n = len(rows)
    change = np.zeros(max(n - 1, 0), bool)
    for g in groups:
        col = rows.keys[g]
        change |= col[1:] != col[:-1]
    return np.concatenate(([0], np.flatnonzero(change) + 1)).astype(np.intp)


def _key_tuples(rows: Rows, groups: Sequence[str], positions: np.ndarray) -> list[tuple]:
    return list(zip(*(rows.keys[g][positions].tolist() for g in groups)))


def _key_hashes(keys: list[tuple]) -> np.ndarray:
    """64-bit hashes of group keys (Python's hash of each key tuple, this process's seed)."""
    return np.fromiter((hash(k) for k in keys), np.int64, len(keys))


def stream_batch(
    chunks: Iterable[Rows | pd.DataFrame],
    groups: Sequence[str],
    options: BatchOptions | None = None,
    source: str = "<data>",
) -> Iterator[BatchResult]:
    """Pool grouped input (each group's rows contiguous) read in chunks, one result per chunk.

    A group split across chunks is held back and joined with the next chunk. A group that comes
    back after another group raises :class:`NotGrouped` (found by 64-bit hashes of the finished
    keys; a hash collision can only cause a false alarm, never a wrong number).
    """
    opts = (options or BatchOptions()).checked()
    groups = list(groups)
    seen = np.empty(0, np.int64)
    carry: Rows | None = None
    for chunk in chunks:
        rows = _as_rows(chunk, groups, source)
        final = rows.last  # nothing follows: the last group is whole, no need to hold it back
        if carry is not None and len(carry):
            rows = Rows.concat([carry, rows])
        if not len(rows):
            continue
        starts = _run_starts(rows, groups)
        heads = _key_tuples(rows, groups, starts)
        h = _key_hashes(heads)
        uniq, first_index = np.unique(h, return_index=True)
        repeat = np.isin(h, seen)
        dup = np.ones(len(h), bool)
        dup[first_index] = False
        repeat |= dup
        if repeat.any():
            i = int(np.flatnonzero(repeat)[0])
            raise NotGrouped(int(rows.row[starts[i]]), heads[i])
        last = len(rows) if final else int(starts[-1])
        body, carry = rows.take(slice(0, last)), rows.take(slice(last, None))
        if len(body):
            ends = np.append(starts, len(rows)) if final else starts
            codes = np.repeat(np.arange(len(ends) - 1), np.diff(ends))
            yield pool_rows(body, groups, opts, source, codes=codes)
            # No duplicates to drop (a repeat raised above); np.union1d would import numpy.ma.
            seen = np.sort(np.concatenate((seen, h if final else h[:-1])))
    if carry is not None and len(carry):
        yield pool_rows(carry, groups, opts, source, codes=np.zeros(len(carry), np.int64))


def _partition_of(rows: Rows, groups: Sequence[str], partitions: int) -> np.ndarray:
    """A spill file for every row, from a CRC-32 of its group key (the same in every run)."""
    import zlib

    codes = _factorize(rows.keys, groups)
    starts = np.unique(codes, return_index=True)[1]
    keys = _key_tuples(rows, groups, starts)
    part = np.fromiter(
        (
            zlib.crc32("\x1f".join(map(str, k)).encode("utf-8", "surrogatepass")) % partitions
            for k in keys
        ),
        np.int64,
        len(keys),
    )
    return part[codes]


def partition_batch(
    chunks: Iterable[Rows | pd.DataFrame],
    groups: Sequence[str],
    options: BatchOptions | None = None,
    source: str = "<data>",
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    partitions: int = 64,
    tmpdir: str | None = None,
) -> Iterator[BatchResult]:
    """Pool input in any row order with bounded memory: an external hash partition.

    Pass 1 appends each chunk's rows to one of ``partitions`` spill files chosen by a hash of the
    group key, so every group lands whole in one file; pass 2 loads one file at a time (about
    total rows / partitions rows) and pools it. Within a partition groups come out in order of
    first appearance; partitions come out in turn.
    """
    import pickle
    import tempfile

    opts = (options or BatchOptions()).checked()
    groups = list(groups)
    partitions = max(1, int(partitions))
    with tempfile.TemporaryDirectory(prefix="ivigmeta-batch-", dir=tmpdir) as tmp:
        files: dict[int, Any] = {}
        try:
            for chunk in chunks:
                rows = _as_rows(chunk, groups, source)
                if not len(rows):
                    continue
                part = _partition_of(rows, groups, partitions)
                order = np.argsort(part, kind="stable")
                bounds = np.flatnonzero(np.diff(part[order])) + 1
                for piece in np.split(order, bounds):
                    p = int(part[piece[0]])
                    if p not in files:
                        files[p] = open(f"{tmp}/part{p:05d}.pkl", "wb")
                    pickle.dump(rows.take(piece), files[p], protocol=pickle.HIGHEST_PROTOCOL)
        finally:
            for f in files.values():
                f.close()
        pending: list[Rows] = []
        pending_rows = 0
        for p in sorted(files):
            pieces = []
            with open(f"{tmp}/part{p:05d}.pkl", "rb") as f:
                while True:
                    try:
                        pieces.append(pickle.load(f))
                    except EOFError:
                        break
            part_rows = Rows.concat(pieces)
            part_rows = part_rows.take(np.argsort(part_rows.row, kind="stable"))
            pending.append(part_rows)
            pending_rows += len(part_rows)
            if pending_rows >= chunk_rows:
                yield pool_rows(Rows.concat(pending), groups, opts, source)
                pending, pending_rows = [], 0
        if pending:
            yield pool_rows(Rows.concat(pending), groups, opts, source)


def suggested_partitions(total_bytes: int | None, chunk_rows: int) -> int:
    """Spill files for unsorted input: enough that one holds about chunk_rows rows or fewer
    (assuming at least 24 bytes per CSV row), 256 when the size is unknown (standard input)."""
    if total_bytes is None:
        return 256
    return max(1, min(4096, math.ceil(total_bytes / (24 * max(1, chunk_rows)))))
