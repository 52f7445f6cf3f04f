"""Fault injection: the sandbox answers with Meta's errors, rate limits, timeouts and slow replies.

Tests add a ``Fault`` (or use the ``Faults`` shortcuts); the server's middleware takes the
first matching one for each Graph request and either answers with it or delays the real answer.
A fault with ``after`` lets the request take effect first and then loses the answer
(``Faults.lost_answer``): what a dropped connection or a gateway's 502/504 does to a write.
A fault with a ``chance`` strikes that share of the matching requests (seeded: ``Faults(seed=)``).
A ``WebhookLoss`` (``Faults.lose_webhooks``) keeps webhooks of a field from ever being sent,
as when Meta's delivery fails or a field is not subscribed.
"""

from __future__ import annotations

import json
import random
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Fault:
    """One injected misbehaviour. ``times=None`` keeps it until cleared."""

    method: str | None = None
    path: str | None = None  # a regular expression searched in the request path
    status: int = 500
    error: dict[str, Any] | None = None  # code, error_subcode, message, type
    body: str | None = None  # a raw (non-JSON) body, e.g. an HTML error page
    delay_s: float = 0.0  # answer normally after this long (or fail, with ``fail``)
    fail: bool = True
    headers: dict[str, str] = field(default_factory=dict)
    times: int | None = 1
    after: bool = False  # act on the request first, then answer with the fault
    drop: bool = False  # close the connection instead of answering
    chance: float = 1.0  # the share of matching requests it strikes (a random draw each)
    struck: int = 0  # requests it struck so far

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method:
            return False
        return not (self.path and not re.search(self.path, path))

    def response(self, headers: dict[str, str]) -> web.Response:
        """The answer Meta would give: its error envelope, else the raw body."""
        if self.error is not None:
            error = dict(self.error)
            error.setdefault("fbtrace_id", "Sbx" + secrets.token_hex(8))
            return web.json_response({"error": error}, status=self.status, headers=headers)
        return web.Response(
            text=self.body if self.body is not None else "Service Unavailable",
            status=self.status,
            content_type="text/html",
            headers=headers,
        )


@dataclass
class WebhookLoss:
    """Webhooks of ``field_name`` (any field when None) never delivered: each with chance
    ``share``, at most ``times`` of them (None: until cleared)."""

    field_name: str | None = "comments"
    share: float = 1.0
    times: int | None = None
    rng: random.Random = field(default_factory=lambda: random.Random(7))

    def matches(self, payload: dict[str, Any]) -> bool:
        if self.field_name is None:
            return True
        for entry in payload.get("entry") or []:
            if not isinstance(entry, dict):
                continue
            names = [entry.get("field")] + [
                change.get("field")
                for change in entry.get("changes") or []
                if isinstance(change, dict)
            ]
            messaging = self.field_name == "messages" and entry.get("messaging")
            if self.field_name in names or messaging:
                return True
        return False


class Faults:
    """Fault controls for tests: errors, rate limits, timeouts and slow answers."""

    def __init__(self, *, seed: int | None = None) -> None:
        self.active: list[Fault] = []
        self.usage_headers: dict[str, str] = {}
        self.rng = random.Random(seed)
        self.webhook_losses: list[WebhookLoss] = []

    def add(self, fault: Fault) -> Fault:
        self.active.append(fault)
        return fault

    def fail(
        self,
        status: int = 500,
        *,
        code: int | None = 2,
        subcode: int | None = None,
        message: str = "An unexpected error has occurred. Please retry your request later.",
        method: str | None = None,
        path: str | None = None,
        times: int | None = 1,
    ) -> Fault:
        error: dict[str, Any] | None = None
        if code is not None:
            error = {"message": message, "type": "OAuthException", "code": code}
            if subcode is not None:
                error["error_subcode"] = subcode
        return self.add(Fault(method=method, path=path, status=status, error=error, times=times))

    def rate_limit(
        self,
        code: int = 4,
        *,
        regain_minutes: int = 0,
        method: str | None = None,
        path: str | None = None,
        times: int | None = 1,
    ) -> Fault:
        usage = {"call_count": 100, "total_cputime": 10, "total_time": 10}
        headers = {"X-App-Usage": json.dumps(usage)}
        if regain_minutes:
            headers["X-Business-Use-Case-Usage"] = json.dumps(
                {
                    "0": [
                        {
                            **usage,
                            "type": "instagram",
                            "estimated_time_to_regain_access": regain_minutes,
                        }
                    ]
                }
            )
        error = {
            "message": "(#4) Application request limit reached",
            "type": "OAuthException",
            "code": code,
            "is_transient": True,
        }
        return self.add(
            Fault(method=method, path=path, status=400, error=error, headers=headers, times=times)
        )

    def timeout(
        self,
        seconds: float = 30.0,
        *,
        method: str | None = None,
        path: str | None = None,
        times: int | None = 1,
    ) -> Fault:
        """Hold the answer ``seconds`` (longer than the client waits), then fail with 504."""
        return self.add(
            Fault(method=method, path=path, status=504, delay_s=seconds, body="", times=times)
        )

    def lost_answer(
        self,
        how: str = "drop",
        *,
        method: str | None = "POST",
        path: str | None = None,
        seconds: float = 30.0,
        times: int | None = 1,
        chance: float = 1.0,
    ) -> Fault:
        """Act on the request, then lose the answer: ``drop`` the connection, answer a bare
        ``502`` or ``504`` (a gateway's page, not Meta's error), or ``timeout`` (hold the
        answer ``seconds``, longer than the client waits). ``chance``: the share of matching
        requests that lose their answer (with ``times=None``: for as long as it stays)."""
        if how not in {"drop", "502", "504", "timeout"}:
            raise ValueError(f"unknown way to lose an answer: {how}")
        return self.add(
            Fault(
                method=method,
                path=path,
                status=int(how) if how.isdigit() else 504,
                body="<html><body>Bad Gateway</body></html>" if how.isdigit() else "",
                delay_s=seconds if how == "timeout" else 0.0,
                after=True,
                drop=how == "drop",
                times=times,
                chance=chance,
            )
        )

    def latency(
        self,
        seconds: float,
        *,
        method: str | None = None,
        path: str | None = None,
        times: int | None = None,
    ) -> Fault:
        return self.add(Fault(method=method, path=path, delay_s=seconds, fail=False, times=times))

    def usage(
        self, app_pct: float = 0, business_pct: float = 0, *, regain_minutes: int = 0
    ) -> None:
        """Report these usage figures on every answer (clear with ``clear()``)."""
        self.usage_headers = {
            "X-App-Usage": json.dumps({"call_count": app_pct, "total_cputime": 0, "total_time": 0}),
            "X-Business-Use-Case-Usage": json.dumps(
                {
                    "0": [
                        {
                            "type": "instagram",
                            "call_count": business_pct,
                            "total_cputime": 0,
                            "total_time": 0,
                            "estimated_time_to_regain_access": regain_minutes,
                        }
                    ]
                }
            ),
        }

    def lose_webhooks(
        self,
        field: str | None = "comments",
        *,
        share: float = 1.0,
        times: int | None = None,
        seed: int = 7,
    ) -> WebhookLoss:
        """Never deliver webhooks of ``field`` (a ``share`` of them, ``times`` at most)."""
        loss = WebhookLoss(field_name=field, share=share, times=times, rng=random.Random(seed))
        self.webhook_losses.append(loss)
        return loss

    def webhook_lost(self, payload: dict[str, Any]) -> bool:
        """Whether the webhook ``payload`` is lost (spends one of a loss's ``times``)."""
        for loss in self.webhook_losses:
            if loss.matches(payload) and loss.rng.random() < loss.share:
                if loss.times is not None:
                    loss.times -= 1
                    if loss.times <= 0:
                        self.webhook_losses.remove(loss)
                return True
        return False

    def clear(self) -> None:
        self.active.clear()
        self.usage_headers = {}
        self.webhook_losses.clear()

    def take(self, method: str, path: str) -> Fault | None:
        for fault in self.active:
            if fault.matches(method, path):
                if fault.chance < 1.0 and self.rng.random() >= fault.chance:
                    continue
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self.active.remove(fault)
                fault.struck += 1
                return fault
        return None
