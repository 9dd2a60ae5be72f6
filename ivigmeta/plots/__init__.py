"""Figures drawn from result objects: forest, leave-one-out, cumulative, funnel, radial, Baujat,
influence, bubble, L'Abbé and risk-of-bias plots.

matplotlib is imported only inside the drawing modules, and only when a figure is asked for, so
``ivigmeta --help`` and every command without ``--plot`` never pay for it. Nothing here fits a
model: every figure takes a result object (:class:`~ivigmeta.results.MetaAnalysis`,
:class:`~ivigmeta.results.LeaveOneOut` ...) and draws what it holds.

``write_figure(kind, result, path, **options)`` is the one entry point the CLI uses;
``check_target(path)`` validates the output path first (cheap: no matplotlib).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ivigmeta.plots.paths import FIGURE_FORMATS, check_target

__all__ = ["FIGURES", "FIGURE_FORMATS", "check_target", "make_figure", "write_figure"]


def _forest(result: Any, **options: Any) -> Any:
    from ivigmeta.plots.forest import forest_plot

    return forest_plot(result, **options)


def _subgroup_forest(result: Any, **options: Any) -> Any:
    from ivigmeta.plots.forest import subgroup_forest_plot

    return subgroup_forest_plot(result, **options)


def _loo(result: Any, **options: Any) -> Any:
    from ivigmeta.plots.loo import loo_plot

    return loo_plot(result, **options)


def _cumulative(result: Any, **options: Any) -> Any:
    from ivigmeta.plots.cumulative import cumulative_plot

    return cumulative_plot(result, **options)


def _labbe(result: Any, **options: Any) -> Any:
    from ivigmeta.plots.labbe import labbe_plot

    return labbe_plot(result, **options)


def _gosh(result: Any, **options: Any) -> Any:
    from ivigmeta.plots.gosh import gosh_plot

    return gosh_plot(result, **options)


def _bubble(result: Any, **options: Any) -> Any:
    from ivigmeta.plots.bubble import bubble_plot

    return bubble_plot(result, **options)


def _funnel(result: Any, **options: Any) -> Any:
    from ivigmeta.plots.funnel import funnel_plot

    return funnel_plot(result, **options)


def _radial(result: Any, **options: Any) -> Any:
    from ivigmeta.plots.radial import radial_plot

    return radial_plot(result, **options)


def _baujat(result: Any, **options: Any) -> Any:
    from ivigmeta.plots.influence import baujat_plot

    return baujat_plot(result, **options)


def _influence(result: Any, **options: Any) -> Any:
    from ivigmeta.plots.influence import influence_plot

    return influence_plot(result, **options)


def _rob(result: Any, **options: Any) -> Any:
    from ivigmeta.plots.rob import rob_plot

    return rob_plot(result, **options)


FIGURES: dict[str, Callable[..., Any]] = {
    "forest": _forest,
    "subgroup-forest": _subgroup_forest,
    "loo": _loo,
    "cumulative": _cumulative,
    "labbe": _labbe,
    "gosh": _gosh,
    "bubble": _bubble,
    "funnel": _funnel,
    "radial": _radial,
    "baujat": _baujat,
    "influence": _influence,
    "rob": _rob,
}


def make_figure(kind: str, result: Any, **options: Any) -> Any:
    """Draw figure ``kind`` (a key of ``FIGURES``) from ``result``; returns the matplotlib Figure."""
    return FIGURES[kind](result, **options)


def write_figure(
    kind: str, result: Any, path: str, dpi: float | None = None, **options: Any
) -> str:
    """Draw figure ``kind`` from ``result`` and write it to ``path`` (format from the extension)."""
    from ivigmeta.plots.common import save_figure

    check_target(path)
    fig = make_figure(kind, result, **options)
    return save_figure(fig, path, dpi=dpi)
