"""The verification loop: frames in, one batched forward pass per frame (whole frame + every
found block + sliding windows), a verdict per frame, a log line per frame, a summary at the end.

Stops at the end of the source, --max-frames, --duration, q/Esc in the window, or Ctrl-C; every
way out ends the same way: files closed and renamed into place, summary returned.
"""
from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from common.errors import UserError
from common.goal import Goal
from common.records import CaptureSummary
from common.files import _umask, json_text
from common.interrupts import interrupted, writing
from capture.display import Window
from capture.markers import Detections, FoundBlock, detect_markers, locate_blocks, make_detector, rectify_block
from capture.prefetch import prefetch
from capture.sources import Frame
from capture.stats import Tally
from capture.settings import CaptureSettings, SlidingSettings  # noqa: F401 (importable from here)
from capture.views import classify, frame_view, resize_view, sliding_boxes, to_batch

VIDEO_FOURCC = {".mp4": "mp4v", ".avi": "MJPG", ".mkv": "FFV1"}


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


class _LogFile:
    """frames.jsonl written to a temporary file and renamed into place when the session ends."""

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, self.tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        except OSError as e:
            raise UserError(f"cannot write log {self.path}: {e.strerror or e}") from None
        self.f = os.fdopen(fd, "w", encoding="utf-8")

    def write(self, record: dict) -> None:
        try:
            self.f.write(json_text(record, indent=None) + "\n")
        except OSError as e:  # disk full mid-session: one line, and the partial log is removed
            raise UserError(f"cannot write log {self.path}: {e.strerror or e}") from None

    def close(self, keep: bool) -> None:
        try:
            self.f.close()
            if keep:
                os.chmod(self.tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs are ordinary files
                with writing():
                    os.replace(self.tmp, self.path)
        except OSError as e:
            keep = False
            raise UserError(f"cannot write log {self.path}: {e.strerror or e}") from None
        finally:
            if not keep:
                Path(self.tmp).unlink(missing_ok=True)


def check_video_out(path: Path) -> Path:
    """Before the session: a known video suffix, and a file that can be written."""
    from common.files import check_output_file

    if Path(path).suffix.lower() not in VIDEO_FOURCC:
        raise UserError(f"video output {path}: use .mp4 (mp4v), .avi (MJPG) or .mkv (FFV1)")
    return check_output_file(path, "video")


class VideoOut:
    """cv2.VideoWriter that writes to a hidden temporary name (same suffix, so the same container)
    and is renamed into place on close, once read back whole (check_video). Opened lazily: the
    frame size comes with the first frame."""

    def __init__(self, path: Path, fps: float):
        import cv2

        self.cv2 = cv2
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in VIDEO_FOURCC:
            raise UserError(f"video output {self.path}: use .mp4 (mp4v), .avi (MJPG) or .mkv (FFV1)")
        if not self.path.parent.exists():
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise UserError(f"cannot write video {self.path}: {e.strerror or e}") from None
        if not os.access(self.path.parent, os.W_OK):
            raise UserError(f"cannot write video {self.path}: folder is not writable")
        self.tmp = self.path.with_name(f".{self.path.stem}.part{suffix}")
        self.fourcc = cv2.VideoWriter_fourcc(*VIDEO_FOURCC[suffix])
        self.fps = float(fps)
        self.writer = None
        self.frames = 0

    def write(self, bgr: np.ndarray) -> None:
        if self.writer is None:
            h, w = bgr.shape[:2]
            self.size = (w, h)
            self.writer = self.cv2.VideoWriter(str(self.tmp), self.fourcc, self.fps, (w, h))
            if not self.writer.isOpened():
                raise UserError(f"cannot write video {self.path} (OpenCV could not open a {self.path.suffix} writer)")
        if (bgr.shape[1], bgr.shape[0]) != self.size:  # photos of mixed sizes
            bgr = self.cv2.resize(bgr, self.size, interpolation=self.cv2.INTER_AREA)
        self.writer.write(bgr)
        self.frames += 1

    def close(self, keep: bool = True) -> None:
        """Release the writer; keep: check the clip and put it in place, else (or if the check
        fails: a UserError) remove it, so no truncated video is ever left under its name."""
        if self.writer is not None:
            self.writer.release()
        try:
            if keep and self.frames:
                why = check_video(self.tmp, self.frames)
                if why:
                    raise UserError(f"cannot write video {self.path}: {why} (a full disk, or a codec that failed); "
                                    f"nothing was kept")
                with writing():
                    os.replace(self.tmp, self.path)
        finally:
            self.tmp.unlink(missing_ok=True)


def check_video(path: Path, frames: int) -> str | None:
    """Why the video file at path is not a whole clip of `frames` frames, or None when it is.

    OpenCV's VideoWriter reports no write error (a full disk gives a warning per frame, exit 0 and
    a truncated file no player opens), so the file is read back: it must open, and its first and
    last frames must decode (a cut-off file ends early)."""
    import cv2

    from common.files import quiet_stderr

    try:
        if os.path.getsize(path) == 0:
            return "the file written is empty"
    except OSError:
        return "no file was written"
    with quiet_stderr():  # FFmpeg prints its own lines for a damaged file ("moov atom not found")
        cap = cv2.VideoCapture(str(path))
        try:
            if not cap.isOpened():
                return "the file written does not open as a video"
            if not cap.read()[0]:
                return "its first frame does not decode"
            if frames > 1:
                cap.set(cv2.CAP_PROP_POS_FRAMES, frames - 1)
                if not cap.read()[0]:
                    return f"it holds fewer than the {frames} frames written"
        finally:
            cap.release()
    return None


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
    if not 0 <= settings.target < len(labels):
        raise UserError(f"target index {settings.target} out of range for {len(labels)} classes")
    device = next(iter(model.buffers()), torch.empty(0)).device
    side = int(model.input_size)
    prepare = Preparer(settings, side)
    tally = Tally(with_sheet=settings.sheet is not None)
    window = None if settings.headless else _open_window(window_factory)
    fps_hint = getattr(source, "fps", None) or 15.0
    video = VideoOut(settings.save_video, fps_hint) if settings.save_video else None
    log = _LogFile(settings.log) if settings.log else None
    draw = window is not None or video is not None
    stopped_by = "end of source"
    ok = False
    stream = _prepared_frames(source, prepare, settings.prefetch)
    start = time.monotonic()
    recent = []  # frame times for the overlay's FPS
    try:
        for frame, prepared in stream:
            if interrupted():  # a Ctrl-C that some library swallowed still ends the session
                raise KeyboardInterrupt
            now = time.monotonic() - start
            if settings.duration_s is not None and now >= settings.duration_s:
                stopped_by = "duration"
                break
            probs = classify(model, to_batch(prepared.views, device))
            result = verdict(probs, prepared, labels, settings.target, settings.threshold,
                             tally.frames, now, frame.name)
            tally.add(result.hit, result.target_prob, result.frame_hit, bool(prepared.found),
                      any(b["hit"] for b in result.blocks),
                      max((b["size_px"] for b in result.blocks), default=None), result.frame_target_prob)
            tally.elapsed_s = time.monotonic() - start
            if log:
                log.write(result.log_record())
            if draw:
                recent = (recent + [time.monotonic()])[-30:]
                if not _show(frame, result, prepared, labels, labels[settings.target], recent, video, window):
                    stopped_by = "quit"
                    break
            if on_frame:
                on_frame(result)
            if settings.max_frames is not None and tally.frames >= settings.max_frames:
                stopped_by = "max frames"
                break
        ok = True
    except KeyboardInterrupt:
        stopped_by = "interrupted"
        ok = True
    finally:
        tally.elapsed_s = time.monotonic() - start
        _close_all(stream, source, window, video, log, keep=ok)
    return _summarise(tally, stopped_by, model, labels, source, settings)


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
