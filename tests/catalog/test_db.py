"""The SQLite catalog's connection settings."""

import sqlite3

import anyio
import pytest
from sqlalchemy import text

from app.catalog.db import SQLITE_BUSY_TIMEOUT_MS, create_engine
from app.catalog.migrate import upgrade_to_head
from app.config import Settings


def test_sqlite_runs_in_wal_mode_with_busy_timeout_and_foreign_keys(settings: Settings) -> None:
    if not settings.catalog_url.startswith("sqlite"):
        pytest.skip("SQLite's own settings")
    upgrade_to_head(settings)

    async def pragmas() -> tuple[str, int, int]:
        engine = create_engine(settings.catalog_url)
        try:
            async with engine.connect() as connection:
                mode = (await connection.execute(text("PRAGMA journal_mode"))).scalar_one()
                timeout = (await connection.execute(text("PRAGMA busy_timeout"))).scalar_one()
                keys = (await connection.execute(text("PRAGMA foreign_keys"))).scalar_one()
                return mode, timeout, keys
        finally:
            await engine.dispose()

    assert anyio.run(pragmas) == ("wal", SQLITE_BUSY_TIMEOUT_MS, 1)
    # WAL is a property of the file: any other client sees it too.
    raw = sqlite3.connect(settings.media_dir / "streamport.db")
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        raw.close()
