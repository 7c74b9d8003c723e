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
    frame_probs: list[float] = field(default_factory=list)  # the whole frame's target probability
    elapsed_s: float = 0.0
    block_px: list[tuple[float, bool]] = field(default_factory=list)  # (largest found block's side px, hit)

    def add(self, hit: bool, target_prob: float, frame_hit: bool, found: bool, block_hit: bool,
            block_px: float | None = None, frame_prob: float | None = None) -> None:
        if block_px is not None:
            self.block_px.append((float(block_px), bool(block_hit)))
        self.frames += 1
        self.hits += hit
        self.frame_hits += frame_hit
        self.found += found
        self.block_hits += block_hit
        self.run = self.run + 1 if hit else 0
        self.longest_run = max(self.longest_run, self.run)
        self.target_probs.append(float(target_prob))
        self.frame_probs.append(float(target_prob if frame_prob is None else frame_prob))

    def summary(self) -> dict:
        n = self.frames
        probs = self.target_probs
        # the whole frame first: it is what any classifier behind a camera sees; the blocks
        # (with a sheet) and windows are a diagnosis, and hit_rate counts a frame any view won
        return {
            "frames": n,
            "frame_hit_rate": self.frame_hits / n if n else 0.0,
            "frame_mean_target_prob": statistics.fmean(self.frame_probs) if self.frame_probs else 0.0,
            "hit_rate": self.hits / n if n else 0.0,
            "mean_target_prob": statistics.fmean(probs) if probs else 0.0,
            "median_target_prob": statistics.median(probs) if probs else 0.0,
            "longest_hit_run": self.longest_run,
            "found_rate": (self.found / n if n else 0.0) if self.with_sheet else None,
            "fps": n / self.elapsed_s if self.elapsed_s > 0 else 0.0,
            # share of frames with a found block in which a block was read as the target
            "block_hit_rate": (self.block_hits / self.found if self.found else 0.0) if self.with_sheet else None,
            "duration_s": self.elapsed_s,
            **(self._block_sizes() if self.with_sheet else {}),
        }

    def _block_sizes(self) -> dict:
        """How big the found block looked (camera px across) and the block hit rate per size band:
        a block seen at a few dozen pixels is a blurred upsampled crop, the usual reason to miss."""
        sizes = [px for px, _ in self.block_px]
        if not sizes:
            return {"block_px": None, "block_hit_rate_by_px": {}}
        by_band: dict[str, list[int]] = {}
        for px, hit in self.block_px:
            lo = max((e for e in PX_BANDS if e <= px), default=0)
            hi = next((e for e in PX_BANDS if e > px), None)
            label = f"{lo}-{hi}" if hi is not None else f"{lo}+"
            by_band.setdefault(label, [0, 0])
            by_band[label][0] += 1
            by_band[label][1] += hit
        ordered = sorted(by_band.items(), key=lambda kv: int(kv[0].split("-")[0].rstrip("+")))
        return {"block_px": {"min": min(sizes), "median": statistics.median(sizes), "max": max(sizes)},
                "block_hit_rate_by_px": {k: {"frames": n, "block_hit_rate": h / n} for k, (n, h) in ordered}}


PX_BANDS = (0, 32, 48, 64, 96, 128, 192, 256)  # band edges of block size, camera px across
