"""listen.py with real sockets on loopback: every resolved address, one port, a connection to each."""
import socket

import pytest

from otelgravel import listen


def _v6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def _connect(family, address, port):
    with socket.socket(family, socket.SOCK_STREAM) as c:
        c.settimeout(5)
        c.connect((address, port))


def _listening(targets):
    socks = listen.bind(targets, 0)
    for s in socks:
        s.listen(8)
    return socks


def test_localhost_binds_every_address_it_resolves_to_on_one_port():
    targets = listen.addresses("localhost", 0)
    resolved = {(i[0], i[4][0]) for i in socket.getaddrinfo("localhost", 0, type=socket.SOCK_STREAM)}
    assert set(targets) == resolved
    socks = _listening(targets)
    try:
        assert len(socks) == len(targets)
        assert len({s.getsockname()[1] for s in socks}) == 1
        for (family, address), s in zip(targets, socks):
            _connect(family, address, s.getsockname()[1])
    finally:
        for s in socks:
            s.close()


@pytest.mark.skipif(not _v6_loopback(), reason="this machine has no IPv6 loopback (::1)")
def test_ipv4_and_ipv6_loopback_share_the_port_port_0_picked():
    targets = [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")]
    socks = _listening(targets)
    try:
        port = socks[0].getsockname()[1]
        assert socks[1].getsockname()[1] == port
        _connect(socket.AF_INET, "127.0.0.1", port)
        _connect(socket.AF_INET6, "::1", port)
    finally:
        for s in socks:
            s.close()


def test_a_taken_port_names_the_address():
    first = _listening([(socket.AF_INET, "127.0.0.1")])
    try:
        port = first[0].getsockname()[1]
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port}"):
            listen.bind([(socket.AF_INET, "127.0.0.1")], port)
    finally:
        first[0].close()
