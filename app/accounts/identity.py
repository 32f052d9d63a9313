"""From a request's credential to a ``Caller``, cached per process for at most a few seconds:
a byte route must not query the catalog per range request, and a revoked session or token,
or a disabled user, must stop working within ``max_age_seconds`` on every node."""

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.accounts.api_tokens import caller_for_token
from app.accounts.credentials import digest
from app.accounts.policy import Caller
from app.accounts.sessions import caller_for_session, session_id_from_cookie
from app.accounts.shares import ShareGrant, grant_for_share, share_id_from_token
from app.refreshing_cache import RefreshingCache


class Identities:
    """Resolves session cookies, API tokens and share links against the catalog."""

    def __init__(self, key: bytes, ttl_seconds: float) -> None:
        self.key = key
        # Set by the application's start-up, which opens the catalog.
        self.sessionmaker: async_sessionmaker[AsyncSession] | None = None
        # Unknown credentials are cached too: a flood of made-up tokens costs one query each
        # per TTL at most, and evicts no more than the oldest entries.
        self._callers: RefreshingCache[str, Caller | None] = RefreshingCache(ttl_seconds)
        self._shares: RefreshingCache[str, ShareGrant | None] = RefreshingCache(ttl_seconds)

    @property
    def max_age_seconds(self) -> float:
        return self._callers.max_age_seconds

    async def from_token(self, token: str) -> Caller | None:
        """The user an API token acts as, or None for an unknown or revoked one."""
        return await self._callers.lookup("t:" + digest(token), self._load_caller)

    async def from_cookie(self, cookie: str) -> Caller | None:
        """The user a session cookie signs in, or None."""
        session_id = session_id_from_cookie(self.key, cookie)
        if session_id is None:
            return None
        return await self._callers.lookup("s:" + session_id, self._load_caller)

    async def share(self, token: str) -> tuple[str, ShareGrant] | None:
        """The share a link's token names and what it opens, or None."""
        share_id = share_id_from_token(self.key, token)
        if share_id is None:
            return None
        grant = await self._shares.lookup(share_id, self._load_share)
        return (share_id, grant) if grant is not None else None

    def forget_session(self, session_id: str) -> None:
        self._callers.forget("s:" + session_id)

    def forget_token(self, token_hash: str) -> None:
        self._callers.forget("t:" + token_hash)

    def forget_share(self, share_id: str) -> None:
        self._shares.forget(share_id)

    def forget_everyone(self) -> None:
        """After a change to a user (disabled, demoted): this process asks again."""
        self._callers.clear()

    async def aclose(self) -> None:
        await self._callers.aclose()
        await self._shares.aclose()

    async def _load_caller(self, key: str) -> Caller | None:
        kind, _, value = key.partition(":")
        assert self.sessionmaker is not None
        async with self.sessionmaker() as session:
            if kind == "t":
                return await caller_for_token(session, value)
            return await caller_for_session(session, value)

    async def _load_share(self, share_id: str) -> ShareGrant | None:
        assert self.sessionmaker is not None
        async with self.sessionmaker() as session:
            return await grant_for_share(session, share_id)
