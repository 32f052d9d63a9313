"""Adding files already on disk to the catalog (``streamport scan DIR``)."""

import logging
from dataclasses import dataclass
from pathlib import Path

from app.catalog.db import create_engine, create_sessionmaker
from app.config import Settings
from app.errors import StreamportError
from app.ingest.ingestion import ingest_path
from app.storage import create_storage

logger = logging.getLogger("streamport")


@dataclass
class ScanSummary:
    added: int = 0
    skipped: int = 0
    failed: int = 0


def _files_under(directory: Path, skip: Path) -> list[Path]:
    skip = skip.resolve()
    found = []
    for path in sorted(directory.rglob("*")):
        resolved = path.resolve()
        if resolved == skip or skip in resolved.parents:
            continue  # never re-add our own storage
        if path.is_file() and not path.name.startswith("."):
            found.append(path)
    return found


async def scan_directory(settings: Settings, directory: Path) -> ScanSummary:
    """Copy every regular file under ``directory`` into storage and the catalog, hashing each
    and skipping bytes the catalog already holds."""
    storage = create_storage(settings)
    await storage.prepare()
    engine = create_engine(settings.catalog_url)
    sessionmaker = create_sessionmaker(engine)
    summary = ScanSummary()
    try:
        for path in _files_under(directory, settings.media_dir):
            async with sessionmaker() as session:
                try:
                    media = await ingest_path(session, storage, path)
                except (OSError, StreamportError) as exc:
                    logger.error("%s: %s", path, exc)
                    summary.failed += 1
                    continue
            if media is None:
                logger.info("%s: already in the catalog", path)
                summary.skipped += 1
            else:
                logger.info("%s: added as %s", path, media.id)
                summary.added += 1
    finally:
        await engine.dispose()
        await storage.close()
    return summary
