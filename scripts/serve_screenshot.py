"""A screenshot of ``python -m ser serve``'s page with answers, for the README (docs/serve.png).

    python scripts/serve_screenshot.py OUT.png --model models FILE...

Starts the server on a free loopback port, uploads each FILE in turn with headless Chromium
(Debian's ``chromium`` and ``chromium-driver``) and saves the whole page once every answer is
shown (the last file's card on top)."""

import argparse
import contextlib
import subprocess
import sys
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait


@contextlib.contextmanager
def served_page(model: str, width: int = 1000, *serve_args: str):
    """``(driver, url)``: ``python -m ser serve`` on a free loopback port with ``model`` and
    headless Chromium at ``width`` with its page open and ready; both stopped afterwards."""
    server = subprocess.Popen([sys.executable, "-m", "ser", "serve", "--model", model, "--port", "0", "-q",
                               *serve_args], stdout=subprocess.PIPE, text=True)
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--window-size={width},900"):
        options.add_argument(flag)
    driver = None
    try:
        url = server.stdout.readline().split()[1]
        driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
        driver.get(url)
        WebDriverWait(driver, 120).until(lambda d: d.find_element(By.ID, "formats").text)
        yield driver, url
    finally:
        if driver:
            driver.quit()
        server.terminate()
        server.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("files", nargs="+")
    parser.add_argument("--model", default="models")
    parser.add_argument("--width", type=int, default=1000)
    args = parser.parse_args()
    with served_page(args.model, args.width) as (driver, _):
        wait = WebDriverWait(driver, 120)
        for n, path in enumerate(args.files, 1):
            driver.find_element(By.ID, "file-input").send_keys(str(Path(path).resolve()))
            wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#results .card")) == n)
        # Every card's waveform and timeline drawn (on the next animation frame), the page at rest.
        wait.until(lambda d: d.execute_script(
            "return [...document.querySelectorAll('#results canvas')].every((c) => c.width > 0)"))
        time.sleep(0.5)
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",   # the whole page, not the window
                               {"width": args.width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        driver.save_screenshot(args.out)


if __name__ == "__main__":
    main()
