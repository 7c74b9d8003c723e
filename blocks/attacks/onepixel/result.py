"""What the one-pixel attack returns: one row per image, and its JSON forms (a record per
image, the summary of a run)."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from blocks.attacks.onepixel.config import OnePixelConfig
from common.goal import Goal


@dataclass
class OnePixelResult:
    """What the attack found, one row per image (N images, C classes, K pixels)."""

    originals: torch.Tensor  # (N, 3, H, W) in [0, 1], the images attacked
    adv: torch.Tensor  # (N, 3, H, W) in [0, 1], the original with the best candidate written in
    success: torch.Tensor  # (N,) bool: prediction != true class (untargeted) or == target
    true_class: torch.Tensor  # (N,) int64: the given label, or the clean prediction
    target: torch.Tensor | None  # (N,) int64 for a targeted attack, else None
    probs_before: torch.Tensor  # (N, C) softmax on the clean image
    probs_after: torch.Tensor  # (N, C) softmax on the adversarial image
    pixels: torch.Tensor  # (N, K, 5) int64: x (column), y (row), r, g, b in 0..255 as written
    queries: torch.Tensor  # (N,) int64: model evaluations spent on each image (clean one included)
    generations: torch.Tensor  # (N,) int64: DE generations (probe/random: scoring rounds) run
    seconds: float = 0.0
    config: OnePixelConfig = field(default_factory=OnePixelConfig)
    interrupted: bool = False  # a Ctrl-C (or SIGTERM) stopped the search: see finished
    finished: torch.Tensor | None = None  # (N,) bool: the image's search had ended (won or budget spent)

    @property
    def targeted(self) -> bool:
        return self.target is not None

    def subset(self, idx: torch.Tensor) -> "OnePixelResult":
        """The rows idx (e.g. the finished images of an interrupted run)."""
        pick = lambda t: None if t is None else t[idx]  # noqa: E731
        return OnePixelResult(originals=self.originals[idx], adv=self.adv[idx], success=self.success[idx],
                              true_class=self.true_class[idx], target=pick(self.target),
                              probs_before=self.probs_before[idx], probs_after=self.probs_after[idx],
                              pixels=self.pixels[idx], queries=self.queries[idx],
                              generations=self.generations[idx], seconds=self.seconds, config=self.config,
                              interrupted=self.interrupted, finished=pick(self.finished))

    def record(self, i: int, labels: list[str] | None = None) -> dict:
        """A JSON-ready description of image i."""
        name = (lambda c: labels[c] if labels and 0 <= c < len(labels) else str(c))
        pb, pa = self.probs_before[i], self.probs_after[i]
        t = int(self.true_class[i])

        def state(p: torch.Tensor) -> dict:
            c = int(p.argmax())
            out = {"class": name(c), "index": c, "prob": float(p[c]), "true_prob": float(p[t])}
            if self.target is not None:
                out["target_prob"] = float(p[int(self.target[i])])
            return out

        return {
            "success": bool(self.success[i]),
            "targeted": self.targeted,
            "target": (Goal(int(self.target[i]), True, name(int(self.target[i]))).to_json()
                       if self.target is not None else None),
            "true_class": {"index": t, "class": name(t)},
            "before": state(pb),
            "after": state(pa),
            "pixels": [{"x": int(p[0]), "y": int(p[1]), "rgb": [int(p[2]), int(p[3]), int(p[4])]}
                       for p in self.pixels[i].tolist()],
            "queries": int(self.queries[i]),
            # DE counts generations; the searches (probe, random) scoring rounds
            ("generations" if self.config.is_de else "rounds"): int(self.generations[i]),
        }

    def summary(self) -> dict:
        """images, success_rate, mean_confidence (probability of the adversarial class over the
        successful images, the paper's 'confidence'; None when none succeeded), mean_queries,
        max_queries (the budget per image), seconds."""
        n = int(self.success.numel())
        ok = self.success
        conf = self.probs_after.max(1).values[ok]
        return {
            "images": n,
            "successes": int(ok.sum()),
            "success_rate": float(ok.float().mean()) if n else 0.0,
            "mean_confidence": float(conf.mean()) if conf.numel() else None,
            "mean_queries": float(self.queries.float().mean()) if n else 0.0,
            "max_queries": self.config.budget_for(self.originals.shape[-2] * self.originals.shape[-1]),
            "fitness": self.config.fitness_used,
            "seconds": round(self.seconds, 3),
            "targeted": self.targeted,
            "strategy": self.config.strategy,
            "pixels": self.config.pixels,
            # DE's own settings, only where DE ran (a probe or random search has no population)
            "popsize": self.config.popsize if self.config.is_de else None,
            "maxiter": self.config.maxiter if self.config.is_de else None,
        }
