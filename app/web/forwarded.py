"""Which address a request came from when trusted reverse proxies stand in front: the
``X-Forwarded-For`` chain read from the right, believing only what trusted proxies appended."""

from ipaddress import ip_address

from app.config import Network


def _trusted(address: str, trusted: tuple[Network, ...]) -> bool:
    try:
        parsed = ip_address(address)
    except ValueError:
        return False
    return any(parsed in network for network in trusted)


def client_address(peer: str, forwarded_for: list[str], trusted: tuple[Network, ...]) -> str:
    """The client's address. Each trusted proxy appends the address it was reached from, so
    the chain is walked from the right while the hop is trusted; the first untrusted entry is
    the client. Anything left of it was written by the client itself and is never believed;
    an entry that is not an address ends the walk at the last trusted hop."""
    if not trusted or not _trusted(peer, trusted):
        return peer
    hops = [hop.strip() for value in forwarded_for for hop in value.split(",")]
    address = peer
    for hop in reversed(hops):
        try:
            ip_address(hop)
        except ValueError:
            return address
        address = hop
        if not _trusted(hop, trusted):
            return hop
    return address
