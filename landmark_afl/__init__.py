"""landmark-afl: anatomical landmark detection on X-rays with Adversarial Focal Loss."""

__version__ = "0.1.0"
