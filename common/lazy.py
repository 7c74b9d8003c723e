"""Package attributes imported on first use (PEP 562), so that importing a package for its
light settings modules does not import torch with its heavy ones."""
from __future__ import annotations


def lazy(package: str, names: dict[str, str]):
    """A module-level __getattr__ for `package`: names maps each attribute to the module that
    defines it, imported when the attribute is first read."""

    def __getattr__(name: str):
        if name in names:
            import importlib

            return getattr(importlib.import_module(names[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
