"""Placing a patch into scenes: random scale, rotation, position and perspective in one batched warp.

One homography per view maps patch pixels straight to the output image, so a small patch is
warped once at the model's resolution (no intermediate canvas). The patch travels with an explicit
coverage mask: black is a colour here, never "transparent".
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F
from kornia.geometry.transform import get_perspective_transform

from transforms.draws import uniform
from transforms.params import Params, Views, eot_settings, params
from transforms.photometric import (FrameParams, Photometric, TextureParams, apply_frame, apply_texture,
                                    sample_frame, sample_texture)


@dataclass
class Placement:
    scale: tuple[float, float] = (0.8, 1.0)  # patch side as a fraction of the image side
    rotation_deg: float = 20.0  # uniform in [-r, r]
    perspective: float = 0.2  # corner jitter as a fraction of the patch side
    random_position: bool = True  # else centred


@params
class PlaceParams(Params):
    """Where each view's patch lands: scale (patch side / image side), rotation_deg, centre
    (cx, cy) in image px, all (n,); corners (n, 4, 2): the patch's corners before rotation,
    centred, in patch sides (perspective jitter included)."""

    scale: torch.Tensor
    rotation_deg: torch.Tensor
    cx: torch.Tensor
    cy: torch.Tensor
    corners: torch.Tensor


def sample_placement(n: int, size: int, cfg: Placement, generator: torch.Generator | None = None,
                     device="cpu") -> PlaceParams:
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
    corners = _UNIT.to(device)[None] + cfg.perspective * (u(n, 4, 2) - 0.5)
    return PlaceParams(scale, angle, cx, cy, corners)


# Patch corners centred at the origin, in units of the printed side.
_UNIT = torch.tensor([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]])


def homographies(p: PlaceParams, patch_px: int, size: int) -> torch.Tensor:
    """(n, 3, 3) homographies from patch pixel coords to image pixel coords."""
    n, dev = len(p.scale), p.scale.device
    side = p.scale * size
    theta = torch.deg2rad(p.rotation_deg)
    cos, sin = theta.cos()[:, None], theta.sin()[:, None]
    x = p.corners[..., 0] * side[:, None]
    y = p.corners[..., 1] * side[:, None]
    dst = torch.stack([cos * x - sin * y + p.cx[:, None], sin * x + cos * y + p.cy[:, None]], dim=-1)
    src = (_UNIT.to(dev)[None] + 0.5) * (patch_px - 1)
    return get_perspective_transform(src.expand(n, -1, -1), dst)


def sample_homographies(n: int, patch_px: int, size: int, cfg: Placement,
                        generator: torch.Generator | None = None, device="cpu"):
    """Homographies (n, 3, 3) from patch pixel coords to image pixel coords, and their parameters."""
    p = sample_placement(n, size, cfg, generator, device)
    return homographies(p, patch_px, size), {"scale": p.scale, "rotation_deg": p.rotation_deg,
                                             "cx": p.cx, "cy": p.cy}


def place(patch: torch.Tensor, backgrounds: torch.Tensor, H: torch.Tensor) -> torch.Tensor:
    """patch: (3, h, w) or one per view (B, 3, h, w), in [0, 1]; backgrounds: (B, 3, S, S);
    H: (B, 3, 3) -> views (B, 3, S, S)."""
    B, _, S, _ = backgrounds.shape
    patch = patch.expand(B, -1, -1, -1) if patch.dim() == 3 else patch
    return paste(patch, H, S, backgrounds)


def paste(x: torch.Tensor, H: torch.Tensor, size: int, behind: torch.Tensor,
          frame: FrameParams | None = None) -> torch.Tensor:
    """x (B, 3, h, w) warped by H (B, 3, 3) onto a size x size frame over `behind` (anything that
    broadcasts to (B, 3, size, size)): bilinear, the edges blending with what lies behind; then
    the frame's light and noise (apply_frame) when `frame` is given.

    Each view is sampled only inside its card's bounding box (the card often covers a small part
    of the frame), its coverage (what a warp of an all-ones alpha channel gives) worked out from
    the sampling positions, and only the boxes go through autograd: the rest of the frame cannot
    depend on x. Same values as warp_perspective of x with a ones channel, to float error
    (tests/test_placement.py)."""
    B, _, h, w = x.shape
    behind = behind.expand(B, 3, size, size)
    with torch.set_grad_enabled(torch.is_grad_enabled() and behind.requires_grad):
        whole = behind if frame is None else apply_frame(behind, frame)
    inv = torch.linalg.inv(H.double())  # frame px -> texel px, in double: positions far from the origin
    boxes, parts = [], []
    for i, (y0, y1, x0, x1) in enumerate(_boxes(H, h, w, size)):
        if y1 <= y0 or x1 <= x0:
            continue
        u, v = _sample_at(inv[i], y0, y1, x0, x1)
        grid = torch.stack([u * (2 / (w - 1)) - 1, v * (2 / (h - 1)) - 1], -1)[None].to(x.dtype)
        card = F.grid_sample(x[i:i + 1], grid, mode="bilinear", padding_mode="zeros", align_corners=True)
        with torch.no_grad():  # bilinear weights of the texels inside the card: coverage along u times along v
            alpha = (_inside(u, w) * _inside(v, h)).to(x.dtype)
        part = card + (1 - alpha) * behind[i:i + 1, :, y0:y1, x0:x1]
        parts.append(part if frame is None else apply_frame(part, _frame_box(frame, i, y0, y1, x0, x1)))
        boxes.append((i, y0, y1, x0, x1))
    return _Boxes.apply(whole, boxes, *parts)


def _frame_box(p: FrameParams, i: int, y0: int, y1: int, x0: int, x1: int) -> FrameParams:
    """View i's frame effects on the frame's rows y0:y1 and columns x0:x1."""
    pick = lambda t: None if t is None else t[i:i + 1]  # noqa: E731
    noise = None if p.noise is None else p.noise[i:i + 1, :, y0:y1, x0:x1]
    return FrameParams(pick(p.contrast), pick(p.brightness), pick(p.temperature), noise)


class _Boxes(torch.autograd.Function):
    """The whole frames with each view's box replaced by its part: one copy forward, and the
    gradient of each part a slice of the frames' (autograd's slice assignment would clone the
    whole frames' gradient once per view)."""

    @staticmethod
    def forward(ctx, whole, boxes, *parts):
        ctx.boxes = boxes
        out = whole.clone()
        for (i, y0, y1, x0, x1), part in zip(boxes, parts):
            out[i, :, y0:y1, x0:x1] = part[0]
        return out

    @staticmethod
    def backward(ctx, grad):
        parts = [grad[i:i + 1, :, y0:y1, x0:x1].clone() for i, y0, y1, x0, x1 in ctx.boxes]
        if ctx.needs_input_grad[0]:
            whole = grad.clone()
            for i, y0, y1, x0, x1 in ctx.boxes:
                whole[i, :, y0:y1, x0:x1] = 0
        else:
            whole = None
        return (whole, None, *parts)


def _boxes(H: torch.Tensor, h: int, w: int, size: int) -> list[tuple[int, int, int, int]]:
    """Per view, the frame rows y0:y1 and columns x0:x1 that the warped card reaches (its texels
    reach one px past the centres of the outer ones), or the whole frame where a corner projects
    behind the camera (no box then bounds it)."""
    with torch.no_grad():
        reach = torch.tensor([[-1.0, -1.0, 1.0], [w, -1.0, 1.0], [w, h, 1.0], [-1.0, h, 1.0]],
                             dtype=torch.float64, device=H.device)
        p = torch.einsum("bij,kj->bki", H.double(), reach)  # (B, 4, 3)
        z = p[..., 2]
        xy = p[..., :2] / z[..., None]
        lo = (xy.amin(1).floor() - 1).clamp(0, size).long().tolist()
        hi = (xy.amax(1).ceil() + 2).clamp(0, size).long().tolist()
        whole = ((z <= 0).any(1) | (z.sign() != z[:, :1].sign()).any(1)).tolist()
    return [(0, size, 0, size) if whole[i] else (lo[i][1], hi[i][1], lo[i][0], hi[i][0]) for i in range(len(z))]


def _sample_at(inv: torch.Tensor, y0: int, y1: int, x0: int, x1: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Texel coordinates (u, v), each (y1 - y0, x1 - x0), that frame px [y0:y1, x0:x1] sample."""
    ys = torch.arange(y0, y1, device=inv.device, dtype=inv.dtype)[:, None]
    xs = torch.arange(x0, x1, device=inv.device, dtype=inv.dtype)[None, :]
    z = inv[2, 0] * xs + inv[2, 1] * ys + inv[2, 2]
    return (inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2]) / z, (inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2]) / z


def _inside(u: torch.Tensor, n: int) -> torch.Tensor:
    """The share of a bilinear sample at u that falls on texels 0..n-1 (zeros outside)."""
    return torch.minimum(u + 1, n - u).clamp(0, 1)


@params
class BackgroundParams(Params):
    """What lies behind each view: a plain colour (n, 3, 1, 1), or a scene index (n,) and
    whether it is flipped (n,)."""

    plain: torch.Tensor | None = None
    index: torch.Tensor | None = None
    flip: torch.Tensor | None = None


def sample_backgrounds(n: int, scenes: torch.Tensor | None, generator: torch.Generator | None = None,
                       device="cpu") -> BackgroundParams:
    if scenes is None:
        grey = torch.rand(n, 1, 1, 1, generator=generator, device=device)
        tint = 0.1 * (torch.rand(n, 3, 1, 1, generator=generator, device=device) - 0.5)
        return BackgroundParams(plain=(grey + tint).clamp(0, 1))
    idx = torch.randint(len(scenes), (n,), generator=generator, device=scenes.device)
    flip = torch.rand(n, generator=generator, device=device) < 0.5
    return BackgroundParams(index=idx, flip=flip)


def render_backgrounds(p: BackgroundParams, size: int, scenes: torch.Tensor | None, device="cpu") -> torch.Tensor:
    """(n, 3, size, size): the scenes p picked (flipped where it says), or its plain colours."""
    if p.plain is not None:
        return p.plain.expand(len(p.plain), 3, size, size)
    picked = scenes[p.index].to(device)
    return torch.where(p.flip[:, None, None, None], picked.flip(-1), picked)


def random_backgrounds(n: int, size: int, scenes: torch.Tensor | None,
                       generator: torch.Generator | None = None, device="cpu") -> torch.Tensor:
    """(n, 3, size, size): random scenes (with random flips), or plain random-grey surroundings."""
    return render_backgrounds(sample_backgrounds(n, scenes, generator, device), size, scenes, device)


@params
class PasteParams(Params):
    """One batch of pasted views: placement, texture effects, background, frame effects."""

    place: PlaceParams
    texture: TextureParams
    background: BackgroundParams
    frame: FrameParams


@dataclass
class PasteViews(Views):
    """The patch pasted into scenes or plain surroundings (the none, digital, print and webcam
    presets): a ViewModel (transforms.params)."""

    placement: Placement = field(default_factory=Placement)
    photometric: Photometric = field(default_factory=Photometric)

    def sample(self, n: int, size: int, patch_px: int, scenes=None, generator=None, device="cpu",
               mapped: bool = False) -> PasteParams:
        place = sample_placement(n, size, self.placement, generator, device)
        texels_per_pixel = patch_px / (place.scale * size)
        texture = sample_texture(n, self.photometric, texels_per_pixel, size, generator, device)
        background = sample_backgrounds(n, scenes, generator, device)
        return PasteParams(place, texture, background, sample_frame((n, 3, size, size), self.photometric,
                                                                     generator, device))

    def render(self, patch: torch.Tensor, p: PasteParams, size: int, scenes=None, patch_map=None):
        if patch_map is not None:
            patch = patch_map(patch[None])[0]
        n = len(p.place.scale)
        textures = apply_texture(patch[None].expand(n, -1, -1, -1), p.texture)
        views = place(textures, render_backgrounds(p.background, size, scenes, patch.device),
                      homographies(p.place, patch.shape[-1], size))
        return apply_frame(views, p.frame), {"scale": p.place.scale, "rotation_deg": p.place.rotation_deg,
                                             "cx": p.place.cx, "cy": p.place.cy}

    @property
    def scale(self) -> tuple[float, float]:
        return self.placement.scale

    def with_scale(self, scale) -> PasteViews:
        """A fixed scale (the none preset) stays fixed: at the middle of the range given."""
        if self.placement.scale[0] == self.placement.scale[1]:
            mid = (scale[0] + scale[1]) / 2
            scale = (mid, mid)
        return replace(self, placement=replace(self.placement, scale=tuple(scale)))

    def settings(self) -> dict:
        return eot_settings(self.placement, self.photometric)
