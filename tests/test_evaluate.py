"""blocks.evaluate: judging a patch on fresh random views (its own seed), binned by scale, rotation
and, for whole frames, coverage; and the `blocks evaluate` command that prints and writes it."""
import json

import pytest
import torch

from blocks.evaluate import COVERAGE_EDGES, coverage_bins, evaluate_patch, rounded, works_from
from transforms import preset


def test_evaluate_prints_a_summary_and_json_only_when_asked(cli, tmp_path):
    """`blocks evaluate`: a bar on stderr, then generate's kind of line (success by coverage for
    whole frames); JSON with --json (rounded to what n views resolve; by_coverage, no by_scale
    beside it: they bin the same number) and with --out."""
    from common.files import save_png

    save_png(tmp_path / "patch.png", torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(0)))
    args = ("evaluate", tmp_path / "patch.png", "--model", "digits", "--target", "seven", "--n", "48", "--device", "cpu")
    code, out, err = cli(*args)
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0].startswith("seven: success ") and "over 48 views of whole camera frames" in lines[0], out
    assert lines[1].startswith("  whole-frame success by coverage") and "{" not in out, out
    assert "evaluate" in err and "48/48" in err  # the bar, on stderr
    code, out, err = cli(*args, "--json", "--out", tmp_path / "e.json")
    assert code == 0, err
    report = json.loads(out)
    assert report == json.loads((tmp_path / "e.json").read_text())
    assert "by_scale" not in report and sum(b["n"] for b in report["by_coverage"].values()) == 48

    def decimals(v):
        return len(repr(v).split(".")[1]) if isinstance(v, float) and "." in repr(v) else 0

    figures = [report["success_rate"], report["mean_target_prob"],
               *(b[k] for b in report["by_coverage"].values() for k in ("success_rate", "mean_target_prob"))]
    assert max(decimals(v) for v in figures) <= 3, figures  # 48 views: 3 decimals


def test_coverage_bins_are_fixed_and_clamped_to_the_edges():
    bins = coverage_bins([0.05, 0.1, 0.25, 0.999, 1.0, 3.0])
    assert [label for _, label in bins] == ["0.1-0.15", "0.1-0.15", "0.2-0.3", "0.8-1", "0.8-1", "0.8-1"]
    assert [key for key, _ in bins] == [0.1, 0.1, 0.2, 0.8, 0.8, 0.8] and COVERAGE_EDGES[0] == 0.1


def test_works_from_is_the_smallest_bin_from_which_every_larger_one_wins():
    rows = {"0.1-0.15": 0.2, "0.15-0.2": 0.95, "0.2-0.3": 0.5, "0.3-0.4": 0.95, "0.4-0.5": 1.0}
    by = {k: {"success_rate": v} for k, v in rows.items()}
    assert works_from(by, rate=0.9) == 0.3  # 0.15-0.2 wins, but 0.2-0.3 above it does not
    assert works_from(by, rate=0.1) == 0.1 and works_from({"0.4-0.5": {"success_rate": 0.2}}, rate=0.9) is None


def test_rounded_keeps_every_step_n_views_resolve():
    assert rounded({"a": [1 / 3, 2], "b": (0.123456,)}, 48) == {"a": [0.333, 2], "b": (0.123,)}
    assert rounded(1 / 3, 512) == 0.3333 and rounded("x", 5) == "x"


def test_same_seed_same_figures_and_the_bins_count_every_view(digits_model):
    patch = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(0))
    eot = preset("print", (0.4, 0.6))
    a = evaluate_patch(digits_model, patch, eot, 7, n=24, seed=5, batch=8)
    b = evaluate_patch(digits_model, patch, eot, 7, n=24, seed=5, batch=8)
    assert a.to_dict() == b.to_dict()
    assert sum(v["n"] for v in a.by_scale.values()) == 24 and a.by_coverage is None
    lo = min(float(k.split("-")[0]) for k in a.by_scale)
    assert lo == pytest.approx(0.4)  # the scale bins start at the preset's range
    c = evaluate_patch(digits_model, patch, eot, 7, n=24, seed=6, batch=8)
    assert c.mean_target_prob != a.mean_target_prob  # another seed: other views
