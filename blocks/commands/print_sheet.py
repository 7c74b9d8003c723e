"""`blocks print`: patches laid out as a print-ready PDF with its sheet.json (printing/)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from blocks.commands import shared
from common.errors import UserError
if TYPE_CHECKING:  # the records (pydantic models) load when a pipeline runs, not for --help
    from common.records import SheetInfo


@dataclass
class PrintRun:
    """`blocks print`: patches -> out (a .pdf) + sheet.json (+ page PNGs with preview)."""

    patches: list[Path]
    out: Path
    settings: object = None  # printing.SheetSettings [default: SheetSettings()]
    preview: bool = False
    overwrite: bool = False  # replace an existing PDF, sheet.json and previews


def run_print(run: PrintRun) -> SheetInfo:
    from printing import SheetSettings, make_sheet, write_sheet
    from common.files import check_new_outputs
    from printing.sheet import check_sheet_out, sheet_outputs

    from common.inputs import check_not_input
    from printing.sheet import preview_paths, sidecar_path

    check_sheet_out(run.out, run.preview)
    patches = [Path(p) for p in run.patches]
    ins = shared.input_files(patches, [p.with_suffix(".json") for p in patches],
                             [p.parent / "patch.json" for p in patches])
    check_not_input([run.out, (sidecar_path(run.out), "the sheet.json written beside it")], ins)
    if run.preview:
        check_not_input([(p, "a page preview") for p in preview_paths(run.out, 4)], ins)
    check_new_outputs(sheet_outputs(run.out, run.preview), run.overwrite)
    try:
        sheet = make_sheet(run.patches, run.settings or SheetSettings())
    except UserError as e:
        if "not found" in str(e):  # a missing patch (checked after the settings): say where the patches are
            shared.check_patches_exist(run.patches)
        raise
    check_new_outputs(sheet_outputs(run.out, run.preview, sheet.info.pages), run.overwrite)  # every page's preview
    write_sheet(sheet, run.out, preview=run.preview)
    return sheet.info
