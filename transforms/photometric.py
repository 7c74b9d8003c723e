"""What light, lens, sensor and codec do to a view: all differentiable, all batched.

Black patches are the trap here: a clamp at 0 or a gamma at 0 kills or blows up the gradient of a
patch of exact zeros (see FIELD-NOTES). So lighting is applied without clamping, gamma is taken on
a range squeezed away from 0, and the only clamp is the camera's own, at the very end.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from kornia.enhance import jpeg_codec_differentiable
from kornia.filters import gaussian_blur2d


@dataclass
class Photometric:
    contrast: tuple[float, float] = (1.0, 1.0)  # multiplies around mid-grey
    brightness: float = 0.0  # additive shift, uniform in [-b, b]
    gamma: tuple[float, float] = (1.0, 1.0)
    temperature: float = 0.0  # red/blue gain shift, uniform in [-t, t]
    blur_sigma: float = 0.0  # max Gaussian sigma, as a fraction of the image side
    noise_std: float = 0.0  # max sensor noise std (per view uniform in [0, s])
    jpeg_quality: tuple[float, float] | None = None  # None = no JPEG
    jpeg_p: float = 0.0  # share of views that go through JPEG (it is the costly one)


_GAMMA_EPS = 1e-3


def apply_photometric(x: torch.Tensor, cfg: Photometric,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """x: (B, 3, H, W) in [0, 1] -> (B, 3, H, W) in [0, 1], one random draw per view."""
    B, _, H, W = x.shape
    dev = x.device
    u = lambda *shape: torch.rand(*shape, generator=generator, device=dev)  # noqa: E731
    if cfg.gamma != (1.0, 1.0):
        g = cfg.gamma[0] + (cfg.gamma[1] - cfg.gamma[0]) * u(B, 1, 1, 1)
        squeezed = x * (1 - 2 * _GAMMA_EPS) + _GAMMA_EPS  # finite gradient everywhere
        x = (squeezed.pow(g) - _GAMMA_EPS) / (1 - 2 * _GAMMA_EPS)
    if cfg.contrast != (1.0, 1.0) or cfg.brightness:
        c = cfg.contrast[0] + (cfg.contrast[1] - cfg.contrast[0]) * u(B, 1, 1, 1)
        b = (2 * u(B, 1, 1, 1) - 1) * cfg.brightness
        x = (x - 0.5) * c + 0.5 + b
    if cfg.temperature:
        t = (2 * u(B, 1, 1, 1) - 1) * cfg.temperature
        gains = torch.cat([1 + t, torch.ones_like(t), 1 - t], dim=1)
        x = x * gains
    if cfg.blur_sigma > 0:
        sigma = (0.05 + cfg.blur_sigma * H * u(B, 1)).expand(B, 2)
        k = max(3, int(2 * round(2 * cfg.blur_sigma * H) + 1))
        x = gaussian_blur2d(x, (k, k), sigma)
    if cfg.noise_std > 0:
        std = cfg.noise_std * u(B, 1, 1, 1)
        x = x + std * torch.randn(x.shape, generator=generator, device=dev)
    x = clip01(x)
    if cfg.jpeg_quality is not None and cfg.jpeg_p > 0 and H % 16 == 0 and W % 16 == 0:
        chosen = (u(B) < cfg.jpeg_p).nonzero().flatten()
        if len(chosen):
            lo, hi = cfg.jpeg_quality
            q = lo + (hi - lo) * u(len(chosen))
            coded = jpeg_codec_differentiable(x[chosen], q)
            x = x.index_copy(0, chosen, coded.to(x.dtype))
    return x


def clip01(x: torch.Tensor) -> torch.Tensor:
    """Clamp to [0, 1], but keep the gradient of values sitting exactly on a bound.

    torch.clamp gives zero gradient at x == 0, which would freeze a black patch for good.
    """
    return torch.where((x < 0) | (x > 1), x.detach().clamp(0, 1), x)
