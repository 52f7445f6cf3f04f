"""API: the token's workspace and its time zone."""

from __future__ import annotations

from pydantic import BaseModel, Field
from quart import Blueprint
from quart_schema import validate_request, validate_response

from core.db.models import Role, Workspace
from core.services import setup_wizard, time_zones
from panel.api.auth import api_requires, current_actor

blueprint = Blueprint("api_workspace", __name__, url_prefix="/api/v1/workspace")


class WorkspaceOut(BaseModel):
    id: int
    name: str
    timezone: str = Field(
        description="The team's IANA time zone: chat reads times typed without an offset in "
        "it. The API itself takes and returns ISO 8601 times with their offset."
    )


class TimeZoneBody(BaseModel):
    timezone: str = Field(
        min_length=1, max_length=64, description="An IANA zone name, e.g. Europe/Berlin."
    )


def _out(workspace: Workspace) -> WorkspaceOut:
    return WorkspaceOut(id=workspace.id, name=workspace.name, timezone=workspace.timezone)


@blueprint.get("")
@api_requires(Role.VIEWER)
@validate_response(WorkspaceOut)
async def get_workspace() -> WorkspaceOut:
    """The token's workspace."""
    return _out(await setup_wizard.workspace_of(current_actor()))


@blueprint.put("/timezone")
@api_requires(Role.ADMIN)
@validate_request(TimeZoneBody)
@validate_response(WorkspaceOut)
async def set_time_zone(data: TimeZoneBody) -> WorkspaceOut:
    """Set the team's time zone (a token of an owner or admin)."""
    return _out(await time_zones.set_workspace_zone(current_actor(), data.timezone))
