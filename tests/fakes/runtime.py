"""Pieces of the daca runtime that the tests' in-process sidecars (``tests/memory`` and
``tests/chat`` ``fake_sidecar``) build the runtime's API app from."""

from __future__ import annotations

import secrets
import tempfile
import uuid
from pathlib import Path
from typing import cast

import aiohttp

from daca.runtime.invoke import Invoker
from daca.runtime.nameregistry import NameRegistry
from daca.runtime.resources import ComponentSpec


def component(name: str, kind: str, source: str = __file__) -> ComponentSpec:
    """A component ``name`` of type ``kind``, with no metadata."""
    return ComponentSpec(name=name, type=kind, version="v1", metadata={}, source=source)


def unconnected_invoker(app_id: str) -> Invoker:
    """The runtime's invoker, for an app without a channel and a name registry without peers.

    An invocation through it answers daprd's ``ERR_DIRECT_INVOKE`` (no app channel, or no such
    app-id) before it would open a connection, so it gets no HTTP session.
    """
    nowhere = NameRegistry(Path(tempfile.gettempdir()) / f"daca-no-peers-{uuid.uuid4().hex}")
    return Invoker(app_id, nowhere, cast(aiohttp.ClientSession, None), None, secrets.token_hex(16))
