"""`blocks calibrate`: measure the printer-to-camera colour map from a photo or video of the
calibration sheet (printing.calibration).

Per frame: ArUco markers -> homography (capture.markers, the same code that finds blocks) -> the
swatch field rectified head-on -> the median of the inner half of every swatch (its edges are
blurred by the printer and the lens, its centre is not). Over frames: the per-swatch median. Then
transforms.colormap.fit_colormap from the colours sent to the colours seen.

The map includes the light the photo was taken in: photograph the sheet flat, evenly lit, in the
light the patch will be used in. Uneven light shows up as a high mean_error_rgb.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from common.errors import UserError
from common.records import CalibrationInfo, SheetInfo, sheet_json
from capture.markers import detect_markers, locate_blocks, make_detector, rectify_block
from capture.sheet import parse_sheet
from capture.sources import open_source, quiet_opencv
from transforms.colormap import KNOTS, ColorMap, fit_colormap

RECTIFIED_SIDE = 1024  # px: the swatch field is resampled to this square before sampling
MIN_SWATCHES = 3 * KNOTS  # fit_colormap's least: three samples per knot
MIN_FOLLOW = 0.5  # correlation of the brightness seen with that sent, over the swatches (check_swatches_seen)
MIN_SPREAD_RGB = 0.5  # std of the brightness seen, 0-255: below it every swatch looks the same


@dataclass(frozen=True)
class Calibration:
    """calib.json (common.records.CalibrationInfo) made ready to measure: the sheet (for finding
    it) and the swatches, in the field's frame."""

    sheet: SheetInfo
    sent: np.ndarray  # (N, 3) uint8 RGB, as sent to the printer
    boxes_mm: np.ndarray  # (N, 4) x, y, w, h of each swatch on the page, mm
    path: Path | None = None


@dataclass
class CalibrateSettings:
    inner: float = 0.5  # side of the sampled centre square, as a fraction of the swatch's side
    max_frames: int = 60  # frames (where the sheet is found) to average, at most
    step: int = 1  # use every step-th frame of a video (frames next to each other are alike)
    min_markers: int = 3  # of the four corner markers, to trust a frame's homography


def load_calibration(path: str | Path) -> Calibration:
    """calib.json from `blocks calibration-sheet` (or its PDF's path) -> Calibration."""
    return parse_calibration(CalibrationInfo.read(path), sheet_json(path))


def parse_calibration(data: dict | CalibrationInfo, path: Path | None = None) -> Calibration:
    where = f"{path}" if path else "calibration sheet"
    info = CalibrationInfo.parse(data, where)
    if not info.swatches:
        raise UserError(f"{where} is not a calibration sheet from `blocks calibration-sheet` (no swatches)")
    sheet = parse_sheet(info, path)
    if len(sheet.blocks) != 1:
        raise UserError(f"{where}: a calibration sheet has one swatch field, not {len(sheet.blocks)} blocks")
    if len(info.swatches) < MIN_SWATCHES:  # before any frame is read: fit_colormap would refuse after
        raise UserError(f"{where}: field swatches holds {len(info.swatches)} swatches; a colour map needs at least "
                        f"{MIN_SWATCHES} (3 per knot of its {KNOTS}-knot curves)")
    # the record checked each swatch: rgb 0-255, a printable size, inside the swatch field
    sent = np.array([s.rgb for s in info.swatches], dtype=np.uint8)
    if np.ptp(sent.mean(axis=1)) < 128:  # the sheet's own run from black to white; check_swatches_seen needs one
        raise UserError(f"{where}: field swatches sends colours from grey {sent.mean(axis=1).min():.0f} to "
                        f"{sent.mean(axis=1).max():.0f} only; a colour map needs dark to light (0 to 255)")
    boxes = np.array([s.box_mm for s in info.swatches], dtype=np.float64)
    return Calibration(sheet, sent, boxes, path)


def check_swatches_seen(sent: np.ndarray, seen: np.ndarray, source) -> None:
    """The corner markers were found; were the swatches? On a photo of the sheet the brightness
    seen follows the brightness sent (correlation over the swatches, measured on simulated photos:
    1.00 evenly lit, 0.85 under a spotlight, 0.998 at 8% light). A blank or covered swatch field,
    or another page with these markers, does not, and the fit to it would "succeed" with a mean
    error of 0.00 (every swatch seen the same colour, matched by a flat map)."""
    grey_sent, grey_seen = sent.mean(axis=1), seen.mean(axis=1)
    spread = grey_seen.std() * 255 if np.isfinite(grey_seen).all() else 0.0
    follow = float(np.corrcoef(grey_sent, grey_seen)[0, 1]) if spread >= MIN_SPREAD_RGB else 0.0
    if not follow >= MIN_FOLLOW:
        raise UserError(f"the swatches were not found in {source}: the corner markers were, but the colours seen do "
                        f"not follow the colours sent (correlation {follow:.2f}; a photo of the sheet gives 0.85 or "
                        f"more): photograph the printed calibration sheet with its swatch field in view")


def sample_swatches(rectified: np.ndarray, calib: Calibration, inner: float = 0.5) -> np.ndarray:
    """rectified: (S, S, 3) uint8 BGR, the swatch field seen head-on (capture.markers.rectify_block)
    -> (N, 3) float RGB in [0, 1]: the per-channel median of each swatch's centre square."""
    block = calib.sheet.blocks[0]
    h, w = rectified.shape[:2]
    sx, sy = w / block.width_mm, h / block.height_mm  # px per mm along each axis
    out = np.empty((len(calib.boxes_mm), 3))
    for k, (x, y, bw, bh) in enumerate(calib.boxes_mm):
        cx, cy = (x - block.x_mm + bw / 2) * sx, (y - block.y_mm + bh / 2) * sy
        hx, hy = max(inner * bw * sx / 2, 0.5), max(inner * bh * sy / 2, 0.5)
        x0, x1 = int(round(cx - hx)), int(round(cx + hx))
        y0, y1 = int(round(cy - hy)), int(round(cy + hy))
        patch = rectified[max(y0, 0):max(y1, y0 + 1), max(x0, 0):max(x1, x0 + 1)].reshape(-1, 3)
        out[k] = np.median(patch, axis=0)[::-1] / 255.0
    return out


def measure_frame(bgr: np.ndarray, calib: Calibration, detector=None, settings: CalibrateSettings | None = None):
    """One frame -> (N, 3) RGB in [0, 1] seen for each swatch, or None when the sheet is not found."""
    s = settings or CalibrateSettings()
    detector = detector or make_detector(calib.sheet.aruco_dictionary)
    found = locate_blocks(calib.sheet, detect_markers(bgr, detector, bgr=True), min_markers=s.min_markers)
    if not found:
        return None
    rectified = rectify_block(bgr, calib.sheet, found[0], RECTIFIED_SIDE)
    return sample_swatches(rectified, calib, s.inner)


def calibrate(source: str | Path, sheet: str | Path | Calibration, settings: CalibrateSettings | None = None,
              on_frame: Callable[[int, bool], None] | None = None) -> ColorMap:
    """A photo, a video, or a folder/glob of photos of the printed calibration sheet -> the fitted
    ColorMap (mean_error_rgb and gamut set; extra records the frames used and the sheet).
    on_frame(index, found) is called for every frame looked at."""
    s = settings or CalibrateSettings()
    for name in ("max_frames", "step"):
        if getattr(s, name) < 1:
            raise UserError(f"{name} must be at least 1, not {getattr(s, name)}", param=name)
    calib = sheet if isinstance(sheet, Calibration) else load_calibration(sheet)
    text = str(source)
    if text.strip().isdigit() or "://" in text:
        raise UserError("calibrate reads a photo, a video file, or a folder/glob of photos, not a camera or stream")
    detector = make_detector(calib.sheet.aruco_dictionary)
    samples, looked = [], 0
    with quiet_opencv(), open_source(text) as frames:
        for frame in frames:
            if frame.index % s.step:
                continue
            looked += 1
            seen = measure_frame(frame.bgr, calib, detector, s)
            if on_frame:
                on_frame(frame.index, seen is not None)
            if seen is not None:
                samples.append(seen)
                if len(samples) >= s.max_frames:
                    break
    if not samples:
        raise UserError(f"the calibration sheet was not found in {source} ({looked} frame(s) looked at): "
                        f"all four corner markers should be in view, sharp and not glared")
    # median over frames: a frame with glare or motion blur on some swatches does not drag them off
    seen = np.median(np.stack(samples), axis=0)
    check_swatches_seen(calib.sent, seen, source)
    cmap = fit_colormap(torch.from_numpy(calib.sent / 255.0).float(), torch.from_numpy(seen).float())
    residual = (cmap.apply_rgb(torch.from_numpy(calib.sent / 255.0).float()) - torch.from_numpy(seen).float())
    cmap.extra = {"source": str(source), "sheet": str(calib.path) if calib.path else None,
                  "frames_used": len(samples), "frames_looked_at": looked, "swatches": len(calib.sent),
                  "max_error_rgb": round(float(residual.abs().max()) * 255, 3),
                  "seen_rgb": np.round(seen * 255, 2).tolist()}
    return cmap


def apply_to_bgr(cmap: ColorMap, bgr: np.ndarray, rows: int = 256) -> np.ndarray:
    """(H, W, 3) uint8 BGR sent colours -> uint8 BGR seen through the map, clipped to 0-255.
    In row chunks: the map's basis is K times the image's size."""
    out = np.empty_like(bgr)
    with torch.no_grad():
        for y in range(0, bgr.shape[0], rows):
            chunk = torch.from_numpy(np.ascontiguousarray(bgr[y:y + rows, :, ::-1])).permute(2, 0, 1)[None].float() / 255
            seen = cmap(chunk)[0].clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).numpy()
            out[y:y + rows] = seen[:, :, ::-1]
    return out


def check_out(path: Path) -> Path:
    if path.suffix.lower() != ".json":
        raise UserError(f"out must be a .json file, not {path}", param="out")
    return path
