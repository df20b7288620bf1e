"""A service freezes its start-up heap when it has started (``daca.heap``).

Run in a fresh interpreter: the test suite's own process has started many apps before."""

from __future__ import annotations

import json
import subprocess
import sys

PROGRAM = """
import asyncio, gc, json
from daca.memory.app import create_app

async def main():
    before = gc.get_freeze_count()
    app = create_app()
    async with app.router.lifespan_context(app):
        print(json.dumps([before, gc.get_freeze_count()]))

asyncio.run(main())
"""


def test_the_memory_service_freezes_its_start_up_heap() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=120, check=True
    )
    before, started = json.loads(done.stdout.strip().splitlines()[-1])
    assert before == 0
    assert started > 10_000  # the imported frameworks' objects, at least
