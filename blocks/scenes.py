"""Background scenes the patch is placed into during training and evaluation."""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from blocks.errors import UserError
from blocks.files import list_images, load_image, save_png


def load_scenes(folder: str | Path, size: int, limit: int | None = None) -> torch.Tensor:
    """Every image in folder, centre-cropped square and resized: (N, 3, size, size) in [0, 1]."""
    return fit_scenes(read_scenes(folder, limit), size)


def read_scenes(folder: str | Path, limit: int | None = None) -> list[torch.Tensor]:
    """Every image in folder as read, (3, H, W) each: read before the model loads, so a bad scene
    fails in a second rather than after the download."""
    return [load_image(f) for f in list_images(folder)[:limit]]


def fit_scenes(images: list[torch.Tensor], size: int) -> torch.Tensor:
    return torch.stack([square(im, size) for im in images])


def square(image: torch.Tensor, size: int) -> torch.Tensor:
    """(3, H, W) -> (3, size, size): centre crop to a square, then resize."""
    _, h, w = image.shape
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    crop = image[:, top:top + side, left:left + side]
    return F.interpolate(crop[None], size=(size, size), mode="bilinear", align_corners=False,
                         antialias=True)[0].clamp(0, 1)


def export_digit_scenes(folder: str | Path, exclude: int | None = None, limit: int | None = None) -> int:
    """Write held-out digits (never seen in training) as PNG scenes, e.g. test/0123_seven.png.

    Half go to folder/train, half to folder/test, so a patch can be judged on scenes it never saw.
    exclude drops one class (the target: turning a seven into a seven proves nothing).
    """
    from blocks.digits import LABELS, load_digits_rgb

    images, labels = load_digits_rgb("test")
    keep = [i for i in range(len(labels)) if exclude is None or labels[i] != exclude][:limit]
    folder = Path(folder)
    for n, i in enumerate(keep):
        part = "train" if n % 2 == 0 else "test"
        save_png(folder / part / f"{n:04d}_{LABELS[labels[i]]}.png", images[i])
    if not keep:
        raise UserError("no digits left to export")
    return len(keep)
