"""What the model flags describe (`ModelSpec`), before anything is loaded, and the rules every
source shares for reading it: which names are files, and a flag's mean/std over the source's own."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from blocks.models.default import DEFAULT_MODEL
from common.errors import UserError
# the embedded ImageNet models and their input sides (embedded.py loads them); here, torch-free, so a
# misspelt target is answered before torch is imported (blocks.targets.goals_before_loading)
LITE = {"efficientnet_lite0": 224, "efficientnet_lite1": 240, "efficientnet_lite2": 260}
EXPORT_SUFFIXES = (".pt2", ".ts", ".torchscript", ".jit", ".pt", ".pth")


@dataclass
class ModelSpec:
    """What `[model flags]` on the command line describe."""

    name: str = DEFAULT_MODEL
    weights: Path | None = None  # a state dict file; None = the builder's default weights
    labels: Path | None = None  # one class name per line; sets the number of classes
    input_size: int | None = None
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None


def is_model_file(name: str) -> bool:
    """A saved whole model (export or TorchScript) rather than a library name."""
    return name.lower().endswith(EXPORT_SUFFIXES) or "/" in name or Path(name).is_file()


def triple(values, default, name: str) -> tuple[float, float, float]:
    """The spec's mean or std (name: "mean" or "std") if it gave one, else the source's default."""
    if values is None:
        return tuple(default)
    values = tuple(float(v) for v in values)
    if len(values) != 3:
        raise UserError(f"{name} needs three numbers R,G,B", param=name)
    return values
