"""deep-chicken-saviour: physical-world adversarial blocks.

    from blocks import ModelSpec, load_classifier, resolve_target
    from blocks.attacks import GenerateConfig, generate_patch
"""
from blocks.errors import UserError
from blocks.models import Classifier, ModelSpec, load_classifier, pick_device
from blocks.targets import Target, resolve_target, search_targets

__all__ = ["UserError", "Classifier", "ModelSpec", "load_classifier", "pick_device", "Target",
           "resolve_target", "search_targets"]
