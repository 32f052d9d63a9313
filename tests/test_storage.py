"""Local storage: partial files, commit, sweeps."""

import os
import time
from pathlib import Path

import anyio
import pytest

from app.errors import InsufficientStorage
from app.storage import LocalStorage


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    storage = LocalStorage(tmp_path / "media")
    storage.prepare()
    return storage


def test_commit_moves_bytes_into_place(storage: LocalStorage) -> None:
    async def scenario() -> str:
        partial = await storage.open_partial()
        await partial.write(b"hello")
        key = storage.new_key()
        await storage.commit(partial, key)
        return key

    key = anyio.run(scenario)
    assert storage.path_for(key).read_bytes() == b"hello"
    assert list(storage.partial_dir.iterdir()) == []


def test_keys_are_generated_and_checked(storage: LocalStorage) -> None:
    key = storage.new_key()
    assert storage.path_for(key).is_relative_to(storage.objects_dir)
    for bad in ("../x", "ab/../../etc/passwd", "/etc/passwd", "ab/cd"):
        with pytest.raises(ValueError):
            storage.path_for(bad)


def test_sweep_spares_a_partial_that_is_still_being_written(storage: LocalStorage) -> None:
    async def scenario() -> None:
        partial = await storage.open_partial()
        await partial.write(b"in flight")
        assert storage.sweep_partials() == []
        assert partial.path.exists()
        await partial.close()
        assert storage.sweep_partials() == [partial.path]
        assert not partial.path.exists()

    anyio.run(scenario)


def test_sweep_orphans_spares_recent_files_and_catalogued_ones(storage: LocalStorage) -> None:
    old, recent, known = storage.new_key(), storage.new_key(), storage.new_key()
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
        partial = await storage.open_partial()
        # Swap the descriptor for /dev/full, whose writes fail with ENOSPC like a full disk.
        full = os.open("/dev/full", os.O_WRONLY)
        os.dup2(full, partial._handle.fileno())
        os.close(full)
        with pytest.raises(InsufficientStorage):
            await partial.write(b"x" * 4096)
        await partial.discard()

    anyio.run(scenario)
    assert list(storage.partial_dir.iterdir()) == []
