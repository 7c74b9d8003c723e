"""transforms.placement.paste: sampling each card only inside its bounding box, with its coverage
worked out instead of warped, gives what kornia's warp of the card with a ones channel gives."""
import torch
from kornia.geometry.transform import warp_perspective

from transforms.placement import Placement, homographies, paste, sample_placement


def _plain(x, H, size, behind):
    """The plain way: an alpha channel of ones warped with the card over the whole frame."""
    rgba = torch.cat([x, torch.ones_like(x[:, :1])], 1)
    warped = warp_perspective(rgba, H, (size, size), mode="bilinear", padding_mode="zeros", align_corners=True)
    return warped[:, :3] + (1 - warped[:, 3:]) * behind


def _case(dtype):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(6, 3, 40, 40, generator=g, dtype=dtype)
    p = sample_placement(6, 64, Placement(scale=(0.2, 1.2), rotation_deg=40.0, perspective=0.4), g)
    p.cx[0], p.cy[0] = -30.0, 10.0  # one card wholly off the frame, one half off it
    p.cx[1] = 0.0
    return x, homographies(p, 40, 64).to(dtype), torch.rand(6, 3, 64, 64, generator=g, dtype=dtype)


def test_paste_equals_the_plain_warp():
    x, H, behind = _case(torch.float64)
    weights = torch.randn(6, 3, 64, 64, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    grads = []
    for fn in (paste, _plain):
        xx, bb = x.clone().requires_grad_(True), behind.clone().requires_grad_(True)
        out = fn(xx, H, 64, bb)
        (out * weights).sum().backward()
        grads.append((out.detach(), xx.grad, bb.grad))
    (fast, gx, gb), (plain, px, pb) = grads
    assert torch.allclose(fast, plain, atol=1e-9)
    assert torch.allclose(gx, px, atol=1e-9) and torch.allclose(gb, pb, atol=1e-9)
    assert torch.equal(fast[0], behind[0])  # the card off the frame leaves it as it was


def test_paste_in_float32_is_as_close_to_exact_as_kornia():
    x, H, behind = _case(torch.float32)
    exact = _plain(x.double(), H.double(), 64, behind.double())
    fast_err = (paste(x, H, 64, behind).double() - exact).abs().max()
    plain_err = (_plain(x, H, 64, behind).double() - exact).abs().max()
    assert fast_err < 1e-4 and fast_err <= 2 * plain_err


def test_paste_with_the_frame_pass_equals_the_frame_pass_after_it():
    """Only the card boxes go through autograd with the frame's light and noise; the rest of
    the frame the same pass without it: the result is the frame pass over the whole pasted frame."""
    from transforms.photometric import Photometric, apply_frame, sample_frame

    x, H, behind = _case(torch.float32)
    cfg = Photometric(contrast=(0.6, 1.3), brightness=0.2, temperature=0.1, noise_std=0.1)
    frame = sample_frame((6, 3, 64, 64), cfg, torch.Generator().manual_seed(2))
    weights = torch.randn(6, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    results = []
    for fn in (lambda t: paste(t, H, 64, behind, frame), lambda t: apply_frame(paste(t, H, 64, behind), frame)):
        t = x.clone().requires_grad_(True)
        out = fn(t)
        (out * weights).sum().backward()
        results.append((out.detach(), t.grad))
    assert torch.equal(results[0][0], results[1][0]) and (results[0][0] == 1).any()  # clipped somewhere
    assert torch.allclose(results[0][1], results[1][1], atol=1e-5)
