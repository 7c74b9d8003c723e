"""`blocks calibrate`: the printer-to-camera colour map fitted from a photo or video of the
calibration sheet (capture.calibrate)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from blocks import checks
from blocks.commands import shared
if TYPE_CHECKING:  # the records (pydantic models) load when a pipeline runs, not for --help
    from common.records import ColorMapRecord


@dataclass
class CalibrateRun:
    """`blocks calibrate`: a photo/video of the printed calibration sheet -> colormap.json."""

    source: str
    sheet: Path
    out: Path = Path("colormap.json")
    max_frames: int = 60  # at most MAX_FRAMES
    step: int = 1  # at most MAX_STEP
    overwrite: bool = False  # replace an existing colour map


MAX_FRAMES = 100_000  # max_frames: frames averaged; an hour of 30 fps video, far past what the fit needs
MAX_STEP = 10 ** 6  # step: every STEP-th frame; more skips past the end of any video


def run_calibrate(run: CalibrateRun) -> ColorMapRecord:
    from capture.calibrate import CalibrateSettings, calibrate, check_out
    from common.files import check_new_outputs, check_output_file

    check_out(run.out)
    checks.whole(run.max_frames, "max_frames", 1, MAX_FRAMES)
    checks.whole(run.step, "step", 1, MAX_STEP)
    from common.inputs import check_not_input
    from common.records import sheet_json, sidecar_path

    check_not_input([run.out], shared.input_files(run.sheet, sheet_json(run.sheet), sidecar_path(run.sheet),
                                           run.source if shared.is_path(run.source) else None))
    check_output_file(run.out)
    check_new_outputs([run.out], run.overwrite)
    cmap = calibrate(run.source, run.sheet, CalibrateSettings(max_frames=run.max_frames, step=run.step))
    record = cmap.to_record()
    record.write(run.out)
    return record
