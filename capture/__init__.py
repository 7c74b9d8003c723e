"""Checking printed blocks with a camera: frame sources, ArUco rectification, the verification
loop with overlay, log and summary, and a print-and-film simulator for testing without a camera.

Imported on first use: capture.settings (no torch) is read by the CLI before torch is imported."""
from common.lazy import lazy

_LAZY = {"CaptureSettings": "capture.settings", "SlidingSettings": "capture.settings",
         "FrameResult": "capture.loop", "run_capture": "capture.loop", "load_sheet": "capture.sheet",
         "parse_sheet": "capture.sheet", "Frame": "capture.sources", "open_source": "capture.sources"}

__all__ = list(_LAZY)


__getattr__ = lazy(__name__, _LAZY)
