"""KeyedLocks: one holder per key, independent keys, no leftover locks."""

from __future__ import annotations

import asyncio

from daca.memory.keyedlock import KeyedLocks


async def test_one_holder_per_key_and_keys_are_independent() -> None:
    locks, inside, peak = KeyedLocks(), {"a": 0, "b": 0}, {"a": 0, "b": 0}

    async def work(key: str) -> None:
        async with locks.hold(key):
            inside[key] += 1
            peak[key] = max(peak[key], inside[key])
            await asyncio.sleep(0)
            inside[key] -= 1

    await asyncio.gather(*(work(key) for key in "abababab"))
    assert peak == {"a": 1, "b": 1}
    assert len(locks) == 0


async def test_lock_is_released_when_the_block_raises() -> None:
    locks = KeyedLocks()
    try:
        async with locks.hold("k"):
            raise ValueError("boom")
    except ValueError:
        pass
    async with asyncio.timeout(1), locks.hold("k"):
        pass
    assert len(locks) == 0
