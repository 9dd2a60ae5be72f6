"""Case-deletion influence diagnostics of a meta-regression (Viechtbauer & Cheung 2010), as
metafor 3.8-1's ``influence()`` and ``baujat()`` compute them for ``rma(yi, vi, mods = ...)``
(random-effects with any tau² estimator, or ``method = "FE"``), and the leave-one-out
coefficients.

Full model: design X (k x p, intercept first), tau², W = diag(w), w = 1 / (v + tau²),
beta = (X'WX)^-1 X'W y, Var(beta) = vb = s² (X'WX)^-1 (s² = 1 under z, the Knapp-Hartung factor
under hk), fitted values X beta, hat values h_i = [X (X'WX)^-1 X'W]_ii (1 when within 10 eps of
1). Refitted without study i with the same options: tau²_(-i), beta_(-i), vb_(-i), s²_(-i),
QE_(-i); x_i is the study's row of X.

* rstudent_i = (y_i - x_i beta_(-i)) / sqrt(v_i s²_(-i) + x_i vb_(-i) x_i' + tau²_(-i) s²_(-i));
* DFFITS_i = (x_i beta - x_i beta_(-i)) / sqrt(s²_(-i) h_i (tau²_(-i) + v_i));
* DFBETAS_ij = (beta_j - beta_(-i)j) / sqrt(s²_(-i) [(X' W_(-i) X)^-1]_jj), with
  W_(-i) = diag(1 / (v + tau²_(-i))) over all k studies;
* Cook's distance D_i = (beta - beta_(-i))' vb^-1 (beta - beta_(-i));
* COVRATIO_i = det vb_(-i) / det vb;
* weight = 100 w_i / sum w;
* influential (metafor 3.8): |DFFITS| > 3 sqrt(p / (k - p)), P(chi²_p <= D) > 0.5, h > 3 p / k
  or any |DFBETAS| > 1; a study whose refit fails (k - 1 <= p, a coefficient no longer
  estimable without it, an iterative estimator not converging) has no case-deletion values
  (metafor's NA) and is flagged by its hat value alone;
* Baujat et al. (2002), as metafor's ``baujat()``: x_i = e_i² / (tau² + v_i) with e_i = y_i -
  x_i beta (squared Pearson residual), y_i = (x_i beta_(-i) - x_i beta)² / (x_i vb_(-i) x_i').

With X a column of ones these are the diagnostics of the intercept-only model (of
:mod:`ivigmeta.methods.influence`). numpy is imported inside the functions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ivigmeta.core.distributions import chi2_ppf, chi2_sf
from ivigmeta.errors import ModelError
from ivigmeta.methods.blup import COMMON_EFFECT, deleted_residual, hat_matrix, wls_fit
from ivigmeta.results import EffectSizes, Exclusion, InfluenceRow, ModeratorInfluence

_RESID_ZERO = 100 * 2.220446049250313e-16
_EPS = 2.220446049250313e-16


def _check_options(tau2_method: str, ci_method: str) -> str:
    from ivigmeta.core.tau2 import check_tau2_method

    if ci_method not in ("z", "hk"):
        raise ModelError(
            f"influence diagnostics with moderators offer --ci z or hk (not '{ci_method}')"
        )
    if tau2_method.upper() == COMMON_EFFECT:
        return COMMON_EFFECT
    method = check_tau2_method(tau2_method)
    if method == "GENQ":
        raise ModelError("influence diagnostics with moderators do not offer --tau2 GENQ")
    return method


def _empty_row(  # type: ignore[no-untyped-def]
    study, hat: float, weight: float, baujat_x: float, names: Sequence[str], note: str, cut: float
) -> InfluenceRow:
    """A study whose refit failed: metafor's NA, flagged only when its hat value exceeds the
    cut-off ``cut`` (metafor's ``NA | TRUE``)."""
    flagged = hat > cut
    return InfluenceRow(
        study,
        None,
        None,
        None,
        None,
        None,
        None,
        hat,
        weight,
        None,
        flagged,
        ("hat",) if flagged else (),
        baujat_x,
        None,
        note=note,
        coefficient_names=tuple(names),
    )


def influence_mods(
    es: EffectSizes,
    X: Any,
    names: Sequence[str],
    tau2_method: str = "DL",
    ci_method: str = "z",
    excluded: Sequence[Exclusion] = (),
    studies: Sequence[int] | None = None,
    references: Mapping[str, str] | None = None,
) -> ModeratorInfluence:
    """Influence diagnostics of every study (rows ``studies`` of ``es``) of the model on design
    ``X`` (intercept first; coefficient ``names``), by ``tau2_method`` (or ``"FE"``)."""
    import numpy as np

    from ivigmeta.core.tau2 import make_design

    method = _check_options(tau2_method, ci_method)
    hk = ci_method == "hk"
    keep = list(range(es.k)) if studies is None else list(studies)
    y = np.asarray([es.yi[i] for i in keep], dtype=float)
    v = np.asarray([es.vi[i] for i in keep], dtype=float)
    X = np.asarray(X, dtype=float)
    k, p = X.shape
    if k < 2:
        raise ModelError(f"influence diagnostics need at least 2 studies (have {k})")
    if k <= p:
        raise ModelError(f"a model with {p} coefficients needs more than {p} studies (have {k})")
    if np.linalg.matrix_rank(X) < p:
        raise ModelError(
            "a moderator is constant or perfectly collinear with the others in the studies "
            "analysed: drop it"
        )
    try:
        tau2, beta, vb, _ = wls_fit(y, v, X, method, hk)
        vb_inv = np.linalg.inv(vb)
        det_vb = float(np.linalg.det(vb))
    except np.linalg.LinAlgError:
        raise ModelError("the model is numerically singular") from None
    w = 1.0 / (v + tau2)
    weight = 100.0 * w / np.sum(w)
    hats = np.diag(hat_matrix(X, w)).copy()
    hats[hats > 1 - 10 * _EPS] = 1.0
    fitted = X @ beta
    resid = y - fitted
    resid[np.abs(resid) < _RESID_ZERO] = 0.0
    baujat_x = resid * resid / (tau2 + v)
    if not (np.all(np.isfinite(hats)) and np.all(np.isfinite(baujat_x)) and det_vb > 0):
        raise ModelError("influence diagnostics not computable: the model is numerically singular")
    dffits_cut = 3.0 * math.sqrt(p / (k - p))
    hat_cut = 3.0 * p / k
    rows = []
    for i in range(k):
        study = es.studies[keep[i]]
        hat = float(hats[i])
        others = [j for j in range(k) if j != i]
        Xd = X[others]

        def empty(note: str, i: int = i, study: Any = study, hat: float = hat) -> InfluenceRow:
            return _empty_row(
                study, hat, float(weight[i]), float(baujat_x[i]), names, note, hat_cut
            )

        if k - 1 <= p:
            rows.append(empty(f"the model has {p} coefficients and only {k - 1} other studies"))
            continue
        if np.linalg.matrix_rank(Xd) < p:
            rows.append(empty("without this study a coefficient cannot be estimated (metafor: NA)"))
            continue
        try:
            t_d, b_d, vb_d, s2_d = wls_fit(y[others], v[others], Xd, method, hk)
            qe_d = float(make_design(list(y[others]), list(v[others]), Xd).q(np.zeros(1))[0][0])
            xi = X[i]
            pred_d = float(xi @ b_d)
            vpred_d = float(xi @ vb_d @ xi)
            student = deleted_residual(y[i], v[i], xi, t_d, b_d, vb_d, s2_d)
            dfb = beta - b_d
            vb_del = np.linalg.inv((X.T * (1.0 / (v + t_d))) @ X)
            dfbs = dfb / np.sqrt(s2_d * np.diag(vb_del))
            values: dict[str, Any] = {
                "rstudent": student.z,
                "dffits": (float(fitted[i]) - pred_d) / math.sqrt(s2_d * hat * (t_d + v[i])),
                "cook_d": float(dfb @ vb_inv @ dfb),
                "cov_r": float(np.linalg.det(vb_d)) / det_vb,
                "tau2_del": t_d,
                "qe_del": qe_d,
                "baujat_y": (pred_d - float(fitted[i])) ** 2 / vpred_d,
            }
        except ModelError as exc:  # e.g. the refit did not converge (metafor: NA)
            rows.append(empty(str(exc)))
            continue
        except (np.linalg.LinAlgError, ArithmeticError, ValueError):
            rows.append(empty("the refit without this study is numerically singular"))
            continue
        dfbs_t = tuple(float(x) for x in dfbs)
        if any(math.isnan(x) for x in (*values.values(), *dfbs_t)):
            rows.append(empty("not computable in double precision"))
            continue
        largest = max(dfbs_t, key=abs)
        reasons = []
        if abs(values["dffits"]) > dffits_cut:
            reasons.append("dffits")
        if chi2_sf(values["cook_d"], p) < 0.5:
            reasons.append("cook_d")
        if hat > hat_cut:
            reasons.append("hat")
        if any(abs(x) > 1.0 for x in dfbs_t):
            reasons.append("dfbetas")
        rows.append(
            InfluenceRow(
                study=study,
                hat=hat,
                weight=float(weight[i]),
                dfbetas=largest,
                influential=bool(reasons),
                reasons=tuple(reasons),
                baujat_x=float(baujat_x[i]),
                coefficient_names=tuple(names),
                dfbetas_all=dfbs_t,
                beta_del=tuple(float(b) for b in b_d),
                **values,
            )
        )
    return ModeratorInfluence(
        measure=es.measure,
        k=k,
        tau2_method=method,
        ci_method=ci_method,
        tau2=tau2,
        coefficients=tuple((n, float(b)) for n, b in zip(names, beta)),
        rows=tuple(rows),
        dffits_cutoff=dffits_cut,
        # P(chi²_p <= D) > 0.5 exactly when D exceeds the median of chi² on p df.
        cook_d_cutoff=chi2_ppf(0.5, p),
        hat_cutoff=hat_cut,
        excluded=tuple(excluded),
        references=tuple((references or {}).items()),
    )


def influence_mods_analysis(
    es: EffectSizes,
    columns: Sequence[str] = (),
    tau2_method: str = "DL",
    ci_method: str = "z",
    ref: Mapping[str, str] | None = None,
    categorical: Sequence[str] = (),
) -> ModeratorInfluence:
    """:func:`influence_mods` of the meta-regression on moderator ``columns`` (built as
    ``metareg`` builds them; studies with an empty moderator are excluded and listed), or of
    the intercept-only model without ``columns`` (``tau2_method="FE"``: the common-effect one)."""
    import numpy as np

    from ivigmeta.methods.metareg import build_moderators

    if not columns:
        return influence_mods(
            es, np.ones((es.k, 1)), ("intercept",), tau2_method, ci_method, es.excluded
        )
    mods = build_moderators(es, columns, ref, categorical)
    if not mods.keep:
        reasons = "; ".join(f"{e.study}: {e.reason}" for e in mods.excluded + es.excluded)
        raise ModelError(
            "no usable studies for the influence diagnostics"
            + (f" (excluded: {reasons})" if reasons else "")
        )
    return influence_mods(
        es,
        mods.X,
        mods.names,
        tau2_method,
        ci_method,
        mods.excluded + es.excluded,
        mods.keep,
        mods.references,
    )


__all__ = ["influence_mods", "influence_mods_analysis"]
