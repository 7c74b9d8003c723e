"""Patch images as they go to the printer: exact 8-bit pixels plus what `blocks generate` said
about them (target, model), and the nearest-neighbour upscaling that keeps printers from blurring.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.errors import UserError
from common.files import decode_image_bgr, encode_png_rgb, read_file_bytes, sha256_bytes
from common.goal import Goal
from common.records import PatchRecord

MAX_IMAGE_SIDE_PX = 20000  # one upscaled block image; beyond this a PDF viewer or printer chokes


@dataclass(frozen=True)
class PatchImage:
    """pixels: (H, W, 3) uint8 RGB, exactly as stored in the file (no float round trip).

    sha256: of the file's bytes (of the lossless PNG encoding for patches made from arrays), so
    a sheet.json entry can be matched to the patch file it was printed from.
    """

    pixels: np.ndarray
    sha256: str
    source: str | None = None
    goal: Goal | None = None  # what the patch was made for, from patch.json
    model: str | None = None
    # whole-frame patches (blocks generate --eot held): the patch's coverage of the frame's shorter
    # side it was trained for, and from which coverage its held-out check won (None: never / unknown)
    trained_coverage: tuple[float, float] | None = None
    works_from: float | None = None
    reach: "Reach | None" = None  # blocks generate --distance: where it was trained to work


@dataclass(frozen=True)
class Reach:
    """patch.json's `reach`: the distance (m) a patch was trained for, as a block of size_mm seen
    by a camera of fov_deg, and its held-out whole-frame success over the band around it."""

    distance_m: float
    size_mm: float
    fov_deg: float
    band_m: tuple[float, float]
    success: float | None


# Peak memory of `blocks print` per patch pixel, measured by bench/memory.py (peak RSS for a 1000 x
# 1000 and a 3000 x 3000 patch: 17 bytes a pixel more), rounded up: decoded, flipped, upscaled, encoded.
PRINT_BYTES_PER_PIXEL = 20


def check_fits_print(data: bytes, path: Path) -> None:
    """The patch's size from its header (refused there above 64 MP), against the memory free."""
    from common.files import check_image_header
    from common.memory import check_fits

    w, h = check_image_header(data, path)
    check_fits(w * h * PRINT_BYTES_PER_PIXEL, f"patch {path} ({w} x {h} px)", "its size (resize the patch image)")


def load_patch(path: str | Path) -> PatchImage:
    """Read a patch image (any 8-bit image OpenCV reads; grey is expanded to RGB, alpha dropped)
    and the `patch.json` next to it when there is one."""
    path = Path(path)
    data = read_file_bytes(path, "patch image")
    check_fits_print(data, path)
    bgr = decode_image_bgr(data, path)  # header size checked before decoding
    pixels = np.ascontiguousarray(bgr[:, :, ::-1])
    _check_square(pixels, str(path))
    rec = _sidecar(path)
    goal, model = _meta_of(rec)
    trained, works = _coverage_of(rec)
    return PatchImage(pixels, sha256_bytes(data), str(path), goal, model, trained, works, _reach_of(rec))


def patch_from_array(image, goal: Goal | None = None, model: str | None = None) -> PatchImage:
    """image: (H, W, 3) uint8 RGB, or (3, H, W) float in [0, 1] (tensor or array) as `generate`
    returns it; floats are rounded to 8 bits the way common.files.save_png does."""
    arr = image.detach().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
    if arr.dtype != np.uint8:
        if arr.ndim != 3 or arr.shape[0] != 3:
            raise UserError(f"a float patch must be (3, H, W) in [0, 1], not shape {arr.shape}")
        arr = (np.clip(arr.astype(np.float64), 0, 1) * 255).round().astype(np.uint8).transpose(1, 2, 0)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise UserError(f"a uint8 patch must be (H, W, 3) RGB, not shape {arr.shape}")
    arr = np.ascontiguousarray(arr)
    _check_square(arr, "patch")
    return PatchImage(arr, sha256_bytes(encode_png_rgb(arr)), None, goal, model)


def _check_square(pixels: np.ndarray, where: str) -> None:
    h, w = pixels.shape[:2]
    if h != w or h == 0:
        # Printing a non-square patch at S x S mm would stretch it: better to say so.
        raise UserError(f"{where}: a patch must be square, this one is {w} x {h} px")


def read_patch_meta(path: Path) -> tuple[Goal | None, str | None]:
    """(the goal, the model's name) from the patch's sidecar, or Nones.

    Looks for `<name>.json` (patch.png -> patch.json), then `patch.json` in the same folder.
    An absent or unreadable sidecar is not an error: the caption just says less.
    """
    return _meta_of(_sidecar(path))


def _meta_of(rec: PatchRecord | None) -> tuple[Goal | None, str | None]:
    return (rec.target, rec.model_name()) if rec is not None else (None, None)


def _sidecar(path: Path) -> PatchRecord | None:
    """`<name>.json` (patch.png -> patch.json), else `patch.json` in the same folder, or None."""
    for meta in (path.with_suffix(".json"), path.parent / "patch.json"):
        if not meta.is_file():
            continue
        try:
            return PatchRecord.read(meta)
        except UserError:
            continue
    return None


def read_patch_coverage(path: Path) -> tuple[tuple[float, float] | None, float | None]:
    """(trained coverage range, works_from) of a whole-frame patch from its sidecar, or Nones
    for patches trained on other views (their scale is a share of the image, not of a frame)."""
    return _coverage_of(_sidecar(Path(path)))


def _coverage_of(rec: PatchRecord | None) -> tuple[tuple[float, float] | None, float | None]:
    held = rec.eot_settings.held if rec is not None and rec.eot_settings is not None else None
    if held is None or held.coverage is None:
        return None, None
    lo, hi = held.coverage
    if not 0 < lo <= hi <= 1:  # a share of the frame (also refuses NaN): else no distances to give
        return None, None
    works = rec.held_out.works_from if rec.held_out is not None else None
    ok = works is not None and 0 < works <= 1
    return (lo, hi), float(works) if ok else None


def _reach_of(rec: PatchRecord | None) -> Reach | None:
    """The record's reach, if every number in it is sane (patch.json is a stranger's file)."""
    r = rec.reach if rec is not None else None
    if r is None:
        return None

    def positive(v, top):  # the record's types are checked on reading; the sense of the numbers here
        return v is not None and math.isfinite(v) and 0 < v <= top

    band = r.band_m
    if not (positive(r.distance_m, 100) and positive(r.size_mm, 2000) and positive(r.fov_deg, 170)
            and band is not None and all(positive(b, 1000) for b in band)):
        return None
    ok = r.success is not None and 0 <= r.success <= 1
    return Reach(float(r.distance_m), float(r.size_mm), float(r.fov_deg), (float(band[0]), float(band[1])),
                 float(r.success) if ok else None)


def upscale_factor(n_px: int, side_mm: float, dpi: float) -> int:
    """Smallest integer factor that gives n_px at least `dpi` over side_mm (at least 1).

    Integer factors keep every patch pixel the same printed size; the PDF then scales the image to
    side_mm exactly, so the effective resolution is at or a little above dpi.
    """
    want = side_mm / 25.4 * dpi
    return max(1, math.ceil(want / n_px - 1e-9))


def block_image(patch: PatchImage, tile: tuple[int, int], side_mm: float, dpi: float) -> np.ndarray:
    """The block's pixels: the patch repeated rows x cols, each patch pixel k x k.

    Returns (rows * n * k, cols * n * k, 3) uint8 where n is the patch side in px and k
    upscale_factor(n, side_mm, dpi): every output pixel is a copy of an input pixel.
    """
    rows, cols = tile
    n = patch.pixels.shape[0]
    k = upscale_factor(n, side_mm, dpi)
    if max(rows, cols) * n * k > MAX_IMAGE_SIDE_PX:
        raise UserError(f"the block image would be {cols * n * k} x {rows * n * k} px: lower dpi or tile", ("dpi", "tile"))
    up = np.repeat(np.repeat(patch.pixels, k, axis=0), k, axis=1)
    return np.ascontiguousarray(np.tile(up, (rows, cols, 1)))
