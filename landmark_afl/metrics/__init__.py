"""Metrics below the tasks: pure functions of predictions and ground truth (no model, no data set, no IO)."""
