"""CPU speed tricks for scoring candidates: a frozen TorchScript copy of the model, channels-last
images and the forward chunk size.

Freezing (conv+BN folded, mkldnn kernels) scores faster on CPU but costs a fixed time up front
that grows with the model, so it is done only when an eager run would take longer than
FREEZE_AFTER_S (the clean pass's time x the queries to come). The copy is checked against the
model and dropped if it disagrees; the probabilities reported before and after always come from
the model itself. Without a frozen copy, CPU convolutions run on channels-last images. Numbers:
docs/onepixel.md.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

FREEZE_AFTER_S = 120.0  # freeze a TorchScript scorer only when an eager run would take longer


def scorer_for(model: nn.Module, example: torch.Tensor, fast: bool, eager_s: float):
    """-> (the model to score candidates with, whether to feed it channels-last images).
    example: (B, 3, H, W) images on the model's device; eager_s: the eager run's expected time."""
    cpu = example.device.type == "cpu"
    scorer = fast_scorer(model, example) if fast and cpu and eager_s > FREEZE_AFTER_S else None
    return (scorer or model), (scorer is None and cpu)


def fast_scorer(model: nn.Module, example: torch.Tensor):
    """A frozen, inference-optimised TorchScript copy of model (conv+BN folded, mkldnn kernels),
    or None when the model cannot be traced or the copy disagrees with it. example: (B, 3, H, W)."""
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(model, example, check_trace=False)
            fast = torch.jit.optimize_for_inference(torch.jit.freeze(traced.eval()))
            same = torch.allclose(F.softmax(fast(example).float(), 1),
                                  F.softmax(model(example).float(), 1), atol=1e-4)
    except Exception:  # any model TorchScript cannot handle simply runs eagerly
        return None
    return fast if same else None


def auto_chunk(h: int, w: int, device: torch.device) -> int:
    """Images per forward pass: about half a million input pixels on CPU (cache-friendly sizes),
    about sixteen million on an accelerator."""
    budget = (1 << 19) if device.type == "cpu" else (1 << 24)
    return max(16, budget // (h * w))
