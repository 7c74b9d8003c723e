"""Train the bundled offline model on scikit-learn's digits and write blocks/data/digits.pt.

    python scripts/train_digits.py            # ~1 minute on 2 CPU cores

Augmentation (small shifts, rotations, scale, contrast, colour tint, noise) makes the model behave
more like a camera-facing classifier, so patches made against it face a fair opponent.
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

import kornia.augmentation as K
import torch
import torch.nn.functional as F

from blocks.models.digits import DigitsNet, load_digits_rgb

OUT = Path(__file__).resolve().parents[1] / "blocks" / "data" / "digits.pt"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    net = train(DigitsNet(), args.epochs, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in net.state_dict().items()},
               args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB)")


def train(net: torch.nn.Module, epochs: int, seed: int = 0, size: int = 32, lr: float = 3e-3,
          log=print) -> torch.nn.Module:
    """The recipe: augmented digits at `size` px, inputs normalised (x - 0.5) / 0.5, AdamW with a
    one-cycle schedule. Also trains the other architectures of bench/transfer.py's zoo."""
    torch.manual_seed(seed)
    x_train, y_train = load_digits_rgb("train")
    x_test, y_test = load_digits_rgb("test")
    if size != x_train.shape[-1]:
        x_train, x_test = (F.interpolate(x, size=size, mode="bilinear", align_corners=False)
                           for x in (x_train, x_test))
    augment = K.AugmentationSequential(
        K.RandomAffine(degrees=12, translate=(0.08, 0.08), scale=(0.85, 1.1), p=0.9,
                       padding_mode="border"),
        K.ColorJiggle(brightness=0.2, contrast=0.3, saturation=0.3, hue=0.05, p=0.8),
        K.RandomGaussianNoise(std=0.03, p=0.5),
    )
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * math.ceil(len(x_train) / 64)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    for epoch in range(epochs):
        net.train()
        for idx in torch.randperm(len(x_train)).split(64):
            x = augment(x_train[idx]).clamp(0, 1)
            loss = F.cross_entropy(net((x - 0.5) / 0.5), y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        net.eval()
        with torch.no_grad():
            acc = (net((x_test - 0.5) / 0.5).argmax(1) == y_test).float().mean().item()
        log(f"epoch {epoch + 1:2d}  loss {loss.item():.3f}  held-out accuracy {acc:.4f}")
    net.held_out_accuracy = acc
    return net


if __name__ == "__main__":
    main()
