"""`blocks simulate`: a printed sheet filmed by a virtual camera (capture.simulate) -> a video or a still."""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from blocks import checks
from blocks.commands import shared
from blocks.commands.shared import no_progress
from common.errors import UserError
if TYPE_CHECKING:  # the records (pydantic models) load when a pipeline runs, not for --help
    from common.records import SimulateInfo


@dataclass
class SimulateRun:
    """`blocks simulate`: film a printed sheet's PDF with a virtual camera -> a video, or one still
    photo when out is an image. size: (w, h) frame pixels; steady_light: the colour map is the only
    colour change."""

    pdf: Path
    out: Path
    frames: int = 90
    seed: int = 0
    fps: float = 15.0
    block: int = 0
    colormap: Path | None = None
    steady_light: bool = False
    size: tuple[int, int] | None = None
    scenes: Path | None = None  # a photo or a folder: the card is cut out and held up in front of one
    overwrite: bool = False  # replace an existing clip or photo


def run_simulate(run: SimulateRun, progress=no_progress) -> SimulateInfo:
    from capture.simulate import SimulateSettings, simulate
    from common.files import IMAGE_SUFFIXES, check_new_outputs, check_output_file
    from transforms.camera import CameraSettings

    frames = 1 if Path(run.out).suffix.lower() in IMAGE_SUFFIXES else run.frames
    checks.whole(frames, "frames", 1, 100_000)
    checks.whole(run.block, "block", 0)
    checks.seed(run.seed)
    if not 0 < run.fps <= 240:
        raise UserError("fps must be in (0, 240]", param="fps")
    from common.inputs import check_not_input
    from common.records import sidecar_path

    check_not_input([run.out], shared.input_files(run.pdf, sidecar_path(run.pdf), run.colormap, run.scenes))
    check_output_file(run.out)
    check_new_outputs([run.out], run.overwrite)
    camera = CameraSettings()
    if run.size is not None:
        w, h = run.size
        if not (64 <= w <= 8192 and 64 <= h <= 8192):
            raise UserError(f"size takes WxH in pixels (64 to 8192 each), not {w}x{h}", param="size")
        camera = replace(camera, size=(w, h))
    if run.steady_light:
        camera = replace(camera, brightness=(1.0, 1.0), gradient=0.0, color_cast=0.0)
    cmap = shared.load_colormap(run.colormap)
    photos = ()
    if run.scenes is not None:
        from common.files import list_images

        if not Path(run.scenes).exists():
            raise UserError(f"scenes {run.scenes}: no such photo or folder", param="scenes")
        photos = tuple(list_images(run.scenes)) if Path(run.scenes).is_dir() else (Path(run.scenes),)
        if not photos:
            raise UserError(f"scenes {run.scenes} holds no images", param="scenes")
    check_memory(camera.size, photos)
    with progress("simulate", frames) as update:
        return simulate(run.pdf, run.out, SimulateSettings(frames=frames, seed=run.seed, fps=run.fps, block=run.block,
                                                           camera=camera, colormap=cmap, scenes=photos),
                        on_frame=update)


def check_memory(size: tuple[int, int], photos) -> None:
    """A frame of size (w, h) and the largest scene photo (its header's size, nothing decoded)."""
    from capture.simulate import FRAME_BYTES_PER_PIXEL, PHOTO_BYTES_PER_PIXEL
    from common.files import image_size
    from common.memory import check_fits

    w, h = size
    biggest = max((image_size(p, "scene photo") for p in photos), key=lambda s: s[0] * s[1], default=(0, 0))
    need = w * h * FRAME_BYTES_PER_PIXEL + biggest[0] * biggest[1] * PHOTO_BYTES_PER_PIXEL
    if w * h * FRAME_BYTES_PER_PIXEL >= biggest[0] * biggest[1] * PHOTO_BYTES_PER_PIXEL:
        check_fits(need, f"size {w}x{h}", "size", param=("size", "size"))
    else:
        check_fits(need, f"scenes photo of {biggest[0]} x {biggest[1]} px", "scenes (a smaller photo)",
                   param=("scenes", "scenes"))
