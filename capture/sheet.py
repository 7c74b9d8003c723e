"""Reading the sidecar `sheet.json` written by `blocks print`: where each block and each of its
ArUco markers sit on the page, in millimetres (origin at the page's top-left corner, x right, y down).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from common.errors import UserError
from common.records import MarkerInfo as Marker  # one marker type for printing and capture
from common.records import BlockInfo, SheetInfo, sheet_json, sidecar_path

DICTIONARIES = {"DICT_4X4_50", "DICT_4X4_100", "DICT_4X4_250", "DICT_4X4_1000", "DICT_5X5_50",
                "DICT_5X5_100", "DICT_6X6_50", "DICT_6X6_250", "DICT_ARUCO_ORIGINAL"}


@dataclass(frozen=True)
class Sheet:
    """A sheet.json (common.records.SheetInfo, the one sheet record) checked for finding blocks in
    a frame, with the marker id -> block index it needs per detection."""

    page_size_mm: tuple[float, float]
    dictionary: str
    blocks: tuple[BlockInfo, ...]
    path: Path | None = None
    marker_index: dict = field(default_factory=dict, compare=False)  # marker id -> block index

    def block_of_marker(self, marker_id: int) -> int | None:
        return self.marker_index.get(int(marker_id))


def load_sheet(path: str | Path) -> Sheet:
    """Read (common.records.SheetInfo.read) and check a sheet.json; any problem is one UserError line."""
    return parse_sheet(SheetInfo.read(path), sheet_json(path))


def parse_sheet(data: dict | SheetInfo, path: Path | None = None) -> Sheet:
    """Check a sheet (parsed sheet.json or SheetInfo) for capture: known dictionary, markers present, ids unique."""
    where = f"sheet {path}" if path else "sheet"
    info = SheetInfo.parse(data, where)
    dictionary = info.aruco_dictionary
    blocks = []
    index: dict[int, int] = {}
    for i, b in enumerate(info.blocks):
        for m in b.markers:
            if m.id in index:
                raise UserError(f"{where}: marker id {m.id} is used twice")
            index[m.id] = i
        blocks.append(b)
    page = info.page_size_mm
    if dictionary not in DICTIONARIES:
        raise UserError(f"{where}: unsupported ArUco dictionary {dictionary!r}")
    if not blocks:
        raise UserError(f"{where} lists no blocks")
    if not index:
        raise UserError(f"{where} has no markers (printed with --no-markers?): capture needs them to find blocks")
    return Sheet(page, dictionary, tuple(blocks), path, index)
