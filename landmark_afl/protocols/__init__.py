"""Contrast protocols: declarative files in ``protocols/*.yaml``, validated and applied to io's float images.

Example:
    >>> from landmark_afl.protocols import list_protocols, load_protocol
    >>> list_protocols()[:4]
    ['higher', 'high', 'low', 'lower']
    >>> load_protocol("high").name
    'high'
"""

from __future__ import annotations

from landmark_afl.protocols.contrast import contrast_measures, global_contrast, local_contrast
from landmark_afl.protocols.protocol import (
    SHIPPED,
    Protocol,
    ProtocolError,
    Step,
    list_protocols,
    load_protocol,
    protocols_dir,
)
from landmark_afl.protocols.steps import STEPS

__all__ = [
    "SHIPPED",
    "STEPS",
    "Protocol",
    "ProtocolError",
    "Step",
    "contrast_measures",
    "global_contrast",
    "list_protocols",
    "load_protocol",
    "local_contrast",
    "protocols_dir",
]
