"""`--model NAME` for a torchvision classifier (`resnet50`, ...): its default weights from the
torch.hub cache or a download, hash-checked and loaded as a plain state dict, or --weights."""
from __future__ import annotations

import urllib.error
from pathlib import Path

from blocks.models.embedded import LITE
from blocks.models.labels import read_labels
from blocks.models.spec import DEFAULT_MODEL, ModelSpec, triple
from blocks.models.weights import (apply_state, check_published_hash, download_checkpoint, load_state_dict,
                                   weights_cache_path)
from blocks.models.wrappers import IMAGENET_MEAN, IMAGENET_STD, Classifier
from common.errors import UserError, first_line
from common.files import sha256_file

EMBEDDED = (*LITE, "digits")  # named in the hint for an unknown model


def default_weights(name: str):
    """torchvision's DEFAULT weights enum for a model, or None if it has none."""
    from torchvision import models as tvm

    try:
        return tvm.get_model_weights(name).DEFAULT
    except (ValueError, AttributeError):
        return None


def load_torchvision(spec: ModelSpec) -> Classifier:
    builder = torchvision_builder(spec.name)
    default = default_weights(spec.name)
    labels = (read_labels(spec.labels) if spec.labels
              else list(default.meta["categories"]) if default is not None else None)
    if labels is None:
        raise UserError(f"model {spec.name} has no default class names: pass labels FILE", "labels")
    size = spec.input_size or crop_size(default)
    mean = triple(spec.mean, IMAGENET_MEAN, "mean")
    std = triple(spec.std, IMAGENET_STD, "std")

    if spec.weights:
        path = Path(spec.weights)
        state = load_state_dict(path)  # a bad file is one line before the net is built
        net = builder(weights=None, num_classes=len(labels))
        apply_state(net, state, path, spec.name, spec.labels)
        return Classifier(net, labels, size, mean, std, name=spec.name, weights_id=sha256_file(path))

    if default is None:
        raise UserError(f"model {spec.name} has no pretrained weights: pass weights FILE", "weights")
    net, weights_id = _with_default_weights(spec.name, builder, default)
    if labels is not default.meta["categories"] and len(labels) != len(default.meta["categories"]):
        raise UserError(f"labels has {len(labels)} names but {spec.name} default weights have "
                        f"{len(default.meta['categories'])} classes", "labels")
    return Classifier(net, labels, size, mean, std, name=spec.name, weights_id=weights_id)


def _with_default_weights(name: str, builder, default):
    """(net, weights id): the net with its published weights, from the torch.hub cache (downloaded
    once). Never torchvision's get_state_dict: the file must match its published hash and hold
    only tensors."""
    net = builder(weights=None, num_classes=len(default.meta["categories"]))
    cached = weights_cache_path(default.url)
    try:
        if not cached.exists():
            download_checkpoint(default.url, cached)
    except (urllib.error.URLError, OSError, ConnectionError, RuntimeError) as e:
        reason = getattr(e, "reason", None) or first_line(e)
        raise UserError(
            f"cannot download {name} weights ({reason}); put {Path(default.url).name} in "
            f"{cached.parent}, or give weights=FILE (a state dict) or model={DEFAULT_MODEL} (embedded ImageNet, offline)",
            param=("weights", "model")) from None
    check_published_hash(cached)
    apply_state(net, load_state_dict(cached), cached, name)
    return net, sha256_file(cached) if cached.is_file() else str(default)


def torchvision_builder(name: str):
    """torchvision's builder for name; an unknown name is one line with the closest names."""
    from torchvision import models as tvm

    try:
        return tvm.get_model_builder(name)
    except ValueError:
        import difflib

        names = tvm.list_models(module=tvm)
        close = difflib.get_close_matches(name, names + list(EMBEDDED), n=4)
        hint = f"; did you mean: {', '.join(close)}?" if close else ""
        raise UserError(f"unknown model {name!r}: use {DEFAULT_MODEL} (embedded), a torchvision "
                        f"classifier (resnet50, ...), timm:NAME, a .pt2/TorchScript file, or "
                        f"digits{hint}") from None


def crop_size(weights) -> int:
    """The input side torchvision's weights were evaluated at (224 if it does not say)."""
    try:
        return int(weights.transforms().crop_size[0])
    except Exception:
        return 224
