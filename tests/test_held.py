"""Whole-frame views (--eot held): the printed card held up in a scene, as the camera's classifier
sees the frame; and what turns their coverage into print sizes and distances."""
import json
import math
import re
from dataclasses import replace

import cv2
import numpy as np
import pytest
import torch

from common.distance import describe, distance_mm, distance_range, size_for_distance
from transforms.card import card_base
from transforms.eot import preset, random_views, whole_frame
from transforms.held import CROP_SHARE, HeldCard, held_views
from transforms.photometric import Photometric


def plain(**kw) -> HeldCard:
    """No tilt, roll, blur, light or noise: geometry alone."""
    base = HeldCard(tilt_deg=0.0, roll_deg=0.0, light_falloff=0.0, defocus_px=(0.0, 0.0), motion_px=0.0,
                    ink=(0.0, 0.0), paper=(1.0, 1.0), photometric=Photometric())
    return replace(base, **kw)


def patch_extent(view: torch.Tensor, colour=(1.0, 0.0, 0.0)) -> tuple[float, float]:
    """Width and height (px) of the pure-red region of a (3, S, S) view."""
    target = torch.tensor(colour)[:, None, None]
    mask = ((view - target).abs().amax(0) < 0.2).numpy()
    ys, xs = np.nonzero(mask)
    return xs.max() - xs.min() + 1, ys.max() - ys.min() + 1


@pytest.mark.parametrize("aspect", [4 / 3, 16 / 9])
def test_coverage_is_the_patch_side_over_the_frames_shorter_side_for_both_reductions(aspect):
    red = torch.zeros(3, 32, 32)
    red[0] = 1
    S = 224
    scenes = torch.zeros(2, 3, 336, 336)  # black photos: only the card is bright
    for reduce in ("squash", "crop"):
        cfg = plain(coverage=(0.3, 0.3), aspects=(aspect,), reductions=(reduce,))
        views, params = held_views(red, 4, S, cfg, scenes, torch.Generator().manual_seed(0))
        assert torch.allclose(params["coverage"], torch.full((4,), 0.3))
        w, h = patch_extent(views[0])
        if reduce == "squash":  # height keeps its share; the width is squeezed by the aspect
            assert h == pytest.approx(0.3 * S, abs=2) and w == pytest.approx(0.3 * S / aspect, abs=2)
        else:  # the centre crop keeps the aspect and zooms by 1 / CROP_SHARE
            assert h == pytest.approx(0.3 * S / CROP_SHARE, abs=2) and w == pytest.approx(h, abs=2)


def test_views_are_batched_in_range_and_every_patch_pixel_gets_gradient_from_black():
    patch = torch.zeros(3, 24, 24, requires_grad=True)
    scenes = torch.rand(3, 3, 48, 48, generator=torch.Generator().manual_seed(1))
    views, params = random_views(patch, 16, 32, preset("held"), scenes, torch.Generator().manual_seed(0))
    assert views.shape == (16, 3, 32, 32) and 0 <= views.min() and views.max() <= 1
    assert set(params) >= {"scale", "coverage", "tilt_deg", "rotation_deg", "aspect", "crop"}
    assert params["tilt_deg"].max() <= 30 and 0 < params["crop"].mean() < 1  # both reductions drawn
    (grad,) = torch.autograd.grad(views[:, 0].sum() - views[:, 2].sum(), patch)
    assert torch.isfinite(grad).all() and (grad != 0).float().mean() > 0.95


def test_the_card_carries_its_markers_and_a_camera_finds_them_in_a_head_on_view():
    base, off = card_base(64, HeldCard().card)
    assert base.shape[-1] == 64 + 2 * off and base[:, off:off + 64, off:off + 64].min() == 1  # white where the patch goes
    patch = torch.full((3, 64, 64), 0.5)
    cfg = plain(coverage=(0.3, 0.3), aspects=(4 / 3,), reductions=("crop",))  # the whole card in view
    views, _ = held_views(patch, 1, 448, cfg, torch.full((1, 3, 600, 600), 0.3), torch.Generator().manual_seed(2))
    img = (views[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    from printing.markers import detect_markers

    found = detect_markers(img)
    assert sorted(set(found.ids.tolist())) == [0, 1, 2, 3]  # block 0's markers, as blocks print draws them


def test_held_is_the_default_and_its_scale_is_the_coverage():
    from blocks.commands.evaluate import EvaluateRun
    from blocks.commands.generate import GenerateRun

    assert GenerateRun().eot == "held" and EvaluateRun(patch="p.png").eot == "held" and whole_frame("held")
    assert not whole_frame("print")
    eot = preset("held", (0.2, 0.4))
    assert eot.coverage == (0.2, 0.4) and eot.scale == (0.2, 0.4)


def test_evaluation_reports_success_by_coverage_reduction_and_tilt(digits_model):
    from blocks.evaluate import COVERAGE_EDGES, evaluate_patch, works_from

    patch = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(0))
    ev = evaluate_patch(digits_model, patch, preset("held"), 7, n=48, seed=3)
    for table in (ev.by_coverage, ev.by_reduction, ev.by_tilt):
        assert sum(v["n"] for v in table.values()) == 48
    assert set(ev.by_reduction) <= {"squash", "crop"}
    assert all(float(k.split("-")[0]) in COVERAGE_EDGES for k in ev.by_coverage)
    wins = sum(v["n"] * v["success_rate"] for v in ev.by_coverage.values())
    assert wins == pytest.approx(48 * ev.success_rate)
    rows = {"0.15-0.2": {"success_rate": 0.5}, "0.2-0.3": {"success_rate": 0.95}, "0.3-0.4": {"success_rate": 0.9}}
    assert works_from(rows) == 0.2
    assert works_from({**rows, "0.4-0.5": {"success_rate": 0.7}}) is None  # must hold for every larger bin


def test_distances_follow_the_pinhole_camera():
    # 50 mm at 0.25 of a 4:3 frame's height, 65 deg horizontal: frame height 200 mm there
    d = distance_mm(50, 0.25)
    assert 2 * d * math.tan(math.radians(65) / 2) / (4 / 3) == pytest.approx(200)
    near, far = distance_range(50, (0.2, 0.5))
    assert near < far and near == pytest.approx(distance_mm(50, 0.5))
    assert size_for_distance(d, 0.25) == pytest.approx(50)
    assert describe(60, (0.2, 0.5)).startswith("60 mm block: 0.")


def whole_frame_patch(folder, works_from=0.3, coverage=(0.15, 0.55)):
    from common.files import save_png
    from common.goal import Goal
    from common.records import PatchRecord

    folder.mkdir(parents=True, exist_ok=True)
    save_png(folder / "patch.png", torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(0)))
    rec = PatchRecord(target=Goal(8, True, "hen"), eot="held", scale=list(coverage),
                      eot_settings={"held": {"coverage": list(coverage)}},
                      held_out={"success_rate": 0.9, "mean_target_prob": 0.8, "n": 8, "works_from": works_from})
    rec.write(folder / "patch.json")
    return folder / "patch.png"


def test_print_gives_the_distances_a_whole_frame_patch_works_at_and_picks_a_size(cli, tmp_path):
    patch = whole_frame_patch(tmp_path / "p")
    code, out, err = cli("print", patch, "--out", tmp_path / "s.pdf", "--size-mm", "60", "--fov", "70")
    assert code == 0, err
    near, far = distance_range(60, (0.3, 0.55), 70)
    assert f"works {near / 1000:.2f}-{far / 1000:.2f} m from a 70 degree camera" in out
    block = json.loads((tmp_path / "s.json").read_text())["blocks"][0]
    assert block["distance_m"] == pytest.approx([near / 1000, far / 1000], abs=1e-3) and block["fov_deg"] == 70
    import pypdfium2

    text = pypdfium2.PdfDocument(str(tmp_path / "s.pdf"))[0].get_textpage().get_text_range()
    assert f"works {near / 1000:.2f}-{far / 1000:.2f} m" in text  # the caption says it too
    # --distance: the size that puts 0.25 m in the middle of the working range
    code, out, err = cli("print", patch, "--out", tmp_path / "d.pdf", "--distance", "0.25")
    assert code == 0, err
    block = json.loads((tmp_path / "d.json").read_text())["blocks"][0]
    lo, hi = block["distance_m"]
    assert lo < 0.25 < hi and math.sqrt(lo * hi) == pytest.approx(0.25, rel=0.01)


def test_print_distance_too_far_for_the_page_says_the_farthest_that_fits(cli, tmp_path):
    """The README's `--distance 1.5` on A4: one line that says the farthest distance A4 takes and
    what the bigger pages reach; that farthest distance then prints, and a little farther does not."""
    patch = whole_frame_patch(tmp_path / "p")
    code, _, err = cli("print", patch, "--out", tmp_path / "s.pdf", "--distance", "1.5")
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: --distance 1.5 m needs a "), err
    far = float(re.search(r"the farthest that fits a4 is ([\d.]+) m", err).group(1))
    assert "--page a3 up to" in err and 0.1 < far < 1.5, err
    assert cli("print", patch, "--out", tmp_path / "ok.pdf", "--distance", str(far))[0] == 0
    code, _, err = cli("print", patch, "--out", tmp_path / "no.pdf", "--distance", f"{far + 0.03:.2f}")
    assert code == 2 and f"the farthest that fits a4 is {far:.2f} m" in err, err
    a3 = float(re.search(r"page a3 up to ([\d.]+) m", err).group(1))
    assert cli("print", patch, "--out", tmp_path / "a3.pdf", "--distance", str(a3), "--page", "a3")[0] == 0


def test_print_distance_needs_a_whole_frame_patch_that_won(cli, tmp_path):
    patch = whole_frame_patch(tmp_path / "p", works_from=None)
    code, _, err = cli("print", patch, "--out", tmp_path / "s.pdf", "--distance", "0.5")
    assert code == 2 and err.startswith("error: --distance needs whole-frame patches"), err
    code, _, err = cli("print", patch, "--out", tmp_path / "s.pdf", "--fov", "0")
    assert code == 2 and "--fov" in err and err.count("\n") == 1, err


def test_simulate_given_the_patch_png_says_it_wants_the_sheet_pdf(cli, tmp_path):
    patch = whole_frame_patch(tmp_path / "p")  # patch.json beside it is no sheet.json
    code, _, err = cli("simulate", patch, "--out", tmp_path / "f.mp4")
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"error: {patch} is not a PDF") and "blocks print" in err and "TypeError" not in err, err


def test_simulate_films_every_photo_of_a_folder_in_turn(cli, tmp_path):
    """--scenes FOLDER: the clip goes through every photo, each for an equal stretch, not one
    photo for all frames."""
    from conftest import read_video

    patch = whole_frame_patch(tmp_path / "p")
    assert cli("print", patch, "--out", tmp_path / "s.pdf")[0] == 0
    colours = {"red.png": (0, 0, 230), "green.png": (0, 230, 0), "blue.png": (230, 0, 0)}  # BGR
    (tmp_path / "photos").mkdir()
    for name, bgr in colours.items():
        cv2.imwrite(str(tmp_path / "photos" / name), np.full((480, 640, 3), bgr, np.uint8))
    code, _, err = cli("simulate", tmp_path / "s.pdf", "--out", tmp_path / "f.avi", "--frames", "9",
                       "--scenes", tmp_path / "photos")
    assert code == 0, err
    seen = []
    for frame in read_video(tmp_path / "f.avi"):
        corner = frame[:40, :40].reshape(-1, 3).mean(0)  # the photo shows at the frame's corner
        seen.append(int(np.argmax(corner)))
    assert len(seen) == 9 and sorted(set(seen)) == [0, 1, 2], seen  # blue, green and red
    assert all(seen[i] == seen[i // 3 * 3] for i in range(9)), seen  # three frames each, in turn


def test_simulate_holds_the_card_up_in_front_of_a_photo(cli, tmp_path):
    patch = whole_frame_patch(tmp_path / "p")
    assert cli("print", patch, "--out", tmp_path / "s.pdf")[0] == 0
    photo = np.zeros((480, 640, 3), np.uint8)
    photo[:, :, 1] = 200  # a green photo: no part of a white page or a table looks like it
    cv2.imwrite(str(tmp_path / "green.png"), photo)
    code, _, err = cli("simulate", tmp_path / "s.pdf", "--out", tmp_path / "f.png", "--scenes", tmp_path / "green.png")
    assert code == 0, err
    frame = cv2.imread(str(tmp_path / "f.png")).astype(int)
    green = (frame[:, :, 1] > frame[:, :, 0] + 60) & (frame[:, :, 1] > frame[:, :, 2] + 60)
    white = frame.min(axis=2) > 150
    assert 0.1 < green.mean() < 0.9 and white.mean() > 0.05  # the photo around, the card's paper in it
    from printing.markers import detect_markers

    assert len(detect_markers(frame.astype(np.uint8), bgr=True)) >= 2  # the card's markers came along


def test_capture_reduce_crop_keeps_the_centre_square():
    from capture.views import frame_view

    frame = np.zeros((480, 640, 3), np.uint8)
    frame[:, 100:540] = 255  # white only inside the centre crop's columns (420 px wide, from 110)
    squash, crop = frame_view(frame, 224, "squash"), frame_view(frame, 224, "crop")
    assert squash[:, :20].max() == 0 and crop[:, :20].min() > 200  # the crop lost the black sides


def test_plain_generate_trains_on_whole_frames_of_the_shipped_photos(cli, tmp_path):
    """`blocks generate --target chicken` and nothing else (a few steps here): the embedded model,
    whole frames, the shipped photos (training side), judged on their held-out side by coverage."""
    out = tmp_path / "q"
    code, text, err = cli("generate", "--target", "chicken", "--steps", "2", "--eval-n", "8", "--out", out)
    assert code == 0, err
    meta = json.loads((out / "patch.json").read_text())
    assert meta["eot"] == "held" and meta["model"]["model"] == "efficientnet_lite0"
    assert meta["scenes"] == "sample photos: train" and meta["eval_scenes"] == "sample photos: test"
    assert meta["eot_settings"]["held"]["coverage"] == [0.15, 0.45] and meta["scale"] == [0.15, 0.45]
    held = meta["held_out"]
    assert held["views"]["whole_frame"] and sum(v["n"] for v in held["by_coverage"].values()) == 8
    assert "of whole camera frames" in text and "whole-frame success by coverage" in text
    assert "50 mm block: " in text and " m from a 65 degree webcam" in text  # the distances it trained for


def test_training_starts_near_and_widens_to_the_whole_coverage_range():
    eot = preset("held", (0.15, 0.45))
    first, later = eot.at_progress(0.0).coverage, eot.at_progress(eot.warmup).coverage
    assert first[1] == later[1] == 0.45 and first[0] > 0.3 and later == (0.15, 0.45)
    mid = eot.at_progress(eot.warmup / 2).coverage[0]
    assert later[0] < mid < first[0]
    assert preset("print").at_progress(0.0) == preset("print")  # other presets have no warm-up


def test_a_missing_patch_says_where_the_patches_are(cli, tmp_path, monkeypatch):
    """The README's runs/hen/patch.png before its generate line ran: the line names the newest
    patch under runs/ (the quick start's runs/chicken-<time>/), or how to make one."""
    monkeypatch.chdir(tmp_path)
    code, _, err = cli("print", "runs/hen/patch.png", "--out", "runs/s.pdf")
    assert code == 2 and err.count("\n") == 1 and "blocks generate --target hen --out runs/hen" in err, err
    whole_frame_patch(tmp_path / "runs/chicken-20261207-012345")
    for args in (("print", "runs/hen/patch.png", "--out", "runs/s.pdf"),
                 ("evaluate", "runs/hen/patch.png", "--target", "seven", "--model", "digits")):
        code, _, err = cli(*args)
        assert code == 2 and err.strip() == ("error: patch runs/hen/patch.png: not found; the newest patch under "
                                             "runs/ is runs/chicken-20261207-012345/patch.png"), err


def test_scenes_resampled_along_each_axis_equal_grid_sample():
    """render_scenes resamples rows, then columns: what one grid_sample over the frame's affine
    grid (reflection, align_corners=False) gives, exactly in float64."""
    import torch.nn.functional as F

    from transforms.held import render_scenes, sample_pose, sample_scenes

    g = torch.Generator().manual_seed(3)
    scenes = torch.rand(5, 3, 48, 48, generator=g, dtype=torch.float64)
    pose = sample_pose(12, HeldCard(), g)
    p = sample_scenes(12, pose, scenes, g)
    pose.aspect[0], pose.crop[0], p.shift[0] = 1.0, False, 0.9  # a band running off the scene: reflected
    vis_w = torch.where(pose.crop, 224 / 256, pose.aspect)
    vis_h = torch.where(pose.crop, 224 / 256, 1.0)
    theta = torch.zeros(12, 2, 3, dtype=torch.float64)
    theta[:, 0, 0], theta[:, 1, 1], theta[:, 1, 2] = p.flip * vis_w / pose.aspect, vis_h / pose.aspect, p.shift
    grid = F.affine_grid(theta, [12, 3, 32, 32], align_corners=False)
    want = F.grid_sample(scenes[p.index], grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    assert torch.allclose(render_scenes(p, pose, 32, scenes), want, atol=1e-9)
