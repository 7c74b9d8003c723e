"""What one `blocks generate` step costs on this CPU and what each speed-up buys, in one run, every
figure a ratio of two things measured here (the machine may be shared: read ratios, not times).

    python bench/step_cost.py                 # efficientnet_lite0, batch 8, held views (~3 min)
    python bench/step_cost.py --model digits  # the logic, in seconds
    python bench/step_cost.py --parts 1       # part 1 alone: the step against a bare forward+backward

1. step vs bare: CPU seconds of one default step (render batch held views, forward, backward
   through the render, signed update) / one bare forward+backward of the model on the same
   batch of views (1 thread), both with the model as generate runs it (batchnorm folded); then
   folded / as loaded (bare forward+backward), and the share of input-gradient signs equal.
2. bf16 vs fp32: CPU seconds of a forward+backward under bf16 autocast / fp32, and the share of
   the patch gradient's signs that agree (the step uses only the sign). Then success per CPU
   second, the figure that decides: --train-steps steps from black with each, same views; the
   fixed check views' loss and p(target) after them, and the CPU seconds they took.
3. threads under load: a competing CPU-bound process started here, then forward+backward with
   2 fixed threads, 1 fixed thread and the governor (blocks.attacks.speed, starting at 2),
   interleaved: wall and CPU seconds per forward+backward (threads that wait on each other spin,
   burning CPU) as ratios to the governor's.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import torch

from blocks.attacks.driver import generate_patch
from blocks.attacks.config import default_patch_side
from blocks.attacks.eot_fgsm import BestPatch, GenerateConfig, OneProcess, step_gradient, signed_step
from blocks.attacks.speed import ThreadGovernor, cpu_has_bf16, fold_batchnorm
from blocks.models import ModelSpec, load_classifier
from blocks.scenes import fit_frames, sample_photos
from transforms import preset, random_views


def interleaved(fns, reps: int) -> list[float]:
    """Median CPU seconds of each of fns, called in turn reps times (after one warm-up each), so
    that a change in the machine's load falls on all of them alike."""
    for fn in fns:
        fn()
    times = [[] for _ in fns]
    for _ in range(reps):
        for fn, row in zip(fns, times):
            t = time.process_time()
            fn()
            row.append(time.process_time() - t)
    return [statistics.median(row) for row in times]


def wall_seconds(fn, reps: int, after=None) -> float:
    fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
        if after is not None:
            after()
    return statistics.median(times)


def setup(name: str, batch: int):
    model = fold_batchnorm(load_classifier(ModelSpec(name=name), device="cpu"), 224 if name != "digits" else 32)
    scenes = fit_frames(sample_photos("train"), model.input_size)
    eot = preset("held")
    cfg = GenerateConfig(target=8 if name != "digits" else 7, batch=batch,
                         patch_size=default_patch_side(model.input_size, "held"),  # the command's
                         autocast="off")
    g = torch.Generator().manual_seed(0)
    patch = torch.rand(3, cfg.patch_size, cfg.patch_size, generator=g)
    views, _ = random_views(patch, batch, model.input_size, eot, scenes, torch.Generator().manual_seed(1))
    return model, scenes, eot, cfg, patch, views.detach()


def bare(model, views, cfg, dtype=None):
    """One forward+backward of the model on views; returns the input gradient."""
    x = views.clone().requires_grad_(True)
    with torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
        logits = model(x)
    loss = torch.nn.functional.cross_entropy(logits.float(), torch.full((len(x),), cfg.target))
    (grad,) = torch.autograd.grad(loss, x)
    return grad


def part_step(model, scenes, eot, cfg, patch, views, reps):
    print(f"== 1. one default step / a bare forward+backward (batch {cfg.batch}, 1 thread, CPU seconds)")
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(2)

    def step():
        p = patch.clone().requires_grad_(True)
        _, _, _, grad = step_gradient(model, p, cfg, eot, scenes, g, cfg.batch)
        signed_step(p, grad, torch.zeros_like(patch), 1 / 255, 0.0, cfg)

    loaded = load_classifier(ModelSpec(name=model.name), device="cpu")
    s, b, a = interleaved([step, lambda: bare(model, views, cfg), lambda: bare(loaded, views, cfg)], reps)
    print(f"   step / bare forward+backward: {s / b:.2f}")
    equal = (bare(loaded, views, cfg).sign() == bare(model, views, cfg).sign()).float().mean().item()
    print(f"   batchnorm folded / as loaded, bare forward+backward: {b / a:.2f} (speed-up {a / b:.2f}x); "
          f"input-gradient signs equal: {equal:.2%}")


def part_bf16(model, scenes, eot, cfg, patch, views, reps, train_steps):
    print(f"== 2. bf16 autocast vs fp32 (CPU native bf16: {cpu_has_bf16()}; 1 thread, CPU seconds)")
    torch.set_num_threads(1)
    f32, b16 = interleaved([lambda: bare(model, views, cfg), lambda: bare(model, views, cfg, torch.bfloat16)], reps)
    signs = []
    for seed in range(4):  # the patch gradient through the render, the sign the step takes
        grads = []
        for mode in ("off", "bf16"):
            p = patch.clone().requires_grad_(True)
            c = GenerateConfig(**{**cfg.__dict__, "autocast": mode})
            grads.append(step_gradient(model, p, c, eot, scenes, torch.Generator().manual_seed(10 + seed), cfg.batch)[3])
        signs.append((grads[0].sign() == grads[1].sign()).float().mean().item())
    print(f"   forward+backward bf16 / fp32: {b16 / f32:.2f} (speed-up {f32 / b16:.2f}x); "
          f"patch-gradient signs equal: {statistics.mean(signs):.1%} (mean of {len(signs)} batches)")
    if train_steps <= 0:
        return
    for mode in ("off", "bf16"):
        c = GenerateConfig(**{**cfg.__dict__, "autocast": mode, "steps": train_steps, "check_every": train_steps})
        t = time.process_time()
        result = generate_patch(model, c, eot, scenes)
        spent = time.process_time() - t
        keeper = BestPatch(model, GenerateConfig(**{**c.__dict__, "autocast": "off"}), eot, scenes, None, OneProcess(), 0, cfg.batch * 4)
        keeper.offer(result.patch, 0)
        print(f"   {train_steps} steps with autocast {mode:>4}: {spent:.1f} CPU s, check loss {keeper.loss:.3f}, "
              f"p(target) {keeper.prob:.3f} (fp32 check views)")


def part_threads(model, cfg, views, reps):
    print("== 3. threads with a competing CPU-bound process started here (wall seconds per forward+backward,"
          " the three interleaved so that other jobs' load drifts over all alike)")
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(1.0)
        torch.set_num_threads(2)
        gov = ThreadGovernor(every=1, ceiling=2)
        for _ in range(3):  # the governor's first looks (it needs one interval to see the load)
            bare(model, views, cfg)
            gov()
        rows = {"fixed 2": [], "fixed 1": [], "governor": []}
        for _ in range(reps):
            for label in rows:
                torch.set_num_threads({"fixed 2": 2, "fixed 1": 1}.get(label, gov.threads))
                t, c = time.perf_counter(), time.process_time()
                bare(model, views, cfg)
                rows[label].append((time.perf_counter() - t, time.process_time() - c))
                if label == "governor":
                    gov()
        print(f"   governor: {gov.threads} thread(s) at the end, changes (call, threads): {gov.changes}")
    finally:
        hog.kill()
        hog.wait()
    wall = {k: statistics.median(w for w, _ in v) for k, v in rows.items()}
    cpu = {k: statistics.median(c for _, c in v) for k, v in rows.items()}
    for label in ("fixed 2", "fixed 1"):
        print(f"   {label} / governor: wall {wall[label] / wall['governor']:.2f}, CPU seconds {cpu[label] / cpu['governor']:.2f}")
    torch.set_num_threads(2)
    idle2 = wall_seconds(lambda: bare(model, views, cfg), reps)
    torch.set_num_threads(1)
    idle1 = wall_seconds(lambda: bare(model, views, cfg), reps)
    print(f"   without the competing process (others' jobs may still run): 1 thread / 2 threads {idle1 / idle2:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="efficientnet_lite0")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--train-steps", type=int, default=20)
    ap.add_argument("--parts", default="123", help="which parts to run, e.g. 1 for the step's cost alone")
    args = ap.parse_args()
    parts = setup(args.model, args.batch)
    print(f"model {args.model}, batch {args.batch}, {args.reps} repeats (medians); a shared machine: expect noise")
    if "1" in args.parts:
        part_step(*parts, args.reps)
    if "2" in args.parts:
        part_bf16(*parts, args.reps, args.train_steps)
    if "3" in args.parts:
        model, _, _, cfg, _, views = parts
        part_threads(model, cfg, views, args.reps)


if __name__ == "__main__":
    main()
