"""sheet.json (`blocks print`) and calib.json (`blocks calibration-sheet`): the sheet, its blocks
and markers, the calibration swatches; each rule beside the field it guards (printing.sheet
documents the fields)."""
from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import ClassVar

import numpy as np
from pydantic import ConfigDict, model_validator

from common.records.base import (VERSION, FieldError, GoalField, Part, Record, between, inside, listed, nested_target,
                                 on_page, one_of, within)
from common.formats import CalibrationLines, SheetLines  # how each record reads on screen

# A printed length in mm: under 0.1 mm no printer draws it; 2 m is beyond A0's long side (1189 mm).
PRINTED_MM = (0.1, 2000.0)
PAGE_MM = (10.0, 2000.0)  # a page's side
# The ArUco dictionaries a sheet may name, and how many marker ids each has (0 .. n-1); the sheets
# this tool prints use printing.markers.DICTIONARY. tests/test_readers.py checks the counts against OpenCV.
ARUCO_IDS = {"DICT_4X4_50": 50, "DICT_4X4_100": 100, "DICT_4X4_250": 250, "DICT_4X4_1000": 1000, "DICT_5X5_50": 50,
             "DICT_5X5_100": 100, "DICT_6X6_50": 50, "DICT_6X6_250": 250, "DICT_ARUCO_ORIGINAL": 1024}
# Where printing.layout may put a marker: beside a block's corner, the middle of a side, or on the
# ring around a cube's net (printing.layout takes its CORNERS from here).
CORNERS = ("top_left", "top_right", "bottom_right", "bottom_left")  # ArUco's corner order too
MARKER_SPOTS = CORNERS + ("left", "right", "above", "below", "ring_left", "ring_right", "ring_above", "ring_below")

Printed = between(float, *PRINTED_MM)  # a printed length, mm
OnPage = between(float, 0, PAGE_MM[1])  # a position on a page, mm from its top-left


class MarkerInfo(Part):
    """One printed ArUco marker: x/y/size of its black square, in mm from the page's top-left."""

    model_config = ConfigDict(frozen=True)

    id: between(int, 0, max(ARUCO_IDS.values()) - 1)
    x_mm: OnPage
    y_mm: OnPage
    size_mm: Printed
    spot: one_of(*MARKER_SPOTS) | None = None

    def corners_mm(self) -> np.ndarray:
        """(4, 2) in ArUco's corner order: top-left, top-right, bottom-right, bottom-left."""
        x, y, s = self.x_mm, self.y_mm, self.size_mm
        return np.array([[x, y], [x + s, y], [x + s, y + s], [x, y + s]], dtype=np.float64)

    def check_on(self, page_mm: tuple[float, float], dictionary: str) -> None:
        """Meaning on its sheet: an id the sheet's ArUco dictionary has, the square on the page."""
        n = ARUCO_IDS[dictionary]
        if self.id >= n:
            raise FieldError("id", f"must be from 0 to {n - 1} ({dictionary} has {n} markers), not {self.id}")
        on_page((self.x_mm, self.y_mm, self.size_mm, self.size_mm), page_mm, ("x_mm", "y_mm", "size_mm", "size_mm"))


class BlockInfo(Part):
    """One printed block (see printing.sheet for the meaning of each field)."""

    model_config = ConfigDict(frozen=True)

    page: between(int, 0, 10_000)
    x_mm: OnPage
    y_mm: OnPage
    size_mm: Printed
    width_mm: Printed
    height_mm: Printed
    patch_size_mm: Printed
    tile: listed(tuple[between(int, 1, 1000), between(int, 1, 1000)])
    markers: listed(tuple[MarkerInfo, ...])
    patch_sha256: str | None = None
    patch_file: str | None = None
    target: GoalField | None = None
    model: str | None = None
    face: str | None = None
    image_px: listed(tuple[between(int, 1, 100_000), between(int, 1, 100_000)]) | None = None
    # whole-frame patches: (near, far) camera distance, and the camera's field of view they are for
    distance_m: listed(tuple[between(float, 0, 1e6), between(float, 0, 1e6)]) | None = None
    fov_deg: between(float, 0, 180) | None = None

    @model_validator(mode="before")
    @classmethod
    def _older(cls, d):
        """Sheets from before width/height/tile were recorded: a square single-patch block; and
        before the target was one object: flat target, target_index, target_mode."""
        if not isinstance(d, dict):
            return d
        name = "size_mm" if "size_mm" in d else "width_mm"
        if name not in d:
            raise ValueError("has no width_mm")
        size = d[name]
        return {"page": 0, "width_mm": size, "height_mm": size, "patch_size_mm": size, "tile": (1, 1),
                "markers": [], **nested_target(d), "size_mm": size}

    def corners_mm(self) -> np.ndarray:
        """(4, 2) corners of the patch area: top-left, top-right, bottom-right, bottom-left."""
        x, y, w, h = self.x_mm, self.y_mm, self.width_mm, self.height_mm
        return np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], dtype=np.float64)

    def check_on(self, page_mm: tuple[float, float], pages: int, dictionary: str) -> None:
        """Meaning on its sheet: one of its pages, on that page, and so are its markers."""
        if self.page >= pages:
            raise FieldError("page", f"must be from 0 to {pages - 1} (the sheet has {pages} page(s)), not {self.page}")
        on_page((self.x_mm, self.y_mm, self.width_mm, self.height_mm), page_mm, ("x_mm", "y_mm", "width_mm", "height_mm"))
        for i, m in enumerate(self.markers):
            within(f"markers[{i}]", lambda m: m.check_on(page_mm, dictionary), m)


class SheetInfo(SheetLines, Record):
    """sheet.json, written next to the PDF by `blocks print` (printing.sheet documents the fields)."""

    model_config = ConfigDict(frozen=True)
    WHAT: ClassVar[str] = "sheet"
    FROM: ClassVar[str] = "blocks print"

    page_size_mm: listed(tuple[between(float, 0, PAGE_MM[1]), between(float, 0, PAGE_MM[1])]) = (0.0, 0.0)
    pages: between(int, 1, 10_000) = 1
    layout: str = "grid"
    aruco_dictionary: one_of(*ARUCO_IDS) = "DICT_4X4_50"
    blocks: listed(tuple[BlockInfo, ...])
    dpi: between(int, 1, 100_000) | None = None
    date: str | None = None
    version: int = VERSION

    def check(self) -> None:
        """Rules between fields: a page of a printable size (or 0 x 0: not recorded, an old sheet),
        every block on one of the pages, every marker on the page and in the dictionary."""
        if any(self.page_size_mm) and min(self.page_size_mm) < PAGE_MM[0]:
            w, h = self.page_size_mm
            raise FieldError("page_size_mm", f"must be {PAGE_MM[0]:g} to {PAGE_MM[1]:g} mm a side, not {w:g} x {h:g}")
        for i, b in enumerate(self.blocks):
            within(f"blocks[{i}]", lambda b: b.check_on(self.page_size_mm, self.pages, self.aruco_dictionary), b)

    @classmethod
    def read(cls, path: str | Path):
        """sheet.json, or the PDF's path (its sidecar is read)."""
        return super().read(sheet_json(path))

    @cached_property
    def marker_index(self) -> dict[int, int]:
        """marker id -> index of its block (capture looks every detected marker up here)."""
        return {m.id: i for i, b in enumerate(self.blocks) for m in b.markers}

    def block_of_marker(self, marker_id: int) -> int | None:
        return self.marker_index.get(int(marker_id))


class SwatchInfo(Part):
    """One colour swatch of calib.json: its colour as sent to the printer (0-255) and its box, in
    mm from the page's top-left (height_mm: calib.json from before it was recorded are square)."""

    model_config = ConfigDict(frozen=True)

    index: between(int, 0, 1_000_000)
    rgb: listed(tuple[between(int, 0, 255), between(int, 0, 255), between(int, 0, 255)])
    x_mm: OnPage
    y_mm: OnPage
    size_mm: Printed
    height_mm: Printed | None = None

    @property
    def box_mm(self) -> tuple[float, float, float, float]:
        """x, y, width, height in mm."""
        return self.x_mm, self.y_mm, self.size_mm, self.size_mm if self.height_mm is None else self.height_mm


class CalibrationInfo(CalibrationLines, SheetInfo):
    """calib.json: a valid sheet.json (one block, the swatch field) plus the swatches as sent."""

    WHAT: ClassVar[str] = "calibration sheet"
    FROM: ClassVar[str] = "blocks calibration-sheet"

    kind: str = "calibration"
    markers: listed(tuple[MarkerInfo, ...]) = ()
    swatch_mm: Printed | None = None
    grid_levels: between(int, 1, 1000) | None = None
    rows: between(int, 1, 10_000) | None = None
    cols: between(int, 1, 10_000) | None = None
    swatches: listed(tuple[SwatchInfo, ...]) = ()

    def check(self) -> None:
        """A sheet's rules, and the swatches inside the swatch field (the one block): a swatch
        outside it would be sampled from whatever lies there, or from nothing."""
        super().check()
        for i, m in enumerate(self.markers):
            within(f"markers[{i}]", lambda m: m.check_on(self.page_size_mm, self.aruco_dictionary), m)
        if len(self.blocks) != 1:
            return  # capture.calibrate says a calibration sheet has one field
        b = self.blocks[0]
        field = (b.x_mm, b.y_mm, b.width_mm, b.height_mm)
        for i, s in enumerate(self.swatches):
            within(f"swatches[{i}]", lambda s: inside(s.box_mm, field, ("x_mm", "y_mm", "size_mm", "height_mm"),
                                                      "swatch field"), s)


def sidecar_path(pdf_path: str | Path) -> Path:
    """sheet.pdf -> sheet.json (calib.pdf -> calib.json): where a sheet's record lies."""
    return Path(pdf_path).with_suffix(".json")


def sheet_json(path: str | Path) -> Path:
    """A sheet's record path, given it or its PDF."""
    path = Path(path)
    return sidecar_path(path) if path.suffix.lower() == ".pdf" else path
