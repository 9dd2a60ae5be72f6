"""ivigmeta: recompute binary-outcome meta-analyses from a CSV of study event counts.

The package is a one-way pipeline (docs/architecture in STYLE):

    data -> effects -> pooling (tau2, heterogeneity) -> methods (sensitivity, subgroup,
    metareg, bias) -> results -> render, with ``cli`` a layer over the public API.

The public API (:mod:`ivigmeta.api`, docs/api.md): :func:`pool` fits once and returns a
:class:`MetaAnalysisFit` to ask (``.loo()``, ``.subgroup(by)``, ``.plot(kind)`` ...); :func:`batch`
pools many meta-analyses of a DataFrame; :func:`reproduce` audits a paper's printed numbers;
:func:`read` reads a study table.

Importing the package is cheap: no numpy, scipy, pandas or rich at import time. The API's names
are attributes resolved on first use (a module ``__getattr__``, PEP 562).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ivigmeta.errors import DataError, IvigmetaError, ModelError

__version__ = "0.2.0"

__all__ = [
    "DataError",
    "IvigmetaError",
    "MetaAnalysisFit",
    "ModelError",
    "__version__",
    "aggregate",
    "batch",
    "pool",
    "read",
    "reproduce",
]

if TYPE_CHECKING:
    from ivigmeta.api import MetaAnalysisFit, aggregate, batch, pool, read
    from ivigmeta.cli.reproduce import reproduce_paper as reproduce

# name -> (module, attribute). The audit replays command lines, so ``reproduce`` lives with the
# command line (ivigmeta.cli.reproduce.reproduce_paper).
_LAZY = {
    name: ("ivigmeta.api", name)
    for name in ("MetaAnalysisFit", "aggregate", "batch", "pool", "read")
}
_LAZY["reproduce"] = ("ivigmeta.cli.reproduce", "reproduce_paper")


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'ivigmeta' has no attribute '{name}'")
    import importlib

    module, attribute = _LAZY[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
