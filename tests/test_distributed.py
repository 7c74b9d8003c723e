"""torchrun: 2 CPU ranks with gloo on 127.0.0.1, the bundled digits model, a few steps."""
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from blocks.distributed import share

HERE = Path(__file__).parent
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "120", "PYTHONWARNINGS": "ignore"}


def test_share_splits_every_view_once():
    for n in range(1, 12):
        for world in range(1, n + 1):
            parts = [share(n, world, r) for r in range(world)]
            assert sum(parts) == n and max(parts) - min(parts) <= 1 and min(parts) >= 1


def test_two_ranks_same_gradient_and_same_patch(tmp_path):
    """The all-reduced gradient equals the one-batch gradient of the same views, and every rank
    ends with the same patch."""
    report = tmp_path / "report.json"
    proc = subprocess.run([*TORCHRUN, str(HERE / "dist_worker.py"), str(report)], env=ENV,
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(report.read_text())
    assert r["grad_max_abs_diff"] <= 1e-5 * max(r["grad_max_abs"], 1e-3), r
    assert r["grad_sign_agree"] == 1.0
    assert r["patches_identical"] and r["steps_run"] == 12


GEN = ["generate", "--model", "digits", "--target", "seven", "--steps", "20", "--batch", "8",
       "--eval-n", "256", "--device", "cpu", "--seed", "2", "--eot", "print"]


def test_torchrun_cli_matches_one_process(cli, tmp_path):
    """`torchrun -m blocks generate`: only rank 0 writes, and its patch scores like a 1-rank run's."""
    proc = subprocess.run([*TORCHRUN, "-m", "blocks", *GEN, "--out", str(tmp_path / "two")], env=ENV,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("held-out success") == 1  # rank 0 alone reports
    two = json.loads((tmp_path / "two/patch.json").read_text())
    code, _, err = cli(*GEN, "--out", tmp_path / "one")
    assert code == 0, err
    one = json.loads((tmp_path / "one/patch.json").read_text())
    assert two["ranks"] == 2 and one["ranks"] == 1 and two["steps_run"] == one["steps_run"] == 20
    a, b = two["held_out"]["success_rate"], one["held_out"]["success_rate"]
    assert a > 0.5 and abs(a - b) < 0.15, (a, b)  # same budget, different views: within noise
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == ["curve.png", "patch.json", "patch.png"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch_by_hand(args_per_rank, tmp_path):
    """Start the ranks the way torchrun would on two nodes (its environment variables), so each
    rank can be given its own flags."""
    port, world = _free_port(), len(args_per_rank)
    procs = []
    for rank, args in enumerate(args_per_rank):
        env = {**ENV, "RANK": str(rank), "LOCAL_RANK": "0", "WORLD_SIZE": str(world),
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
        procs.append(subprocess.Popen([sys.executable, "-m", "blocks", *args], env=env, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    return [(p.wait(timeout=240), *p.communicate()) for p in procs]


@pytest.mark.parametrize("case", ["seed", "model", "batch"])
def test_bad_input_one_line_from_rank_0_every_rank_fails(tmp_path, case):
    out = tmp_path / "o"
    base = ["generate", "--model", "digits", "--target", "seven", "--steps", "3", "--batch", "4",
            "--device", "cpu", "--out", str(out)]
    if case == "seed":
        ranks = [base + ["--seed", "0"], base + ["--seed", "3"]]
        needle = "--seed is 0 on rank 0 but 3 on rank 1"
    elif case == "model":
        ranks = [base, base + ["--weights", str(tmp_path / "missing.pt")]]
        needle = "rank 1: weights file not found"
    else:
        ranks = [base + ["--batch", "1"]] * 2
        needle = "--batch 1 is smaller than the 2 ranks"
    results = _launch_by_hand(ranks, tmp_path)
    (code0, _, err0), (code1, _, err1) = results
    assert code0 == 2 and code1 == 2, results
    assert needle in err0 and err0.count("\n") == 1 and "Traceback" not in err0, err0
    assert err1 == "", err1
    assert not out.exists()


def test_many_targets_one_job(cli, tmp_path):
    """Repeated --target plus a targets file: one folder per target, one summary table and JSON."""
    (tmp_path / "targets.txt").write_text("three\n# a comment\n\n5\n")
    out = tmp_path / "o"
    code, stdout, err = cli("generate", "--model", "digits", "--target", "seven", "--targets-file",
                            tmp_path / "targets.txt", "--steps", "3", "--batch", "4", "--eval-n", "16",
                            "--device", "cpu", "--out", out)
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["3-three", "5-five", "7-seven", "summary.json"]
    rows = json.loads((out / "summary.json").read_text())["targets"]
    assert [r["target"]["index"] for r in rows] == [7, 3, 5]
    for r in rows:
        meta = json.loads((Path(r["folder"]) / "patch.json").read_text())
        assert meta["target"]["index"] == r["target"]["index"] and r["held_out_success"] == meta["held_out"]["success_rate"]
    assert sum(line.split()[0] in ("seven", "three", "five") for line in stdout.splitlines()) >= 3


@pytest.mark.parametrize("args, needle", [
    (["--target", "seven", "--target", "7"], "asked for twice"),
    (["--targets-file", "/nonexistent.txt"], "--targets-file not found: /nonexistent.txt"),
    (["--target", "seven", "--target", "one", "--away-from", "two"], "exactly one"),
])
def test_many_targets_bad_input(cli, tmp_path, args, needle):
    code, _, err = cli("generate", "--model", "digits", "--steps", "1", "--device", "cpu",
                       "--out", tmp_path / "o", *args)
    assert code == 2 and needle in err and err.count("\n") == 1, err
    assert not (tmp_path / "o").exists()


def test_ctrl_c_and_time_limit_are_agreed(tmp_path):
    """SIGINT to every rank (as a terminal's Ctrl-C does): all stop at the same step, rank 0 keeps
    the best patch, every rank exits 130. A time limit on 2 ranks ends the run normally."""
    import signal
    import time

    out = tmp_path / "run"
    args = ["generate", "--model", "digits", "--target", "seven", "--steps", "100000", "--batch", "4",
            "--device", "cpu", "--out", str(out)]
    port = _free_port()
    procs = [subprocess.Popen([sys.executable, "-m", "blocks", *args], text=True, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE,
                              env={**ENV, "RANK": str(r), "LOCAL_RANK": str(r), "WORLD_SIZE": "2",
                                   "TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "1",
                                   "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
             for r in range(2)]
    seen = ""
    deadline = time.time() + 120
    # rank 0's live progress bar past step 0: the loop is running (the bar redraws at its own
    # rate, so which step numbers it shows depends on the machine's speed)
    while time.time() < deadline and not re.search(r"step [1-9]\d*/", seen) and procs[0].poll() is None:
        seen += _peek(procs[0])
    for p in procs:
        p.send_signal(signal.SIGINT)
    # communicate, not wait: rank 0's progress bar must not fill its pipe and stall it
    results = [(p.returncode, *out) for p, out in ((p, p.communicate(timeout=120)) for p in procs)]
    assert [r[0] for r in results] == [130, 130], results
    meta = json.loads((out / "patch.json").read_text())
    assert meta["stopped"] == "interrupted" and meta["steps_run"] > 0 and meta["ranks"] == 2
    assert "Traceback" not in results[0][2] + results[1][2]

    proc = subprocess.run([*TORCHRUN, "-m", "blocks", *args[:-1], str(tmp_path / "timed"), "--max-seconds", "3",
                           "--eval-n", "8"], env=ENV, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((tmp_path / "timed/patch.json").read_text())["stopped"] == "time"


def _peek(proc) -> str:
    """What rank 0 has printed in the next half second (its progress bar redraws without newlines)."""
    import select

    if select.select([proc.stdout], [], [], 0.5)[0]:
        return os.read(proc.stdout.fileno(), 65536).decode(errors="replace")
    return ""


def test_solo_group_stands_in_for_group():
    """A single-process run passes SoloGroup where torchrun passes Group: it has everything Group
    has, and does each thing for one process."""
    import torch

    from blocks.distributed import Group, SoloGroup

    public = {n for n in dir(Group) if not n.startswith("_")} | set(Group.__dataclass_fields__)
    assert not {n for n in public if not hasattr(SoloGroup, n)}
    solo, t = SoloGroup(), torch.ones(3)
    assert solo.all_sum(t) is t and solo.gather("x") == ["x"] and solo.agree(lambda a: a + 1, 1) == 2
    assert (solo.rank, solo.world, solo.is_main, solo.alone, solo.stop_requested) == (0, 1, True, True, False)
    assert solo.device("auto") == "auto" and solo.stop_before_step(lambda: 5.0, 5.0) == "time"
    with solo.interrupts():
        assert solo.stop_before_step(lambda: 1 / 0, None) is None  # no limit: the clock is not read
