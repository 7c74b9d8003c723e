"""The running tally behind the end-of-session summary (printed, and written with --summary)."""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field


@dataclass
class Tally:
    """Feed one frame at a time; `summary()` can be called at any point (also after Ctrl-C)."""

    with_sheet: bool = False
    frames: int = 0
    hits: int = 0
    frame_hits: int = 0  # the whole frame alone
    found: int = 0  # frames where at least one sheet block was found
    block_hits: int = 0  # frames where a found block was classified as the target
    run: int = 0
    longest_run: int = 0
    target_probs: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0

    def add(self, hit: bool, target_prob: float, frame_hit: bool, found: bool, block_hit: bool) -> None:
        self.frames += 1
        self.hits += hit
        self.frame_hits += frame_hit
        self.found += found
        self.block_hits += block_hit
        self.run = self.run + 1 if hit else 0
        self.longest_run = max(self.longest_run, self.run)
        self.target_probs.append(float(target_prob))

    def summary(self) -> dict:
        n = self.frames
        probs = self.target_probs
        return {
            "frames": n,
            "hit_rate": self.hits / n if n else 0.0,
            "mean_target_prob": statistics.fmean(probs) if probs else 0.0,
            "median_target_prob": statistics.median(probs) if probs else 0.0,
            "longest_hit_run": self.longest_run,
            "found_rate": (self.found / n if n else 0.0) if self.with_sheet else None,
            "fps": n / self.elapsed_s if self.elapsed_s > 0 else 0.0,
            "frame_hit_rate": self.frame_hits / n if n else 0.0,
            # share of frames with a found block in which a block was read as the target
            "block_hit_rate": (self.block_hits / self.found if self.found else 0.0) if self.with_sheet else None,
            "duration_s": self.elapsed_s,
        }
