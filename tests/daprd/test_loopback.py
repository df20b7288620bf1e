"""daprd as the test engine starts it stays on loopback: every socket on 127.0.0.1, no mDNS.

daprd's self-hosted default name resolution is mDNS (UDP multicast to 224.0.0.251:5353, off the
loopback interface); ``daca.realdapr.daprd`` replaces it with a template resolver and binds every
listener to 127.0.0.1. This test watches the sockets of a running daprd (its ``/proc/<pid>/fd``
socket inodes, looked up in ``/proc/net/{tcp,tcp6,udp,udp6}``) from the moment it is spawned until
it has served state, publish, delivery and an invocation through its name resolution.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from daca.realdapr.daprd import DaprdSidecar, LoopbackNetwork
from daca.runtime.config import SidecarConfig
from daca.runtime.net import free_port
from tests.engines import APP_IDS, DaprdEngine
from tests.runtime.api.helpers import client_for
from tests.runtime.harness import FakeApp, component_yaml, running_app

pytestmark = pytest.mark.daprd

LOOPBACK = ipaddress.ip_address("127.0.0.1")
MDNS = (ipaddress.ip_address("224.0.0.251"), 5353)
TCP_LISTEN = "0A"


@dataclass(frozen=True)
class Socket:
    protocol: str  # tcp | tcp6 | udp | udp6
    local: tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]
    remote: tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]
    state: str
    inode: int

    @property
    def listening(self) -> bool:
        return self.protocol.startswith("tcp") and self.state == TCP_LISTEN


def _address(text: str) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]:
    """``0100007F:1F90`` (or the 32-digit IPv6 form) from ``/proc/net/*``: host-order words."""
    host, port = text.split(":")
    raw = bytes.fromhex(host)
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    address = ipaddress.ip_address(words)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped, int(port, 16)
    return address, int(port, 16)


def proc_sockets(protocol: str) -> dict[int, Socket]:
    """Every socket of this network namespace in ``/proc/net/<protocol>``, by inode."""
    sockets = {}
    lines = Path(f"/proc/net/{protocol}").read_text().splitlines()[1:]
    for line in lines:
        fields = line.split()
        inode = int(fields[9])
        sockets[inode] = Socket(
            protocol, _address(fields[1]), _address(fields[2]), fields[3], inode
        )
    return sockets


def socket_inodes(pid: int) -> set[int]:
    inodes = set()
    with contextlib.suppress(FileNotFoundError), os.scandir(f"/proc/{pid}/fd") as fds:
        for fd in fds:
            with contextlib.suppress(OSError):  # closed meanwhile
                match = re.fullmatch(r"socket:\[(\d+)\]", os.readlink(fd.path))
                if match:
                    inodes.add(int(match[1]))
    return inodes


def sockets_of(pid: int) -> list[Socket]:
    inodes = socket_inodes(pid)
    found = []
    for protocol in ("tcp", "tcp6", "udp", "udp6"):
        found += [s for inode, s in proc_sockets(protocol).items() if inode in inodes]
    return found


def daprd_pid_with_port(http_port: int) -> int | None:
    """The pid of the daprd whose command line has ``--dapr-http-port <http_port>``."""
    wanted = ["--dapr-http-port", str(http_port)]
    with os.scandir("/proc") as entries:
        processes = [entry for entry in entries if entry.name.isdigit()]
    for entry in processes:
        try:
            argv = Path(entry.path, "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [word.decode(errors="replace") for word in argv]
        if words and Path(words[0]).name == "daprd":
            for i in range(len(words) - 1):
                if words[i : i + 2] == wanted:
                    return int(entry.name)
    return None


@dataclass
class SocketWatch:
    """Every socket the daprd on ``http_port`` held, sampled every few ms from its spawn on."""

    http_port: int
    seen: dict[int, Socket] = field(default_factory=dict)
    samples: int = 0
    pid: int | None = None

    async def run(self) -> None:
        while True:
            if self.pid is None:
                self.pid = daprd_pid_with_port(self.http_port)
            if self.pid is not None:
                for sock in sockets_of(self.pid):
                    self.seen.setdefault(sock.inode, sock)
                self.samples += 1
            await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def watching(http_port: int) -> AsyncIterator[SocketWatch]:
    watch = SocketWatch(http_port)
    task = asyncio.create_task(watch.run())
    try:
        yield watch
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.mark.redis
async def test_daprd_sockets_are_loopback_only_and_no_mdns(
    tmp_path: Path, daprd_binary: Path, redis_url: str
) -> None:
    resources = tmp_path / "components"
    resources.mkdir()
    (resources / "components.yaml").write_text(
        component_yaml("statestore", "state.redis", {"redisHost": redis_url})
        + "---\n"
        + component_yaml("pubsub", "pubsub.redis", {"redisHost": redis_url})
    )
    network = LoopbackNetwork(tmp_path / "daprd-network", APP_IDS)
    engine = DaprdEngine(daprd_binary, network, tmp_path / "daprd-logs")
    app = FakeApp(subscriptions=[{"pubsubname": "pubsub", "topic": "t", "route": "/t"}])
    http_port = free_port()
    async with running_app(app), watching(http_port) as watch:
        config = SidecarConfig(
            app_id="myapp",
            app_port=app.port,
            http_port=http_port,
            resources_paths=(resources,),
            home=tmp_path / "home",
            bundle_redis=False,
        )
        async with engine.sidecar(config) as sidecar, client_for(sidecar) as dapr:
            assert isinstance(sidecar, DaprdSidecar)
            assert sidecar.pid is not None
            assert sidecar.http_port == http_port
            r = await dapr.post("/v1.0/state/statestore", json=[{"key": "k", "value": 1}])
            assert r.status_code == 204, r.text
            assert (await dapr.post("/v1.0/publish/pubsub/t", json={"n": 1})).status_code == 204
            # An invocation by app-id goes through daprd's name resolution (mDNS by default).
            r = await dapr.post("/v1.0/invoke/myapp/method/hello", json={"hi": 1})
            assert r.status_code == 200, r.text
            await app.wait_for(2)
            assert watch.pid == sidecar.pid
            current = sockets_of(sidecar.pid)
        samples = watch.samples
    sockets = {sock.inode: sock for sock in [*watch.seen.values(), *current]}.values()
    assert samples >= 3, samples

    listening = [sock for sock in sockets if sock.listening]
    ports = {sock.local[1] for sock in listening}
    # The test sees daprd's listeners (HTTP API, internal gRPC among them) ...
    assert {http_port, network.internal_port("myapp")} <= ports, listening
    # ... and every one of them is bound to 127.0.0.1.
    assert [sock for sock in listening if sock.local[0] != LOOPBACK] == []
    # Every TCP connection it made stays on 127.0.0.0/8 (Redis, the app, itself).
    tcp = [sock for sock in sockets if sock.protocol.startswith("tcp") and not sock.listening]
    assert tcp, "daprd has connections to Redis and the app"
    assert [s for s in tcp if not (s.local[0].is_loopback and s.remote[0].is_loopback)] == []
    # No UDP socket to or on the mDNS group/port.
    udp = [sock for sock in sockets if sock.protocol.startswith("udp")]
    assert [s for s in udp if s.remote == MDNS or MDNS[1] in (s.local[1], s.remote[1])] == []
    assert [s for s in udp if not s.local[0].is_loopback and not s.local[0].is_unspecified] == []
