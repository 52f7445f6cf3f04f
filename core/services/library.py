"""The media library: a workspace's uploads with search, filters and where each is used.

A file used by a post (as an item or a reel's cover) cannot be deleted: the post would lose
it before or after publishing; cancel or delete the post first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from tortoise.expressions import Q

from core.db.models import MediaAsset, Post, PostMedia
from core.domain.scope import Actor
from core.errors import Conflict, NotFound
from core.ports.storage import MediaStorage
from core.services import audit

logger = logging.getLogger(__name__)

PAGE_SIZE = 60
KINDS = ("image", "video")


@dataclass(frozen=True)
class Usage:
    post_id: int
    status: str
    kind: str
    account_id: int


@dataclass
class LibraryItem:
    asset: MediaAsset
    used_by: list[Usage] = field(default_factory=list)

    @property
    def is_video(self) -> bool:
        return self.asset.mime.startswith("video/")


async def _usage_of(workspace_id: int, asset_ids: list[int]) -> dict[int, list[Usage]]:
    """Which of the workspace's posts use each asset (as a media item or as a cover)."""
    found: dict[int, list[Usage]] = {}
    items = await PostMedia.filter(asset_id__in=asset_ids, post__workspace_id=workspace_id).values(
        "asset_id", "post_id"
    )
    covers = await Post.filter(cover_asset_id__in=asset_ids, workspace_id=workspace_id).values(
        "id", "cover_asset_id"
    )
    pairs = [(int(i["asset_id"]), int(i["post_id"])) for i in items]
    pairs += [(int(c["cover_asset_id"]), int(c["id"])) for c in covers]
    wanted = list({post_id for _, post_id in pairs})
    posts = {p.id: p for p in await Post.filter(id__in=wanted, workspace_id=workspace_id)}
    for asset_id, post_id in sorted(set(pairs)):
        post = posts.get(post_id)
        if post is not None:
            found.setdefault(asset_id, []).append(
                Usage(
                    post_id=post.id,
                    status=post.status.value,
                    kind=post.kind.value,
                    account_id=post.account_id,
                )
            )
    return found


async def list_media(
    actor: Actor,
    *,
    search: str = "",
    kind: str = "",
    unused_only: bool = False,
    page: int = 1,
) -> tuple[list[LibraryItem], bool]:
    """One page of the library, newest first, and whether there are more."""
    workspace_id = actor.workspace_id
    query = MediaAsset.filter(workspace_id=workspace_id)
    if search.strip():
        query = query.filter(Q(filename__icontains=search.strip()))
    if kind in KINDS:
        query = query.filter(mime__startswith=f"{kind}/")
    if unused_only:
        used = await PostMedia.filter(asset__workspace_id=workspace_id).values_list(
            "asset_id", flat=True
        )
        covers = await Post.filter(
            workspace_id=workspace_id, cover_asset_id__isnull=False
        ).values_list("cover_asset_id", flat=True)
        query = query.exclude(id__in=list({*used, *covers}))
    page = max(page, 1)
    rows = (
        await query.order_by("-created_at", "-id")
        .offset((page - 1) * PAGE_SIZE)
        .limit(PAGE_SIZE + 1)
    )
    usage = await _usage_of(workspace_id, [a.id for a in rows[:PAGE_SIZE]])
    return [LibraryItem(a, usage.get(a.id, [])) for a in rows[:PAGE_SIZE]], len(rows) > PAGE_SIZE


async def delete_media(actor: Actor, storage: MediaStorage, asset_id: int) -> None:
    """Delete an unused file from the library and the storage."""
    workspace_id = actor.workspace_id
    asset = await MediaAsset.get_or_none(id=asset_id, workspace_id=workspace_id)
    if asset is None:
        raise NotFound(f"media {asset_id} is not in this workspace's library")
    used = (await _usage_of(workspace_id, [asset.id])).get(asset.id, [])
    if used:
        posts = ", ".join(f"#{u.post_id}" for u in used[:5])
        raise Conflict(f"This file is used by post {posts}: remove it from the post first.")
    await asset.delete()
    await storage.delete(asset.storage_key)
    await audit.record(
        "media.deleted",
        actor=actor.label,
        workspace_id=workspace_id,
        target_type="media",
        target_id=asset_id,
        filename=asset.filename,
    )
    logger.info("media %s deleted from workspace %s", asset_id, workspace_id)
