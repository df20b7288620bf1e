"""daprd's ``--max-body-size``: a request body is read up to the limit, never past it.

daprd wraps every request body of its HTTP API in a reader that fails with ``stream too large``
once more than the limit has been read (``MaxBodySizeMiddleware``, dapr/kit
``streams.LimitReadCloser``); each endpoint answers that failure as it answers any failure to
read its body (:class:`BodyTooLargeError` carries the part read, for the JSON endpoints, whose Go
decoder may have finished before the limit). Nothing past the limit is ever buffered.

When the answer starts and the app has left part of the body unread, Go's HTTP server reads and
discards up to 256 KiB of it to keep the connection; when more is left it answers with
``Connection: close`` and closes the connection instead. :class:`BodyLimit` does the same.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from daca.runtime.godecode import TOO_LARGE

__all__ = ["TOO_LARGE", "BodyLimit", "BodyTooLargeError", "read_body"]

#: Go's ``maxPostHandlerReadBytes``: what the server discards of a body the handler left.
DISCARD_LIMIT = 256 << 10


class BodyTooLargeError(Exception):
    """The body is longer than the limit; ``head`` is its first ``limit`` bytes, when known."""

    def __init__(self, head: bytes = b"") -> None:
        super().__init__(TOO_LARGE)
        self.head = head


async def read_body(request: Request) -> bytes:
    """The whole body of ``request``, or :class:`BodyTooLargeError` with the part read."""
    chunks: list[bytes] = []
    try:
        async for chunk in request.stream():
            chunks.append(chunk)
    except BodyTooLargeError:
        raise BodyTooLargeError(b"".join(chunks)) from None
    return b"".join(chunks)


class BodyLimit:
    """Limits every request body to ``limit`` bytes (none when ``limit`` <= 0)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.limit <= 0:
            await self.app(scope, receive, send)
            return
        body = _LimitedBody(receive, self.limit, _declared_length(scope))
        await self.app(scope, body.receive, body.sender(send))


def _declared_length(scope: Scope) -> int | None:
    """The request's ``Content-Length``; 0 without one and without a chunked body."""
    headers = dict(scope["headers"])
    if b"transfer-encoding" in headers:
        return None
    length = headers.get(b"content-length", b"0")
    return int(length) if length.isdigit() else None


class _LimitedBody:
    """One request's body: counted as it is received, cut at the limit."""

    def __init__(self, receive: Receive, limit: int, declared: int | None) -> None:
        self._receive = receive
        self._limit = limit
        self._declared = declared
        self._received = 0
        self._over = False
        self._done = declared == 0

    async def receive(self) -> Message:
        if self._over:
            raise BodyTooLargeError()
        message = await self._next()
        if self._received <= self._limit:
            return message
        self._over = True  # the part up to the limit now; the error on the next read
        body: bytes = message["body"]
        return {**message, "body": body[: len(body) - (self._received - self._limit)]}

    async def _next(self) -> Message:
        message = await self._receive()
        if message["type"] != "http.request":
            self._done = True
            return message
        self._received += len(message.get("body", b""))
        self._done = not message.get("more_body", False)
        return {
            **message,
            "more_body": message.get("more_body", False) or self._received > self._limit,
        }

    def sender(self, send: Send) -> Send:
        async def send_answer(message: Message) -> None:
            if message["type"] == "http.response.start" and not await self._discard_rest():
                message = {**message, "headers": [*message.get("headers", []), _CLOSE]}
            await send(message)

        return send_answer

    async def _discard_rest(self) -> bool:
        """Read what is left of the body, if it is at most 256 KiB; whether it all was read."""
        if self._declared is not None and self._declared - self._received > DISCARD_LIMIT:
            return self._done
        start = self._received
        while not self._done and self._received - start <= DISCARD_LIMIT:
            await self._next()
        return self._done


_CLOSE = (b"connection", b"close")
