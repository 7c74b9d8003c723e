"""deep-chicken-saviour: physical-world adversarial blocks.

    from blocks import ModelSpec, load_classifier, resolve_target, generate_patch, GenerateConfig
"""
from blocks.errors import UserError
from blocks.models import Classifier, ModelSpec, load_classifier, pick_device
from blocks.targets import Target, resolve_target, search_targets

__all__ = ["UserError", "Classifier", "ModelSpec", "load_classifier", "pick_device", "Target",
           "resolve_target", "search_targets"]
