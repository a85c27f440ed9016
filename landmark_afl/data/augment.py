"""Training augmentation that moves the landmarks with the image, in one place.

Geometry (random affine: rotation, scale, translation) and intensity (brightness, contrast, Gaussian noise) come
from albumentations on the float32 [0, 1] image that the protocol produced (NOTES.md: do intensity *preprocessing*
on 16-bit data with OpenCV, hand albumentations float32 for augmentation). The horizontal flip is done here, not by
albumentations, because a flip must also swap the declared left/right landmark pairs; without flip pairs there is
no flip (a mirrored left hand is not a right hand's labels).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation strengths (0 turns one off).

    Attributes:
        rotate: max rotation in degrees.
        scale: max relative zoom (0.1 = 0.9-1.1).
        translate: max shift as a fraction of the size.
        brightness, contrast: max relative change.
        noise: max standard deviation of added Gaussian noise (image range [0, 1]).
        flip: probability of a horizontal flip (used only when the data set declares flip_pairs).
        p_affine: probability of the affine transform.
    """

    rotate: float = 10.0
    scale: float = 0.1
    translate: float = 0.05
    brightness: float = 0.1
    contrast: float = 0.1
    noise: float = 0.02
    flip: float = 0.5
    p_affine: float = 0.8


class Augmenter:
    """Random augmentation of (image [H, W] float32 [0, 1], landmarks [K, 2] with NaN = absent), seeded per call.

    Example:
        >>> aug = Augmenter(AugmentConfig())
        >>> img, pts = aug(np.zeros((64, 64), np.float32), np.array([[10.0, 20.0], [np.nan, np.nan]]), seed=0)
        >>> img.shape, bool(np.isnan(pts[1]).all())
        ((64, 64), True)
    """

    def __init__(self, cfg: AugmentConfig, flip_pairs: tuple[tuple[int, int], ...] = ()) -> None:
        import albumentations as A

        self.cfg = cfg
        self.flip_pairs = tuple(flip_pairs)
        transforms = []
        if cfg.rotate or cfg.scale or cfg.translate:
            transforms.append(
                A.Affine(
                    rotate=(-cfg.rotate, cfg.rotate),
                    scale=(1 - cfg.scale, 1 + cfg.scale),
                    translate_percent=(-cfg.translate, cfg.translate),
                    border_mode=0,
                    fill=0,
                    p=cfg.p_affine,
                )
            )
        if cfg.brightness or cfg.contrast:
            transforms.append(
                A.RandomBrightnessContrast(
                    brightness_limit=cfg.brightness, contrast_limit=cfg.contrast, ensure_safe_range=True, p=0.5
                )
            )
        if cfg.noise:
            transforms.append(A.GaussNoise(std_range=(0.0, cfg.noise), p=0.5))
        self.compose = None
        if transforms:
            self.compose = A.Compose(
                transforms, keypoint_params=A.KeypointParams(format="xy", remove_invisible=False), seed=0
            )

    def __call__(self, image: np.ndarray, landmarks: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        out = np.full_like(landmarks, np.nan, dtype=np.float64)
        if self.flip_pairs and rng.random() < self.cfg.flip:
            image, landmarks = hflip(image, landmarks, self.flip_pairs)
        if self.compose is None:
            return image.astype(np.float32), landmarks.astype(np.float64)
        present = np.isfinite(landmarks).all(1)
        self.compose.set_random_seed(int(rng.integers(2**31)))
        result = self.compose(image=image, keypoints=landmarks[present].astype(np.float32))
        out[present] = np.asarray(result["keypoints"], np.float64).reshape(-1, 2)
        return np.clip(result["image"], 0.0, 1.0).astype(np.float32), out


def hflip(image: np.ndarray, landmarks: np.ndarray, flip_pairs: tuple[tuple[int, int], ...]):
    """Mirror left-right: ``x' = W - 1 - x`` (pixel centres) and swap each declared (left, right) pair."""
    w = image.shape[1]
    flipped = landmarks.copy()
    flipped[:, 0] = w - 1 - flipped[:, 0]
    for i, j in flip_pairs:
        flipped[[i, j]] = flipped[[j, i]]
    return np.ascontiguousarray(image[:, ::-1]), flipped
