"""The console as a contact-centre desk, driven in Chromium as agents use it: two agents ring
at once and one answers, the caller's keys and the assistant's handover summary show in the
conversation, the agent mutes, hangs up, wraps up, and finds the call in the history.

Screenshots of the main screens go to ``artifacts/console/`` (ignored by git); a few are
copied into docs/img/ for docs/service.md."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.browser_support import CHROMIUM, CHROMIUM_ARGS

from .agent import until
from .conftest import Running, running_service
from .test_console_browser import LOOPBACK_ONLY, sign_in, write_tone

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "console"

# The page believes it is in a background tab when ``window.testHidden`` is set, and keeps
# every notification it raises (the browser's own Notification, observed, not replaced).
BACKGROUND_TAB = """
(() => {
  window.testHidden = false;
  window.notifications = [];
  Object.defineProperty(document, "hidden", { get: () => window.testHidden });
  Object.defineProperty(document, "visibilityState", {
    get: () => (window.testHidden ? "hidden" : "visible"),
  });
  const Native = window.Notification;
  if (Native) {
    window.Notification = class extends Native {
      constructor(title, options) {
        super(title, options);
        window.notifications.push({ title, body: (options && options.body) || "" });
      }
    };
  }
})();
"""

NewPage = Callable[[], Awaitable[Any]]


@pytest.fixture
async def new_page(tmp_path: Path) -> AsyncIterator[NewPage]:
    """Opens pages in separate browser profiles (one per agent) of one Chromium."""
    playwright_api = pytest.importorskip("playwright.async_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed")
    wav = tmp_path / "agent-voice.wav"
    write_tone(wav, seconds=30.0)
    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[*CHROMIUM_ARGS, f"--use-file-for-fake-audio-capture={wav}"],
        )

        async def open_page() -> Any:
            context = await browser.new_context(viewport={"width": 1280, "height": 860})
            await context.grant_permissions(["notifications", "microphone"])
            await context.add_init_script(LOOPBACK_ONLY)
            await context.add_init_script(BACKGROUND_TAB)
            return await context.new_page()

        try:
            yield open_page
        finally:
            await browser.close()


async def screenshot(page: Any, name: str, **options: Any) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), **options)


async def ring_level(page: Any) -> float:
    return float(await page.evaluate("relay.ringLevel()"))


async def test_two_agents_ring_one_answers_keys_mute_wrap_up_and_history(
    running: Running, new_page: NewPage
) -> None:
    simulator = running.service.simulator
    assert simulator is not None
    alice, bob = await new_page(), await new_page()
    await sign_in(alice, running.url, "alice", "wonderland")
    await sign_in(bob, running.url, "bob", "builder")
    await bob.evaluate("window.testHidden = true")  # Bob's console is a background tab

    call_id = await simulator.place_call(user="4915112345678", name="Maria Lopez", audio="tone")
    card = f'#queue [data-call-id="{call_id}"]'
    for page in (alice, bob):
        await page.locator(f"{card}.needs-agent").wait_for(timeout=20_000)
        assert await page.inner_text(f"{card} .caller-name") == "Maria Lopez"
        assert await page.inner_text(f"{card} .number") == "+4915112345678"
        assert await page.text_content(f"{card} .direction") == "Incoming"
        await page.wait_for_function("() => relay.ringing", timeout=10_000)
    # Both consoles ring out loud, and the title flashes the caller's name.
    await until(lambda: _louder(alice), timeout=10, what="ring at alice")
    await until(lambda: _louder(bob), timeout=10, what="ring at bob")
    await bob.wait_for_function("() => document.title.includes('Maria Lopez is waiting')")
    # Bob's tab is hidden: he got a notification; Alice is looking, she did not.
    notes = await bob.evaluate("window.notifications")
    assert [n["title"] for n in notes] == ["Call waiting: Maria Lopez"]
    assert await alice.evaluate("window.notifications") == []
    await bob.wait_for_function(
        f"() => /waiting \\d:\\d\\d/.test(document.querySelector('{card} .timer.wait').textContent)"
    )
    await screenshot(bob, "queue-ringing")

    # Alice answers: the ringing stops on both consoles, Bob sees who has the call.
    await alice.click(f"{card} button.answer")
    await alice.wait_for_function(
        "() => document.querySelector('#status').textContent.includes('connected')",
        timeout=30_000,
    )
    for page in (alice, bob):
        await page.wait_for_function("() => !relay.ringing", timeout=10_000)
        await page.wait_for_function("() => relay.ringLevel() === 0", timeout=10_000)
    await bob.locator(f"{card} .state:text-is('With alice')").wait_for(timeout=10_000)
    assert await bob.locator(f"{card} button.answer").count() == 0
    assert await alice.get_attribute("#current-state", "data-state") == "human"
    assert await alice.inner_text("#current-caller") == "Maria Lopez"

    # The simulated caller presses keys from the console's simulator panel.
    sim_call = simulator.calls[call_id]
    await until(lambda: sim_call.peer.loud_frames >= 50, timeout=30, what="alice heard by caller")
    await alice.select_option("#sim-call", call_id)
    await alice.fill("#sim-keys", "4711#")
    await alice.click("#sim-press")
    keys = alice.locator(f'#transcripts [data-call-id="{call_id}"] p.keys')
    await keys.locator("kbd:text-is('4711 #')").wait_for(timeout=30_000)
    assert await keys.count() == 1, "one entry, not one line per digit"
    assert "Maria Lopez" in await keys.inner_text()
    assert "for alice" in await keys.inner_text()
    await screenshot(alice, "on-a-call")

    # Mute: the caller stops hearing Alice; unmute: she is heard again.
    await alice.click("#mute")
    assert await alice.get_attribute("#mute", "aria-pressed") == "true"
    await asyncio.sleep(1.0)  # packets already on their way
    before = sim_call.peer.loud_frames
    await asyncio.sleep(2.0)
    assert sim_call.peer.loud_frames - before < 5, "the caller still hears a muted agent"
    await alice.click("#mute")
    await until(lambda: sim_call.peer.loud_frames > before + 50, timeout=20, what="unmuted")

    # Hang up, then wrap up: the disposition is stored and shown in the history.
    await alice.click("#hangup")
    await alice.locator("#wrapup:not([hidden])").wait_for(timeout=30_000)
    assert await alice.inner_text("#wrapup-caller") == "Maria Lopez"
    await alice.select_option("#wrapup-code", "resolved")
    await alice.fill("#wrapup-note", "Visit booked for Monday")
    await screenshot(alice, "wrap-up")
    await alice.click("#wrapup-save")
    await alice.locator("#wrapup[hidden]").wait_for(state="attached", timeout=10_000)
    record = await running.service.storage.find_call(call_id)
    assert record is not None
    row = alice.locator(f'#history tr[data-id="{record.id}"]')
    await row.locator("td.disposition:text-is('resolved')").wait_for(timeout=10_000)
    assert await row.locator("td.handled-by").inner_text() == "alice"
    assert await row.locator("td.ended").inner_text() == "alice hung up"
    assert await row.locator("td.direction").text_content() == "Incoming"
    assert await row.locator(".outcome").inner_text() == "answered"
    assert ":" in await row.locator("td.duration").inner_text()

    # Filters: by number (part of it), by outcome, by agent.
    await alice.fill("#filter-number", "12345")
    await alice.click("#filter-apply")
    await row.wait_for(timeout=10_000)
    await alice.select_option("#filter-outcome", "missed")
    await alice.click("#filter-apply")
    await alice.locator("#no-history:not([hidden])").wait_for(timeout=10_000)
    await alice.select_option("#filter-outcome", "")
    await alice.select_option("#filter-agent", "bob")
    await alice.click("#filter-apply")
    await alice.locator("#no-history:not([hidden])").wait_for(timeout=10_000)
    await alice.select_option("#filter-agent", "alice")
    await alice.click("#filter-apply")
    await row.wait_for(timeout=10_000)

    await row.locator("a").click()
    detail = alice.locator("#detail")
    await detail.locator(".stored-transcript p.keys").wait_for(timeout=10_000)
    assert "pressed 4711 #" in await detail.locator(".stored-transcript p.keys").inner_text()
    assert await detail.locator(".detail-code").input_value() == "resolved"
    assert await detail.locator(".detail-note").input_value() == "Visit booked for Monday"
    await screenshot(alice, "history", full_page=True)


async def _louder(page: Any) -> bool:
    return await ring_level(page) > 0.01


async def test_the_assistant_hands_over_with_a_summary_and_takes_the_call_back(
    tmp_path: Path, new_page: NewPage
) -> None:
    environ = {"ASSISTANT_ENABLED": "on", "TRANSCRIPTION_ENABLED": "on"}
    async with running_service(tmp_path, **environ) as running:
        page = await new_page()
        await sign_in(page, running.url, "alice", "wonderland")
        # The demo's simulated caller gives a reference number, then asks for a person.
        await page.click("#simulate")
        card = page.locator("#queue .call-card").first
        await card.wait_for(timeout=20_000)
        call_id = await card.get_attribute("data-call-id")
        block = f'#transcripts [data-call-id="{call_id}"]'
        await page.locator(
            f"#queue [data-call-id='{call_id}'] .state:text-is('AI assistant')"
        ).wait_for(timeout=30_000)
        assert await page.inner_text(f"#queue [data-call-id='{call_id}'] .ai-indicator") == "AI on"
        tool = page.locator(f"{block} p.tool").first
        await tool.wait_for(timeout=60_000)
        tool_text = await tool.locator(".text").inner_text()
        assert tool_text.startswith("Looked up case 12345"), tool_text
        assert "{" not in tool_text
        # The assistant says what it found as a sentence, not JSON.
        said = page.locator(f"{block} p.seg.speaker-assistant .text")
        await page.wait_for_function(
            f"() => [...document.querySelectorAll('{block} p.seg.speaker-assistant .text')]"
            ".some((p) => p.textContent.includes('I found your case'))",
            timeout=30_000,
        )
        assert not any("{" in text for text in await said.all_inner_texts())

        # The transfer: the call waits for a person, with the assistant's summary.
        waiting = page.locator(f"#queue [data-call-id='{call_id}'].needs-agent")
        await waiting.wait_for(timeout=60_000)
        summary = page.locator(f"{block} .handover .summary")
        await summary.wait_for(timeout=10_000)
        summary_text = await summary.inner_text()
        assert "asked to speak to a person" in summary_text
        assert "Case 12345: closed" in summary_text
        await page.wait_for_function("() => relay.ringing", timeout=10_000)
        await screenshot(page, "handover-waiting")

        await waiting.locator("button.answer").click()
        await page.wait_for_selector("#handback:not([hidden])", timeout=30_000)
        await page.wait_for_function(
            "() => document.querySelector('#status').textContent.includes('connected')",
            timeout=30_000,
        )
        assert await page.inner_text(f"{block} .handover .summary") == summary_text
        await screenshot(page, "handover-answered")

        # Hand back: the assistant continues, it does not greet the caller a second time.
        greetings = await _count_said(page, block, "How can I help you today")
        await page.click("#handback")
        await page.wait_for_function("() => relay.pc === null", timeout=30_000)
        await page.wait_for_function(
            f"() => [...document.querySelectorAll('{block} p.seg.speaker-assistant .text')]"
            ".some((p) => p.textContent.includes('back with you'))",
            timeout=30_000,
        )
        assert await _count_said(page, block, "How can I help you today") == greetings


async def _count_said(page: Any, block: str, words: str) -> int:
    return int(
        await page.evaluate(
            f"() => [...document.querySelectorAll('{block} p.seg.speaker-assistant .text')]"
            f".filter((p) => p.textContent.includes({words!r})).length"
        )
    )


async def test_a_supervisor_sees_every_leg_s_quality_and_listens_in_silently(
    tmp_path: Path, new_page: NewPage
) -> None:
    async with running_service(tmp_path, RELAY_SUPERVISORS="sam:overseer") as running:
        simulator = running.service.simulator
        assert simulator is not None
        alice, sam = await new_page(), await new_page()
        await sign_in(alice, running.url, "alice", "wonderland")
        await sign_in(sam, running.url, "sam", "overseer")
        assert await alice.locator("#supervision").is_hidden(), "agents see no supervision"
        await sam.locator("#supervision").wait_for()

        call_id = await simulator.place_call(user="447700900123", name="Aisha Khan", audio="tone")
        await alice.click(f'#queue [data-call-id="{call_id}"] button.answer')
        await alice.wait_for_function(
            "() => document.querySelector('#status').textContent.includes('connected')",
            timeout=30_000,
        )
        quality = f'#quality [data-call-id="{call_id}"]'
        # Both legs, with figures measured on them, refreshed every second.
        for leg in ("whatsapp", "browser"):
            rtt = f"{quality} tr[data-leg={leg}] td:nth-child(3)"
            await sam.wait_for_function(
                f"() => /ms$/.test(document.querySelector('{rtt}')?.textContent || '')",
                timeout=30_000,
            )
        loss = await sam.inner_text(f"{quality} tr[data-leg=whatsapp] td:nth-child(4)")
        assert loss.endswith("%"), loss

        sim_call = simulator.calls[call_id]
        heard_before = sim_call.peer.loud_frames
        await sam.click(f"{quality} button.listen")
        # Sam hears both sides: the caller's tone and Alice's voice.
        await sam.wait_for_function(
            "async () => { const e = await relay.listenEnergy();"
            " return e.length === 2 && e.every((v) => v > 0.01); }",
            timeout=30_000,
        )
        await alice.locator(f'#queue [data-call-id="{call_id}"]').wait_for()
        await sam.locator(f"{quality} tr[data-leg=listen-sam]").wait_for(timeout=10_000)
        # Silently: Sam's browser sends nothing, and the caller still hears Alice.
        assert await sam.evaluate("relay.listenPc.getSenders().filter((s) => s.track).length") == 0
        listening = f"{quality} tr[data-leg=listen-sam] td:nth-child(2)"
        await sam.wait_for_function(
            f"() => document.querySelector('{listening}')?.textContent === 'connected'"
        )
        await until(lambda: sim_call.peer.loud_frames > heard_before + 50, what="alice heard")
        await screenshot(sam, "supervisor")

        await sam.click(f"{quality} button.stop-listen")
        await sam.locator(f"{quality} tr[data-leg=listen-sam]").wait_for(
            state="detached", timeout=10_000
        )
        await alice.click("#hangup")
        await sam.locator(quality).wait_for(state="detached", timeout=30_000)


async def test_hold_keypad_and_transfer_to_another_agent(
    running: Running, new_page: NewPage
) -> None:
    simulator = running.service.simulator
    assert simulator is not None
    alice, bob = await new_page(), await new_page()
    await sign_in(alice, running.url, "alice", "wonderland")
    await sign_in(bob, running.url, "bob", "builder")
    call_id = await simulator.place_call(user="4917623456789", name="Jonas Berg", audio="tone")
    card = f'#queue [data-call-id="{call_id}"]'
    await alice.click(f"{card} button.answer")
    await alice.wait_for_function(
        "() => document.querySelector('#status').textContent.includes('connected')",
        timeout=30_000,
    )
    sim_call = simulator.calls[call_id]
    await until(lambda: sim_call.peer.loud_frames >= 50, timeout=30, what="alice heard")
    # Only what works now: no hand-back (the assistant is off), no resume (not on hold).
    for shown in ("#hold", "#keypad-toggle", "#transfer-wrap", "#hangup", "#mute"):
        assert await alice.locator(shown).is_visible(), shown
    for hidden in ("#resume", "#handback"):
        assert await alice.locator(hidden).is_hidden(), hidden

    # The keypad sends RFC 4733 tones the caller's phone receives.
    await alice.click("#keypad-toggle")
    for digit in "12#":
        await alice.click(f"#keypad [data-digit='{digit}']")
    await until(lambda: sim_call.peer.keys_heard == ["1", "2", "#"], timeout=20, what="keys")
    await alice.locator(f'#transcripts [data-call-id="{call_id}"] p.keys-sent').first.wait_for()

    # Hold: with Alice muted the caller hears nothing of her, yet hears the hold music.
    await alice.click("#mute")
    await asyncio.sleep(1.0)
    muted_at = sim_call.peer.loud_frames
    await asyncio.sleep(1.5)
    assert sim_call.peer.loud_frames - muted_at < 5
    await alice.click("#hold")
    await alice.wait_for_selector("#current-state[data-state=held]", timeout=10_000)
    assert await alice.locator("#resume").is_visible()
    assert await alice.locator("#hold").is_hidden()
    assert await bob.inner_text(f"{card} .state") == "On hold by alice"
    held_at = sim_call.peer.loud_frames
    await until(lambda: sim_call.peer.loud_frames > held_at + 50, timeout=20, what="hold music")
    await screenshot(alice, "on-hold")
    await alice.click("#resume")
    await alice.wait_for_selector("#current-state[data-state=human]", timeout=10_000)
    await alice.click("#mute")  # unmuted again

    # Transfer to Bob: Alice's leg closes, the caller hears hold music, only Bob rings.
    await alice.select_option("#transfer-to", "bob")
    await alice.click("#transfer")
    await alice.wait_for_function("() => relay.pc === null", timeout=20_000)
    assert "Transferred to bob" in await alice.inner_text("#status")
    await alice.locator("#wrapup:not([hidden])").wait_for()
    await bob.locator(f"{card}.needs-agent").wait_for(timeout=10_000)
    await bob.wait_for_function("() => relay.ringing", timeout=10_000)
    assert not await alice.evaluate("relay.ringing"), "a call transferred to Bob rings Bob only"
    assert await alice.locator(f"{card} button.answer").count() == 0
    waiting_at = sim_call.peer.loud_frames
    await until(lambda: sim_call.peer.loud_frames > waiting_at + 50, timeout=20, what="music")
    await screenshot(bob, "transferred-to-bob")
    await bob.click(f"{card} button.answer")
    await bob.wait_for_selector("#current-state[data-state=human]", timeout=30_000)
    assert await bob.inner_text("#current-state") == "With bob"
    await bob.click("#hangup")
    await until(lambda: sim_call.state == "ended", what="call ended")
    record = await running.service.storage.find_call(call_id)
    assert record is not None
    await bob.click("#refresh-history")
    row = bob.locator(f'#history tr[data-id="{record.id}"]')
    await row.locator("td.handled-by:text-is('alice → bob')").wait_for(timeout=10_000)


async def test_the_queue_puts_the_longest_wait_first(running: Running, new_page: NewPage) -> None:
    simulator = running.service.simulator
    assert simulator is not None
    alice, bob = await new_page(), await new_page()
    await sign_in(alice, running.url, "alice", "wonderland")
    await sign_in(bob, running.url, "bob", "builder")
    first = await simulator.place_call(user="15551230001", name="First Caller", audio="tone")
    await bob.locator(f'#queue [data-call-id="{first}"]').wait_for(timeout=20_000)
    second = await simulator.place_call(user="15551230002", name="Second Caller", audio="tone")
    await bob.locator(f'#queue [data-call-id="{second}"]').wait_for(timeout=20_000)
    order = "() => [...document.querySelectorAll('#queue .call-card')].map((c) => c.dataset.callId)"
    assert await bob.evaluate(order) == [first, second]
    # Alice takes the first: the one still waiting goes to the top, Alice's call below it.
    await alice.click(f'#queue [data-call-id="{first}"] button.answer')
    await bob.locator(f'#queue [data-call-id="{first}"]:not(.needs-agent)').wait_for()
    assert await bob.evaluate(order) == [second, first]
    assert await bob.inner_text("#queue-count") == "1 waiting"
