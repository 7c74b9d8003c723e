"""The shape of the code: typed records round-trip, the CLI stays thin, the leaf package stays a leaf."""
from __future__ import annotations

import ast
import json
import math
import re
from pathlib import Path

import pytest
from imports import blocks_import_graph, cycle as _cycle

from blocks.first_line import COMMANDS
from common.errors import UserError
from common.goal import Goal
from common.records import (BlockInfo, CalibrationInfo, CaptureSummary, ColorMapRecord, EvaluateReport, EvaluateRow,
                            GenerateSummary, MarkerInfo, OnePixelRow, OnePixelSummary, PatchRecord, SheetInfo,
                            ScenesInfo, SimulateInfo, SwatchInfo, SweepRecord)

ROOT = Path(__file__).resolve().parents[1]
RECORDS = [PatchRecord, GenerateSummary, SheetInfo, CalibrationInfo, ColorMapRecord, CaptureSummary, OnePixelSummary,
           EvaluateReport, SweepRecord, SimulateInfo, ScenesInfo]


def _sheet(cls=SheetInfo, **more):
    marker = MarkerInfo(0, 1.0, 2.0, 12.0, "top_left")
    block = BlockInfo(page=0, x_mm=10.0, y_mm=20.0, size_mm=50.0, width_mm=50.0, height_mm=50.0, patch_size_mm=50.0,
                      tile=(1, 1), markers=(marker,), target=Goal(8, True, "hen"), image_px=(600, 600))
    return cls(page_size_mm=(210.0, 297.0), pages=1, layout="grid", aruco_dictionary="DICT_4X4_50", blocks=(block,),
               dpi=300, date="2026-01-01", **more)


SAMPLES = {
    PatchRecord: lambda: PatchRecord(target=Goal(8, True, "hen", ("cock",)), model={"model": "digits"},
                                     steps_run=3, seconds=1.5, curve={"step": [0, 1]}, held_out={"success_rate": 0.5}),
    GenerateSummary: lambda: GenerateSummary(model="digits", targets=()),
    SheetInfo: _sheet,
    CalibrationInfo: lambda: _sheet(CalibrationInfo, swatches=(SwatchInfo(0, (1, 2, 3), 20.0, 30.0, 5.0, 6.0),), rows=1,
                                     cols=1),
    ColorMapRecord: lambda: ColorMapRecord(coef=[[[0.0, 1.0]] * 3] * 3, offset=[0.0, 0.0, 0.0], knots=2),
    CaptureSummary: lambda: CaptureSummary(frames=3, hit_rate=1 / 3, target=Goal(8, True, "hen")),
    OnePixelSummary: lambda: OnePixelSummary(images=1, successes=1, success_rate=1.0, files=["a.png"], results=(
        OnePixelRow("a", "a.png", True, 12, {"class": "3", "prob": 0.9}, {"class": "5", "prob": 0.6}),)),
    EvaluateReport: lambda: EvaluateReport(patch="p.png", target=Goal(8, True, "hen"), eot="print",
                                           scale=[0.8, 1.0], seed=1, n=2, models=(EvaluateRow("a", "f00", 0.5, 0.4, 1.0, 2),
                                                                                  EvaluateRow("b", "ba4", 0.0, 0.1, 0.5, 2))),
    SweepRecord: lambda: SweepRecord(image="x.png", target=Goal(8, True, "hen"), model="digits",
                                     epsilons_255=[-1.0, 0.0], best_epsilon_255=-1.0, best_target_prob=0.7,
                                     clean_top1="cock", probs={"hen": [0.7, 0.2]}),
    SimulateInfo: lambda: SimulateInfo(out="v.mp4", frames=3, fps=15.0, size=[640, 480], seed=0, sheet="s.json",
                                       block=0, page=0, render_dpi=300.0),
    ScenesInfo: lambda: ScenesInfo(source="digits", train=4, test=3, excluded="seven"),
}


def test_evaluate_report_keeps_its_two_shapes():
    """One model: the success figures at the top, no `models`; several: only `models` rows."""
    one = EvaluateReport(patch="p.png", model="digits", n=4, success_rate=0.5, mean_target_prob=0.3, top5_rate=1.0,
                         by_scale={}, by_rotation={})
    several = SAMPLES[EvaluateReport]()
    assert "models" not in one.to_json() and one.to_json()["success_rate"] == 0.5
    assert not {"model", "success_rate", "by_scale"} & set(several.to_json())
    assert EvaluateReport.from_json(several.to_json()) == several and EvaluateReport.from_json(one.to_json()) == one


@pytest.mark.parametrize("cls", RECORDS, ids=lambda c: c.__name__)
def test_record_round_trips_with_unknown_keys_and_a_version(cls, tmp_path):
    rec = SAMPLES[cls]()
    data = rec.to_json()
    assert data["version"] >= 1
    data["from_the_future"] = {"kept": [1, 2]}
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data))
    back = cls.read(path)
    assert back.extra == {"from_the_future": {"kept": [1, 2]}}
    assert back == cls.from_json(data)
    back.write(tmp_path / "again.json")
    assert json.loads((tmp_path / "again.json").read_text()) == data  # written back unchanged


@pytest.mark.parametrize("cls", RECORDS, ids=lambda c: c.__name__)
def test_record_refuses_nan(cls, tmp_path):
    rec = SAMPLES[cls]()
    rec.extra["bad"] = math.nan
    with pytest.raises(UserError, match="non-finite"):
        rec.write(tmp_path / "r.json")
    assert not (tmp_path / "r.json").exists()


def test_bad_record_files_are_one_line(tmp_path):
    with pytest.raises(UserError, match="not found"):
        PatchRecord.read(tmp_path / "nope.json")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(UserError, match="cannot read"):
        SheetInfo.read(tmp_path / "broken.json")
    (tmp_path / "list.json").write_text("[1]")
    with pytest.raises(UserError, match="bad or missing field"):
        SheetInfo.read(tmp_path / "list.json")


def test_old_patch_json_targets_still_read():
    """patch.json from before the record held the target as a bare name or index."""
    assert PatchRecord.from_json({"target": "hen"}).target.name == "hen"
    assert PatchRecord.from_json({"target": 8}).target.index == 8


def _functions(path: Path):
    tree = ast.parse(path.read_text())
    return [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def test_cli_functions_are_short():
    """cli.py parses flags, calls a pipeline, prints the record: no function over 40 lines."""
    long = [(f.name, f.end_lineno - f.lineno + 1) for f in _functions(ROOT / "blocks/cli.py")
            if f.end_lineno - f.lineno + 1 > 40]
    assert not long, long


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


OURS = {"blocks", "common", "transforms", "printing", "capture", "bench", "tests", "scripts"}


@pytest.mark.parametrize("package, allowed", [("common", {"common"}), ("transforms", {"common", "printing", "transforms"}),
                                              ("printing", {"common", "printing"}),
                                              ("capture", {"common", "capture", "printing", "transforms"})])
def test_lower_packages_never_import_upwards(package, allowed):
    """common/ imports nothing of ours; transforms/, printing/ and capture/ never import blocks/;
    printing/ imports no transforms/ (the held views draw the card from printing's layout)."""
    bad = {str(p.relative_to(ROOT)): sorted((_imports(p) & OURS) - allowed)
           for p in sorted((ROOT / package).glob("*.py")) if (_imports(p) & OURS) - allowed}
    assert not bad, bad


def test_library_errors_name_settings_and_the_cli_names_flags(cli, tmp_path):
    from printing import SheetSettings, make_sheet

    with pytest.raises(UserError, match="^size_mm must be a positive number") as e:
        make_sheet([tmp_path / "x.png"], SheetSettings(size_mm=-1))
    assert e.value.param == "size_mm"
    code, _, err = cli("print", tmp_path / "x.png", "--out", tmp_path / "s.pdf", "--size-mm", "-1")
    assert code == 2 and err.strip() == "error: --size-mm must be a positive number, not -1.0", err


GOAL_JSON = {"index": 8, "name": "hen", "mode": "targeted", "alternatives": []}


@pytest.mark.parametrize("cls", [PatchRecord, EvaluateReport, SweepRecord, CaptureSummary, OnePixelSummary],
                         ids=lambda c: c.__name__)
def test_every_record_writes_its_target_as_one_goal_object(cls):
    """patch.json, evaluate, sweep.json, capture's and one-pixel's summaries: the same {index,
    name, mode, alternatives} under "target", read back as a common.goal.Goal."""
    rec = cls.from_json({"target": GOAL_JSON})
    assert rec.target == Goal(8, True, "hen") and rec.to_json()["target"] == GOAL_JSON


def test_sheet_blocks_and_generate_rows_hold_a_goal_too():
    block = _sheet().blocks[0]
    assert block.to_json()["target"] == GOAL_JSON and BlockInfo.from_json(block.to_json()) == block
    row = GenerateSummary.from_json({"model": "digits", "targets": [
        {"target": GOAL_JSON, "held_out_success": 0.5, "mean_target_prob": 0.4, "best_step": 3, "steps_run": 4,
         "seconds": 1.0, "stopped": None, "folder": "hen"}]}).targets[0]
    assert row.target == Goal(8, True, "hen")


@pytest.mark.parametrize("cls, old", [
    (SweepRecord, {"target": {"index": 8, "name": "hen"}}),
    (OnePixelSummary, {"target": {"index": 8, "class": "hen"}}),
    (CaptureSummary, {"target": "hen", "target_index": 8}),
    (PatchRecord, {"target": {"index": 8, "name": "hen", "mode": None, "alternatives": []}}),
], ids=["sweep", "onepixel", "capture", "patch"])
def test_older_target_shapes_still_read(cls, old):
    rec = cls.from_json(old)
    assert rec.target == Goal(8, True, "hen") and rec.to_json()["target"] == GOAL_JSON


def test_older_sheet_blocks_with_flat_targets_still_read():
    flat = {**_sheet().blocks[0].to_json(), "target": "hen", "target_index": 8, "target_mode": "untargeted"}
    block = BlockInfo.from_json(flat)
    assert block.target == Goal(8, False, "hen") and "target_index" not in block.to_json()
    with pytest.raises(UserError, match="target"):
        SheetInfo.parse({**_sheet().to_json(), "blocks": [{**flat, "target_index": "eight"}]})


# --- library errors name parameters; the CLI maps them to flags (issue 31) ------------------------

FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
# Advice to run a command, written as its command line (`blocks print --no-markers`), may quote its flags.
COMMAND_LINE = re.compile(rf"\bblocks (?:{'|'.join(map(re.escape, COMMANDS))})\b")
# The only other library strings that quote flags, and why each is not a parameter of the command run.
QUOTES_FLAGS = {
    "blocks/__init__.py": ({"--help", "--version"}, "reads sys.argv before typer, to skip torch for --help"),
    "blocks/first_line.py": ({"--model", "--models"}, "reads sys.argv before typer, for the first line"),
    "blocks/distributed.py": ({"--nproc-per-node"}, "torchrun's flag, not one of ours"),
    "blocks/targets.py": ({"--target"}, "`blocks targets Q` says what the other commands' --target Q picks"),
}


def _strings(path: Path):
    """(line, text) of every string constant but docstrings; an f-string whole, {} for its values."""
    tree = ast.parse(path.read_text())
    skip = {id(n.body[0].value) for n in ast.walk(tree)
            if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and n.body
            and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    for n in ast.walk(tree):
        if isinstance(n, ast.JoinedStr):
            skip |= {id(v) for v in n.values}
            yield n.lineno, "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in n.values)
        elif isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in skip:
            yield n.lineno, n.value


def _quoted_flags(root: Path) -> list[str]:
    found, cli = [], {m.replace(".", "/") + ".py" for m in CLI_LAYER}  # the CLI's own modules speak flags
    for package in ("blocks", "capture", "common", "printing", "transforms"):
        for p in sorted((root / package).rglob("*.py")):
            rel = p.relative_to(root).as_posix()
            allowed = QUOTES_FLAGS.get(rel, ((), ""))[0]
            found += [f"{rel}:{line}: {m.group()} in {text!r}" for line, text in _strings(p) if rel not in cli
                      for m in FLAG.finditer(text)
                      if m.group() not in allowed and not COMMAND_LINE.search(text, 0, m.start())]
    return found


def test_library_strings_name_parameters_not_flags():
    """Library modules name settings (`size_mm`, `model=NAME`) and the CLI shows flags (blocks/exits.py),
    so a renamed flag cannot leave a stale line behind in the library. The rule: common/errors.py."""
    assert not _quoted_flags(ROOT), "\n".join(_quoted_flags(ROOT))


def test_the_flag_scan_sees_what_it_must(tmp_path):
    """The scan above finds a quoted flag in a string and an f-string, and lets docstrings, comments
    and command lines pass (so its silence on the product means something)."""
    (tmp_path / "capture").mkdir()
    (tmp_path / "capture/x.py").write_text('''"""Docstring: --fine."""
def f(n):
    """--fine too."""  # and --fine here
    a = "try --source FILE"
    b = f"camera {n}: or --source {n}"
    return a, b, f"`blocks print {n} --out x.pdf` makes one", "give --model"
''')
    assert [s.split(" in ")[0] for s in _quoted_flags(tmp_path)] == [
        "capture/x.py:4: --source", "capture/x.py:5: --source", "capture/x.py:6: --model"]


def test_the_cli_turns_named_settings_into_flags():
    """`name=VALUE` is the setting with its value wherever it stands; a bare name, its first whole word."""
    from blocks.exits import flag_message

    e = UserError("cannot download resnet50 weights; give weights=FILE or model=digits", param=("weights", "model"))
    assert flag_message(e) == "cannot download resnet50 weights; give --weights FILE or --model digits"
    e = UserError("fov_deg must be > 0 (runs/fov_deg/x.json)", param="fov_deg")
    assert flag_message(e) == "--fov must be > 0 (runs/fov_deg/x.json)"


# --- the import graph of blocks/: acyclic, and layered cli -> commands -> library -----------------

def test_blocks_has_no_import_cycle():
    graph = blocks_import_graph()
    assert "blocks.commands.generate" in graph and graph["blocks.cli"], "the graph found no modules"
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))
    assert _cycle({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]  # the check itself sees a cycle


# The CLI's own helpers (progress bars, errors -> exit codes, flag plumbing) sit in the CLI's layer:
# they serve the command line only, so no command or library module may import them.
CLI_LAYER = ("blocks.cli", "blocks.progress", "blocks.exits", "blocks.flags")


def _layer(module: str) -> int:
    """entry (blocks, blocks.__main__) 3, cli 2, commands 1, the library below 0."""
    if module in ("blocks", "blocks.__main__"):
        return 3
    return 2 if module in CLI_LAYER else 1 if module.startswith("blocks.commands") else 0


def test_blocks_generate_goes_down_the_layers():
    """From the CLI to patch.json (blocks.cli -> blocks.commands.generate -> the library) every import
    goes down: no library module imports a command or the CLI, and a command imports no other
    command but shared."""
    graph = blocks_import_graph()
    upward = sorted((a, b) for a, outs in graph.items() for b in outs if _layer(b) > _layer(a))
    assert not upward, upward
    across = sorted((a, b) for a, outs in graph.items() if _layer(a) == 1 for b in outs
                    if _layer(b) == 1 and b not in ("blocks.commands", "blocks.commands.shared"))
    assert not across, across
    reached, todo = set(), ["blocks.commands.generate"]
    while todo:
        m = todo.pop()
        if m not in reached:
            reached.add(m)
            todo += graph[m]
    assert "blocks.commands.generate" in graph["blocks.cli"]
    assert not {m for m in reached if _layer(m) >= 1} - {"blocks.commands", "blocks.commands.generate",
                                                          "blocks.commands.shared"}


def test_no_function_in_blocks_is_over_60_lines():
    long = [(str(p.relative_to(ROOT)), f.name, f.end_lineno - f.lineno + 1)
            for p in sorted((ROOT / "blocks").rglob("*.py")) for f in _functions(p) if f.end_lineno - f.lineno + 1 > 60]
    assert not long, long


# Issue 31: no function over 40 lines, no file over 400, in every product package; the
# file still being split elsewhere keeps the old 60-line limit until it lands.
SPLIT_LATER: set[str] = set()  # every product file is held to the limits now


def _held_to_40():
    return [p for package in ("blocks", "capture", "common", "printing", "transforms")
            for p in sorted((ROOT / package).rglob("*.py")) if str(p.relative_to(ROOT)) not in SPLIT_LATER]


def test_no_product_function_is_over_40_lines():
    long = [(str(p.relative_to(ROOT)), f.name, f.end_lineno - f.lineno + 1)
            for p in _held_to_40() for f in _functions(p) if f.end_lineno - f.lineno + 1 > 40]
    assert not long, long


def test_no_product_file_is_over_400_lines():
    big = [(str(p.relative_to(ROOT)), n) for p in _held_to_40() if (n := len(p.read_text().splitlines())) > 400]
    assert not big, big
