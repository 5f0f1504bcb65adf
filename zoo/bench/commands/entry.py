"""Ctrl-C and SIGTERM as one line, for every command, never a traceback (a bad flag is one
line too: :mod:`zoo.bench.plan.parsing`).

A ``KeyboardInterrupt`` raised between two bytecodes can land inside a finaliser (where Python
drops it, and the command runs on) or in JAX's machinery, and interpreter teardown with XLA's
threads running can crash. So nothing is unwound: Python's own C handler writes the signal to
a pipe (``signal.set_wakeup_fd``), even while the main thread is inside a long XLA call, and a
watching thread prints one line and ends the process with ``os._exit(128 + signal)`` (130 for
Ctrl-C). Whatever a command has finished is already on disk: each writes its files whole.

:func:`run` is the entry point of the console scripts (and of the ``python -m`` modules once
imported): it watches from before the module's imports (seconds, JAX's) to the end of its
``main``. ``zoo-bench`` watches with :func:`stop_at_once` too, and says what its cache holds.
Every process entry ends through :func:`finish`, which covers the interpreter's teardown after
the command has returned.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import NoReturn

__all__ = ["distributed", "finish", "guidance", "run", "speed", "stop_at_once"]

STOPS = (signal.SIGINT, signal.SIGTERM)


def stop_at_once(message: Callable[[], str]) -> Callable[[], None]:
    """From now on, Ctrl-C (SIGINT) or SIGTERM prints ``message()`` as one line on stderr and
    ends the process with exit code 128 + the signal. Returns a function that undoes this.
    Off the main thread (where signals cannot be handled) it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    previous = {s: signal.signal(s, lambda *_: None) for s in STOPS}  # the watcher acts
    previous_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)

    def watch() -> None:
        while True:
            try:
                received = os.read(read_fd, 1)
            except OSError:
                return
            if not received:
                return  # the pipe was closed: undone
            if received[0] in STOPS:
                break
        sys.stdout.flush()
        os.write(sys.stderr.fileno(), f"\n{message()}\n".encode())
        os._exit(128 + received[0])

    threading.Thread(target=watch, name="interrupt-watch", daemon=True).start()

    def restore() -> None:
        signal.set_wakeup_fd(previous_fd)
        for s, handler in previous.items():
            signal.signal(s, handler)
        os.close(write_fd)

    return restore


def finish(status: int) -> NoReturn:
    """End the process with the command's exit ``status``. Once the command has returned its
    work is written, but the interpreter still tears JAX down; a Ctrl-C or SIGTERM that lands
    there is ignored, and the process ends as it was ending, with ``status`` and nothing
    printed, where it printed a ``KeyboardInterrupt`` traceback or died of the signal (-2,
    -15). Ignored rather than handled in Python: the interpreter resets a Python handler to
    the default action late in its teardown, and a stop there killed the process (-2)."""
    for stop in STOPS:
        signal.signal(stop, signal.SIG_IGN)
    sys.exit(status)


def run(prog: str, module: str, argv: list[str] | None = None) -> int:
    """Import ``module`` and return its ``main(argv)``'s exit status (0 for ``None``), a stop
    by Ctrl-C or SIGTERM at any moment being one line naming ``prog``."""
    restore = stop_at_once(lambda: f"{prog}: interrupted; nothing more is written")
    try:
        return importlib.import_module(module).main(argv) or 0
    finally:
        restore()


def speed() -> NoReturn:
    finish(run("zoo-bench speed", "zoo.bench.commands.speed"))


def guidance() -> NoReturn:
    finish(run("zoo-bench guidance", "zoo.bench.commands.guidance"))


def distributed() -> NoReturn:
    finish(run("zoo-bench distributed", "zoo.bench.commands.distributed"))
