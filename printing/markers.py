"""ArUco markers: their bit patterns (drawn as vector squares, so they stay sharp at any dpi) and a
detector for checking a rendered or photographed sheet.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DICTIONARY = "DICT_4X4_50"


def dictionary_size(name: str = DICTIONARY) -> int:
    import cv2

    return int(cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, name)).bytesList.shape[0])


def marker_modules(marker_id: int, name: str = DICTIONARY) -> np.ndarray:
    """(n + 2, n + 2) bool, True = black: the marker's n x n bits inside a one-module black border.

    The marker's printed side covers all n + 2 modules; the white quiet zone around it is the
    layout's business (printing.layout.Surround).
    """
    import cv2

    d = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, name))
    if not 0 <= marker_id < d.bytesList.shape[0]:
        raise ValueError(f"{name} has no marker id {marker_id}")
    n = d.markerSize + 2
    img = cv2.aruco.generateImageMarker(d, int(marker_id), n, borderBits=1)  # one pixel per module
    return img < 128


@dataclass
class Detections:
    """ArUco markers found in one image. ids: (N,) int, corners: (N, 4, 2) float32 image px,
    clockwise from each marker's top-left; len() is the number found."""

    ids: np.ndarray
    corners: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)


def make_detector(name: str = DICTIONARY):
    """An ArUco detector with sub-pixel corners: a homography is only as good as its corners."""
    import cv2

    params = cv2.aruco.DetectorParameters()
    params.cornerRefinementMethod = cv2.aruco.CORNER_REFINE_SUBPIX
    return cv2.aruco.ArucoDetector(cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, name)), params)


def detect_markers(image: np.ndarray, detector=DICTIONARY, bgr: bool = False) -> Detections:
    """The one marker detector (printed-sheet checks, capture, calibration).

    image: (H, W, 3) uint8 RGB (bgr=True: OpenCV's BGR, as cameras give it) or (H, W) grey.
    detector: a make_detector() (reuse it across frames) or a dictionary name."""
    import cv2

    det = make_detector(detector) if isinstance(detector, str) else detector
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY if bgr else cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
    corners, ids, _ = det.detectMarkers(gray)
    if ids is None or len(ids) == 0:
        return Detections(np.zeros((0,), np.int64), np.zeros((0, 4, 2), np.float32))
    return Detections(ids.reshape(-1).astype(np.int64), np.stack([c.reshape(4, 2) for c in corners]))
