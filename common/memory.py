"""Memory checked before work: a command estimates its peak from its settings (the factors measured
by bench/memory.py live beside the checks that use them) and refuses, in one line naming the flag
to lower, what would not fit. Without this the kernel kills the process with no message, or the
allocator's traceback ends it halfway."""
from __future__ import annotations

import os

from common.errors import UserError

HEADROOM = 0.8  # share of the free memory a run may plan to take: the OS, the page cache and
# the estimate's error need the rest
GIB = 2 ** 30


def available_bytes(device="cpu") -> int | None:
    """Memory free for tensors on `device`: the GPU's free memory, or the machine's available RAM
    (/proc/meminfo's MemAvailable on Linux, else the free pages). None where it cannot be told."""
    try:
        if getattr(device, "type", str(device)).startswith("cuda"):
            import torch

            return int(torch.cuda.mem_get_info(device)[0])
        try:
            with open("/proc/meminfo") as f:
                for line in f:
                    if line.startswith("MemAvailable:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (OSError, ValueError, RuntimeError, AttributeError, ImportError):
        return None


def check_fits(nbytes: float, what: str, lower: str, device="cpu", param: str | tuple[str, ...] | None = None) -> None:
    """Refuse, before the work, a run whose estimated peak (nbytes) would not fit in HEADROOM of
    the memory free on `device`: `error: WHAT needs about X GiB, Y GiB is free: lower LOWER`.
    what/lower name settings as the library does (param: the names the CLI turns into flags)."""
    free = available_bytes(device)
    if free is None or nbytes <= HEADROOM * free:
        return
    where = "" if str(getattr(device, "type", device)) == "cpu" else f" on {device}"
    raise UserError(f"{what} needs about {size_text(nbytes)}, {size_text(free)} is free{where}: lower {lower}",
                    param=param)


def size_text(nbytes: float) -> str:
    return f"{nbytes / GIB:.1f} GiB" if nbytes < 10 * GIB else f"{nbytes / GIB:.0f} GiB"
