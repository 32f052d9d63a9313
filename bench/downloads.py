"""Downloads from Streamport against Starlette's ``FileResponse`` and nginx.

One 1 GiB random file, served in the same run, interleaved round by round, by

* Streamport's real ``GET /media/{id}/stream`` (catalog lookup included), after an upload
  through ``POST /api/media``;
* ``bench/reference_fileresponse.py``: ``FileResponse(root / name)`` under uvicorn with the
  options ``streamport serve`` uses (one worker, ``--no-proxy-headers``, log level info);
* nginx, one worker, ``sendfile on; tcp_nopush on;``, root = the file's directory;
* with ``--baseline REV``, a second Streamport running the code of ``REV`` (a detached git
  worktree), measured like the others, so a change can be compared with its parent in one run.

Measured: one download (MB/s), 8 concurrent downloads (aggregate MB/s), random 64 KiB ranges
with ``wrk`` (requests/s, p99), server CPU seconds per GiB, peak RSS during 64 rate-limited
downloads, and the time to the first byte of a mid-file range. Figures are medians.

Run from the repository root:
``python3 -m bench.downloads [--baseline REV] [--streamport-env KEY=VALUE]``.
"""

import argparse
import grp
import hashlib
import json
import operator
import os
import pwd
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import psutil

from bench.common import (
    CodeTree,
    GiB,
    KiB,
    MiB,
    RssSampler,
    Server,
    add_worktree,
    code_drift_warning,
    code_line,
    compare_runs,
    comparison_table,
    display_path,
    environment,
    free_port,
    git_state,
    group_cpu_seconds,
    group_rss_bytes,
    make_workdir,
    mb_per_s,
    mib,
    options_of,
    remove_worktree,
    require_free_space,
    same_code_warning,
    servers_stopped_after,
    size_label,
    spawn,
    spread,
    start_fileresponse_reference,
    start_streamport_code,
    table,
    working_tree,
    write_results,
)
from bench.upload_speed import curl, make_random_file

KEYS = ("streamport", "fileresponse", "nginx")
# With --baseline, "baseline" joins KEYS (after "streamport") and LABELS (as "Streamport (REV)").
LABELS = {"streamport": "Streamport", "fileresponse": "Starlette FileResponse", "nginx": "nginx"}
RANGE_BYTES = 64 * KiB
CURL_TIMEOUT_S = 600
NGINX = "/usr/sbin/nginx"
FILE_NAME = "big.bin"

# Targets (measured, not asserted).
SINGLE_OVER_FILERESPONSE = 1.5
SINGLE_OVER_NGINX = 0.5
CPU_OVER_FILERESPONSE = 0.5
RANGES_OVER_FILERESPONSE = 2.0
RSS_PEAK_MARGIN_MIB = 20.0
TTFB_OVER_FILERESPONSE = 1.5

WRK_SCRIPT = """\
-- Random {span}-byte ranges of a {size}-byte file; each wrk thread seeded from {seed}.
local size = {size}
local span = {span}
local seed = {seed}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end

function init(args)
  math.randomseed(seed + (id or 0))
end

request = function()
  local start = math.random(0, size - span)
  local range = "bytes=" .. start .. "-" .. (start + span - 1)
  return wrk.format("GET", nil, {{["Range"] = range}})
end
"""


@dataclass
class Target:
    """One server under test and the URL of the big file on it."""

    key: str
    server: Server
    url: str
    processes: list[psutil.Process]

    def cpu(self) -> float:
        """CPU seconds (user + system) of the server's processes so far."""
        return group_cpu_seconds(self.processes)

    def rss(self) -> int:
        """RSS of the server's processes, summed."""
        return group_rss_bytes(self.processes)


# --------------------------------------------------------------------------- servers


def nginx_config(workdir: Path, root: Path, port: int, tcp_nopush: str = "on") -> str:
    """One nginx worker serving ``root`` with sendfile; logs, pid and temp files in
    ``workdir``."""
    user = ""
    if os.geteuid() == 0:
        # Workers would run as nobody, who cannot enter the 0700 temporary directory; run
        # them as the same user as the other servers.
        user = f"user {pwd.getpwuid(os.geteuid()).pw_name} {grp.getgrgid(os.getegid()).gr_name};"
    temp = workdir / "nginx-temp"
    temp_paths = [f"client_body_temp_path {temp}/body;"]
    built = subprocess.run([NGINX, "-V"], capture_output=True, text=True, check=False).stderr
    for module in ("proxy", "fastcgi", "uwsgi", "scgi"):
        if f"--without-http_{module}_module" not in built:
            temp_paths.append(f"{module}_temp_path {temp}/{module};")
    temp_lines = "\n    ".join(temp_paths)
    return f"""\
daemon off;
master_process on;
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/nginx-error.log;
{user}

events {{
    worker_connections 1024;
}}

http {{
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush {tcp_nopush};
    access_log {workdir}/nginx-access.log;
    {temp_lines}

    server {{
        listen 127.0.0.1:{port};
        root {root};

        location = /healthz {{
            default_type text/plain;
            return 200 "ok\\n";
        }}
    }}
}}
"""


def start_nginx(workdir: Path, root: Path, tcp_nopush: str = "on") -> Server:
    """``nginx -c CONF -p WORKDIR`` in the foreground (master + one worker)."""
    if not Path(NGINX).exists():
        raise SystemExit(f"{NGINX} is missing: apt-get install -y nginx-light")
    port = free_port()
    (workdir / "nginx-temp").mkdir(exist_ok=True)
    conf = workdir / "nginx.conf"
    conf.write_text(nginx_config(workdir, root, port, tcp_nopush))
    argv = [NGINX, "-c", str(conf), "-p", f"{workdir}/", "-e", str(workdir / "nginx-error.log")]
    return spawn("nginx", argv, dict(os.environ), workdir, workdir / "nginx.log", port)


def upload_to_streamport(server: Server, path: Path) -> dict[str, Any]:
    """``curl -F visibility=public -F file=@PATH /api/media`` with the server's token; the
    stored item's JSON."""
    argv = ["curl", "-s", "-S", "-w", "\n%{http_code}", *server.upload_curl_args()]
    argv += ["-F", f"file=@{path}"]
    done = subprocess.run(
        [*argv, f"{server.base_url}/api/media"],
        capture_output=True,
        text=True,
        timeout=CURL_TIMEOUT_S,
    )
    body, _, status = done.stdout.rpartition("\n")
    if done.returncode != 0 or status != "201":
        raise RuntimeError(f"upload answered {status} ({done.stderr.strip()}): {body[:500]}")
    [item] = json.loads(body)["items"]
    return dict(item)


def stored_copy(media_dir: Path, size: int) -> Path:
    """The one stored file of ``size`` bytes under Streamport's media directory."""
    found = [
        p
        for p in media_dir.rglob("*")
        if p.is_file() and ".partial" not in p.parts and p.stat().st_size == size
    ]
    if len(found) != 1:
        raise RuntimeError(f"expected one stored copy of {size} bytes, found {found}")
    return found[0]


def read_through(path: Path) -> str:
    """Read ``path`` once (its pages end up in the page cache); returns its SHA-256."""
    hasher = hashlib.sha256()
    with path.open("rb", buffering=0) as handle:
        while chunk := handle.read(8 * MiB):
            hasher.update(chunk)
    return hasher.hexdigest()


def rotated(round_index: int, keys: Sequence[str] = KEYS) -> list[str]:
    """``keys`` rotated by the round number, so no server always goes first."""
    shift = round_index % len(keys)
    return [*keys[shift:], *keys[:shift]]


# --------------------------------------------------------------------------- measurements


def download_once(target: Target, size: int) -> dict[str, float]:
    """One ``curl`` download to /dev/null: MB/s and the server's CPU seconds."""
    cpu = target.cpu()
    status, got, seconds = curl(["-w", "%{http_code} %{size_download} %{time_total}", target.url])
    cpu = target.cpu() - cpu
    if int(status) != 200 or int(got) != size:
        raise RuntimeError(f"{target.key}: download answered {status} with {got} of {size} bytes")
    return {
        "bytes": int(got),
        "seconds": float(seconds),
        "mb_per_s": mb_per_s(int(got), float(seconds)),
        "server_cpu_s": cpu,
    }


def download_concurrently(target: Target, size: int, count: int) -> dict[str, Any]:
    """``count`` simultaneous curl downloads; aggregate MB/s = all bytes / the slowest's
    time."""
    argv = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{time_total}"]
    cpu = target.cpu()
    started = time.monotonic()
    processes = [
        subprocess.Popen([*argv, target.url], stdout=subprocess.PIPE, text=True)
        for _ in range(count)
    ]
    each = []
    for process in processes:
        out, _ = process.communicate(timeout=CURL_TIMEOUT_S)
        status, got, seconds = out.split()
        each.append((int(status), int(got), float(seconds)))
    wall = time.monotonic() - started
    cpu = target.cpu() - cpu
    if any(status != 200 or got != size for status, got, _ in each):
        raise RuntimeError(f"{target.key}: incomplete concurrent downloads {each}")
    total = sum(got for _, got, _ in each)
    slowest = max(seconds for _, _, seconds in each)
    return {
        "bytes": total,
        "slowest_s": slowest,
        "wall_s": wall,
        "mb_per_s": mb_per_s(total, slowest),
        "server_cpu_s": cpu,
        "each_s": [seconds for _, _, seconds in each],
    }


def check_range(target: Target, source: Path, start: int) -> dict[str, Any]:
    """One ``Range: bytes=S-(S+65535)`` request: 206, 65536 bytes, the right bytes."""
    end = start + RANGE_BYTES - 1
    status, got = curl(
        ["-H", f"Range: bytes={start}-{end}", "-w", "%{http_code} %{size_download}", target.url]
    )
    with source.open("rb") as handle:
        handle.seek(start)
        expected = handle.read(RANGE_BYTES)
    response = httpx2.get(target.url, headers={"Range": f"bytes={start}-{end}"}, timeout=30)
    ok = (
        int(status) == 206
        and int(got) == RANGE_BYTES
        and response.status_code == 206
        and response.content == expected
    )
    return {
        "status": int(status),
        "bytes": int(got),
        "content_range": response.headers.get("content-range"),
        "bytes_equal": response.content == expected,
        "ok": ok,
    }


_WRK_LATENCY = re.compile(r"^\s*(50|75|90|99)%\s+([0-9.]+)(us|ms|s|m)\s*$", re.M)
_WRK_TOTAL = re.compile(r"(\d+) requests in ([0-9.]+)(us|ms|s|m|h), ([0-9.]+)([KMGT]?B) read")
_WRK_RPS = re.compile(r"Requests/sec:\s+([0-9.]+)")
_WRK_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_WRK_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
_TIME_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_BYTES = {"B": 1, "KB": KiB, "MB": MiB, "GB": GiB, "TB": 1024 * GiB}


def parse_wrk(text: str) -> dict[str, Any]:
    """Requests/s, latency percentiles (ms), bytes per request and errors from wrk's output."""
    rps = _WRK_RPS.search(text)
    total = _WRK_TOTAL.search(text)
    if rps is None or total is None:
        raise RuntimeError(f"cannot read wrk's output:\n{text}")
    latency = {f"p{m[0]}_ms": float(m[1]) * _TIME_MS[m[2]] for m in _WRK_LATENCY.findall(text)}
    requests = int(total.group(1))
    read = float(total.group(4)) * _BYTES[total.group(5)]
    sockets = _WRK_SOCKET.search(text)
    non_2xx = _WRK_NON_2XX.search(text)
    return {
        "requests_per_s": float(rps.group(1)),
        **latency,
        "requests": requests,
        "bytes_per_request": read / requests if requests else 0.0,
        "socket_errors": [int(n) for n in sockets.groups()] if sockets else [0, 0, 0, 0],
        "non_2xx_3xx": int(non_2xx.group(1)) if non_2xx else 0,
    }


def run_wrk(target: Target, script: Path, args: argparse.Namespace) -> dict[str, Any]:
    """``wrk -tT -cC -dDs --latency -s SCRIPT URL``, parsed; plus the server's CPU seconds."""
    argv = [
        "wrk",
        f"-t{args.wrk_threads}",
        f"-c{args.wrk_connections}",
        f"-d{args.range_seconds}s",
        "--latency",
        "-s",
        str(script),
        target.url,
    ]
    cpu = target.cpu()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=args.range_seconds + 60)
    cpu = target.cpu() - cpu
    if done.returncode != 0:
        raise RuntimeError(f"wrk exited {done.returncode}: {done.stderr}\n{done.stdout}")
    return {**parse_wrk(done.stdout), "server_cpu_s": cpu}


def time_to_first_byte(target: Target, start: int) -> float:
    """Milliseconds to the first byte of a 64 KiB range at ``start``, on a fresh connection."""
    end = start + RANGE_BYTES - 1
    status, got, seconds = curl(
        [
            "-H",
            f"Range: bytes={start}-{end}",
            "-w",
            "%{http_code} %{size_download} %{time_starttransfer}",
            target.url,
        ]
    )
    if int(status) != 206 or int(got) != RANGE_BYTES:
        raise RuntimeError(f"{target.key}: range answered {status} with {got} bytes")
    return float(seconds) * 1000


def received_bytes(port: int) -> int:
    """Bytes the client sockets connected to ``port`` have received so far (``ss -ti``)."""
    done = subprocess.run(
        ["ss", "-tinH", "state", "established", f"( dport = :{port} )"],
        capture_output=True,
        text=True,
        check=False,
    )
    return sum(int(n) for n in re.findall(r"bytes_received:(\d+)", done.stdout))


def rss_under_load(target: Target, args: argparse.Namespace) -> dict[str, Any]:
    """Server RSS (sum over its processes) while ``--rss-clients`` rate-limited curls download
    the file; the curls are killed (by PID) after ``--rss-seconds``."""
    time.sleep(1.0)
    argv = ["curl", "-s", "-o", "/dev/null", "--limit-rate", args.rss_rate]
    argv += ["--max-time", str(args.rss_seconds + 120), target.url]
    processes: list[subprocess.Popen[bytes]] = []
    alive = 0
    try:
        with RssSampler(target.server.pid, args.interval, group=target.processes) as sampler:
            started = time.monotonic()
            processes = [
                subprocess.Popen(argv, stdin=subprocess.DEVNULL) for _ in range(args.rss_clients)
            ]
            time.sleep(args.rss_seconds)
            received = received_bytes(target.server.port)
            alive = sum(process.poll() is None for process in processes)
            window = time.monotonic() - started
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
        for process in processes:
            process.wait()
    time.sleep(2.0)
    return {
        **sampler.as_dict(),
        "clients": args.rss_clients,
        "clients_alive_at_end": alive,
        "received_bytes": received,
        "received_mb_per_s": mb_per_s(received, window),
        "rss_2s_after_kill_mib": mib(target.rss()),
    }


# --------------------------------------------------------------------------- the run


class Bench:
    """The servers, the file, and every run's figures."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.size = args.size_mib * MiB
        self.files = workdir / "files"
        self.source = self.files / FILE_NAME
        self.servers: list[Server] = []
        self.targets: dict[str, Target] = {}
        self.runs: dict[str, dict[str, list[Any]]] = {}
        self.checks: dict[str, Any] = {}
        self.setup: dict[str, Any] = {}
        self.trees: list[CodeTree] = [working_tree()]
        # Which code each Streamport process imported, per start (the upload's and the
        # measured one's).
        self.code: dict[str, list[dict[str, Any]]] = {}
        self.keys: list[str] = list(KEYS)
        self.labels: dict[str, str] = dict(LABELS)

    def _add(self, key: str, server: Server, path: str) -> None:
        self.servers.append(server)
        self.targets[key] = Target(key, server, f"{server.base_url}{path}", server.processes())

    def _start_streamport(self, tree: CodeTree) -> Server:
        server, check = start_streamport_code(
            tree,
            self.workdir / f"{tree.key}-media",
            self.size + 64 * MiB,
            self.workdir / f"{tree.key}.log",
            self.streamport_env,
            others=self.trees,
        )
        self.code.setdefault(tree.key, []).append(check)
        return server

    def start(self) -> None:
        """Make the file, start the servers, upload to each Streamport, warm the page cache."""
        if self.args.baseline:
            baseline = add_worktree(self.args.baseline, self.workdir)
            self.trees.append(baseline)
            self.keys.insert(1, baseline.key)
            self.labels[baseline.key] = baseline.label
        self.files.mkdir()
        print(f"writing {self.args.size_mib} MiB of random bytes to {self.source}", flush=True)
        make_random_file(self.source, self.size)
        items: dict[str, dict[str, Any]] = {}
        rss_after_upload: dict[str, float] = {}
        for tree in self.trees:
            streamport = self._start_streamport(tree)
            self.servers.append(streamport)
            print(f"uploading it to {tree.label} (POST /api/media)", flush=True)
            items[tree.key] = upload_to_streamport(streamport, self.source)
            # Restart, so that Streamport, like the others, starts the measurements as a fresh
            # process that has only served downloads (its catalog and bytes stay).
            rss_after_upload[tree.key] = mib(group_rss_bytes(streamport.processes()))
            streamport.stop()
            self.servers.remove(streamport)
        for tree in self.trees:
            self._add(tree.key, self._start_streamport(tree), items[tree.key]["stream_url"])
        print(code_line({t.key: self.code[t.key][-1] for t in self.trees}, self.trees))
        warning = same_code_warning({t.key: self.code[t.key][-1] for t in self.trees})
        if warning:
            print(warning)
        self._add(
            "fileresponse",
            start_fileresponse_reference(self.files, self.workdir / "fileresponse.log"),
            f"/files/{FILE_NAME}",
        )
        nginx = start_nginx(self.workdir, self.files, self.args.nginx_tcp_nopush)
        self._add("nginx", nginx, f"/{FILE_NAME}")

        copies = {
            t.key: stored_copy(self.workdir / f"{t.key}-media", self.size) for t in self.trees
        }
        print("reading the copies once (page cache)", flush=True)
        source_sha = read_through(self.source)
        copy_sha = {key: read_through(copy) for key, copy in copies.items()}
        head = self.trees[0].key
        self.setup = {
            "streamport_item": items[head],
            "streamport_copy": str(copies[head]),
            "streamport_rss_after_upload_mib": rss_after_upload[head],
            "source_sha256": source_sha,
            "copies_equal": all(
                source_sha == copy_sha[key] == items[key]["sha256"] for key in copies
            ),
            "same_filesystem": all(
                self.source.stat().st_dev == copy.stat().st_dev for copy in copies.values()
            ),
            "urls": {key: target.url for key, target in self.targets.items()},
            "pids": {key: [p.pid for p in t.processes] for key, t in self.targets.items()},
        }
        if len(self.trees) > 1:
            key = self.trees[1].key
            self.setup |= {
                "baseline_item": items[key],
                "baseline_copy": str(copies[key]),
                "baseline_rss_after_upload_mib": rss_after_upload[key],
            }
        if not self.setup["copies_equal"]:
            raise RuntimeError("a Streamport's stored copy differs from the source file")

        # Range checks (and first-use warm-up): 206 with exactly the requested 64 KiB.
        middle = self.size // 2
        width = max(len(label) for label in self.labels.values())
        for key in self.keys:
            target = self.targets[key]
            for start in (0, middle, self.size - RANGE_BYTES):
                self.checks.setdefault(key, []).append(check_range(target, self.source, start))
            ok = all(check["ok"] for check in self.checks[key])
            verdict = "206, 65536 bytes, equal" if ok else "FAILED"
            print(f"range check {self.labels[key]:<{width}} {verdict}")

    @property
    def streamport_env(self) -> dict[str, str]:
        """The ``--streamport-env`` settings."""
        return dict(pair.split("=", 1) for pair in self.args.streamport_env)

    def stop(self) -> None:
        """Stop the servers this benchmark started, by their PIDs; drop the worktree."""
        for server in self.servers:
            server.stop()
        for tree in self.trees:
            remove_worktree(tree)

    def _rounds(
        self, name: str, rounds: int, measure: Callable[[Target], Any], show: Callable[[Any], str]
    ) -> None:
        runs = self.runs.setdefault(name, {key: [] for key in self.keys})
        width = max(len(label) for label in self.labels.values())
        for round_index in range(rounds):
            for key in rotated(round_index, self.keys):
                value = measure(self.targets[key])
                runs[key].append(value)
                print(
                    f"{name:<10} round {round_index + 1}/{rounds} "
                    f"{self.labels[key]:<{width}} {show(value)}",
                    flush=True,
                )
            time.sleep(0.5)

    def measure(self) -> None:
        """Every measurement, servers interleaved (order rotated) within each round."""
        args, size = self.args, self.size
        self._rounds(
            "single",
            args.single_rounds,
            lambda t: download_once(t, size),
            lambda v: f"{v['mb_per_s']:8.0f} MB/s, server CPU {v['server_cpu_s']:.2f} s",
        )
        self._rounds(
            "concurrent",
            args.concurrent_rounds,
            lambda t: download_concurrently(t, size, args.concurrency),
            lambda v: f"{v['mb_per_s']:8.0f} MB/s, server CPU {v['server_cpu_s']:.2f} s",
        )
        script = self.workdir / "ranges.lua"
        script.write_text(WRK_SCRIPT.format(size=size, span=RANGE_BYTES, seed=args.seed))
        self._rounds(
            "ranges",
            args.range_rounds,
            lambda t: run_wrk(t, script, args),
            lambda v: f"{v['requests_per_s']:8.0f} req/s, p99 {v.get('p99_ms', 0):.2f} ms",
        )
        middle = size // 2
        ttfb = self.runs.setdefault("ttfb_ms", {key: [] for key in self.keys})
        for index in range(args.ttfb_requests):
            for key in rotated(index, self.keys):
                ttfb[key].append(time_to_first_byte(self.targets[key], middle))
        print(
            "ttfb       "
            + ", ".join(f"{self.labels[k]} {statistics.median(ttfb[k]):.2f} ms" for k in self.keys),
            flush=True,
        )
        self._rounds(
            "rss",
            args.rss_rounds,
            lambda t: rss_under_load(t, args),
            lambda v: (
                f"peak {v['rss_peak_mib']:.1f} MiB, growth {v['growth_mib']:.1f} MiB, "
                f"{v['received_mb_per_s']:.0f} MB/s received"
            ),
        )


# --------------------------------------------------------------------------- report


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1), linear between the nearest ranks."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summarize(runs: dict[str, dict[str, list[Any]]]) -> dict[str, dict[str, Any]]:
    """Per server: medians (with min and max) of every measurement."""
    summary: dict[str, dict[str, Any]] = {}
    for key in runs["single"]:
        single = runs["single"][key]
        concurrent = runs["concurrent"][key]
        ranges = runs["ranges"][key]
        rss = runs["rss"][key]
        ttfb = runs["ttfb_ms"][key]

        def per_gib(values: list[dict[str, Any]]) -> float:
            total = sum(v["bytes"] for v in values)
            return sum(v["server_cpu_s"] for v in values) / (total / GiB) if total else 0.0

        def each_per_gib(values: list[dict[str, Any]]) -> dict[str, float]:
            return spread([v["server_cpu_s"] / (v["bytes"] / GiB) for v in values])

        summary[key] = {
            "single_mb_per_s": spread([v["mb_per_s"] for v in single]),
            "concurrent_mb_per_s": spread([v["mb_per_s"] for v in concurrent]),
            "ranges_per_s": spread([v["requests_per_s"] for v in ranges]),
            "ranges_p99_ms": spread([v["p99_ms"] for v in ranges]),
            "ranges_p50_ms": spread([v["p50_ms"] for v in ranges]),
            "ranges_bytes_per_request": spread([v["bytes_per_request"] for v in ranges]),
            "ranges_errors": sum(sum(v["socket_errors"]) + v["non_2xx_3xx"] for v in ranges),
            "cpu_s_per_gib": per_gib(single + concurrent),
            "cpu_s_per_gib_single": per_gib(single),
            "cpu_s_per_gib_concurrent": per_gib(concurrent),
            # Per run, so that rounds show how much the figure moves by itself.
            "cpu_s_per_gib_single_runs": each_per_gib(single),
            "cpu_s_per_gib_concurrent_runs": each_per_gib(concurrent),
            "ranges_cpu_ms_per_request": spread(
                [1000 * v["server_cpu_s"] / v["requests"] for v in ranges if v["requests"]] or [0.0]
            ),
            "rss_idle_mib": spread([v["rss_before_mib"] for v in rss]),
            "rss_peak_mib": spread([v["rss_peak_mib"] for v in rss]),
            "rss_growth_mib": spread([v["growth_mib"] for v in rss]),
            "rss_received_mb_per_s": spread([v["received_mb_per_s"] for v in rss]),
            "rss_clients_alive": min(v["clients_alive_at_end"] for v in rss),
            "ttfb_median_ms": statistics.median(ttfb),
            "ttfb_p90_ms": percentile(ttfb, 0.9),
        }
    return summary


def _cell(entry: dict[str, float], digits: int = 0) -> str:
    if entry["min"] == entry["max"]:
        return f"{entry['median']:.{digits}f}"
    return f"{entry['median']:.{digits}f} ({entry['min']:.{digits}f}–{entry['max']:.{digits}f})"


def targets(summary: dict[str, dict[str, Any]], args: argparse.Namespace) -> list[dict[str, Any]]:
    """Each target: the measured value, its bound, and whether it was met (``None``: context)."""

    def median(key: str, name: str) -> float:
        entry = summary[key][name]
        return float(entry["median"] if isinstance(entry, dict) else entry)

    def over(name: str, other: str = "fileresponse") -> float:
        below = median(other, name)
        return median("streamport", name) / below if below else float("inf")

    def minus(name: str) -> float:
        return median("streamport", name) - median("fileresponse", name)

    per, diff = "Streamport / Starlette", "Streamport − Starlette, MiB"
    per_nginx = "Streamport / nginx"
    many = f"{args.rss_clients} downloads:"
    concurrent = f"{args.concurrency} concurrent downloads MB/s"
    rows: list[tuple[str, str, float, str | None, float | None]] = [
        ("one download MB/s", per, over("single_mb_per_s"), ">=", SINGLE_OVER_FILERESPONSE),
        ("one download MB/s", per_nginx, over("single_mb_per_s", "nginx"), ">=", SINGLE_OVER_NGINX),
        ("server CPU s per GiB", per, over("cpu_s_per_gib"), "<=", CPU_OVER_FILERESPONSE),
        ("random 64 KiB ranges/s", per, over("ranges_per_s"), ">=", RANGES_OVER_FILERESPONSE),
        ("random 64 KiB ranges p99", per, over("ranges_p99_ms"), "<", 1.0),
        (f"{many} peak RSS", diff, minus("rss_peak_mib"), "<=", RSS_PEAK_MARGIN_MIB),
        (f"{many} RSS growth", diff, minus("rss_growth_mib"), None, None),
        ("TTFB mid-file range, median", per, over("ttfb_median_ms"), "<=", TTFB_OVER_FILERESPONSE),
        (concurrent, per, over("concurrent_mb_per_s"), None, None),
        (concurrent, per_nginx, over("concurrent_mb_per_s", "nginx"), None, None),
        ("server CPU s per GiB", per_nginx, over("cpu_s_per_gib", "nginx"), None, None),
        ("random 64 KiB ranges/s", per_nginx, over("ranges_per_s", "nginx"), None, None),
    ]
    compare = {">=": operator.ge, "<=": operator.le, "<": operator.lt}
    return [
        {
            "measurement": measurement,
            "ratio": label,
            "value": value,
            "target": "(context)" if op is None else f"{op} {bound:g}",
            "met": None if op is None or bound is None else bool(compare[op](value, bound)),
        }
        for measurement, label, value, op, bound in rows
    ]


def against_baseline(summary: dict[str, dict[str, Any]], args: argparse.Namespace) -> list[Any]:
    """HEAD (``streamport``) against ``baseline``, measurement by measurement."""
    head, base = summary["streamport"], summary["baseline"]
    many = f"{args.rss_clients} downloads:"
    rows = [
        ("one download MB/s", "single_mb_per_s", "higher", 0),
        (f"{args.concurrency} concurrent downloads MB/s", "concurrent_mb_per_s", "higher", 0),
        ("random 64 KiB ranges/s", "ranges_per_s", "higher", 0),
        ("  p99 latency, ms", "ranges_p99_ms", "lower", 2),
        ("  p50 latency, ms", "ranges_p50_ms", "lower", 2),
        ("  server CPU ms per range", "ranges_cpu_ms_per_request", "lower", 3),
        ("server CPU s per GiB, one download", "cpu_s_per_gib_single_runs", "lower", 3),
        ("server CPU s per GiB, concurrent", "cpu_s_per_gib_concurrent_runs", "lower", 3),
        ("server CPU s per GiB (one + concurrent)", "cpu_s_per_gib", "lower", 3),
        (f"{many} idle RSS, MiB", "rss_idle_mib", "lower", 1),
        ("  peak RSS, MiB", "rss_peak_mib", "lower", 1),
        ("  growth (peak − idle), MiB", "rss_growth_mib", "lower", 1),
        ("TTFB mid-file range, median ms", "ttfb_median_ms", "lower", 2),
        ("  p90 ms", "ttfb_p90_ms", "lower", 2),
    ]
    return compare_runs([(label, head[n], base[n], better, d) for label, n, better, d in rows])


def report(
    summary: dict[str, dict[str, Any]],
    checks: dict[str, Any],
    verdicts: list[dict[str, Any]],
    args: argparse.Namespace,
    labels: dict[str, str],
    comparisons: list[dict[str, Any]] | None = None,
) -> str:
    """The side-by-side table, the ratio table(s) and notes."""
    size = size_label(args.size_mib * MiB)
    s = summary
    keys = list(summary)

    def row(label: str, cell: Callable[[dict[str, Any]], str]) -> list[str]:
        return [label, *(cell(s[key]) for key in keys)]

    rows = [
        row(f"one {size} download, MB/s", lambda e: _cell(e["single_mb_per_s"])),
        row(
            f"{args.concurrency} concurrent {size} downloads, aggregate MB/s",
            lambda e: _cell(e["concurrent_mb_per_s"]),
        ),
        row(
            f"random 64 KiB ranges/s, {args.wrk_connections} connections",
            lambda e: _cell(e["ranges_per_s"]),
        ),
        row("  p99 latency, ms", lambda e: _cell(e["ranges_p99_ms"], 2)),
        row("  p50 latency, ms", lambda e: _cell(e["ranges_p50_ms"], 2)),
        row("  range check: 206 + 65536 bytes, equal", lambda e: ""),
        row("server CPU s per GiB (one + concurrent)", lambda e: f"{e['cpu_s_per_gib']:.2f}"),
        row("  one download", lambda e: f"{e['cpu_s_per_gib_single']:.2f}"),
        row(f"  {args.concurrency} concurrent", lambda e: f"{e['cpu_s_per_gib_concurrent']:.2f}"),
        row(f"{args.rss_clients} downloads: idle RSS, MiB", lambda e: _cell(e["rss_idle_mib"], 1)),
        row("  peak RSS, MiB", lambda e: _cell(e["rss_peak_mib"], 1)),
        row("  growth (peak − idle), MiB", lambda e: _cell(e["rss_growth_mib"], 1)),
        row("  received meanwhile (TCP), MB/s", lambda e: _cell(e["rss_received_mb_per_s"])),
        row("TTFB mid-file 64 KiB range, median ms", lambda e: f"{e['ttfb_median_ms']:.2f}"),
        row("  p90 ms", lambda e: f"{e['ttfb_p90_ms']:.2f}"),
    ]
    check_row = next(i for i, r in enumerate(rows) if r[0].startswith("  range check"))
    rows[check_row][1:] = ["yes" if all(c["ok"] for c in checks[key]) else "NO" for key in keys]
    main_table = table(["measurement (median, min–max)", *(labels[k] for k in keys)], rows)
    ratio_rows = [
        [
            v["measurement"],
            v["ratio"],
            f"{v['value']:.2f}",
            v["target"],
            "-" if v["met"] is None else ("met" if v["met"] else "MISSED"),
        ]
        for v in verdicts
    ]
    headers = ["measurement", "ratio of medians", "value", "target", "result"]
    ratio_table = table(headers, ratio_rows)
    notes = [
        f"Rounds: one download {args.single_rounds}, concurrent {args.concurrent_rounds}, "
        f"ranges {args.range_rounds} x {args.range_seconds} s (wrk -t{args.wrk_threads} "
        f"-c{args.wrk_connections}), {args.rss_clients} downloads {args.rss_rounds} x "
        f"{args.rss_seconds} s at --limit-rate {args.rss_rate} each, TTFB "
        f"{args.ttfb_requests} requests. nginx: sendfile on, tcp_nopush {args.nginx_tcp_nopush}.",
        "MB/s = 10^6 bytes per second. nginx RSS and CPU are master + worker. Clients (curl, "
        "wrk) share the machine's cores with the server.",
    ]
    if args.nginx_tcp_nopush == "on" and s["nginx"]["ranges_p50_ms"]["median"] >= 30:
        notes.append(
            "nginx's ranges stall ~40 ms each: with sendfile and tcp_nopush on, a 64 KiB range "
            "at an unaligned offset waits on TCP_CORK (try --nginx-tcp-nopush off)."
        )
    errors = {k: s[k]["ranges_errors"] for k in keys if s[k]["ranges_errors"]}
    if errors:
        notes.append(f"wrk reported socket errors or non-2xx answers: {errors}")
    short = {k: s[k]["rss_clients_alive"] for k in keys if s[k]["rss_clients_alive"] < 1}
    if short:
        notes.append(f"no download was still running when the RSS window ended: {short}")
    text = f"{main_table}\n\n{ratio_table}"
    if comparisons:
        base = comparison_table(comparisons, labels["streamport"], labels["baseline"])
        text += f"\n\n{base}"
        notes.append(
            "HEAD / baseline: ratio of medians; 'worse' is in the measurement's bad direction. "
            "Within one run a difference inside the rounds' min–max spread is not a result; "
            "across runs, compare with the spread of repeated runs (README: noise)."
        )
    return f"{text}\n\n" + "\n".join(notes)


def main() -> int:
    """Command line entry."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="file size (default 1024)")
    parser.add_argument("--single-rounds", type=int, default=5, help="one download (5)")
    parser.add_argument("--concurrent-rounds", type=int, default=3, help="concurrent (3)")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent downloads (8)")
    parser.add_argument("--range-rounds", type=int, default=3, help="wrk rounds (3)")
    parser.add_argument("--range-seconds", type=int, default=10, help="seconds per wrk run (10)")
    parser.add_argument("--wrk-threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument("--wrk-connections", type=int, default=16, help="wrk connections (16)")
    parser.add_argument("--seed", type=int, default=20240601, help="seed of the random ranges")
    parser.add_argument("--ttfb-requests", type=int, default=50, help="TTFB requests (50)")
    parser.add_argument("--rss-rounds", type=int, default=1, help="RSS-under-load rounds (1)")
    parser.add_argument("--rss-clients", type=int, default=64, help="downloads for RSS (64)")
    parser.add_argument("--rss-rate", default="16M", help="curl --limit-rate for them (16M)")
    parser.add_argument("--rss-seconds", type=float, default=10.0, help="RSS window (10 s)")
    parser.add_argument("--interval", type=float, default=0.05, help="RSS sampling period, s")
    parser.add_argument(
        "--streamport-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for the Streamport server only (repeatable)",
    )
    parser.add_argument(
        "--nginx-tcp-nopush", choices=("on", "off"), default="on", help="nginx tcp_nopush (on)"
    )
    parser.add_argument(
        "--baseline",
        metavar="REV",
        help="also measure Streamport at git revision REV (a worktree), e.g. the parent commit",
    )
    parser.add_argument("--tmp-dir", type=Path, help="where the file and servers' data go")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when a target is missed, not only on errors"
    )
    args = parser.parse_args()
    for pair in args.streamport_env:
        if "=" not in pair or not pair.split("=", 1)[0]:
            parser.error(f"--streamport-env wants KEY=VALUE, not {pair!r}")
    counts = (args.single_rounds, args.concurrent_rounds, args.range_rounds, args.rss_rounds)
    if min(*counts, args.ttfb_requests, args.size_mib) < 1:
        parser.error("rounds, --ttfb-requests and --size-mib must be at least 1")
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install -y wrk")

    started = time.monotonic()
    workdir = make_workdir(args.tmp_dir, "streamport-bench-downloads-")
    size = args.size_mib * MiB
    bench = Bench(args, workdir)
    with servers_stopped_after(bench, workdir, args.keep):
        # The file and each Streamport's stored copy, plus slack.
        require_free_space(workdir, (3 if args.baseline else 2) * size + 512 * MiB)
        env = environment(workdir)
        fs = env["filesystem"]
        streamport_env = {
            k: v for k, v in os.environ.items() if k.startswith("STREAMPORT_")
        } | bench.streamport_env
        print(
            f"downloads benchmark in {workdir} ({fs['device']} {fs['fstype']}), "
            f"{env['cpus']} CPUs, Python {env['python']}; Streamport environment: "
            f"{streamport_env or '(none set)'}",
            flush=True,
        )
        if bench.trees[0].dirty:
            print("the working tree has uncommitted changes: Streamport runs them", flush=True)
        bench.start()
        bench.measure()

    summary = summarize(bench.runs)
    verdicts = targets(summary, args)
    comparisons = against_baseline(summary, args) if "baseline" in summary else None
    text = report(summary, bench.checks, verdicts, args, bench.labels, comparisons)
    checks = {key: starts[-1] for key, starts in bench.code.items()}
    warnings = [w for w in (same_code_warning(checks), code_drift_warning(bench.code)) if w]
    met = all(v["met"] for v in verdicts if v["met"] is not None)
    correct = all(c["ok"] for checks in bench.checks.values() for c in checks)
    versions = {
        "nginx": subprocess.run(
            [NGINX, "-v"], capture_output=True, text=True, check=False
        ).stderr.strip(),
        "wrk": subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
        .stdout.strip()
        .splitlines()[0],
    }
    path = write_results(
        "downloads",
        {
            "benchmark": "downloads",
            "environment": {**env, **versions},
            "git": git_state(),
            "code": {
                tree.key: {**tree.as_dict(), "imports": bench.code.get(tree.key, [])}
                for tree in bench.trees
            },
            "baseline": bench.trees[1].as_dict() if len(bench.trees) > 1 else None,
            "argv": sys.argv,
            "options": options_of(args),
            "streamport_env": streamport_env,
            "size_bytes": size,
            "setup": bench.setup,
            "range_checks": bench.checks,
            "targets": verdicts,
            "targets_met": met,
            "against_baseline": comparisons,
            "warnings": warnings,
            "summary": summary,
            "runs": bench.runs,
            "seconds": round(time.monotonic() - started, 1),
        },
    )
    print()
    print(text)
    print()
    print(code_line(checks, bench.trees))
    for warning in warnings:
        print(warning)
    print(f"\nresults: {display_path(path)} ({time.monotonic() - started:.0f} s in all)")
    if not correct:
        return 2
    return 1 if args.check and not met else 0


if __name__ == "__main__":
    sys.exit(main())
