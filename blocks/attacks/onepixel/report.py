"""Files the `onepixel` command writes: per-image PNG + JSON, summary.json, contact_sheet.png
(blocks.commands.onepixel.run_onepixel writes them through here), and the inputs it reads."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from blocks.attacks.onepixel.result import OnePixelResult
from common.files import encode_png, encode_png_rgb, json_text, to_uint8, write_together
from common.records import OnePixelRow, OnePixelSummary

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
                  labels: list[str], extra: dict | None = None) -> OnePixelSummary:
    """Write `<name>_adv.png`, `<name>.json`, `summary.json` and `contact_sheet.png` into out, as one
    set (all or none, summary.json last). Returns the summary record (one row per image in it)."""
    out = Path(out)
    files, rows = [], []
    for i, name in enumerate(names):
        rec = {"image": sources[i], "adversarial": f"{name}_adv.png", **result.record(i, labels)}
        files += [(out / f"{name}_adv.png", encode_png(result.adv[i])), (out / f"{name}.json", _json_bytes(rec))]
        rows.append(OnePixelRow(name=name, image=sources[i], success=rec["success"], queries=rec["queries"],
                                before=rec["before"], after=rec["after"]))
    summary = OnePixelSummary.from_json({**result.summary(), **(extra or {})})
    summary.results = tuple(rows)
    files += [(out / "contact_sheet.png", contact_sheet_png(result, names, labels)),
              (out / "summary.json", summary.to_bytes())]
    write_together(files)
    return summary


def _json_bytes(obj) -> bytes:
    return (json_text(obj) + "\n").encode()


LEGEND = ("left: original, right: attacked; red circles: the changed pixels",
          "[ok] the attack succeeded (untargeted: the class changed; targeted: the target won)",
          "[--] it failed within its query budget")
FONT_SCALE, LINE_PX = 0.38, 13  # caption text


def wrap_text(text: str, width_px: int, scale: float = FONT_SCALE) -> list[str]:
    """text in lines no wider than width_px (OpenCV's Hershey font), broken at spaces, or inside a
    word longer than a line: every character is kept (labels are never cut)."""
    import cv2

    def fits(t):
        return cv2.getTextSize(t, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0] <= width_px

    lines, current = [], ""
    for word in text.split(" "):
        trial = f"{current} {word}" if current else word
        if fits(trial):
            current = trial
            continue
        if current:
            lines.append(current)
        while not fits(word) and len(word) > 1:  # a word wider than the line: split it
            cut = max(k for k in range(1, len(word) + 1) if fits(word[:k]) or k == 1)
            lines.append(word[:cut])
            word = word[cut:]
        current = word
    return lines + [current] if current else lines


def contact_sheet_png(result: OnePixelResult, names: list[str], labels: list[str],
                      per_row: int = 4) -> bytes:
    """Original | adversarial pairs, changed pixels circled in red, classes underneath in full
    (wrapped), and a legend for the marks at the bottom."""
    import cv2

    n = min(len(names), MAX_SHEET)
    rows = max(1, (n + per_row - 1) // per_row)
    pair_w = 2 * CELL + 8
    captions = [_pair_caption(result.record(i, labels), names[i], pair_w) for i in range(n)]
    caption = max([CAPTION] + [LINE_PX * len(c) + 8 for c in captions])
    width = per_row * (pair_w + 12) + 8
    legend = [line for text in LEGEND for line in wrap_text(text, width - 16)]
    row_h = CELL + caption + 8
    sheet = np.full((rows * row_h + 8 + LINE_PX * len(legend) + 8, width, 3), 255, np.uint8)
    for i in range(n):
        r, c = divmod(i, per_row)
        y0, x0 = 8 + r * row_h, 8 + c * (pair_w + 12)
        _draw_pair(sheet, result, i, x0, y0)
        for k, line in enumerate(captions[i]):
            cv2.putText(sheet, line, (x0, y0 + CELL + 13 + LINE_PX * k), cv2.FONT_HERSHEY_SIMPLEX, FONT_SCALE,
                        (0, 0, 0), 1, cv2.LINE_AA)
    top = rows * row_h + 8
    for k, line in enumerate(legend):
        cv2.putText(sheet, line, (8, top + LINE_PX * (k + 1) - 2), cv2.FONT_HERSHEY_SIMPLEX, FONT_SCALE,
                    (80, 80, 80), 1, cv2.LINE_AA)
    return encode_png_rgb(sheet)


def _pair_caption(rec: dict, name: str, pair_w: int) -> list[str]:
    """The lines under a pair: its name with ok/-- for success, then the class before -> after."""
    b, a = rec["before"], rec["after"]
    mark = "ok" if rec["success"] else "--"
    return (wrap_text(f"[{mark}] {name}", pair_w) +
            wrap_text(f"{b['class']} {b['prob']:.2f} -> {a['class']} {a['prob']:.2f}", pair_w))


def _draw_pair(sheet: np.ndarray, result: OnePixelResult, i: int, x0: int, y0: int) -> None:
    """Image i, original then adversarial, scaled up to CELL (nearest: the pixels stay pixels),
    with each changed pixel circled in red on both."""
    import cv2

    h, w = result.adv.shape[-2:]
    scale = CELL / max(h, w)
    for j, img in enumerate((result.originals[i], result.adv[i])):
        tile = cv2.resize(to_uint8(img), (round(w * scale), round(h * scale)),
                          interpolation=cv2.INTER_NEAREST)
        xs = x0 + j * (CELL + 8)
        sheet[y0:y0 + tile.shape[0], xs:xs + tile.shape[1]] = tile
        for px in result.pixels[i].tolist():
            centre = (int(xs + (px[0] + 0.5) * scale), int(y0 + (px[1] + 0.5) * scale))
            cv2.circle(sheet, centre, max(8, int(scale * 2.5)), (255, 0, 0), 2, cv2.LINE_AA)


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
        else:
            from common.inputs import check_input_file

            files.append(check_input_file(p, "image"))
    return files
