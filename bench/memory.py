"""How much memory a view costs, measured: the factors blocks.checks uses to refuse, before the
work, a run that would not fit (common.memory). Each figure is the peak RSS of a fresh process
(ru_maxrss) running the real command at two sizes; the difference, divided by the extra views (or
texels) and by the bytes of one float32 RGB image of that side, is the factor: how many image-sized
float32 copies one view holds at the peak (rendering, the model's activations, gradients).

    OMP_NUM_THREADS=1 python bench/memory.py            # all of them, about a minute on a CPU
    OMP_NUM_THREADS=1 python bench/memory.py generate   # one

generate: --patch-size 8 so the patch costs nothing; batch 2 vs 10 (digits: 16 vs 512, its views
are small against the RSS's noise): per view of input side^2.
texture: digits, batch 4, --patch-size 128 vs 384: per view of patch side^2 (the card's texels).
evaluate: digits, --n 64 (one batch), a 128 vs 384 px patch: per view of patch side^2, no gradients.
print: a 1000 x 1000 vs 3000 x 3000 patch: per patch pixel, in bytes.
simulate: one still at 640 x 480 vs 3200 x 2400: per frame pixel, in bytes.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import resource, sys, json
from blocks.cli import run
code = run(json.loads(sys.argv[1]))
print(json.dumps({"code": code, "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


def peak(args: list[str]) -> int:
    """Peak RSS in bytes of a fresh process running `blocks ARGS`."""
    out = subprocess.run([sys.executable, "-c", CHILD, json.dumps(args)], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.strip().splitlines()[-1]
    got = json.loads(out)
    assert got["code"] == 0, (args, got)
    return got["peak"]


def patch_png(folder: Path, side: int) -> str:
    import torch

    from common.files import save_png

    path = folder / f"p{side}.png"
    save_png(path, torch.rand(3, side, side))
    return str(path)


def generate(model: str, side: int, target: str, d: Path, small: int, large: int) -> float:
    def run(batch: int) -> int:
        return peak(["generate", "--model", model, "--target", target, "--steps", "3", "--batch", str(batch),
                     "--eval-n", "1", "--patch-size", "8", "--out", str(d / f"g-{model}-{batch}")])

    return (run(large) - run(small)) / (large - small) / (3 * side * side * 4)


def texture(d: Path) -> float:
    def run(p: int) -> int:
        return peak(["generate", "--model", "digits", "--target", "seven", "--steps", "3", "--batch", "4",
                     "--eval-n", "1", "--patch-size", str(p), "--out", str(d / f"t{p}")])

    return (run(384) - run(128)) / 4 / (3 * (384 ** 2 - 128 ** 2) * 4)


def evaluate(d: Path) -> float:
    def run(p: int) -> int:
        return peak(["evaluate", patch_png(d, p), "--model", "digits", "--target", "seven", "--n", "64"])

    return (run(384) - run(128)) / 64 / (3 * (384 ** 2 - 128 ** 2) * 4)


def print_sheet(d: Path) -> float:
    def run(p: int) -> int:
        return peak(["print", patch_png(d, p), "--out", str(d / f"s{p}.pdf")])

    return (run(3000) - run(1000)) / (3000 ** 2 - 1000 ** 2)


def simulate(d: Path) -> float:
    assert peak(["print", patch_png(d, 64), "--out", str(d / "sim.pdf")]) > 0

    def run(w: int, h: int) -> int:
        return peak(["simulate", str(d / "sim.pdf"), "--out", str(d / f"f{w}.png"), "--size", f"{w}x{h}"])

    return (run(3200, 2400) - run(640, 480)) / (3200 * 2400 - 640 * 480)


def main() -> None:
    which = sys.argv[1:] or ["generate", "texture", "evaluate", "print", "simulate"]
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        if "generate" in which:
            print(f"generate, digits (28 px): {generate('digits', 28, 'seven', d, 16, 512):.1f} copies per view")
            print(f"generate, efficientnet_lite0 (224 px): {generate('efficientnet_lite0', 224, 'hen', d, 2, 10):.1f} copies per view")
        if "texture" in which:
            print(f"generate, patch texels: {texture(d):.1f} copies per view")
        if "evaluate" in which:
            print(f"evaluate, patch texels: {evaluate(d):.1f} copies per view")
        if "print" in which:
            print(f"print: {print_sheet(d):.0f} bytes per patch pixel")
        if "simulate" in which:
            print(f"simulate: {simulate(d):.0f} bytes per frame pixel")


if __name__ == "__main__":
    main()
