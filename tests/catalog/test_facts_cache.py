"""The byte-serving facts cache: stale entries refreshed in the background, one query per media."""

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import anyio
import pytest

from app.catalog.facts import MediaFacts, MediaFactsCache
from app.errors import MediaNotFound

TTL = 0.05


def facts(name: str, job_state: str | None = "done") -> MediaFacts:
    now = datetime.now(UTC)
    return MediaFacts(
        "ab/key", 10, "00" * 32, "video/mp4", now, name, None, None, None, job_state, 1, "public"
    )


class Catalog:
    """Stands in for the database: counts queries, can hold them until released."""

    def __init__(self) -> None:
        self.name = "first.mp4"
        self.queries = 0
        self.gone = False
        self.gate = asyncio.Event()
        self.gate.set()

    async def load(self, media_id: str) -> MediaFacts:
        self.queries += 1
        await self.gate.wait()
        if self.gone:
            raise MediaNotFound()
        return facts(self.name)


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    anyio.run(scenario)


def test_concurrent_misses_share_one_query() -> None:
    async def scenario() -> None:
        cache, catalog = MediaFactsCache(TTL), Catalog()
        catalog.gate.clear()
        waiting = [asyncio.ensure_future(cache.lookup("m", catalog.load)) for _ in range(16)]
        await asyncio.sleep(0.01)
        catalog.gate.set()
        assert {f.filename for f in await asyncio.gather(*waiting)} == {"first.mp4"}
        assert catalog.queries == 1

    run(scenario)


def test_a_stale_entry_is_served_at_once_while_one_refresh_runs() -> None:
    async def scenario() -> None:
        cache, catalog = MediaFactsCache(TTL), Catalog()
        await cache.lookup("m", catalog.load)
        await asyncio.sleep(TTL * 1.2)
        catalog.name, catalog.gate = "renamed.mp4", asyncio.Event()
        # The refresh is held: these answer from the stale entry without waiting for it.
        with anyio.fail_after(1):
            for _ in range(10):
                assert (await cache.lookup("m", catalog.load)).filename == "first.mp4"
                await asyncio.sleep(0)
        assert catalog.queries == 2
        catalog.gate.set()
        await asyncio.sleep(0.01)
        assert (await cache.lookup("m", catalog.load)).filename == "renamed.mp4"
        assert catalog.queries == 2

    run(scenario)


def test_an_entry_older_than_twice_the_ttl_is_not_served() -> None:
    async def scenario() -> None:
        cache, catalog = MediaFactsCache(TTL), Catalog()
        await cache.lookup("m", catalog.load)
        catalog.name = "renamed.mp4"
        await asyncio.sleep(TTL * 2.5)
        assert (await cache.lookup("m", catalog.load)).filename == "renamed.mp4"

    run(scenario)


def test_a_refresh_that_finds_the_media_gone_drops_it() -> None:
    async def scenario() -> None:
        cache, catalog = MediaFactsCache(TTL), Catalog()
        await cache.lookup("m", catalog.load)
        await asyncio.sleep(TTL * 1.2)
        catalog.gone = True
        await cache.lookup("m", catalog.load)  # stale, served; the refresh fails behind it
        await asyncio.sleep(0.01)
        with pytest.raises(MediaNotFound):
            await cache.lookup("m", catalog.load)

    run(scenario)


def test_forget_discards_a_refresh_already_under_way() -> None:
    async def scenario() -> None:
        cache, catalog = MediaFactsCache(TTL), Catalog()
        await cache.lookup("m", catalog.load)
        await asyncio.sleep(TTL * 1.2)
        catalog.gate = asyncio.Event()
        await cache.lookup("m", catalog.load)  # starts the refresh, which reads "first.mp4"
        cache.forget("m")  # this worker renamed it meanwhile
        catalog.gate.set()
        await asyncio.sleep(0.01)
        catalog.name = "renamed.mp4"
        assert (await cache.lookup("m", catalog.load)).filename == "renamed.mp4"

    run(scenario)


def test_a_caller_that_gives_up_does_not_cancel_the_others_query() -> None:
    async def scenario() -> None:
        cache, catalog = MediaFactsCache(TTL), Catalog()
        catalog.gate.clear()
        impatient = asyncio.ensure_future(cache.lookup("m", catalog.load))
        patient = asyncio.ensure_future(cache.lookup("m", catalog.load))
        await asyncio.sleep(0.01)
        impatient.cancel()
        catalog.gate.set()
        assert (await patient).filename == "first.mp4"
        assert catalog.queries == 1

    run(scenario)


def test_media_still_processing_are_looked_up_every_time() -> None:
    async def scenario() -> None:
        cache = MediaFactsCache(TTL)
        queries = 0

        async def load(media_id: str) -> MediaFacts:
            nonlocal queries
            queries += 1
            return facts("a.mp4", job_state="running")

        for _ in range(3):
            await cache.lookup("m", load)
        assert queries == 3

    run(scenario)


def test_facts_are_dated_from_before_their_query() -> None:
    async def scenario() -> None:
        cache, catalog = MediaFactsCache(TTL), Catalog()

        async def slow_load(media_id: str) -> MediaFacts:
            await asyncio.sleep(TTL * 1.8)  # the row is read at the start, answered late
            return await catalog.load(media_id)

        await cache.lookup("m", slow_load)
        catalog.name = "renamed.mp4"
        # Twice the TTL after the read, not after the answer: no longer served.
        await asyncio.sleep(TTL * 0.6)
        assert (await cache.lookup("m", catalog.load)).filename == "renamed.mp4"

    run(scenario)


def test_aclose_stops_even_a_forgotten_refresh() -> None:
    async def scenario() -> None:
        cache, catalog = MediaFactsCache(TTL), Catalog()
        await cache.lookup("m", catalog.load)
        await asyncio.sleep(TTL * 1.2)
        catalog.gate = asyncio.Event()  # the refresh will hang
        await cache.lookup("m", catalog.load)
        await asyncio.sleep(0)
        cache.forget("m")
        await cache.aclose()
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert pending == []

    run(scenario)
