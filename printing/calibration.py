"""A colour calibration sheet: swatches spread over the RGB cube, four ArUco markers, calib.json.

    from printing.calibration import CalibrationSettings, make_calibration_sheet, write_calibration_sheet
    sheet = make_calibration_sheet(CalibrationSettings(page="a4"))
    write_calibration_sheet(sheet, "calib.pdf")   # calib.pdf, calib.json (and calib-page0.png with preview)

Print it at 100% with colour management off (the colours sent must reach the printer unchanged),
photograph it in the light the patch will be used in, then `blocks calibrate photo.jpg --sheet
calib.json` fits the printer-to-camera colour map.

calib.json is a valid sheet.json (see printing.sheet): one block, the swatch field, with the four
corner markers, so `blocks simulate` and `blocks capture` find and rectify it like any sheet. On
top of that: kind "calibration", markers[] (the same four, top level) and swatches[] {index, rgb
[r, g, b] 0-255 as sent, x_mm, y_mm, size_mm, height_mm} (common.records.SwatchInfo: top-left
corner, origin at the page's top-left, y down).

The swatches are drawn as one lossless image over the field at exactly its size (printing.pdf's
draw_pdf, the same path patches take), so the colours in the PDF are exactly those in calib.json.
"""
from __future__ import annotations

import datetime
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.errors import UserError
from printing import layout as L
from printing.markers import DICTIONARY, dictionary_size
from common.records import BlockInfo, CalibrationInfo, MarkerInfo, SwatchInfo
from printing.sheet import PrintedSheet, _r, write_sheet
from printing.settings import CalibrationSettings  # noqa: F401 (importable from here)

KIND = "calibration"


@dataclass
class CalibrationSheet(PrintedSheet):
    """The PDF and its calib.json record (info: a CalibrationInfo)."""


def swatch_colors(n: int, levels: int = 5, seed: int = 0) -> np.ndarray:
    """(n, 3) uint8: the levels**3 grid over the RGB cube (black and white included), then the
    centres of its cells (levels-1)**3, then greys between the grid's, then seeded random colours,
    as many as n asks for; shuffled with `seed` so that uneven light on the page does not line up
    with any colour axis (it then averages out in the fit instead of bending one tone curve)."""
    if n < levels ** 3:
        raise UserError(f"the page holds {n} swatches but a {levels}-level grid needs {levels ** 3}: "
                        f"use smaller swatches, a bigger page or fewer levels")
    g = np.linspace(0, 255, levels)
    grid = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)
    centres = (g[:-1] + g[1:]) / 2
    body = np.stack(np.meshgrid(centres, centres, centres, indexing="ij"), -1).reshape(-1, 3)
    # greys on a finer ladder than the grid's: neutral tones are what a colour cast shows in first
    ladder = np.linspace(0, 255, 4 * (levels - 1) + 1)
    greys = np.repeat([v for v in ladder if not np.isclose(v, g).any()], 3).reshape(-1, 3)
    colors = np.concatenate([grid, body, greys])[:n]
    rng = np.random.default_rng(seed)
    if len(colors) < n:
        colors = np.concatenate([colors, rng.uniform(0, 255, (n - len(colors), 3))])
    colors = np.round(colors).astype(np.uint8)
    return colors[rng.permutation(n)]


def _check(s: CalibrationSettings) -> None:
    """Errors name the setting (swatch_mm); the CLI shows its flag (--swatch-mm)."""
    for name, v, lo in (("swatch_mm", s.swatch_mm, 3.0), ("marker_mm", s.marker_mm, 4.0)):
        if not (math.isfinite(v) and v >= lo):
            raise UserError(f"{name} must be at least {lo:g} mm, not {v!r}", param=name)
    for name, v in (("gap_mm", s.gap_mm), ("margin_mm", s.margin_mm)):
        if not (math.isfinite(v) and v >= 0):
            raise UserError(f"{name} must be 0 or more, not {v!r}", param=name)
    for name, v in (("swatch_mm", s.swatch_mm), ("marker_mm", s.marker_mm), ("gap_mm", s.gap_mm),
                    ("margin_mm", s.margin_mm)):
        if v > L.MAX_MM:  # no page is larger; beyond it the layout's arithmetic overflows
            raise UserError(f"{name} must be at most {L.MAX_MM:g} mm (the largest page is smaller), not {v:g}",
                            param=name)
    if not 2 <= s.levels <= 8:
        raise UserError(f"levels must be between 2 and 8, not {s.levels}", param="levels")
    if not 72 <= s.dpi <= 1200:
        raise UserError(f"dpi must be between 72 and 1200, not {s.dpi}", param="dpi")


def make_calibration_sheet(settings: CalibrationSettings | None = None) -> CalibrationSheet:
    """Lay out and draw the sheet: markers in the corners of the page's printable area, a caption
    between the top two, and the swatch field (as many swatches as fit) between the marker rows."""
    from printing.pdf import draw_pdf

    s = settings or CalibrationSettings()
    _check(s)
    pw, ph = L.page_size(s.page)
    frame = L.Surround.for_markers(s.marker_mm)
    m, q = s.marker_mm, frame.quiet_mm
    margin = max(s.margin_mm, q)  # a marker at the page's edge would have no quiet zone
    x0, x1 = margin, pw - margin
    y0, y1 = margin + m + q, ph - margin - m - q  # the field lies between the marker rows
    rows, cols = _grid_size(s, x1 - x0, y1 - y0)
    colors = swatch_colors(rows * cols, s.levels, s.seed)

    image, swatches, box = _swatch_field(colors, rows, cols, (x0, y0, x1, y1), s)
    markers = _corner_markers(s, (pw, ph), margin)
    block = L.BlockPlace(0, 0, *box, markers)
    date = s.date or datetime.date.today().isoformat()
    captions, lines = _caption(s, len(colors), date, (x0, x1, margin), q)
    lay = L.Layout(KIND, (pw, ph), 1, [block], captions, frame=frame)
    pdf = draw_pdf(lay, [image], [lines] if captions else [], title="colour calibration sheet",
                   margin_mm=s.margin_mm)
    info = _calibration_info(s, (pw, ph), image, box, markers, date, (rows, cols), swatches)
    return CalibrationSheet(pdf, info, lay)


def _grid_size(s: CalibrationSettings, width_mm: float, height_mm: float) -> tuple[int, int]:
    """How many swatches fit the field's width and height: (rows, cols), at least one of each."""
    pitch = s.swatch_mm + s.gap_mm
    cols = int(math.floor((width_mm + s.gap_mm) / pitch + 1e-9))
    rows = int(math.floor((height_mm + s.gap_mm) / pitch + 1e-9))
    if cols < 1 or rows < 1:
        raise UserError(f"{s.swatch_mm:g} mm swatches with {s.marker_mm:g} mm markers do not fit on "
                        f"{s.page} with {s.margin_mm:g} mm margins")
    return rows, cols


def _corner_markers(s: CalibrationSettings, page: tuple[float, float], margin: float) -> tuple[L.MarkerPlace, ...]:
    """One marker in each corner of the printable area, with the dictionary's last four IDs: a
    calibration sheet and a block sheet (IDs from 0) can share a frame."""
    pw, ph = page
    m, x0, x1 = s.marker_mm, margin, pw - margin
    n_ids = dictionary_size(DICTIONARY)
    spots = ((x0, margin), (x1 - m, margin), (x1 - m, ph - margin - m), (x0, ph - margin - m))
    return tuple(L.MarkerPlace(n_ids - 4 + i, x, y, m, corner)
                 for i, ((x, y), corner) in enumerate(zip(spots, L.CORNERS)))


def _caption(s: CalibrationSettings, n_swatches: int, date: str, box, quiet_mm: float):
    """The caption between the top two markers, if it fits their height: (captions, its lines).
    box: (x0, x1, margin) of the printable area, mm."""
    from printing.pdf import caption_height_mm, caption_lines

    x0, x1, margin = box
    m = s.marker_mm
    text = (f"colour calibration sheet | {n_swatches} swatches of {s.swatch_mm:g} mm | {date}\n"
            f"print at 100% with colour management off, photograph flat and evenly lit, then: "
            f"blocks calibrate PHOTO --sheet <this sheet's .json>")
    cap_w = x1 - x0 - 2 * (m + quiet_mm)
    lines = caption_lines(text, cap_w)
    captions = []
    if caption_height_mm(len(lines)) <= m:
        captions = [L.Caption(0, x0 + m + quiet_mm, margin, cap_w, (0,))]
    return captions, lines


def _calibration_info(s: CalibrationSettings, page, image: np.ndarray, box, markers, date: str, grid,
                      swatches) -> CalibrationInfo:
    """calib.json: the swatch field as the sheet's one block, its corner markers and every swatch."""
    (pw, ph), (fx, fy, field_w, field_h), (rows, cols) = page, box, grid
    marker_info = tuple(MarkerInfo(mk.id, _r(mk.x_mm), _r(mk.y_mm), _r(mk.size_mm), mk.spot) for mk in markers)
    field_info = BlockInfo(page=0, x_mm=_r(fx), y_mm=_r(fy), size_mm=_r(field_w), width_mm=_r(field_w),
                           height_mm=_r(field_h), patch_size_mm=_r(field_w), tile=(1, 1), markers=marker_info,
                           image_px=(int(image.shape[1]), int(image.shape[0])))
    return CalibrationInfo(page_size_mm=(pw, ph), pages=1, layout=KIND, aruco_dictionary=DICTIONARY,
                           blocks=(field_info,), dpi=int(s.dpi), date=date, kind=KIND, markers=marker_info,
                           swatch_mm=s.swatch_mm, grid_levels=s.levels, rows=rows, cols=cols,
                           swatches=tuple(swatches))


def _swatch_field(colors: np.ndarray, rows: int, cols: int, bounds, s: CalibrationSettings):
    """The swatch field centred in bounds (x0, y0, x1, y1) mm: (its image, calib.json's swatch
    entries, its box (x, y, width, height) mm)."""
    x0, y0, x1, y1 = bounds
    pitch = s.swatch_mm + s.gap_mm
    # The field as one image whose swatch edges fall on its pixel grid; positions in calib.json are
    # read back from that grid, so they are exactly where the printed edges are.
    ppm = s.dpi / 25.4
    field_w, field_h = cols * pitch - s.gap_mm, rows * pitch - s.gap_mm
    fx = x0 + (x1 - x0 - field_w) / 2  # centred between the margins / marker rows
    fy = y0 + (y1 - y0 - field_h) / 2
    W, H = round(field_w * ppm), round(field_h * ppm)
    image = np.full((H, W, 3), 255, np.uint8)
    swatches = []
    for k, rgb in enumerate(colors):
        r, c = divmod(k, cols)
        px0, py0 = round(c * pitch * ppm), round(r * pitch * ppm)
        px1, py1 = round((c * pitch + s.swatch_mm) * ppm), round((r * pitch + s.swatch_mm) * ppm)
        image[py0:py1, px0:px1] = rgb
        sx, sy = field_w / W, field_h / H  # mm per image pixel (the image is stretched to the field)
        swatches.append(SwatchInfo(k, tuple(int(v) for v in rgb), _r(fx + px0 * sx), _r(fy + py0 * sy),
                                   _r((px1 - px0) * sx), _r((py1 - py0) * sy)))
    return image, swatches, (fx, fy, field_w, field_h)


def write_calibration_sheet(sheet: CalibrationSheet, out: str | Path, preview: bool = False,
                            preview_dpi: float = 100) -> list[Path]:
    """Write out (the PDF), its sidecar calib.json and, with preview, a PNG; returns the paths
    (printing.sheet.write_sheet: one set, the PDF last)."""
    return write_sheet(sheet, out, preview, preview_dpi)
