"""The model types every command runs: `Classifier` (one network that takes RGB in [0, 1] at any
size and normalises itself) and `Ensemble` (several judged as one)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from common.errors import UserError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _channels_last(net: nn.Module) -> nn.Module:
    """The network's 4-d weights in channels-last order where it has any (a whole-model file may not)."""
    try:
        return net.to(memory_format=torch.channels_last)
    except (TypeError, RuntimeError, AttributeError):
        return net


class Classifier(nn.Module):
    """x: (B, 3, H, W) RGB in [0, 1] -> logits (B, C). Resizes to input_size, then normalises."""

    def __init__(self, net: nn.Module, labels: list[str], input_size: int,
                 mean=IMAGENET_MEAN, std=IMAGENET_STD, name: str = "", weights_id: str = ""):
        super().__init__()
        self.net = _channels_last(net)  # faster forward and backward on CPU (docs/models.md)
        self.labels = list(labels)
        self.input_size = int(input_size)
        self.name = name
        self.weights_id = weights_id  # sha256 of the weights file, or the torchvision enum name
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.input_size, self.input_size):
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear",
                              align_corners=False, antialias=True)
        return self.net(((x - self.mean) / self.std).contiguous(memory_format=torch.channels_last))

    @property
    def device(self) -> torch.device:
        return self.mean.device

    def describe(self) -> dict:
        return {"model": self.name, "weights": self.weights_id, "num_classes": len(self.labels),
                "input_size": self.input_size, "mean": self.mean.flatten().tolist(),
                "std": self.std.flatten().tolist()}


class Ensemble(nn.Module):
    """Several classifiers judged as one (Brown et al. 2017 trained patches on an ensemble).

    x: (B, 3, H, W) RGB in [0, 1] -> (B, C): the mean of the members' log-probabilities, each
    member at its own input size and normalisation. Cross-entropy on it is the members' mean
    cross-entropy up to a renormalising term, and its argmax is the members' consensus.
    """

    def __init__(self, members: list[Classifier]):
        super().__init__()
        first = members[0]
        check_same_classes([(m.name, m.labels) for m in members])
        self.members = nn.ModuleList(members)
        self.labels = list(first.labels)
        self.input_size = max(m.input_size for m in members)  # views are rendered once, at the largest
        self.name = "+".join(m.name for m in members)
        self.weights_id = ",".join(m.weights_id for m in members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(x).log_softmax(1) for m in self.members]).mean(0)

    @property
    def device(self) -> torch.device:
        return self.members[0].device

    def describe(self) -> dict:
        return {"model": self.name, "members": [m.describe() for m in self.members],
                "num_classes": len(self.labels), "input_size": self.input_size}


def check_same_classes(named: list[tuple[str, list[str]]]) -> None:
    """named: (model name, class names) per member; an ensemble needs one class list."""
    first_name, first = named[0]
    for name, labels in named[1:]:
        if [n.lower() for n in labels] != [n.lower() for n in first]:
            diff = next((i for i, (a, b) in enumerate(zip(first, labels)) if a.lower() != b.lower()),
                        min(len(first), len(labels)))
            at = (f"class {diff} is {first[diff] if diff < len(first) else 'missing'!r} in {first_name} but "
                  f"{labels[diff] if diff < len(labels) else 'missing'!r} in {name}")
            raise UserError(f"models disagree on their classes: {first_name} has {len(first)}, {name} has "
                            f"{len(labels)} ({at}); give every member the same labels file")


def members(model) -> list[Classifier]:
    """The classifiers inside a model: an Ensemble's members, or the model itself."""
    return list(model.members) if isinstance(model, Ensemble) else [model]
