"""A throwaway S3-compatible server for the tests: moto's standalone server on 127.0.0.1."""

import functools
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx2
from botocore.config import Config

# Credentials that moto accepts; set for the test process and the servers it starts, so
# nothing ever asks a real credential provider (or the EC2 metadata address) for them.
TEST_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "streamport-test",
    "AWS_SECRET_ACCESS_KEY": "streamport-test-secret",
    "AWS_EC2_METADATA_DISABLED": "true",
}
REGION = "us-east-1"
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


@functools.cache
def s3_client(endpoint_url: str) -> Any:
    """A synchronous boto3 client, to look at a bucket from outside the app: one per endpoint
    (making one costs 30 ms; each bucket a test gets, and each look at what storage holds,
    asked for a new one)."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=TEST_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=TEST_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        config=Config(s3={"addressing_style": "path"}),
    )


def object_names(endpoint_url: str, bucket: str) -> list[str]:
    """Every object in ``bucket``."""
    listed = s3_client(endpoint_url).list_objects_v2(Bucket=bucket)
    return sorted(item["Key"] for item in listed.get("Contents", []))


def uploads_in_flight(endpoint_url: str, bucket: str) -> list[str]:
    """The object name of every multipart upload in ``bucket`` neither completed nor aborted."""
    listed = s3_client(endpoint_url).list_multipart_uploads(Bucket=bucket)
    return sorted(item["Key"] for item in listed.get("Uploads", []))


def bucket_contents(endpoint_url: str, bucket: str) -> list[str]:
    """Objects and multipart uploads in flight, each named for what it is."""
    return [f"s3:{name}" for name in object_names(endpoint_url, bucket)] + [
        f"s3-upload:{name}" for name in uploads_in_flight(endpoint_url, bucket)
    ]


@dataclass
class S3Server:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path  # one access-log line per request

    def requests_for(self, fragment: str) -> list[str]:
        """The access-log lines of requests whose line contains ``fragment``, without the
        colours werkzeug adds when it thinks a terminal is reading."""
        plain = _ANSI_ESCAPE.sub("", self.log_path.read_text())
        return [line for line in plain.splitlines() if fragment in line and "HTTP/1.1" in line]

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def create_bucket(self, name: str) -> None:
        s3_client(self.endpoint_url).create_bucket(Bucket=name)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_s3(port: int, log_path: Path) -> S3Server:
    """Start ``moto.server`` and wait until it answers."""
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **TEST_CREDENTIALS},
        )
    server = S3Server(process, port, log_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto server exited: {log_path.read_text()}")
        try:
            httpx2.get(server.endpoint_url, timeout=1)
            return server
        except httpx2.TransportError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"moto server did not answer: {log_path.read_text()}")
