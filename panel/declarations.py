"""What a view declares about itself, kept as attributes of the view function.

``requires`` and ``public`` set ``required_role`` (None: no sign-in needed), ``csrf_exempt``
marks a view that authenticates otherwise, ``api_requires`` sets ``api`` and ``may_conflict``
sets ``conflict``. Attributes, not a table keyed by function: ``functools.wraps`` copies them
onto every wrapper, so a declaration holds whatever the order of the decorators, and
``app.view_functions`` carries them to the CSRF check, the OpenAPI document and the tests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, cast

from core.db.models import Role


class DeclaredView(Protocol):
    """A view function seen through its declarations; each is set by one decorator."""

    required_role: Role | None
    csrf_exempt: bool
    api: bool
    conflict: str


def declared(view: Callable[..., object]) -> DeclaredView:
    """``view``, for a decorator to set one of its declarations."""
    # A function object takes any attribute; mypy's type of a function has none of these.
    return cast(DeclaredView, view)


def is_csrf_exempt(view: object) -> bool:
    """Whether ``view`` skips the CSRF check (``csrf_exempt`` or ``api_requires``)."""
    return bool(getattr(view, "csrf_exempt", False))


def conflict_of(view: object) -> str | None:
    """When ``view`` answers 409, as ``may_conflict`` documented it; None when it never does."""
    why = getattr(view, "conflict", None)
    return why if isinstance(why, str) else None
