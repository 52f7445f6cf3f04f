"""Secrets at rest: Fernet encryption with a key from settings or VAR_DIR."""

from __future__ import annotations

import functools
import logging
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from core.errors import SettingsError

logger = logging.getLogger(__name__)

DECRYPTED_KEPT = 1024  # secrets kept decrypted (accounts' tokens, apps' secrets)


class SecretBox:
    """Encrypts and decrypts short secrets (tokens, app secrets)."""

    def __init__(self, key: str) -> None:
        try:
            self._fernet = Fernet(key.encode())
        except (ValueError, TypeError):
            raise SettingsError(
                "invalid setting ENCRYPTION_KEY: must be a url-safe base64 Fernet key "
                "(generate one with: python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())')"
            ) from None
        # Every send acts with its account's token: a token is decrypted once, not per
        # call (a new token is a new ciphertext). The process holds the key anyway.
        self._decrypted = functools.lru_cache(maxsize=DECRYPTED_KEPT)(self._decrypt)

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        return self._decrypted(ciphertext)

    def _decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            raise SettingsError(
                "a stored secret cannot be decrypted: ENCRYPTION_KEY changed since it was saved"
            ) from None


def _read_or_create(path: Path, make: str, what: str) -> str:
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(make)
    logger.warning("generated %s into %s; production must set its own and keep it safe", what, path)
    return make


def embedded_encryption_key(var_dir: Path) -> str:
    """The development Fernet key kept in VAR_DIR, created on first use."""
    return _read_or_create(
        var_dir / "encryption.key", Fernet.generate_key().decode(), "ENCRYPTION_KEY"
    )


def embedded_secret_key(var_dir: Path) -> str:
    """The development session-signing key kept in VAR_DIR, created on first use."""
    return _read_or_create(var_dir / "secret.key", secrets.token_urlsafe(48), "SECRET_KEY")
