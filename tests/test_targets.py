import pytest

from common.errors import UserError
from blocks.targets import resolve_target, search_targets


@pytest.fixture(scope="module")
def imagenet():
    from torchvision.models import ResNet50_Weights

    return list(ResNet50_Weights.DEFAULT.meta["categories"])


def test_chicken_is_hen_with_cock_alternative(imagenet):
    t = resolve_target("chicken", imagenet)
    assert (t.index, t.name) == (8, "hen")
    assert t.alternatives == ["cock"]


def test_index_and_exact_name(imagenet):
    assert resolve_target("7", imagenet).name == "cock"
    assert resolve_target("Giant Panda", imagenet).index == imagenet.index("giant panda")


def test_substring_is_only_a_suggestion(imagenet):
    with pytest.raises(UserError, match=r"prairie chicken \(83\)"):
        resolve_target("prairie", imagenet)


def test_unknown_target_suggests_close_names(imagenet):
    with pytest.raises(UserError, match="did you mean: .*toaster"):
        resolve_target("toastr", imagenet)


def test_out_of_range_index(imagenet):
    with pytest.raises(UserError, match="out of range"):
        resolve_target("1000", imagenet)


def test_search_lists_alias_first(imagenet):
    hits = search_targets("chicken", imagenet)
    assert hits[:3] == [(8, "hen"), (7, "cock"), (83, "prairie chicken")]


def test_cli_targets(cli):
    code, out, _ = cli("targets", "chicken")
    lines = out.splitlines()
    assert code == 0 and lines[0] == "--target chicken picks 8 hen (alternatives: 7 cock); matching classes:"
    assert lines[1].split() == ["8", "hen"]
    code, _, err = cli("targets", "chiken", "--model", "digits")
    assert code == 2 and err.startswith("error:") and err.count("\n") == 1
    code, out, _ = cli("targets", "seven", "--model", "digits")
    assert code == 0 and out.splitlines()[1:] == ["    7  seven"]
    code, out, _ = cli("targets", "chiken")
    assert out.splitlines()[0].startswith("--target chiken picks no class") and out.splitlines()[1].split() == ["8", "hen"]


def test_misspelt_alias_word_ranks_its_class_first(imagenet):
    """'chiken' is one letter from the word chicken: hen, before chime and chain."""
    with pytest.raises(UserError, match=r"did you mean: hen \(8\), "):
        resolve_target("chiken", imagenet)
    with pytest.raises(UserError, match=r"did you mean: toaster \(859\)"):
        resolve_target("toastr", imagenet)


def test_imagenet_names_are_read_without_importing_torch(imagenet):
    """The embedded model's class names come from torchvision's source as a literal: the same
    list, and a misspelt target is answered by the CLI before torch is imported."""
    import subprocess
    import sys

    from blocks.models.labels import imagenet_labels

    assert imagenet_labels() == imagenet
    code = ("import sys; from blocks.cli import run; c = run(['generate', '--target', 'chiken']); "
            "print(c, 'torch' in sys.modules, 'torchvision' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["2", "False", "False"], done.stdout + done.stderr
    assert "did you mean: hen (8)" in done.stderr
