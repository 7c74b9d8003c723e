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

from blocks.digits import DigitsNet, load_digits_rgb

OUT = Path(__file__).resolve().parents[1] / "blocks" / "data" / "digits.pt"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    x_train, y_train = load_digits_rgb("train")
    x_test, y_test = load_digits_rgb("test")
    augment = K.AugmentationSequential(
        K.RandomAffine(degrees=12, translate=(0.08, 0.08), scale=(0.85, 1.1), p=0.9,
                       padding_mode="border"),
        K.ColorJiggle(brightness=0.2, contrast=0.3, saturation=0.3, hue=0.05, p=0.8),
        K.RandomGaussianNoise(std=0.03, p=0.5),
    )
    net = DigitsNet()
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-4)
    steps = args.epochs * math.ceil(len(x_train) / 64)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    for epoch in range(args.epochs):
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
        print(f"epoch {epoch + 1:2d}  loss {loss.item():.3f}  held-out accuracy {acc:.4f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in net.state_dict().items()},
               args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
