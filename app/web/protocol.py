"""uvicorn's httptools protocol with the bounds a careful operator sets in front of any server.

uvicorn alone waits for ever for a request head, reads a header of any size (httptools
accumulates it), queues every pipelined request it parses, keeps trailers of any size, lets a
client that stopped sending hold an upload open, and keeps a connection whose client stopped
reading. Here, per connection:

- the request head must arrive within ``header_timeout_seconds`` (from the connection's
  first byte, or from its opening) and fit in ``max_header_bytes`` (``431`` past it);
- at most ``MAX_PIPELINED_REQUESTS`` requests wait behind the one being answered; a client
  that sends more loses the queue and the connection after the current answer;
- a request body must keep coming: a pause of ``body_timeout_seconds``, or an average below
  ``MIN_BODY_BYTES_PER_SECOND`` after that grace (Apache's ``MinRate``), ends the connection,
  which the application sees as a disconnect (an upload is then discarded like any aborted
  one); time the application itself spends not reading does not count. Chunk framing,
  extensions and trailers may add at most ``max_header_bytes`` plus an eighth of the body;
  trailers are dropped;
- a client that reads nothing of a response for ``send_timeout_seconds`` is dropped;
- after an answer sent before the request body was read (``413``, ``507``), the rest of the
  body is dropped for ``linger_seconds`` or ``LINGER_BYTES`` at most;

and per process, at most ``max_connections`` are open, and ``max_connections_per_address``
from one client address: past either, the connection that has waited longest for a request
head (idle, or sending one slowly) is closed to make room, as nginx reuses keep-alive
connections; a real client's head takes milliseconds, so the longest-waiting ones are the
idle and the slow. With every connection busy with a request, the new one gets ``503``.
uvicorn's own keep-alive timeout closes idle ones.

Used by ``streamport serve`` (``http=`` of ``uvicorn.run``); the limits come from the
lifespan state (``LIMITS_STATE_KEY``).
"""

import asyncio
import json
import logging
import time
from collections import Counter, OrderedDict
from email.utils import formatdate
from typing import Any, ClassVar

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from app.web.connection_limits import LIMITS_STATE_KEY, ConnectionLimits

logger = logging.getLogger("streamport")

# Used only if the lifespan did not publish limits (it always does under ``serve``).
_FALLBACK_LIMITS = ConnectionLimits(
    max_connections=1000,
    max_connections_per_address=250,
    header_timeout_seconds=20.0,
    body_timeout_seconds=60.0,
    send_timeout_seconds=60.0,
    max_header_bytes=32 * 1024,
)
# After an error answer written by this layer, what the client still sends is read and
# dropped this long, or this much, so it reads the answer instead of a connection reset.
_REFUSAL_LINGER_SECONDS = 5.0
_REFUSAL_LINGER_BYTES = 4 * 2**20
# After an early answer of the application, the rest of a body dropped at most.
LINGER_BYTES = 16 * 2**20
# Browsers do not pipeline at all; a handful covers any client that does.
MAX_PIPELINED_REQUESTS = 16
# A body slower than this on average, past the body timeout's grace, is an attack, not a
# link: even 2G data carries more.
MIN_BODY_BYTES_PER_SECOND = 500
# How often a body in progress is looked at.
_BODY_CHECK_SECONDS = 5.0


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """One client connection, bounded in time, header size and number (see the module)."""

    # Connections waiting for a request head (idle, or receiving one), longest-waiting first:
    # the first to go when the process is full. One uvicorn server runs per process.
    _awaiting: ClassVar[OrderedDict["GuardedHttpToolsProtocol", None]] = OrderedDict()
    _per_address: ClassVar[Counter[str]] = Counter()

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits: ConnectionLimits = app_state.get(LIMITS_STATE_KEY) or _FALLBACK_LIMITS
        self._address = ""
        self._awaiting_head = True  # the next bytes belong to a request head
        self._head_bytes = 0
        self._in_body = False  # a request body is being received
        self._body = _BodyProgress()
        self._refused = False  # an answer of this layer was sent; input is dropped
        self._lingering = False  # answered before the body was read; the rest is dropped
        self._dropped_bytes = 0
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._send_timer: asyncio.TimerHandle | None = None
        self._linger_timer: asyncio.TimerHandle | None = None

    # Connection lifetime

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._address = self.client[0] if self.client else ""
        self._per_address[self._address] += 1
        if not self._make_room():
            logger.warning("Refusing a connection from %s: no room, all busy", self._address)
            # Closed at once, no lingering: under a flood its descriptor is needed back.
            self._refused = True
            self.transport.write(
                _error_response(503, "The server has too many open connections; try again.")
            )
            self.transport.close()
            return
        self._set_awaiting(True)
        self._head_timer = self.loop.call_later(
            self.limits.header_timeout_seconds, self._on_head_timeout
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self._set_awaiting(False)
        self._per_address[self._address] -= 1
        if self._per_address[self._address] <= 0:
            del self._per_address[self._address]
        for timer in (self._head_timer, self._body_timer, self._send_timer, self._linger_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._body_timer = self._send_timer = self._linger_timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            # Lingering after our own answer: drop what still comes, up to a point.
            self._dropped_bytes += len(data)
            if self._dropped_bytes > _REFUSAL_LINGER_BYTES:
                self._close_quietly()
            return
        if self._lingering:
            self._dropped_bytes += len(data)
            if self._dropped_bytes > LINGER_BYTES:
                self._close_quietly()
                return
        if self._awaiting_head:
            self._head_bytes += len(data)
        elif self._in_body:
            self._body.arrived(len(data), self.loop.time())
        super().data_received(data)
        if self._refused or self.transport.is_closing():
            return
        # Timers are armed only for what is still unfinished after this read: most requests
        # arrive whole in one read and cost no timer at all.
        if self._awaiting_head and self._head_bytes:
            # httptools keeps a header it has not finished in memory: stop before it grows.
            if self._head_bytes > self.limits.max_header_bytes:
                self._refuse_large_head()
            elif self._head_timer is None:
                self._head_timer = self.loop.call_later(
                    self.limits.header_timeout_seconds, self._on_head_timeout
                )
        elif self._in_body:
            # Framing, extensions and trailers are kept by httptools too, line by line.
            if self._body.framing_bytes > self.limits.max_header_bytes + self._body.data_bytes // 8:
                self._refuse_large_head()
            elif self._body_timer is None:
                self._body_timer = self.loop.call_later(_BODY_CHECK_SECONDS, self._on_body_check)

    # Parser callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._awaiting_head:
            super().on_header(name, value)
        # Otherwise a trailer of a chunked body: dropped (RFC 9110 §6.5.1 lets a recipient).

    def on_headers_complete(self) -> None:
        if self._refused:
            return
        self._set_awaiting(False)
        self._awaiting_head = False
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        # The reads that carried this head hold at least all of it: only when they were
        # larger than the limit can the head itself be.
        if self._head_bytes > self.limits.max_header_bytes:
            head_bytes = len(self.url) + sum(len(n) + len(v) + 4 for n, v in self.headers)
            if head_bytes > self.limits.max_header_bytes:
                self._refuse_large_head()
                return
        self._head_bytes = 0
        self._in_body = True
        self._body.restart(self.loop.time())
        super().on_headers_complete()
        if len(self.pipeline) > MAX_PIPELINED_REQUESTS:
            # No answer is owed out of order: drop the queue, answer what runs, then close.
            logger.info(
                "Closing a connection that pipelined more than %d requests", len(self.pipeline)
            )
            self.pipeline.clear()
            self._refused = True
            self._in_body = False

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            self._body.data_bytes += len(body)
            super().on_body(body)

    def on_message_complete(self) -> None:
        self._in_body = False
        self._lingering = False
        self._awaiting_head = True
        # Inline rather than _cancel_timer: this runs for every request.
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        if self._linger_timer is not None:
            self._linger_timer.cancel()
            self._linger_timer = None
        if not self._refused:
            super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.transport.is_closing():
            return
        if self._refused:
            self._close_quietly()
        elif self._in_body:
            # Answered before the body was read: drop the rest for a while, then close.
            self._lingering = True
            self._dropped_bytes = 0
            self._linger_timer = self.loop.call_later(
                self.limits.linger_seconds, self._close_quietly
            )
        elif not self.pipeline:
            self._set_awaiting(True)

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a request it cannot parse, with our headers."""
        self._refuse(400, msg)

    # Flow control from the transport

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._send_timer is None:
            self._send_timer = self.loop.call_later(
                self.limits.send_timeout_seconds, self._on_send_timeout
            )

    def resume_writing(self) -> None:
        super().resume_writing()
        self._cancel_timer("_send_timer")

    # Timers

    def _on_head_timeout(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or not self._awaiting_head:
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # A response is still being sent; a pipelined head waits its turn (uvicorn stops
            # reading meanwhile), and its time starts again.
            self._head_timer = self.loop.call_later(
                self.limits.header_timeout_seconds, self._on_head_timeout
            )
            return
        if self._head_bytes:
            self._refuse(408, "The request head did not arrive in time.")
        else:
            self._close_quietly()

    def _on_body_check(self) -> None:
        self._body_timer = None
        if not self._in_body or self.transport.is_closing():
            return
        now = self.loop.time()
        # While the application is not reading, the client is not the one who is slow.
        waiting_for_app = self.flow.read_paused and not (
            self.cycle and self.cycle.response_complete
        )
        too_slow = self._body.too_slow(
            now, waiting_for_app, self.limits.body_timeout_seconds, MIN_BODY_BYTES_PER_SECOND
        )
        if too_slow:
            logger.info("Closing a connection whose request body %s", too_slow)
            self._close_quietly()
            return
        self._body_timer = self.loop.call_later(_BODY_CHECK_SECONDS, self._on_body_check)

    def _on_send_timeout(self) -> None:
        self._send_timer = None
        if not self.transport.is_closing():
            logger.info(
                "Dropping a client that read nothing for %.0f s",
                self.limits.send_timeout_seconds,
            )
        # Not close(): that would wait for ever to flush to a client that does not read.
        self.transport.abort()

    # Helpers

    def _make_room(self) -> bool:
        """Whether this new connection may stay, closing a longest-waiting one if needed."""
        if self._per_address[self._address] > self.limits.max_connections_per_address:
            if not self._close_longest_waiting(self._address):
                return False
        if len(self.connections) > self.limits.max_connections:
            return self._close_longest_waiting(None)
        return True

    def _close_quietly(self) -> None:
        self._linger_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def _refuse_large_head(self) -> None:
        self._refuse(
            431,
            f"The request's headers are larger than {self.limits.max_header_bytes:,} bytes.",
        )

    def _refuse(self, status: int, detail: str) -> None:
        """Answer ``status`` from here (no application involved), then close."""
        self._refused = True
        self._set_awaiting(False)
        self._cancel_timer("_head_timer")
        self._cancel_timer("_body_timer")
        self.transport.write(_error_response(status, detail))
        self.flow.resume_reading()
        self._linger_timer = self.loop.call_later(_REFUSAL_LINGER_SECONDS, self._close_quietly)
        if self.transport.can_write_eof():
            self.transport.write_eof()

    def _close_longest_waiting(self, address: str | None) -> bool:
        """Close the connection (of ``address``, or any) that has waited longest for a head."""
        for protocol in self._awaiting:
            if protocol is not self and address in (None, protocol._address):
                protocol._set_awaiting(False)
                protocol._refused = True
                transport = protocol.transport
                if transport.get_write_buffer_size():
                    transport.close()  # the end of its last answer is still on its way
                else:
                    transport.abort()  # nothing owed: free the descriptor now
                return True
        return False

    def _set_awaiting(self, awaiting: bool) -> None:
        if awaiting:
            self._awaiting[self] = None
        else:
            self._awaiting.pop(self, None)

    def _cancel_timer(self, name: str) -> None:
        timer: asyncio.TimerHandle | None = getattr(self, name)
        if timer is not None:
            timer.cancel()
            setattr(self, name, None)


class _BodyProgress:
    """How a request body has come so far. Pure bookkeeping for the checks above; one per
    connection, restarted for each request."""

    __slots__ = (
        "started_at",
        "last_at",
        "received_bytes",
        "data_bytes",
        "_waited_for_app",
        "_checked_at",
    )

    def __init__(self) -> None:
        self.restart(0.0)

    def restart(self, now: float) -> None:
        self.started_at = now
        self.last_at = now
        self.received_bytes = 0  # everything read in the body phase
        self.data_bytes = 0  # of which body data (the rest is chunk framing and trailers)
        self._waited_for_app = 0.0
        self._checked_at = now

    @property
    def framing_bytes(self) -> int:
        return self.received_bytes - self.data_bytes

    def arrived(self, count: int, now: float) -> None:
        self.received_bytes += count
        self.last_at = now

    def too_slow(
        self, now: float, waiting_for_app: bool, timeout: float, min_rate: float
    ) -> str | None:
        """Why the body must be given up on at ``now``, or ``None``."""
        if waiting_for_app:
            # Neither the pause nor the rate counts time the application kept it waiting.
            self._waited_for_app += now - self._checked_at
            self.last_at = now
        self._checked_at = now
        quiet = now - self.last_at
        if quiet >= timeout:
            return f"stopped arriving for {quiet:.0f} s"
        active = now - self.started_at - self._waited_for_app
        if active > timeout + self.received_bytes / min_rate:
            return f"came at {self.received_bytes / active:.0f} bytes/s for {active:.0f} s"
        return None


def _error_response(status: int, detail: str) -> bytes:
    body = json.dumps({"detail": detail}).encode()
    head = [
        STATUS_LINE[status],
        b"date: " + formatdate(time.time(), usegmt=True).encode() + b"\r\n",
        b"content-type: application/json\r\n",
        b"content-length: " + str(len(body)).encode() + b"\r\n",
        b"x-content-type-options: nosniff\r\n",
        b"referrer-policy: same-origin\r\n",
        b"connection: close\r\n",
    ]
    if status == 503:
        head.append(b"retry-after: 5\r\n")
    return b"".join(head) + b"\r\n" + body
