"""Views as data (transforms.params): every preset's view model samples its parameters apart
from rendering them, so a batch of views replays from its params alone."""
from __future__ import annotations

import io

import pytest
import torch

from transforms.eot import PRESETS, preset, random_views

PATCH = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(0))
SCENES = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def colour_map(x):
    return 0.1 + 0.8 * x


@pytest.mark.parametrize("name", list(PRESETS))
@pytest.mark.parametrize("mapped", [False, True])
def test_params_render_the_views_random_views_gives_and_replay(name, mapped):
    eot, pm = preset(name), colour_map if mapped else None
    views, summary = random_views(PATCH, 6, 32, eot, SCENES, torch.Generator().manual_seed(5), pm)
    params = eot.sample(6, 32, 16, SCENES, torch.Generator().manual_seed(5), "cpu", mapped)
    first, again = eot.render(PATCH, params, 32, SCENES, pm), eot.render(PATCH, params, 32, SCENES, pm)
    assert torch.equal(first[0], views) and torch.equal(again[0], views)  # same seed, same views; replayed
    assert first[1].keys() == summary.keys() and all(torch.equal(first[1][k], summary[k]) for k in summary)
    other = eot.render(PATCH.flip(-1), params, 32, SCENES, pm)[0]
    assert not torch.equal(other, views)  # the params fix the views' randomness, not the patch


@pytest.mark.parametrize("name", ["held", "camera+scene", "print"])
def test_params_round_trip_through_plain_dicts(name):
    eot = preset(name)
    params = eot.sample(5, 32, 16, SCENES, torch.Generator().manual_seed(2))
    saved = io.BytesIO()
    torch.save(params.as_dict(), saved)  # plain dicts of tensors: what a replay file would hold
    back = type(params).from_dict(torch.load(io.BytesIO(saved.getvalue())))
    assert type(back) is type(params) and _same(back.as_dict(), params.as_dict())
    assert torch.equal(eot.render(PATCH, back, 32, SCENES)[0], eot.render(PATCH, params, 32, SCENES)[0])


def _same(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b


def test_held_params_are_typed_and_editable():
    """A held frame's pose is data: tilting every card head-on changes the views and nothing else."""
    eot = preset("held")
    params = eot.sample(4, 32, 16, SCENES, torch.Generator().manual_seed(3))
    assert params.pose.coverage.shape == (4,) and params.frame.noise.shape == (4, 3, 32, 32)
    lo, hi = eot.coverage
    assert ((params.pose.coverage >= lo) & (params.pose.coverage <= hi)).all()
    views, summary = eot.render(PATCH, params, 32, SCENES)
    params.pose.tilt = torch.zeros(4)
    flat, flat_summary = eot.render(PATCH, params, 32, SCENES)
    assert (flat_summary["tilt_deg"] == 0).all() and torch.equal(flat_summary["coverage"], summary["coverage"])
    assert not torch.equal(flat, views)
