"""An install from before accounts, upgraded: its media belong to the first admin made and
stay private until changed; nobody else sees them meanwhile."""

import hashlib
import os
import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import httpx2
from alembic import command

from app.catalog.migrate import alembic_config
from app.config import Settings
from app.storage.keys import new_key
from tests.conftest import provision, start_server


def _catalog_before_accounts(settings: Settings, data: bytes) -> str:
    """A catalog at the last revision before accounts holding one media, as that version
    stored it; its id."""
    settings.media_dir.mkdir(parents=True)
    command.upgrade(alembic_config(settings), "0003")
    key = new_key()
    path = settings.media_dir / "objects" / key
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    media_id = "b4accounts000001"
    with closing(sqlite3.connect(settings.media_dir / "streamport.db")) as db, db:
        db.execute(
            "INSERT INTO media (id, title, filename, content_type, size, sha256, storage_key,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (media_id, "Holiday notes", "notes.bin", "application/octet-stream", len(data),
             hashlib.sha256(data).hexdigest(), key, datetime.now(UTC).isoformat(" ")),
        )  # fmt: skip
    return media_id


def test_media_of_an_upgraded_install_go_to_the_first_admin_and_stay_private(
    tmp_path: Path,
) -> None:
    settings = Settings(_env_file=None, media_dir=tmp_path / "media", processing_concurrency=0)
    data = os.urandom(100_000)
    media_id = _catalog_before_accounts(settings, data)
    server = start_server(settings, tmp_path / "server.log", admin=False)
    try:
        with server.anonymous_client() as anonymous:
            assert anonymous.get(f"/api/media/{media_id}").status_code == 404
            assert anonymous.get("/api/media").json()["items"] == []

        # A member made first gets nothing; the first admin gets the media, still private.
        member = provision(settings, "early-member")
        admin = provision(settings, "first-admin", is_admin=True)
        later_admin = provision(settings, "second-admin", is_admin=True)
        byte_urls: list[str] = []
        for token, owner_sees in ((member, False), (admin, True), (later_admin, True)):
            headers = {"Authorization": f"Bearer {token}"}
            with httpx2.Client(base_url=server.base_url, headers=headers, timeout=30) as client:
                item = client.get(f"/api/media/{media_id}")
                assert item.status_code == (200 if owner_sees else 404), item.text
                if owner_sees:
                    assert item.json()["owner"] == "first-admin"
                    assert item.json()["visibility"] == "private"
                    byte_urls = [item.json()["stream_url"], item.json()["download_url"]]
                    download = client.get(byte_urls[1])
                    assert download.content == data
                    assert "private" in download.headers["cache-control"]
        with server.anonymous_client() as anonymous:
            for url in byte_urls:
                assert anonymous.get(url).status_code == 404
    finally:
        server.stop()
