"""The web page in a real headless Chromium: a question asked aloud through a fake microphone fed from a WAV
file; the page shows the transcript, the streamed answer and its sources, and plays the spoken answer."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest

from tests.helpers import IN_CI, serve, spoken_wav
from voicerag.api.app import create_app

CHROMIUM = Path("/usr/lib/chromium/chromium")


@pytest.fixture
def chromium() -> Path:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing (apt-get install chromium; scripts/install-test-deps.sh does it)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture
def page_url(make_settings, facts):
    with serve(create_app(make_settings(preload_speech=True))) as url:
        body = {"documents": [{"id": d.id, "text": d.text, "title": d.title} for d in facts]}
        httpx.post(f"{url}/v1/collections/kb/documents", json=body, timeout=60).raise_for_status()
        yield url


def launch(playwright, chromium: Path, wav: Path):
    return playwright.chromium.launch(
        executable_path=str(chromium),
        headless=True,
        args=[
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={wav}%noloop",
            "--autoplay-policy=no-user-gesture-required",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    )


def open_page(browser, url: str, console: list[str]):
    """The page, its collections listed; the browser's console lines go to ``console``."""
    page = browser.new_page()
    page.on("console", lambda m: console.append(m.text))
    page.goto(url)
    page.wait_for_function("document.querySelectorAll('#collection option').length > 0", timeout=30_000)
    return page


# Whisper tiny.en hears this question the same way through the small changes a capture makes (rates, offsets,
# dropped quanta: scripts/stt_capture_robustness.py). It heard "When was the Eiffel Tower completed?" as "iphlet
# hour" and the like in most trials, which failed this test of the page on the model's hearing.
QUESTION = "When was the cat domesticated in the Near East?"
QUESTION_SECONDS = 2.75  # Piper's voice says it in this long


def test_ask_aloud_in_the_browser_and_hear_the_answer(chromium, page_url, tmp_path) -> None:
    from playwright.sync_api import sync_playwright

    wav = tmp_path / "question.wav"
    wav.write_bytes(spoken_wav(QUESTION, lead_s=0.2, tail_s=2.0))
    with sync_playwright() as p:
        browser = launch(p, chromium, wav)
        try:
            console: list[str] = []
            page = open_page(browser, page_url, console)
            assert page.input_value("#collection") == "kb"
            box = page.locator("#mic").bounding_box()
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            page.mouse.down()  # hold to talk: the fake microphone plays the question now
            # released once the page has captured the question and a little of the silence after it
            held = 0.2 + QUESTION_SECONDS + 0.8
            page.wait_for_function(f"window.voicerag.micSeconds >= {held}", timeout=60_000)
            page.mouse.up()
            page.wait_for_function("window.voicerag.done >= 1 || window.voicerag.errors.length > 0", timeout=90_000)
            state = page.evaluate("window.voicerag")
            assert not state["errors"], (state["errors"], console)
            assert state["micLevel"] > 0.05  # the fake microphone really delivered sound
            assert "domesticated in the near east" in state["transcript"].lower()  # through the browser's resampling
            assert "7500 BC" in state["answer"]
            assert "7500 BC" in page.text_content("#answer")
            assert "Near East" in page.text_content("#source-list")
            quoted = page.text_content("#source-list .quoted")  # the quoted sentence is marked in its source
            assert quoted and "7500 BC" in quoted
            assert state["audioChunks"] >= 1 and state["audioSeconds"] > 1.0
            page.wait_for_function("window.voicerag.audioEnded >= window.voicerag.audioChunks", timeout=60_000)
            # typed questions work too, and are answered aloud as well
            page.fill("#question", "Who created Python?")
            page.click("#ask")
            page.wait_for_function("window.voicerag.done >= 2", timeout=60_000)
            assert "Guido van Rossum" in page.text_content("#answer")
            assert page.evaluate("window.voicerag.audioChunks") > state["audioChunks"]
        finally:
            browser.close()


def test_hands_free_the_pause_ends_the_question(chromium, page_url, tmp_path) -> None:
    """The microphone stays open; the server ends the turn at the pause (no button released, no 'end'), and the
    page measures the end of speech to the first answer audio."""
    from playwright.sync_api import sync_playwright

    wav = tmp_path / "question.wav"
    wav.write_bytes(spoken_wav(QUESTION, lead_s=0.2, tail_s=3.0))
    with sync_playwright() as p:
        browser = launch(p, chromium, wav)
        try:
            page = open_page(browser, page_url, [])
            page.check("#handsfree")
            page.click("#mic")  # one click: listening until clicked again
            page.wait_for_function("window.voicerag.done >= 1 || window.voicerag.errors.length > 0", timeout=90_000)
            state = page.evaluate("window.voicerag")
            assert not state["errors"], state["errors"]
            assert "domesticated in the near east" in state["transcript"].lower() and "7500 BC" in state["answer"]
            assert "Listening" in page.text_content("#mic")  # still listening for the next question
            assert len(state["endToFirstAudioMs"]) == 1
            measured = state["endToFirstAudioMs"][0]
            assert 0 < measured < 30_000, measured  # a bound only to catch a hang; the figure is printed
            print(f"browser, hands-free: end of speech to first answer audio {measured} ms")
            record = os.environ.get("BROWSER_TIMINGS_OUT")  # a file to append the figure to, when measuring
            if record:
                with open(record, "a") as f:
                    record = {"end_of_speech_to_first_audio_ms": measured, "server_timings_ms": state["timings"]}
                    f.write(json.dumps(record) + "\n")
            page.click("#mic")
            page.wait_for_function("!document.querySelector('#mic').classList.contains('recording')")
        finally:
            browser.close()
