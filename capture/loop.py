"""The verification loop: frames in, one batched forward pass per frame (whole frame + every
found block + sliding windows), a verdict per frame, a log line per frame, a summary at the end.

Stops at the end of the source, --max-frames, --duration, q/Esc in the window, or Ctrl-C; every
way out ends the same way: files closed and renamed into place, summary returned.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np
import torch

from common.errors import UserError
from common.goal import Goal
from common.records import CaptureSummary
from common.interrupts import interrupted
from capture.display import Window
from capture.markers import Detections, FoundBlock, detect_markers, locate_blocks, make_detector, rectify_block
from capture.outputs import LogFile, VideoOut
from capture.prefetch import prefetch
from capture.sources import Frame
from capture.stats import Tally
from capture.settings import CaptureSettings, SlidingSettings  # noqa: F401 (importable from here)
from capture.views import classify, frame_view, resize_view, sliding_boxes, to_batch

@dataclass
class Prepared:
    """Everything done to a frame before the model sees it (runs in the prefetch thread)."""

    detections: Detections | None
    found: list[FoundBlock]
    boxes: list[tuple[int, int, int, int]]
    views: list[np.ndarray]  # (S, S, 3) uint8 BGR: whole frame, blocks, windows (that order)


@dataclass
class FrameResult:
    index: int
    time_s: float
    top1: str
    top1_prob: float
    target_prob: float  # the highest over all views
    hit: bool  # the target won in at least one view
    frame_hit: bool  # ... in the whole frame
    markers: list[int]
    blocks: list[dict]
    window_hits: list[bool] = field(default_factory=list)
    target_point: tuple[float, float] | None = None  # mean centre of the winning windows
    top5: list[tuple[str, float]] = field(default_factory=list)  # the whole frame's
    name: str = ""
    frame_target_prob: float = 0.0  # the whole frame's own
    hit_from: list[str] = field(default_factory=list)  # the views that won: "frame", "block K", "window"
    best_view: str = "frame"  # the view target_prob comes from

    def log_record(self) -> dict:
        """One line of --log. top1, top1_prob and frame_target_prob are the whole frame's;
        target_prob is the highest of all views (best_view says which); hit_from lists the views
        that won."""
        rec = {"index": self.index, "time": round(self.time_s, 4), "top1": self.top1,
               "top1_prob": round(self.top1_prob, 6), "target_prob": round(self.target_prob, 6),
               "hit": self.hit, "frame_hit": self.frame_hit, "markers": self.markers, "blocks": self.blocks,
               "frame_target_prob": round(self.frame_target_prob, 6), "best_view": self.best_view,
               "hit_from": self.hit_from}
        if self.window_hits:
            rec["windows"] = len(self.window_hits)
            rec["window_hits"] = int(sum(self.window_hits))
            rec["target_point"] = self.target_point
        if self.name:
            rec["file"] = self.name
        return rec


class Preparer:
    """Frame -> Prepared. Holds the ArUco detector and the sliding-window grid for a frame size."""

    def __init__(self, settings: CaptureSettings, side: int):
        self.s, self.side = settings, side
        self.detector = make_detector(settings.sheet.aruco_dictionary) if settings.sheet else None
        self._boxes: dict[tuple[int, int], list] = {}

    def __call__(self, frame: Frame) -> Prepared:
        bgr, side = frame.bgr, self.side
        views = [frame_view(bgr, side, self.s.reduce)]
        det, found = None, []
        if self.detector is not None:
            det = detect_markers(bgr, self.detector, bgr=True)
            found = locate_blocks(self.s.sheet, det, self.s.min_markers)
            views += [rectify_block(bgr, self.s.sheet, fb, side, self.s.block_margin) for fb in found]
        boxes = []
        if self.s.sliding is not None:
            key = bgr.shape[:2]
            if key not in self._boxes:
                self._boxes[key] = sliding_boxes(key[0], key[1], self.s.sliding)
            boxes = self._boxes[key]
            views += [resize_view(bgr[y:y + h, x:x + w], side) for x, y, w, h in boxes]
        return Prepared(det, found, boxes, views)


def block_size_px(fb: FoundBlock) -> float:
    """How many camera pixels across the block appears: the side of a square of its area.
    Small blocks are upsampled from few pixels before the model sees them; the log says so."""
    import cv2

    return round(float(np.sqrt(max(cv2.contourArea(fb.outline), 0.0))), 1)


def verdict(probs: torch.Tensor, prepared: Prepared, labels: list[str], target: int, threshold: float,
            index: int, time_s: float, name: str = "") -> FrameResult:
    """probs: (B, C) for the views in `prepared` (whole frame first) -> the frame's FrameResult."""
    top_p, top_i = probs.max(dim=1)
    view_hits = Goal(target).hits(probs, threshold)  # a camera checks a targeted patch
    nb = len(prepared.found)
    blocks = []
    for k, fb in enumerate(prepared.found, start=1):
        blocks.append({"block": fb.index, "top1": labels[int(top_i[k])], "top1_prob": round(float(top_p[k]), 6),
                       "target_prob": round(float(probs[k, target]), 6), "hit": bool(view_hits[k]),
                       "markers_used": fb.markers_used, "size_px": block_size_px(fb)})
    window_hits = view_hits[1 + nb:].tolist()
    point = None
    if any(window_hits):
        centres = [(x + w / 2, y + h / 2) for (x, y, w, h), hit in zip(prepared.boxes, window_hits) if hit]
        point = tuple(float(v) for v in np.mean(centres, axis=0))
    k5 = min(5, probs.shape[1])
    p5, i5 = probs[0].topk(k5)
    det = prepared.detections
    view_names = ["frame", *(f"block {fb.index}" for fb in prepared.found), *(["window"] * len(window_hits))]
    hit_from = list(dict.fromkeys(v for v, hit in zip(view_names, view_hits.tolist()) if hit))
    return FrameResult(
        index=index, time_s=time_s, top1=labels[int(top_i[0])], top1_prob=float(top_p[0]),
        target_prob=float(probs[:, target].max()), hit=bool(view_hits.any()), frame_hit=bool(view_hits[0]),
        markers=sorted(int(i) for i in det.ids) if det is not None else [], blocks=blocks,
        window_hits=window_hits, target_point=point,
        top5=[(labels[int(i)], float(p)) for p, i in zip(p5, i5)], name=name,
        frame_target_prob=float(probs[0, target]), hit_from=hit_from,
        best_view=view_names[int(probs[:, target].argmax())])


def _open_window(factory: Callable[[], Window]) -> Window:
    import cv2

    try:
        return factory()
    except cv2.error:  # e.g. opencv-python-headless, or a display that refuses the window
        raise UserError("cannot open a window here (OpenCV has no GUI backend): use headless", "headless") from None


def run_capture(model, source, settings: CaptureSettings,
                on_frame: Callable[[FrameResult], None] | None = None,
                window_factory: Callable[[], Window] = Window) -> CaptureSummary:
    """Run the loop over `source` (a capture.sources.FrameSource, or any iterable of Frames) and
    return the summary (common.records.CaptureSummary). model: a blocks.models.Classifier (RGB in [0, 1], .labels, .input_size).
    """
    labels = list(model.labels)
    if settings.target is None or not 0 <= settings.target < len(labels):
        raise UserError(f"target index {settings.target} out of range for {len(labels)} classes")
    prepare = Preparer(settings, int(model.input_size))  # before any output is opened: it can refuse
    window = None if settings.headless else _open_window(window_factory)
    fps_hint = getattr(source, "fps", None) or 15.0
    video = VideoOut(settings.save_video, fps_hint) if settings.save_video else None
    log = LogFile(settings.log) if settings.log else None
    run = _Session(model, labels, settings, Tally(with_sheet=settings.sheet is not None), window, video, log, on_frame)
    stopped_by = "end of source"
    ok = False
    stream = _prepared_frames(source, prepare, settings.prefetch)
    run.start = time.monotonic()
    try:
        for frame, prepared in stream:
            if interrupted():  # a Ctrl-C that some library swallowed still ends the session
                raise KeyboardInterrupt
            now = time.monotonic() - run.start
            if settings.duration_s is not None and now >= settings.duration_s:
                stopped_by = "duration"
                break
            reason = run.take(frame, prepared, now)
            if reason:
                stopped_by = reason
                break
        ok = True
    except KeyboardInterrupt:
        stopped_by = "interrupted"
        ok = True
    finally:
        run.tally.elapsed_s = time.monotonic() - run.start
        _close_all(stream, source, window, video, log, keep=ok)
    return _summarise(run.tally, stopped_by, model, labels, source, settings)


@dataclass
class _Session:
    """What one run of the loop holds while frames flow: the model, the tally and the open
    outputs. take() is one frame's whole journey, so run_capture keeps only the ways out."""

    model: object
    labels: list[str]
    settings: CaptureSettings
    tally: Tally
    window: Window | None
    video: VideoOut | None
    log: LogFile | None
    on_frame: Callable[[FrameResult], None] | None
    start: float = 0.0
    recent: list[float] = field(default_factory=list)  # frame times for the overlay's FPS

    def __post_init__(self):
        self.device = next(iter(self.model.buffers()), torch.empty(0)).device  # where the batches go

    def take(self, frame: Frame, prepared: Prepared, now: float) -> str | None:
        """Classify, count, log, show and hand on one frame; why the session stops here, or None."""
        s, tally = self.settings, self.tally
        probs = classify(self.model, to_batch(prepared.views, self.device))
        result = verdict(probs, prepared, self.labels, s.target, s.threshold, tally.frames, now, frame.name)
        tally.add(result.hit, result.target_prob, result.frame_hit, bool(prepared.found),
                  any(b["hit"] for b in result.blocks),
                  max((b["size_px"] for b in result.blocks), default=None), result.frame_target_prob)
        tally.elapsed_s = time.monotonic() - self.start
        if self.log:
            self.log.write(result.log_record())
        if self.window is not None or self.video is not None:
            self.recent = (self.recent + [time.monotonic()])[-30:]
            if not _show(frame, result, prepared, self.labels, self.labels[s.target], self.recent, self.video,
                         self.window):
                return "quit"
        if self.on_frame:
            self.on_frame(result)
        if s.max_frames is not None and tally.frames >= s.max_frames:
            return "max frames"
        return None


def _prepared_frames(source, prepare: Preparer, ahead: bool) -> Iterator[tuple[Frame, Prepared]]:
    """(frame, its prepared views): prepared on a worker thread one frame ahead when `ahead`."""
    return prefetch(iter(source), prepare) if ahead else ((f, prepare(f)) for f in source)


def _show(frame: Frame, result, prepared: Prepared, labels, target_label: str, recent: list[float],
          video, window) -> bool:
    """Draw the overlay (FPS from the recent frame times), write it to the video and show it in the
    window; False when the window asks to quit."""
    fps = (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) > 1 and recent[-1] > recent[0] else None
    from capture.overlay import draw_overlay

    annotated = draw_overlay(frame.bgr, result, prepared, labels, target_label, fps)
    if video:
        video.write(annotated)
    return not (window is not None and not window.show(annotated))


def _close_all(stream, source, window, video, log, keep: bool) -> None:
    """Close what the loop opened; the video and the log are kept only when the session ended well."""
    if hasattr(stream, "close"):
        stream.close()
    if hasattr(source, "close"):
        source.close()
    if window is not None:
        window.close()
    try:
        if video:
            video.close(keep=keep)
    except BaseException:
        keep = False  # the session failed: its log goes with the video
        raise
    finally:
        if log:
            log.close(keep=keep)


def _summarise(tally: Tally, stopped_by: str, model, labels, source, settings: CaptureSettings) -> CaptureSummary:
    """The session's CaptureSummary: the tally, what was aimed at, why it stopped, and what the source adds."""
    if stopped_by == "end of source":  # a stream or screen says why it ended
        stopped_by = getattr(source, "end_reason", None) or stopped_by
    summary = tally.summary()
    summary.update({"target": Goal(settings.target, True, labels[settings.target]).to_json(),
                    "model": getattr(model, "name", ""), "stopped_by": stopped_by,
                    "sheet": str(settings.sheet_path) if settings.sheet and settings.sheet_path else None,
                    "source": getattr(source, "name", None)})
    skipped = getattr(source, "skipped", None)
    if skipped:
        summary["unreadable_files"] = skipped
    if hasattr(source, "summary_extra"):  # e.g. a stream's received and dropped frames, reconnects
        summary.update(source.summary_extra())
    return CaptureSummary.from_json(summary)
