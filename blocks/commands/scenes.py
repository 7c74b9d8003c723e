"""`blocks sample-scenes` and `blocks digits-scenes`: scene images for --scenes (blocks.scenes)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from blocks import checks
from common.errors import UserError
if TYPE_CHECKING:  # the records (pydantic models) load when a pipeline runs, not for --help
    from common.records import ScenesInfo


@dataclass
class ScenesRun:
    """`blocks sample-scenes` (source "photos") / `blocks digits-scenes` (source "digits"): scene
    images for --scenes in out/train and out/test. exclude, limit: digits only (the target class to
    leave out, at most this many digits)."""

    out: Path
    source: str = "photos"
    exclude: str | None = None
    limit: int | None = None
    overwrite: bool = False  # write into a folder that holds an earlier export


def run_scenes(run: ScenesRun) -> ScenesInfo:
    """Write the scenes and out/scenes.json (returned)."""
    from blocks.scenes import export_digit_scenes, export_sample_photos
    from blocks.targets import resolve_target
    from common.files import check_new_outputs, check_output_dir
    from common.records import ScenesInfo

    if run.source not in ("photos", "digits"):
        raise UserError(f"source must be photos or digits, not {run.source!r}", param="source")
    if run.source == "photos" and (run.exclude is not None or run.limit is not None):
        raise UserError("exclude and limit apply to digits scenes only", param=("exclude", "limit"))
    checks.whole(run.limit, "limit", 1)
    out = check_output_dir(run.out)
    check_new_outputs([out / "scenes.json", out / "train", out / "test"], run.overwrite, "OUT folder")
    if run.source == "photos":
        counts = export_sample_photos(out)
        record = ScenesInfo(source="photos", train=counts["train"], test=counts["test"])
    else:
        from blocks.models.digits import LABELS

        skip = resolve_target(run.exclude, LABELS) if run.exclude is not None else None
        counts = export_digit_scenes(out, skip.index if skip else None, run.limit)
        record = ScenesInfo(source="digits", train=counts["train"], test=counts["test"],
                            excluded=skip.name if skip else None)
    record.write(out / "scenes.json")
    return record
