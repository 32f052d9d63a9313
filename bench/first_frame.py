"""Time to first frame in Chromium: MP4s with their index (moov) at the end against +faststart.

Two test videos are made with ffmpeg, a phone-like 1080p clip and a long 720p recording whose
moov is large, each in two byte layouts: moov at the end (what ffmpeg, cameras and screen
recorders write) and a ``-c copy -movflags +faststart`` copy (moov first). All four are uploaded
to a real ``streamport serve`` with processing off, so the stored bytes are the uploaded ones.
Debian's Chromium, driven by Playwright, plays each ``stream_url`` in a fresh browser context
(no cache, no open connections) under CDP network emulation profiles, and measures the time
from setting ``src`` to the first frame presented (``requestVideoFrameCallback``), to
``loadeddata`` and to ``playing``; then a seek to 70 % (to ``seeked`` and to the first frame at
the target). Every request Chromium makes for the video is recorded from CDP Network events
(Range, Content-Range, bytes received, when), and counted again in the server's access log.

Run from the repository root: ``python3 -m bench.first_frame [--rounds 5] [--nginx]``.
"""

import argparse
import os
import re
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx2
from playwright.sync_api import Browser, sync_playwright

from bench import processing
from bench.common import (
    KiB,
    MiB,
    Server,
    display_path,
    environment,
    free_port,
    git_state,
    make_workdir,
    options_of,
    require_free_space,
    servers_stopped_after,
    spawn,
    start_streamport,
    table,
    tool_version,
    write_results,
)
from bench.downloads import NGINX, nginx_config
from bench.processing import served_atoms, sha256_of, upload

CHROMIUM = "/usr/bin/chromium"
# A machine without a display, a GPU, a sandbox-capable user or outside network. Muted
# autoplay is allowed by Chromium's default policy, so no autoplay flag is needed.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
FFMPEG_TIMEOUT_S = 900
UPLOAD_TIMEOUT_S = 600
VARIANTS = ("moov_end", "faststart")
VARIANT_LABELS = {"moov_end": "moov at end", "faststart": "+faststart"}
SEEK_FRACTION = 0.7
# A frame counts as "at the seek target" from this many seconds before it: Chromium presents
# the frame whose time span holds the target, which starts up to one frame earlier.
SEEK_FRAME_SLACK_S = 1.0
NETWORK_EVENTS = (
    "Network.requestWillBeSent",
    "Network.responseReceived",
    "Network.dataReceived",
    "Network.loadingFinished",
    "Network.loadingFailed",
)


@dataclass(frozen=True)
class NetworkProfile:
    """CDP network emulation: latency added to each request, and throughput caps."""

    key: str
    label: str
    latency_ms: float
    down_kbit: float
    up_kbit: float

    @property
    def throttled(self) -> bool:
        """Whether Chromium emulates anything (``loopback`` leaves the network alone)."""
        return self.latency_ms > 0 or self.down_kbit > 0

    def cdp_conditions(self) -> dict[str, Any]:
        """Parameters of ``Network.emulateNetworkConditions`` (throughputs in bytes/s)."""
        return {
            "offline": False,
            "latency": self.latency_ms,
            "downloadThroughput": self.down_kbit * 1000 / 8,
            "uploadThroughput": self.up_kbit * 1000 / 8,
        }

    def describe(self) -> str:
        """``100 ms, 10 Mbit/s down`` or ``no emulation``."""
        if not self.throttled:
            return "no emulation"
        return f"{self.latency_ms:g} ms, {self.down_kbit / 1000:g} Mbit/s down"


PROFILES = {
    p.key: p
    for p in (
        NetworkProfile("loopback", "loopback", 0, 0, 0),
        NetworkProfile("broadband", "home broadband", 20, 50_000, 10_000),
        NetworkProfile("mobile", "mobile", 100, 10_000, 2_000),
        NetworkProfile("slow", "slow", 200, 2_000, 500),
    )
}


@dataclass(frozen=True)
class VideoSpec:
    """A test video: H.264 High + AAC-LC 48 kHz stereo in MP4."""

    key: str
    label: str
    width: int
    height: int
    fps: int
    seconds: int
    video_kbit: int
    gop_frames: int
    # Encoded once, then repeated by stream copy up to ``seconds``: the container, sample
    # tables and bitrate are those of a real recording of that length, at the encoding cost
    # of a short one.
    segment_seconds: int = 10

    def describe(self) -> str:
        """``1920×1080 30 fps, 60 s, 9 Mbit/s``."""
        length = f"{self.seconds} s"
        if self.seconds >= 120 and self.seconds % 60 == 0:
            length = f"{self.seconds // 60} min"
        return (
            f"{self.width}×{self.height} {self.fps} fps, {length}, "
            f"{self.video_kbit / 1000:g} Mbit/s"
        )


def video_specs(args: argparse.Namespace) -> dict[str, VideoSpec]:
    """The phone-like clip and the long recording, sized by the command line."""
    return {
        "phone": VideoSpec(
            "phone", "phone clip", 1920, 1080, 30, args.phone_seconds, 9000, gop_frames=30
        ),
        "long": VideoSpec(
            "long", "long recording", 1280, 720, 30, args.long_seconds, 2500, gop_frames=60
        ),
    }


@dataclass
class Target:
    """One video file as one server serves it."""

    server: str
    video: str
    variant: str
    origin: str
    path: str
    log_path: Path
    facts: dict[str, Any]

    @property
    def url(self) -> str:
        """What the ``<video>`` loads."""
        return f"{self.origin}{self.path}"


# --------------------------------------------------------------------------- media files


def run_ffmpeg(args: Sequence[str]) -> float:
    """``ffmpeg -nostdin -v error -y ARGS`` with this benchmark's longer limit (its videos are
    longer); the seconds it took."""
    return processing.run_ffmpeg(args, FFMPEG_TIMEOUT_S)


def top_level_atoms(path: Path) -> list[dict[str, Any]]:
    """Every top-level atom of an MP4: type, offset and size, from the headers only."""
    size = path.stat().st_size
    atoms: list[dict[str, Any]] = []
    with path.open("rb") as handle:
        offset = 0
        while offset + 8 <= size and len(atoms) < 64:
            handle.seek(offset)
            head = handle.read(16)
            length = int.from_bytes(head[:4], "big")
            if length == 1:
                length = int.from_bytes(head[8:16], "big")
            elif length == 0:
                length = size - offset
            atoms.append({"type": head[4:8].decode("latin-1"), "offset": offset, "size": length})
            if length < 8:
                break
            offset += length
    return atoms


def atom(atoms: Sequence[dict[str, Any]], kind: str) -> dict[str, Any]:
    """The first atom of ``kind``."""
    return next(a for a in atoms if a["type"] == kind)


def make_video(spec: VideoSpec, directory: Path) -> dict[str, dict[str, Any]]:
    """Both layouts of one test video; their facts (path, size, atoms, SHA-256)."""
    segment = directory / f"{spec.key}-segment.mp4"
    moov_end = directory / f"{spec.key}-moov-end.mp4"
    faststart = directory / f"{spec.key}-faststart.mp4"
    seconds = min(spec.segment_seconds, spec.seconds)
    # Temporal noise over the test pattern: every frame differs, as in camera footage, so
    # x264 needs the bitrate a real recording gets (a clean test pattern compresses to little).
    picture = (
        f"testsrc2=size={spec.width}x{spec.height}:rate={spec.fps}:duration={seconds},"
        "noise=alls=12:allf=t"
    )
    kbit = spec.video_kbit
    encode_s = run_ffmpeg(
        ["-f", "lavfi", "-i", picture,
         "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
         "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high", "-pix_fmt", "yuv420p",
         "-b:v", f"{kbit}k", "-maxrate", f"{kbit * 11 // 10}k", "-bufsize", f"{kbit * 11 // 10}k",
         "-g", str(spec.gop_frames), "-keyint_min", str(spec.gop_frames), "-sc_threshold", "0",
         "-c:a", "aac", "-b:a", "128k", "-ac", "2", "-shortest", str(segment)]
    )  # fmt: skip
    loops = max(0, -(-spec.seconds // seconds) - 1)
    # A plain MP4 mux writes moov after mdat, as a camera does.
    loop_s = run_ffmpeg(
        ["-stream_loop", str(loops), "-i", str(segment), "-map", "0", "-c", "copy",
         "-t", str(spec.seconds), str(moov_end)]
    )  # fmt: skip
    remux_s = run_ffmpeg(
        ["-i", str(moov_end), "-map", "0", "-c", "copy", "-movflags", "+faststart", str(faststart)]
    )
    segment.unlink()
    files: dict[str, dict[str, Any]] = {}
    for variant, path in (("moov_end", moov_end), ("faststart", faststart)):
        atoms = top_level_atoms(path)
        kinds = [a["type"] for a in atoms]
        moov_first = kinds.index("moov") < kinds.index("mdat")
        files[variant] = {
            "path": str(path),
            "size": path.stat().st_size,
            "sha256": sha256_of(path),
            "atoms": atoms,
            "moov_first": moov_first,
            "moov_offset": atom(atoms, "moov")["offset"],
            "moov_bytes": atom(atoms, "moov")["size"],
            "mdat_offset": atom(atoms, "mdat")["offset"],
            "seconds": spec.seconds,
            "spec": spec.describe(),
            "ffmpeg_s": {"encode": encode_s, "loop": loop_s, "remux": remux_s},
        }
    if files["moov_end"]["moov_first"] or not files["faststart"]["moov_first"]:
        raise RuntimeError(f"{spec.key}: moov is not where it should be: {files}")
    return files


# --------------------------------------------------------------------------- servers


def start_nginx(workdir: Path, root: Path) -> Server:
    """nginx (one worker, sendfile) serving ``root`` as a static reference server."""
    if not Path(NGINX).exists():
        raise SystemExit(f"{NGINX} is missing: apt-get install -y nginx-light")
    port = free_port()
    (workdir / "nginx-temp").mkdir(exist_ok=True)
    # Without a types map every file would go out as application/octet-stream.
    conf_text = nginx_config(workdir, root, port).replace(
        "default_type application/octet-stream;",
        "default_type application/octet-stream;\n    types { video/mp4 mp4; }",
    )
    conf = workdir / "nginx.conf"
    conf.write_text(conf_text)
    argv = [NGINX, "-c", str(conf), "-p", f"{workdir}/", "-e", str(workdir / "nginx-error.log")]
    return spawn("nginx", argv, dict(os.environ), workdir, workdir / "nginx.log", port)


def log_size(path: Path) -> int:
    """Bytes in a log file so far (0 if it does not exist yet)."""
    try:
        return path.stat().st_size
    except OSError:
        return 0


_CLIENT_PORT = re.compile(r"127\.0\.0\.1:(\d+) - ")


def logged_requests(path: Path, since: int, url_path: str) -> dict[str, int]:
    """GETs of ``url_path`` written to an access log after byte ``since``, and (uvicorn's log
    names the client's port) how many distinct connections they came on."""
    with path.open("rb") as handle:
        handle.seek(since)
        lines = handle.read().decode(errors="replace").splitlines()
    hits = [line for line in lines if f'"GET {url_path} ' in line]
    ports = {m.group(1) for line in hits if (m := _CLIENT_PORT.search(line))}
    return {"requests": len(hits), "connections": len(ports)}


# --------------------------------------------------------------------------- the browser

# Runs in the page: inserts the video, sets src, waits for the first presented frame, then
# (after ``playing`` or ``playWaitMs``) seeks to SEEK_FRACTION of the duration. Times are in
# ms from setting src (from setting currentTime for the seek); wall_* are epoch ms, to line up
# with CDP's network events.
MEASURE_JS = """
async ({src, playWaitMs, timeoutMs, seekFraction, seekSlack}) => {
  const now = () => performance.now();
  const sleep = (ms) => new Promise((resolve) => setTimeout(() => resolve(null), ms));
  const events = {};
  document.body.innerHTML = '';
  const video = document.createElement('video');
  video.muted = true;
  video.autoplay = true;
  video.preload = 'auto';
  video.playsInline = true;
  video.style.width = '640px';
  document.body.appendChild(video);
  for (const name of ['loadstart', 'loadedmetadata', 'loadeddata', 'canplay', 'playing',
                      'waiting', 'error']) {
    video.addEventListener(name, () => { if (!(name in events)) events[name] = now(); });
  }
  const failed = new Promise((resolve) =>
    video.addEventListener('error', () => resolve('error'), {once: true}));
  const firstFrame = new Promise((resolve) =>
    video.requestVideoFrameCallback((t, meta) => resolve({at: now(), meta})));
  const start = now();
  const out = {wall_start: performance.timeOrigin + start};
  video.src = src;
  const first = await Promise.race([firstFrame, failed, sleep(timeoutMs)]);
  if (first && first.at !== undefined) {
    out.first_frame = first.at - start;
    out.first_frame_media_time = first.meta.mediaTime;
    if (!('playing' in events)) {
      await Promise.race([
        new Promise((resolve) => video.addEventListener('playing', resolve, {once: true})),
        sleep(playWaitMs)]);
    }
  }
  for (const name in events) out[name] = events[name] - start;
  out.error = video.error ? (video.error.message || String(video.error.code)) : null;
  out.duration = video.duration;
  if (out.first_frame === undefined || out.error) return out;

  const target = video.duration * seekFraction;
  const seekStart = now();
  out.wall_seek = performance.timeOrigin + seekStart;
  out.seek_target = target;
  const seeked = new Promise((resolve) =>
    video.addEventListener('seeked', () => resolve(now()), {once: true}));
  const atTarget = new Promise((resolve) => {
    const onFrame = (t, meta) => {
      if (meta.mediaTime >= target - seekSlack) resolve({at: now(), meta});
      else video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
  });
  video.currentTime = target;
  const seekedAt = await Promise.race([seeked, failed, sleep(timeoutMs)]);
  if (typeof seekedAt === 'number') out.seeked = seekedAt - seekStart;
  const frame = await Promise.race([atTarget, failed, sleep(timeoutMs)]);
  if (frame && frame.at !== undefined) {
    out.seek_frame = frame.at - seekStart;
    out.seek_frame_media_time = frame.meta.mediaTime;
  }
  out.error = video.error ? (video.error.message || String(video.error.code)) : null;
  return out;
}
"""


def header(headers: dict[str, Any], name: str) -> str | None:
    """A header by case-insensitive name (CDP keeps the server's spelling)."""
    lowered = name.lower()
    return next((str(v) for k, v in headers.items() if k.lower() == lowered), None)


def where_in_file(offset: int, facts: dict[str, Any]) -> str:
    """What a request starting at ``offset`` is after: ``start``, ``moov`` or ``NN %``."""
    if offset < 64 * KiB:
        return "start"
    moov = facts["moov_offset"]
    # Chromium asks for whole 32 KiB blocks, so a moov request starts up to a block early.
    if moov - 64 * KiB <= offset < moov + facts["moov_bytes"]:
        return "moov"
    return f"{offset / facts['size']:.0%}"


def media_requests(
    events: Sequence[tuple[str, dict[str, Any]]], target: Target, page: dict[str, Any]
) -> list[dict[str, Any]]:
    """The requests for the video, from CDP events: Range, status, Content-Range, times (ms
    from setting src), bytes received in all and before the first frame, and how each ended."""
    wall_start = page["wall_start"]
    offset: float | None = None  # CDP timestamps are monotonic seconds; wallTime is epoch s
    requests: dict[str, dict[str, Any]] = {}
    for method, params in events:
        if method == "Network.requestWillBeSent" and offset is None:
            offset = params["wallTime"] - params["timestamp"]
        if offset is None:
            continue
        at = (params["timestamp"] + offset) * 1000 - wall_start
        rid = params["requestId"]
        if method == "Network.requestWillBeSent":
            if params["request"]["url"].split("#")[0] != target.url:
                continue
            range_header = header(params["request"]["headers"], "Range")
            start = 0
            if range_header and (m := re.match(r"bytes=(\d+)-", range_header)):
                start = int(m.group(1))
            requests[rid] = {
                "range": range_header,
                "where": where_in_file(start, target.facts),
                "sent_ms": at,
                "status": None,
                "content_range": None,
                "response_ms": None,
                "end_ms": None,
                "outcome": "open",
                "bytes": 0,
                "chunks": [],
            }
            continue
        request = requests.get(rid)
        if request is None:
            continue
        if method == "Network.responseReceived":
            request["status"] = params["response"]["status"]
            request["content_range"] = header(params["response"]["headers"], "Content-Range")
            request["response_ms"] = at
        elif method == "Network.dataReceived":
            request["bytes"] += params["encodedDataLength"] or params["dataLength"]
            request["chunks"].append((at, params["encodedDataLength"] or params["dataLength"]))
        elif method == "Network.loadingFinished":
            request["outcome"], request["end_ms"] = "finished", at
        elif method == "Network.loadingFailed":
            request["outcome"] = "canceled" if params.get("canceled") else params["errorText"]
            request["end_ms"] = at
    first = page.get("first_frame")
    result = []
    for request in requests.values():
        chunks = request.pop("chunks")
        request["bytes_before_first_frame"] = (
            sum(n for at, n in chunks if at <= first) if first is not None else None
        )
        result.append(request)
    return sorted(result, key=lambda r: r["sent_ms"])


def measure_once(
    browser: Browser, target: Target, profile: NetworkProfile, args: argparse.Namespace
) -> dict[str, Any]:
    """One load and seek of ``target`` in a fresh browser context under ``profile``."""
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    try:
        page = context.new_page()
        # The page shares the video's origin, as the player page does.
        page.goto(f"{target.origin}/healthz")
        cdp = context.new_cdp_session(page)
        events: list[tuple[str, dict[str, Any]]] = []

        def record(method: str, params: dict[str, Any]) -> None:
            events.append((method, params))

        for method in NETWORK_EVENTS:
            cdp.on(method, partial(record, method))
        cdp.send("Network.enable")
        cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
        if profile.throttled:
            cdp.send("Network.emulateNetworkConditions", profile.cdp_conditions())
        since = log_size(target.log_path)
        started = time.monotonic()
        result = page.evaluate(
            MEASURE_JS,
            {
                "src": target.url,
                "playWaitMs": args.play_wait * 1000,
                "timeoutMs": args.timeout * 1000,
                "seekFraction": SEEK_FRACTION,
                "seekSlack": SEEK_FRAME_SLACK_S,
            },
        )
        wall = time.monotonic() - started
        requests = media_requests(events, target, result)
    finally:
        context.close()
    if target.server == "nginx":
        # nginx logs a request when it ends; closing the context ends the open ones.
        time.sleep(0.3)
    seek = None
    if result.get("seeked") is not None and result.get("seek_frame") is not None:
        seek = max(result["seeked"], result["seek_frame"])
    first = result.get("first_frame")
    before_first = [r for r in requests if first is not None and r["sent_ms"] <= first]
    return {
        "page": result,
        "first_frame_ms": first,
        "loadedmetadata_ms": result.get("loadedmetadata"),
        "loadeddata_ms": result.get("loadeddata"),
        "playing_ms": result.get("playing"),
        "seeked_ms": result.get("seeked"),
        "seek_frame_ms": result.get("seek_frame"),
        "seek_ms": seek,
        "error": result.get("error"),
        "requests": requests,
        "requests_before_first_frame": len(before_first) if first is not None else None,
        "bytes_before_first_frame": (
            sum(r["bytes_before_first_frame"] for r in requests) if first is not None else None
        ),
        "requests_after_seek": (
            len([r for r in requests if r["sent_ms"] >= _seek_ms(result)])
            if "wall_seek" in result
            else None
        ),
        "server_log": logged_requests(target.log_path, since, target.path.split("?")[0]),
        "wall_s": wall,
    }


def _seek_ms(page: dict[str, Any]) -> float:
    """When the seek started, in ms from setting src."""
    return float(page["wall_seek"] - page["wall_start"])


# --------------------------------------------------------------------------- the run


class Bench:
    """The videos, the servers, the browser, and every measurement."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.specs = {k: v for k, v in video_specs(args).items() if k in args.videos}
        self.profiles = [PROFILES[k] for k in args.profiles]
        self.servers: list[Server] = []
        self.server_keys: list[str] = ["streamport"]
        self.videos: dict[str, dict[str, dict[str, Any]]] = {}
        self.targets: dict[tuple[str, str, str], Target] = {}
        self.items: dict[str, dict[str, Any]] = {}
        self.checks: dict[str, Any] = {}
        self.runs: list[dict[str, Any]] = []
        self.browser_version = "?"

    def stop(self) -> None:
        """Stop the servers this benchmark started, by their PIDs."""
        for server in self.servers:
            server.stop()

    def prepare(self) -> None:
        """Make the videos, start the servers, upload, and check what they serve."""
        # Each video twice (two layouts), and once more as the server's stored copy.
        expected = sum(
            (spec.video_kbit + 128) * 1000 // 8 * spec.seconds for spec in self.specs.values()
        )
        require_free_space(self.workdir, 4 * expected + 512 * MiB)
        files = self.workdir / "videos"
        files.mkdir()
        for key, spec in self.specs.items():
            print(f"making the {spec.label} ({spec.describe()}) with ffmpeg", flush=True)
            self.videos[key] = make_video(spec, files)
            for variant, facts in self.videos[key].items():
                print(
                    f"  {variant:<9} {facts['size'] / MiB:8.1f} MiB, atoms "
                    f"{' '.join(a['type'] for a in facts['atoms'])}, moov "
                    f"{facts['moov_bytes'] / KiB:.0f} KiB at {facts['moov_offset']}",
                    flush=True,
                )
        largest = sum(f["size"] for v in self.videos.values() for f in v.values())
        streamport = start_streamport(
            self.workdir / "streamport-media",
            largest + 64 * MiB,
            self.workdir / "streamport.log",
            # Processing off: the upload stays byte for byte what was sent (no faststart
            # remux), which is what this benchmark is about.
            {"STREAMPORT_PROCESSING_CONCURRENCY": "0"},
        )
        self.servers.append(streamport)
        with httpx2.Client(
            base_url=streamport.base_url, headers=streamport.auth_headers, timeout=UPLOAD_TIMEOUT_S
        ) as client:
            for video, variants in self.videos.items():
                for variant, facts in variants.items():
                    item, _, seconds = upload(client, Path(facts["path"]))
                    print(f"uploaded {video}/{variant} in {seconds:.1f} s", flush=True)
                    atoms = served_atoms(client, item["stream_url"], item["size"])
                    kinds = [kind for kind, _ in atoms]
                    self.items[f"{video}/{variant}"] = item
                    self.checks[f"{video}/{variant}/uploaded"] = {
                        "sha256_equal": item["sha256"] == facts["sha256"],
                        "size_equal": item["size"] == facts["size"],
                        "served_atoms": kinds,
                        "served_moov_first": kinds.index("moov") < kinds.index("mdat"),
                    }
                    self.targets[("streamport", video, variant)] = Target(
                        "streamport",
                        video,
                        variant,
                        streamport.base_url,
                        item["stream_url"],
                        streamport.log_path,
                        facts,
                    )
        if self.args.nginx:
            nginx = start_nginx(self.workdir, files)
            self.servers.append(nginx)
            self.server_keys.append("nginx")
            for video, variants in self.videos.items():
                for variant, facts in variants.items():
                    self.targets[("nginx", video, variant)] = Target(
                        "nginx",
                        video,
                        variant,
                        nginx.base_url,
                        "/" + Path(facts["path"]).name,
                        self.workdir / "nginx-access.log",
                        facts,
                    )

    def measure(self) -> None:
        """Every cell, ``--rounds`` times: rounds outermost, the two layouts of a video back to
        back (order alternating), each load in a fresh browser context."""
        args = self.args
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=args.chromium, args=CHROMIUM_ARGS, headless=True
            )
            self.browser_version = browser.version
            try:
                # Uncounted: first use of the decoder, the server's lookups, the page cache.
                for _ in range(args.warmup):
                    for target in self.targets.values():
                        measure_once(browser, target, PROFILES["loopback"], args)
                for round_index in range(args.rounds):
                    for profile in self.profiles:
                        for server in self.server_keys:
                            for video in self.specs:
                                order = VARIANTS if round_index % 2 == 0 else VARIANTS[::-1]
                                for variant in order:
                                    self._one(browser, round_index, profile, server, video, variant)
            finally:
                browser.close()

    def _one(
        self,
        browser: Browser,
        round_index: int,
        profile: NetworkProfile,
        server: str,
        video: str,
        variant: str,
    ) -> None:
        target = self.targets[(server, video, variant)]
        run = measure_once(browser, target, profile, self.args)
        run.update(
            round=round_index,
            profile=profile.key,
            server=server,
            video=video,
            variant=variant,
        )
        self.runs.append(run)
        print(
            f"round {round_index + 1}/{self.args.rounds} {profile.key:<9} "
            + (f"{server:<10} " if len(self.server_keys) > 1 else "")
            + f"{video:<5} {VARIANT_LABELS[variant]:<11} first frame {_ms(run['first_frame_ms'])}"
            f", playing {_ms(run['playing_ms'])}, seek {_ms(run['seek_ms'])}, "
            f"{run['requests_before_first_frame']} request(s) "
            f"{_kib(run['bytes_before_first_frame'])} before the first frame"
            + (f", ERROR {run['error']}" if run["error"] else ""),
            flush=True,
        )

    def final_checks(self) -> None:
        """The stored uploads are still the originals: same SHA-256, never processed."""
        streamport = self.servers[0]
        with httpx2.Client(
            base_url=streamport.base_url, headers=streamport.auth_headers, timeout=60
        ) as client:
            for key, item in self.items.items():
                response = client.get(f"/api/media/{item['id']}")
                response.raise_for_status()
                now = response.json()
                self.checks[f"{key}/after"] = {
                    "sha256_unchanged": now["sha256"] == item["sha256"],
                    "processing_state": now["processing"]["state"],
                }


def _ms(value: float | None) -> str:
    return "   none" if value is None else f"{value:6.0f} ms"


def _kib(value: int | None) -> str:
    return "?" if value is None else f"{value / KiB:.0f} KiB"


# --------------------------------------------------------------------------- report

METRICS = (
    "first_frame_ms",
    "loadedmetadata_ms",
    "loadeddata_ms",
    "playing_ms",
    "seek_ms",
    "requests_before_first_frame",
    "bytes_before_first_frame",
)


def spread_of(values: Sequence[float | None]) -> dict[str, Any] | None:
    """Median, min, max and count of the values that are there (``None``: none were)."""
    present = [float(v) for v in values if v is not None]
    if not present:
        return None
    return {
        "median": statistics.median(present),
        "min": min(present),
        "max": max(present),
        "n": len(present),
        "of": len(values),
    }


def summarize(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per server / profile / video / variant: every metric's spread; per server / profile /
    video: the medians' difference and ratio, and the median of per-round differences."""
    cells: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
    for run in runs:
        key = (run["server"], run["profile"], run["video"], run["variant"])
        cells.setdefault(key, []).append(run)
    summary: dict[str, Any] = {}
    for (server, profile, video, variant), cell in cells.items():
        entry = {metric: spread_of([r[metric] for r in cell]) for metric in METRICS}
        entry["errors"] = [r["error"] for r in cell if r["error"]]
        entry["server_requests_per_load"] = spread_of([r["server_log"]["requests"] for r in cell])
        summary.setdefault(server, {}).setdefault(profile, {}).setdefault(video, {})[variant] = (
            entry
        )
    for server, profiles in summary.items():
        for profile, videos in profiles.items():
            for video, variants in videos.items():
                if set(VARIANTS) - set(variants):
                    continue
                comparison: dict[str, Any] = {}
                for metric in ("first_frame_ms", "loadeddata_ms", "playing_ms", "seek_ms"):
                    end, fast = variants["moov_end"][metric], variants["faststart"][metric]
                    if end is None or fast is None:
                        continue
                    pairs = _paired(runs, server, profile, video, metric)
                    comparison[metric] = {
                        "difference_of_medians": end["median"] - fast["median"],
                        "ratio_of_medians": end["median"] / fast["median"]
                        if fast["median"]
                        else None,
                        "median_paired_difference": statistics.median(pairs) if pairs else None,
                    }
                variants["comparison"] = comparison
    return summary


def _paired(
    runs: Sequence[dict[str, Any]], server: str, profile: str, video: str, metric: str
) -> list[float]:
    """moov-at-end minus faststart, round by round (the two loads ran back to back)."""
    by_round: dict[int, dict[str, float]] = {}
    for run in runs:
        if (run["server"], run["profile"], run["video"]) == (server, profile, video):
            if run[metric] is not None:
                by_round.setdefault(run["round"], {})[run["variant"]] = run[metric]
    return [r["moov_end"] - r["faststart"] for r in by_round.values() if len(r) == 2]


def _cell(entry: dict[str, Any] | None, digits: int = 0, scale: float = 1.0) -> str:
    if entry is None:
        return "n/a"
    med, low, high = (entry[k] / scale for k in ("median", "min", "max"))
    text = f"{med:.{digits}f} ({low:.{digits}f}–{high:.{digits}f})"
    if entry["n"] < entry["of"]:
        text += f" [{entry['n']}/{entry['of']}]"
    return text


def typical_requests(runs: Sequence[dict[str, Any]], key: tuple[str, str, str, str]) -> str:
    """The requests up to the first frame of the run with the median first frame, e.g.
    ``bytes=0- start 38 KiB canceled · bytes=70451200- moov 72 KiB finished``."""
    cell = [
        r
        for r in runs
        if (r["server"], r["profile"], r["video"], r["variant"]) == key
        and r["first_frame_ms"] is not None
    ]
    if not cell:
        return "n/a"
    cell.sort(key=lambda r: r["first_frame_ms"])
    run = cell[(len(cell) - 1) // 2]
    parts = []
    for request in run["requests"]:
        if request["sent_ms"] > run["first_frame_ms"]:
            continue
        outcome = request["outcome"]
        if outcome == "open" or (
            request["end_ms"] is not None and request["end_ms"] > run["first_frame_ms"]
        ):
            outcome = "still open"
        parts.append(
            f"{request['range'] or 'no Range'} ({request['where']}, "
            f"{_kib(request['bytes_before_first_frame'])}, {outcome})"
        )
    return " → ".join(parts)


def report(
    summary: dict[str, Any],
    runs: Sequence[dict[str, Any]],
    bench: Bench,
) -> str:
    """The tables: first frame and seek; the media events; the requests."""
    args = bench.args
    several = len(bench.server_keys) > 1
    main_rows, event_rows, request_rows = [], [], []
    for server in bench.server_keys:
        for profile in bench.profiles:
            for video in bench.specs:
                variants = summary.get(server, {}).get(profile.key, {}).get(video)
                if not variants or "comparison" not in variants:
                    continue
                end, fast = variants["moov_end"], variants["faststart"]
                first = variants["comparison"].get("first_frame_ms", {})
                difference = first.get("difference_of_medians")
                ratio = first.get("ratio_of_medians")
                in_latency = (
                    f"{difference / profile.latency_ms:.1f}"
                    if difference is not None and profile.latency_ms
                    else "–"
                )
                lead = [server] if several else []
                lead += [f"{profile.label} ({profile.describe()})", bench.specs[video].label]
                main_rows.append(
                    [
                        *lead,
                        _cell(end["first_frame_ms"]),
                        _cell(fast["first_frame_ms"]),
                        "n/a" if difference is None else f"{difference:+.0f}",
                        "n/a" if ratio is None else f"{ratio:.2f}",
                        in_latency,
                        _cell(end["seek_ms"]),
                        _cell(fast["seek_ms"]),
                    ]
                )
                event_rows.append(
                    [
                        *lead,
                        *(
                            f"{_cell(end[m])} / {_cell(fast[m])}"
                            for m in ("loadedmetadata_ms", "loadeddata_ms", "playing_ms")
                        ),
                    ]
                )
                for variant in VARIANTS:
                    entry = variants[variant]
                    request_rows.append(
                        [
                            *lead,
                            VARIANT_LABELS[variant],
                            _cell(entry["requests_before_first_frame"]),
                            _cell(entry["bytes_before_first_frame"], 0, KiB),
                            typical_requests(runs, (server, profile.key, video, variant)),
                        ]
                    )
    lead_headers = (["server"] if several else []) + ["network", "video"]
    main_table = table(
        [
            *lead_headers,
            "first frame, moov at end",
            "first frame, +faststart",
            "Δ ms",
            "ratio",
            "Δ / latency",
            "seek 70 %, moov at end",
            "seek 70 %, +faststart",
        ],
        main_rows,
    )
    event_table = table(
        [
            *lead_headers,
            "loadedmetadata (end / fast)",
            "loadeddata (end / fast)",
            "playing (end / fast)",
        ],
        event_rows,
    )
    request_table = table(
        [
            *lead_headers,
            "layout",
            "requests before first frame",
            "KiB received before first frame",
            "requests of the median run, up to its first frame",
        ],
        request_rows,
    )
    videos = "; ".join(
        f"{spec.label}: {spec.describe()}, "
        + ", ".join(
            f"{VARIANT_LABELS[v]} {f['size'] / MiB:.0f} MiB" for v, f in bench.videos[key].items()
        )
        + f", moov {bench.videos[key]['moov_end']['moov_bytes'] / KiB:.0f} KiB"
        for key, spec in bench.specs.items()
    )
    notes = [
        f"{args.rounds} rounds per cell; ms, median (min–max) [n/N when some loads did not get "
        "there]. Δ and ratio: moov at end against +faststart, of the medians. Δ / latency: the "
        "extra time in units of the profile's emulated per-request latency.",
        "first frame: src set → first requestVideoFrameCallback. seek: currentTime = 70 % → "
        "both `seeked` and a frame at the target presented. playing: reached only if it came "
        f"within {args.play_wait:g} s of the first frame (the seek starts then regardless).",
        f"Videos: {videos}. Chromium {bench.browser_version}, CDP network emulation (latency "
        "per request, shared throughput cap; no TCP/TLS handshakes or slow start modelled).",
    ]
    failed = [
        f"{r['server']}/{r['profile']}/{r['video']}/{r['variant']} round {r['round'] + 1}: "
        f"{r['error'] or 'no first frame'}"
        for r in runs
        if r["error"] or r["first_frame_ms"] is None
    ]
    if failed:
        notes.append("Failed loads: " + "; ".join(failed))
    counts = ", ".join(
        f"{server} {sum(len(r['requests']) for r in runs if r['server'] == server)} in CDP "
        f"events, {sum(r['server_log']['requests'] for r in runs if r['server'] == server)} in "
        "its access log"
        for server in bench.server_keys
    )
    notes.append(
        f"Requests for the videos over all measured loads: {counts} (a request still in its "
        "emulated latency when the context closes never reaches the server)."
    )
    return (
        "Time to first frame and seek, ms\n\n"
        f"{main_table}\n\nMedia events, ms from src (moov at end / +faststart)\n\n"
        f"{event_table}\n\nRequests for the video\n\n{request_table}\n\n" + "\n".join(notes)
    )


def checks_passed(checks: dict[str, Any]) -> bool:
    """Uploads stored and served unchanged, in the layout they were made with."""
    ok = True
    for key, check in checks.items():
        if key.endswith("/uploaded"):
            moov_first = key.split("/")[1] == "faststart"
            ok &= check["sha256_equal"] and check["size_equal"]
            ok &= check["served_moov_first"] == moov_first
        elif key.endswith("/after"):
            ok &= check["sha256_unchanged"]
    return bool(ok)


def _choices(allowed: Sequence[str]) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        chosen = [part.strip() for part in text.split(",") if part.strip()]
        unknown = [part for part in chosen if part not in allowed]
        if unknown or not chosen:
            raise argparse.ArgumentTypeError(f"choose from {', '.join(allowed)}")
        return chosen

    return parse


def main() -> int:
    """Command line entry."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="loads per cell (5)")
    parser.add_argument(
        "--profiles",
        type=_choices(list(PROFILES)),
        default=list(PROFILES),
        help=f"network profiles, comma-separated ({','.join(PROFILES)})",
    )
    parser.add_argument(
        "--videos",
        type=_choices(["phone", "long"]),
        default=["phone", "long"],
        help="test videos, comma-separated (phone,long)",
    )
    parser.add_argument("--phone-seconds", type=int, default=60, help="phone clip length (60)")
    parser.add_argument(
        "--long-seconds", type=int, default=1800, help="long recording length (1800)"
    )
    parser.add_argument(
        "--play-wait",
        type=float,
        default=3.0,
        help="seconds to wait for `playing` after the first frame before seeking (3)",
    )
    parser.add_argument("--timeout", type=float, default=60.0, help="per phase, seconds (60)")
    parser.add_argument("--warmup", type=int, default=1, help="uncounted loads per file (1)")
    parser.add_argument("--nginx", action="store_true", help="also serve the files from nginx")
    parser.add_argument("--chromium", default=CHROMIUM, help=f"the browser ({CHROMIUM})")
    parser.add_argument("--tmp-dir", type=Path, help="where the videos and servers' data go")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    if args.rounds < 1 or args.phone_seconds < 1 or args.long_seconds < 1:
        parser.error("--rounds and video lengths must be at least 1")
    for tool in ("ffmpeg", args.chromium):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is missing")

    started = time.monotonic()
    workdir = make_workdir(args.tmp_dir, "streamport-bench-first-frame-")
    bench = Bench(args, workdir)
    with servers_stopped_after(bench, workdir, args.keep):
        env = environment(workdir)
        print(
            f"first-frame benchmark in {workdir}, {env['cpus']} CPUs, Python {env['python']}",
            flush=True,
        )
        bench.prepare()
        bench.measure()
        bench.final_checks()

    summary = summarize(bench.runs)
    text = report(summary, bench.runs, bench)
    correct = checks_passed(bench.checks)
    path = write_results(
        "first_frame",
        {
            "benchmark": "first_frame",
            "environment": {
                **env,
                "chromium": bench.browser_version,
                "chromium_args": CHROMIUM_ARGS,
                "playwright": metadata.version("playwright"),
                "ffmpeg": tool_version(["ffmpeg", "-version"]),
                "nginx": tool_version([NGINX, "-v"]) if args.nginx else None,
            },
            "git": git_state(),
            "argv": sys.argv,
            "options": options_of(args),
            "profiles": {p.key: vars(p) for p in bench.profiles},
            "videos": bench.videos,
            "items": bench.items,
            "checks": bench.checks,
            "checks_passed": correct,
            "summary": summary,
            "runs": bench.runs,
            "seconds": round(time.monotonic() - started, 1),
        },
    )
    print()
    print(text)
    if not correct:
        print(f"\nCHECKS FAILED: {bench.checks}")
    print(f"\nresults: {display_path(path)} ({time.monotonic() - started:.0f} s in all)")
    return 0 if correct else 2


if __name__ == "__main__":
    sys.exit(main())
