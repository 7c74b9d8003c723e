"""`--model timm:NAME`: any timm classifier. Its pretrained config gives the input size, mean,
std and class count; the weights come from --weights, the local caches, or the hub."""
from __future__ import annotations

from pathlib import Path

from blocks.models.archive import inspect_archive
from blocks.models.labels import imagenet_labels, read_labels
from blocks.models.spec import DEFAULT_MODEL, ModelSpec, triple
from blocks.models.weights import apply_state, load_state_dict, weights_cache_path
from blocks.models.wrappers import IMAGENET_MEAN, IMAGENET_STD, Classifier
from common.errors import UserError, first_line
from common.files import sha256_file


def timm_config(arch: str) -> dict:
    """timm's pretrained config for arch, as a dict (empty if it has none)."""
    import timm

    if not arch or not timm.is_model(arch):
        import difflib

        close = difflib.get_close_matches(arch, timm.list_models(), n=4)
        hint = f"; did you mean: {', '.join('timm:' + c for c in close)}?" if close else ""
        raise UserError(f"unknown timm model {arch!r}{hint}")
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(arch)
    return cfg.to_dict() if cfg is not None else {}


def load_timm(spec: ModelSpec) -> Classifier:
    import timm

    arch = spec.name[5:]
    cfg = timm_config(arch)
    labels = (read_labels(spec.labels) if spec.labels
              else imagenet_labels() if cfg.get("num_classes", 1000) == 1000 else None)
    if labels is None:
        raise UserError(f"model {spec.name} has {cfg['num_classes']} classes and no known names: pass labels FILE", "labels")
    size = spec.input_size or int(cfg.get("input_size", (3, 224, 224))[-1])
    mean = triple(spec.mean, cfg.get("mean", IMAGENET_MEAN), "mean")
    std = triple(spec.std, cfg.get("std", IMAGENET_STD), "std")
    if spec.weights:
        net = timm.create_model(arch, pretrained=False, num_classes=len(labels))
        path = Path(spec.weights)
        apply_state(net, load_state_dict(path), path, spec.name)
        return Classifier(net, labels, size, mean, std, name=spec.name, weights_id=sha256_file(path))
    cached = _timm_cached_files(cfg)
    if not cached and not _hub_reachable():
        raise UserError(f"cannot download timm's pretrained {arch} (no network, none cached); pass "
                        f"weights FILE (a state dict) or use the embedded {DEFAULT_MODEL}", "weights")
    for f in cached:  # timm loads these itself: inspected before it does
        inspect_archive(f, "weights")
    try:
        net = timm.create_model(arch, pretrained=True)
    except Exception as e:  # offline: huggingface_hub / urllib raise many types; all mean "not here"
        raise UserError(f"cannot download timm's pretrained {arch} ({first_line(e)}); pass weights FILE "
                        f"(a state dict) or use the embedded {DEFAULT_MODEL}", "weights") from None
    if net.num_classes != len(labels):
        raise UserError(f"labels has {len(labels)} names but {spec.name} has {net.num_classes} classes", "labels")
    return Classifier(net, labels, size, mean, std, name=spec.name, weights_id=f"timm:{arch}:{cfg.get('tag', '')}")


def _timm_cached_files(cfg: dict) -> list[Path]:
    """The files timm would load cfg's pretrained weights from: the hub's cache, torch.hub's."""
    found = []
    hub_id = cfg.get("hf_hub_id")
    if hub_id:
        from huggingface_hub import try_to_load_from_cache

        for name in ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin"):
            hit = try_to_load_from_cache(hub_id, name)
            if isinstance(hit, str):
                found.append(Path(hit))
    if cfg.get("url") and weights_cache_path(cfg["url"]).is_file():
        found.append(weights_cache_path(cfg["url"]))
    return found


def _hub_reachable(timeout: float = 3.0) -> bool:
    """One quick connection instead of the hub client's retries, which take a minute offline."""
    import os
    import socket
    import urllib.parse

    host = urllib.parse.urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False
