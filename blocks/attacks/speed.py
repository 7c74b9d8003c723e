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
