"""The cube layout: one foldable cross-shaped net (six faces, seven glue tabs) on one page, its
fold and cut lines, and the markers around each face. Split from printing/layout.py, which keeps
the shared geometry (Rect, Surround, the page sizes) and the grid.

Markers cannot sit on the diagonals of every face (faces and tabs are in the way), so each face
gets 2 to 4 markers from a list of candidate spots (its corner diagonals, the middle of its sides,
then the ring around the whole net at its level) that do not overlap a face, a tab or another
marker's quiet zone. The page is flat, so any marker on it fixes the face's homography.
"""
from __future__ import annotations

import math

from common.errors import UserError
from common.records import CORNERS
from printing.layout import (CAPTION_GAP_MM, FACE_ORDER, NET_CELLS, BlockPlace, Caption, Layout, MarkerPlace, Rect,
                             Segment, Surround, diagonal_spot)


def cube_layout(face_mm: float, page: tuple[float, float], margin_mm: float, frame: Surround,
                caption_h_mm: float) -> Layout:
    """A foldable cube net with face side face_mm, centred horizontally, at the top margin.

    Faces: NET_CELLS. Seven glue tabs: on the top and bottom edges of left and right, and on the
    left, right and bottom edges of back (those glue under the outer edges of left, right and
    top). Faces are drawn upright on the net (the back face therefore ends up upside down on the
    folded cube).
    """
    s, t = face_mm, tab_depth(face_mm)
    ox, oy, need_w = _net_origin(face_mm, page, margin_mm, frame, caption_h_mm)
    net_h = 4 * s + t
    faces = {f: Rect(ox + c * s, oy + r * s, s, s) for f, (c, r) in NET_CELLS.items()}

    def at(c, r):  # net corner (in face units) -> page mm
        return ox + c * s, oy + r * s

    tabs, folds, cuts = _net_lines(at, t)

    blocks: list[BlockPlace] = []
    net = Rect(ox, oy, 3 * s, net_h)
    if frame.marker_mm is None:
        for i, f in enumerate(FACE_ORDER):
            r = faces[f]
            blocks.append(BlockPlace(i, 0, r.x_mm, r.y_mm, s, s, (), f))
    else:
        blocks = _cube_markers(faces, [poly for _, poly in tabs], net, frame)
    captions = []
    if caption_h_mm > 0:
        captions.append(Caption(0, ox - frame.ext_mm, oy + net_h + frame.ext_mm + CAPTION_GAP_MM, need_w,
                                tuple(range(6))))
    return Layout("cube", page, 1, blocks, captions, cut_lines=cuts, fold_lines=folds, tabs=tabs, frame=frame)


def _net_origin(face_mm: float, page: tuple[float, float], margin_mm: float, frame: Surround,
                caption_h_mm: float) -> tuple[float, float, float]:
    """Where the net's top-left corner goes (centred, at the top margin) and the width it needs
    with its markers: (x, y, need_w). A net that does not fit inside the margins is a UserError."""
    s, t = face_mm, tab_depth(face_mm)
    pw, ph = page
    margin_mm = max(margin_mm, frame.quiet_mm)  # a marker on the page's edge has no quiet zone
    net_w, net_h = 3 * s, 4 * s + t
    need_w = net_w + 2 * frame.ext_mm
    need_h = net_h + 2 * frame.ext_mm + (CAPTION_GAP_MM + caption_h_mm if caption_h_mm > 0 else 0)
    usable_w, usable_h = pw - 2 * margin_mm, ph - 2 * margin_mm
    if need_w > usable_w + 1e-9 or need_h > usable_h + 1e-9:
        raise UserError(
            f"a cube net with {face_mm:g} mm faces needs {need_w:.1f} x {need_h:.1f} mm with its tabs, "
            f"markers and caption, but only {max(usable_w, 0):.1f} x {max(usable_h, 0):.1f} mm lie "
            f"inside the margins: use a smaller size_mm or a bigger page", ("size_mm", "page"))
    return margin_mm + (usable_w - need_w) / 2 + frame.ext_mm, margin_mm + frame.ext_mm, need_w


def tab_depth(face_mm: float) -> float:
    return min(max(0.2 * face_mm, 4.0), 10.0)


def _tab(x0: float, y0: float, x1: float, y1: float, nx: float, ny: float, t: float):
    """Trapezoid glue tab on edge (x0,y0)-(x1,y1), pointing along the unit normal (nx, ny).

    45-degree sides (inset t at both ends) so the tab never sticks out past the edge's ends.
    """
    ux, uy = (x1 - x0), (y1 - y0)
    n = math.hypot(ux, uy)
    ux, uy = ux / n, uy / n
    return ((x0, y0), (x0 + t * (nx + ux), y0 + t * (ny + uy)), (x1 + t * (nx - ux), y1 + t * (ny - uy)), (x1, y1))


def _net_lines(at, t: float):
    """The cube net's glue tabs, fold lines and cut lines, all on page 0: (tabs, folds, cuts).
    at(c, r): a net corner in face units -> page mm; t: the tab depth, mm."""
    tab_specs = [  # edge endpoints in face units, outward normal
        ((0, 1), (1, 1), (0, -1)), ((0, 2), (1, 2), (0, 1)),  # left: top, bottom
        ((2, 1), (3, 1), (0, -1)), ((2, 2), (3, 2), (0, 1)),  # right: top, bottom
        ((1, 3), (1, 4), (-1, 0)), ((2, 3), (2, 4), (1, 0)), ((1, 4), (2, 4), (0, 1)),  # back
    ]
    tabs, folds, cuts = [], [], []
    tab_edges = set()
    for a, b, (nx, ny) in tab_specs:
        (x0, y0), (x1, y1) = at(*a), at(*b)
        poly = _tab(x0, y0, x1, y1, nx, ny, t)
        tabs.append((0, poly))
        folds.append((0, Segment(x0, y0, x1, y1)))
        for p, q in zip(poly[:-1], poly[1:]):
            cuts.append((0, Segment(*p, *q)))
        tab_edges.add((min(a, b), max(a, b)))
    # Face edges: shared with another face -> fold; carrying a tab -> fold (added above); else cut.
    cells = set(NET_CELLS.values())
    seen = set()
    for c, r in NET_CELLS.values():
        for a, b, nb in (((c, r), (c + 1, r), (c, r - 1)), ((c + 1, r), (c + 1, r + 1), (c + 1, r)),
                         ((c, r + 1), (c + 1, r + 1), (c, r + 1)), ((c, r), (c, r + 1), (c - 1, r))):
            key = (min(a, b), max(a, b))
            if key in seen:
                continue
            seen.add(key)
            seg = Segment(*at(*a), *at(*b))
            if nb in cells:
                folds.append((0, seg))
            elif key not in tab_edges:  # tab edges already have their fold line
                cuts.append((0, seg))
    return tabs, folds, cuts


def _cube_markers(faces: dict[str, Rect], tabs: list, net: Rect, frame: Surround) -> list[BlockPlace]:
    """Give each face 2-4 markers from candidate spots that stay clear of faces, tabs and markers.

    Faces with the fewest free spots choose first (front and bottom are boxed in by the other
    faces and the tabs, so they get spots on the ring around the net). IDs are given out in
    FACE_ORDER afterwards, so they depend only on the geometry.
    """
    m, q = frame.marker_mm, frame.quiet_mm
    region = net.grown(frame.ext_mm)
    obstacles = [r.grown(q) for r in faces.values()]
    for poly in tabs:
        xs, ys = [p[0] for p in poly], [p[1] for p in poly]
        obstacles.append(Rect(min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)).grown(q))
    options = {f: [(name, spot) for name, spot in _marker_spots(faces[f], net, frame)
                   if region.contains(spot) and not any(spot.overlaps(o) for o in obstacles)]
               for f in FACE_ORDER}
    chosen = _pick_spots(options, q)
    short = [f for f in FACE_ORDER if len(chosen[f]) < 2]
    if short:
        raise UserError(f"cube faces of {faces['front'].w_mm:g} mm leave no room for two {m:g} mm markers "
                        f"around the {', '.join(short)} face(s): use a bigger size_mm, a smaller "
                        f"marker_mm or no_markers", ("size_mm", "marker_mm", "no_markers"))
    blocks, next_id = [], 0
    for i, f in enumerate(FACE_ORDER):
        r = faces[f]
        ms = []
        for name, spot in chosen[f]:
            ms.append(MarkerPlace(next_id, spot.x_mm, spot.y_mm, m, name))
            next_id += 1
        blocks.append(BlockPlace(i, 0, r.x_mm, r.y_mm, r.w_mm, r.h_mm, tuple(ms), f))
    return blocks


def _marker_spots(r: Rect, net: Rect, frame: Surround) -> list[tuple[str, Rect]]:
    """Every spot a marker of face r could take, in order of preference: its corner diagonals, the
    middle of its sides, then the ring around the net at its level (named for sheet.json's spot)."""
    m, q = frame.marker_mm, frame.quiet_mm
    cx, cy = r.x_mm + r.w_mm / 2 - m / 2, r.y_mm + r.h_mm / 2 - m / 2
    out = [(c, diagonal_spot(r, c, frame)) for c in CORNERS]
    out += [("left", Rect(r.x_mm - q - m, cy, m, m)), ("right", Rect(r.x_mm + r.w_mm + q, cy, m, m)),
            ("above", Rect(cx, r.y_mm - q - m, m, m)), ("below", Rect(cx, r.y_mm + r.h_mm + q, m, m))]
    out += [("ring_left", Rect(net.x_mm - q - m, cy, m, m)),
            ("ring_right", Rect(net.x_mm + net.w_mm + q, cy, m, m)),
            ("ring_above", Rect(cx, net.y_mm - q - m, m, m)),
            ("ring_below", Rect(cx, net.y_mm + net.h_mm + q, m, m))]
    return out


def _pick_spots(options: dict[str, list[tuple[str, Rect]]], q: float) -> dict[str, list[tuple[str, Rect]]]:
    """Up to 4 spots per face; the faces with the fewest free spots choose first, so the boxed-in
    faces are not left with none."""
    taken: list[Rect] = []
    chosen: dict[str, list[tuple[str, Rect]]] = {}
    for f in sorted(FACE_ORDER, key=lambda f: (len(options[f]), FACE_ORDER.index(f))):
        picks = []
        for name, spot in options[f]:
            if len(picks) == 4:
                break
            # the same spot can be a candidate of two faces (ring spots): first come, first served
            if any(spot.overlaps(o.grown(q)) for o in taken):
                continue
            picks.append((name, spot))
            taken.append(spot)
        chosen[f] = picks
    return chosen
