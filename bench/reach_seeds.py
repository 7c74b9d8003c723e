"""Reach across seeds, without print and film: generate (the library, as `blocks generate` runs it:
lite0, batch 8, held views, folded, bf16 where the CPU has it) for each seed, then the whole-frame
hit rate on views of the held-out photos at fixed coverages, squashed and centre-cropped apart
(bench/physical.py's columns, rendered by the same held view model instead of printed and filmed;
64 views per cell). A patch's start from black is a lottery of its first steps: judge a change to
the attack over several seeds, not one.

    python bench/reach_seeds.py --seeds 0,1,2 --epsilon 64 [--steps 240] [--patch-size PX] [--init PATCH.pt]
        [--transfer]
        [--out runs/reach]

With --transfer each patch is also judged on lite1 and lite2 (never trained on; 32 views a cell).
It prints one JSON line per seed (CPU seconds, the loss every 10 steps, the cells, and the
targets' bands: near = coverage 0.3-0.5, far = 0.2-0.3, as the mean of the columns) and the means.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import replace
from pathlib import Path

import torch

from blocks.attacks.driver import generate_patch
from blocks.attacks.config import default_patch_side
from blocks.commands.generate import command_attack
from blocks.attacks.eot_fgsm import GenerateConfig
from blocks.models import ModelSpec, load_classifier
from blocks.scenes import fit_frames, sample_photos
from transforms import preset, random_views

HEN = 8
COVERAGES = (0.15, 0.2, 0.3, 0.4, 0.5)
TRANSFER = ("efficientnet_lite1", "efficientnet_lite2")
BANDS = {"near": (0.3, 0.4, 0.5), "far": (0.2, 0.3)}


def judge(model, patch, test, n: int) -> dict:
    """Hit rate (%) per (reduction, coverage) cell on n held-out views each, the same views for
    every patch (seed 123), and the bands' means."""
    out = {}
    held = preset("held").without_warmup()
    with torch.no_grad():
        for red in ("squash", "crop"):
            for c in COVERAGES:
                views = replace(held, coverage=(c * 0.97, c * 1.03), reductions=(red,))
                x, _ = random_views(patch, n, model.input_size, views, test, torch.Generator().manual_seed(123))
                out[f"{red} {c}"] = round(100 * (model(x).argmax(1) == HEN).float().mean().item(), 1)
    for band, cs in BANDS.items():
        for red in ("squash", "crop"):
            out[f"{band} {red}"] = round(statistics.mean(out[f"{red} {c}"] for c in cs), 1)
    return out


def transfer(patch, views: int = 32) -> dict:
    """The near and far bands on the models the patch never saw."""
    out = {}
    for name in TRANSFER:
        model = load_classifier(ModelSpec(name=name), device="cpu")
        test = fit_frames(sample_photos("test"), model.input_size)
        cells = judge(model, patch, test, views)
        out.update({f"{name} {k}": v for k, v in cells.items() if k.startswith(("near", "far"))})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--steps", type=int, default=GenerateConfig.steps)
    ap.add_argument("--epsilon", type=float, default=None, help="first step size, in 1/255 (default: the attack's)")
    ap.add_argument("--init", help="a patch (torch.save'd (3, P, P)) to continue, warm-up skipped")
    ap.add_argument("--patch-size", type=int, default=None, help="patch side in px (default: the command's)")
    ap.add_argument("--views", type=int, default=64, help="held-out views per cell")
    ap.add_argument("--transfer", action="store_true", help="also judge on efficientnet_lite1 and lite2")
    ap.add_argument("--out", default="runs/reach")
    a = ap.parse_args()
    torch.set_num_threads(1)
    model = load_classifier(ModelSpec(name="efficientnet_lite0"), device="cpu")
    train, test = (fit_frames(sample_photos(s), model.input_size) for s in ("train", "test"))
    eot = preset("held")
    init = torch.load(a.init) if a.init else None
    if init is not None:
        eot = eot.without_warmup()
    # the command's attack (batch 8, the take-off) and patch side, but for --steps and --patch-size
    side = default_patch_side(model.input_size, "held") if a.patch_size is None else a.patch_size
    cfg = replace(command_attack(), target=HEN, patch_size=side, steps=a.steps)
    if a.epsilon is not None:
        cfg = replace(cfg, epsilon=a.epsilon / 255)
    Path(a.out).mkdir(parents=True, exist_ok=True)
    rows = []
    for seed in [int(s) for s in a.seeds.split(",")]:
        t = time.process_time()
        res = generate_patch(model, replace(cfg, seed=seed), eot, train, init=init)
        row = {"seed": seed, "epsilon_255": round(cfg.epsilon * 255, 2), "cpu_s": round(time.process_time() - t, 1),
               "loss_every_10": [round(r.loss, 2) for r in res.curve[::10]], "best_step": res.best_step,
               **judge(model, res.patch, test, a.views)}
        if a.transfer:
            row.update(transfer(res.patch))
        torch.save(res.patch, Path(a.out) / f"patch-seed{seed}.pt")
        print(json.dumps(row), flush=True)
        rows.append(row)
    keys = [k for k in rows[0] if k.startswith(("near", "far", "efficientnet"))]
    print("mean over seeds:", {k: round(statistics.mean(r[k] for r in rows), 1) for k in keys})


if __name__ == "__main__":
    main()
