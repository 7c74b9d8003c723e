"""`blocks onepixel`: the one-pixel attack (blocks.attacks.onepixel) on a set of images at once,
with its per-image files, summary.json and contact sheet."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from blocks import checks
from blocks.commands import shared
from blocks.commands.shared import no_progress
from blocks.attacks.onepixel.config import OnePixelConfig
from common.errors import Interrupted
if TYPE_CHECKING:  # the records (pydantic models) load when a pipeline runs, not for --help
    from common.records import OnePixelSummary


@dataclass
class OnePixelRun:
    """`blocks onepixel`: inputs (images and folders) attacked at once, one model. attack: the
    attack's own settings (blocks.attacks.onepixel.config.OnePixelConfig: strategy, pixels, popsize,
    budget, seed, batch, ...); --seed always gives a seed (the library's None, not reproducible, is
    the Python API's alone)."""

    inputs: list[Path]
    models: list = field(default_factory=shared.default_models)
    target: str | None = None
    out: Path = Path("onepixel_out")
    device: str = "auto"
    overwrite: bool = False  # replace the files of an earlier run in out
    attack: OnePixelConfig = field(default_factory=OnePixelConfig)


def run_onepixel(run: OnePixelRun, progress=no_progress) -> OnePixelSummary:
    """Load, resize to the model's input size, attack, write per-image PNG + JSON, summary.json and
    contact_sheet.png. Returns summary.json's record (its `results` are the per-image rows)."""
    from blocks.attacks.onepixel import prepare_images
    from blocks.attacks.onepixel.report import collect_inputs, unique_names, write_outputs
    from blocks.targets import resolve_target
    from common.files import load_image

    cfg = run.attack.check()  # bad settings fail before the model loads
    checks.seed(cfg.seed)
    checks.whole(cfg.batch, "batch", 0, checks.MAX_BATCH)
    files = collect_inputs(run.inputs)
    images = [load_image(f) for f in files]
    _check_outputs(run, files)
    net = shared.load_model(run.models[:1], run.device)
    goal = resolve_target(run.target, net.labels) if run.target is not None else None
    # The attack runs at the model's input size: every image stacks into one batch and the changed
    # pixel is a real model-input pixel (a pixel of a larger original would be blurred by resizing).
    cfg.check_image(len(images), net.input_size, net.input_size)
    _check_batch_fits(run, net)
    result = _attack(net, prepare_images(images, net.input_size), cfg, goal, progress)
    names = unique_names(files)
    if result.interrupted:  # Ctrl-C / SIGTERM: the images whose search had ended are kept
        keep = result.finished.nonzero().flatten()
        if not len(keep):
            raise KeyboardInterrupt
        result = result.subset(keep)
        names, files = [names[i] for i in keep.tolist()], [files[i] for i in keep.tolist()]
    extra = {"model": net.describe(), "device": str(net.device), "seed": cfg.seed,
             "target": goal.to_json() if goal else None,
             "input_size": net.input_size, "files": [str(f) for f in files]}
    if result.interrupted:
        extra["stopped"] = "interrupted"
    summary = write_outputs(run.out, result, names, [str(f) for f in files], net.labels, extra)
    if result.interrupted:
        raise Interrupted(f"kept the results of the {len(names)} image(s) whose search had finished, in {run.out}")
    return summary


def _check_outputs(run: OnePixelRun, files: list[Path]) -> None:
    """Before the attack: its results must have somewhere to go, overwrite no input and replace
    no earlier run's files unless run.overwrite."""
    from blocks.attacks.onepixel.report import unique_names
    from common.files import check_new_outputs, check_output_dir
    from common.inputs import check_not_input

    check_output_dir(run.out)
    ins = shared.input_files(run.inputs, shared.model_files(run.models), [f.with_suffix(".json") for f in files])
    check_not_input([run.out], ins)
    outs = [Path(run.out) / n for name in unique_names(files) for n in (f"{name}_adv.png", f"{name}.json")]
    outs += [Path(run.out) / "summary.json", Path(run.out) / "contact_sheet.png"]
    check_not_input(outs, ins)
    check_new_outputs(outs, run.overwrite)


def _check_batch_fits(run: OnePixelRun, net) -> None:
    """run.attack.batch images per forward pass, each a few copies deep, must fit the device's memory."""
    batch = run.attack.batch
    if batch:
        from common.memory import check_fits

        check_fits(batch * checks.rgb_bytes(net.input_size) * checks.view_copies(net) / 2,  # no gradients
                   f"batch {batch} at {net.input_size} px", "batch", net.device, param=("batch", "batch"))


def _attack(net, x, cfg: OnePixelConfig, goal, progress):
    """The attack on every image at once, under a progress bar: DE counts generations, the
    searches count queries (of the furthest image)."""
    from blocks.attacks.onepixel import one_pixel_attack

    total = max(cfg.maxiter, 1) if cfg.is_de else cfg.budget_for(net.input_size ** 2)
    with progress("onepixel: generations" if cfg.is_de else "onepixel: queries", total) as update:
        result = one_pixel_attack(net, x, None, cfg, target=goal.index if goal else None,
                                  progress=lambda g, running, _: update((g, running)))
        if not result.interrupted:
            update((total, 0))
    return result
