"""A small local web server with media files, like the public URLs Meta fetches."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web
from PIL import Image


def image_bytes(width: int, height: int, fmt: str = "JPEG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 80, 40)).save(out, fmt)
    return out.getvalue()


MP4 = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41" + b"\x00" * 512

FILES: dict[str, tuple[bytes, str]] = {
    "/square.jpg": (image_bytes(1080, 1080), "image/jpeg"),
    "/portrait.jpg": (image_bytes(1080, 1350), "image/jpeg"),
    "/panorama.jpg": (image_bytes(3000, 1000), "image/jpeg"),
    "/tall.jpg": (image_bytes(1080, 1920), "image/jpeg"),
    "/photo.png": (image_bytes(1080, 1080, "PNG"), "image/png"),
    "/clip.mp4": (MP4, "video/mp4"),
    "/clip.avi": (b"RIFF\x00\x00\x00\x00AVI LIST" + b"\x00" * 512, "video/x-msvideo"),
}


@asynccontextmanager
async def media_server() -> AsyncIterator[str]:
    """Serve FILES on a free port; yields the base URL (anything else is 404)."""

    async def serve(request: web.Request) -> web.Response:
        found = FILES.get(request.path)
        if found is None:
            raise web.HTTPNotFound()
        return web.Response(body=found[0], content_type=found[1])

    app = web.Application()
    app.router.add_get("/{name}", serve)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
