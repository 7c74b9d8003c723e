"""Candidates whose colour is a corner of the RGB cube, scored in rounds: the step that the probe
and Sparse-RS searches share.

A one-pixel change is largest when the new colour is a corner of the cube (0 or 255 per channel),
so both searches draw their colours from the 8 corners. A candidate of K pixels is the image's
current best K-pixel set with one of its pixels (chosen at random) replaced, so for K = 1 it is
simply a (position, corner) pair.

Shapes: positions are flat indices y * W + x; the plan's colour distance is (N, H x W, 8), its
position order (N, H x W); a round scores `step` candidates per image.
"""
from __future__ import annotations

import torch

from blocks.attacks.onepixel.problem import Problem

CORNERS = torch.tensor([[r, g, b] for r in (0, 255) for g in (0, 255) for b in (0, 255)])  # (8, 3)


def corner_plan(problem: Problem, gen: torch.Generator):
    """-> dist (N, P, 8) int64, the colour distance of each corner from the clean pixel (a corner
    at distance 0 changes nothing); order (N, P), a random order of the P = H x W positions; step,
    candidates per image per round (one forward chunk shared by the images)."""
    n, h, w, device = problem.n, problem.h, problem.w, problem.images.device
    corners = CORNERS.to(device)
    clean = (problem.images * 255).round().long().flatten(2).transpose(1, 2)  # (N, P, 3)
    dist = (corners[None, None] - clean[:, :, None]).abs().sum(-1)  # (N, P, 8)
    order = torch.rand(n, h * w, generator=gen).to(device).argsort(1)
    step = max(1, problem.chunk // max(n, 1))
    return dist, order, step


def corner_rounds(problem: Problem, pos, col, valid, step, progress, gen):
    """Score (N, L) candidates (positions pos, corner indices col, valid mask) `step` per image
    at a time, for the images that have not won and have budget left -> the rounds run and the
    fitness of every candidate (N, L) (+inf where not scored)."""
    n, total = pos.shape
    device = pos.device
    corners = CORNERS.to(device)
    last_fit = torch.full((n, total), float("inf"), device=device)
    every = torch.arange(n, device=device)
    rounds = 0
    for s in range(0, total, step):
        left = problem.left()
        active = every[problem.searching()]
        if active.numel() == 0:
            break
        sl = slice(s, min(s + step, total))
        ps, cs, vs = pos[active, sl], col[active, sl], valid[active, sl]
        # never more than the budget: drop the candidates past what is left of it
        vs = vs & (vs.long().cumsum(1) <= left[active, None])
        slot = torch.randint(0, problem.k, ps.shape, generator=gen).to(device)
        cand = problem.with_pixel(active, ps, corners[cs], slot)
        fit, _, _ = problem.evaluate(active, cand, None, vs)
        last_fit[active, sl] = fit
        problem.count_round(active)
        rounds += 1
        problem.report(progress)
    return rounds, last_fit
