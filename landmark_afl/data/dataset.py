"""The toolkit's own landmark data set: ``dataset.yaml`` + ``images/`` + ``landmarks.csv``.

Layout (DESIGN.md, "Data set layout")::

    my_dataset/
      dataset.yaml    name; landmarks (ordered names); optional flip_pairs, spacing_mm, splits
      images/         any readable format, nested folders allowed
      landmarks.csv   image,landmark,x,y in pixels (x = column, y = row, origin at the centre of the top-left pixel);
                      an absent landmark has no row, or a row with empty x and y

Loading never reads pixels: it parses the two text files and lists ``images/``, so it is fast even for large sets.
Every structural problem is collected (:func:`parse_dataset`) and :func:`load_dataset` raises one
:class:`DatasetError` that lists them all, each naming the file, the row and the fix.
"""

from __future__ import annotations

import csv
import difflib
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

YAML_NAME = "dataset.yaml"
CSV_NAME = "landmarks.csv"
IMAGES_DIR = "images"
CSV_COLUMNS = ("image", "landmark", "x", "y")
STANDARD_SPLITS = ("train", "val", "test")
FALLBACK_SEED = 0
FALLBACK_FRACTIONS = (0.8, 0.1, 0.1)


class DatasetError(ValueError):
    """A data set folder is malformed; the message names the file, the row and how to fix it."""


@dataclass(frozen=True)
class Problem:
    """One problem found in a data set.

    Attributes:
        file: the file concerned (path as given / found).
        row: 1-based line number in that file (the CSV header is line 1), or None.
        message: what is wrong and how to fix it.
        severity: "error" (the data set cannot be used as is) or "warning" (worth a look, not fatal).
    """

    file: str
    row: int | None
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        where = self.file if self.row is None else f"{self.file}:{self.row}"
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class LandmarkDataset:
    """A loaded landmark data set (no pixels read).

    Example:
        >>> ds = load_dataset("my_dataset")  # doctest: +SKIP
        >>> ds.landmarks[:2], len(ds.images)  # doctest: +SKIP
        (('sella', 'nasion'), 300)
        >>> ds.coords(ds.split("train")[0]).shape  # doctest: +SKIP
        (19, 2)

    Attributes:
        root: the data set folder.
        name: the data set name from dataset.yaml.
        landmarks: ordered landmark names (K).
        flip_pairs: (i, j) index pairs of landmarks that swap under a left/right flip.
        spacing_mm: (row, col) fallback spacing in mm for images that carry none, or None.
        images: image keys (paths relative to ``images/``, forward slashes, sorted).
    """

    root: Path
    name: str
    landmarks: tuple[str, ...]
    flip_pairs: tuple[tuple[int, int], ...]
    spacing_mm: tuple[float, float] | None
    images: tuple[str, ...]
    _coords: dict[str, np.ndarray] = field(repr=False, compare=False)
    _splits: dict[str, tuple[str, ...]] | None = field(repr=False, compare=False)

    def coords(self, image: str) -> np.ndarray:
        """Landmark coordinates of one image, float64 [K, 2] as (x, y) pixels; NaN rows are absent landmarks."""
        if image not in self._coords:
            raise KeyError(f"image {image!r} is not in data set {self.root} ({len(self.images)} images)")
        return self._coords[image].copy()

    def image_path(self, image: str) -> Path:
        """Absolute path of an image key."""
        return self.root / IMAGES_DIR / image

    @property
    def split_names(self) -> tuple[str, ...]:
        """The split names defined in dataset.yaml, or the standard three for the fallback."""
        return tuple(self._splits) if self._splits is not None else STANDARD_SPLITS

    @property
    def has_explicit_splits(self) -> bool:
        """Whether dataset.yaml defines the splits (otherwise :meth:`split` uses the fallback)."""
        return self._splits is not None

    def split(self, name: str) -> tuple[str, ...]:
        """Image keys of one split.

        From dataset.yaml when it has ``splits`` (a standard name it does not list is empty). Otherwise the fallback:
        the sorted image keys shuffled by ``numpy.random.default_rng(0)``, then 80 % train, 10 % val, 10 % test
        (rounded; at least one val image when there are two or more images; a single image is in train and val).
        """
        splits = self._splits if self._splits is not None else fallback_splits(self.images)
        if name in splits:
            return splits[name]
        if name in STANDARD_SPLITS:
            return ()
        raise KeyError(f"no split {name!r} in {self.root / YAML_NAME}; splits: {', '.join(splits)}")


def fallback_splits(images: tuple[str, ...] | list[str]) -> dict[str, tuple[str, ...]]:
    """Deterministic 80/10/10 train/val/test split of image keys (see :meth:`LandmarkDataset.split`)."""
    keys = sorted(images)
    n = len(keys)
    if n == 0:
        return {name: () for name in STANDARD_SPLITS}
    if n == 1:
        return {"train": (keys[0],), "val": (keys[0],), "test": ()}
    order = np.random.default_rng(FALLBACK_SEED).permutation(n)
    shuffled = [keys[i] for i in order]
    n_val = max(1, round(FALLBACK_FRACTIONS[1] * n))
    n_test = min(round(FALLBACK_FRACTIONS[2] * n), n - n_val - 1)
    n_train = n - n_val - n_test
    return {
        "train": tuple(sorted(shuffled[:n_train])),
        "val": tuple(sorted(shuffled[n_train : n_train + n_val])),
        "test": tuple(sorted(shuffled[n_train + n_val :])),
    }


def list_image_keys(images_dir: Path) -> list[str]:
    """Image keys under ``images/``: paths relative to it with forward slashes, sorted."""
    from landmark_afl.io import find_images  # readable formats by extension, DICOM also by content

    return sorted(p.relative_to(images_dir).as_posix() for p in find_images(images_dir))


def _did_you_mean(word: str, options: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _parse_spacing(value: object, where: str, problems: list[Problem]) -> tuple[float, float] | None:
    if value is None:
        return None
    values = value if isinstance(value, list | tuple) else [value, value]
    try:
        spacing = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        spacing = ()
    if len(spacing) != 2 or not all(math.isfinite(s) and s > 0 for s in spacing):
        problems.append(Problem(where, None, f"spacing_mm must be a positive number or [row, col]; got {value!r}"))
        return None
    return (spacing[0], spacing[1])


def _parse_yaml(path: Path, problems: list[Problem]) -> dict | None:
    where = str(path)
    if not path.is_file():
        problems.append(
            Problem(where, None, "missing: every data set needs a dataset.yaml with at least 'name' and 'landmarks'")
        )
        return None
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        problems.append(Problem(where, None, f"not valid YAML ({err}); fix the syntax"))
        return None
    if not isinstance(doc, dict):
        problems.append(Problem(where, None, "must be a YAML mapping with keys name, landmarks, ..."))
        return None
    known = {"name", "landmarks", "flip_pairs", "spacing_mm", "splits", "description", "source", "license", "notes"}
    for key in doc:
        if key not in known:
            hint = _did_you_mean(str(key), sorted(known))
            problems.append(Problem(where, None, f"unknown key {key!r}{hint}; known keys: {', '.join(sorted(known))}"))
    landmarks = doc.get("landmarks")
    if not isinstance(landmarks, list) or not landmarks or not all(isinstance(n, str) and n for n in landmarks):
        problems.append(Problem(where, None, "'landmarks' must be a non-empty list of landmark names (strings)"))
        return None
    duplicates = sorted({n for n in landmarks if landmarks.count(n) > 1})
    if duplicates:
        problems.append(Problem(where, None, f"landmark names repeated in 'landmarks': {duplicates}; make them unique"))
    return doc


def _parse_flip_pairs(doc: dict, where: str, names: tuple[str, ...], problems: list[Problem]) -> tuple:
    pairs = doc.get("flip_pairs") or []
    out = []
    index = {n: i for i, n in enumerate(names)}
    if not isinstance(pairs, list):
        problems.append(Problem(where, None, "'flip_pairs' must be a list of [left_name, right_name] pairs"))
        return ()
    for pair in pairs:
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            problems.append(Problem(where, None, f"flip pair {pair!r} must be a list of two landmark names"))
            continue
        unknown = [p for p in pair if p not in index]
        if unknown:
            hint = _did_you_mean(str(unknown[0]), names)
            problems.append(Problem(where, None, f"flip pair {pair!r} names unknown landmark(s) {unknown}{hint}"))
            continue
        out.append((index[pair[0]], index[pair[1]]))
    return tuple(out)


def _parse_splits(doc: dict, where: str, keys: set[str], problems: list[Problem]) -> dict | None:
    splits = doc.get("splits")
    if splits is None:
        return None
    if not isinstance(splits, dict):
        problems.append(Problem(where, None, "'splits' must map split names (train, val, test) to image lists"))
        return None
    out = {}
    for name, items in splits.items():
        items = items or []
        if not isinstance(items, list):
            problems.append(Problem(where, None, f"split {name!r} must be a list of image keys"))
            continue
        missing = [str(i) for i in items if str(i) not in keys]
        if missing:
            shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
            problems.append(
                Problem(
                    where,
                    None,
                    f"split {name!r} names {len(missing)} image(s) not found under images/: {shown}; "
                    "use paths relative to images/ with forward slashes",
                )
            )
        out[str(name)] = tuple(sorted(str(i) for i in items if str(i) in keys))
    return out


def _parse_float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _parse_csv(
    path: Path, names: tuple[str, ...], keys: set[str], problems: list[Problem]
) -> tuple[dict[str, np.ndarray], dict[tuple[str, str], int]]:
    """Read landmarks.csv into {image: [K, 2]}; returns the coordinates and {(image, landmark): CSV line}."""
    where = str(path)
    coords = {k: np.full((len(names), 2), np.nan) for k in keys}
    seen: dict[tuple[str, str], int] = {}
    if not path.is_file():
        problems.append(Problem(where, None, f"missing: write a CSV with the header {','.join(CSV_COLUMNS)}"))
        return coords, seen
    index = {n: i for i, n in enumerate(names)}
    try:
        path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = path.read_bytes()[: err.start].count(b"\n") + 1
        problems.append(Problem(where, line, f"is not UTF-8 text (byte 0x{path.read_bytes()[err.start]:02x}); save "
                                             "it as UTF-8 (e.g. iconv -f latin1 -t utf-8)"))  # fmt: skip
        return coords, seen
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        header = [h.strip() for h in header] if header else []
        missing = [c for c in CSV_COLUMNS if c not in header]
        if missing:
            problems.append(
                Problem(
                    where, 1, f"header {header} lacks column(s) {missing}; the header must be {','.join(CSV_COLUMNS)}"
                )
            )
            return coords, seen
        col = {c: header.index(c) for c in CSV_COLUMNS}
        for line, row in enumerate(reader, start=2):
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) < len(header):
                problems.append(Problem(where, line, f"{len(row)} fields, the header has {len(header)}"))
                continue
            image, name = row[col["image"]].strip(), row[col["landmark"]].strip()
            xs, ys = row[col["x"]].strip(), row[col["y"]].strip()
            if image not in keys:
                problems.append(
                    Problem(where, line, f"image {image!r} not found under images/; fix the path or add the image")
                )
                continue
            if name not in index:
                hint = _did_you_mean(name, names)
                problems.append(
                    Problem(where, line, f"unknown landmark {name!r}{hint}; add it to 'landmarks' in dataset.yaml")
                )
                continue
            if (image, name) in seen:
                problems.append(
                    Problem(where, line, f"duplicate row for ({image}, {name}), first at line {seen[image, name]}")
                )
                continue
            seen[image, name] = line
            if not xs and not ys:
                continue  # absent landmark
            x, y = _parse_float(xs), _parse_float(ys)
            if x is None or y is None or not (math.isfinite(x) and math.isfinite(y)):
                problems.append(
                    Problem(
                        where,
                        line,
                        f"coordinates x={xs!r}, y={ys!r} are not finite numbers; "
                        "give pixel values, or leave both empty (or drop the row) for an absent landmark",
                    )
                )
                continue
            coords[image][index[name]] = (x, y)
    return coords, seen


def parse_dataset(root: str | Path) -> tuple[LandmarkDataset | None, list[Problem], dict[tuple[str, str], int]]:
    """Parse a data set folder, collecting every structural problem instead of stopping at the first.

    Returns:
        The data set (None when dataset.yaml is unusable), the problems, and the landmarks.csv line number of
        every (image, landmark) row read.
    """
    root = Path(root)
    problems: list[Problem] = []
    if not root.is_dir():
        raise DatasetError(f"data set folder {root} does not exist; give the folder that holds dataset.yaml")
    doc = _parse_yaml(root / YAML_NAME, problems)
    images_dir = root / IMAGES_DIR
    keys = list_image_keys(images_dir) if images_dir.is_dir() else []
    if not keys:
        state = "is empty (no readable images)" if images_dir.is_dir() else "is missing"
        problems.append(Problem(str(images_dir), None, f"{state}: put the images (any readable format) there"))
    if doc is None:
        return None, problems, {}
    where = str(root / YAML_NAME)
    names = tuple(doc["landmarks"])
    flip_pairs = _parse_flip_pairs(doc, where, names, problems)
    spacing = _parse_spacing(doc.get("spacing_mm"), where, problems)
    splits = _parse_splits(doc, where, set(keys), problems)
    coords, lines = _parse_csv(root / CSV_NAME, names, set(keys), problems)
    ds = LandmarkDataset(
        root=root,
        name=str(doc.get("name") or root.name),
        landmarks=names,
        flip_pairs=flip_pairs,
        spacing_mm=spacing,
        images=tuple(keys),
        _coords=coords,
        _splits=splits,
    )
    return ds, problems, lines


def format_problems(problems: list[Problem], limit: int | None = None) -> str:
    """One problem per line (all of them unless ``limit``)."""
    shown = problems if limit is None else problems[:limit]
    lines = [f"  - {p}" for p in shown]
    if limit is not None and len(problems) > limit:
        lines.append(f"  ... and {len(problems) - limit} more (run `landmark-afl data check` to list them all)")
    return "\n".join(lines)


def load_dataset(root: str | Path) -> LandmarkDataset:
    """Load a data set folder (dataset.yaml, images/, landmarks.csv) without reading any pixels.

    Raises:
        DatasetError: listing every structural problem (file, row, fix).
    """
    ds, problems, _ = parse_dataset(root)
    errors = [p for p in problems if p.severity == "error"]
    if errors or ds is None:
        raise DatasetError(f"data set {root} has {len(errors)} problem(s):\n{format_problems(errors, limit=20)}")
    return ds
