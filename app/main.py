"""The application factory."""

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp

from app import __version__, catalog
from app.accounts.credentials import load_or_create_key
from app.accounts.identity import Identities
from app.catalog.db import create_engine, create_sessionmaker
from app.catalog.facts import MediaFactsCache
from app.catalog.room import Ballast
from app.config import Settings
from app.ingest.uploads import ReceiveBudget
from app.processing.limits import ProcessingLimits
from app.processing.playback_plan import PlaybackOptions
from app.processing.worker import ProcessingWorker
from app.serving.streaming import SendBudget
from app.storage import Storage, create_storage
from app.storage.info_cache import ObjectInfoCache
from app.web.access_guard import AccessGuard
from app.web.body_limit import BodyLimit
from app.web.connection_limits import LIMITS_STATE_KEY, ConnectionLimits, open_files_limit
from app.web.errors import install_error_handlers
from app.web.progress_hub import ProgressHub
from app.web.response_headers import ResponseHeaders
from app.web.routes import account, admin, api, auth, events, hls, media, pages, shares
from app.web.templating import create_templates

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
SHUTDOWN_DISPOSE_SECONDS = 5

logger = logging.getLogger("streamport")


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[dict[str, object]]:
    settings: Settings = app.state.settings
    storage: Storage = app.state.storage
    await storage.prepare()
    engine = create_engine(settings.catalog_url)
    app.state.sessionmaker = create_sessionmaker(engine)
    app.state.identities.sessionmaker = app.state.sessionmaker
    app.state.catalog_ballast = Ballast.for_catalog(settings.catalog_url)
    await app.state.catalog_ballast.restore()
    worker = ProcessingWorker(
        app.state.sessionmaker,
        storage,
        app.state.media_facts,
        concurrency=settings.processing_concurrency,
        playback=PlaybackOptions.from_settings(settings),
        # Other workers may still serve an old derived key for as long as they cache facts.
        old_bytes_grace_seconds=app.state.media_facts.max_age_seconds + 5,
        limits=ProcessingLimits.from_settings(settings),
    )
    app.state.worker = worker
    limits = ConnectionLimits.from_settings(settings, open_files_limit())
    # Event streams may take half the connections a process keeps.
    app.state.progress_hub = ProgressHub(
        app.state.sessionmaker,
        max_streams=max(1, limits.max_connections // 2),
        max_streams_per_client=settings.max_event_streams_per_client,
    )
    try:
        await storage.sweep(lambda: _catalog_keys(app))
        await worker.start()
        # Everything built so far (routes, templates, models) lives as long as the process:
        # keep it out of the collector's full scans, whose pauses would show as tail latency.
        gc.freeze()
        # uvicorn hands the lifespan state to every connection: the protocol's limits.
        yield {LIMITS_STATE_KEY: limits}
    finally:
        await app.state.progress_hub.stop()
        await worker.stop()
        await app.state.media_facts.aclose()
        await app.state.identities.aclose()
        # Closing pooled connections must not hold a stop up (a server that went away, a
        # connection cancelled mid-query): give it a bound.
        with anyio.move_on_after(SHUTDOWN_DISPOSE_SECONDS) as scope:
            await engine.dispose()
        if scope.cancelled_caught:
            logger.error("Closing the catalog's connections took too long; left to the OS")
        with anyio.move_on_after(SHUTDOWN_DISPOSE_SECONDS, shield=True):
            await storage.close()


async def _catalog_keys(app: FastAPI) -> set[str]:
    async with app.state.sessionmaker() as session:
        return await catalog.storage_keys(session)


class _StreamportApp(FastAPI):
    """FastAPI with the response headers outside everything else, even the handler that
    answers 500 for an unexpected error (which user middleware does not wrap)."""

    def build_middleware_stack(self) -> ASGIApp:
        return ResponseHeaders(super().build_middleware_stack())


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build a Streamport application; settings default to the environment's."""
    settings = settings or Settings()
    app = _StreamportApp(
        title="Streamport",
        version=__version__,
        summary="A self-hosted video and large-file streaming portal.",
        lifespan=_lifespan,
    )
    app.state.settings = settings
    app.state.storage = create_storage(settings)
    app.state.object_info = ObjectInfoCache(app.state.storage)
    app.state.templates = create_templates()
    app.state.media_facts = MediaFactsCache(settings.lookup_cache_seconds)
    app.state.send_budget = SendBudget(settings.send_buffer_bytes, settings.chunk_bytes)
    app.state.receive_budget = ReceiveBudget()
    app.state.secret_key = load_or_create_key(settings.key_path)
    app.state.identities = Identities(app.state.secret_key, settings.lookup_cache_seconds)
    install_error_handlers(app)
    app.include_router(pages.router)
    app.include_router(media.router)
    app.include_router(hls.router)
    app.include_router(events.router)
    app.include_router(api.router)
    app.include_router(shares.router)
    app.include_router(auth.router)
    app.include_router(account.router)
    app.include_router(admin.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    # Only the upload routes read large bodies, and they stream and bound them themselves.
    uploads = {
        ("POST", str(app.url_path_for(name))) for name in ("api_upload_media", "upload_submit")
    }
    # Inside the body cap: the guard reads a form's small body for its CSRF token.
    app.add_middleware(
        AccessGuard,
        allowed_hosts=settings.host_names,
        identities=app.state.identities,
        secure_cookies=settings.secure_cookies,
        public_origin=settings.public_origin,
    )
    app.add_middleware(BodyLimit, streaming_routes=uploads)
    return app
