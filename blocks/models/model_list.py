"""The `--models FILE`: an ensemble whose members need their own flags, as TOML (`[[models]]`
tables) or JSON (a list of objects), read strictly and each entry checked as the flags are."""
from __future__ import annotations

import math
from pathlib import Path

from blocks import checks
from blocks.models.spec import ModelSpec, is_model_file
from common.errors import UserError

MODEL_KEYS = {"model", "weights", "labels", "input_size", "mean", "std"}


def read_model_list(path: Path) -> list[ModelSpec]:
    """A --models file: TOML (`[[models]]` tables) or JSON (a list of objects) with MODEL_KEYS,
    read strictly (common.inputs) and each entry's numbers checked as the flags are."""
    from common.inputs import read_json_file, read_toml_file

    path = Path(path)
    read = read_json_file if path.suffix.lower() == ".json" else read_toml_file
    data = read(path, "models file", max_bytes=1 << 20)
    if isinstance(data, dict):
        data = data.get("models")
    if not isinstance(data, list) or not data or not all(isinstance(d, dict) for d in data):
        raise UserError(f"models file {path} must hold a non-empty list of models "
                        f"(JSON list, or TOML [[models]] tables)")
    if len(data) > 64:
        raise UserError(f"models file {path} lists {len(data)} models; an ensemble takes at most 64")
    return [_entry_spec(entry, f"models file {path}, entry {i + 1}", path.parent) for i, entry in enumerate(data)]


def _entry_spec(entry: dict, where: str, base: Path) -> ModelSpec:
    """One entry as a ModelSpec; relative paths are beside the models file (base)."""
    unknown = set(entry) - MODEL_KEYS
    if unknown or "model" not in entry:
        what = f"unknown keys {', '.join(sorted(unknown))}" if unknown else "no 'model' key"
        raise UserError(f"{where}: {what} (keys: {', '.join(sorted(MODEL_KEYS))})")
    for key in ("model", "weights", "labels"):
        if key in entry and not isinstance(entry[key], str):
            raise UserError(f"{where}: {key} must be text (a name or a path)")
    rel = lambda v: None if v is None else (base / v if not Path(v).is_absolute() else Path(v))  # noqa: E731
    size = entry.get("input_size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int)
                             or not 8 <= size <= checks.MAX_INPUT_SIZE):
        raise UserError(f"{where}: input_size must be a whole number of pixels, 8 to {checks.MAX_INPUT_SIZE}")
    mean, std = _entry_triple(entry.get("mean"), "mean", where), _entry_triple(entry.get("std"), "std", where)
    try:
        checks.model_numbers(size, mean, std)
    except UserError as e:
        raise UserError(f"{where}: {e}") from None  # the file's own key (input_size), not a flag
    name = entry["model"]
    if is_model_file(name) and not Path(name).is_absolute():  # a file, like weights: beside the list
        name = str(rel(name))
    return ModelSpec(name=name, weights=rel(entry.get("weights")), labels=rel(entry.get("labels")),
                     input_size=size, mean=mean, std=std)


def _entry_triple(v, key: str, where: str):
    """mean or std: three finite numbers, as a list or as text "0.5,0.5,0.5" (true is no number)."""
    if v is None:
        return None
    try:
        if isinstance(v, str):
            values = [float(x) for x in v.split(",")]
        elif isinstance(v, list) and not any(isinstance(x, bool) or not isinstance(x, (int, float)) for x in v):
            values = [float(x) for x in v]
        else:
            raise ValueError
        if len(values) != 3 or not all(math.isfinite(x) for x in values):
            raise ValueError
    except ValueError:
        raise UserError(f"{where}: {key} must be three numbers (a list, or text like \"0.5,0.5,0.5\")") from None
    return tuple(values)
