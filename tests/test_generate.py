import hashlib
import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
import urllib.error
from dataclasses import replace

import cv2
import numpy as np
import pytest

from common.records import ScenesInfo
import torch

from blocks.attacks.driver import generate_patch
from blocks.attacks.eot_fgsm import GenerateConfig, step_size
from blocks.commands.generate import GenerateRun
from blocks.models.digits import load_digits_rgb
from blocks.evaluate import evaluate_patch
from common.files import load_image
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


def test_takeoff_doubles_the_first_steps_then_follows_the_schedule():
    plain = GenerateConfig(target=0, epsilon=0.1, final_fraction=0.1)
    assert plain.takeoff == 0  # the library's default: the schedule alone
    cfg = replace(plain, takeoff=0.2)
    assert step_size(cfg, 0.0) == step_size(cfg, 0.19) == pytest.approx(0.2)
    assert step_size(cfg, 0.2) == step_size(plain, 0.2) and step_size(cfg, 1.0) == pytest.approx(0.01)


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


def run_recording_checkpoints(model, cfg, eot, monkeypatch, on_step=None):
    """Run generate_patch and record every patch it scored on its fixed check views.

    The check calls random_views without gradients; each call is recorded with the views'
    parameters (the view model's sample, drawing what random_views draws), so the same views
    can be rendered again for any patch.
    """
    from blocks.attacks import eot_fgsm

    checks = []

    def recording(patch, n, size, eot_, scenes, g, patch_map=None):
        params = eot_.sample(n, size, patch.shape[-1], scenes, g, patch.device, patch_map is not None)
        if not patch.requires_grad:
            checks.append((patch.detach().clone(), params, n, size, eot_, scenes, patch_map))
        return eot_.render(patch, params, size, scenes, patch_map)

    monkeypatch.setattr(eot_fgsm, "random_views", recording)
    return generate_patch(model, cfg, eot, on_step=on_step), checks


def rescore(model, target, checks):
    """Loss of every recorded checkpoint on the (replayed) fixed check views."""
    losses = []
    for patch, params, n, size, eot, scenes, patch_map in checks:
        with torch.no_grad():
            views, _ = eot.render(patch, params, size, scenes, patch_map)
            losses.append(torch.nn.functional.cross_entropy(model(views), torch.full((n,), target)).item())
    return losses


def _flat(d) -> bytes:
    """A params batch's draws as bytes (as_dict flattened): equal bytes, equal views."""
    if isinstance(d, dict):
        return b"".join(k.encode() + _flat(v) for k, v in d.items())
    if isinstance(d, list):
        return b"".join(_flat(v) for v in d)
    return d.numpy().tobytes() if isinstance(d, torch.Tensor) else repr(d).encode()


def assert_returned_patch_is_the_best_checkpoint(model, result, checks):
    assert len({_flat(c[1].as_dict()) for c in checks}) == 1  # one fixed set of views for all
    losses = rescore(model, SEVEN, checks)
    best = min(range(len(losses)), key=losses.__getitem__)
    assert torch.equal(result.patch, checks[best][0]), (losses, result.best_step)
    return losses, best


def test_ctrl_c_keeps_best_patch(digits_model, monkeypatch):
    def on_step(record):
        if record.step == 15:
            raise KeyboardInterrupt

    # a constant, large step keeps the patch jumping, so the last checkpoint is not the best one
    cfg = GenerateConfig(target=SEVEN, patch_size=16, steps=100, batch=8, check_every=3,
                         schedule="constant", epsilon=96 / 255, momentum=0)
    result, checks = run_recording_checkpoints(digits_model, cfg, preset("print"), monkeypatch, on_step)
    assert result.stopped == "interrupted"
    assert len(result.curve) == 16 and len(checks) == 7  # steps 0, 3, ..., 15 and the patch Ctrl-C left
    losses, best = assert_returned_patch_is_the_best_checkpoint(digits_model, result, checks)
    assert best > 0 and result.patch.abs().sum() > 0  # better than black, kept
    assert best != len(checks) - 1, losses  # the test would catch "keep the last patch"


def test_best_patch_is_judged_on_fixed_views(digits_model, monkeypatch):
    """After a full run the kept patch has the lowest loss of all checkpoints on the check views."""
    cfg = GenerateConfig(target=SEVEN, patch_size=16, steps=30, batch=8, check_every=5,
                         schedule="constant", epsilon=96 / 255, momentum=0)
    result, checks = run_recording_checkpoints(digits_model, cfg, preset("print"), monkeypatch)
    assert len(checks) == 7  # steps 0, 5, ..., 25 and the final patch
    losses, best = assert_returned_patch_is_the_best_checkpoint(digits_model, result, checks)
    assert result.best_step == [0, 5, 10, 15, 20, 25, 30][best]
    assert best != len(checks) - 1, losses  # the test would catch "keep the last patch"


class FakeClock:
    """A clock that moves `per_call` seconds each time it is read: a slow machine, made exact."""

    def __init__(self, per_call: float):
        self.t, self.per_call = 0.0, per_call

    def __call__(self) -> float:
        self.t += self.per_call
        return self.t


def test_best_patch_is_checked_on_the_clock_too(digits_model, monkeypatch):
    """20 s a step (each step reads the clock twice): without the clock rule steps 0 and 10 only
    are checked; with it every step that comes 30 s after the last check, and the last patch."""
    cfg = GenerateConfig(target=SEVEN, patch_size=16, steps=12, batch=4, check_every=10,
                         schedule="constant", epsilon=96 / 255, momentum=0)
    from blocks.attacks import eot_fgsm

    checked = []
    real = eot_fgsm.random_views

    def recording(patch, *a, **k):
        if not patch.requires_grad:
            checked.append(len(steps))
        return real(patch, *a, **k)

    steps = []
    monkeypatch.setattr(eot_fgsm, "random_views", recording)
    generate_patch(digits_model, cfg, preset("digital"), on_step=steps.append, clock=FakeClock(10.0))
    # elapsed at step s is 20 s + 20 s * s; checks at 0, then whenever >= 30 s passed: 2, 4, ...
    assert checked == [0, 2, 4, 6, 8, 10, 12], checked
    checked.clear(), steps.clear()
    cfg.check_seconds = float("inf")
    generate_patch(digits_model, cfg, preset("digital"), on_step=steps.append, clock=FakeClock(10.0))
    assert checked == [0, 10, 12], checked  # the step rule alone, and the final patch


def test_clock_stop_before_the_tenth_step_keeps_the_last_patch(digits_model):
    """--max-seconds that allows 6 steps: the patch after step 6 is scored, so the run does not
    end with the black patch of step 0 (the newcomer's 'kept the best patch (step 0)')."""
    cfg = GenerateConfig(target=SEVEN, patch_size=16, steps=400, batch=8, max_seconds=180.0,
                         check_seconds=float("inf"))
    result = generate_patch(digits_model, cfg, preset("digital"), clock=FakeClock(10.0))  # 30 s a step
    assert result.stopped == "time" and len(result.curve) == 6
    assert result.best_step == 6 and result.patch.abs().sum() > 0


def test_ctrl_c_before_the_tenth_step_keeps_the_last_patch(digits_model):
    def on_step(record):
        if record.step == 4:
            raise KeyboardInterrupt

    cfg = GenerateConfig(target=SEVEN, patch_size=16, steps=400, batch=8)
    result = generate_patch(digits_model, cfg, preset("digital"), on_step=on_step)
    assert result.stopped == "interrupted" and len(result.curve) == 5
    assert result.best_step == 5 and result.patch.abs().sum() > 0


def test_max_seconds_stops(digits_model):
    cfg = GenerateConfig(target=SEVEN, patch_size=16, steps=10**6, batch=4, max_seconds=1.0)
    result = generate_patch(digits_model, cfg, preset("digital"))
    assert result.stopped == "time"
    assert result.curve[-1].epsilon < cfg.epsilon * 0.5  # the schedule follows the clock


def test_cli_generate_writes_exact_png_and_metadata(cli, tmp_path, digits_model):
    out = tmp_path / "run"
    code, out_text, err = cli("generate", "--model", "digits", "--target", "seven", "--steps", "15", "--eot", "print",
                              "--batch", "8", "--eval-n", "32", "--device", "cpu", "--out", out)
    assert code == 0, err
    meta = json.loads((out / "patch.json").read_text())
    assert meta["target"]["index"] == SEVEN and meta["target"]["name"] == "seven"
    assert meta["model"]["model"] == "digits" and len(meta["weights_sha256"]) == 64
    assert len(meta["curve"]["loss"]) == 15
    assert set(meta["held_out"]) >= {"success_rate", "mean_target_prob", "by_scale", "by_rotation"}
    assert meta["versions"]["torch"] and meta["seed"] == 0
    curve = cv2.imread(str(out / "curve.png"))  # a real, drawn image, not just some bytes
    assert curve is not None and min(curve.shape[:2]) >= 200 and len(np.unique(curve.reshape(-1, 3), axis=0)) > 10
    png = load_image(out / "patch.png")
    assert png.shape == (3, 16, 16)
    assert meta["patch_sha256"] == hashlib.sha256((out / "patch.png").read_bytes()).hexdigest()
    # The saved file is the optimised patch, rounded to 8 bits: rerun the same optimisation here.
    cfg = replace(GenerateRun().attack, target=SEVEN, patch_size=16, steps=15, batch=8, seed=0)  # as the CLI runs it
    patch = generate_patch(digits_model, cfg, preset("print", tuple(meta["scale"]))).patch
    assert not torch.equal(patch, (patch * 255).round() / 255)  # the float patch is off the 8-bit grid
    assert torch.equal(png * 255, (patch * 255).round())
    # held_out scores the 8-bit patch that was written, on the views evaluate draws with seed + 1
    ev = evaluate_patch(digits_model, png, preset("print", tuple(meta["scale"])), SEVEN, n=32, seed=1)
    assert meta["held_out"]["mean_target_prob"] == pytest.approx(ev.mean_target_prob, rel=1e-6, abs=0)
    assert meta["held_out"]["success_rate"] == ev.success_rate
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*tmp"))


def test_cli_same_seed_same_patch(cli, tmp_path):
    args = ["generate", "--model", "digits", "--target", "3", "--steps", "5", "--batch", "4",
            "--eval-n", "4", "--device", "cpu", "--seed", "5"]
    assert cli(*args, "--out", tmp_path / "a")[0] == 0
    assert cli(*args, "--out", tmp_path / "b")[0] == 0
    assert (tmp_path / "a/patch.png").read_bytes() == (tmp_path / "b/patch.png").read_bytes()


def test_cli_evaluate_and_sweep(cli, tmp_path, digits_model):
    x, y = load_digits_rgb("test")
    from common.files import save_png

    digit = x[y == 1][0]
    save_png(tmp_path / "digit.png", digit)
    save_png(tmp_path / "patch.png", torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(0)))
    code, out, err = cli("evaluate", tmp_path / "patch.png", "--model", "digits", "--target", "seven",
                         "--n", "64", "--device", "cpu", "--eot", "print", "--json")
    assert code == 0, err
    report = json.loads(out)
    # the report is the patch judged on the views of its own seed, not training's (seed 0)
    eot = preset("print", (0.8, 1.0))
    assert report["seed"] != GenerateConfig().seed
    patch = load_image(tmp_path / "patch.png")
    ev = evaluate_patch(digits_model, patch, eot, SEVEN, n=64, seed=report["seed"])
    assert report["success_rate"] == round(ev.success_rate, 3)  # 64 views resolve 3 decimals
    assert report["mean_target_prob"] == round(ev.mean_target_prob, 3)
    train_views, _ = random_views(patch, 8, 32, eot, None, torch.Generator().manual_seed(0))
    eval_views, _ = random_views(patch, 8, 32, eot, None, torch.Generator().manual_seed(report["seed"]))
    assert not torch.allclose(train_views, eval_views)
    assert sum(b["n"] for b in report["by_scale"].values()) == 64
    assert sum(b["n"] for b in report["by_rotation"].values()) == 64
    wins = sum(b["n"] * b["success_rate"] for b in report["by_scale"].values())
    assert wins == pytest.approx(64 * report["success_rate"])

    code, _, err = cli("sweep", tmp_path / "digit.png", "--model", "digits", "--target", "seven",
                       "--device", "cpu", "--out", tmp_path / "sweep", "--eps", "-20:20", "--num", "21")
    assert code == 0, err
    sweep = json.loads((tmp_path / "sweep/sweep.json").read_text())
    assert sweep["epsilons_255"] == pytest.approx([-20 + 2 * i for i in range(21)])
    assert sweep["clean_top1"] == "one"
    with torch.no_grad():
        clean = digits_model(load_image(tmp_path / "digit.png")[None]).softmax(1)[0]
    seven = sweep["probs"]["seven"]
    assert seven[10] == pytest.approx(clean[SEVEN].item(), abs=1e-5)  # epsilon 0 is the clean image
    assert sweep["probs"]["one"][10] == pytest.approx(clean[1].item(), abs=1e-5)
    # a small negative epsilon steps towards the target, a positive one away from it
    assert seven[9] > seven[10] > seven[11]
    assert sweep["best_target_prob"] == max(seven)
    assert sweep["best_epsilon_255"] == pytest.approx(sweep["epsilons_255"][seven.index(max(seven))])
    plot = cv2.imread(str(tmp_path / "sweep/sweep.png"))
    assert plot is not None and min(plot.shape[:2]) >= 200 and len(np.unique(plot.reshape(-1, 3), axis=0)) > 10


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
    # a pseudo-terminal, so the progress bar is drawn live and tells when the steps are running
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "blocks", "generate", "--model", "digits",
                             "--target", "seven", "--steps", "100000", "--batch", "4",
                             "--device", "cpu", "--out", str(out)],
                            stdout=slave, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "COLUMNS": "120", "TERM": "xterm"})
    os.close(slave)
    seen, deadline = b"", time.time() + 60
    try:
        while time.time() < deadline and not re.search(rb"step [1-9]\d*/100000", seen):
            if select.select([master], [], [], 1.0)[0]:
                seen += os.read(master, 4096)
        assert re.search(rb"step [1-9]\d*/100000", seen), seen[-500:]
        proc.send_signal(signal.SIGINT)
        while proc.poll() is None and time.time() < deadline + 60:  # keep draining the terminal
            if select.select([master], [], [], 0.2)[0]:
                try:
                    os.read(master, 4096)
                except OSError:  # the child closed its end
                    break
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        os.close(master)
    assert proc.returncode == 130, err
    meta = json.loads((out / "patch.json").read_text())
    assert meta["stopped"] == "interrupted" and meta["steps_run"] > 0
    side = meta["config"]["patch_size"]
    assert load_image(out / "patch.png").shape == (3, side, side)
    assert "Traceback" not in err and "interrupted: kept the best patch" in err
    # judged all the same: a Ctrl-C is no reason to lose the held-out figure or the curve
    assert meta["held_out"]["n"] == 256 and (out / "curve.png").is_file()


def test_ctrl_c_judges_the_kept_patch(cli, tmp_path, monkeypatch):
    """One Ctrl-C during the steps: the patch it leaves is scored once more, written, judged on
    held-out views (its line printed) and plotted; exit 130."""
    import blocks.attacks.eot_fgsm as eg

    real_views, calls = eg.random_views, []

    def views(patch, *a, **k):
        calls.append(patch.requires_grad)
        if patch.requires_grad and sum(calls) == 4:  # the 4th training step
            os.kill(os.getpid(), signal.SIGINT)
        return real_views(patch, *a, **k)

    monkeypatch.setattr(eg, "random_views", views)
    out = tmp_path / "g"
    code, text, err = cli("generate", "--model", "digits", "--target", "seven", "--steps", "1000",
                          "--batch", "4", "--eval-n", "16", "--device", "cpu", "--out", out)
    assert code == 130, err
    meta = json.loads((out / "patch.json").read_text())
    assert meta["stopped"] == "interrupted" and meta["steps_run"] == 3
    assert meta["best_step"] == 3  # the patch after the last full step, not the black one of step 0
    assert meta["held_out"] and meta["held_out"]["n"] == 16 and (out / "curve.png").is_file(), err
    assert "seven: held-out success" in text
    assert err.strip().splitlines()[-1] == f"interrupted: kept the best patch (step 3) in {out}", err
    # acknowledged at once, before the held-out check starts, with how to skip it
    ack = "stopping: checking the best patch on held-out views; Ctrl-C again to skip"
    assert err.count(ack) == 1 and err.index(ack) < err.index("held-out check"), err


@pytest.fixture(scope="module")
def digit_scenes(tmp_path_factory):
    """`blocks digits-scenes DIR --exclude seven`, run once for the tests below."""
    from blocks.cli import run

    d = tmp_path_factory.mktemp("digits") / "d"
    assert run(["digits-scenes", str(d), "--exclude", "seven"]) == 0
    return d


def test_digits_scenes_are_held_out_and_exclude_the_target(digit_scenes):
    train, test = sorted((digit_scenes / "train").glob("*.png")), sorted((digit_scenes / "test").glob("*.png"))
    assert len(train) > 100 and abs(len(train) - len(test)) <= 1
    assert not [p for p in train + test if p.stem.endswith("seven")]
    x, y = load_digits_rgb("test")
    assert len(train) + len(test) == int((y != SEVEN).sum())  # every held-out non-seven, once

    def keys(images):
        return {bytes((im * 255).round().byte().flatten().tolist()) for im in images}

    train_px, test_px = keys(load_image(p) for p in train), keys(load_image(p) for p in test)
    seen_in_training, _ = load_digits_rgb("train")
    assert not train_px & test_px  # no digit image is in both folders
    assert not (train_px | test_px) & keys(seen_in_training)  # and none was used to train the model
    named = {p.stem.split("_", 1)[1] for p in train + test}
    assert named == {"zero", "one", "two", "three", "four", "five", "six", "eight", "nine"}
    info = ScenesInfo.read(digit_scenes / "scenes.json")  # the record says what the folders hold
    assert (info.source, info.train, info.test, info.excluded) == ("digits", len(train), len(test), "seven")


def test_quick_start_held_out_digits_read_as_seven(cli, tmp_path, digits_model, digit_scenes):
    """The README's quick start, with fewer steps: the patch wins on unseen digits (--eval-scenes)."""
    out = tmp_path / "quick"
    code, out_text, err = cli("generate", "--model", "digits", "--target", "seven", "--scenes", digit_scenes / "train",
                       "--eval-scenes", digit_scenes / "test", "--scale", "0.5:0.6", "--steps", "100", "--eot", "print",
                       "--batch", "16", "--eval-n", "256", "--device", "cpu", "--out", out)
    assert code == 0, err
    meta = json.loads((out / "patch.json").read_text())
    assert meta["eval_scenes"] == str(digit_scenes / "test")
    n_test = len(list((digit_scenes / "test").glob("*.png")))
    assert f"(print views, patch side 0.50-0.60 of the view, in {n_test} held-out scene photos)" in out_text
    assert meta["held_out"]["success_rate"] >= 0.9, meta["held_out"]
    # held_out is judged on the --eval-scenes digits, not the training ones
    from blocks.scenes import load_scenes

    eot = preset("print", (0.5, 0.6))
    png = load_image(out / "patch.png")
    on_test = evaluate_patch(digits_model, png, eot, SEVEN, scenes=load_scenes(digit_scenes / "test", 32), n=256, seed=1)
    on_train = evaluate_patch(digits_model, png, eot, SEVEN, scenes=load_scenes(digit_scenes / "train", 32), n=256, seed=1)
    assert meta["held_out"]["mean_target_prob"] == pytest.approx(on_test.mean_target_prob, rel=1e-6, abs=0), (on_test, on_train)
    assert on_test.mean_target_prob != on_train.mean_target_prob


def test_cli_schedule_and_momentum_flags_reach_the_optimiser(cli, tmp_path, digits_model):
    out = tmp_path / "lin"
    code, _, err = cli("generate", "--model", "digits", "--target", "seven", "--steps", "6", "--batch", "4", "--eot", "print",
                       "--eval-n", "4", "--schedule", "linear", "--momentum", "0", "--device", "cpu",
                       "--max-seconds", "0", "--out", out)  # no clock: the schedule follows the steps alone
    assert code == 0, err
    meta = json.loads((out / "patch.json").read_text())
    cmd = GenerateRun().attack  # the command's defaults: epsilon in [0, 1] units, the take-off at step 0 of 5
    assert cmd.takeoff > 0 and meta["curve"]["epsilon"] == pytest.approx(
        [cmd.epsilon * (cmd.takeoff_factor if i / 5 < cmd.takeoff else 1 - 0.9 * i / 5) for i in range(6)])
    eot = preset("print", (0.8, 1.0))
    plain = replace(cmd, target=SEVEN, patch_size=16, steps=6, batch=4, schedule="linear", momentum=0)
    png = load_image(out / "patch.png")
    assert torch.equal(png * 255, (generate_patch(digits_model, plain, eot).patch * 255).round())
    heavy = replace(cmd, target=SEVEN, patch_size=16, steps=6, batch=4, schedule="linear", momentum=0.9)
    assert not torch.equal(png * 255, (generate_patch(digits_model, heavy, eot).patch * 255).round())
    code, _, err = cli("generate", "--model", "digits", "--target", "seven", "--schedule", "step")
    assert code == 2 and "--schedule" in err


def test_eta_follows_whichever_limit_ends_the_run_first():
    from blocks.progress import generate_eta

    # the newcomer's run: 6 steps in 120 s of a 130 s limit, 400 steps asked for
    share, eta = generate_eta(6, 400, 120.0, 130.0)
    assert eta == "ETA 0:10 (clock)" and share == pytest.approx(120 / 130)
    share, eta = generate_eta(6, 400, 120.0, None)  # no clock: 394 more steps at 20 s
    assert eta == "ETA 2:11:20" and share == pytest.approx(6 / 400)
    assert generate_eta(390, 400, 39.0, 600.0) == (pytest.approx(390 / 400), "ETA 0:01")


def test_progress_without_a_terminal_is_plain_lines_and_the_final_line_says_what_it_measured(cli, tmp_path):
    """Under capsys neither stream is a terminal: the bars come as plain lines on stderr (the first
    step's at once, not only at the end), stdout keeps the result; a run the clock cut far short
    of its steps says so; the held-out line names its views."""
    out = tmp_path / "g"
    code, text, err = cli("generate", "--model", "digits", "--target", "seven", "--steps", "100000",
                          "--batch", "4", "--eval-n", "16", "--max-seconds", "1", "--device", "cpu", "--out", out,
                          "--eot", "print")
    assert code == 0, err
    meta = json.loads((out / "patch.json").read_text())
    assert meta["stopped"] == "time"
    lines = err.splitlines()
    assert re.search(r"generate .*step 1/100000 loss \d+\.\d{3} p\(target\) \d\.\d{3} ETA", lines[0]), err
    assert "nan" not in err and any(re.search(r"held-out check .*16/16 views", line) for line in lines), err
    assert "ETA" not in text  # the bars stay off stdout
    held, warning = text.strip().splitlines()[-2:]
    assert held.startswith("seven: held-out success ") and held.endswith(f" -> {out}/patch.png")
    assert "(print views, patch side 0.80-1.00 of the view, on plain random backgrounds: no scenes given (blocks generate --scenes DIR))" in held
    assert meta["held_out"]["views"] == {"eot": "print", "scale": [0.8, 1.0], "scenes": None, "scene_images": 0,
                                         "whole_frame": False}
    assert warning == (f"stopped by the clock after {meta['steps_run']} of 100000 steps: the patch may be weak; "
                       f"give more time or a GPU")


def test_plain_lines_come_every_few_seconds():
    from rich.console import Console
    from rich.progress import Progress, TextColumn

    from blocks.progress import PLAIN_EVERY_S, PlainLines

    console = Console(file=__import__("io").StringIO(), width=100)
    now = [0.0]
    with Progress(TextColumn("x {task.completed}"), console=console) as progress:
        task = progress.add_task("x", total=100)
        plain = PlainLines(progress, clock=lambda: now[0])
        for step in range(1, 60):
            now[0] = step * 1.0
            plain.update(task, completed=step)
    printed = console.file.getvalue().splitlines()
    # at the first update, then every PLAIN_EVERY_S (1 s per update here), then rich's own last line
    assert printed == [f"x {s}" for s in range(1, 60, int(PLAIN_EVERY_S))] + ["x 59"], printed


def test_curve_png_shows_the_held_out_success_by_coverage(tmp_path, monkeypatch):
    """curve.png says what the final line says: the held-out success (a line over the training
    curves) and, for whole frames, a panel of it by coverage; the legend sits where the rising
    curves are not (below the panel)."""
    from blocks import report

    figs = []
    monkeypatch.setattr(report, "save_figure", lambda fig, path: figs.append(fig) or path)
    curve = {"step": [0, 1, 2], "loss": [3.0, 2.0, 1.0], "objective_prob": [0.0, 0.4, 0.8],
             "success": [0.0, 0.5, 1.0], "epsilon": [0.1, 0.05, 0.01]}
    held = {"success_rate": 0.75, "n": 64, "by_coverage": {"0.15-0.2": {"success_rate": 0.5, "n": 32},
                                                           "0.3-0.4": {"success_rate": 1.0, "n": 32}}}
    report.plot_curve(curve, tmp_path / "c.png", "hen", held)
    report.plot_curve(curve, tmp_path / "d.png", "hen")  # training only (before the check, or no check)
    with_check, training = figs
    texts = [t.get_text() for ax in with_check.axes for t in ax.texts + [ax.title, ax.xaxis.label]]
    assert len(training.axes) == 3 and len(with_check.axes) == 4  # + the coverage panel (twin axis counted)
    assert "50%" in texts and "100%" in texts and any("coverage" in t for t in texts), texts
    legend = with_check.axes[1].get_legend()
    assert any("held-out success 75.0%" in t.get_text() for t in legend.get_texts())
    assert legend._loc == 9 and legend.get_bbox_to_anchor().y0 < with_check.axes[1].bbox.y0  # under the axes


def test_default_patch_side_is_coarser_on_whole_frames_and_the_run_uses_it(cli, tmp_path):
    """Without --patch-size: 64 px at a 224 input on whole camera frames (held), where the card's
    patch spans 34-100 model px; half the input where the patch fills the view; patch.png has it."""
    from blocks.attacks.config import default_patch_side

    assert default_patch_side(224, "held") == 64 and default_patch_side(224, "print") == 112
    assert default_patch_side(32, "held") == 9 and default_patch_side(32, "print") == 16
    assert default_patch_side(16, "held") == 8  # never under 8
    for eot, side in (("held", 9), ("print", 16)):
        out = tmp_path / eot
        code, _, err = cli("generate", "--model", "digits", "--target", "seven", "--steps", "2", "--batch", "2",
                           "--eot", eot, "--eval-n", "2", "--device", "cpu", "--out", out)
        assert code == 0, err
        assert load_image(out / "patch.png").shape == (3, side, side)
        assert json.loads((out / "patch.json").read_text())["config"]["patch_size"] == side
