"""``streamport serve | migrate | scan DIR``."""

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


if __name__ == "__main__":
    sys.exit(main())
