"""Rasterising a PDF page with pypdfium2: previews, and measuring what was actually drawn."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from blocks.errors import UserError


def _open(pdf: bytes | str | Path):
    import pypdfium2 as pdfium

    if isinstance(pdf, (str, Path)) and not Path(pdf).is_file():
        raise UserError(f"PDF not found: {pdf}")
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


def mm_to_px(mm: float, dpi: float) -> float:
    return mm / 25.4 * dpi
