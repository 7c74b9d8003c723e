"""Drawing the verdict over a frame: top-5, the target's probability, hit or miss, markers, blocks,
sliding-window hits and FPS. Pure drawing on a copy; nothing here opens a window.
"""
from __future__ import annotations

import cv2
import numpy as np

GREEN = (60, 200, 60)
RED = (40, 40, 230)
CYAN = (220, 200, 40)
WHITE = (255, 255, 255)
FONT = cv2.FONT_HERSHEY_SIMPLEX


def _text(img, text, org, scale=0.5, color=WHITE, thickness=1):
    """Text on a dark box so it reads on any background (an outline drawn with a thicker pen
    would not line up: Hershey glyph advances depend on the thickness)."""
    (tw, th), base = cv2.getTextSize(text, FONT, scale, thickness)
    h, w = img.shape[:2]
    x = int(min(max(org[0], 0), max(w - tw - 2, 0)))
    y = int(min(max(org[1], th + 2), h - base - 2))
    cv2.rectangle(img, (x - 2, y - th - 2), (x + tw + 2, y + base + 1), (0, 0, 0), -1)
    cv2.putText(img, text, (x, y), FONT, scale, color, thickness, cv2.LINE_AA)


def draw_overlay(bgr: np.ndarray, result, prepared, labels: list[str], target_name: str,
                 fps: float | None) -> np.ndarray:
    """bgr: (H, W, 3) uint8 frame; result: capture.loop.FrameResult; prepared: capture.loop.Prepared."""
    img = bgr.copy()
    h, w = img.shape[:2]
    scale = max(0.4, min(1.2, w / 1000))
    line = int(22 * scale / 0.5 * 0.6) + 4

    det = prepared.detections
    if det is not None and len(det):
        cv2.polylines(img, [c.astype(np.int32) for c in det.corners], True, CYAN, 1, cv2.LINE_AA)
        for mid, c in zip(det.ids, det.corners):
            _text(img, str(int(mid)), tuple(c[0].astype(int)), 0.8 * scale, CYAN)
    for fb, br in zip(prepared.found, result.blocks):
        color = GREEN if br["hit"] else RED
        cv2.polylines(img, [fb.outline.astype(np.int32)], True, color, 2, cv2.LINE_AA)
        x = int(fb.outline[:, 0].min())
        y = int(fb.outline[:, 1].max()) + line  # under the block: the top-left corner holds the top-5
        _text(img, f"block {br['block']}: {br['top1']} {br['top1_prob']:.2f} | target {br['target_prob']:.2f}",
              (x, y), scale, color)
    for (x, y, bw, bh), hit in zip(prepared.boxes, result.window_hits):
        if hit:
            cv2.rectangle(img, (x, y), (x + bw, y + bh), GREEN, 1)
    if result.target_point is not None:
        cv2.drawMarker(img, tuple(int(v) for v in result.target_point), GREEN, cv2.MARKER_CROSS, 24, 2)

    y = line
    for name, p in result.top5:
        _text(img, f"{p:5.1%}  {name}", (8, y), scale)
        y += line
    verdict, color = ("HIT", GREEN) if result.hit else ("MISS", RED)
    _text(img, f"target {target_name}: {result.target_prob:.1%}  {verdict}", (8, y + 4), scale * 1.2, color, 2)
    if fps:
        _text(img, f"{fps:4.1f} fps", (w - int(110 * scale / 0.5 * 0.6) - 10, line), scale)
    return img
