"""What an attack wants of the model: one class index, to become it (targeted) or to stop being
it (untargeted). The loss, the win test and the probability live here once, for generate,
evaluate and capture alike.

Shapes: logits and probs (B, C); loss a scalar; wins and prob (B,).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from common.errors import UserError


@dataclass(frozen=True)
class Goal:
    index: int
    targeted: bool = True
    name: str = ""
    alternatives: tuple = field(default=(), compare=False)

    @property
    def mode(self) -> str:
        return "targeted" if self.targeted else "untargeted"

    @property
    def target(self) -> int | None:
        """The class to become, or None (the two-Optional-ints form GenerateConfig records)."""
        return self.index if self.targeted else None

    @property
    def away_from(self) -> int | None:
        return None if self.targeted else self.index

    @staticmethod
    def of(target, away_from: int | None = None) -> "Goal":
        """A Goal from a Goal, or from exactly one of target (become it) / away_from (stop being it)."""
        if isinstance(target, Goal):
            return target
        if (target is None) == (away_from is None):
            raise UserError("give exactly one of target (become it) or away_from (stop being it)")
        return Goal(int(target), True) if target is not None else Goal(int(away_from), False)

    def loss(self, logits: torch.Tensor) -> torch.Tensor:
        """Cross-entropy to descend: towards the class, or (negated) away from it."""
        labels = torch.full((len(logits),), self.index, device=logits.device)
        ce = F.cross_entropy(logits, labels)
        return ce if self.targeted else -ce

    def wins(self, logits: torch.Tensor) -> torch.Tensor:
        """(B,) bool: top-1 is the class (targeted), or is not it (untargeted)."""
        top = logits.argmax(1) == self.index
        return top if self.targeted else ~top

    def hits(self, probs: torch.Tensor, threshold: float = 0.0) -> torch.Tensor:
        """(B,) bool from probabilities: a win, and (targeted) with at least `threshold` probability."""
        won = self.wins(probs)  # softmax keeps the argmax
        return won & (probs[:, self.index] >= threshold) if self.targeted else won

    def prob(self, probs: torch.Tensor) -> torch.Tensor:
        """(B,) the objective probability: p(class), or 1 - p(class)."""
        p = probs[:, self.index]
        return p if self.targeted else 1 - p

    def in_top(self, probs: torch.Tensor, k: int = 5) -> torch.Tensor:
        """(B,) bool: the class is in the top k (targeted), or out of it (untargeted)."""
        inside = (probs.topk(min(k, probs.shape[1]), dim=1).indices == self.index).any(1)
        return inside if self.targeted else ~inside
