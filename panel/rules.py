"""Automation rules: the list with stats, the editor with its live preview, and the test panel."""

from __future__ import annotations

import io
from typing import Any

import segno
from quart import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from redis.asyncio import Redis
from werkzeug.wrappers import Response as WerkzeugResponse

from core.db.models import InstagramAccount, MatchMode, Role, Trigger
from core.domain.ids import row_id
from core.domain.messages import MAX_CARDS
from core.domain.rule_checks import EDITOR_BUTTONS, review
from core.domain.rule_definition import RuleDefinition
from core.domain.variants import MIN_SENT, STEP_WORDS
from core.errors import ValidationFailed
from core.services import account_settings, next_post, rule_editor, variants
from panel import rule_form, rule_preview
from panel.security import current_actor, current_membership, requires
from panel.services import services

blueprint = Blueprint("rules", __name__, url_prefix="/rules")

QR_TYPES = {"png": "image/png", "svg": "image/svg+xml"}

TRIGGER_WORDS = {
    "comment": "A comment on a post or reel",
    "dm": "A direct message",
    "story_reply": "A reply to a story",
    "story_mention": "A mention in someone's story",
    "postback": "A tap on a button or quick reply",
    "ref_link": "Someone opening the rule's ig.me link",
    "live_comment": "A comment on your Live broadcast",
}
AD_MODE_WORDS = {
    "also": "Answer them too",
    "only": "Answer only comments on ads",
    "skip": "Leave them alone",
}
MATCH_WORDS = {
    "whole_word": "Whole word",
    "contains": "Contains",
    "exact": "Exact message",
    "any": "Any message",
}
DM_TYPE_WORDS = {
    "none": "No DM",
    "text": "Text",
    "text_button": "Text with buttons",
    "quick_replies": "Text with quick replies",
    "cards": "Card carousel",
    "lead_capture": "Lead flow",
    "ai": "AI reply",
}


async def _form() -> dict[str, list[str]]:
    return rule_form.form_of(await request.form)


async def _accounts() -> list[InstagramAccount]:
    return await account_settings.workspace_accounts(current_actor())


async def _editor(
    form: dict[str, list[str]],
    *,
    rule_id: int | None,
    errors: dict[str, str] | None = None,
    message: str = "",
    status: int = 200,
) -> tuple[str, int]:
    draft, _ = review(rule_form.read_form(form)[0])
    funnel = await services().links.funnel(current_actor(), rule_id) if rule_id else None
    results = await variants.variant_results(current_actor(), rule_id) if rule_id else []
    ig_me_link = ""
    if rule_id:
        stored = await rule_editor.get_rule(current_actor(), rule_id)
        account = await rule_editor.workspace_account(current_actor(), stored.account_id)
        ig_me_link = RuleDefinition.from_stored(stored).ig_me_link(account.username)
    page = await render_template(
        "rules/edit.html",
        form=form,
        one=lambda name, default="": (form.get(name) or [default])[0],
        blank=lambda name, default="": default,
        errors=errors or {},
        message=message,
        rule_id=rule_id,
        accounts=await _accounts(),
        triggers=[(t.value, TRIGGER_WORDS[t.value]) for t in Trigger],
        match_modes=[(m.value, MATCH_WORDS[m.value]) for m in MatchMode],
        dm_types=list(DM_TYPE_WORDS.items()),
        steps=rule_form.flow_step_numbers(form),
        bubbles=rule_preview.preview(draft),
        buttons=range(EDITOR_BUTTONS),
        cards=range(MAX_CARDS),
        person_id=rule_editor.new_test_person(),
        sample_kinds=rule_editor.sample_kinds_for(draft.trigger),
        ai_ready=services().container.ai is not None,
        funnel=funnel,
        variants=results,
        step_words=STEP_WORDS,
        min_sent=MIN_SENT,
        ad_modes=list(AD_MODE_WORDS.items()),
        ig_me_link=ig_me_link,
        closing_message=rule_preview.CLOSING_MESSAGE,
    )
    return page, status


@blueprint.get("")
@requires(Role.VIEWER)
async def index() -> str:
    """Every rule with what it does and its counters."""
    membership = current_membership()
    account = request.args.get("account_id", "")
    rows = await rule_editor.list_rules(current_actor(), row_id(account))
    return await render_template(
        "rules/index.html",
        rows=[(row, rule_editor.rule_summary(row.rule)) for row in rows],
        accounts=await _accounts(),
        account_id=account,
        can_edit=membership.role in (Role.OWNER, Role.ADMIN, Role.EDITOR),
        triggers=TRIGGER_WORDS,
    )


@blueprint.get("/new")
@requires(Role.EDITOR)
async def new() -> tuple[str, int]:
    """An empty editor (a comment rule for the first account)."""
    accounts = await _accounts()
    wanted = request.args.get("account_id", "")
    account_id = wanted if wanted.isdigit() else (str(accounts[0].id) if accounts else "")
    form = {
        "account_id": [account_id],
        "trigger": ["comment"],
        "match_mode": ["whole_word"],
        "dm_type": ["text"],
        "active": ["on"],
        "priority": ["0"],
        "cooldown_minutes": ["0"],
        "delay_minutes": ["0"],
    }
    return await _editor(form, rule_id=None)


@blueprint.post("/new")
@requires(Role.EDITOR)
async def create() -> tuple[str, int] | WerkzeugResponse:
    """Save a new rule (all fields checked first; nothing is stored on an error)."""
    form = await _form()
    definition, found = rule_form.read_form(form)
    try:
        rule = await rule_editor.save_rule(
            current_actor(),
            definition,
            redis=_redis(),
            found=found,
            secrets=services().container.secrets,
        )
    except ValidationFailed as exc:
        errors = rule_form.form_errors(exc.fields, form)
        return await _editor(form, rule_id=None, errors=errors, message=exc.message, status=422)
    await flash(f'Rule "{rule.name}" saved.', "success")
    return redirect(url_for("rules.edit", rule_id=rule.id))


@blueprint.post("/next-post")
@requires(Role.EDITOR)
async def next_post_rule() -> WerkzeugResponse:
    """One click: a rule answering any comment on the account's next post."""
    form = await request.form
    rule = await next_post.create_next_post_rule(
        current_actor(),
        row_id(form.get("account_id", "")),
        redis=_redis(),
        secrets=services().container.secrets,
    )
    await flash(
        f'Rule "{rule.name}" created: waiting for your next post. Edit what it says below.',
        "success",
    )
    return redirect(url_for("rules.edit", rule_id=rule.id))


@blueprint.post("/<int:rule_id>/variants/keep")
@requires(Role.EDITOR)
async def keep_variant(rule_id: int) -> WerkzeugResponse:
    """Keep one variation of a step (the winner) and drop the others."""
    form = await request.form
    rule = await variants.keep_variant(
        current_actor(),
        rule_id,
        form.get("step", ""),
        form.get("variant", ""),
        redis=_redis(),
        secrets=services().container.secrets,
    )
    await flash(f'Rule "{rule.name}" now sends only that variation.', "success")
    return redirect(url_for("rules.edit", rule_id=rule.id))


@blueprint.get("/<int:rule_id>")
@requires(Role.EDITOR)
async def edit(rule_id: int) -> tuple[str, int]:
    """The editor for a stored rule."""
    rule = await rule_editor.get_rule(current_actor(), rule_id)
    form = rule_form.form_of_definition(RuleDefinition.from_stored(rule))
    return await _editor(form, rule_id=rule.id)


@blueprint.post("/<int:rule_id>")
@requires(Role.EDITOR)
async def update(rule_id: int) -> tuple[str, int] | WerkzeugResponse:
    """Replace a rule with the editor's form (all or nothing)."""
    form = await _form()
    definition, found = rule_form.read_form(form)
    try:
        rule = await rule_editor.save_rule(
            current_actor(),
            definition,
            redis=_redis(),
            rule_id=rule_id,
            found=found,
            secrets=services().container.secrets,
        )
    except ValidationFailed as exc:
        errors = rule_form.form_errors(exc.fields, form)
        return await _editor(form, rule_id=rule_id, errors=errors, message=exc.message, status=422)
    await flash(f'Rule "{rule.name}" saved.', "success")
    return redirect(url_for("rules.edit", rule_id=rule.id))


@blueprint.post("/<int:rule_id>/active")
@requires(Role.EDITOR)
async def toggle(rule_id: int) -> WerkzeugResponse:
    """Switch a rule on or off."""
    form = await request.form
    active = form.get("active") == "1"
    await rule_editor.set_active(current_actor(), rule_id, active, redis=_redis())
    await flash("Rule switched on." if active else "Rule switched off.", "success")
    return redirect(url_for("rules.index"))


@blueprint.post("/<int:rule_id>/delete")
@requires(Role.EDITOR)
async def delete(rule_id: int) -> WerkzeugResponse:
    """Delete a rule (its leads stay)."""
    await rule_editor.delete_rule(current_actor(), rule_id, redis=_redis())
    await flash("Rule deleted.", "success")
    return redirect(url_for("rules.index"))


@blueprint.get("/<int:rule_id>/qr.<kind>")
@requires(Role.VIEWER)
async def qr_code(rule_id: int, kind: str) -> Response:
    """The QR code of a ref-link rule's ig.me link, as PNG or SVG, to print."""
    if kind not in QR_TYPES:
        abort(404)
    actor = current_actor()
    rule = await rule_editor.get_rule(actor, rule_id)
    account = await rule_editor.workspace_account(actor, rule.account_id)
    link = RuleDefinition.from_stored(rule).ig_me_link(account.username)
    if not link:
        abort(404)
    code = segno.make(link, error="m")
    buffer = io.BytesIO()
    code.save(buffer, kind=kind, scale=10, border=4)
    response = Response(buffer.getvalue(), mimetype=QR_TYPES[kind])
    filename = f"ig-me-{RuleDefinition.from_stored(rule).ref_code}.{kind}"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@blueprint.post("/preview")
@requires(Role.EDITOR)
async def preview() -> str:
    """What a person would receive from the rule as the form stands (htmx fragment)."""
    form = await _form()
    draft, _ = review(rule_form.read_form(form)[0])
    sample = (form.get("sample") or [""])[0]
    bubbles = rule_preview.preview(draft, sample)
    return await render_template("rules/_preview.html", bubbles=bubbles)


@blueprint.get("/posts")
@requires(Role.EDITOR)
async def posts() -> tuple[str, int]:
    """The account's recent posts with thumbnails, for the rule's scope (htmx fragment)."""
    account_id = request.args.get("account_id", "")
    selected = set(request.args.getlist("media_ids"))
    try:
        found = await rule_editor.recent_posts(
            current_actor(), services().container, row_id(account_id)
        )
    except ValidationFailed as exc:
        page = await render_template(
            "rules/_posts.html", posts=[], selected=selected, problem=exc.message
        )
        return page, 200
    page = await render_template("rules/_posts.html", posts=found, selected=selected, problem="")
    return page, 200


@blueprint.post("/<int:rule_id>/test")
@requires(Role.EDITOR)
async def test(rule_id: int) -> tuple[str, int]:
    """Send a sample comment or DM through the sandbox (htmx fragment that follows it)."""
    rule = await rule_editor.get_rule(current_actor(), rule_id)
    form = await request.form
    try:
        sent = await rule_editor.send_sample(
            current_actor(),
            services().container,
            rule,
            kind=form.get("kind", "comment"),
            text=form.get("sample", ""),
            person_id=form.get("person_id", ""),
        )
    except ValidationFailed as exc:
        page = await render_template("rules/_test_result.html", problem=exc.message)
        return page, 422
    context: dict[str, Any] = {"rule": rule, "sent": sent, "problem": ""}
    if sent.webhook_status != 200:
        context["problem"] = (
            f"The sandbox could not deliver the webhook ({sent.webhook_status or sent.error})."
        )
    context["explanation"] = await rule_editor.explain(current_actor(), rule, sent.dedupe_key)
    return await render_template("rules/_test_result.html", **context), 200


@blueprint.get("/<int:rule_id>/test/result")
@requires(Role.EDITOR)
async def test_result(rule_id: int) -> str:
    """What the engine did with the sample so far (polled until it is finished)."""
    rule = await rule_editor.get_rule(current_actor(), rule_id)
    sent = rule_editor.SampleSent(
        kind=request.args.get("kind", ""),
        dedupe_key=request.args.get("key", ""),
        person_id=request.args.get("person_id", ""),
        webhook_status=200,
    )
    explanation = await rule_editor.explain(current_actor(), rule, sent.dedupe_key)
    return await render_template(
        "rules/_test_result.html", rule=rule, sent=sent, explanation=explanation, problem=""
    )


def _redis() -> Redis:
    """Where rule changes are announced to the workers."""
    return services().container.redis
