"""Multipart upload bodies built by hand, for tests that cut, stream or oversize them."""

import os
import re
import socket
import time
from collections.abc import Callable, Iterator

BOUNDARY = "streamporttestboundary"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"
MIB = 2**20


def part_head(filename: str) -> bytes:
    """The start of the ``file`` part, up to its first byte."""
    return (
        f"--{BOUNDARY}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()


def part_tail() -> bytes:
    """What ends the part and the body."""
    return f"\r\n--{BOUNDARY}--\r\n".encode()


def request_head(port: int, content_length: int, token: str = "") -> bytes:
    """An HTTP/1.1 upload request's head, for sending over a raw socket; ``token`` signs it
    in (an upload needs an account)."""
    authorization = f"Authorization: Bearer {token}\r\n" if token else ""
    return (
        f"POST /api/media HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{authorization}"
        f"Content-Type: {CONTENT_TYPE}\r\n"
        f"Content-Length: {content_length}\r\n\r\n"
    ).encode()


def open_upload(
    port: int, filename: str, declared_bytes: int, sent_bytes: int, token: str = ""
) -> socket.socket:
    """A connection that declared ``declared_bytes`` of file and sent ``sent_bytes`` of random
    ones so far: an upload left mid-way. The caller closes it (or kills the server)."""
    head = part_head(filename)
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(request_head(port, len(head) + declared_bytes, token) + head)
    for start in range(0, sent_bytes, MIB):
        sock.sendall(os.urandom(min(MIB, sent_bytes - start)))
    return sock


def streamed_body(filename: str, pieces: Iterator[bytes]) -> Iterator[bytes]:
    """A whole body, one piece of file bytes at a time (chunked when sent by httpx)."""
    yield part_head(filename)
    yield from pieces
    yield part_tail()


def wait_for(condition: Callable[[], bool], seconds: float = 15) -> bool:
    """Poll ``condition`` until it holds or ``seconds`` pass; its last value."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def read_response(sock: socket.socket) -> bytes:
    """One answer: its head and, by its Content-Length, its body (or, without one, what comes
    until the server closes). Unlike reading until the server closes, this does not wait out
    the socket's timeout on a connection the server keeps open after answering."""
    data = b""
    wanted: int | None = None  # the whole answer's length, once its head is in
    try:
        while wanted is None or len(data) < wanted:
            if not (piece := sock.recv(65536)):
                break
            data += piece
            head, blank, _ = data.partition(b"\r\n\r\n")
            if wanted is None and blank:
                declared = re.search(rb"(?im)^content-length:[ \t]*(\d+)[ \t]*\r?$", head)
                if declared is not None:
                    wanted = len(head) + len(blank) + int(declared.group(1))
    except (ConnectionResetError, TimeoutError):
        pass
    return data
