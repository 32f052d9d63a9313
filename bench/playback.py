"""Playback plans: how soon an upload plays, what its copies and HLS ladder cost the portal, and
how soon Chromium shows the first frame of each.

1. Time to playable: a 1080p H.264 MKV (plan ``remux``) and a 1080p HEVC MOV tagged ``hvc1``
   (plan ``transcode``), made with ffmpeg at run time, are uploaded to a ``streamport serve``
   without HLS (``STREAMPORT_HLS_LADDER=""``), so the copy alone is timed: the wall time from
   the upload's 201 to processing done, split by ``processing.step``, and the copy's speed in ×
   real time (video seconds / seconds of its step). The H.264 MP4 the MKV was copied from
   (plan ``original``) is timed beside them.
2. The HLS ladder: that MP4 on a server with ``STREAMPORT_HLS_LADDER=1080,720,480,360`` and
   ``STREAMPORT_HLS_MIN_BITRATE=0``: the seconds of the ``renditions …`` step, × real time, and
   each rendition's ``BANDWIDTH`` in the master playlist.
3. Requests while a ladder encodes: ``wrk`` on ``GET /api/media`` and on random 64 KiB ranges of
   the video, idle, then while a second upload's ladder encodes, then idle again; requests/s,
   p99 and the CPU each party used. Target: requests/s during the ladder ≥ 0.5× idle.
4. Time to first frame in Chromium (Playwright, Debian's ``/usr/bin/chromium``): the media page
   of the original MP4, of the MKV (it plays the remuxed copy) and of the HLS video (hls.js),
   under ``bench/first_frame.py``'s network profiles; ms from navigation to the first frame
   presented (``requestVideoFrameCallback``), medians over ``--repeat`` loads.

``--repeat`` (3) is the number of remux jobs and of browser loads per page and profile;
``--encode-repeat`` (1) that of the transcode and ladder jobs, which take minutes each. A
default run takes about 10–15 minutes on 2 cores (most of it the 1080p transcode and ladder).

Run from the repository root: ``python3 -m bench.playback [--repeat 3] [--seconds 60]``.
"""

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx2
import psutil
from playwright.sync_api import Browser, sync_playwright

from bench import processing
from bench.common import (
    GiB,
    KiB,
    MiB,
    Server,
    display_path,
    environment,
    git_state,
    make_workdir,
    options_of,
    require_free_space,
    servers_stopped_after,
    settle,
    spread,
    start_streamport,
    table,
    tool_version,
    write_results,
)
from bench.downloads import WRK_SCRIPT
from bench.first_frame import (
    CHROMIUM,
    CHROMIUM_ARGS,
    NETWORK_EVENTS,
    PROFILES,
    NetworkProfile,
    VideoSpec,
    _choices,
    header,
    make_video,
    run_ffmpeg,
    spread_of,
)
from bench.processing import (
    TRANSCODE_PROGRESS_SPAN,
    TRANSCODE_PROGRESS_START,
    CpuWindow,
    check_range,
    delete_item,
    ffmpeg_children,
    get_item,
    poll_until_finished,
    run_wrk,
    sha256_of,
    step_split,
    subprocess_cpu,
    thread_facts,
    upload,
    wait_no_ffmpeg,
)

DEFAULT_LADDER = "1080,720,480,360"
FPS = 30
GOP_FRAMES = 60
H264_KBIT = 10_000
HEVC_KBIT = 8_000
# Encoded once, then repeated by stream copy up to --seconds (as bench/first_frame.py does):
# the container and bit rate of a real recording of that length, at a short one's cost.
SEGMENT_SECONDS = 10
RANGE_BYTES = 64 * KiB
UPLOAD_LIMIT = 4 * GiB
START_TIMEOUT_S = 180.0
SOURCE_LABELS = {
    "mp4": "1080p H.264 MP4",
    "mkv": "1080p H.264 MKV",
    "mov": "1080p HEVC MOV (hvc1)",
}
EXPECTED_PLAN = {"mp4": "original", "mkv": "remux", "mov": "transcode"}
COPY_STEPS = ("remux", "transcode")
RENDITIONS = "renditions"
PHASE_LABELS = {"idle_before": "idle", "ladder": "ladder encoding", "idle_after": "idle, after"}
TARGETS = ("api", "range")
TARGET_LABELS = {"api": "GET /api/media (JSON)", "range": "random 64 KiB Range of stream_url"}
PAGES = ("original", "remux", "hls")
PAGE_LABELS = {
    "original": "original MP4",
    "remux": "remuxed copy (MKV)",
    "hls": "HLS (hls.js)",
}
REQUEST_KINDS = ("page", "static", "poster", "playlist", "video", "other")

# Runs in every document before its own scripts (a CDP init script, so the pages' CSP does not
# apply): finds the player as the parser inserts it and sets it muted and autoplaying, what a
# click on play as the page appears does, then records media events and the first frame
# presented. Times are ms since the navigation began (performance.now() of the new document).
INIT_JS = """
(() => {
  if (window !== window.top || window.__playbackBench) return;
  const now = () => performance.now();
  const sleep = (ms) => new Promise((resolve) => setTimeout(() => resolve('timeout'), ms));
  const state = {events: {}, hooked: null, first_frame: null, frame: null};
  let finish;
  const finished = new Promise((resolve) => { finish = resolve; });
  const onFrame = (t, meta) => {
    if (state.first_frame !== null) return;
    state.first_frame = now();
    state.frame = {media_time: meta.mediaTime, width: meta.width, height: meta.height};
    finish('frame');
  };
  const hook = (video) => {
    state.hooked = now();
    video.muted = true;
    video.autoplay = true;
    for (const name of ['loadstart', 'loadedmetadata', 'loadeddata', 'canplay', 'playing',
                        'waiting', 'error']) {
      video.addEventListener(name, () => {
        if (!(name in state.events)) state.events[name] = now();
        // hls.js replaces the page's src: ask again for the new source's first frame.
        if (name === 'loadedmetadata') video.requestVideoFrameCallback(onFrame);
        // A failure may still be recovered from (hls.js falls back to the file).
        if (name === 'error') setTimeout(() => finish('error'), 5000);
      });
    }
    video.requestVideoFrameCallback(onFrame);
  };
  const find = () => {
    const video = document.getElementById('media-player');
    if (!video || video.tagName !== 'VIDEO') return false;
    hook(video);
    return true;
  };
  const observer = new MutationObserver(() => { if (find()) observer.disconnect(); });
  observer.observe(document, {childList: true, subtree: true});
  window.__playbackBench = {
    async result([timeoutMs, playWaitMs]) {
      const outcome = await Promise.race([finished, sleep(timeoutMs)]);
      const until = now() + playWaitMs;
      while (outcome === 'frame' && !('playing' in state.events) && now() < until) {
        await sleep(50);
      }
      const video = document.getElementById('media-player');
      const nav = performance.getEntriesByType('navigation')[0];
      return {
        outcome,
        time_origin: performance.timeOrigin,
        hooked: state.hooked,
        first_frame: state.first_frame,
        frame: state.frame,
        events: state.events,
        response_start: nav ? nav.responseStart : null,
        dom_content_loaded: nav && nav.domContentLoadedEventEnd ? nav.domContentLoadedEventEnd
                                                                 : null,
        current_src: video ? video.currentSrc : null,
        adaptive: video ? (video.dataset.adaptive || null) : null,
        error: video && video.error ? (video.error.message || String(video.error.code)) : null,
      };
    },
  };
})();
"""


# --------------------------------------------------------------------------- media files


def probe_file(path: Path) -> dict[str, Any]:
    """What ffprobe says of a test file: container, codecs, the video's tag and size, duration,
    bit rate; with its size and SHA-256."""
    done = subprocess.run(
        ["ffprobe", "-v", "error", "-of", "json", "-show_entries",
         "stream=codec_type,codec_name,codec_tag_string,width,height:"
         "format=format_name,duration,bit_rate", str(path)],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    data = json.loads(done.stdout)
    video = next(s for s in data["streams"] if s["codec_type"] == "video")
    audio = next((s for s in data["streams"] if s["codec_type"] == "audio"), {})
    return {
        "path": str(path),
        "size": path.stat().st_size,
        "sha256": sha256_of(path),
        "container": data["format"]["format_name"],
        "video_codec": video["codec_name"],
        "video_tag": video.get("codec_tag_string"),
        "width": video["width"],
        "height": video["height"],
        "audio_codec": audio.get("codec_name"),
        "duration": float(data["format"]["duration"]),
        "mbit_s": int(data["format"]["bit_rate"]) / 1e6,
    }


def make_hevc_mov(directory: Path, seconds: int) -> float:
    """``hevc.mov``: 1080p HEVC tagged ``hvc1`` (as an iPhone writes it) and AAC, a segment
    encoded with libx265 over a noisy test picture, then repeated by stream copy; the seconds
    ffmpeg took."""
    part = min(SEGMENT_SECONDS, seconds)
    segment = directory / "hevc-segment.mov"
    rate = [f"{HEVC_KBIT}k", f"{HEVC_KBIT * 11 // 10}k"]
    x265 = f"log-level=error:keyint={GOP_FRAMES}:min-keyint={GOP_FRAMES}"
    started = time.monotonic()
    run_ffmpeg(
        ["-f", "lavfi", "-i",
         f"testsrc2=size=1920x1080:rate={FPS}:duration={part},noise=alls=12:allf=t",
         "-f", "lavfi", "-i", f"sine=frequency=523:sample_rate=48000:duration={part}",
         "-c:v", "libx265", "-preset", "ultrafast", "-x265-params", x265, "-b:v", rate[0],
         "-maxrate", rate[1], "-bufsize", rate[1], "-pix_fmt", "yuv420p", "-tag:v", "hvc1",
         "-c:a", "aac", "-b:a", "128k", "-ac", "2", "-shortest", str(segment)]
    )  # fmt: skip
    loops = max(0, -(-seconds // part) - 1)
    run_ffmpeg(
        ["-stream_loop", str(loops), "-i", str(segment), "-map", "0", "-c", "copy",
         "-tag:v", "hvc1", "-t", str(seconds), str(directory / "hevc.mov")]
    )  # fmt: skip
    segment.unlink()
    return time.monotonic() - started


def make_sources(directory: Path, seconds: int) -> dict[str, dict[str, Any]]:
    """The three test files: an H.264/AAC MP4 (``+faststart``; bench/first_frame.py's maker),
    an MKV with the same streams (stream copy), and the HEVC MOV."""
    spec = VideoSpec("h264", "1080p H.264", 1920, 1080, FPS, seconds, H264_KBIT, GOP_FRAMES)
    started = time.monotonic()
    layouts = make_video(spec, directory)
    Path(layouts["moov_end"]["path"]).unlink()
    mp4 = Path(layouts["faststart"]["path"])
    mkv = directory / "h264.mkv"
    run_ffmpeg(["-i", str(mp4), "-map", "0", "-c", "copy", str(mkv)])
    h264_s = time.monotonic() - started
    hevc_s = make_hevc_mov(directory, seconds)
    sources = {
        "mp4": probe_file(mp4),
        "mkv": probe_file(mkv),
        "mov": probe_file(directory / "hevc.mov"),
    }
    sources["mp4"]["made_s"] = sources["mkv"]["made_s"] = h264_s
    sources["mov"]["made_s"] = hevc_s
    wanted = {
        "mp4": ("h264", None),
        "mkv": ("h264", None),
        "mov": ("hevc", "hvc1"),
    }
    for key, (codec, tag) in wanted.items():
        facts = sources[key]
        if facts["video_codec"] != codec or (tag and facts["video_tag"] != tag):
            raise RuntimeError(f"{key} is not {codec} {tag or ''}: {facts}")
    return sources


# --------------------------------------------------------------------------- jobs


def encode_step(split: dict[str, float]) -> str | None:
    """The step of a job that ran ffmpeg over the whole video: remux, transcode, renditions."""
    return next((s for s in split if s in COPY_STEPS or s.startswith(RENDITIONS)), None)


def in_renditions(processing_state: dict[str, Any]) -> bool:
    """Whether a job is running its ``renditions …`` step."""
    step = processing_state["step"] or ""
    return processing_state["state"] == "running" and step.startswith(RENDITIONS)


def ladder_speed(
    before: dict[str, Any], after: dict[str, Any], video_s: float, wall: float
) -> float | None:
    """Seconds of video the ladder encoded per wall second, from the job's progress (one long
    step: it spans 15–95 %)."""
    if wall <= 0 or not in_renditions(before):
        return None
    end = after["progress"]
    if after["state"] == "done":
        end = TRANSCODE_PROGRESS_START + TRANSCODE_PROGRESS_SPAN
    return max(0.0, end - before["progress"]) / TRANSCODE_PROGRESS_SPAN * video_s / wall


def parse_master(text: str) -> list[dict[str, Any]]:
    """Each ``#EXT-X-STREAM-INF`` of a master playlist: its attributes and URI."""
    variants = []
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if not line.startswith("#EXT-X-STREAM-INF:"):
            continue
        attributes = dict(re.findall(r'([A-Z0-9-]+)=("[^"]*"|[^",]*)', line.partition(":")[2]))
        width, _, height = attributes.get("RESOLUTION", "0x0").partition("x")
        variants.append(
            {
                "bandwidth": int(attributes["BANDWIDTH"]),
                "average_bandwidth": int(attributes.get("AVERAGE-BANDWIDTH", 0)),
                "width": int(width),
                "height": int(height),
                "codecs": attributes.get("CODECS", "").strip('"'),
                "uri": lines[index + 1].strip() if index + 1 < len(lines) else "",
            }
        )
    return variants


# --------------------------------------------------------------------------- the browser


@dataclass(frozen=True)
class PageTarget:
    """One media page the browser loads."""

    key: str
    url: str
    headers: dict[str, str]


def request_kind(path: str, page_path: str) -> str:
    """What a request the page made is for."""
    if path == page_path:
        return "page"
    if path.startswith("/static/"):
        return "static"
    if path.endswith(("/poster", "/thumbnail")):
        return "poster"
    if path.endswith(".m3u8"):
        return "playlist"
    if path.endswith(("/stream", "/playback", ".mp4")):
        return "video"
    return "other"


def requests_of(
    events: Sequence[tuple[str, dict[str, Any]]], page: dict[str, Any], page_path: str
) -> list[dict[str, Any]]:
    """The page's requests over the network (not ``data:`` URLs) from CDP events, times in ms
    since the navigation began (CDP's timestamps are monotonic seconds; ``wallTime`` lines them
    up with the page's clock). Bytes are ``encodedDataLength``, what came over the network:
    Chromium may report a chunk twice, once decoded (``dataLength``, encoded 0) and once as
    received (``dataLength`` 0), so adding ``dataLength`` in would count it twice."""
    first = page.get("first_frame")
    offset: float | None = None
    found: dict[str, dict[str, Any]] = {}
    for method, params in events:
        if method == "Network.requestWillBeSent":
            if offset is None:
                offset = params["wallTime"] - params["timestamp"]
            url = urlsplit(params["request"]["url"])
            if url.scheme not in ("http", "https"):
                continue
            path = url.path
            found.setdefault(
                params["requestId"],
                {
                    "path": path,
                    "kind": request_kind(path, page_path),
                    "range": header(params["request"]["headers"], "Range"),
                    "sent_ms": (params["timestamp"] + offset) * 1000 - page["time_origin"],
                    "status": None,
                    "bytes": 0,
                    "bytes_before_first_frame": 0,
                },
            )
        elif (request := found.get(params["requestId"])) and offset is not None:
            at = (params["timestamp"] + offset) * 1000 - page["time_origin"]
            if method == "Network.responseReceived":
                request["status"] = params["response"]["status"]
            elif method == "Network.dataReceived":
                received = params["encodedDataLength"]
                request["bytes"] += received
                if first is not None and at <= first:
                    request["bytes_before_first_frame"] += received
    return sorted(found.values(), key=lambda r: r["sent_ms"])


def load_page(
    browser: Browser,
    target: PageTarget,
    profile: NetworkProfile,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Open ``target``'s media page in a fresh browser context under ``profile``, until the
    video's first frame (and ``playing``, for up to ``--play-wait`` s more)."""
    context = browser.new_context(
        viewport={"width": 1280, "height": 800}, extra_http_headers=target.headers
    )
    errors: list[str] = []
    events: list[tuple[str, dict[str, Any]]] = []

    def record(method: str, params: dict[str, Any]) -> None:
        events.append((method, params))

    try:
        context.add_init_script(INIT_JS)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        cdp = context.new_cdp_session(page)
        for method in NETWORK_EVENTS:
            cdp.on(method, partial(record, method))
        cdp.send("Network.enable")
        cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
        if profile.throttled:
            cdp.send("Network.emulateNetworkConditions", profile.cdp_conditions())
        started = time.monotonic()
        page.goto(target.url, wait_until="commit", timeout=args.timeout * 1000)
        result = page.evaluate(
            "(limits) => window.__playbackBench.result(limits)",
            [args.timeout * 1000, args.play_wait * 1000],
        )
        wall = time.monotonic() - started
    finally:
        context.close()
    requests = requests_of(events, result, urlsplit(target.url).path)
    first = result["first_frame"]
    before = [r for r in requests if first is not None and r["sent_ms"] <= first]
    return {
        "page": result,
        "first_frame_ms": first,
        "loadedmetadata_ms": result["events"].get("loadedmetadata"),
        "loadeddata_ms": result["events"].get("loadeddata"),
        "playing_ms": result["events"].get("playing"),
        "dom_content_loaded_ms": result["dom_content_loaded"],
        "first_frame_height": (result["frame"] or {}).get("height"),
        "error": result["error"] or (None if first is not None else result["outcome"]),
        "page_errors": errors,
        "requests": requests,
        "requests_before_first_frame": len(before) if first is not None else None,
        "bytes_before_first_frame": (
            sum(r["bytes_before_first_frame"] for r in requests) if first is not None else None
        ),
        "kinds_before_first_frame": {
            kind: n for kind in REQUEST_KINDS if (n := sum(r["kind"] == kind for r in before))
        },
        "wall_s": wall,
    }


# --------------------------------------------------------------------------- the run


class Bench:
    """The test files, the two servers, and every measurement."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.servers: list[Server] = []
        self.clients: dict[str, httpx2.Client] = {}
        self.sources: dict[str, dict[str, Any]] = {}
        self.envs: dict[str, dict[str, str]] = {}
        self.jobs: dict[str, list[dict[str, Any]]] = {}
        self.kept: dict[str, dict[str, Any]] = {}
        self.checks: dict[str, bool] = {}
        self.master: dict[str, Any] = {}
        self.load: dict[str, Any] = {"windows": [], "range_checks": {}}
        self.loads: list[dict[str, Any]] = []
        self.browser_version = "?"

    def stop(self) -> None:
        """Close the clients; stop the servers this benchmark started, by their PIDs."""
        for client in self.clients.values():
            client.close()
        for server in self.servers:
            server.stop()

    def _start(self, name: str, env: dict[str, str]) -> tuple[Server, httpx2.Client]:
        server = start_streamport(
            self.workdir / f"media-{name}", UPLOAD_LIMIT, self.workdir / f"{name}.log", env
        )
        server.name = f"streamport ({name})"
        self.servers.append(server)
        self.envs[name] = env
        client = httpx2.Client(base_url=server.base_url, headers=server.auth_headers, timeout=600)
        self.clients[name] = client
        return server, client

    def prepare(self) -> None:
        """Make the test files with ffmpeg."""
        seconds = self.args.seconds
        print(
            f"making {seconds} s 1080p{FPS} test files: H.264 {H264_KBIT / 1000:g} Mbit/s (MP4, "
            f"MKV), HEVC {HEVC_KBIT / 1000:g} Mbit/s (MOV, hvc1)",
            flush=True,
        )
        self.sources = make_sources(self.workdir, seconds)
        for key, facts in self.sources.items():
            print(
                f"  {SOURCE_LABELS[key]:<22} {facts['size'] / MiB:7.1f} MiB, "
                f"{facts['mbit_s']:5.1f} Mbit/s, {facts['duration']:.2f} s, "
                f"{facts['video_codec']}/{facts['video_tag']} + {facts['audio_codec']}",
                flush=True,
            )

    def timed_job(self, server: Server, client: httpx2.Client, source: str) -> dict[str, Any]:
        """Upload one test file, poll its job to the end; times, step split, speed, checks."""
        facts = self.sources[source]
        process = psutil.Process(server.pid)
        settle()
        tools_cpu = subprocess_cpu(process)
        item, answered, upload_s = upload(client, Path(facts["path"]))
        observations, final = poll_until_finished(
            client, item["id"], answered, self.args.poll_interval
        )
        split = step_split(observations)
        step = encode_step(split)
        encode_s = split.get(step) if step else None
        ladder = server.name.endswith("(ladder)")
        playback = final.get("playback") or {}
        checks = {
            "done": final["processing"]["state"] == "done",
            "plan": playback.get("plan") == EXPECTED_PLAN[source],
            "duration": final["duration"] is not None
            and abs(final["duration"] - facts["duration"]) < 0.5,
            "hls": bool(final["hls_url"]) == ladder,
        }
        if not ladder and EXPECTED_PLAN[source] != "original":
            copy = client.head(final["playback_url"])
            checks["copy_served"] = (
                final["playback_url"] != final["stream_url"]
                and copy.status_code == 200
                and copy.headers.get("content-type", "").startswith("video/mp4")
            )
        return {
            "media_id": item["id"],
            "item": final,
            "upload_s": upload_s,
            "answered_to_done_s": observations[-1][0],
            "split_s": split,
            "steps_seen": list(dict.fromkeys(label for _, label, _ in observations)),
            "encode_step": step,
            "encode_s": encode_s,
            "x_realtime": facts["duration"] / encode_s if encode_s else None,
            "ffmpeg_cpu_s": subprocess_cpu(process) - tools_cpu,
            "plan": playback.get("plan"),
            "reason": playback.get("reason"),
            "error": final["processing"].get("error"),
            "checks": checks,
            "observations": [
                [round(at, 3), label, progress] for at, label, progress in observations
            ],
        }

    def _jobs(
        self, server: Server, client: httpx2.Client, source: str, key: str, times: int
    ) -> None:
        """``times`` jobs of one file, one at a time; the last one's media is kept."""
        runs = self.jobs.setdefault(key, [])
        for index in range(times):
            run = self.timed_job(server, client, source)
            runs.append(run)
            ok = "ok" if all(run["checks"].values()) else f"CHECK FAILED {run['checks']}"
            split = ", ".join(f"{k} {v:.2f}" for k, v in run["split_s"].items())
            speed = f", {run['x_realtime']:.2f}× real time" if run["x_realtime"] else ""
            print(
                f"{key:<10} {index + 1}/{times} plan {run['plan']}: 201 → done "
                f"{run['answered_to_done_s']:6.2f} s ({split}){speed} {ok}",
                flush=True,
            )
            if index + 1 < times:
                delete_item(client, run["media_id"])
            else:
                self.kept[key] = run["item"]

    def copies(self) -> None:
        """Part 1: the MP4, MKV and MOV on a server without HLS."""
        env = {
            "STREAMPORT_PROCESSING_CONCURRENCY": "1",
            "STREAMPORT_HLS_LADDER": "",
            "STREAMPORT_REMUX": "1",
            "STREAMPORT_TRANSCODE": "1",
        }
        server, client = self._start("copies", env)
        self._jobs(server, client, "mp4", "original", 1)
        self._jobs(server, client, "mkv", "remux", self.args.repeat)
        self._jobs(server, client, "mov", "transcode", self.args.encode_repeat)

    def ladder(self) -> None:
        """Parts 2 and 3: the MP4 with the HLS ladder; then requests while it encodes again."""
        env = {
            "STREAMPORT_PROCESSING_CONCURRENCY": "1",
            "STREAMPORT_HLS_LADDER": self.args.ladder,
            "STREAMPORT_HLS_MIN_BITRATE": "0",
        }
        server, client = self._start("ladder", env)
        self._jobs(server, client, "mp4", "hls", self.args.encode_repeat)
        item = self.kept["hls"]
        master = client.get(item["hls_url"])
        master.raise_for_status()
        variants = parse_master(master.text)
        base = item["hls_url"].rsplit("/", 1)[0]
        for variant in variants:
            head = client.head(f"{base}/{variant['height']}.mp4")
            head.raise_for_status()
            variant["file_bytes"] = int(head.headers["content-length"])
        self.master = {"text": master.text, "variants": variants}
        heights = [int(h) for h in self.args.ladder.split(",") if h.strip()]
        expected = [h for h in heights if h <= self.sources["mp4"]["height"]]
        self.checks["ladder_renditions"] = sorted(v["height"] for v in variants) == sorted(expected)
        for variant in variants:
            print(
                f"  rendition {variant['width']}x{variant['height']}: BANDWIDTH "
                f"{variant['bandwidth'] / 1000:.0f} kbit/s, AVERAGE-BANDWIDTH "
                f"{variant['average_bandwidth'] / 1000:.0f} kbit/s, {variant['codecs']}, "
                f"{variant['file_bytes'] / MiB:.1f} MiB",
                flush=True,
            )
        self.requests_under_ladder(server, client)

    def requests_under_ladder(self, server: Server, client: httpx2.Client) -> None:
        """Part 3: wrk idle, while a second upload's ladder encodes, and idle again. The catalog
        holds two items in every phase: the HLS video and a tiny placeholder (not media), the
        placeholder replaced by the second upload while it encodes."""
        args = self.args
        process = psutil.Process(server.pid)
        video = self.kept["hls"]
        mp4 = Path(self.sources["mp4"]["path"])
        placeholder = self.workdir / "placeholder.bin"
        placeholder.write_bytes(os.urandom(64 * KiB))
        script = self.workdir / "ranges.lua"
        script.write_text(WRK_SCRIPT.format(size=video["size"], span=RANGE_BYTES, seed=args.seed))
        urls = {
            "api": f"{server.base_url}/api/media",
            "range": f"{server.base_url}{video['stream_url']}",
        }
        self.load["urls"] = urls
        rng = random.Random(args.seed)

        def phase(name: str, media_id: str | None) -> None:
            starts = [rng.randrange(0, video["size"] - RANGE_BYTES) for _ in range(3)]
            checks = [check_range(client, video["stream_url"], mp4, s) for s in starts]
            self.load["range_checks"][name] = checks
            if not all(checks):
                raise RuntimeError(f"the stream route answered wrong bytes for a range: {checks}")
            for target in TARGETS:
                self._window(name, target, process, client, urls, script, media_id)

        filler = upload(client, placeholder)[0]["id"]
        settle()
        phase("idle_before", None)
        delete_item(client, filler)
        busy = upload(client, mp4)[0]["id"]
        waited = self._wait_for_renditions(client, process, busy)
        self.load["seconds_to_renditions"] = waited
        print(f"ladder encoding after {waited:.1f} s", flush=True)
        phase("ladder", busy)
        self.load["job_at_end"] = get_item(client, busy)["processing"]
        delete_item(client, busy)
        wait_no_ffmpeg(process)
        if not args.skip_idle_after:
            upload(client, placeholder)
            settle()
            phase("idle_after", None)

    def _wait_for_renditions(
        self, client: httpx2.Client, process: psutil.Process, media_id: str
    ) -> float:
        started = time.monotonic()
        while time.monotonic() - started < START_TIMEOUT_S:
            state = get_item(client, media_id)["processing"]
            if in_renditions(state) and ffmpeg_children(process):
                return time.monotonic() - started
            if state["state"] not in ("pending", "running"):
                raise RuntimeError(f"the job ended before its renditions: {state}")
            time.sleep(0.05)
        raise RuntimeError(f"the job did not reach its renditions in {START_TIMEOUT_S:.0f} s")

    def _window(
        self,
        name: str,
        target: str,
        process: psutil.Process,
        client: httpx2.Client,
        urls: dict[str, str],
        script: Path,
        media_id: str | None,
    ) -> None:
        """One wrk run, with the CPU each party used and the ladder's progress meanwhile."""
        before = get_item(client, media_id)["processing"] if media_id else None
        ffmpeg_before = ffmpeg_children(process)
        with CpuWindow(process) as cpu:
            result = run_wrk(urls[target], script if target == "range" else None, self.args)
        after = get_item(client, media_id)["processing"] if media_id else None
        speed = None
        if before is not None and after is not None:
            speed = ladder_speed(
                before, after, self.sources["mp4"]["duration"], cpu.cores["seconds"]
            )
        window = {
            "phase": name,
            "target": target,
            **result,
            "cpu_cores": cpu.cores,
            "job_before": before,
            "job_after": after,
            "ffmpeg_processes": len(ffmpeg_before),
            "ffmpeg_threads_nice": thread_facts(ffmpeg_before),
            "server_threads_nice": thread_facts([process]),
            "encoding_throughout": after is not None and in_renditions(after),
            "ladder_x_realtime": speed,
        }
        self.load["windows"].append(window)
        state = ""
        if after is not None:
            running = "still encoding" if in_renditions(after) else "LADDER FINISHED EARLY"
            state = f", job at {after['progress']:.2f}: {running}"
        print(
            f"{PHASE_LABELS[name]:<15} {TARGET_LABELS[target]:<34} "
            f"{result['requests_per_s']:8.0f} req/s, p99 {result.get('p99_ms', 0):7.2f} ms{state}",
            flush=True,
        )

    def first_frames(self) -> None:
        """Part 4: each media page in Chromium, per profile, ``--repeat`` times, in rotation."""
        args = self.args
        servers = {s.name: s for s in self.servers}
        copies, ladder = servers["streamport (copies)"], servers["streamport (ladder)"]
        targets = {
            "original": PageTarget(
                "original", copies.base_url + self.kept["original"]["page_url"], copies.auth_headers
            ),
            "remux": PageTarget(
                "remux", copies.base_url + self.kept["remux"]["page_url"], copies.auth_headers
            ),
            "hls": PageTarget(
                "hls", ladder.base_url + self.kept["hls"]["page_url"], ladder.auth_headers
            ),
        }
        # Uncounted loads first (round None): first use of the decoder, the servers' lookups,
        # the page cache. Then rounds, each profile in turn, the pages rotated per round.
        schedule: list[tuple[int | None, NetworkProfile, str]] = [
            (None, PROFILES["loopback"], key) for _ in range(args.warmup) for key in PAGES
        ]
        for index in range(args.repeat):
            order = PAGES[index % len(PAGES) :] + PAGES[: index % len(PAGES)]
            schedule += [(index, PROFILES[p], key) for p in args.profiles for key in order]
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=args.chromium, args=CHROMIUM_ARGS, headless=True
            )
            self.browser_version = browser.version
            try:
                for round_index, profile, key in schedule:
                    run = load_page(browser, targets[key], profile, args)
                    if round_index is not None:
                        run.update(round=round_index, profile=profile.key, target=key)
                        self.loads.append(run)
                        self._print_load(run)
            finally:
                browser.close()

    def _print_load(self, run: dict[str, Any]) -> None:
        kinds = ", ".join(f"{k} {n}" for k, n in run["kinds_before_first_frame"].items())
        first = run["first_frame_ms"]
        print(
            f"round {run['round'] + 1}/{self.args.repeat} {run['profile']:<9} "
            f"{PAGE_LABELS[run['target']]:<19} first frame "
            + ("  none" if first is None else f"{first:6.0f} ms")
            + f" ({run['first_frame_height'] or '?'}p), requests before it: {kinds or '-'}"
            + (f", ERROR {run['error']}" if run["error"] else "")
            + (f", page errors {run['page_errors']}" if run["page_errors"] else ""),
            flush=True,
        )


# --------------------------------------------------------------------------- summary


def summarize_jobs(jobs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Per kind of job: spreads of its times, step split, speed and CPU; whether checks held."""
    summary: dict[str, Any] = {}
    for key, runs in jobs.items():
        steps = list(dict.fromkeys(s for r in runs for s in r["split_s"]))
        encoded = [r for r in runs if r["encode_s"]]
        summary[key] = {
            "runs": len(runs),
            "plan": runs[-1]["plan"],
            "answered_to_done_s": spread([r["answered_to_done_s"] for r in runs]),
            "upload_s": spread([r["upload_s"] for r in runs]),
            "split_s": {s: spread([r["split_s"].get(s, 0.0) for r in runs]) for s in steps},
            "encode_step": runs[-1]["encode_step"],
            "encode_s": spread([r["encode_s"] for r in encoded]) if encoded else None,
            "x_realtime": spread([r["x_realtime"] for r in encoded]) if encoded else None,
            "ffmpeg_cpu_s": spread([r["ffmpeg_cpu_s"] for r in runs]),
            "checks_ok": all(all(r["checks"].values()) for r in runs),
            "failed_checks": sorted({k for r in runs for k, ok in r["checks"].items() if not ok}),
        }
    return summary


def summarize_load(windows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per target: each phase's requests/s, p99 and errors, and both against the idle phase
    before; ``rps_ratio`` and ``p99_ratio`` are the ladder's."""
    summary: dict[str, Any] = {}
    for target in TARGETS:
        by_phase = {w["phase"]: w for w in windows if w["target"] == target}
        idle = by_phase.get("idle_before")
        phases = {}
        for phase, window in by_phase.items():
            vs_idle = {
                f"{metric}_vs_idle": window[metric] / idle[metric]
                if idle and idle.get(metric) and window.get(metric) is not None
                else None
                for metric in ("requests_per_s", "p99_ms")
            }
            phases[phase] = {
                "requests_per_s": window["requests_per_s"],
                "p50_ms": window.get("p50_ms"),
                "p99_ms": window.get("p99_ms"),
                "errors": sum(window["socket_errors"]) + window["non_2xx_3xx"],
                **vs_idle,
            }
        ladder = phases.get("ladder", {})
        summary[target] = {
            "phases": phases,
            "rps_ratio": ladder.get("requests_per_s_vs_idle"),
            "p99_ratio": ladder.get("p99_ms_vs_idle"),
        }
    return summary


def media_requests_text(run: dict[str, Any]) -> str:
    """The playlists and video bytes a load asked for before its first frame, e.g. ``stream
    0- 3200 KiB → master.m3u8 1 KiB → 720.m3u8 1 KiB → 720.mp4 0-1352 3 KiB``."""
    first = run["first_frame_ms"]
    parts = []
    for request in run["requests"]:
        if request["kind"] in ("video", "playlist") and first is not None:
            if request["sent_ms"] <= first:
                span = " " + request["range"].removeprefix("bytes=") if request["range"] else ""
                received = request["bytes_before_first_frame"] / KiB
                parts.append(f"{request['path'].rsplit('/', 1)[-1]}{span} {received:.0f} KiB")
    return " → ".join(parts) or "-"


def summarize_loads(loads: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per profile and page: spreads of the browser's times and requests, and the media
    requests of the load with the median first frame."""
    cells: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for run in loads:
        cells.setdefault((run["profile"], run["target"]), []).append(run)
    summary: dict[str, Any] = {}
    for (profile, target), runs in cells.items():
        summary.setdefault(profile, {})[target] = {
            **{
                metric: spread_of([r[metric] for r in runs])
                for metric in (
                    "first_frame_ms",
                    "loadedmetadata_ms",
                    "loadeddata_ms",
                    "playing_ms",
                    "dom_content_loaded_ms",
                    "requests_before_first_frame",
                    "bytes_before_first_frame",
                )
            },
            "first_frame_heights": sorted({r["first_frame_height"] or 0 for r in runs}),
            "median_run_media_requests": media_requests_text(
                sorted(runs, key=lambda r: r["first_frame_ms"] or float("inf"))[
                    (len(runs) - 1) // 2
                ]
            ),
            "errors": [r["error"] for r in runs if r["error"]],
            "page_errors": [e for r in runs for e in r["page_errors"]],
        }
    return summary


# --------------------------------------------------------------------------- report


def _spread(entry: dict[str, Any] | None, digits: int = 2, scale: float = 1.0) -> str:
    if entry is None:
        return "-"
    median, low, high = (entry[k] / scale for k in ("median", "min", "max"))
    text = f"{median:.{digits}f}"
    if low != high:
        text += f" ({low:.{digits}f}–{high:.{digits}f})"
    if entry.get("n", 0) < entry.get("of", 0):
        text += f" [{entry['n']}/{entry['of']}]"
    return text


def report_jobs(summary: dict[str, Any], bench: Bench) -> str:
    """Parts 1 and 2: time to playable and the ladder."""
    rows = []
    sources = {"original": "mp4", "remux": "mkv", "transcode": "mov", "hls": "mp4"}
    for key in ("original", "remux", "transcode", "hls"):
        entry = summary.get(key)
        if entry is None:
            continue
        facts = bench.sources[sources[key]]
        step = entry["encode_step"]
        others = ", ".join(
            f"{name} {_spread(value)}" for name, value in entry["split_s"].items() if name != step
        )
        server = "HLS ladder" if key == "hls" else "HLS off"
        rows.append(
            [
                f"{SOURCE_LABELS[sources[key]]} ({server})",
                f"{facts['size'] / MiB:.0f} MiB, {facts['mbit_s']:.1f} Mbit/s",
                entry["plan"],
                str(entry["runs"]),
                _spread(entry["answered_to_done_s"]),
                step or "-",
                _spread(entry["encode_s"]),
                _spread(entry["x_realtime"]),
                others,
                _spread(entry["ffmpeg_cpu_s"], 1),
                "ok" if entry["checks_ok"] else "FAILED: " + ", ".join(entry["failed_checks"]),
            ]
        )
    headers = [
        "upload",
        "file",
        "plan",
        "runs",
        "201 → done, s",
        "ffmpeg step",
        "step, s",
        "× real time",
        "other steps, s",
        "ffmpeg CPU s",
        "checks",
    ]
    jobs_table = table(headers, rows)
    variant_rows = [
        [
            f"{v['width']}x{v['height']}",
            f"{v['bandwidth'] / 1000:.0f}",
            f"{v['average_bandwidth'] / 1000:.0f}",
            v["codecs"],
            f"{v['file_bytes'] / MiB:.1f}",
        ]
        for v in bench.master.get("variants", [])
    ]
    master_table = table(
        ["rendition", "BANDWIDTH kbit/s", "AVERAGE-BANDWIDTH kbit/s", "CODECS", "file MiB"],
        variant_rows,
    )
    notes = [
        f"Files: {bench.args.seconds} s of testsrc2 with temporal noise, 1920x1080 {FPS} fps, "
        f"sine tone; H.264 High {H264_KBIT / 1000:g} Mbit/s (libx264 veryfast, "
        f"{GOP_FRAMES}-frame GOP) + AAC in a +faststart MP4 and, stream-copied, in an MKV; "
        f"HEVC {HEVC_KBIT / 1000:g} Mbit/s (libx265 ultrafast) tagged hvc1 + AAC in a MOV. "
        f"Each encoded as a {SEGMENT_SECONDS} s segment, repeated by stream copy.",
        "201 → done: from the upload's 201 to the first poll of GET /api/media/{id} "
        f"(every {bench.args.poll_interval * 1000:.0f} ms) showing done; a step lasts from the "
        "first poll that shows it to the first that shows the next (± one poll). × real time: "
        "video seconds / seconds of the ffmpeg step. ffmpeg CPU s: the server's subprocesses "
        "(ffprobe, posters, the step) over the job.",
        'HLS off: STREAMPORT_HLS_LADDER="". HLS ladder: '
        f"STREAMPORT_HLS_LADDER={bench.args.ladder}, STREAMPORT_HLS_MIN_BITRATE=0; the master "
        "playlist of its last upload:",
    ]
    return f"{jobs_table}\n\n" + "\n".join(notes) + f"\n\n{master_table}"


CPU_COLUMNS = (
    ("server", "server"),
    ("server_subprocesses", "ffmpeg"),
    ("clients", "wrk"),
    ("machine_busy", "machine busy"),
    ("machine_steal", "steal"),
)


def report_load(summary: dict[str, Any], windows: Sequence[dict[str, Any]], bench: Bench) -> str:
    """Part 3: one row per wrk run: requests/s and p99 against idle, and the CPU split."""
    args = bench.args

    def ratio(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    rows = []
    for window in sorted(windows, key=lambda w: TARGETS.index(w["target"])):
        entry = summary[window["target"]]["phases"][window["phase"]]
        speed = window["ladder_x_realtime"]
        if window["phase"] == "ladder" and not window["encoding_throughout"]:
            speed_text = "finished early"
        else:
            speed_text = "-" if speed is None else f"{speed:.2f}"
        rows.append(
            [
                TARGET_LABELS[window["target"]],
                PHASE_LABELS[window["phase"]],
                f"{entry['requests_per_s']:.0f}",
                ratio(entry["requests_per_s_vs_idle"]),
                f"{entry['p99_ms']:.1f}",
                ratio(entry["p99_ms_vs_idle"]),
                *(f"{window['cpu_cores'][key]:.2f}" for key, _ in CPU_COLUMNS),
                speed_text,
            ]
        )
    headers = [
        f"wrk -t{args.wrk_threads} -c{args.wrk_connections} -d{args.wrk_seconds}s",
        "phase",
        "req/s",
        "× idle",
        "p99 ms",
        "p99 × idle",
        *(f"{label} cores" for _, label in CPU_COLUMNS),
        "ladder × real time",
    ]
    notes = [
        "× idle: against the idle phase before the ladder (target for req/s while the ladder "
        "encodes: ≥ 0.5). Cores: CPU s per wall s over each wrk run, of the server process, its "
        f"subprocesses (ffmpeg), wrk, and the whole machine ({os.cpu_count()} CPUs; busy counts "
        "whatever else runs on it). ladder × real time: video seconds encoded per second "
        "meanwhile, from the job's progress.",
        "Range target: the HLS video's original (stream_url), 3 ranges per phase checked byte "
        "for byte before wrk. The catalog holds 2 items in every phase.",
    ]
    facts = [f for w in windows if w["phase"] == "ladder" for f in w["ffmpeg_threads_nice"]]
    servers = [f for w in windows if w["phase"] == "ladder" for f in w["server_threads_nice"]]
    if facts and servers:
        notes.append(
            f"ffmpeg: {max(f['threads'] for f in facts)} threads at nice {facts[0]['nice']}; "
            f"the server process: {servers[0]['threads']} threads at nice {servers[0]['nice']}."
        )
    if any(w["phase"] == "ladder" and not w["encoding_throughout"] for w in windows):
        notes.append("WARNING: the ladder finished before a window ended; use a longer --seconds.")
    errors = {
        f"{target} {phase}": entry["errors"]
        for target in TARGETS
        for phase, entry in summary[target]["phases"].items()
        if entry["errors"]
    }
    if errors:
        notes.append(f"wrk reported socket errors or non-2xx answers: {errors}")
    return table(headers, rows) + "\n\n" + "\n".join(notes)


def report_loads(summary: dict[str, Any], bench: Bench) -> str:
    """Part 4: time to first frame per page and profile."""
    args = bench.args
    rows, detail_rows = [], []
    for key in args.profiles:
        profile = PROFILES[key]
        cells = summary.get(key, {})
        first = {t: cells.get(t, {}).get("first_frame_ms") for t in PAGES}
        base = first["original"]
        ratios = [
            f"{first[t]['median'] / base['median']:.2f}" if first[t] and base else "-"
            for t in ("remux", "hls")
        ]
        rows.append(
            [f"{profile.label} ({profile.describe()})", *(_spread(first[t], 0) for t in PAGES)]
            + ratios
        )
        for target in PAGES:
            cell = cells.get(target)
            if cell is None:
                continue
            detail_rows.append(
                [
                    profile.key,
                    PAGE_LABELS[target],
                    _spread(cell["dom_content_loaded_ms"], 0),
                    _spread(cell["loadeddata_ms"], 0),
                    _spread(cell["playing_ms"], 0),
                    "/".join(f"{h}p" for h in cell["first_frame_heights"]),
                    _spread(cell["requests_before_first_frame"], 0),
                    _spread(cell["bytes_before_first_frame"], 0, KiB),
                    cell["median_run_media_requests"],
                    "; ".join(cell["errors"] + cell["page_errors"]) or "-",
                ]
            )
    first_table = table(
        [
            "network",
            *(f"first frame, {PAGE_LABELS[t]}" for t in PAGES),
            "remux / original",
            "HLS / original",
        ],
        rows,
    )
    detail_table = table(
        [
            "network",
            "page",
            "DOMContentLoaded",
            "loadeddata",
            "playing",
            "first frame height",
            "requests before first frame",
            "KiB before first frame",
            "media requests before the first frame (median load)",
            "errors",
        ],
        detail_rows,
    )
    notes = [
        f"ms from navigation (performance.timeOrigin) to the first frame presented "
        f"(requestVideoFrameCallback); median (min–max) of {args.repeat} loads [n/N: some loads "
        "showed no frame], each in a fresh browser context (no cache), pages rotated per round, "
        f"after {args.warmup} uncounted load(s) of each. The media page as served, the bench "
        "token sent as an extra header; an init script sets its video muted and autoplaying "
        "as the parser inserts it (a click on play as the page appears). playing: only when it "
        f"came within {args.play_wait:g} s of the first frame (- otherwise).",
        f"Chromium {bench.browser_version}; CDP network emulation of bench/first_frame.py "
        "(latency per request, shared throughput cap; no TCP/TLS handshakes or slow start). "
        "The HLS page also loads hls.js; its first frame height shows the rendition hls.js "
        "started with. Requests: those over HTTP (the stylesheet's data: icons left out); KiB: "
        "bytes received over the network (CDP encodedDataLength) up to the first frame.",
    ]
    return f"{first_table}\n\n{detail_table}\n\n" + "\n".join(notes)


def main() -> int:
    """Command line entry."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="browser loads per cell (3)")
    parser.add_argument("--seconds", type=int, default=60, help="test video length, s (60)")
    parser.add_argument(
        "--encode-repeat", type=int, default=1, help="transcode and ladder jobs timed (1)"
    )
    parser.add_argument("--ladder", default=DEFAULT_LADDER, help=f"HLS ladder ({DEFAULT_LADDER})")
    parser.add_argument("--poll-interval", type=float, default=0.05, help="job polling, s (0.05)")
    parser.add_argument(
        "--profiles",
        type=_choices(list(PROFILES)),
        default=list(PROFILES),
        help=f"network profiles, comma-separated ({','.join(PROFILES)})",
    )
    parser.add_argument("--timeout", type=float, default=60.0, help="per page load, s (60)")
    parser.add_argument(
        "--play-wait", type=float, default=3.0, help="wait for `playing` after the frame, s (3)"
    )
    parser.add_argument("--warmup", type=int, default=1, help="uncounted loads per page (1)")
    parser.add_argument("--chromium", default=CHROMIUM, help=f"the browser ({CHROMIUM})")
    parser.add_argument("--wrk-seconds", type=int, default=8, help="seconds per wrk run (8)")
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (1)")
    parser.add_argument("--wrk-connections", type=int, default=8, help="wrk connections (8)")
    parser.add_argument("--seed", type=int, default=20240601, help="seed of the random ranges")
    parser.add_argument(
        "--skip-idle-after", action="store_true", help="no idle measurement after the ladder"
    )
    parser.add_argument("--tmp-dir", type=Path, help="where the files and servers' data go")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when requests/s under the ladder < 0.5× idle"
    )
    args = parser.parse_args()
    if min(args.repeat, args.seconds, args.encode_repeat, args.wrk_seconds) < 1:
        parser.error("--repeat, --seconds, --encode-repeat, --wrk-seconds must be at least 1")
    missing = [t for t in ("ffmpeg", "ffprobe", "wrk", args.chromium) if shutil.which(t) is None]
    if missing:
        raise SystemExit(f"missing: {', '.join(missing)} (apt-get install -y ffmpeg wrk chromium)")
    # A 1080p ladder of a long clip on 2 busy cores may take longer than processing.py's limit.
    processing.JOB_TIMEOUT_S = max(processing.JOB_TIMEOUT_S, 20.0 * args.seconds)

    started = time.monotonic()
    workdir = make_workdir(args.tmp_dir, "streamport-bench-playback-")
    bench = Bench(args, workdir)
    with servers_stopped_after(bench, workdir, args.keep):
        require_free_space(workdir, 2 * GiB + 6 * H264_KBIT * 1000 // 8 * args.seconds)
        env = environment(workdir)
        streamport_env = {k: v for k, v in os.environ.items() if k.startswith("STREAMPORT_")}
        load_start = os.getloadavg()
        print(
            f"playback benchmark in {workdir} ({env['filesystem']['fstype']}), {env['cpus']} "
            f"CPUs, load average {load_start[0]:.1f}, Python {env['python']}; Streamport "
            f"environment: {streamport_env or '(none set)'}",
            flush=True,
        )
        bench.prepare()
        bench.copies()
        bench.ladder()
        bench.first_frames()

    jobs = summarize_jobs(bench.jobs)
    load = summarize_load(bench.load["windows"])
    loads = summarize_loads(bench.loads)
    correct = all(entry["checks_ok"] for entry in jobs.values()) and all(bench.checks.values())
    ratios = {t: load[t].get("rps_ratio") for t in TARGETS}
    target_met = all(r is not None and r >= 0.5 for r in ratios.values())
    result = {
        "benchmark": "playback",
        "environment": {
            **env,
            "ffmpeg": tool_version(["ffmpeg", "-version"]),
            "wrk": tool_version(["wrk", "-v"]),
            "chromium": bench.browser_version,
            "chromium_args": CHROMIUM_ARGS,
            "playwright": metadata.version("playwright"),
            # A shared machine: what else ran on it, as 1, 5 and 15 minute load averages.
            "load_average": {"start": load_start, "end": os.getloadavg()},
        },
        "git": git_state(),
        "argv": sys.argv,
        "options": options_of(args),
        "streamport_env": streamport_env,
        "server_env": bench.envs,
        "sources": bench.sources,
        "profiles": {p: vars(PROFILES[p]) for p in args.profiles},
        "summary": {"jobs": jobs, "load": load, "first_frame": loads},
        "jobs": {
            key: [{k: v for k, v in run.items() if k != "item"} for run in runs]
            for key, runs in bench.jobs.items()
        },
        "items": bench.kept,
        "master_playlist": bench.master,
        "load": bench.load,
        "loads": bench.loads,
        "checks": bench.checks,
        "checks_passed": correct,
        "target": {"rps_ratios": ratios, "met": target_met},
        "seconds": round(time.monotonic() - started, 1),
    }
    path = write_results("playback", result)
    print()
    print("Time to playable and the HLS ladder\n")
    print(report_jobs(jobs, bench))
    print("\nRequests while the ladder encodes\n")
    print(report_load(load, bench.load["windows"], bench))
    print("\nTime to first frame in Chromium, ms\n")
    print(report_loads(loads, bench))
    verdict = "met" if target_met else "MISSED"
    print(
        "\nTarget requests/s under the ladder ≥ 0.5× idle: "
        + ", ".join(f"{t} {'-' if r is None else f'{r:.2f}'}" for t, r in ratios.items())
        + f": {verdict}"
    )
    if not correct:
        print(f"\nCHECKS FAILED: {bench.checks}")
    before, after = (result["environment"]["load_average"][k][0] for k in ("start", "end"))
    print(
        f"\nresults: {display_path(path)} ({time.monotonic() - started:.0f} s in all; load "
        f"average {before:.1f} at the start, {after:.1f} at the end)"
    )
    if not correct:
        return 2
    return 1 if args.check and not target_met else 0


if __name__ == "__main__":
    sys.exit(main())
