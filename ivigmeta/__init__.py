"""ivigmeta: recompute binary-outcome meta-analyses from a CSV of study event counts.

The package is a one-way pipeline (see docs/architecture in STYLE):

    data -> effects -> pooling (tau2, heterogeneity) -> methods (sensitivity, subgroup,
    metareg, bias) -> results -> render, with ``cli`` wiring it together.

Importing the package is cheap: no numpy, scipy, pandas or rich at import time.
"""

__version__ = "0.2.0"
