"""Every file the tool reads is hostile until checked: this is where input files are opened.

    check_input_file   the path is a regular file (not a FIFO, socket, folder or device), before
                       anything reads it: reading a named pipe would wait forever
    read_input_bytes   its bytes, with a size cap that holds even for files that lie about their
                       size (/proc, a file still growing)
    read_json_file     JSON and TOML: size cap before parsing, nesting depth cap, numbers finite,
    read_toml_file     integers of sane size (no 5,000-digit ints); every failure one UserError
                       line naming the file (and, for a record's field, common.records names it)

Outputs must never replace inputs: check_not_input refuses an output path that is, or is the
sidecar of, a file the command reads.
"""
from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path

from common.errors import UserError, first_line

MAX_RECORD_BYTES = 32 * 1024 * 1024  # sheet.json, colormap.json, ...: the largest real one is ~1 MB
MAX_TEXT_BYTES = 16 * 1024 * 1024  # labels, targets files
MAX_DEPTH = 32  # nesting of arrays/objects: real records nest 4 deep
MAX_INT = 2**53  # larger integers are not counts or pixels; 5,000 digits is an attack
_MAX_INT_DIGITS = 20


def _kind(mode: int) -> str | None:
    """What a non-regular file is, in words; None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def check_input_file(path: str | Path, what: str = "file") -> Path:
    """path must exist and be a regular file (symlinks followed): one UserError line otherwise,
    before anything opens it."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise UserError(f"{what} not found: {path}") from None
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read {what} {path}: {getattr(e, 'strerror', None) or e}") from None
    kind = _kind(mode)
    if kind is not None:
        raise UserError(f"{what} {path} is {kind}, not a regular file")
    return path


def is_regular_file(path: str | Path) -> bool:
    try:
        return _kind(os.stat(path).st_mode) is None
    except (OSError, ValueError):
        return False


def read_input_bytes(path: str | Path, what: str = "file", max_bytes: int = MAX_RECORD_BYTES) -> bytes:
    """A regular file's bytes, at most max_bytes: larger is one line saying how large."""
    path = check_input_file(path, what)
    try:
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as e:
        raise UserError(f"cannot read {what} {path}: {e.strerror or e}") from None
    if len(data) > max_bytes:
        raise UserError(f"{what} {path} is larger than {_size(max_bytes)} (the limit for this file); refused")
    return data


def read_input_text(path: str | Path, what: str = "file", max_bytes: int = MAX_TEXT_BYTES) -> str:
    data = read_input_bytes(path, what, max_bytes)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"cannot read {what} {path}: not UTF-8 text (byte {e.start})") from None


def _size(n: int) -> str:
    return f"{n / 2**20:g} MiB" if n >= 2**20 else f"{n} bytes"


# --- JSON and TOML ------------------------------------------------------------------------------

class _Bad(ValueError):
    pass


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > _MAX_INT_DIGITS:
        raise _Bad(f"an integer of {len(text.lstrip('-'))} digits")
    return int(text)


def _parse_float(text: str) -> float:
    v = float(text)
    if not math.isfinite(v):
        raise _Bad(f"a number out of range ({text[:20]}{'...' if len(text) > 20 else ''})")
    return v


def _parse_constant(text: str):
    raise _Bad(f"{text} (JSON numbers must be finite)")


def _json_depth(text: str) -> int:
    """Deepest nesting of [ and { outside strings, found without recursion (json's parser
    recurses, and a file nested a few thousand levels deep ended in RecursionError)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_DEPTH:
                    return deepest
        elif ch in "]}":
            depth -= 1
    return deepest


def check_tree(obj, where: str) -> None:
    """Parsed JSON/TOML: depth at most MAX_DEPTH, numbers finite, integers within +-MAX_INT."""
    stack = [(obj, 0, "")]
    while stack:
        v, depth, at = stack.pop()
        if depth > MAX_DEPTH:
            raise UserError(f"{where}: nested more than {MAX_DEPTH} levels deep")
        if isinstance(v, bool):
            continue
        if isinstance(v, int):
            if abs(v) > MAX_INT:
                raise UserError(f"{where}: field {at or 'the top level'} holds an integer out of range")
        elif isinstance(v, float):
            if not math.isfinite(v):
                raise UserError(f"{where}: field {at or 'the top level'} is not a finite number")
        elif isinstance(v, dict):
            stack.extend((x, depth + 1, f"{at}.{k}" if at else str(k)) for k, x in v.items())
        elif isinstance(v, (list, tuple)):
            stack.extend((x, depth + 1, f"{at}[{i}]") for i, x in enumerate(v))


def parse_json_text(text: str, where: str):
    """Strict JSON: depth, finite numbers, sane integers. where: how errors name the file."""
    if _json_depth(text) > MAX_DEPTH:
        raise UserError(f"cannot read {where}: nested more than {MAX_DEPTH} levels deep")
    try:
        data = json.loads(text, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_parse_constant)
    except _Bad as e:
        raise UserError(f"cannot read {where}: it holds {e}") from None
    except (ValueError, RecursionError) as e:  # json.JSONDecodeError is a ValueError
        raise UserError(f"cannot read {where}: not valid JSON ({first_line(e)})") from None
    check_tree(data, where)
    return data


def parse_toml_text(text: str, where: str):
    import tomllib

    try:
        data = tomllib.loads(text, parse_float=_parse_float)
    except _Bad as e:
        raise UserError(f"cannot read {where}: it holds {e}") from None
    except RecursionError:
        raise UserError(f"cannot read {where}: nested too deeply") from None
    except (ValueError, tomllib.TOMLDecodeError) as e:  # a 5,000-digit integer is a ValueError
        if "integer string conversion" in str(e):
            raise UserError(f"cannot read {where}: it holds an integer thousands of digits long") from None
        raise UserError(f"cannot read {where}: not valid TOML ({first_line(e)})") from None
    check_tree(data, where)
    return data


def read_json_file(path: str | Path, what: str = "file", max_bytes: int = MAX_RECORD_BYTES):
    """A JSON file, strictly (see the module's docstring)."""
    path = Path(path)
    return parse_json_text(read_input_text(path, what, max_bytes), f"{what} {path}")


def read_toml_file(path: str | Path, what: str = "file", max_bytes: int = MAX_RECORD_BYTES):
    path = Path(path)
    return parse_toml_text(read_input_text(path, what, max_bytes), f"{what} {path}")


# --- outputs never replace inputs ---------------------------------------------------------------

def _same(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return Path(os.path.abspath(a)) == Path(os.path.abspath(b))


SIDECAR_OF = (".png", ".pdf")  # patch.png's record is patch.json, sheet.pdf's is sheet.json


def sidecar_of(path: Path) -> Path | None:
    """The JSON record that lies beside an input (patch.png -> patch.json, sheet.pdf -> sheet.json):
    it describes the input, so it is as much an input as the file itself. Only one that exists: a
    photo has none, and a colour map or summary may be written under its name."""
    if path.suffix.lower() not in SIDECAR_OF:
        return None
    side = path.with_suffix(".json")
    return side if side.is_file() else None


def check_not_input(outputs, inputs, flag: str = "out") -> None:
    """Refuse, before any work, an output path (file or folder) that is one of the inputs, or an
    input's sidecar (sidecar_of): the same path, the same file under another name, or an input
    folder. outputs: paths, or (path, what) where `what` says how the path follows from the flag
    ("the sheet.json beside it")."""
    ins = [Path(p) for p in inputs if p is not None]
    sides = [(s, src) for src in ins if (s := sidecar_of(src)) is not None]
    for out in outputs:
        out, what = out if isinstance(out, tuple) else (out, None)
        if out is None:
            continue
        said = f"{flag} {out}" if what is None else f"{flag} ({what}, {out})"
        param = None if flag.startswith("-") else flag
        for src in ins:
            if _same(Path(out), src):
                raise UserError(f"{said} would overwrite the input {src}: write somewhere else", param=param)
        for side, src in sides:
            if _same(Path(out), side):
                raise UserError(f"{said} would overwrite {side}, the record beside the input {src}: "
                                f"write somewhere else", param=param)
