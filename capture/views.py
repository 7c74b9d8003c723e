"""What the classifier looks at in one frame, batched into a single forward pass: the whole frame,
each rectified block, and (with --sliding) a grid of square windows.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch

from capture.settings import SlidingSettings  # noqa: F401 (importable from here)
from transforms.held import CROP_SHARE


def sliding_boxes(height: int, width: int, s: SlidingSettings) -> list[tuple[int, int, int, int]]:
    """(x, y, w, h) of every window, row by row, covering the frame edge to edge."""
    side = max(8, int(round(s.window * min(height, width))))
    step = max(1, int(round(s.stride * min(height, width))))
    xs = _starts(width, side, step)
    ys = _starts(height, side, step)
    return [(x, y, side, side) for y in ys for x in xs]


def _starts(length: int, side: int, step: int) -> list[int]:
    if side >= length:
        return [0]
    starts = list(range(0, length - side + 1, step))
    if starts[-1] != length - side:  # the last window touches the far edge
        starts.append(length - side)
    return starts


def resize_view(bgr: np.ndarray, side: int) -> np.ndarray:
    """(H, W, 3) uint8 -> (side, side, 3) uint8, squashed as the Classifier would squash it.

    Antialiased like the Classifier's own resize, at a fraction of the cost: bilinear to an
    integer multiple k*side (close to the source's size), then INTER_AREA by exactly k, which
    is OpenCV's fast box-filter path (a direct INTER_AREA at a fractional ratio is ~3x slower)."""
    h, w = bgr.shape[:2]
    if (h, w) == (side, side):
        return bgr
    k = int(min(8, max(1, round(max(h, w) / side))))
    if k == 1:
        return cv2.resize(bgr, (side, side), interpolation=cv2.INTER_AREA if side < min(h, w) else cv2.INTER_LINEAR)
    big = cv2.resize(bgr, (k * side, k * side), interpolation=cv2.INTER_LINEAR)
    return cv2.resize(big, (side, side), interpolation=cv2.INTER_AREA)


def frame_view(bgr: np.ndarray, side: int, reduce: str = "squash") -> np.ndarray:
    """The whole frame as a classifier behind a camera takes it: squashed to (side, side), or
    (crop) its shorter side resized to side / CROP_SHARE and the centre side x side kept."""
    if reduce == "squash":
        return resize_view(bgr, side)
    h, w = bgr.shape[:2]
    short = min(h, w)
    keep = max(1, int(round(short * CROP_SHARE)))  # the centre square that survives the crop
    y, x = (h - keep) // 2, (w - keep) // 2
    return resize_view(bgr[y:y + keep, x:x + keep], side)


def to_batch(views: list[np.ndarray], device: torch.device | str = "cpu") -> torch.Tensor:
    """List of (S, S, 3) uint8 BGR -> (B, 3, S, S) float RGB in [0, 1] on device.
    One conversion for the whole batch; the BGR->RGB flip is a channel index."""
    arr = np.stack(views)  # (B, S, S, 3)
    t = torch.from_numpy(arr).to(device, non_blocking=True)
    return t.permute(0, 3, 1, 2)[:, [2, 1, 0]].float().div_(255)


@torch.inference_mode()
def classify(model: torch.nn.Module, batch: torch.Tensor) -> torch.Tensor:
    """batch: (B, 3, S, S) in [0, 1] -> probabilities (B, C) on the CPU."""
    return torch.softmax(model(batch).float(), dim=1).cpu()
