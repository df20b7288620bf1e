"""``state.sqlite``: one stdlib :mod:`sqlite3` connection, in daprd's table layout.

The table is daprd's (``key``, ``value``, ``is_binary``, ``etag``, ``expiration_time``,
``update_time``), so a database file can be shared with a real daprd. Values that are valid UTF-8
are stored as text, anything else as base64 with ``is_binary`` set.

All database work runs on ONE dedicated worker thread that owns the connection: the event loop is
never blocked, and calls are serialised even when an awaiting task is cancelled (a lock released
on cancellation could let two calls touch the connection at once). Every write is one
``BEGIN IMMEDIATE`` transaction that validates all ETags (with the in-memory store's rules) before
applying anything; a mismatch says no more than daprd's SQLite store does. The ``timeout``
setting bounds each call through a progress handler.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import math
import re
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from daca.runtime.durations import parse_duration
from daca.runtime.errors import StoreError
from daca.runtime.resources import ComponentSpec
from daca.runtime.state.base import (
    DeleteRequest,
    Operation,
    SetRequest,
    StateItem,
    StateStore,
)
from daca.runtime.state.rules import (
    expiry_for,
    new_etag,
    parse_go_int,
    ttl_metadata,
    validate_etag,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PROGRESS_STEPS = 1000  # virtual-machine steps between two deadline checks
_TTL_ERROR = "error parsing TTL: incorrect value for metadata 'ttlInSeconds'"
_MAX_TTL = 2**31 - 1


@dataclass(frozen=True, slots=True)
class SqliteSettings:
    """The component metadata, validated. Durations are in seconds; 0 disables cleanup."""

    connection_string: str
    table_name: str = "state"
    busy_timeout: float = 2.0
    timeout: float = 20.0
    disable_wal: bool = False
    cleanup_interval: float = 0.0

    @classmethod
    def from_spec(cls, spec: ComponentSpec) -> SqliteSettings:
        table = spec.get("tableName", "state")
        if not _IDENTIFIER.fullmatch(table):
            raise spec.error("tableName", f"must be a plain SQL identifier, got {table!r}")
        return cls(
            connection_string=spec.require("connectionString"),
            table_name=table,
            busy_timeout=_duration(spec, "busyTimeout", "2s"),
            timeout=_duration(spec, "timeout", "20s"),
            disable_wal=spec.get_bool("disableWAL"),
            cleanup_interval=_duration(spec, "cleanupInterval", "0s"),
        )

    @property
    def in_memory(self) -> bool:
        text = self.connection_string
        return text == ":memory:" or text.startswith("file::memory:") or "mode=memory" in text


def _duration(spec: ComponentSpec, field_name: str, default: str) -> float:
    try:
        return parse_duration(spec.get(field_name, default))
    except ValueError as exc:
        raise spec.error(field_name, f"is not a duration: {exc}") from None


def _timestamp(moment: datetime) -> str:
    """UTC text in SQLite's own ``YYYY-MM-DD HH:MM:SS.SSS`` form, so text order is time order."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "milliseconds")


def _parse_timestamp(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        logger.debug("unreadable expiration_time %r", text)
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _encode(value: bytes) -> tuple[str, bool]:
    try:
        return value.decode("utf-8"), False
    except UnicodeDecodeError:
        return base64.b64encode(value).decode("ascii"), True


def _decode(stored: str | bytes, is_binary: bool) -> bytes:
    raw = stored.encode("utf-8") if isinstance(stored, str) else stored
    return base64.b64decode(raw) if is_binary else raw


class _Database:
    """The synchronous side: every method runs on the store's worker thread."""

    def __init__(self, settings: SqliteSettings) -> None:
        self._settings = settings
        self._table = settings.table_name
        self._deadline = math.inf
        self._conn: sqlite3.Connection | None = None

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("the SQLite connection is closed")
        return self._conn

    def open(self) -> None:
        text = self._settings.connection_string
        conn = sqlite3.connect(
            text,
            timeout=self._settings.busy_timeout,
            isolation_level=None,
            uri=text.startswith("file:"),
        )
        self._conn = conn
        conn.set_progress_handler(self._past_deadline, _PROGRESS_STEPS)
        if not (self._settings.disable_wal or self._settings.in_memory):
            conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {self._table} (key TEXT NOT NULL PRIMARY KEY, "
            "value TEXT NOT NULL, is_binary BOOLEAN NOT NULL, etag TEXT NOT NULL, "
            "expiration_time TIMESTAMP DEFAULT NULL, update_time TIMESTAMP DEFAULT NULL)"
        )

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def call(self, work: Callable[[], T]) -> T:
        """Run ``work`` under the ``timeout`` deadline (the progress handler interrupts it)."""
        self._deadline = time.monotonic() + self._settings.timeout
        try:
            return work()
        finally:
            self._deadline = math.inf

    def _past_deadline(self) -> int:
        return int(time.monotonic() > self._deadline)

    def get_many(self, keys: Sequence[str]) -> list[StateItem | None]:
        now = _timestamp(datetime.now(UTC))
        return [self._get(key, now) for key in keys]

    def _get(self, key: str, now: str) -> StateItem | None:
        row = self.conn.execute(
            f"SELECT value, is_binary, etag, expiration_time FROM {self._table} "
            "WHERE key = ? AND (expiration_time IS NULL OR expiration_time > ?)",
            (key, now),
        ).fetchone()
        if row is None:
            return None
        value, is_binary, etag, expires = row
        expires_at = None if expires is None else _parse_timestamp(str(expires))
        return StateItem(key, _decode(value, bool(is_binary)), str(etag), ttl_metadata(expires_at))

    def apply(self, operations: Sequence[Operation]) -> None:
        """Validate every ETag, then write everything, in one transaction."""
        now = datetime.now(UTC)
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            for operation in operations:
                current = self._current_etag(operation.key, now)
                validate_etag(operation.key, current, operation, explain=False)
            for operation in operations:
                self._write(operation, now)
            self.conn.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise

    def _rollback(self) -> None:
        self._deadline = math.inf  # an interrupted call must still be able to roll back
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    def _current_etag(self, key: str, now: datetime) -> str | None:
        row = self.conn.execute(
            f"SELECT etag FROM {self._table} "
            "WHERE key = ? AND (expiration_time IS NULL OR expiration_time > ?)",
            (key, _timestamp(now)),
        ).fetchone()
        return None if row is None else str(row[0])

    def _write(self, operation: Operation, now: datetime) -> None:
        if isinstance(operation, DeleteRequest):
            self.conn.execute(f"DELETE FROM {self._table} WHERE key = ?", (operation.key,))
            return
        text, is_binary = _encode(operation.value)
        expires_at = expiry_for(operation.ttl_seconds, now)
        expires = None if expires_at is None else _timestamp(expires_at)
        self.conn.execute(
            f"INSERT OR REPLACE INTO {self._table} "
            "(key, value, is_binary, etag, expiration_time, update_time) VALUES (?, ?, ?, ?, ?, ?)",
            (operation.key, text, is_binary, new_etag(), expires, _timestamp(now)),
        )

    def purge_expired(self) -> int:
        cursor = self.conn.execute(
            f"DELETE FROM {self._table} WHERE expiration_time IS NOT NULL AND expiration_time <= ?",
            (_timestamp(datetime.now(UTC)),),
        )
        return cursor.rowcount


class SqliteStateStore(StateStore):
    """A state store in one SQLite database file (or an in-memory database)."""

    def __init__(self, spec: ComponentSpec, settings: SqliteSettings) -> None:
        self.spec = spec
        self.settings = settings
        self._db = _Database(settings)
        self._executor: ThreadPoolExecutor | None = None
        self._cleanup: asyncio.Task[None] | None = None

    @classmethod
    def from_component(cls, spec: ComponentSpec, *, client: None = None) -> SqliteStateStore:
        """No client to inject: the connection must be opened on the store's own thread."""
        return cls(spec, SqliteSettings.from_spec(spec))

    async def start(self) -> None:
        if self._executor is not None:
            return
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"sqlite-{self.spec.name}")
        try:
            await self._submit(self._db.open)
        except StoreError as exc:
            await self.close()
            text = self.settings.connection_string
            raise self.spec.error("connectionString", f"= {text!r}: cannot open: {exc}") from exc
        if self.settings.cleanup_interval > 0:
            self._cleanup = asyncio.create_task(self._cleanup_loop())
        logger.info(
            "state store %r: SQLite table %r ready", self.spec.name, self.settings.table_name
        )

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        if self._cleanup is not None:
            self._cleanup.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._cleanup
            self._cleanup = None
        await asyncio.wrap_future(executor.submit(self._db.close))
        executor.shutdown(wait=False)

    async def get(self, key: str) -> StateItem | None:
        return (await self.bulk_get([key]))[0]

    async def bulk_get(self, keys: Sequence[str]) -> list[StateItem | None]:
        return await self._submit(lambda: self._db.get_many(keys))

    def parse_ttl(self, raw: str) -> int | None:
        """daprd's SQLite rule: ``ParseInt``, from -1 (none) to 2^31 - 1."""
        if raw == "":
            return None
        try:
            ttl = parse_go_int(raw, "ParseInt")
        except ValueError as exc:
            raise StoreError(f"{_TTL_ERROR}: {exc}") from None
        if not -1 <= ttl <= _MAX_TTL:
            raise StoreError(f"{_TTL_ERROR}: must be -1 or greater")
        return ttl

    async def set(self, request: SetRequest) -> None:
        await self.transact([request])

    async def delete(self, request: DeleteRequest) -> None:
        await self.transact([request])

    async def transact(self, operations: Sequence[Operation]) -> None:
        if operations:
            await self._submit(lambda: self._db.apply(operations))

    async def _submit(self, work: Callable[[], T]) -> T:
        """Run ``work`` on the worker thread; SQLite errors become :class:`StoreError`."""
        if self._executor is None:
            raise RuntimeError("SqliteStateStore used before start()")
        future = self._executor.submit(self._db.call, work)
        try:
            return await asyncio.wrap_future(future)
        except sqlite3.Error as exc:
            raise StoreError(
                f"sqlite state store {self.spec.name!r}: {self._describe(exc)}"
            ) from exc

    def _describe(self, exc: sqlite3.Error) -> str:
        if str(exc) == "interrupted":
            return f"timed out after {self.settings.timeout:g}s"
        return str(exc)

    async def _cleanup_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.cleanup_interval)
            try:
                removed = await self._submit(self._db.purge_expired)
            except StoreError:
                logger.exception("state store %r: expired-row cleanup failed", self.spec.name)
                continue
            logger.debug("state store %r: removed %d expired rows", self.spec.name, removed)
