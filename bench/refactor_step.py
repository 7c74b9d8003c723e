"""CPU seconds per `generate` step of whatever checkout is on the import path, so that the code at
two commits can be compared step for step (issue 31's refactor: did it change the cost of a step?).

    PYTHONPATH=. python bench/refactor_step.py                        # this checkout
    PYTHONPATH=/path/to/old/checkout python bench/refactor_step.py   # another commit's code

efficientnet_lite0 (embedded weights), batch 8, the held preset, 112 px patch, 1 thread: each round
runs `--steps` steps through blocks.attacks' generate_patch once per variant, interleaved with
`--bare` bare forward+backward passes of the model as loaded (float32) on 8 held views. A step's
CPU seconds are the process time between two consecutive on_step calls (the check views are
scored before the first step and after the last one only), the median over all rounds.

Variants where the code has issue 32's speed-ups (GenerateConfig.fold and .autocast):
  no speed-ups        fold=False, autocast="off" (what the code before them ran), held views as is
  no speed-ups, no AA the same with HeldCard.antialias=False: the held render before the card's
                      low-pass for the reduction to the model's square (a deliberate change)
  default             fold=True, autocast="auto" (the library's defaults)
Where it has not: the one variant "as it was".

The figure to compare across processes (two processes share the machine with other jobs) is
step / bare: both are measured in the same rounds, so a load that slows one slows the other.
"""
from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

# bench/capture.py shadows the `capture` package: drop this file's folder from the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import blocks  # noqa: E402
from blocks.attacks.config import GenerateConfig  # noqa: E402
from blocks.models import ModelSpec, load_classifier  # noqa: E402
from blocks.scenes import fit_frames, sample_photos  # noqa: E402
from transforms import preset, random_views  # noqa: E402

try:  # after issue 31: the loop lives in the driver
    from blocks.attacks.driver import generate_patch
except ImportError:  # before it: in eot_fgsm
    from blocks.attacks.eot_fgsm import generate_patch

TARGET = 8  # ImageNet's hen


def variants(base: GenerateConfig, held) -> dict[str, tuple[GenerateConfig, object]]:
    fields = {f.name for f in dataclasses.fields(GenerateConfig)}
    if not {"fold", "autocast"} <= fields:
        return {"as it was": (base, held)}
    plain = dataclasses.replace(base, fold=False, autocast="off")
    return {"no speed-ups": (plain, held),
            "no speed-ups, no AA": (plain, dataclasses.replace(held, antialias=False)),
            "default": (dataclasses.replace(base, fold=True, autocast="auto"), held)}


def step_seconds(model, cfg: GenerateConfig, eot, scenes) -> list[float]:
    """CPU seconds of each step after the first of one generate_patch run."""
    marks = []
    generate_patch(model, cfg, eot, scenes, on_step=lambda record: marks.append(time.process_time()))
    return [b - a for a, b in zip(marks, marks[1:])]


def bare_seconds(model, views: torch.Tensor, reps: int) -> list[float]:
    """CPU seconds of each of reps forward+backward passes of the model on views."""
    labels = torch.full((len(views),), TARGET)
    times = []
    for _ in range(reps):
        t = time.process_time()
        x = views.clone().requires_grad_(True)
        torch.autograd.grad(F.cross_entropy(model(x), labels), x)
        times.append(time.process_time() - t)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=12, help="steps per generate_patch run")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--bare", type=int, default=4, help="bare forward+backward passes per round")
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"code: {Path(blocks.__file__).resolve().parents[1]}, torch {torch.__version__}, 1 thread")
    model = load_classifier(ModelSpec("efficientnet_lite0"))
    scenes = fit_frames(sample_photos("train"), model.input_size)
    held = preset("held")
    base = GenerateConfig(target=TARGET, patch_size=112, batch=8, steps=args.steps,
                          check_every=args.steps + 1, check_seconds=1e9)
    views = random_views(torch.rand(3, 112, 112, generator=torch.Generator().manual_seed(0)), 8,
                         model.input_size, held, scenes, torch.Generator().manual_seed(1))[0].detach()
    runs = variants(base, held)
    bare_seconds(model, views, 1)  # warm-up
    bare, steps = [], {name: [] for name in runs}
    for r in range(args.rounds):  # interleaved: the machine's load drifts over every variant alike
        bare += bare_seconds(model, views, args.bare)
        for name, (cfg, eot) in runs.items():
            steps[name] += step_seconds(model, cfg, eot, scenes)
        print(f"round {r + 1}/{args.rounds} done", flush=True)
    b = statistics.median(bare)
    print(f"bare forward+backward (as loaded, fp32): {b:.3f} CPU s (median of {len(bare)})")
    for name, times in steps.items():
        s = statistics.median(times)
        print(f"{name:20s} {s:.3f} CPU s/step (median of {len(times)})  RATIO step / bare = {s / b:.2f}")


if __name__ == "__main__":
    main()
