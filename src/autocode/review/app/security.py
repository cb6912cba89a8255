"""Sessions, CSRF, security headers and request-size limits of the reviewer app.

Sessions are signed (itsdangerous), HTTP-only, SameSite=Strict cookies holding the user id,
the session's CSRF token and the account's credential stamp (`User.credential_stamp`, a
digest of the password hash and the account's session epoch: logging out, a new password
or a deactivation ends every earlier session) and nothing else;
`Secure` whenever the request came over TLS.
Every state-changing request carries the CSRF token, in a form field or the `X-CSRF-Token`
header. The login form, which has no session yet, uses a double-submit cookie.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from autocode.review.auth import User, user_by_id

SESSION_COOKIE = "autocode_session"
LOGIN_CSRF_COOKIE = "autocode_login_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
# No inline script or style anywhere: htmx and the app's JS are static files.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; "
    "object-src 'none'"
)


class NotAuthenticatedError(Exception):
    """No valid session: pages redirect to the login page, the API answers 401."""


class ForbiddenError(Exception):
    """A session without the role the route needs, or a missing or wrong CSRF token."""


@dataclass(frozen=True)
class Login:
    user: User
    csrf: str


class Sessions:
    def __init__(self, secret: str, max_age_s: int) -> None:
        self._signer = URLSafeTimedSerializer(secret, salt="autocode-review-session")
        self.max_age_s = max_age_s

    def issue(self, user: User, csrf: str | None = None) -> tuple[str, str]:
        """A new session's cookie value and CSRF token (`csrf`: keep this one)."""
        csrf = csrf or secrets.token_urlsafe(32)
        session = {"uid": user.id, "csrf": csrf, "stamp": user.credential_stamp}
        return self._signer.dumps(session), csrf

    def read(self, value: str) -> dict[str, Any] | None:
        try:
            data = self._signer.loads(value, max_age=self.max_age_s)
        except BadSignature:
            return None
        return data if isinstance(data, dict) else None


def set_private_cookie(
    response: Response, request: Request, name: str, value: str, max_age: int
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )


def set_session_cookie(response: Response, request: Request, value: str) -> None:
    """The session cookie (`Sessions.issue`'s value), for as long as sessions last."""
    max_age = request.app.state.sessions.max_age_s
    set_private_cookie(response, request, SESSION_COOKIE, value, max_age)


def current_login(request: Request) -> Login:
    """The request's session; NotAuthenticatedError without a valid one or an active account."""
    raw = request.cookies.get(SESSION_COOKIE)
    data = request.app.state.sessions.read(raw) if raw else None
    if data is None:
        raise NotAuthenticatedError
    user = user_by_id(request.app.state.store, int(data["uid"]))
    if user is None or not user.active:
        raise NotAuthenticatedError
    if not hmac.compare_digest(str(data.get("stamp", "")), user.credential_stamp):
        raise NotAuthenticatedError  # issued before a new password or a deactivation
    return Login(user, str(data["csrf"]))


CurrentLogin = Annotated[Login, Depends(current_login)]


def admin_login(login: CurrentLogin) -> Login:
    if not login.user.is_admin:
        raise ForbiddenError("this page is for administrators")
    return login


async def checked_login(request: Request, login: CurrentLogin) -> Login:
    """The session of a state-changing request whose CSRF token matches it."""
    token = request.headers.get(CSRF_HEADER)
    if token is None and _is_form(request):
        field = (await request.form()).get(CSRF_FIELD)
        token = field if isinstance(field, str) else None
    if token is None or not hmac.compare_digest(token, login.csrf):
        raise ForbiddenError("missing or wrong CSRF token: reload the page and try again")
    return login


CheckedLogin = Annotated[Login, Depends(checked_login)]


async def checked_admin(login: CheckedLogin) -> Login:
    if not login.user.is_admin:
        raise ForbiddenError("this action is for administrators")
    return login


AdminLogin = Annotated[Login, Depends(admin_login)]
CheckedAdmin = Annotated[Login, Depends(checked_admin)]


def _is_form(request: Request) -> bool:
    kind = request.headers.get("content-type", "")
    return kind.startswith(("application/x-www-form-urlencoded", "multipart/form-data"))


class Hardening:
    """ASGI middleware: security headers on every response, and a cap on request bodies.

    Bodies larger than `max_body_bytes` get 413, whether announced by Content-Length or
    streamed in chunks. Every response but static files is `no-store`: pages hold note text.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")
        headers = dict(scope.get("headers", []))
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
            await _too_large(send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise _BodyTooLargeError
            return message

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                extra = [
                    (b"content-security-policy", CSP.encode()),
                    (b"x-frame-options", b"DENY"),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                ]
                if not static:
                    extra.append((b"cache-control", b"no-store"))
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_headers)
        except _BodyTooLargeError:
            if not started:
                await _too_large(send)


class _BodyTooLargeError(Exception):
    pass


async def _too_large(send: Send) -> None:
    body = b"request body too large"
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"22")],
        }
    )
    await send({"type": "http.response.body", "body": body})
