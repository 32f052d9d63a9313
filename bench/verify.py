"""``streamport verify`` over a library of random files, beside ``sha256sum`` and a plain read.

``--size-gib`` (default 10) of random bytes in ``--files`` files (default 10) go into a fresh
local-storage library with ``streamport scan`` (which copies each file into storage and
catalogues it with its SHA-256); the source files are then deleted. Each round (``--repeat``,
default 3), in an order rotated from round to round, the same stored files are read by

* ``streamport verify --quiet --jobs J``, once per ``--jobs`` value (default 2);
* ``sha256sum`` (coreutils), one process over every file;
* ``xargs -P 2 -n 1 sha256sum``, two files at a time;
* ``openssl dgst -sha256`` (OpenSSL's SHA-256, the one Python's ``hashlib`` calls);
* ``cat`` to ``/dev/null``: the disk's own sequential read speed.

Before each measurement the page cache is dropped (``sync; echo 3 > /proc/sys/vm/drop_caches``,
root only): the runs are **cold**, read from the disk. Without that right (or with ``--warm``)
everything is read once beforehand and the runs are **warm**, from memory, which measures the
hashing alone. Also shown: ``hashlib.sha256`` over a buffer in memory (one core, no disk), the
peak RSS of ``streamport verify``, the CPU each command used and the CPU the rest of the machine
used meanwhile (a busy machine explains a slow run), and a last check that verify finds one
flipped byte (exit 1, one ``CORRUPT`` line); the figures only count if it does.

Target (cold runs): verify at ≥ 0.8× its ceiling, the slower of the disk (``cat``) and SHA-256
on every core (``hashlib`` in memory × CPUs): on a machine whose disk reads faster than its
cores hash, hashing is the limit, not the disk. Figures are medians (wall time, interpreter
start included).

Run from the repository root:
``python3 -m bench.verify [--size-gib 10] [--files 10] [--repeat 3] [--jobs 1 2 4]``.
"""

import argparse
import hashlib
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from bench.common import (
    GiB,
    MiB,
    RssSampler,
    display_path,
    environment,
    git_state,
    make_workdir,
    mb_per_s,
    mib,
    options_of,
    require_free_space,
    settle,
    size_label,
    spread,
    table,
    tool_version,
    write_results,
)
from bench.upload_speed import make_random_file

DROP_CACHES = Path("/proc/sys/vm/drop_caches")
HASHLIB_BYTES = 512 * MiB
TIMEOUT_S = 3600
_OWN_SECONDS = re.compile(r" bytes read in ([0-9.]+) s ")
CEILING_RATIO_TARGET = 0.8


def drop_caches() -> bool:
    """Write back and drop the page cache; ``False`` when not allowed (not root)."""
    os.sync()
    try:
        DROP_CACHES.write_text("3\n")
    except OSError:
        return False
    return True


def streamport_env(media_dir: Path) -> dict[str, str]:
    """The environment of a ``streamport`` command on this library (and nothing else)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMPORT_")}
    return {**env, "STREAMPORT_MEDIA_DIR": str(media_dir)}


def build_library(workdir: Path, size: int, files: int) -> tuple[Path, list[Path]]:
    """Random files scanned into a fresh library; returns its media dir and stored files."""
    source = workdir / "source"
    source.mkdir()
    each, extra = divmod(size, files)
    for index in range(files):
        make_random_file(source / f"random-{index:04d}.bin", each + (1 if index < extra else 0))
    media_dir = workdir / "media"
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "scan", str(source)],
        env=streamport_env(media_dir),
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    if done.returncode != 0 or f"added {files}," not in done.stdout:
        raise SystemExit(f"streamport scan failed:\n{done.stdout}\n{done.stderr[-2000:]}")
    print(f"scanned {files} files in {time.monotonic() - started:.1f} s", flush=True)
    shutil.rmtree(source)
    stored = sorted(p for p in (media_dir / "objects").glob("*/*") if p.is_file())
    if len(stored) != files or sum(p.stat().st_size for p in stored) != size:
        raise SystemExit(f"expected {files} stored files of {size} bytes in all")
    return media_dir, stored


class Tools:
    """The commands measured, each a function returning ``{"seconds", ...}``."""

    def __init__(self, workdir: Path, media_dir: Path, stored: list[Path], interval: float):
        self.workdir = workdir
        self.media_dir = media_dir
        self.interval = interval
        self.listing = workdir / "stored-files.list"
        self.listing.write_bytes(b"".join(bytes(p) + b"\0" for p in stored))

    def verify_argv(self, jobs: int) -> list[str]:
        return [sys.executable, "-m", "app.cli", "verify", "--quiet", "--jobs", str(jobs)]

    def verify(self, jobs: int) -> dict[str, Any]:
        """``streamport verify``: wall time, its own summary line, peak RSS."""
        started = time.monotonic()
        process = subprocess.Popen(
            self.verify_argv(jobs),
            env=streamport_env(self.media_dir),
            cwd=self.workdir,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            with RssSampler(process.pid, interval=self.interval) as rss:
                out, err = process.communicate(timeout=TIMEOUT_S)
        except psutil.Error:
            out, err = process.communicate(timeout=TIMEOUT_S)
            rss = None
        seconds = time.monotonic() - started
        if process.returncode != 0:
            raise RuntimeError(f"streamport verify exited {process.returncode}:\n{out}\n{err}")
        summary = out.strip().splitlines()[-1]
        own = _OWN_SECONDS.search(summary)
        return {
            "seconds": seconds,
            # What verify itself reports: from its first query on, without the interpreter's
            # start and imports (about 0.7 s).
            "own_seconds": float(own.group(1)) if own else None,
            "summary": summary,
            "peak_rss_mib": mib(rss.peak) if rss else None,
        }

    def shell(self, command: str) -> Callable[[], dict[str, Any]]:
        """A shell pipeline reading the NUL-separated list of stored files on stdin."""

        def run() -> dict[str, Any]:
            started = time.monotonic()
            with self.listing.open("rb") as names:
                done = subprocess.run(
                    ["bash", "-c", command],
                    stdin=names,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    timeout=TIMEOUT_S,
                )
            if done.returncode != 0:
                raise RuntimeError(f"{command!r} exited {done.returncode}: {done.stderr!r}")
            return {"seconds": time.monotonic() - started}

        return run


REFERENCES = {
    "sha256sum": "xargs -0 sha256sum",
    "sha256sum, xargs -P 2": "xargs -0 -P 2 -n 1 sha256sum",
    "openssl dgst -sha256": "xargs -0 openssl dgst -sha256",
    "cat > /dev/null": "xargs -0 cat > /dev/null",
}


def hashlib_speed() -> float:
    """MB/s of ``hashlib.sha256`` over a buffer in memory, one core: the CPU's ceiling."""
    data = os.urandom(HASHLIB_BYTES)
    best = 0.0
    for _ in range(3):
        started = time.perf_counter()
        hashlib.sha256(data).digest()
        best = max(best, mb_per_s(len(data), time.perf_counter() - started))
    return best


def flip_one_byte(path: Path) -> None:
    """Damage a stored file in its middle, as a failing disk would."""
    with path.open("r+b") as handle:
        handle.seek(path.stat().st_size // 2)
        byte = handle.read(1)
        handle.seek(-1, os.SEEK_CUR)
        handle.write(bytes([byte[0] ^ 0x01]))


def damage_is_found(tools: Tools, stored: list[Path], cold: bool) -> dict[str, Any]:
    """One flipped byte must give exit 1 and exactly one ``CORRUPT`` line naming its key."""
    victim = stored[len(stored) // 2]
    flip_one_byte(victim)
    if cold:
        drop_caches()
    done = subprocess.run(
        tools.verify_argv(2),
        env=streamport_env(tools.media_dir),
        cwd=tools.workdir,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    key = f"{victim.parent.name}/{victim.name}"
    corrupt = [line for line in done.stdout.splitlines() if line.startswith("CORRUPT ")]
    found = done.returncode == 1 and len(corrupt) == 1 and f" {key} original " in corrupt[0]
    return {"ok": found, "exit": done.returncode, "corrupt_lines": corrupt}


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy (all cores, not idle or waiting for I/O)."""
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def children_cpu_seconds() -> float:
    """User + system CPU of every finished child process (and theirs) so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def with_cpu(run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``run()``, plus the cores its command kept busy and those the rest of the machine did
    meanwhile (another load on the machine shows there, and explains a slow run)."""
    own_before, machine_before = children_cpu_seconds(), machine_busy_seconds()
    result = run()
    own = children_cpu_seconds() - own_before
    machine = machine_busy_seconds() - machine_before
    result["cpu_cores"] = own / result["seconds"]
    result["others_cores"] = max(0.0, machine - own) / result["seconds"]
    return result


def measure(args: argparse.Namespace, tools: Tools, size: int, cold: bool) -> dict[str, Any]:
    """Every tool ``--repeat`` times, the order rotated each round."""
    names = [f"streamport verify --jobs {jobs}" for jobs in args.jobs] + list(REFERENCES)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for round_index in range(args.repeat):
        order = names[round_index % len(names) :] + names[: round_index % len(names)]
        for name in order:
            if cold:
                drop_caches()
            else:
                settle()
            if name.startswith("streamport verify"):
                jobs = int(name.rsplit(" ", 1)[1])
                result = with_cpu(lambda jobs=jobs: tools.verify(jobs))
            else:
                result = with_cpu(tools.shell(REFERENCES[name]))
            result["mb_per_s"] = mb_per_s(size, result["seconds"])
            runs[name].append(result)
            print(
                f"round {round_index + 1}/{args.repeat}: {name}: {result['seconds']:.2f} s, "
                f"{result['mb_per_s']:.0f} MB/s, {result['cpu_cores']:.2f} cores; "
                f"{result['others_cores']:.2f} cores busy with other work",
                flush=True,
            )
    return runs


def summarize(runs: dict[str, list[dict[str, Any]]], size: int) -> dict[str, dict[str, Any]]:
    summary = {}
    for name, results in runs.items():
        summary[name] = {
            "seconds": spread([r["seconds"] for r in results]),
            "mb_per_s": spread([r["mb_per_s"] for r in results]),
            "cpu_cores": spread([r["cpu_cores"] for r in results]),
            "others_cores": spread([r["others_cores"] for r in results]),
        }
        rss = [r["peak_rss_mib"] for r in results if r.get("peak_rss_mib") is not None]
        if rss:
            summary[name]["peak_rss_mib"] = max(rss)
        own = [r["own_seconds"] for r in results if r.get("own_seconds")]
        if own:
            summary[name]["own_mb_per_s"] = spread([mb_per_s(size, s) for s in own])
    return summary


def report(
    summary: dict[str, dict[str, Any]], size: int, files: int, cold: bool, hashlib_mb_s: float
) -> str:
    sha = summary["sha256sum"]["mb_per_s"]["median"]
    disk = summary["cat > /dev/null"]["mb_per_s"]["median"]
    rows = []
    for name, entry in summary.items():
        seconds, rate = entry["seconds"], entry["mb_per_s"]
        rows.append(
            [
                name,
                f"{seconds['median']:.2f} ({seconds['min']:.2f}–{seconds['max']:.2f})",
                f"{rate['median']:.0f}",
                f"{entry['own_mb_per_s']['median']:.0f}" if "own_mb_per_s" in entry else "-",
                f"{rate['median'] / sha:.2f}",
                f"{rate['median'] / disk:.2f}",
                f"{entry['peak_rss_mib']:.0f}" if "peak_rss_mib" in entry else "-",
                f"{entry['cpu_cores']['median']:.2f}",
                f"{entry['others_cores']['median']:.2f} ({entry['others_cores']['max']:.2f})",
            ]
        )
    hashing = f"{hashlib_mb_s:.0f}"
    rows.append(["hashlib.sha256, in memory, one core", "-", hashing, "", "", "", "", "1", ""])
    headers = [
        "command",
        "seconds, median (min–max)",
        "MB/s",
        "MB/s after start-up",
        "speed / sha256sum",
        "speed / cat",
        "peak RSS MiB",
        "CPU cores",
        "other load, cores (max)",
    ]
    cache = "cold: page cache dropped before each run" if cold else "warm: files in page cache"
    return (
        f"{size_label(size)} in {files} files, {cache}\n\n" + table(headers, rows) + "\n\n"
        "MB/s: size / wall time of the command. After start-up: from verify's own summary, "
        "without the interpreter's start and imports. speed / sha256sum above 1: faster than "
        "coreutils' sha256sum; speed / cat: the share of the disk's read speed reached. "
        "CPU cores: CPU seconds of the command per second. Other load: cores the rest of the "
        "machine kept busy meanwhile (median, max); well above 0, the run competed for CPU."
    )


def main() -> int:
    """Command line entry."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-gib", type=float, default=10, help="library size (default 10)")
    parser.add_argument("--files", type=int, default=10, help="files it is made of (default 10)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds (default 3)")
    parser.add_argument(
        "--jobs", type=int, nargs="+", default=[2], help="verify --jobs values (default 2)"
    )
    parser.add_argument("--warm", action="store_true", help="do not drop the page cache")
    parser.add_argument("--interval", type=float, default=0.1, help="RSS sampling period, s")
    parser.add_argument("--tmp-dir", type=Path, help="where the library goes")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when the target is missed, not only on errors"
    )
    args = parser.parse_args()
    size = int(args.size_gib * GiB)
    if args.files < 1 or args.repeat < 1 or size < args.files or min(args.jobs) < 1:
        parser.error("--files, --repeat and --jobs must be at least 1, and a file at least a byte")
    for tool in ("sha256sum", "openssl", "xargs", "cat"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is missing")

    started = time.monotonic()
    workdir = make_workdir(args.tmp_dir, "streamport-bench-verify-")
    try:
        # The source files and their stored copies exist together until the scan ends.
        require_free_space(workdir, 2 * size + 512 * MiB)
        env = environment(workdir)
        fs = env["filesystem"]
        print(
            f"verify benchmark in {workdir} ({fs['device']} {fs['fstype']}), {env['cpus']} CPUs, "
            f"{env['memory_gib']} GiB memory, Python {env['python']}",
            flush=True,
        )
        media_dir, stored = build_library(workdir, size, args.files)
        cold = not args.warm and drop_caches()
        if not args.warm and not cold:
            print(f"cannot write {DROP_CACHES} (not root?): the runs are warm", flush=True)
        tools = Tools(workdir, media_dir, stored, args.interval)
        if not cold:
            tools.shell(REFERENCES["cat > /dev/null"])()  # into the page cache
        hashlib_mb_s = hashlib_speed()
        runs = measure(args, tools, size, cold)
        damage = damage_is_found(tools, stored, cold)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    summary = summarize(runs, size)
    text = report(summary, size, args.files, cold, hashlib_mb_s)
    best = max(
        summary[name]["mb_per_s"]["median"] for name in summary if name.startswith("streamport")
    )
    disk = summary["cat > /dev/null"]["mb_per_s"]["median"]
    ceiling = min(disk, hashlib_mb_s * (os.cpu_count() or 1))
    ratio = best / ceiling
    met = cold and ratio >= CEILING_RATIO_TARGET
    commands = {
        **{
            f"streamport verify --jobs {jobs}": "STREAMPORT_MEDIA_DIR=<library> python3 "
            + " ".join(tools.verify_argv(jobs)[1:])
            for jobs in args.jobs
        },
        **{
            name: f"{command} < <stored files, NUL-separated>"
            for name, command in REFERENCES.items()
        },
    }
    path = write_results(
        "verify",
        {
            "benchmark": "verify",
            "environment": {
                **env,
                "sha256sum": tool_version(["sha256sum", "--version"]),
                "openssl": tool_version(["openssl", "version"]),
            },
            "git": git_state(),
            "argv": sys.argv,
            "options": options_of(args),
            "size_bytes": size,
            "files": args.files,
            "cache": "cold" if cold else "warm",
            "commands": commands,
            "hashlib_in_memory_mb_per_s": hashlib_mb_s,
            "damage_check": damage,
            "target": {
                "verify_over_ceiling": CEILING_RATIO_TARGET,
                "ceiling_mb_per_s": ceiling,
                "ratio": ratio,
                "met": met,
            },
            "summary": summary,
            "runs": runs,
            "seconds": round(time.monotonic() - started, 1),
        },
    )
    print()
    print(text)
    print()
    for name, command in commands.items():
        print(f"{name}: {command}")
    print(
        f"\ntarget: verify ≥ {CEILING_RATIO_TARGET}× min(disk {disk:.0f}, hashing "
        f"{hashlib_mb_s:.0f} × {os.cpu_count()} cores) = {ceiling:.0f} MB/s (cold): "
        f"{best:.0f} MB/s, {ratio:.2f}× "
        f"{'met' if met else 'NOT met' if cold else '(not judged: warm)'}"
    )
    verdict = "found" if damage["ok"] else f"NOT found as expected: {damage}"
    print(f"one flipped byte: {verdict}")
    print(f"\nresults: {display_path(path)} ({time.monotonic() - started:.0f} s in all)")
    if not damage["ok"]:
        return 2
    return 1 if args.check and not met else 0


if __name__ == "__main__":
    sys.exit(main())
