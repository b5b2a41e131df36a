"""The web pages in a real browser (headless Chromium driven by Selenium) against a live
server: search, filter, open a dataset page whose sample grid decodes and whose card and
evidence tables show, and follow the download links to zips."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import pytest

from synthmed.serve.client import publish_bundle
from tests.serve.browser import chrome, click_and_wait
from tests.serve.live import LiveServer

FETCH = """
const done = arguments[arguments.length - 1];
fetch(arguments[0]).then(async r => {
  const bytes = new Uint8Array(await r.arrayBuffer());
  let bin = ""; for (const b of bytes) bin += String.fromCharCode(b);
  done({status: r.status, type: r.headers.get("content-type"), sha: r.headers.get("x-synthmed-sha256"), b64: btoa(bin)});
}).catch(e => done({error: String(e)}));
"""


@pytest.fixture
def driver(tmp_path: Path):
    browser = chrome(tmp_path / "profile")
    browser.set_script_timeout(30)
    yield browser
    browser.quit()


@pytest.fixture
def published(tmp_path: Path, bundle):
    """A live server (SQLite, one worker) holding the tiny dataset and the tiny model."""
    server = LiveServer(tmp_path / "server", f"sqlite:///{tmp_path / 'server' / 'db.sqlite'}", 1)
    token = server.token("pub", "publisher")
    server.start()
    dataset = bundle("nifti", name="tiny-vessels", description="Phantom fundus vessels")
    publish_bundle(server.url, token, dataset)
    publish_bundle(server.url, token, bundle("model", name="tiny-model", modality="MR"))
    yield server, dataset
    server.stop()


def fetch(driver, href: str) -> tuple[dict, bytes]:
    import base64

    result = driver.execute_async_script(FETCH, href)
    assert "error" not in result, result
    return result, base64.b64decode(result["b64"])


@pytest.mark.browser
def test_search_filter_item_page_and_download(driver, published):
    from selenium.webdriver.common.by import By

    server, dataset = published
    driver.get(f"{server.url}/")
    rows = driver.find_elements(By.CSS_SELECTOR, "table tr td:first-child a")
    assert sorted(a.text for a in rows) == ["tiny-model", "tiny-vessels"]

    box = driver.find_element(By.NAME, "modality")
    box.send_keys("fundus")
    click_and_wait(driver, driver.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]"))
    assert "modality=fundus" in driver.current_url
    links = driver.find_elements(By.CSS_SELECTOR, "table tr td:first-child a")
    assert [a.text for a in links] == ["tiny-vessels"]
    click_and_wait(driver, links[0])

    assert driver.current_url.endswith("/items/tiny-vessels")
    grid = driver.find_element(By.CSS_SELECTOR, "img.grid")
    size = driver.execute_script(
        "const i = arguments[0]; return i.complete ? [i.naturalWidth, i.naturalHeight] : null;",
        grid,
    )
    assert size and min(size) > 0, f"sample grid did not decode: {size}"
    assert (
        "Synthetic images: no image shows a real patient"
        in driver.find_element(By.CSS_SELECTOR, "pre.card").text
    )
    headers = [th.text for th in driver.find_elements(By.CSS_SELECTOR, "table th")]
    assert {"near-copy rate", "highest membership-inference AUC"} <= set(headers)
    privacy = driver.find_element(By.XPATH, "//h3[text()='Privacy']/following-sibling::table[1]")
    assert "pixel.fraction_flagged" in privacy.text

    link = driver.find_element(By.PARTIAL_LINK_TEXT, "Download (")
    result, body = fetch(driver, link.get_attribute("href"))
    assert result["status"] == 200 and result["type"] == "application/zip"
    assert body == dataset.read_bytes() and result["sha"] == hashlib.sha256(body).hexdigest()

    nnunet = driver.find_element(By.LINK_TEXT, "nnU-Net raw").get_attribute("href")
    result, body = fetch(driver, nnunet)
    assert result["status"] == 200, body[:200]
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        assert "dataset.json" in archive.namelist()
