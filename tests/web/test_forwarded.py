"""The client address behind trusted proxies: only what they appended is believed."""

import pytest

from app.config import Settings
from app.web.forwarded import client_address

PROXIES = Settings(_env_file=None, trusted_proxies="127.0.0.1, 10.0.0.0/8, ::1").trusted_networks


def test_without_trusted_proxies_the_header_is_ignored() -> None:
    assert client_address("127.0.0.1", ["203.0.113.9"], ()) == "127.0.0.1"


def test_a_peer_that_is_not_a_proxy_cannot_name_another_address() -> None:
    assert client_address("198.51.100.7", ["203.0.113.9"], PROXIES) == "198.51.100.7"


def test_the_address_the_proxy_appended_is_the_client() -> None:
    assert client_address("127.0.0.1", ["198.51.100.7"], PROXIES) == "198.51.100.7"


def test_what_the_client_wrote_left_of_it_is_not_believed() -> None:
    # nginx's $proxy_add_x_forwarded_for keeps what the client sent and appends the peer.
    spoofed = ["1.2.3.4, 198.51.100.7"]
    assert client_address("127.0.0.1", spoofed, PROXIES) == "198.51.100.7"


def test_a_chain_of_trusted_proxies_is_walked_through() -> None:
    chain = ["1.2.3.4, 198.51.100.7, 10.1.2.3", "10.0.0.5"]
    assert client_address("127.0.0.1", chain, PROXIES) == "198.51.100.7"


def test_garbage_stops_at_the_last_trusted_hop() -> None:
    assert client_address("127.0.0.1", ["198.51.100.7, nonsense, 10.0.0.5"], PROXIES) == (
        "10.0.0.5"
    )
    assert client_address("127.0.0.1", ["unknown"], PROXIES) == "127.0.0.1"


def test_all_trusted_gives_the_leftmost() -> None:
    assert client_address("::1", ["10.0.0.1, 10.0.0.2"], PROXIES) == "10.0.0.1"


def test_a_bad_network_is_named() -> None:
    with pytest.raises(ValueError, match="bogus"):
        Settings(_env_file=None, trusted_proxies="10.0.0.0/8, bogus")
