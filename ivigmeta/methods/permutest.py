"""Permutation tests of a meta-regression (metafor's ``permutest()`` of an ``rma.uni`` fit;
Higgins & Thompson 2004, Viechtbauer et al. 2015).

The model is refitted to permuted data with the same options (tau² estimator, interval method,
model): for a model with moderators the rows of the design X are permuted against (y, v); for
an intercept-only model the signs of the effects are flipped. For each coefficient the
two-sided p-value is the share of the permutations whose |statistic| (z, or t under hk/adhoc)
is at least the observed |statistic| less a tolerance of sqrt(machine epsilon); the omnibus
p-value the share whose QM (F under hk/adhoc) is at least the observed QM less that tolerance.

* **Exact test**: when the number of distinct permutations (k! / prod n_g! for groups of
  identical design rows; 2^k sign vectors) is at most the ``iterations`` asked for, every one
  of them is used once, as metafor does; the observed arrangement is among them.
* **Approximate test**: otherwise ``iterations`` random permutations (numpy's generator from
  ``seed``), the first replaced by the observed data, as metafor does. metafor's random draws
  come from R's generator: approximate p-values agree with metafor's only in distribution.

A refit that fails (an iterative estimator not converging) is left out of the shares and
counted in ``failed``, as metafor's ``na.rm = TRUE``.

numpy is imported inside the functions.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Iterator, Sequence

from ivigmeta.errors import ModelError
from ivigmeta.results import MetaRegression, PermutationTest

_TOL = math.sqrt(2.220446049250313e-16)  # metafor's comptol = .Machine$double.eps^0.5
MAX_ITERATIONS = 10_000_000


def distinct_permutation_count(groups: Sequence[int]) -> int:
    """k! / prod(n_g!): the number of distinct orderings of ``groups`` (one label per row)."""
    counts: dict[int, int] = {}
    for g in groups:
        counts[g] = counts.get(g, 0) + 1
    total = math.factorial(len(groups))
    for n in counts.values():
        total //= math.factorial(n)
    return total


def distinct_permutations(groups: Sequence[int]) -> Iterator[list[int]]:
    """Every distinct ordering of the multiset ``groups``, in lexicographic order."""
    seq = sorted(groups)
    n = len(seq)
    while True:
        yield list(seq)
        i = n - 2
        while i >= 0 and seq[i] >= seq[i + 1]:
            i -= 1
        if i < 0:
            return
        j = n - 1
        while seq[j] <= seq[i]:
            j -= 1
        seq[i], seq[j] = seq[j], seq[i]
        seq[i + 1 :] = reversed(seq[i + 1 :])


def row_groups(design: Sequence[Sequence[float]]) -> list[int]:
    """A label per design row; identical rows share one."""
    seen: dict[tuple[float, ...], int] = {}
    return [seen.setdefault(tuple(row), len(seen)) for row in design]


def permutation_test(
    reg: MetaRegression, iterations: int = 1000, seed: int | None = None
) -> PermutationTest:
    """The permutation test of the fitted meta-regression ``reg`` (module docstring)."""
    import numpy as np

    from ivigmeta.core.regression import regression_fit

    if iterations < 2:
        raise ModelError(f"--permutations must be at least 2 (got {iterations})")
    if iterations > MAX_ITERATIONS:
        raise ModelError(f"--permutations is at most {MAX_ITERATIONS:,} (got {iterations:,})")
    y = np.asarray(reg.yi, dtype=float)
    v = np.asarray(reg.vi, dtype=float)
    X = np.asarray(reg.design, dtype=float)
    k, p = X.shape
    int_only = p == 1
    method, ci, model = reg.tau2_method, reg.ci_method, reg.model
    observed = np.asarray([c.statistic for c in reg.coefficients])
    obs_qm = reg.qm

    if int_only:
        exact_count = 2**k
    else:
        groups = row_groups(reg.design)
        exact_count = distinct_permutation_count(groups)
    exact = exact_count <= iterations
    if not exact and seed is None:
        # A seed drawn here and reported, so that the approximate test can be repeated.
        seed = secrets.randbelow(2**31)

    def arrangements() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(y, X) of each permutation."""
        if int_only:
            if exact:
                for code in range(exact_count):
                    signs = np.asarray([-1.0 if code >> i & 1 else 1.0 for i in range(k)])
                    yield signs * y, X
            else:
                rng = np.random.default_rng(seed)
                yield y, X
                for _ in range(iterations - 1):
                    yield rng.choice((-1.0, 1.0), size=k) * y, X
            return
        if exact:
            # Rows of each group in file order; a distinct arrangement of the group labels
            # places them (which row of a group goes where does not change the design).
            members: dict[int, list[int]] = {}
            for i, g in enumerate(groups):
                members.setdefault(g, []).append(i)
            for labels in distinct_permutations(groups):
                taken = {g: iter(rows) for g, rows in members.items()}
                order = [next(taken[g]) for g in labels]
                yield y, X[order]
        else:
            rng = np.random.default_rng(seed)
            yield y, X
            for _ in range(iterations - 1):
                yield y, X[rng.permutation(k)]

    stats: list[np.ndarray] = []
    qms: list[float] = []
    failed = 0
    for y_p, X_p in arrangements():
        try:
            rf = regression_fit(y_p, v, X_p, method, ci, model)
        except (ModelError, np.linalg.LinAlgError, ArithmeticError, ValueError):
            failed += 1
            continue
        stats.append(rf.statistics)
        if rf.qm is not None:
            qms.append(rf.qm)
    if not stats:
        raise ModelError("the permutation test failed: no permuted model could be fitted")
    S = np.abs(np.asarray(stats))
    p_values = tuple(float(np.mean(S[:, j] >= abs(observed[j]) - _TOL)) for j in range(p))
    if int_only:
        # metafor's QM of an intercept-only model is z²: its p-value is the coefficient's.
        qm_p: float | None = p_values[0]
    else:
        assert obs_qm is not None
        qm_p = float(np.mean(np.asarray(qms) >= obs_qm - _TOL)) if qms else None
    return PermutationTest(
        iterations=exact_count if exact else iterations,
        exact=exact,
        seed=None if exact else seed,
        coefficients=tuple(c.name for c in reg.coefficients),
        p_values=p_values,
        qm_p_value=qm_p,
        failed=failed,
    )


__all__ = [
    "permutation_test",
    "distinct_permutation_count",
    "distinct_permutations",
    "row_groups",
]
