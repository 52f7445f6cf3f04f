"""Request bodies: small everywhere, large only on upload routes after sign-in, never held
whole; a body that arrives too slowly is cut off; image decoding stays bounded."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import pytest
from werkzeug.datastructures import FileStorage

from core.settings import Settings
from tests.media_samples import image_bytes, video_bytes
from tests.memory import peak_growth
from tests.panel.helpers import CSRF
from tests.panel.sandbox_world import World, sandbox_world

MB = 1024 * 1024
BODY_LIMIT = MB


@pytest.fixture
def settings(settings_factory: Any, sandbox: Any) -> Settings:
    made: Settings = settings_factory(sandbox_url=sandbox.url)
    return made


@pytest.fixture
async def world(client: Any, container: Any, sandbox: Any) -> World:
    return await sandbox_world(client, container, sandbox)


def _file(name: str, data: bytes) -> FileStorage:
    return FileStorage(io.BytesIO(data), filename=name)


async def test_an_anonymous_large_form_is_refused_before_it_is_read(client: Any) -> None:
    response = await client.post(
        "/login",
        data=b"email=a%40b.c&password=" + b"x" * (5 * MB),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 413


async def test_an_anonymous_upload_is_held_to_the_small_limit(client: Any) -> None:
    async with client.session_transaction() as session:
        session["csrf_token"] = CSRF
    response = await client.post(
        "/compose/upload",
        files={"file": _file("big.mp4", video_bytes(padding=3 * MB))},
        headers={"X-CSRF-Token": CSRF},
    )
    assert response.status_code == 413


async def test_a_signed_in_form_is_still_held_to_the_small_limit(client: Any, world: World) -> None:
    response = await client.post(
        "/setup/ai",
        data=b"model=" + b"x" * (BODY_LIMIT + 1),
        headers={"Content-Type": "application/x-www-form-urlencoded", "X-CSRF-Token": CSRF},
    )
    assert response.status_code == 413


async def test_a_signed_in_editor_uploads_more_than_the_small_limit(
    client: Any, world: World
) -> None:
    response = await client.post(
        "/compose/upload",
        files={"file": _file("clip.mp4", video_bytes(padding=3 * MB))},
        headers={"X-CSRF-Token": CSRF},
    )
    assert response.status_code == 201


async def _upload_three_at_once(client: Any, name: str, data: bytes) -> list[int]:
    responses = await asyncio.gather(
        *(
            client.post(
                "/compose/upload",
                files={"file": _file(f"{n}{name}", data)},
                headers={"X-CSRF-Token": CSRF},
            )
            for n in range(3)
        )
    )
    return [response.status_code for response in responses]


async def test_three_parallel_40_megapixel_uploads_stay_bounded(client: Any, world: World) -> None:
    jpeg = image_bytes(6300, 6300, "JPEG")
    with peak_growth() as grown:
        statuses = await _upload_three_at_once(client, "big.jpg", jpeg)
    assert statuses == [201, 201, 201]
    assert grown[0] < 150 * MB, f"grew by {grown[0] // MB} MB"


async def test_three_parallel_png_conversions_stay_bounded(client: Any, world: World) -> None:
    png = image_bytes(4800, 4800, "PNG")
    with peak_growth() as grown:
        statuses = await _upload_three_at_once(client, "big.png", png)
    assert statuses == [201, 201, 201]
    assert grown[0] < 150 * MB, f"grew by {grown[0] // MB} MB"


async def test_a_png_too_large_to_convert_is_refused_before_decoding(
    client: Any, world: World
) -> None:
    png = image_bytes(6300, 6300, "PNG")
    with peak_growth() as grown:
        response = await client.post(
            "/compose/upload",
            files={"file": _file("huge.png", png)},
            headers={"X-CSRF-Token": CSRF},
        )
    assert response.status_code == 422
    assert "up to 24 megapixels" in (await response.get_json())["error"]
    assert grown[0] < 50 * MB


async def test_a_body_that_stops_arriving_is_cut_off(app: Any) -> None:
    app.app.config["BODY_TIMEOUT"] = 0.5
    sent: list[dict[str, Any]] = []
    hung = asyncio.Event()

    async def receive() -> dict[str, Any]:
        if not sent:
            sent.append({})
            return {"type": "http.request", "body": b"--x\r\n", "more_body": True}
        await hung.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/v1/media",
        "raw_path": b"/api/v1/media",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"localhost"),
            (b"content-type", b"multipart/form-data; boundary=x"),
            (b"content-length", b"100"),
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }
    await asyncio.wait_for(app.app(scope, receive, send), 10)
    starts = [m for m in sent if m.get("type") == "http.response.start"]
    assert starts and starts[0]["status"] == 408
