"""A per-process cache of catalog lookups that refreshes entries ahead of need.

A catalog lookup costs more than the rest of a small range request together, and players ask
for many ranges in a row with the same media and the same credential. Entries are fresh for a
configurable time. A request that finds one older serves it still and starts a refresh in the
background, one per key however many ask: a query no request waits for. Only an entry older
than twice that time, or none, makes requests wait, and those waiting for the same key share
one query. Under load a queue of identical queries, each waiting for the interpreter's lock
behind a busy event loop, would otherwise hold every request of a popular file for tens of
milliseconds every few seconds.
"""

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

logger = logging.getLogger("streamport")

K = TypeVar("K")
V = TypeVar("V")


class RefreshingCache(Generic[K, V]):
    """A bounded, time-limited map refreshed in the background; see the module docstring.

    ``keep`` says whether a loaded value may be cached at all; a load that raises ``gone``
    drops the key's entry (the thing no longer exists) and is not logged.
    """

    def __init__(
        self,
        ttl_seconds: float,
        *,
        max_entries: int = 4096,
        keep: Callable[[V], bool] = lambda _: True,
        gone: type[Exception] | None = None,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._keep = keep
        self._gone = gone
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        # The query each key's callers share; every query started, for aclose.
        self._loads: dict[K, asyncio.Task[V]] = {}
        self._running: set[asyncio.Task[V]] = set()

    @property
    def max_age_seconds(self) -> float:
        """How old values served from here can be: stale ones are served for one more TTL."""
        return 2 * self.ttl_seconds

    async def lookup(self, key: K, load: Callable[[K], Awaitable[V]]) -> V:
        """The value for ``key``: cached, or from ``load`` (shared by concurrent callers)."""
        entry = self._entries.get(key)
        if entry is not None:
            stored_at, value = entry
            age = time.monotonic() - stored_at
            if age <= self.ttl_seconds:
                self._entries.move_to_end(key)
                return value
            if age <= self.max_age_seconds:
                self._start_load(key, load)
                return value
            del self._entries[key]
        # Shielded: a caller that gives up does not cancel the others' query.
        return await asyncio.shield(self._start_load(key, load))

    def forget(self, key: K) -> None:
        """Drop an entry after this process changed what it holds; a query under way no
        longer counts (it may have read the row before the change)."""
        self._entries.pop(key, None)
        self._loads.pop(key, None)

    def clear(self) -> None:
        """Drop every entry (a change that touches many keys at once)."""
        self._entries.clear()
        self._loads.clear()

    async def aclose(self) -> None:
        """Stop the queries still running (the process is stopping)."""
        running = list(self._running)
        self._loads.clear()
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    def _start_load(self, key: K, load: Callable[[K], Awaitable[V]]) -> "asyncio.Task[V]":
        task = self._loads.get(key)
        if task is None:
            task = asyncio.ensure_future(self._load(key, load))
            self._loads[key] = task
            self._running.add(task)
            task.add_done_callback(lambda done: self._finished(key, done))
        return task

    async def _load(self, key: K, load: Callable[[K], Awaitable[V]]) -> V:
        # Dated from before the query: the row may have changed while it ran.
        read_at = time.monotonic()
        value = await load(key)
        current = self._loads.get(key) is asyncio.current_task()
        if current and self._keep(value) and self.ttl_seconds > 0:
            self._entries[key] = (read_at, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return value

    def _finished(self, key: K, task: "asyncio.Task[V]") -> None:
        self._running.discard(task)
        if self._loads.get(key) is task:
            del self._loads[key]
        if task.cancelled():
            return
        error = task.exception()  # retrieved here: a refresh may have no one waiting for it
        if self._gone is not None and isinstance(error, self._gone):
            self._entries.pop(key, None)
        elif error is not None:
            logger.warning("Looking up %r failed: %r", key, error)
