"""Server CLI errors end in one line and exit code 2, before anything listens."""

from __future__ import annotations

from tests.serve.test_live import cli


def test_unreachable_database_is_one_line(monkeypatch, capsys, tmp_path):
    url = "postgresql://someone:secret@127.0.0.1:1/nowhere"
    code, _, err = cli(monkeypatch, capsys, "serve", "token", "create", "--name", "a", "--role",
                       "admin", "--db", url, "--data-dir", str(tmp_path))  # fmt: skip
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith("error: cannot open the database postgresql://someone:***@127.0.0.1:1")
    assert "secret" not in err


def test_unknown_role(monkeypatch, capsys, tmp_path):
    code, _, err = cli(monkeypatch, capsys, "serve", "token", "create", "--name", "a", "--role",
                       "wizard", "--data-dir", str(tmp_path))  # fmt: skip
    assert code == 2 and "--role must be one of reader, publisher, admin" in err


def test_publish_needs_a_token_and_an_audited_run(monkeypatch, capsys, tmp_path):
    monkeypatch.delenv("SYNTHMED_TOKEN", raising=False)
    code, _, err = cli(monkeypatch, capsys, "publish", str(tmp_path), "--to", "http://127.0.0.1:1")
    assert code == 2 and "--token (or $SYNTHMED_TOKEN) is required" in err
    code, _, err = cli(monkeypatch, capsys, "publish", str(tmp_path), "--to", "http://127.0.0.1:1",
                       "--token", "t")  # fmt: skip
    assert code == 2 and "not a dataset export" in err and err.count("\n") == 1
