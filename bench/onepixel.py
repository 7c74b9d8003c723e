"""Benchmark: our one-pixel strategies against torchattacks OnePixel and ART PixelAttack.

One process, same model, same images. The peers' queries are counted by a wrapper around the
model (images passed through forward, clean ones included), ours by the attack itself, so "equal
queries" is measured, not assumed. Printed per method: success, mean confidence of the adversarial class, mean queries per
image, wall and CPU seconds; then, for our strategies, the queries needed to match the best
peer's success (each image stops at its first win, so the success reached with a budget q is the
number of images won with at most q queries) and the ratios against the fastest peer.

    .venv/bin/python bench/onepixel.py                          # digits model, 8 images
    .venv/bin/python bench/onepixel.py --model efficientnet_lite0 --images 3 --popsize 100 --maxiter 4
    .venv/bin/python bench/onepixel.py --model resnet18         # random-init resnet18 at 32 px

Budgets: the peers run DE with population --popsize and --maxiter generations (at most
popsize x (maxiter + 1) queries per image; torchattacks' popsize is divided by the 5 dimensions,
so --popsize 400 gives 80 x 5 = 400 candidates, the paper's; ART has no population flag and
always uses 400, so with another --popsize its counted queries differ). Ours run at that same budget
(`max_queries`) and the default strategy also at a tenth of it. Everyone stops an image at its
first flip (the peers' rule). Images: digits = the first --images correctly classified held-out
digits; efficientnet_lite0 = the first --images colour photos of blocks.scenes.SAMPLE_PHOTOS
(shipped in scikit-image, scikit-learn, matplotlib), true class = the model's clean prediction; a random-init torchvision
net = held-out digits, its own predictions as the classes.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import numpy as np
import torch
from torch import nn

class Counting(nn.Module):
    """The model, counting the images it is asked about."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.labels, self.input_size = inner, inner.labels, inner.input_size
        self.name, self.count = inner.name, 0

    def forward(self, x):
        self.count += len(x)
        return self.inner(x)


DIGITS8 = "resnet18-digits8"  # the issue's setup: torchvision resnet18 trained on native 8x8 digits
CACHE = Path(__file__).resolve().parents[1] / "runs" / "bench-cache"


def digits8(split: str):
    """scikit-learn's digits at their native 8x8, dark ink on white, 8-bit RGB, with blocks.models.digits'
    held-out split -> (N, 3, 8, 8) in [0, 1], (N,) labels."""
    from blocks.models.digits import load_digits_rgb

    x, y = load_digits_rgb(split, size=8)
    return (x * 255).round() / 255, y


def train_digits8(epochs: int = 8):
    """A torchvision resnet18 (unchanged, 10 classes) trained on the 8x8 digits, cached in
    runs/bench-cache (loaded with weights_only)."""
    from torchvision import models as tvm
    from blocks.models import Classifier, load_state_dict

    torch.manual_seed(0)
    net = tvm.resnet18(weights=None, num_classes=10)
    model = Classifier(net, [str(i) for i in range(10)], 8, mean=(0.5,) * 3, std=(0.5,) * 3,
                       name=f"{DIGITS8} (trained here)")
    path = CACHE / f"{DIGITS8}-e{epochs}.pt"
    if path.exists():
        model.load_state_dict(load_state_dict(path))
        return model.eval().requires_grad_(False)
    t = time.perf_counter()
    x, y = digits8("train")
    opt = torch.optim.Adam(net.parameters(), 2e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 2e-3, total_steps=epochs * -(-len(y) // 64))
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(y))
        for s in range(0, len(y), 64):
            b = perm[s:s + 64]
            loss = nn.functional.cross_entropy(model(x[b]), y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    xt, yt = digits8("test")
    with torch.no_grad():
        acc = float((model(xt).argmax(1) == yt).float().mean())
    print(f"trained {DIGITS8}: {epochs} epochs in {time.perf_counter() - t:.0f} s, held-out "
          f"accuracy {acc:.1%}", flush=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return model.requires_grad_(False)


def load_model(name: str, size: int):
    from blocks.models import Classifier, ModelSpec, load_classifier

    if name == DIGITS8:
        return train_digits8()
    if name in ("digits", "efficientnet_lite0"):
        return load_classifier(ModelSpec(name=name), device="cpu")  # UserError if not available
    from torchvision import models as tvm

    torch.manual_seed(0)  # a randomly initialised net: no weights can be downloaded here
    net = tvm.get_model(name, weights=None, num_classes=10)
    labels = [str(i) for i in range(10)]
    return Classifier(net, labels, size, name=f"{name} (random init)").eval().requires_grad_(False)


def pick_images(model, n: int):
    from blocks.attacks.onepixel import prepare_images

    if len(model.labels) == 1000:
        from common.files import load_image
        from blocks.scenes import SAMPLE_PHOTOS, sample_photo_path

        # colour photos of objects first: the held-out ones, then the others (no grey textures)
        order = [p for p in SAMPLE_PHOTOS["test"] + SAMPLE_PHOTOS["train"]
                 if p[1] in ("chelsea.png", "grace_hopper.jpg", "flower.jpg", "astronaut.png",
                             "coffee.png", "rocket.jpg", "china.jpg", "motorcycle_left.png")]
        paths = [q for q in (sample_photo_path(*p) for p in order) if q is not None][:n]
        x = prepare_images([load_image(q) for q in paths], model.input_size)
        with torch.no_grad():
            return x, model(x).argmax(1)
    from blocks.models.digits import load_digits_rgb

    trained = model.name == "digits" or model.name.startswith(DIGITS8)
    x, y = digits8("test") if model.name.startswith(DIGITS8) else load_digits_rgb("test")
    x = (x * 255).round() / 255  # 8-bit, as images from files are
    if model.input_size != x.shape[-1]:
        x = prepare_images(list(x), model.input_size)
    with torch.no_grad():
        pred = model(x).argmax(1)
    if trained:  # the images it classifies correctly
        keep = (pred == y).nonzero().squeeze(1)[:n]
        return x[keep], y[keep]
    return x[:n], pred[:n]  # random net: its own predictions are the classes to move away from


def changed_pixels(adv: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """(N,) number of pixels that differ by more than half an 8-bit step."""
    return ((adv - x).abs() > 0.5 / 255).any(1).flatten(1).sum(1)


def evaluate(model, adv: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> dict:
    was_training = model.training
    model.eval()  # a peer may leave the model in training mode (batch-norm on batch statistics)
    with torch.no_grad():
        probs = model(adv).softmax(1)
    valid = (changed_pixels(adv, x) <= 1) & (adv >= 0).flatten(1).all(1) & (adv <= 1).flatten(1).all(1)
    print(f"    model left in training mode: {was_training}; valid adversarial images "
          f"{int(valid.sum())}/{len(x)}")
    ok = (probs.argmax(1) != y) & valid
    conf = probs.max(1).values[ok]
    return {"success": float(ok.float().mean()), "n_ok": int(ok.sum()),
            "confidence": float(conf.mean()) if ok.any() else None,  # None: nothing fooled (no NaN in JSON)
            "max_changed": int(changed_pixels(adv, x).max())}


def run_ours(model, x, y, args, strategy, budget, fitness="auto"):
    from blocks.attacks.onepixel import OnePixelConfig, one_pixel_attack

    cfg = OnePixelConfig(pixels=1, popsize=args.popsize, maxiter=args.maxiter, strategy=strategy,
                         max_queries=budget, fitness=fitness, stop_on_flip=True, seed=args.seed)
    t = time.perf_counter()
    r = one_pixel_attack(model, x, y, cfg)
    dt = time.perf_counter() - t
    # queries at which each image was won (None: not won), for the success-vs-budget curve
    won_at = [float(q) if s else None for s, q in zip(r.success.tolist(), r.queries.tolist())]
    return r.adv, dt, float(r.queries.float().mean()), won_at


def run_torchattacks(model, x, y, args):
    import torchattacks

    np.random.seed(args.seed)  # its DE copy draws from numpy's global generator
    atk = torchattacks.OnePixel(model, pixels=1, steps=args.maxiter, popsize=args.popsize)
    t = time.perf_counter()
    adv = atk(x, y)
    return adv.cpu(), time.perf_counter() - t


def run_art(model, x, y, args):
    from art.attacks.evasion import PixelAttack
    from art.estimators.classification import PyTorchClassifier

    np.random.seed(args.seed)
    clf = PyTorchClassifier(model, loss=nn.CrossEntropyLoss(), input_shape=tuple(x.shape[1:]),
                            nb_classes=len(model.labels), clip_values=(0.0, 1.0), device_type="cpu")
    # ART's population is 400 // 5 per dimension = 400 in all (the paper's); no flag changes it.
    atk = PixelAttack(clf, th=1, es=1, max_iter=args.maxiter, verbose=False)
    t = time.perf_counter()
    adv = atk.generate(x.numpy(), y.numpy())
    return torch.from_numpy(np.asarray(adv, dtype=np.float32)), time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="digits",
                    help=f"digits, {DIGITS8}, efficientnet_lite0, or a torchvision name (random init)")
    ap.add_argument("--size", type=int, default=32, help="input size for a torchvision model")
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--popsize", type=int, default=400)
    ap.add_argument("--maxiter", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--peers", default="torchattacks,art")
    ap.add_argument("--strategies", default="probe,random,paper",
                    help="ours, each at a tenth of the peers' budget (probe also with prob fitness)")
    ap.add_argument("--full", default="paper", help="ours also run at the peers' full budget")
    ap.add_argument("--save", type=Path, help="write the rows as JSON")
    ap.add_argument("--load", type=Path, action="append", default=[],
                    help="add rows saved by an earlier run on the same model, images and budget")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.popsize % 5:
        ap.error("--popsize must be a multiple of 5 so every method gets the same population")

    model = Counting(load_model(args.model, args.size)).eval()
    x, y = pick_images(model.inner, args.images)
    budget = args.popsize * (args.maxiter + 1)
    setup = f"model {model.name}, {len(x)} images at {x.shape[-1]} px, population {args.popsize}, " \
            f"{args.maxiter} generations: at most {budget} queries per image"
    print(f"{setup}, {torch.get_num_threads()} threads", flush=True)

    split = lambda v: [t.strip() for t in v.split(",") if t.strip()]
    tenth = budget // 10 + 1
    runs = []
    for s in split(args.strategies):
        runs.append((f"ours {s}, 1/10 budget", lambda s=s: run_ours(model, x, y, args, s, tenth)))
        if s == "probe":
            runs.append(("ours probe, 1/10, prob fitness",
                         lambda: run_ours(model, x, y, args, "probe", tenth, "prob")))
    for s in split(args.full):
        runs.append((f"ours {s}, full budget", lambda s=s: run_ours(model, x, y, args, s, budget + 1)))
    peers = {"torchattacks": ("torchattacks OnePixel", run_torchattacks),
             "art": ("ART PixelAttack th=1 es=1", run_art)}
    for key in split(args.peers):
        name, fn = peers[key]
        runs.append((name, (lambda fn=fn: fn(model, x, y, args) + (None, None))))

    rows = []
    for path in args.load:
        saved = json.loads(path.read_text())
        if saved["setup"] != setup:
            sys.exit(f"{path} was measured on another setup: {saved['setup']}")
        rows += [dict(r, name=r["name"] + " *") for r in saved["rows"]]
    for name, fn in runs:
        cpu0, model.count = time.process_time(), 0
        try:
            adv, dt, q_ours, won_at = fn()
        except Exception as e:  # a peer that cannot run is reported, not fatal
            print(f"{name}: could not run: {type(e).__name__}: {str(e).splitlines()[0][:200]}")
            continue
        cpu = time.process_time() - cpu0
        # peers: counted by the wrapper; ours: the attack's own count (its candidates may be scored
        # by a TorchScript copy the wrapper does not see), clean image included in both
        q = q_ours if q_ours is not None else model.count / len(x)
        ev = evaluate(model.inner, adv, x, y)
        print(f"  {name}: {ev['n_ok']}/{len(x)} in {dt:.1f} s, {q:.0f} queries/image", flush=True)
        rows.append(dict(name=name, seconds=dt, queries=q, cpu=cpu, **ev, won_at=won_at))
    if args.save:
        from common.files import atomic_write_json
        atomic_write_json(args.save, {"setup": setup, "rows": rows})
    report(rows, len(x))


def report(rows: list[dict], n: int) -> None:
    print(f"\n{'method':32s} {'success':>9s} {'conf':>6s} {'px':>3s} {'queries':>8s} {'seconds':>8s} "
          f"{'cpu s':>7s}")
    for r in rows:
        conf = r["confidence"] if r["confidence"] is not None else float("nan")
        print(f"{r['name']:32s} {r['n_ok']:3d}/{n:<3d}{r['success']:4.0%} {conf:6.3f} "
              f"{r['max_changed']:3d} {r['queries']:8.0f} {r['seconds']:8.1f} {r['cpu']:7.1f}")
    peer_rows = [r for r in rows if not r["name"].startswith("ours")]
    if not peer_rows:
        return
    best_n = max(r["n_ok"] for r in peer_rows)
    fastest = min(peer_rows, key=lambda r: r["seconds"])
    peer_q = max(r["queries"] for r in peer_rows)
    print(f"\nbest peer success {best_n}/{n}; fastest peer {fastest['name']} {fastest['seconds']:.1f} s, "
          f"peers' queries per image up to {peer_q:.0f}" + ("  (* = loaded from an earlier run)"
                                                             if any("*" in r["name"] for r in rows) else ""))
    for r in rows:
        if r["won_at"] is None:
            continue
        won_at = sorted(float("inf") if v is None else v for v in r["won_at"])
        ok = r["n_ok"] >= best_n
        # queries at which our run reached the best peer's success (each image stops at its first
        # win, so the success reached with a budget q is the number of images won within q)
        need = won_at[best_n - 1] if best_n and ok else (1.0 if ok else None)
        met = ok and r["queries"] <= peer_q / 10 and r["seconds"] <= fastest["seconds"] / 10
        print(f"{r['name']:32s} success {'>=' if ok else '<'} best peer, reached within "
              f"{'-' if need is None else f'{need:.0f}'} queries per image; mean queries 1/"
              f"{peer_q / r['queries']:.1f} of the peers', time 1/{fastest['seconds'] / r['seconds']:.1f} "
              f"of the fastest peer{'  [target met]' if met else ''}")


if __name__ == "__main__":
    main()
