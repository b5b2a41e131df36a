"""The repository's HTTP API on SQLite and PostgreSQL: a real export published, searched,
downloaded and deleted; every gate rule, auth failure and archive attack refused with a 4xx
that names the rule, and nothing stored."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest

from tests.serve.conftest import Server, rewrite


def names(server: Server, who: str | None = "admin", **params) -> list[str]:
    response = server.get("/api/items", who, **params)
    assert response.status_code == 200, response.text
    return [item["name"] for item in response.json()["items"]]


def test_round_trip_publish_search_download(server: Server, bundle, exports):
    zip_path = bundle("nifti", name="tiny-vessels", description="Phantom fundus vessels")
    response = server.publish(zip_path)
    assert response.status_code == 201, response.text
    item = response.json()
    assert item["kind"] == "dataset" and item["format"] == "nifti" and item["n_samples"] == 4
    assert item["label_names"] == ["background", "vessel"]
    assert item["model_family"] == "wgan_gp_sn" and item["task"] == "segmentation"
    metrics = json.loads((exports["nifti"].parents[1] / "metrics.json").read_text())
    assert item["evidence"]["near_copy_rate"] == metrics["privacy"]["pixel"]["fraction_flagged"]

    # download: the very bytes published, and the export inside is the original folder
    download = server.get("/api/items/tiny-vessels/download")
    assert download.status_code == 200
    assert download.content == zip_path.read_bytes()
    assert download.headers["x-synthmed-sha256"] == hashlib.sha256(download.content).hexdigest()
    with zipfile.ZipFile(io.BytesIO(download.content)) as archive:
        for path in exports["nifti"].rglob("*"):
            if path.is_file():
                rel = path.relative_to(exports["nifti"]).as_posix()
                assert archive.read(f"content/{rel}") == path.read_bytes(), rel
    audit = server.get("/api/audit", "admin").json()["entries"]
    assert [e["action"] for e in audit] == ["download", "publish"]
    assert audit[0]["actor"] is None and audit[1]["actor"] == "publisher"


def test_search_filters_by_metadata_and_evidence(server: Server, bundle):
    assert server.publish(bundle("nifti", name="vessels")).status_code == 201
    assert server.publish(bundle("model", name="tiny-model", modality="MR")).status_code == 201
    dice = server.get("/api/items/vessels").json()["evidence"]["synthetic_only_dice"]
    assert dice is not None
    assert names(server) == ["tiny-model", "vessels"]  # newest first
    assert names(server, kind="model") == ["tiny-model"]
    assert names(server, modality="fundus") == ["vessels"]
    assert names(server, anatomy="RETINA") == ["tiny-model", "vessels"]  # case-insensitive
    assert names(server, task="classification") == []
    assert names(server, licence="CC-BY-4.0", model_family="wgan_gp_sn") == [
        "tiny-model",
        "vessels",
    ]
    assert names(server, label="vessel") == ["tiny-model", "vessels"]
    assert names(server, label=["vessel", "tumour"]) == []  # all labels must be present
    assert names(server, q="-MODEL") == ["tiny-model"]  # name, title, description
    assert names(server, min_synthetic_dice=dice - 0.01) == ["tiny-model", "vessels"]
    assert names(server, min_synthetic_dice=dice + 0.01) == []
    assert names(server, max_near_copy_rate=0) == ["tiny-model", "vessels"]
    assert names(server, max_membership_auc=0.01) == []
    bad = server.get("/api/items", min_synthetic_dice="high")
    assert bad.status_code == 400 and bad.json()["error"] == "bad_query"
    assert server.get("/api/items", colour="red").json()["error"] == "bad_query"


def test_item_and_search_pages(server: Server, bundle):
    assert server.publish(bundle("nifti", name="vessels")).status_code == 201
    page = server.get("/items/vessels")
    assert page.status_code == 200
    for needle in ("grid.png", "synthetic-only", "near-copy rate", "Utility", "Fidelity",
                   "Privacy", "pixel.fraction_flagged", "content/manifest.csv"):  # fmt: skip
        assert needle in page.text, needle
    assert "vessels" in server.get("/", modality="fundus").text
    assert "vessels" not in server.get("/", modality="CT").text
    grid = server.get("/items/vessels/grid.png")
    assert grid.status_code == 200 and grid.content.startswith(b"\x89PNG")
    report = server.get("/items/vessels/report")
    assert report.status_code == 200 and "<html" in report.text.lower()
    assert report.headers["content-security-policy"].startswith("sandbox")


def test_private_items_need_an_account(server: Server, bundle):
    assert server.publish(bundle("nifti", name="secret", visibility="private")).status_code == 201
    assert names(server, None) == []
    assert server.get("/api/items/secret").json()["error"] == "not_found"
    assert server.get("/api/items/secret/download").status_code == 404
    assert names(server, "reader") == ["secret"]
    assert server.get("/api/items/secret/download", "reader").status_code == 200


def test_delete_by_owner_or_admin_only(server: Server, bundle):
    assert server.publish(bundle("nifti", name="a")).status_code == 201
    assert server.publish(bundle("nifti", name="b")).status_code == 201
    key = server.repo.details(None, "a")["storage_key"]
    refused = server.delete("/api/items/a", "other")
    assert refused.status_code == 403 and refused.json()["error"] == "wrong_role"
    assert server.delete("/api/items/a", "reader").json()["error"] == "wrong_role"
    assert server.delete("/api/items/a", "publisher").status_code == 200
    assert server.delete("/api/items/b", "admin").status_code == 200
    assert names(server) == [] and key not in server.repo.storage.keys()
    actions = [
        (e["action"], e["actor"]) for e in server.get("/api/audit", "admin").json()["entries"]
    ]
    assert actions[:2] == [("delete", "admin"), ("delete", "publisher")]
    # the name is free again
    assert server.publish(bundle("nifti", name="a")).status_code == 201


def test_tokens_are_stored_hashed_and_created_by_admins(server: Server):
    import sqlalchemy as sa

    from synthmed.serve import db

    with server.repo.engine.connect() as conn:
        stored = conn.execute(sa.select(db.tokens.c.token_sha256)).scalars().all()
    assert server.tokens["admin"] not in stored
    assert hashlib.sha256(server.tokens["admin"].encode()).hexdigest() in stored
    made = server.client.post("/api/tokens", json={"name": "eve", "role": "reader"},
                              headers=server.headers("admin"))  # fmt: skip
    assert made.status_code == 201
    assert server.get("/api/audit", made.json()["token"]).json()["error"] == "wrong_role"
    refused = server.client.post("/api/tokens", json={"name": "x", "role": "admin"},
                                 headers=server.headers("publisher"))  # fmt: skip
    assert refused.status_code == 403 and refused.json()["error"] == "wrong_role"


def test_health_reports_database_limits_and_gate(server: Server):
    body = server.get("/api/health").json()
    assert body["status"] == "ok" and body["database"] in ("sqlite", "postgresql")
    assert body["gate"]["max_near_copy_rate"] == server.settings.max_near_copy_rate


# -- refusals -------------------------------------------------------------------------------


def edit_json(name: str, change):
    def edit(members: dict[str, bytes]) -> None:
        value = json.loads(members[name])
        change(value)
        members[name] = json.dumps(value).encode()

    return edit


def edit_text(name: str, old: str, new: str):
    def edit(members: dict[str, bytes]) -> None:
        assert old.encode() in members[name]
        members[name] = members[name].replace(old.encode(), new.encode(), 1)

    return edit


def no_privacy(metrics: dict) -> None:
    metrics.pop("privacy")


def copies(metrics: dict) -> None:
    metrics["privacy"]["pixel"]["fraction_flagged"] = 0.25


def remove(name: str):
    return lambda members: members.pop(name)


def add_patient_age(members: dict[str, bytes]) -> None:
    import pydicom

    name = next(n for n in sorted(members) if n.endswith(".dcm"))
    ds = pydicom.dcmread(io.BytesIO(members[name]))
    ds.PatientAge = "045Y"
    out = io.BytesIO()
    ds.save_as(out)
    members[name] = out.getvalue()


def flip_weight_byte(members: dict[str, bytes]) -> None:
    data = bytearray(members["content/weights.safetensors"])
    data[-1] ^= 0xFF
    members["content/weights.safetensors"] = bytes(data)


def escape(members: dict[str, bytes]) -> None:
    members["../../escaped.txt"] = b"evil"


def assert_refused(server: Server, response, status: int, rule: str, *needles: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == rule and body["detail"], body
    for needle in needles:
        assert needle in body["detail"], (needle, body["detail"])
    assert names(server) == []  # nothing listed ...
    assert server.repo.storage.keys() == set()  # ... nothing stored ...
    assert list(server.settings.spool_dir.iterdir()) == []  # ... nothing left in the spool
    assert not [e for e in server.get("/api/audit", "admin").json()["entries"] if e["action"] == "publish"]  # fmt: skip


GATE_CASES = {
    "privacy_audit_missing": ("nifti", edit_json("metrics.json", no_privacy), "privacy"),
    "near_copy_rate": ("nifti", edit_json("metrics.json", copies), "0.2500", "0.0500"),
    "provenance_mismatch": ("nifti", None, "checkpoint_sha256", "audited"),
    "manifest_missing": ("nifti", remove("content/manifest.csv"), "manifest.csv"),
    "report_missing": ("nifti", remove("report.html"), "report.html"),
    "card_missing": ("nifti", remove("card.md"), "card.md"),
    "dicom_header": ("dicom", add_patient_age, "PatientAge", ".dcm"),
    "package_invalid": ("model", flip_weight_byte, "weights.safetensors", "checksum"),
}


@pytest.mark.parametrize("rule", sorted(GATE_CASES))
def test_gate_refuses_with_the_rule_and_numbers(
    rule: str, server: Server, bundle, exports, tmp_path
):
    source, edit, *needles = GATE_CASES[rule]
    good = bundle(source)
    if rule == "provenance_mismatch":  # the audit ran on another generator's output
        audited = json.loads((exports["nifti"].parents[1] / "metrics.json").read_text())
        edit = edit_text(
            "content/manifest.csv", audited["provenance"]["checkpoint_sha256"], "0" * 64
        )
    bad = rewrite(good, tmp_path / "bad.zip", edit)
    assert_refused(server, server.publish(bad), 422, rule, *needles)


def test_membership_auc_above_the_threshold(make_server, bundle):
    good = bundle("nifti")
    with zipfile.ZipFile(good) as archive:
        metrics = json.loads(archive.read("metrics.json"))
    from synthmed.serve.gate import read_evidence

    auc = read_evidence(metrics).membership_auc
    server = make_server(max_membership_auc=round(auc - 0.01, 4))
    assert_refused(
        server, server.publish(good), 422, "membership_auc", f"{auc:.4f}", f"{auc - 0.01:.4f}"
    )


def test_tampered_file_fails_its_checksum(server: Server, bundle, tmp_path):
    bad = rewrite(
        bundle("nifti"), tmp_path / "bad.zip", edit_json("metrics.json", copies), rehash=False
    )
    assert_refused(server, server.publish(bad), 422, "checksum_mismatch", "metrics.json", "sha256")


def test_unlisted_file_fails_the_checksums(server: Server, bundle, tmp_path):
    def extra(members):
        members["content/extra.txt"] = b"smuggled"

    bad = rewrite(bundle("nifti"), tmp_path / "bad.zip", extra, rehash=False)
    assert_refused(server, server.publish(bad), 422, "checksum_mismatch", "content/extra.txt")


def test_zip_slip_entry(server: Server, bundle, tmp_path):
    bad = rewrite(bundle("nifti"), tmp_path / "bad.zip", escape, rehash=False)
    assert_refused(server, server.publish(bad), 400, "zip_slip", "../../escaped.txt")
    assert not (server.settings.spool_dir.parent / "escaped.txt").exists()


def test_file_over_the_size_limit(make_server, bundle):
    server = make_server(max_file_bytes=50_000)
    assert_refused(
        server, server.publish(bundle("nifti")), 413, "file_too_large", "report.html", "50000"
    )


def test_upload_over_the_size_limit(make_server, bundle):
    server = make_server(max_bundle_bytes=10_000)
    assert_refused(server, server.publish(bundle("nifti")), 413, "bundle_too_large", "10000")


def test_not_a_zip(server: Server, tmp_path: Path):
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip at all")
    assert_refused(server, server.publish(junk), 400, "bad_bundle", "not a zip")
    sent = server.publish(junk, **{"Content-Type": "application/json"})
    assert_refused(server, sent, 400, "bad_bundle", "application/zip")


@pytest.mark.parametrize(("who", "status", "rule"), [
    (None, 401, "bad_token"), ("smt_not-a-real-token", 401, "bad_token"), ("reader", 403, "wrong_role"),
])  # fmt: skip
def test_publishing_needs_a_publisher_token(who, status, rule, server: Server, bundle):
    assert_refused(server, server.publish(bundle("nifti"), who), status, rule)


def test_duplicate_name(server: Server, bundle):
    assert server.publish(bundle("nifti", name="same")).status_code == 201
    again = server.publish(bundle("dicom", name="same"), "other")
    assert again.status_code == 409 and again.json() == {
        "error": "duplicate_name",
        "detail": "'same' is already published",
    }
    assert names(server) == ["same"] and len(server.repo.storage.keys()) == 1


def test_start_up_removes_only_what_an_interrupted_server_left(server: Server, bundle):
    assert server.publish(bundle("nifti", name="kept")).status_code == 201
    storage = server.repo.storage
    storage.fs.makedirs(f"{storage.root}/items/orphan", exist_ok=True)  # killed before its row
    storage.fs.pipe_file(f"{storage.root}/items/orphan/bundle.zip", b"half")
    storage.fs.makedirs(f"{storage.root}/pending/half", exist_ok=True)  # killed while storing
    storage.fs.pipe_file(f"{storage.root}/pending/half/bundle.zip", b"half")
    (server.settings.spool_dir / "upload.zip").write_bytes(b"half")  # killed while receiving
    removed = server.repo.prepare()
    assert sorted(removed) == ["items/orphan", "pending/half"]
    assert list(server.settings.spool_dir.iterdir()) == []
    assert names(server) == ["kept"]
    assert server.get("/api/items/kept/download").status_code == 200


def test_bad_descriptor_values(server: Server, bundle):
    bad_name = bundle("nifti", name="no spaces/allowed")
    assert_refused(server, server.publish(bad_name), 422, "bad_descriptor", "no spaces/allowed")
    long_title = bundle("nifti", title="x" * 301)
    assert_refused(server, server.publish(long_title), 422, "bad_descriptor", "301", "300")
