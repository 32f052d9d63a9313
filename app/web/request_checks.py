"""Pure checks of request headers: the Host a request names, and whether a state-changing
request came from another site."""

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


def host_name(host_header: str) -> str | None:
    """The host name of a ``Host`` value, lower case, without its port (IPv6 in brackets);
    None when it is malformed."""
    host = host_header.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        if end < 0 or (host[end + 1 :] and not _is_port(host[end + 1 :])):
            return None
        return host[: end + 1]
    name, colon, port = host.rpartition(":")
    if not colon:
        name = host
    elif not _is_port(":" + port):
        return None
    name = name.rstrip(".")  # "example.org." names the same host
    if not name or any(ch in name for ch in "/\\@ ?#[]:"):
        return None
    return name


def _is_port(text: str) -> bool:
    return text.startswith(":") and text[1:].isdigit() and len(text) <= 6


def host_allowed(host_header: str | None, allowed: frozenset[str]) -> bool:
    """Whether the server answers to this ``Host`` (DNS-rebinding defence)."""
    if "*" in allowed:
        return True
    if host_header is None:
        return False
    name = host_name(host_header)
    return name is not None and name in allowed


def authority(host_header: str) -> tuple[str, str] | None:
    """A ``Host`` value (or an origin's host part) as (host name, port or ""); None when it
    is malformed."""
    name = host_name(host_header)
    if name is None:
        return None
    host = host_header.strip()
    port = host.rpartition(":")[2] if host.rfind(":") > host.rfind("]") else ""
    return name, port


def cross_site(
    origin: str | None,
    fetch_site: str | None,
    host_header: str | None,
    public_origin: str | None = None,
) -> bool:
    """Whether a browser says this request was made by another site's page.

    ``Sec-Fetch-Site`` is the browser's own verdict: anything but ``same-origin`` (or
    ``none``, a request the user made) is refused, sibling subdomains included. Without it,
    ``Origin`` must be this very origin: the host and port the request was sent to (another
    port of the same host is another site's page), or ``public_origin`` (the address a proxy
    in front is reached at). ``null`` (sandboxed frames, some redirects) is refused. A request
    with neither header comes from no browser that would send cookies cross-site
    unannounced; the CSRF token still has to match.
    """
    if fetch_site is not None:
        return fetch_site.strip().lower() not in ("same-origin", "none")
    if origin is None:
        return False
    origin = origin.strip().lower()
    if public_origin is not None and origin == public_origin.lower():
        return False
    scheme, separator, rest = origin.partition("://")
    if scheme not in ("http", "https") or not separator or not rest or "/" in rest:
        return True  # "null" and anything that is not an origin
    own = authority(host_header) if host_header is not None else None
    return own is None or authority(rest) != own
