"""The event loop Reelay's long-running processes (panel, worker, bots) run on."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to completion on uvloop where it is installed (a dependency on Linux and
    macOS), else on asyncio's own loop (Windows). uvloop's loop and transports are written in
    C: the worker spends less of its one core on the loop per webhook, Redis command and
    database hand-off, which kept the reply path's p99 under 300 ms at rates where asyncio's
    loop did not (README, Benchmarks)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)
