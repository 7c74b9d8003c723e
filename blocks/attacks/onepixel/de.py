"""Differential evolution, the one-pixel attack's own search (strategies "paper" and "best1bin").

Su, Vargas and Sakurai, "One pixel attack for fooling deep neural networks", IEEE Transactions
on Evolutionary Computation 23(5), 2019 (arXiv 1710.08864). A candidate is K pixels of
(x, y, r, g, b). The paper's DE: population 400, positions uniform and colours N(128, 127)
clipped at the start, child = x_r1 + F (x_r2 - x_r3) with F = 0.5 and no crossover, each child
against its parent only; an image stops when p(true) falls below 5% (and the prediction has
flipped), or, targeted, when p(target) passes 50%. "best1bin" is scipy's: best + F (x_r1 - x_r2),
F dithered per generation, binomial crossover (what torchattacks OnePixel and ART PixelAttack run).

The public versions run scipy's DE one image at a time; here the populations of all images are
one tensor and every generation is scored in one batch through the Problem.

Shapes: population (N, P, 5K) continuous, fitness (N, P) (lower is better); the search returns
(N,) int64 generations run per image.
"""
from __future__ import annotations

import torch

from blocks.attacks.onepixel.config import OnePixelConfig
from blocks.attacks.onepixel.problem import Problem


def run_de(problem: Problem, cfg: OnePixelConfig, gen: torch.Generator, stop_below: float,
           progress) -> torch.Tensor:
    """The paper's DE (or scipy's best1bin) on all images at once -> (N,) generations run.

    stop_below: the paper's stop on the stop value (p(true), or 1 - p(target)); progress is
    called after each generation with (generation, images still running, maxiter)."""
    n, k = problem.n, cfg.pixels
    pop_n = cfg.popsize
    lo, hi, is_pos = bounds(problem, k)
    pop, fit, running = _first_generation(problem, cfg, gen, stop_below, hi, is_pos)
    every = torch.arange(n, device=problem.images.device)
    generations = torch.zeros(n, dtype=torch.long, device=problem.images.device)

    for g in range(1, cfg.maxiter + 1):
        running &= ~(problem.won & cfg.stop_on_flip) & (problem.queries + pop_n <= problem.budget)
        active = every[running]
        if active.numel() == 0:
            break
        parents, pf = pop[active], fit[active]
        trial = mutate(parents, pf, cfg, gen)
        trial = repair(trial, lo, hi, is_pos, cfg.strategy, gen)
        tfit, tok, tstop = problem.evaluate(active, trial, parents if cfg.dedupe else None)
        better = tfit < pf  # the child replaces its parent only if strictly better
        pop[active] = torch.where(better[..., None], trial, parents)
        fit[active] = torch.where(better, tfit, pf)
        generations[active] = g
        running[active] = ~finished(tstop, tok, stop_below)
        if progress is not None:
            progress(g, int(running.sum()), cfg.maxiter)
    return generations


def _first_generation(problem: Problem, cfg: OnePixelConfig, gen: torch.Generator, stop_below: float, hi, is_pos):
    """The paper's initial population, scored: positions uniform, colours N(128, 127) clipped to
    0..255. An image whose budget cannot take a whole generation is not scored (fitness inf) and
    does not run. (population (N, pop, 5K), fitness (N, pop), running (N,))."""
    n, device = problem.n, problem.images.device
    pop_n, dims = cfg.popsize, 5 * cfg.pixels
    pop = torch.rand(n, pop_n, dims, generator=gen).to(device) * hi
    colours = (128.0 + 127.0 * torch.randn(n, pop_n, dims, generator=gen)).clamp(0, 255).to(device)
    pop = torch.where(is_pos, pop, colours)
    every = torch.arange(n, device=device)
    fits = problem.queries + pop_n <= problem.budget
    fit, ok, stopv = problem.evaluate(every[fits], pop[fits], None)
    running = fits.clone()
    running[fits] = ~finished(stopv, ok, stop_below)
    pfit = torch.full((n, pop_n), float("inf"), device=device)
    pfit[fits] = fit
    return pop, pfit, running


def bounds(problem: Problem, k: int):
    """(lo, hi, is_pos), each (5K,): a genome is K pixels of (x, y, r, g, b), x in [0, W], y in [0, H]."""
    device = problem.images.device
    lo = torch.zeros(5 * k, device=device)
    hi = torch.tensor([float(problem.w), float(problem.h), 255.0, 255.0, 255.0] * k, device=device)
    is_pos = torch.tensor([True, True, False, False, False] * k, device=device)
    return lo, hi, is_pos


def mutate(pop: torch.Tensor, fit: torch.Tensor, cfg: OnePixelConfig, gen: torch.Generator):
    """pop: (A, P, D), fit: (A, P) -> trial vectors (A, P, D)."""
    a, p, d = pop.shape
    dev = pop.device
    if cfg.strategy == "paper":
        r = distinct_others(a, p, 3, gen).to(dev)
        x1, x2, x3 = (pop.gather(1, r[..., j:j + 1].expand(a, p, d)) for j in range(3))
        return x1 + cfg.mutation * (x2 - x3)  # no crossover: the mutant is the child
    # scipy best1bin: best + F (x_r1 - x_r2), F dithered, then binomial crossover.
    r = distinct_others(a, p, 2, gen).to(dev)
    x1, x2 = (pop.gather(1, r[..., j:j + 1].expand(a, p, d)) for j in range(2))
    best = pop.gather(1, fit.argmin(1)[:, None, None].expand(a, 1, d))
    lo, hi = cfg.dither
    scale = (lo + (hi - lo) * torch.rand(a, 1, 1, generator=gen)).to(dev)
    mutant = best + scale * (x1 - x2)
    if cfg.crossover >= 1.0:
        return mutant
    cross = (torch.rand(a, p, d, generator=gen) < cfg.crossover)
    fill = torch.randint(0, d, (a, p, 1), generator=gen)
    cross.scatter_(2, fill, True)  # at least one parameter comes from the mutant, as scipy
    return torch.where(cross.to(dev), mutant, pop)


def repair(trial, lo, hi, is_pos, strategy, gen):
    """Out-of-range positions are redrawn uniformly (scipy's rule; clipping would pile candidates
    on the border). Out-of-range colours are clipped for the paper strategy (saturated colours are
    the strong ones) and redrawn for best1bin, as scipy does."""
    bad = (trial < lo) | (trial >= hi)
    if strategy == "paper":
        trial = torch.where(is_pos, trial, trial.clamp(max=255.0).clamp(min=0.0))
        bad = bad & is_pos
    fresh = lo + torch.rand(trial.shape, generator=gen).to(trial.device) * (hi - lo)
    return torch.where(bad, fresh, trial)


def distinct_others(a: int, p: int, k: int, gen: torch.Generator) -> torch.Tensor:
    """(A, P, k) int64: for every member i, k distinct indices in [0, P), all different from i.

    Draw u in [0, P - m) and shift it past the m values already taken (in ascending order): a
    uniform draw among the remaining indices, with no rejection loop.
    """
    taken = [torch.arange(p).expand(a, p)]
    out = []
    for j in range(k):
        u = torch.randint(0, p - 1 - j, (a, p), generator=gen)
        for e in torch.stack(taken, -1).sort(-1).values.unbind(-1):
            u = u + (u >= e).long()
        taken.append(u)
        out.append(u)
    return torch.stack(out, -1)


def finished(stopv: torch.Tensor, ok: torch.Tensor, stop_below: float) -> torch.Tensor:
    """(A, P) stop values (p(true), or 1 - p(target)) and success -> (A,) bool: the paper's stop."""
    # The paper stops on the probability alone; requiring the flip as well keeps models that are
    # never confident (a random-init net with 1000 classes) from stopping before they are fooled.
    return ((stopv < stop_below) & ok).any(1)
