"""What light, lens, sensor and codec do to a view: all differentiable, all batched.

Black patches are the trap here: a clamp at 0 or a gamma at 0 kills or blows up the gradient of a
patch of exact zeros (see FIELD-NOTES). So lighting is applied without clamping, gamma is taken on
a range squeezed away from 0, and the final clip keeps the gradient of values on a bound.

Cost decides where each effect runs. Gamma, blur and JPEG act on each view's copy of the patch
texture (small: the patch's own pixels) before it is warped into the frame; blur is scaled so its
width is measured in frame pixels. Lighting and sensor noise act on the whole frame, fused into
one multiply-add and one addition (docs/design.md has the timings).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from kornia.filters import get_gaussian_kernel1d

from transforms.draws import uniform
from transforms.jpeg import jpeg_codec
from transforms.params import Params, params


@dataclass
class Photometric:
    contrast: tuple[float, float] = (1.0, 1.0)  # multiplies around mid-grey
    brightness: float = 0.0  # additive shift, uniform in [-b, b]
    gamma: tuple[float, float] = (1.0, 1.0)
    temperature: float = 0.0  # red/blue gain shift, uniform in [-t, t]
    blur_sigma: float = 0.0  # max Gaussian sigma, as a fraction of the frame side
    noise_std: float = 0.0  # max sensor noise std (per view uniform in [0, s])
    jpeg_quality: tuple[float, float] | None = None  # None = no JPEG
    jpeg_p: float = 0.0  # share of views that go through JPEG


_GAMMA_EPS = 1e-3


@params
class TextureParams(Params):
    """texture_effects' draws per view: gamma (B, 1, 1, 1), blur sigma in texels (B,), JPEG."""

    gamma: torch.Tensor | None = None
    sigma: torch.Tensor | None = None
    jpeg: JpegParams | None = None


def sample_texture(B: int, cfg: Photometric, texels_per_pixel: torch.Tensor, frame_side: int,
                   generator: torch.Generator | None = None, device="cpu") -> TextureParams:
    """The draws of texture_effects for B views (texels_per_pixel: (B,) patch px per frame px)."""
    u = uniform(generator, device)
    p = TextureParams()
    if cfg.gamma != (1.0, 1.0):
        p.gamma = cfg.gamma[0] + (cfg.gamma[1] - cfg.gamma[0]) * u(B, 1, 1, 1)
    if cfg.blur_sigma > 0:
        # blur_sigma is a fraction of the frame side; frame pixels -> texels
        p.sigma = (cfg.blur_sigma * u(B) * frame_side * texels_per_pixel).clamp(min=0.1)
    p.jpeg = sample_jpeg(B, cfg, generator, device)
    return p


def apply_texture(x: torch.Tensor, p: TextureParams) -> torch.Tensor:
    """Gamma, blur and JPEG on per-view patch copies x (B, 3, h, w) in [0, 1]."""
    if p.gamma is not None:
        # clipped first: a measured colour map may send black a hair below 0 (-0.0011 seen), and a
        # negative base to a fractional power is NaN
        squeezed = clip01(x) * (1 - 2 * _GAMMA_EPS) + _GAMMA_EPS  # finite gradient everywhere
        x = (squeezed.pow(p.gamma) - _GAMMA_EPS) / (1 - 2 * _GAMMA_EPS)
    if p.sigma is not None:
        k = blur_side(p.sigma)
        if k >= 3:
            x = gaussian(x, p.sigma, k)
    return apply_jpeg(x, p.jpeg)


def texture_effects(textures: torch.Tensor, cfg: Photometric, texels_per_pixel: torch.Tensor,
                    frame_side: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Gamma, blur and JPEG on per-view patch copies: sample_texture, then apply_texture.

    textures: (B, 3, h, w) in [0, 1]; texels_per_pixel: (B,) patch pixels per frame pixel,
    so a blur of s frame pixels becomes s * texels_per_pixel texels.
    """
    p = sample_texture(textures.shape[0], cfg, texels_per_pixel, frame_side, generator, textures.device)
    return apply_texture(textures, p)


def blur_side(sigma: torch.Tensor) -> int:
    """The odd Gaussian kernel side that holds 2.5 of the largest sigma either side of centre."""
    return 2 * math.ceil(2.5 * float(sigma.max())) + 1


def gaussian(x: torch.Tensor, sigma: torch.Tensor, k: int) -> torch.Tensor:
    """x (B, C, h, w) blurred with a k x k Gaussian of sigma[i] on view i (sigma (B,), or (B, 2)
    along y and x), edges replicated: kornia's separable gaussian_blur2d (its kernels, the same
    convolutions forward) with a cheaper backward (see _Blur)."""
    sigma = (sigma[:, None] if sigma.dim() == 1 else sigma).expand(x.shape[0], 2)
    along_x = get_gaussian_kernel1d(k, sigma[:, 1:].contiguous())
    along_y = get_gaussian_kernel1d(k, sigma[:, :1].contiguous())
    return _Blur.apply(_Blur.apply(x, along_x, -1), along_y, -2)


class _Blur(torch.autograd.Function):
    """x (B, C, h, w) correlated along one axis (-1: x, -2: y) with kernel[i] (B, k odd) on view
    i, edges replicated, as kornia's filter2d does it. The kernels never need a gradient (sigma
    is drawn); the input's is the transposed convolution of the gradient, the replicated edges'
    share folded back onto the edge: about 30% cheaper on a CPU than autograd's depthwise
    convolution backward, which also works out the kernel's."""

    @staticmethod
    def forward(ctx, x, kernel, axis):
        B, C = x.shape[:2]
        k = kernel.shape[-1]
        shape = (B * C, 1, 1, k) if axis == -1 else (B * C, 1, k, 1)
        weight = kernel.repeat_interleave(C, 0).reshape(shape).to(x.dtype)
        ctx.save_for_backward(weight)
        ctx.axis = axis
        pad = (k // 2, k // 2, 0, 0) if axis == -1 else (0, 0, k // 2, k // 2)
        padded = F.pad(x, pad, mode="replicate")
        return F.conv2d(padded.reshape(1, B * C, *padded.shape[-2:]), weight, groups=B * C).view(x.shape)

    @staticmethod
    def backward(ctx, grad):
        (weight,) = ctx.saved_tensors
        axis, k, (B, C, h, w) = ctx.axis, max(weight.shape[-2:]), grad.shape
        full = F.conv_transpose2d(grad.reshape(1, B * C, h, w), weight, groups=B * C)
        full = full.view(B, C, *full.shape[-2:]).movedim(axis, -1)  # (.., n + k - 1) along the axis
        r, n = k // 2, full.shape[-1] - (k - 1)
        out = full[..., r:r + n].clone()
        out[..., 0] += full[..., :r].sum(-1)  # the replicated edges' share goes to the edge itself
        out[..., -1] += full[..., r + n:].sum(-1)
        return out.movedim(-1, axis), None, None


@params
class JpegParams(Params):
    """Which views go through JPEG (indices (k,)) and at what quality (k,)."""

    chosen: torch.Tensor
    quality: torch.Tensor | None = None


def sample_jpeg(B: int, cfg: Photometric, generator: torch.Generator | None = None, device="cpu"):
    """JpegParams for B views (each chosen with probability cfg.jpeg_p), or None without JPEG."""
    if cfg.jpeg_quality is None or cfg.jpeg_p <= 0:
        return None
    u = uniform(generator, device)
    chosen = (u(B) < cfg.jpeg_p).nonzero().flatten()
    if not len(chosen):
        return JpegParams(chosen)
    lo, hi = cfg.jpeg_quality
    return JpegParams(chosen, lo + (hi - lo) * u(len(chosen)))


def apply_jpeg(x: torch.Tensor, p: JpegParams | None) -> torch.Tensor:
    """Differentiable JPEG on the chosen views; the others pass untouched (coding only the
    chosen ones is the cheap way; transforms.jpeg codes them as kornia does, as matrix products)."""
    if p is None or not len(p.chosen):
        return x
    coded = jpeg_codec(clip01(x[p.chosen]), p.quality)
    return x.index_copy(0, p.chosen, coded.to(x.dtype))


def jpeg_some(x: torch.Tensor, cfg: Photometric, generator: torch.Generator | None = None) -> torch.Tensor:
    """Differentiable JPEG on the views drawn with probability cfg.jpeg_p, quality uniform in
    cfg.jpeg_quality."""
    return apply_jpeg(x, sample_jpeg(x.shape[0], cfg, generator, x.device))


@params
class FrameParams(Params):
    """frame_effects' draws per view: contrast, brightness, temperature (B, 1, 1, 1) and the
    sensor noise itself (B, 3, H, W), already scaled by the view's noise level."""

    contrast: torch.Tensor | None = None
    brightness: torch.Tensor | None = None
    temperature: torch.Tensor | None = None
    noise: torch.Tensor | None = None


def sample_frame(shape: tuple[int, ...], cfg: Photometric, generator: torch.Generator | None = None,
                 device="cpu") -> FrameParams:
    """The draws of frame_effects for frames of `shape` (B, 3, H, W)."""
    B = shape[0]
    u = uniform(generator, device)
    p = FrameParams()
    if cfg.contrast != (1.0, 1.0) or cfg.brightness or cfg.temperature:
        p.contrast = cfg.contrast[0] + (cfg.contrast[1] - cfg.contrast[0]) * u(B, 1, 1, 1)
        p.brightness = (2 * u(B, 1, 1, 1) - 1) * cfg.brightness
        p.temperature = (2 * u(B, 1, 1, 1) - 1) * cfg.temperature
    if cfg.noise_std > 0:
        std = cfg.noise_std * u(B, 1, 1, 1)
        p.noise = std * torch.randn(shape, generator=generator, device=device)
    return p


def apply_frame(frames: torch.Tensor, p: FrameParams) -> torch.Tensor:
    """Lighting (contrast, brightness, colour temperature) and sensor noise on whole frames
    (B, 3, H, W) -> (B, 3, H, W) in [0, 1]."""
    scale = shift = None
    if p.contrast is not None:
        c, b, t = p.contrast, p.brightness, p.temperature
        gains = torch.cat([1 + t, torch.ones_like(t), 1 - t], dim=1)
        # ((x - 0.5) c + 0.5 + b) * gains, as one multiply-add over the frame
        scale, shift = c * gains, (0.5 - 0.5 * c + b) * gains
    if torch.is_grad_enabled() and frames.requires_grad:
        return _Frame.apply(frames, scale, shift, p.noise)
    return _Frame.light(frames, scale, shift, p.noise).clamp_(0, 1)  # no graph: no mask to keep


class _Frame(torch.autograd.Function):
    """x * scale + shift + noise, clipped as clip01 clips (the gradient kept on [0, 1], bounds
    included), in one pass with one saved mask: the frame is the render's largest tensor, and
    autograd's chain of five full-frame operations cost more than the model's input layer."""

    @staticmethod
    def light(x, scale, shift, noise):
        """x * scale + shift + noise, a new tensor."""
        y = x.clone() if scale is None else torch.addcmul(shift, x, scale)
        if noise is not None:
            y += noise
        return y

    @staticmethod
    def forward(ctx, x, scale, shift, noise):
        y = _Frame.light(x, scale, shift, noise)
        inside = (y >= 0).logical_and_(y <= 1)
        ctx.save_for_backward(inside, scale)
        return y.clamp_(0, 1)

    @staticmethod
    def backward(ctx, grad):
        inside, scale = ctx.saved_tensors
        grad = grad * inside
        return (grad if scale is None else grad * scale), None, None, None


def frame_effects(frames: torch.Tensor, cfg: Photometric,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Lighting and sensor noise on whole frames: sample_frame, then apply_frame."""
    return apply_frame(frames, sample_frame(frames.shape, cfg, generator, frames.device))


def clip01(x: torch.Tensor) -> torch.Tensor:
    """Clamp to [0, 1], but keep the gradient of values sitting exactly on a bound.

    torch.clamp gives zero gradient at x == 0, which would freeze a black patch for good.
    """
    return torch.where((x < 0) | (x > 1), x.detach().clamp(0, 1), x)
