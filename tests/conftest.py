import pytest
import torch

from blocks.models import ModelSpec, load_classifier

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def digits_model():
    return load_classifier(ModelSpec(name="digits"), device="cpu")


@pytest.fixture
def cli(capsys):
    """Run `blocks ARGS...` in-process; returns (exit_code, stdout, stderr)."""
    from blocks.cli import run

    def invoke(*args):
        code = run([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    return invoke
