"""The labeling page in a real browser: Debian's headless Chromium driven by Selenium.

The real server (uvicorn in a thread, :func:`tfgym.labeling.server.running_server`) serves a
queue on a temporary SQLite file. The browser opens the page as a labeler, presses the
shortcut keys and the tests read the answers back from the store: the right labeler, and the
randomised sides mapped back to the items the person saw. Nothing is downloaded: the browser
and its driver are the system's (``/usr/bin/chromium``, ``/usr/bin/chromedriver``), given to
Selenium explicitly so that selenium-manager never runs; without them the tests skip.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import time
from pathlib import Path

import pytest
from PIL import Image

from tfgym.labeling.server import running_server
from tfgym.preferences.queue import ComparisonRequest, Item, LabelQueue

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

pytestmark = pytest.mark.skipif(
    not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()),
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium "
    "chromium-driver): /usr/bin/chromium or /usr/bin/chromedriver is missing",
)

WAIT_S = 15.0


def png(color: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(buffer, format="PNG")
    return buffer.getvalue()


def item(n: int) -> Item:
    """Item ``n``: own colours per view, key ``item-n``."""
    views = {"front": png((n * 29 % 256, 40, 90)), "side": png((n * 29 % 256, 41, 90))}
    return Item(
        action=(0.1 * (n % 9), -1.0, 1.0, -1.0, 1.0, 1.0, 0.1, 1.0), views=views, key=f"item-{n}"
    )


def pair(n: int) -> ComparisonRequest:
    return ComparisonRequest("headsq", (item(2 * n), item(2 * n + 1)))


def sha_keys(requests) -> dict[str, str]:
    return {
        hashlib.sha256(png).hexdigest(): it.key
        for r in requests
        for it in r.items
        for png in it.views.values()
    }


@pytest.fixture(scope="module")
def driver():
    os.environ["SE_OFFLINE"] = "true"  # belt and braces: selenium-manager must not download
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
        "--no-first-run",
        "--disable-extensions",
    ):
        options.add_argument(arg)  # fmt: skip
    browser = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    yield browser
    browser.quit()


@pytest.fixture
def served(tmp_path):
    with LabelQueue(tmp_path / "labels.sqlite", seed=1) as queue:
        with running_server(queue, poll_s=0.25) as url:
            yield queue, url


def wait_for(driver, condition, what: str):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT_S, poll_frequency=0.05).until(
        lambda d: condition(d), message=f"timed out waiting for {what}"
    )


def body_data(driver, name: str) -> str | None:
    return driver.find_element("tag name", "body").get_attribute(f"data-{name}")


def shown(driver, by_sha: dict[str, str]) -> tuple[int, list[str]]:
    """The pair id and the keys of the items on the left and right, from the DOM."""
    task = driver.find_element("id", "task")
    keys = []
    for position in (0, 1):
        img = task.find_element(
            "css selector", f'.item[data-position="{position}"] img[data-view="front"]'
        )
        match = re.search(r"/api/rendering/([0-9a-f]{64})\.png$", img.get_attribute("src"))
        assert match, img.get_attribute("src")
        keys.append(by_sha[match.group(1)])
    return int(task.get_attribute("data-pair-id")), keys


def shown_id(driver) -> int:
    return int(driver.find_element("id", "task").get_attribute("data-pair-id") or 0)


def press(driver, key: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(driver).send_keys(key).perform()


def test_shortcut_keys_answer_and_sides_map_back(driver, served):
    from selenium.webdriver.common.keys import Keys

    queue, url = served
    requests = [pair(n) for n in range(5)]
    queue.enqueue(requests)
    by_sha = sha_keys(requests)
    driver.get(f"{url}/?labeler=dr-a")
    presses = [(Keys.ARROW_LEFT, "left"), (Keys.ARROW_RIGHT, "right"), ("e", "equal"),
               ("s", "skip"), (Keys.ARROW_DOWN, "equal")]  # fmt: skip
    seen: dict[int, tuple[str, list[str]]] = {}
    for count, (key, word) in enumerate(presses, start=1):
        wait_for(driver, lambda d: body_data(d, "state") == "task", "a pair on the page")
        wait_for(driver, lambda d: shown_id(d) not in seen, "a new pair")
        pair_id, keys = shown(driver, by_sha)
        assert driver.find_element("id", "scene").text == "headsq"
        images = driver.find_elements("css selector", "#task .item figure img")
        assert [im.get_property("naturalWidth") for im in images] == [8, 8, 8, 8]
        seen[pair_id] = (word, keys)
        time.sleep(0.05)  # a measurable lead time
        press(driver, key)
        saved = str(count)
        wait_for(driver, lambda d, n=saved: body_data(d, "saved") == n, f"answer {saved} saved")
        toast = driver.find_element("id", "toast")
        assert "Saved" in toast.text and "show" in toast.get_attribute("class")
    wait_for(driver, lambda d: body_data(d, "state") == "empty", "the empty state")
    assert "Nothing to label right now" in driver.find_element("id", "empty").text
    assert driver.find_element("id", "done").text == "5"

    answers = {a.pair_id: a for a in queue.answers()}
    assert set(answers) == set(seen)
    for pair_id, (word, (left, right)) in seen.items():
        stored = answers[pair_id]
        assert stored.labeler == "dr-a" and stored.answer == word
        assert stored.lead_time_s is not None and 0.04 < stored.lead_time_s < 30
        first = stored.keys[0]
        assert {left, right} == set(stored.keys)
        expected = {"left": 1.0 if first == left else 0.0, "right": 1.0 if first == right else 0.0,
                    "equal": 0.5, "skip": None}[word]  # fmt: skip
        assert stored.mu == expected, (word, left, right, stored.keys)
    prefs = queue.store.records(labeler="dr-a")
    assert len(prefs) == 4  # the skip wrote no preference
    sides_swapped = [seen[p][1][0] != answers[p].keys[0] for p in seen]
    assert any(sides_swapped) and not all(sides_swapped)  # both sides happened (seed 1)


def test_the_empty_page_picks_up_new_work_without_reload(driver, served):
    from selenium.webdriver.common.keys import Keys

    queue, url = served
    driver.get(f"{url}/?labeler=dr-b")
    wait_for(driver, lambda d: body_data(d, "state") == "empty", "the empty state")
    empty = driver.find_element("id", "empty")
    assert empty.is_displayed() and "Nothing to label right now" in empty.text
    driver.execute_script("window.__same_page = true")  # gone if the page reloads
    request = pair(7)
    queue.enqueue([request])
    wait_for(driver, lambda d: body_data(d, "state") == "task", "the new pair")
    assert driver.execute_script("return window.__same_page") is True
    pair_id, (left, _) = shown(driver, sha_keys([request]))
    press(driver, Keys.ARROW_LEFT)
    wait_for(driver, lambda d: body_data(d, "saved") == "1", "the answer saved")
    (stored,) = queue.answers()
    assert (stored.pair_id, stored.labeler, stored.answer) == (pair_id, "dr-b", "left")
    assert stored.mu == (1.0 if stored.keys[0] == left else 0.0)


def test_the_name_is_asked_once_and_kept(driver, served):
    queue, url = served
    queue.enqueue([pair(3)])
    driver.get(f"{url}/")
    driver.execute_script("localStorage.clear()")
    driver.get(f"{url}/")
    overlay = wait_for(driver, lambda d: d.find_element("id", "identify").is_displayed() and
                       d.find_element("id", "identify"), "the name form")  # fmt: skip
    field = overlay.find_element("id", "identify-name")
    field.send_keys("bad name!\n")
    assert "bad" in driver.find_element("id", "identify-hint").get_attribute("class")
    field.clear()
    field.send_keys("dr-c\n")
    wait_for(driver, lambda d: body_data(d, "state") == "task", "a pair")
    assert driver.find_element("id", "who").text == "dr-c"
    driver.get(f"{url}/")  # a reload remembers the name
    wait_for(driver, lambda d: body_data(d, "state") == "task", "the same pair again")
    assert not driver.find_element("id", "identify").is_displayed()
    driver.find_element("css selector", 'button[data-answer="equal"]').click()
    wait_for(driver, lambda d: body_data(d, "saved") == "1", "the click answer saved")
    (stored,) = queue.answers()
    assert (stored.labeler, stored.answer, stored.mu) == ("dr-c", "equal", 0.5)


def test_ranking_page_orders_four_by_keys(driver, served):
    queue, url = served
    items = tuple(item(40 + n) for n in range(4))
    request = ComparisonRequest("headsq", items)
    queue.enqueue([request])
    by_sha = sha_keys([request])
    driver.get(f"{url}/rank?labeler=dr-d")
    wait_for(driver, lambda d: body_data(d, "state") == "task", "the ranking")
    cards = driver.find_elements("css selector", "#task .item")
    keys = []
    for card in cards:
        src = card.find_element("css selector", 'img[data-view="front"]').get_attribute("src")
        keys.append(by_sha[src.rsplit("/", 1)[-1].removesuffix(".png")])
    for key in ("3", "1", "4"):  # positions 2, 0, 3; position 1 comes last by itself
        press(driver, key)
    assert driver.find_element("id", "task").get_attribute("data-order") == "2,0,3,1"
    press(driver, "\ue003")  # Backspace: undo the third pick (and the automatic last)
    assert driver.find_element("id", "task").get_attribute("data-order") == "2,0"
    press(driver, "2")  # position 1 third, position 3 last
    press(driver, "\ue007")  # Enter saves
    wait_for(driver, lambda d: body_data(d, "saved") == "1", "the ranking saved")
    (stored,) = queue.answers()
    assert stored.labeler == "dr-d" and stored.answer == "rank"
    assert [stored.keys[i] for i in stored.order] == [keys[p] for p in (2, 0, 1, 3)]
    assert len(queue.store.records(labeler="dr-d")) == 6


def test_ranking_page_skips_by_key(driver, served):
    queue, url = served
    queue.enqueue([ComparisonRequest("headsq", tuple(item(60 + n) for n in range(4)))])
    driver.get(f"{url}/rank?labeler=dr-e")
    wait_for(driver, lambda d: body_data(d, "state") == "task", "the ranking")
    press(driver, "s")
    wait_for(driver, lambda d: body_data(d, "saved") == "1", "the skip saved")
    (stored,) = queue.answers()
    assert stored.labeler == "dr-e" and stored.answer == "skip" and stored.mu is None
    assert queue.store.records(labeler="dr-e") == []
    wait_for(driver, lambda d: body_data(d, "state") == "empty", "nothing left to rank")
