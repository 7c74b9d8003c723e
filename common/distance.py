"""How far from the camera a printed block of a given size should be: the patch's coverage of
the frame (what a whole-frame patch is trained and judged on) turned into distances.

A pinhole camera with horizontal field of view fov sees, at distance d, a frame 2 d tan(fov / 2)
wide and 2 d tan(fov / 2) / aspect high. A patch of side s then covers

    coverage = s / frame height = s * aspect / (2 d tan(fov / 2))

of the frame's shorter side, so d = s * aspect / (2 * coverage * tan(fov / 2)).
"""
from __future__ import annotations

import math

WEBCAM_FOV_DEG = 65.0  # horizontal field of view of a typical laptop or USB webcam
WEBCAM_ASPECT = 4 / 3
WORKS_RATE = 0.9  # "works" (from a coverage, at a distance): held-out whole frames won at least this often
DEFAULT_SIZE_MM = 50.0  # the printed block's side when nothing says otherwise (blocks print, generate)


def distance_mm(size_mm: float, coverage: float, fov_deg: float = WEBCAM_FOV_DEG,
                aspect: float = WEBCAM_ASPECT) -> float:
    """Distance (mm) at which a patch of side size_mm covers `coverage` of the frame's shorter side."""
    return size_mm * aspect / (2 * coverage * math.tan(math.radians(fov_deg) / 2))


def size_for_distance(distance_mm_: float, coverage: float, fov_deg: float = WEBCAM_FOV_DEG,
                      aspect: float = WEBCAM_ASPECT) -> float:
    """Patch side (mm) that covers `coverage` of the frame's shorter side from distance_mm_."""
    return distance_mm_ * 2 * coverage * math.tan(math.radians(fov_deg) / 2) / aspect


def distance_range(size_mm: float, coverage: tuple[float, float], fov_deg: float = WEBCAM_FOV_DEG,
                   aspect: float = WEBCAM_ASPECT) -> tuple[float, float]:
    """(near, far) in mm for a coverage range (lo, hi): the largest coverage is the nearest."""
    lo, hi = coverage
    return distance_mm(size_mm, hi, fov_deg, aspect), distance_mm(size_mm, lo, fov_deg, aspect)


def describe(size_mm: float, coverage: tuple[float, float], fov_deg: float = WEBCAM_FOV_DEG) -> str:
    """'50 mm block: 0.11-0.35 m from a 65 degree webcam'."""
    near, far = distance_range(size_mm, coverage, fov_deg)
    return f"{size_mm:g} mm block: {near / 1000:.2f}-{far / 1000:.2f} m from a {fov_deg:g} degree webcam"


def coverage_at(size_mm: float, distance_mm_: float, fov_deg: float = WEBCAM_FOV_DEG,
                aspect: float = WEBCAM_ASPECT) -> float:
    """The share of the frame's shorter side a patch of side size_mm covers from distance_mm_."""
    return size_mm * aspect / (2 * distance_mm_ * math.tan(math.radians(fov_deg) / 2))


# Someone holding a card up drifts nearer and farther while the camera looks: a patch asked for
# distance d trains and is judged on d * REACH_BAND[0] .. d * REACH_BAND[1].
REACH_BAND = (0.7, 1.4)
MIN_COVERAGE = 0.05  # below this a 224 px model sees the patch as ~11 px: nothing left to train on


def reach_band(size_mm: float, distance_m: float, fov_deg: float = WEBCAM_FOV_DEG) -> tuple[float, float]:
    """(lo, hi) coverage of a patch of side size_mm over the distances around distance_m that
    REACH_BAND spans (the far end is the smaller coverage); hi is capped at the whole frame (1)."""
    near, far = (distance_m * 1000 * k for k in REACH_BAND)
    return coverage_at(size_mm, far, fov_deg), min(1.0, coverage_at(size_mm, near, fov_deg))
