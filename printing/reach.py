"""Where the camera should stand: the distances a printed whole-frame patch works from, the size
that puts a wanted distance in its working range, and the error when that size outgrows the page.
Split from printing/sheet.py: these answer "how far?", the sheet answers "what goes where"."""
from __future__ import annotations

import math
from dataclasses import replace

from common.distance import (DEFAULT_SIZE_MM, WORKS_RATE, coverage_at, distance_mm, distance_range,
                             size_for_distance)
from common.errors import UserError
from printing import layout as L
from printing.patches import PatchImage


def working_coverage(p: PatchImage) -> tuple[float, float] | None:
    """The coverage range a whole-frame patch works at: from the smallest coverage its held-out
    check won (works_from) to the largest it trained for; None for other patches or if it never won."""
    if p.trained_coverage is None or p.works_from is None:
        return None
    return p.works_from, max(p.works_from, p.trained_coverage[1])


def distances_m(p: PatchImage, size_mm: float, fov_deg: float) -> tuple[float, float] | None:
    """sheet.json's distance_m [near, far] in metres (mm rounding), or None (see working_coverage)."""
    cov = working_coverage(p)
    if cov is None:
        return None
    near, far = distance_range(size_mm, cov, fov_deg)
    return round(near / 1000, 3), round(far / 1000, 3)


def size_for(patches: list[PatchImage], distance_m: float, fov_deg: float) -> float:
    """size_mm that puts distance_m in the middle (geometric) of every patch's working range."""
    covs = [working_coverage(p) for p in patches]
    if any(c is None for c in covs):
        raise UserError("distance_m needs whole-frame patches whose held-out check won at some coverage "
                        "(blocks generate --eot held): give size_mm instead", param=("distance_m", "size_mm"))
    lo, hi = max(c[0] for c in covs), min(c[1] for c in covs)
    mid = math.sqrt(lo * max(lo, hi))
    return round(size_for_distance(distance_m * 1000, mid, fov_deg), 1)


def trained_size(patches: list[PatchImage]) -> float:
    """The side (mm) the patches were trained for (generate --distance --size-mm) when they all
    say the same one, else DEFAULT_SIZE_MM."""
    sizes = {p.reach.size_mm if p.reach is not None else None for p in patches}
    return sizes.pop() if len(sizes) == 1 and None not in sizes else DEFAULT_SIZE_MM


def reach_text(p: PatchImage, size_mm: float, fov_deg: float) -> str | None:
    """'works at about 1.0 m (0.7-1.4 m: 93% of held-out frames)', for a patch trained for a
    distance (generate --distance), at the size and camera printed for (a block k times larger
    works k times farther); 'trained for about ...' below WORKS_RATE. None without a distance."""
    r = p.reach
    if r is None:
        return None
    cover = coverage_at(r.size_mm, r.distance_m * 1000, r.fov_deg)
    d = distance_mm(size_mm, cover, fov_deg) / 1000
    near, far = (b * d / r.distance_m for b in r.band_m)
    won = "" if r.success is None else f": {r.success:.0%} of held-out frames"
    verb = "works at" if r.success is not None and r.success >= WORKS_RATE else "trained for"
    return f"{verb} about {_m(d)} m ({_m(near)}-{_m(far)} m{won}) from a {fov_deg:g} deg camera"


def _m(metres: float) -> str:
    return f"{metres:.1f}" if metres >= 1 else f"{metres:.2f}"


def largest_fit(loaded, s, plan, frame, date: str, page_name: str) -> float | None:
    """The largest size_mm (0.1 mm steps) whose block, with its furniture, fits page_name; None
    when not even a 1 mm block does. s: the SheetSettings (not imported: printing.sheet imports us)."""
    page = L.page_size(page_name)

    def fits(size: float) -> bool:
        try:
            plan(loaded, replace(s, size_mm=size, page=page_name), page, frame, date)
        except UserError:
            return False
        return True

    lo, hi = 1.0, max(s.size_mm, 1.0)
    if not fits(lo):
        return None
    while hi - lo > 0.1:  # the plan is layout arithmetic only: a few dozen tries cost nothing
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo


def too_far(loaded, s, plan, frame, date: str) -> UserError:
    """The error for a distance_m whose block does not fit the page: the farthest distance that
    fits this page, and what the bigger pages reach (size_mm grows in proportion to distance_m)."""
    def farthest(size: float | None) -> float:
        return 0.0 if size is None else math.floor(s.distance_m * size / s.size_mm * 100) / 100

    here = largest_fit(loaded, s, plan, frame, date, s.page)
    reach = {name: farthest(largest_fit(loaded, s, plan, frame, date, name))
             for name, (w, h) in L.PAGE_SIZES_MM.items() if w * h > L.page_size(s.page)[0] * L.page_size(s.page)[1]}
    bigger = [f"{name} up to {d:.2f} m" for name, d in sorted(reach.items(), key=lambda kv: kv[1]) if d > farthest(here)]
    fits_big = [name for name, d in reach.items() if d >= s.distance_m]
    text = (f"distance_m {s.distance_m:g} m needs a {s.size_mm:.0f} mm block, but {s.page} holds at most "
            f"{here or 0:.0f} mm with its markers, marks and caption: the farthest that fits {s.page} is "
            f"{farthest(here):.2f} m")
    if bigger:
        text += f"; farther needs bigger paper: page {', '.join(bigger)}"
    if not fits_big:
        text += (f"; no paper size here holds a block for {s.distance_m:g} m: print the block bigger elsewhere "
                 f"(a poster print of the patch PNG at {s.size_mm:.0f} mm) or stand closer")
    return UserError(text, ("distance_m", "page"))


def distance_text(p: PatchImage, size_mm: float, fov_deg: float) -> str | None:
    """'works 0.10-0.26 m from a 65 deg webcam', or for a whole-frame patch that never reached the
    bar, what it trained for; None for patches with no coverage."""
    if p.trained_coverage is None:
        return None
    d = distances_m(p, size_mm, fov_deg)
    if d is not None:
        return f"works {d[0]:.2f}-{d[1]:.2f} m from a {fov_deg:g} deg camera"
    near, far = distance_range(size_mm, p.trained_coverage, fov_deg)
    return f"trained for {near / 1000:.2f}-{far / 1000:.2f} m from a {fov_deg:g} deg camera (held-out check not passed)"
