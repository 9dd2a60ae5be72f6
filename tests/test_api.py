"""The public Python API (ivigmeta.api, docs/api.md): the walkthrough runs, the fit answers as the
commands do, every kind of ``data`` gives one result, bad input and a fractional level fail
plainly.

Numbers checked here are the paper's (tests/test_paper.py prints where) or metafor's
(tests/reference/metafor.json); the API's other outputs are checked against the CLI's.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import ROOT, STUDIES
from metafor_ref import block
from tolerances import CLOSED_FORM, ITERATIVE

import ivigmeta
from ivigmeta import DataError, IvigmetaError, ModelError
from ivigmeta.api import MetaAnalysisFit
from ivigmeta.render import render

DOC = ROOT / "docs" / "api.md"

DOUBLE_ZERO = (
    "study,year,treat_events,treat_total,control_events,control_total,nk_criterion,dose\n"
    "A,2001,3,10,1,12,yes,1\n"
    "B,2003,0,20,0,19,no,2\n"
    "C,2002,2,15,6,14,no,\n"
    "D,2005,7,30,9,31,yes,3\n"
    "E,2004,1,8,2,9,no,2\n"
)


def r2(x: float) -> str:
    return f"{x:.2f}"


@pytest.fixture(scope="module")
def fit() -> MetaAnalysisFit:
    return ivigmeta.pool(STUDIES)


@pytest.fixture
def double_zero(tmp_path) -> Path:
    path = tmp_path / "dz.csv"
    path.write_text(DOUBLE_ZERO)
    return path


# ---------------------------------------------------------------------------------------------
# docs/api.md


def python_blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", DOC.read_text(), re.S | re.M)


def test_every_python_block_of_the_api_page_runs(tmp_path, monkeypatch, capsys):
    """The blocks run in order in one namespace from the repository root, as a notebook would;
    tempfile's directory is redirected so that the figures land in tmp_path."""
    blocks = python_blocks()
    assert len(blocks) >= 10
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    namespace: dict = {"__name__": "__api_doc__"}
    for i, code in enumerate(blocks):
        exec(compile(code, f"{DOC}:block {i + 1}", "exec"), namespace)
    out = capsys.readouterr().out
    # The walkthrough's printed claims are the paper's (Abstract; Results' leave-one-out range).
    assert "RR 1.98 [1.44, 2.73]" in out
    assert "without Ramos-Medina: 1.81 [1.31, 2.50]" in out
    assert "without Mahmoud: 2.17 [1.59, 2.96]" in out
    assert "Egger p = 0.362" in out
    assert "MH OR 0.8969" in out and "53 of 53 reproduce" in out
    figures = list(Path(namespace["out"]).iterdir())
    assert sorted(p.name for p in figures) == ["forest.png", "funnel.svg", "nk.pdf"]
    assert all(p.stat().st_size > 0 for p in figures)


def test_api_page_is_listed_in_the_index():
    assert "(api.md)" in (ROOT / "docs" / "index.md").read_text()


# ---------------------------------------------------------------------------------------------
# The paper's numbers through the API


def test_pool_gives_the_papers_pooled_estimate(fit):
    """Abstract: RR 1.98, 95% CI 1.44-2.73, P < 0.0001; Q = 19.36 on 7 df, I² = 63.8%."""
    r = fit.random
    assert (r2(r.estimate), r2(r.ci_low), r2(r.ci_high)) == ("1.98", "1.44", "2.73")
    assert r.p_value < 0.0001
    assert f"{fit.heterogeneity.q:.2f}" == "19.36"
    assert fit.heterogeneity.df == 7
    assert f"{fit.heterogeneity.i2:.1f}" == "63.8"
    assert (fit.k, fit.measure, fit.level, fit.pooled) == (8, "RR", 95.0, True)


def _metafor(name: str, method: str, test: str = "z") -> dict:
    return next(
        r
        for r in block(name)
        if (r["dataset"], r["measure"], r["method"], r["test"]) == ("ivig", "RR", method, test)
    )


def test_pool_matches_metafor_dl_and_reml():
    dl = ivigmeta.pool(STUDIES)
    ref = _metafor("rma", "DL")
    assert math.isclose(dl.random.theta, ref["beta"], rel_tol=CLOSED_FORM)
    assert math.isclose(dl.random.tau2, ref["tau2"], rel_tol=CLOSED_FORM)
    assert math.isclose(dl.common.theta, _metafor("rma", "FE")["beta"], rel_tol=CLOSED_FORM)
    reml = ivigmeta.pool(STUDIES, tau2="reml", ci="hk")
    tight = _metafor("rma_tight", "REML", "knha")
    assert math.isclose(reml.random.theta, tight["beta"], rel_tol=ITERATIVE)
    assert math.isclose(reml.random.ci_low_theta, tight["ci_lb"], rel_tol=ITERATIVE)


def test_methods_give_the_papers_numbers(fit):
    """Results: leave-one-out 1.81 (1.31-2.50) without Ramos-Medina to 2.17 (1.59-2.96) without
    Mahmoud; Egger P = 0.362; meta-regression on the NK criterion p = 0.266 (also Table 3's
    subgroup test)."""
    loo = fit.loo()
    assert (loo.smallest.omitted.study, loo.largest.omitted.study) == ("Ramos-Medina", "Mahmoud")
    assert r2(loo.smallest.analysis.random.estimate) == "1.81"
    assert f"{fit.bias(tests='egger').egger.p_value:.3f}" == "0.362"
    assert f"{fit.subgroup('nk_criterion').by[0].test.p_value:.3f}" == "0.266"
    assert f"{fit.metareg('nk_criterion').qm_p_value:.3f}" == "0.266"
    nk = {lv.level: lv.to_dict() for lv in fit.subgroup(["nk_criterion"]).by[0].levels}
    assert (r2(nk["yes"]["estimate"]), r2(nk["no"]["estimate"])) == ("2.32", "1.73")


# ---------------------------------------------------------------------------------------------
# The API and the CLI give the same answers

OPTION_SETS = [
    ({}, []),
    (
        {"measure": "OR", "tau2": "REML", "ci": "hk", "level": 90},
        ["--measure", "OR", "--tau2", "REML", "--ci", "hk", "--level", "90"],
    ),
    ({"common": "MH"}, ["--common", "MH"]),
    (
        {"measure": "RD", "tau2": "PM", "cc": 0.25, "cc_policy": "all"},
        ["--measure", "RD", "--tau2", "PM", "--cc", "0.25", "--cc-policy", "all"],
    ),
    ({"measure": "OR", "common": "PETO"}, ["--measure", "OR", "--common", "PETO"]),
]


@pytest.mark.parametrize(("kwargs", "args"), OPTION_SETS, ids=lambda v: str(v))
def test_to_dict_is_the_cli_json(run, kwargs, args):
    result = run("pool", str(STUDIES), "--format", "json", *args)
    assert result.exit_code == 0
    assert ivigmeta.pool(STUDIES, **kwargs).to_dict() == json.loads(result.stdout)


@pytest.mark.parametrize("keep", [False, True])
def test_to_dict_is_the_cli_json_with_exclusions(run, double_zero, keep):
    args = ["--keep-double-zero"] if keep else []
    result = run("pool", str(double_zero), "-f", "json", *args)
    fitted = ivigmeta.pool(double_zero, keep_double_zero=keep)
    assert fitted.to_dict() == json.loads(result.stdout)
    assert len(fitted.excluded) == (0 if keep else 1)
    if not keep:
        assert fitted.notes == (f"{double_zero}, row 3: B excluded: {fitted.excluded[0].reason}",)
        assert f"note: {fitted.notes[0]}" in result.stderr


def test_summary_is_the_cli_table(run, fit):
    assert fit.summary() == run("pool", str(STUDIES)).stdout
    assert fit.summary(ascii=True) == run("pool", str(STUDIES), "--ascii").stdout


@pytest.mark.parametrize(
    ("command", "args", "ask"),
    [
        ("loo", [], lambda f: f.loo()),
        ("cumulative", ["--order", "study", "--desc"], lambda f: f.cumulative("study", True)),
        ("influence", [], lambda f: f.influence()),
        (
            "subgroup",
            ["--by", "nk_criterion", "--by", "timing", "--between", "separate"],
            lambda f: f.subgroup(["nk_criterion", "timing"], "separate"),
        ),
        (
            "metareg",
            ["--mod", "nk_criterion", "--mod", "year"],
            lambda f: f.metareg(["nk_criterion", "year"]),
        ),
        (
            "bias",
            ["--test", "egger", "--test", "trimfill", "--side", "right", "--failsafe", "orwin"],
            lambda f: f.bias(["egger", "trimfill"], side="right", failsafe="orwin"),
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_methods_return_what_the_commands_render(run, fit, command, args, ask):
    result = run(command, str(STUDIES), "-f", "json", *args)
    assert result.exit_code == 0, result.output
    assert json.loads(render(ask(fit), command, "json")) == json.loads(result.stdout)


def test_heterogeneity_command_renders_the_fit(run, fit):
    result = run("heterogeneity", str(STUDIES), "-f", "json")
    assert json.loads(render(fit.analysis, "heterogeneity", "json")) == json.loads(result.stdout)


def test_metareg_method_defaults_to_the_fits_options(run):
    fitted = ivigmeta.pool(STUDIES, tau2="REML", ci="hk", level=90)
    cli = run(
        "metareg",
        str(STUDIES),
        "--mod",
        "timing",
        "--tau2",
        "REML",
        "--ci",
        "hk",
        "--level",
        "90",
        "-f",
        "json",
    )
    assert json.loads(render(fitted.metareg("timing"), "metareg", "json")) == json.loads(cli.stdout)


# ---------------------------------------------------------------------------------------------
# Kinds of data


def test_path_dataframe_and_dict_give_identical_results():
    pd = pytest.importorskip("pandas")
    df = pd.read_csv(STUDIES)
    fits = [
        ivigmeta.pool(str(STUDIES)),
        ivigmeta.pool(STUDIES),
        ivigmeta.pool(df),
        ivigmeta.pool(df.to_dict("list")),
        ivigmeta.pool(ivigmeta.read(STUDIES)),
    ]
    first = fits[0]
    for other in fits[1:]:
        assert other.to_dict() == first.to_dict()
        assert other.subgroup("timing").to_dict() == first.subgroup("timing").to_dict()
        assert other.metareg("nk_criterion").to_dict() == first.metareg("nk_criterion").to_dict()
        assert other.cumulative().to_dict() == first.cumulative().to_dict()


def test_dataframe_with_missing_cells_reads_as_the_file(double_zero):
    """pandas reads the empty 'dose' cell as NaN and the column as float: the cells are the
    file's again (empty, and 1 rather than 1.0), and the row numbers are the file's."""
    pd = pytest.importorskip("pandas")
    df = pd.read_csv(double_zero)
    assert df["dose"].dtype.kind == "f"
    from_file = ivigmeta.pool(double_zero)
    from_frame = ivigmeta.pool(df)
    assert from_frame.to_dict() == from_file.to_dict()
    assert from_frame.metareg("dose").to_dict() == from_file.metareg("dose").to_dict()
    assert from_frame.notes == tuple(
        n.replace(str(double_zero), "<DataFrame>") for n in from_file.notes
    )


def test_columns_option_and_other_conventions_apply_to_dicts():
    data = {
        "Trial": ["A", "B", "C"],
        "EvT": [3, 5, 2],
        "NT": [10, 20, 15],
        "EvC": [1, 4, 6],
        "NC": [12, 19, 14],
    }
    spec = "study=Trial,treat_events=EvT,treat_total=NT,control_events=EvC,control_total=NC"
    fitted = ivigmeta.pool(data, columns=spec)
    as_mapping = ivigmeta.pool(data, columns=dict(p.split("=") for p in spec.split(",")))
    assert fitted.to_dict() == as_mapping.to_dict()
    assert [s["study"] for s in fitted.to_dict()["studies"]] == ["A", "B", "C"]


def test_read_returns_a_table_that_pool_accepts():
    table = ivigmeta.read(STUDIES)
    assert len(table.studies) == 8
    assert ivigmeta.read(table) is table
    with pytest.raises(DataError, match="already read"):
        ivigmeta.read(table, sep="comma")
    with pytest.raises(TypeError, match="not int"):
        ivigmeta.read(42)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Bad input


def test_bad_cell_names_file_row_and_column(tmp_path):
    pd = pytest.importorskip("pandas")
    path = tmp_path / "bad.csv"
    path.write_text(
        "study,year,treat_events,treat_total,control_events,control_total\n"
        "A,2001,3,10,1,12\nB,2002,x,11,2,12\n"
    )
    with pytest.raises(DataError, match=re.escape(f"{path}, row 3, column 'treat_events'")):
        ivigmeta.pool(path)
    frame = pd.read_csv(path)
    with pytest.raises(DataError, match=re.escape("<DataFrame>, row 3, column 'treat_events'")):
        ivigmeta.pool(frame)
    with pytest.raises(DataError, match=re.escape("<dict>, row 3, column 'treat_events'")):
        ivigmeta.pool(frame.to_dict("list"))


def test_bad_input_errors_are_ivigmeta_errors(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        ivigmeta.pool(tmp_path / "missing.csv")
    with pytest.raises(DataError, match="differ in length"):
        ivigmeta.pool({"treat_events": [1, 2], "treat_total": [3]})
    with pytest.raises(DataError, match="sep applies to files only"):
        ivigmeta.pool({"treat_events": [1]}, sep="comma")
    with pytest.raises(IvigmetaError, match="Peto"):
        ivigmeta.pool(STUDIES, common="PETO")
    with pytest.raises(DataError, match="no column 'nope'"):
        ivigmeta.pool(STUDIES).subgroup("nope")


def test_single_study_fit_is_not_pooled_and_methods_say_why(tmp_path):
    path = tmp_path / "one.csv"
    path.write_text(
        "study,year,treat_events,treat_total,control_events,control_total\nA,2001,3,10,1,12\n"
    )
    fitted = ivigmeta.pool(path)
    assert (fitted.pooled, fitted.random, fitted.heterogeneity) == (False, None, None)
    assert "not pooled" in repr(fitted)
    for method in ("loo", "influence", "cumulative"):
        with pytest.raises(DataError, match="needs at least 2 usable studies"):
            getattr(fitted, method)()


@pytest.mark.parametrize("level", [0.95, 0.9, 0.5])
def test_fractional_level_is_an_error_naming_the_percentage(level):
    meant = f"{level * 100:g}"
    with pytest.raises(ModelError, match=rf"level={meant}\b"):
        ivigmeta.pool(STUDIES, level=level)
    with pytest.raises(ModelError, match=rf"level={meant}\b"):
        ivigmeta.batch({"g": ["a"], "treat_events": [1]}, by="g", level=level)
    with pytest.raises(ModelError, match=rf"level={meant}\b"):
        ivigmeta.pool(STUDIES).metareg("timing", level=level)


def test_level_outside_0_100_keeps_the_cli_message():
    with pytest.raises(ModelError, match="between 0 and 100 percent, not 100"):
        ivigmeta.pool(STUDIES, level=100)


# ---------------------------------------------------------------------------------------------
# Output of the fit


def test_to_frame_has_the_study_rows(fit):
    pytest.importorskip("pandas")
    frame = fit.to_frame()
    studies = fit.to_dict()["studies"]
    assert list(frame.columns) == list(studies[0])
    assert frame["study"].tolist() == [s["study"] for s in studies]
    assert frame["row"].tolist() == list(range(2, 10))


def test_html_repr_is_an_escaped_table(fit):
    page = fit._repr_html_()
    assert page.count("<table>") == 1
    assert "<caption>Outcomes of the included studies (RR, k = 8)</caption>" in page
    assert "Ramos-Medina (2014)" in page
    odd = ivigmeta.pool(
        {
            "study": ["<b>A</b>", "B & C"],
            "treat_events": [3, 5],
            "treat_total": [10, 20],
            "control_events": [1, 4],
            "control_total": [12, 19],
        }
    )._repr_html_()
    assert "&lt;b&gt;A&lt;/b&gt;" in odd and "B &amp; C" in odd and "<b>A" not in odd


def test_repr_names_the_random_effects_estimate(fit):
    assert repr(fit).startswith("<MetaAnalysisFit RR, k=8, random effects (DL, z): 1.984 [1.442,")


@pytest.mark.parametrize(
    ("kind", "options"),
    [
        ("forest", {"model": "both"}),
        ("radial", {}),
        ("loo", {}),
        ("funnel", {"contour": True}),
        ("baujat", {}),
        ("influence", {}),
        ("subgroup", {"by": "timing"}),
    ],
)
def test_plot_returns_the_figure_and_writes_it(fit, tmp_path, kind, options):
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    assert isinstance(fit.plot(kind, **options), Figure)
    target = tmp_path / f"{kind}.svg"
    fig = fit.plot(kind, target, **options)
    assert isinstance(fig, Figure)
    assert target.read_text().lstrip().startswith("<?xml")


def test_plot_refuses_unknown_kinds_and_targets(fit, tmp_path):
    with pytest.raises(ModelError, match="unknown figure 'pie'"):
        fit.plot("pie")
    with pytest.raises(ModelError, match="needs by=COLUMN"):
        fit.plot("subgroup")
    with pytest.raises(DataError):
        fit.plot("forest", tmp_path / "figure.gif")


# ---------------------------------------------------------------------------------------------
# batch and reproduce


def test_batch_pools_each_group_as_pool_does():
    """One group holding the paper's studies gives the Abstract's RR 1.98 [1.44, 2.73]."""
    pd = pytest.importorskip("pandas")
    paper = pd.read_csv(STUDIES)
    long = pd.concat([paper.assign(meta="paper"), paper.head(3).assign(meta="first three")])
    out = ivigmeta.batch(long, by=["meta"])
    assert out["meta"].tolist() == ["paper", "first three"]
    row = out.iloc[0]
    assert (r2(row["random_estimate"]), r2(row["random_ci_low"]), r2(row["random_ci_high"])) == (
        "1.98",
        "1.44",
        "2.73",
    )
    three = ivigmeta.pool(paper.head(3)).random
    assert math.isclose(out.iloc[1]["random_estimate"], three.estimate, rel_tol=1e-12)
    assert ivigmeta.batch(long.to_dict("list"), by="meta").equals(out)


def test_reproduce_audits_the_published_numbers():
    """published.toml: every number reproduces except the three docs/methods.md explains."""
    audit = ivigmeta.reproduce(ROOT / "published.toml", data=STUDIES)
    assert audit.summary.ok
    assert audit.summary.differs_expected == 3
    assert audit.summary.reproduced == audit.summary.total - 3


# ---------------------------------------------------------------------------------------------
# The package namespace


def test_package_exports_the_api():
    assert set(ivigmeta.__all__) >= {
        "pool",
        "batch",
        "reproduce",
        "read",
        "MetaAnalysisFit",
        "IvigmetaError",
        "DataError",
        "ModelError",
        "__version__",
    }
    for name in ivigmeta.__all__:
        assert getattr(ivigmeta, name) is not None
    assert ivigmeta.MetaAnalysisFit is MetaAnalysisFit
    assert set(ivigmeta.__all__) <= set(dir(ivigmeta))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        ivigmeta.nope  # noqa: B018


def test_import_ivigmeta_is_cheap_and_the_api_loads_on_first_use():
    code = (
        "import sys, ivigmeta\n"
        "before = sorted(m for m in sys.modules if m.startswith(('ivigmeta.', 'numpy', 'pandas')))\n"
        "ivigmeta.pool\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('numpy', 'pandas', 'scipy', 'matplotlib', 'rich'))\n"
        "print(before, 'ivigmeta.api' in sys.modules, heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "['ivigmeta.errors'] True []"
