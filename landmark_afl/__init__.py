"""landmark-afl: anatomical landmark detection on X-rays with Adversarial Focal Loss.

The public Python API (imported on first use, so ``import landmark_afl`` stays light):

- :class:`~landmark_afl.detector.Detector`: ``Detector.load(run)(image)`` -> :class:`~landmark_afl.detector.Landmarks`;
- :func:`~landmark_afl.io.read_image`: any supported X-ray file -> (float32 pixels, meta);
- :func:`~landmark_afl.protocols.load_protocol`: a contrast protocol by name or path.
"""

__version__ = "0.1.0"

_API = {
    "Detector": "landmark_afl.detector",
    "Landmarks": "landmark_afl.detector",
    "read_image": "landmark_afl.io",
    "load_protocol": "landmark_afl.protocols",
}
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'landmark_afl' has no attribute {name!r}")
