"""The event webhooks page: subscriptions (the secret shown once), their delivery log with
re-send, and a test event. Admins and owners only."""

from __future__ import annotations

from quart import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as WerkzeugResponse

from core.db.models import Role
from core.domain.event_webhooks import EVENTS, SIGNATURE_HEADER
from core.errors import ValidationFailed
from core.services.event_webhooks import EventWebhooks
from panel.security import current_actor, requires
from panel.services import services

blueprint = Blueprint("event_webhooks", __name__, url_prefix="/settings/webhooks")

LOG_SIZE = 50


def _service() -> EventWebhooks:
    return services().event_webhooks


async def _page(status: int = 200, **extra: object) -> tuple[str, int]:
    extra.setdefault("errors", {})
    extra.setdefault("form", {})
    page = await render_template(
        "event_webhooks/index.html",
        webhooks=await _service().subscriptions(current_actor()),
        events=EVENTS,
        signature_header=SIGNATURE_HEADER,
        **extra,
    )
    return page, status


@blueprint.get("")
@requires(Role.ADMIN)
async def index() -> tuple[str, int]:
    """The workspace's event webhooks."""
    return await _page()


@blueprint.post("")
@requires(Role.ADMIN)
async def create() -> tuple[str, int]:
    """Subscribe a URL; its signing secret is shown on this response only."""
    form = await request.form
    try:
        made = await _service().create(
            current_actor(),
            url=form.get("url", ""),
            events=form.getlist("events"),
            description=form.get("description", ""),
        )
    except ValidationFailed as exc:
        return await _page(422, errors=exc.fields, form=form)
    return await _page(201, new_webhook=made)


@blueprint.get("/<int:webhook_id>")
@requires(Role.ADMIN)
async def deliveries(webhook_id: int) -> str:
    """A subscription's delivery log, newest first."""
    actor = current_actor()
    webhook = await _service().get(actor, webhook_id)
    log = await _service().deliveries(actor, webhook_id, limit=LOG_SIZE)
    return await render_template(
        "event_webhooks/deliveries.html", webhook=webhook, deliveries=log, events=EVENTS
    )


@blueprint.post("/<int:webhook_id>/switch")
@requires(Role.ADMIN)
async def switch(webhook_id: int) -> WerkzeugResponse:
    """Switch a subscription on or off."""
    actor = current_actor()
    webhook = await _service().get(actor, webhook_id)
    await _service().update(
        actor,
        webhook_id,
        url=webhook.url,
        events=webhook.events,
        active=not webhook.active,
        description=webhook.description,
    )
    await flash("Webhook switched " + ("off." if webhook.active else "on."), "success")
    return redirect(url_for("event_webhooks.index"))


@blueprint.post("/<int:webhook_id>/delete")
@requires(Role.ADMIN)
async def delete(webhook_id: int) -> WerkzeugResponse:
    """Remove a subscription and its log."""
    await _service().delete(current_actor(), webhook_id)
    await flash("Webhook removed.", "success")
    return redirect(url_for("event_webhooks.index"))


@blueprint.post("/<int:webhook_id>/test")
@requires(Role.ADMIN)
async def send_test(webhook_id: int) -> WerkzeugResponse:
    """Queue a ``webhook.test`` event to the subscription."""
    await _service().send_test(current_actor(), webhook_id)
    await flash("Test event queued: it appears in the log below within seconds.", "success")
    return redirect(url_for("event_webhooks.deliveries", webhook_id=webhook_id))


@blueprint.post("/<int:webhook_id>/deliveries/<int:delivery_id>/resend")
@requires(Role.ADMIN)
async def resend(webhook_id: int, delivery_id: int) -> WerkzeugResponse:
    """Send a delivery's event again."""
    await _service().resend(current_actor(), delivery_id, webhook_id=webhook_id)
    await flash("Queued to be sent again.", "success")
    return redirect(url_for("event_webhooks.deliveries", webhook_id=webhook_id))
