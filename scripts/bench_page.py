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
from pathlib import Path

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from serve_screenshot import served_page  # scripts/ is on sys.path when a script runs

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
    page, served = [], []
    with served_page(args.model, 1000, "--examples", "none") as (driver, _):
        wait = WebDriverWait(driver, 120)
        for n in range(1, args.runs + 1):
            driver.find_element(By.ID, "file-input").send_keys(str(Path(args.clip).resolve()))
            wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#results [data-ms]")) >= n)
            page.append(float(driver.execute_script(
                "return document.querySelector('#results [data-ms]').dataset.ms")))
            served.append(driver.execute_script(SERVER_TOTAL))
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
