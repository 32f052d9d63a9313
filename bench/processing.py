"""Background processing: how long a job takes, and what two running jobs cost the requests.

1. Processing time: a 30 s 1280×720 H.264/AAC MP4 with its index (moov) at the end is uploaded
   ``--uploads`` times (sequentially) to a fresh ``streamport serve``, and the same video with
   ``+faststart`` as many times, interleaved. For each upload: the wall time from the 201 to
   ``processing.state == "done"`` (``GET /api/media/{id}`` every 50 ms), split by the
   ``processing.step`` the polls saw, and checks that the stored bytes are still the uploaded
   ones (same ``sha256``, the same atom order when served): processing never rewrites them.
2. Requests while two jobs run: a server with ``STREAMPORT_PROCESSING_CONCURRENCY=2`` and
   ``STREAMPORT_TRANSCODE=1``; ``wrk -t1 -c8 -d8s`` on ``GET /api/media``, ``GET /`` and random
   64 KiB ranges of a 100 MiB file, idle, then while two HEVC→H.264 transcodes run, then idle
   again. Requests/s and p99 latency, and the CPU each party used meanwhile.

Run from the repository root: ``python3 -m bench.processing [--uploads 5]``.
"""

import argparse
import hashlib
import os
import random
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx2
import psutil

from bench.common import (
    UPLOAD_FIELDS,
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
    settle,
    spread,
    start_streamport,
    table,
    tool_version,
    write_results,
)
from bench.downloads import WRK_SCRIPT, parse_wrk
from bench.upload_speed import make_random_file

RANGE_BYTES = 64 * KiB
JOB_TIMEOUT_S = 300.0
TRANSCODE_START_TIMEOUT_S = 180.0
FFMPEG_TIMEOUT_S = 300
# Where the job's transcode progress starts and how much of the bar it spans
# (app/processing/processor.py: 0.15 + 0.8 × the fraction ffmpeg reports).
TRANSCODE_PROGRESS_START = 0.15
TRANSCODE_PROGRESS_SPAN = 0.8
VARIANTS = ("moov_end", "faststart")
VARIANT_LABELS = {"moov_end": "moov at the end", "faststart": "+faststart"}
PHASES = ("idle_before", "two_jobs", "idle_after")
PHASE_LABELS = {"idle_before": "idle", "two_jobs": "two jobs", "idle_after": "idle, after"}
TARGETS = ("api", "html", "range")
TARGET_LABELS = {
    "api": "GET /api/media (JSON)",
    "html": "GET / (HTML catalog)",
    "range": "random 64 KiB Range of stream_url",
}
# Labels of what the polls saw, in the order a job goes through them.
STEP_ORDER = ("pending", "claimed", "probing", "poster", "transcode")


# --------------------------------------------------------------------------- media files


def run_ffmpeg(args: Sequence[str], timeout_s: float = FFMPEG_TIMEOUT_S) -> float:
    """``ffmpeg -nostdin -v error -y ARGS``; the seconds it took."""
    argv = ["ffmpeg", "-nostdin", "-v", "error", "-y", *args]
    started = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s)
    if done.returncode != 0:
        raise RuntimeError(f"ffmpeg exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    return time.monotonic() - started


def lavfi_inputs(seconds: int) -> list[str]:
    """The test picture (1280×720, 25 fps) and a 440 Hz tone, ``seconds`` long."""
    return [
        "-f", "lavfi", "-i", f"testsrc2=size=1280x720:rate=25:duration={seconds}",
        "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
    ]  # fmt: skip


def make_h264_videos(directory: Path, seconds: int) -> dict[str, Any]:
    """The H.264/AAC MP4 with moov at the end, and a ``+faststart`` stream copy of it."""
    moov_end = directory / "moov-end.mp4"
    faststart = directory / "faststart.mp4"
    encode = run_ffmpeg(
        [*lavfi_inputs(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
         "-g", "50", "-c:a", "aac", "-b:a", "96k", "-shortest", str(moov_end)]
    )  # fmt: skip
    remux = run_ffmpeg(
        ["-i", str(moov_end), "-map", "0", "-c", "copy", "-movflags", "+faststart", str(faststart)]
    )
    files = {}
    for key, path in (("moov_end", moov_end), ("faststart", faststart)):
        files[key] = {
            "path": str(path),
            "size": path.stat().st_size,
            "sha256": sha256_of(path),
            "top_level_atoms": [a[0] for a in local_atoms(path)],
            "moov_first": moov_first(local_atoms(path)),
        }
    if files["moov_end"]["moov_first"] is not False or files["faststart"]["moov_first"] is not True:
        raise RuntimeError(f"the test videos do not have their moov where expected: {files}")
    return {"seconds": seconds, "encode_s": encode, "remux_s": remux, "files": files}


def make_hevc_video(directory: Path, segment: int, total: int) -> dict[str, Any]:
    """A 1280×720 HEVC/AAC MKV: ``segment`` seconds encoded (libx265 ultrafast), then looped by
    stream copy up to ``total`` seconds (cheap to make, as costly to transcode as encoded)."""
    encoded = directory / "hevc-segment.mkv"
    target = directory / "hevc.mkv"
    encode = run_ffmpeg(
        [*lavfi_inputs(segment), "-c:v", "libx265", "-preset", "ultrafast",
         "-x265-params", "log-level=error", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "96k",
         "-shortest", str(encoded)]
    )  # fmt: skip
    loops = max(0, -(-total // segment) - 1)
    loop = run_ffmpeg(
        ["-stream_loop", str(loops), "-i", str(encoded), "-map", "0", "-c", "copy",
         "-t", str(total), str(target)]
    )  # fmt: skip
    return {
        "path": str(target),
        "size": target.stat().st_size,
        "segment_seconds": segment,
        "seconds": total,
        "encode_s": encode,
        "loop_s": loop,
    }


def sha256_of(path: Path) -> str:
    """SHA-256 of a local file."""
    hasher = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(4 * MiB):
            hasher.update(chunk)
    return hasher.hexdigest()


def top_level_atoms(read_at: Callable[[int, int], bytes], size: int) -> list[tuple[str, int]]:
    """(type, offset) of an MP4's top-level atoms, up to moov and mdat both, from their headers
    only (``read_at(offset, count)`` returns the bytes there)."""
    atoms: list[tuple[str, int]] = []
    offset = 0
    while offset + 8 <= size and len(atoms) < 64:
        head = read_at(offset, 16)
        length = int.from_bytes(head[:4], "big")
        kind = head[4:8].decode("latin-1")
        if length == 1:
            length = int.from_bytes(head[8:16], "big")
        elif length == 0:
            length = size - offset
        atoms.append((kind, offset))
        if length < 8 or {"moov", "mdat"} <= {a[0] for a in atoms}:
            break
        offset += length
    return atoms


def local_atoms(path: Path) -> list[tuple[str, int]]:
    """Top-level atoms of a local MP4."""
    with path.open("rb") as handle:

        def read_at(offset: int, count: int) -> bytes:
            handle.seek(offset)
            return handle.read(count)

        return top_level_atoms(read_at, path.stat().st_size)


def served_atoms(client: httpx2.Client, url: str, size: int) -> list[tuple[str, int]]:
    """Top-level atoms of an MP4 as the server sends it (``Range`` requests on ``url``)."""

    def read_at(offset: int, count: int) -> bytes:
        end = min(offset + count, size) - 1
        response = client.get(url, headers={"Range": f"bytes={offset}-{end}"})
        if response.status_code != 206:
            raise RuntimeError(f"range of {url} answered {response.status_code}")
        return response.content

    return top_level_atoms(read_at, size)


def moov_first(atoms: Sequence[tuple[str, int]]) -> bool | None:
    """Whether moov comes before mdat (``None`` if either is missing)."""
    kinds = [kind for kind, _ in atoms]
    if "moov" not in kinds or "mdat" not in kinds:
        return None
    return kinds.index("moov") < kinds.index("mdat")


# --------------------------------------------------------------------------- the API


def upload(client: httpx2.Client, path: Path) -> tuple[dict[str, Any], float, float]:
    """``POST /api/media`` (multipart fields ``UPLOAD_FIELDS`` and ``file``; the client sends
    the server's token); the stored item, the monotonic time the 201 arrived, and the seconds
    the upload took."""
    started = time.monotonic()
    with path.open("rb") as handle:
        response = client.post(
            "/api/media", data=UPLOAD_FIELDS, files={"file": (path.name, handle)}
        )
    answered = time.monotonic()
    if response.status_code != 201:
        raise RuntimeError(f"upload answered {response.status_code}: {response.text[:500]}")
    [item] = response.json()["items"]
    return dict(item), answered, answered - started


def get_item(client: httpx2.Client, media_id: str) -> dict[str, Any]:
    """``GET /api/media/{id}``."""
    response = client.get(f"/api/media/{media_id}")
    response.raise_for_status()
    return dict(response.json())


def delete_item(client: httpx2.Client, media_id: str) -> None:
    """``DELETE /api/media/{id}``."""
    client.delete(f"/api/media/{media_id}").raise_for_status()


def step_label(processing: dict[str, Any]) -> str:
    """What a poll saw: the step of a running job, ``claimed`` before its first step, else the
    state (pending, done, failed, skipped)."""
    if processing["state"] == "running":
        return str(processing["step"] or "claimed")
    return str(processing["state"])


def poll_until_finished(
    client: httpx2.Client, media_id: str, since: float, interval: float
) -> tuple[list[tuple[float, str, float]], dict[str, Any]]:
    """Poll the media every ``interval`` seconds until its job is no longer pending or
    running; every poll's (seconds since ``since``, label, progress), and the last item."""
    observations: list[tuple[float, str, float]] = []
    tick = time.monotonic()
    while True:
        item = get_item(client, media_id)
        now = time.monotonic()
        processing = item["processing"]
        observations.append((now - since, step_label(processing), processing["progress"]))
        if processing["state"] not in ("pending", "running"):
            return observations, item
        if now - since > JOB_TIMEOUT_S:
            raise RuntimeError(f"media {media_id} not processed after {JOB_TIMEOUT_S:.0f} s")
        tick += interval
        time.sleep(max(0.0, tick - time.monotonic()))


def step_split(observations: Sequence[tuple[float, str, float]]) -> dict[str, float]:
    """Seconds per label: each from the first poll that saw it (the first label from the 201)
    to the first poll that saw the next; the end state itself takes no time."""
    split: dict[str, float] = {}
    if not observations:
        return split
    start, current = 0.0, observations[0][1]
    for at, label, _ in observations[1:]:
        if label != current:
            split[current] = split.get(current, 0.0) + at - start
            start, current = at, label
    return split


# --------------------------------------------------------------------------- CPU accounting


def subprocess_cpu(server: psutil.Process) -> float:
    """CPU seconds of the server's subprocesses (ffmpeg, ffprobe): those it has reaped plus
    those still running."""
    times = server.cpu_times()
    total = times.children_user + times.children_system
    for child in server.children(recursive=True):
        try:
            child_times = child.cpu_times()
        except psutil.Error:
            continue
        total += child_times.user + child_times.system
    return float(total)


def ffmpeg_children(server: psutil.Process) -> list[psutil.Process]:
    """The server's ffmpeg subprocesses running now."""
    found = []
    for child in server.children(recursive=True):
        try:
            if child.name() == "ffmpeg":
                found.append(child)
        except psutil.Error:
            continue
    return found


def thread_facts(processes: Sequence[psutil.Process]) -> list[dict[str, int]]:
    """Threads and nice value of each process (those still running)."""
    facts = []
    for process in processes:
        try:
            threads, nice = process.num_threads(), process.nice()
        except psutil.Error:
            continue
        facts.append({"pid": process.pid, "threads": threads, "nice": nice})
    return facts


def machine_cpu() -> tuple[float, float]:
    """Busy and stolen CPU seconds of the whole machine so far (all cores)."""
    t = psutil.cpu_times()
    steal = getattr(t, "steal", 0.0)
    busy = t.user + t.nice + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)
    return float(busy), float(steal)


def own_children_cpu() -> float:
    """CPU seconds of this process's reaped subprocesses (e.g. wrk once it has exited)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class CpuWindow:
    """CPU used, in cores (CPU seconds / wall seconds), by each party while in the block."""

    server: psutil.Process
    start: dict[str, float] = field(default_factory=dict)
    cores: dict[str, float] = field(default_factory=dict)

    def _read(self) -> dict[str, float]:
        times = self.server.cpu_times()
        busy, steal = machine_cpu()
        return {
            "at": time.monotonic(),
            "server": times.user + times.system,
            "server_subprocesses": subprocess_cpu(self.server),
            "clients": own_children_cpu(),
            "machine_busy": busy,
            "machine_steal": steal,
        }

    def __enter__(self) -> "CpuWindow":
        self.start = self._read()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        end = self._read()
        wall = end["at"] - self.start["at"]
        self.cores = {
            key: (end[key] - self.start[key]) / wall if wall > 0 else 0.0
            for key in end
            if key != "at"
        }
        self.cores["seconds"] = wall


# --------------------------------------------------------------------------- 1. job times


def time_one_job(
    client: httpx2.Client, server: Server, path: Path, interval: float
) -> dict[str, Any]:
    """Upload ``path``, poll its job to the end; times, step split and checks."""
    process = psutil.Process(server.pid)
    tools_cpu = subprocess_cpu(process)
    server_cpu = sum(process.cpu_times()[:2])
    started = time.monotonic()
    item, answered, upload_s = upload(client, path)
    observations, final = poll_until_finished(client, item["id"], answered, interval)
    done_at = observations[-1][0]
    tools_cpu = subprocess_cpu(process) - tools_cpu
    server_cpu = sum(process.cpu_times()[:2]) - server_cpu
    atoms = served_atoms(client, final["stream_url"], final["size"])
    delete_item(client, item["id"])
    return {
        "media_id": item["id"],
        "upload_s": upload_s,
        "answered_to_done_s": done_at,
        "upload_start_to_done_s": answered - started + done_at,
        "state": final["processing"]["state"],
        "error": final["processing"]["error"],
        "steps_seen": list(dict.fromkeys(label for _, label, _ in observations)),
        "split_s": step_split(observations),
        "polls": len(observations),
        "subprocess_cpu_s": tools_cpu,
        "server_cpu_s": server_cpu,
        "sha256_uploaded": item["sha256"],
        "sha256_after": final["sha256"],
        "sha256_changed": final["sha256"] != item["sha256"],
        "size_uploaded": item["size"],
        "size_after": final["size"],
        "served_atoms": [kind for kind, _ in atoms],
        "served_moov_first": moov_first(atoms),
        "duration": final["duration"],
        "poster": final["poster_url"] is not None,
        "thumbnail": final["thumbnail_url"] is not None,
        "observations": [[round(at, 3), label, progress] for at, label, progress in observations],
    }


def job_checks(run: dict[str, Any], variant: str, video_seconds: int) -> dict[str, bool]:
    """What must hold for the job of one upload: the bytes served are the bytes uploaded."""
    return {
        "done": run["state"] == "done",
        "sha256_unchanged": not run["sha256_changed"],
        "no_faststart_step": "faststart" not in run["steps_seen"],
        "served_as_uploaded": run["served_moov_first"] is (variant == "faststart"),
        "poster_and_thumbnail": run["poster"] and run["thumbnail"],
        "duration": run["duration"] is not None and abs(run["duration"] - video_seconds) < 0.5,
    }


def measure_job_times(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Part 1: make the test videos, then time ``--uploads`` jobs of each, interleaved."""
    print(f"making the {args.video_seconds} s 1280x720 H.264/AAC test video", flush=True)
    videos = make_h264_videos(workdir, args.video_seconds)
    paths = {key: Path(videos["files"][key]["path"]) for key in VARIANTS}
    extra_env = {"STREAMPORT_PROCESSING_CONCURRENCY": "1"}
    server = start_streamport(workdir / "media-times", GiB, workdir / "times.log", extra_env)
    runs: dict[str, list[dict[str, Any]]] = {key: [] for key in VARIANTS}
    try:
        with httpx2.Client(
            base_url=server.base_url, headers=server.auth_headers, timeout=60
        ) as client:
            # One job first, not counted: the first request and job of a fresh process.
            warm_up = time_one_job(client, server, paths["faststart"], args.poll_interval)
            for index in range(args.uploads):
                order = VARIANTS if index % 2 == 0 else VARIANTS[::-1]
                for variant in order:
                    settle()
                    run = time_one_job(client, server, paths[variant], args.poll_interval)
                    run["checks"] = job_checks(run, variant, args.video_seconds)
                    runs[variant].append(run)
                    split = ", ".join(f"{k} {v:.2f}" for k, v in run["split_s"].items())
                    ok = "ok" if all(run["checks"].values()) else f"CHECK FAILED {run['checks']}"
                    print(
                        f"job {index + 1}/{args.uploads} {VARIANT_LABELS[variant]:<24} "
                        f"{run['answered_to_done_s']:6.2f} s ({split}) {ok}",
                        flush=True,
                    )
    except BaseException:
        print(f"server log tail:\n{server.log_tail()}", file=sys.stderr)
        raise
    finally:
        server.stop()
    return {"videos": videos, "env": extra_env, "warm_up": warm_up, "runs": runs}


def summarize_job_times(part: dict[str, Any]) -> dict[str, Any]:
    """Per variant: spreads of the times, the step split, CPU; whether every check held."""
    summary: dict[str, Any] = {}
    for variant, runs in part["runs"].items():
        labels = [s for s in STEP_ORDER if any(s in r["split_s"] for r in runs)]
        summary[variant] = {
            "uploads": len(runs),
            "answered_to_done_s": spread([r["answered_to_done_s"] for r in runs]),
            "upload_start_to_done_s": spread([r["upload_start_to_done_s"] for r in runs]),
            "upload_s": spread([r["upload_s"] for r in runs]),
            "split_s": {s: spread([r["split_s"].get(s, 0.0) for r in runs]) for s in labels},
            "subprocess_cpu_s": spread([r["subprocess_cpu_s"] for r in runs]),
            "server_cpu_s": spread([r["server_cpu_s"] for r in runs]),
            "checks_ok": all(all(r["checks"].values()) for r in runs),
            "failed_checks": sorted({k for r in runs for k, ok in r["checks"].items() if not ok}),
        }
    return summary


# --------------------------------------------------------------------------- 2. requests


def run_wrk(url: str, script: Path | None, args: argparse.Namespace) -> dict[str, Any]:
    """``wrk -tT -cC -dDs --latency [-s SCRIPT] URL``, parsed."""
    argv = ["wrk", f"-t{args.wrk_threads}", f"-c{args.wrk_connections}"]
    argv += [f"-d{args.wrk_seconds}s", "--latency"]
    if script is not None:
        argv += ["-s", str(script)]
    done = subprocess.run(
        [*argv, url], capture_output=True, text=True, timeout=args.wrk_seconds + 60
    )
    if done.returncode != 0:
        raise RuntimeError(f"wrk exited {done.returncode}: {done.stderr}\n{done.stdout}")
    return parse_wrk(done.stdout)


def check_range(client: httpx2.Client, url: str, source: Path, start: int) -> bool:
    """A ``Range`` of 64 KiB at ``start``: 206 with exactly those bytes of ``source``."""
    end = start + RANGE_BYTES - 1
    response = client.get(url, headers={"Range": f"bytes={start}-{end}"})
    with source.open("rb") as handle:
        handle.seek(start)
        expected = handle.read(RANGE_BYTES)
    return response.status_code == 206 and response.content == expected


def job_snapshot(client: httpx2.Client, media_ids: Sequence[str]) -> list[dict[str, Any]]:
    """The processing state of each media."""
    return [dict(get_item(client, media_id)["processing"]) for media_id in media_ids]


def transcoding(snapshot: Sequence[dict[str, Any]]) -> bool:
    """Whether every job is running its transcode step."""
    return all(s["state"] == "running" and s["step"] == "transcode" for s in snapshot)


def wait_for_transcodes(
    client: httpx2.Client, server: psutil.Process, media_ids: Sequence[str]
) -> float:
    """Wait until every job runs step ``transcode`` and as many ffmpeg processes run; the
    seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < TRANSCODE_START_TIMEOUT_S:
        snapshot = job_snapshot(client, media_ids)
        if transcoding(snapshot) and len(ffmpeg_children(server)) >= len(media_ids):
            return time.monotonic() - started
        if any(s["state"] not in ("pending", "running") for s in snapshot):
            raise RuntimeError(f"a job ended before its transcode: {snapshot}")
        time.sleep(0.05)
    raise RuntimeError(f"the jobs did not reach their transcode: {job_snapshot(client, media_ids)}")


def wait_no_ffmpeg(server: psutil.Process, timeout: float = 30.0) -> float:
    """Wait until the server runs no ffmpeg; the seconds waited."""
    started = time.monotonic()
    while ffmpeg_children(server):
        if time.monotonic() - started > timeout:
            raise RuntimeError("ffmpeg still runs after its media were deleted")
        time.sleep(0.1)
    return time.monotonic() - started


def transcode_speed(
    before: Sequence[dict[str, Any]], after: Sequence[dict[str, Any]], video_s: float, wall: float
) -> float | None:
    """Seconds of video transcoded per wall second, all jobs together, from their progress."""
    if wall <= 0 or not before:
        return None
    done = 0.0
    for first, last in zip(before, after, strict=True):
        if first["step"] != "transcode":
            return None
        end = 1.0 if last["state"] == "done" else last["progress"]
        done += max(0.0, end - first["progress"]) / TRANSCODE_PROGRESS_SPAN * video_s
    return done / wall


class LoadBench:
    """Part 2: one server (concurrency 2, transcode on), its files, and every window."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.random_file = workdir / "random.bin"
        self.windows: list[dict[str, Any]] = []
        self.setup: dict[str, Any] = {}
        self.range_checks: dict[str, list[bool]] = {}
        self.rng = random.Random(args.seed)

    def run(self) -> dict[str, Any]:
        """Make the files, start the server, measure idle, under two jobs, idle again."""
        args = self.args
        print(
            f"making a {args.hevc_seconds} s 1280x720 HEVC/AAC MKV "
            f"({args.hevc_segment_seconds} s encoded, looped by stream copy)",
            flush=True,
        )
        hevc = make_hevc_video(self.workdir, args.hevc_segment_seconds, args.hevc_seconds)
        hevc_path = Path(hevc["path"])
        make_random_file(self.random_file, args.random_mib * MiB)
        placeholder = self.workdir / "placeholder.bin"
        placeholder.write_bytes(os.urandom(64 * KiB))
        extra_env = {"STREAMPORT_PROCESSING_CONCURRENCY": "2", "STREAMPORT_TRANSCODE": "1"}
        server = start_streamport(
            self.workdir / "media-load", GiB, self.workdir / "load.log", extra_env
        )
        process = psutil.Process(server.pid)
        script = self.workdir / "ranges.lua"
        try:
            with httpx2.Client(
                base_url=server.base_url, headers=server.auth_headers, timeout=60
            ) as client:
                stored, _, _ = upload(client, self.random_file)
                urls = {
                    "api": f"{server.base_url}/api/media",
                    "html": f"{server.base_url}/",
                    "range": f"{server.base_url}{stored['stream_url']}",
                }
                script.write_text(
                    WRK_SCRIPT.format(size=stored["size"], span=RANGE_BYTES, seed=args.seed)
                )
                self.setup = {
                    "hevc": hevc,
                    "random_file": {"size": stored["size"], "media_id": stored["id"]},
                    "env": extra_env,
                    "urls": urls,
                }
                # The catalog holds three items in every phase: the random file and two
                # placeholders (tiny files, no processing), the placeholders replaced by the two
                # videos while they are processed.
                placeholders = [upload(client, placeholder)[0]["id"] for _ in range(2)]
                settle()
                self._phase("idle_before", client, process, urls, script, [])

                for media_id in placeholders:
                    delete_item(client, media_id)
                videos = [upload(client, hevc_path)[0]["id"] for _ in range(2)]
                waited = wait_for_transcodes(client, process, videos)
                self.setup["seconds_to_both_transcoding"] = waited
                print(f"both jobs transcoding after {waited:.1f} s", flush=True)
                self._phase("two_jobs", client, process, urls, script, videos)
                self.setup["jobs_at_end"] = job_snapshot(client, videos)

                if not args.skip_idle_after:
                    for media_id in videos:
                        delete_item(client, media_id)
                    wait_no_ffmpeg(process)
                    for _ in range(2):
                        upload(client, placeholder)
                    settle()
                    self._phase("idle_after", client, process, urls, script, [])
        except BaseException:
            print(f"server log tail:\n{server.log_tail()}", file=sys.stderr)
            raise
        finally:
            server.stop()
        return {"setup": self.setup, "range_checks": self.range_checks, "windows": self.windows}

    def _phase(
        self,
        phase: str,
        client: httpx2.Client,
        process: psutil.Process,
        urls: dict[str, str],
        script: Path,
        jobs: Sequence[str],
    ) -> None:
        size = self.args.random_mib * MiB
        starts = [self.rng.randrange(0, size - RANGE_BYTES) for _ in range(3)]
        checks = [check_range(client, urls["range"], self.random_file, s) for s in starts]
        self.range_checks[phase] = checks
        if not all(checks):
            raise RuntimeError(f"the stream route answered wrong bytes for a range: {checks}")
        duration = float(self.setup["hevc"]["seconds"])
        for target in TARGETS:
            before = job_snapshot(client, jobs)
            ffmpeg_before = ffmpeg_children(process)
            with CpuWindow(process) as cpu:
                result = run_wrk(urls[target], script if target == "range" else None, self.args)
            after = job_snapshot(client, jobs)
            wall = cpu.cores["seconds"]
            speed = transcode_speed(before, after, duration, wall) if jobs else None
            window = {
                "phase": phase,
                "target": target,
                **result,
                "cpu_cores": cpu.cores,
                "jobs_before": before,
                "jobs_after": after,
                "ffmpeg_processes": [len(ffmpeg_before), len(ffmpeg_children(process))],
                "ffmpeg_threads_nice": thread_facts(ffmpeg_before),
                "server_threads_nice": thread_facts([process]),
                "jobs_running_throughout": bool(jobs) and transcoding(after),
                "transcode_x_realtime": speed,
            }
            self.windows.append(window)
            state = ""
            if jobs:
                progress = "/".join(f"{s['progress']:.2f}" for s in after)
                running = "both still transcoding" if transcoding(after) else "JOBS FINISHED EARLY"
                state = f", jobs at {progress}: {running}"
            print(
                f"{PHASE_LABELS[phase]:<11} {TARGET_LABELS[target]:<34} "
                f"{result['requests_per_s']:8.0f} req/s, p99 {result.get('p99_ms', 0):7.2f} ms"
                f"{state}",
                flush=True,
            )


def summarize_load(part: dict[str, Any]) -> dict[str, Any]:
    """Per target and phase: requests/s, p99, bytes/request, CPU; ratios against idle."""
    summary: dict[str, Any] = {}
    for target in TARGETS:
        entry: dict[str, Any] = {}
        for window in part["windows"]:
            if window["target"] != target:
                continue
            entry[window["phase"]] = {
                "requests_per_s": window["requests_per_s"],
                "p50_ms": window.get("p50_ms"),
                "p99_ms": window.get("p99_ms"),
                "bytes_per_request": window["bytes_per_request"],
                "errors": sum(window["socket_errors"]) + window["non_2xx_3xx"],
                "cpu_cores": window["cpu_cores"],
                "jobs_running_throughout": window["jobs_running_throughout"],
                "transcode_x_realtime": window["transcode_x_realtime"],
            }
        idle, busy = entry.get("idle_before"), entry.get("two_jobs")
        if idle and busy:
            entry["rps_ratio"] = busy["requests_per_s"] / idle["requests_per_s"]
            entry["p99_ratio"] = (
                busy["p99_ms"] / idle["p99_ms"] if idle["p99_ms"] and busy["p99_ms"] else None
            )
        summary[target] = entry
    return summary


# --------------------------------------------------------------------------- report


def _cell(entry: dict[str, float], digits: int = 2) -> str:
    if entry["min"] == entry["max"]:
        return f"{entry['median']:.{digits}f}"
    return f"{entry['median']:.{digits}f} ({entry['min']:.{digits}f}–{entry['max']:.{digits}f})"


def report_job_times(summary: dict[str, Any], part: dict[str, Any], uploads: int) -> str:
    """The job-time table and its notes."""
    s = summary
    labels = [x for x in STEP_ORDER if any(x in s[v]["split_s"] for v in VARIANTS)]
    step_names = {
        "pending": "pending (not yet claimed)",
        "claimed": "claimed, no step yet",
        "probing": "probing (ffprobe)",
        "poster": "poster + thumbnail (2 × ffmpeg)",
    }

    def row(label: str, cell: Callable[[dict[str, Any]], str]) -> list[str]:
        return [label, *(cell(s[v]) for v in VARIANTS)]

    def step(name: str) -> list[str]:
        return [
            f"  step {step_names.get(name, name)}",
            *(_cell(s[v]["split_s"][name]) if name in s[v]["split_s"] else "-" for v in VARIANTS),
        ]

    rows = [
        row("upload 201 → processing done, s", lambda e: _cell(e["answered_to_done_s"])),
        *(step(name) for name in labels),
        row("upload start → processing done, s", lambda e: _cell(e["upload_start_to_done_s"])),
        row("upload itself (POST → 201), s", lambda e: _cell(e["upload_s"])),
        row("ffmpeg + ffprobe CPU s per job", lambda e: _cell(e["subprocess_cpu_s"])),
        row("server process CPU s per job", lambda e: _cell(e["server_cpu_s"])),
        row(
            "checks (state done, sha256 and atom order unchanged, posters, duration)",
            lambda e: "all ok" if e["checks_ok"] else "FAILED: " + ", ".join(e["failed_checks"]),
        ),
    ]
    files = part["videos"]["files"]
    sizes = ", ".join(f"{VARIANT_LABELS[v]} {files[v]['size'] / MiB:.1f} MiB" for v in VARIANTS)
    notes = [
        f"{uploads} uploads of each, interleaved, sequential (one job at a time, concurrency 1), "
        f"after one uncounted job. Files: {sizes}; the +faststart one is a stream copy of the "
        "other, so both carry the same streams.",
        "Steps are read by polling GET /api/media/{id} every "
        f"{part['poll_interval'] * 1000:.0f} ms: each lasts from the first poll that shows it "
        "(the first one: from the 201) to the first that shows the next, so each is ± one poll "
        "interval.",
    ]
    return table(["seconds: median (min–max)", *(VARIANT_LABELS[v] for v in VARIANTS)], rows) + (
        "\n\n" + "\n".join(notes)
    )


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def report_load(summary: dict[str, Any], part: dict[str, Any], args: argparse.Namespace) -> str:
    """The requests table, the CPU table and their notes."""
    phases = [p for p in PHASES if any(p in summary[t] for t in TARGETS)]
    rows = []
    for target in TARGETS:
        e = summary[target]
        rows.append(
            [
                TARGET_LABELS[target],
                *(f"{e[p]['requests_per_s']:.0f}" for p in phases),
                _ratio(e.get("rps_ratio")),
                *(f"{e[p]['p99_ms']:.1f}" for p in phases),
                _ratio(e.get("p99_ratio")),
            ]
        )
    labels = [PHASE_LABELS[p] for p in phases]
    headers = [
        f"wrk -t{args.wrk_threads} -c{args.wrk_connections} -d{args.wrk_seconds}s",
        *(f"req/s {label}" for label in labels),
        "req/s two jobs / idle",
        *(f"p99 ms {label}" for label in labels),
        "p99 two jobs / idle",
    ]
    requests_table = table(headers, rows)

    cpu_rows = []
    for window in part["windows"]:
        cores = window["cpu_cores"]
        speed = window["transcode_x_realtime"]
        running = "-"
        if window["phase"] == "two_jobs":
            running = "yes" if window["jobs_running_throughout"] else "NO (finished early)"
        cpu_rows.append(
            [
                PHASE_LABELS[window["phase"]],
                TARGET_LABELS[window["target"]],
                f"{cores['server']:.2f}",
                f"{cores['server_subprocesses']:.2f}",
                f"{cores['clients']:.2f}",
                f"{cores['machine_busy']:.2f}",
                f"{cores['machine_steal']:.2f}",
                "-" if speed is None else f"{speed:.2f}",
                running,
            ]
        )
    cpu_headers = [
        "window",
        "wrk target",
        "server",
        "ffmpeg",
        "wrk",
        "machine busy",
        "steal",
        "transcoded s/s",
        "both jobs running at end",
    ]
    cpu_table = table(cpu_headers, cpu_rows)

    hevc = part["setup"]["hevc"]
    sizes = ", ".join(
        f"{target} " + " / ".join(f"{summary[target][p]['bytes_per_request']:.0f}" for p in phases)
        for target in TARGETS
    )
    notes = [
        f"CPU in cores (CPU seconds per wall second) over each wrk run; the machine has "
        f"{os.cpu_count()}. ffmpeg = the server's subprocesses. transcoded s/s = seconds of "
        "video both jobs transcoded per second, from their progress.",
        f"Video: {hevc['seconds']} s 1280x720 HEVC/AAC MKV, {hevc['size'] / MiB:.1f} MiB "
        f"({hevc['segment_seconds']} s encoded with libx265 ultrafast, then looped by stream "
        "copy); transcoded by the server to H.264/AAC (libx264 veryfast), two at once.",
        f"Range target: a {args.random_mib} MiB random file; 3 ranges per phase checked byte for "
        "byte before wrk. The catalog holds 3 items in every phase (two tiny placeholders while "
        f"idle, the two videos under load); bytes per response ({' / '.join(labels)}): "
        f"{sizes}.",
    ]
    if "idle_after" in phases:
        notes.append(
            "Phases run one after the other on a shared machine: the idle-after column shows how "
            "much the idle figures drift by themselves."
        )
    loaded = [w for w in part["windows"] if w["phase"] == "two_jobs"]
    facts = [f for w in loaded for f in w["ffmpeg_threads_nice"]]
    if facts:
        threads = sorted({f["threads"] for f in facts})
        nice = sorted({f["nice"] for f in facts})
        server = loaded[0]["server_threads_nice"]
        notes.append(
            f"Each ffmpeg ran {'/'.join(map(str, threads))} threads at nice "
            f"{'/'.join(map(str, nice))}; the server process "
            + (f"{server[0]['threads']} threads at nice {server[0]['nice']}." if server else "?")
        )
    early = [w for w in loaded if not w["jobs_running_throughout"]]
    if early:
        notes.append(
            "WARNING: the jobs had finished before the end of "
            + ", ".join(TARGET_LABELS[w["target"]] for w in early)
            + "; use a longer video (--hevc-seconds)."
        )
    errors = {(t, p): summary[t][p]["errors"] for t in TARGETS for p in phases}
    errors = {f"{t} {p}": n for (t, p), n in errors.items() if n}
    if errors:
        notes.append(f"wrk reported socket errors or non-2xx answers: {errors}")
    return f"{requests_table}\n\n{cpu_table}\n\n" + "\n".join(notes)


def main() -> int:
    """Command line entry."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploads", type=int, default=5, help="uploads of each video (5)")
    parser.add_argument("--video-seconds", type=int, default=30, help="test video length (30)")
    parser.add_argument("--poll-interval", type=float, default=0.05, help="job polling, s (0.05)")
    parser.add_argument(
        "--hevc-seconds", type=int, default=240, help="HEVC video length for the load part (240)"
    )
    parser.add_argument(
        "--hevc-segment-seconds", type=int, default=60, help="of which encoded, then looped (60)"
    )
    parser.add_argument("--random-mib", type=int, default=100, help="file for ranges, MiB (100)")
    parser.add_argument("--wrk-seconds", type=int, default=8, help="seconds per wrk run (8)")
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (1)")
    parser.add_argument("--wrk-connections", type=int, default=8, help="wrk connections (8)")
    parser.add_argument("--seed", type=int, default=20240601, help="seed of the random ranges")
    parser.add_argument(
        "--skip-idle-after", action="store_true", help="no idle measurement after the jobs"
    )
    parser.add_argument("--only", choices=("times", "load"), help="run one part only")
    parser.add_argument("--tmp-dir", type=Path, help="where the files and servers' data go")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    if min(args.uploads, args.video_seconds, args.wrk_seconds, args.hevc_segment_seconds) < 1:
        parser.error("--uploads, --video-seconds, --wrk-seconds must be at least 1")
    if args.hevc_seconds < args.hevc_segment_seconds or args.random_mib < 1:
        parser.error("--hevc-seconds must be >= --hevc-segment-seconds, --random-mib >= 1")
    missing = [tool for tool in ("ffmpeg", "ffprobe", "wrk") if shutil.which(tool) is None]
    if missing:
        raise SystemExit(f"missing: {', '.join(missing)} (apt-get install -y ffmpeg wrk)")

    started = time.monotonic()
    workdir = make_workdir(args.tmp_dir, "streamport-bench-processing-")
    times: dict[str, Any] | None = None
    load: dict[str, Any] | None = None
    try:
        require_free_space(workdir, args.random_mib * MiB + 1 * GiB)
        env = environment(workdir)
        streamport_env = {k: v for k, v in os.environ.items() if k.startswith("STREAMPORT_")}
        print(
            f"processing benchmark in {workdir} ({env['filesystem']['fstype']}), "
            f"{env['cpus']} CPUs, Python {env['python']}; Streamport environment: "
            f"{streamport_env or '(none set)'}",
            flush=True,
        )
        if args.only in (None, "times"):
            times = measure_job_times(args, workdir)
            times["poll_interval"] = args.poll_interval
        if args.only in (None, "load"):
            load = LoadBench(args, workdir).run()
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    texts = []
    result: dict[str, Any] = {
        "benchmark": "processing",
        "environment": {
            **env,
            "ffmpeg": tool_version(["ffmpeg", "-version"]),
            "wrk": tool_version(["wrk", "-v"]),
        },
        "git": git_state(),
        "argv": sys.argv,
        "options": options_of(args),
        "streamport_env": streamport_env,
    }
    correct = True
    if times is not None:
        summary = summarize_job_times(times)
        result["job_times"] = {"summary": summary, **times}
        texts.append(report_job_times(summary, times, args.uploads))
        correct = correct and all(summary[v]["checks_ok"] for v in VARIANTS)
    if load is not None:
        summary = summarize_load(load)
        result["load"] = {"summary": summary, **load}
        texts.append(report_load(summary, load, args))
    result["seconds"] = round(time.monotonic() - started, 1)
    path = write_results("processing", result)
    print()
    print("\n\n".join(texts))
    print(f"\nresults: {display_path(path)} ({time.monotonic() - started:.0f} s in all)")
    return 0 if correct else 2


if __name__ == "__main__":
    sys.exit(main())
