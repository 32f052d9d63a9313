"""Taking an upload request's body into storage and the catalog, for the form and the API."""

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.models import Media
from app.config import Settings
from app.ingest.ingestion import ingest_upload
from app.storage import Storage


async def store_uploaded_files(
    request: Request, session: AsyncSession, storage: Storage, settings: Settings
) -> list[Media]:
    """Store every file of the request's multipart body, and have them processed."""
    stored = await ingest_upload(
        session,
        storage,
        request.stream(),
        content_type=request.headers.get("content-type"),
        content_length=request.headers.get("content-length"),
        max_upload_bytes=settings.max_upload_bytes,
        budget=request.app.state.receive_budget,
    )
    request.app.state.worker.wake()
    return stored
