"""Media storage on the local disk, under ``VAR_DIR/media``."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import IO

from core.adapters.private_files import private_directory
from core.errors import NotFound

# 32 random URL-safe characters (192 bits) and an extension: unguessable and path-safe.
KEY_PATTERN = re.compile(r"^[A-Za-z0-9_-]{32}\.[a-z0-9]{2,4}$")


def new_key(extension: str) -> str:
    """A fresh, unguessable storage key such as ``Xy3…Q.jpg``."""
    return f"{secrets.token_urlsafe(24)}.{extension.lstrip('.').lower()}"


def is_valid_key(key: str) -> bool:
    return bool(KEY_PATTERN.match(key))


class DiskStorage:
    """Files under ``root``, spread over sub-folders by the key's first two characters."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def new_key(self, extension: str) -> str:
        return new_key(extension)

    def _path(self, key: str) -> Path:
        if not is_valid_key(key):
            raise NotFound(f"no media file {key!r}")
        return self.root / key[:2] / key

    async def save(self, key: str, data: bytes) -> None:
        path = self._path(key)
        await asyncio.to_thread(_write_atomically, path, data)

    async def save_file(self, key: str, source: IO[bytes]) -> None:
        path = self._path(key)
        await asyncio.to_thread(_copy_atomically, path, source)

    async def read(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            raise NotFound(f"no media file {key!r}") from None

    async def stream(self, key: str, chunk_size: int = 256 * 1024) -> AsyncIterator[bytes]:
        path = self._path(key)
        try:
            handle = await asyncio.to_thread(path.open, "rb")
        except FileNotFoundError:
            raise NotFound(f"no media file {key!r}") from None
        try:
            while chunk := await asyncio.to_thread(handle.read, chunk_size):
                yield chunk
        finally:
            handle.close()

    async def size(self, key: str) -> int | None:
        try:
            path = self._path(key)
            return (await asyncio.to_thread(path.stat)).st_size
        except (NotFound, FileNotFoundError):
            return None

    async def delete(self, key: str) -> None:
        path = self._path(key)
        await asyncio.to_thread(path.unlink, missing_ok=True)

    def local_path(self, key: str) -> Path | None:
        path = self._path(key)
        return path if path.is_file() else None


def _write_atomically(path: Path, data: bytes) -> None:
    _replace_atomically(path, lambda handle: handle.write(data))


def _copy_atomically(path: Path, source: IO[bytes]) -> None:
    source.seek(0)
    _replace_atomically(path, lambda handle: shutil.copyfileobj(source, handle, 1024 * 1024))


def _replace_atomically(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    """Write a private temporary file next to ``path``, then rename it into place."""
    private_directory(path.parent)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
    with os.fdopen(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as handle:
        write(handle)
        handle.flush()
        os.fsync(handle.fileno())
    temp.replace(path)
