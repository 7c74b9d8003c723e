"""The screen as a frame source (mss): the primary monitor or a region of it, for classifying what
another program shows. Split from capture/sources.py: only `--source screen...` loads it, and mss
with it."""
from __future__ import annotations

from typing import Iterator

import cv2
import numpy as np

from common.errors import UserError
from capture.sources import Frame, FrameSource


class ScreenSource(FrameSource):
    """The primary screen or a region of it, grabbed with mss as fast as the loop takes frames."""

    kind = "screen"
    live = True

    def __init__(self, region: dict, name: str):
        self.region, self.name = region, name
        self.end_reason: str | None = None

    def __iter__(self) -> Iterator[Frame]:
        import mss

        # mss holds an X connection per instance, and the grabbing thread (the prefetch thread)
        # must be the one that opened it.
        try:
            with _mss() as grabber:
                i = 0
                while True:
                    shot = grabber.grab(self.region)
                    yield Frame(i, cv2.cvtColor(np.asarray(shot), cv2.COLOR_BGRA2BGR))
                    i += 1
        except mss.ScreenShotError:  # the display went away mid-session: end like a stream does
            self.end_reason = "screen lost"


def _mss():
    import mss

    return (getattr(mss, "MSS", None) or mss.mss)()


def open_screen(text: str) -> ScreenSource:
    """'screen' -> the primary monitor; 'screen:X,Y,W,H' -> that region of it (pixels, from its
    top-left corner). Checked by grabbing once, so a missing display is an error here."""
    import mss

    region = None
    if text != "screen":
        parts = text[len("screen:"):].split(",")
        try:
            x, y, w, h = (int(v) for v in parts)
        except ValueError:
            raise UserError(f"source {text}: give screen:X,Y,W,H as four whole numbers of pixels",
                            param="source") from None
        if w < 1 or h < 1:
            raise UserError(f"source {text}: width and height must be at least 1 pixel", param="source")
        region = (x, y, w, h)
    try:
        with _mss() as grabber:
            monitors = grabber.monitors[1:] or grabber.monitors
            screen = next((m for m in monitors if m.get("is_primary")), monitors[0])
            W, H = int(screen["width"]), int(screen["height"])
            if region is None:
                box = {k: int(screen[k]) for k in ("left", "top", "width", "height")}
            else:
                x, y, w, h = region
                if x < 0 or y < 0 or x + w > W or y + h > H:
                    raise UserError(f"source {text}: region is outside the screen ({W}x{H} pixels)", param="source")
                box = {"left": int(screen["left"]) + x, "top": int(screen["top"]) + y, "width": w, "height": h}
            grabber.grab(box)
    except mss.ScreenShotError as e:
        reason = " ".join(str(e).split()) or "no display"
        raise UserError(f"cannot grab the screen: {reason}") from None
    name = "screen" if region is None else f"screen:{','.join(map(str, region))}"
    return ScreenSource(box, name)
