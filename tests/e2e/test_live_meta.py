"""Live mode end to end: `reelay run` with a Meta app configured (so no sandbox), every Meta
URL pointing at an independent fake of Meta (tests/e2e/fake_meta.py), driven as a user would:
first run, connect Instagram, schedule a post, answer a signed comment webhook."""

from __future__ import annotations

import asyncio
import io
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from PIL import Image

from tests.e2e.fake_meta import FakeMeta
from tests.media_samples import video_bytes

pytestmark = pytest.mark.timeout(90)

APP_ID = "912345678901234"
APP_SECRET = "live-app-secret-0f9e8d7c"
VERIFY_TOKEN = "live-verify-token"
IG_ID = "17841405555555555"
PASSWORD = "a long enough password"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, page[:2000]
    return found.group(1)


def _jpeg(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 80, 40)).save(out, "JPEG", quality=90)
    return out.getvalue()


@dataclass
class Live:
    base: str
    fake: FakeMeta
    var_dir: Path
    log: Path
    proc: subprocess.Popen[bytes]
    http: aiohttp.ClientSession

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
async def live(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[Live]:
    # An up-to-date database in VAR_DIR: migrating a fresh one is test_cli_run's part.
    (tmp_path / "var").mkdir(mode=0o700)
    shutil.copy(sqlite_template, tmp_path / "var" / "reelay.sqlite3")
    fake = FakeMeta(app_id=APP_ID, app_secret=APP_SECRET)
    meta = await fake.start()
    fake.add_account(IG_ID, "shop_live")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"REDIS_URL", "DATABASE_URL", "TELEGRAM_TOKEN", "DISCORD_TOKEN"}
        and not k.startswith("OPENAI_")
    }
    env.update(
        META_APP_ID=APP_ID,
        META_APP_SECRET=APP_SECRET,
        META_VERIFY_TOKEN=VERIFY_TOKEN,
        GRAPH_HOST=meta,
        FACEBOOK_GRAPH_HOST=meta,
        INSTAGRAM_OAUTH_URL=f"{meta}/oauth/authorize",
        INSTAGRAM_TOKEN_URL=f"{meta}/oauth/access_token",
        PUBLIC_BASE_URL=base,
        PANEL_PORT=str(port),
        VAR_DIR=str(tmp_path / "var"),
        PUBLISH_STATUS_INTERVAL_S="0.1",
    )
    log = tmp_path / "reelay.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "reelay", "run"],
            cwd=tmp_path,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    http = aiohttp.ClientSession(
        cookie_jar=aiohttp.CookieJar(unsafe=True), timeout=aiohttp.ClientTimeout(total=15)
    )
    world = Live(base, fake, tmp_path / "var", log, proc, http)
    try:
        deadline = time.monotonic() + 40
        while True:
            assert proc.poll() is None, world.output()
            try:
                async with http.get(f"{base}/healthz") as response:
                    if response.status == 200:
                        break
            except aiohttp.ClientError:
                pass
            assert time.monotonic() < deadline, world.output()
            await asyncio.sleep(0.05)
        yield world
    finally:
        await http.close()
        proc.send_signal(signal.SIGINT)
        try:
            await asyncio.to_thread(proc.wait, 30)
        finally:
            if proc.poll() is None:
                proc.kill()
            await fake.stop()
    assert proc.returncode == 0, world.output()
    assert "Traceback" not in world.output(), world.output()


async def _until(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def _first_run(live: Live) -> None:
    async with live.http.get(f"{live.base}/setup/first-run") as response:
        assert response.status == 200
        page = await response.text()
    form = {
        "csrf_token": _csrf(page),
        "email": "owner@shop.example",
        "password": PASSWORD,
        "password_confirm": PASSWORD,
        "workspace": "Shop",
    }
    async with live.http.post(
        f"{live.base}/setup/first-run", data=form, allow_redirects=False
    ) as response:
        assert response.status in (302, 303), await response.text()


async def _connect_instagram(live: Live) -> None:
    async with live.http.get(f"{live.base}/instagram/connect", allow_redirects=False) as response:
        assert response.status in (302, 303), await response.text()
        dialog = response.headers["Location"]
    assert dialog.startswith(f"{live.fake.url}/oauth/authorize?")
    query = {k: v[0] for k, v in parse_qs(urlsplit(dialog).query).items()}
    assert query["client_id"] == APP_ID and query["response_type"] == "code"
    assert "instagram_business_content_publish" in query["scope"]
    assert query["redirect_uri"] == f"{live.base}/instagram/callback"
    code = live.fake.authorize(IG_ID, query["redirect_uri"])
    # Meta appends "#_" to the code in its redirect.
    async with live.http.get(
        f"{live.base}/instagram/callback",
        params={"code": code + "#_", "state": query["state"]},
        allow_redirects=False,
    ) as response:
        assert response.status in (302, 303), await response.text()
        assert urlsplit(response.headers["Location"]).path == "/accounts"
    async with live.http.get(f"{live.base}/accounts") as response:
        page = await response.text()
    assert "Connected @shop_live." in page, page
    assert "@shop_live" in page and "Active" in page and "instagram login" in page
    assert "subscribed" in page and "not subscribed" not in page
    assert "reelay_demo" not in page and "sandbox" not in page.lower()
    assert "comments" in live.fake.subscriptions[IG_ID]


def _stored_bytes(var_dir: Path) -> bytes:
    return b"".join(p.read_bytes() for p in var_dir.glob("reelay.sqlite3*"))


async def _api_token(live: Live) -> str:
    async with live.http.get(f"{live.base}/settings/api-tokens") as response:
        page = await response.text()
    form = {"csrf_token": _csrf(page), "name": "e2e", "role": "admin"}
    async with live.http.post(f"{live.base}/settings/api-tokens", data=form) as response:
        assert response.status == 201, await response.text()
        page = await response.text()
    found = re.search(r'data-testid="api-token">([^<]+)<', page)
    assert found, page
    return found.group(1).strip()


async def _settled(live: Live, api: dict[str, str], post_id: int) -> dict[str, Any]:
    """The post once the worker is done with it (published, failed...)."""
    deadline = time.monotonic() + 20
    while True:
        async with live.http.get(f"{live.base}/api/v1/posts/{post_id}", headers=api) as response:
            found: dict[str, Any] = await response.json()
        if found["status"] not in ("scheduled", "publishing", "retrying"):
            return found
        assert time.monotonic() < deadline, found
        await asyncio.sleep(0.05)


async def _upload(live: Live, api: dict[str, str], data: bytes, name: str, mime: str) -> Any:
    upload = aiohttp.FormData()
    upload.add_field("file", data, filename=name, content_type=mime)
    async with live.http.post(f"{live.base}/api/v1/media", data=upload, headers=api) as response:
        assert response.status == 201, await response.text()
        return await response.json()


async def _schedule(live: Live, api: dict[str, str], body: dict[str, Any]) -> Any:
    async with live.http.post(f"{live.base}/api/v1/posts", json=body, headers=api) as response:
        assert response.status == 201, await response.text()
        post = await response.json()
    assert post["status"] == "scheduled"
    return post


async def _account_id(live: Live) -> int:
    async with live.http.get(f"{live.base}/accounts") as response:
        page = await response.text()
    found = re.search(r'id="account-(\d+)"', page)
    assert found, page
    return int(found.group(1))


async def test_live_mode_connects_publishes_and_answers_against_a_fake_meta(live: Live) -> None:
    fake = live.fake
    await _first_run(live)
    await _connect_instagram(live)

    tokens = [*fake.short_tokens, *fake.long_tokens]
    assert tokens
    stored = _stored_bytes(live.var_dir)
    for token in tokens:
        assert token.encode() not in stored, "an Instagram token is stored in plaintext"
    assert APP_SECRET.encode() not in live.output().encode()
    for token in tokens:
        assert token not in live.output(), "a token reached the log"

    connect_calls = len(fake.calls)
    secret = await _api_token(live)
    api = {"Authorization": f"Bearer {secret}"}
    account_id = await _account_id(live)

    asset = await _upload(live, api, _jpeg(1080, 1080), "shop.jpg", "image/jpeg")
    assert asset["url"].startswith(f"{live.base}/media/")

    at = (datetime.now(UTC) + timedelta(seconds=3)).replace(microsecond=0)
    body = {
        "account_id": account_id,
        "kind": "image",
        "media_ids": [asset["id"]],
        "caption": "New in the shop #live",
        "scheduled_at": at.isoformat(),
    }
    post = await _schedule(live, api, body)
    published = await _settled(live, api, post["id"])
    assert published["status"] == "published", published
    publish_call = fake.calls_to("/media_publish", "POST")
    assert len(publish_call) == 1
    container_calls = fake.calls_to(f"{IG_ID}/media", "POST")
    assert len(container_calls) == 1
    container_call = container_calls[0]
    container_id = next(c.id for c in fake.containers.values())
    assert container_call.body["image_url"] == asset["url"]
    assert container_call.body["caption"] == "New in the shop #live"
    assert publish_call[0].params["creation_id"] == container_id
    assert [f.url for f in fake.fetches] == [asset["url"]]
    assert fake.fetches[0].status == 200 and fake.fetches[0].content_type == "image/jpeg"
    media_id = next(iter(fake.media))
    names = {
        ("POST", f"{IG_ID}/media"): "container",
        ("GET", container_id): "status",
        ("GET", f"{IG_ID}/content_publishing_limit"): "quota",
        ("POST", f"{IG_ID}/media_publish"): "publish",
        ("GET", media_id): "permalink",
    }
    flow = [names.get((c.method, c.endpoint), c.endpoint) for c in fake.calls[connect_calls:]]
    # A single image's container is ready once created (Meta fetched it during the call), so
    # a status read is optional; when made, it comes before publishing.
    assert [step for step in flow if step != "status"] == [
        "container",
        "quota",
        "publish",
        "permalink",
    ], flow
    assert "status" not in flow[flow.index("publish") :], flow
    assert "permalink" in fake.calls[-1].params["fields"]
    assert published["permalink"] == fake.media[media_id].permalink
    published_at = datetime.fromisoformat(str(published["published_at"]))
    assert at <= published_at < at + timedelta(seconds=2), (at, published_at)

    # A reel: Meta fetches the video and reports IN_PROGRESS a couple of times first.
    video = await _upload(live, api, video_bytes(8.0), "reel.mp4", "video/mp4")
    reel_at = datetime.now(UTC) + timedelta(seconds=1)
    reel = await _schedule(
        live,
        api,
        {
            "account_id": account_id,
            "kind": "reel",
            "media_ids": [video["id"]],
            "caption": "Behind the scenes",
            "scheduled_at": reel_at.isoformat(),
        },
    )
    done = await _settled(live, api, reel["id"])
    assert done["status"] == "published", done
    reel_container = next(c for c in fake.containers.values() if c.media_type == "REELS")
    assert reel_container.fields["video_url"] == video["url"]
    assert reel_container.fields["caption"] == "Behind the scenes"
    assert fake.fetches[-1].url == video["url"] and fake.fetches[-1].content_type == "video/mp4"
    reads = fake.calls_to(reel_container.id, "GET")
    assert len(reads) == 3 and reel_container.reads == 3
    (reel_publish,) = [
        c
        for c in fake.calls_to("/media_publish", "POST")
        if c.params["creation_id"] == reel_container.id
    ]
    assert fake.calls.index(reads[-1]) < fake.calls.index(reel_publish)
    assert done["permalink"] == fake.media[reel_container.media_id or ""].permalink

    rule = {
        "name": "Price",
        "account_id": account_id,
        "trigger": "comment",
        "keywords": ["price"],
        "comment_replies": ["Sent you the prices, @{username}!"],
        "dm_type": "text",
        "dm_variations": ["Our prices: https://shop.example/prices"],
    }
    async with live.http.post(f"{live.base}/api/v1/rules", json=rule, headers=api) as response:
        assert response.status == 201, await response.text()

    async with live.http.post(
        f"{live.base}/webhooks/meta",
        data=b'{"object":"instagram","entry":[]}',
        headers={"X-Hub-Signature-256": "sha256=" + "0" * 64},
    ) as response:
        assert response.status == 403
    async with live.http.get(
        f"{live.base}/webhooks/meta",
        params={"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "42"},
    ) as response:
        assert response.status == 200 and await response.text() == "42"

    delivery = fake.comment(
        IG_ID, media_id, "What's the PRICE?", igsid="5550001", username="curious_cat"
    )
    async with live.http.post(
        f"{live.base}/webhooks/meta",
        data=delivery,
        headers={"Content-Type": "application/json", "X-Hub-Signature-256": fake.sign(delivery)},
    ) as response:
        assert response.status == 200, await response.text()
    await _until(lambda: fake.replies and fake.messages, 15, "the public and private replies")
    comment_id = next(iter(fake.comments))
    assert fake.replies == [
        {
            "id": fake.replies[0]["id"],
            "comment_id": comment_id,
            "message": "Sent you the prices, @curious_cat!",
        }
    ]
    assert len(fake.messages) == 1
    assert fake.messages[0]["recipient"] == {"comment_id": comment_id}
    assert fake.messages[0]["message"]["text"] == "Our prices: https://shop.example/prices"

    refused = [c for c in fake.calls if c.answer_status != 200]
    assert not refused, [(c.method, c.path, c.answer_status) for c in refused]
    for call in fake.calls:
        if call.path.startswith(f"/{fake.version}/"):
            assert call.bearer in fake.long_tokens, call

    # The person removes the app on Instagram: Meta answers 190 and the account is flagged.
    fake.revoke_tokens(IG_ID)
    body["scheduled_at"] = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    published = await _settled(live, api, (await _schedule(live, api, body))["id"])
    assert published["status"] == "failed", published
    assert "reconnect" in str(published["last_error"]).lower(), published
    assert fake.calls[-1].answer_status == 400 and fake.calls[-1].endpoint == f"{IG_ID}/media"
    assert len(fake.media) == 2
    async with live.http.get(f"{live.base}/accounts") as response:
        page = await response.text()
    assert "Needs reconnect" in page, page
