"""The ``meta`` dict every reader returns: the same keys for every format (values may be None)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

META_KEYS = (
    "path",
    "format",
    "spacing_mm",
    "spacing_source",
    "spacing_note",
    "photometric",
    "bits_stored",
    "modality",
    "original_shape",
    "sop_instance_uid",
    "study_instance_uid",
    "series_instance_uid",
    "voi_window",
    "voi_source",
    "n_frames",
    "frame_used",
    "decoder",
    "transfer_syntax",
    "steps",
)


def new_meta(path: str | Path, fmt: str) -> dict[str, Any]:
    """Meta with every key of :data:`META_KEYS` present: ``path`` and ``format`` set, the rest None.

    ``spacing_source`` starts as ``"none"``, ``n_frames`` as 1, ``frame_used`` as 0 and ``steps`` as an empty list.
    Patient name, ID and birth date are never stored.
    """
    meta: dict[str, Any] = dict.fromkeys(META_KEYS)
    meta.update(path=str(path), format=fmt, spacing_source="none", n_frames=1, frame_used=0, steps=[])
    return meta
