"""Headless Chromium under Selenium with the system browser and driver (Debian ``chromium``
and ``chromium-driver``), or a pytest skip saying what is missing.

The driver path is given through a ``Service`` and ``SE_OFFLINE=true`` is set, so Selenium
Manager never looks for, or downloads, a browser or driver.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = ("chromium", "chromium-browser")
DRIVER = "chromedriver"


def system_binaries() -> tuple[str, str] | str:
    """(browser, driver) paths, or why they cannot be used."""
    browser = next((p for name in CHROMIUM if (p := shutil.which(name))), None)
    driver = shutil.which(DRIVER) or (
        "/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").is_file() else None
    )
    if browser is None:
        return "no chromium binary (apt-get install chromium)"
    if driver is None:
        return "no chromedriver (apt-get install chromium-driver)"
    return browser, driver


def chrome(profile: Path, width: int = 1280, height: int = 1600):
    """A headless Chrome WebDriver; skips the test when selenium or the binaries are absent."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed (pip install 'synthmed[dev]')")
    found = system_binaries()
    if isinstance(found, str):
        pytest.skip(found)
    browser, driver = found
    os.environ["SE_OFFLINE"] = "true"  # never let Selenium Manager download anything
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--no-first-run", "--hide-scrollbars",
                 f"--user-data-dir={profile}", f"--window-size={width},{height}"):  # fmt: skip
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)


def click_and_wait(driver, element, timeout: float = 60.0) -> None:
    """Click an element that navigates (a link, a form's submit button) and wait until the old
    page is gone and the new one has loaded: a bare click returns before the navigation, and on
    a loaded machine the next find_element would search the page being unloaded."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    def gone(_driver) -> bool:
        # chromedriver may answer "Node with given id does not belong to the document" instead
        # of a stale-element error while the old page is being torn down: that is gone too
        try:
            return expected_conditions.staleness_of(element)(_driver)
        except WebDriverException as exc:
            if "does not belong to the document" in str(exc):
                return True
            raise

    element.click()
    wait = WebDriverWait(driver, timeout)
    wait.until(gone)
    wait.until(lambda d: d.execute_script("return document.readyState") == "complete")
