"""The README's Python examples run as written (few steps), so the documented API cannot drift."""
import re
from pathlib import Path

import pytest

from blocks.digits import load_digits_rgb
from common.files import save_png

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_readme_has_python_examples():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("i", range(len(BLOCKS)))
def test_readme_python_example_runs(i, tmp_path, monkeypatch, capsys):
    code = BLOCKS[i]
    # Keep the suite fast: the generate example's 200 steps become 5. Nothing else is changed.
    fast = re.sub(r"steps=\d+", "steps=5", code)
    monkeypatch.chdir(tmp_path)
    # the examples refer to the quick start's patch
    x, _ = load_digits_rgb("test")
    save_png(tmp_path / "runs/quickstart/patch.png", x[0][:, :16, :16])
    namespace = {"__name__": "__readme__"}
    exec(compile(fast, f"README.md python block {i}", "exec"), namespace)
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
