"""Read-back files are checked for meaning, not only shape (issue 30): a sheet.json, colormap.json or
calib.json that parses but means nothing (a size that is text or true, a marker id the dictionary
lacks, a newer version, a block off its page, a colour map that cannot be applied, a swatch 1e9 mm
away) is one `error:` line naming the file and the field, exit 2, before any model or frame is read.
Each case drives a real command. The property tests mutate one number of a valid file into the
wrong type or out of range: always refused, never a traceback, never a run."""
import copy
import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

from colormaps import colormap_from_matrix, write_colormap
from common.errors import UserError
from common.files import save_png
from hostile_files import CAP, EVAL, _fill, until_model_load


class _Reached(Exception):
    """Raised where the work would start (the model load, the first frame): the file was accepted."""


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A valid sheet (s.pdf + s.json), calibration sheet (calib.pdf + calib.json), colour map and
    patch, as the tool writes them; each case edits a copy."""
    from blocks.cli import run

    d = tmp_path_factory.mktemp("readers")
    save_png(d / "ok.png", torch.rand(3, 16, 16))
    assert run(["print", str(d / "ok.png"), "--out", str(d / "s.pdf")]) == 0
    assert run(["calibration-sheet", "--out", str(d / "calib.pdf")]) == 0
    cmap = colormap_from_matrix(torch.eye(3) * 0.9, offset=(0.05, 0.05, 0.05))
    cmap.mean_error_rgb = 1.5
    cmap.gamut = torch.linspace(0, 1, 12)[:, None].repeat(1, 3)  # 12 greys, as a fit records what it saw
    write_colormap(cmap, d / "cm.json")
    return d


@pytest.fixture
def stop_work(monkeypatch):
    """The model load and calibrate's frame reader raise _Reached: a case that gets there failed."""
    import blocks.commands.shared
    import capture.calibrate

    def reached(*a, **k):
        raise _Reached

    monkeypatch.setattr(blocks.commands.shared, "load_model", reached)
    monkeypatch.setattr(capture.calibrate, "open_source", reached)


def _set(doc, path: str, value):
    """doc with the field at path ("blocks[0].markers[1].id") set to value (a copy)."""
    doc = copy.deepcopy(doc)
    keys = [int(k) if k.isdigit() else k for k in path.replace("[", ".").replace("]", "").split(".")]
    at = doc
    for k in keys[:-1]:
        at = at[k]
    at[keys[-1]] = value
    return doc


def _curves(n: int, ragged: int | None = None):
    """coef of 3 x 3 curves of n knots (one of ragged knots, if given)."""
    coef = [[[0.5] * n for _ in range(3)] for _ in range(3)]
    if ragged is not None:
        coef[2][1] = [0.5] * ragged
    return coef


def _commands(kind: str, made: Path, d: Path, f: Path) -> list[list]:
    """The real commands that read a file of this kind, given the edited file f in folder d (outputs
    go there too) and the valid files in made."""
    if kind == "sheet":  # capture reads it by name; simulate reads the one beside the PDF
        return [["capture", "--model", "digits", "--target", "seven", "--source", made / "ok.png", "--headless",
                 "--max-frames", "1", "--sheet", f],
                ["simulate", d / "s.pdf", "--out", d / "v.png", "--size", "160x120"]]
    if kind == "colormap":
        return [["evaluate", made / "ok.png", "--model", "digits", "--target", "seven", "--n", "2",
                 "--colormap", f],
                ["generate", "--model", "digits", "--target", "seven", "--steps", "1", "--batch", "2",
                 "--printability", "1", "--colormap", f, "--out", d / "g"],
                ["generate", "--model", "digits", "--target", "seven", "--steps", "1", "--colormap", f,
                 "--out", d / "g"],
                ["simulate", made / "calib.pdf", "--colormap", f, "--out", d / "v.png", "--size", "160x120"]]
    return [["calibrate", made / "ok.png", "--sheet", f, "--out", d / "out.json"]]


FILES = {"sheet": "s.json", "colormap": "cm.json", "calib": "calib.json"}

# (file kind, field path, value it is set to, what the one line must say after naming the file)
CASES = [
    # sheet.json: types strictly, ranges, the dictionary's ids, the version, known spots, on the page
    ("sheet", "blocks[0].size_mm", "50", "field blocks[0].size_mm must be a number, not text"),
    ("sheet", "blocks[0].size_mm", True, "field blocks[0].size_mm must be a number, not true/false"),
    ("sheet", "blocks[0].size_mm", 1e9, "field blocks[0].size_mm must be from 0.1 to 2000, not 1e+09"),
    ("sheet", "blocks[0].width_mm", 0, "field blocks[0].width_mm must be from 0.1 to 2000, not 0"),
    ("sheet", "blocks[0].markers[0].id", 1000, "field blocks[0].markers[0].id must be from 0 to 49 (DICT_4X4_50 has 50"),
    ("sheet", "blocks[0].markers[0].id", 50, "field blocks[0].markers[0].id must be from 0 to 49"),
    ("sheet", "version", 99, "version 99 is newer than this tool reads (1)"),
    ("sheet", "version", 0, "field version must be from 1 to 1, not 0"),
    ("sheet", "blocks[0].markers[0].spot", "middle", "field blocks[0].markers[0].spot must be one of top_left,"),
    ("sheet", "aruco_dictionary", "DICT_9X9_1", "field aruco_dictionary must be one of DICT_4X4_50,"),
    ("sheet", "blocks[0].x_mm", 190.0, "field blocks[0].x_mm must be from 0 to 160 to lie on its page, not 190"),
    ("sheet", "blocks[0].y_mm", 5000, "field blocks[0].y_mm must be from 0 to 2000, not 5000"),
    ("sheet", "blocks[0].page", 3, "field blocks[0].page must be from 0 to 0 (the sheet has 1 page(s)), not 3"),
    ("sheet", "blocks[0].markers[2].y_mm", 290.0, "field blocks[0].markers[2].y_mm must be from 0 to 285 to lie on"),
    ("sheet", "page_size_mm", [1.0, 1.0], "field page_size_mm must be 10 to 2000 mm a side, not 1 x 1"),
    # colormap.json: a map that can be applied
    ("colormap", "coef", _curves(0), "field coef[0][0] must be a tone curve of 2 to 256 knots, not 0"),
    ("colormap", "coef", _curves(1), "field coef[0][0] must be a tone curve of 2 to 256 knots, not 1"),
    ("colormap", "coef", _curves(5000), "field coef[0][0] must be a tone curve of 2 to 256 knots, not 5000"),
    ("colormap", "coef", _curves(9, ragged=8), "field coef[2][1] has 8 knots but coef[0][0] has 9"),
    ("colormap", "coef", _curves(9)[:2], "field coef must be a list of 3 rows (one per seen channel), not a list of 2"),
    ("colormap", "knots", 0, "field knots must count coef's knots (9), not 0"),
    ("colormap", "knots", 10**9, "field knots must count coef's knots (9), not 1000000000"),
    ("colormap", "gamut_rgb", [], "field gamut_rgb must hold 1 to 10000 colours (null: none measured), not 0"),
    ("colormap", "gamut_rgb", [[1, 2]], "field gamut_rgb[0] must be a list of 3 numbers [r, g, b], not a list of 2"),
    ("colormap", "gamut_rgb", [[300, 0, 0]], "field gamut_rgb[0][0] must be from 0 to 255, not 300"),
    ("colormap", "coef[1][1][4]", True, "field coef[1][1][4] must be a number, not true/false"),
    ("colormap", "coef[1][1][4]", 1e6, "field coef[1][1][4] must be from -1000 to 1000, not 1e+06"),
    ("colormap", "offset[2]", "0.1", "field offset[2] must be a number, not text"),
    ("colormap", "model", "lut3d", "field model must be one of additive-piecewise-linear, not 'lut3d'"),
    ("colormap", "mean_error_rgb", -1.0, "field mean_error_rgb must be from 0 to 255, not -1"),
    ("colormap", "version", 99, "version 99 is newer than this tool reads (1)"),
    # calib.json: swatches inside their field, colours 0-255, enough of them; markers in the dictionary
    ("calib", "swatches[0].x_mm", 1e9, "field swatches[0].x_mm must be from 0 to 2000, not 1e+09"),
    ("calib", "swatches[0].x_mm", 5.0, "field swatches[0].x_mm must be from 12 to 186.994 to lie on its swatch field, not 5"),
    ("calib", "swatches[1].rgb", [0, 300, 0], "field swatches[1].rgb[1] must be from 0 to 255, not 300"),
    ("calib", "swatches[2].size_mm", "11", "field swatches[2].size_mm must be a number, not text"),
    ("calib", "markers[0].id", 50, "field markers[0].id must be from 0 to 49"),
    ("calib", "blocks[0].markers[3].id", True, "field blocks[0].markers[3].id must be a whole number, not true/false"),
    ("calib", "version", 99, "version 99 is newer than this tool reads (1)"),
]


@pytest.mark.parametrize("kind, path, value, says", CASES, ids=[f"{c[0]}:{c[1]}={str(c[2])[:12]}" for c in CASES])
def test_meaningless_file_is_one_line_naming_file_and_field(cli, made, stop_work, tmp_path, kind, path, value, says):
    doc = json.loads((made / FILES[kind]).read_text())
    f = tmp_path / FILES[kind]
    f.write_text(json.dumps(_set(doc, path, value)))
    if kind == "sheet":
        (tmp_path / "s.pdf").write_bytes((made / "s.pdf").read_bytes())
    for args in _commands(kind, made, tmp_path, f):
        try:
            code, out, err = cli(*args)
        except _Reached:
            pytest.fail(f"{args[0]} accepted {path} = {value!r} and went on to work")
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and "Traceback" not in err, (args[0], err)
        sep = " " if says.startswith("version") else ": "
        assert lines[0].startswith(f"error: {f}{sep}{says}"), (args[0], lines[0])
        if args[0] == "calibrate":  # its errors name no flag it lacks
            assert "--mean" not in err and "--colormap" not in err, err
        assert not any(p.name in ("v.png", "g", "out.json") for p in tmp_path.iterdir()), "an output was written"


def test_too_few_swatches_is_refused_before_the_frames(cli, made, stop_work, tmp_path):
    """A fit needs 3 swatches per knot: refused at read time, not after reading every frame."""
    doc = json.loads((made / "calib.json").read_text())
    doc["swatches"] = doc["swatches"][:5]
    (tmp_path / "calib.json").write_text(json.dumps(doc))
    code, out, err = cli("calibrate", made / "ok.png", "--sheet", tmp_path / "calib.json", "--out", tmp_path / "c.json")
    assert code == 2 and err.strip() == (f"error: {tmp_path / 'calib.json'}: field swatches holds 5 swatches; a colour "
                                         f"map needs at least 27 (3 per knot of its 9-knot curves)"), err


def test_models_file_true_is_not_a_number(cli, stop_work, tmp_path):
    (tmp_path / "m.json").write_text('[{"model": "digits", "mean": [true, 0.5, 0.5]}]')
    code, out, err = cli("generate", "--models", tmp_path / "m.json", "--target", "seven", "--out", tmp_path / "g")
    assert code == 2 and err.strip() == (f'error: models file {tmp_path / "m.json"}, entry 1: mean must be three '
                                         f'numbers (a list, or text like "0.5,0.5,0.5")'), err


# --- calibrate: frames that show no swatches ----------------------------------------------------

def _page_bgr(made: Path, dpi: float = 60) -> tuple[np.ndarray, dict]:
    from printing.render import render_page

    return np.ascontiguousarray(render_page(made / "calib.pdf", 0, dpi)[:, :, ::-1]), json.loads(
        (made / "calib.json").read_text())


def test_calibrate_refuses_frames_with_no_markers(cli, made, tmp_path):
    (tmp_path / "frames").mkdir()
    for i in range(3):
        cv2.imwrite(str(tmp_path / "frames" / f"{i}.png"), np.full((480, 640, 3), 255 - 40 * i, np.uint8))
    code, out, err = cli("calibrate", tmp_path / "frames", "--sheet", made / "calib.json", "--out", tmp_path / "c.json")
    assert code == 2 and err.startswith(f"error: the calibration sheet was not found in {tmp_path / 'frames'} "
                                        f"(3 frame(s) looked at)") and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "c.json").exists()


def test_calibrate_refuses_frames_whose_swatches_are_not_there(cli, made, tmp_path):
    """The corner markers in view but the swatch field blank: every swatch is seen white and a flat
    map fits them exactly. This used to write a colour map with mean error 0.00 over 285 swatches."""
    page, doc = _page_bgr(made)
    b, ppm = doc["blocks"][0], 60 / 25.4
    x0, y0 = int(b["x_mm"] * ppm), int(b["y_mm"] * ppm)
    x1, y1 = int((b["x_mm"] + b["width_mm"]) * ppm) + 1, int((b["y_mm"] + b["height_mm"]) * ppm) + 1
    blank = page.copy()
    blank[y0:y1, x0:x1] = 255
    cv2.imwrite(str(tmp_path / "blank-field.png"), blank)
    code, out, err = cli("calibrate", tmp_path / "blank-field.png", "--sheet", made / "calib.json",
                         "--out", tmp_path / "c.json")
    assert code == 2 and err.startswith(f"error: the swatches were not found in {tmp_path / 'blank-field.png'}: the "
                                        f"corner markers were, but the colours seen do not follow the colours sent "
                                        f"(correlation 0.00;") and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "c.json").exists()
    # the same page with its swatches calibrates (so the refusal above is about the swatches)
    cv2.imwrite(str(tmp_path / "page.png"), page)
    code, out, err = cli("calibrate", tmp_path / "page.png", "--sheet", made / "calib.json", "--out", tmp_path / "c.json")
    assert code == 0, err
    assert json.loads((tmp_path / "c.json").read_text())["swatches"] == len(doc["swatches"])


# --- files written by earlier versions still read ------------------------------------------------

def test_old_sheet_and_calib_still_read(cli, made, stop_work, tmp_path):
    """A sheet.json from before page_size_mm, width/height/tile, version and the nested target were
    recorded (the migrations in common.records), and a calib.json from before height_mm: accepted."""
    doc = json.loads((made / "s.json").read_text())
    block = doc["blocks"][0]
    old_block = {"x_mm": block["x_mm"], "y_mm": block["y_mm"], "size_mm": block["size_mm"],
                 "markers": [{k: m[k] for k in ("id", "x_mm", "y_mm", "size_mm")} for m in block["markers"]],
                 "target": "seven", "target_index": 7, "target_mode": "targeted"}
    (tmp_path / "old.json").write_text(json.dumps({"blocks": [old_block]}))
    with pytest.raises(_Reached):  # read, checked, and on to the model load
        cli("capture", "--model", "digits", "--target", "seven", "--source", made / "ok.png", "--headless",
            "--sheet", tmp_path / "old.json")
    calib = json.loads((made / "calib.json").read_text())
    for s in calib["swatches"]:
        del s["height_mm"]
    (tmp_path / "calib.json").write_text(json.dumps(calib))
    with pytest.raises(_Reached):
        cli("calibrate", made / "ok.png", "--sheet", tmp_path / "calib.json", "--out", tmp_path / "c.json")


def test_every_spot_and_dictionary_the_printer_uses_reads_back(cli, made, tmp_path):
    """The cube's markers take spots beside sides and on the ring around the net; the table of
    dictionaries gives each its number of ids, as OpenCV has them."""
    from capture.sheet import load_sheet
    from common.records import ARUCO_IDS, MARKER_SPOTS
    from printing.markers import DICTIONARY, dictionary_size

    code, out, err = cli("print", made / "ok.png", "--out", tmp_path / "cube.pdf", "--layout", "cube", "--size-mm", "40")
    assert code == 0, err
    spots = {m.spot for b in load_sheet(tmp_path / "cube.json").blocks for m in b.markers}
    assert spots <= set(MARKER_SPOTS) and spots - {"top_left", "top_right", "bottom_right", "bottom_left"}, spots
    assert DICTIONARY in ARUCO_IDS
    assert {name: dictionary_size(name) for name in ARUCO_IDS} == ARUCO_IDS


# --- property: one number of a valid file, made the wrong type or out of range ---------------------

def _number_leaves(doc, at: str = ""):
    """(path, value) of every number in a parsed JSON document."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _number_leaves(v, f"{at}.{k}" if at else k)
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _number_leaves(v, f"{at}[{i}]")
    elif isinstance(doc, (int, float)) and not isinstance(doc, bool):
        yield at, doc


# Every number in sheet.json and colormap.json is bounded well inside +-1e9; none in sheet.json is
# negative (coordinates start at the page's corner); colour-map coefficients may be, so -1 only there.
NONSENSE = [True, False, "50", "0.5", [], {}, 1e9, -1e9, 10**15]
FUZZ = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def _refused_naming(cli, args, path: str, value):
    try:
        code, out, err = cli(*args)
    except _Reached:
        pytest.fail(f"{args[0]} accepted {path} = {value!r}")
    assert "Traceback" not in err and code == 2, (path, value, code, err)
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: "), (path, value, err)
    assert path in err or (path == "version" and "version" in err), (path, value, err)


@FUZZ
@given(pick=st.integers(0, 10**6), value=st.sampled_from(NONSENSE + [-1, -0.5]))
def test_fuzz_sheet_json_numbers_are_refused_by_name(cli, made, stop_work, tmp_path_factory, pick, value):
    doc = json.loads((made / "s.json").read_text())
    leaves = list(_number_leaves(doc))
    path = leaves[pick % len(leaves)][0]
    d = tmp_path_factory.mktemp("fz")
    (d / "s.json").write_text(json.dumps(_set(doc, path, value)))
    _refused_naming(cli, _commands("sheet", made, d, d / "s.json")[0], path, value)


@FUZZ
@given(pick=st.integers(0, 10**6), value=st.sampled_from(NONSENSE))
def test_fuzz_colormap_json_numbers_are_refused_by_name(cli, made, stop_work, tmp_path_factory, pick, value):
    doc = json.loads((made / "cm.json").read_text())
    leaves = list(_number_leaves(doc))
    path = leaves[pick % len(leaves)][0]
    d = tmp_path_factory.mktemp("fz")
    (d / "cm.json").write_text(json.dumps(_set(doc, path, value)))
    _refused_naming(cli, _commands("colormap", made, d, d / "cm.json")[0], path, value)


def test_swatches_of_one_colour_are_refused_before_the_frames(cli, made, stop_work, tmp_path):
    doc = json.loads((made / "calib.json").read_text())
    for s in doc["swatches"]:
        s["rgb"] = [128, 128, 128]
    (tmp_path / "calib.json").write_text(json.dumps(doc))
    code, out, err = cli("calibrate", made / "ok.png", "--sheet", tmp_path / "calib.json", "--out", tmp_path / "c.json")
    assert code == 2 and err.strip() == (f"error: {tmp_path / 'calib.json'}: field swatches sends colours from grey "
                                         f"128 to 128 only; a colour map needs dark to light (0 to 255)"), err


# --- fuzzing the readers (issue 26): every file the tool reads back, mutated ------------------------

EDGE_TOKENS = ["NaN", "Infinity", "-Infinity", "nan", "inf", "1e999", "-1e999", "9" * 5000, "-" + "9" * 400,
               "1e308", "-1e308", "5e-324", "-1", "0", "99999999999999999999", "2.5", '""', '"x"', "[]", "{}",
               "null", "true", "[" * 3000 + "]" * 3000, "{" * 40 + "}" * 40, '"\\ud800"']
TOKEN = re.compile(r'-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|"(?:[^"\\]|\\.)*"|\btrue\b|\bfalse\b|\bnull\b')
MUTATIONS = st.one_of(
    st.tuples(st.just("replace"), st.integers(0, 10**6), st.sampled_from(EDGE_TOKENS)),
    st.tuples(st.just("truncate"), st.floats(0, 1)),
    st.tuples(st.just("nest"), st.integers(30, 5000)),
    st.tuples(st.just("bytes"), st.floats(0, 1), st.binary(min_size=1, max_size=6)),
)


def mutate(text: str, m) -> bytes:
    """One hostile edit of a valid file: a value replaced by an edge token (NaN, a 5,000-digit
    integer, deep nesting, the wrong type), the file cut short, wrapped deep, or bytes spliced in."""
    kind = m[0]
    if kind == "replace":
        spots = list(TOKEN.finditer(text))
        if spots:
            s = spots[m[1] % len(spots)]
            return (text[:s.start()] + m[2] + text[s.end():]).encode()
        return (m[2] + text).encode()
    if kind == "truncate":
        return text.encode()[: int(len(text.encode()) * m[1])]
    if kind == "nest":
        return ("[" * m[1] + text + "]" * m[1]).encode()
    data = text.encode()
    at = int(len(data) * m[1])
    return data[:at] + m[2] + data[at:]


@pytest.fixture(scope="module")
def records(files, tmp_path_factory):
    """A valid file of every kind the tool reads back, as text."""
    from blocks.cli import run
    from common.records import (CaptureSummary, EvaluateReport, GenerateSummary, OnePixelSummary, PatchRecord,
                                ScenesInfo, SweepRecord)
    from colormaps import colormap_from_matrix, write_colormap

    d = tmp_path_factory.mktemp("records")
    assert run(["print", str(files / "ok.png"), "--out", str(d / "s.pdf")]) == 0
    assert run(["generate", "--model", "digits", "--target", "seven", "--steps", "1", "--batch", "2",
                "--eval-n", "2", "--out", str(d / "g")]) == 0
    write_colormap(colormap_from_matrix(torch.eye(3) * 0.9, offset=(0.05, 0.05, 0.05)), d / "colormap.json")
    return {
        "sheet": (d / "s.json").read_text(),
        "calib": (files / "calib.json").read_text(),
        "colormap": (d / "colormap.json").read_text(),
        "patch": (d / "g" / "patch.json").read_text(),
        "models.json": '[{"model": "digits", "input_size": 32, "mean": [0.5, 0.5, 0.5], "std": "0.5,0.5,0.5"}]',
        "models.toml": '[[models]]\nmodel = "digits"\ninput_size = 32\nmean = [0.5, 0.5, 0.5]\nstd = [0.5, 0.5, 0.5]\n',
        "pdf": (d / "s.pdf").read_bytes(),
        **{cls.__name__: cls().to_bytes().decode() for cls in
           (CaptureSummary, OnePixelSummary, GenerateSummary, EvaluateReport, SweepRecord, ScenesInfo)},
        "PatchRecord": PatchRecord().to_bytes().decode(),
    }


def _one_line_or_ok(code, err, args, written: Path | None):
    assert "Traceback" not in err, (args, err)
    assert code in (0, 2), (args, code, err)
    if code == 2:
        assert err.startswith("error:") and len(err.strip().splitlines()) == 1, (args, err)
        assert written is None or not written.exists(), (args, "written although the input was refused")


FUZZ_FILES = settings(max_examples=25, deadline=None, derandomize=True,
                      suppress_health_check=[HealthCheck.function_scoped_fixture])


def _run_checked(cli, monkeypatch, args, written=None):
    """cli(*args) with the model load replaced by a stop: a record that passed is as good as done."""
    ran = until_model_load(cli, monkeypatch, args)
    if ran is None:
        return
    code, out, err = ran
    _one_line_or_ok(code, err, args, written)


@FUZZ_FILES
@given(m=MUTATIONS)
def test_fuzz_sheet_json_for_capture(cli, files, records, monkeypatch, tmp_path_factory, m):
    d = tmp_path_factory.mktemp("fz")
    (d / "s.json").write_bytes(mutate(records["sheet"], m))
    _run_checked(cli, monkeypatch, [*[_fill(a, files) for a in CAP], "--sheet", d / "s.json",
                                    "--summary", d / "out.json"], d / "out.json")


@FUZZ_FILES
@given(m=MUTATIONS)
def test_fuzz_calib_json_for_calibrate(cli, files, records, tmp_path_factory, m):
    d = tmp_path_factory.mktemp("fz")
    (d / "calib.json").write_bytes(mutate(records["calib"], m))
    args = ["calibrate", files / "ok.png", "--sheet", d / "calib.json", "--out", d / "cm.json"]
    code, out, err = cli(*args)
    _one_line_or_ok(code, err, args, d / "cm.json")
    assert code == 2  # ok.png shows no calibration sheet, so even an accepted record ends in one line


@settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(m=MUTATIONS)
def test_fuzz_sheet_json_beside_the_pdf_for_simulate(cli, records, tmp_path_factory, m):
    d = tmp_path_factory.mktemp("fz")
    (d / "s.pdf").write_bytes(records["pdf"])
    (d / "s.json").write_bytes(mutate(records["sheet"], m))
    args = ["simulate", d / "s.pdf", "--out", d / "v.png", "--size", "160x120"]
    code, out, err = cli(*args)
    _one_line_or_ok(code, err, args, d / "v.png")


@FUZZ_FILES
@given(m=MUTATIONS)
def test_fuzz_colormap_json_for_evaluate(cli, files, records, monkeypatch, tmp_path_factory, m):
    d = tmp_path_factory.mktemp("fz")
    (d / "cm.json").write_bytes(mutate(records["colormap"], m))
    _run_checked(cli, monkeypatch, [*[_fill(a, files) for a in EVAL], "--colormap", d / "cm.json",
                                    "--out", d / "e.json"], d / "e.json")


@FUZZ_FILES
@given(m=MUTATIONS, suffix=st.sampled_from(["json", "toml"]))
def test_fuzz_models_file_for_generate(cli, records, monkeypatch, tmp_path_factory, m, suffix):
    d = tmp_path_factory.mktemp("fz")
    (d / f"models.{suffix}").write_bytes(mutate(records[f"models.{suffix}"], m))
    _run_checked(cli, monkeypatch, ["generate", "--models", d / f"models.{suffix}", "--target", "seven",
                                    "--steps", "1", "--out", d / "g"], d / "g")


@FUZZ_FILES
@given(m=MUTATIONS)
def test_fuzz_patch_json_for_print(cli, files, records, tmp_path_factory, m):
    """print reads the patch's record for its caption; a bad one only shortens the caption."""
    d = tmp_path_factory.mktemp("fz")
    save_png(d / "patch.png", torch.rand(3, 8, 8))
    (d / "patch.json").write_bytes(mutate(records["patch"], m))
    args = ["print", d / "patch.png", "--out", d / "out" / "s.pdf"]
    code, out, err = cli(*args)
    _one_line_or_ok(code, err, args, d / "out")
    assert code == 0, err


RECORD_KINDS = ["PatchRecord", "SheetInfo", "CalibrationInfo", "ColorMapRecord", "CaptureSummary", "OnePixelSummary",
                "GenerateSummary", "EvaluateReport", "SweepRecord", "ScenesInfo"]
VALID_TEXT = {"PatchRecord": "patch", "SheetInfo": "sheet", "CalibrationInfo": "calib", "ColorMapRecord": "colormap"}


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(RECORD_KINDS), m=MUTATIONS)
def test_fuzz_every_record_reader(records, tmp_path_factory, kind, m):
    """Record.read of every record type: the record, or one UserError line naming the file."""
    import common.records as R

    d = tmp_path_factory.mktemp("fz")
    path = d / "r.json"
    path.write_bytes(mutate(records[VALID_TEXT.get(kind, kind)], m))
    try:
        rec = getattr(R, kind).read(path)
    except UserError as e:
        assert str(e) and "\n" not in str(e) and str(path) in str(e), str(e)
    else:
        assert isinstance(rec, getattr(R, kind))
