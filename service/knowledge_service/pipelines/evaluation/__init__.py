"""Evaluation: labelled query sets, per-query metrics, paired comparisons and the profile gate."""
