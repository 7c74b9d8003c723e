"""Judging a patch on fresh random views: success rate, target probability, and where it fails."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import torch

from blocks.checks import EVAL_BATCH, HELD_OUT_VIEWS  # torch-free, for the memory checks before loading
from common.distance import WORKS_RATE  # "works from coverage X": every bin from X up wins this often
from common.goal import Goal
from transforms.eot import random_views
from transforms.params import ViewModel

SEED = 12345  # the view seed when the caller gives none (the commands always give one; bench/ may not)


@dataclass
class Evaluation:
    success_rate: float  # share of views whose top-1 is the target (or is not the avoided class)
    mean_target_prob: float
    n: int
    by_scale: dict[str, dict]
    by_rotation: dict[str, dict]
    top5_rate: float = 0.0  # share of views with the target in the top 5 (or the avoided class out of it)
    # whole-frame views (transforms.held) only, else None:
    by_coverage: dict[str, dict] | None = None  # patch side / frame's shorter side, COVERAGE_EDGES bins
    by_reduction: dict[str, dict] | None = None  # squash | crop (how the frame became the model's square)
    by_tilt: dict[str, dict] | None = None  # out-of-plane tilt, 10-degree bins
    works_from: float | None = None  # the smallest coverage from which every bin wins >= WORKS_RATE

    def to_dict(self) -> dict:
        return dict(self.__dict__)


COVERAGE_EDGES = (0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0)


def coverage_bins(coverage: list[float]) -> list[tuple[float, str]]:
    """(sort key, "0.2-0.3") per view, on the fixed COVERAGE_EDGES (comparable across runs)."""
    out = []
    for c in coverage:
        i = max(0, min(len(COVERAGE_EDGES) - 2, sum(c >= e for e in COVERAGE_EDGES) - 1))
        lo, hi = COVERAGE_EDGES[i], COVERAGE_EDGES[i + 1]
        out.append((lo, f"{lo:g}-{hi:g}"))
    return out


def works_from(by_coverage: dict[str, dict], rate: float = WORKS_RATE) -> float | None:
    """The lower edge of the smallest coverage bin from which every larger bin wins >= rate."""
    rows = sorted((float(k.split("-")[0]), v["success_rate"]) for k, v in by_coverage.items())
    start = None
    for lo, win in reversed(rows):
        if win < rate:
            break
        start = lo
    return start


def evaluate_patch(model, patch: torch.Tensor, eot: ViewModel, target: "int | Goal | None" = None,
                   away_from: int | None = None, scenes: torch.Tensor | None = None, n: int = HELD_OUT_VIEWS,
                   seed: int = SEED, batch: int = EVAL_BATCH, scale_bins: int = 4,
                   rotation_bin_deg: float = 10.0, patch_map=None, size: int | None = None,
                   on_batch=None) -> Evaluation:
    """patch: (3, P, P) in [0, 1]. Uses its own seed so training views are never reused.
    target: a common.goal.Goal, or a class index to become (else away_from: one to stop being).
    size: side of the rendered views [default: the model's input size].
    on_batch(views) after each batch, with the number of views it held (progress bars)."""
    goal = Goal.of(target, away_from)
    device = model.device
    g = torch.Generator(device=device).manual_seed(seed)
    scenes = scenes.to(device) if scenes is not None else None
    seen = _judge_views(model, patch.to(device), eot, goal, scenes, n, batch, size or model.input_size, g, patch_map,
                        on_batch)
    win, prob, scale = seen["win"], seen["prob"], seen["scale"]
    lo, hi = eot.scale
    width = (hi - lo) / scale_bins
    scale_lo = [lo + width * min(int((s - lo) / width), scale_bins - 1) if width > 0 else lo
                for s in scale.tolist()]
    scale_bin = [(a, f"{a:.3f}-{a + width:.3f}") for a in scale_lo]
    rot_lo = [rotation_bin_deg * int(torch.floor(a / rotation_bin_deg)) for a in seen["angle"]]
    rot_bin = [(a, f"{a:g}..{a + rotation_bin_deg:g}") for a in rot_lo]
    ev = Evaluation(win.mean().item(), prob.mean().item(), n,
                    _breakdown(scale_bin, win, prob), _breakdown(rot_bin, win, prob),
                    top5_rate=seen["top5"].float().mean().item())
    if "crop" in seen:  # whole frames: by coverage (how close the camera is), reduction and tilt
        crop, tilt = seen["crop"], seen["tilt"]
        ev.by_coverage = _breakdown(coverage_bins(scale.tolist()), win, prob)
        ev.by_reduction = _breakdown([(float(c), "crop" if c > 0.5 else "squash") for c in crop.tolist()], win, prob)
        ev.by_tilt = _breakdown([(10 * int(t // 10), f"{10 * int(t // 10)}-{10 * int(t // 10) + 10}")
                                 for t in tilt.tolist()], win, prob)
        ev.works_from = works_from(ev.by_coverage)
    return ev


def _judge_views(model, patch, eot: ViewModel, goal: Goal, scenes, n: int, batch: int, size: int, g, patch_map,
                 on_batch) -> dict[str, torch.Tensor]:
    """Render n views in batches from generator g and judge each: per view (on the CPU) win, prob
    (of the goal), top5 (the goal in the top 5), scale and angle, and for whole frames crop and tilt."""
    keys = ("win", "prob", "top5", "scale", "angle", "crop", "tilt")
    got: dict[str, list] = {k: [] for k in keys}
    with torch.no_grad():
        for start in range(0, n, batch):
            m = min(batch, n - start)
            views, params = random_views(patch, m, size, eot, scenes, g, patch_map)
            logits = model(views)
            p = logits.softmax(1)
            got["top5"].append(goal.in_top(p, 5))
            got["win"].append(goal.wins(logits))
            got["prob"].append(goal.prob(p))
            got["scale"].append(params["scale"])
            got["angle"].append(params["rotation_deg"])
            if "crop" in params:
                got["crop"].append(params["crop"])
                got["tilt"].append(params["tilt_deg"])
            if on_batch is not None:
                on_batch(m)
    out = {k: torch.cat(v).cpu() for k, v in got.items() if v}
    out["win"], out["prob"] = out["win"].float(), out["prob"].float()
    return out


def rounded(value, n: int):
    """value (a dict, list or float, nested) with its floats rounded to what n views resolve: a
    rate over n views moves in steps of 1/n, so len(str(n)) + 1 decimals keep every step apart
    (512 views: 4 decimals) and drop the 16 digits of noise a mean of float32s carries."""
    digits = len(str(max(int(n), 1))) + 1
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, dict):
        return {k: rounded(v, n) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(rounded(v, n) for v in value)
    return value


def _breakdown(bins: list[tuple[float, str]], win: torch.Tensor, prob: torch.Tensor) -> dict[str, dict]:
    """bins: (sort key, label) per view -> {label: {n, success_rate, mean_target_prob}}."""
    groups = defaultdict(list)
    for i, b in enumerate(bins):
        groups[b].append(i)
    out = {}
    for (_, label), idx in sorted(groups.items()):
        idx = torch.tensor(idx)
        out[label] = {"n": len(idx), "success_rate": win[idx].mean().item(),
                      "mean_target_prob": prob[idx].mean().item()}
    return out


def evaluate_members(model, patch: torch.Tensor, eot: ViewModel, target: "int | Goal | None" = None,
                     away_from: int | None = None, scenes: torch.Tensor | None = None, n: int = HELD_OUT_VIEWS,
                     seed: int = SEED, patch_map=None, whole: Evaluation | None = None,
                     on_batch=None) -> list[dict]:
    """One row per model inside `model` (each member of an Ensemble, or the model itself), all
    judged on the same views, rendered at `model`'s input size: a transfer row. whole: model's own
    Evaluation on these views, if the caller has it (a single model's row then costs nothing)."""
    from blocks.models import members

    rows = []
    names = [m.name for m in members(model)]
    for m in members(model):
        if whole is not None and m is model:
            ev = whole
        else:
            ev = evaluate_patch(m, patch, eot, target, away_from, scenes, n=n, seed=seed,
                                patch_map=patch_map, size=model.input_size, on_batch=on_batch)
        # two members of one architecture are told apart by their weights
        name = m.name if names.count(m.name) == 1 else f"{m.name}@{m.weights_id[:8]}"
        rows.append({"model": name, "weights": m.weights_id, "success_rate": ev.success_rate,
                     "mean_target_prob": ev.mean_target_prob, "top5_rate": ev.top5_rate, "n": ev.n})
    return rows
