"""Reading the sidecar `sheet.json` written by `blocks print`: where each block and each of its
ArUco markers sit on the page, in millimetres (origin at the page's top-left corner, x right, y down).
"""
from __future__ import annotations

from pathlib import Path

from common.errors import UserError
from common.records import SheetInfo, sheet_json, sidecar_path  # noqa: F401 (re-exported)


def load_sheet(path: str | Path) -> SheetInfo:
    """Read (common.records.SheetInfo.read) and check a sheet.json; any problem is one UserError line."""
    return parse_sheet(SheetInfo.read(path), sheet_json(path))


def parse_sheet(data: dict | SheetInfo, path: Path | None = None) -> SheetInfo:
    """Check a sheet (parsed sheet.json or SheetInfo) for capture: markers present, ids unique (the
    record checked the rest: a known dictionary, ids within it, blocks and markers on their pages).
    The sheet is the one record (common.records.SheetInfo); its marker_index and block_of_marker
    give the block each detected marker belongs to."""
    where = f"sheet {path}" if path else "sheet"
    info = SheetInfo.parse(data, where)
    ids: set[int] = set()
    for m in (m for b in info.blocks for m in b.markers):
        if m.id in ids:
            raise UserError(f"{where}: marker id {m.id} is used twice")
        ids.add(m.id)
    if not info.blocks:
        raise UserError(f"{where} lists no blocks")
    if not ids:
        raise UserError(f"{where} has no markers (printed with blocks print --no-markers?): "
                        "capture needs them to find blocks")
    return info
