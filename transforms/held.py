"""The whole camera frame when someone holds the printed card up in a scene: the views the
camera's own classifier sees (the `held` preset, the default).

Every physical-attack paper judges the classifier's verdict on the frame, not on a crop of the
patch (Brown 2017, Athalye 2018, Eykholt 2018; REAP 2023: render what the camera really sees,
the printed object's border and the camera's resize included). So one view is, batched and
differentiable end to end:

    patch (3, P, P) -> print response (ink black, paper white, per channel; or a measured colour map)
      -> the card as `blocks print` lays it out: white paper, an ArUco marker diagonally outside
         each patch corner (printing.layout.Surround), a white border where it was cut out
      -> uneven light across the card (a gain falling off in a random direction)
      -> defocus, motion blur and JPEG on the card texture, widths measured in frame pixels
      -> a pinhole camera (fov_deg) looking at the card tilted in 3D (up to tilt_deg about a
         random axis), rolled, placed so the patch side is `coverage` of the frame's shorter side
      -> composited into a scene photo filling a 4:3 or 16:9 frame
      -> the frame reduced to the model's square the two ways deployed classifiers do it:
         squashed (the whole frame resized to S x S) or resized with a centre crop
         (torchvision's short side to S / 0.875, centre S x S)
      -> lighting and sensor noise on the whole frame                         -> (B, 3, S, S)

The frame is never rendered at camera resolution: each view is one homography from the card's
texels straight to the model's pixels (the camera projection composed with the reduction, its
area filter a blur of the card), and one affine resampling of the scene. Blur widths are in texels.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from kornia.filters import motion_blur
from kornia.geometry.transform import get_perspective_transform

from common.distance import WEBCAM_FOV_DEG
from transforms.card import CardLayout, card_base, card_texture, hole
from transforms.draws import uniform
from transforms.params import Params, params
from transforms.photometric import (FrameParams, JpegParams, Photometric, apply_jpeg, blur_side,
                                    gaussian, sample_frame, sample_jpeg)
from transforms.placement import paste
from transforms.rectified import INK, PAPER

REDUCTIONS = ("squash", "crop")
CROP_SHARE = 224 / 256  # torchvision's Resize(256) + CenterCrop(224): the crop's share of the short side


@dataclass
class HeldCard:
    coverage: tuple[float, float] = (0.15, 0.45)  # patch side / frame's shorter side (distance)
    tilt_deg: float = 30.0  # max out-of-plane tilt, about a random axis in the card's plane
    roll_deg: float = 25.0  # max rotation in the image plane
    fov_deg: float = WEBCAM_FOV_DEG  # horizontal field of view of the camera (a typical webcam)
    aspects: tuple[float, ...] = (4 / 3, 16 / 9)  # frame width / height
    reductions: tuple[str, ...] = REDUCTIONS
    frame_height_px: tuple[int, int] = (480, 720)  # what blur widths are measured in
    ink: tuple[float, float] = INK  # darkest printed value, per channel
    paper: tuple[float, float] = PAPER  # lightest (paper white), per channel
    light_falloff: float = 0.35  # max gain drop across the card
    defocus_px: tuple[float, float] = (0.3, 1.5)  # Gaussian sigma, frame px
    motion_px: float = 6.0  # max motion-blur length, frame px
    # The reduction to the model's square averages frame px (capture's INTER_AREA): without that
    # low-pass one homography point-samples a small or squashed card: aliasing no camera shows.
    antialias: bool = True
    card: CardLayout = field(default_factory=CardLayout)
    # Training only: over the first `warmup` share of a run the coverage range widens from its upper
    # part (start_share of it, the nearest views, which a patch from black wins first) to all of it.
    warmup: float = 0.25
    start_share: float = 0.4
    photometric: Photometric = field(default_factory=lambda: Photometric(
        contrast=(0.7, 1.2), brightness=0.1, temperature=0.08, noise_std=0.04,
        jpeg_quality=(35.0, 90.0), jpeg_p=0.5))

    # a ViewModel (transforms.params): draws apart from rendering
    def sample(self, n: int, size: int, patch_px: int, scenes=None, generator=None, device="cpu",
               mapped: bool = False) -> HeldParams:
        return sample_held(n, size, patch_px, self, scenes, generator, device, mapped)

    def render(self, patch: torch.Tensor, p: HeldParams, size: int, scenes=None, patch_map=None):
        return render_held(patch, p, size, self, scenes, patch_map)


def _rotation(axis_angle: torch.Tensor, tilt: torch.Tensor, roll: torch.Tensor) -> torch.Tensor:
    """(B,) angles (rad) -> (B, 3, 3): roll about the optical axis after a tilt by `tilt` about the
    in-plane axis at angle `axis_angle` (Rodrigues' formula)."""
    kx, ky = axis_angle.cos(), axis_angle.sin()
    c, s = tilt.cos(), tilt.sin()
    z = torch.zeros_like(c)
    # rotation about (kx, ky, 0)
    R = torch.stack([torch.stack([c + kx * kx * (1 - c), kx * ky * (1 - c), ky * s], -1),
                     torch.stack([kx * ky * (1 - c), c + ky * ky * (1 - c), -kx * s], -1),
                     torch.stack([-ky * s, kx * s, c], -1)], -2)
    cr, sr = roll.cos(), roll.sin()
    one = torch.ones_like(c)
    Rz = torch.stack([torch.stack([cr, -sr, z], -1), torch.stack([sr, cr, z], -1),
                      torch.stack([z, z, one], -1)], -2)
    return Rz @ R


@params
class Pose(Params):
    """Per view (n,): the frame (aspect: width / height; crop: centre-cropped, else squashed), the
    card's pose (coverage: patch side / frame's shorter side; tilt about the in-plane axis at
    angle `axis`, then roll; rad) and centre (n, 2): the patch centre's offset from the frame
    centre, in frame heights."""

    coverage: torch.Tensor
    aspect: torch.Tensor
    crop: torch.Tensor
    axis: torch.Tensor
    tilt: torch.Tensor
    roll: torch.Tensor
    centre: torch.Tensor | None = None


def sample_pose(n: int, cfg: HeldCard, generator=None, device="cpu") -> Pose:
    """The frame and the card pose per view, placed where the patch stays in view."""
    u = uniform(generator, device)
    lo, hi = cfg.coverage
    coverage = lo + (hi - lo) * u(n)
    aspect = torch.tensor(cfg.aspects, device=device)[torch.randint(len(cfg.aspects), (n,), generator=generator,
                                                                     device=device)]
    crop = torch.tensor(["crop" == r for r in cfg.reductions], device=device)[
        torch.randint(len(cfg.reductions), (n,), generator=generator, device=device)]
    axis = 2 * math.pi * u(n)
    # |tilt| uniform in [0, tilt_deg]: the card is seldom held exactly square to the camera
    tilt = torch.deg2rad(cfg.tilt_deg * u(n))
    roll = torch.deg2rad(cfg.roll_deg * (2 * u(n) - 1))
    pose = Pose(coverage, aspect, crop, axis, tilt, roll)
    patch_off = _project(pose, cfg.fov_deg, 0.5)
    vis_w, vis_h = _visible(crop, aspect)
    # The patch stays in view (the card's border may leave it): a random position where it fits.
    ext_lo, ext_hi = patch_off.amin(1), patch_off.amax(1)  # (n, 2)
    free_lo = torch.stack([-vis_w / 2, -vis_h / 2], 1) - ext_lo
    free_hi = torch.stack([vis_w / 2, vis_h / 2], 1) - ext_hi
    mid = (free_lo + free_hi) / 2
    span = (free_hi - free_lo).clamp(min=0)
    pose.centre = mid + (u(n, 2) - 0.5) * span  # offsets from the frame centre
    return pose


def _project(pose: Pose, fov_deg: float, half: float) -> torch.Tensor:
    """A card-plane square of half-side `half` (patch sides) -> its corners' offsets from the
    card centre in the frame (n, 4, 2), frame heights, through a pinhole camera of fov_deg."""
    R = _rotation(pose.axis, pose.tilt, pose.roll)
    dev = R.device
    f = (pose.aspect / 2) / math.tan(math.radians(fov_deg) / 2)  # focal length in frame heights
    depth = f / pose.coverage  # head-on, a unit patch then spans `coverage` frame heights
    unit = torch.tensor([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]], device=dev)
    pts = torch.cat([unit * half, torch.zeros(4, 1, device=dev)], 1)  # (4, 3)
    cam = torch.einsum("bij,kj->bki", R, pts)
    z = cam[..., 2] + depth[:, None]
    return f[:, None, None] * cam[..., :2] / z[..., None]


def _visible(crop: torch.Tensor, aspect: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The visible part of each frame (width, height in frame heights): all of it when squashed,
    the centre square when cropped."""
    vis_w = torch.where(crop, CROP_SHARE * torch.ones_like(aspect), aspect)
    vis_h = torch.where(crop, torch.full_like(aspect, CROP_SHARE), torch.ones_like(aspect))
    return vis_w, vis_h


def to_model_px(pose: Pose, off: torch.Tensor, size: int) -> torch.Tensor:
    """Offsets from the patch centre (n, k, 2), frame units -> model px: squash scales the axes
    apart; crop keeps the aspect."""
    vis_w, vis_h = _visible(pose.crop, pose.aspect)
    sx, sy = size / vis_w, size / vis_h
    p = off + pose.centre[:, None]
    return torch.stack([p[..., 0] * sx[:, None] + size / 2, p[..., 1] * sy[:, None] + size / 2], -1)


@params
class SceneParams(Params):
    """What lies behind each frame: a plain colour (n, 3, 1, 1), or a scene photo (index (n,)),
    the band of it the frame shows (shift (n,), scene coords) and a mirror flip (n,: -1 or 1)."""

    plain: torch.Tensor | None = None
    index: torch.Tensor | None = None
    shift: torch.Tensor | None = None
    flip: torch.Tensor | None = None


def sample_scenes(n: int, pose: Pose, scenes: torch.Tensor | None, generator=None, device="cpu") -> SceneParams:
    u = uniform(generator, device)
    if scenes is None:
        grey = u(n, 1, 1, 1)
        tint = 0.1 * (u(n, 3, 1, 1) - 0.5)
        return SceneParams(plain=(grey + tint).clamp(0, 1))
    idx = torch.randint(len(scenes), (n,), generator=generator, device=scenes.device)
    # normalised scene coords in [-1, 1]: the frame is [-1, 1] wide and [-1/a, 1/a] high, shifted
    band = 1 / pose.aspect
    shift = (1 - band) * (2 * u(n) - 1)
    return SceneParams(index=idx, shift=shift, flip=torch.where(u(n) < 0.5, -1.0, 1.0))


def render_scenes(p: SceneParams, pose: Pose, size: int, scenes: torch.Tensor | None, device="cpu") -> torch.Tensor:
    """(n, 3, size, size): what the model sees of each frame's scene. scenes (N, 3, R, R) are
    square photo crops; a frame of aspect a is a band of one (its full width, 1/a of its height,
    at a random height), squashed or centre-cropped like the card."""
    if p.plain is not None:
        return p.plain.expand(len(p.plain), 3, size, size).contiguous()
    dev, n = scenes.device, len(p.index)
    aspect, shift, flip = pose.aspect.to(dev), p.shift.to(dev), p.flip.to(dev)
    vis_w, vis_h = _visible(pose.crop.to(dev), aspect)
    # model px -> frame units (centred): x = (u - S/2) / sx; frame units -> scene coords: * 2 / a.
    # The map is a scale and shift along each axis apart, so the bilinear resampling is one along
    # rows, then one along columns: what grid_sample (reflection, align_corners=False) computes
    # for the same grid, without its per-pixel grid and a gather of whole scenes.
    base = (2 * torch.arange(size, device=dev, dtype=scenes.dtype) + 1) / size - 1
    y0, y1, wy = _taps((vis_h / aspect)[:, None] * base + shift[:, None], scenes.shape[-2])
    x0, x1, wx = _taps((flip * (vis_w / aspect))[:, None] * base, scenes.shape[-1])
    # whole rows by index from the scenes seen as one (N * 3 * R, R) stack of rows: plain copies
    flat = scenes.flatten(0, 2)
    first = ((p.index.to(dev)[:, None] * 3 + torch.arange(3, device=dev))[..., None] * scenes.shape[-2])  # (n, 3, 1)
    pick = lambda y: flat.index_select(0, (first + y[:, None]).flatten()).view(n, 3, size, -1)  # noqa: E731
    rows = torch.lerp(pick(y0), pick(y1), wy[:, None, :, None].to(scenes.dtype))  # (n, 3, S, R)
    cols = lambda x: rows.gather(3, x[:, None, None, :].expand(-1, 3, size, -1))  # noqa: E731
    return torch.lerp(cols(x0), cols(x1), wx[:, None, None, :].to(scenes.dtype)).to(device)


def _taps(g: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Normalised coordinates g (B, S) on an axis of n px -> the two neighbours and the weight of
    the second, as grid_sample finds them (align_corners=False, reflection padding)."""
    x = ((g + 1) * n - 1) / 2
    span = (x + 0.5).abs()  # reflected about -0.5 and n - 0.5
    extra, flips = span.fmod(n), (span / n).floor()
    x = torch.where(flips % 2 == 0, extra - 0.5, n - extra - 0.5).clamp(0, n - 1)
    lo = x.floor()
    return lo.long(), (lo.long() + 1).clamp(max=n - 1), x - lo


@params
class HeldParams(Params):
    """One batch of held-card frames, everything random about them: the print response (ink,
    paper (n, 3, 1, 1), None under a measured colour map), the light across the card (direction
    (n,) rad, gain drop (n, 1, 1)), the pose, the blur (defocus sigma (n,) and motion kernel in
    card texels, motion angle (n,) or None), JPEG, the scene and the frame's light and noise."""

    ink: torch.Tensor | None
    paper: torch.Tensor | None
    light_direction: torch.Tensor
    light: torch.Tensor
    pose: Pose
    sigma: torch.Tensor
    motion_ks: int
    motion_angle: torch.Tensor | None
    jpeg: JpegParams | None
    scene: SceneParams
    frame: FrameParams


def _sample_print(n: int, cfg: HeldCard, u) -> tuple[torch.Tensor, torch.Tensor]:
    """One level per view plus a small per-channel tint: paper and ink are nearly neutral."""
    ink = (cfg.ink[0] + (cfg.ink[1] - cfg.ink[0]) * (0.7 * u(n, 1, 1, 1) + 0.3 * u(n, 3, 1, 1)))
    return ink, (cfg.paper[0] + (cfg.paper[1] - cfg.paper[0]) * (0.7 * u(n, 1, 1, 1) + 0.3 * u(n, 3, 1, 1)))


def _sample_blur(n: int, C: int, cfg: HeldCard, texels_per_frame_px: torch.Tensor, u):
    """Defocus sigma and motion blur (kernel side, angle or None), widths drawn in frame px,
    in card texels."""
    lo, hi = cfg.defocus_px
    sigma = ((lo + (hi - lo) * u(n)) * texels_per_frame_px).clamp(min=0.1)
    ks, angle = 0, None
    if cfg.motion_px >= 1.5:
        length = float(cfg.motion_px * u(1)) * float(texels_per_frame_px.mean())
        ks = 2 * int(length // 2) + 1
        if ks >= 3 and C > ks:
            angle = 180 * u(n)
    return sigma, ks, angle


def sample_held(n: int, size: int, patch_px: int, cfg: HeldCard, scenes=None, generator=None, device="cpu",
                mapped: bool = False) -> HeldParams:
    """The random parameters of n held-card frames, drawn in the order the renderer meets them."""
    u = uniform(generator, device)
    C = card_base(patch_px, cfg.card)[0].shape[-1]
    ink, paper = (None, None) if mapped else _sample_print(n, cfg, u)
    direction = 2 * math.pi * u(n)
    light = cfg.light_falloff * u(n, 1, 1)
    pose = sample_pose(n, cfg, generator, device)
    # texels per frame px: the card spans C texels over about (patch side in frame px) * C / P
    h_px = cfg.frame_height_px[0] + (cfg.frame_height_px[1] - cfg.frame_height_px[0]) * u(n)
    sigma, ks, angle = _sample_blur(n, C, cfg, patch_px / (pose.coverage * h_px), u)
    jpeg = sample_jpeg(n, cfg.photometric, generator, device)
    scene = sample_scenes(n, pose, scenes, generator, device)
    frame = sample_frame((n, 3, size, size), cfg.photometric, generator, device)
    return HeldParams(ink, paper, direction, light, pose, sigma, ks, angle, jpeg, scene, frame)


def _printed_card(patch: torch.Tensor, p: HeldParams, cfg: HeldCard, patch_map) -> torch.Tensor:
    """(n, 3, C, C): the card as printed (print response or measured colour map), unevenly lit."""
    P, dev, n = patch.shape[-1], patch.device, len(p.light)
    base, off = card_base(P, cfg.card, dev)
    C = base.shape[-1]
    if patch_map is not None:  # a measured printer colour map replaces the generic print response
        printed = patch_map(patch[None]).expand(n, -1, -1, -1)
        card_paper = patch_map(base[None].expand(1, 3, -1, -1)).expand(n, -1, -1, -1)
        card = F.pad(printed, (off, off, off, off)) + card_paper * hole(C, off, P, dev)
    else:
        full = card_texture(patch, cfg.card)[0][None].expand(n, -1, -1, -1)
        card = p.ink + (p.paper - p.ink) * full
    # uneven light: a gain falling off linearly along a random direction across the card
    d = p.light_direction
    ramp = torch.linspace(-0.5, 0.5, C, device=dev)
    along = d.cos()[:, None, None] * ramp[None, None, :] + d.sin()[:, None, None] * ramp[None, :, None]
    return card * (1 - p.light[:, None] * (along[:, None] + 0.5))


def render_held(patch: torch.Tensor, p: HeldParams, size: int, cfg: HeldCard, scenes=None, patch_map=None):
    """patch (3, P, P) -> (frames (n, 3, size, size), their summary) from HeldParams."""
    dev, P = patch.device, patch.shape[-1]
    card = _printed_card(patch, p, cfg, patch_map)
    n, C = card.shape[0], card.shape[-1]
    sigma = _card_sigma(p, P, size, cfg)
    k = blur_side(sigma)
    if k >= 3 and C > k:
        card = gaussian(card, sigma, k)
    if p.motion_angle is not None:
        card = motion_blur(card, p.motion_ks, p.motion_angle, torch.zeros(n, device=dev),
                           border_type="replicate", mode="bilinear")
    card = apply_jpeg(card, p.jpeg)
    reach = 0.5 + card_base(P, cfg.card, dev)[1] / P
    src = torch.tensor([[0.0, 0.0], [C - 1.0, 0.0], [C - 1.0, C - 1.0], [0.0, C - 1.0]], device=dev)
    corners = to_model_px(p.pose, _project(p.pose, cfg.fov_deg, reach), size)
    H = get_perspective_transform(src[None].expand(n, -1, -1), corners)
    frames = paste(card, H, size, render_scenes(p.scene, p.pose, size, scenes, dev), p.frame)
    o = p.pose
    return frames, {"coverage": o.coverage, "tilt_deg": torch.rad2deg(o.tilt), "rotation_deg": torch.rad2deg(o.roll),
                    "aspect": o.aspect, "crop": o.crop.float(), "scale": o.coverage}


def held_views(patch: torch.Tensor, n: int, size: int, cfg: HeldCard, scenes: torch.Tensor | None = None,
               generator: torch.Generator | None = None, patch_map=None):
    """patch: (3, P, P) in [0, 1] -> whole frames (n, 3, size, size) in [0, 1] as the camera's
    classifier sees them, and their parameters: scale (= coverage, patch side / frame's shorter
    side), rotation_deg (roll), tilt_deg, aspect, crop."""
    p = sample_held(n, size, patch.shape[-1], cfg, scenes, generator, patch.device, patch_map is not None)
    return render_held(patch, p, size, cfg, scenes, patch_map)


def _card_sigma(p: HeldParams, P: int, size: int, cfg: HeldCard) -> torch.Tensor:
    """The card's blur per view in texels (n, 2: y, x): the defocus and, with cfg.antialias, the
    reduction's area filter, a Gaussian of 0.375 sqrt(f^2 - 1) for f texels per model px (a box of
    f has sigma f / sqrt(12); 0.375 matched a 4x supersampled render best). Roll and tilt ignored."""
    defocus = p.sigma[:, None].expand(-1, 2)
    if not cfg.antialias:
        return defocus
    vis_w, vis_h = _visible(p.pose.crop, p.pose.aspect)
    per_px = P * torch.stack([vis_h, vis_w], 1) / (p.pose.coverage[:, None] * size)  # texels per model px
    area = 0.375 ** 2 * (per_px ** 2 - 1).clamp(min=0)
    return (defocus ** 2 + area).sqrt()
