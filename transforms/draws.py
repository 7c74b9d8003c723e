"""One home for the uniform draws every random transform makes from its torch generator."""
from __future__ import annotations

from typing import Callable

import torch


def uniform(generator: torch.Generator | None, device) -> Callable[..., torch.Tensor]:
    """u(*shape): uniform [0, 1) draws of that shape from `generator` on `device`, in call order."""
    return lambda *shape: torch.rand(*shape, generator=generator, device=device)
