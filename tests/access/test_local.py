"""Local mode's guard, on a trivial app: who is this machine, and what is cross-site."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from daca.access.local import LocalOnly, own_addresses


def client(host: str = "127.0.0.1", extra: frozenset[str] = frozenset()) -> TestClient:
    app = FastAPI()

    @app.get("/")
    def root() -> dict[str, str]:
        return {"ok": "yes"}

    app.add_middleware(LocalOnly, extra_hosts=extra)
    return TestClient(app, base_url="http://127.0.0.1:8010", client=(host, 40000))


@pytest.mark.parametrize("peer", ["127.0.0.1", "127.5.6.7", "::1", *sorted(own_addresses())])
def test_this_machine_is_served(peer: str) -> None:
    assert client(peer).get("/").status_code == 200


@pytest.mark.parametrize("peer", ["10.1.2.3", "203.0.113.9", "2001:db8::9"])
def test_other_machines_are_refused(peer: str) -> None:
    answer = client(peer).get("/")
    assert answer.status_code == 403
    assert "serves only this machine" in answer.json()["detail"]


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"host": "localhost:8010"}, 200),
        ({"host": "[::1]:8010"}, 200),
        ({"host": "evil.example"}, 403),
        ({"host": "127.0.0.1.evil.example"}, 403),
        ({"origin": "http://localhost:3000"}, 200),
        ({"origin": "http://127.0.0.1:8010"}, 200),
        ({"origin": "https://evil.example"}, 403),
        ({"origin": "null"}, 403),
        ({"sec-fetch-site": "same-origin"}, 200),
        ({"sec-fetch-site": "cross-site"}, 403),
    ],
)
def test_host_origin_and_fetch_site(headers: dict[str, str], status: int) -> None:
    assert client().get("/", headers=headers).status_code == status


def test_allowed_hosts_extend_the_host_check() -> None:
    guarded = client(extra=frozenset({"chat.local"}))
    assert guarded.get("/", headers={"host": "chat.local:8010"}).status_code == 200
    assert guarded.get("/", headers={"host": "other.local"}).status_code == 403
