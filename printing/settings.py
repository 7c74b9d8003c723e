"""The settings of `blocks print`'s sheet and of the calibration sheet, in a module that imports
neither numpy nor the records (pydantic models): the CLI reads their defaults from here for
--help, and the sheet's code (printing.sheet, printing.calibration) loads when a command runs."""
from __future__ import annotations

from dataclasses import dataclass

from common.distance import WEBCAM_FOV_DEG
from common.errors import UserError

DEFAULT_MARKER_MM = 12.0  # side of a block's ArUco markers (blocks print --marker-mm)


@dataclass
class SheetSettings:
    """size_mm: printed side of one patch (exact). tile: (rows, cols) copies per block (grid only).
    marker_mm: side of each ArUco marker's black square; None or markers=False: no markers."""

    size_mm: float | None = None  # None: the size the patches were trained for (generate --size-mm), else 50
    page: str = "a4"
    margin_mm: float = 10.0
    layout: str = "grid"
    tile: tuple[int, int] = (1, 1)
    markers: bool = True
    marker_mm: float = DEFAULT_MARKER_MM
    dpi: int = 300
    captions: bool = True
    date: str | None = None  # caption date, ISO; None = today
    fov_deg: float = WEBCAM_FOV_DEG  # the camera's horizontal field of view, for the distances
    distance_m: float | None = None  # pick size_mm so a whole-frame patch works from this far


def parse_tile(text: str) -> tuple[int, int]:
    """'RxC' (or 'R'): rows x columns."""
    parts = text.lower().replace("*", "x").split("x")
    try:
        vals = tuple(int(p) for p in parts)
    except ValueError:
        vals = ()
    if len(vals) == 1:
        vals = (vals[0], vals[0])
    if len(vals) != 2:
        raise UserError(f"tile takes RxC (rows x columns, e.g. 2x2), not {text!r}", param="tile")
    return vals


@dataclass
class CalibrationSettings:
    """swatch_mm: side of each swatch (the calibrator samples its inner half, so ~10 mm leaves a
    few camera pixels even from a distance). gap_mm: white between swatches. marker_mm: side of
    each corner marker's black square. levels: steps per channel of the RGB grid (levels**3 colours)."""

    page: str = "a4"
    margin_mm: float = 10.0
    swatch_mm: float = 11.0
    gap_mm: float = 1.5
    marker_mm: float = 16.0
    levels: int = 5
    dpi: int = 300  # resolution of the embedded swatch image (its edges snap to this grid)
    seed: int = 0  # order of the swatches on the page
    date: str | None = None
