"""Stronger NAS with Weaker Predictors (WeakNAS; Wu et al., NeurIPS 2021, arXiv 2102.10490)."""
