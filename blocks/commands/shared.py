"""What several commands load the same way: the model (checked, with the CPU's thread count
fitted), scene images and the bundled sample photos, the colour map, the scale default, and the
input files that no output may replace. Torch is imported inside the functions, so the CLI can
import the commands for --help without it."""
from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

from blocks import checks
from common.errors import UserError


def no_progress(label: str, total: int | None):
    return nullcontext(lambda record: None)


def load_model(specs: list, device):
    """One Classifier, or an Ensemble of several; every member checked to run at its input size."""
    from blocks.models import load_models

    net = load_models(specs, device)
    for member in getattr(net, "members", [net]):
        checks.runs_at_input_size(member)
    if net.device.type == "cpu":
        fit_threads()
    return net


def fit_threads() -> int:
    """One torch thread when the CPU is already busy, else torch's own choice (never more): on
    busy cores, two torch threads spin waiting for each other; on idle ones they finish sooner."""
    import os

    import torch

    try:
        busy = os.getloadavg()[0]
    except OSError:  # no load average on this platform
        return torch.get_num_threads()
    cores = os.cpu_count() or 1
    if busy >= cores - 0.5 and torch.get_num_threads() > 1:
        torch.set_num_threads(1)
    return torch.get_num_threads()


def read_scenes(folder: Path | None):
    """Scene images as read (before the model loads); fit them to the model with blocks.scenes.fit_scenes."""
    from blocks.scenes import read_scenes as read

    return None if folder is None else read(folder)


def default_models() -> list:
    from blocks.models import DEFAULT_MODEL, ModelSpec

    return [ModelSpec(name=DEFAULT_MODEL)]


def model_files(specs: list) -> list[Path]:
    """The files the model flags name (weights, labels, a model file): inputs no output may replace."""
    from blocks.models import is_model_file

    found = []
    for s in specs or []:
        found += [p for p in (s.weights, s.labels) if p is not None]
        if is_model_file(s.name):
            found.append(Path(s.name))
    return found


def input_files(*paths) -> list[Path]:
    """Paths given (None skipped, lists flattened), and for a folder the images in it: what a
    command reads, to compare its outputs with."""
    from common.files import IMAGE_SUFFIXES

    found = []
    for p in paths:
        if p is None:
            continue
        if isinstance(p, (list, tuple)):
            found += input_files(*p)
            continue
        p = Path(p)
        found.append(p)
        if p.is_dir():
            try:
                found += [f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES]
            except OSError:
                pass
    return found



def check_patches_exist(paths) -> None:
    """A patch that is not there: one line that says where the patches are (the quick start writes
    runs/<target>-<time>/patch.png, and a reader copies runs/hen/patch.png from the README)."""
    for p in map(Path, paths):
        if not p.exists():
            raise UserError(f"patch {p}: not found{newest_patch_hint()}")


def newest_patch_hint(root: Path = Path("runs")) -> str:
    """'; the newest patch under runs/ is runs/chicken-20261207-0123/patch.png', or how to make one."""
    try:
        found = max(root.glob("*/patch.png"), key=lambda f: f.stat().st_mtime, default=None)
    except OSError:
        found = None
    if found is None:
        return "; no patch under runs/ yet: `blocks generate --target hen --out runs/hen` makes runs/hen/patch.png"
    return f"; the newest patch under runs/ is {found.as_posix()}"


def is_path(source) -> bool:
    """A capture/calibrate source that names a file or folder (not a camera index, URL or screen)."""
    text = str(source)
    return not (text.isdigit() or "://" in text or text.startswith("screen") or any(c in text for c in "*?["))



def default_scale(scale, scenes, eot: str = "print") -> tuple[float, float] | None:
    """The patch's share of the image side: smaller on scenes, where it must leave room for them.
    For whole-frame presets (held) None: the preset's own coverage of the frame's shorter side."""
    if scale is not None:
        return tuple(scale)
    from transforms.eot import whole_frame

    if whole_frame(eot):
        return None
    return (0.4, 0.6) if scenes else (0.8, 1.0)


SAMPLE_TRAIN, SAMPLE_TEST = "sample photos: train", "sample photos: test"



def load_colormap(path: Path | None):
    if path is None:
        return None
    from transforms.colormap import ColorMap

    return ColorMap.load(path)



def read_scene_source(source: str | None):
    """Scene images as read: a folder, or one side of the bundled sample photos."""
    from blocks.scenes import sample_photos

    if source is None:
        return None
    if source in (SAMPLE_TRAIN, SAMPLE_TEST):
        return sample_photos("train" if source == SAMPLE_TRAIN else "test")
    return read_scenes(Path(source))


def fit(images, size: int, frames: bool = False):
    """Scenes at the model's side, or (frames) the larger squares whole-frame views crop bands from."""
    from blocks.scenes import fit_frames, fit_scenes

    if images is None:
        return None
    return fit_frames(images, size) if frames else fit_scenes(images, size)


