"""Trust (issue 30): no re-run destroys a user's result, outputs are whole or absent, and no output
names an input. Every command that writes refuses an existing output before any work, in one line
naming --overwrite; an interrupted generate never replaces a finished patch; a video whose writer
failed is an error and leaves no file; an output never replaces an input or its sidecar (that
check comes first, so the input cases below need no --overwrite to show it)."""
import signal
from pathlib import Path

import pytest
import torch

from common.errors import UserError
from common.files import check_new_outputs, save_png
from hostile_files import fail_second_rename, signal_on_call

GEN = ["generate", "--model", "digits", "--target", "seven", "--steps", "1", "--batch", "2", "--eval-n", "2"]
CAP = ["capture", "--model", "digits", "--target", "seven", "--source", "{ok}", "--headless", "--max-frames", "2"]
PRECIOUS = b"a result someone waited for"


@pytest.fixture(scope="module")
def d(tmp_path_factory):
    """A patch, a printed sheet of it, the calibration sheet and a still photo of it."""
    from blocks.cli import run

    d = tmp_path_factory.mktemp("outputs")
    save_png(d / "ok.png", torch.rand(3, 16, 16))
    assert run(["print", str(d / "ok.png"), "--out", str(d / "sheet.pdf")]) == 0
    assert run(["calibration-sheet", "--out", str(d / "calib.pdf")]) == 0
    assert run(["simulate", str(d / "calib.pdf"), "--out", str(d / "photo.png"), "--steady-light",
                "--size", "1600x1200", "--seed", "3"]) == 0
    (d / "scenes").mkdir()
    save_png(d / "scenes" / "a.png", torch.rand(3, 64, 64))
    return d


def _fill(args, d: Path, out: Path) -> list[str]:
    return [str(a).format(d=d, ok=d / "ok.png", out=out) for a in args]


# (command line, the output it writes (relative to {out}), the flag that names it). {out} is a
# fresh folder per case; the output is made there first, holding PRECIOUS.
WRITERS = [
    (GEN + ["--out", "{out}/g"], "g/patch.png", "--out"),
    (GEN + ["--out", "{out}/g"], "g/patch.json", "--out"),
    (["evaluate", "{ok}", "--model", "digits", "--target", "seven", "--n", "2", "--out", "{out}/e.json"], "e.json", "--out"),
    (["sweep", "{ok}", "--model", "digits", "--target", "seven", "--num", "3", "--out", "{out}/sw"], "sw/sweep.json", "--out"),
    (["print", "{ok}", "--out", "{out}/s.pdf"], "s.pdf", "--out"),
    (["print", "{ok}", "--out", "{out}/s.pdf"], "s.json", "--out"),  # the sheet.json alone
    (["print", "{ok}", "--out", "{out}/s.pdf", "--preview"], "s-page0.png", "--out"),
    (["calibration-sheet", "--out", "{out}/c.pdf"], "c.json", "--out"),
    (["calibrate", "{d}/photo.png", "--sheet", "{d}/calib.json", "--out", "{out}/cm.json"], "cm.json", "--out"),
    (CAP + ["--summary", "{out}/s.json"], "s.json", "--summary"),
    (CAP + ["--log", "{out}/l.jsonl"], "l.jsonl", "--log"),
    (CAP + ["--save-video", "{out}/v.avi"], "v.avi", "--save-video"),
    (["simulate", "{d}/sheet.pdf", "--out", "{out}/v.mp4", "--frames", "2", "--size", "160x120"], "v.mp4", "--out"),
    (["simulate", "{d}/sheet.pdf", "--out", "{out}/p.png", "--size", "160x120"], "p.png", "--out"),
    (["onepixel", "{ok}", "--model", "digits", "--max-queries", "20", "--out", "{out}/op"], "op/summary.json", "--out"),
    (["onepixel", "{ok}", "--model", "digits", "--max-queries", "20", "--out", "{out}/op"], "op/ok_adv.png", "--out"),
    (["digits-scenes", "{out}/ds", "--limit", "4"], "ds/scenes.json", "OUT folder"),
    (["sample-scenes", "{out}/ss"], "ss/scenes.json", "OUT folder"),
]


@pytest.mark.parametrize("args, name, flag", WRITERS, ids=[f"{w[0][0]} {w[1]}" for w in WRITERS])
def test_an_existing_output_is_refused_then_replaced_with_overwrite(cli, d, tmp_path, args, name, flag):
    target = tmp_path / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(PRECIOUS)
    stamp = target.stat().st_mtime_ns
    code, out, err = cli(*_fill(args, d, tmp_path))
    assert (code, err.strip()) == (2, f"error: {target} exists: pass --overwrite to replace it, or choose "
                                      f"another {flag}"), err
    assert target.read_bytes() == PRECIOUS and target.stat().st_mtime_ns == stamp
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == sorted(
        [Path(name), *Path(name).parents][:-1])  # nothing else was written either: refused before any work
    code, out, err = cli(*_fill(args, d, tmp_path), "--overwrite")
    assert code == 0, err
    assert target.read_bytes() != PRECIOUS and target.stat().st_size > 0


def test_every_writer_has_overwrite(cli):
    """Every command that writes a file takes --overwrite (and its help says so)."""
    for command in {w[0][0] for w in WRITERS} | {"calibration-sheet"}:
        code, out, err = cli(command, "--help")
        assert code == 0 and "--overwrite" in out, command


def test_the_helper_names_the_setting_and_skips_what_is_new(tmp_path):
    (tmp_path / "a").write_bytes(b"x")
    check_new_outputs([None, tmp_path / "b"], overwrite=False)
    check_new_outputs([tmp_path / "a"], overwrite=True)
    with pytest.raises(UserError) as e:
        check_new_outputs([tmp_path / "b", tmp_path / "a"], overwrite=False, flag="summary")
    assert str(e.value) == f"{tmp_path / 'a'} exists: pass overwrite to replace it, or choose another summary"
    assert e.value.param == ("overwrite", "summary")  # the CLI shows --overwrite and --summary


def test_generate_without_out_never_clashes(monkeypatch, tmp_path):
    """No --out: runs/<target>-<time>; a second run in the same second gets a folder of its own."""
    import blocks.commands.generate as g

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(g.time, "strftime", lambda fmt: "20260101-120000")
    run = g.GenerateRun(targets=["seven"])
    first = g.default_out(run)
    assert first == Path("runs/seven-20260101-120000")
    first.mkdir(parents=True)
    assert g.default_out(run) == Path("runs/seven-20260101-120000-2")


# --- an interrupted run never replaces a finished one ----------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_generate_keeps_the_finished_patch(cli, tmp_path, monkeypatch, sig):
    import blocks.attacks.eot_fgsm as eg

    out = tmp_path / "g"
    code, _, err = cli(*GEN, "--out", out)
    assert code == 0, err
    finished = {n: (out / n).read_bytes() for n in ("patch.png", "patch.json", "curve.png")}
    signal_on_call(monkeypatch, eg, "random_views", 3, sig)
    code, _, err = cli(*GEN[:5], "--steps", "100000", "--batch", "2", "--eval-n", "2", "--out", out, "--overwrite")
    assert code == 130, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("interrupted: kept the best patch (step ") and \
        f"as {out / 'patch.partial.png'}, beside the finished patch.png (left as it was)" in last, err
    assert {n: (out / n).read_bytes() for n in finished} == finished
    assert (out / "patch.partial.png").is_file() and (out / "patch.partial.json").is_file()
    import json

    partial = json.loads((out / "patch.partial.json").read_text())
    assert partial["stopped"] == "interrupted" and partial["held_out"] is not None  # judged after the Ctrl-C


def test_interrupted_generate_into_an_empty_folder_writes_the_patch(cli, tmp_path, monkeypatch):
    """Nothing finished to protect: the best patch is kept under its own name, as before."""
    import blocks.attacks.eot_fgsm as eg

    signal_on_call(monkeypatch, eg, "random_views", 3, signal.SIGINT)
    code, _, err = cli(*GEN[:5], "--steps", "100000", "--batch", "2", "--eval-n", "2", "--out", tmp_path / "g")
    assert code == 130 and "kept the best patch" in err and f"in {tmp_path / 'g'}" in err, err
    assert (tmp_path / "g" / "patch.png").is_file() and not (tmp_path / "g" / "patch.partial.png").exists()


# --- a video is whole or absent ---------------------------------------------------------------------

class _Writer:
    """cv2.VideoWriter on a full disk, as OpenCV shows it: opened, every write 'works', and the file
    is empty (nothing) or cut off (truncated: the real clip's first half)."""

    def __init__(self, mode, real, *args):
        self.mode, self.path, self.real = mode, args[0], real(*args)

    def isOpened(self):
        return True

    def write(self, frame):
        self.real.write(frame)

    def release(self):
        self.real.release()
        data = Path(self.path).read_bytes()
        Path(self.path).write_bytes(b"" if self.mode == "nothing" else data[: len(data) // 2])


def _full_disk(monkeypatch, mode):
    import cv2

    real = cv2.VideoWriter
    monkeypatch.setattr(cv2, "VideoWriter", lambda *a: _Writer(mode, real, *a))


@pytest.mark.parametrize("suffix, mode", [(".mp4", "nothing"), (".mp4", "truncated"), (".avi", "truncated")])
def test_simulate_video_on_a_full_disk_is_an_error_and_no_file(cli, d, tmp_path, monkeypatch, suffix, mode):
    _full_disk(monkeypatch, mode)
    out = tmp_path / f"x{suffix}"
    code, _, err = cli("simulate", d / "sheet.pdf", "--out", out, "--frames", "6", "--size", "160x120")
    assert code == 2, err
    assert err.strip().splitlines()[-1].startswith(f"error: cannot write video {out}: "), err
    assert "wrote" not in err and list(tmp_path.iterdir()) == []  # no clip, no hidden temporary file


def test_capture_video_on_a_full_disk_is_an_error_and_no_file(cli, d, tmp_path, monkeypatch):
    _full_disk(monkeypatch, "truncated")
    code, out, err = cli(*_fill(CAP, d, tmp_path), "--save-video", tmp_path / "v.avi", "--log", tmp_path / "l.jsonl")
    assert code == 2, err
    assert err.strip().splitlines()[-1].startswith(f"error: cannot write video {tmp_path / 'v.avi'}: "), err
    assert list(tmp_path.iterdir()) == []  # the failed session keeps neither its video nor its log


def test_a_whole_video_is_kept(cli, d, tmp_path):
    """The read-back check passes a good clip (the frames written are there)."""
    from capture.outputs import check_video

    code, _, err = cli("simulate", d / "sheet.pdf", "--out", tmp_path / "x.mkv", "--frames", "4", "--size", "160x120")
    assert code == 0, err
    assert check_video(tmp_path / "x.mkv", 4) is None
    assert check_video(tmp_path / "x.mkv", 9) == "it holds fewer than the 9 frames written"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.mkv"]


# --- no output names an input ----------------------------------------------------------------------

def test_simulate_out_naming_the_scenes_photo_is_refused(cli, d, tmp_path):
    photo = tmp_path / "scene.png"
    save_png(photo, torch.rand(3, 64, 64))
    before = photo.read_bytes()
    code, _, err = cli("simulate", d / "sheet.pdf", "--scenes", photo, "--out", photo)
    assert (code, err.strip()) == (2, f"error: --out {photo} would overwrite the input {photo}: write somewhere else"), err
    assert photo.read_bytes() == before


def test_simulate_out_naming_a_photo_in_the_scenes_folder_is_refused(cli, d, tmp_path):
    inside = d / "scenes" / "a.png"
    before = inside.read_bytes()
    code, _, err = cli("simulate", d / "sheet.pdf", "--scenes", d / "scenes", "--out", inside)
    assert (code, err.strip()) == (2, f"error: --out {inside} would overwrite the input {inside}: write somewhere else"), err
    assert inside.read_bytes() == before


def test_evaluate_out_naming_the_patch_sidecar_is_refused(cli, tmp_path):
    from common.records import PatchRecord

    save_png(tmp_path / "patch.png", torch.rand(3, 16, 16))
    PatchRecord().write(tmp_path / "patch.json")
    before = (tmp_path / "patch.json").read_bytes()
    code, _, err = cli("evaluate", tmp_path / "patch.png", "--model", "digits", "--target", "seven", "--n", "2",
                       "--out", tmp_path / "patch.json")
    assert (code, err.strip()) == (2, f"error: --out {tmp_path / 'patch.json'} would overwrite "
                                      f"{tmp_path / 'patch.json'}, the record beside the input "
                                      f"{tmp_path / 'patch.png'}: write somewhere else"), err
    assert (tmp_path / "patch.json").read_bytes() == before


def test_capture_summary_naming_the_source_patch_sidecar_is_refused(cli, tmp_path):
    """Filming a patch.png: its patch.json is not a place for the summary."""
    from common.records import PatchRecord

    save_png(tmp_path / "patch.png", torch.rand(3, 16, 16))
    PatchRecord().write(tmp_path / "patch.json")
    before = (tmp_path / "patch.json").read_bytes()
    code, _, err = cli(*CAP[:6], tmp_path / "patch.png", *CAP[7:], "--summary", tmp_path / "patch.json")
    assert (code, err.strip()) == (2, f"error: --summary {tmp_path / 'patch.json'} would overwrite "
                                      f"{tmp_path / 'patch.json'}, the record beside the input "
                                      f"{tmp_path / 'patch.png'}: write somewhere else"), err
    assert (tmp_path / "patch.json").read_bytes() == before


def test_a_set_that_fails_half_way_puts_the_old_set_back(tmp_path, monkeypatch):
    """--overwrite over patch.png + patch.json, and the second rename fails (a full disk, an I/O
    error): the old pair is back as it was, not one old file beside nothing."""
    from common.files import write_together

    write_together([(tmp_path / "patch.png", b"old png"), (tmp_path / "patch.json", b"old json")])
    fail_second_rename(monkeypatch)
    with pytest.raises(UserError, match="cannot write .*patch.json: I/O error"):
        write_together([(tmp_path / "patch.png", b"new png"), (tmp_path / "patch.json", b"new json")])
    assert (tmp_path / "patch.png").read_bytes() == b"old png"
    assert (tmp_path / "patch.json").read_bytes() == b"old json"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["patch.json", "patch.png"]  # no link left behind
    monkeypatch.undo()
    write_together([(tmp_path / "patch.png", b"new png"), (tmp_path / "patch.json", b"new json")])
    assert (tmp_path / "patch.png").read_bytes() == b"new png"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["patch.json", "patch.png"]
