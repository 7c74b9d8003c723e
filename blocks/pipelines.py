"""One shape for every command: a settings dataclass (`GenerateRun`, ...) -> a pipeline function
(`run_generate(run)`, ...) that checks the settings, does the work, writes the files and returns
-> the typed record that went to disk (common.records). `blocks/cli.py` only turns flags into the
settings, calls the pipeline and prints the record.

    command            settings          pipeline                record (common/records.py)
    generate           GenerateRun       run_generate            PatchRecord per target (+ GenerateSummary)
    evaluate           EvaluateRun       run_evaluate            EvaluateReport (printed, or written to out)
    print              PrintRun          run_print               SheetInfo (sheet.json)
    calibration-sheet  CalibrationRun    run_calibration_sheet   CalibrationInfo (calib.json)
    calibrate          CalibrateRun      run_calibrate           ColorMapRecord (colormap.json)
    capture            CaptureRun        run_capture             CaptureSummary
    simulate           SimulateRun       run_simulate            SimulateInfo (what was filmed; only the video is written)
    onepixel           OnePixelRun       run_onepixel            OnePixelSummary (summary.json)
    sweep              SweepRun          run_sweep               SweepRecord (sweep.json)
    sample-scenes,     ScenesRun         run_scenes              ScenesInfo (scenes.json)
    digits-scenes

Progress is the caller's: a pipeline that runs long takes `progress(label, total)`, a context
manager yielding an update(record) function (the CLI draws rich bars with it; the default draws
nothing). Errors are UserError lines that name the setting (`steps must be at least 1`).
"""
from __future__ import annotations

import os
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

from blocks import checks
from common.errors import Interrupted, UserError
from common.records import (ScenesInfo, CalibrationInfo, CaptureSummary, ColorMapRecord, EvaluateReport, EvaluateRow,
                            OnePixelSummary, PatchRecord, SheetInfo, SimulateInfo, SweepRecord)


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
    """One torch thread when the CPU is already busy, else torch's own choice (never more).

    On 2 shared cores, two torch threads under load spin waiting for each other: measured here,
    EfficientNet-Lite0 forward+backward at batch 16 took 2.2 CPU-s with one thread and about twice
    that per step with two while other jobs ran. Idle, two threads finish sooner."""
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


# --- generate -----------------------------------------------------------------------------------

@dataclass
class GenerateRun:
    """`blocks generate`. targets: classes to become (one patch each); or away_from: a class to
    stop being. scale: (min, max) patch side / image side [default (0.8, 1.0), (0.4, 0.6) with scenes].
    epsilon: first step size in 0-255 units. out: [default runs/<target>-<time>]."""

    models: list = field(default_factory=default_models)  # list[blocks.models.ModelSpec]
    targets: list[str] = field(default_factory=list)
    targets_file: Path | None = None
    away_from: str | None = None
    device: str = "auto"
    patch_size: int | None = None
    steps: int = 240  # batch 8: about 5 minutes on 2 CPU cores, seconds on a GPU
    epsilon: float = 32.0
    final_fraction: float = 0.1
    schedule: str = "cosine"
    batch: int = 8
    momentum: float = 0.9
    smooth: float | None = None  # None: 0.8 for an ensemble, 0 for one model (eot_fgsm.smoothing)
    members: str = "balance"  # ensembles: balance | mean | cycle (eot_fgsm's docstring)
    scale: tuple[float, float] | None = None
    scenes: Path | None = None
    eval_scenes: Path | None = None
    eot: str = "held"
    max_seconds: float | None = None  # a clock makes the schedule depend on the machine: off by default
    colormap: Path | None = None
    printability: float = 0.0
    tv: float = 0.0
    eval_n: int = 256
    seed: int = 0
    out: Path | None = None


@dataclass
class Generated:
    """What run_generate returns: each target's patch.json record and folder, and the summary
    (written as summary.json) when there were several targets."""

    patches: list[PatchRecord]
    folders: list[Path]
    summary: object = None  # common.records.GenerateSummary or None


def run_generate(run: GenerateRun, progress=no_progress,
                 on_patch: Callable[[PatchRecord, Path], None] | None = None,
                 check_progress=no_progress) -> Generated:
    """Make one patch per target from black (EOT negative-epsilon FGSM), write patch.png,
    patch.json and curve.png per target (and summary.json for several), score each 8-bit patch on
    held-out views. on_patch(record, folder) after each target is judged (rank 0 only under torchrun).
    progress: updated with each StepRecord; check_progress: with the views of the held-out check
    judged in each batch."""
    from blocks import generate as G
    from blocks.distributed import QuietExit
    from blocks.report import library_versions
    from common.interrupts import interrupted
    from transforms.eot import preset

    # paths may differ per node; the models are compared after loading, by their weights' hashes
    same = {k: v for k, v in asdict(run).items() if k != "models" and not isinstance(v, Path)}
    group = G.join_group(run.device, same)
    G.check_run(run)
    eot_cfg = preset(run.eot, G.default_scale(run.scale, run.scenes, run.eot))
    out = Path(run.out) if run.out is not None else G.default_out(run)
    _check_generate_outputs(run, out)
    if run.batch < group.world:
        raise UserError(f"batch {run.batch} is smaller than the {group.world} ranks torchrun started: each rank "
                        f"renders at least one view per step (give batch >= {group.world} or start fewer ranks)",
                        param="batch")
    loaded = G.load(run, group, out)
    versions = library_versions()  # now, not after a Ctrl-C: importing takes seconds there
    if interrupted():  # a Ctrl-C that an import swallowed (torch's C init can): nothing is written yet
        raise KeyboardInterrupt
    several = len(loaded.goals) > 1
    done = Generated([], [], None)
    checks.views_fit(max(run.batch, 64), loaded.net.input_size, loaded.net.device)  # 64: a held-out check batch
    for goal in loaded.goals:
        folder = out / G.folder_name(goal) if several else out
        cfg, result = _train_patch(run, goal, eot_cfg, loaded, group, progress, several)
        rec, judged = group.agree(_write_and_judge, run, goal, cfg, eot_cfg, result, loaded, group, folder,
                                  versions, on_patch, check_progress)
        if group.is_main:
            done.patches.append(rec)
            done.folders.append(folder)
        if result.stopped == "interrupted":
            if not group.is_main:
                raise QuietExit(130)
            raise Interrupted(f"kept the best patch (step {result.best_step}) in {folder}"
                              + ("" if judged else " (no held-out check: patch.json has no held_out)"))
    if several and group.is_main:
        done.summary = G.summary_of(done.patches, done.folders, loaded.net, group.world)
        done.summary.write(out / "summary.json")
    return done


def _train_patch(run: GenerateRun, goal, eot_cfg, loaded, group, progress, several: bool):
    """One target's patch (blocks.attacks.eot_fgsm.generate_patch), rank 0 drawing the progress.
    Returns (its GenerateConfig, its GenerateResult)."""
    from blocks import generate as G
    from blocks.attacks.eot_fgsm import generate_patch

    cfg = G.config_for(run, goal, loaded.net)
    main_rank = group.is_main
    with (progress(goal.name if several else "generate", run.steps) if main_rank else no_progress("", 0)) as step:
        on_step = checks.finite_steps(step) if group.alone else step if main_rank else None  # NaN: one line
        result = generate_patch(loaded.net, cfg, eot_cfg, loaded.backgrounds, on_step=on_step,
                                patch_map=loaded.cmap, penalty=G.penalty(loaded.cmap, run.printability, run.tv),
                                group=group)
    return cfg, result


def _write_and_judge(run: GenerateRun, goal, cfg, eot_cfg, result, loaded, group, folder: Path, versions: dict,
                     on_patch, check_progress) -> tuple[PatchRecord | None, bool]:
    """Rank 0 writes patch.png + patch.json and judges the patch on held-out views; the other
    ranks learn whether that worked (Group.agree). Returns (the record, whether it was judged)."""
    from blocks import generate as G
    from blocks.report import write_patch
    from common.interrupts import listening

    if not group.is_main:
        return None, True
    rec = G.record_for(run, goal, cfg, eot_cfg, result, loaded, group.world, versions)
    rec = write_patch(folder, result.patch, rec)  # first: nothing is lost if judging is interrupted
    judged = True
    if result.stopped != "interrupted":
        rec = G.judge(run, rec, folder, goal, eot_cfg, loaded, check_progress)
    elif group.alone:  # a Ctrl-C stopped the steps: judge what was kept, unless Ctrl-C again
        try:
            with listening():
                rec = G.judge(run, rec, folder, goal, eot_cfg, loaded, check_progress)
        except (Interrupted, KeyboardInterrupt):
            judged = False
    else:  # under torchrun the ranks have already left together
        judged = False
    if on_patch and judged:
        on_patch(rec, folder)
    return rec, judged


def _check_generate_outputs(run: GenerateRun, out: Path) -> None:
    from common.inputs import check_not_input

    ins = input_files(run.colormap, run.targets_file, run.scenes, run.eval_scenes, model_files(run.models))
    check_not_input([out], ins)
    names = ("patch.png", "patch.json", "curve.png", "summary.json")
    check_not_input([(out / n, f"its {n}") for n in names], ins)


# --- evaluate -----------------------------------------------------------------------------------

@dataclass
class EvaluateRun:
    """`blocks evaluate`: a patch on n fresh random views. Exactly one of target / away_from."""

    patch: Path
    models: list = field(default_factory=default_models)
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


def run_evaluate(run: EvaluateRun) -> EvaluateReport:
    """Success rate and target probability on fresh views; with several models one row per model
    on the same views (a transfer row). Written to run.out when given."""
    from blocks.evaluate import evaluate_members, evaluate_patch
    from blocks.generate import SAMPLE_TEST, default_scale, fit, load_colormap, read_scene_source
    from transforms.eot import whole_frame
    from blocks.targets import resolve_target
    from common.files import check_output_file, load_image
    from transforms.eot import preset

    checks.whole(run.n, "n", 1, 1_000_000)
    checks.seed(run.seed)
    if (run.target is None) == (run.away_from is None):
        raise UserError("give exactly one of target CLASS (become it) or away_from CLASS (stop being it)",
                        param=("target", "away_from"))
    image = load_image(run.patch)
    if min(image.shape[-2:]) < 2:
        h, w = image.shape[-2:]
        raise UserError(f"patch {run.patch} is {w} x {h} px: a patch needs at least 2 x 2 pixels")
    scale = default_scale(checks.span(run.scale, "scale", *checks.SCALE) if run.scale else None, run.scenes, run.eot)
    eot_cfg, cmap = preset(run.eot, scale), load_colormap(run.colormap)
    frames = whole_frame(run.eot)  # whole frames with no scenes given: the held-out sample photos
    scenes = read_scene_source(str(run.scenes) if run.scenes else SAMPLE_TEST if frames else None)
    scale = eot_cfg.placement.scale
    if run.out is not None:
        from common.inputs import check_not_input

        check_not_input([run.out], input_files(run.patch, run.colormap, run.scenes, model_files(run.models)))
        check_output_file(run.out)
    net = load_model(run.models, run.device)
    goal = resolve_target(run.target if run.target is not None else run.away_from, net.labels, run.target is not None)
    views = dict(scenes=fit(scenes, net.input_size, frames), n=run.n, seed=run.seed, patch_map=cmap)
    report = EvaluateReport(patch=str(run.patch), eot=run.eot, scale=list(scale), seed=run.seed, n=run.n,
                            target=goal)
    if len(run.models) > 1:
        report.models = tuple(EvaluateRow.from_json(r) for r in evaluate_members(net, image, eot_cfg, goal, **views))
    else:
        ev = evaluate_patch(net, image, eot_cfg, goal, **views)
        report = replace(report, model=net.name, **ev.to_dict())
    if run.out is not None:
        report.write(run.out)
    return report


# --- print and calibration sheets ---------------------------------------------------------------

@dataclass
class PrintRun:
    """`blocks print`: patches -> out (a .pdf) + sheet.json (+ page PNGs with preview)."""

    patches: list[Path]
    out: Path
    settings: object = None  # printing.SheetSettings [default: SheetSettings()]
    preview: bool = False


def run_print(run: PrintRun) -> SheetInfo:
    from printing import SheetSettings, make_sheet, write_sheet
    from printing.sheet import check_sheet_out

    from common.inputs import check_not_input
    from printing.sheet import preview_paths, sidecar_path

    check_sheet_out(run.out, run.preview)
    patches = [Path(p) for p in run.patches]
    ins = input_files(patches, [p.with_suffix(".json") for p in patches], [p.parent / "patch.json" for p in patches])
    check_not_input([run.out, (sidecar_path(run.out), "the sheet.json written beside it")], ins)
    if run.preview:
        check_not_input([(p, "a page preview") for p in preview_paths(run.out, 4)], ins)
    sheet = make_sheet(run.patches, run.settings or SheetSettings())
    write_sheet(sheet, run.out, preview=run.preview)
    return sheet.info


@dataclass
class CalibrationRun:
    """`blocks calibration-sheet`: a page of colour swatches -> out (.pdf) + calib.json."""

    out: Path = Path("calib.pdf")
    settings: object = None  # printing.calibration.CalibrationSettings
    preview: bool = False


def run_calibration_sheet(run: CalibrationRun) -> CalibrationInfo:
    from printing.calibration import CalibrationSettings, make_calibration_sheet, write_calibration_sheet
    from printing.sheet import check_sheet_out

    check_sheet_out(run.out, run.preview)
    sheet = make_calibration_sheet(run.settings or CalibrationSettings())
    write_calibration_sheet(sheet, run.out, preview=run.preview)
    return sheet.info


@dataclass
class CalibrateRun:
    """`blocks calibrate`: a photo/video of the printed calibration sheet -> colormap.json."""

    source: str
    sheet: Path
    out: Path = Path("colormap.json")
    max_frames: int = 60
    step: int = 1


def run_calibrate(run: CalibrateRun) -> ColorMapRecord:
    from capture.calibrate import CalibrateSettings, calibrate, check_out
    from common.files import check_output_file

    check_out(run.out)
    checks.whole(run.max_frames, "max_frames", 1)
    checks.whole(run.step, "step", 1)
    from common.inputs import check_not_input
    from common.records import sheet_json, sidecar_path

    check_not_input([run.out], input_files(run.sheet, sheet_json(run.sheet), sidecar_path(run.sheet),
                                           run.source if _is_path(run.source) else None))
    check_output_file(run.out)
    cmap = calibrate(run.source, run.sheet, CalibrateSettings(max_frames=run.max_frames, step=run.step))
    record = cmap.to_record()
    record.write(run.out)
    return record


# --- capture and simulate -----------------------------------------------------------------------

@dataclass
class CaptureRun:
    """`blocks capture`: classify a camera, video, photos or stream live. window and stride are
    fractions of the frame's shorter side (with sliding); threshold a probability."""

    target: str
    source: str = "0"
    models: list = field(default_factory=default_models)
    device: str = "auto"
    sheet: Path | None = None
    sliding: bool = False
    window: float = 0.5
    stride: float = 0.25
    threshold: float = 0.0
    headless: bool = False
    save_video: Path | None = None
    log: Path | None = None
    summary: Path | None = None
    max_frames: int | None = None
    duration: float | None = None
    reconnect: int = 0
    reduce: str = "squash"  # the whole frame to the model's square: squash, or crop (resize + centre crop)


def check_capture(run: CaptureRun) -> None:
    from common.files import check_output_file

    checks.whole(run.max_frames, "max_frames", 1)
    checks.number(run.duration, "duration", 0, lo_open=True)
    checks.number(run.window, "window", 0, 1, lo_open=True)
    checks.number(run.stride, "stride", checks.MIN_STRIDE, 1)  # a tinier step explodes the window grid
    if not 0 <= run.threshold <= 1:
        raise UserError("threshold is a probability in [0, 1]", param="threshold")
    from transforms.held import REDUCTIONS

    if run.reduce not in REDUCTIONS:
        raise UserError(f"reduce takes {' or '.join(REDUCTIONS)}, not {run.reduce!r}", param="reduce")
    if not 0 <= run.reconnect <= 1000:
        raise UserError("reconnect is a number of attempts in [0, 1000]", param="reconnect")
    for path, what in ((run.log, "log"), (run.summary, "summary")):
        if path is not None:
            check_output_file(path, what)
    if run.save_video is not None:
        from capture.loop import check_video_out

        check_video_out(run.save_video)
    from common.inputs import check_not_input
    from common.records import sheet_json, sidecar_path

    ins = input_files(run.source if _is_path(run.source) else None, model_files(run.models),
                      *([run.sheet, sheet_json(run.sheet), sidecar_path(run.sheet)] if run.sheet is not None else []))
    for path, flag in ((run.log, "log"), (run.summary, "summary"), (run.save_video, "save_video")):
        check_not_input([path], ins, flag)
    outs = [(p, f) for p, f in ((run.log, "log"), (run.summary, "summary"), (run.save_video, "save_video"))
            if p is not None]
    for i, (a, fa) in enumerate(outs):
        for b, fb in outs[i + 1:]:
            if os.path.abspath(a) == os.path.abspath(b):
                raise UserError(f"{fa} and {fb} name the same file {a}: give each its own", param=(fa, fb))


def _is_path(source) -> bool:
    """A capture/calibrate source that names a file or folder (not a camera index, URL or screen)."""
    text = str(source)
    return not (text.isdigit() or "://" in text or text.startswith("screen") or any(c in text for c in "*?["))


def run_capture(run: CaptureRun, progress=no_progress, on_headless: Callable[[], None] | None = None) -> CaptureSummary:
    """The capture loop until the source ends, q/Esc, a limit or Ctrl-C; the log, video and
    summary files are written (kept on Ctrl-C too: the summary's stopped_by says so)."""
    from capture.display import is_headless
    from capture.loop import CaptureSettings, run_capture as loop
    from capture.sheet import load_sheet, sheet_json
    from capture.sources import open_source
    from capture.views import SlidingSettings
    from blocks.targets import resolve_target

    check_capture(run)
    layout = load_sheet(run.sheet) if run.sheet is not None else None
    frames = open_source(run.source, reconnect=run.reconnect)  # before the model: a missing camera fails in a second
    net = load_model(run.models, run.device)
    goal = resolve_target(run.target, net.labels)
    settings = CaptureSettings(
        target=goal.index, sheet=layout, sheet_path=sheet_json(run.sheet) if run.sheet is not None else None,
        sliding=SlidingSettings(run.window, run.stride) if run.sliding else None,
        headless=is_headless(run.headless), save_video=run.save_video, log=run.log, max_frames=run.max_frames,
        duration_s=run.duration, threshold=run.threshold, reduce=run.reduce)
    if settings.headless and not run.headless and on_headless:
        on_headless()
    known = [n for n in (run.max_frames, frames.frame_count) if n]
    with (progress("capture", min(known) if known else None) if settings.headless else no_progress("", 0)) as update:
        summary = loop(net, frames, settings, on_frame=update)
    if run.summary is not None:
        summary.write(run.summary)
    return summary


def capture_kept(run: CaptureRun, summary: CaptureSummary) -> list[str]:
    """The files an ended capture left (for the `wrote` and `interrupted: kept` lines)."""
    return [str(p) for p in (run.log, run.save_video) if p is not None and summary.frames]


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


def run_simulate(run: SimulateRun, progress=no_progress) -> SimulateInfo:
    from blocks.generate import load_colormap
    from capture.simulate import SimulateSettings, simulate
    from common.files import IMAGE_SUFFIXES, check_output_file
    from transforms.camera import CameraSettings

    frames = 1 if Path(run.out).suffix.lower() in IMAGE_SUFFIXES else run.frames
    checks.whole(frames, "frames", 1, 100_000)
    checks.whole(run.block, "block", 0)
    checks.seed(run.seed)
    if not 0 < run.fps <= 240:
        raise UserError("fps must be in (0, 240]", param="fps")
    from common.inputs import check_not_input
    from common.records import sidecar_path

    check_not_input([run.out], input_files(run.pdf, sidecar_path(run.pdf), run.colormap))
    check_output_file(run.out)
    camera = CameraSettings()
    if run.size is not None:
        w, h = run.size
        if not (64 <= w <= 8192 and 64 <= h <= 8192):
            raise UserError(f"size takes WxH in pixels (64 to 8192 each), not {w}x{h}", param="size")
        camera = replace(camera, size=(w, h))
    if run.steady_light:
        camera = replace(camera, brightness=(1.0, 1.0), gradient=0.0, color_cast=0.0)
    cmap = load_colormap(run.colormap)
    photos = ()
    if run.scenes is not None:
        from common.files import list_images

        if not Path(run.scenes).exists():
            raise UserError(f"scenes {run.scenes}: no such photo or folder", param="scenes")
        photos = tuple(list_images(run.scenes)) if Path(run.scenes).is_dir() else (Path(run.scenes),)
        if not photos:
            raise UserError(f"scenes {run.scenes} holds no images", param="scenes")
    with progress("simulate", frames) as update:
        return simulate(run.pdf, run.out, SimulateSettings(frames=frames, seed=run.seed, fps=run.fps, block=run.block,
                                                           camera=camera, colormap=cmap, scenes=photos),
                        on_frame=update)


# --- one-pixel ----------------------------------------------------------------------------------

@dataclass
class OnePixelRun:
    """`blocks onepixel`: inputs (images and folders) attacked at once, one model."""

    inputs: list[Path]
    models: list = field(default_factory=default_models)
    target: str | None = None
    pixels: int = 1
    popsize: int = 400
    maxiter: int = 100
    max_queries: int = 0
    fitness: str = "auto"
    out: Path = Path("onepixel_out")
    strategy: str = "probe"
    seed: int = 0
    device: str = "auto"
    batch: int = 0


def run_onepixel(run: OnePixelRun, progress=no_progress) -> OnePixelSummary:
    """Load, resize to the model's input size, attack, write per-image PNG + JSON, summary.json and
    contact_sheet.png. Returns summary.json's record (its `results` are the per-image rows)."""
    from blocks.attacks.onepixel import OnePixelConfig, one_pixel_attack, prepare_images
    from blocks.attacks.onepixel.report import collect_inputs, unique_names, write_outputs
    from blocks.targets import resolve_target
    from common.files import check_output_dir, load_image

    cfg = OnePixelConfig(pixels=run.pixels, popsize=run.popsize, maxiter=run.maxiter, strategy=run.strategy,
                         seed=run.seed, batch=run.batch, max_queries=run.max_queries,
                         fitness=run.fitness).check()  # bad settings fail before the model loads
    checks.seed(run.seed)
    files = collect_inputs(run.inputs)
    images = [load_image(f) for f in files]
    check_output_dir(run.out)  # before the attack: its results must have somewhere to go
    from common.inputs import check_not_input

    ins = input_files(run.inputs, model_files(run.models), [f.with_suffix(".json") for f in files])
    check_not_input([run.out], ins)
    outs = [Path(run.out) / n for name in unique_names(files) for n in (f"{name}_adv.png", f"{name}.json")]
    check_not_input(outs + [Path(run.out) / "summary.json", Path(run.out) / "contact_sheet.png"], ins)
    net = load_model(run.models[:1], run.device)
    goal = resolve_target(run.target, net.labels) if run.target is not None else None
    # The attack runs at the model's input size: every image stacks into one batch and the changed
    # pixel is a real model-input pixel (a pixel of a larger original would be blurred by resizing).
    if run.batch:  # images per forward pass, each a few copies deep
        checks.fits_in_memory(float(run.batch) * 3 * net.input_size ** 2 * 4 * 4,
                              f"onepixel's {run.batch} images a pass at {net.input_size} px", "lower --batch",
                              net.device)
    x = prepare_images(images, net.input_size)
    # DE counts generations, the searches count queries (of the furthest image)
    total = max(cfg.maxiter, 1) if cfg.is_de else cfg.budget_for(net.input_size ** 2)
    with progress("onepixel: generations" if cfg.is_de else "onepixel: queries", total) as update:
        result = one_pixel_attack(net, x, None, cfg, target=goal.index if goal else None,
                                  progress=lambda g, running, _: update((g, running)))
        if not result.interrupted:
            update((total, 0))
    names = unique_names(files)
    if result.interrupted:  # Ctrl-C / SIGTERM: the images whose search had ended are kept
        keep = result.finished.nonzero().flatten()
        if not len(keep):
            raise KeyboardInterrupt
        result = result.subset(keep)
        names, files = [names[i] for i in keep.tolist()], [files[i] for i in keep.tolist()]
    extra = {"model": net.describe(), "device": str(net.device), "seed": run.seed,
             "target": goal.to_json() if goal else None,
             "input_size": net.input_size, "files": [str(f) for f in files]}
    if result.interrupted:
        extra["stopped"] = "interrupted"
    summary = write_outputs(run.out, result, names, [str(f) for f in files], net.labels, extra)
    if result.interrupted:
        raise Interrupted(f"kept the results of the {len(names)} image(s) whose search had finished, in {run.out}")
    return summary


# --- sweep --------------------------------------------------------------------------------------

@dataclass
class SweepRun:
    """`blocks sweep`: single-step FGSM line search on one image. eps_range: (min, max) in 0-255 units."""

    image: Path
    target: str
    models: list = field(default_factory=default_models)
    device: str = "auto"
    eps_range: tuple[float, float] = (-120.0, 10.0)
    num: int = 131
    out: Path = Path("runs/sweep")


def run_sweep(run: SweepRun) -> SweepRecord:
    """Class probabilities against epsilon: out/sweep.png and out/sweep.json (returned)."""
    import torch

    from blocks.attacks.fgsm_sweep import epsilon_sweep, plot_sweep
    from blocks.targets import resolve_target
    from common.files import atomic_write_bytes, check_output_dir, load_image
    from common.interrupts import writing

    lo, hi = checks.span(run.eps_range, "eps_range", -255, 255)
    if not lo < hi:
        raise UserError(f"eps_range takes MIN:MAX with MIN < MAX, not '{lo:g}:{hi:g}'", param="eps_range")
    checks.whole(run.num, "num", 2, 10_000)
    x = load_image(run.image)
    check_output_dir(run.out)
    from common.inputs import check_not_input

    ins = input_files(run.image, model_files(run.models))
    check_not_input([Path(run.out), Path(run.out) / "sweep.png", Path(run.out) / "sweep.json"], ins)
    net = load_model(run.models, run.device)
    goal = resolve_target(run.target, net.labels)
    s = epsilon_sweep(net, x, goal.index, (torch.linspace(lo, hi, run.num) / 255).tolist())
    record = SweepRecord(image=str(run.image), target=goal, model=net.name,
                         epsilons_255=[e * 255 for e in s.epsilons], best_epsilon_255=s.best_epsilon * 255,
                         best_target_prob=s.best_target_prob, clean_top1=net.labels[s.clean_top1],
                         probs={net.labels[c]: s.probs[:, c].tolist() for c in s.classes_to_show()})
    data = record.to_bytes()  # NaN fails here, before any file
    with writing():
        plot_sweep(s, net.labels, Path(run.out) / "sweep.png")
        atomic_write_bytes(Path(run.out) / "sweep.json", data)
    return record


# --- scenes -------------------------------------------------------------------------------------

@dataclass
class ScenesRun:
    """`blocks sample-scenes` (source "photos") / `blocks digits-scenes` (source "digits"): scene
    images for --scenes in out/train and out/test. exclude, limit: digits only (the target class to
    leave out, at most this many digits)."""

    out: Path
    source: str = "photos"
    exclude: str | None = None
    limit: int | None = None


def run_scenes(run: ScenesRun) -> ScenesInfo:
    """Write the scenes and out/scenes.json (returned)."""
    from blocks.scenes import export_digit_scenes, export_sample_photos
    from blocks.targets import resolve_target
    from common.files import check_output_dir

    if run.source not in ("photos", "digits"):
        raise UserError(f"source must be photos or digits, not {run.source!r}", param="source")
    if run.source == "photos" and (run.exclude is not None or run.limit is not None):
        raise UserError("exclude and limit apply to digits scenes only", param=("exclude", "limit"))
    checks.whole(run.limit, "limit", 1)
    out = check_output_dir(run.out)
    if run.source == "photos":
        counts = export_sample_photos(out)
        record = ScenesInfo(source="photos", train=counts["train"], test=counts["test"])
    else:
        from blocks.models.digits import LABELS

        skip = resolve_target(run.exclude, LABELS) if run.exclude is not None else None
        counts = export_digit_scenes(out, skip.index if skip else None, run.limit)
        record = ScenesInfo(source="digits", train=counts["train"], test=counts["test"],
                            excluded=skip.name if skip else None)
    record.write(out / "scenes.json")
    return record
