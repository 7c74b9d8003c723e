"""Attacks, one module (or package: onepixel) each, with its own settings dataclass and a function over tensors.

Imported on first use: blocks.attacks.config (the generate settings, no torch) is read by the CLI
before torch is imported."""

_LAZY = {"GenerateConfig": "blocks.attacks.config", "Experimental": "blocks.attacks.config",
         "GenerateResult": "blocks.attacks.eot_fgsm", "generate_patch": "blocks.attacks.eot_fgsm",
         "OnePixelConfig": "blocks.attacks.onepixel", "OnePixelResult": "blocks.attacks.onepixel",
         "one_pixel_attack": "blocks.attacks.onepixel", "prepare_images": "blocks.attacks.onepixel"}

__all__ = list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'blocks.attacks' has no attribute {name!r}")
