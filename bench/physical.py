"""Off the printer: how close must the camera be? The whole chain on the embedded model, per preset:

    blocks sample-scenes -> blocks generate --eot P --max-seconds S -> blocks print --size-mm 60
      -> blocks simulate (640x480, the block filmed at a fixed size and tilt per clip)
      -> blocks capture --sheet --log (over every clip's decoded frames) -> block hit rate per
         block size and per tilt

Every preset gets the same time budget, the same sheet layout and the same camera clips (same
seeds), in the same run; only the patch differs. Clip sizes are the block's side in frame pixels
when seen head-on (tilt shrinks it); the capture log's measured `size_px` is reported too.
The camera is turned by exactly the clip's tilt about an axis that moves (transforms.camera
tilt_fixed), rolls up to 25 deg in the image plane, drifts, and has the simulator's light changes,
blur, noise, JPEG, then mp4 compression.

Target: block hit rate >= 90% on frames where the block spans >= 64 px at tilts up to 30 deg, and
>= 15 points above the print preset at 64-80 px.

    python bench/physical.py [--seconds 180] [--presets print,camera] [--frames 10]
        [--sizes 40,60,80,120,200] [--tilts 0,15,30,45] [--out runs/physical] [--plot docs/physical.png]
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import replace
from pathlib import Path

# bench/capture.py sits next to this file and is named like the `capture` package: drop this folder.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from blocks.cli import run as cli_run  # noqa: E402

TARGET = "hen"
SIZE_MM = 60.0
FRAME = (640, 480)


def sh(*argv: str) -> None:
    """One `blocks` command, as a user would type it; stop the bench if it fails."""
    print("$ blocks " + " ".join(argv), flush=True)
    rc = cli_run(list(argv))
    if rc != 0:
        raise SystemExit(f"blocks {argv[0]} failed with exit code {rc}")


def fill_for(block_px: float, sheet, cam) -> float:
    """The simulator's `fill` (region side / frame's shorter side) that shows the block at
    block_px across head-on: the region is the block plus its markers."""
    from capture.simulate import region_of_interest

    _, roi, _ = region_of_interest(sheet, 0, sheet.page_size_mm)
    return block_px * max(roi[2], roi[3]) / sheet.blocks[0].width_mm / min(cam.size)


def film(pdf: Path, sheet_json: Path, folder: Path, sizes, tilts, frames: int) -> list[tuple[int, int, Path]]:
    """One clip per (size, tilt), with the same seeds whatever the patch."""
    from capture.sheet import load_sheet
    from capture.simulate import SimulateSettings, simulate
    from transforms.camera import CameraSettings

    sheet = load_sheet(sheet_json)
    clips = []
    for i, px in enumerate(sizes):
        for j, tilt in enumerate(tilts):
            cam = CameraSettings(size=FRAME, tilt_deg=float(tilt), tilt_fixed=True)
            f = fill_for(px, sheet, cam)
            # the camera moves as slowly per frame as in a default 90-frame clip (motion blur alike)
            cam = replace(cam, fill=(f, f), cycles=cam.cycles * frames / 90)
            clip = folder / f"clip_{px}px_{tilt}deg.mp4"
            # `blocks simulate` with the camera held at one distance and one tilt
            simulate(pdf, clip, SimulateSettings(frames=frames, seed=1000 * i + j, camera=cam))
            clips.append((px, tilt, clip))
    return clips


def unpack(clips, folder: Path) -> Path:
    """The clips' frames as decoded from mp4 (compression and all) -> PNGs named SIZEpx_TILTdeg_I.png."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    for px, tilt, clip in clips:
        cap = cv2.VideoCapture(str(clip))
        i = 0
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            cv2.imwrite(str(folder / f"{px}px_{tilt}deg_{i:03d}.png"), bgr)
            i += 1
        cap.release()
    return folder


def read_log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def rate(rows: list[dict]) -> tuple[float | None, int]:
    """Block hit rate over frames where the block was found, and how many such frames."""
    found = [r for r in rows if r["blocks"]]
    if not found:
        return None, 0
    return sum(any(b["hit"] for b in r["blocks"]) for r in found) / len(found), len(found)


def pct(v: float | None) -> str:
    return "  -  " if v is None else f"{100 * v:5.1f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=180.0, help="generate time per patch (--max-seconds)")
    ap.add_argument("--presets", default="print,camera")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--frames", type=int, default=10, help="frames per (size, tilt) clip")
    ap.add_argument("--sizes", default="40,60,80,120,200", help="block side in frame px, head-on")
    ap.add_argument("--tilts", default="0,15,30,45", help="camera tilt, degrees")
    ap.add_argument("--out", type=Path, default=Path("runs/physical"))
    ap.add_argument("--plot", type=Path, default=Path("docs/physical.png"))
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    presets = [p.strip() for p in a.presets.split(",") if p.strip()]
    sizes = [int(v) for v in a.sizes.split(",")]
    tilts = [int(v) for v in a.tilts.split(",")]
    out = a.out
    out.mkdir(parents=True, exist_ok=True)
    scenes = out / "scenes"
    if not (scenes / "train").is_dir():
        sh("sample-scenes", str(scenes))

    results: dict[str, dict] = {}
    for name in presets:
        folder = out / name.replace("+", "_")
        t0, cpu0 = time.monotonic(), time.process_time()
        sh("generate", "--target", TARGET, "--eot", name, "--scenes", str(scenes / "train"),
           "--eval-scenes", str(scenes / "test"), "--max-seconds", str(a.seconds), "--steps", "100000",
           "--batch", str(a.batch), "--eval-n", "64", "--seed", str(a.seed), "--out", str(folder))
        cpu = time.process_time() - cpu0  # CPU seconds of generate (all its threads), with its evaluation
        meta = json.loads((folder / "patch.json").read_text())
        pdf = folder / "sheet.pdf"
        sh("print", str(folder / "patch.png"), "--out", str(pdf), "--size-mm", f"{SIZE_MM:g}")
        clips = film(pdf, pdf.with_suffix(".json"), folder, sizes, tilts, a.frames)
        # One `blocks capture` over every clip's decoded mp4 frames (one model load, not one per clip).
        frames_dir = unpack(clips, folder / "frames")
        log = folder / "frames.jsonl"
        sh("capture", "--target", TARGET, "--source", str(frames_dir), "--sheet", str(pdf.with_suffix(".json")),
           "--headless", "--log", str(log), "--summary", str(folder / "summary.json"))
        rows = []
        for r in read_log(log):
            px, tilt, _ = r["file"].split("_")
            rows.append(dict(r, clip_px=int(px[:-2]), tilt=int(tilt[:-3])))
        results[name] = {"rows": rows, "steps": meta["steps_run"], "seconds": meta["seconds"],
                         "held_out": meta["held_out"]["success_rate"], "generate_cpu_s": cpu}

    # ---- tables
    print(f"\nblock hit rate (%) on frames where the block was found; {a.frames} frames per clip")
    for name, r in results.items():
        found = [rate([{"blocks": [{"hit": bool(x["blocks"])}]} for x in r["rows"] if x["clip_px"] == px])[0]
                 for px in sizes]
        print(f"[{name}] block found in (% of frames) per clip px {sizes}: " + " ".join(pct(v) for v in found))
    for name, r in results.items():
        print(f"\n[{name}] generate: {r['steps']} steps in {r['seconds']:.0f} s wall, "
              f"{r['generate_cpu_s']:.0f} CPU-s with its evaluation; held-out {name} views "
              f"{100 * r['held_out']:.1f}%")
        print("clip px \\ tilt " + "".join(f"{t:>8}" for t in tilts) + "   measured px (median)")
        for px in sizes:
            cells = [rate([x for x in r["rows"] if x["clip_px"] == px and x["tilt"] == t])[0] for t in tilts]
            meas = sorted(b["size_px"] for x in r["rows"] if x["clip_px"] == px for b in x["blocks"])
            med = meas[len(meas) // 2] if meas else float("nan")
            print(f"{px:>14} " + "".join(f"{pct(c):>8}" for c in cells) + f"   {med:.0f}")

    def band(rows, lo, hi, max_tilt):
        sel = [x for x in rows if x["tilt"] <= max_tilt and x["blocks"]
               and lo <= max(b["size_px"] for b in x["blocks"]) < hi]
        return rate(sel)

    print("\nby measured block size (size_px in the capture log), tilts <= 30 deg:")
    bands = [(0, 48), (48, 64), (64, 80), (80, 128), (128, 1e9), (64, 1e9)]
    print("preset".ljust(14) + "".join(f"{(f'{lo}-{hi:.0f}' if hi < 1e9 else f'>={lo}'):>12}" for lo, hi in bands))
    summary = {}
    for name, r in results.items():
        cells = [band(r["rows"], lo, hi, 30) for lo, hi in bands]
        print(name.ljust(14) + "".join(f"{pct(v):>7} n={n:<3}" for v, n in cells))
        summary[name] = {f"{lo}-{hi:g}": {"block_hit_rate": v, "frames": n} for (lo, hi), (v, n) in zip(bands, cells)}
    if "print" in results:
        base = band(results["print"]["rows"], 64, 80, 30)[0]
        for name in results:
            if name == "print":
                continue
            over = band(results[name]["rows"], 64, 1e9, 30)[0]
            mid = band(results[name]["rows"], 64, 80, 30)[0]
            gap = None if mid is None or base is None else 100 * (mid - base)
            print(f"target [{name}]: >=64 px, tilt <=30: {pct(over).strip()}% (need >= 90) -> "
                  f"{'PASS' if over is not None and over >= 0.9 else 'FAIL'}; 64-80 px vs print: "
                  f"{'-' if gap is None else f'{gap:+.1f}'} points (need >= +15) -> "
                  f"{'PASS' if gap is not None and gap >= 15 else 'FAIL'}")
    (out / "physical.json").write_text(json.dumps(
        {"args": {k: str(v) for k, v in vars(a).items()}, "bands": summary,
         "presets": {n: {k: v for k, v in r.items() if k != "rows"} for n, r in results.items()},
         "rows": {n: r["rows"] for n, r in results.items()}}, indent=1))
    plot(results, sizes, tilts, a.plot)
    print(f"wrote {a.plot} and {out / 'physical.json'}")
    return 0


def plot(results: dict, sizes, tilts, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, r in results.items():
        ys = [rate([x for x in r["rows"] if x["clip_px"] == px and x["tilt"] <= 30])[0] for px in sizes]
        line, = ax1.plot(sizes, [math.nan if y is None else 100 * y for y in ys], "o-", label=f"--eot {name}")
        big = [px for px in sizes if px >= 80]
        ys = [rate([x for x in r["rows"] if x["tilt"] == t and x["clip_px"] in big])[0] for t in tilts]
        ax2.plot(tilts, [math.nan if y is None else 100 * y for y in ys], "o-", color=line.get_color(),
                 label=f"--eot {name}")
    ax1.axvspan(64, max(sizes) * 1.1, color="0.93", zorder=0)
    ax1.set(xscale="log", xlabel="block side in the 640x480 frame, px (head-on)", ylabel="block hit rate, %",
            title="how close must the camera be (tilts 0-30 deg)", ylim=(-3, 103))
    ax1.set_xticks(sizes, [str(s) for s in sizes])
    ax2.set(xlabel="camera tilt, deg", ylabel="block hit rate, %", ylim=(-3, 103),
            title=f"how oblique (blocks >= 80 px head-on)")
    for ax in (ax1, ax2):
        ax.axhline(90, color="0.6", ls=":", lw=1)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right")
    fig.suptitle(f"'{TARGET}' block, {SIZE_MM:g} mm printed, efficientnet_lite0, blocks capture --sheet")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    raise SystemExit(main())
