"""Class names: a labels file (one name per line), or ImageNet's, which torchvision ships."""
from __future__ import annotations

from pathlib import Path

from common.errors import UserError

DIGITS_LABELS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]  # the bundled toy's classes


def read_labels(path: Path) -> list[str]:
    from common.inputs import read_input_text

    lines = read_input_text(path, "labels file").splitlines()
    labels = [line.strip() for line in lines if line.strip()]
    if not labels:
        raise UserError(f"labels file {path} has no class names (one per line)")
    if len(labels) > 100_000:
        raise UserError(f"labels file {path} has {len(labels)} class names; at most 100000")
    return labels


def imagenet_labels() -> list[str]:
    """The 1000 ImageNet class names in the usual order (shipped with torchvision, no download).
    Read from torchvision's source as a literal, without importing it: importing torchvision
    imports torch, seconds that a misspelt --target should not wait for."""
    import ast
    import importlib.util

    spec = importlib.util.find_spec("torchvision")  # a top-level package: found, not imported
    meta = Path(spec.origin).parent / "models" / "_meta.py" if spec and spec.origin else None
    try:
        tree = ast.parse(meta.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.Assign) and [getattr(t, "id", "") for t in node.targets] == ["_IMAGENET_CATEGORIES"]:
                names = ast.literal_eval(node.value)
                if len(names) == 1000:
                    return list(names)
    except (AttributeError, OSError, SyntaxError, ValueError):
        pass
    from torchvision.models import ResNet50_Weights  # torchvision laid out otherwise: the slow way

    return list(ResNet50_Weights.DEFAULT.meta["categories"])
