"""Memory and descriptors of Streamport while many idle connections are open.

The attack this reproduces: 1,100 TCP connections that never send a request exhaust a server's
descriptors under the usual ``ulimit -n`` of 1024, and ``/healthz`` stops answering. For each
scenario (``--connections`` × ``--modes``) and each Streamport (HEAD, and with ``--baseline REV``
that revision, from a detached git worktree), a fresh ``streamport serve`` is started under
``prlimit --nofile=N:N`` (``--nofile``, default 1024); then the client opens the connections and

* ``idle``: sends nothing;
* ``partial``: sends the start of a request head (no blank line) and stalls, slowloris style.

Measured: the server's RSS and open descriptors before, while the connections are open, and
after they are gone; whether ``GET /healthz`` and a 64 KiB ``Range`` request still answer while
they are open, and how fast (fresh connection each); how many of the idle connections the
server closes, and after how long.

Run from the repository root:
``python3 -m bench.idle_connections [--baseline REV] [--connections 1000 1100]``.
"""

import argparse
import http.client
import re
import resource
import selectors
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import psutil

from bench.common import (
    CodeTree,
    KiB,
    MiB,
    Server,
    add_worktree,
    code_drift_warning,
    code_line,
    display_path,
    environment,
    git_state,
    make_workdir,
    mib,
    options_of,
    remove_worktree,
    same_code_warning,
    servers_stopped_after,
    start_streamport_code,
    table,
    working_tree,
    write_results,
)
from bench.downloads import percentile, rotated, upload_to_streamport
from bench.upload_speed import make_random_file

MODES = {
    "idle": b"",
    # No blank line: the head never ends, so the server waits for the rest of it.
    "partial": b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: idle-bench\r\nX-Slow: a",
}
MODE_LABELS = {"idle": "send nothing", "partial": "partial request head, then stall"}
FILE_BYTES = 1 * MiB
RANGE_BYTES = 64 * KiB
MAX_UPLOAD_BYTES = 64 * MiB
# Client descriptors beyond the idle connections: probes, the selector, pipes, log files.
CLIENT_SPARE_FDS = 256
CONNECT_GIVE_UP_AFTER = 10
PROCESSING_WAIT_S = 60.0
RECOVERY_WAIT_S = 30.0
HOLD_POLL_S = 1.0
HOLD_POLL_TIMEOUT_S = 1.0


def raise_descriptor_limit(needed: int) -> dict[str, int]:
    """Raise this process's soft ``RLIMIT_NOFILE`` to ``needed`` (at most the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return {"soft": soft, "hard": hard}
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < needed:
        raise SystemExit(
            f"the client needs {needed} descriptors, the hard limit is {hard}: raise it "
            f"(ulimit -Hn) or open fewer --connections"
        )
    return {"soft": target, "hard": hard}


# --------------------------------------------------------------------------- probes


def request_once(
    port: int, path: str, headers: dict[str, str], timeout: float
) -> tuple[int, bytes, float]:
    """One GET over a fresh connection: status, body, seconds from connect to the last byte."""
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        body = response.read()
        return response.status, body, time.perf_counter() - started
    finally:
        connection.close()


@dataclass
class ProbeTarget:
    """What a probe asks for, and what a right answer is."""

    name: str
    path: str
    source: bytes | None = None  # for ranges: the file, to compare the bytes

    def request(self, index: int) -> tuple[str, dict[str, str], int, bytes | None]:
        """Path, headers, expected status and expected body of the ``index``-th request."""
        if self.source is None:
            return self.path, {}, 200, None
        # Offsets spread over the file (and not page-aligned), one per request.
        start = (index * 7919 * KiB + 123) % (len(self.source) - RANGE_BYTES)
        end = start + RANGE_BYTES - 1
        expected = self.source[start : end + 1]
        return self.path, {"Range": f"bytes={start}-{end}"}, 206, expected


def probe(
    port: int, target: ProbeTarget, count: int, timeout: float, give_up_after: int
) -> dict[str, Any]:
    """``count`` requests one after the other, each over a fresh connection.

    After ``give_up_after`` failures in a row the rest are skipped: a server that does not
    answer would otherwise cost ``count`` × ``timeout``.
    """
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    failed_in_a_row = 0
    done = 0
    for index in range(count):
        if failed_in_a_row >= give_up_after:
            break
        done += 1
        path, headers, status, expected = target.request(index)
        try:
            got, body, seconds = request_once(port, path, headers, timeout)
        except (OSError, http.client.HTTPException) as exc:
            errors[type(exc).__name__] += 1
            failed_in_a_row += 1
            continue
        if got != status or (expected is not None and body != expected):
            errors[f"status {got}, {len(body)} bytes"] += 1
            failed_in_a_row += 1
            continue
        failed_in_a_row = 0
        latencies.append(seconds * 1000)
    return {
        "requests": count,
        "answered": len(latencies),
        "failed": done - len(latencies),
        "skipped": count - done,
        "errors": dict(errors),
        "median_ms": statistics.median(latencies) if latencies else None,
        "p90_ms": percentile(latencies, 0.9) if latencies else None,
        "latencies_ms": [round(v, 3) for v in latencies],
    }


# --------------------------------------------------------------------------- idle clients


@dataclass
class IdleClients:
    """``count`` connections that send ``payload`` (maybe nothing) and then nothing more.

    A thread watches them for the server's side of the story: data (e.g. a 408), then end of
    file or a reset. It keeps watching while the probes run, so close times are not delayed by
    them.
    """

    port: int
    count: int
    payload: bytes
    connect_timeout: float = 5.0
    sockets: list[socket.socket] = field(default_factory=list)
    opened_at: list[float] = field(default_factory=list)
    closed_at: dict[int, float] = field(default_factory=dict)
    close_kind: dict[int, str] = field(default_factory=dict)
    first_line: dict[int, str] = field(default_factory=dict)
    connect_errors: Counter[str] = field(default_factory=Counter)
    all_open_at: float = 0.0
    _selector: selectors.BaseSelector = field(default_factory=selectors.DefaultSelector)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def open(self) -> None:
        """Connect them all (one after the other), send the payload, start watching."""
        failed_in_a_row = 0
        for _ in range(self.count):
            try:
                sock = socket.create_connection(
                    ("127.0.0.1", self.port), timeout=self.connect_timeout
                )
                if self.payload:
                    sock.sendall(self.payload)
            except OSError as exc:
                self.connect_errors[type(exc).__name__] += 1
                failed_in_a_row += 1
                if failed_in_a_row >= CONNECT_GIVE_UP_AFTER:
                    break
                continue
            failed_in_a_row = 0
            sock.setblocking(False)
            self._selector.register(sock, selectors.EVENT_READ, len(self.sockets))
            self.sockets.append(sock)
            self.opened_at.append(time.monotonic())
        self.all_open_at = time.monotonic()
        self._thread = threading.Thread(target=self._watch, name="idle-watch", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                if len(self.closed_at) == len(self.sockets):
                    return
            for key, _ in self._selector.select(timeout=0.1):
                index = int(key.data)
                sock = self.sockets[index]
                try:
                    data = sock.recv(64 * KiB)
                except BlockingIOError:
                    continue
                except OSError as exc:
                    self._closed(index, type(exc).__name__)
                    continue
                if data:
                    if index not in self.first_line:
                        self.first_line[index] = data.split(b"\r\n", 1)[0][:60].decode(
                            errors="replace"
                        )
                    continue
                self._closed(index, "EOF")

    def _closed(self, index: int, kind: str) -> None:
        with self._lock:
            self.closed_at[index] = time.monotonic()
            self.close_kind[index] = kind
        self._selector.unregister(self.sockets[index])

    @property
    def open_count(self) -> int:
        """Connections the server has not closed (yet)."""
        with self._lock:
            return len(self.sockets) - len(self.closed_at)

    def close_all(self) -> None:
        """Stop watching, then close the client side of every connection."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._selector.close()
        for sock in self.sockets:
            sock.close()

    def summary(self) -> dict[str, Any]:
        """How many the server closed, how, after how long, with which answer."""
        with self._lock:
            closed = dict(self.closed_at)
            kinds = Counter(self.close_kind.values())
        seconds = sorted(closed[i] - self.opened_at[i] for i in closed)
        # Grouped by the server's first line, since one server may treat connections two ways
        # (e.g. 503 at once over a limit, 408 after a timeout) and one median would hide that.
        groups: dict[str, list[float]] = {}
        for i in closed:
            groups.setdefault(self.first_line.get(i, "nothing"), []).append(
                closed[i] - self.opened_at[i]
            )
        return {
            "requested": self.count,
            "opened": len(self.sockets),
            "connect_errors": dict(self.connect_errors),
            "open_seconds": round(self.all_open_at - self.opened_at[0], 3)
            if self.opened_at
            else 0.0,
            "closed_by_server": len(closed),
            "close_kinds": dict(kinds),
            "answers": dict(Counter(self.first_line.values())),
            "closed_by_answer": {
                answer: {
                    "count": len(values),
                    "min": min(values),
                    "median": statistics.median(values),
                    "max": max(values),
                }
                for answer, values in sorted(groups.items(), key=lambda kv: -len(kv[1]))
            },
            "seconds_to_close": {
                "min": seconds[0],
                "median": statistics.median(seconds),
                "max": seconds[-1],
            }
            if seconds
            else None,
        }


# --------------------------------------------------------------------------- server side


def accept_queue(port: int) -> int | None:
    """Connections the kernel completed that the server has not accepted yet (``ss`` Recv-Q
    of the listening socket)."""
    done = subprocess.run(
        ["ss", "-Hltn", f"( sport = :{port} )"], capture_output=True, text=True, check=False
    )
    for line in done.stdout.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[1].isdigit():
            return int(fields[1])
    return None


# asyncio says "Too many open files"; some loops log the errno name instead.
_EMFILE = re.compile(r"Too many open files|EMFILE")


def server_state(server: Server) -> dict[str, Any]:
    """RSS, open descriptors, accepted connections and the accept queue, right now."""
    process = psutil.Process(server.pid)
    sockets = process.net_connections(kind="tcp")
    accepted = sum(
        1 for c in sockets if c.status == psutil.CONN_ESTABLISHED and c.laddr.port == server.port
    )
    return {
        "rss_mib": mib(process.memory_info().rss),
        "fds": process.num_fds(),
        "accepted_connections": accepted,
        "accept_queue": accept_queue(server.port),
        "too_many_open_files": len(_EMFILE.findall(server.own_log())),
    }


def wait_for_steady_fds(server: Server, quiet: float = 1.0, timeout: float = 15.0) -> float:
    """Wait until the server's descriptor count has not changed for ``quiet`` seconds (it has
    accepted what it is going to accept); returns the seconds waited."""
    started = time.monotonic()
    process = psutil.Process(server.pid)
    last, since = process.num_fds(), time.monotonic()
    while time.monotonic() - started < timeout:
        time.sleep(0.1)
        now = process.num_fds()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
    return time.monotonic() - started


def _healthz_ok(port: int, timeout: float) -> bool:
    try:
        return request_once(port, "/healthz", {}, timeout)[0] == 200
    except (OSError, http.client.HTTPException):
        return False


def seconds_until_healthy(port: int, limit: float) -> float | None:
    """Seconds until ``GET /healthz`` answers 200 again, ``None`` if not within ``limit``."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        if _healthz_ok(port, 1.0):
            return time.monotonic() - started
        time.sleep(0.1)
    return None


# --------------------------------------------------------------------------- the run


class Bench:
    """The code trees, their catalogs, and every scenario's figures."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.servers: list[Server] = []
        self.trees: list[CodeTree] = [working_tree()]
        self.items: dict[str, dict[str, Any]] = {}
        self.code: dict[str, list[dict[str, Any]]] = {}
        self.results: list[dict[str, Any]] = []
        self.source = workdir / "probe.bin"

    def stop(self) -> None:
        """Stop the servers this benchmark started (by PID); drop the worktree."""
        for server in self.servers:
            server.stop()
        self.servers.clear()
        for tree in self.trees:
            remove_worktree(tree)

    def _start(self, tree: CodeTree, nofile: int | None) -> Server:
        server, check = start_streamport_code(
            tree,
            self.workdir / f"{tree.key}-media",
            MAX_UPLOAD_BYTES,
            self.workdir / f"{tree.key}.log",
            nofile=nofile,
            others=self.trees,
        )
        self.code.setdefault(tree.key, []).append(check)
        self.servers.append(server)
        return server

    def _stop(self, server: Server) -> None:
        server.stop()
        self.servers.remove(server)

    def start(self) -> None:
        """Make the worktree, and give each Streamport a 1 MiB file to serve ranges from."""
        if self.args.baseline:
            self.trees.append(add_worktree(self.args.baseline, self.workdir))
        make_random_file(self.source, FILE_BYTES)
        for tree in self.trees:
            server = self._start(tree, None)
            item = upload_to_streamport(server, self.source)
            wait_for_processing(server, item)
            self.items[tree.key] = item
            self._stop(server)
        print(code_line({t.key: self.code[t.key][-1] for t in self.trees}, self.trees))
        warning = same_code_warning({t.key: self.code[t.key][-1] for t in self.trees})
        if warning:
            print(warning)

    def measure(self) -> None:
        """Every scenario; within one, the Streamports one after the other, order rotated."""
        keys = [tree.key for tree in self.trees]
        trees = {tree.key: tree for tree in self.trees}
        scenarios = [(n, mode) for n in self.args.connections for mode in self.args.modes]
        for index, (count, mode) in enumerate(scenarios):
            for key in rotated(index, keys):
                result = self.scenario(trees[key], count, mode)
                self.results.append(result)
                print(progress_line(result), flush=True)

    def scenario(self, tree: CodeTree, count: int, mode: str) -> dict[str, Any]:
        """A fresh server; ``count`` connections in ``mode``; the figures."""
        args = self.args
        source = self.source.read_bytes()
        health = ProbeTarget("healthz", "/healthz")
        ranges = ProbeTarget("range", self.items[tree.key]["stream_url"], source)
        server = self._start(tree, args.nofile or None)
        clients: IdleClients | None = None
        try:
            limit = psutil.Process(server.pid).rlimit(psutil.RLIMIT_NOFILE)
            # First requests import and cache things: keep them out of the "before" figures.
            for target in (health, ranges):
                probe(server.port, target, 3, args.probe_timeout, args.give_up_after)
            before = server_state(server)
            probes_before = {
                t.name: probe(server.port, t, args.probes, args.probe_timeout, args.give_up_after)
                for t in (health, ranges)
            }
            clients = IdleClients(server.port, count, MODES[mode], args.connect_timeout)
            clients.open()
            settled = wait_for_steady_fds(server)
            during = server_state(server)
            probes_during = {
                t.name: probe(server.port, t, args.probes, args.probe_timeout, args.give_up_after)
                for t in (health, ranges)
            }
            # Hold them open, counted from when the last one was opened; /healthz now and then
            # shows whether (and when) the server serves again while they stay.
            deadline = clients.all_open_at + args.hold_seconds
            polls: list[list[float]] = []
            while time.monotonic() < deadline and clients.open_count > 0:
                answered = _healthz_ok(server.port, HOLD_POLL_TIMEOUT_S)
                polls.append([round(time.monotonic() - clients.all_open_at, 2), answered])
                time.sleep(max(0.0, min(HOLD_POLL_S, deadline - time.monotonic())))
            end_of_hold = server_state(server)
            closes = clients.summary()
            clients.close_all()
            clients = None
            recovered = seconds_until_healthy(server.port, RECOVERY_WAIT_S)
            time.sleep(1.0)
            after = server_state(server)
        finally:
            if clients is not None:
                clients.close_all()
            self._stop(server)
        accepted = during["accepted_connections"]
        return {
            "tree": tree.key,
            "label": tree.label,
            "connections": count,
            "mode": mode,
            "server_pid": server.pid,
            "server_nofile": list(limit),
            "before": before,
            "during": during,
            "end_of_hold": end_of_hold,
            "after_release": after,
            "settle_seconds": round(settled, 2),
            "rss_growth_mib": round(during["rss_mib"] - before["rss_mib"], 1),
            "rss_per_accepted_kib": round(
                (during["rss_mib"] - before["rss_mib"]) * 1024 / accepted, 1
            )
            if accepted
            else None,
            "probes_before": probes_before,
            "probes_during": probes_during,
            "idle": closes,
            "hold_seconds": args.hold_seconds,
            "healthz_after_release_s": recovered,
            # [seconds since the connections were open, answered]
            "hold_polls": polls,
        }


def wait_for_processing(server: Server, item: dict[str, Any]) -> None:
    """Wait (best effort) until the upload's processing job has ended, so that no job runs
    during the measurements of a later start."""
    deadline = time.monotonic() + PROCESSING_WAIT_S
    url = f"{server.base_url}/api/media/{item['id']}"
    while time.monotonic() < deadline:
        response = httpx2.get(url, headers=server.auth_headers, timeout=10)
        state = (response.json().get("processing") or {}).get("state")
        if state not in ("pending", "running"):
            return
        time.sleep(0.2)


# --------------------------------------------------------------------------- report


def _probe_cell(p: dict[str, Any]) -> str:
    answered = f"{p['answered']}/{p['requests']}"
    if p["answered"]:
        answered += f", {p['median_ms']:.1f} / {p['p90_ms']:.1f} ms"
    if p["errors"]:
        answered += " (" + ", ".join(f"{k} ×{v}" for k, v in p["errors"].items()) + ")"
    if p["skipped"]:
        answered += f", {p['skipped']} skipped"
    return answered


def _closes_cell(idle: dict[str, Any]) -> str:
    cell = f"{idle['closed_by_server']} of {idle['opened']}"
    if idle["close_kinds"]:
        cell += " (" + ", ".join(f"{k} ×{v}" for k, v in idle["close_kinds"].items()) + ")"
    return cell


def _close_time_cell(idle: dict[str, Any]) -> str:
    groups = idle["closed_by_answer"]
    if not groups:
        return "-"
    return "; ".join(
        f"{answer if answer == 'nothing' else repr(answer)} ×{g['count']}: "
        f"{g['median']:.1f} ({g['min']:.1f}–{g['max']:.1f})"
        for answer, g in groups.items()
    )


def _hold_cell(polls: list[list[float]]) -> str:
    if not polls:
        return "-"
    ok = [t for t, answered in polls if answered]
    failed = [t for t, answered in polls if not answered]
    cell = f"{len(ok)}/{len(polls)}"
    if failed and ok:
        cell += f", failing until {max(failed):.1f} s, answering from {min(ok):.1f} s"
    return cell


def progress_line(r: dict[str, Any]) -> str:
    """One line per scenario and server, while the run goes on."""
    d = r["probes_during"]
    return (
        f"{r['label']:<22} {r['connections']:>5} {r['mode']:<8} fds {r['before']['fds']} → "
        f"{r['during']['fds']}, RSS {r['before']['rss_mib']} → {r['during']['rss_mib']} MiB, "
        f"healthz {d['healthz']['answered']}/{d['healthz']['requests']}, "
        f"range {d['range']['answered']}/{d['range']['requests']}, "
        f"closed {r['idle']['closed_by_server']}/{r['idle']['opened']}"
    )


def report(
    results: Sequence[dict[str, Any]], trees: Sequence[CodeTree], args: argparse.Namespace
) -> str:
    """One table per scenario: rows are measurements, columns the Streamports."""
    out = []
    scenarios = dict.fromkeys((r["connections"], r["mode"]) for r in results)
    for count, mode in scenarios:
        by_tree = {r["tree"]: r for r in results if (r["connections"], r["mode"]) == (count, mode)}
        columns = [by_tree[t.key] for t in trees if t.key in by_tree]

        def row(
            label: str,
            cell: Callable[[dict[str, Any]], object],
            cols: list[dict[str, Any]] = columns,
        ) -> list[str]:
            return [label, *(str(cell(r)) for r in cols)]

        rows = [
            row(
                "server descriptor limit (soft:hard)", lambda r: "{}:{}".format(*r["server_nofile"])
            ),
            row(
                "connections opened by the client",
                lambda r: (
                    f"{r['idle']['opened']} of {r['idle']['requested']}"
                    + (f" ({r['idle']['connect_errors']})" if r["idle"]["connect_errors"] else "")
                ),
            ),
            row(
                "  accepted by the server (its sockets)",
                lambda r: r["during"]["accepted_connections"],
            ),
            row("  waiting in its accept queue", lambda r: r["during"]["accept_queue"]),
            row(
                "  'Too many open files' in its log",
                lambda r: r["end_of_hold"]["too_many_open_files"],
            ),
            row(
                "open descriptors: before → while open",
                lambda r: f"{r['before']['fds']} → {r['during']['fds']}",
            ),
            row(
                "  end of hold → 1 s after the clients hung up",
                lambda r: f"{r['end_of_hold']['fds']} → {r['after_release']['fds']}",
            ),
            row(
                "RSS MiB: before → while open",
                lambda r: f"{r['before']['rss_mib']} → {r['during']['rss_mib']}",
            ),
            row(
                "  growth MiB (per accepted connection, KiB)",
                lambda r: f"{r['rss_growth_mib']} ({r['rss_per_accepted_kib']})",
            ),
            row("  after the clients hung up", lambda r: r["after_release"]["rss_mib"]),
            row(
                "GET /healthz before: answered, median / p90",
                lambda r: _probe_cell(r["probes_before"]["healthz"]),
            ),
            row("  while open", lambda r: _probe_cell(r["probes_during"]["healthz"])),
            row(
                "64 KiB range before: answered, median / p90",
                lambda r: _probe_cell(r["probes_before"]["range"]),
            ),
            row("  while open", lambda r: _probe_cell(r["probes_during"]["range"])),
            row(
                f"closed by the server within {args.hold_seconds:g} s",
                lambda r: _closes_cell(r["idle"]),
            ),
            row(
                "  what it sent first ×count: s to close, median (min–max)",
                lambda r: _close_time_cell(r["idle"]),
            ),
            row(
                f"/healthz every {HOLD_POLL_S:g} s through the hold: answered",
                lambda r: _hold_cell(r["hold_polls"]),
            ),
            row(
                "/healthz answers again after the clients hung up",
                lambda r: (
                    "no (30 s)"
                    if r["healthz_after_release_s"] is None
                    else f"{r['healthz_after_release_s']:.2f} s"
                ),
            ),
        ]
        title = f"{count} connections, {MODE_LABELS[mode]} (prlimit --nofile={args.nofile})"
        if not args.nofile:
            title = f"{count} connections, {MODE_LABELS[mode]} (descriptor limit inherited)"
        out.append(f"{title}\n\n" + table(["", *(r["label"] for r in columns)], rows))
    notes = (
        f"Probes: {args.probes} requests each over fresh connections, one after the other, "
        f"{args.probe_timeout:g} s timeout, the rest skipped after {args.give_up_after} failures "
        "in a row. 'While open' is measured once the server's descriptor count is steady. "
        "Descriptors and RSS: psutil on the server process (one uvicorn worker)."
    )
    return "\n\n".join(out) + "\n\n" + notes


def targets(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per scenario: did HEAD keep answering /healthz and the range while the connections were
    open?"""
    verdicts = []
    for r in results:
        if r["tree"] != "streamport":
            continue
        during = r["probes_during"]
        met = all(during[name]["answered"] == during[name]["requests"] for name in during)
        verdicts.append(
            {
                "connections": r["connections"],
                "mode": r["mode"],
                "target": "every /healthz and range probe answered while open",
                "met": met,
            }
        )
    return verdicts


def main() -> int:
    """Command line entry."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--connections",
        type=int,
        nargs="+",
        default=[1000],
        metavar="N",
        help="idle connections per scenario; several values, several scenarios (1000)",
    )
    parser.add_argument(
        "--modes",
        nargs="+",
        choices=tuple(MODES),
        default=list(MODES),
        help="what the connections send: idle (nothing), partial (a stalled head); both",
    )
    parser.add_argument(
        "--nofile",
        type=int,
        default=1024,
        help="server descriptor limit, prlimit --nofile=N:N (1024; 0: inherit this shell's)",
    )
    parser.add_argument("--probes", type=int, default=20, help="requests per probe (20)")
    parser.add_argument("--probe-timeout", type=float, default=5.0, help="probe timeout (5 s)")
    parser.add_argument(
        "--give-up-after", type=int, default=3, help="skip the rest after N failures (3)"
    )
    parser.add_argument(
        "--hold-seconds", type=float, default=30.0, help="how long the connections stay (30)"
    )
    parser.add_argument("--connect-timeout", type=float, default=5.0, help="per connection (5 s)")
    parser.add_argument(
        "--baseline", metavar="REV", help="also measure Streamport at git revision REV"
    )
    parser.add_argument("--tmp-dir", type=Path, help="where the catalogs and logs go")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when HEAD missed a target, not only on errors"
    )
    args = parser.parse_args()
    if min(*args.connections, args.probes, args.give_up_after) < 1 or args.nofile < 0:
        parser.error(
            "--connections, --probes and --give-up-after must be at least 1, --nofile at least 0"
        )
    if args.nofile and shutil.which("prlimit") is None:
        raise SystemExit("prlimit is missing: apt-get install -y util-linux")
    client_limit = raise_descriptor_limit(max(args.connections) + CLIENT_SPARE_FDS)

    started = time.monotonic()
    workdir = make_workdir(args.tmp_dir, "streamport-bench-idle-")
    bench = Bench(args, workdir)
    with servers_stopped_after(bench, workdir, args.keep):
        env = environment(workdir)
        print(
            f"idle connections benchmark in {workdir}, {env['cpus']} CPUs, "
            f"Python {env['python']}; client descriptor limit {client_limit['soft']}",
            flush=True,
        )
        if bench.trees[0].dirty:
            print("the working tree has uncommitted changes: Streamport runs them", flush=True)
        bench.start()
        bench.measure()

    text = report(bench.results, bench.trees, args)
    verdicts = targets(bench.results)
    met = all(v["met"] for v in verdicts)
    checks = {key: starts[-1] for key, starts in bench.code.items()}
    warnings = [w for w in (same_code_warning(checks), code_drift_warning(bench.code)) if w]
    path = write_results(
        "idle_connections",
        {
            "benchmark": "idle_connections",
            "environment": env,
            "git": git_state(),
            "argv": sys.argv,
            "options": options_of(args),
            "client_nofile": client_limit,
            "code": {
                tree.key: {**tree.as_dict(), "imports": bench.code.get(tree.key, [])}
                for tree in bench.trees
            },
            "baseline": bench.trees[1].as_dict() if len(bench.trees) > 1 else None,
            "targets": verdicts,
            "targets_met": met,
            "warnings": warnings,
            "scenarios": bench.results,
            "seconds": round(time.monotonic() - started, 1),
        },
    )
    print()
    print(text)
    print()
    for v in verdicts:
        print(
            f"target, Streamport, {v['connections']} {v['mode']}: {v['target']}: "
            f"{'met' if v['met'] else 'MISSED'}"
        )
    print()
    print(code_line(checks, bench.trees))
    for warning in warnings:
        print(warning)
    print(f"\nresults: {display_path(path)} ({time.monotonic() - started:.0f} s in all)")
    return 1 if args.check and not met else 0


if __name__ == "__main__":
    sys.exit(main())
