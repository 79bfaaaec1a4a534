"""A real Chromium for the console's browser tests, driven by selenium (docs/console.md).

Debian's chromium and chromium-driver (scripts/test-packages.sh installs them; `make
test` runs it) are found at /usr/bin; a test module imports the `browser` fixture:

    from tests.browser import browser  # noqa: F401 - the fixture

Chromium runs headless with a fresh profile and nothing that reaches the network on its
own (terminals are offline; a test must not depend on the internet). `shot(name)`
saves var/screenshots/<test>-<name>.png: the artifacts a person looks at.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCREENSHOTS = REPO / "var" / "screenshots"
WAIT_S = 20.0
DETACHED = "does not belong to the document"  # chromedriver's word for a node re-rendered away


class Browser:
    """A selenium WebDriver with the few helpers the console's tests share."""

    def __init__(self, driver, test_name: str):
        self.driver, self.test = driver, re.sub(r"[^A-Za-z0-9_.-]+", "_", test_name)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def __getattr__(self, name):          # find_element, get, current_url ...
        return getattr(self.driver, name)

    def shot(self, step: str, full_page: bool = True) -> Path:
        path = SCREENSHOTS / f"{self.test}-{step}.png"
        if full_page:  # the whole page's height, not only the window
            height = self.driver.execute_script("return Math.max(document.body.scrollHeight, 600)")
            width = self.driver.get_window_size()["width"]
            self.driver.set_window_size(width, min(int(height) + 140, 4000))
        self.driver.save_screenshot(str(path))
        return path

    def wait(self, condition, timeout: float = WAIT_S):
        """Until condition(driver) is truthy. A page that re-renders (the live view's list,
        a reconnect's reload) can detach an element between its lookup and its read:
        that read is "not yet", not a failure."""
        from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
        from selenium.webdriver.support.ui import WebDriverWait

        def settled(driver):
            try:
                return condition(driver)
            except StaleElementReferenceException:
                return False
            except WebDriverException as exc:
                if DETACHED in str(exc):
                    return False
                raise
        return WebDriverWait(self.driver, timeout).until(settled)

    def read(self, selector: str, attribute: str | None = None) -> str | None:
        """An element's text (or attribute) read in one script: no element handle to go
        stale while the page re-renders. None when nothing matches."""
        return self.driver.execute_script(
            "var e = document.querySelector(arguments[0]); if (!e) return null;"
            "return arguments[1] ? e.getAttribute(arguments[1]) : e.innerText;", selector, attribute)

    def css(self, selector: str):
        from selenium.webdriver.common.by import By
        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def all(self, selector: str):
        from selenium.webdriver.common.by import By
        return self.driver.find_elements(By.CSS_SELECTOR, selector)

    def wait_css(self, selector: str, timeout: float = WAIT_S):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec
        return self.wait(ec.presence_of_element_located((By.CSS_SELECTOR, selector)), timeout)

    def wait_text(self, selector: str, text: str, timeout: float = WAIT_S):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec
        return self.wait(ec.text_to_be_present_in_element((By.CSS_SELECTOR, selector), text), timeout)

    def login(self, base_url: str, user: str, password: str) -> None:
        self.driver.get(base_url + "/console/login")
        self.css("#username").clear()
        self.css("#username").send_keys(user)
        self.css("#password").send_keys(password)
        button = self.css("#login")
        button.click()
        # The form posts and the server answers with another page (the console, or the
        # login page with its error): wait for it, or a loaded CI box lets that answer
        # land after the test's next get() and replace the page it asked for.
        from selenium.webdriver.support import expected_conditions
        self.wait(expected_conditions.staleness_of(button))


@pytest.fixture
def browser(request, tmp_path):
    """A headless Chromium with a fresh profile, quit after the test."""
    from edge.console import chromium
    try:
        driver = chromium.start(tmp_path / "chromium-profile", tmp_path / "chromedriver.log")
    except FileNotFoundError as exc:
        if os.environ.get("CI"):   # CI installs them (make test): missing there is a failure, not a skip
            raise
        pytest.skip(str(exc))
    driver.set_page_load_timeout(60)
    try:
        yield Browser(driver, request.node.name)
    finally:
        driver.quit()
