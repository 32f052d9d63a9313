"""Taking an upload request's body into storage and the catalog, for the form and the API."""

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts import audit
from app.accounts.policy import Caller
from app.catalog.models import Media
from app.config import Settings
from app.ingest.ingestion import ingest_upload
from app.storage import Storage
from app.web.dependencies import client_address


async def store_uploaded_files(
    request: Request, session: AsyncSession, storage: Storage, settings: Settings, caller: Caller
) -> list[Media]:
    """Store every file of the request's multipart body as ``caller``'s, and have them
    processed."""
    stored = await ingest_upload(
        session,
        storage,
        request.stream(),
        content_type=request.headers.get("content-type"),
        content_length=request.headers.get("content-length"),
        max_upload_bytes=settings.max_upload_bytes,
        budget=request.app.state.receive_budget,
        owner_id=caller.user_id,
        default_visibility=settings.default_visibility,
    )
    request.app.state.worker.wake()
    address = client_address(request)
    for media in stored:
        audit.record(
            session,
            "upload",
            caller=caller,
            address=address,
            target=media.id,
            detail=f"{media.filename} ({media.size:,} bytes, {media.visibility})",
        )
    await session.commit()
    return stored
