"""``daca chat``: a terminal chat against a running chat service.

Replies stream in as they are written (``POST /chat/stream``). Lines starting with ``/`` are
commands: ``/new`` starts a new session, ``/memory`` prints what the agent knows about the user
(summary and facts, with where each came from), ``/forget`` forgets everything after a
confirmation, ``/help`` lists them. The arrow keys recall earlier lines (``readline``); Ctrl-D or
Ctrl-C leaves.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import click
import httpx

HELP = "/new: a new session   /memory: what I know   /forget: forget everything   Ctrl-D: quit"


class ServiceError(Exception):
    """The chat service refused a request or could not be reached; the message says why."""


def _detail(response: httpx.Response) -> str:
    """The ``detail`` of an error answer, or its status."""
    try:
        detail = response.json().get("detail")
    except ValueError:
        detail = None
    return f"{response.status_code}: {detail or response.reason_phrase}"


@dataclass
class ChatClient:
    """The chat service's routes the terminal chat uses."""

    http: httpx.Client
    user: str

    def stream(self, text: str, session: str | None) -> Iterator[tuple[str, dict[str, Any]]]:
        """The events of one streamed turn."""
        body: dict[str, Any] = {"user_id": self.user, "text": text}
        if session:
            body["metadata"] = {"session_id": session}
        with self.http.stream("POST", "/chat/stream", json=body) as response:
            if response.status_code != 200:
                response.read()
                raise ServiceError(_detail(response))
            event = ""
            for line in response.iter_lines():
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    yield event, json.loads(line.removeprefix("data: "))

    def memory(self) -> dict[str, Any]:
        """``GET /memories/{user}``."""
        response = self.http.get(f"/memories/{self.user}")
        if response.status_code != 200:
            raise ServiceError(_detail(response))
        answer: dict[str, Any] = response.json()
        return answer

    def forget(self) -> list[str]:
        """``DELETE /memories/{user}``: the sessions forgotten."""
        response = self.http.delete(f"/memories/{self.user}")
        if response.status_code != 200:
            raise ServiceError(_detail(response))
        sessions: list[str] = response.json()["sessions"]
        return sessions


@dataclass
class TerminalChat:
    """The loop: read a line, run a command or stream the reply."""

    client: ChatClient
    session: str | None
    read: Callable[[str], str] = input
    echo: Callable[..., None] = click.echo
    confirm: Callable[[str], bool] = click.confirm

    def run(self) -> int:
        """Chat until end of input or Ctrl-C; the exit status."""
        self.echo(f"Chatting as {self.client.user}. {HELP}")
        while True:
            try:
                line = self.read("you> ").strip()
            except (EOFError, KeyboardInterrupt):
                self.echo("")
                return 0
            try:
                self._handle(line)
            except KeyboardInterrupt:
                self.echo("\n(interrupted)")
            except ServiceError as exc:
                self.echo(f"error {exc}")
            except httpx.HTTPError as exc:
                self.echo(f"error: {type(exc).__name__} talking to the chat service")

    def _handle(self, line: str) -> None:
        if not line:
            return
        commands: dict[str, Callable[[], None]] = {
            "/new": self._new, "/memory": self._memory, "/forget": self._forget,
            "/help": self._help,
        }  # fmt: skip
        if line in commands:
            commands[line]()
        elif line.startswith("/"):
            self.echo(f"unknown command {line}; {HELP}")
        else:
            self._say(line)

    def _say(self, text: str) -> None:
        self.echo("agent> ", nl=False)
        for event, data in self.client.stream(text, self.session):
            if event == "delta":
                self.echo(data["text"], nl=False)
            elif event == "tool_call":
                self.echo(f"[{data['name']}] ", nl=False)
            elif event == "done":
                self.session = data["metadata"]["session_id"]
                self.echo("")
            elif event == "error":
                self.echo(f"\nerror {data['status']}: {data['detail']}")

    def _help(self) -> None:
        self.echo(HELP)

    def _new(self) -> None:
        self.session = None
        self.echo("(a new session starts with your next message)")

    def _memory(self) -> None:
        memory = self.client.memory()
        self.echo(f"summary: {memory.get('user_summary') or '(none yet)'}")
        facts = memory.get("facts") or []
        if not facts:
            self.echo("facts: (none yet)")
        for fact in facts:
            when = fact["timestamp"][:10]
            self.echo(
                f"- {fact['text']}  ({when}, session {fact['session_id']}, {fact['fact_id']})"
            )

    def _forget(self) -> None:
        if not self.confirm(f"Forget everything stored about {self.client.user}?"):
            self.echo("(nothing forgotten)")
            return
        sessions = self.client.forget()
        self.session = None
        count = f"{len(sessions)} session" + ("" if len(sessions) == 1 else "s")
        self.echo(f"forgotten: {count} and everything known about you")


def chat_command(url: str, user: str, session: str | None, token: str | None) -> int:
    """Run the terminal chat; its exit status."""
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its request lines are not chat
    with contextlib.suppress(ImportError):  # not on every platform
        import readline  # noqa: F401  (arrow-key history for input())
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    timeout = httpx.Timeout(10.0, read=120.0)
    with httpx.Client(base_url=url, headers=headers, timeout=timeout, trust_env=False) as http:
        return TerminalChat(ChatClient(http, user), session).run()
