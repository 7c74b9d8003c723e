"""Attacks, one module (or package: onepixel) each, with its own settings dataclass and a function over tensors."""
from blocks.attacks.eot_fgsm import GenerateConfig, GenerateResult, generate_patch
from blocks.attacks.onepixel import OnePixelConfig, OnePixelResult, one_pixel_attack, prepare_images

__all__ = ["GenerateConfig", "GenerateResult", "generate_patch", "OnePixelConfig", "OnePixelResult",
           "one_pixel_attack", "prepare_images"]
