"""Sidecar start-up: clear component errors, and the bundled redis-server where none listens."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from daca.runtime.config import SidecarConfig
from daca.runtime.errors import ComponentError
from daca.runtime.net import free_port, is_listening
from daca.runtime.redis_server import redis_executable
from daca.runtime.registry import port_lock
from daca.runtime.sidecar import Sidecar
from tests.runtime.harness import (
    FakeApp,
    component_yaml,
    running_app,
    running_sidecar,
    serve,
    write_components,
)


def config(tmp_path: Path, *, bundle_redis: bool = False) -> SidecarConfig:
    return SidecarConfig(
        app_id="starter",
        http_port=0,
        resources_paths=(tmp_path / "res",),
        home=tmp_path / "home",
        bundle_redis=bundle_redis,
    )


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "res" / "components.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


async def test_unknown_component_type_names_file_component_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, component_yaml("cache", "state.memcached", {}))
    with pytest.raises(ComponentError) as error:
        await Sidecar(config(tmp_path)).start()
    message = str(error.value)
    assert str(path) in message and "'cache'" in message and "spec.type" in message
    assert "state.memcached" in message and "state.redis" in message  # lists what is supported


async def test_missing_required_field_names_it(tmp_path: Path) -> None:
    write(tmp_path, component_yaml("statestore", "state.sqlite", {}))
    with pytest.raises(ComponentError, match=r"'statestore'.*connectionString.*required"):
        await Sidecar(config(tmp_path)).start()


async def test_unreachable_redis_names_redis_host(tmp_path: Path) -> None:
    write(
        tmp_path,
        component_yaml("statestore", "state.redis", {"redisHost": f"127.0.0.1:{free_port()}"}),
    )
    with pytest.raises(ComponentError, match=r"'statestore'.*redisHost"):
        await Sidecar(config(tmp_path)).start()


@pytest.mark.redis
async def test_bundled_redis_starts_where_nothing_listens_and_stops_with_the_sidecar(
    tmp_path: Path,
) -> None:
    port = free_port()
    write(tmp_path, component_yaml("statestore", "state.redis", {"redisHost": f"localhost:{port}"}))
    async with running_sidecar(config(tmp_path, bundle_redis=True)) as sidecar:
        assert is_listening("127.0.0.1", port)
        base = f"http://127.0.0.1:{sidecar.http_port}/v1.0/state/statestore"
        async with httpx.AsyncClient() as client:
            saved = await client.post(base, json=[{"key": "k", "value": "v"}])
            read = await client.get(f"{base}/k")
    assert (saved.status_code, read.json()) == (204, "v")
    assert (tmp_path / "home" / "redis" / str(port) / "appendonly.aof").exists()  # durable
    assert not is_listening("127.0.0.1", port)


@pytest.mark.redis
async def test_the_loop_runs_while_the_bundled_redis_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server (``DACA_REDIS_SERVER``: one that waits for the test's word before it starts)
    is spawned, and the loop goes on running until it answers."""
    port, go = free_port(), tmp_path / "go"
    server = tmp_path / "slow-redis-server"
    server.write_text(
        f'#!/bin/sh\nwhile [ ! -e "{go}" ]; do sleep 0.01; done\nexec "{redis_executable()}" "$@"\n'
    )
    server.chmod(0o755)
    monkeypatch.setenv("DACA_REDIS_SERVER", str(server))
    write(tmp_path, component_yaml("statestore", "state.redis", {"redisHost": f"localhost:{port}"}))
    data_dir = tmp_path / "home" / "redis" / str(port)  # made just before the server is spawned
    sidecar = Sidecar(config(tmp_path, bundle_redis=True))
    starting = asyncio.create_task(sidecar.start())
    try:
        async with asyncio.timeout(10):
            while not data_dir.exists() and not starting.done():
                await asyncio.sleep(0.01)
        assert not starting.done() and not is_listening("127.0.0.1", port)
        go.touch()
        await starting
        assert is_listening("127.0.0.1", port)
    finally:
        go.touch()
        with contextlib.suppress(Exception):
            await starting
        await sidecar.stop()


@pytest.mark.redis
async def test_sidecars_starting_together_share_one_bundled_redis(tmp_path: Path) -> None:
    """As ``daca up`` starts them: the first starts the server, the second uses it."""
    port = free_port()
    write(tmp_path, component_yaml("statestore", "state.redis", {"redisHost": f"localhost:{port}"}))
    first = Sidecar(config(tmp_path, bundle_redis=True))
    second = Sidecar(replace(config(tmp_path, bundle_redis=True), app_id="other"))
    try:
        await asyncio.gather(first.start(), second.start())
        async with httpx.AsyncClient() as client:
            for sidecar in (first, second):
                base = f"http://127.0.0.1:{sidecar.http_port}/v1.0/state/statestore"
                saved = await client.post(base, json=[{"key": "k", "value": "v"}])
                assert saved.status_code == 204
    finally:
        await second.stop()
        await first.stop()
    assert not is_listening("127.0.0.1", port)


async def test_a_busy_port_is_named_with_a_hint(tmp_path: Path) -> None:
    write(tmp_path, component_yaml("statestore", "state.in-memory", {}))
    async with running_sidecar(config(tmp_path)) as first:
        busy = SidecarConfig(app_id="second", http_port=first.http_port, home=tmp_path / "home")
        with pytest.raises(OSError, match=rf"127\.0\.0\.1:{first.http_port}.*daca list"):
            await Sidecar(busy).start()


async def test_a_programmatic_subscription_with_a_bad_concurrency_is_refused_aloud(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The app's other subscriptions start and the sidecar becomes ready (it used to hang)."""
    subscriptions = [
        {
            "pubsubname": "pubsub",
            "topic": "bad",
            "route": "/bad",
            "metadata": {"concurrency": "ten"},
        },
        {"pubsubname": "pubsub", "topic": "good", "route": "/good"},
    ]
    app = FakeApp(subscriptions=subscriptions)
    resources = write_components(tmp_path / "components", "memory")
    async with running_app(app):
        config = SidecarConfig(
            app_id="shop", app_port=app.port, http_port=0, resources_paths=(resources,),
            home=tmp_path / "home",
        )  # fmt: skip
        async with running_sidecar(config) as sidecar:
            assert sidecar.context.ready
            assert [s.topic for s in sidecar.context.subscriptions] == ["good"]
    assert "metadata concurrency must be a whole number > 0, got 'ten'" in caplog.text


async def test_programmatic_subscriptions_are_asked_for_until_the_app_answers(
    tmp_path: Path,
) -> None:
    """The app comes up after the sidecar: its subscriptions are still fetched, and used."""
    port = free_port()
    resources = write_components(tmp_path / "components", "memory")
    app = FakeApp(subscriptions=[{"pubsubname": "pubsub", "topic": "late", "route": "/late"}])
    config = SidecarConfig(
        app_id="shop", app_port=port, http_port=0, resources_paths=(resources,),
        home=tmp_path / "home",
    )  # fmt: skip
    async with running_sidecar(config, wait_ready=False) as sidecar:
        await asyncio.sleep(0.3)  # a few refused attempts
        assert not sidecar.context.ready
        async with serve(app.asgi(), port):
            async with asyncio.timeout(10):
                while not sidecar.context.ready:
                    await asyncio.sleep(0.01)
    assert [s.topic for s in sidecar.context.subscriptions] == ["late"]


async def test_an_app_that_never_answers_leaves_the_declarative_subscriptions(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    resources = write_components(tmp_path / "components", "memory")
    config = SidecarConfig(
        app_id="shop", app_port=free_port(), http_port=0, resources_paths=(resources,),
        home=tmp_path / "home", app_start_timeout=0.3,
    )  # fmt: skip
    started = time.monotonic()
    async with running_sidecar(config) as sidecar:
        assert time.monotonic() - started >= 0.3
        assert sidecar.context.subscriptions == []
    assert "did not answer GET /dapr/subscribe" in caplog.text


def test_the_port_locks_serve_event_loops_that_run_one_after_another() -> None:
    """A lock contended on one loop cannot be contended on another: each loop gets its own."""

    async def contend() -> None:
        lock = port_lock(6379)
        async with lock:
            waiter = asyncio.create_task(lock.acquire())
            await asyncio.sleep(0)  # the waiter now waits on the lock
        assert await waiter
        lock.release()

    asyncio.run(contend())
    asyncio.run(contend())
