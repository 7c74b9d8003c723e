"""Issue 32, reach: generate --distance (the coverage band trained on and written to patch.json,
print's caption), --resume (steps and curve continued, old folder untouched, wrong folders
refused), --autocast (bf16 under autocast, fp32 where unsupported) and the thread governor."""
import json

import pytest
import torch

from blocks.attacks import speed
from blocks.attacks.eot_fgsm import GenerateConfig, forward
from common.distance import coverage_at, reach_band

FAST = ("--model", "digits", "--target", "7", "--steps", "6", "--eval-n", "16", "--batch", "4")


@pytest.fixture(scope="module")
def first(tmp_path_factory):
    """One short --distance run on digits, shared by the tests that read or resume it."""
    from blocks.cli import run

    out = tmp_path_factory.mktemp("reach") / "run"
    assert run(["generate", *FAST, "--distance", "0.5", "--size-mm", "120", "--fov", "70", "--out", str(out)]) == 0
    return out


def test_distance_band_is_written_and_trained_on(first):
    rec = json.loads((first / "patch.json").read_text())
    lo, hi = reach_band(120, 0.5, 70)
    assert lo == pytest.approx(coverage_at(120, 700, 70)) and hi == pytest.approx(coverage_at(120, 350, 70))
    assert rec["eot_settings"]["held"]["coverage"] == pytest.approx([lo, hi])  # what the attack trained on
    assert rec["held_out"]["views"]["scale"] == pytest.approx([lo, hi])  # what the held-out check judged
    r = rec["reach"]
    assert (r["distance_m"], r["size_mm"], r["fov_deg"]) == (0.5, 120, 70)
    assert r["band_m"] == pytest.approx([0.35, 0.7]) and r["coverage"] == pytest.approx([lo, hi])
    assert r["success"] == rec["held_out"]["success_rate"]


def test_without_distance_the_broad_default_stays(tmp_path, cli):
    from transforms.held import HeldCard

    code, _, _ = cli("generate", *FAST, "--steps", "1", "--out", tmp_path / "r")
    rec = json.loads((tmp_path / "r" / "patch.json").read_text())
    assert code == 0 and rec["reach"] is None
    assert rec["eot_settings"]["held"]["coverage"] == list(HeldCard().coverage)


@pytest.mark.parametrize("args, flag", [
    (("--distance", "nan"), "--distance"), (("--distance", "-1"), "--distance"), (("--distance", "inf"), "--distance"),
    (("--distance", "1", "--size-mm", "0"), "--size-mm"), (("--distance", "1", "--size-mm", "nan"), "--size-mm"),
    (("--distance", "20"), "less than 5%"),  # a 50 mm block at 20 m: ~0.2% of the frame
    (("--distance", "0.02"), "more than"),  # at 2 cm it is larger than the frame
    (("--distance", "1", "--scale", "0.2:0.3"), "not both"),
    (("--distance", "1", "--eot", "print"), "--eot"),
    (("--autocast", "fp8"), "--autocast"),
])
def test_bad_reach_input_is_one_line_before_work(tmp_path, cli, args, flag):
    code, out, err = cli("generate", *FAST, *args, "--out", tmp_path / "r")
    assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert flag in err and not (tmp_path / "r").exists()


def test_resume_continues_steps_curve_and_leaves_the_old_folder(first, tmp_path, cli):
    before = {p.name: p.read_bytes() for p in first.iterdir()}
    old = json.loads((first / "patch.json").read_text())
    code, out, err = cli("generate", "--model", "digits", "--resume", first, "--steps", "4", "--out", tmp_path / "more")
    assert code == 0, err
    assert {p.name: p.read_bytes() for p in first.iterdir()} == before  # nothing of the old run touched
    rec = json.loads((tmp_path / "more" / "patch.json").read_text())
    assert rec["curve"]["step"] == list(range(10))  # 6 old steps, then 4 more numbered on
    assert rec["curve"]["loss"][:6] == old["curve"]["loss"] and rec["steps_run"] == 10
    assert rec["seconds"] >= old["seconds"] and rec["curve"]["seconds"][6] >= old["curve"]["seconds"][-1]
    assert rec["resumed_from"]["folder"] == str(first) and rec["resumed_from"]["steps_run"] == 6
    assert rec["reach"]["distance_m"] == 0.5 and rec["reach"]["size_mm"] == 120  # settings carried on
    assert rec["config"]["batch"] == 4 and rec["target"]["index"] == 7
    assert rec["config"]["epsilon"] == pytest.approx(2 * old["curve"]["epsilon"][-1])  # a warm restart
    assert old["config"]["takeoff"] > 0 and rec["config"]["takeoff"] == 0  # no take-off to undo the patch
    assert max(rec["curve"]["epsilon"][6:]) <= rec["config"]["epsilon"] + 1e-9
    assert rec["best_step"] == old["best_step"] or rec["best_step"] >= 6  # the old best, or a later one
    assert "resumed" in out


def test_resume_default_folder_is_new(first, cli):
    code, out, err = cli("generate", "--model", "digits", "--resume", first, "--steps", "1")
    made = [p for p in first.parent.iterdir() if p.name.startswith("run-resumed-")]
    assert code == 0 and len(made) == 1 and (made[0] / "patch.json").is_file(), err


def test_resume_refuses_bad_folders(first, tmp_path, cli):
    empty = tmp_path / "empty"
    empty.mkdir()
    for args, words in [((empty,), "no patch.png or patch.json"), ((tmp_path / "nowhere",), "no such folder")]:
        code, _, err = cli("generate", "--model", "digits", "--resume", *args)
        assert code == 2 and words in err and len(err.strip().splitlines()) == 1, err
    code, _, err = cli("generate", "--resume", first, "--out", tmp_path / "x")  # default model: lite0
    assert code == 2 and "made on model digits" in err and not (tmp_path / "x").exists(), err
    code, _, err = cli("generate", "--model", "digits", "--resume", first, "--target", "3")
    assert code == 2 and "--resume" in err, err


@pytest.mark.parametrize("field, value", [("batch", "8"), ("momentum", [0.9]), ("schedule", 3), ("batch", 1.5),
                                          ("curve", {"epsilon": ["x"] * 6}), ("curve", {"step": [0]})])
def test_resume_refuses_a_forged_patch_json(first, tmp_path, cli, field, value):
    import shutil

    forged = tmp_path / "forged"
    shutil.copytree(first, forged)
    rec = json.loads((forged / "patch.json").read_text())
    if field == "curve":
        rec["curve"] = value
    else:
        rec["config"][field] = value
    (forged / "patch.json").write_text(json.dumps(rec))
    code, _, err = cli("generate", "--model", "digits", "--resume", forged, "--out", tmp_path / "x")
    assert code == 2 and len(err.strip().splitlines()) == 1 and not (tmp_path / "x").exists(), err


def test_resume_refuses_other_weights(first, tmp_path, cli):
    from blocks.models import ModelSpec, load_classifier

    net = load_classifier(ModelSpec(name="digits"), device="cpu")
    state = {k: v + 0.01 if v.is_floating_point() else v for k, v in net.net.state_dict().items()}
    torch.save(state, tmp_path / "w.pt")
    code, _, err = cli("generate", "--model", "digits", "--weights", tmp_path / "w.pt", "--resume", first,
                       "--out", tmp_path / "x")
    assert code == 2 and "other weights" in err and not (tmp_path / "x").exists(), err


def test_print_captions_the_distance_and_takes_the_trained_size(first, tmp_path, cli):
    from printing.patches import load_patch
    from printing.sheet import SheetSettings, _caption

    code, out, err = cli("print", first / "patch.png", "--out", tmp_path / "s.pdf")
    info = json.loads((tmp_path / "s.json").read_text())
    assert code == 0 and info["blocks"][0]["patch_size_mm"] == 120, err  # the size it was trained for
    p = load_patch(first / "patch.png")
    assert "about 0.50 m (0.35-0.70 m" in _caption(p, SheetSettings(size_mm=120, fov_deg=70), None)
    assert "about 1.0 m (0.70-1.4 m" in _caption(p, SheetSettings(size_mm=240, fov_deg=70), None)  # twice the size
    word = "works at" if p.reach.success >= 0.9 else "trained for"
    assert word in _caption(p, SheetSettings(size_mm=120, fov_deg=70), None)
    code, out, err = cli("print", first / "patch.png", "--size-mm", "60", "--out", tmp_path / "t.pdf")
    assert json.loads((tmp_path / "t.json").read_text())["blocks"][0]["patch_size_mm"] == 60


def test_bf16_autocast_changes_the_dtype_the_model_computes_in(digits_model, monkeypatch):
    seen = []
    conv = next(m for m in digits_model.modules() if isinstance(m, torch.nn.Conv2d))
    hook = conv.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    views = torch.rand(2, 3, digits_model.input_size, digits_model.input_size)
    try:
        speed._dtype.cache_clear()
        out_bf16 = forward(digits_model, views, GenerateConfig(target=7, autocast="bf16"))
        out_off = forward(digits_model, views, GenerateConfig(target=7, autocast="off"))
        monkeypatch.setattr(speed, "cpu_has_bf16", lambda cpuinfo=None: False)
        speed._dtype.cache_clear()
        forward(digits_model, views, GenerateConfig(target=7, autocast="auto"))  # no native bf16: fp32
        monkeypatch.setattr(speed, "cpu_has_bf16", lambda cpuinfo=None: True)
        speed._dtype.cache_clear()
        forward(digits_model, views, GenerateConfig(target=7, autocast="auto"))  # native bf16: on
    finally:
        hook.remove()
        speed._dtype.cache_clear()
    assert seen == [torch.bfloat16, torch.float32, torch.float32, torch.bfloat16]
    assert out_bf16.dtype == out_off.dtype == torch.float32  # the loss is taken in float32
    assert (out_bf16 - out_off).abs().max() > 0  # it did compute differently


def test_bf16_falls_back_where_autocast_refuses(monkeypatch):
    def refuse(*a, **k):
        raise RuntimeError("no bf16 autocast on this device")

    speed._dtype.cache_clear()
    monkeypatch.setattr(torch, "autocast", refuse)
    try:
        assert speed.autocast_dtype("bf16", "cpu") is None
    finally:
        speed._dtype.cache_clear()
    assert speed.cpu_has_bf16("flags\t\t: fpu sse avx512f avx512_bf16 amx_tile\n")
    assert not speed.cpu_has_bf16("flags\t\t: fpu sse avx2 avx512f\n")


def test_thread_policy_decisions():
    assert speed.threads_for(2, 0.0, 2) == 2  # idle machine: both cores
    assert speed.threads_for(2, 1.0, 2) == 1  # one other job: one thread, not two that wait
    assert speed.threads_for(2, 0.6, 2) == 1
    assert speed.threads_for(2, 3.0, 2) == 1  # never below one
    assert speed.threads_for(16, 4.0, 8) == 8  # never above the ceiling
    assert speed.threads_for(16, 10.2, 8) == 6


def test_governor_follows_a_fake_load():
    """Another job appears mid-run, then leaves: the thread count goes 2 -> 1 -> 2, every 3 steps."""
    t = {"wall": 0.0, "busy": 0.0, "own": 0.0}
    load = []  # other processes' cores busy, per step
    set_to = []

    def sample():
        return t["wall"], t["busy"], t["own"]

    gov = speed.ThreadGovernor(every=3, ceiling=2, cores=2, sample=sample, set_threads=set_to.append)
    for others in [0.0] * 3 + [1.0] * 6 + [0.0] * 6:
        t["wall"] += 1.0
        mine = min(gov.threads, 2 - others)
        t["own"] += mine
        t["busy"] += mine + others
        load.append(gov())
    assert set_to == [1, 2]
    assert load[:3] == [2, 2, 2] and load[5] == 1 and load[-1] == 2


class ConvBn(torch.nn.Module):
    """conv -> BN -> ReLU, then a second conv whose pre-BN output also feeds a skip (unsafe to fold)."""

    def __init__(self, skip: bool):
        super().__init__()
        self.skip = skip
        self.c1, self.b1 = torch.nn.Conv2d(3, 8, 3, padding=1, bias=False), torch.nn.BatchNorm2d(8)
        self.c2, self.b2 = torch.nn.Conv2d(8, 8, 1), torch.nn.BatchNorm2d(8)
        for bn in (self.b1, self.b2):  # non-trivial statistics, so a wrong fold shows
            bn.running_mean.uniform_(-1, 1)
            bn.running_var.uniform_(0.5, 2)
            bn.weight.data.uniform_(0.5, 2)
            bn.bias.data.uniform_(-1, 1)

    def forward(self, x):
        h = torch.relu(self.b1(self.c1(x)))
        y = self.c2(h)
        return (self.b2(y) + 3 * y if self.skip else self.b2(y)).mean((2, 3))


@pytest.mark.parametrize("skip", [False, True])
def test_fold_batchnorm_keeps_the_function(skip):
    net = ConvBn(skip).eval().requires_grad_(False)
    folded = speed.fold_batchnorm(net, 16)
    x = torch.rand(4, 3, 16, 16)
    assert torch.allclose(net(x), folded(x), atol=1e-5)
    bns = sum(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    # the skip reads c2's output before b2: folding b2 into c2 would change it, so nothing is folded
    assert bns == (2 if skip else 0) and (folded is net) == skip
    assert not any(p.requires_grad for p in folded.parameters())
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules()) == 2  # the original is untouched
