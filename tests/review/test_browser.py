"""End to end in a real browser: Debian's Chromium driven by Playwright against the server.

Chromium comes from the system package (`.ci/run` installs it), never from Playwright's own
download. Without it the test skips, unless AUTOCODE_REQUIRE_CHROMIUM=1 (set by `.ci/run`).
The case page's screenshot is saved under test-artifacts/.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from autocode.review import ReviewStore, leases
from autocode.review.auth import add_user
from review.app_client import PASSWORD, SECRET_TEXT
from review.test_store import ANEMIA, DIABETES, GOUT, HYPERTENSION, new_case
from servers import free_port, running_server

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
SRC = Path(__file__).resolve().parents[2] / "src"
MILD_ASTHMA = "ICD10CM:J45.20"
CLI = [sys.executable, "-c", "from autocode.cli import app; app()"]

pytestmark = pytest.mark.slow


@pytest.fixture
def chromium_path() -> Path:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} not found (apt-get install chromium)"
        if os.environ.get("AUTOCODE_REQUIRE_CHROMIUM") == "1":
            pytest.fail(f"{reason}; AUTOCODE_REQUIRE_CHROMIUM=1 requires it")
        pytest.skip(reason)
    return CHROMIUM


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    url = f"sqlite:///{tmp_path / 'queue.db'}"
    with ReviewStore(url) as store:
        store.enqueue([new_case(0, text=SECRET_TEXT), new_case(1, text=SECRET_TEXT)])
        add_user(store, "rita", "reviewer", PASSWORD, actor="test")
        add_user(store, "ada", "admin", PASSWORD, actor="test")
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(SRC), "AUTOCODE_REVIEW_SECRET": "e2e-" + "s" * 40}
    command = [*CLI, "review", "serve", "--db", url, "--port", str(port)]
    with running_server(command, port=port, cwd=tmp_path, env=env, probe="/healthz") as base:
        yield base, url, tmp_path / f"server-{port}.log"


def test_review_a_case_in_chromium(chromium_path: Path, server: tuple[str, str, Path], tmp_path):
    from playwright.sync_api import expect, sync_playwright

    base, url, log = server
    with sync_playwright() as playwright:
        browser, page = _open_page(playwright, chromium_path)
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

        _log_in(page, base, PASSWORD)
        expect(page).to_have_url(f"{base}/queue")
        page.click("#start")
        expect(page).to_have_url(f"{base}/cases/1")

        # The diabetes code has evidence: selected on load, its span highlighted.
        highlighted = page.locator("mark.ev.hl")
        expect(highlighted).to_have_count(1)
        expect(highlighted).to_have_text(SECRET_TEXT[:15])
        expect(page.locator(f"tr.code-row.selected[data-code='{DIABETES}']")).to_be_visible()

        page.check(f"input[aria-label='reject {HYPERTENSION}']")
        page.fill("#code-search", "mild intermittent asthma")
        add = page.locator(f"button.add-code[data-code='{MILD_ASTHMA}']")
        add.click(timeout=60_000)  # the first search builds the code index
        expect(page.locator("#added")).to_contain_text(MILD_ASTHMA)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "review-case-page.png"), full_page=True)

        # On a 1024 px laptop every column stays in view: Reject is not cut off.
        page.set_viewport_size({"width": 1024, "height": 768})
        panel = page.locator("section.codes").bounding_box()
        reject = page.locator(f"input[aria-label='reject {DIABETES}']").bounding_box()
        assert panel is not None and reject is not None
        assert reject["x"] + reject["width"] <= min(panel["x"] + panel["width"], 1024)

        page.keyboard.press("Control+Enter")
        expect(page).to_have_url(f"{base}/cases/2")
        # s skips: case 2 goes back to the queue, and nothing else is left for rita.
        page.locator("body").press("s")
        expect(page).to_have_url(f"{base}/queue?empty=1")
        browser.close()
    assert not [e for e in errors if "Content Security Policy" in e], errors

    out = tmp_path / "reviewed.parquet"
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    subprocess.run([*CLI, "review", "export", "--db", url, "--out", str(out)], env=env, check=True)
    rows = pq.read_table(out).to_pylist()
    # The model accepted E11.9 and I10; the reviewer rejected I10 and added J45.20.
    assert [(r["note_id"], r["codes"]) for r in rows] == [("note-0", [DIABETES, MILD_ASTHMA])]
    assert ANEMIA not in rows[0]["codes"]
    server_log = log.read_text()
    assert "POST /cases/1/submit" in server_log and "Jane Roe" not in server_log


def test_the_case_page_says_what_submit_saves_and_guards_unsaved_work(
    chromium_path: Path, server: tuple[str, str, Path]
):
    from playwright.sync_api import expect, sync_playwright

    base, url, _ = server
    with sync_playwright() as playwright:
        browser, page = _open_page(playwright, chromium_path)
        dialogs: list[str] = []

        def answer(dialog: Any) -> None:
            dialogs.append(dialog.type)
            dialog.dismiss()  # stay on the page; keep the note's codes

        page.on("dialog", answer)
        _log_in(page, base, PASSWORD)
        page.click("#start")
        expect(page).to_have_url(f"{base}/cases/1")
        will_save = page.locator("#will-save")
        # The model accepted diabetes and hypertension: those are what Submit saves.
        expect(will_save).to_have_text(f"Submit saves 2 codes: {DIABETES}, {HYPERTENSION}")
        expect(page.locator(".explain")).to_contain_text("Leased to you until")

        # Adding a code the model listed accepts it in its row; nothing is added twice.
        page.check(f"input[aria-label='accept {ANEMIA}']")
        page.check(f"input[aria-label='reject {ANEMIA}']")
        # Searched as a British coder types it, among the diagnoses only.
        page.select_option("#code-system", "ICD10CM")
        page.fill("#code-search", "anaemia, unspecified")
        first_hit = page.locator("#search-results button.add-code").first
        expect(first_hit).to_have_attribute("data-code", ANEMIA, timeout=60_000)  # index built
        page.locator("#code-search").press("Enter")  # to the first result's Add button
        expect(first_hit).to_be_focused()
        page.keyboard.press("s")  # a letter among the results is no shortcut: no skip
        expect(first_hit).to_be_focused()
        page.keyboard.press("Enter")
        expect(page.locator(f"input[aria-label='accept {ANEMIA}']")).to_be_checked()
        expect(page.locator("#added li")).to_have_count(0)
        expect(will_save).to_contain_text(f"Submit saves 3 codes: {DIABETES}, {HYPERTENSION}")

        # Leaving with unsaved choices asks first (dismissed: the page stays).
        page.locator("body").press("q")
        page.wait_for_timeout(500)
        assert dialogs == ["beforeunload"]
        expect(page).to_have_url(f"{base}/cases/1")

        # Every code rejected and none added: Submit asks before saving a note with none.
        for code in (DIABETES, HYPERTENSION, ANEMIA, GOUT):
            page.check(f"input[aria-label='reject {code}']")
        expect(will_save).to_have_text("Submit saves no code for this note.")
        page.click("#submit")
        page.wait_for_timeout(500)
        assert dialogs == ["beforeunload", "confirm"]
        expect(page).to_have_url(f"{base}/cases/1")  # not submitted
        browser.close()
    with ReviewStore(url) as store:
        assert store.get(1).status != "done"


def test_an_admin_releasing_a_reviewers_case_is_asked_first(
    chromium_path: Path, server: tuple[str, str, Path]
):
    from playwright.sync_api import expect, sync_playwright

    base, url, _ = server
    with ReviewStore(url) as store:
        leases.claim(store, 1, "rita")
    with sync_playwright() as playwright:
        browser, page = _open_page(playwright, chromium_path)
        asked: list[str] = []
        answer = {"accept": False}

        def reply(dialog: Any) -> None:
            asked.append(dialog.message)
            if answer["accept"]:
                dialog.accept()
            else:
                dialog.dismiss()

        page.on("dialog", reply)
        _log_in(page, base, PASSWORD, name="ada")
        page.goto(f"{base}/cases/1")
        expect(page.locator(".notice").first).to_have_text("Leased to rita.")
        page.click("button:has-text('Release')")
        page.wait_for_timeout(500)
        assert asked == [
            "Release case #1 back to the queue? rita loses the lease and any choices not yet "
            "submitted."
        ]
        with ReviewStore(url) as store:
            assert store.get(1).lease_holder == "rita"  # dismissed: nothing sent
        answer["accept"] = True
        page.click("button:has-text('Release')")
        expect(page.locator(".notice").first).to_have_text("Not claimed.")
        # Nobody holds it now: nothing to release.
        expect(page.locator("button:has-text('Release')")).to_have_count(0)
        browser.close()
    with ReviewStore(url) as store:
        assert store.get(1).lease_holder is None


def test_change_your_password_in_chromium(chromium_path: Path, server: tuple[str, str, Path]):
    from playwright.sync_api import expect, sync_playwright

    base, _, _ = server
    new_password = "a longer new passphrase"
    with sync_playwright() as playwright:
        browser, page = _open_page(playwright, chromium_path)
        _log_in(page, base, PASSWORD)
        page.click("header a.who")  # the user's name leads to the account page
        expect(page).to_have_url(f"{base}/account")
        page.fill("input[name=current_password]", PASSWORD)
        page.fill("input[name=new_password]", new_password)
        page.fill("input[name=repeat_password]", new_password)
        page.click("form[action='/account/password'] button[type=submit]")
        expect(page.get_by_role("status")).to_contain_text("your other sessions have ended")
        page.click("header button:has-text('Log out')")
        expect(page).to_have_url(f"{base}/login")
        _log_in(page, base, PASSWORD)
        expect(page.get_by_role("alert")).to_contain_text("Wrong name or password")
        _log_in(page, base, new_password)
        expect(page).to_have_url(f"{base}/queue")
        browser.close()


def _open_page(playwright: Any, chromium_path: Path) -> tuple[Any, Any]:
    """Debian's Chromium (no sandbox as root) and a page on a desktop-sized window."""
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    browser = playwright.chromium.launch(executable_path=str(chromium_path), args=args)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.set_default_timeout(30_000)
    return browser, page


def _log_in(page: Any, base: str, password: str, name: str = "rita") -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
