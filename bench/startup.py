"""How soon `blocks` answers, each figure a ratio to a bare `python -c pass` measured in this run.

    python bench/startup.py               # 5 runs of each, medians
    python bench/startup.py --runs 9

1. first line: seconds from the process start until `blocks generate: loading torch ...` appears
   on a terminal (a pty), the line blocks.first_line works out before typer, numpy or torch load.
2. cli import: `from blocks.cli import run` (typer, numpy and the torch-free settings modules),
   what `--help` and `--version` pay; torch must not be among the modules it loads.
"""
from __future__ import annotations

import argparse
import os
import pty
import select
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def until_first_line(argv: list[str]) -> float:
    """Seconds from fork until the child's first line reaches its terminal."""
    start = time.perf_counter()
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(argv[0], argv)
    seen = b""
    while b"\n" not in seen and select.select([fd], [], [], 60)[0]:
        seen += os.read(fd, 1024)
    elapsed = time.perf_counter() - start
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    if not seen.startswith(b"blocks generate: loading torch"):
        raise SystemExit(f"unexpected first line: {seen[:80]!r}")
    return elapsed


def run_seconds(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    line = [sys.executable, "-m", "blocks", "generate", "--model", "digits", "--target", "seven", "--steps", "1",
            "--out", "/tmp/blocks-bench-startup", "--overwrite"]
    no_torch = "import sys; from blocks.cli import run; assert 'torch' not in sys.modules"
    bare, first, cli = [], [], []
    for _ in range(args.runs):  # interleaved, so a busy spell hits all three alike
        bare.append(run_seconds("pass"))
        first.append(until_first_line(line))
        cli.append(run_seconds(no_torch))
    b = statistics.median(bare)
    print(f"python -c pass   {b:.3f} s (baseline)")
    print(f"first line       {statistics.median(first):.3f} s  {statistics.median(first) / b:.2f}x the baseline")
    print(f"cli import       {statistics.median(cli):.3f} s  {statistics.median(cli) / b:.2f}x the baseline "
          f"(torch not loaded)")


if __name__ == "__main__":
    main()
