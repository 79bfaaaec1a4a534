"""A headless Chromium driven by selenium, for the console's browser tests and its
benchmark (tests/browser.py, edge/console/bench.py): Debian's chromium and
chromium-driver (scripts/test-packages.sh installs them), with nothing that reaches the
network on its own (terminals are offline; a test must not depend on the internet)."""
from __future__ import annotations

import shutil
from pathlib import Path

CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMEDRIVER = ("/usr/bin/chromedriver",)
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1280,900")


def find(candidates, name: str) -> str | None:
    """The first of `candidates` that exists, else `name` on PATH, else None."""
    for path in candidates:
        if Path(path).exists():
            return path
    return shutil.which(name)


def start(profile: Path, log_file: Path | None = None):
    """A WebDriver on a fresh profile; FileNotFoundError when chromium or its driver is missing."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    binary, driver = find(CHROMIUM, "chromium"), find(CHROMEDRIVER, "chromedriver")
    if not binary or not driver:
        raise FileNotFoundError("chromium or chromedriver is not installed (scripts/test-packages.sh installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    service = Service(executable_path=driver, log_output=str(log_file) if log_file else None)
    return webdriver.Chrome(service=service, options=options)
