"""What a `blocks generate` run leaves for each target: patch.json's record, the held-out check
of the 8-bit patch.png that is printed (which rewrites patch.json and curve.png), and the
summary.json row of a many-target run. `run` is the command's GenerateRun and `loaded` what the
run loaded once (blocks.commands.generate.Loaded, its scene sources included)."""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from blocks import reach
from common.errors import Interrupted
from common.records import GenerateRow, GenerateSummary, PatchRecord


def record_for(run, goal, cfg, eot_cfg, result, loaded, ranks: int, versions: dict) -> PatchRecord:
    """patch.json as first written: everything but the held-out check."""
    net = loaded.net
    train, test = loaded.sources
    scale = list(eot_cfg.scale)
    rec = PatchRecord(
        target=goal, model=net.describe(),
        weights_sha256=net.weights_id, device=str(net.device), ranks=ranks, eot=run.eot,
        eot_settings=eot_cfg.settings(), scale=scale, scenes=train, eval_scenes=test,
        config=asdict(cfg), seed=run.attack.seed, stopped=result.stopped, best_step=result.best_step,
        best_train_prob=result.best_objective_prob, steps_run=len(result.curve),
        seconds=round(result.seconds, 2), colormap=str(run.colormap) if run.colormap else None,
        printability=run.printability, tv=run.tv, curve=result.curve_dict(), versions=versions,
        reach=reach.reach_of(run, eot_cfg))
    return reach.continued(rec, loaded.resumed, result) if loaded.resumed is not None else rec


def judge(run, rec: PatchRecord, files: list[Path], goal, eot_cfg, loaded, progress=None) -> PatchRecord:
    """Score the 8-bit patch.png that is printed (not the float patch it was rounded from) on
    held-out views, each member alone too, and rewrite patch.json with the scores. files: the
    patch's png, json and curve (patch_files). progress: run_generate's check_progress(label,
    total) for a bar counting the views judged."""
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
            plot_curve(rec.curve, files[2], f"{goal.mode}: {goal.name} ({net.name})")
        image = load_image(files[0])
        views = dict(n=run.eval_n, seed=run.attack.seed + 1, patch_map=loaded.cmap)
        with (progress("held-out check", total) if progress else nullcontext(None)) as update:
            views["on_batch"] = update
            held_out = evaluate_patch(net, image, eot_cfg, goal, scenes=loaded.held_out, **views)
            rec.held_out = {**held_out.to_dict(), "views": views_measured(run, eot_cfg, loaded)}
            if rec.reach is not None:  # the held-out views are the band's: their success is the distance's
                rec.reach = rec.reach.replaced(success=held_out.success_rate)
            rec.members = evaluate_members(net, image, eot_cfg, goal, scenes=loaded.held_out, whole=held_out,
                                           **views)
        if rec.steps_run:  # again, now with what the final line reports (the one above survives a Ctrl-C)
            plot_curve(rec.curve, files[2], f"{goal.mode}: {goal.name} ({net.name})", rec.held_out)
        rec.write(files[1])  # patch.png is already written and unchanged
        rec = rec.as_written()
    except KeyboardInterrupt:
        raise Interrupted(f"kept the patch {files[0]} (stopped during the held-out check: "
                          f"{files[1].name} has no held_out)") from None
    return rec


def views_measured(run, eot_cfg, loaded) -> dict:
    """What the held-out figure measured, for patch.json and the final line: the EOT preset, the
    patch's side as a share of the view's side, and the scene photos behind it (None: random
    plain backgrounds)."""
    held_out = loaded.held_out
    return {"eot": run.eot, "scale": list(eot_cfg.scale),
            "scenes": loaded.sources[1] if held_out is not None else None,
            "scene_images": len(held_out) if held_out is not None else 0,
            "whole_frame": eot_cfg.whole_frame}


def summary_of(records: list[PatchRecord], folders: list[Path], net, ranks: int) -> GenerateSummary:
    rows = []
    for rec, folder in zip(records, folders):
        ev = rec.held_out or {}
        rows.append(GenerateRow(target=rec.target,
                                held_out_success=ev.get("success_rate"), mean_target_prob=ev.get("mean_target_prob"),
                                best_step=rec.best_step, steps_run=rec.steps_run, seconds=rec.seconds,
                                stopped=rec.stopped, folder=str(folder)))
    return GenerateSummary(model=net.describe(), weights_sha256=net.weights_id, ranks=ranks, targets=tuple(rows))
