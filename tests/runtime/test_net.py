"""``daca.runtime.net.free_port``: ports a server binds later, safe from the kernel's own picks."""

from __future__ import annotations

import socket
from pathlib import Path

from daca.runtime.net import free_port, is_listening, ports_below_ephemeral


def test_free_ports_lie_below_the_ephemeral_range_and_are_not_repeated() -> None:
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == 50
    assert set(ports) <= set(ports_below_ephemeral())
    assert not any(is_listening("127.0.0.1", port) for port in ports)


def test_a_port_in_use_is_not_handed_out() -> None:
    first = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", first + 1))  # the next one, most likely
        taken.listen()
        assert free_port() not in (first, first + 1)


def test_the_ports_below_the_range_come_from_the_kernels_setting(tmp_path: Path) -> None:
    setting = tmp_path / "ip_local_port_range"
    setting.write_text("32768\t60999\n")
    assert ports_below_ephemeral(setting) == range(20768, 32768)
    setting.write_text("1024\t65535\n")
    assert ports_below_ephemeral(setting) == range(1024, 1024)  # none: the kernel's pick
    assert ports_below_ephemeral(tmp_path / "absent") == range(20768, 32768)  # Linux's default
