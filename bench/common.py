"""Shared by the benchmarks: servers on 127.0.0.1, RSS sampling, tables and result files."""

import argparse
import hashlib
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import httpx2
import psutil

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO_ROOT / "bench" / "results"
KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
MB = 1_000_000
# The admin a benchmark makes on each Streamport it starts (``Server.token`` is its token);
# not ``bench``, the member bench/accounts.py makes.
BENCH_USER = "bench-admin"
# Multipart fields sent before the file on every upload to a Streamport: public, so that
# anonymous downloads measure what revisions without accounts (which ignore the field) and
# the Starlette and nginx references serve.
UPLOAD_FIELDS: dict[str, str] = {"visibility": "public"}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A server subprocess started by a benchmark; ``pid`` is the process that serves."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    # Where this process's lines begin in ``log_path`` (a restart appends to the same log).
    log_offset: int = 0
    # A Streamport's API token for the admin ``BENCH_USER``; ``None`` for other servers and
    # for revisions without accounts.
    token: str | None = None

    @property
    def pid(self) -> int:
        """The serving process (one uvicorn worker, so the process itself)."""
        return self.process.pid

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def auth_headers(self) -> dict[str, str]:
        """``Authorization: Bearer TOKEN`` when the server has a token, else nothing."""
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def upload_curl_args(self) -> list[str]:
        """curl options for ``POST /api/media``: the token's header and ``UPLOAD_FIELDS``
        (before the ``-F file=@…`` the caller adds)."""
        args = [
            arg for name, value in self.auth_headers.items() for arg in ("-H", f"{name}: {value}")
        ]
        return args + [
            arg for name, value in UPLOAD_FIELDS.items() for arg in ("-F", f"{name}={value}")
        ]

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the server's log, for error messages."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def own_log(self) -> str:
        """What this process wrote to its log (not an earlier process's lines)."""
        try:
            with self.log_path.open("rb") as handle:
                handle.seek(self.log_offset)
                return handle.read().decode(errors="replace")
        except OSError:
            return ""

    def processes(self) -> list[psutil.Process]:
        """The server's process and its children (nginx: master and workers)."""
        main = psutil.Process(self.pid)
        return [main, *main.children(recursive=True)]

    def stop(self) -> None:
        """SIGTERM this server (by its PID only), then SIGKILL if it does not exit in time."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def spawn(
    name: str, argv: list[str], env: dict[str, str], cwd: Path, log_path: Path, port: int
) -> Server:
    """Start ``argv`` with its output in ``log_path`` and wait until ``/healthz`` answers."""
    offset = log_path.stat().st_size if log_path.exists() else 0
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    server = Server(name, process, port, log_path, offset)
    try:
        wait_healthy(server)
    except BaseException:
        server.stop()
        raise
    return server


def wait_healthy(server: Server, timeout: float = 60) -> None:
    """Poll ``GET /healthz`` until it answers 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited at start-up:\n{server.log_tail()}")
        try:
            if httpx2.get(f"{server.base_url}/healthz", timeout=2).status_code == 200:
                return
        except httpx2.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{server.name} did not answer /healthz:\n{server.log_tail()}")


def bench_token(env: Mapping[str, str], cwd: Path) -> str | None:
    """An API token for the admin ``BENCH_USER``, made with the real CLI (``token create``,
    after ``user add NAME --admin --password-stdin`` when the account does not exist yet) in
    the server's environment; ``None`` for a revision whose CLI has no ``token`` command (it
    has no accounts and needs no token)."""

    def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "app.cli", *args],
            input=stdin,
            capture_output=True,
            text=True,
            cwd=cwd,
            env=dict(env),
            timeout=120,
        )

    def create() -> subprocess.CompletedProcess[str]:
        return cli("token", "create", BENCH_USER, "--label", "bench")

    done = create()
    if done.returncode == 2 and "invalid choice: 'token'" in done.stderr:
        return None
    if done.returncode != 0:
        password = secrets.token_urlsafe(18)
        added = cli("user", "add", BENCH_USER, "--admin", "--password-stdin", stdin=password + "\n")
        if added.returncode != 0:
            raise RuntimeError(f"streamport user add {BENCH_USER} failed: {added.stderr}")
        done = create()
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(f"streamport token create {BENCH_USER} failed: {done.stderr}")
    return done.stdout.strip()


def start_streamport(
    media_dir: Path,
    max_upload_bytes: int,
    log_path: Path,
    extra_env: Mapping[str, str] | None = None,
) -> Server:
    """``python -m app.cli serve`` on a free port, its catalog and bytes in ``media_dir``.

    The environment is passed through (so ``STREAMPORT_*`` tuning variables apply), then
    ``extra_env`` is set on top. The CLI makes an admin and a token first (``Server.token``).
    """
    port = free_port()
    env = {
        **os.environ,
        "STREAMPORT_MEDIA_DIR": str(media_dir),
        "STREAMPORT_MAX_UPLOAD_BYTES": str(max_upload_bytes),
    }
    env.pop("STREAMPORT_DATABASE_URL", None)
    env.update(extra_env or {})
    argv = [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    # cwd outside the repository, so no stray .env changes the settings.
    token = bench_token(env, log_path.parent)
    server = spawn("streamport", argv, env, log_path.parent, log_path, port)
    server.token = token
    return server


# --------------------------------------------------------------------------- code under test


@dataclass
class CodeTree:
    """Where one Streamport's code is imported from: this repository's working tree (HEAD),
    or a detached ``git worktree`` of another revision (the baseline)."""

    key: str
    label: str
    root: Path
    rev: str
    commit: str
    dirty: bool | None = None
    is_worktree: bool = False

    def as_dict(self) -> dict[str, Any]:
        """For the result files."""
        return {
            "label": self.label,
            "root": str(self.root),
            "rev": self.rev,
            "commit": self.commit,
            "dirty": self.dirty,
            "worktree": self.is_worktree,
        }


def _git(*args: str, cwd: Path = REPO_ROOT) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout.strip()


def working_tree() -> CodeTree:
    """The repository itself, uncommitted changes included: what "HEAD" runs."""
    state = git_state()
    return CodeTree(
        "streamport", "Streamport", REPO_ROOT, "HEAD", state["commit"], state["dirty"], False
    )


def add_worktree(rev: str, workdir: Path) -> CodeTree:
    """A detached ``git worktree`` of ``rev`` in ``workdir``; :func:`remove_worktree` undoes it.

    A worktree, not an import of the revision's modules into this process: the package layout
    may differ between revisions, and each server must import only its own ``app``.
    """
    try:
        commit = _git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    except subprocess.CalledProcessError:
        raise SystemExit(f"--baseline {rev}: not a commit of {REPO_ROOT}") from None
    path = workdir / f"baseline-{commit[:12]}"
    _git("worktree", "add", "--detach", "--quiet", str(path), commit)
    return CodeTree("baseline", f"Streamport ({rev})", path, rev, commit, False, True)


def remove_worktree(tree: CodeTree) -> None:
    """Unregister and delete a worktree made by :func:`add_worktree` (idempotent)."""
    if not tree.is_worktree:
        return
    subprocess.run(
        ["git", "worktree", "remove", "--force", str(tree.root)],
        cwd=REPO_ROOT,
        capture_output=True,
        check=False,
    )
    # Also drops the registration when the directory was already deleted.
    subprocess.run(["git", "worktree", "prune"], cwd=REPO_ROOT, capture_output=True, check=False)


def start_streamport_code(
    tree: CodeTree,
    media_dir: Path,
    max_upload_bytes: int,
    log_path: Path,
    extra_env: Mapping[str, str] | None = None,
    nofile: int | None = None,
    others: Sequence[CodeTree] = (),
) -> tuple[Server, dict[str, Any]]:
    """``python -m app.cli serve`` importing ``tree``'s ``app`` (and running ``tree``'s
    migrations); returns the server and the proof of which code it imported.

    cwd and ``PYTHONPATH`` are ``tree.root``: both come before the editable install on
    ``sys.path``. ``PYTHONVERBOSE=1`` makes the interpreter log every file it imports (at
    import time only, so it costs nothing on the byte path); :func:`verify_code` reads that and
    stops the benchmark if any ``app`` or ``migrations`` file came from another tree. With
    ``nofile``, the server runs under ``prlimit --nofile=N:N`` (prlimit execs it: same PID).
    ``tree``'s CLI makes an admin and a token first (``Server.token``; ``None`` when ``tree``
    has no accounts).
    """
    if (tree.root / ".env").exists():
        # Settings read .env from the working directory: it would tune one server only.
        raise SystemExit(f"{tree.root / '.env'} would change {tree.label}'s settings; move it")
    port = free_port()
    env = {
        **os.environ,
        "STREAMPORT_MEDIA_DIR": str(media_dir),
        "STREAMPORT_MAX_UPLOAD_BYTES": str(max_upload_bytes),
        "PYTHONPATH": str(tree.root),
        "PYTHONVERBOSE": "1",
    }
    env.pop("STREAMPORT_DATABASE_URL", None)
    env.update(extra_env or {})
    argv = [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    if nofile:
        argv = ["prlimit", f"--nofile={nofile}:{nofile}", "--", *argv]
    cli_env = {k: v for k, v in env.items() if k != "PYTHONVERBOSE"}
    token = bench_token(cli_env, tree.root)
    server = spawn(tree.label, argv, env, tree.root, log_path, port)
    server.token = token
    try:
        check = verify_code(server, tree, others)
    except BaseException:
        server.stop()
        raise
    return server, check


_CODE_OBJECT = re.compile(r"^# code object from '?(.+?)'?$", re.M)


def imported_files(log: str) -> list[Path]:
    """Source files a ``PYTHONVERBOSE=1`` interpreter reported loading, in order."""
    files = []
    for raw in _CODE_OBJECT.findall(log):
        path = Path(raw)
        if path.parent.name == "__pycache__":
            # ``x.cpython-311.pyc`` in ``__pycache__`` stands for ``x.py`` one level up.
            path = path.parent.parent / (path.name.split(".", 1)[0] + ".py")
        files.append(path)
    return files


def verify_code(server: Server, tree: CodeTree, others: Sequence[CodeTree] = ()) -> dict[str, Any]:
    """Which ``app`` and ``migrations`` files this server imported; raises unless all of them
    come from ``tree.root`` (and, for a worktree, from its commit).

    The fingerprint (SHA-256 over those files' paths and bytes) tells two servers apart: equal
    fingerprints mean the same code ran twice.
    """
    loaded = imported_files(server.own_log())

    def under(root: Path, top: str) -> list[Path]:
        return [p for p in loaded if p.is_relative_to(root / top)]

    app_files = under(tree.root, "app")
    migration_files = under(tree.root, "migrations")
    foreign = sorted(
        {
            str(p)
            for other in (*others, working_tree())
            if other.root != tree.root
            for top in ("app", "migrations")
            for p in under(other.root, top)
        }
    )
    mine = sorted({p.relative_to(tree.root).as_posix() for p in app_files + migration_files})
    missing = [
        name for name in ("app/__init__.py", "app/cli.py", "migrations/env.py") if name not in mine
    ]
    untracked: list[str] = []
    checked_out = tree.commit
    if tree.is_worktree:
        tracked = set(_git("ls-tree", "-r", "--name-only", tree.commit).splitlines())
        untracked = [name for name in mine if name not in tracked]
        checked_out = _git("rev-parse", "HEAD", cwd=tree.root)
    hasher = hashlib.sha256()
    for name in mine:
        hasher.update(name.encode() + b"\0" + (tree.root / name).read_bytes() + b"\0")
    check = {
        "label": tree.label,
        "pid": server.pid,
        "app_package": str(tree.root / "app" / "__init__.py")
        if "app/__init__.py" in mine
        else None,
        "app_files": len(app_files),
        "migration_files": len(migration_files),
        "files": mine,
        "fingerprint": hasher.hexdigest(),
        "checked_out": checked_out,
        "foreign": foreign,
        "missing": missing,
        "not_in_commit": untracked,
    }
    check["ok"] = not foreign and not missing and not untracked and checked_out == tree.commit
    if not check["ok"]:
        raise RuntimeError(f"{tree.label} (PID {server.pid}) did not run its own code: {check}")
    return check


def same_code_warning(checks: Mapping[str, Mapping[str, Any]]) -> str | None:
    """A warning when two servers imported byte-identical code (an A/A run, on purpose or
    not), else ``None``."""
    prints = [c["fingerprint"] for c in checks.values()]
    if len(prints) > 1 and len(set(prints)) == 1:
        return (
            "WARNING: every Streamport imported byte-identical app and migrations code: the "
            "comparison shows only noise."
        )
    return None


def code_drift_warning(starts: Mapping[str, Sequence[Mapping[str, Any]]]) -> str | None:
    """A warning when one tree's servers imported different code from start to start (the
    working tree was edited during the run), else ``None``."""
    drifted = [key for key, checks in starts.items() if len({c["fingerprint"] for c in checks}) > 1]
    if not drifted:
        return None
    return (
        f"WARNING: the code of {', '.join(drifted)} changed during the run (fingerprints differ "
        "between starts): its figures mix two versions."
    )


def code_line(checks: Mapping[str, Mapping[str, Any]], trees: Sequence[CodeTree]) -> str:
    """One line per server: which commit, which files, which fingerprint."""
    lines = []
    for tree in trees:
        check = checks[tree.key]
        dirty = " + uncommitted changes" if tree.dirty else ""
        lines.append(
            f"{tree.label}: {tree.commit[:12]}{dirty}, app from {check['app_package']} "
            f"({check['app_files']} app + {check['migration_files']} migrations files, "
            f"fingerprint {check['fingerprint'][:12]})"
        )
    return "\n".join(lines)


def compare_runs(
    rows: Sequence[tuple[str, Any, Any, str, int]],
) -> list[dict[str, Any]]:
    """HEAD against the baseline, one entry per ``(measurement, head, baseline, better,
    digits)``; ``head``/``baseline`` are :func:`spread` dicts or plain numbers, ``better`` is
    ``higher`` or ``lower``."""
    out = []
    for measurement, head, base, better, digits in rows:
        h = head if isinstance(head, Mapping) else {"median": head, "min": head, "max": head}
        b = base if isinstance(base, Mapping) else {"median": base, "min": base, "max": base}
        # None: no ratio to speak of (a baseline of 0, e.g. no RSS growth, and HEAD above it).
        ratio: float | None = None
        worse: float | None = None
        if b["median"]:
            ratio = h["median"] / b["median"]
            # Positive: HEAD is worse than the baseline by this much, in per cent of it.
            worse = (ratio - 1) * 100 if better == "lower" else (1 - ratio) * 100
        elif not h["median"]:
            ratio, worse = 1.0, 0.0
        varied = h["min"] != h["max"] or b["min"] != b["max"]
        overlap = h["min"] <= b["max"] and b["min"] <= h["max"] if varied else None
        out.append(
            {
                "measurement": measurement,
                "head": h,
                "baseline": b,
                "better": better,
                "digits": digits,
                "ratio": ratio,
                "worse_by_percent": worse,
                "spreads_overlap": overlap,
            }
        )
    return out


def comparison_table(comparisons: Sequence[Mapping[str, Any]], head: str, baseline: str) -> str:
    """The Markdown table of :func:`compare_runs`."""

    def cell(entry: Mapping[str, float], digits: int) -> str:
        if entry["min"] == entry["max"]:
            return f"{entry['median']:.{digits}f}"
        return f"{entry['median']:.{digits}f} ({entry['min']:.{digits}f}–{entry['max']:.{digits}f})"

    rows = []
    for c in comparisons:
        worse = c["worse_by_percent"]
        if worse is None:
            verdict = "n/a (baseline 0)"
        elif abs(worse) < 0.05:
            verdict = "same"
        else:
            verdict = f"{abs(worse):.1f} % {'worse' if worse > 0 else 'better'}"
        overlap = c["spreads_overlap"]
        rows.append(
            [
                c["measurement"],
                cell(c["head"], c["digits"]),
                cell(c["baseline"], c["digits"]),
                "-" if c["ratio"] is None else f"{c['ratio']:.3f}",
                f"{c['better']} is better",
                verdict,
                "-" if overlap is None else ("yes" if overlap else "no"),
            ]
        )
    headers = [
        "measurement (median, min–max)",
        head,
        baseline,
        "HEAD / baseline",
        "direction",
        "HEAD against baseline",
        "min–max overlap",
    ]
    return table(headers, rows)


def start_reference(media_dir: Path, spool_dir: Path, log_path: Path) -> Server:
    """The plain ``UploadFile`` app of ``bench/reference_uploadfile.py`` under uvicorn, with
    the options ``streamport serve`` gives uvicorn; Starlette spools into ``spool_dir``."""
    port = free_port()
    spool_dir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "REFERENCE_MEDIA_DIR": str(media_dir),
        # SpooledTemporaryFile rolls over into tempfile's directory: keep it on the same disk.
        "TMPDIR": str(spool_dir),
    }
    argv = uvicorn_argv("bench.reference_uploadfile:create_app", port)
    return spawn("reference", argv, env, log_path.parent, log_path, port)


def uvicorn_argv(factory: str, port: int) -> list[str]:
    """uvicorn with the options ``streamport serve`` gives it: one worker, no proxy headers,
    log level info (access lines logged); uvicorn picks uvloop and httptools when installed."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        factory,
        "--factory",
        "--app-dir",
        str(REPO_ROOT),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--no-proxy-headers",
        "--log-level",
        "info",
    ]


def start_fileresponse_reference(files_dir: Path, log_path: Path) -> Server:
    """``bench/reference_fileresponse.py`` (Starlette's ``FileResponse`` of ``files_dir``)
    under uvicorn, with the options ``streamport serve`` gives uvicorn."""
    port = free_port()
    env = {**os.environ, "REFERENCE_FILES_DIR": str(files_dir)}
    argv = uvicorn_argv("bench.reference_fileresponse:create_app", port)
    return spawn("fileresponse", argv, env, log_path.parent, log_path, port)


def dirty_bytes() -> int | None:
    """Page-cache bytes waiting to be written (``Dirty`` + ``Writeback``), Linux only."""
    try:
        lines = Path("/proc/meminfo").read_text().splitlines()
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in lines if ":" in line)
    try:
        return sum(int(fields[name].split()[0]) * KiB for name in ("Dirty", "Writeback"))
    except (KeyError, ValueError, IndexError):
        return None


def settle(limit: int = 32 * MiB, timeout: float = 10.0) -> None:
    """``sync`` until (almost) nothing waits to be written, so no run pays for the previous one.

    A single ``sync()`` right after a large write can return with pages still dirty (files
    still open or being written meanwhile), hence the loop.
    """
    deadline = time.monotonic() + timeout
    while True:
        os.sync()
        dirty = dirty_bytes()
        if dirty is None or dirty <= limit or time.monotonic() > deadline:
            return
        time.sleep(0.1)


def rss_bytes(pid: int) -> int:
    """Resident set size of one process."""
    return int(psutil.Process(pid).memory_info().rss)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of one process, all its threads."""
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def group_cpu_seconds(processes: Sequence[psutil.Process]) -> float:
    """User plus system CPU time summed over processes (e.g. nginx master and workers)."""
    total = 0.0
    for process in processes:
        times = process.cpu_times()
        total += times.user + times.system
    return total


def group_rss_bytes(processes: Sequence[psutil.Process]) -> int:
    """Resident set size summed over processes."""
    return sum(int(process.memory_info().rss) for process in processes)


def minor_faults(pid: int) -> int | None:
    """Minor page faults of one process so far (Linux ``/proc/PID/stat``), else ``None``."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Fields after the parenthesised command name; minflt is the 10th field overall.
    return int(stat.rsplit(")", 1)[1].split()[7])


@dataclass
class RssSampler:
    """Samples a process's RSS every ``interval`` seconds in a thread while in the block.

    With ``group`` (e.g. ``Server.processes()``), RSS and CPU are summed over those processes
    instead, and ``pid`` is only a label.
    """

    pid: int
    interval: float = 0.05
    group: Sequence[psutil.Process] | None = None
    before: int = 0
    peak: int = 0
    after: int = 0
    cpu: float = 0.0
    seconds: float = 0.0
    samples: list[tuple[float, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _started: float = 0.0
    _cpu_start: float = 0.0

    def __enter__(self) -> "RssSampler":
        self._processes = list(self.group) if self.group else [psutil.Process(self.pid)]
        self.before = self.peak = self._sample(0.0)
        self._cpu_start = group_cpu_seconds(self._processes)
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def _sample(self, at: float) -> int:
        rss = group_rss_bytes(self._processes)
        self.samples.append((at, rss))
        self.peak = max(self.peak, rss)
        return rss

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self._sample(time.monotonic() - self._started)
            except psutil.Error:
                return

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.seconds = time.monotonic() - self._started
        try:
            self.after = self._sample(self.seconds)
            self.cpu = group_cpu_seconds(self._processes) - self._cpu_start
        except psutil.Error:
            pass

    @property
    def growth(self) -> int:
        """Peak minus the RSS when the block began."""
        return self.peak - self.before

    def as_dict(self) -> dict[str, Any]:
        """Figures in MiB, plus the samples (seconds, MiB) for plotting."""
        return {
            "rss_before_mib": mib(self.before),
            "rss_peak_mib": mib(self.peak),
            "rss_after_mib": mib(self.after),
            "growth_mib": mib(self.growth),
            "server_cpu_seconds": round(self.cpu, 3),
            "seconds": round(self.seconds, 3),
            "sample_count": len(self.samples),
            "samples_s_mib": [[round(t, 3), mib(rss)] for t, rss in self.samples],
        }


def mib(n: float) -> float:
    """Bytes → MiB, rounded for display and JSON."""
    return round(n / MiB, 1)


def mb_per_s(size: int, seconds: float) -> float:
    """Throughput in MB/s (10^6 bytes per second, as curl and dd print it)."""
    return size / seconds / MB if seconds > 0 else float("inf")


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median, min and max of repeated measurements."""
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
    }


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table, columns padded so it also reads well in a terminal."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"

    rule = "| " + " | ".join("-" * w for w in widths) + " |"
    return "\n".join([line(cells[0]), rule, *(line(row) for row in cells[1:])])


def make_workdir(base: Path | None, prefix: str) -> Path:
    """A fresh temporary directory (under ``base`` when given)."""
    if base is not None:
        base.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=base))


def require_free_space(path: Path, needed: int) -> None:
    """Stop early, with a clear message, when the disk cannot hold the benchmark's files."""
    free = shutil.disk_usage(path).free
    if free < needed:
        raise SystemExit(
            f"{path} has {free / GiB:.1f} GiB free; this benchmark needs {needed / GiB:.1f} GiB"
        )


def filesystem_of(path: Path) -> dict[str, str]:
    """Device, mount point and type of the filesystem holding ``path``."""
    resolved = str(path.resolve())
    best: Any = None
    for part in psutil.disk_partitions(all=True):
        mount = part.mountpoint.rstrip("/") + "/"
        if (resolved + "/").startswith(mount) and (
            best is None or len(part.mountpoint) > len(best.mountpoint)
        ):
            best = part
    if best is None:
        return {"device": "?", "mountpoint": "?", "fstype": "?"}
    return {"device": best.device, "mountpoint": best.mountpoint, "fstype": best.fstype}


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def environment(workdir: Path) -> dict[str, Any]:
    """What the figures were measured on."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / GiB, 1),
        "workdir": str(workdir),
        "filesystem": filesystem_of(workdir),
        "packages": {
            name: _version(name)
            for name in (
                "uvicorn",
                "uvloop",
                "httptools",
                "starlette",
                "fastapi",
                "python-multipart",
                "aiofiles",
            )
        },
        "curl": _first_line(["curl", "--version"]),
    }


def git_state() -> dict[str, Any]:
    """The commit and ``git status --porcelain`` of the repository (dirty when non-empty)."""
    try:
        status = subprocess.run(
            ["git", "status", "--porcelain"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return {"commit": "unknown", "dirty": None, "status_porcelain": []}
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()
    return {"commit": commit or "unknown", "dirty": bool(status), "status_porcelain": status}


def _first_line(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, check=False).stdout
    except OSError:
        return "not found"
    return out.splitlines()[0] if out else "?"


def tool_version(argv: list[str]) -> str:
    """The first line a tool prints for its version (stdout, else stderr), e.g. ``ffmpeg
    -version``; ``not found`` when it is not installed."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
    except OSError:
        return "not found"
    lines = (done.stdout or done.stderr).splitlines()
    return lines[0].strip() if lines else "?"


def display_path(path: Path) -> str:
    """``path`` relative to the working directory when it is inside it."""
    cwd = Path.cwd()
    return str(path.relative_to(cwd)) if path.is_relative_to(cwd) else str(path)


def size_label(size: int) -> str:
    """``2 GiB`` or ``64 MiB``."""
    return f"{size // GiB} GiB" if size % GiB == 0 else f"{size / MiB:g} MiB"


def options_of(args: argparse.Namespace) -> dict[str, Any]:
    """A bench's command-line options as JSON can hold them (paths as text)."""
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}


def write_results(name: str, data: dict[str, Any]) -> Path:
    """Write ``bench/results/NAME-<UTC time>.json`` (git-ignored) and return its path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS_DIR / f"{name}-{stamp}.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


class RunsServers(Protocol):
    """A benchmark that starts servers and stops them again."""

    servers: list[Server]

    def stop(self) -> None: ...


@contextmanager
def servers_stopped_after(bench: RunsServers, workdir: Path, keep: bool) -> Iterator[None]:
    """Around a benchmark's run: on a failure, print its servers' log tails; then always stop
    them, and remove ``workdir`` unless ``keep``."""
    try:
        yield
    except BaseException:
        for server in bench.servers:
            print(f"{server.name} log tail:\n{server.log_tail()}", file=sys.stderr)
        raise
    finally:
        bench.stop()
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
