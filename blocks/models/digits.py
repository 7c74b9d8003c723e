"""The bundled offline model (`--model digits`): a small CNN on scikit-learn's 8x8 digits,
upsampled to 32x32 RGB, its data and its loader.

Digits are drawn as dark ink on white paper, the way they would be printed. The split is fixed
(seeded), so the held-out images used by tests and benchmarks never touched training.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from blocks.models.labels import DIGITS_LABELS, read_labels
from blocks.models.spec import ModelSpec, triple
from blocks.models.weights import apply_state, load_state_dict
from blocks.models.wrappers import Classifier
from common.files import sha256_file

LABELS = DIGITS_LABELS
INPUT_SIZE = 32
SPLIT_SEED = 0
HELD_OUT_FRACTION = 0.25


class DigitsNet(nn.Module):
    """(B, 3, 32, 32) normalised RGB -> (B, 10) logits."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        )
        self.head = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))


def load_digits_rgb(split: str = "test", size: int = INPUT_SIZE) -> tuple[torch.Tensor, torch.Tensor]:
    """images: (N, 3, size, size) in [0, 1] (dark ink on white; size 8 is the native data), labels:
    (N,) int64.

    split: "train", "test" (held out) or "all". Needs scikit-learn, which bundles the data.
    """
    from sklearn.datasets import load_digits

    data = load_digits()
    ink = torch.tensor(data.images, dtype=torch.float32) / 16.0  # (N, 8, 8), 1 = ink
    images = F.interpolate(ink[:, None], size=size, mode="bilinear", align_corners=False)
    images = (1.0 - images).clamp(0, 1).expand(-1, 3, -1, -1).contiguous()
    labels = torch.tensor(data.target, dtype=torch.int64)
    g = torch.Generator().manual_seed(SPLIT_SEED)
    order = torch.randperm(len(labels), generator=g)
    n_test = int(len(labels) * HELD_OUT_FRACTION)
    if split == "test":
        idx = order[:n_test]
    elif split == "train":
        idx = order[n_test:]
    elif split == "all":
        idx = order
    else:
        raise ValueError(f"split must be train, test or all, not {split!r}")
    return images[idx], labels[idx]


def bundled_digits_path() -> Path:
    return Path(str(resources.files("blocks") / "data" / "digits.pt"))


def load_digits(spec: ModelSpec) -> Classifier:
    labels = read_labels(spec.labels) if spec.labels else LABELS
    net = DigitsNet(num_classes=len(labels))
    path = Path(spec.weights) if spec.weights else bundled_digits_path()
    apply_state(net, load_state_dict(path), path, "digits", spec.labels)
    # The bundled net was trained on [0, 1] inputs with mean 0.5, std 0.5.
    return Classifier(net, labels, spec.input_size or INPUT_SIZE,
                      triple(spec.mean, (0.5, 0.5, 0.5), "mean"),
                      triple(spec.std, (0.5, 0.5, 0.5), "std"),
                      name="digits", weights_id=sha256_file(path))
