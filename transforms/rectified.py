"""The views `blocks capture --sheet` classifies: a printed block found by its markers, rectified
head-on and stretched to the model's input, after a camera saw it only N pixels across.

The capture loop (capture.markers.rectify_block) warps the block, plus `block_margin` of its
surroundings, to the model's side with bilinear interpolation. When the camera sees the block
40-120 px across, that crop is an upsampled image of a few dozen camera pixels: blurred by the
lens and by motion, noisy, JPEG/mp4 blocky, in the print's colours, and slightly misregistered
(the homography comes from marker corners found to a fraction of a pixel). Views made here follow
the same path, differentiably:

    patch (3, P, P) -> print response (ink black, paper white, per channel)
      -> rendered at the camera's resolution M = N (1 + 2 margin) px with the block's corners
         jittered by the rectification error (antialiased area resampling, as a sensor integrates)
      -> defocus and motion blur, lighting, sensor noise, JPEG, all in camera pixels
      -> bilinear resize to the model's side (the loop's upsampling)          -> (B, 3, S, S)

N is drawn per group of views (one resolution per group keeps each group one batched tensor).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from kornia.filters import motion_blur
from kornia.geometry.transform import get_perspective_transform

from transforms.draws import uniform
from transforms.params import Params, params
from transforms.photometric import (FrameParams, JpegParams, Photometric, apply_frame, apply_jpeg, blur_side,
                                    clip01, gaussian, sample_frame, sample_jpeg)
from transforms.placement import paste


# The print response every view model starts from (held and rectified views alike): the darkest
# value a printer's black ink shows and the lightest its paper shows, per channel, as a camera
# exposed for the scene sees them. One range for both: the same print under the same cameras.
INK = (0.0, 0.12)
PAPER = (0.8, 1.0)


@dataclass
class CameraViews:
    pixels: tuple[int, int] = (30, 200)  # block side as the camera sees it, px (log-uniform)
    margin: float = 0.0  # context kept around the block, fraction of its side (capture's block_margin)
    corner_jitter_px: float = 0.8  # rectification error of each block corner, camera px
    ink: tuple[float, float] = INK  # the darkest printed value (ink black), per channel
    paper: tuple[float, float] = PAPER  # the lightest (paper white), per channel
    defocus_px: tuple[float, float] = (0.2, 1.2)  # Gaussian sigma, camera px
    motion_px: float = 4.0  # max motion-blur length, camera px
    groups: int = 4  # camera resolutions drawn per batch
    photometric: Photometric = field(default_factory=lambda: Photometric(
        contrast=(0.7, 1.2), brightness=0.1, temperature=0.08, noise_std=0.04,
        jpeg_quality=(25.0, 85.0), jpeg_p=0.7))

    # a ViewModel (transforms.params): draws apart from rendering
    def sample(self, n: int, size: int, patch_px: int, scenes=None, generator=None, device="cpu",
               mapped: bool = False) -> RectifiedParams:
        return sample_rectified(n, self, generator, device, mapped)

    def render(self, patch: torch.Tensor, p: RectifiedParams, size: int, scenes=None, patch_map=None):
        return render_rectified(patch, p, size, self, patch_map)


@params
class GroupParams(Params):
    """One group of rectified views (rows start:end of the batch), all filmed n_px across:
    corner jitter (B, 4, 2) in camera px, defocus sigma (B,), motion blur (kernel side, angle
    (B,) or None), then frame effects and JPEG."""

    n_px: int
    start: int
    end: int
    jitter: torch.Tensor
    sigma: torch.Tensor
    motion_ks: int
    motion_angle: torch.Tensor | None
    frame: FrameParams
    jpeg: JpegParams | None


@params
class RectifiedParams(Params):
    """A batch of rectified views: the print response's ink and paper per view and channel
    (n, 3, 1, 1; None under a measured colour map) and the camera-resolution groups."""

    ink: torch.Tensor | None
    paper: torch.Tensor | None
    groups: list


def _sample_print(B: int, cfg: CameraViews, generator, device):
    """The print response per view and channel: a printer cannot print darker than its black ink
    or lighter than its paper. Affine, so a black patch keeps its gradient (no clamp at 0)."""
    u = uniform(generator, device)
    ink = cfg.ink[0] + (cfg.ink[1] - cfg.ink[0]) * u(B, 3, 1, 1)
    return ink, cfg.paper[0] + (cfg.paper[1] - cfg.paper[0]) * u(B, 3, 1, 1)


def _camera_pixels(n_views: int, cfg: CameraViews, generator, device) -> list[int]:
    """Block sides in camera px, log-uniform in cfg.pixels: one per group."""
    lo, hi = (math.log(max(2, p)) for p in cfg.pixels)
    groups = max(1, min(cfg.groups, n_views))
    r = torch.rand(groups, generator=generator, device=device).tolist()
    return [int(round(math.exp(lo + (hi - lo) * v))) for v in r]


def _sample_group(n_px: int, a: int, b: int, cfg: CameraViews, generator, device) -> GroupParams:
    """The draws of one group, in the order the camera meets them."""
    B, u = b - a, uniform(generator, device)
    jitter = cfg.corner_jitter_px * (2 * u(B, 4, 2) - 1)
    M = n_px + 2 * int(round(cfg.margin * n_px))
    lo, hi = cfg.defocus_px
    sigma = (lo + (hi - lo) * u(B)).clamp(min=0.1)
    ks, angle = 0, None
    if cfg.motion_px >= 1.5:
        ks = 2 * int(float(cfg.motion_px * u(1)) // 2) + 1
        if ks >= 3 and M > ks:
            angle = 180 * u(B)
    frame = sample_frame((B, 3, M, M), cfg.photometric, generator, device)
    return GroupParams(n_px, a, b, jitter, sigma, ks, angle, frame, sample_jpeg(B, cfg.photometric, generator, device))


def _film_small(patch: torch.Tensor, paper: torch.Tensor, g: GroupParams, cfg: CameraViews) -> torch.Tensor:
    """patch (B, 3, P, P) after the print response -> (B, 3, M, M): the block with its margin as
    the camera records it, M = n_px (1 + 2 margin), misregistered by the corner jitter."""
    B, _, P, _ = patch.shape
    dev, n_px = patch.device, g.n_px
    # A sensor integrates light over each pixel: area-like (antialiased) resampling to n_px first,
    # then the small misregistration warp at that scale (near-identity, so bilinear is enough).
    small = F.interpolate(patch, size=(n_px, n_px), mode="bilinear", antialias=True, align_corners=False)
    pad = int(round(cfg.margin * n_px))
    M = n_px + 2 * pad
    unit = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]], device=dev)
    src = (unit * (n_px - 1))[None].expand(B, -1, -1)
    H = get_perspective_transform(src, src + pad + g.jitter)
    return paste(small, H, M, paper)  # around the block (with a margin): the sheet's white paper


def _lens_and_motion(x: torch.Tensor, g: GroupParams) -> torch.Tensor:
    B, dev = x.shape[0], x.device
    k = blur_side(g.sigma)
    if k >= 3 and min(x.shape[-2:]) > k:
        x = gaussian(x, g.sigma, k)
    if g.motion_angle is not None:
        x = motion_blur(x, g.motion_ks, g.motion_angle, torch.zeros(B, device=dev), border_type="replicate",
                        mode="bilinear")
    return x


def sample_rectified(n: int, cfg: CameraViews, generator=None, device="cpu", mapped: bool = False) -> RectifiedParams:
    """The random parameters of n rectified views (mapped: a measured colour map stands in for
    the print response, which then draws nothing)."""
    ink, paper = (None, None) if mapped else _sample_print(n, cfg, generator, device)
    sides = _camera_pixels(n, cfg, generator, device)
    bounds = [round(i * n / len(sides)) for i in range(len(sides) + 1)]
    groups = [_sample_group(n_px, a, b, cfg, generator, device)
              for n_px, a, b in zip(sides, bounds[:-1], bounds[1:]) if b > a]
    return RectifiedParams(ink, paper, groups)


def render_rectified(patch: torch.Tensor, p: RectifiedParams, size: int, cfg: CameraViews, patch_map=None):
    """patch (3, P, P) -> (views (n, 3, size, size), their summary) from RectifiedParams."""
    dev, n = patch.device, p.groups[-1].end
    if patch_map is not None:  # a measured printer colour map replaces the generic print response
        printed = patch_map(patch[None]).expand(n, -1, -1, -1)
        paper = patch_map(torch.ones(1, 3, 1, 1, device=dev)).expand(n, -1, -1, -1)
    else:
        printed, paper = p.ink + (p.paper - p.ink) * patch[None].expand(n, -1, -1, -1), p.paper
    views, pixels = [], []
    for g in p.groups:
        x = _film_small(printed[g.start:g.end], paper[g.start:g.end], g, cfg)
        x = apply_jpeg(apply_frame(_lens_and_motion(x, g), g.frame), g.jpeg)  # light, noise; clipped; JPEG
        # the loop's upsampling to the model side (antialiased when the crop is larger than it)
        views.append(clip01(F.interpolate(x, size=(size, size), mode="bilinear", antialias=True,
                                          align_corners=False)))
        pixels += [g.n_px] * (g.end - g.start)
    scale = torch.full((n,), 1 / (1 + 2 * cfg.margin), device=dev)
    return torch.cat(views), {"scale": scale, "rotation_deg": torch.zeros(n, device=dev),
                              "pixels": torch.tensor(pixels, device=dev)}


def rectified_views(patch: torch.Tensor, n: int, size: int, cfg: CameraViews,
                    generator: torch.Generator | None = None, patch_map=None):
    """patch: (3, P, P) in [0, 1] -> views (n, 3, size, size) in [0, 1] as the capture loop would
    classify them, and their parameters (camera px per view; scale = the block's share of the view;
    rotation_deg = 0, since the loop rectifies the block head-on)."""
    p = sample_rectified(n, cfg, generator, patch.device, patch_map is not None)
    return render_rectified(patch, p, size, cfg, patch_map)
