"""``python -m ser serve``'s page in a real browser: headless Chromium (Debian's ``chromium`` and
``chromium-driver``, which ``.ci/run`` installs) uploads real clips, records from a fake
microphone, is driven by the keyboard alone, and is read for contrast in light and dark mode.
Without the browser these tests fail: they are never skipped.

A few tests give the page answers of their own (``stub_network``: the page's request to
``/api/predict`` is answered in the browser with rows the test chose) to see every kind of card
(every emotion, uncertain, no speech, a file that could not be answered) without a model that
gives them; every other answer comes from the real server."""

import base64
import json
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from .conftest import SPEECH_SAMPLES, checkout_env, running_server, write_speech

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CLIP = SPEECH_SAMPLES[1] if len(SPEECH_SAMPLES) > 1 else None   # a real JL-Corpus recording from ../shared
OTHER = SPEECH_SAMPLES[2] if len(SPEECH_SAMPLES) > 2 else None

pytestmark = pytest.mark.slow   # Chromium against a serve subprocess: minutes


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
    assert CLIP is not None and OTHER is not None, "no real speech under ../shared/samples/jl_corpus"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1100,1300", *flags):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))


def microphone(fed: Path):
    """Chromium whose fake microphone plays ``fed`` in a loop."""
    return chromium("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                    f"--use-file-for-fake-audio-capture={fed}", "--autoplay-policy=no-user-gesture-required")


def wait_for(driver, condition, timeout=60.0):
    """The first truthy value of ``condition(driver)`` within ``timeout`` seconds."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(condition)


def open_page(driver, url):
    from selenium.webdriver.common.by import By

    driver.get(url)
    wait_for(driver, lambda d: d.find_element(By.ID, "formats").text)   # /api/info has answered


def cards(driver):
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, "#results .card")


def first_card(driver, count=1):
    def ready(d):
        error = d.find_element("id", "error")
        assert not error.is_displayed(), f"the page shows an error: {error.text}"
        shown = cards(d)
        return shown[0] if len(shown) >= count else None

    return wait_for(driver, ready)


# In the page before its own script: remembers every answer of /api/predict (window.__received,
# one list of rows per request), answers the next request with window.__fakeRows when set, and
# answers GET /api/examples with EXAMPLES when the test gives some (404 for "404").
STUB = """
window.__received = [];
window.__fakeRows = null;
const open = XMLHttpRequest.prototype.open, send = XMLHttpRequest.prototype.send;
XMLHttpRequest.prototype.open = function (method, url, ...rest) { this.__url = String(url); return open.call(this, method, url, ...rest); };
XMLHttpRequest.prototype.send = function (body) {
  if (this.__url.endsWith("/api/predict")) {
    if (window.__fakeRows) {
      const text = JSON.stringify(window.__fakeRows);
      window.__fakeRows = null;
      window.__received.push(JSON.parse(text));
      Object.defineProperty(this, "status", { value: 200 });
      Object.defineProperty(this, "readyState", { value: 4 });
      Object.defineProperty(this, "responseText", { value: text });
      setTimeout(() => this.dispatchEvent(new ProgressEvent("load")), 20);
      return;
    }
    this.addEventListener("load", () => window.__received.push(JSON.parse(this.responseText)));
  }
  return send.call(this, body);
};
const EXAMPLES = %s;
if (EXAMPLES !== null) {
  const fetched = window.fetch;
  window.fetch = (url, ...rest) => String(url).endsWith("/api/examples")
    ? Promise.resolve(EXAMPLES === "404" ? new Response('{"error": "Not Found"}', { status: 404 })
                                          : new Response(JSON.stringify(EXAMPLES), { headers: { "Content-Type": "application/json" } }))
    : fetched(url, ...rest);
}
"""


def stub_network(driver, examples=None):
    """``STUB`` in every page this driver opens from now on."""
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": STUB % json.dumps(examples)})


def received(driver) -> list[list[dict]]:
    return driver.execute_script("return window.__received")


def download_to(driver, folder: Path):
    folder.mkdir(parents=True, exist_ok=True)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(folder)})


def downloaded(driver, folder: Path, pattern: str) -> Path:
    """The one finished download in ``folder`` matching ``pattern``."""
    def done(d):
        found = [p for p in folder.glob(pattern) if not p.name.endswith(".crdownload")]
        return found[0] if len(found) == 1 and found[0].stat().st_size else None

    return wait_for(driver, done, timeout=30)


def painted(driver, canvas) -> int:
    """Pixels of a canvas that are drawn (not transparent)."""
    return driver.execute_script(
        "const c = arguments[0], d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        "let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n;", canvas)


def spans_text(spans) -> str:
    """How the page words the detected speech of a row (``speech_spans``): in time order, spans
    that touch (cut at a segment's edge) as one."""
    joined = []
    for a, b in sorted(spans):
        if joined and a - joined[-1][1] <= 0.05:
            joined[-1][1] = max(joined[-1][1], b)
        else:
            joined.append([a, b])
    spans = joined
    if not spans:
        return "No speech found"
    shown = [f"{a:.1f}\u2013{b:.1f} s" for a, b in spans[:6]]
    return "Speech found at " + ", ".join(shown) + (f" and {len(spans) - 6} more" if len(spans) > 6 else "")


def test_an_upload_shows_the_label_predict_gives(server, egemaps_model, tmp_path):
    """The answer of ``predict`` for the same file, shown with a player of the file and its
    waveform, and the upload's progress on the way."""
    import soundfile as sf
    from selenium.webdriver.common.by import By

    run = subprocess.run([sys.executable, "-m", "ser", "predict", str(CLIP), "--model", str(egemaps_model),
                          "--format", "json", "--top-k", "3", "-q"], capture_output=True, text=True, env=checkout_env())
    assert run.returncode == 0, run.stderr
    [expected] = json.loads(run.stdout)
    driver = chromium()
    try:
        stub_network(driver)
        open_page(driver, server)
        # Every state the pending answer goes through, as the page writes it.
        driver.execute_script(
            "window.__states = []; new MutationObserver(() => document.querySelectorAll('#results .pending-text')"
            ".forEach((n) => window.__states.push(n.textContent))).observe(document.getElementById('results'),"
            "{ childList: true, subtree: true, characterData: true });")
        driver.find_element(By.ID, "file-input").send_keys(str(CLIP))
        card = first_card(driver)
        assert card.find_element(By.CSS_SELECTOR, ".file").text == CLIP.name
        assert card.find_element(By.CSS_SELECTOR, ".label").text == expected["result"]
        assert float(card.get_attribute("data-confidence")) == pytest.approx(expected["confidence"], abs=1e-9)
        bars = [e.text for e in card.find_elements(By.CSS_SELECTOR, ".bars .name")]
        assert bars == [t["emotion"] for t in expected["top_k"]]
        assert "normalization: speaker (all inputs: 1 clip" in card.text
        states = driver.execute_script("return window.__states")
        assert any(s.startswith(f"Sending {CLIP.name}") for s in states), states
        assert f"Analysing {CLIP.name}\u2026" in states, states

        audio = card.find_element(By.CSS_SELECTOR, "audio[controls]")
        assert audio.get_attribute("src").startswith("blob:")
        wait_for(driver, lambda d: d.execute_script("return arguments[0].readyState >= 1", audio), timeout=10)
        assert driver.execute_script("return arguments[0].duration", audio) == pytest.approx(
            sf.info(str(CLIP)).duration, abs=0.05)   # the player plays the file sent
        wave = card.find_element(By.CSS_SELECTOR, "canvas.wave")
        assert wave.get_attribute("role") == "img" and CLIP.name in wave.get_attribute("aria-label")
        assert painted(driver, wave) > 2000
        driver.save_screenshot(str(tmp_path / "page.png"))
    finally:
        driver.quit()


def test_the_detected_speech_is_marked_on_the_waveform(server):
    import soundfile as sf
    from selenium.webdriver.common.by import By

    driver = chromium()
    try:
        stub_network(driver)
        open_page(driver, server)
        driver.find_element(By.ID, "file-input").send_keys(str(CLIP))
        card = first_card(driver)
        [[row]] = received(driver)
        spans = row.get("speech_spans")
        assert spans, f"the server's row has no speech_spans: {sorted(row)}"
        assert card.find_element(By.CSS_SELECTOR, ".speech").text == spans_text(spans)
        assert "speech found at" in card.find_element(By.CSS_SELECTOR, "canvas.wave").get_attribute("aria-label")
        # Shaded where the speech is (the band behind the waveform reaches its top row), not before it.
        canvas = card.find_element(By.CSS_SELECTOR, "canvas.wave")
        seconds = sf.info(str(CLIP)).duration
        alpha = lambda t: driver.execute_script(   # noqa: E731
            "const [c, x] = arguments; return c.getContext('2d').getImageData(x, 1, 1, 1).data[3];",
            canvas, int(t / seconds * (canvas.size["width"] * driver.execute_script("return devicePixelRatio") - 1)))
        assert alpha((spans[0][0] + spans[0][1]) / 2) > 0
        if spans[0][0] > 0.1:
            assert alpha(spans[0][0] / 2) == 0
    finally:
        driver.quit()


def test_a_file_of_a_batch_that_cannot_be_read_gets_its_own_card(server, tmp_path):
    from selenium.webdriver.common.by import By

    notes = tmp_path / "notes.txt"
    notes.write_text("not audio\n")
    driver = chromium()
    try:
        stub_network(driver)
        open_page(driver, server)
        driver.find_element(By.ID, "file-input").send_keys(f"{CLIP}\n{notes}")
        wait_for(driver, lambda d: len(cards(d)) == 2 or d.find_element(By.ID, "error").is_displayed())
        assert not driver.find_element(By.ID, "error").is_displayed(), driver.find_element(By.ID, "error").text
        good, bad = cards(driver)
        assert good.find_element(By.CSS_SELECTOR, ".file").text == CLIP.name
        assert good.find_element(By.CSS_SELECTOR, ".label").text
        assert bad.find_element(By.CSS_SELECTOR, ".file").text == "notes.txt"
        assert bad.get_attribute("data-result") == "error"
        [rows] = received(driver)
        [error_row] = [r for r in rows if r["file"] == "notes.txt"]
        assert bad.find_element(By.CSS_SELECTOR, ".message").text == error_row["message"]
        assert error_row["error"] not in driver.find_element(By.TAG_NAME, "body").text
    finally:
        driver.quit()


def test_bad_files_get_a_plain_message_on_the_page(server, tmp_path):
    """Not audio, too large, too long: plain words, never the server's technical line; the size
    and the length are checked in the browser before anything is sent."""
    import numpy as np
    import soundfile as sf
    from selenium.webdriver.common.by import By

    (tmp_path / "notes.txt").write_text("not audio\n")
    (tmp_path / "big.wav").write_bytes(b"\0" * (2 * 2**20))
    sf.write(tmp_path / "quiet.flac", np.zeros(660 * 8000, np.int16), 8000)   # 11 minutes, a few kB
    driver = chromium()
    try:
        open_page(driver, server)
        error = driver.find_element(By.ID, "error")
        body = driver.find_element(By.TAG_NAME, "body")
        driver.find_element(By.ID, "file-input").send_keys(str(tmp_path / "notes.txt"))
        # The old server refuses the request (422, in the alert); a newer one answers the file with an error card.
        wait_for(driver, lambda d: "This file is not audio we can read (notes.txt)" in body.text)
        assert "cannot decode" not in body.text and "`" not in body.text.replace("python -m ser predict", "")
        driver.find_element(By.ID, "clear").click() if cards(driver) else None
        for path, message in ((tmp_path / "big.wav", "big.wav is 2 MB: this page takes up to 1 MB at once."),
                              (tmp_path / "quiet.flac", "quiet.flac is 11 minutes long: this page takes "
                                                        "recordings up to 10 minutes.")):
            driver.find_element(By.ID, "file-input").send_keys(str(path))
            wait_for(driver, lambda d: error.is_displayed() and error.text == message)
            assert "--" not in error.text and "serve" not in error.text
        assert not cards(driver) and not driver.find_elements(By.CSS_SELECTOR, "#results .pending")
    finally:
        driver.quit()


def test_the_file_chooser_works_from_the_keyboard(server):
    """Tab reaches a real button that opens the chooser (Enter, Space), as Enter or Space on the
    focused drop zone does; the focus is visible; a file then gets its answer and a player."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver = chromium()
    try:
        open_page(driver, server)
        # What opening the chooser does, counted (and the dialog itself kept shut).
        driver.execute_script("window.__opened = 0; document.getElementById('file-input').addEventListener('click',"
                              "(e) => { window.__opened++; e.preventDefault(); });")
        opened = lambda: driver.execute_script("return window.__opened")   # noqa: E731
        focused = lambda: driver.switch_to.active_element   # noqa: E731
        keys = lambda *k: ActionChains(driver).send_keys(*k).perform()   # noqa: E731
        order = []
        for _ in range(6):
            keys(Keys.TAB)
            order.append(focused().get_attribute("id") or focused().tag_name)
            if order[-1] == "choose":
                break
        assert order[-2:] == ["drop", "choose"], order   # the drop zone, then its button
        chooser = focused()
        assert chooser.tag_name == "button" and chooser.text == "Choose files"
        style = driver.execute_script("const s = getComputedStyle(arguments[0]); return [s.outlineStyle, "
                                      "parseFloat(s.outlineWidth)]", chooser)
        assert style[0] != "none" and style[1] >= 2, style
        keys(Keys.ENTER)
        assert opened() == 1
        keys(Keys.SPACE)
        assert opened() == 2
        ActionChains(driver).key_down(Keys.SHIFT).send_keys(Keys.TAB).key_up(Keys.SHIFT).perform()
        assert focused().get_attribute("id") == "drop"
        keys(Keys.ENTER)
        assert opened() == 3
        keys(Keys.SPACE)
        assert opened() == 4
        assert driver.execute_script("return getComputedStyle(document.getElementById('file-input')).display") != "none"
        driver.find_element(By.ID, "file-input").send_keys(str(CLIP))
        card = first_card(driver)
        assert card.find_element(By.CSS_SELECTOR, "audio[controls]").get_attribute("src").startswith("blob:")
    finally:
        driver.quit()


def recorded_seconds(driver) -> float:
    """The page's recording clock (``recording… 3.1 s``), 0 before it starts."""
    from selenium.webdriver.common.by import By

    text = driver.find_element(By.ID, "record-time").text
    return float(text.split()[-2]) if text else 0.0


def test_a_recording_from_the_microphone_gets_an_answer(server, egemaps_model, tmp_path):
    """Chromium's fake microphone plays a real clip in a loop; the page shows its level while
    recording, records it as WAV named by the time, and answers it with a player and a waveform."""
    from selenium.webdriver.common.by import By

    fed = tmp_path / "mic.wav"
    shutil.copy(CLIP, fed)
    driver = microphone(fed)
    try:
        open_page(driver, server)
        button = driver.find_element(By.ID, "record")
        meter = driver.find_element(By.ID, "record-level")
        assert meter.get_attribute("role") == "meter" and not meter.is_displayed()
        button.click()
        wait_for(driver, lambda d: "Stop" in button.text)
        assert meter.is_displayed()
        levels = set()
        while recorded_seconds(driver) < 3.0:
            levels.add(int(meter.get_attribute("aria-valuenow")))
            time.sleep(0.15)
        assert len(levels) >= 3 and max(levels) > 20, levels   # it moves with the voice
        button.click()
        card = first_card(driver)
        assert re.fullmatch(r"recording \d\d-\d\d-\d\d\.wav", card.find_element(By.CSS_SELECTOR, ".file").text)
        assert not meter.is_displayed()
        classes = json.loads((egemaps_model / "bundle.json").read_text())["classes"]
        assert card.get_attribute("data-result") in classes + ["uncertain"]   # speech heard: not `no speech`
        assert card.find_element(By.CSS_SELECTOR, ".label").text == card.get_attribute("data-result")
        assert float(card.find_element(By.CSS_SELECTOR, ".meta").text.split(" · ")[-1].split()[0]) > 1.0
        assert card.find_element(By.CSS_SELECTOR, "audio[controls]").get_attribute("src").startswith("blob:")
        assert painted(driver, card.find_element(By.CSS_SELECTOR, "canvas.wave")) > 2000
    finally:
        driver.quit()


def test_a_long_recording_shows_its_timeline(server, tmp_path):
    """Split at its pauses, with a table of its segments as the timeline's text, and a headline
    (the share of speech time per answer) that a fixed grid does not change."""
    import numpy as np
    import soundfile as sf
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    y, sr = sf.read(write_speech(tmp_path / "clip.wav", index=1, sample_rate=16000), dtype="float32")
    long = tmp_path / "talk.wav"
    sf.write(long, np.concatenate([y, np.zeros(3 * sr, np.float32), y, y]), sr)   # 12 s with a 3-s pause
    driver = chromium()
    try:
        stub_network(driver)
        open_page(driver, server)
        driver.find_element(By.ID, "file-input").send_keys(str(long))
        card = first_card(driver)
        canvas = card.find_element(By.CSS_SELECTOR, "canvas.timeline")
        # Drawn: the canvas holds pixels of the emotions' colours, not just its background.
        coloured = driver.execute_script(
            "const c = arguments[0], d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
            "let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i + 3] && (d[i] !== d[i + 1] || d[i + 1] !== d[i + 2])) n++;"
            "return n;", canvas)
        assert coloured > 1000
        assert "no speech" in card.find_element(By.CSS_SELECTOR, ".legend").get_attribute("textContent")
        # Its text: a table of the segments, as the server answered them.
        [rows] = received(driver)
        segments = [r for r in rows if r["segment"] != "all"]
        card.find_element(By.CSS_SELECTOR, ".timeline-table summary").click()
        table = card.find_element(By.CSS_SELECTOR, ".timeline-table table")
        assert [th.text for th in table.find_elements(By.CSS_SELECTOR, "thead th")] == ["Start", "End", "Answer",
                                                                                         "Confidence"]
        body = [[td.text for td in tr.find_elements(By.TAG_NAME, "td")] for tr in table.find_elements(By.CSS_SELECTOR, "tbody tr")]
        assert len(body) == len(segments) >= 2
        for cells, row in zip(body, segments):
            start, end = (float(v) for v in row["segment"].split("-"))
            assert cells[:2] == [f"{start:.1f} s", f"{end:.1f} s"]
            assert cells[2].split()[0] == row["result"].split()[0]
            assert cells[3] == ("\u2013" if row["confidence"] is None else f"{round(row['confidence'] * 100)} %")
        # Split at the pauses in the speech: no segment holds the 3-s pause.
        assert not any(float(r["segment"].split("-")[0]) < 4.5 < float(r["segment"].split("-")[1]) for r in segments)
        headline = card.find_element(By.CSS_SELECTOR, ".answer .confidence").text
        assert "of the speech" not in headline and " s of speech" in headline   # time shares, e.g. "sad 62 %, ..."
        # A fixed grid instead: other segments, the same headline (it is the speech-time summary).
        driver.find_element(By.CSS_SELECTOR, "details.options summary").click()
        Select(driver.find_element(By.ID, "split")).select_by_value("grid")
        driver.find_element(By.ID, "file-input").send_keys(str(long))
        gridded = first_card(driver, count=2)
        [_, grid_rows] = received(driver)
        assert len([r for r in grid_rows if r["segment"] != "all"]) >= 6
        assert grid_rows[0]["time_shares"] == rows[0]["time_shares"] and grid_rows[0]["result"] == rows[0]["result"]
        assert gridded.find_element(By.CSS_SELECTOR, ".answer .confidence").text == headline
    finally:
        driver.quit()


def test_answers_newest_first_downloaded_as_json_and_cleared(server, tmp_path):
    """A batch's cards in the order chosen, the batch above the older ones; Download JSON holds
    exactly the rows the server answered, in that order; Clear all empties the page."""
    from selenium.webdriver.common.by import By

    driver = chromium()
    try:
        stub_network(driver)
        download_to(driver, tmp_path / "downloads")
        open_page(driver, server)
        assert not driver.find_element(By.ID, "clear").is_displayed()   # nothing to clear yet
        driver.find_element(By.ID, "file-input").send_keys(f"{CLIP}\n{OTHER}")
        first_card(driver, count=2)
        driver.find_element(By.ID, "file-input").send_keys(str(SPEECH_SAMPLES[0]))
        first_card(driver, count=3)
        names = [c.find_element(By.CSS_SELECTOR, ".file").text for c in cards(driver)]
        assert names == [SPEECH_SAMPLES[0].name, CLIP.name, OTHER.name]
        driver.find_element(By.ID, "download-json").click()
        rows = json.loads(downloaded(driver, tmp_path / "downloads", "*.json").read_text())
        older, newer = received(driver)
        assert rows == newer + older
        assert [r["file"] for r in rows] == names

        driver.find_element(By.ID, "clear").click()
        wait_for(driver, lambda d: not cards(d))
        assert not driver.find_element(By.ID, "clear").is_displayed()
        assert driver.switch_to.active_element.get_attribute("id") == "choose"
        assert driver.find_element(By.ID, "status").get_attribute("textContent") == "All answers cleared."
    finally:
        driver.quit()


def test_download_csv_is_the_servers_table_of_the_answers_shown(server, tmp_path):
    from selenium.webdriver.common.by import By

    driver = chromium()
    try:
        stub_network(driver)
        download_to(driver, tmp_path / "downloads")
        open_page(driver, server)
        driver.find_element(By.ID, "file-input").send_keys(str(CLIP))
        first_card(driver)
        driver.find_element(By.ID, "download-csv").click()
        text = downloaded(driver, tmp_path / "downloads", "*.csv").read_bytes().decode()
        [rows] = received(driver)
        request = urllib.request.Request(server + "api/csv", data=json.dumps(rows).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request) as response:
            assert text == response.read().decode()
        assert text.splitlines()[0].startswith("file,") and CLIP.name in text
        assert not driver.find_element(By.ID, "error").is_displayed()
    finally:
        driver.quit()


def test_example_clips_are_offered_and_answered(server, tmp_path):
    """The page offers what GET /api/examples lists (here given by the test: a real clip) and
    answers one like an upload; with no examples (404 here) the section stays hidden."""
    from selenium.webdriver.common.by import By

    clip = write_speech(tmp_path / "ex.wav", index=1, sample_rate=16000, seconds=2.5)
    url = "data:audio/wav;base64," + base64.b64encode(clip.read_bytes()).decode()
    examples = [{"name": "sad (JL-Corpus)", "url": url, "emotion": "sad", "corpus": "JL-Corpus",
                 "heard_in_training": False}, {"name": "happy (TESS)", "url": url, "emotion": "happy", "corpus": "tess"}]
    driver = chromium()
    try:
        stub_network(driver, examples)
        open_page(driver, server)
        section = driver.find_element(By.ID, "examples")
        wait_for(driver, lambda d: section.is_displayed())
        buttons = section.find_elements(By.TAG_NAME, "button")
        assert [b.text for b in buttons] == ["sad (JL-Corpus)", "happy (TESS)"]
        buttons[0].click()
        card = first_card(driver)
        assert card.find_element(By.CSS_SELECTOR, ".file").text == "sad (JL-Corpus).wav"
        assert "acted as sad" in card.find_element(By.CSS_SELECTOR, ".example-note").text
        assert card.find_element(By.CSS_SELECTOR, "audio[controls]").get_attribute("src").startswith("blob:")
        assert received(driver)[0][0]["file"] == "sad (JL-Corpus).wav"
    finally:
        driver.quit()
    driver = chromium()
    try:
        stub_network(driver, "404")
        open_page(driver, server)
        time.sleep(0.5)
        assert not driver.find_element(By.ID, "examples").is_displayed()
    finally:
        driver.quit()


def test_the_servers_examples_are_offered(egemaps_model, tmp_path):
    """The clips GET /api/examples lists (from a project's corpora) are buttons; one click
    answers the clip, and its card says what it was acted as. Without corpora the section is
    hidden."""
    from selenium.webdriver.common.by import By

    from .test_serve import _project_with_corpora

    project = _project_with_corpora(tmp_path / "project")
    driver = chromium()
    try:
        with running_server(egemaps_model, "--examples", project) as url:
            with urllib.request.urlopen(url + "api/examples") as response:
                listed = json.loads(response.read())
            assert len(listed) == 2
            open_page(driver, url)
            section = driver.find_element(By.ID, "examples")
            wait_for(driver, lambda d: section.is_displayed())
            buttons = section.find_elements(By.TAG_NAME, "button")
            assert [b.text for b in buttons] == [e["name"] for e in listed]
            buttons[0].click()
            card = first_card(driver)
            assert card.find_element(By.CSS_SELECTOR, ".file").text.startswith(listed[0]["name"])
            assert f"acted as {listed[0]['emotion']}" in card.find_element(By.CSS_SELECTOR, ".example-note").text
        with running_server(egemaps_model, "--examples", "none") as url:
            open_page(driver, url)
            time.sleep(0.5)
            assert not driver.find_element(By.ID, "examples").is_displayed()
    finally:
        driver.quit()


# WCAG 2.x contrast of every visible text on the page against the background it is drawn on.
CONTRAST = """
const parse = (c) => { const m = /rgba?\\(([^)]*)\\)/.exec(c); if (!m) return [0, 0, 0, 0];
  const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number); return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1]; };
const over = (top, under) => under.map((v, i) => top[i] * top[3] + v * (1 - top[3]));
const background = (el) => { const layers = [];
  for (let e = el; e; e = e.parentElement) { const c = parse(getComputedStyle(e).backgroundColor);
    if (c[3] > 0) { layers.push(c); if (c[3] >= 1) break; } }
  return layers.reverse().reduce((under, c) => over(c, under), [255, 255, 255]); };
const lum = (rgb) => { const [r, g, b] = rgb.map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
const ratio = (el) => { const back = background(el), text = over(parse(getComputedStyle(el).color), back);
  const [a, b] = [lum(text), lum(back)].sort((x, y) => y - x); return (a + 0.05) / (b + 0.05); };
const large = (el) => { const s = getComputedStyle(el), size = parseFloat(s.fontSize);
  return size >= 24 || (size >= 18.66 && Number(s.fontWeight) >= 700); };
const labels = [...document.querySelectorAll("#results .card")].map((card) => {
  const label = card.querySelector(".label");
  return label && [card.dataset.result, ratio(label), !!card.querySelector(".chip")]; }).filter(Boolean);
const texts = [];
for (const el of document.body.querySelectorAll("*")) {
  if (["SCRIPT", "STYLE", "OPTION", "AUDIO", "CANVAS"].includes(el.tagName) || el.closest(":disabled")) continue;
  const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
  const box = el.getBoundingClientRect();
  if (!own || box.width <= 1 || box.height <= 1 || getComputedStyle(el).visibility === "hidden") continue;
  texts.push([el.textContent.trim().slice(0, 40), Math.round(ratio(el) * 100) / 100, large(el) ? 3 : 4.5]);
}
return [labels, texts];
"""


def fake_rows(classes) -> list[dict]:
    """An answer row for every emotion, then uncertain, no speech and a file that failed."""
    def row(name, result, emotion, confidence):
        probs = {c: (confidence if c == emotion else (1 - confidence) / (len(classes) - 1)) for c in classes}
        top = sorted(probs.items(), key=lambda kv: -kv[1])[:3]
        return {"file": name, "result": result, "emotion": emotion, "confidence": confidence, "speech_s": 2.1,
                "speech_spans": [[0.3, 2.4]], "normalization": "speaker (all inputs: 1 clip)", "voice_clips": 0,
                "warning": None, "top_k": [{"emotion": e, "probability": p} for e, p in top], "probabilities": probs}

    rows = [row(f"{c}.wav", c, c, 0.8) for c in classes]
    rows[0]["warning"] = "truncated: header says 96000 frames, file holds 48000"
    rows.append(row("unsure.wav", "uncertain", classes[0], 0.3))
    rows.append({**row("silence.wav", "no speech", None, 0), "emotion": None, "confidence": None, "speech_s": 0.0,
                 "speech_spans": [], "top_k": [], "probabilities": None})
    rows.append({"file": "notes.txt", "result": "error", "error": "notes.txt: cannot decode audio (Format not recognised)",
                 "message": "This file is not audio we can read (notes.txt).", "emotion": None, "confidence": None,
                 "probabilities": None, "top_k": []})
    return rows


def test_every_answer_reads_well_in_light_and_dark_mode(server, egemaps_model):
    """Every emotion's answer (and uncertain, no speech, an error) is dark text beside a chip of
    its colour, at 4.5:1 or more, as is every other text on the page, in light and dark mode;
    the error card and a warning are plain words, never the technical line; a phone's width fits."""
    from selenium.webdriver.common.by import By

    classes = json.loads((egemaps_model / "bundle.json").read_text())["classes"]
    driver = chromium()
    try:
        stub_network(driver)
        open_page(driver, server)
        driver.execute_script("window.__fakeRows = arguments[0]", fake_rows(classes))
        driver.find_element(By.ID, "file-input").send_keys(str(CLIP))
        wait_for(driver, lambda d: len(cards(d)) == len(classes) + 3)
        error = cards(driver)[-1]
        assert error.get_attribute("data-result") == "error"
        assert error.find_element(By.CSS_SELECTOR, ".message").text == "This file is not audio we can read (notes.txt)."
        assert "cannot decode" not in driver.find_element(By.TAG_NAME, "body").text
        warned = cards(driver)[0].find_element(By.CSS_SELECTOR, ".warning").text
        assert warned == "This file seems cut short: the answer is for the part of it that is there."
        assert "header says" not in driver.find_element(By.TAG_NAME, "body").text
        for scheme in ("light", "dark"):
            driver.execute_cdp_cmd("Emulation.setEmulatedMedia",
                                   {"features": [{"name": "prefers-color-scheme", "value": scheme}]})
            assert driver.execute_script("return matchMedia('(prefers-color-scheme: dark)').matches") == (scheme == "dark")
            labels, texts = driver.execute_script(CONTRAST)
            assert sorted(result for result, _, _ in labels) == sorted(classes + ["uncertain", "no speech"])
            for result, ratio, chip in labels:
                assert ratio >= 4.5, f"{scheme}: the answer {result!r} is {ratio:.2f}:1"
                assert chip, f"{scheme}: no colour chip beside {result!r}"
            low = [t for t in texts if t[1] < t[2]]
            assert not low, f"{scheme}: text below its contrast minimum: {low}"
        driver.set_window_size(390, 900)   # a phone
        time.sleep(0.3)
        assert driver.execute_script("return document.documentElement.scrollWidth <= innerWidth")
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
    driver = microphone(fed)
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
        assert driver.find_element(By.ID, "voice-record-level").is_displayed()
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
        assert "normalization: reference: 1 clip, " in card.text
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

        # A clip the server cannot use as a voice clip: the page names it and says where to remove it.
        driver.find_element(By.ID, "voice-input").send_keys(str(tmp_path / "notes.txt"))
        wait_for(driver, lambda d: voice_clips(d) == ["notes.txt"])
        driver.find_element(By.ID, "file-input").send_keys(str(CLIP))
        error = driver.find_element(By.ID, "error")
        wait_for(driver, lambda d: error.is_displayed())
        assert error.text == "Your voice clip notes.txt is not audio we can read: remove it under \u201cYour voice\u201d."
    finally:
        driver.quit()
