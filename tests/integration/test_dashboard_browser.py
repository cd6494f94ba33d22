"""The dashboard in a real browser: Debian's headless Chromium driven by Selenium through
Debian's chromedriver, against a running paper bot. The page loads, its charts hold data
points, values change without a reload, the kill button without the right token fails and
changes nothing, with it engages the kill switch and the page shows it.

DASHBOARD_SCREENSHOTS=DIR also writes the desktop, phone and three-symbol screenshots there
(``make screenshots`` refreshes docs/dashboard-*.png)."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.botproc import Bot

pytestmark = pytest.mark.integration
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
TOKEN = "dashboard-test-token-0123456789"


@pytest.fixture
def browser() -> Iterator[Any]:
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip("Debian chromium and chromium-driver are not installed (.ci/run installs them)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",  # loopback only: no update or metrics traffic
        "--disable-component-update",
        "--disable-sync",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(10)
    try:
        yield driver
    finally:
        driver.quit()


def wait(pred: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def text(driver: Any, element_id: str) -> str:
    return str(driver.execute_script(f"return document.getElementById('{element_id}').textContent"))


def points(driver: Any, chart: str) -> list[int]:
    """Data points per trace of a plotly chart, as the page holds them."""
    return list(
        driver.execute_script(
            f"const d = document.getElementById('{chart}').data;"
            "return d ? d.map(t => (t.x || []).length) : [];"
        )
    )


def confirm_token(driver: Any, value: str) -> None:
    from selenium.webdriver.common.by import By

    wait(
        lambda: driver.execute_script("return document.getElementById('token-dialog').open"),
        5,
        "the token dialog",
    )
    box = driver.find_element(By.ID, "token-input")
    box.clear()
    if value:
        box.send_keys(value)
    driver.find_element(By.ID, "token-ok").click()


def test_dashboard_live_charts_and_the_kill_button(tmp_path: Path, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    bot = Bot(tmp_path, env={"SOLBOT_STRATEGY": "ladder", "SOLBOT_API_TOKEN": TOKEN}, speed=20)
    shots = os.environ.get("DASHBOARD_SCREENSHOTS")
    try:
        bot.wait_ready()
        browser.get(bot.url + "/")
        # a token is configured: without it the page polls; with it, a ticket opens the stream
        wait(lambda: text(browser, "conn") == "polling", 20, "the page polling")
        browser.find_element(By.ID, "conn").click()
        confirm_token(browser, TOKEN)
        wait(lambda: text(browser, "conn") == "live", 20, "the event stream")
        price = wait(
            lambda: (p := points(browser, "price-chart")) and p[0] >= 20 and p, 20, "candles"
        )
        assert len(price) == 3  # candles, buy markers, sell markers
        wait(lambda: sum(points(browser, "price-chart")[1:]) > 0, 30, "entry/exit markers")
        assert wait(lambda: (p := points(browser, "equity-chart")) and p[0] > 5 and p, 10, "equity")
        assert points(browser, "pnl-chart") == [1]
        shading = "return (document.getElementById('price-chart').layout.shapes || []).length"
        wait(lambda: browser.execute_script(shading) > 0, 30, "regime shading")
        assert (
            "SOL/USDT" in text(browser, "title-sub") and text(browser, "trading-state") == "ACTIVE"
        )
        load_id = browser.execute_script("return window.__dashboardLoadId")
        before = text(browser, "bars-count")
        wait(lambda: text(browser, "bars-count") != before, 10, "the bar count to move")
        assert browser.execute_script("return window.__dashboardLoadId") == load_id  # no reload
        rows = browser.find_elements(
            By.CSS_SELECTOR, "#fills tbody tr td.buy, #fills tbody tr td.sell"
        )
        assert rows, "recent fills listed"

        # the kill button without the token (wrong, then empty): refused, nothing changes
        for wrong in ("not-the-token-000000", ""):
            browser.find_element(By.ID, "kill-btn").click()
            confirm_token(browser, wrong)
            wait(lambda: "refused (401)" in text(browser, "message"), 5, "the refusal")
            assert text(browser, "kill-state") == "kill switch off"
            browser.execute_script("document.getElementById('message').textContent = ''")
        assert not (tmp_path / "data" / "kill-switch.flag").exists()
        assert httpx.get(bot.url + "/api/status", timeout=5).status_code == 200

        # pause and resume with the token (asked once, then kept in the page)
        browser.find_element(By.ID, "pause-btn").click()
        confirm_token(browser, TOKEN)
        wait(lambda: text(browser, "trading-state") == "PAUSED", 10, "PAUSED")
        browser.find_element(By.ID, "resume-btn").click()
        wait(lambda: text(browser, "trading-state") == "ACTIVE", 10, "ACTIVE again")

        if shots:
            Path(shots).mkdir(parents=True, exist_ok=True)
            time.sleep(2)
            browser.save_screenshot(str(Path(shots) / "dashboard-desktop.png"))
            browser.set_window_size(390, 1700)
            time.sleep(1.5)
            browser.save_screenshot(str(Path(shots) / "dashboard-phone.png"))
            browser.set_window_size(1280, 1000)
        width = browser.execute_script("return document.documentElement.scrollWidth")
        assert width <= 1280

        # with the token: engaged, and the page says so
        browser.find_element(By.ID, "kill-btn").click()
        confirm_token(browser, TOKEN)
        wait(lambda: text(browser, "kill-state") == "kill switch ENGAGED", 10, "ENGAGED")
        assert (
            browser.execute_script(
                "return getComputedStyle(document.getElementById('kill-banner')).display"
            )
            != "none"
        )
        assert "dashboard kill button" in text(browser, "kill-reason")
        assert (tmp_path / "data" / "kill-switch.flag").exists()
        assert bot.wait_exit(20) == 10
        wait(lambda: text(browser, "conn") == "bot stopped", 15, "the page to see the bot gone")
    finally:
        bot.kill_hard()


def test_dashboard_fits_a_phone(tmp_path: Path, browser: Any) -> None:
    bot = Bot(tmp_path, speed=20)
    try:
        bot.wait_ready()
        browser.set_window_size(390, 844)
        browser.get(bot.url + "/")
        wait(lambda: text(browser, "conn") == "live", 20, "the event stream")
        wait(lambda: (p := points(browser, "price-chart")) and p[0] > 0, 20, "candles")
        width = browser.execute_script("return document.documentElement.scrollWidth")
        inner = browser.execute_script("return window.innerWidth")
        assert width <= inner, f"horizontal scrolling on a phone: {width} > {inner}"
        columns = browser.execute_script(
            "return getComputedStyle(document.querySelector('.grid'))"
            ".gridTemplateColumns.split(' ').length"
        )
        assert columns == 1  # cards stack on a narrow screen
    finally:
        bot.kill_hard()


def test_dashboard_symbol_selector_with_three_symbols(tmp_path: Path, browser: Any) -> None:
    bot = Bot(tmp_path, env={"SOLBOT_SYMBOLS": "SOL/USDT,BTC/USDT,ETH/USDT"}, speed=20)
    try:
        bot.wait_ready()
        browser.get(bot.url + "/")
        wait(lambda: text(browser, "conn") == "live", 20, "the event stream")
        assert (
            browser.execute_script("return document.getElementById('symbol-pick').hidden") is False
        )
        options = browser.execute_script(
            "return [...document.getElementById('symbol-select').options].map(o => o.value)"
        )
        assert options == ["SOL/USDT", "BTC/USDT", "ETH/USDT"]
        rows = wait(
            lambda: (
                browser.execute_script(
                    "return document.querySelectorAll('#symbols tbody tr').length"
                )
                == 3
            ),
            10,
            "a row per symbol",
        )
        assert rows
        last_close = (
            "const d = document.getElementById('price-chart').data; return d[0].close.at(-1);"
        )
        wait(lambda: browser.execute_script(last_close), 20, "SOL candles")
        assert browser.execute_script(last_close) < 1000  # SOL's synthetic market starts at 20
        load_id = browser.execute_script("return window.__dashboardLoadId")
        browser.execute_script(
            "const s = document.getElementById('symbol-select'); s.value = 'BTC/USDT';"
            "s.dispatchEvent(new Event('change'));"
        )
        wait(lambda: "BTC/USDT" in text(browser, "title-sub"), 10, "the BTC view")
        wait(lambda: (browser.execute_script(last_close) or 0) > 1000, 20, "BTC candles")
        assert "BTC" in text(browser, "position")
        assert browser.execute_script("return location.search") == "?symbol=BTC%2FUSDT"
        assert browser.execute_script("return window.__dashboardLoadId") == load_id  # no reload
        wait(lambda: text(browser, "conn") == "live", 10, "the BTC event stream")
        shots = os.environ.get("DASHBOARD_SCREENSHOTS")
        if shots:
            Path(shots).mkdir(parents=True, exist_ok=True)
            browser.set_window_size(1280, 1500)
            time.sleep(3)
            browser.save_screenshot(str(Path(shots) / "dashboard-symbols.png"))
    finally:
        bot.kill_hard()
