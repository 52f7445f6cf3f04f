"""Meta's OAuth endpoints on the wire: methods, URLs, where each parameter goes, and both
answer shapes Meta documents."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aioresponses import aioresponses

from core.adapters.instagram_oauth import InstagramOAuth
from core.domain.graph_errors import ErrorKind, GraphError

TOKEN_URL = "https://api.instagram.com/oauth/access_token"
IG = "https://graph.instagram.com"
FB = "https://graph.facebook.com"


@pytest.fixture
async def oauth() -> AsyncIterator[InstagramOAuth]:
    async with aiohttp.ClientSession() as session:
        yield InstagramOAuth(session)


@pytest.fixture
def meta() -> Any:
    with aioresponses() as mocked:
        yield mocked


def only_call(meta: Any) -> tuple[str, Any, Any]:
    ((key, calls),) = meta.requests.items()
    (call,) = calls
    return key[0], key[1], call


@pytest.mark.parametrize(
    "answer",
    [
        {
            "data": [
                {
                    "access_token": "IGshort",
                    "user_id": "1020",
                    "permissions": "instagram_business_basic",
                }
            ]
        },
        {"access_token": "IGshort", "user_id": 1020, "permissions": ["instagram_business_basic"]},
    ],
    ids=["data", "flat"],
)
async def test_code_exchange_is_a_form_post_without_the_trailing_hash(
    oauth: InstagramOAuth, meta: Any, answer: dict[str, Any]
) -> None:
    meta.post(TOKEN_URL, payload=answer)
    grant = await oauth.exchange_code(
        TOKEN_URL, client_id="990", client_secret="s3", redirect_uri="https://r/cb", code="AQx#_"
    )
    assert (grant.access_token, grant.user_id) == ("IGshort", "1020")
    method, url, call = only_call(meta)
    assert (method, str(url)) == ("POST", TOKEN_URL)
    assert call.kwargs["data"] == {
        "client_id": "990",
        "client_secret": "s3",
        "grant_type": "authorization_code",
        "redirect_uri": "https://r/cb",
        "code": "AQx",
    }
    assert not call.kwargs.get("params")


async def test_long_lived_and_refresh_are_unversioned_gets(
    oauth: InstagramOAuth, meta: Any
) -> None:
    meta.get(
        re.compile(rf"{IG}/access_token\?.*"),
        payload={"access_token": "IGlong", "token_type": "bearer", "expires_in": 5183944},
    )
    grant = await oauth.long_lived(IG, client_secret="s3", token="IGshort")
    assert (grant.access_token, grant.expires_in_s) == ("IGlong", 5183944)
    method, url, _ = only_call(meta)
    assert (method, str(url.with_query(None))) == ("GET", f"{IG}/access_token")
    assert dict(url.query) == {
        "grant_type": "ig_exchange_token",
        "client_secret": "s3",
        "access_token": "IGshort",
    }
    meta.requests.clear()
    meta.get(
        re.compile(rf"{IG}/refresh_access_token\?.*"),
        payload={"access_token": "IGnew", "token_type": "bearer", "expires_in": 5183944},
    )
    assert (await oauth.refresh(IG, token="IGlong")).access_token == "IGnew"
    method, url, _ = only_call(meta)
    assert str(url.with_query(None)) == f"{IG}/refresh_access_token"
    assert dict(url.query) == {"grant_type": "ig_refresh_token", "access_token": "IGlong"}


@pytest.mark.parametrize(
    "answer",
    [
        {"user_id": "17841400000000001", "username": "shop", "account_type": "BUSINESS", "id": "9"},
        {
            "data": [
                {
                    "user_id": "17841400000000001",
                    "username": "shop",
                    "account_type": "BUSINESS",
                    "id": "9",
                }
            ]
        },
    ],
    ids=["flat", "data"],
)
async def test_me_asks_for_the_professional_account_with_a_bearer_token(
    oauth: InstagramOAuth, meta: Any, answer: dict[str, Any]
) -> None:
    meta.get(re.compile(rf"{IG}/v21.0/me\?.*"), payload=answer)
    me = await oauth.me(IG, "v21.0", token="IGlong")
    assert (me["user_id"], me["username"], me["account_type"]) == (
        "17841400000000001",
        "shop",
        "BUSINESS",
    )
    method, url, call = only_call(meta)
    assert (method, str(url.with_query(None))) == ("GET", f"{IG}/v21.0/me")
    assert dict(url.query) == {"fields": "user_id,username,account_type"}
    assert call.kwargs["headers"] == {"Authorization": "Bearer IGlong"}


async def test_facebook_login_calls(oauth: InstagramOAuth, meta: Any) -> None:
    meta.get(
        re.compile(rf"{FB}/v21.0/oauth/access_token\?.*code=.*"), payload={"access_token": "s"}
    )
    await oauth.facebook_exchange_code(
        FB, "v21.0", client_id="1", client_secret="s3", redirect_uri="https://r/cb", code="AQ#_"
    )
    method, url, _ = only_call(meta)
    assert (method, str(url.with_query(None))) == ("GET", f"{FB}/v21.0/oauth/access_token")
    assert dict(url.query) == {
        "client_id": "1",
        "redirect_uri": "https://r/cb",
        "client_secret": "s3",
        "code": "AQ",
    }
    meta.requests.clear()
    meta.get(re.compile(rf"{FB}/v21.0/me/accounts\?.*"), payload={"data": [{"id": "p1"}, "x"]})
    assert await oauth.facebook_pages(FB, "v21.0", token="EAAlong") == [{"id": "p1"}]
    method, url, call = only_call(meta)
    assert dict(url.query) == {"fields": "name,access_token,instagram_business_account"}
    assert call.kwargs["headers"] == {"Authorization": "Bearer EAAlong"}


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (
            400,
            {
                "error": {
                    "message": "Error validating access token: Session has expired",
                    "type": "OAuthException",
                    "code": 190,
                    "error_subcode": 463,
                    "fbtrace_id": "A1b2",
                }
            },
            ErrorKind.TOKEN_INVALID,
        ),
        (
            400,
            {"error_type": "OAuthException", "code": 400, "error_message": "Invalid code"},
            ErrorKind.PERMANENT,
        ),
        (502, "<html><body>Bad Gateway</body></html>", ErrorKind.TRANSIENT),
        (200, "<html>maintenance</html>", ErrorKind.TRANSIENT),
    ],
    ids=["graph-envelope", "oauth-flat", "html-5xx", "html-200"],
)
async def test_errors_are_classified_without_crashing(
    oauth: InstagramOAuth, meta: Any, status: int, body: Any, kind: ErrorKind
) -> None:
    if isinstance(body, str):
        meta.post(TOKEN_URL, status=status, body=body, content_type="text/html")
    else:
        meta.post(TOKEN_URL, status=status, payload=body)
    with pytest.raises(GraphError) as caught:
        await oauth.exchange_code(
            TOKEN_URL, client_id="1", client_secret="s", redirect_uri="https://r/cb", code="c"
        )
    assert caught.value.kind is kind
    assert "s3" not in str(caught.value)
