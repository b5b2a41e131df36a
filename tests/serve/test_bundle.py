"""Bundle archive checks without a server: zip-slip entries, lying size headers, checksums."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from synthmed.serve.bundle import entry_problem, safe_extract, write_bundle
from synthmed.serve.rules import RULES, Refusal


@pytest.mark.parametrize(
    "name", ["../evil.txt", "content/../../evil.txt", "/etc/passwd", "C:/x.txt", "a\\..\\b"]
)
def test_escaping_entries_are_named(name: str):
    assert name in entry_problem(zipfile.ZipInfo(name))


def test_a_symbolic_link_entry_is_refused():
    info = zipfile.ZipInfo("content/link")
    info.external_attr = (0o120777) << 16
    assert "symbolic link" in entry_problem(info)


def test_ordinary_entries_pass():
    assert entry_problem(zipfile.ZipInfo("content/images/a.nii.gz")) is None


def test_extraction_refuses_before_writing_anything(tmp_path: Path):
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as archive:
        archive.writestr("ok.txt", "fine")
        archive.writestr("../../escaped.txt", "evil")
    with pytest.raises(Refusal) as err:
        safe_extract(bad, tmp_path / "x", 1000, 1000)
    assert err.value.rule == "zip_slip"
    assert not (tmp_path / "x").exists() and not (tmp_path / "escaped.txt").exists()


def test_a_size_header_that_lies_is_caught_while_decompressing(tmp_path: Path):
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("big.bin", b"\0" * 100_000)
    data = bytearray(path.read_bytes())
    # patch the uncompressed size in the central directory to claim 10 bytes
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("big.bin")
    central = data.rfind(b"PK\x01\x02")
    data[central + 24 : central + 28] = (10).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    assert info.file_size == 100_000
    with pytest.raises(Refusal) as err:
        safe_extract(path, tmp_path / "x", 50_000, 50_000)
    assert err.value.rule in ("file_too_large", "bad_bundle")


def test_write_bundle_lists_every_member(tmp_path: Path):
    (tmp_path / "a.txt").write_text("a")
    out = write_bundle(
        tmp_path / "b.zip", {"kind": "dataset"}, {"content/a.txt": tmp_path / "a.txt"}
    )
    files = safe_extract(out, tmp_path / "x", 1000, 1000)
    assert sorted(files) == ["content/a.txt", "publication.json"]


def test_every_rule_has_a_client_error_status():
    assert all(400 <= status < 500 for status, _ in RULES.values())
    with pytest.raises(ValueError):
        Refusal("no_such_rule", "x")
