"""The reader-study and token-revoke commands against a real server process (SQLite)."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from tests.serve.live import LiveServer
from tests.serve.test_live import cli
from tests.serve.test_study import N, real_zip, synthetic_look


@pytest.fixture
def live(db_url: str, tmp_path: Path):
    server = LiveServer(tmp_path / "server", db_url, workers=1)
    yield server
    server.stop()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_study_create_results_and_token_revoke(live, exports, monkeypatch, capsys, tmp_path):
    import zipfile

    where = ("--data-dir", str(live.data_dir), "--db", live.db_url)
    code, out, err = cli(monkeypatch, capsys, "serve", "token", "create", "--name", "boss",
                         "--role", "admin", *where)  # fmt: skip
    assert code == 0, err
    token = out.strip()
    live.start()
    monkeypatch.setenv("SYNTHMED_TOKEN", token)
    code, _, err = cli(monkeypatch, capsys, "publish", str(exports["nifti"]), "--to", live.url,
                       "--name", "vessels")  # fmt: skip
    assert code == 0, err

    folder = tmp_path / "real"  # a folder is zipped by the CLI
    with zipfile.ZipFile(real_zip(tmp_path / "real.zip", synthetic_look(exports))) as archive:
        archive.extractall(folder)
    code, out, err = cli(monkeypatch, capsys, "serve", "study", "create", "--name", "turing",
                         "--synthetic", "vessels", "--real", str(folder), "--n", str(N),
                         "--reader", "alice", "--reader", "bob", "--to", live.url)  # fmt: skip
    assert code == 0, err
    links = dict(line.split("\t") for line in out.strip().splitlines())
    assert sorted(links) == ["alice", "bob"] and "shown once" in err
    assert links["alice"].startswith(f"{live.url}/study?token=smr_")
    with urllib.request.urlopen(links["alice"], timeout=30) as resp:
        assert 'id="answer-synthetic"' in resp.read().decode()

    answers = tmp_path / "answers.csv"
    code, out, err = cli(monkeypatch, capsys, "serve", "study", "results", "turing", "--to",
                         live.url, "--csv", str(answers))  # fmt: skip
    assert code == 0, err
    results = json.loads(out)
    assert results["n_images"] == 2 * N and results["n_answers"] == 0
    assert answers.read_text().startswith("study,reader,position,image_id,truth")

    code, out, err = cli(monkeypatch, capsys, "serve", "token", "revoke", "--name", "boss", *where)
    assert code == 0 and out.strip() == "revoked 1 token(s)", err
    code, _, err = cli(monkeypatch, capsys, "serve", "study", "results", "turing", "--to", live.url)
    assert code == 2 and err.count("\n") == 1
    assert "server refused (bad_token, HTTP 401): the API token was revoked on" in err
    code, _, err = cli(monkeypatch, capsys, "serve", "token", "revoke", *where)
    assert code == 2 and "exactly one of --name or --token" in err
