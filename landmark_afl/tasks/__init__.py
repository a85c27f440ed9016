"""Tasks: an nn.Module whose ``forward(batch)`` returns a dict with ``"loss"``; the trainer does the rest.

The interface is ``landmark_afl.tasks.base.TrainTask``; each task is one module (``tasks.landmark``...).
"""
