"""Expectation over transformation: the random views a patch is trained and judged on.

Presets, mildest first:
- none:    the patch as it is (centred at a fixed scale, no lighting). The original project's setup.
- digital: random scale, rotation and position; no camera effects. For on-screen use.
- print:   plus perspective, lighting, colour temperature, slight blur, sensor noise and JPEG, in
           the ranges EOT papers use for printed patches (Athalye 2018, Thys 2019).
- webcam:  the same, stronger: cheap webcams in indoor light.
- camera:  what `blocks capture --sheet` classifies: the printed block rectified head-on and
           upsampled from 30-200 camera pixels, with lens and motion blur, noise, JPEG and the
           print's colour response (transforms.rectified). For printed blocks checked by capture.
- camera+scene: half camera views, half print-preset views in scenes (whole-frame checks too).
- held:    the default. The whole camera frame when someone holds the printed card (patch, white
           margin, markers) up in a scene photo: 3D tilt, distance as the patch's coverage of the
           frame, uneven light, camera blur, noise and JPEG, then the 4:3 or 16:9 frame squashed
           or centre-cropped to the model's square (transforms.held). What deployed classifiers see.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch

from transforms.photometric import Photometric
from transforms.held import HeldCard
from transforms.params import Params, ViewModel, params
from transforms.placement import PasteParams, PasteViews, Placement
from transforms.rectified import CameraViews, RectifiedParams


@dataclass
class EOT:
    placement: Placement = field(default_factory=Placement)
    photometric: Photometric = field(default_factory=Photometric)
    camera: CameraViews | None = None  # rectified capture-loop views (transforms.rectified)
    in_scene: float = 0.0  # with camera: the share of views placed in scenes instead
    held: HeldCard | None = None  # whole frames of the card held up in a scene (transforms.held)


PRESETS: dict[str, EOT] = {
    "none": EOT(Placement(scale=(1.0, 1.0), rotation_deg=0.0, perspective=0.0, random_position=False),
                Photometric()),
    "digital": EOT(Placement(rotation_deg=22.5, perspective=0.0),
                   Photometric(noise_std=0.01)),
    "print": EOT(Placement(rotation_deg=20.0, perspective=0.2),
                 Photometric(contrast=(0.75, 1.2), brightness=0.1, gamma=(0.8, 1.25), temperature=0.08,
                             blur_sigma=0.004, noise_std=0.04, jpeg_quality=(40.0, 95.0), jpeg_p=0.3)),
    "webcam": EOT(Placement(rotation_deg=30.0, perspective=0.3),
                  Photometric(contrast=(0.6, 1.3), brightness=0.15, gamma=(0.7, 1.4), temperature=0.15,
                              blur_sigma=0.008, noise_std=0.06, jpeg_quality=(30.0, 90.0), jpeg_p=0.5)),
}
PRESETS["camera"] = replace(PRESETS["print"], camera=CameraViews())
PRESETS["camera+scene"] = replace(PRESETS["print"], camera=CameraViews(), in_scene=0.5)
PRESETS["held"] = EOT(Placement(scale=HeldCard().coverage, rotation_deg=HeldCard().roll_deg), held=HeldCard())
DEFAULT_PRESET = "held"


def at_progress(eot: EOT, progress: float) -> EOT:
    """The views to train on at `progress` (0 to 1) of a run: whole-frame presets start near
    (large coverage) and widen to their whole range over the held card's warmup; others as they are."""
    h = eot.held
    if h is None or h.warmup <= 0 or progress >= h.warmup:
        return eot
    lo, hi = h.coverage
    share = h.start_share + (1 - h.start_share) * max(progress, 0.0) / h.warmup
    return replace(eot, held=replace(h, coverage=(hi - (hi - lo) * share, hi)))


def whole_frame(name: str) -> bool:
    """Whether a preset's views are whole camera frames with the card in a scene (held)."""
    return name in PRESETS and PRESETS[name].held is not None


def preset(name: str, scale: tuple[float, float] | None = None) -> EOT:
    """A copy of a preset, with the patch's scale range replaced when given."""
    if name not in PRESETS:
        from common.errors import UserError

        raise UserError(f"unknown eot preset {name!r}: use one of {', '.join(PRESETS)}", param="eot")
    eot = PRESETS[name]
    if scale is None:
        return replace(eot)
    placement = replace(eot.placement, scale=tuple(scale))
    if eot.camera is not None and eot.in_scene == 0:  # the block fills the rectified view: no scale to pick
        share = 1 / (1 + 2 * eot.camera.margin)
        placement = replace(placement, scale=(share, share))
    if eot.held is not None:  # scale is the patch's coverage of the frame's shorter side
        return replace(eot, placement=placement, held=replace(eot.held, coverage=tuple(scale)))
    if eot.placement.scale[0] == eot.placement.scale[1]:  # a fixed scale (none) stays fixed: the range's middle
        mid = (scale[0] + scale[1]) / 2
        placement = replace(placement, scale=(mid, mid))
    return replace(eot, placement=placement)


@params
class MixedParams(Params):
    """camera+scene views: the rectified ones first, then the ones in scenes (either may be None)."""

    camera: RectifiedParams | None
    scene: PasteParams | None


@dataclass
class MixedViews:
    """A share `in_scene` of the views pasted into scenes, the rest rectified camera views."""

    camera: CameraViews
    scene: PasteViews
    in_scene: float

    def sample(self, n, size, patch_px, scenes=None, generator=None, device="cpu", mapped=False) -> MixedParams:
        n_scene = int(round(n * self.in_scene))
        camera = (self.camera.sample(n - n_scene, size, patch_px, None, generator, device, mapped)
                  if n_scene < n else None)
        scene = self.scene.sample(n_scene, size, patch_px, scenes, generator, device, mapped) if n_scene else None
        return MixedParams(camera, scene)

    def render(self, patch, p: MixedParams, size, scenes=None, patch_map=None):
        if p.scene is None or p.camera is None:
            return (self.camera.render(patch, p.camera, size, None, patch_map) if p.scene is None
                    else self.scene.render(patch, p.scene, size, scenes, patch_map))
        views, params = self.camera.render(patch, p.camera, size, None, patch_map)
        scene_views, scene_params = self.scene.render(patch, p.scene, size, scenes, patch_map)
        return (torch.cat([views, scene_views]),
                {k: torch.cat([params[k].float(), scene_params[k].float()]) for k in ("scale", "rotation_deg")})


def view_model(eot: EOT) -> ViewModel:
    """The view model that renders a preset's views: held frames, camera views (some in scenes
    when in_scene > 0), or the patch pasted into scenes."""
    if eot.held is not None:
        return eot.held
    paste = PasteViews(eot.placement, eot.photometric)
    return paste if eot.camera is None else MixedViews(eot.camera, paste, eot.in_scene)


def sample_views(eot: EOT, n: int, size: int, patch_px: int, scenes: torch.Tensor | None = None,
                 generator: torch.Generator | None = None, device="cpu", mapped: bool = False) -> Params:
    """The parameters of n random views (render_views renders them, as often as asked)."""
    return view_model(eot).sample(n, size, patch_px, scenes, generator, device, mapped)


def render_views(patch: torch.Tensor, params: Params, size: int, eot: EOT, scenes: torch.Tensor | None = None,
                 patch_map=None):
    """patch (3, P, P) -> (views (n, 3, size, size) in [0, 1], their summary per view): the views
    `params` (from sample_views with the same eot, size and scenes) describe."""
    return view_model(eot).render(patch, params, size, scenes, patch_map)


def random_views(patch: torch.Tensor, n: int, size: int, eot: EOT, scenes: torch.Tensor | None = None,
                 generator: torch.Generator | None = None, patch_map=None):
    """patch: (3, h, w) in [0, 1] -> views (n, 3, size, size) in [0, 1] and their parameters.

    patch_map, when given, maps the patch's colours to what the camera sees (a measured printer
    colour map) before it is placed, so the optimiser trains on printed colours.
    """
    params = sample_views(eot, n, size, patch.shape[-1], scenes, generator, patch.device, patch_map is not None)
    return render_views(patch, params, size, eot, scenes, patch_map)
