"""blocks print: exact printed size, detectable markers, sheet.json that matches the page.

Measurements render the PDF with pypdfium2 (600 dpi for the accuracy claims) and look for the
patch's pixels, which are all saturated colours, on a page whose other marks are black/white/grey.
"""
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from common.files import sha256_file
from printing import (FACE_ORDER, SheetSettings, load_patch, make_sheet, page_count, patch_from_array, read_sheet,
                      render_page, render_region, write_sheet)
from printing import layout as L
from printing.cube import cube_layout
from printing.markers import detect_markers
from printing.patches import block_image

PALETTE = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [0, 255, 255], [255, 0, 255], [255, 255, 0]], np.uint8)
DPI = 600


def ids_seen(det) -> list[int]:
    """The marker ids found, each once, sorted."""
    return sorted(set(int(i) for i in det.ids))


def corners_of(det, marker_id: int) -> np.ndarray:
    """(4, 2) float64 image-px corners of the first detection of marker_id."""
    hits = np.flatnonzero(det.ids == int(marker_id))
    assert len(hits), f"marker {marker_id} not found"
    return det.corners[hits[0]].astype(np.float64)


def palette_patch(n: int, seed: int) -> np.ndarray:
    return PALETTE[np.random.default_rng(seed).integers(0, len(PALETTE), (n, n))]


def write_png(path: Path, rgb: np.ndarray) -> Path:
    assert cv2.imwrite(str(path), rgb[:, :, ::-1])
    return path


def colourful(rgb: np.ndarray) -> np.ndarray:
    """Pixels more than half covered by the patch: its colours are saturated, the rest is grey."""
    return (rgb.max(axis=2).astype(int) - rgb.min(axis=2)) > 127


def bbox_mm(mask: np.ndarray, origin_mm, dpi: float):
    """(x, y, w, h) in page mm of the True pixels of mask (pixel (0, 0) at origin_mm)."""
    ys, xs = np.nonzero(mask)
    px = 25.4 / dpi
    return (origin_mm[0] + xs.min() * px, origin_mm[1] + ys.min() * px,
            (xs.max() - xs.min() + 1) * px, (ys.max() - ys.min() + 1) * px)


def measure_block(pdf, block, dpi=DPI, pad=2.0):
    img, origin = render_region(pdf, block.page, dpi, block.x_mm - pad, block.y_mm - pad,
                                block.width_mm + 2 * pad, block.height_mm + 2 * pad)
    return bbox_mm(colourful(img), origin, dpi)


@pytest.fixture(scope="module")
def patches(tmp_path_factory):
    d = tmp_path_factory.mktemp("patches")
    (d / "hen").mkdir()
    p = write_png(d / "hen" / "patch.png", palette_patch(16, 0))
    (d / "hen" / "patch.json").write_text(json.dumps(
        {"target": {"index": 8, "name": "hen", "mode": "targeted"}, "model": {"model": "digits", "weights": "x"}}))
    q = write_png(d / "plain.png", palette_patch(20, 1))  # no sidecar: tolerated
    return p, q


@pytest.fixture(scope="module")
def grid(patches, tmp_path_factory):
    """Two 40 mm blocks on A4, written, page 0 rendered once at 600 dpi, markers detected once."""
    out = tmp_path_factory.mktemp("grid") / "sheet.pdf"
    sheet = make_sheet(list(patches), SheetSettings(size_mm=40.0))
    write_sheet(sheet, out)
    page = render_page(out, 0, DPI)
    return sheet, out, page, detect_markers(page)


def test_patch_printed_at_exact_size_and_position(grid):
    sheet, out, page, _ = grid
    info = read_sheet(out.with_suffix(".json"))
    assert len(info.blocks) == 2
    for b in info.blocks:
        assert b.size_mm == 40.0
        x, y, w, h = bbox_mm(*_window(page, b), DPI)
        assert abs(w - 40.0) <= 0.2 and abs(h - 40.0) <= 0.2, (w, h)
        assert abs(x - b.x_mm) <= 0.5 and abs(y - b.y_mm) <= 0.5, (x, y, b.x_mm, b.y_mm)


def _window(page, b, pad=3.0):
    """colourful() of the page around block b, and the page mm of its pixel (0, 0)."""
    px = DPI / 25.4
    r0, c0 = int((b.y_mm - pad) * px), int((b.x_mm - pad) * px)
    r1, c1 = int((b.y_mm + b.height_mm + pad) * px), int((b.x_mm + b.width_mm + pad) * px)
    return colourful(page[r0:r1, c0:c1]), (c0 / px, r0 / px)


def test_every_marker_detected_where_sheet_json_says(grid):
    sheet, out, _, found = grid
    info = read_sheet(out)
    expected = [m for b in info.blocks for m in b.markers]
    assert [m.id for m in expected] == list(range(8))
    assert ids_seen(found) == [m.id for m in expected]  # right IDs, nothing extra
    for m in expected:
        corners_mm = corners_of(found, m.id) * 25.4 / DPI
        assert np.abs(corners_mm - m.corners_mm()).max() <= 0.5, (m.id, corners_mm, m.corners_mm())


def test_markers_outside_patch_with_quiet_zone(grid):
    sheet, *_ = grid
    q = sheet.layout.frame.quiet_mm
    # a quarter of the marker's side: 1.5 of its 6 modules (4 data + 2 border) of white
    assert q == pytest.approx(sheet.info.blocks[0].markers[0].size_mm / 4)
    for b in sheet.layout.blocks:
        for m in b.markers:
            for other in sheet.layout.blocks:
                assert not m.rect.grown(q).overlaps(other.rect)


def test_colours_unaltered_nearest_neighbour(grid, patches):
    sheet, out, page, _ = grid
    b = sheet.info.blocks[0]
    src = load_patch(patches[0]).pixels
    n = src.shape[0]
    px = DPI / 25.4
    cell = b.size_mm / n
    centres = (np.arange(n) + 0.5) * cell
    rows = np.round((b.y_mm + centres) * px).astype(int)
    cols = np.round((b.x_mm + centres) * px).astype(int)
    sampled = page[rows[:, None], cols[None, :]]
    assert np.array_equal(sampled, src)
    # and the PDF stores exactly the nearest-neighbour upscaled pixels (lossless, no resampling)
    import pypdfium2 as pdfium
    import pypdfium2.raw as raw

    doc = pdfium.PdfDocument(str(out))
    objs = list(doc[0].get_objects(filter=[raw.FPDF_PAGEOBJ_IMAGE]))
    stored = [o.get_bitmap(render=False).to_numpy()[:, :, 2::-1] for o in objs]  # BGR -> RGB
    want = block_image(load_patch(patches[0]), (1, 1), 40.0, 300)
    assert want.shape[0] >= 40 / 25.4 * 300  # at least --dpi
    assert any(s.shape == want.shape and np.array_equal(s, want) for s in stored)
    doc.close()


def test_sheet_json_keys_and_patch_metadata(grid, patches):
    _, out, *_ = grid
    data = json.loads(out.with_suffix(".json").read_text())
    assert data["page_size_mm"] == [210.0, 297.0]
    assert data["aruco_dictionary"] == "DICT_4X4_50"
    b0, b1 = data["blocks"]
    for key in ("page", "x_mm", "y_mm", "size_mm", "markers", "patch_sha256", "target", "model", "tile",
                "patch_size_mm"):
        assert key in b0
    assert set(b0["markers"][0]) >= {"id", "x_mm", "y_mm", "size_mm"}
    assert (b0["target"]["name"], b0["target"]["index"], b0["model"]) == ("hen", 8, "digits")
    assert (b1["target"], b1["model"]) == (None, None)
    assert b0["patch_sha256"] == sha256_file(patches[0])
    assert read_sheet(out.with_suffix(".json")) == grid[0].info


def test_capture_reads_our_sheet(grid):
    import capture.sheet as capture_sheet
    _, out, *_ = grid
    parsed = capture_sheet.load_sheet(out.with_suffix(".json"))
    assert len(parsed.blocks) == 2 and parsed.blocks[1].width_mm == 40.0
    # cube faces each carry their own markers, so capture can tell the faces apart
    cube = make_sheet([load_patch(grid[0].info.blocks[0].patch_file)], SheetSettings(layout="cube", size_mm=40))
    path = out.with_name("cube.json")
    path.write_text(json.dumps(cube.info.to_json()))
    parsed = capture_sheet.load_sheet(path)
    assert len(parsed.blocks) == 6 and {parsed.block_of_marker(m.id) for b in cube.info.blocks for m in b.markers} == set(range(6))


def test_tile_grows_block_and_preview(cli, patches, tmp_path):
    out = tmp_path / "t.pdf"
    code, stdout, err = cli("print", patches[0], "--out", out, "--size-mm", 25, "--tile", "2x3", "--preview")
    assert code == 0, err
    info = read_sheet(out)
    b = info.blocks[0]
    assert (b.width_mm, b.height_mm, b.size_mm, b.patch_size_mm, b.tile) == (75.0, 50.0, 75.0, 25.0, (2, 3))
    x, y, w, h = measure_block(out, b)
    assert abs(w - 75) <= 0.2 and abs(h - 50) <= 0.2 and abs(x - b.x_mm) <= 0.5 and abs(y - b.y_mm) <= 0.5
    preview = cv2.imread(str(tmp_path / "t-page0.png"))
    assert preview is not None and abs(preview.shape[0] - 1169.3) < 1 and abs(preview.shape[1] - 826.8) < 1  # A4, 100 dpi


def test_grid_spills_onto_second_page(cli, patches, tmp_path):
    out = tmp_path / "many.pdf"
    code, _, err = cli("print", *([patches[1]] * 7), "--out", out, "--size-mm", 50, "--preview")
    assert code == 0, err
    info = read_sheet(out)
    assert info.pages == 2 == page_count(out)
    assert [b.page for b in info.blocks] == [0] * 6 + [1]
    assert (tmp_path / "many-page0.png").is_file() and (tmp_path / "many-page1.png").is_file()
    found = detect_markers(render_page(out, 1, 200))
    assert ids_seen(found) == [m.id for m in info.blocks[6].markers] == [24, 25, 26, 27]
    ids = [m.id for b in info.blocks for m in b.markers]
    assert len(ids) == len(set(ids)) == 28


def test_cube_net_has_six_faces_and_findable_markers(cli, patches, tmp_path):
    out = tmp_path / "cube.pdf"
    code, _, err = cli("print", patches[0], "--out", out, "--layout", "cube", "--size-mm", 45)
    assert code == 0, err
    info = read_sheet(out)
    assert info.layout == "cube" and info.pages == 1
    assert [b.face for b in info.blocks] == list(FACE_ORDER)
    ids = [m.id for b in info.blocks for m in b.markers]
    assert len(ids) == len(set(ids)) and all(len(b.markers) >= 2 for b in info.blocks)
    faces = {b.face: b for b in info.blocks}
    assert all(b.size_mm == 45.0 for b in info.blocks)
    # the net: front's neighbours share its edges exactly
    f = faces["front"]
    assert faces["top"].y_mm + 45 == pytest.approx(f.y_mm) and faces["top"].x_mm == pytest.approx(f.x_mm)
    assert faces["left"].x_mm + 45 == pytest.approx(f.x_mm) and faces["right"].x_mm == pytest.approx(f.x_mm + 45)
    assert faces["bottom"].y_mm == pytest.approx(f.y_mm + 45) and faces["back"].y_mm == pytest.approx(f.y_mm + 90)
    dpi = 300
    page = render_page(out, 0, dpi)
    found = detect_markers(page)
    assert ids_seen(found) == sorted(ids)
    for b in info.blocks:
        for m in b.markers:
            assert np.abs(corners_of(found, m.id) * 25.4 / dpi - m.corners_mm()).max() <= 0.5
    x, y, w, h = bbox_mm(colourful(page), (0, 0), dpi)  # the whole cross of six faces
    assert abs(w - 135) <= 0.3 and abs(h - 180) <= 0.3
    assert abs(x - faces["left"].x_mm) <= 0.5 and abs(y - faces["top"].y_mm) <= 0.5


def test_cube_six_patches_one_per_face(patches, tmp_path):
    solid = [patch_from_array(np.broadcast_to(c, (8, 8, 3)).copy()) for c in PALETTE]
    sheet = make_sheet(solid, SheetSettings(layout="cube", size_mm=40, markers=False))
    assert all(b.markers == () for b in sheet.info.blocks)
    dpi = 50
    page = render_page(sheet.pdf, 0, dpi)
    for b, colour in zip(sheet.info.blocks, PALETTE):
        cx, cy = (b.x_mm + b.size_mm / 2) / 25.4 * dpi, (b.y_mm + b.size_mm / 2) / 25.4 * dpi
        assert np.array_equal(page[round(cy), round(cx)], colour), b.face


def test_no_markers_allows_more_blocks(cli, patches, tmp_path):
    out = tmp_path / "nm.pdf"
    code, _, err = cli("print", *([patches[1]] * 13), "--out", out, "--size-mm", 20, "--no-markers")
    assert code == 0, err
    info = read_sheet(out)
    assert len(info.blocks) == 13 and all(b.markers == () for b in info.blocks)


def test_layout_geometry_is_clean():
    frame = L.Surround.for_markers(12.0)
    lay = L.grid_layout(12, 30, 30, L.page_size("a4"), 10, frame, 5)
    page = L.Rect(0, 0, 210, 297)
    for b in lay.blocks:
        assert page.contains(b.rect.grown(frame.ext_mm))
        for other in lay.blocks:
            if other is not b and other.page == b.page:
                assert not b.rect.grown(frame.ext_mm).overlaps(other.rect.grown(frame.ext_mm))
    # even with no margin, every marker keeps its quiet zone on the page
    edge = L.grid_layout(6, 40, 40, L.page_size("letter"), 0, frame, 5)
    assert all(L.Rect(0, 0, 215.9, 279.4).contains(m.rect.grown(frame.quiet_mm))
               for b in edge.blocks for m in b.markers)
    cube = cube_layout(50, L.page_size("a4"), 10, frame, 5)
    tabs = [L.Rect(min(p[0] for p in poly), min(p[1] for p in poly),
                   max(p[0] for p in poly) - min(p[0] for p in poly), max(p[1] for p in poly) - min(p[1] for p in poly))
            for _, poly in cube.tabs]
    assert len(tabs) == 7
    markers = [m for b in cube.blocks for m in b.markers]
    for m in markers:
        zone = m.rect.grown(frame.quiet_mm)
        assert not any(zone.overlaps(b.rect) for b in cube.blocks)
        assert not any(zone.overlaps(t) for t in tabs)
        assert not any(zone.overlaps(o.rect) for o in markers if o is not m)


BAD = {
    "missing file": lambda d, p: ([d / "nope.png"], []),
    "unreadable image": lambda d, p: ([_text(d / "bad.png")], []),
    "size too big for page": lambda d, p: ([p], ["--size-mm", 300]),
    "tile too big for page": lambda d, p: ([p], ["--size-mm", 50, "--tile", "5x5"]),
    "too many blocks for marker ids": lambda d, p: ([p] * 13, ["--size-mm", 20]),
    "cube takes 1 or 6": lambda d, p: ([p, p], ["--layout", "cube"]),
    "bad tile": lambda d, p: ([p], ["--tile", "0x2"]),
    "bad page": lambda d, p: ([p], ["--page", "a5"]),
    "non-square patch": lambda d, p: ([write_png(d / "wide.png", np.zeros((8, 12, 3), np.uint8))], []),
    "negative size": lambda d, p: ([p], ["--size-mm", -5]),
}


def _text(path: Path) -> Path:
    path.write_text("not a png")
    return path


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_exit_2_and_no_pdf_left(cli, patches, tmp_path, case):
    inputs, flags = BAD[case](tmp_path, patches[0])
    out = tmp_path / "out" / "sheet.pdf"
    code, stdout, err = cli("print", *inputs, "--out", out, *flags)
    assert code == 2, (case, err)
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists() and not out.with_suffix(".json").exists()
    assert not (out.parent.exists() and any(out.parent.iterdir()))  # no temporary files either


def test_failed_run_keeps_previous_sheet(cli, patches, tmp_path):
    out = tmp_path / "sheet.pdf"
    assert cli("print", patches[0], "--out", out)[0] == 0
    before = out.read_bytes(), out.with_suffix(".json").read_bytes()
    code, _, err = cli("print", patches[0], "--out", out, "--size-mm", 500)
    assert code == 2
    assert (out.read_bytes(), out.with_suffix(".json").read_bytes()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sheet.json", "sheet.pdf"]


def test_out_must_be_pdf(cli, patches, tmp_path):
    code, _, err = cli("print", patches[0], "--out", tmp_path / "sheet.json")
    assert code == 2 and "pdf" in err and not any(tmp_path.iterdir())


def test_patch_from_array_matches_file(patches):
    from_file = load_patch(patches[0])
    as_float = from_file.pixels.transpose(2, 0, 1).astype(np.float32) / 255
    from_array = patch_from_array(as_float)
    assert np.array_equal(from_array.pixels, from_file.pixels)


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) index pairs of the runs of True in a 1-D boolean array, end exclusive."""
    edges = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    return list(zip(np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0]))


def test_scale_bar_is_100_mm_with_10_mm_ticks_in_the_bottom_margin(grid):
    """The README: "the 100 mm bar in the bottom margin checks it" (print at 100%)."""
    _, out, *_ = grid
    info = read_sheet(out)
    pw, ph = info.page_size_mm
    margin = 10.0  # SheetSettings' default, used by the grid fixture
    img, (x0, y0) = render_region(out, 0, DPI, 0, ph - margin, pw, margin)
    dark = img.max(axis=2) < 128
    px = 25.4 / DPI
    row = int(np.argmax(dark.sum(axis=1)))  # the bar: the row with the longest dark line
    ((start, end),) = [r for r in _runs(dark[row]) if r[1] - r[0] > 50 / px]
    assert abs((end - start) * px - 100.0) <= 0.2, (end - start) * px
    assert ph - margin < y0 + row * px < ph  # inside the bottom margin
    # ticks every 10 mm above it (11 of them), the 0, 50 and 100 mm ones longer
    ticks = _runs(dark[row - int(1.0 / px)])
    centres = np.array([(a + b) / 2 for a, b in ticks]) * px
    assert len(ticks) == 11 and np.abs(np.diff(centres) - 10.0).max() <= 0.1, centres
    long_ticks = np.array([(a + b) / 2 for a, b in _runs(dark[row - int(2.0 / px)])]) * px
    assert np.allclose(long_ticks, centres[[0, 5, 10]], atol=0.05), long_ticks


@pytest.mark.parametrize("page, largest", [("a4", 53), ("a3", 82)])
def test_cube_largest_face_on_a4_and_a3(cli, patches, tmp_path, page, largest):
    """README: "On A4 with the default markers the largest face is about 53 mm (A3: about 82 mm)"."""
    out = tmp_path / "cube.pdf"
    code, _, err = cli("print", patches[0], "--out", out, "--layout", "cube", "--page", page, "--size-mm", largest)
    assert code == 0, err
    assert {b.size_mm for b in read_sheet(out).blocks} == {float(largest)}
    code, _, err = cli("print", patches[0], "--out", tmp_path / "big.pdf", "--layout", "cube", "--page", page,
                       "--size-mm", largest + 1)
    assert code == 2 and "smaller --size-mm" in err and not (tmp_path / "big.pdf").exists()


def test_patch_sidecar_with_null_target_gives_a_caption_without_it(tmp_path):
    from printing.patches import read_patch_meta

    (tmp_path / "patch.json").write_text('{"target": null, "model": {"model": "digits"}}')
    assert read_patch_meta(tmp_path / "patch.png") == (None, "digits")
