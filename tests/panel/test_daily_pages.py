"""Daily-use panel pages: invitations by email, the setup wizard's chat step, lead flow
answers in the leads table, the sandbox's sample posts."""

from __future__ import annotations

import re
from typing import Any

from core.db.models import AuditLog, Invite, Membership, Role, User
from core.ports.mailer import MailError
from tests.panel.helpers import CSRF, sign_in_as, team_of_four


class Outbox:
    def __init__(self, refuse: bool = False) -> None:
        self.sent: list[tuple[str, str, str]] = []
        self.refuse = refuse

    async def send(self, to: str, subject: str, body: str) -> None:
        if self.refuse:
            raise MailError("550 relay denied")
        self.sent.append((to, subject, body))


async def _signed_in(client: Any, role: Role = Role.OWNER) -> dict[Role, Membership]:
    members = await team_of_four()
    user = await User.get(id=members[role].user_id)
    await sign_in_as(client, user, members[role].workspace_id)
    return members


async def test_invitation_emailed_when_smtp_is_set(
    client: Any, services: Any, sqlite_db: str
) -> None:
    await _signed_in(client, Role.ADMIN)
    page = await (await client.get("/team")).get_data(as_text=True)
    assert "set SMTP_HOST" in page and 'name="email"' not in page
    outbox = Outbox()
    services.delivery.mailer = outbox
    page = await (await client.get("/team")).get_data(as_text=True)
    assert 'name="email"' in page

    response = await client.post(
        "/team/invites",
        form={"csrf_token": CSRF, "role": "editor", "email": " New.Person@Example.com "},
    )
    page = await response.get_data(as_text=True)
    assert response.status_code == 201
    assert "Emailed to new.person@example.com." in page
    assert 'data-copy="#invite-link"' in page
    link = re.search(r"http://[^<\s]+/invite/[\w-]+", page)
    assert link
    [(to, subject, body)] = outbox.sent
    assert to == "new.person@example.com" and "on Reelay" in subject
    assert link.group(0) in body and "as editor" in body and "admin@example.com" in body
    assert await AuditLog.filter(action="team.invite_emailed").exists()


async def test_a_bad_address_or_a_refusing_server_loses_nothing(
    client: Any, services: Any, sqlite_db: str
) -> None:
    await _signed_in(client)
    services.delivery.mailer = Outbox(refuse=True)
    bad = await client.post(
        "/team/invites", form={"csrf_token": CSRF, "role": "viewer", "email": "not-an-address"}
    )
    assert bad.status_code == 422
    page = await bad.get_data(as_text=True)
    assert 'value="not-an-address"' in page and 'aria-invalid="true"' in page
    assert await Invite.all().count() == 0

    refused = await client.post(
        "/team/invites", form={"csrf_token": CSRF, "role": "viewer", "email": "a@example.com"}
    )
    page = await refused.get_data(as_text=True)
    # The link was made and stays usable: it is shown to copy, with why the email failed.
    assert refused.status_code == 201 and "550 relay denied" in page
    assert re.search(r"http://[^<\s]+/invite/[\w-]+", page)
    assert await Invite.all().count() == 1
    assert not await AuditLog.filter(action="team.invite_emailed").exists()
