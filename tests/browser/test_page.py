"""The chat page in a real browser, against the whole system (both services, daca sidecars,
the bundled Redis, the offline model): chat with a streamed reply, watch a fact reach the
memory panel, get it recalled in a new session, switch back, forget; on a desktop and a phone.

Screenshots go to ``test-artifacts/browser/`` (the committed ones in ``docs/images/`` were
copied from there).
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import BrowserContext, Page, expect

from tests.browser.conftest import PHONE
from tests.engines import DacaEngine
from tests.integration.conftest import System, Tokens, run_system

pytestmark = [pytest.mark.redis, pytest.mark.browser, pytest.mark.timeout(180)]

# Records every text the newest reply showed: a node per delta (``textContent +=`` replaces the
# text node), so the list holds each state the page rendered, however the chunks were batched.
WATCH_REPLIES = """() => {
  window.replyTexts = [];
  new MutationObserver((records) => {
    for (const record of records) {
      const bubble = record.target.closest && record.target.closest(".message.assistant");
      if (!bubble || !record.target.classList.contains("text")) continue;
      for (const node of record.addedNodes) window.replyTexts.push(node.textContent);
    }
  }).observe(document.getElementById("messages"), { childList: true, subtree: true });
}"""

# Every control the user can reach has an accessible name.
UNNAMED_CONTROLS = """() => [...document.querySelectorAll("button, input, textarea, select")]
  .filter((el) => el.offsetParent !== null)
  .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute("aria-label")
                  && !el.textContent.trim())
  .map((el) => el.outerHTML)"""


def page_url(system: System) -> str:
    return str(system.chat.base_url.join("/ui"))


def watch_errors(page: Page) -> list[str]:
    """The page's script errors and console errors, collected as the test runs."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    return errors


async def sign_in(page: Page, user: str) -> None:
    await page.get_by_label("User").fill(user)
    await page.get_by_role("button", name="Start").click()
    await expect(page.locator("body")).to_have_attribute("data-ready", "yes")


async def say(page: Page, text: str) -> str:
    """Send ``text`` and wait for the reply to be complete; returns the reply."""
    await page.get_by_role("textbox", name="Message").fill(text)
    await page.get_by_role("button", name="Send").click()
    reply = page.locator(".message.assistant").last
    await expect(reply).to_have_attribute("data-state", "done")
    return await reply.locator(".text").inner_text()


async def confirm(page: Page) -> None:
    dialog = page.locator("dialog#confirm")
    await expect(dialog).to_be_visible()
    await dialog.get_by_role("button", name="Forget").click()
    await expect(dialog).to_be_hidden()


async def api_facts(system: System, user: str) -> list[dict[str, Any]]:
    answer = await system.chat.get(f"/memories/{user}")
    assert answer.status_code == 200, answer.text
    facts: list[dict[str, Any]] = answer.json()["facts"]
    return facts


async def test_a_conversation_in_the_page_is_streamed_remembered_and_forgotten(
    browser: BrowserContext, tmp_path: Path, redis_url: str, artifacts: Path
) -> None:
    async with run_system(tmp_path, redis_url, DacaEngine()) as system:
        page = await browser.new_page()
        errors = watch_errors(page)
        await page.goto(page_url(system))
        assert await page.evaluate(UNNAMED_CONTROLS) == []
        await sign_in(page, "ada")
        await page.evaluate(WATCH_REPLIES)

        # The reply streams in: the page showed it growing before the final event.
        reply = await say(page, "My favourite colour is teal.")
        shown = await page.evaluate("window.replyTexts")
        assert len(shown) >= 3, shown
        assert all(reply.startswith(part) for part in shown[:-1]), shown
        assert shown[-1] == reply
        first_session = await page.evaluate("localStorage.getItem('daca.session.ada')")
        assert first_session

        # The memory service absorbs the turn; the panel shows the fact and where it came from.
        fact = page.locator("#facts .fact", has_text="teal")
        await expect(fact).to_have_count(1, timeout=15_000)
        await expect(fact.locator(".meta")).to_contain_text(f"session {first_session[:8]}")
        await expect(page.locator("#history")).to_contain_text("My favourite colour is teal.")
        await page.screenshot(path=artifacts / "chat-desktop.png")

        # A new session: the agent recalls the fact, and says which memory it used.
        await page.get_by_role("button", name="New session").click()
        await expect(page.locator("#messages .message")).to_have_count(0)
        recalled = await say(page, "What is my favourite colour?")
        assert "teal" in recalled.lower(), recalled
        await expect(page.locator("#retrieved")).to_contain_text("teal")
        second_session = await page.evaluate("localStorage.getItem('daca.session.ada')")
        assert second_session and second_session != first_session
        await expect(page.locator("#session-list .session")).to_have_count(2, timeout=10_000)
        await page.screenshot(path=artifacts / "recall-desktop.png")

        # Back to the first session: its conversation comes back from the service.
        earlier = page.locator(f'#session-list li[data-session-id="{first_session}"] button')
        await earlier.click()
        await expect(earlier).to_have_attribute("aria-current", "true")
        await expect(page.locator("#messages .message.user .text")).to_have_text(
            ["My favourite colour is teal."]
        )
        await expect(page.locator("#messages .message.assistant .text")).to_have_text([reply])

        # Forget the fact, after the confirm: gone from the page and from the service.
        await fact.get_by_role("button", name="Forget the fact").click()
        await page.locator("dialog#confirm").get_by_role("button", name="Cancel").click()
        await expect(fact).to_have_count(1)
        await fact.get_by_role("button", name="Forget the fact").click()
        await confirm(page)
        await expect(fact).to_have_count(0)
        assert not [f for f in await api_facts(system, "ada") if "teal" in f["text"]]
        assert errors == []
        await page.close()


async def test_a_user_id_typed_while_the_page_starts_is_kept(
    browser: BrowserContext, tmp_path: Path, redis_url: str
) -> None:
    """The page asks ``GET /me`` who is chatting as it starts; a user id typed before the
    answer arrives is not wiped by it (it was, and Start then refused the empty field)."""
    async with run_system(tmp_path, redis_url, DacaEngine()) as system:
        page = await browser.new_page()
        held: list[Any] = []
        asked = asyncio.Event()

        async def hold(route: Any) -> None:
            held.append(route)
            asked.set()

        await page.route("**/me", hold)
        await page.goto(page_url(system))
        await page.get_by_label("User").fill("early")
        await asyncio.wait_for(asked.wait(), timeout=15)
        await held[0].continue_()
        await expect(page.locator("body")).to_have_attribute("data-started", "yes")
        await expect(page.get_by_label("User")).to_have_value("early")
        await page.get_by_role("button", name="Start").click()
        await expect(page.locator("body")).to_have_attribute("data-ready", "yes")
        await page.close()


async def test_forgetting_everything_empties_the_page_after_a_confirm(
    browser: BrowserContext, tmp_path: Path, redis_url: str
) -> None:
    async with run_system(tmp_path, redis_url, DacaEngine()) as system:
        page = await browser.new_page()
        errors = watch_errors(page)
        await page.goto(page_url(system))
        await sign_in(page, "bea")
        await say(page, "I live in Lisbon.")
        await expect(page.locator("#facts .fact", has_text="Lisbon")).to_have_count(1)
        await expect(page.locator("#session-list .session")).to_have_count(1)

        # Reloading keeps the user and the session.
        await page.reload()
        said = page.locator("#messages .message.user .text")
        await expect(said).to_have_text(["I live in Lisbon."])

        # A refused message says why in the page, and nothing is stored.
        await page.get_by_role("textbox", name="Message").fill("x" * 4001)
        await page.get_by_role("button", name="Send").click()
        refused = page.locator(".message.assistant").last
        await expect(refused).to_have_attribute("data-state", "failed")
        await expect(refused.locator(".error")).to_contain_text("the limit is 4000")
        await expect(page.locator("#status")).to_contain_text("nothing was stored")
        assert [e for e in errors if "status of 422" not in e] == [], errors
        errors.clear()  # Chromium logs the refused request itself

        await page.get_by_role("button", name="Forget everything about me").click()
        await confirm(page)
        await expect(page.locator("#status")).to_contain_text("Forgotten: 1 session")
        await expect(page.locator("#messages .message")).to_have_count(0)
        await expect(page.locator("#facts .fact")).to_have_count(0)
        await expect(page.locator("#session-list .session")).to_have_count(0)
        assert await api_facts(system, "bea") == []
        assert (await system.chat.get("/memories/bea/sessions")).json()["sessions"] == []
        assert errors == []
        await page.close()


async def test_on_a_phone_the_panels_open_over_the_chat(
    browser: BrowserContext, tmp_path: Path, redis_url: str, artifacts: Path
) -> None:
    async with run_system(tmp_path, redis_url, DacaEngine()) as system:
        page = await browser.new_page()
        await page.set_viewport_size(PHONE)
        errors = watch_errors(page)
        await page.goto(page_url(system))
        await sign_in(page, "cy")
        await say(page, "My dog's name is Pixel.")
        memory = page.locator("#memory")
        await expect(memory).to_be_hidden()
        no_sideways_scroll = "document.documentElement.scrollWidth <= window.innerWidth"
        assert await page.evaluate(no_sideways_scroll)
        await page.screenshot(path=artifacts / "chat-phone.png")

        toggle = page.get_by_role("button", name="Memory", exact=True)
        await toggle.click()
        await expect(toggle).to_have_attribute("aria-expanded", "true")
        await expect(memory).to_be_visible()
        await expect(memory.locator("#facts .fact", has_text="Pixel")).to_have_count(1)
        assert await page.evaluate(no_sideways_scroll)
        await page.screenshot(path=artifacts / "memory-phone.png")

        await page.get_by_role("button", name="Sessions", exact=True).click()
        await expect(memory).to_be_hidden()
        await expect(page.locator("#sessions")).to_be_visible()
        assert await page.evaluate(UNNAMED_CONTROLS) == []
        assert errors == []
        await page.close()


async def test_production_mode_asks_for_a_token_and_chats_as_its_user(
    browser: BrowserContext, tmp_path: Path, redis_url: str
) -> None:
    key = "dee-key-0123456789"
    access = {
        "DACA_MODE": "production",
        "AUTH_API_KEYS": f"dee:{hashlib.sha256(key.encode()).hexdigest()}",
    }
    async with run_system(tmp_path, redis_url, DacaEngine(), tokens=Tokens(), access=access) as (
        system
    ):
        page = await browser.new_page()
        await page.goto(page_url(system))
        token = page.get_by_label("Token")
        await expect(token).to_be_visible()
        await expect(page.get_by_role("textbox", name="Message")).to_be_disabled()

        await token.fill("not-the-key")
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.locator("#notice")).to_contain_text("The token was refused")
        await expect(page.get_by_role("textbox", name="Message")).to_be_disabled()

        await token.fill(key)
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.get_by_label("User")).to_have_value("dee")
        reply = await say(page, "I work as a pilot.")
        assert reply
        await expect(page.locator("#facts .fact", has_text="pilot")).to_have_count(1)
        # The token stays in this tab's session storage, not in local storage.
        assert await page.evaluate("sessionStorage.getItem('daca.token')") == key
        assert await page.evaluate("localStorage.getItem('daca.token')") is None
        # Without the token, the service refuses the same reads.
        anonymous = await system.chat.get("/memories/dee")
        assert anonymous.status_code == 401
        with_token = await system.chat.get(
            "/memories/dee", headers={"authorization": f"Bearer {key}"}
        )
        assert with_token.status_code == 200


async def test_the_page_and_its_assets_are_served_with_a_strict_policy(
    tmp_path: Path, redis_url: str
) -> None:
    """No browser needed: what the page's HTTP answers promise."""
    async with run_system(tmp_path, redis_url, DacaEngine()) as system:
        page = await system.chat.get("/ui")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        policy = page.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "script-src 'self'" in policy
        for asset, kind in (("app.js", "javascript"), ("app.css", "text/css")):
            answer = await system.chat.get(f"/ui/assets/{asset}")
            assert answer.status_code == 200 and kind in answer.headers["content-type"]
        assert (await system.chat.get("/ui/assets/missing.js")).status_code == 404
        # Every asset the page names is served by the service itself (no CDN).
        for line in page.text.splitlines():
            if "src=" in line or "href=" in line:
                assert "http:" not in line and "https:" not in line, line
        me = await system.chat.get("/me")
        assert me.json() == {"mode": "local", "user_id": None}
        assert httpx.codes.is_success(me.status_code)
