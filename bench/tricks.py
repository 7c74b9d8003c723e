"""Transfer-minded attack options that only the benchmarks set (bench/transfer.py measures them;
docs/ensembles.md has the figures). blocks' attack takes them as a `tricks` hook
(blocks.attacks.eot_fgsm.Plain is the product's, which does none of them):

- diversity p: each view is shrunk by a random factor in [0.8, 1] and padded at a random offset
  with probability p before the model sees it (input diversity, Xie et al. 2019).
- ghost p: dropout with rate p on every convolution's output during the attack's forward passes,
  so each step meets a slightly different model (ghost networks, Li et al. 2020).
- loss "logit" or "margin" instead of "ce": descend the target's negated logit (Zhao et al. 2021,
  "On Success and Simplicity", whose gradient does not fade once the target wins), or the
  Carlini-Wagner margin (the best other logit minus the target's, floored at -MARGIN_KAPPA).
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from common.goal import Goal

LOSSES = ("ce", "logit", "margin")
MARGIN_KAPPA = 5.0  # logits: past this lead the margin loss stops pushing


@dataclass
class Tricks:
    """The attack's hook (blocks.attacks.eot_fgsm's `tricks`); the defaults switch every trick off."""

    diversity: float = 0.0  # probability of a random resize-and-pad of each view (input diversity)
    ghost: float = 0.0  # dropout rate on convolution outputs during attack steps (ghost networks)
    loss: str = "ce"  # ce | logit | margin

    def __post_init__(self):
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}: {', '.join(LOSSES)}")

    @property
    def folds(self) -> bool:
        """Batchnorm may be folded into the convolutions, except under ghost dropout, which acts on
        the convolutions' own outputs."""
        return self.ghost <= 0

    def objective_loss(self, goal: Goal, logits: torch.Tensor) -> torch.Tensor:
        return attack_loss(goal, logits, self.loss)

    def views(self, views: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return diverse_inputs(views, self.diversity, generator) if self.diversity > 0 else views

    def around(self, net, generator: torch.Generator):
        return ghost_networks(net, self.ghost, generator)


def attack_loss(goal: Goal, logits: torch.Tensor, kind: str = "ce") -> torch.Tensor:
    """logits (B, C) -> the scalar this attack descends: cross-entropy (common.goal.Goal.loss), the
    class's own logit, or its margin over the best other class, each signed by the goal's mode."""
    if kind == "ce":
        return goal.loss(logits)
    mine = logits[:, goal.index]
    sign = -1.0 if goal.targeted else 1.0  # targeted: raise the class; untargeted: lower it
    if kind == "logit":
        return sign * mine.mean()
    if kind == "margin":
        mask = torch.tensor([goal.index], device=logits.device)
        others = logits.index_fill(1, mask, float("-inf")).amax(1)
        return (sign * (mine - others)).clamp_min(-MARGIN_KAPPA).mean()
    raise ValueError(f"unknown loss {kind!r}: {', '.join(LOSSES)}")


def diverse_inputs(views: torch.Tensor, p: float, g: torch.Generator, low: float = 0.8) -> torch.Tensor:
    """(B, 3, S, S) -> (B, 3, S, S): with probability p a view is shrunk by a factor in [low, 1] and
    placed at a random offset on black (Xie et al. 2019, as one differentiable warp per view)."""
    b, dev = len(views), views.device
    shrink = low + (1 - low) * torch.rand(b, generator=g, device=dev)
    on = torch.rand(b, generator=g, device=dev) < p
    shrink = torch.where(on, shrink, torch.ones_like(shrink))
    shift = (1 - shrink)[:, None] * (2 * torch.rand(b, 2, generator=g, device=dev) - 1)
    theta = torch.zeros(b, 2, 3, device=dev)
    theta[:, 0, 0] = theta[:, 1, 1] = 1 / shrink  # output -> input coordinates
    theta[:, :, 2] = -shift / shrink[:, None]
    grid = F.affine_grid(theta, list(views.shape), align_corners=False)
    return F.grid_sample(views, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


@contextmanager
def ghost_networks(model: torch.nn.Module, p: float, g: torch.Generator):
    """Dropout of rate p on every Conv2d output of model while inside (Li et al. 2020). Models
    without Python Conv2d modules (TorchScript, torch.export) are left as they are."""
    if p <= 0:
        yield
        return

    def erode(module, inputs, out):
        keep = torch.rand(out.shape, generator=g, device=out.device) >= p
        return out * keep / (1 - p)

    hooks = [m.register_forward_hook(erode) for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    try:
        yield
    finally:
        for h in hooks:
            h.remove()
