"""Colour calibration: the sheet, calibrating from a (simulated) photo or video, and the whole loop:
a patch generated through the recovered map holds up under the true distortion, one without does not."""
import json

import cv2
import numpy as np
import pytest
import torch

from blocks.evaluate import evaluate_patch
from common.files import load_image
from capture.calibrate import apply_to_bgr, load_calibration
from capture.sheet import load_sheet
from printing.calibration import CalibrationSettings, make_calibration_sheet, swatch_colors, write_calibration_sheet
from printing.markers import detect_markers
from printing.render import render_page
from transforms import preset
from colormaps import colormap_from_matrix, write_colormap
from transforms.colormap import ColorMap

# What a cheap inkjet on plain paper under warm light might do: low contrast (washed-out blacks,
# dull whites), a yellow-orange cast (blue loses most) and darkened mid-tones (gamma > 1).
TRUE_MAP = colormap_from_matrix([[0.35, 0.10, 0.05], [0.06, 0.32, 0.08], [0.04, 0.06, 0.22]],
                                (0.38, 0.32, 0.18), (2.0, 1.5, 2.4))


def corners_of(det, marker_id: int) -> np.ndarray:
    """(4, 2) float64 image-px corners of the first detection of marker_id."""
    hits = np.flatnonzero(det.ids == int(marker_id))
    assert len(hits), f"marker {marker_id} not found"
    return det.corners[hits[0]].astype(np.float64)


@pytest.fixture(scope="module")
def calib(tmp_path_factory):
    d = tmp_path_factory.mktemp("calib")
    write_calibration_sheet(make_calibration_sheet(CalibrationSettings(date="2026-01-01")), d / "calib.pdf")
    write_colormap(TRUE_MAP, d / "true.json")
    return d


@pytest.fixture
def one_thread():
    """The digits model is tiny: one thread is faster, and several times faster when other work
    shares the cores (two threads then spend their time waiting on each other)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _sent(calib_dir) -> torch.Tensor:
    return torch.tensor(load_calibration(calib_dir / "calib.json").sent / 255.0, dtype=torch.float32)


def _error_vs_true(cmap: ColorMap, sent: torch.Tensor) -> float:
    """Mean absolute difference, 0-255 units, between a map and the true one on the sheet's colours."""
    return (cmap.apply_rgb(sent) - TRUE_MAP.apply_rgb(sent)).abs().mean().item() * 255


def test_swatch_colours_span_the_cube():
    c = swatch_colors(285, levels=5, seed=0).astype(int)
    assert len({tuple(v) for v in c}) >= 200
    levels = {0, 64, 128, 191, 255}
    grid = {tuple(v) for v in c if set(v) <= levels}
    assert len(grid) == 125  # the whole 5x5x5 grid, black and white included
    greys = {v[0] for v in c if v[0] == v[1] == v[2]}
    assert len(greys) >= 15


def test_sheet_pdf_matches_calib_json(calib):
    info = json.loads((calib / "calib.json").read_text())
    assert info["kind"] == "calibration" and len(info["swatches"]) >= 200
    assert [m["id"] for m in info["markers"]] == [46, 47, 48, 49]
    dpi = 150
    rgb = render_page(calib / "calib.pdf", 0, dpi)
    ppm = dpi / 25.4
    found = detect_markers(rgb)
    for m in info["markers"]:  # every marker found where calib.json says, within 0.5 mm
        assert m["id"] in found.ids
        assert np.abs(corners_of(found, m["id"])[0] / ppm - [m["x_mm"], m["y_mm"]]).max() < 0.5
    for s in info["swatches"]:  # each swatch's colour fills it, from 0.5 mm inside its edges
        for fx, fy in ((0.05, 0.05), (0.5, 0.5), (0.95, 0.95)):
            x = s["x_mm"] + 0.5 + fx * (s["size_mm"] - 1)
            y = s["y_mm"] + 0.5 + fy * (s["height_mm"] - 1)
            assert np.abs(rgb[int(y * ppm), int(x * ppm)].astype(int) - s["rgb"]).max() <= 1, s
    # README: "as many swatches as fit (11 mm, 285 on A4, 15 x 19)", "four 16 mm markers" in the
    # corners of the page area; sizes measured on the rendered page, not read from calib.json
    xs, ys = sorted({s["x_mm"] for s in info["swatches"]}), sorted({s["y_mm"] for s in info["swatches"]})
    assert len(info["swatches"]) == 285 and (len(xs), len(ys)) == (15, 19)
    for m in info["markers"]:
        c = corners_of(found, m["id"]) / ppm
        sides = np.linalg.norm(c - np.roll(c, 1, axis=0), axis=1)
        assert np.abs(sides - 16.0).max() < 0.3, (m["id"], sides)
    corners = np.array([corners_of(found, i)[0] / ppm for i in (46, 47, 48, 49)])  # top-left corners, TL TR BR BL
    assert np.allclose(corners[[0, 3], 0], 10, atol=0.3) and np.allclose(corners[[1, 2], 0], 210 - 10 - 16, atol=0.3)
    assert np.allclose(corners[[0, 1], 1], 10, atol=0.3) and np.allclose(corners[[2, 3], 1], 297 - 10 - 16, atol=0.3)
    widths = []
    for s in info["swatches"]:
        if min(s["rgb"]) > 200:  # too close to the white gaps around it to measure
            continue
        y = int((s["y_mm"] + s["height_mm"] / 2) * ppm)
        x0, x1 = int((s["x_mm"] - 1) * ppm), int((s["x_mm"] + s["size_mm"] + 1) * ppm)
        same = np.abs(rgb[y, x0:x1].astype(int) - s["rgb"]).max(axis=1) <= 2
        widths.append(same.sum() / ppm)
    # edge pixels are blends at 150 dpi (0.17 mm a pixel): up to one lost on each side
    assert len(widths) > 250 and np.abs(np.array(widths) - 11.0).max() <= 2 / ppm, (min(widths), max(widths))
    assert abs(np.median(widths) - 11.0) <= 1 / ppm
    # it is also a sheet.json the capture side reads: one block (the field), four markers
    sheet = load_sheet(calib / "calib.json")
    assert len(sheet.blocks) == 1 and len(sheet.marker_index) == 4


def test_cli_calibration_sheet_pages_and_bad_input(cli, tmp_path):
    code, out, err = cli("calibration-sheet", "--out", tmp_path / "l.pdf", "--page", "letter", "--preview")
    assert code == 0, err
    assert (tmp_path / "l.json").is_file() and (tmp_path / "l-page0.png").is_file()
    assert json.loads((tmp_path / "l.json").read_text())["page_size_mm"] == [215.9, 279.4]
    code, _, err = cli("calibration-sheet", "--out", tmp_path / "x.pdf", "--page", "b5")
    assert code == 2 and "--page" in err and not (tmp_path / "x.pdf").exists()
    code, _, err = cli("calibration-sheet", "--out", tmp_path / "x.pdf", "--swatch-mm", "60")
    assert code == 2 and "swatches" in err and not (tmp_path / "x.pdf").exists()


def test_simulated_page_goes_through_the_map():
    bgr = np.array([[[0, 0, 0], [255, 255, 255], [40, 120, 200]]], dtype=np.uint8)
    seen = apply_to_bgr(TRUE_MAP, bgr).astype(float)[0, :, ::-1]  # RGB
    # by hand, from TRUE_MAP's definition: seen = matrix @ (sent ** gamma) + offset
    m = np.array([[0.35, 0.10, 0.05], [0.06, 0.32, 0.08], [0.04, 0.06, 0.22]])
    offset, gamma = np.array([0.38, 0.32, 0.18]), np.array([2.0, 1.5, 2.4])
    want = np.array([m @ (np.array(rgb) / 255) ** gamma + offset for rgb in ([0, 0, 0], [255, 255, 255], [200, 120, 40])])
    assert np.abs(seen[:2] - want[:2] * 255).max() <= 0.51  # black and white sit on knots: exact
    assert np.abs(seen[2] - want[2] * 255).max() <= 3  # in between, the 9-knot curves approximate
    assert seen[0].min() > 25  # black is washed out: the map was applied


@pytest.fixture(scope="module")
def photo(calib):
    """A still photo of the printed sheet through the true distortion (no other colour change)."""
    from blocks.cli import run

    assert run(["simulate", str(calib / "calib.pdf"), "--out", str(calib / "photo.png"), "--colormap",
                str(calib / "true.json"), "--steady-light", "--size", "1600x1200", "--seed", "3"]) == 0
    return calib / "photo.png"


def test_loop_recovers_the_map_and_the_calibrated_patch_wins(cli, calib, photo, tmp_path, digits_model, one_thread):
    # 1. a still photo of the printed sheet through the true distortion: the `photo` fixture
    # 2. calibrate from it
    code, out, err = cli("calibrate", photo, "--sheet", calib / "calib.json", "--out", tmp_path / "cm.json")
    assert code == 0, err
    assert "warning" not in err  # an evenly lit photo fits well
    saved = json.loads((tmp_path / "cm.json").read_text())
    assert saved["mean_error_rgb"] < 3 and len(saved["gamut_rgb"]) == len(saved["seen_rgb"]) >= 200
    recovered = ColorMap.load(tmp_path / "cm.json")
    sent = _sent(calib)
    assert _error_vs_true(recovered, sent) < 3
    assert _error_vs_true(ColorMap.identity(), sent) > 30  # the distortion is real

    # 3. same seed and budget, with and without the recovered map; judged through the true one
    rates = {}
    for name, extra in (("calibrated", ["--colormap", tmp_path / "cm.json"]), ("plain", [])):
        code, _, err = cli("generate", "--model", "digits", "--target", "seven", "--steps", "60", "--batch", "16", "--eot", "print",
                           "--eval-n", "8", "--seed", "0", "--device", "cpu", "--out", tmp_path / name, *extra)
        assert code == 0, err
        patch = load_image(tmp_path / name / "patch.png")
        ev = evaluate_patch(digits_model, patch, preset("print", (0.8, 1.0)), target=7, n=384, seed=2024,
                            patch_map=TRUE_MAP)
        rates[name] = ev.success_rate
    # measured while building this (true map in training, seeds 0-2, targets seven and three):
    # calibrated 0.98-1.00, plain 0.20-0.41
    assert rates["calibrated"] > 0.8 and rates["calibrated"] > rates["plain"] + 0.3, rates


def test_large_fit_error_warns_above_8(cli, calib, photo, tmp_path):
    """README: uneven light shows as a high mean_error_rgb, "a warning above 8". The same photo
    under a light ramp the map half absorbs (measured: about 7) and under a spotlight (about 16)."""
    img = cv2.imread(str(photo)).astype(np.float32)
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    lights = {"even": np.ones((h, w), np.float32), "ramp": np.broadcast_to(np.linspace(0.25, 1, w, dtype=np.float32), (h, w)),
              "spot": 0.3 + 0.7 * np.exp(-((xx - 0.3 * w) ** 2 + (yy - 0.4 * h) ** 2) / (2 * (0.2 * w) ** 2))}
    errors = {}
    for name, light in lights.items():
        cv2.imwrite(str(tmp_path / f"{name}.png"), np.clip(img * light[:, :, None], 0, 255).astype(np.uint8))
        code, _, err = cli("calibrate", tmp_path / f"{name}.png", "--sheet", calib / "calib.json",
                           "--out", tmp_path / f"{name}.json")
        assert code == 0, err
        errors[name] = json.loads((tmp_path / f"{name}.json").read_text())["mean_error_rgb"]
        assert ("warning: a large fit error" in err) == (errors[name] > 8), (name, errors[name], err)
    assert errors["even"] < 3 and 4 < errors["ramp"] < 8 < errors["spot"], errors  # both sides of 8 tried


def test_calibrate_from_a_video(cli, calib, tmp_path):
    code, _, err = cli("simulate", calib / "calib.pdf", "--out", tmp_path / "clip.mkv", "--frames", "6",
                       "--colormap", calib / "true.json", "--steady-light", "--size", "960x720")
    assert code == 0, err
    code, out, err = cli("calibrate", tmp_path / "clip.mkv", "--sheet", calib / "calib.json",
                         "--out", tmp_path / "cm.json")
    assert code == 0, err
    saved = json.loads((tmp_path / "cm.json").read_text())
    assert saved["frames_looked_at"] == 6 and saved["frames_used"] >= 1
    assert _error_vs_true(ColorMap.load(tmp_path / "cm.json"), _sent(calib)) < 3


def test_calibrate_bad_input(cli, calib, tmp_path):
    sheet = calib / "calib.json"
    (tmp_path / "junk.png").write_bytes(b"not an image")
    code, _, err = cli("calibrate", tmp_path / "junk.png", "--sheet", sheet, "--out", tmp_path / "c.json")
    assert code == 2 and "cannot read image" in err
    cv2.imwrite(str(tmp_path / "blank.png"), np.full((480, 640, 3), 200, np.uint8))
    code, _, err = cli("calibrate", tmp_path / "blank.png", "--sheet", sheet, "--out", tmp_path / "c.json")
    assert code == 2 and "not found" in err and not (tmp_path / "c.json").exists()
    code, _, err = cli("calibrate", tmp_path / "missing.mp4", "--sheet", sheet, "--out", tmp_path / "c.json")
    assert code == 2 and "not found" in err
    bad = json.loads(sheet.read_text())
    bad["swatches"][3]["rgb"] = [0, 300, 0]
    for name, text in (("broken.json", "{"), ("noswatch.json", json.dumps({"blocks": []})),
                       ("range.json", json.dumps(bad))):
        (tmp_path / name).write_text(text)
        code, _, err = cli("calibrate", tmp_path / "blank.png", "--sheet", tmp_path / name, "--out", tmp_path / "c.json")
        assert code == 2 and err.startswith("error:") and "Traceback" not in err, (name, err)
    code, _, err = cli("calibrate", tmp_path / "blank.png", "--sheet", tmp_path / "nope.json")
    assert code == 2 and "not found" in err
