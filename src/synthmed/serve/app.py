"""The HTTP server: JSON API under ``/api``, web pages for browsing, one FastAPI app.

Endpoints (``Authorization: Bearer TOKEN`` where a role is needed)::

    GET    /api/health                    database + storage probe, limits, gate thresholds
    POST   /api/items                     publish (body: the bundle zip, application/zip)
    GET    /api/items?modality=...        search (filters: see Filters)
    GET    /api/items/NAME                one item
    GET    /api/items/NAME/download       the bundle zip as published (also /items/NAME/download)
           ?layout=nnunet|monai           the dataset re-laid as nnU-Net raw / MONAI datalist zip
    DELETE /api/items/NAME                owner or admin
    GET    /api/audit                     admin: publishes, downloads, deletions
    POST   /api/tokens                    admin: {"name", "role"} -> a new token (shown once)
    POST   /api/tokens/revoke             admin: {"name"} (all their tokens) or {"token"}
    GET    /                              search page
    GET    /items/NAME                    item page: sample grid, card, metric tables
    GET    /items/NAME/report             the run's full report.html (sandboxed)

Reader studies (``/api/studies``, ``/study``): see :mod:`synthmed.serve.study_api`.

Workers are started by uvicorn from :func:`app_from_env`; migrations and the start-up sweep
run once in the parent (``synthmed serve``) before any worker accepts an upload.
"""

from __future__ import annotations

import logging
import time

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse

from synthmed import __version__
from synthmed.serve.accounts import (
    ROLES,
    User,
    authenticate,
    create_token,
    require,
    revoke_tokens,
)
from synthmed.serve.rules import Refusal
from synthmed.serve.service import Filters, Repository
from synthmed.serve.settings import ServeSettings

log = logging.getLogger("synthmed.serve")
ZIP_TYPES = ("application/zip", "application/x-zip-compressed", "application/octet-stream")
REPORT_CSP = (
    "sandbox allow-scripts; default-src 'none'; img-src data:; "
    "style-src 'unsafe-inline'; script-src 'unsafe-inline'"
)


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def filters_from(
    kind: str | None = None,
    modality: str | None = None,
    anatomy: str | None = None,
    task: str | None = None,
    licence: str | None = None,
    model_family: str | None = None,
    label: list[str] | None = None,
    q: str | None = None,
    min_synthetic_dice: float | None = None,
    max_near_copy_rate: float | None = None,
    max_membership_auc: float | None = None,
) -> Filters:
    return Filters(
        kind or None,
        modality or None,
        anatomy or None,
        task or None,
        licence or None,
        model_family or None,
        tuple(v for v in label or [] if v),
        q or None,
        min_synthetic_dice,
        max_near_copy_rate,
        max_membership_auc,
    )


async def spool_body(request: Request, repo: Repository):
    """Stream the request body to a spool file, refusing it past the size limit."""
    limit = repo.settings.max_bundle_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise Refusal("bundle_too_large", f"upload of {declared} bytes, limit {limit} bytes")
    path = repo.spool_path()
    size = 0
    try:
        with open(path, "wb") as fh:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise Refusal("bundle_too_large", f"upload exceeds the limit of {limit} bytes")
                fh.write(chunk)
    except BaseException:  # refused, or the client went away: keep nothing
        path.unlink(missing_ok=True)
        raise
    return path


def add_api(app: FastAPI, repo: Repository) -> None:
    async def user_of(request: Request) -> User | None:
        return await run_in_threadpool(authenticate, repo.engine, bearer(request))

    @app.get("/api/health")
    def health():
        s = repo.settings
        try:
            probe = repo.health()
        except Exception as exc:  # a load balancer wants a status code, not a traceback
            log.error("health check failed: %s", exc)
            return JSONResponse({"status": "unavailable", "detail": type(exc).__name__}, 503)
        return {
            **probe,
            "version": __version__,
            "limits": {
                "max_bundle_bytes": s.max_bundle_bytes,
                "max_file_bytes": s.max_file_bytes,
                "max_total_bytes": s.max_total_bytes,
            },
            "gate": {
                "max_near_copy_rate": s.max_near_copy_rate,
                "max_membership_auc": s.max_membership_auc,
            },
        }

    @app.post("/api/items", status_code=201)
    async def publish(request: Request) -> dict:
        user = require(await user_of(request), "publisher", "publishing")
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype not in ZIP_TYPES:
            raise Refusal("bad_bundle", f"send the bundle as application/zip, not {ctype!r}")
        path = await spool_body(request, repo)
        try:
            return await run_in_threadpool(repo.publish, user, path)
        finally:
            path.unlink(missing_ok=True)

    @app.get("/api/items")
    async def search(request: Request) -> dict:
        filters = parse_filters(request)
        items = await run_in_threadpool(repo.search, await user_of(request), filters)
        return {"items": items, "count": len(items)}

    @app.get("/api/items/{name}")
    async def item(name: str, request: Request) -> dict:
        return await run_in_threadpool(repo.get, await user_of(request), name)

    @app.get("/api/items/{name}/download")
    @app.get("/items/{name}/download")
    async def download(name: str, request: Request, layout: str = "original") -> StreamingResponse:
        user = await user_of(request)
        if layout != "original":  # re-laid on the fly: no stored size or checksum to promise
            info, chunks = await run_in_threadpool(repo.download_relaid, user, name, layout)
            headers = {
                "Content-Disposition": f'attachment; filename="{info["name"]}.zip"',
                "X-Synthmed-Source-Sha256": info["sha256"],
            }
            return StreamingResponse(chunks, media_type="application/zip", headers=headers)
        info, chunks = await run_in_threadpool(repo.download, user, name)
        headers = {
            "Content-Disposition": f'attachment; filename="{info["name"]}.zip"',
            "Content-Length": str(info["bytes"]),
            "X-Synthmed-Sha256": info["sha256"],
        }
        return StreamingResponse(chunks, media_type="application/zip", headers=headers)

    @app.delete("/api/items/{name}")
    async def delete(name: str, request: Request) -> dict:
        await run_in_threadpool(repo.delete, await user_of(request), name)
        return {"deleted": name}

    @app.get("/api/audit")
    async def audit(request: Request, limit: int = 200) -> dict:
        return {"entries": await run_in_threadpool(repo.audit_log, await user_of(request), limit)}

    @app.post("/api/tokens", status_code=201)
    async def tokens(request: Request) -> dict:
        require(await user_of(request), "admin", "creating tokens")
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or body.get("role") not in ROLES or not body.get("name"):
            raise Refusal("bad_query", f"send {{'name': ..., 'role': one of {', '.join(ROLES)}}}")
        token = await run_in_threadpool(create_token, repo.engine, str(body["name"]), body["role"])
        return {"name": body["name"], "role": body["role"], "token": token}

    @app.post("/api/tokens/revoke")
    async def revoke(request: Request) -> dict:
        require(await user_of(request), "admin", "revoking tokens")
        try:
            body = await request.json()
        except ValueError:
            body = None
        keys = {k: str(v) for k, v in (body or {}).items() if k in ("name", "token") and v}
        if not isinstance(body, dict) or len(keys) != 1:
            raise Refusal("bad_query", "send {'name': ...} (all their tokens) or {'token': ...}")
        count = await run_in_threadpool(lambda: revoke_tokens(repo.engine, **keys))
        return {"revoked": count, **({"name": keys["name"]} if "name" in keys else {})}


NUMBER_FILTERS = ("min_synthetic_dice", "max_near_copy_rate", "max_membership_auc")
TEXT_FILTERS = ("kind", "modality", "anatomy", "task", "licence", "model_family", "q")


def parse_filters(request: Request) -> Filters:
    """Query parameters -> Filters; unknown names and non-numbers are refused (bad_query)."""
    labels = request.query_params.getlist("label")
    params = {k: v for k, v in request.query_params.items() if k != "label"}
    unknown = sorted(set(params) - set(NUMBER_FILTERS) - set(TEXT_FILTERS))
    if unknown:
        known = ", ".join((*TEXT_FILTERS, "label", *NUMBER_FILTERS))
        raise Refusal("bad_query", f"unknown filter {unknown[0]!r} (known: {known})")
    numbers = {}
    for key in NUMBER_FILTERS:
        if params.get(key):
            try:
                numbers[key] = float(params[key])
            except ValueError:
                raise Refusal("bad_query", f"{key}={params[key]!r} is not a number") from None
    return filters_from(**{k: params.get(k) for k in TEXT_FILTERS}, label=labels, **numbers)


def add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(Refusal)
    async def refused(request: Request, exc: Refusal) -> JSONResponse:
        log.info("refused %s: %s", exc.rule, exc.detail, extra={"rule": exc.rule})
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        detail = f"{where}: {first.get('msg', 'invalid value')}"
        return JSONResponse({"error": "bad_query", "detail": detail}, status_code=400)

    @app.middleware("http")
    async def request_log(request: Request, call_next) -> Response:
        start = time.perf_counter()
        response = await call_next(request)
        log.info(
            "%s %s %d",
            request.method,
            request.url.path,
            response.status_code,
            extra={
                "method": request.method,
                "path": request.url.path,
                "status": response.status_code,
                "duration_ms": round(1000 * (time.perf_counter() - start), 1),
            },
        )
        return response


def create_app(settings: ServeSettings, prepare: bool = True) -> FastAPI:
    """The app for ``settings``; ``prepare`` migrates and sweeps first (one process only)."""
    from synthmed.serve.pages import add_pages

    repo = Repository(settings)
    if prepare:
        repo.prepare()
    app = FastAPI(title="SynthMed repository", version=__version__, docs_url="/api/docs")
    app.state.repo = repo
    add_error_handlers(app)
    add_api(app, repo)
    add_pages(app, repo, REPORT_CSP)
    from synthmed.serve.study_api import add_study_routes

    add_study_routes(app, repo)
    return app


def app_from_env() -> FastAPI:
    """uvicorn worker factory: settings from ``SYNTHMED_SERVE_*``; the parent prepared."""
    return create_app(ServeSettings.from_env(), prepare=False)
