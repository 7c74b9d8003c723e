"""`blocks simulate`: print a sheet PDF (render it with pypdfium2) and film it with a virtual
camera (transforms.camera), so the capture loop can be run and tested with no printer and no camera.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from common.errors import UserError
from common.inputs import check_input_file
from common.files import IMAGE_SUFFIXES, atomic_write_bytes
from common.records import SheetInfo, SimulateInfo
from capture.outputs import VideoOut
from capture.sheet import load_sheet, sidecar_path
from printing.layout import CARD_BORDER_MM
from transforms.camera import (CameraSettings, develop, film_page, keep_in_frame, make_background,
                               pose_homography, sample_looks, sample_poses)

MM_PER_INCH = 25.4


@dataclass
class SimulateSettings:
    frames: int = 90
    seed: int = 0
    fps: float = 15.0
    block: int = 0  # which block of the sheet the camera looks at (with a sidecar sheet.json)
    camera: CameraSettings = field(default_factory=CameraSettings)
    # transforms.colormap.ColorMap: the printer-to-camera colours, applied to the rendered page
    # (sent colours) before the camera's own light, blur, noise and JPEG. None: colours as sent.
    colormap: object | None = None
    # Held up in a scene: the block is cut out as a card (patch, markers, card_border_mm of white)
    # and held in front of a photo that fills the frame (one photo per clip, chosen by the seed),
    # instead of the whole page lying on a table. Paths of photos; empty: the table.
    scenes: tuple = ()
    card_border_mm: float = CARD_BORDER_MM


# Peak memory of a frame, measured by bench/memory.py (peak RSS of one still at 640 x 480 and at
# 3200 x 2400; the difference per frame pixel): the page rendered, warped, lit, blurred, encoded.
FRAME_BYTES_PER_PIXEL = 102
PHOTO_BYTES_PER_PIXEL = 12  # a scene photo: its BGR pixels and the cover-scaled copy (up to 1.3^2 larger), counted

def page_bgr(pdf: Path, page: int, dpi: float) -> tuple[np.ndarray, tuple[float, float]]:
    """Page `page` of the PDF as (H, W, 3) uint8 BGR at `dpi` (printing.render, the one renderer),
    and the page size in mm."""
    from printing.render import page_size_mm, render_page as render

    return np.ascontiguousarray(render(pdf, page, dpi)[:, :, ::-1]), page_size_mm(pdf, page)


def region_of_interest(sheet: SheetInfo | None, block: int, page_mm: tuple[float, float]):
    """(page index, roi (x, y, w, h) mm, points (N, 2) mm that must stay in view).

    With a sheet: the block and its markers (the markers must stay in view to be found).
    Without: the whole page."""
    if sheet is None:
        w, h = page_mm
        corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float64)
        return 0, (0.0, 0.0, w, h), corners
    if not 0 <= block < len(sheet.blocks):
        raise UserError(f"block {block}: the sheet has blocks 0..{len(sheet.blocks) - 1}", param="block")
    b = sheet.blocks[block]
    pts = np.concatenate([b.corners_mm()] + [m.corners_mm() for m in b.markers])
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    return b.page, (float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1])), pts


def simulate(pdf: str | Path, out: str | Path, settings: SimulateSettings,
             on_frame: Callable[[int], None] | None = None) -> SimulateInfo:
    """Render `pdf`, film it for settings.frames frames, write `out` (.mp4 mp4v, .avi, .mkv).

    Returns what was done (common.records.SimulateInfo): frames, fps, size, the sheet used (if any), the seed."""
    pdf, out = Path(pdf), Path(out)
    check_input_file(pdf, "PDF")
    if pdf.suffix.lower() != ".pdf":  # a patch PNG's patch.json beside it is no sheet.json
        hint = f": `blocks print {pdf} --out sheet.pdf` makes one" if pdf.suffix.lower() in IMAGE_SUFFIXES else ""
        raise UserError(f"{pdf} is not a PDF: simulate films a sheet PDF from `blocks print`{hint}")
    if settings.frames < 1:
        raise UserError("frames must be at least 1", param="frames")
    sidecar = sidecar_path(pdf)
    sheet = load_sheet(sidecar) if sidecar.is_file() else None
    cam = settings.camera
    rng = np.random.default_rng(settings.seed)

    page, px_per_mm, page_index, roi, must_see, dpi = _aimed_page(pdf, sheet, settings)

    # A photo (.png, .jpg) holds the first frame only: a still for `blocks calibrate`.
    video = StillOut(out) if out.suffix.lower() in IMAGE_SUFFIXES else VideoOut(out, settings.fps)
    card = None
    if settings.scenes:
        # every photo in turn, each for an equal stretch of the clip (the card carried from scene
        # to scene), in a seeded order; more photos than frames: a seeded choice of them
        order = rng.permutation(len(settings.scenes))[:settings.frames]
        backgrounds = [scene_background(settings.scenes[int(i)], cam, rng) for i in order]
        card = card_mask(page.shape[:2], px_per_mm, roi, settings.card_border_mm)
    else:
        backgrounds = [make_background(cam, rng)]
    _film_frames(video, page, px_per_mm, roi, must_see, backgrounds, card, settings, rng, on_frame)
    return SimulateInfo(out=str(out), frames=video.frames, fps=settings.fps, size=list(cam.size),
                        seed=settings.seed, sheet=str(sidecar) if sheet is not None else None,
                        block=settings.block if sheet is not None else None, page=page_index,
                        render_dpi=round(dpi, 1))


def _aimed_page(pdf: Path, sheet, settings: SimulateSettings):
    """The page to film as BGR, its px per mm, and where to aim: (page, px_per_mm, page_index, roi,
    must_see, dpi)."""
    cam = settings.camera
    # Aim first (needs only page size), then render at a resolution ~1.5x the largest the region
    # ever appears, so warping down does not alias and warping up does not pixelate.
    page_mm = tuple(sheet.page_size_mm) if sheet is not None and all(sheet.page_size_mm) else None
    if page_mm is None:
        from printing.render import page_size_mm

        page_mm = page_size_mm(pdf, 0)
    page_index, roi, must_see = region_of_interest(sheet, settings.block, page_mm)
    roi_side_px = cam.fill[1] * min(cam.size)
    dpi = float(np.clip(1.5 * roi_side_px / max(roi[2], roi[3]) * MM_PER_INCH, 50, 600))
    page, page_mm = page_bgr(pdf, page_index, dpi)
    px_per_mm = page.shape[1] / page_mm[0]
    if settings.colormap is not None:
        from capture.calibrate import apply_to_bgr

        page = apply_to_bgr(settings.colormap, page)
    return page, px_per_mm, page_index, roi, must_see, dpi


def _film_frames(video, page: np.ndarray, px_per_mm: float, roi, must_see, backgrounds: list, card,
                 settings: SimulateSettings, rng: np.random.Generator, on_frame) -> None:
    """Film settings.frames frames of `page` into `video` (one for a still), the backgrounds in
    turn, each for an equal stretch; closed either way, kept only when every frame was written."""
    cam = settings.camera
    poses = sample_poses(settings.frames, cam, rng)
    looks = sample_looks(settings.frames, cam, rng)
    previous = None
    ok = False
    try:
        for i, (pose, look) in enumerate(zip(poses, looks)):
            H = keep_in_frame(pose_homography(pose, roi, cam), must_see, cam)
            centre = cv2.perspectiveTransform(np.array([[[roi[0] + roi[2] / 2, roi[1] + roi[3] / 2]]]), H)[0, 0]
            # motion during the exposure: half the move since the last frame
            motion = (0.0, 0.0) if previous is None else tuple(cam.motion_blur * (centre - previous) / 2)
            previous = centre
            background = backgrounds[i * len(backgrounds) // settings.frames]
            clean = film_page(page, px_per_mm, H, background, card)
            video.write(develop(clean, look, motion, rng))
            if on_frame:
                on_frame(i)
            if isinstance(video, StillOut):
                break
        ok = True
    finally:
        video.close(keep=ok)


def scene_background(path, cam: CameraSettings, rng: np.random.Generator) -> np.ndarray:
    """(H, W, 3) uint8 BGR: a photo scaled to cover the frame, a random part of it (and mirrored
    half the time), as the scene behind someone holding the card up."""
    from common.files import read_image_bgr

    photo = read_image_bgr(path)
    W, H = cam.size
    h, w = photo.shape[:2]
    k = max(W / w, H / h) * float(rng.uniform(1.0, 1.3))
    big = cv2.resize(photo, (max(W, int(round(w * k))), max(H, int(round(h * k)))), interpolation=cv2.INTER_AREA
                     if k < 1 else cv2.INTER_LINEAR)
    y = int(rng.integers(big.shape[0] - H + 1))
    x = int(rng.integers(big.shape[1] - W + 1))
    out = big[y:y + H, x:x + W]
    return np.ascontiguousarray(out[:, ::-1] if rng.random() < 0.5 else out)


def card_mask(page_hw: tuple[int, int], px_per_mm: float, roi: tuple[float, float, float, float],
              border_mm: float) -> np.ndarray:
    """(h, w) uint8 page mask, 255 on the card: the block's region (patch and markers) grown by the
    white border it was cut out with."""
    x, y, w, h = roi
    mask = np.zeros(page_hw, np.uint8)
    x0, y0 = int(round((x - border_mm) * px_per_mm)), int(round((y - border_mm) * px_per_mm))
    x1, y1 = int(round((x + w + border_mm) * px_per_mm)), int(round((y + h + border_mm) * px_per_mm))
    mask[max(0, y0):y1, max(0, x0):x1] = 255
    return mask


class StillOut:
    """VideoOut's interface for a single photo: keeps the first frame, written atomically on close."""

    def __init__(self, path: Path):
        self.path, self.frames, self._data = Path(path), 0, None

    def write(self, bgr: np.ndarray) -> None:
        if self._data is None:
            ok, buf = cv2.imencode(self.path.suffix.lower(), bgr)
            if not ok:
                raise UserError(f"cannot encode a {self.path.suffix} image: use .png or .jpg")
            self._data = buf.tobytes()
        self.frames += 1

    def close(self, keep: bool = True) -> None:
        if keep and self._data is not None:
            atomic_write_bytes(self.path, self._data)
