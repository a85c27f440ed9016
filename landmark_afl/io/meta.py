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
    "voi",
    "n_frames",
    "frame_used",
    "decoder",
    "decode_scale",
    "decode_note",
    "transfer_syntax",
    "steps",
)


def new_meta(path: str | Path, fmt: str) -> dict[str, Any]:
    """Meta with every key of :data:`META_KEYS` present: ``path`` and ``format`` set, the rest None.

    ``spacing_source`` starts as ``"none"``, ``n_frames`` as 1, ``frame_used`` as 0, ``decode_scale`` as 1 and
    ``steps`` as an empty list.

    ``decode_scale`` f: the image was decoded at 1/f of the file's size (JPEG 2000 or JPEG with a target size); decoded
    pixel ``i`` covers original pixels ``f * i .. f * i + f - 1``, so original pixel-centre coordinates map as
    ``x_decoded = (x + 0.5) / f - 0.5``; ``spacing_mm`` is then the spacing of the decoded pixels (f x the file's)
    while ``original_shape`` stays the file's (rows, cols). ``decode_note``: why the file was or was not decoded
    reduced (None when no target size was asked for, or the format has no reduced decode).
    ``voi_window`` / ``voi_source``: the DICOM VOI as a linear ``(center, width)`` in the units of the returned
    pixels (mirrored when they were inverted; for a VOI LUT Sequence its input range) and the tag it came from.
    ``voi``: the file's VOI exactly, as pydicom's ``apply_voi_lut`` would apply it, for
    :func:`landmark_afl.io.dicom_pixels.apply_voi` (the protocol step ``voi_window``, the overlays): a small dict
    ``{"function": "LINEAR" | "LINEAR_EXACT" | "SIGMOID" | "LUT", "center", "width"`` (modality-output units, before
    any inversion), ``"lut_first", "lut_bits", "lut"`` (the LUT's first mapped input, output bits and entries as a
    tuple of ints), ``"inverted", "value_range"`` (the inversion ``lo + hi - v`` the reader applied) ``, "source"}``
    (see :func:`landmark_afl.io.dicom_pixels.voi_record`); None for non-DICOM and colour images, or without a VOI.
    Patient name, ID and birth date are never stored.
    """
    meta: dict[str, Any] = dict.fromkeys(META_KEYS)
    meta.update(path=str(path), format=fmt, spacing_source="none", n_frames=1, frame_used=0, decode_scale=1, steps=[])
    return meta
