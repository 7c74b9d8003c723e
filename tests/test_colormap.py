import dataclasses
import json

import pytest
import torch

from blocks.attacks import GenerateConfig, generate_patch
from common.errors import UserError
from blocks.penalties import default_palette, non_printability, total_variation
from transforms import preset
from colormaps import colormap_from_matrix, write_colormap
from transforms.colormap import ColorMap, fit_colormap, hat_basis

DISTORTION = colormap_from_matrix([[0.8, 0.1, 0.05], [0.05, 0.75, 0.1], [0.05, 0.1, 0.7]],
                                  (0.06, 0.05, 0.08), (1.3, 1.1, 1.5))


def test_hat_basis_interpolates():
    x = torch.tensor([0.0, 0.5, 1.0, 0.06])
    b = hat_basis(x, 9)
    assert torch.allclose(b.sum(-1), torch.ones(4))
    assert torch.allclose(b @ torch.linspace(0, 1, 9), x)


def test_fit_recovers_a_known_map():
    g = torch.linspace(0, 1, 5)
    sent = torch.cat([torch.cartesian_prod(g, g, g), torch.rand(60, 3, generator=torch.Generator().manual_seed(0))])
    seen = DISTORTION.apply_rgb(sent) + 0.004 * torch.randn(len(sent), 3, generator=torch.Generator().manual_seed(1))
    fit = fit_colormap(sent, seen)
    probe = torch.rand(500, 3, generator=torch.Generator().manual_seed(2))
    assert (fit.apply_rgb(probe) - DISTORTION.apply_rgb(probe)).abs().mean() * 255 < 3
    assert fit.mean_error_rgb < 3
    assert not torch.allclose(fit.apply_rgb(probe), probe, atol=0.02)  # it is not the identity


def test_colormap_json_round_trip(tmp_path):
    cmap = dataclasses.replace(DISTORTION, gamut=default_palette(3))  # the shared map stays as it is
    write_colormap(cmap, tmp_path / "c.json")
    back = ColorMap.load(tmp_path / "c.json")
    x = torch.rand(2, 3, 4, 4)
    assert torch.allclose(back(x), cmap(x), atol=1e-6)
    assert DISTORTION.gamut is None
    assert back.gamut.shape == (27, 3)
    (tmp_path / "bad.json").write_text(json.dumps({"coef": [1, 2]}))
    with pytest.raises(UserError, match="not a colour map"):
        ColorMap.load(tmp_path / "bad.json")


def test_penalties_pull_the_right_way():
    palette = default_palette(2)  # the 8 corners of the RGB cube
    mid = torch.full((3, 8, 8), 0.5)
    corner = torch.zeros(3, 8, 8)
    assert non_printability(corner, palette) < 1e-6 < non_printability(mid, palette)
    noisy = torch.rand(3, 8, 8)
    assert total_variation(noisy) > total_variation(mid) == 0


def test_black_patch_gets_gradient_through_colormap(digits_model):
    patch = torch.zeros(3, 16, 16, requires_grad=True)
    g = torch.Generator().manual_seed(0)
    from transforms import random_views

    views, _ = random_views(patch, 32, 32, preset("print"), None, g, patch_map=DISTORTION)
    loss = torch.nn.functional.cross_entropy(digits_model(views), torch.full((32,), 7))
    (grad,) = torch.autograd.grad(loss, patch)
    assert ((grad != 0) & grad.isfinite()).float().mean() >= 0.99


def test_tv_penalty_smooths_the_patch(digits_model):
    cfg = GenerateConfig(target=7, patch_size=16, steps=25, batch=8, seed=0)
    plain = generate_patch(digits_model, cfg, preset("digital"))
    smooth = generate_patch(digits_model, cfg, preset("digital"), penalty=lambda p: 5.0 * total_variation(p))
    assert total_variation(smooth.patch) < total_variation(plain.patch)


def test_cli_generate_with_colormap_and_penalties(cli, tmp_path):
    write_colormap(DISTORTION, tmp_path / "c.json")
    code, _, err = cli("generate", "--model", "digits", "--target", "seven", "--steps", "5", "--batch", "4",
                       "--eval-n", "8", "--colormap", tmp_path / "c.json", "--printability", "0.5",
                       "--tv", "0.1", "--out", tmp_path / "o", "--device", "cpu")
    assert code == 0, err
    meta = json.loads((tmp_path / "o/patch.json").read_text())
    assert meta["colormap"].endswith("c.json") and meta["printability"] == 0.5
    code, _, err = cli("generate", "--model", "digits", "--target", "seven", "--colormap", tmp_path / "nope.json")
    assert code == 2 and "colour map not found" in err
