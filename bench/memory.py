"""Server memory while a 2 GiB file goes up and comes back down.

Starts ``streamport serve`` in a temporary media directory, uploads a file whose multipart body
is produced by a generator (never held in memory nor written to disk on the client side) while
a thread samples the server's RSS every 50 ms, downloads it again (streamed and hashed, not
stored), then runs concurrent downloads with ``curl``. Target: RSS growth under 64 MiB.

Run from the repository root: ``python3 -m bench.memory [--size-mib 2048] [--concurrency 8]``.
"""

import argparse
import hashlib
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2

from bench.common import (
    UPLOAD_FIELDS,
    MiB,
    RssSampler,
    Server,
    display_path,
    environment,
    make_workdir,
    mb_per_s,
    mib,
    require_free_space,
    rss_bytes,
    size_label,
    start_streamport,
    table,
    write_results,
)

GROWTH_TARGET_MIB = 64
CHUNK_BYTES = MiB
TIMEOUT = httpx2.Timeout(600, connect=10)


class GeneratedUpload:
    """A multipart body with ``UPLOAD_FIELDS`` and one file of ``size`` bytes, produced
    chunk by chunk.

    The file is a random 1 MiB block repeated, each copy stamped with its index, so no two
    chunks are alike; the SHA-256 of the file bytes is computed while they are yielded.
    """

    def __init__(self, size: int, filename: str = "big.bin") -> None:
        self.size = size
        self.boundary = f"benchboundary{secrets.token_hex(12)}"
        fields = "".join(
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
            for name, value in UPLOAD_FIELDS.items()
        )
        self.head = (
            f"{fields}--{self.boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        self.tail = f"\r\n--{self.boundary}--\r\n".encode()
        self.block = os.urandom(CHUNK_BYTES)
        self.hasher = hashlib.sha256()

    @property
    def content_length(self) -> int:
        """Bytes of the whole body."""
        return len(self.head) + self.size + len(self.tail)

    @property
    def headers(self) -> dict[str, str]:
        """Request headers: a declared length, so the body is not sent chunked."""
        return {
            "Content-Type": f"multipart/form-data; boundary={self.boundary}",
            "Content-Length": str(self.content_length),
        }

    def __iter__(self) -> Iterator[bytes]:
        yield self.head
        remaining = self.size
        index = 0
        while remaining > 0:
            chunk = (index.to_bytes(8, "little") + self.block[8:])[:remaining]
            self.hasher.update(chunk)
            remaining -= len(chunk)
            index += 1
            yield chunk
        yield self.tail


def upload(client: httpx2.Client, body: GeneratedUpload) -> dict[str, Any]:
    """POST the generated body to ``/api/media``; returns the stored item's JSON."""
    response = client.post("/api/media", content=iter(body), headers=body.headers)
    if response.status_code != 201:
        raise RuntimeError(f"upload answered {response.status_code}: {response.text[:500]}")
    [item] = response.json()["items"]
    return dict(item)


def download(client: httpx2.Client, url: str) -> tuple[int, str]:
    """GET ``url`` streamed; returns the byte count and SHA-256 without storing anything."""
    hasher = hashlib.sha256()
    count = 0
    with client.stream("GET", url) as response:
        if response.status_code != 200:
            raise RuntimeError(f"download answered {response.status_code}")
        for piece in response.iter_raw():
            hasher.update(piece)
            count += len(piece)
    return count, hasher.hexdigest()


def concurrent_downloads(url: str, count: int) -> list[tuple[int, int]]:
    """``count`` simultaneous ``curl`` downloads to /dev/null; (status, bytes) of each."""
    argv = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download}", url]
    processes = [subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) for _ in range(count)]
    results = []
    for process in processes:
        out, _ = process.communicate(timeout=600)
        status, size = out.split()
        results.append((int(status), int(size)))
    return results


def warm_up(client: httpx2.Client) -> None:
    """One small upload, download and delete, so first-use imports and caches are loaded."""
    item = upload(client, GeneratedUpload(MiB, "warm-up.bin"))
    download(client, item["download_url"])
    client.delete(f"/api/media/{item['id']}").raise_for_status()


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Start the server, measure the three phases, stop the server."""
    size = args.size_mib * MiB
    require_free_space(workdir, size + 512 * MiB)
    server: Server = start_streamport(workdir / "media", size + 64 * MiB, workdir / "server.log")
    phases: dict[str, Any] = {}
    try:
        rss_at_start = rss_bytes(server.pid)
        with httpx2.Client(
            base_url=server.base_url, headers=server.auth_headers, timeout=TIMEOUT
        ) as client:
            warm_up(client)
            time.sleep(0.5)
            rss_after_warm_up = rss_bytes(server.pid)

            body = GeneratedUpload(size)
            with RssSampler(server.pid, args.interval) as sampler:
                started = time.monotonic()
                item = upload(client, body)
                seconds = time.monotonic() - started
            client_sha = body.hasher.hexdigest()
            phases["upload"] = {
                **sampler.as_dict(),
                "bytes": size,
                "mb_per_s": round(mb_per_s(size, seconds), 1),
                "server_size": item["size"],
                "server_sha256": item["sha256"],
                "client_sha256": client_sha,
                "sha256_match": item["sha256"] == client_sha and item["size"] == size,
            }

            time.sleep(0.5)
            with RssSampler(server.pid, args.interval) as sampler:
                started = time.monotonic()
                count, down_sha = download(client, item["download_url"])
                seconds = time.monotonic() - started
            phases["download"] = {
                **sampler.as_dict(),
                "bytes": count,
                "mb_per_s": round(mb_per_s(count, seconds), 1),
                "sha256": down_sha,
                "sha256_match": down_sha == client_sha and count == size,
            }

            time.sleep(0.5)
            url = f"{server.base_url}{item['download_url']}"
            with RssSampler(server.pid, args.interval) as sampler:
                started = time.monotonic()
                results = concurrent_downloads(url, args.concurrency)
                seconds = time.monotonic() - started
            complete = all(status == 200 and got == size for status, got in results)
            phases["concurrent_downloads"] = {
                **sampler.as_dict(),
                "clients": args.concurrency,
                "bytes": sum(got for _, got in results),
                "mb_per_s": round(mb_per_s(sum(got for _, got in results), seconds), 1),
                "all_complete": complete,
                "results": results,
            }

            time.sleep(1.0)
            rss_at_end = rss_bytes(server.pid)
    except BaseException:
        print(f"server log tail:\n{server.log_tail()}", file=sys.stderr)
        raise
    finally:
        server.stop()
    return {
        "size_bytes": size,
        "sample_interval_s": args.interval,
        "rss_at_start_mib": mib(rss_at_start),
        "rss_after_warm_up_mib": mib(rss_after_warm_up),
        "rss_at_end_mib": mib(rss_at_end),
        "growth_target_mib": GROWTH_TARGET_MIB,
        "phases": phases,
    }


def report(result: dict[str, Any]) -> tuple[str, bool]:
    """The printed table, and whether every check and target held."""
    phases = result["phases"]
    size = size_label(result["size_bytes"])
    rows = []
    ok = True
    labels = {
        "upload": (f"upload {size} (generator body)", True),
        "download": (f"download {size} (streamed, hashed)", True),
        "concurrent_downloads": (
            f"{phases['concurrent_downloads']['clients']} concurrent downloads (curl)",
            False,
        ),
    }
    for key, (label, has_target) in labels.items():
        phase = phases[key]
        growth = phase["growth_mib"]
        if has_target:
            met = growth < GROWTH_TARGET_MIB
            ok = ok and met
            target = f"< {GROWTH_TARGET_MIB}"
            verdict = "met" if met else "MISSED"
        else:
            target, verdict = "(reported)", "-"
        correct = phase.get("sha256_match", phase.get("all_complete"))
        ok = ok and bool(correct)
        rows.append(
            [
                label,
                f"{phase['seconds']:.1f}",
                f"{phase['mb_per_s']:.0f}",
                f"{phase['server_cpu_seconds']:.1f}",
                f"{phase['rss_before_mib']:.1f}",
                f"{phase['rss_peak_mib']:.1f}",
                f"{growth:.1f}",
                target,
                verdict,
                "yes" if correct else "NO",
            ]
        )
    headers = [
        "phase",
        "s",
        "MB/s",
        "server CPU s",
        "RSS before MiB",
        "RSS peak MiB",
        "growth MiB",
        "target MiB",
        "target",
        "bytes ok",
    ]
    upload_phase = phases["upload"]
    lines = [
        table(headers, rows),
        "",
        f"RSS at start {result['rss_at_start_mib']} MiB, after a 1 MiB warm-up "
        f"{result['rss_after_warm_up_mib']} MiB, at the end {result['rss_at_end_mib']} MiB; "
        f"sampled every {result['sample_interval_s'] * 1000:.0f} ms.",
        f"sha256 reported by the server: {upload_phase['server_sha256']}",
        f"sha256 computed by the client: {upload_phase['client_sha256']} "
        f"({'equal' if upload_phase['sha256_match'] else 'DIFFERENT'}); "
        f"download {'equal' if phases['download']['sha256_match'] else 'DIFFERENT'}.",
    ]
    return "\n".join(lines), ok


def main() -> int:
    """Command line entry."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=2048, help="file size (default 2048)")
    parser.add_argument("--concurrency", type=int, default=8, help="parallel downloads (8)")
    parser.add_argument("--interval", type=float, default=0.05, help="RSS sampling period, s")
    parser.add_argument("--tmp-dir", type=Path, help="where the media directory goes")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when a target is missed, not only on errors"
    )
    args = parser.parse_args()

    workdir = make_workdir(args.tmp_dir, "streamport-bench-memory-")
    try:
        env = environment(workdir)
        print(
            f"memory benchmark in {workdir} ({env['filesystem']['fstype']}), "
            f"{env['cpus']} CPUs, Python {env['python']}",
            flush=True,
        )
        result = run(args, workdir)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    text, ok = report(result)
    path = write_results("memory", {"benchmark": "memory", "environment": env, **result})
    print()
    print(text)
    print(f"\nresults: {display_path(path)}")
    correct = (
        result["phases"]["upload"]["sha256_match"]
        and result["phases"]["download"]["sha256_match"]
        and result["phases"]["concurrent_downloads"]["all_complete"]
    )
    if not correct:
        return 2
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
