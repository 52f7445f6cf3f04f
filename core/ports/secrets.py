"""The secrets port: encrypting what Reelay stores (tokens, app secrets) at rest."""

from __future__ import annotations

from typing import Protocol


class SecretStore(Protocol):
    def encrypt(self, plaintext: str) -> str:
        """``plaintext`` encrypted (and authenticated) for storing."""

    def decrypt(self, ciphertext: str) -> str:
        """What ``encrypt`` was given."""
