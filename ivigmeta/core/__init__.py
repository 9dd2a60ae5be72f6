"""The one engine: effect sizes, tau² estimators, pooling, heterogeneity, distributions."""
