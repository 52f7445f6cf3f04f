"""Tortoise config for the ``tortoise`` CLI.

Usage: ``tortoise -c core.db.config.TORTOISE_ORM makemigrations``.

Developers only: it reads DATABASE_URL here because the CLI needs a module-level dict.
"""

from __future__ import annotations

import os

from core.db import tortoise_config

TORTOISE_ORM = tortoise_config(os.environ.get("DATABASE_URL") or "sqlite://:memory:")
