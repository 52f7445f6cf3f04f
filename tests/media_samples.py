"""Small media files made in memory for tests and benchmarks."""

from __future__ import annotations

import io
import struct

from PIL import Image


def image_bytes(
    width: int = 1080, height: int = 1350, fmt: str = "JPEG", mode: str = "RGB", **save: object
) -> bytes:
    out = io.BytesIO()
    color: object = (200, 30, 30, 128) if mode == "RGBA" else (200, 30, 30)
    Image.new(mode, (width, height), color).save(out, fmt, **save)  # type: ignore[arg-type]
    return out.getvalue()


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def _mvhd(duration_s: float, timescale: int, version: int) -> bytes:
    units = round(duration_s * timescale)
    if version == 1:
        head = struct.pack(">B3xQQIQ", 1, 0, 0, timescale, units)
    else:
        head = struct.pack(">B3xIIII", 0, 0, 0, timescale, units)
    return _box(b"mvhd", head + b"\x00" * 80)


def _tkhd(width: int, height: int, rotated: bool) -> bytes:
    head = struct.pack(">B3xIIIII", 0, 0, 0, 1, 0, 0)  # version/flags, times, track, reserved, dur
    middle = b"\x00" * 16
    one = 1 << 16
    a, b, c, d = (0, one, -one, 0) if rotated else (one, 0, 0, one)
    matrix = struct.pack(">9i", a, b, 0, c, d, 0, 0, 0, 1 << 30)
    size = struct.pack(">II", width << 16, height << 16)
    return _box(b"tkhd", head + middle + matrix + size)


def video_bytes(
    duration_s: float = 10.0,
    width: int = 1080,
    height: int = 1920,
    *,
    brand: bytes = b"isom",
    version: int = 0,
    moov_first: bool = False,
    rotated: bool = False,
    padding: int = 2048,
) -> bytes:
    """An MP4/MOV container with real ``mvhd``/``tkhd`` boxes (the media data is filler)."""
    ftyp = _box(b"ftyp", brand + b"\x00\x00\x02\x00" + brand)
    audio = _box(b"trak", _tkhd(0, 0, False))
    video = _box(b"trak", _tkhd(width, height, rotated))
    moov = _box(b"moov", _mvhd(duration_s, 600, version) + audio + video)
    mdat = _box(b"mdat", b"\x00" * padding)
    return ftyp + (moov + mdat if moov_first else mdat + moov)
