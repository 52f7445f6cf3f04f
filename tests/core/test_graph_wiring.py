"""The container carries the Graph client; account rows become AccountRefs with their token."""

from __future__ import annotations

from core.adapters.graph import GraphClient, RedisUsageStore
from core.bootstrap import Container
from core.db.models import InstagramAccount, LoginKind, Workspace
from core.domain.graph_errors import Usage
from core.services.accounts import account_ref


async def test_container_has_a_graph_client_sharing_the_http_session(
    container: Container,
) -> None:
    assert isinstance(container.graph, GraphClient)
    assert isinstance(container.graph.usage, RedisUsageStore)
    await container.graph.usage.put("5", Usage(app_pct=80))
    assert await container.graph.usage.get("5") == Usage(app_pct=80)
    assert await container.redis.ttl("graph:usage:5") > 0


async def test_account_ref_decrypts_the_token(container: Container) -> None:
    space = await Workspace.create(name="Team")
    row = await InstagramAccount.create(
        workspace=space,
        ig_id="1784",
        username="shop",
        login_kind=LoginKind.FACEBOOK,
        page_id="55",
        token_encrypted=container.secrets.encrypt("page-token"),
    )
    ref = account_ref(container, row)
    assert (ref.ig_id, ref.token, ref.login_kind, ref.account_id, ref.page_id) == (
        "1784",
        "page-token",
        "facebook",
        row.id,
        "55",
    )
    assert "page-token" not in repr(ref)
