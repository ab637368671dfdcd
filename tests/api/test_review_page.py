"""The review page end to end in a real headless browser (Debian's Chromium driven by Playwright), under the
page's Content-Security-Policy, with its CSRF token and a session that ends at logout."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from playwright.sync_api import sync_playwright

from tests.api.routes.test_review import MESSAGES  # the same three messages as the API review tests
from tests.conftest import ROOT
from tests.servers import post_json, running_server

KEY = "clave-revision-123"
CHROMIUM = "/usr/bin/chromium"  # make test installs Debian's chromium; no browser is ever downloaded
def test_agent_reviews_three_messages_and_the_decisions_are_stored(tmp_path):
    env = {"CLASSIFIER_DATABASE_URL": f"sqlite:///{tmp_path / 'page.sqlite3'}", "CLASSIFIER_API_KEY": KEY}
    with running_server(env) as port:
        ids = [post_json(port, "/v1/classify", m, {"x-api-key": KEY})["classification_id"] for m in MESSAGES]
        base = f"http://127.0.0.1:{port}"
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                              "--disable-component-update", "--no-first-run"])
            page = browser.new_page()
            blocked: list[str] = []  # anything the CSP refuses shows up on the console
            page.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)
            page.goto(f"{base}/review?needs_review=all")
            assert "Ingresar" in page.content()  # the login form first
            page.fill("input[name=agent]", "laura.gomez")
            page.fill("input[name=api_key]", KEY)
            page.click("button:has-text('Ingresar')")
            page.wait_for_selector(".item")
            items = page.locator(".item")
            assert items.count() == 3
            assert page.locator("mark").count() >= 1  # evidence words highlighted
            first, second, third = (page.locator(f".item[data-id='{i}']") for i in ids)
            first.locator("button.accept").click()
            second.locator("select.priority").select_option("baja")
            second.locator("input.reason").fill("es una pregunta de información")
            second.locator("button.change").click()
            third.click()
            page.keyboard.press("e")  # keyboard shortcut: escalate the selected message
            for item in (first, second, third):
                item.locator(".status:has-text('✔')").wait_for()
            (ROOT / "tests/artifacts").mkdir(exist_ok=True)
            page.screenshot(path=str(ROOT / "tests/artifacts/review.png"), full_page=True)
            copied = page.context.cookies()[0]
            page.click("button:has-text('Salir')")
            page.wait_for_selector("input[name=api_key]")  # logged out: the login form again
            assert blocked == []
            browser.close()
        copy = urllib.request.Request(f"{base}/v1/review", headers={"cookie": f"{copied['name']}={copied['value']}"})
        try:
            urllib.request.urlopen(copy, timeout=30)
            raise AssertionError("the copied cookie still works after logout")
        except urllib.error.HTTPError as exc:
            assert exc.code == 401
        request = urllib.request.Request(f"{base}/v1/feedback/export", headers={"x-api-key": KEY})
        with urllib.request.urlopen(request, timeout=30) as r:
            stored = {row["id"]: row for row in map(json.loads, r.read().decode().splitlines())}
    assert set(stored) == set(ids[:2])  # escalated only: an escalation is handling, not a label (POLICY §6)
    assert stored[ids[1]]["label"] == "baja"
