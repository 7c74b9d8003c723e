"""`blocks capture`: the live classification loop (capture.loop) over a camera, video, photos or
stream, with its checked settings and the files it keeps."""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from blocks import checks
from blocks.commands import shared
from blocks.commands.shared import no_progress
from capture.settings import MAX_DURATION_S, MAX_FRAMES, CaptureSettings, SlidingSettings
from common.errors import UserError
if TYPE_CHECKING:  # the records (pydantic models) load when a pipeline runs, not for --help
    from common.records import CaptureSummary


@dataclass
class CaptureRun:
    """`blocks capture`: classify a camera, video, photos or stream live. loop: the capture loop's own
    settings (capture.settings.CaptureSettings: sliding windows, threshold, log, video, limits, ...);
    run_capture fills its target, sheet and headless from target, sheet and headless here."""

    target: str  # a class name, index or word (the loop's target is its index, known once the model loads)
    source: str = "0"
    models: list = field(default_factory=shared.default_models)
    device: str = "auto"
    sheet: Path | None = None  # sheet.json (or the PDF beside it) from `blocks print`
    headless: bool = False  # False: a window where there is a display (the loop is told which)
    summary: Path | None = None
    reconnect: int = 0
    overwrite: bool = False  # replace an existing log, summary or video
    loop: CaptureSettings = field(default_factory=CaptureSettings)


def sliding_of(sliding: bool | None, window: float, stride: float) -> SlidingSettings | None:
    """The loop's sliding windows from the --sliding, --window and --stride flags (None: no sliding
    windows); window and stride are checked even without --sliding (a typo there is still a typo)."""
    windows = SlidingSettings(window, stride)
    check_sliding(windows)
    return windows if sliding else None


def check_sliding(windows: SlidingSettings) -> None:
    checks.number(windows.window, "window", 0, 1, lo_open=True)
    checks.number(windows.stride, "stride", checks.MIN_STRIDE, 1)  # a tinier step explodes the window grid


def check_capture(run: CaptureRun) -> None:
    from common.files import check_new_outputs, check_output_file

    loop = run.loop
    checks.whole(loop.max_frames, "max_frames", 1, MAX_FRAMES)
    checks.number(loop.duration_s, "duration_s", 0, MAX_DURATION_S, lo_open=True)
    if loop.sliding is not None:
        check_sliding(loop.sliding)
    if not 0 <= loop.threshold <= 1:
        raise UserError("threshold is a probability in [0, 1]", param="threshold")
    from transforms.held import REDUCTIONS

    if loop.reduce not in REDUCTIONS:
        raise UserError(f"reduce takes {' or '.join(REDUCTIONS)}, not {loop.reduce!r}", param="reduce")
    if not 0 <= run.reconnect <= 1000:
        raise UserError("reconnect is a number of attempts in [0, 1000]", param="reconnect")
    for path, what in ((loop.log, "log"), (run.summary, "summary")):
        if path is not None:
            check_output_file(path, what)
    if loop.save_video is not None:
        from capture.outputs import check_video_out

        check_video_out(loop.save_video)
    from common.inputs import check_not_input
    from common.records import sheet_json, sidecar_path

    ins = shared.input_files(run.source if shared.is_path(run.source) else None, shared.model_files(run.models),
                      *([run.sheet, sheet_json(run.sheet), sidecar_path(run.sheet)] if run.sheet is not None else []))
    for path, flag in ((loop.log, "log"), (run.summary, "summary"), (loop.save_video, "save_video")):
        check_not_input([path], ins, flag)
    outs = [(p, f) for p, f in ((loop.log, "log"), (run.summary, "summary"), (loop.save_video, "save_video"))
            if p is not None]
    for i, (a, fa) in enumerate(outs):
        for b, fb in outs[i + 1:]:
            if os.path.abspath(a) == os.path.abspath(b):
                raise UserError(f"{fa} and {fb} name the same file {a}: give each its own", param=(fa, fb))
    for path, flag in outs:
        check_new_outputs([path], run.overwrite, flag)



def run_capture(run: CaptureRun, progress=no_progress, on_headless: Callable[[], None] | None = None) -> CaptureSummary:
    """The capture loop until the source ends, q/Esc, a limit or Ctrl-C; the log, video and
    summary files are written (kept on Ctrl-C too: the summary's stopped_by says so)."""
    from capture.display import is_headless
    from capture.loop import run_capture as loop
    from capture.sheet import load_sheet, sheet_json
    from capture.sources import open_source
    from blocks.targets import resolve_target

    check_capture(run)
    layout = load_sheet(run.sheet) if run.sheet is not None else None
    frames = open_source(run.source, reconnect=run.reconnect)  # before the model: a missing camera fails in a second
    net = shared.load_model(run.models, run.device)
    goal = resolve_target(run.target, net.labels)
    settings = replace(run.loop, target=goal.index, sheet=layout,
                       sheet_path=sheet_json(run.sheet) if run.sheet is not None else None,
                       headless=is_headless(run.headless))
    if settings.headless and not run.headless and on_headless:
        on_headless()
    known = [n for n in (settings.max_frames, frames.frame_count) if n]
    with (progress("capture", min(known) if known else None) if settings.headless else no_progress("", 0)) as update:
        summary = loop(net, frames, settings, on_frame=update)
    if run.summary is not None:
        summary.write(run.summary)
    return summary


def capture_kept(run: CaptureRun, summary: CaptureSummary) -> list[str]:
    """The files an ended capture left (for the `wrote` and `interrupted: kept` lines)."""
    return [str(p) for p in (run.loop.log, run.loop.save_video) if p is not None and summary.frames]
