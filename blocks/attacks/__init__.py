"""Attacks, one module (or package: onepixel) each, with its own settings dataclass and a function over tensors
(eot_fgsm: a step; blocks.attacks.driver: the loop around it).

Imported on first use: blocks.attacks.config (the generate settings, no torch) is read by the CLI
before torch is imported."""
from common.lazy import lazy

_LAZY = {"GenerateConfig": "blocks.attacks.config", "EotFgsm": "blocks.attacks.eot_fgsm",
         "GenerateResult": "blocks.attacks.eot_fgsm", "generate_patch": "blocks.attacks.driver",
         "OnePixelConfig": "blocks.attacks.onepixel", "OnePixelResult": "blocks.attacks.onepixel",
         "one_pixel_attack": "blocks.attacks.onepixel", "prepare_images": "blocks.attacks.onepixel"}

__all__ = list(_LAZY)


__getattr__ = lazy(__name__, _LAZY)
