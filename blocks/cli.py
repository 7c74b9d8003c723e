"""The `blocks` command: a thin typer layer over the Python API. Bad input -> one line, exit 2."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from blocks.errors import UserError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Physical-world adversarial blocks: generate, print, capture, one-pixel.")

# Shared `[model flags]`: every command that runs a classifier takes these.
ModelOpt = Annotated[str, typer.Option("--model", help="torchvision classifier name, or 'digits' (bundled, offline)")]
WeightsOpt = Annotated[Optional[Path], typer.Option("--weights", help="state dict file for --model (loaded with weights_only=True)")]
LabelsOpt = Annotated[Optional[Path], typer.Option("--labels", help="class names, one per line (sets the number of classes)")]
InputSizeOpt = Annotated[Optional[int], typer.Option("--input-size", help="side in pixels the model expects")]
MeanOpt = Annotated[Optional[str], typer.Option("--mean", help="normalisation mean R,G,B (ImageNet by default)")]
StdOpt = Annotated[Optional[str], typer.Option("--std", help="normalisation std R,G,B (ImageNet by default)")]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto (CUDA, then MPS, then CPU), cpu, cuda, mps")]


@app.callback()
def _root() -> None:
    """Physical-world adversarial blocks: generate, print, capture, one-pixel."""


def model_spec(model: str, weights: Path | None, labels: Path | None, input_size: int | None,
               mean: str | None, std: str | None):
    from blocks.models import ModelSpec

    return ModelSpec(name=model, weights=weights, labels=labels, input_size=input_size,
                     mean=parse_floats(mean, "--mean", 3), std=parse_floats(std, "--std", 3))


def parse_floats(text: str | None, flag: str, n: int | None = None) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        values = tuple(float(v) for v in text.replace(":", ",").split(","))
    except ValueError:
        raise UserError(f"{flag} takes numbers separated by commas, not {text!r}") from None
    if n is not None and len(values) != n:
        raise UserError(f"{flag} takes {n} numbers, not {text!r}")
    return values


def parse_range(text: str | None, flag: str, lo: float = 0.0, hi: float = float("inf")):
    """'MIN:MAX' -> (min, max), checked to lie within [lo, hi]."""
    if text is None:
        return None
    values = parse_floats(text, flag)
    if len(values) == 1:
        values = (values[0], values[0])
    if len(values) != 2 or not (lo <= values[0] <= values[1] <= hi):
        raise UserError(f"{flag} takes MIN:MAX with {lo:g} <= MIN <= MAX <= {hi:g}, not {text!r}")
    return values


def emit_json(obj, out: Path | None) -> None:
    from blocks.files import atomic_write_json

    if out is None:
        typer.echo(json.dumps(obj, indent=2))
    else:
        atomic_write_json(out, obj)
        typer.echo(f"wrote {out}", err=True)


@app.command()
def targets(
    query: Annotated[str, typer.Argument(help="class name, index or common word")],
    model: ModelOpt = "resnet50",
    labels: LabelsOpt = None,
):
    """List the classes matching QUERY, with their indices."""
    from blocks.targets import search_targets

    names = class_names(model, labels)
    hits = search_targets(query, names)
    if not hits:
        raise UserError(f"no class matches {query!r} ({len(names)} classes)")
    for i, name in hits:
        typer.echo(f"{i:5d}  {name}")


def class_names(model: str, labels: Path | None) -> list[str]:
    """Class names without loading weights (so `targets` works offline)."""
    from blocks.models import read_labels

    if labels is not None:
        return read_labels(labels)
    if model == "digits":
        from blocks.digits import LABELS

        return list(LABELS)
    from torchvision import models as tvm

    try:
        return list(tvm.get_model_weights(model).DEFAULT.meta["categories"])
    except (ValueError, AttributeError, KeyError):
        raise UserError(f"no class names known for model {model!r}: pass --labels FILE") from None


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code: 0 ok, 2 bad input, 130 interrupted."""
    try:
        code = app(args=argv, prog_name="blocks", standalone_mode=False)
    except UserError as e:
        typer.echo(f"error: {e}", err=True)
        return e.exit_code
    except (KeyboardInterrupt, typer.Abort):
        typer.echo("interrupted", err=True)
        return 130
    except typer.Exit as e:
        return e.exit_code
    except Exception as e:
        # click's usage errors (vendored inside typer, so not importable by name) carry show().
        if hasattr(e, "show") and hasattr(e, "exit_code"):
            e.show()
            return e.exit_code
        raise
    return code if isinstance(code, int) else 0


def main() -> None:
    sys.exit(run())


if __name__ == "__main__":
    main()
