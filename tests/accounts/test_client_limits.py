"""Limits per client against real servers behind a trusted proxy address (so that each
request can come from a client address of its own): sign-in guesses sent all at once get no
more checks than guesses sent one by one, a flood of sign-ins is turned away with 503 instead
of taking the catalog's connections from everyone else, and event streams count clients."""

import contextlib
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.accounts.throttle import MAX_FAILURES_PER_ACCOUNT, MAX_FAILURES_PER_ADDRESS
from app.config import Settings
from tests.conftest import LiveServer, attempt_login, provision, start_server, upload

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("sign-in-limits")
    settings = Settings(
        _env_file=None,
        media_dir=root / "media",
        processing_concurrency=0,
        trusted_proxies="127.0.0.1",
        default_visibility="public",
    )
    live = start_server(settings, root / "server.log", workers=2)
    yield live
    live.stop()


def _all_at_once(count: int, attempt: Callable[[int], int]) -> Counter[int]:
    """Run ``attempt(i)`` for every i in threads released together; the statuses."""
    barrier = threading.Barrier(count)
    statuses: Counter[int] = Counter()
    lock = threading.Lock()

    def run(index: int) -> None:
        barrier.wait()
        status = attempt(index)
        with lock:
            statuses[status] += 1

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def _login(server: LiveServer, address: str, username: str, password: str) -> int:
    with server.anonymous_client(headers={"X-Forwarded-For": address}) as client:
        return attempt_login(client, username, password).status_code


def test_guesses_sent_at_once_for_one_account_get_five_checks(server: LiveServer) -> None:
    provision(server.settings, "target", password=PASSWORD)
    statuses = _all_at_once(30, lambda i: _login(server, f"198.51.100.{i}", "target", f"guess {i}"))
    # 503 is the bounded sign-in queue or a busy catalog: no password was checked.
    assert set(statuses) <= {401, 429, 503}, statuses
    assert 1 <= statuses[401] <= MAX_FAILURES_PER_ACCOUNT, statuses


def test_guesses_sent_at_once_from_one_address_get_twenty_checks(server: LiveServer) -> None:
    names = [f"neighbour-{index}" for index in range(20)]
    statuses = _all_at_once(
        30, lambda i: _login(server, "203.0.113.7", names[i % 20], f"guess {i}")
    )
    assert set(statuses) <= {401, 429, 503}, statuses
    assert 1 <= statuses[401] <= MAX_FAILURES_PER_ADDRESS, statuses


def test_a_flood_of_sign_ins_is_turned_away_and_downloads_go_on(server: LiveServer) -> None:
    with server.client() as owner:
        media = upload(owner, b"x" * 100_000, filename="public.bin")
    downloads: list[int] = []
    stop = threading.Event()

    def download() -> None:
        with server.anonymous_client(timeout=60) as client:
            while not stop.is_set():
                downloads.append(client.get(media["download_url"]).status_code)

    downloader = threading.Thread(target=download)
    downloader.start()
    try:
        statuses = _all_at_once(
            120, lambda i: _login(server, f"2001:db8::{i:x}", f"nobody-{i}", "a guess")
        )
    finally:
        stop.set()
        downloader.join()
    # Every attempt is answered: checked, or told the server is busy. Never a 500.
    assert set(statuses) <= {401, 503}, statuses
    assert statuses[503] > 0, "the queue of hashes is bounded"
    assert downloads and set(downloads) == {200}, Counter(downloads)


@pytest.fixture(autouse=True)
def _no_server_errors(server: LiveServer) -> Iterator[None]:
    start = server.log_path.stat().st_size
    yield
    with server.log_path.open("rb") as log:
        log.seek(start)
        assert b"Traceback" not in log.read()


def test_event_streams_are_counted_per_client_behind_the_proxy(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None,
        media_dir=tmp_path / "media",
        processing_concurrency=0,  # the job stays queued: its stream stays open
        trusted_proxies="127.0.0.1",
        default_visibility="public",
        max_event_streams_per_client=4,
    )
    server = start_server(settings, tmp_path / "server.log")
    try:
        with server.client() as owner:
            media = upload(owner, b"x" * 1000, filename="queued.bin")
        with contextlib.ExitStack() as streams:

            def open_stream(address: str) -> int:
                client = streams.enter_context(
                    server.anonymous_client(headers={"X-Forwarded-For": address})
                )
                response = streams.enter_context(client.stream("GET", media["events_url"]))
                return response.status_code

            assert [open_stream("198.51.100.1") for _ in range(4)] == [200] * 4
            assert open_stream("198.51.100.1") == 429
            assert open_stream("198.51.100.2") == 200
    finally:
        server.stop()
