"""The local name registry: what a lookup sees after each change of the records."""

from __future__ import annotations

import os
from pathlib import Path

from daca.runtime.nameregistry import AppRecord, NameRegistry


def record(port: int, pid: int | None = None) -> AppRecord:
    return AppRecord("app", "127.0.0.1", port, None, pid or os.getpid(), 0.0)


def test_a_lookup_sees_every_change_of_the_record(tmp_path: Path) -> None:
    writer, reader = NameRegistry(tmp_path), NameRegistry(tmp_path)
    assert reader.lookup("app") is None
    writer.register(record(3500))
    assert reader.lookup("app") == record(3500)
    assert reader.lookup("app") == record(3500)  # the same file: from the cache
    writer.register(record(3600))  # another process re-registered the app
    assert reader.lookup("app") == record(3600)
    writer.unregister("app", os.getpid())
    assert reader.lookup("app") is None


def test_a_record_of_a_process_that_is_gone_is_pruned(tmp_path: Path) -> None:
    registry = NameRegistry(tmp_path)
    registry.register(record(3500, pid=2**22 + 12345))  # above Linux's pid_max: never alive
    assert registry.lookup("app") is None
    assert not (tmp_path / "apps" / "app.json").exists()
