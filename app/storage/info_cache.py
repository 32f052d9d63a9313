"""Sizes and times of stored bytes, remembered per process.

Bytes under a key never change (new bytes always get a new key), so an entry never goes stale:
serving a derived file (poster, thumbnail, playback) asks storage once per key and process, not
once per request, which on an object store would be a ``HeadObject`` each time.
"""

from collections import OrderedDict

from app.storage.base import ObjectInfo, Storage

DEFAULT_ENTRIES = 4096


class ObjectInfoCache:
    """A bounded, least-recently-used map from key to ``ObjectInfo``."""

    def __init__(self, storage: Storage, max_entries: int = DEFAULT_ENTRIES) -> None:
        self.storage = storage
        self.max_entries = max_entries
        self._entries: OrderedDict[str, ObjectInfo] = OrderedDict()

    async def info(self, key: str) -> ObjectInfo:
        """What storage says of ``key``; ``FileNotFoundError`` when its bytes are gone."""
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
            return found
        found = await self.storage.info(key)
        self._entries[key] = found
        if len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return found
