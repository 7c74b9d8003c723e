"""Bad and hostile inputs, every command: one `error:` line and exit 2 (or 130 for Ctrl-C), never a
traceback, never a partial set of outputs. The table only grows: add a row for every case fixed."""
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

from hostile_files import CAP, EVAL, GEN, _fill, until_model_load

# (arguments, exit code, start of stderr). {name} is a file from the fixture above.
CASES = [
    # 2. a header claiming 100000 x 100000 px, in every reader
    (EVAL[:1] + ["{huge}"] + EVAL[2:], 2, "error: image too large: {huge} claims over"),
    (EVAL[:1] + ["{big}"] + EVAL[2:], 2, "error: image too large: {big} is 9000 x 9000 px"),
    (["sweep", "{huge}", "--model", "digits", "--target", "seven"], 2, "error: image too large"),
    (["print", "{huge}", "--out", "{d}/s.pdf"], 2, "error: image too large"),
    (["onepixel", "{huge}", "--model", "digits", "--out", "{d}/op"], 2, "error: image too large"),
    (CAP[:6] + ["{huge}"] + CAP[7:], 2, "error: image too large"),
    (GEN + ["--scenes", "{d}/scenes", "--out", "{d}/g"], 2, "error: image too large"),
    (["calibrate", "{huge}", "--sheet", "{d}/calib.json", "--out", "{d}/cm.json"], 2, "error: image too large"),
    (["print", "{trunc}", "--out", "{d}/s.pdf"], 2, "error: cannot read image"),
    # 3. --input-size
    (GEN + ["--input-size", "-5"], 2, "error: --input-size must be from 8 to 1024, not -5"),
    (GEN + ["--input-size", "0"], 2, "error: --input-size must be from 8 to 1024, not 0"),
    (GEN + ["--input-size", "1"], 2, "error: --input-size must be from 8"),
    (GEN + ["--input-size", "100000"], 2, "error: --input-size must be from 8"),
    (EVAL + ["--input-size", "3"], 2, "error: --input-size must be from 8"),
    (CAP + ["--input-size", "3"], 2, "error: --input-size must be from 8"),
    # 4. NaN never reaches a file
    (GEN + ["--std", "0,0,0"], 2, "error: --std must be a number in [1e-06, 1000]"),
    (GEN + ["--std", "nan,1,1"], 2, "error: --std must be a number in [1e-06, 1000]"),
    (GEN + ["--mean", "inf,0,0"], 2, "error: --mean must be a number in [-1000, 1000]"),
    (GEN + ["--max-seconds", "nan"], 2, "error: --max-seconds must be a number in [0, 604800]"),  # 0: no limit
    (GEN + ["--max-seconds", "inf"], 2, "error: --max-seconds must be a number in [0, 604800]"),
    (GEN + ["--printability", "nan"], 2, "error: --printability must be a number in [0, 1e+06]"),
    (GEN + ["--tv", "-1"], 2, "error: --tv must be a number in [0, 1e+06]"),
    (["sweep", "{ok}", "--model", "digits", "--target", "seven", "--eps", "0:inf"], 2, "error: --eps takes MIN:MAX"),
    (CAP + ["--duration", "nan"], 2, "error: --duration must be a number in (0, 604800]"),
    # 5. output paths checked before the work starts
    (EVAL + ["--out", "{d}/folder"], 2, "error: cannot write {d}/folder: it is a folder"),
    (EVAL + ["--out", "{d}/file.txt/x.json"], 2, "error: cannot write to {d}/file.txt/x.json: {d}/file.txt is a file"),
    (CAP + ["--summary", "{d}/folder"], 2, "error: cannot write summary {d}/folder: it is a folder"),
    (CAP + ["--log", "{d}/folder"], 2, "error: cannot write log {d}/folder: it is a folder"),
    (CAP + ["--save-video", "{d}/file.txt/x.mp4"], 2, "error: cannot write to {d}/file.txt/x.mp4: {d}/file.txt is a file"),
    (["onepixel", "{ok}", "--model", "digits", "--out", "{d}/file.txt"], 2, "error: cannot write to {d}/file.txt: it is a file"),
    (["print", "{ok}", "--out", "{d}/folder"], 2, "error: --out must be a .pdf file"),
    (["print", "{ok}", "--out", "{d}/file.txt/s.pdf"], 2, "error: cannot write to"),
    (EVAL + ["--out", "/dev/full"], 2, "error: cannot write /dev/full: it exists and is not a regular file"),
    (["simulate", "{d}/none.pdf", "--out", "{d}/folder"], 2, "error: cannot write {d}/folder: it is a folder"),
    (["calibration-sheet", "--out", "{d}/file.txt/c.pdf"], 2, "error: cannot write to"),
    (["digits-scenes", "{d}/file.txt"], 2, "error: cannot write to {d}/file.txt: it is a file"),
    # 7. zero, negative and out-of-range numbers
    (GEN + ["--max-seconds", "-0.5"], 2, "error: --max-seconds must be a number in [0, 604800], not -0.5"),
    (GEN + ["--max-seconds", "-1"], 2, "error: --max-seconds must be a number in [0, 604800]"),
    (GEN + ["--patch-size", "0"], 2, "error: --patch-size must be from 2 to 2048, not 0"),
    (GEN + ["--patch-size", "100000"], 2, "error: --patch-size must be from 2"),
    (GEN + ["--final-fraction", "-1"], 2, "error: --final-fraction must be a number in [0, 1]"),
    (GEN + ["--final-fraction", "nan"], 2, "error: --final-fraction must be a number in [0, 1]"),
    (GEN + ["--batch", "100000"], 2, "error: --batch must be from 1 to 1024"),
    (GEN + ["--steps", "0"], 2, "error: --steps must be from 1 to 10000000, not 0"),
    (GEN + ["--seed", "-1"], 2, "error: --seed must be from 0"),
    (GEN + ["--eval-n", "0"], 2, "error: --eval-n must be from 1"),
    (["digits-scenes", "{d}/ds", "--limit", "-3"], 2, "error: --limit must be at least 1, not -3"),
    (["digits-scenes", "{d}/ds", "--limit", "0"], 2, "error: --limit must be at least 1"),
    (EVAL + ["--seed", "-4"], 2, "error: --seed must be from 0"),
    (["sweep", "{ok}", "--model", "digits", "--target", "seven", "--num", "100000000"], 2, "error: --num must be from 2"),
    (CAP + ["--window", "0"], 2, "error: --window must be a number in (0, 1]"),
    (CAP + ["--stride", "nan"], 2, "error: --stride must be a number in [0.02, 1]"),
    (["simulate", "{d}/none.pdf", "--out", "{d}/v.mp4", "--block", "-1"], 2, "error: --block must be at least 0"),
    (["simulate", "{d}/none.pdf", "--out", "{d}/v.mp4", "--frames", "0"], 2, "error: --frames must be from 1"),
    (["calibrate", "{ok}", "--sheet", "{d}/calib.json", "--step", "0"], 2, "error: --step must be from 1 to 1000000"),
    # 9. messages that say what is wrong
    (GEN + ["--scale", "1:x"], 2, "error: --scale takes MIN:MAX with"),
    (GEN + ["--mean", "1,2"], 2, "error: --mean takes 3 numbers"),
    (GEN + ["--labels", "{three}", "--out", "{d}/g3"], 2, "error: --labels {three} has 3 names but the weights"),
    (GEN + ["--weights", "{evil}", "--out", "{d}/g4"], 2, "error: cannot load weights {evil}: not a plain PyTorch state dict (it would run code (posix.system); refused"),
    (GEN + ["--weights", "{raw}", "--out", "{d}/g4"], 2, "error: cannot load weights {raw}: not a plain PyTorch state dict (a pickle torch refuses: Unsupported operand"),
    (GEN + ["--weights", "{three}", "--out", "{d}/g4"], 2, "error: cannot load weights {three}: not a plain PyTorch state dict (not a pickle or zip file"),
    # 10. (issue 26) every file read back is read strictly: depth, huge integers, NaN, types
    (CAP + ["--sheet", "{deep}"], 2, "error: cannot read sheet {deep}: nested more than 32 levels deep"),
    (CAP + ["--sheet", "{bigint}"], 2, "error: cannot read sheet {bigint}: it holds an integer of 5000 digits"),
    (["calibrate", "{ok}", "--sheet", "{deep}"], 2, "error: cannot read calibration sheet {deep}: nested"),
    (["calibrate", "{ok}", "--sheet", "{bigint}"], 2, "error: cannot read calibration sheet {bigint}: it holds an integer"),
    (["simulate", "{d}/nan/s.pdf", "--out", "{d}/v.png"], 2, "error: cannot read sheet {d}/nan/s.json: it holds NaN"),
    (EVAL + ["--colormap", "{deep}"], 2, "error: cannot read colour map {deep}: nested more than 32 levels"),
    (GEN + ["--colormap", "{bigint}"], 2, "error: cannot read colour map {bigint}: it holds an integer"),
    (GEN + ["--models", "{deep}"], 2, "error: cannot read models file {deep}: nested more than 32 levels"),
    (GEN + ["--models", "{deeptoml}"], 2, "error: cannot read models file {deeptoml}: nested too deeply"),
    (GEN + ["--models", "{absurd}"], 2, "error: models file {absurd}, entry 1: input_size must be a whole number of pixels, 8 to 1024"),
    (CAP + ["--sheet", "{ok}"], 2, "error: cannot read sheet {ok}: not UTF-8 text"),
    # special files: a FIFO is refused before anything reads it (a FIFO as --labels hung forever)
    (GEN + ["--labels", "{d}/fifo"], 2, "error: labels file {d}/fifo is a named pipe (FIFO), not a regular file"),
    (GEN + ["--weights", "{d}/fifo"], 2, "error: weights file {d}/fifo is a named pipe (FIFO)"),
    (GEN + ["--targets-file", "{d}/fifo"], 2, "error: --targets-file {d}/fifo is a named pipe (FIFO)"),
    (GEN + ["--models", "{d}/fifo"], 2, "error: models file {d}/fifo is a named pipe (FIFO)"),
    (GEN + ["--colormap", "{d}/fifo"], 2, "error: colour map {d}/fifo is a named pipe (FIFO)"),
    (["generate", "--model", "{d}/fifo", "--target", "a"], 2, "error: model file {d}/fifo is a named pipe (FIFO)"),
    (EVAL[:1] + ["{d}/fifo"] + EVAL[2:], 2, "error: image {d}/fifo is a named pipe (FIFO)"),
    (["print", "{d}/fifo", "--out", "{d}/s.pdf"], 2, "error: patch image {d}/fifo is a named pipe (FIFO)"),
    (["onepixel", "{d}/fifo", "--model", "digits", "--out", "{d}/op"], 2, "error: image {d}/fifo is a named pipe (FIFO)"),
    (CAP + ["--sheet", "{d}/fifo"], 2, "error: sheet {d}/fifo is a named pipe (FIFO)"),
    (CAP[:6] + ["{d}/fifo"] + CAP[7:], 2, "error: source {d}/fifo is a named pipe (FIFO)"),
    (["calibrate", "{ok}", "--sheet", "{d}/fifo"], 2, "error: calibration sheet {d}/fifo is a named pipe (FIFO)"),
    (["simulate", "{d}/fifo", "--out", "{d}/v.mp4"], 2, "error: PDF {d}/fifo is a named pipe (FIFO)"),
    (GEN + ["--labels", "{d}/folder"], 2, "error: labels file {d}/folder is a folder, not a regular file"),
    # resources and devices
    (GEN + ["--device", "mps"], 2, "error: --device mps asked for, but this machine has no MPS"),
    (GEN + ["--device", "cuda:99"], 2, "error: --device cuda:99 asked for, but"),
    (GEN + ["--device", "tpu"], 2, "error: unknown device 'tpu'"),
    # numbers at the edges
    (GEN + ["--steps", "99999999999999999999999"], 2, "error: --steps must be from 1 to 10000000"),
    (GEN + ["--printability", "1e308"], 2, "error: --printability must be a number in [0, 1e+06]"),
    (GEN + ["--mean", "1e308,0,0"], 2, "error: --mean must be a number in [-1000, 1000]"),
    (GEN + ["--weights", "{nanw}"], 2, "error: model digits gives non-finite outputs (NaN or infinity)"),
    (EVAL[:1] + ["{one}"] + EVAL[2:], 2, "error: patch {one} is 1 x 1 px: a patch needs at least 2 x 2 pixels"),
    (["calibration-sheet", "--margin-mm", "1e308", "--out", "{d}/c2.pdf"], 2, "error: --margin-mm must be at most 1000 mm"),
    (["print", "{ok}", "--out", "{d}/s.pdf", "--size-mm", "1e308"], 2, "error: --size-mm must be at most 1000 mm"),
    (CAP + ["--sliding", "--stride", "1e-300"], 2, "error: --stride must be a number in [0.02, 1]"),
    # typer's own parse errors: one line too
    (["sweep", "{ok}", "--model", "digits", "--target", "seven", "--num", "abc"], 2, "error: Invalid value for '--num'"),
    (["sweep", "--target", "seven"], 2, "error: Missing argument 'image' (see blocks sweep --help)"),
    (["nosuch"], 2, "error: No such command 'nosuch'"),
    # outputs never replace inputs (nor an input's sidecar)
    (["print", "{d}/run/patch.png", "--out", "{d}/run/patch.pdf"], 2, "error: --out (the sheet.json written beside it, {d}/run/patch.json) would overwrite the input {d}/run/patch.json"),
    (EVAL + ["--out", "{ok}"], 2, "error: --out {ok} would overwrite the input {ok}"),
    (CAP + ["--log", "{ok}"], 2, "error: --log {ok} would overwrite the input {ok}"),
    (CAP + ["--sheet", "{d}/calib.json", "--summary", "{d}/calib.json"], 2, "error: --summary {d}/calib.json would overwrite the input {d}/calib.json"),
    (CAP + ["--log", "{d}/s2.json", "--summary", "{d}/s2.json"], 2, "error: --log and --summary name the same file {d}/s2.json"),
    (["calibrate", "{ok}", "--sheet", "{d}/calib.json", "--out", "{d}/calib.json"], 2, "error: --out {d}/calib.json would overwrite the input {d}/calib.json"),
    (["onepixel", "{d}/imgs", "--model", "digits", "--out", "{d}/imgs"], 2, "error: --out {d}/imgs would overwrite the input {d}/imgs"),
    (["onepixel", "{d}/run/patch.png", "--model", "digits", "--out", "{d}/run"], 2, "error: --out {d}/run/patch.json would overwrite the input {d}/run/patch.json"),
    (["simulate", "{d}/calib.pdf", "--out", "{d}/calib.pdf"], 2, "error: --out {d}/calib.pdf would overwrite the input {d}/calib.pdf"),
    (GEN + ["--colormap", "{d}/run/patch.json", "--out", "{d}/run"], 2, "error: --out (its patch.json, {d}/run/patch.json) would overwrite the input {d}/run/patch.json"),
]



@pytest.mark.parametrize("args, code, start", CASES, ids=[f"{c[0][0]} {' '.join(c[0][-2:])}" for c in CASES])
def test_bad_input(cli, files, args, code, start):
    got, out, err = cli(*[_fill(a, files) for a in args])
    assert (got, err.splitlines()[0] if err else "") == (code, _fill(start, files)) or (
        got == code and err.startswith(_fill(start, files))), err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not Path("/tmp/blocks-evil-ran").exists()



# A fuzz test over the numeric flags of generate, print and capture: no value gives a traceback.

NUMBERS = st.one_of(
    st.integers(-10**12, 10**12).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["nan", "-nan", "inf", "-inf", "0", "-0", "1e308", "-1e-308", "1", "2", "0.5"]),
)
GEN_FLAGS = ["--steps", "--batch", "--eval-n", "--patch-size", "--input-size", "--epsilon", "--final-fraction",
             "--momentum", "--max-seconds", "--printability", "--tv", "--seed", "--std", "--mean"]
CAP_FLAGS = ["--window", "--stride", "--threshold", "--max-frames", "--duration", "--input-size", "--std"]
PRINT_FLAGS = ["--size-mm", "--margin-mm", "--marker-mm", "--dpi"]



def _fuzz_once(cli, monkeypatch, args):
    ran = until_model_load(cli, monkeypatch, args)
    if ran is None:
        return
    code, out, err = ran
    assert "Traceback" not in err, (args, err)
    assert code in (0, 2), (args, code, err)
    if code == 2 and err.startswith("error:"):
        assert len(err.strip().splitlines()) == 1, (args, err)


FUZZ = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(flag=st.sampled_from(GEN_FLAGS), value=NUMBERS)
def test_fuzz_generate_numbers(cli, files, monkeypatch, tmp_path, flag, value):
    if flag in ("--std", "--mean"):
        value = f"{value},1,1"
    _fuzz_once(cli, monkeypatch, [*GEN, f"{flag}={value}", "--out", str(tmp_path / "g")])


@FUZZ
@given(flag=st.sampled_from(CAP_FLAGS), value=NUMBERS)
def test_fuzz_capture_numbers(cli, files, monkeypatch, tmp_path, flag, value):
    if flag == "--std":
        value = f"1,{value},1"
    _fuzz_once(cli, monkeypatch, [*[_fill(a, files) for a in CAP], "--sliding", f"{flag}={value}"])


@FUZZ
@given(flag=st.sampled_from(PRINT_FLAGS), value=NUMBERS, tile=st.tuples(st.integers(-3, 60), st.integers(-3, 60)))
def test_fuzz_print_numbers(cli, files, monkeypatch, tmp_path, flag, value, tile):
    _fuzz_once(cli, monkeypatch, ["print", str(files / "ok.png"), "--out", str(tmp_path / "s.pdf"),
                                  f"{flag}={value}", "--tile", f"{tile[0]}x{tile[1]}"])


# --- numbers that turned into NaN mid-run (issue 26) ------------------------------------------------

def test_a_calibrated_map_sending_black_below_zero_gives_no_nan(cli, tmp_path):
    """blocks calibrate's fit can map black to a hair below 0 (-0.0011 blue); the print preset's
    gamma made that NaN at step 0. The map's output and the gamma input are clipped now."""
    from colormaps import colormap_from_matrix, write_colormap
    from transforms.colormap import ColorMap

    write_colormap(colormap_from_matrix(torch.eye(3), offset=(0.0, 0.0, -0.0011)), tmp_path / "cm.json")
    assert ColorMap.load(tmp_path / "cm.json")(torch.zeros(1, 3, 2, 2)).min() == 0
    code, out, err = cli(*GEN, "--colormap", tmp_path / "cm.json", "--out", tmp_path / "g")
    assert code == 0, err
    assert (tmp_path / "g" / "patch.json").is_file()


def test_a_loss_going_nan_mid_run_is_one_line_at_that_step(cli, tmp_path, monkeypatch):
    import blocks.attacks.eot_fgsm as eg

    real = eg.step_gradient

    def step_gradient(*a, **k):
        loss, prob, win, grad = real(*a, **k)
        step = a[10] if len(a) > 10 else k.get("step", 0)  # step_gradient(model, ..., penalty, step)
        return (loss * float("nan") if step >= 2 else loss), prob, win, grad

    monkeypatch.setattr(eg, "step_gradient", step_gradient)
    code, out, err = cli("generate", "--model", "digits", "--target", "seven", "--steps", "50", "--batch", "2",
                         "--out", tmp_path / "g")
    assert code == 2 and err.strip().splitlines()[-1].startswith("error: the loss became nan at step 2"), err
    assert not (tmp_path / "g").exists()
