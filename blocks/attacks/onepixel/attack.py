"""The one-pixel attack's entry point: check the settings, run the chosen search on all images at
once, and report what the model says about the images it returns.

Every strategy scores its candidates through one Problem (problem.py), which counts the queries
per image and keeps the best candidate ever seen, so the searches differ only in which candidates
they ask for: de.py (the paper's DE and scipy's best1bin), probe.py (the default) and
sparse_rs.py (Sparse-RS at one pixel).

Shapes: images (N, 3, H, W) in [0, 1] at the model's input size; labels (N,) int64; the result's
adversarial images (N, 3, H, W) and per-image queries (N,).
"""
from __future__ import annotations

import time
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from blocks.attacks.onepixel.config import OnePixelConfig
from blocks.attacks.onepixel.de import run_de
from blocks.attacks.onepixel.fast import auto_chunk, scorer_for
from blocks.attacks.onepixel.probe import SEEDS, run_probe
from blocks.attacks.onepixel.problem import Problem
from blocks.attacks.onepixel.result import OnePixelResult
from blocks.attacks.onepixel.sparse_rs import run_sparse_rs
from common.errors import UserError


def one_pixel_attack(model: nn.Module, images: torch.Tensor, labels: torch.Tensor | None = None,
                     config: OnePixelConfig | None = None, target: int | torch.Tensor | None = None,
                     progress: Callable[[int, int, int], None] | None = None) -> OnePixelResult:
    """Run the attack on a batch of images at once.

    model: (B, 3, H, W) in [0, 1] -> logits (B, C), e.g. blocks.models.Classifier. Its device is used.
    images: (N, 3, H, W) in [0, 1]; pixels are changed at this resolution (give images at the
        model's input size so a changed pixel is a model-input pixel, not a blurred dot).
    labels: (N,) int64 true classes, or None to use the model's prediction on the clean images.
    target: a class index (or (N,) indices) for a targeted attack; None = untargeted.
    progress: called after each generation with (generation, images still running, maxiter).
    """
    cfg = (config or OnePixelConfig()).check()
    # Nothing here needs gradients; inference mode also keeps every tensor updatable in place.
    with torch.inference_mode():
        return _attack(model, images, labels, cfg, target, progress)


def _attack(model, images, labels, cfg: OnePixelConfig, target, progress) -> OnePixelResult:
    if images.dim() != 4 or images.shape[1] != 3:
        raise UserError(f"images must be (N, 3, H, W), not {tuple(images.shape)}")
    start = time.perf_counter()
    device = _device_of(model)
    x = images.detach().to(device=device, dtype=torch.float32)
    n, _, h, w = x.shape
    chunk = cfg.batch or auto_chunk(h, w, device)
    gen = torch.Generator().manual_seed(cfg.seed if cfg.seed is not None else torch.seed())

    probs0 = _softmax_chunks(model, x, chunk)
    true = (labels.to(device).long() if labels is not None else probs0.argmax(1))
    tgt, goal, stop_below = _goal(target, true, probs0.shape[1], cfg)
    budget = cfg.budget_for(h * w)
    # Candidates may be scored by an optimised copy; the probabilities reported before and after
    # always come from the model itself.
    scorer, channels_last = scorer_for(model, x[:2], cfg.fast, (time.perf_counter() - start) * budget)
    problem = Problem(scorer, x, goal, target is not None, chunk, cfg.pixels, cfg.fitness_used,
                      budget=budget, channels_last=channels_last,
                      pool=SEEDS if cfg.strategy == "probe" else 0)

    interrupted = False
    try:
        if cfg.is_de:
            generations = run_de(problem, cfg, gen, stop_below, progress)
        elif cfg.strategy == "random":
            generations = run_sparse_rs(problem, cfg, gen, progress)
        else:
            generations = run_probe(problem, cfg, gen, progress)
    except KeyboardInterrupt:  # keep what the images that had finished found
        interrupted, generations = True, problem.rounds.clone()
    finished = problem.won | (problem.queries >= budget)
    return _result(model, problem, chunk, true, tgt, probs0, cfg, start,
                   generations=generations.cpu(), interrupted=interrupted, finished=finished.cpu())


def _goal(target, true: torch.Tensor, num_classes: int, cfg: OnePixelConfig):
    """-> (target (N,) or None, the class each image's fitness is about (N,), the stop value
    (p(true), or 1 - p(target)) below which an image has met the paper's stop)."""
    if target is None:
        return None, true, cfg.untargeted_stop
    tgt = torch.as_tensor(target, dtype=torch.long, device=true.device).expand(len(true)).clone()
    if (tgt < 0).any() or (tgt >= num_classes).any():
        raise UserError(f"target class out of range: the model has classes 0..{num_classes - 1}")
    # the paper's stop: p(target) > targeted_stop, i.e. 1 - p(target) below this
    return tgt, tgt, 1.0 - cfg.targeted_stop


def _result(model, problem: Problem, chunk: int, true, tgt, probs0, cfg, start: float,
            **run) -> OnePixelResult:
    """The best candidate of every image written into it and scored by the model itself; run:
    the search's own fields of the result (generations, interrupted, finished)."""
    n, k = problem.n, problem.k
    genome = problem.best  # (N, 5K) int64: the best winner, or the lowest fitness if none won
    every = torch.arange(n, device=genome.device)
    adv = problem.write(every, genome)
    probs1 = _softmax_chunks(model, adv, chunk)
    pred1 = probs1.argmax(1)
    success = (pred1 == tgt) if tgt is not None else (pred1 != true)
    pix = genome.view(n, k, 5).clone()
    # Report the colour actually in the image (if two pixels of one candidate coincide, one wins).
    written = adv[every[:, None], :, pix[..., 1], pix[..., 0]]  # (N, K, 3)
    pix[..., 2:] = (written * 255).round().long()
    return OnePixelResult(originals=problem.images.cpu(), adv=adv.cpu(), success=success.cpu(),
                          true_class=true.cpu(), target=tgt.cpu() if tgt is not None else None,
                          probs_before=probs0.cpu(), probs_after=probs1.cpu(), pixels=pix.cpu(),
                          queries=problem.queries.cpu(), seconds=time.perf_counter() - start,
                          config=cfg, **run)


def _softmax_chunks(model, x: torch.Tensor, chunk: int) -> torch.Tensor:
    """x: (N, 3, H, W) -> (N, C) probabilities, evaluated `chunk` images at a time."""
    return torch.cat([F.softmax(model(x[s:s + chunk]).float(), 1) for s in range(0, len(x), chunk)])


def _device_of(model: nn.Module) -> torch.device:
    dev = getattr(model, "device", None)
    if isinstance(dev, torch.device):
        return dev
    for t in list(model.parameters()) + list(model.buffers()):
        return t.device
    return torch.device("cpu")


def prepare_images(images: list[torch.Tensor], size: int) -> torch.Tensor:
    """Resize each (3, H, W) image in [0, 1] to size x size (bilinear with antialias, as
    blocks.models.Classifier does) and round to 8 bits, so the attacked image is exactly what a
    PNG stores -> (N, 3, size, size)."""
    out = []
    for im in images:
        if im.shape[-2:] != (size, size):
            im = F.interpolate(im[None], size=(size, size), mode="bilinear", align_corners=False,
                               antialias=True)[0]
        out.append((im.clamp(0, 1) * 255).round() / 255)
    return torch.stack(out)

