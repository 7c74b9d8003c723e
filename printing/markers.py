"""ArUco markers: their bit patterns (drawn as vector squares, so they stay sharp at any dpi) and a
detector for checking a rendered or photographed sheet.
"""
from __future__ import annotations

import numpy as np

DICTIONARY = "DICT_4X4_50"


def dictionary_size(name: str = DICTIONARY) -> int:
    import cv2

    return int(cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, name)).bytesList.shape[0])


def marker_modules(marker_id: int, name: str = DICTIONARY) -> np.ndarray:
    """(n + 2, n + 2) bool, True = black: the marker's n x n bits inside a one-module black border.

    The marker's printed side covers all n + 2 modules; the white quiet zone around it is the
    layout's business (printing.layout.Frame).
    """
    import cv2

    d = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, name))
    if not 0 <= marker_id < d.bytesList.shape[0]:
        raise ValueError(f"{name} has no marker id {marker_id}")
    n = d.markerSize + 2
    img = cv2.aruco.generateImageMarker(d, int(marker_id), n, borderBits=1)  # one pixel per module
    return img < 128


def detect_markers(rgb: np.ndarray, name: str = DICTIONARY) -> dict[int, np.ndarray]:
    """rgb: (H, W, 3) or (H, W) uint8 -> {id: (4, 2) float corners in px}, clockwise from the
    marker's top-left. An id seen twice keeps its first detection.
    """
    import cv2

    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb
    params = cv2.aruco.DetectorParameters()
    params.cornerRefinementMethod = cv2.aruco.CORNER_REFINE_SUBPIX
    det = cv2.aruco.ArucoDetector(cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, name)), params)
    corners, ids, _ = det.detectMarkers(gray)
    found: dict[int, np.ndarray] = {}
    if ids is None:
        return found
    for c, i in zip(corners, ids.reshape(-1)):
        found.setdefault(int(i), c.reshape(4, 2).astype(np.float64))
    return found
