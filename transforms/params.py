"""Views as data: a view model's random draws, kept apart from its rendering (kornia's way).

kornia's augmentations draw their parameters first (`forward_parameters`) and apply them after
(`apply_transform`), so any batch can be replayed from its parameters. The view models here do
the same: `sample(...)` makes a typed batch of parameters (a dataclass of tensors, one row per
view), `render(patch, params, ...)` turns it into views, and the same params always render the
same views. The draws happen in the order the renderers used to make them inline, so a seed
gives the views it always gave.
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Protocol

import torch


class Params:
    """Mixin for a typed batch of view parameters: dataclass fields of tensors, None, numbers,
    lists or nested Params. as_dict/from_dict round-trip it through plain nested dicts and lists
    of tensors and numbers (what torch.load(weights_only=True) reads back: data, never code)."""

    def as_dict(self) -> dict[str, Any]:
        return {f.name: _out(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]):
        hints = {f.name: f for f in dataclasses.fields(cls)}
        return cls(**{k: _in(hints[k], v) for k, v in d.items()})


def _out(v):
    if isinstance(v, list):
        return [_out(x) for x in v]
    return {"__params__": type(v).__qualname__, **v.as_dict()} if isinstance(v, Params) else v


def _in(f: dataclasses.Field, v):
    if isinstance(v, list):
        return [_in(f, x) for x in v]
    if isinstance(v, dict) and "__params__" in v:
        kind = _KINDS[v["__params__"]]
        return kind.from_dict({k: x for k, x in v.items() if k != "__params__"})
    return v


_KINDS: dict[str, type] = {}


def params(cls):
    """Class decorator: a dataclass of view parameters, registered so nested ones read back."""
    cls = dataclasses.dataclass(cls)
    _KINDS[cls.__qualname__] = cls
    return cls


class ViewModel(Protocol):
    """What every view model offers, so each preset is one (transforms.eot.PRESETS) and callers
    never ask which kind of views they hold. `whole_frame`: the views are whole camera frames of
    the card held up in a scene (transforms.held), so their scale is the patch's coverage of the
    frame's shorter side, a distance; else it is the patch's share of the view's side."""

    whole_frame: bool

    def sample(self, n: int, size: int, patch_px: int, scenes: torch.Tensor | None = None,
               generator: torch.Generator | None = None, device="cpu", mapped: bool = False) -> Params:
        """The random parameters of n views of size x size from a patch_px-side patch. mapped:
        a measured colour map will stand in for the generic print response (fewer draws)."""

    def render(self, patch: torch.Tensor, params: Params, size: int, scenes: torch.Tensor | None = None,
               patch_map=None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """patch (3, P, P) -> (views (n, 3, size, size) in [0, 1], their summary per view)."""

    @property
    def scale(self) -> tuple[float, float]:
        """The range the views' summary "scale" is drawn from (what patch.json records)."""

    def with_scale(self, scale: tuple[float, float]) -> ViewModel:
        """A copy with the patch's scale drawn from `scale`, in this model's meaning of scale."""

    def at_progress(self, progress: float) -> ViewModel:
        """The views to train on at `progress` (0 to 1) of a run."""

    def without_warmup(self) -> ViewModel:
        """A copy that trains on its whole range from the first step (a resumed patch)."""

    def settings(self) -> dict:
        """patch.json's eot_settings (eot_settings below)."""


class Views:
    """The ViewModel defaults of view models that train on the same views all run long."""

    whole_frame: ClassVar[bool] = False

    def at_progress(self, progress: float):
        return self

    def without_warmup(self):
        return self


def eot_settings(placement, photometric, camera=None, in_scene: float = 0.0, held=None) -> dict:
    """patch.json's eot_settings: the dict earlier versions wrote from their EOT dataclass (a
    tagged union of these five fields), kept as it was so every version reads every file."""
    def plain(x):
        return None if x is None else dataclasses.asdict(x)

    return {"placement": plain(placement), "photometric": plain(photometric), "camera": plain(camera),
            "in_scene": in_scene, "held": plain(held)}
