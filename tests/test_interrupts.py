"""common.interrupts: Ctrl-C (even twice), SIGTERM and SIGHUP stop a run and keep what was finished;
exit 130 and one line saying what was kept, never a traceback."""
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from common.files import save_png
from common.interrupts import handle_interrupts, writing
from hostile_files import CAP, _fill, signal_on_call

# 8. interrupts


def _sigint_later(*delays):
    def fire():
        for d in delays:
            time.sleep(d)
            os.kill(os.getpid(), signal.SIGINT)

    t = threading.Thread(target=fire, daemon=True)
    t.start()
    return t


def test_ctrl_c_is_held_while_writing():
    with pytest.raises(KeyboardInterrupt):
        with writing():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # a Ctrl-C here would normally raise at once
            done = True
    assert done


def test_second_ctrl_c_is_held_after_the_first():
    with handle_interrupts():
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
        os.kill(os.getpid(), signal.SIGINT)  # the reflexive second one: held, the files get written
        time.sleep(0.05)


def test_double_ctrl_c_keeps_the_patch(cli, tmp_path, monkeypatch):
    """1. The first Ctrl-C stops the run; a second one 0.05 s later, while patch.png and patch.json
    are being written (made slow here), must not lose them."""
    import common.files as bf

    slow_write = bf._write_temp
    steps = []

    def write_slowly(path, data):
        time.sleep(0.3)
        return slow_write(path, data)

    monkeypatch.setattr(bf, "_write_temp", write_slowly)
    import blocks.attacks.eot_fgsm as eg

    real_views = eg.random_views

    def views(*a, **k):
        steps.append(1)
        if len(steps) == 3:
            _sigint_later(0.0, 0.35)
        return real_views(*a, **k)

    monkeypatch.setattr(eg, "random_views", views)
    out = tmp_path / "g"
    code, _, err = cli("generate", "--model", "digits", "--target", "seven", "--steps", "100000",
                       "--batch", "4", "--out", out)
    assert code == 130, err
    assert err.strip().splitlines()[-1].startswith("interrupted: kept the best patch"), err
    assert (out / "patch.png").is_file() and (out / "patch.json").is_file()
    # the second Ctrl-C (held while the files were written) skips the held-out check
    assert json.loads((out / "patch.json").read_text())["held_out"] is None
    assert "no held-out check" in err


def test_ctrl_c_during_import_is_one_line(tmp_path):
    """8. Ctrl-C while torch is still importing: one line and 130, no traceback."""
    exe = Path(sys.executable).with_name("blocks")
    p = subprocess.Popen([str(exe), "generate", "--model", "digits", "--target", "seven", "--out",
                          str(tmp_path / "g")], stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    time.sleep(0.6)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert err.strip() == "interrupted: nothing written", err


def test_capture_ctrl_c_exits_130_and_says_what_was_kept(cli, files, tmp_path, monkeypatch):
    import capture.loop as cl

    real = cl.classify
    calls = []

    def classify(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(cl, "classify", classify)
    cap = [_fill(a, files) for a in CAP if a not in ("--max-frames", "1")]
    cap[cap.index(str(files / "ok.png"))] = str(files / "many")
    (files / "many").mkdir(exist_ok=True)
    for i in range(4):
        save_png(files / "many" / f"{i}.png", torch.rand(3, 16, 16))
    code, out, err = cli(*cap, "--summary", tmp_path / "s.json")
    assert code == 130, err
    assert err.strip().splitlines()[-1].startswith(f"interrupted: kept {tmp_path / 's.json'}"), err
    assert (tmp_path / "s.json").is_file()


# --- signals (issue 26): SIGTERM and SIGHUP are Ctrl-C; finished work is kept ---------------------


def test_sigterm_keeps_the_best_patch(cli, tmp_path, monkeypatch):
    import blocks.attacks.eot_fgsm as eg

    signal_on_call(monkeypatch, eg, "random_views", 4, signal.SIGTERM)
    code, _, err = cli("generate", "--model", "digits", "--target", "seven", "--steps", "100000", "--batch", "2",
                       "--out", tmp_path / "g")
    assert code == 130 and err.strip().splitlines()[-1].startswith("interrupted: kept the best patch"), err
    assert (tmp_path / "g" / "patch.png").is_file() and (tmp_path / "g" / "patch.json").is_file()


def test_sighup_keeps_the_capture_log_under_its_name(cli, files, tmp_path, monkeypatch):
    import capture.loop as cl

    (files / "many2").mkdir(exist_ok=True)
    for i in range(6):
        save_png(files / "many2" / f"{i}.png", torch.rand(3, 16, 16))
    # under nohup SIGHUP starts ignored, and blocks keeps it so: give it its default, as a terminal does
    previous = signal.signal(signal.SIGHUP, signal.SIG_DFL)
    signal_on_call(monkeypatch, cl, "classify", 3, signal.SIGHUP)
    cap = [_fill(a, files) for a in CAP if a not in ("--max-frames", "1")]
    cap[cap.index(str(files / "ok.png"))] = str(files / "many2")
    try:
        code, out, err = cli(*cap, "--log", tmp_path / "f.jsonl")
    finally:
        signal.signal(signal.SIGHUP, previous)
    assert code == 130 and "interrupted: kept" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.jsonl"]  # no hidden .tmp left
    assert len((tmp_path / "f.jsonl").read_text().splitlines()) >= 2


def test_onepixel_ctrl_c_keeps_the_finished_images(cli, tmp_path, monkeypatch):
    """Images whose search had ended (won, or out of budget) when Ctrl-C came are written."""
    import blocks.attacks.onepixel.problem as op
    from blocks.models.digits import load_digits_rgb

    x, _ = load_digits_rgb("test")
    for i in range(6):
        save_png(tmp_path / f"d{i}.png", x[i])
    original = op.Problem.evaluate
    calls = []

    def evaluate(self, *a, **k):
        calls.append(1)
        if len(calls) == 4:
            self.won[0] = True  # one image is done, for certain
        if len(calls) == 5:
            os.kill(os.getpid(), signal.SIGINT)
        return original(self, *a, **k)

    monkeypatch.setattr(op.Problem, "evaluate", evaluate)
    inputs = [tmp_path / f"d{i}.png" for i in range(6)]
    code, out, err = cli("onepixel", *inputs, "--model", "digits", "--strategy", "paper", "--maxiter", "1000",
                         "--popsize", "20", "--out", tmp_path / "op")
    assert code == 130 and "interrupted: kept the results of the" in err, err
    import json

    summary = json.loads((tmp_path / "op" / "summary.json").read_text())
    assert 1 <= summary["images"] < 6 and summary["stopped"] == "interrupted"
    assert (tmp_path / "op" / "d0_adv.png").is_file() and (tmp_path / "op" / "d0.json").is_file()


def test_ctrl_c_during_the_final_write_says_the_files_are_kept(cli, files, tmp_path, monkeypatch):
    import common.files as bf

    real, calls = bf._write_temp, []

    def write(path, data):
        calls.append(path)
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGINT)  # held: the files are written first
        return real(path, data)

    monkeypatch.setattr(bf, "_write_temp", write)
    code, out, err = cli("sweep", files / "ok.png", "--model", "digits", "--target", "seven", "--num", "3",
                         "--out", tmp_path / "sw")
    assert code == 130 and "nothing written" not in err, err
    sw = tmp_path / "sw"
    assert err.strip() == f"interrupted: kept {sw / 'sweep.png'}, {sw / 'sweep.json'} (written whole before the interrupt)"
    assert (tmp_path / "sw" / "sweep.json").is_file()


def test_a_burst_of_ctrl_c_never_prints_a_traceback(tmp_path):
    exe = Path(sys.executable).with_name("blocks")
    p = subprocess.Popen([str(exe), "generate", "--model", "digits", "--target", "seven", "--steps", "100000",
                          "--batch", "2", "--out", str(tmp_path / "g")], stderr=subprocess.PIPE,
                         stdout=subprocess.DEVNULL, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    time.sleep(12)  # running by now (or still importing: then the burst is held just the same)
    for _ in range(8):
        p.send_signal(signal.SIGINT)
        time.sleep(0.03)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert err.strip().splitlines()[-1].startswith("interrupted:"), err
