"""The `camera` EOT preset makes the views `blocks capture --sheet` classifies, and the capture
summary and log say how many pixels across the block was seen (issue 15)."""
from __future__ import annotations

import json
from dataclasses import replace

import cv2
import numpy as np
import pytest
import torch

from capture.loop import CaptureSettings, run_capture
from capture.markers import FoundBlock, rectify_block
from capture.sheet import parse_sheet
from common.records import BlockInfo, SheetInfo
from capture.sources import Frame
from capture.stats import Tally
from transforms import CameraViews, Photometric, preset, random_views, rectified_views

# the camera preset with every random effect off: only the loss of resolution is left
PLAIN = CameraViews(corner_jitter_px=0.0, ink=(0.0, 0.0), paper=(1.0, 1.0), defocus_px=(0.0, 0.0),
                    motion_px=0.0, photometric=Photometric())


@pytest.mark.parametrize("n_px", [30, 57])
def test_camera_view_is_the_loops_rectified_crop_of_a_small_block(n_px):
    """A block the camera saw n_px across, rectified by capture's own rectify_block, matches the
    preset's render-small-then-upsample view (effects off)."""
    rng = np.random.default_rng(0)
    patch = cv2.resize(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), (48, 48), interpolation=cv2.INTER_NEAREST)
    frame = np.full((200, 200, 3), 128, np.uint8)
    x0 = y0 = 40
    frame[y0:y0 + n_px, x0:x0 + n_px] = cv2.resize(patch, (n_px, n_px), interpolation=cv2.INTER_AREA)
    # a sheet in camera px (1 mm = 1 px) and the homography the markers would have given
    sheet = SheetInfo((200.0, 200.0), 1, "grid", "DICT_4X4_50", (BlockInfo(0, 0.0, 0.0, n_px, n_px, n_px, n_px, (1, 1), ()),))
    H = np.array([[1.0, 0, x0], [0, 1.0, y0], [0, 0, 1]])
    outline = np.float32([[x0, y0], [x0 + n_px, y0], [x0 + n_px, y0 + n_px], [x0, y0 + n_px]])
    loop_view = rectify_block(frame, sheet, FoundBlock(0, H, outline, 4), side=64)

    t = torch.from_numpy(patch[:, :, ::-1].copy()).permute(2, 0, 1).float() / 255
    views, params = rectified_views(t, 2, 64, replace(PLAIN, pixels=(n_px, n_px)))
    assert views.shape == (2, 3, 64, 64) and params["pixels"].tolist() == [n_px, n_px]
    ours = (views[0].permute(1, 2, 0).numpy()[:, :, ::-1] * 255).astype(np.float32)
    diff = np.abs(ours - loop_view.astype(np.float32)).mean()
    # the same image up to half a camera pixel of sampling phase; a crisp (not upsampled) patch differs far more
    crisp = cv2.resize(patch, (64, 64), interpolation=cv2.INTER_AREA).astype(np.float32)
    assert diff < 12, diff
    assert diff < 0.6 * np.abs(crisp - loop_view.astype(np.float32)).mean()


@pytest.mark.parametrize("name", ["camera", "camera+scene"])
def test_camera_views_from_black_give_every_patch_pixel_a_gradient(name):
    g = torch.Generator().manual_seed(0)
    patch = torch.zeros(3, 16, 16, requires_grad=True)
    scenes = torch.rand(4, 3, 32, 32, generator=g)
    views, params = random_views(patch, 16, 32, preset(name), scenes, g)
    assert views.shape == (16, 3, 32, 32) and 0 <= views.min() and views.max() <= 1
    assert torch.isfinite(views).all() and len(params["scale"]) == 16
    (grad,) = torch.autograd.grad((views * torch.rand(views.shape, generator=g)).sum(), patch)
    assert torch.isfinite(grad).all() and (grad != 0).all()


def test_camera_resolution_is_drawn_in_its_range_and_blurs_the_view():
    g = torch.Generator().manual_seed(1)
    patch = (torch.rand(3, 32, 32, generator=g) > 0.5).float()  # sharp black/white texels
    cfg = replace(CameraViews(), pixels=(30, 200), groups=8)
    _, params = rectified_views(patch, 64, 64, cfg, g)
    px = params["pixels"]
    assert 30 <= px.min() and px.max() <= 200 and len(set(px.tolist())) > 1
    sharp = lambda v: (v[..., 1:, :] - v[..., :-1, :]).abs().mean().item()  # noqa: E731
    small, _ = rectified_views(patch, 8, 64, replace(PLAIN, pixels=(30, 30)), g)
    big, _ = rectified_views(patch, 8, 64, replace(PLAIN, pixels=(200, 200)), g)
    assert sharp(small) < 0.8 * sharp(big)  # fewer camera pixels, softer view


def test_capture_log_and_summary_report_block_size_in_pixels(digits_model):
    from test_capture import QUAD, confident_digit, photo_of, synthetic_page

    page, sheet_dict = synthetic_page(confident_digit(digits_model, 3))
    big, H_big = photo_of(page, QUAD)
    small, H_small = photo_of(page, [[230, 100], [390, 110], [395, 335], [225, 328]])
    sheet = parse_sheet(sheet_dict)
    frames = [Frame(0, big, "big.png"), Frame(1, small, "small.png")]
    records = []
    summary = run_capture(digits_model, frames, CaptureSettings(target=3, sheet=sheet, prefetch=False),
                          on_frame=lambda r: records.append(r.log_record()))

    def expected(H):
        quad = cv2.perspectiveTransform(sheet.blocks[0].corners_mm()[None], H)[0].astype(np.float32)
        return float(np.sqrt(cv2.contourArea(quad)))

    sizes = [r["blocks"][0]["size_px"] for r in records]
    assert sizes[0] == pytest.approx(expected(H_big), abs=2)
    assert sizes[1] == pytest.approx(expected(H_small), rel=0.1) and sizes[1] < 64 < sizes[0]
    json.dumps(records)  # the log line stays plain JSON
    assert summary["block_px"] == {"min": sizes[1], "median": pytest.approx(sum(sizes) / 2), "max": sizes[0]}
    bands = summary["block_hit_rate_by_px"]
    assert sum(b["frames"] for b in bands.values()) == 2 and len(bands) == 2


def test_tally_bands_block_sizes():
    t = Tally(with_sheet=True)
    for px, hit in [(40.0, False), (70.0, True), (75.0, False), (300.0, True)]:
        t.add(hit, 0.5, False, True, hit, px)
    t.add(False, 0.1, False, False, False, None)  # no block found: no size
    s = t.summary()
    assert s["block_px"] == {"min": 40.0, "median": 72.5, "max": 300.0}
    assert s["block_hit_rate_by_px"] == {"32-48": {"frames": 1, "block_hit_rate": 0.0},
                                         "64-96": {"frames": 2, "block_hit_rate": 0.5},
                                         "256+": {"frames": 1, "block_hit_rate": 1.0}}
    assert "block_px" not in Tally().summary()  # no sheet: no block fields
