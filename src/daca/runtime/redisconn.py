"""The connection half of a Redis component's metadata, shared by ``state.redis`` and
``pubsub.redis``: ``redisHost`` (required, ``host:port``), ``redisPassword``, ``redisUsername``,
``redisDB``, ``enableTLS``."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from daca.runtime.redis_server import split_host_port
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
