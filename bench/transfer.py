"""Transfer: how often a patch wins on a model it never saw. Every figure is measured in this run.

    python bench/transfer.py --part digits --seconds 12    # the matrix (24 patches, ~10 CPU minutes)
    python bench/transfer.py --part imagenet                # 4 ImageNet patches (~5 CPU minutes)
    python bench/transfer.py --part imagenet-transfer       # 12 ImageNet patches on 3 models (~30 CPU minutes)
    python bench/transfer.py --part loss --seconds 12       # 36 digits patches, three attack losses (~8 CPU minutes)

"Equal wall clock" is measured as equal CPU time of this process (time.process_time),
on one thread: the wall clock of one idle core. On a machine shared with other jobs the wall clock
would hand whichever run met a quiet moment more steps.
    python bench/transfer.py --part eot      # only the transfer-minded EOT options

The digits zoo: the bundled DigitsNet plus architectures trained here on the same digits with
scripts/train_digits.py's recipe (cached under --cache, never in git), every one loaded the way
`blocks` loads it (a models.toml is written there for `--models`):
  resnet18 at 32 px (torchvision, a state dict), a small VGG-like CNN, an MLP, LeNet-5 and a
  4-layer vision transformer on 4x4 patches (TorchScript files). (mobilenet_v3_small did not learn
  in a minute: its batch-norm statistics, momentum 0.01, lag far behind, 11% held-out accuracy
  after 7 epochs; mobilenet_v2, 8 epochs, reached 48.6%: both left out.) Target class "seven"; scenes are held-out digits without sevens,
  split in two: the patch trains on one half and is judged on views of the other.

1. eot:      leave-one-out ensembles at equal wall clock, each transfer-minded option alone
             (input diversity, ghost dropout, gradient smoothing) against none: success on the
             held-out architecture (transfer) and on the ensemble's own members (white-box).
   smooth:   the same for the default member mode, smoothing off vs 0.8 px only.
2. matrix:   single-model patches and leave-one-out ensemble patches in each member mode (mean,
             balance, cycle; blocks' other defaults, equal wall clock), each judged on every zoo
             model -> docs/transfer.png. Target: on the held-out architecture the default mode's
             ensemble patch wins >= 25 points more often than a single-model patch of the same
             wall clock (the mean over the single-model patches of its members, then the mean over
             held-out architectures).
3. imagenet: the embedded efficientnet_lite0, shipped training photos / held-out photos:
             smoothing off vs 0.8 px, same wall clock, white-box success on held-out views, over
             seeds. Target: blocks' defaults for one model >= off.
4. imagenet-transfer: the three offline ImageNet models (efficientnet_lite0/1/2, the zoo extra):
             single-model patches and leave-one-out pairs, each judged on all three
             -> docs/transfer-imagenet.png (--transfer-smooth S: every patch at smoothing S).
5. loss:     the matrix's gain for `balance` ensembles under each attack loss (cross-entropy, the target's
             logit, the Carlini-Wagner margin; --losses, --scale LO HI), and what every zoo model calls
             the views of an ensemble patch made without DigitsNet -> docs/transfer-views.png.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import fields, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]  # bench.tricks; scripts/train_digits.py

from blocks.attacks import GenerateConfig, generate_patch  # noqa: E402
from bench.tricks import Tricks  # noqa: E402
from blocks.models.digits import LABELS, load_digits_rgb  # noqa: E402
from blocks.evaluate import evaluate_patch  # noqa: E402
from blocks.models import Ensemble, load_classifier, read_model_list  # noqa: E402
from common.files import save_png  # noqa: E402
from transforms import preset, random_views  # noqa: E402

TARGET = 7
SCALE = (0.5, 0.6)
OFF = {"diversity": 0.0, "ghost": 0.0, "smooth": 0.0}  # smooth None (the default): 0.8 for ensembles, 0 for one
TRANSFER_KEYS = ("diversity", "ghost", "smooth", "members", "loss")
TRICKS = {f.name for f in fields(Tricks)}  # the options the attack takes as its tricks hook (bench/tricks.py)


def with_options(cfg: GenerateConfig, options: dict) -> tuple[GenerateConfig, Tricks]:
    """(cfg with options (TRANSFER_KEYS), the Tricks hook with the bench-only ones)."""
    tricks = {k: v for k, v in options.items() if k in TRICKS}
    rest = {k: v for k, v in options.items() if k not in TRICKS}
    return replace(cfg, **rest), Tricks(**tricks)


class SmallVGG(nn.Module):
    """(B, 3, 32, 32) -> (B, 10): two 3x3 convolutions per stage, three stages, no batch norm."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        layers, c = [], 3
        for width in (32, 64, 128):
            layers += [nn.Conv2d(c, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, width, 3, padding=1),
                       nn.ReLU(), nn.MaxPool2d(2)]
            c = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.3), nn.Linear(128 * 16, num_classes))

    def forward(self, x):
        return self.head(self.features(x))


class MLP(nn.Module):
    """(B, 3, 32, 32) -> (B, 10): no convolutions at all, the least like the others."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 256), nn.ReLU(), nn.Dropout(0.2),
                                 nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, num_classes))

    def forward(self, x):
        return self.net(x)


class LeNet(nn.Module):
    """(B, 3, 32, 32) -> (B, 10): LeCun et al. 1998's LeNet-5 (5x5 convolutions, average pooling, tanh)."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, 6, 5), nn.Tanh(), nn.AvgPool2d(2), nn.Conv2d(6, 16, 5), nn.Tanh(),
                                 nn.AvgPool2d(2), nn.Flatten(), nn.Linear(16 * 25, 120), nn.Tanh(),
                                 nn.Linear(120, 84), nn.Tanh(), nn.Linear(84, num_classes))

    def forward(self, x):
        return self.net(x)


def tiny_vit():
    """(B, 3, 32, 32) -> (B, 10): a 4-layer vision transformer on 4x4 patches (attention, no convolutions
    past the patch embedding)."""
    from torchvision.models import VisionTransformer

    return VisionTransformer(image_size=32, patch_size=4, num_layers=4, num_heads=4, hidden_dim=96, mlp_dim=192,
                             num_classes=10)


def zoo_recipes():
    from torchvision import models as tvm

    # name -> (builder, input size, epochs, how blocks loads it)
    return {
        "resnet18": (lambda: tvm.resnet18(num_classes=10), 32, 8, "resnet18"),
        "vgg_small": (SmallVGG, 32, 8, "vgg_small.ts"),
        "mlp": (MLP, 32, 12, "mlp.ts"),
        "lenet": (LeNet, 32, 12, "lenet.ts"),
        "vit_tiny": (tiny_vit, 32, 20, "vit_tiny.ts"),
    }


def build_zoo(cache: Path) -> Path:
    """Train what is missing, write cache/models.toml (one [[models]] entry per zoo model)."""
    from train_digits import train

    cache.mkdir(parents=True, exist_ok=True)
    (cache / "labels.txt").write_text("\n".join(LABELS) + "\n")
    entries = ['[[models]]\nmodel = "digits"\n']
    for name, (build, size, epochs, source) in zoo_recipes().items():
        weights = cache / (source if source.endswith(".ts") else f"{name}.pt")
        if not weights.is_file():
            t = time.perf_counter()
            net = train(build(), epochs, seed=0, size=size, log=lambda m: print(f"   {name} {m}", flush=True))
            net.eval()
            if source.endswith(".ts"):
                torch.jit.script(net).save(str(weights))
            else:
                torch.save(net.state_dict(), weights)
            print(f"   trained {name} at {size} px: {epochs} epochs in {time.perf_counter() - t:.0f} s, "
                  f"held-out digit accuracy {net.held_out_accuracy:.1%}")
        if source.endswith(".ts"):
            entries.append(f'[[models]]\nmodel = "{weights.name}"\nlabels = "labels.txt"\n'
                           f'input_size = {size}\nmean = [0.5, 0.5, 0.5]\nstd = [0.5, 0.5, 0.5]\n')
        else:
            entries.append(f'[[models]]\nmodel = "{source}"\nweights = "{weights.name}"\nlabels = "labels.txt"\n'
                           f'input_size = {size}\nmean = [0.5, 0.5, 0.5]\nstd = [0.5, 0.5, 0.5]\n')
    (cache / "models.toml").write_text("\n".join(entries))
    return cache / "models.toml"


def load_zoo(toml: Path) -> dict[str, nn.Module]:
    zoo = {}
    for spec in read_model_list(toml):
        model = load_classifier(spec, "cpu")
        model.name = Path(model.name).stem if model.name.endswith(".ts") else model.name
        zoo[model.name] = model
    x, y = load_digits_rgb("test")
    with torch.no_grad():
        accs = {n: (m(x).argmax(1) == y).float().mean().item() for n, m in zoo.items()}
    print("   zoo, held-out digit accuracy: " + ", ".join(f"{n} {a:.1%}" for n, a in accs.items()))
    return zoo


class Scenes:
    """Held-out digits without the target, split in two, at any size."""

    def __init__(self):
        x, y = load_digits_rgb("test")
        others = x[y != TARGET]
        self.train, self.test = others[0::2], others[1::2]

    @staticmethod
    def at(x, size):
        return x if x.shape[-1] == size else F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def make_patch(model, seconds: float, options: dict, scenes: Scenes, seed: int = 0):
    cfg = GenerateConfig(target=TARGET, patch_size=16, steps=10**6, max_seconds=seconds, seed=seed)
    cfg, tricks = with_options(cfg, options)
    r = generate_patch(model, cfg, preset("print", SCALE), Scenes.at(scenes.train, model.input_size), tricks=tricks,
                       clock=time.process_time)
    return r.patch, len(r.curve)


def judge(patch, model, scenes: Scenes, n: int) -> float:
    ev = evaluate_patch(model, patch, preset("print", SCALE), TARGET,
                        scenes=Scenes.at(scenes.test, model.input_size), n=n, seed=99)
    return ev.success_rate


def defaults() -> dict:
    cfg, tricks = GenerateConfig(), Tricks()
    return {k: getattr(tricks if k in TRICKS else cfg, k) for k in TRANSFER_KEYS}


def part_eot(zoo, scenes, seconds, n, out, seed: int = 0, options: dict | None = None, key: str = "eot") -> None:
    if options is None:
        options = {"none": OFF, "diversity 0.5": {**OFF, "diversity": 0.5}, "ghost 0.1": {**OFF, "ghost": 0.1},
                   "smooth 0.8 px": {**OFF, "smooth": 0.8}, "smooth 1.6 px": {**OFF, "smooth": 1.6}}
    print(f"== 1. transfer-minded options, leave-one-out ensembles, {seconds:.0f} CPU s each, {n} views, "
          f"seed {seed}: {options}", flush=True)
    results = {}
    for held in zoo:
        members = [m for k, m in zoo.items() if k != held]
        ensemble = Ensemble(members).eval()
        for label, opts in options.items():  # interleaved per held-out model: load drifts hit all alike
            patch, steps = make_patch(ensemble, seconds, opts, scenes, seed)
            transfer = judge(patch, zoo[held], scenes, n)
            white = statistics.mean(judge(patch, m, scenes, n) for m in members)
            print(f"   {label:<14} held out {held:<10} {transfer:6.1%}  white-box {white:.1%}  {steps} steps",
                  flush=True)
            results.setdefault(label, []).append({"held_out": held, "transfer": transfer, "white_box": white,
                                                  "steps": steps})
    print(f"   {'option':<14} {'held-out model':>14} {'white-box':>10} {'steps':>6}   per held-out model")
    for label, rows in results.items():
        per = ", ".join(f"{r['held_out']} {r['transfer']:.0%}" for r in rows)
        print(f"   {label:<14} {statistics.mean(r['transfer'] for r in rows):>14.1%} "
              f"{statistics.mean(r['white_box'] for r in rows):>10.1%} "
              f"{statistics.mean(r['steps'] for r in rows):>6.0f}   {per}")
    out[key] = results


MODES = ("mean", "balance", "cycle")


def part_matrix(zoo, scenes, seconds, n, out, png: Path, seed: int = 0) -> None:
    """Single-model patches, and leave-one-out ensemble patches in each member mode, judged on every model."""
    opts = defaults()
    print(f"== 2. transfer matrix, blocks' defaults {opts}, {seconds:.0f} CPU s per patch, {n} views per cell; "
          f"ensembles in each member mode {MODES}, seed {seed}", flush=True)
    names = list(zoo)
    rows, labels, steps = [], [], []
    for src in names:  # single-model patches
        patch, k = make_patch(zoo[src], seconds, opts, scenes, seed)
        rows.append([judge(patch, zoo[y], scenes, n) for y in names])
        labels.append(src)
        steps.append(k)
        print(f"   {src:<24} " + " ".join(f"{v:>7.1%}" for v in rows[-1]) + f"  {k} steps", flush=True)
    for held in names:  # leave-one-out ensembles, the modes interleaved: load drifts hit all alike
        ensemble = Ensemble([m for kk, m in zoo.items() if kk != held]).eval()
        for mode in MODES:
            patch, k = make_patch(ensemble, seconds, {**opts, "members": mode}, scenes, seed)
            rows.append([judge(patch, zoo[y], scenes, n) for y in names])
            labels.append(f"all but {held} ({mode})")
            steps.append(k)
            print(f"   {labels[-1]:<24} " + " ".join(f"{v:>7.1%}" for v in rows[-1]) + f"  {k} steps", flush=True)
    width = max(len(s) for s in labels)
    print(f"   {'trained on':<{width}} " + " ".join(f"{y[:12]:>12}" for y in names) + "   steps")
    for label, row, k in zip(labels, rows, steps):
        print(f"   {label:<{width}} " + " ".join(f"{v:>12.1%}" for v in row) + f"   {k:5d}")
    summary = {}
    for m, mode in enumerate(MODES):
        print(f"   -- members = {mode}")
        summary[mode] = ensemble_gain(rows[:len(names)], [rows[len(names) + j * len(MODES) + m] for j in range(len(names))],
                                      names)
    singles_mean = statistics.mean(rows[i][j] for j in range(len(names)) for i in range(len(names)) if i != j)
    single_white = statistics.mean(rows[i][i] for i in range(len(names)))
    print(f"   {'mode':<8} {'held-out':>9} {'gain':>7} {'white-box':>10} {'worst member':>13}   "
          f"(single-model patches: held-out {singles_mean:.1%}, white-box {single_white:.1%})")
    for mode, r in summary.items():
        mark = " (default)" if mode == opts["members"] else ""
        print(f"   {mode:<8} {r['held_out']:>9.1%} {r['gain_points']:>+7.1f} {r['white_box']:>10.1%} "
              f"{r['white_box_worst']:>13.1%}{mark}")
    gain = summary[opts["members"]]["gain_points"]
    print(f"   TRANSFER GAIN of the default ({opts['members']}, mean over held-out models) = {gain:+.1f} points "
          f"(target >= +25: {'PASS' if gain >= 25 else 'FAIL'})")
    out["matrix"] = {"models": names, "trained_on": labels, "success": rows, "steps": steps, "modes": summary,
                     "gain_points": gain, "seconds": seconds, "options": opts}
    draw(rows, labels, names, png, seconds, n)


def ensemble_gain(singles: list, ensembles: list, names: list, verbose: bool = True) -> dict:
    """singles[i]: the success row of model i's own patch; ensembles[j]: the row of the patch made on
    every model but j. The gain on held-out j is ensembles[j][j] minus the mean of singles[i][j] over
    its members i != j; the summary averages over the held-out models. ceiling_points: the gain if each
    held-out model were fooled as often as the ensemble's own members (the better of the two), except
    DigitsNet, which no patch that never saw it fools: how far better transfer alone could go."""
    per = []
    for j, held in enumerate(names):
        row = ensembles[j]
        member_singles = [singles[i][j] for i in range(len(names)) if i != j]
        others = [row[i] for i in range(len(names)) if i != j]
        h = {"ensemble": row[j], "singles": statistics.mean(member_singles), "white_box": statistics.mean(others),
             "worst": min(others)}
        h["gain"] = h["ensemble"] - h["singles"]
        h["ceiling"] = (row[j] if held == "digits" else max(row[j], h["white_box"])) - h["singles"]
        per.append(h)
        if verbose:
            print(f"   held out {held}: ensemble {row[j]:.1%} vs single-model patches of its members "
                  f"{h['singles']:.1%} (best {max(member_singles):.1%}): {100 * h['gain']:+.1f} "
                  f"points; white-box mean {h['white_box']:.1%}, worst member {h['worst']:.1%}")

    def mean(key):
        return statistics.mean(h[key] for h in per)

    return {"gain_points": 100 * mean("gain"), "held_out": mean("ensemble"), "white_box": mean("white_box"),
            "white_box_worst": mean("worst"), "per_held_out_gain_points": [100 * h["gain"] for h in per],
            "ceiling_points": 100 * mean("ceiling"), "per_held_out": per}


def what_models_see(patch, zoo, scenes: Scenes, png: Path, n: int = 256) -> dict:
    """Every zoo model's calls on n views of patch (held-out scenes); the first 16 views -> png."""
    views, _ = random_views(patch, n, 32, preset("print", SCALE), Scenes.at(scenes.test, 32),
                            torch.Generator().manual_seed(5))
    seen = {}
    with torch.no_grad():
        for name, model in zoo.items():
            probs = model(views).softmax(1)
            calls = torch.bincount(probs.argmax(1), minlength=len(LABELS)).tolist()
            seen[name] = {"mean_target_prob": probs[:, TARGET].mean().item(), "calls": calls}
            top = max(range(len(calls)), key=calls.__getitem__)
            print(f"   {name:<10} mean p({LABELS[TARGET]}) {seen[name]['mean_target_prob']:.3f}, "
                  f"most called {LABELS[top]} ({calls[top]}/{n})")
    grid = F.interpolate(views[:16], scale_factor=4, mode="nearest")  # 32 px views are too small to look at
    save_png(png, torch.cat([torch.cat(list(row), 2) for row in grid.split(8)], 1))
    print(f"   wrote {png}")
    return seen


def part_loss(zoo, scenes, seconds, n, out, png: Path, seed: int = 0, losses=("ce", "logit", "margin")) -> None:
    """Single-model and leave-one-out ensemble patches (blocks' other defaults) under each attack loss;
    what every model calls the views of the first loss's patch that never saw the first zoo model -> png."""
    names = list(zoo)
    print(f"== 5. attack loss {losses}: single-model and leave-one-out ensemble patches, {seconds:.0f} CPU s per "
          f"patch, scale {SCALE[0]}-{SCALE[1]}, {n} views per cell, seed {seed}", flush=True)
    results = {}
    for loss in losses:
        opts = {**defaults(), "loss": loss}
        singles, ensembles = [], []
        for src in names:
            patch, k = make_patch(zoo[src], seconds, opts, scenes, seed)
            singles.append([judge(patch, zoo[y], scenes, n) for y in names])
            print(f"   {loss:<7} {src:<20} " + " ".join(f"{v:>7.1%}" for v in singles[-1]) + f"  {k} steps", flush=True)
        for held in names:
            patch, k = make_patch(Ensemble([m for kk, m in zoo.items() if kk != held]).eval(), seconds, opts, scenes,
                                  seed)
            if held == names[0] and loss == losses[0]:
                shown = patch
            ensembles.append([judge(patch, zoo[y], scenes, n) for y in names])
            print(f"   {loss:<7} all but {held:<12} " + " ".join(f"{v:>7.1%}" for v in ensembles[-1]) + f"  {k} steps",
                  flush=True)
        r = ensemble_gain(singles, ensembles, names, verbose=False)
        r["single_white_box"] = statistics.mean(singles[i][i] for i in range(len(names)))
        r["single_held_out"] = statistics.mean(singles[i][j] for i in range(len(names)) for j in range(len(names))
                                               if i != j)
        results[loss] = {**r, "singles": singles, "ensembles": ensembles}
    print(f"   {'loss':<7} {'ensemble held-out':>17} {'gain':>7} {'ceiling':>8} {'white-box':>10} "
          f"{'single white-box':>17} {'single held-out':>16}   gain per held-out model ({', '.join(names)})")
    for loss, r in results.items():
        per = " ".join(f"{g:+.0f}" for g in r["per_held_out_gain_points"])
        print(f"   {loss:<7} {r['held_out']:>17.1%} {r['gain_points']:>+7.1f} {r['ceiling_points']:>+8.1f} "
              f"{r['white_box']:>10.1%} {r['single_white_box']:>17.1%} {r['single_held_out']:>16.1%}   {per}")
    print(f"   what each model calls the views of the {losses[0]} ensemble patch made without {names[0]}:")
    seen = what_models_see(shown, zoo, scenes, png)
    out[f"loss_scale_{SCALE[0]}_{SCALE[1]}"] = {"models": names, "seconds": seconds, "seed": seed, "losses": results,
                                               f"views_without_{names[0]}": seen}


def draw(rows, labels, names, png: Path, seconds: float, n: int, title: str = "digits zoo ('seven')",
         groups: int = len(MODES)) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1.6 * len(names) + 3.2, 0.4 * len(rows) + 1.8))
    ax.imshow([[100 * v for v in r] for r in rows], cmap="viridis", vmin=0, vmax=100, aspect="auto")
    for i, r in enumerate(rows):
        for j, v in enumerate(r):
            held = (i < len(names) and i != j) or (i >= len(names) and (i - len(names)) // groups == j)
            ax.text(j, i, f"{100 * v:.0f}", ha="center", va="center", color="w" if v < 0.6 else "k",
                    fontweight="bold" if held else "normal")
    for k in range(len(names), len(rows), groups):
        ax.axhline(k - 0.5, color="w", lw=2 if k == len(names) else 0.7)
    ax.set_xticks(range(len(names)), names, rotation=20)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("judged on")
    ax.set_ylabel("trained on")
    ax.set_title(f"target success %, {title}, {seconds:.0f} CPU s per patch, {n} views;\n"
                 f"bold: a model the patch never saw", fontsize=9)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    print(f"   wrote {png}")


def photo_scenes(sizes) -> tuple[dict, dict]:
    """Crops of the shipped training and held-out photos at each input size: ({size: scenes}, {size: scenes})."""
    import tempfile

    from blocks.scenes import export_sample_photos, load_scenes

    with tempfile.TemporaryDirectory() as tmp:
        export_sample_photos(tmp)
        return ({s: load_scenes(f"{tmp}/train", s) for s in sizes},
                {s: load_scenes(f"{tmp}/test", s, seed=1) for s in sizes})


def part_imagenet(seconds: float, n: int, seeds: int, out) -> None:
    from blocks.attacks.eot_fgsm import smoothing
    from blocks.models import ModelSpec

    model = load_classifier(ModelSpec("efficientnet_lite0"), "cpu")
    opts = defaults()
    sigma = smoothing(model, with_options(GenerateConfig(), opts)[0])  # what blocks' defaults do for this one model
    print(f"== 3. embedded efficientnet_lite0, target hen, {seconds:.0f} CPU s each, scale 0.45-0.55, white-box "
          f"on {n} views of held-out photos per patch, {seeds} seeds: smoothing off vs 0.8 px; blocks' "
          f"defaults {opts} give this single model smooth {sigma}")
    train, test = (d[224] for d in photo_scenes([224]))
    eot = preset("print", (0.45, 0.55))
    settings = {"off": OFF, "smooth 0.8 px": {**OFF, "smooth": 0.8}}
    res = {k: [] for k in settings}
    for seed in range(seeds):
        for label, o in settings.items():  # interleaved: load drifts hit both alike
            cfg, tricks = with_options(GenerateConfig(target=8, patch_size=112, steps=10**6, max_seconds=seconds, batch=16,
                                              seed=seed), o)
            r = generate_patch(model, cfg, eot, train, clock=time.process_time, tricks=tricks)
            ev = evaluate_patch(model, r.patch, eot, 8, scenes=test, n=n, seed=99 + seed)
            res[label].append({"seed": seed, "success": ev.success_rate, "mean_target_prob": ev.mean_target_prob,
                               "steps": len(r.curve)})
            print(f"   seed {seed} {label:<13} held-out success {ev.success_rate:.1%}, mean p(hen) "
                  f"{ev.mean_target_prob:.3f}, {len(r.curve)} steps", flush=True)
    mean = {k: statistics.mean(r["success"] for r in v) for k, v in res.items()}
    for k, v in res.items():
        print(f"   {k:<13} mean over {seeds} seeds x {n} views: {mean[k]:.1%} (mean p(hen) "
              f"{statistics.mean(r['mean_target_prob'] for r in v):.3f})")
    default = "off" if sigma == 0 else "smooth 0.8 px" if sigma == 0.8 else None
    if default is None:
        print(f"   the default sigma {sigma} is neither line: no verdict")
    else:
        ok = mean[default] >= mean["off"]
        print(f"   defaults ({default}) - off = {100 * (mean[default] - mean['off']):+.1f} points "
              f"(target >= 0: {'PASS' if ok else 'FAIL'})")
    out["imagenet"] = {"default_smooth": sigma, **res}


LITES = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")


def part_imagenet_transfer(seconds: float, n: int, seeds: int, out, png: Path, smooth: float | None = None) -> None:
    """Real ImageNet transfer: the three offline EfficientNet-Lite models (224/240/260 px, one family,
    separately trained). Single-model patches and leave-one-out pairs (blocks' defaults), each judged
    on all three; the gain compares a pair on its held-out model with its members' own patches."""
    from blocks.models import ModelSpec

    zoo = {name: load_classifier(ModelSpec(name), "cpu") for name in LITES}
    opts = defaults() if smooth is None else {**defaults(), "smooth": smooth}
    print(f"== 4. ImageNet transfer: {', '.join(LITES)}; target hen, {seconds:.0f} CPU s per patch, scale 0.45-0.55, "
          f"{n} views of held-out photos per cell, {seeds} seeds, blocks' defaults {opts}", flush=True)
    sizes = sorted({m.input_size for m in zoo.values()})
    train, test = photo_scenes(sizes)
    eot = preset("print", (0.45, 0.55))
    names = list(zoo)
    sources = [[x] for x in names] + [[x for x in names if x != held] for held in names]
    per_seed = []
    for seed in range(seeds):
        rows, steps = [], []
        for members in sources:
            model = zoo[members[0]] if len(members) == 1 else Ensemble([zoo[m] for m in members]).eval()
            cfg, tricks = with_options(GenerateConfig(target=8, patch_size=model.input_size // 2, steps=10**6,
                                              max_seconds=seconds, batch=16, seed=seed), opts)
            r = generate_patch(model, cfg, eot, train[model.input_size], clock=time.process_time, tricks=tricks)
            row = []
            for y in names:
                ev = evaluate_patch(zoo[y], r.patch, eot, 8, scenes=test[zoo[y].input_size], n=n, seed=99 + seed)
                row.append({"success": ev.success_rate, "mean_target_prob": ev.mean_target_prob,
                            "top5": ev.top5_rate})
            rows.append(row)
            steps.append(len(r.curve))
            print(f"   seed {seed} {'+'.join(m[-5:] for m in members):<12} " + " ".join(
                f"{c['success']:>7.1%} (p {c['mean_target_prob']:.2f})" for c in row) + f"  {len(r.curve)} steps",
                flush=True)
        per_seed.append({"rows": rows, "steps": steps})
    k = len(names)
    mean_rate = [[statistics.mean(ps["rows"][i][j]["success"] for ps in per_seed) for j in range(k)]
                 for i in range(len(sources))]
    summary = ensemble_gain(mean_rate[:k], mean_rate[k:], names, verbose=False)
    print(f"   mean over {seeds} seeds (success on {n} held-out views):")
    for j, (held, h) in enumerate(zip(names, summary["per_held_out"])):
        single_white = statistics.mean(mean_rate[i][i] for i in range(k) if i != j)
        print(f"   held out {held}: pair {h['ensemble']:.1%} vs its members' single-model patches {h['singles']:.1%} "
              f"({100 * h['gain']:+.1f} points); white-box: pair {h['white_box']:.1%}, single {single_white:.1%}")
    gain = summary["gain_points"]
    print(f"   ImageNet TRANSFER GAIN of a pair over its members' single-model patches = {gain:+.1f} points")
    labels = names + [f"all but {h}" for h in names]
    out["imagenet_transfer" if smooth is None else f"imagenet_transfer_smooth_{smooth}"] = {"models": names, "trained_on": labels, "seeds": per_seed, "mean_success": mean_rate,
                                "gain_points": gain, "seconds": seconds, "options": opts}
    draw(mean_rate, labels, names, png, seconds, n, title="ImageNet (target hen)", groups=1)


def main() -> None:
    global SCALE  # make_patch and judge read it
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", choices=["eot", "smooth", "matrix", "digits", "loss", "imagenet", "imagenet-transfer",
                                       "all"],
                    default="all",
                    help="digits = matrix (eot, the option-by-option table, only when named or all)")
    ap.add_argument("--seconds", type=float, default=5.0, help="CPU seconds per digits patch")
    ap.add_argument("--imagenet-seconds", type=float, default=60.0, help="CPU seconds per ImageNet patch")
    ap.add_argument("--n", type=int, default=128, help="views per judgement")
    ap.add_argument("--seed", type=int, default=0, help="seed of the digits patches")
    ap.add_argument("--imagenet-n", type=int, default=256, help="held-out views per ImageNet patch")
    ap.add_argument("--imagenet-seeds", type=int, default=2, help="ImageNet patches per setting")
    ap.add_argument("--cache", type=Path, default=ROOT / "runs" / "zoo")
    ap.add_argument("--png", type=Path, default=ROOT / "docs" / "transfer.png")
    ap.add_argument("--imagenet-png", type=Path, default=ROOT / "docs" / "transfer-imagenet.png")
    ap.add_argument("--transfer-seconds", type=float, default=120.0, help="CPU seconds per ImageNet transfer patch")
    ap.add_argument("--transfer-smooth", type=float, default=None,
                    help="gradient smoothing (px) for every ImageNet transfer patch instead of blocks' defaults")
    ap.add_argument("--scale", type=float, nargs=2, default=SCALE, metavar=("LO", "HI"),
                    help="the patch's side as a share of the digits scene")
    ap.add_argument("--losses", default="ce,logit,margin", help="--part loss: the attack losses to compare")
    ap.add_argument("--views-png", type=Path, default=ROOT / "docs" / "transfer-views.png",
                    help="--part loss: views of an ensemble patch made without DigitsNet")
    ap.add_argument("--json", type=Path, default=ROOT / "runs" / "transfer.json")
    args = ap.parse_args()
    SCALE = tuple(args.scale)
    torch.set_num_threads(1)  # on a shared machine extra threads mostly spin-wait
    start = time.perf_counter()
    out = {}
    if args.part in ("eot", "smooth", "matrix", "digits", "loss", "all"):
        print(f"== 0. digits zoo (cached in {args.cache})")
        zoo = load_zoo(build_zoo(args.cache))
        scenes = Scenes()
        if args.part in ("eot", "all"):
            part_eot(zoo, scenes, args.seconds, args.n, out, args.seed)
        if args.part == "smooth":  # the default's smoothing, on and off, with the default member mode
            base = {**OFF, "members": defaults()["members"]}
            part_eot(zoo, scenes, args.seconds, args.n, out, args.seed, key="smooth",
                     options={"smooth 0": base, "smooth 0.8 px": {**base, "smooth": 0.8}})
        if args.part in ("matrix", "digits", "all"):
            part_matrix(zoo, scenes, args.seconds, args.n, out, args.png, args.seed)
        if args.part == "loss":
            part_loss(zoo, scenes, args.seconds, args.n, out, args.views_png, args.seed, tuple(args.losses.split(",")))
    if args.part in ("imagenet", "all"):
        part_imagenet(args.imagenet_seconds, args.imagenet_n, args.imagenet_seeds, out)
    if args.part in ("imagenet-transfer", "all"):
        part_imagenet_transfer(args.transfer_seconds, args.imagenet_n, args.imagenet_seeds, out, args.imagenet_png,
                               args.transfer_smooth)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=1))
    print(f"total {time.perf_counter() - start:.0f} s; results in {args.json}")


if __name__ == "__main__":
    main()
