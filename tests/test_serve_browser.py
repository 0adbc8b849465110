"""The page of `makemore serve` in a real headless browser (Debian's chromium and chromium-driver, by selenium).

Runs are trained once here, served on 127.0.0.1 by the real server, and the page is used as a person
would: choose the run, set a prefix and a temperature, generate (Enter, from the keyboard), see the
items; type a prefix and see the next-character bars; score items and see each one's bars; ask for
items ending with a string, then tick "most likely" and see the library's best-first items, and the
note when the search's budget stops it. Skipped, with the reason, only where no browser can be found
(.ci/run installs one).

The first test takes a screenshot of the whole page and checks it is a PNG of the page's size. It is saved
under pytest's tmp_path unless the environment variable MAKEMORE_SCREENSHOT names where to save it:
MAKEMORE_SCREENSHOT=1 writes the README's docs/serve.png, any other value is a path
(MAKEMORE_SCREENSHOT=/tmp/serve.png). Only then is a file outside tmp_path written.
"""

from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path

import pytest

from .conftest import REPO, names_dir_or_skip
from .serving import running_server, train_folder

README_SCREENSHOT = REPO / "docs" / "serve.png"  # written only with MAKEMORE_SCREENSHOT=1
WINDOW = (1400, 1000)  # the browser window's size in CSS pixels (the screenshot's width, and its least height)
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
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={WINDOW[0]},{WINDOW[1]}", "--force-color-profile=srgb", "--hide-scrollbars",
                "--lang=en-US"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    """essay/bigram-counts and essay/mlp trained once on all the names, for every test here."""
    pytest.importorskip("fastapi", reason="the web extra is not installed: pip install -e '.[web]'")
    from makemore.serve.catalog import load_catalog

    names_dir = names_dir_or_skip()
    folder = train_folder(tmp_path_factory.mktemp("browser") / "essay", names_dir / "names.txt", mlp_steps=1500)
    return load_catalog([folder], {})


def open_run(browser, url: str, run: str = "essay/mlp"):
    """The page loaded and `run` chosen; a WebDriverWait for what follows."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    wait = WebDriverWait(browser, 20)
    browser.get(url)
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#run-select option")) == 2)
    Select(browser.find_element(By.ID, "run-select")).select_by_value(run)
    wait.until(lambda d: run.split("/")[-1] in d.find_element(By.ID, "run-card").text)
    return wait


def fill(browser, values: dict[str, str]) -> None:
    from selenium.webdriver.common.by import By

    for field, value in values.items():
        box = browser.find_element(By.ID, field)
        box.clear()
        box.send_keys(value)


def screenshot_path(tmp_path: Path) -> Path:
    """Where the screenshot goes: MAKEMORE_SCREENSHOT's path ("1": docs/serve.png), else tmp_path/serve.png."""
    given = os.environ.get("MAKEMORE_SCREENSHOT", "")
    if not given:
        return tmp_path / "serve.png"
    return README_SCREENSHOT if given == "1" else Path(given)


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) of a whole PNG file: its signature, its IHDR chunk first and its IEND chunk last."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", data[:16]
    assert data[-12:] == b"\x00\x00\x00\x00IEND\xaeB`\x82", data[-12:]  # not cut short
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_the_page_generates_scores_and_shows_next_characters(browser, catalog, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    count = lambda css: len(browser.find_elements(By.CSS_SELECTOR, css))  # noqa: E731

    with running_server(catalog) as url:
        wait = open_run(browser, url)

        # generate: prefix and temperature set, then Enter in a field submits the form (keyboard only)
        fill(browser, {"s-prefix": "ka", "s-temperature": "0.8", "s-seed": "1"})
        browser.find_element(By.ID, "s-temperature").send_keys(Keys.ENTER)
        wait.until(lambda d: count("#sample-out tbody tr") == 12)
        items = [td.text for td in browser.find_elements(By.CSS_SELECTOR, "#sample-out tbody td.item")]
        assert all(item.startswith("ka") for item in items), items
        assert "seed 1" in browser.find_element(By.ID, "s-status").text

        # next character: typing a prefix draws its distribution as bars, live
        browser.find_element(By.ID, "n-prefix").send_keys("em")
        wait.until(lambda d: count("#next-bars .bar-row") == 12)
        expected = catalog.runs["essay/mlp"]
        from makemore.generation.scoring import top_next_chars
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
        shot = screenshot_path(tmp_path)
        width, height = save_full_page(browser, shot)
    data = shot.read_bytes()
    assert png_size(data) == (width, height) and width == WINDOW[0] and height >= WINDOW[1], (png_size(data), height)
    assert len(data) > 10_000  # the page drawn, not a blank


def save_full_page(browser, path: Path) -> tuple[int, int]:
    """The whole page as a PNG, below the window's fold included (Chrome's DevTools screenshot); its size in
    CSS pixels (at scale 1, its size in pixels)."""
    height = browser.execute_script("return document.documentElement.scrollHeight")
    width = browser.execute_script("return document.documentElement.scrollWidth")
    shot = browser.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True, "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(shot["data"]))
    return width, height


def test_the_page_finds_the_most_likely_items_and_honours_an_ending(browser, catalog):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from .generating import most_likely

    run = catalog.runs["essay/mlp"]
    find = browser.find_element

    def rows() -> list[tuple[str, str]]:  # (item, log p) as the page shows them
        return [(tr.find_element(By.CSS_SELECTOR, "td.item").text, tr.find_element(By.CSS_SELECTOR, "td.num").text)
                for tr in browser.find_elements(By.CSS_SELECTOR, "#sample-out tbody tr")]

    with running_server(catalog) as url:
        wait = open_run(browser, url)

        # random items that end with "a": typed in "Ends with", generated with Enter
        fill(browser, {"s-n": "8", "s-suffix": "a", "s-seed": "2"})
        find(By.ID, "s-suffix").send_keys(Keys.ENTER)
        wait.until(lambda d: "seed 2" in find(By.ID, "s-status").text and len(rows()) == 8)
        assert all(item.endswith("a") for item, _ in rows()), rows()

        # most likely, from the keyboard (Space ticks the box): the random-only controls are off, the budget on
        box = find(By.ID, "s-most-likely")
        box.send_keys(Keys.SPACE)
        assert box.is_selected()
        assert all(not find(By.ID, i).is_enabled() for i in ("s-temperature", "s-top-k", "s-top-p", "s-seed"))
        assert find(By.ID, "s-max-expansions").is_enabled()
        fill(browser, {"s-contains": "l", "s-min-len": "3"})
        find(By.ID, "s-contains").send_keys(Keys.ENTER)
        wait.until(lambda d: "most likely, exact" in find(By.ID, "s-status").text)
        expected = most_likely(run.model, run.vocab, 8, max_len=run.default_max_len, suffix="a", contains="l", min_len=3)
        assert rows() == [(s.item, f"{s.log_prob:.4f}") for s in expected.items]  # the library's, best first
        assert not browser.find_elements(By.ID, "s-inexact")

        # a budget too small for an exact answer: said under the items
        fill(browser, {"s-max-expansions": "2"})
        find(By.ID, "s-max-expansions").send_keys(Keys.ENTER)
        wait.until(lambda d: d.find_elements(By.ID, "s-inexact"))
        assert "Not exact" in find(By.ID, "s-inexact").text and "not exact" in find(By.ID, "s-status").text

        box.send_keys(Keys.SPACE)  # unticked: back to random draws
        assert find(By.ID, "s-temperature").is_enabled() and not find(By.ID, "s-max-expansions").is_enabled()
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
