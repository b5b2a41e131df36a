"""Open report.html in headless Chromium: it renders and every embedded image decodes.

The report sets ``data-images-loaded="<decoded>/<total>"`` on <body> at the window's load
event; ``--dump-dom`` prints the DOM after that, so the attribute shows what the browser
actually decoded. The screenshot stays in the test's temporary folder.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from synthmed import api

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")


def _browser() -> str | None:
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


def _chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=5000",
    ]
    return subprocess.run(
        [binary, *flags, *args], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.browser
def test_report_renders_with_all_images(evaluated_run, tmp_path):
    binary = _browser()
    if binary is None:
        pytest.skip("no chromium binary (install the Debian package 'chromium')")
    report = api.report(evaluated_run)
    n_images = len(re.findall(r"<img ", report.read_text()))
    url = report.resolve().as_uri()
    dom = _chromium(binary, tmp_path / "profile", "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    loaded = re.search(r'data-images-loaded="(\d+)/(\d+)"', dom.stdout)
    assert loaded, "the load handler did not run:\n" + dom.stdout[:500]
    assert loaded.groups() == (str(n_images), str(n_images))
    shot = tmp_path / "shot.png"
    result = _chromium(
        binary, tmp_path / "profile2", f"--screenshot={shot}", "--window-size=1200,2400", url
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert shot.is_file() and shot.stat().st_size > 20_000  # a rendered page, not a blank one
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
