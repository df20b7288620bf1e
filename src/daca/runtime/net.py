"""Loopback networking helpers: the runtime, its launcher, the benchmarks and the tests use them."""

from __future__ import annotations

import os
import socket
from pathlib import Path

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


def is_listening(host: str, port: int, timeout: float = 0.2) -> bool:
    """Whether something accepts TCP connections on ``host:port`` (``[::1]`` may be bracketed)."""
    try:
        with socket.create_connection((host.strip("[]"), port), timeout=timeout):
            return True
    except OSError:
        return False


#: Where the kernel picks the ports of sockets bound to port 0 and of outgoing connections.
EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
#: How many ports below the ephemeral range ``free_port`` hands out.
_SPAN = 12000
#: The ports ``free_port`` hands out, and where it looks next (both set on its first call).
_candidates: range | None = None
_cursor = 0


def free_port() -> int:
    """A loopback port nothing listens on now, for a server that binds it later.

    The port comes from just below the kernel's ephemeral range, where the kernel never picks
    a port by itself: a port it picked for ``bind(0)`` and that was released would, until the
    server binds it, be free for the next socket bound to port 0 or the next outgoing
    connection, in any process. The ports are handed out in turn, so a process hands a port
    out again only after all the others, from a start that depends on the pid, so concurrent
    processes seldom try the same ones. Only another program binding the same port
    explicitly can still take it first. Where the ephemeral range leaves no such ports, the
    kernel's pick is returned.
    """
    global _candidates, _cursor
    if _candidates is None:
        _candidates, _cursor = ports_below_ephemeral(), os.getpid() * 7919
    candidates = _candidates
    for _ in range(len(candidates)):
        port = candidates[_cursor % len(candidates)]
        _cursor += 1
        if _can_bind(port):
            return port
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ports_below_ephemeral(range_file: Path = EPHEMERAL_RANGE_FILE) -> range:
    """The unprivileged ports just below the ephemeral range that ``range_file`` gives (Linux's
    default range when it cannot be read): those ``free_port`` hands out."""
    try:
        low = int(range_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    return range(max(1024, low - _SPAN), max(1024, low))


def _can_bind(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def split_host_port(address: str, default_port: int = 6379) -> tuple[str, int]:
    """``host:port`` split; without a numeric port, ``default_port`` (Redis's: ``redisHost``)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        return address, default_port
    return host, int(port)
