"""Where things go on the page: pure geometry in millimetres, no drawing.

Coordinates everywhere in `printing`: origin at the page's top-left corner, x right, y down, mm
(the sidecar sheet.json uses the same). A rectangle's x/y is its top-left corner.

Two layouts:
- grid: identical blocks in rows and columns over as many pages as needed. Each block has, when
  markers are on, one ArUco marker diagonally outside each corner at a fixed offset (the quiet
  zone), IDs 4k..4k+3 for block k in the order top-left, top-right, bottom-right, bottom-left.
- cube: one cross-shaped net (six faces, seven glue tabs) with 2 to 4 markers per face: its
  geometry lives in printing/cube.py, built from the shapes here.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from common.errors import UserError
from common.records import CORNERS  # with the other marker spots, beside sheet.json's reader that checks them
from printing.settings import DEFAULT_MARKER_MM  # noqa: F401 (L.DEFAULT_MARKER_MM; its home: the sheet's settings)

PAGE_SIZES_MM: dict[str, tuple[float, float]] = {
    "a4": (210.0, 297.0),
    "letter": (215.9, 279.4),
    "a3": (297.0, 420.0),
}
MAX_MM = 1000.0  # the largest length a sheet setting may take (A0 is 841 x 1189 mm; the pages here are smaller)
# Faces of the cube net in the order patches are assigned when six are given.
FACE_ORDER = ("front", "right", "back", "left", "top", "bottom")
# (column, row) of each face in the net, in units of the face side: a column top/front/bottom/back
# with left and right on either side of front. Portrait, so a bigger cube fits A4.
NET_CELLS = {"top": (1, 0), "left": (0, 1), "front": (1, 1), "right": (2, 1), "bottom": (1, 2), "back": (1, 3)}

CUT_GAP_MM = 1.0  # cut marks start this far from the patch corner so nothing touches the patch
CUT_MARK_MM = 5.0  # length of a cut mark when there are no markers
CELL_SPACING_MM = 3.0  # white gutter between neighbouring blocks (also a quiet zone between markers)
CAPTION_GAP_MM = 1.5  # between the block's furniture and its caption
# A block cut out as a card to hold up (the `held` views train on it, simulate renders it): the cut
# runs this far beyond the markers' outer edge, so each marker keeps a white quiet zone of its own.
CARD_BORDER_MM = 2.5


@dataclass(frozen=True)
class Rect:
    x_mm: float
    y_mm: float
    w_mm: float
    h_mm: float

    def grown(self, d: float) -> "Rect":
        return Rect(self.x_mm - d, self.y_mm - d, self.w_mm + 2 * d, self.h_mm + 2 * d)

    def overlaps(self, other: "Rect", eps: float = 1e-6) -> bool:
        """Open overlap: rectangles that only touch do not overlap."""
        return (self.x_mm < other.x_mm + other.w_mm - eps and other.x_mm < self.x_mm + self.w_mm - eps
                and self.y_mm < other.y_mm + other.h_mm - eps and other.y_mm < self.y_mm + self.h_mm - eps)

    def contains(self, other: "Rect", eps: float = 1e-6) -> bool:
        return (other.x_mm >= self.x_mm - eps and other.y_mm >= self.y_mm - eps
                and other.x_mm + other.w_mm <= self.x_mm + self.w_mm + eps
                and other.y_mm + other.h_mm <= self.y_mm + self.h_mm + eps)


@dataclass(frozen=True)
class Segment:
    x0_mm: float
    y0_mm: float
    x1_mm: float
    y1_mm: float


@dataclass(frozen=True)
class MarkerPlace:
    """An ArUco marker: x/y/size are those of its black square (what the detector's corners are)."""

    id: int
    x_mm: float
    y_mm: float
    size_mm: float
    spot: str  # which candidate spot it took: a corner name, "left"/"right"/..., or "ring_left"...

    @property
    def rect(self) -> Rect:
        return Rect(self.x_mm, self.y_mm, self.size_mm, self.size_mm)


@dataclass(frozen=True)
class BlockPlace:
    """One printed patch area (a grid block, or one cube face) and its markers."""

    index: int  # block number in the sheet (grid) or face number in FACE_ORDER position (cube)
    page: int
    x_mm: float
    y_mm: float
    width_mm: float
    height_mm: float
    markers: tuple[MarkerPlace, ...] = ()
    face: str | None = None

    @property
    def rect(self) -> Rect:
        return Rect(self.x_mm, self.y_mm, self.width_mm, self.height_mm)


@dataclass(frozen=True)
class Surround:
    """How far a block's furniture reaches around it; derived from the marker size.

    quiet_mm: white space between a marker and anything else (the patch included): ArUco needs a
    light border of at least one module (marker_mm / 6 for a 4x4 marker with its black border);
    we keep 1.5 modules. ext_mm: from the patch edge to the outer edge of the markers (or of the
    cut marks without markers).
    """

    marker_mm: float | None
    quiet_mm: float
    ext_mm: float

    @staticmethod
    def for_markers(marker_mm: float | None) -> "Surround":
        if marker_mm is None:
            return Surround(None, 0.0, CUT_GAP_MM + CUT_MARK_MM)
        quiet = marker_mm / 4
        return Surround(marker_mm, quiet, quiet + marker_mm)


@dataclass(frozen=True)
class Caption:
    page: int
    x_mm: float  # top-left of the caption's text box
    y_mm: float
    w_mm: float
    block_indices: tuple[int, ...]  # blocks (or faces) it describes


@dataclass
class Layout:
    """Everything placed on the sheet. pages: number of pages."""

    kind: str  # "grid" or "cube"
    page_size_mm: tuple[float, float]
    pages: int
    blocks: list[BlockPlace]
    captions: list[Caption]
    cut_lines: list[tuple[int, Segment]] = field(default_factory=list)  # (page, segment), solid
    fold_lines: list[tuple[int, Segment]] = field(default_factory=list)  # (page, segment), dashed
    tabs: list[tuple[int, tuple[tuple[float, float], ...]]] = field(default_factory=list)  # (page, polygon)
    frame: Surround = field(default_factory=lambda: Surround.for_markers(None))


def page_size(name: str) -> tuple[float, float]:
    try:
        return PAGE_SIZES_MM[name.lower()]
    except KeyError:
        raise UserError(f"page takes {'|'.join(PAGE_SIZES_MM)}, not {name!r}", param="page") from None


def corner_cut_marks(r: Rect, frame: Surround) -> list[Segment]:
    """Two short lines on the extension of each edge, outside the patch, at each corner.

    They lie on the patch's edge lines, so a ruler laid on two of them cuts exactly the patch;
    they run out to the markers' outer edge, which keeps them a full quiet zone from each marker.
    """
    a, b = CUT_GAP_MM, max(frame.ext_mm, CUT_GAP_MM + CUT_MARK_MM)
    x0, y0, x1, y1 = r.x_mm, r.y_mm, r.x_mm + r.w_mm, r.y_mm + r.h_mm
    out = []
    for cx, cy, sx, sy in ((x0, y0, -1, -1), (x1, y0, 1, -1), (x1, y1, 1, 1), (x0, y1, -1, 1)):
        out.append(Segment(cx + sx * a, cy, cx + sx * b, cy))
        out.append(Segment(cx, cy + sy * a, cx, cy + sy * b))
    return out


def diagonal_spot(r: Rect, corner: str, frame: Surround) -> Rect:
    """The marker square diagonally outside `corner` of r, one quiet zone away on both axes."""
    m, q = frame.marker_mm, frame.quiet_mm
    left = r.x_mm - q - m
    right = r.x_mm + r.w_mm + q
    top = r.y_mm - q - m
    bottom = r.y_mm + r.h_mm + q
    x = left if corner in ("top_left", "bottom_left") else right
    y = top if corner in ("top_left", "top_right") else bottom
    return Rect(x, y, m, m)


def block_markers(r: Rect, frame: Surround, first_id: int) -> tuple[MarkerPlace, ...]:
    """A grid block's markers: one diagonally outside each corner of r, ids first_id.. in CORNERS
    order; none when the frame has no markers."""
    if frame.marker_mm is None:
        return ()
    return tuple(MarkerPlace(first_id + i, s.x_mm, s.y_mm, s.w_mm, corner)
                 for i, corner in enumerate(CORNERS) for s in [diagonal_spot(r, corner, frame)])


def card_layout(size_mm: float, marker_mm: float = DEFAULT_MARKER_MM, border_mm: float = CARD_BORDER_MM) -> BlockPlace:
    """Block 0 of a sheet (marker ids 0-3) around one size_mm patch, as grid_layout places it, cut
    out as a card border_mm beyond its markers: in card mm, the origin at the card's top-left
    corner, so the card is size_mm + 2 * x_mm wide. What the `held` views train on (transforms.held)."""
    frame = Surround.for_markers(marker_mm)
    reach = frame.ext_mm + border_mm
    r = Rect(reach, reach, size_mm, size_mm)
    return BlockPlace(0, 0, r.x_mm, r.y_mm, size_mm, size_mm, block_markers(r, frame, 0))


def grid_layout(n_blocks: int, block_w: float, block_h: float, page: tuple[float, float],
                margin_mm: float, frame: Surround, caption_h_mm: float) -> Layout:
    """n_blocks identical blocks of block_w x block_h mm in rows and columns, page after page.

    Each cell holds the block, its furniture (markers or cut marks, `frame.ext_mm` on every side)
    and a caption box of caption_h_mm below. The grid is centred horizontally in the margins.
    """
    pw, ph = page
    margin_mm = max(margin_mm, frame.quiet_mm)  # a marker on the page's edge has no quiet zone
    cell_w = block_w + 2 * frame.ext_mm
    cell_h = block_h + 2 * frame.ext_mm + (CAPTION_GAP_MM + caption_h_mm if caption_h_mm > 0 else 0)
    usable_w, usable_h = pw - 2 * margin_mm, ph - 2 * margin_mm
    gutter = max(CELL_SPACING_MM, frame.quiet_mm)
    cols = int(math.floor((usable_w + gutter) / (cell_w + gutter) + 1e-9)) if usable_w > 0 else 0
    rows = int(math.floor((usable_h + gutter) / (cell_h + gutter) + 1e-9)) if usable_h > 0 else 0
    if cols < 1 or rows < 1:
        raise UserError(
            f"a {block_w:g} x {block_h:g} mm block needs {cell_w:.1f} x {cell_h:.1f} mm with its markers, "
            f"marks and caption, but only {max(usable_w, 0):.1f} x {max(usable_h, 0):.1f} mm lie inside "
            f"the margins: use a smaller size_mm or tile, a bigger page, a smaller margin_mm, "
            f"marker_mm or no_markers", ("size_mm", "tile", "page", "margin_mm", "marker_mm", "no_markers"))
    per_page = cols * rows
    x_start = margin_mm + (usable_w - (cols * cell_w + (cols - 1) * gutter)) / 2
    blocks, captions, cuts = [], [], []
    for k in range(n_blocks):
        p, slot = divmod(k, per_page)
        row, col = divmod(slot, cols)
        cx = x_start + col * (cell_w + gutter)
        cy = margin_mm + row * (cell_h + gutter)
        r = Rect(cx + frame.ext_mm, cy + frame.ext_mm, block_w, block_h)
        blocks.append(BlockPlace(k, p, r.x_mm, r.y_mm, block_w, block_h, block_markers(r, frame, 4 * k)))
        cuts += [(p, s) for s in corner_cut_marks(r, frame)]
        if caption_h_mm > 0:
            captions.append(Caption(p, cx, cy + block_h + 2 * frame.ext_mm + CAPTION_GAP_MM, cell_w, (k,)))
    pages = (n_blocks + per_page - 1) // per_page
    return Layout("grid", page, pages, blocks, captions, cut_lines=cuts, frame=frame)
