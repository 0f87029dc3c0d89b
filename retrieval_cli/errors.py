"""Errors the library raises for expected failures; the CLI turns them into one line and an exit code."""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator


class RetrievalError(Exception):
    """An expected failure with a message fit for a terminal (exit code 1)."""

    exit_code = 1


class InputError(RetrievalError):
    """Bad user input: a file, line and field, when known, lead the message (exit code 2)."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.path = str(path) if path is not None else None
        self.line = line
        self.field = field
        self.problem = message
        where = ""
        if self.path is not None:
            where = self.path if line is None else f"{self.path}:{line}"
        if field is not None:
            where = f"{where} field '{field}'" if where else f"field '{field}'"
        super().__init__(f"{where}: {message}" if where else message)


class ArtifactError(RetrievalError):
    """An artifact reference that does not resolve, or an artifact that fails its checks."""

    exit_code = 2


class Terminated(BaseException):
    """SIGTERM as an exception (the CLI installs ``raise_terminated``), so a build's clean-up runs
    as it does on Ctrl-C and the command ends with one line, not silently."""


def raise_terminated(signum: int, frame: object) -> None:  # noqa: ARG001 - a signal handler's signature
    raise Terminated()


@contextmanager
def on_sigterm(handler: Callable[[], None]) -> Iterator[None]:
    """Within the block, SIGTERM calls ``handler`` (a training that checkpoints first, a runner that
    passes it to a step's process); the previous handler comes back after. Off the main thread,
    where Python allows no handler, nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, lambda signum, frame: handler())
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def check_at_least(config: object, minimum: int, *fields: str) -> None:
    """Each named field of ``config`` must be >= ``minimum``; the error names the first that is not."""
    for name in fields:
        value = getattr(config, name)
        if value < minimum:
            raise InputError(f"{name.replace('_', '-')} must be >= {minimum}, got {value}", field=name)
