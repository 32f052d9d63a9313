"""Pure checks of request headers: the Host a request names, and whether a state-changing
request came from another site."""

from urllib.parse import urlsplit

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
    if not name or any(ch in name for ch in "/\\@ ?#[]"):
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


def cross_site(origin: str | None, fetch_site: str | None, own_hosts: frozenset[str]) -> bool:
    """Whether a browser says this request was made by another site's page.

    ``Sec-Fetch-Site`` is the browser's own verdict: anything but ``same-origin`` (or
    ``none``, a request the user made) is refused, sibling subdomains included. Without it,
    ``Origin`` must name one of our hosts; ``null`` (sandboxed frames, some redirects) is
    refused. A request with neither header comes from no browser that would send cookies
    cross-site unannounced; the CSRF token still has to match.
    """
    if fetch_site is not None:
        return fetch_site.strip().lower() not in ("same-origin", "none")
    if origin is None:
        return False
    origin = origin.strip().lower()
    if origin == "null":
        return True
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return True
    return host_name(parts.netloc) not in own_hosts
