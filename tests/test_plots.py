"""Figures: drawn elements checked on the matplotlib objects, files in every format, determinism,
errors. Figures are drawn from the result objects of the paper's Table 2 (studies.csv) and never
refit; each figure is drawn once per module and rendered small to keep the suite fast.
"""

from __future__ import annotations

import math
import os
import re
import struct
import xml.etree.ElementTree as ET
from types import SimpleNamespace

import pytest

pytest.importorskip("matplotlib")

from conftest import ROOT
from matplotlib.lines import Line2D
from matplotlib.patches import Circle, Polygon

from ivigmeta.core.effects import compute_effects
from ivigmeta.core.pooling import fit
from ivigmeta.errors import DataError, ModelError
from ivigmeta.io.studies import load_table, parse_table
from ivigmeta.methods.bias import bias_analysis
from ivigmeta.methods.gosh import gosh
from ivigmeta.methods.rob import load_rob
from ivigmeta.methods.sensitivity import cumulative, leave_one_out
from ivigmeta.methods.subgroup import subgroup_analysis
from ivigmeta.plots import FIGURES, make_figure, write_figure
from ivigmeta.plots.common import ROW_HEIGHT, nice_ratio_ticks, save_figure

ROB_EXAMPLE = ROOT / "docs" / "examples" / "rob_example.csv"
SMALL_DPI = 40


def artists(fig, prefix):
    """Every artist in ``fig`` whose gid starts with ``prefix``."""
    return [a for a in fig.findobj(lambda a: (a.get_gid() or "").startswith(prefix))]


def texts(fig):
    return [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text") and a.get_text())]


def main_axes(fig):
    return next(
        ax
        for ax in fig.axes
        if any(isinstance(a, Line2D) and a.get_gid() == "null-line" for a in ax.lines)
    )


def influence_stand_in(ma, loo):
    """An object shaped like the influence result of `ivigmeta influence`: the Baujat
    coordinates computed from the fit and its leave-one-out refits, diagnostics partly missing."""
    r = ma.random
    rows = []
    for i, (row, y, v) in enumerate(zip(loo.rows, ma.effects.yi, ma.effects.vi)):
        refit = row.analysis.random
        rows.append(
            SimpleNamespace(
                study=row.omitted,
                baujat_x=(y - r.theta) ** 2 / (v + r.tau2),
                baujat_y=(r.theta - refit.theta) ** 2 / refit.se**2,
                rstudent=None
                if i == 3
                else (y - refit.theta) / math.sqrt(v + refit.tau2 + refit.se**2),
                dffits=0.1 * i,
                cook_d=0.05 * i,
                cov_r=1.0 + 0.01 * i,
                tau2_del=refit.tau2,
                qe_del=row.analysis.heterogeneity.q,
                hat=r.weights[i] / 100,
                weight=r.weights[i],
                influential=(i == 5),
            )
        )
    return SimpleNamespace(
        full=ma,
        rows=tuple(rows),
        dffits_cutoff=0.5,
        cook_d_cutoff=0.3,
        hat_cutoff=0.375,
        dfbetas_cutoff=1.0,
    )


@pytest.fixture(scope="module")
def results(paper_fit):
    from ivigmeta.methods.influence import influence

    loo = leave_one_out(paper_fit)
    diagnostics = influence(paper_fit)
    return {
        "baujat": diagnostics,
        "influence": diagnostics,
        "forest": paper_fit,
        "subgroup-forest": subgroup_analysis(paper_fit, ["nk_criterion"]),
        "loo": loo,
        "funnel": bias_analysis(paper_fit),
        "radial": paper_fit,
        "rob": load_rob(str(ROB_EXAMPLE)),
        "cumulative": cumulative(paper_fit, "year"),
        "labbe": paper_fit,
        "gosh": gosh(paper_fit),
        "bubble": _bcg_bubble(),
    }


def _bcg_bubble():
    from ivigmeta.methods.metareg import bubble, metareg_analysis

    bcg = compute_effects(load_table(str(ROOT / "docs" / "examples" / "bcg.csv")).studies)
    return bubble(metareg_analysis(bcg, ["ablat"]))


@pytest.fixture(scope="module")
def figures(results):
    return {kind: make_figure(kind, result) for kind, result in results.items()}


# --- forest plot -------------------------------------------------------------------------------


def test_forest_one_square_and_one_ci_per_study(figures, paper_fit):
    fig = figures["forest"]
    squares = artists(fig, "square-")
    cis = artists(fig, "ci-")
    assert len(squares) == len(cis) == paper_fit.k == 8
    for i, est in enumerate(paper_fit.study_estimates):
        (sq,) = artists(fig, f"square-{i}")
        (ci,) = artists(fig, f"ci-{i}")
        assert sq.get_marker() == "s"
        assert sq.get_xdata()[0] == pytest.approx(est.estimate)
        # No study CI of Table 2 is clipped: the line runs exactly from the lower to the upper limit.
        assert list(ci.get_xdata()) == pytest.approx([est.ci_low, est.ci_high])
        assert ci.get_ydata()[0] == sq.get_ydata()[0]
    assert not artists(fig, "arrow-")


def test_forest_squares_sized_by_random_weight(figures, paper_fit):
    fig = figures["forest"]
    sizes = [artists(fig, f"square-{i}")[0].get_markersize() for i in range(paper_fit.k)]
    weights = paper_fit.random.weights
    order = sorted(range(paper_fit.k), key=lambda i: weights[i])
    assert [sizes[i] for i in order] == sorted(sizes)
    big = weights.index(max(weights))
    for i in range(paper_fit.k):  # area proportional to weight (no square hits the size floor here)
        assert (sizes[i] / sizes[big]) ** 2 == pytest.approx(weights[i] / weights[big])


def test_forest_one_diamond_per_pooled_estimate(figures, paper_fit):
    fig = figures["forest"]
    diamonds = [a for a in artists(fig, "diamond-") if isinstance(a, Polygon)]
    assert [d.get_gid() for d in diamonds] == ["diamond-random"]
    xy = diamonds[0].get_xy()
    r = paper_fit.random
    assert min(xy[:, 0]) == pytest.approx(r.ci_low)
    assert max(xy[:, 0]) == pytest.approx(r.ci_high)
    assert any(x == pytest.approx(r.estimate) for x in xy[:, 0])
    both = make_figure("forest", paper_fit, model="both")
    assert sorted(d.get_gid() for d in artists(both, "diamond-")) == [
        "diamond-common",
        "diamond-random",
    ]
    common = make_figure("forest", paper_fit, model="common")
    assert [d.get_gid() for d in artists(common, "diamond-")] == ["diamond-common"]
    assert not artists(common, "prediction-interval")  # a common-effect model has none


def test_forest_log_axis_null_line_and_prediction_interval(figures, paper_fit):
    fig = figures["forest"]
    ax = main_axes(fig)
    assert ax.get_xscale() == "log"
    (null,) = artists(fig, "null-line")
    xs = [x for x in null.get_xdata() if not math.isnan(x)]
    assert xs and set(xs) == {1.0}
    lo, hi = ax.get_xlim()
    assert lo < 1.0 < hi
    assert "1" in [t.get_text() for t in ax.get_xticklabels()]
    (pi,) = artists(fig, "prediction-interval")
    assert list(pi.get_xdata()) == pytest.approx(
        [paper_fit.random.pi_low, paper_fit.random.pi_high]
    )


def test_forest_labels_and_text_columns(figures, paper_fit):
    shown = texts(figures["forest"])
    for s in paper_fit.effects.studies:
        assert s.label() in shown
        assert f"{s.treat_events}/{s.treat_total}" in shown
    assert "Favours control" in shown and "Favours treatment" in shown  # neutral default
    assert "1.98 [1.44, 2.73]" in shown and "8.64 [2.31, 32.33]" in shown
    assert any(t.startswith("Heterogeneity: Q = 19.36, df = 7") for t in shown)
    assert any(t.startswith("Test for overall effect (random effects): z = ") for t in shown)
    custom = make_figure("forest", paper_fit, labels=("Favours no IVIG", "Favours IVIG"))
    assert {"Favours no IVIG", "Favours IVIG"} <= set(texts(custom))


def test_forest_long_labels_and_100_studies_fit():
    """100 studies, some with very long labels: the long labels stay clear of the events column,
    the rightmost column and the notes stay inside the figure, and the height grows by one row
    per study."""
    long = "Multicentre cohort of the Department of Reproductive Immunology, university hospital"
    rows = ["study,year,treat_events,treat_total,control_events,control_total"]
    for i in range(100):
        name = f"{long} {i}" if i % 10 == 0 else f"Author{i}"
        rows.append(f'"{name}",{2000 + i % 20},{5 + i % 40},{60 + i},{3 + i % 30},{70 + i % 13}')
    ma = fit(compute_effects(parse_table("\n".join(rows) + "\n", "big.csv").studies))
    fig = make_figure("forest", ma)
    assert len(artists(fig, "square-")) == 100 and len(artists(fig, "ci-")) == 100
    small = make_figure(
        "forest", fit(compute_effects(parse_table("\n".join(rows[:9]) + "\n", "s").studies))
    )
    assert fig.get_figheight() - small.get_figheight() == pytest.approx(92 * ROW_HEIGHT)
    renderer = fig.canvas.get_renderer()
    all_texts = fig.findobj(lambda a: hasattr(a, "get_text") and a.get_text())
    long_rows = [s for s in ma.effects.studies if s.study.startswith(long)]
    labels = [t for t in all_texts if t.get_text() in {s.label() for s in long_rows}]
    events = [
        t
        for t in all_texts
        if t.get_text() in {f"{s.treat_events}/{s.treat_total}" for s in long_rows}
    ]
    assert len(labels) == 10 and events
    events_left = min(t.get_window_extent(renderer).x0 for t in events)
    assert max(t.get_window_extent(renderer).x1 for t in labels) < events_left
    edge = [
        t
        for t in all_texts
        if t.get_text().endswith("%")
        or t.get_text().startswith(("Heterogeneity", "Test for", "Weight", "Favours"))
    ]
    for t in edge:
        box = t.get_window_extent(renderer)
        assert 0 <= box.x0 and box.x1 <= fig.bbox.width, t.get_text()
        assert 0 <= box.y0 and box.y1 <= fig.bbox.height, t.get_text()


def test_forest_clipped_ci_gets_an_arrow():
    rows = "study,year,treat_events,treat_total,control_events,control_total\n"
    rows += "".join(f"S{i},2000,{40 + i},100,{38 - i},100\n" for i in range(6))
    rows += "Tiny,2001,1,2,1,2\n"  # RR 1 with a very wide interval
    ma = fit(compute_effects(parse_table(rows, "clip.csv").studies))
    fig = make_figure("forest", ma)
    (ci,) = artists(fig, "ci-6")
    ax = main_axes(fig)
    assert list(ci.get_xdata()) == pytest.approx(list(ax.get_xlim()))
    est = ma.study_estimates[6]
    assert est.ci_low < ax.get_xlim()[0] and est.ci_high > ax.get_xlim()[1]
    assert sorted(a.get_marker() for a in artists(fig, "arrow-6")) == ["<", ">"]
    assert not artists(fig, "arrow-0")


def test_forest_risk_difference_is_linear_around_zero(paper_fit):
    from ivigmeta.io.studies import load_table

    ma = fit(compute_effects(load_table(str(ROOT / "studies.csv")).studies, measure="RD"))
    fig = make_figure("forest", ma)
    ax = main_axes(fig)
    assert ax.get_xscale() == "linear"
    (null,) = artists(fig, "null-line")
    assert {x for x in null.get_xdata() if not math.isnan(x)} == {0.0}


def test_forest_unknown_model(paper_fit):
    with pytest.raises(ModelError, match="unknown model"):
        make_figure("forest", paper_fit, model="fixed")


# --- subgroup forest -----------------------------------------------------------------------------


def test_subgroup_forest_blocks(figures, results):
    fig = figures["subgroup-forest"]
    res = results["subgroup-forest"].by[0]
    k = sum(lv.analysis.k for lv in res.levels)
    assert len(artists(fig, "square-")) == len(artists(fig, "ci-")) == k
    gids = sorted(a.get_gid() for a in artists(fig, "diamond-"))
    assert gids == sorted(["diamond-random"] + [f"diamond-random-{lv.level}" for lv in res.levels])
    shown = texts(fig)
    for lv in res.levels:
        assert f"{res.column} = {lv.level}" in shown
    assert any(t.startswith("Test for subgroup differences") and "QM = 1.24" in t for t in shown)
    assert sum(t.startswith("Heterogeneity:") for t in shown) == len(res.levels) + 1


def test_subgroup_forest_single_study_level_has_no_diamond(paper_fit):
    sg = subgroup_analysis(paper_fit, ["timing"])
    fig = make_figure("subgroup-forest", sg, model="both")
    # after: 5 studies, before: 2, Jafarzadeh has no label: 2 levels + overall, 2 models each.
    assert len(artists(fig, "diamond-")) == 6
    assert any("Jafarzadeh" in t for t in texts(fig))


# --- leave-one-out ------------------------------------------------------------------------------


def test_loo_points_reference_line_and_band(figures, results):
    fig = figures["loo"]
    loo = results["loo"]
    points = artists(fig, "point-")
    assert len(points) == len(loo.rows) == 8
    for i, row in enumerate(loo.rows):
        (ci,) = artists(fig, f"ci-{i}")
        assert list(ci.get_xdata()) == pytest.approx(
            [row.analysis.random.ci_low, row.analysis.random.ci_high]
        )
    (ref,) = artists(fig, "reference-line")
    assert list(ref.get_xdata()) == pytest.approx([loo.full.random.estimate] * 2)
    (band,) = artists(fig, "reference-band")
    assert band.get_x() == pytest.approx(loo.full.random.ci_low)
    assert band.get_x() + band.get_width() == pytest.approx(loo.full.random.ci_high)
    assert main_axes(fig).get_xscale() == "log"
    shown = texts(fig)
    assert "1.81 [1.31, 2.50]" in shown and "2.17 [1.59, 2.96]" in shown
    assert "Ramos-Medina (2014)" in shown


# --- funnel -------------------------------------------------------------------------------------


def test_funnel_points_limits_and_inverted_axis(figures, paper_fit):
    fig = figures["funnel"]
    (pts,) = artists(fig, "studies")
    assert list(pts.get_xdata()) == pytest.approx([math.exp(y) for y in paper_fit.effects.yi])
    assert list(pts.get_ydata()) == pytest.approx([math.sqrt(v) for v in paper_fit.effects.vi])
    ax = pts.axes
    assert ax.get_xscale() == "log"
    top, bottom = ax.get_ylim()
    assert top > bottom == 0.0  # inverted: SE 0 at the top
    (limits,) = artists(fig, "funnel-limits")
    x = limits.get_xdata()
    assert x[1] == pytest.approx(paper_fit.random.estimate)
    assert math.log(x[2]) - math.log(x[1]) == pytest.approx(1.959964 * top, rel=1e-6)
    assert not artists(fig, "contour-")
    assert any("Egger's test p = 0.362" in t for t in texts(fig))


def test_funnel_trimfill_of_the_paper(figures, results):
    """`ivigmeta bias` runs trim-and-fill by default: its imputed studies are drawn hollow at
    their filled effect and SE, and its adjusted estimate as a dotted line."""
    fig = figures["funnel"]
    tf = results["funnel"].trimfill
    assert tf.k0 == len(tf.filled_yi) > 0
    (filled,) = artists(fig, "filled-studies")
    assert list(filled.get_xdata()) == pytest.approx([math.exp(y) for y in tf.filled_yi])
    assert list(filled.get_ydata()) == pytest.approx([math.sqrt(v) for v in tf.filled_vi])
    assert filled.get_markerfacecolor() in ("white", (1.0, 1.0, 1.0, 1.0))
    (adjusted,) = artists(fig, "trimfill-line")
    assert adjusted.get_xdata()[0] == pytest.approx(tf.estimate)
    egger_only = make_figure("funnel", bias_analysis(results["forest"], tests=["egger"]))
    assert not artists(egger_only, "filled-") and not artists(egger_only, "trimfill-line")


def test_funnel_contours(results):
    fig = make_figure("funnel", results["funnel"], contour=True)
    contours = artists(fig, "contour-")
    assert len(contours) == 6  # three p-value regions either side of no effect
    assert {t for t in texts(fig)} >= {"0.05 < p < 0.1", "0.01 < p < 0.05", "p < 0.01"}
    (null,) = artists(fig, "null-line")
    assert set(null.get_xdata()) == {1.0}


def test_funnel_trimfill_studies_are_hollow(results):
    """A stand-in for the trim-and-fill result of `ivigmeta bias`."""
    ba = results["funnel"]
    trimfill = SimpleNamespace(
        filled_yi=(-0.4, -0.9), filled_vi=(0.05, 0.3), side="left", k0=2, theta=0.5
    )
    stand_in = SimpleNamespace(full=ba.full, egger=ba.egger, trimfill=trimfill)
    fig = make_figure("funnel", stand_in)
    (filled,) = artists(fig, "filled-studies")
    assert list(filled.get_xdata()) == pytest.approx([math.exp(-0.4), math.exp(-0.9)])
    assert filled.get_markerfacecolor() in ("white", (1.0, 1.0, 1.0, 1.0))
    (studies,) = artists(fig, "studies")
    assert studies.get_markerfacecolor() not in ("white", (1.0, 1.0, 1.0, 1.0))
    assert any("k0 = 2" in t for t in texts(fig))
    (adjusted,) = artists(fig, "trimfill-line")
    assert list(adjusted.get_xdata()) == pytest.approx([math.exp(0.5)] * 2)
    assert not artists(
        make_figure("funnel", bias_analysis(ba.full, tests=["egger"])), "trimfill-line"
    )


# --- radial -------------------------------------------------------------------------------------


def test_radial(figures, paper_fit):
    fig = figures["radial"]
    (pts,) = artists(fig, "studies")
    assert list(pts.get_xdata()) == pytest.approx([1 / math.sqrt(v) for v in paper_fit.effects.vi])
    (line,) = artists(fig, "pooled-line")
    x, y = line.get_xdata(), line.get_ydata()
    assert (y[1] - y[0]) / (x[1] - x[0]) == pytest.approx(paper_fit.common.theta)
    assert len(artists(fig, "band-")) == 2


# --- influence ------------------------------------------------------------------------------


def test_baujat(figures, results):
    """The Baujat plot of `ivigmeta influence` on the paper's data: one point per study at its
    Baujat coordinates."""
    fig = figures["baujat"]
    inf = results["baujat"]
    (pts,) = artists(fig, "studies")
    assert len(pts.get_xdata()) == 8
    assert list(pts.get_xdata()) == pytest.approx([r.baujat_x for r in inf.rows])
    assert list(pts.get_ydata()) == pytest.approx([r.baujat_y for r in inf.rows])
    shown = texts(fig)
    assert {r.study.study for r in inf.rows} <= set(shown)
    assert (
        "Contribution to overall heterogeneity" in shown and "Influence on overall result" in shown
    )


def test_influence_panels_of_the_paper(figures, results):
    fig = figures["influence"]
    inf = results["influence"]
    assert len(fig.axes) == 8
    for attr in ("rstudent", "cook_d", "hat", "weight"):
        points = [a for a in artists(fig, f"{attr}-") if a.get_gid()[len(attr) + 1 :].isdigit()]
        assert [p.get_ydata()[0] for p in points] == pytest.approx(
            [getattr(r, attr) for r in inf.rows]
        )
    (cut,) = artists(fig, "cook_d-cutoff")
    assert cut.get_ydata()[0] == pytest.approx(inf.cook_d_cutoff)


def test_influence_panels_missing_values_and_flags(paper_fit):
    """A stand-in shaped like the influence result: a missing diagnostic leaves no point, and a
    flagged study is drawn in red."""
    inf = influence_stand_in(paper_fit, leave_one_out(paper_fit))
    fig = make_figure("influence", inf)
    assert len(fig.axes) == 8
    # One point per study in every panel, except where a diagnostic is missing (rstudent of study 3).
    assert len(artists(fig, "weight-")) - len(artists(fig, "weight-line")) == len(inf.rows)
    assert not artists(fig, "rstudent-3")
    flagged = artists(fig, "cook_d-5")[0]
    assert flagged.get_color() == "#c0392b" and artists(fig, "cook_d-0")[0].get_color() != "#c0392b"
    (cut,) = artists(fig, "cook_d-cutoff")
    assert list(cut.get_ydata()) == [0.3, 0.3]


# --- risk of bias -------------------------------------------------------------------------------


def test_rob_traffic_light_and_summary(figures, results):
    from ivigmeta.plots.rob import COLOURS

    fig = figures["rob"]
    rob = results["rob"]
    cells = [a for a in artists(fig, "rob-") if isinstance(a, Circle)]
    assert len(cells) == len(rob.studies) * 8
    for i, s in enumerate(rob.studies):
        for j, level in enumerate([*s.judgements, s.overall]):
            (cell,) = artists(fig, f"rob-{i}-{j}")
            assert cell.get_facecolor()[:3] == pytest.approx(_rgb(COLOURS[level]))
    assert len(artists(fig, "contradiction-")) == len(rob.contradictions) == 1
    shown = texts(fig)
    assert {"D1", "D7", "Overall"} <= set(shown)
    assert {s.study for s in rob.studies} <= set(shown)
    bars = [a for a in artists(fig, "summary-") if a in fig.axes[1].patches]
    assert len(bars) == 8 * 5
    critical = [b for b in bars if b.get_gid() == "summary-critical"]
    assert critical[-1].get_width() == pytest.approx(rob.summary[-1].percent[3])


def _rgb(hex_colour):
    return tuple(int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5))


# --- files --------------------------------------------------------------------------------------


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("kind", sorted(FIGURES))
def test_every_figure_in_every_format(kind, figures, tmp_path):
    fig = figures[kind]
    png = tmp_path / f"{kind}.png"
    save_figure(fig, str(png), dpi=SMALL_DPI)
    w, h = _png_size(png.read_bytes())
    # Pixels are the size in inches times the dpi, to the pixel (Agg rounds the float product).
    assert (
        abs(w - fig.get_figwidth() * SMALL_DPI) < 1 and abs(h - fig.get_figheight() * SMALL_DPI) < 1
    )
    svg = tmp_path / f"{kind}.svg"
    save_figure(fig, str(svg))
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg")
    assert float(root.get("width").rstrip("pt")) == pytest.approx(fig.get_figwidth() * 72)
    pdf = tmp_path / f"{kind}.pdf"
    save_figure(fig, str(pdf))
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    box = re.search(rb"/MediaBox \[ 0 0 ([\d.]+) ([\d.]+) \]", data)
    assert box and float(box[1]) == pytest.approx(fig.get_figwidth() * 72, abs=0.01)
    assert float(box[2]) == pytest.approx(fig.get_figheight() * 72, abs=0.01)
    assert sorted(os.listdir(tmp_path)) == sorted(f"{kind}.{e}" for e in ("pdf", "png", "svg"))


def test_default_png_is_300_dpi(figures, tmp_path):
    path = tmp_path / "radial.png"
    save_figure(figures["radial"], str(path))
    assert _png_size(path.read_bytes()) == (int(5.6 * 300), int(4.4 * 300))


@pytest.mark.parametrize("kind, ext", [("forest", "svg"), ("radial", "pdf"), ("radial", "png")])
def test_figures_are_deterministic(results, tmp_path, kind, ext):
    """Same input, same bytes: two independent drawings of the same figure."""
    a, b = tmp_path / f"a.{ext}", tmp_path / f"b.{ext}"
    write_figure(kind, results[kind], str(a), dpi=SMALL_DPI)
    write_figure(kind, results[kind], str(b), dpi=SMALL_DPI)
    assert a.read_bytes() == b.read_bytes()
    if ext == "svg":
        assert b"<dc:date>" not in a.read_bytes()


@pytest.mark.parametrize(
    "name, message",
    [
        ("forest.gif", "'.gif'"),
        ("forest", "no extension"),
    ],
)
def test_unknown_extension(results, tmp_path, name, message):
    with pytest.raises(DataError, match=message):
        write_figure("forest", results["forest"], str(tmp_path / name))
    assert os.listdir(tmp_path) == []


def test_unwritable_targets(results, tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(DataError, match="does not exist"):
        write_figure("forest", results["forest"], str(tmp_path / "missing" / "f.png"))
    with pytest.raises(DataError, match="f.png: Not a directory"):
        write_figure("forest", results["forest"], str(blocker / "f.png"))
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(DataError, match="is a directory"):
        write_figure("forest", results["forest"], str(tmp_path / "dir.png"))


def test_failed_write_leaves_nothing_behind(figures, tmp_path, monkeypatch):
    """A failure while saving leaves neither a partial file nor a temporary one, and an existing
    figure at the target untouched."""
    target = tmp_path / "forest.png"
    target.write_bytes(b"old figure")
    fig = figures["forest"]

    def broken(path, **kwargs):
        with open(path, "wb") as handle:
            handle.write(b"\x89PNG partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fig, "savefig", broken)
    with pytest.raises(DataError, match="No space left on device"):
        save_figure(fig, str(target))
    assert os.listdir(tmp_path) == ["forest.png"]
    assert target.read_bytes() == b"old figure"


def test_ratio_ticks():
    assert nice_ratio_ticks(0.51, 32.3) == [0.5, 1, 2, 5, 10, 20, 50]
    assert nice_ratio_ticks(1.31, 2.96) == [1, 1.5, 2, 3]
    wide = nice_ratio_ticks(1e-3, 5e3)
    assert 1.0 in wide and len(wide) <= 7 and wide[0] <= 1e-3 and wide[-1] >= 5e3


def test_single_study_is_drawn_without_a_diamond():
    one = "study,year,treat_events,treat_total,control_events,control_total\nA,2000,5,10,3,10\n"
    ma = fit(compute_effects(parse_table(one, "one.csv").studies))
    fig = make_figure("forest", ma)
    assert len(artists(fig, "square-")) == 1 and not artists(fig, "diamond-")
    assert "A single study: no pooling was done" in texts(fig)
    funnel = make_figure("funnel", bias_analysis(ma))
    (pts,) = artists(funnel, "studies")
    assert len(pts.get_xdata()) == 1
    with pytest.raises(ModelError, match="at least 2"):
        make_figure("radial", ma)


def test_rob_legend_clear_of_summary_with_one_study():
    from ivigmeta.methods.rob import parse_rob

    rob = parse_rob(
        "study,D1,D2,D3,D4,D5,D6,D7\nSolo,low,low,moderate,low,no information,low,low\n", "r.csv"
    )
    fig = make_figure("rob", rob)
    renderer = fig.canvas.get_renderer()
    legend = fig.axes[0].get_legend().get_window_extent(renderer)
    (title,) = artists(fig, "summary-title")
    assert legend.y0 > title.get_window_extent(renderer).y1
    assert legend.x1 <= fig.bbox.width


def test_forest_with_effect_rows():
    """Rows that give an effect instead of counts: NR in the events columns, no totals, and the
    label marked as the pool table marks it; a table of effects alone has no events columns."""
    mixed = parse_table(
        "study,treat_events,treat_total,control_events,control_total,yi,vi\n"
        "A,5,10,3,10,,\nB,,,,,0.2,0.04\nC,4,9,2,9,,\n",
        "mix.csv",
    )
    ma = fit(compute_effects(mixed.studies))
    fig = make_figure("forest", ma, model="both")
    shown = texts(fig)
    assert shown.count("NR") == 2 and "5/10" in shown and "B [from yi, vi]" in shown
    assert "9/19" not in shown  # no event totals when a study has no counts
    assert any(t.startswith("NR: events not reported") for t in shown)
    assert len(artists(fig, "square-")) == 3
    effects_only = fit(
        compute_effects(parse_table("study,yi,vi\nA,0.3,0.05\nB,0.1,0.02\n", "yv").studies)
    )
    fig = make_figure("forest", effects_only)
    assert "Events/Total" not in texts(fig) and len(artists(fig, "square-")) == 2


def _texts(fig) -> set[str]:
    from matplotlib.text import Text

    return {t.get_text() for t in fig.findobj(Text)}


@pytest.mark.parametrize(
    "header, rows, left, right",
    [
        (
            "study,ai,n1i,ci,n2i",
            ["a,3,20,6,21", "b,5,30,9,28"],
            "Favours control",
            "Favours treatment",
        ),
        (
            "study,ai,n1i,ci,n2i,treat_label,control_label",
            ["a,3,20,6,21,Aspirin,Placebo", "b,5,30,9,28,Aspirin,Placebo"],
            "Favours Placebo",
            "Favours Aspirin",
        ),
        (
            "study,event.e,n.e,event.c,n.c,label.e,label.c",
            ["a,3,20,6,21,IVIG,Usual care", "b,5,30,9,28,IVIG,Usual care"],
            "Favours Usual care",
            "Favours IVIG",
        ),
    ],
)
def test_forest_captions_are_neutral_or_the_tables_arms(header, rows, left, right):
    table = parse_table("\n".join([header, *rows]) + "\n", "t.csv")
    ma = fit(compute_effects(table.studies, "RR"))
    texts = _texts(make_figure("forest", ma))
    assert left in texts and right in texts
    assert not any("IVIG" in t for t in texts) or "IVIG" in right
    given = _texts(make_figure("forest", ma, labels=("Favours no drug", "Favours drug")))
    assert "Favours drug" in given and right not in given


def test_every_forest_axis_has_a_title(paper_fit):
    from matplotlib.text import Text

    for fig in (make_figure("forest", paper_fit), make_figure("loo", leave_one_out(paper_fit))):
        titles = [t.get_text() for t in fig.findobj(Text) if t.get_gid() == "axis-title"]
        assert titles == ["Risk ratio (log scale)"]


@pytest.mark.parametrize("sort", ["estimate", "weight", "year", "label"])
def test_forest_sort_orders_the_study_rows(paper_fit, sort):
    from ivigmeta.plots.forest import study_order, study_rows

    order = study_order(paper_fit, sort, ["random"])
    studies, est = paper_fit.effects.studies, paper_fit.study_estimates
    if sort == "estimate":
        assert [est[i].theta for i in order] == sorted(e.theta for e in est)
    elif sort == "weight":
        w = paper_fit.random.weights
        assert [w[i] for i in order] == sorted(w, reverse=True)
    elif sort == "year":
        assert [studies[i].year for i in order] == sorted(s.year for s in studies)
    else:
        assert [studies[i].label() for i in order] == sorted(s.label() for s in studies)
    rows = study_rows(paper_fit, ["random"], sort=sort)
    assert [r.cells["label"] for r in rows] == [studies[i].label() for i in order]


def test_forest_xlim_fixes_the_axis(paper_fit):
    fig = make_figure("forest", paper_fit, xlim=(0.2, 10))
    ax = next(a for a in fig.axes if a.get_xscale() == "log")
    assert ax.get_xlim() == pytest.approx((0.2, 10))
    with pytest.raises(ModelError, match="0 < LOW < HIGH"):
        make_figure("forest", paper_fit, xlim=(0, 10))
    with pytest.raises(ModelError, match="0 < LOW < HIGH"):
        make_figure("forest", paper_fit, xlim=(5, 2))


@pytest.mark.parametrize("kind", ["radial", "baujat", "labbe", "funnel"])
def test_study_labels_never_overprint(paper_fit, kind):
    """Every pair of study labels has disjoint boxes, and each label stays in the figure."""
    from ivigmeta.methods.influence import influence

    if kind == "baujat":
        fig = make_figure(kind, influence(paper_fit))
    elif kind == "funnel":
        fig = make_figure(kind, bias_analysis(paper_fit), label_studies=True)
    else:
        fig = make_figure(kind, paper_fit)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    texts = [t for ax in fig.axes for t in ax.texts if (t.get_gid() or "").startswith("labels-")]
    assert len(texts) == paper_fit.k
    boxes = [t.get_window_extent(renderer) for t in texts]
    for i, a in enumerate(boxes):
        assert fig.bbox.contains(a.x0, a.y0) and fig.bbox.contains(a.x1, a.y1)
        for b in boxes[i + 1 :]:
            assert not a.overlaps(b), (texts[boxes.index(a)].get_text(), kind)


def test_cumulative_plot_one_point_per_step(figures, results):
    fig = figures["cumulative"]
    cum = results["cumulative"]
    for i, step in enumerate(cum.steps):
        ma = step.analysis
        fit = ma.random or ma.study_estimates[0]
        (pt,) = artists(fig, f"point-{i}")
        assert pt.get_xdata()[0] == pytest.approx(fit.estimate)
    assert "+ Jafarzadeh (2019)" in texts(fig)


def test_labbe_points_are_the_arm_risks_and_the_curve_the_pooled_rr(figures, paper_fit):
    fig = figures["labbe"]
    (ax,) = fig.axes
    (scatter,) = [c for c in ax.collections if c.get_gid() == "studies"]
    xy = scatter.get_offsets()
    for (x, y), s in zip(xy, paper_fit.effects.studies):
        a, n1, c_, n2 = s.counts
        assert x == pytest.approx(c_ / n2) and y == pytest.approx(a / n1)
    (curve,) = [ln for ln in ax.lines if ln.get_gid() == "pooled-curve"]
    xs, ys = curve.get_xdata(), curve.get_ydata()
    assert ys[10] == pytest.approx(paper_fit.random.estimate * xs[10])


def test_double_zero_study_is_a_not_estimable_row_in_table_order():
    table = parse_table(
        "study,year,treat_events,treat_total,control_events,control_total\n"
        "A,2001,3,20,5,20\nB,2002,0,15,0,16\nC,2003,7,30,9,31\nD,2004,4,22,2,20\n",
        "dz.csv",
    )
    ma = fit(compute_effects(table.studies, keep_double_zero=False))
    assert [e.study for e in ma.effects.excluded] == ["B"]
    fig = make_figure("forest", ma)
    ys = {t.get_text(): t.get_position()[1] for ax in fig.axes for t in ax.texts}
    assert "Not estimable" in ys and "0/15" in ys and "0/16" in ys
    assert ys["A (2001)"] < ys["B (2002)"] < ys["C (2003)"]  # rows count downwards
    assert ys["Not estimable"] == ys["B (2002)"]
    squares = artists(fig, "square-")
    assert len(squares) == 3
    by_size = make_figure("forest", ma, sort="estimate")
    labels = [t.get_text() for ax in by_size.axes for t in ax.texts]
    assert "Not estimable" in labels


def test_subgroup_forest_weights_are_shares_of_the_overall_analysis(paper_fit):
    sg = subgroup_analysis(paper_fit, ["nk_criterion"])
    fig = make_figure("subgroup-forest", sg)
    shown = texts(fig)
    overall = dict(zip((s.row for s in paper_fit.effects.studies), paper_fit.random.weights))
    by_level = sg.by[0].levels
    subtotals = []
    for lv in by_level:
        share = sum(overall[s.row] for s in lv.analysis.effects.studies)
        subtotals.append(share)
        assert f"{share:.1f}%" in shown
        for s in lv.analysis.effects.studies:
            assert f"{overall[s.row]:.1f}%" in shown
    assert sum(subtotals) == pytest.approx(100.0)
    t = sg.by[0].test
    i2 = 100 * max(0.0, (t.statistic - t.df) / t.statistic)
    assert any(line.endswith(f"I² = {i2:.1f}%") for line in shown)
    assert "Weights: each study's share of the overall analysis (all subgroups)" in shown


def test_clashing_study_names_get_their_year_in_figure_labels():
    from ivigmeta.io.studies import distinct_labels

    table = parse_table(
        "study,year,treat_events,treat_total,control_events,control_total\n"
        "Smith,2001,3,20,5,20\nJones,2002,4,15,6,16\nSmith,2004,7,30,9,31\n"
        "Lee,2005,4,22,2,20\nLee,2005,5,25,3,24\n",
        "clash.csv",
    )
    assert distinct_labels(table.studies) == [
        "Smith (2001)", "Jones", "Smith (2004)", "Lee (2005) [row 5]", "Lee (2005) [row 6]",
    ]  # fmt: skip
    ma = fit(compute_effects(table.studies))
    fig = make_figure("radial", ma)
    shown = texts(fig)
    assert {"Smith (2001)", "Smith (2004)", "Jones"} <= set(shown)


def test_radial_arc_scale_marks_effects_where_their_lines_meet_it(paper_fit):
    import math as _m

    fig = make_figure("radial", paper_fit)
    (arc,) = artists(fig, "arc-scale")
    ticks = [a for a in artists(fig, "arc-tick-") if isinstance(a, Line2D)]
    labels = {t.get_gid(): t.get_text() for ax in fig.axes for t in ax.texts}
    assert ticks and "RR (log scale)" in labels.values()
    for tick in ticks:
        j = tick.get_gid().split("-")[-1]
        value = float(labels[f"arc-label-{j}"])
        x0, y0 = tick.get_xdata()[0], tick.get_ydata()[0]
        assert y0 / x0 == pytest.approx(_m.log(value), rel=1e-9, abs=1e-9)
    # every study lies inside the arc, in page units
    ax = fig.axes[0]
    to = ax.transData.transform
    o = to((0, 0))
    radius = min(_m.dist(to(p), o) for p in zip(arc.get_xdata(), arc.get_ydata()))
    for v, y in zip(paper_fit.effects.vi, paper_fit.effects.yi):
        assert _m.dist(to((1 / _m.sqrt(v), y / _m.sqrt(v))), o) < radius
