"""Auditing published numbers: the published-numbers file, comparison, explanations, report."""
