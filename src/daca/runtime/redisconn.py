"""The connection half of a Redis component's metadata, shared by ``state.redis`` and
``pubsub.redis``: ``redisHost`` (required, ``host:port``), ``redisPassword``, ``redisUsername``,
``redisDB``, ``enableTLS``; and the client either backend was given or makes for itself."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from daca.runtime.net import split_host_port
from daca.runtime.resources import ComponentSpec

CONNECT_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class RedisConnection:
    host: str
    port: int
    password: str | None = None
    username: str | None = None
    db: int = 0
    tls: bool = False

    @classmethod
    def from_spec(cls, spec: ComponentSpec) -> RedisConnection:
        host, port = split_host_port(spec.require("redisHost"))
        return cls(
            host=host,
            port=port,
            password=spec.get("redisPassword") or None,
            username=spec.get("redisUsername") or None,
            db=spec.get_int("redisDB", 0),
            tls=spec.get_bool("enableTLS"),
        )

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def client(self) -> Redis:
        """A client with its own connection pool; daprd's go-redis retry defaults (3 retries,
        backing off from 8 ms to at most 512 ms)."""
        return Redis(
            host=self.host,
            port=self.port,
            db=self.db,
            username=self.username,
            password=self.password,
            ssl=self.tls,
            socket_connect_timeout=CONNECT_TIMEOUT,
            retry=Retry(ExponentialBackoff(cap=0.512, base=0.008), 3),
        )


def check_injected(client: Redis | None, owner: str) -> None:
    """Refuse an injected client that decodes replies: both backends read raw bytes."""
    if client is not None and client.connection_pool.connection_kwargs.get("decode_responses"):
        raise ValueError(f"{owner} needs a client with decode_responses=False")


async def connect(connection: RedisConnection, injected: Redis | None) -> Redis:
    """``injected`` or a new client for ``connection``, once it answered a PING (a client made
    here is closed again when it does not)."""
    client = injected or connection.client()
    try:
        await client.ping()
    except Exception:
        await release(client, injected)
        raise
    return client


async def release(client: Redis | None, injected: Redis | None) -> None:
    """Close ``client`` unless it is the injected one: that stays open, with its owner."""
    if client is not None and client is not injected:
        await client.aclose()


def sibling(client: Redis) -> Redis:
    """A client with ``client``'s settings and a pool of its own (closed with it)."""
    pool = client.connection_pool
    return Redis.from_pool(
        type(pool)(connection_class=pool.connection_class, **pool.connection_kwargs)
    )
