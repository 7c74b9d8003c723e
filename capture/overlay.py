"""Drawing the verdict over a frame: the whole frame's top-5 and verdict first, then each block's and
the sliding windows' (a diagnosis), markers, blocks, window hits and FPS. Pure drawing on a copy;
nothing here opens a window.
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


def _box(text, scale, thickness=1) -> tuple[int, int, int]:
    """(width, height above the baseline, below) of a _text box."""
    (tw, th), base = cv2.getTextSize(text, FONT, scale, thickness)
    return tw + 4, th + 2, base + 1


def _overlap(a, b) -> int:
    """Area shared by two (x0, y0, x1, y1) rectangles."""
    return max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))


def _least_covering(rects: list, obstacles: list) -> int:
    """Index of the first candidate rectangle that covers no obstacle, else the one covering least."""
    cover = [sum(_overlap(r, o) for o in obstacles) for r in rects]
    return cover.index(min(cover))


def _outline_box(points, pad: int = 0) -> tuple[int, int, int, int]:
    pts = np.asarray(points).reshape(-1, 2)
    return (int(pts[:, 0].min()) - pad, int(pts[:, 1].min()) - pad, int(pts[:, 0].max()) + pad,
            int(pts[:, 1].max()) + pad)


def panel_lines(result, target_name: str) -> list[tuple[str, tuple, float, int]]:
    """The verdict panel, (text, colour, size, pen) per line: the whole frame first (its top-5 and
    whether it reads as the target: what a classifier behind the camera sees), then each found
    block and the sliding windows as a diagnosis, each saying where its hit came from."""
    lines = [("whole frame, top-5:", WHITE, 1.0, 1)]
    lines += [(f"{p:5.1%}  {name}", WHITE, 1.0, 1) for name, p in result.top5]
    hit = result.frame_hit
    lines.append((f"frame: {target_name} {result.frame_target_prob:.1%}  {'HIT' if hit else 'MISS'}",
                  GREEN if hit else RED, 1.2, 2))
    for br in result.blocks:
        lines.append((f"block {br['block']} (diagnosis): {target_name} {br['target_prob']:.1%}  "
                      f"{'HIT' if br['hit'] else 'MISS'}", GREEN if br["hit"] else RED, 1.0, 1))
    if result.window_hits:
        n = int(sum(result.window_hits))
        lines.append((f"windows (diagnosis): {target_name} in {n} of {len(result.window_hits)}",
                      GREEN if n else RED, 1.0, 1))
    return lines


def draw_overlay(bgr: np.ndarray, result, prepared, labels: list[str], target_name: str,
                 fps: float | None) -> np.ndarray:
    """bgr: (H, W, 3) uint8 frame; result: capture.loop.FrameResult; prepared: capture.loop.Prepared.
    No text covers a marker where the frame has room elsewhere: the panel takes the corner that
    covers the fewest markers and blocks, each block's label the side of it that covers none."""
    img = bgr.copy()
    h, w = img.shape[:2]
    scale = max(0.4, min(1.2, w / 1000))
    line = int(22 * scale / 0.5 * 0.6) + 4

    markers = _draw_markers(img, prepared.detections, scale)
    blocks = [_outline_box(fb.outline, 2) for fb in prepared.found]
    labels_at = _draw_blocks(img, prepared.found, result.blocks, blocks, markers, scale)
    for (x, y, bw, bh), hit in zip(prepared.boxes, result.window_hits):
        if hit:
            cv2.rectangle(img, (x, y), (x + bw, y + bh), GREEN, 1)
    if result.target_point is not None:
        cv2.drawMarker(img, tuple(int(v) for v in result.target_point), GREEN, cv2.MARKER_CROSS, 24, 2)
    panel = _draw_panel(img, panel_lines(result, target_name), markers * 4 + blocks + labels_at, scale, line)
    if fps:  # in a corner the panel left free
        fw = _box(f"{fps:4.1f} fps", scale)[0]
        spots = [(w - fw - 10, line), (w - fw - 10, h - 8), (8, line), (8, h - 8)]
        spots = [p for p in spots if not _overlap((p[0], p[1] - line, p[0] + fw, p[1]), panel)] or spots
        _text(img, f"{fps:4.1f} fps", spots[0], scale)
    return img


def _draw_markers(img: np.ndarray, det, scale: float) -> list[tuple[int, int, int, int]]:
    """Outline each detected marker with its id above it (never on it); their boxes, for the
    texts to keep clear of."""
    markers = [_outline_box(c, 2) for c in det.corners] if det is not None and len(det) else []
    if markers:
        cv2.polylines(img, [c.astype(np.int32) for c in det.corners], True, CYAN, 1, cv2.LINE_AA)
        for mid, box in zip(det.ids, markers):
            _text(img, str(int(mid)), (box[0], box[1] - _box(str(int(mid)), 0.8 * scale)[2] - 2), 0.8 * scale, CYAN)
    return markers


def _draw_blocks(img: np.ndarray, found, block_results, blocks, markers, scale: float) -> list:
    """Outline each found block (green hit, red miss) with its label on the side that covers the
    fewest markers (below, below the markers under it, above, ..., inside); the labels' boxes."""
    h, w = img.shape[:2]
    labels_at = []
    for fb, br, box in zip(found, block_results, blocks):
        color = GREEN if br["hit"] else RED
        cv2.polylines(img, [fb.outline.astype(np.int32)], True, color, 2, cv2.LINE_AA)
        text = f"block {br['block']}: {br['top1']} {br['top1_prob']:.2f} | target {br['target_prob']:.2f}"
        tw, up, down = _box(text, scale)
        x = min(max(box[0], 2), max(w - tw, 2))
        below = max([box[3]] + [m[3] for m in markers if _overlap((box[0], box[3], box[2], h), m)])
        above = min([box[1]] + [m[1] for m in markers if _overlap((box[0], 0, box[2], box[1]), m)])
        ys = [box[3] + up + 2, below + up + 2, box[1] - down - 2, above - down - 2, box[1] + up + 2]
        rects = [(x, y - up, x + tw, y + down) for y in ys]
        rects = [r for r in rects if r[1] >= 0 and r[3] <= h] or rects
        best = rects[_least_covering(rects, markers)]
        _text(img, text, (best[0] + 2, best[1] + up), scale, color)
        labels_at.append(best)
    return labels_at


def _draw_panel(img: np.ndarray, lines, obstacles: list, scale: float, line: int) -> tuple[int, int, int, int]:
    """The text panel in the corner that covers the fewest obstacles (a marker is listed 4 times:
    it weighs more than a block); its box."""
    h, w = img.shape[:2]
    sizes = [_box(t, scale * k, pen) for t, _, k, pen in lines]
    pw = max(s[0] for s in sizes) + 8
    steps = [max(line, int(line * k)) for _, _, k, _ in lines]
    ph = sum(steps) + 8
    corners = [(0, 0), (w - pw, 0), (0, h - ph), (w - pw, h - ph)]  # top-left first
    rects = [(x, y, x + pw, y + ph) for x, y in corners]
    at = _least_covering(rects, obstacles)
    x0, y = rects[at][0] + 8, rects[at][1]
    for (text, color, k, pen), step in zip(lines, steps):
        y += step
        _text(img, text, (x0, y - 4), scale * k, color, pen)
    return rects[at]
