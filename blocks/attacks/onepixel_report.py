"""Files the `onepixel` command writes: per-image PNG + JSON, summary.json, contact_sheet.png."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from blocks.attacks.onepixel import OnePixelResult
from common.files import encode_png, json_text, to_uint8, write_together

CELL = 128  # side of each thumbnail in the contact sheet (nearest-neighbour upscaling)
CAPTION = 34  # pixels of text under each pair
MAX_SHEET = 64  # images drawn on the contact sheet (the JSON files cover all of them)


def unique_names(paths: list[Path]) -> list[str]:
    """File stems, made unique with a numeric suffix when two inputs share one."""
    names, seen = [], {}
    for p in paths:
        stem = Path(p).stem or "image"
        n = seen.get(stem, 0)
        seen[stem] = n + 1
        names.append(stem if n == 0 else f"{stem}_{n}")
    return names


def write_outputs(out: Path, result: OnePixelResult, names: list[str], sources: list[str],
                  labels: list[str], extra: dict | None = None) -> dict:
    """Write `<name>_adv.png`, `<name>.json`, `summary.json` and `contact_sheet.png` into out, as one
    set (all or none, summary.json last). Returns the summary dict."""
    out = Path(out)
    files = []
    for i, name in enumerate(names):
        rec = {"image": sources[i], "adversarial": f"{name}_adv.png", **result.record(i, labels)}
        files += [(out / f"{name}_adv.png", encode_png(result.adv[i])), (out / f"{name}.json", _json_bytes(rec))]
    summary = {**result.summary(), **(extra or {})}
    files += [(out / "contact_sheet.png", contact_sheet_png(result, names, labels)),
              (out / "summary.json", _json_bytes(summary))]
    write_together(files)
    return summary


def _json_bytes(obj) -> bytes:
    return (json_text(obj) + "\n").encode()


def contact_sheet_png(result: OnePixelResult, names: list[str], labels: list[str],
                      per_row: int = 4) -> bytes:
    """Original | adversarial pairs, changed pixels circled in red, classes underneath."""
    import cv2

    n = min(len(names), MAX_SHEET)
    orig = result.originals
    rows = max(1, (n + per_row - 1) // per_row)
    pair_w = 2 * CELL + 8
    sheet = np.full((rows * (CELL + CAPTION + 8) + 8, per_row * (pair_w + 12) + 8, 3), 255, np.uint8)
    for i in range(n):
        r, c = divmod(i, per_row)
        y0, x0 = 8 + r * (CELL + CAPTION + 8), 8 + c * (pair_w + 12)
        h, w = result.adv.shape[-2:]
        scale = CELL / max(h, w)
        for j, img in enumerate((orig[i], result.adv[i])):
            tile = cv2.resize(to_uint8(img), (round(w * scale), round(h * scale)),
                              interpolation=cv2.INTER_NEAREST)
            xs = x0 + j * (CELL + 8)
            sheet[y0:y0 + tile.shape[0], xs:xs + tile.shape[1]] = tile
            for px in result.pixels[i].tolist():
                centre = (int(xs + (px[0] + 0.5) * scale), int(y0 + (px[1] + 0.5) * scale))
                cv2.circle(sheet, centre, max(8, int(scale * 2.5)), (255, 0, 0), 2, cv2.LINE_AA)
        rec = result.record(i, labels)
        b, a = rec["before"], rec["after"]
        mark = "ok" if rec["success"] else "--"
        lines = [f"{names[i][:30]}  [{mark}]",
                 f"{b['class'][:12]} {b['prob']:.2f} -> {a['class'][:12]} {a['prob']:.2f}"]
        for k, line in enumerate(lines):
            cv2.putText(sheet, line, (x0, y0 + CELL + 13 + 13 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.38,
                        (0, 0, 0), 1, cv2.LINE_AA)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def collect_inputs(inputs: list[Path]) -> list[Path]:
    """Files as given, folders expanded to their images (sorted). Missing paths -> UserError."""
    from common.errors import UserError
    from common.files import list_images

    if not inputs:
        raise UserError("give at least one image file or folder")
    files: list[Path] = []
    for p in map(Path, inputs):
        if p.is_dir():
            files += list_images(p)
        elif p.is_file():
            files.append(p)
        else:
            raise UserError(f"image not found: {p}")
    return files


def run_onepixel(inputs: list[Path], spec, *, target: str | None, pixels: int, popsize: int,
                 maxiter: int, out: Path, strategy: str, seed: int, device: str, batch: int,
                 max_queries: int = 0, fitness: str = "auto") -> dict:
    """The `blocks onepixel` command: load, resize to the model's input size, attack, write, print."""
    import typer
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from blocks.attacks.onepixel import OnePixelConfig, one_pixel_attack, prepare_images
    from common.files import load_image
    from blocks.models import load_classifier
    from blocks.targets import resolve_target

    from blocks import checks
    from common.files import check_output_dir

    cfg = OnePixelConfig(pixels=pixels, popsize=popsize, maxiter=maxiter, strategy=strategy,
                         seed=seed, batch=batch, max_queries=max_queries,
                         fitness=fitness).check()  # bad flags fail before the model loads
    checks.seed(seed)
    files = collect_inputs(inputs)
    images = [load_image(f) for f in files]
    check_output_dir(out)  # before the attack: its results must have somewhere to go
    net = load_classifier(spec, device=device)
    checks.runs_at_input_size(net)
    tgt = resolve_target(target, net.labels) if target is not None else None
    # The attack runs at the model's input size: every image stacks into one batch and the changed
    # pixel is a real model-input pixel (a pixel of a larger original would be blurred by resizing).
    x = prepare_images(images, net.input_size)
    console = Console(stderr=True)
    columns = [TextColumn("onepixel"), BarColumn(), MofNCompleteColumn(),
               TextColumn("running {task.fields[running]}"), TimeElapsedColumn()]
    with Progress(*columns, console=console, transient=False) as bar:
        # DE counts generations, the searches count queries (of the furthest image)
        total = max(cfg.maxiter, 1) if cfg.is_de else cfg.budget_for(net.input_size ** 2)
        task = bar.add_task("search", total=total, running=len(files))
        result = one_pixel_attack(
            net, x, None, cfg, target=tgt.index if tgt else None,
            progress=lambda g, running, _: bar.update(task, completed=g, running=running))
        bar.update(task, completed=total)
    names = unique_names(files)
    extra = {"model": net.describe(), "device": str(net.device), "seed": seed,
             "target": {"index": tgt.index, "class": tgt.name} if tgt else None,
             "input_size": net.input_size, "files": [str(f) for f in files]}
    summary = write_outputs(out, result, names, [str(f) for f in files], net.labels, extra)

    de = f", pop {cfg.popsize}, {cfg.maxiter} gen" if cfg.is_de else ""
    table = Table(title=f"one-pixel ({cfg.strategy}, K={cfg.pixels}{de}, at most {summary['max_queries']} queries, "
                        f"{cfg.fitness_used} fitness){' -> ' + tgt.name if tgt else ''}")
    for col in ("image", "before", "after", "success", "queries"):
        table.add_column(col, justify="right" if col == "queries" else "left")
    for i, name in enumerate(names[:50]):
        rec = result.record(i, net.labels)
        b, a = rec["before"], rec["after"]
        table.add_row(name, f"{b['class']} {b['prob']:.2f}", f"{a['class']} {a['prob']:.2f}",
                      "yes" if rec["success"] else "no", str(rec["queries"]))
    if len(names) > 50:
        table.add_row(f"... {len(names) - 50} more", "", "", "", "")
    conf = summary["mean_confidence"]
    table.caption = (f"success {summary['successes']}/{summary['images']} "
                     f"({summary['success_rate']:.1%}), mean confidence "
                     f"{'-' if conf is None else f'{conf:.3f}'}, mean queries "
                     f"{summary['mean_queries']:.0f} (max {summary['max_queries']}), "
                     f"{summary['seconds']:.1f} s")
    Console().print(table)
    typer.echo(f"wrote {out}/summary.json, contact_sheet.png and {len(names)} images", err=True)
    return summary
