"""Reelay's error hierarchy: errors carry data, outer layers translate them once."""

from __future__ import annotations


class ReelayError(Exception):
    """Base of every error Reelay raises on purpose."""


class SettingsError(ReelayError):
    """A setting is missing or malformed."""


class InfrastructureError(ReelayError):
    """A service Reelay needs (database, Redis) could not be reached or started."""


class ValidationFailed(ReelayError):
    """User input was refused; ``fields`` maps field names to messages."""

    def __init__(self, message: str, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}


class NotFound(ReelayError):
    """The thing asked for does not exist (or is not visible to the caller)."""


class Forbidden(ReelayError):
    """The caller's role does not allow this."""


class Conflict(ReelayError):
    """The thing changed under the caller (already decided, already taken)."""
