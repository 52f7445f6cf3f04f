"""Each account's ice breakers and persistent menu: stored in Reelay, pushed to Meta on save.

Meta holds the profile that followers see; Reelay keeps the same document on the account
(``InstagramAccount.messenger_profile``) so the panel can show and edit it. A save goes to
Meta first and is stored only once Meta accepted it, so the stored profile is never one that
Meta refused. Setting and deleting profile fields replace them whole, so a save whose answer
was lost is safe to repeat.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from core.db.models import AutomationRule, InstagramAccount, Role, Trigger
from core.domain.graph_errors import ErrorKind, GraphError
from core.domain.messenger_profile import MessengerProfile, ProfileError, parse_profile
from core.domain.rules import RuleIndex, spec_of
from core.domain.scope import Actor
from core.errors import Forbidden, NotFound, ReelayError, ValidationFailed
from core.ports.instagram import AccountRef, InstagramClient
from core.services import audit

logger = logging.getLogger(__name__)


class MetaRefused(ReelayError):
    """Meta did not take the profile (or its answer was lost); the text says why, for people."""

    def __init__(self, error: GraphError) -> None:
        if error.maybe_sent or error.kind is ErrorKind.TRANSIENT:
            # Setting the profile replaces it whole: saving again is safe either way.
            text = (
                "Instagram did not answer, so the conversation starters may or may not be "
                f"live ({error.title}). Save again: it replaces them, nothing is doubled."
            )
        else:
            text = f"Instagram did not accept the conversation starters: {error.title}"
        super().__init__(text)
        self.title = error.title


def stored_profile(account: InstagramAccount) -> MessengerProfile:
    """The profile stored on ``account`` (empty when none was ever saved)."""
    try:
        return parse_profile(account.messenger_profile or {})
    except ProfileError:
        logger.warning("account %s has an unreadable stored messenger profile", account.id)
        return MessengerProfile()


class MessengerProfiles:
    def __init__(
        self,
        *,
        graph: InstagramClient,
        account_ref: Callable[[InstagramAccount], AccountRef],
    ) -> None:
        self.graph = graph
        self.account_ref = account_ref

    async def _account(self, actor: Actor, account_id: int) -> InstagramAccount:
        account = await InstagramAccount.get_or_none(id=account_id, workspace_id=actor.workspace_id)
        if account is None:
            raise NotFound("No such Instagram account.")
        return account

    async def get(self, actor: Actor, account_id: int) -> MessengerProfile:
        """The account's ice breakers and menu; any member may read them."""
        return stored_profile(await self._account(actor, account_id))

    async def answering_rules(self, actor: Actor, account_id: int) -> dict[str, str]:
        """payload → the name of the active ``postback`` rule a tap on it fires (as the
        engine matches), for each payload of the stored profile that one answers."""
        account = await self._account(actor, account_id)
        found = await AutomationRule.filter(
            account_id=account.id,
            workspace_id=actor.workspace_id,
            trigger=Trigger.POSTBACK,
            active=True,
        )
        names = {rule.id: rule.name or f"Rule {rule.id}" for rule in found}
        index = RuleIndex(
            spec_of(
                id=rule.id,
                trigger=rule.trigger.value,
                keywords=rule.keywords,
                match_mode=rule.match_mode.value,
                priority=rule.priority,
                config=rule.config,
            )
            for rule in found
        )
        answered: dict[str, str] = {}
        for payload in stored_profile(account).payloads():
            hits = index.match(Trigger.POSTBACK.value, payload)
            if hits:
                answered[payload] = names[hits[0].id]
        return answered

    async def save(
        self, actor: Actor, account_id: int, document: Mapping[str, Any]
    ) -> MessengerProfile:
        """Validate, push to Meta, then store; raises ValidationFailed (bad input, nothing
        sent) or MetaRefused (Meta said no, nothing stored)."""
        if not actor.allows(Role.ADMIN):
            raise Forbidden("Only owners and admins change the conversation starters.")
        account = await self._account(actor, account_id)
        try:
            profile = parse_profile(document)
        except ProfileError as exc:
            raise ValidationFailed(str(exc), {"profile": str(exc)}) from exc
        before = stored_profile(account)
        ref = self.account_ref(account)
        try:
            fields = profile.wire_fields()
            if len(fields) > 1:  # more than ``platform``
                await self.graph.set_messenger_profile(ref, fields)
            # Only fields Meta may hold: removing one that was never set is a wasted call.
            gone = [f for f in profile.absent_fields() if f not in before.absent_fields()]
            if gone:
                await self.graph.delete_messenger_profile(ref, gone)
        except GraphError as exc:
            logger.warning(
                "messenger profile refused for account %s: %s (%s)", account.id, exc.title, exc.kind
            )
            raise MetaRefused(exc) from exc
        account.messenger_profile = profile.as_json()
        await account.save(update_fields=["messenger_profile"])
        await audit.record(
            "account.messenger_profile_changed",
            actor=actor.label,
            workspace_id=actor.workspace_id,
            account_id=account.id,
            target_type="account",
            target_id=account.id,
            ice_breakers=len(profile.ice_breakers),
            menu_items=len(profile.menu),
        )
        return profile
