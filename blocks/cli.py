"""The `blocks` command: a thin typer layer over the Python API. Bad input -> one line, exit 2."""
from __future__ import annotations

import functools
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer

from blocks import checks
from blocks.first_line import DEFAULT_MODEL, loading_line  # noqa: F401 (cli.loading_line: the same line)
# The settings dataclasses are the one home of every default: the flags below read theirs from
# them (these modules import no torch, so --help and the Ctrl-C guard stay fast).
from blocks.commands.calibrate import CalibrateRun
from blocks.commands.calibration_sheet import CalibrationRun
from blocks.commands.capture import CaptureRun
from blocks.commands.evaluate import EvaluateRun
from blocks.commands.generate import GenerateRun
from blocks.commands.onepixel import OnePixelRun
from blocks.commands.print_sheet import PrintRun
from blocks.commands.scenes import ScenesRun
from blocks.commands.simulate import SimulateRun
from blocks.commands.sweep import SweepRun
from common.errors import Interrupted, UserError, shown
from printing.calibration import CalibrationSettings
from printing.sheet import SheetSettings

def _flags_take_no_value() -> None:
    """typer 0.29 writes a type after every option in --help, flags too (`--version <bool>`); a
    flag takes no value, so it shows none."""
    from typer.core import TyperOption

    shown = TyperOption.display_type_rich
    if getattr(shown, "flags_take_no_value", False):
        return

    def display_type_rich(self, ctx):
        return None if self.is_flag else shown(self, ctx)

    display_type_rich.flags_take_no_value = True
    TyperOption.display_type_rich = display_type_rich


_flags_take_no_value()

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Physical-world adversarial blocks: generate, print, capture, one-pixel.")

# Defaults are shown by typer's show_default (text written into a help string as "[default: x]"
# is rich markup, and vanishes); computed ones (None in the settings) say in words what they are.
MODEL_HELP = ("efficientnet_lite0 (embedded ImageNet, offline; efficientnet_lite1/2 with the zoo extra), a "
              "torchvision name, timm:NAME, a .pt2/TorchScript file, or digits")

# Shared `[model flags]`: every command that runs a classifier takes these, through @model_options.
ModelOpt = Annotated[Optional[list[str]], typer.Option("--model", metavar="NAME", show_default=DEFAULT_MODEL,
                                                       help=MODEL_HELP + "; repeat it for an ensemble")]
OneModelOpt = Annotated[Optional[list[str]], typer.Option("--model", metavar="NAME", show_default=DEFAULT_MODEL,
                                                          help=MODEL_HELP + "; one model (this command takes no ensemble)")]
ModelsFileOpt = Annotated[Optional[Path], typer.Option("--models", metavar="FILE", help="an ensemble whose members need their own flags: a TOML or JSON file listing models, each with keys model, weights, labels, input_size, mean, std")]
OneModelFileOpt = Annotated[Optional[Path], typer.Option("--models", metavar="FILE", help="a TOML or JSON file naming the model with keys model, weights, labels, input_size, mean, std (one entry: this command takes no ensemble)")]
WeightsOpt = Annotated[Optional[Path], typer.Option("--weights", help="state dict file for --model (loaded with weights_only=True)")]
LabelsOpt = Annotated[Optional[Path], typer.Option("--labels", help="class names, one per line (sets the number of classes)")]
InputSizeOpt = Annotated[Optional[int], typer.Option("--input-size", help="side in pixels the model expects", show_default="the model's own")]
MeanOpt = Annotated[Optional[str], typer.Option("--mean", help="normalisation mean R,G,B", show_default="the model's own")]
StdOpt = Annotated[Optional[str], typer.Option("--std", help="normalisation std R,G,B", show_default="the model's own")]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto (CUDA, then MPS, then CPU), cpu, cuda, mps")]


def version_text() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"blocks (deep-chicken-saviour) {version('deep-chicken-saviour')}"
    except PackageNotFoundError:  # run from a checkout that pip never installed
        return "blocks (deep-chicken-saviour), not installed: no version"


def _version(value: bool) -> None:
    if value:
        typer.echo(version_text())
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="print the version and exit")] = False,
) -> None:
    """Physical-world adversarial blocks: generate, print, capture, one-pixel."""


MODEL_FLAGS = ("model", "models_file", "weights", "labels", "input_size", "mean", "std")


def model_options(multi: bool = True):
    """Give a command the model flags in place of its `models` parameter, which then receives
    one list[ModelSpec] (several for an ensemble). multi=False: the command takes one model."""
    import functools
    import inspect

    flags = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=ann, default=None)
             for name, ann in zip(MODEL_FLAGS, (ModelOpt if multi else OneModelOpt,
                                                ModelsFileOpt if multi else OneModelFileOpt, WeightsOpt,
                                                LabelsOpt, InputSizeOpt, MeanOpt, StdOpt))]

    def decorate(command):
        sig = inspect.signature(command, eval_str=True)
        params = []
        for p in sig.parameters.values():
            params += flags if p.name == "models" else [p.replace(kind=inspect.Parameter.KEYWORD_ONLY)]

        @functools.wraps(command)
        def wrapper(**kwargs):
            values = {k: kwargs.pop(k) for k in MODEL_FLAGS}
            specs = model_specs(**values)
            if not multi and len(specs) > 1:
                raise UserError(f"{command.__name__} runs one model at a time, not {len(specs)}: "
                                f"give one --model")
            return command(models=specs, **kwargs)

        wrapper.__signature__ = sig.replace(parameters=params)  # typer reads the flags from here
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        return wrapper

    return decorate


def model_specs(model: list[str] | None, models_file: Path | None, weights: Path | None = None,
                labels: Path | None = None, input_size: int | None = None, mean: str | None = None,
                std: str | None = None) -> list:
    """The models the flags name: each --model, then each entry of the --models file."""
    names = list(model or [])
    per_model = [f for f, v in (("--weights", weights), ("--labels", labels), ("--input-size", input_size),
                                ("--mean", mean), ("--std", std)) if v is not None]
    if per_model and (len(names) > 1 or models_file is not None):
        raise UserError(f"{', '.join(per_model)} apply to a single --model; with several models give "
                        f"each its own in a --models FILE (TOML or JSON entries with keys model, weights, "
                        f"labels, input_size, mean, std)")
    specs = [model_spec(n, weights, labels, input_size, mean, std) for n in names]
    if models_file is not None:
        from blocks.models.model_list import read_model_list

        specs += read_model_list(models_file)
    return specs or [model_spec(DEFAULT_MODEL, weights, labels, input_size, mean, std)]


def model_spec(model: str, weights: Path | None, labels: Path | None, input_size: int | None,
               mean: str | None, std: str | None):
    from blocks.models.spec import ModelSpec

    mean, std = parse_floats(mean, "--mean", 3), parse_floats(std, "--std", 3)
    checks.model_numbers(input_size, mean, std)
    return ModelSpec(name=model, weights=weights, labels=labels, input_size=input_size, mean=mean, std=std)


def parse_floats(text: str | None, flag: str, n: int | None = None) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        values = tuple(float(v) for v in text.replace(":", ",").split(","))
    except ValueError:
        raise UserError(f"{flag} takes numbers separated by commas, not {text!r}") from None
    if n is not None and len(values) != n:
        raise UserError(f"{flag} takes {n} numbers, not {text!r}")
    return values


def parse_range(text: str | None, flag: str, lo: float = 0.0, hi: float = float("inf")):
    """'MIN:MAX' -> (min, max), checked to lie within [lo, hi]."""
    if text is None:
        return None
    try:
        values = parse_floats(text, flag)
    except UserError:
        values = ()
    if len(values) == 1:
        values = (values[0], values[0])
    if len(values) != 2 or not (lo <= values[0] <= values[1] <= hi):
        raise UserError(f"{flag} takes MIN:MAX with {lo:g} <= MIN <= MAX <= {hi:g}, not {text!r}")
    return values


def emit_json(obj) -> None:
    """obj as JSON on stdout (common.files.json_text: strict, no NaN)."""
    from common.files import json_text

    typer.echo(json_text(obj))


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
    typer.echo(shown(picked_line(query, names)))
    for i, name in hits:
        typer.echo(f"{i:5d}  {shown(name)}")


def class_names(specs: list) -> list[str]:
    """Class names without loading weights (so `targets` works offline); an ensemble's members
    must agree on them."""
    from blocks.models import class_names as names, check_same_classes

    lists = [(s.name, names(s)) for s in specs]
    check_same_classes(lists)
    return lists[0][1]


@app.command("models")
def list_models_cmd():
    """List the models that run offline right now: embedded, bundled and cached weights."""
    from blocks.models import offline_models

    for m in offline_models():
        typer.echo(f"{m['model']:<28} {m['source']:<9} {m['input_size']:>4} px  {m['num_classes']:>5} classes")


SMOOTH_DEFAULT = "0.8 for an ensemble, 0 for one model"  # blocks.attacks.eot_fgsm.smoothing (tests/test_help.py)
SCALE_DEFAULT = "0.15:0.45 for --eot held; else 0.8:1.0, 0.4:0.6 with --scenes"  # blocks.commands.shared.default_scale (tests/test_help.py)
SCENES_DEFAULT = "--eot held: the shipped sample photos, training side; else plain random backgrounds"
EVAL_SCENES_DEFAULT = "--scenes; --eot held without --scenes: the shipped photos' held-out side"
FRAME_SIZE_DEFAULT = "640x480"
OVERWRITE_HELP = "replace outputs that exist already (without it, an existing output is an error and nothing runs)"  # transforms.camera.CameraSettings.size (tests/test_help.py)


def default(cls, name: str, text: str | None = None):
    """The default of field `name` of the settings dataclass `cls`, for a flag to show and use;
    text: a format for a tuple a flag takes as text ("{0:g}:{1:g}" for MIN:MAX)."""
    import dataclasses

    f = {f.name: f for f in dataclasses.fields(cls)}[name]
    value = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
    return text.format(*value) if text else value


def settings(cls, values: dict, ignore: tuple[str, ...] = (), **parsed):
    """The settings dataclass `cls` from a command's flags: values are the command's parameters
    (`flags = dict(locals())`, taken before anything else in its body), each named as a field of
    cls; parsed values replace them. Strict: a name that is no field of cls raises TypeError (a
    programming error: a renamed field or parameter would otherwise keep its old default without a
    word), unless the command consumes it itself and names it in ignore."""
    import dataclasses

    names = {f.name for f in dataclasses.fields(cls)}
    given = {**values, **parsed}
    for name in ignore:
        if name not in given or name in names:
            raise TypeError(f"settings({cls.__name__}): ignore={name!r} names "
                            f"{'a field' if name in names else 'no parameter of the command'}")
    unknown = sorted(set(given) - names - set(ignore))
    if unknown:
        raise TypeError(f"settings({cls.__name__}): {', '.join(unknown)} is no field of {cls.__name__} "
                        f"(rename the parameter or the field, or pass it in ignore=)")
    return cls(**{k: v for k, v in given.items() if k not in ignore})


PLAIN_EVERY_S = 10.0  # seconds between progress lines when the bar's stream is not a terminal


def progress_console(stderr: bool = False):
    """Where a bar goes: stdout when the command leaves it free (stderr=False) and it is a
    terminal, else stderr (so `blocks generate > log` still shows the bar on the terminal)."""
    from rich.console import Console

    if not stderr:
        out = Console()
        if out.is_terminal:
            return out
    return Console(stderr=True)


class PlainLines:
    """A rich Progress seen through a stream that is not a terminal (a log file, a pipe): rich
    would print the bar once, at the end; this prints it as a plain line at the first update and
    then every PLAIN_EVERY_S seconds."""

    def __init__(self, progress, clock=None):
        import time

        self.progress, self.clock, self.last = progress, clock or time.monotonic, None

    def update(self, task, **kwargs) -> None:
        self.progress.update(task, **kwargs)
        now, (t,) = self.clock(), [t for t in self.progress.tasks if t.id == task]
        if t.finished:  # rich prints the finished bar itself
            return
        if self.last is None or now - self.last >= PLAIN_EVERY_S:
            self.last = now
            self.progress.console.print(self.progress.make_tasks_table([t]))


@contextmanager
def bar(label: str, total, *columns, stderr: bool = False, **fields):
    """A rich progress bar (stderr when stdout carries JSON, or is not a terminal); yields
    (progress, task). Where no terminal shows it: plain lines every PLAIN_EVERY_S seconds."""
    from rich.markup import escape
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    console = progress_console(stderr)
    shown_label = escape(shown(label)).replace("{", "{{").replace("}", "}}")  # a class name is no format or markup
    with Progress(TextColumn(shown_label), BarColumn(), *columns, TimeElapsedColumn(), transient=False,
                  console=console) as progress:
        task = progress.add_task(label, total=total, **fields)
        yield (progress if console.is_terminal else PlainLines(progress)), task


def clock_text(seconds: float) -> str:
    seconds = max(0, round(seconds))
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


def generate_eta(done: int, steps: int, seconds: float, max_seconds: float | None) -> tuple[float, str]:
    """(share of the run done, 'ETA m:ss') after `done` steps in `seconds`: the run ends at its
    last step or at max_seconds, whichever comes first (then the ETA says 'clock')."""
    by_steps = (steps - done) * seconds / max(done, 1)
    share = done / steps
    if max_seconds and max_seconds - seconds < by_steps:
        return max(share, min(seconds / max_seconds, 1.0)), f"ETA {clock_text(max_seconds - seconds)} (clock)"
    return share, f"ETA {clock_text(by_steps)}"


@contextmanager
def generate_bar(label: str, total: int, max_seconds: float | None = None):
    """Steps, loss, p(target) and an ETA; the bar fills with whichever limit ends the run first."""
    from rich.progress import TextColumn

    with bar(label, total, TextColumn("step {task.fields[step]}/" + str(total)), TextColumn("loss {task.fields[loss]}"),
             TextColumn("p(target) {task.fields[prob]}"), TextColumn("{task.fields[eta]}"),
             step=0, loss="-", prob="-", eta="ETA -") as (p, task):
        def update(r):
            share, eta = generate_eta(r.step + 1, total, r.seconds, max_seconds)
            p.update(task, completed=share * total, step=r.step + 1, loss=f"{r.loss:.3f}",
                     prob=f"{r.objective_prob:.3f}", eta=eta)

        yield update


@contextmanager
def views_bar(label: str, total: int):
    """The held-out check: views judged of all it renders."""
    from rich.progress import MofNCompleteColumn, TextColumn

    with bar(label, total, MofNCompleteColumn(), TextColumn("views")) as (p, task):
        yield lambda n: p.update(task, advance=n)


@app.command()
@model_options()
def generate(
    targets: Annotated[Optional[list[str]], typer.Option("--target", help="class to become: name, index or word (chicken); repeat it for one patch per target (give one of --target, --targets-file, --away-from)")] = None,
    targets_file: Annotated[Optional[Path], typer.Option("--targets-file", help="text file of targets, one per line: one patch each, model loaded once")] = None,
    away_from: Annotated[Optional[str], typer.Option("--away-from", help="class to stop being (positive epsilon)")] = None,
    models: list = None,  # the model flags (@model_options)
    device: DeviceOpt = default(GenerateRun, "device"),
    patch_size: Annotated[Optional[int], typer.Option("--patch-size", help="patch side in pixels", show_default="half the model input")] = None,
    steps: Annotated[int, typer.Option("--steps", help="FGSM steps (the run may end sooner: --max-seconds)")] = default(GenerateRun, "steps"),
    epsilon: Annotated[float, typer.Option("--epsilon", help="first step size in 0-255 units (negative-epsilon FGSM step)")] = default(GenerateRun, "epsilon"),
    final_fraction: Annotated[float, typer.Option("--final-fraction", help="last step size as a fraction of the first")] = default(GenerateRun, "final_fraction"),
    schedule: Annotated[str, typer.Option("--schedule", help="step-size schedule: cosine, linear, constant")] = default(GenerateRun, "schedule"),
    batch: Annotated[int, typer.Option("--batch", help="random views per step")] = default(GenerateRun, "batch"),
    momentum: Annotated[float, typer.Option("--momentum", help="sign of a running mean of gradients (0 = plain FGSM)")] = default(GenerateRun, "momentum"),
    smooth: Annotated[Optional[float], typer.Option("--smooth", help="Gaussian gradient smoothing, sigma in patch pixels (transfers better to unseen models; 0 = off)", show_default=SMOOTH_DEFAULT)] = None,
    members: Annotated[str, typer.Option("--members", help="ensembles: balance (each member's gradient at equal size), mean (loss of the mean log-probability) or cycle (one member per step, in turn)")] = default(GenerateRun, "members"),
    scale: Annotated[Optional[str], typer.Option("--scale", metavar="MIN:MAX", help="patch side as a fraction, MIN:MAX: for --eot held of the frame's shorter side (the patch's coverage: how close the camera is); for the other presets of the image side", show_default=SCALE_DEFAULT)] = None,
    scenes: Annotated[Optional[Path], typer.Option("--scenes", help="folder of background photos", show_default=SCENES_DEFAULT)] = None,
    eval_scenes: Annotated[Optional[Path], typer.Option("--eval-scenes", help="backgrounds for the held-out check", show_default=EVAL_SCENES_DEFAULT)] = None,
    eot: Annotated[str, typer.Option("--eot", help="views to train for: " + ", ".join(checks.EOT_PRESETS) + " (held: the whole camera frame, the printed card held up in a scene; docs/generate.md)")] = default(GenerateRun, "eot"),
    max_seconds: Annotated[Optional[float], typer.Option("--max-seconds", help="stop after S seconds (wall clock), keeping the best patch; the schedule then follows the clock too; 0 = no limit", show_default="no limit")] = None,
    colormap: Annotated[Optional[Path], typer.Option("--colormap", help="measured printer-to-camera colour map (blocks calibrate)", show_default="none")] = None,
    printability: Annotated[float, typer.Option("--printability", help="weight of the non-printability penalty")] = default(GenerateRun, "printability"),
    tv: Annotated[float, typer.Option("--tv", help="weight of the total-variation penalty")] = default(GenerateRun, "tv"),
    eval_n: Annotated[int, typer.Option("--eval-n", help="held-out random views for the final success rate")] = default(GenerateRun, "eval_n"),
    seed: Annotated[int, typer.Option("--seed", help="random seed of the views (the held-out check uses seed + 1)")] = default(GenerateRun, "seed"),
    out: Annotated[Optional[Path], typer.Option("--out", help="output folder", show_default="runs/<target>-<time>; with --resume <RUN_DIR>-resumed-<time>")] = None,
    distance_m: Annotated[Optional[float], typer.Option("--distance", help="metres from the camera where the block will be used: train (and judge) on the coverage a --size-mm block has from 0.7x to 1.4x this distance (--eot held)", show_default="no distance: --scale's broad range")] = None,
    size_mm: Annotated[float, typer.Option("--size-mm", help="printed side of the patch, mm, for --distance (blocks print then defaults to it)")] = default(GenerateRun, "size_mm"),
    fov_deg: Annotated[float, typer.Option("--fov", help="the camera's horizontal field of view, degrees, for --distance")] = default(GenerateRun, "fov_deg"),
    resume: Annotated[Optional[Path], typer.Option("--resume", metavar="DIR", help="continue the patch in DIR (a generate output folder) for --steps more steps, with its settings unless flags say otherwise; written to a new folder", show_default="start from black")] = None,
    autocast: Annotated[str, typer.Option("--autocast", help="the model's forward in bfloat16: auto (on CPUs with AMX or AVX512-BF16), bf16, off")] = default(GenerateRun, "autocast"),
    overwrite: Annotated[bool, typer.Option("--overwrite", help=OVERWRITE_HELP + "; a run stopped by Ctrl-C never replaces a finished patch: it writes patch.partial.png beside it", show_default="off")] = default(GenerateRun, "overwrite"),
):
    """Make a patch from black with EOT negative-epsilon FGSM; write patch.png, patch.json, curve.png.

    Several targets: one folder per target under --out and a summary.json. Under torchrun
    (`torchrun --nproc-per-node N -m blocks generate ...`) each step's views are split across the ranks."""
    generate_from(dict(locals()))  # the parameters alone, before any import (settings())


def generate_from(flags: dict) -> None:
    """generate's body, apart from its flags (the signature) so that they may grow."""
    from blocks.commands.generate import run_generate

    scale = parse_range(flags["scale"], "--scale", *checks.SCALE)
    run = settings(GenerateRun, flags, targets=flags["targets"] or [], scale=scale)
    done = run_generate(run, progress=functools.partial(generate_bar, max_seconds=flags["max_seconds"]),
                        on_patch=print_patch, check_progress=views_bar)
    if done.summary is not None:
        print_generate_summary(done.summary, done.folders[0].parent)


def print_patch(rec, patch: Path) -> None:
    typer.echo(held_out_line(rec, patch))
    ev = rec.held_out or {}
    if ev.get("by_coverage"):  # whole frames: success by how much of the frame the patch covers
        bins = " | ".join(f"{k} {v['success_rate']:.0%}" for k, v in ev["by_coverage"].items())
        typer.echo(f"  whole-frame success by coverage (patch side / frame's shorter side): {bins}")
        typer.echo("  " + works_text(ev.get("works_from"), rec.scale, (rec.reach or {}).get("size_mm", 50.0)))
    for line in reach_lines(rec):
        typer.echo("  " + line)
    if len(rec.members or []) > 1:
        for row in rec.members:
            typer.echo(f"  {row['model']}: held-out success {row['success_rate']:.1%}")
    steps = (rec.config or {}).get("steps")
    if rec.stopped == "time" and steps and rec.steps_run < CLOCK_WARNING * steps:
        typer.echo(f"stopped by the clock after {rec.steps_run} of {steps} steps: the patch may be weak; "
                   f"give more time or a GPU")


def reach_lines(rec) -> list[str]:
    """--distance: the success where the block will be used; --resume: what the run continued."""
    lines = []
    r, was = rec.reach, rec.resumed_from
    if r and r.get("success") is not None:
        near, far = r["band_m"]
        lines.append(f"at {r['distance_m']:g} m (people move: {near:g}-{far:g} m), a {r['size_mm']:g} mm block, "
                     f"{r['fov_deg']:g} degree camera: whole-frame success {r['success']:.1%}")
    if was:
        before = "-" if was.get("held_out_success") is None else f"{was['held_out_success']:.1%}"
        now = (rec.held_out or {}).get("success_rate")
        lines.append(f"resumed {was['folder']} after its {was['steps_run']} steps (held-out {before} then, "
                     f"{'-' if now is None else f'{now:.1%}'} now; best step {rec.best_step} of {rec.steps_run})")
    return lines


CLOCK_WARNING = 0.5  # a run the clock stopped before this share of its steps gets the warning line


def held_out_line(rec, patch: Path) -> str:
    """The final line, from patch.json's held_out: the figure, and what it measured (the views)."""
    ev = rec.held_out
    parts = [f"held-out success {ev['success_rate']:.1%}, mean target prob {ev['mean_target_prob']:.3f} "
             f"over {ev['n']} views"]
    views = ev.get("views")
    if views and views.get("whole_frame"):  # the figure is the camera's classifier's, on whole frames
        lo, hi = views["scale"]
        parts.append(f"of whole camera frames (the printed card held up before held-out photos, "
                     f"{views['scene_images']} crops; patch side {lo:.2f}-{hi:.2f} of the frame's shorter side; "
                     f"4:3 and 16:9 frames squashed or centre-cropped)")
    elif views:
        lo, hi = views["scale"]
        side = f"{lo:.2f}" if lo == hi else f"{lo:.2f}-{hi:.2f}"
        where = (f"in {views['scene_images']} held-out scene photos" if views["scenes"] else
                 "on plain random backgrounds: no --scenes")
        parts.append(f"({views['eot']} views, patch side {side} of the view, {where})")
    return f"{shown(rec.target.name)}: {' '.join(parts)} -> {patch}"


def works_text(works_from, trained, size_mm: float = 50.0) -> str:
    """'works from coverage 0.2: a 50 mm block at 0.10-0.26 m from a 65 degree webcam'."""
    from common.distance import WEBCAM_FOV_DEG, describe

    if works_from is None:
        return (f"not yet >= 90% at any coverage: give it more time (--max-seconds) or a GPU; trained for "
                f"coverage {trained[0]:g}-{trained[1]:g} ({describe(size_mm, tuple(trained), WEBCAM_FOV_DEG)})")
    return (f"works from coverage {works_from:g}: {describe(size_mm, (works_from, max(works_from, trained[1])), WEBCAM_FOV_DEG)}"
            f" (blocks print --size-mm / --distance)")


def print_generate_summary(summary, out: Path) -> None:
    typer.echo(f"{'target':<24} {'index':>5} {'held-out':>9} {'p(target)':>9} {'best step':>9} {'seconds':>8}  folder")
    for r in summary.targets:
        success = "-" if r.held_out_success is None else f"{r.held_out_success:.1%}"
        prob = "-" if r.mean_target_prob is None else f"{r.mean_target_prob:.3f}"
        typer.echo(f"{shown(r.target.label())[:24]:<24} {r.target.index:>5} {success:>9} {prob:>9} {r.best_step:>9} "
                   f"{r.seconds:>8.1f}  {r.folder}")
    typer.echo(f"wrote {out / 'summary.json'}", err=True)


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
    flags = dict(locals())  # the parameters alone, before any import (settings())
    from blocks.commands.evaluate import run_evaluate

    run = settings(EvaluateRun, flags, scale=parse_range(scale, "--scale", *checks.SCALE))
    report = run_evaluate(run, progress=evaluate_bar)
    if json:
        emit_json(report.to_json())
    else:
        for line in evaluate_lines(report):
            typer.echo(line)
    if out is not None:
        typer.echo(f"wrote {out}", err=True)


@contextmanager
def evaluate_bar(label: str, total: int):
    """Views judged, on stderr (stdout may carry the JSON)."""
    from rich.progress import MofNCompleteColumn, TextColumn, TimeRemainingColumn

    with bar(label, total, MofNCompleteColumn(), TextColumn("views"), TimeRemainingColumn(), stderr=True) as (p, task):
        yield lambda n: p.update(task, advance=n)


def evaluate_lines(r) -> list[str]:
    """`blocks evaluate`'s summary: a table for several models; for one, the line generate ends
    with (success by coverage for whole frames, and the distances it works at)."""
    if r.models is not None:
        width = max(len(shown(m.model)) for m in r.models)
        return [f"{'model':<{width}}  success  p(target)  top-5   ({shown(r.target.name)}, {r.n} views)",
                *(f"{shown(m.model):<{width}}  {m.success_rate:7.1%}  {m.mean_target_prob:9.3f}  {m.top5_rate:6.1%}"
                  for m in r.models)]
    lo, hi = r.scale
    what = "of whole camera frames" if r.by_coverage else f"({r.eot} views)"
    lines = [f"{shown(r.target.name)}: success {r.success_rate:.1%}, mean target prob {r.mean_target_prob:.3f}, "
             f"top-5 {r.top5_rate:.1%} over {r.n} views {what}, patch side {lo:.2f}-{hi:.2f} ({r.model})"]
    if r.by_coverage:
        bins = " | ".join(f"{k} {v['success_rate']:.0%}" for k, v in r.by_coverage.items())
        lines += [f"  whole-frame success by coverage (patch side / frame's shorter side): {bins}",
                  "  " + works_text(r.works_from, r.scale)]
    return lines


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
    flags = dict(locals())  # the parameters alone, before any import (settings())
    from blocks.commands.sweep import run_sweep

    rec = run_sweep(settings(SweepRun, flags, eps_range=parse_range(eps_range, "--eps", -255, 255)))
    typer.echo(f"best epsilon {rec.best_epsilon_255:.1f}/255: p({shown(rec.target.name)}) = "
               f"{rec.best_target_prob:.3f} -> {out}/sweep.png")


@app.command("digits-scenes")
def digits_scenes(
    out: Annotated[Path, typer.Argument(help="folder to write train/ and test/ scene PNGs into")],
    exclude: Annotated[Optional[str], typer.Option("--exclude", help="leave out this digit class (the target)", show_default="none")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", help="write at most N digits", show_default="all of them")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help=OVERWRITE_HELP + " (images of an earlier export that this one does not write are left)", show_default="off")] = default(ScenesRun, "overwrite"),
):
    """Export held-out digits as scene images for --scenes (for the bundled digits model)."""
    flags = dict(locals())  # the parameters alone, before any import (settings())
    from blocks.commands.scenes import run_scenes

    info = run_scenes(settings(ScenesRun, flags, source="digits"))
    typer.echo(f"wrote {info.train + info.test} held-out digits to {out}/train and {out}/test")


@app.command("sample-scenes")
def sample_scenes(
    out: Annotated[Path, typer.Argument(help="folder to write train/ and test/ photos into")],
    overwrite: Annotated[bool, typer.Option("--overwrite", help=OVERWRITE_HELP, show_default="off")] = default(ScenesRun, "overwrite"),
):
    """Export the colour photos that ship with installed packages as scenes, split by photo."""
    flags = dict(locals())  # the parameters alone, before any import (settings())
    from blocks.commands.scenes import run_scenes

    info = run_scenes(settings(ScenesRun, flags, source="photos"))
    typer.echo(f"wrote {info.train} training photos to {out}/train and {info.test} "
               f"held-out photos to {out}/test")


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
    flags = dict(locals())  # the parameters alone, before any import (settings())
    from blocks.commands.print_sheet import run_print
    from printing import SheetSettings, parse_tile

    sheet = settings(SheetSettings, flags, ignore=("patches", "out", "preview", "overwrite"),  # PrintRun's own
                     page=page.lower(), layout=layout.lower(), tile=parse_tile(tile))
    info = run_print(PrintRun(patches, out, sheet, preview, overwrite))
    n = len(info.blocks)
    what = f"{n} block{'s' if n != 1 else ''}" if info.layout == "grid" else "a cube net (6 faces)"
    typer.echo(f"wrote {out}: {what} on {info.pages} page(s); print at 100% scale")
    for b in info.blocks if info.layout == "grid" else info.blocks[:1]:
        if b.distance_m is not None:
            typer.echo(f"  {shown(b.target.label()) if b.target else 'block'}: {b.patch_size_mm:g} mm block works {b.distance_m[0]:.2f}-"
                       f"{b.distance_m[1]:.2f} m from a {b.fov_deg:g} degree camera (the whole frame)")
    from printing.sheet import preview_paths, sidecar_path

    for p in [sidecar_path(out), *(preview_paths(out, info.pages) if preview else [])]:
        typer.echo(f"wrote {p}")


@contextmanager
def capture_bar(label: str, total):
    """Frames read; the whole frame's hits first (the headline), then any view's (blocks, windows)."""
    from rich.progress import TextColumn, TimeRemainingColumn

    hits = [0, 0]
    known = (TextColumn("ETA"), TimeRemainingColumn()) if total else ()  # a video's frames are counted; a camera's are not
    with bar(label, total, TextColumn("frame {task.completed}"), TextColumn("p(target) {task.fields[prob]:.3f}"),
             TextColumn("whole-frame hits {task.fields[frame]}"), TextColumn("any-view hits {task.fields[hits]}"),
             *known, stderr=True, prob=0.0, hits=0, frame=0) as (p, task):
        def update(r):
            hits[0] += r.frame_hit
            hits[1] += r.hit
            p.update(task, advance=1, prob=r.frame_target_prob, frame=hits[0], hits=hits[1])

        yield update


def capture_headline(s) -> str:
    """The last line of a capture: the whole frame's hit rate (what a classifier behind the camera
    sees), then the blocks' (--sheet) and any view's as a diagnosis."""
    name = shown(s.target.label()) if s.target else "the target"
    line = (f"whole frame: {name} in {round(s.frame_hit_rate * s.frames)} of {s.frames} frames "
            f"({s.frame_hit_rate:.1%}), mean p({name}) {s.frame_mean_target_prob:.3f}")
    extra = []
    if s.found_rate is not None:
        found = round(s.found_rate * s.frames)
        extra.append(f"block found in {found} frames, read as {name} in "
                     f"{round((s.block_hit_rate or 0) * found)} ({(s.block_hit_rate or 0):.1%})")
    if s.hit_rate != s.frame_hit_rate or extra:
        extra.append(f"any view {s.hit_rate:.1%}")
    return line + (f"; diagnosis: {', '.join(extra)}" if extra else "")


@app.command()
@model_options(multi=False)
def capture(
    target: Annotated[str, typer.Option("--target", help="class the block should be seen as: name, index or word")],
    source: Annotated[str, typer.Option("--source", help="camera index (0), video file, folder or glob of photos, http:// or rtsp:// stream, screen or screen:X,Y,W,H")] = default(CaptureRun, "source"),
    models: list = None,  # the model flags (@model_options)
    device: DeviceOpt = default(CaptureRun, "device"),
    sheet: Annotated[Optional[Path], typer.Option("--sheet", help="sheet.json from `blocks print`: find and rectify blocks by their markers (a diagnosis beside the whole frame)", show_default="whole frame only")] = None,
    sliding: Annotated[bool, typer.Option("--sliding", help="also scan the frame with a sliding window", show_default="off")] = default(CaptureRun, "sliding"),
    window: Annotated[float, typer.Option("--window", help="sliding window side, fraction of the frame's shorter side")] = default(CaptureRun, "window"),
    stride: Annotated[float, typer.Option("--stride", help="sliding window step, fraction of the frame's shorter side")] = default(CaptureRun, "stride"),
    threshold: Annotated[float, typer.Option("--threshold", help="a hit needs the target top-1 with at least this probability")] = default(CaptureRun, "threshold"),
    headless: Annotated[bool, typer.Option("--headless", help="no window (automatic when there is no display)", show_default="off")] = default(CaptureRun, "headless"),
    save_video: Annotated[Optional[Path], typer.Option("--save-video", help="write the annotated stream (.mp4, .avi, .mkv)", show_default="none")] = None,
    log: Annotated[Optional[Path], typer.Option("--log", help="one JSON line per frame", show_default="none")] = None,
    summary: Annotated[Optional[Path], typer.Option("--summary", help="write the summary JSON here (it is always printed)", show_default="none")] = None,
    max_frames: Annotated[Optional[int], typer.Option("--max-frames", help="stop after N frames", show_default="no limit")] = None,
    duration: Annotated[Optional[float], typer.Option("--duration", help="stop after S seconds", show_default="no limit")] = None,
    reconnect: Annotated[int, typer.Option("--reconnect", help="streams: reopen a lost stream up to N times in a row")] = default(CaptureRun, "reconnect"),
    reduce: Annotated[str, typer.Option("--reduce", help="how the whole frame becomes the model's square: squash (resize the whole frame) or crop (shorter side to 256/224 of the input, centre square: torchvision's convention)")] = default(CaptureRun, "reduce"),
    overwrite: Annotated[bool, typer.Option("--overwrite", help=OVERWRITE_HELP, show_default="off")] = default(CaptureRun, "overwrite"),
):
    """Classify a camera, video or photos live: overlay, per-frame log, summary. q, Esc or Ctrl-C ends it."""
    flags = dict(locals())  # the parameters alone, before any import (settings())
    from blocks.commands.capture import capture_kept, run_capture

    run = settings(CaptureRun, flags)
    result = run_capture(run, progress=capture_bar,
                         on_headless=lambda: typer.echo("no display found: running headless (no window)", err=True))
    emit_json(result)
    written = capture_kept(run, result)
    for p in ([str(summary)] if summary is not None else []) + written:
        typer.echo(f"wrote {p}", err=True)
    if result.frames:
        typer.echo(capture_headline(result), err=True)
    if result.stopped_by == "interrupted":
        kept = ", ".join(written + ([str(summary)] if summary is not None else [])) or "the summary above"
        raise Interrupted(f"kept {kept} ({result.frames} frames)")


@contextmanager
def simulate_bar(label: str, total: int):
    """Shown once the PDF has been read: a bad PDF gets only its error line."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=Console(stderr=True))
    task = progress.add_task(label, total=total)

    def update(i: int) -> None:
        if i == 0:
            progress.start()
        progress.update(task, completed=i + 1)

    try:
        yield update
    finally:
        if progress.live.is_started:
            progress.stop()


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
    flags = dict(locals())  # the parameters alone, before any import (settings())
    from blocks.commands.simulate import run_simulate

    info = run_simulate(settings(SimulateRun, flags, size=parse_size(size)), progress=simulate_bar)
    typer.echo(f"wrote {out}: {info.frames} frames at {info.fps:g} fps, {info.size[0]}x{info.size[1]}"
               + (f", filming block {info.block} of {info.sheet}" if info.sheet else ", whole page (no sheet.json)"))


def parse_size(text: str | None) -> tuple[int, int] | None:
    """'WxH' -> (w, h)."""
    if text is None:
        return None
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UserError(f"--size takes WxH in pixels (64 to 8192 each), not {text!r}") from None
    return w, h


@contextmanager
def onepixel_bar(label: str, total: int):
    from rich.progress import MofNCompleteColumn, TextColumn

    # DE counts generations, the searches the queries of the image that has spent the most
    with bar(label, total, MofNCompleteColumn(), TextColumn("{task.fields[running]} images still searching"),
             stderr=True, running="") as (p, task):
        yield lambda done_running: p.update(task, completed=done_running[0], running=done_running[1])


@app.command("onepixel")
@model_options(multi=False)
def onepixel(
    inputs: Annotated[list[Path], typer.Argument(help="image files and/or folders of images")],
    models: list = None,  # the model flags (@model_options)
    target: Annotated[Optional[str], typer.Option("--target", help="class name or index (targeted attack)", show_default="untargeted")] = None,
    pixels: Annotated[int, typer.Option("--pixels", help="pixels changed per image (K)")] = default(OnePixelRun, "pixels"),
    popsize: Annotated[int, typer.Option("--popsize", help="DE: candidates per image")] = default(OnePixelRun, "popsize"),
    maxiter: Annotated[int, typer.Option("--maxiter", help="DE: generations")] = default(OnePixelRun, "maxiter"),
    max_queries: Annotated[int, typer.Option("--max-queries", help="model evaluations per image (0 = paper budget for DE; probe, random: a tenth of it, a hundredth above 64x64 px)")] = default(OnePixelRun, "max_queries"),
    fitness: Annotated[str, typer.Option("--fitness", help="margin (logits), prob (the paper's) or auto (prob for DE)")] = default(OnePixelRun, "fitness"),
    out: Annotated[Path, typer.Option("--out", help="output folder")] = default(OnePixelRun, "out"),
    strategy: Annotated[str, typer.Option("--strategy", help="probe (corner colours), random (Sparse-RS), paper (DE, F=0.5) or best1bin (scipy DE)")] = default(OnePixelRun, "strategy"),
    seed: Annotated[int, typer.Option("--seed", help="random seed")] = default(OnePixelRun, "seed"),
    device: DeviceOpt = default(OnePixelRun, "device"),
    batch: Annotated[int, typer.Option("--batch", help="images per forward pass (0 = auto)")] = default(OnePixelRun, "batch"),
    overwrite: Annotated[bool, typer.Option("--overwrite", help=OVERWRITE_HELP, show_default="off")] = default(OnePixelRun, "overwrite"),
):
    """One-pixel attack on all images at once; writes PNGs, JSON, a contact sheet."""
    flags = dict(locals())  # the parameters alone, before any import (settings())
    from blocks.commands.onepixel import run_onepixel

    summary = run_onepixel(settings(OnePixelRun, flags), progress=onepixel_bar)
    print_onepixel(summary)
    typer.echo(f"wrote {out}/summary.json, contact_sheet.png and {len(summary.results)} images", err=True)


def print_onepixel(s) -> None:
    """The per-image table (first 50) with the summary as its caption."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    cell = lambda text: escape(shown(text))  # noqa: E731 (names from files: neither markup nor control codes)
    de = f", pop {s.popsize}, {s.maxiter} gen" if s.strategy in ("paper", "best1bin") else ""
    goal = f" -> {cell(s.target.name)}" if s.target else ""
    table = Table(title=f"one-pixel ({s.strategy}, K={s.pixels}{de}, at most {s.max_queries} queries, "
                        f"{s.fitness} fitness){goal}")
    for col in ("image", "before", "after", "success", "queries"):
        table.add_column(col, justify="right" if col == "queries" else "left", overflow="fold")  # names in full
    for r in s.results[:50]:
        b, a = r.before, r.after
        table.add_row(cell(r.name), f"{cell(b['class'])} {b['prob']:.2f}", f"{cell(a['class'])} {a['prob']:.2f}",
                      "yes" if r.success else "no", str(r.queries))
    if len(s.results) > 50:
        table.add_row(f"... {len(s.results) - 50} more", "", "", "", "")
    conf = s.mean_confidence
    table.caption = (f"success {s.successes}/{s.images} ({s.success_rate:.1%}), mean confidence "
                     f"{'-' if conf is None else f'{conf:.3f}'}, mean queries {s.mean_queries:.0f} "
                     f"(max {s.max_queries}), {s.seconds:.1f} s")
    Console().print(table)


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
    flags = dict(locals())  # the parameters alone, before any import (settings())
    from blocks.commands.calibration_sheet import run_calibration_sheet
    from printing.calibration import CalibrationSettings
    from printing.sheet import preview_paths, sidecar_path

    sheet = settings(CalibrationSettings, flags, ignore=("out", "preview", "overwrite"))  # CalibrationRun's own
    info = run_calibration_sheet(CalibrationRun(out, sheet, preview, overwrite))
    paths = [sidecar_path(out), *(preview_paths(out, info.pages) if preview else []), out]
    typer.echo(f"wrote {', '.join(str(p) for p in paths)}: {len(info.swatches)} swatches "
               f"({info.rows}x{info.cols}) of {swatch_mm:g} mm on {page}")


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
    flags = dict(locals())  # the parameters alone, before any import (settings())
    from blocks.commands.calibrate import run_calibrate

    cmap = run_calibrate(settings(CalibrateRun, flags))
    e = cmap.extra
    typer.echo(f"wrote {out}: mean error {cmap.mean_error_rgb:.2f} RGB units (max {e['max_error_rgb']:.1f}) over "
               f"{e['swatches']} swatches, {e['frames_used']} of {e['frames_looked_at']} frame(s) used")
    if cmap.mean_error_rgb > 8:
        typer.echo("warning: a large fit error: uneven light, glare or a blurred photo? Retake it flat and evenly lit.",
                   err=True)


FLAGS = {"targets": "--target", "eps_range": "--eps", "models_file": "--models", "fov_deg": "--fov",
         "distance_m": "--distance"}  # where a flag is not --<param>


def flag_message(e: UserError) -> str:
    """The library names settings (`size_mm must be > 0`); the CLI user typed flags (`--size-mm`)."""
    import re

    text, params = str(e), getattr(e, "param", None) or ()
    for param in (params,) if isinstance(params, str) else params:
        flag = FLAGS.get(param, "--" + param.replace("_", "-"))
        # a whole word, never part of a path the message quotes (runs/model.pt, labels/x.txt)
        text = re.sub(rf"(?<![\w\-/.\\]){re.escape(param)}(?![\w\-/\\]|\.\w)", flag, text, count=1)
    return text


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code: 0 ok, 2 bad input, 130 interrupted."""
    from common.interrupts import handle_interrupts, interrupted, reporting

    try:
        with handle_interrupts():
            try:
                code = app(args=argv, prog_name="blocks", standalone_mode=False)
            finally:
                reporting()
        if code == 130 and interrupted():  # typer turns a bare KeyboardInterrupt into a silent 130
            raise KeyboardInterrupt
    except UserError as e:
        if _prints(e):
            typer.echo(f"error: {shown(flag_message(e))}", err=True)
        return e.exit_code
    except Interrupted as e:  # the command kept something and says what
        typer.echo(f"interrupted: {shown(e)}", err=True)
        return e.exit_code
    except (KeyboardInterrupt, typer.Abort):
        typer.echo(f"interrupted: {_kept()}", err=True)
        return 130
    except typer.Exit as e:
        return e.exit_code
    except Exception as e:
        # click's usage errors (vendored inside typer, so not importable by name) carry show().
        if hasattr(e, "show") and hasattr(e, "exit_code"):
            if type(e).__name__ == "NoArgsIsHelpError" or not hasattr(e, "format_message"):
                e.show()  # `blocks` or `blocks CMD` alone: the help text
                return e.exit_code
            typer.echo(f"error: {shown(_usage_line(e))}", err=True)
            return 2
        if isinstance(e, ImportError) and interrupted():  # a Ctrl-C cut a C extension's import short
            typer.echo(f"interrupted: {_kept()}", err=True)
            return 130
        raise
    return code if isinstance(code, int) else 0


def _usage_line(e) -> str:
    """click's usage error (three lines: usage, hint, `Error: ...` in a box with rich) as one line,
    like every other error."""
    import re

    text = re.sub(r"\s+", " ", str(e.format_message())).strip().rstrip(".")
    ctx = getattr(e, "ctx", None)
    where = ctx.command_path if ctx is not None and getattr(ctx, "command_path", None) else "blocks"
    return f"{text} (see {where} --help)"


def _kept() -> str:
    """What an interrupted command left whole on disk (a Ctrl-C during the final write is held
    until the files are in place: they are kept, and the line says so)."""
    from common.interrupts import written

    files = list(dict.fromkeys(written()))
    if not files:
        return "nothing written"
    listed = ", ".join(files[:6]) + (f" and {len(files) - 6} more" if len(files) > 6 else "")
    return f"kept {listed} (written whole before the interrupt)"


def _prints(e: UserError) -> bool:
    """Under torchrun every rank raises the same error and rank 0 prints it; another rank prints
    only an error about itself ("rank 3: ...")."""
    import os

    rank = os.environ.get("RANK", "0") if os.environ.get("WORLD_SIZE", "1") != "1" else "0"
    return bool(str(e)) and (rank == "0" or str(e).startswith(f"rank {rank}:"))

