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

Each preset is a view model (transforms.params.ViewModel): data, one protocol, no case by kind.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

import torch

from transforms.photometric import Photometric
from transforms.held import HeldCard
from transforms.params import Params, ViewModel, Views, eot_settings, params
from transforms.placement import PasteParams, PasteViews, Placement
from transforms.rectified import CameraViews, RectifiedParams


@params
class MixedParams(Params):
    """camera+scene views: the rectified ones first, then the ones in scenes (either may be None)."""

    camera: RectifiedParams | None
    scene: PasteParams | None


@dataclass
class MixedViews(Views):
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

    @property
    def scale(self) -> tuple[float, float]:
        return self.scene.scale

    def with_scale(self, scale) -> MixedViews:
        """With no views in scenes the block fills the rectified view whatever the range: the
        block's share of it (its margin around) is the one scale recorded."""
        if self.in_scene == 0:
            share = 1 / (1 + 2 * self.camera.margin)
            return replace(self, scene=replace(self.scene, placement=replace(self.scene.placement,
                                                                             scale=(share, share))))
        return replace(self, scene=self.scene.with_scale(scale))

    def settings(self) -> dict:
        return eot_settings(self.scene.placement, self.scene.photometric, self.camera, self.in_scene)


@dataclass
class HeldViews(HeldCard):
    """The held card (transforms.held, which renders it) as a preset: its scale is the patch's
    coverage of the frame's shorter side, and training starts near (see HeldCard.warmup)."""

    whole_frame: ClassVar[bool] = True

    @property
    def scale(self) -> tuple[float, float]:
        return self.coverage

    def with_scale(self, scale) -> HeldViews:
        return replace(self, coverage=tuple(scale))

    def at_progress(self, progress: float) -> HeldViews:
        """Over the first `warmup` of a run the coverage range widens from its upper (nearest)
        `start_share` to all of it; the same views after."""
        if self.warmup <= 0 or progress >= self.warmup:
            return self
        lo, hi = self.coverage
        share = self.start_share + (1 - self.start_share) * max(progress, 0.0) / self.warmup
        return replace(self, coverage=(hi - (hi - lo) * share, hi))

    def without_warmup(self) -> HeldViews:
        return replace(self, warmup=0.0)

    def settings(self) -> dict:  # the placement earlier versions wrote beside held: its coverage and roll
        return eot_settings(Placement(scale=self.coverage, rotation_deg=self.roll_deg), Photometric(), held=self)


_PRINT = PasteViews(Placement(rotation_deg=20.0, perspective=0.2),
                    Photometric(contrast=(0.75, 1.2), brightness=0.1, gamma=(0.8, 1.25), temperature=0.08,
                                blur_sigma=0.004, noise_std=0.04, jpeg_quality=(40.0, 95.0), jpeg_p=0.3))
PRESETS: dict[str, ViewModel] = {
    "none": PasteViews(Placement(scale=(1.0, 1.0), rotation_deg=0.0, perspective=0.0, random_position=False),
                       Photometric()),
    "digital": PasteViews(Placement(rotation_deg=22.5, perspective=0.0), Photometric(noise_std=0.01)),
    "print": _PRINT,
    "webcam": PasteViews(Placement(rotation_deg=30.0, perspective=0.3),
                         Photometric(contrast=(0.6, 1.3), brightness=0.15, gamma=(0.7, 1.4), temperature=0.15,
                                     blur_sigma=0.008, noise_std=0.06, jpeg_quality=(30.0, 90.0), jpeg_p=0.5)),
    "camera": MixedViews(CameraViews(), _PRINT, in_scene=0.0),
    "camera+scene": MixedViews(CameraViews(), _PRINT, in_scene=0.5),
    "held": HeldViews(),
}
DEFAULT_PRESET = "held"


def whole_frame(name: str) -> bool:
    """Whether a preset's views are whole camera frames with the card in a scene (held)."""
    return name in PRESETS and PRESETS[name].whole_frame


def preset(name: str, scale: tuple[float, float] | None = None) -> ViewModel:
    """A copy of a preset, with the patch's scale range replaced when given (in the preset's own
    meaning of scale: ViewModel.with_scale)."""
    if name not in PRESETS:
        from common.errors import UserError

        raise UserError(f"unknown eot preset {name!r}: use one of {', '.join(PRESETS)}", param="eot")
    views = PRESETS[name]
    return replace(views) if scale is None else views.with_scale(scale)


def random_views(patch: torch.Tensor, n: int, size: int, views: ViewModel, scenes: torch.Tensor | None = None,
                 generator: torch.Generator | None = None, patch_map=None):
    """patch: (3, h, w) in [0, 1] -> views (n, 3, size, size) in [0, 1] and their summary per view:
    views.sample then views.render (which replays the same params as often as asked).

    patch_map, when given, maps the patch's colours to what the camera sees (a measured printer
    colour map) before it is placed, so the optimiser trains on printed colours.
    """
    p: Params = views.sample(n, size, patch.shape[-1], scenes, generator, patch.device, patch_map is not None)
    return views.render(patch, p, size, scenes, patch_map)
