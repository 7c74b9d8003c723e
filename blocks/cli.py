"""The `blocks` command: a thin typer layer over the Python API. Bad input -> one line, exit 2."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from blocks import checks
from common.errors import Interrupted, UserError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Physical-world adversarial blocks: generate, print, capture, one-pixel.")

# Shared `[model flags]`: every command that runs a classifier takes these, through @model_options.
ModelOpt = Annotated[Optional[list[str]], typer.Option("--model", metavar="NAME", help="efficientnet_lite0 (embedded ImageNet, offline), a torchvision name, timm:NAME, a .pt2/TorchScript file, or digits; repeat it for an ensemble [default: efficientnet_lite0]")]
ModelsFileOpt = Annotated[Optional[Path], typer.Option("--models", metavar="FILE", help="an ensemble whose members need their own flags: a TOML or JSON file listing models, each with keys model, weights, labels, input_size, mean, std")]
DEFAULT_MODEL = "efficientnet_lite0"  # blocks.models.DEFAULT_MODEL, repeated so --help needs no torch import
WeightsOpt = Annotated[Optional[Path], typer.Option("--weights", help="state dict file for --model (loaded with weights_only=True)")]
LabelsOpt = Annotated[Optional[Path], typer.Option("--labels", help="class names, one per line (sets the number of classes)")]
InputSizeOpt = Annotated[Optional[int], typer.Option("--input-size", help="side in pixels the model expects")]
MeanOpt = Annotated[Optional[str], typer.Option("--mean", help="normalisation mean R,G,B (ImageNet by default)")]
StdOpt = Annotated[Optional[str], typer.Option("--std", help="normalisation std R,G,B (ImageNet by default)")]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto (CUDA, then MPS, then CPU), cpu, cuda, mps")]


@app.callback()
def _root() -> None:
    """Physical-world adversarial blocks: generate, print, capture, one-pixel."""


MODEL_FLAGS = ("model", "models_file", "weights", "labels", "input_size", "mean", "std")


def model_options(multi: bool = True):
    """Give a command the model flags in place of its `models` parameter, which then receives
    one list[ModelSpec] (several for an ensemble). multi=False: the command takes one model."""
    import functools
    import inspect

    flags = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=ann, default=None)
             for name, ann in zip(MODEL_FLAGS, (ModelOpt, ModelsFileOpt, WeightsOpt, LabelsOpt,
                                                InputSizeOpt, MeanOpt, StdOpt))]

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
    from blocks.models import read_model_list

    names = list(model or [])
    per_model = [f for f, v in (("--weights", weights), ("--labels", labels), ("--input-size", input_size),
                                ("--mean", mean), ("--std", std)) if v is not None]
    if per_model and (len(names) > 1 or models_file is not None):
        raise UserError(f"{', '.join(per_model)} apply to a single --model; with several models give "
                        f"each its own in a --models FILE (TOML or JSON entries with keys model, weights, "
                        f"labels, input_size, mean, std)")
    specs = [model_spec(n, weights, labels, input_size, mean, std) for n in names]
    if models_file is not None:
        specs += read_model_list(models_file)
    return specs or [model_spec(DEFAULT_MODEL, weights, labels, input_size, mean, std)]


def model_spec(model: str, weights: Path | None, labels: Path | None, input_size: int | None,
               mean: str | None, std: str | None):
    from blocks.models import ModelSpec

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


def emit_json(obj, out: Path | None) -> None:
    from common.files import atomic_write_json, json_text

    if out is None:
        typer.echo(json_text(obj))
    else:
        atomic_write_json(out, obj)
        typer.echo(f"wrote {out}", err=True)


@app.command()
@model_options()
def targets(
    query: Annotated[str, typer.Argument(help="class name, index or common word")],
    models: list = None,  # the model flags (@model_options)
):
    """List the classes matching QUERY, with their indices."""
    from blocks.targets import search_targets

    names = class_names(models)
    hits = search_targets(query, names)
    if not hits:
        raise UserError(f"no class matches {query!r} ({len(names)} classes)")
    for i, name in hits:
        typer.echo(f"{i:5d}  {name}")


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


def load_model(specs: list, device):
    """One Classifier, or an Ensemble of several; every member checked to run at its input size."""
    from blocks.models import load_models

    net = load_models(specs, device)
    for member in getattr(net, "members", [net]):
        checks.runs_at_input_size(member)
    return net


def _resolve_goal(model, target: str | None, away_from: str | None):
    """(target index or None, away index or None, metadata) from --target / --away-from."""
    from blocks.targets import resolve_target

    if (target is None) == (away_from is None):
        raise UserError("give exactly one of --target CLASS (become it) or --away-from CLASS (stop being it)")
    t = resolve_target(target if target is not None else away_from, model.labels)
    meta = {"index": t.index, "name": t.name, "alternatives": t.alternatives,
            "mode": "targeted" if target is not None else "untargeted"}
    return (t.index, None, meta) if target is not None else (None, t.index, meta)


def _read_scenes(folder: Path | None):
    """Scene images as read (before the model loads); _fit_scenes sizes them for the model."""
    from blocks.scenes import read_scenes

    return None if folder is None else read_scenes(folder)


def _fit_scenes(images, size: int):
    from blocks.scenes import fit_scenes

    return None if images is None else fit_scenes(images, size)


def _writable_dir(out: Path) -> Path:
    from common.files import check_output_dir

    return check_output_dir(out)


def _writable_file(path: Path | None, what: str = "") -> Path | None:
    from common.files import check_output_file

    return None if path is None else check_output_file(path, what)


@app.command()
@model_options()
def generate(
    target: Annotated[Optional[list[str]], typer.Option("--target", help="class to become: name, index or word (chicken); repeat it for one patch per target")] = None,
    targets_file: Annotated[Optional[Path], typer.Option("--targets-file", help="text file of targets, one per line: one patch each, model loaded once")] = None,
    away_from: Annotated[Optional[str], typer.Option("--away-from", help="class to stop being (positive epsilon)")] = None,
    models: list = None,  # the model flags (@model_options)
    device: DeviceOpt = "auto",
    patch_size: Annotated[Optional[int], typer.Option("--patch-size", help="patch side in pixels [default: half the model input]")] = None,
    steps: Annotated[int, typer.Option("--steps")] = 400,
    epsilon: Annotated[float, typer.Option("--epsilon", help="first step size in 0-255 units (negative-epsilon FGSM step)")] = 32.0,
    final_fraction: Annotated[float, typer.Option("--final-fraction", help="last step size as a fraction of the first")] = 0.1,
    schedule: Annotated[str, typer.Option("--schedule", help="step-size schedule: cosine, linear, constant")] = "cosine",
    batch: Annotated[int, typer.Option("--batch", help="random views per step")] = 32,
    momentum: Annotated[float, typer.Option("--momentum", help="sign of a running mean of gradients (0 = plain FGSM)")] = 0.9,
    smooth: Annotated[Optional[float], typer.Option("--smooth", help="Gaussian gradient smoothing, sigma in patch pixels (transfers better to unseen models; 0 = off) [default: 0.8 for an ensemble, 0 for one model]")] = None,
    members: Annotated[str, typer.Option("--members", help="ensembles: balance (each member's gradient at equal size), mean (loss of the mean log-probability) or cycle (one member per step, in turn)")] = "balance",
    scale: Annotated[Optional[str], typer.Option("--scale", help="patch side / image side, MIN:MAX [default 0.8:1.0, with --scenes 0.4:0.6]")] = None,
    scenes: Annotated[Optional[Path], typer.Option("--scenes", help="folder of background images")] = None,
    eval_scenes: Annotated[Optional[Path], typer.Option("--eval-scenes", help="backgrounds for the held-out check [default: --scenes]")] = None,
    eot: Annotated[str, typer.Option("--eot", help="transform preset: none, digital, print, webcam")] = "print",
    max_seconds: Annotated[Optional[float], typer.Option("--max-seconds", help="stop after S seconds, keeping the best patch")] = None,
    colormap: Annotated[Optional[Path], typer.Option("--colormap", help="measured printer-to-camera colour map (blocks calibrate)")] = None,
    printability: Annotated[float, typer.Option("--printability", help="weight of the non-printability penalty")] = 0.0,
    tv: Annotated[float, typer.Option("--tv", help="weight of the total-variation penalty")] = 0.0,
    eval_n: Annotated[int, typer.Option("--eval-n", help="held-out random views for the final success rate")] = 256,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    out: Annotated[Optional[Path], typer.Option("--out", help="output folder [default: runs/<target>-<time>]")] = None,
):
    """Make a patch from black with EOT negative-epsilon FGSM; write patch.png, patch.json, curve.png.

    Several targets: one folder per target under --out and a summary.json. Under torchrun
    (`torchrun --nproc-per-node N -m blocks generate ...`) each step's views are split across the ranks."""
    # paths may differ per node; the models are compared after loading, by their weights' hashes
    group = _join_group(device, {k: v for k, v in locals().items() if not isinstance(v, Path) and k != "models"})
    import time as _time

    from dataclasses import asdict

    from blocks.attacks.eot_fgsm import GenerateConfig, generate_patch, smoothing
    from blocks.evaluate import evaluate_members, evaluate_patch
    from common.files import atomic_write_json, load_image
    from blocks.report import library_versions, plot_curve, write_patch
    from transforms.eot import preset

    if schedule not in ("cosine", "linear", "constant"):
        raise UserError(f"--schedule must be cosine, linear or constant, not {schedule!r}")
    checks.whole(steps, "--steps", 1)
    checks.whole(batch, "--batch", 1, checks.MAX_BATCH)
    checks.whole(eval_n, "--eval-n", 1, 1_000_000)
    checks.whole(patch_size, "--patch-size", 2, checks.MAX_PATCH_SIZE)
    checks.seed(seed)
    if not 0 <= momentum < 1:
        raise UserError("--momentum must be in [0, 1)")
    if smooth is not None and not 0 <= smooth <= 64:
        raise UserError("--smooth is a blur sigma in patch pixels, 0 to 64")
    if members not in ("mean", "balance", "cycle"):
        raise UserError(f"--members is mean, balance or cycle, not {members!r}")
    if not 0 < epsilon <= 255:
        raise UserError("--epsilon is a step size in 0-255 units: give a number in (0, 255]")
    checks.number(final_fraction, "--final-fraction", 0, 1)
    checks.number(max_seconds, "--max-seconds", 0, lo_open=True)
    checks.number(printability, "--printability", 0)
    checks.number(tv, "--tv", 0)
    scale_range = parse_range(scale, "--scale", 0.01, 1.5) or ((0.4, 0.6) if scenes else (0.8, 1.0))
    eot_cfg = preset(eot, scale_range)
    if out is None:
        name = target[0] if target and len(target) == 1 and not targets_file else away_from or "targets"
        out = Path("runs") / f"{name.replace(' ', '_')}-{_time.strftime('%Y%m%d-%H%M%S')}"
    if group is not None and batch < group.world:
        raise UserError(f"--batch {batch} is smaller than the {group.world} ranks torchrun started: each rank "
                        f"renders at least one view per step (give --batch >= {group.world} or start fewer ranks)")
    main_rank = group is None or group.is_main
    versions = library_versions()  # now, not after a Ctrl-C: importing takes seconds there

    def prepare():  # everything that can fail on one rank only (files on its node): agreed below
        wanted = _target_list(target, targets_file)
        cmap = _load_colormap(colormap)
        if main_rank:  # only rank 0 writes
            _writable_dir(out)
        scene_images, eval_images = _read_scenes(scenes), _read_scenes(eval_scenes)
        net = load_model(models, group.device(device) if group else device)
        goals = [_resolve_goal(net, t, None) for t in wanted] if wanted else [_resolve_goal(net, None, away_from)]
        if wanted and away_from is not None:
            _resolve_goal(net, wanted[0], away_from)  # raises its "exactly one" error
        _no_repeats(goals)
        backgrounds = _fit_scenes(scene_images, net.input_size)
        held_out = _fit_scenes(eval_images, net.input_size) if eval_scenes else backgrounds
        return cmap, net, goals, backgrounds, held_out

    cmap, net, goals, backgrounds, held_out_backgrounds = _agreed(group, prepare)
    if group is not None:
        import hashlib

        group.check_same({"weights sha256": net.weights_id,
                          "labels sha256": hashlib.sha256("\n".join(net.labels).encode()).hexdigest()[:16]},
                         what="model files")
    several = len(goals) > 1
    summary = []
    for t_idx, away_idx, goal in goals:
        folder = out / _folder_name(goal) if several else out
        cfg = GenerateConfig(target=t_idx, away_from=away_idx,
                             patch_size=patch_size if patch_size is not None else max(8, net.input_size // 2),
                             steps=steps, epsilon=epsilon / 255, final_fraction=final_fraction,
                             schedule=schedule, batch=batch, momentum=momentum, max_seconds=max_seconds,
                             seed=seed, smooth=smooth, members=members)
        cfg.smooth = smoothing(net, cfg)  # patch.json records the sigma used, not "default"

        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        columns = [TextColumn(goal["name"] if several else "generate"), BarColumn(),
                   TextColumn("step {task.completed}/{task.total}"),
                   TextColumn("loss {task.fields[loss]:.3f}"), TextColumn("p(target) {task.fields[prob]:.3f}"),
                   TimeElapsedColumn()]
        with Progress(*columns, transient=False, disable=not main_rank) as bar:
            task = bar.add_task("generate", total=steps, loss=float("nan"), prob=0.0)

            def on_step(r):
                bar.update(task, completed=r.step + 1, loss=r.loss, prob=r.objective_prob)

            result = generate_patch(net, cfg, eot_cfg, backgrounds, on_step=on_step if main_rank else None,
                                    patch_map=cmap, penalty=_penalty(cmap, printability, tv), group=group)

        def finish():  # rank 0 writes and judges; the other ranks learn whether that worked
            if not main_rank:
                return None
            meta = {"target": goal, "model": net.describe(), "weights_sha256": net.weights_id,
                    "device": str(net.device), "ranks": group.world if group else 1, "eot": eot,
                    "eot_settings": asdict(eot_cfg),
                    "scale": list(scale_range), "scenes": str(scenes) if scenes else None,
                    "eval_scenes": str(eval_scenes or scenes) if (eval_scenes or scenes) else None,
                    "config": asdict(cfg), "seed": seed, "stopped": result.stopped,
                    "best_step": result.best_step, "best_train_prob": result.best_objective_prob,
                    "steps_run": len(result.curve), "seconds": round(result.seconds, 2),
                    "colormap": str(colormap) if colormap else None, "printability": printability, "tv": tv,
                    "curve": result.curve_dict(), "held_out": None, "versions": versions}
            meta = write_patch(folder, result.patch, meta)  # first, so nothing is lost if evaluation is interrupted
            if result.stopped == "interrupted":
                return meta
            try:
                if result.curve:
                    plot_curve(meta["curve"], folder / "curve.png", f"{goal['mode']}: {goal['name']} ({net.name})")
                # score the 8-bit patch.png that is printed, not the float patch it was rounded from
                ev = evaluate_patch(net, load_image(folder / "patch.png"), eot_cfg, t_idx, away_idx,
                                    held_out_backgrounds, n=eval_n, seed=seed + 1, patch_map=cmap)
                meta["held_out"] = ev.to_dict()
                # every member on the same held-out views: how the patch fares on each model on its own
                meta["members"] = evaluate_members(net, load_image(folder / "patch.png"), eot_cfg, t_idx,
                                                   away_idx, held_out_backgrounds, n=eval_n, seed=seed + 1,
                                                   patch_map=cmap)
                atomic_write_json(folder / "patch.json", meta)  # patch.png is already written and unchanged
            except KeyboardInterrupt:
                raise Interrupted(f"kept the patch in {folder} (stopped during the held-out check: "
                                  f"patch.json has no held_out)") from None
            typer.echo(f"{goal['name']}: held-out success {ev.success_rate:.1%}, mean target prob "
                       f"{ev.mean_target_prob:.3f} over {ev.n} views -> {folder}/patch.png")
            if len(meta["members"]) > 1:
                for row in meta["members"]:
                    typer.echo(f"  {row['model']}: held-out success {row['success_rate']:.1%}")
            return meta

        meta = _agreed(group, finish)
        if main_rank:
            summary.append(_summary_row(meta, folder))
        if result.stopped == "interrupted":
            break
    if several and main_rank:
        _write_summary(summary, out, net, group.world if group else 1)
    if result.stopped == "interrupted":
        if not main_rank:
            raise typer.Exit(130)
        raise Interrupted(f"kept the best patch (step {result.best_step}) in {folder}")


def _join_group(device: str, settings: dict):
    """The torchrun process group (ranks checked to share every setting), or None when this is
    a plain single-process run (WORLD_SIZE unset or 1)."""
    from blocks.distributed import join, launched

    if not launched():
        return None
    import atexit

    group = join(device)
    atexit.register(group.close)
    group.check_same(settings)
    return group


def _agreed(group, fn):
    """fn() here, or under torchrun on every rank with the outcome agreed (Group.agree)."""
    return fn() if group is None else group.agree(fn)


def _target_list(target: list[str] | None, targets_file: Path | None) -> list[str]:
    """--target values, then the --targets-file lines (blank lines and # comments skipped)."""
    wanted = list(target or [])
    if targets_file is not None:
        try:
            text = targets_file.read_text()
        except (OSError, UnicodeDecodeError) as e:
            raise UserError(f"cannot read --targets-file {targets_file}: {getattr(e, 'strerror', None) or e}") from None
        lines = [line.split("#")[0].strip() for line in text.splitlines()]
        if not any(lines):
            raise UserError(f"--targets-file {targets_file} names no targets (one per line)")
        wanted += [line for line in lines if line]
    return wanted


def _no_repeats(goals) -> None:
    seen = {}
    for _, _, goal in goals:
        if goal["index"] in seen:
            raise UserError(f"target {goal['name']!r} ({goal['index']}) is asked for twice")
        seen[goal["index"]] = goal


def _folder_name(goal: dict) -> str:
    """'8-hen': the index keeps folders apart, the name keeps them readable."""
    import re

    return f"{goal['index']}-{re.sub(r'[^A-Za-z0-9._-]+', '_', goal['name']).strip('_')}".rstrip("-")


def _summary_row(meta: dict, folder: Path) -> dict:
    ev = meta.get("held_out") or {}
    return {"target": meta["target"]["name"], "index": meta["target"]["index"], "mode": meta["target"]["mode"],
            "held_out_success": ev.get("success_rate"), "mean_target_prob": ev.get("mean_target_prob"),
            "best_step": meta["best_step"], "steps_run": meta["steps_run"], "seconds": meta["seconds"],
            "stopped": meta["stopped"], "folder": str(folder)}


def _write_summary(rows: list[dict], out: Path, net, ranks: int) -> None:
    """One table for a many-target run, printed and written as out/summary.json."""
    from common.files import atomic_write_json

    atomic_write_json(out / "summary.json", {"model": net.describe(), "weights_sha256": net.weights_id,
                                             "ranks": ranks, "targets": rows})
    typer.echo(f"{'target':<24} {'index':>5} {'held-out':>9} {'p(target)':>9} {'best step':>9} {'seconds':>8}  folder")
    for r in rows:
        success = "-" if r["held_out_success"] is None else f"{r['held_out_success']:.1%}"
        prob = "-" if r["mean_target_prob"] is None else f"{r['mean_target_prob']:.3f}"
        typer.echo(f"{r['target'][:24]:<24} {r['index']:>5} {success:>9} {prob:>9} {r['best_step']:>9} "
                   f"{r['seconds']:>8.1f}  {r['folder']}")
    typer.echo(f"wrote {out / 'summary.json'}", err=True)


def _load_colormap(path: Path | None):
    if path is None:
        return None
    from transforms.colormap import ColorMap

    return ColorMap.load(path)


def _penalty(cmap, printability: float, tv: float):
    """The patch penalty for --printability / --tv, or None."""
    if not printability and not tv:
        return None
    from blocks.penalties import default_palette, non_printability, total_variation

    gamut = cmap.gamut if cmap is not None and cmap.gamut is not None else default_palette()

    def penalty(patch):
        total = 0.0
        if printability:
            total = total + printability * non_printability(patch, gamut, cmap)
        if tv:
            total = total + tv * total_variation(patch)
        return total

    return penalty


@app.command()
@model_options()
def evaluate(
    patch: Annotated[Path, typer.Argument(help="patch PNG")],
    target: Annotated[Optional[str], typer.Option("--target")] = None,
    away_from: Annotated[Optional[str], typer.Option("--away-from")] = None,
    models: list = None,  # the model flags (@model_options)
    device: DeviceOpt = "auto",
    scenes: Annotated[Optional[Path], typer.Option("--scenes")] = None,
    scale: Annotated[Optional[str], typer.Option("--scale", help="MIN:MAX [default 0.8:1.0, with --scenes 0.4:0.6]")] = None,
    eot: Annotated[str, typer.Option("--eot")] = "print",
    colormap: Annotated[Optional[Path], typer.Option("--colormap", help="judge the patch as seen through this colour map")] = None,
    n: Annotated[int, typer.Option("--n", help="number of random views")] = 512,
    seed: Annotated[int, typer.Option("--seed", help="view seed (differs from training's by default)")] = 2024,
    out: Annotated[Optional[Path], typer.Option("--out", help="write JSON here instead of stdout")] = None,
):
    """Success rate and target probability of a patch on fresh random views. With several --model,
    one row per model on the same views (a transfer row), printed and written as JSON (--out)."""
    from blocks.evaluate import evaluate_members, evaluate_patch
    from common.files import load_image
    from transforms.eot import preset

    checks.whole(n, "--n", 1, 1_000_000)
    checks.seed(seed)
    image = load_image(patch)
    scale_range = parse_range(scale, "--scale", 0.01, 1.5) or ((0.4, 0.6) if scenes else (0.8, 1.0))
    eot_cfg = preset(eot, scale_range)
    cmap = _load_colormap(colormap)
    scene_images = _read_scenes(scenes)
    _writable_file(out)
    net = load_model(models, device)
    t_idx, away_idx, goal = _resolve_goal(net, target, away_from)
    fitted = _fit_scenes(scene_images, net.input_size)
    if len(models) > 1:
        rows = evaluate_members(net, image, eot_cfg, t_idx, away_idx, fitted, n=n, seed=seed, patch_map=cmap)
        width = max(len(r["model"]) for r in rows)
        typer.echo(f"{'model':<{width}}  success  p(target)  top-5   ({goal['name']}, {n} views)")
        for r in rows:
            typer.echo(f"{r['model']:<{width}}  {r['success_rate']:7.1%}  {r['mean_target_prob']:9.3f}  "
                       f"{r['top5_rate']:6.1%}")
        if out is not None:
            emit_json({"patch": str(patch), "target": goal, "eot": eot, "scale": list(scale_range),
                       "seed": seed, "n": n, "models": rows}, out)
        return
    ev = evaluate_patch(net, image, eot_cfg, t_idx, away_idx, fitted, n=n, seed=seed, patch_map=cmap)
    emit_json({"patch": str(patch), "target": goal, "model": net.name, "eot": eot,
               "scale": list(scale_range), "seed": seed, **ev.to_dict()}, out)


@app.command()
@model_options()
def sweep(
    image: Annotated[Path, typer.Argument(help="image to attack")],
    target: Annotated[str, typer.Option("--target")],
    models: list = None,  # the model flags (@model_options)
    device: DeviceOpt = "auto",
    eps_range: Annotated[str, typer.Option("--eps", help="epsilon range MIN:MAX in 0-255 units")] = "-120:10",
    num: Annotated[int, typer.Option("--num", help="number of epsilons")] = 131,
    out: Annotated[Path, typer.Option("--out", help="output folder")] = Path("runs/sweep"),
):
    """Single-step FGSM line search: class probabilities against epsilon (plot + JSON)."""
    from blocks.attacks.fgsm_sweep import epsilon_sweep, plot_sweep
    from common.files import atomic_write_bytes, json_text, load_image
    from common.interrupts import writing
    from blocks.targets import resolve_target

    lo_hi = parse_range(eps_range, "--eps", -255, 255)
    if not lo_hi[0] < lo_hi[1]:
        raise UserError(f"--eps takes MIN:MAX with MIN < MAX, not {eps_range!r}")
    checks.whole(num, "--num", 2, 10_000)
    x = load_image(image)
    _writable_dir(out)
    net = load_model(models, device)
    t = resolve_target(target, net.labels)
    import torch

    eps = (torch.linspace(lo_hi[0], lo_hi[1], num) / 255).tolist()
    s = epsilon_sweep(net, x, t.index, eps)
    shown = s.classes_to_show()
    record = json_text({
        "image": str(image), "target": {"index": t.index, "name": t.name}, "model": net.name,
        "epsilons_255": [e * 255 for e in s.epsilons], "best_epsilon_255": s.best_epsilon * 255,
        "best_target_prob": s.best_target_prob, "clean_top1": net.labels[s.clean_top1],
        "probs": {net.labels[c]: s.probs[:, c].tolist() for c in shown}})  # NaN fails here, before any file
    with writing():
        plot_sweep(s, net.labels, out / "sweep.png")
        atomic_write_bytes(out / "sweep.json", (record + "\n").encode())
    typer.echo(f"best epsilon {s.best_epsilon * 255:.1f}/255: p({t.name}) = {s.best_target_prob:.3f} -> {out}/sweep.png")


@app.command("digits-scenes")
def digits_scenes(
    out: Annotated[Path, typer.Argument(help="folder to write train/ and test/ scene PNGs into")],
    exclude: Annotated[Optional[str], typer.Option("--exclude", help="leave out this digit class (the target)")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit")] = None,
):
    """Export held-out digits as scene images for --scenes (for the bundled digits model)."""
    from blocks.digits import LABELS
    from blocks.scenes import export_digit_scenes
    from blocks.targets import resolve_target

    checks.whole(limit, "--limit", 1)
    skip = resolve_target(exclude, LABELS).index if exclude is not None else None
    n = export_digit_scenes(_writable_dir(out), skip, limit)
    typer.echo(f"wrote {n} held-out digits to {out}/train and {out}/test")


@app.command("sample-scenes")
def sample_scenes(
    out: Annotated[Path, typer.Argument(help="folder to write train/ and test/ photos into")],
):
    """Export the colour photos that ship with installed packages as scenes, split by photo."""
    from blocks.scenes import export_sample_photos

    counts = export_sample_photos(_writable_dir(out))
    typer.echo(f"wrote {counts['train']} training photos to {out}/train and {counts['test']} "
               f"held-out photos to {out}/test")


@app.command("print")
def print_sheet(
    patches: Annotated[list[Path], typer.Argument(help="patch images (PNG from `blocks generate`)", show_default=False)],
    out: Annotated[Path, typer.Option("--out", help="PDF to write; sheet.json is written next to it")],
    size_mm: Annotated[float, typer.Option("--size-mm", help="printed side of one patch, mm (exact)")] = 50.0,
    page: Annotated[str, typer.Option("--page", help="a4|letter|a3")] = "a4",
    margin_mm: Annotated[float, typer.Option("--margin-mm", help="blank page margin, mm")] = 10.0,
    layout: Annotated[str, typer.Option("--layout", help="grid (blocks in rows, pages as needed) or cube (foldable net: 1 patch on all faces, or 6)")] = "grid",
    tile: Annotated[str, typer.Option("--tile", help="RxC: a block is the patch repeated R rows x C columns")] = "1x1",
    markers: Annotated[bool, typer.Option("--markers/--no-markers", help="ArUco markers around each block")] = True,
    marker_mm: Annotated[float, typer.Option("--marker-mm", help="side of each ArUco marker, mm")] = 12.0,
    dpi: Annotated[int, typer.Option("--dpi", help="patch pixels are upscaled (nearest) to at least this resolution")] = 300,
    preview: Annotated[bool, typer.Option("--preview", help="also write a PNG of each page next to the PDF")] = False,
):
    """Lay patches out as a print-ready PDF at exact size, with markers, cut marks and sheet.json."""
    from printing import SheetSettings, make_sheet, parse_tile, write_sheet
    from printing.sheet import check_sheet_out

    check_sheet_out(out, preview)
    settings = SheetSettings(size_mm=size_mm, page=page.lower(), margin_mm=margin_mm, layout=layout.lower(),
                             tile=parse_tile(tile), markers=markers, marker_mm=marker_mm, dpi=dpi)
    sheet = make_sheet(patches, settings)
    paths = write_sheet(sheet, out, preview=preview)
    n = len(sheet.info.blocks)
    what = f"{n} block{'s' if n != 1 else ''}" if settings.layout == "grid" else "a cube net (6 faces)"
    typer.echo(f"wrote {out}: {what} on {sheet.pages} page(s); print at 100% scale")
    for p in paths:
        if p != out:
            typer.echo(f"wrote {p}")


@app.command()
@model_options(multi=False)
def capture(
    target: Annotated[str, typer.Option("--target", help="class the block should be seen as: name, index or word")],
    source: Annotated[str, typer.Option("--source", help="camera index (0), video file, folder or glob of photos, http:// or rtsp:// stream, screen or screen:X,Y,W,H")] = "0",
    models: list = None,  # the model flags (@model_options)
    device: DeviceOpt = "auto",
    sheet: Annotated[Optional[Path], typer.Option("--sheet", help="sheet.json from `blocks print`: find and rectify blocks by their markers")] = None,
    sliding: Annotated[bool, typer.Option("--sliding", help="also scan the frame with a sliding window")] = False,
    window: Annotated[float, typer.Option("--window", help="sliding window side, fraction of the frame's shorter side")] = 0.5,
    stride: Annotated[float, typer.Option("--stride", help="sliding window step, fraction of the frame's shorter side")] = 0.25,
    threshold: Annotated[float, typer.Option("--threshold", help="a hit needs the target top-1 with at least this probability")] = 0.0,
    headless: Annotated[bool, typer.Option("--headless", help="no window (automatic when there is no display)")] = False,
    save_video: Annotated[Optional[Path], typer.Option("--save-video", help="write the annotated stream (.mp4, .avi, .mkv)")] = None,
    log: Annotated[Optional[Path], typer.Option("--log", help="one JSON line per frame")] = None,
    summary: Annotated[Optional[Path], typer.Option("--summary", help="write the summary JSON here (it is always printed)")] = None,
    max_frames: Annotated[Optional[int], typer.Option("--max-frames", help="stop after N frames")] = None,
    duration: Annotated[Optional[float], typer.Option("--duration", help="stop after S seconds")] = None,
    reconnect: Annotated[int, typer.Option("--reconnect", help="streams: reopen a lost stream up to N times in a row")] = 0,
):
    """Classify a camera, video or photos live: overlay, per-frame log, summary. q, Esc or Ctrl-C ends it."""
    from capture.display import is_headless
    from capture.loop import CaptureSettings, run_capture
    from capture.sheet import load_sheet
    from capture.sources import open_source
    from capture.views import SlidingSettings

    checks.whole(max_frames, "--max-frames", 1)
    checks.number(duration, "--duration", 0, lo_open=True)
    checks.number(window, "--window", 0, 1, lo_open=True)
    checks.number(stride, "--stride", 0, 1, lo_open=True)
    if not 0 <= threshold <= 1:
        raise UserError("--threshold is a probability in [0, 1]")
    if not 0 <= reconnect <= 1000:
        raise UserError("--reconnect is a number of attempts in [0, 1000]")
    layout = load_sheet(sheet) if sheet is not None else None
    from blocks.targets import resolve_target

    _writable_file(log, "log")
    _writable_file(summary, "summary")
    if save_video is not None:
        from capture.loop import check_video_out

        check_video_out(save_video)
    frames = open_source(source, reconnect=reconnect)  # before the model: a missing camera or file fails in a second
    net = load_model(models, device)
    goal = resolve_target(target, net.labels)
    settings = CaptureSettings(
        target=goal.index, sheet=layout, sliding=SlidingSettings(window, stride) if sliding else None,
        headless=is_headless(headless), save_video=save_video, log=log, max_frames=max_frames,
        duration_s=duration, threshold=threshold)
    if settings.headless and not headless:
        typer.echo("no display found: running headless (no window)", err=True)
    if settings.headless:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        columns = [TextColumn("capture"), BarColumn(), TextColumn("frame {task.completed}"),
                   TextColumn("p(target) {task.fields[prob]:.3f}"), TextColumn("hits {task.fields[hits]}"),
                   TimeElapsedColumn()]
        from rich.console import Console

        # on stderr: stdout carries the summary JSON
        with Progress(*columns, transient=False, console=Console(stderr=True)) as bar:
            known = [n for n in (max_frames, frames.frame_count) if n]
            task = bar.add_task("capture", total=min(known) if known else None, prob=0.0, hits=0)
            hits = [0]

            def on_frame(r):
                hits[0] += r.hit
                bar.update(task, advance=1, prob=r.target_prob, hits=hits[0])

            result = run_capture(net, frames, settings, on_frame=on_frame)
    else:
        result = run_capture(net, frames, settings)
    emit_json(result, None)
    if summary is not None:
        emit_json(result, summary)
    written = [str(p) for p in (log, save_video) if p is not None and result["frames"]]
    for p in written:
        typer.echo(f"wrote {p}", err=True)
    if result["stopped_by"] == "interrupted":
        kept = ", ".join(written + ([str(summary)] if summary is not None else [])) or "the summary above"
        raise Interrupted(f"kept {kept} ({result['frames']} frames)")


@app.command()
def simulate(
    pdf: Annotated[Path, typer.Argument(help="sheet PDF from `blocks print` (its sheet.json is used when present)")],
    out: Annotated[Path, typer.Option("--out", help="video to write (.mp4, .avi, .mkv)")],
    frames: Annotated[int, typer.Option("--frames", help="number of frames")] = 90,
    seed: Annotated[int, typer.Option("--seed", help="camera path, lighting and noise seed")] = 0,
    fps: Annotated[float, typer.Option("--fps", help="frame rate of the video")] = 15.0,
    block: Annotated[int, typer.Option("--block", help="which block of the sheet the camera films")] = 0,
    colormap: Annotated[Optional[Path], typer.Option("--colormap", help="film the sheet through this printer-to-camera colour map (colormap.json)")] = None,
    steady_light: Annotated[bool, typer.Option("--steady-light", help="even, constant, neutral light: the colour map is then the only colour change")] = False,
    size: Annotated[Optional[str], typer.Option("--size", help="frame size WxH in pixels [default 640x480]")] = None,
):
    """Film a printed sheet with a virtual camera (perspective, light, blur, noise, JPEG) -> a video,
    or one still photo when --out is an image (.png, .jpg; --frames is then 1)."""
    from dataclasses import replace

    from common.files import IMAGE_SUFFIXES
    from capture.simulate import SimulateSettings, simulate as run_simulate
    from transforms.camera import CameraSettings

    if out.suffix.lower() in IMAGE_SUFFIXES:
        frames = 1
    checks.whole(frames, "--frames", 1, 100_000)
    checks.whole(block, "--block", 0)
    checks.seed(seed)
    _writable_file(out)
    camera = CameraSettings()
    if size is not None:
        try:
            w, h = (int(v) for v in size.lower().split("x"))
        except ValueError:
            w = h = 0
        if not (64 <= w <= 8192 and 64 <= h <= 8192):
            raise UserError(f"--size takes WxH in pixels (64 to 8192 each), not {size!r}")
        camera = replace(camera, size=(w, h))
    if steady_light:
        camera = replace(camera, brightness=(1.0, 1.0), gradient=0.0, color_cast=0.0)
    cmap = _load_colormap(colormap)
    if not 0 < fps <= 240:
        raise UserError("--fps must be in (0, 240]")
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("simulate"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=Console(stderr=True))
    task = bar.add_task("simulate", total=frames)

    def on_frame(i: int) -> None:
        if i == 0:  # shown once the PDF has been read: a bad PDF gets only its error line
            bar.start()
        bar.update(task, completed=i + 1)

    try:
        info = run_simulate(pdf, out, SimulateSettings(frames=frames, seed=seed, fps=fps, block=block,
                                                       camera=camera, colormap=cmap), on_frame=on_frame)
    finally:
        if bar.live.is_started:
            bar.stop()
    typer.echo(f"wrote {out}: {info['frames']} frames at {info['fps']:g} fps, {info['size'][0]}x{info['size'][1]}"
               + (f", filming block {info['block']} of {info['sheet']}" if info["sheet"] else ", whole page (no sheet.json)"))


@app.command("onepixel")
@model_options(multi=False)
def onepixel(
    inputs: Annotated[list[Path], typer.Argument(help="image files and/or folders of images")],
    models: list = None,  # the model flags (@model_options)
    target: Annotated[Optional[str], typer.Option("--target", help="class name or index (targeted attack); default: untargeted")] = None,
    pixels: Annotated[int, typer.Option("--pixels", help="pixels changed per image (K)")] = 1,
    popsize: Annotated[int, typer.Option("--popsize", help="DE: candidates per image")] = 400,
    maxiter: Annotated[int, typer.Option("--maxiter", help="DE: generations")] = 100,
    max_queries: Annotated[int, typer.Option("--max-queries", help="model evaluations per image (0 = paper budget for DE; probe, random: a tenth of it, a hundredth above 64x64 px)")] = 0,
    fitness: Annotated[str, typer.Option("--fitness", help="margin (logits), prob (the paper's) or auto (prob for DE)")] = "auto",
    out: Annotated[Path, typer.Option("--out", help="output folder")] = Path("onepixel_out"),
    strategy: Annotated[str, typer.Option("--strategy", help="probe (corner colours, default), random (Sparse-RS), paper (DE, F=0.5) or best1bin (scipy DE)")] = "probe",
    seed: Annotated[int, typer.Option("--seed", help="random seed")] = 0,
    device: DeviceOpt = "auto",
    batch: Annotated[int, typer.Option("--batch", help="images per forward pass (0 = auto)")] = 0,
):
    """One-pixel attack on all images at once; writes PNGs, JSON, a contact sheet."""
    from blocks.attacks.onepixel_report import run_onepixel

    run_onepixel(inputs, models[0], target=target,
                 pixels=pixels, popsize=popsize, maxiter=maxiter, max_queries=max_queries,
                 fitness=fitness, out=out, strategy=strategy,
                 seed=seed, device=device, batch=batch)


@app.command("calibration-sheet")
def calibration_sheet(
    out: Annotated[Path, typer.Option("--out", help="PDF to write; calib.json is written next to it")] = Path("calib.pdf"),
    page: Annotated[str, typer.Option("--page", help="a4, letter or a3")] = "a4",
    swatch_mm: Annotated[float, typer.Option("--swatch-mm", help="side of each colour swatch")] = 11.0,
    marker_mm: Annotated[float, typer.Option("--marker-mm", help="side of each corner ArUco marker")] = 16.0,
    margin_mm: Annotated[float, typer.Option("--margin-mm", help="blank border of the page")] = 10.0,
    levels: Annotated[int, typer.Option("--levels", help="steps per channel of the RGB grid (levels^3 colours)")] = 5,
    preview: Annotated[bool, typer.Option("--preview", help="also write a PNG of the page")] = False,
):
    """A page of colour swatches with ArUco markers, and its calib.json, to measure printer + camera colours."""
    from printing.calibration import CalibrationSettings, make_calibration_sheet, write_calibration_sheet
    from printing.sheet import check_sheet_out

    check_sheet_out(out, preview)
    sheet = make_calibration_sheet(CalibrationSettings(page=page, swatch_mm=swatch_mm, marker_mm=marker_mm,
                                                       margin_mm=margin_mm, levels=levels))
    paths = write_calibration_sheet(sheet, out, preview=preview)
    info = sheet.info
    typer.echo(f"wrote {', '.join(str(p) for p in paths)}: {len(info['swatches'])} swatches "
               f"({info['rows']}x{info['cols']}) of {swatch_mm:g} mm on {page}")


@app.command("calibrate")
def calibrate_cmd(
    source: Annotated[str, typer.Argument(help="photo, video, or folder/glob of photos of the printed calibration sheet")],
    sheet: Annotated[Path, typer.Option("--sheet", help="calib.json from `blocks calibration-sheet`")],
    out: Annotated[Path, typer.Option("--out", help="colour map to write (JSON)")] = Path("colormap.json"),
    max_frames: Annotated[int, typer.Option("--max-frames", help="video: frames (where the sheet is found) to average")] = 60,
    step: Annotated[int, typer.Option("--step", help="video: look at every STEP-th frame")] = 1,
):
    """Fit the printer-to-camera colour map from a photo or video of the calibration sheet."""
    from capture.calibrate import CalibrateSettings, calibrate, check_out

    check_out(out)
    checks.whole(max_frames, "--max-frames", 1)
    checks.whole(step, "--step", 1)
    _writable_file(out)
    cmap = calibrate(source, sheet, CalibrateSettings(max_frames=max_frames, step=step))
    cmap.save(out)
    e = cmap.extra
    typer.echo(f"wrote {out}: mean error {cmap.mean_error_rgb:.2f} RGB units (max {e['max_error_rgb']:.1f}) over "
               f"{e['swatches']} swatches, {e['frames_used']} of {e['frames_looked_at']} frame(s) used")
    if cmap.mean_error_rgb > 8:
        typer.echo("warning: a large fit error: uneven light, glare or a blurred photo? Retake it flat and evenly lit.",
                   err=True)


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code: 0 ok, 2 bad input, 130 interrupted."""
    from common.interrupts import handle_interrupts, interrupted

    try:
        with handle_interrupts():
            code = app(args=argv, prog_name="blocks", standalone_mode=False)
        if code == 130 and interrupted():  # typer turns a bare KeyboardInterrupt into a silent 130
            raise KeyboardInterrupt
    except UserError as e:
        if _prints(e):
            typer.echo(f"error: {e}", err=True)
        return e.exit_code
    except Interrupted as e:  # the command kept something and says what
        typer.echo(f"interrupted: {e}", err=True)
        return e.exit_code
    except (KeyboardInterrupt, typer.Abort):
        typer.echo("interrupted: nothing written", err=True)
        return 130
    except typer.Exit as e:
        return e.exit_code
    except Exception as e:
        # click's usage errors (vendored inside typer, so not importable by name) carry show().
        if hasattr(e, "show") and hasattr(e, "exit_code"):
            e.show()
            return e.exit_code
        raise
    return code if isinstance(code, int) else 0


def _prints(e: UserError) -> bool:
    """Under torchrun every rank raises the same error and rank 0 prints it; another rank prints
    only an error about itself ("rank 3: ...")."""
    import os

    rank = os.environ.get("RANK", "0") if os.environ.get("WORLD_SIZE", "1") != "1" else "0"
    return bool(str(e)) and (rank == "0" or str(e).startswith(f"rank {rank}:"))


def main() -> None:
    sys.exit(run())


if __name__ == "__main__":
    main()
