"""Splitting each step's EOT views across processes started by torchrun.

`torchrun --nproc-per-node N -m blocks generate ...` starts N copies of the command with RANK,
WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT set. Each rank renders its share of a step's
views from its own generator stream and takes the gradient of its share of the batch-mean loss; one
all-reduce (gloo on CPU, NCCL on GPU) sums the shares, so every rank holds the gradient of the mean
over the whole batch and applies the same signed step. The stop decision (time limit, Ctrl-C) rides
in the same all-reduce, so all ranks leave the loop at the same step and none waits on a collective
another rank will never join. Anything that can fail on one rank only (a model file, a scene folder,
the output folder) goes through `Group.agree`: every rank learns the outcome and rank 0 prints it.

We start no workers of our own: torchrun (or any launcher that sets the same variables) does.
A plain single-process run gets a `SoloGroup`: the same methods, for one process, so the code
that runs a step or agrees on a file is written once for both.
"""
from __future__ import annotations

import os
import signal
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import timedelta

import torch

from common.errors import UserError, first_line
from common.interrupts import interrupted

RANK_SEED_STRIDE = 1_000_000_007  # rank r draws its views from seed + r * stride: disjoint streams


class PeerLost(UserError):
    """Another rank died or left mid-run (torchrun reports which): nothing is written."""

    exit_code = 1


class QuietExit(UserError):
    """A rank other than 0 leaving with the code rank 0 reports (rank 0 prints the one line)."""

    def __init__(self, code: int):
        super().__init__("")
        self.exit_code = code


def launched() -> bool:
    """True when torchrun (or an equivalent launcher) started this process with WORLD_SIZE > 1."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1
    except ValueError:
        return False


def env_rank() -> int:
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


def share(n: int, world: int, rank: int) -> int:
    """How many of n views rank renders: n split as evenly as it goes, the first ranks one more."""
    return n // world + (rank < n % world)


@dataclass
class Group:
    rank: int
    world: int
    local_rank: int
    backend: str
    stop_requested: bool = field(default=False, repr=False)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def alone(self) -> bool:
        """Whether this process may go on by itself after a Ctrl-C (a last check, judging the
        patch): never under torchrun, where the other ranks would wait for it in a collective."""
        return False

    def all_sum(self, t: torch.Tensor) -> torch.Tensor:
        """Sum t over the ranks, in place; a dead peer becomes PeerLost, not a hang or a traceback."""
        import torch.distributed as dist

        try:
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
        except (RuntimeError, dist.DistError) as e:
            raise PeerLost(f"rank {self.rank}: lost another rank mid-run ({first_line(e)}); nothing written") from None
        return t

    def stop_before_step(self, elapsed, max_seconds: float | None) -> str | None:
        """No rank stops on its own before a step: the stop is agreed in the step's all-reduce
        (sum_step), so elapsed (a callable reading the clock) is not called here."""
        return None

    def sum_step(self, grad, loss, prob, win, elapsed: float, max_seconds: float | None, batch: int):
        """One all-reduce per step: the gradient shares (summed in place into grad (3, P, P)), the
        record's sums (this rank's share of the mean loss, prob (n,), win (n,)), rank 0's clock
        (the schedule follows one clock, or the patches would drift apart) and each rank's stop
        vote. Returns (stop reason or None, (loss, mean prob, success, elapsed)), the same on
        every rank."""
        time_up = max_seconds is not None and elapsed >= max_seconds
        sums = torch.stack([loss.detach(), prob.detach().sum(), win.float().sum()]).to(grad.dtype)
        votes = torch.tensor([elapsed if self.is_main else 0.0, float(time_up), float(self.stop_requested)],
                             dtype=grad.dtype, device=grad.device)
        packed = self.all_sum(torch.cat([grad.flatten(), sums, votes]))
        grad.copy_(packed[:grad.numel()].view_as(grad))
        loss_sum, prob_sum, win_sum, clock, time_votes, stop_votes = packed[grad.numel():].tolist()
        stop = "interrupted" if stop_votes > 0 else "time" if time_votes > 0 else None
        return stop, (loss_sum, prob_sum / batch, win_sum / batch, clock)

    def batch_mean(self, loss_share: torch.Tensor, values: torch.Tensor, batch: int) -> tuple[float, float]:
        """(this rank's share of the batch-mean loss, its per-view values (n,)) -> the whole
        batch's mean loss and mean value: the same numbers, so the same choice, on every rank."""
        totals = self.all_sum(torch.stack([loss_share, values.sum()]))
        return totals[0].item(), totals[1].item() / batch

    def gather(self, obj) -> list:
        import torch.distributed as dist

        out = [None] * self.world
        try:
            dist.all_gather_object(out, obj)
        except (RuntimeError, dist.DistError) as e:
            raise PeerLost(f"rank {self.rank}: lost another rank ({first_line(e)}); nothing written") from None
        return out

    def agree(self, fn, *args, **kwargs):
        """Run fn on every rank; if it raised a UserError on any rank, every rank raises: rank 0
        the first failure's message (naming the rank; the setting it names kept for the CLI), the
        others quietly, all with its exit code. Otherwise return fn's result."""
        outcome = None
        try:
            result = fn(*args, **kwargs)
        except UserError as e:
            outcome = (e.exit_code, str(e), e.param)
        outcomes = self.gather(outcome)
        failed = [(r, o) for r, o in enumerate(outcomes) if o is not None]
        if not failed:
            return result
        rank, (code, message, param) = failed[0]
        if not self.is_main or not message:
            raise QuietExit(code)
        err = UserError(message if rank == 0 else f"rank {rank}: {message}", param=param)
        err.exit_code = code
        raise err

    def check_same(self, settings: dict, what: str = "flags") -> None:
        """Every rank must run with the same settings (seed, steps, batch, ...): name the first
        one that differs, on every rank, before any work starts."""
        everyone = self.gather(settings)
        for key in settings:
            values = [s.get(key) for s in everyone]
            for r, v in enumerate(values):
                if v != values[0]:
                    name = f"--{key.replace('_', '-')}" if what == "flags" else key
                    raise UserError(f"ranks disagree: {name} is {values[0]!r} on rank 0 but {v!r} on rank {r} "
                                    f"(start every rank with the same {what})")

    def device(self, name: str) -> str:
        """The device this rank runs on: with CUDA, one GPU per local rank."""
        if self.backend != "gloo" and name in ("auto", "cuda"):
            return f"cuda:{self.local_rank}"
        return name

    @contextmanager
    def interrupts(self):
        """Ctrl-C sets a flag instead of raising: the stop is then agreed at the next step, so no
        rank is left inside a collective. (torchrun forwards the signal to every worker.)"""
        from common.interrupts import SIGNALS  # SIGTERM and SIGHUP too: torchrun forwards those as well

        def on_sigint(signum, frame):
            self.stop_requested = True

        previous = {sig: signal.signal(sig, on_sigint) for sig in SIGNALS
                    if sig == signal.SIGINT or signal.getsignal(sig) is not signal.SIG_IGN}
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def close(self) -> None:
        import torch.distributed as dist

        if dist.is_initialized():
            try:  # no rank tears down its connections while another still talks over them
                dist.barrier()
            except Exception:  # a rank already gone: nothing left to wait for
                pass
            dist.destroy_process_group()


class SoloGroup:
    """The stand-in for Group in a plain single-process run: one rank, nothing to agree with.
    A Ctrl-C raises KeyboardInterrupt where it lands (no handler), and the stops are decided
    before each step: a Ctrl-C that some library swallowed (common.interrupts) or the clock."""

    rank, world, local_rank, backend = 0, 1, 0, None
    stop_requested = False  # Ctrl-C is a KeyboardInterrupt here, not a flag
    is_main = True
    alone = True

    def all_sum(self, t: torch.Tensor) -> torch.Tensor:
        return t

    def gather(self, obj) -> list:
        return [obj]

    def agree(self, fn, *args, **kwargs):
        return fn(*args, **kwargs)

    def check_same(self, settings: dict, what: str = "flags") -> None:
        """Nothing to compare with."""

    def device(self, name: str) -> str:
        return name

    def interrupts(self):
        return nullcontext(self)

    def close(self) -> None:
        """Nothing to close."""

    def stop_before_step(self, elapsed, max_seconds: float | None) -> str | None:
        """A Ctrl-C that some library swallowed still stops the run (KeyboardInterrupt); "time"
        when elapsed() (which reads the clock, only with a limit) reached max_seconds."""
        if interrupted():
            raise KeyboardInterrupt
        return "time" if max_seconds is not None and elapsed() >= max_seconds else None

    def sum_step(self, grad, loss, prob, win, elapsed: float, max_seconds: float | None, batch: int):
        """Group.sum_step for one process: grad is already the whole batch's; the record's
        figures read here (the clock stop was decided before the step)."""
        return None, (loss.item(), prob.mean().item(), win.float().mean().item(), elapsed)

    def batch_mean(self, loss_share: torch.Tensor, values: torch.Tensor, batch: int) -> tuple[float, float]:
        return loss_share.item(), values.mean().item()


SOLO = SoloGroup()


def join(device: str, timeout_s: float = 600.0) -> Group:
    """Join the process group torchrun set up: NCCL for CUDA tensors (when this run uses a GPU),
    gloo for CPU tensors and control messages."""
    import torch.distributed as dist

    rank, world = env_rank(), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    use_cuda = device in ("auto", "cuda") and torch.cuda.is_available() and dist.is_nccl_available()
    if use_cuda:
        if local_rank >= torch.cuda.device_count():
            raise UserError(f"local rank {local_rank} has no GPU of its own ({torch.cuda.device_count()} visible): "
                            "start at most one process per GPU (--nproc-per-node)")
        torch.cuda.set_device(local_rank)
    backend = "cpu:gloo,cuda:nccl" if use_cuda else "gloo"
    try:
        dist.init_process_group(backend=backend, timeout=timedelta(seconds=timeout_s))
    except (RuntimeError, ValueError, dist.DistError) as e:
        raise UserError(f"rank {rank}: cannot join the torchrun process group: {first_line(e)}") from None
    return Group(rank=rank, world=world, local_rank=local_rank, backend=backend)
