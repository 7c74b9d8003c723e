"""deep-chicken-saviour: physical-world adversarial blocks.

Every command is a settings dataclass and a pipeline in its module of `blocks.commands` that
returns the typed record it wrote (`common.records`):

    from blocks.commands.generate import GenerateRun, run_generate   # patch.json -> PatchRecord
    from blocks import ModelSpec, load_classifier, resolve_target
    from blocks.attacks import GenerateConfig, generate_patch    # the attack alone, on tensors
"""
from common.errors import UserError
from common.lazy import lazy

# Imported on first use, not here: `blocks` (the command) imports this package before it can catch
# Ctrl-C, and importing torch takes seconds; a Ctrl-C then printed a 30-line traceback.
_LAZY = {"Classifier": "blocks.models", "ModelSpec": "blocks.models", "load_classifier": "blocks.models",
         "pick_device": "blocks.models", "Goal": "common.goal", "resolve_target": "blocks.targets",
         "search_targets": "blocks.targets"}

__all__ = ["UserError", *_LAZY]


def main() -> None:
    """The `blocks` command. Imports the CLI (typer, then torch in the commands) inside the Ctrl-C
    guard, so an interrupt during those seconds is one line and exit 130, not a traceback."""
    import sys

    from common.interrupts import handle_interrupts

    with handle_interrupts(final=True):
        run = _import_cli()
        try:
            code = run()
        except KeyboardInterrupt:  # the third Ctrl-C of a burst, landing while run() reported
            sys.stderr.write("interrupted\n")
            code = 130
    _leave(code)


def _import_cli():
    """blocks.cli.run, imported (with torch, for a command) while Ctrl-C waits; an interrupt in
    those seconds is one line and exit 130. Called inside main's handle_interrupts."""
    import importlib
    import sys

    from common.interrupts import holding, interrupted

    try:
        with holding():  # a Ctrl-C inside torch's C++ module setup would abort the process
            from blocks.first_line import loading_line

            command = len(sys.argv) > 1 and not {"--help", "-h", "--version"} & set(sys.argv[1:])
            line = loading_line(sys.argv[1:]) if command and sys.stderr.isatty() else None
            if line:  # the imports and loading ahead start with a line, on a terminal, before any of them
                sys.stderr.write(line + "\n")
                sys.stderr.flush()
            from blocks.cli import run

            if command:
                importlib.import_module("torch")  # every command needs it: imported while Ctrl-C waits

        if interrupted():  # a Ctrl-C some library's import swallowed
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        sys.stderr.write("interrupted: nothing written\n")
        sys.exit(130)
    return run


def _leave(code: int) -> None:
    """Exit with code. Only a live torchrun group, looked up without importing torch: an import
    that a Ctrl-C cut short must not be run again (its half-registered types abort the process)."""
    import sys

    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        # Under torchrun, C++ teardown at interpreter exit can race the process group's threads
        # and abort ("terminate called without an active exception", seen in 2 of 4 suite runs):
        # run the exit hooks (they close the group, behind a barrier), flush, and leave at once.
        import atexit
        import os

        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


__getattr__ = lazy(__name__, _LAZY)
