"""Differentiable JPEG as a few matrix products: kornia's jpeg_codec_differentiable, the same maths,
several times cheaper on a CPU (the held views code every other card; kornia's codec was half of
the render's cost, most of it the backward of the grouped convolution in its chroma resize).

kornia codes an image as: RGB -> YCbCr x 255, replicate-padded to a multiple of 16; the chroma
halved (an antialiased bilinear resize: a Gaussian, then bilinear); 8 x 8 block DCTs of each
plane minus 128; quantised by per-view tables with a differentiable rounding r(z) = round(z) +
(z - round(z))^3; and back (dequantise, inverse DCT, the chroma doubled bilinearly, cropped, to
RGB, clamped to [0, 1]). All of it but the rounding and the clamp is linear and acts on y and x
apart: the colour maps are 3 x 3 matrices, the DCTs 8 x 8 ones on each block, and the chroma's
halving and doubling banded matrices applied by their few taps per row. The resize and colour
matrices are read off kornia's own functions, so the two agree to float error; only a coefficient
within float error of a half-integer can round the other way (tests/test_jpeg.py compares them).
"""
from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F
from kornia.color import rgb_to_ycbcr, ycbcr_to_rgb
from kornia.enhance.jpeg import (_default_quantization_tables, _differentiable_clipping,
                                 _differentiable_polynomial_floor, _jpeg_quality_to_scale)
from kornia.geometry.transform import rescale

_BLOCK = 8  # the DCT's block side
_MCU = 16  # kornia pads to a multiple of this (two chroma blocks)


def _dct8(dtype=torch.float64) -> torch.Tensor:
    """(8, 8): the 8-point DCT-II kornia uses, orthonormal (its inverse is its transpose)."""
    i = torch.arange(_BLOCK, dtype=torch.float64)
    alpha = torch.ones(_BLOCK, dtype=torch.float64)
    alpha[0] = 1 / math.sqrt(2)
    return (0.5 * alpha[:, None] * torch.cos((2 * i[None, :] + 1) * i[:, None] * math.pi / 16)).to(dtype)


def _resize_matrix(n: int, factor: float, antialias: bool) -> torch.Tensor:
    """(round(n * factor), n): kornia's bilinear rescale along one axis, read off by resizing
    images that vary only along that axis (unit impulses) and are constant along the other."""
    impulses = torch.eye(n, dtype=torch.float64)[:, None, :, None].expand(n, 1, n, _MCU)
    out = rescale(impulses.contiguous(), factor, interpolation="bilinear", align_corners=False, antialias=antialias)
    return out[:, 0, :, 0].T


@lru_cache(maxsize=16)
def _chroma_axis(n: int, device: torch.device, dtype: torch.dtype) -> tuple[tuple[torch.Tensor, torch.Tensor], ...]:
    """One axis of length n of a chroma plane: the way in (replicate-pad to m, a multiple of 16,
    then halve) and the way out (double, crop), each as taps (see _taps)."""
    m = math.ceil(n / _MCU) * _MCU
    pad = torch.eye(n, dtype=torch.float64)[torch.arange(m).clamp(max=n - 1)]
    down = _resize_matrix(m, 0.5, True) @ pad
    up = _resize_matrix(m // 2, 2.0, False)[:n]
    return tuple((idx.to(device), w.to(device, dtype)) for idx, w in (_taps(down), _taps(up)))


def _taps(matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A banded (rows, cols) matrix as (rows, t) column indices and weights, t its most non-zero
    entries in a row (4 halving, 2 doubling): a product with it costs t, not cols, per output."""
    t = int((matrix.abs() > 1e-12).sum(1).max())
    idx = matrix.abs().topk(t, dim=1).indices
    return idx, matrix.gather(1, idx)


def _resample(x: torch.Tensor, taps: tuple[torch.Tensor, torch.Tensor], axis: int) -> torch.Tensor:
    """matrix @ x along `axis` (-2 or -1) from its taps."""
    idx, w = taps
    shape = (-1, 1) if axis == -2 else (-1,)
    out = w[:, 0].view(shape) * x.index_select(axis, idx[:, 0])
    for j in range(1, idx.shape[1]):
        out = out + w[:, j].view(shape) * x.index_select(axis, idx[:, j])
    return out


@lru_cache(maxsize=8)
def _colour(device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    """kornia's colour conversions as matrix and offset, read off its functions: RGB -> YCbCr
    x 255 - 128 (the planes the DCT takes), and those planes, coded, back to RGB (before the
    clamp to [0, 1] that ends kornia's ycbcr_to_rgb; read off inside that range)."""
    eye = torch.eye(3, dtype=torch.float64)[:, :, None, None]
    zero = torch.zeros(1, 3, 1, 1, dtype=torch.float64)
    to0 = 255.0 * rgb_to_ycbcr(zero).flatten()
    to = (255.0 * rgb_to_ycbcr(eye)).flatten(1).T - to0[:, None]
    back0 = ycbcr_to_rgb(zero + 128.0 / 255.0).flatten()
    back = (ycbcr_to_rgb(eye / 255.0 + 128.0 / 255.0)).flatten(1).T - back0[:, None]
    return tuple(t.to(device, dtype) for t in (to, (to0 - 128.0)[:, None], back, back0[:, None]))


def _blocks(x: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """d (8, 8) applied to each 8 x 8 block of x (..., h, w) from both sides: d X d^T."""
    h, w = x.shape[-2:]
    x = (d @ x.unflatten(-2, (h // _BLOCK, _BLOCK))).flatten(-3, -2)
    return (x.unflatten(-1, (w // _BLOCK, _BLOCK)) @ d.T).flatten(-2)


def _tables(quality: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """kornia's quantisation tables for each view's quality: luma and chroma (n, 8, 8)."""
    qy, qc = _default_quantization_tables(quality.device, dtype)
    scale = _jpeg_quality_to_scale(quality.to(dtype))[:, None, None]
    return tuple(_differentiable_polynomial_floor(_differentiable_clipping((q * scale + 50.0) / 100.0, 1, 255))
                 for q in (qy, qc))


class _Quantise(torch.autograd.Function):
    """DCT coefficients (n, k, h, w) -> quantised by the tiled tables (n, 1, h, w), rounded with
    r(z) = round(z) + (z - round(z))^3, dequantised. Its derivative is 3 (z - round(z))^2, the
    table cancelling: one saved tensor instead of autograd's chain of five."""

    @staticmethod
    def forward(ctx, coef, tiled):
        z = coef / tiled
        frac = z - z.round()
        ctx.save_for_backward(frac)
        return (z - frac + frac ** 3) * tiled

    @staticmethod
    def backward(ctx, grad):
        (frac,) = ctx.saved_tensors
        return grad * 3 * frac.square(), None


def _quantise(coef: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    rows, cols = coef.shape[-2] // _BLOCK, coef.shape[-1] // _BLOCK
    return _Quantise.apply(coef, table.repeat(1, rows, cols)[:, None])


def jpeg_codec(image: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    """image (n, 3, H, W) RGB in [0, 1], quality (n,) in [0, 100] -> the image JPEG-coded, as
    kornia.enhance.jpeg_codec_differentiable codes it (default tables), differentiable in image."""
    dtype = torch.float32 if image.dtype in (torch.float16, torch.bfloat16) else image.dtype
    H, W = image.shape[-2:]
    pad_h, pad_w = -H % _MCU, -W % _MCU
    d8 = _dct8(dtype).to(image.device)
    with torch.autocast(image.device.type, enabled=False):  # the [0, 255] range needs full precision
        to, to0, back, back0 = _colour(image.device, dtype)
        ycc = to @ image.to(dtype).flatten(2) + to0
        ycc = ycc.view(-1, 3, H, W)  # YCbCr x 255 - 128
        ty, tc = _tables(quality, dtype)
        luma = F.pad(ycc[:, :1], (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else ycc[:, :1]
        luma = _blocks(_quantise(_blocks(luma, d8), ty), d8.T)
        luma = luma[..., :H, :W] if pad_h or pad_w else luma
        (y_in, y_out), (x_in, x_out) = _chroma_axis(H, image.device, dtype), _chroma_axis(W, image.device, dtype)
        half = _resample(_resample(ycc[:, 1:], y_in, -2), x_in, -1)
        half = _blocks(_quantise(_blocks(half, d8), tc), d8.T)
        chroma = _resample(_resample(half, y_out, -2), x_out, -1)
        rgb = (back @ torch.cat([luma, chroma], 1).flatten(2) + back0).view(-1, 3, H, W)
    # kornia's ycbcr_to_rgb clamps to [0, 1] (its codec's soft clip after that, at 0 and 255, then never acts)
    return rgb.clamp(0, 1).to(image.dtype)
