"""Playback in real Chromium: remuxed and transcoded copies play and seek, HEVC sources come
first for browsers that decode them, HLS plays through hls.js, switches renditions on demand
and by itself on a slow link, and takes over from the original when renditions are ready."""

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from tests.conftest import LiveServer, upload_file, wait_for_processing
from tests.playback.conftest import Processed
from tests.playback.samples import CLIP_SECONDS, LADDER_SECONDS, PlaybackSamples
from tests.test_browser import _wait_until

# 1 Mbit/s, as Chromium's network emulation counts it (bytes per second).
SLOW_LINK_BYTES_PER_SECOND = 125_000


@pytest.fixture
def context(browser: Browser, playback_server: LiveServer) -> Iterator[BrowserContext]:
    context = browser.new_context(
        viewport={"width": 1280, "height": 800}, extra_http_headers=playback_server.auth_headers
    )
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    assert errors == []


def _seek(page: Page, seconds: float) -> None:
    page.locator("#media-player").evaluate(
        """(v, t) => new Promise((resolve, reject) => {
            v.addEventListener('seeked', () => resolve(), {once: true});
            v.addEventListener('error', () => reject(v.error && v.error.message), {once: true});
            v.currentTime = t;
        })""",
        seconds,
    )
    assert abs(page.evaluate("document.querySelector('#media-player').currentTime") - seconds) < 1


def _play(page: Page, past: float = 0.3) -> None:
    page.evaluate("document.querySelector('#media-player').play()")
    _wait_until(page, f"document.querySelector('#media-player').currentTime > {past}")


def test_an_obs_recording_plays_and_seeks_from_its_remuxed_copy(
    page: Page, playback_server: LiveServer, processed: Processed
) -> None:
    media = processed["obs_mkv"]
    page.goto(playback_server.base_url + media["page_url"])
    _wait_until(page, "document.querySelector('#media-player').readyState >= 1")
    assert "/playback" in page.evaluate("document.querySelector('#media-player').currentSrc")
    duration = page.evaluate("document.querySelector('#media-player').duration")
    assert abs(duration - CLIP_SECONDS) < 0.5
    _play(page)
    _seek(page, 3.0)
    assert page.locator("#converted-note").inner_text().startswith("This plays a copy repackaged")
    assert page.locator("#media-playback-plan").get_attribute("data-plan") == "remux"


def test_the_hevc_original_comes_first_and_chromium_plays_what_it_can_decode(
    page: Page, playback_server: LiveServer, processed: Processed
) -> None:
    media = processed["iphone_mov"]
    page.goto(playback_server.base_url + media["page_url"])
    sources = page.locator("#media-player source")
    assert sources.count() == 2
    first, second = (sources.nth(i).get_attribute("type") or "" for i in range(2))
    assert 'codecs="hvc1.' in first and 'codecs="avc1.' in second
    assert sources.nth(0).get_attribute("src") == media["stream_url"]
    _wait_until(page, "document.querySelector('#media-player').readyState >= 1")
    decodes_hevc = page.evaluate("t => document.createElement('video').canPlayType(t)", first)
    expected = media["stream_url"] if decodes_hevc else media["playback_url"]
    assert page.evaluate("document.querySelector('#media-player').currentSrc").endswith(expected)
    _play(page)
    _seek(page, 2.0)


def test_hls_plays_through_hls_js_seeks_and_switches_on_demand(
    page: Page, playback_server: LiveServer, processed: Processed
) -> None:
    media = processed["clip_720p"]
    page.goto(playback_server.base_url + media["page_url"])
    _wait_until(page, "document.querySelector('#media-player').dataset.adaptive === 'hls.js'")
    page.wait_for_selector("#quality:not([hidden])")
    options = page.locator("#quality-select option").all_inner_texts()
    assert options[1:] == ["720p", "360p"] and options[0].startswith("Auto")
    _wait_until(page, "document.querySelector('#media-player').duration")
    duration = page.evaluate("document.querySelector('#media-player').duration")
    assert abs(duration - LADDER_SECONDS) < 0.5
    _play(page)
    _seek(page, 9.0)
    for height in (360, 720):
        page.select_option("#quality-select", label=f"{height}p")
        level = page.evaluate(
            "h => window.streamportPlayer.hls().levels.findIndex(l => l.height === h)", height
        )
        assert page.evaluate("window.streamportPlayer.hls().autoLevelEnabled") is False
        _seek(page, 1.0)
        page.evaluate("document.querySelector('#media-player').play()")
        _wait_until(page, f"window.streamportPlayer.hls().currentLevel === {level}")
        _wait_until(page, f"document.querySelector('#media-player').videoHeight === {height}")


def test_on_a_slow_link_auto_settles_on_the_lower_rendition(
    context: BrowserContext, playback_server: LiveServer, processed: Processed
) -> None:
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {
            "offline": False,
            "latency": 20,
            "downloadThroughput": SLOW_LINK_BYTES_PER_SECOND,
            "uploadThroughput": SLOW_LINK_BYTES_PER_SECOND,
        },
    )
    page.goto(playback_server.base_url + processed["clip_720p"]["page_url"])
    _wait_until(page, "document.querySelector('#media-player').dataset.adaptive === 'hls.js'")
    _play(page, past=6.0)
    assert page.evaluate("document.querySelector('#media-player').videoHeight") == 360
    loading = page.evaluate("(h => h.levels[h.loadLevel].height)(window.streamportPlayer.hls())")
    assert loading == 360
    assert page.locator("#quality-select option").first.inner_text() == "Auto (360p)"


def test_playback_moves_to_hls_where_it_is_when_renditions_are_ready(
    page: Page, playback_server: LiveServer, playback_samples: PlaybackSamples
) -> None:
    media = upload_file(playback_server, playback_samples.small_mp4)
    page.goto(playback_server.base_url + media["page_url"])
    assert page.locator("#processing").count() == 1
    # Plays the original at once, over and over, while its rendition is made.
    page.evaluate("document.querySelector('#media-player').loop = true")
    _play(page)
    _wait_until(
        page,
        "document.querySelector('#media-player').dataset.adaptive === 'hls.js'",
        timeout=90_000,
    )
    _wait_until(page, "document.querySelector('#media-player').currentSrc.startsWith('blob:')")
    _wait_until(page, "document.querySelector('#media-player').videoHeight === 360")
    # Still playing: the adaptive stream took over without a stop.
    start = page.evaluate("document.querySelector('#media-player').currentTime")
    _wait_until(page, f"document.querySelector('#media-player').currentTime !== {start}")
    assert not page.evaluate("document.querySelector('#media-player').paused")
    assert wait_for_processing(playback_server, media["id"])["hls_url"]


def test_without_transcoding_an_unplayable_video_offers_the_download_and_names_the_setting(
    browser: Browser, plain_server: LiveServer, playback_samples: PlaybackSamples
) -> None:
    media = wait_for_processing(
        plain_server, upload_file(plain_server, playback_samples.hevc_mkv)["id"]
    )
    context = browser.new_context(extra_http_headers=plain_server.auth_headers)
    try:
        page = context.new_page()
        page.goto(plain_server.base_url + media["page_url"])
        notice = page.locator("#unplayable-notice")
        assert "HEVC" in notice.inner_text()
        assert "STREAMPORT_TRANSCODE=1" in page.locator("#playback-setting-notice").inner_text()
        assert page.locator("#media-player").count() == 0
        assert page.locator("#download-link").first.get_attribute("href") == media["download_url"]
    finally:
        context.close()
