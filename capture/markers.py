"""Finding printed blocks in a camera frame: ArUco markers -> homography (sheet mm -> image px) ->
a rectified, square crop of each block, ready for the classifier.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from common.records import SheetInfo
from printing.markers import Detections, detect_markers, make_detector  # the one detector

__all__ = ["Detections", "FoundBlock", "detect_markers", "locate_blocks", "make_detector", "rectify_block"]


@dataclass
class FoundBlock:
    """A sheet block located in a frame. homography maps sheet mm -> image px."""

    index: int
    homography: np.ndarray  # (3, 3)
    outline: np.ndarray  # (4, 2) float32 image px of the patch area, clockwise from top-left
    markers_used: int


def locate_blocks(sheet: SheetInfo, det: Detections, min_markers: int = 2) -> list[FoundBlock]:
    """Blocks of `sheet` with at least `min_markers` of their markers in `det`.

    One marker alone gives a homography too, but it extrapolates from a small square, so by
    default two (8 corners spread around the patch) are required.
    """
    groups: dict[int, list[int]] = {}
    for k, marker_id in enumerate(det.ids):
        b = sheet.block_of_marker(int(marker_id))
        if b is not None:
            groups.setdefault(b, []).append(k)
    found = []
    for b, ks in sorted(groups.items()):
        block = sheet.blocks[b]
        by_id = {m.id: m for m in block.markers}
        # A marker id seen twice in one frame (reflection, second copy of the sheet): keep the first.
        seen, src, dst = set(), [], []
        for k in ks:
            mid = int(det.ids[k])
            if mid in seen:
                continue
            seen.add(mid)
            src.append(by_id[mid].corners_mm())
            dst.append(det.corners[k])
        if len(seen) < max(1, min_markers):
            continue
        src = np.concatenate(src).astype(np.float64)
        dst = np.concatenate(dst).astype(np.float64)
        method = cv2.RANSAC if len(src) > 4 else 0
        H, _ = cv2.findHomography(src, dst, method, 3.0)
        if H is None or not np.isfinite(H).all():
            continue
        outline = cv2.perspectiveTransform(block.corners_mm()[None], H)[0].astype(np.float32)
        if not _plausible(outline):
            continue
        found.append(FoundBlock(b, H, outline, len(seen)))
    return found


def _plausible(quad: np.ndarray) -> bool:
    """A convex quadrilateral of some size: rules out degenerate homographies."""
    if cv2.contourArea(quad) < 16:
        return False
    return bool(cv2.isContourConvex(quad.reshape(-1, 1, 2)))


def rectify_block(bgr: np.ndarray, sheet: SheetInfo, found: FoundBlock, side: int,
                  margin: float = 0.0) -> np.ndarray:
    """The block's patch area seen head-on: (side, side, 3) uint8, same colour order as bgr.

    margin: extra border around the patch as a fraction of its side (0 = the patch only).
    The warp goes first to about the block's apparent size (a multiple of `side`), then INTER_AREA
    down to `side`: warping straight to a small side would alias (warpPerspective does not filter).
    """
    block = sheet.blocks[found.index]
    x0 = block.x_mm - margin * block.width_mm
    y0 = block.y_mm - margin * block.height_mm
    w = block.width_mm * (1 + 2 * margin)
    h = block.height_mm * (1 + 2 * margin)
    apparent = float(np.sqrt(max(cv2.contourArea(found.outline), 1.0))) * (1 + 2 * margin)
    work = side * int(np.clip(round(apparent / side), 1, 8))  # an integer multiple: fast INTER_AREA
    # crop px -> sheet mm -> image px
    crop_to_mm = np.array([[w / work, 0, x0], [0, h / work, y0], [0, 0, 1]], dtype=np.float64)
    M = found.homography @ crop_to_mm
    crop = cv2.warpPerspective(bgr, M, (work, work), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_REPLICATE)
    if work != side:
        crop = cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA)
    return crop
