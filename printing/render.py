"""Rasterising a PDF page with pypdfium2: previews, and measuring what was actually drawn."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from common.errors import UserError


def _open(pdf: bytes | str | Path):
    import pypdfium2 as pdfium

    if isinstance(pdf, (str, Path)):
        from common.inputs import check_input_file

        check_input_file(pdf, "PDF")
    try:
        return pdfium.PdfDocument(pdf if isinstance(pdf, bytes) else str(pdf))
    except pdfium.PdfiumError as e:
        raise UserError(f"cannot read PDF {pdf if not isinstance(pdf, bytes) else '(bytes)'}: {e}") from None


def page_count(pdf: bytes | str | Path) -> int:
    doc = _open(pdf)
    try:
        return len(doc)
    finally:
        doc.close()


def page_size_mm(pdf: bytes | str | Path, page: int = 0) -> tuple[float, float]:
    """(width, height) of a page in mm."""
    doc = _open(pdf)
    try:
        if not 0 <= page < len(doc):
            raise UserError(f"the PDF has {len(doc)} page(s), no page {page}")
        w, h = doc[page].get_size()  # points
        return w / 72 * 25.4, h / 72 * 25.4
    finally:
        doc.close()


def render_page(pdf: bytes | str | Path, page: int = 0, dpi: float = 600) -> np.ndarray:
    """One page of a PDF (bytes or a path) -> (H, W, 3) uint8 RGB at `dpi`.

    Pixel (0, 0) is the page's top-left corner, so x_mm = col * 25.4 / dpi (same for rows).
    An A4 page at 600 dpi is about 35 megapixels (100 MB): render once and reuse.
    """
    doc = _open(pdf)
    try:
        if not 0 <= page < len(doc):
            raise UserError(f"the PDF has {len(doc)} page(s), no page {page}")
        bitmap = doc[page].render(scale=dpi / 72, rev_byteorder=True, fill_color=(255, 255, 255, 255))
        arr = bitmap.to_numpy()
        return np.ascontiguousarray(arr[:, :, :3])
    finally:
        doc.close()


def render_region(pdf: bytes | str | Path, page: int, dpi: float, x_mm: float, y_mm: float, w_mm: float,
                  h_mm: float) -> tuple[np.ndarray, tuple[float, float]]:
    """Part of a page (top-left x/y, width, height in mm) -> ((H, W, 3) uint8 RGB, (x0_mm, y0_mm)).

    The region is snapped outward to the full-page pixel grid at `dpi`, so its pixels are the same
    as render_page's; (x0_mm, y0_mm) is where its pixel (0, 0) starts on the page. Much cheaper
    than a whole 600 dpi page when only a block needs measuring.
    """
    doc = _open(pdf)
    try:
        if not 0 <= page < len(doc):
            raise UserError(f"the PDF has {len(doc)} page(s), no page {page}")
        pg = doc[page]
        pw, ph = pg.get_size()  # points
        scale = dpi / 72
        full_w, full_h = round(pw * scale), round(ph * scale)
        px0 = max(0, int(np.floor(mm_to_px(x_mm, dpi))))
        py0 = max(0, int(np.floor(mm_to_px(y_mm, dpi))))
        px1 = min(full_w, int(np.ceil(mm_to_px(x_mm + w_mm, dpi))))
        py1 = min(full_h, int(np.ceil(mm_to_px(y_mm + h_mm, dpi))))
        if px1 <= px0 or py1 <= py0:
            raise UserError("the region lies outside the page")
        crop = (px0 / scale, (full_h - py1) / scale, (full_w - px1) / scale, py0 / scale)
        bitmap = pg.render(scale=scale, crop=crop, rev_byteorder=True, fill_color=(255, 255, 255, 255))
        arr = np.ascontiguousarray(bitmap.to_numpy()[:, :, :3])
        return arr, (px0 * 25.4 / dpi, py0 * 25.4 / dpi)
    finally:
        doc.close()


def mm_to_px(mm: float, dpi: float) -> float:
    return mm / 25.4 * dpi
