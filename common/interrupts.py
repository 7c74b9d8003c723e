"""Ctrl-C, the same way in every command: the first one asks the run to stop and keep what it has
(a KeyboardInterrupt the command catches where it can), and any further Ctrl-C, or one that arrives
while files are being written, is held until those files are on disk.

Without this a second Ctrl-C a moment after the first (the usual reflex when nothing seems to
happen) killed the run while it wrote its patch, and the patch was lost.
"""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager


class _State:
    installed = False
    interrupted = False  # the first Ctrl-C has been raised; later ones are only counted
    writing = 0  # depth of writing() blocks
    held = 0  # Ctrl-Cs received while holding


_state = _State()


def _on_sigint(signum, frame):
    if _state.writing or (_state.interrupted and _state.held < 2):
        _state.held += 1  # the third Ctrl-C outside a write is obeyed: the user means it
        return
    _state.interrupted = True
    raise KeyboardInterrupt


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def handle_interrupts():
    """Install the rule above for the duration of one command (the CLI wraps every command)."""
    if not _main_thread() or _state.installed:
        yield
        return
    old = signal.signal(signal.SIGINT, _on_sigint)
    _state.installed, _state.interrupted, _state.held = True, False, 0
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
        _state.installed = False


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
