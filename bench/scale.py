"""Steps per second of EOT-FGSM at 1..N torchrun ranks, every figure a ratio to 1 rank in this run.

    python bench/scale.py                                  # CPU, gloo: 1 and 2 ranks, digits model
    python bench/scale.py --model resnet18 --size 128      # a heavier model (random weights)
    python bench/scale.py --device cuda --ranks 1,2,4,8    # GPUs, NCCL: one rank per GPU

Each configuration is a fresh `python -m torch.distributed.run --standalone --nproc-per-node N`
of this file; rank 0 times steps after a warm-up (fixed check views every 10 steps included, as in
a real run). The total EOT batch is the same at every N, so N ranks each render batch / N views.
On CPU the threads are split too (--threads per rank, default cores / N), so the comparison is
the same cores used two ways, not more hardware.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def worker(args) -> None:
    import torch

    from blocks.attacks import GenerateConfig, generate_patch
    from blocks.distributed import SOLO, join, launched
    from blocks.models import Classifier, ModelSpec, load_classifier
    from transforms import preset

    group = join(args.device) if launched() else SOLO
    device = group.device(args.device)
    if args.model == "digits":
        model = load_classifier(ModelSpec(name="digits"), device)
    else:
        from torchvision.models import get_model

        torch.manual_seed(0)
        net = get_model(args.model, num_classes=1000)
        model = Classifier(net, [str(i) for i in range(1000)], args.size, name=args.model)
        model = model.eval().requires_grad_(False).to(device)
    cfg = GenerateConfig(target=1, patch_size=model.input_size // 2, steps=args.warmup + args.steps,
                         batch=args.batch, seed=0)
    times = []

    def on_step(record):
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter())

    generate_patch(model, cfg, preset("print", (0.4, 0.6)), on_step=on_step, group=group)
    if group.is_main:
        timed = times[args.warmup:]
        rate = (len(timed) - 1) / (timed[-1] - timed[0])
        Path(args.worker).write_text(json.dumps({"steps_per_s": rate, "threads": torch.get_num_threads()}))
    group.close()


def launch(n: int, threads: int, args) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rate.json"
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(n),
               __file__, "--worker", str(out), "--model", args.model, "--size", str(args.size),
               "--batch", str(args.batch), "--steps", str(args.steps), "--warmup", str(args.warmup),
               "--device", args.device]
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(f"{n} rank(s) failed:\n{proc.stderr[-3000:]}")
        return json.loads(out.read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--model", default="digits", help="digits, or a torchvision name with random weights")
    ap.add_argument("--size", type=int, default=128, help="input side for a torchvision model")
    ap.add_argument("--batch", type=int, default=32, help="total EOT views per step (split across ranks)")
    ap.add_argument("--steps", type=int, default=40, help="timed steps")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--ranks", default="1,2", help="rank counts to compare, e.g. 1,2,4")
    ap.add_argument("--device", default="cpu", help="cpu (gloo) or cuda (NCCL, one GPU per rank)")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads per rank (0: cores / ranks)")
    args = ap.parse_args()
    if args.worker:
        return worker(args)
    cores = os.cpu_count() or 1
    ranks = [int(r) for r in args.ranks.split(",")]
    print(f"== EOT-FGSM steps/s, {args.model}, batch {args.batch} in total, print preset, {args.device}, "
          f"{cores} cores visible")
    base = None
    for n in ranks:
        threads = args.threads or max(1, cores // n)
        r = launch(n, threads, args)
        base = base or r["steps_per_s"]
        print(f"{n} rank(s) x {r['threads']} thread(s): {r['steps_per_s']:.2f} steps/s  "
              f"({r['steps_per_s'] / base:.2f}x of {ranks[0]} rank(s))", flush=True)


if __name__ == "__main__":
    main()
