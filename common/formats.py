"""How each record reads on screen: the lines a command prints from the record it wrote.

One mixin per record (common.records adds it to the record's bases): the mixins hold no fields and
read only the record's attributes, so the CLI only prints `record.lines(...)` and a change to a
record's shape and to its lines is made in one place. No torch here (the CLI imports this fast);
names from files and models go through `shown` (no control codes reach the terminal)."""
from __future__ import annotations

from pathlib import Path

from common.distance import DEFAULT_SIZE_MM, WEBCAM_FOV_DEG, describe
from common.errors import shown

CLOCK_WARNING = 0.5  # a run the clock stopped before this share of its steps gets the warning line
LARGE_FIT_ERROR_RGB = 8.0  # a colour map whose mean error is above this gets the retake warning
TABLE_ROWS = 50  # one-pixel's table shows this many images, then "... N more"
BY_COVERAGE = "  whole-frame success by coverage (patch side / frame's shorter side): "


def works_text(works_from, trained, size_mm: float = DEFAULT_SIZE_MM) -> str:
    """'works from coverage 0.2: a 50 mm block at 0.10-0.26 m from a 65 degree webcam'."""
    if works_from is None:
        return (f"not yet >= 90% at any coverage: give it more time (blocks generate --max-seconds) or a GPU; "
                f"trained for coverage {trained[0]:.2f}-{trained[1]:.2f} ({describe(size_mm, tuple(trained), WEBCAM_FOV_DEG)})")
    return (f"works from coverage {works_from:g}: {describe(size_mm, (works_from, max(works_from, trained[1])), WEBCAM_FOV_DEG)}"
            f" (blocks print --size-mm / --distance)")


def _bins(by_coverage: dict) -> str:
    return " | ".join(f"{k} {v['success_rate']:.0%}" for k, v in by_coverage.items())


class PatchLines:
    """patch.json: the held-out line generate ends each patch with, and what qualifies it."""

    def lines(self, patch: Path) -> list[str]:
        lines, ev = [self.held_out_line(patch)], self.held_out or {}
        if ev.get("by_coverage"):  # whole frames: success by how much of the frame the patch covers
            size_mm = (self.reach or {}).get("size_mm", DEFAULT_SIZE_MM)
            lines += [BY_COVERAGE + _bins(ev["by_coverage"]), "  " + works_text(ev.get("works_from"), self.scale, size_mm)]
        lines += ["  " + line for line in self.reach_lines()]
        if len(self.members or []) > 1:
            lines += [f"  {row['model']}: held-out success {row['success_rate']:.1%}" for row in self.members]
        steps = (self.config or {}).get("steps")
        if self.stopped == "time" and steps and self.steps_run < CLOCK_WARNING * steps:
            lines.append(f"stopped by the clock after {self.steps_run} of {steps} steps: the patch may be weak; "
                         f"give more time or a GPU")
        return lines

    def held_out_line(self, patch: Path) -> str:
        """The figure, and what it measured (the views)."""
        ev = self.held_out
        parts = [f"held-out success {ev['success_rate']:.1%}, mean target prob {ev['mean_target_prob']:.3f} "
                 f"over {ev['n']} views"]
        views = ev.get("views")
        if views and views.get("whole_frame"):  # the figure is the camera's classifier's, on whole frames
            lo, hi = views["scale"]
            parts.append(f"of whole camera frames (the printed card held up before held-out photos, "
                         f"{views['scene_images']} crops; patch side {lo:.2f}-{hi:.2f} of the frame's shorter side; "
                         f"4:3 and 16:9 frames squashed or centre-cropped)")
        elif views:
            lo, hi = views["scale"]
            side = f"{lo:.2f}" if lo == hi else f"{lo:.2f}-{hi:.2f}"
            where = (f"in {views['scene_images']} held-out scene photos" if views["scenes"] else
                     "on plain random backgrounds: no scenes given (blocks generate --scenes DIR)")
            parts.append(f"({views['eot']} views, patch side {side} of the view, {where})")
        return f"{shown(self.target.name)}: {' '.join(parts)} -> {patch}"

    def reach_lines(self) -> list[str]:
        """--distance: the success where the block will be used; --resume: what the run continued."""
        lines, r, was = [], self.reach, self.resumed_from
        if r and r.get("success") is not None:
            near, far = r["band_m"]
            lines.append(f"at {r['distance_m']:g} m (people move: {near:g}-{far:g} m), a {r['size_mm']:g} mm block, "
                         f"{r['fov_deg']:g} degree camera: whole-frame success {r['success']:.1%}")
        if was:
            before = "-" if was.get("held_out_success") is None else f"{was['held_out_success']:.1%}"
            now = (self.held_out or {}).get("success_rate")
            lines.append(f"resumed {was['folder']} after its {was['steps_run']} steps (held-out {before} then, "
                         f"{'-' if now is None else f'{now:.1%}'} now; best step {self.best_step} of {self.steps_run})")
        return lines


class GenerateSummaryLines:
    """summary.json of several targets: one row each."""

    def lines(self) -> list[str]:
        lines = [f"{'target':<24} {'index':>5} {'held-out':>9} {'p(target)':>9} {'best step':>9} {'seconds':>8}  folder"]
        for r in self.targets:
            success = "-" if r.held_out_success is None else f"{r.held_out_success:.1%}"
            prob = "-" if r.mean_target_prob is None else f"{r.mean_target_prob:.3f}"
            lines.append(f"{shown(r.target.label())[:24]:<24} {r.target.index:>5} {success:>9} {prob:>9} "
                         f"{r.best_step:>9} {r.seconds:>8.1f}  {r.folder}")
        return lines


class EvaluateLines:
    """`blocks evaluate`'s summary: a table for several models; for one, the line generate ends
    with (success by coverage for whole frames, and the distances it works at)."""

    def lines(self) -> list[str]:
        if self.models is not None:
            width = max(len(shown(m.model)) for m in self.models)
            return [f"{'model':<{width}}  success  p(target)  top-5   ({shown(self.target.name)}, {self.n} views)",
                    *(f"{shown(m.model):<{width}}  {m.success_rate:7.1%}  {m.mean_target_prob:9.3f}  {m.top5_rate:6.1%}"
                      for m in self.models)]
        lo, hi = self.scale
        what = "of whole camera frames" if self.by_coverage else f"({self.eot} views)"
        lines = [f"{shown(self.target.name)}: success {self.success_rate:.1%}, mean target prob "
                 f"{self.mean_target_prob:.3f}, top-5 {self.top5_rate:.1%} over {self.n} views {what}, "
                 f"patch side {lo:.2f}-{hi:.2f} ({self.model})"]
        if self.by_coverage:
            lines += [BY_COVERAGE + _bins(self.by_coverage), "  " + works_text(self.works_from, self.scale)]
        return lines


class SweepLines:
    def lines(self, out: Path) -> list[str]:
        return [f"best epsilon {self.best_epsilon_255:.1f}/255: p({shown(self.target.name)}) = "
                f"{self.best_target_prob:.3f} -> {out}/sweep.png"]


class ScenesLines:
    def lines(self, out: Path) -> list[str]:
        if self.source == "digits":
            return [f"wrote {self.train + self.test} held-out digits to {out}/train and {out}/test"]
        return [f"wrote {self.train} training photos to {out}/train and {self.test} held-out photos to {out}/test"]


class SheetLines:
    """sheet.json: what went on the pages, and where each whole-frame block works from."""

    def lines(self, out: Path) -> list[str]:
        n = len(self.blocks)
        what = f"{n} block{'s' if n != 1 else ''}" if self.layout == "grid" else "a cube net (6 faces)"
        lines = [f"wrote {out}: {what} on {self.pages} page(s); print at 100% scale"]
        for b in self.blocks if self.layout == "grid" else self.blocks[:1]:
            if b.distance_m is not None:
                lines.append(f"  {shown(b.target.label()) if b.target else 'block'}: {b.patch_size_mm:g} mm block works "
                             f"{b.distance_m[0]:.2f}-{b.distance_m[1]:.2f} m from a {b.fov_deg:g} degree camera "
                             f"(the whole frame)")
        return lines


class CalibrationLines:
    def lines(self, paths: list, swatch_mm: float, page: str) -> list[str]:
        return [f"wrote {', '.join(str(p) for p in paths)}: {len(self.swatches)} swatches "
                f"({self.rows}x{self.cols}) of {swatch_mm:g} mm on {page}"]


class ColorMapLines:
    def lines(self, out: Path) -> list[str]:
        e = self.extra
        return [f"wrote {out}: mean error {self.mean_error_rgb:.2f} RGB units (max {e['max_error_rgb']:.1f}) over "
                f"{e['swatches']} swatches, {e['frames_used']} of {e['frames_looked_at']} frame(s) used"]

    def warnings(self) -> list[str]:
        if self.mean_error_rgb > LARGE_FIT_ERROR_RGB:
            return ["warning: a large fit error: uneven light, glare or a blurred photo? Retake it flat and evenly lit."]
        return []


class CaptureLines:
    def headline(self) -> str:
        """The last line of a capture: the whole frame's hit rate (what a classifier behind the
        camera sees), then the blocks' (--sheet) and any view's as a diagnosis."""
        name = shown(self.target.label()) if self.target else "the target"
        line = (f"whole frame: {name} in {round(self.frame_hit_rate * self.frames)} of {self.frames} frames "
                f"({self.frame_hit_rate:.1%}), mean p({name}) {self.frame_mean_target_prob:.3f}")
        extra = []
        if self.found_rate is not None:
            found, block = round(self.found_rate * self.frames), self.block_hit_rate or 0
            extra.append(f"block found in {found} frames, read as {name} in {round(block * found)} ({block:.1%})")
        if self.hit_rate != self.frame_hit_rate or extra:
            extra.append(f"any view {self.hit_rate:.1%}")
        return line + (f"; diagnosis: {', '.join(extra)}" if extra else "")


class SimulateLines:
    def lines(self, out: Path) -> list[str]:
        where = f", filming block {self.block} of {self.sheet}" if self.sheet else ", whole page (no sheet.json)"
        return [f"wrote {out}: {self.frames} frames at {self.fps:g} fps, {self.size[0]}x{self.size[1]}{where}"]


class OnePixelLines:
    def table(self):
        """The per-image table (first TABLE_ROWS) with the summary as its caption (a rich Table)."""
        from rich.markup import escape
        from rich.table import Table

        cell = lambda text: escape(shown(text))  # noqa: E731 (names from files: neither markup nor control codes)
        de = f", pop {self.popsize}, {self.maxiter} gen" if self.strategy in ("paper", "best1bin") else ""
        goal = f" -> {cell(self.target.name)}" if self.target else ""
        table = Table(title=f"one-pixel ({self.strategy}, K={self.pixels}{de}, at most {self.max_queries} queries, "
                            f"{self.fitness} fitness){goal}")
        for col in ("image", "before", "after", "success", "queries"):
            table.add_column(col, justify="right" if col == "queries" else "left", overflow="fold")  # names in full
        for r in self.results[:TABLE_ROWS]:
            b, a = r.before, r.after
            table.add_row(cell(r.name), f"{cell(b['class'])} {b['prob']:.2f}", f"{cell(a['class'])} {a['prob']:.2f}",
                          "yes" if r.success else "no", str(r.queries))
        if len(self.results) > TABLE_ROWS:
            table.add_row(f"... {len(self.results) - TABLE_ROWS} more", "", "", "", "")
        conf = self.mean_confidence
        table.caption = (f"success {self.successes}/{self.images} ({self.success_rate:.1%}), mean confidence "
                         f"{'-' if conf is None else f'{conf:.3f}'}, mean queries {self.mean_queries:.0f} "
                         f"(max {self.max_queries}), {self.seconds:.1f} s")
        return table
