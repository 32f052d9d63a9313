"""``streamport serve | migrate | scan DIR | verify | user … | token create``."""

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

    user = commands.add_parser("user", help="manage accounts")
    user_commands = user.add_subparsers(required=True, metavar="ACTION")
    user_add = user_commands.add_parser("add", help="add an account")
    user_add.add_argument("name")
    user_add.add_argument("--admin", action="store_true", help="an admin (manages users)")
    user_add.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input (else asked for, or "
        "generated and printed when there is no terminal)",
    )
    user_add.set_defaults(run=_user_add)
    user_list = user_commands.add_parser("list", help="list the accounts")
    user_list.set_defaults(run=_user_list)
    for action, disabled in (("disable", True), ("enable", False)):
        command = user_commands.add_parser(action, help=f"{action} an account")
        command.add_argument("name")
        command.set_defaults(run=_user_disable, disabled=disabled)

    token = commands.add_parser("token", help="API tokens")
    token_commands = token.add_subparsers(required=True, metavar="ACTION")
    token_create = token_commands.add_parser(
        "create", help="print a new API token for an account (and nothing else)"
    )
    token_create.add_argument("name")
    token_create.add_argument("--label", default="", help="what the token is for")
    token_create.set_defaults(run=_token_create)

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
    settings = _migrated_settings()
    _print_setup_url(settings)
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


def _migrated_settings() -> Settings:
    """The environment's settings, with the catalog brought to the newest schema."""
    settings = Settings()
    upgrade_to_head(settings)
    return settings


def _print_setup_url(settings: Settings) -> None:
    """While no account exists: the one-time link that creates the first admin."""
    from app.accounts.provisioning import issue_setup_token

    token = asyncio.run(issue_setup_token(settings))
    if token is None:
        return
    base = settings.public_url or f"http://{_url_host(settings.host)}:{settings.port}"
    print(
        "\nNo account exists yet. Create the first admin at this one-time address:\n\n"
        f"    {base}/setup?token={token}\n\n"
        "(or run: streamport user add NAME --admin)\n",
        file=sys.stderr,
        flush=True,
    )


def _url_host(host: str) -> str:
    if host in ("", "0.0.0.0", "::"):
        return "localhost"
    return f"[{host}]" if ":" in host else host


def _log_config() -> dict[str, Any]:
    """uvicorn's logging, plus Streamport's own messages, in every worker process."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["streamport"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


def _migrate(args: argparse.Namespace) -> int:
    settings = _migrated_settings()
    logger.info("Catalog at %s is up to date", settings.catalog_url)
    return 0


def _scan(args: argparse.Namespace) -> int:
    from app.ingest.scan import scan_directory

    directory: Path = args.directory
    if not directory.is_dir():
        print(f"streamport scan: {directory} is not a directory", file=sys.stderr)
        return 2
    settings = _migrated_settings()
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


def _user_add(args: argparse.Namespace) -> int:
    import getpass

    from app.accounts.passwords import check_password_rules, hash_password_sync
    from app.accounts.provisioning import add_user
    from app.errors import InvalidInput

    settings = _migrated_settings()
    generated = False
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Password again: ") != password:
            print("streamport user add: the passwords differ", file=sys.stderr)
            return 2
    else:
        import secrets

        password, generated = secrets.token_urlsafe(12), True
    try:
        check_password_rules(password)
        user = asyncio.run(
            add_user(settings, args.name, hash_password_sync(password), is_admin=args.admin)
        )
    except InvalidInput as exc:
        print(f"streamport user add: {exc.detail}", file=sys.stderr)
        return 2
    role = "admin" if user.is_admin else "member"
    print(f"added {role} {user.username}" + (f" with password {password}" if generated else ""))
    return 0


def _user_list(args: argparse.Namespace) -> int:
    from app.accounts.provisioning import list_users

    settings = _migrated_settings()
    for user in asyncio.run(list_users(settings)):
        role = "admin" if user.is_admin else "member"
        state = "disabled" if user.disabled else "active"
        print(f"{user.username}\t{role}\t{state}\t{user.created_at:%Y-%m-%d}")
    return 0


def _user_disable(args: argparse.Namespace) -> int:
    from app.accounts.provisioning import set_disabled

    settings = _migrated_settings()
    if not asyncio.run(set_disabled(settings, args.name, args.disabled)):
        print(f"streamport user: no user named {args.name!r}", file=sys.stderr)
        return 1
    print(f"{'disabled' if args.disabled else 'enabled'} {args.name}")
    return 0


def _token_create(args: argparse.Namespace) -> int:
    from app.accounts.provisioning import create_token

    settings = _migrated_settings()
    token = asyncio.run(create_token(settings, args.name, args.label))
    if token is None:
        print(f"streamport token create: no user named {args.name!r}", file=sys.stderr)
        return 1
    print(token)
    return 0


if __name__ == "__main__":
    sys.exit(main())
