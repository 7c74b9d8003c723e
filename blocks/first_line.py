"""The first line a command prints on a terminal ("blocks generate: loading torch and
efficientnet_lite0 ..."), worked out from the raw arguments before anything heavy is imported:
typer, numpy and the settings modules take a few tenths of a second, torch seconds."""
from __future__ import annotations

from blocks.models.default import DEFAULT_MODEL  # imports nothing (the package's __init__ is lazy)

# blocks.cli's command names and the ones that load weights (tests/test_help.py checks they agree)
COMMANDS = ("generate", "evaluate", "sweep", "targets", "models", "digits-scenes", "sample-scenes", "print",
            "capture", "simulate", "onepixel", "calibration-sheet", "calibrate")
MODEL_COMMANDS = ("generate", "evaluate", "capture", "onepixel", "sweep")


def loading_line(args: list[str]) -> str | None:
    """The line for these arguments, or None where typer will answer (an unknown command)."""
    command = next((a for a in args if not a.startswith("-")), None)
    if command not in COMMANDS:
        return None
    if command not in MODEL_COMMANDS:
        return f"blocks {command}: loading torch ..."
    names = [args[i + 1] for i, a in enumerate(args[:-1]) if a == "--model"]
    names += [a.split("=", 1)[1] for a in args if a.startswith("--model=")]
    if any(a == "--models" or a.startswith("--models=") for a in args):
        names.append("the --models file")
    return f"blocks {command}: loading torch and {', '.join(names) or DEFAULT_MODEL} ..."
