"""No model file runs code (issue 30): an AOTInductor package carries a shared library that torch
dlopens on load, and a library's constructor runs on dlopen. Every path to a loader inspects the
archive first (blocks.models.archive). Also: TorchScript loads without torch's deprecation notice,
and class names with control characters are printed escaped."""
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from common.files import save_png
from hostile_files import MARKER, Evil

# The constructor writes the file BLOCKS_MARKER names the moment the library is loaded.
CONSTRUCTOR = r"""
#include <stdio.h>
#include <stdlib.h>
__attribute__((constructor)) static void ran(void) {
    const char *p = getenv("BLOCKS_MARKER");
    FILE *f = p ? fopen(p, "w") : NULL;
    if (f) { fputs("native code ran\n", f); fclose(f); }
}
"""
# The members a real torch._inductor.aoti_compile_and_package of a tiny model writes (torch 2.x, CPU):
# <root>/archive_format, archive_version, byteorder, .data/version, .data/serialization_id, and
# data/aotinductor/model/<hash>.wrapper.so with <hash>.wrapper_metadata.json, <hash>.wrapper.cpp
# and the kernel's .cpp and metadata. A real compile takes 70 s here (gcc on a shared machine), so
# the package is laid out by hand with the same members and our library as its wrapper .so;
# test_the_package_is_live shows torch's own loaders run it.
METADATA = {"AOTI_DEVICE_KEY": "cpu", "AOTI_PLATFORM": "linux", "AOTI_MACHINE": "x86_64", "AOTI_CPU_ISA": "",
            "AOTI_COMPUTE_CAPABILITY": ""}


def _write_package(so: Path, dst: Path, so_name: str = "model.wrapper.so") -> Path:
    model = "evil/data/aotinductor/model/"
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as z:
        z.writestr("evil/archive_format", "pt2")
        z.writestr("evil/archive_version", "0")
        z.writestr("evil/byteorder", sys.byteorder)
        z.writestr("evil/.data/version", "6\n")
        z.writestr("evil/.data/serialization_id", "0" * 40)
        z.writestr(model + "model.wrapper.cpp", "// the wrapper's source\n")
        z.writestr(model + "model.wrapper_metadata.json", json.dumps(METADATA))
        z.write(so, model + so_name)
    return dst


class Tiny(torch.nn.Module):
    """A 3-class model on any image size, to save as a good .pt2 and TorchScript."""

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(3, 3)

    def forward(self, x):
        return self.fc(x.mean((2, 3)))


@pytest.fixture(scope="module")
def evil(tmp_path_factory):
    """evil.pt2: an AOTInductor package whose library writes the marker on load; evil.pth, the same
    bytes; hidden.pt2, the library under a name that is no library's (torch would not load it today:
    the bytes check is the second line); a state dict with an ELF
    member; a state dict with a stray member; three.txt, labels for the tiny test models."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is needed to build the native library an AOTInductor package carries")
    d = tmp_path_factory.mktemp("aoti")
    (d / "ctor.c").write_text(CONSTRUCTOR)
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(d / "ctor.so"), str(d / "ctor.c")], check=True)
    _write_package(d / "ctor.so", d / "evil.pt2")
    shutil.copy(d / "evil.pt2", d / "evil.pth")
    _write_package(d / "ctor.so", d / "hidden.pt2", so_name="model.wrapper.json")
    from blocks.models import bundled_digits_path

    torch.save(torch.load(bundled_digits_path(), weights_only=True), d / "state.pt")
    with zipfile.ZipFile(d / "state.pt") as zin:
        infos = [(i, zin.read(i)) for i in zin.infolist()]
    for name, swap in (("elf.pt", "/data/0"), ("stray.pt", None)):
        with zipfile.ZipFile(d / name, "w", zipfile.ZIP_STORED) as z:
            for info, data in infos:
                z.writestr(info, (d / "ctor.so").read_bytes() if swap and info.filename.endswith(swap) else data)
            if swap is None:
                z.writestr(infos[0][0].filename.split("/")[0] + "/notes/readme.txt", "not read by any loader")
    (d / "three.txt").write_text("a\nb\nc\n")
    save_png(d / "p.png", torch.rand(3, 16, 16))
    (d / "models.json").write_text(json.dumps([{"model": "digits"}, {"model": "evil.pt2"}]))
    return d


@pytest.fixture
def marker(evil, monkeypatch):
    """The marker's path, set where the library looks for it (the C environment: putenv)."""
    path = evil / "marker"
    path.unlink(missing_ok=True)
    monkeypatch.setenv("BLOCKS_MARKER", str(path))
    return path


def test_the_package_is_live(evil, marker):
    """torch's own loaders run the library's constructor (the AOTInductor loader, and torch.export.load
    whatever the file's name): the refusals below refuse real code. One python, both loaders."""
    code = ("import os, sys, torch\n"
            "for load, path in ((torch._inductor.aoti_load_package, sys.argv[1]), (torch.export.load, sys.argv[2])):\n"
            "    try:\n        load(path)\n    except Exception:\n        pass\n"
            "    print(os.path.exists(sys.argv[3]))\n"
            "    if os.path.exists(sys.argv[3]):\n        os.unlink(sys.argv[3])\n")
    done = subprocess.run([sys.executable, "-c", code, evil / "evil.pt2", evil / "evil.pth", marker],
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["True", "True"], ("the test package is dead", done.stdout, done.stderr[-2000:])


def _refused(cli, marker, *args, member="model.wrapper.so"):
    code, out, err = cli(*args)
    lines = err.strip().splitlines()
    assert not marker.exists(), "the package's native code ran"
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (code, err)
    assert "refused, nothing was executed" in lines[0] and member in lines[0], err
    return lines[0]


def _commands(d: Path, model: str) -> list[list]:
    """Every command that takes --model, with model as its model (and the labels it needs)."""
    return [["targets", "a", "--model", model],
            ["evaluate", d / "p.png", "--model", model, "--labels", d / "three.txt", "--target", "a", "--n", "2"],
            ["generate", "--model", model, "--labels", d / "three.txt", "--target", "a", "--steps", "1",
             "--out", d / "g"],
            ["sweep", d / "p.png", "--model", model, "--labels", d / "three.txt", "--target", "a", "--out", d / "s"],
            ["onepixel", d / "p.png", "--model", model, "--labels", d / "three.txt", "--out", d / "op"],
            ["capture", "--model", model, "--labels", d / "three.txt", "--target", "a", "--source", d / "p.png",
             "--headless", "--max-frames", "1"]]


@pytest.mark.parametrize("name", ["evil.pt2", "evil.pth"])
@pytest.mark.parametrize("command", ["targets", "evaluate", "generate", "sweep", "onepixel", "capture"])
def test_every_command_refuses_the_package(cli, evil, marker, command, name):
    args = next(a for a in _commands(evil, str(evil / name)) if a[0] == command)
    if command == "targets":  # with --labels, targets lists them without opening the model
        assert "--labels" not in args
    line = _refused(cli, marker, *args)
    assert line.startswith(f"error: cannot load model {evil / name}: it holds a native library ("), line
    assert not any((evil / o).exists() for o in ("g", "s", "op"))


def test_an_ensemble_member_and_a_models_file_refuse_the_package(cli, evil, marker):
    line = _refused(cli, marker, "generate", "--model", "digits", "--model", evil / "evil.pt2", "--target", "seven",
                    "--steps", "1", "--out", evil / "g")
    assert line.startswith(f"error: model 2 of 2 ({evil / 'evil.pt2'}): cannot load model"), line
    _refused(cli, marker, "evaluate", evil / "p.png", "--models", evil / "models.json", "--target", "seven")
    assert not (evil / "g").exists()


@pytest.mark.parametrize("model", ["digits", "resnet18"])
def test_weights_files_are_inspected(cli, evil, marker, model):
    """--weights (a state dict): the package renamed .pth, a library hidden as a tensor's bytes, a
    stray member, a bare library."""
    base = ["generate", "--model", model, "--target", "1", "--steps", "1", "--out", evil / "g"]
    line = _refused(cli, marker, *base, "--weights", evil / "evil.pth")
    assert line.startswith(f"error: cannot load weights {evil / 'evil.pth'}: it holds a native library"), line
    _refused(cli, marker, *base, "--weights", evil / "elf.pt", member="/data/0")
    line = _refused(cli, marker, *base, "--weights", evil / "stray.pt", member="/notes/readme.txt")
    assert "which no model loader reads" in line, line
    line = _refused(cli, marker, *base, "--weights", evil / "ctor.so", member="ctor.so")
    assert line.endswith("ctor.so: it is a native library, not a model; refused, nothing was executed"), line
    assert not (evil / "g").exists()


def test_timm_cache_is_inspected(cli, evil, marker, monkeypatch):
    """timm loads its cached weights itself: the files it would load are inspected before."""
    import blocks.models.timm as bt

    monkeypatch.setattr(bt, "_timm_cached_files", lambda cfg: [evil / "evil.pth"])
    monkeypatch.setattr(bt, "_hub_reachable", lambda: pytest.fail("the hub was asked"))
    line = _refused(cli, marker, "generate", "--model", "timm:resnet18", "--target", "hen", "--steps", "1",
                    "--out", evil / "g")
    assert line.startswith(f"error: cannot load weights {evil / 'evil.pth'}: it holds a native library"), line


@pytest.mark.parametrize("member, data, found", [
    ("m/data/libx.so.1", b"", "a native library (m/data/libx.so.1)"),
    ("m/extra/x.dylib", b"", "a native library (m/extra/x.dylib)"),
    ("m/extra/x.DLL", b"", "a native library (m/extra/x.DLL)"),
    ("m/data/0", b"MZ" + b"\0" * 58 + (64).to_bytes(4, "little") + b"PE\0\0", "a native library (m/data/0)"),
    ("m/data/1", b"\xcf\xfa\xed\xfe" + b"\0" * 28, "a native library (m/data/1)"),
    ("m/data/0", b"MZ" + b"\0" * 100, None),  # "MZ" alone: a tensor's bytes may start so
    ("m/../x", b"", "it holds m/../x, which no model loader reads"),
    ("m/data/executorch/x", b"", "it holds m/data/executorch/x, which no model loader reads"),
    ("m/extra/notes.txt", b"text", None),
    ("m/odd\x1b[2J", b"", "it holds m/odd\\x1b[2J, which no model loader reads"),  # escaped in the line
])
def test_what_is_refused(tmp_path, member, data, found):
    """Names and bytes: .so.1-style names, PE (MZ and the PE header it points to), Mach-O, paths out
    of the archive, folders no loader reads. Member names are shown escaped."""
    from blocks.models.archive import inspect_archive
    from common.errors import UserError

    path = tmp_path / "m.pt"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("m/data.pkl", b"\x80\x02}q\x00.")
        z.writestr(member, data)
    if found is None:
        inspect_archive(path, "weights")
        return
    with pytest.raises(UserError) as e:
        inspect_archive(path, "weights")
    assert str(e.value).startswith(f"cannot load weights {path}: ") and found in str(e.value), e.value


def test_members_torch_lists_but_zipfile_does_not_are_refused(evil):
    """torch reads zips with its own reader: a member only it lists was never inspected."""
    from blocks.models.archive import _unseen_by_zipfile

    with zipfile.ZipFile(evil / "state.pt") as z:
        names = z.namelist()
    assert _unseen_by_zipfile(evil / "state.pt", names) is None
    reason = _unseen_by_zipfile(evil / "state.pt", [n for n in names if not n.endswith("/data.pkl")])
    assert reason == "torch reads a member the inspection did not (data.pkl)", reason


def test_a_library_under_any_name_is_found_by_its_bytes(cli, evil, marker):
    _refused(cli, marker, "targets", "a", "--model", evil / "hidden.pt2", member="model.wrapper.json")


def test_the_torchvision_cache_is_inspected(cli, evil, marker, monkeypatch, tmp_path):
    """A package in the torch hub cache under a torchvision name, even one matching its hash."""
    import blocks.models.weights as bm
    from common.files import sha256_file

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    cached = tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    cached.parent.mkdir(parents=True)
    shutil.copy(evil / "evil.pt2", cached)
    monkeypatch.setattr(bm, "_hash_prefix", lambda path: sha256_file(path)[:8])
    line = _refused(cli, marker, "generate", "--model", "resnet18", "--target", "hen", "--steps", "1",
                    "--out", tmp_path / "g")
    assert line.startswith(f"error: cannot load weights {cached}: it holds a native library"), line


def test_good_files_still_load(evil):
    """The inspection passes what the loaders write: torch.save, TorchScript, torch.export."""
    from blocks.models import ModelSpec, bundled_digits_path, load_classifier
    from blocks.models.archive import inspect_archive

    batch = torch.export.Dim("batch", min=1, max=64)
    torch.export.save(torch.export.export(Tiny(), (torch.rand(2, 3, 8, 8),), dynamic_shapes=({0: batch},)),
                      evil / "good.pt2")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.save's own deprecation notice
        torch.jit.save(torch.jit.trace(Tiny(), torch.rand(2, 3, 8, 8)), evil / "good.ts")
    for path in (bundled_digits_path(), evil / "state.pt", evil / "good.pt2", evil / "good.ts"):
        inspect_archive(path)
    for name in ("good.pt2", "good.ts"):
        assert load_classifier(ModelSpec(name=str(evil / name), labels=evil / "three.txt")).labels == ["a", "b", "c"]


def test_torchscript_loads_without_torch_notices(cli, evil):
    """A good TorchScript model warns nothing (torch.jit.load's deprecation notice would print two
    lines on a terminal); one the command cannot use gives only our line."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.save's own deprecation notice
        torch.jit.save(torch.jit.trace(Tiny(), torch.rand(2, 3, 8, 8)), evil / "ts.pt")
    with warnings.catch_warnings(record=True) as seen:  # pytest would otherwise keep them from stderr
        warnings.simplefilter("always")
        code, out, err = cli("evaluate", evil / "p.png", "--model", evil / "ts.pt", "--labels", evil / "three.txt",
                             "--target", "a", "--n", "2")
        assert code == 0 and "deprecat" not in err.lower() and "warn" not in err.lower(), err  # only the views bar
        code, out, err = cli("targets", "a", "--model", evil / "ts.pt")
    assert code == 2 and err.strip().splitlines() == [
        f"error: model {evil / 'ts.pt'} has 3 classes: pass --labels FILE (one class name per line)"], err
    assert [str(w.message) for w in seen] == []


BAD = "bad\x1b[31mred\u202e"
SHOWN = r"bad\x1b[31mred\u202e"


@pytest.fixture
def odd_labels(tmp_path):
    """Ten class names for digits, the second with an escape sequence and a bidi override."""
    path = tmp_path / "labels.txt"
    path.write_text("\n".join(["zero", BAD, *"abcdefgh"]) + "\n")
    return path


def test_class_names_are_printed_escaped(cli, odd_labels, tmp_path):
    code, out, err = cli("targets", "1", "--model", "digits", "--labels", odd_labels)
    assert code == 0 and out.splitlines() == [f"--target 1 picks 1 {SHOWN}; matching classes:", f"    1  {SHOWN}"], out
    code, out, err = cli("generate", "--model", "digits", "--labels", odd_labels, "--target", "badred", "--steps", "1",
                         "--out", tmp_path / "g")
    assert code == 2 and err.splitlines() == [
        f"error: unknown target 'badred' for this model (10 classes); did you mean: {SHOWN} (1)?"], err
    code, out, err = cli("generate", "--model", "digits", "--labels", odd_labels, "--target", "1", "--target", "2",
                         "--steps", "1", "--batch", "2", "--eval-n", "2", "--out", tmp_path / "g")
    assert code == 0 and "\x1b" not in out + err and "\u202e" not in out + err, (out, err)
    assert any(line.startswith(SHOWN) for line in out.splitlines()), out  # the summary row
    record = json.loads(next((tmp_path / "g").glob("1-*/patch.json")).read_text())
    assert record["target"]["name"] == BAD  # the data keeps the name as it is


# --- model files never run code (issue 26) ------------------------------------------------------


def _rewrite_zip(src: Path, dst: Path, change) -> Path:
    import zipfile

    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            zout.writestr(info, change(info.filename, zin.read(info.filename)))
    return dst


@pytest.fixture(scope="module")
def evil_pt2(tmp_path_factory):
    """A good .pt2 of a tiny 3-class model, and two poisoned copies: its sample inputs replaced by a
    pickle that runs code (torch retries those with weights_only=False), and a weight marked
    use_pickle whose bytes are such a pickle."""
    import io
    import json

    from torch import nn

    d = tmp_path_factory.mktemp("pt2")

    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 3)

        def forward(self, x):
            return self.fc(x.mean((2, 3)))

    batch = torch.export.Dim("batch", min=1, max=1024)
    program = torch.export.export(Tiny(), (torch.rand(2, 3, 16, 16),), dynamic_shapes=({0: batch},))
    torch.export.save(program, d / "good.pt2")
    buf = io.BytesIO()
    torch.save({"x": Evil()}, buf)
    evil = buf.getvalue()

    def sample(name, data):
        return evil if "/sample_inputs/" in name else data

    def weights(name, data):
        if name.endswith("_weights_config.json"):
            cfg = json.loads(data)
            first = next(iter(cfg["config"].values()))
            first["use_pickle"] = True
            weights.poisoned = first["path_name"]
            return json.dumps(cfg).encode()
        return data

    _rewrite_zip(d / "good.pt2", d / "evil_sample.pt2", sample)
    _rewrite_zip(d / "good.pt2", d / "evil_weights0.pt2", weights)
    _rewrite_zip(d / "evil_weights0.pt2", d / "evil_weights.pt2",
                 lambda name, data: evil if name.endswith("/weights/" + weights.poisoned) else data)
    (d / "three.txt").write_text("a\nb\nc\n")
    (d / "two.txt").write_text("a\nb\n")
    return d


@pytest.mark.parametrize("name", ["evil_sample", "evil_weights"])
def test_pt2_archive_never_unpickles(cli, evil_pt2, name):
    MARKER.unlink(missing_ok=True)
    code, out, err = cli("generate", "--model", evil_pt2 / f"{name}.pt2", "--labels", evil_pt2 / "three.txt",
                         "--target", "a", "--steps", "1", "--out", evil_pt2 / "g")
    assert not MARKER.exists(), "the archive ran code"
    assert code == 2 and err.startswith(f"error: cannot load model {evil_pt2 / name}.pt2: it holds"), err
    assert "refused, nothing was executed" in err and len(err.strip().splitlines()) == 1, err
    assert not (evil_pt2 / "g").exists()


def test_pt2_archive_good_one_loads_and_wrong_labels_is_one_line(cli, evil_pt2):
    save_png(evil_pt2 / "p.png", torch.rand(3, 8, 8))
    code, out, err = cli("evaluate", evil_pt2 / "p.png", "--model", evil_pt2 / "good.pt2", "--labels",
                         evil_pt2 / "three.txt", "--target", "a", "--n", "2", "--json")
    assert code == 0 and '"success_rate"' in out, err
    code, out, err = cli("evaluate", evil_pt2 / "p.png", "--model", evil_pt2 / "good.pt2", "--labels",
                         evil_pt2 / "two.txt", "--target", "a")
    assert code == 2 and err.strip().splitlines() == [
        f"error: --labels has 2 names but model {evil_pt2 / 'good.pt2'} outputs 3 classes"], err


def test_poisoned_torchvision_cache_never_runs(cli, monkeypatch, tmp_path):
    """A checkpoint placed in the torch hub cache under a torchvision name: refused by its hash, and
    even with a matching hash loaded weights_only=True (torchvision's get_state_dict would run it)."""
    import blocks.models.weights as bm
    from common.files import sha256_file

    MARKER.unlink(missing_ok=True)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    cached = tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    cached.parent.mkdir(parents=True)
    torch.save({"fc.weight": Evil()}, cached)
    args = ("generate", "--model", "resnet18", "--target", "hen", "--steps", "1", "--out", tmp_path / "g")
    code, out, err = cli(*args)
    assert (code, err.strip()) == (2, f"error: cached weights {cached} do not match their published hash "
                                      f"(f37072fd...): delete the file to download it again"), err
    monkeypatch.setattr(bm, "_hash_prefix", lambda path: sha256_file(path)[:8])
    code, out, err = cli(*args)
    assert code == 2 and err.startswith(f"error: cannot load weights {cached}: not a plain PyTorch state dict "
                                        f"(it would run code (posix.system)"), err
    assert not MARKER.exists() and not (tmp_path / "g").exists()
