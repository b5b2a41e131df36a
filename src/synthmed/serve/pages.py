"""Web pages: a search page and one page per item (jinja2 templates shipped with the package).

Pages show what the JSON API returns, for people: the sample grid, the card, fidelity,
utility and privacy tables, and the run's full report. The report is the publisher's HTML,
so it is served with a sandboxing Content-Security-Policy: its scripts run in an opaque
origin and cannot read this site's pages or send requests as the visitor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from synthmed import __version__
from synthmed.serve.accounts import authenticate
from synthmed.serve.bundle import REPORT
from synthmed.serve.service import Repository
from synthmed.serve.storage import GRID

TEMPLATES = Path(__file__).parent / "templates"
FILTER_FIELDS = ("q", "kind", "modality", "anatomy", "task", "licence", "model_family", "label")
EVIDENCE_FIELDS = ("min_synthetic_dice", "max_near_copy_rate", "max_membership_auc")


def environment():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined
    )
    env.filters["num"] = lambda v: "n/a" if v is None else f"{v:.3f}" if isinstance(v, float) else v
    return env


def utility_rows(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (task, protocol, real patients, metric): mean and 95% CI over seeds."""
    rows = []
    for task, section in (metrics.get("utility") or {}).items():
        for metric, entries in ((section or {}).get("summary") or {}).items():
            for e in entries or []:
                rows.append({"task": task, "metric": metric, **e})
    return rows


def flat_rows(metrics: dict[str, Any], section: str) -> list[tuple[str, float]]:
    """Numeric results of one section (allow-listed as in model cards: no paths, no IDs),
    without the settings of the feature extractor."""
    from synthmed.packaging.card import flatten_metrics

    part = {k: v for k, v in (metrics.get(section) or {}).items() if k not in ("extractor", "n")}
    flat = flatten_metrics({section: part}) if part else {}
    return sorted(flat.items()) if isinstance(flat, dict) else []


PRIVACY_KEYS = (
    "threshold", "n_flagged", "fraction_flagged", "n_patients_reproduced",
    "fraction_closer_to_train",
)  # fmt: skip


def privacy_rows(metrics: dict[str, Any]) -> list[tuple[str, Any]]:
    """The audit's headline numbers per space: near-copies, reproduced patients, attacks."""
    privacy = metrics.get("privacy") or {}
    rows: list[tuple[str, Any]] = []
    for space in ("pixel", "embedding"):
        block = privacy.get(space) or {}
        rows += [(f"{space}.{k}", block[k]) for k in PRIVACY_KEYS if k in block]
        for attack, result in (block.get("membership") or {}).items():
            if isinstance(result, dict) and "auc" in result:
                rows.append((f"{space}.membership.{attack}.auc", result["auc"]))
    logan = privacy.get("membership_logan") or {}
    if "auc" in logan:
        rows.append(("membership_logan.auc", logan["auc"]))
    copying = privacy.get("data_copying") or {}
    for key, value in copying.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            rows.append((f"data_copying.{key}", value))
    return rows


def add_pages(app: FastAPI, repo: Repository, report_csp: str) -> None:
    env = environment()

    async def user_of(request: Request):
        from synthmed.serve.app import bearer

        return await run_in_threadpool(authenticate, repo.engine, bearer(request))

    def page(template: str, status: int = 200, **context) -> HTMLResponse:
        html = env.get_template(template).render(version=__version__, **context)
        return HTMLResponse(html, status_code=status)

    @app.get("/", response_class=HTMLResponse)
    async def index(request: Request) -> HTMLResponse:
        from synthmed.serve.app import parse_filters

        filters = parse_filters(request)
        items = await run_in_threadpool(repo.search, await user_of(request), filters)
        values = {k: request.query_params.get(k, "") for k in FILTER_FIELDS + EVIDENCE_FIELDS}
        return page("index.html", items=items, values=values, fields=FILTER_FIELDS,
                    evidence_fields=EVIDENCE_FIELDS)  # fmt: skip

    @app.get("/items/{name}", response_class=HTMLResponse)
    async def item_page(name: str, request: Request) -> HTMLResponse:
        item = await run_in_threadpool(repo.details, await user_of(request), name)
        metrics = item["metrics"]
        return page(
            "item.html",
            item=item,
            utility=utility_rows(metrics),
            fidelity=flat_rows(metrics, "fidelity"),
            privacy=privacy_rows(metrics),
        )

    @app.get("/items/{name}/report", response_class=HTMLResponse)
    async def report(name: str, request: Request) -> Response:
        html = await run_in_threadpool(repo.open_member, await user_of(request), name, REPORT)
        return Response(
            html, media_type="text/html", headers={"Content-Security-Policy": report_csp}
        )

    @app.get("/items/{name}/grid.png")
    async def grid(name: str, request: Request) -> Response:
        png = await run_in_threadpool(repo.open_member, await user_of(request), name, GRID)
        return Response(png, media_type="image/png")
