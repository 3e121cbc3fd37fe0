"""Scaling-law analysis: runs -> tables -> fitted laws with bootstrap uncertainty -> plans, plots.

Reads only the run directory format (docs/run-format.md); never imports `scaling/` or JAX.
"""
