"""``metareg --contrast`` against metafor's anova(fit, L = ...) (tests/reference/
metafor_contrasts.json, written by tests/reference/make_reference_contrasts.R: dat.bcg log RR,
mods ~ ablat + alloc with reference level "random", REML and DL, test z and knha; one, two and
three rows of L), run through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import counts_csv
from tolerances import CLOSED_FORM, ITERATIVE, close

from ivigmeta.cli import cli

REF = json.loads((Path(__file__).parent / "reference" / "metafor_contrasts.json").read_text())
NAMES = {"intrcpt": "intercept", "ablat": "ablat"}


def _name(r_name: str) -> str:
    return NAMES.get(r_name, r_name.replace("alloc", "alloc=", 1))


def _run(*args: str):
    return CliRunner().invoke(cli, list(args))


@pytest.fixture(scope="module")
def bcg(tmp_path_factory) -> str:
    return counts_csv(
        tmp_path_factory.mktemp("contrasts") / "bcg.csv", REF["data"], ("ablat", "alloc")
    )


def _spec(row: list[float], names: list[str]) -> str:
    return ",".join(f"{_name(n)}={w:g}" for n, w in zip(names, row) if w)


@pytest.mark.parametrize(
    "rec", REF["tests"], ids=lambda r: f"{r['method']}-{r['test']}-{r['name']}"
)
def test_contrasts_match_anova_L(bcg, rec):
    args = ["metareg", bcg, "--mod", "ablat", "--mod", "alloc", "--tau2", rec["method"]]
    args += ["--ci", "hk" if rec["test"] == "knha" else "z", "--format", "json"]
    for row in rec["L"]:
        args += ["--contrast", _spec(row, rec["coef_names"])]
    out = _run(*args)
    assert out.exit_code == 0, out.output
    d = json.loads(out.stdout)
    rel = ITERATIVE if rec["method"] == "REML" else CLOSED_FORM
    for i, c in enumerate(d["contrasts"]):
        assert close(c["estimate"], rec["estimate"][i], rel)
        assert close(c["se"], rec["se"][i], rel)
        assert close(c["statistic"], rec["zval"][i], rel)
        assert close(c["p_value"], rec["pval"][i], rel)
        assert c["df"] == (None if rec["test"] == "z" else 13 - 4)
    joint = d["contrast_test"]
    if len(rec["L"]) == 1:
        assert joint is None
    else:
        assert close(joint["statistic"], rec["QM"], rel) and close(
            joint["p_value"], rec["QMp"], rel
        )
        assert joint["df"] == rec["QMdf"][0]
        assert joint["df2"] == rec["QMdf"][1]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("ablat", "expected COEF=WEIGHT"),
        ("nosuch=1", "'nosuch' is not a coefficient"),
        ("ablat=0", "every weight is 0"),
        ("ablat=x", "expected COEF=WEIGHT"),
    ],
)
def test_bad_contrasts(bcg, spec, message):
    out = _run("metareg", bcg, "--mod", "ablat", "--contrast", spec)
    assert out.exit_code == 1, out.output
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: --contrast") and message in last


def test_dependent_rows_are_an_error(bcg):
    out = _run("metareg", bcg, "--mod", "ablat", "--contrast", "ablat=1", "--contrast", "ablat=2")
    assert out.exit_code == 1 and "linearly dependent" in out.stderr


def test_table_lines(bcg):
    out = _run("metareg", bcg, "--mod", "ablat", "--contrast", "intercept=1,ablat=30",
               "--contrast", "ablat=1")  # fmt: skip
    assert out.exit_code == 0
    assert "Contrast intercept=1,ablat=30: " in out.stdout
    assert "Joint test of the contrasts: QM = " in out.stdout


def test_a_glmm_contrast_of_one_coefficient_is_that_coefficient(bcg):
    """The GLMM meta-regression's coefficients and Var(b) go through the same arithmetic: L = e_j
    gives coefficient j's own estimate, SE, test and CI."""
    out = _run("metareg", bcg, "--mod", "ablat", "--glmm", "UM.FS", "--measure", "OR",
               "--contrast", "ablat=1", "--format", "json")  # fmt: skip
    assert out.exit_code == 0, out.output
    d = json.loads(out.stdout)
    coef = next(c for c in d["coefficients"] if c["name"] == "ablat")
    con = d["contrasts"][0]
    for key in ("estimate", "se", "statistic", "p_value", "ci_low", "ci_high"):
        assert close(con[key], coef[key], 1e-12), key
