"""Ensembles (repeated --model, --models FILE), per-member rows, transfer-minded EOT options."""
import json

import pytest
import torch

from blocks.attacks.eot_fgsm import smooth_gradient
from bench.tricks import Tricks, attack_loss, diverse_inputs, ghost_networks
from common.goal import Goal
from blocks.models.digits import DigitsNet
from common.errors import UserError
from common.files import save_png
from blocks.models import Ensemble, ModelSpec, load_classifier, load_models, read_model_list


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """A models file with the bundled digits net and a second DigitsNet of other weights."""
    d = tmp_path_factory.mktemp("zoo")
    torch.manual_seed(3)
    torch.save(DigitsNet().state_dict(), d / "other.pt")
    (d / "models.json").write_text(json.dumps([{"model": "digits"},
                                               {"model": "digits", "weights": "other.pt", "input_size": 40}]))
    (d / "models.toml").write_text('[[models]]\nmodel = "digits"\n\n[[models]]\nmodel = "digits"\n'
                                   'weights = "other.pt"\nmean = [0.5, 0.5, 0.5]\nstd = "0.5,0.5,0.5"\n')
    return d


def test_ensemble_is_mean_log_probability(digits_model, zoo):
    other = load_classifier(read_model_list(zoo / "models.json")[1])
    ens = Ensemble([digits_model, other])
    x = torch.rand(4, 3, 32, 32)
    want = (digits_model(x).log_softmax(1) + other(x).log_softmax(1)) / 2
    assert torch.allclose(ens(x), want, atol=1e-6)
    assert ens.input_size == 40 and other.input_size == 40  # each member at its own size


def test_models_file_toml_and_json(zoo):
    for name in ("models.json", "models.toml"):
        specs = read_model_list(zoo / name)
        assert [s.name for s in specs] == ["digits", "digits"]
        assert specs[1].weights == zoo / "other.pt"  # relative to the file
    assert read_model_list(zoo / "models.toml")[1].std == (0.5, 0.5, 0.5)


@pytest.mark.parametrize("text, needle", [
    ('[{"model": "digits", "colour": 1}]', "unknown keys colour"),
    ('[{"model": "digits",', "not valid JSON"),
    ('[]', "non-empty list"),
    ('[{"weights": "w.pt"}]', "no 'model' key"),
    ('[{"model": "digits", "input_size": 0}]', "input_size"),
    ('[{"model": "digits", "mean": [1, 2]}]', "three numbers"),
])
def test_bad_models_file(cli, tmp_path, text, needle):
    (tmp_path / "m.json").write_text(text)
    code, _, err = cli("generate", "--target", "seven", "--models", tmp_path / "m.json", "--steps", "1",
                       "--out", tmp_path / "o")
    assert code == 2, err
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_mismatched_classes_are_one_line(cli, tmp_path):
    torch.save(DigitsNet(num_classes=3).state_dict(), tmp_path / "three.pt")
    (tmp_path / "l.txt").write_text("cat\ndog\nhen\n")
    (tmp_path / "m.json").write_text(json.dumps([{"model": "digits"},
                                                 {"model": "digits", "weights": "three.pt", "labels": "l.txt"}]))
    for command in (["generate", "--target", "zero", "--steps", "1", "--out", tmp_path / "o"], ["targets", "zero"]):
        code, _, err = cli(*command, "--models", tmp_path / "m.json")
        assert code == 2, err
        assert "models disagree on their classes" in err and err.count("\n") == 1


def test_member_that_fails_to_load_is_named(cli, tmp_path):
    code, _, err = cli("generate", "--target", "seven", "--model", "digits", "--model", "no_such_net",
                       "--steps", "1", "--out", tmp_path / "o")
    assert code == 2
    assert "model 2 of 2 (no_such_net)" in err and err.count("\n") == 1


@pytest.mark.parametrize("flag", [["--weights", "w.pt"], ["--labels", "l.txt"], ["--input-size", "32"],
                                  ["--mean", "0.5,0.5,0.5"], ["--std", "1,1,1"]])
def test_repeated_model_with_per_model_flags(cli, tmp_path, flag):
    code, _, err = cli("evaluate", tmp_path / "p.png", "--target", "seven", "--model", "digits",
                       "--model", "digits", *flag)
    assert code == 2
    assert "--models FILE" in err and flag[0] in err and err.count("\n") == 1


def test_single_model_commands_refuse_several(cli, tmp_path):
    code, _, err = cli("capture", "--target", "seven", "--model", "digits", "--model", "digits", "--source", "x")
    assert code == 2 and "one model at a time" in err and err.count("\n") == 1


def test_ensemble_generate_lists_every_member(cli, zoo, tmp_path):
    out = tmp_path / "run"
    code, text, err = cli("generate", "--target", "seven", "--model", "digits", "--models", zoo / "models.json",
                          "--steps", "4", "--batch", "4", "--eval-n", "16", "--device", "cpu",
                          "--smooth", "1.5", "--members", "cycle", "--out", out)
    assert code == 0, err
    meta = json.loads((out / "patch.json").read_text())
    rows = meta["members"]
    assert len(rows) == 3 and len(meta["model"]["members"]) == 3
    assert all(len(r["weights"]) == 64 and 0 <= r["success_rate"] <= 1 and r["n"] == 16 for r in rows)
    assert rows[0]["weights"] == rows[1]["weights"] != rows[2]["weights"]
    assert meta["config"]["smooth"] == 1.5 and meta["config"]["members"] == "cycle" and text.count("held-out success") == 4


def test_evaluate_two_models_prints_two_rows(cli, zoo, tmp_path):
    save_png(tmp_path / "p.png", torch.rand(3, 16, 16))
    code, text, err = cli("evaluate", tmp_path / "p.png", "--target", "seven", "--models", zoo / "models.toml",
                          "--n", "32", "--device", "cpu", "--out", tmp_path / "t.json")
    assert code == 0, err
    lines = text.strip().splitlines()
    assert len(lines) == 3 and lines[0].startswith("model")  # header + one row per model
    report = json.loads((tmp_path / "t.json").read_text())
    assert [r["n"] for r in report["models"]] == [32, 32]
    assert report["models"][0]["model"] != report["models"][1]["model"]
    assert {"success_rate", "mean_target_prob", "top5_rate"} <= set(report["models"][0])


def test_load_models_one_spec_is_a_classifier():
    assert not isinstance(load_models([ModelSpec("digits")]), Ensemble)
    with pytest.raises(UserError, match="model 2 of 2"):
        load_models([ModelSpec("digits"), ModelSpec("digits", weights="/nonexistent.pt")])


def test_diverse_inputs_shrinks_and_pads():
    views = torch.ones(64, 3, 32, 32)
    g = torch.Generator().manual_seed(0)
    assert torch.allclose(diverse_inputs(views, 0.0, g), views, atol=1e-5)  # p = 0: unchanged
    out = diverse_inputs(views, 1.0, g)
    assert out.shape == views.shape
    black = (out.sum(1) < 1e-3).flatten(1).float().mean(1)  # padding is black
    assert black.mean() > 0.05 and (black < 0.4).all()  # shrunk by at most 0.8: under 36% padding
    assert (out.mean((1, 2, 3)) < 1).all()


def test_ghost_networks_perturb_only_inside(digits_model):
    x = torch.rand(8, 3, 32, 32)
    clean = digits_model(x)
    g = torch.Generator().manual_seed(0)
    with ghost_networks(digits_model, 0.2, g):
        ghost = digits_model(x)
    assert not torch.allclose(ghost, clean)
    assert torch.equal(digits_model(x), clean)  # hooks removed


def test_smooth_gradient_keeps_mean_and_lowers_spread():
    g = torch.randn(3, 32, 32)
    s = smooth_gradient(g, 1.6)
    assert s.shape == g.shape and s.std() < 0.7 * g.std()
    assert torch.equal(smooth_gradient(g, 0.2), g)  # under a third of a pixel: no blur


def test_attack_losses_on_known_logits():
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.0, 9.0, 1.0]])
    become, leave = Goal(1, True), Goal(1, False)
    assert attack_loss(become, logits, "logit").item() == pytest.approx(-(0.5 + 9.0) / 2)
    assert attack_loss(leave, logits, "logit").item() == pytest.approx((0.5 + 9.0) / 2)
    # margin: best other minus the class (1.5, then -8 floored at -5)
    assert attack_loss(become, logits, "margin").item() == pytest.approx((1.5 - 5.0) / 2)
    assert attack_loss(leave, logits, "margin").item() == pytest.approx((-1.5 + 8.0) / 2)
    assert torch.equal(attack_loss(become, logits, "ce"), become.loss(logits))
    with pytest.raises(ValueError, match="unknown loss"):
        attack_loss(become, logits, "hinge")


def test_models_file_model_path_is_relative_to_the_file(tmp_path, digits_model):
    torch.jit.script(digits_model.net).save(str(tmp_path / "net.ts"))
    (tmp_path / "labels.txt").write_text("\n".join(digits_model.labels) + "\n")
    (tmp_path / "m.toml").write_text('[[models]]\nmodel = "net.ts"\nlabels = "labels.txt"\ninput_size = 32\n'
                                     'mean = [0.5, 0.5, 0.5]\nstd = [0.5, 0.5, 0.5]\n')
    [spec] = read_model_list(tmp_path / "m.toml")
    model = load_classifier(spec)
    x = torch.rand(2, 3, 32, 32)
    assert spec.name == str(tmp_path / "net.ts")
    assert torch.allclose(model(x), digits_model(x), atol=1e-5)


class Scaled(torch.nn.Module):
    """A classifier's logits times k: same decisions, input gradients k times larger. Counts the
    views it sees, so tests can tell which members a step or a check ran."""

    def __init__(self, net, k: float):
        super().__init__()
        self.net, self.k, self.labels, self.input_size, self.seen = net, k, net.labels, net.input_size, 0
        self.name, self.weights_id, self.device = f"x{k}", "", torch.device("cpu")

    def forward(self, x):
        self.seen += len(x)
        return self.k * self.net(x)


def _two_members(digits_model, k=100.0):
    torch.manual_seed(5)
    other = DigitsNet().eval()
    other.labels, other.input_size = digits_model.labels, 32
    return Ensemble([Scaled(digits_model, k), Scaled(other, 1.0)]).eval()


def test_balance_gives_each_member_equal_weight(digits_model):
    from blocks.attacks.eot_fgsm import GenerateConfig, balanced_view_gradient

    ens = _two_members(digits_model)
    cfg = GenerateConfig(target=7, autocast="off")  # float32, as the single members' gradients below
    views = torch.rand(6, 3, 32, 32)
    g = torch.Generator().manual_seed(0)
    _, _, _, grad = balanced_view_gradient(list(ens.members), views, cfg, g)
    singles = []
    for m in ens.members:
        x = views.clone().requires_grad_(True)
        (gm,) = torch.autograd.grad(torch.nn.functional.cross_entropy(m(x), torch.full((6,), 7)), x)
        singles.append(gm / gm.abs().mean())
    # both members count alike, however large one's gradient is: the sum of their unit-size gradients
    assert torch.allclose(grad / grad.abs().mean(), (singles[0] + singles[1]) / (singles[0] + singles[1]).abs().mean(),
                          atol=1e-4)
    # while the plain mean of log-probabilities follows the loud member almost alone
    x = views.clone().requires_grad_(True)
    (mean_grad,) = torch.autograd.grad(torch.nn.functional.cross_entropy(ens(x), torch.full((6,), 7)), x)
    assert (mean_grad.sign() == singles[0].sign()).float().mean() > 0.95
    assert (grad.sign() == singles[1].sign()).float().mean() > (mean_grad.sign() == singles[1].sign()).float().mean()


def test_cycle_steps_one_member_and_checks_all(digits_model):
    from blocks.attacks import GenerateConfig, generate_patch
    from transforms import preset

    ens = _two_members(digits_model, k=1.0)
    a, b = ens.members
    cfg = GenerateConfig(target=7, patch_size=16, steps=4, batch=4, check_every=10, members="cycle",
                         fold=False)  # the members themselves count their views, not a folded copy
    run = generate_patch(ens, cfg, preset("print", (0.5, 0.6)))
    # steps 0 and 2 go through member a, 1 and 3 through b (4 views each); the checks after step 0
    # and at the end see 4 views through both
    assert len(run.curve) == 4 and a.seen == b.seen == 2 * 4 + 2 * 4
    with pytest.raises(ValueError, match="members mode"):
        generate_patch(ens, GenerateConfig(target=7, steps=1, members="vote"), preset("print"))


@pytest.mark.parametrize("mode,loss_kind", [("mean", "ce"), ("balance", "ce"), ("cycle", "ce"), ("balance", "logit"),
                                            ("mean", "margin")])
def test_member_modes_move_a_black_patch(digits_model, mode, loss_kind):
    from blocks.attacks.eot_fgsm import GenerateConfig, step_gradient
    from transforms import preset

    ens = _two_members(digits_model, k=1.0)
    patch = torch.zeros(3, 16, 16, requires_grad=True)
    cfg = GenerateConfig(target=7, members=mode)
    loss, prob, win, grad = step_gradient(ens, patch, cfg, preset("print", (0.5, 0.6)),
                                          None, torch.Generator().manual_seed(0), 8, step=1, tricks=Tricks(loss=loss_kind))
    assert torch.isfinite(grad).all() and (grad != 0).float().mean() > 0.9  # every pixel gets a say
    assert torch.isfinite(loss) and prob.shape == win.shape == (8,)
    assert ens.members[0].seen == (0 if mode == "cycle" else 8) and ens.members[1].seen == 8  # step 1: member b


def test_patch_json_records_the_smoothing_used(cli, tmp_path):
    code, _, err = cli("generate", "--target", "seven", "--model", "digits", "--model", "digits", "--steps", "2",
                       "--batch", "2", "--eval-n", "4", "--device", "cpu", "--out", tmp_path / "o")
    assert code == 0, err
    config = json.loads((tmp_path / "o" / "patch.json").read_text())["config"]
    assert config["smooth"] == 0.8 and config["members"] == "balance"  # the ensemble defaults


def test_members_flag_is_checked_before_work(cli, tmp_path):
    code, _, err = cli("generate", "--target", "seven", "--model", "digits", "--model", "digits",
                       "--members", "vote", "--steps", "1", "--out", tmp_path / "o")
    assert code == 2 and "--members" in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_smoothing_defaults_to_ensembles_only(digits_model):
    from blocks.attacks.eot_fgsm import ENSEMBLE_SMOOTH, GenerateConfig, smoothing

    ens = _two_members(digits_model, k=1.0)
    assert smoothing(digits_model, GenerateConfig()) == 0.0  # one model: it cost white-box on ImageNet
    assert smoothing(ens, GenerateConfig()) == ENSEMBLE_SMOOTH > 0
    assert smoothing(digits_model, GenerateConfig(smooth=1.5)) == 1.5 and smoothing(ens, GenerateConfig(smooth=0)) == 0
