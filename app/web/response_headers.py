"""Headers every response carries, added in one place.

- ``Date`` (RFC 9110 §6.6.1), from this process's clock when the response starts; uvicorn's
  own is refreshed once a second and could be older than a ``Last-Modified`` it goes with.
- ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy``, on everything.
- On HTML: a ``Content-Security-Policy`` that runs only the portal's own scripts and styles
  (no inline script anywhere) and lets no other site frame the pages; ``X-Frame-Options`` for
  browsers that predate ``frame-ancestors``.

A response that set one of these itself (stored bytes carry a sandboxing CSP) keeps its own.
"""

import time
from email.utils import formatdate

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# blob: media is what Media Source Extensions play (hls.js feeds the video element that way).
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
# FastAPI's interactive documentation loads Swagger UI from its CDN and starts it inline.
DOCS_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly; "
    "worker-src blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
_DOCS_PATHS = ("/docs", "/redoc")

_NOSNIFF = (b"x-content-type-options", b"nosniff")
_REFERRER_POLICY = (b"referrer-policy", b"same-origin")
_NO_FRAMES = (b"x-frame-options", b"DENY")
PAGE_POLICY_BYTES = PAGE_POLICY.encode()
DOCS_POLICY_BYTES = DOCS_POLICY.encode()


class _DateCache:
    """The HTTP date of the current second, formatted once per second."""

    def __init__(self) -> None:
        self._second = -1
        self._value = b""

    def now(self) -> bytes:
        second = int(time.time())
        if second != self._second:
            self._second = second
            self._value = formatdate(second, usegmt=True).encode()
        return self._value


class ResponseHeaders:
    """Adds the headers above to every HTTP response that lacks them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._date = _DateCache()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        docs = scope["path"].startswith(_DOCS_PATHS)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.get("headers")
                # Starlette hands over its own list, made for this one answer: extended in
                # place, not copied (this runs for every small range request).
                if type(headers) is not list:
                    headers = list(headers or ())
                message["headers"] = self._complete(headers, docs)
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _complete(
        self, headers: list[tuple[bytes, bytes]], docs: bool
    ) -> list[tuple[bytes, bytes]]:
        # One pass over what the response set (ASGI frameworks send lowercased names);
        # this runs for every answer, many small range requests included.
        date = nosniff = referrer = policy = html = False
        for name, value in headers:
            if name == b"date":
                date = True
            elif name == b"x-content-type-options":
                nosniff = True
            elif name == b"referrer-policy":
                referrer = True
            elif name == b"content-security-policy":
                policy = True
            elif name == b"content-type":
                html = value.startswith(b"text/html")
        if not date:
            headers.append((b"date", self._date.now()))
        if not nosniff:
            headers.append(_NOSNIFF)
        if not referrer:
            headers.append(_REFERRER_POLICY)
        if html and not policy:
            headers.append(
                (b"content-security-policy", DOCS_POLICY_BYTES if docs else PAGE_POLICY_BYTES)
            )
            headers.append(_NO_FRAMES)
        return headers
