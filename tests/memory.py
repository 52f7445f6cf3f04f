"""Peak memory of the test process, for tests that bound what a request may take."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil


@contextmanager
def peak_growth() -> Iterator[list[int]]:
    """The process's peak resident memory above what it held on entry, in bytes (appended
    to the yielded list on exit).

    The kernel's high-water mark is reset on entry, so the peak is exact, whatever ran before
    and however briefly the memory was held.
    """
    Path("/proc/self/clear_refs").write_text("5")
    before = psutil.Process().memory_info().rss
    grown: list[int] = []
    yield grown
    status = Path("/proc/self/status").read_text()
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    assert match is not None
    grown.append(int(match.group(1)) * 1024 - before)
