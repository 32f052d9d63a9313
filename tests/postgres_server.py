"""A throwaway PostgreSQL server for the tests: Debian's binaries, a temporary data directory,
an unprivileged user, 127.0.0.1 only."""

import asyncio
import concurrent.futures
import glob
import os
import pwd
import queue
import shutil
import subprocess
import tempfile
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg

SUPERUSER = "streamport"


def find_bin_dir() -> Path | None:
    """Where ``initdb`` and ``pg_ctl`` are, newest version first."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    return Path(candidates[0]).parent if candidates else None


@dataclass
class PostgresServer:
    bin_dir: Path
    data_dir: Path
    port: int
    owner: str

    def url(self, database: str) -> str:
        """The SQLAlchemy async URL of ``database`` on this server."""
        return f"postgresql+asyncpg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    # A database already migrated to the newest schema that new ones are copied from (set
    # by the suite's fixture): copying is quicker than running every migration again.
    template: str | None = None
    # Copies of the template made ahead (set by the suite's fixture too).
    pool: "DatabasePool | None" = None

    def create_database(self, name: str, template: str | None = None) -> None:
        copy = f' TEMPLATE "{template}"' if template else ""
        if template and self._version() >= 15:
            # The copy is not written to the WAL as well (as 15's default, WAL_LOG, does),
            # which makes the hundreds of copies in a run quicker.
            copy += " STRATEGY FILE_COPY"
        self._execute(f'CREATE DATABASE "{name}"{copy}')

    def _version(self) -> int:
        """The major version, from Debian's /usr/lib/postgresql/VERSION/bin."""
        return int(self.bin_dir.parent.name) if self.bin_dir.parent.name.isdigit() else 0

    def _execute(self, sql: str) -> None:
        """Run one statement in the ``postgres`` database. Over asyncpg in this process, not
        a ``psql`` process each time (which costs far more than the statement); in a thread
        of its own, as Playwright's sync API keeps an event loop running in this one."""

        async def run() -> None:
            connection = await asyncpg.connect(
                host="127.0.0.1", port=self.port, user=SUPERUSER, database="postgres", timeout=60
            )
            try:
                await connection.execute(sql, timeout=60)
            finally:
                await connection.close()

        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, run()).result()

    def stop(self) -> None:
        self._as_owner([str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate",
                        "stop"], check=False)  # fmt: skip
        shutil.rmtree(self.data_dir.parent, ignore_errors=True)

    def _as_owner(self, argv: list[str], check: bool = True) -> None:
        subprocess.run(
            ["runuser", "-u", self.owner, "--", *argv] if os.geteuid() == 0 else argv,
            check=check, capture_output=True, timeout=120,
        )  # fmt: skip


def start_postgres(port: int) -> PostgresServer:
    """initdb into a fresh directory and start the server; PostgreSQL refuses to run as root,
    so as root it runs as the ``postgres`` user Debian's package creates."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL is not installed (Debian package postgresql)")
    owner = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    root = Path(tempfile.mkdtemp(prefix="streamport-pg-"))
    data_dir, socket_dir = root / "data", root / "socket"
    socket_dir.mkdir()
    if os.geteuid() == 0:
        entry = pwd.getpwnam(owner)
        os.chown(root, entry.pw_uid, entry.pw_gid)
        os.chown(socket_dir, entry.pw_uid, entry.pw_gid)
    server = PostgresServer(bin_dir, data_dir, port, owner)
    server._as_owner([str(bin_dir / "initdb"), "-D", str(data_dir), "-U", SUPERUSER,
                      "-A", "trust", "-E", "UTF8", "--no-sync"])  # fmt: skip
    options = (
        f"-p {port} -k {socket_dir} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )
    server._as_owner([str(bin_dir / "pg_ctl"), "-D", str(data_dir), "-o", options,
                      "-l", str(root / "server.log"), "-w", "start"])  # fmt: skip
    return server


class DatabasePool:
    """Fresh databases copied from ``template``, made a few ahead by a thread of their own: the
    copying is done by the PostgreSQL server while the tests run, instead of while a test
    waits for it. Each database is handed out once, as it was copied."""

    def __init__(self, server: PostgresServer, template: str, ahead: int = 3) -> None:
        self._server = server
        self._template = template
        self._ready: queue.Queue[str | Exception] = queue.Queue(maxsize=ahead)
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._fill, name="database-pool", daemon=True)
        self._thread.start()

    def take(self) -> str:
        """The name of a database no test has had; an error the copy met is raised here."""
        made = self._ready.get(timeout=120)
        if isinstance(made, Exception):
            raise made
        return made

    def close(self) -> None:
        self._closing.set()
        self._thread.join(timeout=120)

    def _fill(self) -> None:
        while not self._closing.is_set():
            name = f"test_{uuid.uuid4().hex[:16]}"
            made: str | Exception = name
            try:
                self._server.create_database(name, template=self._template)
            except Exception as exc:  # handed to the test that takes it
                made = exc
            while not self._closing.is_set():
                try:
                    self._ready.put(made, timeout=0.1)
                    break
                except queue.Full:
                    continue
