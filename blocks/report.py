"""Writing a generate run to disk: patch.png (exact values), patch.json (everything), curve.png."""
from __future__ import annotations

import io
import platform
from datetime import datetime, timezone
from pathlib import Path

import torch

from common.errors import shown
from common.files import atomic_write_bytes, encode_png, sha256_bytes, write_together
from common.records import PatchRecord


def library_versions() -> dict[str, str]:
    import cv2
    import kornia
    import numpy
    import torchvision

    return {"python": platform.python_version(), "torch": torch.__version__,
            "torchvision": torchvision.__version__, "kornia": kornia.__version__,
            "opencv": cv2.__version__, "numpy": numpy.__version__}


def write_patch(png_path: Path, json_path: Path, patch: torch.Tensor, record: PatchRecord) -> PatchRecord:
    """Write the patch (png_path: patch.png) and its record (json_path: patch.json) together
    (all or none, Ctrl-C held until both are on disk). Returns the record written (with the PNG's hash and size). Set record.versions =
    library_versions() before the run: importing them takes seconds, and after a Ctrl-C there may
    be no seconds to spare."""
    data = encode_png(patch)
    record.patch_sha256, record.patch_px = sha256_bytes(data), list(patch.shape[-2:])
    record.written = datetime.now(timezone.utc).isoformat(timespec="seconds")
    record.versions = record.versions or library_versions()
    write_together([(png_path, data), (json_path, record.to_bytes())])
    return record.as_written()


def pyplot():
    """matplotlib's pyplot on the Agg backend: figures are files here, never windows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path) -> Path:
    """Write a figure as a PNG atomically and close it."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    pyplot().close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def plot_curve(curve: dict[str, list], path: Path, title: str = "", held_out: dict | None = None) -> Path:
    """Loss, objective probability and step size against step, as a PNG; with held_out (patch.json's,
    after the held-out check) also what the final line reports: the held-out success, and for
    whole frames a panel of it by coverage beside the 90% a patch 'works' at."""
    plt = pyplot()
    by_cov = (held_out or {}).get("by_coverage")
    fig, axes = plt.subplots(3 if by_cov else 2, 1, figsize=(7, 8.0 if by_cov else 5.5),
                             gridspec_kw={"height_ratios": [1, 1, 1] if by_cov else [1, 1]})
    _training_panels(axes[0], axes[1], curve, title, held_out)
    if by_cov:
        _coverage_panel(axes[2], by_cov, held_out["n"])
    fig.tight_layout()
    return save_figure(fig, path)


def _training_panels(ax1, ax2, curve: dict[str, list], title: str, held_out: dict | None) -> None:
    """Loss above; objective probability, share won and step size below, with the held-out
    success as a dotted line when there is one."""
    ax2.sharex(ax1)
    steps = curve["step"]
    ax1.plot(steps, curve["loss"], lw=1, color="tab:red")
    ax1.set_ylabel("cross-entropy")
    ax1.set_title(shown(title) + ": training" if title else "training")  # a class name from a labels file: no control characters in a figure
    ax2.plot(steps, curve["objective_prob"], lw=1, label="mean objective prob (training views)")
    ax2.plot(steps, curve["success"], lw=1, alpha=0.6, label="share of training views won")
    if held_out:
        ax2.axhline(held_out["success_rate"], color="tab:green", lw=1.2, ls=":",
                    label=f"held-out success {held_out['success_rate']:.1%} (final patch)")
    ax2.set_ylim(-0.02, 1.02)
    ax2.set_xlabel("step")
    ax2.set_ylabel("probability")
    twin = ax2.twinx()
    twin.plot(steps, [e * 255 for e in curve["epsilon"]], lw=1, ls="--", color="grey")
    twin.set_ylabel("step size (/255)", color="grey")
    # below the panel, never over the data (the curves rise from the lower left, the step size
    # falls from the upper left)
    ax2.legend(loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=2, fontsize=7, frameon=False)


def _coverage_panel(ax3, by_cov: dict, n: int) -> None:
    """Held-out success by coverage as bars, green where it reaches WORKS_RATE (dashed)."""
    from blocks.evaluate import WORKS_RATE

    names = list(by_cov)
    rates = [by_cov[k]["success_rate"] for k in names]
    ax3.bar(names, rates, color=["tab:green" if r >= WORKS_RATE else "tab:olive" for r in rates])
    ax3.axhline(WORKS_RATE, color="grey", lw=1, ls="--")
    for i, r in enumerate(rates):
        ax3.text(i, min(r + 0.03, 0.97), f"{r:.0%}", ha="center", fontsize=8)
    ax3.set_ylim(0, 1.05)
    ax3.set_ylabel("held-out success")
    ax3.set_xlabel("coverage: patch side / frame's shorter side (closer camera: right)")
    ax3.set_title(f"held-out whole frames, {n} views (works: >= {WORKS_RATE:.0%}, dashed)")
