"""The media storage port: where uploaded files live (local disk now, S3-compatible later)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Protocol


class MediaStorage(Protocol):
    def new_key(self, extension: str) -> str:
        """A fresh, unguessable key for a file with this extension."""

    async def save(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` (atomically: readers see all of it or nothing)."""

    async def save_file(self, key: str, source: IO[bytes]) -> None:
        """Store all of ``source`` (read from its start, in chunks) under ``key``, atomically."""

    async def read(self, key: str) -> bytes:
        """The stored bytes; ``NotFound`` when there is no such key."""

    def stream(self, key: str, chunk_size: int = 256 * 1024) -> AsyncIterator[bytes]:
        """The stored bytes in chunks; ``NotFound`` when there is no such key."""

    async def size(self, key: str) -> int | None:
        """Size in bytes, or None when there is no such key."""

    async def delete(self, key: str) -> None:
        """Remove the file; nothing happens when it is already gone."""

    def local_path(self, key: str) -> Path | None:
        """A file on this machine holding the bytes, when the storage has one (for serving)."""
