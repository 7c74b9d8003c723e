"""Looking inside a model file before torch does. torch.export.load (any name, .pt2 or not)
dlopens the shared library of an AOTInductor package, and a library's constructor runs on dlopen,
before any check of ours or torch's could refuse it. So every file bound for torch.load,
torch.jit.load or torch.export.load is opened here first, as a zip when it is one, and refused
if it holds compiled code or a member none of those loaders reads."""
from __future__ import annotations

import re
import zipfile
from pathlib import Path

from common.errors import UserError, shown

# Names a dynamic loader or linker takes: x.so, x.so.1, x.dll, x.dylib, x.pyd, objects and archives.
NATIVE_NAME = re.compile(r"\.(so|dll|dylib|pyd|o|obj|a|lib|exe|bundle)(\.\d+)*$", re.IGNORECASE)
# The first bytes of ELF, Mach-O (both byte orders, 32/64-bit, fat) and PE files (MZ, checked further).
NATIVE_MAGIC = (b"\x7fELF", b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe", b"\xcf\xfa\xed\xfe",
                b"\xca\xfe\xba\xbe")
# What the loaders read below an archive's root folder: torch.save (data.pkl, data/N, ...),
# TorchScript (code/, constants.pkl, constants/, extra/, traced_inputs, the mobile format's
# bytecode and debug maps: the record names in libtorch) and torch.export (archive_format,
# models/, data/weights|constants|sample_inputs/, extra/). data/aotinductor/ is compiled code: never.
READ_TOP = {"data.pkl", "data", "byteorder", "version", ".data", ".format_version", ".storage_alignment",
            "archive_format", "archive_version", "models", "extra", "code", "constants.pkl", "constants",
            "traced_inputs", "traced_inputs.pkl", "bytecode.pkl", "mobile_debug_handles.pkl",
            "callstack_debug_map.pkl"}
READ_DATA = {"weights", "constants", "sample_inputs"}
MAX_MEMBERS = 200_000
HEAD = 4096  # bytes read from each member: enough for a magic number and a PE header's offset


def inspect_archive(path: Path, what: str = "model") -> None:
    """Raise UserError ("cannot load {what} {path}: ...; refused, nothing was executed") if the
    file is compiled code, or a zip holding compiled code or members no loader reads. A file that
    is no zip passes (a legacy pickle goes to torch.load weights_only=True, which runs nothing)."""
    reason = _reason(Path(path))
    if reason:
        raise UserError(f"cannot load {what} {shown(str(path))}: {reason}; refused, nothing was executed")


def _reason(path: Path) -> str | None:
    try:
        with open(path, "rb") as f:
            head = f.read(HEAD)
    except OSError:
        return None  # the loader's own check says what is wrong with the file
    if _is_native(head):
        return "it is a native library, not a model"
    if not zipfile.is_zipfile(path):
        # a zip Python cannot list, that torch might, is not inspected: refused
        unread = head.startswith(b"PK\x03\x04") or _torch_records(path)
        return "it is a zip archive that cannot be inspected" if unread else None
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
            if len(infos) > MAX_MEMBERS:
                return f"it holds {len(infos)} members (at most {MAX_MEMBERS})"
            names = [i.filename for i in infos]
            return (_native_name(names) or _by_content(z, infos) or _other_name(names)
                    or _unseen_by_zipfile(path, names))
    except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError, EOFError) as e:
        return f"its zip archive cannot be read ({type(e).__name__})"


def _native_name(names: list[str]) -> str | None:
    hit = next((n for n in names if NATIVE_NAME.search(n.rstrip("/"))), None)
    return f"it holds a native library ({shown(hit)})" if hit else None


def _other_name(names: list[str]) -> str | None:
    """An AOTInductor member (sources and metadata too: the loader compiles and links them), or
    a member no loader reads."""
    hit = next((n for n in names if "aotinductor" in n.lower()), None)
    if hit:
        return f"it is an AOTInductor package ({shown(hit)}), compiled code that runs when loaded"
    hit = next((n for n in names if not _read_by_loaders(n)), None)
    return f"it holds {shown(hit)}, which no model loader reads" if hit else None


def _read_by_loaders(name: str) -> bool:
    """Whether name (root/rest) is a member torch's loaders read: see READ_TOP."""
    parts = name.replace("\\", "/").split("/")
    if len(parts) < 2 or ".." in parts or name.startswith("/"):
        return False
    rest = [p for p in parts[1:] if p]
    if not rest:
        return True  # the root folder's own entry
    if rest[0] != "data" or len(rest) == 1:
        return rest[0] in READ_TOP
    return rest[1].isdigit() or rest[1] in READ_DATA


def _by_content(z: zipfile.ZipFile, infos: list[zipfile.ZipInfo]) -> str | None:
    """A member whose bytes are a native library, whatever its name."""
    for info in infos:
        if info.is_dir():
            continue
        with z.open(info) as f:
            if _is_native(f.read(HEAD)):
                return f"it holds a native library ({shown(info.filename)})"
    return None


def _is_native(head: bytes) -> bool:
    if head.startswith(NATIVE_MAGIC):
        return True
    if head.startswith(b"MZ") and len(head) >= 64:  # PE: "MZ", then "PE\0\0" where e_lfanew points
        at = int.from_bytes(head[60:64], "little")
        return head[at:at + 4] == b"PE\0\0"
    return False


def _unseen_by_zipfile(path: Path, names: list[str]) -> str | None:
    """torch reads zips with its own reader (miniz): a member it lists that Python's zipfile does
    not was never inspected."""
    seen = {n.split("/", 1)[1] for n in names if "/" in n}
    unseen = [r for r in _torch_records(path) if r not in seen]
    return f"torch reads a member the inspection did not ({shown(unseen[0])})" if unseen else None


def _torch_records(path: Path) -> list[str]:
    """The members torch's zip reader lists (below the root folder); none if it cannot open the file,
    and then torch's loaders cannot either (they fail without running anything)."""
    import torch

    try:
        return list(torch._C.PyTorchFileReader(str(path)).get_all_records())
    except Exception:
        return []
