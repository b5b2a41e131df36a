"""A real server process: killed with SIGKILL mid-upload it lists nothing half-stored after a
restart and takes the retried upload; the CLI publishes, downloads and installs through it."""

from __future__ import annotations

import http.client
import json
import time
from pathlib import Path

import pytest

from synthmed.serve.client import get_json, publish_bundle
from tests.serve.live import LiveServer


@pytest.fixture
def live(db_url: str, tmp_path: Path):
    server = LiveServer(tmp_path / "server", db_url, workers=2)
    yield server
    server.stop()


def wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_killed_mid_upload_leaves_nothing_listed_and_the_retry_works(live, bundle):
    live.workers = 1  # the kill hits the process receiving the upload; the CLI test runs 2
    token = live.token("pub", "publisher")
    live.start()
    zip_path = bundle("nifti", name="crash-test")
    body = zip_path.read_bytes()
    conn = http.client.HTTPConnection("127.0.0.1", live.port, timeout=30)
    conn.putrequest("POST", "/api/items")
    for key, value in {
        "Content-Type": "application/zip",
        "Content-Length": str(len(body)),
        "Authorization": f"Bearer {token}",
    }.items():
        conn.putheader(key, value)
    conn.endheaders()
    conn.send(body[: len(body) // 2])
    spool = live.data_dir / "spool"
    wait_for(lambda: any(p.stat().st_size > 0 for p in spool.glob("*.zip")))  # mid-upload
    live.kill()
    conn.close()
    assert list(spool.glob("*.zip")), "the killed upload left its partial spool file"

    live.start()
    assert get_json(f"{live.url}/api/items")["items"] == []
    assert list(spool.iterdir()) == []
    assert list((live.data_dir / "files" / "items").iterdir()) == []
    assert list((live.data_dir / "files" / "pending").iterdir()) == []
    item = publish_bundle(live.url, token, zip_path)
    assert item["name"] == "crash-test"
    assert [i["name"] for i in get_json(f"{live.url}/api/items")["items"]] == ["crash-test"]


def cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    from tests.test_cli import run_cli

    return run_cli(monkeypatch, capsys, *args)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_cli_publish_download_and_install(live, exports, monkeypatch, capsys, tmp_path):
    from synthmed.packaging import load_package

    code, out, err = cli(monkeypatch, capsys, "serve", "token", "create", "--name", "pub",
                         "--role", "publisher", "--data-dir", str(live.data_dir), "--db", live.db_url)  # fmt: skip
    assert code == 0, err
    token = out.strip()
    assert token.startswith("smt_") and "shown only now" in err
    live.start()

    code, out, err = cli(monkeypatch, capsys, "publish", str(exports["nifti"]), "--to", live.url,
                         "--token", token, "--name", "cli-vessels", "--modality", "fundus")  # fmt: skip
    assert code == 0, err
    assert "published cli-vessels (dataset)" in out and f"{live.url}/items/cli-vessels" in out

    code, _, err = cli(monkeypatch, capsys, "publish", str(exports["nifti"]), "--to", live.url,
                       "--token", token, "--name", "cli-vessels")  # fmt: skip
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("error: server refused (duplicate_name, HTTP 409)")

    out_dir = tmp_path / "downloaded"
    code, _, err = cli(monkeypatch, capsys, "download", f"{live.url}/items/cli-vessels", "--out", str(out_dir))  # fmt: skip
    assert code == 0, err
    for path in exports["nifti"].rglob("*"):
        if path.is_file():
            assert (out_dir / path.relative_to(exports["nifti"])).read_bytes() == path.read_bytes()

    relaid = tmp_path / "Dataset501_Vessels"
    code, _, err = cli(monkeypatch, capsys, "download", f"{live.url}/items/cli-vessels", "--out", str(relaid), "--layout", "nnunet")  # fmt: skip
    assert code == 0, err
    assert json.loads((relaid / "dataset.json").read_text())["numTraining"] == 4
    assert len(list((relaid / "imagesTr").glob("*_0000.nii.gz"))) == 4

    monkeypatch.setenv("SYNTHMED_TOKEN", token)
    code, out, err = cli(monkeypatch, capsys, "publish", str(exports["model"]), "--to", live.url)
    assert code == 0 and "published tiny-model (model)" in out, err
    registry = tmp_path / "registry"
    code, out, err = cli(monkeypatch, capsys, "models", "install", f"{live.url}/items/tiny-model",
                         "--registry", str(registry))  # fmt: skip
    assert code == 0, err
    assert load_package(registry / "tiny-model.synthmed").name == "tiny-model"

    code, _, err = cli(monkeypatch, capsys, "models", "install", f"{live.url}/items/cli-vessels",
                       "--registry", str(registry))  # fmt: skip
    assert code == 2 and "is a dataset, not a model package" in err
