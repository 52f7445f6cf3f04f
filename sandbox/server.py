"""The sandbox Instagram as an aiohttp server: Meta's paths, JSON shapes and error envelope.

``Sandbox`` owns the app, its state and fault controls, and sends signed webhook events
(comments, DMs, postbacks, story replies and mentions) to ``state.webhook_url``. The routes
live by feature: ``sandbox.graph`` (Graph nodes and edges), ``sandbox.oauth`` (login and
tokens), ``sandbox.console`` (the ``/_sandbox/`` follower controls); ``sandbox.faults`` holds
the injected misbehaviour this server's middleware applies.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web

from sandbox.console import FollowerConsole
from sandbox.faults import Fault, Faults
from sandbox.graph import GraphRoutes
from sandbox.oauth import OAuth
from sandbox.state import Account, Comment, SandboxError, SandboxState
from sandbox.webhooks import Delivery, messaging_event, sign, unsubscribed
from sandbox.wire import request_token

logger = logging.getLogger(__name__)

# A delivery whose kept-alive connection was closed under it is sent again this many times.
DISCONNECT_RETRIES = 2


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
        # Webhooks a fault kept from being sent (``faults.lose_webhooks``); ``deliver`` one
        # again to play it arriving late.
        self.lost: list[Delivery] = []
        self.host = host
        self.port = port
        self.fetch_timeout_s = fetch_timeout_s
        self.call_budget_per_hour = call_budget_per_hour
        self.echoes = echoes
        self._calls: dict[str, deque[float]] = {}
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self._background: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def create_app(self) -> web.Application:
        oauth = OAuth(self.state)
        graph = GraphRoutes(self, oauth)
        console = FollowerConsole(self)
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get("/oauth/authorize", oauth.authorize)
        app.router.add_post("/oauth/access_token", oauth.exchange_code)
        app.router.add_get("/p/{media_id}/", graph.permalink)
        app.router.add_get("/_sandbox/state", console.world)
        app.router.add_get("/_sandbox/conversation", console.conversation)
        app.router.add_post("/_sandbox/{event}", console.event)
        app.router.add_route("*", "/{tail:.+}", graph.handle)
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
        if fault is not None and fault.after:
            return await self._lose_answer(request, handler, fault, extra)
        if fault is not None:
            extra.update(fault.headers)
            if fault.delay_s:
                await asyncio.sleep(fault.delay_s)
            if fault.fail:
                return fault.response(extra)
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

    async def _lose_answer(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
        fault: Fault,
        extra: dict[str, str],
    ) -> web.StreamResponse:
        """Let ``request`` take effect, then lose Meta's answer the way ``fault`` says."""
        try:
            await handler(request)
        except SandboxError as exc:
            logger.info("sandbox: refused %s %s before losing its answer", request.method, exc)
        if fault.delay_s:
            await asyncio.sleep(fault.delay_s)
        if fault.drop and request.transport is not None:
            request.transport.close()
        return fault.response({**extra, **fault.headers})

    def _budget_headers(self, request: web.Request) -> dict[str, str]:
        """Usage from the calls made with this token in the last hour."""
        token = request_token(request, {})
        if not token:
            return {}
        now = time.monotonic()
        calls = self._calls.setdefault(token, deque())
        while calls and now - calls[0] >= 3600:  # oldest first: the hour's window
            calls.popleft()
        calls.append(now)
        pct = min(100, round(100 * len(calls) / self.call_budget_per_hour))
        return {
            "X-App-Usage": json.dumps({"call_count": pct, "total_cputime": 0, "total_time": 0}),
        }

    # ------------------------------------------------------------------ webhooks

    def spawn(self, work: Awaitable[Any]) -> None:
        """Run ``work`` in the background; ``stop`` cancels what is still running."""

        async def run() -> None:
            await work

        task = asyncio.get_running_loop().create_task(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def deliver(self, payload: dict[str, Any]) -> Delivery:
        """POST ``payload`` to the webhook URL, signed with the app secret.

        Like Meta, nothing is sent for an account that unsubscribed the app: the returned
        delivery says so in ``error`` and is not counted in ``deliveries``. A webhook a
        fault loses is not sent either; it is kept in ``lost``.
        """
        body = json.dumps(payload, separators=(",", ":")).encode()
        signature = sign(self.state.app_secret, body)
        delivery = Delivery(payload=payload, body=body, signature=signature, status=None)
        silenced = unsubscribed(self.state, payload)
        if silenced:
            delivery.error = f"not sent: account {', '.join(silenced)} unsubscribed the app"
            logger.info("sandbox webhook not sent: %s", delivery.error)
            return delivery
        if self.faults.webhook_lost(payload):
            delivery.error = "not sent: the webhook was lost (fault)"
            self.lost.append(delivery)
            return delivery
        self.deliveries.append(delivery)
        if not self.state.webhook_url:
            return delivery
        try:
            for tries_left in range(DISCONNECT_RETRIES, -1, -1):
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
                    break
                except aiohttp.ServerDisconnectedError:
                    # A kept-alive connection the receiver closed meanwhile: Meta sends again.
                    if not tries_left:
                        raise
        except (TimeoutError, aiohttp.ClientError) as exc:
            delivery.error = f"{type(exc).__name__}: {exc}"
            logger.warning("sandbox webhook to %s failed: %s", self.state.webhook_url, exc)
        return delivery

    async def echo(
        self, account: Account, recipient_id: str, mid: str, payload: dict[str, Any]
    ) -> None:
        message = dict(payload.get("message") or {})
        event = messaging_event(account.ig_id, account.ig_id, {}, self.state.now())
        entry = event["entry"][0]["messaging"][0]
        entry["recipient"] = {"id": recipient_id}
        entry["message"] = {"mid": mid, "is_echo": True, **message}
        await self.deliver(event)

    async def app_reply(self, ig_id: str, to: str, text: str) -> tuple[str, Delivery]:
        """The account's owner answers ``to`` from the Instagram app: Meta's only word of it
        is the echo (``is_echo``), which Reelay did not send."""
        account = self.state.accounts[ig_id]
        sent = self.state.app_message(account, to, text)
        event = messaging_event(account.ig_id, account.ig_id, {}, self.state.now())
        entry = event["entry"][0]["messaging"][0]
        entry["recipient"] = {"id": to}
        entry["message"] = {"mid": sent.id, "is_echo": True, "text": text}
        return sent.id, await self.deliver(event)

    # ------------------------------------------------------------------ followers

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
        on_ad: bool = False,
    ) -> tuple[Comment, Delivery]:
        """A follower comments on ``media_id`` (default: the latest post); Meta tells Reelay.

        ``shape`` is ``entry`` (field/value on the entry, Instagram Login) or ``changes``.
        ``field_name`` ``live_comments`` is a comment on a Live broadcast (same shape);
        ``on_ad``: the comment is on an ad made of the post: ``media_product_type`` ``AD``
        (META_API.md), and the ad named in ``media.ad_id`` and ``media.ad_title``.
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
        if on_ad:
            value["media"].update(
                media_product_type="AD",
                ad_id=f"ad_{media_id}",
                ad_title=f"Ad: {media.caption or 'post'}",
            )
        if parent_id:
            value["parent_id"] = parent_id
        entry: dict[str, Any] = {"id": ig_id, "time": int(self.state.now().timestamp())}
        if shape == "changes":
            entry["changes"] = [{"field": field_name, "value": value}]
        else:
            entry.update(field=field_name, value=value)
        return comment, await self.deliver({"object": "instagram", "entry": [entry]})

    async def live_comment(
        self, ig_id: str, text: str, *, from_id: str = "9990001", username: str = "sandbox_follower"
    ) -> tuple[Comment, Delivery]:
        """A follower comments on the account's Live broadcast (one is started if none runs):
        Meta sends it as the ``live_comments`` field, in the comment's shape."""
        live = self.state.live_broadcast(ig_id)
        return await self.comment(
            ig_id,
            text,
            media_id=live.id,
            from_id=from_id,
            username=username,
            shape="changes",
            field_name="live_comments",
        )

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
        event = messaging_event(ig_id, from_id, {"message": message}, self.state.now())
        return mid, await self.deliver(event)

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
        return mid, await self.deliver(messaging_event(ig_id, from_id, item, self.state.now()))

    async def open_link(
        self, ig_id: str, ref: str, *, from_id: str = "9990001"
    ) -> tuple[str, Delivery]:
        """A person opens ``https://ig.me/m/<username>?ref=<ref>``: Meta sends a referral."""
        self.state.note_inbound(ig_id, from_id)
        referral = {"ref": ref, "source": "IGME_SOURCE_LINK", "type": "OPEN_THREAD"}
        item = {"referral": referral}
        self.state.note_follower("referral", ig_id, from_id, text=ref, ref=ref, payload=ref)
        return ref, await self.deliver(messaging_event(ig_id, from_id, item, self.state.now()))

    async def read(self, ig_id: str, mid: str, *, from_id: str = "9990001") -> tuple[str, Delivery]:
        """The person reads the account's message ``mid`` (Meta's ``messaging_seen``)."""
        item = {"read": {"mid": mid}}
        return mid, await self.deliver(messaging_event(ig_id, from_id, item, self.state.now()))

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
