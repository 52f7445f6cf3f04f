"""Instagram accounts: connecting (OAuth), tokens, webhook subscription, disconnecting."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast
from urllib.parse import urlencode

from core.bootstrap import Container
from core.db.models import (
    AccountStatus,
    DomainEvent,
    InstagramAccount,
    LoginKind,
    Membership,
    Role,
    Workspace,
)
from core.domain.graph_errors import ErrorKind, GraphError
from core.domain.scope import Actor, instance_level
from core.errors import Forbidden, NotFound, SettingsError, ValidationFailed
from core.ports.instagram import AccountRef, LoginFlavour
from core.ports.oauth import Grant, OAuthClient
from core.services import account_changes, audit, meta_app, users
from core.services.reconnection import mark_needs_reconnect, resume_waiting
from core.services.sandbox_keys import demo_ig_id, sandbox_token, signing_secret, token_secret
from core.services.waiting_sends import resume_sends

logger = logging.getLogger(__name__)

DEMO_USERNAME = "reelay_demo"


def account_ref(container: Container, account: InstagramAccount) -> AccountRef:
    """Who to act as for ``account``: its ids, decrypted token and login kind."""
    return AccountRef(
        ig_id=account.ig_id,
        token=container.secrets.decrypt(account.token_encrypted),
        login_kind=cast(LoginFlavour, str(account.login_kind)),
        account_id=account.id,
        page_id=account.page_id,
    )


async def ensure_demo_account(actor: Actor, container: Container) -> InstagramAccount | None:
    """Give the workspace its connected sandbox account, once (None when it has one already).

    A disconnected demo account counts as one: it is not brought back.
    """
    workspace_id = actor.workspace_id
    if await InstagramAccount.filter(
        workspace_id=workspace_id, login_kind=LoginKind.SANDBOX
    ).exists():
        return None
    ig_id = demo_ig_id(workspace_id)
    token = sandbox_token(token_secret(container.secret_key), ig_id)
    account = await InstagramAccount.create(
        workspace_id=workspace_id,
        ig_id=ig_id,
        username=DEMO_USERNAME,
        account_type="BUSINESS",
        login_kind=LoginKind.SANDBOX,
        token_encrypted=container.secrets.encrypt(token),
        token_refreshed_at=container.clock.now(),
        webhook_subscribed=True,
    )
    await audit.record(
        "account.connected",
        actor="sandbox",
        workspace_id=workspace_id,
        target_type="instagram_account",
        target_id=account.id,
        username=DEMO_USERNAME,
        login_kind=str(LoginKind.SANDBOX),
    )
    return account


@instance_level("gives every workspace still without one its demo account")
async def ensure_demo_accounts(container: Container) -> list[InstagramAccount]:
    """A demo account for every workspace still without a sandbox account."""
    covered = await InstagramAccount.filter(login_kind=LoginKind.SANDBOX).values_list(
        "workspace_id", flat=True
    )
    made = []
    for workspace in await Workspace.exclude(id__in=list(covered)):
        account = await ensure_demo_account(Actor.system(workspace.id), container)
        if account is not None:
            made.append(account)
    return made


@instance_level("the sandbox serves every workspace's sandbox accounts")
async def sandbox_accounts_everywhere() -> list[InstagramAccount]:
    """Every connected sandbox account of the install (the sandbox seeds their posts)."""
    return await InstagramAccount.filter(login_kind=LoginKind.SANDBOX).exclude(
        status=AccountStatus.DISCONNECTED
    )


# ---------------------------------------------------------------------- OAuth state

STATE_MAX_AGE_S = 600
INSTAGRAM_SCOPES = (
    "instagram_business_basic",
    "instagram_business_manage_messages",
    "instagram_business_manage_comments",
    "instagram_business_content_publish",
    "instagram_business_manage_insights",
)
FACEBOOK_SCOPES = (
    "instagram_basic",
    "instagram_manage_comments",
    "instagram_manage_messages",
    "instagram_content_publish",
    "instagram_manage_insights",
    "pages_show_list",
    "pages_read_engagement",
    "pages_manage_metadata",
    "business_management",
)
WEBHOOK_FIELDS = (
    "comments",
    "live_comments",
    "messages",
    "messaging_postbacks",
    "messaging_referral",
    "message_reactions",
    "messaging_seen",  # read receipts: the "DM opened" stage of a rule's funnel
)
PROFESSIONAL_TYPES = {"BUSINESS", "MEDIA_CREATOR", "CREATOR"}
EXPIRING_ALERT = timedelta(days=7)

BAD_STATE = "This connection link is invalid or has expired. Start connecting again."


@dataclass(frozen=True)
class OAuthState:
    """What the signed ``state`` carries through Meta's dialog."""

    workspace_id: int
    user_id: int
    login_kind: str
    nonce: str
    issued_at: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret_key: str, payload: str) -> str:
    key = hashlib.sha256(b"reelay-oauth-state:" + secret_key.encode()).digest()
    return _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())


def sign_state(
    secret_key: str, *, workspace_id: int, user_id: int, login_kind: str, now: datetime
) -> str:
    """A tamper-proof, expiring ``state`` for the authorize URL."""
    payload = _b64(
        json.dumps(
            {
                "w": workspace_id,
                "u": user_id,
                "k": login_kind,
                "n": secrets.token_urlsafe(12),
                "t": int(now.timestamp()),
            },
            separators=(",", ":"),
        ).encode()
    )
    return f"{payload}.{_mac(secret_key, payload)}"


def read_state(
    secret_key: str, state: str, *, now: datetime, max_age_s: int = STATE_MAX_AGE_S
) -> OAuthState:
    """Check the signature and age of ``state``; raise Forbidden when either is wrong."""
    payload, _, mac = state.partition(".")
    if not payload or not mac or not hmac.compare_digest(mac, _mac(secret_key, payload)):
        raise Forbidden(BAD_STATE)
    try:
        data = json.loads(_unb64(payload))
        found = OAuthState(
            workspace_id=int(data["w"]),
            user_id=int(data["u"]),
            login_kind=str(data["k"]),
            nonce=str(data["n"]),
            issued_at=int(data["t"]),
        )
    except (ValueError, KeyError, TypeError):
        raise Forbidden(BAD_STATE) from None
    age = now.timestamp() - found.issued_at
    if age > max_age_s or age < -60:
        raise Forbidden(BAD_STATE)
    return found


# ---------------------------------------------------------------------- connecting


@dataclass(frozen=True)
class OAuthApp:
    """Where and as which app to sign in, for one login kind."""

    login_kind: LoginKind
    client_id: str
    client_secret: str = field(repr=False)
    authorize_url: str
    token_url: str
    graph_base: str
    scopes: tuple[str, ...]


@instance_level("the instance's Meta app and endpoints, no workspace's")
async def oauth_app(container: Container, login_kind: str = "instagram") -> OAuthApp:
    """The app and endpoints for ``login_kind``; the sandbox's when no Meta app is set."""
    settings = container.settings
    app = await meta_app.load(settings, container.secrets)
    if app.sandbox:
        base = settings.sandbox_base_url
        return OAuthApp(
            login_kind=LoginKind.SANDBOX,
            client_id="sandbox",
            client_secret=signing_secret(settings, container.secret_key),
            authorize_url=f"{base}/oauth/authorize",
            token_url=f"{base}/oauth/access_token",
            graph_base=base,
            scopes=INSTAGRAM_SCOPES,
        )
    if login_kind == "facebook":
        secret = app.facebook_app_secret or app.app_secret
        if not secret:
            raise ValidationFailed(
                "Facebook Login needs the Facebook app secret",
                {"facebook_app_secret": "Set FACEBOOK_APP_SECRET or enter it in Setup."},
            )
        return OAuthApp(
            login_kind=LoginKind.FACEBOOK,
            client_id=settings.facebook_app_id or app.app_id,
            client_secret=secret,
            authorize_url=str(settings.facebook_oauth_url),
            token_url="",
            graph_base=settings.graph_base_url("facebook"),
            scopes=FACEBOOK_SCOPES,
        )
    if login_kind != "instagram":
        raise ValidationFailed("Unknown login kind", {"kind": "Use instagram or facebook."})
    if not app.app_secret:
        raise ValidationFailed(
            "Instagram Login needs the app secret",
            {"app_secret": "Set META_APP_SECRET or enter it in Setup."},
        )
    return OAuthApp(
        login_kind=LoginKind.INSTAGRAM,
        client_id=app.app_id,
        client_secret=app.app_secret,
        authorize_url=str(settings.instagram_oauth_url),
        token_url=str(settings.instagram_token_url),
        graph_base=settings.graph_base_url("instagram"),
        scopes=INSTAGRAM_SCOPES,
    )


async def authorization_url(
    actor: Actor,
    container: Container,
    *,
    redirect_uri: str,
    login_kind: str = "instagram",
) -> str:
    """The Meta dialog URL that starts connecting an account (state signed, 10 minutes)."""
    if actor.user_id is None:
        raise Forbidden("Only a signed-in member can connect an account.")
    app = await oauth_app(container, login_kind)
    state = sign_state(
        container.secret_key,
        workspace_id=actor.workspace_id,
        user_id=actor.user_id,
        login_kind=str(app.login_kind),
        now=container.clock.now(),
    )
    query = {
        "client_id": app.client_id,
        "redirect_uri": redirect_uri,
        "response_type": "code",
        "scope": ",".join(app.scopes),
        "state": state,
    }
    return f"{app.authorize_url}?{urlencode(query)}"


@dataclass(frozen=True)
class Connected:
    """The account a token belongs to, as Meta described it."""

    ig_id: str
    username: str
    account_type: str
    grant: Grant
    page_id: str | None = None


def _refuse_personal(account_type: str, username: str) -> None:
    if account_type.upper() not in PROFESSIONAL_TYPES:
        raise ValidationFailed(
            f"@{username} is a personal Instagram account",
            {
                "account": "Reelay works with Business or Creator accounts only. In the "
                "Instagram app open Settings → Account type and tools → Switch to professional "
                "account, then connect again."
            },
        )


async def _instagram_login(
    oauth: OAuthClient, app: OAuthApp, version: str, code: str, redirect_uri: str
) -> Connected:
    short = await oauth.exchange_code(
        app.token_url,
        client_id=app.client_id,
        client_secret=app.client_secret,
        redirect_uri=redirect_uri,
        code=code,
    )
    grant = await oauth.long_lived(
        app.graph_base, client_secret=app.client_secret, token=short.access_token
    )
    me = await oauth.me(app.graph_base, version, token=grant.access_token)
    username = str(me.get("username") or "")
    account_type = str(me.get("account_type") or "")
    _refuse_personal(account_type, username)
    ig_id = str(me.get("user_id") or me.get("id") or "")
    return Connected(ig_id=ig_id, username=username, account_type=account_type, grant=grant)


async def _facebook_login(
    oauth: OAuthClient, app: OAuthApp, version: str, code: str, redirect_uri: str
) -> Connected:
    short = await oauth.facebook_exchange_code(
        app.graph_base,
        version,
        client_id=app.client_id,
        client_secret=app.client_secret,
        redirect_uri=redirect_uri,
        code=code,
    )
    user = await oauth.facebook_long_lived(
        app.graph_base,
        version,
        client_id=app.client_id,
        client_secret=app.client_secret,
        token=short.access_token,
    )
    pages = await oauth.facebook_pages(app.graph_base, version, token=user.access_token)
    linked = [p for p in pages if (p.get("instagram_business_account") or {}).get("id")]
    if not linked:
        raise ValidationFailed(
            "No Instagram professional account found",
            {
                "account": "None of the Facebook Pages you shared has an Instagram Business or "
                "Creator account linked. Link one to a Page (Page settings → Linked accounts) "
                "and connect again."
            },
        )
    page = linked[0]
    ig_id = str(page["instagram_business_account"]["id"])
    page_token = str(page.get("access_token") or "")
    profile = await oauth.instagram_user(app.graph_base, version, ig_id, token=page_token)
    return Connected(
        ig_id=ig_id,
        username=str(profile.get("username") or page.get("name") or ig_id),
        account_type="BUSINESS",
        grant=Grant(access_token=page_token, expires_in_s=None),
        page_id=str(page.get("id") or "") or None,
    )


@instance_level("the OAuth callback: the signed state names the workspace, not the session")
async def complete_connection(
    container: Container,
    *,
    code: str,
    state: str,
    redirect_uri: str,
    user_id: int,
    actor: str,
    oauth: OAuthClient | None = None,
) -> InstagramAccount:
    """The OAuth callback: check ``state``, trade the code for a long-lived token, store the
    account (token encrypted) and subscribe it to webhooks.

    Raises Forbidden for a bad, expired, reused or foreign ``state`` and ValidationFailed for
    a personal account; Meta's refusals surface as GraphError.
    """
    now = container.clock.now()
    found = read_state(container.secret_key, state, now=now)
    if found.user_id != user_id:
        raise Forbidden(BAD_STATE)
    # The state names the workspace the dialog was opened from; the user may have been
    # removed or demoted there since (the session may now be in another workspace).
    membership = await Membership.get_or_none(workspace_id=found.workspace_id, user_id=user_id)
    if membership is None or not users.role_allows(membership.role, Role.ADMIN):
        raise Forbidden(BAD_STATE)
    fresh = await container.redis.set(
        f"oauth:state:{found.nonce}", "1", nx=True, ex=STATE_MAX_AGE_S + 60
    )
    if not fresh:
        raise Forbidden(BAD_STATE)
    workspace = await Workspace.get_or_none(id=found.workspace_id)
    if workspace is None:
        raise NotFound("That workspace no longer exists.")
    kind = "facebook" if found.login_kind == LoginKind.FACEBOOK else "instagram"
    app = await oauth_app(container, kind)
    if str(app.login_kind) != found.login_kind:
        raise Forbidden(BAD_STATE)
    client = oauth or container.oauth
    version = container.settings.graph_version
    if app.login_kind is LoginKind.FACEBOOK:
        connected = await _facebook_login(client, app, version, code, redirect_uri)
    else:
        connected = await _instagram_login(client, app, version, code, redirect_uri)
    if not connected.ig_id:
        raise ValidationFailed("Instagram did not say which account this is", {})
    # Webhooks name only the Instagram account: in two workspaces at once, one would run
    # the other's automations and read its event log.
    taken = (
        await InstagramAccount.filter(ig_id=connected.ig_id)
        .exclude(workspace_id=workspace.id)
        .exclude(status=AccountStatus.DISCONNECTED)
        .exists()
    )
    if taken:
        raise ValidationFailed(
            f"@{connected.username} is already connected in another workspace",
            {"account": "An admin there has to disconnect it first (Accounts → Disconnect)."},
        )
    expires = (
        now + timedelta(seconds=connected.grant.expires_in_s)
        if connected.grant.expires_in_s
        else None
    )
    account, created = await InstagramAccount.update_or_create(
        defaults={
            "username": connected.username,
            "account_type": connected.account_type.upper(),
            "login_kind": app.login_kind,
            "page_id": connected.page_id,
            "token_encrypted": container.secrets.encrypt(connected.grant.access_token),
            "token_expires_at": expires,
            "token_refreshed_at": now,
            "status": AccountStatus.ACTIVE,
            "status_reason": "",
        },
        workspace=workspace,
        ig_id=connected.ig_id,
    )
    await audit.record(
        "account.connected" if created else "account.reconnected",
        actor=actor,
        workspace_id=workspace.id,
        target_type="instagram_account",
        target_id=account.id,
        account_id=account.id,
        username=account.username,
        login_kind=str(app.login_kind),
    )
    await account_changes.announce(container.redis)
    await _subscribe_webhooks(container, account)
    await resume_waiting(account, container.queue, now)
    await resume_sends(account, container.queue, now)
    return account


async def subscribe_webhooks(actor: Actor, container: Container, account_id: int) -> bool:
    """Subscribe one of the workspace's accounts to Reelay's webhook fields again."""
    account = await _account_in(actor, account_id)
    return await _subscribe_webhooks(container, account)


async def account(actor: Actor, account_id: int) -> InstagramAccount:
    """One of the workspace's accounts; NotFound for any other."""
    return await _account_in(actor, account_id)


async def _account_in(actor: Actor, account_id: int) -> InstagramAccount:
    account = await InstagramAccount.get_or_none(id=account_id, workspace_id=actor.workspace_id)
    if account is None:
        raise NotFound("No such Instagram account in this workspace.")
    return account


async def _subscribe_webhooks(container: Container, account: InstagramAccount) -> bool:
    """Subscribe the account to Reelay's webhook fields; the result is kept on the account."""
    try:
        ok = await container.graph.subscribe_app(account_ref(container, account), WEBHOOK_FIELDS)
    except GraphError as exc:
        logger.warning("webhook subscription failed for account %s: %s", account.id, exc)
        await _record_webhook_warning("account.webhooks_failed", account, exc.title)
        if exc.kind is ErrorKind.TOKEN_INVALID:
            await mark_needs_reconnect(account, exc.title, redis=container.redis)
        ok = False
    account.webhook_subscribed = ok
    await account.save(update_fields=["webhook_subscribed"])
    return ok


@dataclass(frozen=True)
class Disconnection:
    """A finished disconnect; ``warning`` says why Meta may still send webhooks for it."""

    account: InstagramAccount
    warning: str | None = None


async def _unsubscribe_webhooks(container: Container, account: InstagramAccount) -> str | None:
    """Ask Meta to stop sending webhooks for ``account``; None when it confirmed, else why not.

    A failure is logged and audit-logged, never raised: the caller goes on disconnecting.
    """
    try:
        ok = await container.graph.unsubscribe_app(account_ref(container, account))
        reason = None if ok else "Meta did not confirm the unsubscription"
    except GraphError as exc:
        reason = (
            "its token is no longer valid" if exc.kind is ErrorKind.TOKEN_INVALID else exc.title
        )
        if exc.code is not None:
            reason += f" (error {exc.code})"
    except SettingsError as exc:
        reason = str(exc)
    if reason is None:
        return None
    logger.warning("webhook unsubscription failed for account %s: %s", account.id, reason)
    await _record_webhook_warning("account.webhooks_unsubscribe_failed", account, reason)
    return reason


async def _record_webhook_warning(action: str, account: InstagramAccount, error: str) -> None:
    await audit.record(
        action,
        actor="reelay",
        workspace_id=account.workspace_id,
        target_type="instagram_account",
        target_id=account.id,
        account_id=account.id,
        level="warning",
        error=error,
    )


async def disconnect(actor: Actor, container: Container, account_id: int) -> Disconnection:
    """Unsubscribe the account from Reelay's webhooks on Meta's side, then forget its token
    and stop acting for it (posts and history stay).

    Meta refusing (a dead token, error 190) or being unreachable does not stop the
    disconnect: the token is wiped all the same and ``warning`` says what went wrong.
    """
    account = await _account_in(actor, account_id)
    warning = None
    if account.token_encrypted:
        failure = await _unsubscribe_webhooks(container, account)
        if failure is not None:
            warning = (
                f"Meta could not be told to stop sending @{account.username}'s webhooks "
                f"({failure}). Reelay ignores them from now on; to stop them at the source, "
                "remove the app from the account's settings on Instagram or Facebook."
            )
    account.status = AccountStatus.DISCONNECTED
    account.status_reason = f"Disconnected by {actor.label}"
    account.token_encrypted = ""
    account.token_expires_at = None
    account.webhook_subscribed = False
    await account.save()
    await audit.record(
        "account.disconnected",
        actor=actor.label,
        workspace_id=actor.workspace_id,
        target_type="instagram_account",
        target_id=account.id,
        account_id=account.id,
        username=account.username,
        webhooks_unsubscribed=warning is None,
    )
    await account_changes.announce(container.redis)
    return Disconnection(account=account, warning=warning)


async def list_accounts(actor: Actor, container: Container) -> list[InstagramAccount]:
    """The workspace's accounts, oldest first (with its demo account in sandbox mode)."""
    if container.settings.sandbox:
        await ensure_demo_account(actor, container)
    return await InstagramAccount.filter(workspace_id=actor.workspace_id).order_by("id")


# ---------------------------------------------------------------------- token health


async def _event(account: InstagramAccount, kind: str, **payload: Any) -> DomainEvent:
    return await DomainEvent.create(
        workspace_id=account.workspace_id,
        kind=kind,
        payload={"account_id": account.id, "username": account.username, **payload},
    )


@dataclass
class RefreshReport:
    refreshed: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    needs_reconnect: list[int] = field(default_factory=list)


def refresh_due(account: InstagramAccount, now: datetime, within: timedelta) -> bool:
    """True when an Instagram Login token may and should be refreshed now.

    Meta refreshes only tokens at least 24 hours old and still valid; Reelay does it once
    the expiry is within ``within`` (TOKEN_REFRESH_WITHIN_DAYS).
    """
    if account.login_kind != LoginKind.INSTAGRAM or account.status != AccountStatus.ACTIVE:
        return False
    if account.token_expires_at is None or account.token_expires_at <= now:
        return False
    issued = account.token_refreshed_at or account.created_at
    return now - issued >= timedelta(hours=24) and account.token_expires_at - now <= within


@instance_level("the token cron over every workspace's accounts")
async def refresh_tokens(
    container: Container, *, oauth: OAuthClient | None = None
) -> RefreshReport:
    """The token cron: refresh due Instagram Login tokens, flag dead ones, warn on expiry."""
    now = container.clock.now()
    within = timedelta(days=container.settings.token_refresh_within_days)
    client = oauth or container.oauth
    base = container.settings.graph_base_url("instagram")
    report = RefreshReport()
    accounts = await InstagramAccount.filter(
        login_kind=LoginKind.INSTAGRAM, status=AccountStatus.ACTIVE
    )
    for account in accounts:
        expires = account.token_expires_at
        if expires is not None and expires <= now:
            await mark_needs_reconnect(
                account, "The Instagram token expired", redis=container.redis
            )
            report.needs_reconnect.append(account.id)
            continue
        if not refresh_due(account, now, within):
            continue
        try:
            token = container.secrets.decrypt(account.token_encrypted)
            grant = await client.refresh(base, token=token)
        except GraphError as exc:
            report.failed.append(account.id)
            if exc.kind is ErrorKind.TOKEN_INVALID or not exc.retryable:
                await mark_needs_reconnect(account, exc.title, redis=container.redis)
                report.needs_reconnect.append(account.id)
            elif expires is not None and expires - now <= EXPIRING_ALERT:
                await _event(
                    account, "token.expiring", expires_at=expires.isoformat(), error=exc.title
                )
            logger.warning("token refresh failed for account %s: %s", account.id, exc)
            continue
        account.token_encrypted = container.secrets.encrypt(grant.access_token)
        account.token_refreshed_at = now
        account.token_expires_at = now + timedelta(seconds=grant.expires_in_s or 5184000)
        await account.save(
            update_fields=["token_encrypted", "token_refreshed_at", "token_expires_at"]
        )
        report.refreshed.append(account.id)
        logger.info("refreshed the token of account %s", account.id)
    return report
