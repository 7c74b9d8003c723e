"""Reading ahead: the next frames are decoded (and prepared) in a background thread while the
caller runs the model. Split from capture/sources.py: any frame iterator can be read ahead, so
this is the loop's tool, not a source."""
from __future__ import annotations

import queue
import threading
from typing import Callable, Iterator

from capture.sources import Frame

_END = object()


def prefetch(frames: Iterator[Frame], prepare: Callable[[Frame], object] | None = None,
             depth: int = 2) -> Iterator[tuple[Frame, object]]:
    """Decode (and `prepare`, e.g. marker detection) the next frames in a background thread while
    the caller runs the model: OpenCV releases the GIL, so this hides most of the per-frame cost.

    Yields (frame, prepare(frame) or None). Errors in the thread are raised in the caller.
    Closing the generator (break, Ctrl-C) stops the thread.
    """
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    thread = threading.Thread(target=_work, args=(frames, prepare, q, stop), name="capture-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=2.0)


def _put(q: queue.Queue, stop: threading.Event, item) -> bool:
    """Queue item, waiting for room; False once the caller has stopped (so the thread can end
    instead of blocking on a queue nobody reads)."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _work(frames: Iterator[Frame], prepare, q: queue.Queue, stop: threading.Event) -> None:
    """The thread: each frame with its preparation, then _END, or the error that stopped it."""
    try:
        for frame in frames:
            if not _put(q, stop, (frame, prepare(frame) if prepare else None)):
                return
        _put(q, stop, _END)
    except BaseException as e:  # handed to the caller, which re-raises it
        _put(q, stop, e)
