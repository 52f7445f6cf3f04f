from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from core.services import users


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2 with small costs: panel tests sign in often; production costs stay as they are."""
    monkeypatch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024))
