"""The page of `makemore serve` in a real headless browser (Debian's chromium and chromium-driver, by selenium).

A run is trained here, served on 127.0.0.1 by the real server, and the page is used as a person
would: choose the run, set a prefix and a temperature, generate (Enter, from the keyboard), see the
items; type a prefix and see the next-character bars; score items and see each one's bars. The
screenshot it takes is the README's docs/serve.png. Skipped, with the reason, only where no browser
can be found (.ci/run installs one).
"""

from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path

import pytest

from .conftest import REPO
from .serving import running_server, train_folder

SCREENSHOT = REPO / "docs" / "serve.png"
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def browser_paths() -> tuple[str, str]:
    browser = next((p for p in map(shutil.which, BROWSERS) if p), None)
    driver = shutil.which("chromedriver") or next((p for p in ("/usr/lib/chromium/chromedriver",) if os.path.exists(p)), None)
    if not (browser and driver):
        pytest.skip("NO HEADLESS BROWSER: the end-to-end test of the page did NOT run. Install one with "
                    "`apt-get install -y chromium chromium-driver` (.ci/run does)")
    return browser, driver


@pytest.fixture
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed: pip install -e '.[test]'")
    binary, driver_path = browser_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000",
                "--force-color-profile=srgb", "--hide-scrollbars", "--lang=en-US"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def test_the_page_generates_scores_and_shows_next_characters(browser, tmp_path, names_path):
    pytest.importorskip("fastapi", reason="the web extra is not installed: pip install -e '.[web]'")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select, WebDriverWait

    from makemore.serve.catalog import load_catalog

    folder = train_folder(tmp_path / "essay", names_path, mlp_steps=1500)
    catalog = load_catalog([folder], {})
    wait = WebDriverWait(browser, 20)
    count = lambda css: len(browser.find_elements(By.CSS_SELECTOR, css))  # noqa: E731

    with running_server(catalog) as url:
        browser.get(url)
        wait.until(lambda d: count("#run-select option") == 2)
        Select(browser.find_element(By.ID, "run-select")).select_by_value("essay/mlp")
        wait.until(lambda d: "mlp" in d.find_element(By.ID, "run-card").text)

        # generate: prefix and temperature set, then Enter in a field submits the form (keyboard only)
        for field, value in (("s-prefix", "ka"), ("s-temperature", "0.8"), ("s-seed", "1")):
            box = browser.find_element(By.ID, field)
            box.clear()
            box.send_keys(value)
        browser.find_element(By.ID, "s-temperature").send_keys(Keys.ENTER)
        wait.until(lambda d: count("#sample-out tbody tr") == 12)
        items = [td.text for td in browser.find_elements(By.CSS_SELECTOR, "#sample-out tbody td.item")]
        assert all(item.startswith("ka") for item in items), items
        assert "seed 1" in browser.find_element(By.ID, "s-status").text

        # next character: typing a prefix draws its distribution as bars, live
        browser.find_element(By.ID, "n-prefix").send_keys("em")
        wait.until(lambda d: count("#next-bars .bar-row") == 12)
        expected = catalog.runs["essay/mlp"]
        from makemore.scoring import top_next_chars
        top_index, _ = top_next_chars(expected.model, expected.vocab, "em", 1)[0]
        first = "end" if top_index == 0 else f"'{expected.vocab.chars[top_index - 1]}'"
        wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#next-bars .bar-row .ch").text == first)

        # score: each item gets its numbers and one bar per character (and its end)
        textarea = browser.find_element(By.ID, "sc-items")
        textarea.clear()
        textarea.send_keys("emma\nkaelynn")
        browser.find_element(By.ID, "sc-go").click()
        wait.until(lambda d: count("#score-out .score-item") == 2)
        assert count("#score-out .char-col") == len("emma") + 1 + len("kaelynn") + 1
        assert "percentile" in browser.find_element(By.ID, "score-out").text

        # look inside: the heat map, the embeddings (2-d: drawn as they are) and the results chart
        wait.until(lambda d: count("#bigrams svg rect") == 27 * 27 and count("#embedding svg circle") == 27
                   and count("#results svg circle") == 2)
        assert "2 dimensions as they are" in browser.find_element(By.ID, "embedding-caption").text

        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors  # no script error, nothing blocked by the page's Content-Security-Policy
        save_full_page(browser, SCREENSHOT)
    assert SCREENSHOT.stat().st_size > 10_000


def save_full_page(browser, path: Path) -> None:
    """The whole page as a PNG, below the window's fold included (Chrome's DevTools screenshot)."""
    height = browser.execute_script("return document.documentElement.scrollHeight")
    width = browser.execute_script("return document.documentElement.scrollWidth")
    shot = browser.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True, "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}})
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(base64.b64decode(shot["data"]))
