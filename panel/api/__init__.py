"""The JSON API under /api/v1, documented with OpenAPI (quart-schema)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel
from quart import Blueprint, Quart, abort, current_app, render_template, request
from quart_schema import DataSource, Info, QuartSchema, hide, validate_response
from quart_schema.openapi import OpenAPIProvider
from quart_schema.validation import QUART_SCHEMA_REQUEST_ATTRIBUTE
from werkzeug.routing import BaseConverter, IntegerConverter, Rule

from core.db.models import Role
from core.domain.ids import MAX_ROW_ID
from panel.api.auth import api_requires, current_token
from panel.declarations import conflict_of
from panel.security import public

PREFIX = "/api/v1"
OPENAPI_PATH = f"{PREFIX}/openapi.json"

blueprint = Blueprint("api", __name__, url_prefix=PREFIX)


ERROR_CONTENT = {
    "application/json": {
        "schema": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["status", "message", "fields"],
                    "properties": {
                        "status": {"type": "integer"},
                        "message": {"type": "string"},
                        "fields": {
                            "type": "object",
                            "additionalProperties": {"type": "string"},
                        },
                    },
                }
            },
        }
    }
}


# Answers any endpoint may give; each body is an error (``ERROR_CONTENT``).
ERRORS = {
    400: "The request cannot be read: a body that is empty, not UTF-8 or not JSON, "
    "or text holding NUL characters.",
    401: "No valid API token.",
    403: "The token's role cannot do this.",
    404: "No such object in the token's workspace (or no such address).",
    422: "The input is not valid: a message per field.",
}
BODY_ERRORS = {
    413: "The body is larger than the server accepts.",
    415: "The body is not in the media type the endpoint reads.",
}


IDEMPOTENCY_PARAMETER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
    "description": "Any unique text (a UUID) naming this request. A retry with the same key "
    "within 24 hours gets the first answer back (status and body, with "
    "`Idempotent-Replayed: true`) and changes nothing; the same key with a different request "
    "is refused (422; a multipart upload is known by its path alone); while the first request "
    "still runs, a retry gets 409.",
}
IDEMPOTENCY_CONFLICT = "A request with this Idempotency-Key is still being processed."


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": ERROR_CONTENT}


class ApiOnlyProvider(OpenAPIProvider):
    """Documents the API's routes only (not the panel's pages), each with its error answers."""

    def generate_rules(self) -> Iterable[Rule]:
        for rule in super().generate_rules():
            if rule.rule.startswith(PREFIX + "/") and rule.rule != OPENAPI_PATH:
                yield rule

    def schema(self) -> dict[str, Any]:
        from panel.api.event_webhooks import webhooks_document

        document = super().schema()
        document["webhooks"] = webhooks_document()
        return document

    def build_path_parameter(self, name: str, converter: BaseConverter) -> dict[str, Any]:
        parameter = super().build_path_parameter(name, converter)
        if isinstance(converter, IntegerConverter):
            parameter["schema"].update(minimum=0, maximum=MAX_ROW_ID)
        return parameter

    def build_paths(self, rule: Rule) -> tuple[dict[str, Any], dict[str, Any]]:
        paths, components = super().build_paths(rule)
        for item in paths.values():
            for method, operation in item.items():
                responses = operation.setdefault("responses", {})
                if not any(str(code).startswith("2") for code in responses):
                    if method == "delete":
                        responses[204] = {"description": "Deleted."}
                    else:
                        responses[200] = {"description": "Success."}
                errors = dict(ERRORS)
                if "requestBody" in operation:
                    errors.update(BODY_ERRORS)
                conflict = conflict_of(self._app.view_functions[rule.endpoint])
                if method == "post":
                    operation.setdefault("parameters", []).append(IDEMPOTENCY_PARAMETER)
                    conflict = f"{conflict} {IDEMPOTENCY_CONFLICT}" if conflict else None
                    conflict = conflict or IDEMPOTENCY_CONFLICT
                if conflict is not None:
                    errors[409] = conflict
                for code, description in sorted(errors.items()):
                    responses.setdefault(code, _error(description))
        return paths, components


class Me(BaseModel):
    token_id: int
    name: str
    role: Role
    workspace_id: int


@blueprint.get("/me")
@api_requires(Role.VIEWER)
@validate_response(Me)
async def me() -> Me:
    """The token in use: its name, role and workspace."""
    token = current_token()
    return Me(token_id=token.id, name=token.name, role=token.role, workspace_id=token.workspace_id)


@blueprint.get("/docs")
@public
@hide
async def docs() -> str:
    """The API reference, rendered from the OpenAPI document (works offline)."""
    extension: QuartSchema = current_app.extensions["QUART_SCHEMA"]
    spec: dict[str, Any] = extension.openapi_provider.schema()
    return await render_template("api/docs.html", spec=spec, openapi_path=OPENAPI_PATH)


async def expect_json_body() -> None:
    """An endpoint that reads a JSON body says so when it gets none, instead of listing
    every field as missing."""
    view = current_app.view_functions.get(request.endpoint or "")
    expected = getattr(view, QUART_SCHEMA_REQUEST_ATTRIBUTE, None)
    if expected is None or expected[1] != DataSource.JSON:
        return
    if not request.is_json:
        abort(415, "Send the body as JSON, with Content-Type: application/json.")
    if not (await request.get_data(as_text=False)).strip():
        abort(400, "The body is empty; send a JSON object.")


def install(app: Quart) -> None:
    """Set up quart-schema for the API and register its endpoints."""
    from panel.api import (
        accounts,
        analytics,
        comments,
        conversations,
        drafts,
        event_webhooks,
        leads,
        media,
        posts,
        rules,
        starters,
        team,
        workspace,
    )

    extension = QuartSchema(
        app,
        openapi_path=OPENAPI_PATH,
        redoc_ui_path=None,
        scalar_ui_path=None,
        swagger_ui_path=None,
        info=Info(
            title="Reelay API",
            version="1",
            description="Posts, media, automation rules, leads, AI reply drafts, the inbox "
            "(conversations, replies, takeover), comments and their moderation, event webhooks, "
            "accounts and their health, analytics, the team and the time zone of one workspace. "
            "Times are ISO 8601 with their offset. Authenticate with an API token: "
            "`Authorization: Bearer rly_…`. Every POST takes an `Idempotency-Key`; every list "
            "pages by `cursor`. The `webhooks` section shows what event webhooks receive.",
        ),
        security_schemes={"bearerAuth": {"type": "http", "scheme": "bearer"}},
        security=[{"bearerAuth": []}],
        openapi_provider_class=ApiOnlyProvider,
    )

    async def openapi_document() -> Any:
        """The OpenAPI document of the API."""
        return await extension.openapi()

    app.view_functions["openapi"] = public(openapi_document)
    app.before_request(expect_json_body)
    app.register_blueprint(blueprint)
    resources = (posts, media, leads, drafts, comments, rules, workspace, event_webhooks, starters)
    for resource in (*resources, conversations, accounts, analytics, team):
        app.register_blueprint(resource.blueprint)
