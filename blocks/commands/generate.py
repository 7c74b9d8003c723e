"""`blocks generate`: its settings (GenerateRun) and pipeline (run_generate) with the steps it
takes: check the settings, load once, make one patch per target, write patch.png + patch.json
(then score the 8-bit file on held-out views and rewrite patch.json), and a summary.json when
there are several targets.

Under torchrun every rank runs these steps; rank 0 alone writes and reports, and what can fail on
one rank only (files on its node) is agreed first (Group.agree), so all ranks fail together. A
single-process run goes through the same steps with blocks.distributed.SoloGroup.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from blocks import checks, reach
from blocks.targets import folder_name, goals_before_loading, goals_of, target_list
from blocks.commands import shared
from blocks.commands.shared import no_progress
from blocks.attacks.config import MAX_SECONDS, GenerateConfig, default_patch_side
from common.distance import DEFAULT_SIZE_MM, WEBCAM_FOV_DEG
from common.errors import Interrupted, UserError
if TYPE_CHECKING:  # the records (pydantic models) load when a pipeline runs, not for --help
    from common.records import PatchRecord


def command_attack() -> GenerateConfig:
    """The attack's settings as `blocks generate` starts them: the library's (blocks.attacks.config),
    but for three. batch 8: the command's views per step, the CPU's budget (the library's 32 suits a
    GPU). takeoff 0.2: the first fifth of the run at twice epsilon (at batch 8 a first step of
    32/255 left black late or never on some seeds: bench/reach_seeds.py, docs/physical.md).
    patch_size None: default_patch_side of the model's input side and the views, known once the model
    loads (64 px at 224 on whole camera frames, half the input side otherwise).
    max_seconds None or 0: no clock; smooth None: 0.8 for an ensemble, 0 for one model."""
    return GenerateConfig(batch=8, takeoff=0.2, patch_size=None)


@dataclass
class GenerateRun:
    """`blocks generate`. targets: classes to become (one patch each); or away_from: a class to
    stop being. attack: the attack's own settings (steps, epsilon in [0, 1] units, batch, seed, ...:
    blocks.attacks.config.GenerateConfig, with command_attack's defaults). scale: (min, max) patch
    side / image side [default (0.8, 1.0), (0.4, 0.6) with scenes]. out: [default runs/<target>-<time>]."""

    models: list = field(default_factory=shared.default_models)  # list[blocks.models.ModelSpec]
    targets: list[str] = field(default_factory=list)
    targets_file: Path | None = None
    away_from: str | None = None
    device: str = "auto"
    # the attack's settings, in its own units (epsilon in [0, 1]; the --epsilon flag speaks 0-255 and
    # converts once); target and away_from are filled per goal by config_for
    attack: GenerateConfig = field(default_factory=command_attack)
    scale: tuple[float, float] | None = None
    scenes: Path | None = None
    eval_scenes: Path | None = None
    eot: str = "held"
    colormap: Path | None = None
    printability: float = 0.0
    tv: float = 0.0
    eval_n: int = checks.HELD_OUT_VIEWS
    out: Path | None = None
    overwrite: bool = False  # replace a finished patch in out (an interrupted run never does: PARTIAL)
    # where the block will be used (blocks.reach): distance_m sets the coverage trained on
    distance_m: float | None = None
    size_mm: float = DEFAULT_SIZE_MM
    fov_deg: float = WEBCAM_FOV_DEG
    resume: Path | None = None  # a generate output folder to continue (into a new folder)


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
    held-out views. on_patch(record, its patch.png) after each target is judged (rank 0 only under torchrun).
    progress: updated with each StepRecord; check_progress: with the views of the held-out check
    judged in each batch."""
    # a misspelt target first, in a second: before the imports below bring in torch (tests/test_targets.py)
    if run.resume is None:  # a resumed run takes its target from the old run (checked in _prepare)
        goals_before_loading(run.models, target_list(run.targets, run.targets_file), run.away_from)
    from blocks.outcome import summary_of
    from blocks.report import library_versions
    from common.interrupts import interrupted

    run, old, group, eot_cfg, out = _prepare(run)
    if run.attack.batch < group.world:
        raise UserError(f"batch {run.attack.batch} is smaller than the {group.world} ranks torchrun started: each rank "
                        f"renders at least one view per step (give batch >= {group.world} or start fewer ranks)",
                        param="batch")
    loaded = load(run, group, out)
    if old is not None:
        reach.check_resume_weights(old, loaded.net)
        loaded.resumed = old
    versions = library_versions()  # now, not after a Ctrl-C: importing takes seconds there
    if interrupted():  # a Ctrl-C that an import swallowed (torch's C init can): nothing is written yet
        raise KeyboardInterrupt
    done = _make_each(run, loaded, eot_cfg, group, out, versions, progress, on_patch, check_progress)
    if len(loaded.goals) > 1 and group.is_main:
        done.summary = summary_of(done.patches, done.folders, loaded.net, group.world)
        done.summary.write(out / "summary.json")
    return done


def _make_each(run: GenerateRun, loaded: Loaded, eot_cfg, group, out: Path, versions: dict, progress, on_patch,
               check_progress) -> Generated:
    """One patch per goal: train it, write and judge it; a Ctrl-C keeps what the interrupted
    target had (its best patch) and stops the run."""
    from blocks.distributed import QuietExit

    several = len(loaded.goals) > 1
    done = Generated([], [], None)
    net = loaded.net
    checks.views_fit(run.attack.batch, net.input_size, patch_side(run, net), run.eval_n, net.device, checks.view_copies(net))
    for goal in loaded.goals:
        folder = out / folder_name(goal) if several else out
        cfg, result = _train_patch(run, goal, eot_cfg, loaded, group, progress, several)
        rec, judged, png = group.agree(_write_and_judge, run, goal, cfg, eot_cfg, result, loaded, group, folder,
                                       versions, on_patch, check_progress)
        if group.is_main:
            done.patches.append(rec)
            done.folders.append(folder)
        if result.stopped == "interrupted":
            if not group.is_main:
                raise QuietExit(130)
            where = (f"as {png}, beside the finished {png.with_name('patch.png').name} (left as it was)"
                     if png.name != "patch.png" else f"in {folder}")
            raise Interrupted(f"kept the best patch (step {result.best_step}) {where}"
                              + ("" if judged else f" (no held-out check: {png.with_suffix('.json').name} has no held_out)"))
    return done


def _prepare(run: GenerateRun):
    """Before any model loads: the resumed run's settings, the torchrun group, every check, the
    views' settings and the output folder. Returns (run, the resumed record or None, group, eot_cfg, out)."""
    from transforms.eot import preset

    old = None
    if run.resume is not None:  # the old run's settings first: they are checked like given ones
        old = reach.read_resumed(run.resume)
        run = reach.resumed_run(run, old, (shared.SAMPLE_TRAIN, shared.SAMPLE_TEST))
        reach.check_resume_model(old, run.models)
    # paths may differ per node; the models are compared after loading, by their weights' hashes
    same = {k: v for k, v in {**asdict(run.attack), **asdict(run)}.items()  # by the flags' names
            if k not in ("models", "attack") and not isinstance(v, Path)}
    group = join_group(run.device, same)
    check_run(run)
    band = reach.check_reach(run)
    eot_cfg = preset(run.eot, band or shared.default_scale(run.scale, run.scenes, run.eot))
    if old is not None:  # the patch already wins near: no warm-up
        eot_cfg = eot_cfg.without_warmup()
    out = Path(run.out) if run.out is not None else default_out(run)
    _check_generate_outputs(run, out)
    return run, old, group, eot_cfg, out


def _train_patch(run: GenerateRun, goal, eot_cfg, loaded, group, progress, several: bool):
    """One target's patch (blocks.attacks.eot_fgsm.generate_patch), rank 0 drawing the progress.
    Returns (its GenerateConfig, its GenerateResult)."""
    from blocks import penalties
    from blocks.attacks.driver import generate_patch
    from common.interrupts import on_stop

    cfg = config_for(run, goal, loaded.net)
    on_stop("stopping: checking the best patch on held-out views; Ctrl-C again to skip" if group.alone
            else "stopping: keeping the best patch (every rank stops at the same step)")
    main_rank = group.is_main
    with (progress(goal.name if several else "generate", run.attack.steps) if main_rank else no_progress("", 0)) as step:
        on_step = checks.finite_steps(step) if group.alone else step if main_rank else None  # NaN: one line
        on_step = with_governor(on_step, loaded.net)
        init = loaded.resumed.patch if loaded.resumed is not None else None
        result = generate_patch(loaded.net, cfg, eot_cfg, loaded.backgrounds, on_step=on_step,
                                patch_map=loaded.cmap, penalty=penalties.patch_penalty(loaded.cmap, run.printability, run.tv),
                                group=group, init=init)
    return cfg, result


def with_governor(on_step, net):
    """on_step, then (on a CPU) the thread governor: torch's thread count follows the load
    other processes put on the cores during the run (blocks.attacks.speed.ThreadGovernor)."""
    if net.device.type != "cpu":
        return on_step
    from blocks.attacks.speed import ThreadGovernor

    governor = ThreadGovernor()

    def both(record):
        if on_step is not None:
            on_step(record)
        governor(record)

    return both


def _write_and_judge(run: GenerateRun, goal, cfg, eot_cfg, result, loaded, group, folder: Path, versions: dict,
                     on_patch, check_progress) -> tuple[PatchRecord | None, bool]:
    """Rank 0 writes patch.png + patch.json and judges the patch on held-out views; the other
    ranks learn whether that worked (Group.agree). An interrupted run never replaces a finished
    patch (there with overwrite): it writes patch.partial.png, .json and curve.partial.png beside it.
    Returns (the record, whether it was judged, the patch.png written)."""
    from blocks.outcome import judge, record_for
    from blocks.report import write_patch
    from common.interrupts import listening

    if not group.is_main:
        return None, True, None
    rec = record_for(run, goal, cfg, eot_cfg, result, loaded, group.world, versions)
    files = patch_files(folder, partial=result.stopped == "interrupted" and (folder / "patch.png").exists())
    rec = write_patch(files[0], files[1], result.patch, rec)  # first: nothing is lost if judging is interrupted
    judged = True
    if result.stopped != "interrupted":
        rec = judge(run, rec, files, goal, eot_cfg, loaded, check_progress)
    elif group.alone:  # a Ctrl-C stopped the steps: judge what was kept, unless Ctrl-C again
        try:
            with listening():
                rec = judge(run, rec, files, goal, eot_cfg, loaded, check_progress)
        except (Interrupted, KeyboardInterrupt):
            judged = False
    else:  # under torchrun the ranks have already left together
        judged = False
    if on_patch and judged:
        on_patch(rec, files[0])
    return rec, judged, files[0]


def _check_generate_outputs(run: GenerateRun, out: Path) -> None:
    from common.inputs import check_not_input

    ins = shared.input_files(run.colormap, run.targets_file, run.scenes, run.eval_scenes,
                             shared.model_files(run.models))
    check_not_input([out], ins)
    names = ("patch.png", "patch.json", "curve.png", "summary.json")
    check_not_input([(out / n, f"its {n}") for n in names], ins)


PATCH_FILES = ("patch.png", "patch.json", "curve.png")
PARTIAL = "partial"  # an interrupted run beside a finished patch writes patch.partial.png and so on


def patch_files(folder: Path, partial: bool = False) -> list[Path]:
    """The files of one target's patch: patch.png, patch.json, curve.png (or patch.partial.png, ...)."""
    return [folder / partial_name(n) if partial else folder / n for n in PATCH_FILES]


def partial_name(name: str) -> str:
    """patch.png -> patch.partial.png"""
    stem, _, suffix = name.rpartition(".")
    return f"{stem}.{PARTIAL}.{suffix}"


SCHEDULES = ("cosine", "linear", "constant")


def scene_sources(run) -> tuple[str | None, str | None]:
    """What the patch trains on and is judged on: the folders given, or for whole-frame presets
    with no scenes the photos that ship with the installed packages (split by photo)."""
    from transforms.eot import whole_frame

    if run.scenes is None and whole_frame(run.eot):
        return shared.SAMPLE_TRAIN, str(run.eval_scenes) if run.eval_scenes else shared.SAMPLE_TEST
    train = str(run.scenes) if run.scenes else None
    return train, str(run.eval_scenes) if run.eval_scenes else train


def check_run(run) -> None:
    """Every number in a GenerateRun, before anything loads; errors name the parameter."""
    att = run.attack
    if att.schedule not in SCHEDULES:
        raise UserError(f"schedule must be cosine, linear or constant, not {att.schedule!r}", param="schedule")
    checks.whole(att.steps, "steps", 1, checks.MAX_STEPS)
    checks.whole(att.batch, "batch", 1, checks.MAX_BATCH)
    checks.whole(run.eval_n, "eval_n", 1, 1_000_000)
    checks.whole(att.patch_size, "patch_size", 2, checks.MAX_PATCH_SIZE)
    checks.seed(att.seed)
    if not 0 <= att.momentum < 1:
        raise UserError("momentum must be in [0, 1)", param="momentum")
    if att.smooth is not None and not 0 <= att.smooth <= 64:
        raise UserError("smooth is a blur sigma in patch pixels, 0 to 64", param="smooth")
    if att.members not in ("mean", "balance", "cycle"):
        raise UserError(f"members is mean, balance or cycle, not {att.members!r}", param="members")
    if not 0 < att.epsilon <= 1:  # the flag's 0-255 units, divided once (blocks.cli)
        raise UserError("epsilon is a step size in 0-255 units: give a number in (0, 255]", param="epsilon")
    checks.number(att.final_fraction, "final_fraction", 0, 1)
    checks.number(att.max_seconds, "max_seconds", 0, MAX_SECONDS)  # 0: no limit
    checks.number(run.printability, "printability", 0, checks.MAX_WEIGHT)
    checks.number(run.tv, "tv", 0, checks.MAX_WEIGHT)
    if run.scale is not None:
        checks.span(run.scale, "scale", *checks.SCALE)
    from blocks.attacks.speed import AUTOCAST

    if att.autocast not in AUTOCAST:
        raise UserError(f"autocast is {', '.join(AUTOCAST)}, not {att.autocast!r}", param="autocast")


def default_out(run) -> Path:
    """runs/<target>-<time>, or runs/targets-<time> for several."""
    one = run.targets[0] if run.targets and len(run.targets) == 1 and not run.targets_file else None
    name = one or run.away_from or "targets"
    base = Path("runs") / f"{name.replace(' ', '_')}-{time.strftime('%Y%m%d-%H%M%S')}"
    out, n = base, 1
    while out.exists():  # two runs in the same second: the second gets its own folder, never the first's
        n += 1
        out = base.with_name(f"{base.name}-{n}")
    return out


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


@dataclass
class Loaded:
    """What every target of a run shares: loaded once."""

    net: object
    goals: list
    cmap: object
    backgrounds: object
    held_out: object
    resumed: object = None  # blocks.reach.Resumed under --resume
    sources: tuple = (None, None)  # scene_sources(run): the photos trained on and judged on


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
    from common.files import check_new_outputs

    wanted = target_list(run.targets, run.targets_file)
    goals_before_loading(run.models, wanted, run.away_from)
    cmap = shared.load_colormap(run.colormap)
    several = len(wanted) > 1
    if group.is_main:  # only rank 0 writes
        from common.files import check_output_dir

        check_output_dir(out)
        # a finished patch is not replaced unasked; several targets: each folder once the goals are known
        check_new_outputs([out / "summary.json"] if several else patch_files(out), run.overwrite)
    train, test = scene_sources(run)
    scenes, eval_scenes = shared.read_scene_source(train), shared.read_scene_source(test)
    net = shared.load_model(run.models, group.device(run.device))
    goals = goals_of(net, wanted, run.away_from)
    if group.is_main and several:
        check_new_outputs([p for g in goals for p in patch_files(out / folder_name(g))], run.overwrite)
    from transforms.eot import whole_frame

    frames = whole_frame(run.eot)
    backgrounds = shared.fit(scenes, net.input_size, frames)
    held_out = shared.fit(eval_scenes, net.input_size, frames) if test != train else backgrounds
    return Loaded(net, goals, cmap, backgrounds, held_out, sources=(train, test))


def patch_side(run, net) -> int:
    side = run.attack.patch_size
    return side if side is not None else default_patch_side(net.input_size, run.eot)


def config_for(run, goal, net):
    """run.attack for one goal on the loaded model: its target, its patch side, no clock for 0."""
    from blocks.attacks.eot_fgsm import smoothing

    cfg = replace(run.attack, target=goal.target, away_from=goal.away_from, patch_size=patch_side(run, net),
                  max_seconds=run.attack.max_seconds or None)
    cfg.smooth = smoothing(net, cfg)  # patch.json records the sigma used, not "default"
    return cfg


