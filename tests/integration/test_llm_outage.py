"""An LLM that fails, then hangs, loses no turn: history first, the summary once it answers.

The real summary writer and OpenAI client talk to a fake OpenAI-compatible server; both services
run on the runtime over Redis.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from daca.llm.settings import LLMSettings
from daca.llm.summary import LLMSummaryWriter
from tests.engines import DacaEngine
from tests.fakes.openai_server import FakeOpenAIServer, FakeReply, error_reply, text_reply
from tests.integration.conftest import run_system
from tests.integration.helpers import eventually, history, publish, turn_event

pytestmark = pytest.mark.redis


async def test_failing_then_hanging_llm_loses_no_turn(tmp_path: Path, redis_url: str) -> None:
    llm = FakeOpenAIServer(default=text_reply("u1 likes green tea."))
    llm.enqueue(error_reply(500), FakeReply(hang=True))
    settings = LLMSettings(
        _env_file=None, llm_base_url="http://placeholder/v1", llm_model="fake", llm_max_retries=0
    )
    with llm:
        settings = settings.model_copy(update={"llm_base_url": llm.base_url})
        writer = LLMSummaryWriter.from_settings(settings, timeout=0.5)
        async with run_system(tmp_path, redis_url, DacaEngine(), summary_writer=writer) as system:
            session = f"outage-{uuid.uuid4().hex[:6]}"
            for n in range(3):
                await publish(system, turn_event(session, n))

            async def stored() -> bool:
                return len(await history(system, session)) == 6

            await eventually(stored)  # every turn is stored while the LLM is failing

            async def summarised() -> bool:
                memory = (await system.memory.get("/memories/u1")).json()
                return memory["user_summary"] == "u1 likes green tea."

            await eventually(summarised, timeout=20)
            metrics = (await system.memory.get("/healthz")).json()["metrics"]
            await writer.aclose()
    assert len(llm.requests) >= 3  # the failure, the hang, then the call that answered
    assert metrics["summary_failures"] >= 2
    summary_input = llm.requests[-1].messages[-1]["content"]
    assert all(f"question {n}" in summary_input for n in range(3))  # nothing was skipped
