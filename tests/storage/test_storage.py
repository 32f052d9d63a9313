"""Local storage: partial files, commit, sweeps; S3 part sizes."""

import os
import time
from pathlib import Path

import anyio
import pytest
from fastapi.testclient import TestClient

from app.errors import InsufficientStorage
from app.storage import LocalStorage, StoredObject
from app.storage.keys import is_key, new_key
from app.storage.s3 import MIN_PART_BYTES, part_bytes_for
from tests.conftest import upload


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    storage = LocalStorage(tmp_path / "media")
    anyio.run(storage.prepare)
    return storage


def test_commit_moves_bytes_into_place(storage: LocalStorage) -> None:
    async def scenario() -> str:
        upload = await storage.open_upload()
        await upload.write(b"hello")
        await upload.commit()
        return upload.key

    key = anyio.run(scenario)
    assert storage.path_for(key).read_bytes() == b"hello"
    assert list(storage.scratch.directory.iterdir()) == []


def test_keys_are_generated_and_checked(storage: LocalStorage) -> None:
    key = new_key()
    assert storage.path_for(key).is_relative_to(storage.objects_dir)
    wrong_folder = "00/" + key.partition("/")[2].replace(key[:2], "ff", 1)
    for bad in ("../x", "ab/../../etc/passwd", "/etc/passwd", "ab/cd", "ab/report01", wrong_folder):
        with pytest.raises(ValueError):
            storage.path_for(bad)


def test_sweep_spares_a_partial_that_is_still_being_written(storage: LocalStorage) -> None:
    async def scenario() -> None:
        partial = await storage.scratch.open_partial()
        await partial.write(b"in flight")
        assert storage.scratch.sweep_partials() == []
        assert partial.path.exists()
        await partial.close()
        assert storage.scratch.sweep_partials() == [partial.path]
        assert not partial.path.exists()

    anyio.run(scenario)


def test_sweep_orphans_spares_recent_files_and_catalogued_ones(storage: LocalStorage) -> None:
    old, recent, known = new_key(), new_key(), new_key()
    for key in (old, recent, known):
        path = storage.path_for(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    an_hour_ago = time.time() - 7200
    os.utime(storage.path_for(old), (an_hour_ago, an_hour_ago))
    os.utime(storage.path_for(known), (an_hour_ago, an_hour_ago))
    assert storage.sweep_orphans({known}, min_age_seconds=3600) == [old]
    assert storage.path_for(recent).exists() and storage.path_for(known).exists()


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_full_disk_becomes_insufficient_storage(storage: LocalStorage) -> None:
    async def scenario() -> None:
        partial = await storage.scratch.open_partial()
        # Swap the descriptor for /dev/full, whose writes fail with ENOSPC like a full disk.
        full = os.open("/dev/full", os.O_WRONLY)
        os.dup2(full, partial._handle.fileno())
        os.close(full)
        with pytest.raises(InsufficientStorage):
            await partial.write(b"x" * 4096)
        await partial.discard()

    anyio.run(scenario)
    assert list(storage.scratch.directory.iterdir()) == []


def test_s3_parts_are_8_mib_or_more_and_never_more_than_10000() -> None:
    assert part_bytes_for(0) == MIN_PART_BYTES
    assert part_bytes_for(10 * 2**30) == MIN_PART_BYTES
    for total in (80 * 2**30, 100 * 2**30, 5 * 2**40):
        part = part_bytes_for(total)
        assert part % 2**20 == 0 and part >= MIN_PART_BYTES
        assert -(-total // part) <= 10_000


def test_listing_names_every_stored_object_with_its_size(client: TestClient) -> None:
    upload(client, b"abc", filename="a.bin")
    upload(client, b"defgh", filename="b.bin")
    storage = client.app.state.storage  # type: ignore[attr-defined]

    async def collect() -> list[StoredObject]:
        return [stored async for stored in storage.listing()]

    assert client.portal is not None
    found = client.portal.call(collect)
    assert sorted(stored.size for stored in found) == [3, 5]
    assert all(is_key(stored.key) for stored in found)
