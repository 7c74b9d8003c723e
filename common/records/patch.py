"""patch.json (`blocks generate`, one per target) and summary.json of a several-target run.

The sections printing and --resume read are typed (HeldSettings under eot_settings, HeldOut,
Reach, RunConfig, ResumedFrom); the keys they do not name (the rest of the EOT settings and of
the attack's config, which change with the code) are kept as each section's extra.
"""
from __future__ import annotations

from typing import Any, ClassVar

from common.records.base import VERSION, GoalField, Part, Record, listed
from common.formats import PatchLines, GenerateSummaryLines  # how each record reads on screen


class Section(Part):
    """A typed section of patch.json. get/[] read a field or a kept key by name, for code that
    still reads the section as the dict it was (blocks/cli.py's formatting)."""

    def get(self, key: str, default=None):
        v = getattr(self, key, None) if key in type(self).model_fields else self.extra.get(key)
        return default if v is None else v

    def __getitem__(self, key: str):
        if key in type(self).model_fields:
            return getattr(self, key)
        return self.extra[key]

    def __contains__(self, key: str) -> bool:
        return key in self.to_json()

    def as_dict(self) -> dict:
        return self.to_json()


class HeldSettings(Section):
    """eot_settings.held: whole-frame views (transforms.held); coverage is the share of the frame trained on."""

    coverage: listed(tuple[float, float]) | None = None


class EotSettings(Section):
    """The EOT settings trained on (a preset's ViewModel.settings()); held is typed, printing reads it."""

    held: HeldSettings | None = None


class HeldOut(Section):
    """The final patch on held-out views (blocks.evaluate): success, and for whole frames where it works from."""

    success_rate: float | None = None
    mean_target_prob: float | None = None
    n: int | None = None
    works_from: float | None = None  # the smallest coverage that still works (printing turns it into a distance)
    by_coverage: dict | None = None


class Reach(Section):
    """--distance: {distance_m, size_mm, fov_deg, band_m [near, far], coverage [lo, hi], success}."""

    distance_m: float | None = None
    size_mm: float | None = None
    fov_deg: float | None = None
    band_m: listed(tuple[float, float]) | None = None
    coverage: listed(tuple[float, float]) | None = None
    success: float | None = None


class RunConfig(Section):
    """The attack's settings (attacks GenerateConfig as a dict); the fields --resume carries over are typed."""

    patch_size: int | None = None
    epsilon: float | None = None
    seed: int | None = None
    steps: int | None = None


class ResumedFrom(Section):
    """--resume: what this run continued."""

    folder: str
    patch_sha256: str | None = None
    steps_run: int = 0
    held_out_success: float | None = None


class PatchRecord(PatchLines, Record):
    """patch.json, written next to patch.png by `blocks generate` (blocks.commands.generate.run_generate)."""

    WHAT: ClassVar[str] = "patch.json"
    FROM: ClassVar[str] = "blocks generate"

    target: GoalField | None = None
    model: Any = None  # the model's description (blocks.models Classifier.describe())
    weights_sha256: str | None = None
    device: str | None = None
    ranks: int = 1
    eot: str | None = None
    eot_settings: EotSettings | None = None
    scale: list[float] | None = None
    scenes: str | None = None
    eval_scenes: str | None = None
    config: RunConfig | None = None
    seed: int | None = None
    stopped: str | None = None
    best_step: int | None = None
    best_train_prob: float | None = None
    steps_run: int = 0
    seconds: float = 0.0
    colormap: str | None = None
    printability: float = 0.0
    tv: float = 0.0
    curve: dict[str, list] | None = None  # step, loss, objective_prob, success, epsilon, seconds: one value a step
    held_out: HeldOut | None = None
    members: list | None = None
    versions: dict | None = None
    reach: Reach | None = None
    resumed_from: ResumedFrom | None = None
    patch_sha256: str | None = None
    patch_px: list | None = None
    written: str | None = None
    version: int = VERSION

    def model_name(self) -> str | None:
        m = self.model
        if isinstance(m, dict):
            name = m.get("model", m.get("name"))
            return str(name) if name is not None else None
        return str(m) if isinstance(m, str) else None


class GenerateRow(Part):
    target: GoalField
    held_out_success: float | None
    mean_target_prob: float | None
    best_step: int | None
    steps_run: int
    seconds: float
    stopped: str | None
    folder: str


class GenerateSummary(GenerateSummaryLines, Record):
    """summary.json of a many-target `blocks generate`: one row per target folder."""

    WHAT: ClassVar[str] = "generate summary"
    FROM: ClassVar[str] = "blocks generate"

    model: Any = None
    weights_sha256: str | None = None
    ranks: int = 1
    targets: listed(tuple[GenerateRow, ...]) = ()
    version: int = VERSION
