"""API: an account's conversation starters (ice breakers and persistent menu)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field
from quart import Blueprint
from quart_schema import validate_request, validate_response

from core.db.models import Role
from core.domain.messenger_profile import MAX_PAYLOAD, MessengerProfile
from panel.api.auth import api_requires, current_actor
from panel.services import services

blueprint = Blueprint("api_starters", __name__, url_prefix="/api/v1/accounts")


class IceBreakerBody(BaseModel):
    question: str = Field(max_length=200, description="Up to 80 characters.")
    payload: str = Field(max_length=MAX_PAYLOAD, description="Sent back when tapped.")


class MenuItemBody(BaseModel):
    type: Literal["web_url", "postback"]
    title: str = Field(max_length=200, description="Up to 30 characters.")
    url: str = Field("", max_length=2048, description="For `web_url`: the page it opens.")
    payload: str = Field("", max_length=MAX_PAYLOAD, description="For `postback`.")


class StartersBody(BaseModel):
    ice_breakers: list[IceBreakerBody] = Field(
        default_factory=list,
        max_length=20,
        description="Up to 4. A tap sends `payload` as a postback: a rule with the `postback` "
        "trigger and that payload as its keyword answers it.",
    )
    menu: list[MenuItemBody] = Field(default_factory=list, max_length=50)


def _out(profile: MessengerProfile) -> StartersBody:
    return StartersBody.model_validate(profile.as_json())


@blueprint.get("/<int:account_id>/starters")
@api_requires(Role.VIEWER)
@validate_response(StartersBody)
async def get_starters(account_id: int) -> StartersBody:
    """The account's ice breakers and persistent menu."""
    return _out(await services().messenger_profiles.get(current_actor(), account_id))


@blueprint.put("/<int:account_id>/starters")
@api_requires(Role.ADMIN)
@validate_request(StartersBody)
@validate_response(StartersBody)
async def put_starters(account_id: int, data: StartersBody) -> StartersBody:
    """Replace the account's ice breakers and menu, at Instagram too (owner or admin).
    An empty list removes that part. If Instagram refuses, nothing is stored (502)."""
    saved = await services().messenger_profiles.save(current_actor(), account_id, data.model_dump())
    return _out(saved)
