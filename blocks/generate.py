"""The steps of blocks.pipelines.run_generate: check the settings, load once, make one patch per
target, write patch.png + patch.json (then score the 8-bit file on held-out views and rewrite
patch.json), and a summary.json when there are several targets.

Under torchrun every rank runs these steps; rank 0 alone writes and reports, and what can fail on
one rank only (files on its node) is agreed first (Group.agree), so all ranks fail together. A
single-process run goes through the same steps with blocks.distributed.SoloGroup.
"""
from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from blocks import checks
from common.errors import Interrupted, UserError
from common.records import GenerateRow, GenerateSummary, PatchRecord

SCHEDULES = ("cosine", "linear", "constant")


def default_scale(scale, scenes, eot: str = "print") -> tuple[float, float] | None:
    """The patch's share of the image side: smaller on scenes, where it must leave room for them.
    For whole-frame presets (held) None: the preset's own coverage of the frame's shorter side."""
    if scale is not None:
        return tuple(scale)
    from transforms.eot import whole_frame

    if whole_frame(eot):
        return None
    return (0.4, 0.6) if scenes else (0.8, 1.0)


SAMPLE_TRAIN, SAMPLE_TEST = "sample photos: train", "sample photos: test"


def scene_sources(run) -> tuple[str | None, str | None]:
    """What the patch trains on and is judged on: the folders given, or for whole-frame presets
    with no scenes the photos that ship with the installed packages (split by photo)."""
    from transforms.eot import whole_frame

    if run.scenes is None and whole_frame(run.eot):
        return SAMPLE_TRAIN, str(run.eval_scenes) if run.eval_scenes else SAMPLE_TEST
    train = str(run.scenes) if run.scenes else None
    return train, str(run.eval_scenes) if run.eval_scenes else train


def check_run(run) -> None:
    """Every number in a GenerateRun, before anything loads; errors name the parameter."""
    if run.schedule not in SCHEDULES:
        raise UserError(f"schedule must be cosine, linear or constant, not {run.schedule!r}", param="schedule")
    checks.whole(run.steps, "steps", 1, checks.MAX_STEPS)
    checks.whole(run.batch, "batch", 1, checks.MAX_BATCH)
    checks.whole(run.eval_n, "eval_n", 1, 1_000_000)
    checks.whole(run.patch_size, "patch_size", 2, checks.MAX_PATCH_SIZE)
    checks.seed(run.seed)
    if not 0 <= run.momentum < 1:
        raise UserError("momentum must be in [0, 1)", param="momentum")
    if run.smooth is not None and not 0 <= run.smooth <= 64:
        raise UserError("smooth is a blur sigma in patch pixels, 0 to 64", param="smooth")
    if run.members not in ("mean", "balance", "cycle"):
        raise UserError(f"members is mean, balance or cycle, not {run.members!r}", param="members")
    if not 0 < run.epsilon <= 255:
        raise UserError("epsilon is a step size in 0-255 units: give a number in (0, 255]", param="epsilon")
    checks.number(run.final_fraction, "final_fraction", 0, 1)
    checks.number(run.max_seconds, "max_seconds", 0)  # 0: no limit
    checks.number(run.printability, "printability", 0, checks.MAX_WEIGHT)
    checks.number(run.tv, "tv", 0, checks.MAX_WEIGHT)
    if run.scale is not None:
        checks.span(run.scale, "scale", *checks.SCALE)


def default_out(run) -> Path:
    """runs/<target>-<time>, or runs/targets-<time> for several."""
    one = run.targets[0] if run.targets and len(run.targets) == 1 and not run.targets_file else None
    name = one or run.away_from or "targets"
    return Path("runs") / f"{name.replace(' ', '_')}-{time.strftime('%Y%m%d-%H%M%S')}"


def join_group(device: str, settings: dict):
    """The torchrun process group (ranks checked to share every setting), or the SoloGroup of a
    plain single-process run (WORLD_SIZE unset or 1)."""
    from blocks.distributed import SOLO, join, launched

    if not launched():
        return SOLO
    import atexit

    group = join(device)
    atexit.register(group.close)
    group.check_same(settings)
    return group


def target_list(targets: list[str] | None, targets_file: Path | None) -> list[str]:
    """The targets given, then the targets_file lines (blank lines and # comments skipped)."""
    wanted = list(targets or [])
    if targets_file is not None:
        from common.inputs import read_input_text

        try:
            text = read_input_text(targets_file, "targets_file")
        except UserError as e:
            raise UserError(str(e), param="targets_file") from None
        lines = [line.split("#")[0].strip() for line in text.splitlines()]
        if not any(lines):
            raise UserError(f"targets_file {targets_file} names no targets (one per line)", param="targets_file")
        wanted += [line for line in lines if line]
    return wanted


def goals_of(net, wanted: list[str], away_from: str | None):
    """One Goal per target (or the one away_from goal); each class at most once."""
    from blocks.targets import resolve_target

    if wanted and away_from is not None or not wanted and away_from is None:
        raise UserError("give exactly one of targets CLASS (become it) or away_from CLASS (stop being it)",
                        param=("targets", "away_from"))
    goals = [resolve_target(t, net.labels) for t in wanted] or [resolve_target(away_from, net.labels, targeted=False)]
    seen = set()
    for g in goals:
        if g.index in seen:
            raise UserError(f"target {g.name!r} ({g.index}) is asked for twice")
        seen.add(g.index)
    return goals


def goals_before_loading(specs: list, wanted: list[str], away_from: str | None) -> None:
    """A misspelt target fails in a second, not after the seconds of loading weights: checked
    against the class names where they come without loading anything and cannot disagree with
    the weights (the embedded and bundled models with their own names)."""
    from types import SimpleNamespace

    from blocks.models import LITE, class_names

    if len(specs) == 1 and specs[0].labels is None and specs[0].name in (*LITE, "digits"):
        goals_of(SimpleNamespace(labels=class_names(specs[0])), wanted, away_from)


def folder_name(goal) -> str:
    """'8-hen': the index keeps folders apart, the name keeps them readable."""
    return f"{goal.index}-{re.sub(r'[^A-Za-z0-9._-]+', '_', goal.name).strip('_')}".rstrip("-")


def load_colormap(path: Path | None):
    if path is None:
        return None
    from transforms.colormap import ColorMap

    return ColorMap.load(path)


def penalty(cmap, printability: float, tv: float):
    """The patch penalty for printability / tv weights, or None."""
    if not printability and not tv:
        return None
    from blocks.penalties import default_palette, non_printability, total_variation

    gamut = cmap.gamut if cmap is not None and cmap.gamut is not None else default_palette()

    def total(patch):
        value = 0.0
        if printability:
            value = value + printability * non_printability(patch, gamut, cmap)
        if tv:
            value = value + tv * total_variation(patch)
        return value

    return total


@dataclass
class Loaded:
    """What every target of a run shares: loaded once."""

    net: object
    goals: list
    cmap: object
    backgrounds: object
    held_out: object


def load(run, group, out: Path) -> Loaded:
    """Files, model and goals; under torchrun agreed across ranks (a file missing on one node fails all)."""
    import hashlib

    loaded = group.agree(prepare, run, group, out)
    net = loaded.net  # each rank read its own files: the same weights and labels on every rank
    group.check_same({"weights sha256": net.weights_id,
                      "labels sha256": hashlib.sha256("\n".join(net.labels).encode()).hexdigest()[:16]},
                     what="model files")
    return loaded


def prepare(run, group, out: Path) -> Loaded:
    """What load agrees on: the targets, the colour map, the output folder (rank 0 writes), the
    scenes, the model on this rank's device and the goals."""
    from blocks.pipelines import load_model

    wanted = target_list(run.targets, run.targets_file)
    goals_before_loading(run.models, wanted, run.away_from)
    cmap = load_colormap(run.colormap)
    if group.is_main:  # only rank 0 writes
        from common.files import check_output_dir

        check_output_dir(out)
    train, test = scene_sources(run)
    scenes, eval_scenes = read_scene_source(train), read_scene_source(test)
    net = load_model(run.models, group.device(run.device))
    goals = goals_of(net, wanted, run.away_from)
    from transforms.eot import whole_frame

    frames = whole_frame(run.eot)
    backgrounds = fit(scenes, net.input_size, frames)
    held_out = fit(eval_scenes, net.input_size, frames) if test != train else backgrounds
    return Loaded(net, goals, cmap, backgrounds, held_out)


def read_scene_source(source: str | None):
    """Scene images as read: a folder, or one side of the bundled sample photos."""
    from blocks.pipelines import read_scenes
    from blocks.scenes import sample_photos

    if source is None:
        return None
    if source in (SAMPLE_TRAIN, SAMPLE_TEST):
        return sample_photos("train" if source == SAMPLE_TRAIN else "test")
    return read_scenes(Path(source))


def fit(images, size: int, frames: bool = False):
    """Scenes at the model's side, or (frames) the larger squares whole-frame views crop bands from."""
    from blocks.scenes import fit_frames, fit_scenes

    if images is None:
        return None
    return fit_frames(images, size) if frames else fit_scenes(images, size)


def config_for(run, goal, net):
    from blocks.attacks.eot_fgsm import GenerateConfig, smoothing

    side = run.patch_size if run.patch_size is not None else max(8, net.input_size // 2)
    cfg = GenerateConfig(target=goal.target, away_from=goal.away_from, patch_size=side,
                         steps=run.steps, epsilon=run.epsilon / 255, final_fraction=run.final_fraction,
                         schedule=run.schedule, batch=run.batch, momentum=run.momentum,
                         max_seconds=run.max_seconds or None, seed=run.seed, smooth=run.smooth, members=run.members)
    cfg.smooth = smoothing(net, cfg)  # patch.json records the sigma used, not "default"
    return cfg


def record_for(run, goal, cfg, eot_cfg, result, loaded: Loaded, ranks: int, versions: dict) -> PatchRecord:
    """patch.json as first written: everything but the held-out check."""
    net = loaded.net
    train, test = scene_sources(run)
    scale = list(eot_cfg.placement.scale)
    return PatchRecord(
        target=goal, model=net.describe(),
        weights_sha256=net.weights_id, device=str(net.device), ranks=ranks, eot=run.eot,
        eot_settings=asdict(eot_cfg), scale=scale, scenes=train, eval_scenes=test,
        config=asdict(cfg), seed=run.seed, stopped=result.stopped, best_step=result.best_step,
        best_train_prob=result.best_objective_prob, steps_run=len(result.curve),
        seconds=round(result.seconds, 2), colormap=str(run.colormap) if run.colormap else None,
        printability=run.printability, tv=run.tv, curve=result.curve_dict(), versions=versions)


def judge(run, rec: PatchRecord, folder: Path, goal, eot_cfg, loaded: Loaded, progress=None) -> PatchRecord:
    """Score the 8-bit patch.png that is printed (not the float patch it was rounded from) on
    held-out views, each member alone too, and rewrite patch.json with the scores. progress:
    the pipelines' progress(label, total) for a bar counting the views judged."""
    from contextlib import nullcontext

    from blocks.evaluate import evaluate_members, evaluate_patch
    from blocks.models import members
    from blocks.report import plot_curve
    from common.files import load_image

    net = loaded.net
    several = len(members(net)) > 1
    total = run.eval_n * (1 + len(members(net)) if several else 1)
    try:
        if rec.steps_run:
            plot_curve(rec.curve, folder / "curve.png", f"{goal.mode}: {goal.name} ({net.name})")
        image = load_image(folder / "patch.png")
        views = dict(n=run.eval_n, seed=run.seed + 1, patch_map=loaded.cmap)
        with (progress("held-out check", total) if progress else nullcontext(None)) as update:
            views["on_batch"] = update
            held_out = evaluate_patch(net, image, eot_cfg, goal, scenes=loaded.held_out, **views)
            rec.held_out = {**held_out.to_dict(), "views": views_measured(run, eot_cfg, loaded)}
            rec.members = evaluate_members(net, image, eot_cfg, goal, scenes=loaded.held_out, whole=held_out,
                                           **views)
        rec.write(folder / "patch.json")  # patch.png is already written and unchanged
        rec = rec.as_written()
    except KeyboardInterrupt:
        raise Interrupted(f"kept the patch in {folder} (stopped during the held-out check: "
                          f"patch.json has no held_out)") from None
    return rec


def views_measured(run, eot_cfg, loaded: Loaded) -> dict:
    """What the held-out figure measured, for patch.json and the final line: the EOT preset, the
    patch's side as a share of the view's side, and the scene photos behind it (None: random
    plain backgrounds)."""
    held_out = loaded.held_out
    return {"eot": run.eot, "scale": list(eot_cfg.placement.scale),
            "scenes": scene_sources(run)[1] if held_out is not None else None,
            "scene_images": len(held_out) if held_out is not None else 0,
            "whole_frame": eot_cfg.held is not None}


def summary_of(records: list[PatchRecord], folders: list[Path], net, ranks: int) -> GenerateSummary:
    rows = []
    for rec, folder in zip(records, folders):
        ev = rec.held_out or {}
        rows.append(GenerateRow(target=rec.target,
                                held_out_success=ev.get("success_rate"), mean_target_prob=ev.get("mean_target_prob"),
                                best_step=rec.best_step, steps_run=rec.steps_run, seconds=rec.seconds,
                                stopped=rec.stopped, folder=str(folder)))
    return GenerateSummary(model=net.describe(), weights_sha256=net.weights_id, ranks=ranks, targets=tuple(rows))

