"""Errors -> exit codes, in one place: what `blocks` prints and returns when a command ends other
than by finishing. 0 ok, 2 bad input (one `error: ...` line), 130 interrupted (one `interrupted:
...` line saying what was kept), a command's own code (typer.Exit, UserError.exit_code).

The library names its parameters (`size_mm must be > 0`, UserError(param="size_mm")); here they
become the flags the user typed (`--size-mm must be > 0`; `give model=hen` -> `give --model hen`).
The rule the library writes by is in common/errors.py's docstring."""
from __future__ import annotations

import typer

from common.errors import Interrupted, UserError, shown

FLAGS = {"targets": "--target", "eps_range": "--eps", "models_file": "--models", "fov_deg": "--fov",
         "distance_m": "--distance", "duration_s": "--duration"}  # where a flag is not --<param>


def flag_message(e: UserError) -> str:
    """The library names settings (`size_mm must be > 0`); the CLI user typed flags (`--size-mm`)."""
    import re

    text, params = str(e), getattr(e, "param", None) or ()
    for param in (params,) if isinstance(params, str) else params:
        flag = FLAGS.get(param, "--" + param.replace("_", "-"))
        word = rf"(?<![\w\-/.\\]){re.escape(param)}"  # never part of a path (runs/model.pt, labels/x.txt)
        # `model=NAME` is the setting with a value (advice: "give model=hen"): the flag as typed,
        # `--model NAME`; else the first whole word (`size_mm must be > 0`)
        text, given = re.subn(word + "=", flag + " ", text)
        if not given:
            text = re.sub(word + r"(?![\w\-/\\]|\.\w)", flag, text, count=1)
    return text


def run(app, argv: list[str] | None = None) -> int:
    """Run the typer app and return its exit code (see the module docstring)."""
    from common.interrupts import handle_interrupts, interrupted, reporting

    try:
        with handle_interrupts():
            try:
                code = app(args=argv, prog_name="blocks", standalone_mode=False)
            finally:
                reporting()
        if code == 130 and interrupted():  # typer turns a bare KeyboardInterrupt into a silent 130
            raise KeyboardInterrupt
    except UserError as e:
        if _prints(e):
            typer.echo(f"error: {shown(flag_message(e))}", err=True)
        return e.exit_code
    except Interrupted as e:  # the command kept something and says what
        typer.echo(f"interrupted: {shown(e)}", err=True)
        return e.exit_code
    except (KeyboardInterrupt, typer.Abort):
        typer.echo(f"interrupted: {_kept()}", err=True)
        return 130
    except typer.Exit as e:
        return e.exit_code
    except Exception as e:
        return _other(e)
    return code if isinstance(code, int) else 0


def _other(e: Exception) -> int:
    """click's usage errors (vendored inside typer, so not importable by name) carry show(); an
    ImportError a Ctrl-C caused is an interrupt; anything else is a bug and raises on."""
    from common.interrupts import interrupted

    if hasattr(e, "show") and hasattr(e, "exit_code"):
        if type(e).__name__ == "NoArgsIsHelpError" or not hasattr(e, "format_message"):
            e.show()  # `blocks` or `blocks CMD` alone: the help text
            return e.exit_code
        typer.echo(f"error: {shown(_usage_line(e))}", err=True)
        return 2
    if isinstance(e, ImportError) and interrupted():  # a Ctrl-C cut a C extension's import short
        typer.echo(f"interrupted: {_kept()}", err=True)
        return 130
    raise


def _usage_line(e) -> str:
    """click's usage error (three lines: usage, hint, `Error: ...` in a box with rich) as one line,
    like every other error."""
    import re

    text = re.sub(r"\s+", " ", str(e.format_message())).strip().rstrip(".")
    ctx = getattr(e, "ctx", None)
    where = ctx.command_path if ctx is not None and getattr(ctx, "command_path", None) else "blocks"
    return f"{text} (see {where} --help)"


def _kept() -> str:
    """What an interrupted command left whole on disk (a Ctrl-C during the final write is held
    until the files are in place: they are kept, and the line says so)."""
    from common.interrupts import written

    files = list(dict.fromkeys(written()))
    if not files:
        return "nothing written"
    listed = ", ".join(files[:6]) + (f" and {len(files) - 6} more" if len(files) > 6 else "")
    return f"kept {listed} (written whole before the interrupt)"


def _prints(e: UserError) -> bool:
    """Under torchrun every rank raises the same error and rank 0 prints it; another rank prints
    only an error about itself ("rank 3: ..."). Read from torchrun's variables here, not through
    blocks.distributed: that imports torch, and an error line must not wait seconds for it."""
    import os

    rank = os.environ.get("RANK", "0") if os.environ.get("WORLD_SIZE", "1") != "1" else "0"
    return bool(str(e)) and (rank == "0" or str(e).startswith(f"rank {rank}:"))

