"""The settings of the capture loop, in a module that imports no torch: `blocks capture` reads
its defaults from here before torch is imported."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from common.records import SheetInfo


MAX_FRAMES = 10 ** 9  # max_frames: over six months at 60 fps; more is a typo, not a limit
MAX_DURATION_S = 7 * 24 * 3600.0  # duration_s: a clock of at most a week
MAX_CAMERA_INDEX = 255  # a camera index: OpenCV backends count devices from 0 (Linux: /dev/video0..255)


@dataclass(frozen=True)
class SlidingSettings:
    """Square windows scanned over the frame, as in the original project's tracking loop.
    window and stride are fractions of the frame's shorter side."""

    window: float = 0.5
    stride: float = 0.25


@dataclass
class CaptureSettings:
    """The loop's settings: `blocks capture` holds them as CaptureRun.loop (the flags fill them) and
    fills target, sheet, sheet_path and headless itself once the model, sheet and display are known."""

    target: int | None = None  # class index: required (None only until the command resolves --target)
    sheet: SheetInfo | None = None  # checked by capture.sheet.load_sheet
    sheet_path: Path | None = None  # where it was read from (the summary names it)
    sliding: SlidingSettings | None = None
    headless: bool = True
    save_video: Path | None = None
    log: Path | None = None
    max_frames: int | None = None  # at most MAX_FRAMES
    duration_s: float | None = None  # at most MAX_DURATION_S
    threshold: float = 0.0  # a view is a hit when the target is top-1 with at least this probability
    min_markers: int = 2  # markers of a block that must be seen to locate it
    block_margin: float = 0.0  # border kept around a rectified block, as a fraction of its side
    prefetch: bool = True  # decode + detect the next frame in a thread while the model runs
    reduce: str = "squash"  # how the whole frame becomes the model's square: squash | crop (capture.views)
