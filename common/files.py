"""Reading inputs and writing outputs atomically: a crash or Ctrl-C never leaves half a file."""
from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import sys
from typing import TYPE_CHECKING

import numpy as np

from common import MAX_IMAGE_PIXELS
from common.errors import UserError

if TYPE_CHECKING:  # torch is imported where a function needs it: the CLI reads settings without it
    import torch

MAX_FILE_BYTES = 512 * 2**20  # an image or PDF read whole: 64 MP uncompressed is 192 MB


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write to a temporary file in the same folder, then rename over the target."""
    return write_together([(Path(path), data)])[0]


def write_together(files: list[tuple[Path, bytes]]) -> list[Path]:
    """Write several files as one set: each goes to a temporary name in its folder first, and only
    when every one is on disk are they renamed into place (in the order given: put the file that
    announces the set, e.g. the PDF, last). Any failure (disk full, permissions, Ctrl-C) removes the
    temporary files and whatever was already renamed, so the set appears whole or not at all.
    Ctrl-C during the renames is held until they are done (common.interrupts.writing).
    A write that fails is a UserError naming the file."""
    from common.interrupts import note_written, writing

    staged: list[tuple[str, Path]] = []
    placed: list[Path] = []
    kept: list[tuple[Path, Path]] = []  # (the file replaced, a link to its old contents)
    current = None
    with writing():
        try:
            for current, data in files:
                staged.append((_write_temp(Path(current), data), Path(current)))
            for tmp, current in staged:
                kept += _keep_old(current)
                os.replace(tmp, current)
                placed.append(Path(current))
        except BaseException as e:
            for tmp, _ in staged:
                Path(tmp).unlink(missing_ok=True)
            for done in placed:  # a half-renamed set is worse than none
                done.unlink(missing_ok=True)
            for path, old in kept:  # and what it replaced (--overwrite) comes back as it was
                _put_back(path, old)
            if isinstance(e, OSError):
                raise UserError(f"cannot write {current}: {e.strerror or e}") from None
            raise
        for _, old in kept:
            old.unlink(missing_ok=True)
        note_written(placed)
    return [Path(p) for p, _ in files]


def _put_back(path: Path, old: Path) -> None:
    """The file _keep_old linked comes back under its name (unless its replacement never came)."""
    try:
        if not (path.exists() and os.path.samefile(path, old)):
            os.replace(old, path)
    except OSError:
        pass
    finally:
        old.unlink(missing_ok=True)


def _keep_old(path: Path) -> list[tuple[Path, Path]]:
    """A hidden hard link to the file about to be replaced, so a set that fails half-way puts the
    old set back instead of leaving neither. [] where there is none (or the filesystem has no links)."""
    if not path.is_file():
        return []
    import secrets

    old = path.with_name(f".{path.name}.{secrets.token_hex(4)}.old")
    try:  # os.link never replaces a file that is there already
        os.link(path, old)
    except OSError:
        return []
    return [(path, old)]


def check_output_dir(out: str | Path) -> Path:
    """Check, before any work starts, that folder `out` can be created and written, without creating
    it (a run that fails early leaves nothing behind)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"cannot write to {out}: it is a file, not a folder")
    _probe(out, out)
    return out


def check_new_outputs(paths, overwrite: bool = False, flag: str = "out") -> None:
    """Refuse, before any work, an output that exists already: a re-run must not replace a user's
    result without being asked (overwrite=True, the CLI's --overwrite). paths: the files (or
    folders) the command will write, None skipped. flag: the setting that names them, for the
    message; one that is not a Python name (a positional OUT, a "--flag") is quoted as it is."""
    if overwrite:
        return
    for path in paths:
        if path is None:
            continue
        path = Path(path)
        if path.exists() or path.is_symlink():
            named = flag.isidentifier()
            raise UserError(f"{path} exists: pass overwrite to replace it, or choose another {flag}",
                            param=("overwrite", flag) if named else "overwrite")


def check_output_file(path: str | Path, what: str = "") -> Path:
    """Check, before any work starts, that file `path` can be written: not a folder, not a device,
    and its folder can be created and written."""
    path = Path(path)
    label = f"{what} {path}".strip()
    if path.is_dir():
        raise UserError(f"cannot write {label}: it is a folder, not a file")
    if path.exists() and not path.is_file():
        raise UserError(f"cannot write {label}: it exists and is not a regular file")
    _probe(path.parent, path)
    return path


def _probe(folder: Path, out: Path) -> None:
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"cannot write to {out}: {existing} is a file, not a folder")
    try:  # a real probe: permissions alone do not tell (root, read-only mounts, /proc)
        os.rmdir(tempfile.mkdtemp(dir=existing, prefix=".blocks-probe-"))
    except OSError as e:
        raise UserError(f"cannot write to {out}: {e.strerror or e}") from None


def _write_temp(path: Path, data: bytes) -> str:
    """data -> a hidden temporary file next to path, flushed to disk, with ordinary permissions."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise UserError(f"cannot write to {path.parent}: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs are ordinary files
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def json_text(obj, indent: int | None = 2) -> str:
    """JSON for files and stdout. Strict: NaN or infinity is an error (UserError), never written,
    because bare NaN is not JSON and strict parsers reject the whole file."""
    try:
        return json.dumps(obj, indent=indent, default=_json_default, allow_nan=False)
    except ValueError:
        where = _first_non_finite(obj)
        # the settings before the key: a key named like one (a top-level "mean") must not become a flag
        raise UserError("refusing to write a non-finite number (NaN or infinity): the run diverged; check the "
                        f"model, its mean, std, colormap and the other numbers given (at {where or 'a value'})",
                        param=("mean", "std", "colormap")) from None


def _first_non_finite(obj, where: str = "") -> str | None:
    if isinstance(obj, float) and not math.isfinite(obj):
        return where or "the top level"
    if isinstance(obj, dict):
        items = obj.items()
    elif isinstance(obj, (list, tuple)):
        items = enumerate(obj)
    else:
        return None
    for k, v in items:
        found = _first_non_finite(v, f"{where}.{k}" if where else str(k))
        if found:
            return found
    return None


def atomic_write_json(path: str | Path, obj) -> Path:
    return atomic_write_bytes(path, (json_text(obj) + "\n").encode())


def _json_default(o):
    if hasattr(o, "to_json"):  # a common.records record
        return o.to_json()
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    torch = sys.modules.get("torch")  # a tensor can only exist once torch is imported
    if torch is not None and isinstance(o, torch.Tensor):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def encode_png(image: torch.Tensor) -> bytes:
    """image: (3, H, W) float in [0, 1] -> 8-bit lossless PNG bytes."""
    return encode_png_rgb(to_uint8(image))


def encode_png_rgb(rgb: np.ndarray) -> bytes:
    """(H, W, 3) uint8 RGB -> lossless PNG bytes (OpenCV writes BGR, hence the flip)."""
    import cv2

    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[:, :, ::-1]))
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def save_png(path: str | Path, image: torch.Tensor) -> Path:
    return atomic_write_bytes(path, encode_png(image))


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """image: (3, H, W) in [0, 1] -> (H, W, 3) uint8 RGB, rounded so 8-bit values round-trip."""
    return (image.detach().clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()


def load_image(path: str | Path) -> torch.Tensor:
    """Read an image file as (3, H, W) float32 RGB in [0, 1]."""
    return from_bgr_uint8(read_image_bgr(path))


def read_image_bgr(path: str | Path) -> np.ndarray:
    """Read an image file as (H, W, 3) uint8 BGR (OpenCV's order). Every image reader in the project
    comes through here or decode_image_bgr: missing, unreadable, undecodable or oversized files are
    one UserError line."""
    path = Path(path)
    return decode_image_bgr(read_file_bytes(path, "image"), path)


def read_file_bytes(path: Path, what: str = "file") -> bytes:
    """A file's bytes; missing or unreadable is one UserError line naming `what`."""
    from common.inputs import read_input_bytes

    return read_input_bytes(path, what, MAX_FILE_BYTES)


def decode_image_bgr(data: bytes, where: str | Path) -> np.ndarray:
    """Encoded image bytes -> (H, W, 3) uint8 BGR; grey is expanded, alpha dropped, 16-bit scaled.

    The size in the header is checked first (MAX_IMAGE_PIXELS): a 100000 x 100000 PNG of a few
    kilobytes would otherwise make OpenCV try to allocate 30 GB, or fail with its own traceback.
    """
    import cv2

    check_image_header(data, where)
    try:
        with quiet_stderr():  # libpng/libjpeg print their own lines for a damaged file
            bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    except cv2.error:
        bgr = None
    if bgr is None:
        raise UserError(f"cannot read image (not an image file or unsupported format): {where}")
    return bgr


CHECKED_FORMATS = "PNG, JPEG, BMP, WebP or TIFF"  # what the message suggests; Pillow reads more headers


def check_image_header(data: bytes, where: str | Path) -> tuple[int, int]:
    """(width, height) from the image's header, read by Pillow before any decoding; refused when
    they exceed MAX_IMAGE_PIXELS, or when Pillow cannot read them: OpenCV decodes formats whose
    size nobody checked first (a Radiance HDR of 144 MP named .png was decoded whole)."""
    import io
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as im:
                w, h = im.size
    except Image.DecompressionBombError:  # Pillow's own limit (about 179 MP) is above ours
        w = h = None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
        raise UserError(f"cannot read image {where}: not an image, or a format whose size cannot be checked "
                        f"before decoding (use {CHECKED_FORMATS})") from None
    if w is None or w * h > MAX_IMAGE_PIXELS:
        size = f"is {w} x {h} px" if w is not None else f"claims over {2 * Image.MAX_IMAGE_PIXELS / 1e6:.0f} megapixels"
        raise UserError(f"image too large: {where} {size} (the limit is {MAX_IMAGE_PIXELS / 1e6:g} megapixels)")
    return w, h


def image_size(path: str | Path, what: str = "image") -> tuple[int, int]:
    """(width, height) of an image file from its header alone (checked as decode_image_bgr does):
    what a command estimates its memory from before it decodes anything."""
    path = Path(path)
    return check_image_header(read_file_bytes(path, what), path)


@contextmanager
def quiet_stderr():
    """Silence what C libraries write straight to file descriptor 2 (libpng's "libpng error: ..."
    before OpenCV returns None): the user should see only our one line."""
    import sys

    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (e.g. captured): nothing to silence
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def from_bgr_uint8(bgr: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 BGR as OpenCV gives it -> (3, H, W) float32 RGB in [0, 1]."""
    import cv2

    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    import torch

    return torch.from_numpy(rgb).permute(2, 0, 1).float().div(255)


IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}


def list_images(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"not a folder: {folder}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise UserError(f"no images (png, jpg, ...) in {folder}")
    return files


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
