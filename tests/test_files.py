import os

import pytest
import torch

from common.errors import UserError
from common.files import atomic_write_bytes, load_image, save_png


def test_atomic_write_keeps_old_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "patch.png"
    atomic_write_bytes(target, b"old")

    def boom(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["patch.png"]  # no temp file left behind


def test_png_round_trip_is_exact(tmp_path):
    x = torch.randint(0, 256, (3, 9, 7)).float() / 255
    save_png(tmp_path / "p.png", x)
    assert torch.equal(load_image(tmp_path / "p.png"), x)


def test_unreadable_and_missing_images(tmp_path):
    (tmp_path / "bad.png").write_text("hello")
    with pytest.raises(UserError, match="cannot read image"):
        load_image(tmp_path / "bad.png")
    with pytest.raises(UserError, match="not found"):
        load_image(tmp_path / "missing.png")


def test_unwritable_folder(tmp_path):
    with pytest.raises(UserError, match="cannot write"):
        atomic_write_bytes("/proc/nope/x.png", b"1")


def test_outputs_are_ordinary_files(tmp_path):
    path = atomic_write_bytes(tmp_path / "x.json", b"{}")
    assert path.stat().st_mode & 0o044 == 0o044  # readable by others, as with a plain open()
