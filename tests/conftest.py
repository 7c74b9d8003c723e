import pytest
import torch

from blocks.models import ModelSpec, load_classifier
from hostile_files import files  # noqa: F401  (a fixture: the folder of hostile files)

# One thread: the models here are small, and on a machine whose cores are shared two threads spend
# their time waiting on each other (measured: a 40-step generate test 24.7 s with two, 1.4 s with one).
torch.set_num_threads(1)


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


def read_video(path) -> list:
    """Every frame of a video file, decoded with OpenCV: (H, W, 3) uint8 BGR arrays."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames


@pytest.fixture
def check_annotated():
    """check(video, sources, n_frames, dropped=False): the annotated video capture wrote holds one
    frame per classified frame, of the source's size, each drawn over its own source frame: that
    frame is clearly the closest of all the source frames (a black, frozen or shuffled video fails).
    sources: the frames the loop read, BGR. dropped=True (a stream that skips frames): each video
    frame matches some source frame, in increasing order."""
    import numpy as np

    def check(video, sources, n_frames, dropped=False):
        frames = read_video(video)
        assert len(frames) == n_frames, (len(frames), n_frames)
        matched = []
        for i, f in enumerate(frames):
            assert f.shape == sources[0].shape
            d = np.array([np.abs(f.astype(np.int16) - s).mean() for s in sources])
            j = int(np.argmin(d)) if dropped else i
            # the overlay covers part of the frame, yet the own frame is clearly the closest
            # (measured: at most 0.74 of the next closest on the simulated clips)
            assert d[j] == d.min() and d[j] < 0.9 * np.delete(d, j).min(), (i, j, d[j], np.sort(d)[:3])
            matched.append(j)
        assert matched == sorted(set(matched))
        return frames

    return check
