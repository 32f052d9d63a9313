"""The Jinja2 environment of the pages and the filters they use."""

from datetime import UTC, datetime
from pathlib import Path

from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from jinja2.runtime import Context

from app.accounts.policy import Caller
from app.processing.playback_plan import PlaybackOptions
from app.web import access_guard

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"
_UNITS = ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB")


def human_size(size: int) -> str:
    """``1536`` → ``"1.5 KiB"``; binary units, one decimal past bytes."""
    value = float(size)
    for unit in _UNITS:
        if value < 1024 or unit == _UNITS[-1]:
            if unit == "bytes":
                return "1 byte" if size == 1 else f"{size:,} bytes"
            return f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def duration(seconds: float | None) -> str:
    """``42.3`` → ``"0:42"``, ``3723`` → ``"1:02:03"``."""
    if seconds is None:
        return ""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def iso_date(moment: datetime) -> str:
    """A UTC timestamp to the minute, as people read it: ``2026-11-25 13:04 UTC``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


@pass_context
def url_for(context: Context, name: str, /, **path_params: str) -> str:
    """A root-relative link, so pages stay right behind a proxy that rewrites the host."""
    request = context["request"]
    root_path = request.scope.get("root_path", "")
    return root_path + str(request.app.url_path_for(name, **path_params))


@pass_context
def csrf_token(context: Context) -> str:
    """The token forms and scripts send back with every change (see ``access_guard``)."""
    request = context["request"]
    return access_guard.csrf_token(request.scope, request.app.state.secret_key)


@pass_context
def current_user(context: Context) -> Caller | None:
    """Who is signed in, for the header and the controls a page shows."""
    return access_guard.caller_of(context["request"].scope)


@pass_context
def playback_options(context: Context) -> PlaybackOptions:
    """What this server makes for playback: notices name the setting that would help."""
    return PlaybackOptions.from_settings(context["request"].app.state.settings)


def create_templates() -> Jinja2Templates:
    """Templates with autoescape on and Streamport's filters registered."""
    templates = Jinja2Templates(directory=TEMPLATES_DIR)
    templates.env.globals["url_for"] = url_for
    templates.env.globals["csrf_token"] = csrf_token
    templates.env.globals["current_user"] = current_user
    templates.env.globals["playback_options"] = playback_options
    templates.env.filters["human_size"] = human_size
    templates.env.filters["iso_date"] = iso_date
    templates.env.filters["duration"] = duration
    return templates
