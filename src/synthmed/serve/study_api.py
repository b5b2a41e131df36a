"""HTTP routes of reader studies: the admin's JSON API and pages, and the readers' pages.

Admin (``Authorization: Bearer`` admin token)::

    POST /api/studies?name=&synthetic=ITEM&n=&ask_class=&reader=A&reader=B
                                          body: zip of real images (application/zip)
    POST /api/studies/NAME/readers?reader=C       more readers; their tokens and links
    POST /api/studies/NAME/readers/READER/revoke  revoke a reader's link (answers stay)
    GET  /api/studies                     every study with its readers' progress
    GET  /api/studies/NAME                one study
    GET  /api/studies/NAME/results        accuracy, CI, p-value, kappas (JSON)
    GET  /api/studies/NAME/answers.csv    one row per answer, truths included
    GET  /studies/NAME/results            the results page

Readers (their link's study token, as ``?token=`` or a form field; never an API token)::

    GET  /study?token=T                   the next image and the answer form (or "done")
    POST /study/answer                    form: token, position, image_id, answer,
                                          confidence, class_answer -> 303 to /study?token=T
    GET  /study/images/ID.png?token=T     an image by its opaque id

Reader pages carry no truth: images are served under random ids as re-encoded PNGs, and the
page names neither the source item nor any file.
"""

from __future__ import annotations

import urllib.parse

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from synthmed import __version__
from synthmed.serve.accounts import authenticate, require
from synthmed.serve.rules import Refusal
from synthmed.serve.service import Repository
from synthmed.serve.study import Studies, StudyRequest

NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
MAX_FORM_BYTES = 10_000


def study_request(request: Request) -> StudyRequest:
    """Query parameters of ``POST /api/studies`` -> a StudyRequest (bad ones: bad_study)."""
    params = request.query_params
    missing = [k for k in ("name", "synthetic", "n", "reader") if not params.get(k)]
    if missing:
        raise Refusal("bad_study", f"missing query parameter(s): {', '.join(missing)}")
    try:
        n = int(params["n"])
    except ValueError:
        raise Refusal("bad_study", f"n={params['n']!r} is not a whole number") from None
    return StudyRequest(
        name=params["name"],
        synthetic_item=params["synthetic"],
        n_per_side=n,
        ask_class=params.get("ask_class", "").lower() in ("1", "true", "yes"),
        readers=tuple(params.getlist("reader")),
        real_source=f"uploaded zip {params.get('real_name') or ''}".strip(),
    )


async def read_form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (no python-multipart needed)."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise Refusal("bad_answer", f"form of {len(body)} bytes, at most {MAX_FORM_BYTES}")
    pairs = urllib.parse.parse_qsl(body.decode("utf-8", errors="replace"))
    return dict(pairs)


def add_study_routes(app: FastAPI, repo: Repository) -> None:
    from synthmed.serve.app import ZIP_TYPES, bearer, spool_body
    from synthmed.serve.pages import environment

    studies = Studies(repo)
    env = environment()

    async def user_of(request: Request):
        return await run_in_threadpool(authenticate, repo.engine, bearer(request))

    def page(template: str, **context) -> HTMLResponse:
        html = env.get_template(template).render(version=__version__, **context)
        return HTMLResponse(html, headers=NO_STORE)

    @app.post("/api/studies", status_code=201)
    async def create(request: Request) -> dict:
        user = await user_of(request)
        require(user, "admin", "creating a reader study")
        req = study_request(request)
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype not in ZIP_TYPES:
            raise Refusal("bad_study", f"send the real images as application/zip, not {ctype!r}")
        path = await spool_body(request, repo)
        try:
            made = await run_in_threadpool(studies.create, user, req, path)
        finally:
            path.unlink(missing_ok=True)
        base = str(request.base_url).rstrip("/")
        for entry in made["reader_tokens"]:
            entry["link"] = f"{base}/study?token={entry['token']}"
        return made

    @app.post("/api/studies/{name}/readers", status_code=201)
    async def add_readers(name: str, request: Request) -> dict:
        readers = request.query_params.getlist("reader")
        added = await run_in_threadpool(studies.add_readers, await user_of(request), name, readers)
        base = str(request.base_url).rstrip("/")
        return {"reader_tokens": [e | {"link": f"{base}/study?token={e['token']}"} for e in added]}

    @app.post("/api/studies/{name}/readers/{reader}/revoke")
    async def revoke_reader(name: str, reader: str, request: Request) -> dict:
        user = await user_of(request)
        count = await run_in_threadpool(studies.revoke_reader, user, name, reader)
        return {"reader": reader, "revoked": count}

    @app.get("/api/studies")
    async def listing(request: Request) -> dict:
        return {"studies": await run_in_threadpool(studies.list, await user_of(request))}

    @app.get("/api/studies/{name}")
    async def one(name: str, request: Request) -> dict:
        return await run_in_threadpool(studies.describe, await user_of(request), name)

    @app.get("/api/studies/{name}/results")
    async def results(name: str, request: Request) -> dict:
        return await run_in_threadpool(studies.results, await user_of(request), name)

    @app.get("/api/studies/{name}/answers.csv")
    async def answers(name: str, request: Request) -> Response:
        text = await run_in_threadpool(studies.answers_csv, await user_of(request), name)
        headers = {"Content-Disposition": f'attachment; filename="{name}-answers.csv"'}
        return Response(text, media_type="text/csv", headers=headers)

    @app.get("/studies/{name}/results", response_class=HTMLResponse)
    async def results_page(name: str, request: Request) -> HTMLResponse:
        user = await user_of(request)
        study = await run_in_threadpool(studies.describe, user, name)
        return page("study_results.html", study=study,
                    results=await run_in_threadpool(studies.results, user, name))  # fmt: skip

    @app.get("/study", response_class=HTMLResponse)
    async def reader_page(request: Request, token: str | None = None) -> HTMLResponse:
        state = await run_in_threadpool(studies.current, token or bearer(request))
        return page("study_reader.html", state=state, token=token or "")

    @app.post("/study/answer")
    async def answer(request: Request) -> RedirectResponse:
        form = await read_form(request)
        token = form.get("token") or bearer(request)
        await run_in_threadpool(studies.answer, token, form)
        target = "/study?" + urllib.parse.urlencode({"token": token or ""})
        return RedirectResponse(target, status_code=303, headers=NO_STORE)

    @app.get("/study/images/{public_id}.png")
    async def image(public_id: str, request: Request, token: str | None = None) -> Response:
        png = await run_in_threadpool(studies.image, token or bearer(request), public_id)
        return Response(png, media_type="image/png", headers=NO_STORE)
