"""Changing a media on behalf of a request: rename, visibility, delete, share. Each checks
the caller may manage the media, records the change in the audit log in the same
transaction, and lets byte serving forget what it cached."""

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from app import catalog
from app.accounts import audit, shares
from app.catalog.models import Media, Share
from app.catalog.room import write_with_room
from app.errors import Forbidden, MediaNotFound, NotSignedIn
from app.ingest.removal import remove_media
from app.web.access_guard import caller_of
from app.web.dependencies import client_address
from app.web.media_access import check_manage


async def update_media(
    request: Request, media_id: str, *, title: str | None, visibility: str | None
) -> Media:
    """Rename and/or change the visibility of a media the caller manages."""
    state = request.app.state
    caller = caller_of(request.scope)

    async def change(session: AsyncSession) -> Any:
        media = await catalog.get_media(session, media_id)
        check_manage(request, media)
        old_title, old_visibility = media.title, media.visibility
        media = await catalog.update_media(session, media_id, title=title, visibility=visibility)
        address = client_address(request)
        if title is not None and title != old_title:
            audit.record(
                session, "rename", caller=caller, address=address, target=media_id, detail=title
            )
        if visibility is not None and visibility != old_visibility:
            audit.record(
                session,
                "visibility",
                caller=caller,
                address=address,
                target=media_id,
                detail=f"{old_visibility} → {visibility}",
            )
        return media

    media = await write_with_room(state.sessionmaker, state.catalog_ballast, change)
    state.media_facts.forget(media_id)
    return media


async def delete_media(request: Request, media_id: str) -> None:
    """Delete a media the caller manages, row then bytes."""
    state = request.app.state
    caller = caller_of(request.scope)

    async def check_and_record(session: AsyncSession) -> None:
        media = await catalog.get_media(session, media_id)
        check_manage(request, media)
        audit.record(
            session,
            "delete",
            caller=caller,
            address=client_address(request),
            target=media_id,
            detail=media.title,
        )

    await remove_media(
        state.sessionmaker,
        state.catalog_ballast,
        state.storage,
        state.media_facts,
        media_id,
        before_delete=check_and_record,
    )


async def share_media(
    request: Request, media_id: str, *, expires_in_seconds: float | None, note: str
) -> Share:
    """A new share link for a media the caller manages."""
    state = request.app.state
    caller = caller_of(request.scope)

    async def change(session: AsyncSession) -> Any:
        media = await catalog.get_media(session, media_id)
        check_manage(request, media)
        share = await shares.create_share(
            session,
            media_id,
            caller.user_id if caller else None,
            expires_in_seconds=expires_in_seconds,
            note=note,
        )
        audit.record(
            session,
            "share",
            caller=caller,
            address=client_address(request),
            target=media_id,
            detail=f"link {share.id[:8]}…, " + _expiry(share),
        )
        return share

    return await write_with_room(state.sessionmaker, state.catalog_ballast, change)


async def unshare(request: Request, share_id: str) -> str:
    """Delete a share link of a media the caller manages; the media's id."""
    state = request.app.state
    caller = caller_of(request.scope)

    async def change(session: AsyncSession) -> Any:
        share = await shares.get_share(session, share_id)
        try:
            media = await catalog.get_media(session, share.media_id)
            check_manage(request, media)
        except (MediaNotFound, Forbidden, NotSignedIn):
            # Someone else's link is answered as one that does not exist.
            raise shares.ShareNotFound() from None
        await shares.delete_share(session, share_id)
        audit.record(
            session,
            "unshare",
            caller=caller,
            address=client_address(request),
            target=share.media_id,
            detail=f"link {share_id[:8]}…",
        )
        return share.media_id

    media_id = await write_with_room(state.sessionmaker, state.catalog_ballast, change)
    state.identities.forget_share(share_id)
    return media_id


def _expiry(share: Share) -> str:
    if share.expires_at is None:
        return "never expires"
    return f"expires {share.expires_at:%Y-%m-%d %H:%M} UTC"
