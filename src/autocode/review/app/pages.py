"""Server-rendered pages: login, queue, case, code search, account, and the admin pages."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData

from autocode.knowledge import CodeKnowledge
from autocode.review import audit, leases, queries
from autocode.review.app.evidence import segments
from autocode.review.app.security import (
    CSRF_FIELD,
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    AdminLogin,
    CheckedAdmin,
    CheckedLogin,
    CurrentLogin,
    Login,
    set_private_cookie,
    set_session_cookie,
)
from autocode.review.auth import (
    ROLES,
    User,
    add_user,
    authenticate,
    change_own_password,
    end_sessions,
    record_failed_login,
    record_login,
    update_user,
    users,
)
from autocode.review.codesearch import code_index, search_systems
from autocode.review.leases import LeaseError
from autocode.review.queries import QueueFilter
from autocode.review.store import DONE, ReviewStore

router = APIRouter()


def _store(request: Request) -> ReviewStore:
    store: ReviewStore = request.app.state.store
    return store


def _render(
    request: Request, name: str, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(request, name, context, status_code=status_code)


def _field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


@router.get("/healthz", include_in_schema=False)
def healthz() -> dict[str, str]:
    return {"status": "ok"}


# ----------------------------------------------------------------------------- login


@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
def login_page(request: Request) -> Response:
    return _login_form(request, "", 200)


def _login_form(request: Request, error: str, status: int) -> Response:
    token = secrets.token_urlsafe(32)
    response = _render(request, "login.html", {"csrf": token, "error": error}, status)
    set_private_cookie(response, request, LOGIN_CSRF_COOKIE, token, max_age=3600)
    return response


@router.post("/login", include_in_schema=False)
async def login(request: Request) -> Response:
    form = await request.form()
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    sent = _field(form, CSRF_FIELD)
    if not cookie or not secrets.compare_digest(cookie, sent):
        return _login_form(request, "The form expired; please log in again.", 403)
    outcome = try_login(request, _field(form, "name"), _field(form, "password"))
    if isinstance(outcome, LoginRefused):
        return _login_form(request, outcome.message, outcome.status)
    cookie_value, _, _ = outcome
    response = RedirectResponse("/queue", status_code=303)
    set_session_cookie(response, request, cookie_value)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response


@dataclass(frozen=True)
class LoginRefused:
    """Why a login or a password change failed, and its HTTP status (429 while
    rate-limited)."""

    message: str
    status: int


def try_login(request: Request, name: str, password: str) -> tuple[str, str, User] | LoginRefused:
    """The session cookie, its CSRF token and the user, or why the login was refused."""
    address, limiter = _client_address(request), request.app.state.limiter
    if refused := _rate_limited(request, name):
        return refused
    user = authenticate(_store(request), name, password)
    if user is None:
        limiter.failed(name, address)
        record_failed_login(_store(request), name, address)
        return LoginRefused("Wrong name or password.", 401)
    limiter.succeeded(name)
    record_login(_store(request), user, address)
    cookie, csrf = request.app.state.sessions.issue(user)
    return cookie, csrf, user


def _rate_limited(request: Request, name: str) -> LoginRefused | None:
    """The refusal while the account or the address has had too many wrong passwords."""
    wait = request.app.state.limiter.retry_after(name, _client_address(request))
    if wait <= 0:
        return None
    minutes = int(wait // 60) + 1
    return LoginRefused(f"Too many wrong passwords: try again in {minutes} minutes.", 429)


def _client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post("/logout", include_in_schema=False)
def logout(request: Request, login: CheckedLogin) -> Response:
    end_sessions(_store(request), login.user.id)  # the account's other sessions end too
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# ----------------------------------------------------------------------------- queue


@router.get("/", include_in_schema=False)
def home(login: CurrentLogin) -> Response:
    return RedirectResponse("/queue", status_code=303)


# A queue row lists its most probable codes (`store.code_list` ranks them); the
# rest are counted, and all are in the cell's tooltip and on the case page.
QUEUE_CODES_SHOWN = 6


@router.get("/queue", response_class=HTMLResponse, include_in_schema=False)
def queue(
    request: Request,
    login: CurrentLogin,
    status: str = queries.PENDING,
    system: str = "",
    code: str = "",
    reason: str = "",
    after: str = "",
) -> Response:
    filters = QueueFilter(status, system, code, reason)
    store = _store(request)
    try:
        page = queries.queue_page(store, filters, after or None)
        error = ""
    except ValueError as problem:
        page, error = queries.QueuePage([], None), str(problem)
    counts = queries.status_counts(store)
    context = {
        "login": login,
        "filters": filters,
        "page": page,
        "counts": counts,
        "codes_shown": QUEUE_CODES_SHOWN,
        # The app closes a case in one submit: "in_review" (decisions recorded through
        # the store's API, case not closed) is offered only where such cases exist.
        "statuses": [
            queries.PENDING,
            "open",
            *(["in_review"] if counts["in_review"] or filters.status == "in_review" else []),
            DONE,
        ],
        "error": error,
    }
    return _render(request, "queue.html", context, 422 if error else 200)


@router.post("/cases/next", include_in_schema=False)
async def next_case(request: Request, login: CheckedLogin) -> Response:
    form = await request.form()
    filters = QueueFilter(
        queries.PENDING, _field(form, "system"), _field(form, "code"), _field(form, "reason")
    )
    return _go_next(request, login, filters)


def _go_next(request: Request, login: Login, filters: QueueFilter | None = None) -> Response:
    store = _store(request)
    conditions = filters.match_conditions() if filters else []
    lease = leases.claim_next(store, login.user.name, request.app.state.settings.lease, conditions)
    target = "/queue?empty=1" if lease is None else f"/cases/{lease.case_id}"
    return RedirectResponse(target, status_code=303)


@router.post("/cases/{case_id}/claim", include_in_schema=False)
def claim_case(request: Request, case_id: int, login: CheckedLogin) -> Response:
    try:
        leases.claim(_store(request), case_id, login.user.name, request.app.state.settings.lease)
    except LeaseError as error:
        return _case_page(request, case_id, login, str(error), 409)
    return RedirectResponse(f"/cases/{case_id}", status_code=303)


# ----------------------------------------------------------------------------- case


@router.get("/cases/{case_id}", response_class=HTMLResponse, include_in_schema=False)
def case_page(request: Request, case_id: int, login: CurrentLogin) -> Response:
    return _case_page(request, case_id, login, "", 200)


def _case_page(request: Request, case_id: int, login: Login, error: str, status: int) -> Response:
    store = _store(request)
    try:
        case = store.get(case_id)
    except KeyError:
        return _render(request, "error.html", {"status": 404, "message": "no such case"}, 404)
    lease = leases.held_lease(store, case_id, login.user.name)
    final = set(case.reviewed_codes())
    predictions = [
        {
            **prediction,
            "description": _knowledge(request).description(prediction["code"]),
            "checked_accept": (
                prediction["code"] in final if case.status == DONE else prediction.get("accepted")
            ),
        }
        for prediction in case.predictions
    ]
    added = [d.code for d in case.decisions if d.action == "add"]
    context = {
        "login": login,
        "case": case,
        "lease": lease,
        "segments": segments(case.text, case.predictions),
        "predictions": predictions,
        "added": [(code, _knowledge(request).description(code)) for code in dict.fromkeys(added)],
        "error": error,
        "reviewers": [u.name for u in users(store) if u.active] if login.user.is_admin else [],
        "search_systems": search_systems(_knowledge(request)),
        "skip_hours": round(leases.SKIP_MEMORY.total_seconds() / 3600),
    }
    return _render(request, "case.html", context, status)


@router.post("/cases/{case_id}/submit", include_in_schema=False)
async def submit_case(request: Request, case_id: int, login: CheckedLogin) -> Response:
    form = await request.form()
    verdicts = {
        key.removeprefix("verdict:"): value
        for key, value in form.multi_items()
        if key.startswith("verdict:") and isinstance(value, str)
    }
    added = [v.strip() for v in form.getlist("add") if isinstance(v, str) and v.strip()]
    try:
        leases.submit(
            _store(request),
            case_id,
            _field(form, "lease_token"),
            login.user.name,
            verdicts,
            added,
            _field(form, "comment").strip() or None,
        )
    except LeaseError as error:
        return _case_page(request, case_id, login, str(error), 409)
    except ValueError as error:
        return _case_page(request, case_id, login, str(error), 422)
    except KeyError:
        return _render(request, "error.html", {"status": 404, "message": "no such case"}, 404)
    return _go_next(request, login)


@router.post("/cases/{case_id}/skip", include_in_schema=False)
async def skip_case(request: Request, case_id: int, login: CheckedLogin) -> Response:
    form = await request.form()
    try:
        skipped = leases.skip(
            _store(request), case_id, _field(form, "lease_token"), login.user.name
        )
    except KeyError:
        return _render(request, "error.html", {"status": 404, "message": "no such case"}, 404)
    if not skipped:  # this page's lease is gone: say so rather than move on unseen
        reason = f"this page's lease on case {case_id} is no longer yours; nothing was skipped"
        return _case_page(request, case_id, login, reason, 409)
    return _go_next(request, login)


@router.get("/codes/search", response_class=HTMLResponse, include_in_schema=False)
def code_search(request: Request, login: CurrentLogin, q: str = "", system: str = "") -> Response:
    try:
        hits = code_index(_knowledge(request)).search(q, system=system or None) if q.strip() else []
    except ValueError as error:
        return _render(request, "error.html", {"status": 422, "message": str(error)}, 422)
    return _render(request, "search_results.html", {"hits": hits, "query": q})


# ----------------------------------------------------------------------------- account

OWN_PASSWORD_ON_ACCOUNT_PAGE = (
    "change your own password on the Account page, which asks for the current one"
)
CONFIRM_WITH_YOUR_PASSWORD = (
    "to grant admin or set another account's password, enter your own password too"
)


@router.get("/account", response_class=HTMLResponse, include_in_schema=False)
def account_page(request: Request, login: CurrentLogin, changed: str = "") -> Response:
    notice = "Password changed; your other sessions have ended." if changed else ""
    return _render(request, "account.html", {"login": login, "notice": notice})


@router.post("/account/password", include_in_schema=False)
async def change_password(request: Request, login: CheckedLogin) -> Response:
    form = await request.form()
    new = _field(form, "new_password")
    if new != _field(form, "repeat_password"):
        return _account_error(request, login, "the two new passwords differ", 422)
    outcome = try_password_change(request, login, _field(form, "current_password"), new)
    if isinstance(outcome, LoginRefused):
        return _account_error(request, login, outcome.message, outcome.status)
    response = RedirectResponse("/account?changed=1", status_code=303)
    set_session_cookie(response, request, outcome)
    return response


def _account_error(request: Request, login: Login, error: str, status: int) -> Response:
    return _render(request, "account.html", {"login": login, "error": error}, status)


def try_password_change(
    request: Request, login: Login, current: str, new: str
) -> str | LoginRefused:
    """The session cookie that replaces this one after the account's password changed,
    or why it did not. A wrong current password counts as a wrong login (rate-limited),
    so a stolen session cannot guess it at leisure."""
    address, limiter, name = _client_address(request), request.app.state.limiter, login.user.name
    if refused := _rate_limited(request, name):
        return refused
    try:
        updated = change_own_password(_store(request), login.user, current, new)
    except ValueError as error:  # the new password is too short (whatever `current` is)
        return LoginRefused(str(error), 422)
    if updated is None:
        limiter.failed(name, address)
        return LoginRefused("The current password is wrong.", 403)
    limiter.succeeded(name)
    # Every earlier session ended; this one goes on, with the same CSRF token (forms open
    # in other tabs of this browser still post).
    cookie, _ = request.app.state.sessions.issue(updated, login.csrf)
    return cookie


# ----------------------------------------------------------------------------- admin


@router.post("/admin/cases/{case_id}/release", include_in_schema=False)
def release_case(request: Request, case_id: int, login: CheckedAdmin) -> Response:
    try:
        leases.release(_store(request), case_id, login.user.name)
    except KeyError:
        return _render(request, "error.html", {"status": 404, "message": "no such case"}, 404)
    return RedirectResponse(f"/cases/{case_id}", status_code=303)


@router.post("/admin/cases/{case_id}/reassign", include_in_schema=False)
async def reassign_case(request: Request, case_id: int, login: CheckedAdmin) -> Response:
    form = await request.form()
    to = _field(form, "to")
    if to not in {u.name for u in users(_store(request)) if u.active}:
        return _case_page(request, case_id, login, f"no active user named {to!r}", 422)
    try:
        leases.reassign(_store(request), case_id, to, login.user.name)
    except LeaseError as error:
        return _case_page(request, case_id, login, str(error), 409)
    except KeyError:
        return _render(request, "error.html", {"status": 404, "message": "no such case"}, 404)
    return RedirectResponse(f"/cases/{case_id}", status_code=303)


@router.get("/admin/users", response_class=HTMLResponse, include_in_schema=False)
def users_page(request: Request, login: AdminLogin) -> Response:
    return _users_page(request, login, "", 200)


def _users_page(request: Request, login: Login, error: str, status: int) -> Response:
    context = {"login": login, "users": users(_store(request)), "roles": ROLES, "error": error}
    return _render(request, "users.html", context, status)


def _role_of(request: Request, name: str) -> str | None:
    return next((user.role for user in users(_store(request)) if user.name == name), None)


def confirmed_by_password(request: Request, login: Login, password: str) -> LoginRefused | None:
    """None when `password` is the acting admin's own, else why not. Granting admin or
    setting another account's password asks for it: a stolen admin session alone must
    not make itself a lasting account. Wrong passwords count as wrong logins."""
    address, limiter, name = _client_address(request), request.app.state.limiter, login.user.name
    if refused := _rate_limited(request, name):
        return refused
    if not password:  # not asked yet: no guess to count
        return LoginRefused(CONFIRM_WITH_YOUR_PASSWORD, 403)
    if authenticate(_store(request), name, password) is None:
        limiter.failed(name, address)
        return LoginRefused(CONFIRM_WITH_YOUR_PASSWORD, 403)
    limiter.succeeded(name)
    return None


@router.post("/admin/users", include_in_schema=False)
async def create_user(request: Request, login: CheckedAdmin) -> Response:
    form = await request.form()
    if _field(form, "role") == "admin" and (
        refused := confirmed_by_password(request, login, _field(form, "your_password"))
    ):
        return _users_page(request, login, refused.message, refused.status)
    try:
        add_user(
            _store(request),
            _field(form, "name"),
            _field(form, "role"),
            _field(form, "password"),
            actor=login.user.name,
        )
    except ValueError as error:
        return _users_page(request, login, str(error), 422)
    return RedirectResponse("/admin/users", status_code=303)


@router.post("/admin/users/{name}", include_in_schema=False)
async def change_user(request: Request, name: str, login: CheckedAdmin) -> Response:
    form = await request.form()
    role = _field(form, "role") or None
    active = {"yes": True, "no": False}.get(_field(form, "active"))
    password = _field(form, "password") or None
    if name == login.user.name and (active is False or role not in (None, "admin")):
        return _users_page(request, login, "you cannot demote or deactivate yourself", 422)
    if name == login.user.name and password is not None:
        # Whoever holds an admin's session must not take the account over for good.
        return _users_page(request, login, OWN_PASSWORD_ON_ACCOUNT_PAGE, 422)
    grants_admin = role == "admin" and _role_of(request, name) != "admin"
    if (grants_admin or password is not None) and (
        refused := confirmed_by_password(request, login, _field(form, "your_password"))
    ):
        return _users_page(request, login, refused.message, refused.status)
    try:
        update_user(
            _store(request), name, login.user.name, role=role, active=active, password=password
        )
    except (KeyError, ValueError) as error:
        return _users_page(request, login, str(error).strip("'\""), 422)
    if password is not None:  # a new password unlocks an account locked by wrong ones
        request.app.state.limiter.succeeded(name)
    return RedirectResponse("/admin/users", status_code=303)


@router.get("/admin/dashboard", response_class=HTMLResponse, include_in_schema=False)
def dashboard_page(request: Request, login: AdminLogin) -> Response:
    store = _store(request)
    board = queries.dashboard(store)
    peak = max([n for _, n in board.throughput] or [1])
    context = {
        "login": login,
        "board": board,
        "peak": peak,
        "counts": queries.status_counts(store),
        "target": request.app.state.settings.target_precision,
    }
    return _render(request, "dashboard.html", context)


@router.get("/admin/audit", response_class=HTMLResponse, include_in_schema=False)
def audit_page(
    request: Request, login: AdminLogin, case: str = "", who: str = "", action: str = ""
) -> Response:
    store = _store(request)
    # ASCII digits only, and few: "²" is a digit to str.isdigit, and SQLite's integers end.
    number = re.fullmatch(r"[0-9]{1,12}", case.strip())
    case_id = int(number.group()) if number else None
    error = "" if number or not case.strip() else f"no case number {case!r}"
    found = [] if error else audit.entries(store, case_id=case_id, actor=who, action=action)
    context = {
        "login": login,
        "entries": found,
        "filters": {"case": case, "who": who, "action": action},
        # An action typed into the URL stays selected, as it stays applied.
        "actions": sorted({*audit.actions(store), *([action] if action else [])}),
        "error": error,
    }
    return _render(request, "audit.html", context, 422 if error else 200)


def _knowledge(request: Request) -> CodeKnowledge:
    knowledge: CodeKnowledge = request.app.state.settings.knowledge
    return knowledge
