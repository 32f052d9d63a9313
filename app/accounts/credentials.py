"""Random secrets and what is stored of them: the signing key, session and API token
secrets, share link signatures, CSRF tokens.

Secrets handed to clients are random; the catalog keeps only their SHA-256, so a copy of the
catalog signs no one in. Session cookies and share links also carry an HMAC under the key,
so that forged or random ones are refused without a catalog query.
"""

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

SECRET_KEY_BYTES = 32
API_TOKEN_PREFIX = "sp_"
_SIGNATURE_BYTES = 16


def load_or_create_key(path: Path) -> bytes:
    """The signing key in ``path``, created with a random key when missing. Several workers
    may start at once: the file appears complete or not at all (written aside, then linked)."""
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    aside = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, secrets.token_hex(SECRET_KEY_BYTES).encode() + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(aside, path)  # fails if another worker got there first: theirs stands
    except FileExistsError:
        pass
    finally:
        aside.unlink()
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    text = path.read_text().strip()
    if len(text) < 32:
        raise ValueError(f"the secret key in {path} is too short (at least 32 characters)")
    return text.encode()


def new_secret() -> str:
    """A random, URL-safe secret of 256 bits."""
    return secrets.token_urlsafe(32)


def new_api_token() -> str:
    """A new API token, recognisable by its prefix in logs and secret scanners."""
    return API_TOKEN_PREFIX + new_secret()


def digest(secret: str) -> str:
    """What the catalog stores of a secret: its SHA-256, hex."""
    return hashlib.sha256(secret.encode()).hexdigest()


def sign(key: bytes, purpose: str, value: str) -> str:
    """A short HMAC of ``value`` for ``purpose``, URL-safe."""
    mac = hmac.new(key, f"{purpose}|{value}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:_SIGNATURE_BYTES]).rstrip(b"=").decode()


def signed(key: bytes, purpose: str, value: str) -> str:
    """``value.signature``."""
    return f"{value}.{sign(key, purpose, value)}"


def unsign(key: bytes, purpose: str, token: str) -> str | None:
    """The value of a ``signed`` token, or None when the signature does not match."""
    value, dot, signature = token.rpartition(".")
    if not dot or not value or len(token) > 512:
        return None
    if not tokens_equal(signature, sign(key, purpose, value)):
        return None
    return value


def tokens_equal(a: str, b: str) -> bool:
    """Constant-time comparison of two tokens (as bytes: ``compare_digest`` refuses str
    with characters outside ASCII, which anyone can send)."""
    return hmac.compare_digest(a.encode(), b.encode())
