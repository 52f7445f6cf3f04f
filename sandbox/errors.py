"""The sandbox's Graph errors, answered in Meta's envelope."""

from __future__ import annotations

import secrets
from typing import Any


class SandboxError(Exception):
    """A Graph error the sandbox answers with (Meta's envelope)."""

    def __init__(
        self,
        message: str,
        *,
        code: int,
        subcode: int | None = None,
        status: int = 400,
        type_: str = "OAuthException",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.subcode = subcode
        self.status = status
        self.type = type_

    def envelope(self) -> dict[str, Any]:
        error: dict[str, Any] = {"message": self.message, "type": self.type, "code": self.code}
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        error["fbtrace_id"] = "Sbx" + secrets.token_hex(8)
        return {"error": error}
