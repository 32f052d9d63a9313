"""``streamport verify`` as a user runs it: a real library (uploads through a running server,
processing included; one per backend, restored after each test) damaged in storage behind
Streamport's back, then the command in a subprocess; and the pure decisions it rests on."""

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from app.config import Settings
from app.maintenance.findings import Expected, Kind, Reading, Tally, is_orphan, judge
from app.maintenance.readers import expectations
from tests.conftest import (
    LiveServer,
    free_port,
    start_server,
    upload_file,
    wait_for_processing,
)
from tests.media_samples import FFMPEG
from tests.s3_server import S3Server, s3_client

MIB = 2**20
# The shape of a generated key, so storage lists it.
STRAY_KEY = "5e/5e0123456789abcdef0123456789abcd"


# --------------------------------------------------------------------------- helpers


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment a ``streamport`` command needs to use this library (as
    ``start_server`` builds it)."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("STREAMPORT_")},
        **{
            f"STREAMPORT_{name.upper()}": str(value)
            for name, value in settings.model_dump().items()
            if name not in ("host", "port") and value is not None
        },
    }


def run_verify(settings: Settings, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``streamport verify ARGS`` in a subprocess."""
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "verify", *args],
        env=settings_env(settings),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def lines_of(result: subprocess.CompletedProcess[str], kind: str) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.startswith(f"{kind} ")]


def problem_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return sorted(line for kind in Kind for line in lines_of(result, kind))


@dataclass
class Storage:
    """The library's bytes as an intruder (or a failing disk) sees them: files under
    ``media/objects`` or objects in the bucket, touched without Streamport."""

    settings: Settings

    @property
    def _bucket(self) -> tuple[Any, str, str]:
        assert self.settings.s3_endpoint_url and self.settings.s3_bucket
        prefix = self.settings.s3_prefix.strip("/")
        return (
            s3_client(self.settings.s3_endpoint_url),
            self.settings.s3_bucket,
            f"{prefix}/" if prefix else "",
        )

    def _path(self, key: str) -> Path:
        return self.settings.media_dir / "objects" / key

    def keys(self) -> list[str]:
        if self.settings.storage == "s3":
            client, bucket, prefix = self._bucket
            listed = client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
            return sorted(item["Key"][len(prefix) :] for item in listed)
        root = self.settings.media_dir / "objects"
        return sorted(str(p.relative_to(root)) for p in root.glob("*/*"))

    def read(self, key: str) -> bytes:
        if self.settings.storage == "s3":
            client, bucket, prefix = self._bucket
            return client.get_object(Bucket=bucket, Key=prefix + key)["Body"].read()
        return self._path(key).read_bytes()

    def write(self, key: str, data: bytes) -> None:
        if self.settings.storage == "s3":
            client, bucket, prefix = self._bucket
            client.put_object(Bucket=bucket, Key=prefix + key, Body=data)
            return
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def delete(self, key: str) -> None:
        if self.settings.storage == "s3":
            client, bucket, prefix = self._bucket
            client.delete_object(Bucket=bucket, Key=prefix + key)
            return
        self._path(key).unlink()

    def key_holding(self, data: bytes) -> str:
        """The key whose bytes are exactly ``data``."""
        [key] = [key for key in self.keys() if self.read(key) == data]
        return key


@dataclass
class Library:
    server: LiveServer
    storage: Storage
    media: dict[str, dict[str, Any]]  # by file name
    bytes: dict[str, bytes]  # by file name, plus "poster" and "thumbnail" of the video

    @property
    def settings(self) -> Settings:
        return self.server.settings


def make_video(path: Path) -> Path:
    """A one-second H.264 clip: processing gives it a poster and a thumbnail."""
    subprocess.run(
        [
            FFMPEG, "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=1",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path),
        ],
        check=True,
    )  # fmt: skip
    return path


@pytest.fixture(scope="module")
def built_library(
    module_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Library]:
    """A running server holding a 9 MiB file (more than one read, and on S3 a multipart
    upload), a small one, an empty one and a processed video with poster and thumbnail: built
    once per backend, and put back as it was after each test (``library``)."""
    settings = module_settings
    tmp_path = tmp_path_factory.mktemp("library")
    files = tmp_path / "files"
    files.mkdir()
    contents = {"big.bin": os.urandom(9 * MIB), "small.bin": os.urandom(1000), "empty.bin": b""}
    for name, data in contents.items():
        (files / name).write_bytes(data)
    video = make_video(files / "clip.mp4")
    contents["clip.mp4"] = video.read_bytes()
    server = start_server(settings, tmp_path / "server.log")
    try:
        media = {name: upload_file(server, files / name) for name in contents}
        processed = wait_for_processing(server, media["clip.mp4"]["id"])
        assert processed["processing"]["state"] == "done", processed["processing"]
        with server.client() as client:
            for derived in ("poster", "thumbnail"):
                answer = client.get(processed[f"{derived}_url"])
                assert answer.status_code == 200
                contents[derived] = answer.content
        yield Library(server, Storage(settings), media, contents)
    finally:
        server.stop()


@pytest.fixture
def library(built_library: Library) -> Iterator[Library]:
    """The module's library, exactly as built: the bytes a test damaged, deleted or added
    behind Streamport's back are put back afterwards (and checked to be)."""
    storage = built_library.storage
    stored = {key: storage.read(key) for key in storage.keys()}
    objects = built_library.settings.media_dir / "objects"
    directories = set(objects.iterdir()) if built_library.settings.storage == "local" else set()
    yield built_library
    for key in storage.keys():
        if key not in stored:
            storage.delete(key)
    for key, data in stored.items():
        try:
            intact = storage.read(key) == data
        except (FileNotFoundError, ClientError):
            intact = False
        if not intact:
            storage.write(key, data)
    if built_library.settings.storage == "local":
        for directory in set(objects.iterdir()) - directories:
            directory.rmdir()  # left empty by a deleted stray
    assert {key: storage.read(key) for key in storage.keys()} == stored


# --------------------------------------------------------------------------- the command


def test_a_sound_library_verifies_clean(library: Library, tmp_path: Path) -> None:
    before = library.storage.keys()

    result = run_verify(library.settings, cwd=tmp_path / "run")

    assert result.returncode == 0, result.stdout + result.stderr
    assert problem_lines(result) == []
    summary = result.stdout.splitlines()[-1]
    # Four originals, the video's poster and thumbnail.
    total = sum(len(data) for data in library.bytes.values())
    assert summary.startswith(f"checked 6 objects of 4 media, {total:,} bytes read in "), summary
    assert summary.endswith("no problems"), summary
    assert library.storage.keys() == before


def test_flipped_truncated_and_deleted_bytes_are_each_reported(
    library: Library, tmp_path: Path
) -> None:
    storage, media = library.storage, library.media
    big = storage.key_holding(library.bytes["big.bin"])
    small = storage.key_holding(library.bytes["small.bin"])
    empty = storage.key_holding(b"")
    poster = storage.key_holding(library.bytes["poster"])
    # A flipped bit in the very last byte: found only by reading everything.
    flipped = bytearray(library.bytes["big.bin"])
    flipped[-1] ^= 0x01
    storage.write(big, bytes(flipped))
    storage.write(small, library.bytes["small.bin"][:-1])
    storage.delete(empty)
    storage.delete(poster)

    result = run_verify(library.settings, "--quiet", cwd=tmp_path / "run")

    assert result.returncode == 1, result.stdout + result.stderr
    assert problem_lines(result) == sorted(
        [
            f"CORRUPT {media['big.bin']['id']} {big} original expected sha256 "
            f"{media['big.bin']['sha256']} got {hashlib.sha256(flipped).hexdigest()}",
            f"MISSING {media['clip.mp4']['id']} {poster} poster",
            f"MISSING {media['empty.bin']['id']} {empty} original",
            f"SIZE {media['small.bin']['id']} {small} original expected 1000 bytes, found 999",
        ]
    )
    assert "4 problems (2 missing, 1 size, 1 corrupt)" in result.stdout.splitlines()[-1]
    assert "Traceback" not in result.stderr

    document = json.loads(run_verify(library.settings, "--json", cwd=tmp_path / "run").stdout)
    assert document["ok"] is False
    assert document["problem_counts"] == {
        "MISSING": 2,
        "SIZE": 1,
        "CORRUPT": 1,
        "UNREADABLE": 0,
        "ORPHAN": 0,
    }
    corrupt = next(p for p in document["problems"] if p["kind"] == "CORRUPT")
    assert corrupt == {
        "kind": "CORRUPT",
        "key": big,
        "media_id": media["big.bin"]["id"],
        "role": "original",
        "expected_sha256": media["big.bin"]["sha256"],
        "found_sha256": hashlib.sha256(flipped).hexdigest(),
    }


def test_bytes_no_row_names_are_orphans_once_old_and_never_removed(
    library: Library, tmp_path: Path
) -> None:
    storage = library.storage
    stray = os.urandom(321)
    storage.write(STRAY_KEY, stray)

    fresh = run_verify(library.settings, "--quiet", cwd=tmp_path / "run")

    # Just stored: an upload whose rows are not committed yet, not an orphan.
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    assert problem_lines(fresh) == []
    assert "1 object(s) stored less than" in fresh.stdout
    assert "not catalogued yet" in fresh.stdout

    if library.settings.storage == "s3":
        # An object's time cannot be set from outside: make every age old enough instead.
        old = run_verify(library.settings, "--quiet", "--orphan-age", "0", cwd=tmp_path / "run")
    else:
        two_days_ago = time.time() - 2 * 86400
        os.utime(library.settings.media_dir / "objects" / STRAY_KEY, (two_days_ago,) * 2)
        old = run_verify(library.settings, "--quiet", cwd=tmp_path / "run")

    assert old.returncode == 1, old.stdout + old.stderr
    [line] = problem_lines(old)
    assert line.startswith(f"ORPHAN {STRAY_KEY} 321 bytes, stored "), line
    assert "1 problem (1 orphan)" in old.stdout
    assert "`streamport serve` removes those older than" in old.stdout
    assert storage.read(STRAY_KEY) == stray  # reported, not removed


def test_without_a_catalog_verify_stops_with_exit_2_and_creates_nothing(tmp_path: Path) -> None:
    media_dir = tmp_path / "typo" / "media"
    settings = Settings(_env_file=None, media_dir=media_dir)

    result = run_verify(settings, cwd=tmp_path / "run")

    assert result.returncode == 2
    assert f"no catalog at {media_dir / 'streamport.db'}" in result.stderr
    assert "Traceback" not in result.stderr
    assert not media_dir.exists()


def test_an_unreachable_catalog_stops_verify_with_exit_2(tmp_path: Path) -> None:
    url = f"postgresql+asyncpg://streamport:hunter2@127.0.0.1:{free_port()}/streamport"
    settings = Settings(_env_file=None, media_dir=tmp_path / "media", database_url=url)

    result = run_verify(settings, cwd=tmp_path / "run")

    assert result.returncode == 2
    assert "cannot read the catalog at postgresql+asyncpg://streamport:***@" in result.stderr
    assert "hunter2" not in result.stderr
    assert "Traceback" not in result.stderr


def test_a_missing_bucket_stops_verify_with_exit_2(s3: S3Server, tmp_path: Path) -> None:
    media_dir = tmp_path / "media"
    local = Settings(_env_file=None, media_dir=media_dir)
    migrate = subprocess.run(
        [sys.executable, "-m", "app.cli", "migrate"],
        env=settings_env(local),
        cwd=tmp_path,
        capture_output=True,
        timeout=120,
    )
    assert migrate.returncode == 0
    settings = Settings(
        _env_file=None,
        media_dir=media_dir,
        storage="s3",
        s3_endpoint_url=s3.endpoint_url,
        s3_bucket="no-such-bucket",
        s3_region="us-east-1",
    )

    result = run_verify(settings, cwd=tmp_path / "run")

    assert result.returncode == 2
    assert "cannot open storage: The bucket 'no-such-bucket'" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("args", [["--jobs", "0"], ["--jobs", "two"], ["--orphan-age", "-1"]])
def test_usage_errors_exit_2(args: list[str], tmp_path: Path) -> None:
    settings = Settings(_env_file=None, media_dir=tmp_path / "media")
    result = run_verify(settings, *args, cwd=tmp_path / "run")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


# --------------------------------------------------------------------------- decisions


ORIGINAL = Expected("m1", "original", "ab/ab" + "0" * 30, 10, "a" * 64)


def test_bytes_as_catalogued_are_no_problem() -> None:
    assert judge(ORIGINAL, Reading(found=True, size=10, sha256="a" * 64)) is None


@pytest.mark.parametrize(
    ("reading", "kind"),
    [
        (Reading(found=False), Kind.MISSING),
        (Reading(found=True, size=9), Kind.SIZE),
        (Reading(found=True, size=11), Kind.SIZE),
        (Reading(found=True, size=10, sha256="b" * 64), Kind.CORRUPT),
        (Reading(found=True, size=10, error="Input/output error"), Kind.UNREADABLE),
    ],
)
def test_each_departure_from_the_catalog_has_its_kind(reading: Reading, kind: Kind) -> None:
    problem = judge(ORIGINAL, reading)
    assert problem is not None and problem.kind == kind
    assert problem.line().startswith(f"{kind} m1 {ORIGINAL.key} original")


def test_a_derived_file_needs_only_to_be_there_and_readable() -> None:
    poster = Expected("m1", "poster", "cd/cd" + "0" * 30)
    assert judge(poster, Reading(found=True, size=12345)) is None
    missing = judge(poster, Reading(found=False))
    assert missing is not None and missing.line() == f"MISSING m1 {poster.key} poster"


def test_a_row_names_its_original_and_each_derived_file_it_has() -> None:
    row = ("m1", 10, "A" * 64, "ab/k", None, "cd/t", None, ["ef/r1", "ef/r2"])
    assert expectations(row) == [
        Expected("m1", "original", "ab/k", 10, "a" * 64),
        Expected("m1", "thumbnail", "cd/t"),
        Expected("m1", "rendition", "ef/r1"),
        Expected("m1", "rendition", "ef/r2"),
    ]


def test_unnamed_bytes_are_orphans_only_from_the_given_age_on() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    assert not is_orphan(now - timedelta(minutes=59), now, 3600)
    assert is_orphan(now - timedelta(hours=1), now, 3600)


def test_the_summary_counts_problems_by_kind() -> None:
    tally = Tally(media=2, objects=3, bytes_read=2_000_000, seconds=2.0)
    assert tally.summary(3600).endswith("(1.0 MB/s): no problems")
    tally.problems.update([Kind.ORPHAN, Kind.CORRUPT, Kind.CORRUPT])
    tally.recent = 1
    assert tally.summary(3600) == (
        "checked 3 objects of 2 media, 2,000,000 bytes read in 2.0 s (1.0 MB/s): "
        "3 problems (2 corrupt, 1 orphan); 1 object(s) stored less than 1 h ago and not "
        "catalogued yet (uploads in progress) were not judged"
    )
