"""Where `blocks generate` is meant to work, and how a run buys more of it: the --distance band
(the coverage a block of --size-mm has over the distances around the one asked, from
common.distance) and --resume (a saved patch continued, its settings, curve and best-patch
record carried on, into a new folder).

A resumed run is a warm restart: the patch starts as the saved patch.png (8-bit: at most half a
level from the float patch it was rounded from, far below any step), its cosine schedule starts at
RESUME_RESTART times the old run's last step size (the first run's 32/255 would undo it), the
views are drawn from a new stream (seed + the steps already run: more views, not the same ones
again), and the whole-frame warm-up (near views first) is skipped: the patch already wins near.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from pathlib import Path

from common.errors import UserError

MAX_DISTANCE_M = 100.0  # metres: beyond any printable block's reach (printing.sheet checks the same)
MAX_SIZE_MM = 2000.0  # a 2 m block: more is a typo (mm for m), not a card anyone holds up
RESUME_RESTART = 2.0  # a resumed run's first step: this many times the old run's last one


def check_reach(run) -> tuple[float, float] | None:
    """The coverage band (lo, hi) that run.distance_m asks for, or None without one; errors name
    the parameter. Runs before anything loads."""
    from common.distance import MIN_COVERAGE, coverage_at, reach_band

    for name, top in (("size_mm", MAX_SIZE_MM), ("fov_deg", 170.0)):
        value = getattr(run, name)
        if not (isinstance(value, (int, float)) and math.isfinite(value) and 0 < value <= top):
            raise UserError(f"{name} must be a finite number in (0, {top:g}], not {value!r}", param=name)
    if not 10 <= run.fov_deg:
        raise UserError(f"fov_deg is a camera's horizontal field of view, 10 to 170 degrees, not {run.fov_deg:g}",
                        param="fov_deg")
    d = run.distance_m
    if d is None:
        return None
    if not (isinstance(d, (int, float)) and math.isfinite(d) and 0 < d <= MAX_DISTANCE_M):
        raise UserError(f"distance_m is metres from the camera: a finite number in (0, {MAX_DISTANCE_M:g}], "
                        f"not {d!r}", param="distance_m")
    from transforms.eot import whole_frame

    if not whole_frame(run.eot):
        raise UserError(f"distance_m needs whole-frame views (eot held), not eot {run.eot}", param=("distance_m", "eot"))
    if run.scale is not None:
        raise UserError("give distance_m or scale, not both: distance_m sets the coverage scale trains on",
                        param=("distance_m", "scale"))
    cover = coverage_at(run.size_mm, d * 1000, run.fov_deg)
    if not MIN_COVERAGE <= cover <= 1:
        what = "less than 5% of" if cover < MIN_COVERAGE else "more than"
        raise UserError(f"a {run.size_mm:g} mm block at {d:g} m covers {what} the frame's shorter side "
                        f"({cover:.3f}) of a {run.fov_deg:g} degree camera: give a distance_m between "
                        f"{d * cover / 1:.2f} and {d * cover / MIN_COVERAGE:.2f} m or another size_mm",
                        param=("size_mm", "distance_m"))
    return reach_band(run.size_mm, d, run.fov_deg)


def reach_of(run, eot_cfg) -> dict | None:
    """patch.json's `reach`: what the run was asked for and the coverage it trained on."""
    if run.distance_m is None:
        return None
    from common.distance import REACH_BAND

    lo, hi = eot_cfg.scale  # whole frames (check_reach): the coverage
    return {"distance_m": run.distance_m, "size_mm": run.size_mm, "fov_deg": run.fov_deg,
            "band_m": [round(run.distance_m * k, 4) for k in REACH_BAND], "coverage": [lo, hi]}


# --- --resume ------------------------------------------------------------------------------------

@dataclass
class Resumed:
    """A saved run to continue: its folder, patch.json record and patch.png as a (3, P, P) tensor."""

    folder: Path
    record: object  # common.records.PatchRecord
    patch: object  # torch.Tensor (3, P, P) in [0, 1]


# What a resumed run takes from the old one unless its flag was given (a value other than
# GenerateRun's default): the attack's settings (GenerateRun.attack) and the views' settings.
CARRIED_ATTACK = ("patch_size", "final_fraction", "schedule", "batch", "momentum", "smooth", "members", "autocast")
CARRIED = ("eot", "scale", "scenes", "eval_scenes", "colormap", "printability", "tv", "eval_n", "distance_m",
           "size_mm", "fov_deg")


def read_resumed(folder: Path) -> Resumed:
    """The run in `folder`: its patch.json and patch.png, or one line saying what is missing."""
    from common.files import load_image
    from common.records import PatchRecord

    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"resume {folder}: no such folder (give a `blocks generate` output folder)", param="resume")
    missing = [n for n in ("patch.png", "patch.json") if not (folder / n).is_file()]
    if missing:
        raise UserError(f"resume {folder}: no {' or '.join(missing)} there (not a `blocks generate` output folder?)",
                        param="resume")
    rec = PatchRecord.read(folder / "patch.json")
    if rec.target is None or rec.target.index is None or rec.config is None:
        raise UserError(f"resume {folder}: its patch.json names no target class or settings", param="resume")
    curve = rec.curve if rec.curve is not None else {}
    numbers = isinstance(curve, dict) and all(
        isinstance(v, list) and len(v) == rec.steps_run and
        all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v) for v in curve.values())
    if not numbers or rec.steps_run < 0:
        raise UserError(f"resume {folder}: its patch.json's curve is not {rec.steps_run} numbers per field (steps_run)", param="resume")
    image = load_image(folder / "patch.png")
    if tuple(image.shape[1:]) != (rec.config.patch_size,) * 2:
        raise UserError(f"resume {folder}: patch.png is {image.shape[-1]} px but patch.json says "
                        f"{rec.config.patch_size}", param="resume")
    return Resumed(folder, rec, image)


def resumed_run(run, old: Resumed, samples: tuple[str, str]):
    """samples: how patch.json names the shipped photos' two sides (blocks.commands.shared), which
    no flag names. Returns run with the old run's target and settings wherever its own are the defaults, a new view
    stream and a warm-restart step size; out defaults to <old>-resumed-<time>."""
    from blocks.checks import MAX_SEED

    if run.targets or run.targets_file or run.away_from:
        raise UserError("resume continues the saved patch's own target: leave out targets / away_from",
                        param=("resume", "targets", "away_from"))
    rec, cfg = old.record, old.record.config
    was = _old_settings(rec, samples)
    defaults = type(run)()  # GenerateRun's defaults: a value equal to one was not given
    changes = {k: was[k] for k in CARRIED if k in was and getattr(run, k) == getattr(defaults, k)}
    attack = {k: was[k] for k in CARRIED_ATTACK if k in was and getattr(run.attack, k) == getattr(defaults.attack, k)}
    if run.distance_m is not None:  # asked for now: the old run's coverage gives way to it
        changes.pop("scale", None)
    if run.scale is not None:
        changes.pop("distance_m", None)
    goal = rec.target
    changes["targets" if goal.targeted else "away_from"] = [str(goal.index)] if goal.targeted else str(goal.index)
    if run.attack.epsilon == defaults.attack.epsilon:  # both in [0, 1] units, as patch.json's curve
        last = (rec.curve or {}).get("epsilon") or [defaults.attack.epsilon if cfg.epsilon is None else cfg.epsilon]
        attack["epsilon"] = min(1.0, RESUME_RESTART * float(last[-1]))
    attack["takeoff"] = 0.0  # the saved patch has left black: no take-off phase to undo it
    if run.attack.seed == defaults.attack.seed:
        attack["seed"] = (int(cfg.seed or 0) + rec.steps_run) % (MAX_SEED + 1)
    if run.out is None:
        changes["out"] = old.folder.parent / f"{old.folder.name}-resumed-{time.strftime('%Y%m%d-%H%M%S')}"
    return replace(run, attack=replace(run.attack, **attack), **changes)


def _old_settings(rec, samples: tuple[str, str]) -> dict:
    """The settings an old patch.json records: the attack's (CARRIED_ATTACK) and GenerateRun's own
    (CARRIED), by their field names."""
    cfg = rec.config.to_json()  # the typed fields and the attack's others
    was = {k: cfg[k] for k in CARRIED_ATTACK if k in cfg}
    was.update(eot=rec.eot, printability=rec.printability, tv=rec.tv,
               colormap=Path(rec.colormap) if rec.colormap else None)
    for key, value, sample in (("scenes", rec.scenes, samples[0]), ("eval_scenes", rec.eval_scenes, samples[1])):
        was[key] = Path(value) if value and value != sample else None
    if rec.reach is not None and rec.reach.distance_m:
        was.update(distance_m=rec.reach.distance_m, size_mm=rec.reach.size_mm, fov_deg=rec.reach.fov_deg)
    elif rec.scale:
        was["scale"] = tuple(rec.scale)
    if rec.held_out is not None and rec.held_out.n:
        was["eval_n"] = rec.held_out.n
    was = {k: v for k, v in was.items() if v is not None or k in ("colormap", "scenes", "eval_scenes")}
    for key, value in was.items():  # patch.json is a stranger's file: its numbers are checked later,
        kind = KINDS.get(key)  # with the flags'; here only that each is of its kind
        ok = kind is None or (isinstance(value, kind) and not isinstance(value, bool))
        if not ok:
            raise UserError(f"resume: its patch.json's {key} is {value!r}, not a {kind[0].__name__}", param="resume")
    return was


KINDS = {**dict.fromkeys(("patch_size", "batch", "eval_n"), (int,)),
         **dict.fromkeys(("final_fraction", "momentum", "smooth", "distance_m", "size_mm", "fov_deg",
                          "printability", "tv"), (float, int)),
         **dict.fromkeys(("schedule", "members", "autocast", "eot"), (str,))}


def check_resume_model(old: Resumed, specs: list) -> None:
    """Before loading: a patch made on a model of another name is refused (the weights' hash is
    compared once the model is loaded: check_resume_weights)."""
    name = old.record.model_name()
    if len(specs) == 1 and name is not None and specs[0].name != name and specs[0].weights is None:
        raise UserError(f"resume {old.folder}: the patch was made on model {name}, not {specs[0].name} "
                        f"(give model={name} and its weights)", param=("resume", "model"))


def check_resume_weights(old: Resumed, net) -> None:
    if old.record.weights_sha256 and old.record.weights_sha256 != net.weights_id:
        raise UserError(f"resume {old.folder}: the patch was made on other weights (sha256 "
                        f"{old.record.weights_sha256[:12]}, loaded {str(net.weights_id)[:12]}): give the "
                        f"model and weights it was made on", param="resume")


def continued(rec, old: Resumed, result):
    """The new run's patch.json record with the old run's curve before its own: step numbers and
    seconds continue, best_step counts from the first run's start (a chunk whose best is its start
    patch keeps the old best step), resumed_from says what it continued."""
    prior = old.record
    n, secs = prior.steps_run, float(prior.seconds or 0.0)
    curve = {k: list((prior.curve or {}).get(k, [])) for k in rec.curve}
    shift = {"step": n, "seconds": secs}
    for k, values in rec.curve.items():
        curve[k] += [v + shift[k] if k in shift else v for v in values]
    best = prior.best_step if result.best_step == 0 else n + result.best_step
    held = prior.held_out.success_rate if prior.held_out is not None else None
    return rec.replaced(curve=curve, steps_run=n + rec.steps_run, seconds=round(secs + rec.seconds, 2),
                   best_step=best, resumed_from={"folder": str(old.folder), "patch_sha256": prior.patch_sha256,
                                                 "steps_run": n, "held_out_success": held})
