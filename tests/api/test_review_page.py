"""A whole shift in the review console, in a real headless browser (Debian's Chromium driven by Playwright), under
the page's Content-Security-Policy, with its CSRF token and a session that ends at logout: log in, filter, search,
page, accept, change with a reason, undo, escalate, bulk-accept, watch the live waiting count, screenshots at desk
and phone sizes, and an accessibility audit by axe-core (from the npm registry, tests/node_modules)."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from datetime import datetime, timedelta

from playwright.sync_api import Page, expect, sync_playwright

from tests.conftest import BOGOTA, ROOT
from tests.servers import post_json, running_server

KEY = "clave-revision-123"
CHROMIUM = "/usr/bin/chromium"  # make test installs Debian's chromium; no browser is ever downloaded
AXE = ROOT / "tests/node_modules/axe-core/axe.min.js"  # `make test` runs `npm ci --prefix tests`
ARTIFACTS = ROOT / "tests/artifacts"
TEXTS = [  # (channel, subject, body)
    ("email", "Plataforma caída", "Buenos días, desde las 7 ningún docente puede ingresar a la plataforma."),
    ("chat", "", "el reporte de cartera sale con valores raros desde ayer"),
    ("email", "Boletines con error", "Al generar los boletines a 3 de los 40 docentes les sale un error de promedio."),
    ("chat", "", "¿me ayudan con la configuración del correo?"),
    ("email", "Consulta", "Quisiera más información sobre el módulo de nómina."),
    ("chat", "", "hola"),
    ("email", "Factura rechazada", "La factura electrónica sale rechazada desde ayer y no podemos facturar."),
    ("chat", "", "la plataforma está caída, nadie puede entrar"),
    ("email", "Solicitud", "Necesitamos un ajuste a la medida en el formato de matrícula."),
    ("chat", "", "buenas, una pregunta"),
]
SENDERS = ["coordinacion@sanmartin.edu.co", "rectoria@gimnasiolosandes.edu.co", None, "compras@eltornillo.com.co"]
SHIFT_SIZE = 32  # more than one page of 25


def shift_messages(now: datetime) -> list[dict]:
    """Messages of the last week and a half, oldest first; two of them mention the word "Zafiro"."""
    out = []
    for i in range(SHIFT_SIZE):
        channel, subject, body = TEXTS[i % len(TEXTS)]
        if i in (5, 18):
            body += " Es el servidor Zafiro."
        out.append({"id": f"turno-{i}", "channel": channel, "subject": subject, "body": f"{body} (caso {i})",
                    "sender": SENDERS[i % len(SENDERS)],
                    "received_at": (now - timedelta(hours=8 * (SHIFT_SIZE - i))).isoformat()})
    return out


def _count(page: Page, selector: str) -> int:
    return int(re.sub(r"\D", "", page.locator(selector).inner_text()))


def _summary(page: Page) -> str:
    return page.locator("#resumen").inner_text()


def _filter(page: Page, **choices: str) -> None:
    for name, value in choices.items():
        if name == "q":
            page.fill("#f-q", value)
        else:
            page.select_option(f"select[name={name}]", value)
    with page.expect_navigation():
        page.click("button:has-text('Filtrar')")


def _audit(page: Page) -> list[dict]:
    """axe-core's serious and critical findings on the page as it is (evaluated over the DevTools protocol, which
    the page's CSP does not govern: the page itself still runs only its own nonce'd script)."""
    page.evaluate(AXE.read_text("utf-8"))
    found = page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations")
    return [{"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:3]}
            for v in found if v["impact"] in ("serious", "critical")]


def _waiting(port: int) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/review/waiting", headers={"x-api-key": KEY})
    with urllib.request.urlopen(request, timeout=30) as r:
        return json.loads(r.read())["waiting"]


def test_an_agent_works_a_shift_in_the_console(tmp_path):
    assert AXE.exists(), "axe-core is missing: run `make test` (or `npm ci --prefix tests`)"
    env = {"CLASSIFIER_DATABASE_URL": f"sqlite:///{tmp_path / 'page.sqlite3'}", "CLASSIFIER_API_KEY": KEY}
    now = datetime.now(BOGOTA)
    messages = shift_messages(now)
    with running_server(env) as port:
        results = post_json(port, "/v1/classify/batch", {"messages": messages}, {"x-api-key": KEY})["results"]
        by_id = {r["id"]: r for r in results}
        in_review = sum(r["needs_review"] for r in results)
        base = f"http://127.0.0.1:{port}"
        ARTIFACTS.mkdir(exist_ok=True)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                              "--disable-component-update", "--no-first-run"])
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            blocked: list[str] = []  # anything the CSP refuses shows up on the console
            page.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)

            # log in: the login form first, then the default view (waiting, sent to review)
            page.goto(f"{base}/review")
            page.fill("input[name=agent]", "laura.gomez")
            page.fill("input[name=api_key]", KEY)
            page.click("button:has-text('Ingresar')")
            page.wait_for_selector("#resumen")
            assert (f"de {in_review} " in _summary(page)) if in_review else "Ningún" in _summary(page)

            # filter: every message, chat only; then one customer
            _filter(page, needs_review="all", channel="chat")
            chats = [m for m in messages if m["channel"] == "chat"]
            assert f"de {len(chats)} " in _summary(page)
            assert page.locator(".item").count() == len(chats)
            assert all(t == "Chat" for t in page.locator(".facts div:has(dt:text-is('Canal')) dd").all_inner_texts())
            _filter(page, channel="", customer="col-san-martin")
            san_martin = [m for m in messages if m["sender"] == SENDERS[0]]
            assert page.locator(".item").count() == len(san_martin)
            assert set(page.locator(".facts div:has(dt:text-is('Cliente')) dd").all_inner_texts()) == {
                "Colegio San Martín de Porres"}

            # search: two messages mention the word, in any case
            _filter(page, customer="", q="zafiro")
            assert page.locator(".item").count() == 2 and "de 2 " in _summary(page)
            assert {page.locator(".item").nth(k).get_attribute("data-id") for k in range(2)} == {
                by_id["turno-5"]["classification_id"], by_id["turno-18"]["classification_id"]}

            # page: 32 messages, 25 a page; "n" and "p" move between pages
            _filter(page, q="")
            assert _summary(page).startswith(f"Mensajes 1–25 de {SHIFT_SIZE}")
            page.click("text=Siguiente »")
            page.wait_for_selector("#pagina-anterior")
            assert _summary(page).startswith(f"Mensajes 26–{SHIFT_SIZE} de {SHIFT_SIZE}")
            assert page.locator(".item").count() == SHIFT_SIZE - 25
            page.keyboard.press("p")
            page.wait_for_selector("#pagina-siguiente")
            assert _summary(page).startswith("Mensajes 1–25")

            items = page.locator(".item")
            first, second, third = items.nth(0), items.nth(1), items.nth(2)
            assert first.get_attribute("data-id") == by_id["turno-0"]["classification_id"]  # oldest first
            assert page.locator("mark").count() >= 1  # evidence words highlighted
            arrival = first.locator(".facts div:has(dt:text-is('Llegó')) dd").inner_text()
            assert re.fullmatch(r"(lun|mar|mié|jue|vie|sáb|dom) \d{1,2} [a-z]{3,4} \d{4}, \d{1,2}:\d{2} [ap]\. m\.",
                                arrival), arrival  # Colombian format, e.g. "vie 4 dic 2026, 9:06 a. m."
            assert re.search(r"(A tiempo|Por vencer|Vencido|Sin plazo)", first.inner_text())

            # accept with a click
            first.locator("button.aceptar").click()
            expect(first.locator(".status")).to_contain_text("✓ Aceptada")

            # change with a reason, by keyboard: the reason is required
            second.locator("h2").click()
            page.keyboard.press("c")
            panel = second.locator("form.cambio")
            expect(panel).to_be_visible()
            current = second.get_attribute("data-priority")
            target = "baja" if current != "baja" else "media"
            panel.locator("select.nueva").select_option(target)
            panel.locator("button:has-text('Guardar cambio')").click()
            expect(panel.locator(".form-error")).to_have_text("Elija el motivo del cambio.")
            panel.locator("select.motivo").select_option(index=1)
            panel.locator("input.detalle").fill("lo confirmó por teléfono")
            panel.locator("button:has-text('Guardar cambio')").click()
            expect(second.locator(".status")).to_contain_text("✓ Cambiada")
            expect(second.locator("button.deshacer")).to_be_visible()

            # undo within the minute ("u"): the message is back in the queue
            page.keyboard.press("u")
            expect(second.locator(".status")).to_contain_text("Decisión deshecha")
            expect(second.locator("button.aceptar")).to_be_enabled()

            # escalate ("j" then "e"): the new deadlines, already past for a message this old, then confirm
            page.keyboard.press("j")
            page.keyboard.press("e")
            escalation = third.locator("form.escala")
            expect(escalation).to_be_visible()
            expect(escalation).to_contain_text("ya vencido")
            page.keyboard.press("Enter")  # the focused confirm button
            expect(third.locator(".status")).to_contain_text("✓ Escalada")
            expect(third.locator(".status")).to_contain_text("nivel N2")

            # bulk: mark two with "x", one with a click, accept them with Shift+A
            bulk = [items.nth(k) for k in (3, 4, 5)]
            page.keyboard.press("j")
            page.keyboard.press("x")
            page.keyboard.press("j")
            page.keyboard.press("x")
            bulk[2].locator("input.marca").check()
            expect(page.locator("#aceptar-marcados")).to_have_text("Aceptar marcados (3)")
            page.keyboard.press("Shift+A")
            expect(page.locator("#bloque-estado")).to_have_text("3 aceptados.")
            for item in bulk:
                expect(item.locator(".status")).to_contain_text("✓ Aceptada")

            # the live count: a message classified through the API shows up without a reload
            settled = _waiting(port)
            expect(page.locator("#en-espera")).to_have_text(str(settled), timeout=15_000)
            post_json(port, "/v1/classify", {"id": "turno-nuevo", "channel": "chat", "body": "no puedo entrar",
                                             "received_at": now.isoformat()}, {"x-api-key": KEY})
            expect(page.locator("#en-espera")).to_have_text(str(settled + 1), timeout=15_000)
            expect(page.locator("#novedad")).to_contain_text("nuevo")

            # help overlay
            page.keyboard.press("?")
            expect(page.locator("#ayuda")).to_be_visible()
            page.keyboard.press("Escape")
            expect(page.locator("#ayuda")).to_be_hidden()

            second.locator("h2").click()
            page.keyboard.press("c")  # audited with a form open too
            expect(panel).to_be_visible()
            queue_findings = _audit(page)
            page.keyboard.press("Escape")
            expect(panel).to_be_hidden()
            page.evaluate("window.scrollTo(0, 0)")
            page.screenshot(path=str(ARTIFACTS / "consola-cola-1400x900.png"))
            page.click("nav >> text=Calidad")
            page.wait_for_selector("svg.chart")
            assert page.locator("svg.chart rect").count() > 2  # bars for the decisions of this shift
            quality_findings = _audit(page)
            page.screenshot(path=str(ARTIFACTS / "consola-calidad-1400x900.png"))
            page.set_viewport_size({"width": 390, "height": 844})
            page.screenshot(path=str(ARTIFACTS / "consola-calidad-390x844.png"))
            phone_findings = _audit(page)
            page.goto(f"{base}/review?needs_review=all")
            page.screenshot(path=str(ARTIFACTS / "consola-cola-390x844.png"))
            phone_findings += _audit(page)
            assert (queue_findings, quality_findings, phone_findings) == ([], [], [])

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
    accepted = {by_id[f"turno-{k}"]["classification_id"] for k in (0, 3, 4, 5)}
    assert set(stored) == accepted  # the undone change and the escalation (handling, not a label) are not labels
    assert all(stored[i]["label"] == next(r["priority"] for r in results if r["classification_id"] == i)
               for i in accepted)
