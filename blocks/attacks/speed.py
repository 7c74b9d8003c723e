"""The CPU's full speed for the attack's steps: bfloat16 autocast where the CPU computes it
natively, and a torch thread count that follows the machine's load during a run.

bf16: on CPUs with AMX or AVX512-BF16, autocast runs the model's convolutions in bfloat16 (the
loss, the gradient's sign and the patch stay float32). Elsewhere bf16 is emulated and slower, so
"auto" leaves it off; on CUDA and MPS "auto" is off too (not measured here: ask for it with bf16).

Threads: torch picks its thread count once, at start. On a machine whose cores another job takes
later, two threads then wait on each other for the rest of the run (issue 32: 6.6x slower per
forward and backward with 2 threads against 1, one other job on 2 cores). ThreadGovernor looks
every few steps at how much CPU the *other* processes used meanwhile (/proc/stat minus this
process's own CPU time) and sets the thread count to the cores they leave free, never above the
count the run started with. bench/step_cost.py measures both.
"""
from __future__ import annotations

import functools
import math
import os
import time
from contextlib import nullcontext

AUTOCAST = ("auto", "bf16", "off")
BF16_FLAGS = ("amx_bf16", "avx512_bf16")  # /proc/cpuinfo flags of native bfloat16 arithmetic


def cpu_has_bf16(cpuinfo: str | None = None) -> bool:
    """Whether the CPU computes bfloat16 natively (its /proc/cpuinfo flags; False off Linux)."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
                cpuinfo = f.read(1 << 20)
        except OSError:
            return False
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            return any(flag in line.split() for flag in BF16_FLAGS)
    return False


def autocast_dtype(choice: str, device):
    """The dtype the model's forward pass autocasts to (torch.bfloat16), or None for float32.
    auto: bf16 on a CPU with native bf16 only; bf16: wherever torch's autocast takes it."""
    import torch

    if choice not in AUTOCAST:
        raise ValueError(f"unknown autocast {choice!r}: {', '.join(AUTOCAST)}")
    return _dtype(choice, torch.device(device).type)


@functools.lru_cache(maxsize=16)
def _dtype(choice: str, kind: str):
    """autocast_dtype, worked out once per run's (choice, device type): every step asks."""
    import torch

    if choice == "off" or (choice == "auto" and not (kind == "cpu" and cpu_has_bf16())):
        return None
    try:  # a device whose autocast has no bf16 (older torch on MPS): float32, not an error mid-run
        with torch.autocast(kind, dtype=torch.bfloat16):
            pass
    except (RuntimeError, ValueError):
        return None
    return torch.bfloat16


def autocast(dtype, device):
    """The context the model's forward pass runs in: torch.autocast to dtype, or nothing."""
    import torch

    return nullcontext() if dtype is None else torch.autocast(torch.device(device).type, dtype=dtype)


def threads_for(cores: int, others: float, ceiling: int) -> int:
    """Torch threads for a process on `cores` cores while other processes keep `others` cores
    busy: the free cores, rounded down (a thread that must share a core stalls the others at every
    join), at least 1 and at most ceiling."""
    free = cores - others + 0.25  # a quarter core of background noise still counts as free
    return max(1, min(ceiling, math.floor(free)))


def cpu_sample(clock=time.monotonic):
    """(wall seconds, CPU seconds busy on the whole machine, this process's CPU seconds), or None
    where /proc/stat does not exist."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = f.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    jiffies = [int(v) for v in fields[1:]]
    idle = jiffies[3] + (jiffies[4] if len(jiffies) > 4 else 0)  # idle + iowait
    busy = (sum(jiffies[:8]) - idle) / os.sysconf("SC_CLK_TCK")  # guest time is counted in user already
    return clock(), busy, time.process_time()


def thread_ceiling() -> int:
    """The most threads a run may use: OMP_NUM_THREADS where the user set it, else one per core
    (torch's own start-up count may already have been lowered for a busy machine)."""
    try:
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    except (KeyError, ValueError):
        return os.cpu_count() or 1


class ThreadGovernor:
    """Call it after each step (an on_step hook): every `every` steps it measures the other
    processes' CPU use since its last look and sets torch's thread count to threads_for()."""

    def __init__(self, every: int = 5, ceiling: int | None = None, cores: int | None = None,
                 sample=cpu_sample, set_threads=None):
        import torch

        self.every, self.sample = every, sample
        self.ceiling = ceiling or thread_ceiling()
        self.cores = cores or os.cpu_count() or 1
        self.set_threads = set_threads or torch.set_num_threads
        self.threads, self.last, self.calls = self.ceiling, sample(), 0
        self.changes: list[tuple[int, int]] = []  # (call, threads) at each change, for the bench

    def __call__(self, record=None) -> int:
        self.calls += 1
        if self.last is None or self.calls % self.every:
            return self.threads
        now = self.sample()
        if now is None:
            return self.threads
        wall, busy, own = (b - a for a, b in zip(self.last, now))
        self.last = now
        if wall <= 0:
            return self.threads
        others = max(0.0, (busy - own) / wall)
        want = threads_for(self.cores, others, self.ceiling)
        if want != self.threads:
            self.set_threads(want)
            self.threads = want
            self.changes.append((self.calls, want))
        return self.threads


def fold_batchnorm(model, size: int, device="cpu"):
    """A copy of model (frozen, eval mode) with every BatchNorm that directly follows a
    convolution folded into that convolution's weights and bias: the same function (checked on
    two random inputs, else model is returned as it is), minus a normalisation's forward and
    backward per layer (about a fifth of efficientnet_lite0's forward+backward on a CPU,
    bench/step_cost.py). timm's BatchNormAct2d keeps its activation."""
    import copy

    import torch

    if model.training:
        return model
    pairs = _conv_bn_pairs(model, size, device)
    if not pairs:
        return model
    folded = copy.deepcopy(model)
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    for conv_name, bn_name in pairs:
        conv, bn = folded.get_submodule(conv_name), folded.get_submodule(bn_name)
        fused = fuse_conv_bn_eval(conv, bn)
        if conv.weight.is_contiguous(memory_format=torch.channels_last):
            fused = fused.to(memory_format=torch.channels_last)
        _replace(folded, conv_name, fused)
        _replace(folded, bn_name, torch.nn.Sequential(bn.drop, bn.act) if hasattr(bn, "act") else torch.nn.Identity())
    folded.requires_grad_(any(p.requires_grad for p in model.parameters()))
    with torch.no_grad():
        x = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device)
        a, b = model(x), folded(x)
    if a.shape != b.shape or not torch.allclose(a, b, rtol=1e-3, atol=1e-3 * float(a.abs().max())):
        return model  # a convolution whose output is also used elsewhere: folding changed the function
    return folded


def _conv_bn_pairs(model, size: int, device) -> list[tuple[str, str]]:
    """(conv name, batchnorm name) where, in one forward pass, the batchnorm's input is exactly
    the convolution's output (bias-free or not, groups any)."""
    import torch

    made, pairs, keep, hooks = {}, [], [], []

    def produced(name):
        def hook(module, inputs, out):  # returns None: the output stays as it is
            keep.append(out)  # held, so that no later tensor reuses its id
            made[id(out)] = name
        return hook

    for name, mod in model.named_modules():
        if type(mod).__name__ in ("Conv2d", "Conv2dSame") and isinstance(mod, torch.nn.Conv2d):
            hooks.append(mod.register_forward_hook(produced(name)))
        elif isinstance(mod, torch.nn.BatchNorm2d) and mod.track_running_stats and mod.affine:
            if hasattr(mod, "act") and not isinstance(getattr(mod, "drop", torch.nn.Identity()), torch.nn.Identity):
                continue
            hooks.append(mod.register_forward_pre_hook(
                lambda m, i, name=name: pairs.append((made.get(id(i[0])), name))))
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, size, size, device=device))
    finally:
        for h in hooks:
            h.remove()
    names = [bn for _, bn in pairs]
    return [(c, bn) for c, bn in pairs if c is not None and names.count(bn) == 1]


def _replace(model, name: str, module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, module)
