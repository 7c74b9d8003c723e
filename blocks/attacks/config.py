"""The settings of the EOT negative-epsilon FGSM attack (blocks.attacks.eot_fgsm), in a module
that imports no torch: `blocks generate` reads its defaults from here, and the CLI builds its
--help from those without paying for torch."""
from __future__ import annotations

from dataclasses import dataclass

MAX_SECONDS = 7 * 24 * 3600.0  # max_seconds: a clock of at most a week; more is a typo, not a run


@dataclass
class GenerateConfig:
    target: int | None = None  # class to become (negative epsilon)
    away_from: int | None = None  # class to stop being (positive epsilon); one of the two
    patch_size: int | None = 64  # side in pixels (None in a command's settings: it fills it from the model)
    steps: int = 240  # at batch 8, about 5 minutes on 2 CPU cores; seconds on a GPU
    epsilon: float = 32 / 255  # first step size, in [0, 1] pixel units: large, to leave black fast
    final_fraction: float = 0.1  # last step size = epsilon * final_fraction
    schedule: str = "cosine"  # cosine | linear | constant
    # The take-off: over the first takeoff share of the run the step is takeoff_factor x epsilon, then
    # the schedule. A patch from black must find the class within its first tens of steps; at batch 8
    # a first step of 32/255 sometimes never did, and 64/255 all the way cost transfer
    # (bench/reach_seeds.py, docs/physical.md). 0: off (the library's default).
    takeoff: float = 0.0
    takeoff_factor: float = 2.0
    batch: int = 32  # views per step
    momentum: float = 0.9  # signed steps on a running mean of gradients (0 = plain FGSM steps)
    max_seconds: float | None = None
    seed: int = 0
    check_every: int = 10  # steps between scoring the patch on the fixed check views
    check_seconds: float = 30.0  # ... and at most this much of the clock between two checks
    smooth: float | None = None  # Gaussian gradient smoothing, sigma in patch pixels; None: see smoothing()
    members: str = "balance"  # ensembles only: mean | balance | cycle (see the module docstring)
    autocast: str = "auto"  # auto | bf16 | off: the model's forward in bfloat16 (blocks.attacks.speed)
    fold: bool = True  # run a copy of the model with batchnorm folded into its convolutions (the same function)


# The patch's own resolution on whole camera frames: 2/7 of the model's input side, 64 px at 224.
# There the card's patch spans 0.15-0.45 of the frame's shorter side, 34-100 of the model's px, so
# a finer patch is mostly resampled away. Filmed (bench/physical.py, lite0, 240 steps, three seeds,
# docs/physical.md) 64 px read as 112 px did on lite0 and transferred better: lite1 63% / lite2 64%
# of frames at coverage 0.3-0.5 against 58% / 52%, for less CPU a step. 48 px won a little more on
# lite0 but lost transfer (52% / 37%); 32 px lost everywhere.
WHOLE_FRAME_PATCH_FRACTION = 2 / 7


def default_patch_side(input_size: int, eot: str) -> int:
    """The patch side `blocks generate` uses without --patch-size, for a model input side and an
    --eot preset: WHOLE_FRAME_PATCH_FRACTION of it on whole camera frames, half of it otherwise
    (there the patch fills most of the view), never under 8 px."""
    from transforms.eot import whole_frame

    fraction = WHOLE_FRAME_PATCH_FRACTION if whole_frame(eot) else 1 / 2
    return max(8, round(input_size * fraction))
