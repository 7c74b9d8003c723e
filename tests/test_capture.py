"""Capture loop, sources, ArUco rectification, the print-and-film simulator (issue 4).

The synthetic sheet here is drawn with OpenCV (a white page, one patch, four DICT_4X4_50 markers)
and written as a PDF with reportlab plus a matching sheet.json, so these tests do not depend on
`blocks print`; the end-to-end test at the bottom uses the real `blocks print`.
"""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from common.errors import UserError
from capture.display import is_headless
from capture.loop import CaptureSettings, run_capture
from capture.markers import detect_markers, locate_blocks, make_detector, rectify_block
from capture.sheet import load_sheet, parse_sheet
from capture.sources import Frame, open_source
from capture.views import SlidingSettings, sliding_boxes
from transforms.camera import CameraSettings, Pose, keep_in_frame, pose_homography

PAGE_MM = (210, 297)
PX_PER_MM = 4
BLOCK = dict(x=60, y=80, size=80)
MARKER_MM, OFFSET_MM = 15, 5


def confident_digit(model, digit: int, k: int = 0) -> np.ndarray:
    """A held-out digit the model reads right with p > 0.95: (32, 32, 3) uint8 BGR."""
    from blocks.models.digits import load_digits_rgb

    x, y = load_digits_rgb("test")
    with torch.no_grad():
        p = torch.softmax(model(x), 1)
    ok = ((p.argmax(1) == y) & (p.max(1).values > 0.95) & (y == digit)).nonzero().flatten()
    img = (x[int(ok[k])].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    return np.ascontiguousarray(img[:, :, ::-1])


def synthetic_page(patch_bgr: np.ndarray) -> tuple[np.ndarray, dict]:
    """(page image at PX_PER_MM, sheet.json dict): one block with a marker off each corner."""
    s = PX_PER_MM
    page = np.full((PAGE_MM[1] * s, PAGE_MM[0] * s, 3), 255, np.uint8)
    bx, by, bs = BLOCK["x"], BLOCK["y"], BLOCK["size"]
    page[by * s:(by + bs) * s, bx * s:(bx + bs) * s] = cv2.resize(patch_bgr, (bs * s, bs * s),
                                                                  interpolation=cv2.INTER_NEAREST)
    d = cv2.aruco.getPredefinedDictionary(cv2.aruco.DICT_4X4_50)
    m, o = MARKER_MM, OFFSET_MM
    spots = [(bx - o - m, by - o - m), (bx + bs + o, by - o - m), (bx + bs + o, by + bs + o), (bx - o - m, by + bs + o)]
    markers = []
    for mid, (mx, my) in enumerate(spots):
        page[my * s:(my + m) * s, mx * s:(mx + m) * s] = cv2.aruco.generateImageMarker(d, mid, m * s)[:, :, None]
        markers.append({"id": mid, "x_mm": mx, "y_mm": my, "size_mm": m})
    sheet = {"page_size_mm": list(PAGE_MM), "aruco_dictionary": "DICT_4X4_50",
             "blocks": [{"page": 0, "x_mm": bx, "y_mm": by, "size_mm": bs, "markers": markers,
                         "target": "three", "model": "digits"}]}
    return page, sheet


def photo_of(page: np.ndarray, quad: list) -> tuple[np.ndarray, np.ndarray]:
    """The page seen in perspective in a 640x480 frame (page corners land on quad);
    returns (frame, homography page mm -> frame px)."""
    h, w = page.shape[:2]
    M = cv2.getPerspectiveTransform(np.float32([[0, 0], [w, 0], [w, h], [0, h]]), np.float32(quad))
    frame = cv2.warpPerspective(page, M, (640, 480), borderValue=(40, 90, 40))
    return frame, M @ np.diag([PX_PER_MM, PX_PER_MM, 1.0])


QUAD = [[100, 40], [520, 70], [560, 470], [60, 430]]


@pytest.fixture(scope="module")
def three_page(digits_model):
    return synthetic_page(confident_digit(digits_model, 3))


@pytest.fixture(scope="module")
def synthetic_pdf(tmp_path_factory, three_page):
    """A one-page PDF of the synthetic sheet, and its sidecar sheet.json."""
    from reportlab.lib.units import mm
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas
    from PIL import Image

    page, sheet = three_page
    folder = tmp_path_factory.mktemp("sheet")
    pdf = folder / "sheet.pdf"
    c = canvas.Canvas(str(pdf), pagesize=(PAGE_MM[0] * mm, PAGE_MM[1] * mm))
    c.drawImage(ImageReader(Image.fromarray(page[:, :, ::-1].copy())), 0, 0, PAGE_MM[0] * mm, PAGE_MM[1] * mm)
    c.save()
    (folder / "sheet.json").write_text(json.dumps(sheet))
    return pdf


# --- rectification -----------------------------------------------------------------------------

def test_rectified_block_matches_the_printed_patch(three_page, digits_model):
    page, sheet_dict = three_page
    sheet = parse_sheet(sheet_dict)
    frame, H_true = photo_of(page, QUAD)
    det = detect_markers(frame, make_detector(), bgr=True)
    assert sorted(det.ids.tolist()) == [0, 1, 2, 3]
    (found,) = locate_blocks(sheet, det)
    truth = cv2.perspectiveTransform(sheet.blocks[0].corners_mm()[None], H_true)[0]
    assert np.abs(found.outline - truth).max() < 1.5  # px
    crop = rectify_block(frame, sheet, found, 32)
    patch = confident_digit(digits_model, 3)
    assert crop.shape == (32, 32, 3)
    assert np.abs(crop.astype(float) - patch.astype(float)).mean() < 12
    # a wrong homography (page upside down) must not match
    assert np.abs(np.rot90(crop, 2).astype(float) - patch.astype(float)).mean() > 30


def test_block_needs_two_markers_by_default(three_page):
    page, sheet_dict = three_page
    sheet = parse_sheet(sheet_dict)
    frame, _ = photo_of(page, QUAD)
    det = detect_markers(frame, make_detector(), bgr=True)
    keep = det.ids == 2
    one = type(det)(det.ids[keep], det.corners[keep])
    assert locate_blocks(sheet, one) == []
    assert len(locate_blocks(sheet, one, min_markers=1)) == 1
    two = type(det)(det.ids[det.ids <= 1], det.corners[det.ids <= 1])
    assert locate_blocks(sheet, two)[0].markers_used == 2


def test_sheet_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_sheet(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(UserError, match="cannot read sheet"):
        load_sheet(bad)
    with pytest.raises(UserError, match="no markers"):
        parse_sheet({"blocks": [{"x_mm": 0, "y_mm": 0, "size_mm": 10, "markers": []}]})
    m = {"id": 1, "x_mm": 0, "y_mm": 0, "size_mm": 5}
    with pytest.raises(UserError, match="twice"):
        parse_sheet({"blocks": [{"x_mm": 0, "y_mm": 0, "size_mm": 10, "markers": [m, m]}]})
    with pytest.raises(UserError, match=r"field blocks\[0\] has no width_mm"):  # the field at fault, named
        parse_sheet({"blocks": [{"y_mm": 0}]})
    with pytest.raises(UserError, match=r"field blocks\[0\]\.markers\[1\]\.x_mm must be a number, not text"):
        parse_sheet({"blocks": [{"x_mm": 0, "y_mm": 0, "size_mm": 10, "markers": [m, {**m, "id": 2, "x_mm": "3"}]}]})


# --- small pieces --------------------------------------------------------------------------------

def test_sliding_boxes_cover_the_frame_edge_to_edge():
    boxes = sliding_boxes(480, 640, SlidingSettings(window=0.5, stride=0.25))
    assert all(w == h == 240 for _, _, w, h in boxes)
    assert max(x + w for x, _, w, _ in boxes) == 640 and max(y + h for _, y, _, h in boxes) == 480
    assert {x for x, *_ in boxes} == {0, 120, 240, 360, 400}
    assert len(boxes) == 5 * 3


def test_headless_is_decided_from_the_environment():
    assert is_headless(True, {"DISPLAY": ":0"}, "linux")
    assert is_headless(False, {}, "linux")
    assert not is_headless(False, {"DISPLAY": ":0"}, "linux")
    assert not is_headless(False, {"WAYLAND_DISPLAY": "wayland-0"}, "linux")
    assert not is_headless(False, {}, "darwin")


def test_virtual_camera_keeps_markers_in_frame():
    s = CameraSettings()
    roi = (40.0, 60.0, 120.0, 120.0)
    H = pose_homography(Pose(0, 0, 0, 0.5, 0, 0), roi, s)
    centre = cv2.perspectiveTransform(np.array([[[100.0, 120.0]]]), H)[0, 0]
    assert np.allclose(centre, (320, 240), atol=1e-6)
    side = cv2.perspectiveTransform(np.array([[[40.0, 120.0], [160.0, 120.0]]]), H)[0]
    assert abs((side[1, 0] - side[0, 0]) - 0.5 * 480) < 1e-6  # fill 0.5 of the shorter side
    # far too close and off to one side: reframed so every point is inside with the margin
    pts = np.array([[40, 60], [160, 60], [160, 180], [40, 180]], dtype=np.float64)
    H = pose_homography(Pose(0.4, -0.3, 0.5, 1.6, 200, -150), roi, s)
    fixed = cv2.perspectiveTransform(pts[None], keep_in_frame(H, pts, s))[0]
    assert fixed.min() >= s.margin_px - 1e-6
    assert (fixed[:, 0] <= 640 - s.margin_px + 1e-6).all() and (fixed[:, 1] <= 480 - s.margin_px + 1e-6).all()


# --- sources -------------------------------------------------------------------------------------

def test_sources_fail_with_one_clear_line(tmp_path, cli):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no images"):
        open_source(str(tmp_path / "empty"))
    with pytest.raises(UserError, match="source not found"):
        open_source(str(tmp_path / "missing.mp4"))
    (tmp_path / "bad.mp4").write_text("not a video")
    with pytest.raises(UserError, match="cannot read video"):
        open_source(str(tmp_path / "bad.mp4"))
    with pytest.raises(UserError, match="no images match"):
        open_source(str(tmp_path / "*.png"))
    code, out, err = cli("capture", "--model", "digits", "--target", "3", "--source", "63", "--headless")
    assert code == 2 and err.strip().splitlines()[-1].startswith("error: cannot open camera 63")
    assert "--source FILE|URL|screen" in err
    assert "Traceback" not in err


def test_folder_and_glob_sources_yield_frames(tmp_path):
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"f{i}.png"), np.full((20, 30, 3), i * 50, np.uint8))
    (tmp_path / "notes.txt").write_text("ignored")
    frames = list(open_source(str(tmp_path)))
    assert [f.name for f in frames] == ["f0.png", "f1.png", "f2.png"]
    assert frames[2].bgr.shape == (20, 30, 3) and frames[2].bgr[0, 0, 0] == 100
    assert len(list(open_source(str(tmp_path / "f[12].png")))) == 2


# --- the loop ------------------------------------------------------------------------------------

def test_capture_cli_on_photos_logs_and_summarises(tmp_path, cli, digits_model):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i, d in enumerate([7, 7, 2]):
        big = cv2.resize(confident_digit(digits_model, d, k=i), (128, 128), interpolation=cv2.INTER_NEAREST)
        cv2.imwrite(str(photos / f"p{i}.png"), big)
    log, summary = tmp_path / "frames.jsonl", tmp_path / "summary.json"
    code, out, err = cli("capture", "--model", "digits", "--target", "seven", "--source", photos,
                         "--headless", "--log", log, "--summary", summary)
    assert code == 0, err
    s = json.loads(summary.read_text())
    assert json.loads(out) == s
    for key in ("frames", "hit_rate", "mean_target_prob", "median_target_prob", "longest_hit_run", "found_rate", "fps"):
        assert key in s
    assert s["frames"] == 3 and s["found_rate"] is None
    assert s["hit_rate"] == pytest.approx(2 / 3) and s["longest_hit_run"] == 2
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["index"] for r in lines] == [0, 1, 2]
    assert [r["hit"] for r in lines] == [True, True, False]
    assert lines[2]["top1"] == "two" and lines[0]["target_prob"] > 0.9
    assert {"time", "top1_prob", "markers", "blocks"} <= set(lines[0])
    assert [r["hit_from"] for r in lines] == [["frame"], ["frame"], []]
    # the whole frame is the headline: the summary's first figure and the last line printed
    assert list(s)[:3] == ["frames", "frame_hit_rate", "frame_mean_target_prob"]
    assert s["frame_hit_rate"] == pytest.approx(2 / 3)
    assert s["frame_mean_target_prob"] == pytest.approx(sum(r["frame_target_prob"] for r in lines) / 3)
    assert err.strip().splitlines()[-1].startswith("whole frame: seven in 2 of 3 frames (66.7%), mean p(seven) ")


def _upscaled(img_rgb: torch.Tensor, side: int = 128) -> np.ndarray:
    """(3, 32, 32) float RGB digit -> (side, side, 3) uint8 BGR photo, pixels repeated."""
    bgr = (img_rgb.permute(1, 2, 0).numpy()[:, :, ::-1] * 255).round().astype(np.uint8)
    return cv2.resize(bgr, (side, side), interpolation=cv2.INTER_NEAREST)


def test_capture_cli_max_frames_and_threshold(tmp_path, cli, digits_model):
    """--max-frames N stops after N frames; --threshold P turns hits with p(target) < P into misses."""
    from blocks.models.digits import load_digits_rgb

    x, y = load_digits_rgb("test")
    with torch.no_grad():
        p = digits_model(x).softmax(1)
    read_as_seven = ((y == 7) & (p.argmax(1) == 7)).nonzero().flatten()
    by_prob = read_as_seven[p[read_as_seven, 7].argsort()]
    two = int(((y == 2) & (p.argmax(1) == 2)).nonzero()[0])
    # sevens from the least to the most confidently read, then a two
    picks = [int(by_prob[0]), int(by_prob[len(by_prob) // 2]), int(by_prob[-1]), two]
    photos = tmp_path / "photos"
    photos.mkdir()
    for i, k in enumerate(picks):
        cv2.imwrite(str(photos / f"p{i}.png"), _upscaled(x[k]))

    def session(*flags):
        log = tmp_path / "f.jsonl"
        code, out, err = cli("capture", "--model", "digits", "--target", "seven", "--source", photos,
                             "--headless", "--log", log, "--overwrite", *flags)  # each session replaces the last
        assert code == 0, err
        return json.loads(out), [json.loads(line) for line in log.read_text().splitlines()]

    s, rows = session()
    assert s["frames"] == 4 and [r["hit"] for r in rows] == [True, True, True, False]
    probs = [r["target_prob"] for r in rows]
    assert probs[0] < probs[1] < probs[2]
    s, rows = session("--max-frames", "2")
    assert s["frames"] == 2 and [r["index"] for r in rows] == [0, 1] and s["stopped_by"] == "max frames"
    t = (probs[0] + probs[1]) / 2  # above the least confident seven, below the others
    s, rows = session("--threshold", f"{t:.6f}")
    assert [r["hit"] for r in rows] == [False, True, True, False]
    assert [r["top1"] for r in rows][:3] == ["seven"] * 3  # still top-1: the threshold made the miss
    assert s["hit_rate"] == pytest.approx(2 / 4)
    code, _, err = cli("capture", "--model", "digits", "--target", "seven", "--source", photos, "--threshold", "1.5")
    assert code == 2 and "--threshold" in err


def test_capture_cli_sliding_finds_a_small_target(tmp_path, cli, digits_model):
    """A seven filling one corner of the frame: the whole frame is not read as seven, --sliding finds it
    in the top-left windows."""
    frame = np.full((240, 320, 3), 255, np.uint8)
    frame[:120, :120] = cv2.resize(confident_digit(digits_model, 7), (120, 120), interpolation=cv2.INTER_NEAREST)
    cv2.imwrite(str(tmp_path / "corner.png"), frame)
    rows = {}
    for name, flags in (("plain", []), ("sliding", ["--sliding", "--window", "0.5", "--stride", "0.25"])):
        log = tmp_path / f"{name}.jsonl"
        code, out, err = cli("capture", "--model", "digits", "--target", "seven", "--source", tmp_path / "corner.png",
                             "--headless", "--log", log, *flags)
        assert code == 0, err
        (rows[name],) = [json.loads(line) for line in log.read_text().splitlines()]
        assert json.loads(out)["hit_rate"] == float(rows[name]["hit"])
    assert not rows["plain"]["hit"] and rows["plain"]["top1"] != "seven" and "windows" not in rows["plain"]
    r = rows["sliding"]
    assert r["hit"] and not r["frame_hit"] and r["windows"] == 5 * 3  # 120 px windows every 60 px
    assert 1 <= r["window_hits"] < r["windows"]
    cx, cy = r["target_point"]
    assert cx < 160 and cy < 120, r["target_point"]  # the winning windows sit over the digit's corner


def test_sliding_window_marks_where_the_target_is(digits_model):
    frame = np.full((240, 320, 3), 255, np.uint8)
    frame[:120, :120] = cv2.resize(confident_digit(digits_model, 4), (120, 120), interpolation=cv2.INTER_NEAREST)
    settings = CaptureSettings(target=4, sliding=SlidingSettings(window=0.5, stride=0.25), prefetch=False)
    results = []
    run_capture(digits_model, [Frame(0, frame)], settings, on_frame=results.append)
    (r,) = results
    assert r.window_hits[0] and r.hit  # the top-left window holds the digit
    assert r.target_point[0] < 160 and r.target_point[1] < 120


def _frames_then_interrupt(frame, n):
    for i in range(n):
        yield Frame(i, frame)
    raise KeyboardInterrupt


@pytest.mark.parametrize("prefetch", [True, False])
def test_ctrl_c_still_writes_log_and_summary(tmp_path, digits_model, prefetch):
    frame = np.full((48, 64, 3), 200, np.uint8)
    log = tmp_path / "f.jsonl"
    s = run_capture(digits_model, _frames_then_interrupt(frame, 5),
                    CaptureSettings(target=1, log=log, prefetch=prefetch))
    assert s["stopped_by"] == "interrupted" and s["frames"] == 5
    assert len(log.read_text().splitlines()) == 5


def test_quit_key_ends_like_ctrl_c_and_video_is_saved(tmp_path, digits_model):
    shown = []

    class FakeWindow:  # stands in for the OpenCV window: "presses q" on the third frame
        def show(self, bgr):
            shown.append(bgr.shape)
            return len(shown) < 3

        def close(self):
            shown.append("closed")

    frames = (Frame(i, np.full((48, 64, 3), 10 * i, np.uint8)) for i in range(10))
    video = tmp_path / "annotated.avi"
    s = run_capture(digits_model, frames, CaptureSettings(target=0, headless=False, save_video=video),
                    window_factory=FakeWindow)
    assert s["stopped_by"] == "quit" and s["frames"] == 3 and shown[-1] == "closed"
    cap = cv2.VideoCapture(str(video))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 3
    assert not list(tmp_path.glob(".*part*"))


def test_max_frames_and_bad_flags(cli, tmp_path):
    code, _, err = cli("capture", "--model", "digits", "--target", "3", "--source", tmp_path, "--max-frames", "0")
    assert code == 2 and "--max-frames" in err
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((8, 8, 3), np.uint8))  # the source is checked first
    code, _, err = cli("capture", "--model", "digits", "--target", "eleven", "--source", tmp_path, "--headless")
    assert code == 2 and "unknown target" in err


# --- simulator -----------------------------------------------------------------------------------

def test_simulated_clip_is_found_and_read(tmp_path, cli, synthetic_pdf, check_annotated):
    clip = tmp_path / "clip.mp4"
    code, out, err = cli("simulate", synthetic_pdf, "--out", clip, "--frames", "40", "--seed", "3")
    assert code == 0, err
    cap = cv2.VideoCapture(str(clip))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 40
    assert (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))) == (640, 480)
    cap.release()
    summary = tmp_path / "s.json"
    code, out, err = cli("capture", "--model", "digits", "--target", "three", "--source", clip,
                         "--sheet", synthetic_pdf.with_suffix(".json"), "--headless", "--summary", summary,
                         "--save-video", tmp_path / "annotated.mp4")
    assert code == 0, err
    s = json.loads(summary.read_text())
    assert s["frames"] == 40 and s["found_rate"] >= 0.95
    assert s["sheet"] == str(synthetic_pdf.with_suffix(".json"))  # the summary names the sheet it read
    # the rectified block is a clean "3": through the virtual camera it should mostly stay one
    assert s["block_hit_rate"] >= 0.6
    from conftest import read_video

    check_annotated(tmp_path / "annotated.mp4", read_video(clip), 40)


def _off_head_on_deg(H: np.ndarray, pose: Pose, s: CameraSettings) -> float:
    """Angle between the page's normal and the camera's axis, from a page-mm -> frame-px homography
    H = K [r1 r2 t] (pinhole K: focal_px, principal point at the frame centre + the pose's drift)."""
    from transforms.camera import focal_px

    f, (w, h) = focal_px(s), s.size
    K = np.array([[f, 0, w / 2 + pose.dx], [0, f, h / 2 + pose.dy], [0, 0, 1]])
    m = np.linalg.inv(K) @ H
    r1, r2 = m[:, 0] / np.linalg.norm(m[:, 0]), m[:, 1] / np.linalg.norm(m[:, 1])
    assert abs(r1 @ r2) < 1e-9  # a rigid page: its axes stay perpendicular in camera space
    return float(np.degrees(np.arccos(abs(np.cross(r1, r2)[2]))))


def test_simulated_camera_tilt_and_roll_limits():
    """README: the simulator's hand-held path tilts up to 30 degrees (about each page axis) and rolls
    up to 25. The limits are reached, never passed, and the frames' geometry has those angles."""
    from transforms.camera import sample_poses

    s = CameraSettings()
    roi = (40.0, 60.0, 120.0, 120.0)
    poses = [p for seed in range(8) for p in sample_poses(90, s, np.random.default_rng(seed))]
    deg = lambda v: np.degrees(np.abs(np.array(v)))  # noqa: E731
    yaw, pitch, roll = deg([p.yaw for p in poses]), deg([p.pitch for p in poses]), deg([p.roll for p in poses])
    assert 29.5 < yaw.max() <= 30 + 1e-9 and 29.5 < pitch.max() <= 30 + 1e-9, (yaw.max(), pitch.max())
    assert 24.5 < roll.max() <= 25 + 1e-9, roll.max()
    # off head-on: each axis alone up to 30 degrees, both together up to acos(cos^2 30) = 41.4
    tilts = np.array([_off_head_on_deg(pose_homography(p, roi, s), p, s) for p in poses])
    assert tilts.max() <= np.degrees(np.arccos(np.cos(np.radians(30)) ** 2)) + 1e-6 and tilts.max() > 30
    for a in (-30.0, 12.0, 30.0):  # one axis alone: exactly that far off head-on
        p = Pose(yaw=np.radians(a), pitch=0, roll=0, fill=0.6, dx=0, dy=0)
        assert _off_head_on_deg(pose_homography(p, roi, s), p, s) == pytest.approx(abs(a))
    # roll alone turns the page's x axis by that angle in the frame, reframing included
    pts = np.array([[40.0, 120.0], [160.0, 120.0], [100.0, 60.0], [100.0, 180.0]])
    for a in (-25.0, 10.0, 25.0):
        H = pose_homography(Pose(0, 0, np.radians(a), 0.9, 30, -20), roi, s)
        (x0, y0), (x1, y1) = cv2.perspectiveTransform(pts[None, :2], keep_in_frame(H, pts, s))[0]
        assert np.degrees(np.arctan2(y1 - y0, x1 - x0)) == pytest.approx(a, abs=1e-6)


def test_simulation_is_reproducible_and_bad_pdf_is_one_line(tmp_path, cli, synthetic_pdf):
    from capture.simulate import SimulateSettings, simulate

    a, b = tmp_path / "a.avi", tmp_path / "b.avi"
    for p in (a, b):
        simulate(synthetic_pdf, p, SimulateSettings(frames=3, seed=7))
    ra, rb = cv2.VideoCapture(str(a)).read()[1], cv2.VideoCapture(str(b)).read()[1]
    assert np.array_equal(ra, rb)
    fake = tmp_path / "fake.pdf"
    fake.write_text("not a pdf")
    code, _, err = cli("simulate", fake, "--out", tmp_path / "x.mp4")
    assert code == 2 and err.startswith("error: cannot read PDF")
    assert not (tmp_path / "x.mp4").exists()


# --- end to end: generate -> print -> simulate -> capture (issue 4's "Done means") ---------------

def test_end_to_end_generate_print_simulate_capture(tmp_path, cli):
    code, _, err = cli("generate", "--model", "digits", "--target", "seven", "--steps", "80", "--batch", "16",
                       "--eot", "print", "--eval-n", "16", "--out", tmp_path / "gen")
    assert code == 0, err
    pdf = tmp_path / "print" / "sheet.pdf"
    code, _, err = cli("print", tmp_path / "gen" / "patch.png", "--out", pdf, "--size-mm", "50")
    assert code == 0, err
    clip = tmp_path / "clip.mp4"
    code, _, err = cli("simulate", pdf, "--out", clip, "--frames", "40", "--seed", "1")
    assert code == 0, err
    log, summary = tmp_path / "frames.jsonl", tmp_path / "summary.json"
    code, out, err = cli("capture", "--model", "digits", "--target", "seven", "--source", clip,
                         "--sheet", pdf.with_suffix(".json"), "--headless", "--log", log, "--summary", summary)
    assert code == 0, err
    s = json.loads(summary.read_text())
    assert s["frames"] == 40 and s["found_rate"] >= 0.95
    assert s["sheet"] == str(pdf.with_suffix(".json"))  # the summary names the sheet it read
    # The chain works: the printed, filmed and rectified block is read as the target.
    assert s["block_hit_rate"] >= 0.8, s
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert sum(bool(r["blocks"]) for r in records) / len(records) == pytest.approx(s["found_rate"])
    # the summary's rates are the log's per-view verdicts counted: a frame hits when the whole
    # frame or a found block does, the block rate counts frames where a block was found
    for r in records:
        assert r["hit"] == (r["frame_hit"] or any(b["hit"] for b in r["blocks"]))
        assert r["target_prob"] == max([r["target_prob"]] + [b["target_prob"] for b in r["blocks"]])
    found = [r for r in records if r["blocks"]]
    assert s["hit_rate"] == pytest.approx(sum(r["hit"] for r in records) / len(records))
    assert s["frame_hit_rate"] == pytest.approx(sum(r["frame_hit"] for r in records) / len(records))
    assert s["block_hit_rate"] == pytest.approx(sum(r["blocks"][0]["hit"] for r in found) / len(found))
    assert s["hit_rate"] >= s["block_hit_rate"] * s["found_rate"] - 1e-9
    last = err.strip().splitlines()[-1]  # the whole frame first, the block as a diagnosis
    assert last.startswith("whole frame: ") and "; diagnosis: block found in " in last, last
    assert all(len(r["markers"]) >= 2 for r in records if r["blocks"])


def test_duration_stops_an_endless_source(digits_model):
    def endless():
        i = 0
        while True:
            yield Frame(i, np.full((48, 64, 3), 128, np.uint8))
            i += 1

    s = run_capture(digits_model, endless(), CaptureSettings(target=0, duration_s=0.3))
    assert s["stopped_by"] == "duration" and s["frames"] >= 1


def test_no_gui_backend_is_one_clear_error(tmp_path, digits_model):
    def no_gui():
        raise cv2.error("The function is not implemented")

    log = tmp_path / "f.jsonl"
    with pytest.raises(UserError, match="use headless"):
        run_capture(digits_model, [], CaptureSettings(target=0, headless=False, log=log), window_factory=no_gui)
    assert list(tmp_path.iterdir()) == []  # no temporary log left behind


def test_overlay_says_where_a_hit_came_from_and_covers_no_marker(three_page, digits_model):
    """The block is read as three, the whole frame (mostly white page) is not: the overlay's frame
    line says MISS, the block's line (a diagnosis) HIT, the log's hit_from names the block; and no
    overlay text lands on a marker (the panel leaves the corner the sheet's markers are in)."""
    from capture.loop import CaptureSettings, Preparer, verdict
    from capture.overlay import draw_overlay, panel_lines
    from capture.views import classify, to_batch
    from common.records import SheetInfo

    page, sheet = three_page
    frame, _ = photo_of(page, [[-60, -50], [560, -40], [580, 520], [-70, 510]])  # a marker in the top-left corner
    settings = CaptureSettings(target=3, sheet=SheetInfo.from_json(sheet))
    prepared = Preparer(settings, digits_model.input_size)(Frame(0, frame))
    probs = classify(digits_model, to_batch(prepared.views, torch.device("cpu")))
    r = verdict(probs, prepared, digits_model.labels, 3, 0.0, 0, 0.0)
    assert len(prepared.found) == 1 and r.blocks[0]["hit"] and not r.frame_hit, r
    rec = r.log_record()
    assert rec["hit"] and rec["hit_from"] == ["block 0"] and rec["best_view"] == "block 0"
    assert rec["top1"] == r.top5[0][0] and rec["frame_target_prob"] == pytest.approx(float(probs[0, 3]), abs=1e-6)
    text = [t for t, *_ in panel_lines(r, "three")]
    assert text[0] == "whole frame, top-5:" and text[6].startswith("frame: three") and text[6].endswith("MISS")
    assert text[7].startswith("block 0 (diagnosis): three") and text[7].endswith("HIT")
    assert not any("HIT" in t for t in text[:7])  # no HIT under a top-5 that lacks the target
    out = draw_overlay(frame, r, prepared, digits_model.labels, "three", 12.0)
    for c in prepared.detections.corners:
        x0, y0 = c.min(0).astype(int) + 3
        x1, y1 = c.max(0).astype(int) - 3
        assert np.array_equal(out[y0:y1, x0:x1], frame[y0:y1, x0:x1]), (x0, y0, x1, y1)


def test_capture_bar_has_an_eta_for_a_video_of_known_length(capsys):
    """A video file's frames are counted before the loop: its bar gives an ETA; a camera's has
    no end to estimate, and shows none."""
    from types import SimpleNamespace

    from blocks.progress import capture_bar

    frame = SimpleNamespace(frame_hit=1, hit=1, frame_target_prob=0.5)
    with capture_bar("capture", 10) as update:
        update(frame)
    assert "ETA" in capsys.readouterr().err
    with capture_bar("capture", None) as update:
        update(frame)
    err = capsys.readouterr().err
    assert "frame 1" in err and "ETA" not in err


def test_capture_flags_fill_the_loops_own_settings(cli, monkeypatch):
    """CaptureRun holds the loop's CaptureSettings (issue 31): the flags land in run.loop, in its
    units (--duration in loop.duration_s, seconds), and --sliding/--window/--stride become one
    SlidingSettings; without --sliding the loop gets none."""
    import blocks.cli
    from blocks.commands.capture import CaptureRun

    got = []
    monkeypatch.setattr(blocks.cli, "run_capture", lambda run, **kw: (got.append(run), 1 / 0))
    for flags in (["--sliding", "--window", "0.6", "--duration", "5", "--threshold", "0.3", "--max-frames", "7"],
                  ["--window", "0.6", "--reduce", "crop"]):
        with pytest.raises(ZeroDivisionError):
            cli("capture", "--model", "digits", "--target", "seven", "--headless", *flags)
    with_windows, plain = got
    assert isinstance(with_windows, CaptureRun) and with_windows.target == "seven" and with_windows.headless
    assert with_windows.loop == CaptureSettings(sliding=SlidingSettings(0.6, 0.25), duration_s=5.0, threshold=0.3,
                                                max_frames=7)
    assert plain.loop == CaptureSettings(reduce="crop")  # --window alone: checked, but no windows


def test_capture_python_api_checks_the_loop_settings():
    """The Python API's CaptureRun(loop=CaptureSettings(...)) is checked as the flags are, before any
    source opens or model loads; a loop run without a target refuses."""
    from blocks.commands.capture import CaptureRun, check_capture

    for loop, param in ((CaptureSettings(sliding=SlidingSettings(0.0, 0.25)), "window"),
                        (CaptureSettings(sliding=SlidingSettings(0.5, 1e-9)), "stride"),
                        (CaptureSettings(duration_s=-1.0), "duration_s"), (CaptureSettings(threshold=2.0), "threshold"),
                        (CaptureSettings(reduce="zoom"), "reduce")):
        with pytest.raises(UserError) as e:
            check_capture(CaptureRun(target="seven", loop=loop))
        assert e.value.param == param, (loop, e.value.param)
    check_capture(CaptureRun(target="seven", loop=CaptureSettings(sliding=SlidingSettings(0.5, 0.25))))


def test_the_loop_refuses_no_target(digits_model):
    with pytest.raises(UserError, match="target index None"):
        run_capture(digits_model, [], CaptureSettings())
