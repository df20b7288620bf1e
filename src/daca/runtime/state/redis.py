"""``state.redis``: daprd's Redis layout, with the uniform ETag rules of the contract.

Wire layout (as daprd's hash mode, so daprd and this store can share a database): each key is a
HASH with ``data`` (the JSON text) and ``version`` (an integer counter, which is the ETag). A plain
string value written by old Dapr versions is still readable; it reports the ETag ``"0"`` (no hash
version ever is 0) and the next write turns it into a hash.

Every write, single or transactional, is ONE Lua script: it checks the ETags of all operations
first and only then applies them, so a transaction with one bad ETag changes nothing (daprd's own
MULTI of several scripts cannot roll back). The checks are the in-memory store's, not daprd's
Redis ones: an ETag for a missing key and a ``first-write`` over an existing key are mismatches.
As in daprd, a write's ETag must be an integer (else :class:`ETagInvalidError`), a delete's is
compared as text, and a mismatch says "failed to set key K" / "failed to delete K".
A write without a TTL (and no component ``ttlInSeconds``) removes any TTL, as on the other backends.
Reads report no ``ttlExpireTime``: daprd's Redis store does not either. Values are written as
that store writes them (``value_encoding``), so the bytes in Redis are the same from either.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import AuthenticationError, RedisError, ResponseError

from daca.runtime.errors import ETagInvalidError, ETagMismatchError, StoreError
from daca.runtime.redisconn import RedisConnection, check_injected, connect, release
from daca.runtime.resources import ComponentSpec
from daca.runtime.state.base import (
    DeleteRequest,
    Operation,
    SetRequest,
    StateItem,
    StateStore,
)
from daca.runtime.state.rules import given_etag, parse_go_int

logger = logging.getLogger(__name__)

#: The ETag reported for a legacy plain-string value.
LEGACY_ETAG = "0"


# KEYS: one per operation. ARGV, five per operation: kind ("set" | "del"), ETag ("" = none),
# first-write ("1" | "0"), data, TTL in seconds ("" = none). Returns 0, or the 1-based index of
# the first operation whose ETag check failed (then nothing was written).
_TRANSACT_LUA = """
local function version(key)
  local kind = redis.call("TYPE", key).ok
  if kind == "none" then return false end
  if kind == "hash" then return redis.call("HGET", key, "version") or "0" end
  return "0"
end
for i, key in ipairs(KEYS) do
  local at = (i - 1) * 5
  local etag, first_write, current = ARGV[at + 2], ARGV[at + 3], version(key)
  if etag ~= "" and etag ~= current then return i end
  if etag == "" and first_write == "1" and current then return i end
end
for i, key in ipairs(KEYS) do
  local at = (i - 1) * 5
  if ARGV[at + 1] == "del" then
    redis.call("DEL", key)
  else
    if redis.call("TYPE", key).ok ~= "hash" then redis.call("DEL", key) end
    redis.call("HSET", key, "data", ARGV[at + 4])
    redis.call("HINCRBY", key, "version", 1)
    local ttl = tonumber(ARGV[at + 5])
    if ttl and ttl > 0 then redis.call("EXPIRE", key, ttl) else redis.call("PERSIST", key) end
  end
end
return 0
"""


@dataclass(frozen=True, slots=True)
class RedisSettings:
    """The component metadata, validated."""

    connection: RedisConnection
    ttl_seconds: int | None = None  # the component-wide default TTL

    @property
    def address(self) -> str:
        return self.connection.address

    @classmethod
    def from_spec(cls, spec: ComponentSpec) -> RedisSettings:
        if spec.get("redisType", "node") != "node":
            raise spec.error("redisType", "must be 'node': Redis Cluster is not supported")
        return cls(
            connection=RedisConnection.from_spec(spec),
            ttl_seconds=spec.get_int("ttlInSeconds", 0) if spec.get("ttlInSeconds") else None,
        )


def redis_etag(operation: Operation) -> str:
    """The operation's ETag as the script compares it ("" for none).

    A write's ETag is read as daprd reads it, an integer (``strconv.Atoi``: anything else is
    invalid); a delete's is compared as given, so one that is not a version just mismatches.
    """
    etag = given_etag(operation)
    if etag is None or isinstance(operation, DeleteRequest):
        return etag or ""
    try:
        return str(parse_go_int(etag, "Atoi"))
    except ValueError as exc:
        raise ETagInvalidError(str(exc)) from None


class RedisStateStore(StateStore):
    """State in Redis hashes, through an injected client (left open) or one made by ``start``."""

    value_encoding = "fastest"

    def __init__(self, spec: ComponentSpec, settings: RedisSettings, client: Redis | None) -> None:
        check_injected(client, "RedisStateStore")
        self.spec = spec
        self.settings = settings
        self._injected = client
        self._client: Redis | None = None
        self._script: AsyncScript | None = None

    @classmethod
    def from_component(cls, spec: ComponentSpec, *, client: Redis | None = None) -> RedisStateStore:
        return cls(spec, RedisSettings.from_spec(spec), client)

    async def start(self) -> None:
        try:
            client = await connect(self.settings.connection, self._injected)
        except RedisError as exc:
            raise self._start_error(exc) from exc
        self._client, self._script = client, client.register_script(_TRANSACT_LUA)
        logger.info(
            "state store %r: connected to Redis at %s", self.spec.name, self.settings.address
        )

    async def close(self) -> None:
        client, self._client, self._script = self._client, None, None
        await release(client, self._injected)

    async def get(self, key: str) -> StateItem | None:
        return (await self.bulk_get([key]))[0]

    async def bulk_get(self, keys: Sequence[str]) -> list[StateItem | None]:
        """One pipelined round trip (``HGETALL`` per key), then legacy fallbacks."""
        client, _ = self._started()
        with self._store_errors():
            async with client.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.hgetall(key)
                replies = await pipe.execute(raise_on_error=False)
            return [await self._item(key, reply) for key, reply in zip(keys, replies, strict=True)]

    def parse_ttl(self, raw: str) -> int | None:
        """daprd's Redis rule: ``ParseInt``; a TTL <= 0 removes any TTL."""
        if raw == "":
            return None
        try:
            return parse_go_int(raw, "ParseInt")
        except ValueError as exc:
            raise StoreError(f"failed to parse ttl from metadata: {exc}") from None

    async def set(self, request: SetRequest) -> None:
        await self.transact([request])

    async def bulk_set(self, requests: Sequence[SetRequest]) -> list[BaseException | None]:
        """Each item its own script, all in one pipelined round trip (no MULTI: each item
        succeeds or fails on its own, as with separate saves)."""
        client, script = self._started()
        results: list[BaseException | None] = [None] * len(requests)
        sent: list[int] = []
        with self._store_errors():
            async with client.pipeline(transaction=False) as pipe:
                for index, request in enumerate(requests):
                    try:
                        args = self._script_args(request)
                    except StoreError as exc:
                        results[index] = exc
                        continue
                    await script(keys=[request.key], args=args, client=pipe)
                    sent.append(index)
                replies = await pipe.execute(raise_on_error=False) if sent else []
        for index, reply in zip(sent, replies, strict=True):
            if isinstance(reply, RedisError):
                name, address = self.spec.name, self.settings.address
                results[index] = StoreError(f"redis state store {name!r} at {address}: {reply}")
            elif int(reply):
                results[index] = self._mismatch(requests[index])
        return results

    async def delete(self, request: DeleteRequest) -> None:
        await self.transact([request])

    async def transact(self, operations: Sequence[Operation]) -> None:
        _, script = self._started()
        if not operations:
            return
        args = [arg for operation in operations for arg in self._script_args(operation)]
        with self._store_errors():
            failed = int(await script(keys=[o.key for o in operations], args=args))
        if failed:
            raise self._mismatch(operations[failed - 1])

    def _script_args(self, operation: Operation) -> tuple[str, str, str, bytes, str]:
        etag = redis_etag(operation)
        first_write = "1" if operation.concurrency == "first-write" else "0"
        if isinstance(operation, DeleteRequest):
            return ("del", etag, first_write, b"", "")
        ttl = operation.ttl_seconds
        if ttl is None:
            ttl = self.settings.ttl_seconds
        return ("set", etag, first_write, operation.value, "" if ttl is None else str(ttl))

    @staticmethod
    def _mismatch(operation: Operation) -> ETagMismatchError:
        """Worded as the error of daprd's scripts."""
        if isinstance(operation, DeleteRequest):
            return ETagMismatchError(f"failed to delete {operation.key}")
        return ETagMismatchError(f"failed to set key {operation.key}")

    async def _item(self, key: str, reply: Any) -> StateItem | None:
        if isinstance(reply, ResponseError) and str(reply).startswith("WRONGTYPE"):
            return await self._legacy_item(key)
        if isinstance(reply, Exception):
            raise reply
        if not reply:
            return None
        data, version = reply.get(b"data"), reply.get(b"version")
        if data is None or version is None:
            raise StoreError(f"key {key!r}: required hash field 'data' or 'version' was not found")
        return StateItem(key, data, version.decode())

    async def _legacy_item(self, key: str) -> StateItem | None:
        """A plain string value (daprd falls back to ``GET`` the same way)."""
        value = await self._started()[0].get(key)
        if value is None:
            return None
        data = value.encode() if isinstance(value, str) else value
        return StateItem(key, data, LEGACY_ETAG)

    @contextlib.contextmanager
    def _store_errors(self) -> Iterator[None]:
        try:
            yield
        except RedisError as exc:
            name, address = self.spec.name, self.settings.address
            raise StoreError(f"redis state store {name!r} at {address}: {exc}") from exc

    def _start_error(self, exc: RedisError) -> Exception:
        if isinstance(exc, AuthenticationError):
            return self.spec.error(
                "redisPassword", f"was rejected by {self.settings.address}: {exc}"
            )
        return self.spec.error("redisHost", f"= {self.settings.address}: cannot connect: {exc}")

    def _started(self) -> tuple[Redis, AsyncScript]:
        if self._client is None or self._script is None:
            raise RuntimeError("RedisStateStore used before start()")
        return self._client, self._script
