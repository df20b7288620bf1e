"""Children that end with their parent: the Linux parent-death signal.

A child started with ``preexec_fn=die_with_parent`` gets SIGTERM when the process that started
it dies, however it dies (SIGKILL included), so no app or bundled redis-server outlives a
killed ``daca`` and keeps its ports busy. Elsewhere than Linux it does nothing; there a clean
stop still ends every child, a SIGKILL of the supervisor does not.
"""

from __future__ import annotations

import ctypes
import signal
import sys
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1


def _set_parent_death_signal() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


die_with_parent: Callable[[], None] | None = (
    _set_parent_death_signal if sys.platform == "linux" else None
)
"""A ``preexec_fn`` for ``subprocess``/``asyncio`` children (``None`` where unsupported)."""
