"""A stand-in for Meta's Instagram Login endpoints and Graph API, written from the wire formats
Meta documents alone (it shares no code with Reelay's sandbox), so a live-mode Reelay can be
driven end to end against something that refuses what Meta refuses.

It records every call, fetches ``image_url``/``video_url`` over HTTP like Meta does, and
answers errors in Meta's shapes: the Graph envelope ``{"error": {message, type, code,
error_subcode, fbtrace_id}}`` and, on the code exchange, the flat
``{"error_type", "code", "error_message"}``.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import itertools
import json
import secrets
import time
from typing import Any

import aiohttp
from aiohttp import web
from PIL import Image

from tests.e2e.meta_records import Account, Call, Container, Fetch, Media, MetaRefusal, missing

LONG_LIVED_S = 5_184_000
VIDEO_READS_IN_PROGRESS = 2
WEBHOOK_FIELDS_KNOWN = {
    "comments",
    "live_comments",
    "messages",
    "messaging_postbacks",
    "messaging_referral",
    "message_reactions",
    "messaging_seen",
    "mentions",
    "story_insights",
}


class FakeMeta:
    """Meta as seen by one app (``app_id``/``app_secret``) with the accounts added to it."""

    def __init__(self, *, app_id: str, app_secret: str, version: str = "v25.0") -> None:
        self.app_id = app_id
        self.app_secret = app_secret
        self.version = version
        self.calls: list[Call] = []
        self.fetches: list[Fetch] = []
        self.accounts: dict[str, Account] = {}
        self.codes: dict[str, tuple[str, str]] = {}  # code -> (ig id, redirect_uri)
        self.short_tokens: dict[str, str] = {}
        self.long_tokens: dict[str, tuple[str, float]] = {}  # token -> (ig id, issued at)
        self.subscriptions: dict[str, list[str]] = {}
        # Messenger profile fields set per account (ice_breakers, persistent_menu).
        self.profiles: dict[str, dict[str, str]] = {}
        self.containers: dict[str, Container] = {}
        self.media: dict[str, Media] = {}
        self.comments: dict[str, dict[str, Any]] = {}
        self.replies: list[dict[str, str]] = []
        self.messages: list[dict[str, Any]] = []
        self.private_replied: set[str] = set()
        self.followers: dict[str, set[str]] = {}  # ig id -> IGSIDs that follow it
        self._ids = itertools.count(17_900_000_000_000_001)
        self._http: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self.url = ""

    # ---------------------------------------------------------------- test controls

    def add_account(self, ig_id: str, username: str, account_type: str = "BUSINESS") -> Account:
        account = Account(ig_id, username, account_type, app_scoped_id=str(next(self._ids)))
        self.accounts[ig_id] = account
        return account

    def authorize(self, ig_id: str, redirect_uri: str) -> str:
        """What Meta's dialog does when the person allows the app: a one-time code."""
        code = "AQ" + secrets.token_urlsafe(24)
        self.codes[code] = (ig_id, redirect_uri)
        return code

    def revoke_tokens(self, ig_id: str) -> None:
        """The person removes the app (or Meta expires its tokens): every token dies."""
        for token, (owner, _) in list(self.long_tokens.items()):
            if owner == ig_id:
                del self.long_tokens[token]

    def comment(self, ig_id: str, media_id: str, text: str, *, igsid: str, username: str) -> bytes:
        """A follower comments on ``media_id``: returns the webhook body Meta would send."""
        comment_id = str(next(self._ids))
        self.comments[comment_id] = {
            "owner": ig_id,
            "media": media_id,
            "from": igsid,
            "username": username,
            "text": text,
            "at": time.time(),
        }
        body = {
            "object": "instagram",
            "entry": [
                {
                    "id": ig_id,
                    "time": int(time.time()),
                    "changes": [
                        {
                            "field": "comments",
                            "value": {
                                "id": comment_id,
                                "from": {"id": igsid, "username": username},
                                "text": text,
                                "media": {"id": media_id, "media_product_type": "FEED"},
                            },
                        }
                    ],
                }
            ],
        }
        return json.dumps(body, separators=(",", ":")).encode()

    def sign(self, body: bytes) -> str:
        return "sha256=" + hmac.new(self.app_secret.encode(), body, hashlib.sha256).hexdigest()

    def calls_to(self, suffix: str, method: str | None = None) -> list[Call]:
        return [
            c
            for c in self.calls
            if c.endpoint.endswith(suffix) and (method is None or c.method == method)
        ]

    # ---------------------------------------------------------------- server

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20))
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._http is not None:
            await self._http.close()

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        params = dict(request.query)
        body: dict[str, Any] = {}
        if request.can_read_body:
            if request.content_type == "application/json":
                try:
                    loaded = await request.json()
                except ValueError:
                    return MetaRefusal(100, "(#100) Invalid JSON body").response()
                body = loaded if isinstance(loaded, dict) else {}
            else:
                body = dict(await request.post())
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        call = Call(
            request.method,
            request.path,
            params,
            body,
            token.strip() if scheme.lower() == "bearer" else None,
        )
        self.calls.append(call)
        try:
            answer = await self._route(call, {**params, **{k: str(v) for k, v in body.items()}})
        except MetaRefusal as refusal:
            response = refusal.response()
        else:
            response = answer
        call.answer_status = response.status
        return response

    async def _route(self, call: Call, args: dict[str, str]) -> web.Response:
        parts = call.path.strip("/").split("/")
        if call.method == "POST" and parts == ["oauth", "access_token"]:
            return self._exchange_code(args)
        if call.method == "GET" and parts == ["access_token"]:
            return self._long_lived(args)
        if call.method == "GET" and parts == ["refresh_access_token"]:
            return self._refresh(args)
        if not parts or parts[0] != self.version:
            raise MetaRefusal(2500, f"Unknown path components: /{'/'.join(parts)}")
        owner = self._caller(call)
        node, edge = parts[1] if len(parts) > 1 else "", "/".join(parts[2:])
        if node == "me" and not edge and call.method == "GET":
            account = self.accounts[owner]
            return web.json_response(
                {
                    "id": account.app_scoped_id,
                    "user_id": account.ig_id,
                    "username": account.username,
                    "account_type": account.account_type,
                }
            )
        handler = {
            ("POST", "subscribed_apps"): self._subscribe,
            ("DELETE", "subscribed_apps"): self._unsubscribe,
            ("POST", "messenger_profile"): self._set_profile,
            ("DELETE", "messenger_profile"): self._delete_profile,
            ("POST", "media"): self._create_container,
            ("GET", "media"): self._media_list,
            ("POST", "media_publish"): self._publish,
            ("GET", "content_publishing_limit"): self._publishing_limit,
            ("POST", "messages"): self._message,
            ("POST", "comments"): self._comment_on_media,
            ("GET", "comments"): self._media_comments,
            ("POST", "replies"): self._reply,
            ("POST", ""): self._moderate,
            ("DELETE", ""): self._moderate,
            ("GET", "insights"): self._insights,
            ("GET", ""): self._read_node,
        }.get((call.method, edge))
        if handler is None:
            raise MetaRefusal(
                100,
                f"Unsupported {call.method.lower()} request. Object with ID '{node}' does not "
                "exist, cannot be loaded due to missing permissions, or does not support this "
                "operation.",
                subcode=33,
                kind="GraphMethodException",
            )
        return await handler(owner, node, call, args)

    # ---------------------------------------------------------------- OAuth

    def _oauth_refusal(self, message: str) -> web.Response:
        return web.json_response(
            {"error_type": "OAuthException", "code": 400, "error_message": message}, status=400
        )

    def _exchange_code(self, args: dict[str, str]) -> web.Response:
        for name in ("client_id", "client_secret", "grant_type", "redirect_uri", "code"):
            if not args.get(name):
                return self._oauth_refusal(f"Missing required field '{name}'")
        if args["client_id"] != self.app_id:
            return self._oauth_refusal("Invalid platform app")
        if args["client_secret"] != self.app_secret:
            return self._oauth_refusal("Error validating client secret.")
        if args["grant_type"] != "authorization_code":
            return self._oauth_refusal("Invalid grant_type")
        found = self.codes.pop(args["code"], None)
        if found is None:
            return self._oauth_refusal("Matching code was not found or was already used.")
        ig_id, redirect_uri = found
        if args["redirect_uri"] != redirect_uri:
            return self._oauth_refusal(
                "Error validating verification code. Please make sure "
                "your redirect_uri is identical to the one you used in "
                "the OAuth dialog request"
            )
        token = "IGQ-short-" + secrets.token_urlsafe(16)
        self.short_tokens[token] = ig_id
        account = self.accounts[ig_id]
        return web.json_response(
            {
                "data": [
                    {
                        "access_token": token,
                        "user_id": account.app_scoped_id,
                        "permissions": "instagram_business_basic,"
                        "instagram_business_manage_messages,"
                        "instagram_business_manage_comments,"
                        "instagram_business_content_publish",
                    }
                ]
            }
        )

    def _issue_long(self, ig_id: str) -> web.Response:
        token = "IGAA-long-" + secrets.token_urlsafe(24)
        self.long_tokens[token] = (ig_id, time.time())
        return web.json_response(
            {"access_token": token, "token_type": "bearer", "expires_in": LONG_LIVED_S}
        )

    def _long_lived(self, args: dict[str, str]) -> web.Response:
        if args.get("grant_type") != "ig_exchange_token":
            raise missing("grant_type")
        if args.get("client_secret") != self.app_secret:
            raise MetaRefusal(101, "Error validating client secret.")
        ig_id = self.short_tokens.get(args.get("access_token", ""))
        if ig_id is None:
            raise MetaRefusal(190, "Invalid OAuth access token - Cannot parse access token")
        return self._issue_long(ig_id)

    def _refresh(self, args: dict[str, str]) -> web.Response:
        if args.get("grant_type") != "ig_refresh_token":
            raise missing("grant_type")
        found = self.long_tokens.get(args.get("access_token", ""))
        if found is None:
            raise MetaRefusal(190, "Invalid OAuth access token - Cannot parse access token")
        if time.time() - found[1] < 24 * 3600:
            raise MetaRefusal(100, "Token must be at least 24 hours old to be refreshed")
        return self._issue_long(found[0])

    # ---------------------------------------------------------------- Graph

    def _caller(self, call: Call) -> str:
        if not call.bearer:
            raise MetaRefusal(190, "An active access token must be used to query information.")
        found = self.long_tokens.get(call.bearer)
        if found is None:
            raise MetaRefusal(190, "Invalid OAuth access token - Cannot parse access token")
        return found[0]

    @staticmethod
    def _own(owner: str, node: str) -> None:
        if node != owner:
            raise MetaRefusal(
                100,
                f"Unsupported request. Object with ID '{node}' does not exist, cannot be loaded "
                "due to missing permissions, or does not support this operation.",
                subcode=33,
                kind="GraphMethodException",
            )

    async def _subscribe(
        self, owner: str, node: str, call: Call, args: dict[str, str]
    ) -> web.Response:
        self._own(owner, node)
        # Meta documents: POST /{ig-id}/subscribed_apps?subscribed_fields=... (query string).
        raw = call.params.get("subscribed_fields", "")
        if not raw:
            raise missing("subscribed_fields")
        fields = [f for f in raw.split(",") if f]
        unknown = [f for f in fields if f not in WEBHOOK_FIELDS_KNOWN]
        if unknown:
            raise MetaRefusal(100, f"(#100) Param subscribed_fields must be one of {unknown}")
        self.subscriptions[owner] = fields
        return web.json_response({"success": True})

    async def _unsubscribe(
        self, owner: str, node: str, call: Call, args: dict[str, str]
    ) -> web.Response:
        self._own(owner, node)
        self.subscriptions.pop(owner, None)
        return web.json_response({"success": True})

    async def _set_profile(
        self, owner: str, node: str, call: Call, args: dict[str, str]
    ) -> web.Response:
        # Meta documents: POST /me/messenger_profile with platform=instagram.
        self._own(owner, owner if node == "me" else node)
        if args.get("platform") != "instagram":
            raise missing("platform")
        fields = {k: v for k, v in args.items() if k in ("ice_breakers", "persistent_menu")}
        if not fields:
            raise missing("ice_breakers")
        self.profiles.setdefault(owner, {}).update(fields)
        return web.json_response({"result": "success"})

    async def _delete_profile(
        self, owner: str, node: str, call: Call, args: dict[str, str]
    ) -> web.Response:
        self._own(owner, owner if node == "me" else node)
        for name in ("ice_breakers", "persistent_menu"):
            if name in args.get("fields", ""):
                self.profiles.get(owner, {}).pop(name, None)
        return web.json_response({"result": "success"})

    async def _fetch(self, url: str, *, image: bool) -> bytes:
        if not url.startswith(("http://", "https://")):
            raise MetaRefusal(9004, "The media could not be fetched from this URI", subcode=2207052)
        assert self._http is not None
        try:
            async with self._http.get(url) as response:
                data = await response.read()
                kind = response.headers.get("Content-Type", "").split(";")[0].strip()
                self.fetches.append(Fetch(url, response.status, kind, len(data)))
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.fetches.append(Fetch(url, 0, "", 0))
            raise MetaRefusal(
                9004, f"The media could not be fetched from this URI: {exc}", subcode=2207052
            ) from exc
        if status != 200:
            raise MetaRefusal(9004, "The media could not be fetched from this URI", subcode=2207052)
        if image:
            if kind != "image/jpeg" or not data.startswith(b"\xff\xd8"):
                raise MetaRefusal(36001, "The image format is not supported", subcode=2207005)
            if len(data) > 8 * 1024 * 1024:
                raise MetaRefusal(36000, "The image is too large", subcode=2207004)
            width, height = Image.open(io.BytesIO(data)).size
            if not 0.8 <= width / height <= 1.91:
                raise MetaRefusal(36003, "The aspect ratio is not supported", subcode=2207009)
        elif kind not in {"video/mp4", "video/quicktime"}:
            raise MetaRefusal(352, "The video format is not supported", subcode=2207026)
        return data

    async def _create_container(
        self, owner: str, node: str, call: Call, args: dict[str, str]
    ) -> web.Response:
        self._own(owner, node)
        media_type = args.get("media_type", "").upper()
        item = args.get("is_carousel_item", "").lower() == "true"
        caption = args.get("caption", "")
        if len(caption) > 2200:
            raise MetaRefusal(36004, "The caption is too long", subcode=2207010)
        container = Container(str(next(self._ids)), owner, "", dict(args), carousel_item=item)
        if media_type == "CAROUSEL":
            children = self._carousel_children(owner, args)
            container.media_type, container.children = "CAROUSEL", children
            container.status_code = "FINISHED"
        elif media_type in {"REELS", "VIDEO"} or (media_type == "STORIES" and "video_url" in args):
            if media_type == "REELS" and item:
                raise MetaRefusal(100, "(#100) Reels cannot be carousel items")
            if media_type == "VIDEO" and not item:
                raise MetaRefusal(
                    100, "(#100) The VIDEO media type is only for carousel items; use REELS"
                )
            url = args.get("video_url", "")
            if not url:
                raise missing("video_url")
            container.media_type = media_type
            try:
                await self._fetch(url, image=False)
            except MetaRefusal as refusal:
                # Meta takes a video container and reports the failure in its status.
                container.status_code, container.status = "ERROR", refusal.message
        elif media_type in {"", "IMAGE", "STORIES"}:
            url = args.get("image_url", "")
            if not url:
                if args.get("video_url"):
                    raise MetaRefusal(
                        100, "(#100) A video needs media_type REELS (or VIDEO for a carousel item)"
                    )
                raise missing("image_url")
            await self._fetch(url, image=True)
            container.media_type = "STORIES" if media_type == "STORIES" else "IMAGE"
            container.status_code = "FINISHED"
        else:
            raise MetaRefusal(100, f"(#100) Unsupported media_type {media_type}")
        self.containers[container.id] = container
        return web.json_response({"id": container.id})

    def _carousel_children(self, owner: str, args: dict[str, str]) -> list[str]:
        children = [c for c in args.get("children", "").split(",") if c]
        if not children:
            raise missing("children")
        if not 2 <= len(children) <= 10:
            raise MetaRefusal(100, "(#100) A carousel needs 2 to 10 children")
        for child in children:
            found = self.containers.get(child)
            if found is None or found.owner != owner or not found.carousel_item:
                raise MetaRefusal(100, f"(#100) Invalid child container {child}")
            if found.status_code != "FINISHED":
                raise MetaRefusal(9007, "Media ID is not available", subcode=2207027)
        return children

    async def _read_node(
        self, owner: str, node: str, call: Call, args: dict[str, str]
    ) -> web.Response:
        fields = [f for f in args.get("fields", "").split(",") if f]
        if node in self.containers:
            container = self.containers[node]
            self._own(owner, container.owner)
            if container.status_code == "IN_PROGRESS":
                container.reads += 1
                if container.reads > VIDEO_READS_IN_PROGRESS:
                    container.status_code = "FINISHED"
            values: dict[str, Any] = {
                "id": container.id,
                "status_code": container.status_code,
                "status": container.status or container.status_code,
            }
        elif node in self.media:
            media = self.media[node]
            self._own(owner, media.owner)
            values = {
                "id": media.id,
                "permalink": media.permalink,
                "timestamp": media.timestamp,
                "caption": media.caption,
                "media_type": media.media_type,
                "comments_count": len(media.comments),
                "like_count": 0,
            }
        elif node in self.accounts:
            self._own(owner, node)
            account = self.accounts[node]
            values = {
                "id": node,
                "username": account.username,
                "followers_count": 120,
                "follows_count": 10,
                "media_count": len([m for m in self.media.values() if m.owner == node]),
                "profile_picture_url": "",
            }
        elif node in self.comments:
            comment = self.comments[node]
            self._own(owner, comment["owner"])
            author = {"id": comment["from"], "username": comment["username"]}
            values = {"id": node, "text": comment["text"], "hidden": bool(comment.get("hidden"))}
            values |= {"media": {"id": comment["media"]}, "from": author}
        elif node in {c["from"] for c in self.comments.values() if c["owner"] == owner}:
            # The user-profile API, for a person who wrote to the account.
            values = {
                "id": node,
                "username": f"person_{node[-4:]}",
                "is_user_follow_business": node in self.followers.get(owner, set()),
            }
        else:
            self._own(owner, node)
            values = {}
        if not fields:
            fields = ["id"]
        return web.json_response({k: values[k] for k in ["id", *fields] if k in values})

    async def _publishing_limit(
        self, owner: str, node: str, call: Call, args: dict[str, str]
    ) -> web.Response:
        self._own(owner, node)
        used = len([m for m in self.media.values() if m.owner == owner])
        return web.json_response(
            {
                "data": [
                    {
                        "quota_usage": used,
                        "config": {"quota_total": 100, "quota_duration": 86400},
                    }
                ]
            }
        )

    async def _publish(
        self, owner: str, node: str, call: Call, args: dict[str, str]
    ) -> web.Response:
        self._own(owner, node)
        # Meta documents: POST /{ig-id}/media_publish?creation_id=... (query string).
        creation = call.params.get("creation_id", "")
        if not creation:
            raise missing("creation_id")
        container = self.containers.get(creation)
        if container is None or container.owner != owner or container.carousel_item:
            raise MetaRefusal(100, f"(#100) Invalid creation_id {creation}")
        if container.status_code == "IN_PROGRESS":
            raise MetaRefusal(9007, "Media ID is not available", subcode=2207027)
        if container.status_code == "ERROR":
            raise MetaRefusal(-2, "The media could not be processed", subcode=2207001)
        if container.status_code == "PUBLISHED":
            raise MetaRefusal(100, "(#100) This container was already published")
        media_id = str(next(self._ids))
        container.status_code, container.media_id = "PUBLISHED", media_id
        self.media[media_id] = Media(
            id=media_id,
            owner=owner,
            container=creation,
            caption=container.fields.get("caption", ""),
            media_type=container.media_type,
            timestamp=time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime()),
            permalink=f"https://www.instagram.com/p/{secrets.token_urlsafe(8)}/",
        )
        return web.json_response({"id": media_id})

    async def _media_list(
        self, owner: str, node: str, call: Call, args: dict[str, str]
    ) -> web.Response:
        self._own(owner, node)
        rows = [
            {
                "id": m.id,
                "caption": m.caption,
                "media_type": m.media_type,
                "permalink": m.permalink,
                "timestamp": m.timestamp,
                "comments_count": len(m.comments)
                + sum(1 for c in self.comments.values() if c["media"] == m.id),
            }
            for m in reversed(list(self.media.values()))
            if m.owner == owner
        ]
        return web.json_response({"data": rows})

    async def _media_comments(
        self, owner: str, node: str, call: Call, args: dict[str, str]
    ) -> web.Response:
        """``GET /{media-id}/comments``: the followers' comments, in one page."""
        media = self.media.get(node)
        self._own(owner, media.owner if media else "")
        rows = [
            {
                "id": comment_id,
                "text": c["text"],
                "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(c["at"])),
                "from": {"id": c["from"], "username": c["username"]},
                "username": c["username"],
            }
            for comment_id, c in self.comments.items()
            if c["media"] == node
        ]
        return web.json_response({"data": rows})

    async def _comment_on_media(
        self, owner: str, node: str, call: Call, args: dict[str, str]
    ) -> web.Response:
        media = self.media.get(node)
        self._own(owner, media.owner if media else "")
        assert media is not None
        if not args.get("message"):
            raise missing("message")
        comment_id = str(next(self._ids))
        media.comments.append({"id": comment_id, "text": args["message"]})
        return web.json_response({"id": comment_id})

    async def _reply(self, owner: str, node: str, call: Call, args: dict[str, str]) -> web.Response:
        comment = self.comments.get(node)
        self._own(owner, comment["owner"] if comment else "")
        if not args.get("message"):
            raise missing("message")
        reply_id = str(next(self._ids))
        self.replies.append({"id": reply_id, "comment_id": node, "message": args["message"]})
        return web.json_response({"id": reply_id})

    async def _moderate(self, owner: str, node: str, call: Call, args: dict[str, str]) -> Any:
        """``POST /{comment}?hide=true|false`` (the query string, as Meta documents it), or
        ``DELETE /{comment}``."""
        comment = self.comments.get(node)
        self._own(owner, comment["owner"] if comment else "")
        if call.method == "DELETE":
            del self.comments[node]
        elif call.params.get("hide") in {"true", "false"}:
            self.comments[node]["hidden"] = call.params["hide"] == "true"
        else:
            raise missing("hide")
        return web.json_response({"success": True})

    async def _message(
        self, owner: str, node: str, call: Call, args: dict[str, str]
    ) -> web.Response:
        self._own(owner, node)
        recipient = call.body.get("recipient")
        message = call.body.get("message")
        if not isinstance(recipient, dict) or not recipient:
            raise missing("recipient")
        if not isinstance(message, dict) or not message:
            raise missing("message")
        text = message.get("text")
        if text is not None and len(str(text).encode()) > 1000:
            raise MetaRefusal(100, "(#100) Length of param message[text] must be less than 1000")
        comment_id = recipient.get("comment_id")
        if comment_id is not None:
            comment = self.comments.get(str(comment_id))
            if comment is None or comment["owner"] != owner:
                raise MetaRefusal(100, "(#100) No matching comment", subcode=2534001)
            if comment_id in self.private_replied:
                raise MetaRefusal(
                    10, "This message is sent outside of allowed window.", subcode=2534025
                )
            self.private_replied.add(str(comment_id))
            person = comment["from"]
        else:
            person = str(recipient.get("id") or "")
            if not any(c["from"] == person and c["owner"] == owner for c in self.comments.values()):
                raise MetaRefusal(
                    10, "This message is sent outside of allowed window.", subcode=2534022
                )
        message_id = "aWdfZAG1f" + secrets.token_urlsafe(12)
        self.messages.append({"recipient": recipient, "message": message, "id": message_id})
        return web.json_response({"recipient_id": person, "message_id": message_id})

    async def _insights(
        self, owner: str, node: str, call: Call, args: dict[str, str]
    ) -> web.Response:
        metrics = [m for m in args.get("metric", "").split(",") if m]
        if not metrics:
            raise missing("metric")
        if node in self.media:
            self._own(owner, self.media[node].owner)
            rows = [
                {"name": m, "period": "lifetime", "values": [{"value": 3}], "id": f"{node}/{m}"}
                for m in metrics
            ]
            return web.json_response({"data": rows})
        self._own(owner, node)
        gone = {"impressions", "profile_views", "website_clicks", "email_contacts"}
        if gone & set(metrics):
            raise MetaRefusal(100, f"(#100) metric[0] must be one of the valid metrics: {gone}")
        if not args.get("period"):
            raise missing("period")
        rows = [
            {
                "name": m,
                "period": args["period"],
                "total_value": {"value": 5},
                "id": f"{node}/insights/{m}/{args['period']}",
            }
            for m in metrics
        ]
        return web.json_response({"data": rows})
