"""Reading the sidecar `sheet.json` written by `blocks print`: where each block and each of its
ArUco markers sit on the page, in millimetres (origin at the page's top-left corner, x right, y down).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from common.errors import UserError
from common.records import MarkerInfo as Marker  # one marker type for printing and capture
from common.records import SheetInfo, sidecar_path

DICTIONARIES = {"DICT_4X4_50", "DICT_4X4_100", "DICT_4X4_250", "DICT_4X4_1000", "DICT_5X5_50",
                "DICT_5X5_100", "DICT_6X6_50", "DICT_6X6_250", "DICT_ARUCO_ORIGINAL"}


@dataclass(frozen=True)
class Block:
    index: int
    page: int
    x_mm: float  # top-left corner of the patch area
    y_mm: float
    width_mm: float
    height_mm: float
    markers: tuple[Marker, ...]
    target: str | None = None
    model: str | None = None
    patch_sha256: str | None = None

    def corners_mm(self) -> np.ndarray:
        """(4, 2) corners of the patch area: top-left, top-right, bottom-right, bottom-left."""
        x, y, w, h = self.x_mm, self.y_mm, self.width_mm, self.height_mm
        return np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], dtype=np.float64)


@dataclass(frozen=True)
class Sheet:
    page_size_mm: tuple[float, float]
    dictionary: str
    blocks: tuple[Block, ...]
    path: Path | None = None
    marker_index: dict = field(default_factory=dict, compare=False)  # marker id -> block index

    def block_of_marker(self, marker_id: int) -> int | None:
        return self.marker_index.get(int(marker_id))


def load_sheet(path: str | Path) -> Sheet:
    """Read (common.records.SheetInfo.read) and check a sheet.json; any problem is one UserError line."""
    path = Path(path)
    path = sidecar_path(path) if path.suffix.lower() == ".pdf" else path
    return parse_sheet(SheetInfo.read(path), path)


def parse_sheet(data: dict | SheetInfo, path: Path | None = None) -> Sheet:
    """Check a sheet (parsed sheet.json or SheetInfo) for capture: known dictionary, markers present, ids unique."""
    where = f"sheet {path}" if path else "sheet"
    try:
        info = data if isinstance(data, SheetInfo) else SheetInfo.from_json(data)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise UserError(f"{where} is not a sheet from `blocks print` (bad or missing field: {e})") from None
    dictionary = info.aruco_dictionary
    blocks = []
    index: dict[int, int] = {}
    for i, b in enumerate(info.blocks):
        for m in b.markers:
            if m.id in index:
                raise UserError(f"{where}: marker id {m.id} is used twice")
            index[m.id] = i
        blocks.append(Block(i, b.page, b.x_mm, b.y_mm, b.width_mm, b.height_mm, b.markers, b.target,
                            b.model, b.patch_sha256))
    page = info.page_size_mm
    if dictionary not in DICTIONARIES:
        raise UserError(f"{where}: unsupported ArUco dictionary {dictionary!r}")
    if not blocks:
        raise UserError(f"{where} lists no blocks")
    if not index:
        raise UserError(f"{where} has no markers (printed with --no-markers?): capture needs them to find blocks")
    return Sheet(page, dictionary, tuple(blocks), path, index)
