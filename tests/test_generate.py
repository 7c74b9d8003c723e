import json
import os
import signal
import subprocess
import sys
import time
import urllib.error

import pytest
import torch

from blocks.attacks.eot_fgsm import GenerateConfig, generate_patch, step_size
from blocks.digits import load_digits_rgb
from blocks.evaluate import evaluate_patch
from blocks.files import load_image, to_uint8
from transforms import preset, random_views

SEVEN = 7


@pytest.fixture(scope="module")
def scenes():
    x, y = load_digits_rgb("test")
    return x[y != SEVEN][:200]


@pytest.mark.parametrize("name", ["digital", "print", "webcam"])
@pytest.mark.parametrize("with_scenes", [False, True])
def test_gradient_reaches_every_pixel_of_a_black_patch(digits_model, scenes, name, with_scenes):
    patch = torch.zeros(3, 16, 16, requires_grad=True)  # exact zeros: the hard case
    g = torch.Generator().manual_seed(0)
    views, _ = random_views(patch, 32, 32, preset(name), scenes if with_scenes else None, g)
    loss = torch.nn.functional.cross_entropy(digits_model(views), torch.full((32,), SEVEN))
    (grad,) = torch.autograd.grad(loss, patch)
    ok = (grad != 0) & grad.isfinite()
    assert ok.float().mean() >= 0.99, ok.float().mean()


def test_step_size_schedule():
    cfg = GenerateConfig(target=0, epsilon=0.1, final_fraction=0.1)
    assert step_size(cfg, 0.0) == pytest.approx(0.1)
    assert step_size(cfg, 1.0) == pytest.approx(0.01)
    assert 0.01 < step_size(cfg, 0.5) < 0.1


def test_short_run_raises_target_probability(digits_model, scenes):
    eot = preset("print", (0.5, 0.6))
    cfg = GenerateConfig(target=SEVEN, patch_size=16, steps=40, batch=16, seed=1)
    result = generate_patch(digits_model, cfg, eot, scenes[:100])
    before = evaluate_patch(digits_model, torch.zeros(3, 16, 16), eot, SEVEN, scenes=scenes[100:], n=128)
    after = evaluate_patch(digits_model, result.patch, eot, SEVEN, scenes=scenes[100:], n=128)
    assert result.patch.min() >= 0 and result.patch.max() <= 1
    assert result.patch.abs().sum() > 0  # moved off black
    assert after.mean_target_prob > before.mean_target_prob + 0.2, (before, after)
    assert result.curve[-1].loss < result.curve[0].loss


def test_untargeted_moves_away(digits_model, scenes):
    eot = preset("digital", (0.5, 0.6))
    sevens = load_digits_rgb("test")
    x, y = sevens
    own = x[y == SEVEN]
    cfg = GenerateConfig(away_from=SEVEN, patch_size=16, steps=30, batch=16)
    result = generate_patch(digits_model, cfg, eot, own)
    ev = evaluate_patch(digits_model, result.patch, eot, away_from=SEVEN, scenes=own, n=128)
    black = evaluate_patch(digits_model, torch.zeros(3, 16, 16), eot, away_from=SEVEN, scenes=own, n=128)
    assert ev.success_rate > black.success_rate


def test_ctrl_c_keeps_best_patch(digits_model):
    seen = []

    def on_step(record):
        seen.append(record)
        if record.step == 6:
            raise KeyboardInterrupt

    cfg = GenerateConfig(target=SEVEN, patch_size=16, steps=100, batch=8, check_every=3)
    result = generate_patch(digits_model, cfg, preset("print"), on_step=on_step)
    assert result.stopped == "interrupted"
    assert len(result.curve) == 7
    assert result.best_step in (0, 3, 6)  # the patches scored on the fixed check views
    assert result.best_step > 0 and result.patch.abs().sum() > 0  # better than black, kept


def test_best_patch_is_judged_on_fixed_views(digits_model):
    """The kept patch must be at least as good on the check views as the last one."""
    cfg = GenerateConfig(target=SEVEN, patch_size=16, steps=30, batch=8, check_every=5)
    result = generate_patch(digits_model, cfg, preset("print"))
    assert result.best_step in (0, 5, 10, 15, 20, 25, 30)
    assert result.best_objective_prob >= 0.5


def test_max_seconds_stops(digits_model):
    cfg = GenerateConfig(target=SEVEN, patch_size=16, steps=10**6, batch=4, max_seconds=1.0)
    result = generate_patch(digits_model, cfg, preset("digital"))
    assert result.stopped == "time"
    assert result.curve[-1].epsilon < cfg.epsilon * 0.5  # the schedule follows the clock


def test_cli_generate_writes_exact_png_and_metadata(cli, tmp_path):
    out = tmp_path / "run"
    code, out_text, err = cli("generate", "--model", "digits", "--target", "seven", "--steps", "15",
                              "--batch", "8", "--eval-n", "32", "--device", "cpu", "--out", out)
    assert code == 0, err
    meta = json.loads((out / "patch.json").read_text())
    assert meta["target"]["index"] == SEVEN and meta["target"]["name"] == "seven"
    assert meta["model"]["model"] == "digits" and len(meta["weights_sha256"]) == 64
    assert len(meta["curve"]["loss"]) == 15
    assert set(meta["held_out"]) >= {"success_rate", "mean_target_prob", "by_scale", "by_rotation"}
    assert meta["versions"]["torch"] and meta["seed"] == 0
    assert (out / "curve.png").stat().st_size > 1000
    png = load_image(out / "patch.png")
    assert png.shape == (3, 16, 16)
    # Lossless: re-encoding what we read gives the same bytes' pixel values.
    assert (to_uint8(png) == (png.permute(1, 2, 0).numpy() * 255).round()).all()
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*tmp"))


def test_cli_same_seed_same_patch(cli, tmp_path):
    args = ["generate", "--model", "digits", "--target", "3", "--steps", "5", "--batch", "4",
            "--eval-n", "4", "--device", "cpu", "--seed", "5"]
    assert cli(*args, "--out", tmp_path / "a")[0] == 0
    assert cli(*args, "--out", tmp_path / "b")[0] == 0
    assert (tmp_path / "a/patch.png").read_bytes() == (tmp_path / "b/patch.png").read_bytes()


def test_cli_evaluate_and_sweep(cli, tmp_path):
    x, _ = load_digits_rgb("test")
    from blocks.files import save_png

    save_png(tmp_path / "digit.png", x[0])
    save_png(tmp_path / "patch.png", torch.rand(3, 16, 16))
    code, out, err = cli("evaluate", tmp_path / "patch.png", "--model", "digits", "--target", "seven",
                         "--n", "64", "--device", "cpu")
    assert code == 0, err
    report = json.loads(out)
    assert 0 <= report["success_rate"] <= 1 and 0 <= report["mean_target_prob"] <= 1
    assert sum(b["n"] for b in report["by_scale"].values()) == 64
    code, _, err = cli("sweep", tmp_path / "digit.png", "--model", "digits", "--target", "seven",
                       "--device", "cpu", "--out", tmp_path / "sweep", "--num", "21")
    assert code == 0, err
    sweep = json.loads((tmp_path / "sweep/sweep.json").read_text())
    assert len(sweep["epsilons_255"]) == 21 and "seven" in sweep["probs"]
    assert (tmp_path / "sweep/sweep.png").exists()


@pytest.mark.parametrize("args, needle", [
    (["--target", "chiken"], "unknown target"),
    (["--target", "seven", "--scenes", "/nonexistent"], "not a folder"),
    (["--target", "seven", "--scale", "0.9:0.1"], "--scale"),
    (["--target", "seven", "--eot", "fancy"], "unknown --eot"),
    (["--target", "seven", "--weights", "/nonexistent.pt"], "weights file not found"),
    (["--target", "seven", "--away-from", "one"], "exactly one"),
    (["--target", "seven", "--out", "/proc/forbidden"], "cannot write"),
])
def test_cli_generate_bad_input(cli, args, needle):
    code, _, err = cli("generate", "--model", "digits", "--steps", "1", *args)
    assert code == 2
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err


def test_cli_unreadable_scene_image(cli, tmp_path):
    (tmp_path / "scenes").mkdir()
    (tmp_path / "scenes" / "broken.png").write_bytes(b"not a png")
    code, _, err = cli("generate", "--model", "digits", "--target", "1", "--scenes", tmp_path / "scenes",
                       "--out", tmp_path / "o")
    assert code == 2 and "cannot read image" in err


def test_cli_offline_resnet_is_one_line(cli, monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*a, **k):
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr("torch.hub.load_state_dict_from_url", offline)
    code, _, err = cli("generate", "--target", "chicken", "--model", "resnet50", "--out", tmp_path / "o")
    assert code == 2 and err.count("\n") == 1
    assert "--weights FILE" in err and "--model efficientnet_lite0" in err and "checkpoints" in err
    assert not (tmp_path / "o").exists()  # a failed run leaves no empty output folder


def test_sigint_exits_130_and_keeps_the_patch(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "blocks", "generate", "--model", "digits",
                             "--target", "seven", "--steps", "100000", "--batch", "4",
                             "--device", "cpu", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "COLUMNS": "120"})
    deadline = time.time() + 60
    # Wait until the optimisation is running (the output folder exists once flags are checked).
    while time.time() < deadline and not out.exists():
        time.sleep(0.2)
    time.sleep(4)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    meta = json.loads((out / "patch.json").read_text())
    assert meta["stopped"] == "interrupted" and meta["steps_run"] > 0
    assert load_image(out / "patch.png").shape == (3, 16, 16)
    assert "Traceback" not in err
