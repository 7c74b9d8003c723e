"""`blocks models`: what runs with no network right now, found without loading any model: the
embedded and bundled models, and every torchvision or timm model whose weights are already in
the local caches."""
from __future__ import annotations

import importlib.util

from blocks.models.digits import INPUT_SIZE as DIGITS_SIZE, LABELS as DIGITS_LABELS
from blocks.models.embedded import LITE, lite_module
from blocks.models.timm import timm_config
from blocks.models.torchvision import crop_size, default_weights
from blocks.models.weights import weights_cache_path
from common.errors import UserError


def offline_models() -> list[dict]:
    """One {model, source, input_size, num_classes} per model that runs offline."""
    found = [{"model": name, "source": "embedded", "input_size": size, "num_classes": 1000}
             for name, size in LITE.items() if importlib.util.find_spec(lite_module(name))]
    found.append({"model": "digits", "source": "bundled", "input_size": DIGITS_SIZE,
                  "num_classes": len(DIGITS_LABELS)})
    return found + _cached_torchvision() + _cached_timm()


def _cached_torchvision() -> list[dict]:
    from torchvision import models as tvm

    found = []
    for name in tvm.list_models(module=tvm):
        default = default_weights(name)
        if default is not None and weights_cache_path(default.url).is_file():
            found.append({"model": name, "source": "cached", "input_size": crop_size(default),
                          "num_classes": len(default.meta["categories"])})
    return found


def _cached_timm() -> list[dict]:
    try:
        from huggingface_hub import scan_cache_dir

        repos = [r.repo_id for r in scan_cache_dir().repos if r.repo_id.startswith("timm/")]
    except Exception:  # no cache folder yet, or an older huggingface_hub
        repos = []
    found = []
    for repo in sorted(repos):
        arch = repo.split("/", 1)[1]
        try:
            cfg = timm_config(arch)
        except UserError:
            continue
        found.append({"model": f"timm:{arch}", "source": "cached",
                      "input_size": int(cfg.get("input_size", (3, 224, 224))[-1]),
                      "num_classes": int(cfg.get("num_classes", 1000))})
    return found
