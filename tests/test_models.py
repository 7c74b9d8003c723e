import urllib.error

import pytest
import torch

from blocks.models.digits import DigitsNet, load_digits_rgb
from common.errors import UserError
from blocks.models import ModelSpec, load_classifier, load_state_dict, pick_device


def test_bundled_digits_model_held_out_accuracy(digits_model):
    x, y = load_digits_rgb("test")
    with torch.no_grad():
        acc = (digits_model(x).argmax(1) == y).float().mean().item()
    assert len(y) > 400
    assert acc >= 0.97, acc


def test_classifier_resizes_any_input(digits_model):
    x, _ = load_digits_rgb("test")
    big = torch.nn.functional.interpolate(x[:8], size=96, mode="nearest")
    with torch.no_grad():
        assert torch.equal(digits_model(big).argmax(1), digits_model(x[:8]).argmax(1))


def test_state_dict_with_labels(tmp_path):
    net = DigitsNet(num_classes=3)
    torch.save(net.state_dict(), tmp_path / "w.pt")
    (tmp_path / "labels.txt").write_text("cat\ndog\nhen\n")
    model = load_classifier(ModelSpec(name="digits", weights=tmp_path / "w.pt",
                                      labels=tmp_path / "labels.txt"))
    assert model.labels == ["cat", "dog", "hen"]
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 3)
    assert len(model.weights_id) == 64


def test_torchvision_state_dict_with_labels(tmp_path):
    from torchvision.models import mobilenet_v3_small

    torch.save(mobilenet_v3_small(num_classes=2).state_dict(), tmp_path / "m.pt")
    (tmp_path / "l.txt").write_text("hen\ncock\n")
    model = load_classifier(ModelSpec(name="mobilenet_v3_small", weights=tmp_path / "m.pt",
                                      labels=tmp_path / "l.txt", input_size=64))
    assert model(torch.rand(1, 3, 100, 80)).shape == (1, 2)


def test_weights_file_that_runs_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(UserError, match="not a plain PyTorch state dict"):
        load_state_dict(tmp_path / "evil.pt")


@pytest.mark.parametrize("content", [b"not a checkpoint", b""])
def test_garbage_weights_file(tmp_path, content):
    (tmp_path / "w.pt").write_bytes(content)
    with pytest.raises(UserError, match="cannot load weights"):
        load_classifier(ModelSpec(name="digits", weights=tmp_path / "w.pt"))


def test_weights_of_wrong_architecture(tmp_path):
    torch.save(DigitsNet(num_classes=10).state_dict(), tmp_path / "w.pt")
    with pytest.raises(UserError, match="do not fit model resnet18"):
        load_classifier(ModelSpec(name="resnet18", weights=tmp_path / "w.pt"))


def test_offline_default_weights_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*a, **k):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr("torch.hub.load_state_dict_from_url", offline)
    with pytest.raises(UserError) as e:
        load_classifier(ModelSpec(name="resnet18"))
    msg = str(e.value)
    assert str(tmp_path / "hub" / "checkpoints") in msg
    assert "weights=FILE" in msg and "model=efficientnet_lite0" in msg  # settings; the CLI shows flags:
    from blocks.exits import flag_message

    assert "give --weights FILE (a state dict) or --model efficientnet_lite0 (" in flag_message(e.value)


def test_unknown_model_suggests():
    with pytest.raises(UserError, match="resnet50"):
        load_classifier(ModelSpec(name="resnet05"))


def test_pick_device():
    assert pick_device("cpu").type == "cpu"
    assert pick_device("auto").type in {"cpu", "cuda", "mps"}
    with pytest.raises(UserError):
        pick_device("tpu")


def test_cached_default_weights_load_offline_and_are_hashed(monkeypatch, tmp_path):
    """The cache path is the real torch.hub one: a checkpoint placed there loads with no network."""
    from torchvision.models import MobileNet_V3_Small_Weights, mobilenet_v3_small

    from blocks.models import weights_cache_path

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    url = MobileNet_V3_Small_Weights.DEFAULT.url
    cached = weights_cache_path(url)
    assert cached == tmp_path / "hub" / "checkpoints" / url.rsplit("/", 1)[1]
    cached.parent.mkdir(parents=True)
    torch.save(mobilenet_v3_small().state_dict(), cached)
    import blocks.models.weights as bm
    from common.files import sha256_file

    with pytest.raises(UserError, match="do not match their published hash"):  # random weights, not the real ones
        load_classifier(ModelSpec(name="mobilenet_v3_small", input_size=64))
    monkeypatch.setattr(bm, "_hash_prefix", lambda path: sha256_file(path)[:8])  # as if they were the real ones
    model = load_classifier(ModelSpec(name="mobilenet_v3_small", input_size=64))
    assert len(model.labels) == 1000 and model.labels[8] == "hen"
    from common.files import sha256_file

    assert model.weights_id == sha256_file(cached)


def test_models_package_has_no_import_cycle():
    """Each module of blocks/models/ imports only modules below it: no cycle, and none imports the
    package itself (its __init__ re-exports them all)."""
    from imports import cycle, package_graph

    graph = package_graph("blocks.models")
    assert "blocks.models.weights" in graph
    assert all("blocks.models" not in deps for m, deps in graph.items() if m != "blocks.models"), graph
    assert cycle(graph) is None, f"import cycle: {' -> '.join(cycle(graph))}"
