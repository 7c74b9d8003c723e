"""Ctrl-C, the same way in every command: the first one asks the run to stop and keep what it has
(a KeyboardInterrupt the command catches where it can), and any further Ctrl-C, or one that arrives
while files are being written, is held until those files are on disk.

Why: a second Ctrl-C a moment after the first is the usual reflex when nothing seems to happen,
and it must not kill the run while it writes its patch.
"""
from __future__ import annotations

import signal
import threading
import time
from contextlib import contextmanager


class _State:
    installed = False
    interrupted = False  # the first Ctrl-C has been raised; later ones are only counted
    writing = 0  # depth of writing() blocks
    held = 0  # Ctrl-Cs received while holding
    written: list = []  # files put in place during this command (write_together): whole on disk
    reporting = False  # the command has ended: signals are only counted (reporting())
    raised_at = 0.0  # when the KeyboardInterrupt was raised (time.monotonic)
    stopping = ""  # said at once on the first Ctrl-C (on_stop): what the command does now


STOPPING = "stopping: keeping what is done so far"  # the first Ctrl-C's line unless a command says more


_state = _State()

# SIGTERM (kill, a scheduler's stop) and SIGHUP (the terminal closed) mean the same as Ctrl-C:
# stop and keep the best so far, instead of dying with nothing kept.
SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


BURST_S = 1.0  # Ctrl-Cs this soon after the one raised are one keypress held down or mashed


def _on_sigint(signum, frame):
    now = time.monotonic()
    if _state.reporting or _state.writing or (_state.interrupted and (_state.held < 2 or now - _state.raised_at < BURST_S)):
        _state.held += 1  # the third Ctrl-C outside a write, after a second, is obeyed: the user means it
        return
    _state.interrupted = True
    _state.raised_at = now
    _say(_state.stopping or STOPPING)
    raise KeyboardInterrupt


def _say(line: str) -> None:
    """The first Ctrl-C is acknowledged at once (the run may take seconds to stop and keep its
    result): one line on stderr. A signal handler may interrupt a write to stderr (a progress
    bar's): the buffered stream then refuses a second write, and the line goes to the fd itself."""
    import os
    import sys

    try:
        sys.stderr.write("\n" + line + "\n")
        sys.stderr.flush()
    except (RuntimeError, OSError, ValueError, AttributeError):
        try:
            os.write(2, ("\n" + line + "\n").encode())
        except OSError:
            pass


def on_stop(line: str) -> None:
    """What the first Ctrl-C of this command will say it does now ("stopping: checking the best
    patch; Ctrl-C again to skip"); handle_interrupts resets it for each command."""
    _state.stopping = line


def reporting() -> None:
    """The command is over and says how it ended: from here on every signal is only counted (a
    burst of Ctrl-C never interrupts the last line with a KeyboardInterrupt traceback)."""
    _state.reporting = True


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def handle_interrupts(final: bool = False):
    """Install the rule above, for SIGINT, SIGTERM and SIGHUP alike, for the duration of one
    command (the CLI wraps every command). final: the process ends after the block (the `blocks`
    entry point): the signals are then ignored rather than given back to Python's default, so the
    last Ctrl-C of a burst cannot print a KeyboardInterrupt traceback on the way out."""
    if not _main_thread() or _state.installed:
        yield
        return
    old = {}
    for sig in SIGNALS:
        try:
            if sig != signal.SIGINT and signal.getsignal(sig) is signal.SIG_IGN:  # under nohup: stay deaf to SIGHUP
                continue
            old[sig] = signal.signal(sig, _on_sigint)
        except (OSError, ValueError):
            pass
    _state.installed, _state.interrupted, _state.held, _state.written = True, False, 0, []
    _state.reporting, _state.stopping = False, ""
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, signal.SIG_IGN if final else handler)
        _state.installed = False


def note_written(paths) -> None:
    """Files now whole on disk (common.files.write_together calls this after its renames)."""
    _state.written.extend(str(p) for p in paths)


def written() -> list[str]:
    """The files this command has put in place so far."""
    return list(_state.written)


def interrupted() -> bool:
    """Whether a Ctrl-C has been received during this command."""
    return _state.interrupted or _state.held > 0


@contextmanager
def holding():
    """Hold Ctrl-C until the block ends, then raise it, unless the run is already stopping because
    of an earlier Ctrl-C. Works outside the CLI too (main thread only). For files being written
    (`writing`), and for torch's import: a KeyboardInterrupt raised while its C++ extension runs
    Python callbacks aborts the whole process ("terminate called after throwing ...")."""
    if not _main_thread():
        yield
        return
    with handle_interrupts():  # a no-op when the CLI has installed it already
        _state.writing += 1
        try:
            yield
        finally:
            _state.writing -= 1
        if not _state.writing and _state.held and not _state.interrupted:
            _state.interrupted = True
            raise KeyboardInterrupt


writing = holding  # the files are on disk before a Ctrl-C is obeyed


@contextmanager
def listening():
    """After a first Ctrl-C, while the stopped run finishes what it may keep (generate's held-out
    check of the patch it wrote): the next Ctrl-C raises KeyboardInterrupt here instead of being
    held, so a second Ctrl-C skips the rest. One already held (pressed while the files were
    written) raises at once."""
    if not _main_thread() or not _state.installed:
        yield
        return
    if _state.held:
        raise KeyboardInterrupt
    was = _state.interrupted
    _state.interrupted = False
    try:
        yield
    finally:
        _state.interrupted = _state.interrupted or was
