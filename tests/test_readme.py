"""The README and docs/*.md: their Python examples run as written (few steps), so the documented API
cannot drift; the README stays a short front door that links every doc; no link points nowhere."""
import re
from pathlib import Path

import pytest

from blocks.models.digits import load_digits_rgb
from common.files import save_png

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS]
# (file, i, code): every ```python block of the README and of docs/*.md
BLOCKS = [(page.relative_to(ROOT).as_posix(), i, code)
          for page in PAGES
          for i, code in enumerate(re.findall(r"```python\n(.*?)```", page.read_text(), re.S))]


def test_readme_has_python_examples():
    assert len(BLOCKS) >= 2
    assert {name for name, _, _ in BLOCKS} >= {"docs/generate.md", "docs/printing.md"}


@pytest.mark.parametrize("name,i,code", BLOCKS, ids=[f"{name}-{i}" for name, i, _ in BLOCKS])
def test_readme_python_example_runs(name, i, code, tmp_path, monkeypatch, capsys):
    # Keep the suite fast: the generate example's 200 steps become 5. Nothing else is changed.
    fast = re.sub(r"steps=\d+", "steps=5", code)
    monkeypatch.chdir(tmp_path)
    # the examples refer to the quick start's patch
    x, _ = load_digits_rgb("test")
    save_png(tmp_path / "runs/quickstart/patch.png", x[0][:, :16, :16])
    namespace = {"__name__": "__readme__"}
    exec(compile(fast, f"{name} python block {i}", "exec"), namespace)
    if "generate_patch" in code:
        rate = float(capsys.readouterr().out.strip().splitlines()[-1])
        # the printed figure is the documented evaluation of the patch that was made, and that patch
        # does better than the black one it started from
        from blocks.evaluate import evaluate_patch
        from transforms import preset

        model, target, patch = namespace["model"], namespace["target"].index, namespace["result"].patch
        assert rate == evaluate_patch(model, patch, preset("print"), target).success_rate
        black = evaluate_patch(model, patch * 0, preset("print"), target)
        assert rate > black.success_rate, (rate, black.success_rate)
        assert namespace["result"].patch.shape == (3, 16, 16)
        assert namespace["result"].patch.abs().sum() > 0  # moved off black in 5 steps
    if "make_sheet" in code:
        assert (tmp_path / "cube.pdf").is_file() and (tmp_path / "cube.json").is_file()
        assert len(namespace["info"].blocks) == 6  # one entry per cube face
        page = namespace["page"]
        assert page.dtype.name == "uint8" and page.shape[2] == 3
        assert abs(page.shape[1] / 600 * 25.4 - 210) < 1  # A4 width at 600 dpi


def _links(page: Path):
    """The targets of a page's markdown links and images, outside code blocks and code spans."""
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    text = re.sub(r"`[^`\n]*`", "", text)
    return re.findall(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", text)


def _anchors(page: Path):
    """GitHub's heading anchors of a page."""
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    heads = re.findall(r"^#+ +(.+?) *$", text, re.M)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in heads}


def test_readme_is_a_front_door_that_links_every_doc():
    lines = README.read_text().splitlines()
    assert len(lines) <= 220, len(lines)
    linked = {(README.parent / t.split("#")[0]).resolve() for t in _links(README)}
    missing = [d.name for d in DOCS if d.resolve() not in linked]
    assert DOCS and not missing, missing
    # the two quick-start commands, exactly
    assert "pip install -e . && blocks generate --target chicken\n" in README.read_text()
    assert 'pip install -e ".[test]" && python -m pytest\n' in README.read_text()


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(ROOT).as_posix() for p in PAGES])
def test_relative_links_point_to_existing_files(page):
    bad = []
    for target in _links(page):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            bad.append(target)
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            bad.append(target)
    assert not bad, bad
