"""Files in VAR_DIR are readable by Reelay's user only: directories 0700, files 0600."""

from __future__ import annotations

import os
from pathlib import Path


def private_directory(path: Path) -> Path:
    """Create ``path`` and its missing parents as 0700; tighten it if it already exists."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for directory in reversed(missing):
        directory.mkdir(mode=0o700, exist_ok=True)
    path.chmod(0o700)
    return path


def private_file(path: Path) -> Path:
    """Create ``path`` empty as 0600 unless it exists, and tighten it to 0600.

    SQLite gives its WAL and shared-memory files the mode of the database file, so a
    database made private this way keeps every file beside it private too.
    """
    if not path.parent.exists():
        private_directory(path.parent)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    path.chmod(0o600)
    return path
