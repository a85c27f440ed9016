"""The hand model of the phantom: 36 landmarks and the solids (bones, soft tissue) they belong to.

A left hand seen postero-anteriorly, in millimetres, x to the thumb side, y distal (towards the finger tips), the
origin at the centre of the distal radius. Bones are tapered capsules (shafts with rounded ends) and ellipsoids
(carpals, the distal radius and ulna); soft tissue is a union of capsules whose depth may be capped (palm,
forearm). A pose (finger spread, flexion, thumb angle, crossing fingers) moves the joints; the landmarks are the
exact joint centres (the middle of each joint gap), the proximal end of each metacarpal, the distal end of each
distal phalanx (tip), the carpal centres and four wrist points. Flexion shortens a phalanx in projection by
cos(angle).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FINGERS = ("index", "middle", "ring", "little")
FINGER_POINTS = ("mc_base", "mcp", "pip", "dip", "tip")
THUMB_POINTS = ("thumb_cmc", "thumb_mcp", "thumb_ip", "thumb_tip")
WRIST_POINTS = ("radial_styloid", "ulnar_styloid", "radius_centre", "ulna_centre")
CARPALS = ("scaphoid", "lunate", "triquetrum", "pisiform", "trapezium", "trapezoid", "capitate", "hamate")
LANDMARKS = (
    tuple(f"{f}_{p}" for f in FINGERS for p in FINGER_POINTS) + THUMB_POINTS + WRIST_POINTS + CARPALS
)  # 20 + 4 + 4 + 8 = 36
INDEX = {name: i for i, name in enumerate(LANDMARKS)}
# The landmark chains of the five digits, proximal to distal (a collimator edge can cut off the distal end).
DIGITS = {f: tuple(INDEX[f"{f}_{p}"] for p in FINGER_POINTS) for f in FINGERS} | {
    "thumb": tuple(INDEX[p] for p in THUMB_POINTS)
}

# Fingers 2-5: metacarpal base (x, y), resting direction (deg from +y towards the thumb), bone lengths
# (metacarpal, proximal, middle, distal), shaft half-widths, soft-tissue radius.
_FINGER_BASE = np.array([[10.0, 38.0], [0.0, 40.0], [-10.0, 38.0], [-19.0, 34.0]])
_FINGER_DIR = np.array([6.0, 0.0, -6.0, -13.0])
_FINGER_SPREAD = np.array([5.0, 0.0, -5.0, -9.0])
_FINGER_LEN = np.array([[66, 40, 23, 17], [63, 45, 27, 19], [58, 42, 26, 18], [53, 33, 18, 16]], dtype=float)
_FINGER_HALF_WIDTH = np.array([[4.0, 4.0, 3.3, 2.8], [4.1, 4.2, 3.5, 2.9], [3.6, 3.9, 3.3, 2.7], [3.3, 3.4, 2.8, 2.4]])
_FINGER_TISSUE = np.array([9.0, 9.5, 9.0, 8.0])
_THUMB_CMC = np.array([26.0, 33.0])
_THUMB_LEN = np.array([44.0, 31.0, 24.0])
_THUMB_HALF_WIDTH = np.array([4.6, 4.2, 3.6])
# Carpals: centre (x, y), semi-axes (a, b) in mm, rotation (deg).
_CARPALS = {
    "scaphoid": ((15.0, 12.0), (9.0, 5.5), 35.0),
    "lunate": ((1.0, 11.0), (7.0, 6.0), 0.0),
    "triquetrum": ((-12.0, 12.0), (6.5, 5.5), -10.0),
    "pisiform": ((-17.0, 16.0), (4.5, 4.5), 0.0),
    "trapezium": ((22.0, 26.0), (7.0, 6.0), 20.0),
    "trapezoid": ((12.0, 28.0), (5.5, 5.0), 0.0),
    "capitate": ((0.0, 27.0), (6.0, 9.0), 0.0),
    "hamate": ((-12.0, 27.0), (6.5, 8.0), -10.0),
}
_WRIST = {
    "radial_styloid": (28.0, 8.0),
    "ulnar_styloid": (-25.0, 0.0),
    "radius_centre": (10.0, 0.0),
    "ulna_centre": (-16.0, -3.0),
}
JOINT_GAP = 1.6  # mm between the ends of two bones meeting at a joint


@dataclass(frozen=True)
class Capsule:
    """A solid of revolution around the segment p0-p1 with radius r0 -> r1 (mm; rounded ends).

    ``cortex`` is the cortical shell as a fraction of the radius (bone only); ``depth_cap`` caps the path
    length through it (soft tissue of palm and forearm, which are flatter than round), None for no cap.
    """

    p0: tuple[float, float]
    p1: tuple[float, float]
    r0: float
    r1: float
    cortex: float = 0.0
    depth_cap: float | None = None


@dataclass(frozen=True)
class Ellipsoid:
    """An ellipsoid with in-plane semi-axes (a, b) rotated by ``angle`` degrees and depth semi-axis ``c`` (mm)."""

    centre: tuple[float, float]
    a: float
    b: float
    angle: float
    c: float
    cortex: float = 0.0


@dataclass(frozen=True)
class HandPose:
    """Joint angles of one hand (degrees). Flexion shortens the projected bones (cos), spread turns the fingers."""

    spread: tuple[float, float, float, float]
    flexion: tuple[tuple[float, float, float], ...]  # per finger: MCP, PIP, DIP
    bend: tuple[tuple[float, float, float], ...]  # per finger: small sideways bends at MCP, PIP, DIP
    thumb_angle: float
    thumb_flexion: tuple[float, float, float]
    size: float  # overall scale
    width: float  # extra scale across the hand (x)


def sample_pose(rng: np.random.Generator, unusual: bool = False, overlap: bool = False) -> HandPose:
    """Draw a hand pose; ``unusual`` spreads or flexes fingers far from the rest pose, ``overlap`` crosses two."""
    spread = _FINGER_SPREAD + rng.normal(0.0, 2.5, 4)
    flexion = rng.uniform(0.0, 18.0, (4, 3))
    bend = rng.normal(0.0, 2.0, (4, 3))
    thumb_angle = 38.0 + rng.normal(0.0, 5.0)
    thumb_flexion = rng.uniform(0.0, 20.0, 3)
    if unusual:
        mode = rng.integers(3)
        if mode in (0, 2):  # fingers spread wide
            spread = spread * rng.uniform(2.5, 4.0) + np.array([4.0, 0.0, -4.0, -8.0])
            thumb_angle = 55.0 + rng.uniform(0.0, 20.0)
        if mode in (1, 2):  # one or two fingers strongly flexed (foreshortened)
            for f in rng.choice(4, size=int(rng.integers(1, 3)), replace=False):
                flexion[f] = rng.uniform([20.0, 45.0, 30.0], [60.0, 80.0, 60.0])
            thumb_flexion = rng.uniform(10.0, 50.0, 3)
    if overlap:  # cross the index over the middle finger, or the little finger over the ring finger
        if rng.random() < 0.5:
            spread[0] = spread[1] - rng.uniform(16.0, 22.0)
            flexion[0] = np.minimum(flexion[0], 10.0)
        else:
            spread[3] = spread[2] + rng.uniform(13.0, 19.0)
            flexion[3] = np.minimum(flexion[3], 10.0)
    return HandPose(
        spread=tuple(spread),
        flexion=tuple(map(tuple, flexion)),
        bend=tuple(map(tuple, bend)),
        thumb_angle=float(thumb_angle),
        thumb_flexion=tuple(thumb_flexion),
        size=float(rng.uniform(0.85, 1.1)),
        width=float(rng.uniform(0.95, 1.05)),
    )


def _unit(angle_deg: float) -> np.ndarray:
    a = np.deg2rad(angle_deg)
    return np.array([np.sin(a), np.cos(a)])


def _chain(start: np.ndarray, angles: list[float], lengths: list[float], flexion: list[float]) -> list[np.ndarray]:
    """Joint positions along a digit: start, then one point per bone (projected lengths)."""
    points = [start]
    for angle, length, flex in zip(angles, lengths, flexion, strict=True):
        points.append(points[-1] + _unit(angle) * length * np.cos(np.deg2rad(flex)))
    return points


def _bone(p: np.ndarray, q: np.ndarray, r0: float, r1: float, gap0: float, gap1: float) -> Capsule:
    """A bone between joints p and q that stops ``gap`` short of each joint (caps included)."""
    d = q - p
    n = float(np.hypot(*d))
    u = d / max(n, 1e-6)
    # the rounded caps reach r beyond the segment ends; keep them clear of the joint gap
    a = p + u * min(gap0 + r0, 0.45 * n)
    b = q - u * min(gap1 + r1, 0.45 * n)
    return Capsule(tuple(a), tuple(b), r0, r1, cortex=0.32)


def build_hand(pose: HandPose) -> tuple[np.ndarray, list[Capsule | Ellipsoid], list[Capsule]]:
    """Landmarks and solids of a posed hand, in mm (before the hand's own scale is applied).

    Returns:
        landmarks [36, 2] (x, y mm, y distal), bones, soft-tissue capsules.
    """
    lm = np.zeros((len(LANDMARKS), 2))
    bones: list[Capsule | Ellipsoid] = []
    tissue: list[Capsule] = []
    g = JOINT_GAP / 2
    for f, name in enumerate(FINGERS):
        base = _FINGER_BASE[f]
        mc_dir = _FINGER_DIR[f]
        finger_dir = mc_dir + pose.spread[f]
        flex = pose.flexion[f]
        angles = [
            mc_dir,
            finger_dir + pose.bend[f][0],
            finger_dir + sum(pose.bend[f][:2]),
            finger_dir + sum(pose.bend[f]),
        ]
        pts = _chain(base, angles, list(_FINGER_LEN[f]), [0.0, *flex])
        for p, point in zip(pts, FINGER_POINTS, strict=True):
            lm[INDEX[f"{name}_{point}"]] = p
        hw = _FINGER_HALF_WIDTH[f]
        for k in range(4):
            # bases and heads flare (1.25, 1.35 x the shaft); the distal phalanx narrows to its tuft
            r0, r1 = hw[k] * 1.25, hw[k] * (1.35 if k < 3 else 0.8)
            bones.append(_bone(pts[k], pts[k + 1], r0, r1, 0.0 if k == 0 else g, g if k < 3 else 0.0))
        tip_ext = pts[4] + _unit(angles[3]) * 4.0
        tissue.append(Capsule(tuple(pts[1]), tuple(tip_ext), _FINGER_TISSUE[f], _FINGER_TISSUE[f] * 0.8))
        tissue.append(Capsule(tuple(base), tuple(pts[1]), 11.0, 10.0, depth_cap=26.0))
    t_angles = [pose.thumb_angle, pose.thumb_angle + 6.0, pose.thumb_angle + 10.0]
    tpts = _chain(_THUMB_CMC, t_angles, list(_THUMB_LEN), [0.0, *pose.thumb_flexion[1:]])
    for p, point in zip(tpts, THUMB_POINTS, strict=True):
        lm[INDEX[point]] = p
    for k in range(3):
        hw = _THUMB_HALF_WIDTH[k]
        bones.append(_bone(tpts[k], tpts[k + 1], hw * 1.25, hw * (1.3 if k < 2 else 0.8), g, g if k < 2 else 0.0))
    sesamoid = tpts[1] - _unit(t_angles[0]) * 3.0
    bones.append(Ellipsoid(tuple(sesamoid), 2.2, 2.8, t_angles[0], 2.2, cortex=0.3))
    tissue.append(Capsule(tuple(tpts[1]), tuple(tpts[3] + _unit(t_angles[2]) * 4.0), 11.0, 9.0))
    tissue.append(Capsule((12.0, 18.0), tuple(tpts[1]), 15.0, 11.0, depth_cap=30.0))  # thenar eminence
    for name, (centre, (a, b), angle) in _CARPALS.items():
        lm[INDEX[name]] = centre
        bones.append(Ellipsoid(centre, a, b, angle, 0.8 * min(a, b) + 2.0, cortex=0.2))
    for name, point in _WRIST.items():
        lm[INDEX[name]] = point
    bones += [
        Ellipsoid((9.0, -6.0), 18.0, 6.0, 8.0, 9.0, cortex=0.2),  # distal radius (metaphysis)
        Capsule((19.0, -3.0), _WRIST["radial_styloid"], 4.0, 1.8, cortex=0.3),
        Capsule((8.0, -14.0), (2.0, -160.0), 11.0, 7.5, cortex=0.3),  # radius shaft
        Ellipsoid((-16.0, -7.0), 7.5, 5.0, 0.0, 7.0, cortex=0.2),  # ulnar head
        Capsule((-20.0, -6.0), _WRIST["ulnar_styloid"], 2.6, 1.3, cortex=0.35),
        Capsule((-16.0, -14.0), (-12.0, -160.0), 6.5, 6.0, cortex=0.35),  # ulna shaft
    ]
    tissue += [
        Capsule((-4.0, 12.0), (-4.0, 50.0), 24.0, 24.0, depth_cap=30.0),  # palm
        Capsule((-18.0, 8.0), tuple(lm[INDEX["little_mcp"]]), 11.0, 10.0, depth_cap=26.0),  # hypothenar
        Capsule((-2.0, 15.0), (-3.0, -200.0), 32.0, 36.0, depth_cap=44.0),  # wrist and forearm
    ]
    return lm, bones, tissue
