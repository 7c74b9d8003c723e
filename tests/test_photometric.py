"""transforms.photometric: the fused frame pass equals the plain composition it replaces."""
import torch

from transforms.photometric import FrameParams, Photometric, apply_frame, clip01, sample_frame


def _plain(x, p: FrameParams):
    c, b, t = p.contrast, p.brightness, p.temperature
    gains = torch.cat([1 + t, torch.ones_like(t), 1 - t], dim=1)
    return clip01(((x - 0.5) * c + 0.5 + b) * gains + p.noise)


def test_apply_frame_equals_the_plain_composition():
    cfg = Photometric(contrast=(0.6, 1.3), brightness=0.15, temperature=0.1, noise_std=0.05)
    p = sample_frame((4, 3, 16, 16), cfg, torch.Generator().manual_seed(0))
    x0 = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(1)) * 1.4 - 0.2
    weights = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    got, want = [], []
    for fn, out in ((apply_frame, got), (_plain, want)):
        x = x0.clone().requires_grad_(True)
        y = fn(x, p)
        (y * weights).sum().backward()
        out += [y.detach(), x.grad]
    assert torch.allclose(got[0], want[0], atol=1e-6) and got[0].min() == 0 and got[0].max() == 1
    assert torch.allclose(got[1], want[1], atol=1e-6)
    assert (got[1] == 0).any() and (got[1] != 0).any()  # clipped pixels pass nothing, the rest pass


def test_apply_frame_keeps_the_gradient_on_the_bounds():
    # a black patch on black, no light or noise: the clip must not freeze it (clip01's rule)
    x = torch.zeros(1, 3, 4, 4, requires_grad=True)
    apply_frame(x, FrameParams()).sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))


def test_gaussian_equals_kornias_blur_and_its_gradient():
    """photometric.gaussian: kornia's separable gaussian_blur2d forward, a hand-written backward
    (a convolution with the edges folded back): same values, same gradient, and gradcheck."""
    import pytest
    from kornia.filters import gaussian_blur2d

    from transforms.photometric import gaussian

    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(3, 2, 20, 17, generator=g, dtype=torch.float64)
    weights = torch.randn(3, 2, 20, 17, generator=g, dtype=torch.float64)
    for sigma in (torch.tensor([0.5, 1.5, 3.0], dtype=torch.float64),  # per view
                  torch.tensor([[0.4, 2.0], [2.5, 0.6], [1.0, 1.0]], dtype=torch.float64)):  # per view and axis
        k = 9
        results = []
        for fn in (lambda t: gaussian(t, sigma, k),
                   lambda t: gaussian_blur2d(t, (k, k), (sigma[:, None] if sigma.dim() == 1 else sigma).expand(3, 2)
                                             .contiguous(), border_type="replicate")):
            x = x0.clone().requires_grad_(True)
            out = fn(x)
            (out * weights).sum().backward()
            results.append((out.detach(), x.grad))
        assert torch.allclose(results[0][0], results[1][0], atol=1e-12)
        assert torch.allclose(results[0][1], results[1][1], atol=1e-12)
    small = x0[:1, :1, :7, :6].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: gaussian(t, torch.tensor([[1.2, 0.7]], dtype=torch.float64), 5), (small,))
    with pytest.raises(Exception):  # the test above can fail: a blur of the wrong axis differs
        assert torch.allclose(gaussian(x0, torch.tensor([[0.4, 2.0]] * 3, dtype=torch.float64), 9),
                              gaussian(x0, torch.tensor([[2.0, 0.4]] * 3, dtype=torch.float64), 9))
