"""Penalties on the patch itself, added to the attack's loss: printability and smoothness."""
from __future__ import annotations

import torch


def default_palette(levels: int = 5) -> torch.Tensor:
    """(levels**3, 3) evenly spaced RGB colours, black and white included: the colours a
    calibration sheet measures. Used when no measured gamut is given."""
    g = torch.linspace(0, 1, levels)
    return torch.cartesian_prod(g, g, g)


def non_printability(patch: torch.Tensor, gamut: torch.Tensor, color_map=None) -> torch.Tensor:
    """Mean distance from each pixel's colour to the nearest reachable colour (Sharif et al. 2016).

    patch: (3, H, W) in [0, 1]; gamut: (N, 3) colours in [0, 1]. With a measured color_map the
    distance is taken where the camera sees the pixel, so the patch stays where the map was
    measured rather than where it extrapolates.
    """
    x = patch[None] if color_map is None else color_map(patch[None])
    pixels = x[0].flatten(1).T  # (H*W, 3)
    d = torch.cdist(pixels, gamut.to(pixels.device, pixels.dtype))
    return d.min(dim=1).values.mean()


def total_variation(patch: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between neighbouring pixels: printers and cameras blur fine detail."""
    dx = (patch[:, :, 1:] - patch[:, :, :-1]).abs().mean()
    dy = (patch[:, 1:, :] - patch[:, :-1, :]).abs().mean()
    return dx + dy


def patch_penalty(cmap, printability: float, tv: float):
    """The patch penalty for printability / tv weights, or None."""
    if not printability and not tv:
        return None
    gamut = cmap.gamut if cmap is not None and cmap.gamut is not None else default_palette()

    def total(patch):
        value = 0.0
        if printability:
            value = value + printability * non_printability(patch, gamut, cmap)
        if tv:
            value = value + tv * total_variation(patch)
        return value

    return total
