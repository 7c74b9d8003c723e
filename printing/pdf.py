"""Drawing a Layout with reportlab: the PDF is built in memory and returned as bytes.

reportlab's origin is the page's bottom-left corner with y up, in points; everything else in
`printing` is top-left, y down, mm. The conversion lives here only.
"""
from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np

from printing.layout import Layout
from printing.markers import marker_modules

MM = 72 / 25.4  # points per mm
CAPTION_FONT = "Helvetica"
CAPTION_PT = 6.0
CAPTION_LEADING_PT = 7.2
LINE_PT = 0.35  # cut and fold lines
SCALE_BAR_MM = 100.0


def caption_lines(text: str, width_mm: float) -> list[str]:
    """Wrap caption text to width_mm in the caption font (explicit newlines kept)."""
    from reportlab.lib.utils import simpleSplit

    out: list[str] = []
    for para in text.split("\n"):
        out += simpleSplit(_latin1(para), CAPTION_FONT, CAPTION_PT, width_mm * MM) or [""]
    return out


def caption_height_mm(n_lines: int) -> float:
    return n_lines * CAPTION_LEADING_PT / MM


def _latin1(s: str) -> str:
    # The standard PDF fonts cover Latin-1 only; anything else would come out as garbage.
    return s.encode("latin-1", "replace").decode("latin-1")


def draw_pdf(layout: Layout, images: Sequence[np.ndarray], captions: Sequence[list[str]],
             title: str = "adversarial blocks", scale_bar: bool = True, margin_mm: float = 10.0) -> bytes:
    """layout: where things go. images[i]: (H, W, 3) uint8 RGB drawn over layout.blocks[i] at
    exactly its size. captions[j]: wrapped lines for layout.captions[j]. Returns the PDF bytes.

    Images go last on each page so lines drawn on a patch's border (cube folds) never cover it.
    """
    from reportlab import rl_config
    from reportlab.pdfgen import canvas

    rl_config.useA85 = 0  # binary streams: ASCII85 adds 25% to every image for no benefit here
    pw, ph = layout.page_size_mm
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=(pw * MM, ph * MM), invariant=1, pageCompression=1)
    c.setTitle(title)
    c.setCreator("deep-chicken-saviour: blocks print")

    def X(x_mm):
        return x_mm * MM

    def Y(y_mm, h_mm=0.0):  # top-left y (down) of something h_mm tall -> its bottom in points
        return (ph - y_mm - h_mm) * MM

    readers = {}
    for page in range(layout.pages):
        _draw_lines(c, layout, page, X, Y)
        for block in layout.blocks:
            if block.page != page:
                continue
            for m in block.markers:
                _draw_marker(c, m.id, m.x_mm, m.y_mm, m.size_mm, layout.frame.quiet_mm, X, Y)
        _draw_captions(c, layout, captions, page, X, Y)
        if scale_bar and margin_mm >= 6 and pw - 2 * margin_mm >= SCALE_BAR_MM:
            _scale_bar(c, pw, ph, margin_mm, X, Y, page, layout.pages)
        _draw_images(c, layout, images, page, readers, X, Y)
        c.showPage()
    c.save()
    return buf.getvalue()


def _draw_lines(c, layout: Layout, page: int, X, Y) -> None:
    """The cube's glue tabs (light fill, so they read as "not part of the cube"), cut lines (solid)
    and fold lines (dashed) on `page`."""
    c.setStrokeColorRGB(0, 0, 0)
    c.setLineWidth(LINE_PT)
    for p, poly in layout.tabs:
        if p != page:
            continue
        path = c.beginPath()
        path.moveTo(X(poly[0][0]), Y(poly[0][1]))
        for x, y in poly[1:]:
            path.lineTo(X(x), Y(y))
        path.close()
        c.setFillGray(0.9)
        c.drawPath(path, stroke=0, fill=1)
    for p, s in layout.cut_lines:
        if p == page:
            c.line(X(s.x0_mm), Y(s.y0_mm), X(s.x1_mm), Y(s.y1_mm))
    c.setDash(2 * MM, 1.5 * MM)
    for p, s in layout.fold_lines:
        if p == page:
            c.line(X(s.x0_mm), Y(s.y0_mm), X(s.x1_mm), Y(s.y1_mm))
    c.setDash()


def _draw_captions(c, layout: Layout, captions: Sequence[list[str]], page: int, X, Y) -> None:
    c.setFillGray(0)
    for cap, lines in zip(layout.captions, captions):
        if cap.page != page:
            continue
        t = c.beginText()
        t.setFont(CAPTION_FONT, CAPTION_PT, CAPTION_LEADING_PT)
        # first baseline one font size below the box's top
        t.setTextOrigin(X(cap.x_mm), Y(cap.y_mm) - CAPTION_PT)
        for line in lines:
            t.textLine(line)
        c.drawText(t)


def _draw_images(c, layout: Layout, images: Sequence[np.ndarray], page: int, readers: dict, X, Y) -> None:
    """The block images on `page`; `readers` keeps one reader per array across pages."""
    from PIL import Image
    from reportlab.lib.utils import ImageReader

    for block, img in zip(layout.blocks, images):
        if block.page != page:
            continue
        key = id(img)
        if key not in readers:  # the same array drawn twice is stored once in the PDF
            readers[key] = ImageReader(Image.fromarray(img, mode="RGB"))
        c.drawImage(readers[key], X(block.x_mm), Y(block.y_mm, block.height_mm),
                    width=block.width_mm * MM, height=block.height_mm * MM)


def _draw_marker(c, marker_id: int, x_mm: float, y_mm: float, size_mm: float, quiet_mm: float, X, Y) -> None:
    """Vector marker: white quiet square, then one black rectangle per run of black modules."""
    mods = marker_modules(marker_id)
    n = mods.shape[0]
    u = size_mm / n
    c.setFillGray(1)
    q = quiet_mm
    c.rect(X(x_mm - q), Y(y_mm - q, size_mm + 2 * q), (size_mm + 2 * q) * MM, (size_mm + 2 * q) * MM,
           stroke=0, fill=1)
    # One path of row runs filled as a whole: neighbouring runs share edges and anti-aliasing
    # leaves no light seams between them.
    path = c.beginPath()
    for r in range(n):
        col = 0
        while col < n:
            if not mods[r, col]:
                col += 1
                continue
            start = col
            while col < n and mods[r, col]:
                col += 1
            path.rect(X(x_mm + start * u), Y(y_mm + r * u, u), (col - start) * u * MM, u * MM)
    c.setFillGray(0)
    c.drawPath(path, stroke=0, fill=1)


def _scale_bar(c, pw, ph, margin_mm, X, Y, page, pages) -> None:
    """A 100 mm bar in the bottom margin: measure it to check the sheet was printed at 100%."""
    y = ph - margin_mm / 2
    x0 = (pw - SCALE_BAR_MM) / 2
    c.setLineWidth(LINE_PT)
    c.line(X(x0), Y(y), X(x0 + SCALE_BAR_MM), Y(y))
    for k in range(0, int(SCALE_BAR_MM) + 1, 10):
        tick = 1.5 if k % 50 else 2.5
        c.line(X(x0 + k), Y(y), X(x0 + k), Y(y - tick))
    c.setFont(CAPTION_FONT, CAPTION_PT)
    c.drawCentredString(X(pw / 2), Y(y + 0.5) - CAPTION_PT,
                        f"this bar is {SCALE_BAR_MM:g} mm when printed at 100% (no fit-to-page)"
                        f"  -  page {page + 1}/{pages}")
