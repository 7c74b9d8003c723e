"""Judging a patch on fresh random views: success rate, target probability, and where it fails."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import torch

from transforms.eot import EOT, random_views


@dataclass
class Evaluation:
    success_rate: float  # share of views whose top-1 is the target (or is not the avoided class)
    mean_target_prob: float
    n: int
    by_scale: dict[str, dict]
    by_rotation: dict[str, dict]

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def evaluate_patch(model, patch: torch.Tensor, eot: EOT, target: int | None = None,
                   away_from: int | None = None, scenes: torch.Tensor | None = None, n: int = 256,
                   seed: int = 12345, batch: int = 64, scale_bins: int = 4,
                   rotation_bin_deg: float = 10.0, patch_map=None) -> Evaluation:
    """patch: (3, P, P) in [0, 1]. Uses its own seed so training views are never reused."""
    device = model.device
    g = torch.Generator(device=device).manual_seed(seed)
    patch = patch.to(device)
    scenes = scenes.to(device) if scenes is not None else None
    wins, probs, scales, angles = [], [], [], []
    with torch.no_grad():
        for start in range(0, n, batch):
            m = min(batch, n - start)
            views, params = random_views(patch, m, model.input_size, eot, scenes, g, patch_map)
            p = model(views).softmax(1)
            if target is not None:
                wins.append(p.argmax(1) == target)
                probs.append(p[:, target])
            else:
                wins.append(p.argmax(1) != away_from)
                probs.append(1 - p[:, away_from])
            scales.append(params["scale"])
            angles.append(params["rotation_deg"])
    win = torch.cat(wins).float().cpu()
    prob = torch.cat(probs).float().cpu()
    scale = torch.cat(scales).cpu()
    angle = torch.cat(angles).cpu()
    lo, hi = eot.placement.scale
    width = (hi - lo) / scale_bins
    scale_lo = [lo + width * min(int((s - lo) / width), scale_bins - 1) if width > 0 else lo
                for s in scale.tolist()]
    scale_bin = [(a, f"{a:.3f}-{a + width:.3f}") for a in scale_lo]
    rot_lo = [rotation_bin_deg * int(torch.floor(a / rotation_bin_deg)) for a in angle]
    rot_bin = [(a, f"{a:g}..{a + rotation_bin_deg:g}") for a in rot_lo]
    return Evaluation(win.mean().item(), prob.mean().item(), n,
                      _breakdown(scale_bin, win, prob), _breakdown(rot_bin, win, prob))


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
