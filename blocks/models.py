"""Loading classifiers: torchvision builders with their weights, a state-dict file, or the bundled
digits model. Every model is wrapped so it takes RGB in [0, 1] at any size and normalises itself.
"""
from __future__ import annotations

import urllib.error
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from blocks.errors import UserError
from blocks.files import sha256_file

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class ModelSpec:
    """What `[model flags]` on the command line describe."""

    name: str = "resnet50"
    weights: Path | None = None  # a state dict file; None = the builder's default weights
    labels: Path | None = None  # one class name per line; sets the number of classes
    input_size: int | None = None
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None


class Classifier(nn.Module):
    """x: (B, 3, H, W) RGB in [0, 1] -> logits (B, C). Resizes to input_size, then normalises."""

    def __init__(self, net: nn.Module, labels: list[str], input_size: int,
                 mean=IMAGENET_MEAN, std=IMAGENET_STD, name: str = "", weights_id: str = ""):
        super().__init__()
        self.net = net
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
        return self.net((x - self.mean) / self.std)

    @property
    def device(self) -> torch.device:
        return self.mean.device

    def describe(self) -> dict:
        return {"model": self.name, "weights": self.weights_id, "num_classes": len(self.labels),
                "input_size": self.input_size, "mean": self.mean.flatten().tolist(),
                "std": self.std.flatten().tolist()}


def pick_device(name: str = "auto") -> torch.device:
    """"auto" -> CUDA, then MPS, then CPU; anything else is passed to torch.device."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown device {name!r}: use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda asked for, but no CUDA GPU is available (try --device auto)")
    return device


def load_classifier(spec: ModelSpec, device: str | torch.device = "cpu") -> Classifier:
    device = pick_device(device) if isinstance(device, str) else device
    if spec.name == "digits":
        model = _load_digits(spec)
    else:
        model = _load_torchvision(spec)
    return model.eval().requires_grad_(False).to(device)


def read_labels(path: Path) -> list[str]:
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read labels file {path}: {getattr(e, 'strerror', None) or e}") from None
    labels = [line.strip() for line in lines if line.strip()]
    if not labels:
        raise UserError(f"labels file {path} has no class names (one per line)")
    return labels


def load_state_dict(path: Path) -> dict:
    """Load a state dict without executing code (weights_only=True)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"weights file not found: {path}")
    import warnings

    try:
        with warnings.catch_warnings():  # torch warns about legacy pickles before it fails: one line is ours
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle errors, zip errors, refused globals: all mean "not a state dict"
        raise UserError(f"cannot load weights {path}: not a plain PyTorch state dict ({_load_reason(e)})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"cannot load weights {path}: the file holds no state dict of tensors")
    return state


def _load_reason(e: Exception) -> str:
    """The useful part of torch.load's error, whole: torch's texts run to paragraphs of advice."""
    import pickle
    import re

    text = str(e)
    refused = re.search(r"unsupported global:? (?:GLOBAL )?([\w.]+)", text, re.IGNORECASE)
    if refused:
        return f"it would run code ({refused.group(1)}); refused, nothing was executed"
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if lines and lines[0].startswith("Weights only load failed"):
        # torch's advice paragraph first, the actual reason on a line of its own after it
        detail = [ln for ln in lines[1:] if not ln.startswith(("Please file", "Check the documentation"))]
        return f"a pickle torch refuses: {detail[0]}" if detail else "a pickle torch refuses"
    if not isinstance(e, (RuntimeError, pickle.UnpicklingError)) or not lines:  # e.g. KeyError('101')
        return "not a pickle or zip file torch can read"
    first = lines[0]
    sentence = re.split(r"(?<=[.!?])\s", first)[0]
    return sentence if len(sentence) <= 200 else sentence[:sentence.rfind(" ", 0, 200)] + " ..."


def _classes_in(state: dict) -> int | None:
    """Outputs of the last layer stored in a state dict (its last weight's first dimension)."""
    weights = [v for k, v in state.items() if k.endswith("weight") and v.ndim >= 1]
    return int(weights[-1].shape[0]) if weights else None


def _apply_state(net: nn.Module, state: dict, path: Path, arch: str, labels: Path | None = None) -> None:
    want = _classes_in(net.state_dict())
    have = _classes_in(state)
    if labels is not None and want is not None and have is not None and want != have:
        # the head was built for the labels file, so the labels file is what does not fit
        raise UserError(f"--labels {labels} has {want} names but the weights {path} have {have} classes")
    try:
        net.load_state_dict(state)
    except RuntimeError as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        detail = lines[1] if len(lines) > 1 else lines[0] if lines else ""
        raise UserError(f"weights {path} do not fit --model {arch}: {detail[:200]}") from None


def _triple(values, default, flag) -> tuple[float, float, float]:
    if values is None:
        return tuple(default)
    values = tuple(float(v) for v in values)
    if len(values) != 3:
        raise UserError(f"{flag} needs three numbers R,G,B")
    return values


def bundled_digits_path() -> Path:
    return Path(str(resources.files("blocks") / "data" / "digits.pt"))


def _load_digits(spec: ModelSpec) -> Classifier:
    from blocks import digits

    labels = read_labels(spec.labels) if spec.labels else digits.LABELS
    net = digits.DigitsNet(num_classes=len(labels))
    path = Path(spec.weights) if spec.weights else bundled_digits_path()
    _apply_state(net, load_state_dict(path), path, "digits", spec.labels)
    # The bundled net was trained on [0, 1] inputs with mean 0.5, std 0.5.
    return Classifier(net, labels, spec.input_size or digits.INPUT_SIZE,
                      _triple(spec.mean, (0.5, 0.5, 0.5), "--mean"),
                      _triple(spec.std, (0.5, 0.5, 0.5), "--std"),
                      name="digits", weights_id=sha256_file(path))


def _load_torchvision(spec: ModelSpec) -> Classifier:
    from torchvision import models as tvm

    try:
        builder = tvm.get_model_builder(spec.name)
    except ValueError:
        import difflib

        names = tvm.list_models(module=tvm)
        close = difflib.get_close_matches(spec.name, names, n=4)
        hint = f"; did you mean: {', '.join(close)}?" if close else ""
        raise UserError(f"unknown model {spec.name!r}: use a torchvision classification model "
                        f"(resnet50, mobilenet_v3_small, ...) or 'digits'{hint}") from None
    try:
        default = tvm.get_model_weights(spec.name).DEFAULT
    except (ValueError, AttributeError):
        default = None
    labels = (read_labels(spec.labels) if spec.labels
              else list(default.meta["categories"]) if default is not None else None)
    if labels is None:
        raise UserError(f"model {spec.name} has no default class names: pass --labels FILE")
    size = spec.input_size or _crop_size(default)
    mean = _triple(spec.mean, IMAGENET_MEAN, "--mean")
    std = _triple(spec.std, IMAGENET_STD, "--std")

    if spec.weights:
        net = builder(weights=None, num_classes=len(labels))
        path = Path(spec.weights)
        _apply_state(net, load_state_dict(path), path, spec.name, spec.labels)
        return Classifier(net, labels, size, mean, std, name=spec.name, weights_id=sha256_file(path))

    if default is None:
        raise UserError(f"model {spec.name} has no pretrained weights: pass --weights FILE")
    net = builder(weights=None, num_classes=len(default.meta["categories"]))
    cached = weights_cache_path(default.url)
    try:
        # torchvision's own loader: reads the cache, downloads once when missing.
        state = default.get_state_dict(progress=True, check_hash=False)
    except (urllib.error.URLError, OSError, ConnectionError) as e:
        reason = getattr(e, "reason", None) or e
        raise UserError(
            f"cannot download {spec.name} weights ({reason}); put {Path(default.url).name} in "
            f"{cached.parent}, or use --weights FILE (a state dict) or --model digits (bundled, offline)"
        ) from None
    net.load_state_dict(state)
    if labels is not default.meta["categories"] and len(labels) != len(default.meta["categories"]):
        raise UserError(f"--labels has {len(labels)} names but {spec.name} default weights have "
                        f"{len(default.meta['categories'])} classes")
    weights_id = sha256_file(cached) if cached.is_file() else str(default)
    return Classifier(net, labels, size, mean, std, name=spec.name, weights_id=weights_id)


def weights_cache_path(url: str) -> Path:
    """Where torch.hub keeps a downloaded checkpoint: $TORCH_HOME/hub/checkpoints/<basename>."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name


def _crop_size(weights) -> int:
    try:
        return int(weights.transforms().crop_size[0])
    except Exception:
        return 224
