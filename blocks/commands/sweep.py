"""`blocks sweep`: a single-step FGSM line search on one image (blocks.attacks.fgsm_sweep)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from blocks import checks
from blocks.commands import shared
from common.errors import UserError
if TYPE_CHECKING:  # the records (pydantic models) load when a pipeline runs, not for --help
    from common.records import SweepRecord


@dataclass
class SweepRun:
    """`blocks sweep`: single-step FGSM line search on one image. eps_range: (min, max) in 0-255 units."""

    image: Path
    target: str
    models: list = field(default_factory=shared.default_models)
    device: str = "auto"
    eps_range: tuple[float, float] = (-120.0, 10.0)
    num: int = 131
    out: Path = Path("runs/sweep")
    overwrite: bool = False  # replace an existing sweep.png / sweep.json


def run_sweep(run: SweepRun) -> SweepRecord:
    """Class probabilities against epsilon: out/sweep.png and out/sweep.json (returned)."""
    import torch

    from blocks.attacks.fgsm_sweep import epsilon_sweep
    from blocks.targets import resolve_target
    from common.files import atomic_write_bytes, check_new_outputs, check_output_dir, load_image
    from common.interrupts import writing
    from common.records import SweepRecord

    lo, hi = checks.span(run.eps_range, "eps_range", -255, 255)
    if not lo < hi:
        raise UserError(f"eps_range takes MIN:MAX with MIN < MAX, not '{lo:g}:{hi:g}'", param="eps_range")
    checks.whole(run.num, "num", 2, 10_000)
    x = load_image(run.image)
    check_output_dir(run.out)
    from common.inputs import check_not_input

    ins = shared.input_files(run.image, shared.model_files(run.models))
    check_not_input([Path(run.out), Path(run.out) / "sweep.png", Path(run.out) / "sweep.json"], ins)
    check_new_outputs([Path(run.out) / "sweep.png", Path(run.out) / "sweep.json"], run.overwrite)
    net = shared.load_model(run.models, run.device)
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


def plot_sweep(sweep, labels: list[str], path, k: int = 5):
    """sweep.png: each shown class's probability against epsilon (the command writes, not the attack)."""
    from blocks.report import pyplot, save_figure
    from common.errors import shown

    fig, ax = pyplot().subplots(figsize=(7, 4))
    for c in sweep.classes_to_show(k):
        style = {"lw": 2.5} if c == sweep.target else {"lw": 1}
        ax.plot(sweep.epsilons, sweep.probs[:, c].numpy(), label=f"{shown(labels[c])} ({c})", **style)
    ax.axvline(0, color="grey", lw=0.5)
    ax.set_xlabel("epsilon (negative: towards the target)")
    ax.set_ylabel("class probability")
    ax.set_title(f"single-step FGSM sweep, target {shown(labels[sweep.target])}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)
