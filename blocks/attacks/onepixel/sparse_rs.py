"""Sparse-RS at one pixel (strategy "random"): random positions with random corner colours.

Croce, Andriushchenko, Singh, Flammarion and Hein, "Sparse-RS: a versatile framework for
query-efficient sparse black-box adversarial attacks", AAAI 2022 (arXiv 2006.12834). At one
pixel its search is a random walk over (position, colour) pairs, colours at the corners of the
RGB cube, the best kept (the Problem keeps it). Here the positions come in a random order, each
position once before any comes again, each with a uniformly drawn corner; an image stops at its
first win or when its budget is spent.

Shapes: candidates (N, L) positions and corner indices, L = the budget; the search returns (N,)
int64 scoring rounds per image.
"""
from __future__ import annotations

import torch

from blocks.attacks.onepixel.config import OnePixelConfig
from blocks.attacks.onepixel.corners import corner_plan, corner_rounds
from blocks.attacks.onepixel.problem import Problem


def run_sparse_rs(problem: Problem, cfg: OnePixelConfig, gen: torch.Generator, progress) -> torch.Tensor:
    """Sparse-RS on all images at once -> (N,) rounds of scoring run. progress: see Problem.report."""
    dist, order, step = corner_plan(problem, gen)
    pos = order.repeat(1, 8)[:, :problem.budget]
    col = torch.randint(0, 8, pos.shape, generator=gen).to(problem.images.device)
    # a corner equal to the clean pixel changes nothing: not scored
    valid = dist.gather(1, pos[..., None].expand(-1, -1, 8)).gather(2, col[..., None])[..., 0] > 0
    corner_rounds(problem, pos, col, valid, step, progress, gen)
    return problem.rounds
