"""Tolerances for comparisons with metafor, named by kind of quantity, in one place.

All comparisons are relative (|ours - metafor| <= rel * |metafor|) with, where a quantity can be
exactly 0, an absolute floor. Each looser value is explained where it is defined.
"""

from __future__ import annotations

import math

#: Closed-form quantities (effect sizes, Q, DL/HE/SJ tau², pooled estimates, weights, p-values):
#: both sides are the same formula in double precision.
CLOSED_FORM = 1e-9
#: Estimates that depend on an iterative tau² (PM root, Fisher-scored ML/REML compared with
#: tests/reference `rma_tight`) or on a root search (the Q-profile bounds, uniroot tol 1e-12):
#: metafor's root is accurate to about 1e-12 absolute; relative 1e-7 leaves margin for tau² ~ 1e-4.
ITERATIVE = 1e-7
#: p-values: metafor uses R's pchisq/pnorm/pt, we use our own tails (1e-14 relative) or scipy.
P_VALUE = 1e-8
#: Absolute floor for quantities that are 0 at the boundary (tau², I², H² - 1, Q-profile bounds).
ABS_FLOOR = 1e-12

#: metafor's default-threshold ML/REML fits (the `rma` block, control threshold = 1e-10) stop
#: when the tau² step is below 1e-10 in absolute terms. Near the boundary Fisher scoring converges
#: linearly, so metafor stops up to ~3e-10 short of the optimum (nielweise2007 RD ML: 5.91635e-5
#: vs 5.91632e-5, which metafor itself reaches with threshold 1e-16; lau1992 ML: 5e-12 instead
#: of 0). Against that block tau² is compared with this absolute tolerance, and quantities derived
#: from tau² with a relative 1e-5; the strict comparison is with the `rma_tight` block.
METAFOR_STOP_TAU2_ABS = 1e-9
METAFOR_STOP_REL = 1e-5
#: ... and I² (percent) and H² where metafor's tau² is a few 1e-11 instead of the boundary 0
#: (lau1992 RD REML: tau² 3.8e-11 gives I² = 7.6e-6 %).
METAFOR_STOP_I2_ABS = 1e-4
METAFOR_STOP_H2_ABS = 1e-6
#: ... and p-values, whose relative error in the far tail is about z² times that of z
#: (lau1992 RD REML: z = 8.1, p = 6.7e-16).
METAFOR_STOP_P_REL = 1e-3
#: Even with threshold 1e-15 (`rma_tight`) metafor approaches a boundary optimum by halving
#: steps and stops at tau² ~ 1e-16 rather than 0 (lau1992 ML): I² is then ~1e-10 %, not 0.
BOUNDARY_I2_ABS = 1e-8
BOUNDARY_H2_ABS = 1e-10


#: Sensitivity methods (tests/test_cumulative.py, test_influence.py, test_bias.py): REML records
#: are compared with the `cumul_tight`/`influence_tight`/`trimfill_tight` blocks at ITERATIVE.
#: Where metafor's tight refit fails (threshold 1e-15 never reached: nielweise2007 cumulative steps
#: 7 and 10) the default-threshold record is used; it stops a few 1e-10 short in tau², and the
#: pooled estimates then agree to ~1e-9 relative: 1e-6 leaves margin.
CUMUL_STOPPED_SHORT_REL = 1e-6
#: metafor's fsn() returns the fail-safe N already rounded up to a whole number: compared exactly.


def close(ours: float | None, ref: float | None, rel: float, abs_floor: float = ABS_FLOOR) -> bool:
    """True when ``ours`` agrees with ``ref`` to ``rel`` relative or ``abs_floor`` absolute."""
    if ref is None or ours is None:
        return ref is None and (ours is None or not math.isfinite(ours))
    if math.isinf(ref) or math.isinf(ours):
        return ref == ours
    return abs(ours - ref) <= max(rel * abs(ref), abs_floor)


def rel_diff(ours: float, ref: float) -> float:
    """|ours - ref| / |ref| (absolute difference when ref is 0), for reports."""
    if ref == 0:
        return abs(ours)
    return abs(ours - ref) / abs(ref)
