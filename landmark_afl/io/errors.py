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
        super().__init__(path, "no such file", "check the path (relative paths start at the current folder)")
