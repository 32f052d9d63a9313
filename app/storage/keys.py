"""Storage keys: generated, never user input, the same shape on every backend."""

import re
import secrets

# Exactly what new_key makes: a 32-hex-digit token under a folder named by its first two
# digits. Nothing else matches, so a sweep never takes another application's objects.
_KEY = re.compile(r"([0-9a-f]{2})/\1[0-9a-f]{30}")


def new_key() -> str:
    """A fresh, unguessable storage key."""
    token = secrets.token_hex(16)
    return f"{token[:2]}/{token}"


def is_key(candidate: str) -> bool:
    """Whether ``candidate`` has the shape of a generated key."""
    return _KEY.fullmatch(candidate) is not None


def check_key(key: str) -> str:
    """``key`` itself; refuses anything that is not a generated key."""
    if not is_key(key):
        raise ValueError(f"not a storage key: {key!r}")
    return key


def key_token(key: str) -> str:
    """The key as one file name: its token (the folder is the token's first two digits)."""
    return check_key(key).partition("/")[2]


def url_version(key: str) -> str:
    """A short tag of ``key`` for ``?v=`` in URLs of derived files: a new file is a new URL,
    so caches may keep each for good."""
    return key_token(key)[:12]


def key_of_token(token: str) -> str | None:
    """The key whose ``key_token`` is ``token``, if it is one."""
    key = f"{token[:2]}/{token}"
    return key if is_key(key) else None
