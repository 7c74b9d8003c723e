"""Where frames come from: a camera index, a video file, a folder or glob of photos, a network
stream (MJPEG over HTTP, RTSP: anything OpenCV's FFmpeg backend opens) or the screen (mss).
Every failure to open is one UserError line within seconds, never a hang.
"""
from __future__ import annotations

import glob as globlib
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from common.errors import UserError
from common.files import IMAGE_SUFFIXES, read_image_bgr

OPEN_TIMEOUT_MS = 5000  # URLs: give up opening / reading a stream after this long
RECONNECT_DELAY_S = 1.0  # streams: pause before each attempt to reopen a lost stream
HEALTHY_S = 5.0  # streams: a reopened stream must give frames this long before its failures are forgiven


@dataclass
class Frame:
    index: int
    bgr: np.ndarray  # (H, W, 3) uint8, OpenCV's BGR order
    name: str = ""  # file name for photos, "" for video


@contextmanager
def quiet_opencv():
    """OpenCV and FFmpeg print WARN/ERROR lines of their own when a source does not open; the
    user should see only our one line. FFmpeg reads its level from the environment lazily."""
    import cv2.utils.logging as cvlog

    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    old = cvlog.getLogLevel()
    cvlog.setLogLevel(cvlog.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        cvlog.setLogLevel(old)


class FrameSource:
    """Iterate to get Frames; `fps` is the source's own rate when known (video, camera)."""

    kind = "source"
    fps: float | None = None
    live = False  # a camera or stream: no end, and frames should not queue up
    frame_count: int | None = None  # known for videos and photos (for the progress bar)

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class VideoSource(FrameSource):
    """A cv2.VideoCapture that has been checked to deliver a first frame."""

    def __init__(self, cap: cv2.VideoCapture, first: np.ndarray, kind: str, name: str, live: bool):
        self.cap, self._first, self.kind, self.name, self.live = cap, first, kind, name, live
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and np.isfinite(fps) and 0 < fps < 1000 else None
        count = cap.get(cv2.CAP_PROP_FRAME_COUNT) if not live else 0
        self.frame_count = int(count) if count and np.isfinite(count) and count > 0 else None

    def __iter__(self) -> Iterator[Frame]:
        i = 0
        if self._first is not None:
            frame, self._first = self._first, None
            yield Frame(0, frame)
            i = 1
        while True:
            ok, frame = self.cap.read()
            if not ok or frame is None:
                return
            yield Frame(i, _as_bgr(frame))
            i += 1

    def close(self) -> None:
        self.cap.release()


class ImageSource(FrameSource):
    """Photos, in name order; files OpenCV cannot read are skipped (and counted)."""

    kind = "images"

    def __init__(self, paths: list[Path], name: str):
        self.paths, self.name, self.skipped = paths, name, []
        self.frame_count = len(paths)

    def __iter__(self) -> Iterator[Frame]:
        i = 0
        for p in self.paths:
            try:
                bgr = read_image_bgr(p)
            except UserError:  # unreadable, or too large (common.files.MAX_IMAGE_PIXELS)
                self.skipped.append(str(p))
                continue
            yield Frame(i, bgr, p.name)
            i += 1


def open_source(spec: str, reconnect: int = 0) -> FrameSource:
    """'0' -> camera 0; 'http://...', 'rtsp://...' -> stream (reopened up to `reconnect` times
    when lost); 'screen' or 'screen:X,Y,W,H' -> the primary screen or a region of it; a folder,
    glob or image file -> photos; any other file -> video (an OpenCV image pattern like
    frames/f_%03d.png also works)."""
    text = str(spec).strip()
    if not text:
        raise UserError("source is empty: give a camera index (0), a video, a folder, a glob, a URL or screen",
                        param="source")
    if text.isdigit():
        from capture.settings import MAX_CAMERA_INDEX

        if int(text) > MAX_CAMERA_INDEX:
            raise UserError(f"camera index {text} is out of range (0 to {MAX_CAMERA_INDEX}): give a camera index, "
                            f"a video, a folder, a glob or a URL")
        return _open_camera(int(text))
    if "://" in text:
        return _open_url(text, reconnect)
    if text == "screen" or text.startswith("screen:"):
        from capture.screen import open_screen  # mss only for the screen

        return open_screen(text)
    return _open_path(text)


def _open_path(text: str) -> FrameSource:
    """A source named by a path: a folder, an image, a video, a glob, an OpenCV image pattern or a
    camera's device file. Anything else on disk (a pipe, a socket) is refused: reading it could hang."""
    path = Path(text).expanduser()
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not files:
            raise UserError(f"no images (png, jpg, ...) in folder {path}")
        return _checked_images(files, text)
    if path.is_file():
        if path.suffix.lower() in IMAGE_SUFFIXES:
            return _checked_images([path], text)
        return _open_video(path)
    if any(c in text for c in "*?["):
        files = sorted(Path(p) for p in globlib.glob(str(path), recursive=True)
                       if Path(p).suffix.lower() in IMAGE_SUFFIXES and Path(p).is_file())
        if not files:
            raise UserError(f"no images match {text}")
        return _checked_images(files, text)
    if "%" in text and path.parent.is_dir():
        return _open_video(path, pattern=True)
    if path.exists() and str(path).startswith("/dev/video"):  # a camera's device file (Linux, V4L2)
        return _open_video(path)
    if path.exists():  # a named pipe, socket or other device: reading it could wait forever
        from common.inputs import check_input_file

        check_input_file(path, "source")
    raise UserError(f"source not found: {text} (give a camera index, a video, a folder, a glob or a URL)")


def _checked_images(files: list[Path], name: str) -> ImageSource:
    if len(files) == 1:
        read_image_bgr(files[0])  # a single photo that cannot be read is an error, not a skip
    return ImageSource(files, name)


def _first_frame(cap: cv2.VideoCapture) -> np.ndarray | None:
    ok, frame = cap.read()
    return _as_bgr(frame) if ok and frame is not None else None


def _as_bgr(frame: np.ndarray) -> np.ndarray:
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    return frame


def _open_camera(index: int) -> VideoSource:
    with quiet_opencv():
        cap = cv2.VideoCapture(index)
        if not cap.isOpened():
            cap.release()
            raise UserError(f"cannot open camera {index} (no such camera, or it is in use): try another index, "
                            f"or source=FILE|URL|screen (a video or photos, a stream, the screen)", param="source")
        # A camera that opens but hangs on read would block forever without this (where supported).
        cap.set(cv2.CAP_PROP_READ_TIMEOUT_MSEC, OPEN_TIMEOUT_MS)
        first = _first_frame(cap)
    if first is None:
        cap.release()
        raise UserError(f"camera {index} opened but gives no frames: try another index, or source=FILE|URL|screen",
                        param="source")
    return VideoSource(cap, first, "camera", f"camera {index}", live=True)


def _url_capture(url: str) -> cv2.VideoCapture:
    """Every network wait (connect, probe, each read) is bounded by OPEN_TIMEOUT_MS."""
    if url.lower().startswith("rtsp://"):
        # RTSP over UDP loses packets (grey smears) and stalls behind NAT; TCP is what phone apps
        # serve reliably. A user's own OPENCV_FFMPEG_CAPTURE_OPTIONS wins.
        os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp")
    params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, OPEN_TIMEOUT_MS, cv2.CAP_PROP_READ_TIMEOUT_MSEC, OPEN_TIMEOUT_MS]
    return cv2.VideoCapture(url, cv2.CAP_FFMPEG, params)


def _open_url(url: str, reconnect: int = 0) -> StreamSource:
    src = _open_capture(lambda: _url_capture(url), "stream", url, live=True,
                        cannot=f"cannot open stream {url} (unreachable, or not a video stream OpenCV reads)",
                        empty=f"stream {url} opened but gives no frames")
    return StreamSource(url, src.cap, src._first, reconnect, src.fps)


def _open_video(path: Path, pattern: bool = False) -> VideoSource:
    return _open_capture(lambda: cv2.VideoCapture(str(path)), "images" if pattern else "video", str(path),
                         live=False, cannot=f"cannot read video {path} (not a video, or a codec OpenCV lacks)",
                         empty=f"video {path} has no readable frames")


def _open_capture(make, kind: str, name: str, live: bool, cannot: str, empty: str) -> VideoSource:
    """Open with OpenCV's own chatter silenced; a source that will not open or gives no first
    frame is one UserError line."""
    with quiet_opencv():
        cap = make()
        if not cap.isOpened():
            cap.release()
            raise UserError(cannot)
        first = _first_frame(cap)
    if first is None:
        cap.release()
        raise UserError(empty)
    return VideoSource(cap, first, kind, name, live=live)


class StreamSource(FrameSource):
    """A network stream, read by its own thread that keeps only the newest frame: a loop slower
    than the stream skips frames (counted as dropped) instead of falling further and further
    behind the scene. A lost stream (read error, read timeout, server gone) is reopened up to
    `reconnect` times in a row before the session ends; a frame read resets the count.

    received = classified + dropped once the stream has ended (frames still in flight when the
    loop stops early, e.g. --max-frames, are neither).
    """

    kind = "stream"
    live = True

    def __init__(self, url: str, cap: cv2.VideoCapture, first: np.ndarray, reconnect: int, fps: float | None):
        self.name, self.url, self.reconnect, self.fps = url, url, int(reconnect), fps
        self.received, self.dropped, self.attempts, self.reconnected = 1, 0, 0, 0
        self.end_reason: str | None = None
        self._cond = threading.Condition()
        self._latest: tuple[int, np.ndarray] | None = (0, first)
        self._done = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, args=(cap,), name="capture-stream", daemon=True)
        self._thread.start()

    def _read(self, cap: cv2.VideoCapture | None) -> None:
        with quiet_opencv():  # FFmpeg's own lines about a lost stream: the summary says it
            self._read_loop(cap)

    def _read_loop(self, cap: cv2.VideoCapture | None) -> None:
        failures = 0
        up_since = time.monotonic()  # when this connection gave its first frame
        try:
            while not self._stop.is_set():
                ok, frame = cap.read() if cap is not None else (False, None)
                if ok and frame is not None:
                    # a connection counts as recovered only once it has run a while: a server whose
                    # every connection gives a few frames and then garbage was reopened forever
                    if up_since is None:
                        up_since = time.monotonic()
                    elif time.monotonic() - up_since >= HEALTHY_S:
                        failures = 0
                    self._offer(frame)
                    continue
                if cap is not None:
                    cap.release()
                    cap = None
                if failures >= self.reconnect:
                    self.end_reason = "stream ended" if not self.reconnect else "stream lost"
                    return
                failures += 1
                cap, up_since = self._reopen(), None  # stopped while waiting: the loop's test ends it
        finally:
            if cap is not None:
                cap.release()
            with self._cond:
                self._done = True
                self._cond.notify_all()

    def _offer(self, frame: np.ndarray) -> None:
        """Hand the newest frame to the loop; one it has not taken yet is dropped, not queued."""
        with self._cond:
            if self._latest is not None:
                self.dropped += 1
            self._latest = (self.received, frame)
            self.received += 1
            self._cond.notify_all()

    def _reopen(self) -> cv2.VideoCapture | None:
        """One reconnect attempt after RECONNECT_DELAY_S: the new capture, or None (stopped while
        waiting, or the server still refuses)."""
        if self._stop.wait(RECONNECT_DELAY_S):
            return None
        self.attempts += 1
        cap = _url_capture(self.url)
        if cap.isOpened():
            self.reconnected += 1
            return cap
        cap.release()
        return None

    def __iter__(self) -> Iterator[Frame]:
        while True:
            with self._cond:
                while self._latest is None and not self._done and not self._stop.is_set():
                    self._cond.wait(0.2)
                if self._latest is None:
                    return
                (i, frame), self._latest = self._latest, None
            yield Frame(i, _as_bgr(frame))

    def summary_extra(self) -> dict:
        return {"received_frames": self.received, "dropped_frames": self.dropped,
                "reconnect_attempts": self.attempts, "reconnected": self.reconnected}

    def close(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        # a read in progress ends within its timeout; the thread releases the capture itself
        self._thread.join(timeout=OPEN_TIMEOUT_MS / 1000 + 1)
