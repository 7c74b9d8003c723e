"""The loop around the attack's step (blocks.attacks.eot_fgsm.EotFgsm): how many steps, the clock
(max_seconds), Ctrl-C and torchrun, and the progress callback. The best patch is scored at step 0,
every check_every steps, whenever check_seconds of the clock have passed since the last check (a
slow machine loses at most that much to a Ctrl-C) and once more at the end however the run ends
(steps, the clock or Ctrl-C). A Ctrl-C or a time limit leaves the best patch checked so far.

Under torchrun (a blocks.distributed.Group given) every rank runs this loop with the same cfg;
the step's one all-reduce (Group.sum_step) carries the gradient shares, rank 0's clock (the
schedule follows one clock, or the patches would drift apart) and each rank's stop vote, so all
ranks leave at the same step. With one process (the default SoloGroup) the clock and a
swallowed Ctrl-C (common.interrupts) are read before each step.
"""
from __future__ import annotations

import time
from dataclasses import replace

import torch

from blocks.attacks.config import GenerateConfig
from blocks.attacks.eot_fgsm import PLAIN, EotFgsm, GenerateResult, Stop
from blocks.distributed import SOLO, share
from transforms.params import ViewModel


class GroupReducer:
    """The attack's reducer over a torchrun group (or the SoloGroup): the step's sums, rank 0's
    elapsed clock and the stop votes in one all-reduce; Stop when any rank votes to stop."""

    def __init__(self, group, cfg: GenerateConfig, clock):
        self.group, self.batch, self.max_seconds, self.clock = group, cfg.batch, cfg.max_seconds, clock
        self.start = 0.0

    def begin(self) -> None:
        """The run's clock starts now (after the model's set-up)."""
        self.start = self.clock()

    def elapsed(self) -> float:
        return self.clock() - self.start

    def step(self, grad, loss, prob, win) -> tuple[float, float, float, float]:
        stop, sums = self.group.sum_step(grad, loss, prob, win, self.elapsed(), self.max_seconds, self.batch)
        if stop:
            raise Stop(stop)
        return sums

    def mean(self, loss_share: torch.Tensor, values: torch.Tensor) -> tuple[float, float]:
        return self.group.batch_mean(loss_share, values, self.batch)


def views_per_rank(cfg: GenerateConfig, group) -> int:
    """This rank's share of cfg.batch, at least one view."""
    n_views = share(cfg.batch, group.world, group.rank)
    if n_views < 1:
        raise ValueError(f"batch {cfg.batch} is smaller than the {group.world} ranks: each needs a view")
    return n_views


def generate_patch(model, cfg: GenerateConfig, eot: ViewModel, scenes: torch.Tensor | None = None,
                   on_step=None, patch_map=None, penalty=None, group=SOLO,
                   clock=time.monotonic, init: torch.Tensor | None = None, tricks=PLAIN) -> GenerateResult:
    """Run EotFgsm for cfg.steps steps, cfg.max_seconds of `clock` or until Ctrl-C, whichever
    comes first; returns the best patch checked. on_step(record) after every step (progress bars,
    logging). group: torchrun's (blocks.distributed), the views split across ranks, the same
    result on each. clock: what max_seconds counts (benchmarks on a shared machine pass
    time.process_time). init: the patch (3, P, P) to start from (--resume). tricks: bench's hook.
    The other arguments are EotFgsm's."""
    n_views, reducer = views_per_rank(cfg, group), GroupReducer(group, cfg, clock)
    attack = EotFgsm(model, cfg, eot, scenes, patch_map, penalty if group.is_main else None, reducer,
                     group.rank, n_views, tricks)
    state = attack.start(init)
    reducer.begin()
    curve, stopped = [], "steps"
    try:
        with group.interrupts():
            for _ in range(cfg.steps):
                stop = group.stop_before_step(reducer.elapsed, cfg.max_seconds)
                if stop is None:
                    try:
                        state = attack.step(state)
                    except Stop as e:
                        stop = e.reason
                if stop:
                    stopped = stop
                    break
                curve.append(replace(state.record, seconds=reducer.elapsed()))
                if on_step is not None:
                    on_step(curve[-1])
        if curve:  # the final patch, after the last update (steps, clock or a torchrun stop)
            attack.check(state)
    except KeyboardInterrupt:
        stopped = "interrupted"
        if group.alone and curve:  # one forward pass: a second Ctrl-C meanwhile is held
            attack.check(state)
    return attack.result(curve, stopped, reducer.elapsed())
