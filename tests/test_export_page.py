"""The page `makemore export RUN_DIR -o names.html` writes, opened from disk (file://) in headless Chromium.

A tiny run is exported with `page_text(bundle(run))` into a temporary .html and used as a person would: generate
(the same seed gives the same items, another seed others), type a prefix and see the next-character bars (the
library's most likely character on top), score items (the library's log-probabilities within 1e-5), copy and
download the items. Throughout, the page asks the network for nothing (Chrome's performance log, the page's own
resource timing) and logs no error (a Content-Security-Policy violation would be one). A labelled run's page
offers its labels and generates, bars and scores for the one chosen (the items the exported module draws in Node
for the same seed). A hostile list, whose items and labels are markup, script, quotes, backslashes and U+2028,
exports to a page that shows them as text and runs nothing of them.

Skipped, with the reason, only where no browser can be found (.ci/run installs one).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import json
import subprocess
import time
import unicodedata
from html.parser import HTMLParser
from pathlib import Path

import pytest

from makemore.export.bundle import bundle
from makemore.export.web import module_text, page_text

from .conftest import call
from .exporting import node, tiny_run
from .test_serve_browser import browser_paths, chrome_options

# what the hostile list's items try: to end the page's script and start one, to run a handler, to break a string
HOSTILE_ITEMS = [
    "</script><script>alert(1)</script>",
    "</script><script>window.__pwned=1</script>",
    "<img src=x onerror=alert(2)>",
    "<img src=x onerror=window.__pwned=2>",
    "<svg onload=window.__pwned=3>",
    "\"quotes'",
    "back\\slash",
    "line\u2028separator",
    "para\u2029graph",
    "<!--",
    "{{SCRIPT}}",
    "&amp;&lt;",
    "`${window.__pwned=4}`",
]
HOSTILE_LABELS = ["</script><script>window.__pwned=5</script>", "<b onmouseover=window.__pwned=6>\"q'\\</b>"]
NAMES = "anna bob cara dan ella finn gus hana ivan jo kai lea max nia oscar pia quinn rosa".split()


@pytest.fixture
def browser(tmp_path):
    """Headless Chromium with its console and its network events logged, downloads saved to tmp_path/downloads."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed: pip install -e '.[test]'")
    binary, driver_path = browser_paths()
    options = chrome_options(webdriver, binary, ("browser", "performance"))
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(30)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    driver.downloads = downloads
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Tiny runs, trained once for the module: an mlp, and a labelled mlp (labels short and long)."""
    folder = tmp_path_factory.mktemp("export-page")
    return {"mlp": tiny_run("mlp", folder), "labelled": tiny_run("mlp", folder, labelled=True)}


def export(run, path: Path, **options) -> str:
    """The run's page written to `path`; its file:// URL."""
    path.write_text(page_text(bundle(run, **options)), encoding="utf-8")
    return path.as_uri()


def open_page(browser, url: str, model: str):
    """The page opened from disk, its run's card shown; a WebDriverWait for what follows."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 20)
    browser.get(url)
    wait.until(lambda d: model in d.find_element(By.ID, "run-card").text)
    assert not browser.find_element(By.ID, "load-error").is_displayed()
    return wait


def fill(browser, values: dict[str, str]) -> None:
    from selenium.webdriver.common.by import By

    for field, value in values.items():
        box = browser.find_element(By.ID, field)
        box.clear()
        if value:
            box.send_keys(value)


def set_value(browser, field: str, value: str) -> None:
    """A field's value set by script: characters a keyboard cannot type (U+2028) too."""
    browser.execute_script("document.getElementById(arguments[0]).value = arguments[1]", field, value)


def generate(browser, wait, n: int, **values) -> list[dict]:
    """Generate with these fields (s-<name>): the rows shown, [{item, log_prob, label?}], read at once."""
    from selenium.webdriver.common.by import By

    browser.execute_script("document.getElementById('sample-out').replaceChildren();"
                           "document.getElementById('s-status').textContent = ''")
    fill(browser, {"s-n": str(n), **{f"s-{k.replace('_', '-')}": str(v) for k, v in values.items()}})
    browser.find_element(By.ID, "s-go").click()
    wait.until(lambda d: d.find_element(By.ID, "s-status").text.startswith("seed ")
               or d.find_element(By.ID, "sample-error").is_displayed())
    assert not browser.find_element(By.ID, "sample-error").is_displayed(), \
        browser.find_element(By.ID, "sample-error").text
    return browser.execute_script(
        "return [...document.querySelectorAll('#sample-out tbody tr')].map((tr) => ({"
        "item: tr.querySelector('td.item').textContent,"
        "label: tr.querySelector('td.label') ? tr.querySelector('td.label').textContent : null,"
        "log_prob: Number(tr.querySelector('td.num').dataset.logProb)}))")


def top_bar(browser, wait, prefix: str, k: int) -> tuple[str, float]:
    """The next-character bars for `prefix` typed: the top bar's label and probability, once `k` bars show."""
    from selenium.webdriver.common.by import By

    browser.execute_script("document.getElementById('next-bars').replaceChildren()")
    box = browser.find_element(By.ID, "n-prefix")
    box.clear()
    if prefix:
        box.send_keys(prefix)  # typed: the bars follow the input
    else:
        browser.execute_script("document.getElementById('n-prefix').dispatchEvent(new Event('input'))")
    read = ("const rows = document.querySelectorAll('#next-bars .bar-row');"
            "return [rows.length, rows.length ? rows[0].querySelector('.ch').textContent : null,"
            " rows.length ? Number(rows[0].dataset.prob) : null, document.getElementById('n-prefix').value]")
    wait.until(lambda d: (lambda r: r[0] == k and r[3] == prefix)(d.execute_script(read)))
    time.sleep(0.2)  # a pending redraw (60 ms after the last key) has happened
    count, label, prob, value = browser.execute_script(read)
    assert count == k and value == prefix
    return label, prob


def shown(c: str) -> str:
    """How the page shows a character: a space as ␠, another blank or invisible one (Unicode's C and Z) as U+XXXX."""
    if c == " ":
        return "␠"
    return f"U+{ord(c):04X}" if unicodedata.category(c)[0] in "CZ" else c


def shown_char(choice) -> str:
    """How the page labels a bar: end, or the character in quotes."""
    return "end" if choice.end else f"'{shown(choice.char)}'"


def score(browser, wait, items: list[str]) -> list[dict]:
    """Items scored by the page: [{item, log_prob, nll}] as it shows them."""
    from selenium.webdriver.common.by import By

    browser.execute_script("document.getElementById('score-out').replaceChildren()")
    set_value(browser, "sc-items", "\n".join(items))
    browser.find_element(By.ID, "sc-go").click()
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#score-out .score-item")) == len(items)
               or d.find_element(By.ID, "score-error").is_displayed())
    error = browser.find_element(By.ID, "score-error")
    assert not error.is_displayed(), error.text
    return browser.execute_script(
        "return [...document.querySelectorAll('#score-out .score-item')].map((d) => ({"
        "item: d.querySelector('.score-head .item').textContent,"
        "log_prob: Number(d.querySelector('[data-log-prob]').dataset.logProb),"
        "nll: Number(d.querySelector('[data-nll]').dataset.nll),"
        "cols: d.querySelectorAll('.char-col').length}))")


def choose(browser, field: str, value: str) -> None:
    """A <select>'s option chosen by its value, as a person's choice would (a change event)."""
    browser.execute_script("const s = document.getElementById(arguments[0]); s.value = arguments[1];"
                           "if (s.value !== arguments[1]) throw new Error('no option ' + arguments[1]);"
                           "s.dispatchEvent(new Event('change'))", field, value)


def requests_made(browser) -> list[str]:
    """The URLs the page asked for since the last call (Chrome's performance log of network events)."""
    urls = []
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def assert_offline_and_clean(browser, url: str) -> None:
    """Nothing but the page itself was requested (blob: and data: URLs are the page's own downloads), nothing
    was fetched as a resource, and the console holds no error (nor a CSP violation, which is one)."""
    urls = requests_made(browser)
    assert url in urls, urls  # the log is on: it saw the page itself load
    foreign = [u for u in urls if u != url and not u.startswith(("blob:", "data:"))]
    assert not foreign, foreign
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors


def test_the_page_generates_shows_bars_and_scores_offline(browser, runs, tmp_path):
    from selenium.webdriver.common.by import By

    run = runs["mlp"]
    url = export(run, tmp_path / "names.html")
    wait = open_page(browser, url, "mlp")
    card = browser.find_element(By.ID, "run-card").text
    assert f"{run.meta['params']:,}" in card and "vocabulary" in card.lower()
    test_nll = browser.execute_script("return Number(document.querySelector('[data-test-nll]').dataset.testNll)")
    assert abs(test_nll - run.meta["metrics"]["test_nll"]) < 1e-9
    vocab = browser.execute_script("return [...document.querySelectorAll('#vocab .ch')].map((c) => c.title)")
    assert len(vocab) == len(run.vocab.chars)
    assert not browser.find_element(By.ID, "s-novel").is_enabled()  # no training items in this page
    assert not browser.find_element(By.ID, "s-labels").is_displayed()  # an unlabelled run: no label choice

    # generate: the same seed twice gives the same items, another seed others
    first = generate(browser, wait, 8, seed=7, prefix="")
    again = generate(browser, wait, 8, seed=7)
    other = generate(browser, wait, 8, seed=8)
    assert len(first) == 8 and first == again, (first, again)
    assert [r["item"] for r in other] != [r["item"] for r in first]
    assert browser.find_element(By.ID, "s-status").text.startswith("seed 8,")
    assert all(set(r["item"]) <= set(run.vocab.chars) for r in first)
    # each item's log-probability is the library's
    for row in first[:3]:
        assert abs(row["log_prob"] - run.score([row["item"]]).items[0].log_prob) < 1e-4, row
    # the controls: a prefix, a length range, top-k
    constrained = generate(browser, wait, 6, seed=1, prefix="a", min_len=3, max_len=6, top_k=5)
    assert all(r["item"].startswith("a") and 3 <= len(r["item"]) <= 6 for r in constrained), constrained
    ending = generate(browser, wait, 3, seed=2, prefix="", min_len=0, max_len="", top_k="", suffix="a")
    assert all(r["item"].endswith("a") for r in ending), ending
    fill(browser, {"s-suffix": ""})

    # a bad value is said in the error line, not an alert
    fill(browser, {"s-temperature": "0"})
    browser.find_element(By.ID, "s-go").click()
    wait.until(lambda d: d.find_element(By.ID, "sample-error").is_displayed())
    assert "temperature" in browser.find_element(By.ID, "sample-error").text.lower()
    fill(browser, {"s-temperature": "1"})
    items = generate(browser, wait, 5, seed=11)

    # copy: to the clipboard, or said so and the items selected to copy by hand
    browser.find_element(By.ID, "s-copy").click()
    wait.until(lambda d: "copied 5 items" in d.find_element(By.ID, "s-status").text
               or "refused the clipboard" in d.find_element(By.ID, "s-status").text)
    # download: a CSV of the items and their log-probabilities, under the page's CSP
    browser.find_element(By.ID, "s-download").click()
    wait.until(lambda d: [p for p in d.downloads.glob("*.csv")])
    csv_file = next(browser.downloads.glob("*.csv"))
    wait.until(lambda d: len(csv_file.read_text(encoding="utf-8").splitlines()) == 6)
    rows = list(csv.reader(csv_file.open(encoding="utf-8", newline="")))
    assert rows[0] == ["item", "log_prob"] and [r[0] for r in rows[1:]] == [r["item"] for r in items]
    browser.find_element(By.ID, "s-download-txt").click()
    wait.until(lambda d: [p for p in d.downloads.glob("*.txt")])
    txt = next(browser.downloads.glob("*.txt"))
    wait.until(lambda d: txt.read_text(encoding="utf-8").splitlines() == [r["item"] for r in items])

    # next character: typing a prefix draws its distribution; the top bar is the library's most likely character
    for prefix in ("", "ka", "zo", "anne-"):
        expected = run.next(prefix, 1).next[0]
        label, prob = top_bar(browser, wait, prefix, 12)
        assert label == shown_char(expected), (prefix, label, expected)
        assert abs(prob - expected.prob) < 1e-5, (prefix, prob, expected.prob)
    # a character the model never saw: said in the error line
    browser.find_element(By.ID, "n-prefix").send_keys("#")
    wait.until(lambda d: d.find_element(By.ID, "next-error").is_displayed())
    assert "never saw" in browser.find_element(By.ID, "next-error").text

    # score: each item's log-probability and NLL per character are the library's
    words = ["emma", "zoë", "o'neil", "x"]
    scored = score(browser, wait, words)
    for row, word in zip(scored, words):
        expected = run.score([word]).items[0]
        assert row["item"] == word
        assert abs(row["log_prob"] - expected.log_prob) < 1e-5, (row, expected)
        assert abs(row["nll"] - expected.nll_per_char) < 1e-5, (row, expected)
        assert row["cols"] == len(word) + 1  # each character explained, and the end
    set_value(browser, "sc-items", "emma\nq#")
    browser.find_element(By.ID, "sc-go").click()
    wait.until(lambda d: d.find_element(By.ID, "score-error").is_displayed())
    assert "never saw" in browser.find_element(By.ID, "score-error").text

    assert browser.execute_script("return document.scripts.length") == 2
    assert_offline_and_clean(browser, url)


def test_a_labelled_run_generates_bars_and_scores_for_the_label_chosen(browser, runs, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    run = runs["labelled"]
    url = export(run, tmp_path / "labelled.html")
    wait = open_page(browser, url, "mlp")
    assert browser.find_element(By.ID, "s-labels").is_displayed()
    choice = Select(browser.find_element(By.ID, "s-label"))
    assert [o.get_attribute("value") for o in choice.options] == ["", "short", "long"]
    assert "short, long" in browser.find_element(By.ID, "run-card").text
    wait.until(lambda d: "choose a label" in d.find_element(By.ID, "next-bars").text)  # bars are one label's

    choice.select_by_value("long")
    expected = run.next("", 1, label="long").next[0]
    label, prob = top_bar(browser, wait, "", 12)
    assert label == shown_char(expected) and abs(prob - expected.prob) < 1e-5
    expected = run.next("ma", 1, label="long").next[0]
    label, prob = top_bar(browser, wait, "ma", 12)
    assert label == shown_char(expected) and abs(prob - expected.prob) < 1e-5

    rows = generate(browser, wait, 10, seed=3)
    assert [r["label"] for r in rows] == ["long"] * 10
    # the items the exported module draws in Node for the same label and seed: one generator, any engine
    (tmp_path / "run.mjs").write_text(module_text(bundle(run)), encoding="utf-8")
    (tmp_path / "draw.mjs").write_text(
        'import { sample } from "./run.mjs";\n'
        'console.log(JSON.stringify(sample({ n: 10, seed: 3, label: "long" }).items.map((s) => s.item)));\n',
        encoding="utf-8")
    done = subprocess.run([node(), str(tmp_path / "draw.mjs")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert [r["item"] for r in rows] == json.loads(done.stdout)

    # every label: each item's label drawn by its share, and shown
    choice.select_by_value("")
    mixed = generate(browser, wait, 20, seed=4)
    assert {r["label"] for r in mixed} <= {"short", "long"} and len({r["label"] for r in mixed}) == 2

    # scores: under the label chosen, or the run as a whole
    for label in ("short", ""):
        choice.select_by_value(label)
        row = score(browser, wait, ["emma"])[0]
        assert abs(row["log_prob"] - run.score(["emma"], label=label or None).items[0].log_prob) < 1e-5
    assert "choose a label to explain" in browser.find_element(By.ID, "score-out").text
    assert_offline_and_clean(browser, url)


def test_a_page_that_cannot_load_its_run_says_so(browser, runs, tmp_path):
    from selenium.webdriver.common.by import By

    broken = bundle(runs["mlp"])
    broken["model"] = "no-such-model"
    path = tmp_path / "broken.html"
    path.write_text(page_text(broken), encoding="utf-8")
    browser.get(path.as_uri())
    error = browser.find_element(By.ID, "load-error")
    assert error.is_displayed() and "no model no-such-model" in error.text
    assert not browser.find_element(By.ID, "s-go").is_enabled()
    assert not [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]  # said on the page, not thrown


class Tags(HTMLParser):
    """A page's elements, in order: (tag, attributes, text inside); what a browser would parse, no more."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[list] = []
        self.inside: str | None = None  # the script, style or title element open

    def handle_starttag(self, tag, attrs):
        self.tags.append([tag, dict(attrs), ""])
        self.inside = tag if tag in ("script", "style", "title") else None

    def handle_endtag(self, tag):
        self.inside = None

    def handle_data(self, data):
        if self.inside:
            self.tags[-1][2] += data


def sha256(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


def test_the_page_is_one_file_that_loads_nothing(runs):
    """Without a browser: the CSP first in <head>, one style and one code script (their hashes in the CSP), the
    bundle as data, no handler or style attribute, nothing that points outside the page."""
    parser = Tags()
    parser.feed(page_text(bundle(runs["labelled"])))
    tags = parser.tags
    assert [t[0] for t in tags[:3]] == ["html", "head", "meta"]
    assert tags[2][1]["http-equiv"] == "Content-Security-Policy"
    csp = dict(part.strip().split(" ", 1) for part in tags[2][1]["content"].split(";"))
    assert csp["default-src"] == "'none'" and csp["base-uri"] == "'none'"
    scripts = [t for t in tags if t[0] == "script"]
    styles = [t for t in tags if t[0] == "style"]
    assert len(scripts) == 2 and len(styles) == 1
    assert scripts[0][1] == {"type": "application/json", "id": "bundle"}
    assert json.loads(scripts[0][2])["model"] == "mlp"
    assert scripts[1][1] == {} and csp["script-src"] == f"'{sha256(scripts[1][2])}'"
    assert csp["style-src"] == f"'{sha256(styles[0][2])}'"
    for tag, attrs, _ in tags:
        assert not [a for a in attrs if a.startswith("on") or a == "style"], (tag, attrs)
        assert "src" not in attrs, (tag, attrs)
        if "href" in attrs:
            assert attrs["href"] in ("#generate", "data:,"), (tag, attrs)


def hostile_run(folder: Path):
    """bigram-counts trained by the command line on a table whose items and labels are markup and script."""
    rows = [(item, label) for label in HOSTILE_LABELS for item in HOSTILE_ITEMS + NAMES]
    table = folder / "hostile.csv"
    with table.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["item", "label"])
        writer.writerows(rows)
    code, _, err = call("train", "-i", table, "--item-column", "item", "--label-column", "label",
                        "--model", "bigram-counts", "-o", folder / "hostile", "--threads", "1", "--no-plot")
    assert code == 0, err
    import makemore as mm
    return mm.Run.load(folder / "hostile", "cpu")


def test_a_hostile_list_shows_as_text_and_runs_nothing(browser, tmp_path):
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    run = hostile_run(tmp_path)
    assert set(run.training_items()) == set(HOSTILE_ITEMS + NAMES) and list(run.labels.names) == HOSTILE_LABELS
    text = page_text(bundle(run, with_training_items=True))
    assert text.count("<script") == 2 and text.count("</script>") == 2  # the page's own two, none from the data
    assert "\u2028" not in text and "\u2029" not in text
    url = tmp_path / "hostile.html"
    url.write_text(text, encoding="utf-8")
    url = url.as_uri()
    wait = open_page(browser, url, "bigram-counts")

    # the vocabulary and the labels, as text
    vocab = browser.execute_script("return [...document.querySelectorAll('#vocab .ch')].map((c) => c.textContent)")
    assert vocab == [shown(c) for c in run.vocab.chars]
    assert {"<", ">", "/", "\"", "'", "\\", "U+2028", "U+2029", "`", "$", "{", "&"} <= set(vocab)
    assert browser.find_element(By.ID, "card-labels").text == ", ".join(HOSTILE_LABELS)
    choice = Select(browser.find_element(By.ID, "s-label"))
    assert [o.get_attribute("value") for o in choice.options] == ["", *HOSTILE_LABELS]
    assert [o.text for o in choice.options][1:] == HOSTILE_LABELS

    # generate for a hostile label: its name shown as each item's label; novel only skips the training items
    choose(browser, "s-label", HOSTILE_LABELS[1])  # by script: Select's CSS selector cannot quote a backslash
    rows = generate(browser, wait, 30, seed=1)
    assert [r["label"] for r in rows] == [HOSTILE_LABELS[1]] * 30
    browser.find_element(By.ID, "s-novel").click()
    assert browser.find_element(By.ID, "s-novel").is_selected()
    novel = generate(browser, wait, 30, seed=1)
    assert not {r["item"] for r in novel} & set(HOSTILE_ITEMS + NAMES) and len({r["item"] for r in novel}) == 30
    browser.find_element(By.ID, "s-novel").click()
    many = generate(browser, wait, 1000, seed=2, max_len=60)
    assert any("<" in r["item"] and ">" in r["item"] for r in many)  # markup drawn, and shown as text

    # score the hostile items: each shown as the very text it is, with the library's log-probability
    scored = score(browser, wait, HOSTILE_ITEMS)
    assert [r["item"] for r in scored] == HOSTILE_ITEMS
    for row, item in zip(scored, HOSTILE_ITEMS):
        assert abs(row["log_prob"] - run.score([item], label=HOSTILE_LABELS[1]).items[0].log_prob) < 1e-5, item
    # the bars after a hostile prefix
    expected = run.next("<img src=x", 1, label=HOSTILE_LABELS[1]).next[0]
    label, _ = top_bar(browser, wait, "<img src=x", 12)
    assert label == shown_char(expected)

    # nothing of it ran: no alert, no flag set, no element but the page's own
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text
    assert browser.execute_script("return typeof window.__pwned") == "undefined"
    assert browser.execute_script("return document.scripts.length") == 2
    foreign = "img, svg, iframe, object, embed, link:not([rel=icon])"
    assert browser.execute_script("return document.querySelectorAll(arguments[0]).length", foreign) == 0
    handlers = browser.execute_script(
        "return [...document.querySelectorAll('*')].flatMap((e) => [...e.attributes].map((a) => a.name))"
        ".filter((n) => n.startsWith('on'))")
    assert handlers == []
    assert_offline_and_clean(browser, url)
