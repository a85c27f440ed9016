"""Torch data set for training and validation: read -> protocol -> letterbox -> augment -> heatmap targets.

The deterministic part (reading, the contrast protocol and the letterbox resize) is cached per image in memory, so
each image is decoded once per process; only the augmentation and the target encoding run every epoch. The
augmentation of item ``i`` in epoch ``e`` is seeded by ``(seed, e, i)``, so a resumed run sees the same samples as
an uninterrupted one, whatever the number of workers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from landmark_afl.codecs import GaussianHeatmapCodec
from landmark_afl.data.augment import Augmenter
from landmark_afl.data.letterbox import inside_image, letterbox, letterbox_size, to_input_coords


def resolve_spacing(meta: dict, fallback: tuple[float, float] | None) -> tuple[np.ndarray, str]:
    """(row, col) spacing in mm and its source: the image's own, else the data set's fallback, else NaN."""
    if meta.get("spacing_mm") is not None:
        return np.asarray(meta["spacing_mm"], np.float64), str(meta.get("spacing_source"))
    if fallback is not None:
        return np.asarray(fallback, np.float64), "dataset.yaml"
    return np.full(2, np.nan), "none"


class PreparedImage:
    """One image after the deterministic steps: input-sized pixels and what maps results back to the original.

    ``valid`` is the (rows, cols) of the input the image fills (the letterbox pads the rest): decoding keeps every
    landmark inside it. None stands for the whole input.
    """

    __slots__ = ("image", "scale", "spacing", "spacing_source", "shape", "valid")

    def __init__(
        self, image: np.ndarray, scale: np.ndarray, spacing: np.ndarray, spacing_source: str, shape, valid=None
    ):
        self.image = image
        self.scale = scale
        self.spacing = spacing
        self.spacing_source = spacing_source
        self.shape = shape
        self.valid = tuple(image.shape[-2:]) if valid is None else tuple(int(v) for v in valid)


def prepare_image(
    path,
    protocol: Callable,
    input_size: tuple[int, int],
    fallback_spacing: tuple[float, float] | None = None,
    jpeg_scaling: bool = True,
) -> PreparedImage:
    """read_image -> protocol -> letterbox: the preprocessing shared by training, evaluation and inference.

    The file is read for ``input_size``: JPEG 2000 is decoded at the coarsest resolution level that still covers it
    (``meta["decode_scale"]`` f, up to 20x faster), a JPEG by libjpeg's DCT scaling at 1/2, 1/4 or 1/8 (unless
    ``jpeg_scaling`` is False, as for runs trained before it), and the protocol and the letterbox run on that smaller
    image. The result stays in original terms whatever f is: ``scale`` maps original-pixel coordinates to input pixels
    (the letterbox scale / f, exact because decoded pixel i covers original pixels f*i .. f*i+f-1, i.e.
    ``x_decoded = (x + 0.5) / f - 0.5``), ``spacing`` is the original pixels' spacing in mm and ``shape`` the
    original (rows, cols).

    Args:
        path: the image file.
        protocol: the contrast protocol, called on (pixels, meta).
        input_size: (H, W) of the network input.
        fallback_spacing: (row, col) mm for images that carry no spacing (the data set's), or None.
        jpeg_scaling: decode a JPEG file at the scale that covers ``input_size`` (False: in full; the config key
            ``jpeg_scaling`` of the run).
    """
    from landmark_afl.io import image_format, read_image

    target = tuple(int(v) for v in input_size)
    if not jpeg_scaling and image_format(Path(path)) == "jpeg":
        target = None
    pixels, meta = read_image(path, target_size=target)
    return prepare_pixels(pixels, meta, protocol, input_size, fallback_spacing)


def prepare_pixels(
    pixels: np.ndarray,
    meta: dict,
    protocol: Callable,
    input_size: tuple[int, int],
    fallback_spacing: tuple[float, float] | None = None,
) -> PreparedImage:
    """The steps of :func:`prepare_image` after reading: protocol -> letterbox, in the stored image's terms.

    Args:
        pixels: float32 [H, W] as ``read_image`` returns them (an array from elsewhere with ``meta={}``).
        meta: ``read_image``'s meta (``decode_scale``, ``original_shape``, ``spacing_mm``...), or {}.
        protocol: the contrast protocol, called on (pixels, meta).
        input_size: (H, W) of the network input.
        fallback_spacing: (row, col) mm when ``meta`` carries no spacing, or None.
    """
    processed = protocol(pixels, meta)
    image, scale = letterbox(processed, input_size)
    valid = letterbox_size(processed.shape, input_size)
    spacing, source = resolve_spacing(meta, fallback_spacing)
    shape = tuple(pixels.shape)
    f = int(meta.get("decode_scale") or 1)
    if f != 1:
        scale = scale / f
        if meta.get("spacing_mm") is not None:  # the decoded pixels' spacing; a fallback is already the original's
            spacing = spacing / f
        shape = tuple(int(v) for v in meta["original_shape"])
    return PreparedImage(image, scale, spacing, source, shape, valid)


def _check_inside(dataset, key: str, shape: tuple[int, int]) -> None:
    from landmark_afl.data.dataset import DatasetError

    xy = np.asarray(dataset.coords(key), np.float64)
    height, width = shape[:2]
    outside = np.isfinite(xy).all(-1) & ~inside_image(xy, shape)
    if outside.any():
        k = int(np.flatnonzero(outside)[0])
        raise DatasetError(
            f"{dataset.root}: landmark {dataset.landmarks[k]!r} of image {key!r} at (x={xy[k, 0]:g}, y={xy[k, 1]:g}) "
            f"lies outside the {width} x {height} image (W x H), with {int(outside.sum())} such landmark(s) in it; "
            f"fix landmarks.csv (pixels, x = column, y = row; leave a landmark that is not visible empty) - "
            f"`landmark-afl data check {dataset.root}` lists every such row"
        )


class LandmarkTrainingSet(Dataset):
    """Items of a landmark data set as tensors for the FPN.

    Each item is a dict: ``image`` [1, H, W], ``heatmaps`` [K, H, W], ``landmarks`` [K, 2] (input pixels, NaN =
    absent), ``target_xy`` [K, 2] (original pixels, un-augmented), ``scale`` [2] (sx, sy), ``spacing`` [2] (row,
    col mm, NaN when unknown), ``index`` and ``image_id``.

    Args:
        dataset: a loaded ``LandmarkDataset``.
        images: the image keys of this split.
        protocol: the contrast protocol (callable on (pixels, meta)).
        codec: the heatmap codec (its input_size is the network input).
        augmenter: random augmentation, or None for evaluation.
        seed: base seed of the augmentation.
        jpeg_scaling: read JPEG files at the input's scale (:func:`prepare_image`).
    """

    def __init__(
        self,
        dataset,
        images: Sequence[str],
        protocol: Callable,
        codec: GaussianHeatmapCodec,
        augmenter: Augmenter | None = None,
        seed: int = 0,
        jpeg_scaling: bool = True,
    ) -> None:
        self.jpeg_scaling = bool(jpeg_scaling)
        self.dataset = dataset
        self.images = tuple(images)
        self.protocol = protocol
        self.codec = codec
        self.augmenter = augmenter
        self.seed = int(seed)
        self.epoch = 0
        self._cache: dict[int, PreparedImage] = {}

    def __len__(self) -> int:
        return len(self.images)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def prepared(self, index: int) -> PreparedImage:
        """The deterministic part of item ``index`` (cached); its landmarks are checked against the image's size.

        Raises:
            DatasetError: a landmark lies outside its image (the message names it; ``landmark-afl data check``
                lists every such row).
        """
        if index not in self._cache:
            key = self.images[index]
            prep = prepare_image(self.dataset.image_path(key), self.protocol, self.codec.input_size,
                                 self.dataset.spacing_mm, self.jpeg_scaling)  # fmt: skip
            _check_inside(self.dataset, key, prep.shape)
            self._cache[index] = prep
        return self._cache[index]

    def __getitem__(self, index: int) -> dict:
        prep = self.prepared(index)
        target_xy = self.dataset.coords(self.images[index]).astype(np.float64)
        landmarks = to_input_coords(target_xy, prep.scale)
        image = prep.image
        if self.augmenter is not None:
            seed = int(np.random.SeedSequence([self.seed, self.epoch, index]).generate_state(1)[0])
            image, landmarks = self.augmenter(image, landmarks, seed)
        return {
            "image": torch.from_numpy(np.ascontiguousarray(image))[None],
            "heatmaps": self.codec.encode(landmarks),
            "landmarks": torch.from_numpy(landmarks.astype(np.float32)),
            "target_xy": torch.from_numpy(target_xy.astype(np.float32)),
            "scale": torch.from_numpy(prep.scale.astype(np.float32)),
            "spacing": torch.from_numpy(prep.spacing.astype(np.float32)),
            "valid": torch.tensor(prep.valid, dtype=torch.int64),
            "index": index,
            "image_id": self.images[index],
        }
