"""With no Meta app, Reelay runs the sandbox and every workspace gets a connected demo account."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import socket
from typing import Any

import pytest

from core.bootstrap import Container
from core.db.models import AccountStatus, InstagramAccount, LoginKind, Workspace
from core.domain.scope import Actor
from core.errors import InfrastructureError
from core.services.accounts import account_ref, ensure_demo_account, ensure_demo_accounts
from core.services.sandbox_keys import signing_secret
from core.settings import Settings
from reelay.sandbox_runner import run_sandbox
from tests.e2e.stack import free_port


async def test_demo_accounts_once_per_workspace(container: Container) -> None:
    first = await Workspace.create(name="A")
    second = await Workspace.create(name="B")
    made = await ensure_demo_accounts(container)
    assert sorted(a.workspace_id for a in made) == [first.id, second.id]
    assert await ensure_demo_accounts(container) == []
    account = made[0]
    assert account.login_kind is LoginKind.SANDBOX and account.status is AccountStatus.ACTIVE
    account.status = AccountStatus.DISCONNECTED
    await account.save()
    assert await ensure_demo_account(Actor.system(first.id), container) is None
    assert await InstagramAccount.filter(workspace=first).count() == 1


async def test_sandbox_serves_demo_accounts_and_signs_webhooks(
    settings_factory: Any, redis_location: Any, redis: Any
) -> None:
    from reelay.cli import open_services

    settings: Settings = settings_factory(sandbox_url=f"http://127.0.0.1:{free_port()}")
    container = (
        await open_services(settings, run_migrations=False, redis_location=redis_location)
    ).container
    task = asyncio.create_task(run_sandbox(container))
    try:
        workspace = await Workspace.create(name="Team")
        account = None
        for _ in range(200):
            account = await InstagramAccount.get_or_none(workspace=workspace)
            if account is not None and container.sandbox is not None:
                break
            await asyncio.sleep(0.05)
        assert account is not None, "no demo account appeared"
        assert container.secrets.decrypt(account.token_encrypted) not in account.token_encrypted
        ref = account_ref(container, account)
        profile = await container.graph.profile(ref)
        assert profile["username"] == "reelay_demo"
        assert (await container.graph.media_list(ref))[0]["caption"].startswith("Welcome")

        sandbox = container.sandbox
        assert sandbox.state.webhook_url == settings.base_url + "/webhooks/meta"
        sandbox.state.webhook_url = None
        _, delivery = await sandbox.comment(account.ig_id, "hi")
        secret = signing_secret(settings, container.secret_key).encode()
        expected = "sha256=" + hmac.new(secret, delivery.body, hashlib.sha256).hexdigest()
        assert delivery.signature == expected
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        container.redis_location = type(redis_location)(
            url=redis_location.url, unix_socket_path=redis_location.unix_socket_path
        )
        await container.close()
    assert container.sandbox is None


async def test_sandbox_accounts_have_sample_posts_from_the_start(
    settings_factory: Any, redis_location: Any, redis: Any
) -> None:
    """A follower can comment at once: the demo account (made before this start, as the panel
    does) has a few posts before anything used its token."""
    from reelay.cli import open_services

    settings: Settings = settings_factory(sandbox_url=f"http://127.0.0.1:{free_port()}")
    container = (
        await open_services(settings, run_migrations=False, redis_location=redis_location)
    ).container
    workspace = await Workspace.create(name="Team")
    account = await ensure_demo_account(Actor.system(workspace.id), container)
    assert account is not None
    task = asyncio.create_task(run_sandbox(container))
    try:
        for _ in range(200):
            if container.sandbox is not None and container.sandbox.state.feed(account.ig_id):
                break
            await asyncio.sleep(0.05)
        assert container.sandbox is not None
        feed = await container.follower_console().feed(account.ig_id)
        assert len(feed) == 3 and feed[0]["caption"].startswith("Welcome")
        assert {m["media_product_type"] for m in feed} == {"FEED", "REELS"}
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        container.redis_location = type(redis_location)(
            url=redis_location.url, unix_socket_path=redis_location.unix_socket_path
        )
        await container.close()


async def test_busy_sandbox_port_is_a_clear_error(
    settings_factory: Any, redis_location: Any, redis: Any
) -> None:
    from reelay.cli import open_services

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        settings: Settings = settings_factory(sandbox_url=f"http://127.0.0.1:{port}")
        container = (
            await open_services(settings, run_migrations=False, redis_location=redis_location)
        ).container
        container.redis_location = type(redis_location)(
            url=redis_location.url, unix_socket_path=redis_location.unix_socket_path
        )
        try:
            with pytest.raises(InfrastructureError, match="SANDBOX_URL"):
                await run_sandbox(container)
        finally:
            await container.close()
