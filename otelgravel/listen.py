"""Listening sockets for an endpoint: every address its host resolves to, on one port.

``localhost`` maps to 127.0.0.1 and ::1 on many machines; a client that resolves it may try either,
so the gateway listens on both. asyncio would too, but with port 0 it picks a different free port per
address; here the first socket's port is reused for the others, so the endpoint is one port.
"""
from __future__ import annotations

import socket


def addresses(host: str, port: int) -> list[tuple[int, str]]:
    """(family, address) for every distinct address ``host`` resolves to, in resolver order."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    seen: list[tuple[int, str]] = []
    for family, _, _, _, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6) and (family, sockaddr[0]) not in seen:
            seen.append((family, sockaddr[0]))
    return seen


def bind(targets: list[tuple[int, str]], port: int) -> list[socket.socket]:
    """Bound (not yet listening) sockets, one per address, all on one port (port 0: the first's)."""
    socks: list[socket.socket] = []
    try:
        for family, address in targets:
            sock = socket.socket(family, socket.SOCK_STREAM)
            socks.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:  # ::1 beside 127.0.0.1: each family its own socket
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind((address, port))
            except OSError as exc:
                shown = f"[{address}]:{port}" if family == socket.AF_INET6 else f"{address}:{port}"
                raise OSError(exc.errno, f"cannot listen on {shown}: {exc.strerror}") from exc
            port = sock.getsockname()[1]
            sock.setblocking(False)
    except BaseException:
        for sock in socks:
            sock.close()
        raise
    return socks
