"""``python -m ser serve``'s page in a real browser: headless Chromium (Debian's ``chromium`` and
``chromium-driver``, which ``.ci/run`` installs) uploads a real clip and records one from a fake
microphone. Without the browser these tests fail: they are never skipped."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import SPEECH_SAMPLES, checkout_env, running_server, write_speech

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CLIP = SPEECH_SAMPLES[1] if len(SPEECH_SAMPLES) > 1 else None   # a real JL-Corpus recording from ../shared


@pytest.fixture(scope="module")
def server(egemaps_model, tmp_path_factory):
    log = tmp_path_factory.mktemp("browser_log") / "serve.err"
    with running_server(egemaps_model, "--max-upload-mb", "1", log=log) as url:
        yield url


def chromium(*flags):
    """A headless Chromium under Selenium with the system chromedriver; a failure (never a
    skip) naming the packages when they are missing."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).is_file()]
    if missing:
        pytest.fail(f"{', '.join(missing)} not found: `apt-get install chromium chromium-driver` (.ci/run does)")
    assert CLIP is not None, "no real speech under ../shared/samples/jl_corpus"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1100,1300", *flags):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))


def wait_for(driver, condition, timeout=60.0):
    """The first truthy value of ``condition(driver)`` within ``timeout`` seconds."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(condition)


def open_page(driver, url):
    from selenium.webdriver.common.by import By

    driver.get(url)
    wait_for(driver, lambda d: d.find_element(By.ID, "formats").text)   # /api/info has answered


def first_card(driver, count=1):
    from selenium.webdriver.common.by import By

    def ready(d):
        error = d.find_element(By.ID, "error")
        assert not error.is_displayed(), f"the page shows an error: {error.text}"
        cards = d.find_elements(By.CSS_SELECTOR, "#results .card")
        return cards[0] if len(cards) >= count else None

    return wait_for(driver, ready)


def test_an_upload_shows_the_label_predict_gives(server, egemaps_model, tmp_path):
    from selenium.webdriver.common.by import By

    run = subprocess.run([sys.executable, "-m", "ser", "predict", str(CLIP), "--model", str(egemaps_model),
                          "--format", "json", "--top-k", "3", "-q"], capture_output=True, text=True, env=checkout_env())
    assert run.returncode == 0, run.stderr
    [expected] = json.loads(run.stdout)
    driver = chromium()
    try:
        open_page(driver, server)
        driver.find_element(By.ID, "file-input").send_keys(str(CLIP))
        card = first_card(driver)
        assert card.find_element(By.CSS_SELECTOR, ".file").text == CLIP.name
        assert card.find_element(By.CSS_SELECTOR, ".label").text == expected["result"]
        assert float(card.get_attribute("data-confidence")) == pytest.approx(expected["confidence"], abs=1e-9)
        bars = [e.text for e in card.find_elements(By.CSS_SELECTOR, ".bars .name")]
        assert bars == [t["emotion"] for t in expected["top_k"]]
        assert "normalisation: speaker (all inputs: 1 clip" in card.text
        driver.save_screenshot(str(tmp_path / "page.png"))
    finally:
        driver.quit()


def test_bad_files_get_a_clear_message_on_the_page(server, tmp_path):
    from selenium.webdriver.common.by import By

    (tmp_path / "notes.txt").write_text("not audio\n")
    (tmp_path / "big.wav").write_bytes(b"\0" * (2 * 2**20))
    driver = chromium()
    try:
        open_page(driver, server)
        error = driver.find_element(By.ID, "error")
        for path, message in ((tmp_path / "notes.txt", "notes.txt: cannot decode audio"),
                              (tmp_path / "big.wav", "big.wav is 2 MB: the limit is 1 MB")):
            driver.find_element(By.ID, "file-input").send_keys(str(path))
            wait_for(driver, lambda d: error.is_displayed() and message in error.text)
        assert not driver.find_elements(By.CSS_SELECTOR, "#results .card")
    finally:
        driver.quit()


def recorded_seconds(driver) -> float:
    """The page's recording clock (``recording… 3.1 s``), 0 before it starts."""
    from selenium.webdriver.common.by import By

    text = driver.find_element(By.ID, "record-time").text
    return float(text.split()[-2]) if text else 0.0


def test_a_recording_from_the_microphone_gets_an_answer(server, egemaps_model, tmp_path):
    """Chromium's fake microphone plays a real clip in a loop; the page records it as WAV."""
    from selenium.webdriver.common.by import By

    fed = tmp_path / "mic.wav"
    shutil.copy(CLIP, fed)
    driver = chromium("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                      f"--use-file-for-fake-audio-capture={fed}", "--autoplay-policy=no-user-gesture-required")
    try:
        open_page(driver, server)
        button = driver.find_element(By.ID, "record")
        button.click()
        wait_for(driver, lambda d: "Stop" in button.text)
        wait_for(driver, lambda d: recorded_seconds(d) >= 3.0, timeout=30)
        button.click()
        card = first_card(driver)
        assert card.find_element(By.CSS_SELECTOR, ".file").text == "recording.wav"
        classes = json.loads((egemaps_model / "bundle.json").read_text())["classes"]
        assert card.get_attribute("data-result") in classes + ["uncertain"]   # speech heard: not `no speech`
        assert card.find_element(By.CSS_SELECTOR, ".label").text == card.get_attribute("data-result")
        assert float(card.find_element(By.CSS_SELECTOR, ".meta").text.split(" · ")[-1].split()[0]) > 1.0
    finally:
        driver.quit()


def test_a_long_recording_shows_its_timeline(server, tmp_path):
    from selenium.webdriver.common.by import By

    import numpy as np
    import soundfile as sf

    y, sr = sf.read(write_speech(tmp_path / "clip.wav", index=1, sample_rate=16000), dtype="float32")
    long = tmp_path / "talk.wav"
    sf.write(long, np.concatenate([y, np.zeros(3 * sr, np.float32), y, y]), sr)   # 12 s: segments of 2 s
    driver = chromium()
    try:
        open_page(driver, server)
        driver.find_element(By.ID, "file-input").send_keys(str(long))
        card = first_card(driver)
        canvas = card.find_element(By.CSS_SELECTOR, "canvas.timeline")
        # Drawn: the canvas holds pixels of the emotions' colours, not just its background.
        painted = driver.execute_script(
            "const c = arguments[0], d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
            "let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i + 3] && (d[i] !== d[i + 1] || d[i + 1] !== d[i + 2])) n++;"
            "return n;", canvas)
        assert painted > 1000
        assert "no speech" in card.find_element(By.CSS_SELECTOR, ".legend").text
    finally:
        driver.quit()


def voice_clips(driver) -> list[str]:
    """The names listed under "Your voice"."""
    from selenium.webdriver.common.by import By

    return [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#voice-list .voice-name")]


def test_your_voice_is_kept_for_the_tab_and_sent_with_every_clip(server, tmp_path):
    """A voice clip recorded from the fake microphone is listed (play, remove), sent as a
    reference with the next upload (whose answer says so), kept over a reload, and removed."""
    from selenium.webdriver.common.by import By

    fed = tmp_path / "mic.wav"
    shutil.copy(CLIP, fed)
    (tmp_path / "notes.txt").write_text("not audio\n")
    driver = chromium("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                      f"--use-file-for-fake-audio-capture={fed}", "--autoplay-policy=no-user-gesture-required")
    try:
        open_page(driver, server)
        # Without a voice: a lone clip, and the page says what would help.
        driver.find_element(By.ID, "file-input").send_keys(str(CLIP))
        lone = first_card(driver)
        assert "least reliable" in lone.find_element(By.CSS_SELECTOR, ".advice").text
        assert "Your voice" in lone.find_element(By.CSS_SELECTOR, ".advice").text

        button = driver.find_element(By.ID, "voice-record")
        button.click()
        wait_for(driver, lambda d: "Stop" in button.text)
        assert not driver.find_element(By.ID, "record").is_enabled()   # one recording at a time
        wait_for(driver, lambda d: d.find_element(By.ID, "voice-record-time").text
                 and float(d.find_element(By.ID, "voice-record-time").text.split()[-2]) >= 3.0, timeout=30)
        button.click()
        wait_for(driver, lambda d: voice_clips(d) == ["my voice 1.wav"])
        item = driver.find_element(By.CSS_SELECTOR, "#voice-list li")
        play = item.find_element(By.CSS_SELECTOR, "button.play")
        remove = item.find_element(By.CSS_SELECTOR, "button.remove")
        assert play.tag_name == remove.tag_name == "button" and "Play" in play.text and remove.text == "Remove"
        assert item.find_element(By.TAG_NAME, "audio").get_attribute("src").startswith("blob:")
        play.click()
        wait_for(driver, lambda d: "Pause" in play.text, timeout=10)   # it plays the kept recording
        assert "1 clip of your voice" in driver.find_element(By.ID, "voice-count").text

        driver.find_element(By.ID, "file-input").send_keys(str(CLIP))
        card = first_card(driver, count=2)
        assert "normalisation: reference: 1 clip, " in card.text
        assert card.find_element(By.CSS_SELECTOR, ".voice-used").text.startswith("Compared with your voice (1 clip, ")
        assert not card.find_elements(By.CSS_SELECTOR, ".advice")

        driver.refresh()
        open_page(driver, server)
        assert voice_clips(driver) == ["my voice 1.wav"]   # kept for the tab's session
        driver.find_element(By.CSS_SELECTOR, "#voice-list button.remove").click()
        wait_for(driver, lambda d: voice_clips(d) == [])
        driver.refresh()
        open_page(driver, server)
        assert voice_clips(driver) == []

        # A clip the server cannot use as a voice clip: the answer names it and says where to remove it.
        driver.find_element(By.ID, "voice-input").send_keys(str(tmp_path / "notes.txt"))
        wait_for(driver, lambda d: voice_clips(d) == ["notes.txt"])
        driver.find_element(By.ID, "file-input").send_keys(str(CLIP))
        error = driver.find_element(By.ID, "error")
        wait_for(driver, lambda d: error.is_displayed() and "reference notes.txt: cannot decode audio" in error.text)
        assert 'remove it under "Your voice"' in error.text
    finally:
        driver.quit()
