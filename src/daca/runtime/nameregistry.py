"""A local name registry: which app-id runs where, across runtime processes on one machine.

Self-hosted Dapr resolves app-ids with mDNS; here each sidecar writes a small JSON record under
``$DACA_HOME/apps/`` while it runs. Records of processes that are gone are ignored and pruned.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AppRecord:
    app_id: str
    host: str
    http_port: int  # the sidecar's HTTP API port
    app_port: int | None
    pid: int  # the runtime process that hosts the sidecar
    started_at: float
    app_command: str = ""
    app_pid: int | None = None
    #: A random secret that sidecars present to each other when forwarding an invocation.
    #: Records are written with mode 0600, so only the same user can read it.
    peer_token: str = ""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class NameRegistry:
    def __init__(self, home: Path) -> None:
        self.directory = home / "apps"
        #: Parsed records by app-id, with the file identity they were read from: a lookup per
        #: invocation costs a ``stat`` (and the liveness probe), not a read and a JSON parse.
        self._cache: dict[str, tuple[tuple[int, int, int], AppRecord]] = {}

    def _path(self, app_id: str) -> Path:
        return self.directory / f"{app_id}.json"

    def register(self, record: AppRecord) -> None:
        """Write (atomically) the record for ``record.app_id``, replacing any older one."""
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
        with os.fdopen(fd, "w") as handle:
            json.dump(asdict(record), handle)
        os.replace(tmp, self._path(record.app_id))

    def unregister(self, app_id: str, pid: int) -> None:
        """Remove the record if it is still ours (another process may have replaced it)."""
        record = self.lookup(app_id)
        if record is not None and record.pid == pid:
            self._path(app_id).unlink(missing_ok=True)

    def lookup(self, app_id: str) -> AppRecord | None:
        """The live record for ``app_id``, or ``None``."""
        path = self._path(app_id)
        try:
            stat = path.stat()
            identity = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
            cached = self._cache.get(app_id)
            if cached is not None and cached[0] == identity:
                record = cached[1]
            else:
                record = AppRecord(**json.loads(path.read_text()))
                self._cache[app_id] = (identity, record)
        except (FileNotFoundError, ValueError, TypeError):
            self._cache.pop(app_id, None)
            return None
        if not _alive(record.pid):
            logger.debug("pruning stale registry record for %s (pid %d)", app_id, record.pid)
            self._path(app_id).unlink(missing_ok=True)
            return None
        return record

    def list(self) -> list[AppRecord]:
        if not self.directory.is_dir():
            return []
        records = (self.lookup(path.stem) for path in sorted(self.directory.glob("*.json")))
        return [record for record in records if record is not None]
