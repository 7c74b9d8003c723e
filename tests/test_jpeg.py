"""transforms.jpeg: the matrix-product codec equals kornia's jpeg_codec_differentiable, value and
gradient, up to float error (its resize matrices are read off kornia's own resize)."""
import pytest
import torch
import torch.nn.functional as F
from kornia.enhance import jpeg_codec_differentiable

from transforms.jpeg import jpeg_codec


def _coded(fn, x, quality, weights):
    x = x.clone().requires_grad_(True)
    out = fn(x, quality)
    (out * weights).sum().backward()
    return out.detach(), x.grad


@pytest.mark.parametrize("shape, smooth", [((3, 3, 64, 64), True), ((2, 3, 50, 37), True),  # 50 x 37: padded
                                           ((3, 3, 32, 32), False)])
def test_codec_equals_kornia(shape, smooth):
    g = torch.Generator().manual_seed(0)
    # smoothed noise with edges (coefficients across the whole range, as a printed card gives), or
    # raw noise: decoded far outside [0, 1], where kornia's clamp acts
    x = torch.rand(*shape, generator=g)
    x = F.avg_pool2d(x, 3, 1, 1) if smooth else x
    x[..., : shape[-2] // 3, :] = 0.0  # a black band
    quality = torch.tensor([20.0, 55.0, 90.0])[: shape[0]]
    weights = torch.randn(shape, generator=g)
    want, want_grad = _coded(jpeg_codec_differentiable, x, quality, weights)
    got, got_grad = _coded(jpeg_codec, x, quality, weights)
    assert (want - x).abs().max() > 0.02  # the codec did something worth comparing
    assert (got - want).abs().max() < 1e-5
    assert torch.allclose(got_grad, want_grad, rtol=1e-3, atol=1e-4)
    assert (got_grad.sign() == want_grad.sign()).float().mean() > 0.999


def test_codec_keeps_dtype_and_ignores_autocast():
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    q = torch.tensor([50.0])
    plain = jpeg_codec(x, q)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under = jpeg_codec(x, q)
    assert under.dtype == torch.float32 and torch.equal(plain, under)
