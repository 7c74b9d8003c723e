"""The records of the other commands: capture's and one-pixel's summaries, evaluate's report,
sweep.json, what simulate did, scenes.json."""
from __future__ import annotations

from typing import Any, ClassVar

from pydantic import model_validator

from common.records.base import VERSION, GoalField, Part, Record, listed, nested_target
from common.formats import CaptureLines, OnePixelLines, EvaluateLines, SweepLines, SimulateLines, ScenesLines  # how each record reads on screen


class CaptureSummary(CaptureLines, Record):
    """The summary `blocks capture` prints and writes (--summary). Keys only some runs have
    (block sizes with a sheet, a stream's reconnects, unreadable files) are in extra."""

    WHAT: ClassVar[str] = "capture summary"
    FROM: ClassVar[str] = "blocks capture"

    frames: int = 0
    frame_hit_rate: float = 0.0  # the headline: frames whose whole frame the model read as the target
    frame_mean_target_prob: float = 0.0
    hit_rate: float = 0.0  # frames that any view (whole frame, a block, a window) won
    mean_target_prob: float = 0.0  # of the best view of each frame
    median_target_prob: float = 0.0
    longest_hit_run: int = 0
    found_rate: float | None = None
    fps: float = 0.0
    block_hit_rate: float | None = None  # diagnosis (--sheet): of the frames with a block found
    duration_s: float = 0.0
    target: GoalField | None = None
    model: str | None = None
    stopped_by: str | None = None
    sheet: str | None = None
    source: str | None = None
    version: int = VERSION

    def __getitem__(self, key):  # summary["frames"] reads as the dict it replaced
        return self.to_json()[key]

    @model_validator(mode="before")
    @classmethod
    def _older(cls, d):  # capture summaries from before the target was one object
        return nested_target(d)


class OnePixelRow(Part):
    """One image of a one-pixel run, as its table row: before/after are {class, index, prob, ...}
    (the full record, pixels included, is <name>.json)."""

    name: str
    image: str
    success: bool
    queries: int
    before: dict
    after: dict


class OnePixelSummary(OnePixelLines, Record):
    """summary.json of `blocks onepixel` (each image's own record is <name>.json next to it)."""

    WHAT: ClassVar[str] = "one-pixel summary"
    FROM: ClassVar[str] = "blocks onepixel"
    OMIT_NONE: ClassVar = ("popsize", "maxiter")  # DE runs only

    images: int = 0
    successes: int = 0
    success_rate: float = 0.0
    mean_confidence: float | None = None
    mean_queries: float = 0.0
    max_queries: int = 0
    fitness: str | None = None
    seconds: float = 0.0
    targeted: bool = False
    strategy: str | None = None
    pixels: int = 1
    popsize: int | None = None
    maxiter: int | None = None
    model: Any = None
    device: str | None = None
    seed: int | None = None
    target: GoalField | None = None
    input_size: int | None = None
    files: list = []
    results: listed(tuple[OnePixelRow, ...]) = ()  # one row per image, in input order
    version: int = VERSION

    def __getitem__(self, key):
        return self.to_json()[key]


# --- evaluate, sweep, simulate ------------------------------------------------------------------

class EvaluateRow(Part):
    """One model of a several-model `blocks evaluate` (a transfer row), all on the same views."""

    model: str
    weights: str | None = None
    success_rate: float = 0.0
    mean_target_prob: float = 0.0
    top5_rate: float = 0.0
    n: int = 0


class EvaluateReport(EvaluateLines, Record):
    """`blocks evaluate`'s JSON (--out, else stdout). One model: model, success_rate,
    mean_target_prob, top5_rate, by_scale, by_rotation; several: a `models` row each instead."""

    WHAT: ClassVar[str] = "evaluation"
    FROM: ClassVar[str] = "blocks evaluate"
    OMIT_NONE: ClassVar = ("model", "success_rate", "mean_target_prob", "by_scale", "by_rotation", "top5_rate",
                           "models", "by_coverage", "by_reduction", "by_tilt", "works_from")

    patch: str = ""
    target: GoalField | None = None
    model: str | None = None
    eot: str | None = None
    scale: list | None = None
    seed: int | None = None
    success_rate: float | None = None
    mean_target_prob: float | None = None
    n: int = 0
    by_scale: dict | None = None
    by_rotation: dict | None = None
    top5_rate: float | None = None
    models: listed(tuple[EvaluateRow, ...]) | None = None
    # whole-frame views (--eot held): success by coverage, reduction and tilt (blocks.evaluate)
    by_coverage: dict | None = None
    by_reduction: dict | None = None
    by_tilt: dict | None = None
    works_from: float | None = None
    version: int = VERSION


class SweepRecord(SweepLines, Record):
    """sweep.json of `blocks sweep`: class probabilities against epsilon (0-255 units); probs maps
    each class shown to one probability per epsilon."""

    WHAT: ClassVar[str] = "sweep"
    FROM: ClassVar[str] = "blocks sweep"

    image: str = ""
    target: GoalField | None = None
    model: str | None = None
    epsilons_255: list = []
    best_epsilon_255: float = 0.0
    best_target_prob: float = 0.0
    clean_top1: str | None = None
    probs: dict = {}
    version: int = VERSION


class SimulateInfo(SimulateLines, Record):
    """What `blocks simulate` did (capture.simulate.simulate returns it; the command prints it and
    writes only the video). sheet/block: the sheet.json used and the block filmed, None without one."""

    WHAT: ClassVar[str] = "simulation info"
    FROM: ClassVar[str] = "blocks simulate"

    out: str = ""
    frames: int = 0
    fps: float = 0.0
    size: list = []  # [w, h] pixels
    seed: int = 0
    sheet: str | None = None
    block: int | None = None
    page: int = 0
    render_dpi: float = 0.0
    version: int = VERSION


class ScenesInfo(ScenesLines, Record):
    """scenes.json of `blocks sample-scenes` / `blocks digits-scenes`: what went into train/ and
    test/ (split by photo or by digit image, never both sides). excluded: the class left out."""

    WHAT: ClassVar[str] = "scenes info"
    FROM: ClassVar[str] = "blocks sample-scenes"

    source: str = "photos"  # photos (shipped with installed packages) or digits (held-out digits)
    train: int = 0
    test: int = 0
    excluded: str | None = None
    version: int = VERSION
