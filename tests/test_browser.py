"""The portal in a real browser: Debian's Chromium driven by Playwright."""

import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from tests.conftest import (
    REPO_ROOT,
    LiveServer,
    start_server,
    upload,
    upload_file,
    wait_for_processing,
)
from tests.media_samples import Samples

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = REPO_ROOT / "test-artifacts" / "screenshots"
# Flags for a machine without a display, a GPU, a sandbox-capable user or outside network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]


# Module scope: Playwright's sync API keeps an event loop running in this thread, which would
# break tests elsewhere that start one of their own.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class ConsoleErrors(list[str]):
    """Console errors and uncaught exceptions a page produced."""


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    errors = ConsoleErrors()

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.console_errors = errors  # type: ignore[attr-defined]
    yield page
    context.close()


def _errors(page: Page) -> list[str]:
    return list(page.console_errors)  # type: ignore[attr-defined]


def _wait_until(page: Page, expression: str, arg: Any = None, timeout: float = 30_000) -> None:
    """Poll ``expression`` in the page until it is truthy. Not ``page.wait_for_function``:
    that evaluates a string inside the page, which the pages' CSP (no eval) rightly refuses;
    ``page.evaluate`` runs through the debugging protocol instead."""
    deadline = time.monotonic() + timeout / 1000
    while not page.evaluate(expression, arg):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        time.sleep(0.05)


def _play_and_seek(page: Page, expected_seconds: float) -> None:
    _wait_until(page, "document.querySelector('#media-player').readyState >= 1")
    player = page.locator("#media-player")
    duration = player.evaluate("v => v.duration")
    assert abs(duration - expected_seconds) <= 0.5
    player.evaluate("v => v.play()")
    _wait_until(page, "document.querySelector('#media-player').currentTime > 0.3")
    for target in (20, 5):
        player.evaluate(
            """(v, t) => new Promise((resolve, reject) => {
                v.addEventListener('seeked', () => resolve(), {once: true});
                v.addEventListener('error', () => reject(v.error && v.error.message), {once: true});
                v.currentTime = t;
            })""",
            target,
        )
        assert abs(player.evaluate("v => v.currentTime") - target) < 1.5
    start = player.evaluate("v => v.currentTime")
    _wait_until(
        page, f"document.querySelector('#media-player').currentTime > {start + 0.5}", timeout=15_000
    )
    assert player.evaluate("v => v.error") is None


@pytest.mark.parametrize("name", ["mp4_moov_at_end", "mp4_faststart", "webm"])
def test_video_plays_and_seeks(
    page: Page, shared_server: LiveServer, sample_media: dict[str, dict[str, Any]], name: str
) -> None:
    page.goto(shared_server.base_url + sample_media[name]["page_url"])
    _play_and_seek(page, Samples.VIDEO_SECONDS)
    if name == "mp4_moov_at_end":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "video.png"))
    assert _errors(page) == []


def test_audio_plays_and_image_loads(
    page: Page, shared_server: LiveServer, sample_media: dict[str, dict[str, Any]]
) -> None:
    page.goto(shared_server.base_url + sample_media["mp3"]["page_url"])
    audio = page.locator("audio#media-player")
    _wait_until(page, "document.querySelector('audio').readyState >= 1")
    audio.evaluate("a => a.play()")
    _wait_until(page, "document.querySelector('audio').currentTime > 0.3")
    page.goto(shared_server.base_url + sample_media["png"]["page_url"])
    image = page.locator("img#media-image")
    _wait_until(page, "document.querySelector('#media-image').complete")
    assert image.evaluate("i => [i.naturalWidth, i.naturalHeight]") == [640, 480]
    assert _errors(page) == []


@pytest.fixture
def own_server(page: Page, tmp_path: Path) -> Iterator[LiveServer]:
    """A server of the test's own, for tests that need to know the whole catalog. The page is
    signed in as its admin with an API token (tests/accounts signs in with a password)."""
    from app.config import Settings

    settings = Settings(_env_file=None, media_dir=tmp_path / "media", max_upload_bytes=2**30)
    server = start_server(settings, tmp_path / "server.log")
    page.set_extra_http_headers(server.auth_headers)
    yield server
    server.stop()


def test_upload_page_uploads_two_files_with_progress(
    page: Page, own_server: LiveServer, samples: Samples
) -> None:
    page.goto(own_server.base_url + "/upload")
    page.set_input_files("#file-input", [str(samples.mp4_faststart), str(samples.mp3)])
    assert page.locator(".upload-item").count() == 2
    page.click("#upload-submit")
    page.wait_for_url(own_server.base_url + "/", timeout=60_000)
    with own_server.client() as client:
        items = client.get("/api/media").json()["items"]
    assert sorted(m["filename"] for m in items) == ["field recording.mp3", "web clip.mp4"]
    assert _errors(page) == []
    video = next(m for m in items if m["filename"] == "web clip.mp4")
    page.goto(own_server.base_url + video["page_url"])
    _play_and_seek(page, Samples.VIDEO_SECONDS)


def test_progress_bars_rise_to_100_percent(
    page: Page, own_server: LiveServer, samples: Samples
) -> None:
    seen: list[tuple[str, float, str]] = []
    # Every change of a row is reported to the test, which outlives the page's navigation.
    page.expose_function(
        "reportRow", lambda name, value, status: seen.append((name, value, status))
    )
    page.goto(own_server.base_url + "/upload")
    page.set_input_files("#file-input", [str(samples.random_file), str(samples.mp4_faststart)])
    page.evaluate(
        """() => new MutationObserver(() => {
            for (const row of document.querySelectorAll('.upload-item')) {
                window.reportRow(row.querySelector('.upload-item__name').textContent,
                                 row.querySelector('progress.upload-progress').value,
                                 row.querySelector('.upload-status').textContent);
            }
        }).observe(document.getElementById('upload-list'),
                   {subtree: true, attributes: true, childList: true, characterData: true})"""
    )
    page.click("#upload-submit")
    page.wait_for_url(own_server.base_url + "/", timeout=120_000)
    for path in (samples.random_file, samples.mp4_faststart):
        values = [value for name, value, _ in seen if name == path.name]
        statuses = [status for name, _, status in seen if name == path.name]
        assert values[-1] == 1, path.name
        assert statuses[-1] == "Done", path.name
        assert values == sorted(values), "progress never goes back"
    big = [value for name, value, _ in seen if name == samples.random_file.name]
    assert any(0 < value < 1 for value in big), "the big file shows progress on its way"
    assert _errors(page) == []


def test_drag_and_drop_adds_files_and_uploads_them(page: Page, own_server: LiveServer) -> None:
    page.goto(own_server.base_url + "/upload")
    page.evaluate(
        """() => {
            const transfer = new DataTransfer();
            transfer.items.add(new File(['dropped bytes'], 'dropped.txt', {type: 'text/plain'}));
            const zone = document.getElementById('drop-zone');
            for (const type of ['dragenter', 'dragover', 'drop']) {
                zone.dispatchEvent(new DragEvent(type, {bubbles: true, cancelable: true,
                                                        dataTransfer: transfer}));
            }
        }"""
    )
    assert page.locator(".upload-item").count() == 1
    page.click("#upload-submit")
    page.wait_for_url(re.compile(r".*/media/[a-z0-9]+$"), timeout=30_000)
    assert "dropped" in page.locator("#media-title").inner_text()
    assert _errors(page) == []


def test_catalog_search_and_pagination_with_60_items(page: Page, own_server: LiveServer) -> None:
    with own_server.client() as client:
        for index in range(60):
            upload(client, f"item {index}".encode(), filename=f"item-{index:02d}.txt")
        upload(client, b"needle", filename="needle in a haystack.txt")
    page.goto(own_server.base_url + "/")
    assert page.locator(".media-card").count() == 24
    assert "needle in a haystack" in page.locator(".media-card").first.inner_text()
    page.locator(".pagination__next").click()
    page.wait_for_url(re.compile(r".*page=2"))
    assert page.locator(".media-card").count() == 24
    page.goto(own_server.base_url + "/?page=3")
    assert page.locator(".media-card").count() == 13
    page.fill("input[name=q]", "needle")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*q=needle"))
    assert page.locator(".media-card").count() == 1
    assert _errors(page) == []


def test_pages_fit_a_375_pixel_screen_without_errors(
    browser: Browser, shared_server: LiveServer, sample_media: dict[str, dict[str, Any]]
) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        paths = ["/", "/upload", "/?q=clip", sample_media["mp4_moov_at_end"]["page_url"],
                 sample_media["random_file"]["page_url"], "/media/unknown"]  # fmt: skip
        for path in paths:
            page.goto(shared_server.base_url + path)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 375, f"{path} is {width}px wide"
        page.goto(shared_server.base_url + "/")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "catalog-mobile.png"), full_page=True)
    finally:
        context.close()
    # The unknown media page answers 404, which Chromium reports as a failed resource.
    assert [e for e in errors if "404" not in e] == []


def test_catalog_screenshot(
    page: Page, shared_server: LiveServer, sample_media: dict[str, dict[str, Any]]
) -> None:
    page.goto(shared_server.base_url + "/")
    for media in sample_media.values():
        assert page.locator(f".media-card[data-media-id='{media['id']}']").count() == 1
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "catalog.png"))
    assert _errors(page) == []


def test_catalog_shows_posters_and_durations(
    page: Page, own_server: LiveServer, samples: Samples
) -> None:
    video = upload_file(own_server, samples.mp4_faststart)
    audio = upload_file(own_server, samples.mp3)
    for media in (video, audio):
        wait_for_processing(own_server, media["id"])
    page.goto(own_server.base_url + "/")
    thumb = page.locator(f".media-card[data-media-id='{video['id']}'] .media-card__thumb")
    _wait_until(page, "img => img.complete && img.naturalWidth === 480", arg=thumb.element_handle())
    badges = page.locator(".media-card__duration").all_text_contents()
    assert sorted(badge.strip() for badge in badges) == ["0:08", "0:30"]
    assert (
        page.locator(f".media-card[data-media-id='{audio['id']}'] .media-card__thumb").count() == 0
    )
    page.goto(own_server.base_url + video["page_url"])
    poster = page.locator("#media-player").get_attribute("poster")
    assert poster is not None and "/poster" in poster
    assert _errors(page) == []


def test_media_page_follows_processing_live_then_plays_the_rendition(
    browser: Browser, samples: Samples, tmp_path: Path
) -> None:
    from app.config import Settings
    from tests.media_samples import make_hevc_mkv

    settings = Settings(_env_file=None, media_dir=tmp_path / "media", transcode=True)
    server = start_server(settings, tmp_path / "server.log")
    context = browser.new_context(
        viewport={"width": 1280, "height": 800}, extra_http_headers=server.auth_headers
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    try:
        media = upload_file(server, make_hevc_mkv(tmp_path / "phone.mkv", seconds=30))
        page.goto(server.base_url + media["page_url"])
        assert page.locator("#processing").count() == 1
        # The bar moves while the page stays put: the updates come over the event stream.
        _wait_until(
            page,
            "(document.querySelector('#processing-progress') || {value: 1}).value > 0.2",
            timeout=60_000,
        )
        # When the job is done the page shows the poster and plays the converted copy.
        page.wait_for_selector("#media-player[poster]", timeout=120_000)
        assert page.locator("#processing").count() == 0
        player = page.locator("#media-player")
        assert "/playback" in (player.get_attribute("src") or "")
        _play_and_seek(page, 30.0)
        assert page.locator("#converted-note").count() == 1
    finally:
        context.close()
        server.stop()
    assert errors == []
