"""JPEG 2000 at a reduced resolution level: read the codestream header, pick the level, decode it with Pillow.

A JPEG 2000 codestream holds ``L`` wavelet decomposition levels; OpenJPEG (through Pillow) can stop after any of
them and return the image at ``1 / f`` of its size, ``f = 2**r``, ``r <= L``, for a fraction of the full decode
time. Three facts about that output, checked on the NEMA WG04 files and synthetic blobs:

- Size: ``ceil(h / f) x ceil(w / f)``. Pillow 13 sizes its buffer ``round(w / f)`` and then rejects OpenJPEG's
  last tile ("broken data stream") whenever the two differ; :func:`decode_level` gives it the ceiling.
- Values: Pillow scales samples of precision ``p`` up to fill 8 or 16 bits (``v << (16 - p)``) and stores signed
  samples with ``+ 2**(p - 1)``; both are undone here, so level 0 equals pydicom's decode of the same codestream.
- Position: the low-pass sample ``i`` of level ``r`` is centred on full-resolution pixel ``f * i`` (the 5/3 and
  9/7 filters are symmetric about the even samples), not on the block centre ``f * i + (f - 1) / 2`` that an
  area downsample has. :func:`recentre` moves it there by linear interpolation (``+ (f - 1) / (2 f)`` decoded
  pixels), so decoded pixel ``i`` covers full pixels ``f * i .. f * i + f - 1`` exactly like an area downsample:
  in pixel-centre coordinates ``x_decoded = (x_full + 0.5) / f - 0.5``. Without it landmarks move by ``(f - 1) / 2``
  full pixels (3.5 px at 1/8).
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

import numpy as np

# DICOM JPEG 2000 and High-Throughput JPEG 2000 (HTJ2K) transfer syntaxes
J2K_TRANSFER_SYNTAXES = {
    "1.2.840.10008.1.2.4.90": "JPEG 2000 (Lossless Only)",
    "1.2.840.10008.1.2.4.91": "JPEG 2000",
    "1.2.840.10008.1.2.4.201": "HTJ2K (Lossless Only)",
    "1.2.840.10008.1.2.4.202": "HTJ2K (Lossless RPCL)",
    "1.2.840.10008.1.2.4.203": "HTJ2K",
}
_SOC_SIZ = b"\xff\x4f\xff\x51"
_JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"


class ReducedDecodeUnsupported(ValueError):
    """The reduced decode is not safe or failed for this file; ``str()`` says why (the caller decodes in full)."""


class TruncatedCodestream(ReducedDecodeUnsupported):
    """The codestream ends before its own markers say it should; ``str()`` says where (no decoder will help)."""


@dataclass(frozen=True)
class CodestreamInfo:
    """What the main header of a JPEG 2000 codestream says (SIZ and COD / COC marker segments).

    Attributes:
        width: image width on the reference grid, ``Xsiz - XOsiz``.
        height: image height, ``Ysiz - YOsiz``.
        offset: ``(XOsiz, YOsiz)``, the image origin on the reference grid.
        components: number of components (1 for grey).
        precision: bit depth of component 0.
        signed: component 0 holds signed samples.
        subsampling: ``(XRsiz, YRsiz)`` of component 0.
        levels: decomposition levels in the main header (the smallest of COD and any COC).
    """

    width: int
    height: int
    offset: tuple[int, int]
    components: int
    precision: int
    signed: bool
    subsampling: tuple[int, int]
    levels: int


def codestream_start(data: bytes) -> int:
    """Offset of the codestream (SOC marker) in ``data``: 0 for a raw codestream, after the ``jp2c`` box in JP2.

    Raises:
        ReducedDecodeUnsupported: neither a codestream nor a JP2 file with one.
    """
    if data[:4] == _SOC_SIZ:
        return 0
    if data[:12] == _JP2_SIGNATURE:
        pos = 0
        while pos + 8 <= len(data):
            length, box = struct.unpack_from(">I4s", data, pos)
            header = 8
            if length == 1:
                (length,) = struct.unpack_from(">Q", data, pos + 8)
                header = 16
            elif length == 0:
                length = len(data) - pos
            if box == b"jp2c":
                if data[pos + header : pos + header + 4] == _SOC_SIZ:
                    return pos + header
                break
            if length < header:
                break
            pos += length
    raise ReducedDecodeUnsupported("the data is not a JPEG 2000 codestream (no SOC/SIZ marker, no jp2c box)")


def parse_header(data: bytes) -> CodestreamInfo:
    """Read SIZ and COD / COC from the main header of a codestream or JP2 file.

    Args:
        data: the codestream (a DICOM frame) or a whole ``.jp2`` / ``.j2k`` file.

    Raises:
        ReducedDecodeUnsupported: not JPEG 2000, or a header too damaged to read.
    """
    start = codestream_start(data)
    try:
        (lsiz,) = struct.unpack_from(">H", data, start + 4)
        _, xsiz, ysiz, xo, yo, _, _, _, _, csiz = struct.unpack_from(">HIIIIIIIIH", data, start + 6)
        ssiz, xr, yr = struct.unpack_from(">BBB", data, start + 4 + 38)
        pos = start + 4 + lsiz
        levels: int | None = None
        while pos + 4 <= len(data):
            marker, length = struct.unpack_from(">HH", data, pos)
            if marker == 0xFF90 or length < 2:  # SOT: end of the main header
                break
            if marker == 0xFF52:  # COD: Scod, SGcod (4 bytes), then SPcod starting with the level count
                levels = _min(levels, data[pos + 9])
            elif marker == 0xFF53:  # COC: Ccoc (1 or 2 bytes), Scoc, then SPcoc starting with the level count
                levels = _min(levels, data[pos + 4 + (1 if csiz < 257 else 2) + 1])
            pos += 2 + length
    except (struct.error, IndexError) as err:
        raise TruncatedCodestream(
            f"the JPEG 2000 codestream is truncated: it ends inside its main header ({len(data) - start} bytes)"
        ) from err
    if levels is None:
        raise ReducedDecodeUnsupported("the JPEG 2000 main header has no COD marker (decomposition levels unknown)")
    return CodestreamInfo(
        width=xsiz - xo,
        height=ysiz - yo,
        offset=(xo, yo),
        components=csiz,
        precision=(ssiz & 0x7F) + 1,
        signed=bool(ssiz & 0x80),
        subsampling=(xr, yr),
        levels=levels,
    )


def _min(current: int | None, value: int) -> int:
    return value if current is None else min(current, value)


def check_complete(data: bytes) -> None:
    """Raise :class:`TruncatedCodestream` when the codestream in ``data`` is cut short.

    Walks the main header to the first SOT marker, then each tile-part by its declared length ``Psot``: a tile-part
    that runs past the end, a main header without SOT, or fewer tiles than SIZ implies with no EOC marker at the
    end, mean bytes are missing. Bytes after EOC (DICOM's even-length padding) are allowed. An unexpected marker
    ends the check without a verdict (the decoder reports it).

    Args:
        data: a codestream (a DICOM frame) or a whole ``.jp2`` / ``.j2k`` file.

    Raises:
        ReducedDecodeUnsupported: not JPEG 2000 at all (no SOC/SIZ marker).
    """
    start = codestream_start(data)
    n = len(data)
    if start + 6 + 34 > n:
        raise TruncatedCodestream(f"the JPEG 2000 codestream is truncated: it ends inside its SIZ marker ({n} bytes)")
    xsiz, ysiz, _, _, xt, yt, xto, yto = struct.unpack_from(">IIIIIIII", data, start + 8)
    tiles = -(-(xsiz - xto) // max(xt, 1)) * -(-(ysiz - yto) // max(yt, 1))
    pos = start + 2
    while True:  # main header: marker segments up to the first SOT
        if pos + 4 > n:
            raise TruncatedCodestream(
                f"the JPEG 2000 codestream is truncated: it ends inside its main header ({n - start} bytes, no tile)"
            )
        marker, length = struct.unpack_from(">HH", data, pos)
        if marker == 0xFF90:
            break
        if marker >> 8 != 0xFF or length < 2:
            return
        pos += 2 + length
    seen: set[int] = set()
    while pos + 2 <= n:
        (marker,) = struct.unpack_from(">H", data, pos)
        if marker != 0xFF90:  # EOC, or something unexpected that the decoder will judge
            return
        if pos + 12 > n:
            raise TruncatedCodestream(
                f"the JPEG 2000 codestream is truncated: it ends inside a tile-part header ({n - start} bytes)"
            )
        tile, psot = struct.unpack_from(">HI", data, pos + 4)
        seen.add(tile)
        if psot == 0:  # the last tile-part: it runs to EOC
            if data.rstrip(b"\0").endswith(b"\xff\xd9"):
                return
            raise TruncatedCodestream(
                "the JPEG 2000 codestream is truncated: its last tile-part runs to the end of the data, which has no "
                "EOC marker"
            )
        if pos + psot > n:
            raise TruncatedCodestream(
                f"the JPEG 2000 codestream is truncated: a tile-part of tile {tile} declares {psot} bytes, only "
                f"{n - pos} are present ({n - start} bytes in all)"
            )
        pos += psot
    if len(seen) < tiles:
        raise TruncatedCodestream(
            f"the JPEG 2000 codestream is incomplete: {len(seen)} of {tiles} tiles present and no EOC marker"
        )


def check_grey(info: CodestreamInfo) -> None:
    """Raise :class:`ReducedDecodeUnsupported` unless the codestream is one plain grey component of <= 16 bits."""
    if info.components != 1:
        raise ReducedDecodeUnsupported(f"{info.components} components (only single-component grey is reduced)")
    if info.precision > 16:
        raise ReducedDecodeUnsupported(f"{info.precision}-bit samples (Pillow decodes at most 16 bits exactly)")
    if info.offset != (0, 0) or info.subsampling != (1, 1):
        raise ReducedDecodeUnsupported(
            f"image offset {info.offset} / subsampling {info.subsampling} on the reference grid (only 0 / 1)"
        )


def reduced_shape(shape: tuple[int, int], level: int) -> tuple[int, int]:
    """(rows, cols) that resolution level ``level`` decodes to: ``ceil(n / 2**level)`` each."""
    f = 1 << level
    return -(-int(shape[0]) // f), -(-int(shape[1]) // f)


def choose_level(shape: tuple[int, int], target_size: tuple[int, int], levels: int) -> int:
    """The coarsest level whose image still covers ``target_size`` the way the letterbox fits it.

    The letterbox scales an image [h, w] by ``min(H / h, W / w)``; the level is the largest ``r <= levels`` for which
    that factor, computed on the level's ``ceil(h / 2**r) x ceil(w / 2**r)`` image, is still <= 1 (the letterbox
    only shrinks or keeps it, never enlarges).

    Args:
        shape: full-resolution (rows, cols).
        target_size: (H, W) of the network input.
        levels: decomposition levels of the codestream.

    Example:
        >>> choose_level((1760, 1760), (512, 512), 5), choose_level((1760, 1760), (256, 256), 5)
        (1, 2)
    """
    out_h, out_w = target_size
    level = 0
    for r in range(1, max(0, int(levels)) + 1):
        h, w = reduced_shape(shape, r)
        if min(out_h / h, out_w / w) > 1.0:
            break
        level = r
    return level


def decode_level(data: bytes, info: CodestreamInfo, level: int) -> np.ndarray:
    """Decode resolution level ``level`` with Pillow: the codestream's sample values, float32 [rows, cols].

    Pillow's 8/16-bit scaling and signed offset are undone (see the module docstring); the result is NOT re-centred
    (:func:`recentre`). Level 0 equals a full decode.

    Raises:
        ReducedDecodeUnsupported: Pillow / OpenJPEG cannot decode the level, or returns an unexpected image.
    """
    from PIL import Image, UnidentifiedImageError

    rows, cols = reduced_shape((info.height, info.width), level)
    f = 1 << level
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.format != "JPEG2000":
                raise ReducedDecodeUnsupported(f"Pillow opened it as {im.format}, not JPEG 2000")
            mode = im.mode
            if level:
                im.reduce = level  # the plugin's decode-time reduction (a property on Jpeg2KImageFile)
                # Pillow sizes the reduced image int((w + f/2) / f); give it a size that rounds to OpenJPEG's ceil
                im._size = (cols * f, rows * f)
            im.load()
            arr = np.asarray(im)
    except ReducedDecodeUnsupported:
        raise
    except UnidentifiedImageError as err:
        raise ReducedDecodeUnsupported(f"Pillow/OpenJPEG cannot identify the codestream at level {level}") from err
    except Exception as err:  # the Pillow/OpenJPEG boundary: MemoryError, OSError, DecompressionBombError, ...
        reason = f"Pillow/OpenJPEG failed at level {level} ({type(err).__name__}: {err})"
        raise ReducedDecodeUnsupported(reason) from err
    if arr.shape != (rows, cols) or mode not in ("L", "I;16"):
        raise ReducedDecodeUnsupported(
            f"Pillow returned mode {mode} {arr.shape} at level {level} where (rows, cols) = {(rows, cols)} was expected"
        )
    shift = (16 if mode == "I;16" else 8) - info.precision
    values = arr.astype(np.int32)
    if shift > 0:
        values >>= shift
    if info.signed:
        values -= 1 << (info.precision - 1)
    return values.astype(np.float32)


def recentre(arr: np.ndarray, level: int) -> np.ndarray:
    """Move level-``level`` samples from full pixel ``f * i`` to the block centre ``f * i + (f - 1) / 2``.

    Linear interpolation by ``d = (f - 1) / (2 f)`` decoded pixels along rows and columns, the last row / column
    repeated at the far edge. Afterwards decoded pixel ``i`` sits where an area downsample's pixel ``i`` sits.
    """
    if level == 0:
        return arr
    f = 1 << level
    d = np.float32((f - 1) / (2 * f))
    out = np.asarray(arr, np.float32)
    for axis in (0, 1):
        nxt = np.concatenate([out[1:], out[-1:]], axis=0) if axis == 0 else np.concatenate([out[:, 1:], out[:, -1:]], 1)
        out = (1 - d) * out + d * nxt
    return out


def decode_reduced(data: bytes, info: CodestreamInfo, level: int, label: str = "") -> tuple[np.ndarray, int, list[str]]:
    """Decode at ``level`` (one level finer on a decoder error: a tile may hold fewer levels) and re-centre.

    A second failure gives up: OpenJPEG decodes the whole level before Pillow rejects it, so trying every level of
    a file Pillow cannot read at all would cost more than the full decode.

    Args:
        data: codestream or JP2 bytes.
        info: :func:`parse_header` of ``data``.
        level: the wanted level, ``1 <= level <= info.levels``.
        label: what was decoded, for the step text (e.g. the transfer syntax).

    Returns:
        ``(values float32 [ceil(h / f), ceil(w / f)], level used, steps)``.

    Raises:
        ReducedDecodeUnsupported: neither ``level`` nor ``level - 1`` (if >= 1) decodes.
    """
    errors: list[str] = []
    for r in range(level, max(0, level - 2), -1):
        try:
            arr = decode_level(data, info, r)
        except ReducedDecodeUnsupported as err:
            errors.append(str(err))
            continue
        steps = [f"level {level} failed, backed off to level {r}: {errors[0]}"] if errors else []
        f = 1 << r
        steps.append(
            f"decode (Pillow/OpenJPEG{', ' + label if label else ''}, resolution level {r} of {info.levels}: "
            f"1/{f} size, {arr.shape[0]}x{arr.shape[1]})"
        )
        steps.append(
            f"re-centre: +{(f - 1) / (2 * f):g} px (level-{r} sample i sits on full pixel {f}*i; moved to the centre "
            f"{f}*i + {(f - 1) / 2:g} of the {f}x{f} block it stands for)"
        )
        return recentre(arr, r), r, steps
    raise ReducedDecodeUnsupported("; ".join(errors) if errors else f"no level to decode (asked for {level})")


def level_for(info: CodestreamInfo, target_size: tuple[int, int]) -> int:
    """:func:`choose_level` for this codestream's size and decomposition levels."""
    return choose_level((info.height, info.width), target_size, info.levels)
