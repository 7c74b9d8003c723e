"""The probe (strategy "probe", the default): corner colours where one pixel is strongest, then DE.

Three steps on all images at once, each image stopping at its first win or when its budget is
spent:
1. every position (in a random order, as many as half the budget holds) with the RGB-cube corner
   farthest from the pixel's own colour (the largest one-pixel change);
2. the other 7 corners at the positions where step 1 moved the fitness most;
3. with what is left, differential evolution (scipy's best1bin mutation, dithered F, no
   crossover; Su et al. 2019, see de.py) whose population is the SEEDS best candidates seen so
   far, free to move to any position and colour.
When 8 x H x W fits in the budget, steps 1 and 2 are the exhaustive corner search.

Shapes: step 1 scores (N, L1) candidates, step 2 (N, 8 L1); the DE population is (N, SEEDS, 5K);
the search returns (N,) int64 scoring rounds per image.
"""
from __future__ import annotations

import torch

from blocks.attacks.onepixel.config import OnePixelConfig
from blocks.attacks.onepixel.corners import corner_plan, corner_rounds
from blocks.attacks.onepixel.de import bounds, mutate, repair
from blocks.attacks.onepixel.problem import Problem

SEEDS = 40  # the best candidates kept to seed the final DE (its population)


def run_probe(problem: Problem, cfg: OnePixelConfig, gen: torch.Generator, progress) -> torch.Tensor:
    """The probe on all images at once -> (N,) rounds of scoring run. The problem must keep a
    pool of SEEDS candidates. progress: see Problem.report."""
    n, p, device = problem.n, problem.h * problem.w, problem.images.device
    dist, order, step = corner_plan(problem, gen)
    # 1. every position (as many as half the budget allows) with its farthest corner
    far = dist.argmax(2)  # (N, P)
    n1 = min(p, max(1, (problem.budget - 1) // 2))
    pos1 = order[:, :n1]
    col1 = far.gather(1, pos1)
    _, fit1 = corner_rounds(problem, pos1, col1, torch.ones_like(pos1, dtype=torch.bool), step, progress, gen)
    # 2. the other corners at the positions where the farthest corner moved the fitness most
    rank = fit1.argsort(1)  # (N, n1) best first
    pos2 = pos1.gather(1, rank)[:, :, None].expand(-1, -1, 8)
    col2 = torch.arange(8, device=device).expand_as(pos2)
    valid2 = (col2 != col1.gather(1, rank)[:, :, None]) & (dist.gather(1, pos2[..., 0:1].expand(-1, -1, 8)) > 0)
    corner_rounds(problem, pos2.reshape(n, -1), col2.reshape(n, -1), valid2.reshape(n, -1), step, progress, gen)
    # 3. what is left: DE seeded with the best candidates seen so far
    _seeded_de(problem, cfg, gen, progress)
    return problem.rounds


def _seeded_de(problem: Problem, cfg: OnePixelConfig, gen: torch.Generator, progress) -> None:
    """Spend what is left of each image's budget on DE (best + F (x_r1 - x_r2), F dithered as
    scipy's best1bin, no crossover) whose population is the best candidates the probe found."""
    n, device = problem.n, problem.images.device
    lo, hi, is_pos = bounds(problem, cfg.pixels)
    pool, fit = problem.take_pool()  # the DE keeps its own population from here
    # positions as the centre of their pixel, so a small step does not fall off the pixel
    pop = pool.float() + is_pos.float() * 0.5  # (N, M, 5K)
    m = pop.shape[1]
    de = OnePixelConfig(strategy="best1bin", crossover=1.0)
    every = torch.arange(n, device=device)
    stuck = torch.zeros(n, dtype=torch.bool, device=device)
    while True:
        left = problem.left()
        active = every[problem.searching() & ~stuck]
        if active.numel() == 0:
            break
        parents, pf = pop[active], fit[active]
        trial = repair(mutate(parents, pf, de, gen), lo, hi, is_pos, "best1bin", gen)
        # never more than the budget: the last generation may score only part of the population
        valid = torch.arange(m, device=device)[None] < left[active, None]
        before = problem.queries[active].clone()
        tfit, _, _ = problem.evaluate(active, trial, parents if cfg.dedupe else None, valid)
        # a population collapsed onto one pixel makes only repeats: nothing more to learn
        stuck[active] = problem.queries[active] == before
        better = tfit < pf
        pop[active] = torch.where(better[..., None], trial, parents)
        fit[active] = torch.where(better, tfit, pf)
        problem.count_round(active)
        problem.report(progress)
