"""README screenshots of the repository server's pages, made with headless Chromium.

    python benchmarks/serve_screenshots.py            # writes docs/img/serve-index.png, serve-dataset.png

Starts ``synthmed serve`` on a loopback port (SQLite, one worker), publishes the tiny demo
dataset and model package (``synthmed demo --tiny`` on built-in fundus phantoms, see
``serve_demo.py``; the server's membership gate is relaxed to 0.95 for this toy run), then
saves the search page and the dataset page. Needs the Debian ``chromium`` package. PNGs are
reduced to a 256-colour palette to stay small.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_demo import ROOT, demo_bundle, server  # noqa: E402

SHOTS = {
    "serve-index.png": ("/", 1280, 760),
    "serve-dataset.png": ("/items/demo-fundus", 1280, 1700),
}


def screenshot(browser: str, url: str, out: Path, width: int, height: int, profile: Path) -> None:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--disable-background-networking", "--no-first-run", "--hide-scrollbars",
             f"--user-data-dir={profile}", "--virtual-time-budget=3000",
             f"--window-size={width},{height}", f"--screenshot={out}"]  # fmt: skip
    result = subprocess.run([browser, *flags, url], capture_output=True, text=True, timeout=120)
    if result.returncode != 0 or not out.is_file():
        raise SystemExit(f"chromium failed on {url}: {result.stderr[-1000:]}")
    from PIL import Image

    with Image.open(out) as image:  # a palette PNG of a web page is a fraction of the size
        image.convert("RGB").quantize(256).save(out, optimize=True)


def publish_demo(url: str, token: str, work: Path) -> None:
    from serve_demo import FIELDS

    from synthmed.packaging import build_package
    from synthmed.serve.client import build_bundle, publish_bundle

    publish_bundle(url, token, demo_bundle(work, "demo-fundus"))
    package = work / "demo" / "demo-model.synthmed"
    if not package.is_dir():
        build_package(work / "demo", name="demo-model")
    fields = {
        **FIELDS,
        "title": "Tiny demo generator",
        "description": "the generator that made demo-fundus",
    }
    publish_bundle(url, token, build_bundle(package, work / "model.zip", **fields))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    parser.add_argument("--work", type=Path, default=None, help="keep the demo run here")
    args = parser.parse_args()
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise SystemExit("no chromium binary: apt-get install chromium")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="synthmed-shots-") as tmp:
        work = args.work or Path(tmp)
        shutil.rmtree(work / "server", ignore_errors=True)
        db_url = f"sqlite:///{work / 'server' / 'synthmed.db'}"
        with server(work / "server", db_url, workers=1) as (url, token):
            publish_demo(url, token, work)
            for name, (path, width, height) in SHOTS.items():
                screenshot(browser, url + path, args.out / name, width, height, Path(tmp) / name)
                print(f"{args.out / name}: {(args.out / name).stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
