"""The garbage collector and a long-running server's start-up heap.

A service has built most of its objects before it serves its first request: the modules,
classes and schemas of FastAPI, pydantic, the openai SDK and the Agents SDK (which imports MCP's
server too), several hundred thousand objects that live as long as the process. Every full
collection walks them all again, and the allocations of a busy request (a search parses
a thousand turns) trigger one now and then: measured with ``bench/search_bench.py``, that
put a warm search's p99 at about 160 ms against a median of 15 ms, and at about 17 ms with the
collector off. ``freeze_startup_heap`` collects once, then moves every object alive into the
collector's permanent generation (``gc.freeze``), so later collections walk only what the
process allocated since. Objects still die of their reference counts; only a cycle among frozen
objects, made garbage later, would stay (start-up objects are not expected to become garbage).
"""

from __future__ import annotations

import gc
import logging

logger = logging.getLogger(__name__)

_frozen = False


def freeze_startup_heap() -> None:
    """Collect, then freeze every object alive: once per process (the first server to finish
    starting; two sidecars in one process, or the apps a test suite starts, freeze once)."""
    global _frozen
    if _frozen:
        return
    _frozen = True
    gc.collect()
    gc.freeze()
    logger.debug("froze %d start-up objects out of garbage collection", gc.get_freeze_count())
