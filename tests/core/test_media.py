from __future__ import annotations

import asyncio
import hashlib
import io
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from PIL import Image

from core.adapters.public_urls import is_public_address
from core.adapters.storage import DiskStorage, is_valid_key, new_key
from core.bootstrap import Container
from core.db.models import MediaAsset, Workspace
from core.domain.scope import Actor
from core.errors import NotFound, ValidationFailed
from core.services import media
from core.wiring import assemble_services
from tests.media_samples import image_bytes, video_bytes
from tests.memory import peak_growth


@pytest.fixture
def storage(tmp_path: Path) -> DiskStorage:
    return DiskStorage(tmp_path / "media")


def test_sniffs_type_from_content_not_name() -> None:
    assert media.sniff_mime(image_bytes()) == "image/jpeg"
    assert media.sniff_mime(image_bytes(fmt="PNG")) == "image/png"
    assert media.sniff_mime(image_bytes(fmt="WEBP")) == "image/webp"
    assert media.sniff_mime(video_bytes()) == "video/mp4"
    assert media.sniff_mime(video_bytes(brand=b"qt  ")) == "video/quicktime"
    assert media.sniff_mime(b"<html>not an image</html>") is None


@pytest.mark.parametrize("version", [0, 1])
@pytest.mark.parametrize("moov_first", [True, False])
def test_reads_video_duration_and_size_from_the_container(version: int, moov_first: bool) -> None:
    facts = media.read_video_facts(
        video_bytes(12.5, 720, 1280, version=version, moov_first=moov_first)
    )
    assert facts.duration_s == pytest.approx(12.5)
    assert (facts.width, facts.height) == (720, 1280)


def test_rotated_video_reports_the_size_people_see() -> None:
    facts = media.read_video_facts(video_bytes(5, 1920, 1080, rotated=True))
    assert (facts.width, facts.height) == (1080, 1920)


def test_png_and_webp_become_jpeg_with_transparency_on_white() -> None:
    prepared = media.prepare_media(image_bytes(400, 500, fmt="PNG", mode="RGBA"))
    assert prepared.mime == "image/jpeg" and prepared.converted_from == "image/png"
    picture = Image.open(io.BytesIO(prepared.data))
    assert picture.format == "JPEG" and picture.size == (400, 500)
    red, green, _ = picture.getpixel((10, 10))  # type: ignore[misc]
    assert red > 200 and green > 100  # half-transparent red over white is pink
    webp = media.prepare_media(image_bytes(300, 300, fmt="WEBP"))
    assert webp.mime == "image/jpeg" and webp.converted_from == "image/webp"


def test_jpeg_is_kept_byte_for_byte() -> None:
    data = image_bytes(640, 800)
    prepared = media.prepare_media(data)
    assert prepared.data == data and (prepared.width, prepared.height) == (640, 800)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "empty"),
        (b"%PDF-1.7 hello", "not a JPEG"),
        (image_bytes(10, 10, fmt="GIF"), "GIFs"),
        (b"\xff\xd8\xff\xe0 broken jpeg", "damaged"),
        (b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2", "could not read this video"),
    ],
)
def test_refusals_name_the_problem(data: bytes, words: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        media.prepare_media(data)
    assert words in info.value.fields["file"]


def test_keys_are_unguessable_and_checked(storage: DiskStorage) -> None:
    keys = {new_key("jpg") for _ in range(100)}
    assert len(keys) == 100 and all(is_valid_key(k) for k in keys)
    assert not is_valid_key("../../etc/passwd")
    with pytest.raises(NotFound):
        storage.local_path("../secret.jpg")


async def test_disk_storage_round_trip(storage: DiskStorage) -> None:
    key = new_key("mp4")
    await storage.save(key, b"abc" * 1000)
    assert await storage.read(key) == b"abc" * 1000
    assert b"".join([c async for c in storage.stream(key, 100)]) == b"abc" * 1000
    assert await storage.size(key) == 3000
    await storage.delete(key)
    assert await storage.size(key) is None
    with pytest.raises(NotFound):
        await storage.read(key)


async def test_upload_stores_checksum_dimensions_and_dedupes(
    sqlite_db: str, storage: DiskStorage
) -> None:
    workspace = await Workspace.create(name="w")
    png = image_bytes(1080, 1080, fmt="PNG")
    asset = await media.upload_bytes(Actor.system(workspace.id), storage, png, "a.png")
    stored = await storage.read(asset.storage_key)
    assert asset.mime == "image/jpeg" and asset.storage_key.endswith(".jpg")
    assert asset.checksum == hashlib.sha256(stored).hexdigest()
    assert (asset.width, asset.height, asset.size) == (1080, 1080, len(stored))
    again = await media.upload_bytes(Actor.system(workspace.id), storage, png)
    assert again.id == asset.id
    clip = await media.upload_bytes(Actor.system(workspace.id), storage, video_bytes(7), "clip.mov")
    assert (clip.mime, clip.duration_s) == ("video/mp4", pytest.approx(7))
    assert await MediaAsset.filter(workspace_id=workspace.id).count() == 2


async def test_an_uploaded_video_is_stored_from_its_file_without_being_held_whole(
    sqlite_db: str, storage: DiskStorage, tmp_path: Path
) -> None:
    workspace = await Workspace.create(name="w")
    video = tmp_path / "upload.mp4"
    video.write_bytes(video_bytes(12, padding=150 * 1024 * 1024))
    size = video.stat().st_size
    with peak_growth() as grown, video.open("rb") as source:
        asset = await media.upload_file(
            Actor.system(workspace.id), storage, source=source, filename="long.mp4"
        )
    assert (asset.mime, asset.size, asset.duration_s) == ("video/mp4", size, pytest.approx(12))
    assert await storage.size(asset.storage_key) == size
    assert grown[0] < 30 * 1024 * 1024, f"grew by {grown[0] // (1024 * 1024)} MB"


def test_private_files_are_made_private(tmp_path: Path) -> None:
    (tmp_path / "media").mkdir(mode=0o755)
    storage = DiskStorage(tmp_path / "media" / "files")
    asyncio.run(storage.save(new_key("jpg"), b"x"))
    stored = next((tmp_path / "media" / "files").rglob("*.jpg"))
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert stat.S_IMODE(stored.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "media" / "files").stat().st_mode) == 0o700


async def test_converting_an_upload_leaves_the_event_loop_free(
    sqlite_db: str, storage: DiskStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Webhooks and chat buttons served by the same process go on while a file is converted."""
    converted_on_loop: list[bool] = []
    prepare = media.prepare_media

    def watched(data: bytes) -> media.PreparedMedia:
        try:
            asyncio.get_running_loop()
            converted_on_loop.append(True)
        except RuntimeError:
            converted_on_loop.append(False)
        return prepare(data)

    monkeypatch.setattr(media, "prepare_media", watched)
    workspace = await Workspace.create(name="w")
    png = image_bytes(1080, 1350, fmt="PNG")
    asset = await media.upload_bytes(Actor.system(workspace.id), storage, png)
    assert asset.mime == "image/jpeg"
    assert converted_on_loop == [False]


@pytest.fixture
async def linked_files(unused_tcp_port: int) -> AsyncIterator[str]:
    """A local web server with a photo, a redirect to it and a redirect loop."""
    served = {"/photo.webp": image_bytes(500, 500, fmt="WEBP"), "/big": b"x" * 10}

    async def handler(request: web.Request) -> web.Response:
        if request.path == "/moved":
            raise web.HTTPFound("/photo.webp")
        if request.path == "/loop":
            raise web.HTTPFound("/loop")
        body = served.get(request.path)
        return web.Response(body=body) if body is not None else web.Response(status=404)

    app = web.Application()
    app.router.add_get("/{name}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", unused_tcp_port).start()
    yield f"127.0.0.1:{unused_tcp_port}"
    await runner.cleanup()


async def _upload_link(container: Container, *, workspace_id: int, url: str) -> MediaAsset:
    services = assemble_services(container)
    return await media.upload_from_url(
        Actor.system(workspace_id), services.storage, services.downloads, url
    )


async def test_upload_from_url(container: Container, linked_files: str) -> None:
    container.settings = container.settings.model_copy(update={"private_urls_ok": True})
    workspace = await Workspace.create(name="w")
    base = f"http://{linked_files}"
    asset = await _upload_link(container, workspace_id=workspace.id, url=f"{base}/photo.webp?x=1")
    assert asset.mime == "image/jpeg" and asset.filename == "photo.webp"
    moved = await _upload_link(container, workspace_id=workspace.id, url=f"{base}/moved")
    assert moved.id == asset.id  # the redirect led to the same photo
    with pytest.raises(ValidationFailed, match="HTTP 404"):
        await _upload_link(container, workspace_id=workspace.id, url=f"{base}/missing")
    with pytest.raises(ValidationFailed, match="redirects more than 5 times"):
        await _upload_link(container, workspace_id=workspace.id, url=f"{base}/loop")
    with pytest.raises(ValidationFailed, match="http"):
        await _upload_link(container, workspace_id=workspace.id, url="file:///etc/passwd")


@pytest.mark.parametrize(
    "link",
    [
        "http://{files}/photo.webp",
        "http://localhost:{port}/photo.webp",
        "http://[::ffff:127.0.0.1]:{port}/photo.webp",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.1.2.3/photo.jpg",
    ],
)
async def test_links_to_private_or_local_addresses_are_refused_by_default(
    container: Container, linked_files: str, link: str
) -> None:
    assert container.settings.private_urls_ok is False
    workspace = await Workspace.create(name="w")
    url = link.format(files=linked_files, port=linked_files.rsplit(":", 1)[1])
    with pytest.raises(ValidationFailed, match="private or local address"):
        await _upload_link(container, workspace_id=workspace.id, url=url)
    assert await MediaAsset.filter(workspace_id=workspace.id).count() == 0


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("127.0.0.1", False),
        ("10.0.0.8", False),
        ("192.168.1.20", False),
        ("169.254.169.254", False),
        ("::1", False),
        ("fe80::1%eth0", False),
        ("::ffff:10.0.0.1", False),
        ("8.8.8.8", True),
        ("2001:4860:4860::8888", True),
    ],
)
def test_public_addresses(address: str, public: bool) -> None:
    assert is_public_address(address) is public


async def test_media_is_served_publicly_by_key(app: Any, client: Any, container: Container) -> None:
    workspace = await Workspace.create(name="w")
    data = video_bytes(5, padding=10_000)
    asset = await media.upload_bytes(
        Actor.system(workspace.id), assemble_services(container).storage, data
    )
    assert media.public_url(container.settings, asset).endswith(f"/media/{asset.storage_key}")
    response = await client.get(f"/media/{asset.storage_key}")
    assert response.status_code == 200
    assert response.content_type == "video/mp4"
    assert await response.get_data() == data
    ranged = await client.get(f"/media/{asset.storage_key}", headers={"Range": "bytes=0-99"})
    assert ranged.status_code == 206 and len(await ranged.get_data()) == 100
    assert (await client.get("/media/")).status_code == 404
    assert (await client.get(f"/media/{new_key('jpg')}")).status_code == 404
    assert (await client.get("/media/..%2Freelay.sqlite3")).status_code == 404
