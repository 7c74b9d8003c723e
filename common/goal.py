"""What an attack wants of the model: one class index, to become it (targeted) or to stop being
it (untargeted). The one target type of the tool: the loss, the win test and the probability live
here once, for generate, evaluate and capture alike, and so does its JSON form, the same object
under "target" in patch.json, sheet.json blocks, sweep.json, capture's and one-pixel's summaries.

Shapes: logits and probs (B, C); loss a scalar; wins and prob (B,).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from common.errors import UserError

if TYPE_CHECKING:  # torch is imported where a method needs it: reading a record must not pay for it
    import torch

MODES = ("targeted", "untargeted")


@dataclass(frozen=True)
class Goal:
    """index: the class (None only in files older than the index was recorded); name: its label;
    alternatives: other classes the word the user typed also names (chicken: hen, then cock)."""

    index: int | None
    targeted: bool = True
    name: str = ""
    alternatives: list = field(default_factory=list, compare=False)
    extra: dict = field(default_factory=dict, repr=False, compare=False, hash=False)  # unknown keys, kept

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

    def label(self) -> str:
        """How a caption or a line names it: the class name, else its index."""
        return self.name or (f"#{self.index}" if self.index is not None else "?")

    def to_json(self) -> dict:
        return {**self.extra, "index": self.index, "name": self.name or None, "mode": self.mode,
                "alternatives": list(self.alternatives)}

    @classmethod
    def from_json(cls, d) -> "Goal":
        """The JSON form, or an older shape: a bare name or index (early patch.json), {index, class}
        (one-pixel), {index, name} (sweep.json). TypeError/ValueError on anything else."""
        if isinstance(d, str):
            return cls(None, True, d)
        if isinstance(d, int) and not isinstance(d, bool):
            return cls(d)
        if not isinstance(d, dict):
            raise TypeError(f"a target must be an object, not {type(d).__name__}")
        index, mode, alternatives = d.get("index"), d.get("mode") or "targeted", d.get("alternatives") or []
        name = d.get("name", d.get("class")) or ""
        if index is not None and (isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < 10**9):
            raise ValueError(f"index must be a class index from 0, not {index!r}")
        if not isinstance(name, str):
            raise ValueError(f"name must be text, not {name!r}")
        if mode not in MODES:
            raise ValueError(f"mode must be {' or '.join(MODES)}, not {mode!r}")
        if not isinstance(alternatives, list) or not all(isinstance(a, str) for a in alternatives):
            raise ValueError("alternatives must be a list of class names")
        extra = {k: v for k, v in d.items() if k not in ("index", "name", "class", "mode", "alternatives")}
        return cls(index, mode == "targeted", name, list(alternatives), extra)

    @classmethod
    def from_flat(cls, name, index, mode) -> "Goal | None":
        """The flat target/target_index/target_mode fields older sheet.json blocks and capture
        summaries held; None when they name no target."""
        if name is None and index is None:
            return None
        return cls.from_json({"index": index, "name": name, "mode": mode})

    def loss(self, logits: torch.Tensor) -> torch.Tensor:
        """Cross-entropy to descend: towards the class, or (negated) away from it."""
        import torch
        import torch.nn.functional as F

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
