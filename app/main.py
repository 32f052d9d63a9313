"""The application factory."""

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from app import __version__, catalog
from app.config import Settings
from app.db import create_engine, create_sessionmaker
from app.errors import install_error_handlers
from app.media_facts import MediaFactsCache
from app.routes import api, events, media, pages
from app.storage import LocalStorage
from app.streaming import SendBudget
from app.templating import create_templates
from app.worker import ProcessingWorker

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
# Bytes renamed into place are recorded within a second; an hour leaves room for any
# process, however slow, that is about to record them.
ORPHAN_MIN_AGE_SECONDS = 3600
SHUTDOWN_DISPOSE_SECONDS = 5

logger = logging.getLogger("streamport")


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    storage: LocalStorage = app.state.storage
    await anyio.to_thread.run_sync(storage.prepare)
    engine = create_engine(settings.catalog_url)
    app.state.sessionmaker = create_sessionmaker(engine)
    worker = ProcessingWorker(
        app.state.sessionmaker,
        storage,
        app.state.media_facts,
        concurrency=settings.processing_concurrency,
        transcode=settings.transcode,
        old_bytes_grace_seconds=settings.lookup_cache_seconds + 5,
    )
    app.state.worker = worker
    try:
        await _sweep(app, storage)
        await worker.start()
        # Everything built so far (routes, templates, models) lives as long as the process:
        # keep it out of the collector's full scans, whose pauses would show as tail latency.
        gc.freeze()
        yield
    finally:
        await worker.stop()
        # Closing pooled connections must not hold a stop up (a server that went away, a
        # connection cancelled mid-query): give it a bound.
        with anyio.move_on_after(SHUTDOWN_DISPOSE_SECONDS) as scope:
            await engine.dispose()
        if scope.cancelled_caught:
            logger.error("Closing the catalog's connections took too long; left to the OS")


async def _sweep(app: FastAPI, storage: LocalStorage) -> None:
    partials = await anyio.to_thread.run_sync(storage.sweep_partials)
    if partials:
        logger.info("Removed %d partial upload(s) left by an interrupted server", len(partials))
    async with app.state.sessionmaker() as session:
        known = await catalog.storage_keys(session)
    orphans = await anyio.to_thread.run_sync(storage.sweep_orphans, known, ORPHAN_MIN_AGE_SECONDS)
    if orphans:
        logger.info("Removed %d stored file(s) that no catalog row points at", len(orphans))


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build a Streamport application; settings default to the environment's."""
    settings = settings or Settings()
    app = FastAPI(
        title="Streamport",
        version=__version__,
        summary="A self-hosted video and large-file streaming portal.",
        lifespan=_lifespan,
    )
    app.state.settings = settings
    app.state.storage = LocalStorage(settings.media_dir)
    app.state.templates = create_templates()
    app.state.media_facts = MediaFactsCache(settings.lookup_cache_seconds)
    app.state.send_budget = SendBudget(settings.send_buffer_bytes, settings.chunk_bytes)
    install_error_handlers(app)
    app.include_router(pages.router)
    app.include_router(media.router)
    app.include_router(events.router)
    app.include_router(api.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
