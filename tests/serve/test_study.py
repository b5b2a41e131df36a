"""Reader studies on SQLite and PostgreSQL: an admin builds one from a published export and a
zip of real PNGs, two readers answer (one stops halfway and resumes), the results match the
pure statistics, and wrong roles, unknown links and bad answers are refused by rule."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.serve.conftest import Server, rewrite

N = 4  # the tiny export has 4 samples


def synthetic_look(exports) -> tuple[int, ...]:
    """(height, width, channels) of the export's images after the study's conversion."""
    from synthmed.serve.study_images import encode

    first = sorted(exports["nifti"].rglob("*.nii.gz"))[0]
    return encode(first, "synthetic", "x", None).look


def real_zip(path: Path, look: tuple[int, ...], classes=(None,) * N) -> Path:
    """``len(classes)`` random PNGs of ``look`` (in folder CLASS/ when a class is given)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    h, w, c = look
    with zipfile.ZipFile(path, "w") as archive:
        for k, klass in enumerate(classes):
            pixels = rng.integers(0, 256, (h, w, c) if c == 3 else (h, w), dtype=np.uint8)
            buf = io.BytesIO()
            Image.fromarray(pixels).save(buf, format="PNG")
            archive.writestr(f"{klass}/real{k}.png" if klass else f"real{k}.png", buf.getvalue())
    return path


def create(server: Server, zip_path: Path, who="admin", **params):
    query = {"name": "turing", "synthetic": "vessels", "n": N, "reader": ["alice", "bob"]}
    query |= params
    return server.client.post(
        "/api/studies", params=query, content=zip_path.read_bytes(),
        headers={"Content-Type": "application/zip", **server.headers(who)},
    )  # fmt: skip


@pytest.fixture
def study(server: Server, bundle, exports, tmp_path):
    """A published export and a study of it with readers alice and bob: (server, tokens)."""
    assert server.publish(bundle("nifti", name="vessels")).status_code == 201
    made = create(server, real_zip(tmp_path / "real.zip", synthetic_look(exports)))
    assert made.status_code == 201, made.text
    return server, {e["reader"]: e["token"] for e in made.json()["reader_tokens"]}


def current(server: Server, token: str) -> dict:
    """What the reader page shows: position, total, image id (or done)."""
    page = server.client.get("/study", params={"token": token})
    assert page.status_code == 200, page.text
    if 'id="done"' in page.text:
        return {"done": True, "html": page.text}
    position = int(re.search(r'name="position" value="(\d+)"', page.text).group(1))
    image = re.search(r'name="image_id" value="([0-9a-f]+)"', page.text).group(1)
    return {"done": False, "position": position, "image_id": image, "html": page.text}


def submit(server: Server, token: str, position: int, image_id: str, answer: str, **extra):
    form = {"token": token, "position": position, "image_id": image_id, "answer": answer,
            "confidence": 3, **extra}  # fmt: skip
    return server.client.post("/study/answer", data=form, follow_redirects=False)


def truths(server: Server) -> dict[str, str]:
    import sqlalchemy as sa

    from synthmed.serve import db

    with server.repo.engine.connect() as conn:
        rows = conn.execute(sa.select(db.study_images.c.public_id, db.study_images.c.truth))
        return dict(rows.all())


def answer_all(server: Server, token: str, choose, stop_after: int | None = None) -> list[str]:
    """Answer from the reader's current position on; returns the image ids seen in order."""
    seen = []
    while not (state := current(server, token))["done"]:
        if stop_after is not None and len(seen) == stop_after:
            break
        sent = submit(server, token, state["position"], state["image_id"], choose(state))
        assert sent.status_code == 303, sent.text
        seen.append(state["image_id"])
    return seen


def test_two_readers_answer_resume_and_the_results_match(study):
    from synthmed.evaluation.reader_study import category_counts, cohen_kappa, fleiss_kappa
    from synthmed.serve.study import Studies, reader_sequence

    server, tokens = study
    truth = truths(server)
    assert sorted(truth.values()) == ["real"] * N + ["synthetic"] * N
    alice = answer_all(server, tokens["alice"], lambda s: truth[s["image_id"]])  # always right
    assert len(alice) == 2 * N and current(server, tokens["alice"])["done"]

    def bob_rule(state):  # right on real images, says "real" for half the synthetic ones
        return "real" if state["position"] % 2 else truth[state["image_id"]]

    first = answer_all(server, tokens["bob"], bob_rule, stop_after=N)
    assert current(server, tokens["bob"])["position"] == N  # stopped halfway: resumes here
    rest = answer_all(server, tokens["bob"], bob_rule)
    bob = first + rest
    assert len(bob) == 2 * N and len(set(bob)) == 2 * N

    # each sequence holds every image once (balanced), follows the stored seed, and differs
    studies = Studies(server.repo)
    for name, seen in (("alice", alice), ("bob", bob)):
        reader = studies.reader(tokens[name])
        assert reader_sequence(reader.seed, sorted(truth)) == seen
        assert [truth[i] for i in seen].count("synthetic") == N
    assert alice != bob

    results = server.get("/api/studies/turing/results", "admin").json()
    a = {i: truth[i] for i in alice}
    b = {i: bob_rule({"position": p, "image_id": i}) for p, i in enumerate(bob)}
    images = sorted(truth)
    expected_cohen = cohen_kappa([a[i] for i in images], [b[i] for i in images])
    assert results["cohen_kappa"] == [{"reader_a": "alice", "reader_b": "bob",
                                       "n_images": 2 * N, "kappa": expected_cohen}]  # fmt: skip
    table = category_counts([[a[i], b[i]] for i in images], ["real", "synthetic"])
    assert results["fleiss_kappa"] == {"kappa": fleiss_kappa(table), "n_images": 2 * N,
                                       "n_readers": 2}  # fmt: skip
    correct = sum(a[i] == truth[i] for i in images) + sum(b[i] == truth[i] for i in images)
    overall = results["overall"]
    assert overall["accuracy"]["correct"] == correct and overall["accuracy"]["n"] == 4 * N
    assert overall["specificity"]["value"] == 1.0  # nobody called a real image synthetic
    assert 0 < overall["p_value_vs_chance"] <= 1
    alice_row = next(r for r in results["readers"] if r["reader"] == "alice")
    assert alice_row["accuracy"]["value"] == 1.0 and alice_row["done"]

    # CSV export: one row per answer, truths included
    exported = server.get("/api/studies/turing/answers.csv", "admin")
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert len(rows) == 4 * N
    assert list(rows[0]) == ["study", "reader", "position", "image_id", "truth", "answer",
                             "confidence", "class_truth", "class_answer", "answered_at"]  # fmt: skip
    assert {(r["reader"], r["image_id"], r["truth"]) for r in rows} >= {
        ("alice", i, truth[i]) for i in alice
    }
    page = server.get("/studies/turing/results", "admin")
    assert page.status_code == 200 and 'id="kappa-fleiss"' in page.text
    progress = server.get("/api/studies/turing", "admin").json()["readers"]
    assert progress == [{"reader": "alice", "answered": 2 * N, "of": 2 * N},
                        {"reader": "bob", "answered": 2 * N, "of": 2 * N}]  # fmt: skip


def test_answers_are_taken_once_and_in_order(study):
    server, tokens = study
    state = current(server, tokens["alice"])
    assert submit(server, tokens["alice"], 0, state["image_id"], "real").status_code == 303
    again = submit(server, tokens["alice"], 0, state["image_id"], "synthetic")
    assert again.status_code == 409 and again.json()["error"] == "already_answered"
    skip = submit(server, tokens["alice"], 5, state["image_id"], "real")
    assert skip.status_code == 409 and skip.json()["error"] == "wrong_position"
    nxt = current(server, tokens["alice"])
    bad = submit(server, tokens["alice"], 1, nxt["image_id"], "real", confidence=7)
    assert bad.status_code == 400 and "confidence must be 1-5" in bad.json()["detail"]
    wrong_image = submit(server, tokens["alice"], 1, state["image_id"], "real")
    assert wrong_image.json()["error"] == "bad_answer"
    csv_rows = server.get("/api/studies/turing/answers.csv", "admin").text.splitlines()[1:]
    assert len(csv_rows) == 1 and ",real," in csv_rows[0]  # the first answer stands


def test_the_reader_page_does_not_reveal_the_truth(study, exports):
    server, tokens = study
    truth = truths(server)
    token = tokens["alice"]
    pages = {}
    while not (state := current(server, token))["done"]:
        side = truth[state["image_id"]]
        html = state["html"].replace(state["image_id"], "ID")
        html = html.replace(f'<span id="position">{state["position"] + 1}<', "<span>P<")
        html = html.replace(f'name="position" value="{state["position"]}"', "P")
        pages.setdefault(side, html)
        png = server.client.get(f"/study/images/{state['image_id']}.png", params={"token": token})
        assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
        assert b"tEXt" not in png.content and b"iTXt" not in png.content  # no metadata
        assert (
            submit(server, token, state["position"], state["image_id"], "real").status_code == 303
        )
    assert pages["real"] == pages["synthetic"]  # the same page but for the opaque id and position
    for needle in ("vessels", "content/", ".nii", "real0.png", "turing", "truth"):
        assert needle not in pages["real"], needle


def test_wrong_roles_and_unknown_reader_tokens_are_refused(study, tmp_path, exports):
    server, tokens = study
    zip_path = real_zip(tmp_path / "again.zip", synthetic_look(exports))
    for who, status, rule in ((None, 401, "bad_token"), ("reader", 403, "wrong_role"),
                              ("publisher", 403, "wrong_role"), (tokens["alice"], 401, "bad_token")):  # fmt: skip
        refused = create(server, zip_path, who, name="other")
        assert refused.status_code == status and refused.json()["error"] == rule, refused.text
        assert refused.json()["detail"]
    results = server.get("/api/studies/turing/results", "publisher")
    assert results.status_code == 403 and "needs the admin role" in results.json()["detail"]
    for token in ("smr_not-a-real-token", server.tokens["admin"]):
        page = server.client.get("/study", params={"token": token})
        assert page.status_code == 401 and page.json()["error"] == "bad_token"
        assert "study link's token is unknown" in page.json()["detail"]
    assert server.client.get("/study").json()["detail"].startswith("a reader page needs")
    image = server.client.get("/study/images/abc.png", params={"token": "smr_x"})
    assert image.status_code == 401


def test_study_requests_that_cannot_work_are_refused(server: Server, bundle, exports, tmp_path):
    assert server.publish(bundle("nifti", name="vessels")).status_code == 201
    h, w, c = synthetic_look(exports)
    small = create(server, real_zip(tmp_path / "small.zip", (h // 2, w // 2, c)))
    assert small.status_code == 422 and small.json()["error"] == "bad_study"
    assert "differ in size" in small.json()["detail"]
    good = real_zip(tmp_path / "real.zip", (h, w, c))
    too_many = create(server, good, n=N + 1)
    assert too_many.status_code == 422 and "asks for 5" in too_many.json()["detail"]
    no_class = create(server, good, ask_class="true")
    assert no_class.status_code == 422 and "class" in no_class.json()["detail"]
    as_json = server.client.post(
        "/api/studies", params={"name": "t", "synthetic": "vessels", "n": 1, "reader": "a"},
        content=good.read_bytes(), headers={"Content-Type": "application/json",
                                            **server.headers("admin")},
    )  # fmt: skip
    assert as_json.status_code == 422 and "application/zip" in as_json.json()["detail"]
    missing = create(server, good, synthetic="nothing-here")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    assert server.get("/api/studies", "admin").json()["studies"] == []


def with_classes(members: dict[str, bytes]) -> None:
    rows = list(csv.DictReader(io.StringIO(members["content/manifest.csv"].decode())))
    for k, row in enumerate(rows):
        row["class"] = str(k % 2)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    members["content/manifest.csv"] = out.getvalue().encode()


def test_class_is_asked_and_scored(server: Server, bundle, exports, tmp_path):
    classed = rewrite(bundle("nifti", name="vessels"), tmp_path / "classed.zip", with_classes)
    assert server.publish(classed).status_code == 201
    zip_path = real_zip(tmp_path / "real.zip", synthetic_look(exports), ["0", "1", "0", "1"])
    made = create(server, zip_path, ask_class="true", reader=["carol"])
    assert made.status_code == 201, made.text
    assert made.json()["classes"] == ["0", "1"] and made.json()["ask_class"]
    token = made.json()["reader_tokens"][0]["token"]
    state = current(server, token)
    assert 'id="class"' in state["html"]
    missing = submit(server, token, 0, state["image_id"], "real")
    assert missing.status_code == 400 and "class must be one of 0, 1" in missing.json()["detail"]
    while not (state := current(server, token))["done"]:
        sent = submit(server, token, state["position"], state["image_id"], "real", class_answer="0")
        assert sent.status_code == 303
    results = server.get("/api/studies/turing/results", "admin").json()
    assert results["class_accuracy"]["overall"] == {
        "n": 2 * N, "correct": N, "value": 0.5,
        "ci95_low": pytest.approx(0.2152, abs=1e-4), "ci95_high": pytest.approx(0.7848, abs=1e-4),
    }  # fmt: skip
    assert results["fleiss_kappa"]["kappa"] is None  # one reader: no agreement to measure
    assert 'id="class-accuracy"' in server.get("/studies/turing/results", "admin").text


def test_revoked_tokens_get_401_with_the_reason(server: Server):
    made = server.client.post("/api/tokens", json={"name": "eve", "role": "publisher"},
                              headers=server.headers("admin")).json()["token"]  # fmt: skip
    assert server.get("/api/items", made).status_code == 200
    refused = server.client.post("/api/tokens/revoke", json={"name": "eve"},
                                 headers=server.headers("publisher"))  # fmt: skip
    assert refused.status_code == 403 and refused.json()["error"] == "wrong_role"
    done = server.client.post("/api/tokens/revoke", json={"name": "eve"},
                              headers=server.headers("admin"))  # fmt: skip
    assert done.json() == {"revoked": 1, "name": "eve"}
    after = server.get("/api/items", made)
    assert after.status_code == 401 and after.json()["error"] == "bad_token"
    assert after.json()["detail"].startswith("the API token was revoked on ")
    assert "\n" not in after.json()["detail"]
    by_token = server.client.post("/api/tokens/revoke", json={"token": server.tokens["other"]},
                                  headers=server.headers("admin"))  # fmt: skip
    assert by_token.json() == {"revoked": 1}
    assert server.get("/api/audit", "other").status_code == 401
    assert server.get("/api/audit", "admin").status_code == 200  # the others still work
    unknown = server.get("/api/items", "smt_never-issued")
    assert unknown.json()["detail"] == "the API token is unknown"


def test_readers_are_added_later_and_their_links_revoked(study):
    server, tokens = study
    url = "/api/studies/turing/readers"
    added = server.client.post(url, params={"reader": "carol"}, headers=server.headers("admin"))
    assert added.status_code == 201, added.text
    (carol,) = added.json()["reader_tokens"]
    assert carol["reader"] == "carol" and carol["link"].endswith(f"/study?token={carol['token']}")
    assert not current(server, carol["token"])["done"]
    twice = server.client.post(url, params={"reader": "carol"}, headers=server.headers("admin"))
    assert twice.status_code == 422 and twice.json()["error"] == "bad_study"
    by_publisher = server.client.post(url, params={"reader": "dan"},
                                      headers=server.headers("publisher"))  # fmt: skip
    assert by_publisher.status_code == 403 and by_publisher.json()["error"] == "wrong_role"

    state = current(server, tokens["bob"])
    assert submit(server, tokens["bob"], 0, state["image_id"], "real").status_code == 303
    revoked = server.client.post(f"{url}/bob/revoke", headers=server.headers("admin"))
    assert revoked.json() == {"reader": "bob", "revoked": 1}
    page = server.client.get("/study", params={"token": tokens["bob"]})
    assert page.status_code == 401 and page.json()["detail"].startswith(
        "this study link was revoked on"
    )
    results = server.get("/api/studies/turing/results", "admin").json()
    assert [(r["reader"], r["answered"]) for r in results["readers"]] == [
        ("alice", 0), ("bob", 1), ("carol", 0),
    ]  # fmt: skip
    assert current(server, tokens["alice"])["position"] == 0  # the others' links still work
