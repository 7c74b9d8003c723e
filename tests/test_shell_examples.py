"""Every shell command of README.md and docs/*.md runs as written, in order, in one empty folder:
the README first (its quick start's output is what the later commands use), then the docs in
PAGES order. A reader who types them one after another gets what the text says.

Run in-process (`blocks.cli.run(shlex.split(line)[1:])`, each line's exit code and last line
checked). One thing differs from a reader's run, to keep the suite fast: the run LENGTH. The
fixture `short_runs` sets the defaults of generate's steps (240 -> 2) and held-out views
(eval_n -> 16), evaluate's views (n -> 16) and the one-pixel DE's generations (maxiter -> 3)
where a line does not give them; every flag a
line writes is used as written. Lines that cannot run here are listed in SKIP with the reason,
and lines whose result depends on the patch being trained for the full length in EXPECT_FAIL
(they are run, and must fail with the line the reader would then see).
"""
import re
import shlex
from dataclasses import replace
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# the order the pages are run in, after README.md (each may use what earlier pages wrote)
PAGES = ["generate.md", "printing.md", "capture.md", "physical.md", "models.md", "ensembles.md",
         "scaling.md", "calibration.md", "onepixel.md", "robustness.md", "design.md"]
SHORT = {"steps": 2, "eval_n": 16, "n": 16, "maxiter": 3}  # the run-length defaults the fixture shortens

# (pattern, reason): lines that are not run here
SKIP = [
    (r"^(pip|python3? -m venv)\b|^python -m pytest", "installs or runs the test suite: the suite is what runs this"),
    (r"--source 0\b", "needs a webcam (capture's loop is tested on video files in tests/test_capture.py)"),
    (r"--source (http|rtsp)://", "needs a phone's stream on the network (streams: tests/test_sources.py)"),
    (r"--source screen", "needs a display (the screen source: tests/test_sources.py)"),
    (r"--nproc-per-node [48]\b|--nnodes", "needs 4 or 16 GPUs"),
    (r"^torchrun --standalone", "two processes for 240 steps; tests/test_distributed.py runs torchrun with gloo on CPU"),
    (r"--model (resnet50|timm:)", "weights from the torch or timm cache, which a fresh machine offline lacks"),
    (r"my_net\.pt2|my_resnet\.pt", "the reader's own model file (.pt2 and state dicts: tests/test_models.py)"),
    (r"runs/zoo/", "the digits zoo that bench/transfer.py trains (91 s; tests/test_ensemble.py builds a small one)"),
]
# (pattern, what stderr says): run, and expected to fail with exit 2 for the 2-step patch
EXPECT_FAIL = [
    (r"--distance", "needs whole-frame patches whose held-out check won"),  # test_held.py: on one that did
]


def shell_lines(page: Path) -> list[str]:
    """The commands of a page's fenced code blocks (bash or unlabelled; not python, json, toml,
    nor output), continuation lines joined; `a && b` gives a and b."""
    found = []
    for lang, body in re.findall(r"^```(\w*)\n(.*?)^```", page.read_text(), re.S | re.M):
        if lang not in ("", "bash", "sh", "shell"):
            continue
        for line in body.replace("\\\n", " ").splitlines():
            for part in line.strip().split(" && "):
                part = part.strip()
                if re.match(r"(blocks|torchrun|python3?|pip)\b", part):
                    found.append(part)
    return found


LINES = [(name, line) for name in ["README.md", *PAGES]
         for line in shell_lines(ROOT / ("README.md" if name == "README.md" else f"docs/{name}"))]


def rule(line: str, table):
    return next((reason for pattern, reason in table if re.search(pattern, line)), None)


def test_every_page_is_in_the_order_and_has_commands():
    assert sorted(PAGES) == sorted(p.name for p in (ROOT / "docs").glob("*.md"))
    run = [line for _, line in LINES if not rule(line, SKIP)]
    assert len(run) >= 30, run
    assert ("README.md", "blocks generate --target chicken") in LINES[:6]  # the quick start, first


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("reader")


@pytest.fixture
def short_runs(monkeypatch):
    """Only the run length changes: where a line leaves a SHORT field at its default, SHORT's
    value (see the module docstring)."""
    import dataclasses

    from blocks import cli

    real = cli.settings

    def settings(cls, values, ignore=(), **parsed):
        made = real(cls, values, ignore, **parsed)
        return _shortened(made, {f.name: _default_of(f) for f in dataclasses.fields(cls)})

    monkeypatch.setattr(cli, "settings", settings)


def _default_of(f):
    import dataclasses

    if f.default is not dataclasses.MISSING:
        return f.default
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else dataclasses.MISSING


def _shortened(made, defaults: dict):
    """made with each SHORT field that is still at its default set to SHORT's value, nested
    settings (GenerateRun.attack.steps) included."""
    import dataclasses

    short = {}
    for f in dataclasses.fields(made):
        value, default = getattr(made, f.name), defaults.get(f.name, dataclasses.MISSING)
        if f.name in SHORT and value == default:
            short[f.name] = SHORT[f.name]
        elif dataclasses.is_dataclass(value) and dataclasses.is_dataclass(default):
            inner = _shortened(value, {g.name: getattr(default, g.name) for g in dataclasses.fields(default)})
            if inner is not value:
                short[f.name] = inner
    return replace(made, **short) if short else made


@pytest.mark.parametrize("page,line", LINES, ids=[f"{p}: {line[:70]}" for p, line in LINES])
def test_shell_example_runs_as_written(page, line, folder, short_runs, monkeypatch, capsys):
    from blocks.cli import run

    reason = rule(line, SKIP)
    if reason:
        pytest.skip(reason)
    monkeypatch.chdir(folder)
    argv = shlex.split(line, comments=True)
    assert argv[0] == "blocks", line  # python/torchrun lines are all in SKIP
    code = run(argv[1:])
    out, err = capsys.readouterr()
    fails = rule(line, EXPECT_FAIL)
    if fails:
        assert code == 2 and fails in err and err.count("\n") == 1, (line, err)
        return
    assert code == 0, (line, err[-2000:])
    assert "Traceback" not in err


def test_the_examples_write_only_under_runs(folder):
    """Run after the examples: everything they wrote lies under runs/ (ignored by git), nothing in
    the clone's root."""
    if not any(folder.iterdir()):
        pytest.skip("the examples did not run (selected alone)")
    stray = sorted(p.name for p in folder.iterdir() if p.name != "runs")
    assert not stray, stray
    assert "runs/" in (ROOT / ".gitignore").read_text().splitlines()
