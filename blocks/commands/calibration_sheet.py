"""`blocks calibration-sheet`: the page of colour swatches and its calib.json (printing.calibration)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the records (pydantic models) load when a pipeline runs, not for --help
    from common.records import CalibrationInfo


@dataclass
class CalibrationRun:
    """`blocks calibration-sheet`: a page of colour swatches -> out (.pdf) + calib.json."""

    out: Path = Path("calib.pdf")
    settings: object = None  # printing.calibration.CalibrationSettings
    preview: bool = False
    overwrite: bool = False  # replace an existing PDF, calib.json and preview


def run_calibration_sheet(run: CalibrationRun) -> CalibrationInfo:
    from printing.calibration import CalibrationSettings, make_calibration_sheet, write_calibration_sheet
    from common.files import check_new_outputs
    from printing.sheet import check_sheet_out, sheet_outputs

    check_sheet_out(run.out, run.preview)
    check_new_outputs(sheet_outputs(run.out, run.preview), run.overwrite)
    sheet = make_calibration_sheet(run.settings or CalibrationSettings())
    check_new_outputs(sheet_outputs(run.out, run.preview, sheet.info.pages), run.overwrite)
    write_calibration_sheet(sheet, run.out, preview=run.preview)
    return sheet.info
