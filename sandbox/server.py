"""The sandbox Instagram as an aiohttp server: Meta's paths, JSON shapes and error envelope.

``Sandbox`` owns the app, its state and fault controls, and sends signed webhook events
(comments, DMs, postbacks, story replies and mentions) to ``state.webhook_url``.
Control endpoints under ``/_sandbox/`` let a page or a script act as a follower.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import aiohttp
from aiohttp import web

from sandbox.media import check_image, check_video
from sandbox.state import (
    Account,
    Comment,
    Inbound,
    Media,
    MediaContainer,
    SandboxError,
    SandboxState,
)

logger = logging.getLogger(__name__)

VERSION = re.compile(r"^v\d+\.\d+$")
ACCOUNT_METRICS = {
    "reach",
    "views",
    "accounts_engaged",
    "total_interactions",
    "likes",
    "comments",
    "shares",
    "saves",
    "replies",
    "follows_and_unfollows",
    "profile_links_taps",
    "follower_count",
    "online_followers",
    "engaged_audience_demographics",
    "reached_audience_demographics",
    "follower_demographics",
}
MEDIA_METRICS = {
    "views",
    "reach",
    "likes",
    "comments",
    "saved",
    "shares",
    "total_interactions",
    "ig_reels_avg_watch_time",
    "ig_reels_video_view_total_time",
    "replies",
    "navigation",
    "profile_visits",
    "follows",
    "profile_activity",
}


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

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method:
            return False
        return not (self.path and not re.search(self.path, path))


class Faults:
    """Fault controls for tests: errors, rate limits, timeouts and slow answers."""

    def __init__(self) -> None:
        self.active: list[Fault] = []
        self.usage_headers: dict[str, str] = {}

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

    def clear(self) -> None:
        self.active.clear()
        self.usage_headers = {}

    def take(self, method: str, path: str) -> Fault | None:
        for fault in self.active:
            if fault.matches(method, path):
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self.active.remove(fault)
                return fault
        return None


@dataclass
class Delivery:
    """One webhook POST the sandbox made (status None when no webhook URL is set)."""

    payload: dict[str, Any]
    body: bytes
    signature: str
    status: int | None
    error: str = ""


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


# Meta closes an insights day at midnight Pacific time and writes that moment in UTC.
META_DAY_ZONE = ZoneInfo("America/Los_Angeles")


def _day_param(params: dict[str, str], name: str) -> date | None:
    raw = params.get(name, "")
    if not raw:
        return None
    if not raw.lstrip("-").isdigit():
        raise SandboxError(f"(#100) The parameter {name} must be a unix timestamp", code=100)
    return datetime.fromtimestamp(int(raw), UTC).date()


def _daily_points(
    node: str, metric: str, params: dict[str, str], today: date
) -> list[dict[str, Any]]:
    """One value a day from ``since`` to the day before ``until`` (default: yesterday), each
    stamped as Meta does with the end of its day: ``2026-11-20T08:00:00+0000``."""
    until = _day_param(params, "until") or today
    since = _day_param(params, "since") or until - timedelta(days=1)
    points = []
    day = since
    while day < until:
        end = datetime.combine(day + timedelta(days=1), dtime.min, META_DAY_ZONE)
        seed = hashlib.sha256(f"{node}:{metric}:{day.isoformat()}".encode()).hexdigest()
        points.append(
            {
                "value": int(seed[:4], 16) % 50,
                "end_time": end.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000"),
            }
        )
        day += timedelta(days=1)
    return points


def _fields(request_fields: str | None, full: dict[str, Any]) -> dict[str, Any]:
    if not request_fields:
        return {k: v for k, v in full.items() if k in {"id", "username", "caption"}} or {
            "id": full.get("id")
        }
    wanted = [f.strip() for f in request_fields.split(",") if f.strip()]
    result = {"id": full.get("id")} if "id" in full else {}
    for name in wanted:
        if name in full:
            result[name] = full[name]
    return result


class Sandbox:
    """A running (or startable) sandbox Instagram."""

    def __init__(
        self,
        state: SandboxState,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        fetch_timeout_s: float = 10.0,
        call_budget_per_hour: int = 4800,
        echoes: bool = False,
    ) -> None:
        self.state = state
        self.faults = Faults()
        self.deliveries: list[Delivery] = []
        self.host = host
        self.port = port
        self.fetch_timeout_s = fetch_timeout_s
        self.call_budget_per_hour = call_budget_per_hour
        self.echoes = echoes
        self._calls: dict[str, list[float]] = {}
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self._background: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def create_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get("/oauth/authorize", self._authorize)
        app.router.add_post("/oauth/access_token", self._code_exchange)
        app.router.add_get("/p/{media_id}/", self._permalink)
        app.router.add_get("/_sandbox/state", self._control_state)
        app.router.add_get("/_sandbox/conversation", self._control_conversation)
        app.router.add_post("/_sandbox/{event}", self._control_event)
        app.router.add_route("*", "/{tail:.+}", self._graph)
        return app

    async def start(self) -> None:
        self._http = aiohttp.ClientSession()
        self._runner = web.AppRunner(self.create_app(), access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if self.port == 0:
            server = site._server
            sockets = getattr(server, "sockets", None) or []
            self.port = int(sockets[0].getsockname()[1])
        self.state.base_url = self.url
        logger.info("sandbox Instagram at %s", self.url)

    async def stop(self) -> None:
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._http is not None:
            await self._http.close()
            self._http = None

    @property
    def http(self) -> aiohttp.ClientSession:
        if self._http is None:
            raise RuntimeError("the sandbox is not started")
        return self._http

    # ------------------------------------------------------------------ middleware

    @web.middleware
    async def _middleware(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        control = request.path.startswith("/_sandbox/")
        fault = None if control else self.faults.take(request.method, request.path)
        extra: dict[str, str] = dict(self.faults.usage_headers)
        if fault is not None:
            extra.update(fault.headers)
            if fault.delay_s:
                await asyncio.sleep(fault.delay_s)
            if fault.fail:
                return self._fault_response(fault, extra)
        try:
            response = await handler(request)
        except SandboxError as exc:
            response = web.json_response(exc.envelope(), status=exc.status)
        except web.HTTPException:
            raise
        if not control:
            for name, value in (extra or self._budget_headers(request)).items():
                response.headers[name] = value
        return response

    def _fault_response(self, fault: Fault, headers: dict[str, str]) -> web.Response:
        if fault.error is not None:
            error = dict(fault.error)
            error.setdefault("fbtrace_id", "Sbx" + secrets.token_hex(8))
            return web.json_response({"error": error}, status=fault.status, headers=headers)
        return web.Response(
            text=fault.body if fault.body is not None else "Service Unavailable",
            status=fault.status,
            content_type="text/html",
            headers=headers,
        )

    def _budget_headers(self, request: web.Request) -> dict[str, str]:
        """Usage from the calls made with this token in the last hour."""
        token = self._token(request, {})
        if not token:
            return {}
        now = time.monotonic()
        calls = [t for t in self._calls.get(token, []) if now - t < 3600]
        calls.append(now)
        self._calls[token] = calls
        pct = min(100, round(100 * len(calls) / self.call_budget_per_hour))
        return {
            "X-App-Usage": json.dumps({"call_count": pct, "total_cputime": 0, "total_time": 0}),
        }

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _token(request: web.Request, params: dict[str, str]) -> str | None:
        header = request.headers.get("Authorization", "")
        if header.lower().startswith("bearer "):
            return header[7:].strip()
        return params.get("access_token") or request.query.get("access_token")

    @staticmethod
    async def _params(request: web.Request) -> tuple[dict[str, str], dict[str, Any]]:
        params: dict[str, str] = dict(request.query)
        body: dict[str, Any] = {}
        if request.method in {"POST", "DELETE"} and request.can_read_body:
            if request.content_type == "application/json":
                try:
                    loaded = await request.json()
                except ValueError:
                    raise SandboxError("(#100) Invalid JSON body", code=100) from None
                if isinstance(loaded, dict):
                    body = loaded
            else:
                form = await request.post()
                params.update({k: str(v) for k, v in form.items()})
        return params, body

    # ------------------------------------------------------------------ OAuth

    async def _authorize(self, request: web.Request) -> web.StreamResponse:
        redirect_uri = request.query.get("redirect_uri", "")
        if request.query.get("response_type") != "code" or not redirect_uri:
            raise SandboxError("Invalid redirect_uri or response_type", code=100)
        ig_id = self.state.authorize_as
        if ig_id is None or ig_id not in self.state.accounts:
            raise SandboxError("No sandbox account to sign in as", code=100)
        code = self.state.authorize(ig_id)
        query = urlencode({"code": code, "state": request.query.get("state", "")})
        raise web.HTTPFound(f"{redirect_uri}?{query}#_")

    async def _code_exchange(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        if form.get("grant_type") != "authorization_code":
            return web.json_response(
                {"error_type": "OAuthException", "code": 400, "error_message": "Invalid grant"},
                status=400,
            )
        try:
            token, user_id = self.state.exchange_code(
                str(form.get("code", "")), str(form.get("client_secret", ""))
            )
        except SandboxError as exc:
            return web.json_response(
                {"error_type": "OAuthException", "code": 400, "error_message": exc.message},
                status=400,
            )
        grant = {
            "access_token": token,
            "user_id": user_id,
            "permissions": "instagram_business_basic,instagram_business_manage_messages",
        }
        if self.state.token_shape == "flat":
            return web.json_response(grant)
        return web.json_response({"data": [grant]})

    # ------------------------------------------------------------------ Graph nodes

    async def _permalink(self, request: web.Request) -> web.StreamResponse:
        media = self.state.media.get(request.match_info["media_id"])
        if media is None:
            raise web.HTTPNotFound()
        return web.json_response(self._media_json(media))

    async def _graph(self, request: web.Request) -> web.StreamResponse:
        parts = [p for p in request.match_info["tail"].split("/") if p]
        if parts and VERSION.match(parts[0]):
            parts = parts[1:]
        if not parts:
            raise SandboxError("Unsupported request", code=100)
        params, body = await self._params(request)
        node, edge = parts[0], (parts[1] if len(parts) > 1 else None)
        method = request.method
        if node == "access_token" and method == "GET":
            token, expires = self.state.long_lived(
                params.get("access_token", ""), params.get("client_secret", "")
            )
            return web.json_response(
                {"access_token": token, "token_type": "bearer", "expires_in": expires}
            )
        if node == "refresh_access_token" and method == "GET":
            token, expires = self.state.refresh(self._token(request, params) or "")
            return web.json_response(
                {"access_token": token, "token_type": "bearer", "expires_in": expires}
            )
        account = self.state.account_for_token(self._token(request, params))
        if node == "me":
            if edge is None and method == "GET":
                return web.json_response(_fields(params.get("fields"), self._me(account)))
            if edge == "accounts" and method == "GET":
                return web.json_response({"data": self._pages(account)})
            node = account.ig_id
        return web.json_response(await self._dispatch(account, method, node, edge, params, body))

    async def _dispatch(
        self,
        account: Account,
        method: str,
        node: str,
        edge: str | None,
        params: dict[str, str],
        body: dict[str, Any],
    ) -> dict[str, Any]:
        state = self.state
        if node in {account.ig_id, account.page_id}:
            return await self._account_edge(account, method, edge, params, body)
        container = state.containers.get(node)
        if container is not None and container.ig_id == account.ig_id and method == "GET":
            status = state.container_status(container)
            full = {"id": container.id, "status_code": status, "status": container.status}
            return _fields(params.get("fields") or "status_code", full)
        media = state.media.get(node)
        if media is not None and media.ig_id == account.ig_id:
            if edge is None and method == "GET":
                return _fields(params.get("fields"), self._media_json(media))
            if edge == "comments" and method == "POST":
                made = state.comment_as_account(account, media.id, params.get("message", ""))
                return {"id": made.id}
            if edge == "comments" and method == "GET":
                items = [c for c in state.comments.values() if c.media_id == media.id]
                return {"data": [self._comment_json(c) for c in items]}
            if edge == "insights" and method == "GET":
                return {"data": self._insights(media.id, params, MEDIA_METRICS, "lifetime")}
        comment: Comment | None = state.comments.get(node)
        if comment is not None and comment.ig_id == account.ig_id:
            if edge is None and method == "POST" and "hide" in params:
                comment.hidden = params["hide"].lower() == "true"
                return {"success": True}
            if edge is None and method == "DELETE":
                del state.comments[comment.id]
                return {"success": True}
            if edge is None and method == "GET":
                return _fields(params.get("fields"), self._comment_json(comment))
            if edge == "replies" and method == "POST":
                reply = state.reply_publicly(account, comment.id, params.get("message", ""))
                return {"id": reply.id}
        raise SandboxError(
            f"Unsupported {method.lower()} request. Object with ID '{node}' does not exist, "
            "cannot be loaded due to missing permissions, or does not support this operation",
            code=100,
            subcode=33,
        )

    async def _account_edge(
        self,
        account: Account,
        method: str,
        edge: str | None,
        params: dict[str, str],
        body: dict[str, Any],
    ) -> dict[str, Any]:
        state = self.state
        if edge is None and method == "GET":
            return _fields(params.get("fields"), self._profile(account))
        if edge == "media" and method == "POST":
            return {"id": (await self._create_container(account, params)).id}
        if edge == "media" and method == "GET":
            limit = int(params.get("limit") or 25)
            items = [self._media_json(m) for m in state.feed(account.ig_id)[:limit]]
            return {"data": [_fields(params.get("fields"), item) for item in items]}
        if edge == "media_publish" and method == "POST":
            media = state.publish(account.ig_id, params.get("creation_id", ""))
            return {"id": media.id}
        if edge == "content_publishing_limit" and method == "GET":
            return {
                "data": [
                    {
                        "quota_usage": state.quota_usage(account.ig_id),
                        "config": {"quota_total": state.quota_total, "quota_duration": 86400},
                    }
                ]
            }
        if edge == "messages" and method == "POST":
            return self._send(account, body or self._form_message(params))
        if edge == "insights" and method == "GET":
            return {"data": self._insights(account.ig_id, params, ACCOUNT_METRICS, "day")}
        if edge == "subscribed_apps" and method == "POST":
            account.subscribed_fields = [
                f for f in params.get("subscribed_fields", "").split(",") if f
            ]
            account.unsubscribed = False
            return {"success": True}
        if edge == "subscribed_apps" and method == "DELETE":
            account.subscribed_fields = []
            account.unsubscribed = True
            return {"success": True}
        if edge == "subscribed_apps" and method == "GET":
            return {"data": [{"id": state.app_id, "subscribed_fields": account.subscribed_fields}]}
        raise SandboxError(f"(#100) Unknown edge {edge} for {method}", code=100)

    @staticmethod
    def _form_message(params: dict[str, str]) -> dict[str, Any]:
        body: dict[str, Any] = {}
        for key in ("recipient", "message"):
            if key in params:
                try:
                    body[key] = json.loads(params[key])
                except ValueError:
                    raise SandboxError(f"(#100) Invalid {key}", code=100) from None
        if "tag" in params:
            body["tag"] = params["tag"]
        return body

    async def _create_container(self, account: Account, params: dict[str, str]) -> MediaContainer:
        media_type = params.get("media_type", "IMAGE").upper()
        image_url = params.get("image_url")
        video_url = params.get("video_url")
        video_ok = True
        if media_type != "CAROUSEL":
            if image_url:
                await check_image(
                    self.http,
                    image_url,
                    story=media_type == "STORIES" or params.get("is_carousel_item") == "true",
                    timeout_s=self.fetch_timeout_s,
                )
            elif video_url:
                video_ok = await check_video(self.http, video_url, timeout_s=self.fetch_timeout_s)
        fields = {k: v for k, v in params.items() if k != "access_token"}
        return self.state.create_container(account.ig_id, fields, video_ok=video_ok)

    def _send(self, account: Account, body: dict[str, Any]) -> dict[str, Any]:
        recipient = body.get("recipient")
        if not isinstance(recipient, dict):
            raise SandboxError("(#100) The parameter recipient is required", code=100)
        message = body.get("message")
        tag = body.get("tag")
        sent = self.state.send_message(
            account, recipient, message if isinstance(message, dict) else {}, tag
        )
        recipient_id = str(sent.payload.get("recipient_id") or sent.target)
        if self.echoes:
            self._spawn(self._echo(account, recipient_id, sent.id, sent.payload))
        return {"recipient_id": recipient_id, "message_id": sent.id}

    # ------------------------------------------------------------------ JSON shapes

    def _me(self, account: Account) -> dict[str, Any]:
        return {
            "id": "9" + account.ig_id[1:],  # app-scoped id: not the professional account id
            "user_id": account.ig_id,
            "username": account.username,
            "account_type": account.account_type,
            "name": account.name or account.username,
            "profile_picture_url": f"{self.url}/_sandbox/avatar/{account.ig_id}.jpg",
        }

    def _profile(self, account: Account) -> dict[str, Any]:
        return {
            **self._me(account),
            "id": account.ig_id,
            "followers_count": account.followers_count,
            "follows_count": account.follows_count,
            "media_count": len(self.state.feed(account.ig_id)),
        }

    def _pages(self, account: Account) -> list[dict[str, Any]]:
        if account.page_id is None:
            return []
        page_token = self.state.issue_token(account.ig_id, page=True)
        return [
            {
                "id": account.page_id,
                "name": f"{account.username} page",
                "access_token": page_token,
                "instagram_business_account": {"id": account.ig_id},
            }
        ]

    def _media_json(self, media: Media) -> dict[str, Any]:
        comments = [c for c in self.state.comments.values() if c.media_id == media.id]
        return {
            "id": media.id,
            "caption": media.caption,
            "media_type": media.media_type,
            "media_product_type": media.media_product_type,
            "media_url": media.media_url,
            "permalink": media.permalink,
            "thumbnail_url": media.media_url,
            "timestamp": media.timestamp.strftime("%Y-%m-%dT%H:%M:%S+0000"),
            "like_count": 0,
            "comments_count": len(comments),
            "username": self.state.accounts[media.ig_id].username
            if media.ig_id in self.state.accounts
            else "",
        }

    @staticmethod
    def _comment_json(comment: Comment) -> dict[str, Any]:
        return {
            "id": comment.id,
            "text": comment.text,
            "from": {"id": comment.from_id, "username": comment.username},
            "username": comment.username,
            "hidden": comment.hidden,
            "timestamp": comment.created_at.strftime("%Y-%m-%dT%H:%M:%S+0000"),
            **({"parent_id": comment.parent_id} if comment.parent_id else {}),
        }

    def _insights(
        self, node: str, params: dict[str, str], allowed: set[str], period: str
    ) -> list[dict[str, Any]]:
        metrics = [m for m in params.get("metric", "").split(",") if m]
        if not metrics:
            raise SandboxError("(#100) The parameter metric is required", code=100)
        for index, metric in enumerate(metrics):
            if metric not in allowed:
                raise SandboxError(
                    f"(#100) metric[{index}] must be one of the following values: "
                    + ", ".join(sorted(allowed)),
                    code=100,
                )
        today = self.state.now().date()
        rows = []
        for metric in metrics:
            value = int(hashlib.sha256(f"{node}:{metric}".encode()).hexdigest()[:4], 16) % 500
            row: dict[str, Any] = {
                "name": metric,
                "period": params.get("period", period),
                "title": metric.replace("_", " ").title(),
                "id": f"{node}/insights/{metric}/{params.get('period', period)}",
            }
            if params.get("metric_type") == "total_value":
                row["total_value"] = {"value": value}
            elif row["period"] == "day":
                row["values"] = _daily_points(node, metric, params, today)
            else:
                row["values"] = [{"value": value}]
            rows.append(row)
        return rows

    # ------------------------------------------------------------------ webhooks

    def _spawn(self, work: Awaitable[Any]) -> None:
        async def run() -> None:
            await work

        task = asyncio.get_running_loop().create_task(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _unsubscribed(self, payload: dict[str, Any]) -> list[str]:
        """The accounts of ``payload``'s entries whose webhook subscription was removed."""
        found = []
        for entry in payload.get("entry") or []:
            account = self.state.accounts.get(str(entry.get("id")))
            if account is not None and account.unsubscribed:
                found.append(account.ig_id)
        return found

    async def deliver(self, payload: dict[str, Any]) -> Delivery:
        """POST ``payload`` to the webhook URL, signed with the app secret.

        Like Meta, nothing is sent for an account that unsubscribed the app: the returned
        delivery says so in ``error`` and is not counted in ``deliveries``.
        """
        body = json.dumps(payload, separators=(",", ":")).encode()
        signature = sign(self.state.app_secret, body)
        delivery = Delivery(payload=payload, body=body, signature=signature, status=None)
        silenced = self._unsubscribed(payload)
        if silenced:
            delivery.error = f"not sent: account {', '.join(silenced)} unsubscribed the app"
            logger.info("sandbox webhook not sent: %s", delivery.error)
            return delivery
        self.deliveries.append(delivery)
        if not self.state.webhook_url:
            return delivery
        try:
            async with self.http.post(
                self.state.webhook_url,
                data=body,
                headers={
                    "Content-Type": "application/json",
                    "X-Hub-Signature-256": signature,
                },
                timeout=aiohttp.ClientTimeout(total=20),
            ) as response:
                delivery.status = response.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            delivery.error = f"{type(exc).__name__}: {exc}"
            logger.warning("sandbox webhook to %s failed: %s", self.state.webhook_url, exc)
        return delivery

    def _messaging(self, ig_id: str, igsid: str, item: dict[str, Any]) -> dict[str, Any]:
        now = self.state.now()
        return {
            "object": "instagram",
            "entry": [
                {
                    "id": ig_id,
                    "time": _ms(now),
                    "messaging": [
                        {
                            "sender": {"id": igsid},
                            "recipient": {"id": ig_id},
                            "timestamp": _ms(now),
                            **item,
                        }
                    ],
                }
            ],
        }

    async def _echo(
        self, account: Account, recipient_id: str, mid: str, payload: dict[str, Any]
    ) -> None:
        message = dict(payload.get("message") or {})
        event = self._messaging(account.ig_id, account.ig_id, {})
        entry = event["entry"][0]["messaging"][0]
        entry["recipient"] = {"id": recipient_id}
        entry["message"] = {"mid": mid, "is_echo": True, **message}
        await self.deliver(event)

    async def comment(
        self,
        ig_id: str,
        text: str,
        *,
        media_id: str | None = None,
        from_id: str = "9990001",
        username: str = "sandbox_follower",
        parent_id: str | None = None,
        shape: str = "entry",
        id_key: str = "id",
        field_name: str = "comments",
    ) -> tuple[Comment, Delivery]:
        """A follower comments on ``media_id`` (default: the latest post); Meta tells Reelay.

        ``shape`` is ``entry`` (field/value on the entry, Instagram Login) or ``changes``.
        """
        if media_id is None:
            feed = self.state.feed(ig_id) or [self.state.add_media(ig_id, caption="A post")]
            media_id = feed[0].id
        comment = self.state.add_comment(
            media_id, from_id=from_id, username=username, text=text, parent_id=parent_id
        )
        self.state.note_follower(
            "comment", ig_id, from_id, text=text, ref=comment.id, media_id=media_id
        )
        media = self.state.media[media_id]
        value: dict[str, Any] = {
            id_key: comment.id,
            "from": {"id": from_id, "username": username},
            "text": text,
            "media": {"id": media_id, "media_product_type": media.media_product_type},
        }
        if parent_id:
            value["parent_id"] = parent_id
        entry: dict[str, Any] = {"id": ig_id, "time": int(self.state.now().timestamp())}
        if shape == "changes":
            entry["changes"] = [{"field": field_name, "value": value}]
        else:
            entry.update(field=field_name, value=value)
        return comment, await self.deliver({"object": "instagram", "entry": [entry]})

    async def dm(
        self,
        ig_id: str,
        text: str | None,
        *,
        from_id: str = "9990001",
        quick_reply: str | None = None,
        attachments: list[dict[str, Any]] | None = None,
        reply_to: dict[str, Any] | None = None,
    ) -> tuple[str, Delivery]:
        """A person writes to the account (this opens the 24 h window); returns (mid, delivery)."""
        self.state.note_inbound(ig_id, from_id)
        mid = "aWdfZAG1faXRlbToxOkluYm91bmQ" + secrets.token_hex(8)
        message: dict[str, Any] = {"mid": mid}
        if text is not None:
            message["text"] = text
        if quick_reply is not None:
            message["quick_reply"] = {"payload": quick_reply}
        if attachments:
            message["attachments"] = attachments
        if reply_to:
            message["reply_to"] = reply_to
        kind = (
            "quick_reply"
            if quick_reply is not None
            else "story_reply"
            if reply_to
            else "story_mention"
            if attachments
            else "dm"
        )
        self.state.note_follower(
            kind, ig_id, from_id, text=text or "", ref=mid, payload=quick_reply or ""
        )
        return mid, await self.deliver(self._messaging(ig_id, from_id, {"message": message}))

    async def postback(
        self, ig_id: str, payload: str, *, title: str = "", from_id: str = "9990001"
    ) -> tuple[str, Delivery]:
        """A person taps a button Reelay sent."""
        self.state.note_inbound(ig_id, from_id)
        mid = "aWdfZAG1faXRlbToxOlBvc3RiYWNr" + secrets.token_hex(8)
        item = {"postback": {"mid": mid, "title": title or payload, "payload": payload}}
        self.state.note_follower(
            "postback", ig_id, from_id, text=title or payload, ref=mid, payload=payload
        )
        return mid, await self.deliver(self._messaging(ig_id, from_id, item))

    async def story_reply(
        self,
        ig_id: str,
        text: str,
        *,
        story_id: str = "17950000000000001",
        from_id: str = "9990001",
    ) -> tuple[str, Delivery]:
        story = {"id": story_id, "url": f"{self.url}/_sandbox/stories/{story_id}.jpg"}
        return await self.dm(ig_id, text, from_id=from_id, reply_to={"story": story})

    async def story_mention(self, ig_id: str, *, from_id: str = "9990001") -> tuple[str, Delivery]:
        url = f"{self.url}/_sandbox/mentions/{secrets.token_hex(6)}.jpg"
        attachment = {"type": "story_mention", "payload": {"url": url}}
        return await self.dm(ig_id, None, from_id=from_id, attachments=[attachment])

    # ------------------------------------------------------------------ control endpoints

    async def _control_state(self, request: web.Request) -> web.StreamResponse:
        ig_id = request.query.get("ig_id")
        state = self.state
        feed = [self._media_json(m) for m in state.media.values() if ig_id in {None, m.ig_id}]
        sent = [
            {
                "kind": s.kind,
                "ig_id": s.ig_id,
                "target": s.target,
                "payload": s.payload,
                "id": s.id,
                "at": s.at.isoformat(),
            }
            for s in state.sent
            if ig_id in {None, s.ig_id}
        ]
        comments = [
            {**self._comment_json(c), "media_id": c.media_id}
            for c in state.comments.values()
            if ig_id in {None, c.ig_id}
        ]
        return web.json_response(
            {"feed": feed, "sent": sent, "comments": comments, "deliveries": len(self.deliveries)}
        )

    async def _control_conversation(self, request: web.Request) -> web.StreamResponse:
        """GET /_sandbox/conversation?ig_id=…&with=IGSID: a follower's exchange with an account.

        Each item has ``from`` ("follower" or "account"), ``kind``, ``ref`` and ``at``; a
        follower's item has ``text``, ``payload`` and ``media_id``; the account's has the
        ``message`` it sent (Meta's shape; ``{"text": …}`` for a public reply) and
        ``reply_to`` (the comment it answers, if any).
        """
        ig_id = request.query.get("ig_id", "")
        igsid = request.query.get("with", "")
        if not ig_id or not igsid:
            raise web.HTTPBadRequest(text="ig_id and with are required")
        items: list[dict[str, Any]] = []
        for item in self.state.conversation(ig_id, igsid):
            if isinstance(item, Inbound):
                items.append(
                    {
                        "from": "follower",
                        "kind": item.kind,
                        "ref": item.ref,
                        "text": item.text,
                        "payload": item.payload,
                        "media_id": item.media_id,
                        "at": item.at.isoformat(),
                    }
                )
                continue
            if item.kind == "comment_reply":
                message: dict[str, Any] = {"text": item.payload.get("message", "")}
            else:
                message = dict(item.payload.get("message") or {})
            items.append(
                {
                    "from": "account",
                    "kind": item.kind,
                    "ref": item.id,
                    "message": message,
                    "reply_to": item.target if item.kind != "message" else "",
                    "at": item.at.isoformat(),
                }
            )
        return web.json_response({"items": items})

    async def _control_event(self, request: web.Request) -> web.StreamResponse:
        """Act as a follower: POST /_sandbox/{comment,dm,postback,story_reply,story_mention}."""
        try:
            data = await request.json()
        except ValueError:
            raise web.HTTPBadRequest(text="send a JSON object") from None
        if not isinstance(data, dict) or not data.get("ig_id"):
            raise web.HTTPBadRequest(text="ig_id is required")
        ig_id = str(data["ig_id"])
        from_id = str(data.get("from_id") or "9990001")
        event = request.match_info["event"]
        self.state.ensure_account(ig_id, str(data.get("account_username") or "reelay_demo"))
        delivery: Delivery
        if event == "comment":
            comment, delivery = await self.comment(
                ig_id,
                str(data.get("text") or ""),
                media_id=data.get("media_id"),
                from_id=from_id,
                username=str(data.get("username") or "sandbox_follower"),
                shape=str(data.get("shape") or "entry"),
            )
            ref = comment.id
        elif event == "dm":
            ref, delivery = await self.dm(
                ig_id,
                str(data.get("text") or ""),
                from_id=from_id,
                quick_reply=data.get("quick_reply"),
            )
        elif event == "postback":
            ref, delivery = await self.postback(
                ig_id,
                str(data.get("payload") or ""),
                title=str(data.get("title") or ""),
                from_id=from_id,
            )
        elif event == "story_reply":
            ref, delivery = await self.story_reply(
                ig_id, str(data.get("text") or ""), from_id=from_id
            )
        elif event == "story_mention":
            ref, delivery = await self.story_mention(ig_id, from_id=from_id)
        else:
            raise web.HTTPNotFound(text=f"unknown sandbox event {event}")
        return web.json_response(
            {"id": ref, "webhook_status": delivery.status, "error": delivery.error}
        )
