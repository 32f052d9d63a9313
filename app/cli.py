"""``streamport serve | migrate | scan DIR | verify``."""

import argparse
import asyncio
import copy
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from app.catalog.migrate import upgrade_to_head
from app.config import Settings
from app.web.connection_limits import raise_open_files_limit

logger = logging.getLogger("streamport")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``streamport`` command."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    return int(args.run(args) or 0)


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="streamport", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="migrate the catalog, then serve the portal")
    serve.add_argument("--host", help="address to listen on (STREAMPORT_HOST)")
    serve.add_argument("--port", type=int, help="port to listen on (STREAMPORT_PORT)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    serve.set_defaults(run=_serve)

    migrate = commands.add_parser("migrate", help="bring the catalog to the newest schema")
    migrate.set_defaults(run=_migrate)

    scan = commands.add_parser("scan", help="add files already on disk to the catalog")
    scan.add_argument("directory", type=Path, metavar="DIR")
    scan.set_defaults(run=_scan)

    verify = commands.add_parser(
        "verify",
        help="re-read every stored object and compare it with the catalog",
        description="Re-read every stored object, compare its size and SHA-256 with the "
        "catalog, and report missing, corrupt and orphaned objects. Nothing is changed. "
        "Exit status: 0 all well, 1 problems found, 2 verification could not run.",
    )
    verify.add_argument(
        "--jobs", type=int, default=2, metavar="N", help="objects read at once (default 2)"
    )
    verify.add_argument(
        "--orphan-age",
        type=float,
        metavar="SECONDS",
        help="bytes no row names count as orphans from this age on; younger ones are uploads "
        "in progress (default: what the start-up sweep waits, 3600 local, 86400 on S3)",
    )
    verify.add_argument("--json", action="store_true", help="one JSON document on stdout")
    verify.add_argument("--quiet", action="store_true", help="no progress on stderr")
    verify.set_defaults(run=_verify)
    return parser


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    # Flags go into the environment so that every worker builds the same Settings.
    if args.host is not None:
        os.environ["STREAMPORT_HOST"] = args.host
    if args.port is not None:
        os.environ["STREAMPORT_PORT"] = str(args.port)
    settings = Settings()
    upgrade_to_head(settings)
    raise_open_files_limit()
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=args.workers,
        # httptools with limits on time, header size and connections (app/web/protocol.py).
        http="app.web.protocol:GuardedHttpToolsProtocol",
        timeout_keep_alive=settings.keepalive_timeout_seconds,  # type: ignore[arg-type]
        # Date comes from the application (app/web/response_headers.py), to the second.
        date_header=False,
        # No WebSockets: an upgrade request is an ordinary request (and gets a 404).
        ws="none",
        proxy_headers=False,
        # Event streams and long downloads must not hold a stop up for ever.
        timeout_graceful_shutdown=5,
        log_config=_log_config(),
        log_level="info",
    )
    return 0


def _log_config() -> dict[str, Any]:
    """uvicorn's logging, plus Streamport's own messages, in every worker process."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["streamport"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


def _migrate(args: argparse.Namespace) -> int:
    settings = Settings()
    upgrade_to_head(settings)
    logger.info("Catalog at %s is up to date", settings.catalog_url)
    return 0


def _scan(args: argparse.Namespace) -> int:
    from app.ingest.scan import scan_directory

    directory: Path = args.directory
    if not directory.is_dir():
        print(f"streamport scan: {directory} is not a directory", file=sys.stderr)
        return 2
    settings = Settings()
    upgrade_to_head(settings)
    summary = asyncio.run(scan_directory(settings, directory))
    print(
        f"added {summary.added}, already in the catalog {summary.skipped}, failed {summary.failed}"
    )
    return 1 if summary.failed else 0


def _verify(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from app.maintenance.verify import MAX_JOBS, VerifyOptions, run_verify

    if not 1 <= args.jobs <= MAX_JOBS:
        print(f"streamport verify: --jobs must be from 1 to {MAX_JOBS}", file=sys.stderr)
        return 2
    if args.orphan_age is not None and not args.orphan_age >= 0:
        print("streamport verify: --orphan-age must be 0 or more", file=sys.stderr)
        return 2
    try:
        settings = Settings()
    except ValidationError as exc:
        print(f"streamport verify: invalid settings: {exc}", file=sys.stderr)
        return 2
    options = VerifyOptions(jobs=args.jobs, orphan_age_seconds=args.orphan_age)
    return run_verify(settings, options, as_json=args.json, quiet=args.quiet)


if __name__ == "__main__":
    sys.exit(main())
