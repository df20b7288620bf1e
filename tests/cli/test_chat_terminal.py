"""``daca chat`` driven through a pseudo-terminal against a running chat service."""

from __future__ import annotations

import asyncio
import codecs
import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from daca.chat.app import create_app
from daca.llm.offline import OfflineModel
from tests.chat.conftest import chat_settings
from tests.chat.fake_sidecar import FakeSidecar
from tests.cli.fakes import wait_until
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
        # Not a process-group leader, so setsid does not fork: ``self.process.pid`` is the program.
        self.process = subprocess.Popen(
            ["setsid", "-c", *argv], stdin=slave, stdout=slave, stderr=slave, env=env,
            close_fds=True,
        )  # fmt: skip
        os.close(slave)
        self.screen = ""
        #: Where the last ``expect`` matched: the next one looks from here, not from the end of
        #: what was read (one read often brings the expected text and the next prompt together).
        self.seen = 0
        self._decode = codecs.getincrementaldecoder("utf-8")(errors="replace").decode

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def press_ctrl_c(self) -> None:
        """Ctrl-C once the program waits in its read of the terminal.

        ``input()`` under readline shows the prompt and only then ``select()``s on the terminal;
        a SIGINT handled in between interrupts nothing, so it is noticed only after the next key
        (CPython's ``readline_until_enter_or_signal``). A person is never that fast; a test that
        presses the key as soon as the prompt shows is, on a loaded machine.
        """
        wait_until(lambda: _process_state(self.process.pid) == "S", timeout=30.0)
        self.type("\x03")

    def expect(self, text: str, timeout: float = 90.0) -> str:
        """Read until ``text`` appears after the last match; the output from there up to it."""
        deadline = time.monotonic() + timeout
        while text not in self.screen[self.seen :]:
            left = deadline - time.monotonic()
            assert left > 0, f"{text!r} not shown; screen since the last match:\n{self._rest()}"
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:  # EIO: the process closed the terminal
                    break
                if not chunk:
                    break
                self.screen += self._decode(chunk)
        found = self.screen.find(text, self.seen)
        assert found >= 0, f"{text!r} not shown before the terminal closed:\n{self._rest()}"
        end = found + len(text)
        shown, self.seen = self.screen[self.seen : end], end
        return shown

    def _rest(self) -> str:
        return self.screen[self.seen :]

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        os.close(self.master)


def _process_state(pid: int) -> str:
    """``/proc/<pid>/stat``'s state: ``S`` while it sleeps, e.g. blocked reading the terminal."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0]


@pytest.fixture
async def chat_url() -> AsyncIterator[str]:
    app = create_app(chat_settings(), model=OfflineModel(), dapr_transport=FakeSidecar().transport)
    async with serve(app) as port:
        yield f"http://127.0.0.1:{port}"


def test_text_read_together_with_what_an_earlier_expect_matched_is_found() -> None:
    """The prompt after a message often comes in the same read as the message."""
    terminal = Terminal("sh", "-c", "printf 'a new session starts\\nyou> '; read line")
    try:
        assert terminal.expect("a new session starts", timeout=10) == "a new session starts"
        assert terminal.expect("you> ", timeout=10) == "\r\nyou> "
        terminal.type("\r")
        assert terminal.process.wait(timeout=10) == 0
    finally:
        terminal.close()


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
            terminal.press_ctrl_c()
            return terminal.process.wait(timeout=10)
        finally:
            terminal.close()

    assert await asyncio.to_thread(session) == 0
