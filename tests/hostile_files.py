"""Shared material for the hostile-input tests (test_cli_inputs, test_files, test_interrupts,
test_readers, test_models_archive): the base command lines, a folder of hostile files (the `files`
fixture, registered in conftest.py), a pickle that runs code, and a PNG header claiming any size."""
import os
import pickle
import struct
import zlib
from pathlib import Path

import pytest
import torch

from common.files import save_png

GEN = ["generate", "--model", "digits", "--target", "seven", "--steps", "1", "--batch", "2", "--eval-n", "2"]
EVAL = ["evaluate", "{ok}", "--model", "digits", "--target", "seven", "--n", "2"]
CAP = ["capture", "--model", "digits", "--target", "seven", "--source", "{ok}", "--headless", "--max-frames", "1"]


def png_claiming(w: int, h: int) -> bytes:
    """A valid PNG header for w x h RGB pixels with almost no data: 74 bytes claiming any size."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b""))


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/blocks-evil-ran",))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile")
    (d / "huge.png").write_bytes(png_claiming(100_000, 100_000))
    (d / "big.png").write_bytes(png_claiming(9000, 9000))  # 81 MP: under Pillow's limit, over ours
    save_png(d / "ok.png", torch.rand(3, 16, 16))
    data = (d / "ok.png").read_bytes()
    (d / "trunc.png").write_bytes(data[: len(data) // 2])
    (d / "scenes").mkdir()
    (d / "scenes" / "huge.png").write_bytes(png_claiming(100_000, 100_000))
    (d / "folder").mkdir()
    (d / "file.txt").write_text("not a folder")
    (d / "three.txt").write_text("a\nb\nc\n")
    torch.save({"w": Evil()}, d / "evil.pt")  # torch's own format, with code in it
    (d / "raw.pt").write_bytes(pickle.dumps(Evil()))  # a bare pickle (torch used to warn first)
    from blocks.cli import run

    assert run(["calibration-sheet", "--out", str(d / "calib.pdf")]) == 0
    # files the tool reads back, made hostile (issue 26)
    (d / "deep.json").write_text("[" * 5000 + "]" * 5000)
    (d / "bigint.json").write_text('{"pages": ' + "9" * 5000 + "}")
    (d / "absurd.json").write_text('[{"model": "digits", "input_size": 100000}]')
    (d / "deeptoml.toml").write_text("a = " + "[" * 5000 + "]" * 5000)
    os.mkfifo(d / "fifo")
    (d / "nan").mkdir()
    assert run(["print", str(d / "ok.png"), "--out", str(d / "nan" / "s.pdf")]) == 0
    sheet = (d / "nan" / "s.json").read_text()
    (d / "nan" / "s.json").write_text(sheet.replace('"x_mm": ', '"x_mm": NaN, "was": ', 1))
    (d / "run").mkdir()  # what `blocks generate` leaves: patch.png and its record patch.json
    save_png(d / "run" / "patch.png", torch.rand(3, 16, 16))
    from common.records import PatchRecord

    PatchRecord().write(d / "run" / "patch.json")
    (d / "imgs").mkdir()
    save_png(d / "imgs" / "a.png", torch.rand(3, 16, 16))
    save_png(d / "one.png", torch.rand(3, 1, 1))
    from blocks.models import bundled_digits_path

    state = torch.load(bundled_digits_path(), weights_only=True)
    next(iter(state.values()))[:] = float("nan")
    torch.save(state, d / "nanw.pt")
    return d




# The file Evil's pickle writes when it runs: a test that finds it has run a stranger's code.
MARKER = Path("/tmp/blocks-evil-ran")


def _fill(text: str, d: Path) -> str:
    names = {p.stem: str(p) for p in d.iterdir() if p.is_file()}
    return text.format(d=d, **names)



class _Checked(Exception):
    """Raised instead of loading the model: every check passed."""


def until_model_load(cli, monkeypatch, args):
    """cli(*args) with the model load replaced by a stop: (code, out, err), or None when the command
    got as far as loading a model (every check before it passed)."""
    import blocks.commands.shared

    def reached(*a, **k):
        raise _Checked

    monkeypatch.setattr(blocks.commands.shared, "load_model", reached)
    try:
        return cli(*args)
    except _Checked:
        return None


def signal_on_call(monkeypatch, module, name, n, sig):
    """Send `sig` to this process on the n-th call of module.name."""
    real, calls = getattr(module, name), []

    def wrapped(*a, **k):
        calls.append(1)
        if len(calls) == n:
            os.kill(os.getpid(), sig)
        return real(*a, **k)

    monkeypatch.setattr(module, name, wrapped)


def fail_second_rename(monkeypatch):
    """os.replace fails with EIO on its second call: a set of files half renamed into place."""
    import errno

    real, calls = os.replace, []

    def replace(a, b):
        calls.append(b)
        if len(calls) == 2:
            raise OSError(errno.EIO, "I/O error")
        return real(a, b)

    monkeypatch.setattr(os, "replace", replace)
