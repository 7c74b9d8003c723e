"""Iterated negative-epsilon FGSM with expectation over transformation, from a black patch.

Papers: FGSM, Goodfellow et al. 2014 (arXiv 1412.6572); expectation over transformation, Athalye
et al. 2018 (arXiv 1707.07397); the adversarial patch, Brown et al. 2017 (arXiv 1712.09665).

Shapes: patch (3, P, P) in [0, 1]; views (batch, 3, S, S) with S = model.input_size; scenes
(N, 3, S, S) or None; model(views) -> logits (batch, C).

Each step renders a batch of random views of the patch (transforms.random_views), takes the
gradient of the cross-entropy averaged over the batch, and moves every pixel one signed step:

    targeted   (negative epsilon): patch <- clip(patch - eps_t * sign(grad CE(target)))
    untargeted (positive epsilon): patch <- clip(patch + eps_t * sign(grad CE(away)))

The step size follows a schedule from `epsilon` down to `epsilon * final_fraction`. At step 0,
every `check_every` steps, whenever `check_seconds` of the run's clock have passed since the last
check (a slow machine loses at most that much to a Ctrl-C), and once more at the end however the
run ends (steps, the clock or Ctrl-C), the patch is scored on one fixed batch of views; the best
patch is the one with the lowest loss there. Each step's own views are fresh, so their loss is too
noisy to compare patches (on a slowly moving model it picks lucky early batches), while the fixed
views compare like with like. A Ctrl-C or a time limit leaves the best patch checked so far.

The attack is one step (EotFgsm.step: state in, state out); blocks.attacks.driver owns the loop,
the clock, Ctrl-C and torchrun. What the step needs from several processes comes in as a reducer:
with several ranks each renders its share of the batch from its own stream (seed + r *
RANK_SEED_STRIDE), takes the gradient of (its views / all views) * its mean loss, and the
reducer sums the shares into the gradient of the mean over the whole batch (one process: the
plain mean). The reducer may end the run (Stop) instead of returning the step's sums.

Transfer-minded options (for models the patch never sees). Only smoothing is offered by the CLI:
- smooth s: the gradient is blurred with a Gaussian of sigma s patch pixels before its sign is
  taken (translation-invariant attack, Dong et al. 2019). None (the default): ENSEMBLE_SMOOTH
  for an ensemble, 0 for one model (on ImageNet it cost the single model's white-box confidence).
The others (input diversity, ghost networks, other losses) are the benchmarks' (bench/tricks.py):
they come in as a `tricks` hook (the Plain protocol below) that changes the views, wraps the
forward pass and picks the loss.

Ensembles (model.members, blocks.models.Ensemble), `members`:
- "mean": every member every step; the loss is the cross-entropy of the mean of the members'
  log-probabilities, one backward pass. The member with the largest input gradient steers the
  sign (on the digits zoo, the easily fooled DigitsNet).
- "balance": every member every step; each member's gradient with respect to the views
  (B, 3, S, S) is scaled to the members' mean L1 size before they are summed, so each member
  pulls with equal weight. Under torchrun each rank balances its own share of the views.
- "cycle": one member per step, in turn (step mod members, the same on every rank); the
  momentum's L1 normalisation gives each member's steps equal weight, and a step costs one
  member's forward and backward instead of all of them.
Whatever the mode, the fixed check views score the whole ensemble (every member).
"""
from __future__ import annotations

import math
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from blocks.attacks.config import GenerateConfig  # noqa: F401 (the attack's API)
from blocks.attacks.speed import AUTOCAST, autocast, autocast_dtype, fold_batchnorm
from blocks.distributed import RANK_SEED_STRIDE
from common.goal import Goal
from transforms.eot import random_views
from transforms.params import ViewModel


@dataclass
class StepRecord:
    step: int
    loss: float
    objective_prob: float  # mean over the step's views: target prob, or 1 - away prob
    success: float  # share of the step's views where the attack wins
    epsilon: float
    seconds: float


@dataclass
class GenerateResult:
    patch: torch.Tensor  # (3, P, P) in [0, 1], the best seen
    best_step: int
    best_objective_prob: float
    curve: list[StepRecord] = field(default_factory=list)
    stopped: str = "steps"  # steps | time | interrupted
    seconds: float = 0.0

    def curve_dict(self) -> dict[str, list]:
        keys = StepRecord.__dataclass_fields__
        return {k: [getattr(r, k) for r in self.curve] for k in keys}


def step_size(cfg: GenerateConfig, t: float) -> float:
    """Step size at progress t in [0, 1] (the larger of step and time progress)."""
    t = min(max(t, 0.0), 1.0)
    if t < cfg.takeoff:
        return cfg.takeoff_factor * cfg.epsilon
    if cfg.schedule == "constant":
        return cfg.epsilon
    lo = cfg.epsilon * cfg.final_fraction
    if cfg.schedule == "linear":
        return cfg.epsilon + (lo - cfg.epsilon) * t
    if cfg.schedule == "cosine":
        return lo + (cfg.epsilon - lo) * 0.5 * (1 + math.cos(math.pi * t))
    raise ValueError(f"unknown schedule {cfg.schedule!r}: cosine, linear or constant")


class Plain:
    """The product's `tricks` hook, which does nothing: the cross-entropy of common.goal.Goal, the
    views as rendered, the model as it is. bench/tricks.py's Tricks fills the same four in."""

    folds = True  # batchnorm may be folded into the convolutions (fast_model)

    def objective_loss(self, goal: Goal, logits: torch.Tensor) -> torch.Tensor:
        return goal.loss(logits)

    def views(self, views: torch.Tensor, generator) -> torch.Tensor:
        return views

    def around(self, net, generator):
        return nullcontext()


PLAIN = Plain()


def objective(logits: torch.Tensor, cfg: GenerateConfig, tricks=PLAIN):
    """Loss to descend, and per-view (objective prob, win) for the record (common.goal.Goal)."""
    goal = Goal.of(cfg.target, cfg.away_from)
    return tricks.objective_loss(goal, logits), goal.prob(logits.softmax(1)), goal.wins(logits)


def smooth_gradient(grad: torch.Tensor, sigma: float) -> torch.Tensor:
    """(3, P, P) gradient blurred by a Gaussian of sigma pixels (Dong et al. 2019)."""
    if sigma < 0.3:
        return grad
    radius = max(1, int(3 * sigma))
    x = torch.arange(-radius, radius + 1, device=grad.device, dtype=grad.dtype)
    k = torch.exp(-x ** 2 / (2 * sigma ** 2))
    k = k / k.sum()
    g = grad[:, None]  # separable blur, each channel alone, edges replicated
    g = F.conv2d(F.pad(g, (radius, radius, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    g = F.conv2d(F.pad(g, (0, 0, radius, radius), mode="replicate"), k.view(1, 1, -1, 1))
    return g[:, 0]


def view_generator(seed: int, rank: int, device) -> torch.Generator:
    """Rank r's own stream of random views; rank 0's is the single-process stream."""
    return torch.Generator(device=device).manual_seed(seed + rank * RANK_SEED_STRIDE)


MEMBER_MODES = ("mean", "balance", "cycle")
ENSEMBLE_SMOOTH = 0.8  # patch pixels


def smoothing(model, cfg: GenerateConfig) -> float:
    """The gradient blur sigma this run uses: cfg.smooth, or by default ENSEMBLE_SMOOTH for an
    ensemble (it raised transfer there) and 0 for one model (it cost white-box on ImageNet)."""
    if cfg.smooth is not None:
        return cfg.smooth
    return ENSEMBLE_SMOOTH if len(getattr(model, "members", None) or []) > 1 else 0.0


def step_members(model, cfg: GenerateConfig, step: int) -> list | None:
    """The ensemble members this step differentiates one by one, or None: the model as one."""
    nets = list(getattr(model, "members", None) or [])
    if len(nets) < 2 or cfg.members == "mean":
        return None
    return [nets[step % len(nets)]] if cfg.members == "cycle" else nets  # balance


def balanced_view_gradient(nets, views: torch.Tensor, cfg: GenerateConfig, generator, tricks=PLAIN):
    """views (B, 3, S, S) -> (mean loss, objective prob (B,), win (B,), gradient (B, 3, S, S)):
    each member's gradient scaled to the members' mean L1 size, then averaged, so no member's
    larger gradient outweighs the others. The record (prob, win) is the members' consensus."""
    x = views.detach().requires_grad_(True)
    grads, logps, losses = [], [], []
    for net in nets:
        with tricks.around(net, generator):
            logits = forward(net, x, cfg)
        loss, _, _ = objective(logits, cfg, tricks)
        (g,) = torch.autograd.grad(loss, x)
        grads.append(g)
        logps.append(logits.detach().log_softmax(1))
        losses.append(loss.detach())
    sizes = torch.stack([g.abs().mean() for g in grads]).clamp_min(1e-12)
    grad = sum(g / s for g, s in zip(grads, sizes)) * sizes.mean() / len(grads)
    _, prob, win = objective(torch.stack(logps).mean(0), cfg, tricks)
    return torch.stack(losses).mean(), prob, win, grad


def forward(model, views: torch.Tensor, cfg: GenerateConfig) -> torch.Tensor:
    """model(views) -> float32 logits, the model run under cfg.autocast (bf16 where the CPU has
    it: blocks.attacks.speed); the loss and the gradient's sign are taken in float32."""
    dtype = autocast_dtype(cfg.autocast, views.device)
    with autocast(dtype, views.device):
        logits = model(views)
    return logits.float()


def step_gradient(model, patch, cfg: GenerateConfig, eot: ViewModel, scenes, generator, n: int,
                  weight: float = 1.0, patch_map=None, penalty=None, step: int = 0, tricks=PLAIN):
    """Render n views of patch (3, P, P, requires grad) and differentiate weight * their mean
    loss (+ penalty). Returns (loss, objective prob (n,), win (n,), grad (3, P, P))."""
    views, _ = random_views(patch, n, model.input_size, eot, scenes, generator, patch_map)
    views = tricks.views(views, generator)
    nets = step_members(model, cfg, step)
    if nets is not None:  # members one by one: to the views, then once through the render
        loss, prob, win, view_grad = balanced_view_gradient(nets, views, cfg, generator, tricks)
        (grad,) = torch.autograd.grad(views, patch, grad_outputs=view_grad * weight)
        loss = loss * weight
        if penalty is not None:
            extra = penalty(patch)
            grad = grad + torch.autograd.grad(extra, patch)[0]
            loss = loss + extra.detach()
        return loss, prob, win, grad
    with tricks.around(model, generator):
        loss, prob, win = objective(forward(model, views, cfg), cfg, tricks)
    if weight != 1.0:  # this rank's share of the batch mean (one process: exactly the mean)
        loss = loss * weight
    if penalty is not None:
        loss = loss + penalty(patch)
    (grad,) = torch.autograd.grad(loss, patch)
    return loss, prob, win, grad


class Stop(Exception):
    """Raised by a reducer instead of returning a step's sums: the run ends before this step's
    update (reason: time | interrupted, agreed by every rank)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class OneProcess:
    """The reducer of a single process with no clock: the batch is all here. The driver's reducer
    (blocks.attacks.driver) adds the clock, the stops and the other ranks' shares."""

    def step(self, grad, loss, prob, win) -> tuple[float, float, float, float]:
        """(grad summed in place, this share's loss, prob (n,), win (n,)) -> (the batch's mean loss,
        mean prob, success, elapsed seconds)."""
        return loss.item(), prob.mean().item(), win.float().mean().item(), 0.0

    def mean(self, loss_share: torch.Tensor, values: torch.Tensor) -> tuple[float, float]:
        """(this share of the batch-mean loss, per-view values (n,)) -> the whole batch's means."""
        return loss_share.item(), values.mean().item()


class BestPatch:
    """The keeper of the best patch: each candidate (3, P, P) is scored on one fixed batch of check
    views (n_views of them here, the same views every time, never a training step's) and kept when
    its loss there is the lowest so far. With several ranks the whole check batch's mean decides
    (the reducer's mean), so every rank keeps the same patch."""

    def __init__(self, model, cfg: GenerateConfig, eot: ViewModel, scenes, patch_map, reducer, rank: int, n_views: int,
                 tricks=PLAIN):
        self.model, self.cfg, self.eot, self.scenes, self.patch_map = model, cfg, eot, scenes, patch_map
        self.reducer, self.rank, self.n_views, self.tricks = reducer, rank, n_views, tricks
        self.seed = cfg.seed + 1_000_003  # never the views of a training step
        self.patch = torch.zeros(3, cfg.patch_size, cfg.patch_size, device=model.device)  # black
        self.loss, self.prob, self.step = float("inf"), 0.0, 0

    def offer(self, candidate: torch.Tensor, step: int) -> None:
        """Score candidate (3, P, P), the patch as it was at `step`; keep it if it is the best."""
        g_check = view_generator(self.seed, self.rank, self.model.device)
        with torch.no_grad():
            views, _ = random_views(candidate, self.n_views, self.model.input_size, self.eot, self.scenes,
                                    g_check, self.patch_map)
            loss, prob, _ = objective(self.model(views), self.cfg, self.tricks)
            loss_now, prob_now = self.reducer.mean(loss * (self.n_views / self.cfg.batch), prob)
        if loss_now < self.loss:
            self.patch, self.loss, self.prob, self.step = candidate.clone(), loss_now, prob_now, step


def fast_model(model, cfg: GenerateConfig, tricks=PLAIN):
    """The model the steps run: batchnorm folded into the convolutions before it
    (blocks.attacks.speed.fold_batchnorm), unless the tricks forbid it (ghost dropout acts on the
    convolutions' own outputs)."""
    if not cfg.fold or not tricks.folds or not isinstance(model, torch.nn.Module):
        return model
    return fold_batchnorm(model, model.input_size, model.device)


def check_config(cfg: GenerateConfig) -> None:
    """The config's choices (the numbers are the command's to check: blocks.commands.generate)."""
    if (cfg.target is None) == (cfg.away_from is None):
        raise ValueError("give exactly one of target (negative epsilon) or away_from (positive)")
    if cfg.members not in MEMBER_MODES:
        raise ValueError(f"unknown members mode {cfg.members!r}: {', '.join(MEMBER_MODES)}")
    if cfg.autocast not in AUTOCAST:
        raise ValueError(f"unknown autocast {cfg.autocast!r}: {', '.join(AUTOCAST)}")


def run_progress(cfg: GenerateConfig, step: int, elapsed: float) -> float:
    """How far the run is, 0 to 1: the larger of step and clock progress (the schedule follows it)."""
    progress = step / max(cfg.steps - 1, 1)
    if cfg.max_seconds:
        progress = max(progress, elapsed / cfg.max_seconds)
    return progress


def signed_step(patch, grad, velocity, eps: float, sigma: float, cfg: GenerateConfig):
    """patch (3, P, P) one signed step down grad (3, P, P), smoothed and with momentum.
    Returns (the new patch, the new velocity)."""
    with torch.no_grad():
        if sigma > 0:  # after the all-reduce: every rank smooths the same gradient
            grad = smooth_gradient(grad, sigma)
        if cfg.momentum:
            # L1-normalised, so steps with small gradients count as much as big ones
            velocity = cfg.momentum * velocity + grad / grad.abs().mean().clamp_min(1e-12)
            grad = velocity
        patch = (patch.detach() - eps * grad.sign()).clamp_(0, 1)
    return patch, velocity


@dataclass
class State:
    """Where a run stands between two steps."""

    patch: torch.Tensor  # (3, P, P) in [0, 1]
    velocity: torch.Tensor  # (3, P, P): the momentum's running gradient
    step: int = 0  # steps taken
    progress: float = 0.0  # of the run (steps or the clock) as of the last step: the views widen with it
    last_check: float = 0.0  # elapsed seconds at the last check of the best patch
    record: StepRecord | None = None  # the last step's figures


class EotFgsm:
    """The attack on one model, one config: `step(state) -> state` is one EOT negative-epsilon
    FGSM step. model: Classifier taking (B, 3, S, S) in [0, 1]; scenes: (N, 3, S, S) or None;
    patch_map: a measured printer-to-camera colour map applied to the patch in every view;
    penalty(patch) -> scalar is added to the loss (printability, total variation); reducer: how
    a step's sums become the whole batch's (OneProcess, or the driver's); rank and n_views: this
    process's view stream and its share of cfg.batch; tricks: the benchmarks' hook (Plain)."""

    def __init__(self, model, cfg: GenerateConfig, eot: ViewModel, scenes=None, patch_map=None, penalty=None,
                 reducer=None, rank: int = 0, n_views: int | None = None, tricks=PLAIN):
        check_config(cfg)
        self.model = fast_model(model, cfg, tricks)  # batchnorm folded: the same function, cheaper
        self.cfg, self.eot, self.patch_map, self.penalty, self.tricks = cfg, eot, patch_map, penalty, tricks
        self.reducer = reducer or OneProcess()
        self.n_views = cfg.batch if n_views is None else n_views
        self.weight, self.sigma = self.n_views / cfg.batch, smoothing(self.model, cfg)
        self.generator = view_generator(cfg.seed, rank, self.model.device)
        self.scenes = scenes.to(self.model.device) if scenes is not None else None
        self.keeper = BestPatch(self.model, cfg, eot, self.scenes, patch_map, self.reducer, rank, self.n_views, tricks)

    def start(self, init: torch.Tensor | None = None) -> State:
        """From black, as promised, or from init (3, P, P) (--resume); the keeper scores it first."""
        size, device = self.cfg.patch_size, self.model.device
        patch = (torch.zeros(3, size, size, device=device) if init is None
                 else init.detach().to(device, torch.float32).clamp(0, 1).clone())
        return State(patch, torch.zeros_like(patch))

    def step(self, s: State) -> State:
        """One step: the gradient of the views' mean loss, summed by the reducer (which may raise
        Stop), the best-patch check of the patch these views measured, one signed step."""
        cfg, patch = self.cfg, s.patch.requires_grad_(True)
        # whole-frame views start near and widen (ViewModel.at_progress); the check views do not
        loss, prob, win, grad = step_gradient(self.model, patch, cfg, self.eot.at_progress(s.progress), self.scenes,
                                              self.generator, self.n_views, self.weight, self.patch_map,
                                              self.penalty, s.step, self.tricks)
        loss, prob, success, elapsed = self.reducer.step(grad, loss, prob, win)
        progress = run_progress(cfg, s.step, elapsed)
        eps, last_check = step_size(cfg, progress), s.last_check
        if s.step % cfg.check_every == 0 or elapsed - last_check >= cfg.check_seconds:
            self.keeper.offer(patch.detach(), s.step)  # before the update
            last_check = elapsed  # with several ranks rank 0's clock: every rank checks together
        new, velocity = signed_step(patch, grad, s.velocity, eps, self.sigma, cfg)
        record = StepRecord(s.step, loss, prob, success, eps, elapsed)
        return State(new, velocity, s.step + 1, progress, last_check, record)

    def check(self, s: State) -> None:
        """Offer the patch as it stands (the run's last, however it ended) to the keeper."""
        self.keeper.offer(s.patch.detach(), s.step)

    def result(self, curve: list[StepRecord], stopped: str, seconds: float) -> GenerateResult:
        k = self.keeper
        return GenerateResult(k.patch, k.step, k.prob, curve, stopped, seconds)
