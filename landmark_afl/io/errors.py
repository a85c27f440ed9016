"""The one exception type of :mod:`landmark_afl.io`: a file that cannot be read as a 2D image."""

from __future__ import annotations

from pathlib import Path


class ImageReadError(ValueError):
    """A file cannot be read as a 2D image; ``str()`` names the file, the cause in plain words and the fix.

    Args:
        path: the file that failed.
        reason: what is wrong, in plain words.
        fix: what the user can do about it (optional).

    Example:
        >>> err = ImageReadError("scan.dcm", "the file holds no pixel data", "export the image, not the header")
        >>> str(err)
        'scan.dcm: the file holds no pixel data. Fix: export the image, not the header'
    """

    def __init__(self, path: str | Path, reason: str, fix: str | None = None) -> None:
        self.path = Path(path)
        self.reason = reason
        self.fix = fix
        message = f"{path}: {reason}"
        if fix:
            message += f". Fix: {fix}"
        super().__init__(message)


class ImageNotFoundError(ImageReadError, FileNotFoundError):
    """The file does not exist: an :class:`ImageReadError` that is also a :class:`FileNotFoundError`."""

    def __init__(self, path: str | Path) -> None:
        import os

        where = "check the path" if Path(path).is_absolute() else f"check the path (relative to {os.getcwd()})"
        super().__init__(path, "no such file", where)


def decoder_failure(path: str | Path, decoder: str, err: BaseException, fix: str | None = None) -> ImageReadError:
    """The :class:`ImageReadError` for an exception a decoder library raised (raise it ``from err``).

    A ``MemoryError`` says so and how to get round it; anything else gives the decoder, the exception type and its
    last message line.

    Args:
        path: the file.
        decoder: the library in words, e.g. ``"pydicom"``, ``"Pillow"``, ``"SimpleITK"``.
        err: what it raised.
        fix: the fix to offer (a generic one when None).

    Example:
        >>> str(decoder_failure("a.png", "Pillow", MemoryError()))  # doctest: +ELLIPSIS
        'a.png: Pillow ran out of memory decoding it (MemoryError). Fix: ...'
    """
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    detail = f"{type(err).__name__}: {lines[-1]}" if lines else type(err).__name__
    if isinstance(err, MemoryError):
        return ImageReadError(
            path,
            f"{decoder} ran out of memory decoding it ({detail})",
            "free memory or read it on a larger machine; if the image cannot be that large, its header is damaged",
        )
    return ImageReadError(path, f"{decoder} cannot decode it ({detail})", fix or "check the file is complete")
