"""The typer plumbing the command declarations in blocks/cli.py share: the model flags
(@model_options), the flags' defaults read from the settings dataclasses (default), the flags made
into a settings dataclass (settings), and the parsers of flags given as text (MIN:MAX, WxH, R,G,B).
No torch here: --help and the errors of bad flags stay fast."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from blocks import checks
from blocks.first_line import DEFAULT_MODEL
from common.errors import UserError


def _flags_take_no_value() -> None:
    """typer 0.29 writes a type after every option in --help, flags too (`--version <bool>`); a
    flag takes no value, so it shows none."""
    from typer.core import TyperOption

    shown = TyperOption.display_type_rich
    if getattr(shown, "flags_take_no_value", False):
        return

    def display_type_rich(self, ctx):
        return None if self.is_flag else shown(self, ctx)

    display_type_rich.flags_take_no_value = True
    TyperOption.display_type_rich = display_type_rich


_flags_take_no_value()


# Defaults are shown by typer's show_default (text written into a help string as "[default: x]"
# is rich markup, and vanishes); computed ones (None in the settings) say in words what they are.
MODEL_HELP = ("efficientnet_lite0 (embedded ImageNet, offline; efficientnet_lite1/2 with the zoo extra), a "
              "torchvision name, timm:NAME, a .pt2/TorchScript file, or digits")

# Shared `[model flags]`: every command that runs a classifier takes these, through @model_options.
ModelOpt = Annotated[Optional[list[str]], typer.Option("--model", metavar="NAME", show_default=DEFAULT_MODEL,
                                                       help=MODEL_HELP + "; repeat it for an ensemble")]
OneModelOpt = Annotated[Optional[list[str]], typer.Option("--model", metavar="NAME", show_default=DEFAULT_MODEL,
                                                          help=MODEL_HELP + "; one model (this command takes no ensemble)")]
ModelsFileOpt = Annotated[Optional[Path], typer.Option("--models", metavar="FILE", help="an ensemble whose members need their own flags: a TOML or JSON file listing models, each with keys model, weights, labels, input_size, mean, std")]
OneModelFileOpt = Annotated[Optional[Path], typer.Option("--models", metavar="FILE", help="a TOML or JSON file naming the model with keys model, weights, labels, input_size, mean, std (one entry: this command takes no ensemble)")]
WeightsOpt = Annotated[Optional[Path], typer.Option("--weights", help="state dict file for --model (loaded with weights_only=True)")]
LabelsOpt = Annotated[Optional[Path], typer.Option("--labels", help="class names, one per line (sets the number of classes)")]
InputSizeOpt = Annotated[Optional[int], typer.Option("--input-size", help="side in pixels the model expects", show_default="the model's own")]
MeanOpt = Annotated[Optional[str], typer.Option("--mean", help="normalisation mean R,G,B", show_default="the model's own")]
StdOpt = Annotated[Optional[str], typer.Option("--std", help="normalisation std R,G,B", show_default="the model's own")]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto (CUDA, then MPS, then CPU), cpu, cuda, mps")]


def version_text() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"blocks (deep-chicken-saviour) {version('deep-chicken-saviour')}"
    except PackageNotFoundError:  # run from a checkout that pip never installed
        return "blocks (deep-chicken-saviour), not installed: no version"


def _version(value: bool) -> None:
    if value:
        typer.echo(version_text())
        raise typer.Exit()


MODEL_FLAGS = ("model", "models_file", "weights", "labels", "input_size", "mean", "std")


def model_options(multi: bool = True):
    """Give a command the model flags in place of its `models` parameter, which then receives
    one list[ModelSpec] (several for an ensemble). multi=False: the command takes one model."""
    import functools
    import inspect

    flags = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=ann, default=None)
             for name, ann in zip(MODEL_FLAGS, (ModelOpt if multi else OneModelOpt,
                                                ModelsFileOpt if multi else OneModelFileOpt, WeightsOpt,
                                                LabelsOpt, InputSizeOpt, MeanOpt, StdOpt))]

    def decorate(command):
        sig = inspect.signature(command, eval_str=True)
        params = []
        for p in sig.parameters.values():
            params += flags if p.name == "models" else [p.replace(kind=inspect.Parameter.KEYWORD_ONLY)]

        @functools.wraps(command)
        def wrapper(**kwargs):
            values = {k: kwargs.pop(k) for k in MODEL_FLAGS}
            specs = model_specs(**values)
            if not multi and len(specs) > 1:
                raise UserError(f"{command.__name__} runs one model at a time, not {len(specs)}: "
                                f"give one --model")
            return command(models=specs, **kwargs)

        wrapper.__signature__ = sig.replace(parameters=params)  # typer reads the flags from here
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        return wrapper

    return decorate


def model_specs(model: list[str] | None, models_file: Path | None, weights: Path | None = None,
                labels: Path | None = None, input_size: int | None = None, mean: str | None = None,
                std: str | None = None) -> list:
    """The models the flags name: each --model, then each entry of the --models file."""
    names = list(model or [])
    per_model = [f for f, v in (("--weights", weights), ("--labels", labels), ("--input-size", input_size),
                                ("--mean", mean), ("--std", std)) if v is not None]
    if per_model and (len(names) > 1 or models_file is not None):
        raise UserError(f"{', '.join(per_model)} apply to a single --model; with several models give "
                        f"each its own in a --models FILE (TOML or JSON entries with keys model, weights, "
                        f"labels, input_size, mean, std)")
    specs = [model_spec(n, weights, labels, input_size, mean, std) for n in names]
    if models_file is not None:
        from blocks.models.model_list import read_model_list

        specs += read_model_list(models_file)
    return specs or [model_spec(DEFAULT_MODEL, weights, labels, input_size, mean, std)]


def model_spec(model: str, weights: Path | None, labels: Path | None, input_size: int | None,
               mean: str | None, std: str | None):
    from blocks.models.spec import ModelSpec

    mean, std = parse_floats(mean, "--mean", 3), parse_floats(std, "--std", 3)
    checks.model_numbers(input_size, mean, std)
    return ModelSpec(name=model, weights=weights, labels=labels, input_size=input_size, mean=mean, std=std)


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
    try:
        values = parse_floats(text, flag)
    except UserError:
        values = ()
    if len(values) == 1:
        values = (values[0], values[0])
    if len(values) != 2 or not (lo <= values[0] <= values[1] <= hi):
        raise UserError(f"{flag} takes MIN:MAX with {lo:g} <= MIN <= MAX <= {hi:g}, not {text!r}")
    return values


def class_names(specs: list) -> list[str]:
    """Class names without loading weights (so `targets` works offline); an ensemble's members
    must agree on them."""
    from blocks.models import class_names as names, check_same_classes

    lists = [(s.name, names(s)) for s in specs]
    check_same_classes(lists)
    return lists[0][1]


SMOOTH_DEFAULT = "0.8 for an ensemble, 0 for one model"  # blocks.attacks.eot_fgsm.smoothing (tests/test_help.py)
SCALE_DEFAULT = "0.15:0.45 for --eot held; else 0.8:1.0, 0.4:0.6 with --scenes"  # blocks.commands.shared.default_scale (tests/test_help.py)
SCENES_DEFAULT = "--eot held: the shipped sample photos, training side; else plain random backgrounds"
EVAL_SCENES_DEFAULT = "--scenes; --eot held without --scenes: the shipped photos' held-out side"
FRAME_SIZE_DEFAULT = "640x480"  # transforms.camera.CameraSettings.size (tests/test_help.py)
OVERWRITE_HELP = "replace outputs that exist already (without it, an existing output is an error and nothing runs)"


def _field_default(f):
    import dataclasses

    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def default(cls, name: str, text: str | None = None, unit: float = 1):
    """The default of field `name` of the settings dataclass `cls`, for a flag to show and use;
    a dotted name ("attack.steps") reads a field of a nested settings field. text: a format for a
    tuple a flag takes as text ("{0:g}:{1:g}" for MIN:MAX); unit: the flag's units per the field's
    (255 for an epsilon the flag gives in 0-255 units and the field holds in [0, 1])."""
    import dataclasses

    first, *rest = name.split(".")
    value = _field_default({f.name: f for f in dataclasses.fields(cls)}[first])
    for part in rest:  # the nested field's value in its default instance (command_attack's batch 8)
        value = getattr(value, part)
    if unit != 1:
        value = round(value * unit, 6)
    return text.format(*value) if text else value


def flag_fields(cls) -> dict[str, str]:
    """Where each flag name goes in the settings dataclass `cls`: a field of cls by its own name,
    else a field of a nested settings field (one holding a dataclass, GenerateRun.attack) by the
    nested name ("steps" -> "attack.steps"). A field of cls wins over a nested one of the same name
    (GenerateRun.away_from, a class name, over attack.away_from, the index config_for fills)."""
    import dataclasses

    where = {f.name: f.name for f in dataclasses.fields(cls)}
    for f in dataclasses.fields(cls):
        inner = _field_default(f)
        if dataclasses.is_dataclass(inner) and not isinstance(inner, type):
            for g in dataclasses.fields(inner):
                where.setdefault(g.name, f"{f.name}.{g.name}")
    return where


def settings(cls, values: dict, ignore: tuple[str, ...] = (), **parsed):
    """The settings dataclass `cls` from a command's flags: values are the command's parameters
    (`flags = dict(locals())`, taken before anything else in its body), each named as a field of
    cls or of a nested settings field (flag_fields: `steps` fills GenerateRun.attack.steps); parsed
    values replace them. Strict: a name that is no field raises TypeError (a programming error: a
    renamed field or parameter would otherwise keep its old default without a word), unless the
    command consumes it itself and names it in ignore."""
    import dataclasses

    where = flag_fields(cls)
    given = {**values, **parsed}
    for name in ignore:
        if name not in given or name in where:
            raise TypeError(f"settings({cls.__name__}): ignore={name!r} names "
                            f"{'a field' if name in where else 'no parameter of the command'}")
    unknown = sorted(set(given) - set(where) - set(ignore))
    if unknown:
        raise TypeError(f"settings({cls.__name__}): {', '.join(unknown)} is no field of {cls.__name__} "
                        f"(rename the parameter or the field, or pass it in ignore=)")
    top, nested = {}, {}
    for name, value in given.items():
        if name in ignore:
            continue
        outer, _, inner = where[name].partition(".")
        if inner:
            nested.setdefault(outer, {})[inner] = value
        else:
            top[name] = value
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for outer, values_in in nested.items():
        top[outer] = dataclasses.replace(top.get(outer) or _field_default(fields[outer]), **values_in)
    return cls(**top)


def parse_size(text: str | None) -> tuple[int, int] | None:
    """'WxH' -> (w, h)."""
    if text is None:
        return None
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UserError(f"--size takes WxH in pixels (64 to 8192 each), not {text!r}") from None
    return w, h
