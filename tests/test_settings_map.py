"""Every command's flags reach its settings dataclass and nothing is dropped (blocks.cli.settings is
strict): each CLI parameter is a field of the dataclass or one the command consumes itself (and
says so in settings(ignore=...)), and each field a user should set has a flag. A renamed field or
parameter fails here instead of keeping its old default without a word."""
import dataclasses

import pytest
import typer

from blocks import cli
from blocks.flags import flag_fields

# The fewest arguments that take each command to its settings() call (nothing is read or loaded
# before it: the files named need not exist).
REACH = {
    "generate": [],
    "evaluate": ["patch.png"],
    "sweep": ["image.png", "--target", "7"],
    "print": ["patch.png", "--out", "sheet.pdf"],
    "capture": ["--target", "7"],
    "simulate": ["sheet.pdf", "--out", "video.mp4"],
    "onepixel": ["image.png"],
    "calibration-sheet": [],
    "calibrate": ["photo.png", "--sheet", "calib.json"],
    "digits-scenes": ["scenes"],
    "sample-scenes": ["scenes"],
}

# Commands with no settings dataclass, and why.
NO_SETTINGS = {
    "targets": "a lookup: the query and the model flags go straight to blocks.targets, nothing is run",
    "models": "takes no flags: it lists what runs offline",
}

# Fields of a command's settings that deliberately have no flag, with the reason (a field the command
# sets itself, such as digits-scenes' source, is passed to settings() by name and needs no entry).
NO_FLAG = {
    ("print", "captions"): "always on in the CLI: every printed block is labelled (target, size, date); Python API only",
    ("print", "date"): "the caption date is today's; the Python API pins it (reproducible PDFs in the tests)",
    ("calibration-sheet", "gap_mm"): "a layout detail of the page the CLI leaves at its default; Python API only",
    ("calibration-sheet", "dpi"): "the resolution of the embedded image of flat colour swatches: the default is enough",
    ("calibration-sheet", "seed"): "only the order of the swatches on the page; calib.json records where each colour is",
    ("calibration-sheet", "date"): "the caption date is today's; the Python API pins it (reproducible PDFs in the tests)",
    ("sample-scenes", "exclude"): "digits only: the photos have no class to leave out",
    ("sample-scenes", "limit"): "digits only: every shipped photo is written",
    ("generate", "attack.target"): "filled per goal from --target (a class index: config_for)",
    ("generate", "attack.away_from"): "filled from --away-from (a class index: config_for)",
    ("generate", "attack.check_every"): "how often the best-patch check runs: the library's default; Python API only",
    ("generate", "attack.check_seconds"): "the clock's bound on the best-patch check: the library's default; Python API only",
    ("generate", "attack.takeoff"): "the first fifth of a run at twice --epsilon, so a patch leaves black; Python API only",
    ("generate", "attack.takeoff_factor"): "how much larger the take-off step is than --epsilon; Python API only",
    ("generate", "attack.fold"): "batchnorm folding computes the same function faster: always on; Python API only",
    ("capture", "loop.target"): "filled from --target once the model loads (its class index: run_capture)",
    ("capture", "loop.sheet"): "filled from --sheet, read and checked (capture.sheet.load_sheet)",
    ("capture", "loop.sheet_path"): "filled from --sheet: the sheet.json the summary names",
    ("capture", "loop.headless"): "filled from --headless and whether there is a display (capture.display.is_headless)",
    ("capture", "loop.min_markers"): "markers of a block that must be seen to locate it: the library's 2; Python API only",
    ("capture", "loop.block_margin"): "border kept around a rectified block: the library's 0 (the block alone); Python API only",
    ("capture", "loop.prefetch"): "decoding the next frame while the model runs changes no result, only the speed: always on",
    ("onepixel", "attack.mutation"): "F of the paper strategy: the paper's 0.5; Python API only",
    ("onepixel", "attack.dither"): "best1bin's F range, scipy's (0.5, 1); Python API only",
    ("onepixel", "attack.crossover"): "best1bin's crossover rate: 1.0 as torchattacks and ART; Python API only",
    ("onepixel", "attack.untargeted_stop"): "the paper's stop threshold (true class below 0.05); Python API only",
    ("onepixel", "attack.targeted_stop"): "the paper's stop threshold (target above 0.5); Python API only",
    ("onepixel", "attack.stop_on_flip"): "the peers' stop criterion, for comparing with them (bench/onepixel.py); Python API only",
    ("onepixel", "attack.dedupe"): "skipping a repeated child never changes the search, only saves queries: always on",
    ("onepixel", "attack.fast"): "a frozen TorchScript copy of the model on CPU: the same function (up to rounding), faster; always on",
}


class Reached(Exception):
    """Raised by the spy once settings() has built the command's dataclass."""


def commands():
    return sorted(typer.main.get_command(cli.app).commands.items())


def cli_parameters(command) -> set[str]:
    """The command's parameter names as its body sees them: the model flags arrive as `models`."""
    names = {p.name for p in command.params}
    if names & set(cli.MODEL_FLAGS):
        names = names - set(cli.MODEL_FLAGS) | {"models"}
    return names


@pytest.fixture(scope="module")
def calls():
    """What each command passed to settings(): run every command up to that call (the real,
    strict settings() builds the dataclass), then stop it."""
    seen, real = {}, cli.settings

    def spy(cls, values, ignore=(), **parsed):
        real(cls, values, ignore, **parsed)
        seen[current] = (cls, set(values), set(ignore), set(parsed))
        raise Reached

    mp = pytest.MonkeyPatch()
    mp.setattr(cli, "settings", spy)
    try:
        for current, args in REACH.items():
            try:
                cli.run([current, *args])
            except Reached:
                pass
            except TypeError as e:  # the strict settings() refused a name: the tests below report it
                seen[current] = e
    finally:
        mp.undo()
    return seen


def call(calls, name):
    """(settings class, parameter names given, ignore, parsed names) of the command's call."""
    got = calls.get(name)
    if got is None:
        pytest.fail(f"{name} {' '.join(REACH[name])} never reached settings()")
    if isinstance(got, Exception):
        pytest.fail(f"{name}: {got}")
    return got


def field_paths(cls) -> set[str]:
    """The fields of cls a flag can fill, by path: a nested settings field (a dataclass, such as
    GenerateRun.attack) counts by its own fields ("attack.steps"), not as one."""
    paths = set()
    for f in dataclasses.fields(cls):
        inner = cli.default(cls, f.name)
        if dataclasses.is_dataclass(inner) and not isinstance(inner, type):
            paths |= {f"{f.name}.{g.name}" for g in dataclasses.fields(inner)}
        else:
            paths.add(f.name)
    return paths


def filled(cls, names) -> set[str]:
    """The field paths the flags `names` fill (a name that is no field stays as it is)."""
    where = flag_fields(cls)
    return {where.get(n, n) for n in names}


def test_every_command_is_covered():
    assert {name for name, _ in commands()} == set(REACH) | set(NO_SETTINGS)
    assert not set(REACH) & set(NO_SETTINGS)


@pytest.mark.parametrize("name", sorted(REACH))
def test_every_flag_maps_to_a_field(calls, name):
    command = dict(commands())[name]
    cls, values, ignore, parsed = call(calls, name)
    params = cli_parameters(command)
    assert values == params, f"{name}: settings() got {sorted(values ^ params)} beyond or short of the parameters"
    fields = field_paths(cls)
    assert filled(cls, params - ignore) <= fields, \
        f"{name}: {sorted(filled(cls, params - ignore) - fields)} are no fields of {cls.__name__}"
    assert not ignore & set(flag_fields(cls)), f"{name}: ignores the fields {sorted(ignore & set(flag_fields(cls)))}"


@pytest.mark.parametrize("name", sorted(REACH))
def test_every_field_a_user_sets_has_a_flag(calls, name):
    cls, values, _, parsed = call(calls, name)
    fields = field_paths(cls)
    exempt = {field for (cmd, field) in NO_FLAG if cmd == name}
    assert exempt <= fields, f"{name}: NO_FLAG names {sorted(exempt - fields)}, no fields of {cls.__name__}"
    missing = fields - filled(cls, values | parsed) - exempt
    assert not missing, f"{name}: {cls.__name__} fields {sorted(missing)} have no flag (add one, or a reason to NO_FLAG)"
    assert not exempt & filled(cls, values), f"{name}: NO_FLAG lists {sorted(exempt & filled(cls, values))}, which have flags"


@pytest.mark.parametrize("name", sorted(REACH))
def test_a_flag_and_its_field_default_alike(calls, name):
    """Where a flag's value goes to its field unparsed, the flag's default is the field's: `blocks X`
    and the Python API run alike."""
    cls, _, _, parsed = call(calls, name)
    where = flag_fields(cls)
    top = {f.name: f for f in dataclasses.fields(cls)}
    for p in dict(commands())[name].params:
        path = where.get(p.name)
        if path is None or p.name in parsed:
            continue
        if "." not in path and top[path].default is dataclasses.MISSING:
            continue  # a computed default (default_factory), the same either way
        assert p.default == cli.default(cls, path), (name, path, p.default, cli.default(cls, path))


def test_settings_is_strict():
    @dataclasses.dataclass
    class Run:
        steps: int = 1

    assert cli.settings(Run, {"steps": 3}) == Run(3)
    assert cli.settings(Run, {"steps": 3, "out": "x"}, ignore=("out",)) == Run(3)
    assert cli.settings(Run, {"steps": 3}, steps=4) == Run(4)
    with pytest.raises(TypeError, match="stepz is no field of Run"):
        cli.settings(Run, {"stepz": 3})
    with pytest.raises(TypeError, match="out"):
        cli.settings(Run, {"steps": 3}, extra=1, ignore=("out",))  # ignores a name it was not given
    with pytest.raises(TypeError, match="a field"):
        cli.settings(Run, {"steps": 3}, ignore=("steps",))  # would drop a field's value


def test_settings_fill_nested_fields():
    """A flag that names no field of the settings fills the nested settings field that has it
    (generate's --steps: GenerateRun.attack.steps), from that field's own default; a field of the
    outer class wins over a nested one of the same name."""
    @dataclasses.dataclass
    class Inner:
        steps: int = 1
        seed: int = 0
        tag: str = "inner"

    @dataclasses.dataclass
    class Outer:
        inner: Inner = dataclasses.field(default_factory=lambda: Inner(steps=2))
        tag: str = "outer"

    assert cli.settings(Outer, {"seed": 5}) == Outer(Inner(steps=2, seed=5))  # steps keeps the command's 2
    assert cli.settings(Outer, {"tag": "x", "steps": 3}) == Outer(Inner(steps=3), tag="x")
    assert cli.default(Outer, "inner.steps") == 2 and cli.default(Outer, "inner.tag") == "inner"
    with pytest.raises(TypeError, match="stepz is no field of Outer"):
        cli.settings(Outer, {"stepz": 3})


def test_cli_defaults_are_read_from_the_settings():
    """One home for every default: a flag's default is None (not given) or default(Cls, field),
    never a literal restated in cli.py (a changed dataclass default then reaches --help too)."""
    import ast
    from pathlib import Path

    tree = ast.parse((Path(cli.__file__)).read_text())
    literal = []
    for fn in tree.body:
        if not isinstance(fn, ast.FunctionDef) or fn.name not in {c.callback.__name__ for _, c in commands()}:
            continue
        args = fn.args.args + fn.args.kwonlyargs
        given = [None] * (len(fn.args.args) - len(fn.args.defaults)) + fn.args.defaults + fn.args.kw_defaults
        for a, d in zip(args, given):
            if d is None or (isinstance(d, ast.Constant) and d.value is None):
                continue
            if not (isinstance(d, ast.Call) and getattr(d.func, "id", "") == "default"):
                literal.append(f"{fn.name}({a.arg} = {ast.unparse(d)})")
    assert not literal, literal
