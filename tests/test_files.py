import errno
import os
from pathlib import Path

import pytest
import torch

from common.errors import UserError
from common.files import (MAX_IMAGE_PIXELS, atomic_write_bytes, atomic_write_json, load_image, read_image_bgr,
                          json_text, save_png, write_together)
from hostile_files import CAP, GEN, _fill, fail_second_rename


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


# --- hostile files and full disks (issue 26) ---------------------------------------------------

def test_no_stray_library_lines(capfd, files):
    """libpng / OpenCV print their own lines on a damaged file, straight to fd 2."""
    with pytest.raises(UserError, match="cannot read image"):
        read_image_bgr(files / "trunc.png")
    out, err = capfd.readouterr()
    assert err == "" and out == ""


def test_image_limit_is_documented_and_applies_to_headers():
    assert MAX_IMAGE_PIXELS == 64_000_000
    assert "64 megapixels" in Path(__file__).parents[1].joinpath("docs", "robustness.md").read_text()


def test_json_never_holds_nan(tmp_path):
    with pytest.raises(UserError, match=r"non-finite number .* \(at curve\.loss\.1\)"):
        atomic_write_json(tmp_path / "x.json", {"curve": {"loss": [1.0, float("nan")]}})
    with pytest.raises(UserError, match=r"check the model, its mean, std, colormap .* \(at mean\)") as e:
        json_text({"mean": float("nan")})  # a key named like a setting stays a key, after the settings
    assert e.value.param == ("mean", "std", "colormap")
    from blocks.exits import flag_message

    assert flag_message(e.value).endswith("its --mean, --std, --colormap and the other numbers given (at mean)")
    assert list(tmp_path.iterdir()) == []


def _fail_on_write(monkeypatch, n: int):
    """The n-th file write (1-based) fails with 'No space left on device', as on a full disk."""
    calls = []
    real = os.fsync

    def fsync(fd):
        calls.append(fd)
        if len(calls) == n:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)


@pytest.mark.parametrize("n", [1, 2])
def test_disk_full_leaves_no_partial_sheet(cli, files, tmp_path, monkeypatch, n):
    """6. print writes sheet.json and the PDF together: a full disk leaves neither."""
    _fail_on_write(monkeypatch, n)
    code, out, err = cli("print", files / "ok.png", "--out", tmp_path / "s.pdf")
    assert code == 2 and err.startswith("error: cannot write") and "No space left" in err, err
    assert list(tmp_path.iterdir()) == []


def test_disk_full_in_generate(cli, tmp_path, monkeypatch):
    _fail_on_write(monkeypatch, 1)
    code, out, err = cli(*GEN, "--out", tmp_path / "g")
    assert code == 2 and err.splitlines()[-1].startswith("error: cannot write") and "Traceback" not in err
    assert not (tmp_path / "g" / "patch.json").exists() and not (tmp_path / "g" / "patch.png").exists()


def test_set_is_removed_when_a_rename_fails(tmp_path, monkeypatch):
    fail_second_rename(monkeypatch)
    with pytest.raises(UserError, match="cannot write .*b.pdf: I/O error"):
        write_together([(tmp_path / "a.json", b"{}"), (tmp_path / "b.pdf", b"%PDF")])
    assert list(tmp_path.iterdir()) == []


def test_capture_log_is_an_ordinary_file(cli, files, tmp_path):
    code, out, err = cli(*[_fill(a, files) for a in CAP], "--log", tmp_path / "f.jsonl")
    assert code == 0, err
    assert (tmp_path / "f.jsonl").stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask():
    m = os.umask(0)
    os.umask(m)
    return m
