"""No input kills the process, and every number has a range that means something (issue 30):
each case is refused before the work, in one `error:` line naming the flag to lower. The memory
free is fixed (FREE) so the estimates refuse the same way on any machine; nothing here allocates
more than a few megabytes."""
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

import common.memory
from common.files import save_png

GIB = 2 ** 30
FREE = 4 * GIB  # what available_bytes answers in these tests


@pytest.fixture(autouse=True)
def fixed_memory(monkeypatch):
    monkeypatch.setattr(common.memory, "available_bytes", lambda device="cpu": FREE)


def uniform_png(w: int, h: int) -> bytes:
    """A real, decodable w x h PNG of one grey, built row by row (a few hundred kB for 8000 x 8000)."""
    import struct

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    comp = zlib.compressobj(9)
    row = b"\0" + b"\x80" * (3 * w)
    body = b"".join(comp.compress(row) for _ in range(h)) + comp.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", body) + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def d(tmp_path_factory):
    d = tmp_path_factory.mktemp("limits")
    ok, buf = cv2.imencode(".hdr", np.full((64, 64, 3), 0.5, np.float32))  # Radiance HDR, OpenCV decodes it
    assert ok
    (d / "hdr.png").write_bytes(buf.tobytes())
    (d / "big.png").write_bytes(uniform_png(8000, 8000))
    (d / "mid.png").write_bytes(uniform_png(3000, 3000))
    save_png(d / "ok.png", torch.rand(3, 16, 16))
    from blocks.cli import run

    assert run(["print", str(d / "ok.png"), "--out", str(d / "s.pdf")]) == 0
    assert run(["calibration-sheet", "--out", str(d / "calib.pdf")]) == 0
    return d


GEN = ["generate", "--model", "digits", "--target", "seven", "--steps", "1", "--batch", "2", "--eval-n", "2"]
OP = ["onepixel", "{ok}", "--model", "digits", "--out", "{d}/op"]
CAP = ["capture", "--model", "digits", "--target", "seven", "--source", "{ok}", "--headless", "--max-frames", "1"]
CAL = ["calibrate", "{ok}", "--sheet", "{d}/calib.json", "--out", "{d}/cm.json"]
SIM = ["simulate", "{d}/s.pdf", "--out", "{d}/still.png"]

# (arguments, start of the one error line). Exit code 2 for each.
CASES = [
    # images whose size cannot be read from their header: refused, in every reader
    (["evaluate", "{hdr}", "--model", "digits", "--target", "seven"], "error: cannot read image {hdr}: not an image, or a format whose size cannot be checked before decoding"),
    (["sweep", "{hdr}", "--model", "digits", "--target", "seven", "--out", "{d}/sw"], "error: cannot read image {hdr}: not an image, or a format whose size"),
    (["print", "{hdr}", "--out", "{d}/h.pdf"], "error: cannot read image {hdr}: not an image, or a format whose size"),
    (["onepixel", "{hdr}", "--model", "digits", "--out", "{d}/oph"], "error: cannot read image {hdr}"),
    (SIM + ["--scenes", "{hdr}"], "error: cannot read image {hdr}"),
    (GEN + ["--target", "eight", "--scenes", "{d}/hdrs", "--out", "{d}/gh"], "error: cannot read image {d}/hdrs/a.png"),
    (CAP[:6] + ["{hdr}"] + CAP[7:], "error: cannot read image {hdr}"),
    (["calibrate", "{hdr}", "--sheet", "{d}/calib.json", "--out", "{d}/cm.json"], "error: cannot read image {hdr}"),
    # memory, estimated before the work
    (["evaluate", "{big}", "--model", "digits", "--target", "seven"], "error: patch {big} (8000 x 8000 px) on 64 views at once needs about"),
    (["evaluate", "{mid}", "--model", "digits", "--target", "seven"], "error: patch {mid} (3000 x 3000 px) on 64 views at once needs about"),
    (["generate", "--target", "hen", "--batch", "1024", "--steps", "1", "--out", "{d}/g1"], "error: --batch 1024 at 224 px needs about"),
    (GEN + ["--patch-size", "2048", "--batch", "8", "--out", "{d}/g2"], "error: --patch-size 2048 with batch 8 needs about"),
    (SIM + ["--size", "8192x8192"], "error: --size 8192x8192 needs about"),
    (["onepixel", "{ok}", "--model", "digits", "--strategy", "paper", "--popsize", "100000", "--pixels", "1000", "--out", "{d}/op1"], "error: --popsize 100000 with --pixels 1000 on 1 images needs about"),
    # numbers with a range that means something
    (GEN + ["--max-seconds", "1e308"], "error: --max-seconds must be a number in [0, 604800], not 1e+308"),
    (CAP + ["--duration", "1e20"], "error: --duration must be a number in (0, 604800], not 1e+20"),
    (CAP[:-1] + ["100000000000000000000"], "error: --max-frames must be from 1 to 1000000000"),
    (OP + ["--popsize", "2000000000"], "error: --popsize must be from 5 (DE needs distinct donors) to 100000"),
    (OP + ["--maxiter", "100000000000000000000"], "error: --maxiter must be from 0 to 1000000"),
    (OP + ["--max-queries", "100000000000000000000"], "error: --max-queries must be 0 (default) or from 2 to 10000000000"),
    (OP + ["--pixels", "100000000000000000000"], "error: --pixels must be from 1 to 1048576"),
    (OP + ["--pixels", "100000"], "error: --pixels 100000 is more than the 32 x 32 = 1024 pixels of the images"),
    (OP + ["--batch", "100000000000000000000"], "error: --batch must be from 0 to 1024"),
    (CAL + ["--step", "100000000000000000000"], "error: --step must be from 1 to 1000000"),
    (CAL + ["--max-frames", "100000000000000000000"], "error: --max-frames must be from 1 to 100000"),
    (CAP[:6] + ["99999999999"] + CAP[7:], "error: camera index 99999999999 is out of range (0 to 255)"),
]


def _fill(text: str, d: Path) -> str:
    names = {p.stem: str(p) for p in d.iterdir() if p.is_file()}
    return text.format(d=d, **names)


@pytest.fixture(scope="module")
def hdrs(d):
    (d / "hdrs").mkdir(exist_ok=True)
    (d / "hdrs" / "a.png").write_bytes((d / "hdr.png").read_bytes())
    return d


@pytest.mark.parametrize("args, start", CASES, ids=[" ".join(c[0][:1] + c[0][-2:]) for c in CASES])
def test_refused_before_work(cli, hdrs, monkeypatch, args, start):
    d = hdrs
    if any(f in a for a in args for f in ("{hdr}", "hdrs", "{big}", "{mid}")):  # refused from the header
        monkeypatch.setattr(cv2, "imdecode", _never_decode)
    code, out, err = cli(*[_fill(a, d) for a in args])
    assert code == 2 and err.startswith(_fill(start, d)), err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def _never_decode(*a, **k):
    raise AssertionError("an image was decoded although it should be refused from its header")


def test_hdr_is_a_real_radiance_file_opencv_decodes(d):
    """The fixture is what it claims: OpenCV decodes it (so only our header check stops it)."""
    data = (d / "hdr.png").read_bytes()
    assert data.startswith(b"#?RADIANCE") or data.startswith(b"#?RGBE")
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None and img.shape == (64, 64, 3)


def test_8000_px_png_is_refused_from_its_header_in_evaluate(cli, d, monkeypatch):
    """8000 x 8000 is under the 64 MP header limit: it is the memory estimate that refuses it,
    before the file is decoded (main decoded it and was killed)."""
    import common.files

    monkeypatch.setattr(common.files, "from_bgr_uint8", _never_decode)
    monkeypatch.setattr(cv2, "imdecode", _never_decode)
    code, out, err = cli("evaluate", d / "big.png", "--model", "digits", "--target", "seven")
    assert code == 2 and "lower its side" in err, err


def test_defaults_fit_in_a_small_machine():
    """The estimates refuse what cannot fit, not what the defaults ask for on a 4 GiB machine."""
    from blocks import checks
    from common.memory import HEADROOM

    small = 4 * GIB * HEADROOM
    embedded = 8 * (checks.rgb_bytes(224) * checks.VIEW_COPIES["efficientnet_lite0"]
                    + checks.rgb_bytes(112) * checks.TEXTURE_COPIES)
    assert embedded < small / 4
    assert 64 * checks.rgb_bytes(112) * checks.EVAL_TEXTURE_COPIES < small / 4


def test_check_fits_says_what_to_lower(monkeypatch):
    from common.errors import UserError
    from common.memory import check_fits

    check_fits(FREE * 0.5, "a thing", "it")  # fits
    with pytest.raises(UserError, match=r"^a thing needs about 32 GiB, 4.0 GiB is free: lower it$"):
        check_fits(32 * GIB, "a thing", "it")
    monkeypatch.setattr(common.memory, "available_bytes", lambda device="cpu": None)
    check_fits(1e18, "a thing", "it")  # unknown: not refused


# --- fuzz: huge, NaN, negative numbers never give a traceback --------------------------------

NUMBERS = st.one_of(
    st.sampled_from(["nan", "inf", "-inf", "1e308", "1e20", "-1", "0", "2e9", "99999999999999999999999",
                     "-99999999999999999999999", "9223372036854775808", "1.5"]),
    st.integers(-2 ** 70, 2 ** 70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr))

FLAGS = {
    "generate": (GEN + ["--out", "{d}/gf"], ["--steps", "--batch", "--eval-n", "--patch-size", "--max-seconds",
                                             "--epsilon", "--seed", "--smooth", "--input-size"]),
    "onepixel": (OP, ["--pixels", "--popsize", "--maxiter", "--max-queries", "--batch", "--seed"]),
    "capture": (CAP[:-2], ["--max-frames", "--duration", "--reconnect", "--window", "--threshold"]),
    "simulate": (SIM, ["--frames", "--fps", "--block", "--seed"]),
    "calibrate": (CAL, ["--step", "--max-frames"]),
}


class _Reached(Exception):
    """Raised instead of the work: every check passed."""


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(command=st.sampled_from(sorted(FLAGS)), data=st.data(), value=NUMBERS)
def test_fuzz_number_flags(cli, d, monkeypatch, command, data, value):
    import blocks.commands.shared
    import capture.simulate

    def reached(*a, **k):
        raise _Reached

    monkeypatch.setattr(blocks.commands.shared, "load_model", reached)  # generate, onepixel, capture
    monkeypatch.setattr(capture.simulate, "simulate", reached)
    import capture.calibrate

    monkeypatch.setattr(capture.calibrate, "calibrate", reached)
    base, flags = FLAGS[command]
    flag = data.draw(st.sampled_from(flags))
    args = [_fill(a, d) for a in base] + [f"{flag}={value}"]
    try:
        code, out, err = cli(*args)
    except _Reached:
        return
    assert "Traceback" not in err, (args, err)
    assert code in (0, 2), (args, code, err)
    if code == 2:
        assert err.startswith("error:") and len(err.strip().splitlines()) == 1, (args, err)
