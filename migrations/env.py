"""Alembic environment: async engine, batch mode for SQLite, Streamport's settings."""

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from app.catalog.db import create_engine
from app.catalog.models import Base
from app.config import Settings

config = context.config
settings: Settings = config.attributes.get("settings") or Settings()
target_metadata = Base.metadata


def _configure_and_run(connection: Connection | None = None) -> None:
    options = {
        "target_metadata": target_metadata,
        "render_as_batch": True,
        "compare_type": True,
    }
    if connection is None:
        context.configure(url=settings.catalog_url, literal_binds=True, **options)
    else:
        context.configure(connection=connection, **options)
    with context.begin_transaction():
        context.run_migrations()


async def _run_online() -> None:
    engine = create_engine(settings.catalog_url)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_configure_and_run)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    _configure_and_run()
else:
    asyncio.run(_run_online())
