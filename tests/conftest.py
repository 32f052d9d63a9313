"""Fixtures: settings in tmp_path, the app with migrations applied, an in-process client, and a
real ``streamport serve`` on 127.0.0.1; a real PostgreSQL and a real S3-compatible server for
the runs that use them."""

import concurrent.futures
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx2
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.catalog.migrate import upgrade_to_head
from app.config import Settings
from app.main import create_app
from tests.postgres_server import DatabasePool, PostgresServer, start_postgres
from tests.s3_server import REGION, TEST_CREDENTIALS, S3Server, bucket_contents, start_s3

if TYPE_CHECKING:
    from tests.media_samples import Samples

REPO_ROOT = Path(__file__).resolve().parent.parent

# The suite's servers keep a smaller reserve of free disk than the 1 GiB default, so the suite
# runs on a small disk too; tests/test_full_disk.py tests the reserve itself.
os.environ.setdefault("STREAMPORT_MIN_FREE_BYTES", str(64 * 2**20))


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """One PostgreSQL server for the run; each test gets a database of its own on it,
    copied from one migrated to the newest schema."""
    server = start_postgres(free_port())
    template = "streamport_template"
    server.create_database(template)
    upgrade_to_head(
        Settings(
            _env_file=None,
            media_dir=tmp_path_factory.mktemp("postgres-template"),
            database_url=server.url(template),
        )
    )
    server.template = template
    server.pool = DatabasePool(server, template)
    yield server
    server.pool.close()
    server.stop()


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """One S3-compatible server for the run; each test gets a bucket of its own on it."""
    log = tmp_path_factory.mktemp("s3") / "moto.log"
    server = start_s3(free_port(), log)
    with pytest.MonkeyPatch.context() as patch:
        for name, value in TEST_CREDENTIALS.items():
            patch.setenv(name, value)
        yield server
    server.stop()


def new_database(postgres: PostgresServer) -> str:
    """The URL of a fresh, empty catalog in PostgreSQL (at the newest schema)."""
    assert postgres.pool is not None
    return postgres.url(postgres.pool.take())


def s3_settings(s3: S3Server, postgres: PostgresServer, media_dir: Path, **values: Any) -> Settings:
    """A deployment's settings: the catalog in PostgreSQL, the bytes in a fresh bucket."""
    bucket = f"test-{uuid.uuid4().hex[:16]}"
    s3.create_bucket(bucket)
    return Settings(
        _env_file=None,
        media_dir=media_dir,
        database_url=new_database(postgres),
        storage="s3",
        s3_endpoint_url=s3.endpoint_url,
        s3_bucket=bucket,
        s3_prefix="library/",
        s3_region=REGION,
        **values,
    )


BACKENDS = ["sqlite", "postgresql", "s3"]


def backend_settings(
    request: pytest.FixtureRequest, backend: str, media_dir: Path, **values: Any
) -> Settings:
    """Settings for one of ``BACKENDS``: media in ``media_dir``, the catalog in SQLite there
    (a copy of the migrated template); or the catalog in a fresh PostgreSQL database; or that
    and the bytes in a fresh S3 bucket."""
    if backend == "s3":
        return s3_settings(
            request.getfixturevalue("s3"), request.getfixturevalue("postgres"), media_dir, **values
        )
    database_url = None
    if backend == "postgresql":
        database_url = new_database(request.getfixturevalue("postgres"))
    else:
        media_dir.mkdir(parents=True)
        copy_catalog(request.getfixturevalue("sqlite_template"), media_dir / "streamport.db")
    return Settings(_env_file=None, media_dir=media_dir, database_url=database_url, **values)


@pytest.fixture(params=BACKENDS)
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Media in ``tmp_path``, the catalog in SQLite there; or the catalog in a fresh
    PostgreSQL database; or that and the bytes in a fresh S3 bucket."""
    return backend_settings(request, request.param, tmp_path / "media", max_upload_bytes=10 * 2**20)


@pytest.fixture(scope="module", params=BACKENDS)
def module_settings(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    """As ``settings``, shared by the tests of one module."""
    media_dir = tmp_path_factory.mktemp(f"module-{request.param}") / "media"
    return backend_settings(request, request.param, media_dir, max_upload_bytes=10 * 2**20)


@pytest.fixture(scope="session", autouse=True)
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty SQLite catalog at the newest schema, for tests (and ``start_server``) to start
    from a copy."""
    global _sqlite_template
    media_dir = tmp_path_factory.mktemp("sqlite-template")
    upgrade_to_head(Settings(_env_file=None, media_dir=media_dir))
    _sqlite_template = media_dir / "streamport.db"
    return _sqlite_template


# The session's migrated SQLite catalog, once made: ``start_server`` starts a new SQLite
# catalog from a copy of it rather than running every migration again.
_sqlite_template: Path | None = None


def copy_catalog(source: Path, destination: Path) -> None:
    """Copy a SQLite catalog with SQLite's backup API (whatever its journal holds)."""
    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(destination)) as dst:
        src.backup(dst)


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    # The settings' catalog is a copy of a migrated template, already at the newest schema:
    # running the migrations again found nothing to do in 20-100 ms a test (~450 tests).
    settings.media_dir.mkdir(parents=True, exist_ok=True)
    return create_app(settings)


@pytest.fixture
def client(app: FastAPI, settings: Settings) -> Iterator[TestClient]:
    """An in-process client signed in as an admin through an API token."""
    with signed_in(app, provision(settings, "admin", is_admin=True)) as test_client:
        yield test_client


def signed_in(app: FastAPI, token: str) -> TestClient:
    """An in-process client (use it in ``with``) that sends ``token``."""
    return TestClient(
        app,
        base_url="http://127.0.0.1",
        raise_server_exceptions=True,
        headers={"Authorization": f"Bearer {token}"},
    )


def provision(
    settings: Settings, name: str, *, is_admin: bool = False, password: str | None = None
) -> str:
    """Create an account in a migrated catalog (as ``streamport user add`` does) and return an
    API token for it (as ``streamport token create`` does)."""
    import asyncio

    from app.accounts import provisioning
    from app.accounts.passwords import hash_password_sync

    password_hash = hash_password_sync(password) if password is not None else None

    async def make() -> str | None:
        await provisioning.add_user(settings, name, password_hash, is_admin=is_admin)
        return await provisioning.create_token(settings, name, "tests")

    # In a thread of its own: Playwright's sync API keeps an event loop running in this one.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        token = pool.submit(asyncio.run, make()).result()
    assert token is not None
    return token


def run_cli(
    settings: Settings, cwd: Path, *args: str, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """``python -m app.cli ARGS`` against these settings' catalog, as an operator runs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMPORT_")}
    env["STREAMPORT_MEDIA_DIR"] = str(settings.media_dir)
    env["STREAMPORT_DATABASE_URL"] = settings.catalog_url
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=60,
    )


_CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def attempt_login(client: httpx2.Client, username: str, password: str) -> httpx2.Response:
    """Sign in with the login form as a browser does: its CSRF cookie and field, its Origin."""
    form = client.get("/login")
    assert form.status_code == 200, form.text
    [csrf] = _CSRF_FIELD.findall(form.text)
    assert "streamport_csrf" in client.cookies
    return client.post(
        "/login",
        data={"username": username, "password": password, "next": "/", "csrf_token": csrf},
        headers={"Origin": str(client.base_url).rstrip("/")},
    )


def upload(
    client: TestClient | httpx2.Client,
    data: bytes,
    filename: str = "file.bin",
    title: str | None = None,
    content_type: str = "application/octet-stream",
    visibility: str | None = None,
) -> dict[str, Any]:
    """Upload one file through the API and return its Media JSON."""
    form = {"title": title} if title is not None else {}
    if visibility is not None:
        form["visibility"] = visibility
    response = client.post(
        "/api/media", files={"file": (filename, data, content_type)}, data=form or None
    )
    assert response.status_code == 201, response.text
    [media] = response.json()["items"]
    return media


def stored_files(settings: Settings) -> list[str]:
    """Everything storage holds: files under the media dir except the catalog and the signing
    key (paths relative to it) and, on S3, the bucket's objects and multipart uploads in
    flight."""
    found = sorted(
        str(p.relative_to(settings.media_dir))
        for p in settings.media_dir.rglob("*")
        if p.is_file() and not p.name.startswith("streamport.db") and p.name != "secret.key"
    )
    if settings.storage == "s3":
        assert settings.s3_endpoint_url and settings.s3_bucket
        found += bucket_contents(settings.s3_endpoint_url, settings.s3_bucket)
    return found


FINAL_STATES = frozenset({"done", "failed", "skipped"})


def upload_file(server: "LiveServer", path: Path) -> dict[str, Any]:
    """Upload a file on disk to a live server (streamed, not read whole) and return its Media."""
    with server.client() as client, path.open("rb") as handle:
        response = client.post("/api/media", files={"file": (path.name, handle)})
    assert response.status_code == 201, response.text
    return response.json()["items"][0]


def wait_for_processing(
    server: "LiveServer",
    media_id: str,
    states: frozenset[str] | set[str] = FINAL_STATES,
    seconds: float = 120,
) -> dict[str, Any]:
    """Poll the Media until its processing reaches one of ``states``."""
    deadline = time.monotonic() + seconds
    with server.client() as client:
        while True:
            media = client.get(f"/api/media/{media_id}").json()
            if media["processing"]["state"] in states:
                return media
            assert time.monotonic() < deadline, media["processing"]
            time.sleep(0.1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LiveServer:
    """A ``streamport serve`` subprocess on 127.0.0.1."""

    process: subprocess.Popen[bytes]
    port: int
    settings: Settings
    log_path: Path
    # An admin's API token, made before the server started.
    token: str = ""

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def client(self, **kwargs: Any) -> httpx2.Client:
        """A client signed in as the admin (``anonymous_client`` for none)."""
        headers = {**self.auth_headers, **kwargs.pop("headers", {})}
        return httpx2.Client(base_url=self.base_url, headers=headers, **{"timeout": 60, **kwargs})

    def anonymous_client(self, **kwargs: Any) -> httpx2.Client:
        return httpx2.Client(base_url=self.base_url, **{"timeout": 60, **kwargs})

    def worker_pids(self) -> list[int]:
        return [self.process.pid]

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(
    settings: Settings,
    log_path: Path,
    port: int | None = None,
    extra_env: dict[str, str] | None = None,
    workers: int = 1,
    wrapper: list[str] | None = None,
    admin: bool = True,
) -> LiveServer:
    """Start ``streamport serve`` with these settings and wait until it answers; ``wrapper``
    goes before the command (e.g. ``prlimit --nofile=1024:1024 --``)."""
    port = port or free_port()
    # The suite's servers start with an admin (and so print no setup link); tests of the
    # first start use ``start_server(..., admin=False)``.
    token = ""
    if admin:
        # In a thread of its own: Playwright's sync API keeps an event loop running in this one.
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pool.submit(_migrated_catalog, settings).result()
        token = provision(settings, f"admin-{uuid.uuid4().hex[:8]}", is_admin=True)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("STREAMPORT_")},
        **{
            f"STREAMPORT_{name.upper()}": str(value)
            for name, value in settings.model_dump().items()
            if name not in ("host", "port") and value is not None
        },
        **(extra_env or {}),
    }
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [
                *(wrapper or []),
                sys.executable,
                "-m",
                "app.cli",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(workers),
            ],  # fmt: skip
            cwd=log_path.parent,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = LiveServer(process, port, settings, log_path, token)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {log_path.read_text()}")
        try:
            if httpx2.get(f"{server.base_url}/healthz", timeout=1).status_code == 200:
                return server
        except httpx2.TransportError:
            time.sleep(0.02)
    server.stop()
    raise RuntimeError(f"server did not answer: {log_path.read_text()}")


def _migrated_catalog(settings: Settings) -> None:
    """Bring the catalog to the newest schema; a SQLite catalog not made yet is a copy of the
    session's template (as the migrations would make it, in a fraction of the time)."""
    catalog = settings.media_dir.resolve() / "streamport.db"
    if (
        _sqlite_template is not None
        and settings.catalog_url == f"sqlite+aiosqlite:///{catalog}"
        and not catalog.exists()
    ):
        catalog.parent.mkdir(parents=True, exist_ok=True)
        copy_catalog(_sqlite_template, catalog)
        return
    upgrade_to_head(settings)


@pytest.fixture
def live_server(settings: Settings, tmp_path: Path) -> Iterator[LiveServer]:
    server = start_server(settings, tmp_path / "server.log")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def module_live_server(
    module_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """As ``live_server``, one for all the tests of a module (each backend in turn): for
    tests that look only at what they did themselves."""
    server = start_server(module_settings, tmp_path_factory.mktemp("module-server") / "server.log")
    yield server
    server.stop()


@pytest.fixture(scope="session", autouse=True)
def _hevc_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """HEVC clips are encoded once a session for each length (tests/media_samples.py)."""
    from tests import media_samples

    media_samples.hevc_cache = tmp_path_factory.mktemp("hevc-cache")
    yield
    media_samples.hevc_cache = None


@pytest.fixture(scope="session")
def samples(tmp_path_factory: pytest.TempPathFactory) -> "Samples":
    """Videos, audio, an image and a large random file, made once per run with ffmpeg."""
    from tests.media_samples import make_samples

    return make_samples(tmp_path_factory.mktemp("samples"))


@pytest.fixture(scope="session")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One ``streamport serve`` for the tests of real clients, which only add media."""
    root = tmp_path_factory.mktemp("shared-server")
    # No processing here: these tests see the bytes exactly as uploaded (the MP4 keeps its
    # index at the end); tests/test_processing.py covers what processing changes.
    # Public by default: the third-party clients fetch these anonymously, as anyone may.
    settings = Settings(
        _env_file=None,
        media_dir=root / "media",
        max_upload_bytes=2**31,
        processing_concurrency=0,
        default_visibility="public",
    )
    server = start_server(settings, root / "server.log")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sample_media(shared_server: LiveServer, samples: "Samples") -> dict[str, dict[str, Any]]:
    """Every sample uploaded once to the shared server: field name → Media JSON."""
    uploaded = {}
    with shared_server.client() as client:
        for name in ("mp4_moov_at_end", "mp4_faststart", "webm", "mp3", "png", "random_file"):
            path: Path = getattr(samples, name)
            with path.open("rb") as handle:
                response = client.post("/api/media", files={"file": (path.name, handle)})
            assert response.status_code == 201, response.text
            uploaded[name] = response.json()["items"][0]
    return uploaded
