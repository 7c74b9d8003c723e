"""The session's files: the per-frame log and the saved video, each written under a hidden
temporary name and renamed into place when the session ends (or removed: never a partial file
under the real name). Split from capture/loop.py; the simulator writes its video with VideoOut too.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from common.errors import UserError
from common.files import _umask, json_text
from common.interrupts import writing

VIDEO_FOURCC = {".mp4": "mp4v", ".avi": "MJPG", ".mkv": "FFV1"}


class LogFile:
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
