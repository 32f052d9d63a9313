"""Absolute links (share URLs, Open Graph tags): from ``STREAMPORT_PUBLIC_URL`` when set, so a
link is right behind a proxy; else from the request, whose Host the guard has checked."""

from starlette.requests import Request


def absolute_url(request: Request, path: str) -> str:
    """``path`` (root-relative) as an absolute URL; an empty path stays empty."""
    if not path:
        return ""
    public_url: str | None = request.app.state.settings.public_url
    base = public_url if public_url else str(request.base_url).rstrip("/")
    return base + path
