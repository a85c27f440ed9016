"""What ``predict`` runs over: INPUT as a folder, a single image, or a text file listing images -> sorted paths."""

from __future__ import annotations

import os
from pathlib import Path

LIST_SUFFIXES = (".txt", ".lst", ".list")


def collect_inputs(source: str | Path) -> list[Path]:
    """The images named by ``source``, absolute, de-duplicated and sorted by path.

    * a folder: searched recursively with :func:`landmark_afl.io.find_images` (DICOM recognised by content, with or
      without extension; DICOMDIR, hidden files and non-image files skipped);
    * a text file (``.txt``, ``.lst``, ``.list``): one path per line, relative to the list file's folder; blank lines
      and lines starting with ``#`` are ignored. Listed files are kept even when they are missing or unreadable, so
      that they are reported in errors.csv instead of vanishing silently;
    * any other file: that one image (unreadable ones are reported in errors.csv).

    Args:
        source: the INPUT argument of ``landmark-afl predict``.

    Raises:
        FileNotFoundError: ``source`` does not exist.
        ValueError: a list file names a folder (give the folder itself as INPUT instead); a folder holds no image
            (so that a mistyped or empty INPUT is not a silent success).

    Example:
        >>> import tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (folder / "b.png").write_bytes(b""), (folder / "a.txt").write_text("b.png\\n# comment\\n")
        >>> [p.name for p in collect_inputs(folder / "a.txt")]
        ['b.png']
    """
    from landmark_afl.io import find_images

    source = Path(source).expanduser()
    if not source.exists():
        raise FileNotFoundError(f"INPUT {source} does not exist; give a folder, an image file or a text file of paths")
    if source.is_dir():
        paths = find_images(source)
        if not paths:
            raise ValueError(_no_images_message(source))
    elif source.suffix.lower() in LIST_SUFFIXES:
        paths = _read_list(source)
    else:
        paths = [source]
    return sorted({p.resolve() for p in paths})


def _no_images_message(folder: Path) -> str:
    files = [p for p in folder.rglob("*") if p.is_file()]
    if not files:
        return f"INPUT {folder} is an empty folder (no files in it or below it); check the path"
    names = ", ".join(p.name for p in sorted(files)[:3]) + (", ..." if len(files) > 3 else "")
    return (
        f"INPUT {folder} holds {len(files)} file(s) but no image this toolkit reads ({names}); images are "
        "recognised by extension (.dcm, .png, .jpg, .tif, .jp2, .mha, .nii...) or as DICOM by content - check the "
        "folder, or list the files in a text file to have each one tried and reported"
    )


def _read_list(list_file: Path) -> list[Path]:
    paths = []
    base = list_file.parent
    # lines are bytes of file names, as the file system has them: any encoding (a Latin-1 name) is kept as is
    for number, raw_bytes in enumerate(list_file.read_bytes().splitlines(), start=1):
        raw = os.fsdecode(raw_bytes)
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        path = Path(line).expanduser()
        path = path if path.is_absolute() else base / path
        if path.is_dir():
            raise ValueError(
                f"{list_file}, line {number}: {line!r} is a folder; list image files only, or give the folder itself "
                "as INPUT"
            )
        paths.append(path)
    return paths


def overlay_name(path: Path, root: Path) -> Path:
    """Relative PNG name of the overlay of ``path``: its path under ``root`` with ``.png`` appended (unique)."""
    try:
        rel = path.relative_to(root)
    except ValueError:
        rel = Path(*path.parts[1:])
    return rel.with_name(rel.name + ".png")


def common_root(paths: list[Path]) -> Path:
    """The deepest folder that holds every path (the folder of the single path when there is one)."""
    if not paths:
        return Path(".")
    if len(paths) == 1:
        return paths[0].parent
    return Path(os.path.commonpath([str(p) for p in paths]))
