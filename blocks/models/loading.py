"""Which source a `--model` name means, and loading it: the embedded EfficientNet-Lite models, the
bundled digits, `timm:NAME`, a saved model file, or else a torchvision name."""
from __future__ import annotations

import torch

from blocks.models.digits import LABELS as DIGITS_LABELS, load_digits
from blocks.models.device import pick_device
from blocks.models.embedded import LITE, load_lite
from blocks.models.exported import load_exported
from blocks.models.labels import imagenet_labels, read_labels
from blocks.models.spec import ModelSpec, is_model_file
from blocks.models.timm import load_timm, timm_config
from blocks.models.torchvision import load_torchvision, torchvision_builder
from blocks.models.wrappers import Classifier, Ensemble
from common.errors import UserError


def load_classifier(spec: ModelSpec, device: str | torch.device = "cpu") -> Classifier:
    device = pick_device(device) if isinstance(device, str) else device
    if spec.name == "digits":
        model = load_digits(spec)
    elif spec.name in LITE:
        model = load_lite(spec)
    elif spec.name.startswith("timm:"):
        model = load_timm(spec)
    elif is_model_file(spec.name):
        model = load_exported(spec)
    else:
        model = load_torchvision(spec)
    return model.eval().requires_grad_(False).to(device)


def load_models(specs: list[ModelSpec], device: str | torch.device = "cpu"):
    """One classifier, or an Ensemble of several sharing one class list."""
    device = pick_device(device) if isinstance(device, str) else device
    if len(specs) == 1:
        return load_classifier(specs[0], device)
    models = []
    for i, spec in enumerate(specs):
        try:
            models.append(load_classifier(spec, device))
        except UserError as e:  # say which member, keep one line
            raise UserError(f"model {i + 1} of {len(specs)} ({spec.name}): {e}") from None
    return Ensemble(models).eval()


def class_names(spec: ModelSpec) -> list[str]:
    """Class names without loading weights (so `blocks targets` answers offline)."""
    if spec.labels is not None:
        return read_labels(spec.labels)
    if spec.name == "digits":
        return list(DIGITS_LABELS)
    if spec.name in LITE:
        return imagenet_labels()
    if spec.name.startswith("timm:"):
        cfg = timm_config(spec.name[5:])
        if cfg.get("num_classes", 1000) == 1000:
            return imagenet_labels()
        raise UserError(f"model {spec.name} has {cfg['num_classes']} classes and no known names: pass labels FILE", "labels")
    if is_model_file(spec.name):
        return load_classifier(spec).labels
    from torchvision import models as tvm

    torchvision_builder(spec.name)
    try:
        return list(tvm.get_model_weights(spec.name).DEFAULT.meta["categories"])
    except (ValueError, AttributeError, KeyError):
        raise UserError(f"no class names known for model {spec.name!r}: pass labels FILE", "labels") from None
