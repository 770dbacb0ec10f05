"""Metrics, predictions over datasets, result tables and plots."""
