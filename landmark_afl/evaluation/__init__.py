"""Evaluation of trained landmark runs: false negatives per landmark and protocol, reports, comparisons."""
