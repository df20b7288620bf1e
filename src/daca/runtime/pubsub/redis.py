"""Redis Streams pub/sub (``pubsub.redis``), wire-compatible with daprd's component.

Layout (what daprd writes and reads):

- publish: ``XADD <topic> [MAXLEN ~ maxLenApprox] * data <bytes> metadata <JSON object>``;
- subscribe: ``XGROUP CREATE <topic> <group> 0 MKSTREAM`` (a new group reads the whole stream),
  where the group is the ``consumerID`` metadata or else the app-id, and the consumer name is the
  group name; then ``XREADGROUP GROUP <group> <group> COUNT queueDepth BLOCK readTimeout``;
- a handler returning → ``XACK`` (the entries whose handlers return in the same turn of the event
  loop, as a bulk delivery's do, in one ``XACK``); raising → the entry stays pending;
- every ``redeliverInterval`` (and once at subscribe time) pending entries idle for at least
  ``processingTimeout`` are ``XCLAIM``ed and delivered again; entries gone from the stream are
  acknowledged. ``0`` for either setting turns reclaiming off.

Differences from daprd: entries this process is still handling (or holds in its prefetch buffer)
are never reclaimed by it, so a slow handler is not delivered twice by the same runtime (another
runtime in the group still takes it over after ``processingTimeout``); handlers are not cancelled
at ``processingTimeout``; failed entries are never acknowledged (daprd >= 1.17 acks them).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import stamina
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError
from redis.typing import EncodableT, FieldT, StreamIdT

from daca.runtime.errors import StoreError
from daca.runtime.gojson import marshal
from daca.runtime.pubsub.base import Handler, Message, PubSub, Subscription
from daca.runtime.pubsub.redis_settings import RedisPubSubSettings
from daca.runtime.pubsub.workers import Workers
from daca.runtime.redisconn import check_injected, connect, release, sibling
from daca.runtime.resources import ComponentSpec

logger = logging.getLogger(__name__)

_MAX_BACKOFF = 5.0
_Entry = tuple[bytes, dict[bytes, bytes]]


def _millis(seconds: float) -> int:
    return max(int(seconds * 1000), 0)


def _entries(raw: Any) -> list[_Entry]:
    """Stream entries as redis-py parses them, without the ``(None, None)`` of deleted ones."""
    return [(entry_id, fields) for entry_id, fields in raw if entry_id is not None and fields]


def _to_message(topic: str, entry: _Entry) -> Message:
    entry_id, fields = entry
    try:
        metadata = json.loads(fields.get(b"metadata", b"{}"))
    except ValueError:
        metadata = {}
    if not isinstance(metadata, dict):
        metadata = {}
    meta = {str(k): str(v) for k, v in metadata.items()}
    return Message(topic=topic, data=fields.get(b"data", b""), metadata=meta, id=entry_id.decode())


async def _retrying(
    what: str, step: Callable[[], Awaitable[None]], running: Callable[[], bool]
) -> None:
    """Run ``step`` while ``running()``, outliving a Redis outage: redis-py's ``Retry`` gives a
    command under a second, so past that errors are logged here and retried, backing off from
    0.1 s to 5 s, for as long as it takes; each success starts the backoff over."""
    while running():
        async for attempt in stamina.retry_context(
            on=Exception,
            attempts=None,
            timeout=None,
            wait_initial=0.1,
            wait_max=_MAX_BACKOFF,
            wait_jitter=0.0,
        ):
            with attempt:
                try:
                    await step()
                except Exception as exc:
                    wait = attempt.next_wait
                    logger.warning(
                        "redis pubsub: %s failed (%r); retrying in %.1fs", what, exc, wait
                    )
                    raise


async def _retrying_once(what: str, step: Callable[[], Awaitable[None]]) -> None:
    """Run ``step`` once; an error (Redis down, ...) is logged and left for the next round."""
    try:
        await step()
    except Exception as exc:
        logger.warning("redis pubsub: %s failed (%r); trying again next interval", what, exc)


class _StreamSubscription(Subscription):
    """One topic read by one consumer group: a read loop, a reclaim loop and a worker pool."""

    def __init__(self, owner: RedisPubSub, topic: str, group: str, handler: Handler, size: int):
        self._owner = owner
        self._settings = owner.settings
        self._topic, self._group, self._handler = topic, group, handler
        self._client = owner.client
        self._reader = sibling(owner.client)  # blocking XREADGROUP gets its own connection
        self._in_flight = owner.in_flight(topic, group)
        self._buffer: asyncio.Queue[_Entry] = asyncio.Queue(maxsize=self._settings.queue_depth)
        self._workers = Workers(self._buffer, self._deliver, size)
        self._loops: list[asyncio.Task[None]] = []
        self._running = False
        self._acks: list[bytes] = []
        self._acked: asyncio.Future[None] | None = None
        self._ack_tasks: set[asyncio.Task[None]] = set()

    def _is_running(self) -> bool:
        return self._running

    async def start(self) -> None:
        await self._create_group()
        self._running = True
        self._workers.start()
        read = _retrying("read", self._read_once, self._is_running)
        self._loops.append(asyncio.create_task(read))
        if self._settings.reclaim_enabled:
            self._loops.append(asyncio.create_task(self._reclaim_loop()))

    async def close(self) -> None:
        await self._stop_loops()
        self._loops.clear()
        await self._workers.stop(self._owner.drain_timeout)
        while not self._buffer.empty():  # prefetched, never started: left pending in Redis
            self._in_flight.discard(self._buffer.get_nowait()[0])
        await self._reader.aclose()
        self._owner.forget(self)

    async def _stop_loops(self) -> None:
        """Cancel the loops and wait for them, bounded.

        On Python 3.11 redis-py's internal ``asyncio.wait_for`` can swallow a cancellation that
        arrives as a command completes, so the loops also stop on ``_running`` at their next round
        (within one ``readTimeout``); past that the cancellation is repeated.
        """
        self._running = False
        grace = self._settings.read_timeout + 1.0
        for _ in range(3):
            for task in self._loops:
                task.cancel()
            _, pending = await asyncio.wait(self._loops, timeout=grace) if self._loops else ((), ())
            self._loops = list(pending)
            if not self._loops:
                return
            logger.warning("redis pubsub: %s loops still running; cancelling again", self._topic)
        logger.error("redis pubsub: %s loops did not stop; abandoning them", self._topic)

    async def _create_group(self) -> None:
        try:
            await self._client.xgroup_create(self._topic, self._group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _read_once(self) -> None:
        try:
            streams: Any = await self._reader.xreadgroup(
                self._group,
                self._group,
                {self._topic: ">"},
                count=self._settings.queue_depth,
                block=max(_millis(self._settings.read_timeout), 1),
            )
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            await self._create_group()
            return
        for _stream, entries in streams or []:
            await self._enqueue(_entries(entries))

    async def _reclaim_loop(self) -> None:
        while self._running:
            await _retrying_once("reclaim", self._reclaim_once)
            await asyncio.sleep(self._settings.redeliver_interval)

    async def _reclaim_once(self) -> None:
        idle_ms = _millis(self._settings.processing_timeout)
        pending = await self._client.xpending_range(
            self._topic,
            self._group,
            min="-",
            max="+",
            count=self._settings.queue_depth + len(self._in_flight),
            idle=idle_ms,
        )
        ids: list[StreamIdT] = [row["message_id"] for row in pending]
        ids = [entry_id for entry_id in ids if entry_id not in self._in_flight]
        if not ids:
            return
        claimed = await self._client.xclaim(
            self._topic, self._group, self._group, min_idle_time=idle_ms, message_ids=ids
        )
        entries = _entries(claimed)
        await self._drop_missing(set(ids) - {entry_id for entry_id, _ in entries})
        if entries:
            logger.info("redis pubsub: redelivering %d entries of %s", len(entries), self._topic)
        await self._enqueue(entries)

    async def _drop_missing(self, ids: set[StreamIdT]) -> None:
        """Acknowledge pending ids whose entries were trimmed or deleted from the stream."""
        for entry_id in ids:
            if not await self._client.xrange(self._topic, entry_id, entry_id, count=1):
                await self._client.xack(self._topic, self._group, entry_id)

    async def _enqueue(self, entries: list[_Entry]) -> None:
        """Hand entries to the workers; they count as in flight from now until handled."""
        self._in_flight.update(entry_id for entry_id, _ in entries)
        for index, entry in enumerate(entries):
            try:
                await self._buffer.put(entry)
            except asyncio.CancelledError:
                self._in_flight.difference_update(entry_id for entry_id, _ in entries[index:])
                raise

    async def _deliver(self, entry: _Entry) -> None:
        entry_id = entry[0]
        try:
            await self._handler(_to_message(self._topic, entry))
        except Exception as exc:
            logger.warning(
                "redis pubsub: handler failed for %s entry %s (%s); left pending for redelivery",
                self._topic,
                entry_id.decode(),
                type(exc).__name__,
            )
        else:
            await self._ack(entry_id)
        finally:
            self._in_flight.discard(entry_id)

    async def _ack(self, entry_id: bytes) -> None:
        """Acknowledge ``entry_id`` in one ``XACK`` with every entry acknowledged in the same turn
        of the event loop (a bulk delivery settles hundreds at once); return once it is sent."""
        if self._acked is None:
            loop = asyncio.get_running_loop()
            self._acked = loop.create_future()
            loop.call_soon(self._send_acks)
        acked = self._acked
        self._acks.append(entry_id)
        await asyncio.shield(acked)

    def _send_acks(self) -> None:
        ids, acked = self._acks, self._acked
        self._acks, self._acked = [], None
        assert acked is not None
        task = asyncio.create_task(self._xack(ids, acked))
        self._ack_tasks.add(task)
        task.add_done_callback(self._ack_tasks.discard)

    async def _xack(self, ids: list[bytes], acked: asyncio.Future[None]) -> None:
        try:
            await self._client.xack(self._topic, self._group, *ids)
        except (RedisError, OSError) as exc:
            logger.warning(
                "redis pubsub: XACK of %d entries failed (%s); they will be redelivered",
                len(ids), exc,
            )  # fmt: skip
        finally:
            acked.set_result(None)


class RedisPubSub(PubSub):
    """Pub/sub over Redis Streams, through an injected client (left open) or one made by
    ``start``; see the module docstring for the wire layout."""

    def __init__(
        self, spec: ComponentSpec, settings: RedisPubSubSettings, client: Redis | None
    ) -> None:
        check_injected(client, "RedisPubSub")
        self.spec = spec
        self.settings = settings
        self._injected = client
        self._client: Redis | None = None
        self._subscriptions: set[_StreamSubscription] = set()
        self._in_flight: dict[tuple[str, str], set[bytes]] = {}

    @classmethod
    def from_component(cls, spec: ComponentSpec, *, client: Redis | None = None) -> RedisPubSub:
        return cls(spec, RedisPubSubSettings.from_spec(spec), client)

    @property
    def processing_timeout(self) -> float:
        """Seconds an entry may stay pending before it is reclaimed (0: never)."""
        return self.settings.processing_timeout

    @property
    def client(self) -> Redis:
        if self._client is None:
            raise RuntimeError("RedisPubSub used before start()")
        return self._client

    async def start(self) -> None:
        try:
            self._client = await connect(self.settings.connection, self._injected)
        except (RedisError, OSError) as exc:
            problem = f"{self.settings.connection.address} is unreachable: {exc}"
            raise self.spec.error("redisHost", problem) from exc

    async def close(self) -> None:
        for subscription in list(self._subscriptions):
            await subscription.close()
        client, self._client = self._client, None
        await release(client, self._injected)

    async def publish(self, topic: str, data: bytes, metadata: dict[str, str] | None) -> None:
        fields: dict[FieldT, EncodableT] = {"data": data}
        if metadata is not None:  # as daprd's component: no field for a message without any
            fields["metadata"] = marshal(metadata)
        max_len = self.settings.max_len_approx
        try:
            await self.client.xadd(topic, fields, maxlen=max_len, approximate=True)
        except (RedisError, OSError) as exc:
            raise StoreError(f"redis pubsub: publish to {topic!r} failed: {exc}") from exc

    async def subscribe(
        self, topic: str, handler: Handler, *, group: str, concurrency: int
    ) -> Subscription:
        group_name = self.settings.consumer_id or group
        size = concurrency if concurrency > 0 else self.settings.concurrency
        subscription = _StreamSubscription(self, topic, group_name, handler, size)
        try:
            await subscription.start()
        except (RedisError, OSError) as exc:
            await subscription.close()
            raise StoreError(f"redis pubsub: subscribe to {topic!r} failed: {exc}") from exc
        self._subscriptions.add(subscription)
        return subscription

    def in_flight(self, topic: str, group: str) -> set[bytes]:
        """Entry ids of ``topic``/``group`` this process holds; the reclaim loop skips them."""
        return self._in_flight.setdefault((topic, group), set())

    def forget(self, subscription: _StreamSubscription) -> None:
        self._subscriptions.discard(subscription)
