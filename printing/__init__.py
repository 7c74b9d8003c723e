"""Print-ready sheets of adversarial blocks: exact physical size, ArUco markers, sheet.json.

    from printing import make_sheet, SheetSettings, write_sheet, read_sheet, render_page
    sheet = make_sheet(["runs/hen/patch.png"], SheetSettings(size_mm=60, layout="cube"))
    write_sheet(sheet, "cube.pdf", preview=True)
    info = read_sheet("cube.json")            # SheetInfo: blocks, markers, in mm
    rgb = render_page("cube.pdf", 0, dpi=150)  # (H, W, 3) uint8

Imported on first use: printing.settings (no numpy, no records) is read by the CLI for --help
before the records' pydantic models are built.
"""
from common.lazy import lazy

_LAZY = {**dict.fromkeys(("FACE_ORDER", "PAGE_SIZES_MM"), "printing.layout"),
         **dict.fromkeys(("detect_markers",), "printing.markers"),
         **dict.fromkeys(("PatchImage", "load_patch", "patch_from_array"), "printing.patches"),
         **dict.fromkeys(("page_count", "render_page", "render_region"), "printing.render"),
         **dict.fromkeys(("SheetSettings", "parse_tile"), "printing.settings"),
         **dict.fromkeys(("BlockInfo", "MarkerInfo", "PrintedSheet", "SheetInfo", "make_sheet", "preview_paths",
                          "read_sheet", "sidecar_path", "write_sheet"), "printing.sheet")}
__getattr__ = lazy(__name__, _LAZY)

__all__ = ["FACE_ORDER", "PAGE_SIZES_MM", "detect_markers", "PatchImage", "load_patch", "patch_from_array",
           "page_count", "render_page", "render_region", "BlockInfo", "MarkerInfo", "PrintedSheet", "SheetInfo", "SheetSettings",
           "make_sheet", "parse_tile", "preview_paths", "read_sheet", "sidecar_path", "write_sheet"]
