"""A reviewer app on a fresh SQLite queue, with users, for the app and export tests."""

from __future__ import annotations

import re
from dataclasses import dataclass

from fastapi import FastAPI
from fastapi.testclient import TestClient

from autocode.review import ReviewStore
from autocode.review.app import AppSettings, create_app
from autocode.review.auth import add_user

PASSWORD = "correct horse battery"
SECRET_TEXT = "Patient Jane Roe, MRN 4455667, seen for type 2 diabetes. Hypertension noted."
CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class ReviewApp:
    store: ReviewStore
    app: FastAPI

    def client(self) -> TestClient:
        return TestClient(self.app, follow_redirects=False)

    def login(self, name: str) -> tuple[TestClient, str]:
        """A client logged in through the login form, and its session's CSRF token."""
        client = self.client()
        form = client.get("/login")
        token = CSRF_INPUT.search(form.text)
        assert token is not None
        response = client.post(
            "/login", data={"name": name, "password": PASSWORD, "csrf_token": token.group(1)}
        )
        assert response.status_code == 303, response.text
        queue = client.get("/queue")
        csrf = CSRF_INPUT.search(queue.text)
        assert csrf is not None
        return client, csrf.group(1)


def make_review_app(store: ReviewStore) -> ReviewApp:
    add_user(store, "rita", "reviewer", PASSWORD, actor="test")
    add_user(store, "rob", "reviewer", PASSWORD, actor="test")
    add_user(store, "ada", "admin", PASSWORD, actor="test")
    return ReviewApp(store, create_app(store, AppSettings(secret="test-secret-" + "x" * 32)))
