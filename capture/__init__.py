"""Checking printed blocks with a camera: frame sources, ArUco rectification, the verification
loop with overlay, log and summary, and a print-and-film simulator for testing without a camera."""
from capture.loop import CaptureSettings, FrameResult, run_capture
from capture.sheet import load_sheet, parse_sheet
from capture.sources import Frame, open_source
from capture.views import SlidingSettings

__all__ = ["CaptureSettings", "FrameResult", "run_capture", "load_sheet", "parse_sheet",
           "Frame", "open_source", "SlidingSettings"]
