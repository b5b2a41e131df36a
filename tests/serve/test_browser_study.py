"""A whole reader study in a real browser (headless Chromium under Selenium): two readers open
their links, answer every image by clicking the form, one closes the page halfway and comes
back, and the admin's results page shows the kappas that the pure statistics give."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from synthmed.serve.client import publish_bundle
from tests.serve.browser import chrome, click_and_wait
from tests.serve.live import LiveServer
from tests.serve.test_study import N, real_zip, synthetic_look


def create_study(server: LiveServer, admin: str, zip_path: Path) -> dict[str, str]:
    """POST /api/studies with readers alice and bob -> {reader: link}."""
    query = f"name=turing&synthetic=vessels&n={N}&reader=alice&reader=bob"
    request = urllib.request.Request(
        f"{server.url}/api/studies?{query}", data=zip_path.read_bytes(), method="POST",
        headers={"Content-Type": "application/zip", "Authorization": f"Bearer {admin}"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=60) as resp:
        made = json.load(resp)
    return {e["reader"]: e["token"] for e in made["reader_tokens"]}


def results_json(server: LiveServer, admin: str) -> dict:
    request = urllib.request.Request(
        f"{server.url}/api/studies/turing/results", headers={"Authorization": f"Bearer {admin}"}
    )
    with urllib.request.urlopen(request, timeout=60) as resp:
        return json.load(resp)


@pytest.fixture
def study(tmp_path: Path, bundle, exports):
    server = LiveServer(tmp_path / "server", f"sqlite:///{tmp_path / 'server' / 'db.sqlite'}", 1)
    publisher, admin = server.token("pub", "publisher"), server.token("root", "admin")
    server.start()
    publish_bundle(server.url, publisher, bundle("nifti", name="vessels"))
    tokens = create_study(server, admin, real_zip(tmp_path / "real.zip", synthetic_look(exports)))
    yield server, admin, tokens
    server.stop()


@pytest.fixture
def driver(tmp_path: Path):
    browser = chrome(tmp_path / "profile")
    yield browser
    browser.quit()


def answer_in_browser(driver, url: str, token: str, say: str, stop_after: int | None = None):
    """Open the reader's link and click through: ``say`` (real/synthetic) for every image,
    confidence 4. Returns how many images were answered."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver.get(f"{url}/study?token={token}")
    answered = 0
    while not driver.find_elements(By.ID, "done"):
        if stop_after is not None and answered == stop_after:
            break
        image = driver.find_element(By.ID, "study-image")
        decoded = driver.execute_script(
            "return arguments[0].complete && arguments[0].naturalWidth", image
        )
        assert decoded, "the study image did not decode"
        position = int(driver.find_element(By.ID, "position").text)
        driver.find_element(By.ID, f"answer-{say}").click()
        Select(driver.find_element(By.ID, "confidence")).select_by_value("4")
        click_and_wait(driver, driver.find_element(By.ID, "next"))
        answered += 1
        if not driver.find_elements(By.ID, "done"):
            assert int(driver.find_element(By.ID, "position").text) == position + 1
    return answered


@pytest.mark.browser
def test_two_readers_in_the_browser_and_the_kappa_on_the_results_page(driver, study):
    from selenium.webdriver.common.by import By

    from synthmed.evaluation.reader_study import category_counts, fleiss_kappa

    server, admin, tokens = study
    # alice says "synthetic" throughout; bob says "real", closing the page halfway
    assert answer_in_browser(driver, server.url, tokens["alice"], "synthetic") == 2 * N
    assert answer_in_browser(driver, server.url, tokens["bob"], "real", stop_after=N) == N
    driver.get("about:blank")  # bob closes the page ...
    assert answer_in_browser(driver, server.url, tokens["bob"], "real") == N  # ... and resumes
    assert driver.find_element(By.ID, "done").is_displayed()

    results = results_json(server, admin)
    assert [r["answered"] for r in results["readers"]] == [2 * N, 2 * N]
    assert results["overall"]["accuracy"]["value"] == pytest.approx(0.5)
    # the two readers never agree: Fleiss' kappa of 2N images each split 1:1 between answers
    expected = fleiss_kappa(
        category_counts([["synthetic", "real"]] * (2 * N), ["real", "synthetic"])
    )
    assert expected == pytest.approx(-1.0)

    # the results page is admin-only: the browser sends the admin's Bearer token (CDP header)
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd(
        "Network.setExtraHTTPHeaders", {"headers": {"Authorization": f"Bearer {admin}"}}
    )
    driver.get(f"{server.url}/studies/turing/results")
    fleiss = driver.find_element(By.ID, "kappa-fleiss").text
    assert float(fleiss) == pytest.approx(expected, abs=1e-3)
    assert float(fleiss) == pytest.approx(results["fleiss_kappa"]["kappa"], abs=1e-3)
    cohen = driver.find_element(By.ID, "kappa-cohen").text
    assert "alice" in cohen and "bob" in cohen
    assert "50" in driver.find_element(By.ID, "accuracy").text
