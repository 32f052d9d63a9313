"""The catalog: what media exist and what is known of them, in SQLite or PostgreSQL.

Owns the engine and sessions (``db``), the tables (``models``), the queries callers use
(``queries``, re-exported here), the kinds of media (``kinds``), the per-process cache of what
byte serving needs (``facts``) and migrations from code (``migrate``). Imports only ``config``
and ``errors``; knows nothing of HTTP or files.
"""

from app.catalog.queries import (
    MediaPage,
    add_media,
    delete_media,
    find_by_sha256,
    first_admin_id,
    get_media,
    get_media_facts,
    list_media,
    new_media_id,
    next_fair_rank,
    storage_keys,
    update_media,
)

__all__ = [
    "MediaPage",
    "add_media",
    "delete_media",
    "find_by_sha256",
    "first_admin_id",
    "get_media",
    "get_media_facts",
    "list_media",
    "new_media_id",
    "next_fair_rank",
    "update_media",
    "storage_keys",
]
