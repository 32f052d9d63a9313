"""What access control costs: ranges of a private media against a public one, and signing in.

One random file (256 MiB, ``--size-mib``) is uploaded twice to one ``streamport serve`` (one
worker), by an account made with the real CLI (``streamport user add``, ``token create``):
once ``private``, once ``public``. In the same run, interleaved round by round (order rotated),
``wrk`` asks for random 64 KiB ``Range``\\ s of

* the private media with the account's session cookie (from a real ``POST /login``);
* the private media with its API token (``Authorization: Bearer``);
* the public media, anonymously;
* the same file from Starlette's ``FileResponse`` (``bench/reference_fileresponse.py``).

Then the cost of signing in: the time of one ``POST /login`` (Argon2id included), median of
``--logins`` sequential ones, and the sign-ins per second the one process sustains with
``wrk -c4`` posting the login form for ``--login-seconds``.

Target: private / public ranges per second ≥ 0.90, for the cookie and for the token.

Run from the repository root: ``python3 -m bench.accounts [--check]``.
"""

import argparse
import json
import operator
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx2
import psutil

from bench.common import (
    KiB,
    MiB,
    Server,
    display_path,
    environment,
    git_state,
    group_cpu_seconds,
    make_workdir,
    require_free_space,
    servers_stopped_after,
    size_label,
    spread,
    start_fileresponse_reference,
    start_streamport_code,
    table,
    working_tree,
    write_results,
)
from bench.downloads import parse_wrk, percentile, read_through, rotated
from bench.upload_speed import make_random_file

KEYS = ("cookie", "token", "public", "fileresponse")
LABELS = {
    "cookie": "private, session cookie",
    "token": "private, API token",
    "public": "public, anonymous",
    "fileresponse": "Starlette FileResponse",
}
RANGE_BYTES = 64 * KiB
FILE_NAME = "big.bin"
USER = "bench"
SESSION_COOKIE = "streamport_session"
CSRF_COOKIE = "streamport_csrf"
_CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')

# Target (measured, not asserted unless --check): private ranges/s over public ones.
PRIVATE_OVER_PUBLIC = 0.90

RANGES_SCRIPT = """\
-- Random {span}-byte ranges of a {size}-byte file; the -H headers (a credential) go along.
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
  wrk.headers["Range"] = "bytes=" .. start .. "-" .. (start + span - 1)
  return wrk.format("GET")
end
"""

LOGIN_SCRIPT = """\
-- POST /login with the right password: every request is a full sign-in (303 + a session).
wrk.method = "POST"
wrk.body = "{body}"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Origin"] = "{origin}"
wrk.headers["Cookie"] = "{cookie}"
"""


@dataclass
class Target:
    """One way of fetching the file: a URL, the headers that go with it, the server."""

    key: str
    server: Server
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    processes: list[psutil.Process] = field(default_factory=list)

    def cpu(self) -> float:
        """CPU seconds (user + system) of the server's processes so far."""
        return group_cpu_seconds(self.processes)


# --------------------------------------------------------------------------- set-up


def cli(media_dir: Path, cwd: Path, *args: str, stdin: str = "") -> str:
    """``python -m app.cli ARGS`` on the catalog in ``media_dir``; its standard output."""
    env = {**os.environ, "STREAMPORT_MEDIA_DIR": str(media_dir)}
    env.pop("STREAMPORT_DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"streamport {' '.join(args)} exited {done.returncode}: {done.stderr}")
    return done.stdout


def upload(server: Server, token: str, path: Path, visibility: str) -> dict[str, Any]:
    """``curl -F visibility=… -F file=@PATH /api/media`` with the token; the Media JSON."""
    argv = ["curl", "-s", "-S", "-w", "\n%{http_code}", "-H", f"Authorization: Bearer {token}"]
    argv += ["-F", f"visibility={visibility}", "-F", f"file=@{path}"]
    done = subprocess.run(
        [*argv, f"{server.base_url}/api/media"], capture_output=True, text=True, timeout=600
    )
    body, _, status = done.stdout.rpartition("\n")
    if done.returncode != 0 or status != "201":
        raise RuntimeError(f"upload answered {status} ({done.stderr.strip()}): {body[:500]}")
    [item] = json.loads(body)["items"]
    if item["visibility"] != visibility:
        raise RuntimeError(f"asked for a {visibility} upload, got {item['visibility']}")
    return dict(item)


@dataclass
class LoginForm:
    """What a browser holds before signing in: the CSRF cookie and the form's token."""

    csrf_cookie: str
    csrf_token: str

    def body(self, password: str) -> str:
        """The urlencoded form ``POST /login`` takes."""
        fields = {"username": USER, "password": password, "next": "/"}
        return urlencode({**fields, "csrf_token": self.csrf_token})


def login_form(server: Server) -> LoginForm:
    """``GET /login``: the CSRF cookie it sets and the token in its form."""
    response = httpx2.get(f"{server.base_url}/login", timeout=30)
    tokens = _CSRF_FIELD.findall(response.text)
    cookie = response.cookies.get(CSRF_COOKIE)
    if response.status_code != 200 or not tokens or not cookie:
        raise RuntimeError(f"GET /login answered {response.status_code} without a CSRF token")
    return LoginForm(cookie, tokens[0])


def log_in(
    client: httpx2.Client, server: Server, form: LoginForm, password: str
) -> tuple[float, str]:
    """One ``POST /login`` (the client keeps no cookies between calls); its wall time in ms
    and the session cookie it set."""
    client.cookies.clear()
    started = time.perf_counter()
    response = client.post(
        f"{server.base_url}/login",
        content=form.body(password),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Origin": server.base_url,
            "Cookie": f"{CSRF_COOKIE}={form.csrf_cookie}",
        },
    )
    elapsed = (time.perf_counter() - started) * 1000
    cookie = response.cookies.get(SESSION_COOKIE)
    client.cookies.clear()
    if response.status_code != 303 or not cookie:
        raise RuntimeError(f"POST /login answered {response.status_code}: {response.text[:300]}")
    return elapsed, cookie


def login_answers(server: Server) -> dict[str, int]:
    """``POST /login`` lines in the server's access log so far: all, and those answered 303."""
    log = server.own_log()
    return {
        "all": log.count('"POST /login HTTP/1.1" '),
        "303": log.count('"POST /login HTTP/1.1" 303'),
    }


# --------------------------------------------------------------------------- measurements


def check_range(target: Target, source: Path, start: int) -> dict[str, Any]:
    """One ``Range: bytes=S-(S+65535)`` request with the target's headers: 206 and the right
    65,536 bytes; records Cache-Control."""
    end = start + RANGE_BYTES - 1
    response = httpx2.get(
        target.url, headers={**target.headers, "Range": f"bytes={start}-{end}"}, timeout=30
    )
    with source.open("rb") as handle:
        handle.seek(start)
        expected = handle.read(RANGE_BYTES)
    return {
        "start": start,
        "status": response.status_code,
        "bytes": len(response.content),
        "bytes_equal": response.content == expected,
        "cache_control": response.headers.get("cache-control"),
        "ok": response.status_code == 206 and response.content == expected,
    }


def run_wrk(argv_tail: list[str], target: Target, seconds: float, timeout: float) -> dict[str, Any]:
    """``wrk … URL``, parsed, plus the server's CPU seconds over the run."""
    headers = [f"-H{name}: {value}" for name, value in target.headers.items()]
    argv = ["wrk", *argv_tail, f"-d{seconds:g}s", "--latency", *headers, target.url]
    cpu = target.cpu()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + timeout)
    cpu = target.cpu() - cpu
    if done.returncode != 0:
        raise RuntimeError(f"wrk exited {done.returncode}: {done.stderr}\n{done.stdout}")
    result = {**parse_wrk(done.stdout), "server_cpu_s": cpu}
    if result["non_2xx_3xx"] or sum(result["socket_errors"]):
        raise RuntimeError(f"{target.key}: wrk saw errors or refusals:\n{done.stdout}")
    return result


class Bench:
    """The servers, the file, the credentials and every run's figures."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.size = args.size_mib * MiB
        self.files = workdir / "files"
        self.source = self.files / FILE_NAME
        self.media_dir = workdir / "streamport-media"
        self.password = secrets.token_urlsafe(18)
        self.servers: list[Server] = []
        self.streamport: Server | None = None
        self.targets: dict[str, Target] = {}
        self.runs: dict[str, Any] = {}
        self.checks: dict[str, list[dict[str, Any]]] = {}
        self.setup: dict[str, Any] = {}
        self.code: dict[str, Any] = {}
        self.form: LoginForm | None = None

    def stop(self) -> None:
        """Stop the servers this benchmark started, by their PIDs."""
        for server in self.servers:
            server.stop()

    def start(self) -> None:
        """The file, the account, Streamport with two uploads, the reference; range checks."""
        self.files.mkdir()
        print(f"writing {self.args.size_mib} MiB of random bytes to {self.source}", flush=True)
        make_random_file(self.source, self.size)
        print(f"creating the account {USER!r} and its API token with the CLI", flush=True)
        cli(self.media_dir, self.workdir, "user", "add", USER, "--password-stdin",
            stdin=self.password + "\n")  # fmt: skip
        token = cli(self.media_dir, self.workdir, "token", "create", USER, "--label", "bench")
        token = token.strip()
        tree = working_tree()
        streamport, self.code = start_streamport_code(
            tree, self.media_dir, self.size + 64 * MiB, self.workdir / "streamport.log"
        )
        self.servers.append(streamport)
        self.streamport = streamport
        if tree.dirty:
            print("the working tree has uncommitted changes: Streamport runs them", flush=True)
        items = {}
        for visibility in ("private", "public"):
            print(f"uploading it as {visibility} (POST /api/media, API token)", flush=True)
            items[visibility] = upload(streamport, token, self.source, visibility)
        self.form = login_form(streamport)
        with httpx2.Client(timeout=60) as client:
            _, session_cookie = log_in(client, streamport, self.form, self.password)
        reference = start_fileresponse_reference(self.files, self.workdir / "fileresponse.log")
        self.servers.append(reference)

        private_url = streamport.base_url + items["private"]["stream_url"]
        own = streamport.processes()
        self.targets = {
            "cookie": Target(
                "cookie", streamport, private_url, {"Cookie": f"{SESSION_COOKIE}={session_cookie}"}
            ),
            "token": Target("token", streamport, private_url, {"Authorization": f"Bearer {token}"}),
            "public": Target(
                "public", streamport, streamport.base_url + items["public"]["stream_url"]
            ),
            "fileresponse": Target(
                "fileresponse", reference, f"{reference.base_url}/files/{FILE_NAME}"
            ),
        }
        for target in self.targets.values():
            target.processes = own if target.server is streamport else reference.processes()

        print("reading the file and the stored copies once (page cache)", flush=True)
        source_sha = read_through(self.source)
        # The stored objects (not the catalog, nor its reserve file, nor uploads in progress).
        copies = [
            p
            for p in self.media_dir.rglob("*")
            if p.is_file()
            and p.stat().st_size == self.size
            and ".partial" not in p.parts
            and not p.name.startswith("streamport.db")
        ]
        copy_sha = {str(p): read_through(p) for p in copies}
        anonymous_private = httpx2.get(private_url, timeout=30)
        self.setup = {
            "items": items,
            "source_sha256": source_sha,
            "stored_copies": copy_sha,
            "copies_equal": bool(copies)
            and all(sha == source_sha for sha in copy_sha.values())
            and all(item["sha256"] == source_sha for item in items.values()),
            "private_anonymously": anonymous_private.status_code,
            "urls": {key: t.url for key, t in self.targets.items()},
            "pids": {key: [p.pid for p in t.processes] for key, t in self.targets.items()},
        }
        if not self.setup["copies_equal"]:
            raise RuntimeError("a stored copy differs from the source file")
        if anonymous_private.status_code != 404:
            raise RuntimeError(
                f"the private media answered {anonymous_private.status_code} to an anonymous "
                "request (404 expected): the comparison would not measure access control"
            )
        width = max(len(label) for label in LABELS.values())
        for key in KEYS:
            target = self.targets[key]
            for start in (0, self.size // 2, self.size - RANGE_BYTES):
                self.checks.setdefault(key, []).append(check_range(target, self.source, start))
            ok = all(c["ok"] for c in self.checks[key])
            cache = self.checks[key][0]["cache_control"]
            verdict = "206, 65536 bytes, equal" if ok else "FAILED"
            print(f"range check {LABELS[key]:<{width}} {verdict} (Cache-Control: {cache})")
        if not all(c["ok"] for checks in self.checks.values() for c in checks):
            raise RuntimeError(f"a range check failed: {self.checks}")

    def measure(self) -> None:
        """Ranges (targets rotated per round), then one login at a time, then logins/s."""
        args = self.args
        script = self.workdir / "ranges.lua"
        script.write_text(RANGES_SCRIPT.format(size=self.size, span=RANGE_BYTES, seed=args.seed))
        tail = [f"-t{args.wrk_threads}", f"-c{args.wrk_connections}", "-s", str(script)]
        ranges: dict[str, list[dict[str, Any]]] = {key: [] for key in KEYS}
        width = max(len(label) for label in LABELS.values())
        for round_index in range(args.rounds):
            for key in rotated(round_index, KEYS):
                value = run_wrk(tail, self.targets[key], args.range_seconds, 60)
                ranges[key].append(value)
                print(
                    f"ranges round {round_index + 1}/{args.rounds} {LABELS[key]:<{width}} "
                    f"{value['requests_per_s']:8.0f} req/s, p99 {value.get('p99_ms', 0):.2f} ms",
                    flush=True,
                )
            time.sleep(0.5)
        self.runs["ranges"] = ranges

        assert self.streamport is not None and self.form is not None
        streamport, form = self.streamport, self.form
        processes = streamport.processes()
        login_ms: list[float] = []
        cpu = group_cpu_seconds(processes)
        with httpx2.Client(timeout=60) as client:
            log_in(client, streamport, form, self.password)  # warm-up, not counted
            cpu = group_cpu_seconds(processes)
            for _ in range(args.logins):
                login_ms.append(log_in(client, streamport, form, self.password)[0])
        cpu = group_cpu_seconds(processes) - cpu
        self.runs["login_ms"] = login_ms
        self.runs["login_server_cpu_s"] = cpu
        print(
            f"one login: median {statistics.median(login_ms):.0f} ms over {args.logins} "
            f"(min {min(login_ms):.0f}, max {max(login_ms):.0f}); server CPU "
            f"{1000 * cpu / args.logins:.0f} ms per login",
            flush=True,
        )

        login_script = self.workdir / "login.lua"
        login_script.write_text(
            LOGIN_SCRIPT.format(
                body=form.body(self.password),
                origin=streamport.base_url,
                cookie=f"{CSRF_COOKIE}={form.csrf_cookie}",
            )
        )
        target = Target("login", streamport, f"{streamport.base_url}/login", {}, processes)
        tail = ["-t1", f"-c{args.login_concurrency}", "-s", str(login_script)]
        rates = []
        for round_index in range(args.login_rounds):
            before = login_answers(streamport)
            value = run_wrk(tail, target, args.login_seconds, 60)
            after = login_answers(streamport)
            value["logged_303"] = after["303"] - before["303"]
            if after["all"] - before["all"] != value["logged_303"]:
                raise RuntimeError(f"POST /login answered other than 303: {after} vs {before}")
            rates.append(value)
            print(
                f"logins round {round_index + 1}/{args.login_rounds} "
                f"{value['requests_per_s']:6.1f} logins/s, p50 {value.get('p50_ms', 0):.0f} ms, "
                f"p99 {value.get('p99_ms', 0):.0f} ms, {value['logged_303']} answered 303",
                flush=True,
            )
            time.sleep(0.5)
        self.runs["logins"] = rates


# --------------------------------------------------------------------------- report


def summarize(runs: dict[str, Any]) -> dict[str, Any]:
    """Medians (min–max) per target, and the sign-in figures."""
    ranges = {}
    for key, values in runs["ranges"].items():
        ranges[key] = {
            "ranges_per_s": spread([v["requests_per_s"] for v in values]),
            "p99_ms": spread([v["p99_ms"] for v in values]),
            "p50_ms": spread([v["p50_ms"] for v in values]),
            "server_cpu_ms_per_range": spread(
                [1000 * v["server_cpu_s"] / v["requests"] for v in values if v["requests"]] or [0.0]
            ),
            "bytes_per_response": spread([v["bytes_per_request"] for v in values]),
        }
    login_ms = runs["login_ms"]
    logins = runs["logins"]
    return {
        "ranges": ranges,
        "login": {
            "one_login_ms": spread(login_ms),
            "one_login_p90_ms": percentile(login_ms, 0.9),
            "one_login_server_cpu_ms": 1000 * runs["login_server_cpu_s"] / len(login_ms),
            "logins_per_s": spread([v["requests_per_s"] for v in logins]),
            "concurrent_p50_ms": spread([v["p50_ms"] for v in logins]),
            "concurrent_p99_ms": spread([v["p99_ms"] for v in logins]),
            "server_cpu_ms_per_login": spread(
                [1000 * v["server_cpu_s"] / v["requests"] for v in logins if v["requests"]] or [0.0]
            ),
            "answered_303": sum(v["logged_303"] for v in logins),
            "requests": sum(v["requests"] for v in logins),
        },
    }


def _cell(entry: dict[str, float], digits: int = 0) -> str:
    if entry["min"] == entry["max"]:
        return f"{entry['median']:.{digits}f}"
    return f"{entry['median']:.{digits}f} ({entry['min']:.{digits}f}–{entry['max']:.{digits}f})"


def targets(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Ratios of medians; the two private / public ones have the target."""
    r = summary["ranges"]

    def over(a: str, b: str, name: str) -> float:
        below = r[b][name]["median"]
        return r[a][name]["median"] / below if below else float("inf")

    rows: list[tuple[str, str, float, str | None, float | None]] = [
        ("ranges/s", "private cookie / public", over("cookie", "public", "ranges_per_s"), ">=",
         PRIVATE_OVER_PUBLIC),
        ("ranges/s", "private token / public", over("token", "public", "ranges_per_s"), ">=",
         PRIVATE_OVER_PUBLIC),
        ("p99 latency", "private cookie / public", over("cookie", "public", "p99_ms"), None, None),
        ("p99 latency", "private token / public", over("token", "public", "p99_ms"), None, None),
        ("ranges/s", "public / FileResponse", over("public", "fileresponse", "ranges_per_s"),
         None, None),
        ("ranges/s", "private cookie / FileResponse",
         over("cookie", "fileresponse", "ranges_per_s"), None, None),
        ("ranges/s", "private token / FileResponse",
         over("token", "fileresponse", "ranges_per_s"), None, None),
    ]  # fmt: skip
    compare: dict[str, Callable[[float, float], bool]] = {">=": operator.ge}
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


def report(
    summary: dict[str, Any],
    checks: dict[str, list[dict[str, Any]]],
    verdicts: list[dict[str, Any]],
    args: argparse.Namespace,
) -> str:
    """The ranges table, the ratios, the sign-in table and notes."""
    r = summary["ranges"]

    def row(label: str, cell: Callable[[str], str]) -> list[str]:
        return [label, *(cell(key) for key in KEYS)]

    rows = [
        row(
            f"random 64 KiB ranges/s, {args.wrk_connections} connections",
            lambda k: _cell(r[k]["ranges_per_s"]),
        ),
        row("  p99 latency, ms", lambda k: _cell(r[k]["p99_ms"], 2)),
        row("  p50 latency, ms", lambda k: _cell(r[k]["p50_ms"], 2)),
        row("  server CPU ms per range", lambda k: _cell(r[k]["server_cpu_ms_per_range"], 3)),
        row("  bytes per response (wrk)", lambda k: f"{r[k]['bytes_per_response']['median']:.0f}"),
        row(
            "  range check: 206 + 65536 bytes, equal",
            lambda k: "yes" if all(c["ok"] for c in checks[k]) else "NO",
        ),
        row("  Cache-Control", lambda k: str(checks[k][0]["cache_control"])),
    ]
    ranges_table = table(["measurement (median, min–max)", *(LABELS[k] for k in KEYS)], rows)
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
    ratio_table = table(
        ["measurement", "ratio of medians", "value", "target", "result"], ratio_rows
    )
    g = summary["login"]
    login_rows = [
        [f"one POST /login, ms (median of {args.logins}, min–max)", _cell(g["one_login_ms"])],
        ["  p90, ms", f"{g['one_login_p90_ms']:.0f}"],
        ["  server CPU ms per login", f"{g['one_login_server_cpu_ms']:.0f}"],
        [
            f"logins/s, {args.login_concurrency} at once, {args.login_seconds:g} s "
            f"x {args.login_rounds}",
            _cell(g["logins_per_s"], 1),
        ],
        ["  p50 latency, ms", _cell(g["concurrent_p50_ms"])],
        ["  p99 latency, ms", _cell(g["concurrent_p99_ms"])],
        ["  server CPU ms per login", _cell(g["server_cpu_ms_per_login"])],
        ["  answered 303 (server log) / sent", f"{g['answered_303']} / {g['requests']}"],
    ]
    login_table = table(["signing in (one worker)", "value"], login_rows)
    notes = [
        f"File {size_label(args.size_mib * MiB)}; ranges: {args.rounds} rounds x "
        f"{args.range_seconds:g} s per target (wrk -t{args.wrk_threads} "
        f"-c{args.wrk_connections}), targets rotated per round. Streamport: one worker, its "
        "default lookup cache. Clients (wrk) share the machine's cores with the servers.",
    ]
    return f"{ranges_table}\n\n{ratio_table}\n\n{login_table}\n\n" + "\n".join(notes)


def main() -> int:
    """Command line entry."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=256, help="file size (default 256)")
    parser.add_argument("--rounds", type=int, default=3, help="range rounds (3)")
    parser.add_argument("--range-seconds", type=float, default=8, help="seconds per wrk run (8)")
    parser.add_argument("--wrk-threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument("--wrk-connections", type=int, default=16, help="wrk connections (16)")
    parser.add_argument("--seed", type=int, default=20240601, help="seed of the random ranges")
    parser.add_argument("--logins", type=int, default=10, help="sequential logins timed (10)")
    parser.add_argument("--login-concurrency", type=int, default=4, help="logins at once (4)")
    parser.add_argument("--login-seconds", type=float, default=5, help="seconds per run (5)")
    parser.add_argument("--login-rounds", type=int, default=3, help="logins/s runs (3)")
    parser.add_argument("--tmp-dir", type=Path, help="where the file and servers' data go")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when a target is missed, not only on errors"
    )
    args = parser.parse_args()
    if min(args.rounds, args.logins, args.login_rounds, args.size_mib) < 1:
        parser.error("--rounds, --logins, --login-rounds and --size-mib must be at least 1")
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install -y wrk")

    started = time.monotonic()
    workdir = make_workdir(args.tmp_dir, "streamport-bench-accounts-")
    bench = Bench(args, workdir)
    with servers_stopped_after(bench, workdir, args.keep):
        # The file and two stored copies (if the storage keeps one per upload), plus slack.
        require_free_space(workdir, 3 * args.size_mib * MiB + 256 * MiB)
        env = environment(workdir)
        streamport_env = {k: v for k, v in os.environ.items() if k.startswith("STREAMPORT_")}
        print(
            f"accounts benchmark in {workdir}, {env['cpus']} CPUs, Python {env['python']}; "
            f"Streamport environment: {streamport_env or '(none set)'}",
            flush=True,
        )
        bench.start()
        bench.measure()

    summary = summarize(bench.runs)
    verdicts = targets(summary)
    text = report(summary, bench.checks, verdicts, args)
    met = all(v["met"] for v in verdicts if v["met"] is not None)
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    path = write_results(
        "accounts",
        {
            "benchmark": "accounts",
            "environment": {**env, "wrk": (wrk_version.stdout.splitlines() or ["?"])[0]},
            "git": git_state(),
            "code": bench.code,
            "argv": sys.argv,
            "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "streamport_env": streamport_env,
            "size_bytes": args.size_mib * MiB,
            "setup": bench.setup,
            "range_checks": bench.checks,
            "targets": verdicts,
            "targets_met": met,
            "summary": summary,
            "runs": bench.runs,
            "seconds": round(time.monotonic() - started, 1),
        },
    )
    print()
    print(text)
    print(
        f"\nStreamport: {working_tree().commit[:12]}, app from {bench.code.get('app_package')} "
        f"(fingerprint {str(bench.code.get('fingerprint'))[:12]})"
    )
    print(f"\nresults: {display_path(path)} ({time.monotonic() - started:.0f} s in all)")
    return 1 if args.check and not met else 0


if __name__ == "__main__":
    sys.exit(main())
