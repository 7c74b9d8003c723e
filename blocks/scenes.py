"""Background scenes the patch is placed into during training and evaluation."""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from common.errors import UserError
from common.files import list_images, load_image, save_png


def load_scenes(folder: str | Path, size: int, limit: int | None = None, crops: int = 8,
                seed: int = 0) -> torch.Tensor:
    """Scenes at the model's input size from any folder of photos: (N * k, 3, size, size) in [0, 1]."""
    return fit_scenes(read_scenes(folder, limit), size, crops, seed)


def read_scenes(folder: str | Path, limit: int | None = None) -> list[torch.Tensor]:
    """Every image in folder as read, (3, H, W) each: read before the model loads, so a bad scene
    fails in a second rather than after the download."""
    return [load_image(f) for f in list_images(folder)[:limit]]


def fit_scenes(images: list[torch.Tensor], size: int, crops: int = 8, seed: int = 0) -> torch.Tensor:
    """Each photo gives its centre square, plus crops - 1 random square crops (a quarter to all of
    its shorter side, seeded) when it is at least twice the model input, so a few big photos give
    many different backgrounds. Small images (digits) give just their centre square."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for image in images:
        out.append(square(image, size))
        if min(image.shape[-2:]) >= 2 * size:
            out += [random_crop(image, size, g) for _ in range(crops - 1)]
    return torch.stack(out)


def fit_frames(images: list[torch.Tensor], size: int, crops: int = 8, seed: int = 0) -> torch.Tensor:
    """Scene squares for whole-frame views (transforms.held): each photo's centre square plus
    crops - 1 random squares of half to all of its shorter side, at 1.5 x the model side, so a
    16:9 band of one still has detail when squashed to the model's square. (N * crops, 3, R, R)."""
    g = torch.Generator().manual_seed(seed)
    side = (3 * size) // 2
    out = []
    for image in images:
        out.append(square(image, side))
        if min(image.shape[-2:]) >= size:
            out += [random_crop(image, side, g, low=0.5) for _ in range(crops - 1)]
    return torch.stack(out)


def sample_photos(part: str) -> list[torch.Tensor]:
    """The photos that ship with installed packages, one side of the split ("train" or "test"),
    as read: the default scenes when no folder is given."""
    images = [load_image(path) for package, name in SAMPLE_PHOTOS[part]
              if (path := sample_photo_path(package, name)) is not None]
    if not images:
        raise UserError("no sample photos found (scikit-image, scikit-learn and matplotlib ship them): "
                        "give scenes FOLDER", param="scenes")
    return images


def random_crop(image: torch.Tensor, size: int, g: torch.Generator, low: float = 0.25) -> torch.Tensor:
    """(3, H, W) -> (3, size, size): a random square of `low` to all of the shorter side, resized."""
    _, h, w = image.shape
    short = min(h, w)
    side = int(short * (low + (1 - low) * torch.rand((), generator=g).item()))
    top = int(torch.randint(h - side + 1, (), generator=g))
    left = int(torch.randint(w - side + 1, (), generator=g))
    crop = image[:, top:top + side, left:left + side]
    return F.interpolate(crop[None], size=(size, size), mode="bilinear", align_corners=False,
                         antialias=True)[0].clamp(0, 1)


def square(image: torch.Tensor, size: int) -> torch.Tensor:
    """(3, H, W) -> (3, size, size): centre crop to a square, then resize."""
    _, h, w = image.shape
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    crop = image[:, top:top + side, left:left + side]
    return F.interpolate(crop[None], size=(size, size), mode="bilinear", align_corners=False,
                         antialias=True)[0].clamp(0, 1)


def export_digit_scenes(folder: str | Path, exclude: int | None = None, limit: int | None = None) -> dict[str, int]:
    """Write held-out digits (never seen in training) as PNG scenes, e.g. test/0123_seven.png.

    Half go to folder/train, half to folder/test, so a patch can be judged on scenes it never saw.
    exclude drops one class (the target: turning a seven into a seven proves nothing).
    Returns the count per part, {"train": n, "test": n}.
    """
    from blocks.models.digits import LABELS, load_digits_rgb

    images, labels = load_digits_rgb("test")
    keep = [i for i in range(len(labels)) if exclude is None or labels[i] != exclude][:limit]
    folder = Path(folder)
    counts = {"train": 0, "test": 0}
    for n, i in enumerate(keep):
        part = "train" if n % 2 == 0 else "test"
        save_png(folder / part / f"{n:04d}_{LABELS[labels[i]]}.png", images[i])
        counts[part] += 1
    if not keep:
        raise UserError("no digits left to export")
    return counts


# Photos that ship inside installed packages, split by photo so a patch is judged on photos it never
# trained on. A stereo pair (motorcycle left/right) stays on one side.
SAMPLE_PHOTOS = {
    "train": [("skimage", "astronaut.png"), ("skimage", "coffee.png"), ("skimage", "rocket.jpg"),
              ("skimage", "motorcycle_left.png"), ("skimage", "motorcycle_right.png"),
              ("skimage", "camera.png"), ("skimage", "brick.png"), ("skimage", "grass.png"),
              ("sklearn", "china.jpg"), ("skimage", "hubble_deep_field.jpg")],
    "test": [("skimage", "chelsea.png"), ("matplotlib", "grace_hopper.jpg"),
             ("sklearn", "flower.jpg"), ("skimage", "coins.png"), ("skimage", "gravel.png"),
             ("skimage", "moon.png")],
}


def sample_photo_path(package: str, name: str) -> Path | None:
    """Where an installed package keeps one of its bundled photos, or None if it is not installed."""
    import importlib.util

    if package == "matplotlib":
        spec = importlib.util.find_spec("matplotlib")
        sub = ("mpl-data", "sample_data")
    elif package == "sklearn":
        spec = importlib.util.find_spec("sklearn")
        sub = ("datasets", "images")
    else:
        spec = importlib.util.find_spec("skimage")
        sub = ("data",)
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent.joinpath(*sub, name)
    return path if path.is_file() else None


def export_sample_photos(folder: str | Path) -> dict[str, int]:
    """Copy the photos shipped with installed packages into folder/train and folder/test (as PNG,
    grey photos as RGB); returns how many went to each side."""
    folder = Path(folder)
    counts = {}
    for part, photos in SAMPLE_PHOTOS.items():
        n = 0
        for package, name in photos:
            path = sample_photo_path(package, name)
            if path is None:
                continue
            save_png(folder / part / f"{Path(name).stem}.png", load_image(path))
            n += 1
        if n == 0:
            raise UserError("no sample photos found: install scikit-image, scikit-learn and matplotlib")
        counts[part] = n
    return counts
