"""The reviewer web app: FastAPI + Jinja2 pages with htmx, and a JSON API for coding systems.

`create_app(store, settings)` builds it; `autocode review serve` runs it under uvicorn.
Every route but the login page, the login API, static files and `/healthz` needs a session.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from importlib import resources

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute

from autocode.knowledge import CodeKnowledge
from autocode.review import audit
from autocode.review.app import api, pages, reasons
from autocode.review.app.security import ForbiddenError, Hardening, NotAuthenticatedError, Sessions
from autocode.review.auth import LoginLimiter
from autocode.review.leases import DEFAULT_LEASE
from autocode.review.store import ReviewStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AppSettings:
    secret: str  # signs session cookies; sessions end when it changes
    lease: timedelta = DEFAULT_LEASE
    target_precision: float | None = None  # what the routing policy was tuned for
    session_max_age_s: int = 12 * 3600
    max_body_bytes: int = 256 * 1024
    # What codes mean, for descriptions and code search: the one object a run also uses.
    knowledge: CodeKnowledge = field(default_factory=CodeKnowledge)


def create_app(store: ReviewStore, settings: AppSettings) -> FastAPI:
    app = FastAPI(
        title="autocode review",
        summary="Certified coders' review of the codes autocode was unsure of.",
        # The docs and schema are served behind login by api.py instead.
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.store = store
    app.state.settings = settings
    app.state.sessions = Sessions(settings.secret, settings.session_max_age_s)
    app.state.limiter = LoginLimiter(store, settings.secret)
    package = resources.files("autocode.review.app")
    app.state.templates = Jinja2Templates(directory=str(package / "templates"))
    app.state.templates.env.filters.update(
        reason_groups=reasons.grouped, reason_summary=reasons.summary, described=audit.described
    )
    app.mount("/static", StaticFiles(directory=str(package / "static")), name="static")
    app.include_router(pages.router)
    app.include_router(api.router)
    app.add_middleware(Hardening, max_body_bytes=settings.max_body_bytes)
    _add_error_handlers(app)
    return app


def iter_routes(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    """Every route, those of included routers too (FastAPI nests them since 0.1xx).

    The routers are included without a prefix, so each route's own path is its full path.
    """
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from iter_routes(included.routes)
        else:
            yield route


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(NotAuthenticatedError)
    async def not_authenticated(request: Request, _: NotAuthenticatedError) -> Response:
        if _wants_json(request):
            return JSONResponse({"detail": "login required"}, status_code=401)
        return RedirectResponse("/login", status_code=303)

    @app.exception_handler(ForbiddenError)
    async def forbidden(request: Request, error: ForbiddenError) -> Response:
        return _error(request, 403, str(error) or "forbidden")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        return _error(request, error.status_code, str(error.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> Response:
        # FastAPI's own answer quotes each bad value back ("input"): a password typed
        # into the wrong field, or a note's text. Where and why only.
        problems = [
            {"loc": list(problem.get("loc", ())), "msg": problem.get("msg", "")}
            for problem in error.errors()
        ]
        return JSONResponse({"detail": problems}, status_code=422)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> Response:
        # The type and route only: an exception's message could quote data.
        logger.error("unhandled %s on %s %s", type(error).__name__, request.method, _route(request))
        return _error(request, 500, "internal error")


def _route(request: Request) -> str:
    route = request.scope.get("route")
    return getattr(route, "path", "?")


def _error(request: Request, status: int, message: str) -> Response:
    if _wants_json(request):
        return JSONResponse({"detail": message}, status_code=status)
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(
        request, "error.html", {"status": status, "message": message}, status_code=status
    )
