"""Jobs are claimed fairly: one request's thousand files do not starve the next upload."""

from pathlib import Path

import anyio

from app.catalog import add_media, next_fair_rank
from app.catalog.db import create_engine, create_sessionmaker
from app.catalog.migrate import upgrade_to_head
from app.config import Settings
from app.processing import jobs
from tests.conftest import FINAL_STATES, start_server, wait_for_processing
from tests.media_samples import Samples


async def _enqueue(settings: Settings, batches: list[tuple[str, int]]) -> list[str]:
    """Queue ``count`` jobs for each ``(key, count)`` in turn; then claim them all, and
    return the keys in the order they were claimed."""
    engine = create_engine(settings.catalog_url)
    sessionmaker = create_sessionmaker(engine)
    keys_by_media = {}
    try:
        for key, count in batches:
            async with sessionmaker() as session:
                first = await next_fair_rank(session, key)
                for index in range(count):
                    media = await add_media(
                        session, title="t", filename="t.bin", content_type="video/mp4",
                        size=1, sha256="0" * 64, storage_key=f"{key}/{index}/{len(keys_by_media)}",
                        queue_key=key, fair_rank=first + index,
                    )  # fmt: skip
                    keys_by_media[media.id] = key
                await session.commit()
        claimed = []
        while True:
            async with sessionmaker() as session:
                job = await jobs.claim_next(session, "worker")
                if job is not None:
                    await jobs.finish(session, job.id, "worker", "done")
                await session.commit()
            if job is None:
                return claimed
            claimed.append(keys_by_media[job.media_id])
    finally:
        await engine.dispose()


def test_a_newcomer_goes_ahead_of_a_big_batch(settings: Settings) -> None:
    upgrade_to_head(settings)
    order = anyio.run(_enqueue, settings, [("big", 5), ("small", 1), ("other", 2)])
    assert order == ["big", "small", "other", "big", "other", "big", "big", "big"]


def test_a_key_that_comes_back_queues_behind_its_own_jobs(settings: Settings) -> None:
    upgrade_to_head(settings)
    order = anyio.run(_enqueue, settings, [("a", 2), ("b", 1), ("a", 2)])
    assert order == ["a", "b", "a", "a", "a"]


def test_the_next_upload_does_not_wait_for_a_whole_batch(samples: Samples, tmp_path: Path) -> None:
    files = 30
    settings = Settings(_env_file=None, media_dir=tmp_path / "media", max_upload_bytes=2**30)
    server = start_server(settings, tmp_path / "server.log")
    audio = samples.mp3.read_bytes()
    try:
        with server.client() as client:
            batch = [("file", (f"take-{i}.mp3", audio + bytes(i))) for i in range(files)]
            response = client.post("/api/media", files=batch)
            assert response.status_code == 201, response.text
            batch_ids = [m["id"] for m in response.json()["items"]]
            single = client.post("/api/media", files={"file": ("voice.mp3", audio)})
        media = wait_for_processing(server, single.json()["items"][0]["id"], FINAL_STATES)
        assert media["processing"]["state"] == "done"
        with server.client() as client:
            states = [
                client.get(f"/api/media/{i}").json()["processing"]["state"] for i in batch_ids
            ]
        # Claimed one for one with the batch: at most a couple of its files went first.
        assert states.count("done") <= 3, states
        assert all(
            wait_for_processing(server, i)["processing"]["state"] == "done" for i in batch_ids
        )
    finally:
        server.stop()
