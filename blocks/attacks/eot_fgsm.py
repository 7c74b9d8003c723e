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

Under torchrun (a Group given, blocks/distributed.py) rank r renders its share of each step's
batch and of the check batch from its own streams (seed + r * RANK_SEED_STRIDE), takes the gradient
of (its views / all views) * its mean loss, and one all-reduce sums the shares into the gradient of
the mean over the whole batch: every rank then takes the same signed step. With one process (the
default SoloGroup) this is the plain single-process loop: the clock and a swallowed Ctrl-C are
read before each step, and the figures are read where they are.

Transfer-minded options (for models the patch never sees), off at 0. Only smoothing is offered by
the CLI, on by default for ensembles only; the others sit in GenerateConfig.experimental
(Experimental), which only bench/transfer.py sets (docs/ensembles.md has its measurements):
- diversity p: each view is shrunk by a random factor in [0.8, 1] and padded at a random offset
  with probability p before the model sees it (input diversity, Xie et al. 2019).
- ghost p: dropout with rate p on every convolution's output during the attack's forward passes,
  so each step meets a slightly different model (ghost networks, Li et al. 2020).
- smooth s: the gradient is blurred with a Gaussian of sigma s patch pixels before its sign is
  taken (translation-invariant attack, Dong et al. 2019). None (the default): ENSEMBLE_SMOOTH
  for an ensemble, 0 for one model (on ImageNet it cost the single model's white-box confidence).
- loss "logit" or "margin" instead of "ce": descend the target's negated logit (Zhao et al. 2021,
  "On Success and Simplicity", whose gradient does not fade once the target wins), or the
  Carlini-Wagner margin (the best other logit minus the target's, floored at -MARGIN_KAPPA).

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
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from blocks.attacks.config import Experimental, GenerateConfig  # noqa: F401 (the attack's API)
from common.goal import Goal
from blocks.distributed import RANK_SEED_STRIDE, SOLO, share
from blocks.attacks.speed import AUTOCAST, autocast, autocast_dtype, fold_batchnorm
from transforms.eot import EOT, at_progress, random_views


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
    if cfg.schedule == "constant":
        return cfg.epsilon
    lo = cfg.epsilon * cfg.final_fraction
    if cfg.schedule == "linear":
        return cfg.epsilon + (lo - cfg.epsilon) * t
    if cfg.schedule == "cosine":
        return lo + (cfg.epsilon - lo) * 0.5 * (1 + math.cos(math.pi * t))
    raise ValueError(f"unknown schedule {cfg.schedule!r}: cosine, linear or constant")


LOSSES = ("ce", "logit", "margin")
MARGIN_KAPPA = 5.0  # logits: past this lead the margin loss stops pushing


def attack_loss(goal: Goal, logits: torch.Tensor, kind: str = "ce") -> torch.Tensor:
    """logits (B, C) -> the scalar this attack descends: cross-entropy (common.goal.Goal.loss), the
    class's own logit, or its margin over the best other class, each signed by the goal's mode."""
    if kind == "ce":
        return goal.loss(logits)
    mine = logits[:, goal.index]
    sign = -1.0 if goal.targeted else 1.0  # targeted: raise the class; untargeted: lower it
    if kind == "logit":
        return sign * mine.mean()
    if kind == "margin":
        mask = torch.tensor([goal.index], device=logits.device)
        others = logits.index_fill(1, mask, float("-inf")).amax(1)
        return (sign * (mine - others)).clamp_min(-MARGIN_KAPPA).mean()
    raise ValueError(f"unknown loss {kind!r}: {', '.join(LOSSES)}")


def objective(logits: torch.Tensor, cfg: GenerateConfig):
    """Loss to descend, and per-view (objective prob, win) for the record (common.goal.Goal)."""
    goal = Goal.of(cfg.target, cfg.away_from)
    return attack_loss(goal, logits, cfg.experimental.loss), goal.prob(logits.softmax(1)), goal.wins(logits)


def diverse_inputs(views: torch.Tensor, p: float, g: torch.Generator, low: float = 0.8) -> torch.Tensor:
    """(B, 3, S, S) -> (B, 3, S, S): with probability p a view is shrunk by a factor in [low, 1] and
    placed at a random offset on black (Xie et al. 2019, as one differentiable warp per view)."""
    b, dev = len(views), views.device
    shrink = low + (1 - low) * torch.rand(b, generator=g, device=dev)
    on = torch.rand(b, generator=g, device=dev) < p
    shrink = torch.where(on, shrink, torch.ones_like(shrink))
    shift = (1 - shrink)[:, None] * (2 * torch.rand(b, 2, generator=g, device=dev) - 1)
    theta = torch.zeros(b, 2, 3, device=dev)
    theta[:, 0, 0] = theta[:, 1, 1] = 1 / shrink  # output -> input coordinates
    theta[:, :, 2] = -shift / shrink[:, None]
    grid = F.affine_grid(theta, list(views.shape), align_corners=False)
    return F.grid_sample(views, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


@contextmanager
def ghost_networks(model: torch.nn.Module, p: float, g: torch.Generator):
    """Dropout of rate p on every Conv2d output of model while inside (Li et al. 2020). Models
    without Python Conv2d modules (TorchScript, torch.export) are left as they are."""
    if p <= 0:
        yield
        return

    def erode(module, inputs, out):
        keep = torch.rand(out.shape, generator=g, device=out.device) >= p
        return out * keep / (1 - p)

    hooks = [m.register_forward_hook(erode) for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    try:
        yield
    finally:
        for h in hooks:
            h.remove()


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


def balanced_view_gradient(nets, views: torch.Tensor, cfg: GenerateConfig, generator):
    """views (B, 3, S, S) -> (mean loss, objective prob (B,), win (B,), gradient (B, 3, S, S)):
    each member's gradient scaled to the members' mean L1 size, then averaged, so no member's
    larger gradient outweighs the others. The record (prob, win) is the members' consensus."""
    x = views.detach().requires_grad_(True)
    grads, logps, losses = [], [], []
    for net in nets:
        with ghost_networks(net, cfg.experimental.ghost, generator):
            logits = forward(net, x, cfg)
        loss, _, _ = objective(logits, cfg)
        (g,) = torch.autograd.grad(loss, x)
        grads.append(g)
        logps.append(logits.detach().log_softmax(1))
        losses.append(loss.detach())
    sizes = torch.stack([g.abs().mean() for g in grads]).clamp_min(1e-12)
    grad = sum(g / s for g, s in zip(grads, sizes)) * sizes.mean() / len(grads)
    _, prob, win = objective(torch.stack(logps).mean(0), cfg)
    return torch.stack(losses).mean(), prob, win, grad


def forward(model, views: torch.Tensor, cfg: GenerateConfig) -> torch.Tensor:
    """model(views) -> float32 logits, the model run under cfg.autocast (bf16 where the CPU has
    it: blocks.attacks.speed); the loss and the gradient's sign are taken in float32."""
    dtype = autocast_dtype(cfg.autocast, views.device)
    with autocast(dtype, views.device):
        logits = model(views)
    return logits.float()


def step_gradient(model, patch, cfg: GenerateConfig, eot: EOT, scenes, generator, n: int,
                  weight: float = 1.0, patch_map=None, penalty=None, step: int = 0):
    """Render n views of patch (3, P, P, requires grad) and differentiate weight * their mean
    loss (+ penalty). Returns (loss, objective prob (n,), win (n,), grad (3, P, P))."""
    views, _ = random_views(patch, n, model.input_size, eot, scenes, generator, patch_map)
    if cfg.experimental.diversity > 0:
        views = diverse_inputs(views, cfg.experimental.diversity, generator)
    nets = step_members(model, cfg, step)
    if nets is not None:  # members one by one: to the views, then once through the render
        loss, prob, win, view_grad = balanced_view_gradient(nets, views, cfg, generator)
        (grad,) = torch.autograd.grad(views, patch, grad_outputs=view_grad * weight)
        loss = loss * weight
        if penalty is not None:
            extra = penalty(patch)
            grad = grad + torch.autograd.grad(extra, patch)[0]
            loss = loss + extra.detach()
        return loss, prob, win, grad
    with ghost_networks(model, cfg.experimental.ghost, generator):
        loss, prob, win = objective(forward(model, views, cfg), cfg)
    if weight != 1.0:  # this rank's share of the batch mean (one process: exactly the mean)
        loss = loss * weight
    if penalty is not None:
        loss = loss + penalty(patch)
    (grad,) = torch.autograd.grad(loss, patch)
    return loss, prob, win, grad


class BestPatch:
    """The keeper of the best patch: each candidate (3, P, P) is scored on one fixed batch of check
    views (n_views of them on this rank, the same views every time, never a training step's) and
    kept when its loss there is the lowest so far. Under torchrun the whole check batch's mean
    decides (Group.batch_mean), so every rank keeps the same patch."""

    def __init__(self, model, cfg: GenerateConfig, eot: EOT, scenes, patch_map, group, n_views: int):
        self.model, self.cfg, self.eot, self.scenes, self.patch_map = model, cfg, eot, scenes, patch_map
        self.group, self.n_views = group, n_views
        self.seed = cfg.seed + 1_000_003  # never the views of a training step
        self.patch = torch.zeros(3, cfg.patch_size, cfg.patch_size, device=model.device)  # black
        self.loss, self.prob, self.step = float("inf"), 0.0, 0

    def offer(self, candidate: torch.Tensor, step: int) -> None:
        """Score candidate (3, P, P), the patch as it was at `step`; keep it if it is the best."""
        cfg = self.cfg
        g_check = view_generator(self.seed, self.group.rank, self.model.device)
        with torch.no_grad():
            views, _ = random_views(candidate, self.n_views, self.model.input_size, self.eot, self.scenes,
                                    g_check, self.patch_map)
            loss, prob, _ = objective(self.model(views), cfg)
            loss_now, prob_now = self.group.batch_mean(loss * (self.n_views / cfg.batch), prob, cfg.batch)
        if loss_now < self.loss:
            self.patch, self.loss, self.prob, self.step = candidate.clone(), loss_now, prob_now, step


def fast_model(model, cfg: GenerateConfig):
    """The model the steps run: batchnorm folded into the convolutions before it
    (blocks.attacks.speed.fold_batchnorm), except for ghost networks, whose dropout acts on the
    convolutions' own outputs."""
    if not cfg.fold or cfg.experimental.ghost > 0 or not isinstance(model, torch.nn.Module):
        return model
    return fold_batchnorm(model, model.input_size, model.device)


def check_config(cfg: GenerateConfig, group) -> int:
    """The config's choices, and the views this rank renders per step (its share of cfg.batch)."""
    if (cfg.target is None) == (cfg.away_from is None):
        raise ValueError("give exactly one of target (negative epsilon) or away_from (positive)")
    if cfg.members not in MEMBER_MODES:
        raise ValueError(f"unknown members mode {cfg.members!r}: {', '.join(MEMBER_MODES)}")
    if cfg.autocast not in AUTOCAST:
        raise ValueError(f"unknown autocast {cfg.autocast!r}: {', '.join(AUTOCAST)}")
    if cfg.experimental.loss not in LOSSES:
        raise ValueError(f"unknown loss {cfg.experimental.loss!r}: {', '.join(LOSSES)}")
    n_views = share(cfg.batch, group.world, group.rank)
    if n_views < 1:
        raise ValueError(f"batch {cfg.batch} is smaller than the {group.world} ranks: each needs a view")
    return n_views


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


def generate_patch(model, cfg: GenerateConfig, eot: EOT, scenes: torch.Tensor | None = None,
                   on_step=None, patch_map=None, penalty=None, group=SOLO,
                   clock=time.monotonic, init: torch.Tensor | None = None) -> GenerateResult:
    """model: Classifier taking (B, 3, S, S) in [0, 1]; scenes: (N, 3, S, S) or None.

    patch_map: a measured printer-to-camera colour map applied to the patch in every view.
    penalty(patch) -> scalar is added to the loss (printability, total variation).
    on_step(record) is called after every step (progress bars, logging). Ctrl-C ends the run
    early and returns the best patch so far with stopped="interrupted".
    group: a blocks.distributed.Group when torchrun started several ranks (every rank calls this
    with the same cfg; the default SoloGroup: one process); the views are split, the result is the same.
    clock: what max_seconds counts (benchmarks on a shared machine pass time.process_time).
    init: a patch (3, P, P) to start from (--resume) instead of black; the keeper scores it first.
    """
    n_views = check_config(cfg, group)
    model = fast_model(model, cfg)  # batchnorm folded into the convolutions: the same function, cheaper
    weight, sigma = n_views / cfg.batch, smoothing(model, cfg)
    g = view_generator(cfg.seed, group.rank, model.device)
    scenes = scenes.to(model.device) if scenes is not None else None
    keeper = BestPatch(model, cfg, eot, scenes, patch_map, group, n_views)
    result = GenerateResult(patch=keeper.patch, best_step=0, best_objective_prob=0.0)
    patch = (torch.zeros(3, cfg.patch_size, cfg.patch_size, device=model.device) if init is None  # black, as promised
             else init.detach().to(model.device, torch.float32).clamp(0, 1).clone())
    velocity = torch.zeros_like(patch)
    start, last_check = clock(), 0.0  # last_check: the clock (elapsed) at the last check
    progress = 0.0  # of the run (steps or the clock), as of the last step
    try:
        with group.interrupts():
            for step in range(cfg.steps):
                stop = group.stop_before_step(lambda: clock() - start, cfg.max_seconds)
                if stop is None:
                    patch.requires_grad_(True)
                    # whole-frame views start near and widen (transforms.eot.at_progress); the check views do not
                    loss, prob, win, grad = step_gradient(model, patch, cfg, at_progress(eot, progress), scenes, g,
                                                          n_views, weight, patch_map,
                                                          penalty if group.is_main else None, step)
                    stop, (loss_now, mean_prob, success, elapsed) = group.sum_step(
                        grad, loss, prob, win, clock() - start, cfg.max_seconds, cfg.batch)
                if stop:
                    result.stopped = stop
                    break
                progress = run_progress(cfg, step, elapsed)
                eps = step_size(cfg, progress)
                if step % cfg.check_every == 0 or elapsed - last_check >= cfg.check_seconds:
                    keeper.offer(patch.detach(), step)  # the patch these views measured, before the update
                    last_check = elapsed  # under torchrun rank 0's clock: every rank checks together
                patch, velocity = signed_step(patch, grad, velocity, eps, sigma, cfg)
                record = StepRecord(step, loss_now, mean_prob, success, eps, clock() - start)
                result.curve.append(record)
                if on_step is not None:
                    on_step(record)
        if result.curve:  # the final patch, after the last update (steps, clock or a torchrun stop)
            keeper.offer(patch.detach(), len(result.curve))
    except KeyboardInterrupt:
        result.stopped = "interrupted"
        if group.alone and result.curve:  # one forward pass: a second Ctrl-C meanwhile is held
            keeper.offer(patch.detach(), len(result.curve))
    result.patch, result.best_step, result.best_objective_prob = keeper.patch, keeper.step, keeper.prob
    result.seconds = clock() - start
    return result
