"""Turns errors into pages (panel) or JSON bodies (API), once, for the whole app."""

from __future__ import annotations

import logging
from typing import Any

from quart import Quart, Response, jsonify, render_template, request
from quart_schema import RequestSchemaValidationError
from werkzeug.exceptions import HTTPException

from core.errors import Conflict, Forbidden, NotFound, ReelayError, ValidationFailed
from core.services.messenger_profiles import MetaRefused

logger = logging.getLogger(__name__)

API_PREFIX = "/api/"

# MetaRefused: Instagram, the upstream, refused or did not answer.
STATUS = {
    ValidationFailed: 422,
    NotFound: 404,
    Forbidden: 403,
    Conflict: 409,
    MetaRefused: 502,
}


def status_of(error: ReelayError) -> int:
    for kind, status in STATUS.items():
        if isinstance(error, kind):
            return status
    return 400


def _wants_json() -> bool:
    return request.path.startswith(API_PREFIX)


def json_error(status: int, message: str, fields: dict[str, str] | None = None) -> Response:
    body: dict[str, Any] = {"error": {"status": status, "message": message, "fields": fields or {}}}
    response = jsonify(body)
    response.status_code = status
    return response


def _schema_fields(error: RequestSchemaValidationError) -> dict[str, str]:
    validation = error.validation_error
    details = getattr(validation, "errors", None)
    if not callable(details):
        return {"__all__": str(validation)}
    fields: dict[str, str] = {}
    for item in details():
        location = ".".join(str(part) for part in item.get("loc", ())) or "__all__"
        fields.setdefault(location, str(item.get("msg", "invalid")))
    return fields


def install(app: Quart) -> None:
    @app.errorhandler(RequestSchemaValidationError)
    async def schema_error(error: RequestSchemaValidationError) -> Response | tuple[str, int]:
        fields = _schema_fields(error)
        if _wants_json():
            return json_error(422, "The request is not valid.", fields)
        page = await render_template("error.html", error="The request is not valid.")
        return page, 422

    @app.errorhandler(HTTPException)
    async def http_error(error: HTTPException) -> Response | tuple[str, int]:
        status = error.code or 500
        if _wants_json():
            return json_error(status, error.description or error.name)
        page = await render_template("error.html", error=error)
        return page, status

    @app.errorhandler(ReelayError)
    async def reelay_error(error: ReelayError) -> Response | tuple[str, int]:
        status = status_of(error)
        logger.info("request refused (%s): %s", status, error)
        fields = error.fields if isinstance(error, ValidationFailed) else {}
        if _wants_json():
            return json_error(status, str(error), fields)
        page = await render_template("error.html", error=error)
        return page, status
