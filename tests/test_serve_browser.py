"""The page of `makemore serve` in a real headless browser (Debian's chromium and chromium-driver, by selenium).

Runs are trained once here, served on 127.0.0.1 by the real server, and the page is used as a person
would: choose the run, set a prefix and a temperature, generate (Enter, from the keyboard), see the
items; type a prefix and see the next-character bars; score items and see each one's bars; ask for
items ending with a string, then tick "most likely" and see the library's best-first items, and the
note when the search's budget stops it; type an avoid list and tick "No repeats"; blend a labelled
run's labels with its sliders and see the library's items, bars and scores for that blend. Skipped, with the reason, only where no browser can be found
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


def chrome_options(webdriver, binary: str, logs: tuple[str, ...] = ("browser",)):
    """Headless Chromium's options for the page tests: a fixed window, sRGB, English, the `logs` logged."""
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={WINDOW[0]},{WINDOW[1]}", "--force-color-profile=srgb", "--hide-scrollbars",
                "--lang=en-US"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {log: "ALL" for log in logs})
    return options


@pytest.fixture
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed: pip install -e '.[test]'")
    binary, driver_path = browser_paths()
    options = chrome_options(webdriver, binary)
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


@pytest.fixture(scope="module")
def labelled_catalog(tmp_path_factory):
    """labelled/styles: bigram-counts on two files of the names, the short ones (at most 5 characters) and the long."""
    pytest.importorskip("fastapi", reason="the web extra is not installed: pip install -e '.[web]'")
    from makemore.serve.catalog import load_catalog

    from .conftest import call

    names = (names_dir_or_skip() / "names.txt").read_text().split()
    tmp = tmp_path_factory.mktemp("labelled")
    (tmp / "short.txt").write_text("\n".join(n for n in names if len(n) <= 5) + "\n")
    (tmp / "long.txt").write_text("\n".join(n for n in names if len(n) > 5) + "\n")
    code, _, err = call("train", "-i", tmp / "short.txt", "-i", tmp / "long.txt", "--model", "bigram-counts",
                        "-o", tmp / "labelled" / "styles", "--threads", "1", "--no-plot")
    assert code == 0, err
    return load_catalog([tmp / "labelled"], {})


def open_run(browser, url: str, run: str = "essay/mlp", runs: int = 2, card: str | None = None):
    """The page loaded (`runs` runs offered) and `run` chosen, its card showing `card` (default: the run's name,
    its model's); a WebDriverWait for what follows."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    wait = WebDriverWait(browser, 20)
    browser.get(url)
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#run-select option")) == runs)
    Select(browser.find_element(By.ID, "run-select")).select_by_value(run)
    wait.until(lambda d: (card or run.split("/")[-1]) in d.find_element(By.ID, "run-card").text)
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
        top_shown = "const e = document.querySelector('#next-bars .bar-row .ch'); return e && e.textContent"
        wait.until(lambda d: d.execute_script(top_shown) == first)  # read at once: the bars may be redrawn meanwhile

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


def shown_items(browser) -> list[str]:
    """The items the page shows, read at once (the table may be redrawn between two reads of its cells)."""
    return browser.execute_script(
        "return [...document.querySelectorAll('#sample-out tbody td.item')].map((td) => td.textContent)")


def test_the_page_avoids_entries_and_repeats(browser, catalog):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    find = browser.find_element
    with running_server(catalog) as url:
        wait = open_run(browser, url, "essay/bigram-counts")
        assert not find(By.ID, "s-labels").is_displayed()  # an unlabelled run: no label controls
        fill(browser, {"s-n": "300", "s-max-len": "4", "s-seed": "5"})
        find(By.ID, "s-seed").send_keys(Keys.ENTER)
        wait.until(lambda d: "seed 5" in find(By.ID, "s-status").text and len(shown_items(d)) == 300)
        free = shown_items(browser)
        assert len(set(free)) < len(free) and any("an" in it or "e" in it for it in free)  # repeats, and the entries

        # an avoid list typed one entry per line (any case), and No repeats ticked from the keyboard
        avoid = find(By.ID, "s-avoid")
        avoid.send_keys("AN")
        avoid.send_keys(Keys.ENTER)  # a new line, not a submit
        avoid.send_keys("e")
        box = find(By.ID, "s-unique")
        box.send_keys(Keys.SPACE)
        assert box.is_selected()
        find(By.ID, "s-go").click()
        wait.until(lambda d: len(shown_items(d)) == 300 and shown_items(d) != free)
        items = shown_items(browser)
        assert len(set(items)) == len(items) == 300, items  # no repeats
        assert not [it for it in items if "an" in it.lower() or "e" in it.lower()], items  # no entry

        # an empty line is no entry; a list that leaves no item is refused with the API's words
        avoid.clear()
        avoid.send_keys("\n".join("abcdefghijklmnopqrstuvwxyz") + "\n\n")
        find(By.ID, "s-go").click()
        wait.until(lambda d: d.find_element(By.ID, "sample-error").is_displayed())
        assert "avoid" in find(By.ID, "sample-error").text
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"
                  and "/api/sample" not in e["message"]]  # the 422 itself is logged by the browser
        assert not errors, errors


def test_the_page_blends_the_labels_of_a_labelled_run(browser, labelled_catalog):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    from makemore.bounds import MAX_REQUEST_CHARS
    from makemore.generation.request import GenerateRequest

    run = labelled_catalog.runs["labelled/styles"].run
    find = browser.find_element
    count = lambda css: len(browser.find_elements(By.CSS_SELECTOR, css))  # noqa: E731
    with running_server(labelled_catalog) as url:
        wait = open_run(browser, url, "labelled/styles", runs=1, card="short, long")  # its labels
        assert find(By.ID, "s-labels").is_displayed() and count("#s-blend-sliders input[type=range]") == 2
        options = [o.text for o in Select(find(By.ID, "s-label")).options]
        assert options[1:] == ["short", "long"]
        wait.until(lambda d: "choose a label" in find(By.ID, "next-bars").text)  # a labelled run's bars need one

        # a label: its bars; then the blend on (Space), the label choice off, the sliders on, the bars follow
        Select(find(By.ID, "s-label")).select_by_value("long")
        wait.until(lambda d: count("#next-bars .bar-row") == 12)
        blend = find(By.ID, "s-blend")
        blend.send_keys(Keys.SPACE)
        assert blend.is_selected() and not find(By.ID, "s-label").is_enabled()
        assert all(s.is_enabled() for s in browser.find_elements(By.CSS_SELECTOR, "#s-blend-sliders input"))
        slider = find(By.ID, "s-blend-0")  # short: from 0.5 down to 0.2, from the keyboard
        for _ in range(6):
            slider.send_keys(Keys.ARROW_LEFT)
        assert slider.get_attribute("value") == "0.2"
        assert find(By.CSS_SELECTOR, "output[for='s-blend-0']").text == "0.20"
        expected_next = run.next("", 1, blend={"short": 0.2, "long": 0.5}).next[0]
        first = "end" if expected_next.end else f"'{expected_next.char}'"
        top_bar = "const c = document.querySelector('#next-bars .bar-row .ch'); return c && c.textContent"
        wait.until(lambda d: count("#next-bars .bar-row") == 12 and d.execute_script(top_bar) == first)  # read at once

        # generate with the blend: the items the library draws with the same blend and seed
        fill(browser, {"s-n": "10", "s-seed": "3"})
        find(By.ID, "s-seed").send_keys(Keys.ENTER)
        wait.until(lambda d: "seed 3" in find(By.ID, "s-status").text and len(shown_items(d)) == 10)
        request = GenerateRequest(n=10, seed=3, blend=(("short", 0.2), ("long", 0.5)))
        assert shown_items(browser) == [s.item for s in run.generate(request, cap=MAX_REQUEST_CHARS).items]

        # score with the same blend: explain (which a labelled run allows only under a label or a blend) works
        textarea = find(By.ID, "sc-items")
        textarea.clear()
        textarea.send_keys("emma")
        find(By.ID, "sc-go").click()
        wait.until(lambda d: count("#score-out .char-col") == len("emma") + 1)
        scored = run.score(["emma"], blend={"short": 0.2, "long": 0.5}).items[0]
        assert f"{scored.log_prob:.4f}" in find(By.ID, "score-out").text
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
