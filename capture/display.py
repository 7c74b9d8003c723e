"""The live window, and the decision whether there can be one.

With no display, OpenCV's Qt backend can abort the whole process on the first window call (and
the headless wheel raises), so `is_headless` is decided before any cv2.imshow/namedWindow.
"""
from __future__ import annotations

import os
import sys

QUIT_KEYS = {ord("q"), ord("Q"), 27}  # q or Esc


def is_headless(requested: bool, environ: dict | None = None, platform: str | None = None) -> bool:
    """True when no window may be opened: asked for, or Linux/BSD with neither X11 nor Wayland."""
    if requested:
        return True
    environ = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    if platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        return not (environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"))
    return False  # macOS and Windows always have a window system


class Window:
    """One named OpenCV window. show() returns False once the user asked to quit."""

    def __init__(self, title: str = "blocks capture"):
        import cv2

        self.cv2 = cv2
        self.title = title
        cv2.namedWindow(title, cv2.WINDOW_NORMAL)

    def show(self, bgr) -> bool:
        cv2 = self.cv2
        cv2.imshow(self.title, bgr)
        key = cv2.waitKey(1) & 0xFF
        if key in QUIT_KEYS:
            return False
        try:  # the window's close button
            if cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
                return False
        except cv2.error:
            return False
        return True

    def close(self) -> None:
        try:
            self.cv2.destroyWindow(self.title)
            self.cv2.waitKey(1)
        except self.cv2.error:
            pass
