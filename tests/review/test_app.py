"""The reviewer app through its HTTP interface: auth, CSRF, roles, the review flow, privacy."""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.routing import Mount

from autocode.corpus.load import LoadOptions, load_notes
from autocode.review import ReviewStore, audit, leases
from autocode.review.app import AppSettings, create_app, iter_routes
from autocode.review.export import export_reviewed
from review.app_client import PASSWORD, SECRET_TEXT, ReviewApp, make_review_app
from review.test_store import ANEMIA, ASTHMA, DIABETES, GOUT, HYPERTENSION, new_case

PUBLIC = {"/login", "/healthz", "/api/login", "/static"}
NEW_PASSWORD = "a longer new passphrase"


@pytest.fixture
def review(tmp_path: Path) -> Iterator[ReviewApp]:
    with ReviewStore(f"sqlite:///{tmp_path / 'queue.db'}") as store:
        store.enqueue([new_case(0, text=SECRET_TEXT), new_case(1, text=SECRET_TEXT)])
        yield make_review_app(store)


def routes(review: ReviewApp) -> list[tuple[str, str]]:
    """(method, path) of every route, path parameters filled in."""
    found = []
    for route in iter_routes(review.app.routes):
        if isinstance(route, APIRoute):
            path = re.sub(r"\{case_id\}", "1", route.path)
            path = re.sub(r"\{name\}", "rob", path)
            found += [(method, path) for method in sorted(route.methods - {"HEAD"})]
        else:
            assert isinstance(route, Mount), f"unexpected route {route!r}"
    return found


def test_every_route_but_login_and_health_refuses_without_a_session(review: ReviewApp):
    public = {r.path for r in iter_routes(review.app.routes) if isinstance(r, Mount)}
    client = review.client()
    checked = 0
    for method, path in routes(review):
        if path in PUBLIC:
            public.add(path)
            continue
        response = client.request(method, path)
        checked += 1
        if path.startswith("/api/"):
            assert response.status_code == 401, (method, path)
        else:
            assert (response.status_code, response.headers.get("location")) == (
                303,
                "/login",
            ), (method, path)
        assert SECRET_TEXT not in response.text
    assert public == PUBLIC and checked >= 20


def test_forged_or_expired_session_cookie_is_refused(review: ReviewApp):
    client = review.client()
    client.cookies.set("autocode_session", "eyJ1aWQiOjN9.forged.signature")
    assert client.get("/api/cases/1").status_code == 401


def test_state_changing_requests_need_the_session_csrf_token(review: ReviewApp):
    client, csrf = review.login("rita")
    assert client.post("/cases/next").status_code == 403
    assert client.post("/cases/next", data={"csrf_token": "wrong"}).status_code == 403
    assert client.post("/api/cases/next").status_code == 403
    assert client.post("/api/cases/next", headers={"X-CSRF-Token": "wrong"}).status_code == 403
    assert client.post("/cases/next", data={"csrf_token": csrf}).status_code == 303
    response = client.post("/api/cases/next", headers={"X-CSRF-Token": csrf})
    # Her own case again: a reviewer's live lease stays claimable by her.
    assert response.status_code == 200 and response.json()["case_id"] == 1
    # The login form has a token of its own (a double-submit cookie).
    assert (
        review.client().post("/login", data={"name": "rita", "password": PASSWORD}).status_code
        == 403
    )


def test_a_reviewer_cannot_reach_admin_routes(review: ReviewApp):
    client, csrf = review.login("rita")
    admin_routes = [(m, p) for m, p in routes(review) if p.startswith(("/admin", "/api/admin"))]
    assert len(admin_routes) >= 7
    for method, path in admin_routes:
        response = client.request(method, path, data={"csrf_token": csrf, "role": "admin"})
        assert response.status_code == 403, (method, path)
    admin, _ = review.login("ada")
    assert admin.get("/admin/dashboard").status_code == 200
    assert admin.get("/api/admin/dashboard").status_code == 200
    assert admin.get("/admin/users").status_code == 200


def test_wrong_passwords_are_rate_limited_per_account(review: ReviewApp):
    client = review.client()
    for _ in range(5):
        response = client.post("/api/login", json={"name": "rob", "password": "wrong password"})
        assert response.status_code == 401
    right = client.post("/api/login", json={"name": "rob", "password": PASSWORD})
    assert right.status_code == 429 and "Too many" in right.json()["detail"]
    # Another account from the same address is not locked by rob's failures (yet).
    assert client.post("/api/login", json={"name": "rita", "password": PASSWORD}).status_code == 200


def test_failed_logins_are_audited_naming_only_accounts_that_exist(review: ReviewApp):
    client = review.client()
    client.post("/api/login", json={"name": "rob", "password": "wrong password"})
    typed_into_the_name = "my secret passphrase"
    client.post("/api/login", json={"name": typed_into_the_name, "password": "x"})
    failed = [e for e in audit.entries(review.store) if e.action == "login failed"]
    assert [(e.actor, e.target_user, e.after) for e in failed] == [
        ("(not logged in)", None, {"address": "testclient", "account": "unknown"}),
        ("(not logged in)", "rob", {"address": "testclient", "account": "known"}),
    ]  # newest first
    admin, _ = review.login("ada")
    page = admin.get("/admin/audit").text
    assert "login failed" in page and typed_into_the_name not in page


def test_wrong_passwords_are_rate_limited_per_address(review: ReviewApp):
    client = review.client()
    for k in range(20):
        client.post("/api/login", json={"name": f"nobody-{k}", "password": "wrong password"})
    assert client.post("/api/login", json={"name": "rita", "password": PASSWORD}).status_code == 429


def test_wrong_passwords_count_across_server_processes_and_restarts(review: ReviewApp):
    # Another server on the same queue (its own store, engine and app, as another process
    # would have) refuses the account the first one saw five wrong passwords for.
    first = review.client()
    for _ in range(5):
        assert first.post("/api/login", json={"name": "rob", "password": "nope"}).status_code == 401
    url = review.store.engine.url.render_as_string(hide_password=False)
    # Processes on one queue share the sessions' secret, which keys the failures too.
    settings = AppSettings(secret="test-secret-" + "x" * 32)
    with ReviewStore(url) as other_store:
        other = TestClient(create_app(other_store, settings), follow_redirects=False)
        refused = other.post("/api/login", json={"name": "rob", "password": PASSWORD})
        assert refused.status_code == 429 and "Too many" in refused.json()["detail"]
        rita = other.post("/api/login", json={"name": "rita", "password": PASSWORD})
        assert rita.status_code == 200
    # A restarted server still refuses it: the failures are in the queue, not in memory.
    with ReviewStore(url) as restarted_store:
        restarted = TestClient(create_app(restarted_store, settings), follow_redirects=False)
        again = restarted.post("/api/login", json={"name": "rob", "password": PASSWORD})
        assert again.status_code == 429


def test_an_admin_setting_a_new_password_unlocks_the_account(review: ReviewApp):
    client = review.client()
    for _ in range(5):
        client.post("/api/login", json={"name": "rob", "password": "wrong password"})
    assert client.post("/api/login", json={"name": "rob", "password": PASSWORD}).status_code == 429
    admin, csrf = review.login("ada")
    reset = {"csrf_token": csrf, "password": "a new password 9", "your_password": PASSWORD}
    assert admin.post("/admin/users/rob", data=reset).status_code == 303
    unlocked = client.post("/api/login", json={"name": "rob", "password": "a new password 9"})
    assert unlocked.status_code == 200


def test_review_flow_through_the_pages(review: ReviewApp, tmp_path: Path):
    client, csrf = review.login("rita")
    queue = client.get("/queue")
    assert "pending <b>2</b>" in queue.text and SECRET_TEXT not in queue.text
    # Reasons are counted per kind in the queue, listed per kind on the case page.
    assert queue.text.count(">uncertain 2</td>") == 2
    # The app closes a case in one submit: no "in review" count or status until a case
    # has decisions recorded through the store's API.
    assert "in review" not in queue.text and '"in_review"' not in queue.text
    review.store.record_decision(2, DIABETES, "accept", "rita")
    queue = client.get("/queue")
    assert "in review <b>1</b>" in queue.text and '<option value="in_review"' in queue.text
    claimed = client.post("/cases/next", data={"csrf_token": csrf})
    assert claimed.headers["location"] == "/cases/1"
    page = client.get("/cases/1")
    assert page.status_code == 200 and "MRN 4455667, seen for type 2 diabetes" in page.text
    assert f'<mark class="ev" data-codes="{DIABETES}">Patient Jane Ro</mark>' in page.text
    assert "Type 2 diabetes mellitus without complications" in page.text  # the description
    assert f"<li><strong>uncertain (2)</strong>: {ANEMIA}, {GOUT}</li>" in page.text
    lease_token = re.search(r'name="lease_token" value="([^"]+)"', page.text)
    assert lease_token is not None
    submitted = client.post(
        "/cases/1/submit",
        data={
            "csrf_token": csrf,
            "lease_token": lease_token.group(1),
            f"verdict:{DIABETES}": "accept",
            f"verdict:{HYPERTENSION}": "reject",
            f"verdict:{ANEMIA}": "accept",
            "add": ["icd10cm:j45909"],  # any spelling the code normaliser accepts
            "comment": "wheeze on exam",
        },
    )
    assert submitted.status_code == 303 and submitted.headers["location"] == "/cases/2"
    assert review.store.get(1).reviewed_codes() == [ANEMIA, DIABETES, ASTHMA]
    # The same form again: the case is closed, nothing is overwritten.
    again = client.post(
        "/cases/1/submit", data={"csrf_token": csrf, "lease_token": lease_token.group(1)}
    )
    assert again.status_code == 409 and "already closed" in again.text
    out = tmp_path / "reviewed.parquet"
    assert export_reviewed(review.store, out).notes == 1
    notes = load_notes(out, LoadOptions(format="table")).table.to_pylist()
    assert [(n["note_id"], n["codes"]) for n in notes] == [("note-0", [ANEMIA, DIABETES, ASTHMA])]
    assert (out.stat().st_mode & 0o777) == 0o600
    assert pq.read_schema(out).names == ["note_id", "text", "codes"]


def test_a_second_reviewer_sees_the_case_leased_and_cannot_submit(review: ReviewApp):
    rita, rita_csrf = review.login("rita")
    rob, rob_csrf = review.login("rob")
    assert rita.post("/cases/1/claim", data={"csrf_token": rita_csrf}).status_code == 303
    refused = rob.post("/cases/1/claim", data={"csrf_token": rob_csrf})
    assert refused.status_code == 409 and "being reviewed by rita" in refused.text
    assert 'name="lease_token"' not in rob.get("/cases/1").text
    response = rob.post(
        "/api/cases/1/submit", json={"token": "guess"}, headers={"X-CSRF-Token": rob_csrf}
    )
    assert response.status_code == 409 and "leased to rita" in response.json()["detail"]


def test_a_reviewer_skips_a_case_to_the_next_and_it_goes_to_others(review: ReviewApp):
    rita, csrf = review.login("rita")
    assert rita.post("/cases/next", data={"csrf_token": csrf}).headers["location"] == "/cases/1"
    page = rita.get("/cases/1").text
    assert 'id="skip"' in page
    token = re.search(r'name="lease_token" value="([^"]+)"', page)
    assert token is not None
    skipped = rita.post("/cases/1/skip", data={"csrf_token": csrf, "lease_token": token.group(1)})
    assert (skipped.status_code, skipped.headers["location"]) == (303, "/cases/2")
    assert review.store.get(1).lease_holder is None
    # A page whose lease is gone (she claimed case 2 again in another tab: a new token)
    # says so, and she stays on the case, still holding it.
    stale = rita.get("/cases/2").text
    old_token = re.search(r'name="lease_token" value="([^"]+)"', stale)
    assert old_token is not None
    rita.post("/cases/2/claim", data={"csrf_token": csrf})
    refused = rita.post(
        "/cases/2/skip", data={"csrf_token": csrf, "lease_token": old_token.group(1)}
    )
    assert refused.status_code == 409
    assert "this page&#39;s lease on case 2 is no longer yours; nothing was skipped" in refused.text
    assert review.store.get(2).lease_holder == "rita"
    # Rita's next passes case 1 by (she holds case 2); Rob's next is case 1.
    assert rita.post("/cases/next", data={"csrf_token": csrf}).headers["location"] == "/cases/2"
    rob = review.client()
    session = rob.post("/api/login", json={"name": "rob", "password": PASSWORD}).json()
    headers = {"X-CSRF-Token": session["csrf_token"]}
    claimed = rob.post("/api/cases/next", headers=headers).json()
    assert claimed["case_id"] == 1
    # Through the API: the lease given back, then a stale token changes nothing.
    body = {"token": claimed["token"]}
    assert rob.post("/api/cases/1/skip", json=body, headers=headers).json() == {"skipped": True}
    assert rob.post("/api/cases/1/skip", json=body, headers=headers).json() == {"skipped": False}
    assert rob.post("/api/cases/1/skip", json=body).status_code == 403  # CSRF header needed


def test_api_flow_and_openapi_behind_login(review: ReviewApp):
    client = review.client()
    login = client.post("/api/login", json={"name": "rob", "password": PASSWORD}).json()
    headers = {"X-CSRF-Token": login["csrf_token"]}
    queue = client.get("/api/queue").json()
    assert [case["id"] for case in queue["cases"]] == [1, 2] and queue["counts"]["open"] == 2
    lease = client.post("/api/cases/next", headers=headers).json()
    case = client.get(f"/api/cases/{lease['case_id']}").json()
    assert case["text"] == SECRET_TEXT and case["lease_holder"] == "rob"
    bare = {"token": lease["token"], "added": ["C62.90"]}
    refused = client.post(f"/api/cases/{lease['case_id']}/submit", json=bare, headers=headers)
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"] == (
        "invalid code 'C62.90': write it with its system, as in ICD10CM:C62.90"
    )
    body = {"token": lease["token"], "verdicts": {HYPERTENSION: "reject"}, "added": ["CPT:99213"]}
    result = client.post(f"/api/cases/{lease['case_id']}/submit", json=body, headers=headers)
    assert result.json() == {"codes": ["CPT:99213", DIABETES]}
    hits = client.get("/api/codes/search", params={"q": "iron deficiency anemia"}).json()
    assert {
        "code": "ICD10CM:D50.9",
        "description": "Iron deficiency anemia, unspecified",
        "matched": None,
        "billable": True,
    } in hits
    by_term = client.get("/api/codes/search", params={"q": "high blood pressure"}).json()
    assert {
        "code": "ICD10CM:I10",
        "description": "Essential (primary) hypertension",
        "matched": "high blood pressure",  # an includes note of I10
        "billable": True,
    } in by_term
    category = client.get("/api/codes/search", params={"q": "r50"}).json()[0]
    assert (category["code"], category["billable"]) == ("ICD10CM:R50", False)
    # As coders type it, in one system: BPH is N40, and the procedures hold none.
    bph = client.get("/api/codes/search", params={"q": "bph", "system": "ICD10CM"}).json()
    assert bph[0]["code"] == "ICD10CM:N40"
    assert client.get("/api/codes/search", params={"q": "bph", "system": "ICD10PCS"}).json() == []
    unknown = client.get("/api/codes/search", params={"q": "bph", "system": "ICD9"})
    assert unknown.status_code == 422
    assert "no code search for system 'ICD9'" in unknown.json()["detail"]
    schema = client.get("/api/openapi.json").json()
    assert "/api/cases/{case_id}/submit" in schema["paths"]
    assert "/api/cases/{case_id}/submit" in client.get("/api/docs").text
    # Log out: without the CSRF header refused; with it, the session ends (204, no body).
    assert client.post("/api/logout").status_code == 403
    assert client.get("/api/queue").status_code == 200
    out = client.post("/api/logout", headers=headers)
    assert (out.status_code, out.content) == (204, b"")
    assert client.get("/api/queue").status_code == 401


def test_a_queue_row_lists_its_most_probable_codes_and_counts_the_rest(review: ReviewApp):
    many = [
        {"code": f"ICD10CM:R{50 + k}.9", "probability": 0.9 - k / 100, "accepted": False}
        for k in range(9)
    ]
    # Enqueued in any order, listed most probable first.
    shuffled = [many[k] for k in (4, 8, 0, 6, 2, 7, 1, 5, 3)]
    review.store.enqueue([dataclasses.replace(new_case(7), predictions=shuffled)])
    client, _ = review.login("rita")
    queue = client.get("/queue", params={"code": "ICD10CM:R58.9"}).text
    shown = " ".join(p["code"] for p in many[:6])
    everything = " ".join(p["code"] for p in many)
    assert f'<td class="codes" title="{everything}">{shown} <span class="more">+3 more</span>' in (
        queue
    )
    # Four codes: all shown, nothing counted.
    assert "more</span>" not in client.get("/queue", params={"code": DIABETES}).text


def test_a_malformed_api_body_is_refused_without_quoting_its_values(review: ReviewApp):
    typed = "a password typed into the wrong field"
    answer = review.client().post("/api/login", json={"user": "rob", "pass": typed})
    assert answer.status_code == 422
    assert typed not in answer.text and "rob" not in answer.text
    assert {"loc": ["body", "name"], "msg": "Field required"} in answer.json()["detail"]


def test_pages_carry_security_headers_and_no_inline_script(review: ReviewApp):
    client, _ = review.login("rita")
    leases.claim(review.store, 1, "rita")
    page = client.get("/cases/1")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp and page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    assert re.findall(r"<script(?![^>]*\bsrc=)", page.text) == []
    assert " style=" not in page.text and "<style" not in page.text
    assert "htmx.min.js" in page.text and client.get("/static/htmx.min.js").status_code == 200
    cookie = client.cookies.jar
    assert all(c.has_nonstandard_attr("HttpOnly") for c in cookie if c.name == "autocode_session")


def test_session_cookie_is_secure_over_tls(review: ReviewApp):
    client = review.client()
    client.base_url = "https://testserver"  # type: ignore[assignment]
    response = client.post("/api/login", json={"name": "rob", "password": PASSWORD})
    cookie = response.headers["set-cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    plain = review.client().post("/api/login", json={"name": "rob", "password": PASSWORD})
    assert "Secure" not in plain.headers["set-cookie"]


def test_large_request_bodies_are_refused(review: ReviewApp):
    client, csrf = review.login("rita")
    response = client.post("/cases/1/submit", data={"csrf_token": csrf, "comment": "x" * 300_000})
    assert response.status_code == 413


def test_no_note_text_in_logs_after_a_full_session(
    review: ReviewApp, caplog: pytest.LogCaptureFixture, tmp_path: Path
):
    caplog.set_level(logging.DEBUG)
    admin, admin_csrf = review.login("ada")
    client, csrf = review.login("rita")
    client.get("/queue")
    client.post("/cases/next", data={"csrf_token": csrf})
    page = client.get("/cases/1").text
    token = re.search(r'name="lease_token" value="([^"]+)"', page)
    assert token is not None
    client.get("/codes/search", params={"q": "asthma"})
    client.post(
        "/cases/1/submit",
        data={"csrf_token": csrf, "lease_token": token.group(1), "add": "ICD10CM:J45.909"},
    )
    client.post("/cases/1/submit", data={"csrf_token": csrf, "lease_token": token.group(1)})
    client.post("/cases/2/submit", data={"csrf_token": csrf, "lease_token": "stale"})
    client.get("/cases/999")
    admin.get("/admin/dashboard")
    admin.get("/admin/audit")
    admin.post("/admin/cases/2/release", data={"csrf_token": admin_csrf})
    export_reviewed(review.store, tmp_path / "out.parquet")
    assert caplog.records  # the session did log (sqlalchemy, httpx, the app)
    for word in ("Jane Roe", "4455667", SECRET_TEXT[:20]):
        assert word not in caplog.text
    for entry in review.store.engine.connect().exec_driver_sql(
        "SELECT before, after FROM review_audit"
    ):
        assert "Jane" not in str(entry)


def test_admin_manages_users_and_every_change_is_audited(review: ReviewApp):
    admin, csrf = review.login("ada")
    created = admin.post(
        "/admin/users",
        data={"csrf_token": csrf, "name": "newbie", "role": "reviewer", "password": "short"},
    )
    assert created.status_code == 422 and "at least 12" in created.text
    admin.post(
        "/admin/users",
        data={"csrf_token": csrf, "name": "newbie", "role": "reviewer", "password": PASSWORD},
    )
    promote = {"csrf_token": csrf, "role": "admin", "active": "no"}
    admin.post("/admin/users/newbie", data=promote | {"your_password": PASSWORD})
    audit_page = admin.get("/admin/audit").text
    assert "add_user" in audit_page and "update_user" in audit_page and PASSWORD not in audit_page
    client = review.client()
    assert (
        client.post("/api/login", json={"name": "newbie", "password": PASSWORD}).status_code == 401
    )


def test_the_audit_log_reads_in_words_and_filters_by_case_who_and_action(review: ReviewApp):
    leases.claim(review.store, 1, "rita")
    rita = leases.claim(review.store, 2, "rita")
    leases.submit(review.store, 2, rita.token, "rita", {HYPERTENSION: "reject"}, [], "a note")
    admin, admin_csrf = review.login("ada")
    page = admin.get("/admin/audit", params={"case": "2", "action": "submit"}).text
    # Before and after in words, not JSON; the comment only as whether there was one.
    assert (
        f'<td class="state">status: open · codes: {DIABETES}, {HYPERTENSION}</td>'
        f'<td class="state">status: done · codes: {DIABETES} · comment: yes</td>'
    ) in page
    assert page.count('<td class="state">') == 2  # one entry, case 2's submit: before, after
    # Who: the actor, or the account acted on; ada's login is hers, rita's claims hers.
    rows_of = {who: admin.get("/admin/audit", params={"who": who}).text for who in ("rita", "ada")}
    assert rows_of["rita"].count("<td>claim</td>") == 2
    assert "<td>login</td>" not in rows_of["rita"]
    assert "<td>login</td>" in rows_of["ada"] and "<td>claim</td>" not in rows_of["ada"]
    # The action list is what the log holds, the chosen one selected.
    options = re.findall(r"<option( selected)?>([a-z_ ]+)</option>", page)
    assert ("", "claim") in options and (" selected", "submit") in options
    # Who: an admin's release names whose lease it ended.
    admin.post("/admin/cases/1/release", data={"csrf_token": admin_csrf})
    released = admin.get("/admin/audit", params={"who": "rita", "action": "release"}).text
    assert released.count('<td class="state">') == 2
    # A case that is no number (a Unicode digit, more digits than a case id has) is said
    # so, once; a number without entries matches none.
    for wrong in ("two", "²", "99999999999999999999"):
        refused = admin.get("/admin/audit", params={"case": wrong})
        assert refused.status_code == 422 and refused.text.count("no case number") == 1
    assert "No entries match." in admin.get("/admin/audit", params={"case": "99"}).text


def test_granting_admin_or_setting_a_password_asks_for_the_admins_own(review: ReviewApp):
    admin, csrf = review.login("ada")
    rita, _ = review.login("rita")
    new_admin = {"csrf_token": csrf, "name": "mal", "role": "admin", "password": PASSWORD}
    promote = {"csrf_token": csrf, "role": "admin"}
    takeover = {"csrf_token": csrf, "password": "a new password 9"}
    # A stolen admin session alone (no password, or a guessed one) grants nothing.
    for form in (new_admin, promote, takeover):
        for guess in ({}, {"your_password": "not ada's password"}):
            path = "/admin/users" if "name" in form else "/admin/users/rita"
            refused = admin.post(path, data=form | guess)
            assert refused.status_code == 403 and "enter your own password" in refused.text
    assert "mal" not in admin.get("/admin/users").text
    assert rita.get("/admin/users").status_code == 403  # still a reviewer
    assert rita.get("/queue").status_code == 200  # her password unchanged: still logged in
    # Adding a reviewer needs no password; granting admin needs it, and then works.
    reviewer = new_admin | {"name": "rob2", "role": "reviewer"}
    assert admin.post("/admin/users", data=reviewer).status_code == 303
    confirmed = {"your_password": PASSWORD}
    assert admin.post("/admin/users", data=new_admin | confirmed).status_code == 303
    assert admin.post("/admin/users/rita", data=promote | confirmed).status_code == 303
    assert rita.get("/admin/users").status_code == 200
    # Wrong guesses count as wrong logins: after five, even the right password waits.
    for _ in range(5):
        admin.post("/admin/users/rob2", data=takeover | {"your_password": "guess"})
    limited = admin.post("/admin/users/rob2", data=takeover | {"your_password": PASSWORD})
    assert limited.status_code == 429


def test_a_code_a_term_rule_accepted_shows_the_rule_and_its_words(review: ReviewApp):
    start = SECRET_TEXT.index("Hypertension")
    case = new_case(2, text=SECRET_TEXT)
    predictions = [
        {**p, "rule_span": {"start": start, "end": start + 12}} if p["code"] == HYPERTENSION else p
        for p in case.predictions
    ]
    review.store.enqueue([dataclasses.replace(case, predictions=predictions)])
    client, _ = review.login("rita")
    page = client.get("/cases/3")
    assert page.status_code == 200
    assert (
        '<span class="by-rule" title="accepted on a mined term (a rule, or one backed by the '
        'model): Hypertension">rule</span>' in page.text
    )
    assert f'<mark class="ev" data-codes="{HYPERTENSION}">Hypertension</mark>' in page.text
    # A case whose codes no rule accepted has no such mark.
    assert 'class="by-rule"' not in client.get("/cases/1").text


def test_a_rule_terms_words_are_escaped_in_the_mark(review: ReviewApp):
    text = 'Seen for "><script>alert(1)</script> pain.'
    start, end = text.index('"'), text.index(" pain")
    case = new_case(2, text=text)
    predictions = [{**case.predictions[0], "rule_span": {"start": start, "end": end}}]
    review.store.enqueue([dataclasses.replace(case, predictions=predictions)])
    client, _ = review.login("rita")
    page = client.get("/cases/3").text
    assert (
        'title="accepted on a mined term (a rule, or one backed by the model): '
        '&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in page
    )
    assert "<script>alert(1)" not in page


def test_a_new_password_ends_the_accounts_earlier_sessions(review: ReviewApp):
    rita, _ = review.login("rita")
    stolen = rita.cookies.get("autocode_session")
    rob, _ = review.login("rob")
    admin, csrf = review.login("ada")
    assert rita.get("/queue").status_code == 200
    new_password = {"csrf_token": csrf, "password": "a new password 7"}
    changed = admin.post("/admin/users/rita", data=new_password | {"your_password": PASSWORD})
    assert changed.status_code == 303
    # Rita's session (and any copy of its cookie) ends; other accounts' do not.
    assert (rita.get("/queue").status_code, rita.get("/queue").headers["location"]) == (
        303,
        "/login",
    )
    thief = review.client()
    thief.cookies.set("autocode_session", stolen)
    assert thief.get("/api/cases/1").status_code == 401
    assert rob.get("/queue").status_code == 200
    # Rita logs in again with the new password.
    again = review.client().post(
        "/api/login", json={"name": "rita", "password": "a new password 7"}
    )
    assert again.status_code == 200
    # An admin's own password is changed on the account page, which asks for the current
    # one: a stolen admin session cannot lock the admin out.
    own = admin.post("/admin/users/ada", data={"csrf_token": csrf, "password": "a new password 8"})
    assert own.status_code == 422 and "Account page" in own.text
    # The users page offers no password field on the admin's own row, only the way there.
    assert own.text.count('name="password"') == 3  # rita's row, rob's and the add form
    assert 'href="/account">your password' in own.text
    assert review.client().post("/api/login", json={"name": "ada", "password": PASSWORD}).is_success


def test_a_deactivation_ends_the_accounts_sessions_for_good(review: ReviewApp):
    rita, _ = review.login("rita")
    kept = rita.cookies.get("autocode_session")
    admin, csrf = review.login("ada")
    admin.post("/admin/users/rita", data={"csrf_token": csrf, "active": "no"})
    assert rita.get("/api/cases/1").status_code == 401
    admin.post("/admin/users/rita", data={"csrf_token": csrf, "active": "yes"})
    # Reactivated, the account logs in anew; a cookie issued before stays dead.
    replayed = review.client()
    replayed.cookies.set("autocode_session", kept)
    assert replayed.get("/api/cases/1").status_code == 401
    fresh, _ = review.login("rita")
    assert fresh.get("/api/cases/1").status_code == 200
    # A role change is read on every request and ends nothing.
    promote = {"csrf_token": csrf, "role": "admin", "your_password": PASSWORD}
    assert admin.post("/admin/users/rita", data=promote).status_code == 303
    assert fresh.get("/admin/users").status_code == 200


def test_logging_out_ends_every_session_of_the_account(review: ReviewApp):
    rita, csrf = review.login("rita")
    # Without the session's CSRF token a forged log out ends nothing.
    assert rita.post("/logout").status_code == 403
    assert rita.post("/logout", data={"csrf_token": "forged"}).status_code == 403
    assert rita.get("/api/cases/1").status_code == 200
    copied = review.client()
    copied.cookies.set("autocode_session", rita.cookies.get("autocode_session"))
    other_tab, _ = review.login("rita")
    rob, _ = review.login("rob")
    out = rita.post("/logout", data={"csrf_token": csrf})
    assert (out.status_code, out.headers["location"]) == (303, "/login")
    assert copied.get("/api/cases/1").status_code == 401
    assert other_tab.get("/api/cases/1").status_code == 401
    assert rob.get("/api/cases/1").status_code == 200
    again, _ = review.login("rita")
    assert again.get("/api/cases/1").status_code == 200
    # Logins and the log out are in the audit log: who, when, from where.
    ritas = [e for e in audit.entries(review.store) if e.actor == "rita"]
    assert [e.action for e in ritas] == ["login", "logout", "login", "login"]
    assert ritas[0].after == {"address": "testclient"} and ritas[1].after is None


def test_a_user_changes_their_own_password_given_the_current_one(review: ReviewApp):
    rita, csrf = review.login("rita")
    other_device, _ = review.login("rita")
    rob, _ = review.login("rob")
    page = rita.get("/account")
    assert page.status_code == 200 and "Change your password" in page.text

    def change(current: str, new: str, repeat: str | None = None, token: str = csrf) -> Any:
        form = {
            "csrf_token": token,
            "current_password": current,
            "new_password": new,
            "repeat_password": new if repeat is None else repeat,
        }
        return rita.post("/account/password", data=form)

    assert change(PASSWORD, NEW_PASSWORD, token="forged").status_code == 403
    wrong = change("not her password", NEW_PASSWORD)
    assert wrong.status_code == 403 and "current password is wrong" in wrong.text
    differ = change(PASSWORD, NEW_PASSWORD, repeat=NEW_PASSWORD + "!")
    assert differ.status_code == 422 and "differ" in differ.text
    short = change(PASSWORD, "short one")
    assert short.status_code == 422 and "at least 12" in short.text
    # The same answer with a wrong current password: a refusal never tells if it was right.
    assert change("not her password", "short one").status_code == 422
    # Nothing changed so far: every session goes on.
    assert other_device.get("/api/cases/1").status_code == 200

    done = change(PASSWORD, NEW_PASSWORD)
    assert (done.status_code, done.headers["location"]) == (303, "/account?changed=1")
    assert "your other sessions have ended" in rita.get("/account?changed=1").text
    # This session goes on with its CSRF token; the account's others end, rob's do not.
    assert rita.post("/cases/next", data={"csrf_token": csrf}).status_code == 303
    assert other_device.get("/api/cases/1").status_code == 401
    assert rob.get("/api/cases/1").status_code == 200
    old = review.client().post("/api/login", json={"name": "rita", "password": PASSWORD})
    new = review.client().post("/api/login", json={"name": "rita", "password": NEW_PASSWORD})
    assert (old.status_code, new.status_code) == (401, 200)
    (entry,) = [e for e in audit.entries(review.store) if e.action == "update_user"]
    assert (entry.actor, entry.target_user, entry.after["password_changed"]) == (
        "rita",
        "rita",
        True,
    )
    assert PASSWORD not in str(entry.after) and NEW_PASSWORD not in str(entry.after)


def test_wrong_current_passwords_are_rate_limited_as_wrong_logins(review: ReviewApp):
    client, csrf = review.login("rita")
    headers = {"X-CSRF-Token": csrf}
    for _ in range(5):
        wrong = client.post(
            "/api/password",
            json={"current_password": "guess", "new_password": NEW_PASSWORD},
            headers=headers,
        )
        assert wrong.status_code == 403
    right = client.post(
        "/api/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=headers,
    )
    assert right.status_code == 429 and "Too many" in right.json()["detail"]
    # Nor can the password be guessed through the login form meanwhile.
    login = review.client().post("/api/login", json={"name": "rita", "password": PASSWORD})
    assert login.status_code == 429


def test_the_api_changes_the_password_and_keeps_the_session(review: ReviewApp):
    client = review.client()
    csrf = client.post("/api/login", json={"name": "rob", "password": PASSWORD}).json()
    headers = {"X-CSRF-Token": csrf["csrf_token"]}
    body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    assert client.post("/api/password", json=body).status_code == 403  # no CSRF header
    assert client.post("/api/password", json=body, headers=headers).status_code == 204
    assert client.post("/api/cases/next", headers=headers).status_code == 200
    again = review.client().post("/api/login", json={"name": "rob", "password": NEW_PASSWORD})
    assert again.status_code == 200
