"""Placing a patch into scenes: random scale, rotation, position and perspective in one batched warp.

One homography per view maps patch pixels straight to the output image, so a small patch is
warped once at the model's resolution (no intermediate canvas). The patch travels with an explicit
coverage mask: black is a colour here, never "transparent".
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from kornia.geometry.transform import get_perspective_transform, warp_perspective

from transforms.draws import uniform


@dataclass
class Placement:
    scale: tuple[float, float] = (0.8, 1.0)  # patch side as a fraction of the image side
    rotation_deg: float = 20.0  # uniform in [-r, r]
    perspective: float = 0.2  # corner jitter as a fraction of the patch side
    random_position: bool = True  # else centred


def sample_homographies(n: int, patch_px: int, size: int, cfg: Placement,
                        generator: torch.Generator | None = None, device="cpu"):
    """Homographies (n, 3, 3) from patch pixel coords to image pixel coords, and their parameters."""
    u = uniform(generator, device)
    lo, hi = cfg.scale
    scale = lo + (hi - lo) * u(n)
    angle = (2 * u(n) - 1) * cfg.rotation_deg
    side = scale * size
    # The rotated square's half-extent, so a random position keeps the patch in frame when it fits.
    theta = torch.deg2rad(angle)
    half = side / 2 * (theta.cos().abs() + theta.sin().abs())
    free = (size / 2 - half).clamp(min=0)
    if cfg.random_position:
        cx = size / 2 + (2 * u(n) - 1) * free
        cy = size / 2 + (2 * u(n) - 1) * free
    else:
        cx = cy = torch.full((n,), size / 2, device=device)
    # Patch corners centred at the origin, in units of the printed side.
    unit = torch.tensor([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]], device=device)
    corners = unit[None] + cfg.perspective * (u(n, 4, 2) - 0.5)
    cos, sin = theta.cos()[:, None], theta.sin()[:, None]
    x = corners[..., 0] * side[:, None]
    y = corners[..., 1] * side[:, None]
    dst = torch.stack([cos * x - sin * y + cx[:, None], sin * x + cos * y + cy[:, None]], dim=-1)
    src = (unit[None] + 0.5) * (patch_px - 1)
    H = get_perspective_transform(src.expand(n, -1, -1), dst)
    return H, {"scale": scale, "rotation_deg": angle, "cx": cx, "cy": cy}


def place(patch: torch.Tensor, backgrounds: torch.Tensor, H: torch.Tensor) -> torch.Tensor:
    """patch: (3, h, w) or one per view (B, 3, h, w), in [0, 1]; backgrounds: (B, 3, S, S);
    H: (B, 3, 3) -> views (B, 3, S, S)."""
    B, _, S, _ = backgrounds.shape
    patch = patch.expand(B, -1, -1, -1) if patch.dim() == 3 else patch
    return paste(patch, H, S, backgrounds)


def paste(x: torch.Tensor, H: torch.Tensor, size: int, behind: torch.Tensor) -> torch.Tensor:
    """x (B, 3, h, w) warped by H (B, 3, 3) onto a size x size frame over `behind` (anything that
    broadcasts to (B, 3, size, size)): an alpha channel travels with the warp, so the edges blend."""
    rgba = torch.cat([x, torch.ones_like(x[:, :1])], dim=1)
    warped = warp_perspective(rgba, H, (size, size), mode="bilinear", padding_mode="zeros", align_corners=True)
    return warped[:, :3] + (1 - warped[:, 3:]) * behind


def random_backgrounds(n: int, size: int, scenes: torch.Tensor | None,
                       generator: torch.Generator | None = None, device="cpu") -> torch.Tensor:
    """(n, 3, size, size): random scenes (with random flips), or plain random-grey surroundings."""
    if scenes is None:
        grey = torch.rand(n, 1, 1, 1, generator=generator, device=device)
        tint = 0.1 * (torch.rand(n, 3, 1, 1, generator=generator, device=device) - 0.5)
        return (grey + tint).clamp(0, 1).expand(n, 3, size, size)
    idx = torch.randint(len(scenes), (n,), generator=generator, device=scenes.device)
    picked = scenes[idx].to(device)
    flip = torch.rand(n, generator=generator, device=device) < 0.5
    return torch.where(flip[:, None, None, None], picked.flip(-1), picked)
