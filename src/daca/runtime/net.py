"""Loopback networking helpers: the runtime, its launcher, the benchmarks and the tests use them."""

from __future__ import annotations

import socket

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


def is_listening(host: str, port: int, timeout: float = 0.2) -> bool:
    """Whether something accepts TCP connections on ``host:port`` (``[::1]`` may be bracketed)."""
    try:
        with socket.create_connection((host.strip("[]"), port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    """A loopback port nothing listens on now (the kernel's pick; another process may take it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def split_host_port(address: str, default_port: int = 6379) -> tuple[str, int]:
    """``host:port`` split; without a numeric port, ``default_port`` (Redis's: ``redisHost``)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        return address, default_port
    return host, int(port)
