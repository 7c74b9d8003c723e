"""Which product files a command's run executes code in (issue 31: "a generate run touches at most
15 product files"): every function, method or comprehension called while the command runs,
counted by file, module-level code and class bodies (imports) left out.

    python scripts/touched_files.py generate --target chicken --steps 2   # any `blocks` argv
"""
from __future__ import annotations

import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("blocks", "transforms", "printing", "capture", "common")
CO_OPTIMIZED = 1  # set on function code objects, not on module or class bodies


def touched(argv: list[str]) -> dict[str, set[str]]:
    """argv (a `blocks` command line, --out added) -> {product file: names of what ran there}."""
    from blocks.cli import run

    seen: dict[str, set[str]] = {}

    def profile(frame, event, arg):
        code = frame.f_code
        if event != "call" or not code.co_flags & CO_OPTIMIZED:
            return
        path = Path(code.co_filename)
        if path.is_relative_to(ROOT) and path.relative_to(ROOT).parts[0] in PACKAGES:
            seen.setdefault(str(path.relative_to(ROOT)), set()).add(code.co_name)

    with tempfile.TemporaryDirectory() as out:
        sys.setprofile(profile)
        threading.setprofile(profile)
        try:
            run([*argv, "--out", str(Path(out) / "run")])
        finally:
            sys.setprofile(None)
            threading.setprofile(None)
    return seen


def main() -> None:
    seen = touched(sys.argv[1:] or ["generate", "--target", "chicken", "--steps", "2"])
    for path in sorted(seen):
        print(f"{path:40s} {len(seen[path]):3d} {', '.join(sorted(seen[path])[:5])}")
    print(f"{len(seen)} product files")


if __name__ == "__main__":
    main()
