"""The next-post rule is bound by the publisher: the first feed post or reel published after
it was made becomes its one post (a story does not count)."""

from __future__ import annotations

from core.db.models import AutomationRule, Post
from core.domain.rule_definition import RuleDefinition
from core.services.next_post import next_post_rule
from tests.core.test_publishing import World, world  # noqa: F401


async def test_the_next_published_post_binds_the_waiting_rule(world: World) -> None:  # noqa: F811
    columns = next_post_rule(world.account.id).stored_columns()
    rule = await AutomationRule.create(
        workspace_id=world.workspace.id, account_id=world.account.id, **columns
    )
    assert RuleDefinition.from_stored(rule).waiting_for_post
    story = await world.post("story")
    await world.drain()
    assert (await Post.get(id=story.id)).ig_media_id
    assert RuleDefinition.from_stored(await AutomationRule.get(id=rule.id)).waiting_for_post

    post = await world.post("image", caption="New drop")
    await world.drain()
    media_id = (await Post.get(id=post.id)).ig_media_id
    bound = await AutomationRule.get(id=rule.id)
    assert media_id and bound.media_ids == [media_id]
    assert not RuleDefinition.from_stored(bound).waiting_for_post

    later = await world.post("image", caption="Another")
    await world.drain()
    assert (await AutomationRule.get(id=rule.id)).media_ids == [media_id]
    assert (await Post.get(id=later.id)).ig_media_id != media_id
