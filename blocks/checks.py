"""Range checks for the numbers a command takes, so every setting fails the same way: one line naming
the setting, the range and the value, before any model loads. NaN and infinity never pass.

`name` is the setting's parameter name (`eval_n`): the error carries it as UserError.param and the
CLI shows its flag (`--eval-n`). A name given as a flag (`--n`) is shown as it is."""
from __future__ import annotations

import math

from common.errors import UserError

MAX_INPUT_SIZE = 1024  # --input-size: models here take 224-600 px; more is an allocation, not a model
MAX_PATCH_SIZE = 2048  # --patch-size
MAX_BATCH = 1024  # views per step / images per forward pass
MAX_STEPS = 10_000_000  # --steps: a week of the smallest model's steps; more is a typo, not a run
MAX_WEIGHT = 1e6  # --printability, --tv: weights beyond it overflow the loss, they do not weigh it
MAX_MEAN = 1e3  # --mean: inputs are [0, 1]; a mean beyond this only overflows
MIN_STD, MAX_STD = 1e-6, 1e3  # --std divides
MIN_STRIDE = 0.02  # capture --stride: at most ~2,500 sliding windows a frame
MAX_SEED = 2**32 - 1  # what numpy and torch generators both accept
SCALE = (0.01, 1.5)  # bounds of --scale MIN:MAX (patch side / image side)
# Names the CLI's --help lists without importing torch; tests/test_help.py checks each equals its source.
EOT_PRESETS = ("none", "digital", "print", "webcam", "camera", "camera+scene", "held")  # transforms.eot.PRESETS
PAGES = ("a4", "letter", "a3")  # printing.layout.PAGE_SIZES_MM


def whole(value: int | None, flag: str, lo: int, hi: int | None = None) -> int | None:
    """An integer flag in [lo, hi] (None passes: the flag was not given)."""
    if value is None:
        return None
    if value < lo or (hi is not None and value > hi):
        rng = f"at least {lo}" if hi is None else f"from {lo} to {hi}"
        raise UserError(f"{flag} must be {rng}, not {value}", param=_param(flag))
    return value


def number(value: float | None, flag: str, lo: float = -math.inf, hi: float = math.inf,
           lo_open: bool = False, hi_open: bool = False) -> float | None:
    """A finite float flag in the interval given (open or closed at each end)."""
    if value is None:
        return None
    ok = math.isfinite(value) and (value > lo if lo_open else value >= lo) and (value < hi if hi_open else value <= hi)
    if not ok:
        raise UserError(f"{flag} must be {_interval(lo, hi, lo_open, hi_open)}, not {value!r}", param=_param(flag))
    return float(value)


def _interval(lo, hi, lo_open, hi_open) -> str:
    if lo == -math.inf and hi == math.inf:
        return "a finite number"
    if hi == math.inf:
        return f"a number {'>' if lo_open else '>='} {lo:g}"
    if lo == -math.inf:
        return f"a number {'<' if hi_open else '<='} {hi:g}"
    return f"a number in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"


def _param(name: str) -> str | None:
    return None if name.startswith("-") else name


def span(values, name: str, lo: float, hi: float) -> tuple[float, float]:
    """A (min, max) pair with lo <= min <= max <= hi, all finite."""
    ok = (len(values) == 2 and all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)
          and lo <= values[0] <= values[1] <= hi)
    if not ok:
        raise UserError(f"{name} takes MIN:MAX with {lo:g} <= MIN <= MAX <= {hi:g}, not "
                        f"{':'.join(f'{v:g}' for v in values)!r}", param=_param(name))
    return float(values[0]), float(values[1])


def seed(value: int, flag: str = "seed") -> int:
    return whole(value, flag, 0, MAX_SEED)


def runs_at_input_size(net) -> None:
    """One forward pass on a blank image: a model that cannot take --input-size (too small for its
    pooling, or a fixed-size ViT) fails here in one line, not as a traceback mid-run."""
    import torch

    with torch.no_grad():
        try:
            out = net(torch.full((1, 3, net.input_size, net.input_size), 0.5, device=net.device))
        except RuntimeError as e:
            reason = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
            raise UserError(f"model {net.name} does not run at input_size {net.input_size} ({reason})", "input_size") from None
    if isinstance(out, torch.Tensor) and not torch.isfinite(out).all():
        raise UserError(f"model {net.name} gives non-finite outputs (NaN or infinity) on a plain grey image: "
                        f"NaN or huge weights, or a mean/std that overflow")


def finite_steps(on_step):
    """on_step for generate_patch that first checks the step's loss: a model that goes NaN mid-run
    is one line at that step, not a failed write after the whole run."""
    import math

    def checked(record):
        if not math.isfinite(record.loss):
            raise UserError(f"the loss became {record.loss} at step {record.step}: the model gives non-finite "
                            f"outputs on these views (check the model's weights, mean/std and the colour map); "
                            f"nothing written")
        if on_step is not None:
            on_step(record)

    return checked


def model_numbers(input_size: int | None, mean, std) -> None:
    """The numeric [model flags]: --input-size, --mean R,G,B, --std R,G,B (std > 0: it divides)."""
    whole(input_size, "input_size", 8, MAX_INPUT_SIZE)
    for v in mean or ():
        number(v, "mean", -MAX_MEAN, MAX_MEAN)
    for v in std or ():
        number(v, "std", MIN_STD, MAX_STD)


# Peak memory per view, in float32 RGB images of its side, measured by bench/memory.py (peak RSS
# of the real command at two batch or patch sizes, CPU, --eot held; the difference per view):
VIEW_COPIES = {"digits": 12.0, "efficientnet_lite0": 155.0}  # generate: a view at the model's input side
VIEW_COPIES_OTHER = 160.0  # models not measured: as the embedded EfficientNet, rounded up
TEXTURE_COPIES = 76.0  # generate: each view's copy of the patch (card, light, blur, JPEG, gradients)
EVAL_TEXTURE_COPIES = 24.0  # evaluate / held-out check: the same without gradients
EVAL_BATCH = 64  # views a held-out check renders at once (blocks.evaluate.evaluate_patch's batch)
HELD_OUT_VIEWS = 256  # views a held-out check judges by default (generate --eval-n, evaluate_patch's n)


def view_copies(net) -> float:
    names = {getattr(m, "name", "") for m in getattr(net, "members", [net])}
    return max(VIEW_COPIES.get(n, VIEW_COPIES_OTHER) for n in names)


def rgb_bytes(side_or_pixels: int, square: bool = True) -> float:
    """Bytes of one float32 RGB image of side x side px (square) or of that many pixels."""
    return 3 * 4 * float(side_or_pixels) ** (2 if square else 1)


def views_fit(batch: int, side: int, patch: int, judge_views: int, device, copies: float) -> None:
    """generate: a step's batch views of side x side px with a patch of patch x patch px, and the
    held-out check's views (at most EVAL_BATCH at once, no gradients): the higher peak must fit."""
    from common.memory import check_fits

    per_view, per_patch = rgb_bytes(side) * copies, rgb_bytes(patch) * TEXTURE_COPIES
    judge = min(EVAL_BATCH, judge_views) * rgb_bytes(patch) * EVAL_TEXTURE_COPIES
    if per_view >= per_patch:  # the model's activations dominate: fewer views a step
        what, lower = f"batch {batch} at {side} px", "batch"
    else:  # the patch's texels dominate
        what, lower = f"patch_size {patch} with batch {batch}", "patch_size"
    check_fits(max(batch * (per_view + per_patch), judge), what, lower, device, param=(lower, lower))


def patch_views_fit(views: int, patch: int, device, what: str, lower: str, param=None) -> None:
    """views rendered at once from a patch of patch x patch px, without gradients (evaluate)."""
    from common.memory import check_fits

    check_fits(views * rgb_bytes(patch) * EVAL_TEXTURE_COPIES, what, lower, device, param=param)
