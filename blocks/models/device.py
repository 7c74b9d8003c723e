"""Which device a model runs on: `--device auto` picks CUDA, then MPS, then CPU; a named device is
checked against what this machine has, so a wrong one is one line naming the ones available."""
from __future__ import annotations

import torch

from common.errors import UserError


def pick_device(name: str = "auto") -> torch.device:
    """"auto" -> CUDA, then MPS, then CPU; anything else is passed to torch.device."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError, TypeError):
        raise UserError(f"unknown device {name!r}: use auto, cpu, cuda, cuda:N or mps") from None
    if device.type not in ("cpu", "cuda", "mps"):
        raise UserError(f"device {name} is not supported here: use auto, cpu, cuda, cuda:N or mps "
                        f"(available: {', '.join(available_devices())})", "device")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {name} asked for, but no CUDA GPU is available (available: "
                        f"{', '.join(available_devices())}; or give device auto)", ("device", "device"))
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UserError(f"device {name} asked for, but there are only {torch.cuda.device_count()} CUDA GPU(s) "
                        f"(available: {', '.join(available_devices())})", "device")
    if device.type == "mps" and not _mps_available():
        raise UserError(f"device mps asked for, but this machine has no MPS (Apple GPU) (available: "
                        f"{', '.join(available_devices())}; or give device auto)", ("device", "device"))
    return device


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    try:
        return bool(mps is not None and mps.is_available())
    except RuntimeError:
        return False


def available_devices() -> list[str]:
    """The devices this machine can run on, as --device takes them."""
    found = ["cpu"]
    if torch.cuda.is_available():
        n = torch.cuda.device_count()
        found += ["cuda"] + ([f"cuda:0 to cuda:{n - 1}"] if n > 1 else [])
    if _mps_available():
        found.append("mps")
    return found
