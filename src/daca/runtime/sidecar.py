"""One sidecar: the HTTP API, the components and the app's subscriptions, like one ``daprd``.

``start`` loads the resources, starts the components (the bundled redis-server where needed),
binds the HTTP API, registers the app-id in the local name registry and then, in the background,
asks the app for ``GET /dapr/subscribe`` (retrying while the app comes up) and starts consuming.
``stop`` undoes all of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import secrets
import socket
import time
from collections.abc import Iterator

import aiohttp
import stamina
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from daca.heap import freeze_startup_heap
from daca.runtime.api.app import build_app
from daca.runtime.api.common import RuntimeContext
from daca.runtime.appchannel import AppChannel
from daca.runtime.bulkdelivery import BulkDelivery
from daca.runtime.config import SidecarConfig
from daca.runtime.delivery import Delivery
from daca.runtime.invoke import Invoker
from daca.runtime.loader import load_configuration, load_resources
from daca.runtime.metrics import RuntimeMetrics
from daca.runtime.nameregistry import AppRecord, NameRegistry
from daca.runtime.outbox import Outbox, OutboxConfig
from daca.runtime.pubsub.base import Subscription
from daca.runtime.pubsub.workers import DEFAULT_CONCURRENCY
from daca.runtime.registry import BundledRedisPool, Components, start_components
from daca.runtime.resources import Resources, SubscriptionSpec
from daca.runtime.subscriptions import merge_subscriptions, parse_programmatic
from daca.telemetry import tracing

logger = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: the CLI or the embedding program owns signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _bind(host: str, port: int) -> socket.socket:
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted connections only when the
    # listening socket says it is TCP; without it, Nagle + delayed ACK add ~40 ms per response.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        hint = (
            " (is it already running? `daca list` shows what runs)"
            if exc.errno == errno.EADDRINUSE
            else ""
        )
        message = f"the sidecar cannot listen on {host}:{port}: {exc.strerror}{hint}"
        raise OSError(exc.errno, message) from exc
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def _outbox(app_id: str, components: Components, metrics: RuntimeMetrics) -> Outbox | None:
    """The transactional outbox of the state stores that configure one (``None``: none do)."""
    configs = [
        config
        for name in components.state_stores
        if (config := OutboxConfig.from_component(components.specs[name])) is not None
    ]
    if not configs:
        return None
    return Outbox(app_id, configs, components.pubsubs, components.state_stores, metrics=metrics)


def _report_subscribe_failure(task: asyncio.Task[None]) -> None:
    """Say why subscribing failed: the sidecar then never reports ready."""
    if not task.cancelled() and task.exception() is not None:
        logger.error(
            "subscribing the app failed; the sidecar stays not ready: %r", task.exception()
        )


class Sidecar:
    def __init__(self, config: SidecarConfig, *, redis_pool: BundledRedisPool | None = None):
        self.config = config
        self._registry = NameRegistry(config.home)
        self._own_pool = redis_pool is None and config.bundle_redis
        self._redis_pool = redis_pool or (
            BundledRedisPool(config.home / "redis") if config.bundle_redis else None
        )
        self._session: aiohttp.ClientSession | None = None
        self._peer_token = secrets.token_hex(16)
        self._ctx: RuntimeContext | None = None
        self._server: _Server | None = None
        self._serve_task: asyncio.Task[None] | None = None
        self._subscribe_task: asyncio.Task[None] | None = None
        self._subscriptions: list[Subscription] = []
        self._socket: socket.socket | None = None
        self._metrics_server: _Server | None = None
        self._metrics_task: asyncio.Task[None] | None = None
        self._metrics_socket: socket.socket | None = None
        self._app_pid: int | None = None
        self._app_command = ""

    @property
    def http_port(self) -> int:
        if self._socket is None:
            raise RuntimeError("the sidecar is not started")
        return int(self._socket.getsockname()[1])

    @property
    def context(self) -> RuntimeContext:
        if self._ctx is None:
            raise RuntimeError("the sidecar is not started")
        return self._ctx

    @property
    def session(self) -> aiohttp.ClientSession:
        """The sidecar's outbound HTTP client (deliveries, invocations); made in ``start``."""
        if self._session is None:
            raise RuntimeError("the sidecar is not started")
        return self._session

    def _channel(self) -> AppChannel | None:
        if self.config.app_port is None:
            return None
        base = f"http://{self.config.app_channel_address}:{self.config.app_port}"
        return AppChannel(base, self.session, self.config.app_api_token)

    async def start(self) -> None:
        cfg = self.config
        tracing.configure("daca-runtime")
        if cfg.config_file is not None:
            load_configuration(cfg.config_file)
        resources = load_resources(cfg.resources_paths, cfg.app_id)
        components = await start_components(resources.components, cfg.app_id, self._redis_pool)
        timeout = aiohttp.ClientTimeout(total=60.0, connect=5.0)
        self._session = aiohttp.ClientSession(timeout=timeout, auto_decompress=False)
        try:
            await self._start_server(resources, components)
        except BaseException:
            await components.close()
            await self._session.close()
            raise
        self._register()
        if self.context.outbox is not None:
            await self.context.outbox.start()
        self._subscribe_task = asyncio.create_task(self._subscribe(), name="subscribe")
        self._subscribe_task.add_done_callback(_report_subscribe_failure)
        logger.info(
            "sidecar for %r listening on http://%s:%d", cfg.app_id, cfg.host, self.http_port
        )
        freeze_startup_heap()

    async def _start_server(self, resources: Resources, components: Components) -> None:
        invoker = Invoker(
            self.config.app_id, self._registry, self.session, self._channel(), self._peer_token
        )
        metrics = RuntimeMetrics(self.config.app_id)
        self._ctx = RuntimeContext(
            app_id=self.config.app_id,
            components=components,
            resources=resources,
            invoker=invoker,
            outbox=_outbox(self.config.app_id, components, metrics),
            app_port=self.config.app_port,
            app_channel_address=self.config.app_channel_address,
            metrics=metrics,
        )
        app = build_app(
            self._ctx, api_token=self.config.api_token, max_body_size=self.config.max_body_size
        )
        self._socket = _bind(self.config.host, self.config.http_port)
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        self._server = _Server(config)
        self._serve_task = asyncio.create_task(self._server.serve(sockets=[self._socket]))
        while not self._server.started:
            if self._serve_task.done():
                self._serve_task.result()
                raise RuntimeError("the sidecar's HTTP server stopped while starting")
            await asyncio.sleep(0.005)
        if self.config.metrics_port is not None:
            await self._start_metrics_server(metrics)

    async def _start_metrics_server(self, metrics: RuntimeMetrics) -> None:
        """daprd's metrics endpoint: the Prometheus text at ``/`` and ``/metrics``."""

        async def scrape(request: Request) -> Response:
            return Response(metrics.render(), media_type="text/plain; version=0.0.4")

        app = Starlette(routes=[Route("/", scrape), Route("/metrics", scrape)])
        self._metrics_socket = _bind(self.config.host, self.config.metrics_port or 0)
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        self._metrics_server = _Server(config)
        self._metrics_task = asyncio.create_task(
            self._metrics_server.serve(sockets=[self._metrics_socket])
        )
        while not self._metrics_server.started:
            if self._metrics_task.done():
                self._metrics_task.result()
                raise RuntimeError("the sidecar's metrics server stopped while starting")
            await asyncio.sleep(0.005)
        logger.info("sidecar for %r: metrics on port %d", self.config.app_id, self.metrics_port)

    @property
    def metrics_port(self) -> int | None:
        """The metrics port bound (``None``: metrics not served)."""
        if self._metrics_socket is None:
            return None
        port: int = self._metrics_socket.getsockname()[1]
        return port

    def set_app_process(self, pid: int | None, command: str) -> None:
        """Record the app process (shown by ``daca list`` and in metadata ``extended``)."""
        self._app_pid, self._app_command = pid, command
        if self._ctx is not None:
            self._ctx.extended.update({"appCommand": command, "appPID": str(pid or "")})
            self._register()

    def _register(self) -> None:
        record = AppRecord(
            app_id=self.config.app_id,
            host=self.config.host,
            http_port=self.http_port,
            app_port=self.config.app_port,
            pid=os.getpid(),
            started_at=time.time(),
            app_command=self._app_command,
            app_pid=self._app_pid,
            peer_token=self._peer_token,
        )
        self._registry.register(record)
        self.context.invoker.attach()

    async def _subscribe(self) -> None:
        ctx = self.context
        programmatic = await self._fetch_programmatic()
        specs = merge_subscriptions(list(ctx.resources.subscriptions), programmatic)
        channel = self._channel()
        if channel is not None:
            for spec in specs:
                await self._start_subscription(spec, channel)
        ctx.ready = True

    async def _start_subscription(self, spec: SubscriptionSpec, channel: AppChannel) -> None:
        ctx = self.context
        pubsub = ctx.components.pubsubs.get(spec.pubsubname)
        if pubsub is None:
            logger.error(
                "subscription to %s: pubsub %r is not loaded; skipped", spec.topic, spec.pubsubname
            )
            return
        kind = BulkDelivery if spec.bulk_subscribe.enabled else Delivery
        delivery = kind(
            spec,
            pubsub,
            channel,
            retry=ctx.resources.inbound_retry(spec.pubsubname),
            timeout=ctx.resources.inbound_timeout(spec.pubsubname),
            metrics=ctx.metrics,
        )
        component = ctx.components.specs[spec.pubsubname]
        given = spec.metadata.get("concurrency", "")
        if given and not (given.isdigit() and int(given) > 0):
            logger.error(
                "subscription to %s (%s): metadata concurrency must be a whole number > 0, "
                "got %r; not subscribed", spec.topic, spec.source or "programmatic", given,
            )  # fmt: skip
            return
        concurrency = int(given) if given else component.get_int("concurrency", DEFAULT_CONCURRENCY)
        subscription = await pubsub.subscribe(
            spec.topic, delivery, group=self.config.app_id, concurrency=concurrency
        )
        if isinstance(delivery, BulkDelivery):
            subscription = delivery.subscription(subscription)
        self._subscriptions.append(subscription)
        ctx.subscriptions.append(spec)
        logger.info(
            "subscribed %r to %s/%s (%s)",
            self.config.app_id,
            spec.pubsubname,
            spec.topic,
            spec.type.lower() + (", bulk" if spec.bulk_subscribe.enabled else ""),
        )

    async def _fetch_programmatic(self) -> list[SubscriptionSpec]:
        """The app's ``GET /dapr/subscribe``, asked again (50 ms doubling to 1 s) while the app
        is not up yet, for at most ``app_start_timeout``; then none."""
        channel = self._channel()
        if channel is None:
            return []
        unreachable = (aiohttp.ClientError, TimeoutError)
        retrying = stamina.AsyncRetryingCaller(
            attempts=None,
            timeout=self.config.app_start_timeout,
            wait_initial=0.05,
            wait_max=1.0,
            wait_jitter=0.0,
        )
        try:
            return await retrying(unreachable, self._ask_subscriptions, channel)
        except unreachable:
            logger.warning(
                "the app at %s did not answer GET /dapr/subscribe; only "
                "declarative subscriptions are used",
                channel.base_url,
            )
            return []

    @staticmethod
    async def _ask_subscriptions(channel: AppChannel) -> list[SubscriptionSpec]:
        url, timeout = channel.base_url + "/dapr/subscribe", aiohttp.ClientTimeout(total=5.0)
        async with channel.session.get(url, headers=channel.headers(), timeout=timeout) as answer:
            status, body = answer.status, await answer.read()
        if status == 404:
            return []
        if status != 200:
            logger.warning("GET /dapr/subscribe answered %d; ignored", status)
            return []
        try:
            return parse_programmatic(json.loads(body))
        except ValueError:
            logger.error("GET /dapr/subscribe answered invalid JSON; ignored")
            return []

    async def stop(self) -> None:
        if self._ctx is not None:  # first: a stopping sidecar is reached over HTTP, if at all
            self._ctx.invoker.detach()
        if self._subscribe_task is not None:
            self._subscribe_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._subscribe_task
        for subscription in self._subscriptions:
            await subscription.close()
        self._subscriptions.clear()
        if self._ctx is not None and self._ctx.outbox is not None:
            await self._ctx.outbox.close()
        await self._stop_server()
        if self._ctx is not None:
            await self._ctx.components.close()
        self._registry.unregister(self.config.app_id, os.getpid())
        if self._session is not None:
            await self._session.close()
        if self._own_pool and self._redis_pool is not None:
            await self._redis_pool.stop()
        logger.info("sidecar for %r stopped", self.config.app_id)

    async def _stop_server(self) -> None:
        if self._server is not None and self._serve_task is not None:
            self._server.should_exit = True
            await self._serve_task
        if self._socket is not None:
            self._socket.close()
        if self._metrics_server is not None and self._metrics_task is not None:
            self._metrics_server.should_exit = True
            await self._metrics_task
        if self._metrics_socket is not None:
            self._metrics_socket.close()

    async def __aenter__(self) -> Sidecar:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
