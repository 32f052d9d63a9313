"""Upload throughput of Streamport against the usual ``UploadFile`` app and the disk itself.

In one run, interleaved round by round, ``curl -F file=@PATH`` sends the same 1 GiB random
file (made once, on the same filesystem as the media directories) to

* Streamport's ``POST /api/media``;
* ``bench/reference_uploadfile.py``: ``async def upload(file: UploadFile)`` + ``copyfileobj``,
  under uvicorn with the same options;

* with ``--baseline REV``, a second Streamport running the code of ``REV`` (a detached git
  worktree), measured like the first, so a change can be compared with its parent in one run;

and ``dd if=/dev/zero bs=1M conv=fdatasync`` writes as many bytes there, for the disk's own
speed. Each uploaded file is also downloaded with ``curl`` (Streamport's download route
against Starlette's ``FileResponse``) for context. Targets: Streamport ≥ 3× the reference and
≥ 0.5× dd (medians).

Run from the repository root:
``python3 -m bench.upload_speed [--repeat 5] [--size-mib 1024] [--baseline REV]``.
"""

import argparse
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx2

from bench.common import (
    CodeTree,
    GiB,
    MiB,
    RssSampler,
    Server,
    add_worktree,
    code_line,
    compare_runs,
    comparison_table,
    cpu_seconds,
    display_path,
    environment,
    git_state,
    make_workdir,
    mb_per_s,
    mib,
    minor_faults,
    remove_worktree,
    require_free_space,
    same_code_warning,
    servers_stopped_after,
    settle,
    spread,
    start_reference,
    start_streamport_code,
    table,
    working_tree,
    write_results,
)

REFERENCE_RATIO_TARGET = 3.0
DISK_RATIO_TARGET = 0.5
CURL_TIMEOUT_S = 600
_DD_COPIED = re.compile(r"(\d+) bytes .*copied, ([0-9.]+) s")


def make_random_file(path: Path, size: int) -> None:
    """Write ``size`` random bytes to ``path`` and flush them to disk."""
    block = 4 * MiB
    with path.open("wb") as out:
        remaining = size
        while remaining > 0:
            n = min(block, remaining)
            out.write(os.urandom(n))
            remaining -= n
        out.flush()
        os.fsync(out.fileno())


def curl(args: list[str]) -> list[str]:
    """Run curl quietly, bodies to /dev/null; returns the fields its ``-w`` printed."""
    argv = ["curl", "-s", "-o", "/dev/null", *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=CURL_TIMEOUT_S)
    if done.returncode != 0:
        raise RuntimeError(f"curl exited {done.returncode}: {done.stderr.strip()} ({argv})")
    return done.stdout.split()


def curl_upload(path: Path, url: str, extra: Sequence[str] = ()) -> tuple[int, float]:
    """``curl [EXTRA] -F file=@PATH URL``; (status, seconds)."""
    status, seconds = curl(["-w", "%{http_code} %{time_total}", *extra, "-F", f"file=@{path}", url])
    return int(status), float(seconds)


def curl_download(url: str) -> tuple[int, int, float]:
    """``curl URL`` to /dev/null; (status, bytes, seconds)."""
    status, size, seconds = curl(["-w", "%{http_code} %{size_download} %{time_total}", url])
    return int(status), int(size), float(seconds)


def fsync_seconds(path: Path) -> float:
    """Seconds an ``fsync`` of ``path`` takes: the time its dirty pages need to reach disk."""
    started = time.monotonic()
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return time.monotonic() - started


def dd_write(directory: Path, size_mib: int, fdatasync: bool = True) -> float:
    """Seconds dd needs to write ``size_mib`` MiB of zeros (and fdatasync them)."""
    target = directory / "dd.bin"
    argv = ["dd", "if=/dev/zero", f"of={target}", "bs=1M", f"count={size_mib}"]
    if fdatasync:
        argv.append("conv=fdatasync")
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, env={**os.environ, "LC_ALL": "C"}, check=True
        )
    finally:
        target.unlink(missing_ok=True)
    match = _DD_COPIED.search(done.stderr)
    if match is None:
        raise RuntimeError(f"cannot read dd's output: {done.stderr!r}")
    return float(match.group(2))


class Bench:
    """The servers, the source file, and the measurements gathered so far."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.size = args.size_mib * MiB
        self.source = workdir / "source.bin"
        self.servers: list[Server] = []
        self.runs: dict[str, list[dict[str, float]]] = {}
        self.trees: list[CodeTree] = [working_tree()]
        # One Streamport per tree: "streamport" (HEAD) and, with --baseline, "baseline".
        self.streamports: dict[str, Server] = {}
        self.code: dict[str, dict[str, Any]] = {}

    def start(self) -> None:
        """Make the source file, start the servers and warm them up."""
        if self.args.baseline:
            self.trees.append(add_worktree(self.args.baseline, self.workdir))
        print(f"writing {self.args.size_mib} MiB of random bytes to {self.source}", flush=True)
        make_random_file(self.source, self.size)
        warm = self.workdir / "warm-up.bin"
        make_random_file(warm, MiB)
        for tree in self.trees:
            server, self.code[tree.key] = start_streamport_code(
                tree,
                self.workdir / f"{tree.key}-media",
                self.size + 64 * MiB,
                self.workdir / f"{tree.key}.log",
                others=self.trees,
            )
            self.streamports[tree.key] = server
            self.servers.append(server)
        print(code_line(self.code, self.trees), flush=True)
        warning = same_code_warning(self.code)
        if warning:
            print(warning, flush=True)
        self.reference = start_reference(
            self.workdir / "reference-media",
            self.workdir / "reference-spool",
            self.workdir / "reference.log",
        )
        self.servers.append(self.reference)
        # First requests import the multipart parser and fill caches: keep them out of the runs.
        for _ in range(2):
            for key in self.streamports:
                self._streamport_round(key, warm, record=False)
            self._reference_round(warm, record=False)
            self._ceiling_round(warm, record=False)
        warm.unlink()

    def stop(self) -> None:
        """Stop the servers this benchmark started; drop the worktree."""
        for server in self.servers:
            server.stop()
        for tree in self.trees:
            remove_worktree(tree)

    def _record(self, name: str, **values: float) -> None:
        self.runs.setdefault(name, []).append(values)

    def _timed(self, name: str, server: Server, action: Callable[[], float], record: bool) -> None:
        """Run ``action`` (returns seconds) once the disk has settled; record MB/s, server CPU,
        page faults and the server's peak RSS meanwhile."""
        settle()
        cpu = cpu_seconds(server.pid)
        faults = minor_faults(server.pid)
        with RssSampler(server.pid, self.args.interval) as rss:
            seconds = action()
        cpu = cpu_seconds(server.pid) - cpu
        values = {
            "seconds": seconds,
            "mb_per_s": mb_per_s(self.size, seconds),
            "server_cpu_s": cpu,
            "server_rss_before_mib": mib(rss.before),
            "server_rss_peak_mib": mib(rss.peak),
            "server_rss_growth_mib": mib(rss.growth),
        }
        after = minor_faults(server.pid)
        if faults is not None and after is not None:
            values["server_minor_faults"] = after - faults
        if record:
            self._record(name, **values)

    def _streamport_round(self, key: str, path: Path, record: bool = True) -> None:
        size = path.stat().st_size
        server = self.streamports[key]

        def upload() -> float:
            status, seconds = curl_upload(
                path, f"{server.base_url}/api/media", server.upload_curl_args()
            )
            if status != 201:
                raise RuntimeError(f"{server.name} upload answered {status}:\n{server.log_tail()}")
            return seconds

        self._timed(f"{key}_upload", server, upload, record)
        with httpx2.Client(
            base_url=server.base_url, headers=server.auth_headers, timeout=60
        ) as client:
            items = client.get("/api/media").json()["items"]
            if len(items) != 1 or items[0]["size"] != size:
                raise RuntimeError(f"unexpected catalog after the upload: {items}")
            url = f"{server.base_url}{items[0]['download_url']}"
            if not self.args.no_download:
                self._timed(f"{key}_download", server, lambda: _download(url, size), record)
            for item in items:
                client.delete(f"/api/media/{item['id']}").raise_for_status()

    def _reference_round(self, path: Path, record: bool = True) -> None:
        size = path.stat().st_size
        server = self.reference
        stored = self.workdir / "reference-media" / "upload.bin"

        def upload() -> float:
            status, seconds = curl_upload(path, f"{server.base_url}/upload")
            if status != 200 or stored.stat().st_size != size:
                raise RuntimeError(f"reference upload answered {status}:\n{server.log_tail()}")
            return seconds

        self._timed("reference_upload", server, upload, record)
        # The reference neither hashes nor fsyncs; how long its file then takes to reach the
        # disk (what Streamport's fsync does before it answers) is measured apart, as context.
        sync_seconds = fsync_seconds(stored)
        if record:
            total = self.runs["reference_upload"][-1]["seconds"] + sync_seconds
            self._record(
                "reference_upload_then_fsync",
                seconds=total,
                mb_per_s=mb_per_s(size, total),
            )
        if not self.args.no_download:
            url = f"{server.base_url}/file"
            self._timed("reference_download", server, lambda: _download(url, size), record)

    def _ceiling_round(self, path: Path, record: bool = True) -> None:
        server = self.reference

        def drain() -> float:
            status, seconds = curl_upload(path, f"{server.base_url}/discard")
            if status != 200:
                raise RuntimeError(f"/discard answered {status}:\n{server.log_tail()}")
            return seconds

        self._timed("receive_ceiling", server, drain, record)

    def _dd_round(self) -> None:
        settle()
        seconds = dd_write(self.workdir, self.args.size_mib)
        self._record("dd_write", seconds=seconds, mb_per_s=mb_per_s(self.size, seconds))
        # Context: the same writes into the page cache only, no flush to the disk.
        settle()
        seconds = dd_write(self.workdir, self.args.size_mib, fdatasync=False)
        self._record("dd_page_cache", seconds=seconds, mb_per_s=mb_per_s(self.size, seconds))

    def measure(self) -> None:
        """``--repeat`` rounds; each round runs every measurement once, in a rotated order."""
        steps: list[tuple[str, str, Callable[[], None]]] = [
            (key, f"{key}_upload", lambda key=key: self._streamport_round(key, self.source))
            for key in self.streamports
        ]
        steps += [
            ("reference", "reference_upload", lambda: self._reference_round(self.source)),
            ("dd", "dd_write", self._dd_round),
            ("ceiling", "receive_ceiling", lambda: self._ceiling_round(self.source)),
        ]
        for round_index in range(self.args.repeat):
            shift = round_index % len(steps)
            for name, key, step in steps[shift:] + steps[:shift]:
                step()
                last = self.runs[key][-1]
                print(
                    f"round {round_index + 1}/{self.args.repeat} {name:<10} "
                    f"{last['mb_per_s']:7.1f} MB/s ({last['seconds']:.2f} s)",
                    flush=True,
                )


def _download(url: str, size: int) -> float:
    status, got, seconds = curl_download(url)
    if status != 200 or got != size:
        raise RuntimeError(f"download of {url}: status {status}, {got} of {size} bytes")
    return seconds


LABELS = {
    "streamport_upload": "Streamport POST /api/media",
    "baseline_upload": "{baseline} POST /api/media",
    "reference_upload": "reference UploadFile + copyfileobj",
    "reference_upload_then_fsync": "reference, then fsync of its file",
    "dd_write": "dd bs=1M conv=fdatasync",
    "dd_page_cache": "dd bs=1M, no fdatasync (page cache)",
    "receive_ceiling": "ceiling: uvicorn+FastAPI drain body",
    "streamport_download": "Streamport GET /media/{id}/download",
    "baseline_download": "{baseline} GET /media/{id}/download",
    "reference_download": "reference FileResponse GET /file",
}


def summarize(runs: dict[str, list[dict[str, float]]], size: int) -> dict[str, Any]:
    """Median/min/max of MB/s and seconds, server CPU per GiB, and the ratios of medians."""
    summary: dict[str, Any] = {}
    for name, values in runs.items():
        entry: dict[str, Any] = {
            "mb_per_s": spread([v["mb_per_s"] for v in values]),
            "seconds": spread([v["seconds"] for v in values]),
            "runs": values,
        }
        if all("server_cpu_s" in v for v in values):
            cpu = spread([v["server_cpu_s"] * GiB / size for v in values])
            entry["server_cpu_s_per_gib"] = cpu["median"]
            entry["server_cpu_s_per_gib_spread"] = cpu
        if all("server_minor_faults" in v for v in values):
            faults = spread([v["server_minor_faults"] * GiB / size for v in values])
            entry["server_minor_faults_per_gib"] = faults["median"]
            entry["server_minor_faults_per_gib_spread"] = faults
        if all("server_rss_peak_mib" in v for v in values):
            entry["server_rss_peak_mib"] = spread([v["server_rss_peak_mib"] for v in values])
            entry["server_rss_growth_mib"] = spread([v["server_rss_growth_mib"] for v in values])
        summary[name] = entry

    def ratio(a: str, b: str) -> float | None:
        if a not in summary or b not in summary:
            return None
        return float(summary[a]["mb_per_s"]["median"] / summary[b]["mb_per_s"]["median"])

    ratios = {
        "streamport_over_reference": ratio("streamport_upload", "reference_upload"),
        "streamport_over_reference_then_fsync": ratio(
            "streamport_upload", "reference_upload_then_fsync"
        ),
        "streamport_over_dd": ratio("streamport_upload", "dd_write"),
        "streamport_over_receive_ceiling": ratio("streamport_upload", "receive_ceiling"),
        "receive_ceiling_over_reference": ratio("receive_ceiling", "reference_upload"),
        "streamport_over_fileresponse_download": ratio("streamport_download", "reference_download"),
        "streamport_over_baseline_upload": ratio("streamport_upload", "baseline_upload"),
        "streamport_over_baseline_download": ratio("streamport_download", "baseline_download"),
    }
    return {"measurements": summary, "ratios": ratios}


def against_baseline(summary: dict[str, Any]) -> list[dict[str, Any]] | None:
    """HEAD (``streamport_*``) against ``baseline_*``, measurement by measurement."""
    m = summary["measurements"]
    if "baseline_upload" not in m:
        return None
    rows = []
    for kind in ("upload", "download"):
        head, base = m.get(f"streamport_{kind}"), m.get(f"baseline_{kind}")
        if head is None or base is None:
            continue
        for label, name, better, digits in (
            ("MB/s", "mb_per_s", "higher", 0),
            ("server CPU s/GiB", "server_cpu_s_per_gib_spread", "lower", 3),
            ("server page faults/GiB", "server_minor_faults_per_gib_spread", "lower", 0),
            ("server peak RSS, MiB", "server_rss_peak_mib", "lower", 1),
            ("server RSS growth, MiB", "server_rss_growth_mib", "lower", 1),
        ):
            if name in head and name in base:
                rows.append((f"{kind}: {label}", head[name], base[name], better, digits))
    return compare_runs(rows)


def report(
    summary: dict[str, Any],
    repeat: int,
    size: int,
    baseline_label: str = "baseline",
    comparisons: list[dict[str, Any]] | None = None,
) -> tuple[str, bool]:
    """The printed tables, and whether both targets were met."""
    rows = []
    for name, label in LABELS.items():
        entry = summary["measurements"].get(name)
        if entry is None:
            continue
        speeds = entry["mb_per_s"]
        cpu = entry.get("server_cpu_s_per_gib")
        faults = entry.get("server_minor_faults_per_gib")
        rss = entry.get("server_rss_peak_mib")
        growth = entry.get("server_rss_growth_mib")
        rows.append(
            [
                label.replace("{baseline}", baseline_label),
                f"{speeds['median']:.0f}",
                f"{speeds['min']:.0f}",
                f"{speeds['max']:.0f}",
                f"{entry['seconds']['median']:.2f}",
                "-" if cpu is None else f"{cpu:.2f}",
                "-" if faults is None else f"{faults / 1000:.0f}k",
                "-"
                if rss is None or growth is None
                else f"{rss['median']:.1f} (+{growth['median']:.1f})",
                " ".join(f"{v['mb_per_s']:.0f}" for v in entry["runs"]),
            ]
        )
    speed_table = table(
        [
            f"{size / MiB:.0f} MiB, {repeat} runs",
            "median MB/s",
            "min",
            "max",
            "median s",
            "server CPU s/GiB",
            "server page faults/GiB",
            "server peak RSS MiB (growth)",
            "each run, MB/s",
        ],
        rows,
    )
    ratios = summary["ratios"]
    ok = True
    ratio_rows = []
    for key, label, target in (
        ("streamport_over_reference", "Streamport / reference upload", REFERENCE_RATIO_TARGET),
        ("streamport_over_dd", "Streamport / dd", DISK_RATIO_TARGET),
        ("streamport_over_reference_then_fsync", "Streamport / (reference, then fsync)", None),
        ("streamport_over_receive_ceiling", "Streamport / receive ceiling", None),
        ("receive_ceiling_over_reference", "receive ceiling / reference upload", None),
        ("streamport_over_fileresponse_download", "Streamport / FileResponse download", None),
        ("streamport_over_baseline_upload", f"Streamport / {baseline_label} upload", None),
        ("streamport_over_baseline_download", f"Streamport / {baseline_label} download", None),
    ):
        value = ratios.get(key)
        if value is None:
            continue
        if target is None:
            ratio_rows.append([label, f"{value:.2f}", "(context)", "-"])
            continue
        met = value >= target
        ok = ok and met
        ratio_rows.append([label, f"{value:.2f}", f">= {target:g}", "met" if met else "MISSED"])
    ratio_table = table(["ratio of medians", "value", "target", "result"], ratio_rows)
    notes = "\n".join(
        [
            "MB/s = 10^6 bytes of file per second. Each measurement starts with no dirty pages.",
            "Streamport hashes (SHA-256) and fsyncs every upload before answering; the reference "
            "does neither",
            "(its 'then fsync' row adds the time an fsync of its file takes right after it "
            "answers).",
            "The ceiling drains the raw body in an endpoint and drops it (no parsing, no disk): "
            "no app under",
            "this uvicorn can receive faster, so 'receive ceiling / reference' bounds any "
            "Streamport / reference ratio.",
            "Peak RSS: the server's, sampled every 50 ms during the transfer; growth = peak − "
            "RSS when it began.",
        ]
    )
    text = f"{speed_table}\n\n{ratio_table}"
    if comparisons:
        text += "\n\n" + comparison_table(comparisons, "Streamport", baseline_label)
    return f"{text}\n\n{notes}", ok


def main() -> int:
    """Command line entry."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="rounds (default 5)")
    parser.add_argument("--size-mib", type=int, default=1024, help="file size (default 1024)")
    parser.add_argument("--tmp-dir", type=Path, help="filesystem to measure (default: $TMPDIR)")
    parser.add_argument("--no-download", action="store_true", help="skip the download runs")
    parser.add_argument(
        "--baseline",
        metavar="REV",
        help="also measure Streamport at git revision REV (a worktree), e.g. the parent commit",
    )
    parser.add_argument("--interval", type=float, default=0.05, help="RSS sampling period, s")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when a target is missed, not only on errors"
    )
    args = parser.parse_args()
    if args.repeat < 1 or args.size_mib < 1:
        parser.error("--repeat and --size-mib must be at least 1")

    workdir = make_workdir(args.tmp_dir, "streamport-bench-upload-")
    size = args.size_mib * MiB
    bench = Bench(args, workdir)
    with servers_stopped_after(bench, workdir, args.keep):
        # Source, each Streamport's copy, the reference's spool and copy, dd's file, and slack.
        require_free_space(workdir, (6 if args.baseline else 5) * size + 512 * MiB)
        env = environment(workdir)
        fs = env["filesystem"]
        print(
            f"upload speed benchmark in {workdir} ({fs['device']} {fs['fstype']}), "
            f"{env['cpus']} CPUs, Python {env['python']}",
            flush=True,
        )
        if bench.trees[0].dirty:
            print("the working tree has uncommitted changes: Streamport runs them", flush=True)
        bench.start()
        bench.measure()

    summary = summarize(bench.runs, size)
    comparisons = against_baseline(summary)
    baseline_label = bench.trees[1].label if len(bench.trees) > 1 else "baseline"
    text, ok = report(summary, args.repeat, size, baseline_label, comparisons)
    path = write_results(
        "upload_speed",
        {
            "benchmark": "upload_speed",
            "environment": env,
            "git": git_state(),
            "argv": sys.argv,
            "code": {
                tree.key: {**tree.as_dict(), "imports": bench.code.get(tree.key)}
                for tree in bench.trees
            },
            "baseline": bench.trees[1].as_dict() if len(bench.trees) > 1 else None,
            "size_bytes": size,
            "repeat": args.repeat,
            "targets": {
                "streamport_over_reference": REFERENCE_RATIO_TARGET,
                "streamport_over_dd": DISK_RATIO_TARGET,
            },
            "targets_met": ok,
            "against_baseline": comparisons,
            **summary,
        },
    )
    print()
    print(text)
    print()
    print(code_line(bench.code, bench.trees))
    warning = same_code_warning(bench.code)
    if warning:
        print(warning)
    print(f"\nresults: {display_path(path)}")
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
