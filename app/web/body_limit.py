"""A cap on request bodies everywhere but the upload routes.

A rename is a few bytes of JSON or a form field; without a cap, FastAPI reads a 300 MiB
``PATCH`` body into memory before it even validates it. Bodies over ``max_bytes`` get ``413``:
at once when ``Content-Length`` says so, otherwise as soon as that many bytes have come.
"""

from collections.abc import Collection

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.web.errors import render_error

SMALL_BODY_BYTES = 64 * 1024


class _BodyTooLarge(Exception):
    pass


class BodyLimit:
    """Refuses large bodies except on ``(method, path)`` pairs that stream their own."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        streaming_routes: Collection[tuple[str, str]],
        max_bytes: int = SMALL_BODY_BYTES,
    ) -> None:
        self.app = app
        self.streaming_routes = frozenset(streaming_routes)
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (scope["method"], scope["path"]) in self.streaming_routes:
            await self.app(scope, receive, send)
            return
        declared, chunked = _declared_body(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        if not chunked and (declared or 0) <= self.max_bytes:
            # A declared length within the cap (or none: no body) is all the server reads.
            await self.app(scope, receive, send)
            return
        received = 0
        exceeded = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise _BodyTooLarge()
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded and not started:
                return  # whatever the app makes of the error, the answer is ours
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except _BodyTooLarge:
            pass
        if exceeded and not started:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = f"The request body is larger than {self.max_bytes:,} bytes."
        response = render_error(Request(scope, receive), 413, detail)
        await response(scope, receive, send)


def _declared_body(scope: Scope) -> tuple[int | None, bool]:
    """The body's declared length, if any, and whether it comes chunked."""
    length: int | None = None
    chunked = False
    for name, value in scope["headers"]:
        if name == b"content-length":
            # The server refuses a malformed length; a vast one is simply too large.
            length = int(value) if value.isdigit() and len(value) < 19 else 10**18
        elif name == b"transfer-encoding":
            chunked = True
    return length, chunked
