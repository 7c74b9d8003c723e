"""`blocks <cmd> --help` tells the truth: every option described, every default shown by typer
(not as text in the help string, which rich swallows as markup), each shown default the one the
settings dataclass really uses, and the lists in help strings equal to the code's lists."""
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from blocks import checks, cli
from blocks.commands.calibrate import CalibrateRun
from blocks.commands.calibration_sheet import CalibrationRun
from blocks.commands.capture import CaptureRun
from blocks.commands.evaluate import EvaluateRun
from blocks.commands.generate import GenerateRun
from blocks.commands.onepixel import OnePixelRun
from blocks.commands.print_sheet import PrintRun
from blocks.commands.scenes import ScenesRun
from blocks.commands.simulate import SimulateRun
from blocks.commands.sweep import SweepRun
from capture.settings import SlidingSettings
from printing.calibration import CalibrationSettings
from printing.sheet import SheetSettings

# command -> the settings dataclasses its flags fill, in the order their fields are looked up
SETTINGS = {"generate": (GenerateRun,), "evaluate": (EvaluateRun,), "sweep": (SweepRun,),
            "capture": (CaptureRun, SlidingSettings), "simulate": (SimulateRun,), "onepixel": (OnePixelRun,),
            "calibrate": (CalibrateRun,), "digits-scenes": (ScenesRun,), "sample-scenes": (ScenesRun,),
            "print": (SheetSettings, PrintRun), "calibration-sheet": (CalibrationSettings, CalibrationRun),
            "targets": (), "models": ()}
FIELD = {"eps_range": "eps_range", "targets": "targets"}  # click param name -> field, where they differ
# options whose None means "not given" and stands for no default (the help says what giving them does)
NOT_GIVEN = {"targets", "targets_file", "away_from", "target", "models_file", "weights", "labels"}
PARSED = {"eps_range": lambda t: cli.parse_range(t, "--eps", -255, 255), "tile": lambda t: _tile(t),
          "epsilon": lambda e: e / 255}  # generate's flag in 0-255 units, its field (attack.epsilon) in [0, 1]
MODEL_FLAGS = set(cli.MODEL_FLAGS)


def _tile(text):
    from printing import parse_tile

    return parse_tile(text)


def commands():
    group = typer.main.get_command(cli.app)
    return sorted(group.commands.items())


def test_every_command_is_covered():
    assert {name for name, _ in commands()} == set(SETTINGS)


def field_default(classes, name):
    """The default of the field the flag `name` fills: a field of a settings class, or a field of a
    nested one (generate's --steps fills GenerateRun.attack.steps: blocks.flags.flag_fields)."""
    from blocks.flags import flag_fields

    for cls in classes:
        where = flag_fields(cls)
        if FIELD.get(name, name) in where:
            return cli.default(cls, where[FIELD.get(name, name)])
    raise AssertionError(f"no settings field for {name}")


def rendered_help(name: str) -> str:
    result = CliRunner().invoke(cli.app, [name, "--help"], env={"COLUMNS": "400", "TERM": "dumb"})
    assert result.exit_code == 0, result.output
    text = re.sub(r"[│╭╮╰╯─]", " ", result.output)
    return re.sub(r"\s+", " ", text)


@pytest.mark.parametrize("name,command", commands())
def test_help_describes_every_option_and_shows_true_defaults(name, command):
    text = rendered_help(name)
    classes = SETTINGS[name]
    for param in command.params:
        if param.name == "help":
            continue
        assert (param.help or "").strip(), f"{name} {param.opts}: no description"
        if not isinstance(param, typer.core.TyperOption):
            continue
        flag = param.opts[0]
        metavar = "" if param.is_flag else r"(<[\w\[\]]+>|[A-Z][A-Z:]*) "  # a flag shows none
        row = re.search(rf" {re.escape(flag)} (--\S+ )?{metavar}", text)  # its row: flag, metavar
        assert row, (name, flag)
        segment = text[row.end():][:400]
        if param.required:
            continue
        shown = re.match(r".*?\[default: ([^\]]*\)?)\]", segment)
        default = param.default
        if param.name in MODEL_FLAGS:  # the model flags fill ModelSpec, whose default is the embedded model
            if param.name == "model":
                assert param.show_default == cli.DEFAULT_MODEL and shown and shown.group(1) == f"({cli.DEFAULT_MODEL})"
            continue
        if default is None or default == []:
            if param.name in NOT_GIVEN:
                continue
            assert isinstance(param.show_default, str), f"{name} {flag}: a computed default must say what it is"
            assert shown and shown.group(1) == f"({param.show_default})", (name, flag, segment[:200])
            assert field_default(classes, param.name) is None, (name, flag)
            continue
        want = field_default(classes, param.name)
        value = PARSED[param.name](default) if param.name in PARSED else default
        if isinstance(want, Path):
            value = Path(value)
        assert value == want, f"{name} {flag}: help shows {default!r}, the settings use {want!r}"
        assert shown, f"{name} {flag}: default not shown ({segment[:200]!r})"
        if isinstance(param.show_default, str):
            assert shown.group(1) == f"({param.show_default})"
        elif param.is_flag and param.secondary_opts:
            assert shown.group(1) == (param.opts[0] if default else param.secondary_opts[0]).lstrip("-")
        else:
            assert shown.group(1) == str(default), (name, flag, shown.group(1), default)
    assert "[default:" not in " ".join(p.help or "" for p in command.params)  # never typed by hand


def test_lists_in_help_are_the_codes_lists():
    from blocks.attacks.eot_fgsm import ENSEMBLE_SMOOTH
    from blocks.commands.shared import default_scale
    from blocks.models import DEFAULT_MODEL
    from printing.layout import PAGE_SIZES_MM
    from transforms.camera import CameraSettings
    from transforms.eot import PRESETS, preset

    assert checks.EOT_PRESETS == tuple(PRESETS)
    assert checks.PAGES == tuple(PAGE_SIZES_MM)
    assert cli.DEFAULT_MODEL == DEFAULT_MODEL
    assert cli.FRAME_SIZE_DEFAULT == "{}x{}".format(*CameraSettings().size)
    assert cli.SMOOTH_DEFAULT.startswith(f"{ENSEMBLE_SMOOTH:g} for an ensemble, 0 for")
    plain, scenes = default_scale(None, None), default_scale(None, "scenes")
    held = preset("held").scale
    assert default_scale(None, None, "held") is None  # the preset's own coverage
    assert cli.SCALE_DEFAULT == (f"{held[0]:g}:{held[1]:g} for --eot held; else {plain[0]:g}:{plain[1]:.1f}, "
                                 f"{scenes[0]:g}:{scenes[1]:g} with --scenes")
    for name in ("generate", "evaluate"):
        assert ", ".join(PRESETS) in rendered_help(name)
    for name in ("print", "calibration-sheet"):
        assert ", ".join(PAGE_SIZES_MM) in rendered_help(name)


@pytest.mark.parametrize("name,ensemble", [("generate", True), ("evaluate", True), ("sweep", True),
                                           ("targets", True), ("capture", False), ("onepixel", False)])
def test_model_help_says_whether_an_ensemble_is_allowed(name, ensemble):
    text = rendered_help(name)
    assert ("repeat it for an ensemble" in text) == ensemble
    assert ("this command takes no ensemble" in text) == (not ensemble)


def test_single_model_commands_refuse_two(cli_run=None):
    from blocks.cli import run

    for name, extra in (("capture", ["--target", "hen"]), ("onepixel", ["x.png"])):
        assert run([name, *extra, "--model", "digits", "--model", "digits"]) == 2


def test_version_and_help_need_no_torch():
    code = ("import sys; from blocks.cli import run; a = run(['--version']); b = run(['generate', '--help']); "
            "assert (a, b) == (0, 0), (a, b); assert 'torch' not in sys.modules, 'torch imported'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert re.match(r"blocks \(deep-chicken-saviour\) \d+\.\d+", proc.stdout), proc.stdout


def test_cli_import_and_help_build_no_records():
    """The records are pydantic models, whose building cost the CLI's import 1.65x its time (issue
    31, docs/design.md): they load when a command runs, not for the CLI's import, --version or a
    command's --help. pydantic itself stays out until a command is named (typer then builds its
    parameters' coercion with it)."""
    code = ("import sys; from blocks.cli import run; from blocks.first_line import COMMANDS; "
            "loaded = lambda: print('loaded', *(m for m in ('pydantic', 'common.records') if m in sys.modules)); "
            "loaded(); codes = [run(['--version']), run(['--help'])]; loaded(); "
            "codes += [run([c, '--help']) for c in COMMANDS]; assert set(codes) == {0}, codes; loaded()")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.startswith("loaded")]
    assert lines[:2] == ["loaded", "loaded"], lines  # the import, --version and --help
    assert "common.records" not in lines[2], lines  # every command's --help


def test_first_line_names_the_command_and_model():
    assert cli.loading_line(["generate", "--target", "hen"]) == "blocks generate: loading torch and efficientnet_lite0 ..."
    assert cli.loading_line(["capture", "--model=resnet18", "--target", "hen"]).endswith("torch and resnet18 ...")
    assert cli.loading_line(["print", "a.png", "--out", "s.pdf"]) == "blocks print: loading torch ..."
    assert cli.loading_line(["generte"]) is None  # typer's own error, not a loading line


def test_the_first_line_knows_every_command_without_importing_the_cli():
    """blocks.first_line prints before typer, numpy or torch load: its command lists are the CLI's."""
    from blocks import first_line

    assert set(first_line.COMMANDS) == {name for name, _ in commands()}
    model_commands = {name for name, c in commands() if "model" in {p.name for p in c.params}}
    assert set(first_line.MODEL_COMMANDS) == model_commands - {"targets"}  # targets reads labels, loads no weights
    code = "import sys; import blocks.first_line; assert not {'typer', 'numpy', 'torch'} & set(sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).returncode == 0


@pytest.mark.parametrize("name,command", commands())
def test_flags_show_no_type_and_help_cites_what_exists(name, command):
    """A flag takes no value: no `--version <bool>`; MIN:MAX options say so; a doc a help string
    names exists and has the section it names."""
    text = rendered_help(name)
    assert "<bool>" not in text, name
    if any(p.name == "scale" for p in command.params):
        assert re.search(r" --scale MIN:MAX ", text), name
    root = Path(__file__).resolve().parents[1]
    for doc in re.findall(r"(docs/\w+\.md|README)", " ".join(p.help or "" for p in command.params)):
        assert doc != "README" and (root / doc).is_file(), (name, doc)
    version = CliRunner().invoke(cli.app, ["--help"], env={"COLUMNS": "400", "TERM": "dumb"}).output
    assert re.search(r"--version +print the version", version), version
