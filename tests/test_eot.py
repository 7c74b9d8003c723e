"""transforms.eot: each preset is a view model (data, one ViewModel protocol), preset() copies one
with the scale range the user gives (in each preset's own meaning of scale), and patch.json's
eot_settings keeps the shape earlier versions wrote."""
import json

import pytest

from common.errors import UserError
from common.records import PatchRecord
from transforms.eot import DEFAULT_PRESET, PRESETS, HeldViews, MixedViews, preset, whole_frame
from transforms.held import HeldCard
from transforms.params import ViewModel
from transforms.placement import PasteViews


def test_preset_scale_means_what_each_preset_scales():
    assert preset("digital", (0.3, 0.5)).scale == (0.3, 0.5)
    assert preset("none", (0.4, 0.6)).scale == pytest.approx((0.5, 0.5))  # a fixed scale stays fixed
    held = preset("held", (0.2, 0.4))
    assert held.coverage == (0.2, 0.4) and held.scale == (0.2, 0.4)
    cam = preset("camera", (0.2, 0.4))  # the block fills the rectified view whatever the range
    share = 1 / (1 + 2 * cam.camera.margin)
    assert cam.scale == (share, share)
    assert preset("camera+scene", (0.2, 0.4)).scale == (0.2, 0.4)


def test_preset_copies_and_never_changes_the_table():
    before = {name: views.scale for name, views in PRESETS.items()}
    for name in PRESETS:
        views = preset(name, (0.25, 0.35))
        assert views is not PRESETS[name] and views.scale != before[name]
    assert {name: views.scale for name, views in PRESETS.items()} == before
    assert preset("print") == PRESETS["print"] and preset("print") is not PRESETS["print"]
    with pytest.raises(UserError, match="unknown eot preset 'paper': use one of none, digital") as e:
        preset("paper")
    assert e.value.param == "eot"


@pytest.mark.parametrize("name, kind, in_scene", [
    ("none", PasteViews, None), ("print", PasteViews, None), ("camera", MixedViews, 0.0),
    ("camera+scene", MixedViews, 0.5), ("held", HeldViews, None)])
def test_each_preset_is_a_view_model_of_its_own_kind(name, kind, in_scene):
    views = preset(name)
    assert type(views) is kind
    if in_scene is not None:
        assert views.in_scene == in_scene
    assert whole_frame(name) == views.whole_frame == (kind is HeldViews) and whole_frame(DEFAULT_PRESET)
    assert isinstance(PRESETS["held"], HeldCard)  # rendered by transforms.held


def test_every_preset_offers_the_whole_protocol():
    members = [m for m in vars(ViewModel) if not m.startswith("_")] + list(ViewModel.__annotations__)
    assert {"sample", "render", "scale", "with_scale", "at_progress", "settings", "whole_frame"} <= set(members)
    for name, views in PRESETS.items():
        assert all(hasattr(views, m) for m in members), name


def test_held_views_start_near_and_widen_over_the_warmup():
    held = preset("held", (0.1, 0.5))
    assert held.warmup > 0, "the held card trains near first"
    lo, hi = held.at_progress(0.0).coverage
    assert hi == 0.5 and lo > 0.1
    assert held.at_progress(held.warmup / 2).coverage[0] < lo  # wider half way through the warmup
    assert held.at_progress(held.warmup).coverage == (0.1, 0.5)
    assert held.without_warmup().at_progress(0.0).coverage == (0.1, 0.5)  # a resumed patch: all of it at once
    for name in ("print", "camera+scene"):  # other presets as they are, all run long
        assert preset(name).at_progress(0.0) == preset(name) == preset(name).without_warmup()


@pytest.mark.parametrize("name", list(PRESETS))
def test_settings_keep_the_shape_earlier_versions_wrote_and_read_back(name):
    views = preset(name, (0.2, 0.4))
    doc = views.settings()
    assert set(doc) == {"placement", "photometric", "camera", "in_scene", "held"}
    assert tuple(doc["placement"]["scale"]) == views.scale  # what patch.json's scale says too
    assert (doc["camera"] is not None) == isinstance(views, MixedViews)
    rec = PatchRecord.parse(json.loads(json.dumps({"eot_settings": doc})), "patch.json")  # as written, read back
    held = rec.eot_settings.held
    assert (held.coverage if held is not None else None) == (views.coverage if views.whole_frame else None)
