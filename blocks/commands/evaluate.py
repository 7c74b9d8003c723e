"""`blocks evaluate`: a patch judged on fresh random views (blocks.evaluate), one row per model for
several (a transfer row)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from blocks import checks
from blocks.commands import shared
from common.errors import UserError
if TYPE_CHECKING:  # the records (pydantic models) load when a pipeline runs, not for --help
    from common.records import EvaluateReport


@dataclass
class EvaluateRun:
    """`blocks evaluate`: a patch on n fresh random views. Exactly one of target / away_from."""

    patch: Path
    models: list = field(default_factory=shared.default_models)
    target: str | None = None
    away_from: str | None = None
    device: str = "auto"
    scenes: Path | None = None
    scale: tuple[float, float] | None = None
    eot: str = "held"
    colormap: Path | None = None
    n: int = 512
    seed: int = 2024
    out: Path | None = None
    overwrite: bool = False  # replace an existing out
    json: bool = False  # print the JSON report on stdout (the CLI's choice: the summary otherwise)


def run_evaluate(run: EvaluateRun, progress=shared.no_progress) -> EvaluateReport:
    """Success rate and target probability on fresh views; with several models one row per model
    on the same views (a transfer row). Written to run.out when given. Figures are rounded to what
    run.n views resolve (blocks.evaluate.rounded); whole-frame views report by_coverage (the patch
    side over the frame's shorter side) and no by_scale, which bins the same number.
    progress(label, total): a bar, updated with the views judged in each batch."""
    from blocks.targets import resolve_target
    from common.records import EvaluateReport
    from transforms.eot import preset, whole_frame

    image = _read_patch(run)
    given = checks.span(run.scale, "scale", *checks.SCALE) if run.scale else None
    scale = shared.default_scale(given, run.scenes, run.eot)
    eot_cfg, cmap = preset(run.eot, scale), shared.load_colormap(run.colormap)
    frames = whole_frame(run.eot)  # whole frames with no scenes given: the held-out sample photos
    scenes = shared.read_scene_source(str(run.scenes) if run.scenes else shared.SAMPLE_TEST if frames else None)
    scale = eot_cfg.scale
    if run.out is not None:
        _check_out(run)
    net = shared.load_model(run.models, run.device)
    goal = resolve_target(run.target if run.target is not None else run.away_from, net.labels, run.target is not None)
    views = dict(scenes=shared.fit(scenes, net.input_size, frames), n=run.n, seed=run.seed, patch_map=cmap)
    report = EvaluateReport(patch=str(run.patch), eot=run.eot, scale=list(scale), seed=run.seed, n=run.n,
                            target=goal)
    report = _judge(run, net, image, eot_cfg, goal, views, report, progress)
    if run.out is not None:
        report.write(run.out)
    return report


def _read_patch(run: EvaluateRun):
    """The settings that need no file, then the patch: its size is checked from the header (a patch
    too large to judge is refused undecoded) before it is read."""
    from common.files import image_size, load_image

    checks.whole(run.n, "n", 1, 1_000_000)
    checks.seed(run.seed)
    if (run.target is None) == (run.away_from is None):
        raise UserError("give exactly one of target CLASS (become it) or away_from CLASS (stop being it)",
                        param=("target", "away_from"))
    shared.check_patches_exist([run.patch])
    w, h = image_size(run.patch)
    checks.patch_views_fit(min(run.n, checks.EVAL_BATCH), max(w, h), run.device,
                           f"patch {run.patch} ({w} x {h} px) on {min(run.n, checks.EVAL_BATCH)} views at once",
                           "its side (resize the patch image)")
    image = load_image(run.patch)
    if min(image.shape[-2:]) < 2:
        h, w = image.shape[-2:]
        raise UserError(f"patch {run.patch} is {w} x {h} px: a patch needs at least 2 x 2 pixels")
    return image


def _check_out(run: EvaluateRun) -> None:
    """run.out replaces no input (the patch's own patch.json too: common.inputs.sidecar_of) and no
    earlier report unless run.overwrite."""
    from common.files import check_new_outputs, check_output_file
    from common.inputs import check_not_input

    ins = shared.input_files(run.patch, run.colormap, run.scenes, shared.model_files(run.models))
    check_not_input([run.out], ins)
    check_output_file(run.out)
    check_new_outputs([run.out], run.overwrite)


def _judge(run: EvaluateRun, net, image, eot_cfg, goal, views: dict, report: EvaluateReport,
           progress) -> EvaluateReport:
    """The figures: one row per model with several (the same views for each), else the one model's
    figures at the report's top level."""
    from blocks.evaluate import evaluate_members, evaluate_patch, rounded
    from common.records import EvaluateRow

    several = len(run.models) > 1
    with progress("evaluate", run.n * (len(run.models) if several else 1)) as update:
        views["on_batch"] = update
        if several:
            rows = evaluate_members(net, image, eot_cfg, goal, **views)
            report.models = tuple(EvaluateRow.from_json(rounded(r, run.n)) for r in rows)
        else:
            ev = rounded(evaluate_patch(net, image, eot_cfg, goal, **views).to_dict(), run.n)
            if ev.get("by_coverage"):
                ev["by_scale"] = None
            report = report.replaced(model=net.name, **ev)
    return report
