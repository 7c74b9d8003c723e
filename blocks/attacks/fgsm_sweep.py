"""The original project's single-step FGSM line search: class probabilities against epsilon.

x' = clip(x + eps * sign(grad CE(target))): negative eps steps down the target's loss (towards
the target), positive eps steps away from it. All epsilons are evaluated in one batch.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F



@dataclass
class Sweep:
    epsilons: list[float]
    probs: torch.Tensor  # (E, C) class probabilities at each epsilon
    target: int
    best_epsilon: float  # the epsilon with the highest target probability
    best_target_prob: float
    clean_top1: int

    def classes_to_show(self, k: int = 5) -> list[int]:
        """The target, the clean top-1, and the classes that peak highest anywhere."""
        peaks = self.probs.max(0).values
        order = [self.target, self.clean_top1] + peaks.argsort(descending=True).tolist()
        return list(dict.fromkeys(order))[:k]


def epsilon_sweep(model, image: torch.Tensor, target: int, epsilons: list[float],
                  batch: int = 64) -> Sweep:
    """image: (3, H, W) in [0, 1], resized by the model as needed."""
    x = image.to(model.device)[None].requires_grad_(True)
    logits = model(x)
    loss = F.cross_entropy(logits, torch.tensor([target], device=x.device))
    (grad,) = torch.autograd.grad(loss, x)
    step = grad.sign()
    eps = torch.tensor(epsilons, device=x.device, dtype=x.dtype)
    probs = []
    with torch.no_grad():
        for chunk in eps.split(batch):
            adv = (x + chunk.view(-1, 1, 1, 1) * step).clamp(0, 1)
            probs.append(model(adv).softmax(1).cpu())
    probs = torch.cat(probs)
    best = int(probs[:, target].argmax())
    return Sweep(list(map(float, epsilons)), probs, target, float(epsilons[best]),
                 float(probs[best, target]), int(logits.argmax(1)))
