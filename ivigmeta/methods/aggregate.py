"""Dependent effect sizes collapsed into one per cluster: metafor's ``aggregate.escalc``
(Borenstein et al. 2009, ch. 24, "Multiple outcomes or time-points within a study").

Within a cluster with effects y (k of them) and sampling variances v, the sampling
covariance matrix is V = S R S with S = diag(sqrt(v)) and the correlation matrix R (ones on its
diagonal) given by the structure:

* ``ID``: R = I (independent effects);
* ``CS``: compound symmetry, R_ij = rho;
* ``CAR``: continuous-time autoregressive, R_ij = phi^|t_i - t_j| for the times t;
* ``CS+CAR``: R_ij = rho + (1 - rho) phi^|t_i - t_j|.

The aggregated effect is the GLS (inverse-variance) combination y_c = 1'V^-1 y / 1'V^-1 1 with
variance v_c = 1 / 1'V^-1 1; unweighted, y_c = mean(y) with v_c = 1'V 1 / k². A cluster whose
V is not positive definite (its smallest eigenvalue at most the machine epsilon, metafor's
``checkpd``; scaled by the largest eigenvalue when that exceeds 1) is an error, as in metafor.

The other columns are aggregated as metafor's defaults do: the mean of the non-empty values of
a numeric (or TRUE/FALSE) column, the most frequent value of a text column (ties: the last in
sorted order, as R's ``tail(names(sort(table(x))), 1)``). The study label and the count,
outcome and effect columns are not carried (each cluster is labelled by its cluster value; its
yi and vi replace the effects); the year column is carried as ``year`` when it is constant within
every cluster, else as its mean under ``year_mean``.

numpy is imported inside the functions: ``pool`` never loads this module.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ivigmeta.errors import DataError, ModelError
from ivigmeta.results import AggregatedCluster, Aggregation, EffectSizes

if TYPE_CHECKING:
    from ivigmeta.io.studies import Study, StudyTable

STRUCTS = ("ID", "CS", "CAR", "CS+CAR")
#: structures that take rho / phi (and a time column)
RHO_STRUCTS = ("CS", "CS+CAR")
PHI_STRUCTS = ("CAR", "CS+CAR")
#: names the aggregated table writes itself (a column of the input so named is not carried)
OWN_COLUMNS = ("study", "yi", "vi", "measure", "ki")
YEAR_COLUMN = "year"
#: how many rows an error about empty cells names before "and N more"
NAMED_ROWS = 5
TRUE_FALSE = {"TRUE": 1.0, "FALSE": 0.0, "True": 1.0, "False": 0.0, "true": 1.0, "false": 0.0}


def check_struct(struct: str) -> str:
    """``struct`` in metafor's spelling (``ID``, ``CS``, ``CAR``, ``CS+CAR``); else a ModelError."""
    s = str(struct).upper()
    if s not in STRUCTS:
        raise ModelError(f"unknown struct '{struct}' (expected one of {', '.join(STRUCTS)})")
    return s


def combine(
    yi: Sequence[float],
    vi: Sequence[float],
    groups: Sequence[Sequence[int]],
    struct: str = "CS",
    rho: Sequence[float] | None = None,
    phi: Sequence[float] | None = None,
    time: Sequence[float] | None = None,
    weighted: bool = True,
    names: Sequence[str] | None = None,
) -> tuple[list[float], list[float]]:
    """The aggregated ``(yi, vi)`` of each cluster: ``groups[c]`` holds the indices of cluster
    c's effects; ``rho`` and ``phi`` one value per cluster (for the structures that take them),
    ``time`` one per effect (CAR, CS+CAR). ``names`` label the clusters in messages.

    Raises
    ------
    ModelError
        A cluster's V is not positive definite, or its inverse cannot be taken.
    """
    import numpy as np

    y = np.asarray(yi, dtype=float)
    v = np.asarray(vi, dtype=float)
    struct = check_struct(struct)
    labels = list(names) if names is not None else [str(i + 1) for i in range(len(groups))]
    t = np.asarray(time, dtype=float) if time is not None else None
    eps = np.finfo(float).eps
    out_y: list[float] = []
    out_v: list[float] = []
    for c, members in enumerate(groups):
        idx = np.asarray(members, dtype=int)
        yc, vc = y[idx], v[idx]
        k = len(idx)
        if struct == "ID":
            R = np.eye(k)
        else:
            if struct in PHI_STRUCTS:
                if t is None or phi is None:
                    raise ModelError(f"--struct {struct} needs a time column and phi")
                tc = t[idx]
                car = float(phi[c]) ** np.abs(tc[:, None] - tc[None, :])
            if struct == "CS":
                R = np.full((k, k), float(rho[c]) if rho is not None else 0.0)
            elif struct == "CAR":
                R = car
            else:  # CS+CAR
                r = float(rho[c]) if rho is not None else 0.0
                R = r + (1.0 - r) * car
            np.fill_diagonal(R, 1.0)
        s = np.sqrt(vc)
        V = R * np.outer(s, s)
        eig = np.linalg.eigvalsh(V)
        if not np.all(np.isfinite(eig)) or eig[0] <= eps * max(1.0, float(eig[-1])):
            raise ModelError(not_positive_definite(labels[c], struct, rho, phi, c))
        if weighted:
            try:
                w = np.linalg.solve(V, np.ones(k))
            except np.linalg.LinAlgError:
                raise ModelError(f"cannot take the inverse of V in cluster '{labels[c]}'") from None
            total = float(w.sum())
            if not (math.isfinite(total) and total > 0):
                raise ModelError(f"cannot take the inverse of V in cluster '{labels[c]}'")
            out_y.append(float(w @ yc) / total)
            out_v.append(1.0 / total)
        else:
            out_y.append(float(yc.mean()))
            out_v.append(float(V.sum()) / k**2)
    return out_y, out_v


def not_positive_definite(
    label: str,
    struct: str,
    rho: Sequence[float] | None,
    phi: Sequence[float] | None,
    c: int,
) -> str:
    what = []
    if rho is not None and struct in RHO_STRUCTS:
        what.append(f"rho = {float(rho[c]):g}")
    if phi is not None and struct in PHI_STRUCTS:
        what.append(f"phi = {float(phi[c]):g}")
    given = f" with {', '.join(what)}" if what else ""
    return (
        f"the sampling covariance matrix V of cluster '{label}' is not positive definite "
        f"({struct}{given}): its effects cannot be aggregated (a negative rho allows at most "
        "1 / (k - 1) in absolute value for k effects; metafor's aggregate() refuses it too)"
    )


# ---------------------------------------------------------------------------------------------
# From the study table


def _where(study: Study, column: str) -> str:
    return study.where(column)


def _rows_text(studies: Sequence[Study]) -> str:
    named = ", ".join(str(s.row) for s in studies[:NAMED_ROWS])
    more = f" and {len(studies) - NAMED_ROWS} more" if len(studies) > NAMED_ROWS else ""
    return f"row{'s' if len(studies) > 1 else ''} {named}{more}"


def cluster_values(studies: Sequence[Study], column: str, source: str) -> list[str]:
    """Each study's cluster (the stripped cell of ``column``). An empty cell is a DataError
    naming the file, the row(s) and the column: metafor's aggregate() allows no missing
    cluster, and leaving the effect out silently would change the cluster it belongs to."""
    labels = [s.fields.get(column, "").strip() for s in studies]
    empty = [s for s, c in zip(studies, labels) if not c]
    if empty:
        raise DataError(
            f"{source}, {_rows_text(empty)}, column '{column}': no cluster value (expected a "
            "label: every effect needs a cluster; an effect in a cluster of its own needs a "
            "label of its own)"
        )
    return labels


def _number(study: Study, column: str, what: str) -> float:
    raw = study.fields.get(column, "").strip()
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        shown = f"'{raw}'" if raw else "missing value"
        raise DataError(f"{_where(study, column)}: {shown} is not a number (expected {what})")
    return value


def per_cluster(
    studies: Sequence[Study],
    groups: Sequence[Sequence[int]],
    names: Sequence[str],
    column: str,
    option: str,
    low: float,
) -> list[float]:
    """One value per cluster from ``column`` (``--rho COL``, ``--phi COL``): a number in
    [low, 1], the same in every row of the cluster."""
    out = []
    for members, name in zip(groups, names):
        values = []
        for i in members:
            x = _number(studies[i], column, f"{option}: a correlation in [{low:g}, 1]")
            if not low <= x <= 1:
                raise DataError(
                    f"{_where(studies[i], column)}: {x:g} is outside [{low:g}, 1] "
                    f"(expected {option}: a correlation in [{low:g}, 1])"
                )
            values.append(x)
        if any(x != values[0] for x in values):
            other = next(i for i, x in zip(members, values) if x != values[0])
            raise DataError(
                f"{_where(studies[other], column)}: {values[members.index(other)]:g} differs "
                f"from {values[0]:g} in row {studies[members[0]].row} of the same cluster "
                f"'{name}' (expected one {option} per cluster)"
            )
        out.append(values[0])
    return out


def check_correlation(value: float, option: str, low: float) -> float:
    x = float(value)
    if not low <= x <= 1:
        raise ModelError(f"{option} {x:g} is outside [{low:g}, 1] (expected a correlation)")
    return x


def _as_number(cell: str) -> float | None:
    try:
        x = float(cell)
    except ValueError:
        return None
    return x if math.isfinite(x) else None


def column_kind(studies: Sequence[Study], column: str) -> str:
    """``number``, ``logical`` (TRUE/FALSE) or ``text``: how R would read the column (empty
    cells are missing values), over every row of the table."""
    cells = [s.fields.get(column, "").strip() for s in studies]
    filled = [c for c in cells if c]
    if filled and all(c in TRUE_FALSE for c in filled):
        return "logical"
    if all(_as_number(c) is not None for c in filled):
        return "number"
    return "text"


def aggregate_cells(cells: Sequence[str], kind: str) -> float | int | str | None:
    """One cluster's value of a column: metafor's default ``fun`` (mean with na.rm for numbers
    and logicals, the most frequent value for text); ``None`` when every cell is empty."""
    filled = [c.strip() for c in cells if c.strip()]
    if not filled:
        return None
    if kind == "text":
        counts: dict[str, int] = {}
        for c in filled:
            counts[c] = counts.get(c, 0) + 1
        top = max(counts.values())
        return sorted(c for c, n in counts.items() if n == top)[-1]
    values = [TRUE_FALSE[c] if kind == "logical" else float(c) for c in filled]
    n = len(values)
    mean = math.fsum(values) / n
    if math.isfinite(mean):  # R's mean(): a second pass corrects the rounding of the first
        mean += math.fsum(x - mean for x in values) / n
    return int(mean) if mean.is_integer() and abs(mean) < 2**53 else mean


def carried_columns(table: StudyTable, cluster: str) -> list[str]:
    """The input columns aggregated beside yi and vi: every column other than the cluster, the
    study label, the year and the columns the reader uses (counts, outcomes, effects, measure),
    and other than the names the aggregated table writes itself."""
    return [c for c in table.label_columns() if c != cluster and c not in OWN_COLUMNS]


def aggregate_table(
    table: StudyTable,
    es: EffectSizes,
    cluster: str,
    struct: str = "CS",
    rho: float | str | None = None,
    phi: float | str | None = None,
    time: str | None = None,
    weighted: bool = True,
    measure_known: bool = True,
) -> Aggregation:
    """Aggregate the effects ``es`` of ``table`` within the clusters of column ``cluster``.

    ``rho`` and ``phi`` are numbers, or the name of a column giving one per cluster; ``time`` the
    column of times for CAR and CS+CAR. Clusters are in the order of their first effect.
    """
    struct = check_struct(struct)
    table.require_label_column(cluster)
    studies = es.studies
    labels = cluster_values(studies, cluster, table.source)
    order = list(dict.fromkeys(labels))
    index = {c: i for i, c in enumerate(order)}
    groups: list[list[int]] = [[] for _ in order]
    for i, c in enumerate(labels):
        groups[index[c]].append(i)

    rho_values = rho_scalar = rho_column = None
    phi_values = phi_scalar = phi_column = None
    if struct in RHO_STRUCTS:
        if rho is None:
            raise ModelError(
                f"--struct {struct} needs --rho: the assumed correlation of the effects within a "
                "cluster (a number in [-1, 1], or a column giving one per cluster)"
            )
        if isinstance(rho, str):
            table.require_label_column(rho)
            rho_column = rho
            rho_values = per_cluster(studies, groups, order, rho, "--rho", -1.0)
        else:
            rho_scalar = check_correlation(rho, "--rho", -1.0)
            rho_values = [rho_scalar] * len(order)
    if struct in PHI_STRUCTS:
        if phi is None:
            raise ModelError(
                f"--struct {struct} needs --phi: the autocorrelation of effects one time unit "
                "apart (a number in [0, 1], or a column giving one per cluster)"
            )
        if time is None:
            raise ModelError(
                f"--struct {struct} needs --time COL: the column of each effect's time point "
                "(metafor's time)"
            )
        table.require_label_column(time)
        if isinstance(phi, str):
            table.require_label_column(phi)
            phi_column = phi
            phi_values = per_cluster(studies, groups, order, phi, "--phi", 0.0)
        else:
            phi_scalar = check_correlation(phi, "--phi", 0.0)
            phi_values = [phi_scalar] * len(order)
    times = None
    if struct in PHI_STRUCTS and time is not None:
        times = [_number(s, time, "a time point: a number") for s in studies]

    if not studies:
        raise ModelError(f"{table.source}: no effect to aggregate")
    yc, vc = combine(
        es.yi, es.vi, groups, struct, rho_values, phi_values, times, weighted, names=order
    )

    columns = carried_columns(table, cluster)
    kinds = {c: column_kind(table.studies, c) for c in columns}
    year = YEAR_COLUMN if YEAR_COLUMN in table.columns and cluster != YEAR_COLUMN else None
    year_name = None
    if year is not None:
        constant = all(
            len({studies[i].fields.get(year, "").strip() for i in g}) == 1 for g in groups
        )
        year_name = YEAR_COLUMN if constant else f"{YEAR_COLUMN}_mean"
        kinds[year] = "number"
    carried: list[tuple[str, str]] = [(c, c) for c in columns]
    if year is not None and year_name is not None:
        carried.insert(0, (year, year_name))

    clusters = []
    for j, name in enumerate(order):
        members = groups[j]
        fields: Mapping[str, float | int | str | None] = {
            out: aggregate_cells([studies[i].fields.get(col, "") for i in members], kinds[col])
            for col, out in carried
        }
        clusters.append(
            AggregatedCluster(
                cluster=name,
                k=len(members),
                yi=yc[j],
                vi=vc[j],
                rows=tuple(studies[i].row for i in members),
                labels=tuple(studies[i].study for i in members),
                fields=tuple(fields.items()),
                rho=rho_values[j] if rho_values is not None else None,
                phi=phi_values[j] if phi_values is not None else None,
            )
        )
    return Aggregation(
        measure=str(es.measure),
        cluster=cluster,
        struct=struct,
        weighted=bool(weighted),
        clusters=tuple(clusters),
        columns=tuple(out for _, out in carried),
        rho=rho_scalar,
        rho_column=rho_column,
        phi=phi_scalar,
        phi_column=phi_column,
        time=time if struct in PHI_STRUCTS else None,
        measure_known=measure_known,
        excluded=es.excluded,
    )
