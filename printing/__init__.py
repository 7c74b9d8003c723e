"""Print-ready sheets of adversarial blocks: exact physical size, ArUco markers, sheet.json.

    from printing import make_sheet, SheetSettings, write_sheet, read_sheet, render_page
    sheet = make_sheet(["runs/hen/patch.png"], SheetSettings(size_mm=60, layout="cube"))
    write_sheet(sheet, "cube.pdf", preview=True)
    info = read_sheet("cube.json")            # SheetInfo: blocks, markers, in mm
    rgb = render_page("cube.pdf", 0, dpi=150)  # (H, W, 3) uint8
"""
from printing.layout import FACE_ORDER, PAGE_SIZES_MM
from printing.markers import detect_markers
from printing.patches import PatchImage, load_patch, patch_from_array
from printing.render import page_count, render_page, render_region
from printing.sheet import (BlockInfo, MarkerInfo, PrintedSheet, SheetInfo, SheetSettings, make_sheet, parse_tile,
                            preview_paths, read_sheet, sidecar_path, write_sheet)

__all__ = ["FACE_ORDER", "PAGE_SIZES_MM", "detect_markers", "PatchImage", "load_patch", "patch_from_array",
           "page_count", "render_page", "render_region", "BlockInfo", "MarkerInfo", "PrintedSheet", "SheetInfo", "SheetSettings",
           "make_sheet", "parse_tile", "preview_paths", "read_sheet", "sidecar_path", "write_sheet"]
