"""`--model FILE`: a whole saved model, a torch.export archive (.pt2) or a TorchScript file, for
architectures that are in no library. Neither is unpickled with code (blocks.models.weights); the
model is checked on load for (B, classes) logits and for gradients reaching its input."""
from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from blocks.models.archive import inspect_archive
from blocks.models.labels import imagenet_labels, read_labels
from blocks.models.spec import ModelSpec, triple
from blocks.models.weights import Refused, load_export_safely
from blocks.models.wrappers import IMAGENET_MEAN, IMAGENET_STD, Classifier
from common.errors import UserError, first_line
from common.files import sha256_file


def load_exported(spec: ModelSpec) -> Classifier:
    """A whole saved model: torch.export archive or TorchScript (neither unpickles arbitrary code)."""
    from common.inputs import check_input_file

    path = check_input_file(spec.name, "model file")
    net, size = _open(path, spec.input_size)
    size = size or 224
    n = _check_runs(net, path, size)
    labels = (read_labels(spec.labels) if spec.labels else imagenet_labels() if n == 1000 else None)
    if labels is None:
        raise UserError(f"model {path} has {n} classes: pass labels FILE (one class name per line)", "labels")
    if len(labels) != n:
        raise UserError(f"labels has {len(labels)} names but model {path} outputs {n} classes", "labels")
    return Classifier(net, labels, size, triple(spec.mean, IMAGENET_MEAN, "mean"),
                      triple(spec.std, IMAGENET_STD, "std"), name=str(path),
                      weights_id=sha256_file(path))


def _open(path: Path, size: int | None) -> tuple[nn.Module, int | None]:
    """(the model, size or else its exported input side if known) from a .pt2 or TorchScript file."""
    inspect_archive(path, "model")  # before torch opens it: an AOTInductor package runs code on load
    members = zip_members(path)
    if not members:  # both formats are zip archives; say so before torch prints its own warnings
        raise UserError(f"cannot load model {path}: not a torch.export (.pt2) or TorchScript file")
    try:
        if path.suffix == ".pt2" or any(m.endswith(("/archive_format", "serialized_exported_program.json"))
                                        for m in members):
            program = load_export_safely(path, members)
            return _Exported(program.module()), size or _export_input_size(program)
        with warnings.catch_warnings():  # torch.jit.load's deprecation notice: the one line is ours
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            return torch.jit.load(str(path), map_location="cpu"), size
    except Refused as e:
        raise UserError(f"cannot load model {path}: {e}; refused, nothing was executed") from None
    except Exception as e:
        raise UserError(f"cannot load model {path}: not a torch.export (.pt2) or TorchScript file "
                        f"({first_line(e)})") from None


def _check_runs(net: nn.Module, path: Path, size: int) -> int:
    """The number of classes, after one odd-sized batch with gradients: checks the output shape
    and that gradients flow to the input."""
    try:
        x = torch.rand(3, 3, size, size, requires_grad=True)
        y = net(x)
        ok = isinstance(y, torch.Tensor) and y.dim() == 2 and y.shape[0] == 3 and y.shape[1] >= 2
        if ok:
            y[:, 0].sum().backward()
    except Exception as e:
        raise UserError(f"model {path} does not run on a batch of (3, 3, {size}, {size}) images "
                        f"({first_line(e)}); export it with a dynamic batch dimension and check "
                        f"input_size", "input_size") from None
    if not ok:
        shape = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise UserError(f"model {path} must return (B, classes) logits, not {shape}")
    if x.grad is None or not torch.isfinite(x.grad).all() or not x.grad.abs().sum() > 0:
        raise UserError(f"no gradient flows through model {path} to its input: a patch cannot be "
                        f"optimised on it")
    return y.shape[1]


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
