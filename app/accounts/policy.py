"""Who may see or change a media: the one decision every page, API route, byte URL, poster
and event stream asks. Pure: no queries, no HTTP."""

from dataclasses import dataclass
from enum import IntEnum


@dataclass(frozen=True, slots=True)
class Caller:
    """A signed-in user, as a request presents them (through a session or an API token)."""

    user_id: int
    username: str
    is_admin: bool
    # The SHA-256 of the browser session's secret; None for API tokens.
    session_id: str | None = None


class Access(IntEnum):
    """What a caller may do with one media; each level includes the ones below."""

    NONE = 0  # answered exactly as an unknown id: 404
    VIEW = 1
    MANAGE = 2  # rename, delete, share, change visibility


def media_access(
    caller: Caller | None, owner_id: int | None, visibility: str, *, shared: bool = False
) -> Access:
    """The access ``caller`` has to a media owned by ``owner_id`` with ``visibility``;
    ``shared`` when the request carries a valid share link for it."""
    if caller is not None and (caller.is_admin or caller.user_id == owner_id):
        return Access.MANAGE
    if shared or visibility in ("public", "unlisted"):
        return Access.VIEW
    return Access.NONE


def listed_owner(caller: Caller | None) -> int | None:
    """Listings and search show public media, and all of the caller's own (their library);
    never anyone else's unlisted or private media, not even to an admin (who opens them by
    their page). Returns the owner whose media are listed whatever their visibility."""
    return caller.user_id if caller is not None else None
