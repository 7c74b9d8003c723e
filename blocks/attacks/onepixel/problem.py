"""The scorer and best-keeper that every one-pixel search scores its candidates through.

A `Problem` writes candidates into copies of the images, scores them with the model in chunks,
counts the model evaluations (queries) per image and keeps the best candidate ever seen per
image: a winning one first, so a win once seen is never lost, whatever a search does to its own
population afterwards; then the lowest fitness. It can also keep a pool of the lowest-fitness
candidates seen (the probe's seeds for its final DE). Its state (queries, rounds, best, won,
pool) changes only through its own methods; the searches read it.

Shapes: images (N, 3, H, W) in [0, 1]; a candidate of K pixels is (5K,), (x, y, r, g, b) per
pixel, x the column, y the row, colours 0..255 (what an 8-bit PNG stores, so a saved adversarial
image reproduces exactly what was scored). Candidates are continuous; a pixel is floor(x),
floor(y) and round(r, g, b). Fitness: lower is better.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


class Problem:
    """Writes candidates into image copies and scores them, in chunks of `chunk` images, and keeps
    the best candidate ever seen per image: a winning one first (never lost once seen), then the
    lowest fitness.

    model: (B, 3, H, W) -> logits (B, C); images (N, 3, H, W); goal (N,) int64 (the true class,
    or the target when targeted); k pixels per candidate; fitness "margin" or "prob"; budget:
    queries per image; pool: how many lowest-fitness candidates to keep per image (0: none).
    """

    def __init__(self, model, images, goal, targeted, chunk, k, fitness, budget, channels_last=False,
                 pool: int = 0):
        self.model, self.images, self.goal = model, images, goal
        self.channels_last = channels_last
        self.targeted, self.chunk, self.k, self.fitness = targeted, chunk, k, fitness
        self.n = images.shape[0]
        self.h, self.w = images.shape[-2:]
        self.budget = budget
        dev = images.device
        self._queries = torch.ones(self.n, dtype=torch.long, device=dev)  # the clean image
        self._won = torch.zeros(self.n, dtype=torch.bool, device=dev)
        self._best_fit = torch.full((self.n,), float("inf"), device=dev)
        # start from a no-op candidate: K copies of pixel (0, 0) in its clean colour
        c0 = (images[:, :, 0, 0] * 255).round().long()
        self._best = torch.cat([torch.zeros(self.n, 2, dtype=torch.long, device=dev), c0], 1).repeat(1, k)
        self._rounds = torch.zeros(self.n, dtype=torch.long, device=dev)  # search rounds per image
        # the `pool` lowest-fitness candidates seen per image (seeds for a later DE)
        self._pool = self._best[:, None].repeat(1, pool, 1) if pool else None  # (N, M, 5K)
        self._pool_fit = torch.full((self.n, pool), float("inf"), device=dev)

    @property
    def queries(self) -> torch.Tensor:
        """(N,) int64: model evaluations spent per image, the clean one included."""
        return self._queries

    @property
    def won(self) -> torch.Tensor:
        """(N,) bool: some candidate of the image has won."""
        return self._won

    @property
    def best(self) -> torch.Tensor:
        """(N, 5K) int64: the best winner per image, or the lowest fitness if none won."""
        return self._best

    @property
    def rounds(self) -> torch.Tensor:
        """(N,) int64: scoring rounds a search has counted per image (count_round)."""
        return self._rounds

    def left(self) -> torch.Tensor:
        """(N,) int64: queries left in each image's budget."""
        return self.budget - self._queries

    def searching(self) -> torch.Tensor:
        """(N,) bool: the images that have not won and have budget left."""
        return (self.left() > 0) & ~self._won

    def count_round(self, active: torch.Tensor) -> None:
        """One more scoring round for the images `active` (A,)."""
        self._rounds[active] += 1

    def take_pool(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The pool (N, M, 5K) int64 and its fitness (N, M), handed over: the problem stops
        keeping it (a DE seeded with it keeps its own population from here)."""
        pool, fit = self._pool, self._pool_fit
        self._pool = self._pool_fit = None
        return pool, fit

    def report(self, progress) -> None:
        """Tell progress(queries so far, images still searching, budget)."""
        if progress is not None:
            progress(int(self._queries.max()), int(self.searching().sum()), self.budget)

    def with_pixel(self, active, pos, rgb, slot):
        """The best K-pixel candidate of each active image with pixel number `slot` replaced
        (for K = 1 the only one): active (A,), pos (A, L) flat positions, rgb (A, L, 3),
        slot (A, L) in 0..K-1 -> (A, L, 5K)."""
        a, l = pos.shape
        new = torch.cat([(pos % self.w)[..., None], (pos // self.w)[..., None], rgb], -1)
        cand = self._best[active][:, None].expand(a, l, 5 * self.k).clone().view(a, l, self.k, 5)
        cand.scatter_(2, slot[..., None, None].expand(a, l, 1, 5), new[:, :, None])
        return cand.view(a, l, 5 * self.k)

    def write(self, image_idx: torch.Tensor, ints: torch.Tensor) -> torch.Tensor:
        """image_idx: (B,) rows of self.images; ints: (B, 5K) discretised candidates
        -> (B, 3, H, W) copies with the K pixels set (one index_put, no loop over candidates)."""
        out = self.images.index_select(0, image_idx)  # index_select copies
        if self.channels_last:  # faster convolutions on CPU (see fast.py)
            out = out.contiguous(memory_format=torch.channels_last)
        px = ints.view(-1, self.k, 5)
        b = torch.arange(out.shape[0], device=out.device)[:, None, None]
        c = torch.arange(3, device=out.device)[None, None, :]
        out[b, c, px[..., 1:2], px[..., 0:1]] = px[..., 2:].to(out.dtype) / 255.0
        return out

    def evaluate(self, active: torch.Tensor, cand: torch.Tensor, parents: torch.Tensor | None,
                 valid: torch.Tensor | None = None):
        """active: (A,) image indices; cand: (A, P, 5K) -> fitness (A, P) (lower is better),
        success (A, P) bool and the paper's stop value (A, P) (p(true), or 1 - p(target)).
        Adds the model evaluations spent to the queries and updates the best candidate.

        With parents (A, P, 5K), a child whose pixels equal its parent's is not evaluated (its
        fitness is +inf: it cannot replace the parent), and identical siblings are evaluated once.
        valid (A, P) bool: only these candidates are evaluated.
        """
        a, p, _ = cand.shape
        dev = cand.device
        ints = discretise(cand, self.h, self.w)  # (A, P, 5K)
        rows = torch.cat([torch.arange(a, device=dev)[:, None, None].expand(a, p, 1), ints], 2)
        rows = rows.view(a * p, -1)
        keep = torch.ones(a * p, dtype=torch.bool, device=dev) if valid is None else valid.reshape(-1)
        if parents is not None:
            keep &= (ints != discretise(parents, self.h, self.w)).any(-1).view(-1)
            sel = keep.nonzero().squeeze(1)
            uniq, inverse = torch.unique(rows[sel], dim=0, return_inverse=True)
        else:
            sel = keep.nonzero().squeeze(1)
            uniq, inverse = rows[sel], torch.arange(len(sel), device=dev)
        ufit, uok, ustop = self._score(active, uniq)
        fit = torch.full((a, p), float("inf"), device=dev)
        stopv = torch.full((a, p), float("inf"), device=dev)
        ok = torch.zeros((a, p), dtype=torch.bool, device=dev)
        fit.view(-1)[sel] = ufit[inverse]
        stopv.view(-1)[sel] = ustop[inverse]
        ok.view(-1)[sel] = uok[inverse]
        self._queries.index_add_(0, active, torch.bincount(uniq[:, 0], minlength=a))
        self._keep_best(active, ints, fit, ok)
        if self._pool is not None:
            self._keep_pool(active, ints, fit)
        return fit, ok, stopv

    def _score(self, active: torch.Tensor, uniq: torch.Tensor):
        """uniq: (U, 1 + 5K) rows (index into active, discretised candidate) -> fitness (U,),
        success (U,) bool and stop value (U,), scored `chunk` candidates a forward pass."""
        dev = uniq.device
        ufit = torch.empty(len(uniq), device=dev)
        ustop = torch.empty(len(uniq), device=dev)
        uok = torch.empty(len(uniq), dtype=torch.bool, device=dev)
        for s in range(0, len(uniq), self.chunk):
            part = uniq[s:s + self.chunk]
            img = active[part[:, 0]]
            logits = self.model(self.write(img, part[:, 1:])).float()
            probs = F.softmax(logits, dim=1)
            g = self.goal[img][:, None]
            pg = probs.gather(1, g).squeeze(1)
            hit = probs.argmax(1) == self.goal[img]
            zg = logits.gather(1, g).squeeze(1)
            zo = logits.scatter(1, g, float("-inf")).max(1).values  # best other class
            sl = slice(s, s + self.chunk)
            ustop[sl] = (1.0 - pg) if self.targeted else pg
            uok[sl] = hit if self.targeted else ~hit
            if self.fitness == "margin":
                ufit[sl] = (zo - zg) if self.targeted else (zg - zo)
            else:
                ufit[sl] = ustop[sl]
        return ufit, uok, ustop

    def _keep_pool(self, active, ints, fit):
        m = self._pool.shape[1]
        cand = torch.cat([self._pool[active], ints], 1)
        f = torch.cat([self._pool_fit[active], fit], 1)
        top = f.topk(min(m, f.shape[1]), dim=1, largest=False).indices
        self._pool[active] = cand.gather(1, top[..., None].expand(-1, -1, cand.shape[2]))
        self._pool_fit[active] = f.gather(1, top)

    def _keep_best(self, active, ints, fit, ok):
        """A winning candidate beats any non-winning one; among equals the lower fitness wins."""
        any_ok = ok.any(1)
        i = torch.where(any_ok, torch.where(ok, fit, float("inf")).argmin(1), fit.argmin(1))
        f = fit.gather(1, i[:, None]).squeeze(1)
        won = self._won[active]
        better = (any_ok & ~won) | ((any_ok == won) & (f < self._best_fit[active]))
        idx = active[better]
        self._best[idx] = ints[better, i[better]]
        self._best_fit[idx] = f[better]
        self._won[idx] = any_ok[better]


def discretise(genome: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(..., 5K) continuous -> (..., 5K) int64: floor(x) in 0..W-1, floor(y) in 0..H-1, round(rgb)."""
    g = genome.reshape(*genome.shape[:-1], -1, 5)
    xs = g[..., 0].floor().clamp(0, w - 1)
    ys = g[..., 1].floor().clamp(0, h - 1)
    rgb = g[..., 2:].round().clamp(0, 255)
    return torch.cat([xs[..., None], ys[..., None], rgb], -1).long().reshape(genome.shape)
