"""Reading weights without ever running code from them. Every file is inspected first
(blocks.models.archive: no compiled code inside). A state dict is loaded with
weights_only=True; a torch.hub checkpoint must match the hash in its published name; a
torch.export archive is refused if it holds pickles, and loaded with every unpickler disarmed."""
from __future__ import annotations

import contextlib
from pathlib import Path

import torch
from torch import nn

from blocks.models.archive import inspect_archive
from common.errors import UserError
from common.files import sha256_file


def load_state_dict(path: Path) -> dict:
    """Load a state dict without executing code (weights_only=True)."""
    from common.inputs import check_input_file

    path = check_input_file(path, "weights file")
    inspect_archive(path, "weights")
    import warnings

    try:
        with warnings.catch_warnings():  # torch warns about legacy pickles before it fails: one line is ours
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle errors, zip errors, refused globals: all mean "not a state dict"
        raise UserError(f"cannot load weights {path}: not a plain PyTorch state dict ({_load_reason(e)})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"cannot load weights {path}: the file holds no state dict of tensors")
    return state


def _load_reason(e: Exception) -> str:
    """The useful part of torch.load's error, whole: torch's texts run to paragraphs of advice."""
    import pickle
    import re

    text = str(e)
    refused = re.search(r"unsupported global:? (?:GLOBAL )?([\w.]+)", text, re.IGNORECASE)
    if refused:
        return f"it would run code ({refused.group(1)}); refused, nothing was executed"
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if lines and lines[0].startswith("Weights only load failed"):
        # torch's advice paragraph first, the actual reason on a line of its own after it
        detail = [ln for ln in lines[1:] if not ln.startswith(("Please file", "Check the documentation"))]
        return f"a pickle torch refuses: {detail[0]}" if detail else "a pickle torch refuses"
    if not isinstance(e, (RuntimeError, pickle.UnpicklingError)) or not lines:  # e.g. KeyError('101')
        return "not a pickle or zip file torch can read"
    first = lines[0]
    sentence = re.split(r"(?<=[.!?])\s", first)[0]
    return sentence if len(sentence) <= 200 else sentence[:sentence.rfind(" ", 0, 200)] + " ..."


def _classes_in(state: dict) -> int | None:
    """Outputs of the last layer stored in a state dict (its last weight's first dimension)."""
    weights = [v for k, v in state.items() if k.endswith("weight") and v.ndim >= 1]
    return int(weights[-1].shape[0]) if weights else None


def apply_state(net: nn.Module, state: dict, path: Path, arch: str, labels: Path | None = None) -> None:
    """Load state into net; a mismatch is one line naming the labels file or the weights file."""
    want = _classes_in(net.state_dict())
    have = _classes_in(state)
    if labels is not None and want is not None and have is not None and want != have:
        # the head was built for the labels file, so the labels file is what does not fit
        raise UserError(f"labels {labels} has {want} names but the weights {path} have {have} classes", "labels")
    try:
        net.load_state_dict(state)
    except RuntimeError as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        detail = lines[1] if len(lines) > 1 else lines[0] if lines else ""
        raise UserError(f"weights {path} do not fit model {arch}: {detail[:200]}", ("weights", "model")) from None


def weights_cache_path(url: str) -> Path:
    """Where torch.hub keeps a downloaded checkpoint: $TORCH_HOME/hub/checkpoints/<basename>."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name


def _hash_prefix(path: Path) -> str | None:
    """The sha256 prefix torchvision puts in its checkpoint names (resnet18-f37072fd.pth)."""
    import re

    m = re.search(r"-([a-f0-9]{6,})\.", path.name)
    return m.group(1) if m else None


def download_checkpoint(url: str, path: Path) -> None:
    """Download url to path, hash-checked by torch.hub on the way in; raises the download's error."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.hub.download_url_to_file(url, str(path), hash_prefix=_hash_prefix(path), progress=True)


def check_published_hash(path: Path) -> None:
    """A cached checkpoint must match the hash in its name: torchvision's own get_state_dict loads
    the cache with weights_only=False (a checkpoint placed there ran code)."""
    prefix = _hash_prefix(path)
    if prefix and not sha256_file(path).startswith(prefix):
        raise UserError(f"cached weights {path} do not match their published hash ({prefix}...): delete the "
                        f"file to download it again")


class Refused(Exception):
    """A model archive that would run code if loaded."""


def load_export_safely(path: Path, members: list[str]):
    """torch.export.load without ever unpickling: torch's pt2 loader unpickles entries marked
    use_pickle (and custom or opaque objects, and legacy weight files) with weights_only=False,
    and retries the sample inputs that way when the safe load fails. Such archives are refused
    from their configs before loading, and during the load every torch.load is weights_only=True
    and every other unpickler raises."""
    _refuse_pickled_entries(path, members)
    with _no_unpickling():
        return torch.export.load(path)


def _refuse_pickled_entries(path: Path, members: list[str]) -> None:
    """Raise Refused if the archive's configs mark any entry as pickled, or it holds legacy weights."""
    import json
    import zipfile

    with zipfile.ZipFile(path) as z:
        for name in members:
            base = name.rsplit("/", 1)[-1]
            if name.endswith(("_weights_config.json", "_constants_config.json")):
                info = z.getinfo(name)
                if info.file_size > 64 << 20:
                    raise Refused(f"its {base} is {info.file_size >> 20} MiB")
                try:
                    config = json.loads(z.read(name)).get("config", {})
                except (ValueError, AttributeError, RecursionError):
                    raise Refused(f"its {base} is not valid JSON") from None
                entries = config.values() if isinstance(config, dict) else []
                if any(not isinstance(e, dict) or e.get("use_pickle") or
                       str(e.get("path_name", "")).startswith(("custom_obj", "opaque_obj")) for e in entries):
                    raise Refused(f"it holds pickled entries ({base} marks an entry use_pickle or as a "
                                  f"custom object), which would be unpickled with code")
            elif "/data/weights/" in name and base.endswith(".pt") or "/data/constants/" in name and base.endswith(".pt"):
                raise Refused(f"it holds legacy pickled weights ({base})")


@contextlib.contextmanager
def _no_unpickling():
    """Inside: torch.load is weights_only=True, every other unpickler raises Refused, and the
    export loggers are quiet (their warnings would come before our one line)."""
    import logging
    import pickle

    def safe_load(f, *args, **kwargs):
        kwargs["weights_only"] = True
        try:
            return real_load(f, *args, **kwargs)
        except Exception as e:
            reason = _load_reason(e).replace("; refused, nothing was executed", "")
            raise Refused(f"it holds a pickle that torch's safe loader refuses ({reason})") from None

    def refuse(*args, **kwargs):
        raise Refused("it holds a pickled object that would run code")

    real_load, real_loads, real_obj = torch.load, pickle.loads, torch._C._pickle_load_obj
    quiet = [logging.getLogger(n) for n in ("torch._export", "torch.export", "torch._export.serde.serialize",
                                            "torch.export.pt2_archive._package")]
    levels = [q.level for q in quiet]
    torch.load, pickle.loads, torch._C._pickle_load_obj = safe_load, refuse, refuse
    for q in quiet:
        q.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        torch.load, pickle.loads, torch._C._pickle_load_obj = real_load, real_loads, real_obj
        for q, level in zip(quiet, levels):
            q.setLevel(level)
