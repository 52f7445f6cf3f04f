"""aioresponses 0.7.9 builds ``ClientResponse`` without the ``stream_writer`` aiohttp 3.14
requires; this subclass supplies a finished writer so stubbed responses work."""

from __future__ import annotations

from typing import Any

from aiohttp import ClientResponse


class _FinishedWriter:
    output_size = 0


class StubbedResponse(ClientResponse):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", _FinishedWriter())
        super().__init__(*args, **kwargs)


def patch_aioresponses() -> None:
    import aioresponses.core

    aioresponses.core.ClientResponse = StubbedResponse  # type: ignore[misc]
