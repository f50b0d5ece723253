"""Warm latency of the page: from choosing a file to its answer drawn, in headless Chromium.

    python scripts/bench_page.py CLIP [--model models] [--runs 21]

Starts ``python -m ser serve`` on a free loopback port, opens the page in headless Chromium
(Debian's ``chromium`` and ``chromium-driver``) and chooses CLIP ``--runs`` times. Each time it
reads the batch's ``data-ms`` (the page's own ``performance.now()`` from the files chosen to the
cards drawn) and the request's ``Server-Timing`` total (the resource timing entry of
``/api/predict``). The first run is dropped (the page's own first-use costs); prints the medians
and the spread of the rest."""

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

SERVER_TOTAL = """
const entries = performance.getEntriesByType("resource").filter((e) => e.name.endsWith("/api/predict"));
const last = entries[entries.length - 1];
const get = (name) => { const t = last && last.serverTiming.find((x) => x.name === name); return t ? t.duration : null; };
return get("total") === null ? null : [get("total"), get("receive"), get("analyse")];
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clip")
    parser.add_argument("--model", default="models")
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    server = subprocess.Popen([sys.executable, "-m", "ser", "serve", "--model", args.model, "--port", "0", "-q",
                               "--examples", "none"], stdout=subprocess.PIPE, text=True)
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1000,900"):
        options.add_argument(flag)
    driver = None
    page, served = [], []
    try:
        url = server.stdout.readline().split()[1]
        driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
        driver.get(url)
        wait = WebDriverWait(driver, 120)
        wait.until(lambda d: d.find_element(By.ID, "formats").text)
        for n in range(1, args.runs + 1):
            driver.find_element(By.ID, "file-input").send_keys(str(Path(args.clip).resolve()))
            wait.until(lambda d: d.execute_script(
                "const b = document.querySelectorAll('#results .batch[data-ms], #results [data-ms]');"
                "return b.length >= arguments[0];", n))
            page.append(float(driver.execute_script(
                "return document.querySelector('#results [data-ms]').dataset.ms")))
            served.append(driver.execute_script(SERVER_TOTAL))
    finally:
        if driver:
            driver.quit()
        server.terminate()
        server.wait()
    page, served = page[1:], [s for s in served[1:] if s is not None]
    receive, analysed = [s[1] for s in served], [s[2] for s in served]
    served = [s[0] for s in served]
    print(f"{Path(args.clip).name}: {len(page)} warm runs")
    print(f"  chosen -> drawn (page): median {statistics.median(page):.0f} ms (min {min(page):.0f}, max {max(page):.0f})")
    if served:
        print(f"  server total:           median {statistics.median(served):.0f} ms "
              f"(min {min(served):.0f}, max {max(served):.0f}); receiving the upload "
              f"{statistics.median(receive):.1f} ms, the analysis {statistics.median(analysed):.0f} ms")


if __name__ == "__main__":
    main()
