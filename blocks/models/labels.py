"""Class names: a labels file (one name per line), or ImageNet's, which torchvision ships."""
from __future__ import annotations

from pathlib import Path

from common.errors import UserError


def read_labels(path: Path) -> list[str]:
    from common.inputs import read_input_text

    lines = read_input_text(path, "labels file").splitlines()
    labels = [line.strip() for line in lines if line.strip()]
    if not labels:
        raise UserError(f"labels file {path} has no class names (one per line)")
    if len(labels) > 100_000:
        raise UserError(f"labels file {path} has {len(labels)} class names; at most 100000")
    return labels


def imagenet_labels() -> list[str]:
    """The 1000 ImageNet class names in the usual order (shipped with torchvision, no download)."""
    from torchvision.models import ResNet50_Weights

    return list(ResNet50_Weights.DEFAULT.meta["categories"])
