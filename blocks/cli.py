"""The `blocks` command: it only declares commands. Each one reads its flags into its settings
dataclass (blocks.commands.*), runs its pipeline, and prints the record it gets back, which formats
itself (common.formats). Progress bars: blocks.progress; errors and Ctrl-C -> one line and an exit
code: blocks.exits; the flag plumbing the commands share: blocks.flags."""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Optional

import typer

from blocks import checks, exits
from blocks.first_line import loading_line  # noqa: F401 (cli.loading_line: the same line)
# The settings dataclasses are the one home of every default: the flags below read theirs from
# them. The command modules import torch only inside their pipelines: --help and errors stay fast.
from blocks.commands.calibrate import CalibrateRun, run_calibrate
from blocks.commands.calibration_sheet import CalibrationRun, run_calibration_sheet
from blocks.commands.capture import CaptureRun, capture_kept, run_capture, sliding_of
from blocks.commands.evaluate import EvaluateRun, run_evaluate
from blocks.commands.generate import GenerateRun, run_generate
from blocks.commands.onepixel import OnePixelRun, run_onepixel
from blocks.commands.print_sheet import PrintRun, run_print
from blocks.commands.scenes import ScenesRun, run_scenes
from blocks.commands.simulate import SimulateRun, run_simulate
from blocks.commands.sweep import SweepRun, run_sweep
from blocks.flags import (DEFAULT_MODEL, EVAL_SCENES_DEFAULT, FRAME_SIZE_DEFAULT, MODEL_FLAGS,  # noqa: F401 (tests read them here)
                          OVERWRITE_HELP, SCALE_DEFAULT, SCENES_DEFAULT, SMOOTH_DEFAULT, DeviceOpt, _version,
                          class_names, default, model_options, parse_range, parse_size, settings)
from blocks.progress import capture_bar, evaluate_bar, generate_bar, onepixel_bar, simulate_bar, views_bar
from capture.settings import SlidingSettings
from common.errors import Interrupted, UserError, shown
from common.files import json_text
from printing.settings import CalibrationSettings, SheetSettings, parse_tile  # printing.sheet loads the records

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Physical-world adversarial blocks: generate, print, capture, one-pixel.")


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code: 0 ok, 2 bad input, 130 interrupted (blocks.exits)."""
    return exits.run(app, argv)


def say(lines: list[str], err: bool = False) -> None:
    for line in lines:
        typer.echo(line, err=err)


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="print the version and exit")] = False,
) -> None:
    """Physical-world adversarial blocks: generate, print, capture, one-pixel."""


@app.command()
@model_options()
def targets(
    query: Annotated[str, typer.Argument(help="class name, index or common word")],
    models: list = None,  # the model flags (@model_options)
):
    """List the classes matching QUERY, with their indices."""
    from blocks.targets import picked_line, search_targets

    names = class_names(models)
    hits = search_targets(query, names)
    if not hits:
        raise UserError(f"no class matches {query!r} ({len(names)} classes)")
    say([shown(picked_line(query, names)), *(f"{i:5d}  {shown(name)}" for i, name in hits)])


@app.command("models")
def list_models_cmd():
    """List the models that run offline right now: embedded, bundled and cached weights."""
    from blocks.models import offline_models

    say([f"{m['model']:<28} {m['source']:<9} {m['input_size']:>4} px  {m['num_classes']:>5} classes"
         for m in offline_models()])


@app.command()
@model_options()
def generate(
    targets: Annotated[Optional[list[str]], typer.Option("--target", help="class to become: name, index or word (chicken); repeat it for one patch per target (give one of --target, --targets-file, --away-from)")] = None,
    targets_file: Annotated[Optional[Path], typer.Option("--targets-file", help="text file of targets, one per line: one patch each, model loaded once")] = None,
    away_from: Annotated[Optional[str], typer.Option("--away-from", help="class to stop being (positive epsilon)")] = None,
    models: list = None,  # the model flags (@model_options)
    device: DeviceOpt = default(GenerateRun, "device"),
    patch_size: Annotated[Optional[int], typer.Option("--patch-size", help="patch side in pixels", show_default="2/7 of the model input (64 at 224) on whole frames, half otherwise")] = None,
    steps: Annotated[int, typer.Option("--steps", help="FGSM steps (the run may end sooner: --max-seconds)")] = default(GenerateRun, "attack.steps"),
    epsilon: Annotated[float, typer.Option("--epsilon", help="first step size in 0-255 units (negative-epsilon FGSM step)")] = default(GenerateRun, "attack.epsilon", unit=255),
    final_fraction: Annotated[float, typer.Option("--final-fraction", help="last step size as a fraction of the first")] = default(GenerateRun, "attack.final_fraction"),
    schedule: Annotated[str, typer.Option("--schedule", help="step-size schedule: cosine, linear, constant")] = default(GenerateRun, "attack.schedule"),
    batch: Annotated[int, typer.Option("--batch", help="random views per step")] = default(GenerateRun, "attack.batch"),
    momentum: Annotated[float, typer.Option("--momentum", help="sign of a running mean of gradients (0 = plain FGSM)")] = default(GenerateRun, "attack.momentum"),
    smooth: Annotated[Optional[float], typer.Option("--smooth", help="Gaussian gradient smoothing, sigma in patch pixels (transfers better to unseen models; 0 = off)", show_default=SMOOTH_DEFAULT)] = None,
    members: Annotated[str, typer.Option("--members", help="ensembles: balance (each member's gradient at equal size), mean (loss of the mean log-probability) or cycle (one member per step, in turn)")] = default(GenerateRun, "attack.members"),
    scale: Annotated[Optional[str], typer.Option("--scale", metavar="MIN:MAX", help="patch side as a fraction, MIN:MAX: for --eot held of the frame's shorter side (the patch's coverage: how close the camera is); for the other presets of the image side", show_default=SCALE_DEFAULT)] = None,
    scenes: Annotated[Optional[Path], typer.Option("--scenes", help="folder of background photos", show_default=SCENES_DEFAULT)] = None,
    eval_scenes: Annotated[Optional[Path], typer.Option("--eval-scenes", help="backgrounds for the held-out check", show_default=EVAL_SCENES_DEFAULT)] = None,
    eot: Annotated[str, typer.Option("--eot", help="views to train for: " + ", ".join(checks.EOT_PRESETS) + " (held: the whole camera frame, the printed card held up in a scene; docs/generate.md)")] = default(GenerateRun, "eot"),
    max_seconds: Annotated[Optional[float], typer.Option("--max-seconds", help="stop after S seconds (wall clock), keeping the best patch; the schedule then follows the clock too; 0 = no limit", show_default="no limit")] = None,
    colormap: Annotated[Optional[Path], typer.Option("--colormap", help="measured printer-to-camera colour map (blocks calibrate)", show_default="none")] = None,
    printability: Annotated[float, typer.Option("--printability", help="weight of the non-printability penalty")] = default(GenerateRun, "printability"),
    tv: Annotated[float, typer.Option("--tv", help="weight of the total-variation penalty")] = default(GenerateRun, "tv"),
    eval_n: Annotated[int, typer.Option("--eval-n", help="held-out random views for the final success rate")] = default(GenerateRun, "eval_n"),
    seed: Annotated[int, typer.Option("--seed", help="random seed of the views (the held-out check uses seed + 1)")] = default(GenerateRun, "attack.seed"),
    out: Annotated[Optional[Path], typer.Option("--out", help="output folder", show_default="runs/<target>-<time>; with --resume <RUN_DIR>-resumed-<time>")] = None,
    distance_m: Annotated[Optional[float], typer.Option("--distance", help="metres from the camera where the block will be used: train (and judge) on the coverage a --size-mm block has from 0.7x to 1.4x this distance (--eot held)", show_default="no distance: --scale's broad range")] = None,
    size_mm: Annotated[float, typer.Option("--size-mm", help="printed side of the patch, mm, for --distance (blocks print then defaults to it)")] = default(GenerateRun, "size_mm"),
    fov_deg: Annotated[float, typer.Option("--fov", help="the camera's horizontal field of view, degrees, for --distance")] = default(GenerateRun, "fov_deg"),
    resume: Annotated[Optional[Path], typer.Option("--resume", metavar="DIR", help="continue the patch in DIR (a generate output folder) for --steps more steps, with its settings unless flags say otherwise; written to a new folder", show_default="start from black")] = None,
    autocast: Annotated[str, typer.Option("--autocast", help="the model's forward in bfloat16: auto (on CPUs with AMX or AVX512-BF16), bf16, off")] = default(GenerateRun, "attack.autocast"),
    overwrite: Annotated[bool, typer.Option("--overwrite", help=OVERWRITE_HELP + "; a run stopped by Ctrl-C never replaces a finished patch: it writes patch.partial.png beside it", show_default="off")] = default(GenerateRun, "overwrite"),
):
    """Make a patch from black with EOT negative-epsilon FGSM; write patch.png, patch.json, curve.png.

    Several targets: one folder per target under --out and a summary.json. Under torchrun
    (`torchrun --nproc-per-node N -m blocks generate ...`) each step's views are split across the ranks."""
    generate_from(dict(locals()))  # the parameters alone, before anything else (settings())


def generate_from(flags: dict) -> None:
    """generate's body, apart from its flags (the signature) so that they may grow."""
    run = settings(GenerateRun, flags, targets=flags["targets"] or [], epsilon=flags["epsilon"] / 255,
                   scale=parse_range(flags["scale"], "--scale", *checks.SCALE))  # epsilon: the flag's 0-255 units, once
    done = run_generate(run, progress=functools.partial(generate_bar, max_seconds=flags["max_seconds"]),
                        on_patch=lambda rec, patch: say(rec.lines(patch)), check_progress=views_bar)
    if done.summary is not None:
        say(done.summary.lines())
        typer.echo(f"wrote {done.folders[0].parent / 'summary.json'}", err=True)


@app.command()
@model_options()
def evaluate(
    patch: Annotated[Path, typer.Argument(help="patch PNG")],
    target: Annotated[Optional[str], typer.Option("--target", help="class the patch should become: name, index or word (give --target or --away-from)")] = None,
    away_from: Annotated[Optional[str], typer.Option("--away-from", help="class the patch should stop")] = None,
    models: list = None,  # the model flags (@model_options)
    device: DeviceOpt = default(EvaluateRun, "device"),
    scenes: Annotated[Optional[Path], typer.Option("--scenes", help="folder of background images for the views", show_default=SCENES_DEFAULT.replace("training", "held-out"))] = None,
    scale: Annotated[Optional[str], typer.Option("--scale", metavar="MIN:MAX", help="patch side as a fraction, MIN:MAX: for --eot held of the frame's shorter side (coverage); else of the image side", show_default=SCALE_DEFAULT)] = None,
    eot: Annotated[str, typer.Option("--eot", help="transform preset of the views: " + ", ".join(checks.EOT_PRESETS) + " (held: whole camera frames)")] = default(EvaluateRun, "eot"),
    colormap: Annotated[Optional[Path], typer.Option("--colormap", help="judge the patch as seen through this colour map", show_default="none")] = None,
    n: Annotated[int, typer.Option("--n", help="number of random views")] = default(EvaluateRun, "n"),
    seed: Annotated[int, typer.Option("--seed", help="view seed (differs from training's by default)")] = default(EvaluateRun, "seed"),
    out: Annotated[Optional[Path], typer.Option("--out", help="also write the report as JSON here", show_default="none")] = None,
    json: Annotated[bool, typer.Option("--json", help="print the report as JSON on stdout instead of the summary", show_default="off")] = default(EvaluateRun, "json"),
    overwrite: Annotated[bool, typer.Option("--overwrite", help=OVERWRITE_HELP, show_default="off")] = default(EvaluateRun, "overwrite"),
):
    """Success rate and target probability of a patch on fresh random views: a summary line, the
    full report as JSON on request. With several --model, one row per model on the same views (a
    transfer row)."""
    flags = dict(locals())  # the parameters alone, before anything else (settings())
    report = run_evaluate(settings(EvaluateRun, flags, scale=parse_range(scale, "--scale", *checks.SCALE)),
                          progress=evaluate_bar)
    say([json_text(report.to_json())] if json else report.lines())
    if out is not None:
        typer.echo(f"wrote {out}", err=True)


@app.command()
@model_options()
def sweep(
    image: Annotated[Path, typer.Argument(help="image to attack")],
    target: Annotated[str, typer.Option("--target", help="class to push the image towards: name, index or word")],
    models: list = None,  # the model flags (@model_options)
    device: DeviceOpt = default(SweepRun, "device"),
    eps_range: Annotated[str, typer.Option("--eps", help="epsilon range MIN:MAX in 0-255 units")] = default(SweepRun, "eps_range", "{0:g}:{1:g}"),
    num: Annotated[int, typer.Option("--num", help="number of epsilons")] = default(SweepRun, "num"),
    out: Annotated[Path, typer.Option("--out", help="output folder")] = default(SweepRun, "out"),
    overwrite: Annotated[bool, typer.Option("--overwrite", help=OVERWRITE_HELP, show_default="off")] = default(SweepRun, "overwrite"),
):
    """Single-step FGSM line search: class probabilities against epsilon (plot + JSON)."""
    flags = dict(locals())  # the parameters alone, before anything else (settings())
    say(run_sweep(settings(SweepRun, flags, eps_range=parse_range(eps_range, "--eps", -255, 255))).lines(out))


@app.command("digits-scenes")
def digits_scenes(
    out: Annotated[Path, typer.Argument(help="folder to write train/ and test/ scene PNGs into")],
    exclude: Annotated[Optional[str], typer.Option("--exclude", help="leave out this digit class (the target)", show_default="none")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", help="write at most N digits", show_default="all of them")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help=OVERWRITE_HELP + " (images of an earlier export that this one does not write are left)", show_default="off")] = default(ScenesRun, "overwrite"),
):
    """Export held-out digits as scene images for --scenes (for the bundled digits model)."""
    flags = dict(locals())  # the parameters alone, before anything else (settings())
    say(run_scenes(settings(ScenesRun, flags, source="digits")).lines(out))


@app.command("sample-scenes")
def sample_scenes(
    out: Annotated[Path, typer.Argument(help="folder to write train/ and test/ photos into")],
    overwrite: Annotated[bool, typer.Option("--overwrite", help=OVERWRITE_HELP, show_default="off")] = default(ScenesRun, "overwrite"),
):
    """Export the colour photos that ship with installed packages as scenes, split by photo."""
    flags = dict(locals())  # the parameters alone, before anything else (settings())
    say(run_scenes(settings(ScenesRun, flags, source="photos")).lines(out))


@app.command("print")
def print_sheet(
    patches: Annotated[list[Path], typer.Argument(help="patch images (PNG from `blocks generate`)", show_default=False)],
    out: Annotated[Path, typer.Option("--out", help="PDF to write; sheet.json is written next to it")],
    size_mm: Annotated[Optional[float], typer.Option("--size-mm", help="printed side of one patch, mm (exact)", show_default="the size the patches were trained for (generate --size-mm), else 50")] = default(SheetSettings, "size_mm"),
    page: Annotated[str, typer.Option("--page", help="page size: " + ", ".join(checks.PAGES))] = default(SheetSettings, "page"),
    margin_mm: Annotated[float, typer.Option("--margin-mm", help="blank page margin, mm")] = default(SheetSettings, "margin_mm"),
    layout: Annotated[str, typer.Option("--layout", help="grid (blocks in rows, pages as needed) or cube (foldable net: 1 patch on all faces, or 6)")] = default(SheetSettings, "layout"),
    tile: Annotated[str, typer.Option("--tile", help="RxC: a block is the patch repeated R rows x C columns")] = default(SheetSettings, "tile", "{0}x{1}"),
    markers: Annotated[bool, typer.Option("--markers/--no-markers", help="ArUco markers around each block")] = default(SheetSettings, "markers"),
    marker_mm: Annotated[float, typer.Option("--marker-mm", help="side of each ArUco marker, mm")] = default(SheetSettings, "marker_mm"),
    dpi: Annotated[int, typer.Option("--dpi", help="patch pixels are upscaled (nearest) to at least this resolution")] = default(SheetSettings, "dpi"),
    fov_deg: Annotated[float, typer.Option("--fov", help="the camera's horizontal field of view, degrees: whole-frame patches get the distances they work at for this camera (a typical webcam: 65)")] = default(SheetSettings, "fov_deg"),
    distance_m: Annotated[Optional[float], typer.Option("--distance", help="metres from the camera: pick --size-mm so a whole-frame patch works from there", show_default="use --size-mm")] = None,
    preview: Annotated[bool, typer.Option("--preview", help="also write a PNG of each page next to the PDF", show_default="off")] = default(PrintRun, "preview"),
    overwrite: Annotated[bool, typer.Option("--overwrite", help=OVERWRITE_HELP, show_default="off")] = default(PrintRun, "overwrite"),
):
    """Lay patches out as a print-ready PDF at exact size, with markers, cut marks and sheet.json."""
    flags = dict(locals())  # the parameters alone, before anything else (settings())
    from printing.sheet import preview_paths, sidecar_path

    sheet = settings(SheetSettings, flags, ignore=("patches", "out", "preview", "overwrite"),  # PrintRun's own
                     page=page.lower(), layout=layout.lower(), tile=parse_tile(tile))
    info = run_print(PrintRun(patches, out, sheet, preview, overwrite))
    say(info.lines(out) + [f"wrote {p}" for p in [sidecar_path(out), *(preview_paths(out, info.pages) if preview else [])]])


@app.command()
@model_options(multi=False)
def capture(
    target: Annotated[str, typer.Option("--target", help="class the block should be seen as: name, index or word")],
    source: Annotated[str, typer.Option("--source", help="camera index (0), video file, folder or glob of photos, http:// or rtsp:// stream, screen or screen:X,Y,W,H")] = default(CaptureRun, "source"),
    models: list = None,  # the model flags (@model_options)
    device: DeviceOpt = default(CaptureRun, "device"),
    sheet: Annotated[Optional[Path], typer.Option("--sheet", help="sheet.json from `blocks print`: find and rectify blocks by their markers (a diagnosis beside the whole frame)", show_default="whole frame only")] = None,
    sliding: Annotated[bool, typer.Option("--sliding", help="also scan the frame with a sliding window", show_default="off")] = default(CaptureRun, "loop.sliding"),
    window: Annotated[float, typer.Option("--window", help="sliding window side, fraction of the frame's shorter side")] = default(SlidingSettings, "window"),
    stride: Annotated[float, typer.Option("--stride", help="sliding window step, fraction of the frame's shorter side")] = default(SlidingSettings, "stride"),
    threshold: Annotated[float, typer.Option("--threshold", help="a hit needs the target top-1 with at least this probability")] = default(CaptureRun, "loop.threshold"),
    headless: Annotated[bool, typer.Option("--headless", help="no window (automatic when there is no display)", show_default="off")] = default(CaptureRun, "headless"),
    save_video: Annotated[Optional[Path], typer.Option("--save-video", help="write the annotated stream (.mp4, .avi, .mkv)", show_default="none")] = None,
    log: Annotated[Optional[Path], typer.Option("--log", help="one JSON line per frame", show_default="none")] = None,
    summary: Annotated[Optional[Path], typer.Option("--summary", help="write the summary JSON here (it is always printed)", show_default="none")] = None,
    max_frames: Annotated[Optional[int], typer.Option("--max-frames", help="stop after N frames", show_default="no limit")] = None,
    duration_s: Annotated[Optional[float], typer.Option("--duration", help="stop after S seconds", show_default="no limit")] = None,
    reconnect: Annotated[int, typer.Option("--reconnect", help="streams: reopen a lost stream up to N times in a row")] = default(CaptureRun, "reconnect"),
    reduce: Annotated[str, typer.Option("--reduce", help="how the whole frame becomes the model's square: squash (resize the whole frame) or crop (shorter side to 256/224 of the input, centre square: torchvision's convention)")] = default(CaptureRun, "loop.reduce"),
    overwrite: Annotated[bool, typer.Option("--overwrite", help=OVERWRITE_HELP, show_default="off")] = default(CaptureRun, "overwrite"),
):
    """Classify a camera, video or photos live: overlay, per-frame log, summary. q, Esc or Ctrl-C ends it."""
    flags = dict(locals())  # the parameters alone, before anything else (settings())
    run = settings(CaptureRun, flags, ignore=("window", "stride"), sliding=sliding_of(sliding, window, stride))
    result = run_capture(run, progress=capture_bar,
                         on_headless=lambda: typer.echo("no display found: running headless (no window)", err=True))
    typer.echo(json_text(result))
    written, summaries = capture_kept(run, result), [str(summary)] if summary is not None else []
    say([f"wrote {p}" for p in summaries + written] + ([result.headline()] if result.frames else []), err=True)
    if result.stopped_by == "interrupted":
        raise Interrupted(f"kept {', '.join(written + summaries) or 'the summary above'} ({result.frames} frames)")


@app.command()
def simulate(
    pdf: Annotated[Path, typer.Argument(help="sheet PDF from `blocks print` (its sheet.json is used when present)")],
    out: Annotated[Path, typer.Option("--out", help="video to write (.mp4, .avi, .mkv)")],
    frames: Annotated[int, typer.Option("--frames", help="number of frames")] = default(SimulateRun, "frames"),
    seed: Annotated[int, typer.Option("--seed", help="camera path, lighting and noise seed")] = default(SimulateRun, "seed"),
    fps: Annotated[float, typer.Option("--fps", help="frame rate of the video")] = default(SimulateRun, "fps"),
    block: Annotated[int, typer.Option("--block", help="which block of the sheet the camera films")] = default(SimulateRun, "block"),
    colormap: Annotated[Optional[Path], typer.Option("--colormap", help="film the sheet through this printer-to-camera colour map (colormap.json)", show_default="none")] = None,
    steady_light: Annotated[bool, typer.Option("--steady-light", help="even, constant, neutral light: the colour map is then the only colour change", show_default="off")] = default(SimulateRun, "steady_light"),
    size: Annotated[Optional[str], typer.Option("--size", help="frame size WxH in pixels", show_default=FRAME_SIZE_DEFAULT)] = None,
    scenes: Annotated[Optional[Path], typer.Option("--scenes", help="a photo or a folder of photos: the block is cut out as a card and held up in front of one (the whole frame a camera's classifier sees)", show_default="the page on a table")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help=OVERWRITE_HELP, show_default="off")] = default(SimulateRun, "overwrite"),
):
    """Film a printed sheet with a virtual camera (perspective, light, blur, noise, JPEG) -> a video,
    or one still photo when --out is an image (.png, .jpg; --frames is then 1)."""
    flags = dict(locals())  # the parameters alone, before anything else (settings())
    say(run_simulate(settings(SimulateRun, flags, size=parse_size(size)), progress=simulate_bar).lines(out))


@app.command("onepixel")
@model_options(multi=False)
def onepixel(
    inputs: Annotated[list[Path], typer.Argument(help="image files and/or folders of images")],
    models: list = None,  # the model flags (@model_options)
    target: Annotated[Optional[str], typer.Option("--target", help="class name or index (targeted attack)", show_default="untargeted")] = None,
    pixels: Annotated[int, typer.Option("--pixels", help="pixels changed per image (K)")] = default(OnePixelRun, "attack.pixels"),
    popsize: Annotated[int, typer.Option("--popsize", help="DE: candidates per image")] = default(OnePixelRun, "attack.popsize"),
    maxiter: Annotated[int, typer.Option("--maxiter", help="DE: generations")] = default(OnePixelRun, "attack.maxiter"),
    max_queries: Annotated[int, typer.Option("--max-queries", help="model evaluations per image (0 = paper budget for DE; probe, random: a tenth of it, a hundredth above 64x64 px)")] = default(OnePixelRun, "attack.max_queries"),
    fitness: Annotated[str, typer.Option("--fitness", help="margin (logits), prob (the paper's) or auto (prob for DE)")] = default(OnePixelRun, "attack.fitness"),
    out: Annotated[Path, typer.Option("--out", help="output folder")] = default(OnePixelRun, "out"),
    strategy: Annotated[str, typer.Option("--strategy", help="probe (corner colours), random (Sparse-RS), paper (DE, F=0.5) or best1bin (scipy DE)")] = default(OnePixelRun, "attack.strategy"),
    seed: Annotated[int, typer.Option("--seed", help="random seed")] = default(OnePixelRun, "attack.seed"),
    device: DeviceOpt = default(OnePixelRun, "device"),
    batch: Annotated[int, typer.Option("--batch", help="images per forward pass (0 = auto)")] = default(OnePixelRun, "attack.batch"),
    overwrite: Annotated[bool, typer.Option("--overwrite", help=OVERWRITE_HELP, show_default="off")] = default(OnePixelRun, "overwrite"),
):
    """One-pixel attack on all images at once; writes PNGs, JSON, a contact sheet."""
    flags = dict(locals())  # the parameters alone, before anything else (settings())
    from rich.console import Console

    summary = run_onepixel(settings(OnePixelRun, flags), progress=onepixel_bar)
    Console().print(summary.table())
    typer.echo(f"wrote {out}/summary.json, contact_sheet.png and {len(summary.results)} images", err=True)


@app.command("calibration-sheet")
def calibration_sheet(
    out: Annotated[Path, typer.Option("--out", help="PDF to write; calib.json is written next to it")] = default(CalibrationRun, "out"),
    page: Annotated[str, typer.Option("--page", help="page size: " + ", ".join(checks.PAGES))] = default(CalibrationSettings, "page"),
    swatch_mm: Annotated[float, typer.Option("--swatch-mm", help="side of each colour swatch")] = default(CalibrationSettings, "swatch_mm"),
    marker_mm: Annotated[float, typer.Option("--marker-mm", help="side of each corner ArUco marker")] = default(CalibrationSettings, "marker_mm"),
    margin_mm: Annotated[float, typer.Option("--margin-mm", help="blank border of the page")] = default(CalibrationSettings, "margin_mm"),
    levels: Annotated[int, typer.Option("--levels", help="steps per channel of the RGB grid (levels^3 colours)")] = default(CalibrationSettings, "levels"),
    preview: Annotated[bool, typer.Option("--preview", help="also write a PNG of the page", show_default="off")] = default(CalibrationRun, "preview"),
    overwrite: Annotated[bool, typer.Option("--overwrite", help=OVERWRITE_HELP, show_default="off")] = default(CalibrationRun, "overwrite"),
):
    """A page of colour swatches with ArUco markers, and its calib.json, to measure printer + camera colours."""
    flags = dict(locals())  # the parameters alone, before anything else (settings())
    from printing.sheet import preview_paths, sidecar_path

    sheet = settings(CalibrationSettings, flags, ignore=("out", "preview", "overwrite"))  # CalibrationRun's own
    info = run_calibration_sheet(CalibrationRun(out, sheet, preview, overwrite))
    say(info.lines([sidecar_path(out), *(preview_paths(out, info.pages) if preview else []), out], swatch_mm, page))


@app.command("calibrate")
def calibrate_cmd(
    source: Annotated[str, typer.Argument(help="photo, video, or folder/glob of photos of the printed calibration sheet")],
    sheet: Annotated[Path, typer.Option("--sheet", help="calib.json from `blocks calibration-sheet`")],
    out: Annotated[Path, typer.Option("--out", help="colour map to write (JSON)")] = default(CalibrateRun, "out"),
    max_frames: Annotated[int, typer.Option("--max-frames", help="video: frames (where the sheet is found) to average")] = default(CalibrateRun, "max_frames"),
    step: Annotated[int, typer.Option("--step", help="video: look at every STEP-th frame")] = default(CalibrateRun, "step"),
    overwrite: Annotated[bool, typer.Option("--overwrite", help=OVERWRITE_HELP, show_default="off")] = default(CalibrateRun, "overwrite"),
):
    """Fit the printer-to-camera colour map from a photo or video of the calibration sheet."""
    flags = dict(locals())  # the parameters alone, before anything else (settings())
    cmap = run_calibrate(settings(CalibrateRun, flags))
    say(cmap.lines(out))
    say(cmap.warnings(), err=True)
