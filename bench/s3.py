"""Upload and download throughput through S3 storage, beside local storage and S3 itself.

One S3-compatible server (moto's standalone server, on 127.0.0.1) and two Streamport servers,
one with ``STREAMPORT_STORAGE=local`` and one with ``STREAMPORT_STORAGE=s3`` (SQLite catalogs,
processing off). Round by round, interleaved, the same random file (1 GiB by default) is

* uploaded with ``curl -F file=@PATH`` to each Streamport and downloaded again with ``curl``;
* sent straight to the S3 server with ``curl -T`` to a presigned PUT URL and fetched back from a
  presigned GET URL: what the S3 server manages with the same client in one request;
* sent straight to the S3 server as a multipart upload by boto3 (8 MiB parts, two in flight:
  the operations Streamport makes).

The references say what Streamport's streaming costs on top of the object store.

The S3 Streamport's RSS is sampled during its transfers: a multipart upload holds two 8 MiB
parts, a download a chunk or two, whatever the file size.

Run from the repository root: ``python3 -m bench.s3 [--repeat 3] [--size-mib 1024]``.
"""

import argparse
import os
import statistics
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import httpx2
from boto3.s3.transfer import TransferConfig

from bench.common import (
    MiB,
    RssSampler,
    Server,
    environment,
    free_port,
    make_workdir,
    mb_per_s,
    mib,
    require_free_space,
    servers_stopped_after,
    start_streamport,
    table,
    write_results,
)
from bench.upload_speed import curl_download, curl_upload, make_random_file
from tests.s3_server import REGION, TEST_CREDENTIALS, S3Server, s3_client, start_s3

CURL_TIMEOUT_S = 900


def _curl_put(path: Path, url: str) -> float:
    done = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{time_total}", "-T", str(path), url],
        capture_output=True, text=True, timeout=CURL_TIMEOUT_S, check=True,
    )  # fmt: skip
    status, seconds = done.stdout.split()
    if status != "200":
        raise RuntimeError(f"presigned PUT answered {status}")
    return float(seconds)


class Bench:
    """The S3 server, both Streamports, and the figures so far."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.size = args.size_mib * MiB
        self.source = workdir / "source.bin"
        self.bucket = f"bench-{uuid.uuid4().hex[:12]}"
        self.runs: dict[str, list[float]] = {}
        self.memory: dict[str, list[dict[str, Any]]] = {}
        self.servers: list[Server] = []
        self.s3: S3Server | None = None

    def start(self) -> None:
        print(f"writing {self.args.size_mib} MiB of random bytes to {self.source}", flush=True)
        make_random_file(self.source, self.size)
        os.environ.update(TEST_CREDENTIALS)
        self.s3 = start_s3(free_port(), self.workdir / "moto.log")
        self.s3.create_bucket(self.bucket)
        common = {"STREAMPORT_PROCESSING_CONCURRENCY": "0"}
        self.local = start_streamport(
            self.workdir / "local-media", self.size + 64 * MiB, self.workdir / "local.log", common
        )
        self.servers.append(self.local)
        s3_env = {
            **common,
            "STREAMPORT_STORAGE": "s3",
            "STREAMPORT_S3_ENDPOINT_URL": self.s3.endpoint_url,
            "STREAMPORT_S3_BUCKET": self.bucket,
            "STREAMPORT_S3_REGION": REGION,
        }
        self.on_s3 = start_streamport(
            self.workdir / "s3-media", self.size + 64 * MiB, self.workdir / "s3.log", s3_env
        )
        self.servers.append(self.on_s3)
        # The first transfers load parts of the S3 client's service model and warm caches:
        # keep them out of the runs (and out of the memory figures).
        warm = self.workdir / "warm-up.bin"
        make_random_file(warm, 20 * MiB)
        for label, server in (("local", self.local), ("s3", self.on_s3)):
            self._streamport_round(label, server, warm, record=False)
        self._direct_round(warm, record=False)
        self._boto3_round(warm, record=False)
        warm.unlink()

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
        if self.s3 is not None:
            self.s3.stop()

    def _record(self, name: str, seconds: float, sampler: RssSampler | None = None) -> None:
        self.runs.setdefault(name, []).append(mb_per_s(self.size, seconds))
        if sampler is not None:
            self.memory.setdefault(name, []).append(_rss(sampler))

    def _streamport_round(
        self, label: str, server: Server, path: Path, *, record: bool = True
    ) -> None:
        size = path.stat().st_size
        with RssSampler(server.pid) as sampler:
            status, seconds = curl_upload(
                path, f"{server.base_url}/api/media", server.upload_curl_args()
            )
        if status != 201:
            raise RuntimeError(f"{label} upload answered {status}:\n{server.log_tail()}")
        if record:
            self._record(f"{label}_upload", seconds, sampler)
        with httpx2.Client(
            base_url=server.base_url, headers=server.auth_headers, timeout=60
        ) as client:
            [item] = client.get("/api/media").json()["items"]
            with RssSampler(server.pid) as sampler:
                status, got, seconds = curl_download(f"{server.base_url}{item['download_url']}")
            if status != 200 or got != size:
                raise RuntimeError(f"{label} download: {status}, {got} bytes")
            if record:
                self._record(f"{label}_download", seconds, sampler)
            client.delete(f"/api/media/{item['id']}").raise_for_status()

    def _boto3_round(self, path: Path, *, record: bool = True) -> None:
        assert self.s3 is not None
        client = s3_client(self.s3.endpoint_url)
        key = f"direct/{uuid.uuid4().hex}"
        config = TransferConfig(
            multipart_threshold=8 * MiB, multipart_chunksize=8 * MiB, max_concurrency=2
        )
        started = time.monotonic()
        client.upload_file(str(path), self.bucket, key, Config=config)
        if record:
            self._record("boto3_upload", time.monotonic() - started)
        client.delete_object(Bucket=self.bucket, Key=key)

    def _direct_round(self, path: Path, *, record: bool = True) -> None:
        assert self.s3 is not None
        client = s3_client(self.s3.endpoint_url)
        key = f"direct/{uuid.uuid4().hex}"
        params = {"Bucket": self.bucket, "Key": key}
        put_url = client.generate_presigned_url("put_object", Params=params, ExpiresIn=3600)
        seconds = _curl_put(path, put_url)
        if record:
            self._record("direct_upload", seconds)
        get_url = client.generate_presigned_url("get_object", Params=params, ExpiresIn=3600)
        status, got, seconds = curl_download(get_url)
        if status != 200 or got != path.stat().st_size:
            raise RuntimeError(f"presigned GET: {status}, {got} bytes")
        if record:
            self._record("direct_download", seconds)
        client.delete_object(**params)

    def run(self) -> None:
        for round_number in range(1, self.args.repeat + 1):
            print(f"round {round_number}/{self.args.repeat}", flush=True)
            self._streamport_round("local", self.local, self.source)
            self._streamport_round("s3", self.on_s3, self.source)
            self._direct_round(self.source)
            self._boto3_round(self.source)


def _rss(sampler: RssSampler) -> dict[str, Any]:
    return {"growth_mib": mib(sampler.growth), "peak_mib": mib(sampler.peak)}


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 1)


def report(bench: Bench) -> dict[str, Any]:
    """Print the table and return the results to save."""
    medians = {name: _median(values) for name, values in bench.runs.items()}
    rows = []
    for direction in ("upload", "download"):
        local = medians[f"local_{direction}"]
        on_s3 = medians[f"s3_{direction}"]
        direct = medians[f"direct_{direction}"]
        boto3 = medians.get(f"boto3_{direction}")
        growth = max(entry["growth_mib"] for entry in bench.memory[f"s3_{direction}"])
        rows.append(
            [
                direction,
                local,
                on_s3,
                direct,
                boto3 or "",
                f"{on_s3 / direct:.2f}",
                f"{on_s3 / boto3:.2f}" if boto3 else "",
                growth,
            ]
        )
    print(
        table(
            [
                "1 GiB" if bench.size == 1024 * MiB else f"{bench.size // MiB} MiB",
                "Streamport local MB/s",
                "Streamport S3 MB/s",
                "S3 direct, curl MB/s",
                "S3 direct, boto3 8 MiB parts MB/s",
                "S3 / curl",
                "S3 / boto3",
                "S3 server RSS growth MiB (max)",
            ],
            rows,
        )
    )
    return {"medians_mb_per_s": medians, "runs_mb_per_s": bench.runs, "rss": bench.memory}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--tmp-dir", type=Path, default=None, help="where the work directory goes")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    workdir = make_workdir(args.tmp_dir, "streamport-bench-s3-")
    # The file, its local copy, and moto's copy (moto keeps objects in temporary files).
    require_free_space(workdir, 4 * args.size_mib * MiB)
    bench = Bench(args, workdir)
    with servers_stopped_after(bench, workdir, args.keep):
        env = environment(workdir)
        bench.start()
        bench.run()
    results = report(bench)
    results["environment"] = env
    results["args"] = {k: str(v) for k, v in vars(args).items()} | {"workdir": str(workdir)}
    print(f"results: {write_results('s3', results)}")


if __name__ == "__main__":
    main()
