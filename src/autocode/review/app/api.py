"""The JSON API: the reviewer's actions for coding systems, behind the same login.

Log in with POST /api/login (name, password): the answer sets the session cookie and gives
the CSRF token that every POST sends as `X-CSRF-Token`. The OpenAPI schema and a summary
of the routes are at /api/openapi.json and /api/docs, for logged-in users.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from autocode.knowledge import CodeKnowledge
from autocode.review import leases, queries
from autocode.review.app.pages import LoginRefused, try_login, try_password_change
from autocode.review.app.security import (
    SESSION_COOKIE,
    AdminLogin,
    CheckedLogin,
    CurrentLogin,
    set_session_cookie,
)
from autocode.review.auth import end_sessions
from autocode.review.codesearch import code_index
from autocode.review.leases import MAX_COMMENT_CHARS, Lease, LeaseError
from autocode.review.queries import QueueFilter
from autocode.review.store import ReviewStore

router = APIRouter(prefix="/api", tags=["review"])


class Credentials(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=255)
    password: str = Field(max_length=1024)


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    current_password: str = Field(max_length=1024)
    new_password: str = Field(max_length=1024)


class LoginOut(BaseModel):
    user: str
    role: str
    csrf_token: str


class LeaseOut(BaseModel):
    case_id: int
    token: str
    expires_at: datetime


class Submission(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str = Field(max_length=64, description="the lease token from claim")
    verdicts: dict[str, str] = Field(
        default_factory=dict, description="predicted code -> accept or reject"
    )
    added: list[str] = Field(default_factory=list, max_length=200)
    comment: str | None = Field(default=None, max_length=MAX_COMMENT_CHARS)


class SubmitOut(BaseModel):
    codes: list[str]


class LeaseToken(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str = Field(max_length=64, description="the lease token from claim")


class SkipOut(BaseModel):
    skipped: bool = Field(description="false: the lease was no longer yours; nothing changed")


def _store(request: Request) -> ReviewStore:
    store: ReviewStore = request.app.state.store
    return store


def _lease_out(lease: Lease) -> LeaseOut:
    return LeaseOut(case_id=lease.case_id, token=lease.token, expires_at=lease.expires_at)


@router.post("/login", response_model=LoginOut)
def api_login(request: Request, credentials: Credentials) -> Response:
    outcome = try_login(request, credentials.name, credentials.password)
    if isinstance(outcome, LoginRefused):
        return JSONResponse({"detail": outcome.message}, status_code=outcome.status)
    cookie, csrf, user = outcome
    response = JSONResponse(LoginOut(user=user.name, role=user.role, csrf_token=csrf).model_dump())
    set_session_cookie(response, request, cookie)
    return response


@router.post("/logout", status_code=204)
def api_logout(request: Request, login: CheckedLogin) -> Response:
    """End every session of the account (as the app's log out does), this one too."""
    end_sessions(_store(request), login.user.id)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.post("/password", status_code=204)
def api_change_password(request: Request, change: PasswordChange, login: CheckedLogin) -> Response:
    """Change your own password, given the current one: the account's other sessions end,
    this one goes on (a new cookie, the same CSRF token). 403 for a wrong current password
    (rate-limited as wrong logins are), 422 for a too short new one."""
    outcome = try_password_change(request, login, change.current_password, change.new_password)
    if isinstance(outcome, LoginRefused):
        return JSONResponse({"detail": outcome.message}, status_code=outcome.status)
    response = Response(status_code=204)
    set_session_cookie(response, request, outcome)
    return response


@router.get("/queue")
def api_queue(
    request: Request,
    login: CurrentLogin,
    status: str = queries.PENDING,
    system: str = "",
    code: str = "",
    reason: str = "",
    after: str = "",
    limit: int = 50,
) -> dict[str, Any]:
    """Cases in priority order (least confident first), a page at a time."""
    try:
        page = queries.queue_page(
            _store(request),
            QueueFilter(status, system, code, reason),
            after or None,
            min(max(limit, 1), 500),
        )
    except ValueError as error:
        raise HTTPException(422, str(error)) from None
    return {
        "cases": [
            {
                "id": row.id,
                "note_id": row.note_id,
                "confidence": row.confidence,
                "codes": row.codes,
                "reasons": row.reasons,
                "status": row.status,
                "created_at": row.created_at.isoformat(),
                "lease_holder": row.lease_holder,
            }
            for row in page.rows
        ],
        "next_after": page.next_after,
        "counts": queries.status_counts(_store(request)),
    }


@router.get("/cases/{case_id}")
def api_case(request: Request, case_id: int, login: CurrentLogin) -> dict[str, Any]:
    """One case: the note text, routing reasons, predictions with descriptions, decisions."""
    try:
        case = _store(request).get(case_id)
    except KeyError:
        raise HTTPException(404, "no such case") from None
    return {
        "id": case.id,
        "note_id": case.note_id,
        "model_uri": case.model_uri,
        "model_version": case.model_version,
        "text": case.text,
        "reasons": case.reasons,
        "predictions": [
            {**p, "description": _knowledge(request).description(p["code"])}
            for p in case.predictions
        ],
        "status": case.status,
        "confidence": case.confidence,
        "lease_holder": case.lease_holder,
        "decisions": [
            {
                "code": d.code,
                "action": d.action,
                "reviewer": d.reviewer,
                "decided_at": d.decided_at.isoformat(),
            }
            for d in case.decisions
        ],
        "codes": case.reviewed_codes(),
    }


@router.post("/cases/next", response_model=LeaseOut | None)
def api_next(request: Request, login: CheckedLogin) -> LeaseOut | None:
    """Lease the highest-priority case you may claim; null when the queue is empty."""
    lease = leases.claim_next(_store(request), login.user.name, request.app.state.settings.lease)
    return None if lease is None else _lease_out(lease)


@router.post("/cases/{case_id}/claim", response_model=LeaseOut)
def api_claim(request: Request, case_id: int, login: CheckedLogin) -> LeaseOut:
    """Lease one case; 409 when someone else holds it or it is done."""
    try:
        lease = leases.claim(
            _store(request), case_id, login.user.name, request.app.state.settings.lease
        )
    except LeaseError as error:
        raise HTTPException(409, str(error)) from None
    except KeyError:
        raise HTTPException(404, "no such case") from None
    return _lease_out(lease)


@router.post("/cases/{case_id}/submit", response_model=SubmitOut)
def api_submit(
    request: Request, case_id: int, submission: Submission, login: CheckedLogin
) -> SubmitOut:
    """Close the case with your verdicts; 409 on a stale lease or a closed case."""
    try:
        codes = leases.submit(
            _store(request),
            case_id,
            submission.token,
            login.user.name,
            submission.verdicts,
            submission.added,
            submission.comment,
        )
    except LeaseError as error:
        raise HTTPException(409, str(error)) from None
    except KeyError:
        raise HTTPException(404, "no such case") from None
    except ValueError as error:
        raise HTTPException(422, str(error)) from None
    return SubmitOut(codes=codes)


@router.post("/cases/{case_id}/skip", response_model=SkipOut)
def api_skip(request: Request, case_id: int, lease: LeaseToken, login: CheckedLogin) -> SkipOut:
    """Give the case back to the queue for others; your next claims pass over it for
    12 hours (`leases.SKIP_MEMORY`)."""
    try:
        return SkipOut(skipped=leases.skip(_store(request), case_id, lease.token, login.user.name))
    except KeyError:
        raise HTTPException(404, "no such case") from None


@router.get("/codes/search")
def api_code_search(
    request: Request, login: CurrentLogin, q: str = "", system: str = ""
) -> list[dict[str, str | bool | None]]:
    """Codes whose code, description or inclusion term contains every word of q, in the
    spellings the tables use ("anaemia" finds anemia, "BPH" benign prostatic hyperplasia;
    CPT by number); `system` (ICD10CM, ICD10PCS, HCPCS, CPT) keeps that system's codes
    only. `matched` is the other name (inclusion term, includes note) the code was found
    best by; `billable` is false for an ICD-10-CM category."""
    try:
        hits = code_index(_knowledge(request)).search(q, system=system or None)
    except ValueError as error:
        raise HTTPException(422, str(error)) from None
    return [
        {
            "code": hit.code,
            "description": hit.description,
            "matched": hit.matched,
            "billable": hit.billable,
        }
        for hit in hits
    ]


@router.get("/admin/dashboard")
def api_dashboard(request: Request, login: AdminLogin) -> dict[str, Any]:
    """Throughput, agreement between model and reviewers, most corrected codes."""
    board = queries.dashboard_json(queries.dashboard(_store(request)))
    return {**board, "target_precision": request.app.state.settings.target_precision}


@router.get("/openapi.json", include_in_schema=False)
def api_schema(request: Request, login: CurrentLogin) -> dict[str, Any]:
    schema: dict[str, Any] = request.app.openapi()
    return schema


@router.get("/docs", response_class=HTMLResponse, include_in_schema=False)
def api_docs(request: Request, login: CurrentLogin) -> Response:
    schema = request.app.openapi()
    routes = [
        {
            "method": method.upper(),
            "path": path,
            "summary": op.get("description") or op.get("summary", ""),
        }
        for path, methods in schema["paths"].items()
        for method, op in methods.items()
    ]
    return request.app.state.templates.TemplateResponse(
        request, "api_docs.html", {"login": login, "routes": routes}
    )


def _knowledge(request: Request) -> CodeKnowledge:
    knowledge: CodeKnowledge = request.app.state.settings.knowledge
    return knowledge
