"""The messenger profile API for Instagram: ice breakers and the persistent menu.

``POST /{me|page-id}/messenger_profile`` with ``platform=instagram`` replaces the fields it
names; ``DELETE`` with ``fields=[…]`` removes them. Refused as Meta refuses: no platform,
more than 4 ice breakers, an empty question or payload, a menu button other than
``web_url`` or ``postback``, a title over 30 characters.
"""

from __future__ import annotations

import json
from typing import Any

from sandbox.errors import SandboxError

FIELDS = ("ice_breakers", "persistent_menu")


def _refuse(message: str) -> SandboxError:
    return SandboxError(f"(#100) {message}", code=100)


def _actions(entry: Any, name: str) -> list[dict[str, Any]]:
    actions = entry.get("call_to_actions") if isinstance(entry, dict) else None
    if not isinstance(actions, list) or not actions:
        raise _refuse(f"{name} needs call_to_actions")
    if not all(isinstance(a, dict) for a in actions):
        raise _refuse(f"{name} call_to_actions must be objects")
    return actions


def _check_platform(params: dict[str, str], body: dict[str, Any]) -> None:
    if (body.get("platform") or params.get("platform")) != "instagram":
        raise _refuse("platform must be instagram")


def _listed(params: dict[str, str], body: dict[str, Any], key: str) -> Any:
    if key in body:
        return body[key]
    if key in params:
        try:
            return json.loads(params[key])
        except ValueError:
            raise _refuse(f"Invalid {key}") from None
    return None


def _check_breakers(breakers: Any) -> None:
    if not isinstance(breakers, list) or not breakers:
        raise _refuse("ice_breakers must be a list")
    for entry in breakers:
        actions = _actions(entry, "ice_breakers")
        if len(actions) > 4:
            raise _refuse("At most 4 ice breakers are allowed")
        for action in actions:
            if not str(action.get("question") or "").strip():
                raise _refuse("Each ice breaker needs a question")
            if not str(action.get("payload") or "").strip():
                raise _refuse("Each ice breaker needs a payload")


def _check_menu(menu: Any) -> None:
    if not isinstance(menu, list) or not menu:
        raise _refuse("persistent_menu must be a list")
    for entry in menu:
        for action in _actions(entry, "persistent_menu"):
            kind = action.get("type")
            title = str(action.get("title") or "")
            if kind not in ("web_url", "postback"):
                raise _refuse("persistent_menu buttons must be web_url or postback")
            if not title.strip() or len(title) > 30:
                raise _refuse("A menu title needs 1 to 30 characters")
            if kind == "web_url" and not str(action.get("url") or "").startswith("http"):
                raise _refuse("A web_url button needs a url")
            if kind == "postback" and not str(action.get("payload") or "").strip():
                raise _refuse("A postback button needs a payload")


def set_profile(profile: dict[str, Any], params: dict[str, str], body: dict[str, Any]) -> None:
    """Check the request, then replace the fields it names in ``profile``."""
    _check_platform(params, body)
    changed: dict[str, Any] = {}
    breakers = _listed(params, body, "ice_breakers")
    if breakers is not None:
        _check_breakers(breakers)
        changed["ice_breakers"] = breakers
    menu = _listed(params, body, "persistent_menu")
    if menu is not None:
        _check_menu(menu)
        changed["persistent_menu"] = menu
    if not changed:
        raise _refuse("Requires one of the params: ice_breakers, persistent_menu")
    profile.update(changed)


def delete_fields(profile: dict[str, Any], params: dict[str, str], body: dict[str, Any]) -> None:
    _check_platform(params, body)
    fields = _listed(params, body, "fields")
    if not isinstance(fields, list) or not fields or any(f not in FIELDS for f in fields):
        raise _refuse("fields must list ice_breakers and/or persistent_menu")
    for name in fields:
        profile.pop(name, None)


def get_fields(profile: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
    wanted = [f for f in (params.get("fields") or "").split(",") if f in FIELDS]
    return {"data": [{name: profile[name] for name in wanted if name in profile}]}


def ice_breaker(profile: dict[str, Any], index: int) -> dict[str, Any]:
    """The ``index``-th (from 0) ice breaker a follower sees, or SandboxError."""
    shown = [
        action
        for entry in profile.get("ice_breakers") or []
        for action in entry.get("call_to_actions") or []
    ]
    if not 0 <= index < len(shown):
        raise SandboxError(f"the account shows {len(shown)} ice breakers", code=100)
    return dict(shown[index])
