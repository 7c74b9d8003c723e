"""The public API: patches in, a print-ready sheet (PDF bytes + sheet.json) out.

    from printing import make_sheet, SheetSettings, write_sheet
    sheet = make_sheet(["runs/hen/patch.png"], SheetSettings(size_mm=60))
    write_sheet(sheet, "sheet.pdf", preview=True)   # sheet.pdf, sheet.json, sheet-page0.png

sheet.json (origin at the page's top-left corner, x right, y down, all lengths in mm):
- page_size_mm [w, h], pages, layout "grid"|"cube", aruco_dictionary "DICT_4X4_50", dpi, date.
- blocks[]: page (0-based), x_mm/y_mm (top-left of the printed patch area), size_mm (the block's
  printed side: patch side x tile columns), width_mm/height_mm (equal unless --tile R x C with
  R != C; then size_mm is the width), patch_size_mm (one patch copy's side), tile [rows, cols],
  markers[] {id, x_mm, y_mm, size_mm, spot} (x/y/size of the marker's black square, the corners
  ArUco reports), patch_sha256 (of the patch file's bytes), patch_file, target (from patch.json:
  {index, name, mode targeted|untargeted, alternatives}, a common.goal.Goal; null without one),
  model, face (cube only: front, right, back, left, top, bottom; else null), image_px [w, h]
  (the embedded image's pixels), distance_m [near, far] (whole-frame patches: where the camera
  should be, from the coverage the patch works at and fov_deg; null for others), fov_deg.
- In the cube layout each face is one block entry; markers are unique per face (see layout.py).
"""
from __future__ import annotations

import datetime
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from common.errors import UserError
from common.records import PRINTED_MM, BlockInfo, MarkerInfo, SheetInfo, sidecar_path
from printing import layout as L
from printing.cube import cube_layout
from printing.markers import DICTIONARY, dictionary_size
from printing.patches import PatchImage, block_image, load_patch
from printing.reach import distance_text, distances_m, reach_text, size_for, too_far, trained_size
from printing.settings import SheetSettings, parse_tile  # noqa: F401 (importable from here, the CLI's home of them)


@dataclass
class PrintedSheet:
    """A finished sheet in memory (the PDF and its sheet.json record): nothing is on disk until
    write_sheet. The calibration sheet is one too (printing.calibration)."""

    pdf: bytes
    info: SheetInfo
    layout: L.Layout = field(repr=False)

    @property
    def pages(self) -> int:
        return self.info.pages


def preview_paths(pdf_path: str | Path, pages: int) -> list[Path]:
    """sheet.pdf -> sheet-page0.png, sheet-page1.png, ... (0-based, like sheet.json's `page`)."""
    p = Path(pdf_path)
    return [p.with_name(f"{p.stem}-page{i}.png") for i in range(pages)]


def check_settings(s: SheetSettings) -> None:
    """Errors name the setting (size_mm); the CLI shows its flag (--size-mm). The checks run in a
    fixed order (sizes, camera, page furniture, layout), so a settings with several faults always
    names the same one first."""
    _check_size(s)
    _check_camera(s)
    _check_page(s)
    _check_layout(s)
    L.page_size(s.page)


def _finite_pos(v, name: str) -> None:
    if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
        raise UserError(f"{name} must be a positive number, not {v!r}", param=name)


def _check_size(s: SheetSettings) -> None:
    if s.size_mm is not None:
        _finite_pos(s.size_mm, "size_mm")
        if s.size_mm < PRINTED_MM[0]:  # sheet.json's reader refuses what no printer draws
            raise UserError(f"size_mm must be at least {PRINTED_MM[0]:g} mm, not {s.size_mm:g}", param="size_mm")
    _finite_pos(s.dpi, "dpi")


def _check_camera(s: SheetSettings) -> None:
    """The camera the distances are computed for, and the distance to size the block for."""
    _finite_pos(s.fov_deg, "fov_deg")
    if not 10 <= s.fov_deg <= 170:
        raise UserError(f"fov_deg is a camera's horizontal field of view, 10 to 170 degrees, not {s.fov_deg:g}",
                        param="fov_deg")
    if s.distance_m is not None:
        _finite_pos(s.distance_m, "distance_m")
        if s.distance_m > 100:
            raise UserError(f"distance_m is in metres: {s.distance_m:g} m is beyond any printable block",
                            param="distance_m")


def _check_page(s: SheetSettings) -> None:
    """Resolution, margins and markers: what the printer and the detector can handle."""
    if not 72 <= s.dpi <= 2400:
        raise UserError(f"dpi must be between 72 and 2400, not {s.dpi}", param="dpi")
    if not (math.isfinite(s.margin_mm) and 0 <= s.margin_mm):
        raise UserError(f"margin_mm must be 0 or more, not {s.margin_mm!r}", param="margin_mm")
    for name in ("size_mm", "margin_mm", "marker_mm"):
        if getattr(s, name) is not None and getattr(s, name) > L.MAX_MM:  # no page is larger; beyond it the layout's arithmetic overflows
            raise UserError(f"{name} must be at most {L.MAX_MM:g} mm (the largest page is smaller), not "
                            f"{getattr(s, name):g}", param=name)
    if s.markers:
        _finite_pos(s.marker_mm, "marker_mm")
        if s.marker_mm < 4:
            raise UserError(f"marker_mm {s.marker_mm:g} is too small to print and detect reliably (4 mm at least)",
                            param="marker_mm")


def _check_layout(s: SheetSettings) -> None:
    if s.layout not in ("grid", "cube"):
        raise UserError(f"layout takes grid|cube, not {s.layout!r}", param="layout")
    r, c = s.tile
    if not (1 <= r <= 50 and 1 <= c <= 50):
        raise UserError(f"tile takes RxC with 1 <= R, C <= 50, not {r}x{c}", param="tile")
    if s.layout == "cube" and (r, c) != (1, 1):
        raise UserError("tile applies to layout grid only (a cube face is one patch of size_mm)",
                        param=("tile", "layout", "size_mm"))


def make_sheet(patches: Sequence[str | Path | PatchImage], settings: SheetSettings | None = None) -> PrintedSheet:
    """Lay out and draw patches. Grid: one block per patch. Cube: 1 patch (on all six faces) or 6
    (one per face, in printing.layout.FACE_ORDER). Raises UserError for any bad input."""
    from printing.pdf import draw_pdf

    s = settings or SheetSettings()
    check_settings(s)
    if not patches:
        raise UserError("no patch images given")
    loaded = [p if isinstance(p, PatchImage) else load_patch(p) for p in patches]
    if s.distance_m is not None:
        s = replace(s, size_mm=size_for(loaded, s.distance_m, s.fov_deg))
    elif s.size_mm is None:
        s = replace(s, size_mm=trained_size(loaded))
    page = L.page_size(s.page)
    frame = L.Surround.for_markers(s.marker_mm if s.markers else None)
    date = s.date or datetime.date.today().isoformat()

    plan = _grid_plan if s.layout == "grid" else _cube_plan
    try:
        lay, sources, wrapped = plan(loaded, s, page, frame, date)
    except UserError:
        if s.distance_m is None:
            raise
        raise too_far(loaded, s, plan, frame, date) from None
    images = _block_images(sources, s)
    pdf = draw_pdf(lay, images, wrapped, margin_mm=s.margin_mm)
    blocks = _block_infos(lay, sources, images, s)
    info = SheetInfo(page_size_mm=(page[0], page[1]), pages=lay.pages, layout=s.layout,
                     aruco_dictionary=DICTIONARY, blocks=blocks, dpi=int(s.dpi), date=date)
    return PrintedSheet(pdf, info, lay)


def _grid_plan(loaded: list[PatchImage], s: SheetSettings, page, frame, date: str):
    """Grid: one block per patch. (layout, the patch of each block, the wrapped captions)."""
    from printing.pdf import caption_height_mm, caption_lines

    n_blocks = len(loaded)
    if s.markers and 4 * n_blocks > dictionary_size(DICTIONARY):
        cap = dictionary_size(DICTIONARY) // 4
        raise UserError(f"{n_blocks} blocks need {4 * n_blocks} marker IDs but {DICTIONARY} has "
                        f"{dictionary_size(DICTIONARY)}: print at most {cap} patches per sheet, "
                        f"or use no_markers", "no_markers")
    rows, cols = s.tile
    block_w, block_h = cols * s.size_mm, rows * s.size_mm
    texts = [_caption(p, s, date) for p in loaded]
    width = block_w + 2 * frame.ext_mm
    wrapped = [caption_lines(t, width) for t in texts] if s.captions else []
    cap_h = caption_height_mm(max((len(w) for w in wrapped), default=0))
    lay = L.grid_layout(n_blocks, block_w, block_h, page, s.margin_mm, frame, cap_h)
    sources = loaded
    return lay, sources, wrapped


def _cube_plan(loaded: list[PatchImage], s: SheetSettings, page, frame, date: str):
    """Cube: 1 patch on all six faces or 6, one per face. (layout, the patch of each face, the wrapped caption)."""
    from printing.pdf import caption_height_mm, caption_lines

    if len(loaded) not in (1, 6):
        raise UserError(f"layout cube takes 1 patch (on all faces) or 6 (one per face: "
                        f"{', '.join(L.FACE_ORDER)}), not {len(loaded)}", "layout")
    sources = loaded * 6 if len(loaded) == 1 else loaded
    width = 3 * s.size_mm + 2 * frame.ext_mm
    wrapped = []
    if s.captions:
        if len(loaded) == 1:
            text = _caption(loaded[0], s, date, kind="cube")
        else:
            text = "\n".join(f"{f}: {_caption(p, s, None, short=True)}" for f, p in zip(L.FACE_ORDER, loaded))
            text += f"\n{s.size_mm:g} mm cube | {date} | cut solid lines, fold dashed, glue grey tabs"
        wrapped = [caption_lines(text, width)]
    cap_h = caption_height_mm(len(wrapped[0])) if wrapped else 0.0
    lay = cube_layout(s.size_mm, page, s.margin_mm, frame, cap_h)
    return lay, sources, wrapped


def _block_images(sources: list[PatchImage], s: SheetSettings) -> list[np.ndarray]:
    """One image per distinct patch (the cube's six faces share it when there is one patch)."""
    cache: dict[int, np.ndarray] = {}
    images = []
    for p in sources:
        if id(p) not in cache:
            cache[id(p)] = block_image(p, tuple(s.tile), s.size_mm, s.dpi)
        images.append(cache[id(p)])
    return images


def _block_infos(lay, sources: list[PatchImage], images: list[np.ndarray], s: SheetSettings) -> tuple[BlockInfo, ...]:
    """sheet.json's record of each block: where it is, its markers, and the patch it shows."""
    rows, cols = s.tile
    blocks = []
    for b, p, img in zip(lay.blocks, sources, images):
        blocks.append(BlockInfo(
            page=b.page, x_mm=_r(b.x_mm), y_mm=_r(b.y_mm), size_mm=_r(b.width_mm),
            width_mm=_r(b.width_mm), height_mm=_r(b.height_mm), patch_size_mm=_r(s.size_mm),
            tile=(rows, cols),
            markers=tuple(MarkerInfo(m.id, _r(m.x_mm), _r(m.y_mm), _r(m.size_mm), m.spot) for m in b.markers),
            patch_sha256=p.sha256, patch_file=p.source, target=p.goal,
            model=p.model, face=b.face, image_px=(int(img.shape[1]), int(img.shape[0])),
            distance_m=distances_m(p, s.size_mm, s.fov_deg), fov_deg=float(s.fov_deg)))
    return tuple(blocks)


def _r(v: float) -> float:
    return round(float(v), 4)  # 0.1 um: exact enough, and keeps sheet.json readable


def _caption(p: PatchImage, s: SheetSettings, date: str | None, kind: str = "grid", short: bool = False) -> str:
    parts = []
    g = p.goal
    if g is not None and g.name:
        verb = "target" if g.targeted else "away from"
        parts.append(f"{verb} {g.name}" + (f" ({g.index})" if g.index is not None else ""))
    elif g is not None and g.index is not None:
        parts.append(f"target #{g.index}")
    if p.model is not None:
        parts.append(f"model {p.model}")
    if not short:
        r, c = s.tile
        if kind == "cube":
            parts.append(f"{s.size_mm:g} mm cube")
        elif (r, c) == (1, 1):
            parts.append(f"{s.size_mm:g} mm patch")
        else:
            parts.append(f"{s.size_mm:g} mm patch x {r}x{c} = {c * s.size_mm:g} x {r * s.size_mm:g} mm")
        d = reach_text(p, s.size_mm, s.fov_deg) or distance_text(p, s.size_mm, s.fov_deg)
        if d:
            parts.append(d)
    if date:
        parts.append(date)
    if p.source:
        parts.append(Path(p.source).name if short else _short_path(p.source))
    parts.append(f"sha256 {p.sha256[:8]}")
    return " | ".join(parts)


def _short_path(path: str) -> str:
    parts = Path(path).parts
    return str(Path(*parts[-2:])) if len(parts) > 2 else path


def write_sheet(sheet: PrintedSheet, out: str | Path, preview: bool = False, preview_dpi: float = 100) -> list[Path]:
    """Write out (the PDF), its sidecar JSON (sheet.info, a SheetInfo record) and, with preview,
    one PNG per page; returns the paths. Used for patch sheets and the calibration sheet alike.

    Everything is rendered in memory first, then the files are written as one set, PDF last, so a
    failure leaves no partial file (and no PDF without its sidecar).
    """
    from common.files import write_together

    out = Path(out)
    if out.suffix.lower() != ".pdf":
        raise UserError(f"out must be a .pdf file (the sidecar takes the .json name), not {out}", param="out")
    files: list[tuple[Path, bytes]] = [(sidecar_path(out), sheet.info.to_bytes())]
    if preview:
        from common.files import encode_png_rgb
        from printing.render import render_page

        for i, path in enumerate(preview_paths(out, sheet.info.pages)):
            files.append((path, encode_png_rgb(render_page(sheet.pdf, i, preview_dpi))))
    files.append((out, sheet.pdf))
    return write_together(files)  # all or none: never a sidecar without its PDF


def check_sheet_out(out: str | Path, preview: bool = False) -> Path:
    """Before any drawing: --out is a writable .pdf, and its sidecar (and previews) can go next to it."""
    from common.files import check_output_file

    out = Path(out)
    if out.suffix.lower() != ".pdf":
        raise UserError(f"out must be a .pdf file (the sidecar takes the .json name), not {out}", param="out")
    check_output_file(out)
    check_output_file(sidecar_path(out), "sidecar")
    if preview:
        check_output_file(preview_paths(out, 1)[0], "preview")
    return out


def sheet_outputs(out: str | Path, preview: bool = False, pages: int = 1) -> list[Path]:
    """What write_sheet writes for out: the PDF, its sidecar JSON and (preview) one PNG per page."""
    return [Path(out), sidecar_path(out), *(preview_paths(out, pages) if preview else [])]


def read_sheet(path: str | Path) -> SheetInfo:
    """sheet.json (or the PDF's path, whose sidecar is read) -> SheetInfo. Bad file -> UserError."""
    return SheetInfo.read(path)

