"""The embedded default data set: synthetic hand radiographs with 36 landmarks, written as real DICOM.

``generate_phantom(out, n, seed, size)`` writes::

    out/dataset.yaml      36 landmark names (phantom_anatomy.LANDMARKS), splits 70/15/15 %
    out/images/phantom_NNNN.dcm   DX, 12 bits stored in 16, MONOCHROME1 or MONOCHROME2 (half each),
                          ImagerPixelSpacing = FOV / size with a FOV of 240-280 mm (about 0.5 mm at 512 px),
                          uncompressed or RLE Lossless (half each)
    out/landmarks.csv     exact projected joint centres and tips (x = column, y = row, origin at the centre
                          of the top-left pixel); landmarks outside the collimated field have no row
    out/hardness.csv      image, hardness, low_dose, unusual_pose, overlap, implant, cutoff, n_absent

Hard cases come in known fractions (``HARD_FRACTIONS``; exactly ``round(fraction * n)`` images each, drawn
independently per factor, so an image can have several): low dose (30-50x fewer photons: strong quantum noise),
unusual pose (fingers spread wide and/or strongly flexed), overlap (the index or little finger crossed over its
neighbour), implant (a steel screw or a marker disc over a joint), cutoff (a collimator edge cuts off the distal
end of one digit; its landmarks beyond the edge are absent). ``hardness = 1 - prod(1 - weight * severity)`` over
the factors present and a small term for the hand's rotation (``HARD_WEIGHTS``), so it lies in [0, 1].

Deterministic: every random draw comes from ``numpy.random.default_rng([seed, ...])`` and the DICOM UIDs derive
from the seed, so one seed gives the same bytes.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from landmark_afl.data.dataset import IMAGES_DIR
from landmark_afl.data.phantom_anatomy import DIGITS, INDEX, LANDMARKS, Capsule, Ellipsoid, build_hand, sample_pose
from landmark_afl.data.phantom_dicom import write_dx
from landmark_afl.data.phantom_render import Exposure, Placement, add_capsule, add_ellipsoid, field_mask, render
from landmark_afl.data.writer import prepare_output, write_dataset_files

DEFAULT_N = 200
DEFAULT_SEED = 0
DEFAULT_SIZE = 512
HARD_FACTORS = ("low_dose", "unusual_pose", "overlap", "implant", "cutoff")
HARD_FRACTIONS = {"low_dose": 0.15, "unusual_pose": 0.15, "overlap": 0.10, "implant": 0.10, "cutoff": 0.10}
HARD_WEIGHTS = {"low_dose": 0.5, "unusual_pose": 0.35, "overlap": 0.4, "implant": 0.3, "cutoff": 0.3, "rotation": 0.1}
SPLIT_FRACTIONS = (0.70, 0.15, 0.15)
IMPLANT_SITES = tuple(
    INDEX[f"{f}_{p}"] for f in ("index", "middle", "ring", "little") for p in ("mcp", "pip", "dip")
) + (INDEX["thumb_mcp"], INDEX["thumb_ip"], INDEX["radius_centre"])


@dataclass(frozen=True)
class PhantomImage:
    """One rendered phantom image before writing."""

    pixels: np.ndarray  # uint16 [H, W], MONOCHROME2 stored values
    landmarks: np.ndarray  # float64 [36, 2] pixels, NaN = absent (outside the collimated field)
    projected: np.ndarray  # float64 [36, 2] pixels, every landmark's projection (absent ones included)
    spacing_mm: float
    window: tuple[float, float]
    laterality: str
    flags: dict[str, int]
    hardness: float


def assign_factors(n: int, seed: int) -> dict[str, np.ndarray]:
    """Which images get which hard factor (exactly round(fraction * n) each), MONOCHROME1 and RLE (n // 2 each)."""
    rng = np.random.default_rng([seed, 1_000_003])
    out = {}
    for name in HARD_FACTORS:
        flags = np.zeros(n, bool)
        flags[rng.permutation(n)[: round(HARD_FRACTIONS[name] * n)]] = True
        out[name] = flags
    for name in ("monochrome1", "rle"):
        flags = np.zeros(n, bool)
        flags[rng.permutation(n)[: n // 2]] = True
        out[name] = flags
    return out


def _rect_frame(angle_deg: float, centre: np.ndarray) -> tuple[Callable, Callable]:
    a = np.deg2rad(angle_deg)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return (lambda p: (np.asarray(p) - centre) @ rot), (lambda q: np.asarray(q) @ rot.T + centre)


def _plan_cut(uv: np.ndarray, margin: float, rng: np.random.Generator) -> tuple[int, float, np.ndarray] | None:
    """Pick a side (0 top, 1 left, 2 right) and an edge position that cuts off only the distal end of one digit."""
    options = []
    for side, h in enumerate((-uv[:, 1], -uv[:, 0], uv[:, 0])):
        for chain in DIGITS.values():
            for m in (1, 2):
                cut = np.array(chain[-m:])
                keep = np.setdiff1d(np.arange(len(uv)), cut)
                lo, hi = h[keep].max() + margin, h[cut].min() - margin
                if hi > lo:
                    options.append((side, lo, hi, cut))
    if not options:
        return None
    side, lo, hi, cut = options[rng.integers(len(options))]
    return side, float(rng.uniform(lo, hi)), cut


def _place_hand(lm_mm: np.ndarray, size: int, mm_per_px: float, pose_size: float, width: float, rng, unusual: bool):
    angle = float(rng.uniform(-35, 35) if unusual else np.clip(rng.normal(0.0, 8.0), -20, 20))
    mirror = bool(rng.random() < 0.3)
    scale = pose_size / mm_per_px
    pts = Placement((0.0, 0.0), scale, angle, mirror, width).apply(lm_mm)
    margin = 12.0 / mm_per_px
    extent = pts.max(axis=0) - pts.min(axis=0)
    shrink = min(1.0, float(np.min((size - 1 - 2 * margin) / extent)))
    scale *= shrink
    pts = pts * shrink
    lo = margin - pts.min(axis=0)
    hi = size - 1 - margin - pts.max(axis=0)
    offset = rng.uniform(lo, np.maximum(hi, lo))
    return Placement((float(offset[0]), float(offset[1])), scale, angle, mirror, width)


def make_image(index: int, seed: int, size: int, flags: dict[str, bool]) -> PhantomImage:
    """Render image ``index`` of the phantom with ``seed`` (same arguments -> same result)."""
    rng = np.random.default_rng([seed, index, 7])
    fov = rng.uniform(240.0, 280.0)
    mm_per_px = fov / size
    for _ in range(50):
        pose = sample_pose(rng, unusual=flags["unusual_pose"], overlap=flags["overlap"])
        lm_mm, bones, tissue = build_hand(pose)
        place = _place_hand(lm_mm, size, mm_per_px, pose.size, pose.width, rng, flags["unusual_pose"])
        lm_px = place.apply(lm_mm)
        centre = np.array([(size - 1) / 2, (size - 1) / 2])
        for _ in range(10):
            to_rect, from_rect = _rect_frame(float(rng.uniform(-6, 6)), centre)
            uv = to_rect(lm_px)
            margins = rng.uniform(8.0, 35.0, 3) / mm_per_px
            bounds = [uv[:, 1].min() - margins[0], uv[:, 0].min() - margins[1], uv[:, 0].max() + margins[2]]
            cut = None
            if flags["cutoff"]:
                cut = _plan_cut(uv, 2.5 / mm_per_px, rng)
                if cut is None:
                    continue
                side, edge, _ = cut
                bounds[side] = -edge if side in (0, 1) else edge
            break
        else:
            continue
        break
    else:  # pragma: no cover - the pose sampler makes a cut feasible in practice
        raise RuntimeError(f"phantom image {index}: no collimator edge cuts off a single digit after 50 poses")
    v_top, u_left, u_right = bounds
    v_bottom = uv[:, 1].max() + 4.0 * size  # the field runs past the bottom edge (forearm)
    corners = from_rect(np.array([[u_left, v_top], [u_right, v_top], [u_right, v_bottom], [u_left, v_bottom]]))
    inside = (uv[:, 1] >= v_top) & (uv[:, 0] >= u_left) & (uv[:, 0] <= u_right)
    landmarks = np.where(inside[:, None], lm_px, np.nan)
    if cut is not None:
        assert set(np.flatnonzero(~inside)) == set(cut[2].tolist())
    else:
        assert inside.all()

    shape = (size, size)
    soft, cortex_outer, marrow, metal = (np.zeros(shape, np.float32) for _ in range(4))
    for solid in tissue:
        add_capsule(soft, None, solid, place, mm_per_px)
    for solid in bones:
        adder = add_capsule if isinstance(solid, Capsule) else add_ellipsoid
        adder(cortex_outer, marrow, solid, place, mm_per_px)
    if flags["implant"]:
        site = lm_mm[IMPLANT_SITES[rng.integers(len(IMPLANT_SITES))]] + rng.normal(0.0, 1.5, 2)
        if rng.random() < 0.6:  # a screw or pin across the joint
            direction = np.array([np.cos(t := rng.uniform(0, np.pi)), np.sin(t)]) * rng.uniform(5.0, 9.0)
            r = float(rng.uniform(1.0, 1.6))
            add_capsule(metal, None, Capsule(tuple(site - direction), tuple(site + direction), r, r), place, mm_per_px)
        else:  # a marker disc lying on the skin
            r = float(rng.uniform(2.5, 4.0))
            add_ellipsoid(metal, None, Ellipsoid(tuple(site), r, r, 0.0, 1.0), place, mm_per_px)
    cortex = np.maximum(cortex_outer - marrow, 0.0)
    field = field_mask(shape, corners, penumbra_px=float(rng.uniform(0.6, 1.5)) * size / 512)
    low = flags["low_dose"]
    photons = float(rng.uniform(40.0, 120.0) if low else rng.uniform(1500.0, 5000.0))
    gain, offset = float(rng.uniform(900.0, 1250.0)), float(rng.uniform(80.0, 350.0))
    exposure = Exposure(
        photons=photons,
        bone_factor=float(rng.uniform(0.85, 1.2)),
        scatter=float(rng.uniform(0.05, 0.25)),
        heel=(float(rng.normal(0.0, 0.08)), float(rng.normal(0.0, 0.08))),
        blur_px=float(rng.uniform(0.5, 1.1)) * size / 512,
        electronic=float(rng.uniform(1.0, 4.0)),
        gain=gain,
        offset=offset,
    )
    pixels = render(soft, cortex, marrow, metal, field, exposure, rng)
    severity = {name: float(flags[name]) for name in HARD_FACTORS}
    if low:
        severity["low_dose"] = 1.0 - 0.4 * (photons - 40.0) / 80.0
    severity["rotation"] = min(abs(place.angle) / 35.0, 1.0)
    hardness = 1.0 - float(np.prod([1.0 - HARD_WEIGHTS[k] * s for k, s in severity.items()]))
    return PhantomImage(
        pixels=pixels,
        landmarks=landmarks,
        projected=lm_px,
        spacing_mm=float(mm_per_px),
        window=(offset + 0.9 * gain, 1.8 * gain),
        laterality="R" if place.mirror else "L",
        flags={name: int(flags[name]) for name in HARD_FACTORS},
        hardness=hardness,
    )


def phantom_splits(keys: list[str], seed: int) -> dict[str, list[str]]:
    """70/15/15 % train/val/test by a seeded permutation (at least one val and test image from 3 images up)."""
    n = len(keys)
    order = np.random.default_rng([seed, 2_000_003]).permutation(n)
    n_val = max(1, round(SPLIT_FRACTIONS[1] * n)) if n >= 3 else 0
    n_test = max(1, round(SPLIT_FRACTIONS[2] * n)) if n >= 3 else 0
    n_train = n - n_val - n_test
    pick = [keys[i] for i in order]
    return {"train": pick[:n_train], "val": pick[n_train : n_train + n_val], "test": pick[n_train + n_val :]}


def generate_phantom(
    out: str | Path,
    n: int = DEFAULT_N,
    seed: int = DEFAULT_SEED,
    size: int = DEFAULT_SIZE,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Generate the synthetic hand-radiograph data set into ``out`` (see the module docstring).

    Example:
        >>> from landmark_afl.data.phantom import generate_phantom
        >>> from landmark_afl.data.dataset import load_dataset
        >>> ds = load_dataset(generate_phantom("/tmp/phantom", n=6, size=256, force=True))  # doctest: +SKIP
        >>> len(ds.landmarks)  # doctest: +SKIP
        36

    Args:
        out: output folder; must be absent or empty unless ``force``.
        n: number of images.
        seed: random seed (same seed, n and size -> same files).
        size: image width and height in pixels.
        force: replace a non-empty ``out``.
        progress: called as ``progress(done, n)`` after each image.

    Returns:
        The output folder.
    """
    if n < 1 or size < 64:
        raise ValueError(f"phantom needs n >= 1 and size >= 64; got n={n}, size={size}")
    out = prepare_output(out, force)
    factors = assign_factors(n, seed)
    coords: dict[str, np.ndarray] = {}
    rows = []
    for i in range(n):
        key = f"phantom_{i:04d}.dcm"
        img = make_image(i, seed, size, {name: bool(factors[name][i]) for name in HARD_FACTORS})
        write_dx(
            out / IMAGES_DIR / key,
            img.pixels,
            seed=seed,
            index=i,
            spacing_mm=img.spacing_mm,
            monochrome1=bool(factors["monochrome1"][i]),
            rle=bool(factors["rle"][i]),
            window=img.window,
            laterality=img.laterality,
        )
        coords[key] = img.landmarks
        n_absent = int(np.isnan(img.landmarks[:, 0]).sum())
        rows.append([key, f"{img.hardness:.4f}", *(img.flags[f] for f in HARD_FACTORS), n_absent])
        if progress is not None:
            progress(i + 1, n)
    with (out / "hardness.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["image", "hardness", *HARD_FACTORS, "n_absent"])
        writer.writerows(rows)
    write_dataset_files(
        out,
        "landmark-afl-hand-phantom",
        LANDMARKS,
        coords,
        splits=phantom_splits(sorted(coords), seed),
        description=f"synthetic hand radiographs (landmark-afl phantom v1, n={n}, seed={seed}, size={size}); "
        "spacing in each file's ImagerPixelSpacing",
        source="generated by landmark_afl.data.generate_phantom (no real patient data)",
    )
    return out
