"""Bulk database work of the hot paths: group commit.

:class:`GroupCommit` turns the writes of concurrent callers into one write: while one batch is
being written, new items wait and go together in the next; each caller gets its own item's
result (or the batch's error) once the batch is written.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class GroupCommitClosed(RuntimeError):
    """An item was submitted after :meth:`GroupCommit.close`."""


class GroupCommit(Generic[T, R]):
    """Items of concurrent callers written together: one flusher writes the waiting items (at
    most ``limit`` a batch, all of them without one) and hands each caller its result.

    ``write`` gets a batch and returns one result per item, in order; when it raises, every
    caller of that batch gets the error. A lone item is written at once.
    """

    def __init__(
        self, write: Callable[[list[T]], Awaitable[Sequence[R]]], *, limit: int | None = None
    ) -> None:
        self._write = write
        self._limit = limit
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._closed = False

    async def submit(self, item: T) -> R:
        """Queue ``item`` for the next batch and return its result once written."""
        if self._closed:
            raise GroupCommitClosed("no more items: the group commit is closed")
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._flusher is None or self._flusher.done():
            # A task, not the caller: a caller cancelled must not cut a batch short.
            self._flusher = asyncio.create_task(self._flush())
        return await asyncio.shield(future)

    async def close(self) -> None:
        """Refuse new items and wait until the waiting ones are written."""
        self._closed = True
        if self._flusher is not None:
            await self._flusher

    async def _flush(self) -> None:
        while self._waiting:
            size = self._limit or len(self._waiting)
            batch = self._waiting[:size]
            del self._waiting[:size]
            try:
                results = await self._write([item for item, _ in batch])
            except BaseException as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)
