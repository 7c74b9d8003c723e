"""transforms.eot: the presets are data, preset() copies one with the scale range the user gives
(in each preset's own meaning of scale), and view_model() picks the view model that renders it."""
import pytest

from common.errors import UserError
from transforms.eot import DEFAULT_PRESET, PRESETS, MixedViews, at_progress, preset, view_model, whole_frame
from transforms.held import HeldCard
from transforms.placement import PasteViews


def test_preset_scale_means_what_each_preset_scales():
    assert preset("digital", (0.3, 0.5)).placement.scale == (0.3, 0.5)
    assert preset("none", (0.4, 0.6)).placement.scale == pytest.approx((0.5, 0.5))  # a fixed scale stays fixed
    held = preset("held", (0.2, 0.4))
    assert held.held.coverage == (0.2, 0.4) and held.placement.scale == (0.2, 0.4)
    cam = preset("camera", (0.2, 0.4))  # the block fills the rectified view whatever the range
    share = 1 / (1 + 2 * cam.camera.margin)
    assert cam.placement.scale == (share, share)
    assert preset("camera+scene", (0.2, 0.4)).placement.scale == (0.2, 0.4)


def test_preset_copies_and_never_changes_the_table():
    before = {name: (e.placement.scale, e.held and e.held.coverage) for name, e in PRESETS.items()}
    for name in PRESETS:
        e = preset(name, (0.25, 0.35))
        assert e is not PRESETS[name]
    assert {name: (e.placement.scale, e.held and e.held.coverage) for name, e in PRESETS.items()} == before
    assert preset("print") == PRESETS["print"] and preset("print") is not PRESETS["print"]
    with pytest.raises(UserError, match="unknown eot preset 'paper': use one of none, digital") as e:
        preset("paper")
    assert e.value.param == "eot"


@pytest.mark.parametrize("name, kind, in_scene", [
    ("none", PasteViews, None), ("print", PasteViews, None), ("camera", MixedViews, 0.0),
    ("camera+scene", MixedViews, 0.5), ("held", HeldCard, None)])
def test_view_model_renders_each_preset_with_its_own_model(name, kind, in_scene):
    model = view_model(preset(name))
    assert type(model) is kind
    if in_scene is not None:
        assert model.in_scene == in_scene
    assert whole_frame(name) == (kind is HeldCard) and whole_frame(DEFAULT_PRESET)


def test_held_views_start_near_and_widen_over_the_warmup():
    eot = preset("held", (0.1, 0.5))
    h = eot.held
    assert h.warmup > 0, "the held card trains near first"
    lo, hi = at_progress(eot, 0.0).held.coverage
    assert hi == 0.5 and lo > 0.1
    assert at_progress(eot, h.warmup / 2).held.coverage[0] < lo  # wider half way through the warmup
    assert at_progress(eot, h.warmup).held.coverage == (0.1, 0.5)
    assert at_progress(preset("print"), 0.0) == preset("print")  # other presets as they are
